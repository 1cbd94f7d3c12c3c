"""Every compiled backend against the independent NumPy reference, on the same packed batch.

The two implement the same algorithm (lm.h's spec) independently, so on well-posed problems
they must end with the same status class and parameters within 1e-8 relative.  (Status 3 and
4, or 2 and 4, may differ: whether the final, rounding-sized reduction passes "ratio <= 2" is
rounding itself.)
"""
import numpy as np
import pytest

import lawfit

from batches import MODEL_NAMES, model_batch

RTOL = 1e-8


def _compare(a, b):
    assert np.array_equal(a.success, b.success)
    ok = a.success
    np.testing.assert_allclose(a.x[ok], b.x[ok], rtol=RTOL, atol=0)
    np.testing.assert_allclose(a.cost[ok], b.cost[ok], rtol=1e-10)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("residuals", ["linear", "log"])
def test_models_and_residual_spaces(compiled_backend, name, residuals):
    x, y, truth, p0 = model_batch(name, n_problems=12, seed=1)
    kw = dict(p0=p0, residuals=residuals)
    a = lawfit.fit(name, x, y, backend=compiled_backend, **kw)
    b = lawfit.fit(name, x, y, backend="numpy", **kw)
    assert a.success.all()
    _compare(a, b)
    assert np.mean(a.nfev == b.nfev) >= 0.75  # same path, up to the last rounding-sized step


@pytest.mark.parametrize("loss", ["linear", "soft_l1", "huber", "cauchy", "arctan"])
def test_losses_sigma_weights(compiled_backend, loss):
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=16, seed=2)
    rng = np.random.default_rng(2)
    y = y.copy()
    y[:, ::7] *= 1.3  # outliers
    sigma = 0.01 * y * rng.uniform(0.5, 2, y.shape)
    weights = rng.integers(0, 3, y.shape).astype(float)
    kw = dict(p0=p0, loss=loss, f_scale=0.5, sigma=sigma, weights=weights)
    a = lawfit.fit("saturating_power_law", x, y, backend=compiled_backend, **kw)
    b = lawfit.fit("saturating_power_law", x, y, backend="numpy", **kw)
    assert a.success.mean() > 0.9
    _compare(a, b)


def test_bounds_and_fixed_parameters(compiled_backend):
    x, y, truth, p0 = model_batch("chinchilla", n_problems=16, seed=4)
    lower = np.array([1.0, 0.0, 0.0, 0.3, 0.25])
    upper = np.array([1.7, 1e4, 1e4, 0.36, 0.28])    # several fits end on a bound
    p0 = np.clip(p0, lower, upper)
    p0[:, 3] = lower[3] + 0.02
    fixed = (lower.copy(), upper.copy())
    fixed[0][4] = fixed[1][4] = 0.28                  # beta fixed
    p0f = p0.copy()
    p0f[:, 4] = 0.28
    for bounds, start in (((lower, upper), p0), (fixed, p0f)):
        a = lawfit.fit("chinchilla", x, y, p0=start, bounds=bounds, backend=compiled_backend)
        b = lawfit.fit("chinchilla", x, y, p0=start, bounds=bounds, backend="numpy")
        _compare(a, b)
        np.testing.assert_array_equal(a.active_mask, b.active_mask)
    assert (a.x[:, 4] == 0.28).all()
    assert (a.active_mask != 0).any()


def test_data_check_statuses_agree(compiled_backend):
    x = np.geomspace(1e6, 1e10, 10)
    ys = [1.8 + 600 * x ** -0.34 for _ in range(5)]
    ys[1] = ys[1].copy()
    ys[1][3] = np.nan
    xs = [x] * 5
    xs[2] = x.copy()
    xs[2][0] = -1.0                                  # log input of x <= 0
    ys[3] = ys[3][:2]                                # too few points
    xs[3] = x[:2]
    kw = dict(p0=[1.5, 500, 0.3], nan_policy="propagate")  # the NaN kept as bad data
    a = lawfit.fit("saturating_power_law", xs, ys, backend=compiled_backend, **kw)
    b = lawfit.fit("saturating_power_law", xs, ys, backend="numpy", **kw)
    S = lawfit.Status
    assert list(a.status[1:4]) == [S.NONFINITE_DATA, S.NONFINITE_DATA, S.TOO_FEW_POINTS]
    np.testing.assert_array_equal(a.status[1:4], b.status[1:4])
    assert a.success[[0, 4]].all()


def test_jacobian_vanishing_at_a_minimum_with_residuals_left(compiled_backend):
    """(a - 1)^2 + 5 against zeros: at the minimum a = 1 the Jacobian vanishes while every
    residual is 5, so A = J^T J promises the whole cost to a Gauss-Newton step that the cost
    refutes.  The secant correction of the settling check (lm.h step 4g) sees the residuals'
    own curvature along the accepted steps: both backends converge there and say so (before
    it, both ended NO_PROGRESS), from starts on either side, bounded or not."""
    law = lawfit.law("(a - 1)**2 + 5 + 0 * x", inputs=["x"], params=["a"])
    starts = np.array([-3.0, -0.5, 0.2, 2.0, 5.0, 40.0])[:, None]
    x = np.tile(np.linspace(1.0, 2.0, 4), (len(starts), 1))
    y = np.zeros_like(x)
    for bounds in ((-np.inf, np.inf), (-10.0, 50.0)):
        a = lawfit.fit(law, x, y, p0=starts, bounds=bounds, backend=compiled_backend)
        b = lawfit.fit(law, x, y, p0=starts, bounds=bounds, backend="numpy")
        for r in (a, b):
            assert r.success.all(), r.status
            np.testing.assert_allclose(r.x[:, 0], 1.0, atol=2e-4)
            np.testing.assert_allclose(r.cost, 4 * 12.5, rtol=1e-8)
        np.testing.assert_array_equal(a.status, b.status)
        np.testing.assert_allclose(a.x, b.x, rtol=RTOL)
