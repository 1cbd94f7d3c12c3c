"""The NumPy reference for a user's law (lawfit.law): the law's parsed tree evaluated by its
own walk, value and derivatives together (forward mode, one derivative array per
parameter), independently of the symbolic derivatives and the tape that the compiled core
runs.  Its log form is the generic log f, (df/dp) / f."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from .models import RefModel, _log_of

Array = np.ndarray


def _sigmoid(a):
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _walk(tree, p: Sequence[Array], x: Sequence[Array], names: Dict[str, tuple]):
    """(value, [d value / d p_j or None]) of a tree (lawfit._expr.Tree)."""
    n = len(p)
    zero: List[Optional[Array]] = [None] * n

    def lin(*terms):  # sum of coefficient * derivative over the terms, None where all zero
        out = []
        for j in range(n):
            acc = None
            for coef, d in terms:
                if d[j] is not None:
                    acc = coef * d[j] if acc is None else acc + coef * d[j]
            out.append(acc)
        return out

    def go(t):
        if t.kind == "num":
            return np.float64(t.value), zero
        if t.kind == "name":
            if t.value == "pi":
                return np.float64(np.pi), zero
            kind, i = names[t.value]
            if kind == "input":
                return x[i], zero
            d = list(zero)
            d[i] = np.float64(1.0)
            return p[i], d
        args = [go(a) for a in t.args]
        name = t.value
        if name == "logsumexp" or name == "logaddexp":
            vals = [v for v, _ in args]
            f = np.logaddexp.reduce(np.broadcast_arrays(*vals), axis=0) if len(vals) > 1 \
                else vals[0]
            return f, lin(*[(np.exp(v - f), d) for v, d in args])
        if len(args) == 2:
            (a, da), (b, db) = args
            if name == "add":
                return a + b, lin((1.0, da), (1.0, db))
            if name == "sub":
                return a - b, lin((1.0, da), (-1.0, db))
            if name == "mul":
                return a * b, lin((b, da), (a, db))
            if name == "div":
                return a / b, lin((1 / b, da), (-a / (b * b), db))
            if name == "power":
                if all(v is None for v in db):  # a constant or input exponent
                    f = np.power(a, b)
                    return f, lin((b * np.power(a, b - 1), da))
                f = np.exp(b * np.log(a))
                return f, lin((f * b / a, da), (f * np.log(a), db))
            if name in ("minimum", "maximum"):
                take_a = (a <= b) if name == "minimum" else (a >= b)
                return np.where(take_a, a, b), lin((take_a * 1.0, da), ((~take_a) * 1.0, db))
            raise ValueError(f"unknown operation {name}")
        (a, da), = args
        if name == "neg":
            return -a, lin((-1.0, da))
        if name == "exp":
            f = np.exp(a)
            return f, lin((f, da))
        if name == "log":
            return np.log(a), lin((1 / a, da))
        if name == "log1p":
            return np.log1p(a), lin((1 / (1 + a), da))
        if name == "expm1":
            return np.expm1(a), lin((np.exp(a), da))
        if name == "sqrt":
            f = np.sqrt(a)
            return f, lin((0.5 / f, da))
        if name == "tanh":
            f = np.tanh(a)
            return f, lin((1 - f * f, da))
        if name == "sin":
            return np.sin(a), lin((np.cos(a), da))
        if name == "cos":
            return np.cos(a), lin((-np.sin(a), da))
        if name == "arctan":
            return np.arctan(a), lin((1 / (1 + a * a), da))
        if name == "abs":
            return np.abs(a), lin((np.sign(a), da))
        if name == "sigmoid":
            f = _sigmoid(a)
            return f, lin((f * (1 - f), da))
        if name == "softplus":
            return np.logaddexp(0.0, a), lin((_sigmoid(a), da))
        raise ValueError(f"unknown function {name}")

    return go


def law_reference(name: str, tree, params: Sequence[str], inputs: Sequence[str],
                  formula: str, log_inputs: Sequence[int]) -> RefModel:
    """The reference twin of a law: ``tree`` (lawfit._expr.Tree) over ``params`` and
    ``inputs``; ``log_inputs``: the inputs the law takes a logarithm or a power of, where an
    x <= 0 is non-finite data (as the compiled form's log columns make it)."""
    names = {s: ("param", j) for j, s in enumerate(params)}
    names.update({s: ("input", i) for i, s in enumerate(inputs)})

    def value(cols_p, cols_x):
        f, d = _walk(tree, cols_p, cols_x, names)(tree)
        return f, [np.zeros_like(f) if g is None else g for g in d]

    logged = tuple(sorted(set(log_inputs)))

    def domain(x):
        out = np.array(x, dtype=np.float64, copy=True)
        with np.errstate(all="ignore"):
            for i in logged:
                out[..., i] = np.log(out[..., i])
        return out

    return RefModel(name, tuple(params), len(inputs), formula, False, False, value,
                    _log_of(value), domain)
