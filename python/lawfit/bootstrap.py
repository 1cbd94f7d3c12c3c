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

import inspect
import warnings
from collections import Counter
from typing import Callable, Optional

import numpy as np

from . import _backends
from ._backends import Resampling, Units, residuals_at
from ._dask import is_dask_collection
from ._options import Options, check_chunk, check_k, check_threads, is_real, positive_int
from ._named import named_bounds, named_p0
from ._packing import NO_START, check_nan_policy, pack
from ._plan import n_problems, solve_grid
from ._progress import check_progress, make_progress
from ._result import label_columns
from ._status import Status
from .api import _frame_column, _from_frame, fit, require_memory, warn_fragile
from .grid import Grid
from .models import available, get

__all__ = ["bootstrap", "BootstrapResult", "BootstrapWarning"]

METHODS = ("pairs", "grouped", "residual")
# The arrays of a saved bootstrap beside its fit's (lawfit._io).
BOOT_ARRAYS = ("samples", "status", "n_continued", "n_refit")
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


def _caller(fn, by: str, names) -> "Callable[[np.ndarray], object]":
    """``fn`` as a function of one parameter array (..., n), however it takes them (see
    BootstrapResult.derive's ``by``)."""
    if by not in ("auto", "array", "name", "mapping"):
        raise ValueError(f"by: expected 'auto', 'array', 'name' or 'mapping', got {by!r}")
    if not callable(fn):
        raise ValueError(f"fn: expected a function of the parameters, got {fn!r}")
    names = tuple(names)
    takes = None  # the names fn takes by keyword (None: all, through **kwargs)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        ps = list(sig.parameters.values())
        var_kw = any(q.kind is q.VAR_KEYWORD for q in ps)
        named = [q for q in ps if q.kind in (q.POSITIONAL_OR_KEYWORD, q.KEYWORD_ONLY)]
        required = [q.name for q in ps if q.default is q.empty and
                    q.kind not in (q.VAR_KEYWORD, q.VAR_POSITIONAL)]
        positional_only = any(q.kind is q.POSITIONAL_ONLY for q in ps)
        if not var_kw:
            takes = [q.name for q in named if q.name in names]
        if by == "auto":
            by_name = not positional_only and (
                (required and all(r in names for r in required)) or
                (var_kw and not required and not named))
            by = "name" if by_name else "array"
        if by == "name" and not var_kw:
            unknown = [r for r in required if r not in names]
            if unknown:
                raise ValueError(f"fn: argument(s) {', '.join(map(repr, unknown))} name no "
                                 f"parameter (the parameters: {', '.join(names)})")
    elif by == "auto":
        by = "array"
    if by == "array":
        return fn

    def by_names(p):
        cols = {n: p[..., j] for j, n in enumerate(names)}
        if by == "mapping":
            return fn(cols)
        return fn(**(cols if takes is None else {n: cols[n] for n in takes}))
    return by_names


class Estimate(tuple):
    """A derived quantity with its bootstrap interval: the tuple (estimate, low, high), each
    (P,) or (P, q), with attributes of those names, and ``level`` and ``method`` (the
    interval's).  ``to_frame()``: one row per problem (and column q), labelled by the
    batch's group labels where it has them."""

    def __new__(cls, estimate, low, high, level, method, labels=(None, None)):
        self = super().__new__(cls, (estimate, low, high))
        self.level, self.method, self._labels = level, method, labels
        return self

    def __getnewargs__(self):
        return (*self, self.level, self.method, self._labels)

    estimate = property(lambda self: self[0], doc="(P,) or (P, q): from the full-data fit")
    low = property(lambda self: self[1], doc="The interval's lower ends")
    high = property(lambda self: self[2], doc="The interval's upper ends")

    def __repr__(self) -> str:
        return (f"Estimate(shape={np.shape(self[0])}, level={self.level}, "
                f"method={self.method!r})")

    def to_frame(self, name: str = "value", columns=None):
        """A pandas DataFrame: the problem's labels (or ``problem``), ``column`` (for a
        (P, q) quantity: ``columns[k]`` or k), ``{name}``, ``low``, ``high``."""
        pd = _pandas("Estimate.to_frame()")
        est, lo, hi = (np.asarray(a) for a in self)
        P = est.shape[0]
        lab = label_columns(*self._labels, P)
        if est.ndim == 1:
            return pd.DataFrame({**lab, name: est, "low": lo, "high": hi})
        q = est.shape[1]
        cols = {k: _repeat(v, q) for k, v in lab.items()}
        cols["column"] = np.tile(np.arange(q) if columns is None else np.asarray(columns), P)
        cols.update({name: est.ravel(), "low": lo.ravel(), "high": hi.ravel()})
        return pd.DataFrame(cols)


class ComputeOptimal(dict):
    """Chinchilla's compute-optimal allocation (``BootstrapResult.compute_optimal``): a dict
    of :class:`Estimate` (``"N_opt"``, ``"D_opt"``: (P, len(C)); ``"exponent"``: (P,)),
    each also an attribute, with the budgets ``C``, ``level`` and ``method``."""

    def __init__(self, values: dict, C, level, method, labels=(None, None)):
        super().__init__(values)
        self.C, self.level, self.method, self._labels = C, level, method, labels

    def __reduce__(self):
        return (ComputeOptimal, (dict(self), self.C, self.level, self.method, self._labels))

    N_opt = property(lambda self: self["N_opt"])
    D_opt = property(lambda self: self["D_opt"])
    exponent = property(lambda self: self["exponent"])

    def __repr__(self) -> str:
        return (f"ComputeOptimal(problems={len(self['exponent'][0])}, C={self.C.tolist()}, "
                f"level={self.level}, method={self.method!r})")

    def to_frame(self):
        """A pandas DataFrame, one row per problem and budget C: the problem's labels (or
        ``problem``), ``C``, then ``N_opt``, ``D_opt`` and ``exponent`` each with its
        ``_low`` and ``_high``."""
        pd = _pandas("ComputeOptimal.to_frame()")
        P, q = np.shape(self["N_opt"][0])
        cols = {k: _repeat(v, q) for k, v in label_columns(*self._labels, P).items()}
        cols["C"] = np.tile(self.C, P)
        for key in ("N_opt", "D_opt", "exponent"):
            est, lo, hi = (np.asarray(a) for a in self[key])
            if est.ndim == 1:
                est, lo, hi = (np.repeat(a, q) for a in (est, lo, hi))
            cols.update({key: est.ravel(), f"{key}_low": lo.ravel(),
                         f"{key}_high": hi.ravel()})
        return pd.DataFrame(cols)


def _pct_digits(level: float) -> int:
    """Decimals that show ``level`` as a percentage exactly enough (0.95: 0, 0.975: 1)."""
    for d in range(4):
        if abs(round(level * 100, d) - level * 100) < 1e-9:
            return d
    return 4


def _repeat(values, q: int) -> list:
    """Each of ``values`` ``q`` times in a row (a list: pandas infers its type)."""
    return [v for v in values for _ in range(q)]


def _pandas(what: str):
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in the test extra
        raise ImportError(f"{what} needs pandas: pip install pandas") from None
    return pd


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
    the full fit's status; their statistics are NaN).  ``other_basin`` (P, R), with
    ``start=lawfit.grid(...)`` only (else None): the resamples whose fit from the grid
    converged to a lower cost (beyond the at-best tolerance) than the same resample's fit
    from the full-data optimum, which a bootstrap started there would have reported;
    ``n_other_basin`` (P,) counts them.  ``se`` (P, n): the standard deviation of the
    converged samples; ``interval(level)``: percentile or BCa intervals.
    """

    other_basin: Optional[np.ndarray] = None  # a result pickled before it existed has none

    def __init__(self, full, samples: np.ndarray, status: np.ndarray, seed: int,
                 jackknife=None, n_continued: Optional[np.ndarray] = None,
                 n_refit: Optional[np.ndarray] = None, method: str = "pairs",
                 other_basin: Optional[np.ndarray] = None):
        P = len(samples)
        self.method = method
        self.fit = full
        self.param_names = full.param_names
        self.samples = samples
        self.status = status
        self.seed = seed
        self.n_continued = np.zeros(P, np.int64) if n_continued is None else n_continued
        self.n_refit = np.zeros(P, np.int64) if n_refit is None else n_refit
        self.other_basin = other_basin
        self._jackknife_fn = jackknife
        self._jackknife = None

    def jackknife(self) -> np.ndarray:
        """(P, J, n) leave-one-out estimates (one point, or one cluster for the grouped
        bootstrap, left out; J the most any problem has; NaN beyond a problem's own count and
        where a fit failed), fitted on first use; BCa's acceleration comes from them."""
        if self._jackknife is None:
            if self._jackknife_fn is None:
                raise ValueError("jackknife: this result was loaded from a file saved before "
                                 "its jackknife was computed; call jackknife() (or a BCa "
                                 "interval) before save(), or bootstrap again")
            self._jackknife = self._jackknife_fn()
        return self._jackknife

    @property
    def n_other_basin(self) -> Optional[np.ndarray]:
        """(P,) resamples that the grid fitted in a lower basin than the full-data optimum's
        start reaches (see ``other_basin``); None without a grid start."""
        return None if self.other_basin is None else self.other_basin.sum(axis=1)

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
        return tuple(self.derive(lambda p: p, level, method, by="array")[1:])

    def derive(self, fn, level: float = 0.95, method: str = "percentile", *,
               by: str = "auto") -> "Estimate":
        """A derived quantity with its intervals, from a vectorised function of the
        parameters.

        Parameters
        ----------
        fn : callable
            Takes the parameters and returns values (...) or (..., q).  How it takes them
            (``by``): ``"array"``, one array (..., n) in ``param_names`` order (``lambda p:
            p[..., 3] / p[..., 4]``); ``"name"``, keyword arguments named as the parameters,
            each (...) (``lambda alpha, beta: alpha / beta``; only those ``fn`` names are
            passed, unless it takes ``**kwargs``); ``"mapping"``, one dict of them by name.
            ``"auto"`` (default): by name where every argument of ``fn`` without a default
            is a parameter's name (or ``fn`` takes ``**kwargs`` only), else as one array.
        level, method
            As in :meth:`interval`.
        by : {"auto", "array", "name", "mapping"}

        Returns
        -------
        Estimate
            A tuple (estimate, low, high), each (P,) or (P, q): the estimate from the
            full-data fit, the interval from the resamples; all three NaN for a problem
            whose full-data fit failed.  Its ``level`` and ``method`` say what the interval
            is; ``to_frame()`` labels it by problem.
        """
        call = _caller(fn, by, self.param_names)

        def apply(p):
            with np.errstate(all="ignore"):
                v = np.asarray(call(p), dtype=np.float64)
            return v[..., None] if v.ndim == p.ndim - 1 else v

        failed = _warn_failed_fits(self.fit)
        est = np.array(apply(self.fit.x))  # a copy: NaN is written into it below
        samples = apply(self.samples)
        jk = (lambda: apply(self.jackknife())) if method == "bca" else None
        lo, hi = _intervals(est, samples, self.converged, jk, level, method)
        for a in (est, lo, hi):
            a[failed] = np.nan
        labels = (self.fit.labels, self.fit.label_names)
        if np.ndim(call(self.fit.x[:1])) == 1:  # a scalar per parameter set
            return Estimate(est[:, 0], lo[:, 0], hi[:, 0], level, method, labels)
        return Estimate(est, lo, hi, level, method, labels)

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

        return self.derive(values, level, method, by="array")

    def compute_optimal(self, C, level: float = 0.95, method: str = "percentile"):
        """Chinchilla's compute-optimal allocation under C = 6 N D, with intervals:
        N_opt(C) = G (C/6)^(beta/(alpha+beta)), D_opt(C) = (C/6) / N_opt(C),
        G = (alpha A / (beta B))^(1/(alpha+beta)).

        Returns
        -------
        ComputeOptimal
            A dict of :class:`Estimate` (estimate, low, high) by name, also attributes:
            ``N_opt`` and ``D_opt`` (P, len(C)) and ``exponent`` beta / (alpha + beta) (P,);
            ``C``, ``level`` and ``method``; ``to_frame()`` gives one row per problem and
            budget.
        """
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

        kw = dict(level=level, method=method, by="array")
        return ComputeOptimal(
            {"N_opt": self.derive(n_opt, **kw),
             "D_opt": self.derive(lambda p: (C / 6) / n_opt(p), **kw),
             "exponent": self.derive(lambda p: natural(p)[3] / (natural(p)[2] +
                                                                natural(p)[3]), **kw)},
            C, level, method, (self.fit.labels, self.fit.label_names))

    def _stats(self, idx, level: float, method: str):
        """(se, low, high) of the problems ``idx``, each (len(idx), n): what ``se`` and
        ``interval`` give for those rows, computed for them alone and without warnings
        (NaN for a problem whose full-data fit failed)."""
        conv = self.converged[idx]
        samples = self.samples[idx]
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            se = np.nanstd(samples, axis=1, ddof=1)
        jk = (lambda: self.jackknife()[idx]) if method == "bca" else None
        lo, hi = _intervals(np.array(self.fit.x[idx]), samples, conv, jk, level, method)
        failed = self.fit_failed[idx]
        for a in (se, lo, hi):
            a[failed] = np.nan
        return se, lo, hi

    def to_frame(self, level: float = 0.95, method: str = "percentile", *,
                 samples: bool = False):
        """A tidy pandas DataFrame.

        Parameters
        ----------
        level, method
            The intervals' (as in :meth:`interval`); the frame's ``attrs`` record them.
        samples : bool
            False: one row per problem and parameter, with the problem's labels (or
            ``problem``), ``parameter``, ``estimate`` (the full-data fit), ``se`` (bootstrap
            standard error), ``low``, ``high``, ``n_converged``, ``n_failed``, the
            full-data fit's ``status`` and ``success``, and with a grid start
            ``n_other_basin``.  True: the resamples in long form,
            one row per problem, resample and parameter: labels (or ``problem``),
            ``resample``, ``parameter``, ``value`` (NaN where its fit failed), ``status``.
        """
        pd = _pandas("to_frame()")
        P, R, n = self.samples.shape
        lab = label_columns(self.fit.labels, self.fit.label_names, P)
        if samples:
            cols = {k: _repeat(v, R * n) for k, v in lab.items()}
            cols["resample"] = np.tile(np.repeat(np.arange(R), n), P)
            cols["parameter"] = np.tile(np.asarray(self.param_names, dtype=object), P * R)
            cols["value"] = self.samples.reshape(-1)
            cols["status"] = np.repeat(self.status.reshape(-1), n)
            df = pd.DataFrame(cols)
        else:
            se, lo, hi = self._stats(np.arange(P), level, method)
            cols = {k: _repeat(v, n) for k, v in lab.items()}
            cols["parameter"] = np.tile(np.asarray(self.param_names, dtype=object), P)
            cols.update(estimate=np.asarray(self.fit.x).reshape(-1), se=se.reshape(-1),
                        low=lo.reshape(-1), high=hi.reshape(-1),
                        n_converged=np.repeat(self.n_converged, n),
                        n_failed=np.repeat(self.n_failed, n),
                        status=np.repeat(np.asarray(self.fit.status), n),
                        success=np.repeat(np.asarray(self.fit.success), n))
            if self.other_basin is not None:
                cols["n_other_basin"] = np.repeat(self.n_other_basin, n)
            df = pd.DataFrame(cols)
            df.attrs.update(level=level, method=method)
        df.attrs.update(model=self.fit.model.name, n_resamples=R, seed=self.seed,
                        resampling=self.method)
        return df

    def save(self, path, *, compressed: bool = True) -> None:
        """Write the result to ``path`` as an ``.npz`` archive, read back by
        :func:`lawfit.load` (the format: ``lawfit._io``): the full-data fit, the samples
        and statuses, and the jackknife where it was computed (a loaded result's BCa
        intervals need it: call ``jackknife()`` first).  ``pickle`` carries the result
        whole, the jackknife's inputs included."""
        from ._save import write

        fit = self.fit.get()
        arrays = fit._saved_arrays()
        arrays.update({f"boot.{k}": np.asarray(getattr(self, k)) for k in BOOT_ARRAYS})
        if self._jackknife is not None:
            arrays["boot.jackknife"] = self._jackknife
        if self.other_basin is not None:
            arrays["boot.other_basin"] = self.other_basin
        write(path, "BootstrapResult", fit, arrays,
              dict(seed=str(self.seed), method=self.method), compressed)

    def summary(self, problems=None, *, level: float = 0.95, method: str = "percentile",
                max_problems: int = 3, min_correl: float = 0.1) -> str:
        """A report, as lmfit's ``fit_report``: the model, the resampling (method, count,
        seed) and how many resamples converged, then for each problem shown the full-data
        fit (labels, status, cost, points, degrees of freedom), its resamples (converged,
        failed by status) and its parameters: the estimate, the bootstrap standard error
        and the interval at ``level`` by ``method`` (labelled so), and the correlations of
        the resampled parameters above ``min_correl`` in magnitude.

        Parameters
        ----------
        problems : int or sequence of int, optional
            The problems to show; by default the first ``max_problems`` (and a count of the
            rest).
        level, method
            The intervals' (as in :meth:`interval`).
        max_problems : int
        min_correl : float

        Returns
        -------
        str
            ``print(result)`` prints the same (at the defaults); ``_repr_html_`` renders it
            for notebooks.
        """
        return self._report(problems, level, method, max_problems, min_correl).text()

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return self._report(None, 0.95, "percentile", 3, 0.1).html()

    def _report(self, problems, level, method, max_problems, min_correl):
        from ._report import (Report, Section, check_correl, correlations, counts_text,
                              fmt, problem_rows)
        from ._result import _more

        if not (is_real(level) and 0 < level < 1):
            raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
        if method not in INTERVALS:
            raise ValueError(f"method: expected one of {INTERVALS}, got {method!r}")
        min_correl = check_correl(min_correl)
        fit = self.fit.get()
        P, R = self.status.shape
        idx = problem_rows(P, problems, max_problems)
        header = Section(f"BootstrapResult: {P} problem{'s' if P != 1 else ''} x {R} "
                         f"resamples", fit._header_lines())
        at = [k for k, _ in header.lines].index("status")
        header.lines[at] = ("full-data fits", header.lines[at][1])  # their status counts
        header.lines[at + 1:at + 1] = [
            ("resampling", f"{self.method}, {R} resamples, seed {self.seed}"),
            ("resamples", f"{int(self.n_converged.sum())} of {P * R} converged")]
        if self.fit_failed.any():
            nf = int(self.fit_failed.sum())
            header.lines.append(("fit failed", f"{nf} problem{'s' if nf != 1 else ''} "
                                               f"(statistics NaN; resamples not fitted)"))
        label = f"{level:.{_pct_digits(level)}%} {method} interval"
        header.notes.append(f"SE: the standard deviation of the converged resamples' "
                            f"estimates; the {label} from them")
        se, lo, hi = self._stats(idx, level, method)
        sections = []
        for row, i in enumerate(idx):
            sec = Section(fit._problem_title(i), fit._problem_lines(i))
            failed = {Status(int(c)).name: int(v)
                      for c, v in zip(*np.unique(self.status[i][~self.converged[i]],
                                                 return_counts=True))}
            text = f"{int(self.n_converged[i])} of {R} converged"
            if failed:
                text += f"; failed: {counts_text(failed)}"
            if self.n_continued[i]:
                text += f"; {int(self.n_continued[i])} continued past max_nfev"
            if self.n_refit[i]:
                text += f"; {int(self.n_refit[i])} refitted from the refit_failed grid"
            if self.other_basin is not None:
                text += (f"; {int(self.n_other_basin[i])} reached a lower optimum from the "
                         f"grid than from the full-data optimum")
            sec.lines.append(("resamples", text))
            rows = [["parameter", "estimate", "SE", label]]
            for j, name in enumerate(self.param_names):
                rows.append([name, fmt(fit.x[i, j]), fmt(se[row, j], 4),
                             f"[{fmt(lo[row, j])}, {fmt(hi[row, j])}]"])
            sec.table = rows
            conv = self.converged[i]
            if conv.sum() > 2:
                with np.errstate(all="ignore"):
                    cov = np.cov(self.samples[i][conv], rowvar=False)
                sec.correl = correlations(np.atleast_2d(cov), self.param_names, min_correl)
                sec.correl_title = f"correlations of the resamples (|r| > {min_correl:g})"
            sections.append(sec)
        return Report(header, sections, _more(P, idx, problems))

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
              nan_policy: str = "omit", progress=None, problem_ids=None) -> BootstrapResult:
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

    ``progress``: True shows a progress bar on stderr (needs tqdm: ``pip install
    'lawfit[progress]'``), a callable is called as ``progress(done, total)`` in fits (the
    full-data fits, then the resamples: problems x (1 + n_resamples) in all); the resamples
    are then solved in chunks sized to report about every quarter second (the same
    results), and Ctrl-C stops the call between two chunks.  With ``data`` and ``groups``,
    the fits keep the groups' labels (``result.fit.labels``, ``label_names``), as ``fit``
    does.

    ``problem_ids``: distinct integers in [0, 2^63), one per problem (in the batch's order:
    with ``data`` and ``groups``, the groups' sorted order), keying each problem's resamples
    in place of its position in the call.  A problem then gets the same resamples in
    whatever call, chunk or partition it is fitted (a study split across calls or Dask
    workers); by default problem i of a call is keyed by i.  A dask DataFrame in ``data``
    (with ``groups``) is fitted partition by partition on the workers, each group keyed by
    its place among all the groups: the same result, bit for bit, as the call on the pandas
    frame (lawfit/_dask.py).
    """
    if is_dask_collection(data) or is_dask_collection(y):
        args = {k: v for k, v in locals().items() if k != "model"}  # bootstrap's arguments
        from . import _dask

        result = _dask.run(bootstrap, model, args)
        warn_fragile(result.fit.share_at_best)
        _warn_failed_fits(result.fit)
        _warn_lost(result.status, ~result.fit_failed, result.n_resamples)
        return result
    m = get(model)
    check_progress(progress)
    p0 = named_p0(p0, m.param_names, m.has_guess)
    bounds = named_bounds(bounds, m.param_names)
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
    labels = label_names = None
    if data is not None:
        if isinstance(clusters, str):
            if clusters not in data.columns:
                raise ValueError(f"clusters: data has no column {clusters!r}")
            clusters = _frame_column(data, clusters, "clusters")
        x, y, sigma, weights, groups, labels, label_names = _from_frame(
            data, x, y, sigma, weights, groups, nan_policy)
        common.update(sigma=sigma, weights=weights, groups=groups)
    if x is None or y is None:
        raise ValueError("x, y: both are required")
    P_given = n_problems(x, y, groups)
    # The samples, statuses and flags of every resample are the one allocation that grows
    # with problems x resamples: refused up front where they cannot fit.
    require_memory(P_given * R * (8 * m.n_params + 6),
                   f"bootstrap: {P_given:,} problems x {R:,} resamples")
    solver = _backends.get(backend, R * P_given, m)
    options = Options.build(m.n_params, loss=loss, f_scale=f_scale, residuals=residuals,
                            ftol=ftol, xtol=xtol, gtol=gtol, max_nfev=max_nfev, dtype=dtype,
                            backend=solver.name)
    # Packed (and so validated, the grids included) before any fit.
    packed = pack(m, x, y, p0=NO_START, clusters=clusters, engine=solver.engine, **common)
    if clusters is not None and not np.all(np.isfinite(packed.clusters)):
        raise ValueError("clusters: every label must be a finite number")
    P, n = packed.lower.shape
    keys = _problem_keys(problem_ids, P)
    grids = {}  # each grid's starts, (P, S, n), by the grid's id
    for g, arg in ((start, "start"), (refit_grid, "refit_failed")):
        if isinstance(g, Grid) and id(g) not in grids:
            grids[id(g)] = g.starts(m.param_names, P, packed.lower, packed.upper,
                                    packed=packed, model=m, arg=arg)
    bar = make_progress(progress, P * (1 + R), "bootstrap", "fit")
    try:
        result = _resample(m, x, y, p0, k, kk_arg, loss, f_scale, ftol, xtol, gtol, max_nfev,
                           solver, dtype, n_threads, chunk_size, chunk, common, packed,
                           options, grids, start, refit_grid, method, seed, R, labels,
                           label_names, bar, keys)
    finally:
        if bar is not None:
            bar.close()
    _warn_failed_fits(result.fit)
    _warn_lost(result.status, ~result.fit_failed, R)
    return result


def _resample(m, x, y, p0, k, kk_arg, loss, f_scale, ftol, xtol, gtol, max_nfev, solver,
              dtype, n_threads, chunk_size, chunk, common, packed, options, grids, start,
              refit_grid, method, seed, R, labels, label_names, bar,
              keys=None) -> BootstrapResult:
    """bootstrap's work once its arguments are checked and its batch packed: the full-data
    fits, then every resample (chunks of ``chunk`` units; sized by ``bar`` where given)."""
    P, n = packed.lower.shape
    full = fit(m, x, y, p0=p0, k=k if isinstance(p0, Grid) else None, loss=loss,
               f_scale=f_scale, ftol=ftol, xtol=xtol, gtol=gtol, max_nfev=max_nfev,
               backend=solver, dtype=dtype, n_threads=n_threads, chunk_size=chunk_size,
               progress=bar, **common)
    if labels is not None:  # the group labels of a DataFrame's columns, as fit keeps them
        full.labels = labels[np.asarray(full.labels).astype(int)]
    if label_names is not None:
        full.label_names = label_names
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
    units = _Units(solver, packed, options, int(seed), fit_t, fit_r, n_threads, chunk, keys)

    samples = np.full((P, R, n), np.nan)
    status = np.empty((P, R), dtype=np.int32)
    status[~ok] = full.status[~ok, None]  # not fitted: the full fit's status
    continued = np.zeros((P, R), dtype=bool)
    refit = np.zeros((P, R), dtype=bool)
    other_basin = np.zeros((P, R), dtype=bool) if isinstance(start, Grid) else None
    flat = (samples.reshape(P * R, n), status.reshape(-1), continued.reshape(-1),
            refit.reshape(-1))
    problems = np.flatnonzero(ok)
    U = len(problems) * R  # the units: problem-major, resample-minor
    start_starts = grids[id(start)] if isinstance(start, Grid) else None
    refit_starts = None if refit_grid is None else grids[id(refit_grid)]
    if bar is None:
        ranges = ((u0, min(U, u0 + chunk)) for u0 in range(0, U, chunk))
    else:  # the problems not resampled count as done
        bar.set(P + (P - len(problems)) * R)
        ranges = bar.chunks(0, U, chunk, 1 if start_starts is None else
                            start_starts.shape[1])
    for u0, u1 in ranges:
        u = np.arange(u0, u1)
        data_of, res = problems[u // R], (u % R).astype(np.uint32)
        rows = data_of * R + res
        xs, st, flat[2][rows], flat[3][rows], other = units.resamples(
            data_of, res, method, start_starts, refit_starts, kk_arg)
        flat[0][rows] = np.where((st > 0)[:, None], xs, np.nan)
        flat[1][rows] = st
        if other is not None:
            other_basin.reshape(-1)[rows] = other
    return BootstrapResult(full, samples, status, int(seed),
                           _Jackknife(units, ok, n, method),
                           continued.sum(axis=1), refit.sum(axis=1), method=method,
                           other_basin=other_basin)


def _problem_keys(problem_ids, P: int) -> Optional[np.ndarray]:
    """bootstrap's ``problem_ids`` as the streams' keys, int64 (P,), or None (the problems'
    indices); ValueError naming it where they are not P distinct integers in [0, 2^63)."""
    if problem_ids is None:
        return None
    ids = np.asarray(problem_ids)
    if ids.shape != (P,) or not (ids.dtype.kind in "iu" or (ids.dtype == object and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in ids))):
        raise ValueError(f"problem_ids: expected {P} integers, one per problem, got "
                         f"{ids.dtype} of shape {ids.shape}")
    if P and (int(ids.min()) < 0 or int(ids.max()) >= 2**63):
        raise ValueError("problem_ids: each must be in [0, 2^63)")
    keys = ids.astype(np.int64)
    uniq, counts = np.unique(keys, return_counts=True)
    if (counts > 1).any():
        dup = int(uniq[counts > 1][0])
        first, second = np.flatnonzero(keys == dup)[:2]
        raise ValueError(f"problem_ids: must be distinct; problems {first} and {second} "
                         f"share {dup}")
    return keys


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
                 n_threads, chunk: int, keys: Optional[np.ndarray] = None):
        self.solver, self.packed, self.options, self.seed = solver, packed, options, seed
        self.fit_t, self.fit_r, self.keys = fit_t, fit_r, keys
        self.n_threads, self.chunk = n_threads, chunk

    def __getstate__(self) -> dict:
        # A shared grid's inputs are made on demand by a closure: made now, to pickle.
        self.packed.x, self.packed.inputs  # noqa: B018 (each property caches its array)
        return dict(self.__dict__)

    def resampling(self, mode: str) -> Resampling:
        return Resampling(self.seed, mode, self.fit_t, self.fit_r, self.keys)

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
        refit kept where it converges.  Returns (x, status, continued, refitted,
        other_basin): other_basin (None without a grid) says where the grid's fit converged
        to a lower cost than the same resample's fit from its problem's start (the full-data
        optimum) reaches, beyond at_best_rtol: where a bootstrap started at the optimum
        would have stayed in another basin."""
        other_basin = None
        if start_starts is None:
            x, status, _, continued = self.from_start(data_of, resample_of, mode)
        else:
            x, status, cost, continued = self.from_grid(data_of, resample_of, mode,
                                                        start_starts, k)
            _, warm_status, warm_cost, _ = self.from_start(data_of, resample_of, mode)
            with np.errstate(invalid="ignore"):
                lower = cost < warm_cost - self.options.at_best_rtol * np.abs(cost)
            other_basin = (status > 0) & ((warm_status <= 0) | lower)
        refitted = np.zeros(len(status), dtype=bool)
        if refit_starts is not None:
            lost = np.flatnonzero((status <= 0) & ~np.isin(status, DATA_FAILURES))
            if lost.size:
                xr, sr, _, cr = self.from_grid(data_of[lost], resample_of[lost], mode,
                                               refit_starts, k)
                won = lost[sr > 0]
                x[won], status[won] = xr[sr > 0], sr[sr > 0]
                continued[lost] |= cr
                refitted[lost] = True
        return x, status, continued, refitted, other_basin

    def from_start(self, data_of, resample_of, mode):
        """Each unit from its problem's start (packed.p0): (x, status, cost, continued)."""
        pk = self.packed
        units = Units(data_of, "problem", pk.p0, pk.lower, pk.upper, resample_of,
                      self.resampling(mode))
        out = self._solve(units)
        continued = self._continue(out, units)
        return out["x"], out["status"], out["cost"], continued

    def from_grid(self, data_of, resample_of, mode, starts, k):
        """Each unit from a grid of starts (P, S, n), as ``fit`` fits a grid
        (lawfit._plan.solve_grid: the unit's own objective ranks the starts, the best ``k``
        are refined, continued where they stop at the budget, and best_of chooses).
        Returns (x, status, cost, continued)."""
        U, (S, n) = len(data_of), starts.shape[1:]
        x = np.empty((U, n))
        cost = np.empty(U)
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
            cost[a:b] = g.out["cost"][g.pick]
            continued[a:b] = cont["mask"].reshape(b - a, g.kk).any(axis=1)
        return x, status, cost, continued


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


class _Jackknife:
    """The leave-one-out fits (one point, or one cluster) of the problems whose full-data fit
    succeeded, from that fit, run when called: (P, J, n), J the most points (clusters) any
    problem has, NaN beyond a problem's own count and where a fit failed.  It keeps what
    they need (the packed batch, the solver, the options), so a result pickles with it."""

    def __init__(self, units: _Units, ok: np.ndarray, n: int, method: str):
        self.units, self.ok, self.n, self.method = units, ok, n, method

    def __call__(self) -> np.ndarray:
        units, ok, n, packed = self.units, self.ok, self.n, self.units.packed
        if self.method == "grouped":
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
            x, status, _, _ = units.from_start(d, lv.astype(np.uint32), mode)
            good = status > 0
            jk[d[good], lv[good]] = x[good]
        return jk
