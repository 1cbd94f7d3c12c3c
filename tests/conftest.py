"""Shared fixtures: where the real data is, and which backends this installation has."""
from __future__ import annotations

from pathlib import Path

import pytest

import lawfit

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"

AVAILABLE = {name for name, (ok, _) in lawfit.backends().items() if ok}
COMPILED = [b for b in ("cpu", "cuda") if b in AVAILABLE]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"real data not found at {DATA_DIR}")
    return DATA_DIR


@pytest.fixture(params=COMPILED)
def compiled_backend(request) -> str:
    return request.param
