"""``lawfit.fit``: the batched call."""
from __future__ import annotations

import os
import warnings
from typing import Callable, Optional, Union

import numpy as np

from . import _backends
from ._backends import residuals_at  # noqa: F401  (lawfit.api.residuals_at, as before)
from ._dask import is_dask_collection
from ._options import (AT_BEST_RTOL, DEFAULT_TOL, FRAGILE_SHARE, MAX_THREADS,  # noqa: F401
                       Options, check_chunk, check_k, check_threads)
from ._packing import check_nan_policy
from ._named import PartialStart, named_bounds, named_p0
from ._plan import SMALL_PROBLEMS, Finish, n_problems, solve_batch, solve_small
from ._progress import Progress, check_progress, make_progress
from ._result import FitResult
from .grid import Grid
from .models import Model, get

__all__ = ["fit", "FragileFitWarning"]


class FragileFitWarning(UserWarning):
    """Only a small share of a multi-start fit's refined starts reached its best objective."""


# What fit's defaults ask of a finished solve: nothing beyond the fits.
_PLAIN = Finish()
# fit's default bounds (the object itself: a call that leaves them out is known at once).
_UNBOUNDED = (-np.inf, np.inf)


def fit_small(m: Model, x: np.ndarray, y: np.ndarray, p0, options: Options, n_threads,
              bounds, backend, finish: Finish) -> Optional[FitResult]:
    """The short route of a small, clean call (fit's, and curve_fit's with a built-in law):
    float64 arrays ``x`` and ``y`` (one problem's points, or a padded (P, m) batch), ``p0``
    None or a float64 array, no weights, sigma or grid, ``backend`` "auto" or "cpu".  Returns
    the FitResult, or None where the call is not that clean case (a NaN, a value out of its
    domain, a shape to check): the general route then checks it and says what is wrong."""
    yy = y if y.ndim == 2 else y[None, :]
    if len(yy) > SMALL_PROBLEMS:  # the core's route takes up to a chunk: refused first
        require_memory(fit_bytes(len(yy), m.n_params, yy.size, return_cov=finish.return_cov),
                       f"fit: {len(yy):,} problems")
    return solve_small(_backends.get(backend, len(yy), m), m, x, yy, p0, options,
                       check_threads(n_threads), None if _no_bounds(bounds) else bounds,
                       finish)


def _no_bounds(bounds) -> bool:
    """Whether ``bounds`` is the default pair (-inf, inf) of Python or NumPy floats."""
    return bounds is _UNBOUNDED or (type(bounds) is tuple and len(bounds) == 2
            and isinstance(bounds[0], float) and isinstance(bounds[1], float)
            and bounds[0] == -np.inf and bounds[1] == np.inf)


def warn_fragile(share_at_best, stacklevel: int = 3) -> None:
    """The FragileFitWarning of a grid fit (``share_at_best``, None without a grid) where
    some problem's refined starts rarely reached its best objective."""
    if share_at_best is None:
        return
    fragile = np.asarray(share_at_best) < FRAGILE_SHARE
    if fragile.any():
        warnings.warn(
            f"{int(fragile.sum())} of {len(fragile)} problems: under "
            f"{FRAGILE_SHARE:.0%} of the refined starts reached the best objective; such "
            f"fits are fragile (FitResult.fragile, share_at_best)", FragileFitWarning,
            stacklevel=stacklevel)


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


# Allocations below this size skip require_memory's check.
SMALL_REQUEST = 64 * 2**20


def require_memory(nbytes: float, what: str) -> None:
    """MemoryError naming the size where ``nbytes`` (what a request allocates at least,
    estimated from shapes alone) is more than the memory available: refused before any
    work, rather than failing (or swapping) after minutes of it.  Requests below
    SMALL_REQUEST bytes are not checked (no machine lawfit runs on lacks that much; reading
    the OS's figures would cost a small call more than its solve)."""
    if nbytes < SMALL_REQUEST:
        return
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
    bounds=_UNBOUNDED,
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
    progress: Union[bool, Callable[[int, int], None], None] = None,
    k: Union[int, str, None] = None,
    nan_policy: str = "omit",
) -> FitResult:
    """Fit a built-in model to every problem of a batch in one call.

    Parameters
    ----------
    model : str or lawfit.models.Model
        A built-in model (``lawfit.models.available()``) or a user's law (``lawfit.law``).
    x, y : arrays or lists of arrays
        The batch: lists of per-problem arrays; a padded 2-D ``y`` (problems x points) with
        ``x`` of the same shape or one shared grid; or flat arrays with a ``groups`` label per
        point.  A flat ``y`` without groups is one problem.  A model with several inputs
        (``N``, ``D``) takes ``x`` with a trailing axis of that size.  In every shape a NaN
        in ``y`` or in ``x`` marks a missing point (see ``nan_policy``).  A batch of no
        problems gives an empty result.
    p0 : array, dict or lawfit.Grid, optional
        Start, shape (n_params,) for all problems or (problems, n_params), or a dict by
        parameter name (each value a scalar or one per problem; the parameters left out
        start from the data-driven guess; a name that is not a parameter is a ValueError).
        Defaults to the model's data-driven guess where it has one.  A :func:`lawfit.grid` makes the fit
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
    bounds : (lower, upper) or dict
        Scalars, (n_params,) or (problems, n_params); ``lower == upper`` fixes a parameter.
        By name: a dict of per-parameter ``(lower, upper)`` pairs (``{"alpha": (0, 2)}``),
        or a pair of dicts (``({"alpha": 0}, {"alpha": 2})``); a parameter left out (or
        ``None``) is unbounded on that side.
    loss, f_scale
        Robust loss as in ``scipy.optimize.least_squares``: ``linear``, ``soft_l1``,
        ``huber``, ``cauchy``, ``arctan``.
    residuals : {"linear", "log"}
        ``f - y`` or ``log f - log y`` (the usual choice for scaling laws).
    ftol, xtol, gtol, max_nfev
        Termination tests with scipy's meanings (see ``cpp/include/lawfit/options.h``):
        1e-8 by default (1e-5 with ``dtype="float32"``); ``max_nfev`` defaults to
        ``100 * n_params``.
    backend : {"auto", "cpu", "cuda", "numpy"} or a backend object
        ``auto`` uses the GPU (``cuda``) where it is available and the call solves at least
        100,000 units (problems x grid starts), else the compiled CPU backend.  CPU and GPU
        agree to about 1e-10 in the cost, not bit for bit; pass ``"cpu"`` for results that
        do not depend on the machine.  A backend object (``lawfit._backends.Cpu(engine=
        "scalar")``) picks a CPU engine; every engine gives bitwise the same results.
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
    progress : bool or callable, optional
        ``True`` shows a progress bar on stderr (needs tqdm: the ``progress`` extra,
        ``pip install 'lawfit[progress]'``); a callable ``progress(done, total)`` is called
        with problem counts.  Either way the batch is solved in chunks sized to report
        about every quarter second (no larger than ``chunk_size``), with the same results
        bit for bit, and Ctrl-C stops the call between two chunks.
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
    if (type(y) is np.ndarray and type(x) is np.ndarray
            and (p0 is None or (type(p0) is np.ndarray and p0.dtype == np.float64))
            and y.dtype == x.dtype == np.float64 and 1 <= y.ndim <= 2
            and sigma is None and weights is None and groups is None and data is None
            and type(bounds) is tuple and len(bounds) == 2
            and (backend == "auto" or backend == "cpu") and (dtype == "float64")
            and chunk_size is None and progress is None
            and k is None and nan_policy == "omit" and singular_cov in ("inf", "pinv")):
        # A small, clean call: its own short route through the plan (the same bits).
        m = get(model)
        options = Options.build(m.n_params, loss=loss, f_scale=f_scale, residuals=residuals,
                                ftol=ftol, xtol=xtol, gtol=gtol, max_nfev=max_nfev,
                                dtype=dtype, backend=backend)
        plain = not (return_cov or absolute_sigma or return_residuals) and singular_cov == "inf"
        result = fit_small(m, x, y, p0, options, n_threads, bounds, backend,
                           _PLAIN if plain else Finish(return_cov, absolute_sigma,
                                                       singular_cov, return_residuals))
        if result is not None:
            return result
    elif is_dask_collection(data) or is_dask_collection(y):  # on the workers (lawfit/_dask.py)
        args = {k: v for k, v in locals().items() if k != "model"}  # fit's arguments
        from . import _dask

        result = _dask.run(fit, model, args)
        warn_fragile(result.share_at_best)
        return result
    m = get(model)
    labels = label_names = None
    check_nan_policy(nan_policy)
    p0 = named_p0(p0, m.param_names, m.has_guess)
    bounds = named_bounds(bounds, m.param_names)
    if data is not None:
        x, y, sigma, weights, groups, labels, label_names = _from_frame(
            data, x, y, sigma, weights, groups, nan_policy)
    if x is None or y is None:
        raise ValueError("x, y: both are required")
    options = Options.build(m.n_params, loss=loss, f_scale=f_scale, residuals=residuals,
                            ftol=ftol, xtol=xtol, gtol=gtol, max_nfev=max_nfev, dtype=dtype,
                            backend=_backends.name_of(backend))
    from ._device import fit_device, is_device_array

    if any(is_device_array(a) for a in (x, y, sigma, weights, p0)):
        if isinstance(p0, PartialStart):
            raise ValueError("p0: a fit of device arrays needs every parameter's start (a "
                             "dict of them all, or an array)")
        unsupported = dict(groups=groups is not None, data=data is not None,
                           k=k is not None or isinstance(p0, Grid), return_cov=return_cov,
                           return_residuals=return_residuals,
                           chunk_size=chunk_size is not None,
                           progress=progress is not None and progress is not False)
        return fit_device(m, x, y, p0=p0, sigma=sigma, weights=weights, bounds=bounds,
                          options=options, backend=_backends.name_of(backend),
                          unsupported=unsupported, nan_policy=nan_policy)
    n_threads = check_threads(n_threads)
    if singular_cov not in ("inf", "pinv"):
        raise ValueError(f"singular_cov: expected 'inf' or 'pinv', got {singular_cov!r}")
    _backends.get(backend)  # a bad name fails here; auto decides below, on the size
    chunk_size = check_chunk(chunk_size)
    grid_spec = p0 if isinstance(p0, Grid) else None
    if grid_spec is not None:
        k = check_k(k)
        # Chunks hold at most chunk_size solve units (problem x start).
        chunk_size = max(1, chunk_size // grid_spec.n_starts)
    elif k is not None:
        raise ValueError("k: only used with a grid p0 (lawfit.grid)")
    check_progress(progress)
    total = n_problems(x, y, groups)
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
    solver = _backends.get(backend, total * (grid_spec.n_starts if grid_spec else 1), m)
    if grid_spec is not None and grid_spec.per_problem() and \
            np.shape(grid_spec.explicit)[0] != total:
        raise ValueError(f"p0: the grid has starts for {np.shape(grid_spec.explicit)[0]} "
                         f"problems, the batch has {total}")
    # A padded y says how many points the solve has, before anything is packed.
    solver.prepare(n_threads, total * (grid_spec.n_starts if grid_spec else 1),
                   np.size(y) if isinstance(y, np.ndarray) else 0)
    bar = progress if isinstance(progress, Progress) else make_progress(progress, total,
                                                                          "fit", "problem")
    try:
        out, offsets, cov, fun, jac, out_labels = solve_batch(
            solver, m, x, y, groups=groups, labels=labels, total=total, chunk_size=chunk_size,
            pack_args=dict(p0=p0, sigma=sigma, weights=weights, bounds=bounds,
                           nan_policy=nan_policy),
            options=options, finish=Finish(return_cov, absolute_sigma, singular_cov,
                                           return_residuals),
            n_threads=n_threads, grid=grid_spec, k=k, progress=bar)
    finally:
        if bar is not None and bar is not progress:
            bar.close()
    if grid_spec is not None:
        warn_fragile(out["share_at_best"])
    return FitResult(m, out, None, labels=out_labels, label_names=label_names, cov=cov,
                     offsets=offsets, fun=fun, jac=jac, backend=solver.name)
