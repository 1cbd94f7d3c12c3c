"""Benchmark: the CUDA backend on large batches of saturating power laws, beside the CPU.

Problem: ``E + A x^-alpha``, 20 points, 1% noise (``lawfit._synthetic``), fp64, each fit
started from its truth perturbed by up to 20% (cheap to make for 10 million problems, and
the same starts for every backend).  For each batch size in ``--sizes``:

* kernel only: the packed batch is copied to the device once, then the fused kernel (every
  iteration of every fit inside one launch) is run ``--repeats`` times, each launch timed
  alone with CUDA events (``lawfit._cuda.time_fit``); median and min;
* end to end: ``lawfit.fit(..., backend="cuda")`` on host arrays, wall clock: validation,
  packing, the copy in, the kernel, the copy out and the result object; batches larger than
  a chunk (2^18 problems) stream (cpp/include/lawfit/stream.h: chunks staged in pinned
  memory, copied and solved on three CUDA streams while the host packs the next), and are
  also timed with ``LAWFIT_CUDA_STREAM=0`` (one pageable copy each way) beside it; and the
  bound the copies alone set: the fits/s at which the bytes each fit moves in and out (the
  packed arrays the kernel reads and the results it writes) cross at the pinned copy rates
  measured (``lawfit._cuda.pinned_bandwidth``), one direction after the other;
* end to end from device arrays, where CuPy is installed: ``lawfit.fit`` on CuPy arrays
  (packed in GPU memory, solved in place, results as CuPy arrays), in fp64 and fp32;
* the CPU backend (all cores of this machine) end to end, on sizes up to ``--cpu-max``;
* the bootstrap on the GPU: ``lawfit.bootstrap(..., backend="cuda")`` with ``--boot``
  problems x resamples (resamples drawn inside the kernel), end to end.

Accuracy: on the first ``--check`` problems, the CUDA fits against the CPU fits: the share
with the same status and with a cost within 1e-6 relative of the lower of the two.

Run on a machine with a GPU, from the repository root: ``python bench/bench_gpu.py``; the
report goes into ``--out`` between ``<!-- bench_gpu:begin -->`` and ``<!-- bench_gpu:end -->``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time

import numpy as np

from _common import at_best, machine_info, versions, write_section

MODEL = "saturating_power_law"


def make_batch(P, m, seed=0):
    from lawfit._synthetic import saturating_power_laws

    x, y, truth = saturating_power_laws(P, m, 0.01, seed)
    rng = np.random.default_rng(seed + 1)
    p0 = truth * (1 + 0.2 * rng.uniform(-1, 1, truth.shape))
    return x, y, p0


def kernel_only(x, y, p0, repeats):
    import lawfit
    from lawfit import _cuda
    from lawfit._options import Options
    from lawfit._packing import pack

    pk = pack(lawfit.models.get(MODEL), x, y, p0=p0)
    out, ms = _cuda.time_fit(repeats, MODEL,
                             dict(x=pk.inputs, t=pk.target, offsets=pk.offsets, log_residuals=False),
                             dict(p0=pk.p0, lower=pk.lower, upper=pk.upper),
                             Options(max_nfev=300))
    return out, np.array(ms[1:] if len(ms) > 1 else ms)  # the first launch is a warm-up


def end_to_end(x, y, p0, backend, repeats):
    import lawfit

    times, r = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = lawfit.fit(MODEL, x, y, p0=p0, backend=backend)
        times.append(time.perf_counter() - t0)
    return r, np.array(times)


def end_to_end_device(x, y, p0, dtype, repeats):
    """lawfit.fit on CuPy arrays (None without CuPy); the arrays are moved untimed."""
    try:
        import cupy as cp
    except ImportError:
        return None, None
    import lawfit

    gx, gy, gp = (cp.asarray(a) for a in (x, y, p0))
    times, r = [], None
    for _ in range(repeats):
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        r = lawfit.fit(MODEL, gx, gy, p0=gp, backend="cuda", dtype=dtype)
        cp.cuda.Device().synchronize()
        times.append(time.perf_counter() - t0)
    return r, np.array(times)


def moved_bytes(points, n_params=3, n_inputs=1):
    """Bytes one fp64 fit moves: in, its x, t, offsets, p0, lower and upper; out, its x,
    cost, optimality, active mask, status, nfev, njev and nit."""
    into = 8 * points * (n_inputs + 1) + 8 + 3 * 8 * n_params
    out = 8 * n_params + 8 + 8 + n_params + 4 * 4
    return into, out


def bootstrap_rate(problems, resamples, points):
    import lawfit

    x, y, p0 = make_batch(problems, points, seed=5)
    out = {}
    for backend in ("cuda", "cpu"):
        kw = dict(p0=p0, n_resamples=resamples, seed=1, backend=backend)
        lawfit.bootstrap(MODEL, x, y[:10], **{**kw, "p0": p0[:10]})  # warm-up
        t0 = time.perf_counter()
        b = lawfit.bootstrap(MODEL, x, y, **kw)
        out[backend] = (problems * resamples / (time.perf_counter() - t0), b)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000,
                                                             10_000_000])
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cpu-max", type=int, default=1_000_000)
    ap.add_argument("--check", type=int, default=100_000)
    ap.add_argument("--boot", type=int, nargs=2, default=[1000, 1000],
                    metavar=("PROBLEMS", "RESAMPLES"))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "RESULTS.md"))
    args = ap.parse_args(argv)

    import lawfit

    ok, why = lawfit.backends()["cuda"]
    if not ok:
        print(f"no CUDA backend: {why}")
        return 1
    from lawfit import _cuda

    cpu, ncpu, load = machine_info()
    v = versions()
    started = datetime.datetime.now().astimezone()
    command = "python " + shlex.join(sys.argv if argv is None else ["bench/bench_gpu.py", *argv])
    rows = []
    check_lines = []
    h2d, d2h = _cuda.pinned_bandwidth()
    into, out_bytes = moved_bytes(args.points)
    bound = 1.0 / (into / (h2d * 1e9) + out_bytes / (d2h * 1e9))
    for P in args.sizes:
        x, y, p0 = make_batch(P, args.points)
        kout, kms = kernel_only(x, y, p0, args.repeats + 1)
        reps = 1 if P >= 10_000_000 else args.repeats
        rg, tg = end_to_end(x, y, p0, "cuda", reps + 1)
        tg = tg[1:]
        row = dict(P=P, kernel=P / (np.median(kms) / 1e3), kernel_best=P / (kms.min() / 1e3),
                   e2e=P / np.median(tg), success=rg.success.mean(), nfev=rg.nfev.mean())
        if P > 2**18:  # streamed: the one-shot copy beside it, the same results
            os.environ["LAWFIT_CUDA_STREAM"] = "0"
            try:
                r1, t1 = end_to_end(x, y, p0, "cuda", reps + 1)
            finally:
                del os.environ["LAWFIT_CUDA_STREAM"]
            row["e2e_one_shot"] = P / np.median(t1[1:])
            check_lines.append(f"- {P:,} problems: streamed results equal the one-shot "
                               f"copy's bitwise: {np.array_equal(r1.x, rg.x)}")
            del r1
        for dtype in ("float64", "float32"):
            rd, td = end_to_end_device(x, y, p0, dtype, reps + 1)
            if rd is not None:
                row[f"dev_{dtype}"] = P / np.median(td[1:])
                if dtype == "float64":
                    n = min(P, args.check)
                    check_lines.append(
                        f"- {P:,} problems from CuPy arrays: results equal the host-array CUDA "
                        f"fits bitwise: {np.array_equal(rd.x.get()[:n], rg.x[:n])}")
        if P <= args.cpu_max:
            rc, tc = end_to_end(x, y, p0, "cpu", 2)
            row["cpu"] = P / np.median(tc[1:])
            n = min(P, args.check)
            best, _ = at_best({"cpu": rc.cost[:n], "cuda": rg.cost[:n]}, 1e-6)
            same = np.mean(rc.status[:n] == rg.status[:n])
            check_lines.append(f"- {P:,} problems, first {n:,}: same status {same:.4%}; at the "
                               f"best cost (1e-6 rel.) cuda {best['cuda'].mean():.4%}, cpu "
                               f"{best['cpu'].mean():.4%}; kernel-only results equal the "
                               f"end-to-end ones: {np.array_equal(kout['x'], rg.x)}")
        rows.append(row)
        print(row, flush=True)
        del x, y, p0, rg, kout

    lines = [
        "## CUDA backend: `E + A x^-alpha`, fp64",
        "",
        f"Device: **{_cuda.device_name()}**; host: {cpu}, {ncpu} CPUs, load {load} at start. "
        f"{args.points} points per fit, starts within 20% of the truth. lawfit {v['lawfit']} "
        f"({v['commit']}), Python {v['python']}, NumPy {v['numpy']}. {started:%Y-%m-%d %H:%M %Z}.",
        f"Command: `{command}`",
        "",
        f"Pinned copies: {h2d:.1f} GB/s host to device, {d2h:.1f} GB/s back; a fit moves "
        f"{into} bytes in and {out_bytes} out, so the copies alone bound end to end at "
        f"{bound:,.0f} fits/s.",
        "",
        "| fits | kernel only, fits/s (median; best) | end to end, host arrays | share of the "
        "copies' bound | one-shot copy (no streams) | end to end, "
        "CuPy arrays fp64 | CuPy arrays fp32 | CPU backend "
        f"({ncpu} threads), fits/s | GPU e2e / CPU | success | mean nfev |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cpu_rate = f"{r['cpu']:,.0f}" if "cpu" in r else "–"
        ratio = f"{r['e2e'] / r['cpu']:.1f}x" if "cpu" in r else "–"
        dev = [f"{r[k]:,.0f}" if k in r else "– (no CuPy)" for k in ("dev_float64",
                                                                      "dev_float32")]
        one_shot = f"{r['e2e_one_shot']:,.0f}" if "e2e_one_shot" in r else "– (one chunk)"
        lines.append(f"| {r['P']:,} | {r['kernel']:,.0f}; {r['kernel_best']:,.0f} | "
                     f"{r['e2e']:,.0f} | {r['e2e'] / bound:.0%} | {one_shot} | {dev[0]} | "
                     f"{dev[1]} | {cpu_rate} | {ratio} | {r['success']:.2%} | "
                     f"{r['nfev']:.2f} |")
    bp, br = args.boot
    boot = bootstrap_rate(bp, br, args.points)
    (gr, gb), (cr, cb) = boot["cuda"], boot["cpu"]
    ok = gb.converged & cb.converged
    rel = np.abs(gb.samples[ok] - cb.samples[ok]) / np.abs(cb.samples[ok])
    lines += ["", f"Bootstrap, {bp:,} problems x {br:,} pairs resamples (drawn in the kernel), "
              f"end to end: GPU {gr:,.0f} resample fits/s, CPU ({ncpu} threads) {cr:,.0f} "
              f"({gr / cr:.1f}x); converged {gb.share_converged.mean():.2%} / "
              f"{cb.share_converged.mean():.2%}; parameters of the resamples both converged "
              f"within 1e-6 relative: {np.mean(rel <= 1e-6):.4%}."]
    lines += ["", "Agreement with the CPU backend:", *check_lines, "",
              "Targets (issue 6): >= 0.5 billion fits/s kernel only and >= 0.1 billion end to "
              "end for 1e6+ problems on an H100; (issue 19) end to end from NumPy >= 50% of "
              "the copies' bound for 10^6 and 10^7 problems."]
    report = "\n".join(lines)
    print(report)
    write_section(args.out, "bench_gpu", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
