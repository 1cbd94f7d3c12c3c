"""A user's law (lawfit.law, the compiled tape) beside its built-in twin, and beside the
paths a user had before: scipy's curve_fit in a loop and lawfit.curve_fit with a callable.

    python bench/bench_laws.py [--problems 10000] [--repeats 7] [--out bench/RESULTS.md]

Cases (seeded synthetic data, starts within 10-20% of the truth, the same for every solver):
``E + A x^-alpha`` (10,000 x 20 points, unbounded) and Chinchilla
``E + A N^-alpha + B D^-beta`` (10,000 x 50 points, bounds >= 0).  Speed: fits per second,
median [min-max] over ``--repeats`` calls, the built-in and the law interleaved.  Accuracy:
the share of problems where both converge and agree to 1e-8 relative in every parameter (at
tight tolerances, where both reach the optimum rather than stopping in a flat valley), and
the largest relative difference.  Also: the time to define a law and fit one problem with it
(a new law, nothing cached), the native build's time, and how long NVRTC (the GPU path,
once per law and setting, then a disk cache hit) and nvcc take on the law's kernels.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_info, versions, write_section  # noqa: E402

import lawfit  # noqa: E402

TIGHT = dict(ftol=1e-14, xtol=1e-14, gtol=1e-14, max_nfev=2000)


def cases(P: int):
    rng = np.random.default_rng(0)
    x = np.geomspace(1, 1e4, 20)
    p = np.column_stack([rng.uniform(1, 2, P), rng.uniform(1, 5, P), rng.uniform(0.2, 0.6, P)])
    y = (p[:, :1] + p[:, 1:2] * x ** -p[:, 2:3]) * (1 + 0.01 * rng.standard_normal((P, 20)))
    p0 = p * (1 + 0.2 * rng.uniform(-1, 1, p.shape))
    yield ("E + A x^-alpha, 20 points", "saturating_power_law",
           lawfit.law("E + A * x**-alpha", inputs=["x"]), x, y, p0, (-np.inf, np.inf))
    N, D = np.geomspace(1e7, 1e10, 50), np.geomspace(1e9, 1e12, 50)[::-1]
    X = np.column_stack([N, D])
    truth = np.array([1.69, 406.4, 410.7, 0.34, 0.28]) * (1 + 0.1 * rng.standard_normal((P, 5)))
    Y = truth[:, :1] + truth[:, 1:2] * N ** -truth[:, 3:4] + truth[:, 2:3] * D ** -truth[:, 4:5]
    Y = Y * (1 + 0.01 * rng.standard_normal(Y.shape))
    p0 = truth * (1 + 0.1 * rng.uniform(-1, 1, truth.shape))
    yield ("Chinchilla, 50 points, bounds >= 0", "chinchilla",
           lawfit.law("E + A * N**-alpha + B * D**-beta", inputs=["N", "D"],
                      params=["E", "A", "B", "alpha", "beta"]), X, Y, p0, (0, np.inf))


def timed(fn, repeats):
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return np.array(out)


def compile_seconds(law):
    include = Path(__file__).resolve().parents[1] / "cpp" / "include"
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        cpp = Path(tmp) / "law.cpp"
        cpp.write_text(law.source.translation_unit() + "\ntemplate double lawfit::UserLaw::eval"
                       "<double>(const double*, const double*, double*);\n")
        cxx = shutil.which("g++") or shutil.which("c++")
        if cxx:
            t = time.perf_counter()
            subprocess.run([cxx, "-std=c++17", "-O2", "-c", f"-I{include}", str(cpp), "-o",
                            str(Path(tmp) / "a.o")], check=True)
            out["host C++ (struct alone)"] = time.perf_counter() - t
        from lawfit import _nvrtc

        cu = Path(tmp) / "law.cu"
        cu.write_text(_nvrtc.translation_unit(law, False, "linear", False))
        if shutil.which("nvcc"):
            t = time.perf_counter()
            subprocess.run(["nvcc", "-std=c++17", "-arch=sm_90", "-cubin", f"-I{include}",
                            str(cu), "-o", str(Path(tmp) / "b.cubin")], check=True)
            out["nvcc sm_90 (the law's kernels)"] = time.perf_counter() - t
        if _nvrtc.library()[0] is not None:
            old = os.environ.get("LAWFIT_CACHE_DIR")
            os.environ["LAWFIT_CACHE_DIR"] = tmp  # a cold cache, then a warm one
            try:
                for state in ("compiled", "a disk cache hit"):
                    _nvrtc._IMAGES.clear()
                    t = time.perf_counter()
                    _nvrtc.cubin(law, 90, False, "linear", False)
                    out[f"NVRTC {'.'.join(map(str, _nvrtc.version()))} sm_90 (the law's "
                        f"kernels, {state})"] = time.perf_counter() - t
            finally:
                if old is None:
                    del os.environ["LAWFIT_CACHE_DIR"]
                else:
                    os.environ["LAWFIT_CACHE_DIR"] = old
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--scipy-subset", type=int, default=300)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    cpu, ncpu, load = machine_info()
    lines = ["## Laws: a user's law (the compiled tape) beside its built-in twin",
             "", f"CPU: {cpu} ({ncpu} logical CPUs; load {load}); {versions()}",
             f"Command: `python bench/bench_laws.py {' '.join(argv or sys.argv[1:])}`", "",
             "| case | built-in fits/s | law (tape) fits/s | tape / built-in | law (native) "
             "fits/s | native / built-in | both converged, agree to 1e-8 | largest rel. diff |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    P = args.problems
    from lawfit import _native

    native_builds = []
    for title, name, law, x, y, p0, bounds in cases(P):
        native = lawfit.law(law.formula, inputs=list(law.input_names),
                            params=list(law.param_names))
        try:
            native_builds.append(_native.attach(native))
        except ValueError:
            native = None
        tb, tl, tn = [], [], []
        for _ in range(args.repeats):  # interleaved
            tb.append(timed(lambda: lawfit.fit(name, x, y, p0=p0, bounds=bounds), 1)[0])
            tl.append(timed(lambda: lawfit.fit(law, x, y, p0=p0, bounds=bounds), 1)[0])
            if native is not None:
                tn.append(timed(lambda: lawfit.fit(native, x, y, p0=p0, bounds=bounds), 1)[0])
        tb, tl, tn = np.array(tb), np.array(tl), np.array(tn)
        if native is not None:
            same = np.array_equal(lawfit.fit(native, x, y, p0=p0, bounds=bounds).x,
                                  lawfit.fit(law, x, y, p0=p0, bounds=bounds).x)
            nat = (f"{P / np.median(tn):,.0f} [{P / tn.max():,.0f}-{P / tn.min():,.0f}]"
                   f"{'' if same else ' (differs from the tape!)'} "
                   f"| {np.median(tb) / np.median(tn):.2f}")
        else:
            nat = "no compiler | -"
        a = lawfit.fit(name, x, y, p0=p0, bounds=bounds, **TIGHT)
        b = lawfit.fit(law, x, y, p0=p0, bounds=bounds, **TIGHT)
        both = (a.status > 0) & (b.status > 0)
        rel = np.abs(a.x - b.x) / np.maximum(np.abs(a.x), 1e-300)
        agree = both & (rel.max(axis=1) <= 1e-8)
        lines.append(
            f"| {title} | {P / np.median(tb):,.0f} [{P / tb.max():,.0f}-{P / tb.min():,.0f}] "
            f"| {P / np.median(tl):,.0f} [{P / tl.max():,.0f}-{P / tl.min():,.0f}] "
            f"| {np.median(tb) / np.median(tl):.2f} | {nat} | {agree.sum()} of {P} "
            f"(status classes equal: {((a.status > 0) == (b.status > 0)).mean():.4f}) "
            f"| {np.nanmax(rel[both]):.1e} |")
    # The paths a user had before: a scipy loop, lawfit.curve_fit with a callable.
    from scipy.optimize import curve_fit as scipy_curve_fit

    title, name, law, x, y, p0, bounds = next(cases(args.scipy_subset))
    S = args.scipy_subset

    def sat(x, E, A, alpha):
        return E + A * x ** -alpha

    def loop(fn):
        return lambda: [fn(sat, x, y[i], p0=p0[i], maxfev=10000) for i in range(S)]

    t_scipy = timed(loop(scipy_curve_fit), 3)
    t_traced = timed(loop(lawfit.curve_fit), 3)
    t_batch = timed(lambda: lawfit.fit(law, x, y, p0=p0), 3)
    lines += ["", f"One problem per call, `E + A x^-alpha` ({S} problems, median of 3):", "",
              "| call | fits/s | vs scipy loop |", "|---|---:|---:|",
              f"| scipy `curve_fit(callable)` loop | {S / np.median(t_scipy):,.0f} | 1.00 |",
              f"| `lawfit.curve_fit(callable)` loop (traced into a law) | "
              f"{S / np.median(t_traced):,.0f} | {np.median(t_scipy) / np.median(t_traced):.2f} |",
              f"| `lawfit.fit(law)`, one call for all {S} | {S / np.median(t_batch):,.0f} | "
              f"{np.median(t_scipy) / np.median(t_batch):.1f} |"]
    # Defining a law and its first fit (nothing cached), on well-posed data.
    t0 = time.perf_counter()
    fresh = lawfit.law("E + A * N**-alpha + B * D**-beta + C", inputs=["N", "D"])
    t1 = time.perf_counter()
    X = np.column_stack([np.geomspace(1e7, 1e10, 30), np.geomspace(1e9, 1e12, 30)])
    Y = 1.7 + 400 * X[:, 0] ** -0.34 + 410 * X[:, 1] ** -0.28
    r = lawfit.fit(fresh, X, Y, p0=[1.5, 400, 0.3, 400, 0.3, 0.1])
    t2 = time.perf_counter()
    lines += ["", f"Defining a law (6 parameters): {1e3 * (t1 - t0):.1f} ms; its first fit "
                  f"(30 points, {int(r.nfev[0])} evaluations): {1e3 * (t2 - t1):.1f} ms; no "
                  "compiler involved."]
    for b in native_builds:
        lines += ["", f"Native build of a case's law: {b['seconds']:.1f} s "
                      f"({'a cache hit' if b['cached'] else 'compiled'})."]
    try:
        built = _native.attach(fresh)
        hit = _native.attach(lawfit.law(fresh.formula, inputs=list(fresh.input_names)))
        lines += [f"Native build of the new law: {built['seconds']:.1f} s "
                  f"({'a cache hit' if built['cached'] else 'compiled'}); the same law "
                  f"defined again: {1e3 * hit['seconds']:.0f} ms "
                  f"({'a cache hit' if hit['cached'] else 'compiled'})."]
    except ValueError as exc:
        lines += [f"Native build: {exc}"]
    comp = compile_seconds(fresh)
    if comp:
        lines += ["", "Compiling the law's generated code (the GPU pays NVRTC once per law "
                      "and setting, then reads its disk cache; lawfit's CPU path needs no "
                      "compiler): " +
                  "; ".join(f"{k} {v:.1f} s" for k, v in comp.items()) + "."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_section(args.out, "bench_laws", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
