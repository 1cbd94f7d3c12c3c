"""Benchmark: lawfit against a scipy loop on a batch of saturating power laws.

The problem is ``--problems`` seeded synthetic fits of ``E + A x^-alpha`` (``--points`` points
each, ``--noise`` multiplicative noise, ``--seed``; ``lawfit._synthetic.saturating_power_laws``).
Every solver starts from the same starts: the model's data-driven guess ``pack(...).p0``,
computed once, outside all timings.

Solvers, in one run:

* ``lawfit.fit(..., backend="cpu", n_threads=k)`` for each ``k`` of ``--threads`` (1 and 2);
* ``lawfit.fit(..., backend="numpy")``, the independent NumPy reference, on the first
  ``--numpy-subset`` problems (all by default), speed quoted per fit;
* ``scipy.optimize.least_squares(method="lm")`` with the analytic Jacobian, one problem at a
  time, on the first ``--scipy-subset`` problems, speed quoted per fit (the baseline);
* ``scipy.optimize.curve_fit(method="lm")`` with the same Jacobian, same subset, for reference.

Timing: ``time.perf_counter`` around each whole call (a lawfit call includes packing the
arrays; the scipy loops include Python's per-problem overhead, which is the point).  One
warm-up call of each solver first; the lawfit solvers are then timed ``--repeats`` times in
round-robin order (so drift on a shared machine hits them alike), the scipy loops
``--scipy-repeats`` times.  Figures are medians with the min and max.

Accuracy: on the problems every solver ran, the best (lowest) cost any solver found is the
reference; a fit is "at the best optimum" when its cost is within ``--rtol`` (1e-6) relative
of that best.  The same is done over all problems among the lawfit solvers alone.

Run from the repository root: ``python bench/bench_fit.py``.  The report is printed and
written into ``--out`` between ``<!-- bench_fit:begin -->`` and ``<!-- bench_fit:end -->``;
anything else in that file is kept.  Not imported by the tests.
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time
import warnings
from collections import Counter

import numpy as np

from _common import at_best, machine_info, publish, versions

MODEL = "saturating_power_law"
TARGET_SPEEDUP = 1000.0  # issue 3: >= 1,000x the scipy lm loop on 2 threads
TARGET_SHARE = 0.999


# --------------------------------------------------------------------------- solvers

def lawfit_call(x, y, p0, backend, n_threads=None):
    import lawfit

    t0 = time.perf_counter()
    r = lawfit.fit(MODEL, x, y, p0=p0, backend=backend, n_threads=n_threads)
    return r, time.perf_counter() - t0


def scipy_lm_loop(x, y, p0):
    """``lawfit._synthetic.scipy_loop(method="lm")``, also keeping each fit's nfev."""
    from scipy.optimize import least_squares

    from lawfit._synthetic import saturating_jac

    P = y.shape[0]
    params, cost = np.empty((P, 3)), np.empty(P)
    status, nfev = np.empty(P, dtype=int), np.empty(P, dtype=int)
    t0 = time.perf_counter()
    for i in range(P):
        yi = y[i]
        res = least_squares(lambda p: p[0] + p[1] * x ** -p[2] - yi, p0[i],
                            jac=lambda p: saturating_jac(p, x), method="lm")
        params[i], cost[i], status[i], nfev[i] = res.x, res.cost, res.status, res.nfev
    dt = time.perf_counter() - t0
    return dict(x=params, cost=cost, status=status, nfev=nfev), dt


def curve_fit_loop(x, y, p0):
    """``scipy.optimize.curve_fit(method="lm")`` per problem with the analytic Jacobian.

    curve_fit raises when MINPACK reports no convergence; such a fit counts as a failure
    (status = MINPACK's ier, cost = inf).  Its costs are computed after the timed loop.
    """
    from scipy.optimize import OptimizeWarning, curve_fit

    from lawfit._synthetic import saturating_jac

    def f(xx, E, A, alpha):
        return E + A * xx ** -alpha

    def jac(xx, E, A, alpha):
        return saturating_jac((E, A, alpha), xx)

    P = y.shape[0]
    params = np.full((P, 3), np.nan)
    status, nfev = np.zeros(P, dtype=int), np.zeros(P, dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        t0 = time.perf_counter()
        for i in range(P):
            try:
                popt, _, info, _, ier = curve_fit(f, x, y[i], p0=p0[i], jac=jac, method="lm",
                                                  full_output=True)
            except RuntimeError:
                status[i] = 5  # MINPACK's ier 5 (max nfev) or worse
                continue
            params[i], status[i], nfev[i] = popt, ier, info["nfev"]
        dt = time.perf_counter() - t0
    with np.errstate(all="ignore"):
        r = params[:, :1] + params[:, 1:2] * x[None, :] ** -params[:, 2:3] - y
        cost = 0.5 * np.sum(r * r, axis=1)
    cost[~np.isfinite(cost)] = np.inf
    return dict(x=params, cost=cost, status=status, nfev=nfev), dt


# --------------------------------------------------------------------------- environment

def status_text(status, scipy_ier=False):
    from lawfit._status import Status

    counts = sorted(Counter(np.asarray(status).tolist()).items(), key=lambda kv: -kv[1])
    if scipy_ier:
        return ", ".join(f"ier={k}: {v}" for k, v in counts)
    out = []
    for k, v in counts:
        try:
            name = Status(int(k)).name
        except ValueError:
            name = str(k)
        out.append(f"{name}: {v}")
    return ", ".join(out)


# --------------------------------------------------------------------------- report

def fmt_rate(r):
    return f"{r:,.0f}" if r >= 100 else f"{r:,.1f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats of each lawfit solver")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                    help="n_threads values for the cpu backend")
    ap.add_argument("--numpy-subset", type=int, default=None,
                    help="problems for the numpy reference (default: all)")
    ap.add_argument("--scipy-subset", type=int, default=300)
    ap.add_argument("--scipy-repeats", type=int, default=3)
    ap.add_argument("--rtol", type=float, default=1e-6,
                    help="relative cost tolerance for 'at the best optimum'")
    ap.add_argument("--list", type=int, default=20, help="disagreeing problems to list")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "RESULTS.md"))
    args = ap.parse_args(argv)

    import lawfit
    from lawfit._packing import pack
    from lawfit._synthetic import saturating_power_laws
    from lawfit.models import get

    cpu, ncpu, load_start = machine_info()
    v = versions()  # now: the compiled core this process loads, the tree it was run from
    started = datetime.datetime.now().astimezone()
    command = "python " + shlex.join(sys.argv if argv is None else ["bench/bench_fit.py", *argv])
    P, m = args.problems, args.points
    n_np = P if args.numpy_subset is None else min(args.numpy_subset, P)
    n_sp = min(args.scipy_subset, P)
    if args.repeats < 1 or args.scipy_repeats < 1 or n_sp < 1:
        ap.error("--repeats, --scipy-repeats and --scipy-subset must be >= 1")

    x, y, truth = saturating_power_laws(P, m, args.noise, args.seed)
    p0 = pack(get(MODEL), x, y).p0  # the data-driven starts, once, untimed
    print(f"bench_fit: {P:,} x {m}-point {MODEL} fits, {args.noise:g} noise, seed {args.seed}; "
          f"load average at start {load_start} on {ncpu} CPUs", flush=True)

    # lawfit solvers: name -> (backend, n_threads, n problems)
    lawfit_solvers = {f"lawfit cpu, {k} thread{'s' if k > 1 else ''}": ("cpu", k, P)
                      for k in args.threads}
    lawfit_solvers["lawfit numpy reference"] = ("numpy", None, n_np)

    results, times, sizes = {}, {}, {}
    for name, (backend, k, n) in lawfit_solvers.items():  # warm-up
        results[name], _ = lawfit_call(x, y[:n], p0[:n], backend, k)
        times[name], sizes[name] = [], n
    pack_times = []  # what validating/packing alone costs inside a full-batch lawfit call
    guess_times = []  # lawfit.fit(model, x, y) with p0 omitted: the guess inside the call
    k_max = max(args.threads)
    k_name = f"lawfit cpu, {k_max} thread{'s' if k_max > 1 else ''}"
    for rep in range(args.repeats):  # round-robin
        for name, (backend, k, n) in lawfit_solvers.items():
            r, dt = lawfit_call(x, y[:n], p0[:n], backend, k)
            times[name].append(dt)
        t0 = time.perf_counter()
        pack(get(MODEL), x, y, p0=p0)
        pack_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        r_guess = lawfit.fit(MODEL, x, y, backend="cpu", n_threads=k_max)
        guess_times.append(time.perf_counter() - t0)
        print(f"  lawfit repeat {rep + 1}/{args.repeats}: " + ", ".join(
            f"{nm} {times[nm][-1] * 1e3:.1f} ms" for nm in lawfit_solvers), flush=True)

    scipy_solvers = {"scipy least_squares lm loop": scipy_lm_loop,
                     "scipy curve_fit lm loop": curve_fit_loop}
    for name, fn in scipy_solvers.items():
        fn(x, y[:min(10, n_sp)], p0[:min(10, n_sp)])  # warm-up (imports, caches)
        times[name], sizes[name] = [], n_sp
        for rep in range(args.scipy_repeats):
            out, dt = fn(x, y[:n_sp], p0[:n_sp])
            times[name].append(dt)
        results[name] = out
        print(f"  {name}: " + ", ".join(f"{t:.3f} s" for t in times[name]) + f" for {n_sp} fits",
              flush=True)
    with open("/proc/loadavg") as fh:
        load_end = " ".join(fh.read().split()[:3])

    def arr(name, field):
        r = results[name]
        return np.asarray(r[field] if isinstance(r, dict) else getattr(r, field))

    rate = {nm: np.array([sizes[nm] / t for t in times[nm]]) for nm in times}
    med = {nm: float(np.median(v)) for nm, v in rate.items()}
    base = "scipy least_squares lm loop"
    solvers = list(lawfit_solvers) + list(scipy_solvers)

    # accuracy on the problems every solver ran
    n_common = min(sizes.values())
    common_ok, best_common = at_best({nm: arr(nm, "cost")[:n_common] for nm in solvers},
                                     args.rtol)
    # accuracy over the problems all lawfit solvers ran, among themselves
    n_lf = min(sizes[nm] for nm in lawfit_solvers)
    lf_ok, best_lf = at_best({nm: arr(nm, "cost")[:n_lf] for nm in lawfit_solvers}, args.rtol)

    # ------------------------------------------------------------------ table
    lines = []
    lines.append(f"## bench_fit: {P:,} saturating power laws, lawfit vs scipy loops\n")
    lines.append(f"Problem: {P:,} seeded synthetic fits of `E + A x^-alpha` ({MODEL}), {m} points "
                 f"each (x from 1e6 to 1e10), {args.noise:.0%} multiplicative noise, seed "
                 f"{args.seed}. Every solver starts from the same starts, the model's "
                 f"data-driven guess (`pack(...).p0`, computed once, untimed), and uses its "
                 f"default tolerances.\n")
    lines.append("| solver | problems timed | fits/s median [min–max] | ratio to scipy lm loop "
                 f"| at best optimum (first {n_common:,}) | at best among lawfit "
                 f"(first {n_lf:,}) | success | mean / max nfev |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for nm in solvers:
        st = arr(nm, "status")
        succ = ((st >= 1) & (st <= 4)) if nm == "scipy curve_fit lm loop" else st > 0
        nfev = arr(nm, "nfev")
        extrap = "" if sizes[nm] == P else " (per fit, extrapolated)"
        lf = f"{lf_ok[nm].mean():.2%}" if nm in lf_ok else "–"
        lines.append(
            f"| {nm} | {sizes[nm]:,}{extrap} | {fmt_rate(med[nm])} "
            f"[{fmt_rate(rate[nm].min())}–{fmt_rate(rate[nm].max())}] | "
            f"{med[nm] / med[base]:,.1f}x | {common_ok[nm].mean():.2%} "
            f"({int(common_ok[nm].sum())}/{n_common}) | {lf} | {succ.mean():.2%} | "
            f"{nfev.mean():.2f} / {int(nfev.max())} |")
    lines.append("")
    lines.append(f"Timing: `time.perf_counter` around whole calls after one warm-up call each; "
                 f"lawfit solvers {args.repeats} timed calls each, interleaved round-robin; scipy "
                 f"loops {args.scipy_repeats} run(s) of the {n_sp}-problem loop each. fits/s = "
                 f"problems / seconds, so subset rates are per-fit extrapolations to the full "
                 f"batch. A lawfit call includes validating and packing the arrays (`pack`, timed "
                 f"alone in the same loop: median {np.median(pack_times) * 1e3:.1f} ms for "
                 f"{P:,} problems). Without p0 (`lawfit.fit(model, x, y)`: the data-driven "
                 f"starts computed inside the call, {k_max} threads, in the same loop): median "
                 f"{np.median(guess_times) * 1e3:.1f} ms = {fmt_rate(P / np.median(guess_times))} "
                 f"fits/s, results equal to the {k_max}-thread fit from the same starts: "
                 f"{np.array_equal(r_guess.x, results[k_name].x)}. "
                 f"\"At best optimum\": cost within {args.rtol:g} relative of the lowest cost "
                 f"any compared solver reached on that problem. nfev: each library's own count "
                 f"(scipy's lm counts function calls, not Jacobian calls); curve_fit uses "
                 f"MINPACK's default tolerances (1.49e-8), least_squares and lawfit 1e-8.\n")

    lines.append("Status counts:\n")
    for nm in solvers:
        lines.append(f"- {nm}: {status_text(arr(nm, 'status'), nm == 'scipy curve_fit lm loop')}")
    lines.append("")

    # ------------------------------------------------------------------ agreement details
    lines.append("Agreement:\n")
    cpu_names = [nm for nm in lawfit_solvers if lawfit_solvers[nm][0] == "cpu"]
    for a, b in zip(cpu_names, cpu_names[1:]):
        same = np.array_equal(arr(a, "x"), arr(b, "x")) and np.array_equal(arr(a, "cost"),
                                                                              arr(b, "cost"))
        diff = np.nanmax(np.abs(arr(a, "x") - arr(b, "x")) /
                         np.maximum(np.abs(arr(b, "x")), 1e-300))
        lines.append(f"- {a} vs {b}: " + ("bitwise identical parameters and costs on all "
                                           f"{P:,} problems" if same else
                                           f"max relative parameter difference {diff:.2e}"))
    ref = "lawfit numpy reference"
    for a in cpu_names[:1]:
        ca, cr = arr(a, "cost")[:n_np], arr(ref, "cost")
        rel = np.abs(ca - cr) / np.maximum(cr, 1e-300)
        lines.append(f"- {a} vs the numpy reference (first {n_np:,}): cost within {args.rtol:g} "
                     f"on {(rel <= args.rtol).mean():.2%}; cpu lower on "
                     f"{int((ca < cr * (1 - args.rtol)).sum())}, reference lower on "
                     f"{int((cr < ca * (1 - args.rtol)).sum())}; max relative cost difference "
                     f"{np.nanmax(rel):.2e}")
    xt = arr(cpu_names[-1], "x") if cpu_names else arr(ref, "x")
    relp = np.abs(xt - truth[:len(xt)]) / np.abs(truth[:len(xt)])
    lines.append("- parameter recovery of " + (cpu_names[-1] if cpu_names else ref) +
                 " against the truth (median / 90th percentile relative error): " +
                 ", ".join(f"{n_} {np.median(relp[:, j]):.2%} / {np.percentile(relp[:, j], 90):.2%}"
                           for j, n_ in enumerate(("E", "A", "alpha"))))
    miss = np.flatnonzero(~np.logical_and.reduce([common_ok[nm] for nm in solvers]))
    if len(miss):
        lines.append(f"- {len(miss)} of the first {n_common:,} problems where some solver is "
                     f"not at the best optimum (first {min(len(miss), args.list)} listed):\n")
        lines.append("  | problem | best cost | " + " | ".join(
            f"{nm} cost / status" for nm in solvers) + " |")
        lines.append("  |---:|---:|" + "---:|" * len(solvers))
        for i in miss[:args.list]:
            lines.append(f"  | {i} | {best_common[i]:.6e} | " + " | ".join(
                f"{arr(nm, 'cost')[i]:.6e}{'' if common_ok[nm][i] else ' ✗'} / "
                f"{arr(nm, 'status')[i]}" for nm in solvers) + " |")
        lines.append("")
    else:
        lines.append(f"- every solver is at the best optimum on all of the first {n_common:,} "
                     "problems")
    miss_lf = np.flatnonzero(~np.logical_and.reduce([lf_ok[nm] for nm in lawfit_solvers]))
    if len(miss_lf):
        lines.append(f"- among the lawfit solvers, {len(miss_lf)} of the first {n_lf:,} problems "
                     f"disagree; first indices: {', '.join(map(str, miss_lf[:args.list]))}")
    else:
        lines.append(f"- the lawfit solvers agree (within {args.rtol:g}) on all of the first "
                     f"{n_lf:,} problems")
    lines.append("")

    # ------------------------------------------------------------------ targets
    tgt = cpu_names[-1] if cpu_names else None
    lines.append("Targets:\n")
    if tgt is not None:
        speed = med[tgt] / med[base]
        share_c, share_l = common_ok[tgt].mean(), lf_ok[tgt].mean()
        lines.append(f"- speed, {tgt} >= {TARGET_SPEEDUP:.0f}x the scipy lm loop: "
                     f"{speed:,.1f}x (median over median) -> "
                     f"{'MET' if speed >= TARGET_SPEEDUP else 'NOT MET'} in this run")
        lines.append(f"- accuracy, >= {TARGET_SHARE:.1%} of the fits of {tgt} at the best optimum: "
                     f"{share_c:.2%} of the first {n_common:,} (against all solvers) -> "
                     f"{'MET' if share_c >= TARGET_SHARE else 'NOT MET'}; {share_l:.2%} of the "
                     f"first {n_lf:,} (against the lawfit solvers only) -> "
                     f"{'MET' if share_l >= TARGET_SHARE else 'NOT MET'}")
    lines.append("")

    # ------------------------------------------------------------------ environment
    lines.append("Environment:\n")
    lines.append(f"- machine: {cpu}, {ncpu} CPUs (nproc); load average (1/5/15 min) "
                 f"{load_start} at start, {load_end} at end. The machine is shared with other "
                 f"work, so absolute rates are noisy; the min–max spread shows how noisy.")
    lines.append(f"- Python {v['python']}, NumPy {v['numpy']}, SciPy {v['scipy']}, "
                 f"lawfit {v['lawfit']} (git {v['commit']}; compiled "
                 f"core {v['core']})")
    lines.append(f"- date: {started.isoformat(timespec='seconds')}")
    lines.append(f"- command: `{command}`")
    publish(lines, args.out, "bench_fit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
