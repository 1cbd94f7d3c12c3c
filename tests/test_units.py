"""Solve units that share a problem's points (``data_of``), and the objective at many
parameter sets (``lawfit._core.objective``): the compiled mechanism under multi-start grids
and bootstrap resamples.

Unit i of a batch fits the points of problem ``data_of[i]`` from its own start and bounds.
Fitting S units per problem this way must give bitwise what a batch with each problem's
points copied S times gives, on every engine and thread count; and the objective at a fit's
solution must be bitwise the cost the fit reported there (the same evaluation).
"""
from __future__ import annotations

import numpy as np
import pytest

import lawfit
from lawfit import models
from lawfit._options import Options
from lawfit._packing import pack

from batches import MODEL_NAMES, assert_bitwise_dicts, model_batch
import corecall

_core = pytest.importorskip("lawfit._core")

ENGINES = ["scalar", *[name for name, _, ok in _core.engines() if ok]]
OPTS = dict(ftol=1e-8, xtol=1e-8, gtol=1e-8, max_nfev=200, initial_damping=1e-3)


def ragged_packed(name: str, seed: int = 0, residuals: str = "linear"):
    """A ragged batch (5 to 30 points per problem, one problem with a NaN, kept as bad data
    with nan_policy="propagate") packed."""
    rng = np.random.default_rng(seed)
    x, y, truth, p0 = model_batch(name, n_problems=9, n_points=30, seed=seed)
    xs, ys = [], []
    for i in range(len(y)):
        keep = np.sort(rng.choice(30, int(rng.integers(5, 31)), replace=False))
        xs.append(x[keep]), ys.append(y[i, keep])
    ys[4] = ys[4].copy()
    ys[4][0] = np.nan
    return pack(models.get(name), xs, ys, p0=p0, residuals=residuals,
                nan_policy="propagate"), truth


def starts_around(truth: np.ndarray, S: int, seed: int) -> np.ndarray:
    """(P, S, n) starts within 30% of the truth."""
    rng = np.random.default_rng(seed)
    return truth[:, None, :] * (1 + 0.3 * rng.uniform(-1, 1, (truth.shape[0], S, truth.shape[1])))


def fit_units(pk, starts, engine, n_threads, expanded: bool, **kw):
    P, S, n = starts.shape
    data_of = np.repeat(np.arange(P), S)
    p0 = starts.reshape(P * S, n)
    lower = np.repeat(pk.lower, S, axis=0)
    upper = np.repeat(pk.upper, S, axis=0)
    common = dict(log_residuals=pk.log_residuals, loss=kw.get("loss", "linear"),
                  f_scale=kw.get("f_scale", 1.0), n_threads=n_threads, return_jtj=True,
                  engine=engine, **OPTS)
    if not expanded:
        return corecall.fit(_core.fit, pk.model.name, pk.inputs, pk.target, pk.sigma, pk.weights,
                            pk.offsets, p0, lower, upper, data_of=data_of, **common)
    # The same units as an ordinary batch: problem i's points copied S times.
    rows = np.concatenate([np.arange(pk.offsets[k], pk.offsets[k + 1]) for k in data_of])
    counts = np.diff(pk.offsets)[data_of]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return corecall.fit(_core.fit, pk.model.name, np.ascontiguousarray(pk.inputs[rows]),
                        pk.target[rows], None, None, offsets, p0, lower, upper, **common)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("residuals", ["linear", "log"])
def test_units_equal_a_batch_with_copied_points(name, residuals):
    pk, truth = ragged_packed(name, seed=1, residuals=residuals)
    starts = starts_around(truth, 5, seed=2)
    want = fit_units(pk, starts, "scalar", 1, expanded=True, loss="huber", f_scale=0.1)
    for engine in ENGINES:
        for threads in (1, 2):
            got = fit_units(pk, starts, engine, threads, expanded=False, loss="huber",
                            f_scale=0.1)
            assert_bitwise_dicts(got, want)
    # The problem with a NaN reports it in every one of its units, and only there.
    status = want["status"].reshape(9, 5)
    assert (status[4] == lawfit.Status.NONFINITE_DATA).all()
    assert (np.delete(status, 4, axis=0) != lawfit.Status.NONFINITE_DATA).all()


def test_objective_is_the_cost_the_fit_reports():
    pk, truth = ragged_packed("chinchilla", seed=3, residuals="log")
    starts = starts_around(truth, 4, seed=4)
    P, S, n = starts.shape
    data_of = np.repeat(np.arange(P), S)
    for engine in ENGINES:
        out = fit_units(pk, starts, engine, 2, expanded=False, loss="cauchy", f_scale=0.05)
        cost = corecall.objective(_core.objective, pk.model.name, pk.inputs, pk.target, pk.sigma,
                                  pk.weights, pk.offsets, out["x"], data_of=data_of,
                                  log_residuals=True, loss="cauchy", f_scale=0.05)
        ok = out["status"] > 0
        assert ok.sum() >= (P - 1) * S  # all but the NaN problem converge
        assert np.array_equal(cost[ok].view(np.int64), out["cost"][ok].view(np.int64))
        assert np.all(np.isinf(cost.reshape(P, S)[4]))  # NaN data: +inf, to rank last


def test_objective_at_the_starts_matches_numpy():
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=6, n_points=20, seed=5)
    pk = pack(models.get("saturating_power_law"), x, y, p0=p0)
    cost = corecall.objective(_core.objective, pk.model.name, pk.inputs, pk.target, None, None,
                              pk.offsets, pk.p0, log_residuals=False, loss="linear",
                              f_scale=1.0)
    f = np.stack([models.saturating_power_law(x, *p) for p in p0])
    np.testing.assert_allclose(cost, 0.5 * ((f - y) ** 2).sum(axis=1), rtol=1e-12)


def test_bad_data_of_is_rejected_naming_it():
    pk, truth = ragged_packed("power_law")
    P, n = pk.p0.shape
    args = (pk.model.name, pk.inputs, pk.target, None, None, pk.offsets)
    kw = dict(log_residuals=False, loss="linear", f_scale=1.0, n_threads=1, return_jtj=False,
              **OPTS)
    for bad in (np.array([0, P]), np.array([-1, 0]), np.zeros((2, 1), dtype=np.int64)):
        with pytest.raises(ValueError, match="data_of"):
            corecall.fit(_core.fit, *args, pk.p0[:2], pk.lower[:2], pk.upper[:2],
                         data_of=bad, **kw)
    with pytest.raises(ValueError, match="p0"):  # one row per unit
        corecall.fit(_core.fit, *args, pk.p0, pk.lower, pk.upper,
                     data_of=np.zeros(3, dtype=np.int64), **kw)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("mode", [None, "pairs", "grouped", "residual"])
def test_objective_lanes_equal_the_scalar_objective(name, mode):
    # The objective runs in the SIMD lanes (Lanes::run_objective): bitwise the scalar
    # evaluation on every engine and thread count, ragged sizes, a NaN problem, points
    # outside a model's domain and parameters that overflow included, with each resampling.
    from lawfit import _backends

    pk, truth = ragged_packed(name, seed=6, residuals="log" if name.endswith("log") else
                              "linear")
    starts = starts_around(truth, 7, seed=7)
    P, S, n = starts.shape
    params = starts.reshape(P * S, n).copy()
    params[3] *= 40.0  # far away, possibly overflowing
    data_of = np.repeat(np.arange(P), S)
    kw = {}
    if mode is not None:
        pk.clusters = np.floor(np.arange(len(pk.target)) / 3.0)
        fit_t = fit_r = None
        if mode == "residual":
            fit_t, fit_r = pk.target.copy(), np.sin(np.arange(len(pk.target)))
        kw = dict(resample_of=np.arange(P * S, dtype=np.uint32) % 5,
                  resampling=_backends.Resampling(11, mode, fit_t, fit_r))
    options = Options(loss="soft_l1", f_scale=0.5)
    out = {}
    for engine in ENGINES:
        for threads in (1, 2):
            out[engine, threads] = _backends.Cpu(engine).objective(
                pk, options, params, _backends.Units(data_of, **kw), n_threads=threads)
    want = out["scalar", 1]
    assert np.isinf(want).any() and np.isfinite(want).sum() > P * S // 2
    for key, got in out.items():
        np.testing.assert_array_equal(got, want, err_msg=str(key))
