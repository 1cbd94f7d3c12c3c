"""Batches whose arrays are already on the GPU (CuPy, or anything with
``__cuda_array_interface__``): validated and packed on the device, solved in place.

``fit`` sends a call here when ``y`` (or ``x``, ``sigma``, ``weights``, ``p0``) is a device
array.  The per-point data never visit the host: packing is array arithmetic in CuPy (a
reshape where no point is missing, one gather where NaN marks missing points), the checks
that need the values are reductions that bring back one boolean each, and the kernel reads
and writes CuPy's memory through its pointers.  The results are CuPy arrays.

The packing is written once against an array module ``xp`` (CuPy here; NumPy in the tests,
which hold it to ``pack``'s arrays, so the device path packs exactly what the host path
does).  Supported: a padded 2-D ``y`` (problems x points) or a 1-D ``y`` (one problem), ``x``
shared or per problem (a NaN in ``y`` or ``x`` is a missing point, under ``nan_policy`` as on
the host), ``sigma`` and ``weights`` shaped like ``y``,
``p0`` (required unless the model has a data-driven guess, which is then computed on the host
from one copy of the data), scipy-style ``bounds``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._options import check_residuals
from ._packing import check_nan_policy, validate_bounds

__all__ = ["is_device_array", "pack_padded", "solve_packed"]


def is_device_array(a: Any) -> bool:
    """True for an array in GPU memory (CuPy, PyTorch on CUDA, Numba device arrays ...)."""
    return hasattr(a, "__cuda_array_interface__")


def cupy_module():
    """CuPy, or a ValueError saying that device arrays need it."""
    try:
        import cupy
    except ImportError:
        raise ValueError("y: device arrays (__cuda_array_interface__) need CuPy: "
                         "pip install cupy-cuda12x") from None
    return cupy


def _first_bad(xp, bad, values, name: str, what: str):
    """Raises ValueError naming ``name`` when any entry of ``bad`` holds (one scalar back)."""
    if bool(xp.any(bad)):
        first = np.asarray(values[bad].ravel()[:1].tolist())[0]
        raise ValueError(f"{name}: {what}; found {first}")


def _device_float(xp, a, name: str):
    """``a`` as a float64 array of ``xp``; complex numbers refused, naming ``name``."""
    arr = xp.asarray(a)
    if arr.dtype.kind == "c":
        raise ValueError(f"{name}: complex numbers are not supported (got dtype {arr.dtype}); "
                         f"pass real values")
    return arr.astype(xp.float64, copy=False)


def pack_padded(xp, model, x, y, *, p0=None, sigma=None, weights=None,
                bounds=(-np.inf, np.inf), residuals: str = "linear",
                nan_policy: str = "omit") -> dict:
    """The packed arrays of a padded batch, in ``xp``'s memory: inputs (M, k) (the model's),
    target (M,) (y or log y), sigma, weights (M,) or None, offsets (P + 1,) int64, lower,
    upper (P, n), p0 (P, n) or None (the caller computes the guess), log_residuals; the
    arrays ``lawfit._core.fit`` and the CUDA kernels take, equal to those of
    ``_packing.pack`` for the same batch."""
    check_residuals(residuals)
    check_nan_policy(nan_policy)
    ya = _device_float(xp, y, "y")
    if ya.ndim == 1:
        ya = ya[None, :]
    if ya.ndim != 2:
        raise ValueError(f"y: a device batch is a padded 2-D (problems, points) array or one "
                         f"problem's 1-D array, got {ya.ndim}-D")
    P, m = ya.shape
    k = model.n_inputs
    xa = _device_float(xp, x, "x")
    if k == 1 and xa.shape in ((m,), (P, m)):
        xa = xa[..., None]
    if xa.shape == (m, k):
        xa = xp.broadcast_to(xa, (P, m, k))
    if xa.shape != (P, m, k):
        raise ValueError(
            f"x: expected shape ({P}, {m}{', ' + str(k) if k > 1 else ''}) or a shared grid of "
            f"{m} points to match the padded y of shape {ya.shape}, got {xa.shape}")
    per_point = {}
    for name, val in (("sigma", sigma), ("weights", weights)):
        if val is None:
            per_point[name] = None
            continue
        va = _device_float(xp, val, name)
        try:
            per_point[name] = xp.broadcast_to(va, (P, m))
        except ValueError:
            raise ValueError(f"{name}: shape {va.shape} does not match y's {ya.shape}") from None
    # A point is missing where y or an input of x is NaN (one boolean back to the host to
    # say whether any is).
    if nan_policy == "propagate":
        present = xp.ones(ya.shape, dtype=bool)
    else:
        present = ~(xp.isnan(ya) | xp.isnan(xa).any(axis=-1))
    full = bool(xp.all(present))
    if not full and nan_policy == "raise":
        i, j = (int(v) for v in np.asarray(xp.argwhere(~present)[0].tolist()))
        arg = "y" if bool(xp.isnan(ya[i, j])) else "x"
        raise ValueError(f"{arg}: NaN at {arg}[{i}, {j}] (nan_policy='raise'; the default "
                         f"'omit' leaves a NaN point out as missing)")

    def take(arr, width=None):
        if full:
            return xp.ascontiguousarray(arr.reshape(P * m, width) if width else
                                        arr.reshape(P * m))
        return xp.ascontiguousarray(arr[present])

    sig, w = (None if per_point[n] is None else take(per_point[n]) for n in ("sigma", "weights"))
    if sig is not None:
        _first_bad(xp, ~xp.isnan(sig) & (sig <= 0), sig, "sigma",
                   "must be > 0 (use weights=0 to drop a point)")
    if w is not None:
        _first_bad(xp, w < 0, w, "weights", "must be >= 0")
    offsets = xp.arange(P + 1, dtype=xp.int64) * m if full else \
        xp.concatenate([xp.zeros(1, dtype=xp.int64), xp.cumsum(present.sum(axis=1),
                                                               dtype=xp.int64)])
    yy = take(ya)
    log = residuals == "log"
    with np.errstate(all="ignore"):
        t = xp.log(yy) if log else yy
        u = take(xp.log(xa) if model.log_inputs else xa, k)
    names = model.param_names
    lower, upper = validate_bounds(bounds, P, names)  # small, given on the host
    lower, upper = xp.asarray(np.ascontiguousarray(lower)), xp.asarray(np.ascontiguousarray(upper))
    p0a = None
    if p0 is not None:
        p0a = _device_float(xp, p0, "p0")
        if p0a.shape == (len(names),):
            p0a = xp.broadcast_to(p0a, (P, len(names)))
        if p0a.shape != (P, len(names)):
            raise ValueError(f"p0: expected shape ({len(names)},) or ({P}, {len(names)}), got "
                             f"{p0a.shape}")
        p0a = xp.ascontiguousarray(p0a)
        _first_bad(xp, ~xp.isfinite(p0a), p0a, "p0", "must be finite")
        _first_bad(xp, (p0a < lower) | (p0a > upper), p0a, "p0", "outside its bounds")
    return dict(inputs=u, target=xp.ascontiguousarray(t), y=yy, sigma=sig, weights=w,
                offsets=offsets, p0=p0a, lower=lower, upper=upper, log_residuals=log, n_points=m if full else
                None, n_omitted=m - present.sum(axis=1, dtype=xp.int64))


def _cuda_solve(model_name: str, ins: dict, out: dict, options, **kw) -> None:
    """lawfit._cuda.fit_device on CuPy arrays: the kernel reads and writes them in place."""
    from . import _cuda

    def ptr(a):
        return 0 if a is None else int(a.__cuda_array_interface__["data"][0])

    _cuda.fit_device(model_name, {k: ptr(v) for k, v in ins.items()},
                     {k: ptr(v) for k, v in out.items()}, options, **kw)


def solve_packed(xp, packed: dict, model_name: str, options, solve=_cuda_solve) -> dict:
    """Solves a batch packed by pack_padded into new arrays of ``xp`` (``fit``'s result
    arrays), with ``options`` (lawfit._options.Options).  ``solve(model_name, inputs,
    outputs, options, n_problems=, fp32=, log_residuals=)`` fills the outputs: the CUDA
    kernel (on CuPy arrays); the tests pass the CPU core (on NumPy arrays)."""
    dtype = options.dtype
    ft = xp.float32 if dtype == "float32" else xp.float64
    P = len(packed["offsets"]) - 1
    n = packed["lower"].shape[1]

    def cast(a):
        return None if a is None else xp.ascontiguousarray(a, dtype=ft)

    out = dict(x=xp.empty((P, n), ft), cost=xp.empty(P, ft), optimality=xp.empty(P, ft),
               active_mask=xp.empty((P, n), xp.int8), status=xp.empty(P, xp.int32),
               nfev=xp.empty(P, xp.int32), njev=xp.empty(P, xp.int32),
               nit=xp.empty(P, xp.int32))
    ins = dict(x=cast(packed["inputs"]), t=cast(packed["target"]), sigma=cast(packed["sigma"]),
               weights=cast(packed["weights"]), offsets=packed["offsets"],
               p0=cast(packed["p0"]), lower=cast(packed["lower"]), upper=cast(packed["upper"]))
    solve(model_name, ins, out, options, n_problems=P, fp32=dtype == "float32",
          log_residuals=packed["log_residuals"])
    if dtype == "float32":
        for key in ("x", "cost", "optimality"):
            out[key] = out[key].astype(xp.float64)
    return out


def fit_device(model, x, y, *, p0, sigma, weights, bounds, options, backend,
               unsupported: dict, xp=None, solve=_cuda_solve, nan_policy: str = "omit"):
    """``lawfit.fit`` for device arrays (see the module docstring): a FitResult of ``xp``
    arrays, solved with ``options`` (lawfit._options.Options).  ``unsupported``: fit's
    arguments this path does not take, by name, each set to whether the call used it."""
    from ._result import FitResult

    for name, used in unsupported.items():
        if used:
            raise ValueError(f"{name}: not available for device arrays (the batch is "
                             "solved in GPU memory); copy the arrays to the host to use it")
    if backend not in ("auto", "cuda"):
        raise ValueError(f"backend: device arrays are solved on the GPU, not {backend!r}; "
                         "use 'cuda' or 'auto', or copy the arrays to the host")
    if xp is None:
        from . import _backends

        _backends.resolve("cuda")  # a ValueError saying why, where there is no GPU
        xp = cupy_module()
    packed = pack_padded(xp, model, x, y, p0=p0, sigma=sigma, weights=weights, bounds=bounds,
                         residuals=options.residuals, nan_policy=nan_policy)
    if packed["p0"] is None:
        # The data-driven start is computed on the host: the one copy of the data this path
        # makes, and only when no p0 was given.
        from ._packing import pack

        def host(a):
            return None if a is None else (a.get() if hasattr(a, "get") else np.asarray(a))

        hp = pack(model, host(xp.asarray(x)), host(xp.asarray(y)), sigma=host(sigma),
                  weights=host(weights), bounds=bounds, residuals=options.residuals,
                  nan_policy=nan_policy)
        packed["p0"] = xp.asarray(hp.p0)
    out = solve_packed(xp, packed, model.name, options, solve=solve)
    out["n_omitted"] = packed["n_omitted"]
    return FitResult(model, out, xp.diff(packed["offsets"]), backend="cuda",
                     offsets=packed["offsets"])
