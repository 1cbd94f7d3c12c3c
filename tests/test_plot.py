"""lawfit.plot on matplotlib's Agg backend: what each figure draws (data, law, band, labels,
titles), checked against the results it was drawn from."""
from __future__ import annotations

import numpy as np
import pytest

import lawfit
from lawfit._synthetic import saturating_power_laws

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402

from lawfit import plot  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def batch():
    x, y, truth = saturating_power_laws(3, 15, noise=0.02, seed=11)
    b = lawfit.bootstrap("saturating_power_law", x, y, n_resamples=200, seed=1)
    return x, y, b


def _bands(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def _scatters(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def _fit_lines(ax):
    return [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2]


def test_fits_draws_data_law_and_band_per_problem(batch):
    x, y, b = batch
    fig = plot.fits(b, x, y, level=0.9, n_grid=50)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert len(axes) == 3
    grid = np.geomspace(x.min(), x.max(), 50)
    est, lo, hi = b.predict(grid, 0.9)
    for i, ax in enumerate(axes):
        assert ax.get_title() == f"problem {i}"
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert ax.get_xlabel() == "x" and ax.get_ylabel() == "y"
        (sc,) = _scatters(ax)
        np.testing.assert_array_equal(sc.get_offsets(), np.column_stack([x, y[i]]))
        (line,) = _fit_lines(ax)
        np.testing.assert_allclose(line.get_xdata(), grid)
        np.testing.assert_allclose(line.get_ydata(), est[i], rtol=1e-12)
        (band,) = _bands(ax)
        v = band.get_paths()[0].vertices
        # fill_between's polygon runs along hi and back along lo: its y-range is theirs
        np.testing.assert_allclose([v[:, 1].min(), v[:, 1].max()],
                                   [lo[i].min(), hi[i].max()], rtol=1e-12)
        assert np.all(lo[i] <= est[i]) and np.all(est[i] <= hi[i]) and np.any(hi[i] > lo[i])
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert labels == ["data", "90% band (percentile)", "fit"]


def test_fits_of_a_subset_has_the_subsets_band(batch):
    """Problems drawn alone get the band the whole bootstrap gives them."""
    x, y, b = batch
    fig = plot.fits(b, x, y, problems=[2], level=0.8, n_grid=30)
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert ax.get_title() == "problem 2"
    grid = np.geomspace(x.min(), x.max(), 30)
    est, lo, hi = b.predict(grid, 0.8)
    v = _bands(ax)[0].get_paths()[0].vertices
    np.testing.assert_allclose([v[:, 1].min(), v[:, 1].max()], [lo[2].min(), hi[2].max()],
                               rtol=1e-12)
    np.testing.assert_allclose(_fit_lines(ax)[0].get_ydata(), est[2], rtol=1e-12)


def test_fits_of_a_fit_has_no_band(batch):
    x, y, b = batch
    fig = plot.fits(b.fit, x, y, problems=0)
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert _bands(ax) == [] and ax.get_title() == "problem 0"
    (line,) = _fit_lines(ax)
    np.testing.assert_allclose(line.get_ydata(),
                               lawfit.models.saturating_power_law(line.get_xdata(),
                                                                  *b.fit.x[0]), rtol=1e-12)


def test_fits_from_a_dataframe_titles_by_group(batch):
    pd = pytest.importorskip("pandas")
    x, y, _ = batch
    df = pd.DataFrame({"N": np.tile(x, 3), "loss": y.ravel(),
                       "family": np.repeat(["z", "x", "y"], len(x))})
    b = lawfit.bootstrap("saturating_power_law", data=df, x="N", y="loss", groups="family",
                         n_resamples=50)
    fig = plot.fits(b, data=df, x="N", y="loss", groups="family")
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in axes] == ["family=x", "family=y", "family=z"]
    assert [a.get_xlabel() for a in axes] == ["N"] * 3 and axes[0].get_ylabel() == "loss"
    # the group 'x' is the second block of rows
    np.testing.assert_array_equal(_scatters(axes[0])[0].get_offsets()[:, 1], y[1])


def test_fits_of_two_inputs_draws_one_curve_per_held_value():
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 60))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), 60))
    p = [1.8, 400.0, 400.0, 0.34, 0.28]
    L = lawfit.models.chinchilla(np.column_stack([N, D]), *p) * np.exp(rng.normal(0, 0.01, 60))
    X = np.column_stack([N, D])
    b = lawfit.bootstrap("chinchilla", X, L, p0=p, n_resamples=100)
    fig = plot.fits(b, X, L, at={"D": [1e10, 1e11]}, n_grid=40, titles=["mine"])
    ax = fig.axes[0]
    assert ax.get_title() == "mine"
    lines = _fit_lines(ax)
    assert len(lines) == 2 and len(_bands(ax)) == 2
    grid = np.geomspace(N.min(), N.max(), 40)
    for line, d in zip(lines, [1e10, 1e11]):
        C = np.column_stack([grid, np.full(40, d)])
        np.testing.assert_allclose(line.get_ydata(), b.predict(C)[0][0], rtol=1e-12)
    assert ax.get_xlabel() == "N"
    assert any(a.get_ylabel() == "D" for a in fig.axes[1:])  # the colour bar of D
    assert len(_scatters(ax)[0].get_offsets()) == 60
    with pytest.raises(ValueError, match="held input 'D'"):
        plot.fits(b, X, L, at={"N": [1e8]})
    two = plot.fits(b, X, L, along="D", at=[1e8, 1e9, 1e10], n_grid=20)
    assert two.axes[0].get_xlabel() == "D" and len(_fit_lines(two.axes[0])) == 3


def test_residuals(batch):
    x, y, b = batch
    fig = plot.residuals(b, x, y, kind="log")
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == 3
    for i, ax in enumerate(axes):
        f = lawfit.models.saturating_power_law(x, *b.fit.x[i])
        np.testing.assert_allclose(_scatters(ax)[0].get_offsets()[:, 1],
                                   np.log(y[i]) - np.log(f), rtol=1e-10, atol=1e-15)
        zero = [ln for ln in ax.get_lines() if np.all(np.asarray(ln.get_ydata()) == 0)]
        assert len(zero) == 1
        assert ax.get_ylabel() == "log y - log f"
    with pytest.raises(ValueError, match="kind"):
        plot.residuals(b, x, y, kind="relative")


def test_params_pairwise(batch):
    _, _, b = batch
    fig = plot.params(b, problem=1, max_points=150)
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == 6  # 3 diagonal histograms + 3 pairs below
    lower = [a for a in visible if _scatters(a)]
    assert len(lower) == 3
    samples = b.samples[1][b.converged[1]][:150]
    names = list(b.param_names)
    for ax in lower:
        assert len(_scatters(ax)[0].get_offsets()) == len(samples)
    bottom_left = fig.axes[2 * 3 + 0]
    assert bottom_left.get_xlabel() == names[0] and bottom_left.get_ylabel() == names[2]
    np.testing.assert_array_equal(_scatters(bottom_left)[0].get_offsets(),
                                  samples[:, [0, 2]])
    (mark,) = bottom_left.get_lines()
    np.testing.assert_array_equal(mark.get_xydata()[0], b.fit.x[1][[0, 2]])
    with pytest.raises(TypeError, match="BootstrapResult"):
        plot.params(b.fit)
    with pytest.raises(ValueError, match="unknown parameter"):
        plot.params(b, names=["E", "Q"])


def test_compute_optimal_frontier_with_band():
    rng = np.random.default_rng(2)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 80))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), 80))
    p = [1.8, 400.0, 400.0, 0.34, 0.28]
    X = np.column_stack([N, D])
    L = lawfit.models.chinchilla(X, *p) * np.exp(rng.normal(0, 0.01, 80))
    b = lawfit.bootstrap("chinchilla", [X, X], [L, L[::-1] * 0 + L], p0=p, n_resamples=100)
    C = np.geomspace(1e19, 1e24, 20)
    fig = plot.compute_optimal(b, C=C, level=0.9)
    ax_n, ax_d = fig.axes
    co = b.compute_optimal(C, 0.9)
    for ax, key in ((ax_n, "N_opt"), (ax_d, "D_opt")):
        est, lo, hi = co[key]
        lines = ax.get_lines()
        assert len(lines) == 2 and len(_bands(ax)) == 2
        for i in range(2):
            np.testing.assert_allclose(lines[i].get_ydata(), est[i], rtol=1e-12)
            v = _bands(ax)[i].get_paths()[0].vertices
            np.testing.assert_allclose([v[:, 1].min(), v[:, 1].max()],
                                       [lo[i].min(), hi[i].max()], rtol=1e-12)
        assert ax.get_xscale() == "log" and ax.get_xlabel() == "C (FLOP)"
    assert ax_n.get_ylabel() == "N_opt (parameters)"
    assert [t.get_text() for t in ax_n.get_legend().get_texts()][:2] == ["problem 0",
                                                                         "90% band (percentile)"]
    one = plot.compute_optimal(b, C=C, problems=[1])
    est, lo, hi = co["exponent"]
    assert one.axes[0].get_title() == f"N_opt ~ C^{est[1]:.3f} [{lo[1]:.3f}, {hi[1]:.3f}]"


def test_data_must_match_the_result(batch):
    x, y, b = batch
    with pytest.raises(ValueError, match="2 problem"):
        plot.fits(b, x, y[:2])
    with pytest.raises(ValueError, match="problems"):
        plot.fits(b, x, y, problems=[5])
    with pytest.raises(TypeError, match="FitResult or lawfit.BootstrapResult"):
        plot.fits(object(), x, y)


def test_lawfit_plot_is_imported_on_first_use():
    import subprocess
    import sys

    code = ("import sys, lawfit; assert 'matplotlib' not in sys.modules; "
            "assert 'lawfit.plot' not in sys.modules; lawfit.plot.fits; "
            "assert 'lawfit.plot' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
