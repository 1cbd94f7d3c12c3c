"""Device arrays (CuPy): the batch packed and solved in GPU memory (lawfit/_device.py).

Without a GPU the device path still runs here with NumPy standing in for CuPy and the CPU
core for the kernel: its packing must equal ``pack``'s arrays for every layout it takes, and
its results the host path's, bit for bit.  With a GPU and CuPy, the real thing: CuPy in,
CuPy out, results equal to the CUDA backend's on the same batch copied to the host.
"""
import numpy as np
import pytest

import lawfit
from lawfit import _core, models
from lawfit._device import fit_device, is_device_array, pack_padded
from lawfit._options import Options
from lawfit._packing import Packed, pack

from batches import model_batch
from conftest import COMPILED

SPL = "saturating_power_law"


def cpu_kernel(model, ins, out, options, *, n_problems, fp32, log_residuals):
    """The CPU core in the kernel's place: fills ``out`` from ``ins`` (NumPy arrays)."""
    fn = _core.fit32 if fp32 else _core.fit
    data = dict(x=ins["x"], t=ins["t"], sigma=ins["sigma"], weights=ins["weights"],
                offsets=ins["offsets"], log_residuals=log_residuals)
    r = fn(model.compiled, data, dict(p0=ins["p0"], lower=ins["lower"], upper=ins["upper"]),
           options)
    for key, arr in out.items():
        arr[...] = r[key]


def device_fit(x, y, xp=np, **kw):
    opts = dict(p0=None, sigma=None, weights=None, bounds=(-np.inf, np.inf),
                residuals="linear", loss="linear", f_scale=1.0, ftol=1e-8, xtol=1e-8,
                gtol=1e-8, max_nfev=300, backend="cuda", dtype="float64", unsupported={})
    opts.update(kw)
    model = lawfit.models.get(opts.pop("model", SPL))
    solver = {k: opts.pop(k) for k in ("residuals", "loss", "f_scale", "ftol", "xtol", "gtol",
                                       "max_nfev", "dtype")}
    return fit_device(model, x, y, xp=xp, solve=cpu_kernel,
                      options=Options.build(model.n_params, **solver), **opts)


def layouts():
    x, y, truth, p0 = model_batch(SPL, n_problems=7, n_points=12, seed=2)
    rng = np.random.default_rng(0)
    holes = y.copy()
    holes[rng.uniform(size=y.shape) < 0.2] = np.nan
    sigma = 0.01 * np.abs(y)
    return x, y, holes, sigma, p0


@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize("per_problem_x", [False, True])
@pytest.mark.parametrize("residuals", ["linear", "log"])
def test_device_packing_equals_pack(missing, per_problem_x, residuals):
    x, y, holes, sigma, p0 = layouts()
    yy = holes if missing else y
    xx = np.tile(x[:, 0], (len(y), 1)) if per_problem_x else x  # (P, m), or (m, 1) shared
    w = np.random.default_rng(1).integers(0, 3, y.shape) * 1.0
    kw = dict(sigma=sigma, weights=w, p0=p0, bounds=([0, 0, 0], [10, np.inf, 2]),
              residuals=residuals)
    d = pack_padded(np, models.get(SPL), xx, yy, **kw)
    h = pack(models.get(SPL), xx, yy, **kw)
    assert type(d) is type(h) is Packed
    for key in ("inputs", "target", "y", "x", "sigma", "weights", "offsets", "p0", "lower",
                "upper", "inputs_grid", "n_omitted"):
        a, ref = getattr(d, key), getattr(h, key)
        assert (a is None) == (ref is None), key
        if ref is not None:
            np.testing.assert_array_equal(a, ref, err_msg=key)
            assert a.dtype == ref.dtype
    assert d.log_residuals == h.log_residuals


def test_device_path_results_equal_the_host_path():
    x, y, holes, sigma, p0 = layouts()
    for yy in (y, holes):
        for dtype in ("float64", "float32"):
            a = device_fit(x, yy, p0=p0, sigma=sigma, residuals="log", dtype=dtype,
                           ftol=lawfit.api.DEFAULT_TOL[dtype], xtol=lawfit.api.DEFAULT_TOL[dtype],
                           gtol=lawfit.api.DEFAULT_TOL[dtype])
            b = lawfit.fit(SPL, x, yy, p0=p0, sigma=sigma, residuals="log", dtype=dtype,
                           backend="cpu")
            for key in ("x", "cost", "status", "nfev", "active_mask"):
                np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
            np.testing.assert_array_equal(a.n_points, b.n_points)
            np.testing.assert_array_equal(a.n_omitted, b.n_omitted)
    # Without p0: the data-driven start (computed on the host from one copy).
    a = device_fit(x, holes)
    b = lawfit.fit(SPL, x, holes, backend="cpu")
    np.testing.assert_array_equal(a.x, b.x)


@pytest.mark.parametrize("residuals", ["linear", "log"])
def test_a_laws_device_path_packs_and_solves_as_the_host(residuals):
    """A user's law through the device path (the CPU core in the kernel's place, NumPy in
    CuPy's): its input columns packed as on the host, the same answers."""
    law = lawfit.law("E + A * x**-alpha", inputs=["x"])
    x, y, holes, sigma, p0 = layouts()
    for yy in (y, holes):
        a = device_fit(x, yy, model=law, p0=p0, sigma=sigma, residuals=residuals)
        b = lawfit.fit(law, x, yy, p0=p0, sigma=sigma, residuals=residuals, backend="cpu")
        for key in ("x", "cost", "status", "nfev"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
        assert a.model is law


def test_device_path_errors_name_the_argument():
    x, y, holes, sigma, p0 = layouts()
    with pytest.raises(ValueError, match="return_cov: not available for device arrays"):
        device_fit(x, y, p0=p0, unsupported=dict(return_cov=True))
    with pytest.raises(ValueError, match="backend: device arrays are solved on the GPU"):
        device_fit(x, y, p0=p0, backend="cpu")
    with pytest.raises(ValueError, match="x: expected shape"):
        device_fit(x[:5], y, p0=p0)
    with pytest.raises(ValueError, match="y: a device batch is a padded 2-D"):
        device_fit(x, y[None], p0=p0)
    with pytest.raises(ValueError, match="sigma: must be > 0"):
        device_fit(x, y, p0=p0, sigma=-sigma)
    with pytest.raises(ValueError, match="weights: must be >= 0"):
        device_fit(x, y, p0=p0, weights=-np.ones_like(y))
    with pytest.raises(ValueError, match=r"p0: parameter 'E' of problem 0 is .*, outside its bounds"):
        device_fit(x, y, p0=p0, bounds=(0, 1))
    with pytest.raises(ValueError, match="p0: must be finite; parameter 'E' of problem 0 is nan"):
        device_fit(x, y, p0=np.full(3, np.nan))
    with pytest.raises(ValueError, match=r"p0: expected a scalar, shape \(3,\) or \(7, 3\)"):
        device_fit(x, y, p0=p0[:2])


class FakeDeviceArray:
    __cuda_array_interface__ = {}


def test_device_arrays_are_recognised_and_need_the_gpu():
    assert is_device_array(FakeDeviceArray()) and not is_device_array(np.zeros(2))
    if "cuda" in COMPILED:
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="backend: 'cuda' is not available"):
        lawfit.fit(SPL, FakeDeviceArray(), FakeDeviceArray(), p0=[1.0, 1.0, 0.3])
    with pytest.raises(ValueError, match="k: not available for device arrays"):
        lawfit.fit(SPL, FakeDeviceArray(), FakeDeviceArray(), p0=lawfit.grid(E=[1.0]))


@pytest.mark.gpu
@pytest.mark.skipif("cuda" not in COMPILED, reason="needs a GPU and lawfit._cuda")
def test_cupy_in_cupy_out_without_a_host_copy():
    cp = pytest.importorskip("cupy")
    x, y, holes, sigma, p0 = layouts()
    for yy in (y, holes):
        gx, gy, gs, gp = (cp.asarray(a) for a in (x, yy, sigma, p0))
        r = lawfit.fit(SPL, gx, gy, p0=gp, sigma=gs, residuals="log")
        assert isinstance(r.x, cp.ndarray) and isinstance(r.status, cp.ndarray)
        h = lawfit.fit(SPL, x, yy, p0=p0, sigma=sigma, residuals="log", backend="cuda")
        np.testing.assert_array_equal(r.x.get(), h.x)
        np.testing.assert_array_equal(r.status.get(), h.status)
    # fp32 on the device too.
    r = lawfit.fit(SPL, cp.asarray(x), cp.asarray(y), p0=cp.asarray(p0), dtype="float32")
    assert r.x.dtype == cp.float64 and bool((r.status > 0).all())


class HostCopyable(np.ndarray):
    """A NumPy array with CuPy's ``get()`` (a copy to the host), to stand in for one."""

    def get(self):
        return np.asarray(self).copy()


def test_device_results_come_to_the_host_with_get():
    x, y, holes, sigma, p0 = layouts()
    r = device_fit(x, holes, p0=p0)
    wrapped = object.__new__(type(r))
    wrapped.__dict__.update({k: v.view(HostCopyable) if isinstance(v, np.ndarray) else v
                             for k, v in r.__dict__.items()})
    h = wrapped.get()
    assert type(h.x) is np.ndarray and type(h.status) is np.ndarray
    np.testing.assert_array_equal(h.x, r.x)
    assert list(wrapped.message) == list(r.message)
    assert wrapped.status_counts() == r.status_counts()
    pd = pytest.importorskip("pandas")
    pd.testing.assert_frame_equal(wrapped.to_frame(), r.to_frame())
