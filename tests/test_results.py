"""Results for people: reports, pickling, save/load, tidy frames, labels through bootstrap,
labelled derived quantities, parameters by name and progress.

Tested: the report of a fit and of a bootstrap says what it should (model, formula, labels,
status, the interval's level and method, the numbers ``interval`` gives) for a problem or the
first few of a batch; results come back bit for bit from pickle, from ``save``/``load`` and
from a ``multiprocessing`` pool (the lazily fitted jackknife included); ``to_frame`` holds the
same numbers as the arrays; group labels of a DataFrame survive ``bootstrap``; ``derive`` by
name equals ``derive`` by position; ``p0`` and ``bounds`` by name equal their arrays; and
progress, by callable or tqdm bar, reports often without changing a bit of the results.
"""
from __future__ import annotations

import multiprocessing
import pickle
import re
import sys

import numpy as np
import pytest

import lawfit
import lawfit._progress as progress_module
from lawfit._packing import pack
from lawfit._synthetic import saturating_power_laws

from batches import model_batch

pytest.importorskip("lawfit._core")
pd = pytest.importorskip("pandas")

NAME = "saturating_power_law"


def frame(n_groups: int = 5, seed: int = 0):
    """A DataFrame of n_groups saturating power laws, grouped by two columns."""
    rng = np.random.default_rng(seed)
    N = np.geomspace(1e6, 1e9, 12)
    letters = list("abcdefghij")[:n_groups]
    L = np.concatenate([(2 + 0.1 * k) + 50 * N ** -(0.3 + 0.01 * k) for k in range(n_groups)])
    return pd.DataFrame({"N": np.tile(N, n_groups),
                         "L": L * (1 + 0.01 * rng.standard_normal(L.size)),
                         "family": np.repeat(letters, 12),
                         "size": np.repeat(np.arange(n_groups) % 2, 12)})


def boot(**kw):
    """A small bootstrap of the frame's laws, grouped by both columns."""
    return lawfit.bootstrap(NAME, data=frame(), x="N", y="L", groups=["family", "size"],
                            n_resamples=kw.pop("n_resamples", 60), seed=3, **kw)


def assert_same_fit(a, b):
    for key in ("x", "cost", "status", "nfev", "njev", "nit", "optimality", "active_mask",
                "n_points", "n_omitted", "n_free", "cov", "fun", "jac", "offsets",
                "share_at_best", "best_start"):
        va, vb = getattr(a, key), getattr(b, key)
        assert (va is None) == (vb is None), key
        if va is not None:
            np.testing.assert_array_equal(va, vb, err_msg=key)
    assert a.param_names == b.param_names and a.model == b.model
    assert a.label_names == b.label_names
    assert (a.labels is None) == (b.labels is None)
    if a.labels is not None:
        assert list(a.labels) == list(b.labels)


def assert_same_bootstrap(a, b):
    assert_same_fit(a.fit, b.fit)
    for key in ("samples", "status", "n_continued", "n_refit"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    assert a.seed == b.seed and a.method == b.method


# ------------------------------------------------------------------------------------------
# Reports
# ------------------------------------------------------------------------------------------

def test_fit_report_shows_the_first_problems_and_counts_the_rest():
    df = frame()
    r = lawfit.fit(NAME, data=df, x="N", y="L", groups=["family", "size"], return_cov=True,
                   bounds={"E": (0, None)})
    text = r.summary(max_problems=2, min_correl=0.5)
    assert "saturating_power_law: E + A * x**-alpha" in text
    assert "[[Problem 0: family='a', size=0]]" in text
    assert "[[Problem 1: family='b', size=1]]" in text and "Problem 2" not in text
    assert "... and 3 more problems" in text
    assert f"status      {', '.join(f'{k}: {v}' for k, v in r.status_counts().items())}" \
        in text
    err = r.stderr
    for j, name in enumerate(r.param_names):  # estimate and standard error of each
        assert re.search(rf"\n    {name}\s+{r.x[0, j]:.6g}\s+{err[0, j]:.4g}\s", text), name
    assert "dof          9  (points less free parameters)" in text  # 12 points, 3 free
    # correlations above the threshold, and none below it
    c = r.cov[0] / np.sqrt(np.outer(np.diag(r.cov[0]), np.diag(r.cov[0])))
    shown = re.findall(r"\n      (\w+), (\w+)\s+([+-]\d\.\d{4})", text.split("Problem 1")[0])
    idx = {n: j for j, n in enumerate(r.param_names)}
    assert shown and all(abs(c[idx[a], idx[b]]) > 0.5 for a, b, _ in shown)
    assert len(shown) == int((np.abs(c[np.triu_indices(3, 1)]) > 0.5).sum())
    for a, b, v in shown:
        assert float(v) == pytest.approx(c[idx[a], idx[b]], abs=1e-4)
    # str is the default summary; repr stays one short line
    assert str(r) == r.summary()
    assert repr(r).startswith("FitResult(model='saturating_power_law', problems=5") and \
        "\n" not in repr(r)
    # chosen problems, and a fixed parameter: one fewer free, one more dof
    one = lawfit.fit(NAME, data=df, x="N", y="L", groups="family",
                     bounds={"alpha": (0.3, 0.3)})
    text = one.summary(problems=[4, -1])
    assert text.count("[[Problem 4: family='e']]") == 2 and "more problem" not in text
    assert "dof          10" in text and "standard errors: not computed" in text
    html = one._repr_html_()
    assert html.startswith("<div class='lawfit-report'>") and "<table>" in html
    assert "family=&#x27;a&#x27;" in html


def test_report_arguments_are_checked():
    r = lawfit.fit(NAME, data=frame(), x="N", y="L", groups="family")
    with pytest.raises(ValueError, match="problems: index 7 is out of range for 5"):
        r.summary(problems=7)
    with pytest.raises(ValueError, match="min_correl"):
        r.summary(min_correl=2)
    b = boot(n_resamples=10)
    with pytest.raises(ValueError, match="level"):
        b.summary(level=95)
    with pytest.raises(ValueError, match="method"):
        b.summary(method="basic")


def test_bootstrap_report_labels_intervals_with_level_and_method():
    b = boot()
    text = b.summary(problems=[0, 3], level=0.9)
    assert "resampling      pairs, 60 resamples, seed 3" in text
    assert "90% percentile interval" in text and "[[Problem 3: family='d', size=1]]" in text
    lo, hi = b.interval(0.9)
    se = b.se
    for i in (0, 3):
        block = text.split(f"[[Problem {i}")[1].split("[[Problem")[0]
        assert f"resamples    {int(b.n_converged[i])} of 60 converged" in block
        for j, name in enumerate(b.param_names):
            assert re.search(rf"\n    {name}\s+{b.fit.x[i, j]:.6g}\s+{se[i, j]:.4g}\s+"
                             rf"\[{lo[i, j]:.6g}, {hi[i, j]:.6g}\]", block), (i, name)
    bca = b.summary(problems=0, level=0.975, method="bca")
    blo, bhi = b.interval(0.975, "bca")
    assert "97.5% bca interval" in bca and f"[{blo[0, 0]:.6g}, {bhi[0, 0]:.6g}]" in bca
    assert "... and 2 more problems" in str(b)
    assert "97.5%" not in str(b) and "95% percentile interval" in str(b)
    assert repr(b).startswith("BootstrapResult(model='saturating_power_law', problems=5")
    assert "<h5>Problem 0: family=" in b._repr_html_()


# ------------------------------------------------------------------------------------------
# Results that travel
# ------------------------------------------------------------------------------------------

def test_fit_results_pickle_and_round_trip_through_save_and_load(tmp_path):
    x, y, _, _ = model_batch(NAME, n_problems=7, n_points=15, seed=1)
    grid = lawfit.grid(alpha=np.linspace(0.1, 1.0, 6), profile=True)
    r = lawfit.fit(NAME, x[:, 0], y, p0=grid, return_cov=True, return_residuals=True)
    g = lawfit.fit(NAME, data=frame(), x="N", y="L", groups="family", return_cov=True)
    for res in (r, g):
        assert_same_fit(pickle.loads(pickle.dumps(res)), res)
        path = tmp_path / "fit.npz"
        res.save(path)
        back = lawfit.load(path)
        assert type(back) is lawfit.FitResult
        assert_same_fit(back, res)
        assert back.label_names == res.label_names and back.backend == res.backend
        pd.testing.assert_frame_equal(back.to_frame(), res.to_frame())
    assert lawfit.load(path).labels.dtype == g.labels.dtype  # object labels stay objects


def test_laws_pickle_and_load_by_their_definition(tmp_path):
    chin = lawfit.law("E + A * N**-alpha + B * D**-beta", inputs=["N", "D"], name="chin")
    back = pickle.loads(pickle.dumps(chin))
    assert back == chin and back.source.struct() == chin.source.struct()
    assert back.core is not None and back.core is not chin.core
    assert pickle.loads(pickle.dumps(lawfit.models.get("chinchilla"))) is \
        lawfit.models.get("chinchilla")
    x, y, _, p0 = model_batch("chinchilla", n_problems=3, n_points=20, seed=2)
    r = lawfit.fit(chin, x, y, p0=p0[:, [0, 1, 3, 2, 4]])
    again = pickle.loads(pickle.dumps(r))
    assert_same_fit(again, r)
    np.testing.assert_array_equal(lawfit.fit(again.model, x, y, p0=p0[:, [0, 1, 3, 2, 4]]).x,
                                  r.x)
    r.save(tmp_path / "law.npz")
    assert_same_fit(lawfit.load(tmp_path / "law.npz"), r)

    def f(N, E, A, alpha):
        return E + A * N ** -alpha

    traced = lawfit.law(f, inputs=["N"])
    with pytest.raises(TypeError, match="the law 'f' was defined by a function"):
        pickle.dumps(traced)
    xs, ys, truth = saturating_power_laws(3, 10, seed=1)
    rt = lawfit.fit(traced, xs, ys, p0=truth)
    rt.save(tmp_path / "traced.npz")
    with pytest.raises(ValueError, match=r"defined by a function.*model=\.\.\."):
        lawfit.load(tmp_path / "traced.npz")
    back = lawfit.load(tmp_path / "traced.npz", model=traced)
    assert back.model is traced
    np.testing.assert_array_equal(back.x, rt.x)
    with pytest.raises(ValueError, match="model: its parameters"):
        lawfit.load(tmp_path / "traced.npz", model="chinchilla")


def test_bootstrap_results_pickle_save_and_load_with_their_jackknife(tmp_path):
    b = boot()
    again = pickle.loads(pickle.dumps(b))
    assert_same_bootstrap(again, b)
    # the jackknife is fitted after the trip, from what the pickle carried: the same bits
    np.testing.assert_array_equal(again.jackknife(), b.jackknife())
    np.testing.assert_array_equal(again.interval(0.9, "bca"), b.interval(0.9, "bca"))
    b.save(tmp_path / "boot.npz")  # the jackknife is computed now: saved with it
    back = lawfit.load(tmp_path / "boot.npz")
    assert type(back) is lawfit.BootstrapResult
    assert_same_bootstrap(back, b)
    np.testing.assert_array_equal(back.interval(0.9, "bca"), b.interval(0.9, "bca"))
    fresh = boot()  # saved before its jackknife: percentile intervals only
    fresh.save(tmp_path / "fresh.npz")
    back = lawfit.load(tmp_path / "fresh.npz")
    np.testing.assert_array_equal(back.interval(0.8), fresh.interval(0.8))
    with pytest.raises(ValueError, match=r"jackknife: .*call jackknife\(\)"):
        back.interval(0.8, "bca")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a file written by lawfit"):
        lawfit.load(tmp_path / "other.npz")


def test_labels_that_npz_cannot_hold_are_refused_by_save(tmp_path):
    df = frame()
    df["when"] = pd.to_datetime("2024-01-01") + pd.to_timedelta(df["size"], unit="D")
    r = lawfit.fit(NAME, data=df, x="N", y="L", groups=["family", "when"])
    with pytest.raises(ValueError, match="labels: group column 'when' holds Timestamp"):
        r.save(tmp_path / "r.npz")
    assert_same_fit(pickle.loads(pickle.dumps(r)), r)  # pickle carries them


def _bootstrap_in_a_worker(seed):
    x, y, truth = saturating_power_laws(4, 12, seed=seed)
    return lawfit.bootstrap(NAME, x, y, p0=truth, n_resamples=30, seed=seed, backend="cpu")


def test_a_bootstrap_comes_back_from_a_process_pool():
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.map(_bootstrap_in_a_worker, [1, 2])
    for seed, got in zip([1, 2], results):
        here = _bootstrap_in_a_worker(seed)
        assert_same_bootstrap(got, here)
        np.testing.assert_array_equal(got.jackknife(), here.jackknife())


def test_to_frame_is_tidy_and_holds_the_arrays_numbers():
    b = boot()
    P, R, n = b.samples.shape
    df = b.to_frame(level=0.8)
    assert list(df.columns) == ["family", "size", "parameter", "estimate", "se", "low",
                                "high", "n_converged", "n_failed", "status", "success"]
    assert len(df) == P * n and df.attrs["level"] == 0.8
    lo, hi = b.interval(0.8)
    np.testing.assert_array_equal(df["low"].to_numpy().reshape(P, n), lo)
    np.testing.assert_array_equal(df["high"].to_numpy().reshape(P, n), hi)
    np.testing.assert_array_equal(df["se"].to_numpy().reshape(P, n), b.se)
    np.testing.assert_array_equal(df["estimate"].to_numpy().reshape(P, n), b.fit.x)
    assert list(df["parameter"][:n]) == list(b.param_names)
    assert list(df["family"][::n]) == list("abcde") and list(df["size"][::n]) == [0, 1] * 2 + [0]
    assert (df["n_converged"] + df["n_failed"] == R).all()
    bca = b.to_frame(0.9, "bca")
    np.testing.assert_array_equal(bca["low"].to_numpy().reshape(P, n),
                                  b.interval(0.9, "bca")[0])
    long = b.to_frame(samples=True)
    assert list(long.columns) == ["family", "size", "resample", "parameter", "value",
                                  "status"]
    assert len(long) == P * R * n
    np.testing.assert_array_equal(long["value"].to_numpy().reshape(P, R, n), b.samples)
    row = long.iloc[(2 * R + 7) * n + 1]  # problem 2, resample 7, parameter A
    assert (row["family"], row["resample"], row["parameter"]) == ("c", 7, "A")
    assert row["status"] == b.status[2, 7]
    # without labels, the problem's index
    x, y, truth = saturating_power_laws(3, 10, seed=2)
    plain = lawfit.bootstrap(NAME, x, y, p0=truth, n_resamples=5).to_frame()
    assert list(plain["problem"]) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_bootstrap_keeps_the_group_labels_of_a_frame():
    df = frame()
    for groups in (["family", "size"], "family", ["family"]):
        f = lawfit.fit(NAME, data=df, x="N", y="L", groups=groups)
        b = lawfit.bootstrap(NAME, data=df, x="N", y="L", groups=groups, n_resamples=5)
        assert list(b.fit.labels) == list(f.labels) and b.fit.label_names == f.label_names
        np.testing.assert_array_equal(b.fit.x, f.x)
        labels = b.to_frame()[list(f.label_names)].drop_duplicates()
        pd.testing.assert_frame_equal(labels.reset_index(drop=True),
                                      f.to_frame()[list(f.label_names)])
    assert list(b.fit.labels) == [("a",), ("b",), ("c",), ("d",), ("e",)]
    # one group column given as a list: its values in the frame and the report, not 1-tuples
    assert list(b.to_frame()["family"][::3]) == list("abcde")
    assert "[[Problem 1: family='b']]" in b.summary()


# ------------------------------------------------------------------------------------------
# derive and compute_optimal, labelled
# ------------------------------------------------------------------------------------------

def test_derive_by_name_equals_derive_by_position():
    b = boot()
    by_pos = b.derive(lambda p: p[..., 0] + p[..., 1] * 1e10 ** -p[..., 2], 0.9)
    by_name = b.derive(lambda E, A, alpha: E + A * 1e10 ** -alpha, 0.9)
    subset = b.derive(lambda alpha, E: E / alpha, 0.9, method="bca")
    mapping = b.derive(lambda q: q["E"] / q["alpha"], 0.9, method="bca", by="mapping")
    kwargs = b.derive(lambda **q: q["E"] / q["alpha"], 0.9, method="bca")
    positional = b.derive(lambda p: p[..., 0] / p[..., 2], 0.9, method="bca")
    for a, c in ((by_pos, by_name), (subset, mapping), (subset, kwargs),
                 (subset, positional)):
        for u, v in zip(a, c):
            np.testing.assert_array_equal(u, v)
    est, lo, hi = by_name  # still a 3-tuple
    assert by_name.estimate is est and by_name.low is lo and by_name.high is hi
    assert (by_name.level, by_name.method) == (0.9, "percentile")
    framed = subset.to_frame("E_over_alpha")
    assert list(framed.columns) == ["family", "size", "E_over_alpha", "low", "high"]
    np.testing.assert_array_equal(framed["low"], subset.low)
    with pytest.raises(ValueError, match="fn: argument\\(s\\) 'gamma' name no parameter"):
        b.derive(lambda E, gamma: E, by="name")
    with pytest.raises(ValueError, match="by: expected"):
        b.derive(lambda p: p, by="position")
    # a function whose argument names no parameter gets the array, as before
    np.testing.assert_array_equal(b.derive(lambda params: params[..., 2])[0], b.fit.x[:, 2])
    assert pickle.loads(pickle.dumps(by_name)).level == 0.9


def test_compute_optimal_is_labelled_and_still_unpacks():
    x, y, truth, p0 = model_batch("chinchilla", n_problems=3, n_points=30, seed=2)
    b = lawfit.bootstrap("chinchilla", x, y, p0=p0, n_resamples=30, seed=4,
                         residuals="log")
    C = np.array([1e21, 1e23])
    opt = b.compute_optimal(C, level=0.8)
    n, nl, nh = opt["N_opt"]
    assert opt.N_opt is opt["N_opt"] and opt.level == 0.8 and list(opt.C) == list(C)
    np.testing.assert_allclose(6 * n * opt.D_opt.estimate, np.broadcast_to(C, n.shape),
                               rtol=1e-12)
    direct = b.derive(lambda E, A, alpha, B, beta: beta / (alpha + beta), 0.8)
    for u, v in zip(opt.exponent, direct):
        np.testing.assert_array_equal(u, v)
    df = opt.to_frame()
    assert len(df) == 3 * 2 and list(df["problem"]) == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(df["N_opt_low"].to_numpy().reshape(3, 2), nl)
    np.testing.assert_array_equal(df["exponent"].to_numpy().reshape(3, 2)[:, 1],
                                  opt.exponent.estimate)
    assert list(df["C"]) == [1e21, 1e23] * 3
    assert "ComputeOptimal(problems=3" in repr(opt)


# ------------------------------------------------------------------------------------------
# Parameters by name
# ------------------------------------------------------------------------------------------

def test_p0_and_bounds_by_name_equal_their_arrays():
    x, y, truth, p0 = model_batch(NAME, n_problems=6, n_points=15, seed=3)
    x = x[:, 0]
    as_dict = dict(zip(("E", "A", "alpha"), p0.T))  # one value per problem
    lower, upper = np.array([0.0, -np.inf, 0.0]), np.array([np.inf, np.inf, 2.0])
    a = lawfit.fit(NAME, x, y, p0=p0, bounds=(lower, upper))
    for bounds in ({"E": (0, None), "alpha": (0, 2)}, ({"E": 0, "alpha": 0}, {"alpha": 2})):
        b = lawfit.fit(NAME, x, y, p0=as_dict, bounds=bounds)
        np.testing.assert_array_equal(b.x, a.x)
    # a partial p0: the rest from the data-driven guess
    guess = pack(lawfit.models.get(NAME), x, y).p0
    part = lawfit.fit(NAME, x, y, p0={"alpha": 0.25})
    whole = lawfit.fit(NAME, x, y, p0=np.column_stack([guess[:, :2], np.full(6, 0.25)]))
    np.testing.assert_array_equal(part.x, whole.x)
    np.testing.assert_array_equal(lawfit.fit(NAME, x, y, p0={"alpha": 0.25}, chunk_size=4).x,
                                  whole.x)
    with pytest.raises(ValueError, match="p0: 'gamma' is not a parameter of the model "
                                         r"\(its parameters: E, A, alpha\)"):
        lawfit.fit(NAME, x, y, p0={"gamma": 1.0})
    with pytest.raises(ValueError, match="bounds: 'beta' is not a parameter"):
        lawfit.fit(NAME, x, y, bounds={"beta": (0, 1)})
    with pytest.raises(ValueError, match="bounds: 'beta' is not a parameter"):
        lawfit.fit(NAME, x, y, bounds=({"E": 0}, {"beta": 1}))
    with pytest.raises(ValueError, match="bounds: parameter 'E': expected a pair"):
        lawfit.fit(NAME, x, y, bounds={"E": 0})
    with pytest.raises(ValueError, match="p0: no value for 'A', 'B', 'alpha', 'beta'"):
        lawfit.fit("chinchilla", np.ones((4, 2)), np.ones(4), p0={"E": 1.0})
    with pytest.raises(ValueError, match="p0: parameters given per problem disagree"):
        lawfit.fit(NAME, x, y, p0={"E": np.ones(6), "A": np.ones(5), "alpha": 0.3})
    # bootstrap takes them too
    kw = dict(n_resamples=20, seed=1)
    np.testing.assert_array_equal(
        lawfit.bootstrap(NAME, x, y, p0=as_dict, bounds={"E": (0, None), "alpha": (0, 2)},
                         **kw).samples,
        lawfit.bootstrap(NAME, x, y, p0=p0, bounds=(lower, upper), **kw).samples)


# ------------------------------------------------------------------------------------------
# Progress
# ------------------------------------------------------------------------------------------

@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunks of one problem (or resample) each, however fast they are."""
    monkeypatch.setattr(progress_module, "FIRST_UNITS", 1)
    monkeypatch.setattr(progress_module, "TARGET_S", 0.0)


def test_progress_reports_often_and_changes_no_bits(tiny_chunks):
    x, y, truth, p0 = model_batch(NAME, n_problems=9, n_points=12, seed=6)
    x = x[:, 0]
    groups = np.repeat(np.arange(9)[::-1], 12)
    grid = lawfit.grid(alpha=np.linspace(0.1, 1, 4), profile=True)
    cases = [dict(x=x, y=y, p0=p0, return_cov=True, return_residuals=True),
             dict(x=[x] * 9, y=list(y), p0=grid, k=2),
             dict(x=np.tile(x, 9), y=y.ravel(), groups=groups, p0=p0[::-1],
                  return_residuals=True, sigma=np.full(108, 0.01), bounds={"E": (0, None)}),
             dict(x=np.tile(x, 9), y=y.ravel(), groups=groups, p0=grid)]
    cases.append(dict(x=x, y=y[0], p0=p0[0], return_residuals=True))  # one flat problem
    for kw in cases:
        calls = []
        a = lawfit.fit(NAME, progress=lambda d, t: calls.append((d, t)), **kw)
        assert_same_fit(a, lawfit.fit(NAME, **kw))
        n = len(a)
        assert calls == [(d, n) for d in range(1, n + 1)]
    # bootstrap: the full-data fits, then the resamples, one at a time here
    calls = []
    kw = dict(p0=p0, n_resamples=6, seed=2)
    b = lawfit.bootstrap(NAME, x, y, progress=lambda d, t: calls.append((d, t)), **kw)
    assert_same_bootstrap(b, lawfit.bootstrap(NAME, x, y, **kw))
    total = 9 * 7
    assert calls == [(d, total) for d in range(1, total + 1)]
    grid_calls = []
    gb = lawfit.bootstrap(NAME, x, y, p0=p0, n_resamples=4, start=grid, k=2,
                          progress=lambda d, t: grid_calls.append(d))
    assert_same_bootstrap(gb, lawfit.bootstrap(NAME, x, y, p0=p0, n_resamples=4,
                                               start=grid, k=2))
    assert grid_calls[-1] == 9 * 5 and grid_calls == sorted(grid_calls)


def test_chunks_grow_with_the_rate_and_stay_under_the_cap(monkeypatch):
    clock = iter(np.arange(0, 100, 0.001))  # each chunk takes 1 ms
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(clock))
    p = progress_module.Progress(10_000)
    sizes = [b - a for a, b in p.chunks(0, 10_000, cap=3000, cost=4)]
    # 512 first (2048 units of 4 starts), then 8-fold growth, then the cap
    assert sizes[:3] == [512, 3000, 3000] and sum(sizes) == 10_000 and p.done == 10_000


def test_progress_true_shows_a_bar_and_needs_tqdm(monkeypatch, capsys):
    pytest.importorskip("tqdm")
    x, y, truth, p0 = model_batch(NAME, n_problems=4, n_points=12, seed=6)
    lawfit.bootstrap(NAME, x[:, 0], y, p0=p0, n_resamples=5, progress=True)
    err = capsys.readouterr().err
    assert "bootstrap" in err and "24/24" in err
    lawfit.fit(NAME, x[:, 0], y, p0=p0, progress=True)
    assert "4/4" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match=r"pip install 'lawfit\[progress\]'"):
        lawfit.fit(NAME, x[:, 0], y, p0=p0, progress=True)
    np.testing.assert_array_equal(lawfit.fit(NAME, x[:, 0], y, p0=p0, progress=False).x,
                                  lawfit.fit(NAME, x[:, 0], y, p0=p0).x)
    for call in (lawfit.fit, lawfit.bootstrap):
        with pytest.raises(ValueError, match="progress: expected True, False, None or a "
                                             "callable"):
            call(NAME, x[:, 0], y, p0=p0, progress="yes")


def test_an_interrupt_stops_the_call_between_chunks(tiny_chunks):
    x, y, truth, p0 = model_batch(NAME, n_problems=20, n_points=12, seed=6)
    calls = []

    def interrupt(done, total):
        calls.append(done)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lawfit.bootstrap(NAME, x[:, 0], y, p0=p0, n_resamples=50, progress=interrupt)
    assert calls == [1, 2, 3]  # nothing solved after the interrupt
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        lawfit.fit(NAME, x[:, 0], y, p0=p0, progress=interrupt)
    assert calls == [1, 2, 3]
