"""Batches whose arrays are already on the GPU (CuPy, or anything with
``__cuda_array_interface__``): validated and packed on the device, solved in place.

``fit`` sends a call here when ``y`` (or ``x``, ``sigma``, ``weights``, ``p0``) is a device
array.  The per-point data never visit the host: packing is array arithmetic in CuPy (a
reshape where no point is missing, one gather where NaN marks missing points), the checks
that need the values are reductions that bring back a scalar each, and the kernel reads
and writes CuPy's memory through its pointers.  The results are CuPy arrays.

The packing is ``_packing``'s, written once against an array module ``xp`` (CuPy here;
NumPy in the tests, which hold it to ``pack``'s arrays): :func:`~lawfit._packing.pack_padded`
returns the same ``Packed`` every backend takes, its arrays in CuPy's memory.  Supported: a
padded 2-D ``y`` (problems x points) or a 1-D ``y`` (one problem), ``x`` shared or per
problem (a NaN in ``y`` or ``x`` is a missing point, under ``nan_policy`` as on the host),
``sigma`` and ``weights`` shaped like ``y``, ``p0`` (required unless the model has a
data-driven guess, which is then computed on the host from one copy of the data),
scipy-style ``bounds``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._packing import Packed, pack, pack_padded

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
                         "pip install 'lawfit[cuda]' (cupy-cuda13x)") from None
    return cupy


def _cuda_solve(model, ins: dict, out: dict, options, **kw) -> None:
    """lawfit._cuda.fit_device on CuPy arrays: the kernel reads and writes them in place.  A
    user's law's kernels are compiled by NVRTC for the call (lawfit/_nvrtc.py)."""
    from . import _cuda

    def ptr(a):
        return 0 if a is None else int(a.__cuda_array_interface__["data"][0])

    image = b""
    if model.is_law:
        from . import _backends, _nvrtc

        _backends.resolve("cuda", model=model)
        if _nvrtc.library()[0] is None:
            raise ValueError(f"model: the law '{model.name}' is compiled for the GPU with "
                             f"NVRTC: {_nvrtc.library()[1]}")
        image = _nvrtc.cubin(model, _cuda.device_arch(), kw["fp32"], options.loss,
                             kw["log_residuals"])
    _cuda.fit_device(model.compiled, {k: ptr(v) for k, v in ins.items()},
                     {k: ptr(v) for k, v in out.items()}, options, image=image, **kw)


def solve_packed(xp, packed: Packed, options, solve=_cuda_solve) -> dict:
    """Solves a batch packed by pack_padded (its arrays ``xp``'s) into new arrays of ``xp``
    (``fit``'s result arrays), with ``options`` (lawfit._options.Options).
    ``solve(model, inputs, outputs, options, n_problems=, fp32=, log_residuals=)``
    fills the outputs: the CUDA kernel (on CuPy arrays); the tests pass the CPU core (on
    NumPy arrays)."""
    dtype = options.dtype
    ft = xp.float32 if dtype == "float32" else xp.float64
    P = packed.n_problems
    n = packed.lower.shape[1]

    def cast(a):
        return None if a is None else xp.ascontiguousarray(a, dtype=ft)

    out = dict(x=xp.empty((P, n), ft), cost=xp.empty(P, ft), optimality=xp.empty(P, ft),
               active_mask=xp.empty((P, n), xp.int8), status=xp.empty(P, xp.int32),
               nfev=xp.empty(P, xp.int32), njev=xp.empty(P, xp.int32),
               nit=xp.empty(P, xp.int32))
    ins = dict(x=cast(packed.inputs), t=cast(packed.target), sigma=cast(packed.sigma),
               weights=cast(packed.weights), offsets=packed.offsets, p0=cast(packed.p0),
               lower=cast(packed.lower), upper=cast(packed.upper))
    solve(packed.model, ins, out, options, n_problems=P, fp32=dtype == "float32",
          log_residuals=packed.log_residuals)
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
    if packed.p0 is None:
        # The data-driven start is computed on the host: the one copy of the data this path
        # makes, and only when no p0 was given.
        def host(a):
            return None if a is None else (a.get() if hasattr(a, "get") else np.asarray(a))

        hp = pack(model, host(xp.asarray(x)), host(xp.asarray(y)), sigma=host(sigma),
                  weights=host(weights), bounds=tuple(host(b) for b in bounds),
                  residuals=options.residuals, nan_policy=nan_policy)
        packed.p0 = xp.asarray(hp.p0)
    out = solve_packed(xp, packed, options, solve=solve)
    out["n_omitted"] = xp.zeros(packed.n_problems, dtype=xp.int64) \
        if packed.n_omitted is None else packed.n_omitted
    return FitResult(model, out, xp.diff(packed.offsets), backend="cuda",
                     offsets=packed.offsets)
