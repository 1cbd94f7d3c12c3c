"""Benchmark suite (first part of issue 3's): lawfit against scipy loops across problem sizes.

Cases: ``E + A x^-alpha`` with 5, 20, 100 and 500 points, and Chinchilla's 5-parameter
``E + A N^-alpha + B D^-beta`` with 50 points (N over three decades, 5 to 320 tokens per
parameter); ``--fits`` problems each, 1% noise, every solver starting from the truth perturbed
by up to 10%.  Solvers: lawfit cpu (all threads), and loops of ``scipy.optimize.least_squares``
with ``method="lm"`` and ``"trf"`` and the analytic Jacobian on the first ``--scipy-subset``
problems (rates extrapolated per fit).  Speed: median of ``--repeats`` calls after a warm-up;
accuracy: share of fits within 1e-6 relative cost of the best any solver reached (on the
subset all ran); mean evaluations per fit.  Still to come (issue 3): optimistix and jaxopt,
harder start sets.

Run from the repository root: ``python bench/bench_suite.py``; the report goes into
``--out`` between ``<!-- bench_suite:begin -->`` and ``<!-- bench_suite:end -->``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

import numpy as np

from _common import at_best, machine_info, versions, write_section


def saturating(P, m, rng):
    x = np.geomspace(1e6, 1e10, m)
    truth = np.column_stack([rng.uniform(1.5, 2.5, P), np.exp(rng.uniform(np.log(2e2),
                             np.log(2e3), P)), rng.uniform(0.25, 0.45, P)])
    f = truth[:, :1] + truth[:, 1:2] * x[None, :] ** -truth[:, 2:3]
    xs = np.broadcast_to(x[:, None], (m, 1))

    def jac(p, xx):
        xa = xx[:, 0] ** -p[2]
        return np.column_stack([np.ones_like(xa), xa, -p[1] * xa * np.log(xx[:, 0])])

    def model(p, xx):
        return p[0] + p[1] * xx[:, 0] ** -p[2]
    return "saturating_power_law", xs, f, truth, model, jac


def chinchilla(P, m, rng):
    n = np.geomspace(1e7, 1e10, m)
    xs = np.column_stack([n, n * np.resize([5.0, 20.0, 80.0, 320.0], m)])
    truth = np.column_stack([rng.uniform(1.5, 2.0, P), rng.uniform(300, 500, P),
                             rng.uniform(300, 500, P), rng.uniform(0.3, 0.38, P),
                             rng.uniform(0.25, 0.32, P)])
    f = (truth[:, :1] + truth[:, 1:2] * xs[None, :, 0] ** -truth[:, 3:4]
         + truth[:, 2:3] * xs[None, :, 1] ** -truth[:, 4:5])

    def model(p, xx):
        return p[0] + p[1] * xx[:, 0] ** -p[3] + p[2] * xx[:, 1] ** -p[4]

    def jac(p, xx):
        na, db = xx[:, 0] ** -p[3], xx[:, 1] ** -p[4]
        return np.column_stack([np.ones_like(na), na, db, -p[1] * na * np.log(xx[:, 0]),
                                -p[2] * db * np.log(xx[:, 1])])
    return "chinchilla", xs, f, truth, model, jac


def scipy_loop(xs, y, p0, model, jac, method):
    from scipy.optimize import least_squares

    cost, nfev = np.empty(len(y)), np.empty(len(y))
    t0 = time.perf_counter()
    for i in range(len(y)):
        r = least_squares(lambda p: model(p, xs) - y[i], p0[i], jac=lambda p: jac(p, xs),
                          method=method)
        cost[i], nfev[i] = r.cost, r.nfev
    return cost, nfev, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fits", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--scipy-subset", type=int, default=200)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "RESULTS.md"))
    args = ap.parse_args(argv)

    import lawfit

    cpu, ncpu, load = machine_info()
    v = versions()
    started = datetime.datetime.now().astimezone()
    cases = [(saturating, 5), (saturating, 20), (saturating, 100), (saturating, 500),
             (chinchilla, 50)]
    rows = []
    for make, m in cases:
        rng = np.random.default_rng(m)
        name, xs, f, truth, model, jac = make(args.fits, m, rng)
        y = f * (1 + 0.01 * rng.standard_normal(f.shape))
        p0 = truth * (1 + 0.1 * rng.uniform(-1, 1, truth.shape))
        x_in = xs[:, 0] if xs.shape[1] == 1 else xs
        lawfit.fit(name, x_in, y[:100], p0=p0[:100])  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            r = lawfit.fit(name, x_in, y, p0=p0)
            times.append(time.perf_counter() - t0)
        rate = args.fits / np.median(times)
        n = min(args.scipy_subset, args.fits)
        lm_cost, lm_nfev, lm_t = scipy_loop(xs, y[:n], p0[:n], model, jac, "lm")
        trf_cost, trf_nfev, trf_t = scipy_loop(xs, y[:n], p0[:n], model, jac, "trf")
        best, _ = at_best({"lawfit": r.cost[:n], "lm": lm_cost, "trf": trf_cost}, 1e-6)
        lm_rate, trf_rate = n / lm_t, n / trf_t
        rows.append(f"| {name}, {m} points | {rate:,.0f} | {lm_rate:,.0f} | {trf_rate:,.0f} | "
                    f"{rate / lm_rate:,.0f}x | {best['lawfit'].mean():.1%} / "
                    f"{best['lm'].mean():.1%} / {best['trf'].mean():.1%} | "
                    f"{r.nfev.mean():.1f} / {lm_nfev.mean():.1f} / {trf_nfev.mean():.1f} |")
        print(rows[-1], flush=True)
    report = "\n".join([
        f"## Suite: lawfit cpu against scipy loops, {args.fits:,} fits per case",
        "",
        f"{cpu}, {ncpu} threads; load {load} at start; lawfit {v['lawfit']} ({v['commit']}); "
        f"NumPy {v['numpy']}, SciPy {v['scipy']}; {started:%Y-%m-%d %H:%M %Z}. Starts: truth "
        f"+-10%. scipy loops on the first {args.scipy_subset} problems, rates per fit.",
        f"Command: `python {' '.join(['bench/bench_suite.py', *(argv or sys.argv[1:])])}`",
        "",
        "| case | lawfit fits/s | scipy lm fits/s | scipy trf fits/s | lawfit / lm | at best "
        "(lawfit / lm / trf) | mean nfev (lawfit / lm / trf) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])
    print(report)
    write_section(args.out, "bench_suite", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
