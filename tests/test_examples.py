"""examples/chinchilla.py, the Chinchilla replication end to end, run on the real data with a
small bootstrap."""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "chinchilla.py"


def _load():
    spec = importlib.util.spec_from_file_location("chinchilla_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.data
def test_the_chinchilla_example(data_dir, tmp_path):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    ex = _load()
    out = io.StringIO()
    got = ex.run(data_dir / "chinchilla_epoch.csv", resamples=200, seed=0, level=0.9,
                 figures=tmp_path, out=out)
    b = got["bootstrap"]
    assert b.fit.n_points[0] == 240 and b.fit.n_starts[0] == 4500
    # the replication's optimum (README, bench/RESULTS.md): E, A, B, alpha, beta
    np.testing.assert_allclose([got["fit"][k] for k in ("E", "A", "B", "alpha", "beta")],
                               [1.817, 477.8, 2143, 0.3473, 0.3672], rtol=1e-3)
    for name, (lo, hi) in got["intervals"].items():
        assert lo < got["fit"][name] < hi, name
    est, lo, hi = got["exponent"]
    assert lo < est < hi and est == pytest.approx(0.3672 / (0.3473 + 0.3672), rel=1e-3)
    n_est, n_lo, n_hi = got["N_opt"]
    assert n_lo < n_est < n_hi and 5e10 < n_est < 1e11
    d_est = got["D_opt"][0]
    assert d_est == pytest.approx(5.76e23 / 6 / n_est, rel=1e-12)  # C = 6 N D
    text = out.getvalue()
    assert "240 points" in text and "90% percentile intervals" in text
    for key in ("fit", "frontier", "params"):
        path = Path(got["figures"][key])
        assert path.parent == tmp_path and path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.data
def test_the_example_drops_the_five_highest_losses_and_keeps_the_order(data_dir):
    pd = pytest.importorskip("pandas")
    ex = _load()
    N, D, L = ex.load(data_dir / "chinchilla_epoch.csv")
    df = pd.read_csv(data_dir / "chinchilla_epoch.csv")
    kept = df[df["loss"] < np.sort(df["loss"].to_numpy())[-5]]
    np.testing.assert_array_equal(L, kept["loss"].to_numpy())
    np.testing.assert_array_equal(N, kept["Model Size"].to_numpy())
    np.testing.assert_allclose(D, kept["Training FLOP"].to_numpy() / (6 * N), rtol=0)
    assert len(L) == 240 and (df["loss"].nlargest(5) > L.max()).all()
    dropped = df.loc[df["loss"].nlargest(5).index]
    # the data's README: the dropped rows all have D/N < 0.41
    assert (dropped["Training FLOP"] / (6 * dropped["Model Size"] ** 2) < 0.41).all()


def test_the_example_says_where_its_data_are_missing(tmp_path, capsys):
    ex = _load()
    assert ex.main(["--data", str(tmp_path / "none.csv")]) == 2
    assert "no data at" in capsys.readouterr().err
