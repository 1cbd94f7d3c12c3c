"""Cross-problem leaks and chunking differences in the bootstrap (issue 16), one test each.

Every solve unit (a resample of a problem, its leave-one-out fit, a continued fit) must read
its own problem's data, start, bounds and clusters, whatever its neighbours and however the
units are chunked.  The root of the leaks found: the backends' solve decided "one start and
box per problem or per unit" by comparing lengths, so a chunk of exactly as many units as
problems read problem i's row for unit i.  Each test here failed on the code before the fix.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import lawfit
from lawfit import _backends
from lawfit._options import Options
from lawfit.bootstrap import BootstrapWarning
from lawfit.reference.rng import bootstrap_counts

from batches import model_batch

pytest.importorskip("lawfit._core")
SPL = "saturating_power_law"


@pytest.fixture(autouse=True)
def quiet():
    """These batches lose resamples on purpose (empty problems, small budgets)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BootstrapWarning)
        yield


def assert_same(a, b, what=""):
    """Two bootstrap results: bitwise the same samples, statuses and jackknife."""
    np.testing.assert_array_equal(a.status, b.status, err_msg=what)
    np.testing.assert_array_equal(a.samples, b.samples, err_msg=what)
    np.testing.assert_array_equal(a.jackknife(), b.jackknife(), err_msg=what)


@pytest.mark.parametrize("method", ["pairs", "grouped", "residual"])
def test_samples_are_bitwise_the_same_for_every_chunk_size(method):
    """(a) With chunk_size below the resample units, the samples differed from one call's
    (by up to 5e-3): a chunk of 3 resamples of one problem, in a batch of 3 problems, read
    problems 0, 1, 2's starts and boxes."""
    x, y, truth, p0 = model_batch(SPL, n_problems=3, n_points=20, seed=1)
    clusters = np.tile(np.arange(20.0) // 4, (3, 1)) if method == "grouped" else None
    kw = dict(p0=p0, n_resamples=3, seed=1, backend="cpu", method=method, clusters=clusters)
    ref = lawfit.bootstrap(SPL, x, y, **kw)
    assert ref.converged.all()
    for chunk in (1, 2, 3, 4, 5, 7, 9, 100):
        for threads in (1, 2):
            b = lawfit.bootstrap(SPL, x, y, chunk_size=chunk, n_threads=threads, **kw)
            assert_same(b, ref, f"chunk_size={chunk}, n_threads={threads}")


def test_samples_with_a_grid_start_are_the_same_for_every_chunk_size():
    x, y, truth, p0 = model_batch(SPL, n_problems=3, n_points=20, seed=2)
    g = lawfit.grid(starts=np.array([[1.0, 300.0, 0.2], [2.0, 800.0, 0.4],
                                     [1.5, 600.0, 0.3]]))
    kw = dict(p0=p0, n_resamples=5, seed=3, backend="cpu", start=g, k=2)
    ref = lawfit.bootstrap(SPL, x, y, **kw)
    for chunk in (1, 2, 3, 6, 7, 1000):
        assert_same(lawfit.bootstrap(SPL, x, y, chunk_size=chunk, **kw), ref, str(chunk))


def test_chunk_size_bounds_every_solve(monkeypatch):
    """(a) A bootstrap with more resamples than chunk_size ran as one call of all of them;
    now no call of the core (resamples, their grid's objective, continued fits, the
    jackknife) holds more than chunk_size units."""
    sizes = []
    run, objective = _backends.Backend.solve, _backends.Backend.objective

    def counted_run(self, packed, options, units=None, **kw):
        sizes.append(packed.n_problems if units is None else len(units))
        return run(self, packed, options, units, **kw)

    def counted_objective(self, packed, options, params, units, **kw):
        sizes.append(len(units))
        return objective(self, packed, options, params, units, **kw)

    monkeypatch.setattr(_backends.Backend, "solve", counted_run)
    monkeypatch.setattr(_backends.Backend, "objective", counted_objective)
    x, y, truth, p0 = model_batch(SPL, n_problems=4, n_points=30, seed=4)
    g = lawfit.grid(starts=np.array([[1.0, 300.0, 0.2], [2.0, 800.0, 0.4],
                                     [1.5, 600.0, 0.3], [1.8, 500.0, 0.35]]))
    # From the optimum the full-data fits converge at once within 2 evaluations, and some
    # resamples need more: they are continued, and refitted from the grid.
    p0 = lawfit.fit(SPL, x, y, p0=p0, ftol=1e-12, xtol=1e-12, gtol=1e-12).x
    for kw in (dict(), dict(start=g, k=2), dict(max_nfev=2, refit_failed=g, k=3)):
        sizes.clear()
        b = lawfit.bootstrap(SPL, x, y, p0=p0, n_resamples=50, seed=1, chunk_size=16,
                             backend="cpu", **kw)
        b.interval(0.9, method="bca")  # the jackknife too
        assert sizes and max(sizes) <= 16, (kw, max(sizes))
    assert b.n_continued.sum() > 0 and b.n_refit.sum() > 0  # those paths ran


def test_a_resample_is_fitted_in_its_own_problems_box():
    """(b) With per-problem bounds, a resample of problem 0 was fitted inside problem 1's box
    (E pinned at problem 1's lower bound 5.0)."""
    x, y, truth, p0 = model_batch(SPL, n_problems=3, n_points=20, seed=1)
    lower = np.array([[0.0, 0, 0], [5.0, 0, 0], [0, 0, 0]])
    upper = np.tile([10.0, 1e4, 2.0], (3, 1))
    p0 = p0.copy()
    p0[1, 0] = 6.0
    b = lawfit.bootstrap(SPL, x, y, p0=p0, bounds=(lower, upper), n_resamples=3, seed=1,
                         chunk_size=3, backend="cpu")
    for i in range(3):
        for r in range(3):
            w = bootstrap_counts(1, [i], [r], 20)[0].astype(float)
            one = lawfit.fit(SPL, x, y[i], weights=w, p0=np.clip(b.fit.x[i], lower[i],
                                                                  upper[i]),
                             bounds=(lower[i], upper[i]), backend="cpu")
            assert one.success[0]
            np.testing.assert_array_equal(b.samples[i, r], one.x[0], err_msg=f"{i}, {r}")
    assert np.all(b.samples[[0, 2], :, 0] < 2.5)  # near E = 1.8, not at problem 1's 5.0


def test_the_jackknife_reads_its_own_problems_box_beside_empty_neighbours():
    """(c) The jackknife of a problem of 20 points beside 19 empty problems (20 units for 20
    problems) fitted its leave-one-out units in the neighbours' boxes (E = 5, their lower
    bound, instead of about 1.8)."""
    x, y, truth, p0 = model_batch(SPL, n_problems=1, n_points=20, seed=1)
    P = 20
    xs = [x[:, 0]] + [np.empty(0)] * (P - 1)
    ys = [y[0]] + [np.empty(0)] * (P - 1)
    lower = np.zeros((P, 3))
    lower[1:, 0] = 5.0
    upper = np.tile([10.0, 1e4, 2.0], (P, 1))
    starts = np.tile(p0[0], (P, 1))
    starts[1:, 0] = 6.0
    b = lawfit.bootstrap(SPL, xs, ys, p0=starts, bounds=(lower, upper), n_resamples=40,
                         seed=1, backend="cpu")
    alone = lawfit.bootstrap(SPL, xs[:1], ys[:1], p0=starts[:1],
                             bounds=(lower[:1], upper[:1]), n_resamples=40, seed=1,
                             backend="cpu")
    jk = b.jackknife()
    assert jk.shape == (P, 20, 3) and np.isnan(jk[1:]).all()
    np.testing.assert_array_equal(jk[0], alone.jackknife()[0])
    assert np.all(np.abs(jk[0, :, 0] - b.fit.x[0, 0]) < 0.2)
    np.testing.assert_array_equal(b.samples[0], alone.samples[0])
    assert b.fit_failed[1:].all() and not b.fit_failed[0]
    lo, hi = b.interval(0.9, method="bca")
    assert np.isfinite(lo[0]).all() and np.isnan(lo[1:]).all()


def test_a_grouped_bootstrap_with_an_empty_problem_fits_the_others():
    """(d) A grouped bootstrap with one empty problem raised for the whole batch ("n_groups:
    problem 1 has an impossible group count")."""
    x, y, truth, p0 = model_batch(SPL, n_problems=2, n_points=20, seed=1)
    c = np.arange(20.0) // 4
    kw = dict(p0=p0[0], n_resamples=6, seed=2, method="grouped", backend="cpu")
    b = lawfit.bootstrap(SPL, [x[:, 0], np.empty(0), x[:, 0]], [y[0], np.empty(0), y[1]],
                         clusters=[c, np.empty(0), c], **kw)
    assert list(b.fit.status[1:2]) == [lawfit.Status.TOO_FEW_POINTS]
    assert np.all(b.status[1] == lawfit.Status.TOO_FEW_POINTS) and b.fit_failed[1]
    alone = lawfit.bootstrap(SPL, [x[:, 0]], [y[0]], clusters=[c], **kw)
    np.testing.assert_array_equal(b.samples[0], alone.samples[0])
    np.testing.assert_array_equal(b.jackknife()[0], alone.jackknife()[0])
    assert b.converged[[0, 2]].all()


def test_fp32_bootstrap_accepts_its_own_solution_of_a_fixed_parameter():
    """(e) fp32 with a fixed parameter not representable in fp32 (A = 100.1) fitted, then
    refused its own solution (A = 100.09999847) as outside the bounds."""
    x, y, truth, p0 = model_batch(SPL, n_problems=3, n_points=20, seed=1)
    lower, upper = [-np.inf, 100.1, -np.inf], [np.inf, 100.1, np.inf]
    b = lawfit.bootstrap(SPL, x, y, p0=[1.8, 100.1, 0.3], bounds=(lower, upper),
                         n_resamples=5, dtype="float32", backend="cpu")
    assert b.fit.success.all() and b.converged.all()
    assert np.all(b.samples[..., 1] == np.float32(100.1))
    lo, hi = b.interval(0.9)
    assert np.isfinite(lo).all()


def test_run_is_told_which_rows_a_unit_reads():
    """The root: solve units say rows="unit" or "problem" explicitly, even where a batch
    holds as many units as problems."""
    from lawfit._packing import pack

    x, y, truth, p0 = model_batch(SPL, n_problems=2, n_points=15, seed=3)
    lower = np.array([[0.0, 0, 0], [1.9, 0, 0]])
    upper = np.array([[10.0, 1e4, 2], [10.0, 1e4, 2]])
    pk = pack(lawfit.models.get(SPL), x, y, p0=np.clip(p0, lower, upper),
              bounds=(lower, upper))
    options = Options(max_nfev=300)
    Units = _backends.Units
    plain = _backends.Cpu().solve(pk, options)
    swapped = np.array([1, 0])
    for backend in (_backends.Cpu(), _backends.Numpy()):
        out = backend.solve(pk, options, Units(swapped, "problem", pk.p0, pk.lower, pk.upper))
        np.testing.assert_allclose(out["x"], plain["x"][swapped], rtol=1e-9)
        assert out["x"][0, 0] >= 1.9  # problem 1's box, read for unit 0
        per_unit = backend.solve(pk, options, Units(swapped, "unit", pk.p0[swapped],
                                                    pk.lower[swapped], pk.upper[swapped]))
        np.testing.assert_array_equal(per_unit["x"], out["x"])
    with pytest.raises(ValueError, match="rows: expected 'unit' or 'problem'"):
        _backends.Cpu().solve(pk, options, Units(swapped, None, pk.p0, pk.lower, pk.upper))
    with pytest.raises(ValueError, match=r"p0: expected 3 rows \(one per unit\)"):
        _backends.Cpu().solve(pk, options, Units(np.array([0, 1, 1]), "unit", pk.p0,
                                                 pk.lower, pk.upper))
