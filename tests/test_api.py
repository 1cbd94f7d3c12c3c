"""lawfit.fit: the input forms, the result object, covariances and weights."""
import subprocess
import sys

import numpy as np
import pytest

import lawfit

from batches import model_batch

NAME = "saturating_power_law"


@pytest.fixture(scope="module")
def batch():
    x, y, truth, p0 = model_batch(NAME, n_problems=6, n_points=15, seed=9)
    return x[:, 0], y, truth, p0


def test_input_forms_give_the_same_fits(batch):
    x, y, _, p0 = batch
    P, m = y.shape
    lists = lawfit.fit(NAME, [x] * P, list(y), p0=p0)
    padded = lawfit.fit(NAME, x, y, p0=p0)                       # shared x grid
    padded_full = lawfit.fit(NAME, np.tile(x, (P, 1)), y, p0=p0)
    groups = np.repeat(np.array(list("fbdaec")), m)               # unsorted labels
    order = np.argsort(list("fbdaec"), kind="stable")
    flat = lawfit.fit(NAME, np.tile(x, P), y.ravel(), groups=groups, p0=p0[order])
    for r in (padded, padded_full):
        np.testing.assert_array_equal(r.x, lists.x)
    np.testing.assert_array_equal(flat.x, lists.x[order])
    assert list(flat.labels) == sorted("fbdaec")


def test_padded_nan_marks_missing_points(batch):
    x, y, _, p0 = batch
    y2 = y.copy()
    y2[0, 10:] = np.nan
    r = lawfit.fit(NAME, x, y2, p0=p0)
    alone = lawfit.fit(NAME, x[:10], y[0, :10], p0=p0[0])
    np.testing.assert_array_equal(r.x[0], alone.x[0])
    assert list(r.n_points) == [10] + [y.shape[1]] * (y.shape[0] - 1)


def test_two_input_model_accepts_columns_and_scipy_layout():
    x, y, _, p0 = model_batch("chinchilla", n_problems=1, seed=2)
    a = lawfit.fit("chinchilla", x, y[0], p0=p0[0])
    b = lawfit.fit("chinchilla", x.T, y[0], p0=p0[0])   # (2, m) as curve_fit's xdata
    np.testing.assert_array_equal(a.x, b.x)


def test_result_object(batch):
    x, y, _, p0 = batch
    r = lawfit.fit(NAME, x, y, p0=p0, return_cov=True)
    assert len(r) == y.shape[0] and r.x.shape == (y.shape[0], 3)
    assert r.params is r.x and r.success.all()
    assert r.message[0] == lawfit.Status(int(r.status[0])).message
    one = r[-1]
    assert one.success and np.array_equal(one.x, r.x[-1]) and one.cov.shape == (3, 3)
    assert "FitResult" in repr(r) and NAME in repr(r)
    assert sum(r.status_counts().values()) == len(r)
    np.testing.assert_allclose(r.stderr, np.sqrt(np.diagonal(r.cov, axis1=1, axis2=2)))
    pd = pytest.importorskip("pandas")
    frame = r.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(r)
    assert {"E", "A", "alpha", "E_stderr", "cost", "status", "message"} <= set(frame.columns)


def test_batched_covariance_matches_curve_fit(batch):
    x, y, _, p0 = batch
    sigma = 0.01 * y
    r = lawfit.fit(NAME, x, y, p0=p0, sigma=sigma, return_cov=True)
    for i in range(len(r)):
        _, pcov = lawfit.curve_fit(lambda x, E, A, a: E + A * x ** -a, x, y[i], p0=p0[i],
                                   sigma=sigma[i])
        np.testing.assert_allclose(r.cov[i], pcov, rtol=1e-4)


def test_fixed_parameter_has_zero_covariance(batch):
    x, y, _, p0 = batch
    p0 = p0.copy()
    p0[:, 2] = 0.34
    r = lawfit.fit(NAME, x, y, p0=p0, bounds=([-np.inf, -np.inf, 0.34], [np.inf, np.inf, 0.34]),
                   return_cov=True)
    assert (r.x[:, 2] == 0.34).all()
    assert (r.cov[:, 2, :] == 0).all() and (r.cov[:, :, 2] == 0).all()
    assert (np.diagonal(r.cov, axis1=1, axis2=2)[:, :2] > 0).all()


def test_integer_weights_equal_repeated_points(batch):
    x, y, _, p0 = batch
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, y.shape[1]).astype(float)
    weighted = lawfit.fit(NAME, x, y[0], p0=p0[0], weights=w, ftol=1e-14, xtol=1e-14,
                          gtol=1e-14)
    idx = np.repeat(np.arange(y.shape[1]), w.astype(int))
    repeated = lawfit.fit(NAME, x[idx], y[0, idx], p0=p0[0], ftol=1e-14, xtol=1e-14,
                          gtol=1e-14)
    np.testing.assert_allclose(weighted.x, repeated.x, rtol=1e-9)
    np.testing.assert_allclose(weighted.cost, repeated.cost, rtol=1e-12)


def test_log_residuals_fit_the_log_objective(batch):
    x, y, _, p0 = batch
    r = lawfit.fit(NAME, x, y[0], p0=p0[0], residuals="log")
    f = lambda p: np.log(p[0] + p[1] * x ** -p[2]) - np.log(y[0])
    np.testing.assert_allclose(r.cost[0], 0.5 * np.sum(f(r.x[0]) ** 2), rtol=1e-12)
    assert r.optimality[0] < 1e-6


def test_default_start_is_data_driven(batch):
    x, y, truth, _ = batch
    r = lawfit.fit(NAME, x, y)  # no p0: variable projection over alpha
    assert r.success.all()
    np.testing.assert_allclose(r.x[:, 2], truth[:, 2], rtol=0.2)
    with pytest.raises(ValueError, match="p0"):
        lawfit.fit("chinchilla", *model_batch("chinchilla", n_problems=2)[:2])


def test_backends_report():
    b = lawfit.backends()
    assert b["cpu"][0] and b["numpy"][0]
    assert set(b) == {"cpu", "cuda", "numpy"}


def test_auto_backend_sends_large_calls_to_the_gpu(monkeypatch):
    from lawfit import _backends

    big = _backends.AUTO_CUDA_MIN_UNITS
    # Without a usable GPU, auto is the CPU at any size.
    monkeypatch.setattr(_backends, "_load_cuda", lambda: (None, "no device"))
    assert _backends.resolve("auto", 10 * big) == "cpu"
    with pytest.raises(ValueError, match="backend: 'cuda' is not available: no device"):
        _backends.resolve("cuda")
    # With one, auto takes it from AUTO_CUDA_MIN_UNITS solve units on.
    monkeypatch.setattr(_backends, "_load_cuda", lambda: (object(), None))
    assert _backends.resolve("auto", big) == "cuda"
    assert _backends.resolve("auto", big - 1) == "cpu"
    assert _backends.resolve("auto") == "cpu"
    assert _backends.resolve("cpu", 10 * big) == "cpu"
    # fit() counts problems times grid starts.
    seen = []
    real = _backends.resolve
    monkeypatch.setattr(_backends, "resolve",
                        lambda backend, n_units=None, model=None: seen.append(n_units) or
                        real(backend, None, model))
    x = np.geomspace(1e6, 1e10, 8)
    y = np.tile(2.0 + 500 * x ** -0.3, (3, 1))
    lawfit.fit(NAME, x, y, p0=lawfit.grid(E=[1.0, 2.0], A=[100.0, 500.0], alpha=[0.3]))
    assert seen[-1] == 3 * 4


def test_demo_runs():
    out = subprocess.run([sys.executable, "-m", "lawfit", "demo", "--problems", "500",
                          "--scipy-subset", "20"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fits/s" in out.stdout and "speed ratio lawfit / scipy" in out.stdout
    assert "parameter recovery" in out.stdout


def test_singular_problem_is_handled():
    # All x equal: E, A and alpha cannot be told apart, J^T J is singular.
    x = np.full(10, 1e8)
    y = 2.0 + 0.001 * np.sin(np.arange(10))
    r = lawfit.fit(NAME, x, y, p0=[1.5, 500.0, 0.3], return_cov=True)
    assert r.status[0] in [s.value for s in lawfit.Status]
    assert np.isfinite(r.x).all() and np.isfinite(r.cost).all()
    np.testing.assert_allclose(r.x[0, 0] + r.x[0, 1] * 1e8 ** -r.x[0, 2], y.mean(), rtol=1e-6)
    with pytest.warns(lawfit.OptimizeWarning):
        _, pcov = lawfit.curve_fit(NAME, x, y, p0=[1.5, 500.0, 0.3])
    assert np.isinf(pcov).all()


def test_singular_covariance_verdict_does_not_depend_on_units():
    # The covariance comes from J^T J: whether a direction is singular is decided on J^T J
    # scaled to a unit diagonal, so a parameter's units (a column of J scaled by 1e-8 or
    # 1e8) change neither the verdict nor, beyond rounding, the covariance.
    from lawfit._result import covariance

    rng = np.random.default_rng(3)
    J = rng.normal(size=(30, 3))
    rank1 = np.outer(np.ones(30), rng.normal(size=3)) * (1 + 1e-3 * rng.normal(size=(30, 1)))
    fixed = np.zeros((1, 3), dtype=bool)
    for scale in ([1.0, 1.0, 1.0], [1e-8, 1.0, 1e8]):
        Js = J * scale
        cov = covariance((Js.T @ Js)[None], np.array([0.5]), np.array([30]), fixed,
                         absolute_sigma=True)[0]
        np.testing.assert_allclose(cov, np.linalg.inv(Js.T @ Js), rtol=1e-10)
        Rs = rank1 * scale  # rank 2 at most: columns 0 and 1 are scaled copies of one another
        Rs[:, 0] = Rs[:, 1] * (scale[0] / scale[1]) * 3.0
        bad = covariance((Rs.T @ Rs)[None], np.array([0.5]), np.array([30]), fixed)[0]
        assert np.isinf(bad).all()


def test_residuals_and_jacobian_on_request(batch):
    x, y, _, p0 = batch
    sigma = 0.01 * y
    for residuals in ("linear", "log"):
        r = lawfit.fit(NAME, x, y, p0=p0, sigma=sigma, residuals=residuals,
                       return_residuals=True)
        fun, jac = r.residuals(2)
        E, A, a = r.x[2]
        f = E + A * x ** -a
        want = (np.log(f) - np.log(y[2]) if residuals == "log" else f - y[2]) / sigma[2]
        np.testing.assert_allclose(fun, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(0.5 * np.sum(fun ** 2), r.cost[2], rtol=1e-12)
        grad = jac.T @ fun  # the gradient of the cost vanishes at the solution
        assert np.all(np.abs(grad) <= 1e-5 * np.sqrt(np.sum(jac ** 2, axis=0)) * np.sqrt(2 * r.cost[2]))
        assert r[2].fun.shape == (len(x),)
    with pytest.raises(ValueError, match="return_residuals"):
        lawfit.fit(NAME, x, y, p0=p0).residuals(0)


def test_chunked_equals_unchunked_and_reports_progress():
    x, y, truth, p0 = model_batch(NAME, n_problems=23, n_points=12, seed=4)
    x = x[:, 0]
    rng = np.random.default_rng(1)
    sigma = 0.01 * y * rng.uniform(0.5, 2, y.shape)
    weights = rng.integers(0, 3, y.shape).astype(float)
    lower = np.tile([-np.inf, 0.0, 0.0], (len(y), 1))
    kw = dict(p0=p0, sigma=sigma, weights=weights, bounds=(lower, np.inf), return_cov=True,
              return_residuals=True)
    whole = lawfit.fit(NAME, x, y, **kw)
    calls = []
    for xs, ys, extra in ((x, y, {}), ([x] * len(y), list(y),
                                       dict(sigma=list(sigma), weights=list(weights)))):
        part = lawfit.fit(NAME, xs, ys, chunk_size=5, progress=lambda d, t: calls.append((d, t)),
                          **{**kw, **extra})
        for field in ("x", "cost", "status", "nfev", "active_mask", "cov", "fun", "jac",
                      "n_points", "offsets"):
            np.testing.assert_array_equal(getattr(part, field), getattr(whole, field))
    assert calls[:5] == [(5, 23), (10, 23), (15, 23), (20, 23), (23, 23)]
    # unguided starts chunk too
    np.testing.assert_array_equal(lawfit.fit(NAME, x, y, chunk_size=4).x, lawfit.fit(NAME, x, y).x)


def test_chunked_validates_every_chunk_before_solving():
    x, y, _, p0 = model_batch(NAME, n_problems=12, n_points=10, seed=5)
    sigma = np.full(y.shape, 0.01)
    sigma[-1, 3] = -1.0  # only the last chunk is bad
    calls = []
    with pytest.raises(ValueError, match="sigma"):
        lawfit.fit(NAME, x[:, 0], y, p0=p0, sigma=sigma, chunk_size=5,
                   progress=lambda d, t: calls.append(d))
    assert calls == []
    with pytest.raises(ValueError, match="chunk_size"):
        lawfit.fit(NAME, x[:, 0], y, p0=p0, chunk_size=0)


def test_one_problem_given_as_lists_of_numbers():
    """x and y as plain lists (scipy's curve_fit takes them): one problem, as the arrays."""
    xs, ys = [1, 2, 3, 4, 5], [3, 2.5, 2.2, 2.1, 2.05]
    a = lawfit.fit("saturating_power_law", xs, ys)
    b = lawfit.fit("saturating_power_law", np.array(xs, float), np.array(ys))
    np.testing.assert_array_equal(a.x, b.x)
    assert a.x.shape == (1, 3)
    pairs = [[1e6, 1e9], [2e6, 1e9], [4e6, 2e9], [1e7, 3e9], [2e7, 5e9], [5e7, 1e10]]
    c = lawfit.fit("chinchilla", pairs, [3.0, 2.9, 2.7, 2.5, 2.4, 2.3],
                   p0=[1.7, 400, 400, 0.3, 0.3])
    d = lawfit.fit("chinchilla", np.array(pairs), np.array([3.0, 2.9, 2.7, 2.5, 2.4, 2.3]),
                   p0=[1.7, 400, 400, 0.3, 0.3])
    np.testing.assert_array_equal(c.x, d.x)
    # [x0] with a 1-D y is still that problem's x, as a list of one problem's arrays.
    e = lawfit.fit("saturating_power_law", [np.array(xs, float)], ys)
    np.testing.assert_array_equal(e.x, a.x)
