"""Property tests: every problem of a batch is solved on its own.

Random ragged batches (the list-of-arrays input form) mix healthy problems with every kind of
trouble a real batch has: zero-length and too-short problems, NaN / inf in x or y, x <= 0 for
the log-input models, extreme scales of y (1e-150 .. 1e150) and x (1e-3 .. 1e30), random
sigma, weights with zeros, random bounds around the start and fixed parameters.  On the
compiled backends:

* nothing crashes, every problem gets one valid ``lawfit.Status``;
* the data checks of ``lm.h`` step 1 give NONFINITE_DATA / TOO_FEW_POINTS exactly where the
  data say so (the expectation is computed here, from the spec, not from the library);
* every problem's result (x, cost, status, nfev, nit, active_mask) is bitwise the result of
  fitting it alone, and does not depend on the order of the batch or the thread count.

The NumPy reference agrees with the compiled backend on the data-check statuses and on the
success of the healthy problems.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lawfit
from lawfit import Status
from lawfit.reference.models import MODELS as REF_MODELS

from batches import model_batch
import corecall
from conftest import COMPILED

MODELS_UNDER_TEST = ["saturating_power_law", "chinchilla"]
TRUTH = {
    "saturating_power_law": np.array([1.8, 600.0, 0.34]),
    "chinchilla": np.array([1.69, 406.4, 410.7, 0.34, 0.28]),
}
LOSSES = ["linear", "soft_l1", "huber", "cauchy", "arctan"]
DATA_CHECKS = (Status.NONFINITE_DATA, Status.TOO_FEW_POINTS, Status.INVALID_INPUT)
FIELDS = ("x", "cost", "status", "nfev", "nit", "active_mask")
needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"),
                                    reason="needs Linux CPU affinity")

# Kinds of trouble in one problem's data.
CORRUPTIONS = ["none", "nan_y", "inf_y", "nan_x", "inf_x", "nonpos_x", "nonpos_y", "nan_sigma"]
# Kinds of bounds for one parameter (around its start p0_j).
BOUND_KINDS = ["free", "lower", "upper", "both", "fixed", "at_lower", "at_upper"]

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                       HealthCheck.function_scoped_fixture])


@dataclass
class Problem:
    x: np.ndarray                  # (m,) or (m, k)
    y: np.ndarray                  # (m,)
    sigma: Optional[np.ndarray]
    weights: Optional[np.ndarray]
    p0: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    healthy: bool                  # built well posed: must converge on every backend


@dataclass
class Batch:
    model: str
    problems: List[Problem]
    residuals: str
    loss: str
    use_sigma: bool
    use_weights: bool
    use_guess: bool = False   # no p0: the model's data-driven start (clipped to the bounds)

    def kwargs(self, idx=None):
        """lawfit.fit arguments for the problems ``idx`` (default: all), list form."""
        ps = self.problems if idx is None else [self.problems[i] for i in idx]
        kw = dict(
            p0=np.array([p.p0 for p in ps]).reshape(len(ps), -1),
            bounds=(np.array([p.lower for p in ps]).reshape(len(ps), -1),
                    np.array([p.upper for p in ps]).reshape(len(ps), -1)),
            residuals=self.residuals, loss=self.loss,
        )
        if self.use_guess:
            del kw["p0"]
        if self.use_sigma:
            kw["sigma"] = [p.sigma for p in ps]
        if self.use_weights:
            kw["weights"] = [p.weights for p in ps]
        return [p.x for p in ps], [p.y for p in ps], kw


def _inputs(model: str, rng, m: int, lo: float, hi: float) -> np.ndarray:
    """m inputs with log10 spread over [lo, hi]."""
    if model == "saturating_power_law":
        return np.sort(10.0 ** rng.uniform(lo, hi, m))
    n = 10.0 ** rng.uniform(lo, hi, m)
    return np.column_stack([n, n * 10.0 ** rng.uniform(0.5, 2.5, m)])


def _natural_inputs(model: str, rng, m: int) -> np.ndarray:
    return _inputs(model, rng, m, 6.0, 10.0) if model == "saturating_power_law" else \
        _inputs(model, rng, m, 7.0, 10.0)


@st.composite
def problems(draw, model: str, use_sigma: bool, use_weights: bool):
    n = TRUTH[model].size
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    mdl = lawfit.models.get(model)
    truth = TRUTH[model] * (1 + 0.05 * rng.standard_normal(n))
    healthy = draw(st.booleans())
    if healthy:
        m = draw(st.integers(15, 40))
        x = _natural_inputs(model, rng, m)
        with np.errstate(all="ignore"):
            y = mdl(x, *truth) * (1 + 0.01 * rng.standard_normal(m))
        p0 = truth * (1 + 0.1 * rng.uniform(-1, 1, n))
        lower, upper = np.full(n, -np.inf), np.full(n, np.inf)
        sigma = 10.0 ** rng.uniform(-0.3, 0.3, m) if use_sigma else None
        weights = rng.choice([1.0, 2.0, 3.0], m) if use_weights else None
        return Problem(x, y, sigma, weights, p0, lower, upper, True)

    m = draw(st.integers(0, 40))
    if draw(st.booleans()):
        x = _natural_inputs(model, rng, m)
    else:
        lo = draw(st.floats(-3.0, 30.0))
        hi = draw(st.floats(lo, 30.0))
        x = _inputs(model, rng, m, lo, hi)
    scale = 10.0 ** draw(st.sampled_from([0, 0, -150, -100, -30, 30, 100, 150]))
    noise = draw(st.sampled_from([0.0, 0.01, 0.3]))
    with np.errstate(all="ignore"):
        y = mdl(x, *truth) * (1 + noise * rng.standard_normal(m)) * scale
        if draw(st.integers(0, 4)) == 0:
            y = rng.standard_normal(m) * scale  # no law at all
    sigma = 10.0 ** rng.uniform(-3, 3, m) if use_sigma else None
    weights = None
    if use_weights:
        weights = rng.choice([0.0, 0.0, 0.5, 1.0, 2.0], m)
    corruption = draw(st.sampled_from(["none"] * 3 + CORRUPTIONS))
    if m > 0 and corruption != "none":
        idx = rng.choice(m, size=min(m, draw(st.integers(1, 3))), replace=False)
        xi = (idx,) if x.ndim == 1 else (idx, rng.integers(0, x.shape[1]))
        if corruption == "nan_y":
            y[idx] = np.nan
        elif corruption == "inf_y":
            y[idx] = rng.choice([np.inf, -np.inf], idx.size)
        elif corruption == "nan_x":
            x[xi] = np.nan
        elif corruption == "inf_x":
            x[xi] = rng.choice([np.inf, -np.inf], idx.size)
        elif corruption == "nonpos_x":
            x[xi] = rng.choice([0.0, -1.0, -1e10], idx.size)
        elif corruption == "nonpos_y":  # matters with log residuals only
            y[idx] = rng.choice([0.0, -1.0], idx.size)
        elif corruption == "nan_sigma" and sigma is not None:
            sigma[idx] = rng.choice([np.nan, np.inf], idx.size)
    # The start: near the truth, or scaled like y, or anywhere.
    p0 = truth * (1 + 0.3 * rng.uniform(-1, 1, n))
    if draw(st.booleans()):
        p0[:2] *= scale
    kinds = draw(st.lists(st.sampled_from(BOUND_KINDS), min_size=n, max_size=n))
    lower, upper = np.full(n, -np.inf), np.full(n, np.inf)
    for j, kind in enumerate(kinds):
        width = abs(p0[j]) * 10.0 ** rng.uniform(-3, 1) + 1e-3
        if kind in ("lower", "both"):
            lower[j] = p0[j] - width * rng.uniform(0, 1)
        if kind in ("upper", "both"):
            upper[j] = p0[j] + width * rng.uniform(0, 1)
        if kind == "fixed":
            lower[j] = upper[j] = p0[j]
        if kind == "at_lower":
            lower[j], upper[j] = p0[j], p0[j] + width
        if kind == "at_upper":
            lower[j], upper[j] = p0[j] - width, p0[j]
    return Problem(x, y, sigma, weights, p0, lower, upper, False)


@st.composite
def batches(draw, models=tuple(MODELS_UNDER_TEST), max_problems: int = 7):
    model = draw(st.sampled_from(list(models)))
    use_sigma = draw(st.booleans())
    use_weights = draw(st.booleans())
    residuals = draw(st.sampled_from(["linear", "log"]))
    loss = draw(st.sampled_from(LOSSES))
    ps = draw(st.lists(problems(model, use_sigma, use_weights),
                       min_size=1, max_size=max_problems))
    use_guess = lawfit.models.get(model).has_guess and draw(st.booleans())
    return Batch(model, ps, residuals, loss, use_sigma, use_weights, use_guess)


def expected_check(batch: Batch, p: Problem) -> Optional[Status]:
    """The status of lm.h step 1 for one problem, from the spec (None: it is solved).  A NaN
    in y or x is a missing point, left out (nan_policy="omit", the default)."""
    x = p.x.reshape(len(p.y), lawfit.models.get(batch.model).n_inputs)
    used = np.ones(len(p.y), bool) if p.weights is None else p.weights > 0
    used &= ~(np.isnan(p.y) | np.isnan(x).any(axis=1))
    with np.errstate(all="ignore"):
        bad = ~np.isfinite(x).all(axis=1)
        if REF_MODELS[batch.model].log_inputs:
            bad |= (x <= 0).any(axis=1)
        t = np.log(p.y) if batch.residuals == "log" else p.y
        bad |= ~np.isfinite(t)
        if p.sigma is not None:
            bad |= ~(np.isfinite(p.sigma) & (p.sigma > 0))
    if (bad & used).any():
        return Status.NONFINITE_DATA
    if used.sum() < (p.lower < p.upper).sum():
        return Status.TOO_FEW_POINTS
    return None


def run(batch: Batch, backend: str = "cpu", idx=None, **extra):
    x, y, kw = batch.kwargs(idx)
    with np.errstate(all="ignore"):
        return lawfit.fit(batch.model, x, y, backend=backend, **{**kw, **extra})


def differing_fields(a, b) -> list:
    """The fields in which results a and b are not bitwise equal."""
    return [f for f in FIELDS
            if not np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True)]


def assert_same_problem(a, i: int, b, j: int, what: str = ""):
    """Problem i of result a is bitwise problem j of result b."""
    for field in FIELDS:
        u, v = getattr(a, field)[i], getattr(b, field)[j]
        floats = np.asarray(u).dtype.kind == "f"
        assert np.array_equal(u, v, equal_nan=floats), (
            f"{what}: field {field!r} differs: {u!r} vs {v!r}"
            + (f" (difference {np.subtract(u, v)!r})" if floats else "")
        )


def check_statuses(batch: Batch, r):
    P = len(batch.problems)
    assert r.status.shape == (P,)
    assert r.x.shape == (P, TRUTH[batch.model].size)
    for i, (p, s) in enumerate(zip(batch.problems, r.status)):
        status = Status(int(s))  # a valid status code
        want = expected_check(batch, p)
        if want is not None:
            assert status == want, f"problem {i}: {status.name}, expected {want.name}"
        else:
            assert status not in (Status.NONFINITE_DATA, Status.TOO_FEW_POINTS,
                                  Status.INVALID_INPUT), f"problem {i}: {status.name}"


# --------------------------------------------------------------------------------------
# Compiled backends
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", COMPILED)
@settings(max_examples=100, **SETTINGS)
@given(batch=batches())
def test_each_problem_as_if_alone(backend, batch):
    r = run(batch, backend)
    check_statuses(batch, r)
    for i in range(len(batch.problems)):
        alone = run(batch, backend, idx=[i])
        assert_same_problem(r, i, alone, 0, f"problem {i} in the batch vs alone")


@pytest.mark.parametrize("backend", COMPILED)
@settings(max_examples=50, **SETTINGS)
@given(batch=batches(), order_seed=st.integers(0, 2**32 - 1))
def test_independent_of_order(backend, batch, order_seed):
    P = len(batch.problems)
    perm = np.random.default_rng(order_seed).permutation(P)
    r = run(batch, backend)
    rp = run(batch, backend, idx=list(perm))
    for k, i in enumerate(perm):
        assert_same_problem(r, i, rp, k, f"problem {i} at position {k} after permuting")


@settings(max_examples=30, **SETTINGS)
@given(batch=batches(max_problems=5))
def test_independent_of_thread_count(batch):
    # The CPU driver hands out problems in chunks of 64: tile the batch past a few chunks so
    # that several threads really share it.
    P = len(batch.problems)
    idx = list(np.arange(200) % P)
    results = [run(batch, "cpu", idx=idx, n_threads=t) for t in (1, 2, 3)]
    alone = [run(batch, "cpu", idx=[i], n_threads=1) for i in range(P)]
    for r, t in zip(results, (1, 2, 3)):
        for k, i in enumerate(idx):
            assert_same_problem(r, k, alone[i], 0, f"n_threads={t}, copy {k} of problem {i}")


def _grid_starts(batch: Batch) -> np.ndarray:
    """Grid starts for every problem of ``batch``: its start and two scaled copies, clipped
    into its bounds, (P, 3, n)."""
    p0 = np.array([p.p0 for p in batch.problems])
    lo = np.array([p.lower for p in batch.problems])
    hi = np.array([p.upper for p in batch.problems])
    starts = np.clip(p0[:, None, :] * np.array([1.0, 0.7, 1.3])[None, :, None],
                     lo[:, None, :], hi[:, None, :])
    return starts


@settings(max_examples=40, **SETTINGS)
@given(batch=batches(max_problems=5), chunk=st.integers(1, 6), threads=st.integers(1, 3),
       grid_k=st.sampled_from([None, 1, 2, "all"]))
def test_fits_alone_under_any_chunk_size_threads_and_grid(batch, chunk, threads, grid_k):
    """A problem's fit, from its p0 or from a grid of starts (refined k at a time), is
    bitwise its fit alone, for any chunk_size and thread count."""
    extra = {}
    if grid_k is not None:
        starts = _grid_starts(batch)
        batch.use_guess = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lawfit.FragileFitWarning)
        r = run(batch, "cpu", chunk_size=chunk, n_threads=threads,
                **({} if grid_k is None else dict(p0=lawfit.grid(starts=starts), k=grid_k)))
        for i in range(len(batch.problems)):
            if grid_k is not None:
                extra = dict(p0=lawfit.grid(starts=starts[i:i + 1]), k=grid_k)
            alone = run(batch, "cpu", idx=[i], n_threads=1, **extra)
            assert_same_problem(r, i, alone, 0, f"problem {i}, chunk_size={chunk}, "
                                                f"n_threads={threads}, k={grid_k}")


def _alone_at(batch: Batch, i: int) -> Batch:
    """The batch with every problem but i made empty, problem i at its index (a resample's
    stream is keyed by its problem's index): the problem as good as alone."""
    k = lawfit.models.get(batch.model).n_inputs
    n = TRUTH[batch.model].size

    def empty(p: Problem) -> Problem:
        none = np.empty(0)
        return Problem(np.empty((0,) if k == 1 else (0, k)), none,
                       None if p.sigma is None else none, None if p.weights is None else none,
                       p.p0, np.full(n, -np.inf), np.full(n, np.inf), False)

    return Batch(batch.model, [p if j == i else empty(p) for j, p in
                               enumerate(batch.problems)], batch.residuals, batch.loss,
                 batch.use_sigma, batch.use_weights, batch.use_guess)


def boot(batch: Batch, method: str, R: int, **kw):
    """lawfit.bootstrap of a Batch on the CPU, clusters of two points for "grouped"."""
    from lawfit.bootstrap import BootstrapWarning

    x, y, args = batch.kwargs()
    clusters = [np.arange(len(p.y)) // 2.0 for p in batch.problems] \
        if method == "grouped" else None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", BootstrapWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        b = lawfit.bootstrap(batch.model, x, y, n_resamples=R, seed=7, method=method,
                             clusters=clusters, backend="cpu", **args, **kw)
        b.jackknife()
    return b


@settings(max_examples=50, **SETTINGS)
@given(batch=batches(max_problems=4), method=st.sampled_from(["pairs", "grouped", "residual"]),
       R=st.integers(1, 4), chunks=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       threads=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dtype=st.sampled_from(["float64", "float32"]))
def test_bootstrap_alone_under_any_batch_chunk_size_and_threads(batch, method, R, chunks,
                                                                threads, dtype):
    """A problem's full-data fit, bootstrap samples and statuses, and jackknife are bitwise
    the same inside any batch (empty, poisoned and differently bounded neighbours) as with
    its neighbours emptied, whatever the chunk_size and thread count of either call, in
    either precision (fixed parameters that fp32 cannot represent included)."""
    b = boot(batch, method, R, chunk_size=chunks[0], n_threads=threads[0], dtype=dtype)
    jk = b.jackknife()
    for i in range(len(batch.problems)):
        a = boot(_alone_at(batch, i), method, R, chunk_size=chunks[1], n_threads=threads[1],
                 dtype=dtype)
        what = f"problem {i}, chunk_size {chunks}, n_threads {threads}"
        assert_same_problem(b.fit, i, a.fit, i, what)
        np.testing.assert_array_equal(b.status[i], a.status[i], err_msg=what)
        np.testing.assert_array_equal(b.samples[i], a.samples[i], err_msg=what)
        ja = a.jackknife()
        J = min(jk.shape[1], ja.shape[1])
        np.testing.assert_array_equal(jk[i, :J], ja[i, :J], err_msg=what)
        assert np.isnan(jk[i, J:]).all() and np.isnan(ja[i, J:]).all(), what
        if not b.fit.success[i]:  # not resampled: NaN, the full fit's status
            assert np.isnan(b.samples[i]).all() and np.all(b.status[i] == b.fit.status[i])


def test_tiled_batch_threads_and_chunks(compiled_backend):
    """A large batch (many CPU chunks) is bitwise the same for any thread count."""
    x, y, _, p0 = model_batch("chinchilla", n_problems=300, n_points=25, seed=3)
    y = y.copy()
    y[::7, 3] = np.nan  # padded form: NaN marks a missing point
    kw = dict(p0=p0, backend=compiled_backend)
    ref = lawfit.fit("chinchilla", x, y, n_threads=1, **kw)
    for t in (2, 3, 5):
        r = lawfit.fit("chinchilla", x, y, n_threads=t, **kw)
        for f in FIELDS:
            assert np.array_equal(getattr(r, f), getattr(ref, f), equal_nan=True), (t, f)
    assert ref.success.all()


@needs_affinity
def test_threads_follow_the_affinity_mask():
    """The default thread count is the CPUs this process may use (not the machine's), and
    more threads than CPUs (helpers left unpinned) or as many (helpers pinned) give the same
    results as one."""
    from lawfit import _core

    old = os.sched_getaffinity(0)
    assert _core.hardware_threads() == len(old)
    x, y, _, p0 = model_batch("saturating_power_law", n_problems=2000, n_points=20, seed=4)
    ref = lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=1)
    assert ref.success.all()
    try:
        os.sched_setaffinity(0, {min(old)})
        assert _core.hardware_threads() == 1
        runs = [lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=t) for t in (None, 3)]
    finally:
        os.sched_setaffinity(0, old)
    runs += [lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=t)
             for t in (None, len(old))]
    for r in runs:
        assert not differing_fields(r, ref)


@needs_affinity
def test_fits_leave_the_callers_cpu_mask_alone():
    """Helper threads pin themselves; the calling thread's CPU mask never changes.  (Pinned
    from the caller, a helper that had already finished was pinned by a thread id of 0, which
    means the caller.)"""
    old = os.sched_getaffinity(0)
    x, y, _, p0 = model_batch("saturating_power_law", n_problems=130, n_points=5, seed=5)
    for _ in range(300):
        lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=max(2, len(old)))
        assert os.sched_getaffinity(0) == old


def test_concurrent_calls_and_a_forked_child_get_the_same_results():
    """Calls from several Python threads at once (one holds the pool of helper threads, the
    others start their own), and calls in a forked child (whose parent's pool did not survive
    the fork), give the results of one call alone."""
    import threading

    x, y, _, p0 = model_batch("saturating_power_law", n_problems=3000, n_points=12, seed=6)
    ref = lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=1)
    out, errors = {}, []

    def work(i):
        try:
            for _ in range(5):
                out[i] = lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=2)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(out) == 4
    for r in out.values():
        assert not differing_fields(r, ref)
    if not hasattr(os, "fork"):
        return
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if its fits match
        code = 1
        try:
            for _ in range(3):
                r = lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=2)
            code = 2 if differing_fields(r, ref) else 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 120
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child did not finish its fits (a helper pool deadlock?)")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def test_roused_helpers_wait_briefly_then_sleep():
    """rouse_helpers wakes the pooled helper threads ahead of a fit (lawfit.fit does it
    before packing); they wait awake about a millisecond, then sleep again, and the fits
    that follow give the results of a fit alone."""
    from lawfit import _core

    x, y, _, p0 = model_batch("saturating_power_law", n_problems=3000, n_points=12, seed=9)
    ref = lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=1)
    assert not differing_fields(lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=2),
                                ref)
    time.sleep(0.05)
    t0, w0 = time.process_time(), time.perf_counter()
    for _ in range(20):
        _core.rouse_helpers(2, 3000, 36000)
        time.sleep(0.01)
    used, wall = time.process_time() - t0, time.perf_counter() - w0
    assert used < 0.5 * wall, (used, wall)  # helpers awake all along would use all of it
    _core.rouse_helpers(0, 1, 1)  # a call too small for helpers: nothing to do
    r = lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=2)
    assert not differing_fields(r, ref)


def test_a_shared_grid_is_passed_once_with_the_same_results():
    """A padded batch on one grid reaches the CPU core as the grid's inputs alone
    (x_shared), with bitwise the results of inputs repeated per point; a problem whose point
    count differs from the grid's is refused, naming x_shared."""
    from lawfit import _core, _packing, models

    m = models.get("saturating_power_law")
    x, y, _, p0 = model_batch("saturating_power_law", n_problems=300, n_points=15, seed=7)
    pk = _packing.pack(m, x, y, p0=p0)
    assert pk.inputs_grid is not None and pk.inputs_grid.shape == (15, 1)
    kw = dict(log_residuals=False, loss="linear", f_scale=1.0, ftol=1e-8, xtol=1e-8,
              gtol=1e-8, max_nfev=100, initial_damping=1e-3, n_threads=2, return_jtj=True)
    args = (pk.target, None, None, pk.offsets, pk.p0, pk.lower, pk.upper)
    per_point = corecall.fit(_core.fit, m.name, pk.inputs, *args, **kw)
    shared = corecall.fit(_core.fit, m.name, pk.inputs_grid, *args, x_shared=True, **kw)
    for f in per_point:
        assert np.array_equal(per_point[f], shared[f], equal_nan=True), f
    ragged = pk.offsets.copy()
    ragged[1] -= 1  # problem 0 has 14 points, problem 1 has 16
    with pytest.raises(ValueError, match="x_shared: problem 0 has 14 points, x has 15 rows"):
        corecall.fit(_core.fit, m.name, pk.inputs_grid, pk.target, None, None, ragged, pk.p0,
                     pk.lower, pk.upper, x_shared=True, **kw)
    # The CPU backend passes the grid as it is: the inputs per point are never made.
    from lawfit._backends import Cpu
    from lawfit._options import Options

    pk = _packing.pack(m, x, y, p0=p0)
    out = Cpu().solve(pk, Options(max_nfev=100))
    assert callable(pk._inputs) and callable(pk._x)
    assert np.array_equal(out["x"], per_point["x"])
    y = y.copy()
    y[3, 2] = np.nan  # a missing point: inputs per point again
    assert _packing.pack(m, x, y, p0=p0).inputs_grid is None


def test_bounds_given_once_are_passed_once_with_the_same_results():
    """Bounds given once for all problems stay one row: pack keeps them as a broadcast view
    and the CPU core reads that row (bounds_shared), with bitwise the results of a row per
    problem; a shared bounds array with more than one row is refused, naming it."""
    from lawfit import _core, _packing, models

    m = models.get("saturating_power_law")
    x, y, _, p0 = model_batch("saturating_power_law", n_problems=300, n_points=15, seed=8)
    lo, hi = [0.0, 0.0, 0.05], [np.inf, 720.0, 2.0]  # A stops at 720 in some problems
    pk = _packing.pack(m, x, y, p0=p0, bounds=(lo, hi))
    assert pk.lower.strides[0] == 0 and not pk.lower.flags.writeable
    kw = dict(log_residuals=False, loss="linear", f_scale=1.0, ftol=1e-8, xtol=1e-8,
              gtol=1e-8, max_nfev=100, initial_damping=1e-3, n_threads=2, return_jtj=True)
    args = (m.name, pk.inputs, pk.target, None, None, pk.offsets, pk.p0)
    per_problem = corecall.fit(_core.fit, *args, np.ascontiguousarray(pk.lower),
                               np.ascontiguousarray(pk.upper), **kw)
    shared = corecall.fit(_core.fit, *args, np.array([lo]), np.array([hi]),
                          bounds_shared=True, **kw)
    assert (per_problem["active_mask"] != 0).any()  # the bounds are met somewhere
    for f in per_problem:
        assert np.array_equal(per_problem[f], shared[f], equal_nan=True), f
    with pytest.raises(ValueError, match="lower"):
        corecall.fit(_core.fit, *args, np.ascontiguousarray(pk.lower),
                     np.ascontiguousarray(pk.upper), bounds_shared=True, **kw)
    r = lawfit.fit(m.name, x, y, p0=p0, bounds=(lo, hi), backend="cpu")
    assert np.array_equal(r.x, per_problem["x"]) and np.array_equal(r.status, shared["status"])
    with pytest.raises(ValueError, match="bounds: lower bound 3.0 exceeds upper bound 2.0 "
                                         "for parameter 'alpha' of problem 0"):
        lawfit.fit(m.name, x, y, p0=p0, bounds=([0, 0, 3.0], hi))


def _core_of(cpu):
    base = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
    try:
        with open(base + "physical_package_id") as f, open(base + "core_id") as g:
            return int(f.read()), int(g.read())
    except OSError:
        return ("cpu", cpu)


@needs_affinity
def test_helper_threads_get_cpus_of_their_own():
    """Helper threads are pinned to distinct CPUs of the affinity mask, a free core each
    before any SMT sibling; never more threads than CPUs."""
    from lawfit import _core

    cpus = sorted(os.sched_getaffinity(0))
    cores = {_core_of(c) for c in cpus}
    assert _core.helper_cpus(1) == []
    assert _core.helper_cpus(len(cpus) + 1) == []
    for t in range(2, len(cpus) + 1):
        got = _core.helper_cpus(t)
        assert len(got) == t - 1 and len(set(got)) == t - 1 and set(got) <= set(cpus), (t, got)
        # The caller's CPU is not known here (it may move), but while free cores remain,
        # no two helpers share one.
        k = min(t - 1, len(cores) - 1)
        assert len({_core_of(c) for c in got[:k]}) == k, (t, got)


@needs_affinity
def test_a_thread_budget_below_the_mask_leaves_helpers_unpinned(monkeypatch):
    """A process on a budget (n_threads or LAWFIT_NUM_THREADS below its CPUs, as each of
    several workers on one host) leaves its helpers to the scheduler rather than stacking
    them on the CPUs every process would pick; the whole mask pins them; LAWFIT_PIN forces
    either; the results are the same bits whichever."""
    from lawfit import _core

    cpus = sorted(os.sched_getaffinity(0))
    n = len(cpus)
    monkeypatch.delenv("LAWFIT_PIN", raising=False)
    monkeypatch.delenv("LAWFIT_NUM_THREADS", raising=False)
    assert _core.call_cpus(1, 0) == []
    assert _core.call_cpus(n + 1, 0) == [-1] * n  # more threads than CPUs: none pinned
    if n >= 2:
        assert _core.call_cpus(n, 0) == _core.helper_cpus(n)  # the whole mask: pinned
        assert _core.call_cpus(n, n) == _core.helper_cpus(n)
        assert _core.call_cpus(2, 1) == [-1]  # a budget of 1 (its extra helper unpinned)
        monkeypatch.setenv("LAWFIT_NUM_THREADS", "1")
        assert _core.hardware_threads() == 1
        assert _core.call_cpus(n, 0) == [-1] * (n - 1)
        monkeypatch.setenv("LAWFIT_PIN", "1")
        assert _core.call_cpus(n, 0) == _core.helper_cpus(n)
        monkeypatch.setenv("LAWFIT_PIN", "0")
        monkeypatch.delenv("LAWFIT_NUM_THREADS")
        assert _core.call_cpus(n, 0) == [-1] * (n - 1)
    x, y, _, p0 = model_batch("saturating_power_law", n_problems=3000, n_points=20, seed=4)
    ref = lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=1)
    for pin in ("0", "1"):
        monkeypatch.setenv("LAWFIT_PIN", pin)
        for t in (2, max(n, 2)):
            assert not differing_fields(
                lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=t), ref), (pin, t)


def test_the_default_thread_budget_follows_the_environment_and_dask(monkeypatch):
    import sys
    import types

    from lawfit._options import default_threads

    monkeypatch.delenv("LAWFIT_NUM_THREADS", raising=False)
    monkeypatch.delitem(sys.modules, "distributed", raising=False)
    assert default_threads() is None
    monkeypatch.setenv("LAWFIT_NUM_THREADS", "3")
    assert default_threads() == 3
    for bad in ("0", "-2", "two", "1.5", "99999"):
        monkeypatch.setenv("LAWFIT_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="LAWFIT_NUM_THREADS: expected an integer"):
            lawfit.fit("saturating_power_law", [1.0, 2.0, 3.0, 4.0], [3.0, 2.0, 1.8, 1.7],
                       p0=[1.0, 2.0, 1.0])
    monkeypatch.delenv("LAWFIT_NUM_THREADS")
    # Inside a Dask worker's task: the worker's own thread budget.
    worker = types.SimpleNamespace(state=types.SimpleNamespace(nthreads=5))
    fake = types.ModuleType("distributed")
    fake.get_worker = lambda: worker
    monkeypatch.setitem(sys.modules, "distributed", fake)
    assert default_threads() == 5

    def outside():
        raise ValueError("No worker found")

    fake.get_worker = outside
    assert default_threads() is None


# --------------------------------------------------------------------------------------
# NaN neighbours
# --------------------------------------------------------------------------------------

def _poisons(model: str, x: np.ndarray, y: np.ndarray, nan_policy: str = "propagate"):
    """(name, x, y, expected status) of neighbours with bad data or a bad start.  Under
    nan_policy="omit" a NaN is a missing point: the problem is fitted without it (expected
    status None: not a data check), or has too few points when all are missing."""
    out = []
    for name in ("nan_y", "inf_y", "nan_x", "inf_x", "zero_x", "neg_x", "huge_y", "all_nan"):
        xb, yb = x.copy(), y.copy()
        want = Status.NONFINITE_DATA
        if nan_policy == "omit" and name.startswith("nan"):
            want = None
        elif nan_policy == "omit" and name == "all_nan":
            want = Status.TOO_FEW_POINTS
        if name == "nan_y":
            yb[2] = np.nan
        elif name == "inf_y":
            yb[-1] = np.inf
        elif name == "nan_x":
            xb[1] = np.nan
        elif name == "inf_x":
            xb[0] = np.inf
        elif name == "zero_x":
            xb[4] = 0.0
        elif name == "neg_x":
            xb[4] = -3.0
        elif name == "huge_y":
            yb[:] = 1e300  # finite data, whose cost overflows at the start
            want = Status.NONFINITE_INITIAL
        elif name == "all_nan":
            yb[:] = np.nan
        out.append((name, xb, yb, want))
    return out


@pytest.mark.parametrize("nan_policy", ["propagate", "omit"])
@pytest.mark.parametrize("model", MODELS_UNDER_TEST)
def test_nan_neighbour_changes_nothing(model, compiled_backend, nan_policy):
    x, y, _, p0 = model_batch(model, n_problems=3, n_points=20, seed=5)
    alone = [lawfit.fit(model, [x], [y[i]], p0=p0[i], backend=compiled_backend)
             for i in range(3)]
    for name, xb, yb, want in _poisons(model, x, y[1], nan_policy):
        for pos in range(3):
            # healthy problems 0 and 2, with the poisoned one at position pos
            order = [0, 2]
            order.insert(pos, "bad")
            xs = [xb if o == "bad" else x for o in order]
            ys = [yb if o == "bad" else y[o] for o in order]
            p0s = np.array([p0[1] if o == "bad" else p0[o] for o in order])
            with np.errstate(all="ignore"):
                r = lawfit.fit(model, xs, ys, p0=p0s, backend=compiled_backend,
                               nan_policy=nan_policy)
            got = Status(int(r.status[pos]))
            if want is None:
                assert got not in DATA_CHECKS, (name, pos, r.status)
            else:
                assert got == want, (name, pos, r.status)
            for k, o in enumerate(order):
                if o != "bad":
                    assert alone[o].success[0]
                    assert_same_problem(r, k, alone[o], 0, f"{name} neighbour at {pos}")


def test_nan_neighbour_padded_and_groups_forms(compiled_backend):
    """The same in the padded and flat+groups forms (inf poisons; NaN in padded y is a gap)."""
    model = "saturating_power_law"
    x, y, _, p0 = model_batch(model, n_problems=2, n_points=16, seed=9)
    alone = lawfit.fit(model, x[:, 0], y[0], p0=p0[0], backend=compiled_backend)
    yp = np.vstack([y[0], y[1]])
    yp[1, 5] = np.inf
    r = lawfit.fit(model, x[:, 0], yp, p0=p0, backend=compiled_backend)
    assert list(r.status[1:]) == [Status.NONFINITE_DATA]
    assert_same_problem(r, 0, alone, 0, "padded form")
    xf = np.concatenate([x[:, 0], x[:, 0]])
    xf[16 + 3] = np.nan
    g = np.repeat(["a", "b"], 16)
    r = lawfit.fit(model, xf, yp.reshape(-1), groups=g, p0=p0, backend=compiled_backend)
    assert r.status[1] == Status.NONFINITE_DATA
    assert_same_problem(r, 0, alone, 0, "groups form")


# --------------------------------------------------------------------------------------
# The data-driven start
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["saturating_power_law", "power_law"])
def test_default_start_independent_of_batch(model):
    """Without p0 the model's guess is the start; it must not depend on the other problems
    (their lengths, empty problems included, anywhere in the batch)."""
    rng = np.random.default_rng(0)
    truth = {"saturating_power_law": [1.8, 600.0, 0.34], "power_law": [5.0, 0.5]}[model]
    mdl = lawfit.models.get(model)
    xs, ys = [], []
    for m in (12, 30, 0, 7, 40, 0):
        x = np.geomspace(1e6, 1e10, m) if model == "saturating_power_law" else \
            np.geomspace(1e1, 1e5, m)
        xs.append(x)
        ys.append(mdl(x, *truth) * (1 + 0.01 * rng.standard_normal(m)))
    batch = lawfit.fit(model, xs, ys, backend="cpu")
    for i in range(len(xs)):
        alone = lawfit.fit(model, [xs[i]], [ys[i]], backend="cpu")
        assert_same_problem(batch, i, alone, 0, f"{model} problem {i}, default start")


# --------------------------------------------------------------------------------------
# The NumPy reference
# --------------------------------------------------------------------------------------


@settings(max_examples=25, **SETTINGS)
@given(batch=batches(max_problems=5))
def test_reference_agrees_on_checks_and_success(batch):
    cpu = run(batch, "cpu")
    ref = run(batch, "numpy")
    assert ref.status.shape == cpu.status.shape
    for i, p in enumerate(batch.problems):
        c, n = Status(int(cpu.status[i])), Status(int(ref.status[i]))
        if c in DATA_CHECKS or n in DATA_CHECKS:
            assert c == n, f"problem {i}: cpu {c.name}, numpy {n.name}"
        if p.healthy:
            assert cpu.success[i] == ref.success[i], f"problem {i}: cpu {c.name}, numpy {n.name}"
