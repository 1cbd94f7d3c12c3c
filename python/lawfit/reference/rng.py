"""Philox4x32-10 and the bootstrap stream, in NumPy: the oracle for cpp/include/lawfit/rng.h.

Written from the generator's definition (Salmon et al., SC 2011) and the stream layout in
rng.h: key = the 64-bit seed; counter = (problem low 32 bits, problem high 32 bits, resample,
block); draw j of a resample is word j % 4 of block j // 4, and an index in [0, n) is
(word * n) >> 32.  Vectorised over any number of counters.
"""
from __future__ import annotations

import numpy as np

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK = np.uint64(0xFFFFFFFF)


def philox4x32_10(ctr, k0: int, k1: int) -> np.ndarray:
    """Philox4x32-10 of each row of ``ctr`` (n, 4) under the key (k0, k1); uint32 (n, 4)."""
    c = np.asarray(ctr, dtype=np.uint64).reshape(-1, 4) & MASK
    c0, c1, c2, c3 = (c[:, i].copy() for i in range(4))
    k0 = np.uint64(k0 & 0xFFFFFFFF)
    k1 = np.uint64(k1 & 0xFFFFFFFF)
    for _ in range(10):
        p0 = M0 * c0  # exact: both factors are below 2^32
        p1 = M1 * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & MASK
        hi1, lo1 = p1 >> np.uint64(32), p1 & MASK
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + np.uint64(W0)) & MASK
        k1 = (k1 + np.uint64(W1)) & MASK
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32)


def bootstrap_indices(seed: int, problems, resamples, n: int) -> np.ndarray:
    """The n draws (indices in [0, n)) of each (problems[i], resamples[i]): int64 (R, n)."""
    problems = np.asarray(problems, dtype=np.int64).astype(np.uint64)
    resamples = np.asarray(resamples, dtype=np.uint64)
    R = len(problems)
    blocks = (n + 3) // 4
    ctr = np.empty((R, blocks, 4), dtype=np.uint64)
    ctr[..., 0] = (problems & MASK)[:, None]
    ctr[..., 1] = (problems >> np.uint64(32))[:, None]
    ctr[..., 2] = resamples[:, None]
    ctr[..., 3] = np.arange(blocks, dtype=np.uint64)[None, :]
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    words = philox4x32_10(ctr.reshape(-1, 4), seed & 0xFFFFFFFF, seed >> 32)
    words = words.reshape(R, blocks * 4)[:, :n].astype(np.uint64)
    return ((words * np.uint64(n)) >> np.uint64(32)).astype(np.int64)


def bootstrap_counts(seed: int, problems, resamples, n: int) -> np.ndarray:
    """The pairs bootstrap's counts over n units for each (problems[i], resamples[i]):
    int32 (R, n), each row a multinomial(n, 1/n) draw summing to n."""
    index = bootstrap_indices(seed, problems, resamples, n)
    R = len(index)
    counts = np.zeros((R, n), dtype=np.int32)
    np.add.at(counts, (np.repeat(np.arange(R), n), index.reshape(-1).astype(np.int64)), 1)
    return counts
