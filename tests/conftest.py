"""Shared fixtures: where the real data is, and which backends this installation has."""
from __future__ import annotations

from pathlib import Path

import os

import numpy as np
import pytest
from hypothesis import settings

import lawfit

# CI (which sets CI=true) runs the property tests on a fixed sequence of examples, so that a
# submission lands or not on its own merits; elsewhere each run explores new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"

AVAILABLE = {name for name, (ok, _) in lawfit.backends().items() if ok}
COMPILED = [b for b in ("cpu", "cuda") if b in AVAILABLE]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"real data not found at {DATA_DIR}")
    return DATA_DIR


@pytest.fixture(scope="session")
def chinchilla(data_dir):
    """The replication's 240 Chinchilla points, N, D and L (the 5 highest losses dropped,
    D = C / (6 N)), and its objective: Huber (delta 1e-3) on log residuals, summed, in the
    log parameterisation (a, b, e, alpha, beta)."""
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(data_dir / "chinchilla_epoch.csv")
    N = df["Model Size"].to_numpy()
    D = df["Training FLOP"].to_numpy() / (6 * N)
    L = df["loss"].to_numpy()
    keep = np.argsort(L)[:-5]
    N, D, L = N[keep], D[keep], L[keep]

    def objective(p):
        logf = np.logaddexp.reduce([p[0] - p[3] * np.log(N), p[1] - p[4] * np.log(D),
                                    np.full_like(N, p[2])], axis=0)
        res = np.log(L) - logf
        a = np.abs(res)
        return np.sum(np.where(a <= 1e-3, 0.5 * res**2, 1e-3 * (a - 0.5e-3)))

    return N, D, L, objective


@pytest.fixture(params=COMPILED)
def compiled_backend(request) -> str:
    return request.param
