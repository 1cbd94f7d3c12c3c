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

from ._packing import _float_array
from .models import available, get

__all__ = ["Grid", "grid"]

SAMPLES = ("sobol", "lhs")
# Grid starts are checked (finite, inside the bounds) this many values at a time.
CHECK_BLOCK = 1 << 20


class Grid:
    """Starting points for a multi-start fit; make one with :func:`grid`."""

    def __init__(self, values: Optional[dict] = None, starts=None, sample: Optional[str] = None,
                 n: Optional[int] = None, lower=None, upper=None, seed: int = 0,
                 profile: bool = False):
        self.values = values
        self.profile = profile
        self.explicit = starts
        self.sample = sample
        self.n = n
        self.lower = lower
        self.upper = upper
        self.seed = seed

    def __repr__(self) -> str:
        if self.values is not None:
            inner = ", ".join(f"{k}={len(v)} values" for k, v in self.values.items())
            inner += ", profile=True" if self.profile else ""
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
               upper: np.ndarray, packed=None, model=None,
               arg: str = "p0") -> np.ndarray:
        """The starts of P problems, (P, S, n), checked: finite and inside each problem's
        bounds ``lower``/``upper`` (P, n).  A profile grid needs the packed batch and the
        model (a name or a lawfit.models.Model).  Errors name ``arg``, the argument that gave the grid."""
        n = len(names)
        if self.profile:
            model = get(model)
            if model.profile is None:
                with_profile = [m for m in available() if get(m).profile is not None]
                raise ValueError(f"{arg}: a profile grid needs a model with linear coefficients "
                                 f"({', '.join(with_profile)}), not '{model.name}'")
            coefs, exps = model.profile.coefficients, model.profile.exponents
            if sorted(self.values) != sorted(exps):
                raise ValueError(f"{arg}: a profile grid for '{model.name}' takes values for "
                                 f"{list(exps)} (the coefficients {list(coefs)} are solved), "
                                 f"got {sorted(self.values)}")
            axes = [np.asarray(self.values[e], dtype=np.float64).reshape(-1) for e in exps]
            grid_e = np.array(list(itertools.product(*axes)), dtype=np.float64)
            S = profile_starts(model, list(names), grid_e, packed, lower, upper)
        elif self.values is not None:
            unknown = [k for k in self.values if k not in names]
            if unknown:
                raise ValueError(f"{arg}: the grid names unknown parameter(s) {unknown}; the "
                                 f"model's are {list(names)}")
            missing = [k for k in names if k not in self.values]
            if missing:
                raise ValueError(f"{arg}: the grid has no values for parameter(s) {missing}")
            axes = []
            for k in names:
                v = np.asarray(self.values[k], dtype=np.float64).reshape(-1)
                if v.size == 0:
                    raise ValueError(f"{arg}: the grid's values for '{k}' are empty")
                axes.append(v)
            S = np.array(list(itertools.product(*axes)), dtype=np.float64).reshape(-1, n)
        elif self.explicit is not None:
            S = np.asarray(self.explicit, dtype=np.float64)
            if S.ndim == 2 and S.shape[1] == n and S.shape[0] >= 1:
                pass
            elif S.ndim == 3 and S.shape[0] == P and S.shape[2] == n and S.shape[1] >= 1:
                pass
            else:
                raise ValueError(f"{arg}: grid starts must have shape (S, {n}) or ({P}, S, {n}), "
                                 f"got {S.shape}")
        else:
            lo = lower if self.lower is None else np.broadcast_to(
                np.asarray(self.lower, dtype=np.float64), (n,))
            hi = upper if self.upper is None else np.broadcast_to(
                np.asarray(self.upper, dtype=np.float64), (n,))
            lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
            if lo.ndim == 2:  # the fit's bounds: the same box for every problem
                if not (np.all(lo == lo[:1]) and np.all(hi == hi[:1])):
                    raise ValueError(f"{arg}: a {self.sample} grid samples one box; the bounds "
                                     f"differ by problem, so give lower= and upper=")
                lo, hi = lo[0], hi[0]
            if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
                raise ValueError(f"{arg}: a {self.sample} grid needs a finite box with lower < "
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
        # Checked a block of problems at a time: a grid shared by all problems is a view, and
        # its checks should not make (P, S, n) masks of a large batch at once.
        step = max(1, CHECK_BLOCK // max(1, S.shape[1] * n))
        for a in range(0, P, step):
            Sa = S[a:a + step]
            bad = ~np.isfinite(Sa)
            if bad.any():
                i, s, j = np.argwhere(bad)[0]
                raise ValueError(f"{arg}: grid start {s} of problem {a + i} is not finite in "
                                 f"parameter '{names[j]}'")
            lo, hi = lower[a:a + step], upper[a:a + step]
            out = (Sa < lo[:, None, :]) | (Sa > hi[:, None, :])
            if out.any():
                i, s, j = np.argwhere(out)[0]
                raise ValueError(f"{arg}: grid start {s} of problem {a + i} has '{names[j]}' = "
                                 f"{Sa[i, s, j]}, outside its bounds [{lo[i, j]}, {hi[i, j]}]")
        return S


def grid(*, starts=None, sample: Optional[str] = None, n: Optional[int] = None, lower=None,
         upper=None, seed: int = 0, profile: bool = False, **values) -> Grid:
    """A grid of starting points for ``lawfit.fit(..., p0=...)``.

    Give exactly one of: per-parameter values by name (their Cartesian product),
    ``starts`` ((S, n) or (problems, S, n)), or ``sample="sobol"`` / ``"lhs"`` with ``n``
    points in the box ``lower``..``upper`` (default: the fit's bounds), drawn with ``seed``.

    ``profile=True`` (variable projection): values for the model's exponents only (alpha;
    alpha and beta for Chinchilla); at each grid point the linear coefficients (E, A, B) are
    each problem's nonnegative, bounded least-squares solution on its data (y itself,
    weighted by weights / sigma^2), which completes the start.  A 2-D grid then stands in for
    a 5-D one.  Models: power_law, saturating_power_law, chinchilla, chinchilla_log.
    """
    if profile and (not values or starts is not None or sample is not None):
        raise ValueError("profile: a profile grid takes per-exponent values, e.g. "
                         "lawfit.grid(alpha=[...], beta=[...], profile=True)")
    given = [bool(values), starts is not None, sample is not None]
    if sum(given) != 1:
        raise ValueError("grid: give exactly one of per-parameter values, starts=, or sample=")
    if values:
        for k, v in values.items():
            if np.ndim(v) != 1 or len(v) == 0:
                raise ValueError(f"grid: the values of '{k}' must be a non-empty 1-D sequence")
        return Grid(values={k: _float_array(v, k) for k, v in values.items()},
                    profile=profile)
    if starts is not None:
        if np.ndim(starts) not in (2, 3):
            raise ValueError(f"starts: expected shape (S, n_params) or (problems, S, n_params), "
                             f"got {np.shape(starts)}")
        return Grid(starts=_float_array(starts, "starts"))
    if sample not in SAMPLES:
        raise ValueError(f"sample: expected one of {SAMPLES}, got {sample!r}")
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"n: the number of sampled starts must be a positive integer, got {n!r}")
    return Grid(sample=sample, n=int(n), lower=lower, upper=upper, seed=seed)


# --------------------------------------------------------------------------- profiles
# Variable projection: for the models whose parameters split into linear coefficients and
# nonlinear exponents (a model's ``profile``, lawfit.models.Profile), a grid over the
# exponents alone; at each grid point the coefficients are the (nonnegative, bounded)
# least-squares solution on the problem's data.


def _box_least_squares(M, v, yy, lo, hi):
    """min_c c^T M c - 2 c^T v + yy subject to lo <= c <= hi, for stacks of tiny systems
    (M (..., q, q)): every active set (each coefficient free, at its lower or at its upper
    bound) is solved and the feasible one with the lowest value kept.  Returns c, value."""
    q = M.shape[-1]
    best_c = np.full(v.shape, np.nan)
    best_f = np.full(v.shape[:-1], np.inf)
    eye = np.eye(q)
    for states in itertools.product((0, 1, 2), repeat=q):  # free, at lower, at upper
        st = np.array(states)
        if np.any((st == 1) & ~np.isfinite(lo)) or np.any((st == 2) & ~np.isfinite(hi)):
            continue
        fixed = np.where(st == 1, lo, np.where(st == 2, hi, 0.0))
        free = st == 0
        c = np.broadcast_to(fixed, v.shape).copy()
        if free.any():
            # Reduced system over the free coefficients, the fixed ones moved to the right.
            Mf = M[..., free, :][..., free]
            rhs = v[..., free] - np.einsum("...ij,j->...i", M[..., free, :], fixed)
            with np.errstate(all="ignore"):
                # Equilibrated (unit diagonal: the basis columns differ in scale by orders of
                # magnitude), with a ridge of 1e-14 for exactly singular systems.
                d = np.sqrt(np.einsum("...ii->...i", Mf))
                d = np.where(d > 0, d, 1.0)
                Ms = Mf / d[..., :, None] / d[..., None, :] + 1e-14 * eye[free][:, free]
                try:
                    sol = np.linalg.solve(Ms, (rhs / d)[..., None])[..., 0] / d
                except np.linalg.LinAlgError:
                    continue
            c[..., free] = sol
        with np.errstate(all="ignore"):
            f = np.einsum("...i,...ij,...j->...", c, M, c) - 2 * np.einsum("...i,...i->...", c, v) + yy
            ok = np.all((c >= lo - 1e-12 * np.abs(lo)) & (c <= hi + 1e-12 * np.abs(hi)), axis=-1)
        better = ok & np.isfinite(f) & (f < best_f)
        best_f = np.where(better, f, best_f)
        best_c = np.where(better[..., None], np.clip(c, lo, hi), best_c)
    return best_c, best_f


def profile_starts(model, names: Sequence[str], exponents: np.ndarray, packed,
                   lower: np.ndarray, upper: np.ndarray, block: int = 4_000_000) -> np.ndarray:
    """(P, G, n) starts: the grid of exponents (G, n_exp) with each problem's coefficients by
    (nonnegative, bounded) least squares on its data (raw y, weighted by weights / sigma^2)."""
    prof = get(model).profile
    coef_names, basis, assemble = prof.coefficients, prof.basis, prof.assemble
    P = packed.n_problems
    G = len(exponents)
    n_pts = packed.n_points
    m = int(n_pts.max()) if P else 0
    owner = np.repeat(np.arange(P), n_pts)
    col = np.arange(len(owner)) - packed.offsets[owner]
    k = packed.x.shape[1]
    xp = np.ones((P, m, k))
    yp = np.zeros((P, m))
    wp = np.zeros((P, m))
    xp[owner, col] = packed.x
    yp[owner, col] = packed.y
    w = np.ones(len(owner)) if packed.weights is None else packed.weights
    if packed.sigma is not None:
        w = w / packed.sigma ** 2
    wp[owner, col] = np.where(np.isfinite(w) & np.isfinite(packed.y), w, 0.0)
    yp = np.where(wp > 0, yp, 0.0)
    # Coefficient bounds: the fit's bounds on them (in natural units), and never negative.
    ci = {c: i for i, c in enumerate(coef_names)}
    lo = np.zeros((P, len(coef_names)))
    hi = np.full((P, len(coef_names)), np.inf)
    for c, i in ci.items():
        if c in names:
            j = names.index(c)
            lo[:, i] = np.maximum(lower[:, j], 0.0)
            hi[:, i] = upper[:, j]
    out = np.empty((P, G, len(names)))
    step = max(1, block // max(1, G * m * len(coef_names)))
    for a in range(0, P, step):
        b = min(P, a + step)
        with np.errstate(all="ignore"):
            cols = basis(xp[a:b, None, :, :], exponents[None, :, None, :])  # each (p, G, m)
            Bm = np.stack(np.broadcast_arrays(*cols), axis=-1)  # (p, G, m, q)
            Bm = np.where(np.isfinite(Bm), Bm, 0.0)
            W = wp[a:b, None, :]
            M = np.einsum("pgmi,pgm,pgmj->pgij", Bm, W, Bm)
            v = np.einsum("pgmi,pgm,pm->pgi", Bm, W, yp[a:b])
            yy = np.einsum("pgm,pm->pg", W, yp[a:b] ** 2)
        for p in range(b - a):  # bounds differ by problem
            c, _ = _box_least_squares(M[p], v[p], yy[p], lo[a + p], hi[a + p])
            c = np.where(np.isfinite(c), c, lo[a + p])  # no feasible solution: the bound
            vals = assemble(c, np.broadcast_to(exponents, (G, exponents.shape[1])))
            for j, nm in enumerate(names):
                out[a + p, :, j] = vals[nm]
    return np.clip(out, lower[:, None, :], upper[:, None, :])
