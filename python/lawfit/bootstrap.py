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
from .api import DEFAULT_CHUNK, _is_real, fit, positive_int
from .models import get

__all__ = ["bootstrap", "BootstrapResult"]

METHODS = ("pairs", "grouped")
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
        """Intervals at ``level``: (low, high), each (P, n).  ``method``: ``"percentile"``,
        or ``"bca"`` (bias-corrected and accelerated, Efron 1987: the bias from the share of
        samples below the full-data estimate, the acceleration from jackknife estimates),
        computed as ``scipy.stats.bootstrap`` computes them."""
        if not (_is_real(level) and 0 < level < 1):
            raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
        if method not in INTERVALS:
            raise ValueError(f"method: expected one of {INTERVALS}, got {method!r}")
        a = (1 - level) / 2
        if method == "percentile":
            lo_q = np.full(self.samples.shape[::2], a)
            hi_q = np.full(self.samples.shape[::2], 1 - a)
        else:
            from scipy.special import ndtr, ndtri

            est = self.fit.x[:, None, :]
            with np.errstate(invalid="ignore", divide="ignore"):
                below = np.sum(self.samples < est, axis=1) / self.n_converged[:, None]
                z0 = ndtri(below)
                jk = self.jackknife()
                d = np.nanmean(jk, axis=1, keepdims=True) - jk
                acc = np.nansum(d**3, axis=1) / (6 * np.nansum(d**2, axis=1) ** 1.5)
                za, zb = ndtri(a), ndtri(1 - a)
                lo_q = ndtr(z0 + (z0 + za) / (1 - acc * (z0 + za)))
                hi_q = ndtr(z0 + (z0 + zb) / (1 - acc * (z0 + zb)))
        P, R, n = self.samples.shape
        lo, hi = np.full((P, n), np.nan), np.full((P, n), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a problem with none converged
            for i in range(P):
                s = self.samples[i][self.converged[i]]
                if len(s) == 0:
                    continue
                for j in range(n):
                    if np.isfinite(lo_q[i, j]) and np.isfinite(hi_q[i, j]):
                        lo[i, j], hi[i, j] = np.percentile(s[:, j], [100 * lo_q[i, j],
                                                                     100 * hi_q[i, j]])
        return lo, hi

    def __repr__(self) -> str:
        return (f"BootstrapResult(model={self.fit.model.name!r}, problems={len(self.fit)}, "
                f"resamples={self.n_resamples}, converged={int(self.n_converged.sum())})")


def bootstrap(model, x=None, y=None, *, n_resamples: int = 1000, seed: int = 0,
              method: str = "pairs", p0=None, k=None, sigma=None, weights=None, groups=None,
              data=None, bounds=(-np.inf, np.inf), loss: str = "linear", f_scale: float = 1.0,
              residuals: str = "linear", ftol: float = 1e-8, xtol: float = 1e-8,
              gtol: float = 1e-8, max_nfev: Optional[int] = None, backend: str = "auto",
              n_threads: Optional[int] = None, chunk_size: Optional[int] = None,
              clusters=None) -> BootstrapResult:
    """Fit every problem of a batch, then ``n_resamples`` pairs-bootstrap resamples of each.

    Arguments as in :func:`lawfit.fit` (the batch, the model, the objective and the solver
    options; ``p0`` and ``k`` apply to the full-data fit, a grid included).  ``seed``: an
    integer in [0, 2^64) keying the resamples.  ``method``: ``"pairs"`` (points resampled
    with replacement) or ``"grouped"`` (whole clusters of points resampled with replacement,
    ``clusters`` giving a numeric cluster label per point, shaped like ``y``: e.g. all the
    checkpoints of one model size).  ``chunk_size``: resample fits solved at a time (default
    one million).
    """
    m = get(model)
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    R = positive_int(n_resamples, "n_resamples")
    if not (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
            and 0 <= seed < 2**64):
        raise ValueError(f"seed: expected an integer in [0, 2^64), got {seed!r}")
    chunk = DEFAULT_CHUNK if chunk_size is None else positive_int(chunk_size, "chunk_size")
    name = _backends.resolve(backend)
    if name == "cuda":
        raise ValueError("backend: the bootstrap does not run on the CUDA backend yet; use "
                         "'cpu'")
    if (method == "grouped") != (clusters is not None):
        raise ValueError("clusters: required by method='grouped', and used by it only")
    common = dict(sigma=sigma, weights=weights, groups=groups, bounds=bounds,
                  residuals=residuals)
    if data is not None:
        from .api import _from_frame

        x, y, sigma, weights, groups, _, _ = _from_frame(data, x, y, sigma, weights, groups)
        common.update(sigma=sigma, weights=weights, groups=groups)
    full = fit(m, x, y, p0=p0, k=k, loss=loss, f_scale=f_scale, ftol=ftol, xtol=xtol,
               gtol=gtol, max_nfev=max_nfev, backend=name, n_threads=n_threads, **common)
    # Resamples start from the full-data optimum (or, where that fit stopped before any
    # evaluation, its start), clipped into the bounds.
    packed = pack(m, x, y, p0=full.x, clusters=clusters, **common)
    if clusters is not None and not np.all(np.isfinite(packed.clusters)):
        raise ValueError("clusters: every label must be a finite number")
    P, n = packed.p0.shape
    max_nfev = 100 * n if max_nfev is None else max_nfev
    solve = dict(loss=loss, f_scale=f_scale, ftol=ftol, xtol=xtol, gtol=gtol,
                 max_nfev=max_nfev, n_threads=n_threads, p0=packed.p0, lower=packed.lower,
                 upper=packed.upper, seed=int(seed))
    samples = np.full((P, R, n), np.nan)
    status = np.zeros((P, R), dtype=np.int32)
    step = max(1, chunk // R)
    for a in range(0, P, step):
        b = min(P, a + step)
        data_of = np.repeat(np.arange(a, b), R)
        out = _backends.run(name, packed, data_of=data_of,
                            resample_of=np.tile(np.arange(R, dtype=np.uint32), b - a),
                            resample_mode=method, **solve)
        st = out["status"].reshape(b - a, R)
        status[a:b] = st
        samples[a:b] = np.where((st > 0)[..., None], out["x"].reshape(b - a, R, n), np.nan)

    def jackknife():
        # One unit per point (or cluster) of each problem, that one left out.
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

    return BootstrapResult(full, samples, status, int(seed), jackknife)
