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

METHODS = ("pairs",)


class BootstrapResult:
    """Bootstrap results of a batch, batch dimension first.

    ``fit``: the full-data fits (a :class:`lawfit.FitResult`); ``samples`` (P, R, n): each
    resample's parameters (NaN where its fit failed); ``status`` (P, R); ``n_converged`` (P,)
    and ``share_converged``; ``se`` (P, n): the standard deviation of the converged samples;
    ``interval(level)``: percentile intervals.
    """

    def __init__(self, full, samples: np.ndarray, status: np.ndarray, seed: int):
        self.fit = full
        self.param_names = full.param_names
        self.samples = samples
        self.status = status
        self.seed = seed

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

    def interval(self, level: float = 0.95):
        """Percentile intervals at ``level``: (low, high), each (P, n)."""
        if not (_is_real(level) and 0 < level < 1):
            raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
        a = (1 - level) / 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a problem with none converged
            q = np.nanquantile(self.samples, [a, 1 - a], axis=1)
        return q[0], q[1]

    def __repr__(self) -> str:
        return (f"BootstrapResult(model={self.fit.model.name!r}, problems={len(self.fit)}, "
                f"resamples={self.n_resamples}, converged={int(self.n_converged.sum())})")


def bootstrap(model, x=None, y=None, *, n_resamples: int = 1000, seed: int = 0,
              method: str = "pairs", p0=None, k=None, sigma=None, weights=None, groups=None,
              data=None, bounds=(-np.inf, np.inf), loss: str = "linear", f_scale: float = 1.0,
              residuals: str = "linear", ftol: float = 1e-8, xtol: float = 1e-8,
              gtol: float = 1e-8, max_nfev: Optional[int] = None, backend: str = "auto",
              n_threads: Optional[int] = None, chunk_size: Optional[int] = None
              ) -> BootstrapResult:
    """Fit every problem of a batch, then ``n_resamples`` pairs-bootstrap resamples of each.

    Arguments as in :func:`lawfit.fit` (the batch, the model, the objective and the solver
    options; ``p0`` and ``k`` apply to the full-data fit, a grid included).  ``seed``: an
    integer in [0, 2^64) keying the resamples.  ``method``: ``"pairs"`` (points resampled
    with replacement).  ``chunk_size``: resample fits solved at a time (default one million).
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
    packed = pack(m, x, y, p0=full.x, **common)
    P, n = packed.p0.shape
    max_nfev = 100 * n if max_nfev is None else max_nfev
    samples = np.full((P, R, n), np.nan)
    status = np.zeros((P, R), dtype=np.int32)
    step = max(1, chunk // R)
    for a in range(0, P, step):
        b = min(P, a + step)
        data_of = np.repeat(np.arange(a, b), R)
        out = _backends.run(name, packed, loss=loss, f_scale=f_scale, ftol=ftol, xtol=xtol,
                            gtol=gtol, max_nfev=max_nfev, n_threads=n_threads,
                            data_of=data_of, p0=packed.p0, lower=packed.lower,
                            upper=packed.upper,
                            resample_of=np.tile(np.arange(R, dtype=np.uint32), b - a),
                            seed=int(seed))
        st = out["status"].reshape(b - a, R)
        status[a:b] = st
        samples[a:b] = np.where((st > 0)[..., None], out["x"].reshape(b - a, R, n), np.nan)
    return BootstrapResult(full, samples, status, int(seed))
