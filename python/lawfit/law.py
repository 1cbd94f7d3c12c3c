"""``lawfit.law``: a scaling law of one's own, defined in one line, fitted like a built-in.

    >>> chin = lawfit.law("E + A * N**-alpha + B * D**-beta", inputs=["N", "D"])
    >>> chin.param_names
    ('E', 'A', 'alpha', 'B', 'beta')
    >>> lawfit.fit(chin, x, y, p0=[1.7, 400, 0.34, 410, 0.28])

The expression is parsed (or, for a function, traced once with symbolic arguments), then
differentiated symbolically with shared subexpressions, and compiled to the instruction tape
that the C++ core's scalar solve and SIMD lanes run (``cpp/include/lawfit/tape.h``): no
Python runs per point or per iteration, and no C++ compiler is needed.  The NumPy reference
evaluates the same law by its own walk of the expression.
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional, Sequence, Union

import numpy as np

from . import _expr
from .models import Model, Profile

__all__ = ["law"]


def _names(arg, what: str) -> list:
    if isinstance(arg, str):
        arg = [arg]
    try:
        names = list(arg)
    except TypeError:
        raise ValueError(f"{what}: expected a list of names, got {arg!r}") from None
    for n in names:
        if not (isinstance(n, str) and n.isidentifier()):
            raise ValueError(f"{what}: {n!r} is not a name")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{what}: {', '.join(map(repr, dup))} named twice")
    return names


def law(expression: Union[str, Callable], inputs: Sequence[str],
        params: Optional[Sequence[str]] = None, name: Optional[str] = None,
        native: bool = False) -> Model:
    """A model from one line: ``expression`` in Python/NumPy syntax over the data columns
    ``inputs`` and free parameters, or a function of them written with NumPy operations.

    Parameters are the names that are not inputs, in order of first appearance (for a
    function: its arguments that are not inputs, in order), unless ``params`` orders them.
    A name used twice is one parameter (tied).  Supported: ``+ - * / **`` (powers with
    parameter or input exponents; inputs under a logarithm or a non-integer power must be
    > 0, else that problem's data is non-finite), ``exp log log1p expm1 sqrt logaddexp
    logsumexp sigmoid softplus tanh sin cos arctan abs minimum maximum``, numbers and
    ``pi`` (``np.``, ``numpy.`` or ``math.`` prefixes allowed).

    Returns a :class:`lawfit.Model`, usable wherever a built-in's name is (``fit``,
    ``bootstrap``, ``grid``, ``curve_fit``); its gradients are exact (symbolic).  Errors
    (an unknown function, a free name that is neither input nor parameter, an unused
    parameter or input, a wrong arity) raise ValueError naming the name and its position.

    ``native=True``: also compile the law's generated struct with the host C++ compiler (once;
    cached on disk, see lawfit._native) and run that build in the SIMD lanes, as the
    built-ins run: the same results as the tape, a little faster (ValueError where no
    compiler or headers are found).
    """
    input_names = _names(inputs, "inputs")
    if not input_names:
        raise ValueError("inputs: a law needs at least one input")
    if callable(expression) and not isinstance(expression, str):
        try:
            sig = inspect.signature(expression)
        except (TypeError, ValueError):
            raise ValueError("expression: cannot read the function's arguments") from None
        args = [p.name for p in sig.parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        missing = [n for n in input_names if n not in args]
        if missing:
            raise ValueError(f"inputs: {', '.join(map(repr, missing))} is not an argument of "
                             f"the function {getattr(expression, '__name__', '')}")
        tree = _expr.trace(expression, args)
        text = getattr(expression, "__name__", "law")
        appearing = [n for n, _ in _expr.names_in(tree)]
        free = [(n, None) for n in args if n not in input_names]
        where = {n: "in the function's arguments" for n in args}
        unused_args = [n for n in args if n not in appearing]
    else:
        text = expression.strip() if isinstance(expression, str) else expression
        tree = _expr.parse(expression)
        free = [(n, at) for n, at in _expr.names_in(tree) if n not in input_names]
        where = {n: f"at column {at + 1} of {text!r}" for n, at in _expr.names_in(tree)}
        appearing = [n for n, _ in _expr.names_in(tree)]
        unused_args = []
    for n in input_names:
        if n not in appearing:
            raise ValueError(f"inputs: {n!r} does not appear in the law")
    free_names = [n for n, _ in free]
    if unused_args:
        raise ValueError(f"params: {', '.join(map(repr, unused_args))} does not appear in "
                         "the law")
    if params is None:
        param_names = free_names
    else:
        param_names = _names(params, "params")
        for n in param_names:
            if n in input_names:
                raise ValueError(f"params: {n!r} is also an input")
            if n not in free_names:
                raise ValueError(f"params: {n!r} does not appear in the law")
        for n in free_names:
            if n not in param_names:
                raise ValueError(f"expression: {n!r} {where[n]} is neither an input nor a "
                                 "parameter")
    if not param_names:
        raise ValueError("expression: the law has no parameters to fit")

    g = _expr.Graph()
    symbols = {n: g.input(i) for i, n in enumerate(input_names)}
    symbols.update({n: g.param(j) for j, n in enumerate(param_names)})
    f = _expr.build(g, tree, symbols)
    memo: dict = {}
    grads = [g.derivative(f, j, memo) for j in range(len(param_names))]
    lf = g.log_of(f)
    log_grads = [g.derivative(lf, j, memo) for j in range(len(param_names))]
    columns: dict = {}
    value_prog = _expr.tape([f] + grads, columns)
    log_prog = _expr.tape([lf] + log_grads, columns)
    ordered = tuple(sorted(columns, key=columns.get))
    source = _Source(len(param_names), [f] + grads, [lf] + log_grads, dict(columns))

    core = None
    if len(param_names) <= _expr.MAX_PARAMS:
        try:
            from . import _core
        except ImportError:  # pragma: no cover - only on a broken install
            _core = None
        if _core is not None:
            core = _core.Law(len(param_names), value_prog, log_prog)
    profile = _profile(g, f, grads, param_names, len(input_names))
    from .reference.laws import law_reference

    label = name if name is not None else text
    log_inputs = [i for kind, i in ordered if kind == "logx"]
    ref = law_reference(label, tree, param_names, input_names, text, log_inputs)
    model = Model(label, tuple(param_names), tuple(input_names), text, log_inputs=False,
                  has_native_log=True, profile=profile, core=core, ref=ref, columns=ordered,
                  source=source)
    if native:
        from . import _native

        _native.attach(model)
    return model


class _Source:
    """A law's C++/CUDA model struct (``models/common.h``'s shape), written on demand: the
    form the GPU compiles at run time, with the same operations and roundings as the tape."""

    def __init__(self, n_params, value, log, columns):
        self.n_params, self.value, self.log, self.columns = n_params, value, log, columns

    def struct(self, name: str = "UserLaw") -> str:
        return _expr.cxx_struct(name, self.n_params, self.value, self.log, dict(self.columns))

    def translation_unit(self, name: str = "UserLaw") -> str:
        """The struct with the headers and helpers it needs."""
        return ('#include "lawfit/models/common.h"\n\nLAWFIT_NAMESPACE_BEGIN\n'
                f"{_expr.CXX_HELPERS}\n{self.struct(name)}LAWFIT_NAMESPACE_END\n")


class _Params:
    """Parameter columns for evaluating a law's basis: the exponents from ``e``, zero for
    the coefficients (which the basis does not read)."""

    def __init__(self, e, where: dict):
        self.e, self.where = e, where

    def __getitem__(self, key):
        j = key[-1]
        return self.e[..., self.where[j]] if j in self.where else np.float64(0.0)


def _profile(g, f, grads, names, n_inputs) -> Optional[Profile]:
    """The law's split for variable projection (lawfit.grid(profile=True)), where it has
    one: f = sum_k c_k B_k(x; e), each coefficient c_k's basis B_k = df/dc_k reading none of
    the coefficients.  Found from the derivatives, and checked on random values."""
    n = len(names)
    linear = {j for j in range(n) if grads[j] is not None
              and not g.depends_on(grads[j], {j}, {})}
    while True:
        reads = [j for j in sorted(linear) if g.depends_on(grads[j], linear, {})]
        if not reads:
            break
        linear.discard(reads[0])
    if not linear or len(linear) == n:
        return None
    coefs = sorted(linear)
    exps = [j for j in range(n) if j not in linear]
    rng = np.random.default_rng(0)
    p = rng.uniform(0.5, 1.5, (16, n))
    x = rng.uniform(0.5, 2.0, (16, n_inputs))
    f_val, *b = _expr.evaluate([f] + [grads[j] for j in coefs], p, x)
    total = sum(p[:, j] * bj for j, bj in zip(coefs, b))
    if not (np.all(np.isfinite(f_val)) and np.allclose(total, f_val, rtol=1e-9, atol=1e-12)):
        return None
    where = {j: k for k, j in enumerate(exps)}
    basis_nodes = [grads[j] for j in coefs]

    def basis(xx, e):
        return _expr.evaluate(basis_nodes, _Params(e, where), xx)

    def assemble(c, e):
        out = {names[j]: c[..., k] for k, j in enumerate(coefs)}
        out.update({names[j]: e[..., k] for k, j in enumerate(exps)})
        return out

    return Profile(tuple(names[j] for j in coefs), tuple(names[j] for j in exps), basis,
                   assemble)
