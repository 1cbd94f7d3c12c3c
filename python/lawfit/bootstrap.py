"""``lawfit.bootstrap``: pairs-bootstrap uncertainty for a whole batch in one call.

Each problem is fitted once on its data (any ``p0``, a grid included); then every resample of
every problem is fitted from that optimum.  A resample is a vector of multinomial weights,
drawn inside the compiled solve from Philox4x32-10 keyed by (seed, problem, resample)
(cpp/include/lawfit/rng.h), never stored: the same seed gives the same resamples on every
backend, thread count and chunking.  Resamples whose fit fails keep their status and are left
out of the statistics (``n_converged`` counts the rest).
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from . import _backends
from ._packing import pack
from .api import (DEFAULT_CHUNK, _is_real, _n_problems, check_dtype, fit, positive_int,
                  tolerances)
from .models import get

__all__ = ["bootstrap", "BootstrapResult"]

METHODS = ("pairs", "grouped", "residual")
INTERVALS = ("percentile", "bca")


class BootstrapResult:
    """Bootstrap results of a batch, batch dimension first.

    ``fit``: the full-data fits (a :class:`lawfit.FitResult`); ``samples`` (P, R, n): each
    resample's parameters (NaN where its fit failed); ``status`` (P, R); ``n_converged`` (P,)
    and ``share_converged``; ``se`` (P, n): the standard deviation of the converged samples;
    ``interval(level)``: percentile intervals.
    """

    def __init__(self, full, samples: np.ndarray, status: np.ndarray, seed: int,
                 jackknife=None):
        self.fit = full
        self.param_names = full.param_names
        self.samples = samples
        self.status = status
        self.seed = seed
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
    def share_converged(self) -> np.ndarray:
        return self.n_converged / self.n_resamples

    @property
    def se(self) -> np.ndarray:
        """(P, n) bootstrap standard errors (ddof = 1) over the converged resamples."""
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a problem with < 2 converged
            return np.nanstd(self.samples, axis=1, ddof=1)

    def interval(self, level: float = 0.95, method: str = "percentile"):
        """Intervals of the parameters at ``level``: (low, high), each (P, n).  ``method``:
        ``"percentile"``, or ``"bca"`` (bias-corrected and accelerated, Efron 1987: the bias
        from the share of samples below the full-data estimate, the acceleration from the
        jackknife estimates), computed as ``scipy.stats.bootstrap`` computes them."""
        jk = self.jackknife if method == "bca" else None
        return _intervals(self.fit.x, self.samples, self.converged, jk, level, method)

    def derive(self, fn, level: float = 0.95, method: str = "percentile"):
        """A derived quantity with its intervals: ``fn`` maps parameters (..., n) to values
        (...) or (..., q), vectorised.  Returns (estimate, low, high), each (P,) or (P, q):
        the estimate from the full-data fit, the interval from the resamples."""
        def apply(p):
            with np.errstate(all="ignore"):
                v = np.asarray(fn(p), dtype=np.float64)
            return v[..., None] if v.ndim == p.ndim - 1 else v

        est = apply(self.fit.x)
        samples = apply(self.samples)
        jk = (lambda: apply(self.jackknife())) if method == "bca" else None
        lo, hi = _intervals(est, samples, self.converged, jk, level, method)
        if np.ndim(fn(self.fit.x[:1])) == 1:  # a scalar per parameter set
            return est[:, 0], lo[:, 0], hi[:, 0]
        return est, lo, hi

    def predict(self, x, level: float = 0.95, method: str = "percentile"):
        """The fitted law at new inputs ``x`` ((M,) or (M, n_inputs), shared by all problems)
        with its bootstrap band: (estimate, low, high), each (P, M)."""
        from . import _core

        name = self.fit.model.name
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
                f, _ = _core.evaluate_model(name, rows, xx, False)
            return f.reshape(*p.shape[:-1], M)

        return self.derive(values, level, method)

    def compute_optimal(self, C, level: float = 0.95, method: str = "percentile"):
        """Chinchilla's compute-optimal allocation under C = 6 N D, with intervals:
        N_opt(C) = G (C/6)^(beta/(alpha+beta)), D_opt(C) = (C/6) / N_opt(C),
        G = (alpha A / (beta B))^(1/(alpha+beta)).  Returns a dict of (estimate, low, high):
        ``N_opt`` and ``D_opt`` (P, len(C)) and ``exponent`` beta / (alpha + beta) (P,)."""
        name = self.fit.model.name
        if name not in ("chinchilla", "chinchilla_log"):
            raise ValueError(f"compute_optimal: needs a chinchilla or chinchilla_log fit, not "
                             f"'{name}'")
        C = np.atleast_1d(np.asarray(C, dtype=np.float64))

        def natural(p):
            if name == "chinchilla":
                return p[..., 1], p[..., 2], p[..., 3], p[..., 4]
            return np.exp(p[..., 0]), np.exp(p[..., 1]), p[..., 3], p[..., 4]

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
                f"resamples={self.n_resamples}, converged={int(self.n_converged.sum())})")


def bootstrap(model, x=None, y=None, *, n_resamples: int = 1000, seed: int = 0,
              method: str = "pairs", p0=None, k=None, sigma=None, weights=None, groups=None,
              data=None, bounds=(-np.inf, np.inf), loss: str = "linear", f_scale: float = 1.0,
              residuals: str = "linear", ftol: Optional[float] = None,
              xtol: Optional[float] = None, gtol: Optional[float] = None,
              max_nfev: Optional[int] = None, backend: str = "auto", dtype="float64",
              n_threads: Optional[int] = None, chunk_size: Optional[int] = None,
              clusters=None, start="fit") -> BootstrapResult:
    """Fit every problem of a batch, then ``n_resamples`` pairs-bootstrap resamples of each.

    Arguments as in :func:`lawfit.fit` (the batch, the model, the objective, the solver
    options and ``dtype``; ``p0`` and ``k`` apply to the full-data fit, a grid included).  ``seed``: an
    integer in [0, 2^64) keying the resamples.  ``method``: ``"pairs"`` (points resampled
    with replacement); ``"grouped"`` (whole clusters of points resampled with replacement,
    ``clusters`` giving a numeric cluster label per point, shaped like ``y``, or a column of
    ``data``: e.g. all the checkpoints of one model size); or ``"residual"`` (fixed design: each point's fitted value
    plus a residual of the full-data fit drawn with replacement from its problem's, in the
    residual space of the fit and scaled by sigma).  ``chunk_size``: resample fits solved at a time (default
    one million).  ``start``: ``"fit"`` (each resample starts from its problem's full-data
    optimum) or a :func:`lawfit.grid` (each resample is fitted from that grid, its own
    objective ranking the starts and its best ``k`` refined, as ``fit`` does for a grid;
    a profile grid's coefficients come from the full data).
    """
    m = get(model)
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    R = positive_int(n_resamples, "n_resamples")
    if not (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
            and 0 <= seed < 2**64):
        raise ValueError(f"seed: expected an integer in [0, 2^64), got {seed!r}")
    chunk = DEFAULT_CHUNK if chunk_size is None else positive_int(chunk_size, "chunk_size")
    from .grid import Grid

    if not (isinstance(start, Grid) or (isinstance(start, str) and start == "fit")):
        raise ValueError(f"start: expected 'fit' or a lawfit.grid, got {start!r}")
    if (method == "grouped") != (clusters is not None):
        raise ValueError("clusters: required by method='grouped', and used by it only")
    common = dict(sigma=sigma, weights=weights, groups=groups, bounds=bounds,
                  residuals=residuals)
    if data is not None:
        from .api import _from_frame

        if isinstance(clusters, str):
            if clusters not in data.columns:
                raise ValueError(f"clusters: data has no column {clusters!r}")
            clusters = data[clusters].to_numpy(dtype=float)
        x, y, sigma, weights, groups, _, _ = _from_frame(data, x, y, sigma, weights, groups)
        common.update(sigma=sigma, weights=weights, groups=groups)
    name = _backends.resolve(backend, R * _n_problems(x, y, groups))
    dtype = check_dtype(dtype, name)
    ftol, xtol, gtol = tolerances(dtype, ftol, xtol, gtol)
    full = fit(m, x, y, p0=p0, k=k, loss=loss, f_scale=f_scale, ftol=ftol, xtol=xtol,
               gtol=gtol, max_nfev=max_nfev, backend=name, dtype=dtype, n_threads=n_threads,
               **common)
    # Resamples start from the full-data optimum (or, where that fit stopped before any
    # evaluation, its start), clipped into the bounds.
    packed = pack(m, x, y, p0=full.x, clusters=clusters, **common)
    if clusters is not None and not np.all(np.isfinite(packed.clusters)):
        raise ValueError("clusters: every label must be a finite number")
    P, n = packed.p0.shape
    max_nfev = 100 * n if max_nfev is None else max_nfev
    solve = dict(dtype=dtype, loss=loss, f_scale=f_scale, ftol=ftol, xtol=xtol, gtol=gtol,
                 max_nfev=max_nfev, n_threads=n_threads, p0=packed.p0, lower=packed.lower,
                 upper=packed.upper, seed=int(seed))
    extra = {}
    if method == "residual":
        # Fitted targets and standardised residuals at the full-data optimum, per point.
        from .api import residuals_at

        r, _ = residuals_at(packed, packed.p0)
        sig = 1.0 if packed.sigma is None else packed.sigma
        extra = dict(fit_t=np.ascontiguousarray(packed.t + r * sig),
                     fit_r=np.ascontiguousarray(-r))
    samples = np.full((P, R, n), np.nan)
    status = np.zeros((P, R), dtype=np.int32)
    if isinstance(start, Grid):
        from .api import DEFAULT_K

        starts = start.starts(m.param_names, P, packed.lower, packed.upper, packed=packed,
                              model_name=m.name)
        S = starts.shape[1]
        kk = S if (k if k is not None else DEFAULT_K) == "all" else \
            min(S, int(k if k is not None else DEFAULT_K))
        step = max(1, chunk // (R * S))
        for a in range(0, P, step):
            b = min(P, a + step)
            res = np.tile(np.repeat(np.arange(R, dtype=np.uint32), S), b - a)
            data_of = np.repeat(np.arange(a, b), R * S)
            p_all = np.broadcast_to(starts[a:b, None], (b - a, R, S, n)).reshape(-1, n)
            f0 = _backends.objective(name, packed, p_all, data_of, dtype=dtype, loss=loss,
                                     f_scale=f_scale, n_threads=n_threads, resample_of=res,
                                     seed=int(seed), resample_mode=method, **extra)
            sel = np.argsort(f0.reshape(b - a, R, S), axis=2, kind="stable")[..., :kk]
            p_sel = np.take_along_axis(starts[a:b, None], sel[..., None], axis=2)
            units = (b - a) * R * kk
            run = dict(solve, p0=np.ascontiguousarray(p_sel.reshape(units, n)),
                       lower=np.repeat(packed.lower[a:b], R * kk, axis=0),
                       upper=np.repeat(packed.upper[a:b], R * kk, axis=0))
            out = _backends.run(name, packed, data_of=np.repeat(np.arange(a, b), R * kk),
                                resample_of=np.tile(np.repeat(np.arange(R, dtype=np.uint32),
                                                              kk), b - a),
                                resample_mode=method, **extra, **run)
            cost = out["cost"].reshape(b - a, R, kk)
            st = out["status"].reshape(b - a, R, kk)
            key = np.where((st > 0) & np.isfinite(cost), cost, np.inf)
            best = np.argmin(key, axis=2)  # the lowest converged cost; ties to the earlier
            pick = np.take_along_axis(st, best[..., None], axis=2)[..., 0]
            xs = out["x"].reshape(b - a, R, kk, n)
            xb = np.take_along_axis(xs, best[..., None, None], axis=2)[:, :, 0]
            status[a:b] = pick
            samples[a:b] = np.where((pick > 0)[..., None], xb, np.nan)
        return BootstrapResult(full, samples, status, int(seed), _jackknife_fn(
            name, packed, P, n, method, solve))
    step = max(1, chunk // R)
    for a in range(0, P, step):
        b = min(P, a + step)
        data_of = np.repeat(np.arange(a, b), R)
        out = _backends.run(name, packed, data_of=data_of,
                            resample_of=np.tile(np.arange(R, dtype=np.uint32), b - a),
                            resample_mode=method, **extra, **solve)
        st = out["status"].reshape(b - a, R)
        status[a:b] = st
        samples[a:b] = np.where((st > 0)[..., None], out["x"].reshape(b - a, R, n), np.nan)

    return BootstrapResult(full, samples, status, int(seed),
                           _jackknife_fn(name, packed, P, n, method, solve))


def _intervals(est, samples, converged, jackknife, level, method):
    """Percentile or BCa intervals of ``samples`` (P, R, q) around ``est`` (P, q); only the
    converged resamples count.  ``jackknife``: a callable giving (P, J, q), for BCa."""
    if not (_is_real(level) and 0 < level < 1):
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


def _jackknife_fn(name, packed, P, n, method, solve):
    """The leave-one-out fits (one point, or one cluster), as a callable run on first use."""
    def jackknife():
        if method == "grouped":
            counts = _backends.local_groups(packed)[1].astype(np.int64)
        else:
            counts = packed.n_points
        J = int(counts.max()) if P else 0
        data_of = np.repeat(np.arange(P), counts)
        leave = np.arange(len(data_of)) - np.repeat(np.cumsum(counts) - counts, counts)
        out = _backends.run(name, packed, data_of=data_of,
                            resample_of=leave.astype(np.uint32),
                            resample_mode="grouped_jackknife" if method == "grouped"
                            else "jackknife", **solve)
        jk = np.full((P, J, n), np.nan)
        ok = out["status"] > 0
        jk[data_of[ok], leave[ok]] = out["x"][ok]
        return jk
    return jackknife
