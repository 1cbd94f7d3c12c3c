"""A study beyond one process: fits of many laws on a Dask LocalCluster beside the same call
in one process, and two processes fitting at once beside one after the other.

    python bench/bench_dask.py [--laws 1000000] [--workers 2] [--partitions 8]
                               [--process-problems 200000] [--out bench/RESULTS.md]

Data: seeded ``E + A x^-alpha`` laws (lawfit._synthetic), 20 points each, as a long pandas
DataFrame (one row per point, a ``law`` group column), fitted from one start for all; the
cluster reads the same rows from Parquet files (one per partition), as a study's workers
would read their data.  The
cluster's result is checked bitwise against the single-process call on the same frame.  The
second part starts two Python processes that each fit ``--process-problems`` laws with the
default thread count, at once and then one after the other: with the helper-pinning policy
(cpp/src/cpu_driver.h, pins_helpers) the pair at once should take no longer than the two in
turn (no CPU is given two pinned helpers).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_info, publish, versions  # noqa: E402

CHILD = """
import sys, time
import numpy as np
import lawfit
from lawfit._synthetic import saturating_power_laws
x, y, truth = saturating_power_laws({P}, 20, 0.01, seed=int(sys.argv[1]))
lawfit.fit("saturating_power_law", x, y[:100], p0=truth[:100] * 1.05)
t0 = time.perf_counter()
r = lawfit.fit("saturating_power_law", x, y, p0=truth * 1.05)
print(time.perf_counter() - t0, r.success.mean())
"""


def two_processes(P: int):
    """(seconds for two processes at once, seconds for the two in turn, success shares)."""
    code = CHILD.format(P=P)

    def run(seeds):
        procs = [subprocess.Popen([sys.executable, "-c", code, str(s)], stdout=subprocess.PIPE,
                                  text=True) for s in seeds]
        return [p.communicate()[0].split() for p in procs]

    t0 = time.perf_counter()
    both = run([1, 2])
    together = time.perf_counter() - t0
    t0 = time.perf_counter()
    turn = run([1]) + run([2])
    in_turn = time.perf_counter() - t0
    inner_together = max(float(o[0]) for o in both)
    inner_turn = sum(float(o[0]) for o in turn)
    return together, in_turn, inner_together, inner_turn


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--laws", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--process-problems", type=int, default=200_000)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "RESULTS.md"))
    args = ap.parse_args(argv)

    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client, LocalCluster

    import lawfit
    from lawfit._synthetic import saturating_power_laws

    cpu, ncpu, load = machine_info()
    v = versions()
    G, m = args.laws, 20
    x, y, truth = saturating_power_laws(G, m, 0.01, seed=0)
    df = pd.DataFrame({"law": np.repeat(np.arange(G), m), "x": np.tile(x, G),
                       "loss": y.reshape(-1)})
    kw = dict(x="x", y="loss", groups="law", p0=np.array([2.0, 600.0, 0.35]))
    t0 = time.perf_counter()
    one = lawfit.fit("saturating_power_law", data=df, **kw)
    t_one = time.perf_counter() - t0
    # As a study's data would be: files the workers read themselves (Parquet, one per
    # partition), not a frame shipped from the client through the scheduler.
    tmp = tempfile.mkdtemp(prefix="lawfit-bench-dask-")
    dd.from_pandas(df, npartitions=args.partitions).to_parquet(tmp)
    ddf = dd.read_parquet(tmp)
    with LocalCluster(n_workers=args.workers, threads_per_worker=max(1, ncpu // args.workers),
                      processes=True, dashboard_address=None) as cluster, Client(cluster):
        lawfit.fit("saturating_power_law", data=dd.from_pandas(df.iloc[:m * 100],
                                                             npartitions=2), **kw)  # warm
        t0 = time.perf_counter()
        many = lawfit.fit("saturating_power_law", data=ddf, **kw)
        t_cluster = time.perf_counter() - t0
    shutil.rmtree(tmp, ignore_errors=True)
    same = all(np.array_equal(getattr(one, k), getattr(many, k), equal_nan=True)
               for k in ("x", "cost", "status", "nfev"))
    together, in_turn, inner_together, inner_turn = two_processes(args.process_problems)
    lines = ["## Dask: a study on a local cluster; two processes on one host",
             "",
             f"CPU: {cpu} ({ncpu} logical CPUs; load {load} at start). lawfit {v['lawfit']} "
             f"({v['commit']}), numpy {v['numpy']}. Command: `python bench/bench_dask.py "
             f"--laws {G} --workers {args.workers} --partitions {args.partitions} "
             f"--process-problems {args.process_problems}`.",
             "",
             f"{G:,} laws `E + A x^-alpha` x {m} points as a long DataFrame (group column "
             "`law`), one start for all:",
             "",
             "| run | seconds | laws/s |",
             "|---|---:|---:|",
             f"| one process, pandas frame | {t_one:.2f} | {G / t_one:,.0f} |",
             f"| LocalCluster, {args.workers} worker processes, {args.partitions} Parquet "
             f"partitions read by the workers | {t_cluster:.2f} | {G / t_cluster:,.0f} |",
             "",
             f"The cluster's result equals the single-process call's bit for bit: "
             f"**{'yes' if same else 'NO'}** (x, cost, status, nfev); "
             f"{one.success.mean():.2%} converged.",
             "",
             f"Two processes each fitting {args.process_problems:,} laws with the default "
             f"thread count: at once {together:.2f} s wall ({inner_together:.2f} s the slower "
             f"fit), one after the other {in_turn:.2f} s ({inner_turn:.2f} s of fitting): "
             f"at once / in turn = {inner_together / inner_turn:.2f} (<= 1: no CPU "
             "oversubscribed by pinning)."]
    publish(lines, args.out, "bench_dask")
    return 0


if __name__ == "__main__":
    sys.exit(main())
