"""Benchmark (issue 5): the bootstrap at scale, lawfit against plain fitting and a scipy loop.

Problems: ``--laws`` (1,000) seeded synthetic ``E + A x^-alpha`` laws with ``--points`` (20)
points and 1% noise (``lawfit._synthetic.saturating_power_laws``), ``--resamples`` (1,000)
pairs-bootstrap resamples each: a million fits by default.

Solvers, in one run:

* ``lawfit.bootstrap(..., n_resamples=R, seed=0)``: the full-data fits, then every resample
  drawn inside the solve and fitted from the full-data optimum (the whole call);
* plain fitting of the same resamples: ``lawfit.fit`` on each law's data repeated R times
  with each resample's weights materialised (``lawfit.reference.rng``) and passed in, from
  the same starts (what the bootstrap's throughput is compared with);
* a loop of ``scipy.optimize.least_squares(method="lm")`` (analytic Jacobian) over
  ``--scipy-subset`` resamples, each materialised with NumPy (points drawn with replacement),
  from the full-data optimum; per-fit extrapolation.
* with the real data (``--data``, skipped when absent): 4,000 resamples of the Chinchilla
  replication's fit (Huber on log residuals, ``chinchilla_log``), warm-started.

Timing: ``time.perf_counter`` around whole calls, median [min-max] of ``--repeats`` after a
warm-up.  Targets (reported, not asserted): a million fits in under 0.5 s, the bootstrap at
>= 80% of plain fitting's throughput, the 4,000 Chinchilla resamples well under a second.

Run from the repository root: ``python bench/bench_bootstrap.py``; the report goes into
``--out`` between ``<!-- bench_bootstrap:begin -->`` and ``<!-- bench_bootstrap:end -->``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time

import numpy as np

from _common import machine_info, publish, versions


def timed(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, times


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--laws", type=int, default=1000)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--scipy-subset", type=int, default=300)
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data",
                                                   "chinchilla_epoch.csv"))
    ap.add_argument("--out", default=os.path.join(here, "RESULTS.md"))
    args = ap.parse_args(argv)

    import lawfit
    from scipy.optimize import least_squares

    from lawfit._synthetic import saturating_jac, saturating_power_laws

    cpu, ncpu, load_start = machine_info()
    v = versions()
    started = datetime.datetime.now().astimezone()
    command = "python " + shlex.join(sys.argv if argv is None else
                                     ["bench/bench_bootstrap.py", *argv])
    P, R, m = args.laws, args.resamples, args.points
    x, y, truth = saturating_power_laws(P, m, seed=0)
    fits = P * R

    boot, t_boot = timed(lambda: lawfit.bootstrap("saturating_power_law", x, y, p0=truth,
                                                  n_resamples=R, seed=0), args.repeats)
    print(f"bootstrap: {np.median(t_boot):.3f} s", flush=True)
    # The same fits as plain problems: each resample's weights materialised (by the NumPy
    # reference of the stream) and passed as weights, from the same starts.
    from lawfit.reference.rng import bootstrap_counts

    y_rep = np.repeat(y, R, axis=0)
    p_rep = np.repeat(boot.fit.x, R, axis=0)
    w_rep = bootstrap_counts(0, np.repeat(np.arange(P), R), np.tile(np.arange(R), P),
                             m).astype(float)
    plain, t_plain = timed(lambda: lawfit.fit("saturating_power_law", x, y_rep, p0=p_rep,
                                              weights=w_rep), args.repeats)
    same = np.array_equal(plain.x[plain.success], boot.samples.reshape(-1, 3)[plain.success])
    print(f"plain: {np.median(t_plain):.3f} s", flush=True)

    # scipy: resamples materialised with NumPy, fitted one by one from the full-data optimum.
    rng = np.random.default_rng(1)
    n_sp = min(args.scipy_subset, fits)
    laws = rng.integers(0, P, n_sp)
    idx = rng.integers(0, m, (n_sp, m))
    t0 = time.perf_counter()
    sp_ok = 0
    for i, law in enumerate(laws):
        xi, yi = x[idx[i]], y[law, idx[i]]
        r = least_squares(lambda p: p[0] + p[1] * xi ** -p[2] - yi, boot.fit.x[law],
                          jac=lambda p: saturating_jac(p, xi), method="lm")
        sp_ok += r.status > 0
    t_sp = (time.perf_counter() - t0) / n_sp
    print(f"scipy: {1 / t_sp:,.0f} fits/s", flush=True)

    chin = None
    if os.path.exists(args.data):
        import pandas as pd

        df = pd.read_csv(args.data)
        N = df["Model Size"].to_numpy()
        D = df["Training FLOP"].to_numpy() / (6 * N)
        L = df["loss"].to_numpy()
        keep = np.argsort(L, kind="stable")[:-5]
        X = np.column_stack([N[keep], D[keep]])
        axis = np.linspace(0, 1, 6)
        cb, t_chin = timed(lambda: lawfit.bootstrap(
            "chinchilla_log", X, L[keep], p0=lawfit.grid(alpha=axis, beta=axis, profile=True),
            n_resamples=4000, seed=0, residuals="log", loss="huber", f_scale=1e-3),
            args.repeats)
        chin = (cb, t_chin)
        print(f"chinchilla: {np.median(t_chin):.3f} s", flush=True)
    with open("/proc/loadavg") as fh:
        load_end = " ".join(fh.read().split()[:3])

    def rate(ts, n):
        return n / float(np.median(ts))

    def span(ts):
        return f"{np.median(ts):.3f} [{min(ts):.3f}–{max(ts):.3f}]"

    rb, rp = rate(t_boot, fits), rate(t_plain, fits)
    L_ = ["## Bootstrap: a million resample fits, lawfit against plain fitting and scipy\n"]
    L_.append(f"{cpu}, {ncpu} CPUs; load {load_start} at start, {load_end} at end; "
              f"{started:%Y-%m-%d %H:%M %Z}. Python {v['python']}, NumPy {v['numpy']}, SciPy "
              f"{v['scipy']}, lawfit {v['lawfit']} (git {v['commit']}; compiled core "
              f"{v['core']}).")
    L_.append(f"Command: `{command}`\n")
    L_.append(f"{P:,} synthetic `E + A x^-alpha` laws, {m} points, 1% noise; {R:,} pairs "
              f"resamples each ({fits:,} fits). Seconds: median [min–max] of {args.repeats} "
              f"whole calls after a warm-up; all threads.\n")
    L_.append("| solver | fits | seconds | fits/s | vs scipy loop | converged |")
    L_.append("|---|---:|---:|---:|---:|---:|")
    L_.append(f"| `lawfit.bootstrap` (resamples drawn in the solve) | {fits:,} | {span(t_boot)} | "
              f"{rb:,.0f} | {rb * t_sp:,.0f}x | {boot.share_converged.mean():.4%} |")
    L_.append(f"| `lawfit.fit` on the same {fits:,} resamples, weights passed in | {fits:,} | "
              f"{span(t_plain)} | {rp:,.0f} | {rp * t_sp:,.0f}x | {plain.success.mean():.4%} |")
    L_.append(f"| scipy `least_squares(method=\"lm\")` loop over NumPy-materialised resamples | "
              f"{n_sp:,} (subset) | {t_sp * fits:,.1f} (extrapolated) | {1 / t_sp:,.0f} | 1x | "
              f"{sp_ok / n_sp:.2%} |")
    L_.append("")
    L_.append(f"The in-solve resamples and the passed-in weights give bitwise the same parameters: "
              f"{same}.\n")
    if chin is not None:
        cb, t_chin = chin
        s = cb.samples[0][cb.converged[0]]
        ex = s[:, 4] / (s[:, 3] + s[:, 4])
        lo, hi = cb.interval(0.8)
        L_.append(f"Chinchilla (240 points, the replication's objective; full-data fit from a "
                  f"6 x 6 profile grid, then 4,000 resamples from its optimum): "
                  f"{span(t_chin)} s; {cb.n_converged[0]:,} converged; alpha "
                  f"{cb.fit.x[0, 3]:.4f} (80%: {lo[0, 3]:.4f}–{hi[0, 3]:.4f}), beta "
                  f"{cb.fit.x[0, 4]:.4f} ({lo[0, 4]:.4f}–{hi[0, 4]:.4f}), the compute-optimal "
                  f"exponent beta / (alpha + beta) 80%: {np.quantile(ex, 0.1):.3f}–"
                  f"{np.quantile(ex, 0.9):.3f}.\n")
    L_.append("Targets (issue 5), from the numbers above:\n")
    tb = float(np.median(t_boot))
    L_.append(f"- {fits:,} bootstrap fits in {tb:.3f} s (target < 0.5 s for 1,000 x 1,000 x 20) "
              f"-> **{'met' if tb < 0.5 and fits >= 1_000_000 else 'not met'}**")
    L_.append(f"- bootstrap throughput {rb / rp:.0%} of plain fitting's (target >= 80%) -> "
              f"**{'met' if rb >= 0.8 * rp else 'not met'}**")
    if chin is not None:
        tc = float(np.median(chin[1]))
        L_.append(f"- 4,000 Chinchilla resamples in {tc:.3f} s (target: well under a second) -> "
                  f"**{'met' if tc < 0.5 else 'not met'}**")
    publish(L_, args.out, "bench_bootstrap")
    return 0


if __name__ == "__main__":
    sys.exit(main())
