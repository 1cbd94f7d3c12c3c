"""The ``lawfit`` command: ``lawfit demo`` runs the main job on an embedded default."""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def demo(args) -> int:
    import lawfit
    from lawfit._synthetic import saturating_power_laws, scipy_loop

    P, m = args.problems, args.points
    print(f"lawfit {lawfit.__version__} demo: {P:,} synthetic saturating power laws "
          f"E + A x^-alpha, {m} points each, {args.noise:.0%} noise, seed {args.seed}")
    avail = {k: v[0] for k, v in lawfit.backends().items()}
    print("backends: " + ", ".join(f"{k} ({'yes' if v else 'no'})" for k, v in avail.items()))
    x, y, truth = saturating_power_laws(P, m, args.noise, args.seed)

    lawfit.fit("saturating_power_law", x, y[:64], backend=args.backend)  # warm-up
    t0 = time.perf_counter()
    r = lawfit.fit("saturating_power_law", x, y, backend=args.backend, n_threads=args.threads)
    dt_all = time.perf_counter() - t0
    from lawfit._packing import pack
    from lawfit.models import saturating_power_law

    p0 = pack(saturating_power_law, x, y).p0  # the data-driven starts fit() used
    t0 = time.perf_counter()
    r = lawfit.fit("saturating_power_law", x, y, p0=p0, backend=args.backend,
                   n_threads=args.threads)
    dt = time.perf_counter() - t0
    print(f"\nlawfit ({r.backend}): {P:,} fits in {dt:.3f} s = {P / dt:,.0f} fits/s from given "
          f"starts; {P / dt_all:,.0f} fits/s including the data-driven starts (p0=None)")
    print(f"status: {r.status_counts()}")
    rel = np.abs(r.x - truth) / np.abs(truth)
    print("parameter recovery (median / 90th percentile relative error against the truth):")
    for j, name in enumerate(r.param_names):
        print(f"  {name:>6}: {np.median(rel[:, j]):8.2%} / {np.percentile(rel[:, j], 90):8.2%}")

    n = min(args.scipy_subset, P)
    if n > 0:
        sp, scost, sstatus, sdt = scipy_loop(x, y[:n], p0[:n])
        agree = np.abs(r.cost[:n] - scost) <= 1e-6 * np.maximum(scost, 1e-300)
        better = r.cost[:n] < scost * (1 - 1e-6)
        print(f"\nscipy.optimize.least_squares(method='lm', analytic jac) loop on the first "
              f"{n} problems, same starts: {n / sdt:,.0f} fits/s")
        print(f"speed ratio lawfit / scipy (same starts): {(P / dt) / (n / sdt):,.0f}x")
        print(f"same cost as scipy (1e-6 rel.) on {agree.mean():.1%} of those problems, "
              f"lower on {better.mean():.1%}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lawfit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="fit a seeded synthetic batch and compare with scipy")
    d.add_argument("--problems", type=int, default=10_000)
    d.add_argument("--points", type=int, default=20)
    d.add_argument("--noise", type=float, default=0.01)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--threads", type=int, default=None)
    d.add_argument("--backend", default="auto", choices=["auto", "cpu", "cuda", "numpy"])
    d.add_argument("--scipy-subset", type=int, default=300)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args)
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
