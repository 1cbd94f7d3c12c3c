"""Parameters by name: ``p0`` and ``bounds`` given as dicts keyed by parameter name.

    p0={"E": 1.7, "alpha": 0.3}                      # the rest from the data-driven guess
    bounds={"alpha": (0, 2), "E": (0, None)}         # per parameter (lower, upper)
    bounds=({"alpha": 0}, {"alpha": 2})              # scipy's pair, each side by name

A value is a scalar (every problem) or one value per problem, shape (problems,).  A name that
is not a parameter is a ValueError naming it; a parameter left out takes its default: no
bound (-inf, inf), and for ``p0`` the model's data-driven guess (a ValueError naming the
missing parameters where the model has none).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Sequence

import numpy as np

__all__ = ["PartialStart", "named_p0", "named_bounds"]


class PartialStart:
    """A ``p0`` given by name for some of the parameters: ``values`` (n,) or (P, n) with NaN
    where ``given`` (n,) is False; the packer fills those from the data-driven guess."""

    def __init__(self, values: np.ndarray, given: np.ndarray):
        self.values, self.given = values, given

    def rows(self, a: int, b: int, total: int) -> "PartialStart":
        """Problems a:b of a batch of ``total`` (values given per problem are sliced)."""
        if self.values.ndim == 2 and self.values.shape[0] == total:
            return PartialStart(self.values[a:b], self.given)
        return self


def _check_names(mapping: Mapping, names: Sequence[str], arg: str) -> None:
    unknown = [k for k in mapping if k not in names]
    if unknown:
        raise ValueError(f"{arg}: {', '.join(map(repr, unknown))} is not a parameter of the "
                         f"model (its parameters: {', '.join(names)})")


def _columns(values: list, arg: str, names: Sequence[str]) -> np.ndarray:
    """Per-parameter values (scalars or (P,) arrays) as (n,) or (P, n) float64."""
    arrays = []
    for name, v in zip(names, values):
        try:
            a = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{arg}: parameter {name!r} is {v!r}, not a number or one number "
                             f"per problem") from None
        if a.ndim > 1:
            raise ValueError(f"{arg}: parameter {name!r}: expected a scalar or one value per "
                             f"problem, got shape {a.shape}")
        arrays.append(a)
    if all(a.ndim == 0 for a in arrays):
        return np.array([float(a) for a in arrays])
    sizes = {a.shape[0] for a in arrays if a.ndim == 1}
    if len(sizes) > 1:
        raise ValueError(f"{arg}: parameters given per problem disagree on the number of "
                         f"problems ({sorted(sizes)})")
    P = sizes.pop()
    return np.column_stack([np.broadcast_to(a, (P,)) for a in arrays])


def named_p0(p0, names: Sequence[str], has_guess: bool):
    """``p0`` as the packer takes it: unchanged unless a dict; a complete dict as an array,
    a partial one as a :class:`PartialStart` (filled from the guess)."""
    if not isinstance(p0, Mapping):
        return p0
    _check_names(p0, names, "p0")
    missing = [n for n in names if n not in p0]
    values = _columns([p0.get(n, np.nan) for n in names], "p0", names)
    if not missing:
        return values
    if not has_guess:
        raise ValueError(f"p0: no value for {', '.join(map(repr, missing))}, and the model "
                         f"has no data-driven guess to take it from; give every parameter")
    return PartialStart(values, np.array([n in p0 for n in names]))


def named_bounds(bounds, names: Sequence[str]):
    """``bounds`` as scipy's pair (lower, upper): unchanged unless a dict of per-parameter
    ``(lower, upper)`` pairs, or a pair with a dict on either side.  ``None`` in a pair is no
    bound."""
    if isinstance(bounds, Mapping):
        _check_names(bounds, names, "bounds")
        lo, hi = [], []
        for n in names:
            pair = bounds.get(n, (-np.inf, np.inf))
            try:
                a, b = pair
            except (TypeError, ValueError):
                raise ValueError(f"bounds: parameter {n!r}: expected a pair (lower, upper), "
                                 f"got {pair!r}") from None
            lo.append(-np.inf if a is None else a)
            hi.append(np.inf if b is None else b)
        return _columns(lo, "bounds", names), _columns(hi, "bounds", names)
    if isinstance(bounds, (tuple, list)) and len(bounds) == 2 and \
            any(isinstance(side, Mapping) for side in bounds):
        out = []
        for side, default in zip(bounds, (-np.inf, np.inf)):
            if isinstance(side, Mapping):
                _check_names(side, names, "bounds")
                side = _columns([default if side.get(n) is None else side[n] for n in names],
                                "bounds", names)
            out.append(side)
        return tuple(out)
    return bounds
