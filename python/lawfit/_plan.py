"""One plan for every solve.

    pack -> a data-driven start where there is no p0 -> with a grid, the objective at every
    start and the best k of each unit -> refine (Levenberg-Marquardt) -> the lowest final
    cost (best_of) -> finish (covariance, residuals) -> join chunks

``lawfit.fit`` (and through it ``curve_fit`` and ``least_squares`` for built-in models) runs
:func:`solve_batch`; ``lawfit.bootstrap`` runs the same steps per resample unit:
:func:`solve_grid` for a grid of starts, with the same best-start rule (:func:`best_of`).
Every step goes through one backend object (``lawfit._backends``) with one
:class:`~lawfit._options.Options`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Callable, Optional

import numpy as np

from ._backends import Backend, Cpu, Resampling, Units, residuals_at
from ._options import DEFAULT_CHUNK, Options
from ._named import PartialStart
from ._packing import NO_START, Packed, guessed_start, pack
from ._progress import Progress
from ._result import FitResult, covariance
from .grid import Grid


@dataclass(frozen=True)
class Finish:
    """What a solve computes after it converges: covariances (from J^T J, as curve_fit:
    scaled by the residual variance unless ``absolute_sigma``; ``singular`` "inf" or
    "pinv") and each point's residual and Jacobian."""

    return_cov: bool = False
    absolute_sigma: bool = False
    singular: str = "inf"
    return_residuals: bool = False

    def cov(self, out: dict, points, fixed) -> Optional[np.ndarray]:
        """The covariances of the solutions in ``out`` (None unless asked for): ``points``
        each problem's (weighted) point count, ``fixed`` (P, n) lower == upper."""
        if not self.return_cov:
            return None
        return covariance(out["jtj"], out["cost"], points, fixed,
                          absolute_sigma=self.absolute_sigma, singular=self.singular)


def best_of(cost: np.ndarray, status: np.ndarray) -> np.ndarray:
    """The chosen start of each row of (U, k) refined starts: the lowest cost among those
    that converged (status > 0, finite cost); where none converged, the lowest finite cost
    (the unit's status then says why it failed); ties to the earlier (better-ranked) start."""
    with np.errstate(invalid="ignore"):
        ok = (status > 0) & np.isfinite(cost)
        key = np.where(ok, cost, np.inf)
        none_ok = ~ok.any(axis=1)
        key[none_ok] = np.where(np.isfinite(cost[none_ok]), cost[none_ok], np.inf)
    return np.argmin(key, axis=1)


@dataclass
class GridSolve:
    """The result of :func:`solve_grid` for U units: ``out`` the refined starts' results
    (U * kk rows, unit-major), ``sel`` (U, kk) the grid index of each refined start,
    ``start_cost`` (U, S) the objective at every start, ``best`` (U,) the chosen refined
    start; ``pick`` its row in ``out``."""

    out: dict
    sel: np.ndarray
    start_cost: np.ndarray
    best: np.ndarray

    @property
    def kk(self) -> int:
        return self.sel.shape[1]

    @property
    def pick(self) -> np.ndarray:
        return np.arange(len(self.best)) * self.kk + self.best

    def chosen(self) -> dict:
        """Each unit's chosen result, one row per unit."""
        return {key: np.ascontiguousarray(v[self.pick]) for key, v in self.out.items()}


def solve_grid(backend: Backend, packed, options: Options, starts: np.ndarray,
               data_of: np.ndarray, k, *, resample_of=None,
               resampling: Optional[Resampling] = None, n_threads: Optional[int] = None,
               return_jtj: bool = False,
               refine: Optional[Callable[[Units], dict]] = None) -> GridSolve:
    """A multi-start solve of units: unit i fits problem data_of[i] (weighted by resample
    resample_of[i] where given) from the grid starts[data_of[i]] (starts: (P, S, n)).  Its
    own objective at every start ranks them; the best ``k`` (or "all"; ties: the earlier
    start) are refined, each within its problem's bounds; :func:`best_of` chooses.
    ``refine(units)``: how the refined starts are solved (default ``backend.solve``)."""
    data_of = np.asarray(data_of, dtype=np.int64)
    U, (S, n) = len(data_of), starts.shape[1:]
    start_cost = backend.grid_objective(
        packed, options, starts, Units(data_of, resample_of=resample_of, resampling=resampling),
        n_threads=n_threads)
    kk = S if k == "all" else min(int(k), S)
    if kk == S:
        sel = np.broadcast_to(np.arange(S), (U, S))
    else:  # the kk lowest objectives, ties to the earlier start
        sel = np.argsort(start_cost, axis=1, kind="stable")[:, :kk]
    dk = np.repeat(data_of, kk)
    p0 = np.ascontiguousarray(starts[data_of[:, None], sel].reshape(U * kk, n))
    units = Units(dk, "unit", p0, packed.lower[dk], packed.upper[dk],
                  None if resample_of is None else np.repeat(resample_of, kk), resampling)
    if refine is None:
        out = backend.solve(packed, options, units, n_threads=n_threads, return_jtj=return_jtj)
    else:
        out = refine(units)
    best = best_of(out["cost"].reshape(U, kk), out["status"].reshape(U, kk))
    return GridSolve(out, sel, start_cost, best)


def _finish(packed, out: dict, finish: Finish):
    """Covariances and residuals of the solutions in ``out``, one row per problem:
    (out, the batch's offsets, cov, fun, jac)."""
    cov = None
    if finish.return_cov:
        n_points = packed.n_points
        if packed.weights is not None:
            row = np.repeat(np.arange(len(n_points)), n_points)
            pts = np.bincount(row, weights=packed.weights, minlength=len(n_points))
        else:
            pts = n_points
        cov = finish.cov(out, pts, packed.lower == packed.upper)
    fun = jac = None
    if finish.return_residuals:
        fun, jac = residuals_at(packed, out["x"])
    out["n_free"] = (packed.lower != packed.upper).sum(axis=1).astype(np.int64)
    out["n_omitted"] = np.zeros(packed.n_problems, dtype=np.int64) \
        if packed.n_omitted is None else packed.n_omitted
    return out, packed.offsets, cov, fun, jac


def solve_packed(backend: Backend, packed, options: Options, finish: Finish,
                 n_threads: Optional[int] = None, grid: Optional[Grid] = None, k=None):
    """Solve one packed batch: from its p0, or (``grid``) multi-start, the grid's
    diagnostics added to ``out``.  Returns (out, offsets, cov, fun, jac)."""
    if grid is None:
        out = backend.solve(packed, options, n_threads=n_threads,
                            return_jtj=finish.return_cov)
        return _finish(packed, out, finish)
    P = packed.n_problems
    starts = grid.starts(packed.model.param_names, P, packed.lower, packed.upper,
                         packed=packed, model=packed.model)
    g = solve_grid(backend, packed, options, starts, np.arange(P), k, n_threads=n_threads,
                   return_jtj=finish.return_cov)
    cost = g.out["cost"].reshape(P, g.kk)
    status = g.out["status"].reshape(P, g.kk)
    rows = np.arange(P)
    best_cost = cost[rows, g.best]
    with np.errstate(invalid="ignore"):
        ok = (status > 0) & np.isfinite(cost)
        at_best = ok & (cost <= best_cost[:, None] +
                        options.at_best_rtol * np.abs(best_cost[:, None]))
        finite_cost = np.where(np.isfinite(cost), cost, np.nan)
        all_nan = np.isnan(finite_cost).all(axis=1)
        cost_median = np.full(P, np.nan)
        if (~all_nan).any():
            cost_median[~all_nan] = np.nanmedian(finite_cost[~all_nan], axis=1)
    out = g.chosen()
    S = starts.shape[1]
    out["n_starts"] = np.full(P, S, dtype=np.int64)
    out["n_refined"] = np.full(P, g.kk, dtype=np.int64)
    out["best_start"] = g.sel[rows, g.best].astype(np.int64)
    out["start_cost"] = g.start_cost[rows, out["best_start"]]
    out["n_at_best"] = at_best.sum(axis=1).astype(np.int64)
    out["share_at_best"] = out["n_at_best"] / g.kk
    out["cost_median"] = cost_median
    packed.p0 = starts[rows, out["best_start"]]
    return _finish(packed, out, finish)


def n_problems(x, y, groups) -> int:
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
    if isinstance(kw["p0"], PartialStart):
        ckw["p0"] = kw["p0"].rows(a, b, total)
    elif kw["p0"] is not None and kw["p0"] is not NO_START:
        ckw["p0"] = _per_problem(np.asarray(kw["p0"], dtype=float), a, b, total, 2)
    lb, ub = kw["bounds"]
    ckw["bounds"] = tuple(_per_problem(np.asarray(v, dtype=float), a, b, total, 2)
                          for v in (lb, ub))
    return cx, cy, ckw


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


def take_problems(packed, a: int, b: int):
    """Problems a:b of a packed batch (with its own points: no shared grid) as a packed batch
    of their own; each problem's rows are the same values, so its fit is the same bits."""
    if packed.inputs_grid is not None or callable(packed._x) or callable(packed._inputs):
        raise ValueError("take_problems: a batch on a shared grid is sliced before packing")
    p, q = int(packed.offsets[a]), int(packed.offsets[b])

    def rows(v, lo, hi):
        return None if v is None else v[lo:hi]

    out = replace(packed, _x=packed.x[p:q], y=packed.y[p:q], target=packed.target[p:q],
                  sigma=rows(packed.sigma, p, q), weights=rows(packed.weights, p, q),
                  offsets=packed.offsets[a:b + 1] - p, _inputs=packed.inputs[p:q],
                  p0=rows(packed.p0, a, b), lower=packed.lower[a:b], upper=packed.upper[a:b],
                  labels=rows(packed.labels, a, b), clusters=rows(packed.clusters, p, q),
                  n_omitted=rows(packed.n_omitted, a, b))
    return out


def solve_batch(backend: Backend, model, x, y, *, groups, labels, total: int,
                chunk_size: int, pack_args: dict, options: Options, finish: Finish,
                n_threads: Optional[int] = None, grid: Optional[Grid] = None, k=None,
                progress: Optional[Progress] = None):
    """A whole batch through the plan, ``chunk_size`` problems packed and solved at a time
    (a batch given by ``groups`` is packed whole); every chunk is validated before the first
    is solved.  With ``progress`` (a :class:`lawfit._progress.Progress` counting problems),
    the chunks are smaller, sized to report every quarter second or so (the same results:
    each problem's fit depends on its own data alone).  Returns (out, offsets, cov, fun,
    jac, labels)."""
    kw = dict(pack_args, residuals=options.residuals, engine=backend.engine)
    if grid is not None:
        kw["p0"] = NO_START
    cost = 1 if grid is None else grid.n_starts

    def solve_one(packed, a, b):
        return solve_packed(backend, packed, options, finish, n_threads,
                            None if grid is None else grid.rows(a, b), k)

    # Lists and padded arrays are chunked before packing (a flat y is one problem, or a
    # batch given by groups: packed whole, then sliced for progress).
    by_rows = groups is None and (total > chunk_size or progress is not None) and (
        np.ndim(y) == 2 if not isinstance(y, (list, tuple)) else
        (len(y) == 0 or np.ndim(y[0]) >= 1))
    if not by_rows:
        packed = pack(model, x, y, groups=groups, **kw)
        if labels is not None:
            packed.labels = labels[packed.labels.astype(int)]
        if progress is None:
            parts = [solve_one(packed, 0, total)]
        else:
            parts = [solve_one(packed if (a, b) == (0, total) else
                               take_problems(packed, a, b), a, b)
                     for a, b in progress.chunks(0, total, chunk_size, cost)]
        out_labels = packed.labels
    else:
        ranges = [(a, min(a + chunk_size, total)) for a in range(0, total, chunk_size)]
        for a, b in ranges:  # every chunk is validated before any is solved
            cx, cy, ckw = _rows(x, y, kw, a, b, total)
            pack(model, cx, cy, validate_only=True, first=a, **ckw)
        if progress is not None:
            ranges = progress.chunks(0, total, chunk_size, cost)
        parts = []
        for a, b in ranges:
            cx, cy, ckw = _rows(x, y, kw, a, b, total)
            parts.append(solve_one(pack(model, cx, cy, first=a, **ckw), a, b))
        out_labels = None
    if not parts:  # a batch of no problems
        parts = [solve_one(pack(model, x, y, groups=groups, **kw), 0, 0)]
    return (*_concatenate(parts), out_labels)


# The most problems the small-call route packs itself (its clean case: see solve_small); its
# results stay far below what lawfit.api.require_memory checks.  Up to a chunk
# (DEFAULT_CHUNK) the core's fit_grid takes the clean case, its results checked by the caller.
SMALL_PROBLEMS = 100_000


def solve_small(backend: Backend, model, x, y, p0, options: Options,
                n_threads: Optional[int], bounds=None, finish: Finish = Finish()):
    """The plan's shortcut for a small, clean call, or None where the call is not one:
    ``y`` a float64 (P, m) array of finite values (y > 0 for log residuals), ``x`` one grid
    for every problem ((m,) or (m, k), finite, > 0 where the model takes its logarithm),
    ``p0`` a finite float64 (P, n) or (n,) array within ``bounds`` (None: none; else a
    pair, each a number or an (n,) array, for every problem alike) or None (the model's
    data-driven start, as :func:`pack` makes it: :func:`guessed_start`), no weights or
    sigma, on the CPU backend, at most a chunk of problems (``DEFAULT_CHUNK``; the caller
    has checked that their results fit in memory).  With a start and without residuals to
    return, the core's ``fit_grid`` first tries to check and solve it in one call, from the
    arrays as they are.  Otherwise, up to SMALL_PROBLEMS problems, it packs what :func:`pack`
    would pack for it (the same arrays: the same bits, tests/test_small.py)
    with a few array operations, then solves and finishes it as :func:`solve_packed` does,
    so that a call of one or a few problems costs little beside its solve.  Anything else
    (a NaN, a bad value, a shape to check) goes the general way, which says what is
    wrong."""
    P, mpts = y.shape
    n = model.n_params
    if type(backend) is not Cpu or P == 0 or mpts == 0 or P > DEFAULT_CHUNK:
        return None
    if x.ndim == 1:
        if model.n_inputs != 1 or x.shape[0] != mpts:
            return None
        grid = x[:, None]
    elif x.shape == (mpts, model.n_inputs) and (model.n_inputs > 1 or mpts != 1):
        grid = x
    else:
        return None
    if P * mpts >= 8192:  # helper threads may join: woken now, as fit does
        backend.prepare(n_threads, P, P * mpts)
    if p0 is not None and not finish.return_residuals:
        # The core's fit_grid checks the clean case itself (finite values, starts within the
        # bounds, shapes and layouts it reads as they are) and solves it in one call, without
        # a Packed or a copy, with the covariances as finish.cov gives them (the same bits);
        # it returns None where the call is not that case, for the steps below.
        u = _inputs(model, grid, y, options)
        rows = (None, None) if bounds is None else _bound_rows(bounds, n)
        out = None if u is None or rows is None else backend.fit_grid(
            model, u, np.log(y) if options.log_residuals else y, p0, *rows, options,
            n_threads, (finish.absolute_sigma, finish.singular) if finish.return_cov else None)
        if out is not None:
            return FitResult(model, out, None, cov=out.pop("cov", None),
                             offsets=out.pop("offsets"), backend=backend.name)
    if P > SMALL_PROBLEMS:  # larger batches are packed (and checked) the general way
        return None
    if p0 is None:  # the data-driven start, as pack makes it (below)
        if not model.has_guess:
            return None  # the general path says that p0 is required
    elif p0.shape == (n,):
        p0 = np.broadcast_to(p0, (P, n))
    elif p0.shape != (P, n):
        return None
    # Finite (a sum is, exactly when every term is and nothing overflows) and positive
    # where a logarithm is taken, else the general path decides.
    if not (np.isfinite(y.sum()) and np.isfinite(grid.sum()) and
            (p0 is None or np.isfinite(p0.sum()))):
        return None
    grid = np.ascontiguousarray(grid)
    u = _inputs(model, grid, y, options)
    if u is None:
        return None
    ys = np.ascontiguousarray(y).reshape(-1)
    target = np.log(ys) if options.log_residuals else ys
    if bounds is None:  # the same read-only views each time (P and n alike)
        views = _UNBOUNDED.get((P, n))
        if views is None:
            if len(_UNBOUNDED) > 64:
                _UNBOUNDED.clear()
            views = _UNBOUNDED[(P, n)] = tuple(
                np.broadcast_to(np.full((1, n), v), (P, n)) for v in (-np.inf, np.inf))
        lower, upper = views
    else:
        rows = _bound_rows(bounds, n)
        if rows is None or (rows[0] > rows[1]).any() or (p0 is not None and (
                (p0 < rows[0]).any() or (p0 > rows[1]).any())):
            return None  # the general path says which
        # As pack gives bounds shared by all: a read-only broadcast view of the row.
        lower, upper = (np.broadcast_to(r.reshape(1, n), (P, n)) for r in rows)
    offsets = np.arange(0, (P + 1) * mpts, mpts, dtype=np.int64)

    def expand(a):  # a grid's rows for every problem, made only where something asks
        return lambda: np.ascontiguousarray(
            np.broadcast_to(a, (P,) + a.shape).reshape(-1, a.shape[1]))

    packed = Packed(model, expand(grid), ys, target, None, None, offsets, expand(u),
                    None if p0 is None else np.ascontiguousarray(p0, dtype=np.float64),
                    lower, upper, options.log_residuals, inputs_grid=u)
    if p0 is None:
        packed.p0 = guessed_start(packed, backend.engine)
    out = backend.solve(packed, options, n_threads=n_threads, return_jtj=finish.return_cov)
    out, offsets, cov, fun, jac = _finish(packed, out, finish)
    return FitResult(model, out, None, cov=cov, offsets=offsets, fun=fun, jac=jac,
                     backend=backend.name)


_UNBOUNDED: dict = {}  # (P, n) -> read-only views of the rows -inf and inf (no bounds)


def _bound_rows(bounds, n: int):
    """``bounds`` (lower, upper), each a number or an (n,) array, as two float64 (n,) rows;
    None where they are not that (or hold a NaN): the general path names what is wrong."""
    rows = []
    for b in bounds:
        b = np.asarray(b)
        if b.dtype.kind not in "fiu":
            return None
        b = b.astype(np.float64, copy=False)
        if b.shape == ():
            b = np.full(n, float(b))
        if b.shape != (n,) or np.isnan(b).any():
            return None
        rows.append(np.ascontiguousarray(b))
    return rows


def _inputs(model, grid, y, options: Options):
    """The model's inputs on the grid (what model.inputs_of gives: log x where it takes
    it), or None where a logarithm would meet a value <= 0 or a NaN, in the grid or (log
    residuals) in y: the general path decides those.  A built-in's log inputs on a small
    grid are kept by the grid's value (the same grid in call after call: one lookup)."""
    if options.log_residuals and not y.min() > 0:
        return None
    key = None
    if model.log_inputs and not model.is_law and grid.size <= _GRID_KEPT_SIZE:
        key = (grid.shape, grid.tobytes())
        u = _LOG_GRIDS.get(key)
        if u is not None:
            return u
    if model.log_inputs and not grid.min() > 0:
        return None
    if model.is_law:  # its columns; an input <= 0 under a logarithm goes the general way
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            try:
                return model.inputs_of(grid)
            except RuntimeWarning:
                return None
    u = np.log(grid) if model.log_inputs else grid
    if key is not None:
        if len(_LOG_GRIDS) >= _GRIDS_KEPT:
            _LOG_GRIDS.clear()
        u.flags.writeable = False  # (shared by the calls on this grid; read only)
        _LOG_GRIDS[key] = u
    return u


# The log of small grids by their shape and bytes (float64: equal bytes, equal values and
# logarithms), at most _GRIDS_KEPT of them.
_LOG_GRIDS: dict = {}
_GRIDS_KEPT = 16
_GRID_KEPT_SIZE = 1024
