"""The 27 NIST StRD nonlinear regression models, each written as a one-line user law
(lawfit.law) and fitted through lawfit.fit on the compiled tape, against the certified values.

From start 2 every problem must reach LRE >= 6 (six correct digits in its worst parameter);
from start 1 at least 26 of 27.  The data live in ``../shared/data/nist_strd``; the module
skips when that folder is absent.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import lawfit

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nist_strd"
if not DATA.is_dir() or not any(DATA.glob("*.dat")):
    pytest.skip(f"NIST StRD data not found at {DATA}", allow_module_level=True)
sys.path.insert(0, str(Path(__file__).resolve().parent))
import nist_strd as ns  # noqa: E402

pytestmark = pytest.mark.data

_CUBIC = "(b1 + b2*x + b3*x**2 + b4*x**3) / (1 + b5*x + b6*x**2 + b7*x**3)"
_LANCZOS = "b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)"
_GAUSS = "b1*exp(-b2*x) + b3*exp(-(x - b4)**2 / b5**2) + b6*exp(-(x - b7)**2 / b8**2)"
_CHWIRUT = "exp(-b1*x) / (b2 + b3*x)"
# NIST's model of each problem, as a user writes it (inputs: x, or x1, x2 for Nelson).
LAWS = {
    "Misra1a": "b1*(1 - exp(-b2*x))",
    "Chwirut2": _CHWIRUT,
    "Chwirut1": _CHWIRUT,
    "Lanczos3": _LANCZOS,
    "Gauss1": _GAUSS,
    "Gauss2": _GAUSS,
    "DanWood": "b1*x**b2",
    "Misra1b": "b1 * (1 - (1 + b2*x/2)**(-2))",
    "Kirby2": "(b1 + b2*x + b3*x**2) / (1 + b4*x + b5*x**2)",
    "Hahn1": _CUBIC,
    "Nelson": "b1 - b2*x1 * exp(-b3*x2)",
    "MGH17": "b1 + b2*exp(-x*b4) + b3*exp(-x*b5)",
    "Lanczos1": _LANCZOS,
    "Lanczos2": _LANCZOS,
    "Gauss3": _GAUSS,
    "Misra1c": "b1 * (1 - (1 + 2*b2*x)**(-0.5))",
    "Misra1d": "b1*b2*x * ((1 + b2*x)**(-1))",
    "Roszman1": "b1 - b2*x - arctan(b3 / (x - b4)) / pi",
    "ENSO": ("b1 + b2*cos(2*pi*x/12) + b3*sin(2*pi*x/12) + b5*cos(2*pi*x/b4) "
             "+ b6*sin(2*pi*x/b4) + b8*cos(2*pi*x/b7) + b9*sin(2*pi*x/b7)"),
    "MGH09": "b1*(x**2 + x*b2) / (x**2 + x*b3 + b4)",
    "Thurber": _CUBIC,
    "BoxBOD": "b1*(1 - exp(-b2*x))",
    "Rat42": "b1 / (1 + exp(b2 - b3*x))",
    "MGH10": "b1 * exp(b2 / (x + b3))",
    "Eckerle4": "(b1/b2) * exp(-0.5*((x - b3)/b2)**2)",
    "Rat43": "b1 / ((1 + exp(b2 - b3*x))**(1/b4))",
    "Bennett5": "b1 * (b2 + x)**(-1/b3)",
}
TIGHT = dict(ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=100_000)


def _law(name, n_params):
    inputs = ["x1", "x2"] if name == "Nelson" else ["x"]
    return lawfit.law(LAWS[name], inputs=inputs,
                      params=[f"b{k + 1}" for k in range(n_params)], name=name)


def _lre(problem, start):
    law = _law(problem.name, len(problem.certified))
    r = lawfit.fit(law, problem.x, problem.y, p0=getattr(problem, start), **TIGHT)
    return ns.lre(r.x[0], problem.certified) if r.status[0] > 0 else 0.0


@pytest.fixture(scope="module")
def problems():
    return ns.load_all(DATA)


def test_every_nist_model_is_a_one_line_law(problems):
    assert sorted(LAWS) == sorted(p.name for p in problems)
    for p in problems:
        law = _law(p.name, len(p.certified))
        # the law is NIST's model: the same values as the hand-written NumPy function
        b = p.certified
        x = p.x if p.x.ndim == 2 else p.x[:, None]
        np.testing.assert_allclose(law(x, *b), p.f(p.x, *b), rtol=1e-12, err_msg=p.name)


def test_start2_reaches_six_digits_on_all_27(problems):
    scores = {p.name: _lre(p, "start2") for p in problems}
    print("\nLRE from start 2:", {k: round(v, 1) for k, v in scores.items()})
    assert [k for k, v in scores.items() if v < 6] == []


def test_start1_reaches_six_digits_on_at_least_26(problems):
    scores = {p.name: _lre(p, "start1") for p in problems}
    print("\nLRE from start 1:", {k: round(v, 1) for k, v in scores.items()})
    assert sum(v >= 6 for v in scores.values()) >= 26, scores
