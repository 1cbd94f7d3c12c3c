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


# ---------------------------------------------------------------------------------------
# least_squares: scipy's documented options
# ---------------------------------------------------------------------------------------


def _rosenbrock(x):
    return np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])


class _Counted:
    """A function that counts its calls and remembers the points it was called at."""

    def __init__(self, f):
        self.f, self.points = f, []

    def __call__(self, x, *args):
        self.points.append(np.array(x, dtype=float))
        return self.f(x, *args)


@pytest.mark.parametrize("x_scale", [1.0, [1.0, 0.2], [1e-3, 100.0], "jac"])
def test_least_squares_x_scale_reaches_the_solution_along_its_own_path(x_scale):
    r = lawfit.least_squares(_rosenbrock, [-2.0, 1.0], x_scale=x_scale, **TIGHT)
    np.testing.assert_allclose(r.x, [1, 1], rtol=1e-10)
    assert r.success


def test_least_squares_x_scale_against_the_valley_fails_honestly():
    # Scales that fight Rosenbrock's valley ([100, 1e-3]: x[1] 1e5 times dearer than x[0])
    # leave scipy's trf far from the solution after its 200 evaluations, and lawfit's
    # trust region (MINPACK's, in the same scaled norm) too: neither may call that success.
    ref = optimize.least_squares(_rosenbrock, [-2.0, 1.0], x_scale=[100.0, 1e-3], **TIGHT)
    r = lawfit.least_squares(_rosenbrock, [-2.0, 1.0], x_scale=[100.0, 1e-3], **TIGHT)
    assert not ref.success and ref.status == 0
    assert not r.success and r.status == 0 and r.nfev == 200


def test_least_squares_x_scale_is_solving_in_x_over_x_scale():
    # scipy's definition: x_scale s is equivalent to the problem in xs = x / s with unit
    # scales.  With powers of two for s the arithmetic scales exactly: the same iterates.
    s = np.array([4.0, 0.25])
    jac = lambda x: np.array([[-20 * x[0], 10], [-1, 0]])
    paths = {"x": [], "xs": [], "unscaled": []}
    lawfit.least_squares(_rosenbrock, [-2.0, 1.0], jac=jac, x_scale=s,
                         callback=lambda x: paths["x"].append(x))
    lawfit.least_squares(lambda u: _rosenbrock(s * u), np.array([-2.0, 1.0]) / s,
                         jac=lambda u: jac(s * u) * s, x_scale=1.0,
                         callback=lambda u: paths["xs"].append(s * u))
    lawfit.least_squares(_rosenbrock, [-2.0, 1.0], jac=jac, x_scale=1.0,
                         callback=lambda x: paths["unscaled"].append(x))
    np.testing.assert_array_equal(paths["x"], paths["xs"])
    assert len(paths["x"]) != len(paths["unscaled"]) or \
        not np.array_equal(paths["x"], paths["unscaled"])


@pytest.mark.parametrize("x_scale, match", [("auto", "x_scale"), (-1.0, "x_scale"),
                                             (1 + 2j, "x_scale"), ([1.0, 2.0, 3.0], "x_scale")])
def test_least_squares_x_scale_errors_name_it(x_scale, match):
    with pytest.raises(ValueError, match=match):
        lawfit.least_squares(_rosenbrock, [-2.0, 1.0], x_scale=x_scale)


def test_least_squares_callable_loss_equals_the_named_one():
    x, y = _problem(7, outliers=True)
    fun = lambda p: p[0] + p[1] * x ** -p[2] - y

    def soft_l1(z):  # scipy's rho(z) -> (3, m)
        t = 1 + z
        return np.vstack([2 * (t ** 0.5 - 1), t ** -0.5, -0.5 * t ** -1.5])

    named = lawfit.least_squares(fun, [1.5, 400, 0.3], loss="soft_l1", f_scale=0.05, **TIGHT)
    own = lawfit.least_squares(fun, [1.5, 400, 0.3], loss=soft_l1, f_scale=0.05, **TIGHT)
    # the same minimum (flat in x: see test_every_loss_matches_scipy_with_outliers)
    np.testing.assert_allclose(own.cost, named.cost, rtol=1e-12)
    np.testing.assert_allclose(own.x, named.x, rtol=1e-6)
    ref = optimize.least_squares(fun, [1.5, 400, 0.3], loss=soft_l1, f_scale=0.05, **TIGHT)
    assert own.cost <= ref.cost * (1 + 1e-9)
    with pytest.raises(ValueError, match="loss"):
        lawfit.least_squares(fun, [1.5, 400, 0.3], loss=lambda z: np.vstack([z, z]))


def test_least_squares_callback_sees_every_iteration_and_can_stop_it():
    seen = []
    r = lawfit.least_squares(_rosenbrock, [-2.0, 1.0],
                             callback=lambda intermediate_result: seen.append(
                                 intermediate_result))
    assert [s.nit for s in seen] == list(range(1, r.nit + 1))
    assert np.array_equal(seen[-1].x, r.x) and seen[-1].cost == r.cost
    np.testing.assert_array_equal(seen[-1].fun, _rosenbrock(r.x))
    assert all(s.nfev == i + 2 for i, s in enumerate(seen))  # the start, then one a step

    xs = []

    def stop_at_3(x):
        xs.append(x)
        if len(xs) == 3:
            raise StopIteration

    r = lawfit.least_squares(_rosenbrock, [-2.0, 1.0], callback=stop_at_3)
    assert r.status == -2 and not r.success and "StopIteration" in r.message
    assert np.array_equal(r.x, xs[-1]) and r.nit == 3
    np.testing.assert_array_equal(r.fun, _rosenbrock(r.x))
    with pytest.warns(UserWarning, match="not supported with `lm`"):
        r = lawfit.least_squares(_rosenbrock, [-2.0, 1.0], method="lm", callback=stop_at_3)
    assert r.success and len(xs) == 3  # scipy's lm does not call it


@pytest.mark.parametrize("jac", ["2-point", "3-point", "cs", "callable"])
def test_least_squares_counts_calls_as_scipy_and_never_repeats_a_point(jac):
    fun = _Counted(_rosenbrock)
    jac_fn = _Counted(lambda x: np.array([[-20 * x[0], 10], [-1, 0]]))
    r = lawfit.least_squares(fun if jac == "callable" else _rosenbrock, [-2.0, 1.0],
                             jac=jac_fn if jac == "callable" else jac)
    if jac == "callable":
        assert r.nfev == len(fun.points) and r.njev == len(jac_fn.points)
        for calls in (fun.points, jac_fn.points):
            assert all(not np.array_equal(a, b) for a, b in zip(calls, calls[1:]))
    for max_nfev in (1, 2, 5):
        counted = _Counted(_rosenbrock)
        r = lawfit.least_squares(counted, [-2.0, 1.0], jac=jac_fn, max_nfev=max_nfev)
        assert r.nfev == len(counted.points) == max_nfev and r.status == 0
    r = lawfit.least_squares(_rosenbrock, [-2.0, 1.0], method="lm")
    assert r.njev is None  # finite differences with 'lm', as scipy


def test_least_squares_fewer_residuals_than_parameters():
    one = lambda x: _rosenbrock(x)[:1]
    r = lawfit.least_squares(one, [-2.0, 1.0])
    assert r.success and r.cost < 1e-20 and r.fun.shape == (1,) and r.jac.shape == (1, 2)
    with pytest.raises(ValueError, match="'lm' doesn't work"):
        lawfit.least_squares(one, [-2.0, 1.0], method="lm")


def test_least_squares_refuses_what_it_does_not_implement_naming_the_argument():
    from scipy.sparse import csr_array
    from scipy.sparse.linalg import aslinearoperator

    J = lambda x: np.array([[-20 * x[0], 10], [-1, 0]])
    cases = [
        (ValueError, "jac_sparsity", dict(jac_sparsity=np.ones((2, 2)))),
        (ValueError, "jac: returned a csr_array", dict(jac=lambda x: csr_array(J(x)))),
        (ValueError, "jac: returned a .*LinearOperator",
         dict(jac=lambda x: aslinearoperator(J(x)))),
        (TypeError, "tr_options", dict(tr_solver="lsmr", tr_options={"tol": 1e-10})),
        (ValueError, "bounds: method 'lm'", dict(method="lm", bounds=(-3, 3))),
        (ValueError, "loss: method 'lm'", dict(method="lm", loss="huber")),
        (ValueError, "ftol, xtol, gtol", dict(method="lm", gtol=None)),
        (ValueError, "ftol, xtol, gtol", dict(ftol=None, xtol=None, gtol=None)),
        (ValueError, "tr_solver", dict(tr_solver="best")),
        (ValueError, "method", dict(method="newton")),
    ]
    for error, match, kw in cases:
        with pytest.raises(error, match=match):
            lawfit.least_squares(_rosenbrock, [-2.0, 1.0], **kw)
    for x0 in (2.0 + 0j, [1.0, 2.0 + 0j]):
        with pytest.raises(ValueError, match="x0: must be real"):
            lawfit.least_squares(lambda x: x - 1, x0)
    with pytest.warns(UserWarning, match="tr_options: ignored"):
        r = lawfit.least_squares(_rosenbrock, [-2.0, 1.0], tr_solver="lsmr",
                                 tr_options={"atol": 1e-12})
    np.testing.assert_allclose(r.x, [1, 1])


def test_least_squares_bounds_object_and_a_fixed_parameter():
    from scipy.optimize import Bounds

    # (From x0 = [2, 2]: on x[1] = 1.5 the cost has two minima, x[0] = -1.221 and the lower
    # 1.224, and from x0[0] = -2 scipy's trf and lawfit's LM may end in either.)
    r = lawfit.least_squares(_rosenbrock, [2.0, 2.0], bounds=Bounds([-np.inf, 1.5], np.inf))
    ref = optimize.least_squares(_rosenbrock, [2.0, 2.0], bounds=([-np.inf, 1.5], np.inf))
    np.testing.assert_allclose(r.x, ref.x, rtol=1e-6)
    np.testing.assert_array_equal(r.active_mask, [0, -1])
    r = lawfit.least_squares(_rosenbrock, [0.5, 1.0], bounds=([-5, 1.0], [5, 1.0]))
    assert r.x[1] == 1.0 and abs(r.x[0] - 1) < 1e-6  # lower == upper holds x[1]


# ---------------------------------------------------------------------------------------
# curve_fit: scipy's documented behaviour, errors naming the argument
# ---------------------------------------------------------------------------------------


def _exp_decay(n=30, seed=1):
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 4, n)
    return x, 2.5 * np.exp(-1.3 * x) + 0.5 + 0.05 * rng.standard_normal(n)


def test_curve_fit_correlated_sigma_matches_scipy():
    x, y = _exp_decay()
    f = lambda x, a, b, c: a * np.exp(-b * x) + c
    i = np.arange(x.size)
    cov = 0.05 ** 2 * 0.6 ** np.abs(i[:, None] - i[None, :])  # AR(1) errors
    for method, absolute_sigma in (("lm", False), ("trf", True)):
        popt, pcov = lawfit.curve_fit(f, x, y, p0=[1, 1, 1], sigma=cov, method=method,
                                      absolute_sigma=absolute_sigma, **TIGHT)
        ref = optimize.curve_fit(f, x, y, p0=[1, 1, 1], sigma=cov, method=method,
                                 absolute_sigma=absolute_sigma, **TIGHT)
        np.testing.assert_allclose(popt, ref[0], rtol=1e-8)
        np.testing.assert_allclose(pcov, ref[1], rtol=1e-6)
    with pytest.raises(ValueError, match="sigma: must be positive definite"):
        lawfit.curve_fit(f, x, y, p0=[1, 1, 1], sigma=-cov)
    with pytest.raises(ValueError, match="sigma: has incorrect shape"):
        lawfit.curve_fit(f, x, y, p0=[1, 1, 1], sigma=np.ones(5))


def test_curve_fit_full_output_describes_the_final_jacobian_as_minpack():
    x, y = _exp_decay()
    f = lambda x, a, b, c: a * np.exp(-b * x) + c
    popt, pcov, info, mesg, ier = lawfit.curve_fit(f, x, y, p0=[1, 1, 1], full_output=True)
    n = popt.size
    # scipy's own recipe (leastsq's) gives the covariance back from fjac and ipvt
    R = np.triu(info["fjac"].T[:n])
    inv = np.linalg.inv(R)
    inv[info["ipvt"] - 1] = inv.copy()
    s_sq = info["fvec"] @ info["fvec"] / (x.size - n)
    np.testing.assert_allclose(inv @ inv.T * s_sq, pcov, rtol=1e-10)
    # R^T R is J^T J, permuted (J here analytic, lawfit's by finite differences)
    J = np.column_stack([np.exp(-popt[1] * x), -popt[0] * x * np.exp(-popt[1] * x),
                         np.ones_like(x)])
    perm = info["ipvt"] - 1
    np.testing.assert_allclose(R.T @ R, (J.T @ J)[np.ix_(perm, perm)], rtol=1e-6)
    # qtf = Q^T fvec, the residuals in the range of J: about 0 at a minimum
    assert np.linalg.norm(info["qtf"]) < 1e-6 * np.linalg.norm(info["fvec"])
    np.testing.assert_allclose(info["fvec"], f(x, *popt) - y)
    assert ier in (1, 2, 3, 4) and isinstance(mesg, str) and info["nfev"] > 0
    _, _, info_trf, _, _ = lawfit.curve_fit(f, x, y, p0=[1, 1, 1], method="trf",
                                            full_output=True)
    assert set(info_trf) == {"nfev", "fvec"}  # as scipy: the MINPACK fields are lm's


def test_curve_fit_errors_name_the_argument():
    x, y = _exp_decay()
    f = lambda x, a, b, c: a * np.exp(-b * x) + c
    sigma = np.ones_like(y)
    sigma[3] = np.nan
    cases = [
        (TypeError, "number of func parameters=3 .* data points=2", (f, x[:2], y[:2]), {}),
        (ValueError, "sigma", (f, x, y), dict(sigma=sigma)),
        (ValueError, "f: returned shape \\(29,\\), expected ydata's shape \\(30,\\)",
         (f, x[:-1], y), {}),
        (ValueError, "xdata: must be real", (f, x + 0j, y), {}),
        (ValueError, "ydata: must be real", (f, x, y + 0j), {}),
        (ValueError, "p0: must be real", (f, x, y), dict(p0=[1, 1, 1j])),
        (ValueError, "sigma: must be real", (f, x, y), dict(sigma=sigma + 1j)),
        (ValueError, "p0: Initial guess is outside", (f, x, y),
         dict(p0=[1, 1, 1], bounds=(2, 3))),
        (ValueError, "bounds: Method 'lm'", (f, x, y), dict(method="lm", bounds=(0, 9))),
        (ValueError, "args", (f, x, y), dict(args=(1,))),
        (ValueError, "nan_policy", (f, x, y), dict(nan_policy="propagate")),
        (ValueError, "p0: a lawfit.grid", (f, x, y), dict(p0=lawfit.grid(a=[1], b=[1], c=[1]))),
        (ValueError, "p0: Unable to determine", (lambda x, *p: x, x, y), {}),
    ]
    for error, match, args, kw in cases:
        with pytest.raises(error, match=match):
            lawfit.curve_fit(*args, **kw)


def test_curve_fit_builtin_model_errors_name_the_argument():
    x, y = _problem(1)
    X = np.column_stack([x, x[::-1]])
    cases = [
        (TypeError, "data points=2", ("saturating_power_law", x[:2], y[:2]), {}),
        (ValueError, "ydata: 2 points for 3 free", ("saturating_power_law", x[:2], y[:2]),
         dict(bounds=(0, 1e4))),
        (ValueError, "xdata: expected shape", ("saturating_power_law", x[:-1], y), {}),
        (ValueError, "xdata: model 'power_law' needs inputs > 0", ("power_law", -x, y), {}),
        (ValueError, "sigma", ("saturating_power_law", x, y),
         dict(sigma=np.where(np.arange(x.size) == 4, np.nan, 1.0))),
        (ValueError, "sigma: a 2-D", ("saturating_power_law", x, y),
         dict(sigma=np.eye(x.size))),
        (ValueError, "xdata: must be real", ("saturating_power_law", x + 0j, y), {}),
        (ValueError, "p0: model 'kaplan' has no data-driven guess", ("kaplan", X, y), {}),
        (ValueError, "jac", ("saturating_power_law", x, y), dict(jac="2-point")),
        (TypeError, "x_scale", ("saturating_power_law", x, y), dict(x_scale=1.0)),
    ]
    for error, match, args, kw in cases:
        with pytest.raises(error, match=match):
            lawfit.curve_fit(*args, **kw)


def test_curve_fit_builtin_grid_p0_is_a_multi_start_fit_returning_the_best():
    x, y = _problem(3)
    good = lawfit.curve_fit("saturating_power_law", x, y, p0=[1.5, 400, 0.3], **TIGHT)
    g = lawfit.grid(E=[0.5, 1.5], A=[10, 100, 1000], alpha=[0.1, 0.3, 0.6])
    best = lawfit.curve_fit("saturating_power_law", x, y, p0=g, **TIGHT)
    np.testing.assert_allclose(best[0], good[0], rtol=1e-7)
    np.testing.assert_allclose(best[1], good[1], rtol=1e-5)


def test_curve_fit_chinchilla_without_p0_starts_from_a_profile_grid():
    rng = np.random.default_rng(5)
    N, D = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 1e10, 8),
                                             np.geomspace(1e9, 1e12, 6)))
    true = np.array([1.7, 400.0, 410.0, 0.34, 0.28])
    L = lawfit.models.chinchilla(np.column_stack([N, D]), *true)
    L = L * (1 + 0.003 * rng.standard_normal(L.size))
    popt, pcov = lawfit.curve_fit("chinchilla", np.column_stack([N, D]), L)
    ref = lawfit.curve_fit("chinchilla", np.vstack([N, D]), L, p0=true, **TIGHT)  # (k, m)
    np.testing.assert_allclose(popt, ref[0], rtol=1e-5)
    assert np.isfinite(pcov).all() and popt[1] > 0  # not the A = -1.27e6 of a start at ones


def test_curve_fit_builtin_nan_policy_omit_drops_the_points():
    x, y = _problem(4)
    y_nan, x_nan = y.copy(), x.copy()
    y_nan[3], x_nan[7] = np.nan, np.nan
    kept = np.ones(x.size, bool)
    kept[[3, 7]] = False
    omit = lawfit.curve_fit("saturating_power_law", x_nan, y_nan, p0=[1.5, 400, 0.3],
                            nan_policy="omit")
    ref = lawfit.curve_fit("saturating_power_law", x[kept], y[kept], p0=[1.5, 400, 0.3])
    np.testing.assert_array_equal(omit[0], ref[0])
    with pytest.raises(ValueError, match="ydata: The input contains nan"):
        lawfit.curve_fit("saturating_power_law", x, y_nan, nan_policy="raise")


def _untraceable(x, a, b, c):
    """a * exp(-b x) + c through a NumPy call lawfit's tracer does not know."""
    return a * np.exp(-b * np.clip(x, -1e300, None)) + c


def _untraceable_jac(x, a, b, c):
    e = np.exp(-b * x)
    return np.column_stack([e, -a * x * e, np.ones_like(x)])


class _Spy:
    """lawfit._core in scipy_compat's hands, counting solve_callable's calls."""

    def __init__(self, core):
        self.core, self.calls = core, 0

    def __getattr__(self, name):
        return getattr(self.core, name)

    def solve_callable(self, *args):
        self.calls += 1
        return self.core.solve_callable(*args)


@pytest.fixture
def spied_core(monkeypatch):
    from lawfit import scipy_compat
    from lawfit._backends import _load_core

    core = _load_core()[0]
    if core is None:
        pytest.skip("lawfit._core is not built")
    spy = _Spy(core)
    monkeypatch.setattr(scipy_compat, "_load_core", lambda: (spy, ""))
    return spy


@pytest.mark.parametrize("jac", [None, "callable"])
@pytest.mark.parametrize("sigma", [None, "scalar", "per point"])
def test_curve_fit_untraceable_callable_runs_compiled_as_scipy(spied_core, jac, sigma):
    """A callable the tracer cannot compile, fitted with method 'lm' (no bounds), runs lm.h's
    solve on the calling thread with the function called from C++ (forward differences or
    the user's jac): scipy's answers, covariance and infodict, and the NumPy reference
    route's (what it ran before) within the solvers' tolerances."""
    from lawfit import scipy_compat

    x, y = _exp_decay()
    s = {None: None, "scalar": 0.3, "per point": np.linspace(0.5, 2.0, x.size)}[sigma]
    kw = dict(p0=[1.0, 1.0, 1.0], sigma=s, jac=_untraceable_jac if jac else None)
    assert scipy_compat._traced(_untraceable, x, y, kw["p0"], s, kw["jac"], {}) is None
    scipy_kw = dict(kw, sigma=None if s is None else np.broadcast_to(s, x.shape))  # 1-D
    popt_s, pcov_s = optimize.curve_fit(_untraceable, x, y, **scipy_kw)
    popt, pcov, info, mesg, ier = lawfit.curve_fit(_untraceable, x, y, full_output=True, **kw)
    assert spied_core.calls == 1
    assert ier in (1, 2, 3, 4) and info["nfev"] > 0 and mesg == lawfit.Status(ier).message
    np.testing.assert_allclose(popt, popt_s, rtol=1e-6)
    np.testing.assert_allclose(pcov, pcov_s, rtol=1e-4)
    np.testing.assert_allclose(info["fvec"], (_untraceable(x, *popt) - y) / (1 if s is None
                                                                             else s))
    # the reference route on the same call (x_scale='jac' is lm's default: the same scales)
    popt_r, pcov_r = lawfit.curve_fit(_untraceable, x, y, x_scale="jac", **kw)
    assert spied_core.calls == 1
    np.testing.assert_allclose(popt, popt_r, rtol=1e-7)
    np.testing.assert_allclose(pcov, pcov_r, rtol=1e-5)


def test_an_untraceable_callable_is_differenced_only_where_a_trial_may_be_taken(spied_core):
    """lm.h asks for a trial's Jacobian (n more calls of f) only where the trial's cost could
    accept it or claim ftol (models/common.h, LazyJacobian): from a far start, whose rejected
    trials then cost one call each, f is called fewer than (n + 1) times per evaluation, with
    the answers of the reference route, which differences every trial."""
    x, y = _exp_decay()
    calls = [0]

    def f(x, a, b, c):
        calls[0] += 1
        return _untraceable(x, a, b, c)

    start = [5.0, 0.1, -3.0]
    popt, pcov, info, mesg, ier = lawfit.curve_fit(f, x, y, p0=start, full_output=True)
    assert spied_core.calls == 1 and ier > 0
    assert calls[0] < 4 * info["nfev"]
    popt_r, pcov_r = lawfit.curve_fit(_untraceable, x, y, p0=start, x_scale="jac")
    np.testing.assert_allclose(popt, popt_r, rtol=1e-7)
    np.testing.assert_allclose(pcov, pcov_r, rtol=1e-5)


def test_curve_fit_untraceable_callable_log_residuals_and_routes(spied_core):
    x, y = _exp_decay()
    y = y - y.min() + 0.5
    kw = dict(p0=[1.0, 1.0, 1.0], residuals="log")
    popt, pcov = lawfit.curve_fit(_untraceable, x, y, **kw)
    assert spied_core.calls == 1
    popt_r, pcov_r = lawfit.curve_fit(_untraceable, x, y, x_scale="jac", **kw)
    np.testing.assert_allclose(popt, popt_r, rtol=1e-7)
    np.testing.assert_allclose(pcov, pcov_r, rtol=1e-5)
    # what only the reference route serves goes there
    for extra in (dict(bounds=(-10, 10)), dict(method="trf"), dict(jac="3-point"),
                  dict(diff_step=1e-6), dict(sigma=np.eye(x.size))):
        lawfit.curve_fit(_untraceable, x, y, p0=[1.0, 1.0, 1.0], **extra)
    assert spied_core.calls == 1


def test_curve_fit_untraceable_callable_errors(spied_core):
    x, y = _exp_decay()

    def boom(x, a, b, c):  # raises on the way to a = 2.5
        if a > 2.2:
            raise ZeroDivisionError("boom")
        return _untraceable(x, a, b, c)

    with pytest.raises(ZeroDivisionError, match="boom"):
        lawfit.curve_fit(boom, x, y, p0=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="f: returned shape \\(29,\\)"):
        lawfit.curve_fit(lambda x, a, b, c: _untraceable(x, a, b, c)[:-1], x, y, p0=[1, 1, 1])
    with pytest.raises(ValueError, match="Residuals are not finite in the initial point"):
        lawfit.curve_fit(lambda x, a, b, c: _untraceable(x, a, b, c) / (a - 1), x, y,
                         p0=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="jac: returned shape"):
        lawfit.curve_fit(_untraceable, x, y, p0=[1, 1, 1],
                         jac=lambda x, a, b, c: _untraceable_jac(x, a, b, c)[:, :2])
    with pytest.raises(RuntimeError, match="Optimal parameters not found"):
        lawfit.curve_fit(_untraceable, x, y, p0=[1.0, 1.0, 1.0], max_nfev=2)
    assert spied_core.calls == 5
