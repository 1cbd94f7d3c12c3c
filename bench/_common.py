"""What the benchmarks share: machine and version facts, accuracy against the best
optimum, and writing a marked section of bench/RESULTS.md."""
from __future__ import annotations

import datetime
import os
import platform
import subprocess

import numpy as np


def _sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except Exception:
        return ""


def machine_info():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        cpu = platform.processor() or "unknown"
    try:
        with open("/proc/loadavg") as fh:
            load = " ".join(fh.read().split()[:3])
    except OSError:
        load = "unknown"
    return cpu, os.cpu_count(), load


def versions():
    import numpy
    import scipy

    import lawfit

    commit = _sh(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    dirty = [ln.split(maxsplit=1)[1] for ln in _sh(["git", "status", "--porcelain",
                                                    "--untracked-files=no"]).splitlines()
             if ln.strip()]
    if dirty:
        commit += f"; uncommitted changes to {', '.join(dirty)}"
    core = "not loadable"
    try:
        from lawfit import _core

        built = datetime.datetime.fromtimestamp(os.path.getmtime(_core.__file__)).astimezone()
        core = (f"{os.path.basename(_core.__file__)}, built {built.isoformat(timespec='seconds')}"
                f", CPU engine {_core.auto_engine()}")
    except Exception:
        pass
    return dict(python=platform.python_version(), numpy=numpy.__version__,
                scipy=scipy.__version__, lawfit=lawfit.__version__, commit=commit, core=core)


def at_best(costs: dict, rtol: float) -> dict:
    """For each solver, a boolean per problem: cost within ``rtol`` of the lowest cost."""
    stack = np.vstack([np.where(np.isfinite(c), c, np.inf) for c in costs.values()])
    best = stack.min(axis=0)
    tol = rtol * np.maximum(np.abs(best), np.finfo(float).tiny)
    return {k: np.isfinite(c) & (c <= best + tol) for k, c in costs.items()}, best


def write_section(path: str, name: str, section: str) -> None:
    """Replace the section between ``<!-- name:begin -->`` and ``<!-- name:end -->``."""
    BEGIN, END = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{BEGIN}\n{section.rstrip()}\n{END}\n"
    old = ""
    if os.path.exists(path):
        with open(path) as fh:
            old = fh.read()
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + block + ("\n" + tail if tail else "")
    elif old:
        new = old.rstrip("\n") + "\n\n" + block
    else:
        new = "# lawfit benchmark results\n\nEach benchmark in `bench/` writes its own marked " \
              "section here; see `bench/README.md`.\n\n" + block
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(new)


def publish(lines, path: str, name: str, note: str = "") -> None:
    """Print a report (a list of lines) and write it into its section of ``path``."""
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    write_section(path, name, report)
    print(f"(written to {path}{'; ' + note if note else ''})")
