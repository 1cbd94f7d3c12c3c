"""Right answers by default, judged on a corpus of real scaling-law fits.

The corpus (tests/data/corpus, provenance in its README.md) holds real fits from public
studies: the 24 over-training laws and the Chinchilla replication read in place from
../shared/data, the OLMo model ladder's step-1 task fits and three Marin isoFLOP sweeps.  Each
problem comes with its model, objective (robust loss, f_scale, residual space, bounds), a
reasonable start (the paper's where published) and a best-known optimum found offline by an
exhaustive search that does not rely on lawfit alone (bench/corpus_optima.py).

``lawfit.fit`` with its default tolerances and budget, from each problem's start, must
  (a) report success only at a minimum: wherever it says it converged, L-BFGS-B (scipy, tight
      tolerances, the corpus' own cost) started from lawfit's answer lowers the cost by at
      most RTOL (relative), and no fit ends below the best-known optimum;
  (b) end within RTOL of the best-known cost on at least 99% of the problems whose start
      leads there at all: where lawfit with tight tolerances (1e-15) and 20,000 evaluations
      from the same start reaches it.  That is the question of the stopping rules and the
      budget: the defaults must not stop short of where the method goes.
A local method from one start cannot promise the global optimum: on some problems the
paper's start lies in another basin (lawfit, scipy's trf and L-BFGS-B each end in a local
minimum there) or in a valley no method crosses in 20,000 evaluations.  Those are counted and
listed in the printed table (the global reach, from the papers' starts), not judged by (b);
a multi-start fit (lawfit.grid) is the tool for them.

No looser band is granted.  Every judged optimum has a positive cost and is attained at finite
parameters (the search found it from many starts with several methods), so "within 1e-6" is
well defined.  A few problems have no optimum to reach: with the bounds their authors used
(the OLMo ladder's accuracy fits: E free, A, B <= -1, beta free) a power term can turn into a
logarithm as its exponent goes to 0 and its coefficient diverges, and on some tasks the cost
keeps falling along that path, below every finite point.  Those are not judged (there is no
right answer to reach); test_corpus_is_consistent re-checks from the data that each of them
has such a limiting law below its best finite point, and that every judged problem has none.
"""
from __future__ import annotations

import importlib.util
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

import lawfit

_path = Path(__file__).resolve().parent / "data" / "corpus" / "corpus.py"
_spec = importlib.util.spec_from_file_location("lawfit_test_corpus", _path)
corpus = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = corpus
_spec.loader.exec_module(corpus)

RTOL = 1e-6        # "reaches the best-known optimum": final cost within this, relative
SHARE = 0.99       # of the problems
# A default fit may not end *below* the best-known optimum by more than this: that would
# mean the stored optimum is stale (rerun bench/corpus_optima.py), not that lawfit is good.
STALE_RTOL = 1e-9


TIGHT = dict(ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=20_000)


def _fit_defaults(problems, **options):
    """lawfit.fit with default tolerances and max_nfev (or ``options``) from every problem's
    start; one batched call per group of problems sharing a model and an objective."""
    out = {}
    groups = defaultdict(list)
    for p in problems:
        groups[p.group_key].append(p)
    for (model, loss, f_scale, residuals, _), ps in groups.items():
        r = lawfit.fit(model, [p.x for p in ps], [p.y for p in ps],
                       p0=np.stack([p.p0 for p in ps]),
                       bounds=(np.stack([p.lower for p in ps]),
                               np.stack([p.upper for p in ps])),
                       loss=loss, f_scale=f_scale, residuals=residuals, **options)
        for i, p in enumerate(ps):
            out[p.id] = dict(cost=float(r.cost[i]), status=int(r.status[i]),
                             success=bool(r.success[i]), nfev=int(r.nfev[i]),
                             x=np.array(r.x[i]))
    return out


def _rel(cost, best):
    return (cost - best) / best if math.isfinite(cost) else math.inf


def _polish(p, x) -> float:
    """The corpus cost after L-BFGS-B (tight tolerances) from x, within p's bounds."""
    from scipy.optimize import minimize

    bounds = [(None if not math.isfinite(lo) else lo, None if not math.isfinite(up) else up)
              for lo, up in zip(p.lower, p.upper)]
    r = minimize(lambda q: corpus.cost(p, q), x, method="L-BFGS-B", bounds=bounds,
                 options=dict(ftol=1e-15, gtol=1e-12, maxiter=20_000, maxfun=50_000))
    return min(float(r.fun), corpus.cost(p, x))


def _judge(problems, fits, tight):
    rows = []
    for p in problems:
        f = fits[p.id]
        best = p.best["cost"]
        rel = _rel(f["cost"], best)
        t = _rel(tight[p.id]["cost"], best)
        polished = _rel(_polish(p, f["x"]), f["cost"]) if f["success"] else 0.0
        rows.append(dict(id=p.id, source=p.source, rel=rel, reached=rel <= RTOL, tight=t,
                         basin=t <= RTOL, polished=polished,
                         false_success=f["success"] and polished < -RTOL, **f))
    return rows


def _table(rows) -> str:
    by = defaultdict(list)
    for r in rows:
        by[r["source"]].append(r)
    lines = [f"{'source':26s} {'problems':>8s} {'start in basin':>15s} {'reached':>8s}"
             f" {'of those':>9s} {'false success':>14s} {'max_nfev':>9s}"]
    for src, rs in list(by.items()) + [("all", rows)]:
        inb = [r for r in rs if r["basin"]]
        lines.append(
            f"{src:26s} {len(rs):8d} {len(inb):15d} {sum(r['reached'] for r in rs):8d}"
            f" {sum(r['reached'] for r in inb):9d} {sum(r['false_success'] for r in rs):14d}"
            f" {sum(r['status'] == 0 for r in rs):9d}")
    lines.append("start in basin: lawfit with 1e-15 tolerances and 20,000 evaluations from the "
                 "start reaches the best-known optimum; reached: the defaults do (all, and of "
                 "those in the basin)")
    lines.append("misses (relative excess cost, status, success, nfev; tight: where the tight "
                 "solve from the same start ends; polish: L-BFGS-B from a success):")
    for r in sorted((r for r in rows if not r["reached"]), key=lambda r: -r["rel"]):
        lines.append(f"  {r['id']:45s} {r['rel']:10.3e} status {r['status']:2d} "
                     f"success {str(r['success']):5s} nfev {r['nfev']:5d}   tight "
                     f"{r['tight']:9.2e}   polish {r['polished']:9.2e}")
    return "\n".join(lines)


def _judged(p) -> bool:
    return p.best.get("judged", True)


def _check(problems):
    assert problems, "no corpus problems found"
    missing = [p.id for p in problems if "cost" not in p.best]
    assert not missing, f"problems without a best-known optimum: {missing}"
    skipped = [p.id for p in problems if not _judged(p)]
    problems = [p for p in problems if _judged(p)]
    rows = _judge(problems, _fit_defaults(problems), _fit_defaults(problems, **TIGHT))
    table = _table(rows) + (f"\nnot judged (no minimiser): {len(skipped)}: {skipped}"
                            if skipped else "")
    print("\n" + table)
    stale = [r["id"] for r in rows if r["rel"] < -STALE_RTOL]
    assert not stale, ("lawfit ended below the stored optimum: rerun "
                       f"bench/corpus_optima.py for {stale}\n{table}")
    in_basin = [r for r in rows if r["basin"]]
    # (b) is not vacuous: lawfit's tight solve itself reaches the optimum from the start on
    # nearly every problem where scipy's trf and L-BFGS-B both do (stored with the optima).
    both = [r for r, p in zip(rows, problems)
            if max(p.best.get("from_start", {}).get(m, math.inf)
                   for m in ("trf", "lbfgsb")) <= RTOL]
    assert sum(r["basin"] for r in both) >= 0.9 * len(both), (
        f"lawfit's tight solve reaches the optimum on {sum(r['basin'] for r in both)} of "
        f"the {len(both)} problems where trf and L-BFGS-B both do\n{table}")
    reached = sum(r["reached"] for r in in_basin)
    false_success = [r["id"] for r in rows if r["false_success"]]
    problems_short = [f"{reached}/{len(in_basin)} of the problems whose start leads to the "
                      f"optimum reach it (need >= {SHARE:.0%})"
                      ] if reached < SHARE * len(in_basin) else []
    if false_success:
        problems_short.append(f"success reported where L-BFGS-B still lowers the cost: "
                              f"{false_success}")
    assert not problems_short, "; ".join(problems_short) + "\n" + table


def test_corpus_in_repo_defaults_reach_the_optimum():
    """The corpus problems whose data live in this repository (OLMo ladder, Marin)."""
    _check(corpus.load(include_shared=False))


@pytest.mark.data
def test_corpus_whole_defaults_reach_the_optimum(data_dir):
    """The whole corpus, with the over-training laws and the Chinchilla replication read
    from ../shared/data."""
    problems = corpus.load(shared=data_dir)
    assert {"gadre2024_overtraining", "chinchilla_replication"} <= set(corpus.sources(problems))
    _check(problems)


def test_corpus_is_consistent():
    """The stored optima are what the corpus' own cost says they are, inside the bounds; the
    corpus has the documented size per source."""
    problems = corpus.load(shared=corpus.SHARED_DATA)
    counts = Counter(p.source for p in problems)
    assert counts["olmo_ladder_final"] == 22 and counts["olmo_ladder_paper"] == 25, counts
    assert counts["marin_isoflops"] == 3, counts
    if corpus.SHARED_DATA.is_dir():
        assert counts["gadre2024_overtraining"] == 24, counts
        assert counts["chinchilla_replication"] == 1, counts
    for p in problems:
        assert p.x.shape == (p.y.size, 2) and np.all(p.x > 0) and np.all(p.y > 0), p.id
        assert np.all(p.lower <= p.p0) and np.all(p.p0 <= p.upper), p.id
        assert math.isfinite(corpus.cost(p, p.p0)), p.id
        x = np.array(p.best["x"])
        assert np.all(p.lower <= x) and np.all(x <= p.upper), p.id
        c = corpus.cost(p, x)
        assert c > 0 and abs(c - p.best["cost"]) <= 1e-12 * p.best["cost"], (p.id, c)
        assert c <= corpus.cost(p, p.p0), p.id
        lim = p.best.get("limit")
        if lim is not None:
            lc = corpus.limit_cost(p, lim["variant"], lim["q"])
            assert abs(lc - lim["cost"]) <= 1e-12 * lim["cost"], (p.id, lc)
            # not judged exactly when the limiting law goes below the best finite point
            assert _judged(p) == (lc >= c * (1 - 1e-9)), (p.id, lc, c)
        else:
            assert _judged(p), p.id
