"""The backends that solve a packed batch, and which of them this installation has.

One contract, three backends: ``Cpu`` (the compiled C++ driver, ``lawfit._core``: threads,
GIL released, SIMD lanes; its ``engine`` a parameter), ``Cuda`` (the compiled CUDA
kernels, ``lawfit._cuda``, built where ``nvcc`` was found, usable where a GPU is present) and
``Numpy`` (the independent NumPy reference, ``lawfit.reference``).  Each takes the same packed
batch (``lawfit._packing.Packed``), the same :class:`~lawfit._options.Options` and the same
description of its solve units (:class:`Units`), owns its layout choices (the CPU reads a
shared grid and shared bounds once; the reference expands every unit into a copy of its
points) and returns the same dictionary of arrays.

``get(backend, n_units)`` turns a ``backend=`` argument (a name, or a Backend object such as
``Cpu(engine="scalar")``) into a Backend.
"""
from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from ._options import Options
from ._packing import Packed, shared_row

BACKENDS = ("auto", "cpu", "cuda", "numpy")

# ``auto`` sends a call to the GPU from this many solve units (problems x starts x resamples)
# on: below it, a launch and the copies cost more than the CPU's threads take for the batch
# (bench/RESULTS.md: on an H100 the end-to-end GPU rate already leads 16 CPU threads at
# 10,000 fits, and the first call also pays for creating the CUDA context).
AUTO_CUDA_MIN_UNITS = 100_000

RESAMPLE_MODES = {"pairs": 0, "grouped": 1, "jackknife": 2, "grouped_jackknife": 3,
                  "residual": 4}


_CORE: list = []  # (module or None, why not), once loaded


def _load_core():
    if not _CORE:
        try:
            from . import _core
        except ImportError as exc:  # pragma: no cover - only on a broken install
            _CORE[:] = [None, str(exc)]
        else:
            _CORE[:] = [_core, None]
    return _CORE[0], _CORE[1]


def _load_cuda():
    try:
        from . import _cuda
    except ImportError as exc:
        return None, f"lawfit._cuda is not built or cannot load ({exc})"
    try:
        n = _cuda.device_count()
    except Exception as exc:  # pragma: no cover - driver trouble
        return None, f"the CUDA driver failed: {exc}"
    if n == 0:
        return None, "lawfit._cuda is built, but no CUDA device is visible"
    return _cuda, None


def backends() -> dict:
    """Each backend's availability: ``{name: (available, reason if not)}``."""
    core, why_core = _load_core()
    cuda, why_cuda = _load_cuda()
    return {
        "cpu": (core is not None, why_core or ""),
        "cuda": (cuda is not None, why_cuda or ""),
        "numpy": (True, ""),
    }


def resolve(backend: str, n_units: Optional[int] = None, model=None) -> str:
    """The concrete backend's name for ``backend``.  ``auto``: ``cuda`` where it is available
    and the call solves at least AUTO_CUDA_MIN_UNITS units (``n_units``), and, for a user's
    law (``model``), NVRTC is found to compile it; else ``cpu`` (else, on a broken install,
    ``numpy``)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS} or a backend object, got "
                         f"{backend!r}")
    if backend == "numpy":
        return backend
    if backend == "auto":
        if n_units is not None and n_units >= AUTO_CUDA_MIN_UNITS and \
                _load_cuda()[0] is not None and (model is None or not model.is_law
                                                 or _nvrtc_found()):
            return "cuda"
        return "cpu" if _load_core()[0] is not None else "numpy"
    module, why = _load_core() if backend == "cpu" else _load_cuda()
    if module is None:
        raise ValueError(f"backend: {backend!r} is not available: {why}")
    return backend


def _nvrtc_found() -> bool:
    from . import _nvrtc

    return _nvrtc.library()[0] is not None


def get(backend: Union[str, "Backend"], n_units: Optional[int] = None,
        model=None) -> "Backend":
    """The Backend a ``backend=`` argument names: a Backend object as it is, a name resolved
    (``auto`` on the call's ``n_units`` and ``model``)."""
    if type(backend) is not str:  # (a name, the usual case, skips the ABC's isinstance)
        if isinstance(backend, Backend):
            return backend
        if not isinstance(backend, str):
            raise ValueError(f"backend: expected one of {BACKENDS} or a backend object, got "
                             f"{backend!r}")
    name = resolve(backend, n_units, model)
    made = _MADE.get(name)  # a backend by name holds nothing but its defaults: made once
    if made is None:
        made = _MADE[name] = {"cpu": Cpu, "cuda": Cuda, "numpy": Numpy}[name]()
    return made


_MADE: dict = {}  # backend name -> the Backend get() gives for it


def name_of(backend) -> str:
    """The name a ``backend=`` argument stands for without resolving ``auto``."""
    return backend.name if isinstance(backend, Backend) else backend


def local_groups(packed: Packed):
    """Each point's cluster as an index within its problem (0, 1, ... in label order) and
    each problem's number of clusters: group_of (M,) int32, n_groups (P,) int32."""
    c = packed.clusters
    P = packed.n_problems
    owner = np.repeat(np.arange(P), packed.n_points)
    order = np.lexsort((c, owner))
    so, sc = owner[order], c[order]
    new = np.ones(len(c), dtype=bool)
    new[1:] = (so[1:] != so[:-1]) | (sc[1:] != sc[:-1])
    gid = np.cumsum(new) - 1  # a global id per (problem, cluster), in sorted order
    n_groups = np.bincount(so[new], minlength=P).astype(np.int32)
    first = np.concatenate([[0], np.cumsum(n_groups)[:-1]])
    group_of = np.empty(len(c), dtype=np.int32)
    group_of[order] = gid - first[so]
    return group_of, n_groups


@dataclass(frozen=True)
class Resampling:
    """How resample units draw their data: Philox weights keyed by ``seed`` (rng.h) in one of
    RESAMPLE_MODES; the residual bootstrap also takes each point's fitted target ``fit_t``
    and standardised residual ``fit_r`` at the full-data optimum.  ``keys``: each packed
    problem's term in its streams (int64, (P,)), None for the problem's index (batch.h,
    Batch::problem_key)."""

    seed: int = 0
    mode: str = "pairs"
    fit_t: Optional[np.ndarray] = None
    fit_r: Optional[np.ndarray] = None
    keys: Optional[np.ndarray] = None

    def key_of(self, problems: np.ndarray) -> np.ndarray:
        """The stream keys of these packed problems."""
        return problems if self.keys is None else self.keys[problems]

    def __post_init__(self):
        if self.mode not in RESAMPLE_MODES:
            raise ValueError(f"resample mode: expected one of {tuple(RESAMPLE_MODES)}, got "
                             f"{self.mode!r}")


@dataclass(frozen=True)
class Units:
    """The solve units of a call: unit i fits problem ``data_of[i]``'s points, weighted by
    resample ``resample_of[i]`` of ``resampling`` where given.  ``rows`` says where a unit's
    start and box are, always explicitly (never guessed from the arrays' lengths: a batch of
    as many units as problems would read a neighbour's row): ``"unit"``, p0[i] within
    lower[i], upper[i] (a grid's starts, a continued fit); ``"problem"``,
    p0[data_of[i]] within lower[data_of[i]], upper[data_of[i]] (every resample of a problem
    from its fit).  An objective needs no start: ``rows`` None."""

    data_of: np.ndarray
    rows: Optional[str] = None
    p0: Optional[np.ndarray] = None
    lower: Optional[np.ndarray] = None
    upper: Optional[np.ndarray] = None
    resample_of: Optional[np.ndarray] = None
    resampling: Optional[Resampling] = None

    def __len__(self) -> int:
        return len(self.data_of)

    def box(self, packed: Packed):
        """(p0, lower, upper), each checked to hold one row per unit or per problem."""
        expect = {"unit": len(self.data_of), "problem": packed.n_problems}
        if self.rows not in expect:
            raise ValueError(f"rows: expected 'unit' or 'problem', got {self.rows!r}")
        for name, a in (("p0", self.p0), ("lower", self.lower), ("upper", self.upper)):
            if np.shape(a)[0] != expect[self.rows]:
                raise ValueError(f"{name}: expected {expect[self.rows]} rows (one per "
                                 f"{self.rows}), got {np.shape(a)[0]}")
        return self.p0, self.lower, self.upper

    def compiled_args(self, packed: Packed) -> dict:
        """The compiled cores' ``units`` argument: data_of and the resampling."""
        args = dict(data_of=np.asarray(self.data_of, dtype=np.int64))
        rs = self.resampling
        if self.resample_of is None or rs is None:
            return args
        args.update(resample_of=np.asarray(self.resample_of, dtype=np.uint32),
                    seed=int(rs.seed), resample_mode=RESAMPLE_MODES[rs.mode])
        if rs.keys is not None:
            args["problem_key"] = rs.keys
        if rs.mode.startswith("grouped"):
            group_of, n_groups = local_groups(packed)
            # The core takes an empty problem as one empty group (its units then report
            # TOO_FEW_POINTS), never as none: an empty neighbour must not fail the call.
            args["group_of"], args["n_groups"] = group_of, np.maximum(n_groups, 1)
        if rs.mode == "residual":
            args["fit_t"], args["fit_r"] = rs.fit_t, rs.fit_r
        return args


def _upcast(out: dict) -> dict:
    """An fp32 solve's float arrays as float64 (what every caller works in)."""
    return {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in out.items()}


class Backend(ABC):
    """The contract every backend keeps.

    ``solve(packed, options, units=None)``: Levenberg-Marquardt from every start; without
    ``units`` one unit per problem, from the packed batch's p0 within its bounds.  Returns
    x, cost, optimality, status, nfev, njev, nit, active_mask (and jtj with
    ``return_jtj``), one row per unit, float64.
    ``objective(packed, options, params, units)``: the cost at params[i] of unit i; +inf
    where it is not finite.
    ``grid_objective(packed, options, starts, units)``: unit i's cost at every start of its
    problem, starts[data_of[i]] (starts: (P, S, n)), as (U, S): what ``objective`` gives at
    each (unit, start); a backend may share the work that a problem's units have in common.
    ``engine``: the CPU engine the batch's data-driven start is computed with.
    """

    name = "?"
    engine = "auto"

    def solve(self, packed: Packed, options: Options, units: Optional[Units] = None, *,
              n_threads: Optional[int] = None, return_jtj: bool = False) -> dict:
        if units is None:
            box = packed.p0, packed.lower, packed.upper
        else:
            box = units.box(packed)
        out = self._solve(packed, options, units, box, n_threads, return_jtj)
        return _upcast(out) if options.fp32 else out

    def objective(self, packed: Packed, options: Options, params, units: Units, *,
                  n_threads: Optional[int] = None) -> np.ndarray:
        params = np.ascontiguousarray(params, dtype=np.float64)
        return self._objective(packed, options, params, units, n_threads)

    def grid_objective(self, packed: Packed, options: Options, starts: np.ndarray,
                       units: Units, *, n_threads: Optional[int] = None) -> np.ndarray:
        U, (S, n) = len(units), starts.shape[1:]

        def per_start(v):
            return None if v is None else np.repeat(v, S)

        every = Units(per_start(units.data_of), resample_of=per_start(units.resample_of),
                      resampling=units.resampling)
        return self.objective(packed, options, starts[units.data_of].reshape(U * S, n), every,
                              n_threads=n_threads).reshape(U, S)

    def prepare(self, n_threads: Optional[int], n_units: int, points: int) -> None:
        """Called before a call is validated and packed (nothing by default)."""

    @abstractmethod
    def _solve(self, packed, options, units, box, n_threads, return_jtj) -> dict:
        """solve() on a box already checked: (p0, lower, upper)."""

    @abstractmethod
    def _objective(self, packed, options, params, units, n_threads) -> np.ndarray:
        """objective() on float64 params."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Compiled(Backend):
    """The compiled backends (C++ and CUDA): they take the model's inputs (log x where the
    model wants it) and run every unit from its problem's points in place.  Their binding
    takes the call as a few structured arguments: ``data`` (the packed points), ``box``
    (starts and bounds), the options object and ``units`` (cpp/src/bindings.h, HostCall)."""

    # Whether the core reads a shared grid's inputs once (x_shared) and bounds given once
    # for all as one row (bounds_shared), rather than per point and per unit.
    reads_shared_grid = False
    reads_shared_bounds = False

    @abstractmethod
    def _module(self):
        """The compiled module (ValueError saying why where it is not available)."""

    def _data(self, packed: Packed, shared_grid: bool = False) -> dict:
        data = dict(t=packed.target, sigma=packed.sigma, weights=packed.weights,
                    offsets=packed.offsets, log_residuals=packed.log_residuals)
        if shared_grid and packed.inputs_grid is not None:
            # The grid once, not a copy per problem (packed.inputs would expand it).
            return dict(data, x=packed.inputs_grid, x_shared=True)
        return dict(data, x=packed.inputs)

    def _box(self, p0, lower, upper) -> dict:
        if self.reads_shared_bounds:  # bounds given once for all: their one row
            lo, up = shared_row(lower), shared_row(upper)
            if lo is not None and up is not None:
                return dict(p0=p0, lower=lo, upper=up, bounds_shared=True)
        return dict(p0=p0, lower=lower, upper=upper)

    def _function(self, module, name: str, packed: Packed, options):
        """The module's function `name` ("fit" or "objective") for this call's model and
        precision: called with the model's argument (``_model``) first."""
        return getattr(module, name + ("32" if options.fp32 else ""))

    def _solve(self, packed, options, units, box, n_threads, return_jtj):
        module = self._module()
        fn = self._function(module, "fit", packed, options)
        box = self._box(*box)
        if units is not None:
            box["per_problem"] = units.rows == "problem"
        return fn(self._model(packed.model), self._data(packed, self.reads_shared_grid), box,
                  options,
                  None if units is None else units.compiled_args(packed),
                  n_threads=int(n_threads or 0), return_jtj=return_jtj,
                  engine=self._engine(options))

    def _objective(self, packed, options, params, units, n_threads):
        module = self._module()
        fn = self._function(module, "objective", packed, options)
        # The objective reads the inputs per point (its units index any problem's rows).
        cost = fn(self._model(packed.model), self._data(packed), params, options,
                  units.compiled_args(packed),
                  n_threads=int(n_threads or 0), engine=self._engine(options))
        return cost.astype(np.float64, copy=False)

    def _engine(self, options) -> str:
        return "auto"

    def _model(self, model):
        """What this backend's module takes for ``model``."""
        return model.compiled


class Cpu(_Compiled):
    """The compiled C++ driver.  ``engine``: "auto" (the best SIMD build this CPU runs; see
    ``lawfit._core.engines()`` and ``auto_engine()``), "scalar", or a build's name.  Every
    engine gives bitwise the same results."""

    name = "cpu"
    reads_shared_grid = reads_shared_bounds = True

    def __init__(self, engine: str = "auto"):
        if not isinstance(engine, str):
            raise ValueError(f"engine: expected a name, got {engine!r}")
        self.engine = engine

    def __repr__(self) -> str:
        return f"Cpu(engine={self.engine!r})"

    def _module(self):
        module, why = _CORE if _CORE else _load_core()
        if module is None:  # pragma: no cover - only on a broken install
            raise ValueError(f"backend: 'cpu' is not available: {why}")
        return module

    def prepare(self, n_threads, n_units, points):
        """Wake the CPU driver's pooled helper threads that the call will use, so that their
        wake-up (0.1 ms or more on a virtual machine) overlaps the packing rather than
        delaying the solve."""
        self._module().rouse_helpers(int(n_threads or 0), int(n_units), int(points))

    def fit_grid(self, model, u, target, p0, lower, upper, options, n_threads, cov=None):
        """The small-call route's solve (``_plan.solve_small``): problems on one grid of
        inputs ``u``, targets ``target`` (P, m), starts ``p0`` (P, n) or (n,), bounds
        None or (n,): the core validates and solves them in one call, or returns None where
        the call is not that clean case (then packed and checked the general way).  ``cov``
        (absolute_sigma, singular) asks for the covariances too (the dict's "cov")."""
        module = self._module()
        args = (model.compiled, u, target, p0, lower, upper, options, options.log_residuals,
                int(n_threads or 0), self._engine(options))
        if cov is None:
            return module.fit_grid(*args)
        return module.fit_grid(*args, True, bool(cov[0]), cov[1] == "inf")

    def grid_objective(self, packed, options, starts, units, *, n_threads=None):
        if self._shares_grid_work(options, units):
            return self._grid_objective(packed, options, starts, units, n_threads)
        return super().grid_objective(packed, options, starts, units, n_threads=n_threads)

    def _shares_grid_work(self, options, units) -> bool:
        # The core's grid objective where a problem's resamples share the starts' point
        # values: fp64, resampled by weights (the residual bootstrap's targets differ per
        # resample).  One unit per problem (a fit's grid) shares nothing: the objective runs
        # in the SIMD lanes.  Both give the same bits.
        rs = units.resampling
        return (not options.fp32 and units.resample_of is not None and rs is not None and
                rs.mode != "residual")

    def _grid_objective(self, packed, options, starts, units, n_threads):
        return self._module().grid_objective(
            self._model(packed.model), self._data(packed),
            np.ascontiguousarray(starts, dtype=np.float64), options,
            units.compiled_args(packed), n_threads=int(n_threads or 0),
            engine=self._engine(options))

    def _engine(self, options):
        # fp32 runs the scalar solve only (its SIMD engines are fp64); fp64's objective runs
        # in the SIMD lanes, bitwise any engine's.
        if options.fp32:
            return "scalar" if self.engine == "scalar" else "auto"
        return self.engine


class Cuda(_Compiled):
    """The compiled CUDA kernels."""

    name = "cuda"

    def _module(self):
        module, why = _load_cuda()
        if module is None:
            raise ValueError(f"backend: 'cuda' is not available: {why}")
        return module

    def _model(self, model):
        return model.compiled if model.is_law else model.name

    def _function(self, module, name, packed, options):
        if not packed.model.is_law:
            return super()._function(module, name, packed, options)
        # A user's law: its kernels, compiled by NVRTC for this device and for the call's
        # precision, loss and residual space (cached on disk), are the first argument.
        from . import _nvrtc

        if _nvrtc.library()[0] is None:
            raise ValueError(f"backend: 'cuda' compiles the law '{packed.model.name}' with "
                             f"NVRTC: {_nvrtc.library()[1]}")
        image = _nvrtc.cubin(packed.model, module.device_arch(), options.fp32, options.loss,
                             packed.log_residuals)
        return functools.partial(
            getattr(module, f"{name}_law" + ("32" if options.fp32 else "")), image)


class Numpy(Backend):
    """The independent NumPy reference (fp64 only): every unit a copy of its problem's
    points, weighted by the reference's own bootstrap draws."""

    name = "numpy"

    def _solve(self, packed, options, units, box, n_threads, return_jtj):
        from .reference import fit_packed

        p0, lower, upper = box
        if units is None:
            data = (packed.x, packed.target, packed.sigma, packed.weights, packed.offsets)
        else:
            if units.rows == "problem":
                p0, lower, upper = (a[units.data_of] for a in (p0, lower, upper))
            data = _expand_units(packed, units)
        return fit_packed(packed.model.reference, *data, p0, lower, upper,
                          log_residuals=packed.log_residuals, **options.solver_args(),
                          n_threads=int(n_threads or 0), return_jtj=return_jtj)

    def _objective(self, packed, options, params, units, n_threads):
        from .reference import objective_packed

        x, t, sigma, w, offsets = _expand_units(packed, units)
        return objective_packed(packed.model.reference, x, t, sigma, w, offsets, params,
                                log_residuals=packed.log_residuals, loss=options.loss,
                                f_scale=options.f_scale)


def _expand_units(packed: Packed, units: Units):
    """The raw inputs, targets, sigma, weights and offsets of a batch in which unit i holds a
    copy of problem data_of[i]'s points (with resample_of, weighted by the bootstrap counts
    of lawfit.reference.rng): how the NumPy reference runs units."""
    data_of = np.asarray(units.data_of, dtype=np.int64)
    rs = units.resampling if units.resample_of is not None else None
    off = packed.offsets
    counts = np.diff(off)[data_of]
    offsets = np.zeros(len(data_of) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    rows = np.repeat(off[data_of] - offsets[:-1], counts) + np.arange(offsets[-1])
    pick = (lambda a: None if a is None else a[rows])
    w = pick(packed.weights)
    t = packed.target[rows]
    if rs is not None and rs.mode == "residual":  # the residual bootstrap: new targets
        from .reference.rng import bootstrap_indices

        resample_of = np.asarray(units.resample_of, dtype=np.int64)
        sig = np.ones(len(rows)) if packed.sigma is None else packed.sigma[rows]
        for n in np.unique(counts):
            us = np.flatnonzero(counts == n)
            idx = bootstrap_indices(rs.seed, rs.key_of(data_of[us]), resample_of[us], int(n))
            src = off[data_of[us]][:, None] + idx  # the drawn point, in the packed arrays
            at = (offsets[us][:, None] + np.arange(n)[None, :])
            t[at.reshape(-1)] = rs.fit_t[rows[at].reshape(-1)] + sig[at.reshape(-1)] * \
                rs.fit_r[src.reshape(-1)]
    elif rs is not None:
        from .reference.rng import bootstrap_counts

        mode = RESAMPLE_MODES[rs.mode]
        resample_of = np.asarray(units.resample_of, dtype=np.int64)
        unit = np.repeat(np.arange(len(data_of)), counts)  # each expanded point's unit
        if mode in (1, 3):
            group_of, n_groups = local_groups(packed)
            g = group_of[rows]
        if mode == 0:
            draws = np.empty(len(rows))
            for n in np.unique(counts):  # units of one size at a time
                us = np.flatnonzero(counts == n)
                c = bootstrap_counts(rs.seed, rs.key_of(data_of[us]), resample_of[us], int(n))
                at = (offsets[us][:, None] + np.arange(n)[None, :]).reshape(-1)
                draws[at] = c.reshape(-1)
        elif mode == 1:
            G = n_groups[data_of]
            draws = np.empty(len(rows))
            for n in np.unique(G):
                us = np.flatnonzero(G == n)
                c = bootstrap_counts(rs.seed, rs.key_of(data_of[us]), resample_of[us], int(n))
                at = np.flatnonzero(np.isin(unit, us))
                row_of_unit = np.searchsorted(us, unit[at])
                draws[at] = c[row_of_unit, g[at]]
        elif mode == 2:
            draws = (np.arange(len(rows)) - offsets[unit] != resample_of[unit]).astype(float)
        else:
            draws = (g != resample_of[unit]).astype(float)
        w = draws if w is None else w * draws
    return packed.x[rows], t, pick(packed.sigma), w, offsets


def evaluate(model, p: np.ndarray, x: np.ndarray, log_value: bool = False):
    """The compiled model's value (or native log value) and gradient at each row of
    ``p`` (M, n) and raw inputs ``x`` (M, n_inputs): the code the solver runs."""
    core = _load_core()[0]
    if model.is_law:  # the law reads its columns; a built-in takes x (log x inside)
        x = model.inputs_of(np.asarray(x, dtype=np.float64))
    return core.evaluate_model(model.compiled, np.ascontiguousarray(p, dtype=np.float64),
                               np.ascontiguousarray(x, dtype=np.float64), log_value)


def residuals_at(packed: Packed, params: np.ndarray):
    """Each point's residual (before the robust loss) and its Jacobian at ``params`` (P, n),
    from the compiled model (the same code the solver ran)."""
    rows = np.repeat(np.arange(packed.n_problems), packed.n_points)
    p = np.ascontiguousarray(params[rows])
    native_log = packed.log_residuals and packed.model.has_native_log
    with np.errstate(all="ignore"):
        f, J = evaluate(packed.model, p, packed.x, native_log)
        if packed.log_residuals and not native_log:
            J = J / f[:, None]
            f = np.log(f)
        r = f - packed.target
        if packed.sigma is not None:
            r = r / packed.sigma
            J = J / packed.sigma[:, None]
    return r, J
