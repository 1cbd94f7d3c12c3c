"""Results that travel: ``result.save(path)`` and ``lawfit.load(path)``.

The file is a NumPy ``.npz`` archive (``numpy.savez_compressed``), read back without
pickle (``allow_pickle=False``), so loading a file runs no code from it.  Its entries:

``lawfit``
    A JSON string (a 0-d unicode array): ``{"format": "lawfit", "version": 1, "kind":
    "FitResult" | "BootstrapResult", "model": ..., "param_names": [...], "label_names":
    [...] | null, "labels": null | "array" | "object" | "tuples", "n_label_columns": k,
    "backend": "cpu", ...}``; a bootstrap adds ``"seed"`` and ``"method"``.  ``model`` is
    ``{"builtin": name}`` or, for a law (``lawfit.law``), ``{"law": {"expression",
    "inputs", "params", "name", "native"}}``, rebuilt by ``lawfit.law`` on load; a law
    defined by a function keeps only ``{"law_function": {"name", "params", "inputs"}}``
    and is passed again as ``lawfit.load(path, model=...)``.
``fit.<field>``
    The full-data fit's arrays, batch dimension first: ``x``, ``cost``, ``status``,
    ``nfev``, ``njev``, ``nit``, ``optimality``, ``active_mask``, ``n_points``,
    ``n_omitted``, and where the fit has them ``n_free``, ``offsets``, ``cov``, ``fun``,
    ``jac`` and a grid fit's ``n_starts`` ... ``cost_median``.
``fit.labels`` or ``fit.labels.<k>``
    The group labels: one array, or one per group column (labels that are tuples).  Labels
    must be numbers, strings, booleans or datetimes (what an npz holds without pickle).
``boot.<field>``
    A bootstrap's ``samples`` (P, R, n), ``status`` (P, R), ``n_continued``, ``n_refit``,
    with a grid start ``other_basin`` (P, R), and, where it was computed before saving,
    ``jackknife`` (P, J, n) (BCa intervals of a loaded result need it: call
    ``result.jackknife()`` before ``save``).

Pickle (and so ``multiprocessing``) carries a result whole instead, the jackknife's
inputs included.
"""
from __future__ import annotations

import json
import os
from typing import Optional, Union

import numpy as np

from ._definition import from_definition
from ._result import FIT_ARRAYS, FIT_OPTIONAL, FitResult
from ._save import FORMAT_VERSION
from .bootstrap import BOOT_ARRAYS, BootstrapResult
from .models import get

__all__ = ["load"]


def _model_from(meta: dict, model):
    if model is not None:
        m = get(model)
        want = None
        if "law" in meta or "law_function" in meta:
            want = tuple(meta.get("law", meta.get("law_function"))["params"])
        elif "builtin" in meta:
            want = get(meta["builtin"]).param_names
        if want is not None and tuple(m.param_names) != want:
            raise ValueError(f"model: its parameters {m.param_names} are not the saved "
                             f"result's {want}")
        return m
    if "builtin" in meta:
        return get(meta["builtin"])
    if "law" in meta:
        d = meta["law"]
        return from_definition(d["expression"], d["inputs"], d["params"], d["name"],
                               d["native"])
    d = meta["law_function"]
    raise ValueError(f"model: the result's law {d['name']!r} was defined by a function, "
                     f"which a file cannot hold; pass it again: lawfit.load(path, model=...)")


def _labels_from(data, kind: Optional[str], k: int):
    if kind is None:
        return None
    if kind == "tuples":
        cols = [data[f"fit.labels.{j}"].tolist() for j in range(k)]
        out = np.empty(len(cols[0]), dtype=object)
        out[:] = list(zip(*cols))
        return out
    arr = data["fit.labels"]
    return arr.astype(object) if kind == "object" else arr


def load(path: Union[str, os.PathLike], *, model=None):
    """Read a result written by ``FitResult.save`` or ``BootstrapResult.save``.

    Parameters
    ----------
    path : str or path-like
    model : str or lawfit.Model, optional
        The model, where the file cannot rebuild it (a law defined by a function); checked
        against the saved parameter names.

    Returns
    -------
    FitResult or BootstrapResult
        With the saved arrays (bit for bit), labels and model.
    """
    with np.load(os.fspath(path), allow_pickle=False) as data:
        if "lawfit" not in data.files:
            raise ValueError(f"path: {os.fspath(path)!r} is not a file written by lawfit's "
                             f"save() (it has no 'lawfit' entry)")
        meta = json.loads(str(data["lawfit"]))
        if meta.get("format") != "lawfit" or int(meta.get("version", 0)) > FORMAT_VERSION:
            raise ValueError(f"path: format {meta.get('format')!r} version "
                             f"{meta.get('version')!r}; this lawfit reads version "
                             f"{FORMAT_VERSION} or earlier")
        m = _model_from(meta["model"], model)
        arrays = {k: data[f"fit.{k}"] for k in FIT_ARRAYS}
        for k in FIT_OPTIONAL:
            if f"fit.{k}" in data.files:
                arrays[k] = data[f"fit.{k}"]
        label_names = meta["label_names"]
        fit = FitResult(m, arrays, data["fit.n_points"],
                        labels=_labels_from(data, meta["labels"], meta["n_label_columns"]),
                        cov=arrays.get("cov"), backend=meta["backend"],
                        label_names=None if label_names is None else tuple(label_names),
                        offsets=arrays.get("offsets"), fun=arrays.get("fun"),
                        jac=arrays.get("jac"))
        if meta["kind"] == "FitResult":
            return fit
        b = {k: data[f"boot.{k}"] for k in BOOT_ARRAYS}
        other = data["boot.other_basin"] if "boot.other_basin" in data.files else None
        out = BootstrapResult(fit, b["samples"], b["status"], int(meta["seed"]), None,
                              b["n_continued"], b["n_refit"], method=meta["method"],
                              other_basin=other)
        if "boot.jackknife" in data.files:
            out._jackknife = data["boot.jackknife"]
        return out
