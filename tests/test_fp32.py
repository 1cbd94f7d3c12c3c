"""fp32 on request (``dtype="float32"``): the scalar solve instantiated for float.

The CUDA backend's fp32 kernels run this same instantiation (batch.h's solve_in_batch<Model>
with T = float); the CPU runs it here, so that its math is checked without a GPU.  fp32 cannot
match fp64 bit for bit or to 1e-10: the contract (api.DEFAULT_TOL) is that with fp32's default
tolerances (1e-5) every fit that succeeds in fp64 succeeds, and at least 97% of them end where
the fp64 cost is within 1e-3 relative of fp64's optimum.
"""
import numpy as np
import pytest

import lawfit
from lawfit import _backends, models
from lawfit._options import Options
from lawfit._packing import pack

from batches import MODEL_NAMES, model_batch
from conftest import COMPILED


def fp64_cost_at(name, pk, params, loss):
    return _backends.Cpu().objective(pk, Options(loss=loss), params,
                                     _backends.Units(np.arange(pk.n_problems)))


def reaches_fp64_optimum(name, residuals, backend, loss="soft_l1"):
    x, y, truth, p0 = model_batch(name, n_problems=300, seed=11)
    kw = dict(p0=p0, residuals=residuals, loss=loss)
    a = lawfit.fit(name, x, y, backend="cpu", **kw)
    b = lawfit.fit(name, x, y, backend=backend, dtype="float32", **kw)
    assert b.x.dtype == np.float64  # reported as float64
    assert np.array_equal(a.success, b.success)
    assert a.success.mean() > 0.95
    pk = pack(models.get(name), x, y, p0=p0, residuals=residuals)
    rel = (fp64_cost_at(name, pk, b.x, loss) - a.cost) / a.cost
    ok = a.success
    assert np.mean(rel[ok] <= 1e-3) >= 0.97, (name, residuals, np.sort(rel[ok])[-10:])
    return a, b


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("residuals", ["linear", "log"])
def test_fp32_reaches_the_fp64_optimum(name, residuals):
    a, b = reaches_fp64_optimum(name, residuals, "cpu")
    # It is fp32 arithmetic, not fp64 relabelled: the solutions differ in the last places.
    assert not np.array_equal(a.x, b.x)
    assert np.all(b.x[b.success] == b.x[b.success].astype(np.float32))


def test_fp32_keeps_bad_problems_to_themselves():
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=6, seed=3)
    bad = y.copy()
    bad[2, 4] = np.inf
    a = lawfit.fit("saturating_power_law", x, y, p0=p0, dtype="float32", backend="cpu")
    b = lawfit.fit("saturating_power_law", x, bad, p0=p0, dtype="float32", backend="cpu")
    assert lawfit.Status(int(b.status[2])) == lawfit.Status.NONFINITE_DATA
    keep = np.arange(6) != 2
    np.testing.assert_array_equal(a.x[keep], b.x[keep])
    np.testing.assert_array_equal(a.status[keep], b.status[keep])


def test_fp32_grid_and_bootstrap():
    x, y, truth, p0 = model_batch("chinchilla_log", n_problems=3, n_points=40, seed=7,
                                  noise=0.02)
    starts = np.random.default_rng(3).uniform([0, 0, -1, 0, 0], [25, 25, 1, 2, 2], (30, 5))
    g = lawfit.grid(starts=starts)
    kw = dict(p0=g, k=8, residuals="log", loss="huber", f_scale=1e-3, backend="cpu")
    a = lawfit.fit("chinchilla_log", x, y, **kw)
    b = lawfit.fit("chinchilla_log", x, y, dtype="float32", **kw)
    np.testing.assert_allclose(b.cost, a.cost, rtol=1e-3)
    # The grid is ranked in fp32 too: the start costs agree to fp32's precision.
    np.testing.assert_allclose(b.start_cost[a.best_start == b.best_start],
                               a.start_cost[a.best_start == b.best_start], rtol=1e-5)
    bs = dict(n_resamples=40, seed=5, residuals="log", backend="cpu")
    c = lawfit.bootstrap("saturating_power_law", *model_batch("saturating_power_law",
                                                               n_problems=2, seed=1)[:2], **bs)
    d = lawfit.bootstrap("saturating_power_law", *model_batch("saturating_power_law",
                                                               n_problems=2, seed=1)[:2],
                         dtype="float32", **bs)
    assert np.array_equal(c.converged, d.converged)
    ok = c.converged
    # Each resample is a fit: its parameters as fp32 determines them (here within 2e-4).
    np.testing.assert_allclose(d.samples[ok], c.samples[ok], rtol=1e-3)
    np.testing.assert_allclose(d.se, c.se, rtol=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif("cuda" not in COMPILED, reason="needs a GPU and lawfit._cuda")
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_cuda_fp32_meets_the_same_contract(name):
    # The device's fp32 (its own expf/logf, contracted FMAs) follows other paths than the
    # CPU's; both must meet the contract.
    reaches_fp64_optimum(name, "log", "cuda")
