"""Covariances from J^T J: the compiled form (cpp/src/covariance.h, lawfit._core.covariance)
against its NumPy reference (lawfit._result._covariance_numpy), and both against scipy's
curve_fit, on well-conditioned, rank-deficient, fixed, non-finite and degenerate problems."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from lawfit import _result

_core = pytest.importorskip("lawfit._core")


def both(jtj, cost, points, fixed, **kw):
    return (_result.covariance(jtj, cost, points, fixed, **kw),
            _result._covariance_numpy(jtj, cost, points, fixed, **kw))


def assert_close(a, b, rtol=1e-10):
    """Equal where infinite, and within rtol of each problem's largest entry elsewhere."""
    assert a.shape == b.shape
    inf = np.isinf(a)
    assert np.array_equal(inf, np.isinf(b))
    scale = np.abs(np.where(inf, 0, b)).max(axis=(1, 2), keepdims=True)
    assert (np.abs(np.where(inf, 0, a) - np.where(inf, 0, b)) <= rtol * np.maximum(scale, 1e-300)).all()


def random_jtj(rng, P, n, m=30):
    J = rng.standard_normal((P, m, n)) * np.exp(rng.uniform(-3, 3, (P, 1, n)))
    return J.transpose(0, 2, 1) @ J


def test_the_compiled_form_is_the_numpy_reference_on_well_conditioned_problems():
    rng = np.random.default_rng(0)
    for n in range(1, 7):
        jtj = random_jtj(rng, 200, n)
        cost = rng.uniform(0.01, 10, 200)
        points = rng.integers(n, 40, 200)  # some with m == n: no degrees of freedom (inf)
        fixed = rng.uniform(size=(200, n)) < 0.2
        for kw in (dict(), dict(absolute_sigma=True), dict(singular="pinv")):
            a, b = both(jtj, cost, points, fixed, **kw)
            assert_close(a, b)
            no_dof = points <= (~fixed).sum(axis=1)  # the scale is undefined: inf
            assert no_dof.any() and np.isinf(a[no_dof]).all() != kw.get("absolute_sigma", False)
            assert np.isfinite(a[~no_dof]).all()


def test_rank_deficient_fixed_non_finite_and_empty():
    rng = np.random.default_rng(1)
    J = rng.standard_normal((4, 25, 3))
    J[0, :, 2] = J[0, :, 1]  # two equal columns: one direction undetermined
    J[1, :, 2] = 0.0  # a parameter the data do not see
    jtj = J.transpose(0, 2, 1) @ J
    jtj[2, 0, 1] = np.nan  # a matrix that is not finite
    cost, points = np.full(4, 0.5), np.full(4, 25)
    fixed = np.zeros((4, 3), bool)
    fixed[3, 1] = True
    for singular in ("inf", "pinv"):
        a, b = both(jtj, cost, points, fixed, singular=singular)
        assert_close(a, b, rtol=1e-8)
        assert np.isinf(a[2]).all()
        assert (a[3, 1, :] == 0).all() and (a[3, :, 1] == 0).all() and np.isfinite(a[3]).all()
        assert np.isinf(a[:2]).all() == (singular == "inf")
    a, b = both(np.zeros((0, 3, 3)), np.zeros(0), np.zeros(0), np.zeros((0, 3), bool))
    assert a.shape == b.shape == (0, 3, 3)


def test_a_fit_s_covariance_is_scipy_s():
    rng = np.random.default_rng(2)
    x = np.geomspace(1e6, 1e10, 20)
    y = (1.8 + 400 * x ** -0.3) * (1 + 0.01 * rng.standard_normal(20))

    def f(x, E, A, alpha):
        return E + A * x ** -alpha

    import lawfit

    p, cov = lawfit.curve_fit("saturating_power_law", x, y, p0=[1.5, 300, 0.25])
    ps, covs = scipy.optimize.curve_fit(f, x, y, p0=[1.5, 300, 0.25])
    np.testing.assert_allclose(p, ps, rtol=1e-5)
    np.testing.assert_allclose(cov, covs, rtol=1e-4)


def test_bad_shapes_are_refused_naming_the_argument():
    with pytest.raises(ValueError, match="jtj"):
        _core.covariance(np.zeros((2, 3, 2)), np.zeros(2), np.zeros(2), np.zeros((2, 3), bool),
                         False, True)
    with pytest.raises(ValueError, match="fixed"):
        _core.covariance(np.zeros((2, 3, 3)), np.zeros(2), np.zeros(2), np.zeros((2, 2), bool),
                         False, True)
