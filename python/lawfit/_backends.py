"""The backends that solve a packed batch, and which of them this installation has.

``cpu``: the compiled C++ driver (``lawfit._core``), threads, GIL released.
``cuda``: the compiled CUDA kernels (``lawfit._cuda``), built where ``nvcc`` was found, usable
where a GPU is present.  ``numpy``: the independent NumPy reference (``lawfit.reference``).
All three take the same packed batch and return the same dictionary of arrays.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ._packing import Packed, shared_row

BACKENDS = ("auto", "cpu", "cuda", "numpy")

# The CPU driver's engine: "auto" (the best SIMD build this CPU runs; see
# lawfit._core.engines() and auto_engine()), "scalar", or a build's name.  Every engine gives
# bitwise the same results; the tests set this to compare them.
cpu_engine = "auto"


def _load_core():
    try:
        from . import _core
    except ImportError as exc:  # pragma: no cover - only on a broken install
        return None, str(exc)
    return _core, None


def _load_cuda():
    try:
        from . import _cuda
    except ImportError as exc:
        return None, f"lawfit._cuda is not built or cannot load ({exc})"
    try:
        n = _cuda.device_count()
    except Exception as exc:  # pragma: no cover - driver trouble
        return None, f"the CUDA driver failed: {exc}"
    if n == 0:
        return None, "lawfit._cuda is built, but no CUDA device is visible"
    return _cuda, None


def backends() -> dict:
    """Each backend's availability: ``{name: (available, reason if not)}``."""
    core, why_core = _load_core()
    cuda, why_cuda = _load_cuda()
    return {
        "cpu": (core is not None, why_core or ""),
        "cuda": (cuda is not None, why_cuda or ""),
        "numpy": (True, ""),
    }


# ``auto`` sends a call to the GPU from this many solve units (problems x starts x resamples)
# on: below it, a launch and the copies cost more than the CPU's threads take for the batch
# (bench/RESULTS.md: on an H100 the end-to-end GPU rate already leads 16 CPU threads at
# 10,000 fits, and the first call also pays for creating the CUDA context).
AUTO_CUDA_MIN_UNITS = 100_000


def resolve(backend: str, n_units: Optional[int] = None) -> str:
    """The concrete backend for ``backend``.  ``auto``: ``cuda`` where it is available and
    the call solves at least AUTO_CUDA_MIN_UNITS units (``n_units``), else ``cpu`` (else,
    on a broken install, ``numpy``)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if backend == "numpy":
        return backend
    if backend == "auto":
        if n_units is not None and n_units >= AUTO_CUDA_MIN_UNITS and \
                _load_cuda()[0] is not None:
            return "cuda"
        return "cpu" if _load_core()[0] is not None else "numpy"
    module, why = _load_core() if backend == "cpu" else _load_cuda()
    if module is None:
        raise ValueError(f"backend: {backend!r} is not available: {why}")
    return backend


def rouse(backend: str, n_threads: Optional[int], n_units: int, points: int) -> None:
    """Before validating and packing a call for ``backend``: wake the CPU driver's pooled
    helper threads that it will use, so that their wake-up (0.1 ms or more on a virtual
    machine) overlaps the packing rather than delaying the solve."""
    if backend == "cpu":
        _load_core()[0].rouse_helpers(int(n_threads or 0), int(n_units), int(points))


RESAMPLE_MODES = {"pairs": 0, "grouped": 1, "jackknife": 2, "grouped_jackknife": 3,
                  "residual": 4}


def local_groups(packed: Packed):
    """Each point's cluster as an index within its problem (0, 1, ... in label order) and
    each problem's number of clusters: group_of (M,) int32, n_groups (P,) int32."""
    c = packed.clusters
    P = packed.n_problems
    owner = np.repeat(np.arange(P), packed.n_points)
    order = np.lexsort((c, owner))
    so, sc = owner[order], c[order]
    new = np.ones(len(c), dtype=bool)
    new[1:] = (so[1:] != so[:-1]) | (sc[1:] != sc[:-1])
    gid = np.cumsum(new) - 1  # a global id per (problem, cluster), in sorted order
    n_groups = np.bincount(so[new], minlength=P).astype(np.int32)
    first = np.concatenate([[0], np.cumsum(n_groups)[:-1]])
    group_of = np.empty(len(c), dtype=np.int32)
    group_of[order] = gid - first[so]
    return group_of, n_groups


def _expand_units(packed: Packed, data_of: np.ndarray, resample_of=None, seed: int = 0,
                  mode: int = 0, fit_t=None, fit_r=None):
    """The raw inputs, targets, sigma, weights and offsets of a batch in which unit i holds a
    copy of problem data_of[i]'s points (with resample_of, weighted by the bootstrap counts
    of lawfit.reference.rng): how the NumPy reference runs units."""
    off = packed.offsets
    counts = np.diff(off)[data_of]
    offsets = np.zeros(len(data_of) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    rows = np.repeat(off[data_of] - offsets[:-1], counts) + np.arange(offsets[-1])
    pick = (lambda a: None if a is None else a[rows])
    w = pick(packed.weights)
    t = packed.t[rows]
    if resample_of is not None and mode == 4:  # the residual bootstrap: new targets
        from .reference.rng import bootstrap_indices

        resample_of = np.asarray(resample_of, dtype=np.int64)
        sig = np.ones(len(rows)) if packed.sigma is None else packed.sigma[rows]
        for n in np.unique(counts):
            units = np.flatnonzero(counts == n)
            idx = bootstrap_indices(seed, data_of[units], resample_of[units], int(n))
            src = off[data_of[units]][:, None] + idx  # the drawn point, in the packed arrays
            at = (offsets[units][:, None] + np.arange(n)[None, :])
            t[at.reshape(-1)] = fit_t[rows[at].reshape(-1)] + sig[at.reshape(-1)] * \
                fit_r[src.reshape(-1)]
    elif resample_of is not None:
        from .reference.rng import bootstrap_counts

        resample_of = np.asarray(resample_of, dtype=np.int64)
        unit = np.repeat(np.arange(len(data_of)), counts)  # each expanded point's unit
        if mode in (1, 3):
            group_of, n_groups = local_groups(packed)
            g = group_of[rows]
        if mode == 0:
            draws = np.empty(len(rows))
            for n in np.unique(counts):  # units of one size at a time
                units = np.flatnonzero(counts == n)
                c = bootstrap_counts(seed, data_of[units], resample_of[units], int(n))
                at = (offsets[units][:, None] + np.arange(n)[None, :]).reshape(-1)
                draws[at] = c.reshape(-1)
        elif mode == 1:
            G = n_groups[data_of]
            draws = np.empty(len(rows))
            for n in np.unique(G):
                units = np.flatnonzero(G == n)
                c = bootstrap_counts(seed, data_of[units], resample_of[units], int(n))
                at = np.flatnonzero(np.isin(unit, units))
                row_of_unit = np.searchsorted(units, unit[at])
                draws[at] = c[row_of_unit, g[at]]
        elif mode == 2:
            draws = (np.arange(len(rows)) - offsets[unit] != resample_of[unit]).astype(float)
        else:
            draws = (g != resample_of[unit]).astype(float)
        w = draws if w is None else w * draws
    return packed.x[rows], t, pick(packed.sigma), w, offsets


def _resample_args(packed: Packed, resample_of, seed, resample_mode, fit_t, fit_r) -> dict:
    """The compiled core's resampling arguments (none without ``resample_of``)."""
    if resample_of is None:
        return {}
    args = dict(resample_of=np.asarray(resample_of, dtype=np.uint32), seed=int(seed),
                resample_mode=RESAMPLE_MODES[resample_mode])
    if resample_mode.startswith("grouped"):
        group_of, n_groups = local_groups(packed)
        # The core takes an empty problem as one empty group (its units then report
        # TOO_FEW_POINTS), never as none: an empty neighbour must not fail the call.
        args["group_of"], args["n_groups"] = group_of, np.maximum(n_groups, 1)
    if resample_mode == "residual":
        args["fit_t"], args["fit_r"] = fit_t, fit_r
    return args


def _upcast(out: dict) -> dict:
    """An fp32 solve's float arrays as float64 (what every caller of run() works in)."""
    return {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in out.items()}


def run(backend: str, packed: Packed, *, loss: str, f_scale: float, ftol: float, xtol: float,
        gtol: float, max_nfev: int, max_nfev_cap: int = 0, initial_damping: float = 1e-3,
        dtype: str = "float64",
        n_threads: Optional[int] = None, return_jtj: bool = False, data_of=None,
        rows: Optional[str] = None, p0=None, lower=None, upper=None, resample_of=None,
        seed: int = 0, resample_mode: str = "pairs", fit_t=None, fit_r=None) -> dict:
    """Solve a packed batch on a concrete backend; returns the backend's arrays.

    With ``data_of``, the rows solved are units: unit i fits problem data_of[i]'s points,
    and ``rows`` says where its start and box are, always explicitly (never guessed from the
    arrays' lengths: a batch of as many units as problems would read a neighbour's row):
    ``"unit"``, p0[i] within lower[i], upper[i] (one row per unit: starts of a grid, a
    continued fit); ``"problem"``, p0[data_of[i]] within lower[data_of[i]],
    upper[data_of[i]] (one row per problem: every resample of a problem starts from its
    fit).  With ``resample_of`` too, unit i is weighted by the bootstrap resample
    resample_of[i] of ``seed``.  ``dtype="float32"``: the compiled backends' fp32 solve
    (fit32), its results returned as float64."""
    extra = {}
    fp32 = dtype == "float32"
    if backend == "cpu":
        module = _load_core()[0]
        fn = module.fit32 if fp32 else module.fit
        # fp32 runs the scalar solve only (its SIMD engines are fp64).
        extra["engine"] = ("scalar" if cpu_engine == "scalar" else "auto") if fp32 else \
            cpu_engine
    elif backend == "cuda":
        module = _load_cuda()[0]
        fn = module.fit32 if fp32 else module.fit
    else:
        from .reference import fit_packed as fn
    if data_of is None:
        if rows is not None:
            raise ValueError("rows: only used with data_of")
        p0, lower, upper = packed.p0, packed.lower, packed.upper
    else:
        expect = {"unit": len(data_of), "problem": packed.n_problems}
        if rows not in expect:
            raise ValueError(f"rows: expected 'unit' or 'problem' with data_of, got {rows!r}")
        for name, a in (("p0", p0), ("lower", lower), ("upper", upper)):
            if np.shape(a)[0] != expect[rows]:
                raise ValueError(f"{name}: expected {expect[rows]} rows (one per {rows}), "
                                 f"got {np.shape(a)[0]}")
    per_problem = rows == "problem"  # unit i reads row data_of[i]
    # The compiled backends take the model's inputs (log x where the model wants it); the
    # reference takes x and applies step 0 itself.
    if backend == "numpy":
        data = (packed.x, packed.t, packed.sigma, packed.weights, packed.offsets)
        if per_problem:
            p0, lower, upper = (a[data_of] for a in (p0, lower, upper))
        if data_of is not None:
            data = _expand_units(packed, np.asarray(data_of, dtype=np.int64), resample_of, seed,
                                 RESAMPLE_MODES[resample_mode], fit_t, fit_r)
    elif backend == "cpu" and packed.u_grid is not None:  # the shared grid, not a copy each
        data = (packed.u_grid, packed.t, packed.sigma, packed.weights, packed.offsets)
        extra["x_shared"] = True
    else:
        data = (packed.u, packed.t, packed.sigma, packed.weights, packed.offsets)
    if backend == "cpu":  # bounds given once for all: the core reads their one row
        rows = shared_row(lower), shared_row(upper)
        if rows[0] is not None and rows[1] is not None:
            lower, upper = rows
            extra["bounds_shared"] = True
    if backend != "numpy":
        if data_of is not None:
            extra["data_of"] = np.asarray(data_of, dtype=np.int64)
        extra.update(_resample_args(packed, resample_of, seed, resample_mode, fit_t, fit_r))
        if per_problem:
            extra["box_per_problem"] = True
    out = fn(
        packed.model.name, *data, p0, lower, upper, log_residuals=packed.log_residuals,
        loss=loss, f_scale=float(f_scale), ftol=float(ftol), xtol=float(xtol),
        gtol=float(gtol), max_nfev=int(max_nfev), max_nfev_cap=int(max_nfev_cap),
        initial_damping=float(initial_damping),
        n_threads=int(n_threads or 0), return_jtj=return_jtj, **extra,
    )
    return _upcast(out) if fp32 else out


def objective(backend: str, packed: Packed, params, data_of, *, loss: str, f_scale: float,
              n_threads: Optional[int] = None, resample_of=None, seed: int = 0,
              resample_mode: str = "pairs", fit_t=None, fit_r=None,
              dtype: str = "float64") -> np.ndarray:
    """The cost at params[i] of unit i (problem data_of[i]'s points); +inf where it is not
    finite.  Evaluated where the backend solves: the CPU core, the GPU, or NumPy."""
    params = np.ascontiguousarray(params, dtype=np.float64)
    data_of = np.asarray(data_of, dtype=np.int64)
    if backend == "numpy":
        from .reference import objective_packed

        x, t, sigma, w, offsets = _expand_units(packed, data_of, resample_of, seed,
                                                RESAMPLE_MODES[resample_mode], fit_t, fit_r)
        return objective_packed(packed.model.name, x, t, sigma, w, offsets, params,
                                log_residuals=packed.log_residuals, loss=loss,
                                f_scale=float(f_scale))
    module, why = _load_cuda() if backend == "cuda" else _load_core()
    if module is None:  # pragma: no cover - resolve() has checked it
        raise ValueError(f"backend: {backend!r} is not available: {why}")
    extra = _resample_args(packed, resample_of, seed, resample_mode, fit_t, fit_r)
    fn = module.objective32 if dtype == "float32" else module.objective
    if backend == "cpu" and dtype != "float32":
        extra["engine"] = cpu_engine  # the SIMD lanes (fp64), bitwise any engine's
    cost = fn(packed.model.name, packed.u, packed.t, packed.sigma, packed.weights,
              packed.offsets, params, data_of=data_of, log_residuals=packed.log_residuals,
              loss=loss, f_scale=float(f_scale), n_threads=int(n_threads or 0), **extra)
    return cost.astype(np.float64, copy=False)
