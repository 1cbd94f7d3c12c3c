"""Benchmark: memory and time of one very large batch, fitted in chunks.

``--problems`` (10 million) fits of ``E + A x^-alpha``, 20 points each, passed as one padded
array with a shared x grid and per-problem starts.  The peak of memory allocated during
``lawfit.fit`` beyond its inputs (tracemalloc, which sees NumPy's allocations; the C++ core
allocates nothing per problem) is reported with and without the outputs; with
``--compare`` the batch is also fitted in one chunk and the two results compared bit for bit.

Run from the repository root: ``python bench/bench_memory.py``; the report goes into
``--out`` between ``<!-- bench_memory:begin -->`` and ``<!-- bench_memory:end -->``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import tracemalloc

import numpy as np

from _common import machine_info, versions, write_section

MODEL = "saturating_power_law"


def make_batch(P, m, seed=0, block=1_000_000):
    """y (P, m) built block by block, so that making it needs little beyond y itself."""
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e6, 1e10, m)
    y = np.empty((P, m))
    p0 = np.empty((P, 3))
    for a in range(0, P, block):
        b = min(a + block, P)
        E = rng.uniform(1.5, 2.5, b - a)
        A = np.exp(rng.uniform(np.log(2e2), np.log(2e3), b - a))
        alpha = rng.uniform(0.25, 0.45, b - a)
        y[a:b] = E[:, None] + A[:, None] * x ** -alpha[:, None]
        y[a:b] *= 1 + 0.01 * rng.standard_normal((b - a, m))
        p0[a:b] = np.column_stack([E, A, alpha]) * (1 + 0.1 * rng.uniform(-1, 1, (b - a, 3)))
    return x, y, p0


def output_bytes(r) -> int:
    return sum(a.nbytes for a in (r.x, r.cost, r.status, r.nfev, r.njev, r.nit, r.optimality,
                                  r.active_mask, r.n_points, r.offsets))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=10_000_000)
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=1_000_000)
    ap.add_argument("--compare", action="store_true", help="also fit unchunked and compare")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "RESULTS.md"))
    args = ap.parse_args(argv)

    import lawfit

    cpu, ncpu, load = machine_info()
    v = versions()
    started = datetime.datetime.now().astimezone()
    x, y, p0 = make_batch(args.problems, args.points)
    inputs = x.nbytes + y.nbytes + p0.nbytes
    ticks = []
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    r = lawfit.fit(MODEL, x, y, p0=p0, chunk_size=args.chunk,
                   progress=lambda d, t: ticks.append((d, time.perf_counter() - t0)))
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    outputs = output_bytes(r)
    lines = [
        f"## Memory: {args.problems:,} fits in chunks of {args.chunk:,}",
        "",
        f"`E + A x^-alpha`, {args.points} points each, one padded array with a shared x grid "
        f"(inputs {inputs / 2**30:.2f} GiB), CPU backend, {ncpu} threads on {cpu}; load {load} "
        f"at start; lawfit {v['lawfit']} ({v['commit']}); {started:%Y-%m-%d %H:%M %Z}.",
        f"Command: `python {' '.join(['bench/bench_memory.py', *(argv or sys.argv[1:])])}`",
        "",
        f"- time: {dt:.1f} s = {args.problems / dt:,.0f} fits/s, including validating every "
        f"chunk first; progress called {len(ticks)} times",
        f"- peak memory allocated during the call beyond the inputs: {peak / 2**30:.2f} GiB, of "
        f"which the outputs are {outputs / 2**30:.2f} GiB: **{(peak - outputs) / 2**30:.2f} GiB "
        "beyond inputs and outputs** (target: under 2 GB)",
        f"- status: {r.status_counts()}",
    ]
    if args.compare:
        t0 = time.perf_counter()
        whole = lawfit.fit(MODEL, x, y, p0=p0, chunk_size=args.problems)
        same = all(np.array_equal(getattr(r, f), getattr(whole, f))
                   for f in ("x", "cost", "status", "nfev", "active_mask"))
        lines.append(f"- one unchunked call: {time.perf_counter() - t0:.1f} s; results bitwise "
                     f"equal to the chunked ones: **{same}**")
    report = "\n".join(lines)
    print(report)
    write_section(args.out, "bench_memory", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
