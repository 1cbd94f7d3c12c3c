"""Drop-in mirrors of ``scipy.optimize.curve_fit`` and ``scipy.optimize.least_squares``.

Replacing ``from scipy.optimize import curve_fit, least_squares`` with
``from lawfit import curve_fit, least_squares`` keeps a script working: the same arguments,
return values, errors and warnings as scipy documents them (scipy's own test suites run
against these functions: ``tests/test_scipy_suites.py``).  What differs:

* every ``method`` runs lawfit's bounded Levenberg-Marquardt (``cpp/include/lawfit/lm.h``;
  for Python callables its NumPy twin, ``lawfit.reference.solve``, except ``curve_fit``
  with method 'lm' and none of the reference's own options, where lm.h's compiled solve
  calls the function: ``lawfit._core.solve_callable``), so ``method`` only
  selects scipy's rules of validation ('lm': no bounds, a linear loss, at least as many
  residuals as parameters, no callback) and of covariance;
* ``x_scale`` scales the damping: positive numbers s give fixed scales 1 / s^2 (the
  default for 'trf' and 'dogbox' is 1, as in scipy), ``'jac'`` the Jacobian's column norms
  (MINPACK's scaling, the default for 'lm'); ``gtol`` is MINPACK's test (the largest cosine
  between a column of J and the residuals) for every method;
* ``tr_solver`` is accepted for dense Jacobians, whatever its value: lawfit solves each
  step's damped normal equations directly; ``tr_options`` (which tune scipy's solvers) are
  checked as scipy checks them, then ignored with a warning;
* finite differences are scipy's (``approx_derivative``), except ``jac='cs'``, whose step is
  1e-20 max(1, |x|) without ``diff_step`` (scipy's sqrt(eps) max(1, |x|) is inexact for
  parameters much smaller than 1; a complex step has no cancellation to fear);
* a lower bound equal to its upper bound fixes that parameter (scipy refuses it);
* where scipy returns ``p0`` unchanged for NaN data (``check_finite=False``), lawfit raises,
  saying the data are not finite (``nan_policy='omit'`` drops such points, as in scipy);
* a built-in model (its name or ``lawfit.models.<name>``) runs on the compiled backend, with
  its analytic Jacobian, its data-driven guess (or a grid of starts) when ``p0`` is not
  given, and a multi-start fit when ``p0`` is a ``lawfit.grid``.

Refused, with scipy's error types and a message naming the argument (lawfit solves dense
problems only): sparse Jacobians (``jac`` returning a sparse matrix, ``jac_sparsity``),
``jac`` returning a ``LinearOperator``; for built-in models a 2-D ``sigma``, ``jac`` and the
options of the Python path (``x_scale``, ``diff_step``, ``callback``, ...).
"""
from __future__ import annotations

import inspect
import warnings
import weakref
from typing import Callable, Optional

import numpy as np
from scipy.linalg import LinAlgError, cholesky, get_lapack_funcs, qr, solve_triangular, svd
from scipy._lib._util import MapWrapper  # scipy's own handling of `workers` (private)
from scipy.optimize import Bounds, OptimizeResult, OptimizeWarning
# scipy's own finite differences (the steps, bounds and dtype rules of its least_squares);
# a private module, stable since scipy 0.17.
from scipy.optimize._numdiff import approx_derivative
from scipy.sparse import issparse
from scipy.sparse.linalg import LinearOperator, lsmr

from . import reference
from ._packing import _as_x
from ._status import Status
from ._options import Options, positive_int
from ._backends import _load_core, evaluate
from .api import _no_bounds, fit, fit_small
from ._plan import Finish
from .grid import Grid, grid
from .models import Model, get
from .reference.lm import LOSSES

__all__ = ["curve_fit", "least_squares", "OptimizeWarning"]

_EPS = np.finfo(float).eps
_METHODS = ("trf", "dogbox", "lm")
_SCHEMES = ("2-point", "3-point", "cs")
_CS_STEP = 1e-20  # jac='cs': the step, relative to max(1, |x|)
# scipy's status for a callback that raised StopIteration, and its message
CALLBACK_STOP = -2
_CALLBACK_MESSAGE = "`callback` raised `StopIteration`."
# tr_options scipy accepts with tr_solver='lsmr': lsmr's own, and 'regularize'
_LSMR_OPTIONS = (set(inspect.signature(lsmr).parameters) - {"A", "b"}) | {"regularize"}
# Exponents of the default profile grid for a built-in model without a data-driven guess
# (scaling-law exponents lie between about 0.05 and 1.5)
_DEFAULT_EXPONENTS = np.geomspace(0.05, 1.5, 12)


# --------------------------------------------------------------------------------------
# Validation shared by both functions
# --------------------------------------------------------------------------------------


def _real(value, name: str) -> np.ndarray:
    """``value`` as a float64 array; complex values and non-numbers raise ValueError."""
    if np.iscomplexobj(value):
        raise ValueError(f"{name}: must be real, got complex values")
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected real numbers ({exc})") from None


def _bounds(bounds, n: int, method: Optional[str]):
    """scipy's bounds (a ``Bounds`` or a pair of scalars or (n,) arrays) as two (n,) arrays."""
    if type(bounds) is tuple and len(bounds) == 2 and all(type(b) is float for b in bounds) \
            and bounds[0] == -np.inf and bounds[1] == np.inf:  # the default, at once
        return np.full(n, -np.inf), np.full(n, np.inf)
    if isinstance(bounds, Bounds):
        pair = [b if np.size(b) != 1 else np.reshape(b, ()) for b in (bounds.lb, bounds.ub)]
    else:
        try:
            pair = list(bounds)
        except TypeError:
            pair = []
        if len(pair) != 2:
            raise ValueError("bounds: expected a pair (lower, upper) or a "
                             "scipy.optimize.Bounds")
    lower, upper = (_real(b, "bounds") for b in pair)
    lower, upper = (np.full(n, float(b)) if b.ndim == 0 else b for b in (lower, upper))
    if lower.shape != (n,) or upper.shape != (n,):
        raise ValueError(f"bounds: shapes {lower.shape} and {upper.shape} are inconsistent with "
                         f"{n} parameter(s): give scalars or arrays of shape ({n},)")
    if np.isnan(lower).any() or np.isnan(upper).any():
        raise ValueError("bounds: must not contain NaN")
    if (lower > upper).any():
        j = int(np.argmax(lower > upper))
        raise ValueError(f"bounds: the lower bound {lower[j]} of parameter {j} exceeds its "
                         f"upper bound {upper[j]}")
    if method == "lm" and (np.isfinite(lower).any() or np.isfinite(upper).any()):
        raise ValueError("bounds: method 'lm' doesn't support bounds (it only works for "
                         "unconstrained problems); use 'trf' or 'dogbox'")
    return lower, upper


def _check_start(x0: np.ndarray, lower, upper, name: str) -> None:
    if not np.isfinite(x0).all():
        raise ValueError(f"{name}: must be finite, got {x0}")
    out = (x0 < lower) | (x0 > upper)
    if out.any():
        j = int(np.argmax(out))
        raise ValueError(f"{name}: Initial guess is outside of provided bounds (parameter {j} "
                         f"is {x0[j]}, its bounds [{lower[j]}, {upper[j]}])")


def _tolerances(ftol, xtol, gtol, method: Optional[str]):
    """scipy's rules: None disables a test (0), below machine epsilon warns; 'lm' needs all
    three above it, other methods at least one."""
    if all(type(t) is float and _EPS <= t < np.inf for t in (ftol, xtol, gtol)):
        return [ftol, xtol, gtol]  # the usual case, at once
    tols = []
    for name, tol in (("ftol", ftol), ("xtol", xtol), ("gtol", gtol)):
        if tol is None:
            tol = 0.0
        elif not (np.isreal(tol) and np.ndim(tol) == 0 and np.isfinite(tol) and tol >= 0):
            raise ValueError(f"{name}: must be a finite number >= 0 or None, got {tol!r}")
        elif tol < _EPS:
            warnings.warn(f"Setting `{name}` below the machine epsilon ({_EPS:.2e}) effectively "
                          f"disables the corresponding termination condition.", stacklevel=3)
        tols.append(float(tol))
    if method == "lm" and min(tols) < _EPS:
        raise ValueError(f"ftol, xtol, gtol: all must be higher than machine epsilon "
                         f"({_EPS:.2e}) for method 'lm'")
    if max(tols) < _EPS:
        raise ValueError(f"ftol, xtol, gtol: at least one must be higher than machine epsilon "
                         f"({_EPS:.2e})")
    return tols


def _check_f_scale(f_scale) -> float:
    if not (np.isreal(f_scale) and np.ndim(f_scale) == 0 and np.isfinite(f_scale)
            and f_scale > 0):
        raise ValueError(f"f_scale: must be a positive finite number, got {f_scale!r}")
    return float(f_scale)


def _scales(x_scale, n: int, method: str):
    """The solver's fixed damping scales D = 1 / x_scale**2, or None for 'jac'.  The default
    (None) is scipy's: 'jac' for method 'lm', 1 for 'trf' and 'dogbox'."""
    if x_scale is None:
        x_scale = "jac" if method == "lm" else 1.0
    if isinstance(x_scale, str) and x_scale == "jac":
        return None
    bad = ValueError(f"x_scale: expected 'jac' or positive finite numbers, got {x_scale!r}")
    if isinstance(x_scale, str) or np.iscomplexobj(x_scale):
        raise bad
    try:
        s = np.asarray(x_scale, dtype=float)
    except (TypeError, ValueError):
        raise bad from None
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise bad
    if s.ndim == 0:
        s = np.full(n, float(s))
    if s.shape != (n,):
        raise ValueError(f"x_scale: shape {s.shape} is inconsistent with {n} parameter(s)")
    return 1.0 / s**2


def _check_tr_options(tr_solver, tr_options) -> None:
    """tr_options are checked as scipy checks them (options lsmr does not take are a
    TypeError) and then ignored, with a warning: lawfit has no trust-region solver to tune."""
    if tr_options is None:
        return
    if not isinstance(tr_options, dict):
        raise TypeError(f"tr_options: expected a dict, got {type(tr_options).__name__}")
    if tr_solver == "lsmr":
        unknown = sorted(set(tr_options) - _LSMR_OPTIONS)
        if unknown:
            raise TypeError(f"tr_options: unexpected option(s) {unknown} for tr_solver='lsmr' "
                            f"(it takes {sorted(_LSMR_OPTIONS)})")
    if tr_options:
        warnings.warn("tr_options: ignored; lawfit solves each step's damped normal equations "
                      "directly", UserWarning, stacklevel=3)


# --------------------------------------------------------------------------------------
# One residual function on the reference solver
# --------------------------------------------------------------------------------------


class _Residuals:
    """A user's residual function (and Jacobian) as ``lawfit.reference.solve``'s
    ``residual_fn`` for one problem, with scipy's bookkeeping.

    Each point is evaluated once: the start, evaluated when validated, is the solver's first
    evaluation, and the residuals at the current point are kept for the result and the
    callback.  ``nfev`` counts the calls of ``fun`` outside finite differences, ``njev`` the
    Jacobians.  With fewer residuals than parameters (scipy's 'trf' allows it) zero residuals
    with zero Jacobian rows are appended for the solver, which asks for at least as many
    points as free parameters; they change neither the cost, the gradient nor J^T J.
    """

    def __init__(self, fun: Callable, jac, args, kwargs, diff_step, lower, upper, workers,
                 names):
        self.fun, self.jac, self.args, self.kwargs = fun, jac, tuple(args), dict(kwargs)
        self.diff_step, self.workers = diff_step, workers
        # fixed parameters (lower == upper) are differenced as if free: the solver holds them
        fixed = lower == upper
        self.fd_bounds = (np.where(fixed, -np.inf, lower), np.where(fixed, np.inf, upper))
        self.fun_name, self.x_name = names
        self.nfev = self.njev = 0
        self.m = self.pad = None
        self._evals: dict = {}  # x.tobytes() -> (residuals as fun returned them, Jacobian)

    def _call(self, x) -> np.ndarray:
        f = self.fun(x, *self.args, **self.kwargs)
        self.nfev += 1
        if np.iscomplexobj(f):
            raise ValueError(f"{self.fun_name}: returned complex residuals; wrap a complex "
                             "function into a real one (real and imaginary parts as residuals)")
        f = np.atleast_1d(f)
        if f.ndim != 1:
            raise ValueError(f"{self.fun_name}: must return at most 1-D array_like, got "
                             f"shape {f.shape}")
        if self.m is not None and f.shape != (self.m,):
            raise ValueError(f"{self.fun_name}: returned shape {f.shape} at {x}, ({self.m},) "
                             f"at {self.x_name}")
        return f

    def _jacobian(self, x, f) -> np.ndarray:
        if callable(self.jac):
            J = self.jac(x, *self.args, **self.kwargs)
            if issparse(J) or isinstance(J, LinearOperator):
                raise ValueError(f"jac: returned a {type(J).__name__}; lawfit solves dense "
                                 "problems only: return an ndarray (sparse Jacobians and "
                                 "LinearOperator are not supported)")
            if np.iscomplexobj(J):
                raise ValueError("jac: returned complex values")
            J = np.atleast_2d(np.asarray(J, dtype=float))
        else:
            # A complex step has no cancellation: a tiny step is exact (scipy's sqrt(eps)
            # max(1, |x|) is not, for parameters much smaller than 1).
            tiny = self.jac == "cs" and self.diff_step is None
            J = np.atleast_2d(approx_derivative(  # (n,) when m == 1
                self.fun, x, method=self.jac, rel_step=self.diff_step,
                abs_step=_CS_STEP * np.maximum(1.0, np.abs(x)) if tiny else None, f0=f,
                bounds=self.fd_bounds, args=self.args, kwargs=self.kwargs, workers=self.workers))
        self.njev += 1
        if J.shape != (f.size, x.size):
            raise ValueError(f"jac: returned shape {J.shape}, expected {(f.size, x.size)} "
                             f"(residuals, parameters)")
        return J

    def evaluate(self, x):
        """(residuals, Jacobian) at x, computed once."""
        key = x.tobytes()
        if key not in self._evals:
            f = self._call(x)
            self._evals[key] = (f, self._jacobian(x, f))
        return self._evals[key]

    def start(self, x0, n_free: int) -> np.ndarray:
        """Evaluate and check the start (scipy's checks, in its order); returns f(x0)."""
        with np.errstate(all="ignore"):
            f0 = self._call(x0)
        if not np.isfinite(f0).all():
            raise ValueError(f"{self.fun_name}: Residuals are not finite in the initial point "
                             f"{self.x_name}")
        self.m = f0.size
        self.pad = max(0, n_free - self.m)
        with np.errstate(all="ignore"):
            self._evals[x0.tobytes()] = (f0, self._jacobian(x0, f0))
        return f0

    def keep_only(self, x) -> None:
        """Forget every evaluation but the one at x (the solver's current point)."""
        key = x.tobytes()
        self._evals = {key: self._evals[key]}

    def residuals_at(self, x) -> np.ndarray:
        return np.array(self._evals[x.tobytes()][0], dtype=float)

    def __call__(self, P, idx):
        f, J = self.evaluate(P[0])
        r = np.concatenate([np.asarray(f, dtype=float), np.zeros(self.pad)])
        J = np.concatenate([J, np.zeros((self.pad, J.shape[1]))])
        return r[None], J[None]


def _scipy_loss(loss: Callable, m: int) -> Callable:
    """scipy's callable loss, ``loss(z)`` of z (m,) returning rho, rho', rho'' as a (3, m)
    array, as the reference solver's ``loss(z) -> (rho, rho', rho'')`` of z (1, m + pad); the
    padding (see _Residuals) gets the linear loss, whose cost and weight there are 0."""
    def rho(z):
        out = np.asarray(loss(z[0, :m]), dtype=float)
        if out.shape != (3, m):
            raise ValueError(f"loss: the callable must return an array of shape (3, {m}) "
                             f"(rho, rho', rho'' of each residual), got {out.shape}")
        full = np.zeros((3, 1, z.shape[1]))
        full[1] = 1.0
        full[:, 0, :m] = out
        return full[0], full[1], full[2]
    return rho


class _Stopped(Exception):
    """The user's callback raised StopIteration."""


def _solve(problem: _Residuals, x0, lower, upper, *, loss, f_scale, ftol, xtol, gtol, max_nfev,
           scales, callback, verbose) -> OptimizeResult:
    """Run the reference solver on ``problem`` (started: see _Residuals.start) and return
    scipy's OptimizeResult (``fun`` the raw residuals, ``jac`` and ``grad`` after the robust
    loss, as scipy's)."""
    m = problem.m
    solver_loss = _scipy_loss(loss, m) if callable(loss) else loss
    options = dict(loss=solver_loss, f_scale=f_scale, ftol=ftol, xtol=xtol, gtol=gtol,
                   scales=None if scales is None else scales[None])
    box = (lower[None], upper[None])
    weights = np.ones((1, m + problem.pad))
    nit = 0
    # scipy's two signatures: callback(intermediate_result=OptimizeResult) or callback(x)
    by_result = callback is not None and \
        set(inspect.signature(callback).parameters) == {"intermediate_result"}

    def on_iteration(state):
        nonlocal nit
        x, nit = state["x"][0], int(state["nit"][0])
        problem.keep_only(x)
        if verbose >= 2:
            print(f"iteration {nit}: nfev {problem.nfev}, cost {state['cost'][0]:.4e}")
        if callback is not None:
            fields = dict(x=x.copy(), fun=problem.residuals_at(x), nit=nit, nfev=problem.nfev,
                          cost=float(state["cost"][0]))
            try:
                if by_result:
                    callback(intermediate_result=OptimizeResult(fields))
                else:
                    callback(fields["x"])
            except StopIteration:
                raise _Stopped(x.copy()) from None

    try:
        res = reference.solve(problem, x0[None], *box, weights=weights, max_nfev=max_nfev,
                              on_iteration=on_iteration, **options)
        status = int(res["status"][0])
    except _Stopped as stop:
        # The state at the stop, from a solve of one evaluation there (already computed).
        res = reference.solve(problem, stop.args[0][None], *box, weights=weights, max_nfev=1,
                              **options)
        status = CALLBACK_STOP
    x = res["x"][0]
    J, fs = res["jac"][0, :m], res["fun"][0, :m]
    out = OptimizeResult(
        x=x, cost=float(res["cost"][0]), fun=problem.residuals_at(x), jac=J, grad=J.T @ fs,
        optimality=float(res["optimality"][0]),
        active_mask=res["active_mask"][0].astype(int), nfev=problem.nfev, njev=problem.njev,
        nit=nit, status=status,
        message=_CALLBACK_MESSAGE if status == CALLBACK_STOP else Status(status).message,
        success=status > 0)
    if verbose >= 1:
        print(out.message)
        print(f"Function evaluations {out.nfev}, final cost {out.cost:.4e}, first-order "
              f"optimality {out.optimality:.2e}.")
    return out


# --------------------------------------------------------------------------------------
# least_squares
# --------------------------------------------------------------------------------------


def least_squares(fun, x0, jac="2-point", bounds=(-np.inf, np.inf), method="trf", ftol=1e-8,
                  xtol=1e-8, gtol=1e-8, x_scale=None, loss="linear", f_scale=1.0,
                  diff_step=None, tr_solver=None, tr_options=None, jac_sparsity=None,
                  max_nfev=None, verbose=0, args=(), kwargs=None, callback=None,
                  workers=None) -> OptimizeResult:
    """Mirror of ``scipy.optimize.least_squares``, run by lawfit's bounded Levenberg-Marquardt
    (the NumPy reference solver).

    Arguments and the result are scipy's (see the module docstring for what differs):
    ``x_scale`` (positive numbers, fixed; ``'jac'``: the Jacobian's column norms; None:
    scipy's default, 1 for 'trf' and 'dogbox', 'jac' for 'lm'),
    ``loss`` (a name or a callable ``rho(z) -> (3, m)``), ``callback(intermediate_result)``
    or ``callback(x)`` after every iteration (one evaluation; ``StopIteration`` ends the
    solve with status -2; not with ``method='lm'``, as in scipy), ``workers`` for the finite
    differences.  ``nfev`` counts the calls of ``fun`` outside finite differences, ``njev``
    the Jacobians (None with finite differences and ``method='lm'``), ``nit`` the
    iterations.  A lower bound equal to its upper bound fixes that parameter.
    """
    return _least_squares(fun, x0, jac=jac, bounds=bounds, method=method, ftol=ftol,
                          xtol=xtol, gtol=gtol, x_scale=x_scale, loss=loss, f_scale=f_scale,
                          diff_step=diff_step, tr_solver=tr_solver, tr_options=tr_options,
                          jac_sparsity=jac_sparsity, max_nfev=max_nfev, verbose=verbose,
                          args=args, kwargs=kwargs, callback=callback, workers=workers)


def _least_squares(fun, x0, *, jac="2-point", bounds=(-np.inf, np.inf), method="trf",
                   ftol=1e-8, xtol=1e-8, gtol=1e-8, x_scale=None, loss="linear", f_scale=1.0,
                   diff_step=None, tr_solver=None, tr_options=None, jac_sparsity=None,
                   max_nfev=None, verbose=0, args=(), kwargs=None, callback=None,
                   workers=None, names=("fun", "x0")) -> OptimizeResult:
    """least_squares, its errors naming the residual function and the start ``names``."""
    fun_name, x_name = names
    if method not in _METHODS:
        raise ValueError(f"method: expected 'trf', 'dogbox' or 'lm', got {method!r}")
    if not (callable(jac) or jac in _SCHEMES):
        raise ValueError(f"jac: expected '2-point', '3-point', 'cs' or a callable, got {jac!r}")
    if tr_solver not in (None, "exact", "lsmr"):
        raise ValueError(f"tr_solver: expected None, 'exact' or 'lsmr', got {tr_solver!r}")
    if not (callable(loss) or loss in LOSSES):
        raise ValueError(f"loss: expected one of {LOSSES} or a callable, got {loss!r}")
    if method == "lm" and loss != "linear":
        raise ValueError("loss: method 'lm' supports only the 'linear' loss")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose: expected 0, 1 or 2, got {verbose!r}")
    f_scale = _check_f_scale(f_scale)
    x0 = np.atleast_1d(_real(x0, x_name))
    if x0.ndim > 1:
        raise ValueError(f"{x_name}: must have at most 1 dimension, got shape {x0.shape}")
    n = x0.size
    max_nfev = 100 * n if max_nfev is None else positive_int(max_nfev, "max_nfev")
    lower, upper = _bounds(bounds, n, method)
    _check_start(x0, lower, upper, x_name)
    scales = _scales(x_scale, n, method)
    ftol, xtol, gtol = _tolerances(ftol, xtol, gtol, method)
    if jac_sparsity is not None:
        raise ValueError("jac_sparsity: sparse Jacobians are not supported (lawfit solves dense "
                         "problems only); leave jac_sparsity=None")
    _check_tr_options(tr_solver, tr_options)
    if callback is not None and method == "lm":
        warnings.warn("Callback function specified, but not supported with `lm` method.",
                      stacklevel=3)
        callback = None
    n_free = int((lower < upper).sum())
    # workers (an int: a pool of processes) serve the finite differences of the whole solve
    with MapWrapper(map if workers is None else workers) as mapper:
        problem = _Residuals(fun, jac, args, kwargs or {}, diff_step, lower, upper, mapper,
                             names)
        problem.start(x0, n_free if method != "lm" else 0)
        if method == "lm" and problem.m < n:
            raise ValueError(f"{fun_name}: method 'lm' doesn't work when the number of "
                             f"residuals ({problem.m}) is less than the number of variables "
                             f"({n})")
        res = _solve(problem, x0, lower, upper, loss=loss, f_scale=f_scale, ftol=ftol,
                     xtol=xtol, gtol=gtol, max_nfev=max_nfev, scales=scales,
                     callback=callback, verbose=verbose)
    if method == "lm" and not callable(jac):
        res.njev = None
    return res


# --------------------------------------------------------------------------------------
# curve_fit
# --------------------------------------------------------------------------------------

# Keyword arguments curve_fit passes on to the solver: for Python callables (as scipy passes
# them to least_squares or leastsq) and for built-in models.
_CALLABLE_KW = {"ftol", "xtol", "gtol", "max_nfev", "maxfev", "loss", "f_scale", "diff_step",
                "x_scale", "tr_solver", "tr_options", "verbose", "callback", "workers",
                "residuals"}
_BUILTIN_KW = {"ftol", "xtol", "gtol", "max_nfev", "maxfev", "loss", "f_scale", "residuals",
               "backend"}


def _n_params(f) -> int:
    """The number of fit parameters of f(x, p1, p2, ...) from its signature."""
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 or any(p.kind == p.VAR_POSITIONAL for p in params):
        raise ValueError("p0: Unable to determine number of fit parameters from the "
                         "signature of f; pass p0")
    return len(positional) - 1


def _traced(f, xdata, ydata, p0, sigma, jac, kwargs) -> Optional[Model]:
    """A Python callable f(x, p1, ..., pn) of one input that can be traced with symbolic
    arguments (lawfit.law), as a compiled law; None where it cannot be, or where the call
    uses what only the callable path offers (jac, a covariance sigma, solver options such as
    x_scale), so that the callable path runs it as before.  The traced law must give f's
    values on the data at the start."""
    if jac is not None or not set(kwargs) <= _BUILTIN_KW or xdata is None \
            or np.iscomplexobj(xdata) or np.iscomplexobj(ydata):
        return None
    try:
        cached = _TRACED.get(f)
        if cached is None and f in _UNTRACEABLE:
            return None
    except TypeError:  # not weakly referenceable
        cached = None
    try:
        x = np.asarray(xdata, dtype=np.float64)
        y = np.asarray(ydata, dtype=np.float64)
        if cached is None:
            params = list(inspect.signature(f).parameters.values())
            if any(p.kind == p.VAR_POSITIONAL for p in params):
                return None
            names = [p.name for p in params
                     if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        else:
            names = cached[1]
    except (TypeError, ValueError):
        return None
    if x.ndim != 1 or y.shape != x.shape or np.ndim(sigma) > 1 or len(names) < 2:
        return None
    if p0 is not None and (isinstance(p0, Grid) or np.size(p0) != len(names) - 1):
        return None
    from .law import law

    try:
        if cached is None:
            try:
                traced = law(f, inputs=[names[0]], name=getattr(f, "__name__", None))
                traced.compiled  # a compiled form exists (at most 10 parameters)
            except Exception:
                try:
                    _UNTRACEABLE[f] = True
                except TypeError:  # not weakly referenceable
                    pass
                raise
        else:
            traced = cached[0]
        start = np.ones(traced.n_params) if p0 is None else np.asarray(p0, dtype=np.float64)
        with np.errstate(all="ignore"):
            want = np.asarray(f(x, *start), dtype=np.float64)
            got = evaluate(traced, np.broadcast_to(start, (x.size, start.size)), x[:, None])[0]
            # np.allclose(got, want, rtol=1e-10, atol=0, equal_nan=True), in fewer passes
            same = want.shape == got.shape and bool(np.all(
                (np.abs(got - want) <= 1e-10 * np.abs(want)) | (got == want)
                | (np.isnan(got) & np.isnan(want))))
    except Exception:  # anything the tracer or f raises: the callable path runs f as it is
        return None
    if not same:
        if cached is not None:
            _TRACED.pop(f, None)
        return None
    if cached is None:
        try:
            _TRACED[f] = (traced, names)
        except TypeError:  # not weakly referenceable
            pass
    return traced


# Callables already traced (checked again against f's values at every call, so a function
# whose closure changed is traced anew).
_TRACED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
# Callables the tracer could not compile (their code and arity do not change: not tried again).
_UNTRACEABLE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _initialize_feasible(lower, upper) -> np.ndarray:
    """scipy's default start: ones, or a feasible point where there are bounds."""
    p0 = np.ones(lower.size)
    lo, hi = np.isfinite(lower), np.isfinite(upper)
    p0[lo & hi] = 0.5 * (lower[lo & hi] + upper[lo & hi])
    p0[lo & ~hi] = lower[lo & ~hi] + 1
    p0[~lo & hi] = upper[~lo & hi] - 1
    return p0


def _omit_nan(xdata, ydata, sigma):
    """scipy's nan_policy='omit': drop the points where y or any input (over the last axis
    of xdata) is NaN, with their sigma (rows and columns of a 2-D one)."""
    has_nan = np.isnan(ydata)
    if isinstance(xdata, np.ndarray):
        xnan = np.isnan(xdata)
        has_nan = has_nan | xnan.any(axis=tuple(range(xnan.ndim - 1)))
        xdata = xdata[..., ~has_nan]
    if sigma is not None and sigma.ndim == 1 and sigma.size == has_nan.size:
        sigma = sigma[~has_nan]
    elif sigma is not None and sigma.ndim == 2:
        sigma = sigma[~has_nan][:, ~has_nan]
    return xdata, ydata[~has_nan], sigma


def _transform(sigma, m: int):
    """scipy's weighting: 1 / sigma (1-D or scalar sigma) or L^-1 with L L^T = sigma (2-D);
    returns a function applying it to residuals (m,) or a Jacobian (m, n)."""
    if sigma is None:
        return lambda a: a
    if sigma.size == 1 or sigma.shape == (m,):
        s = np.broadcast_to(sigma.reshape(-1) if sigma.size == 1 else sigma, (m,))
        if not (np.isfinite(s).all() and (s > 0).all()):
            raise ValueError("sigma: must be finite and > 0")
        inv = 1.0 / s
        return lambda a: a * (inv if a.ndim == 1 else inv[:, None])
    if sigma.shape == (m, m):
        try:
            L = cholesky(sigma, lower=True)
        except (LinAlgError, ValueError) as exc:
            raise ValueError(f"sigma: must be positive definite (a covariance matrix) "
                             f"({exc})") from None
        return lambda a: solve_triangular(L, a, lower=True)
    raise ValueError(f"sigma: has incorrect shape {sigma.shape}: expected a scalar, ({m},) or "
                     f"({m}, {m})")


def _minpack_info(Q, R, perm, fvec) -> dict:
    """MINPACK's description of the final Jacobian J (m, n) in scipy's infodict, from J's
    column-pivoted QR J[:, perm] = Q R: ``ipvt`` = perm + 1, ``fjac`` (n, m) with R in
    ``fjac.T[:n]`` (MINPACK's layout; where MINPACK keeps its Householder vectors, below R,
    zeros), ``qtf`` = Q^T fvec."""
    n, m = R.shape[1], Q.shape[0]
    fjac = np.zeros((n, m))
    fjac[:, :R.shape[0]] = R.T
    return {"fjac": fjac, "ipvt": perm.astype(np.int32) + 1, "qtf": Q.T @ fvec}


_GEQP3, _TRTRI = get_lapack_funcs(("geqp3", "trtri"), (np.empty((1, 1)),))


def _pivoted_r(J):
    """R (upper trapezoidal, min(m, n) x n) and the permutation of J's column-pivoted QR,
    J[:, perm] = Q R: LAPACK's geqp3, as scipy.linalg.qr(J, pivoting=True) runs it, without
    forming Q."""
    a, jpvt, _, _, info = _GEQP3(J)
    if info != 0:
        raise ValueError(f"illegal value in argument {-info} of internal geqp3")
    k, n = min(J.shape), J.shape[1]
    upper = _UPPER.get((k, n))
    if upper is None:
        upper = _UPPER.setdefault((k, n), np.triu(np.ones((k, n), dtype=bool)))
    return np.where(upper, a[:k], 0.0), jpvt - 1


_UPPER: dict = {}  # (rows, columns) -> the upper trapezoid's mask


def _lm_covariance(R, perm):
    """(J^T J)^-1 as leastsq computes it, from J's pivoted QR: R^-1 R^-T, permuted back;
    None where R is singular."""
    n = R.shape[1]
    r = R[:n]  # upper triangular already
    if r.shape != (n, n):
        return None
    inv_r, info = _TRTRI(r)
    if info != 0:
        return None
    inv_r[perm] = inv_r.copy()
    return inv_r @ inv_r.T


def _pinv_covariance(J):
    """The pseudo-inverse of J^T J from J's SVD, dropping singular values below
    eps max(m, n) s_max (scipy's curve_fit with 'trf' and 'dogbox')."""
    _, s, VT = svd(J, full_matrices=False)
    keep = s > _EPS * max(J.shape) * s[0]
    return (VT[keep].T / s[keep] ** 2) @ VT[keep]


def _scaled_covariance(cov, cost2: float, m: int, n_free: int, absolute_sigma: bool):
    """scipy's last step: inf where undetermined (cov None or NaN), else scaled by the
    residual variance ``cost2 / (m - n_free)`` (``cost2`` the sum of squared residuals)
    unless absolute_sigma, inf where that is undefined."""
    if cov is None or np.isnan(cov).any() or (not absolute_sigma and m <= n_free):
        return None
    return cov if absolute_sigma else cov * (cost2 / (m - n_free))


def _builtin_p0(model: Model, lower, upper):
    """The start of a built-in model without p0: its data-driven guess (None), or a
    profile grid over its exponents (within the bounds); otherwise ValueError."""
    if model.has_guess:
        return None
    if model.profile is not None:
        axes = {}
        for e in model.profile.exponents:
            j = model.param_names.index(e)
            axes[e] = np.unique(np.clip(_DEFAULT_EXPONENTS, lower[j], upper[j]))
        return grid(profile=True, **axes)
    raise ValueError(f"p0: model '{model.name}' has no data-driven guess; pass p0 (an array, "
                     f"or a lawfit.grid(...) for a multi-start fit)")


def curve_fit(f, xdata, ydata, p0=None, sigma=None, absolute_sigma=False, check_finite=None,
              bounds=(-np.inf, np.inf), method=None, jac=None, *, full_output=False,
              nan_policy=None, **kwargs):
    """Mirror of ``scipy.optimize.curve_fit``: returns ``popt, pcov`` (and, with
    ``full_output``, ``infodict, mesg, ier``).

    ``f`` may be a Python callable ``f(xdata, *params)`` (traced once into a compiled law,
    lawfit.law, where it is a NumPy expression of one input and the call uses only what the
    compiled path offers; else, with method 'lm', solved by lm.h's compiled solve calling f
    (and jac, or forward differences) from C++, or otherwise on the NumPy reference solver,
    as :func:`least_squares`),
    a law (lawfit.law) or a built-in model (its name or ``lawfit.models.<name>``, run
    on the compiled backend; ``xdata`` of shape (m,), (m, k) or scipy's (k, m)).  Everything
    scipy documents works: ``sigma`` as a scalar, per-point errors or (callables) a 2-D
    covariance matrix, ``xdata=None`` (callables), a ``ydata`` that broadcasts against f's
    values, ``Bounds``, ``nan_policy`` ('raise', 'omit'; 'propagate' is refused, as by
    scipy), ``full_output`` (``infodict`` with ``nfev`` and ``fvec``, the weighted residuals,
    and for method 'lm' ``fjac``, ``ipvt``, ``qtf``), and keyword arguments for the solver:
    ``ftol``, ``xtol``, ``gtol``, ``max_nfev`` (or ``maxfev``), ``loss``, ``f_scale``; for
    callables also ``diff_step``, ``x_scale``, ``tr_solver``, ``tr_options``, ``verbose``,
    ``callback``, ``workers``; lawfit adds ``residuals="log"`` (fit log f to log y) and,
    for built-in models, ``backend``.

    A built-in model without ``p0`` starts from its data-driven guess or, where it has none,
    from a profile grid over its exponents (power-law and Chinchilla forms); otherwise p0 is
    required.  ``p0=lawfit.grid(...)`` makes a multi-start fit that returns the best.  The
    covariance is scipy's: for callables from the final Jacobian (method 'lm': MINPACK's
    ``(R^T R)^-1``, ``inf`` when R is singular; otherwise the pseudo-inverse), for built-in
    models from J^T J (see ``lawfit.fit``'s ``return_cov``).
    """
    builtin = isinstance(f, (str, Model))
    if (builtin and type(ydata) is np.ndarray and type(xdata) is np.ndarray
            and ydata.ndim == 1 and ydata.dtype == xdata.dtype == np.float64
            and (p0 is None or (type(p0) is np.ndarray and p0.dtype == np.float64))
            and sigma is None and (check_finite is None or check_finite is True)
            and _no_bounds(bounds) and (method is None or method == "lm") and jac is None
            and full_output is False and nan_policy is None and not kwargs):
        r = _curve_fit_small(get(f), xdata, ydata, p0, absolute_sigma)
        if r is not None:  # (else the checks below say what is wrong, if anything)
            status = _builtin_status(r)
            return r.x[0], _checked(r.cov[0], status, Status(status).message, r.x.shape[1])
    model = get(f) if builtin else None
    if not builtin and not callable(f):
        raise ValueError("f: expected a callable f(xdata, *params) or a built-in model name")
    if not builtin:  # a callable that can be traced runs compiled, as a law
        model = _traced(f, xdata, ydata, p0, sigma, jac, kwargs)
        if model is not None:
            f, builtin = model, True
            if p0 is None:
                p0 = _initialize_feasible(*_bounds(bounds, model.n_params, None))
    if "args" in kwargs:
        raise ValueError("args: 'args' is not a supported keyword argument of curve_fit "
                         "(f is called as f(xdata, *params))")
    unknown = sorted(set(kwargs) - (_BUILTIN_KW if builtin else _CALLABLE_KW))
    if unknown:
        raise TypeError(f"curve_fit() got unexpected keyword argument(s) {unknown}"
                        + (" for a built-in model" if builtin else ""))
    if method not in (None,) + _METHODS:
        raise ValueError(f"method: expected 'lm', 'trf' or 'dogbox', got {method!r}")
    if nan_policy == "propagate":
        raise ValueError("nan_policy: `nan_policy='propagate'` is not supported by this "
                         "function.")
    if nan_policy not in (None, "raise", "omit"):
        raise ValueError("nan_policy must be one of {None, 'raise', 'omit'}, got "
                         f"{nan_policy!r}")
    if isinstance(p0, Grid) and not builtin:
        raise ValueError("p0: a lawfit.grid multi-start fit runs compiled, for built-in models; "
                         "pass an array p0 for a Python callable")
    for name, value in (("xdata", xdata), ("ydata", ydata), ("p0", p0), ("sigma", sigma)):
        if not isinstance(value, Grid) and np.iscomplexobj(value):
            raise ValueError(f"{name}: must be real, got complex values")

    # ---- parameters, bounds, method, start ----
    if builtin:
        n = model.n_params
    elif p0 is None:
        n = _n_params(f)
    else:
        n = np.size(p0)
    lower, upper = _bounds(bounds, n, None)
    bounded = bool(np.isfinite(lower).any() or np.isfinite(upper).any())
    if method is None:
        method = "trf" if bounded else "lm"
    elif method == "lm" and bounded:
        raise ValueError("bounds: Method 'lm' only works for unconstrained problems. Use "
                         "'trf' or 'dogbox' instead.")
    if p0 is None:
        p0 = _builtin_p0(model, lower, upper) if builtin else _initialize_feasible(lower, upper)
    elif not isinstance(p0, Grid):
        p0 = np.atleast_1d(_real(p0, "p0"))
        if p0.shape != (n,):
            raise ValueError(f"p0: expected shape ({n},), got {p0.shape}")
        _check_start(p0, lower, upper, "p0")

    # ---- data ----
    if check_finite is None:
        check_finite = nan_policy is None
    ydata = _real(ydata, "ydata")
    if isinstance(xdata, (list, tuple, np.ndarray)):
        xdata = _real(xdata, "xdata")
    if ydata.size == 0:
        raise ValueError("ydata: must not be empty")
    if builtin:
        if ydata.ndim != 1 or xdata is None:
            raise ValueError(f"xdata, ydata: a built-in model takes its inputs "
                             f"{list(model.input_names)} and a 1-D ydata (batches: lawfit.fit)")
        xdata = _as_x(xdata, model.n_inputs, ydata.size, "xdata").T  # scipy's (k, m)
    if check_finite:
        for name, value in (("xdata", xdata), ("ydata", ydata)):
            if isinstance(value, np.ndarray) and not np.isfinite(value).all():
                raise ValueError(f"{name}: must not contain NaN or inf (check_finite=True; "
                                 f"nan_policy='omit' drops such points)")
    if sigma is not None:
        sigma = _real(sigma, "sigma")
    if nan_policy == "raise":
        for name, value in (("xdata", xdata), ("ydata", ydata)):
            if isinstance(value, np.ndarray) and np.isnan(value).any():
                raise ValueError(f"{name}: The input contains nan values (nan_policy='raise')")
    elif nan_policy == "omit":
        xdata, ydata, sigma = _omit_nan(xdata, ydata, sigma)
    if not check_finite and not np.isfinite(ydata).all():  # (else checked above)
        raise ValueError("ydata: the data are not finite (NaN or inf); scipy would return p0 "
                         "unchanged, lawfit refuses (nan_policy='omit' drops such points)")
    m = ydata.size
    n_free = int((lower < upper).sum())
    if method == "lm" and m != 1 and n_free > m:
        raise TypeError(f"The number of func parameters={n_free} must not exceed the number "
                        f"of data points={m} (ydata)")

    # ---- the solve ----
    kwargs.setdefault("max_nfev", kwargs.pop("maxfev", None))
    residuals = kwargs.pop("residuals", "linear")
    if residuals not in ("linear", "log"):
        raise ValueError(f"residuals: expected 'linear' or 'log', got {residuals!r}")
    run = _curve_fit_builtin if builtin else _curve_fit_callable
    popt, cov, info, status, message = run(
        model if builtin else f, xdata, ydata, p0, sigma, (lower, upper), method,
        dict(residuals=residuals, absolute_sigma=absolute_sigma, jac=jac,
             full_output=full_output, **kwargs))
    cov = _checked(cov, status, message, n)
    if full_output:
        return popt, cov, info, message, status
    return popt, cov


def _checked(cov, status: int, message: str, n: int) -> np.ndarray:
    """curve_fit's ending, as scipy's: RuntimeError where the fit failed; a covariance that
    could not be estimated is all inf, with an OptimizeWarning at curve_fit's caller."""
    if status <= 0:
        raise RuntimeError("Optimal parameters not found: " + message)
    if cov is None or not np.isfinite(cov).all():
        warnings.warn("Covariance of the parameters could not be estimated",
                      category=OptimizeWarning, stacklevel=3)
        cov = np.full((n, n), np.inf)
    return cov


def _curve_fit_small(model: Model, xdata, ydata, p0, absolute_sigma):
    """curve_fit's fit of a built-in model on a clean call (float64 arrays, no sigma, bounds
    or solver options; curve_fit has checked which), straight through fit's short route
    (api.fit_small) with what the general route would pass to fit: the same bits.  None
    where the call is not that clean case (a shape to check, too few points, a value not
    finite or out of the model's domain, no data-driven start): curve_fit's general route
    then checks it and raises scipy's errors."""
    n, m, k = model.n_params, ydata.size, model.n_inputs
    if m < n or (p0 is None and not model.has_guess) or (p0 is not None and p0.shape != (n,)):
        return None
    if xdata.ndim == 1 and k == 1:
        x = xdata
    elif xdata.ndim == 2 and xdata.shape == (k, m) and 1 < k != m:  # scipy's (k, m)
        x = xdata.T
    elif xdata.ndim == 2 and xdata.shape == (m, k):
        x = xdata
    else:
        return None
    # fit's defaults but for scipy's tolerances of method 'lm' (1e-8 each), as the general
    # route gives them to fit
    options = Options.build(n, ftol=1e-8, xtol=1e-8, gtol=1e-8)
    return fit_small(model, x, ydata, p0, options, None, (-np.inf, np.inf), "auto",
                     Finish(True, absolute_sigma, "inf", False))


def _builtin_status(r) -> int:
    """The status of curve_fit's fit of a built-in (a FitResult of one problem); a start
    where the residuals are not finite is scipy's ValueError."""
    status = int(r.status[0])
    if status == Status.NONFINITE_INITIAL:
        raise ValueError("p0: Residuals are not finite in the initial point")
    return status


def _curve_fit_callable(f, xdata, ydata, p0, sigma, bounds, method, opts):
    """curve_fit of a Python callable through least_squares: (popt, pcov or None, infodict,
    status, message)."""
    m, n = ydata.size, p0.size
    weigh = _transform(sigma, m)
    log = opts.pop("residuals") == "log"
    absolute_sigma, jac, full_output = (opts.pop(k) for k in
                                        ("absolute_sigma", "jac", "full_output"))
    with np.errstate(all="ignore"):
        target = np.log(ydata) if log else ydata
    if not np.isfinite(target).all():
        raise ValueError("ydata: must be > 0 with residuals='log'")

    def model(p):
        v = np.asarray(f(xdata, *p))
        if np.iscomplexobj(v) and not np.iscomplexobj(p):  # jac='cs' steps are complex
            raise ValueError("f: returned complex values")
        if ydata.size > 1 and v.shape != ydata.shape:
            raise ValueError(f"f: returned shape {v.shape}, expected ydata's shape "
                             f"{ydata.shape}")
        return v

    def fun(p):
        v = model(p)
        return weigh(np.atleast_1d((np.log(v) if log else v) - target))

    compiled = _compiled_route(method, jac, sigma, ydata, p0, opts)
    if compiled is not None and ydata.size == 1:
        # a single ydata broadcasts against f's values (as the reference route's residuals
        # do): their size decides the points
        with np.errstate(all="ignore"):
            v0 = np.asarray(f(xdata, *p0))
        if v0.ndim > 1 or (sigma is not None and sigma.size > 1):
            compiled = None
        else:
            target = np.broadcast_to(target.reshape(-1), (v0.size,))
            weigh = _transform(sigma, v0.size)
    if compiled is not None:
        res = _solve_compiled(compiled, f, xdata, jac, target, sigma, p0, bounds, log,
                              weigh, opts)
    else:
        if callable(jac):
            user_jac = jac

            def jac(p):
                J = np.atleast_2d(_real(user_jac(xdata, *p), "jac"))
                if log:
                    J = J / np.asarray(model(p), dtype=float).reshape(-1, 1)
                return weigh(J)

        res = _least_squares(fun, p0, jac="2-point" if jac is None else jac, bounds=bounds,
                             method=method, names=("f", "p0"), **opts)
    J, fvec = res.jac, res.fun
    free = bounds[0] < bounds[1]
    info = {"nfev": res.nfev, "fvec": fvec}
    if method == "lm":
        if full_output:
            Q, R, perm = qr(J, mode="economic", pivoting=True)
            info.update(_minpack_info(Q, R, perm, fvec))
        else:
            R, perm = _pivoted_r(J)
        cov = _lm_covariance(R, perm)
    else:
        cov = np.zeros((n, n))
        cov[np.ix_(free, free)] = _pinv_covariance(J[:, free])
    cov = _scaled_covariance(cov, 2 * res.cost, fvec.size, int(free.sum()), absolute_sigma)
    return res.x, cov, info, res.status, res.message


# Options of curve_fit that only the NumPy reference route serves (for a callable).
_REFERENCE_ONLY = ("diff_step", "x_scale", "tr_solver", "tr_options", "callback", "workers")


def _compiled_route(method, jac, sigma, ydata, p0, opts):
    """The compiled core (lawfit._core.solve_callable) where it runs what scipy's leastsq
    would for this curve_fit of a Python callable: method 'lm' (no bounds; lm.h's scales are
    MINPACK's, as x_scale='jac'), forward differences or a callable jac, per-point or no
    sigma, 1-D (or single) ydata, at most 8 parameters, none of the reference route's
    options.  Returns the core module, or None for the reference route."""
    if method != "lm" or not (jac is None or callable(jac)) or ydata.ndim > 1 \
            or p0.size > 8 or (sigma is not None and sigma.ndim > 1) \
            or opts.get("verbose") or opts.get("loss", "linear") != "linear" \
            or any(opts.get(k) is not None for k in _REFERENCE_ONLY):
        return None
    return _load_core()[0]


def _solve_compiled(core, f, xdata, jac, target, sigma, p0, bounds, log, weigh, opts):
    """curve_fit of a Python callable on the compiled solve (see _compiled_route): an
    OptimizeResult with the fields _curve_fit_callable reads."""
    n, m = p0.size, target.size
    ftol, xtol, gtol = _tolerances(opts.get("ftol", 1e-8), opts.get("xtol", 1e-8),
                                   opts.get("gtol", 1e-8), "lm")
    max_nfev = opts.get("max_nfev")
    max_nfev = 100 * n if max_nfev is None else positive_int(max_nfev, "max_nfev")
    options = Options(residuals="log" if log else "linear", ftol=ftol, xtol=xtol, gtol=gtol,
                      max_nfev=max_nfev, max_nfev_cap=max_nfev)
    s = None if sigma is None else np.ascontiguousarray(
        np.broadcast_to(sigma.reshape(-1) if sigma.size == 1 else sigma, (m,)), dtype=float)
    lower, upper = bounds
    with np.errstate(all="ignore"):
        r = core.solve_callable(f, jac, xdata, np.ascontiguousarray(target, dtype=float), s,
                                np.ascontiguousarray(p0, dtype=float), lower, upper, options)
    status = int(r["status"])
    if status == Status.NONFINITE_INITIAL:
        raise ValueError("f: Residuals are not finite in the initial point p0")
    values, J = r["f"], r["J"]  # the model's, at x
    with np.errstate(all="ignore"):
        if log:
            J, values = J / values[:, None], np.log(values)
        fvec, J = weigh(values - target), weigh(J)
    return OptimizeResult(x=r["x"], cost=float(r["cost"]), fun=fvec, jac=J, nfev=int(r["nfev"]),
                          njev=None, nit=int(r["nit"]), status=status,
                          message=Status(status).message, success=status > 0)


def _curve_fit_builtin(model, xdata, ydata, p0, sigma, bounds, method, opts):
    """curve_fit of a built-in model through the compiled ``lawfit.fit``: (popt, pcov,
    infodict, status, message)."""
    m = ydata.size
    x = xdata.T
    if model.log_inputs and not (x > 0).all():
        raise ValueError(f"xdata: model '{model.name}' needs inputs > 0 (it takes powers of "
                         f"them); got {x[~(x > 0).all(axis=1)][0]}")
    if opts["jac"] is not None:
        raise ValueError(f"jac: model '{model.name}' has an analytic Jacobian; leave jac=None")
    if sigma is not None:
        if sigma.shape == (m, m) and m > 1:
            raise ValueError("sigma: a 2-D covariance sigma needs a Python callable f; "
                             "built-in models take a scalar or per-point sigma")
        if sigma.size != 1 and sigma.shape != (m,):
            raise ValueError(f"sigma: has incorrect shape {sigma.shape}: expected a scalar or "
                             f"({m},) like ydata")
        sigma = np.broadcast_to(sigma.reshape(-1), (m,))
        if not (np.isfinite(sigma).all() and (sigma > 0).all()):
            raise ValueError("sigma: must be finite and > 0")
    n_free = int((bounds[0] < bounds[1]).sum())
    if n_free > m:
        raise ValueError(f"ydata: {m} points for {n_free} free parameters; the compiled "
                         f"solver needs at least as many points")
    ftol, xtol, gtol = _tolerances(opts.get("ftol", 1e-8), opts.get("xtol", 1e-8),
                                   opts.get("gtol", 1e-8), method)
    unbounded = not (np.isfinite(bounds[0]).any() or np.isfinite(bounds[1]).any())
    r = fit(model, x, ydata, p0=p0, sigma=sigma, bounds=(-np.inf, np.inf) if unbounded else bounds,
            loss=opts.get("loss", "linear"),
            f_scale=opts.get("f_scale", 1.0), residuals=opts["residuals"], ftol=ftol,
            xtol=xtol, gtol=gtol, max_nfev=opts["max_nfev"],
            backend=opts.get("backend", "auto"), return_cov=True,
            absolute_sigma=opts["absolute_sigma"],
            singular_cov="inf" if method == "lm" else "pinv",
            return_residuals=opts["full_output"])  # only infodict reads them
    status = _builtin_status(r)
    info = {"nfev": int(r.nfev[0])}
    if opts["full_output"]:
        info["fvec"] = fvec = np.asarray(r.fun)
        if method == "lm":
            info.update(_minpack_info(*qr(np.asarray(r.jac), mode="economic", pivoting=True),
                                      fvec))
    return r.x[0], r.cov[0], info, status, Status(status).message
