"""Bad input: a ValueError naming the argument, raised before any solver work.

Structural mistakes (shapes, option values, bounds, starts) are the caller's and stop the call
with a ``ValueError`` whose message starts with (or at least contains) the argument's name.
Bad *data* in one problem of a batch is not an error of the call: that problem gets its status
(NONFINITE_DATA, ...) and the others are solved.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import lawfit
import lawfit._backends
import lawfit.reference
from lawfit import Status

from batches import model_batch

SPL = "saturating_power_law"
P0 = np.array([1.8, 600.0, 0.34])
X = np.geomspace(1e6, 1e10, 12)
Y = 1.8 + 600.0 * X ** -0.34 * (1 + 0.01 * np.sin(np.arange(12)))
XC = np.column_stack([np.geomspace(1e7, 1e10, 12), np.geomspace(1e8, 1e12, 12)])
P0C = np.array([1.69, 406.4, 410.7, 0.34, 0.28])
YC = lawfit.models.chinchilla(XC, *P0C)


def _spl(x, E, A, alpha):
    return E + A * x ** -alpha


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if any solver runs: validation must come first."""
    def boom(*args, **kwargs):
        raise AssertionError("a solver ran before the input was rejected")

    monkeypatch.setattr(lawfit._backends.Backend, "solve", boom)
    monkeypatch.setattr(lawfit._backends.Backend, "objective", boom)
    # The small-call route's solve, which checks a clean call and solves it in one step: a
    # call it declines (None: not the clean case, checked before any solve) did no work.
    declines = lawfit._backends.Cpu.fit_grid

    def fit_grid(*args, **kwargs):
        if declines(*args, **kwargs) is not None:
            boom()

    monkeypatch.setattr(lawfit._backends.Cpu, "fit_grid", fit_grid)
    monkeypatch.setattr(lawfit.reference, "solve", boom)
    monkeypatch.setattr(lawfit.reference, "fit_packed", boom)


def test_no_work_fixture_catches_a_solve(no_work):
    """The guard itself: a valid call does reach a solver, and the guard sees it."""
    with pytest.raises(AssertionError, match="solver ran"):
        lawfit.fit(SPL, [X], [Y], p0=P0, backend="cpu")
    with pytest.raises(AssertionError, match="solver ran"):
        lawfit.fit(SPL, [X], [Y], p0=P0, backend="numpy")
    with pytest.raises(AssertionError, match="solver ran"):
        lawfit.curve_fit(_spl, X, Y, p0=P0)
    with pytest.raises(AssertionError, match="solver ran"):
        lawfit.least_squares(lambda p: _spl(X, *p) - Y, P0)


def fit_raises(arg: str, *, model=SPL, x=None, y=None, **kw):
    """lawfit.fit(...) raises ValueError naming ``arg``; returns the message."""
    if x is None and y is None:
        x, y = ([XC], [YC]) if model == "chinchilla" else ([X], [Y])
    kw.setdefault("p0", P0C if model == "chinchilla" else P0)
    kw.setdefault("backend", "cpu")
    with pytest.raises(ValueError, match=arg.replace("[", r"\[").replace("]", r"\]")) as exc:
        lawfit.fit(model, x, y, **kw)
    return str(exc.value)


# --------------------------------------------------------------------------------------
# lawfit.fit
# --------------------------------------------------------------------------------------

def test_valid_call_works():
    """The baseline every rejected call below is a variation of."""
    r = lawfit.fit(SPL, [X], [Y], p0=P0, backend="cpu")
    assert r.success.all()
    r = lawfit.fit("chinchilla", [XC], [YC], p0=P0C, backend="cpu")
    assert r.success.all()


@pytest.mark.parametrize("model", ["powerlaw", "Chinchilla", "", 3, None])
def test_unknown_model(no_work, model):
    fit_raises("model", model=model)


@pytest.mark.parametrize("form", ["list_count", "list_length", "padded", "padded_rows",
                                  "flat_groups", "flat_groups_labels", "flat"])
def test_x_y_mismatched_lengths(no_work, form):
    if form == "list_count":  # two x arrays for one y
        msg = fit_raises("x", x=[X, X], y=[Y])
    elif form == "list_length":
        msg = fit_raises("x[1]", x=[X, X[:-1]], y=[Y, Y])
    elif form == "padded":
        msg = fit_raises("x", x=X[:-1], y=np.vstack([Y, Y]), p0=P0)
    elif form == "padded_rows":
        msg = fit_raises("x", x=np.vstack([X, X, X]), y=np.vstack([Y, Y]), p0=P0)
    elif form == "flat_groups":
        msg = fit_raises("x", x=np.r_[X, X[:-1]], y=np.r_[Y, Y], groups=np.repeat([0, 1], 12))
    elif form == "flat_groups_labels":
        msg = fit_raises("groups", x=np.r_[X, X], y=np.r_[Y, Y], groups=np.zeros(23))
    else:
        msg = fit_raises("x", x=X[:-1], y=Y)
    assert msg.split(":")[0].startswith(("x", "groups"))


@pytest.mark.parametrize("shape", ["1d", "3cols", "1col", "transposed_wrong"])
def test_wrong_x_shape_two_input_model(no_work, shape):
    x = {"1d": XC[:, 0], "3cols": np.column_stack([XC, XC[:, 0]]), "1col": XC[:, :1],
         "transposed_wrong": XC[:-1].T}[shape]
    fit_raises("x", model="chinchilla", x=[x], y=[YC])
    # a shared grid for a padded y, too
    fit_raises("x", model="chinchilla", x=x, y=np.vstack([YC, YC]))


def test_two_input_model_accepts_scipy_layout():
    """(n_inputs, m) is scipy's layout and is accepted (not an error)."""
    r = lawfit.fit("chinchilla", [XC.T], [YC], p0=P0C, backend="cpu")
    s = lawfit.fit("chinchilla", [XC], [YC], p0=P0C, backend="cpu")
    assert np.array_equal(r.x, s.x)


def test_y_three_dimensional(no_work):
    fit_raises("y", x=X, y=np.ones((2, 3, 12)))


def test_y_list_of_2d(no_work):
    fit_raises("y[0]", x=[X], y=[np.ones((2, 6))])


@pytest.mark.parametrize("bounds", [
    ([0, 0, 1.0], [10, 1000, 0.5]),             # lower > upper for alpha
    (5.0, 1.0),                                  # scalars crossing
    (np.array([[0, 0, 0.5]]), np.array([[10, 1000, 0.4]])),  # per-problem crossing
])
def test_crossing_bounds(no_work, bounds):
    msg = fit_raises("bounds", bounds=bounds, p0=None)
    assert "bounds" in msg


@pytest.mark.parametrize("bounds", [
    ([0, 0], [10, 10]),                          # 2 values for 3 parameters
    (np.zeros((2, 3)), np.full((2, 3), 1e4)),    # 2 problems' worth for 1 problem
    (0, np.ones((3, 1))),
    (0, 1, 2),                                   # not a pair
    0.0,
])
def test_bounds_wrong_shape(no_work, bounds):
    fit_raises("bounds", bounds=bounds, p0=None)


@pytest.mark.parametrize("bounds", [([np.nan, 0, 0], np.inf), (-np.inf, [np.inf, np.nan, 1])])
def test_nan_bounds(no_work, bounds):
    fit_raises("bounds", bounds=bounds, p0=None)


@pytest.mark.parametrize("p0,bounds", [
    ([1.8, 600.0, 5.0], (0, 2)),
    ([-1.0, 600.0, 0.3], (0, np.inf)),
    ([1.8, 600.0, 0.3], ([0, 0, 0.4], [10, 1000, 0.4])),  # alpha fixed at 0.4
])
def test_p0_outside_bounds(no_work, p0, bounds):
    fit_raises("p0", p0=p0, bounds=bounds)


@pytest.mark.parametrize("p0", [[np.nan, 600, 0.3], [1.8, np.inf, 0.3], [1.8, 600, -np.inf]])
def test_nonfinite_p0(no_work, p0):
    fit_raises("p0", p0=p0)


@pytest.mark.parametrize("p0", [[1.8, 600.0], np.ones(4), np.ones((2, 3)), np.ones((1, 2)),
                                ["a", 1, 1]])
def test_p0_wrong_shape(no_work, p0):
    fit_raises("p0", p0=p0)


@pytest.mark.parametrize("bad", [0.0, -1.0, -1e-300])
@pytest.mark.parametrize("form", ["list", "padded", "scalar", "groups"])
def test_sigma_not_positive(no_work, bad, form):
    s = np.ones(12)
    s[4] = bad
    if form == "list":
        fit_raises("sigma", sigma=[s])
    elif form == "padded":
        fit_raises("sigma", x=X, y=np.vstack([Y, Y]), sigma=np.vstack([np.ones(12), s]))
    elif form == "scalar":
        fit_raises("sigma", sigma=bad)
    else:
        fit_raises("sigma", x=np.r_[X, X], y=np.r_[Y, Y], groups=np.repeat([0, 1], 12),
                   sigma=np.r_[np.ones(12), s])


def test_sigma_wrong_shape(no_work):
    fit_raises("sigma", sigma=[np.ones(11)])
    fit_raises("sigma", x=X, y=np.vstack([Y, Y]), sigma=np.ones(5))


@pytest.mark.parametrize("bad", [-1.0, -1e-12, -np.inf])
def test_negative_weights(no_work, bad):
    w = np.ones(12)
    w[0] = bad
    fit_raises("weights", weights=[w])
    fit_raises("weights", x=X, y=np.vstack([Y, Y]), weights=np.vstack([w, np.ones(12)]))


def test_weights_wrong_shape(no_work):
    fit_raises("weights", weights=[np.ones(13)])


@pytest.mark.parametrize("loss", ["l2", "Huber", "", None])
def test_unknown_loss(no_work, loss):
    fit_raises("loss", loss=loss)


@pytest.mark.parametrize("residuals", ["log10", "Log", "relative", None])
def test_unknown_residuals(no_work, residuals):
    fit_raises("residuals", residuals=residuals)


@pytest.mark.parametrize("f_scale", [0.0, -1.0, np.nan, np.inf])
def test_f_scale_not_positive(no_work, f_scale):
    fit_raises("f_scale", f_scale=f_scale)


@pytest.mark.parametrize("name", ["ftol", "xtol", "gtol"])
@pytest.mark.parametrize("value", [-1e-8, np.nan, np.inf, "1e-8"])
def test_bad_tolerances(no_work, name, value):
    fit_raises(name, **{name: value})


def test_tolerances_default_by_precision():
    # None (the default) is 1e-8 in fp64 and 1e-5 in fp32: the same fits as passing them.
    a = lawfit.fit(SPL, [X], [Y], p0=P0, backend="cpu")
    b = lawfit.fit(SPL, [X], [Y], p0=P0, backend="cpu", ftol=1e-8, xtol=1e-8, gtol=1e-8)
    np.testing.assert_array_equal(a.x, b.x)
    c = lawfit.fit(SPL, [X], [Y], p0=P0, backend="cpu", dtype="float32")
    d = lawfit.fit(SPL, [X], [Y], p0=P0, backend="cpu", dtype=np.float32, ftol=1e-5,
                   xtol=1e-5, gtol=1e-5)
    np.testing.assert_array_equal(c.x, d.x)


@pytest.mark.parametrize("dtype", ["float16", "int32", "complex128", "f8x", 3.5])
def test_bad_dtype(no_work, dtype):
    fit_raises("dtype", dtype=dtype)


def test_fp32_is_refused_by_the_reference(no_work):
    fit_raises("dtype: float32 runs on the compiled backends", dtype="float32",
               backend="numpy")


def test_zero_tolerances_are_allowed():
    r = lawfit.fit(SPL, [X], [Y], p0=P0, ftol=0, xtol=0, gtol=0, max_nfev=30, backend="cpu")
    assert Status(int(r.status[0])) not in (Status.INVALID_INPUT, Status.NONFINITE_DATA)


@pytest.mark.parametrize("max_nfev", [0, -5, 1.5, "10", True, np.nan, np.inf])
def test_bad_max_nfev(no_work, max_nfev):
    fit_raises("max_nfev", max_nfev=max_nfev)


@pytest.mark.parametrize("max_nfev", [1, 7, 7.0, np.int64(7), None])
def test_good_max_nfev(max_nfev):
    r = lawfit.fit(SPL, [X], [Y], p0=P0, max_nfev=max_nfev, backend="cpu")
    assert r.nfev[0] <= (300 if max_nfev is None else int(max_nfev))


@pytest.mark.parametrize("backend", ["gpu", "CPU", "", "scipy", None])
def test_unknown_backend(no_work, backend):
    fit_raises("backend", backend=backend)


def test_unavailable_cuda_backend(no_work):
    ok, why = lawfit.backends()["cuda"]
    if ok:
        pytest.skip("the CUDA backend is available here")
    msg = fit_raises("backend", backend="cuda")
    assert "cuda" in msg


@pytest.mark.parametrize("n_threads", [0, -1, 1.5, np.nan, np.inf])
def test_bad_n_threads(no_work, n_threads):
    fit_raises("n_threads", n_threads=n_threads)


@pytest.mark.parametrize("y_form", ["list", "padded"])
def test_groups_with_list_or_padded_y(no_work, y_form):
    y = [Y, Y] if y_form == "list" else np.vstack([Y, Y])
    x = [X, X] if y_form == "list" else X
    fit_raises("groups", x=x, y=y, groups=np.repeat([0, 1], 12))


def test_x_or_y_missing(no_work):
    with pytest.raises(ValueError, match="y"):
        lawfit.fit(SPL, X, None, p0=P0)
    with pytest.raises(ValueError, match="x"):
        lawfit.fit(SPL, None, Y, p0=P0)


def test_p0_required_without_guess(no_work):
    msg = fit_raises("p0", model="chinchilla", p0=None)
    assert "chinchilla" in msg


class _Column:
    def __init__(self, values):
        self._values = np.asarray(values)

    def to_numpy(self, dtype=None):
        return self._values.astype(dtype) if dtype is not None else self._values


class _Frame:
    """The part of a pandas DataFrame that ``lawfit.fit(data=...)`` uses with plain names."""

    def __init__(self, **columns):
        self._columns = {k: _Column(v) for k, v in columns.items()}

    @property
    def columns(self):
        return list(self._columns)

    def __getitem__(self, name):
        return self._columns[name]


def _frames():
    cols = dict(x=np.r_[X, X], y=np.r_[Y, Y], s=np.ones(24), w=np.ones(24),
                g=np.repeat([0, 1], 12))
    frames = [_Frame(**cols)]
    try:
        import pandas as pd
    except ImportError:
        pass
    else:
        frames.append(pd.DataFrame(cols))
    return frames


@pytest.mark.parametrize("frame", _frames(), ids=lambda f: type(f).__name__)
def test_data_frame_columns(frame):
    r = lawfit.fit(SPL, "x", "y", data=frame, sigma="s", weights="w", groups="g", p0=P0,
                   backend="cpu")
    assert r.success.all() and list(r.labels) == [0, 1]


@pytest.mark.parametrize("frame", _frames(), ids=lambda f: type(f).__name__)
@pytest.mark.parametrize("missing", ["x", "y", "sigma", "weights", "groups"])
def test_data_frame_missing_column(no_work, frame, missing):
    kw = dict(x="x", y="y", sigma="s", weights="w", groups="g")
    kw[missing] = "nope"
    x, y = kw.pop("x"), kw.pop("y")
    with pytest.raises(ValueError, match="data") as exc:
        lawfit.fit(SPL, x, y, data=frame, p0=P0, backend="cpu", **kw)
    assert "nope" in str(exc.value)


def test_data_frame_missing_group_columns(no_work):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(dict(x=np.r_[X, X], y=np.r_[Y, Y], g=np.repeat([0, 1], 12)))
    with pytest.raises(ValueError, match="groups") as exc:
        lawfit.fit(SPL, "x", "y", data=frame, groups=["g", "nope"], p0=P0, backend="cpu")
    assert "nope" in str(exc.value)


# --------------------------------------------------------------------------------------
# Bad data is a status, not an error
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_bad_data_is_a_status(backend):
    """An infinite x is bad data under every nan_policy; a NaN y is bad data where NaN is
    kept (nan_policy="propagate"), and a missing point by default."""
    x, y, _, p0 = model_batch(SPL, n_problems=4, n_points=15, seed=2)
    ys = [y[i].copy() for i in range(4)]
    xs = [x[:, 0].copy() for _ in range(4)]
    ys[1][7] = np.nan
    xs[3][2] = np.inf
    r = lawfit.fit(SPL, xs, ys, p0=p0, backend=backend, nan_policy="propagate")
    assert list(r.status[[1, 3]]) == [Status.NONFINITE_DATA] * 2
    assert r.success[[0, 2]].all()
    assert np.array_equal(r.x[1], p0[1]) and np.isnan(r.cost[1]) and r.nfev[1] == 0
    r = lawfit.fit(SPL, xs, ys, p0=p0, backend=backend)
    assert r.status[3] == Status.NONFINITE_DATA and r.success[:3].all()
    assert list(r.n_points) == [15, 14, 15, 15] and list(r.n_omitted) == [0, 1, 0, 0]


def test_bad_data_in_sigma_or_weights_is_a_status():
    sig = np.ones(12)
    sig[3] = np.nan
    w = np.ones(12)
    w[5] = np.nan
    r = lawfit.fit(SPL, [X, X, X], [Y, Y, Y], p0=P0, sigma=[np.ones(12), sig, np.ones(12)],
                   weights=[np.ones(12), np.ones(12), w], backend="cpu")
    assert list(r.status[1:]) == [Status.NONFINITE_DATA] * 2
    assert r.success[0]


def test_too_few_points_is_a_status():
    r = lawfit.fit(SPL, [X, X[:2], X[:0]], [Y, Y[:2], Y[:0]], p0=P0, backend="cpu")
    assert list(r.status[1:]) == [Status.TOO_FEW_POINTS] * 2
    assert r.success[0]


# --------------------------------------------------------------------------------------
# lawfit.curve_fit
# --------------------------------------------------------------------------------------

BOTH = pytest.mark.parametrize("f", [SPL, _spl], ids=["builtin", "callable"])


def curve_fit_raises(arg: str, f, *args, **kw):
    with pytest.raises(ValueError, match=arg) as exc:
        lawfit.curve_fit(f, *args, **kw)
    return str(exc.value)


@BOTH
def test_curve_fit_valid_call_works(f):
    popt, pcov = lawfit.curve_fit(f, X, Y, p0=P0)
    assert np.allclose(popt, [1.8, 600, 0.34], rtol=0.1)
    assert pcov.shape == (3, 3)


@BOTH
@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_curve_fit_sigma_not_positive(no_work, f, bad):
    s = np.ones(12)
    s[2] = bad
    curve_fit_raises("sigma", f, X, Y, p0=P0, sigma=s)


@BOTH
@pytest.mark.parametrize("shape", [(11,), (13,), (12, 12), (12, 1)])
def test_curve_fit_sigma_wrong_shape(no_work, f, shape):
    curve_fit_raises("sigma", f, X, Y, p0=P0, sigma=np.ones(shape))


@BOTH
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_curve_fit_nonfinite_ydata(no_work, f, bad):
    y = Y.copy()
    y[3] = bad
    curve_fit_raises("ydata", f, X, y, p0=P0)
    curve_fit_raises("ydata", f, X, y, p0=P0, nan_policy="raise")


@BOTH
def test_curve_fit_nonfinite_xdata(no_work, f):
    x = X.copy()
    x[3] = np.nan
    curve_fit_raises("xdata", f, x, Y, p0=P0)


@BOTH
def test_curve_fit_nan_policy_omit(f):
    y = Y.copy()
    y[[3, 8]] = np.nan
    x = X.copy()
    x[5] = np.nan
    keep = np.isfinite(x) & np.isfinite(y)
    popt, pcov = lawfit.curve_fit(f, x, y, p0=P0, nan_policy="omit")
    ref, ref_cov = lawfit.curve_fit(f, X[keep], Y[keep], p0=P0)
    assert np.array_equal(popt, ref) and np.array_equal(pcov, ref_cov)


@BOTH
@pytest.mark.parametrize("method", ["bfgs", "LM", "", "cg"])
def test_curve_fit_unknown_method(no_work, f, method):
    curve_fit_raises("method", f, X, Y, p0=P0, method=method)


@BOTH
def test_curve_fit_unknown_kwarg(no_work, f):
    with pytest.raises(TypeError, match="foo"):
        lawfit.curve_fit(f, X, Y, p0=P0, foo=1)


@BOTH
def test_curve_fit_unknown_nan_policy(no_work, f):
    curve_fit_raises("nan_policy", f, X, Y, p0=P0, nan_policy="drop")


@BOTH
def test_curve_fit_bounds_crossing(no_work, f):
    curve_fit_raises("bounds", f, X, Y, p0=P0, bounds=([0, 0, 1.0], [10, 1000, 0.5]))
    curve_fit_raises("bounds", f, X, Y, p0=P0, bounds=([0, 0, np.nan], 1e4))


@BOTH
def test_curve_fit_p0_outside_bounds(no_work, f):
    curve_fit_raises("p0", f, X, Y, p0=P0, bounds=(0, [10, 100, 1]))
    curve_fit_raises("p0", f, X, Y, p0=[np.nan, 600, 0.34])


@BOTH
@pytest.mark.parametrize("max_nfev", [0, 2.5, np.nan])
def test_curve_fit_bad_max_nfev(no_work, f, max_nfev):
    curve_fit_raises("max_nfev", f, X, Y, p0=P0, max_nfev=max_nfev)


def test_curve_fit_builtin_p0_wrong_shape(no_work):
    curve_fit_raises("p0", SPL, X, Y, p0=[1.0, 2.0])


@BOTH
def test_curve_fit_ydata_not_1d(no_work, f):
    curve_fit_raises("ydata", f, X, np.vstack([Y, Y]), p0=P0)
    curve_fit_raises("ydata", f, X[:0], Y[:0], p0=P0)


@BOTH
def test_curve_fit_unknown_residuals_and_loss(no_work, f):
    curve_fit_raises("residuals", f, X, Y, p0=P0, residuals="log2")
    curve_fit_raises("loss", f, X, Y, p0=P0, loss="l1")


# --------------------------------------------------------------------------------------
# lawfit.least_squares
# --------------------------------------------------------------------------------------

def _res(p):
    return _spl(X, *p) - Y


def test_least_squares_valid_call_works():
    r = lawfit.least_squares(_res, P0)
    assert r.success


@pytest.mark.parametrize("x0", [np.ones((1, 3)), np.ones((3, 1)), np.ones((2, 2))])
def test_least_squares_x0_2d(no_work, x0):
    with pytest.raises(ValueError, match="x0"):
        lawfit.least_squares(_res, x0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_least_squares_nonfinite_residuals_at_x0(no_work, bad):
    # scipy.optimize.least_squares: "Residuals are not finite in the initial point."
    with pytest.raises(ValueError, match="Residuals are not finite in the initial point"):
        lawfit.least_squares(lambda p: np.array([bad, p[0] - 1.0]), [0.5])


@pytest.mark.parametrize("jac", ["4-point", "2point", "", "cs2"])
def test_least_squares_bad_jac(no_work, jac):
    with pytest.raises(ValueError, match="jac"):
        lawfit.least_squares(_res, P0, jac=jac)


def test_least_squares_bad_options(no_work):
    with pytest.raises(ValueError, match="loss"):
        lawfit.least_squares(_res, P0, loss="l3")
    with pytest.raises(ValueError, match="bounds"):
        lawfit.least_squares(_res, P0, bounds=([0, 0, 1], [10, 1000, 0.5]))
    with pytest.raises(ValueError, match="fun"):
        lawfit.least_squares(lambda p: np.ones((2, 2)), [1.0])


@pytest.mark.parametrize("x0,bounds", [
    ([1.8, 600.0, 0.34], (0, 1)),      # outside the bounds
    ([np.nan, 600.0, 0.34], (-np.inf, np.inf)),
])
def test_least_squares_x0_infeasible(no_work, x0, bounds):
    # The argument is called x0 here (scipy: "`x0` is infeasible."), so the message must say so.
    with pytest.raises(ValueError, match="x0"):
        lawfit.least_squares(_res, x0, bounds=bounds)


# --------------------------------------------------------------------------------------
# Complex numbers, empty batches, DataFrame columns, threads and memory (issue 16)
# --------------------------------------------------------------------------------------

def _complex(a):
    return np.asarray(a) * (1 + 0j)


@pytest.mark.parametrize("form", ["list", "padded"])
@pytest.mark.parametrize("arg", ["x", "y", "p0", "sigma", "weights", "bounds"])
def test_complex_numbers_are_refused_naming_the_argument(no_work, arg, form):
    """Refused, not cast: casting would drop the imaginary parts with only a warning."""
    x, y = ([X], [Y]) if form == "list" else (X, np.vstack([Y, Y]))
    kw = dict(x=x, y=y, p0=P0, backend="cpu")
    if arg in ("x", "y"):
        kw[arg] = [_complex(v) for v in kw[arg]] if form == "list" else _complex(kw[arg])
    elif arg == "p0":
        kw["p0"] = _complex(P0)
    elif arg in ("sigma", "weights"):
        kw[arg] = _complex(np.ones_like(y))
    else:
        kw["bounds"] = (_complex([0, 0, 0]), np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way
        for call in (lawfit.fit, lawfit.bootstrap):
            with pytest.raises(ValueError, match=rf"^{arg}(\[0\])?: complex numbers are not "
                                                 rf"supported"):
                call(SPL, **kw)


def test_complex_grid_starts_are_refused(no_work):
    with pytest.raises(ValueError, match="^starts: complex numbers"):
        lawfit.grid(starts=_complex([P0, P0]))
    with pytest.raises(ValueError, match="^alpha: complex numbers"):
        lawfit.grid(E=[1.0], A=[600.0], alpha=_complex([0.3]))


def test_complex_device_arrays_are_refused():
    from lawfit._device import pack_padded

    for arg in ("x", "y", "p0"):
        kw = dict(x=X, y=np.vstack([Y, Y]), p0=P0)
        kw[arg] = _complex(kw[arg])
        with pytest.raises(ValueError, match=f"^{arg}: complex numbers"):
            pack_padded(np, lawfit.models.get(SPL), kw.pop("x"), kw.pop("y"), **kw)


def _empty_batches():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": np.empty(0), "y": np.empty(0), "g": np.empty(0)})
    return {
        "padded": dict(x=X, y=np.empty((0, 12))),
        "padded_per_problem_x": dict(x=np.empty((0, 12)), y=np.empty((0, 12))),
        "padded_0x0": dict(x=np.empty(0), y=np.empty((0, 0))),
        "list": dict(x=[], y=[]),
        "groups": dict(x=np.empty(0), y=np.empty(0), groups=np.empty(0)),
        "frame": dict(x="x", y="y", groups="g", data=frame),
    }


@pytest.mark.parametrize("form", ["padded", "padded_per_problem_x", "padded_0x0", "list",
                                  "groups", "frame"])
def test_a_batch_of_no_problems_gives_an_empty_result(form):
    kw = _empty_batches()[form]
    for p0 in (P0, lawfit.grid(E=[1.0, 2.0], A=[600.0], alpha=[0.3])):
        r = lawfit.fit(SPL, p0=p0, backend="cpu", return_cov=True, **kw)
        assert len(r) == 0 and r.x.shape == (0, 3) and r.cov.shape == (0, 3, 3)
        assert len(r.to_frame()) == 0 and r.n_points.shape == (0,)
    b = lawfit.bootstrap(SPL, p0=P0, n_resamples=5, backend="cpu", **kw)
    assert b.samples.shape == (0, 5, 3) and b.se.shape == (0, 3)
    lo, hi = b.interval(0.9, method="bca")
    assert lo.shape == hi.shape == (0, 3)


def test_a_string_in_a_dataframe_column_names_the_column(no_work):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(dict(x=X, y=Y.astype(object), s=np.ones(12).astype(object),
                              n=X, d=X * 20, c=np.arange(12.0).astype(object)))
    frame.loc[3, "y"] = "n/a"
    with pytest.raises(ValueError, match=r"^y: column 'y' of data holds 'n/a' \(at position "
                                         r"3\), not a real number"):
        lawfit.fit(SPL, "x", "y", data=frame, p0=P0)
    frame["y"] = Y
    frame.loc[5, "s"] = "big"
    with pytest.raises(ValueError, match=r"^sigma: column 's' of data holds 'big'"):
        lawfit.fit(SPL, "x", "y", data=frame, sigma="s", p0=P0)
    frame["n"] = frame["n"].astype(object)
    frame.loc[0, "n"] = None  # pandas' missing value: NaN, a missing point
    frame.loc[1, "n"] = "abc"
    with pytest.raises(ValueError, match=r"^x: column 'n' of data holds 'abc' \(at position "
                                         r"1\)"):
        lawfit.fit("chinchilla", ["n", "d"], "y", data=frame, p0=P0C)
    frame.loc[2, "c"] = "a"
    with pytest.raises(ValueError, match=r"^clusters: column 'c' of data holds 'a'"):
        lawfit.bootstrap(SPL, "x", "y", data=frame, p0=P0, method="grouped", clusters="c")
    frame["z"] = _complex(Y)
    with pytest.raises(ValueError, match=r"^y: column 'z' of data is complex"):
        lawfit.fit(SPL, "x", "z", data=frame, p0=P0)


@pytest.mark.parametrize("n_threads", [lawfit.api.MAX_THREADS + 1, 2**31 - 1, 10**12])
def test_n_threads_is_capped(no_work, n_threads):
    fit_raises("n_threads", n_threads=n_threads)
    with pytest.raises(ValueError, match="^n_threads: "):
        lawfit.bootstrap(SPL, [X], [Y], p0=P0, n_threads=n_threads)


def test_n_threads_at_the_cap_is_accepted():
    r = lawfit.fit(SPL, [X], [Y], p0=P0, backend="cpu", n_threads=lawfit.api.MAX_THREADS)
    assert r.success.all()


def test_a_request_that_cannot_fit_in_memory_is_refused_before_any_work(no_work,
                                                                        monkeypatch):
    import time

    assert lawfit.api.available_memory() > 0
    huge = np.broadcast_to(Y, (10**12, 12))  # a view: 10^12 problems, no memory
    t0 = time.perf_counter()
    with pytest.raises(MemoryError, match=r"^fit: 1,000,000,000,000 problems: needs at least "
                                          r"[\d,]+\.\d GiB of memory, more than the"):
        lawfit.fit(SPL, X, huge, p0=P0)
    with pytest.raises(MemoryError, match=r"^bootstrap: 1,000,000,000,000 problems x 1,000 "
                                          r"resamples: needs at least"):
        lawfit.bootstrap(SPL, X, huge, p0=P0)
    assert time.perf_counter() - t0 < 1.0
    # Where 1 GiB is left: 10^8 problems, or 10^7 resamples of 100, are too many.
    monkeypatch.setattr(lawfit.api, "available_memory", lambda: 2**30)
    with pytest.raises(MemoryError, match=r"100,000,000 problems: needs at least [\d.]+ GiB "
                                          r"of memory, more than the 1\.0 GiB available"):
        lawfit.fit(SPL, X, np.broadcast_to(Y, (10**8, 12)), p0=P0)
    with pytest.raises(MemoryError, match=r"100 problems x 10,000,000 resamples"):
        lawfit.bootstrap(SPL, X, np.broadcast_to(Y, (100, 12)), p0=P0, n_resamples=10**7)
