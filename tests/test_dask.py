"""Dask scale-out (lawfit/_dask.py): fit and bootstrap on a dask DataFrame, group by group,
give the pandas call's result bit for bit whatever the partitioning; the bootstrap's streams
keyed by stable problem ids (problem_ids), so a study split across calls resamples each
problem as the whole call does."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import lawfit

dd = pytest.importorskip("dask.dataframe")
import dask  # noqa: E402

MODEL = "saturating_power_law"


@pytest.fixture(autouse=True)
def synchronous():
    # The tasks in this process, one after another (a distributed client runs the same
    # calls on its workers; this keeps the tests fast and their threads the core's).
    with dask.config.set(scheduler="synchronous"):
        yield


def frame(G=9, m=14, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(G):
        x = np.geomspace(1e6, 1e9, m)
        E, A, a = rng.uniform(1.5, 2.5), np.exp(rng.uniform(5, 7)), rng.uniform(0.25, 0.45)
        y = (E + A * x ** -a) * (1 + 0.01 * rng.standard_normal(m))
        y[rng.integers(m)] = np.nan if g == 4 else y[0]  # a missing point in one group
        rows += [dict(family=f"f{g % 3}", size=g // 3, N=xi, loss=yi) for xi, yi in zip(x, y)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=3).reset_index(drop=True)


def same(a, b, path="") -> None:
    """Every array field of two results equal, bit for bit (NaN where NaN)."""
    for key, va in vars(a).items():
        vb = vars(b)[key]
        if isinstance(va, (lawfit.FitResult,)):
            same(va, vb, f"{path}{key}.")
        elif isinstance(va, np.ndarray):
            assert va.dtype == vb.dtype or va.dtype == object, f"{path}{key}"
            if va.dtype == object:
                assert list(va) == list(vb), f"{path}{key}"
            else:
                np.testing.assert_array_equal(va, vb, err_msg=f"{path}{key}")


@pytest.mark.parametrize("npartitions", [1, 2, 4, 7])
@pytest.mark.parametrize("groups", [["family", "size"], "family"])
def test_fit_on_a_dask_frame_is_the_pandas_call(npartitions, groups):
    df = frame()
    ddf = dd.from_pandas(df, npartitions=npartitions)
    kw = dict(x="N", y="loss", groups=groups, residuals="log", loss="huber", f_scale=1e-2,
              return_cov=True, return_residuals=True)
    want = lawfit.fit(MODEL, data=ddf.compute(), **kw)
    got = lawfit.fit(MODEL, data=ddf, **kw)
    same(got, want)
    assert got.label_names == want.label_names


@pytest.mark.parametrize("npartitions", [1, 3, 6])
@pytest.mark.parametrize("method", ["pairs", "residual"])
def test_bootstrap_on_a_dask_frame_is_the_pandas_call(npartitions, method):
    df = frame()
    ddf = dd.from_pandas(df, npartitions=npartitions)
    kw = dict(x="N", y="loss", groups=["family", "size"], n_resamples=25, seed=11,
              method=method, p0={"E": 2.0, "A": 400.0, "alpha": 0.3})
    with warnings.catch_warnings(record=True) as told_want:
        warnings.simplefilter("always")
        want = lawfit.bootstrap(MODEL, data=ddf.compute(), **kw)
    with warnings.catch_warnings(record=True) as told_got:
        warnings.simplefilter("always")
        got = lawfit.bootstrap(MODEL, data=ddf, **kw)
    same(got, want)
    # The warnings count and name the problems of the whole call, once.
    assert [str(w.message) for w in told_got] == [str(w.message) for w in told_want]
    np.testing.assert_array_equal(got.jackknife(), want.jackknife())
    np.testing.assert_array_equal(got.interval(0.9, method="bca")[0],
                                  want.interval(0.9, method="bca")[0])


def test_problem_ids_key_each_problems_resamples():
    """A problem keyed by its id is resampled the same in any call: a study split in two
    calls with its ids gives the whole call's samples; other ids give other resamples."""
    df = frame()
    kw = dict(x="N", y="loss", groups=["family", "size"], n_resamples=20, seed=5)
    whole = lawfit.bootstrap(MODEL, data=df, problem_ids=np.arange(9) * 1000 + 7, **kw)
    labels = list(whole.fit.labels)
    first = df[df["family"].isin(["f0", "f1"])]
    part = lawfit.bootstrap(MODEL, data=first, problem_ids=[
        1000 * labels.index(lab) + 7 for lab in sorted(set(zip(first.family, first["size"])))],
        **kw)
    rows = [labels.index(tuple(lab)) for lab in part.fit.labels]
    np.testing.assert_array_equal(part.samples, whole.samples[rows])
    plain = lawfit.bootstrap(MODEL, data=df, **kw)  # keyed by position: other draws
    assert not np.array_equal(plain.samples, whole.samples)
    # Every backend draws the same streams: the NumPy reference agrees.
    y = np.vstack([g.sort_values("N")["loss"].to_numpy()
                   for _, g in df.groupby(["family", "size"])])[:3]
    x = np.geomspace(1e6, 1e9, 14)
    ids = [10, 3, 99]
    c = lawfit.bootstrap(MODEL, x, y, n_resamples=6, seed=2, problem_ids=ids, backend="cpu")
    r = lawfit.bootstrap(MODEL, x, y, n_resamples=6, seed=2, problem_ids=ids,
                         backend="numpy")
    ok = c.converged & r.converged
    assert ok.mean() > 0.9
    np.testing.assert_allclose(c.samples[ok], r.samples[ok], rtol=1e-6)


@pytest.mark.parametrize("ids, message", [
    ([1, 2], "expected 3 integers"),
    ([0.5, 1, 2], "expected 3 integers"),
    ([1, 1, 2], "must be distinct; problems 0 and 1 share 1"),
    ([-1, 0, 1], r"each must be in \[0, 2\^63\)"),
])
def test_bad_problem_ids_are_refused_naming_them(ids, message):
    x = np.geomspace(1, 100, 6)
    y = np.tile(2 + 3 * x ** -0.5, (3, 1))
    with pytest.raises(ValueError, match="problem_ids: " + message):
        lawfit.bootstrap(MODEL, x, y, n_resamples=3, problem_ids=ids)


def test_what_a_dask_frame_cannot_take_is_refused_before_any_work():
    ddf = dd.from_pandas(frame(), npartitions=2)
    with pytest.raises(ValueError, match="groups: a dask DataFrame in data= is fitted"):
        lawfit.fit(MODEL, data=ddf, x="N", y="loss")
    with pytest.raises(ValueError, match="p0: per-problem values cannot follow"):
        lawfit.fit(MODEL, data=ddf, x="N", y="loss", groups="family", p0=np.ones((3, 3)))
    with pytest.raises(ValueError, match="p0: a grid with starts per problem"):
        lawfit.fit(MODEL, data=ddf, x="N", y="loss", groups="family",
                   p0=lawfit.grid(starts=np.ones((3, 2, 3))))
    with pytest.raises(ValueError, match="progress: with a dask DataFrame"):
        lawfit.bootstrap(MODEL, data=ddf, x="N", y="loss", groups="family", progress=True)
    with pytest.raises(ValueError, match="y: with a dask DataFrame in data=, give column"):
        lawfit.fit(MODEL, data=ddf, x="N", y=np.ones(5), groups="family")


def test_a_distributed_client_runs_the_partitions_on_its_workers():
    distributed = pytest.importorskip("distributed")
    df = frame(G=6)
    ddf = dd.from_pandas(df, npartitions=3)
    kw = dict(x="N", y="loss", groups=["family", "size"], n_resamples=10, seed=1)
    want = lawfit.bootstrap(MODEL, data=df.loc[ddf.compute().index], **kw)
    with dask.config.set(scheduler=None), distributed.Client(
            processes=False, n_workers=2, threads_per_worker=1,
            dashboard_address=None) as client:
        got = lawfit.bootstrap(MODEL, data=ddf, **kw)
        assert client.run(lambda: 1)  # the client was up
    same(got, want)


def test_a_local_cluster_of_worker_processes_gives_the_single_process_bits():
    """issue 21: fit and bootstrap over a partitioned DataFrame on a LocalCluster of two
    worker processes, for two partitionings, bitwise equal to the single-process call."""
    distributed = pytest.importorskip("distributed")
    df = frame(G=8)
    fkw = dict(x="N", y="loss", groups=["family", "size"], residuals="log")
    bkw = dict(fkw, n_resamples=12, seed=4)
    with dask.config.set(scheduler=None), distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1,
            dashboard_address=None) as cluster, distributed.Client(cluster):
        for parts in (2, 5):
            ddf = dd.from_pandas(df, npartitions=parts)
            pdf = ddf.compute()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                same(lawfit.fit(MODEL, data=ddf, **fkw), lawfit.fit(MODEL, data=pdf, **fkw))
                same(lawfit.bootstrap(MODEL, data=ddf, **bkw),
                     lawfit.bootstrap(MODEL, data=pdf, **bkw))


@pytest.mark.parametrize("npartitions", [2, 5])
def test_groups_whole_in_partitions_and_groups_across_them(npartitions):
    """Rows stored group by group: most groups lie whole in one partition (fitted there),
    a few straddle two (gathered); either way the pandas call's bits."""
    df = frame(G=12).sort_values(["family", "size"], kind="stable").reset_index(drop=True)
    ddf = dd.from_pandas(df, npartitions=npartitions, sort=False)
    kw = dict(x="N", y="loss", groups=["family", "size"])
    same(lawfit.fit(MODEL, data=ddf, **kw), lawfit.fit(MODEL, data=ddf.compute(), **kw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same(lawfit.bootstrap(MODEL, data=ddf, n_resamples=8, seed=3, **kw),
             lawfit.bootstrap(MODEL, data=ddf.compute(), n_resamples=8, seed=3, **kw))


@pytest.mark.parametrize("rows", [37, 10, 7])
def test_a_dask_array_batch_is_the_numpy_call(rows):
    """y a dask array (problems x points) in blocks of rows: fit and bootstrap give the NumPy
    call's bits (per-problem starts, bounds and sigma cut to follow the blocks; a bootstrap
    keyed by each row's place in the whole batch)."""
    import dask.array as da

    from batches import model_batch

    x, y, truth, p0 = model_batch(MODEL, n_problems=37, n_points=12, seed=5)
    sigma = 0.01 * np.abs(y)
    lo = np.tile([0.0, 0.0, 0.0], (37, 1))
    hi = np.tile([10.0, np.inf, 3.0], (37, 1))
    dy = da.from_array(y, chunks=(rows, 6))
    kw = dict(p0=p0, sigma=sigma, bounds=(lo, hi), residuals="log", return_cov=True)
    same(lawfit.fit(MODEL, x, dy, **kw), lawfit.fit(MODEL, x, y, **kw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bkw = dict(p0=p0, n_resamples=9, seed=2)
        same(lawfit.bootstrap(MODEL, x, dy, **bkw), lawfit.bootstrap(MODEL, x, y, **bkw))
    with pytest.raises(ValueError, match="groups: not taken with a dask array y"):
        lawfit.fit(MODEL, x, dy, groups=np.zeros(12))
