"""The field's scaling laws, each as a user law (lawfit.law) with its paper, formula and
names: ``lawfit.library.get("data_constrained")``, ``lawfit.library.available()``.

Every entry runs on the compiled tape as fast as a user's own law, with exact gradients
(BNSL with 3 or 4 breaks has 12 or 15 parameters, more than the compiled form's 10: it runs
on ``backend="numpy"``);
where the law's inputs are derived from something else (the learning-rate schedule of the
annealing law), a helper computes them.  The built-in models (``lawfit.models``) cover the
Chinchilla, Kaplan and broken-power-law forms with hand-written derivatives.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, Tuple

import numpy as np

from .law import law
from .models import Model

__all__ = ["Entry", "LIBRARY", "get", "available", "lr_annealing_areas"]


@dataclass(frozen=True)
class Entry:
    """One law of the library: its name, paper, formula (lawfit.law syntax), inputs and
    parameters (in this order), and what the inputs are."""

    name: str
    paper: str
    formula: str
    inputs: Tuple[str, ...]
    params: Tuple[str, ...]
    notes: str = ""


def _bnsl(n: int) -> str:
    factors = " * ".join(f"(1 + (x / d{i})**(1 / f{i}))**(-c{i} * f{i})" for i in range(1, n + 1))
    return f"a + b * x**-c0 * {factors}"


def _bnsl_params(n: int) -> Tuple[str, ...]:
    return ("a", "b", "c0") + tuple(p for i in range(1, n + 1)
                                    for p in (f"c{i}", f"d{i}", f"f{i}"))


_ENTRIES = [
    Entry("data_constrained",
          "Muennighoff et al. 2023, Scaling Data-Constrained Language Models",
          "E + A * (UN + UN * RN * (1 - exp(-(N / UN - 1) / RN)))**-alpha"
          " + B * (UD + UD * RD * (1 - exp(-(D / UD - 1) / RD)))**-beta",
          ("N", "D", "UN", "UD"), ("E", "A", "B", "alpha", "beta", "RN", "RD"),
          "N parameters, D tokens seen, UD unique tokens, UN the unique parameters "
          "(N where N is at most the compute-optimal size for UD); RN, RD are R_N*, R_D*, "
          "the repetitions' decay constants (the paper fits them with Chinchilla's E, A, B, "
          "alpha, beta fixed: pass those as equal bounds)."),
    Entry("overtraining",
          "Gadre et al. 2024, Language models scale reliably with over-training and on "
          "downstream tasks",
          "E + (a * M**eta + b * M**-eta) * C**-eta", ("C", "M"), ("E", "a", "b", "eta"),
          "C = 6 N D training compute, M = D / N tokens per parameter: Chinchilla's form "
          "with tied exponents (E + A N^-2eta + B D^-2eta up to constants)."),
    Entry("lr_annealing",
          "Tissue et al. 2024, Scaling Law with Learning Rate Annealing",
          "L0 + A * S1**-alpha - C * S2", ("S1", "S2"), ("L0", "A", "alpha", "C"),
          "S1 the forward area (sum of learning rates), S2 the annealing area with momentum: "
          "lawfit.library.lr_annealing_areas(schedule)."),
    Entry("farseer", "Li et al. 2025, Farseer: A Refined Scaling Law in Large Language Models",
          "exp(a3 * N**gamma + b3) + exp(a2 * N**beta + b2) * D**-exp(a1 * N**alpha + b1)",
          ("N", "D"), ("a1", "b1", "alpha", "a2", "b2", "beta", "a3", "b3", "gamma")),
    Entry("vocabulary", "Tao et al. 2024, Scaling Laws with Vocabulary",
          "-E + A1 * Nnv**-alpha1 + A2 * Nv**-alpha2 + B * D**-beta", ("Nnv", "Nv", "D"),
          ("E", "A1", "alpha1", "A2", "alpha2", "B", "beta"),
          "Nnv non-vocabulary parameters, Nv vocabulary parameters, D training characters; "
          "the target is the unigram-normalised loss."),
    Entry("precision_ptq", "Kumar et al. 2024, Scaling Laws for Precision",
          "A * N**-alpha + B * D**-beta + E"
          " + CT * D**gammaD * N**-gammaN * exp(-Ppost / gammapost)",
          ("N", "D", "Ppost"),
          ("A", "alpha", "B", "beta", "E", "CT", "gammaD", "gammaN", "gammapost"),
          "post-training quantisation to Ppost bits: the degradation delta_PTQ grows with "
          "the data seen."),
    Entry("loss_to_loss", "Brandfonbrener et al. 2024, Loss-to-Loss Prediction",
          "K * (L0 - E0)**kappa + E1", ("L0",), ("K", "kappa", "E0", "E1"),
          "the loss on one distribution (L0, the input) predicts another's; L0 > E0."),
    Entry("finetuning", "Zhang et al. 2024, When Scaling Meets LLM Finetuning",
          "A * X**-alpha * Df**-beta + E", ("X", "Df"), ("A", "alpha", "beta", "E"),
          "the multiplicative joint law: X a scaling factor (model size, pretraining data, "
          "PET parameters), Df finetuning data."),
    Entry("moe", "Krajewski et al. 2024, Scaling Laws for Fine-Grained Mixture of Experts",
          "c + (g * G**-gamma + a) * N**-alpha + b * D**-beta", ("N", "D", "G"),
          ("c", "g", "gamma", "a", "alpha", "b", "beta"),
          "G the granularity of the experts."),
] + [
    Entry(f"bnsl_{n}", "Caballero et al. 2022, Broken Neural Scaling Laws", _bnsl(n), ("x",),
          _bnsl_params(n), f"{n} break{'s' if n > 1 else ''}")
    for n in range(1, 5)
]
LIBRARY: Dict[str, Entry] = {e.name: e for e in _ENTRIES}


def available() -> list:
    """Names of the library's laws."""
    return list(LIBRARY)


@lru_cache(maxsize=None)
def get(name: str) -> Model:
    """The library's law ``name`` as a lawfit.Model (defined once, then cached)."""
    if name not in LIBRARY:
        raise ValueError(f"name: unknown law {name!r}; the library has {', '.join(LIBRARY)}")
    e = LIBRARY[name]
    return law(e.formula, inputs=list(e.inputs), params=list(e.params), name=e.name)


def lr_annealing_areas(lr, decay: float = 0.999):
    """The inputs of the annealing law at every step of a learning-rate schedule ``lr``
    (steps,): S1, the forward area sum_{i<=s} lr_i, and S2, the annealing area
    sum_{i<=s} m_i with m_i = decay m_{i-1} + (lr_{i-1} - lr_i) (Tissue et al. 2024)."""
    lr = np.asarray(lr, dtype=np.float64)
    if lr.ndim != 1 or lr.size == 0:
        raise ValueError(f"lr: expected a 1-D schedule, got shape {lr.shape}")
    if not (0 <= decay < 1):
        raise ValueError(f"decay: expected a value in [0, 1), got {decay}")
    s1 = np.cumsum(lr)
    drop = np.concatenate([[0.0], lr[:-1] - lr[1:]])
    m = np.empty_like(lr)
    acc = 0.0
    for i, d in enumerate(drop):
        acc = decay * acc + d
        m[i] = acc
    return s1, np.cumsum(m)
