"""Drop-in mirrors of ``scipy.optimize.curve_fit`` and ``scipy.optimize.least_squares``.

Replacing ``from scipy.optimize import curve_fit`` with ``from lawfit import curve_fit`` keeps
a script working: same arguments, same return values, the same ``RuntimeError`` when a fit
fails and the same ``OptimizeWarning`` when the covariance cannot be estimated.  Differences:

* every ``method`` runs lawfit's bounded Levenberg-Marquardt (``cpp/include/lawfit/lm.h``);
* a built-in model (its name or ``lawfit.models.<name>``) runs on the compiled backend;
  any Python callable runs on the NumPy reference with ``jac`` as a callable, ``'2-point'``
  or ``'3-point'`` differences with a step relative to each parameter (as MINPACK), or
  ``'cs'`` complex step;
* where scipy returns ``p0`` unchanged for NaN data (``check_finite=False``), lawfit raises,
  saying the data are not finite.
"""
from __future__ import annotations

import inspect
import warnings
from typing import Callable, Optional

import numpy as np
from scipy.optimize import OptimizeResult, OptimizeWarning

from ._packing import validate_bounds, validate_p0
from ._result import covariance
from ._status import Status
from .api import check_options, fit
from .models import Model, get

__all__ = ["curve_fit", "least_squares", "OptimizeWarning"]

_EPS = np.finfo(float).eps


def _jacobian(fun: Callable, p: np.ndarray, f0: np.ndarray, method: str, lower, upper,
              diff_step) -> np.ndarray:
    """Finite-difference or complex-step Jacobian of ``fun`` at ``p`` (MINPACK's steps)."""
    n = p.size
    if method == "cs":
        rel = 1e-20 if diff_step is None else diff_step
        J = np.empty((f0.size, n))
        for j in range(n):
            h = rel * max(1.0, abs(p[j]))
            q = p.astype(complex)
            q[j] += 1j * h
            try:
                fj = np.asarray(fun(q))
            except TypeError as exc:
                raise ValueError(f"jac: 'cs' needs a function that accepts complex "
                                 f"parameters ({exc})") from None
            J[:, j] = fj.imag / h
        return J
    rel = (_EPS ** 0.5 if method == "2-point" else _EPS ** (1 / 3)) if diff_step is None \
        else diff_step
    J = np.empty((f0.size, n))
    for j in range(n):
        h = rel * abs(p[j]) if p[j] != 0 else rel
        if method == "2-point":
            if p[j] + h > upper[j]:
                h = -h
            q = p.copy()
            q[j] = p[j] + h
            h = q[j] - p[j]  # the step actually taken
            J[:, j] = (np.asarray(fun(q), dtype=float) - f0) / h
        else:
            lo, hi = p.copy(), p.copy()
            lo[j] -= h
            hi[j] += h
            if lo[j] < lower[j]:      # one-sided second-order forward difference
                hi2 = p.copy()
                hi2[j] += 2 * h
                J[:, j] = (-3 * f0 + 4 * np.asarray(fun(hi), float)
                           - np.asarray(fun(hi2), float)) / (2 * h)
            elif hi[j] > upper[j]:    # and backward
                lo2 = p.copy()
                lo2[j] -= 2 * h
                J[:, j] = (3 * f0 - 4 * np.asarray(fun(lo), float)
                           + np.asarray(fun(lo2), float)) / (2 * h)
            else:
                J[:, j] = (np.asarray(fun(hi), float) - np.asarray(fun(lo), float)) / (2 * h)
    return J


def _solve_callable(fun, jac, p0, lower, upper, *, loss, f_scale, ftol, xtol, gtol,
                    max_nfev, diff_step, weights=None):
    """Run the reference solver on one problem given by a residual function."""
    from .reference import solve

    if not (callable(jac) or jac in ("2-point", "3-point", "cs")):
        raise ValueError(f"jac: expected a callable, '2-point', '3-point' or 'cs', got {jac!r}")

    def residual_fn(P, idx):
        p = P[0]
        with np.errstate(all="ignore"):
            r = np.atleast_1d(np.asarray(fun(p), dtype=float))
            J = np.atleast_2d(np.asarray(jac(p), dtype=float)) if callable(jac) else \
                _jacobian(fun, p, r, jac, lower[0], upper[0], diff_step)
        return r[None, :], J.reshape(1, r.size, p.size)

    return solve(residual_fn, p0, lower, upper, weights=weights, loss=loss, f_scale=f_scale,
                 ftol=ftol, xtol=xtol, gtol=gtol, max_nfev=max_nfev)


def least_squares(fun, x0, jac="2-point", bounds=(-np.inf, np.inf), method="trf", ftol=1e-8,
                  xtol=1e-8, gtol=1e-8, x_scale=None, loss="linear", f_scale=1.0,
                  diff_step=None, tr_solver=None, tr_options=None, jac_sparsity=None,
                  max_nfev=None, verbose=0, args=(), kwargs=None) -> OptimizeResult:
    """Mirror of ``scipy.optimize.least_squares`` for one problem (NumPy reference path).

    ``method``, ``x_scale``, ``tr_solver``, ``tr_options``, ``jac_sparsity`` and ``verbose``
    are accepted for compatibility; lawfit always runs its bounded Levenberg-Marquardt with
    Jacobian-based parameter scaling.  Returns an ``OptimizeResult`` with scipy's fields.
    """
    kwargs = kwargs or {}
    x0 = np.atleast_1d(np.asarray(x0, dtype=float))
    if x0.ndim != 1:
        raise ValueError(f"x0: expected a 1-D array, got shape {x0.shape}")
    n = x0.size
    names = [f"x[{j}]" for j in range(n)]
    lower, upper = validate_bounds(bounds, 1, names)
    p0 = x0[None, :]
    validate_p0(p0, lower, upper, names, arg="x0")
    max_nfev = check_options(loss, f_scale, ftol, xtol, gtol, max_nfev, n)

    def f(p):
        return np.atleast_1d(fun(p, *args, **kwargs))

    jac_fn = (lambda p: jac(p, *args, **kwargs)) if callable(jac) else jac
    with np.errstate(all="ignore"):
        f0 = np.asarray(f(x0), dtype=float)
    if f0.ndim != 1:
        raise ValueError("fun: must return at most 1-D array_like")
    if not np.isfinite(f0).all():
        raise ValueError("Residuals are not finite in the initial point.")
    res = _solve_callable(f, jac_fn, p0, lower, upper, loss=loss, f_scale=f_scale, ftol=ftol,
                          xtol=xtol, gtol=gtol, max_nfev=max_nfev, diff_step=diff_step)
    x = res["x"][0]
    status = int(res["status"][0])
    J = res["jac"][0]
    fs = res["fun"][0]
    with np.errstate(all="ignore"):
        fun_x = np.asarray(f(x), dtype=float)
    return OptimizeResult(
        x=x, cost=float(res["cost"][0]), fun=fun_x, jac=J, grad=J.T @ fs,
        optimality=float(res["optimality"][0]), active_mask=res["active_mask"][0].astype(int),
        nfev=int(res["nfev"][0]), njev=int(res["njev"][0]), nit=int(res["nit"][0]),
        status=status, message=Status(status).message, success=status > 0,
    )


def _default_p0(f, n_hint: Optional[int], lower, upper) -> np.ndarray:
    """scipy's default start: ones, or a feasible point when there are bounds."""
    if n_hint is None:
        sig = inspect.signature(f)
        n_hint = len(sig.parameters) - 1
        if n_hint < 1:
            raise ValueError("p0: cannot determine the number of fit parameters")
    lb = np.broadcast_to(lower, (n_hint,)).astype(float)
    ub = np.broadcast_to(upper, (n_hint,)).astype(float)
    p0 = np.ones(n_hint)
    both, lo_only, hi_only = (np.isfinite(lb) & np.isfinite(ub), np.isfinite(lb) & ~np.isfinite(ub),
                              ~np.isfinite(lb) & np.isfinite(ub))
    p0[both] = 0.5 * (lb[both] + ub[both])
    p0[lo_only] = lb[lo_only] + 1
    p0[hi_only] = ub[hi_only] - 1
    return p0


_CURVE_FIT_KW = {"ftol", "xtol", "gtol", "max_nfev", "maxfev", "loss", "f_scale", "diff_step",
                 "residuals", "backend", "x_scale", "verbose", "tr_solver"}


def curve_fit(f, xdata, ydata, p0=None, sigma=None, absolute_sigma=False, check_finite=None,
              bounds=(-np.inf, np.inf), method=None, jac=None, *, full_output=False,
              nan_policy=None, **kwargs):
    """Mirror of ``scipy.optimize.curve_fit``: returns ``popt, pcov`` (and, with
    ``full_output``, ``infodict, mesg, ier``).

    ``f`` may be a Python callable ``f(xdata, *params)`` or a built-in model (its name or
    ``lawfit.models.<name>``, run on the compiled backend).  Extra keyword arguments:
    ``ftol``, ``xtol``, ``gtol``, ``max_nfev`` (or ``maxfev``), ``loss``, ``f_scale``,
    ``diff_step``, and lawfit's ``residuals="log"`` and ``backend``.
    """
    unknown = set(kwargs) - _CURVE_FIT_KW
    if unknown:
        raise TypeError(f"curve_fit() got unexpected keyword argument(s) {sorted(unknown)}")
    if method not in (None, "lm", "trf", "dogbox"):
        raise ValueError(f"method: expected 'lm', 'trf' or 'dogbox', got {method!r}")
    if nan_policy not in (None, "raise", "omit", "propagate"):
        raise ValueError(f"nan_policy: expected 'raise', 'omit' or 'propagate', got {nan_policy!r}")
    ftol = kwargs.get("ftol", 1e-8)
    xtol = kwargs.get("xtol", 1e-8)
    gtol = kwargs.get("gtol", 1e-8)
    max_nfev = kwargs.get("max_nfev", kwargs.get("maxfev"))
    loss = kwargs.get("loss", "linear")
    f_scale = kwargs.get("f_scale", 1.0)
    residuals = kwargs.get("residuals", "linear")
    if residuals not in ("linear", "log"):
        raise ValueError(f"residuals: expected 'linear' or 'log', got {residuals!r}")

    builtin = isinstance(f, (str, Model))
    model = get(f) if builtin else None
    if not builtin and not callable(f):
        raise ValueError("f: expected a callable f(xdata, *params) or a built-in model name")

    ydata = np.asarray(ydata, dtype=float)
    if ydata.ndim != 1 or ydata.size == 0:
        raise ValueError(f"ydata: expected a non-empty 1-D array, got shape {ydata.shape}")
    xdata = np.asarray(xdata, dtype=float) if not isinstance(xdata, np.ndarray) or \
        xdata.dtype.kind in "biu" else xdata
    sig = None
    if sigma is not None:
        sig = np.asarray(sigma, dtype=float)
        if sig.ndim != 1 or sig.shape != ydata.shape:
            raise ValueError(f"sigma: expected a 1-D array shaped like ydata {ydata.shape} "
                             "(a 2-D covariance matrix is not supported)")
        if (sig <= 0).any():
            raise ValueError("sigma: must be > 0")
    if check_finite is None:
        check_finite = nan_policy is None
    finite_y = np.isfinite(ydata)
    finite_x = np.isfinite(xdata) if xdata.dtype.kind == "f" else np.ones(xdata.shape, bool)
    if finite_x.ndim > 1:
        finite_x = finite_x.all(axis=tuple(range(finite_x.ndim - 1))) \
            if finite_x.shape[-1] == ydata.size else finite_x.all(axis=-1)
    if check_finite or nan_policy == "raise":
        if not finite_y.all():
            raise ValueError("ydata: contains NaN or inf")
        if not finite_x.all():
            raise ValueError("xdata: contains NaN or inf")
    if nan_policy == "omit":
        keep = finite_y & finite_x
        ydata = ydata[keep]
        xdata = xdata[..., keep] if xdata.ndim > 1 and xdata.shape[-1] == keep.size else \
            xdata[keep]
        sig = sig[keep] if sig is not None else None

    n_hint = model.n_params if builtin else (np.size(p0) if p0 is not None else None)
    names = list(model.param_names) if builtin else [f"p[{j}]" for j in range(n_hint or 0)]
    if p0 is None:
        if builtin and model.has_guess:
            p0_arr = None
        else:
            lb, ub = bounds
            p0_arr = _default_p0(f, n_hint, np.asarray(lb, float), np.asarray(ub, float))
    else:
        p0_arr = np.atleast_1d(np.asarray(p0, dtype=float))
    n = model.n_params if builtin else p0_arr.size
    if not names:
        names = [f"p[{j}]" for j in range(n)]
    lower, upper = validate_bounds(bounds, 1, names)
    if p0_arr is not None:
        if p0_arr.shape != (n,):
            raise ValueError(f"p0: expected shape ({n},), got {p0_arr.shape}")
        validate_p0(p0_arr[None, :], lower, upper, names)
    max_nfev = check_options(loss, f_scale, ftol, xtol, gtol, max_nfev, n)
    # scipy: method "lm" (its default without bounds) reports a singular covariance as inf,
    # "trf" (with bounds) as the pseudo-inverse.
    unbounded = bool(np.isinf(lower).all() and np.isinf(upper).all())
    singular = "inf" if method == "lm" or (method is None and unbounded) else "pinv"

    if builtin:
        r = fit(model, xdata.T if model.n_inputs > 1 and xdata.ndim == 2 and
                xdata.shape[0] == model.n_inputs and xdata.shape[1] != model.n_inputs
                else xdata, ydata, p0=p0_arr, sigma=sig, bounds=(lower, upper), loss=loss,
                f_scale=f_scale, residuals=residuals, ftol=ftol, xtol=xtol, gtol=gtol,
                max_nfev=max_nfev, backend=kwargs.get("backend", "auto"), return_cov=True,
                absolute_sigma=absolute_sigma, singular_cov=singular)
        popt, pcov = r.x[0], r.cov[0]
        status, nfev = int(r.status[0]), int(r.nfev[0])
        with np.errstate(all="ignore"):
            fvec = model(xdata.T if model.n_inputs > 1 and xdata.shape[-1] != model.n_inputs
                         else xdata, *popt) - ydata
    else:
        log = residuals == "log"
        with np.errstate(all="ignore"):
            t = np.log(ydata) if log else ydata
        inv_s = 1.0 / sig if sig is not None else 1.0

        def model_fn(p):
            return np.asarray(f(xdata, *p))

        def resid(p):
            v = model_fn(p)
            return ((np.log(v) if log else v) - t) * inv_s

        def user_jac(p):
            J = np.asarray(jac(xdata, *p), dtype=float)
            if log:
                J = J / model_fn(p)[:, None]
            return J * (inv_s[:, None] if sig is not None else 1.0)

        jac_fn = user_jac if callable(jac) else (jac if jac is not None else "2-point")
        with np.errstate(all="ignore"):
            f0 = resid(p0_arr)
        if f0.shape != ydata.shape:
            raise ValueError(f"f: returned shape {np.shape(f0)}, expected {ydata.shape} like ydata")
        if not np.isfinite(t).all() or (sig is not None and not np.isfinite(sig).all()):
            raise ValueError("ydata: the data are not finite (NaN or inf, or y <= 0 with log "
                             "residuals); scipy would return p0 unchanged, lawfit refuses")
        res = _solve_callable(resid, jac_fn, p0_arr[None, :], lower, upper, loss=loss,
                              f_scale=f_scale, ftol=ftol, xtol=xtol, gtol=gtol,
                              max_nfev=max_nfev, diff_step=kwargs.get("diff_step"))
        popt = res["x"][0]
        status, nfev = int(res["status"][0]), int(res["nfev"][0])
        pcov = covariance(res["jtj"], res["cost"], np.array([ydata.size]),
                          (lower == upper), absolute_sigma=absolute_sigma,
                          singular=singular)[0]
        with np.errstate(all="ignore"):
            fvec = model_fn(popt) - ydata

    if status == Status.NONFINITE_INITIAL:
        raise ValueError("Residuals are not finite in the initial point.")
    if status <= 0:
        msg = Status(status).message
        if status == Status.NONFINITE_DATA:
            msg += " (scipy would return p0 unchanged here; lawfit refuses)"
        raise RuntimeError("Optimal parameters not found: " + msg)
    if not np.isfinite(pcov).all():
        warnings.warn("Covariance of the parameters could not be estimated",
                      category=OptimizeWarning, stacklevel=2)
    if full_output:
        return popt, pcov, {"nfev": nfev, "fvec": fvec}, Status(status).message, status
    return popt, pcov
