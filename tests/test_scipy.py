"""Single problems against scipy.optimize: least_squares, curve_fit, and the drop-in mirrors."""
import warnings

import numpy as np
import pytest
from scipy import optimize

import lawfit
from lawfit.reference import MODELS as REF

TIGHT = dict(ftol=1e-14, xtol=1e-14, gtol=1e-14)


def _problem(seed=0, n=25, outliers=False):
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e6, 1e10, n)
    y = (1.8 + 600 * x ** -0.34) * (1 + 0.01 * rng.standard_normal(n))
    if outliers:
        y[[3, 11, 19]] += [0.5, -0.3, 0.4]
    return x, y


def _scipy_fit(x, y, p0, **kw):
    m = REF["saturating_power_law"]
    return optimize.least_squares(lambda p: m.value_and_jac(p, x[:, None])[0] - y, p0,
                                  jac=lambda p: m.value_and_jac(p, x[:, None])[1], **kw)


@pytest.mark.parametrize("seed", range(5))
def test_single_problem_matches_least_squares_lm(seed, compiled_backend):
    x, y = _problem(seed)
    p0 = np.array([1.5, 400.0, 0.3])
    ref = _scipy_fit(x, y, p0, method="lm", **TIGHT)
    r = lawfit.fit("saturating_power_law", x, y, p0=p0, backend=compiled_backend, **TIGHT)
    np.testing.assert_allclose(r.x[0], ref.x, rtol=1e-7)
    np.testing.assert_allclose(r.cost[0], ref.cost, rtol=1e-12)


@pytest.mark.parametrize("loss", ["linear", "soft_l1", "huber", "cauchy", "arctan"])
@pytest.mark.parametrize("f_scale", [0.05, 1.0])
def test_every_loss_matches_scipy_with_outliers(loss, f_scale, compiled_backend):
    x, y = _problem(7, outliers=True)
    p0 = np.array([1.5, 400.0, 0.3])
    ref = _scipy_fit(x, y, p0, method="trf", loss=loss, f_scale=f_scale, **TIGHT)
    r = lawfit.fit("saturating_power_law", x, y, p0=p0, loss=loss, f_scale=f_scale,
                   backend=compiled_backend, **TIGHT)
    assert r.success[0]
    # the same minimum: equal cost; parameters to 1e-5 (the outer region of huber, soft_l1
    # and the like is nearly linear, so the minimum is flatter than in least squares)
    np.testing.assert_allclose(r.cost[0], ref.cost, rtol=1e-9)
    assert r.cost[0] <= ref.cost * (1 + 1e-12)
    np.testing.assert_allclose(r.x[0], ref.x, rtol=1e-5)


def test_robust_loss_downweights_outliers():
    x, y = _problem(7, outliers=True)
    clean = lawfit.fit("saturating_power_law", *_problem(7), p0=[1.5, 400, 0.3])
    plain = lawfit.fit("saturating_power_law", x, y, p0=[1.5, 400, 0.3])
    robust = lawfit.fit("saturating_power_law", x, y, p0=[1.5, 400, 0.3], loss="soft_l1",
                        f_scale=0.02)
    err = lambda r: np.abs(r.x[0] - clean.x[0]) / clean.x[0]
    assert err(robust).max() < 0.5 * err(plain).max()


def test_bounded_problem_matches_trf():
    x, y = _problem(3)
    bounds = ([1.9, 0, 0], [3.0, 1e4, 0.33])  # both E and alpha end on a bound
    ref = _scipy_fit(x, y, p0=[2.0, 400, 0.3], method="trf", bounds=bounds, **TIGHT)
    r = lawfit.fit("saturating_power_law", x, y, p0=[2.0, 400, 0.3], bounds=bounds, **TIGHT)
    np.testing.assert_allclose(r.x[0], ref.x, rtol=1e-7)
    np.testing.assert_array_equal(r.active_mask[0], ref.active_mask)


def test_curve_fit_builtin_matches_scipy_popt_and_pcov():
    x, y = _problem(2)
    sigma = 0.01 * y
    f = lambda x, E, A, a: E + A * x ** -a
    popt_s, pcov_s = optimize.curve_fit(f, x, y, p0=[1.5, 400, 0.3], sigma=sigma, **TIGHT)
    popt, pcov = lawfit.curve_fit("saturating_power_law", x, y, p0=[1.5, 400, 0.3],
                                  sigma=sigma, **TIGHT)
    np.testing.assert_allclose(popt, popt_s, rtol=1e-7)
    np.testing.assert_allclose(pcov, pcov_s, rtol=1e-5)
    _, pcov_abs = lawfit.curve_fit(lawfit.models.saturating_power_law, x, y,
                                   p0=[1.5, 400, 0.3], sigma=sigma, absolute_sigma=True, **TIGHT)
    _, pcov_abs_s = optimize.curve_fit(f, x, y, p0=[1.5, 400, 0.3], sigma=sigma,
                                       absolute_sigma=True, **TIGHT)
    np.testing.assert_allclose(pcov_abs, pcov_abs_s, rtol=1e-5)


@pytest.mark.parametrize("jac", [None, "2-point", "3-point", "cs", "callable"])
def test_curve_fit_callable_is_a_drop_in(jac):
    x, y = _problem(4)
    f = lambda x, E, A, a: E + A * x ** -a
    jac_fn = lambda x, E, A, a: np.column_stack([np.ones_like(x), x ** -a,
                                                 -A * x ** -a * np.log(x)])
    kw = dict(p0=[1.5, 400, 0.3], **TIGHT)
    popt_s, pcov_s = optimize.curve_fit(f, x, y, jac=jac_fn, **kw)
    popt, pcov = lawfit.curve_fit(f, x, y, jac=jac_fn if jac == "callable" else jac, **kw)
    np.testing.assert_allclose(popt, popt_s, rtol=1e-6)
    np.testing.assert_allclose(pcov, pcov_s, rtol=1e-4)
    popt2, pcov2, info, mesg, ier = lawfit.curve_fit(f, x, y, full_output=True, **kw)
    assert ier > 0 and isinstance(mesg, str) and info["nfev"] > 0
    np.testing.assert_allclose(info["fvec"], f(x, *popt2) - y)


def test_curve_fit_default_p0_is_ones_like_scipy():
    x = np.linspace(0, 2, 20)
    y = 1.3 * np.exp(-0.7 * x)
    f = lambda x, a, b: a * np.exp(-b * x)
    popt, _ = lawfit.curve_fit(f, x, y)
    np.testing.assert_allclose(popt, [1.3, 0.7], rtol=1e-7)


def test_curve_fit_raises_like_scipy_on_failure_and_warns_on_inestimable_covariance():
    x = np.linspace(0, 2, 20)
    y = 1.3 * np.exp(-0.7 * x)
    with pytest.raises(RuntimeError, match="Optimal parameters not found"):
        lawfit.curve_fit(lambda x, a, b: a * np.exp(-b * x), x, y, max_nfev=2)
    with pytest.warns(lawfit.OptimizeWarning, match="Covariance"):
        _, pcov = lawfit.curve_fit(lambda x, a, b: a * np.exp(-b * x), x[:2], y[:2])
    assert np.isinf(pcov).all()
    assert lawfit.OptimizeWarning is optimize.OptimizeWarning


def test_curve_fit_refuses_nonfinite_data_where_scipy_is_silent():
    x = np.linspace(0, 2, 20)
    y = 1.3 * np.exp(-0.7 * x)
    y[4] = np.nan
    f = lambda x, a, b: a * np.exp(-b * x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        popt_s, _ = optimize.curve_fit(f, x, y, p0=[1.0, 1.0], check_finite=False)
    assert np.array_equal(popt_s, [1.0, 1.0])  # scipy: p0 back, no word of it
    with pytest.raises(ValueError, match="not finite"):
        lawfit.curve_fit(f, x, y, p0=[1.0, 1.0], check_finite=False)
    popt, _ = lawfit.curve_fit(f, x, y, p0=[1.0, 1.0], nan_policy="omit")
    np.testing.assert_allclose(popt, [1.3, 0.7], rtol=1e-7)


def test_least_squares_mirror_fields():
    x, y = _problem(5)
    fun = lambda p: p[0] + p[1] * x ** -p[2] - y
    ref = optimize.least_squares(fun, [1.5, 400, 0.3], **TIGHT)
    r = lawfit.least_squares(fun, [1.5, 400, 0.3], **TIGHT)
    for key in ("x", "cost", "fun", "jac", "grad", "optimality", "active_mask", "nfev", "njev",
                "status", "message", "success"):
        assert key in r
    np.testing.assert_allclose(r.x, ref.x, rtol=1e-6)
    np.testing.assert_allclose(r.cost, ref.cost, rtol=1e-10)
    np.testing.assert_allclose(r.fun, fun(r.x))
    assert r.success and r.status > 0
    r2 = lawfit.least_squares(lambda p, s: s * fun(p), [1.5, 400, 0.3], args=(2.0,),
                              loss="huber", f_scale=0.1, bounds=([0, 0, 0], [5, 1e4, 1]))
    assert r2.success


def test_least_squares_cs_jacobian():
    x = np.linspace(0, 3, 30)
    y = 2 * np.sin(1.3 * x) + 0.5
    fun = lambda p: p[0] * np.sin(p[1] * x) + p[2] - y
    r = lawfit.least_squares(fun, [1.5, 1.2, 0.0], jac="cs", **TIGHT)
    np.testing.assert_allclose(r.x, [2, 1.3, 0.5], rtol=1e-9)
