"""Scale-out with Dask: ``lawfit.fit`` and ``lawfit.bootstrap`` on a dask DataFrame
(``data=`` with ``groups=``), each group whole on one worker, the results gathered into the
FitResult / BootstrapResult that the same call on the pandas frame gives, bit for bit,
whatever the partitioning (``pip install 'lawfit[dask]'``).

How: one pass finds each partition's group labels, put in the order the pandas call sorts
them.  A group whose rows all lie in one partition is fitted there, by the ordinary call on the
partition's pandas frame, as a task on the active Dask client's workers (or Dask's default
scheduler where there is no client); the few groups that straddle partitions (rows cut into
partitions without regard to groups) are gathered, their rows in the frame's order, and
fitted by one more task.  No shuffle: each group's points keep the order the pandas frame
gives them.  A bootstrap gets ``problem_ids`` = its groups' places among all the groups, so
that each group is resampled as the whole call resamples it.  The tasks' results come back
(results pickle) and are joined in the global order.  Inside a worker, a call's default
thread count is the worker's own budget (``_options.default_threads``).
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
    import pandas as pd

    if args.get("data") is None:
        return _run_array(call, model, args)
    _check(args)
    data, groups = args["data"], args["groups"]
    cols = _columns(groups, "groups")
    # One pass: each partition's distinct labels.  A group whose rows lie in one partition
    # is fitted there; the few that straddle partitions (where rows were cut into
    # partitions without regard to groups) are gathered, their rows in the frame's order.
    parts = data.to_delayed()  # the same partitions for every pass below
    found = dask.compute(*[dask.delayed(_distinct)(part[cols], k)
                           for k, part in enumerate(parts)])
    seen = pd.concat(found, ignore_index=True)
    part_of = seen[_PART].to_numpy()
    if isinstance(groups, str):  # one column: NumPy does the bookkeeping
        values = seen[groups].to_numpy()
        labels, inverse, count = np.unique(values, return_inverse=True, return_counts=True)
        straddles = count[inverse] > 1  # a label row in more than one partition
        split = [_key(v) for v in labels[count > 1]]

        def ids_of(rows):  # the global places of these label rows' groups, a call's order
            return np.searchsorted(labels, np.unique(rows[groups].to_numpy())).astype(np.int64)
    else:
        labels = sorted_labels(seen[cols].drop_duplicates(), groups)
        place = {_key(v): i for i, v in enumerate(labels)}
        keys = _row_labels(seen, groups)
        parts_of = {}
        for lab, part in zip(keys, part_of):
            parts_of.setdefault(lab, set()).add(int(part))
        split = [lab for lab, where in parts_of.items() if len(where) > 1]
        straddles = np.array([len(parts_of[lab]) > 1 for lab in keys], dtype=bool)

        def ids_of(rows):  # the global places of these label rows' groups, a call's order
            return np.array([place[_key(v)] for v in sorted_labels(rows, groups)],
                            dtype=np.int64)

    bootstrap = call.__name__ == "bootstrap"
    # Each task gets only its own groups' places (a map of all the groups would travel to
    # every worker); the call's arguments go once into the graph, not walked by dask.
    rest = dask.delayed(dict(args, data=None), traverse=False)
    split_d = dask.delayed(split, traverse=False) if split else None
    tasks, places = [], []
    for k, part in enumerate(parts):
        mine = (part_of == k) & ~straddles
        if not mine.any():
            continue
        places.append(ids_of(seen[mine]))
        tasks.append(dask.delayed(_fit_part)(call, model, part, rest, places[-1], bootstrap,
                                             split_d))
    if split:  # their rows, partition by partition, in the frame's order
        rows = [dask.delayed(_split_rows)(part, groups, split_d) for part in parts]
        places.append(ids_of(seen[straddles].drop_duplicates(subset=cols)))
        tasks.append(dask.delayed(_fit_part)(call, model, dask.delayed(_concat)(rows), rest,
                                             places[-1], bootstrap, None))
    results = dask.compute(*tasks)
    if not results:
        raise ValueError("data: the dask DataFrame has no rows")
    return _join(results, np.argsort(np.concatenate(places), kind="stable"), bootstrap)


def _run_array(call, model, args: dict):
    """``call`` on a padded batch whose ``y`` is a dask array (problems x points), block of
    rows by block of rows on the workers: each block is the ordinary call on its rows (a
    bootstrap keyed by the rows' places in the whole batch, as the call on the NumPy array
    keys them), the results joined in order."""
    import dask

    y = args["y"]
    if getattr(y, "ndim", None) != 2:
        raise ValueError("y: a dask array is fitted as a padded batch, shape (problems, "
                         "points)")
    P = y.shape[0]
    for arg in ("x", "sigma", "weights", "p0", "groups", "clusters", "progress",
                "problem_ids"):
        value = args.get(arg)
        if arg in ("groups", "clusters", "progress", "problem_ids") and \
                value is not None and value is not False:
            raise ValueError(f"{arg}: not taken with a dask array y (a padded batch)")
        if is_dask_collection(value):
            raise ValueError(f"{arg}: with a dask array y, give a NumPy array (rows are cut "
                             f"to follow y's blocks)")
    y = y.rechunk({1: -1})  # every block holds whole problems
    bounds = args.get("bounds")
    starts = np.concatenate([[0], np.cumsum(y.chunks[0])])
    rest = dict(args, y=None)
    tasks = []
    for k, block in enumerate(y.to_delayed()[:, 0]):
        a, b = int(starts[k]), int(starts[k + 1])
        kw = {name: _rows(args.get(name), a, b, y.shape) for name in ("x", "sigma", "weights")}
        kw["p0"] = _rows(args.get("p0"), a, b, (P,))
        kw["bounds"] = tuple(_rows(v, a, b, (P,)) for v in bounds) \
            if isinstance(bounds, (tuple, list)) else bounds
        if call.__name__ == "bootstrap":
            kw["problem_ids"] = np.arange(a, b, dtype=np.int64)
        tasks.append(dask.delayed(_fit_block)(call, model, block,
                                              dask.delayed(dict(rest, **kw), traverse=False)))
    return _join(dask.compute(*tasks), np.arange(P), call.__name__ == "bootstrap")


def _rows(value, a: int, b: int, lead: tuple):
    """Rows a:b of a per-problem NumPy argument (an array whose shape starts with ``lead``:
    (P, m) for x, sigma and weights, as y's; (P,) and 2-D for p0 and bounds; a grid of
    per-problem starts); anything else (shared by all problems: one row, a grid of x, a
    scalar, a dict) as it is."""
    if hasattr(value, "per_problem") and value.per_problem():
        return value.rows(a, b)
    if isinstance(value, np.ndarray) and value.ndim >= 2 and \
            value.shape[:len(lead)] == tuple(lead):
        return value[a:b]
    return value


def _fit_block(call, model, block, args: dict):
    """One block of rows: the ordinary call on them."""
    return _call(call, model, dict(args, y=np.asarray(block)))


def _call(call, model, kw: dict):
    """``call(model, **kw)``, less the warnings that count or name its problems (the joined
    result's own replace them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call(model, **kw)
    for w in caught:
        if w.category.__name__ not in _JOINED_WARNINGS:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result


def _key(label):
    """A label as a dict key that equals across partitions (NumPy scalars as Python's)."""
    if isinstance(label, tuple):
        return tuple(_key(v) for v in label)
    return label.item() if isinstance(label, np.generic) else label


_PART = "__lawfit_partition"
# Warnings that count or name a call's problems: the caller warns once for the joined result.
_JOINED_WARNINGS = ("FragileFitWarning", "BootstrapWarning")


def _distinct(frame, part: int):
    """A partition's distinct label rows, with the partition's number."""
    out = frame.drop_duplicates()
    return out.assign(**{_PART: np.full(len(out), part, dtype=np.int64)})


def _split_rows(frame, groups, split):
    """The rows of a partition that belong to the groups in ``split``."""
    return frame[_is_split(frame, groups, split)]


def _row_labels(frame, groups) -> list:
    """Each row's label as a dict key: a tuple of the group columns, or the one value."""
    if isinstance(groups, str):
        return [_key(v) for v in frame[groups].to_numpy()]
    return [_key(tuple(r)) for r in frame[list(groups)].itertuples(index=False, name=None)]


def _is_split(frame, groups, split):
    """Which rows of a partition belong to the groups in ``split`` (label keys)."""
    import pandas as pd

    if isinstance(groups, str):
        return frame[groups].isin(split)
    return pd.Series(pd.MultiIndex.from_frame(frame[list(groups)]).isin(split),
                     index=frame.index)


def _concat(frames):
    import pandas as pd

    return pd.concat(frames)


def _fit_part(call, model, frame, args: dict, ids, bootstrap: bool, split):
    """A call on one pandas frame (a partition without the groups in ``split``, or the
    gathered rows of those groups), its rows in the whole frame's order, its groups being
    those at places ``ids`` among all (in the call's order)."""
    if split:
        frame = frame[~_is_split(frame, args["groups"], split)]
    kw = dict(args, data=frame)
    if bootstrap:
        kw["problem_ids"] = ids
    result = _call(call, model, kw)
    fitted = len(result.fit if bootstrap else result)
    if fitted != len(ids):  # the client's count of its groups is the call's
        raise RuntimeError(f"lawfit: a partition's call fitted {fitted} groups, the client "
                           f"counted {len(ids)}")
    return result


def _cat(arrays, order):
    if any(a is None for a in arrays):
        return None
    return np.concatenate(arrays)[order]


def _join_fits(parts, order) -> FitResult:
    """The FitResults of several calls as one, problem ``order[k]`` of their concatenation
    as problem k (its points, for ``fun`` and ``jac``, moved with it)."""
    arrays = {k: _cat([getattr(p, k) for p in parts], order) for k in _FIT_FIELDS}
    n_points = np.concatenate([np.asarray(p.n_points) for p in parts])
    old = np.zeros(len(n_points) + 1, dtype=np.int64)
    np.cumsum(n_points, out=old[1:])
    offsets = np.zeros(len(n_points) + 1, dtype=np.int64)
    np.cumsum(n_points[order], out=offsets[1:])
    rows = np.concatenate([np.arange(old[i], old[i + 1]) for i in order]) if len(order) \
        else np.zeros(0, dtype=np.int64)
    per_point = {k: None if any(getattr(p, k) is None for p in parts)
                 else np.concatenate([getattr(p, k) for p in parts])[rows]
                 for k in ("fun", "jac")}
    first = parts[0]
    return FitResult(first.model, arrays, None, labels=_cat([p.labels for p in parts], order),
                     cov=_cat([p.cov for p in parts], order), backend=first.backend,
                     label_names=first.label_names, offsets=offsets, **per_point)


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
    return type(first)(_join_fits([p.fit for p in parts], order),
                       _cat([p.samples for p in parts], order),
                       _cat([p.status for p in parts], order), first.seed,
                       jackknife=_JoinedJackknife(parts, order),
                       n_continued=_cat([p.n_continued for p in parts], order),
                       n_refit=_cat([p.n_refit for p in parts], order), method=first.method,
                       other_basin=None if first.other_basin is None else
                       _cat([p.other_basin for p in parts], order))


def _join(results, order, bootstrap: bool):
    return _join_bootstraps(results, order) if bootstrap else _join_fits(results, order)
