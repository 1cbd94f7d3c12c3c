"""The CPU driver's engines: the scalar solve and the SIMD builds (lanes.h) agree bitwise.

lawfit._core holds one SIMD build per instruction set (on x86-64: AVX-512 with 8 lanes, AVX2
with 4, and the baseline with 4) and picks the best this CPU runs; ``engine="scalar"`` runs
lm.h's solve() one problem at a time.  A lane performs the scalar solve's arithmetic
operation for operation, so every engine must return bitwise the same result for every
problem: every model, loss and residual space, with bounds, fixed parameters, sigma,
weights, missing points, bad problems, ragged sizes (lanes padded with zero weights) and
problems too large for the lanes.
"""
from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings

import lawfit
from lawfit import _backends

from batches import MODEL_NAMES, model_batch
from test_properties import SETTINGS, batches

_core = pytest.importorskip("lawfit._core")

ENGINES = [name for name, _, ok in _core.engines() if ok]
FIELDS = ("x", "cost", "status", "nfev", "njev", "nit", "optimality", "active_mask", "cov")
LOSSES = ["linear", "soft_l1", "huber", "cauchy", "arctan"]


def fit(name: str, *args, **kw):
    with np.errstate(all="ignore"):
        return lawfit.fit(*args, backend=_backends.Cpu(engine=name), **kw)


def assert_bitwise(a, b, what: str):
    for f in FIELDS:
        u, v = getattr(a, f), getattr(b, f)
        if u is None and v is None:
            continue
        u, v = np.asarray(u), np.asarray(v)
        if u.dtype.kind == "f":
            nan = np.isnan(u)  # NaN's sign is not a result
            assert np.array_equal(nan, np.isnan(v)), f"{what}: NaNs of {f!r} differ"
            u, v = u[~nan].view(np.int64), v[~nan].view(np.int64)
        bad = np.flatnonzero(np.atleast_1d(u != v))
        assert bad.size == 0, f"{what}: field {f!r} differs at {bad[:5]}"


def test_auto_engine_is_a_supported_build():
    assert _core.auto_engine() in ["scalar", *ENGINES]
    names = [n for n, _, _ in _core.engines()]
    assert "generic" in names and all(w in (2, 4, 8) for _, w, _ in _core.engines())


def ragged(model: str, loss: str, residuals: str, seed: int):
    """A ragged batch of 37 problems (3 to 30 points) with sigma, weights (some zero), bounds
    (some active, one parameter fixed in some problems), a non-finite problem and a too-short
    one."""
    rng = np.random.default_rng(seed)
    x, y, truth, p0 = model_batch(model, n_problems=37, n_points=30, seed=seed)
    xs, ys, sig, ws = [], [], [], []
    for i in range(len(y)):
        m = int(rng.integers(3, 31))
        keep = np.sort(rng.choice(30, m, replace=False))
        xs.append(x[keep]), ys.append(y[i, keep])
        sig.append(rng.uniform(0.5, 2.0, m) * np.abs(y[i, keep]) * 0.01)
        ws.append(np.where(rng.uniform(size=m) < 0.1, 0.0, rng.uniform(0.5, 2.0, m)))
    ys[5] = ys[5].copy()
    ys[5][0], ws[5][0] = np.inf, 1.0  # NONFINITE_DATA (a NaN would mark a missing point)
    xs[6], ys[6], sig[6], ws[6] = xs[6][:1], ys[6][:1], sig[6][:1], ws[6][:1]  # too short
    lower, upper = np.full_like(p0, -np.inf), np.full_like(p0, np.inf)
    lower[::3] = p0[::3] - 0.02 * np.abs(p0[::3])  # tight boxes: some bounds become active
    upper[::3] = p0[::3] + 0.02 * np.abs(p0[::3])
    lower[1::4, 0] = upper[1::4, 0] = p0[1::4, 0]  # a fixed parameter
    return xs, ys, dict(p0=p0, sigma=sig, weights=ws, bounds=(lower, upper), loss=loss,
                        residuals=residuals, return_cov=True)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_model_and_objective(model):
    for k, (loss, residuals) in enumerate([(lo, r) for lo in LOSSES for r in ("linear", "log")]):
        xs, ys, kw = ragged(model, loss, residuals, seed=k)
        ref = fit("scalar", model, xs, ys, **kw)
        assert (ref.status == lawfit.Status.NONFINITE_DATA).sum() >= 1
        assert (ref.status == lawfit.Status.TOO_FEW_POINTS).sum() >= 1
        for name in ENGINES:
            assert_bitwise(fit(name, model, xs, ys, **kw), ref, f"{model} {loss} {residuals} {name}")
        # Without bounds, the lanes skip the bound tests (Lanes<..., kBounded = false>).
        del kw["bounds"]
        ref = fit("scalar", model, xs, ys, **kw)
        for name in ENGINES:
            assert_bitwise(fit(name, model, xs, ys, **kw), ref,
                           f"{model} {loss} {residuals} {name}, no bounds")


def test_padded_shared_grid_with_missing_points():
    x, y, _, p0 = model_batch("chinchilla", n_problems=203, n_points=25, seed=4)
    y = y.copy()
    y[::5, ::4] = np.nan
    ref = fit("scalar", "chinchilla", x, y, p0=p0)
    assert ref.success.mean() > 0.9
    for name in ENGINES:
        for threads in (1, 2, 3):
            assert_bitwise(fit(name, "chinchilla", x, y, p0=p0, n_threads=threads), ref,
                           f"{name}, {threads} threads")


def test_problems_too_large_for_the_lanes():
    """Problems over the lanes' size limit (4096 points) go to the scalar solve, beside lane
    problems of every size."""
    rng = np.random.default_rng(7)
    sizes = [5000, 3, 20, 4097, 4096, 50, 6000, 8]
    xs = [np.geomspace(1e6, 1e10, m) for m in sizes]
    ys = [1.8 + 600 * x ** -0.34 * (1 + 0.01 * rng.standard_normal(x.size)) for x in xs]
    ref = fit("scalar", "saturating_power_law", xs, ys, p0=[1.5, 500.0, 0.3])
    assert ref.success.all()
    for name in ENGINES:
        assert_bitwise(fit(name, "saturating_power_law", xs, ys, p0=[1.5, 500.0, 0.3]), ref, name)


def test_groups_side_by_side_with_singular_neighbours():
    """A thread's two groups of lanes run each phase of a round side by side
    (Lanes::run_groups): singular problems (every x equal, so J^T J has rank one and the
    damped solves are near-singular) scattered among regular ones of several sizes keep the
    groups' lanes in different phases; every problem's result stays the scalar solve's, on 1
    to 3 threads."""
    rng = np.random.default_rng(11)
    xs, ys = [], []
    for i in range(150):
        m = int(rng.integers(6, 40))
        if i % 7 == 3:
            x = np.full(m, 1e8)
        else:
            x = np.geomspace(1e6, 1e10, m)
        xs.append(x)
        ys.append(1.8 + 600 * x ** -0.34 * (1 + 0.01 * rng.standard_normal(m)))
    p0 = np.column_stack([rng.uniform(1.0, 3.0, 150), rng.uniform(100, 2000, 150),
                          rng.uniform(0.1, 0.6, 150)])
    ref = fit("scalar", "saturating_power_law", xs, ys, p0=p0)
    assert ref.success[np.arange(150) % 7 != 3].mean() > 0.9
    for name in ENGINES:
        for threads in (1, 2, 3):
            got = fit(name, "saturating_power_law", xs, ys, p0=p0, n_threads=threads)
            assert_bitwise(got, ref, f"{name}, {threads} threads")


@settings(max_examples=60, **SETTINGS)
@given(batch=batches())
def test_random_batches(batch):
    """The property tests' random ragged batches, full of trouble, on every engine."""
    x, y, kw = batch.kwargs()
    ref = fit("scalar", batch.model, x, y, **kw)
    for name in ENGINES:
        assert_bitwise(fit(name, batch.model, x, y, **kw), ref, name)


def test_unknown_engine_is_refused_before_any_work():
    x, y, _, p0 = model_batch("saturating_power_law", n_problems=3)
    with pytest.raises(ValueError, match="engine"):
        fit("sse9", "saturating_power_law", x, y, p0=p0)
