"""Validate the user's arrays once and pack them into one ragged batch.

Every backend takes the same ``Packed`` batch: problem ``i`` owns points
``offsets[i]:offsets[i+1]`` of the flat arrays ``x`` (points x inputs), ``y``, ``t`` (the
target the residual compares with: ``y``, or ``log y`` for log residuals), ``sigma`` and
``weights``.  Structural errors (shapes, complex numbers, strings) raise ``ValueError``
naming the argument here, before any work; data-dependent problems (an infinite value, an
x <= 0 for a power law, a y <= 0 with log residuals, a bad sigma) are left for the solver to
flag with that problem's status.

Missing points, one rule for every shape: a NaN in ``y``, or in any input of ``x``, marks a
missing point.  ``nan_policy="omit"`` (the default) leaves such points out, counting them per
problem (``Packed.n_omitted``); ``"raise"`` refuses the call with a ValueError naming the
argument and the point; ``"propagate"`` keeps them, and their problem gets NONFINITE_DATA.
Infinite values are never missing: they are bad data (NONFINITE_DATA) under every policy, as
is a NaN in ``sigma`` or ``weights``.

Accepted shapes for ``x`` and ``y``:

* lists of per-problem arrays: ``y = [y0, y1, ...]``, ``x = [x0, x1, ...]`` with ``x_i`` of
  shape (m_i,) or (m_i, n_inputs) (or one shared x when all problems have the same length);
* a padded 2-D ``y`` of shape (P, m) (NaN marking missing points, as in every shape); ``x``
  of shape (P, m), (P, m, n_inputs), or one shared (m,) / (m, n_inputs) grid;
* flat 1-D ``y`` with a ``groups`` vector of labels (one problem per distinct label, in
  sorted label order);
* flat 1-D ``y`` without groups: a single problem.

One packer for host and device arrays: the padded batch is packed by code written once
against an array module ``xp`` (NumPy here; CuPy for arrays already on the GPU, through
:func:`pack_padded`, where every check that needs the values brings back a scalar), into
the same ``Packed``, its arrays in ``xp``'s memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ._options import check_residuals
from .models import Model
from ._named import PartialStart

# pack(p0=NO_START): the starts come later (a grid); packed.p0 is left unset.
NO_START = object()
NAN_POLICIES = ("omit", "raise", "propagate")


@dataclass
class Packed:
    """One packed batch, the one every backend takes.  Its arrays are NumPy's, or (from
    :func:`pack_padded` on device arrays) those of the array module that packed them."""

    model: Model
    _x: Any              # (M, n_inputs) float64, or a callable that makes it (see .x)
    y: np.ndarray        # (M,)
    target: np.ndarray   # (M,) what the residual compares the model with: y, or log y
    sigma: Optional[np.ndarray]
    weights: Optional[np.ndarray]
    offsets: np.ndarray  # (P + 1,) int64
    _inputs: Any         # (M, n_inputs) the model's inputs, or a callable (see .inputs)
    p0: np.ndarray       # (P, n)
    # (P, n) each; bounds given once for all problems (scalars, or one per parameter) are a
    # read-only broadcast view of that row, which the CPU backend reads once (bounds_shared)
    lower: np.ndarray
    upper: np.ndarray
    log_residuals: bool
    labels: Optional[np.ndarray] = None
    clusters: Optional[np.ndarray] = None  # (M,) a cluster label per point (grouped bootstrap)
    # (m, n_inputs): where every problem has the m points of one grid, the model's inputs on
    # it, which the CPU backend reads once rather than per problem (x_shared).
    inputs_grid: Optional[np.ndarray] = None
    # (P,) the missing points (NaN in y or x) left out of each problem; None: none were.
    n_omitted: Optional[np.ndarray] = None

    @property
    def x(self) -> np.ndarray:
        """The raw inputs, (M, n_inputs).  A shared grid is expanded only when something asks
        (the NumPy backend, a data-driven start, residuals): the compiled backends read
        the model's inputs."""
        if callable(self._x):
            self._x = self._x()
        return self._x

    @property
    def inputs(self) -> np.ndarray:
        """The model's inputs per point, (M, n_inputs): x, or log x (model.log_inputs).  On a
        shared grid, expanded only when something asks."""
        if callable(self._inputs):
            self._inputs = self._inputs()
        return self._inputs

    @property
    def n_problems(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_points(self) -> np.ndarray:
        return np.diff(self.offsets)


def check_nan_policy(nan_policy) -> str:
    if not (isinstance(nan_policy, str) and nan_policy in NAN_POLICIES):
        raise ValueError(f"nan_policy: expected one of {NAN_POLICIES}, got {nan_policy!r}")
    return nan_policy


def _float_array(a: Any, name: str, xp=np):
    """``a`` as a float64 array of ``xp``, or a ValueError naming ``name`` (complex numbers
    are refused, not cast: their imaginary parts would be dropped)."""
    try:
        arr = xp.asarray(a)
        if arr.dtype.kind == "c":
            raise ValueError(f"{name}: complex numbers are not supported (got dtype "
                             f"{arr.dtype}); pass real values")
        return xp.asarray(arr, dtype=xp.float64)
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(f"{name}: "):
            raise
        raise ValueError(f"{name}: expected numbers ({exc})") from None


def _has_nan(a, xp=np) -> bool:
    """Whether ``a`` holds a NaN, without making a mask of it (min is NaN exactly when some
    entry is; one scalar back from a device)."""
    return a.size > 0 and bool(xp.isnan(a.min()))


def _first_where(bad, values, xp=np):
    """The first entry of ``values`` where ``bad`` holds, or None where it holds nowhere
    (one boolean back from a device, and one value where there is a bad entry)."""
    if not bool(xp.any(bad)):
        return None
    return values[bad][:1].tolist()[0]


def _nan_raise(arg: str, where: str):
    raise ValueError(f"{arg}: NaN at {arg}{where} (nan_policy='raise'; the default 'omit' "
                     f"leaves a NaN point out as missing)")


def _omit_missing(x, y, extras, offsets, nan_policy: str, locate):
    """Applies ``nan_policy`` to the flat points of a batch: a point is missing where y, or
    an input of x, is NaN.  ``locate(i, j)`` writes point j of problem i as the user indexes
    it (``"[1][7]"``).  Returns x, y, extras, offsets and n_omitted (P,) or None."""
    if nan_policy == "propagate" or not (_has_nan(y) or _has_nan(x)):
        return x, y, extras, offsets, None
    miss = np.isnan(y) | np.isnan(x).any(axis=1)
    if nan_policy == "raise":
        pt = int(np.argmax(miss))
        i = int(np.searchsorted(offsets, pt, side="right")) - 1
        _nan_raise("y" if np.isnan(y[pt]) else "x", locate(i, pt - int(offsets[i])))
    keep = ~miss
    P = len(offsets) - 1
    owner = np.repeat(np.arange(P), np.diff(offsets))
    n_omitted = np.bincount(owner[miss], minlength=P).astype(np.int64)
    new_offsets = offsets.copy()
    new_offsets[1:] -= np.cumsum(n_omitted)
    return (x[keep], y[keep], {k: None if v is None else v[keep] for k, v in extras.items()},
            new_offsets, n_omitted)


def _as_x(a: Any, n_inputs: int, m: int, name: str) -> np.ndarray:
    """One problem's inputs as (m, n_inputs)."""
    arr = _float_array(a, name)
    if arr.ndim == 1 and n_inputs == 1:
        arr = arr[:, None]
    elif arr.ndim == 2 and n_inputs > 1 and arr.shape[0] == n_inputs and arr.shape[1] != n_inputs:
        arr = arr.T  # scipy's curve_fit convention: xdata of shape (k, m)
    if arr.ndim != 2 or arr.shape != (m, n_inputs):
        raise ValueError(
            f"{name}: expected shape ({m},{' ' + str(n_inputs) if n_inputs > 1 else ''}) "
            f"to match y with {m} points and {n_inputs} input(s), got {arr.shape}"
        )
    return arr


def _pack_lists(model, x, y, per_point, nan_policy, first: int = 0, locate=None):
    """Lists of per-problem arrays; ``first`` is the index of the first in the caller's
    batch (for messages), ``locate`` names point j of problem i (default ``[i][j]``)."""
    if locate is None:
        def locate(i, j):
            return f"[{first + i}][{j}]"
    ys = [_float_array(v, f"y[{first + i}]").reshape(-1) if np.ndim(v) <= 1 else None
          for i, v in enumerate(y)]
    for i, v in enumerate(ys):
        if v is None:
            raise ValueError(f"y[{first + i}]: expected a 1-D array per problem")
    lengths = [len(v) for v in ys]
    if isinstance(x, (list, tuple)):
        if len(x) != len(ys):
            raise ValueError(f"x: got {len(x)} arrays for {len(ys)} problems in y")
        xs = [_as_x(xi, model.n_inputs, lengths[i], f"x[{first + i}]")
              for i, xi in enumerate(x)]
    else:
        xs = [_as_x(x, model.n_inputs, m, "x") for m in lengths]
    extras = {}
    for name, val in per_point.items():
        if val is None:
            extras[name] = None
            continue
        if isinstance(val, (list, tuple)) and len(val) == len(ys) and np.ndim(val[0]) >= 1:
            parts = [_float_array(v, f"{name}[{first + i}]").reshape(-1)
                     for i, v in enumerate(val)]
        else:
            parts = [np.broadcast_to(_float_array(val, name), (m,)) if np.ndim(val) == 0
                     else _float_array(val, name).reshape(-1) for m in lengths]
        for i, (pv, m) in enumerate(zip(parts, lengths)):
            if pv.shape != (m,):
                raise ValueError(f"{name}[{first + i}]: expected {m} values to match "
                                 f"y[{first + i}], got {pv.shape}")
        extras[name] = np.concatenate(parts) if parts else np.zeros(0)
    offsets = np.zeros(len(ys) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    xcat = np.concatenate(xs) if xs else np.zeros((0, model.n_inputs))
    ycat = np.concatenate(ys) if ys else np.zeros(0)
    xcat, ycat, extras, offsets, n_omitted = _omit_missing(xcat, ycat, extras, offsets,
                                                           nan_policy, locate)
    return xcat, ycat, extras, offsets, None, n_omitted


def _pack_padded(model, x, y, per_point, nan_policy, first: int = 0, xp=np):
    """A padded (P, m) ``y`` of ``xp`` (the host's NumPy, or CuPy for device arrays: every
    check that needs the values brings back a scalar)."""
    P, m = y.shape
    xa = _float_array(x, "x", xp)
    k = model.n_inputs
    if k == 1 and xa.shape in ((m,), (P, m)):
        xa = xa[..., None]
    if xa.shape == (m, k):
        # A shared grid: the model's inputs (log x) are taken on the grid alone, then
        # broadcast like x itself.
        xa = _SharedGrid(xa, P, xp)
    if xa.shape != (P, m, k):
        raise ValueError(
            f"x: expected shape ({P}, {m}{', ' + str(k) if k > 1 else ''}) or a shared grid of "
            f"{m} points to match the padded y of shape {y.shape}, got {xa.shape}"
        )
    # The common case, nothing missing: a plain reshape, no gather (and no mask made to
    # find that out).
    present = None
    if nan_policy != "propagate":
        x_own = xa.grid if isinstance(xa, _SharedGrid) else xa
        x_nan, y_nan = _has_nan(x_own, xp), _has_nan(y, xp)
        if x_nan or y_nan:
            miss = xp.isnan(y) if y_nan else xp.zeros(y.shape, dtype=bool)
            if x_nan:
                miss |= xp.isnan(x_own).any(axis=-1)  # (m,) of a grid broadcasts to (P, m)
            if nan_policy == "raise":
                i, j = xp.argwhere(miss)[0].tolist()
                _nan_raise("y" if bool(xp.isnan(y[i, j])) else "x", f"[{first + i}, {j}]")
            present = ~miss
    full = present is None
    n_omitted = None if full else (m - present.sum(axis=1)).astype(xp.int64)

    def take(arr, width=None):
        if full:
            return arr.reshape(P * m, width) if width else arr.reshape(P * m)
        return arr[present]

    extras = {}
    for name, val in per_point.items():
        if val is None:
            extras[name] = None
            continue
        va = _float_array(val, name, xp)
        try:
            va = xp.broadcast_to(va, (P, m))
        except ValueError:
            raise ValueError(f"{name}: shape {va.shape} does not match y's {y.shape}") from None
        extras[name] = take(va)
    offsets = xp.arange(P + 1, dtype=xp.int64) * m if full else xp.concatenate(
        [xp.zeros(1, dtype=xp.int64), xp.cumsum(present.sum(axis=1), dtype=xp.int64)])
    if isinstance(xa, _SharedGrid):
        def xs():
            return xp.ascontiguousarray(take(xa.full, k))
        grid = xp.ascontiguousarray(model.inputs_of(xa.grid, xp), dtype=xp.float64)
        if full:  # every problem has the grid's points
            return (xs, _GridInputs(grid, xp)), take(y), extras, offsets, None, n_omitted
        return ((xs, take(xp.broadcast_to(grid, (P,) + grid.shape), grid.shape[1])), take(y),
                extras, offsets, None, n_omitted)
    return take(xa, k), take(y), extras, offsets, None, n_omitted


class _GridInputs:
    """The model's inputs on the grid that every problem of a padded batch shares, (m, k)."""

    def __init__(self, values, xp=np):
        self.values = values
        self.xp = xp

    def expand(self, P: int):
        """A callable making the per-point inputs, (P * m, k)."""
        g, xp = self.values, self.xp
        return lambda: xp.ascontiguousarray(
            xp.broadcast_to(g, (P,) + g.shape).reshape(P * g.shape[0], g.shape[1]))


class _SharedGrid:
    """x given once, ``grid`` (m, k), for the P problems of a padded batch."""

    def __init__(self, grid, P: int, xp=np):
        self.grid = grid
        self.shape = (P,) + grid.shape
        self.xp = xp

    @property
    def full(self):
        """(P, m, k), a broadcast view."""
        return self.xp.broadcast_to(self.grid, self.shape)


def _pack_groups(model, x, y, groups, per_point, nan_policy):
    g = np.asarray(groups)
    if g.shape != y.shape:
        raise ValueError(f"groups: expected one label per point, shape {y.shape}, got {g.shape}")
    labels, inverse = np.unique(g, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    xa = _as_x(x, model.n_inputs, len(y), "x")
    extras = {}
    for name, val in per_point.items():
        if val is None:
            extras[name] = None
            continue
        va = np.broadcast_to(_float_array(val, name), y.shape) if np.ndim(val) == 0 else \
            _float_array(val, name)
        if va.shape != y.shape:
            raise ValueError(f"{name}: expected shape {y.shape} to match y, got {va.shape}")
        extras[name] = va[order]
    counts = np.bincount(inverse.reshape(-1), minlength=len(labels))
    offsets = np.zeros(len(labels) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    xs, ys, extras, offsets_kept, n_omitted = _omit_missing(
        xa[order], y[order], extras, offsets, nan_policy,
        lambda i, j: f"[{order[offsets[i] + j]}] (group {labels[i].item()!r})")
    return xs, ys, extras, offsets_kept, labels, n_omitted


def _per_problem_params(value, P: int, n: int, name: str, shared: bool = False, xp=np):
    """value as (P, n) float64: value itself where it is such an array (C-contiguous; the
    callers only read it), else a new array; with ``shared``, where value is one scalar or
    one row for all problems, a read-only broadcast view of that row (see Packed.lower)."""
    arr = _float_array(value, name, xp)
    if arr.ndim == 0:
        arr = xp.full(n, float(arr))
    if arr.shape == (n,):
        return xp.broadcast_to(arr, (P, n)) if shared else xp.broadcast_to(arr, (P, n)).copy()
    if arr.shape == (P, n):
        # A C-contiguous float64 array is used as it is: nothing writes into it.
        return xp.ascontiguousarray(arr)
    raise ValueError(f"{name}: expected a scalar, shape ({n},) or "
                     f"({P}, {n}), got {arr.shape}")


def shared_row(a: np.ndarray) -> Optional[np.ndarray]:
    """The one row, (1, n), of a (P, n) broadcast view (as _per_problem_params(shared=True)
    makes; a C-contiguous view), or None when ``a`` has a row per problem."""
    if a.ndim == 2 and a.shape[0] > 0 and a.strides[0] == 0:
        return a[:1]
    return None


def _is_unbounded(lb, ub) -> bool:
    """Whether the bounds are the scalars -inf and inf (scipy's default)."""
    return np.ndim(lb) == 0 and np.ndim(ub) == 0 and lb == -np.inf and ub == np.inf


def validate_bounds(bounds, P: int, names: Sequence[str], first: int = 0, xp=np):
    """Lower and upper bounds of shape (P, n), arrays of ``xp``, from scipy's ``(lb, ub)``
    form (``first``: the index of the first problem in the caller's batch, for messages)."""
    n = len(names)
    try:
        lb, ub = bounds
    except (TypeError, ValueError):
        raise ValueError("bounds: expected a pair (lower, upper)") from None
    lower = _per_problem_params(lb, P, n, "bounds", shared=True, xp=xp)
    upper = _per_problem_params(ub, P, n, "bounds", shared=True, xp=xp)
    if _is_unbounded(lb, ub):  # the default: nothing to check
        return lower, upper
    # Bounds given once for all problems are checked once (as a single row).
    lo, hi = (a if (row := shared_row(a)) is None else row for a in (lower, upper))
    if bool(xp.isnan(lo).any()) or bool(xp.isnan(hi).any()):
        raise ValueError("bounds: must not contain NaN")
    bad = lo > hi
    if bool(bad.any()):
        i, j = xp.argwhere(bad)[0].tolist()
        lo, hi = xp.broadcast_arrays(lo, hi)
        raise ValueError(
            f"bounds: lower bound {lo[i, j].item()} exceeds upper bound {hi[i, j].item()} for "
            f"parameter '{names[j]}'" + (f" of problem {first + i}" if P > 1 or first else "")
        )
    return lower, upper


def validate_p0(p0, lower, upper, names: Sequence[str], arg: str = "p0",
                unbounded: bool = False, first: int = 0, xp=np) -> None:
    """p0 finite and within [lower, upper] (``unbounded``: the bounds are all infinite,
    which any finite p0 is within)."""
    if not bool(xp.isfinite(p0).all()):
        bad = ~xp.isfinite(p0)
        i, j = xp.argwhere(bad)[0].tolist()
        raise ValueError(f"{arg}: must be finite; parameter '{names[j]}' of problem "
                         f"{first + i} is {p0[i, j].item()}")
    if unbounded:
        return
    out = (p0 < lower) | (p0 > upper)
    if bool(out.any()):
        i, j = xp.argwhere(out)[0].tolist()
        raise ValueError(
            f"{arg}: parameter '{names[j]}' of problem {first + i} is {p0[i, j].item()}, "
            f"outside its bounds [{lower[i, j].item()}, {upper[i, j].item()}]"
        )


def _start(p0, lower, upper, names: Sequence[str], bounds, first: int = 0, xp=np):
    """The given starts as a validated (P, n) array of ``xp``."""
    p0a = _per_problem_params(p0, lower.shape[0], len(names), "p0", xp=xp)
    validate_p0(p0a, lower, upper, names, unbounded=_is_unbounded(*bounds), first=first,
                xp=xp)
    return p0a


def _checked(extras: dict, bounds, P: int, names: Sequence[str], first: int = 0, xp=np):
    """sigma (> 0 or NaN) and weights (>= 0) of the packed points, as contiguous float64,
    and the bounds, (P, n) each."""
    sig, w = extras["sigma"], extras["weights"]
    if sig is not None:
        found = _first_where(~xp.isnan(sig) & (sig <= 0), sig, xp)
        if found is not None:
            raise ValueError(f"sigma: must be > 0; found {found} (use weights=0 to drop a point)")
        sig = xp.ascontiguousarray(sig, dtype=xp.float64)
    if w is not None:
        found = _first_where(w < 0, w, xp)
        if found is not None:
            raise ValueError(f"weights: must be >= 0; found {found}")
        w = xp.ascontiguousarray(w, dtype=xp.float64)
    return (sig, w) + validate_bounds(bounds, P, names, first, xp)


def _assemble(model: Model, shaped, sig, w, lower, upper, residuals: str, xp=np) -> Packed:
    """The Packed batch (p0 unset) of a packer's arrays, in ``xp``'s memory."""
    xs, ys, extras, offsets, labels, n_omitted = shaped
    log = residuals == "log"
    t = ys
    if log:
        with np.errstate(all="ignore"):
            t = xp.log(ys)
    u = inputs_grid = None
    if isinstance(xs, tuple):  # inputs already transformed (a shared grid)
        xs, u = xs
        if isinstance(u, _GridInputs):
            inputs_grid, u = u.values, u.expand(len(offsets) - 1)
    if callable(xs) and u is None:
        xs = xs()
    if not callable(xs):
        xs = xp.ascontiguousarray(xs, dtype=xp.float64)
    if u is None:
        # Step 0 of lm.h: models on positive inputs take log x, computed once here (x <= 0
        # becomes NaN: non-finite data for that problem); a law reads its columns.
        u = model.inputs_of(xs, xp)
    if not callable(u):
        u = xp.ascontiguousarray(u, dtype=xp.float64)
    packed = Packed(model, xs, xp.ascontiguousarray(ys), xp.ascontiguousarray(t, dtype=xp.float64),
                    sig, w, offsets, u, None, lower, upper, log, labels, inputs_grid=inputs_grid,
                    n_omitted=n_omitted)
    if extras.get("clusters") is not None:
        packed.clusters = xp.ascontiguousarray(extras["clusters"])
    return packed


def pack(
    model: Model,
    x,
    y,
    *,
    p0=None,
    sigma=None,
    weights=None,
    groups=None,
    bounds=(-np.inf, np.inf),
    residuals: str = "linear",
    validate_only: bool = False,
    clusters=None,
    nan_policy: str = "omit",
    first: int = 0,
    engine: str = "auto",
) -> Optional[Packed]:
    """Validate and pack one batch of host arrays (see the module docstring for the accepted
    shapes and ``nan_policy``).  With ``validate_only``, raise what packing would raise and
    return None.  ``first``: the index of the batch's first problem in the caller's (a
    chunk's offset), so that messages name problems as the caller numbers them.  ``engine``:
    the CPU engine that computes a data-driven start (the backend's; every engine's is
    bitwise the same)."""
    check_residuals(residuals)
    check_nan_policy(nan_policy)
    per_point = {"sigma": sigma, "weights": weights, "clusters": clusters}
    if isinstance(y, (list, tuple)) and (len(y) == 0 or np.ndim(y[0]) >= 1):
        if groups is not None:
            raise ValueError("groups: not used when y is a list of per-problem arrays")
        shaped = _pack_lists(model, x, y, per_point, nan_policy, first)
    else:
        ya = _float_array(y, "y")
        if ya.ndim == 2:
            if groups is not None:
                raise ValueError("groups: not used when y is a padded 2-D array")
            shaped = _pack_padded(model, x, ya, per_point, nan_policy, first)
        elif ya.ndim == 1:
            if groups is not None:
                shaped = _pack_groups(model, x, ya, groups, per_point, nan_policy)
            else:
                if isinstance(x, (list, tuple)) and not (len(x) == 1 and np.ndim(x[0]) >= 1):
                    x = _float_array(x, "x")  # the one problem's inputs, as a sequence
                shaped = _pack_lists(model, x, [ya], per_point, nan_policy,
                                     locate=lambda i, j: f"[{j}]")
        else:
            raise ValueError(f"y: expected a 1-D or padded 2-D array or a list, got {ya.ndim}-D")
    names = model.param_names
    sig, w, lower, upper = _checked(shaped[2], bounds, len(shaped[3]) - 1, names, first)
    partial = p0 if isinstance(p0, PartialStart) else None
    if partial is not None:  # some parameters by name, the rest from the guess
        _per_problem_params(np.where(partial.given, partial.values, 0.0), len(lower),
                            len(names), "p0")  # its shape, checked before any work
    if validate_only:
        if (p0 is None or partial is not None) and not model.has_guess:
            raise ValueError(f"p0: required for model '{model.name}' (it has no data-driven guess)")
        if p0 is not None and p0 is not NO_START and partial is None:
            _start(p0, lower, upper, names, bounds, first)
        return None
    packed = _assemble(model, shaped, sig, w, lower, upper, residuals)
    if p0 is NO_START:
        return packed
    if p0 is None or partial is not None:
        if not model.has_guess:
            raise ValueError(f"p0: required for model '{model.name}' (it has no data-driven guess)")
        p0a = guessed_start(packed, engine)
        if partial is not None:
            p0a = _start(np.where(partial.given, partial.values, p0a), lower, upper, names,
                         bounds, first)
    else:
        p0a = _start(p0, lower, upper, names, bounds, first)
    packed.p0 = np.ascontiguousarray(p0a)
    return packed


def guessed_start(packed: Packed, engine: str = "auto") -> np.ndarray:
    """The data-driven start of every problem of ``packed`` (its model's guess, on the CPU
    ``engine``), made finite and clipped to the bounds: a guess may not land inside them, or
    be finite for a degenerate problem."""
    lower, upper = packed.lower, packed.upper
    p0a = packed.model.guess_packed(packed, engine)
    p0a = np.where(np.isfinite(p0a), p0a, np.where(np.isfinite(lower), lower, 1.0))
    return np.clip(p0a, lower, upper)


def pack_padded(xp, model: Model, x, y, *, p0=None, sigma=None, weights=None,
                bounds=(-np.inf, np.inf), residuals: str = "linear",
                nan_policy: str = "omit") -> Packed:
    """``pack`` for arrays in ``xp``'s memory (CuPy for device arrays; NumPy in the tests):
    a padded 2-D ``y`` (problems x points) or one problem's 1-D ``y``, packed by the same
    code as ``pack``'s padded batches into the same Packed, whose arrays are ``xp``'s.  Every
    check that needs the values brings back a scalar.  ``p0`` None leaves ``packed.p0``
    unset (the caller computes the data-driven start)."""
    check_residuals(residuals)
    check_nan_policy(nan_policy)
    ya = _float_array(y, "y", xp)
    if ya.ndim == 1:
        ya = ya[None, :]
    if ya.ndim != 2:
        raise ValueError(f"y: a device batch is a padded 2-D (problems, points) array or one "
                         f"problem's 1-D array, got {ya.ndim}-D")
    shaped = _pack_padded(model, x, ya, {"sigma": sigma, "weights": weights}, nan_policy,
                          xp=xp)
    names = model.param_names
    sig, w, lower, upper = _checked(shaped[2], bounds, ya.shape[0], names, xp=xp)
    packed = _assemble(model, shaped, sig, w, lower, upper, residuals, xp)
    if p0 is not None:
        packed.p0 = _start(p0, lower, upper, names, bounds, xp=xp)
    return packed
