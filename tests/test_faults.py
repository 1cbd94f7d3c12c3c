"""The CPU core under faults and hostile use: an exception on any thread (memory running out)
reaches Python with every thread stopped and the process intact; Ctrl-C stops a long call,
even inside one huge problem, and the next call gives the same results; concurrent calls,
fork, spawn and forkserver give the results of a call alone; n_threads is capped.

Subprocess tests run a short script (CHILD below) with the lawfit this process imported.
Timeouts are generous (a loaded 2-core machine); none of them measures speed.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

import lawfit
from lawfit import _core
from lawfit._options import Options

from batches import model_batch

# Set by tests/sanitize/run.sh: the core runs under AddressSanitizer, which reserves far more
# address space than any RLIMIT_AS test could allow.
SANITIZED = os.environ.get("LAWFIT_SANITIZE") == "1"

FIT_FIELDS = ("x", "cost", "status", "nfev", "nit", "active_mask")

# The child processes' shared code: direct calls of lawfit._core.fit on one packed batch of
# saturating power laws (a known, single call into the core, whatever the Python layer does
# around it).  units(n_points, n_units) fits n_units starts (or, with resample=True, bootstrap
# resamples) of problems of n_points points each.
CHILD_COMMON = textwrap.dedent("""
    import os, signal, sys, time
    import numpy as np
    from lawfit import _core
    from lawfit._options import Options

    def call(sizes, units_of, *, threads, engine="auto", resample=False, max_nfev=50,
             tol=1e-8):
        xs, ys = [], []
        for n in sizes:
            x = np.geomspace(1.0, 1e4, n)
            xs.append(np.log(x))
            ys.append(1.5 + 3.0 * x ** -0.4 * (1 + 0.01 * np.sin(np.arange(n))))
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        data_of = np.asarray(units_of, dtype=np.int64)
        U = len(data_of)
        p0 = np.tile([1.4, 2.9, 0.39], (U, 1)) * (1 + 1e-3 * (np.arange(U) % 7))[:, None]
        inf = np.full((U, 3), np.inf)
        extra = dict(resample_of=np.arange(U, dtype=np.uint32), seed=1) if resample else {}
        return _core.fit("saturating_power_law",
                         dict(x=np.concatenate(xs)[:, None], t=np.concatenate(ys),
                              offsets=offsets),
                         dict(p0=p0, lower=-inf, upper=inf),
                         Options(ftol=tol, xtol=tol, gtol=tol, max_nfev=max_nfev),
                         dict(data_of=data_of, **extra), n_threads=threads, engine=engine)

    def guess(n, n_alphas):  # the scalar guess (n > 4096 points) of one problem
        x = np.geomspace(1.0, 1e4, n)
        y = 1.5 + 3.0 * x ** -0.4
        return _core.guess_saturating_power_law(np.log(x), y, np.array([0, n]),
                                                np.geomspace(0.01, 3.0, n_alphas),
                                                np.array([0.9, 1.0, 1.1]), n_threads=1)

    def same(a, b):
        return all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)

    def small():
        return call([5000, 30], [0] * 70 + [1] * 70, threads=2, resample=True)
""")


def run_child(body: str, *args, timeout: float = 300, **kw):
    """Runs CHILD_COMMON + body in a fresh interpreter that imports this process's lawfit."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(lawfit.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    code = CHILD_COMMON + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def finish(proc, timeout: float):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the child did not finish within {timeout} s\n{out}\n{err}")
    return out, err


# --------------------------------------------------------------------------- exceptions

@pytest.mark.skipif(SANITIZED or not sys.platform.startswith("linux"),
                    reason="needs Linux's RLIMIT_AS (and no sanitizer's shadow memory)")
def test_memory_running_out_on_any_thread_raises_memory_error():
    """Under an address-space limit that leaves no room for a huge problem's resample
    buffer, a bootstrap-style call on 2 threads of a chunk of small problems and chunks of a
    huge one fails on one thread while the other is solving: MemoryError in Python (main:
    std::terminate, or a crash as run() unwound under a working helper), and the process
    then fits as before."""
    proc = run_child("""
        import resource
        def vm_bytes():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmSize:"):
                        return int(line.split()[1]) * 1024
        ref = small()
        n = 4_000_000
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        # Inputs made in call() (about 5 arrays of n), then half of a 16 n-byte buffer.
        resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + 40 * n + 8 * n, hard))
        try:
            call([5000, n], [0] * 64 + [1] * 66, threads=2, resample=True)
            print("no error")
        except MemoryError:
            print("MemoryError")
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        print("same" if same(small(), ref) else "different")
    """)
    out, err = finish(proc, 300)
    assert proc.returncode == 0, (proc.returncode, out, err)
    assert out.split() == ["MemoryError", "same"], (out, err)


def test_an_exception_on_any_thread_stops_the_call_and_leaves_the_core_usable():
    """Injected allocation failures (lawfit._core.testing.fail_allocations) on the caller's or a
    helper's thread, once or on several threads at once: every call raises MemoryError,
    and a call after them gives the results of a call before, bitwise."""
    x, y, _, p0 = model_batch("saturating_power_law", n_problems=3, n_points=20, seed=3)
    ref = lawfit.bootstrap("saturating_power_law", x, y, p0=p0, n_resamples=50, seed=2,
                           n_threads=2)
    n = 5000
    xs = np.geomspace(1.0, 1e4, n)
    args = dict(
        x=np.log(xs)[:, None], t=1.5 + 3.0 * xs**-0.4 * (1 + 0.01 * np.sin(np.arange(n))),
        offsets=np.array([0, n], dtype=np.int64))
    U = 256
    p0u = np.tile([1.4, 2.9, 0.39], (U, 1))
    inf = np.full((U, 3), np.inf)

    def call(threads):
        return _core.fit("saturating_power_law", args, dict(p0=p0u, lower=-inf, upper=inf),
                         Options(max_nfev=50),
                         dict(data_of=np.zeros(U, dtype=np.int64),
                              resample_of=np.arange(U, dtype=np.uint32), seed=1),
                         n_threads=threads)

    alone = call(1)
    try:
        for threads in (1, 2, 3):
            for failures in (1, 2, 3):
                for _ in range(4):
                    _core.testing.fail_allocations(failures)
                    with pytest.raises(MemoryError):
                        call(threads)
    finally:
        _core.testing.fail_allocations(0)
    again = call(2)
    assert all(np.array_equal(alone[k], again[k], equal_nan=True) for k in alone)
    after = lawfit.bootstrap("saturating_power_law", x, y, p0=p0, n_resamples=50, seed=2,
                             n_threads=2)
    assert np.array_equal(ref.samples, after.samples, equal_nan=True)


# --------------------------------------------------------------------------- interrupts

# The long calls, each minutes long without an interrupt: many starts in the SIMD lanes on
# 2 threads; starts of one huge problem in the scalar solve on the calling thread alone; on
# 2 threads a chunk of small problems and one of huge ones (the caller may finish its own
# and wait for a helper); the data-driven guess of one large problem over many alphas.
LONG_CALLS = {
    "guess": "guess(400_000, 20_000)",
    "lanes": "call([1000], [0] * 1_000_000, threads=2, max_nfev=1000, tol=0.0)",
    "huge_problem": "call([1_000_000], [0] * 64, threads=1, max_nfev=1000, tol=0.0)",
    "waiting_caller": ("call([20, 1_000_000], [0] * 64 + [1] * 64, threads=2, engine='scalar',"
                       " max_nfev=1000, tol=0.0)"),
}


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32",
                    reason="needs POSIX signals")
@pytest.mark.parametrize("kind", sorted(LONG_CALLS))
def test_ctrl_c_stops_a_long_call_and_the_next_call_works(kind):
    """SIGINT half a second into a call of minutes: KeyboardInterrupt within seconds (main:
    only once the call ends), and the next call gives the results of one before, bitwise."""
    proc = run_child(f"""
        ref = small()
        print("ready", flush=True)
        t0 = time.monotonic()
        try:
            {LONG_CALLS[kind]}
            print("finished", flush=True)
        except KeyboardInterrupt:
            print("interrupted", round(time.monotonic() - t0, 2), flush=True)
        print("same" if same(small(), ref) else "different", flush=True)
    """)
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = finish(proc, 30)
    words = out.split()
    assert proc.returncode == 0, (proc.returncode, out, err)
    assert words[0] == "interrupted" and words[-1] == "same", (out, err)


# --------------------------------------------------------------------------- threads

def _same_fit(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True) for f in FIT_FIELDS)


def test_python_threads_calling_fit_and_bootstrap_at_once_get_their_alone_results():
    """Several Python threads at once, fitting and bootstrapping (one holds the pool of
    helper threads, the others start their own): each result is bitwise the call alone's."""
    x, y, _, p0 = model_batch("saturating_power_law", n_problems=2000, n_points=12, seed=6)
    xb, yb, _, p0b = model_batch("saturating_power_law", n_problems=4, n_points=25, seed=7)
    fit_ref = lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=1)
    boot_ref = lawfit.bootstrap("saturating_power_law", xb, yb, p0=p0b, n_resamples=300,
                                seed=5, n_threads=1)
    bad, errors = [], []

    def work(i):
        try:
            for _ in range(4):
                if i % 2:
                    r = lawfit.bootstrap("saturating_power_law", xb, yb, p0=p0b,
                                         n_resamples=300, seed=5, n_threads=2)
                    ok = (np.array_equal(r.samples, boot_ref.samples, equal_nan=True)
                          and np.array_equal(r.status, boot_ref.status))
                else:
                    ok = _same_fit(lawfit.fit("saturating_power_law", x, y, p0=p0,
                                              n_threads=2), fit_ref)
                if not ok:
                    bad.append(i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread did not finish (deadlock?)"
    assert not errors, errors
    assert not bad, f"threads {bad} got results unlike the call alone"


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_a_fit_nested_in_a_signal_handler_gets_its_own_lane_buffer():
    """A Python signal handler runs at the core's interrupt poll, on the calling thread and
    inside its call, while the thread's kept lane buffer (cpu_driver.h, ThreadBuffers) is in
    use: a fit made there gets a buffer of its own, and both fits give their results alone."""
    x, y, _, p0 = model_batch("saturating_power_law", n_problems=300_000, n_points=20, seed=8)
    xs, ys, _, p0s = model_batch("saturating_power_law", n_problems=5, n_points=20, seed=9)
    outer_ref = lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=1)
    inner_ref = lawfit.fit("saturating_power_law", xs, ys, p0=p0s, n_threads=1)
    state = {"in_call": False, "inner": []}

    def handler(signum, frame):
        state["inner"].append((state["in_call"], lawfit.fit("saturating_power_law", xs, ys,
                                                            p0=p0s, n_threads=1)))

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.005, 0.005)
        state["in_call"] = True
        outer = lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=1)
        state["in_call"] = False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    nested = [r for inside, r in state["inner"] if inside]
    assert nested, "no handler ran inside the call"
    assert _same_fit(outer, outer_ref)
    assert all(_same_fit(r, inner_ref) for r in nested)


# --------------------------------------------------------------------------- processes

def _fit_in_child(x, y, p0):
    """A start method's child: fits on 2 threads (a pool of its own)."""
    r = lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=2)
    return {f: getattr(r, f) for f in FIT_FIELDS}


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_start_methods_never_deadlock_with_the_pool_alive(method):
    """multiprocessing with each start method, while this process's helper pool is alive
    and another thread keeps fitting (the pool, and the locks of the core, may be held at the
    fork): the child's fits finish, bitwise the parent's."""
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method!r} start method here")
    x, y, _, p0 = model_batch("saturating_power_law", n_problems=1000, n_points=12, seed=8)
    ref = lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=2)
    stop = threading.Event()

    def keep_fitting():
        while not stop.is_set():
            lawfit.fit("saturating_power_law", x, y, p0=p0, n_threads=2)

    busy = threading.Thread(target=keep_fitting)
    busy.start()
    try:
        ctx = multiprocessing.get_context(method)
        with warnings.catch_warnings():  # Python 3.12+ warns of fork with threads running
            warnings.simplefilter("ignore", DeprecationWarning)
            with ctx.Pool(2) as pool:
                jobs = [pool.apply_async(_fit_in_child, (x, y, p0)) for _ in range(4)]
                outs = [j.get(timeout=240) for j in jobs]
    finally:
        stop.set()
        busy.join(timeout=120)
    for out in outs:
        for f in FIT_FIELDS:
            assert np.array_equal(out[f], getattr(ref, f), equal_nan=True), f


# --------------------------------------------------------------------------- n_threads

def test_n_threads_beyond_the_cap_is_refused_by_the_core():
    """The core refuses n_threads above 4096 (or below 0) with a ValueError naming it, before
    any work (2**31 - 1 started 15,600 OS threads); 4096 itself is accepted."""
    xs = np.geomspace(1.0, 1e4, 20)
    x, t = np.log(xs)[:, None], 1.5 + 3.0 * xs**-0.4
    p0 = np.tile([1.4, 2.9, 0.39], (130, 1))
    inf = np.full_like(p0, np.inf)

    def call(n_threads):
        return _core.fit("saturating_power_law",
                         dict(x=x, t=t, offsets=np.array([0, 20], dtype=np.int64)),
                         dict(p0=p0, lower=-inf, upper=inf), Options(max_nfev=50),
                         dict(data_of=np.zeros(130, dtype=np.int64)), n_threads=n_threads)

    for bad in (2**31 - 1, 4097, -1):
        with pytest.raises(ValueError, match="n_threads"):
            call(bad)
        with pytest.raises(ValueError, match="n_threads"):
            _core.rouse_helpers(bad, 130, 2600)
    ok = call(4096)
    ref = call(1)
    assert all(np.array_equal(ok[k], ref[k], equal_nan=True) for k in ref)
    with pytest.raises(ValueError, match="n_threads"):
        lawfit.fit("saturating_power_law", xs, t, n_threads=2**31 - 1)
