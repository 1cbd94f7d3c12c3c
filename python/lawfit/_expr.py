"""A user's law as an expression graph: parsed (or traced) once, simplified, differentiated
symbolically, and written as the compiled core's instruction tape (``cpp/include/lawfit/
tape.h``).

Nodes are interned (hash-consed) in a :class:`Graph`, so a subexpression that occurs twice,
in the law or in its derivatives, is one node and one operation of the tape.  Inputs enter
the graph as columns: an input itself (``x``), or its logarithm (``logx``) where the law
takes a logarithm or a non-constant power of it, which the packer computes once per batch;
an input <= 0 under a logarithm then becomes non-finite data for its problem, as with the
built-ins.

This module knows nothing of the solver; ``lawfit.law`` (law.py) builds a model from it.
"""
from __future__ import annotations

import ast
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

# tape.h's operations, by name (the enum's order).
OPS = ("const", "param", "input", "add", "sub", "mul", "div", "neg", "exp", "log", "log1p",
       "expm1", "sqrt", "powi", "tanh", "sin", "cos", "atan", "abs", "sign", "min", "max",
       "step", "sigmoid", "softplus")
OPCODE = {name: k for k, name in enumerate(OPS)}
MAX_OPS = 256        # tape.h's kMaxTapeOps
MAX_COLUMNS = 6      # tape.h's kTapeColumns
MAX_PARAMS = 10      # tape.h's kMaxTapeParams: the compiled CPU path's largest law
# Integer exponents up to this size are written as products (exact, and defined for x < 0).
MAX_POWI = 64


class Node:
    """One operation of the graph: ``op`` with argument nodes ``args`` and an immediate
    ``value`` (a constant, a parameter's index, an input column, an integer exponent)."""

    __slots__ = ("op", "args", "value", "id")

    def __init__(self, op: str, args: tuple, value, id_: int):
        self.op, self.args, self.value, self.id = op, args, value, id_

    @property
    def is_const(self) -> bool:
        return self.op == "const"

    def __repr__(self) -> str:
        return f"Node({self.op}, {[a.id for a in self.args]}, {self.value!r})"


_UNARY_NUMPY = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1,
    "sqrt": np.sqrt, "tanh": np.tanh, "sin": np.sin, "cos": np.cos, "atan": np.arctan,
    "abs": np.abs, "sign": np.sign, "step": lambda a: (a > 0).astype(float),
    "sigmoid": lambda a: np.where(a >= 0, 1 / (1 + np.exp(-np.abs(a))),
                                  np.exp(-np.abs(a)) / (1 + np.exp(-np.abs(a)))),
    "softplus": lambda a: np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a))),
}
_BINARY_NUMPY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
                 "min": np.minimum, "max": np.maximum}


class Graph:
    """Interned nodes with the simplifications that keep derivatives small: constants fold,
    x + 0, x * 1, x * 0 (derivative terms only: ``zero`` is None there), and powers of
    inputs become exponentials of their log columns."""

    def __init__(self):
        self._nodes: Dict[tuple, Node] = {}

    def node(self, op: str, *args: Node, value=None) -> Node:
        key = (op, tuple(a.id for a in args), value)
        n = self._nodes.get(key)
        if n is None:
            n = self._nodes[key] = Node(op, args, value, len(self._nodes))
        return n

    # -- leaves
    def const(self, v) -> Node:
        v = float(v)
        return self.node("const", value=v if v != 0 else 0.0)  # -0.0 and 0.0 are one

    def param(self, j: int) -> Node:
        return self.node("param", value=j)

    def input(self, i: int) -> Node:
        return self.node("input", value=("x", i))

    def log_input(self, i: int) -> Node:
        return self.node("input", value=("logx", i))

    # -- operations, simplified
    def _fold(self, op, *args):
        with np.errstate(all="ignore"):
            if op == "powi":
                return self.const(float(np.float64(args[0].value) ** args[1]))
            vals = [np.float64(a.value) for a in args]
            fn = _UNARY_NUMPY.get(op) or _BINARY_NUMPY[op]
            return self.const(float(fn(*vals)))

    def add(self, a, b):
        if a is None:
            return b
        if b is None:
            return a
        if a.is_const and b.is_const:
            return self._fold("add", a, b)
        if a.is_const and a.value == 0:
            return b
        if b.is_const and b.value == 0:
            return a
        if b.op == "neg":
            return self.sub(a, b.args[0])
        return self.node("add", a, b)

    def sub(self, a, b):
        if b is None:
            return a
        if a is None:
            return self.neg(b)
        if a.is_const and b.is_const:
            return self._fold("sub", a, b)
        if b.is_const and b.value == 0:
            return a
        if a.is_const and a.value == 0:
            return self.neg(b)
        if b.op == "neg":
            return self.add(a, b.args[0])
        return self.node("sub", a, b)

    def neg(self, a):
        if a is None:
            return None
        if a.is_const:
            return self._fold("neg", a)
        if a.op == "neg":
            return a.args[0]
        return self.node("neg", a)

    def mul(self, a, b):
        if a is None or b is None:
            return None  # a zero derivative term
        if a.is_const and b.is_const:
            return self._fold("mul", a, b)
        if b.is_const:
            a, b = b, a
        if a.is_const:
            if a.value == 1:
                return b
            if a.value == -1:
                return self.neg(b)
        if a.op == "neg":
            return self.neg(self.mul(a.args[0], b))
        if b.op == "neg":
            return self.neg(self.mul(a, b.args[0]))
        return self.node("mul", a, b)

    def div(self, a, b):
        if a is None:
            return None
        if a.is_const and b.is_const:
            return self._fold("div", a, b)
        if b.is_const and b.value == 1:
            return a
        if a.op == "neg":
            return self.neg(self.div(a.args[0], b))
        return self.node("div", a, b)

    @staticmethod
    def _is_raw_input(a: Node) -> bool:
        return a.op == "input" and a.value[0] == "x"

    def unary(self, op, a):
        if a.is_const:
            return self._fold(op, a)
        if op == "sqrt" and self._is_raw_input(a):  # an input under a non-integer power
            return self.pow(a, self.const(0.5))
        if op == "log":
            if a.op == "exp":
                return a.args[0]
            if self._is_raw_input(a):
                return self.log_input(a.value[1])
        return self.node(op, a)

    def binary(self, op, a, b):
        if a.is_const and b.is_const:
            return self._fold(op, a, b)
        return self.node(op, a, b)

    def powi(self, a, n: int):
        if n == 0:
            return self.const(1.0)
        if n == 1:
            return a
        if a.is_const:
            return self._fold("powi", a, n)
        return self.node("powi", a, value=int(n))

    def pow(self, a, b):
        """a ** b: an integer constant exponent as a product, 1/2 as a square root (of an
        expression; of an input, its log column, so that x <= 0 is non-finite data as under
        any non-integer power), else exp(b log a) (a > 0)."""
        if b.is_const:
            v = b.value
            if float(v).is_integer() and abs(v) <= MAX_POWI:
                return self.powi(a, int(v))
            if v == 0.5 and not self._is_raw_input(a):
                return self.unary("sqrt", a)
        if a.is_const and b.is_const:
            with np.errstate(all="ignore"):
                return self.const(float(np.power(np.float64(a.value), np.float64(b.value))))
        return self.unary("exp", self.mul(b, self.unary("log", a)))

    def logaddexp(self, a, b):
        m = self.binary("max", a, b)
        return self.add(m, self.unary("log1p", self.unary("exp", self.neg(
            self.unary("abs", self.sub(a, b))))))

    def logsumexp(self, args):
        out = args[0]
        for a in args[1:]:
            out = self.logaddexp(out, a)
        return out

    # -- derivatives
    def derivative(self, f: Node, j: int, memo: dict) -> Optional[Node]:
        """df/dp_j (None where it is zero), sharing nodes through ``memo``."""
        key = (f.id, j)
        if key in memo:
            return memo[key]
        d = self._derivative(f, j, memo)
        memo[key] = d
        return d

    def _derivative(self, f, j, memo):
        op = f.op
        if op in ("const", "input", "sign", "step"):
            return None
        if op == "param":
            return self.const(1.0) if f.value == j else None
        a = f.args[0]
        da = self.derivative(a, j, memo)
        if len(f.args) == 2:
            b = f.args[1]
            db = self.derivative(b, j, memo)
            if op == "add":
                return self.add(da, db)
            if op == "sub":
                return self.sub(da, db)
            if op == "mul":
                return self.add(self.mul(da, b), self.mul(a, db))
            if op == "div":  # (da - f db) / b
                return self.div(self.sub(da, self.mul(f, db)), b)
            if op in ("min", "max"):  # the argument that is taken
                if da is None and db is None:
                    return None
                first = self.unary("step", self.sub(b, a) if op == "min" else self.sub(a, b))
                rest = self.sub(self.const(1.0), first)
                return self.add(self.mul(first, da), self.mul(rest, db))
            raise AssertionError(op)
        if da is None:
            return None
        if op == "neg":
            return self.neg(da)
        if op == "exp":
            return self.mul(f, da)
        if op == "log":
            return self.div(da, a)
        if op == "log1p":
            return self.div(da, self.add(self.const(1.0), a))
        if op == "expm1":
            return self.mul(self.unary("exp", a), da)
        if op == "sqrt":
            return self.div(self.mul(self.const(0.5), da), f)
        if op == "powi":
            n = f.value
            return self.mul(self.mul(self.const(n), self.powi(a, n - 1)), da)
        if op == "tanh":
            return self.mul(self.sub(self.const(1.0), self.mul(f, f)), da)
        if op == "sin":
            return self.mul(self.unary("cos", a), da)
        if op == "cos":
            return self.neg(self.mul(self.unary("sin", a), da))
        if op == "atan":
            return self.div(da, self.add(self.const(1.0), self.mul(a, a)))
        if op == "abs":
            return self.mul(self.unary("sign", a), da)
        if op == "sigmoid":
            return self.mul(self.mul(f, self.sub(self.const(1.0), f)), da)
        if op == "softplus":
            return self.mul(self.unary("sigmoid", a), da)
        raise AssertionError(op)

    # -- the log form
    def positive(self, f: Node) -> bool:
        """Whether f > 0 wherever it is defined, from its form alone."""
        if f.op == "const":
            return f.value > 0
        if f.op in ("exp", "sigmoid", "softplus"):
            return True
        if f.op in ("mul", "div", "add"):
            return self.positive(f.args[0]) and self.positive(f.args[1])
        if f.op == "powi":
            return self.positive(f.args[0])
        return False

    def log_of(self, f: Node) -> Node:
        """log f, in a form that is stable where the law allows (log of a product as a sum
        where a factor is positive, log of an exponential as its argument, ...), and equal
        to log f wherever f > 0."""
        if f.op == "exp":
            return f.args[0]
        if f.op == "input" and f.value[0] == "x":
            return self.log_input(f.value[1])
        if f.op in ("mul", "div"):
            a, b = f.args
            if self.positive(a) or self.positive(b):
                la, lb = self.log_of(a), self.log_of(b)
                return self.add(la, lb) if f.op == "mul" else self.sub(la, lb)
        if f.op == "powi" and (f.value % 2 or self.positive(f.args[0])):
            return self.mul(self.const(f.value), self.log_of(f.args[0]))
        if f.op == "sqrt":
            return self.mul(self.const(0.5), self.log_of(f.args[0]))
        if f.op == "sigmoid":
            return self.neg(self.unary("softplus", self.neg(f.args[0])))
        return self.unary("log", f)

    def depends_on(self, f: Node, ids: set, memo: dict) -> bool:
        """Whether f reads a parameter whose index is in ``ids``."""
        if f.id in memo:
            return memo[f.id]
        r = (f.op == "param" and f.value in ids) or any(self.depends_on(a, ids, memo)
                                                         for a in f.args)
        memo[f.id] = r
        return r


def tape(outputs: Sequence[Optional[Node]], columns: Dict[tuple, int]):
    """The program computing ``outputs`` (the value, then each derivative; None: zero):
    (code (n, 4) int32, consts (n,), out (len(outputs),) int32).  ``columns`` maps an input
    node's value (("x" | "logx", i)) to its column and grows as columns are first used."""
    order: List[Node] = []
    reg: Dict[int, int] = {}

    def visit(n: Node):
        stack = [(n, False)]
        while stack:
            node, done = stack.pop()
            if node.id in reg:
                continue
            if done:
                reg[node.id] = len(order)
                order.append(node)
                continue
            stack.append((node, True))
            for a in reversed(node.args):
                if a.id not in reg:
                    stack.append((a, False))

    # The leaves first (parameters, input columns, constants, each in a run): the core loads
    # them in three plain loops before it dispatches on the operations.
    leaves: Dict[int, Node] = {}

    def collect(n: Node, seen: set):
        stack = [n]
        while stack:
            node = stack.pop()
            if node.id in seen:
                continue
            seen.add(node.id)
            if node.op in ("param", "input", "const"):
                leaves[node.id] = node
            stack.extend(node.args)

    seen: set = set()
    for o in outputs:
        if o is not None:
            collect(o, seen)
    rank = {"param": 0, "input": 1, "const": 2}
    for n in sorted(leaves.values(), key=lambda n: (rank[n.op], str(n.value))):
        reg[n.id] = len(order)
        order.append(n)
    for o in outputs:
        if o is not None:
            visit(o)
    if not order:  # every output zero: one constant to name
        order.append(None)
    if len(order) > MAX_OPS:
        raise ValueError(f"expression: the law's compiled form needs {len(order)} operations; "
                         f"at most {MAX_OPS} are supported")
    code = np.zeros((len(order), 4), dtype=np.int32)
    consts = np.zeros(len(order))
    for k, n in enumerate(order):
        if n is None:
            continue
        code[k, 0] = OPCODE[n.op]
        for s, a in enumerate(n.args):
            code[k, 1 + s] = reg[a.id]
        if n.op == "const":
            consts[k] = n.value
        elif n.op == "param":
            code[k, 3] = n.value
        elif n.op == "input":
            if n.value not in columns:
                if len(columns) >= MAX_COLUMNS:
                    raise ValueError(f"inputs: the law reads more than {MAX_COLUMNS} input "
                                     "columns (each input, or its logarithm), more than the "
                                     "compiled form supports")
                columns[n.value] = len(columns)
            code[k, 3] = columns[n.value]
        elif n.op == "powi":
            code[k, 3] = n.value
    out = np.array([-1 if o is None else reg[o.id] for o in outputs], dtype=np.int32)
    if outputs[0] is None:
        out[0] = 0  # a value that is zero: the constant 0 at register 0
    return code, consts, out


def evaluate(nodes: Sequence[Optional[Node]], params: np.ndarray, x: np.ndarray):
    """The nodes' values (NumPy) at ``params`` (..., n) and raw inputs ``x`` (..., k),
    broadcasting; None for a zero node is 0."""
    vals: Dict[int, np.ndarray] = {}

    def value(n: Node):
        stack = [n]
        while stack:
            node = stack[-1]
            if node.id in vals:
                stack.pop()
                continue
            missing = [a for a in node.args if a.id not in vals]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            args = [vals[a.id] for a in node.args]
            op = node.op
            if op == "const":
                v = np.float64(node.value)
            elif op == "param":
                v = params[..., node.value]
            elif op == "input":
                kind, i = node.value
                v = x[..., i] if kind == "x" else np.log(x[..., i])
            elif op == "powi":
                v = _powi(args[0], node.value)
            elif op in _BINARY_NUMPY:
                v = _BINARY_NUMPY[op](*args)
            else:
                v = _UNARY_NUMPY[op](*args)
            vals[node.id] = v
        return vals[n.id]

    with np.errstate(all="ignore"):
        return [np.float64(0.0) if n is None else value(n) for n in nodes]


def _powi(a, n: int):
    """a**n by the tape's repeated squaring (the same roundings as tape.h)."""
    m = abs(n)
    r, base = np.ones_like(a), a
    while m:
        if m & 1:
            r = r * base
        m >>= 1
        if m:
            base = base * base
    return 1.0 / r if n < 0 else r


# ------------------------------------------------------------------------------------------
# From a string or a function to a tree of calls
# ------------------------------------------------------------------------------------------

# Functions a law may call, with their arity (None: one or more).
FUNCTIONS: Dict[str, Optional[int]] = {
    "exp": 1, "log": 1, "log1p": 1, "expm1": 1, "sqrt": 1, "tanh": 1, "sin": 1, "cos": 1,
    "arctan": 1, "atan": 1, "abs": 1, "absolute": 1, "fabs": 1, "sigmoid": 1, "expit": 1,
    "softplus": 1, "logaddexp": 2, "logsumexp": None, "minimum": 2, "maximum": 2,
    "min": 2, "max": 2, "power": 2, "pow": 2,
}
_ALIASES = {"atan": "arctan", "absolute": "abs", "fabs": "abs", "expit": "sigmoid",
            "min": "minimum", "max": "maximum", "pow": "power"}
CONSTANTS = {"pi": math.pi}
_MODULES = ("np", "numpy", "math")


class Tree:
    """A parsed law before it is typed: ("num", v), ("name", s), ("call", fn, [args]) or
    ("op", name, [args]), each with its column in the expression (``at``)."""

    __slots__ = ("kind", "value", "args", "at")

    def __init__(self, kind, value, args=(), at=0):
        self.kind, self.value, self.args, self.at = kind, value, list(args), at


def _where(expr: str, at: int) -> str:
    return f"at column {at + 1} of {expr!r}"


def parse(expr: str) -> Tree:
    """The tree of a law written in Python/NumPy syntax; a ValueError naming the position of
    anything else."""
    if not isinstance(expr, str) or not expr.strip():
        raise ValueError("expression: expected a non-empty string or a function")
    try:
        root = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError as exc:
        at = (exc.offset or 1) - 1
        raise ValueError(f"expression: invalid syntax {_where(expr.strip(), at)}") from None
    text = expr.strip()

    def walk(n) -> Tree:
        at = getattr(n, "col_offset", 0)
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) \
                and not isinstance(n.value, bool):
            return Tree("num", float(n.value), at=at)
        if isinstance(n, ast.Name):
            return Tree("name", n.id, at=at)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) \
                and n.value.id in _MODULES and n.attr in ("pi", "e"):
            return Tree("num", math.pi if n.attr == "pi" else math.e, at=at)
        if isinstance(n, ast.BinOp):
            ops = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div",
                   ast.Pow: "power"}
            op = ops.get(type(n.op))
            if op is None:
                raise ValueError(f"expression: operator {type(n.op).__name__} is not "
                                 f"supported {_where(text, at)}")
            return Tree("op", op, [walk(n.left), walk(n.right)], at=at)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            inner = walk(n.operand)
            return inner if isinstance(n.op, ast.UAdd) else Tree("op", "neg", [inner], at=at)
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                    and f.value.id in _MODULES:
                name = f.attr
            elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute) \
                    and f.value.attr == "special":  # scipy.special.expit, ...
                name = f.attr
            elif isinstance(f, ast.Name):
                name = f.id
            else:
                raise ValueError(f"expression: unsupported call {_where(text, at)}")
            if name not in FUNCTIONS:
                raise ValueError(f"expression: unknown function '{name}' {_where(text, at)}; "
                                 f"known: {', '.join(sorted(FUNCTIONS))}")
            if n.keywords:
                raise ValueError(f"expression: '{name}' takes no keyword arguments "
                                 f"{_where(text, at)}")
            args = [walk(a) for a in n.args]
            _check_arity(name, len(args), _where(text, at))
            return Tree("call", _ALIASES.get(name, name), args, at=at)
        raise ValueError(f"expression: {type(n).__name__} is not supported in a law "
                         f"{_where(text, at)}")

    return walk(root)


def _check_arity(name: str, n: int, where: str):
    want = FUNCTIONS[name]
    if (want is None and n < 1) or (want is not None and n != want):
        raise ValueError(f"expression: '{name}' takes "
                         f"{'one or more arguments' if want is None else want} "
                         f"argument{'s' if want != 1 else ''}, got {n} {where}")


def names_in(tree: Tree, out: Optional[List[Tuple[str, int]]] = None):
    """The free names of a tree in order of first appearance, with their columns."""
    out = [] if out is None else out
    if tree.kind == "name":
        if tree.value not in CONSTANTS and tree.value not in [n for n, _ in out]:
            out.append((tree.value, tree.at))
    for a in tree.args:
        names_in(a, out)
    return out


def build(g: Graph, tree: Tree, symbols: Dict[str, Node]) -> Node:
    """The graph node of a tree, its names resolved by ``symbols``."""
    if tree.kind == "num":
        return g.const(tree.value)
    if tree.kind == "name":
        if tree.value in CONSTANTS:
            return g.const(CONSTANTS[tree.value])
        return symbols[tree.value]
    args = [build(g, a, symbols) for a in tree.args]
    name = tree.value
    if name in ("add", "sub", "mul", "div"):
        return getattr(g, name)(*args)
    if name == "neg":
        return g.neg(args[0])
    if name == "power":
        return g.pow(*args)
    if name in ("minimum", "maximum"):
        return g.binary("min" if name == "minimum" else "max", *args)
    if name == "logaddexp":
        return g.logaddexp(*args)
    if name == "logsumexp":
        return g.logsumexp(args)
    if name == "arctan":
        return g.unary("atan", args[0])
    return g.unary(name, args[0])


# ------------------------------------------------------------------------------------------
# Tracing a function written with NumPy operations
# ------------------------------------------------------------------------------------------

_UFUNCS = {np.exp: "exp", np.log: "log", np.log1p: "log1p", np.expm1: "expm1",
           np.sqrt: "sqrt", np.tanh: "tanh", np.sin: "sin", np.cos: "cos",
           np.arctan: "arctan", np.absolute: "abs", np.fabs: "abs", np.negative: "neg",
           np.add: "add", np.subtract: "sub", np.multiply: "mul", np.true_divide: "div",
           np.power: "power", np.float_power: "power", np.logaddexp: "logaddexp",
           np.minimum: "minimum", np.maximum: "maximum", np.positive: "pos"}


class Symbol:
    """A symbolic argument for tracing a law's function: arithmetic and NumPy ufuncs on it
    build a Tree instead of computing."""

    __array_priority__ = 1000

    def __init__(self, tree: Tree):
        self.tree = tree

    @staticmethod
    def _tree(v) -> Tree:
        if isinstance(v, Symbol):
            return v.tree
        if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool):
            return Tree("num", float(v))
        if isinstance(v, np.ndarray) and v.ndim == 0:
            return Tree("num", float(v))
        raise TypeError(f"a law's function may combine its arguments with numbers only, "
                        f"not {type(v).__name__}")

    def _op(self, name, *others):
        return Symbol(Tree("op" if name in ("add", "sub", "mul", "div", "power", "neg")
                           else "call", name, [self._tree(v) for v in others]))

    def __add__(self, o): return self._op("add", self, o)
    def __radd__(self, o): return self._op("add", o, self)
    def __sub__(self, o): return self._op("sub", self, o)
    def __rsub__(self, o): return self._op("sub", o, self)
    def __mul__(self, o): return self._op("mul", self, o)
    def __rmul__(self, o): return self._op("mul", o, self)
    def __truediv__(self, o): return self._op("div", self, o)
    def __rtruediv__(self, o): return self._op("div", o, self)
    def __pow__(self, o): return self._op("power", self, o)
    def __rpow__(self, o): return self._op("power", o, self)
    def __neg__(self): return self._op("neg", self)
    def __pos__(self): return self
    def __abs__(self): return self._op("abs", self)

    def __bool__(self):
        raise TypeError("a law's function cannot branch on its arguments (use np.minimum, "
                        "np.maximum or np.abs)")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = _UFUNCS.get(ufunc)
        if method != "__call__" or name is None or kwargs:
            raise TypeError(f"np.{ufunc.__name__} is not supported in a law")
        if name == "pos":
            return inputs[0]
        return Symbol(Tree("op" if name in ("add", "sub", "mul", "div", "power", "neg")
                           else "call", name, [self._tree(v) for v in inputs]))


def trace(fn: Callable, names: Sequence[str]) -> Tree:
    """The tree of ``fn(*names)`` called once with symbolic arguments."""
    try:
        out = fn(*[Symbol(Tree("name", n)) for n in names])
    except TypeError as exc:
        raise ValueError(f"expression: the function cannot be traced: {exc}") from None
    if not isinstance(out, Symbol):
        raise ValueError("expression: the function returned "
                         f"{type(out).__name__}, not an expression of its arguments")
    return out.tree


# ------------------------------------------------------------------------------------------
# The law as a C++/CUDA model struct (the GPU's form, compiled at run time)
# ------------------------------------------------------------------------------------------

def _cxx_const(v: float) -> str:
    if np.isnan(v):
        return "T(NAN)"
    if np.isinf(v):
        return "T(INFINITY)" if v > 0 else "T(-INFINITY)"
    return f"T({float(v)!r})"


_CXX_UNARY = {"neg": "-{a}", "exp": "exp({a})", "log": "log({a})", "log1p": "log1p({a})",
              "expm1": "law_expm1({a})", "sqrt": "sqrt({a})", "tanh": "law_tanh({a})",
              "sin": "law_sin({a})", "cos": "law_cos({a})", "atan": "law_atan({a})",
              "abs": "abs({a})",
              "sign": "select({a} > T(0), T(1), select({a} < T(0), T(-1), {a} * T(0)))",
              "step": "select({a} > T(0), T(1), T(0))", "sigmoid": "sigmoid({a})",
              "softplus": "softplus({a})"}
_CXX_BINARY = {"add": "{a} + {b}", "sub": "{a} - {b}", "mul": "{a} * {b}", "div": "{a} / {b}",
               "min": "select({b} < {a}, {b}, {a})", "max": "select({b} > {a}, {b}, {a})"}


def cxx_function(outputs: Sequence[Optional[Node]], columns: Dict[tuple, int],
                 name: str) -> str:
    """A host-device function ``T name(const T* p, const T* x, T* grad)`` computing the
    value outputs[0] and writing outputs[1:] into grad: the same operations, in the same
    order and with the same roundings, as the tape of these outputs (tape.h): on the CPU
    the same bits."""
    code, consts, out = tape(outputs, columns)
    lines = []
    for k, (op_code, a, b, c) in enumerate(code):
        op = OPS[op_code]
        va, vb = f"r{a}", f"r{b}"
        if op == "const":
            e = _cxx_const(consts[k])
        elif op == "param":
            e = f"p[{c}]"
        elif op == "input":
            e = f"x[{c}]"
        elif op == "powi":
            e = f"pow_int({va}, {int(c)})"
        elif op in _CXX_BINARY:
            e = _CXX_BINARY[op].format(a=va, b=vb)
        else:
            e = _CXX_UNARY[op].format(a=va)
        lines.append(f"    const T r{k} = {e};")
    n = len(out) - 1
    for j in range(n):
        lines.append(f"    grad[{j}] = {'T(0)' if out[1 + j] < 0 else f'r{out[1 + j]}'};")
    lines.append(f"    return r{out[0]};")
    body = "\n".join(lines)
    return (f"  template <class T>\n  LAWFIT_HD static T {name}(const T* p, const T* x, T* grad) {{\n"
            f"{body}\n  }}\n")


CXX_HELPERS = """\
// The C library's functions (device overloads under nvcc), as the tape calls them.
template <class T> LAWFIT_HD inline T law_expm1(T a) { return ::expm1(a); }
template <class T> LAWFIT_HD inline T law_tanh(T a) { return ::tanh(a); }
template <class T> LAWFIT_HD inline T law_sin(T a) { return ::sin(a); }
template <class T> LAWFIT_HD inline T law_cos(T a) { return ::cos(a); }
template <class T> LAWFIT_HD inline T law_atan(T a) { return ::atan(a); }
"""


def cxx_struct(struct: str, n_params: int, value_outputs, log_outputs,
               columns: Dict[tuple, int]) -> str:
    """A model struct (models/common.h's shape) for a law: value and log form."""
    value = cxx_function(value_outputs, columns, "eval")
    log = cxx_function(log_outputs, columns, "eval_log")
    return (f"struct {struct} {{\n"
            f"  static constexpr int kParams = {n_params}, kInputs = {MAX_COLUMNS};\n"
            f"  static constexpr bool kHasLog = true;\n"
            f"  static constexpr const char* kName = \"{struct}\";\n"
            f"{value}{log}}};\n")
