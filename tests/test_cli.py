"""The ``lawfit`` command line: ``fit`` on CSV/Parquet/JSON tables, ``models``, the help
texts, and bad input ending in one line and exit status 2."""
from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

import lawfit
from lawfit import cli
from lawfit._synthetic import saturating_power_laws

pd = pytest.importorskip("pandas")


def run(argv):
    """(exit status, stdout, stderr) of ``lawfit ARGV`` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = cli.main(argv)
        except SystemExit as e:  # argparse: --help, usage errors
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Three groups of synthetic saturating power laws in one long CSV: columns size, loss,
    family; returns (path, x, y (3, m), truth (3, 3))."""
    x, y, truth = saturating_power_laws(3, 12, noise=0.01, seed=3)
    df = pd.DataFrame({"size": np.tile(x, 3), "loss": y.ravel(),
                       "family": np.repeat(["c", "a", "b"], len(x))})
    path = tmp_path_factory.mktemp("cli") / "laws.csv"
    df.to_csv(path, index=False)
    return path, x, y, truth


def test_fit_writes_one_row_per_group_equal_to_lawfit_fit(table, tmp_path):
    path, x, y, _ = table
    out = tmp_path / "r.csv"
    rc, stdout, stderr = run(["fit", str(path), "--law", "saturating_power_law", "--x", "size",
                              "--y", "loss", "--by", "family", "--out", str(out)])
    assert rc == 0, stderr
    res = pd.read_csv(out)
    assert list(res["family"]) == ["a", "b", "c"]  # the fit's order: sorted labels
    r = lawfit.fit("saturating_power_law", [x, x, x], [y[1], y[2], y[0]], return_cov=True)
    np.testing.assert_array_equal(res[["E", "A", "alpha"]].to_numpy(), r.x)
    np.testing.assert_allclose(res[["E_se", "A_se", "alpha_se"]].to_numpy(), r.stderr,
                               rtol=1e-12)
    # Wald intervals at the default 95%: estimate +- 1.959964 se
    np.testing.assert_allclose(res["alpha_hi"] - res["alpha"], 1.959964 * r.stderr[:, 2],
                               rtol=1e-6)
    np.testing.assert_array_equal(res["cost"], r.cost)
    assert list(res["status_name"]) == [lawfit.Status(int(s)).name for s in r.status]
    assert (res["n_points"] == 12).all() and (res["level"] == 0.95).all()
    assert res["intervals"][0].startswith("covariance")
    # the printed report: one block per group with its fitted law and the table
    for fam in "abc":
        assert f"family={fam}:" in stdout
    assert "loss = " in stdout and "95% interval" in stdout
    assert f"wrote {out}" in stdout


def test_bootstrap_intervals_are_lawfits(table, tmp_path, monkeypatch):
    path, x, y, _ = table
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    figures = []
    has_mpl = importlib.util.find_spec("matplotlib") is not None
    if has_mpl:
        from lawfit import plot

        real = plot.fits
        monkeypatch.setattr(plot, "fits", lambda *a, **k: figures.append(real(*a, **k))
                            or figures[-1])
    rc, stdout, stderr = run(["fit", str(path), "--law", "saturating_power_law", "--x", "size",
                              "--y", "loss", "--by", "family", "--bootstrap", "300",
                              "--seed", "7", "--level", "0.8", "--out", str(out)]
                             + (["--plot", str(png)] if has_mpl else []))
    assert rc == 0, stderr
    if has_mpl:  # the figure written: one axes per group, each with its 80% band
        from matplotlib.collections import PolyCollection

        assert png.read_bytes()[:4] == b"\x89PNG"
        axes = [a for a in figures[0].axes if a.get_visible()]
        assert [a.get_title() for a in axes] == ["family=a", "family=b", "family=c"]
        for a in axes:
            assert sum(isinstance(c, PolyCollection) for c in a.collections) == 1
        assert "80% band (percentile)" in [t.get_text() for t in axes[0].get_legend().get_texts()]
    rows = json.loads(out.read_text())
    assert [r_["family"] for r_ in rows] == ["a", "b", "c"]
    b = lawfit.bootstrap("saturating_power_law", [x, x, x], [y[1], y[2], y[0]],
                         n_resamples=300, seed=7)
    lo, hi = b.interval(0.8)
    got = np.array([[r_["E_lo"], r_["A_lo"], r_["alpha_lo"]] for r_ in rows])
    np.testing.assert_array_equal(got, lo)
    got = np.array([[r_["E_hi"], r_["A_hi"], r_["alpha_hi"]] for r_ in rows])
    np.testing.assert_array_equal(got, hi)
    np.testing.assert_allclose([r_["alpha_se"] for r_ in rows], b.se[:, 2], rtol=1e-12)
    assert all(r_["n_resamples"] == 300 for r_ in rows)
    assert "80% interval" in stdout and "bootstrap (300 resamples), percentile" in stdout


def test_expression_law_grid_and_parquet(table, tmp_path):
    pytest.importorskip("pyarrow")
    path, x, y, _ = table
    df = pd.read_csv(path).rename(columns={"size": "N"})
    pq = tmp_path / "laws.parquet"
    df.to_parquet(pq)
    out = tmp_path / "r.parquet"
    rc, stdout, stderr = run(["fit", str(pq), "--law", "E + A * N**-alpha", "--x", "N",
                              "--y", "loss", "--by", "family", "--grid", "E=1:3:3",
                              "A=100,1000", "alpha=0.1:0.5:3", "--k", "all",
                              "--out", str(out)])
    assert rc == 0, stderr
    res = pd.read_parquet(out)
    law = lawfit.law("E + A * N**-alpha", inputs=["N"])
    g = lawfit.grid(E=[1, 2, 3], A=[100, 1000], alpha=np.linspace(0.1, 0.5, 3))
    r = lawfit.fit(law, data=df, x="N", y="loss", groups="family", p0=g, k="all")
    np.testing.assert_array_equal(res[["E", "A", "alpha"]].to_numpy(), r.x)
    assert (res["n_starts"] == 18).all() and (res["n_refined"] == 18).all()
    assert "starts: a grid of 18 per problem, 18 refined" in stdout


def test_sobol_p0_bounds_and_log_residuals(table, tmp_path):
    path, x, y, _ = table
    out = tmp_path / "r.csv"
    rc, _, stderr = run(["fit", str(path), "--law", "saturating_power_law", "--x", "size",
                         "--y", "loss", "--by", "family", "--sobol", "32", "--seed", "1",
                         "--grid", "E=0:3", "A=10:3000", "alpha=0.05:1", "--bounds", "E=0:",
                         "--log-residuals", "--loss", "soft_l1", "--f-scale", "0.01",
                         "--out", str(out)])
    assert rc == 0, stderr
    res = pd.read_csv(out)
    g = lawfit.grid(sample="sobol", n=32, lower=[0, 10, 0.05], upper=[3, 3000, 1], seed=1)
    r = lawfit.fit("saturating_power_law", [x, x, x], [y[1], y[2], y[0]], p0=g,
                   bounds=([0, -np.inf, -np.inf], np.inf), residuals="log", loss="soft_l1",
                   f_scale=0.01)
    np.testing.assert_array_equal(res[["E", "A", "alpha"]].to_numpy(), r.x)
    # one start by name: the same as p0 given to lawfit.fit
    rc, _, stderr = run(["fit", str(path), "--law", "saturating_power_law", "--x", "size",
                         "--y", "loss", "--p0", "alpha=0.3,E=2,A=500", "--where",
                         "family == 'a'", "--out", str(out)])
    assert rc == 0, stderr
    r = lawfit.fit("saturating_power_law", x, y[1], p0=[2, 500, 0.3])
    np.testing.assert_array_equal(pd.read_csv(out)[["E", "A", "alpha"]].to_numpy(), r.x)


def test_compute_optimal_of_a_batch(tmp_path):
    """--compute-optimal: N_opt, D_opt and the exponent per group, as the bootstrap's own;
    the first --show groups printed."""
    rng = np.random.default_rng(5)
    rows = []
    for fam, p in (("f", [1.8, 400, 400, 0.34, 0.28]), ("g", [2.0, 300, 500, 0.3, 0.3])):
        N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 40))
        D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), 40))
        L = lawfit.models.chinchilla(np.column_stack([N, D]), *p) * np.exp(
            rng.normal(0, 0.01, 40))
        rows.append(pd.DataFrame({"N": N, "D": D, "loss": L, "fam": fam}))
    path, out = tmp_path / "c.csv", tmp_path / "r.csv"
    pd.concat(rows).to_csv(path, index=False)
    df = pd.read_csv(path)
    rc, stdout, stderr = run(["fit", str(path), "--law", "chinchilla", "--y", "loss",
                              "--by", "fam", "--p0", "1.9,350,450,0.3,0.3", "--bootstrap",
                              "100", "--compute-optimal", "1e21,1e23", "--level", "0.8",
                              "--show", "1", "--out", str(out)])
    assert rc == 0, stderr
    b = lawfit.bootstrap("chinchilla", data=df, x=["N", "D"], y="loss", groups="fam",
                         p0=[1.9, 350, 450, 0.3, 0.3], n_resamples=100)
    co = b.compute_optimal([1e21, 1e23], 0.8)
    res = pd.read_csv(out)
    est, lo, hi = co["N_opt"]
    np.testing.assert_allclose(res["N_opt@1e+23"], est[:, 1], rtol=1e-12)
    np.testing.assert_allclose(res["N_opt@1e+21_lo"], lo[:, 0], rtol=1e-12)
    est, lo, hi = co["exponent"]
    np.testing.assert_allclose(res["exponent_hi"], hi, rtol=1e-12)
    assert "fam=f: exponent a = beta/(alpha+beta)" in stdout
    assert "fam=g: exponent" not in stdout and "... and 1 more problems" in stdout


def test_x_names_a_column_as_the_laws_input(table, tmp_path):
    path = table[0]
    out = tmp_path / "r.csv"
    rc, stdout, stderr = run(["fit", str(path), "--law", "E + A * N**-alpha", "--x", "N=size",
                              "--y", "loss", "--by", "family", "--p0", "E=2,A=500,alpha=0.3",
                              "--out", str(out)])
    assert rc == 0, stderr
    assert stdout.startswith("law: loss = E + A * N**-alpha\n")
    df = pd.read_csv(path)
    r = lawfit.fit(lawfit.law("E + A * N**-alpha", inputs=["N"]), data=df, x="size", y="loss",
                   groups="family", p0=[2, 500, 0.3])
    np.testing.assert_array_equal(pd.read_csv(out)[["E", "A", "alpha"]].to_numpy(), r.x)


@pytest.mark.parametrize("argv, arg", [
    (["--y", "nope"], "--y: no column 'nope'"),
    (["--y", "loss", "--law", "not_a_law"], "--law: unknown law 'not_a_law'"),
    (["--y", "loss", "--law", "E + A * size**"], "--law:"),
    (["--y", "loss", "--by", "fam"], "--by: no column 'fam'"),
    (["--y", "loss", "--grid", "E=1:2"], "--grid E: expected LO:HI:N"),
    (["--y", "loss", "--grid", "E=1:2:3"], "--grid: no values for A, alpha"),
    (["--y", "loss", "--grid", "Q=1,2"], "--grid: unknown parameter 'Q'"),
    (["--y", "loss", "--sobol", "8"], "--sobol: needs a finite box"),
    (["--y", "loss", "--p0", "1,2"], "--p0: expected 3 values"),
    (["--y", "loss", "--bounds", "E=2:1"], "--bounds E: LO must not exceed HI"),
    (["--y", "loss", "--level", "1.5"], "--level: expected a number in (0, 1)"),
    (["--y", "loss", "--out", "r.xlsx"], "--out: 'r.xlsx': expected"),
    (["--y", "loss", "--where", "nope > 1"], "--where 'nope > 1':"),
    (["--y", "loss", "--assign", "D"], "--assign: expected NAME=VALUE"),
    (["--y", "loss", "--compute-optimal", "1e23"], "--compute-optimal: needs --bootstrap"),
    (["--y", "family"], "--y: column 'family' is not numeric"),
    (["--y", "loss", "--x", "size,loss"], "--x: the law 'saturating_power_law' takes 1"),
    (["--y", "loss", "--x", "x=nope"], "--x: no column 'nope'"),
    (["--y", "loss", "--grid", "E=1,2", "A=1,2", "alpha=1,2", "--k", "two"],
     "--k: expected a positive integer or 'all'"),
    (["--y", "loss", "--p0", "2,500,0.3", "--k", "2"], "--k: only used with a grid"),
    (["--y", "loss", "--x", "x="], "--x: expected COLUMN or NAME=COLUMN"),
])
def test_bad_input_ends_in_one_line(table, argv, arg):
    path = table[0]
    base = ["fit", str(path), "--law", "saturating_power_law", "--x", "size"]
    if "--law" in argv:
        base = ["fit", str(path), "--x", "size"]
    rc, stdout, stderr = run(base + argv)
    assert rc == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lawfit fit: error: ")
    assert arg in lines[0], lines[0]


def test_unreadable_files(tmp_path):
    rc, _, err = run(["fit", str(tmp_path / "missing.csv"), "--law", "power_law", "--y", "y"])
    assert rc == 2 and "DATA: no such file" in err
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    rc, _, err = run(["fit", str(bad), "--law", "power_law", "--y", "y"])
    assert rc == 2 and err.startswith("lawfit fit: error: DATA: cannot read") and \
        len(err.strip().splitlines()) == 1
    rc, _, err = run(["fit", str(tmp_path / "data.txt"), "--law", "power_law", "--y", "y"])
    assert rc == 2 and "no known extension" in err


def test_the_installed_command_fails_without_a_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "lawfit", "fit", str(tmp_path / "no.csv"),
                        "--law", "chinchilla", "--y", "loss"], capture_output=True, text=True)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [
        f"lawfit fit: error: DATA: no such file: '{tmp_path / 'no.csv'}'"]


def test_a_law_without_a_start_asks_for_one(table):
    rc, _, err = run(["fit", str(table[0]), "--law", "chinchilla", "--x", "size,size",
                      "--y", "loss"])
    assert rc == 2 and "--p0: the law 'chinchilla' has no data-driven start" in err
    assert "--profile" in err  # a profile grid is offered where the law has one


def test_models_lists_every_law_with_its_formula():
    rc, out, _ = run(["models"])
    assert rc == 0
    for name in lawfit.models.available():
        assert f"  {name}: {lawfit.models.get(name).formula}" in out
    for name in lawfit.library.available():
        assert f"  {name}: {lawfit.library.LIBRARY[name].formula}" in out


@pytest.mark.parametrize("command", [[], ["fit"], ["demo"], ["models"]])
def test_help_is_plain_text_and_every_option_has_help(command):
    rc, out, _ = run(command + ["--help"])
    assert rc == 0 and out.startswith("usage: lawfit")
    for markup in ("``", ":func:", ":class:", ":meth:"):
        assert markup not in out
    assert not any(line.lstrip().startswith(".. ") for line in out.splitlines())  # directives
    if command == ["fit"]:
        assert "examples:" in out and "lawfit fit ../shared/data/chinchilla_epoch.csv" in out
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, cli.argparse._SubParsersAction))
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help, f"lawfit {name} {action.option_strings or action.dest}"


def test_progress_writes_on_a_terminal_only():
    buf = io.StringIO()
    p = cli.Progress(stream=buf, enabled=True)
    p("fitting")
    p.count(5, 10)
    p.count(10, 10)
    p.done()
    text = buf.getvalue()
    assert "\rfitting" in text.replace("\x1b[K", "") and "10/10" in text and "#" * 20 in text
    quiet = io.StringIO()
    p = cli.Progress(stream=quiet)  # a StringIO is not a terminal
    p("fitting")
    p.count(10, 10)
    assert quiet.getvalue() == ""


def test_fitted_formula_substitutes_whole_names():
    m = lawfit.models.get("logistic")
    text = cli.fitted_formula(m, [2.0, -0.5, 3.0, 0.25], "acc")
    assert text == "acc = 2 / (1 + exp(-(-0.5) * (x - 3))) + 0.25"


@pytest.mark.data
def test_the_chinchilla_replication_in_one_command(data_dir, tmp_path):
    """Issue 20's command: the fitted law with 90% intervals, a results table and a PNG with
    the band; the numbers are the worked example's (examples/chinchilla.py)."""
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "chin.csv", tmp_path / "chin.png"
    rc, stdout, stderr = run([
        "fit", str(data_dir / "chinchilla_epoch.csv"), "--law", "chinchilla_log",
        "--assign", "N=`Model Size`", "--assign", "D=`Training FLOP` / (6 * N)",
        "--where", "loss.rank(ascending=False, method='first') > 5", "--x", "N,D",
        "--y", "loss", "--loss", "huber", "--f-scale", "1e-3", "--log-residuals",
        "--grid", "a=0:25:6", "b=0:25:6", "e=-1:1:5", "alpha=0:2:5", "beta=0:2:5",
        "--bootstrap", "400", "--seed", "0", "--level", "0.9", "--compute-optimal", "5.76e23",
        "--out", str(out), "--plot", str(png)])
    assert rc == 0, stderr
    assert "240 rows of 245" in stdout and "90% interval" in stdout
    assert "loss = exp(logsumexp(6.169 - 0.3473 * log(N), 7.67 - 0.3672 * log(D), 0.5973))" \
        in stdout
    res = pd.read_csv(out)
    assert len(res) == 1
    np.testing.assert_allclose(np.exp(res[["e", "a", "b"]].to_numpy()[0]),
                               [1.817, 477.8, 2143], rtol=1e-3)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sys.path.insert(0, str(data_dir.parents[1] / "main" / "examples"))
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "chinchilla_example", Path(__file__).resolve().parents[1] / "examples" / "chinchilla.py")
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    got = ex.run(data_dir / "chinchilla_epoch.csv", resamples=400, seed=0, level=0.9,
                 out=io.StringIO())
    lo, hi = got["intervals"]["alpha"]
    np.testing.assert_array_equal([res["alpha_lo"][0], res["alpha_hi"][0]], [lo, hi])
    np.testing.assert_allclose(res["exponent"][0], got["exponent"][0], rtol=1e-12)
    np.testing.assert_allclose(res["N_opt@5.76e+23_lo"][0], got["N_opt"][1], rtol=1e-12)
