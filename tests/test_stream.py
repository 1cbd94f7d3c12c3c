"""The CUDA backend's streamed solve (cpp/include/lawfit/stream.h), on the CPU.

A large batch goes to the GPU in chunks: each packed into a slot's pinned staging block,
copied in, solved and copied out on the slot's CUDA stream while the host packs the next
chunk and unpacks the one before.  cuda/kernels.cu runs that pipeline with CUDA's copies and
launches; lawfit._core.testing.stream_fit runs the same pipeline (the same chunking, packing,
layouts and unpacking) with the CPU's solve in the device's place, run as late as the device
could run it, refusing any step out of order.  Here it must give the one-shot solve's results
bit for bit, for any chunk sizes and slot count, and overlap the host's packing with the
device's work."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lawfit
from lawfit import _core

from batches import model_batch
from corecall import _call_args


def ragged(name, P, seed, sigma=False, weights=False):
    """A batch of P problems of n_params + 1 to 24 points (the model's inputs as the core takes them)
    as fit()'s flat arrays: x, t, sigma, weights, offsets, p0, lower, upper."""
    rng = np.random.default_rng(seed)
    x, y, truth, p0 = model_batch(name, n_problems=P, n_points=24, seed=seed)
    model = lawfit.models.get(name)
    sizes = rng.integers(model.n_params + 1, 25, P)
    xs = np.concatenate([x[:n] for n in sizes])
    ts = np.concatenate([y[i, :n] for i, n in enumerate(sizes)])
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    u = np.log(xs) if model.log_inputs else xs
    n = model.n_params
    lower = np.where(rng.random((P, n)) < 0.3, p0 - np.abs(p0), -np.inf)
    upper = np.full((P, n), np.inf)
    s = rng.uniform(0.5, 2.0, ts.size) if sigma else None
    w = rng.integers(0, 3, ts.size).astype(float) if weights else None
    return u, ts, s, w, offsets, p0, lower, upper


def one_shot_and_streamed(name, arrays, chunk_units, chunk_points, slots, **kw):
    data, box, options, units, call = _call_args(*arrays, dict(kw))
    return_jtj = call.get("return_jtj", False)
    want = _core.fit(name, data, box, options, units, n_threads=1, return_jtj=return_jtj)
    got, events = _core.testing.stream_fit(name, data, box, options, chunk_units,
                                           chunk_points, slots, return_jtj)
    return want, got, events


def assert_same(want, got):
    assert set(want) == set(got)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        assert got[key].dtype == want[key].dtype, key


@pytest.mark.parametrize("name", ["saturating_power_law", "chinchilla"])
@pytest.mark.parametrize("chunk_units, chunk_points, slots",
                         [(1, 10**9, 1), (7, 10**9, 2), (16, 100, 3), (5, 30, 2),
                          (10**6, 10**9, 3), (3, 1, 4)])
def test_the_streamed_solve_is_the_one_shot_solve_bit_for_bit(name, chunk_units, chunk_points,
                                                              slots):
    arrays = ragged(name, 45, seed=chunk_units + slots, sigma=True, weights=True)
    want, got, events = one_shot_and_streamed(name, arrays, chunk_units, chunk_points, slots,
                                              return_jtj=True, loss="huber", f_scale=0.3)
    assert_same(want, got)
    assert (got["status"] > 0).mean() > 0.6  # (a batch that was solved, not failed alike)


def test_every_chunk_goes_through_every_step_once_and_the_host_packs_ahead():
    arrays = ragged("saturating_power_law", 40, seed=2)
    want, got, events = one_shot_and_streamed("saturating_power_law", arrays, 6, 10**9, 3)
    assert_same(want, got)
    n_chunks = 7  # 40 units, 6 a chunk
    for step in ("pack", "submit", "finish", "unpack"):
        done = [(c, s) for e, c, s in events if e == step]
        assert done == [(c, c % 3) for c in range(n_chunks)], step
    at = {(e, c): k for k, (e, c, s) in enumerate(events)}
    for c in range(n_chunks):
        assert at["pack", c] < at["submit", c] < at["finish", c] < at["unpack", c]
        if c + 1 < n_chunks:  # the next chunk is packed and submitted before this one ends
            assert at["submit", c + 1] < at["finish", c]
        if c + 3 < n_chunks:  # a slot is packed again only after its chunk was unpacked
            assert at["unpack", c] < at["pack", c + 3]


def test_a_unit_with_more_points_than_a_chunk_holds_is_a_chunk_of_its_own():
    arrays = ragged("power_law", 12, seed=5, sigma=True)
    sizes = np.diff(arrays[4])
    want, got, events = one_shot_and_streamed("power_law", arrays, 4, int(sizes.min()), 2)
    assert_same(want, got)
    assert sum(e == "pack" for e, c, s in events) == 12


def test_log_residuals_and_an_empty_batch_stream_too():
    x, t, s, w, offsets, p0, lower, upper = ragged("saturating_power_law", 9, seed=1)
    arrays = (x, np.log(t), s, w, offsets, p0, lower, upper)
    want, got, _ = one_shot_and_streamed("saturating_power_law", arrays, 2, 10**9, 2,
                                         log_residuals=True)
    assert_same(want, got)
    empty = (x[:0], t[:0], None, None, np.zeros(1, np.int64), p0[:0], lower[:0], upper[:0])
    want, got, events = one_shot_and_streamed("saturating_power_law", empty, 2, 10**9, 2)
    assert_same(want, got)
    assert events == []


def test_a_batch_that_does_not_stream_is_refused():
    x, t, s, w, offsets, p0, lower, upper = ragged("saturating_power_law", 4, seed=1)
    data, box, options, units, call = _call_args(x, t, s, w, offsets, p0, lower[:1],
                                                 upper[:1], dict(bounds_shared=True))
    with pytest.raises(ValueError, match="does not stream"):
        _core.testing.stream_fit("saturating_power_law", data, box, options, 2, 100, 2)


@settings(max_examples=25, deadline=None)
@given(P=st.integers(1, 30), chunk_units=st.integers(1, 12), chunk_points=st.integers(1, 200),
       slots=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_any_chunking_gives_the_same_bits(P, chunk_units, chunk_points, slots, seed):
    arrays = ragged("saturating_power_law", P, seed=seed, weights=seed % 2 == 0)
    want, got, events = one_shot_and_streamed("saturating_power_law", arrays, chunk_units,
                                              chunk_points, slots)
    assert_same(want, got)


def test_empty_and_bad_problems_keep_their_statuses_in_any_chunk():
    """A problem without points and one with a NaN point get their statuses, streamed as
    in one copy, wherever the chunks fall."""
    x, t, s, w, offsets, p0, lower, upper = ragged("saturating_power_law", 20, seed=8)
    sizes = np.diff(offsets)
    keep = np.ones(t.size, bool)
    keep[offsets[3]:offsets[4]] = False  # problem 3: no points
    t = t.copy()
    t[offsets[11] + 1] = np.nan  # problem 11: a NaN point
    sizes[3] = 0
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    arrays = (x[keep], t[keep], None, None, offsets, p0, lower, upper)
    for chunk_units, chunk_points, slots in ((1, 10**9, 2), (4, 50, 3), (7, 1, 1)):
        want, got, _ = one_shot_and_streamed("saturating_power_law", arrays, chunk_units,
                                             chunk_points, slots)
        assert_same(want, got)
        assert got["status"][3] < 0 and got["status"][11] < 0 and (got["status"] > 0).sum() > 10
