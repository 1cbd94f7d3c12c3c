"""Missing data: one rule for every batch shape (issue 16).

A NaN in ``y``, or in any input of ``x``, is a missing point in lists, flat arrays with
groups, DataFrames and padded arrays alike.  ``nan_policy="omit"`` (the default) leaves it
out and counts it (``FitResult.n_points`` are the points used, ``n_omitted`` those left out);
``"raise"`` refuses the call naming the argument and the point; ``"propagate"`` keeps it, and
its problem gets NONFINITE_DATA.  Infinite values are never missing: they are bad data
(NONFINITE_DATA) under every policy.
"""
from __future__ import annotations

import numpy as np
import pytest

import lawfit
from lawfit import Status, models
from lawfit._device import pack_padded
from lawfit._packing import pack

from batches import model_batch
from test_validation import no_work  # noqa: F401 - a fixture

SPL = "saturating_power_law"
FIELDS = ("x", "cost", "status", "nfev", "nit", "active_mask", "n_points")
SHAPES = ("lists", "padded", "groups", "frame")


def batch_with_holes():
    """Three problems of 15 points on per-problem x: problem 0 misses y[0, 3], problem 1
    x[1, 5]; problem 2 is whole."""
    x, y, truth, p0 = model_batch(SPL, n_problems=3, n_points=15, seed=2)
    X = np.tile(x[:, 0], (3, 1))
    y = y.copy()
    y[0, 3] = np.nan
    X[1, 5] = np.nan
    return X, y, p0


def fit_as(shape, X, y, **kw):
    """lawfit.fit of the padded batch (X, y) given in ``shape``."""
    P, m = y.shape
    if shape == "lists":
        return lawfit.fit(SPL, list(X), list(y), **kw)
    if shape == "padded":
        return lawfit.fit(SPL, X, y, **kw)
    groups = np.repeat(np.arange(P), m)
    if shape == "groups":
        return lawfit.fit(SPL, X.ravel(), y.ravel(), groups=groups, **kw)
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"x": X.ravel(), "y": y.ravel(), "g": groups})
    return lawfit.fit(SPL, "x", "y", data=df, groups="g", **kw)


def assert_same(a, i, b, j, what):
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f)[i], getattr(b, f)[j], err_msg=f"{what} {f}")


@pytest.mark.parametrize("chunk_size", [None, 1, 2])
@pytest.mark.parametrize("shape", SHAPES)
def test_a_missing_point_is_left_out_in_every_shape(shape, chunk_size):
    X, y, p0 = batch_with_holes()
    r = fit_as(shape, X, y, p0=p0, backend="cpu", chunk_size=chunk_size)
    # The same problems with the missing points deleted by hand.
    keep = [~(np.isnan(X[i]) | np.isnan(y[i])) for i in range(3)]
    want = lawfit.fit(SPL, [X[i][keep[i]] for i in range(3)], [y[i][keep[i]] for i in range(3)],
                      p0=p0, backend="cpu")
    assert r.success.all()
    for i in range(3):
        assert_same(r, i, want, i, f"{shape}, problem {i}")
    assert list(r.n_points) == [14, 14, 15] and list(r.n_omitted) == [1, 1, 0]
    frame = r.to_frame()
    assert list(frame["n_points"]) == [14, 14, 15] and list(frame["n_omitted"]) == [1, 1, 0]


def test_a_missing_input_of_several_is_a_missing_point():
    x, y, truth, p0 = model_batch("chinchilla", n_problems=2, n_points=20, seed=3)
    X = np.tile(x, (2, 1, 1))
    X[0, 7, 1] = np.nan  # D of one point
    r = lawfit.fit("chinchilla", X, y, p0=p0, backend="cpu")
    keep = np.arange(20) != 7
    alone = lawfit.fit("chinchilla", x[keep], y[0, keep], p0=p0[0], backend="cpu")
    assert_same(r, 0, alone, 0, "chinchilla")
    assert list(r.n_omitted) == [1, 0]


@pytest.mark.parametrize("shape, y_where, x_where", [
    ("lists", "y[0][3]", "x[1][5]"),
    ("padded", "y[0, 3]", "x[1, 5]"),
    ("groups", "y[3] (group 0)", "x[20] (group 1)"),
    ("frame", "column 'y' of data is NaN at position 3",
     "column 'x' of data is NaN at position 20"),
])
def test_nan_policy_raise_names_the_argument_and_the_point(shape, y_where, x_where, no_work):
    X, y, p0 = batch_with_holes()
    with pytest.raises(ValueError, match=r"^y: .*" + y_where.replace("[", r"\[").replace(
            "]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        fit_as(shape, X, y, p0=p0, nan_policy="raise")
    y = np.where(np.isnan(y), 2.0, y)
    with pytest.raises(ValueError, match=r"^x: .*" + x_where.replace("[", r"\[").replace(
            "]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        fit_as(shape, X, y, p0=p0, nan_policy="raise")


@pytest.mark.parametrize("shape", SHAPES)
def test_nan_policy_propagate_is_nonfinite_data_in_every_shape(shape):
    X, y, p0 = batch_with_holes()
    r = fit_as(shape, X, y, p0=p0, nan_policy="propagate", backend="cpu")
    assert list(r.status[:2]) == [Status.NONFINITE_DATA] * 2 and r.success[2]
    assert list(r.n_points) == [15, 15, 15] and list(r.n_omitted) == [0, 0, 0]
    whole = fit_as(shape, X, y, p0=p0, backend="cpu")
    assert_same(r, 2, whole, 2, shape)


@pytest.mark.parametrize("nan_policy", ["omit", "raise", "propagate"])
@pytest.mark.parametrize("shape", SHAPES)
def test_infinity_is_bad_data_not_missing(shape, nan_policy):
    X, y, p0 = batch_with_holes()
    X, y = np.where(np.isnan(X), 1e8, X), np.where(np.isnan(y), 2.0, y)
    y[0, 3] = np.inf
    X[1, 5] = -np.inf
    r = fit_as(shape, X, y, p0=p0, nan_policy=nan_policy, backend="cpu")
    assert list(r.status[:2]) == [Status.NONFINITE_DATA] * 2 and r.success[2]
    assert list(r.n_omitted) == [0, 0, 0]


def test_an_unknown_nan_policy_is_refused(no_work):
    X, y, p0 = batch_with_holes()
    for call in (lawfit.fit, lawfit.bootstrap):
        with pytest.raises(ValueError, match="nan_policy: expected one of"):
            call(SPL, X, y, p0=p0, nan_policy="drop")


def test_the_bootstrap_leaves_missing_points_out_too():
    X, y, p0 = batch_with_holes()
    b = lawfit.bootstrap(SPL, list(X), list(y), p0=p0, n_resamples=30, seed=4, backend="cpu")
    keep = [~(np.isnan(X[i]) | np.isnan(y[i])) for i in range(3)]
    want = lawfit.bootstrap(SPL, [X[i][keep[i]] for i in range(3)],
                            [y[i][keep[i]] for i in range(3)], p0=p0, n_resamples=30, seed=4,
                            backend="cpu")
    np.testing.assert_array_equal(b.samples, want.samples)
    np.testing.assert_array_equal(b.jackknife(), want.jackknife())
    assert list(b.fit.n_omitted) == [1, 1, 0] and b.converged.all()
    with pytest.raises(ValueError, match=r"y: NaN at y\[0\]\[3\]"):
        lawfit.bootstrap(SPL, list(X), list(y), p0=p0, nan_policy="raise")


@pytest.mark.parametrize("per_problem_x", [False, True])
def test_the_device_packing_follows_the_same_rule(per_problem_x):
    """The device path (pack_padded, NumPy standing in for CuPy) packs what pack packs: a NaN
    in x is a missing point there too, under each nan_policy."""
    X, y, p0 = batch_with_holes()
    if not per_problem_x:  # a shared grid with a NaN: missing in every problem
        X = X[1]
    m = models.get(SPL)
    for policy in ("omit", "propagate"):
        d = pack_padded(np, m, X, y, p0=p0, nan_policy=policy)
        h = pack(m, X, y, p0=p0, nan_policy=policy)
        for key, ref in (("inputs", h.inputs), ("target", h.target), ("offsets", h.offsets)):
            np.testing.assert_array_equal(getattr(d, key), ref, err_msg=f"{policy} {key}")
        assert (d.n_omitted is None) == (h.n_omitted is None)
        if h.n_omitted is not None:
            np.testing.assert_array_equal(d.n_omitted, h.n_omitted)
    with pytest.raises(ValueError, match=r"y: NaN at y\[0, 3\]"):
        pack_padded(np, m, X, y, p0=p0, nan_policy="raise")


@pytest.mark.parametrize("shape, where", [("lists", r"y\[5\]\[2\]"), ("padded", r"y\[5, 2\]")])
def test_a_chunked_call_names_the_point_as_the_caller_numbers_it(shape, where, no_work):
    x, y, truth, p0 = model_batch(SPL, n_problems=7, n_points=10, seed=1)
    y = y.copy()
    y[5, 2] = np.nan
    X = np.tile(x[:, 0], (7, 1))
    with pytest.raises(ValueError, match=rf"^y: NaN at {where}"):
        fit_as(shape, X, y, p0=p0, nan_policy="raise", chunk_size=2)
    p0 = p0.copy()
    p0[4, 1] = np.inf
    with pytest.raises(ValueError, match="^p0: must be finite; parameter 'A' of problem 4"):
        fit_as(shape, X, np.where(np.isnan(y), 1.0, y), p0=p0, chunk_size=2)
