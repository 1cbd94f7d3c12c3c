"""The grid objective under resampling (issue 22): each resample's objective at every start of
a grid, with each start's point values computed once per problem and summed under every
resample's weights (cpp/src/cpu_driver.h, grid_objective).

It must give bitwise what the objective gives at each (unit, start) one at a time, whatever
the model, loss, residual space, weights, resampling mode, sizes, engine and thread count; and
so a bootstrap fitted from a grid must give, resample for resample, what an ordinary grid fit
of that resample's weights gives."""
import numpy as np
import pytest

import lawfit
from lawfit import _backends
from lawfit._options import Options
from lawfit._packing import pack
from lawfit.reference.rng import bootstrap_counts

from batches import model_batch
from conftest import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="needs the compiled core")

LOSSES = ["linear", "soft_l1", "huber", "cauchy", "arctan"]


def grid_and_objective(pk, options, starts, data_of, resample_of, resampling, **kw):
    """The core's grid objective, and the objective at every (unit, start) one by one."""
    cpu = _backends.Cpu(kw.pop("engine", "auto"))
    units = _backends.Units(data_of, resample_of=resample_of, resampling=resampling)
    assert cpu._shares_grid_work(options, units)
    got = cpu.grid_objective(pk, options, starts, units, **kw)
    U, (S, n) = len(data_of), starts.shape[1:]
    one = _backends.Units(np.repeat(data_of, S), resample_of=np.repeat(resample_of, S),
                          resampling=resampling)
    want = cpu.objective(pk, options, starts[data_of].reshape(U * S, n), one).reshape(U, S)
    return got, want


def starts_around(p0, S, seed, spread=0.5):
    """S starts per problem around p0 (P, n), some far enough to overflow."""
    rng = np.random.default_rng(seed)
    starts = p0[:, None, :] * rng.uniform(1 - spread, 1 + spread, (p0.shape[0], S, p0.shape[1]))
    starts[:, 3] = np.nan  # a cost that is not finite: +inf
    starts[:, 4] *= -1000.0  # far out: costs overflow for some models
    return starts


@pytest.mark.parametrize("name,residuals", [("saturating_power_law", "linear"),
                                            ("chinchilla", "log"), ("chinchilla_log", "log"),
                                            ("broken_power_law", "linear")])
@pytest.mark.parametrize("loss", LOSSES)
def test_bitwise_the_objective_at_every_start(name, residuals, loss):
    x, y, truth, p0 = model_batch(name, n_problems=5, n_points=23, seed=3)
    pk = pack(lawfit.models.get(name), x, y, p0=p0, residuals=residuals)
    options = Options(loss=loss, f_scale=0.05)
    R, S = 6, 37  # 37 starts: whole packs, one pack and a scalar tail in the sums
    data_of = np.repeat(np.arange(5), R)
    resample_of = np.tile(np.arange(R), 5).astype(np.uint32)
    got, want = grid_and_objective(pk, options, starts_around(p0, S, 1), data_of, resample_of,
                                   _backends.Resampling(17, "pairs"))
    assert np.isinf(got).any() and np.isfinite(got).mean() > 0.5
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["pairs", "grouped", "jackknife", "grouped_jackknife"])
def test_every_weight_mode_with_weights_sigma_and_ragged_problems(mode):
    rng = np.random.default_rng(5)
    n = [12, 30, 0, 7, 19]  # ragged, one problem empty
    xs = [np.sort(rng.uniform(1, 100, k)) for k in n]
    ys = [2.0 + 30 * xi ** -0.4 * np.exp(rng.normal(0, 0.02, len(xi))) for xi in xs]
    ws = [rng.uniform(0.5, 2.0, len(xi)) for xi in xs]
    ss = [rng.uniform(0.5, 1.5, len(xi)) for xi in xs]
    cl = [np.arange(len(xi)) // 3 for xi in xs]
    p0 = np.tile([2.0, 30.0, 0.4], (5, 1))
    pk = pack(lawfit.models.get("saturating_power_law"), xs, ys, p0=p0, weights=ws, sigma=ss,
              clusters=cl if mode.startswith("grouped") else None, residuals="log")
    R = 5
    data_of = np.repeat(np.arange(5), R)
    resample_of = np.tile(np.arange(R), 5).astype(np.uint32)
    for loss in ("linear", "huber"):
        got, want = grid_and_objective(pk, Options(loss=loss, f_scale=0.01),
                                       starts_around(p0, 21, 2), data_of, resample_of,
                                       _backends.Resampling(2**40 + 1, mode))
        np.testing.assert_array_equal(got, want)


def test_units_in_any_order_engines_and_threads():
    x, y, truth, p0 = model_batch("chinchilla", n_problems=4, n_points=40, seed=8)
    pk = pack(lawfit.models.get("chinchilla"), x, y, p0=p0, residuals="log")
    rng = np.random.default_rng(0)
    data_of = rng.integers(0, 4, 50)
    resample_of = rng.integers(0, 1000, 50).astype(np.uint32)
    starts = starts_around(p0, 600, 4)  # more starts than one sum takes (512)
    options = Options(loss="huber", f_scale=1e-3)
    rs = _backends.Resampling(3, "pairs", keys=np.array([9, 4, 2**62, 0]))
    base, want = grid_and_objective(pk, options, starts, data_of, resample_of, rs, n_threads=1)
    np.testing.assert_array_equal(base, want)
    for engine in [e[0] for e in lawfit._core.engines() if e[2]] + ["scalar"]:
        for threads in (1, 2, 3):
            got, _ = grid_and_objective(pk, options, starts, data_of, resample_of, rs,
                                        engine=engine, n_threads=threads)
            np.testing.assert_array_equal(got, base, err_msg=f"{engine} {threads}")


def test_a_law_and_the_refused_residual_bootstrap():
    law = lawfit.law("E + A * x ** (-alpha)", inputs=["x"], params=["E", "A", "alpha"],
                     name="grid_objective_law")
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=3, n_points=15, seed=1)
    pk = pack(law, x, y, p0=p0)
    data_of = np.repeat(np.arange(3), 4)
    resample_of = np.tile(np.arange(4), 3).astype(np.uint32)
    got, want = grid_and_objective(pk, Options(loss="soft_l1"), starts_around(p0, 9, 3),
                                   data_of, resample_of, _backends.Resampling(1, "pairs"))
    np.testing.assert_array_equal(got, want)
    units = _backends.Units(data_of, resample_of=resample_of,
                            resampling=_backends.Resampling(1, "residual", pk.target, pk.target))
    assert not _backends.Cpu()._shares_grid_work(Options(), units)
    with pytest.raises(ValueError, match="residual bootstrap"):
        _backends.Cpu()._grid_objective(pk, Options(), starts_around(p0, 9, 3), units, 0)


def test_each_grid_resample_is_an_ordinary_grid_fit_of_its_weights():
    """bootstrap(start=grid): a resample's result is lawfit.fit's from the same grid with that
    resample's weights, bit for bit (the grid ranked, the best k refined, best_of's choice)."""
    x, y, truth, p0 = model_batch("chinchilla", n_problems=2, n_points=40, seed=6)
    # Explicit starts (a profile grid's coefficients would come from the full data).
    starts = starts_around(p0, 10, 5)[:, [0, 1, 2, 5, 6, 7, 8, 9]]
    g = lawfit.grid(starts=starts)
    kw = dict(residuals="log", loss="huber", f_scale=1e-3)
    b = lawfit.bootstrap("chinchilla", x, y, p0=p0, start=g, k=4, n_resamples=12, seed=7,
                         **kw)
    checked = 0
    for i, r in [(0, 0), (0, 5), (1, 3), (1, 11)]:
        w = bootstrap_counts(7, [i], [r], 40)[0].astype(float)
        one = lawfit.fit("chinchilla", x, y[i], weights=w, p0=lawfit.grid(starts=starts[i]),
                         k=4, **kw)
        if b.status[i, r] == one.status[0]:
            np.testing.assert_array_equal(one.x[0], b.samples[i, r])
            checked += 1
    assert checked >= 3


def test_a_grid_bootstrap_is_the_same_for_every_thread_count_and_chunk_size(tmp_path):
    x, y, truth, p0 = model_batch("chinchilla", n_problems=3, n_points=30, seed=9)
    g = lawfit.grid(starts=np.delete(starts_around(p0, 13, 6), 3, axis=1))
    kw = dict(p0=p0, start=g, k=3, n_resamples=10, seed=11, residuals="log", loss="huber",
              f_scale=1e-3)
    a = lawfit.bootstrap("chinchilla", x, y, n_threads=1, **kw)
    for threads, chunk in ((2, 37), (2, 12), (1, 1000)):
        b = lawfit.bootstrap("chinchilla", x, y, n_threads=threads, chunk_size=chunk, **kw)
        np.testing.assert_array_equal(a.samples, b.samples)
        np.testing.assert_array_equal(a.status, b.status)
        np.testing.assert_array_equal(a.other_basin, b.other_basin)
    a.save(tmp_path / "grid.npz")
    back = lawfit.load(tmp_path / "grid.npz")
    np.testing.assert_array_equal(back.other_basin, a.other_basin)
    assert back.other_basin.dtype == bool and a.other_basin.shape == (3, 10)


@pytest.mark.data
def test_other_basin_counts_resamples_the_optimum_start_would_leave_behind(chinchilla):
    """On the Chinchilla data, a full-data fit from (a, b, e, alpha, beta) = (20, 10, 0.5,
    0.5, 0) converges to a poor local optimum (E -> 0, cost 2.3e-3 against 1.0e-3): resamples
    started there stay in that basin, while a grid holding the global optimum's start takes
    them out.  other_basin says which, by the rule it documents; from the global optimum it
    says none."""
    N, D, L, objective = chinchilla
    X = np.column_stack([N, D])
    kw = dict(residuals="log", loss="huber", f_scale=1e-3, n_resamples=24, seed=3)
    poor, good = [20.0, 10.0, 0.5, 0.5, 0.0], [6.0, 7.5, 0.6, 0.35, 0.37]
    g = lawfit.grid(starts=[poor, good])
    b = lawfit.bootstrap("chinchilla_log", X, L, p0=poor, start=g, k=2, **kw)
    assert b.fit.success[0] and b.fit.cost[0] > 2e-3
    assert b.other_basin.shape == (1, 24) and b.n_other_basin[0] >= 20
    for r in range(6):
        w = bootstrap_counts(3, [0], [r], len(L))[0].astype(float)
        fkw = dict(residuals="log", loss="huber", f_scale=1e-3, weights=w)
        warm = lawfit.fit("chinchilla_log", X, L, p0=b.fit.x[0], **fkw)
        grid = lawfit.fit("chinchilla_log", X, L, p0=g, k=2, **fkw)
        np.testing.assert_array_equal(grid.x[0], b.samples[0, r])
        lower = grid.cost[0] < warm.cost[0] - 1e-6 * abs(grid.cost[0])
        assert b.other_basin[0, r] == (grid.success[0] and (not warm.success[0] or lower))
    best = lawfit.bootstrap("chinchilla_log", X, L, p0=good, start=g, k=2, **kw)
    assert best.fit.cost[0] < 1.1e-3 and best.n_other_basin[0] == 0
    assert lawfit.bootstrap("chinchilla_log", X, L, p0=good, **kw).other_basin is None
    assert "reached a lower optimum from the grid" in b.summary()
    assert (b.to_frame()["n_other_basin"] == b.n_other_basin[0]).all()


def test_starts_beyond_the_memory_bound_go_in_ranges():
    """A problem whose starts' point values exceed what the core holds at once (4M doubles:
    cpu_driver.h, kGridValues) is ranked in ranges of starts, each unit's weights drawn per
    range: the same bits."""
    rng = np.random.default_rng(2)
    n, S = 2100, 2050  # 4.3M values: two ranges
    x = np.geomspace(1, 1e4, n)
    y = 2.0 + 30 * x ** -0.4 * np.exp(rng.normal(0, 0.01, n))
    p0 = np.array([[2.0, 30.0, 0.4]])
    pk = pack(lawfit.models.get("saturating_power_law"), x, y, p0=p0)
    starts = p0[:, None, :] * rng.uniform(0.5, 1.5, (1, S, 3))
    got, want = grid_and_objective(pk, Options(loss="cauchy", f_scale=0.1), starts,
                                   np.zeros(2, dtype=np.int64), np.array([0, 5], np.uint32),
                                   _backends.Resampling(4, "pairs"))
    np.testing.assert_array_equal(got, want)


def test_bad_starts_are_refused_naming_them():
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=2, n_points=10, seed=1)
    pk = pack(lawfit.models.get("saturating_power_law"), x, y, p0=p0)
    units = _backends.Units(np.array([0, 1]), resample_of=np.array([0, 0], np.uint32),
                            resampling=_backends.Resampling(1, "pairs"))
    for bad in (np.zeros((2, 4)), np.zeros((3, 4, 3)), np.zeros((2, 4, 2))):
        with pytest.raises(ValueError, match="starts: expected shape"):
            _backends.Cpu()._grid_objective(pk, Options(), bad, units, 0)
