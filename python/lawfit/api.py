"""``lawfit.fit``: the batched call."""
from __future__ import annotations

import os
import warnings
from typing import Callable, Optional, Union

import numpy as np

from . import _backends
from ._packing import LOSSES, NO_START, check_nan_policy, pack
from ._result import FitResult, covariance
from .grid import Grid
from .models import Model, get

__all__ = ["fit", "FragileFitWarning"]

# A refined start "reached the best" when its final cost is within this relative distance of
# the problem's lowest; a multi-start fit whose share of such starts is below FRAGILE_SHARE
# is flagged (FitResult.fragile) and warned about.  The distance follows the precision of
# the solve.  In fp64 the cost resolves far below 1e-6; starts that end in one minimum
# differ by what the tolerances leave (ftol 1e-8).  In fp32 the cost itself is resolved to
# only some hundred epsilons: each point's residual loses about |f| / |r| epsilons to the
# cancellation of f against y (a hundred at 1% noise), the sum of m such terms adds its
# rounding, and a start stops where fp32 can no longer tell a step from noise.  Measured on
# the Chinchilla replication's 4,500-start grid, the 25 refined starts that end in the best
# minimum differ by up to 2.9e-6 relative (24 epsilons), the next minimum lies 9.8 relative
# above; 256 fp32 epsilons (3.1e-5) leaves a tenfold margin over the first and stays far
# below the gaps between distinct minima of these objectives (1e-3 relative and more).
AT_BEST_RTOL = {"float64": 1e-6, "float32": 256 * float(np.finfo(np.float32).eps)}
FRAGILE_SHARE = 0.1
# Starts refined per problem by default.  Measured on the Chinchilla replication's 4,500-start
# grid (bench/bench_grid.py): the lowest objective is reached from k = 10 on; 100 leaves a
# wide margin at a twentieth of the time of refining all.
DEFAULT_K = 100


class FragileFitWarning(UserWarning):
    """Only a small share of a multi-start fit's refined starts reached its best objective."""


# The default evaluation budget: 100 * n_params at a time (scipy's budget), extended while
# each block still lowers the cost by more than ftol (and rounding) resolves (lm.h, step
# 4c), up to this many blocks.  Robust losses on log residuals (Huber with f_scale = 1e-3,
# the field's usual objective) take several hundred evaluations from an ordinary start: on
# the over-training laws of ../shared/data, from three starts, up to 1,115 for 5
# parameters; slow valleys of the OLMo ladder's task fits (tests/data/corpus) up to 7,941.
NFEV_BLOCKS = 20


def check_options(loss: str, f_scale: float, ftol: float, xtol: float, gtol: float,
                  max_nfev: Optional[int], n_params: int):
    """Validate the solver options (ValueError naming the argument); returns the evaluation
    budget (max_nfev, max_nfev_cap) the core takes: an explicit ``max_nfev`` is a hard limit
    (as scipy's), the default 100 * n_params is extended up to NFEV_BLOCKS times while the
    fit still improves."""
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
    if not (_is_real(f_scale) and np.isfinite(f_scale) and f_scale > 0):
        raise ValueError(f"f_scale: must be a positive finite number, got {f_scale!r}")
    for name, tol in (("ftol", ftol), ("xtol", xtol), ("gtol", gtol)):
        if not (_is_real(tol) and np.isfinite(tol) and tol >= 0):
            raise ValueError(f"{name}: must be a finite number >= 0, got {tol!r}")
    if max_nfev is None:
        return 100 * n_params, NFEV_BLOCKS * 100 * n_params
    max_nfev = positive_int(max_nfev, "max_nfev")
    return max_nfev, max_nfev


# The default ftol, xtol and gtol of each precision.  fp32 resolves relative changes down to
# about 1e-7 (its epsilon), so a 1e-8 test can only pass on exact stalls; at 1e-5 fp32 solves
# take about as many evaluations as fp64 ones at 1e-8, and on the tests' batches (every
# model, linear and log residuals) at least 97% of them end where the fp64 cost is within
# 1e-3 relative of fp64's optimum (tests/test_fp32.py).
DEFAULT_TOL = {"float64": 1e-8, "float32": 1e-5}


def check_dtype(dtype, backend: str) -> str:
    """``dtype`` as "float64" or "float32" (ValueError naming it otherwise, or where the
    backend has no fp32 solver)."""
    if isinstance(dtype, str) and dtype in DEFAULT_TOL:
        name = dtype  # the common spelling, without building a dtype
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
    if name not in DEFAULT_TOL:
        raise ValueError(f"dtype: expected 'float64' or 'float32', got {dtype!r}")
    if name == "float32" and backend == "numpy":
        raise ValueError("dtype: float32 runs on the compiled backends ('cpu', 'cuda'); the "
                         "NumPy reference is fp64 only")
    return name


def tolerances(dtype: str, ftol, xtol, gtol):
    """ftol, xtol, gtol with None replaced by the precision's default."""
    return tuple(DEFAULT_TOL[dtype] if t is None else t for t in (ftol, xtol, gtol))


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def positive_int(value, name: str) -> int:
    """``value`` as an int >= 1 (an integral float is fine), else ValueError naming it."""
    if not (_is_real(value) and np.isfinite(value) and 1 <= value < 2**31
            and int(value) == value):
        raise ValueError(f"{name}: must be a positive integer or None, got {value!r}")
    return int(value)


# The most threads a call may ask for: far more than any machine's CPUs today, so a valid
# call is valid on every machine, and far fewer than the OS threads a typo such as
# n_threads=2**31 - 1 would try to start.  (The CPU driver never starts more threads than
# it has chunks of work, nor, by default, more than the CPUs this process may use.)
MAX_THREADS = 4096


def check_threads(n_threads) -> int:
    """``n_threads`` as an int in [1, MAX_THREADS], else ValueError naming it."""
    n = positive_int(n_threads, "n_threads")
    if n > MAX_THREADS:
        raise ValueError(f"n_threads: at most {MAX_THREADS} threads, got {n_threads!r} (leave "
                         f"it None to use the CPUs this process may use)")
    return n


def check_k(k):
    """A grid's ``k``: a positive integer or "all", else ValueError naming it."""
    if not (k == "all" if isinstance(k, str) else
            (_is_real(k) and not isinstance(k, (float, np.floating)) and k >= 1)):
        raise ValueError(f"k: expected a positive integer or 'all', got {k!r}")
    return k


def available_memory() -> Optional[int]:
    """Bytes of memory this process could still allocate, where the OS says: the kernel's
    MemAvailable, or less under a cgroup (container) limit; None where unknown."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            return None
    try:
        with open("/sys/fs/cgroup/memory.max") as f, \
                open("/sys/fs/cgroup/memory.current") as g:
            limit = f.read().strip()
            if limit != "max":
                room = int(limit) - int(g.read())
                avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    return avail


def require_memory(nbytes: float, what: str) -> None:
    """MemoryError naming the size where ``nbytes`` (what a request allocates at least,
    estimated from shapes alone) is more than the memory available: refused before any
    work, rather than failing (or swapping) after minutes of it."""
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise MemoryError(f"{what}: needs at least {nbytes / 2**30:,.1f} GiB of memory, more "
                          f"than the {avail / 2**30:,.1f} GiB available; split the batch or "
                          f"the resamples into smaller calls")


def fit_bytes(P: int, n: int, points: int, *, return_cov: bool = False,
              joined: bool = False) -> int:
    """At least what a fit of P problems of n parameters allocates: each problem's results
    (x, cost, optimality, status, nfev, njev, nit, active_mask, n_omitted; J^T J and the
    covariance with ``return_cov``) and start, made twice where chunks are ``joined``, and
    ``points`` packed points (x, the model's inputs, y and t: four float64 at least)."""
    per_problem = 17 * n + 40 + (16 * n * n if return_cov else 0)
    return (2 if joined else 1) * P * per_problem + 32 * points


def _frame_column(data, name: str, arg: str) -> np.ndarray:
    """Column ``name`` of a DataFrame as float64, or a ValueError naming the argument, the
    column and the first value that is not a real number (by position)."""
    if name not in data.columns:
        raise ValueError(f"data: has no column {name!r}")
    column = data[name]
    values = column.to_numpy()
    if values.dtype.kind == "c":
        raise ValueError(f"{arg}: column {name!r} of data is complex ({values.dtype}); "
                         f"complex numbers are not supported")
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    try:  # pandas' nullable columns: NA is NaN
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        error = exc
    for pos, v in enumerate(values):
        try:
            if isinstance(v, (complex, np.complexfloating)):
                raise TypeError
            float(v) if not _is_na(v) else None
        except (TypeError, ValueError):
            raise ValueError(f"{arg}: column {name!r} of data holds {v!r} (at position {pos}), "
                             f"not a real number") from None
    raise ValueError(f"{arg}: column {name!r} of data: {error}")


def _is_na(value) -> bool:
    """Whether a DataFrame cell is pandas' missing value (None, NaN, NA, NaT)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - DataFrames come from pandas
        return value is None
    return np.ndim(value) == 0 and bool(pd.isna(value))


def _from_frame(data, x, y, sigma, weights, groups, nan_policy="omit"):
    """Resolve column names of a DataFrame into arrays.  With ``nan_policy="raise"``, the
    first row whose y or x column is NaN is refused here, naming the column and the row's
    position."""
    def col(v, arg):
        if v is None:
            return None
        if isinstance(v, str):
            values = _frame_column(data, v, arg)
            if arg in ("x", "y"):
                columns.append((arg, v, values))
            return values
        return v

    columns = []  # (argument, column name, values) of y and x, in that order
    ys = col(y, "y")
    if isinstance(x, (list, tuple)) and all(isinstance(c, str) for c in x):
        xs = np.column_stack([col(c, "x") for c in x]) if x else x
    else:
        xs = col(x, "x")
    if nan_policy == "raise" and columns:
        nan = [np.isnan(values) for _, _, values in columns]
        if any(m.any() for m in nan):
            pos = min(int(np.argmax(m)) for m in nan if m.any())
            arg, name, _ = next(c for c, m in zip(columns, nan) if m[pos])
            raise ValueError(f"{arg}: column {name!r} of data is NaN at position {pos} "
                             f"(nan_policy='raise'; the default 'omit' leaves a NaN point out "
                             f"as missing)")
    labels = None
    label_names = tuple(groups) if isinstance(groups, (list, tuple)) else (
        (groups,) if isinstance(groups, str) else None)
    if isinstance(groups, (list, tuple)) and all(isinstance(c, str) for c in groups):
        import pandas as pd

        missing = [c for c in groups if c not in data.columns]
        if missing:
            raise ValueError(f"groups: data has no column(s) {missing}")
        codes, uniques = pd.MultiIndex.from_frame(data[list(groups)]).factorize(sort=True)
        labels = np.empty(len(uniques), dtype=object)
        labels[:] = list(uniques)  # one tuple per group
        groups = codes
    elif isinstance(groups, str):
        if groups not in data.columns:
            raise ValueError(f"groups: data has no column {groups!r}")
        groups = data[groups].to_numpy()
    return xs, ys, col(sigma, "sigma"), col(weights, "weights"), groups, labels, label_names


def residuals_at(packed, params: np.ndarray):
    """Each point's residual (before the robust loss) and its Jacobian at ``params`` (P, n),
    from the compiled model (the same code the solver ran)."""
    from . import _core

    rows = np.repeat(np.arange(packed.n_problems), packed.n_points)
    p = np.ascontiguousarray(params[rows])
    native_log = packed.log_residuals and any(
        d["name"] == packed.model.name and d["has_log"] for d in _core.models())
    with np.errstate(all="ignore"):
        f, J = _core.evaluate_model(packed.model.name, p, packed.x, native_log)
        if packed.log_residuals and not native_log:
            J = J / f[:, None]
            f = np.log(f)
        r = f - packed.t
        if packed.sigma is not None:
            r = r / packed.sigma
            J = J / packed.sigma[:, None]
    return r, J


def fit(
    model: Union[str, Model],
    x=None,
    y=None,
    *,
    p0=None,
    sigma=None,
    weights=None,
    groups=None,
    data=None,
    bounds=(-np.inf, np.inf),
    loss: str = "linear",
    f_scale: float = 1.0,
    residuals: str = "linear",
    ftol: Optional[float] = None,
    xtol: Optional[float] = None,
    gtol: Optional[float] = None,
    max_nfev: Optional[int] = None,
    backend: str = "auto",
    dtype="float64",
    n_threads: Optional[int] = None,
    return_cov: bool = False,
    absolute_sigma: bool = False,
    singular_cov: str = "inf",
    return_residuals: bool = False,
    chunk_size: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    k: Union[int, str, None] = None,
    nan_policy: str = "omit",
) -> FitResult:
    """Fit a built-in model to every problem of a batch in one call.

    Parameters
    ----------
    model : str or lawfit.models.Model
        A built-in model (``lawfit.models.available()``).
    x, y : arrays or lists of arrays
        The batch: lists of per-problem arrays; a padded 2-D ``y`` (problems x points) with
        ``x`` of the same shape or one shared grid; or flat arrays with a ``groups`` label per
        point.  A flat ``y`` without groups is one problem.  A model with several inputs
        (``N``, ``D``) takes ``x`` with a trailing axis of that size.  In every shape a NaN
        in ``y`` or in ``x`` marks a missing point (see ``nan_policy``).  A batch of no
        problems gives an empty result.
    p0 : array or lawfit.Grid, optional
        Start, shape (n_params,) for all problems or (problems, n_params).  Defaults to the
        model's data-driven guess where it has one.  A :func:`lawfit.grid` makes the fit
        multi-start: the objective is evaluated at every start of every problem, the best
        ``k`` starts of each problem are refined, and the lowest final cost is kept.
    sigma : optional
        Per-point uncertainty, shaped like ``y``; residuals are divided by it.
    weights : optional
        Per-point nonnegative weights (e.g. bootstrap multiplicities) multiplying each point's
        cost; 0 drops a point.
    groups : optional
        A label per point (with flat ``x``/``y``), or column name(s) with ``data``.
    data : pandas.DataFrame, optional
        When given, ``x`` (one name or a list), ``y``, ``sigma``, ``weights`` and ``groups``
        may be column names.
    bounds : (lower, upper)
        Scalars, (n_params,) or (problems, n_params); ``lower == upper`` fixes a parameter.
    loss, f_scale
        Robust loss as in ``scipy.optimize.least_squares``: ``linear``, ``soft_l1``,
        ``huber``, ``cauchy``, ``arctan``.
    residuals : {"linear", "log"}
        ``f - y`` or ``log f - log y`` (the usual choice for scaling laws).
    ftol, xtol, gtol, max_nfev
        Termination tests with scipy's meanings (see ``cpp/include/lawfit/options.h``):
        1e-8 by default (1e-5 with ``dtype="float32"``); ``max_nfev`` defaults to
        ``100 * n_params``.
    backend : {"auto", "cpu", "cuda", "numpy"}
        ``auto`` uses the GPU (``cuda``) where it is available and the call solves at least
        100,000 units (problems x grid starts), else the compiled CPU backend.  CPU and GPU
        agree to about 1e-10 in the cost, not bit for bit; pass ``"cpu"`` for results that
        do not depend on the machine.
    dtype : {"float64", "float32"}
        The precision of the solve.  ``float32`` (compiled backends only) halves the device's
        memory and runs faster on GPUs with little fp64 throughput (on the CPU it is the
        scalar solve in float, slower than fp64's SIMD lanes: there it serves to check the
        GPU's fp32 math); its default tolerances are 1e-5, and on well-posed problems it
        ends where the fp64 cost is within about 1e-3 relative of fp64's optimum (a few
        percent of ill-conditioned problems, such as ``chinchilla_log`` with linear
        residuals, stop short: use fp64 there).  Results are returned as float64 arrays
        either way.
    n_threads : int, optional
        CPU threads.  By default, as many as the CPUs this process may use (its affinity
        mask), and fewer for small batches, where starting a thread costs more than it
        saves (about 4,000 data points per thread).  Results do not depend on it.  At most
        ``MAX_THREADS`` (4096) on any machine; more is refused with a ValueError.
    return_cov : bool
        Also compute each problem's covariance, as ``curve_fit`` does (scaled by the
        residual variance unless ``absolute_sigma``).  Where the data do not determine a
        free parameter, the covariance is ``inf`` (``singular_cov="inf"``) or the
        pseudo-inverse (``"pinv"``).  It comes from J^T J, which resolves less than J itself:
        directions whose (column-scaled) singular value is below about 1e-7 of the largest
        count as undetermined (see ``lawfit._result.covariance``).
    return_residuals : bool
        Also return each point's residual at the solution, ``(f - y) / sigma`` (or
        ``(log f - log y) / sigma``), and its Jacobian: ``FitResult.fun`` (points,) and
        ``FitResult.jac`` (points, n_params), problem ``i`` owning rows
        ``offsets[i]:offsets[i+1]`` (``FitResult.residuals(i)`` slices them).
    chunk_size : int, optional
        Problems packed and solved at a time (default 1,000,000), so that memory beyond the
        inputs and outputs stays bounded for any batch (lists and padded arrays; a batch
        given by ``groups`` is packed whole).  All chunks are validated before the first is
        solved, and the results equal an unchunked call's, bit for bit.
    progress : callable, optional
        ``progress(done, total)``, called after each solved chunk with problem counts.
    k : int or "all", optional
        With a grid ``p0``: how many starts per problem to refine, the ones with the lowest
        objective (ties: the earlier start), or ``"all"``; default 100 (all, for smaller
        grids).  The result then also holds, per
        problem, ``n_starts``, ``n_refined``, ``best_start`` (the grid index of the start
        that reached the lowest cost), ``start_cost`` (the objective at that start),
        ``n_at_best`` (refined starts that converged within ``AT_BEST_RTOL`` relative of
        the lowest cost: 1e-6 in fp64, 256 epsilons, 3.1e-5, in fp32), ``share_at_best`` and ``cost_median`` (the median final cost of the refined
        starts); ``fragile`` marks problems where under 10% of the refined starts reached the
        best, and a ``FragileFitWarning`` says how many there are.

    nan_policy : {"omit", "raise", "propagate"}
        What a NaN in ``y`` or in ``x`` (a missing point) does, in every batch shape, as
        scipy names it: ``"omit"`` (default) leaves the point out (``FitResult.n_points``
        counts the points used, ``n_omitted`` those left out); ``"raise"`` raises a
        ValueError naming the argument and the point; ``"propagate"`` keeps it, and its
        problem gets ``NONFINITE_DATA``.  Infinite values are not missing: under every
        policy they are bad data, and their problem gets ``NONFINITE_DATA`` (as does a NaN
        or inf in ``sigma`` or ``weights``).

    Returns
    -------
    FitResult
        Arrays with the batch dimension first; ``status`` says per problem why it stopped.
        A call whose results alone would not fit in the memory available raises
        ``MemoryError`` (with the size it needs) before any work.
    """
    m = get(model)
    labels = label_names = None
    check_nan_policy(nan_policy)
    if data is not None:
        x, y, sigma, weights, groups, labels, label_names = _from_frame(
            data, x, y, sigma, weights, groups, nan_policy)
    if x is None or y is None:
        raise ValueError("x, y: both are required")
    dtype = check_dtype(dtype, backend)
    ftol, xtol, gtol = tolerances(dtype, ftol, xtol, gtol)
    max_nfev, max_nfev_cap = check_options(loss, f_scale, ftol, xtol, gtol, max_nfev,
                                           m.n_params)
    from ._device import fit_device, is_device_array

    if any(is_device_array(a) for a in (x, y, sigma, weights, p0)):
        unsupported = dict(groups=groups is not None, data=data is not None,
                           k=k is not None or isinstance(p0, Grid), return_cov=return_cov,
                           return_residuals=return_residuals,
                           chunk_size=chunk_size is not None, progress=progress is not None)
        return fit_device(m, x, y, p0=p0, sigma=sigma, weights=weights, bounds=bounds,
                          residuals=residuals, loss=loss, f_scale=f_scale, ftol=ftol,
                          xtol=xtol, gtol=gtol, max_nfev=max_nfev,
                          max_nfev_cap=max_nfev_cap, backend=backend,
                          dtype=dtype, unsupported=unsupported, nan_policy=nan_policy)
    if n_threads is not None:
        n_threads = check_threads(n_threads)
    if singular_cov not in ("inf", "pinv"):
        raise ValueError(f"singular_cov: expected 'inf' or 'pinv', got {singular_cov!r}")
    _backends.resolve(backend)  # a bad name fails here; auto decides below, on the size
    chunk_size = DEFAULT_CHUNK if chunk_size is None else positive_int(chunk_size, "chunk_size")
    grid_spec = p0 if isinstance(p0, Grid) else None
    if grid_spec is not None:
        k = check_k(DEFAULT_K if k is None else k)
        p0 = NO_START
        # Chunks hold at most chunk_size solve units (problem x start).
        chunk_size = max(1, chunk_size // grid_spec.n_starts)
    elif k is not None:
        raise ValueError("k: only used with a grid p0 (lawfit.grid)")
    if progress is not None and not callable(progress):
        raise ValueError("progress: expected a callable progress(done, total)")
    kw = dict(p0=p0, sigma=sigma, weights=weights, bounds=bounds, residuals=residuals,
              nan_policy=nan_policy)
    total = _n_problems(x, y, groups)
    # Refused before any pass over the data where the results alone cannot fit: the points
    # of a padded or flat y are known from its shape (a padded one is packed a chunk at a
    # time, a flat one whole), those of a list are already in memory.
    if isinstance(y, np.ndarray) and y.ndim == 2:
        points = min(total, chunk_size) * y.shape[1]
    else:
        points = np.size(y) if isinstance(y, np.ndarray) else 0
    require_memory(fit_bytes(total, m.n_params, points, return_cov=return_cov,
                             joined=groups is None and total > chunk_size)
                   + (8 * (m.n_params + 1) * np.size(y) if return_residuals and
                      isinstance(y, np.ndarray) else 0),
                   f"fit: {total:,} problems")
    name = _backends.resolve(backend, total * (grid_spec.n_starts if grid_spec else 1))
    solve = dict(backend=name, dtype=dtype, loss=loss, f_scale=f_scale, ftol=ftol, xtol=xtol,
                 gtol=gtol, max_nfev=max_nfev, max_nfev_cap=max_nfev_cap,
                 n_threads=n_threads, return_cov=return_cov,
                 absolute_sigma=absolute_sigma, singular_cov=singular_cov,
                 return_residuals=return_residuals)
    if grid_spec is not None and grid_spec.per_problem() and \
            np.shape(grid_spec.explicit)[0] != total:
        raise ValueError(f"p0: the grid has starts for {np.shape(grid_spec.explicit)[0]} "
                         f"problems, the batch has {total}")

    # A padded y says how many points the solve has, before anything is packed.
    _backends.rouse(name, n_threads, total * (grid_spec.n_starts if grid_spec else 1),
                    np.size(y) if isinstance(y, np.ndarray) else 0)

    def solve_one(packed, a, b):
        if grid_spec is None:
            return _solve_packed(packed, **solve)
        return _solve_grid(packed, grid_spec.rows(a, b), k, **solve)

    if groups is not None or total <= chunk_size:
        packed = pack(m, x, y, groups=groups, **kw)
        if labels is not None:
            packed.labels = labels[packed.labels.astype(int)]
        parts = [solve_one(packed, 0, total)]
        if progress is not None:
            progress(total, total)
        out_labels = packed.labels
    else:
        ranges = [(a, min(a + chunk_size, total)) for a in range(0, total, chunk_size)]
        for a, b in ranges:  # every chunk is validated before any is solved
            cx, cy, ckw = _rows(x, y, kw, a, b, total)
            pack(m, cx, cy, validate_only=True, first=a, **ckw)
        parts = []
        for a, b in ranges:
            cx, cy, ckw = _rows(x, y, kw, a, b, total)
            parts.append(solve_one(pack(m, cx, cy, first=a, **ckw), a, b))
            if progress is not None:
                progress(b, total)
        out_labels = None
    out, offsets, cov, fun, jac = _concatenate(parts)
    if grid_spec is not None:
        fragile = out["share_at_best"] < FRAGILE_SHARE
        if fragile.any():
            warnings.warn(
                f"{int(fragile.sum())} of {len(fragile)} problems: under "
                f"{FRAGILE_SHARE:.0%} of the refined starts reached the best objective; such "
                f"fits are fragile (FitResult.fragile, share_at_best)", FragileFitWarning,
                stacklevel=2)
    return FitResult(m, out, None, labels=out_labels, label_names=label_names, cov=cov,
                     offsets=offsets, fun=fun, jac=jac, backend=name)


DEFAULT_CHUNK = 1_000_000


def _n_problems(x, y, groups) -> int:
    """How many problems a batch holds, without packing it."""
    if isinstance(y, (list, tuple)) and (len(y) == 0 or np.ndim(y[0]) >= 1):
        return len(y)
    if groups is not None:
        return len(np.unique(np.asarray(groups)))
    return np.shape(y)[0] if np.ndim(y) == 2 else 1


def _per_problem(value, a: int, b: int, total: int, ndim: int):
    """Rows a:b of an argument given per problem (a list, or an array of ``ndim`` dimensions
    whose first has ``total`` entries); anything else is shared by all problems."""
    if isinstance(value, (list, tuple)) and len(value) == total and total > 1 and \
            np.ndim(value[0]) >= 1 and ndim == 1:
        return value[a:b]
    arr = value if isinstance(value, np.ndarray) else None
    if arr is not None and arr.ndim >= ndim and arr.shape[0] == total and total > 1:
        return arr[a:b]
    return value


def _rows(x, y, kw, a: int, b: int, total: int):
    """x, y and the keyword arguments of problems a:b (list or padded batches)."""
    listy = isinstance(y, (list, tuple))
    cy = y[a:b]
    if listy:
        cx = x[a:b] if isinstance(x, (list, tuple)) else x
        per = 1
    else:
        cx = _per_problem(np.asarray(x), a, b, total, 2) if np.ndim(x) >= 2 and \
            np.shape(x)[0] == total and np.shape(x)[:2] == np.shape(y) else x
        per = 2
    ckw = dict(kw)
    for name in ("sigma", "weights"):
        if kw[name] is not None:
            ckw[name] = _per_problem(kw[name], a, b, total, per)
    if kw["p0"] is not None and kw["p0"] is not NO_START:
        ckw["p0"] = _per_problem(np.asarray(kw["p0"], dtype=float), a, b, total, 2)
    lb, ub = kw["bounds"]
    ckw["bounds"] = tuple(_per_problem(np.asarray(v, dtype=float), a, b, total, 2)
                          for v in (lb, ub))
    return cx, cy, ckw


def _solve_packed(packed, *, backend, dtype, loss, f_scale, ftol, xtol, gtol, max_nfev,
                  max_nfev_cap, n_threads, return_cov, absolute_sigma, singular_cov,
                  return_residuals):
    out = _backends.run(backend, packed, dtype=dtype, loss=loss, f_scale=f_scale, ftol=ftol,
                        xtol=xtol, gtol=gtol, max_nfev=max_nfev, max_nfev_cap=max_nfev_cap,
                        n_threads=n_threads, return_jtj=return_cov)
    return _finish_packed(packed, out, return_cov=return_cov, absolute_sigma=absolute_sigma,
                          singular_cov=singular_cov, return_residuals=return_residuals)


def _finish_packed(packed, out, *, return_cov, absolute_sigma, singular_cov, return_residuals):
    """Covariances and residuals of the solutions in ``out``, one row per problem:
    (out, the batch's offsets, cov, fun, jac)."""
    cov = None
    if return_cov:
        n_points = packed.n_points
        if packed.weights is not None:
            row = np.repeat(np.arange(len(n_points)), n_points)
            pts = np.bincount(row, weights=packed.weights, minlength=len(n_points))
        else:
            pts = n_points
        cov = covariance(out["jtj"], out["cost"], pts, packed.lower == packed.upper,
                         absolute_sigma=absolute_sigma, singular=singular_cov)
    fun = jac = None
    if return_residuals:
        fun, jac = residuals_at(packed, out["x"])
    out["n_omitted"] = np.zeros(packed.n_problems, dtype=np.int64) \
        if packed.n_omitted is None else packed.n_omitted
    return out, packed.offsets, cov, fun, jac


def _solve_grid(packed, spec: Grid, k, *, backend, dtype, loss, f_scale, ftol, xtol, gtol,
                max_nfev, max_nfev_cap, n_threads, return_cov, absolute_sigma, singular_cov,
                return_residuals):
    """A multi-start fit of a packed batch: the objective at every start, Levenberg-Marquardt
    from the best k of each problem (units sharing the problem's points), the lowest final
    cost kept.  Returns what _solve_packed returns, with the grid's diagnostics in ``out``."""
    P, n = packed.lower.shape
    starts = spec.starts(packed.model.param_names, P, packed.lower, packed.upper, packed=packed,
                         model_name=packed.model.name)
    S = starts.shape[1]
    data_all = np.repeat(np.arange(P), S)
    start_cost = _backends.objective(backend, packed, starts.reshape(P * S, n), data_all,
                                     dtype=dtype, loss=loss, f_scale=f_scale,
                                     n_threads=n_threads).reshape(P, S)
    kk = S if k == "all" else min(int(k), S)
    if kk == S:
        sel = np.broadcast_to(np.arange(S), (P, S))
    else:  # the kk lowest objectives, ties to the earlier start
        sel = np.argsort(start_cost, axis=1, kind="stable")[:, :kk]
    rows = np.arange(P)[:, None]
    p0 = np.ascontiguousarray(starts[rows, sel].reshape(P * kk, n))
    data_of = np.repeat(np.arange(P), kk)
    res = _backends.run(backend, packed, dtype=dtype, loss=loss, f_scale=f_scale, ftol=ftol,
                        xtol=xtol, gtol=gtol, max_nfev=max_nfev, max_nfev_cap=max_nfev_cap,
                        n_threads=n_threads, return_jtj=return_cov, data_of=data_of,
                        rows="unit", p0=p0,
                        lower=np.repeat(packed.lower, kk, axis=0),
                        upper=np.repeat(packed.upper, kk, axis=0))
    cost = res["cost"].reshape(P, kk)
    status = res["status"].reshape(P, kk)
    with np.errstate(invalid="ignore"):
        ok = (status > 0) & np.isfinite(cost)
        # The lowest cost among converged starts; where none converged, among finite ones
        # (the problem's status then says why); ties to the earlier refined start.
        key = np.where(ok, cost, np.inf)
        none_ok = ~ok.any(axis=1)
        key[none_ok] = np.where(np.isfinite(cost[none_ok]), cost[none_ok], np.inf)
        best = np.argmin(key, axis=1)
        best_cost = cost[np.arange(P), best]
        at_best = ok & (cost <= best_cost[:, None] +
                        AT_BEST_RTOL[dtype] * np.abs(best_cost[:, None]))
        finite_cost = np.where(np.isfinite(cost), cost, np.nan)
        all_nan = np.isnan(finite_cost).all(axis=1)
        cost_median = np.full(P, np.nan)
        if (~all_nan).any():
            cost_median[~all_nan] = np.nanmedian(finite_cost[~all_nan], axis=1)
    pick = np.arange(P) * kk + best
    out = {key_: np.ascontiguousarray(v[pick]) for key_, v in res.items()}
    out["n_starts"] = np.full(P, S, dtype=np.int64)
    out["n_refined"] = np.full(P, kk, dtype=np.int64)
    out["best_start"] = sel[np.arange(P), best].astype(np.int64)
    out["start_cost"] = start_cost[np.arange(P), out["best_start"]]
    out["n_at_best"] = at_best.sum(axis=1).astype(np.int64)
    out["share_at_best"] = out["n_at_best"] / kk
    out["cost_median"] = cost_median
    packed.p0 = starts[np.arange(P), out["best_start"]]
    return _finish_packed(packed, out, return_cov=return_cov, absolute_sigma=absolute_sigma,
                          singular_cov=singular_cov, return_residuals=return_residuals)


def _concatenate(parts):
    """The chunks' (out, offsets, cov, fun, jac) as one."""
    if len(parts) == 1:
        return parts[0]
    out = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    n_points = np.concatenate([np.diff(p[1]) for p in parts])
    offsets = np.zeros(len(n_points) + 1, dtype=np.int64)
    np.cumsum(n_points, out=offsets[1:])
    cat = [offsets] + [None if parts[0][i] is None else np.concatenate([p[i] for p in parts])
                       for i in range(2, 5)]
    return (out, *cat)
