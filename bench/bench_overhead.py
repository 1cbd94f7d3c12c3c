"""What a call costs around the solver: single fits and small batches beside a scipy loop,
and the share of a call spent outside the compiled core, from 10 to 10^6 problems.

    python bench/bench_overhead.py [--seconds 1.0] [--largest 1000000] [--out bench/RESULTS.md]

Data: seeded ``E + A x^-alpha`` problems (lawfit._synthetic.saturating_power_laws, 20 points,
1% noise), starts within 10% of the truth, the same for every solver.  A row's fits/s is the
best of three rounds, each as many calls as fit in ``--seconds`` (one process, one thread
for lawfit's core: the fixed cost of a call, not the threads, is measured).  Accuracy: the
share of problems at scipy's cost to 1e-6 relative (or better), the solvers side by side.
"Outside the core" is the share of a ``lawfit.fit`` call's wall time not spent inside the
compiled solve (``lawfit._core.fit``, or ``fit_grid`` for the small-call route, which checks
its clean case inside): validation, packing, starts and building the result.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# One BLAS thread: OpenBLAS's helper threads spin after every call the peers' loops make, and
# on a small machine they take a core from whatever runs next (lawfit's threads among them).
# (Child processes inherit it.)  Set before NumPy loads OpenBLAS; a value given outside wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_info, publish, versions  # noqa: E402


def rate(fn, n_fits: int, seconds: float) -> float:
    """Fits per second: the best of three rounds of repeated calls of ``fn``."""
    fn()
    best = 0.0
    for _ in range(3):
        calls, t0 = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            dt = time.perf_counter() - t0
            if dt >= seconds / 3:
                break
        best = max(best, calls * n_fits / dt)
    return best


class CoreTimer:
    """Wraps lawfit._core's solves (``fit``, and ``fit_grid``: the small-call route's, which
    also checks its clean case itself) to add up the time spent inside them."""

    NAMES = ("fit", "fit_grid")

    def __init__(self):
        from lawfit import _core

        self.core, self.spent = _core, 0.0
        self.inner = {name: getattr(_core, name) for name in self.NAMES}

    def __enter__(self):
        def timed(inner):
            def call(*a, **k):
                t0 = time.perf_counter()
                try:
                    return inner(*a, **k)
                finally:
                    self.spent += time.perf_counter() - t0
            return call

        for name, inner in self.inner.items():
            setattr(self.core, name, timed(inner))
        return self

    def __exit__(self, *exc):
        for name, inner in self.inner.items():
            setattr(self.core, name, inner)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="time per measured row")
    ap.add_argument("--largest", type=int, default=1_000_000,
                    help="the largest batch of the outside-the-core table")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "RESULTS.md"))
    args = ap.parse_args(argv)

    import scipy.optimize

    import lawfit
    from lawfit._synthetic import saturating_power_laws

    cpu, ncpu, load = machine_info()
    v = versions()
    m = 20
    x, y, truth = saturating_power_laws(10_000, m, 0.01, seed=0)
    p0 = truth * np.random.default_rng(1).uniform(0.9, 1.1, truth.shape)

    def sat(x, E, A, alpha):
        return E + A * x ** -alpha

    def sat_np(x, E, A, alpha):  # a callable lawfit cannot trace (a NumPy call it lacks)
        return E + A * np.power(np.clip(x, 1e-300, None), -alpha)

    n_one = 200  # problems cycled through by the one-problem-per-call rows
    state = {"i": 0}

    def nxt():
        state["i"] = (state["i"] + 1) % n_one
        return state["i"]

    rows = []

    def row(name, fn, n_fits, costs=None, base=0):
        """``base``: the row this one is measured against (scipy on the same function)."""
        rows.append((name, rate(fn, n_fits, args.seconds), costs, base))

    # Accuracy on the n_one problems, each solver from the same starts.
    def costs_of(fit_one):
        out = np.empty(n_one)
        for i in range(n_one):
            p = fit_one(i)
            out[i] = 0.5 * np.sum((sat(x, *p) - y[i]) ** 2)
        return out

    def sp_one(i):
        return scipy.optimize.curve_fit(sat, x, y[i], p0=p0[i])[0]

    def sp_untraced(i):
        return scipy.optimize.curve_fit(sat_np, x, y[i], p0=p0[i])[0]

    def lf_builtin(i):
        return lawfit.curve_fit("saturating_power_law", x, y[i], p0=p0[i])[0]

    def lf_callable(i):
        return lawfit.curve_fit(sat, x, y[i], p0=p0[i])[0]

    def lf_untraced(i):
        return lawfit.curve_fit(sat_np, x, y[i], p0=p0[i])[0]

    def lf_fit(i):
        return lawfit.fit("saturating_power_law", x, y[i:i + 1], p0=p0[i:i + 1],
                          n_threads=1).x[0]

    ref = costs_of(sp_one)
    # Each callable row against scipy on the same function: the untraceable callable costs
    # more per call than the plain one, for scipy as for lawfit.
    for name, fn, base in [
            ("scipy `curve_fit`, one problem per call", sp_one, 0),
            ("scipy `curve_fit(untraceable_callable)`, one per call", sp_untraced, 0),
            ("`lawfit.curve_fit(\"saturating_power_law\", ...)`, one per call", lf_builtin, 0),
            ("`lawfit.curve_fit(traceable_callable, ...)`, one per call", lf_callable, 0),
            ("`lawfit.curve_fit(untraceable_callable, ...)`, one per call", lf_untraced, 1),
            ("`lawfit.fit(...)`, one problem per call", lf_fit, 0)]:
        c = costs_of(fn)
        row(name, lambda fn=fn: fn(nxt()), 1, c, base)
    for B in (10, 100, 10_000):
        c = lawfit.fit("saturating_power_law", x, y[:B], p0=p0[:B], n_threads=1).cost
        row(f"`lawfit.fit`, batch of {B:,}",
            lambda B=B: lawfit.fit("saturating_power_law", x, y[:B], p0=p0[:B], n_threads=1),
            B, c[:n_one] if B >= n_one else None)
    lines = ["## Overhead: single fits and small batches beside a scipy loop",
             "",
             f"CPU: {cpu} ({ncpu} logical CPUs; load {load} at start); lawfit's core on one "
             f"thread. lawfit {v['lawfit']} ({v['commit']}), numpy {v['numpy']}, scipy "
             f"{v['scipy']}, Python {v['python']}. Command: `python bench/bench_overhead.py`.",
             "",
             f"`E + A x^-alpha`, {m} points, starts within 10% of the truth. Fits/s: best of "
             "three rounds. Each row against the scipy loop on the same function: the "
             "untraceable callable's (`E + A * np.power(np.clip(x, 1e-300, None), -alpha)`) "
             "against scipy's on it, every other row against scipy's on `E + A * x ** -alpha`. "
             "At scipy's cost: the share of the first 200 problems whose cost is at most "
             "scipy's (1e-6 relative).",
             "",
             "| call | fits/s | vs the scipy loop on the same function | at scipy's cost |",
             "|---|---:|---:|---:|"]
    for name, r, c, base in rows:
        acc = "-" if c is None else \
            f"{np.mean(c[:n_one] <= ref * (1 + 1e-6) + 1e-300):.1%}"
        lines.append(f"| {name} | {r:,.0f} | {r / rows[base][1]:,.2f}x | {acc} |")

    # The share outside the core, by batch size.
    lines += ["", "Share of a `lawfit.fit` call outside the compiled solve (one thread; "
                  "data as a NumPy (P, 20) array with a shared x and per-problem p0):", "",
              "| problems | call (ms) | inside the core (`fit` / `fit_grid`, ms) | outside |",
              "|---:|---:|---:|---:|"]
    sizes = [10, 100, 1_000, 10_000, 100_000, 1_000_000]
    big_x, big_y, big_truth = saturating_power_laws(max(s for s in sizes if s <= args.largest),
                                                    m, 0.01, seed=2)
    big_p0 = big_truth * 1.05
    for P in (s for s in sizes if s <= args.largest):
        best = None
        for _ in range(3):
            with CoreTimer() as ct:
                t0 = time.perf_counter()
                lawfit.fit("saturating_power_law", big_x, big_y[:P], p0=big_p0[:P],
                           n_threads=1)
                total = time.perf_counter() - t0
            if best is None or total < best[0]:
                best = (total, ct.spent)
        total, inside = best
        lines.append(f"| {P:,} | {1e3 * total:,.2f} | {1e3 * inside:,.2f} | "
                     f"{(total - inside) / total:.0%} |")
    publish(lines, args.out, "bench_overhead")
    return 0


if __name__ == "__main__":
    sys.exit(main())
