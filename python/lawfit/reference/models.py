"""Vectorised NumPy versions of lawfit's eight built-in models, with analytic Jacobians.

Every model maps parameters ``p`` of shape ``(..., n_params)`` and inputs ``x`` of shape
``(..., n_inputs)`` (the leading dimensions broadcast against each other) to

* ``value_and_jac(p, x) -> (f, J)``: the model value ``f`` of shape ``(...)`` and its
  Jacobian ``J = df/dp`` of shape ``(..., n_params)``;
* ``log_value_and_jac(p, x) -> (log f, d log f / dp)``, the pair log residuals use.

The derivatives were worked out by hand from each formula (they are checked against central
finite differences, not against the C++ headers).  Models with a natural closed form for
``log f`` (power_law, chinchilla_log, kaplan, exp_power_law) compute it directly and derive
the linear form from it or alongside it; for the others the log form is ``log f`` and
``J / f``.  Everything is float64.  NaN and infinity are legitimate outputs (a parameter
outside a model's domain, an overflow); the solver treats them, so NumPy's floating-point
warnings are silenced here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import numpy as np

__all__ = ["RefModel", "MODELS", "softplus", "sigmoid"]

Array = np.ndarray
EvalFn = Callable[[Array, Array], Tuple[Array, Array]]


# --------------------------------------------------------------------------------------
# Stable building blocks
# --------------------------------------------------------------------------------------


def softplus(t: Array) -> Array:
    """log(1 + exp(t)), without overflow for large |t|."""
    return np.maximum(t, 0.0) + np.log1p(np.exp(-np.abs(t)))


def sigmoid(t: Array) -> Array:
    """1 / (1 + exp(-t)), without overflow for large |t|."""
    e = np.exp(-np.abs(t))
    return np.where(t >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _columns(*cols: Array) -> Array:
    """Stack per-parameter derivative arrays (broadcast to a common shape) on a last axis."""
    return np.stack(np.broadcast_arrays(*cols), axis=-1)


def _unpack(p: Array, x: Array, n_params: int, n_inputs: int):
    p = np.asarray(p, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if p.shape[-1:] != (n_params,):
        raise ValueError(f"p: last axis must have length {n_params}, got shape {p.shape}")
    if x.shape[-1:] != (n_inputs,):
        raise ValueError(f"x: last axis must have length {n_inputs}, got shape {x.shape}")
    return [p[..., j] for j in range(n_params)], [x[..., k] for k in range(n_inputs)]


# --------------------------------------------------------------------------------------
# The models.  Each function takes the unpacked parameter and input columns and returns
# (value, [derivative columns]).
# --------------------------------------------------------------------------------------


# power_law: f = A x^-alpha;  log f = log A - alpha log x.
def _power_law_log(p, x):
    A, alpha = p
    lx = np.log(x[0])
    return np.log(A) - alpha * lx, [1.0 / A, -lx]


def _power_law(p, x):
    A, alpha = p
    lx = np.log(x[0])
    xa = np.exp(-alpha * lx)  # x^-alpha
    f = A * xa
    return f, [xa, -f * lx]


# saturating_power_law: f = E + A x^-alpha.
def _saturating_power_law(p, x):
    E, A, alpha = p
    lx = np.log(x[0])
    xa = np.exp(-alpha * lx)
    term = A * xa
    return E + term, [np.ones_like(term), xa, -term * lx]


# chinchilla: f = E + A N^-alpha + B D^-beta.
def _chinchilla(p, x):
    E, A, B, alpha, beta = p
    lN, lD = np.log(x[0]), np.log(x[1])
    na = np.exp(-alpha * lN)  # N^-alpha
    db = np.exp(-beta * lD)  # D^-beta
    tn, td = A * na, B * db
    return E + tn + td, [np.ones_like(tn), na, db, -tn * lN, -td * lD]


# chinchilla_log: log f = logsumexp(u1, u2, u3) with u1 = a - alpha log N, u2 = b - beta log D,
# u3 = e.  d log f / d u_i = softmax_i(u); u1 depends on (a, alpha), u2 on (b, beta).
def _chinchilla_log_log(p, x):
    a, b, e, alpha, beta = p
    lN, lD = np.log(x[0]), np.log(x[1])
    u1, u2, u3 = np.broadcast_arrays(a - alpha * lN, b - beta * lD, e)
    m = np.maximum(np.maximum(u1, u2), u3)  # factor the largest term out
    e1, e2, e3 = np.exp(u1 - m), np.exp(u2 - m), np.exp(u3 - m)
    s = e1 + e2 + e3
    w1, w2, w3 = e1 / s, e2 / s, e3 / s
    return m + np.log(s), [w1, w2, w3, -w1 * lN, -w2 * lD]


# kaplan: f = (u + v)^alphaD with u = (Nc/N)^(alphaN/alphaD), v = Dc/D;
# log f = alphaD log s, s = u + v.
#   d log f/d Nc     = alphaD/s * u * (alphaN/alphaD) / Nc = u alphaN / (s Nc)
#   d log f/d Dc     = alphaD / (s D)
#   d log f/d alphaN = alphaD/s * u log(Nc/N) / alphaD = u log(Nc/N) / s
#   d log f/d alphaD = log s + alphaD/s * u log(Nc/N) * (-alphaN/alphaD^2)
def _kaplan_log(p, x):
    Nc, Dc, aN, aD = p
    N, D = x
    lr = np.log(Nc) - np.log(N)  # log(Nc / N)
    u = np.exp(aN / aD * lr)
    v = Dc / D
    s = u + v
    ls = np.log(s)
    return aD * ls, [
        u * aN / (s * Nc),
        aD / (s * D),
        u * lr / s,
        ls - u * aN * lr / (s * aD),
    ]


# broken_power_law: f = a + b x^-c0 h^(-c1 f1), h = 1 + (x/d1)^(1/f1).  With
# t = log(x/d1)/f1, log h = softplus(t), so the product is pw = exp(-c0 log x - c1 f1 sp(t)).
#   dt/dd1 = -1/(d1 f1),  dt/df1 = -t/f1,  d sp/dt = sigmoid(t)
#   d pw/d c0 = -pw log x
#   d pw/d c1 = -pw f1 sp
#   d pw/d d1 = -pw c1 f1 sg * (-1/(d1 f1)) = pw c1 sg / d1
#   d pw/d f1 = pw * (-c1 sp - c1 f1 sg * (-t/f1)) = pw c1 (sg t - sp)
def _broken_power_law(p, x):
    a, b, c0, c1, d1, f1 = p
    lx = np.log(x[0])
    t = (lx - np.log(d1)) / f1
    sp, sg = softplus(t), sigmoid(t)
    pw = np.exp(-c0 * lx - c1 * f1 * sp)
    bp = b * pw
    return a + bp, [
        np.ones_like(bp),
        pw,
        -bp * lx,
        -bp * f1 * sp,
        bp * c1 * sg / d1,
        bp * c1 * (sg * t - sp),
    ]


# exp_power_law: f = exp(a x^b);  log f = a x^b.
def _exp_power_law_log(p, x):
    a, b = p
    lx = np.log(x[0])
    xb = np.exp(b * lx)
    return a * xb, [xb, a * xb * lx]


# logistic: f = a sigma(z) + b, z = k (x - x0).  sigma' = sigma(z) sigma(-z), computed as
# that product (rather than s (1 - s)) so it stays accurate where sigma saturates.
def _logistic(p, x):
    a, k, x0, b = p
    dx = x[0] - x0
    z = k * dx
    s = sigmoid(z)
    ds = a * s * sigmoid(-z)  # a * sigma'(z)
    return a * s + b, [s, ds * dx, -ds * k, np.ones_like(s)]


# --------------------------------------------------------------------------------------
# Conversions between the linear and the log form
# --------------------------------------------------------------------------------------


def _exp_of(log_fn):
    """Linear form from a native log form: f = exp(log f), J = f * d log f."""

    def fn(p, x):
        lf, dl = log_fn(p, x)
        f = np.exp(lf)
        return f, [f * c for c in dl]

    return fn


def _log_of(fn):
    """Log form from the linear form: log f and J / f."""

    def log_fn(p, x):
        f, J = fn(p, x)
        return np.log(f), [c / f for c in J]

    return log_fn


# --------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefModel:
    """One built-in model: metadata plus vectorised value/Jacobian functions.

    ``has_log`` is True where the log form is computed natively (not as log f, J/f).
    ``log_inputs`` is True for models defined for x > 0 only, which the compiled core feeds
    with log x (spec step 0): for them an x <= 0 counts as non-finite data.  The functions
    here always take x itself.
    """

    name: str
    param_names: Tuple[str, ...]
    n_inputs: int
    formula: str
    has_log: bool = False
    log_inputs: bool = False
    _value: EvalFn = field(default=None, repr=False, compare=False)
    _log_value: EvalFn = field(default=None, repr=False, compare=False)
    # x -> what step 0 checks for finiteness (a user's law: x with a logarithm taken of the
    # inputs it takes logarithms or powers of); None: log x where log_inputs, else x.
    _domain: Optional[Callable] = field(default=None, repr=False, compare=False)

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def domain(self, x: Array) -> Array:
        """The inputs as step 0 checks them: a non-finite entry is non-finite data."""
        if self._domain is not None:
            return self._domain(x)
        return np.log(x) if self.log_inputs else x

    def _run(self, fn, p, x):
        cols_p, cols_x = _unpack(p, x, self.n_params, self.n_inputs)
        with np.errstate(all="ignore"):
            f, cols = fn(cols_p, cols_x)
            J = _columns(f, *cols)[..., 1:]  # broadcast every column against f, too
            f = np.broadcast_to(f, J.shape[:-1]).astype(np.float64, copy=True)
        return f, J

    def value_and_jac(self, p, x) -> Tuple[Array, Array]:
        """Model value f, shape (...), and Jacobian df/dp, shape (..., n_params)."""
        return self._run(self._value, p, x)

    def log_value_and_jac(self, p, x) -> Tuple[Array, Array]:
        """log f, shape (...), and d log f / dp, shape (..., n_params)."""
        return self._run(self._log_value, p, x)


def _model(name, params, n_inputs, formula, *, value=None, log_value=None,
           log_inputs=True) -> RefModel:
    has_log = log_value is not None
    if value is None:
        value = _exp_of(log_value)
    if log_value is None:
        log_value = _log_of(value)
    return RefModel(name, tuple(params), n_inputs, formula, has_log, log_inputs, value,
                    log_value)


MODELS: Dict[str, RefModel] = {
    m.name: m
    for m in [
        _model("power_law", ["A", "alpha"], 1, "A * x**-alpha",
               value=_power_law, log_value=_power_law_log),
        _model("saturating_power_law", ["E", "A", "alpha"], 1, "E + A * x**-alpha",
               value=_saturating_power_law),
        _model("chinchilla", ["E", "A", "B", "alpha", "beta"], 2,
               "E + A * N**-alpha + B * D**-beta", value=_chinchilla),
        _model("chinchilla_log", ["a", "b", "e", "alpha", "beta"], 2,
               "exp(logsumexp(a - alpha * log(N), b - beta * log(D), e))",
               log_value=_chinchilla_log_log),
        _model("kaplan", ["Nc", "Dc", "alphaN", "alphaD"], 2,
               "((Nc / N)**(alphaN / alphaD) + Dc / D)**alphaD", log_value=_kaplan_log),
        _model("broken_power_law", ["a", "b", "c0", "c1", "d1", "f1"], 1,
               "a + b * x**-c0 * (1 + (x / d1)**(1 / f1))**(-c1 * f1)",
               value=_broken_power_law),
        _model("exp_power_law", ["a", "b"], 1, "exp(a * x**b)",
               log_value=_exp_power_law_log),
        _model("logistic", ["a", "k", "x0", "b"], 1, "a / (1 + exp(-k * (x - x0))) + b",
               value=_logistic, log_inputs=False),
    ]
}
