"""``lawfit.bootstrap``: pairs-bootstrap resamples drawn inside the solve.

Tested: each resample's fit equals an ordinary fit with the resample's weights (drawn by the
NumPy reference of the Philox stream) passed explicitly; results do not depend on thread
count or chunking and are keyed by the seed; failed resamples are left out and counted; the
90% percentile interval covers the truth of synthetic laws 90% of the time; and, with the
real data, 4,000 resamples of the Chinchilla replication's fit.
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

import lawfit
from lawfit._synthetic import saturating_power_laws
from lawfit.bootstrap import BootstrapWarning
from lawfit.reference.rng import bootstrap_counts

from batches import model_batch

pytest.importorskip("lawfit._core")


def test_each_resample_is_a_fit_with_its_weights():
    x, y, truth, p0 = model_batch("chinchilla", n_problems=4, n_points=30, seed=2)
    b = lawfit.bootstrap("chinchilla", x, y, p0=p0, n_resamples=25, seed=99,
                         residuals="log", loss="huber", f_scale=0.01)
    assert b.samples.shape == (4, 25, 5) and b.status.shape == (4, 25)
    for i, r in [(0, 0), (1, 7), (3, 24)]:
        w = bootstrap_counts(99, [i], [r], 30)[0].astype(float)
        one = lawfit.fit("chinchilla", x, y[i], weights=w, p0=b.fit.x[i], residuals="log",
                         loss="huber", f_scale=0.01)
        np.testing.assert_array_equal(one.x[0], b.samples[i, r])


def test_keyed_by_seed_not_threads_or_chunks():
    x, y, truth = saturating_power_laws(30, 12, seed=4)
    kw = dict(p0=truth, n_resamples=40)
    a = lawfit.bootstrap("saturating_power_law", x, y, seed=5, n_threads=1, **kw)
    b = lawfit.bootstrap("saturating_power_law", x, y, seed=5, n_threads=2, chunk_size=97, **kw)
    np.testing.assert_array_equal(a.samples, b.samples)
    c = lawfit.bootstrap("saturating_power_law", x, y, seed=6, **kw)
    assert not np.array_equal(a.samples, c.samples)
    ref = lawfit.bootstrap("saturating_power_law", x[:], y[:4], p0=truth[:4], n_resamples=40,
                           seed=5, backend="numpy")
    ok = a.converged[:4] & ref.converged
    np.testing.assert_allclose(ref.samples[ok], a.samples[:4][ok], rtol=1e-7)


def test_failed_resamples_are_left_out_and_counted():
    x = np.geomspace(1e6, 1e10, 4)
    y = np.vstack([2.0 + 400 * x ** -0.3, 1.5 + 300 * x ** -0.25]) * (1 + 0.01 * np.array(
        [[1, -1, 0.5, 0.2], [-0.3, 0.7, -1, 0.4]]))
    with pytest.warns(BootstrapWarning, match=r"2 of 2 problems lost more than 1% of their "
                      r"resamples .*TOO_FEW_POINTS"):
        b = lawfit.bootstrap("saturating_power_law", x, y, p0=[2.0, 400.0, 0.3],
                             n_resamples=300, seed=1)
    short = b.status == lawfit.Status.TOO_FEW_POINTS  # a resample of 4 points with < 3 distinct
    assert short.any() and (~short).any()
    assert np.all(np.isnan(b.samples[~b.converged]))
    assert np.array_equal(b.n_converged, b.converged.sum(axis=1))
    assert np.array_equal(b.n_failed, short.sum(axis=1))
    assert np.array_equal(b.status_counts()["TOO_FEW_POINTS"], short.sum(axis=1))
    assert np.all(np.isfinite(b.se)) and np.all(b.share_converged < 1)


def test_percentile_interval_covers_the_truth():
    # 1,000 synthetic laws with known truth, 1% noise, 500 resamples each (500,000 fits).
    x, y, truth = saturating_power_laws(1000, 20, seed=11)
    b = lawfit.bootstrap("saturating_power_law", x, y, p0=truth, n_resamples=500, seed=12)
    lo, hi = b.interval(0.9)
    cover = ((lo <= truth) & (truth <= hi)).mean(axis=0)
    print(f"\n90% percentile intervals cover E, A, alpha in {np.round(100 * cover, 1)}% of 1,000")
    assert np.all(np.abs(cover - 0.9) <= 0.03), cover
    assert np.all(b.share_converged > 0.99)


def test_bad_arguments_name_them():
    x, y, truth = saturating_power_laws(3, 10)
    boot = lambda **kw: lawfit.bootstrap("saturating_power_law", x, y, p0=truth, **kw)  # noqa
    with pytest.raises(ValueError, match="method: expected one of"):
        boot(method="wild")
    with pytest.raises(ValueError, match="seed: expected an integer"):
        boot(seed=-1)
    with pytest.raises(ValueError, match="n_resamples"):
        boot(n_resamples=0)
    with pytest.raises(ValueError, match="level"):
        boot(n_resamples=5).interval(1.5)


@pytest.mark.data
def test_chinchilla_4000_resamples(chinchilla):
    N, D, L, objective = chinchilla
    X = np.column_stack([N, D])
    axis = np.linspace(0, 1, 6)
    kw = dict(residuals="log", loss="huber", f_scale=1e-3)
    t0 = time.perf_counter()
    b = lawfit.bootstrap("chinchilla_log", X, L, p0=lawfit.grid(alpha=axis, beta=axis,
                                                               profile=True),
                         n_resamples=4000, seed=2024, **kw)
    dt = time.perf_counter() - t0
    assert b.n_converged[0] >= 3900
    lo, hi = b.interval(0.8)
    est = b.fit.x[0]
    assert np.all((lo[0] <= est) & (est <= hi[0]))
    s = b.samples[0][b.converged[0]]
    exponent = s[:, 4] / (s[:, 3] + s[:, 4])  # beta / (alpha + beta): N_opt ~ C^exponent
    q = np.quantile(exponent, [0.1, 0.9])
    names = b.param_names
    print(f"\n4,000 resamples in {dt:.2f} s ({b.n_converged[0]} converged); "
          + ", ".join(f"{n}={est[j]:.4f} [{lo[0, j]:.4f}, {hi[0, j]:.4f}] se {b.se[0, j]:.4f}"
                      for j, n in enumerate(names))
          + f"; beta/(alpha+beta) 80% interval [{q[0]:.3f}, {q[1]:.3f}]")


def test_intervals_match_scipy_on_the_mean():
    """A statistic both can compute: the mean, which is the least-squares fit of the constant
    A x^0 (power_law with alpha fixed at 0).  With 40,000 resamples each, lawfit's percentile
    and BCa intervals agree with scipy.stats.bootstrap's to Monte Carlo error."""
    import scipy.stats as st

    y = np.random.default_rng(0).gamma(2.0, 1.0, 30)  # skewed, so BCa moves the interval
    x = np.geomspace(1, 100, 30)
    b = lawfit.bootstrap("power_law", x, y, p0=[1.0, 0.0], n_resamples=40_000, seed=1,
                         bounds=([-np.inf, 0.0], [np.inf, 0.0]))
    assert b.fit.x[0, 0] == pytest.approx(y.mean(), rel=1e-12)
    # The jackknife estimates are the leave-one-out means.
    jk = b.jackknife()[0, :, 0]
    np.testing.assert_allclose(jk, (y.sum() - y) / 29, rtol=1e-8)  # to the solver's xtol
    for ours, theirs in (("percentile", "percentile"), ("bca", "BCa")):
        lo, hi = b.interval(0.9, method=ours)
        ci = st.bootstrap((y,), np.mean, n_resamples=40_000, confidence_level=0.9,
                          method=theirs, rng=np.random.default_rng(5)).confidence_interval
        width = ci.high - ci.low
        assert abs(lo[0, 0] - ci.low) < 0.03 * width and abs(hi[0, 0] - ci.high) < 0.03 * width
    pl, ph = b.interval(0.9)
    bl, bh = b.interval(0.9, method="bca")
    assert bl[0, 0] > pl[0, 0] and bh[0, 0] > ph[0, 0]  # right skew shifts BCa up


def test_grouped_resamples_whole_clusters():
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=3, n_points=24, seed=6)
    clusters = np.tile(np.repeat([10.0, 20.0, 30.0, 40.0, 50.0, 60.0], 4), (3, 1))
    b = lawfit.bootstrap("saturating_power_law", x, y, p0=p0, n_resamples=30, seed=8,
                         method="grouped", clusters=clusters)
    for i, r in [(0, 0), (2, 17)]:
        counts = bootstrap_counts(8, [i], [r], 6)[0]
        w = np.repeat(counts, 4).astype(float)  # each point takes its cluster's count
        one = lawfit.fit("saturating_power_law", x, y[i], weights=w, p0=b.fit.x[i])
        if one.success[0]:
            np.testing.assert_array_equal(one.x[0], b.samples[i, r])
        else:
            assert b.status[i, r] == one.status[0]
    jk = b.jackknife()
    assert jk.shape == (3, 6, 3)  # one leave-one-cluster-out fit per cluster
    keep = np.repeat(np.arange(6) != 2, 4)
    one = lawfit.fit("saturating_power_law", x[keep], y[1, keep], p0=b.fit.x[1])
    np.testing.assert_allclose(jk[1, 2], one.x[0], rtol=1e-10)
    with pytest.raises(ValueError, match="clusters: required by method='grouped'"):
        lawfit.bootstrap("saturating_power_law", x, y, p0=p0, method="grouped")
    with pytest.raises(ValueError, match="clusters: every label must be a finite number"):
        lawfit.bootstrap("saturating_power_law", x, y, p0=p0, method="grouped",
                         clusters=np.where(clusters == 10.0, np.nan, clusters))


def test_predictions_and_derived_quantities():
    x, y, truth = saturating_power_laws(5, 20, seed=21)
    b = lawfit.bootstrap("saturating_power_law", x, y, p0=truth, n_resamples=300, seed=2)
    x_new = np.array([1e11, 1e12, 1e13])  # extrapolation to larger models
    est, lo, hi = b.predict(x_new, level=0.9)
    assert est.shape == lo.shape == hi.shape == (5, 3)
    law = lawfit.models.saturating_power_law
    np.testing.assert_allclose(est[2], law(x_new, *b.fit.x[2]), rtol=1e-13)
    s = b.samples[2][b.converged[2]]
    band = np.percentile([law(x_new, *p) for p in s], [5, 95], axis=0)
    np.testing.assert_allclose(lo[2], band[0], rtol=1e-12)
    np.testing.assert_allclose(hi[2], band[1], rtol=1e-12)
    assert np.all((lo <= est) & (est <= hi))
    # A scalar derived quantity, and BCa through the jackknife.
    e, l, h = b.derive(lambda p: p[..., 0] + p[..., 1] * 1e12 ** -p[..., 2], level=0.9)
    np.testing.assert_allclose(e, est[:, 1], rtol=1e-13)
    np.testing.assert_allclose([l, h], [lo[:, 1], hi[:, 1]], rtol=1e-12)
    e2, l2, h2 = b.derive(lambda p: p[..., 2], level=0.9, method="bca")
    assert e2.shape == (5,) and np.all(l2 < h2)
    with pytest.raises(ValueError, match="x: expected shape"):
        b.predict(np.ones((3, 2)))
    with pytest.raises(ValueError, match="compute_optimal: needs a chinchilla"):
        b.compute_optimal(1e21)


@pytest.mark.data
def test_chinchilla_compute_optimal_allocation(chinchilla):
    N, D, L, objective = chinchilla
    axis = np.linspace(0, 1, 6)
    b = lawfit.bootstrap("chinchilla_log", np.column_stack([N, D]), L,
                         p0=lawfit.grid(alpha=axis, beta=axis, profile=True), n_resamples=4000,
                         seed=7, residuals="log", loss="huber", f_scale=1e-3)
    C = np.array([5.76e23, 1e25])  # Chinchilla's own budget, and a larger one
    opt = b.compute_optimal(C, level=0.8)
    n, nl, nh = opt["N_opt"]
    d, dl, dh = opt["D_opt"]
    ex, exl, exh = opt["exponent"]
    np.testing.assert_allclose(6 * n * d, np.broadcast_to(C, n.shape), rtol=1e-12)
    assert np.all((nl <= n) & (n <= nh)) and np.all((dl <= d) & (d <= dh))
    assert 0.45 < ex[0] < 0.6 and exl[0] < ex[0] < exh[0]
    print(f"\nN_opt(5.76e23) = {n[0, 0]:.3g} [{nl[0, 0]:.3g}, {nh[0, 0]:.3g}], D_opt = "
          f"{d[0, 0]:.3g} [{dl[0, 0]:.3g}, {dh[0, 0]:.3g}] (80%); exponent "
          f"{ex[0]:.3f} [{exl[0]:.3f}, {exh[0]:.3f}]")


@pytest.mark.parametrize("residuals", ["linear", "log"])
def test_residual_bootstrap_refits_fitted_values_plus_drawn_residuals(residuals):
    from lawfit.reference.rng import bootstrap_indices

    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=4, n_points=20, seed=3)
    b = lawfit.bootstrap("saturating_power_law", x, y, p0=p0, n_resamples=50, seed=4,
                         method="residual", residuals=residuals)
    law = lawfit.models.saturating_power_law
    space = (np.log, np.exp) if residuals == "log" else (lambda v: v, lambda v: v)
    for i, k in [(0, 0), (1, 7), (3, 49)]:
        t_fit = space[0](law(x, *b.fit.x[i]))
        e = space[0](y[i]) - t_fit
        ystar = space[1](t_fit + e[bootstrap_indices(4, [i], [k], 20)[0]])
        one = lawfit.fit("saturating_power_law", x, ystar, p0=b.fit.x[i], residuals=residuals)
        # The fitted values here come from NumPy's power, the core's from its own exp: the
        # targets agree to rounding, and so do the fits.
        np.testing.assert_allclose(one.x[0], b.samples[i, k], rtol=1e-12)
    ref = lawfit.bootstrap("saturating_power_law", x, y, p0=p0, n_resamples=50, seed=4,
                           method="residual", residuals=residuals, backend="numpy")
    ok = b.converged & ref.converged
    np.testing.assert_allclose(ref.samples[ok], b.samples[ok], rtol=1e-7)


@pytest.mark.parametrize("method", ["pairs", "grouped", "residual"])
def test_every_engine_resamples_bitwise_alike(method):
    from lawfit import _backends

    x, y, truth, p0 = model_batch("chinchilla", n_problems=5, n_points=24, seed=9)
    clusters = np.tile(np.repeat(np.arange(8.0), 3), (5, 1)) if method == "grouped" else None
    out = {}
    engines = ["scalar", *[n for n, _, ok in lawfit._core.engines() if ok]]
    for e in engines:
        out[e] = lawfit.bootstrap("chinchilla", x, y, p0=p0, n_resamples=40, seed=3,
                                  method=method, clusters=clusters, residuals="log",
                                  backend=_backends.Cpu(engine=e))
    for e in engines[1:]:
        np.testing.assert_array_equal(out[e].status, out["scalar"].status)
        np.testing.assert_array_equal(out[e].samples, out["scalar"].samples)


def test_each_resample_with_its_own_grid():
    x, y, truth, p0 = model_batch("chinchilla_log", n_problems=3, n_points=40, seed=7,
                                  noise=0.02)
    starts = np.random.default_rng(3).uniform([0, 0, -1, 0, 0], [25, 25, 1, 2, 2], (12, 5))
    g = lawfit.grid(starts=starts)
    kw = dict(residuals="log", loss="huber", f_scale=1e-3)
    b = lawfit.bootstrap("chinchilla_log", x, y, p0=g, start=g, k=4, n_resamples=20, seed=1,
                         **kw)
    for i, r in [(0, 0), (2, 13)]:
        w = bootstrap_counts(1, [i], [r], 40)[0].astype(float)
        one = lawfit.fit("chinchilla_log", x, y[i], weights=w, p0=g, k=4, **kw)
        np.testing.assert_array_equal(one.x[0], b.samples[i, r])
    with pytest.raises(ValueError, match="start: expected 'fit' or a lawfit.grid"):
        lawfit.bootstrap("chinchilla_log", x, y, p0=g, start="grid", **kw)


def test_a_resample_grid_falls_back_as_fit_does():
    """Where no refined start of a resample converges, the bootstrap keeps the one with the
    lowest finite cost, as fit does for a grid (one rule, lawfit._plan.best_of): here the
    grid's first start has a non-finite cost (-4) and the others stop at the budget (0).
    The rule chose the best-ranked start before (the first, with k="all")."""
    x = np.geomspace(1e6, 1e10, 12)
    rng = np.random.default_rng(0)
    y = np.stack([1.8 + 600 * x ** -0.34 * (1 + 0.02 * rng.standard_normal(12))
                  for _ in range(2)])
    starts = np.array([[-5.0, 600.0, 0.34], [1.0, 300.0, 0.2], [1.5, 900.0, 0.5]])
    g = lawfit.grid(starts=starts)
    kw = dict(residuals="log", max_nfev=1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = lawfit.fit("saturating_power_law", x, y, p0=np.array([1.8, 600.0, 0.34]), residuals="log",
                         ftol=1e-15, xtol=1e-15, gtol=1e-12).x
        assert lawfit.fit("saturating_power_law", x, y[0], p0=starts[0], **kw).status[0] < 0
        b = lawfit.bootstrap("saturating_power_law", x, y, p0=opt, start=g, k="all", n_resamples=4, seed=2,
                             **kw)
        assert b.fit.success.all()  # at the optimum: converged in one evaluation
        for i in range(2):
            for r in range(4):
                w = bootstrap_counts(2, [i], [r], 12)[0].astype(float)
                one = lawfit.fit("saturating_power_law", x, y[i], weights=w, p0=g, k="all", **kw)
                assert one.status[0] == lawfit.Status.MAX_NFEV and one.best_start[0] != 0
                assert b.status[i, r] == one.status[0], (i, r)


def test_grouped_bootstrap_from_a_dataframe():
    pd = pytest.importorskip("pandas")
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=3, n_points=24, seed=6)
    df = pd.DataFrame({"law": np.repeat(["a", "b", "c"], 24), "x": np.tile(x[:, 0], 3),
                       "y": y.reshape(-1), "size": np.tile(np.repeat(np.arange(6.0), 4), 3)})
    df = df.sample(frac=1.0, random_state=0)  # rows in any order
    b = lawfit.bootstrap("saturating_power_law", data=df, x="x", y="y", groups="law",
                         p0=p0[0], n_resamples=30, seed=8, method="grouped", clusters="size")
    ref = lawfit.bootstrap("saturating_power_law", x, y, p0=p0[0], n_resamples=30, seed=8,
                           method="grouped",
                           clusters=np.tile(np.repeat(np.arange(6.0), 4), (3, 1)))
    # The same clusters of the same points: the same resample weights, the same fits (the
    # points' order within a problem differs, so the sums round differently).
    ok = b.converged & ref.converged
    np.testing.assert_allclose(b.samples[ok], ref.samples[ok], rtol=1e-8)
    with pytest.raises(ValueError, match="clusters: data has no column"):
        lawfit.bootstrap("saturating_power_law", data=df, x="x", y="y", groups="law",
                         p0=p0[0], method="grouped", clusters="nope")


# --------------------------------------------------------------------------------------
# Nothing lost without a word (issue 16)
# --------------------------------------------------------------------------------------

def _optimum(x, y, p0):
    """The full-data optimum, so that a small budget binds on the resamples alone."""
    return lawfit.fit("saturating_power_law", x, y, p0=p0, ftol=1e-12, xtol=1e-12,
                      gtol=1e-12).x


def test_a_small_budget_warns_and_counts_what_it_loses():
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=4, n_points=30, seed=4)
    opt = _optimum(x, y, p0)
    with pytest.warns(BootstrapWarning, match=r"4 of 4 problems lost more than 1% of their "
                      r"resamples to failed fits \(problem \d: 50 of 50 \(100.0%\).*"
                      r"MAX_NFEV: 200"):
        b = lawfit.bootstrap("saturating_power_law", x, y, p0=opt, n_resamples=50, seed=1,
                             max_nfev=1)
    assert b.fit.success.all()
    assert list(b.n_failed) == [50, 50, 50, 50] and list(b.n_converged) == [0, 0, 0, 0]
    assert list(b.status_counts()["MAX_NFEV"]) == [50, 50, 50, 50]
    assert np.all(b.n_continued == 50)  # every one continued, CONTINUE_ROUNDS times at most
    assert np.isnan(b.samples[~b.converged]).all()
    # A budget of 2 loses a few: named with their shares.
    with pytest.warns(BootstrapWarning, match=r"4 of 4 problems lost .*\(problem 2: 17 of 50 "
                      r"\(34.0%\), problem 0: 6 of 50 \(12.0%\), problem 1: 3 of 50 \(6.0%\), "
                      r"problem 3: 3 of 50 \(6.0%\); by status: MAX_NFEV: 29\)"):
        b = lawfit.bootstrap("saturating_power_law", x, y, p0=opt, n_resamples=50, seed=1,
                             max_nfev=2)
    assert list(b.n_failed) == [6, 3, 17, 3]


def test_a_resample_at_its_budget_is_continued_from_where_it_stopped():
    """A resample that stops at MAX_NFEV is solved again from its last point with a fresh
    budget: bitwise the chain of ordinary fits with its weights."""
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=4, n_points=30, seed=4)
    opt = _optimum(x, y, p0)
    with pytest.warns(BootstrapWarning, match="by status: MAX_NFEV: 29"):
        b = lawfit.bootstrap("saturating_power_law", x, y, p0=opt, n_resamples=50, seed=1,
                             max_nfev=2)
    assert b.n_continued.sum() >= 10 and b.n_failed.sum() == 29
    from lawfit.bootstrap import CONTINUE_ROUNDS

    checked = 0
    for i in range(4):
        for r in range(50):
            w = bootstrap_counts(1, [i], [r], 30)[0].astype(float)
            one = lawfit.fit("saturating_power_law", x, y[i], weights=w, p0=b.fit.x[i],
                             max_nfev=2)
            rounds = 0
            while one.status[0] == lawfit.Status.MAX_NFEV and rounds < CONTINUE_ROUNDS:
                one = lawfit.fit("saturating_power_law", x, y[i], weights=w, p0=one.x[0],
                                 max_nfev=2)
                rounds += 1
            assert one.status[0] == b.status[i, r]
            if rounds:
                checked += 1
                if one.success[0]:
                    np.testing.assert_array_equal(one.x[0], b.samples[i, r])
    assert checked == b.n_continued.sum()


def test_failed_resamples_are_refitted_from_a_grid():
    """refit_failed: a resample whose fit fails from its start is fitted again from a grid,
    bitwise as that grid would have fitted it."""
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=3, n_points=20, seed=5)
    bad = lawfit.grid(starts=[[1.8, 600.0, -40.0]])  # x^40 overflows: NONFINITE_INITIAL
    good = lawfit.grid(starts=[[1.0, 300.0, 0.2], [2.0, 900.0, 0.5]])
    kw = dict(p0=p0, n_resamples=20, seed=3, backend="cpu")
    with pytest.warns(BootstrapWarning, match="NONFINITE_INITIAL: 60"):
        lost = lawfit.bootstrap("saturating_power_law", x, y, start=bad, **kw)
    assert lost.n_converged.sum() == 0 and lost.n_refit.sum() == 0
    b = lawfit.bootstrap("saturating_power_law", x, y, start=bad, refit_failed=good, **kw)
    assert b.converged.all() and np.all(b.n_refit == 20)
    ref = lawfit.bootstrap("saturating_power_law", x, y, start=good, **kw)
    np.testing.assert_array_equal(b.samples, ref.samples)
    # refit_failed=True reuses the start grid, else the p0 grid.
    with pytest.warns(BootstrapWarning):
        same = lawfit.bootstrap("saturating_power_law", x, y, start=bad, refit_failed=True,
                                **kw)
    assert same.n_refit.sum() == 60 and same.n_converged.sum() == 0
    with pytest.raises(ValueError, match="refit_failed: True refits from the start or p0 grid"):
        lawfit.bootstrap("saturating_power_law", x, y, refit_failed=True, **kw)
    with pytest.raises(ValueError, match="refit_failed: expected None, True or a lawfit.grid"):
        lawfit.bootstrap("saturating_power_law", x, y, refit_failed="grid", **kw)


@pytest.mark.parametrize("how", ["nan_propagate", "all_nan"])
def test_a_failed_full_data_fit_gives_no_finite_interval(how):
    """A problem whose full-data fit failed gets NaN for its standard errors and every
    interval (percentile, BCa, derived, predicted, compute-optimal), with a warning; the
    others are untouched."""
    x, y, truth, p0 = model_batch("chinchilla", n_problems=3, n_points=30, seed=2)
    y = y.copy()
    if how == "nan_propagate":
        y[1, 4] = np.nan
        kw = dict(nan_policy="propagate")
        want = lawfit.Status.NONFINITE_DATA
    else:
        y[1] = np.nan
        kw = {}
        want = lawfit.Status.TOO_FEW_POINTS
    with pytest.warns(BootstrapWarning, match=rf"1 of 3 problems \(1\): the full-data fit "
                      rf"failed \({want.name}: 1\)"):
        b = lawfit.bootstrap("chinchilla", x, y, p0=p0, n_resamples=200, seed=1,
                             residuals="log", **kw)
    assert b.fit.status[1] == want and list(b.fit_failed) == [False, True, False]
    assert np.all(b.status[1] == want) and np.isnan(b.samples[1]).all()
    good = [0, 2]
    assert b.converged[good].all()

    def check(est, lo, hi):
        assert np.isnan(est[1]).all() and np.isnan(lo[1]).all() and np.isnan(hi[1]).all()
        assert np.isfinite(est[good]).all() and np.isfinite(lo[good]).all()
        assert np.all((lo[good] <= est[good]) & (est[good] <= hi[good]))

    with pytest.warns(BootstrapWarning, match="standard errors and intervals are NaN"):
        se = b.se
    assert np.isnan(se[1]).all() and np.isfinite(se[good]).all()
    for method in ("percentile", "bca"):
        with pytest.warns(BootstrapWarning):
            lo, hi = b.interval(0.9, method=method)
        assert np.isnan(lo[1]).all() and np.isnan(hi[1]).all() and np.isfinite(lo[good]).all()
        with pytest.warns(BootstrapWarning):
            check(*b.derive(lambda p: p[..., 3] / p[..., 4], 0.9, method))
        with pytest.warns(BootstrapWarning):
            check(*b.predict(np.array([[1e11, 1e12], [1e12, 1e13]]), 0.9, method))
    with pytest.warns(BootstrapWarning):
        opt = b.compute_optimal([1e22, 1e24], 0.9)
    for key in ("N_opt", "D_opt", "exponent"):
        check(*opt[key])
    assert np.isfinite(b.fit.x[1]).all()  # the fit's own x is left as the fit returned it
