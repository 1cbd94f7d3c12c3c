"""Bootstrap resamples drawn inside the compiled core (``resample_of``, ``seed``).

Unit i fits problem data_of[i] with the multinomial weights of (seed, problem, resample_of[i])
from rng.h, times the batch's weights.  Those weights are never materialised outside the
solve; fitted in-core they must give bitwise what the same units give with the weights passed
explicitly (as lawfit.reference.rng draws them), on every engine and thread count, and agree
with the NumPy reference solving the materialised resamples.
"""
from __future__ import annotations

import numpy as np
import pytest

import lawfit
from lawfit import models
from lawfit._packing import pack
from lawfit.reference import fit_packed as ref_fit
from lawfit.reference import rng

from batches import MODEL_NAMES, assert_bitwise_dicts, model_batch
import corecall

_core = pytest.importorskip("lawfit._core")

ENGINES = ["scalar", *[name for name, _, ok in _core.engines() if ok]]
OPTS = dict(ftol=1e-8, xtol=1e-8, gtol=1e-8, max_nfev=1000, initial_damping=1e-3)
SEED = 2**33 + 17


def batch(name, residuals="linear", seed=0, weights=True):
    rng_ = np.random.default_rng(seed)
    x, y, truth, p0 = model_batch(name, n_problems=6, n_points=24, seed=seed)
    xs, ys, ws, ss = [], [], [], []
    for i in range(len(y)):
        keep = np.sort(rng_.choice(24, int(rng_.integers(12, 25)), replace=False))
        xs.append(x[keep]), ys.append(y[i, keep])
        ws.append(rng_.uniform(0.5, 2.0, len(keep)))
        ss.append(np.abs(y[i, keep]) * 0.01)
    pk = pack(models.get(name), xs, ys, p0=p0, residuals=residuals, sigma=ss,
              weights=ws if weights else None)
    return pk


def units(pk, R):
    P = pk.n_problems
    data_of = np.repeat(np.arange(P), R)
    resample_of = np.tile(np.arange(R), P).astype(np.uint32)
    return data_of, resample_of


def explicit(pk, data_of, resample_of):
    """The units' points copied out, with the resample weights materialised."""
    off = pk.offsets
    n = np.diff(off)
    rows = np.concatenate([np.arange(off[k], off[k + 1]) for k in data_of])
    w = np.concatenate([rng.bootstrap_counts(SEED, [k], [r], int(n[k]))[0]
                        for k, r in zip(data_of, resample_of)]).astype(float)
    if pk.weights is not None:
        w = w * pk.weights[rows]
    offsets = np.concatenate([[0], np.cumsum(n[data_of])]).astype(np.int64)
    return rows, w, offsets


def core_fit(pk, engine, threads, **kw):
    return corecall.fit(_core.fit, pk.model.name, pk.inputs, pk.target, pk.sigma, pk.weights,
                        pk.offsets, kw.pop("p0"), kw.pop("lower"), kw.pop("upper"),
                        log_residuals=pk.log_residuals, loss="soft_l1", f_scale=0.5,
                        n_threads=threads, return_jtj=True, engine=engine, **OPTS, **kw)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_in_core_resamples_equal_explicit_weights(name):
    pk = batch(name, residuals="log" if name != "logistic" else "linear")
    R = 7
    data_of, resample_of = units(pk, R)
    p0 = np.repeat(pk.p0, R, axis=0)
    lower, upper = np.repeat(pk.lower, R, axis=0), np.repeat(pk.upper, R, axis=0)
    rows, w, offsets = explicit(pk, data_of, resample_of)
    want = corecall.fit(_core.fit, pk.model.name, np.ascontiguousarray(pk.inputs[rows]),
                        pk.target[rows],
                        pk.sigma[rows], w, offsets, p0, lower, upper,
                        log_residuals=pk.log_residuals, loss="soft_l1", f_scale=0.5, n_threads=1,
                        return_jtj=True, engine="scalar", **OPTS)
    for engine in ENGINES:
        for threads in (1, 2):
            got = core_fit(pk, engine, threads, p0=p0, lower=lower, upper=upper,
                           data_of=data_of, resample_of=resample_of, seed=SEED)
            assert_bitwise_dicts(got, want)
    # The NumPy reference, solving the materialised resamples, agrees.
    ref = ref_fit(pk.model.name, pk.x[rows], pk.target[rows], pk.sigma[rows], w, offsets, p0,
                  lower, upper, log_residuals=pk.log_residuals, loss="soft_l1", f_scale=0.5,
                  **OPTS)
    ok = (want["status"] > 0) & (ref["status"] > 0)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(want["cost"][ok], ref["cost"][ok], rtol=1e-9)


def test_a_resample_with_too_few_distinct_points_says_so():
    x = np.geomspace(1e6, 1e10, 3)[:, None]
    y = 2.0 + 400 * x[:, 0] ** -0.3
    pk = pack(models.get("saturating_power_law"), [x], [y], p0=[2.0, 400.0, 0.3])
    R = 200  # with 3 points and 3 parameters, many resamples miss a point
    counts = rng.bootstrap_counts(SEED, np.zeros(R, dtype=np.int64), np.arange(R), 3)
    out = core_fit(pk, "auto", 2, p0=np.repeat(pk.p0, R, 0), lower=np.repeat(pk.lower, R, 0),
                   upper=np.repeat(pk.upper, R, 0), data_of=np.zeros(R, dtype=np.int64),
                   resample_of=np.arange(R, dtype=np.uint32), seed=SEED)
    short = (counts > 0).sum(axis=1) < 3
    assert short.any() and not short.all()
    assert np.all(out["status"][short] == lawfit.Status.TOO_FEW_POINTS)
    assert np.all(out["status"][~short] != lawfit.Status.TOO_FEW_POINTS)


def test_resample_of_must_name_every_unit():
    pk = batch("power_law", weights=False)
    with pytest.raises(ValueError, match="resample_of: expected one resample index per unit"):
        core_fit(pk, "auto", 1, p0=pk.p0, lower=pk.lower, upper=pk.upper,
                 resample_of=np.zeros(2, dtype=np.uint32), seed=1)
