"""The Chinchilla replication, end to end: data, grid, bootstrap, compute-optimal allocation,
figures.

Hoffmann et al. (2022) fitted L(N, D) = E + A N^-alpha + B D^-beta to their training runs
(Approach 3); Besiroglu et al. (2024) digitised the points of their Figure 4 and refitted
them.  This script follows the replication:

* data: ``chinchilla_epoch.csv`` (245 rows: ``Model Size`` N, ``Training FLOP`` C,
  ``loss``).  Tokens are not in the file: D = C / (6 N).  The five rows with the highest
  loss (all with D/N < 0.41) are dropped, leaving 240; the rest keep the file's order
  (a pairs bootstrap draws points by position, so the order is part of the seed's result);
* the law in the replication's parameterisation, ``chinchilla_log``:
  log L = logsumexp(a - alpha log N, b - beta log D, e), with A = exp(a), B = exp(b),
  E = exp(e);
* the objective: Huber loss (delta = 1e-3) on log residuals log L - log f, summed;
* starts: the replication's Cartesian grid of 4,500 (alpha, beta in {0, 0.5, ..., 2}, e in
  {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}); the best 100 by objective are refined;
* uncertainty: a pairs bootstrap (``--resamples``, seed ``--seed``), percentile intervals at
  ``--level``;
* compute-optimal allocation under C = 6 N D: N_opt(C) = G (C/6)^(beta/(alpha+beta)).

Run it from the repository's root (the data are looked for in ``../shared/data``, beside
it, unless ``--data`` says where)::

    python examples/chinchilla.py                         # 4,000 resamples, 90% intervals
    python examples/chinchilla.py --figures figs/         # also the two figures

The same fit from the command line::

    lawfit fit ../shared/data/chinchilla_epoch.csv --law chinchilla_log \\
        --assign 'N=`Model Size`' --assign 'D=`Training FLOP` / (6 * N)' \\
        --where "loss.rank(ascending=False, method='first') > 5" --x N,D --y loss \\
        --loss huber --f-scale 1e-3 --log-residuals \\
        --grid a=0:25:6 b=0:25:6 e=-1:1:5 alpha=0:2:5 beta=0:2:5 \\
        --bootstrap 4000 --seed 0 --level 0.9 --compute-optimal 5.76e23 \\
        --out chinchilla.csv --plot chinchilla.png
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

import lawfit

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / \
    "chinchilla_epoch.csv"
# Chinchilla's own training budget (Gopher's compute), where Hoffmann et al. put 70B
# parameters and 1.4T tokens.
C_CHINCHILLA = 5.76e23
# Hoffmann et al.'s published Approach 3 fit, for comparison.
HOFFMANN = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)


def load(path):
    """N, D and L of the replication's 240 points: D = C / (6 N), the five highest losses
    dropped, the file's order kept."""
    import pandas as pd

    df = pd.read_csv(path)
    N = df["Model Size"].to_numpy(dtype=np.float64)
    D = df["Training FLOP"].to_numpy(dtype=np.float64) / (6 * N)
    L = df["loss"].to_numpy(dtype=np.float64)
    keep = np.sort(np.argsort(L, kind="stable")[:-5])  # the file's order
    return N[keep], D[keep], L[keep]


def replication_grid():
    """The replication's 4,500 starts (a Cartesian grid)."""
    return lawfit.grid(a=[0, 5, 10, 15, 20, 25], b=[0, 5, 10, 15, 20, 25],
                       e=[-1, -0.5, 0, 0.5, 1], alpha=[0, 0.5, 1, 1.5, 2],
                       beta=[0, 0.5, 1, 1.5, 2])


def run(data=DEFAULT_DATA, resamples: int = 4000, seed: int = 0, level: float = 0.9,
        figures=None, out=sys.stdout) -> dict:
    """The whole replication; prints a report to ``out`` and returns its numbers:
    ``fit`` (natural parameters E, A, B, alpha, beta), ``intervals`` ({name: (low, high)}
    at ``level``), ``exponent`` and ``N_opt``, ``D_opt`` at C = 5.76e23 (each (estimate,
    low, high)), the ``bootstrap`` result, and the ``figures`` written."""
    N, D, L = load(data)
    X = np.column_stack([N, D])
    b = lawfit.bootstrap("chinchilla_log", X, L, p0=replication_grid(), n_resamples=resamples,
                         seed=seed, residuals="log", loss="huber", f_scale=1e-3)
    r = b.fit
    a_, b_, e_, alpha, beta = r.x[0]
    print(f"{len(L)} points (245 less the 5 highest losses), D = C / (6 N); Huber "
          f"(delta 1e-3) on log residuals; 4,500 starts, best {int(r.n_refined[0])} refined, "
          f"{int(r.n_at_best[0])} reached the lowest objective {r.cost[0]:.6g}", file=out)
    print(f"{resamples:,} pairs-bootstrap resamples (seed {seed}), "
          f"{int(b.n_converged[0]):,} converged; {level:.0%} percentile intervals:", file=out)
    # Natural parameters: E, A, B = exp(e, a, b) (percentile intervals map through exp).
    natural = {
        "E": lambda p: np.exp(p[..., 2]), "A": lambda p: np.exp(p[..., 0]),
        "B": lambda p: np.exp(p[..., 1]), "alpha": lambda p: p[..., 3],
        "beta": lambda p: p[..., 4]}
    fit, intervals = {}, {}
    for name, fn in natural.items():
        est, lo, hi = b.derive(fn, level)
        fit[name], intervals[name] = float(est[0]), (float(lo[0]), float(hi[0]))
        print(f"  {name:>5} = {est[0]:9.4g}   [{lo[0]:.4g}, {hi[0]:.4g}]   "
              f"(Hoffmann et al.: {HOFFMANN[name]:g})", file=out)
    co = b.compute_optimal([C_CHINCHILLA], level)
    exponent = tuple(float(np.ravel(v)[0]) for v in co["exponent"])
    n_opt = tuple(float(np.ravel(v)[0]) for v in co["N_opt"])
    d_opt = tuple(float(np.ravel(v)[0]) for v in co["D_opt"])
    print(f"compute-optimal allocation under C = 6 N D: N_opt ~ C^a, "
          f"a = beta / (alpha + beta) = {exponent[0]:.3f} [{exponent[1]:.3f}, "
          f"{exponent[2]:.3f}]", file=out)
    print(f"  at C = {C_CHINCHILLA:.3g} FLOP: N_opt = {n_opt[0] / 1e9:.0f}B "
          f"[{n_opt[1] / 1e9:.0f}B, {n_opt[2] / 1e9:.0f}B] parameters, D_opt = "
          f"{d_opt[0] / 1e12:.2f}T [{d_opt[1] / 1e12:.2f}T, {d_opt[2] / 1e12:.2f}T] tokens "
          f"(Chinchilla: 70B, 1.4T)", file=out)
    written = {}
    if figures is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from lawfit import plot

        os.makedirs(figures, exist_ok=True)
        figs = {
            "fit": plot.fits(b, X, L, level=level, y_label="loss"),
            "frontier": plot.compute_optimal(b, C=np.geomspace(1e18, 1e25, 50), level=level),
            "params": plot.params(b, problem=0),
        }
        for key, fig in figs.items():
            path = os.path.join(figures, f"chinchilla_{key}.png")
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written[key] = path
            print(f"wrote {path}", file=out)
    return dict(fit=fit, intervals=intervals, exponent=exponent, N_opt=n_opt, D_opt=d_opt,
                bootstrap=b, figures=written)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA),
                    help=f"chinchilla_epoch.csv (default {DEFAULT_DATA})")
    ap.add_argument("--resamples", type=int, default=4000,
                    help="bootstrap resamples (default 4,000)")
    ap.add_argument("--seed", type=int, default=0, help="the resamples' seed (default 0)")
    ap.add_argument("--level", type=float, default=0.9,
                    help="the intervals' level (default 0.9)")
    ap.add_argument("--figures", metavar="DIR",
                    help="write chinchilla_fit.png, chinchilla_frontier.png and "
                         "chinchilla_params.png here (needs matplotlib)")
    args = ap.parse_args(argv)
    if not os.path.isfile(args.data):
        print(f"chinchilla.py: no data at {args.data} (give --data)", file=sys.stderr)
        return 2
    run(args.data, args.resamples, args.seed, args.level, args.figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
