"""lawfit.library: the field's laws as user laws, each checked against the paper's formula
written out in NumPy and fitted back to its parameters from synthetic data."""
from __future__ import annotations

import numpy as np
import pytest

import lawfit
from lawfit import library


def _grid2(a, b, m=8):
    A, B = np.meshgrid(a, b, indexing="ij")
    return np.column_stack([A.ravel(), B.ravel()])


def _data(name, rng):
    """Inputs (M, k), a plausible truth, and the paper's formula in NumPy."""
    if name == "data_constrained":
        N = np.geomspace(1e8, 9e9, 6)
        UD = np.array([1e9, 4e9, 1.6e10])
        rows = []
        for n in N:
            for ud in UD:
                for epochs in (1, 2, 4, 8, 16, 40):
                    un = min(n, 0.05 * ud)
                    rows.append([n, ud * epochs, un, ud])
        x = np.array(rows)
        truth = [1.69, 406.4, 410.7, 0.34, 0.28, 5.3, 15.4]

        def formula(x, E, A, B, a, b, RN, RD):
            N, D, UN, UD = x.T
            Dp = UD + UD * RD * (1 - np.exp(-(D / UD - 1) / RD))
            Np = UN + UN * RN * (1 - np.exp(-(N / UN - 1) / RN))
            return E + A / Np**a + B / Dp**b
        return x, truth, formula
    if name == "overtraining":
        N = np.geomspace(1e7, 7e9, 8)
        M = np.array([1, 2, 4, 8, 16, 32]) * 20.0
        NM = _grid2(N, M)
        x = np.column_stack([6 * NM[:, 0] * NM[:, 0] * NM[:, 1], NM[:, 1]])
        return x, [1.8, 40.0, 300.0, 0.12], \
            lambda x, E, a, b, eta: E + (a * x[:, 1]**eta + b * x[:, 1]**-eta) * x[:, 0]**-eta
    if name == "lr_annealing":
        steps = np.arange(1, 20001)
        lr = np.where(steps < 15000, 3e-4, 3e-4 * (1 - (steps - 15000) / 5000 * 0.9))
        s1, s2 = library.lr_annealing_areas(lr)
        x = np.column_stack([s1, s2])[::200]
        return x, [2.5, 0.6, 0.45, 250.0], \
            lambda x, L0, A, a, C: L0 + A * x[:, 0]**-a - C * x[:, 1]
    if name == "farseer":
        x = _grid2(np.geomspace(1e8, 1e10, 8), np.geomspace(1e9, 1e12, 10))
        truth = [-0.3, 0.1, 0.05, -0.6, 3.5, 0.03, -0.4, 0.9, 0.04]

        def formula(x, a1, b1, alpha, a2, b2, beta, a3, b3, gamma):
            N, D = x.T
            return (np.exp(a3 * N**gamma + b3)
                    + np.exp(a2 * N**beta + b2) * D**-np.exp(a1 * N**alpha + b1))
        return x, truth, formula
    if name == "vocabulary":
        rows = [[nnv, nv, d] for nnv in np.geomspace(3e7, 3e9, 5)
                for nv in np.geomspace(4e6, 4e8, 4) for d in np.geomspace(1e9, 1e11, 4)]
        x = np.array(rows)
        truth = [5.0, 1900.0, 0.35, 60.0, 0.2, 3000.0, 0.3]
        return x, truth, lambda x, E, A1, a1, A2, a2, B, b: (
            -E + A1 / x[:, 0]**a1 + A2 / x[:, 1]**a2 + B / x[:, 2]**b)
    if name == "precision_ptq":
        rows = [[n, d, p] for n in np.geomspace(3e7, 2e9, 5)
                for d in np.geomspace(1e9, 1e11, 5) for p in (3.0, 4.0, 6.0, 8.0)]
        x = np.array(rows)
        truth = [400.0, 0.34, 410.0, 0.28, 1.7, 0.3, 0.5, 0.6, 1.2]
        return x, truth, lambda x, A, a, B, b, E, CT, gD, gN, gp: (
            A * x[:, 0]**-a + B * x[:, 1]**-b + E
            + CT * x[:, 1]**gD / x[:, 0]**gN * np.exp(-x[:, 2] / gp))
    if name == "loss_to_loss":
        x = np.linspace(2.4, 4.0, 25)[:, None]
        return x, [1.3, 1.4, 1.9, 2.1], lambda x, K, k, E0, E1: K * (x[:, 0] - E0)**k + E1
    if name == "finetuning":
        x = _grid2(np.geomspace(1e8, 1.6e10, 6), np.geomspace(1e3, 1e6, 6))
        return x, [120.0, 0.2, 0.1, 1.1], \
            lambda x, A, a, b, E: A / x[:, 0]**a / x[:, 1]**b + E
    if name == "moe":
        rows = [[n, d, g] for n in np.geomspace(1e8, 1e10, 5)
                for d in np.geomspace(1e9, 1e11, 4) for g in (1.0, 2.0, 4.0, 8.0, 16.0)]
        x = np.array(rows)
        truth = [0.5, 20.0, 0.6, 18.0, 0.12, 33.0, 0.14]
        return x, truth, lambda x, c, g, gam, a, al, b, be: (
            c + (g / x[:, 2]**gam + a) / x[:, 0]**al + b / x[:, 1]**be)
    if name.startswith("bnsl_"):
        n = int(name[-1])
        x = np.geomspace(1e1, 1e7, 60)[:, None]
        truth = [0.1, 5.0, 0.1]
        for i in range(n):
            truth += [0.3 + 0.1 * i, 10.0 ** (2 + 1.5 * i), 0.4]

        def formula(x, a, b, c0, *rest):
            y = b * x[:, 0]**-c0
            for i in range(n):
                c, d, f = rest[3 * i:3 * i + 3]
                y = y * (1 + (x[:, 0] / d)**(1 / f))**(-c * f)
            return a + y
        return x, truth, formula
    raise AssertionError(name)


@pytest.mark.parametrize("name", library.available())
def test_each_law_is_its_papers_formula_and_fits_back(name):
    model = library.get(name)
    entry = library.LIBRARY[name]
    assert model.param_names == entry.params and model.input_names == entry.inputs
    rng = np.random.default_rng(0)
    x, truth, formula = _data(name, rng)
    truth = np.asarray(truth)
    y = formula(x, *truth)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(model(x, *truth), y, rtol=1e-12)
    p0 = truth * (1 + 0.02 * rng.uniform(-1, 1, truth.size))
    backend = "cpu" if model.n_params <= 10 else "numpy"
    r = lawfit.fit(model, x, y, p0=p0, backend=backend, ftol=1e-15, xtol=1e-15, gtol=1e-15,
                   max_nfev=5000)
    assert r.status[0] > 0, r.message
    # noise-free data: the fit goes back through the data (its parameters may be less well
    # determined than its values)
    np.testing.assert_allclose(model(x, *r.x[0]), y, rtol=1e-7)


def test_lr_annealing_areas_follow_the_definition():
    lr = np.array([1.0, 1.0, 0.8, 0.5, 0.5, 0.1])
    s1, s2 = library.lr_annealing_areas(lr, decay=0.9)
    np.testing.assert_allclose(s1, np.cumsum(lr))
    m = [0.0]
    for i in range(1, len(lr)):
        m.append(0.9 * m[-1] + (lr[i - 1] - lr[i]))
    np.testing.assert_allclose(s2, np.cumsum(m))
    with pytest.raises(ValueError, match="decay"):
        library.lr_annealing_areas(lr, decay=1.0)


def test_unknown_law_is_named():
    with pytest.raises(ValueError, match="unknown law 'chinchilla2'"):
        library.get("chinchilla2")


def test_overtraining_law_on_the_real_data():
    """Gadre et al.'s tied-exponent law on their 104 models x 8 validation sets: all 24
    (corpus, validation set) laws in one batch, each reaching the optimum that scipy's
    least_squares finds from the same start."""
    import pandas as pd
    from pathlib import Path
    from scipy.optimize import least_squares

    path = Path(__file__).resolve().parents[1].parent / "shared/data/overtraining_losses.csv"
    if not path.exists():
        pytest.skip("../shared/data is not present")
    df = pd.read_csv(path)
    df["C"] = 6.0 * df["params"] * df["tokens"]
    df["M"] = df["tokens"] / df["params"]
    model = library.get("overtraining")
    p0 = [1.5, 50.0, 50.0, 0.1]
    keys = sorted(set(zip(df["dataset"], df["val_data"])))
    ys, xs = [], []
    for k in keys:
        g = df[(df["dataset"] == k[0]) & (df["val_data"] == k[1])]
        xs.append(g[["C", "M"]].to_numpy())
        ys.append(g["loss"].to_numpy())
    r = lawfit.fit(model, xs, ys, p0=p0, bounds=(0, np.inf), ftol=1e-15, xtol=1e-15,
                   gtol=1e-15, max_nfev=10000)
    assert (r.status > 0).all()
    for i, (x, y) in enumerate(zip(xs, ys)):
        ref = least_squares(lambda p: model(x, *p) - y, p0, bounds=(0, np.inf),
                            ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=10000)
        assert r.cost[i] <= ref.cost * (1 + 1e-9), (keys[i], r.cost[i], ref.cost)
