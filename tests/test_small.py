"""The small-call route (lawfit._plan.solve_small): a clean call of a few problems takes a
short way through the plan, with the general path's result bit for bit; anything it does not
take (a NaN, a bad value, bounds, weights...) goes the general way, with its errors and
statuses."""
from __future__ import annotations

import numpy as np
import pytest

import lawfit
from lawfit import _plan

from batches import model_batch

CASES = [("saturating_power_law", 1), ("saturating_power_law", 7), ("power_law", 3),
         ("chinchilla", 5), ("logistic", 4), ("broken_power_law", 2)]


def same(a, b) -> None:
    for key, va in vars(a).items():
        vb = vars(b)[key]
        if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
            np.testing.assert_array_equal(np.asarray(va), np.asarray(vb), err_msg=key)
            assert np.asarray(va).dtype == np.asarray(vb).dtype, key
        elif key != "model":
            assert va == vb, key


def general(*args, **kw):
    """The general path: an explicit chunk_size (the same solve) keeps a call off the
    small route."""
    return lawfit.fit(*args, chunk_size=10**6, **kw)


def answers(monkeypatch, owner, name: str) -> list:
    """Whether each call of ``owner.name`` (a route that answers a call or returns None to
    hand it on) answered (True) or handed the call on (False), in order."""
    seen = []
    real = getattr(owner, name)

    def spy(*a):
        out = real(*a)
        seen.append(out is not None)
        return out

    monkeypatch.setattr(owner, name, spy)
    return seen


@pytest.fixture
def taken(monkeypatch):
    """Whether each call of the small route took the call (True) or left it to the general
    path (False), in order."""
    return answers(monkeypatch, lawfit.api, "solve_small")


@pytest.mark.parametrize("name, P", CASES)
@pytest.mark.parametrize("residuals", ["linear", "log"])
def test_the_small_route_gives_the_general_paths_bits(name, P, residuals, taken):
    x, y, truth, p0 = model_batch(name, n_problems=P, n_points=15, seed=P)
    if residuals == "log" and not (y > 0).all():
        pytest.skip("log residuals need y > 0")
    for kw in (dict(), dict(loss="huber", f_scale=0.5), dict(ftol=1e-12, max_nfev=50)):
        got = lawfit.fit(name, x, y, p0=p0, residuals=residuals, **kw)
        assert taken and taken[-1]  # the small route took it
        same(got, general(name, x, y, p0=p0, residuals=residuals, **kw))
        one = lawfit.fit(name, x, y[0], p0=p0[0], residuals=residuals, **kw)  # 1-D y
        same(one, general(name, x, y[0], p0=p0[0], residuals=residuals, **kw))
    # Bounds for every problem alike (one parameter fixed), and covariances.
    wide = 10 * np.abs(p0).max(axis=0) + 1
    lo, hi = p0.min(axis=0) - wide, p0.max(axis=0) + wide
    for cov in (dict(return_cov=True), dict(return_cov=True, singular_cov="pinv",
                                            absolute_sigma=True)):
        got = lawfit.fit(name, x, y, p0=p0, bounds=(lo, hi), residuals=residuals, **cov)
        assert taken[-1]
        same(got, general(name, x, y, p0=p0, bounds=(lo, hi), residuals=residuals, **cov))
        fixed_lo, fixed_hi = lo.copy(), hi.copy()
        fixed_lo[-1] = fixed_hi[-1] = p0[0, -1]
        one = lawfit.fit(name, x, y[0], p0=p0[0], bounds=(fixed_lo, fixed_hi),
                         residuals=residuals, **cov)
        assert taken[-1]
        same(one, general(name, x, y[0], p0=p0[0], bounds=(fixed_lo, fixed_hi),
                          residuals=residuals, **cov))
        assert one.n_free[0] == len(lo) - 1


@pytest.mark.parametrize("name", ["saturating_power_law", "power_law"])
def test_without_a_start_the_small_route_starts_from_the_guess_with_the_general_paths_bits(
        name, taken):
    """p0 omitted: the small route makes the data-driven start as pack does (the compiled
    guess of the saturating power law, the others' NumPy guesses), clipped to the bounds."""
    x, y, truth, p0 = model_batch(name, n_problems=5, n_points=15, seed=3)
    for kw in (dict(), dict(residuals="log"), dict(return_cov=True),
               dict(bounds=(p0.min(axis=0) - 0.1 * np.abs(p0.min(axis=0)),
                            p0.max(axis=0) + 0.1 * np.abs(p0.max(axis=0))))):
        got = lawfit.fit(name, x, y, **kw)
        assert taken[-1]  # the small route took it
        same(got, general(name, x, y, **kw))
        same(lawfit.fit(name, x, y[0], **kw), general(name, x, y[0], **kw))


def test_a_model_without_a_guess_needs_a_start_on_the_small_route_too():
    name = next(n for n in lawfit.models.available() if not lawfit.models.get(n).has_guess)
    x, y, truth, p0 = model_batch(name, n_problems=2, n_points=12, seed=4)
    with pytest.raises(ValueError, match="p0: required"):
        lawfit.fit(name, x, y)


def test_what_the_small_route_does_not_take_goes_the_general_way():
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=4, n_points=12, seed=1)
    holes = y.copy()
    holes[1, 3] = np.nan  # a missing point: left out (the general path counts it)
    r = lawfit.fit("saturating_power_law", x, holes, p0=p0)
    same(r, general("saturating_power_law", x, holes, p0=p0))
    assert r.n_omitted.tolist() == [0, 1, 0, 0]
    bad_x = x.copy()
    bad_x[0] = -1.0  # x <= 0 under a power: NONFINITE_DATA, not an error
    r = lawfit.fit("saturating_power_law", bad_x, y, p0=p0)
    same(r, general("saturating_power_law", bad_x, y, p0=p0))
    assert (r.status == lawfit.Status.NONFINITE_DATA).all()
    neg = y.copy()
    neg[2, 0] = -1.0  # log residuals of y <= 0: that problem's status
    r = lawfit.fit("saturating_power_law", x, neg, p0=p0, residuals="log")
    same(r, general("saturating_power_law", x, neg, p0=p0, residuals="log"))
    start = p0.copy()
    start[0, 0] = np.nan
    with pytest.raises(ValueError, match="p0: must be finite; parameter 'E' of problem 0"):
        lawfit.fit("saturating_power_law", x, y, p0=start)
    with pytest.raises(ValueError, match=r"p0: expected a scalar, shape \(3,\)"):
        lawfit.fit("saturating_power_law", x, y, p0=p0[:, :2])
    with pytest.raises(ValueError, match="loss: expected one of"):
        lawfit.fit("saturating_power_law", x, y, p0=p0, loss="l3")
    with pytest.raises(ValueError, match="f_scale: must be a positive finite number, got True"):
        lawfit.fit("saturating_power_law", x, y, p0=p0, f_scale=True)
    with pytest.raises(ValueError, match="p0: parameter 'E' of problem 0 is .* outside its "
                                         "bounds"):
        lawfit.fit("saturating_power_law", x, y, p0=p0, bounds=(100.0, np.inf))
    with pytest.raises(ValueError, match="bounds: lower bound 2.0 exceeds upper bound 1.0"):
        lawfit.fit("saturating_power_law", x, y, p0=p0, bounds=([0, 0, 2.0], [9, 9, 1.0]))
    with pytest.raises(ValueError, match="bounds: must not contain NaN"):
        lawfit.fit("saturating_power_law", x, y, p0=p0, bounds=(np.nan, np.inf))


def test_options_are_built_once_per_distinct_arguments():
    from lawfit._options import Options

    a = Options.build(3, loss="huber", f_scale=0.5)
    assert Options.build(3, loss="huber", f_scale=0.5) is a
    assert Options.build(3, loss="huber", f_scale=1) is not a
    with pytest.raises(ValueError, match="f_scale"):  # 1 == True, but a bool is refused
        Options.build(3, f_scale=True)
    assert Options.build(3, f_scale=1).f_scale == 1.0
    # The default arguments: one Options per n_params, the one the general build makes.
    d = Options.build(3)
    assert Options.build(3, loss="linear", residuals="linear", f_scale=1.0) is d
    assert d == Options._build(3, "linear", 1.0, "linear", None, None, None, None, "float64",
                               "auto")
    for other in (dict(dtype=np.float64), dict(loss=np.str_("linear")), dict(f_scale=1)):
        assert Options.build(3, **other) == d  # (the general build's, equal)
    assert Options.build(5) is not d and Options.build(5).max_nfev == 500


def test_a_larger_batch_on_threads_takes_the_small_route_with_the_same_bits():
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=6000, n_points=20, seed=9)
    for t in (1, 2):
        same(lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=t),
             general("saturating_power_law", x, y, p0=p0, n_threads=t))


def test_a_law_takes_the_small_route_too():
    law = lawfit.law("E + A * N**-alpha + B * D**-beta", inputs=["N", "D"],
                     params=["E", "A", "B", "alpha", "beta"])
    x, y, truth, p0 = model_batch("chinchilla", n_problems=5, n_points=15, seed=3)
    for residuals in ("linear", "log"):
        same(lawfit.fit(law, x, y, p0=p0, residuals=residuals, bounds=(0.0, np.inf),
                        return_cov=True),
             general(law, x, y, p0=p0, residuals=residuals, bounds=(0.0, np.inf),
                     return_cov=True))
    bad = x.copy()
    bad[0, 1] = 0.0  # D = 0 under a non-integer power: the general path's warning, once
    with pytest.warns(RuntimeWarning, match="input 'D' is <= 0") as told:
        r = lawfit.fit(law, bad, y, p0=p0)
    assert len([w for w in told if "input 'D'" in str(w.message)]) == 1
    assert (r.status == lawfit.Status.NONFINITE_DATA).all()


@pytest.fixture
def answered(monkeypatch):
    """Whether each call of the core's fit_grid answered (True) or handed the call back
    (False), in order."""
    from lawfit import _backends

    return answers(monkeypatch, _backends.Cpu, "fit_grid")


def test_the_cores_fit_grid_takes_clean_calls_whole_with_the_general_paths_bits(answered):
    """fit_grid (the core validates and solves a clean call in one step) answers the clean
    calls without residuals to return; what it does not take (a layout it would have to
    copy, a value that is not finite) returns None there and still gets the general bits."""
    law = lawfit.law("E + A * N**-alpha + B * D**-beta", inputs=["N", "D"],
                     params=["E", "A", "B", "alpha", "beta"])
    for name, P in CASES + [(law, 4)]:
        model = "chinchilla" if name is law else name
        x, y, truth, p0 = model_batch(model, n_problems=P, n_points=15, seed=P)
        wide = 10 * np.abs(p0).max(axis=0) + 1
        lo, hi = p0.min(axis=0) - wide, p0.max(axis=0) + wide
        fixed_lo, fixed_hi = lo.copy(), hi.copy()
        fixed_lo[0] = fixed_hi[0] = p0[0, 0]
        calls = [dict(p0=p0), dict(p0=p0, loss="huber", f_scale=0.5),
                 dict(p0=p0, bounds=(lo, hi)), dict(p0=p0[0], bounds=(fixed_lo, fixed_hi)),
                 dict(p0=p0[0]), dict(p0=p0, bounds=(float(lo.min()), np.inf)),
                 dict(p0=p0, return_cov=True),
                 dict(p0=p0[0], bounds=(fixed_lo, fixed_hi), return_cov=True,
                      singular_cov="pinv", absolute_sigma=True)]
        if (y > 0).all():
            calls.append(dict(p0=p0, residuals="log"))
        for kw in calls:
            answered.clear()
            got = lawfit.fit(name, x, y, **kw)
            assert answered == [True], (name, kw)
            same(got, general(name, x, y, **kw))
        one = lawfit.fit(name, x, y[0], p0=p0[0])
        assert answered[-1]
        same(one, general(name, x, y[0], p0=p0[0]))
    assert lawfit.fit(law, x, y, p0=p0[0], bounds=(fixed_lo, fixed_hi)).n_free.tolist() == [4] * 4
    # Not taken whole: a Fortran-ordered y (the core would need a copy), an infinite point.
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=5, n_points=12, seed=2)
    for yy in (np.asfortranarray(y), np.where(np.arange(12) == 3, np.inf, y)):
        answered.clear()
        got = lawfit.fit("saturating_power_law", x, yy, p0=p0)
        assert answered == [False]
        same(got, general("saturating_power_law", x, yy, p0=p0))


def test_fit_grid_skips_step_1_only_where_every_problem_passes_it(answered):
    """fit_grid's batch skips step 1's check per problem (the call checked every value at
    once) only where that check could not fail: with fewer points than free parameters every
    problem still gets step 1's status, and with one parameter fixed the same two points
    are enough, as on the general route."""
    x = np.array([1.0, 2.0])
    y = np.array([[2.0, 1.5], [3.0, 2.0]])
    p0 = np.array([1.0, 1.0, 0.5])
    fixed = ([1.0, -np.inf, -np.inf], [1.0, np.inf, np.inf])
    for kw, status in ((dict(p0=p0), lawfit.Status.TOO_FEW_POINTS),
                       (dict(p0=p0, bounds=fixed), None)):
        answered.clear()
        got = lawfit.fit("saturating_power_law", x, y, **kw)
        assert answered == [True]
        same(got, general("saturating_power_law", x, y, **kw))
        if status is None:
            assert (got.status > 0).all()
        else:
            assert (got.status == status).all()


def test_a_batch_beyond_the_small_route_goes_to_fit_grid_whole_after_the_memory_check(
        monkeypatch, answered):
    """Up to a chunk of problems the core's fit_grid takes a clean call as it is (the small
    route's own packing stops at SMALL_PROBLEMS); the call's memory is checked first, as the
    general path checks it."""
    from lawfit import api

    monkeypatch.setattr(_plan, "SMALL_PROBLEMS", 40)
    monkeypatch.setattr(api, "SMALL_PROBLEMS", 40)
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=60, n_points=12, seed=5)
    for kw in (dict(), dict(return_cov=True), dict(bounds=(0.0, np.inf))):
        answered.clear()
        got = lawfit.fit("saturating_power_law", x, y, p0=p0, **kw)
        assert answered == [True]
        same(got, general("saturating_power_law", x, y, p0=p0, **kw))
    holes = y.copy()
    holes[3, 4] = np.nan  # handed back: packed the general way, the point left out
    answered.clear()
    r = lawfit.fit("saturating_power_law", x, holes, p0=p0)
    assert answered == [False] and r.n_omitted[3] == 1
    same(r, general("saturating_power_law", x, holes, p0=p0))

    def refuse(nbytes, what):
        raise MemoryError(f"{what}: needs {nbytes} bytes")

    monkeypatch.setattr(api, "require_memory", refuse)
    answered.clear()
    with pytest.raises(MemoryError, match="fit: 60 problems"):
        lawfit.fit("saturating_power_law", x, y, p0=p0)
    assert answered == []  # refused before any work
    lawfit.fit("saturating_power_law", x, y[:40], p0=p0[:40])  # the small route: no check


@pytest.fixture
def short(monkeypatch):
    """Whether each curve_fit call of a built-in took its short route (True) or its
    general one (False), in order."""
    from lawfit import scipy_compat

    return answers(monkeypatch, scipy_compat, "_curve_fit_small")


def test_curve_fit_with_a_built_in_takes_the_short_route_with_the_general_bits(short, answered):
    """curve_fit with a built-in model on a clean call goes straight to fit's short route
    (with a start, the core's fit_grid, covariances included) and returns what its general
    route returns, bit for bit, warnings and errors alike; xdata as (m,), (m, k) or scipy's
    (k, m)."""
    from lawfit.scipy_compat import curve_fit

    def general_cf(name, x, y, **kw):  # lists keep a call off the short route
        kw = {k: (list(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
        return curve_fit(name, np.asarray(x).tolist(), list(y), **kw)

    def both(name, x, y, **kw):
        short.clear()
        answered.clear()
        got = curve_fit(name, x, y, **kw)
        assert short == [True] and answered == ([True] if "p0" in kw else []), (name, kw)
        want = general_cf(name, x, y, **kw)
        assert short == [True]  # (lists: not offered to the short route)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
        return got

    for name, _ in CASES:
        x, y, truth, p0 = model_batch(name, n_problems=1, n_points=15, seed=3)
        xs = [x[:, 0], x] if x.shape[1] == 1 else [x, x.T]  # (m,), (m, k), scipy's (k, m)
        for xx in xs:
            both(name, xx, y[0], p0=p0[0])
            both(name, xx, y[0], p0=p0[0], absolute_sigma=True, method="lm")
            if lawfit.models.get(name).has_guess:
                both(name, xx, y[0])
    # A parameter the data cannot determine: scipy's warning, at the caller, and inf.
    x = np.geomspace(1.0, 100.0, 8)
    with pytest.warns(lawfit.OptimizeWarning, match="Covariance") as caught:
        popt, pcov = both("saturating_power_law", x, np.full(8, 2.0),
                          p0=np.array([2.0, 0.0, 0.5]))
    assert caught[0].filename == __file__ and np.isinf(pcov).all()
    # scipy's errors: a start where the residuals are not finite (the short route's fit
    # says so); handed back: too few points, data that is not finite.
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=1, n_points=15, seed=3)
    for xx, yy, start in ((x[:, 0], y[0], np.array([1.8, 600.0, -400.0])),
                          (x[:, 0].tolist(), list(y[0]), [1.8, 600.0, -400.0])):
        short.clear()
        with pytest.raises(ValueError, match="p0: Residuals are not finite"):
            curve_fit("saturating_power_law", xx, yy, p0=start)
        assert short == ([True] if isinstance(xx, np.ndarray) else [])
    with pytest.raises(TypeError, match="must not exceed"):
        curve_fit("saturating_power_law", x[:2], y[0, :2], p0=p0[0])
    bad = y[0].copy()
    bad[4] = np.nan
    short.clear()
    with pytest.raises(ValueError, match="ydata: must not contain NaN"):
        curve_fit("saturating_power_law", x, bad, p0=p0[0])
    assert short == [False]


def test_a_grid_changed_in_place_between_calls_is_fitted_as_it_now_is():
    """The short route keeps the log of small grids by their values, so the same grid in
    call after call is one lookup; a grid changed in place is a new grid."""
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=3, n_points=12, seed=4)
    grid = x[:, 0].copy()
    first = lawfit.fit("saturating_power_law", grid, y, p0=p0)
    same(first, general("saturating_power_law", grid, y, p0=p0))
    grid *= 1.5
    again = lawfit.fit("saturating_power_law", grid, y, p0=p0)
    same(again, general("saturating_power_law", grid, y, p0=p0))
    assert not np.array_equal(again.x, first.x)
    grid[2] = -1.0  # out of the model's domain: the general path says so, as before
    same(lawfit.fit("saturating_power_law", grid, y, p0=p0),
         general("saturating_power_law", grid, y, p0=p0))


def test_the_core_reads_an_options_fields_at_once_and_any_objects_one_by_one():
    """The core takes an Options' eight solver fields as one tuple (Options.core_fields,
    made once) and those of any object with the same attributes one by one: the same
    solve either way."""
    import types

    from lawfit import _core
    from lawfit._options import Options

    o = Options.build(3, loss="huber", f_scale=0.5, ftol=1e-10, max_nfev=40)
    assert o.core_fields == (o.ftol, o.xtol, o.gtol, o.max_nfev, o.max_nfev_cap,
                             o.initial_damping, o.loss, o.f_scale)
    assert o.core_fields is o.core_fields  # made once
    duck = types.SimpleNamespace(**{k: getattr(o, k) for k in (
        "ftol", "xtol", "gtol", "max_nfev", "max_nfev_cap", "initial_damping", "loss",
        "f_scale")})
    x, y, truth, p0 = model_batch("saturating_power_law", n_problems=6, n_points=12, seed=6)
    u = np.log(x)
    a, b = (_core.fit_grid("saturating_power_law", u, y, p0, None, None, opts, False, 1, "auto")
            for opts in (o, duck))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    with pytest.raises(ValueError, match="options: has no attribute 'gtol'"):
        del duck.gtol
        _core.fit_grid("saturating_power_law", u, y, p0, None, None, duck, False, 1, "auto")
