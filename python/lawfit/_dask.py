"""Scale-out with Dask: ``lawfit.fit`` and ``lawfit.bootstrap`` on a dask DataFrame
(``data=`` with ``groups=``), each group whole on one worker, the results gathered into the
FitResult / BootstrapResult that the same call on the pandas frame gives, bit for bit,
whatever the partitioning (``pip install 'lawfit[dask]'``).

How: the groups' labels are found first (one pass over the group columns) and put in the
order the pandas call sorts them; the frame is shuffled on the group columns, so that each
group lies whole in one partition; each partition is fitted by the ordinary call on its
pandas frame, as a task on the active Dask client's workers (or Dask's default scheduler
where there is no client), a bootstrap with ``problem_ids`` = the partition's groups' places
among all the groups, so that each group is resampled as the whole call resamples it; the
partitions' results come back (results pickle) and are joined in the global order.  Inside a
worker, a call's default thread count is the worker's own budget (``_options.
default_threads``).
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from ._result import GRID_FIELDS, FitResult

__all__ = ["is_dask_collection", "run"]

# Per-problem fields of a FitResult, joined problem by problem (None where a part has none).
_FIT_FIELDS = ("x", "cost", "status", "nfev", "njev", "nit", "optimality", "active_mask",
               "n_omitted", "n_free") + GRID_FIELDS


def is_dask_collection(obj) -> bool:
    """Whether ``obj`` is a dask collection (a dask DataFrame, Series or Array), without
    importing dask."""
    return type(obj).__module__.split(".")[0] == "dask" and hasattr(obj, "__dask_graph__")


def _columns(value, arg: str) -> list:
    """A column argument as a list of names (ValueError naming it where it is not names)."""
    names = [value] if isinstance(value, str) else value
    if not (isinstance(names, (list, tuple)) and names
            and all(isinstance(c, str) for c in names)):
        raise ValueError(f"{arg}: with a dask DataFrame in data=, give column names "
                         f"(got {type(value).__name__})")
    return list(names)


def sorted_labels(frame, groups) -> list:
    """The distinct labels of ``groups`` in ``frame`` (pandas), in the order a call on it
    takes its groups (lawfit.api._from_frame and the packer's): tuples for a list of
    columns, values for one column."""
    if isinstance(groups, str):
        return list(np.unique(frame[groups].to_numpy()))
    import pandas as pd

    _, uniques = pd.MultiIndex.from_frame(frame[list(groups)]).factorize(sort=True)
    return list(uniques)


def _check(args: dict) -> None:
    """Arguments that cannot be split across partitions, refused before any work."""
    if args.get("groups") is None:
        raise ValueError("groups: a dask DataFrame in data= is fitted group by group; give "
                         "the group column(s)")
    _columns(args["groups"], "groups")
    for arg in ("x", "y"):
        _columns(args[arg], arg)
    for arg in ("sigma", "weights", "clusters"):
        if args.get(arg) is not None and not isinstance(args[arg], str):
            raise ValueError(f"{arg}: with a dask DataFrame in data=, give a column name")
    if args.get("progress") is not None:
        raise ValueError("progress: with a dask DataFrame, follow the tasks with Dask's own "
                         "(distributed.progress, or the dashboard)")
    if args.get("problem_ids") is not None:
        raise ValueError("problem_ids: set from the groups' labels with a dask DataFrame")
    grid = args.get("p0")
    if hasattr(grid, "per_problem") and grid.per_problem():
        raise ValueError("p0: a grid with starts per problem cannot follow the groups into "
                         "their partitions; give starts shared by all problems")
    for arg in ("p0", "bounds"):
        value = args.get(arg)
        values = value.values() if isinstance(value, dict) else (
            value if arg == "bounds" and isinstance(value, (tuple, list)) else [value])
        for v in values:
            v = list(v.values()) if isinstance(v, dict) else v
            if isinstance(v, np.ndarray) and v.ndim >= 2:
                raise ValueError(f"{arg}: per-problem values cannot follow the groups into "
                                 f"their partitions; give one row, a dict of scalars or a "
                                 f"lawfit.grid")


def run(call: Callable, model, args: dict):
    """``call`` (lawfit.fit or lawfit.bootstrap) of ``model`` with ``args`` (its other
    arguments, ``data`` a dask DataFrame) partition by partition; the joined result (whose
    warnings the caller gives: the partitions' own count their local problems)."""
    import dask

    _check(args)
    data, groups = args["data"], args["groups"]
    cols = _columns(groups, "groups")
    labels = sorted_labels(data[cols].drop_duplicates().compute(), groups)
    place = {_key(v): i for i, v in enumerate(labels)}
    bootstrap = call.__name__ == "bootstrap"
    # Each row's place in the frame (its partition, its position there): the shuffle moves
    # rows, and a group's points must keep the order the pandas frame gives them (a fit's
    # sums, a resample's draws, follow it).
    numbered = data.map_partitions(_number, meta=_number(data._meta))
    parts = numbered.shuffle(on=cols).to_delayed()
    rest = dict(args, data=None)  # each task's frame is its partition
    tasks = [dask.delayed(_fit_part)(call, model, part, rest, place, bootstrap)
             for part in parts]
    done = [r for r in dask.compute(*tasks) if r is not None]
    if not done:
        raise ValueError("data: the dask DataFrame has no rows")
    ids = np.concatenate([i for i, _ in done])
    order = np.argsort(ids, kind="stable")
    results = [r for _, r in done]
    return _join_bootstraps(results, order) if bootstrap else _join_fits(results, order)


def _key(label):
    """A label as a dict key that equals across partitions (NumPy scalars as Python's)."""
    if isinstance(label, tuple):
        return tuple(_key(v) for v in label)
    return label.item() if isinstance(label, np.generic) else label


_PLACE = ["__lawfit_partition", "__lawfit_row"]
# Warnings that count or name a call's problems: the caller warns once for the joined result.
_JOINED_WARNINGS = ("FragileFitWarning", "BootstrapWarning")


def _number(frame, partition_info=None):
    """A partition with its rows' places (see run)."""
    part = 0 if partition_info is None else partition_info["number"]
    return frame.assign(**{_PLACE[0]: np.full(len(frame), part, dtype=np.int64),
                           _PLACE[1]: np.arange(len(frame), dtype=np.int64)})


def _fit_part(call, model, frame, args: dict, place: dict, bootstrap: bool):
    """One partition's call on its pandas frame, its rows in the whole frame's order: (the
    global places of its groups, result), or None for an empty partition."""
    if len(frame) == 0:
        return None
    frame = frame.sort_values(_PLACE, kind="stable").drop(columns=_PLACE)
    ids = np.array([place[_key(v)] for v in sorted_labels(frame, args["groups"])],
                   dtype=np.int64)
    kw = dict(args, data=frame)
    if bootstrap:
        kw["problem_ids"] = ids
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call(model, **kw)
    for w in caught:  # the joined result's own warnings replace those naming local problems
        if w.category.__name__ not in _JOINED_WARNINGS:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return ids, result


def _cat(arrays, order):
    if any(a is None for a in arrays):
        return None
    return np.concatenate(arrays)[order]


def _points(parts, order, per_point: str):
    """A per-point array (``fun``, ``jac``) of the parts, its problems' rows put in
    ``order``, and the offsets of the result; (None, offsets) where the parts have none."""
    n_points = np.concatenate([np.asarray(p.n_points) for p in parts])[order]
    offsets = np.zeros(len(n_points) + 1, dtype=np.int64)
    np.cumsum(n_points, out=offsets[1:])
    arrays = [getattr(p, per_point) for p in parts]
    if any(a is None for a in arrays):
        return None, offsets
    old = np.zeros(len(n_points) + 1, dtype=np.int64)
    np.cumsum(np.concatenate([np.asarray(p.n_points) for p in parts]), out=old[1:])
    rows = np.concatenate([np.arange(old[i], old[i + 1]) for i in order]) if len(order) \
        else np.zeros(0, dtype=np.int64)
    return np.concatenate(arrays)[rows], offsets


def _join_fits(parts, order) -> FitResult:
    """The FitResults of several calls as one, problem ``order[k]`` of their concatenation
    as problem k."""
    arrays = {k: _cat([getattr(p, k) for p in parts], order) for k in _FIT_FIELDS}
    fun, offsets = _points(parts, order, "fun")
    jac, _ = _points(parts, order, "jac")
    first = parts[0]
    out = FitResult(first.model, arrays, None, labels=_cat(
        [p.labels for p in parts], order), cov=_cat([p.cov for p in parts], order),
        backend=first.backend, label_names=first.label_names, offsets=offsets, fun=fun,
        jac=jac)
    return out


class _JoinedJackknife:
    """The leave-one-out fits of joined bootstraps: each part's, padded to the longest and
    put in the joined order (picklable, as each part's is)."""

    def __init__(self, parts, order):
        self.parts, self.order = parts, order

    def __call__(self) -> np.ndarray:
        jks = [p.jackknife() for p in self.parts]
        J = max(j.shape[1] for j in jks)
        padded = [np.pad(j, ((0, 0), (0, J - j.shape[1]), (0, 0)), constant_values=np.nan)
                  for j in jks]
        return np.concatenate(padded)[self.order]


def _join_bootstraps(parts, order):
    """The BootstrapResults of several calls as one (see _join_fits)."""
    first = parts[0]
    out = type(first)(_join_fits([p.fit for p in parts], order),
                          _cat([p.samples for p in parts], order),
                          _cat([p.status for p in parts], order), first.seed,
                          jackknife=_JoinedJackknife(parts, order),
                          n_continued=_cat([p.n_continued for p in parts], order),
                          n_refit=_cat([p.n_refit for p in parts], order),
                          method=first.method)
    return out
