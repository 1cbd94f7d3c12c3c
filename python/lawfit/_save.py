"""Writing a result: ``FitResult.save`` and ``BootstrapResult.save`` (read back by
``lawfit.load``, in ``lawfit._io``, whose docstring documents the format).

Each result gives its own arrays; this module adds what describes them (the JSON entry
``lawfit``: the model, the parameter and label names, the labels' encoding) and writes the
``.npz`` archive.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ._definition import law_definition

__all__ = ["write", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def model_meta(model) -> dict:
    """The file's ``model`` entry: a built-in's name, or a law's definition."""
    if not model.is_law:
        return {"builtin": model.name}
    try:
        expression, inputs, params, name, native = law_definition(model)
    except TypeError:
        return {"law_function": {"name": model.name, "params": list(model.param_names),
                                 "inputs": list(model.input_names)}}
    return {"law": {"expression": expression, "inputs": list(inputs), "params": list(params),
                    "name": name, "native": native}}


def label_arrays(labels, label_names, out: dict) -> tuple:
    """The labels as plain arrays in ``out`` (``fit.labels``, or ``fit.labels.<k>`` for each
    position of tuple labels): (kind, number of columns)."""
    if labels is None:
        return None, 0
    labels = np.asarray(labels) if not isinstance(labels, np.ndarray) else labels
    tuples = labels.dtype == object and len(labels) and isinstance(labels[0], tuple)
    columns = list(zip(*labels)) if tuples else [list(labels)]
    for k, col in enumerate(columns):
        arr = np.asarray(col)
        if arr.dtype == object or arr.ndim != 1:
            name = label_names[k] if label_names and k < len(label_names) else k
            kinds = sorted({type(v).__name__ for v in col})
            raise ValueError(f"labels: group column {name!r} holds {', '.join(kinds)} "
                             f"values, which an npz file holds only by pickling; convert "
                             f"them to numbers or strings, or pickle the result")
        out[f"fit.labels.{k}" if tuples else "fit.labels"] = arr
    if tuples:
        return "tuples", len(columns)
    return ("object" if labels.dtype == object else "array"), 1


def write(path, kind: str, fit, arrays: dict, meta: dict, compressed: bool = True) -> None:
    """Write ``arrays`` (entry name -> array) of a result of ``kind`` whose full-data fit is
    ``fit`` (host arrays), with the ``lawfit`` entry describing them (``meta`` added)."""
    arrays = dict(arrays)
    labels_kind, n_cols = label_arrays(fit.labels, fit.label_names, arrays)
    entry = {"format": "lawfit", "version": FORMAT_VERSION, "kind": kind,
             "model": model_meta(fit.model), "param_names": list(fit.param_names),
             "label_names": None if fit.label_names is None else list(fit.label_names),
             "labels": labels_kind, "n_label_columns": n_cols, "backend": fit.backend,
             **meta}
    arrays["lawfit"] = np.array(json.dumps(entry))
    writer = np.savez_compressed if compressed else np.savez
    with open(os.fspath(path), "wb") as f:  # the name as given (savez would add .npz)
        writer(f, **arrays)
