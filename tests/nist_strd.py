"""NIST StRD nonlinear-regression problems: parser, models and analytic Jacobians.

The 27 certified problems live in ``../shared/data/nist_strd/*.dat`` beside the repository
root (see ``shared/data/README.md``). They are read in place and parsed by their content
(section headers), never by fixed line numbers.

Every model is ``f(x, *b) -> (n,)`` and every Jacobian ``jac(x, *b) -> (n, p)``, written from
the formula printed in the file with NumPy ufuncs only, so both accept complex parameters
(complex-step differentiation). No ``abs()`` or comparisons touch the parameters.

Notes taken from the data README:

* Nelson's model is for ``log(y)``: ``NistProblem.y`` holds ``log`` of the data column and
  ``x`` is an ``(n, 2)`` array of the two predictors (time, temperature).
* Roszman1 keeps the ``arctan(b3 / (x - b4))`` form, on which its certified ``b1`` depends.
* Lanczos1's certified residual sum of squares is ~1e-25; compare it with an absolute floor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NIST_DIR = DATA_ROOT / "nist_strd"

#: All 27 problems, in the order NIST lists them (by difficulty, then as on the NIST pages).
NAMES: Tuple[str, ...] = (
    # lower
    "Misra1a", "Chwirut2", "Chwirut1", "Lanczos3", "Gauss1", "Gauss2", "DanWood", "Misra1b",
    # average
    "Kirby2", "Hahn1", "Nelson", "MGH17", "Lanczos1", "Lanczos2", "Gauss3", "Misra1c",
    "Misra1d", "Roszman1", "ENSO",
    # higher
    "MGH09", "Thurber", "BoxBOD", "Rat42", "MGH10", "Eckerle4", "Rat43", "Bennett5",
)

#: Absolute floor for comparing residual sums of squares (Lanczos1's certified RSS ~ 1.4e-25).
RSS_ABS_FLOOR = 1e-20


def available(data_dir: Optional[Path] = None) -> bool:
    """True when the NIST StRD folder exists and holds .dat files."""
    d = Path(data_dir) if data_dir is not None else NIST_DIR
    return d.is_dir() and any(d.glob("*.dat"))


# ---------------------------------------------------------------------------------------------
# Models and Jacobians
# ---------------------------------------------------------------------------------------------

_PI = np.pi


def _stack(*cols):
    n = None
    for c in cols:
        if np.ndim(c) > 0:
            n = np.shape(c)[0]
            break
    out = [np.broadcast_to(c, (n,)) if np.ndim(c) == 0 else c for c in cols]
    return np.stack(out, axis=-1)


def _ones(x):
    return np.ones(np.shape(x)[0])


# --- y = b1*(1-exp[-b2*x])  (Misra1a, BoxBOD) ---
def exp_rise(x, b1, b2):
    return b1 * (1.0 - np.exp(-b2 * x))


def exp_rise_jac(x, b1, b2):
    e = np.exp(-b2 * x)
    return _stack(1.0 - e, b1 * x * e)


# --- y = exp(-b1*x)/(b2+b3*x)  (Chwirut1, Chwirut2) ---
def chwirut(x, b1, b2, b3):
    return np.exp(-b1 * x) / (b2 + b3 * x)


def chwirut_jac(x, b1, b2, b3):
    d = b2 + b3 * x
    f = np.exp(-b1 * x) / d
    return _stack(-x * f, -f / d, -x * f / d)


# --- y = b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)  (Lanczos1/2/3) ---
def lanczos(x, b1, b2, b3, b4, b5, b6):
    return b1 * np.exp(-b2 * x) + b3 * np.exp(-b4 * x) + b5 * np.exp(-b6 * x)


def lanczos_jac(x, b1, b2, b3, b4, b5, b6):
    e1, e2, e3 = np.exp(-b2 * x), np.exp(-b4 * x), np.exp(-b6 * x)
    return _stack(e1, -b1 * x * e1, e2, -b3 * x * e2, e3, -b5 * x * e3)


# --- y = b1*exp(-b2*x) + b3*exp(-(x-b4)**2/b5**2) + b6*exp(-(x-b7)**2/b8**2)  (Gauss1/2/3) ---
def gauss(x, b1, b2, b3, b4, b5, b6, b7, b8):
    return (b1 * np.exp(-b2 * x)
            + b3 * np.exp(-(x - b4) ** 2 / b5 ** 2)
            + b6 * np.exp(-(x - b7) ** 2 / b8 ** 2))


def gauss_jac(x, b1, b2, b3, b4, b5, b6, b7, b8):
    e = np.exp(-b2 * x)
    u, v = x - b4, x - b7
    g1 = np.exp(-u ** 2 / b5 ** 2)
    g2 = np.exp(-v ** 2 / b8 ** 2)
    return _stack(
        e, -b1 * x * e,
        g1, b3 * g1 * 2.0 * u / b5 ** 2, b3 * g1 * 2.0 * u ** 2 / b5 ** 3,
        g2, b6 * g2 * 2.0 * v / b8 ** 2, b6 * g2 * 2.0 * v ** 2 / b8 ** 3,
    )


# --- y = b1*x**b2  (DanWood) ---
def danwood(x, b1, b2):
    return b1 * x ** b2


def danwood_jac(x, b1, b2):
    p = x ** b2
    return _stack(p, b1 * p * np.log(x))


# --- y = b1 * (1-(1+b2*x/2)**(-2))  (Misra1b) ---
def misra1b(x, b1, b2):
    return b1 * (1.0 - (1.0 + b2 * x / 2.0) ** (-2))


def misra1b_jac(x, b1, b2):
    u = 1.0 + b2 * x / 2.0
    return _stack(1.0 - u ** (-2), b1 * x * u ** (-3))


# --- y = (b1 + b2*x + b3*x**2) / (1 + b4*x + b5*x**2)  (Kirby2) ---
def kirby2(x, b1, b2, b3, b4, b5):
    return (b1 + b2 * x + b3 * x ** 2) / (1.0 + b4 * x + b5 * x ** 2)


def kirby2_jac(x, b1, b2, b3, b4, b5):
    num = b1 + b2 * x + b3 * x ** 2
    den = 1.0 + b4 * x + b5 * x ** 2
    f = num / den
    return _stack(1.0 / den, x / den, x ** 2 / den, -f * x / den, -f * x ** 2 / den)


# --- y = (b1+b2*x+b3*x**2+b4*x**3) / (1+b5*x+b6*x**2+b7*x**3)  (Hahn1, Thurber) ---
def cubic_cubic(x, b1, b2, b3, b4, b5, b6, b7):
    return ((b1 + b2 * x + b3 * x ** 2 + b4 * x ** 3)
            / (1.0 + b5 * x + b6 * x ** 2 + b7 * x ** 3))


def cubic_cubic_jac(x, b1, b2, b3, b4, b5, b6, b7):
    x2, x3 = x ** 2, x ** 3
    num = b1 + b2 * x + b3 * x2 + b4 * x3
    den = 1.0 + b5 * x + b6 * x2 + b7 * x3
    f = num / den
    return _stack(1.0 / den, x / den, x2 / den, x3 / den,
                  -f * x / den, -f * x2 / den, -f * x3 / den)


# --- log[y] = b1 - b2*x1 * exp[-b3*x2]  (Nelson; x is (n, 2)) ---
def nelson(x, b1, b2, b3):
    x1, x2 = x[:, 0], x[:, 1]
    return b1 - b2 * x1 * np.exp(-b3 * x2)


def nelson_jac(x, b1, b2, b3):
    x1, x2 = x[:, 0], x[:, 1]
    e = np.exp(-b3 * x2)
    return _stack(np.ones(x1.shape[0]), -x1 * e, b2 * x1 * x2 * e)


# --- y = b1 + b2*exp[-x*b4] + b3*exp[-x*b5]  (MGH17) ---
def mgh17(x, b1, b2, b3, b4, b5):
    return b1 + b2 * np.exp(-x * b4) + b3 * np.exp(-x * b5)


def mgh17_jac(x, b1, b2, b3, b4, b5):
    e4, e5 = np.exp(-x * b4), np.exp(-x * b5)
    return _stack(_ones(x), e4, e5, -b2 * x * e4, -b3 * x * e5)


# --- y = b1 * (1-(1+2*b2*x)**(-.5))  (Misra1c) ---
def misra1c(x, b1, b2):
    return b1 * (1.0 - (1.0 + 2.0 * b2 * x) ** (-0.5))


def misra1c_jac(x, b1, b2):
    u = 1.0 + 2.0 * b2 * x
    return _stack(1.0 - u ** (-0.5), b1 * x * u ** (-1.5))


# --- y = b1*b2*x*((1+b2*x)**(-1))  (Misra1d) ---
def misra1d(x, b1, b2):
    return b1 * b2 * x * (1.0 + b2 * x) ** (-1)


def misra1d_jac(x, b1, b2):
    u = 1.0 + b2 * x
    return _stack(b2 * x / u, b1 * x / u ** 2)


# --- y = b1 - b2*x - arctan[b3/(x-b4)]/pi  (Roszman1; keep the arctan form) ---
def roszman1(x, b1, b2, b3, b4):
    return b1 - b2 * x - np.arctan(b3 / (x - b4)) / _PI


def roszman1_jac(x, b1, b2, b3, b4):
    d = x - b4
    q = d ** 2 + b3 ** 2  # (1 + (b3/d)**2) * d**2
    return _stack(_ones(x), -x, -d / (_PI * q), -b3 / (_PI * q))


# --- ENSO: three harmonic pairs, periods 12, b4 and b7 ---
def enso(x, b1, b2, b3, b4, b5, b6, b7, b8, b9):
    w = 2.0 * _PI * x
    return (b1 + b2 * np.cos(w / 12.0) + b3 * np.sin(w / 12.0)
            + b5 * np.cos(w / b4) + b6 * np.sin(w / b4)
            + b8 * np.cos(w / b7) + b9 * np.sin(w / b7))


def enso_jac(x, b1, b2, b3, b4, b5, b6, b7, b8, b9):
    w = 2.0 * _PI * x
    t4, t7 = w / b4, w / b7
    c4, s4, c7, s7 = np.cos(t4), np.sin(t4), np.cos(t7), np.sin(t7)
    # d(theta)/d(b) = -theta/b for theta = w/b
    return _stack(_ones(x), np.cos(w / 12.0), np.sin(w / 12.0),
                  (b5 * s4 - b6 * c4) * t4 / b4, c4, s4,
                  (b8 * s7 - b9 * c7) * t7 / b7, c7, s7)


# --- y = b1*(x**2+x*b2) / (x**2+x*b3+b4)  (MGH09) ---
def mgh09(x, b1, b2, b3, b4):
    return b1 * (x ** 2 + x * b2) / (x ** 2 + x * b3 + b4)


def mgh09_jac(x, b1, b2, b3, b4):
    num = x ** 2 + x * b2
    den = x ** 2 + x * b3 + b4
    r = num / den
    return _stack(r, b1 * x / den, -b1 * r * x / den, -b1 * r / den)


# --- y = b1 / (1+exp[b2-b3*x])  (Rat42) ---
def rat42(x, b1, b2, b3):
    return b1 / (1.0 + np.exp(b2 - b3 * x))


def rat42_jac(x, b1, b2, b3):
    e = np.exp(b2 - b3 * x)
    u = 1.0 + e
    return _stack(1.0 / u, -b1 * e / u ** 2, b1 * x * e / u ** 2)


# --- y = b1 * exp[b2/(x+b3)]  (MGH10) ---
def mgh10(x, b1, b2, b3):
    return b1 * np.exp(b2 / (x + b3))


def mgh10_jac(x, b1, b2, b3):
    d = x + b3
    e = np.exp(b2 / d)
    return _stack(e, b1 * e / d, -b1 * b2 * e / d ** 2)


# --- y = (b1/b2) * exp[-0.5*((x-b3)/b2)**2]  (Eckerle4) ---
def eckerle4(x, b1, b2, b3):
    return (b1 / b2) * np.exp(-0.5 * ((x - b3) / b2) ** 2)


def eckerle4_jac(x, b1, b2, b3):
    z = (x - b3) / b2
    g = np.exp(-0.5 * z ** 2)
    return _stack(g / b2, b1 * g * (z ** 2 - 1.0) / b2 ** 2, b1 * g * z / b2 ** 2)


# --- y = b1 / ((1+exp[b2-b3*x])**(1/b4))  (Rat43) ---
def rat43(x, b1, b2, b3, b4):
    return b1 / (1.0 + np.exp(b2 - b3 * x)) ** (1.0 / b4)


def rat43_jac(x, b1, b2, b3, b4):
    e = np.exp(b2 - b3 * x)
    u = 1.0 + e
    p = u ** (-1.0 / b4)
    q = b1 * p * e / (b4 * u)  # = b1/b4 * e * u**(-1/b4 - 1)
    return _stack(p, -q, x * q, b1 * p * np.log(u) / b4 ** 2)


# --- y = b1 * (b2+x)**(-1/b3)  (Bennett5) ---
def bennett5(x, b1, b2, b3):
    return b1 * (b2 + x) ** (-1.0 / b3)


def bennett5_jac(x, b1, b2, b3):
    u = b2 + x
    p = u ** (-1.0 / b3)
    return _stack(p, -b1 * p / (b3 * u), b1 * p * np.log(u) / b3 ** 2)


#: name -> (model, jacobian)
MODELS: Dict[str, Tuple[Callable, Callable]] = {
    "Misra1a": (exp_rise, exp_rise_jac),
    "BoxBOD": (exp_rise, exp_rise_jac),
    "Chwirut1": (chwirut, chwirut_jac),
    "Chwirut2": (chwirut, chwirut_jac),
    "Lanczos1": (lanczos, lanczos_jac),
    "Lanczos2": (lanczos, lanczos_jac),
    "Lanczos3": (lanczos, lanczos_jac),
    "Gauss1": (gauss, gauss_jac),
    "Gauss2": (gauss, gauss_jac),
    "Gauss3": (gauss, gauss_jac),
    "DanWood": (danwood, danwood_jac),
    "Misra1b": (misra1b, misra1b_jac),
    "Kirby2": (kirby2, kirby2_jac),
    "Hahn1": (cubic_cubic, cubic_cubic_jac),
    "Thurber": (cubic_cubic, cubic_cubic_jac),
    "Nelson": (nelson, nelson_jac),
    "MGH17": (mgh17, mgh17_jac),
    "Misra1c": (misra1c, misra1c_jac),
    "Misra1d": (misra1d, misra1d_jac),
    "Roszman1": (roszman1, roszman1_jac),
    "ENSO": (enso, enso_jac),
    "MGH09": (mgh09, mgh09_jac),
    "Rat42": (rat42, rat42_jac),
    "MGH10": (mgh10, mgh10_jac),
    "Eckerle4": (eckerle4, eckerle4_jac),
    "Rat43": (rat43, rat43_jac),
    "Bennett5": (bennett5, bennett5_jac),
}


# ---------------------------------------------------------------------------------------------
# Problem container and parser
# ---------------------------------------------------------------------------------------------

@dataclass
class NistProblem:
    name: str
    difficulty: str  # "lower" | "average" | "higher"
    x: np.ndarray  # (n,) or, for Nelson, (n, 2)
    y: np.ndarray  # (n,); for Nelson log(y) of the data column
    start1: np.ndarray  # (p,)
    start2: np.ndarray  # (p,)
    certified: np.ndarray  # (p,)
    certified_sd: np.ndarray  # (p,)
    certified_rss: float
    model: str  # the model formula text from the file
    f: Callable = field(repr=False)
    jac: Callable = field(repr=False)
    certified_rsd: float = float("nan")
    dof: int = 0
    y_raw: Optional[np.ndarray] = field(default=None, repr=False)  # data column as in the file

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    @property
    def p(self) -> int:
        return int(self.certified.shape[0])

    @property
    def starts(self) -> Dict[str, np.ndarray]:
        return {"start1": self.start1, "start2": self.start2}

    def residual(self, b) -> np.ndarray:
        """``f(x, *b) - y``."""
        return self.f(self.x, *b) - self.y

    def rss(self, b) -> float:
        r = self.residual(np.asarray(b, dtype=float))
        return float(r @ r)


_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?"
_PARAM_RE = re.compile(
    rf"^\s*b(\d+)\s*=\s*({_NUM})\s+({_NUM})\s+({_NUM})\s+({_NUM})\s*$")
_DIFF_RE = re.compile(r"\b(Lower|Average|Higher)\s+Level\s+of\s+Difficulty", re.I)
_RSS_RE = re.compile(rf"^\s*Residual\s+Sum\s+of\s+Squares:\s*({_NUM})\s*$", re.I)
_RSD_RE = re.compile(rf"^\s*Residual\s+Standard\s+Deviation:\s*({_NUM})\s*$", re.I)
_DOF_RE = re.compile(r"^\s*Degrees\s+of\s+Freedom:\s*(\d+)\s*$", re.I)
_NOBS_RE = re.compile(r"^\s*Number\s+of\s+Observations:\s*(\d+)\s*$", re.I)
_NPARAM_RE = re.compile(r"^\s*(\d+)\s+Parameters\b", re.I)
# the data section header names its columns: "Data:   y   x" or "Data:  y  x1  x2"
_DATA_HDR_RE = re.compile(r"^Data:\s+y(\s+x\d*)+\s*$")


def _num(s: str) -> float:
    return float(s.replace("D", "E").replace("d", "e"))


def _parse(text: str, name: str) -> dict:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    m = _DIFF_RE.search(text)
    if not m:
        raise ValueError(f"{name}: no level of difficulty")
    difficulty = m.group(1).lower()

    # --- model section: from "Model:" through the line before the starting-values header ---
    i_model = next(i for i, ln in enumerate(lines) if ln.startswith("Model:"))
    i_start = next(i for i, ln in enumerate(lines)
                   if i > i_model and re.search(r"Starting\s+values", ln, re.I))
    model_lines = [ln.strip() for ln in lines[i_model:i_start]]
    model_lines[0] = model_lines[0][len("Model:"):].strip()  # class, e.g. "Exponential Class"
    i_np = next(i for i, ln in enumerate(model_lines) if _NPARAM_RE.match(ln))
    n_params = int(_NPARAM_RE.match(model_lines[i_np]).group(1))
    formula = "\n".join(ln for ln in model_lines[i_np + 1:] if ln)

    # --- parameter table, certified values and summary, between Starting values and Data ---
    i_data = next(i for i, ln in enumerate(lines) if _DATA_HDR_RE.match(ln.rstrip()))
    params = {}
    rss = rsd = dof = nobs = None
    for ln in lines[i_start:i_data]:
        pm = _PARAM_RE.match(ln)
        if pm:
            params[int(pm.group(1))] = [_num(pm.group(k)) for k in range(2, 6)]
            continue
        for rx, kind in ((_RSS_RE, "rss"), (_RSD_RE, "rsd"), (_DOF_RE, "dof"),
                         (_NOBS_RE, "nobs")):
            mm = rx.match(ln)
            if mm:
                if kind == "rss":
                    rss = _num(mm.group(1))
                elif kind == "rsd":
                    rsd = _num(mm.group(1))
                elif kind == "dof":
                    dof = int(mm.group(1))
                else:
                    nobs = int(mm.group(1))
    if sorted(params) != list(range(1, n_params + 1)):
        raise ValueError(f"{name}: parameters {sorted(params)}, expected b1..b{n_params}")
    if rss is None or nobs is None:
        raise ValueError(f"{name}: missing certified residual sum of squares or observations")
    table = np.array([params[k] for k in range(1, n_params + 1)], dtype=float)

    # --- data ---
    columns = lines[i_data].split()[1:]  # ["y", "x"] or ["y", "x1", "x2"]
    rows = []
    for ln in lines[i_data + 1:]:
        if not ln.strip():
            continue
        vals = [_num(t) for t in ln.split()]
        if len(vals) != len(columns):
            raise ValueError(f"{name}: data row {ln!r} does not match columns {columns}")
        rows.append(vals)
    data = np.array(rows, dtype=float)
    if data.shape[0] != nobs:
        raise ValueError(f"{name}: {data.shape[0]} data rows, file says {nobs}")
    # The file's "Degrees of Freedom" is kept as printed but not checked: Rat43's says 9
    # where n - p = 11 (its residual standard deviation is sqrt(RSS / 11)).

    return dict(difficulty=difficulty, formula=formula, table=table, rss=rss, rsd=rsd,
                dof=dof, columns=columns, data=data)


def load(name: str, data_dir: Optional[Path] = None) -> NistProblem:
    """Parse ``<data_dir>/<name>.dat`` (``name`` is case-sensitive as in the file name)."""
    d = Path(data_dir) if data_dir is not None else NIST_DIR
    path = d / f"{name}.dat"
    parsed = _parse(path.read_text(), name)
    f, jac = MODELS[name]
    data = parsed["data"]
    y_raw = data[:, 0].copy()
    if data.shape[1] == 2:
        x = data[:, 1].copy()
    else:
        x = np.ascontiguousarray(data[:, 1:])
    y = y_raw
    formula = parsed["formula"]
    if formula.lstrip().lower().startswith("log[y]") or formula.lstrip().lower().startswith(
            "log(y)"):
        y = np.log(y_raw)  # Nelson: the model describes log(y)
    t = parsed["table"]
    return NistProblem(
        name=name, difficulty=parsed["difficulty"], x=x, y=y,
        start1=t[:, 0].copy(), start2=t[:, 1].copy(),
        certified=t[:, 2].copy(), certified_sd=t[:, 3].copy(),
        certified_rss=float(parsed["rss"]), model=formula, f=f, jac=jac,
        certified_rsd=float(parsed["rsd"]) if parsed["rsd"] is not None else float("nan"),
        dof=int(parsed["dof"] or 0), y_raw=y_raw,
    )


def load_all(data_dir: Optional[Path] = None) -> List[NistProblem]:
    """All 27 problems, in NIST's order (``NAMES``)."""
    return [load(n, data_dir) for n in NAMES]


# ---------------------------------------------------------------------------------------------
# Scoring and derivative helpers
# ---------------------------------------------------------------------------------------------

LRE_CAP = 15.0


def lre(b, certified, cap: float = LRE_CAP) -> float:
    """Worst-parameter log relative error ``min_k -log10(|b_k - c_k| / |c_k|)``, in [0, cap].

    Non-finite estimates score 0.
    """
    b = np.asarray(b, dtype=float)
    c = np.asarray(certified, dtype=float)
    if b.shape != c.shape or not np.all(np.isfinite(b)):
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(b - c) / np.abs(c)
        per = np.where(rel == 0.0, cap, -np.log10(rel))
    per = np.clip(np.nan_to_num(per, nan=0.0, posinf=cap, neginf=0.0), 0.0, cap)
    return float(per.min())


def complex_step_jac(f, x, b, h: float = 1e-20) -> np.ndarray:
    """Jacobian of ``f(x, *b)`` w.r.t. ``b`` by complex step (step ``h * max(|b_k|, 1)``)."""
    b = np.asarray(b, dtype=float)
    cols = []
    for k in range(b.size):
        hk = h * max(abs(b[k]), 1.0)
        bc = b.astype(complex)
        bc[k] += 1j * hk
        cols.append(np.imag(f(x, *bc)) / hk)
    return np.stack(cols, axis=-1)


def central_diff_jac(f, x, b, rel_step: float = 6e-6) -> np.ndarray:
    """Jacobian by central differences (for cross-checking the complex-step one)."""
    b = np.asarray(b, dtype=float)
    cols = []
    for k in range(b.size):
        hk = rel_step * (abs(b[k]) if b[k] != 0.0 else 1.0)
        bp, bm = b.copy(), b.copy()
        bp[k] += hk
        bm[k] -= hk
        cols.append((f(x, *bp) - f(x, *bm)) / (2.0 * hk))
    return np.stack(cols, axis=-1)


def jac_rel_error(ja: np.ndarray, jb: np.ndarray) -> float:
    """Worst column-wise relative difference ``max_k ||ja_k - jb_k||_inf / ||jb_k||_inf``."""
    ja, jb = np.asarray(ja), np.asarray(jb)
    scale = np.max(np.abs(jb), axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return float(np.max(np.max(np.abs(ja - jb), axis=0) / scale))


def rss_matches(rss: float, certified: float, rtol: float = 1e-6,
                abs_floor: float = RSS_ABS_FLOOR) -> bool:
    return abs(rss - certified) <= max(rtol * abs(certified), abs_floor)


__all__ = [
    "DATA_ROOT", "NIST_DIR", "NAMES", "MODELS", "NistProblem", "available", "load",
    "load_all", "lre", "complex_step_jac", "central_diff_jac", "jac_rel_error", "rss_matches",
    "RSS_ABS_FLOOR", "LRE_CAP",
]
