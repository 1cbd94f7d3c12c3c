"""The batched Levenberg-Marquardt of cpp/include/lawfit/lm.h ("The algorithm"), in NumPy.

Written from the specification in that header's top comment, step by step, not from its C++
code, so that the two can check each other.  The batch is vectorised: every per-problem
quantity (point p, cost F, gradient g, Gauss-Newton matrix A, scales D, damping lambda and
nu, counters, status) is an array with the batch as its first axis, and each pass of the
main loop advances every problem that is still running by one step of the spec's loop 4.

Two entry points:

* :func:`solve` works on any residual function over a padded ``(B, m)`` batch;
* :func:`fit_packed` takes the same packed ragged batch as the compiled ``lawfit._core.fit``,
  performs step 1's data checks, pads, and calls :func:`solve` with a built-in model.

Notation follows the spec: r the raw residuals (divided by sigma), f_s and J_s the residuals
and Jacobian after the robust-loss scaling (and sqrt of the weight), F = sum of the point
costs, g = J_s^T f_s, A = J_s^T J_s, S = ||f_s||^2.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import numpy as np

from .._status import Status
from .models import MODELS, RefModel


def _model(model) -> RefModel:
    """A built-in's reference twin by name, or a model's own (a user's law's)."""
    if isinstance(model, RefModel):
        return model
    if model not in MODELS:
        raise ValueError(f"model: unknown model '{model}'")
    return MODELS[model]

__all__ = ["solve", "fit_packed", "STATUS"]

# Status codes: the package's one table (lawfit.Status, checked against status.h).
MAX_NFEV, GTOL, FTOL, XTOL, FTOL_XTOL = (int(Status[k]) for k in
                                          ("MAX_NFEV", "GTOL", "FTOL", "XTOL", "FTOL_XTOL"))
INVALID_INPUT, NONFINITE_DATA, TOO_FEW_POINTS, NONFINITE_INITIAL, NO_PROGRESS = (
    int(Status[k]) for k in ("INVALID_INPUT", "NONFINITE_DATA", "TOO_FEW_POINTS",
                             "NONFINITE_INITIAL", "NO_PROGRESS"))
NOT_RUN = -100  # internal: still running
STATUS = {int(s): s.name for s in Status}

ACCEPT_RATIO = 1e-4  # accept a step when actual / predicted reduction exceeds this
_EPS = np.finfo(np.float64).eps
MIN_DAMPING = 1e-30  # the Gauss-Newton step's damping: just enough to define it
RADIUS_FACTOR = 100.0  # the first radius, relative to ||d p0|| (MINPACK's factor)
RADIUS_ITERATIONS = 4  # Newton steps on the secular equation per iteration, at most
# The convergence check's damping (relative to diag(A)) and the least relative cost reduction
# and step it asks for, whatever ftol and xtol: what rounding lets the solver resolve.
ROUNDING_FLOOR = 1e4 * _EPS
# Spec 4b's ftol test at p asks the next step to gain at most this share of ftol; gains
# below ROUNDING_GAIN are rounding, whatever ftol asks.
SETTLED_SHARE = 0.01
ROUNDING_GAIN = 16 * _EPS

ResidualFn = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------------------
# Robust losses (scipy.optimize.least_squares'): rho(z), rho'(z), rho''(z)
# --------------------------------------------------------------------------------------


def _soft_l1(z):
    t = 1.0 + z
    s = np.sqrt(t)
    return 2.0 * (s - 1.0), 1.0 / s, -0.5 / (t * s)


def _huber(z):
    inner = z <= 1.0
    s = np.sqrt(np.where(inner, 1.0, z))  # the outer branch evaluated only where it is used
    return (
        np.where(inner, z, 2.0 * s - 1.0),
        np.where(inner, 1.0, 1.0 / s),
        np.where(inner, 0.0, -0.5 / (s * s * s)),
    )


def _cauchy(z):
    t = 1.0 + z
    return np.log1p(z), 1.0 / t, -1.0 / (t * t)


def _arctan(z):
    t = 1.0 + z * z
    return np.arctan(z), 1.0 / t, -2.0 * z / (t * t)


_LOSSES = {"soft_l1": _soft_l1, "huber": _huber, "cauchy": _cauchy, "arctan": _arctan}
LOSSES = ("linear",) + tuple(_LOSSES)


def _loss_scaling(r, w, loss, f_scale):
    """Per-point cost and the factors turning (r, J row) into (f_s, J_s row).

    As scipy's scale_for_robust_loss_function, with the point weight w folded in:
    cost = 0.5 C^2 rho(z) w with z = (r / C)^2; J_scale = sqrt(max(rho' + 2 rho'' z, eps));
    f_s = sqrt(w) rho' / J_scale * r; J_s = sqrt(w) J_scale * J.  ``loss`` is a name of
    ``LOSSES`` or a callable ``loss(z) -> (rho, rho', rho'')``, each shaped like z.
    """
    sw = np.sqrt(w)
    if loss == "linear":
        return 0.5 * w * r * r, sw, sw
    z = (r / f_scale) ** 2
    rho, d1, d2 = loss(z) if callable(loss) else _LOSSES[loss](z)
    js = d1 + 2.0 * d2 * z  # = rho' + 2 (rho'' / C^2) r^2
    js = np.sqrt(np.where(js < _EPS, _EPS, js))
    return 0.5 * f_scale**2 * rho * w, sw * d1 / js, sw * js


# --------------------------------------------------------------------------------------
# Step 2: one evaluation
# --------------------------------------------------------------------------------------


class _Eval:
    """The quantities of one evaluation of k problems (spec step 2)."""

    __slots__ = ("F", "g", "A", "S", "fs", "Js", "finite")

    def __init__(self, F, g, A, S, fs, Js, finite):
        self.F, self.g, self.A, self.S = F, g, A, S
        self.fs, self.Js, self.finite = fs, Js, finite


def _evaluate(residual_fn, P, idx, weights, loss, f_scale) -> _Eval:
    r, J = residual_fn(P, idx)
    r = np.asarray(r, dtype=np.float64)
    J = np.asarray(J, dtype=np.float64)
    w = weights[idx]
    used = w > 0  # points with weight 0 (padding) take no part in anything
    cost, rf, jf = _loss_scaling(r, np.where(used, w, 0.0), loss, f_scale)
    cost = np.where(used, cost, 0.0)
    fs = np.where(used, rf * r, 0.0)
    Js = np.where(used[..., None], jf[..., None] * J, 0.0)
    F = cost.sum(axis=1)
    g = np.einsum("kmn,km->kn", Js, fs)
    A = np.einsum("kmi,kmj->kij", Js, Js)
    S = np.einsum("km,km->k", fs, fs)
    finite = np.isfinite(F) & np.isfinite(g).all(axis=1) & np.isfinite(A).all(axis=(1, 2))
    return _Eval(F, g, A, S, fs, Js, finite)


# --------------------------------------------------------------------------------------
# Step 4d: batched Cholesky solve
# --------------------------------------------------------------------------------------


def _cholesky_solve(M, b):
    """Solve M x = b for a stack of small SPD matrices M (k, n, n) by Cholesky.

    Returns (x, ok); ok[i] is False when problem i met a non-positive or non-finite pivot
    (its x is then meaningless).  One problem's failure never affects another's.
    """
    k, n, _ = M.shape
    L = np.zeros_like(M)
    ok = np.ones(k, dtype=bool)
    for j in range(n):
        pivot = M[:, j, j] - np.einsum("ki,ki->k", L[:, j, :j], L[:, j, :j])
        ok &= np.isfinite(pivot) & (pivot > 0)
        ljj = np.sqrt(np.where(pivot > 0, pivot, 1.0))
        L[:, j, j] = ljj
        L[:, j + 1 :, j] = (
            M[:, j + 1 :, j] - np.einsum("kij,kj->ki", L[:, j + 1 :, :j], L[:, j, :j])
        ) / ljj[:, None]
    y = np.zeros_like(b)  # L y = b
    for i in range(n):
        y[:, i] = (b[:, i] - np.einsum("kj,kj->k", L[:, i, :i], y[:, :i])) / L[:, i, i]
    x = np.zeros_like(b)  # L^T x = y
    for i in range(n - 1, -1, -1):
        x[:, i] = (y[:, i] - np.einsum("kj,kj->k", L[:, i + 1 :, i], x[:, i + 1 :])) / L[:, i, i]
    return x, ok


def _held(p, g, lower, upper, fixed):
    """Spec 4a: fixed, or at a bound with the gradient pushing outward."""
    return fixed | ((p <= lower) & (g > 0)) | ((p >= upper) & (g < 0))


def _scaled_norm(D, v, fixed):
    """||sqrt(D) v|| over the free parameters, per problem."""
    return np.sqrt(np.where(fixed, 0.0, D * (v * v)).sum(axis=1))


def _predicted(A, g, step):
    """The reduction the quadratic model predicts for ``step``: -(g . s + 0.5 s^T A s)."""
    return -(np.einsum("kj,kj->k", g, step) + 0.5 * np.einsum("ki,kij,kj->k", step, A, step))


def _damped_step(A, g, D, lam, held):
    """Solve (A + lam diag(D)) delta = -g over the parameters not held (delta_j = 0 for held
    ones: their rows and columns become the identity with a zero right-hand side)."""
    n = A.shape[-1]
    eye = np.eye(n, dtype=bool)
    M = A + lam[:, None, None] * (D[:, :, None] * eye)
    M = np.where(held[:, :, None] | held[:, None, :], 0.0, M)
    M = np.where(held[:, :, None] & eye, 1.0, M)
    delta, ok = _cholesky_solve(M, np.where(held, 0.0, -g))
    return np.where(held, 0.0, delta), ok


def _settling_step(p, g, A, D, lower, upper, fixed, u, kappa):
    """Spec 4b/4g's settling step at the current point: the Gauss-Newton step of the model
    A + u u^T / kappa (the curvature the cost showed beyond A along the last accepted step;
    none where kappa = 0), damped by ROUNDING_FLOOR times diag(A) (the parameters held at p
    and columns with A_jj = 0 held).
    Returns (ok, the reduction that model predicts, its length ||d delta||)."""
    ajj = np.diagonal(A, axis1=1, axis2=2)
    held = _held(p, g, lower, upper, fixed) | ~(ajj > 0)
    has = kappa > 0
    M = np.where(has[:, None, None],
                 A + u[:, :, None] * (u[:, None, :] / np.where(has, kappa, 1.0)[:, None, None]),
                 A)
    delta, ok = _damped_step(M, g, ajj, np.full(len(p), ROUNDING_FLOOR), held)
    ok &= (ajj > 0).any(axis=1)  # as gtol: a zero Jacobian settles nothing
    return ok, _predicted(M, g, delta), _scaled_norm(D, delta, fixed)


def _no_progress_left(p, F, g, A, D, lower, upper, fixed, u, kappa, ftol, xtol):
    """Spec 4g's convergence check at the current point: the settling step predicts a
    reduction of at most max(ftol, ROUNDING_FLOOR) F, or is at most max(xtol, ROUNDING_FLOOR)
    ||d p|| long."""
    ok, gain, length = _settling_step(p, g, A, D, lower, upper, fixed, u, kappa)
    return ok & ((gain <= max(ftol, ROUNDING_FLOOR) * F)
                 | (length <= max(xtol, ROUNDING_FLOOR) * _scaled_norm(D, p, fixed)))


# --------------------------------------------------------------------------------------
# Steps 2-5: the solver
# --------------------------------------------------------------------------------------


def solve(
    residual_fn: ResidualFn,
    p0,
    lower,
    upper,
    *,
    weights=None,
    loss: str = "linear",
    f_scale: float = 1.0,
    ftol: float = 1e-8,
    xtol: float = 1e-8,
    gtol: float = 1e-8,
    max_nfev: Optional[int] = None,
    max_nfev_cap: Optional[int] = None,
    initial_damping: float = 1e-3,
    max_damping: float = 1e100,
    scales=None,
    on_iteration: Optional[Callable[[Dict[str, np.ndarray]], None]] = None,
) -> Dict[str, np.ndarray]:
    """Solve B bounded nonlinear least-squares problems at once (spec steps 2-5).

    Parameters
    ----------
    residual_fn : callable ``(P, idx) -> (r, J)``
        ``P`` (k, n) are trial points of the problems ``idx`` (int array into 0..B-1);
        returns the raw residuals ``r`` (k, m) and their Jacobian ``J`` (k, m, n), before the
        robust loss and the weights (already divided by sigma, in log space if wanted).
    p0, lower, upper : (B, n) arrays
        Start and bounds; a parameter with ``lower == upper`` is fixed.
    weights : (B, m) array, optional
        Point weights (0 = not used, e.g. padding).  Default: all ones.
    loss, f_scale : robust loss ("linear", "soft_l1", "huber", "cauchy", "arctan", or a
        callable ``loss(z) -> (rho, rho', rho'')`` of z = (r / f_scale)^2, each shaped like
        z) and its scale, as in scipy.optimize.least_squares.
    ftol, xtol, gtol, max_nfev, max_nfev_cap, initial_damping, max_damping : see options.h;
        ``max_nfev`` defaults to 100 * n, ``max_nfev_cap`` to ``max_nfev`` (no extension).
    scales : (B, n) array, optional
        Fixed scales D of the damping term and of xtol's norms (positive; scipy's
        ``x_scale`` s is D = 1 / s^2).  Default: step 3's D, the running maximum of
        diag(A) (MINPACK's scaling, scipy's ``x_scale='jac'``).
    on_iteration : callable, optional
        Called after each pass of step 4 that evaluated a trial point, with a dict of the
        problems that did: ``idx`` (into 0..B-1) and their current ``x``, ``cost``,
        ``nfev``, ``nit`` and ``status`` (``NOT_RUN`` while running).  What it raises
        propagates out of ``solve``.

    Returns
    -------
    dict with ``x`` (B, n), ``cost``, ``optimality`` (B,), ``active_mask`` (B, n) int8,
    ``status``, ``nfev``, ``njev``, ``nit`` (B,) int32, ``jtj`` (B, n, n), and ``fun``
    (B, m), ``jac`` (B, m, n): the scaled residuals f_s and Jacobian J_s at the solution.
    Problems rejected before any evaluation (status -1 or -3) report ``x = p0`` and NaN for
    every float output; a problem with status -4 reports ``x = p0``, the cost at p0,
    ``nfev = njev = 1`` and NaN optimality and jtj.
    """
    if not callable(loss) and loss not in LOSSES:
        raise ValueError(f"loss: unknown loss '{loss}'")
    p0 = np.array(p0, dtype=np.float64, ndmin=2)
    lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), p0.shape)
    upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), p0.shape)
    B, n = p0.shape
    if max_nfev is None:
        max_nfev = 100 * n
    if not max_nfev_cap:  # None or 0: no extension
        max_nfev_cap = max_nfev
    f_scale = float(f_scale)

    with np.errstate(all="ignore"):
        if weights is None:
            # The number of points is only known from the residual function.
            m = np.asarray(residual_fn(p0[:1], np.arange(min(B, 1)))[0]).shape[-1] if B else 0
            weights = np.ones((B, m))
        weights = np.asarray(weights, dtype=np.float64)
        m = weights.shape[1]

        # ---- outputs, initialised for problems that never run ----
        x_out = p0.copy()
        cost = np.full(B, np.nan)
        optimality = np.full(B, np.nan)
        jtj = np.full((B, n, n), np.nan)
        fun = np.full((B, m), np.nan)
        jac = np.full((B, m, n), np.nan)
        active = np.zeros((B, n), dtype=np.int8)
        status = np.full(B, NOT_RUN, dtype=np.int32)
        nfev = np.zeros(B, dtype=np.int32)
        nit = np.zeros(B, dtype=np.int32)

        # ---- the checks of step 1 that concern the solver: too few points, bad start ----
        fixed = ~(lower < upper)
        n_free = (~fixed).sum(axis=1)
        n_used = (weights > 0).sum(axis=1)
        start_ok = (np.isfinite(p0) & (p0 >= lower) & (p0 <= upper)).all(axis=1)
        status[n_used < n_free] = TOO_FEW_POINTS
        status[(status == NOT_RUN) & ~start_ok] = INVALID_INPUT

        # ---- step 2 at p0 ----
        run = np.flatnonzero(status == NOT_RUN)
        p = p0.copy()
        F = np.full(B, np.nan)
        g = np.full((B, n), np.nan)
        A = np.full((B, n, n), np.nan)
        S = np.full(B, np.nan)
        if run.size:
            ev = _evaluate(residual_fn, p[run], run, weights, loss, f_scale)
            F[run], g[run], A[run], S[run] = ev.F, ev.g, ev.A, ev.S
            fun[run], jac[run] = ev.fs, ev.Js
            nfev[run] = 1
            bad = run[~ev.finite]
            status[bad] = NONFINITE_INITIAL
            cost[bad] = F[bad]

        # ---- step 3: scales and damping ----
        diagA = np.diagonal(A, axis1=1, axis2=2)
        D = np.where(diagA > 0, diagA, 1.0)
        if scales is not None:
            D = np.array(np.broadcast_to(np.asarray(scales, dtype=np.float64), (B, n)))
        lam = np.full(B, float(initial_damping))
        nu = np.full(B, 2.0)
        x_norm0 = _scaled_norm(D, p, fixed)
        radius = np.where(x_norm0 > 0, RADIUS_FACTOR * x_norm0, RADIUS_FACTOR)
        first = np.ones(B, dtype=bool)
        budget = np.full(B, max_nfev, dtype=np.int64)
        F_mark = F.copy()  # the cost when the budget was last set
        # the curvature beyond A along the last accepted step (f): u = y - A s, kappa = u . s
        sec_u = np.zeros((B, n))
        sec_k = np.zeros(B)

        # ---- step 4: one pass advances every running problem by one step ----
        while True:
            run = np.flatnonzero(status == NOT_RUN)
            if run.size == 0:
                break
            pr, gr, Ar = p[run], g[run], A[run]
            lo, up, fx = lower[run], upper[run], fixed[run]

            # a. active set
            held = _held(pr, gr, lo, up, fx)

            # b. gtol over free, not held parameters with A_jj > 0
            ajj = np.diagonal(Ar, axis1=1, axis2=2)
            use = ~held & (ajj > 0)
            # sqrt(2 F) stands in for ||f_s||, which robust scaling inflates
            Fr = F[run]
            fnorm = np.sqrt(np.where(Fr > 0, 2.0 * Fr, 1.0))
            scaled_g = np.abs(gr) / (np.sqrt(np.where(use, ajj, 1.0)) * fnorm[:, None])
            gnorm = np.where(use, scaled_g, 0.0).max(axis=1, initial=0.0)
            # (a zero Jacobian, every term underflowed, is a plateau, not a minimum)
            stop_g = (Fr == 0) | ((gnorm <= gtol) & (ajj > 0).any(axis=1))
            status[run[stop_g]] = GTOL
            # ... and ftol at p: the Gauss-Newton step (d's first) predicts at most
            # max(min(SETTLED_SHARE ftol, ROUNDING_FLOOR), ROUNDING_GAIN) F: nothing ftol
            # cares about, and no more than rounding resolves
            # (where the settling step of g, well defined where A is singular, agrees)
            delta, ok = _damped_step(Ar, gr, D[run], np.full(run.size, MIN_DAMPING), held)
            ftol_p = max(min(SETTLED_SHARE * ftol, ROUNDING_FLOOR), ROUNDING_GAIN) * Fr
            stop_f = ~stop_g & ok & (_predicted(Ar, gr, delta) <= ftol_p)
            if stop_f.any():
                ok_s, gain_s, _ = _settling_step(pr, gr, Ar, D[run], lo, up, fx, sec_u[run],
                                                  sec_k[run])
                stop_f &= ok_s & (gain_s <= ftol_p)
            status[run[stop_f]] = FTOL

            # c. evaluation budget, extended by max_nfev while the cost still falls by more
            # than ftol and rounding resolve
            spent = ~stop_g & ~stop_f & (nfev[run] >= budget[run])
            more = spent & (budget[run] < max_nfev_cap) & (F_mark[run] - Fr > max(ftol, ROUNDING_FLOOR) * Fr)
            budget[run[more]] = np.minimum(budget[run[more]] + max_nfev, max_nfev_cap)
            F_mark[run[more]] = Fr[more]
            stop_n = spent & ~more
            status[run[stop_n]] = MAX_NFEV

            keep = ~(stop_g | stop_f | stop_n)
            run, held, delta, ok = run[keep], held[keep], delta[keep], ok[keep]
            pr, gr, Ar = pr[keep], gr[keep], Ar[keep]
            lo, up, fx = lo[keep], up[keep], fx[keep]
            if run.size == 0:
                continue

            # d. the step within the radius: Gauss-Newton's, else lambda from the secular
            #    equation ||d delta(lambda)|| = radius (Newton's method on it, as MINPACK)
            Dr, R = D[run], radius[run]
            q_norm = _scaled_norm(Dr, delta, fx)
            gauss_newton = ok & (q_norm <= 1.1 * R)
            fit = ~gauss_newton
            lam_r = np.where(gauss_newton, MIN_DAMPING, np.maximum(lam[run], MIN_DAMPING))
            nu_r = nu[run]
            for _ in range(RADIUS_ITERATIONS):
                if not fit.any():
                    break
                d_fit, ok_fit = _damped_step(Ar, gr, Dr, lam_r, held)
                q_fit = _scaled_norm(Dr, d_fit, fx)
                delta = np.where(fit[:, None], d_fit, delta)
                ok = np.where(fit, ok_fit, ok)
                q_norm = np.where(fit, q_fit, q_norm)
                fit &= ~(ok_fit & (np.abs(q_fit - R) <= 0.1 * R))
                v = np.where(held, 0.0, Dr * d_fit)
                u, _ = _damped_step(Ar, -v, Dr, lam_r, held)
                vu = np.einsum("kj,kj->k", v, u)
                newton = lam_r + (q_fit - R) / R * (q_fit * q_fit / np.where(vu > 0, vu, 1.0))
                lam_r = np.where(fit & ok_fit, np.where(newton > 0.1 * lam_r, newton, 0.1 * lam_r),
                                 lam_r)
                lam_r = np.where(fit & ~ok_fit, lam_r * nu_r, lam_r)
                nu_r = np.where(fit & ~ok_fit, 2.0 * nu_r, nu_r)
            if fit.any():  # the last lambda's step
                d_fit, ok_fit = _damped_step(Ar, gr, Dr, lam_r, held)
                delta = np.where(fit[:, None], d_fit, delta)
                ok = np.where(fit, ok_fit, ok)
                q_norm = np.where(fit, _scaled_norm(Dr, d_fit, fx), q_norm)
            lam[run], nu[run] = lam_r, nu_r
            # a step that overshoots the radius is shortened to it
            delta = delta * np.where(q_norm > R, R / np.where(q_norm > 0, q_norm, 1.0),
                                     1.0)[:, None]

            failed = run[~ok]  # more damping, then back to d (through a-c, which are unchanged)
            lam[failed] *= nu[failed]
            nu[failed] *= 2.0
            status[failed[lam[failed] > max_damping]] = NO_PROGRESS

            run, pr, gr, Ar = run[ok], pr[ok], gr[ok], Ar[ok]
            lo, up, fx, delta = lo[ok], up[ok], fx[ok], delta[ok]
            if run.size == 0:
                continue

            # e. trial point clipped to the box, predicted reduction, evaluation
            q = pr + delta
            q = np.where(q < lo, lo, q)
            q = np.where(q > up, up, q)
            step = q - pr
            predicted = _predicted(Ar, gr, step)
            ev = _evaluate(residual_fn, q, run, weights, loss, f_scale)
            nfev[run] += 1
            nit[run] += 1
            F_old = F[run]
            actual = np.where(ev.finite, F_old - ev.F, -np.inf)
            pos = predicted > 0
            ratio = np.where(pos, actual / np.where(pos, predicted, 1.0), 0.0)
            # the scaled norms use the scales the step was computed with (before f)
            step_norm = _scaled_norm(D[run], step, fx)
            x_norm = _scaled_norm(D[run], pr, fx)

            # f. accept or reject
            # (a reduction of at most ROUNDING_GAIN F_old is rounding's, not the step's;
            # below ROUNDING_FLOOR F_old the cost's rounding cannot judge a step, and a
            # Gauss-Newton step predicted to gain that little is taken unless the cost rises
            # by more than that)
            resolved = (ratio > ACCEPT_RATIO) & (actual > ROUNDING_GAIN * F_old)
            floor = ROUNDING_FLOOR * F_old
            below_floor = (lam[run] == MIN_DAMPING) & (predicted <= floor) & (actual >= -floor)
            accept = ev.finite & (resolved | below_floor)
            acc = run[accept]
            p[acc] = q[accept]
            F[acc], g[acc], A[acc], S[acc] = ev.F[accept], ev.g[accept], ev.A[accept], ev.S[accept]
            fun[acc], jac[acc] = ev.fs[accept], ev.Js[accept]
            if scales is None:
                D[acc] = np.maximum(D[acc], np.diagonal(ev.A[accept], axis1=1, axis2=2))
            # the curvature the cost showed along a step that lowered it by more than the
            # rounding floor, beyond the Gauss-Newton model's: u = y - A s (y the change of
            # g), kappa = u . s, where kappa exceeds the model's own s^T A s (the residuals'
            # curvature dominates) and what the rounding of g can make (a smaller step keeps
            # the last one's)
            learn = accept & (actual > floor)
            lrn = run[learn]
            sa, ga, gn = step[learn], gr[learn], ev.g[learn]
            As = np.einsum("kij,kj->ki", ev.A[learn], sa)
            ua = (gn - ga) - As
            ka = np.einsum("kj,kj->k", ua, sa)
            noise = ROUNDING_FLOOR * np.einsum("kj,kj->k", np.abs(sa), np.abs(gn) + np.abs(ga))
            seen = (ka > np.einsum("kj,kj->k", As, sa)) & (ka > noise)
            sec_u[lrn] = np.where(seen[:, None], ua, 0.0)
            sec_k[lrn] = np.where(seen, ka, 0.0)
            nu[run] = 2.0
            # the radius, as MINPACK's: at most the first step's length; halved (and at most
            # 5 steps' length; below 0.9 of a rejected Gauss-Newton step, so that the next
            # trial differs) after a poor step; twice the step after a good or a
            # Gauss-Newton one
            R = np.where(first[run], np.minimum(radius[run], step_norm), radius[run])
            shorter = np.where(lam[run] == MIN_DAMPING, 0.9 * step_norm, np.inf)
            R = np.where(~accept, np.minimum(0.5 * np.minimum(R, 10.0 * step_norm), shorter),
                         np.where(ratio < 0.25, 0.5 * np.minimum(R, 10.0 * step_norm),
                                  np.where((ratio >= 0.75) | (lam[run] == MIN_DAMPING),
                                           2.0 * step_norm, R)))
            radius[run] = R
            first[run] = False

            # g. termination tests
            ftol_ok = (
                ev.finite
                & (np.abs(actual) <= ftol * F_old)
                & (predicted <= ftol * F_old)
                & (ratio <= 2.0)
            )
            xtol_ok = step_norm <= xtol * x_norm
            # ... which count only where Gauss-Newton sees no material progress left
            claims = ftol_ok | xtol_ok
            if claims.any():
                c = run[claims]
                converged = _no_progress_left(p[c], F[c], g[c], A[c], D[c], lower[c], upper[c],
                                              fixed[c], sec_u[c], sec_k[c], ftol, xtol)
                ftol_ok[claims] &= converged
                xtol_ok[claims] &= converged
            shrunk = radius[run] <= _EPS * _scaled_norm(D[run], p[run], fx)
            stalled = (lam[run] > max_damping) | shrunk
            new = np.full(run.size, NOT_RUN, dtype=np.int32)
            new[~accept & stalled] = NO_PROGRESS
            new[xtol_ok] = XTOL
            new[ftol_ok] = FTOL
            new[ftol_ok & xtol_ok] = FTOL_XTOL
            status[run] = new
            if on_iteration is not None:
                on_iteration({"idx": run, "x": p[run], "cost": F[run], "nfev": nfev[run],
                              "nit": nit[run], "status": status[run]})

        # ---- step 5: outputs of every problem that was evaluated and finite at p0 ----
        done = np.flatnonzero((nfev > 0) & (status != NONFINITE_INITIAL))
        pd, gd = p[done], g[done]
        held = _held(pd, gd, lower[done], upper[done], fixed[done])
        x_out[done] = pd
        cost[done] = F[done]
        optimality[done] = np.where(held, 0.0, np.abs(gd)).max(axis=1, initial=0.0)
        jtj[done] = A[done] + 0.0  # one zero, as the compiled core reports it
        active[done] = np.where(
            pd <= lower[done], -1, np.where(pd >= upper[done], 1, 0)
        ).astype(np.int8)

    return {
        "x": x_out,
        "cost": cost,
        "optimality": optimality,
        "active_mask": active,
        "status": status,
        "nfev": nfev,
        "njev": nfev.copy(),
        "nit": nit,
        "jtj": jtj,
        "fun": fun,
        "jac": jac,
    }


# --------------------------------------------------------------------------------------
# The packed-batch front end (the contract of lawfit._core.fit)
# --------------------------------------------------------------------------------------


def _as_f64(a, name, shape):
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.shape != tuple(shape):
        want = "(" + ", ".join(str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}")
    return a


def fit_packed(
    model: str,
    x,
    t,
    sigma,
    weights,
    offsets,
    p0,
    lower,
    upper,
    *,
    log_residuals: bool = False,
    loss: str = "linear",
    f_scale: float = 1.0,
    ftol: float = 1e-8,
    xtol: float = 1e-8,
    gtol: float = 1e-8,
    max_nfev: Optional[int] = None,
    max_nfev_cap: Optional[int] = None,
    initial_damping: float = 1e-3,
    n_threads: Optional[int] = None,
    return_jtj: bool = False,
    max_damping: float = 1e100,
) -> Dict[str, np.ndarray]:
    """Solve a packed ragged batch with a built-in model, as ``lawfit._core.fit`` does.

    ``x`` (M, n_inputs), ``t`` (M,) the targets (y, or log y with ``log_residuals``),
    ``sigma`` and ``weights`` (M,) or None, ``offsets`` (P+1,) int64 (problem i owns points
    offsets[i]:offsets[i+1]), ``p0``/``lower``/``upper`` (P, n).  ``n_threads`` is accepted
    and ignored.  Returns x, cost, optimality, active_mask (int8), status, nfev, njev, nit
    (int32) and, with ``return_jtj``, jtj (P, n, n).

    Step 1's checks are made here, per problem, in the spec's order (with step 0: for a
    model with ``log_inputs`` a used point with x <= 0 is non-finite data); the problems that
    pass are padded to a common length with weight-0 points and handed to :func:`solve`.
    Problems stopped by step 1 report x = p0, NaN cost and optimality (and jtj), zero counts
    and a zero active mask.
    """
    mdl = _model(model)
    if loss not in LOSSES:
        raise ValueError(f"loss: unknown loss '{loss}'")
    n, n_in = mdl.n_params, mdl.n_inputs

    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.shape[0] < 1:
        raise ValueError("offsets: expected a 1-D array")
    P = offsets.shape[0] - 1
    t = np.ascontiguousarray(t, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError("t: expected a 1-D array")
    M = t.shape[0]
    x = _as_f64(x, "x", (M, n_in))
    p0 = _as_f64(p0, "p0", (P, n))
    lower = _as_f64(lower, "lower", (P, n))
    upper = _as_f64(upper, "upper", (P, n))
    if offsets[0] != 0 or offsets[-1] != M:
        raise ValueError("offsets: must start at 0 and end at the number of points")
    counts = np.diff(offsets)
    if (counts < 0).any():
        raise ValueError("offsets: must be non-decreasing")
    if sigma is not None:
        sigma = _as_f64(sigma, "sigma", (M,))
    if weights is not None:
        weights = _as_f64(weights, "weights", (M,))
    if max_nfev is None:
        max_nfev = 100 * n
    if max_nfev < 1:
        raise ValueError("max_nfev: must be >= 1")
    if not max_nfev_cap:  # None or 0: no extension
        max_nfev_cap = max_nfev
    if max_nfev_cap < max_nfev:
        raise ValueError("max_nfev_cap: must be 0 (no extension) or >= max_nfev")
    if not f_scale > 0:
        raise ValueError("f_scale: must be > 0")

    w = np.ones(M) if weights is None else weights
    s = np.ones(M) if sigma is None else sigma
    owner = np.repeat(np.arange(P), counts)  # problem of each point

    # ---- steps 0 and 1, per problem, in the spec's order ----
    with np.errstate(invalid="ignore", divide="ignore"):
        # step 0: a model for x > 0 sees log x, so x <= 0 is non-finite data
        inputs = mdl.domain(x)
        counted = ~(w <= 0)  # a NaN weight counts (as bad data)
        good = np.isfinite(w) & np.isfinite(t) & np.isfinite(inputs).all(axis=1)
        if sigma is not None:
            good &= np.isfinite(s) & (s > 0)
    bad_data = np.bincount(owner, weights=counted & ~good, minlength=P) > 0
    n_used = np.bincount(owner, weights=counted, minlength=P)
    n_free = (lower < upper).sum(axis=1)
    start_ok = (np.isfinite(p0) & (p0 >= lower) & (p0 <= upper)).all(axis=1)
    status = np.full(P, NOT_RUN, dtype=np.int32)
    status[bad_data] = NONFINITE_DATA
    status[(status == NOT_RUN) & (n_used < n_free)] = TOO_FEW_POINTS
    status[(status == NOT_RUN) & ~start_ok] = INVALID_INPUT

    out = {
        "x": p0.copy(),
        "cost": np.full(P, np.nan),
        "optimality": np.full(P, np.nan),
        "active_mask": np.zeros((P, n), dtype=np.int8),
        "status": status,
        "nfev": np.zeros(P, dtype=np.int32),
        "njev": np.zeros(P, dtype=np.int32),
        "nit": np.zeros(P, dtype=np.int32),
    }
    if return_jtj:
        out["jtj"] = np.full((P, n, n), np.nan)

    ok = np.flatnonzero(status == NOT_RUN)
    if ok.size == 0:
        return out

    # ---- pad the problems that pass into (k, m_max) arrays; padding has weight 0 ----
    k = ok.size
    m_max = int(counts[ok].max())
    sel = np.isin(owner, ok)
    row = np.searchsorted(ok, owner[sel])  # row of each selected point in the padded arrays
    col = np.arange(M)[sel] - offsets[owner[sel]]
    xp = np.ones((k, m_max, n_in))  # x = 1 keeps every model finite on padding
    tp = np.zeros((k, m_max))
    sp = np.ones((k, m_max))
    wp = np.zeros((k, m_max))
    xp[row, col] = x[sel]
    tp[row, col] = t[sel]
    sp[row, col] = s[sel]
    wp[row, col] = w[sel]

    evaluate = mdl.log_value_and_jac if log_residuals else mdl.value_and_jac

    def residual_fn(Pk, idx):
        f, J = evaluate(Pk[:, None, :], xp[idx])
        with np.errstate(all="ignore"):
            sig = sp[idx]
            return (f - tp[idx]) / sig, J / sig[..., None]

    res = solve(
        residual_fn,
        p0[ok],
        lower[ok],
        upper[ok],
        weights=wp,
        loss=loss,
        f_scale=f_scale,
        ftol=ftol,
        xtol=xtol,
        gtol=gtol,
        max_nfev=max_nfev,
        max_nfev_cap=max_nfev_cap,
        initial_damping=initial_damping,
        max_damping=max_damping,
    )
    for key in ("x", "cost", "optimality", "active_mask", "status", "nfev", "njev", "nit"):
        out[key][ok] = res[key]
    if return_jtj:
        out["jtj"][ok] = res["jtj"]
    return out


def objective_packed(model: str, x, t, sigma, weights, offsets, params, *,
                     log_residuals: bool = False, loss: str = "linear",
                     f_scale: float = 1.0) -> np.ndarray:
    """The cost 0.5 sum w C^2 rho((r / C)^2) of each problem of a packed batch at ``params``
    (P, n), as ``lawfit._core.objective``: +inf where it is not finite.  ``x`` is the raw
    input (M, n_inputs), ``t`` the targets."""
    mdl = _model(model)
    offsets = np.asarray(offsets, dtype=np.int64)
    P = len(offsets) - 1
    n_pts = np.diff(offsets)
    owner = np.repeat(np.arange(P), n_pts)
    evaluate = mdl.log_value_and_jac if log_residuals else mdl.value_and_jac
    w = np.ones(len(t)) if weights is None else np.asarray(weights, dtype=np.float64)
    with np.errstate(all="ignore"):
        f, _ = evaluate(np.asarray(params, dtype=np.float64)[owner], np.asarray(x, dtype=float))
        r = f - t
        if sigma is not None:
            r = r / sigma
        used = w > 0
        cost, _, _ = _loss_scaling(r, np.where(used, w, 0.0), loss, f_scale)
        cost = np.where(used, cost, 0.0)
        bad = np.bincount(owner, weights=(~np.isfinite(cost)).astype(float), minlength=P) > 0
        total = np.bincount(owner, weights=np.where(np.isfinite(cost), cost, 0.0), minlength=P)
    return np.where(bad | ~np.isfinite(total), np.inf, total)
