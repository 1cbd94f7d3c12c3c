"""Philox4x32-10 and the bootstrap stream (cpp/include/lawfit/rng.h) against the published
known-answer vectors and the independent NumPy implementation (lawfit.reference.rng).

The bootstrap's resample weights come from this stream inside the kernels, keyed by
(seed, problem, resample), so they must be bitwise the same everywhere.
"""
from __future__ import annotations

import numpy as np
import pytest

from lawfit.reference import rng

_core = pytest.importorskip("lawfit._core")

# Random123's known-answer vectors for philox4x32 with 10 rounds: (counter, key, output).
KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
]


@pytest.mark.parametrize("ctr, key, want", KAT)
def test_known_answers(ctr, key, want):
    c = np.array([ctr], dtype=np.uint32)
    assert _core.testing.philox4x32_10(c, *key)[0].tolist() == want
    assert rng.philox4x32_10(c, *key)[0].tolist() == want


def test_compiled_equals_reference():
    g = np.random.default_rng(0)
    c = g.integers(0, 2**32, (5000, 4), dtype=np.uint64).astype(np.uint32)
    for k0, k1 in [(0, 0), (1, 2), (0xFFFFFFFF, 0x12345678)]:
        np.testing.assert_array_equal(_core.testing.philox4x32_10(c, k0, k1), rng.philox4x32_10(c, k0, k1))
    problems = np.array([0, 1, 2**31 + 5, 2**40 + 3, 7, 7])
    resamples = np.array([0, 5, 9, 1, 2**32 - 1, 0])
    for seed in (0, 12345, 2**63 + 11):
        for n in (1, 3, 4, 20, 241):
            np.testing.assert_array_equal(_core.testing.bootstrap_counts(seed, problems, resamples, n),
                                          rng.bootstrap_counts(seed, problems, resamples, n))


def test_counts_are_multinomial_resamples():
    n, R = 20, 20_000
    counts = _core.testing.bootstrap_counts(42, np.zeros(R, dtype=np.int64), np.arange(R), n)
    assert counts.shape == (R, n) and counts.dtype == np.int32
    assert np.all(counts.sum(axis=1) == n) and np.all(counts >= 0)
    # Multinomial(n, 1/n): each count has mean 1 and variance 1 - 1/n; P(count = 0) = (1-1/n)^n.
    se = np.sqrt((1 - 1 / n) / (R * n))
    assert abs(counts.mean() - 1) < 1e-12  # exact: every row sums to n
    assert abs(counts.var() - (1 - 1 / n)) < 6 * np.sqrt(2 / (R * n))
    assert abs(np.mean(counts == 0) - (1 - 1 / n) ** n) < 6 * np.sqrt(0.36 * 0.64 / (R * n))
    # Every point is drawn equally often overall.
    per_point = counts.sum(axis=0) / R
    assert np.all(np.abs(per_point - 1) < 6 * np.sqrt(1 - 1 / n) / np.sqrt(R)), (per_point, se)


def test_seed_problem_and_resample_key_the_stream():
    a = _core.testing.bootstrap_counts(1, np.array([3]), np.array([4]), 50)
    assert np.array_equal(a, _core.testing.bootstrap_counts(1, np.array([3]), np.array([4]), 50))
    for other in ((2, 3, 4), (1, 4, 4), (1, 3, 5)):
        b = _core.testing.bootstrap_counts(other[0], np.array([other[1]]), np.array([other[2]]), 50)
        assert not np.array_equal(a, b), other


def test_bad_arguments_name_them():
    with pytest.raises(ValueError, match="ctr"):
        _core.testing.philox4x32_10(np.zeros((2, 3), dtype=np.uint32), 0, 0)
    with pytest.raises(ValueError, match="n: must be >= 1"):
        _core.testing.bootstrap_counts(0, np.array([0]), np.array([0]), 0)
    with pytest.raises(ValueError, match="problems, resamples"):
        _core.testing.bootstrap_counts(0, np.array([0, 1]), np.array([0]), 5)
