"""Shared fixtures: where the real data is, and which backends this installation has."""
from __future__ import annotations

from pathlib import Path

import os

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


@pytest.fixture(params=COMPILED)
def compiled_backend(request) -> str:
    return request.param
