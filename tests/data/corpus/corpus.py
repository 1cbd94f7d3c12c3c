"""The corpus of real scaling-law fits (see README.md here): load its problems.

``problems.json`` holds one entry per problem: where its points come from (a file in this
folder, or one in ``../shared/data`` read in place), the model, the objective (loss, f_scale,
residual space, bounds), the start, and the best-known optimum with how it was found.  This
module turns an entry into arrays; it uses NumPy and the standard library only, so the offline
optimum search (``bench/corpus_optima.py``) and the test (``tests/test_corpus.py``) read the
corpus the same way.

The objective is lawfit's and scipy's cost, written out here independently of lawfit:

    cost(p) = 0.5 * f_scale**2 * sum_i rho((r_i / f_scale)**2),
    r_i = (log f(x_i; p) - log y_i) / sigma_i   (residuals="log"; f - y for "linear"),

with rho as in ``scipy.optimize.least_squares``.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

HERE = Path(__file__).resolve().parent
PROBLEMS_FILE = HERE / "problems.json"
# ../shared/data beside the project's root (tests/data/corpus -> root is three levels up)
SHARED_DATA = HERE.parents[2].parent / "shared" / "data"

PARAMS = {
    "chinchilla": ("E", "A", "B", "alpha", "beta"),
    "chinchilla_log": ("a", "b", "e", "alpha", "beta"),
}


@dataclass
class Problem:
    id: str
    source: str
    model: str
    x: np.ndarray            # (m, 2): N, D
    y: np.ndarray            # (m,)
    p0: np.ndarray           # (n,)
    lower: np.ndarray        # (n,), -inf where unbounded
    upper: np.ndarray        # (n,), +inf where unbounded
    loss: str = "huber"
    f_scale: float = 1e-3
    residuals: str = "log"
    sigma: Optional[np.ndarray] = None
    best: dict = field(default_factory=dict)  # cost, x, found_by, ... (absent before the search)
    needs_shared: bool = False

    @property
    def group_key(self) -> tuple:
        """Problems sharing this key can be fitted in one batched lawfit call."""
        return (self.model, self.loss, self.f_scale, self.residuals, self.sigma is not None)


# --------------------------------------------------------------------------- the objective
def model_log(model: str, p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log f(x; p) for the corpus' models, evaluated stably (no lawfit code)."""
    lnN, lnD = np.log(x[:, 0]), np.log(x[:, 1])
    if model == "chinchilla":
        E, A, B, alpha, beta = p
        f = E + A * np.exp(-alpha * lnN) + B * np.exp(-beta * lnD)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(f > 0, np.log(np.where(f > 0, f, 1.0)), np.nan)
    if model == "chinchilla_log":
        a, b, e, alpha, beta = p
        return np.logaddexp(np.logaddexp(a - alpha * lnN, b - beta * lnD), e)
    raise ValueError(f"unknown corpus model {model!r}")


def rho(loss: str, z: np.ndarray) -> np.ndarray:
    """scipy.optimize.least_squares' rho(z), z = (r / f_scale)**2."""
    if loss == "linear":
        return z
    if loss == "huber":
        return np.where(z <= 1, z, 2 * np.sqrt(z) - 1)
    if loss == "soft_l1":
        return 2 * (np.sqrt(1 + z) - 1)
    if loss == "cauchy":
        return np.log1p(z)
    if loss == "arctan":
        return np.arctan(z)
    raise ValueError(f"unknown loss {loss!r}")


def residuals(prob: Problem, p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if prob.residuals == "log":
        r = model_log(prob.model, p, prob.x) - np.log(prob.y)
    else:
        r = np.exp(model_log(prob.model, p, prob.x)) - prob.y
    if prob.sigma is not None:
        r = r / prob.sigma
    return r


def cost(prob: Problem, p: np.ndarray) -> float:
    """0.5 * f_scale**2 * sum rho((r / f_scale)**2); inf where the model is not defined."""
    r = residuals(prob, p)
    if not np.all(np.isfinite(r)):
        return math.inf
    fs = prob.f_scale
    return float(0.5 * fs * fs * np.sum(rho(prob.loss, (r / fs) ** 2)))


# --------------------------------------------------------------------------- valleys
# In the Chinchilla form E + A N^-alpha + B D^-beta, a power term tends to a logarithm when
# its exponent goes to 0 while its coefficient diverges and E absorbs the constant:
# A N^-alpha = A - A alpha log N + O(alpha^2), so with A alpha -> -p fixed the term is
# const + p log N.  Where the bounds allow that (E and A unbounded the right way, 0 among the
# exponent's values), the cost may keep falling along such a path and have no minimiser: its
# infimum is the minimum of the limiting law below.  bench/corpus_optima.py searches these
# limits; a problem whose limit lies below every finite point found has no "optimum" to reach
# and is not judged (its entry says so, and tests/test_corpus.py re-checks it from the data).
LIMITS = {
    "logN": ("c", "p", "B", "beta"),      # c + p log N + B D^-beta
    "logD": ("c", "A", "alpha", "q"),     # c + A N^-alpha + q log D
    "logNlogD": ("c", "p", "q"),          # c + p log N + q log D
}


def limit_value(variant: str, q: np.ndarray, x: np.ndarray) -> np.ndarray:
    lnN, lnD = np.log(x[:, 0]), np.log(x[:, 1])
    if variant == "logN":
        c, p, B, beta = q
        return c + p * lnN + B * np.exp(-beta * lnD)
    if variant == "logD":
        c, A, alpha, qd = q
        return c + A * np.exp(-alpha * lnN) + qd * lnD
    c, p, qd = q
    return c + p * lnN + qd * lnD


def limit_cost(prob: "Problem", variant: str, q) -> float:
    """The cost of a limiting law (log residuals only; inf where it is not positive)."""
    with np.errstate(all="ignore"):
        f = limit_value(variant, np.asarray(q, dtype=float), prob.x)
    if not np.all(np.isfinite(f)) or np.any(f <= 0):
        return math.inf
    r = np.log(f) - np.log(prob.y)
    if prob.sigma is not None:
        r = r / prob.sigma
    fs = prob.f_scale
    return float(0.5 * fs * fs * np.sum(rho(prob.loss, (r / fs) ** 2)))


# --------------------------------------------------------------------------- loading
def _bound(v, default):
    return default if v is None else float(v)


def _read_csv(path: Path) -> list:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _rows(spec: dict, shared: Optional[Path]):
    data = spec["data"]
    if "file" in data:
        rows = _read_csv(HERE / data["file"])
    else:
        if shared is None or not (shared / data["shared"]).is_file():
            return None
        rows = _read_csv(shared / data["shared"])
    for k, v in data.get("where", {}).items():
        rows = [r for r in rows if r[k] == v]
    return rows


def _points(spec: dict, rows: list):
    data = spec["data"]
    if data.get("recipe") == "besiroglu2024":
        # Chinchilla replication: D = C / (6 N); drop the 5 highest losses, keep 240 points
        N = np.array([float(r["Model Size"]) for r in rows])
        D = np.array([float(r["Training FLOP"]) for r in rows]) / (6 * N)
        L = np.array([float(r["loss"]) for r in rows])
        keep = np.sort(np.argsort(L, kind="stable")[:-5])
        return np.column_stack([N[keep], D[keep]]), L[keep]
    x = np.array([[float(r[c]) for c in data["x"]] for r in rows])
    if isinstance(data["y"], str):
        y = np.array([float(r[data["y"]]) for r in rows])
    else:  # a weighted average of columns, {"column": weight}
        cols, w = zip(*data["y"].items())
        y = np.array([np.average([float(r[c]) for c in cols], weights=w) for r in rows])
    return x, y * data.get("y_sign", 1)


def load(shared: Optional[Path] = SHARED_DATA, path: Path = PROBLEMS_FILE,
         include_shared: bool = True) -> list:
    """Every corpus problem whose data are present (problems reading ../shared/data are left
    out when it is absent, or when include_shared is False)."""
    with open(path) as fh:
        specs = json.load(fh)["problems"]
    out = []
    for s in specs:
        needs_shared = "shared" in s["data"]
        if needs_shared and not include_shared:
            continue
        rows = _rows(s, shared)
        if rows is None:
            continue
        x, y = _points(s, rows)
        n = len(PARAMS[s["model"]])
        lower = np.array([_bound(v, -np.inf) for v in (s.get("lower") or [None] * n)])
        upper = np.array([_bound(v, np.inf) for v in (s.get("upper") or [None] * n)])
        out.append(Problem(
            id=s["id"], source=s["source"], model=s["model"], x=x, y=y,
            p0=np.array(s["p0"], dtype=float), lower=lower, upper=upper,
            loss=s["loss"], f_scale=float(s["f_scale"]), residuals=s["residuals"],
            best=s.get("best", {}), needs_shared=needs_shared))
    return out


def sources(problems: list) -> list:
    seen = []
    for p in problems:
        if p.source not in seen:
            seen.append(p.source)
    return seen
