"""A law's native build (lawfit.law(..., native=True)): its generated struct compiled by the
host compiler and run in lawfit's own SIMD lanes gives the tape's results, bit for bit, and
a second definition of the same law loads the cached build.  Skips without a compiler."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import lawfit
from lawfit import _native

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batches import model_batch  # noqa: E402

pytestmark = pytest.mark.skipif(_native.compiler() is None or _native.include_dirs() is None,
                                reason="no C++ compiler or no lawfit headers")
CHIN = "E + A * N**-alpha + B * D**-beta"


def test_a_native_build_gives_the_tapes_bits_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("LAWFIT_CACHE_DIR", str(tmp_path))
    params = ["E", "A", "B", "alpha", "beta"]
    tape = lawfit.law(CHIN, inputs=["N", "D"], params=params)
    native = lawfit.law(CHIN, inputs=["N", "D"], params=params, native=True)
    assert native.core.native and not tape.core.native
    builds = [b for b in _native.BUILDS.values() if b["path"].startswith(str(tmp_path))]
    assert len(builds) == 1 and not builds[0]["cached"]
    first = builds[0]
    x, y, truth, p0 = model_batch("chinchilla", n_problems=40, n_points=25)
    for kw in (dict(), dict(loss="huber", f_scale=0.01, residuals="log"),
               dict(bounds=(0, np.inf))):
        a = lawfit.fit(tape, x, y, p0=p0, **kw)
        b = lawfit.fit(native, x, y, p0=p0, **kw)
        np.testing.assert_array_equal(b.x, a.x, err_msg=str(kw))
        np.testing.assert_array_equal(b.status, a.status)
        np.testing.assert_array_equal(b.nfev, a.nfev)
    g = lawfit.grid(E=[1.0, 2.0], A=[100.0, 500.0], B=[100.0, 500.0], alpha=[0.2, 0.4],
                    beta=[0.2, 0.4])
    np.testing.assert_array_equal(lawfit.fit(native, x, y, p0=g).x,
                                  lawfit.fit(tape, x, y, p0=g).x)
    info = _native.attach(lawfit.law(CHIN, inputs=["N", "D"], params=params))
    assert info["cached"] and info["path"] == first["path"]
