"""Real scaling-law data from ../shared/data (skipped when the folder is absent)."""
import numpy as np
import pytest
from scipy import optimize

import lawfit

pd = pytest.importorskip("pandas")
pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def overtraining(data_dir):
    return pd.read_csv(data_dir / "overtraining_losses.csv")


def test_24_real_laws_in_one_batched_call(overtraining, compiled_backend):
    df = overtraining
    sigma = (df["loss_tokens_upper_95"] - df["loss_tokens_lower_95"]) / (2 * 1.96)
    df = df.assign(sigma=sigma)
    r = lawfit.fit("chinchilla", data=df, x=["params", "tokens"], y="loss", sigma="sigma",
                   groups=["dataset", "val_data"], p0=[1.5, 400.0, 400.0, 0.3, 0.3],
                   bounds=([0, 0, 0, 0, 0], [10, 1e7, 1e7, 2, 2]), residuals="log",
                   loss="huber", f_scale=1.0, backend=compiled_backend, return_cov=True)
    assert len(r) == 24 == df.groupby(["dataset", "val_data"]).ngroups
    assert r.success.all(), r.status_counts()
    frame = r.to_frame()
    assert list(zip(frame["dataset"], frame["val_data"])) == sorted(r.labels)
    assert {"E", "alpha", "beta", "E_stderr", "cost", "status", "n_points"} <= set(frame.columns)
    assert frame["n_points"].sum() == len(df)
    # each law, refitted alone by the same solver, gives the same answer
    for i in (0, 11, 23):
        key = r.labels[i]
        sub = df[(df["dataset"] == key[0]) & (df["val_data"] == key[1])]
        one = lawfit.fit("chinchilla", np.column_stack([sub["params"], sub["tokens"]]),
                         sub["loss"].to_numpy(), sigma=sub["sigma"].to_numpy(),
                         p0=[1.5, 400.0, 400.0, 0.3, 0.3],
                         bounds=([0, 0, 0, 0, 0], [10, 1e7, 1e7, 2, 2]), residuals="log",
                         loss="huber", f_scale=1.0, backend=compiled_backend)
        np.testing.assert_array_equal(one.x[0], r.x[i])
    print("\n" + frame[["dataset", "E", "A", "B", "alpha", "beta", "cost", "status"]]
          .to_string(max_colwidth=40))


def test_chinchilla_replication_objective_single_start(chinchilla):
    N, D, L, objective = chinchilla
    p0 = [np.log(406.4), np.log(410.7), np.log(1.69), 0.34, 0.28]
    r = lawfit.fit("chinchilla_log", np.column_stack([N, D]), L, p0=p0, residuals="log",
                   loss="huber", f_scale=1e-3, ftol=1e-12, xtol=1e-12, gtol=1e-12,
                   max_nfev=2000)
    assert r.success[0], r.message[0]

    # lawfit's cost is scipy's Huber cost, summed: the replication's objective (x 1)
    np.testing.assert_allclose(r.cost[0], objective(r.x[0]), rtol=1e-10)
    best = optimize.minimize(objective, r.x[0], method="L-BFGS-B")
    assert r.cost[0] <= best.fun * (1 + 1e-9)
    E, A, B = np.exp(r.x[0][[2, 0, 1]])
    print(f"\nE={E:.3f} A={A:.1f} B={B:.1f} alpha={r.x[0][3]:.3f} beta={r.x[0][4]:.3f}")
