"""Seeded synthetic scaling-law batches and the scipy loop they are compared with.

Used by ``lawfit demo`` and by ``bench/``; the NumPy generator is seeded, so a given seed is
the same batch on every machine.
"""
from __future__ import annotations

import time

import numpy as np


def saturating_power_laws(n_problems: int = 10_000, n_points: int = 20, noise: float = 0.01,
                          seed: int = 0):
    """Batches of ``E + A x^-alpha`` with multiplicative Gaussian noise.

    Returns x (n_points,) shared by all problems (model sizes 1e6 to 1e10), y (P, m) and the
    true parameters (P, 3).  E in [1.5, 2.5], A log-uniform in [2e2, 2e3], alpha in
    [0.25, 0.45]: losses against model size shaped like Chinchilla's (A = 406, alpha = 0.34).
    """
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e6, 1e10, n_points)
    E = rng.uniform(1.5, 2.5, n_problems)
    A = np.exp(rng.uniform(np.log(2e2), np.log(2e3), n_problems))
    alpha = rng.uniform(0.25, 0.45, n_problems)
    f = E[:, None] + A[:, None] * x[None, :] ** -alpha[:, None]
    y = f * (1.0 + noise * rng.standard_normal(f.shape))
    return x, y, np.column_stack([E, A, alpha])


def saturating_jac(p, x):
    xa = x ** -p[2]
    return np.column_stack([np.ones_like(x), xa, -p[1] * xa * np.log(x)])


def scipy_loop(x, y, p0, method: str = "lm"):
    """Fit each row of ``y`` with ``scipy.optimize.least_squares`` and the analytic Jacobian.

    Returns parameters (P, 3), costs (P,), statuses (P,) and the seconds taken.
    """
    from scipy.optimize import least_squares

    P = y.shape[0]
    params = np.empty((P, 3))
    cost = np.empty(P)
    status = np.empty(P, dtype=int)
    t0 = time.perf_counter()
    for i in range(P):
        yi = y[i]
        res = least_squares(lambda p: p[0] + p[1] * x ** -p[2] - yi, p0[i],
                            jac=lambda p: saturating_jac(p, x), method=method)
        params[i], cost[i], status[i] = res.x, res.cost, res.status
    return params, cost, status, time.perf_counter() - t0
