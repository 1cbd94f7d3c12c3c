"""A user's law on the GPU: its generated model struct (``law.source``) and the CUDA backend's
kernel bodies (``lawfit/kernels.cuh``, the same that nvcc builds for the built-ins) compiled at
run time by NVRTC into a cubin for the device's architecture, cached on disk by a hash of
everything that goes into it, and loaded by ``lawfit._cuda``.

NVRTC is found at run time, never needed at install: ``$LAWFIT_NVRTC`` (a path to the
library), the CUDA toolkit's (``libnvrtc.so.13`` / ``.12`` on the loader's path, or under
``$CUDA_PATH`` / ``$CUDA_HOME``), or the ``nvidia-cuda-nvrtc`` wheel (the ``cuda`` extra).
One cubin per (law, precision, loss, residual space): each kernel carries the registers of its
own objective only, as for the built-ins.
"""
from __future__ import annotations

import ctypes
import functools
import glob
import hashlib
import os
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

from ._native import cache_dir, header_digest, include_dirs

# Loss codes of lawfit/options.h, by the name Options uses.
LOSSES = {"linear": "kLinear", "soft_l1": "kSoftL1", "huber": "kHuber", "cauchy": "kCauchy",
          "arctan": "kArctan"}
# The kernels' names in a law's cubin (extern "C": no mangling).
SOLVE, OBJECTIVE = "lawfit_law_solve", "lawfit_law_objective"
_SONAMES = ("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so")

_LIBRARY: list = []           # [CDLL or None, why], once found
BUILDS: Dict[str, dict] = {}   # key -> path, seconds, cached
_IMAGES: Dict[str, bytes] = {}  # key -> cubin, this process's


def _candidates():
    if os.environ.get("LAWFIT_NVRTC"):
        yield os.environ["LAWFIT_NVRTC"]
    yield from _SONAMES
    for var in ("CUDA_PATH", "CUDA_HOME"):
        if os.environ.get(var):
            yield from sorted(glob.glob(os.path.join(os.environ[var], "lib*", "libnvrtc.so*")))
    try:  # the nvidia-cuda-nvrtc wheels: nvidia/cu13/lib or nvidia/cuda_nvrtc/lib
        import nvidia

        for root in nvidia.__path__:
            yield from sorted(glob.glob(os.path.join(root, "*", "lib", "libnvrtc.so*")),
                              reverse=True)
    except ImportError:
        pass


def library() -> Tuple[Optional[ctypes.CDLL], str]:
    """(NVRTC's library, "") where one loads, else (None, why not)."""
    if not _LIBRARY:
        tried = []
        for name in _candidates():
            if "builtins" in os.path.basename(name) or ".alt." in os.path.basename(name):
                continue
            try:
                # NVRTC opens its builtins library by name: where it came from a folder
                # (a wheel's), load that folder's first, so that the name resolves.
                folder = os.path.dirname(name)
                near = glob.glob(os.path.join(folder, "libnvrtc-builtins.so*")) if folder else []
                for builtins in sorted(near)[:1]:
                    ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)
                lib = ctypes.CDLL(name)
                lib.nvrtcGetErrorString.restype = ctypes.c_char_p
                _LIBRARY[:] = [lib, ""]
                break
            except OSError:
                tried.append(name)
        else:
            _LIBRARY[:] = [None, "NVRTC was not found (tried " + ", ".join(tried)
                           + "); install the 'cuda' extra or set LAWFIT_NVRTC"]
    return _LIBRARY[0], _LIBRARY[1]


def version() -> Tuple[int, int]:
    lib, why = library()
    if lib is None:
        raise RuntimeError(why)
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return major.value, minor.value


def translation_unit(model, fp32: bool, loss: str, log_residuals: bool) -> str:
    """The source NVRTC compiles: the law's struct and two extern "C" kernels, thin wrappers
    around lawfit/kernels.cuh's bodies, for one precision, loss and residual space."""
    T = "float" if fp32 else "double"
    objective = (f"lawfit::FixedObjective<lawfit::Loss::{LOSSES[loss]}, "
                 f"{'true' if log_residuals else 'false'}>")
    return (model.source.translation_unit("UserLaw").replace(
        '#include "lawfit/models/common.h"', '#include "lawfit/kernels.cuh"') + f"""
using lawfit::Batch;
using lawfit::Options;
using lawfit::cuda::Work;

extern "C" __global__ void
__launch_bounds__(lawfit::cuda::kBlock, lawfit::cuda::min_blocks<lawfit::UserLaw>())
{SOLVE}(Batch<{T}> b, Options o, Work<{T}> w) {{
  lawfit::cuda::solve_units<lawfit::UserLaw, {objective}>(b, o, w);
}}

extern "C" __global__ void __launch_bounds__(lawfit::cuda::kBlock)
{OBJECTIVE}(Batch<{T}> b, Options o, Work<{T}> w) {{
  lawfit::cuda::objective_units<lawfit::UserLaw, {objective}>(b, o, w);
}}
""")


def include_dir() -> Optional[Path]:
    """The headers' root (holding lawfit/kernels.cuh): installed beside _core, or in a
    source checkout (where the native build finds them)."""
    dirs = include_dirs()
    return None if dirs is None else dirs[0]


def _check(lib, rc: int, what: str, prog=None) -> None:
    if rc == 0:
        return
    log = ""
    if prog is not None:
        n = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
        buf = ctypes.create_string_buffer(n.value)
        lib.nvrtcGetProgramLog(prog, buf)
        log = ":\n" + buf.value.decode(errors="replace")[:6000]
    raise RuntimeError(f"NVRTC: {what} failed ({lib.nvrtcGetErrorString(rc).decode()}){log}")


def compile_source(source: str, arch: int, include: Path, name: str = "law.cu") -> bytes:
    """Compiles `source` for sm_`arch` and returns the cubin (RuntimeError with NVRTC's log
    where it fails)."""
    lib, why = library()
    if lib is None:
        raise RuntimeError(why)
    prog = ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0,
                                       None, None), "nvrtcCreateProgram")
    try:
        opts = [o.encode() for o in options(arch, include)]
        rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        _check(lib, rc, "compiling the law's kernels", prog)
        n = ctypes.c_size_t()
        _check(lib, lib.nvrtcGetCUBINSize(prog, ctypes.byref(n)), "nvrtcGetCUBINSize")
        buf = ctypes.create_string_buffer(n.value)
        _check(lib, lib.nvrtcGetCUBIN(prog, buf), "nvrtcGetCUBIN")
        return buf.raw
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def options(arch: int, include: Path) -> list:
    # nvcc's defaults for the built-ins' kernels (CMakeLists.txt): C++17, optimised, FMA
    # contraction on (the device's own bits, as for the built-ins).
    return ["--std=c++17", f"--gpu-architecture=sm_{arch}", f"-I{include}"]


def cubin(model, arch: int, fp32: bool, loss: str, log_residuals: bool) -> bytes:
    """The law's kernels for one call's settings, from the disk cache or compiled now."""
    include = include_dir()
    if include is None:
        raise RuntimeError("lawfit's headers are not installed; a law cannot run on the GPU")
    tu = translation_unit(model, fp32, loss, log_residuals)
    key = hashlib.sha256("\0".join([tu, " ".join(options(arch, include)), str(version()),
                                    _headers(include)]).encode()).hexdigest()[:32]
    if key in _IMAGES:
        return _IMAGES[key]
    path = cache_dir("cuda") / f"law-{key}.cubin"
    t0 = time.perf_counter()
    cached = path.exists()
    if cached:
        image = path.read_bytes()
    else:
        image = compile_source(tu, arch, include)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(image)
        os.replace(tmp, path)  # atomic: a concurrent build of the same law is the same
    BUILDS[key] = dict(path=str(path), seconds=time.perf_counter() - t0, cached=cached)
    _IMAGES[key] = image
    return image


@functools.lru_cache(maxsize=None)
def _headers(include: Path) -> str:
    return header_digest([include])
