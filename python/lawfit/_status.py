"""Per-problem status codes, shared by every backend.

The numbers follow ``scipy.optimize.least_squares`` where scipy has one (``success`` is
``status > 0``); negative numbers below -1 are lawfit's own, so that one bad problem in a
batch gets its own code instead of stopping the others.  The C++ table in
``cpp/include/lawfit/status.h`` is the source; a test checks that this copy agrees.
"""
from __future__ import annotations

import enum

import numpy as np

__all__ = ["Status"]


class Status(enum.IntEnum):
    """Why a problem's solve stopped.  ``message`` says it in words, ``hint`` what to try."""

    MAX_NFEV = 0
    GTOL = 1
    FTOL = 2
    XTOL = 3
    FTOL_XTOL = 4
    INVALID_INPUT = -1
    NONFINITE_DATA = -2
    TOO_FEW_POINTS = -3
    NONFINITE_INITIAL = -4
    NO_PROGRESS = -5

    @property
    def success(self) -> bool:
        return self.value > 0

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def hint(self) -> str:
        return _HINTS.get(self, "")


_MESSAGES = {
    Status.MAX_NFEV: "The maximum number of function evaluations is exceeded.",
    Status.GTOL: "`gtol` termination condition is satisfied.",
    Status.FTOL: "`ftol` termination condition is satisfied.",
    Status.XTOL: "`xtol` termination condition is satisfied.",
    Status.FTOL_XTOL: "Both `ftol` and `xtol` termination conditions are satisfied.",
    Status.INVALID_INPUT: "Improper input: the start is not finite or lies outside the bounds.",
    Status.NONFINITE_DATA: (
        "The problem's data contain NaN or infinity, an x <= 0 for a model of log x (a power "
        "law), or, with log residuals, a y <= 0."
    ),
    Status.TOO_FEW_POINTS: (
        "The problem has fewer points (with nonzero weight) than free parameters."
    ),
    Status.NONFINITE_INITIAL: (
        "The model, residuals or Jacobian are not finite at the starting point."
    ),
    Status.NO_PROGRESS: (
        "No step lowers the cost: the trust region shrank to what rounding can tell from no "
        "step, or the damping grew without bound (a singular system)."
    ),
}

_HINTS = {
    Status.MAX_NFEV: "raise max_nfev, or start closer (a grid of starts, a better p0)",
    Status.NONFINITE_DATA: ("drop or fix this problem's NaN/inf points (in sigma and weights "
                            "too), its x <= 0 (power laws) or y <= 0 (log residuals)"),
    Status.TOO_FEW_POINTS: "add points, or fix parameters with lower == upper",
    Status.NONFINITE_INITIAL: "choose a p0 where the model is finite (e.g. x > 0 for powers)",
    Status.NO_PROGRESS: "check for parameters the data cannot identify; add bounds",
}


def messages(status: np.ndarray) -> np.ndarray:
    """The message of every status code in ``status`` (an object array of str)."""
    lookup = {int(s): s.message for s in Status}
    flat = [lookup.get(int(c), f"Unknown status {int(c)}.") for c in np.ravel(status)]
    return np.array(flat, dtype=object).reshape(np.shape(status))
