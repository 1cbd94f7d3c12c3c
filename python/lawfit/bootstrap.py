"""``lawfit.bootstrap``: pairs-bootstrap uncertainty for a whole batch in one call.

Each problem is fitted once on its data (any ``p0``, a grid included); then every resample of
every problem is fitted from that optimum.  A resample is a vector of multinomial weights,
drawn inside the compiled solve from Philox4x32-10 keyed by (seed, problem, resample)
(cpp/include/lawfit/rng.h), never stored: the same seed gives the same resamples on every
backend, thread count and chunking.

Nothing is dropped without a word.  A resample whose fit stops at its evaluation budget
(MAX_NFEV) is fitted again from where it stopped, with a fresh budget, up to
``CONTINUE_ROUNDS`` times; with ``refit_failed`` a resample that still fails is fitted again
from a grid of starts.  What fails after that keeps its status and is left out of the
statistics, counted per problem (``n_failed``, ``status_counts()``), and a
``BootstrapWarning`` names every problem that loses more than 1% of its resamples.  A problem
whose full-data fit failed has no estimate to resample around: its resamples are not fitted,
and its standard errors and intervals are NaN, with a warning.

Every solve unit (a problem's resample, or its leave-one-out fit) depends on its problem's
data, start and bounds alone (``lawfit._backends.Units`` says explicitly which rows a unit
reads), so the results are bitwise the same for every ``chunk_size`` and thread count, and
the same as the problem's alone.
"""
from __future__ import annotations

import warnings
from collections import Counter
from typing import Optional

import numpy as np

from . import _backends
from ._backends import Resampling, Units, residuals_at
from ._options import Options, check_chunk, check_k, check_threads, is_real, positive_int
from ._packing import NO_START, check_nan_policy, pack
from ._plan import n_problems, solve_grid
from ._status import Status
from .api import _frame_column, _from_frame, fit, require_memory
from .grid import Grid
from .models import available, get

__all__ = ["bootstrap", "BootstrapResult", "BootstrapWarning"]

METHODS = ("pairs", "grouped", "residual")
INTERVALS = ("percentile", "bca")
# A unit that stops at its evaluation budget (MAX_NFEV) is solved again from where it
# stopped, with a fresh budget of max_nfev, at most this many times: a slow fit gets up to
# four budgets in all before it counts as failed.
CONTINUE_ROUNDS = 3
# A problem that loses more than this share of its resamples is named in a warning.
LOST_SHARE = 0.01
# Failures that come from the resample's own data, which no other start can change: not
# refitted from the refit_failed grid.
DATA_FAILURES = (int(Status.NONFINITE_DATA), int(Status.TOO_FEW_POINTS))


class BootstrapWarning(UserWarning):
    """Bootstrap resamples were lost (their fits failed), or a problem's full-data fit failed
    and its standard errors and intervals are NaN."""


class BootstrapResult:
    """Bootstrap results of a batch, batch dimension first.

    ``fit``: the full-data fits (a :class:`lawfit.FitResult`); ``samples`` (P, R, n): each
    resample's parameters (NaN where its fit failed); ``status`` (P, R): each resample's
    final status; ``n_converged``, ``n_failed`` (P,) and ``share_converged``;
    ``n_continued`` (P,): resamples that stopped at the evaluation budget and were continued
    (whatever their end); ``n_refit`` (P,): failed resamples fitted again from the
    ``refit_failed`` grid (their status is the refit's where it converged);
    ``status_counts()``: the resamples of each problem by status; ``fit_failed`` (P,): the
    problems whose full-data fit failed (their resamples are not fitted: they hold NaN and
    the full fit's status; their statistics are NaN).  ``se`` (P, n): the standard deviation
    of the converged samples; ``interval(level)``: percentile or BCa intervals.
    """

    def __init__(self, full, samples: np.ndarray, status: np.ndarray, seed: int,
                 jackknife=None, n_continued: Optional[np.ndarray] = None,
                 n_refit: Optional[np.ndarray] = None):
        P = len(samples)
        self.fit = full
        self.param_names = full.param_names
        self.samples = samples
        self.status = status
        self.seed = seed
        self.n_continued = np.zeros(P, np.int64) if n_continued is None else n_continued
        self.n_refit = np.zeros(P, np.int64) if n_refit is None else n_refit
        self._jackknife_fn = jackknife
        self._jackknife = None

    def jackknife(self) -> np.ndarray:
        """(P, J, n) leave-one-out estimates (one point, or one cluster for the grouped
        bootstrap, left out; J the most any problem has; NaN beyond a problem's own count and
        where a fit failed), fitted on first use; BCa's acceleration comes from them."""
        if self._jackknife is None:
            self._jackknife = self._jackknife_fn()
        return self._jackknife

    @property
    def n_resamples(self) -> int:
        return self.samples.shape[1]

    @property
    def converged(self) -> np.ndarray:
        """(P, R): the resamples whose fit converged (status > 0)."""
        return self.status > 0

    @property
    def n_converged(self) -> np.ndarray:
        return self.converged.sum(axis=1)

    @property
    def n_failed(self) -> np.ndarray:
        """(P,) resamples whose fit failed (left out of the statistics)."""
        return self.n_resamples - self.n_converged

    @property
    def share_converged(self) -> np.ndarray:
        return self.n_converged / self.n_resamples

    @property
    def fit_failed(self) -> np.ndarray:
        """(P,) the problems whose full-data fit failed: their statistics are NaN."""
        return ~np.asarray(self.fit.success)

    def status_counts(self) -> dict:
        """The resamples of each problem by final status: ``{name: (P,) counts}``, for the
        statuses that occur."""
        return {Status(int(c)).name: (self.status == c).sum(axis=1)
                for c in sorted(np.unique(self.status).tolist(), reverse=True)}

    @property
    def se(self) -> np.ndarray:
        """(P, n) bootstrap standard errors (ddof = 1) over the converged resamples; NaN for
        a problem whose full-data fit failed."""
        failed = _warn_failed_fits(self.fit)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a problem with < 2 converged
            se = np.nanstd(self.samples, axis=1, ddof=1)
        se[failed] = np.nan
        return se

    def interval(self, level: float = 0.95, method: str = "percentile"):
        """Intervals of the parameters at ``level``: (low, high), each (P, n).  ``method``:
        ``"percentile"``, or ``"bca"`` (bias-corrected and accelerated, Efron 1987: the bias
        from the share of samples below the full-data estimate, the acceleration from the
        jackknife estimates), computed as ``scipy.stats.bootstrap`` computes them.  NaN for
        a problem whose full-data fit failed."""
        return self.derive(lambda p: p, level, method)[1:]

    def derive(self, fn, level: float = 0.95, method: str = "percentile"):
        """A derived quantity with its intervals: ``fn`` maps parameters (..., n) to values
        (...) or (..., q), vectorised.  Returns (estimate, low, high), each (P,) or (P, q):
        the estimate from the full-data fit, the interval from the resamples; all three NaN
        for a problem whose full-data fit failed."""
        def apply(p):
            with np.errstate(all="ignore"):
                v = np.asarray(fn(p), dtype=np.float64)
            return v[..., None] if v.ndim == p.ndim - 1 else v

        failed = _warn_failed_fits(self.fit)
        est = np.array(apply(self.fit.x))  # a copy: NaN is written into it below
        samples = apply(self.samples)
        jk = (lambda: apply(self.jackknife())) if method == "bca" else None
        lo, hi = _intervals(est, samples, self.converged, jk, level, method)
        for a in (est, lo, hi):
            a[failed] = np.nan
        if np.ndim(fn(self.fit.x[:1])) == 1:  # a scalar per parameter set
            return est[:, 0], lo[:, 0], hi[:, 0]
        return est, lo, hi

    def predict(self, x, level: float = 0.95, method: str = "percentile"):
        """The fitted law at new inputs ``x`` ((M,) or (M, n_inputs), shared by all problems)
        with its bootstrap band: (estimate, low, high), each (P, M)."""
        k = self.fit.model.n_inputs
        xs = np.asarray(x, dtype=np.float64)
        xs = xs.reshape(-1, 1) if (k == 1 and xs.ndim <= 1) else xs
        if xs.ndim != 2 or xs.shape[1] != k:
            raise ValueError(f"x: expected shape (M,{' ' + str(k) if k > 1 else ''}) of new "
                             f"inputs, got {np.shape(x)}")
        M = len(xs)

        def values(p):  # p (..., n) -> (..., M)
            flat = p.reshape(-1, p.shape[-1])
            rows = np.ascontiguousarray(np.repeat(flat, M, axis=0))
            xx = np.ascontiguousarray(np.tile(xs, (len(flat), 1)))
            with np.errstate(all="ignore"):
                f, _ = _backends.evaluate(self.fit.model, rows, xx, False)
            return f.reshape(*p.shape[:-1], M)

        return self.derive(values, level, method)

    def compute_optimal(self, C, level: float = 0.95, method: str = "percentile"):
        """Chinchilla's compute-optimal allocation under C = 6 N D, with intervals:
        N_opt(C) = G (C/6)^(beta/(alpha+beta)), D_opt(C) = (C/6) / N_opt(C),
        G = (alpha A / (beta B))^(1/(alpha+beta)).  Returns a dict of (estimate, low, high):
        ``N_opt`` and ``D_opt`` (P, len(C)) and ``exponent`` beta / (alpha + beta) (P,)."""
        natural = self.fit.model.natural  # p -> (A, B, alpha, beta)
        if natural is None:
            with_it = [n for n in available() if get(n).natural is not None]
            raise ValueError(f"compute_optimal: needs a {' or '.join(with_it)} fit, not "
                             f"'{self.fit.model.name}'")
        C = np.atleast_1d(np.asarray(C, dtype=np.float64))

        def n_opt(p):
            A, B, al, be = natural(p)
            G = (al * A / (be * B)) ** (1 / (al + be))
            return G[..., None] * (C / 6) ** (be / (al + be))[..., None]

        out = {"N_opt": self.derive(n_opt, level, method),
               "D_opt": self.derive(lambda p: (C / 6) / n_opt(p), level, method),
               "exponent": self.derive(lambda p: natural(p)[3] / (natural(p)[2] +
                                                                  natural(p)[3]),
                                       level, method)}
        return out

    def __repr__(self) -> str:
        return (f"BootstrapResult(model={self.fit.model.name!r}, problems={len(self.fit)}, "
                f"resamples={self.n_resamples}, converged={int(self.n_converged.sum())}, "
                f"failed={int(self.n_failed.sum())}, fits_failed={int(self.fit_failed.sum())})")


def bootstrap(model, x=None, y=None, *, n_resamples: int = 1000, seed: int = 0,
              method: str = "pairs", p0=None, k=None, sigma=None, weights=None, groups=None,
              data=None, bounds=(-np.inf, np.inf), loss: str = "linear", f_scale: float = 1.0,
              residuals: str = "linear", ftol: Optional[float] = None,
              xtol: Optional[float] = None, gtol: Optional[float] = None,
              max_nfev: Optional[int] = None, backend: str = "auto", dtype="float64",
              n_threads: Optional[int] = None, chunk_size: Optional[int] = None,
              clusters=None, start="fit", refit_failed=None,
              nan_policy: str = "omit") -> BootstrapResult:
    """Fit every problem of a batch, then ``n_resamples`` pairs-bootstrap resamples of each.

    Arguments as in :func:`lawfit.fit` (the batch, the model, the objective, the solver
    options, ``dtype`` and ``nan_policy``; ``p0`` and ``k`` apply to the full-data fit, a
    grid included).  ``seed``: an integer in [0, 2^64) keying the resamples.  ``method``:
    ``"pairs"`` (points resampled with replacement); ``"grouped"`` (whole clusters of points
    resampled with replacement, ``clusters`` giving a numeric cluster label per point, shaped
    like ``y``, or a column of ``data``: e.g. all the checkpoints of one model size); or
    ``"residual"`` (fixed design: each point's fitted value plus a residual of the full-data
    fit drawn with replacement from its problem's, in the residual space of the fit and
    scaled by sigma).  ``chunk_size``: solve units (resamples, times the starts of a grid)
    solved at a time (default one million): it bounds the memory of every step, and the
    results do not depend on it.  ``start``: ``"fit"`` (each resample starts from its
    problem's full-data optimum) or a :func:`lawfit.grid` (each resample is fitted from that
    grid, its own objective ranking the starts and its best ``k`` refined, as ``fit`` does
    for a grid; a profile grid's coefficients come from the full data).

    A resample that stops at its evaluation budget is continued from where it stopped (up to
    ``CONTINUE_ROUNDS`` more budgets).  ``refit_failed``: None, a :func:`lawfit.grid`, or
    True (the ``start`` grid, else the ``p0`` grid): a resample whose fit still fails (for
    any reason but its own data: NONFINITE_DATA, TOO_FEW_POINTS) is fitted again from that
    grid, as ``start`` would fit it, and takes the refit where that converges.  Resamples
    that fail in the end are left out of the statistics and counted (``n_failed``,
    ``status_counts()``); a :class:`BootstrapWarning` names the problems that lose more
    than 1% of theirs.  A problem whose full-data fit failed is not resampled: its
    statistics are NaN, with a warning.
    """
    m = get(model)
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    R = positive_int(n_resamples, "n_resamples")
    if not (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
            and 0 <= seed < 2**64):
        raise ValueError(f"seed: expected an integer in [0, 2^64), got {seed!r}")
    chunk = check_chunk(chunk_size)
    if not (isinstance(start, Grid) or (isinstance(start, str) and start == "fit")):
        raise ValueError(f"start: expected 'fit' or a lawfit.grid, got {start!r}")
    refit_grid = _refit_grid(refit_failed, start, p0)
    if not any(isinstance(g, Grid) for g in (p0, start, refit_grid)) and k is not None:
        raise ValueError("k: only used with a grid (p0, start or refit_failed)")
    kk_arg = check_k(k)
    if (method == "grouped") != (clusters is not None):
        raise ValueError("clusters: required by method='grouped', and used by it only")
    check_nan_policy(nan_policy)
    n_threads = check_threads(n_threads)
    common = dict(sigma=sigma, weights=weights, groups=groups, bounds=bounds,
                  residuals=residuals, nan_policy=nan_policy)
    if data is not None:
        if isinstance(clusters, str):
            if clusters not in data.columns:
                raise ValueError(f"clusters: data has no column {clusters!r}")
            clusters = _frame_column(data, clusters, "clusters")
        x, y, sigma, weights, groups, _, _ = _from_frame(data, x, y, sigma, weights, groups,
                                                         nan_policy)
        common.update(sigma=sigma, weights=weights, groups=groups)
    if x is None or y is None:
        raise ValueError("x, y: both are required")
    P_given = n_problems(x, y, groups)
    # The samples, statuses and flags of every resample are the one allocation that grows
    # with problems x resamples: refused up front where they cannot fit.
    require_memory(P_given * R * (8 * m.n_params + 6),
                   f"bootstrap: {P_given:,} problems x {R:,} resamples")
    solver = _backends.get(backend, R * P_given)
    options = Options.build(m.n_params, loss=loss, f_scale=f_scale, residuals=residuals,
                            ftol=ftol, xtol=xtol, gtol=gtol, max_nfev=max_nfev, dtype=dtype,
                            backend=solver.name)
    # Packed (and so validated, the grids included) before any fit.
    packed = pack(m, x, y, p0=NO_START, clusters=clusters, engine=solver.engine, **common)
    if clusters is not None and not np.all(np.isfinite(packed.clusters)):
        raise ValueError("clusters: every label must be a finite number")
    P, n = packed.lower.shape
    grids = {}  # each grid's starts, (P, S, n), by the grid's id
    for g, arg in ((start, "start"), (refit_grid, "refit_failed")):
        if isinstance(g, Grid) and id(g) not in grids:
            grids[id(g)] = g.starts(m.param_names, P, packed.lower, packed.upper,
                                    packed=packed, model=m, arg=arg)
    full = fit(m, x, y, p0=p0, k=k if isinstance(p0, Grid) else None, loss=loss,
               f_scale=f_scale, ftol=ftol, xtol=xtol, gtol=gtol, max_nfev=max_nfev,
               backend=solver, dtype=dtype, n_threads=n_threads, chunk_size=chunk_size,
               **common)
    ok = np.asarray(full.success)
    # Resamples start from the full-data optimum, clipped into the bounds (an fp32 solution
    # of a fixed parameter is the bound rounded to fp32, a hair outside it in fp64).  A
    # failed problem's row is never read (its resamples are not fitted): any finite start.
    packed.p0 = np.clip(np.where(np.isfinite(full.x), full.x, 0.0), packed.lower, packed.upper)
    fit_t = fit_r = None
    if method == "residual":
        # Fitted targets and standardised residuals at the full-data optimum, per point.
        r, _ = residuals_at(packed, packed.p0)
        sig = 1.0 if packed.sigma is None else packed.sigma
        fit_t, fit_r = np.ascontiguousarray(packed.target + r * sig), np.ascontiguousarray(-r)
    units = _Units(solver, packed, options, int(seed), fit_t, fit_r, n_threads, chunk)

    samples = np.full((P, R, n), np.nan)
    status = np.empty((P, R), dtype=np.int32)
    status[~ok] = full.status[~ok, None]  # not fitted: the full fit's status
    continued = np.zeros((P, R), dtype=bool)
    refit = np.zeros((P, R), dtype=bool)
    flat = (samples.reshape(P * R, n), status.reshape(-1), continued.reshape(-1),
            refit.reshape(-1))
    problems = np.flatnonzero(ok)
    U = len(problems) * R  # the units: problem-major, resample-minor
    start_starts = grids[id(start)] if isinstance(start, Grid) else None
    refit_starts = None if refit_grid is None else grids[id(refit_grid)]
    for u0 in range(0, U, chunk):
        u = np.arange(u0, min(U, u0 + chunk))
        data_of, res = problems[u // R], (u % R).astype(np.uint32)
        rows = data_of * R + res
        xs, st, flat[2][rows], flat[3][rows] = units.resamples(
            data_of, res, method, start_starts, refit_starts, kk_arg)
        flat[0][rows] = np.where((st > 0)[:, None], xs, np.nan)
        flat[1][rows] = st
    _warn_failed_fits(full)
    _warn_lost(status, ok, R)
    return BootstrapResult(full, samples, status, int(seed),
                           _jackknife_fn(units, ok, n, method, packed),
                           continued.sum(axis=1), refit.sum(axis=1))


def _refit_grid(refit_failed, start, p0) -> Optional[Grid]:
    """The grid that refit_failed names (None: no refits)."""
    if refit_failed is None or refit_failed is False:
        return None
    if isinstance(refit_failed, Grid):
        return refit_failed
    if refit_failed is True:
        for g in (start, p0):
            if isinstance(g, Grid):
                return g
        raise ValueError("refit_failed: True refits from the start or p0 grid, and neither is "
                         "a lawfit.grid; pass refit_failed=lawfit.grid(...)")
    raise ValueError(f"refit_failed: expected None, True or a lawfit.grid, got {refit_failed!r}")


class _Units:
    """The fits of solve units of one packed batch: unit i fits problem data_of[i] with the
    weights of its resample resample_of[i] (in a resampling ``mode`` of
    ``_backends.RESAMPLE_MODES``).  Each unit's result depends on its own problem, start,
    bounds and resample alone; ``chunk`` bounds the units (times a grid's starts) in one
    call."""

    def __init__(self, solver, packed, options: Options, seed: int, fit_t, fit_r,
                 n_threads, chunk: int):
        self.solver, self.packed, self.options, self.seed = solver, packed, options, seed
        self.fit_t, self.fit_r = fit_t, fit_r
        self.n_threads, self.chunk = n_threads, chunk

    def resampling(self, mode: str) -> Resampling:
        return Resampling(self.seed, mode, self.fit_t, self.fit_r)

    def _solve(self, units: Units) -> dict:
        return self.solver.solve(self.packed, self.options, units, n_threads=self.n_threads)

    def _continue(self, out: dict, units: Units) -> np.ndarray:
        """Units of ``out`` that stopped at the evaluation budget, solved again from where
        they stopped (clipped into their bounds) with a fresh budget, up to CONTINUE_ROUNDS
        times; ``out`` is updated in place.  Returns which units were continued."""
        continued = np.zeros(len(out["status"]), dtype=bool)
        data_of, resample_of = units.data_of, units.resample_of
        for _ in range(CONTINUE_ROUNDS):
            idx = np.flatnonzero(out["status"] == Status.MAX_NFEV)
            if not idx.size:
                break
            continued[idx] = True
            lower = self.packed.lower[data_of[idx]]
            upper = self.packed.upper[data_of[idx]]
            again = self._solve(Units(data_of[idx], "unit", np.clip(out["x"][idx], lower, upper),
                                      lower, upper, resample_of[idx], units.resampling))
            for key in ("x", "cost", "status"):
                out[key][idx] = again[key]
        return continued

    def resamples(self, data_of, resample_of, mode, start_starts, refit_starts, k):
        """Resample units from their problem's start, or from the grid ``start_starts`` (P,
        S, n); those that fail (but for their own data) refitted from ``refit_starts``, the
        refit kept where it converges.  Returns (x, status, continued, refitted)."""
        if start_starts is None:
            x, status, continued = self.from_start(data_of, resample_of, mode)
        else:
            x, status, continued = self.from_grid(data_of, resample_of, mode, start_starts, k)
        refitted = np.zeros(len(status), dtype=bool)
        if refit_starts is not None:
            lost = np.flatnonzero((status <= 0) & ~np.isin(status, DATA_FAILURES))
            if lost.size:
                xr, sr, cr = self.from_grid(data_of[lost], resample_of[lost], mode,
                                            refit_starts, k)
                won = lost[sr > 0]
                x[won], status[won] = xr[sr > 0], sr[sr > 0]
                continued[lost] |= cr
                refitted[lost] = True
        return x, status, continued, refitted

    def from_start(self, data_of, resample_of, mode):
        """Each unit from its problem's start (packed.p0): (x, status, continued)."""
        pk = self.packed
        units = Units(data_of, "problem", pk.p0, pk.lower, pk.upper, resample_of,
                      self.resampling(mode))
        out = self._solve(units)
        continued = self._continue(out, units)
        return out["x"], out["status"], continued

    def from_grid(self, data_of, resample_of, mode, starts, k):
        """Each unit from a grid of starts (P, S, n), as ``fit`` fits a grid
        (lawfit._plan.solve_grid: the unit's own objective ranks the starts, the best ``k``
        are refined, continued where they stop at the budget, and best_of chooses).
        Returns (x, status, continued)."""
        U, (S, n) = len(data_of), starts.shape[1:]
        x = np.empty((U, n))
        status = np.empty(U, dtype=np.int32)
        continued = np.zeros(U, dtype=bool)
        cont = {}

        def refine(units: Units) -> dict:
            out = self._solve(units)
            cont["mask"] = self._continue(out, units)
            return out

        step = max(1, self.chunk // S)
        for a in range(0, U, step):
            b = min(U, a + step)
            g = solve_grid(self.solver, self.packed, self.options, starts, data_of[a:b], k,
                           resample_of=resample_of[a:b], resampling=self.resampling(mode),
                           n_threads=self.n_threads, refine=refine)
            x[a:b], status[a:b] = g.out["x"][g.pick], g.out["status"][g.pick]
            continued[a:b] = cont["mask"].reshape(b - a, g.kk).any(axis=1)
        return x, status, continued


def _warn(message: str) -> None:
    """A BootstrapWarning from a helper of lawfit's, attributed to its caller's caller."""
    warnings.warn(message, BootstrapWarning, stacklevel=4)


def _warn_failed_fits(full) -> np.ndarray:
    """Warns when some full-data fits failed; returns which (P,)."""
    failed = ~np.asarray(full.success)
    if failed.any():
        _warn(f"{_problems(failed)}: the full-data fit failed "
              f"({_by_status(full.status[failed])}); their resamples are not fitted, and "
              f"their standard errors and intervals are NaN (BootstrapResult.fit_failed)")
    return failed


def _problems(mask: np.ndarray, most: int = 5) -> str:
    """'3 of 10 problems (0, 4, 7)': the problems where mask holds."""
    idx = np.flatnonzero(mask)
    named = ", ".join(map(str, idx[:most])) + (", ..." if idx.size > most else "")
    return f"{idx.size} of {mask.size} problems ({named})"


def _by_status(status: np.ndarray) -> str:
    """'MAX_NFEV: 12, TOO_FEW_POINTS: 3': how many of ``status`` have each code."""
    counts = Counter(np.asarray(status).ravel().tolist())
    return ", ".join(f"{Status(int(c)).name}: {v}" for c, v in
                     sorted(counts.items(), key=lambda kv: -kv[1]))


def _warn_lost(status: np.ndarray, ok: np.ndarray, R: int) -> None:
    """Names the problems (with a full-data fit) that lost more than LOST_SHARE of their
    resamples, and the share each lost."""
    lost = (status <= 0).sum(axis=1)
    heavy = ok & (lost > LOST_SHARE * R)
    if not heavy.any():
        return
    idx = np.flatnonzero(heavy)
    worst = idx[np.argsort(-lost[idx], kind="stable")][:5]
    shares = ", ".join(f"problem {i}: {lost[i]} of {R} ({lost[i] / R:.1%})" for i in worst)
    _warn(f"{idx.size} of {int(ok.sum())} problems lost more than {LOST_SHARE:.0%} of their "
          f"resamples to failed fits ({shares}{', ...' if idx.size > 5 else ''}; by status: "
          f"{_by_status(status[heavy][status[heavy] <= 0])}); their standard errors and "
          f"intervals come from the converged resamples alone (BootstrapResult.n_failed, "
          f"status_counts()).  A larger max_nfev, or refit_failed=lawfit.grid(...), may "
          f"recover them")


def _intervals(est, samples, converged, jackknife, level, method):
    """Percentile or BCa intervals of ``samples`` (P, R, q) around ``est`` (P, q); only the
    converged resamples count.  ``jackknife``: a callable giving (P, J, q), for BCa."""
    if not (is_real(level) and 0 < level < 1):
        raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
    if method not in INTERVALS:
        raise ValueError(f"method: expected one of {INTERVALS}, got {method!r}")
    a = (1 - level) / 2
    P, R, q = samples.shape
    if method == "percentile":
        lo_q, hi_q = np.full((P, q), a), np.full((P, q), 1 - a)
    else:
        from scipy.special import ndtr, ndtri

        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            n_ok = converged.sum(axis=1)[:, None]
            z0 = ndtri(np.sum((samples < est[:, None, :]) & converged[..., None], axis=1) / n_ok)
            jk = jackknife()
            d = np.nanmean(jk, axis=1, keepdims=True) - jk
            acc = np.nansum(d**3, axis=1) / (6 * np.nansum(d**2, axis=1) ** 1.5)
            za, zb = ndtri(a), ndtri(1 - a)
            lo_q = ndtr(z0 + (z0 + za) / (1 - acc * (z0 + za)))
            hi_q = ndtr(z0 + (z0 + zb) / (1 - acc * (z0 + zb)))
    # Quantiles at per-(problem, quantity) levels, as np.percentile's linear rule computes
    # them, over each problem's converged resamples (sorted, failed ones last).
    s = np.sort(np.where(converged[..., None], samples, np.inf), axis=1)
    n_ok = converged.sum(axis=1)[:, None]

    def quantile(level):
        pos = level * (n_ok - 1)
        ok = np.isfinite(pos) & (n_ok > 0)
        pos = np.where(ok, pos, 0.0)
        lo_i = np.floor(pos).astype(np.int64)
        hi_i = np.minimum(lo_i + 1, np.maximum(n_ok - 1, 0))
        frac = pos - lo_i
        v0 = np.take_along_axis(s, lo_i[:, None, :], axis=1)[:, 0]
        v1 = np.take_along_axis(s, hi_i[:, None, :], axis=1)[:, 0]
        with np.errstate(invalid="ignore"):
            v = np.where(frac > 0, v0 + frac * (v1 - v0), v0)
        return np.where(ok & np.isfinite(v0), v, np.nan)

    return quantile(lo_q), quantile(hi_q)


def _jackknife_fn(units: _Units, ok: np.ndarray, n: int, method: str, packed):
    """The leave-one-out fits (one point, or one cluster) of the problems whose full-data fit
    succeeded, from that fit, as a callable run on first use: (P, J, n), J the most points
    (clusters) any problem has, NaN beyond a problem's own count and where a fit failed."""
    def jackknife():
        if method == "grouped":
            counts = _backends.local_groups(packed)[1].astype(np.int64)
            mode = "grouped_jackknife"
        else:
            counts = packed.n_points
            mode = "jackknife"
        P = len(counts)
        J = int(counts.max()) if P else 0
        jk = np.full((P, J, n), np.nan)
        counts = np.where(ok, counts, 0)
        data_of = np.repeat(np.arange(P), counts)
        leave = np.arange(len(data_of)) - np.repeat(np.cumsum(counts) - counts, counts)
        for a in range(0, len(data_of), units.chunk):
            d, lv = data_of[a:a + units.chunk], leave[a:a + units.chunk]
            x, status, _ = units.from_start(d, lv.astype(np.uint32), mode)
            good = status > 0
            jk[d[good], lv[good]] = x[good]
        return jk
    return jackknife
