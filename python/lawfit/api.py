"""``lawfit.fit``: the batched call."""
from __future__ import annotations

from typing import Optional, Union

import numpy as np

from . import _backends
from ._packing import LOSSES, pack
from ._result import FitResult, covariance
from .models import Model, get

__all__ = ["fit"]


def check_options(loss: str, f_scale: float, ftol: float, xtol: float, gtol: float,
                  max_nfev: Optional[int], n_params: int) -> int:
    """Validate the solver options (ValueError naming the argument); returns max_nfev."""
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
    if not (_is_real(f_scale) and np.isfinite(f_scale) and f_scale > 0):
        raise ValueError(f"f_scale: must be a positive finite number, got {f_scale!r}")
    for name, tol in (("ftol", ftol), ("xtol", xtol), ("gtol", gtol)):
        if not (_is_real(tol) and np.isfinite(tol) and tol >= 0):
            raise ValueError(f"{name}: must be a finite number >= 0, got {tol!r}")
    if max_nfev is None:
        return 100 * n_params
    return positive_int(max_nfev, "max_nfev")


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def positive_int(value, name: str) -> int:
    """``value`` as an int >= 1 (an integral float is fine), else ValueError naming it."""
    if not (_is_real(value) and np.isfinite(value) and 1 <= value < 2**31
            and int(value) == value):
        raise ValueError(f"{name}: must be a positive integer or None, got {value!r}")
    return int(value)


def _from_frame(data, x, y, sigma, weights, groups):
    """Resolve column names of a DataFrame into arrays."""
    def col(v):
        if v is None:
            return None
        if isinstance(v, str):
            if v not in data.columns:
                raise ValueError(f"data: has no column {v!r}")
            return data[v].to_numpy(dtype=float)
        return v

    if isinstance(x, (list, tuple)) and all(isinstance(c, str) for c in x):
        xs = np.column_stack([col(c) for c in x])
    else:
        xs = col(x)
    labels = None
    label_names = tuple(groups) if isinstance(groups, (list, tuple)) else (
        (groups,) if isinstance(groups, str) else None)
    if isinstance(groups, (list, tuple)) and all(isinstance(c, str) for c in groups):
        import pandas as pd

        missing = [c for c in groups if c not in data.columns]
        if missing:
            raise ValueError(f"groups: data has no column(s) {missing}")
        codes, uniques = pd.MultiIndex.from_frame(data[list(groups)]).factorize(sort=True)
        labels = np.empty(len(uniques), dtype=object)
        labels[:] = list(uniques)  # one tuple per group
        groups = codes
    elif isinstance(groups, str):
        if groups not in data.columns:
            raise ValueError(f"groups: data has no column {groups!r}")
        groups = data[groups].to_numpy()
    return xs, col(y), col(sigma), col(weights), groups, labels, label_names


def residuals_at(packed, params: np.ndarray):
    """Each point's residual (before the robust loss) and its Jacobian at ``params`` (P, n),
    from the compiled model (the same code the solver ran)."""
    from . import _core

    rows = np.repeat(np.arange(packed.n_problems), packed.n_points)
    p = np.ascontiguousarray(params[rows])
    native_log = packed.log_residuals and any(
        d["name"] == packed.model.name and d["has_log"] for d in _core.models())
    with np.errstate(all="ignore"):
        f, J = _core.evaluate_model(packed.model.name, p, packed.x, native_log)
        if packed.log_residuals and not native_log:
            J = J / f[:, None]
            f = np.log(f)
        r = f - packed.t
        if packed.sigma is not None:
            r = r / packed.sigma
            J = J / packed.sigma[:, None]
    return r, J


def fit(
    model: Union[str, Model],
    x=None,
    y=None,
    *,
    p0=None,
    sigma=None,
    weights=None,
    groups=None,
    data=None,
    bounds=(-np.inf, np.inf),
    loss: str = "linear",
    f_scale: float = 1.0,
    residuals: str = "linear",
    ftol: float = 1e-8,
    xtol: float = 1e-8,
    gtol: float = 1e-8,
    max_nfev: Optional[int] = None,
    backend: str = "auto",
    n_threads: Optional[int] = None,
    return_cov: bool = False,
    absolute_sigma: bool = False,
    singular_cov: str = "inf",
    return_residuals: bool = False,
) -> FitResult:
    """Fit a built-in model to every problem of a batch in one call.

    Parameters
    ----------
    model : str or lawfit.models.Model
        A built-in model (``lawfit.models.available()``).
    x, y : arrays or lists of arrays
        The batch: lists of per-problem arrays; a padded 2-D ``y`` (problems x points, NaN
        for missing) with ``x`` of the same shape or one shared grid; or flat arrays with a
        ``groups`` label per point.  A flat ``y`` without groups is one problem.  A model with
        several inputs (``N``, ``D``) takes ``x`` with a trailing axis of that size.
    p0 : array, optional
        Start, shape (n_params,) for all problems or (problems, n_params).  Defaults to the
        model's data-driven guess where it has one.
    sigma : optional
        Per-point uncertainty, shaped like ``y``; residuals are divided by it.
    weights : optional
        Per-point nonnegative weights (e.g. bootstrap multiplicities) multiplying each point's
        cost; 0 drops a point.
    groups : optional
        A label per point (with flat ``x``/``y``), or column name(s) with ``data``.
    data : pandas.DataFrame, optional
        When given, ``x`` (one name or a list), ``y``, ``sigma``, ``weights`` and ``groups``
        may be column names.
    bounds : (lower, upper)
        Scalars, (n_params,) or (problems, n_params); ``lower == upper`` fixes a parameter.
    loss, f_scale
        Robust loss as in ``scipy.optimize.least_squares``: ``linear``, ``soft_l1``,
        ``huber``, ``cauchy``, ``arctan``.
    residuals : {"linear", "log"}
        ``f - y`` or ``log f - log y`` (the usual choice for scaling laws).
    ftol, xtol, gtol, max_nfev
        Termination tests with scipy's meanings (see ``cpp/include/lawfit/options.h``);
        ``max_nfev`` defaults to ``100 * n_params``.
    backend : {"auto", "cpu", "cuda", "numpy"}
        ``auto`` uses the compiled CPU backend.
    n_threads : int, optional
        CPU threads (default: all cores).  Results do not depend on it.
    return_cov : bool
        Also compute each problem's covariance, as ``curve_fit`` does (scaled by the
        residual variance unless ``absolute_sigma``).  Where the data do not determine a
        free parameter, the covariance is ``inf`` (``singular_cov="inf"``) or the
        pseudo-inverse (``"pinv"``).
    return_residuals : bool
        Also return each point's residual at the solution, ``(f - y) / sigma`` (or
        ``(log f - log y) / sigma``), and its Jacobian: ``FitResult.fun`` (points,) and
        ``FitResult.jac`` (points, n_params), problem ``i`` owning rows
        ``offsets[i]:offsets[i+1]`` (``FitResult.residuals(i)`` slices them).

    Returns
    -------
    FitResult
        Arrays with the batch dimension first; ``status`` says per problem why it stopped.
    """
    m = get(model)
    labels = label_names = None
    if data is not None:
        x, y, sigma, weights, groups, labels, label_names = _from_frame(data, x, y, sigma,
                                                                        weights, groups)
    if x is None or y is None:
        raise ValueError("x, y: both are required")
    max_nfev = check_options(loss, f_scale, ftol, xtol, gtol, max_nfev, m.n_params)
    if n_threads is not None:
        n_threads = positive_int(n_threads, "n_threads")
    if singular_cov not in ("inf", "pinv"):
        raise ValueError(f"singular_cov: expected 'inf' or 'pinv', got {singular_cov!r}")
    name = _backends.resolve(backend)
    packed = pack(m, x, y, p0=p0, sigma=sigma, weights=weights, groups=groups, bounds=bounds,
                  residuals=residuals)
    if labels is not None:
        packed.labels = labels[packed.labels.astype(int)]
    out = _backends.run(name, packed, loss=loss, f_scale=f_scale, ftol=ftol, xtol=xtol,
                        gtol=gtol, max_nfev=max_nfev, n_threads=n_threads,
                        return_jtj=return_cov)
    n_points = packed.n_points
    cov = None
    if return_cov:
        if packed.weights is not None:
            row = np.repeat(np.arange(len(n_points)), n_points)
            pts = np.bincount(row, weights=packed.weights, minlength=len(n_points))
        else:
            pts = n_points
        cov = covariance(out["jtj"], out["cost"], pts, packed.lower == packed.upper,
                         absolute_sigma=absolute_sigma, singular=singular_cov)
    fun = jac = None
    if return_residuals:
        fun, jac = residuals_at(packed, out["x"])
    return FitResult(m, out, n_points, labels=packed.labels, label_names=label_names, cov=cov,
                     offsets=packed.offsets, fun=fun, jac=jac,
                     backend=name)
