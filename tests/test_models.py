"""Each built-in model: one definition in C++, an independent one in the NumPy reference.

The C++ gradient is checked against central differences of the C++ value, and the C++ value
and gradient against the reference, at random parameters near each model's typical values.
"""
import numpy as np
import pytest

import lawfit
from lawfit import _core
from lawfit.reference import MODELS as REF

from batches import MODEL_NAMES, model_batch


def test_model_tables_agree():
    cpp = {m["name"]: m for m in _core.models()}
    assert set(cpp) == set(lawfit.models.available()) == set(REF) == set(MODEL_NAMES)
    for name in cpp:
        py, ref = lawfit.models.get(name), REF[name]
        assert tuple(cpp[name]["params"]) == py.param_names == tuple(ref.param_names)
        assert cpp[name]["n_inputs"] == py.n_inputs == ref.n_inputs
        assert tuple(cpp[name]["inputs"]) == py.input_names and len(py.input_names) == py.n_inputs
        assert cpp[name]["formula"] == py.formula
        assert cpp[name]["log_inputs"] == ref.log_inputs == py.log_inputs


def _points(name, seed=0):
    x, _, truth, _ = model_batch(name, n_problems=1, n_points=25, seed=seed)
    rng = np.random.default_rng(seed)
    p = truth[0] * (1 + 0.2 * rng.uniform(-1, 1, (x.shape[0], truth.shape[1])))
    return np.ascontiguousarray(p), np.ascontiguousarray(x)


HAS_LOG = [m["name"] for m in _core.models() if m["has_log"]]


@pytest.mark.parametrize("name, log_value", [(n, False) for n in MODEL_NAMES]
                         + [(n, True) for n in HAS_LOG])
def test_gradient_matches_central_differences(name, log_value):
    p, x = _points(name)
    f, grad = _core.evaluate_model(name, p, x, log_value)
    for j in range(p.shape[1]):
        h = 1e-5 * np.maximum(np.abs(p[:, j]), 1e-3)
        hi, lo = p.copy(), p.copy()
        hi[:, j] += h
        lo[:, j] -= h
        fd = (_core.evaluate_model(name, hi, x, log_value)[0]
              - _core.evaluate_model(name, lo, x, log_value)[0]) / (2 * h)
        # truncation error of the central difference, plus its rounding error eps |f| / h
        tol = 1e-6 * np.abs(grad[:, j]) + 100 * np.finfo(float).eps * np.abs(f) / h
        np.testing.assert_array_less(np.abs(fd - grad[:, j]), tol + 1e-300,
                                     err_msg=f"{name} d/d{REF[name].param_names[j]}")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_value_and_gradient_match_reference(name):
    p, x = _points(name, seed=3)
    f, grad = _core.evaluate_model(name, p, x, False)
    fr, jr = REF[name].value_and_jac(p, x)
    np.testing.assert_allclose(f, fr, rtol=1e-13)
    np.testing.assert_allclose(grad, jr, rtol=1e-10, atol=1e-12 * np.abs(jr).max())


@pytest.mark.parametrize("name", HAS_LOG)
def test_native_log_form_matches_log_of_value(name):
    p, x = _points(name, seed=5)
    f, grad = _core.evaluate_model(name, p, x, False)
    lf, lgrad = _core.evaluate_model(name, p, x, True)
    np.testing.assert_allclose(lf, np.log(f), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(lgrad, grad / f[:, None], rtol=1e-10, atol=1e-14)


def test_chinchilla_log_is_stable_where_naive_form_overflows():
    # a, b, e large enough that exp(a) overflows: logsumexp with the maximum factored out
    p = np.array([[800.0, 790.0, 1.0, 0.34, 0.28]])
    x = np.array([[1e9, 2e10]])
    lf, grad = _core.evaluate_model("chinchilla_log", p, x, True)
    assert np.isfinite(lf).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(grad[0, :3].sum(), 1.0)  # softmax weights


def test_model_is_a_plain_function():
    m = lawfit.models.saturating_power_law
    x = np.array([1e6, 1e8])
    np.testing.assert_allclose(m(x, 1.8, 400.0, 0.3), 1.8 + 400.0 * x ** -0.3)
    with pytest.raises(TypeError, match="3 parameters"):
        m(x, 1.0, 2.0)


def test_chinchilla_log_drops_negligible_terms_without_subnormals():
    """A logsumexp term below e^-300 of the largest is exactly 0 (value and gradient): it
    cannot change the sum in double precision, and no subnormal number is formed."""
    N = np.geomspace(1e7, 1e11, 9)
    x = np.column_stack([N, 20 * N])
    p = np.tile([5.0, 6.0, 0.5, 40.0, 0.3], (9, 1))  # the N term ~ e^-700 and below
    f, g = _core.evaluate_model("chinchilla_log", p, x, log_value=True)
    u = np.stack([p[:, 0] - p[:, 3] * np.log(N), p[:, 1] - p[:, 4] * np.log(x[:, 1]), p[:, 2]])
    np.testing.assert_allclose(f, np.logaddexp.reduce(u, axis=0), rtol=1e-15)
    assert np.all(g[:, 0] == 0) and np.all(g[:, 3] == 0)  # the dropped term's weight
    tiny = np.finfo(float).tiny
    assert not np.any((g != 0) & (np.abs(g) < tiny))
    softmax = np.exp(u - u.max(axis=0))
    softmax /= softmax.sum(axis=0)
    np.testing.assert_allclose(g[:, 1], softmax[1], rtol=1e-14)


def ragged_power_laws(n_problems, n_points, seed, min_points):
    """Ragged saturating power laws with missing values (NaN y), x <= 0 in every 11th
    problem, and a last problem with no usable point."""
    rng = np.random.default_rng(seed)
    x, y, truth, _ = model_batch("saturating_power_law", n_problems=n_problems,
                                 n_points=n_points, seed=seed)
    xs, ys = [], []
    for i in range(len(y)):
        keep = np.sort(rng.choice(n_points, int(rng.integers(min_points, n_points + 1)),
                                  replace=False))
        xi, yi = x[keep, 0].copy(), y[i, keep].copy()
        yi[rng.uniform(size=len(yi)) < 0.1] = np.nan
        if i % 11 == 0:
            xi[-1] = -1.0  # x <= 0: not usable by a power law
        xs.append(xi), ys.append(yi)
    xs.append(np.array([1e6, 1e7])), ys.append(np.array([np.nan, np.nan]))  # nothing usable
    return xs, ys


def test_compiled_saturating_guess_matches_numpy():
    """lawfit/guess.h (used when p0 is not given) runs the NumPy guess's algorithm on the same
    grids of alpha: the starts agree to rounding (where grid points tie to rounding, as on
    problems of three or four points, either may win; their residuals then agree)."""
    from lawfit._packing import NO_START, pack

    xs, ys = ragged_power_laws(60, 25, seed=4, min_points=3)
    m = lawfit.models.get("saturating_power_law")
    with np.errstate(all="ignore"):
        pk = pack(m, xs, ys, p0=NO_START)
        want = m.guess(pk.x, pk.y, pk.offsets)
    got = m.guess_packed(pk)
    np.testing.assert_array_equal(got[-1], want[-1])  # nothing usable: 0, 0, the first alpha
    for i in range(len(ys) - 1):
        ok = np.isfinite(ys[i]) & (xs[i] > 0)

        def sse(p):
            return np.sum((p[0] + p[1] * xs[i][ok] ** -p[2] - ys[i][ok]) ** 2)

        if got[i, 2] == want[i, 2]:
            np.testing.assert_allclose(got[i], want[i], rtol=1e-9)
        else:  # the residual sums differ by rounding, which is relative to y's spread
            syy = np.sum((ys[i][ok] - ys[i][ok].mean()) ** 2)
            assert abs(sse(got[i]) - sse(want[i])) <= 1e-12 * syy, i


def test_compiled_guess_lanes_equal_the_scalar_guess():
    """guess.h runs one problem per SIMD lane (points past a lane's own are NaN and take no
    part): every engine gives bitwise the scalar guess, on ragged problems with missing
    values, x <= 0, a problem with no usable point, and one too large for the lanes."""
    from lawfit import _core
    from lawfit._packing import NO_START, pack
    from lawfit.models import SAT_COARSE, SAT_FACTORS

    xs, ys = ragged_power_laws(203, 30, seed=8, min_points=1)
    xs.append(np.geomspace(1e3, 1e9, 5000))  # more points than a lane takes
    ys.append(2.0 + 300 * xs[-1] ** -0.3)
    m = lawfit.models.get("saturating_power_law")
    with np.errstate(all="ignore"):
        pk = pack(m, xs, ys, p0=NO_START)
    args = (pk.inputs[:, 0], pk.y, pk.offsets, SAT_COARSE, SAT_FACTORS)
    want = _core.guess_saturating_power_law(*args, engine="scalar")
    for name, _, ok in _core.engines():
        if ok:
            for threads in (1, 2):
                got = _core.guess_saturating_power_law(*args, n_threads=threads, engine=name)
                np.testing.assert_array_equal(got, want, err_msg=name)
