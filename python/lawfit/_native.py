"""A law's native build: its generated model struct (``law.source``) compiled once by the host
compiler into a small library that runs the law in the SIMD lanes of lawfit's own driver
(``cpp/src/simd_run.h``), as the built-ins run, cached on disk by a hash of everything that
goes into it.  Optional (``lawfit.law(..., native=True)``): the tape needs no compiler, and
the native build gives the same bits a little faster.

The build uses the instruction set of the engine ``auto`` picks (``lawfit._core.
auto_engine()``), with the flags CMakeLists.txt gives that engine's build, and the headers
installed beside ``lawfit._core`` (or, in a source checkout, ``cpp/``).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

# Each engine's lanes and flags (CMakeLists.txt's LAWFIT_SIMD_BUILDS).
ENGINE_FLAGS = {"avx512": (8, ["-mavx512f", "-mavx512dq", "-mfma"]),
                "avx2": (4, ["-mavx2", "-mfma"])}
# The flags lawfit's math is compiled with (CMakeLists.txt's LAWFIT_CXX_FLAGS and build type).
BASE_FLAGS = ["-std=c++17", "-O3", "-DNDEBUG", "-fPIC", "-shared", "-fvisibility=hidden",
              "-fno-math-errno", "-ffp-contract=off", "-DLAWFIT_ISA=native_law"]

_LOADED: Dict[str, ctypes.CDLL] = {}  # keeps every loaded build alive
BUILDS: Dict[str, dict] = {}          # key -> path, seconds, cached


def compiler() -> Optional[str]:
    return os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") \
        or shutil.which("clang++")


def include_dirs() -> Optional[Tuple[Path, Path]]:
    """(the core's headers, the driver's), installed beside _core or in a source checkout."""
    from . import _core

    installed = Path(_core.__file__).parent / "include"
    if (installed / "lawfit" / "lanes.h").exists() and (installed / "driver").is_dir():
        return installed, installed / "driver"
    repo = Path(__file__).resolve().parents[2] / "cpp"
    if (repo / "include" / "lawfit" / "lanes.h").exists():
        return repo / "include", repo / "src"
    return None


def cache_dir(kind: str = "native") -> Path:
    """Where compiled laws are kept: ``$LAWFIT_CACHE_DIR`` or ``~/.cache/lawfit``, then
    ``native`` (host builds) or ``cuda`` (cubins)."""
    root = os.environ.get("LAWFIT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lawfit")
    return Path(root) / kind


def header_digest(paths: List[Path]) -> str:
    """A hash of every header under `paths` (a build depends on all of them)."""
    h = hashlib.sha256()
    for root in paths:
        for f in sorted([*root.rglob("*.h"), *root.rglob("*.cuh")]):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def translation_unit(model, width: int) -> str:
    return (model.source.translation_unit("NativeLaw").replace(
        '#include "lawfit/models/common.h"', '#include "simd_run.h"') + f"""
#define LAWFIT_EXPORT extern "C" __attribute__((visibility("default")))
LAWFIT_EXPORT size_t lawfit_native_bytes(const char*, int cap) {{
  return lawfit::simd::model_bytes<lawfit::NativeLaw, {width}>(cap);
}}
LAWFIT_EXPORT bool lawfit_native_run(const char*, const lawfit::simd::LaneJob& job,
                                     void* buffer) {{
  auto src = lawfit::simd::source(job);
  lawfit::simd::run_model<lawfit::NativeLaw, {width}>(job, buffer, src);
  return true;
}}
""")


def attach(model) -> dict:
    """Builds (or loads from the cache) ``model``'s native build and tells its compiled
    form to use it; returns {path, seconds, cached}.  ValueError where it cannot be made."""
    from . import _core

    core = model.compiled
    cxx = compiler()
    if cxx is None:
        raise ValueError("native: no C++ compiler found (set CXX); the law runs on its tape")
    dirs = include_dirs()
    if dirs is None:
        raise ValueError("native: lawfit's headers are not installed; the law runs on its tape")
    width, flags = ENGINE_FLAGS.get(_core.auto_engine(), (4, []))
    cmd = [cxx, *BASE_FLAGS, f"-DLAWFIT_SIMD_WIDTH={width}", *flags, f"-I{dirs[0]}",
           f"-I{dirs[1]}"]
    tu = translation_unit(model, width)
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256("\0".join([tu, " ".join(cmd), version, header_digest(list(dirs))])
                         .encode()).hexdigest()[:32]
    path = cache_dir() / f"law-{key}.so"
    t0 = time.perf_counter()
    cached = path.exists()
    if not cached:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "law.cpp"
            src.write_text(tu)
            out = Path(tmp) / "law.so"
            run = subprocess.run(cmd + [str(src), "-o", str(out)], capture_output=True,
                                 text=True)
            if run.returncode != 0:
                raise ValueError("native: the compiler failed on the law's struct:\n"
                                 + run.stderr[-2000:])
            os.replace(out, path)  # atomic: a concurrent build of the same law is the same
    lib = _LOADED.get(key) or ctypes.CDLL(str(path))
    _LOADED[key] = lib
    addr = [ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
            for name in ("lawfit_native_bytes", "lawfit_native_run")]
    core.set_native(*addr)
    info = dict(path=str(path), seconds=time.perf_counter() - t0, cached=cached)
    BUILDS[key] = info
    return info
