"""Embedding the C++ core: lawfit.get_include() and get_cmake_dir() find the headers and the
CMake package, and examples/cpp (find_package(lawfit CONFIG), lawfit::headers, no Python)
builds, runs and gives lawfit.fit's results on the same batch.  Skipped where CMake or a C++
compiler is missing."""
from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import lawfit

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cpp"
P0 = [1.0, 1.0, 0.5]  # the example's start for every problem


def _compiler():
    return os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") \
        or shutil.which("clang++")


def test_paths_hold_the_headers_and_the_cmake_package():
    include = Path(lawfit.get_include())
    assert include.is_absolute()
    for header in ("lm.h", "batch.h", "hd.h", "models/power_law.h", "kernels.cuh"):
        assert (include / "lawfit" / header).is_file(), header
    cmake_dir = Path(lawfit.get_cmake_dir())
    assert (cmake_dir / "lawfitConfig.cmake").is_file()


def _build(build, cxx_flags=""):
    """Configures examples/cpp with find_package(lawfit) from lawfit.get_cmake_dir() and
    CMAKE_CXX_FLAGS `cxx_flags` in `build`, builds it; the executable's path."""
    cmake, cxx = shutil.which("cmake"), _compiler()
    if cmake is None or cxx is None:
        pytest.skip("needs cmake and a C++ compiler")
    if shutil.which("ninja"):
        generator = ["-G", "Ninja"]
    elif shutil.which("make"):
        generator = ["-G", "Unix Makefiles"]
    else:
        pytest.skip("needs ninja or make")
    env = {**os.environ, "CXX": cxx}
    for cmd in ([cmake, "-S", str(EXAMPLE), "-B", str(build), *generator,
                 "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_CXX_FLAGS={cxx_flags}",
                 f"-Dlawfit_DIR={lawfit.get_cmake_dir()}"],
                [cmake, "--build", str(build)]):
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
    exe = build / "fit_batch"
    assert exe.is_file()
    return exe


@pytest.fixture(scope="module")
def fit_batch(tmp_path_factory):
    """The example, built; its executable's path."""
    return _build(tmp_path_factory.mktemp("example"))


def _run(exe, *args):
    """The example's CSV output as (status, nfev, cost, x) arrays."""
    out = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "problem,status,nfev,cost,E,A,alpha"
    rows = [line.split(",") for line in lines[1:]]
    assert [int(r[0]) for r in rows] == list(range(len(rows)))
    status = np.array([int(r[1]) for r in rows])
    nfev = np.array([int(r[2]) for r in rows])
    cost = np.array([float(r[3]) for r in rows])
    x = np.array([[float(v) for v in r[4:]] for r in rows])
    return status, nfev, cost, x


def _batch(seed=0, n_problems=40):
    """Saturating power laws of 3 to 25 points with noise, and two bad problems: one with an
    x of 0 (log x is not finite) and one with two points for three parameters."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for _ in range(n_problems):
        n = int(rng.integers(3, 26))
        x = np.sort(rng.uniform(1.0, 1e4, n))
        E, A, alpha = rng.uniform(0.5, 3), rng.uniform(1, 10), rng.uniform(0.1, 1.0)
        y = (E + A * x ** -alpha) * (1 + 0.02 * rng.standard_normal(n))
        xs.append(x)
        ys.append(y)
    xs[5] = np.array([0.0, 1.0, 2.0, 3.0])
    ys[5] = np.array([4.0, 3.0, 2.5, 2.2])
    xs[7], ys[7] = xs[7][:2], ys[7][:2]
    return xs, ys


def _write_csv(path, xs, ys):
    with open(path, "w") as f:
        f.write("problem,x,y\n")
        for k, (x, y) in enumerate(zip(xs, ys)):
            for a, b in zip(x, y):
                f.write(f"{k},{float(a)!r},{float(b)!r}\n")  # the doubles, read back exactly
    return str(path)


def test_example_equals_lawfit_fit(fit_batch, tmp_path):
    xs, ys = _batch()
    status, nfev, cost, x = _run(fit_batch, _write_csv(tmp_path / "points.csv", xs, ys))
    r = lawfit.fit("saturating_power_law", xs, ys, p0=P0, backend="cpu")
    assert len(status) == len(xs)
    assert status[5] == lawfit.Status.NONFINITE_DATA
    assert status[7] == lawfit.Status.TOO_FEW_POINTS
    assert (status > 0).sum() >= 30  # most converge (a few run out of evaluations: status 0)
    np.testing.assert_array_equal(status, r.status)
    np.testing.assert_array_equal(nfev, r.nfev)
    ok = status >= 0
    # The example takes log x with the C library's log (as math.log does), lawfit.fit with
    # NumPy's; where they agree on every point the solves agree to the bit, and otherwise to
    # what a last-bit difference in the data moves a converged fit.
    same_logs = all(math.log(v) == np.log(v) for x_k in xs for v in x_k if v > 0)
    if same_logs:
        np.testing.assert_array_equal(x[ok], r.x[ok])
        np.testing.assert_array_equal(cost[ok], r.cost[ok])
    else:
        np.testing.assert_allclose(x[ok], r.x[ok], rtol=1e-12, atol=0)
        np.testing.assert_allclose(cost[ok], r.cost[ok], rtol=1e-12, atol=0)


def test_example_builtin_batch(fit_batch):
    """Without arguments the example fits its own batch: three problems near the laws that
    made them (E, A, alpha) and a fourth with too few points, as lawfit.fit does."""
    status, nfev, cost, x = _run(fit_batch)
    x_grid = [1.0, 2, 4, 8, 16, 32, 64]
    ys = [[5.0035, 4.1295, 3.5033, 3.0476, 2.7591, 2.5348, 2.3696],
          [6.5019, 4.3665, 3.1453, 2.4229, 2.0621, 1.8239, 1.6762],
          [2.7204, 2.2989, 2.0237, 1.7661, 1.5660, 1.4050, 1.2541],
          [3.0, 2.5]]
    r = lawfit.fit("saturating_power_law", [x_grid] * 3 + [[1.0, 2.0]], ys, p0=P0,
                   backend="cpu")
    np.testing.assert_array_equal(status, r.status)
    assert status[3] == lawfit.Status.TOO_FEW_POINTS and (status[:3] > 0).all()
    np.testing.assert_allclose(x[:3], [[2.0, 3.0, 0.5], [1.5, 5.0, 0.8], [0.7, 2.0, 0.3]],
                               rtol=0.05)
    np.testing.assert_allclose(x[:3], r.x[:3], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(nfev, r.nfev)


def test_target_flags_override_a_projects_fast_math(fit_batch, tmp_path):
    """lawfit::headers' options follow a project's CMAKE_CXX_FLAGS, so -ffast-math and
    -ffp-contract=fast there change nothing: the same output to the last digit, the bad
    problem's non-finite check included."""
    fast = _build(tmp_path / "fast", "-ffast-math -ffp-contract=fast")
    csv = _write_csv(tmp_path / "points.csv", *_batch(seed=1, n_problems=12))
    plain = _run(fit_batch, csv)
    assert plain[0][5] == lawfit.Status.NONFINITE_DATA
    for a, b in zip(_run(fast, csv), plain):
        np.testing.assert_array_equal(a, b)
