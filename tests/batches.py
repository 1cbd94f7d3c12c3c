"""Synthetic, well-posed batches for every built-in model (truth, data, a start near it)."""
from __future__ import annotations

import numpy as np

import lawfit

# (inputs of one problem, truth, relative spread of the truth across problems)
def _n_d(m, lo=1e7, hi=1e10):
    """N over three decades, each N trained on 5 to 320 tokens per parameter."""
    n = np.geomspace(lo, hi, m)
    return np.column_stack([n, n * np.resize([5.0, 20.0, 80.0, 320.0], m)])


_SPECS = {
    "power_law": (lambda m: np.geomspace(1e1, 1e5, m)[:, None], [5.0, 0.5]),
    "saturating_power_law": (lambda m: np.geomspace(1e6, 1e10, m)[:, None], [1.8, 600.0, 0.34]),
    "chinchilla": (
        _n_d,
        [1.69, 406.4, 410.7, 0.34, 0.28],
    ),
    "chinchilla_log": (
        _n_d,
        [np.log(406.4), np.log(410.7), np.log(1.69), 0.34, 0.28],
    ),
    "kaplan": (
        _n_d,
        [8.8e13, 5.4e13, 0.076, 0.095],
    ),
    "broken_power_law": (lambda m: np.geomspace(1e1, 1e6, m)[:, None],
                         [0.5, 10.0, 0.3, 0.4, 1e3, 0.5]),
    "exp_power_law": (lambda m: np.geomspace(1, 1e4, m)[:, None], [-2.0, -0.4]),
    "logistic": (lambda m: np.linspace(2.0, 4.5, m)[:, None], [0.6, -5.0, 3.0, 0.25]),
}


def model_batch(name: str, n_problems: int = 20, n_points: int = 30, noise: float = 0.01,
                seed: int = 0, start_spread: float = 0.1):
    """x (m, k) shared, y (P, m), truth (P, n), p0 (P, n) for model ``name``."""
    rng = np.random.default_rng(seed)
    make_x, base = _SPECS[name]
    x = make_x(n_points)
    base = np.asarray(base, dtype=float)
    truth = base * (1 + 0.05 * rng.standard_normal((n_problems, base.size)))
    model = lawfit.models.get(name)
    f = np.stack([model(x, *t) for t in truth])
    y = f * (1 + noise * rng.standard_normal(f.shape))
    p0 = truth * (1 + start_spread * rng.uniform(-1, 1, truth.shape))
    return x, y, truth, p0


MODEL_NAMES = list(_SPECS)


def assert_bitwise_dicts(a: dict, b: dict) -> None:
    """Two backends' result dictionaries hold bitwise the same arrays (NaN's sign aside: an
    IEEE operation may pass on either operand's NaN, and NaN is NaN to the solver)."""
    for key in a:
        u, v = np.asarray(a[key]), np.asarray(b[key])
        if u.dtype.kind == "f":
            nan = np.isnan(u)
            assert np.array_equal(nan, np.isnan(v)), key
            u, v = u[~nan].view(np.int64), v[~nan].view(np.int64)
        assert np.array_equal(u, v), key
