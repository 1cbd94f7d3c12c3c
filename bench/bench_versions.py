"""Two builds of lawfit side by side: default-settings speed and accuracy on the suite's cases.

    python bench/bench_versions.py BEFORE_DIR AFTER_DIR [--fits 10000] [--rounds 5]

Each *_DIR is a folder holding a built ``lawfit`` package (a checkout's ``python/`` with its
compiled ``_core``).  For each of bench_suite.py's main cases (``E + A x^-alpha`` with 20
points and Chinchilla with 50, starts near the truth and generic ones) and for 1 and 2
threads, the two builds run in turn in fresh processes (A B A B ..., so drift on a shared
machine hits both alike); each process times ``lawfit.fit`` with default settings over the
same data and starts (one warm-up call, then 3 timed calls, the median kept).  Printed per
case: each build's median fits/s over the rounds, the ratio after/before, and each build's
accuracy: the share of fits reporting success and the share ending within 1e-6 (relative) of
the lower of the two builds' costs for that problem.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

# One BLAS thread: OpenBLAS's helper threads spin after every call the peers' loops make, and
# on a small machine they take a core from whatever runs next (lawfit's threads among them).
# (Child processes inherit it.)  Set before NumPy loads OpenBLAS; a value given outside wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = [("saturating_power_law", 20, "near"), ("saturating_power_law", 20, "generic"),
         ("chinchilla", 50, "near"), ("chinchilla", 50, "generic")]

_CHILD = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2])
# An editable install's import hook would answer for lawfit before sys.path: leave it out,
# and check that the build timed is the one named.
sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("_editable")]
import os
import lawfit
assert os.path.realpath(lawfit.__file__).startswith(os.path.realpath(sys.argv[1])), \
    f"lawfit imported from {lawfit.__file__}, not from {sys.argv[1]}"
from bench_suite import make_case
name, m, start_set, fits, threads, out = sys.argv[3], int(sys.argv[4]), sys.argv[5], \
    int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
c = make_case(name, m, start_set, fits)
def run():
    return lawfit.fit(name, c["x"], c["y"], p0=c["p0"], backend="cpu", n_threads=threads)
run()
times = []
for _ in range(3):
    t0 = time.perf_counter(); r = run(); times.append(time.perf_counter() - t0)
np.savez(out, cost=np.asarray(r.cost), success=np.asarray(r.success),
         nfev=np.asarray(r.nfev), seconds=np.median(times))
"""


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def one(pkg, case, fits, threads, out):
    name, m, start_set = case
    subprocess.run([sys.executable, "-c", _CHILD, pkg, HERE, name, str(m), start_set,
                    str(fits), str(threads), out], check=True)
    d = np.load(out)
    return {k: d[k] for k in d.files}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--fits", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args(argv)
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"lawfit_versions_{os.getpid()}.npz")
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs; {a.fits} fits per case, "
          f"{a.rounds} alternating rounds")
    print(f"{'case':40s} {'thr':>3s} {'before fits/s':>14s} {'after fits/s':>13s} "
          f"{'after/before':>12s} {'success b/a':>12s} {'at best b/a':>12s} "
          f"{'nfev med b/a':>12s}")
    rows = []
    for case in CASES:
        for threads in a.threads:
            rates = {"before": [], "after": []}
            last = {}
            for _ in range(a.rounds):
                for which in ("before", "after"):
                    r = one(getattr(a, which), case, a.fits, threads, tmp)
                    rates[which].append(a.fits / float(r["seconds"]))
                    last[which] = r
            best = np.minimum(last["before"]["cost"], last["after"]["cost"])
            at = {w: float(np.mean(last[w]["cost"] <= best * (1 + 1e-6))) for w in last}
            ok = {w: float(np.mean(last[w]["success"])) for w in last}
            nf = {w: float(np.median(last[w]["nfev"])) for w in last}
            rb, ra = np.median(rates["before"]), np.median(rates["after"])
            label = f"{case[0]}, {case[1]} points, {case[2]} starts"
            print(f"{label:40s} {threads:3d} {rb:14,.0f} {ra:13,.0f} {ra / rb:12.3f} "
                  f"{ok['before']:5.3f}/{ok['after']:5.3f} {at['before']:5.3f}/{at['after']:5.3f}"
                  f" {nf['before']:5.0f}/{nf['after']:<5.0f}", flush=True)
            rows.append(dict(case=label, threads=threads, before=rb, after=ra,
                             success=ok, at_best=at, nfev=nf))
    if os.path.exists(tmp):
        os.remove(tmp)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
