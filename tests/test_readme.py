"""The README's Chinchilla quick start, pasted as it stands, reproduces the numbers the
README states."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## The Chinchilla replication, the command line and plots"


def _text() -> str:
    return README.read_text()


def _quick_start() -> str:
    text = _text()
    assert SECTION in text
    after = text.split(SECTION, 1)[1]
    return re.search(r"```python\n(.*?)```", after, re.S).group(1)


@pytest.mark.data
def test_the_chinchilla_quick_start_reproduces_the_readme(data_dir, tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    code = _quick_start()
    assert '"../shared/data/chinchilla_epoch.csv"' in code
    code = code.replace('"../shared/data/chinchilla_epoch.csv"',
                        repr(str(data_dir / "chinchilla_epoch.csv")))
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), ns)
    assert (tmp_path / "chinchilla.png").read_bytes()[:4] == b"\x89PNG"
    assert "90% percentile interval" in out.getvalue()
    b = ns["b"]
    readme = " ".join(_text().split())  # line breaks as spaces
    e, a_, b_ = np.exp(b.fit.x[0, [2, 0, 1]])
    alpha, beta = b.fit.x[0, 3:]
    assert (f"E = {e:.3f}, A = {a_:.1f}, B = {b_:.0f}, alpha = {alpha:.4f}, "
            f"beta = {beta:.4f}") in readme
    lo, hi = b.interval(0.9)
    assert f"alpha {lo[0, 3]:.4f} to {hi[0, 3]:.4f}" in readme
    assert f"beta {lo[0, 4]:.4f} to {hi[0, 4]:.4f}" in readme
    assert f"E {np.exp(lo[0, 2]):.3f} to {np.exp(hi[0, 2]):.3f}" in readme
    co = b.compute_optimal(C=[5.76e23], level=0.9)
    x, xl, xh = (float(np.ravel(v)[0]) for v in co["exponent"])
    stated = f"{x:.3f} ({xl:.3f} to {xh:.3f})"
    assert readme.count(stated) == 2  # the quick start and the bootstrap section
    n, nl, nh = (float(np.ravel(v)[0]) / 1e9 for v in co["N_opt"])
    assert f"N_opt = {n:.0f}B parameters ({nl:.0f}B to {nh:.0f}B)" in readme
    assert f"5.76e23 FLOP at {n:.0f}B parameters ({nl:.0f}B to {nh:.0f}B)" in readme
    d, dl, dh = (float(np.ravel(v)[0]) / 1e12 for v in co["D_opt"])
    assert f"D_opt = {d:.2f}T tokens ({dl:.2f}T to {dh:.2f}T)" in readme


def test_the_quick_start_is_under_ten_lines():
    """Issue 20: the replication through Python in under 10 lines (statements; a call
    wrapped over two lines counts once)."""
    import ast

    code = _quick_start()
    assert len(ast.parse(code).body) < 10
    assert len([ln for ln in code.splitlines() if ln.strip()]) <= 10
