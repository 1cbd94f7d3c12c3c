"""A law's generated C++/CUDA model struct (the form the GPU compiles at run time): compiled
here with the host compiler it gives the tape's bits, and its kernels (lawfit/_nvrtc.py)
compile for the GPU, with nvcc and with NVRTC.  Each test skips where its compiler is
absent."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import lawfit
from lawfit import _backends, _nvrtc

INCLUDE = Path(__file__).resolve().parents[1] / "cpp" / "include"
LAWS = [
    ("E + A * N**-alpha + B * D**-beta", ["N", "D"]),
    ("a * exp(-b * x) + c * log1p(x) - expm1(-a * x) + x**3 / (1 + x**2)", ["x"]),
    ("sqrt(a + x) * tanh(b * x) + sin(c * x) - cos(a * x) + arctan(a * x - b)", ["x"]),
    ("abs(c - x) + minimum(a * x, b) * maximum(c, x) + sigmoid(a - x) + softplus(b * x)",
     ["x"]),
    ("exp(logsumexp(a - alpha * log(N), b - beta * log(D), e))", ["N", "D"]),
]


def _cxx():
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") \
        or shutil.which("clang++")


@pytest.mark.skipif(_cxx() is None or not INCLUDE.is_dir(), reason="no C++ compiler")
@pytest.mark.parametrize("expr,inputs", LAWS)
def test_the_generated_struct_gives_the_tapes_bits(expr, inputs, tmp_path):
    law = lawfit.law(expr, inputs=inputs)
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 3.0, (25, len(inputs)))
    p = rng.uniform(0.3, 1.5, (25, law.n_params))
    cols = law.inputs_of(x)
    n = law.n_params
    main = tmp_path / "law.cpp"
    main.write_text(
        law.source.translation_unit() + f"""
#include <cstdio>
int main() {{
  double p[{n}], x[{cols.shape[1]}], g[{n}];
  for (int i = 0; i < {len(x)}; ++i) {{
    for (int j = 0; j < {n}; ++j) if (std::scanf("%lf", &p[j]) != 1) return 1;
    for (int c = 0; c < {cols.shape[1]}; ++c) if (std::scanf("%lf", &x[c]) != 1) return 1;
    for (int form = 0; form < 2; ++form) {{
      const double f = form ? lawfit::UserLaw::eval_log(p, x, g)
                            : lawfit::UserLaw::eval(p, x, g);
      std::printf("%a", f);
      for (int j = 0; j < {n}; ++j) std::printf(" %a", g[j]);
      std::printf("\\n");
    }}
  }}
}}
""")
    exe = tmp_path / "law"
    # lawfit's own flags for its math: no contraction of products into FMAs, IEEE semantics.
    subprocess.run([_cxx(), "-std=c++17", "-O2", "-ffp-contract=off", "-fno-math-errno",
                    f"-I{INCLUDE}", str(main), "-o", str(exe)], check=True)
    stdin = "\n".join(" ".join(repr(float(v)) for v in np.concatenate([p[i], cols[i]]))
                      for i in range(len(x)))
    out = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, check=True)
    rows = [[float.fromhex(v) for v in line.split()] for line in out.stdout.splitlines()]
    got = np.array(rows).reshape(len(x), 2, n + 1)
    for form in (0, 1):
        f, J = _backends.evaluate(law, p, x, bool(form))
        np.testing.assert_array_equal(got[:, form, 0], f, err_msg=f"form {form}")
        np.testing.assert_array_equal(got[:, form, 1:], J, err_msg=f"form {form}")


@pytest.mark.skipif(shutil.which("nvcc") is None or not INCLUDE.is_dir(), reason="no nvcc")
def test_the_laws_kernels_compile_with_nvcc(tmp_path):
    """The source NVRTC compiles on a GPU machine (the law's struct and the kernel bodies the
    built-ins' kernels share), compiled here by nvcc, which CI has."""
    unit = tmp_path / "law.cu"
    unit.write_text(_nvrtc.translation_unit(lawfit.law(*LAWS[0]), False, "huber", True))
    out = tmp_path / "law.cubin"
    subprocess.run(["nvcc", "-std=c++17", "-arch=sm_90", "-cubin", f"-I{INCLUDE}", str(unit),
                    "-o", str(out)], check=True)
    image = out.read_bytes()  # with the kernels the CUDA module looks up, unmangled
    assert image[:4] == b"\x7fELF"
    assert _nvrtc.SOLVE.encode() in image and _nvrtc.OBJECTIVE.encode() in image


NVRTC = _nvrtc.library()[0] is not None


@pytest.mark.skipif(not NVRTC, reason="NVRTC not found (the 'cuda' extra, or a CUDA toolkit)")
@pytest.mark.parametrize("fp32, loss, log", [(False, "huber", True), (True, "linear", False)])
def test_nvrtc_compiles_a_laws_kernels(tmp_path, monkeypatch, fp32, loss, log):
    """NVRTC, as lawfit._cuda runs a law: a cubin for sm_90 (no GPU needed to compile), with
    both kernels, cached on disk by what went into it."""
    monkeypatch.setenv("LAWFIT_CACHE_DIR", str(tmp_path))
    law = lawfit.law(*LAWS[1])
    image = _nvrtc.cubin(law, 90, fp32, loss, log)
    assert image[:4] == b"\x7fELF"
    assert _nvrtc.SOLVE.encode() in image and _nvrtc.OBJECTIVE.encode() in image

    def build():
        (info,) = [b for b in _nvrtc.BUILDS.values() if b["path"].startswith(str(tmp_path))]
        return info

    assert not build()["cached"]
    assert _nvrtc.cubin(law, 90, fp32, loss, log) is image  # this process's copy
    monkeypatch.setattr(_nvrtc, "_IMAGES", {})  # a new process: the disk's
    assert _nvrtc.cubin(law, 90, fp32, loss, log) == image
    assert build()["cached"]


def test_nvrtc_errors_carry_its_log(monkeypatch):
    if not NVRTC:
        pytest.skip("NVRTC not found")
    with pytest.raises(RuntimeError, match="(?s)NVRTC: compiling the law.s kernels failed.*"
                                           "undefined"):
        _nvrtc.compile_source("__global__ void k() { undefined_name(); }", 90,
                              _nvrtc.include_dir())
