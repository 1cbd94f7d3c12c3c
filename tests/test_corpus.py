"""Right answers by default, judged on a corpus of real scaling-law fits.

The corpus (tests/data/corpus, provenance in its README.md) holds real fits from public
studies: the 24 over-training laws and the Chinchilla replication read in place from
../shared/data, the OLMo model ladder's step-1 task fits and three Marin isoFLOP sweeps.  Each
problem comes with its model, objective (robust loss, f_scale, residual space, bounds), a
reasonable start (the paper's where published) and a best-known optimum found offline by an
exhaustive search that does not rely on lawfit alone (bench/corpus_optima.py).

``lawfit.fit`` with its default tolerances and budget, from each problem's start, must
  (a) end within RTOL (relative) of the best-known cost on at least 99% of the problems, and
  (b) report success only where it did so: a fit that says it converged must be at the optimum.

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


def _fit_defaults(problems):
    """lawfit.fit with default tolerances and max_nfev from every problem's start; one
    batched call per group of problems sharing a model and an objective."""
    out = {}
    groups = defaultdict(list)
    for p in problems:
        groups[p.group_key].append(p)
    for (model, loss, f_scale, residuals, _), ps in groups.items():
        r = lawfit.fit(model, [p.x for p in ps], [p.y for p in ps],
                       p0=np.stack([p.p0 for p in ps]),
                       bounds=(np.stack([p.lower for p in ps]),
                               np.stack([p.upper for p in ps])),
                       loss=loss, f_scale=f_scale, residuals=residuals)
        for i, p in enumerate(ps):
            out[p.id] = dict(cost=float(r.cost[i]), status=int(r.status[i]),
                             success=bool(r.success[i]), nfev=int(r.nfev[i]))
    return out


def _judge(problems, fits):
    rows = []
    for p in problems:
        f = fits[p.id]
        best = p.best["cost"]
        rel = (f["cost"] - best) / best if math.isfinite(f["cost"]) else math.inf
        rows.append(dict(id=p.id, source=p.source, rel=rel, reached=rel <= RTOL,
                         tight=p.best.get("from_start", {}).get("lawfit_tight", math.nan), **f))
    return rows


def _table(rows) -> str:
    by = defaultdict(list)
    for r in rows:
        by[r["source"]].append(r)
    lines = [f"{'source':26s} {'problems':>8s} {'reached':>8s} {'success, not reached':>21s}"
             f" {'max_nfev':>9s}  statuses of the misses"]
    for src, rs in list(by.items()) + [("all", rows)]:
        miss = [r for r in rs if not r["reached"]]
        false_ok = [r for r in miss if r["success"]]
        lines.append(
            f"{src:26s} {len(rs):8d} {sum(r['reached'] for r in rs):8d} {len(false_ok):21d}"
            f" {sum(r['status'] == 0 for r in rs):9d}  "
            f"{dict(sorted(Counter(r['status'] for r in miss).items()))}")
    miss = [r for r in rows if not r["reached"]]
    elsewhere = [r for r in miss if not r["tight"] <= RTOL]
    lines.append(f"of the {len(miss)} misses, {len(elsewhere)} end above the optimum even with "
                 "1e-15 tolerances and 20,000 evaluations from the same start (another local "
                 "minimum, or a very slow valley); the other "
                 f"{len(miss) - len(elsewhere)} are the stopping rules' and budget's")
    lines.append("misses (relative excess cost, status, success, nfev; and where lawfit goes "
                 "from the same start with 1e-15 tolerances and 20,000 evaluations):")
    for r in sorted((r for r in rows if not r["reached"]), key=lambda r: -r["rel"]):
        lines.append(f"  {r['id']:45s} {r['rel']:10.3e} status {r['status']:2d} "
                     f"success {str(r['success']):5s} nfev {r['nfev']:4d}   tight "
                     f"{r['tight']:9.2e}")
    return "\n".join(lines)


def _judged(p) -> bool:
    return p.best.get("judged", True)


def _check(problems):
    assert problems, "no corpus problems found"
    missing = [p.id for p in problems if "cost" not in p.best]
    assert not missing, f"problems without a best-known optimum: {missing}"
    skipped = [p.id for p in problems if not _judged(p)]
    problems = [p for p in problems if _judged(p)]
    rows = _judge(problems, _fit_defaults(problems))
    table = _table(rows) + (f"\nnot judged (no minimiser): {len(skipped)}: {skipped}"
                            if skipped else "")
    print("\n" + table)
    stale = [r["id"] for r in rows if r["rel"] < -STALE_RTOL]
    assert not stale, ("lawfit ended below the stored optimum: rerun "
                       f"bench/corpus_optima.py for {stale}\n{table}")
    reached = sum(r["reached"] for r in rows)
    false_success = [r["id"] for r in rows if r["success"] and not r["reached"]]
    problems_short = [f"{reached}/{len(rows)} problems reach the optimum "
                      f"(need >= {SHARE:.0%})"] if reached < SHARE * len(rows) else []
    if false_success:
        problems_short.append(f"success reported without reaching the optimum: "
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
