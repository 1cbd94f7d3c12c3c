"""Starting grids for multi-start fits: ``lawfit.fit(..., p0=lawfit.grid(...))``.

Scaling-law objectives have poor local minima, so a fit that matters starts from many
points.  A :class:`Grid` says where:

* ``lawfit.grid(E=[1, 2], A=[100, 1000], alpha=[0.2, 0.4])``: the Cartesian product of
  per-parameter values (every parameter of the model named; the last one varies fastest);
* ``lawfit.grid(starts=array)``: explicit starts, ``(S, n_params)`` for every problem or
  ``(problems, S, n_params)``, one grid per problem;
* ``lawfit.grid(sample="sobol", n=256, lower=..., upper=..., seed=0)`` (or
  ``sample="lhs"``, a Latin hypercube): a space-filling sample of the box, by
  ``scipy.stats.qmc``; without ``lower``/``upper`` the fit's bounds, which must be finite.

``fit`` then evaluates the objective at every start of every problem, refines the best ``k``
(or ``k="all"``) with Levenberg-Marquardt, and keeps each problem's lowest final cost; the
result says how many refined starts reached it (see ``lawfit.fit``).
"""
from __future__ import annotations

import itertools
from typing import Optional, Sequence

import numpy as np

__all__ = ["Grid", "grid"]

SAMPLES = ("sobol", "lhs")


class Grid:
    """Starting points for a multi-start fit; make one with :func:`grid`."""

    def __init__(self, values: Optional[dict] = None, starts=None, sample: Optional[str] = None,
                 n: Optional[int] = None, lower=None, upper=None, seed: int = 0):
        self.values = values
        self.explicit = starts
        self.sample = sample
        self.n = n
        self.lower = lower
        self.upper = upper
        self.seed = seed

    def __repr__(self) -> str:
        if self.values is not None:
            inner = ", ".join(f"{k}={len(v)} values" for k, v in self.values.items())
        elif self.explicit is not None:
            inner = f"starts of shape {np.shape(self.explicit)}"
        else:
            inner = f"sample={self.sample!r}, n={self.n}, seed={self.seed}"
        return f"lawfit.Grid({inner})"

    @property
    def n_starts(self) -> int:
        """Starts per problem."""
        if self.values is not None:
            return int(np.prod([len(v) for v in self.values.values()]))
        if self.explicit is not None:
            return int(np.shape(self.explicit)[-2])
        return int(self.n)

    def per_problem(self) -> bool:
        """True when the starts differ by problem ((problems, S, n) explicit starts)."""
        return self.explicit is not None and np.ndim(self.explicit) == 3

    def rows(self, a: int, b: int) -> "Grid":
        """The grid of problems a:b (itself, unless it has one grid per problem)."""
        if not self.per_problem():
            return self
        return Grid(starts=np.asarray(self.explicit)[a:b])

    def starts(self, names: Sequence[str], P: int, lower: np.ndarray,
               upper: np.ndarray) -> np.ndarray:
        """The starts of P problems, (P, S, n), checked: finite and inside each problem's
        bounds ``lower``/``upper`` (P, n).  Errors name ``p0``."""
        n = len(names)
        if self.values is not None:
            unknown = [k for k in self.values if k not in names]
            if unknown:
                raise ValueError(f"p0: the grid names unknown parameter(s) {unknown}; the "
                                 f"model's are {list(names)}")
            missing = [k for k in names if k not in self.values]
            if missing:
                raise ValueError(f"p0: the grid has no values for parameter(s) {missing}")
            axes = []
            for k in names:
                v = np.asarray(self.values[k], dtype=np.float64).reshape(-1)
                if v.size == 0:
                    raise ValueError(f"p0: the grid's values for '{k}' are empty")
                axes.append(v)
            S = np.array(list(itertools.product(*axes)), dtype=np.float64).reshape(-1, n)
        elif self.explicit is not None:
            S = np.asarray(self.explicit, dtype=np.float64)
            if S.ndim == 2 and S.shape[1] == n and S.shape[0] >= 1:
                pass
            elif S.ndim == 3 and S.shape[0] == P and S.shape[2] == n and S.shape[1] >= 1:
                pass
            else:
                raise ValueError(f"p0: grid starts must have shape (S, {n}) or ({P}, S, {n}), "
                                 f"got {S.shape}")
        else:
            lo = lower if self.lower is None else np.broadcast_to(
                np.asarray(self.lower, dtype=np.float64), (n,))
            hi = upper if self.upper is None else np.broadcast_to(
                np.asarray(self.upper, dtype=np.float64), (n,))
            lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
            if lo.ndim == 2:  # the fit's bounds: the same box for every problem
                if not (np.all(lo == lo[:1]) and np.all(hi == hi[:1])):
                    raise ValueError(f"p0: a {self.sample} grid samples one box; the bounds "
                                     f"differ by problem, so give lower= and upper=")
                lo, hi = lo[0], hi[0]
            if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
                raise ValueError(f"p0: a {self.sample} grid needs a finite box with lower < "
                                 f"upper for every parameter (lower={lo.tolist()}, "
                                 f"upper={hi.tolist()}); give lower= and upper=, or finite "
                                 f"bounds=")
            from scipy.stats import qmc

            if self.sample == "sobol":
                unit = qmc.Sobol(n, scramble=True, seed=self.seed).random(self.n)
            else:
                unit = qmc.LatinHypercube(n, seed=self.seed).random(self.n)
            S = qmc.scale(unit, lo, hi)
        if S.ndim == 2:
            S = np.broadcast_to(S, (P, *S.shape))
        bad = ~np.isfinite(S)
        if bad.any():
            i, s, j = np.argwhere(bad)[0]
            raise ValueError(f"p0: grid start {s} of problem {i} is not finite in parameter "
                             f"'{names[j]}'")
        out = (S < lower[:, None, :]) | (S > upper[:, None, :])
        if out.any():
            i, s, j = np.argwhere(out)[0]
            raise ValueError(f"p0: grid start {s} of problem {i} has '{names[j]}' = "
                             f"{S[i, s, j]}, outside its bounds [{lower[i, j]}, {upper[i, j]}]")
        return S


def grid(*, starts=None, sample: Optional[str] = None, n: Optional[int] = None, lower=None,
         upper=None, seed: int = 0, **values) -> Grid:
    """A grid of starting points for ``lawfit.fit(..., p0=...)``.

    Give exactly one of: per-parameter values by name (their Cartesian product),
    ``starts`` ((S, n) or (problems, S, n)), or ``sample="sobol"`` / ``"lhs"`` with ``n``
    points in the box ``lower``..``upper`` (default: the fit's bounds), drawn with ``seed``.
    """
    given = [bool(values), starts is not None, sample is not None]
    if sum(given) != 1:
        raise ValueError("grid: give exactly one of per-parameter values, starts=, or sample=")
    if values:
        for k, v in values.items():
            if np.ndim(v) != 1 or len(v) == 0:
                raise ValueError(f"grid: the values of '{k}' must be a non-empty 1-D sequence")
        return Grid(values={k: np.asarray(v, dtype=np.float64) for k, v in values.items()})
    if starts is not None:
        if np.ndim(starts) not in (2, 3):
            raise ValueError(f"starts: expected shape (S, n_params) or (problems, S, n_params), "
                             f"got {np.shape(starts)}")
        return Grid(starts=np.asarray(starts, dtype=np.float64))
    if sample not in SAMPLES:
        raise ValueError(f"sample: expected one of {SAMPLES}, got {sample!r}")
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"n: the number of sampled starts must be a positive integer, got {n!r}")
    return Grid(sample=sample, n=int(n), lower=lower, upper=upper, seed=seed)
