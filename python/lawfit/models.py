"""The built-in models.

Each model is defined once, in C++ (``cpp/include/lawfit/models/``): its name, parameter and
input names, formula and whether it takes log inputs are read here from the compiled module
(``lawfit._core.models()``), and every compiled backend instantiates that definition; the
NumPy reference (``lawfit.reference``) re-implements it independently, on purpose.  This
module adds only what is Python's, as optional attributes of a model, never as checks on its
name: a data-driven first guess (used when ``p0`` is not given), a profile split into linear
coefficients and nonlinear exponents (``lawfit.grid(profile=True)``) and Chinchilla's
compute-optimal allocation (``BootstrapResult.compute_optimal``).

Adding a built-in model: its header in ``cpp/include/lawfit/models/``, its line in
``LAWFIT_FOR_EACH_MODEL`` (``models/all.h``), its NumPy twin in ``reference/models.py`` and
its test spec in ``tests/batches.py``; nothing here unless it has one of the extras.

A model is also a plain function ``model(x, *params)``, so it can be handed to
``scipy.optimize.curve_fit`` as it is.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import numpy as np

__all__ = ["Model", "Profile", "get", "available"]

# A guess takes the flat inputs x (M, k), targets y (M,) and offsets (P + 1,) of a packed
# batch and returns starting parameters (P, n_params).  It must depend on each problem's own
# points only (segment sums, never reductions over a padded batch, whose summation order
# would change with the batch), so that a problem's start is the same in any batch.
GuessFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Profile:
    """A model's split for variable projection: for fixed ``exponents`` the model is linear
    in ``coefficients``.  ``basis(x, e)``: the columns multiplying each coefficient, x (...,
    n_inputs) and e (..., n_exponents) broadcasting; ``assemble(c, e)``: the model's
    parameters by name from coefficients (natural units, >= 0) and exponents."""

    coefficients: tuple
    exponents: tuple
    basis: Callable = field(repr=False)
    assemble: Callable = field(repr=False)


@dataclass(frozen=True)
class Model:
    """A built-in model: ``f(x; params)`` with an analytic gradient in every backend.

    ``name``, ``param_names``, ``input_names``, ``formula``, ``log_inputs`` (the compiled
    model takes log x, x > 0) and ``has_native_log`` (a stable closed form of log f) come
    from the C++ definition.  Optional extras: ``guess_fn`` (a data-driven start for every
    problem of a packed batch, see ``GuessFn``), ``compiled_guess`` (the name of a compiled
    guess in ``_core`` that computes the same start faster), ``profile`` (a
    :class:`Profile`) and ``natural`` (p -> (A, B, alpha, beta) for Chinchilla's
    compute-optimal allocation)."""

    name: str
    param_names: tuple
    input_names: tuple
    formula: str
    log_inputs: bool = True
    has_native_log: bool = False
    guess_fn: Optional[GuessFn] = field(default=None, repr=False, compare=False)
    compiled_guess: Optional[str] = field(default=None, repr=False, compare=False)
    profile: Optional[Profile] = field(default=None, repr=False, compare=False)
    natural: Optional[Callable] = field(default=None, repr=False, compare=False)
    # A user's law (lawfit.law): ``core``, the compiled form the C++ core runs in place of a
    # built-in's name (a ``_core.Law``; None where the law has no compiled form); ``ref``,
    # its NumPy reference twin; ``columns``, the inputs the compiled form reads per point,
    # each ("x" | "logx", input index).
    core: Any = field(default=None, repr=False, compare=False)
    ref: Any = field(default=None, repr=False, compare=False)
    columns: Optional[tuple] = field(default=None, repr=False, compare=False)
    # A law's C++/CUDA model struct, written on demand (lawfit.law's _Source).
    source: Any = field(default=None, repr=False, compare=False)

    @property
    def is_law(self) -> bool:
        """Whether this is a user's law (lawfit.law) rather than a built-in."""
        return self.columns is not None

    @property
    def compiled(self):
        """What the compiled cores take for this model: a built-in's name, or a law's
        compiled form (ValueError where it has none)."""
        if not self.is_law:
            return self.name
        if self.core is None:
            from ._expr import MAX_PARAMS

            raise ValueError(f"model: the law '{self.name}' has no compiled form (it has "
                             f"{self.n_params} parameters; the compiled CPU path takes at "
                             f"most {MAX_PARAMS}); use backend='numpy'")
        return self.core

    @property
    def reference(self):
        """The model's NumPy reference twin (lawfit.reference)."""
        if self.ref is not None:
            return self.ref
        from .reference.models import MODELS

        return MODELS[self.name]

    def inputs_of(self, x, xp=np):
        """What the compiled model reads per point from raw inputs x (..., n_inputs): x, or
        log x for a model with ``log_inputs``; a law's columns (tape.h).  Where a logarithm
        is taken, x <= 0 becomes NaN: non-finite data for its problem."""
        with np.errstate(all="ignore"):
            if not self.is_law:
                return xp.log(x) if self.log_inputs else x
            from ._expr import MAX_COLUMNS

            out = xp.zeros(x.shape[:-1] + (MAX_COLUMNS,))
            for c, (kind, i) in enumerate(self.columns):
                if kind == "x":
                    out[..., c] = x[..., i]
                    continue
                out[..., c] = xp.log(x[..., i])
                bad = int((x[..., i] <= 0).sum())
                if bad:
                    warnings.warn(
                        f"x: input '{self.input_names[i]}' is <= 0 at {bad} point(s); the law "
                        f"'{self.name}' takes its logarithm or a non-integer power of it, so "
                        "their problems get status NONFINITE_DATA", RuntimeWarning,
                        stacklevel=2)
            return out

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    @property
    def has_guess(self) -> bool:
        return self.guess_fn is not None

    def __call__(self, x, *params):
        """Evaluate the model (NumPy), ``x`` of shape (m,) or (m, n_inputs)."""
        if len(params) != self.n_params:
            raise TypeError(
                f"{self.name}() takes {self.n_params} parameters "
                f"{self.param_names}, got {len(params)}"
            )
        x = np.asarray(x, dtype=float)
        xs = x.reshape(-1, self.n_inputs) if self.n_inputs > 1 or x.ndim > 1 else x[:, None]
        p = np.broadcast_to(np.asarray(params, dtype=float), (xs.shape[0], self.n_params))
        f, _ = self.reference.value_and_jac(p, xs)
        return f

    def guess_packed(self, packed, engine: str = "auto") -> np.ndarray:
        """The data-driven start of every problem of a packed batch: the compiled guess
        (lawfit/guess.h, on the CPU ``engine``) where the model has one, else :meth:`guess`."""
        if self.compiled_guess is not None:
            try:
                from . import _core
            except ImportError:  # pragma: no cover - only on a broken install
                _core = None
            if _core is not None:
                return getattr(_core, self.compiled_guess)(
                    packed.inputs[:, 0], packed.y, packed.offsets, SAT_COARSE, SAT_FACTORS,
                    engine=engine)
        return self.guess(packed.x, packed.y, packed.offsets)

    def guess(self, x: np.ndarray, y: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """A data-driven start for every problem of a packed batch (see ``GuessFn``)."""
        if self.guess_fn is None:
            raise ValueError(f"p0: model '{self.name}' has no data-driven guess; pass p0")
        with np.errstate(all="ignore"):
            return self.guess_fn(x, y, offsets)

    def __repr__(self) -> str:
        if self.is_law:
            return (f"<lawfit law {self.name!r}: {self.formula}; parameters "
                    f"{', '.join(self.param_names)}; inputs {', '.join(self.input_names)}>")
        return f"<lawfit model {self.name}: {self.formula}>"


def _segment_sum(v: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of v over each problem's points; each sum depends on that problem's values only."""
    n = np.diff(offsets)
    out = np.zeros(len(n))
    nonempty = n > 0
    if nonempty.any():
        # Problems are contiguous, so reducing from each non-empty problem's start to the next
        # one's (or to the end) covers exactly that problem's points.
        out[nonempty] = np.add.reduceat(v, offsets[:-1][nonempty])
    return out


class _Segments:
    """Per-problem means and centring over the usable points of a packed batch."""

    def __init__(self, ok: np.ndarray, offsets: np.ndarray):
        self.offsets = offsets
        self.w = ok.astype(float)
        self.count = np.maximum(_segment_sum(self.w, offsets), 1.0)
        self.rep = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))

    def mean(self, v):
        return _segment_sum(self.w * v, self.offsets) / self.count

    def centre(self, v):
        return np.where(self.w > 0, v - self.mean(v)[self.rep], 0.0)

    def sum(self, v):
        return _segment_sum(v, self.offsets)


def _guess_power_law(x, y, offsets):
    # log y = log A - alpha log x: a straight-line fit in log-log space per problem.
    ok = np.isfinite(y) & (y > 0) & np.isfinite(x[:, 0]) & (x[:, 0] > 0)
    seg = _Segments(ok, offsets)
    lx = seg.centre(np.log(np.where(ok, x[:, 0], 1.0)))
    ly = np.log(np.where(ok, y, 1.0))
    sxx = seg.sum(lx * lx)
    slope = np.where(sxx > 0, seg.sum(lx * ly) / np.where(sxx > 0, sxx, 1.0), -0.5)
    log_a = seg.mean(ly) - slope * seg.mean(np.log(np.where(ok, x[:, 0], 1.0)))
    return np.column_stack([np.exp(log_a), -slope])


# The saturating power law's guess scans these alphas, then the best one times these factors
# (lawfit/guess.h takes the same arrays).
SAT_COARSE = np.geomspace(0.02, 2.0, 16)
SAT_FACTORS = np.geomspace(SAT_COARSE[0] / SAT_COARSE[1], SAT_COARSE[1] / SAT_COARSE[0], 9)


def _guess_saturating_power_law(x, y, offsets):
    # Variable projection: for a given alpha, E and A solve a linear least-squares problem in
    # closed form.  Scan a coarse geometric grid of alpha, then a finer one around each
    # problem's best, and keep the alpha with the smallest residual.
    ok = np.isfinite(y) & np.isfinite(x[:, 0]) & (x[:, 0] > 0)
    seg = _Segments(ok, offsets)
    lx = np.log(np.where(ok, x[:, 0], 1.0))
    ymean = seg.mean(np.where(ok, y, 0.0))
    yc = seg.centre(np.where(ok, y, 0.0))
    syy = seg.sum(yc * yc)

    def profile(alpha):  # alpha (P,) -> E, A, residual sum of squares
        u = np.exp(-alpha[seg.rep] * lx)
        mu = seg.mean(u)
        uc = seg.centre(u)
        suu = seg.sum(uc * uc)
        suy = seg.sum(uc * yc)
        A = np.where(suu > 0, suy / np.where(suu > 0, suu, 1.0), 0.0)
        return ymean - A * mu, A, syy - A * suy

    P = len(offsets) - 1
    best = np.full(P, np.inf)
    out = np.zeros((P, 3))
    centre = np.full(P, SAT_COARSE[0])
    for a in SAT_COARSE:
        E, A, ss = profile(np.full(P, a))
        better = ss < best
        best[better], centre[better] = ss[better], a
        out[better] = np.column_stack([E, A, np.full(P, a)])[better]
    for f in SAT_FACTORS:
        alpha = centre * f
        E, A, ss = profile(alpha)
        better = ss < best
        best[better] = ss[better]
        out[better] = np.column_stack([E, A, alpha])[better]
    return out


def _powers(x, e):
    return x ** -e


def _log_pos(c):
    return np.log(np.maximum(c, np.finfo(float).tiny))


def _one(x, e):
    return np.ones_like(x[..., 0] * e[..., 0])


_CHINCHILLA_BASIS = (lambda x, e: [_one(x, e), _powers(x[..., 0], e[..., 0]),
                                   _powers(x[..., 1], e[..., 1])])

# What Python adds to a model, by name: each entry's keys are Model's optional fields.
_EXTRAS = {
    "power_law": dict(
        guess_fn=_guess_power_law,
        profile=Profile(("A",), ("alpha",),
                        lambda x, e: [_powers(x[..., 0], e[..., 0])],
                        lambda c, e: {"A": c[..., 0], "alpha": e[..., 0]})),
    "saturating_power_law": dict(
        guess_fn=_guess_saturating_power_law,
        compiled_guess="guess_saturating_power_law",
        profile=Profile(("E", "A"), ("alpha",),
                        lambda x, e: [_one(x, e), _powers(x[..., 0], e[..., 0])],
                        lambda c, e: {"E": c[..., 0], "A": c[..., 1], "alpha": e[..., 0]})),
    "chinchilla": dict(
        profile=Profile(("E", "A", "B"), ("alpha", "beta"), _CHINCHILLA_BASIS,
                        lambda c, e: {"E": c[..., 0], "A": c[..., 1], "B": c[..., 2],
                                      "alpha": e[..., 0], "beta": e[..., 1]}),
        natural=lambda p: (p[..., 1], p[..., 2], p[..., 3], p[..., 4])),
    # The replication's log parameterisation: a = log A, b = log B, e = log E (a zero
    # coefficient becomes log of the smallest normal number).
    "chinchilla_log": dict(
        profile=Profile(("E", "A", "B"), ("alpha", "beta"), _CHINCHILLA_BASIS,
                        lambda c, e: {"a": _log_pos(c[..., 1]), "b": _log_pos(c[..., 2]),
                                      "e": _log_pos(c[..., 0]), "alpha": e[..., 0],
                                      "beta": e[..., 1]}),
        natural=lambda p: (np.exp(p[..., 0]), np.exp(p[..., 1]), p[..., 3], p[..., 4])),
}


def _definitions() -> list:
    """Each built-in model's facts, from the compiled module (or, on a broken install
    without it, from the NumPy reference's twin, which has no input names of its own)."""
    try:
        from . import _core
    except ImportError:  # pragma: no cover - only on a broken install
        from .reference.models import MODELS

        return [dict(name=m.name, params=list(m.param_names),
                     inputs=[f"x{k}" for k in range(m.n_inputs)], formula=m.formula,
                     log_inputs=m.log_inputs, has_log=m.has_log) for m in MODELS.values()]
    return _core.models()


_BY_NAME = {d["name"]: Model(d["name"], tuple(d["params"]), tuple(d["inputs"]), d["formula"],
                             bool(d["log_inputs"]), bool(d["has_log"]),
                             **_EXTRAS.get(d["name"], {}))
            for d in _definitions()}
globals().update(_BY_NAME)  # lawfit.models.chinchilla, ...
__all__ += list(_BY_NAME)


def available() -> list:
    """Names of the built-in models."""
    return list(_BY_NAME)


def get(model: Union[str, Model]) -> Model:
    """The built-in model with this name (or the model itself)."""
    if isinstance(model, Model):
        return model
    if isinstance(model, str) and model in _BY_NAME:
        return _BY_NAME[model]
    raise ValueError(
        f"model: unknown model {model!r}; built-in models are {', '.join(_BY_NAME)} "
        "(Python callables are accepted by lawfit.curve_fit and lawfit.least_squares)"
    )
