"""The solver's options, built and checked once from a call's arguments, and the validation
of the other scalar arguments every entry point shares.

:class:`Options` mirrors ``cpp/include/lawfit/options.h`` (each tolerance's exact test is
written there): one frozen object that ``fit``, ``bootstrap``, ``curve_fit`` and
``least_squares`` build from their arguments and pass down whole to the solve plan
(``lawfit._plan``) and the backends (``lawfit._backends``).  Every check raises a
ValueError naming the argument at fault, before any work.
"""
from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["Options", "LOSSES", "RESIDUALS", "DEFAULT_TOL", "NFEV_BLOCKS", "AT_BEST_RTOL",
           "FRAGILE_SHARE", "DEFAULT_K", "DEFAULT_CHUNK", "MAX_THREADS"]

LOSSES = ("linear", "soft_l1", "huber", "cauchy", "arctan")
RESIDUALS = ("linear", "log")

# The default ftol, xtol and gtol of each precision.  fp32 resolves relative changes down to
# about 1e-7 (its epsilon), so a 1e-8 test can only pass on exact stalls; at 1e-5 fp32 solves
# take about as many evaluations as fp64 ones at 1e-8, and on the tests' batches (every
# model, linear and log residuals) at least 97% of them end where the fp64 cost is within
# 1e-3 relative of fp64's optimum (tests/test_fp32.py).
DEFAULT_TOL = {"float64": 1e-8, "float32": 1e-5}

# The default evaluation budget: 100 * n_params at a time (scipy's budget), extended while
# each block still lowers the cost by more than ftol (and rounding) resolves (lm.h, step
# 4c), up to this many blocks.  Robust losses on log residuals (Huber with f_scale = 1e-3,
# the field's usual objective) take several hundred evaluations from an ordinary start: on
# the over-training laws of ../shared/data, from three starts, up to 1,115 for 5
# parameters; slow valleys of the OLMo ladder's task fits (tests/data/corpus) up to 7,941.
NFEV_BLOCKS = 20

# A refined start "reached the best" when its final cost is within this relative distance of
# the problem's lowest; a multi-start fit whose share of such starts is below FRAGILE_SHARE
# is flagged (FitResult.fragile) and warned about.  The distance follows the precision of
# the solve.  In fp64 the cost resolves far below 1e-6; starts that end in one minimum
# differ by what the tolerances leave (ftol 1e-8).  In fp32 the cost itself is resolved to
# only some hundred epsilons: each point's residual loses about |f| / |r| epsilons to the
# cancellation of f against y (a hundred at 1% noise), the sum of m such terms adds its
# rounding, and a start stops where fp32 can no longer tell a step from noise.  Measured on
# the Chinchilla replication's 4,500-start grid, the 25 refined starts that end in the best
# minimum differ by up to 2.9e-6 relative (24 epsilons), the next minimum lies 9.8 relative
# above; 256 fp32 epsilons (3.1e-5) leaves a tenfold margin over the first and stays far
# below the gaps between distinct minima of these objectives (1e-3 relative and more).
AT_BEST_RTOL = {"float64": 1e-6, "float32": 256 * float(np.finfo(np.float32).eps)}
FRAGILE_SHARE = 0.1

# Starts refined per problem by default.  Measured on the Chinchilla replication's 4,500-start
# grid (bench/bench_grid.py): the lowest objective is reached from k = 10 on; 100 leaves a
# wide margin at a twentieth of the time of refining all.
DEFAULT_K = 100

# Solve units (problems x starts x resamples) packed and solved at a time by default.
DEFAULT_CHUNK = 1_000_000

# The most threads a call may ask for: far more than any machine's CPUs today, so a valid
# call is valid on every machine, and far fewer than the OS threads a typo such as
# n_threads=2**31 - 1 would try to start.  (The CPU driver never starts more threads than
# it has chunks of work, nor, by default, more than the CPUs this process may use.)
MAX_THREADS = 4096


def is_real(value) -> bool:
    """A real number (Python or NumPy), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def positive_int(value, name: str) -> int:
    """``value`` as an int >= 1 (an integral float is fine), else ValueError naming it."""
    if not (is_real(value) and np.isfinite(value) and 1 <= value < 2**31
            and int(value) == value):
        raise ValueError(f"{name}: must be a positive integer or None, got {value!r}")
    return int(value)


def default_threads() -> Optional[int]:
    """The thread count of a call that leaves ``n_threads`` None: ``$LAWFIT_NUM_THREADS``
    where set, else inside a Dask worker the worker's own thread budget, else None (the
    compiled core then takes every CPU of the process's affinity mask).  A budget smaller
    than the mask also leaves the helper threads unpinned (``$LAWFIT_PIN``: 0 never pins, 1
    always does), so that several processes on one host do not stack their helpers on the
    same CPUs (cpp/src/cpu_driver.h, pins_helpers)."""
    env = os.environ.get("LAWFIT_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_THREADS:
            raise ValueError(f"LAWFIT_NUM_THREADS: expected an integer from 1 to "
                             f"{MAX_THREADS}, got {env!r}")
        return n
    if "distributed" in sys.modules:  # never imported for this: only where Dask runs
        try:
            from distributed import get_worker

            return int(get_worker().state.nthreads)
        except (ImportError, ValueError, AttributeError):
            pass  # not inside a worker's task
    return None


def check_threads(n_threads) -> Optional[int]:
    """``n_threads`` as an int in [1, MAX_THREADS], or for None the default
    (default_threads: None where the core decides), else ValueError naming it."""
    if n_threads is None:
        return default_threads()
    if type(n_threads) is int and 1 <= n_threads <= MAX_THREADS:  # the usual case, at once
        return n_threads
    n = positive_int(n_threads, "n_threads")
    if n > MAX_THREADS:
        raise ValueError(f"n_threads: at most {MAX_THREADS} threads, got {n_threads!r} (leave "
                         f"it None to use the CPUs this process may use)")
    return n


def check_k(k):
    """A grid's ``k``: a positive integer or "all" (None: DEFAULT_K), else ValueError."""
    if k is None:
        return DEFAULT_K
    if not (k == "all" if isinstance(k, str) else
            (is_real(k) and not isinstance(k, (float, np.floating)) and k >= 1)):
        raise ValueError(f"k: expected a positive integer or 'all', got {k!r}")
    return k


def check_chunk(chunk_size) -> int:
    """``chunk_size`` as a positive int (None: DEFAULT_CHUNK)."""
    return DEFAULT_CHUNK if chunk_size is None else positive_int(chunk_size, "chunk_size")


def check_dtype(dtype, backend: str = "auto") -> str:
    """``dtype`` as "float64" or "float32" (ValueError naming it otherwise, or where the
    backend has no fp32 solver)."""
    if isinstance(dtype, str) and dtype in DEFAULT_TOL:
        name = dtype  # the common spelling, without building a dtype
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
    if name not in DEFAULT_TOL:
        raise ValueError(f"dtype: expected 'float64' or 'float32', got {dtype!r}")
    if name == "float32" and backend == "numpy":
        raise ValueError("dtype: float32 runs on the compiled backends ('cpu', 'cuda'); the "
                         "NumPy reference is fp64 only")
    return name


def check_residuals(residuals) -> str:
    if residuals not in RESIDUALS:
        raise ValueError(f"residuals: expected one of {RESIDUALS}, got {residuals!r}")
    return residuals


# Options.build's results by their arguments (and the arguments' types), and those of the
# default arguments by n_params alone.
_BUILT: dict = {}
_MAX_BUILT = 4096
_DEFAULTS: dict = {}


@dataclass(frozen=True)
class Options:
    """The options of one solve, as ``options.h`` holds them: the robust loss and its
    scale, the residual space, the tolerances (already defaulted for the precision), the
    evaluation budget (``max_nfev`` per block and the cap its extension may reach;
    ``max_nfev_cap <= max_nfev``: a hard budget) and the precision.  Build it with
    :meth:`build`, which checks every argument; an Options is never half valid."""

    loss: str = "linear"
    f_scale: float = 1.0
    residuals: str = "linear"
    ftol: float = DEFAULT_TOL["float64"]
    xtol: float = DEFAULT_TOL["float64"]
    gtol: float = DEFAULT_TOL["float64"]
    max_nfev: int = 300
    max_nfev_cap: int = 0
    initial_damping: float = 1e-3
    dtype: str = "float64"

    @classmethod
    def build(cls, n_params: int, *, loss: str = "linear", f_scale: float = 1.0,
              residuals: str = "linear", ftol=None, xtol=None, gtol=None, max_nfev=None,
              dtype="float64", backend: str = "auto") -> "Options":
        """The options of a call, checked (ValueError naming the argument).  Tolerances
        left None take the precision's default (DEFAULT_TOL); ``max_nfev`` None is the
        default budget, 100 * n_params at a time, extended up to NFEV_BLOCKS times while
        the fit still improves; an explicit ``max_nfev`` is a hard limit, as scipy's.
        Options are immutable: the same arguments (of the same types) give the same object,
        checked once (a small call pays for every check)."""
        if (ftol is None and xtol is None and gtol is None and max_nfev is None
                and type(loss) is str and loss == "linear" and type(residuals) is str
                and residuals == "linear" and type(f_scale) is float and f_scale == 1.0
                and type(dtype) is str and dtype == "float64"):  # the defaults, at once
            built = _DEFAULTS.get(n_params)
            if built is None:
                built = _DEFAULTS[n_params] = cls._build(n_params, loss, f_scale, residuals,
                                                         None, None, None, None, dtype, "auto")
            return built
        args = (n_params, loss, f_scale, residuals, ftol, xtol, gtol, max_nfev, dtype,
                backend)
        try:
            key = (args, tuple(map(type, args)))
            return _BUILT[key]
        except TypeError:  # an unhashable argument: checked (and refused) below
            key = None
        except KeyError:
            pass
        built = cls._build(*args)
        if key is not None and len(_BUILT) < _MAX_BUILT:
            _BUILT[key] = built
        return built

    @classmethod
    def _build(cls, n_params, loss, f_scale, residuals, ftol, xtol, gtol, max_nfev, dtype,
               backend) -> "Options":
        dtype = check_dtype(dtype, backend)
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
        if not (is_real(f_scale) and np.isfinite(f_scale) and f_scale > 0):
            raise ValueError(f"f_scale: must be a positive finite number, got {f_scale!r}")
        check_residuals(residuals)
        tols = [DEFAULT_TOL[dtype] if t is None else t for t in (ftol, xtol, gtol)]
        for name, tol in zip(("ftol", "xtol", "gtol"), tols):
            if not (is_real(tol) and np.isfinite(tol) and tol >= 0):
                raise ValueError(f"{name}: must be a finite number >= 0, got {tol!r}")
        if max_nfev is None:
            budget, cap = 100 * n_params, NFEV_BLOCKS * 100 * n_params
        else:
            budget = cap = positive_int(max_nfev, "max_nfev")
        return cls(loss=loss, f_scale=float(f_scale), residuals=residuals,
                   ftol=float(tols[0]), xtol=float(tols[1]), gtol=float(tols[2]),
                   max_nfev=int(budget), max_nfev_cap=int(cap), dtype=dtype)

    @functools.cached_property
    def core_fields(self) -> tuple:
        """What the compiled cores read of these options, in their order (cpp/src/bindings.h,
        make_options): ftol, xtol, gtol, max_nfev, max_nfev_cap, initial_damping, loss,
        f_scale; made once per Options (one lookup per call instead of eight)."""
        return (self.ftol, self.xtol, self.gtol, self.max_nfev, self.max_nfev_cap,
                self.initial_damping, self.loss, self.f_scale)

    @property
    def log_residuals(self) -> bool:
        return self.residuals == "log"

    @property
    def fp32(self) -> bool:
        return self.dtype == "float32"

    @property
    def at_best_rtol(self) -> float:
        return AT_BEST_RTOL[self.dtype]

    def solver_args(self) -> dict:
        """The keyword arguments of the NumPy reference's solve (``reference.fit_packed``);
        the compiled backends read the same attributes from the object itself."""
        return dict(loss=self.loss, f_scale=self.f_scale, ftol=self.ftol, xtol=self.xtol,
                    gtol=self.gtol, max_nfev=self.max_nfev, max_nfev_cap=self.max_nfev_cap,
                    initial_damping=self.initial_damping)
