"""``lawfit.plot``: figures of fits and bootstraps (needs matplotlib: ``pip install
'lawfit[plot]'``).

    >>> import lawfit.plot
    >>> b = lawfit.bootstrap("saturating_power_law", x, y, n_resamples=1000)
    >>> fig = lawfit.plot.fits(b, x, y, level=0.9)          # data, law and its 90% band
    >>> fig = lawfit.plot.residuals(b.fit, x, y)
    >>> fig = lawfit.plot.params(b, problem=0)              # pairwise bootstrap scatter
    >>> fig = lawfit.plot.compute_optimal(b)                # Chinchilla laws: N_opt(C), D_opt(C)

Every function returns the matplotlib ``Figure`` (its axes in ``fig.axes``) and draws
nothing else: save it with ``fig.savefig(path)``.  The data come as they come to
``lawfit.fit``: a list of per-problem arrays, one problem's arrays, flat arrays with
``groups``, or a DataFrame with ``data=`` and column names (``groups`` then names the group
columns, in the fit's order: sorted by label).

Bands come from the bootstrap (:meth:`lawfit.BootstrapResult.predict`), computed for the
problems drawn only; a :class:`lawfit.FitResult` draws the fitted law without a band.
"""
from __future__ import annotations

import copy
import math
from typing import List, Optional, Sequence

import numpy as np

__all__ = ["fits", "residuals", "params", "compute_optimal", "group_labels", "split"]


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("lawfit.plot needs matplotlib: pip install 'lawfit[plot]'") from None
    return plt


def _parts(result):
    """(FitResult, BootstrapResult or None) of a result of either kind."""
    from .bootstrap import BootstrapResult

    if isinstance(result, BootstrapResult):
        return result.fit, result
    if hasattr(result, "x") and hasattr(result, "param_names") and hasattr(result, "model"):
        return result, None
    raise TypeError(f"result: expected a lawfit.FitResult or lawfit.BootstrapResult, got "
                    f"{type(result).__name__}")


def group_labels(data, groups):
    """The fit's problem labels for a DataFrame grouped by column(s) ``groups``, in the
    fit's order (sorted), and each row's problem index: ``(labels, codes)``."""
    import pandas as pd

    if isinstance(groups, str):
        labels, codes = np.unique(data[groups].to_numpy(), return_inverse=True)
        return list(labels), codes.reshape(-1)
    codes, uniques = pd.MultiIndex.from_frame(data[list(groups)]).factorize(sort=True)
    return list(uniques), np.asarray(codes)


def split(n_problems: int, n_inputs: int, x=None, y=None, *, data=None, groups=None):
    """Per-problem data ``[(X_i (m_i, n_inputs), y_i (m_i,))]`` and labels (or None) from
    any of the batch forms ``lawfit.fit`` takes (lists, one problem's arrays, padded 2-D
    ``y``, flat arrays with ``groups``, or a DataFrame with ``data=``)."""
    labels = None
    if data is not None:
        xs = [x] if isinstance(x, str) else list(x)
        missing = [c for c in xs + [y] if c not in data.columns]
        if missing:
            raise ValueError(f"data: no column {', '.join(map(repr, missing))}")
        X = np.column_stack([data[c].to_numpy(dtype=np.float64) for c in xs])
        Y = data[y].to_numpy(dtype=np.float64)
        if groups is None:
            out = [(X, Y)]
        else:
            labels, codes = group_labels(data, groups)
            out = [(X[codes == i], Y[codes == i]) for i in range(len(labels))]
    elif isinstance(y, (list, tuple)):
        xl = x if isinstance(x, (list, tuple)) else [x] * len(y)
        out = [(np.asarray(a, dtype=np.float64).reshape(len(b_), -1),
                np.asarray(b_, dtype=np.float64)) for a, b_ in zip(xl, y)]
    else:
        Y = np.asarray(y, dtype=np.float64)
        X = np.asarray(x, dtype=np.float64)
        if groups is not None:
            g = np.asarray(groups)
            labels, codes = np.unique(g, return_inverse=True)
            labels = list(labels)
            X = X.reshape(len(Y), -1)
            out = [(X[codes == i], Y[codes == i]) for i in range(len(labels))]
        elif Y.ndim == 2:
            Xs = X if X.shape[:2] == Y.shape else np.broadcast_to(
                X.reshape(1, Y.shape[1], -1), (Y.shape[0], Y.shape[1], X.size // Y.shape[1]))
            out = [(Xs[i].reshape(Y.shape[1], -1), Y[i]) for i in range(len(Y))]
        else:
            out = [(X.reshape(len(Y), -1), Y)]
    if len(out) != n_problems:
        raise ValueError(f"data: {len(out)} problem(s) in the data, {n_problems} in the result")
    for X, _ in out:
        if X.shape[1] != n_inputs:
            raise ValueError(f"x: the law takes {n_inputs} input(s), the data have "
                             f"{X.shape[1]}")
    return [(X, Y) for X, Y in out], labels


def _subset(boot, idx: Sequence[int], method: str):
    """The bootstrap of problems ``idx`` alone (a shallow copy whose per-problem arrays are
    sliced), so that bands and allocations are computed for the problems drawn only."""
    P = len(boot.fit.x)
    idx = np.asarray(idx, dtype=np.int64)
    if len(idx) == P and np.array_equal(idx, np.arange(P)):
        return boot
    if method == "bca":
        boot.jackknife()  # computed once for all problems, then sliced with the rest

    def sliced(obj):
        out = copy.copy(obj)
        for k, v in vars(obj).items():
            if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == P:
                setattr(out, k, v[idx])
        return out

    sub = sliced(boot)
    sub.fit = sliced(boot.fit)
    return sub


def _axes_grid(n: int, ncols: Optional[int], size=(4.2, 3.3)):
    plt = _plt()
    ncols = ncols or min(n, 4)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False, layout="constrained")
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _title(labels, label_names, i) -> str:
    """Problem i's title: its label (name=value, ...), wrapped to fit over one axes."""
    if labels is None:
        return f"problem {i}"
    lab = labels[i]
    if isinstance(lab, tuple):
        if label_names:
            text = ", ".join(f"{n}={v}" for n, v in zip(label_names, lab))
        else:
            text = ", ".join(map(str, lab))
    else:
        text = f"{label_names[0]}={lab}" if label_names else str(lab)
    return _wrap(text)


def _wrap(text: str, width: int = 48) -> str:
    """Lines of at most ``width`` characters, long words (paths) broken too."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width, break_long_words=True)) or text


def _span(v: np.ndarray, n: int) -> np.ndarray:
    v = v[np.isfinite(v)]
    lo, hi = float(v.min()), float(v.max())
    if lo > 0:
        return np.geomspace(lo, hi, n)
    return np.linspace(lo, hi, n)


def _names(fit, x, data) -> List[str]:
    if data is not None:
        return [x] if isinstance(x, str) else list(x)
    return list(fit.model.input_names)


def _problems(P: int, problems, max_problems: int) -> List[int]:
    if problems is None:
        return list(range(min(P, max_problems)))
    idx = [int(i) for i in np.atleast_1d(problems)]
    bad = [i for i in idx if not 0 <= i < P]
    if bad:
        raise ValueError(f"problems: {bad} out of range for {P} problems")
    return idx


def _problem_data(fit, x, y, data, groups):
    """What fits() and residuals() draw from: each problem's points (split), its labels and
    their column names, and the inputs' names."""
    per, labels = split(len(fit.x), fit.model.n_inputs, x, y, data=data, groups=groups)
    if labels is None and getattr(fit, "labels", None) is not None and groups is None:
        labels = list(fit.labels)
    label_names = ([groups] if isinstance(groups, str) else list(groups)) \
        if groups is not None else getattr(fit, "label_names", None)
    return per, labels, label_names, _names(fit, x, data)


def fits(result, x=None, y=None, *, data=None, groups=None, problems=None,
         level: float = 0.9, method: str = "percentile", along=None, at=None,
         n_curves: int = 4, max_problems: int = 16, ncols: Optional[int] = None,
         n_grid: int = 120, y_label: Optional[str] = None,
         titles: Optional[Sequence[str]] = None):
    """The data and the fitted law of each problem on log-log axes, with the bootstrap
    band, one axes per problem.

    Parameters
    ----------
    result : lawfit.BootstrapResult or lawfit.FitResult
        A bootstrap draws each law with its band at ``level`` (``predict``); a fit draws
        the law alone.
    x, y, data, groups
        The data the result was fitted to, in any form ``lawfit.fit`` takes (see
        :func:`split`); with ``data`` a DataFrame, ``x`` and ``y`` are column names and
        ``groups`` the group column(s).
    problems : int or sequence of int, optional
        The problems to draw (default: the first ``max_problems``).
    level : float
        The band's confidence level (default 0.9).
    method : {"percentile", "bca"}
        The band's interval method.
    along : int or str, optional
        A law of several inputs: the input on the horizontal axis (default the first);
        each curve holds the other inputs fixed, at ``at`` ({name: values} for the first
        held input; default ``n_curves`` values spread over the data's range, log-evenly),
        any further inputs at their median.  Data points are coloured by the first held
        input, curves with the same colour scale.
    n_curves : int
        Curves per axes for a law of several inputs (default 4).
    max_problems : int
        The most problems drawn by default (16).
    ncols : int, optional
        Axes per row (default up to 4).
    n_grid : int
        Points along each curve (120).
    y_label : str, optional
        The vertical axis' label (default: ``y`` when it is a column name, else "y").
    titles : sequence of str, optional
        The axes' titles, one per problem drawn (default: each problem's group label,
        "problem i" without labels, the model's name for a single problem).

    Returns
    -------
    matplotlib.figure.Figure
        One axes per problem, titled by its label: the data (a scatter), each curve of the
        fitted law (a line, labelled "fit"), and its band (a filled polygon, labelled with
        the level and method).
    """
    plt = _plt()
    fit, boot = _parts(result)
    P, k = len(fit.x), fit.model.n_inputs
    per, labels, label_names, names = _problem_data(fit, x, y, data, groups)
    idx = _problems(P, problems, max_problems)
    a = 0 if along is None else (names.index(along) if isinstance(along, str) else int(along))
    if not 0 <= a < k:
        raise ValueError(f"along: expected one of the inputs {names}, got {along!r}")
    held = [j for j in range(k) if j != a]
    if titles is not None and len(titles) != len(idx):
        raise ValueError(f"titles: {len(titles)} given for {len(idx)} problems drawn")
    fig, axes = _axes_grid(len(idx), ncols)
    sub = _subset(boot, idx, method) if boot is not None else None
    cmap = plt.get_cmap("viridis")
    for n, (i, ax) in enumerate(zip(idx, axes)):
        X, Y = per[i]
        ok = np.isfinite(Y) & np.all(np.isfinite(X), axis=1)
        X, Y = X[ok], Y[ok]
        grid = _span(X[:, a], n_grid)
        if held:
            h = held[0]
            if at is not None:
                if isinstance(at, dict) and names[h] not in at:
                    raise ValueError(f"at: expected values for the held input {names[h]!r}, "
                                     f"got {sorted(at)}")
                values = np.atleast_1d(np.asarray(at[names[h]] if isinstance(at, dict)
                                                  else at, dtype=np.float64))
            else:
                values = np.quantile(X[:, h], np.linspace(0.1, 0.9, n_curves)) \
                    if not np.all(X[:, h] > 0) else np.exp(np.quantile(
                        np.log(X[:, h]), np.linspace(0.1, 0.9, n_curves)))
            both = np.r_[values, X[:, h]]
            lo_v, hi_v = float(np.min(both)), float(np.max(both))
            if lo_v > 0:
                from matplotlib.colors import LogNorm

                norm = LogNorm(lo_v, hi_v if hi_v > lo_v else lo_v * 1.0001)
            else:
                from matplotlib.colors import Normalize

                norm = Normalize(lo_v, hi_v if hi_v > lo_v else lo_v + 1)
            curves = []
            for v in values:
                C = np.empty((len(grid), k))
                C[:, a] = grid
                C[:, h] = v
                for j in held[1:]:
                    C[:, j] = np.median(X[:, j])
                curves.append((C, cmap(norm(v)), f"{names[h]}={v:.3g}"))
            sc = ax.scatter(X[:, a], Y, c=X[:, h], cmap=cmap, norm=norm, s=12, zorder=3,
                            label="data")
            fig.colorbar(sc, ax=ax, label=names[h])
        else:
            curves = [(grid[:, None], "C0", None)]
            ax.scatter(X[:, 0], Y, s=12, color="k", zorder=3, label="data")
        for c, (C, colour, tag) in enumerate(curves):
            if sub is not None:
                est, lo, hi = _subset(sub, [n], method).predict(C if k > 1 else C[:, 0], level,
                                                               method)
                est, lo, hi = est[0], lo[0], hi[0]
                ax.fill_between(C[:, a], lo, hi, color=colour, alpha=0.25, linewidth=0,
                                label=f"{level:.0%} band ({method})" if c == 0 else None)
            else:
                with np.errstate(all="ignore"):
                    est = fit.model(C if k > 1 else C[:, 0], *fit.x[i])
            ax.plot(C[:, a], est, color=colour, label="fit" if c == 0 else None)
        if np.all(X[:, a] > 0):
            ax.set_xscale("log")
        if np.all(Y > 0):
            ax.set_yscale("log")
            if Y.max() < 10 * Y.min():  # under a decade: plain numbers, not powers of 10
                from matplotlib.ticker import ScalarFormatter

                ax.yaxis.set_major_formatter(ScalarFormatter())
                ax.yaxis.set_minor_formatter(ScalarFormatter())
        ax.set_xlabel(names[a])
        ax.set_ylabel(y_label or (y if isinstance(y, str) else "y"))
        if titles is not None:
            title = _wrap(str(titles[n]))
        elif P > 1 or labels is not None:
            title = _title(labels, label_names, i)
        else:
            title = fit.model.name
        ax.set_title(title, fontsize="medium")
        if n == 0:
            ax.legend(fontsize="small", framealpha=0.6)
    return fig


def residuals(result, x=None, y=None, *, data=None, groups=None, problems=None,
              kind: str = "linear", along=None, max_problems: int = 16,
              ncols: Optional[int] = None):
    """Each problem's residuals at the fit, against one input, one axes per problem.

    Parameters
    ----------
    result : lawfit.FitResult or lawfit.BootstrapResult
        The fit (a bootstrap's full-data fit).
    x, y, data, groups, problems, max_problems, ncols
        As in :func:`fits`.
    kind : {"linear", "log"}
        ``y - f`` or ``log y - log f`` (as the fit's ``residuals`` option).
    along : int or str, optional
        The input on the horizontal axis (default the first).

    Returns
    -------
    matplotlib.figure.Figure
        One axes per problem: the residuals (a scatter) and the zero line.
    """
    if kind not in ("linear", "log"):
        raise ValueError(f"kind: expected 'linear' or 'log', got {kind!r}")
    fit, _ = _parts(result)
    P, k = len(fit.x), fit.model.n_inputs
    per, labels, label_names, names = _problem_data(fit, x, y, data, groups)
    a = 0 if along is None else (names.index(along) if isinstance(along, str) else int(along))
    idx = _problems(P, problems, max_problems)
    fig, axes = _axes_grid(len(idx), ncols)
    for i, ax in zip(idx, axes):
        X, Y = per[i]
        with np.errstate(all="ignore"):
            f = fit.model(X if k > 1 else X[:, 0], *fit.x[i])
            r = np.log(Y) - np.log(f) if kind == "log" else Y - f
        ax.scatter(X[:, a], r, s=12, color="k", label="residual")
        ax.axhline(0.0, color="C3", linewidth=1)
        if np.all(X[:, a] > 0):
            ax.set_xscale("log")
        ax.set_xlabel(names[a])
        ax.set_ylabel("log y - log f" if kind == "log" else "y - f")
        ax.set_title(_title(labels, label_names, i), fontsize="medium")
    return fig


def params(boot, problem: int = 0, names: Optional[Sequence[str]] = None,
           max_points: int = 4000, bins: int = 40):
    """Pairwise scatter of one problem's bootstrap parameter samples.

    Parameters
    ----------
    boot : lawfit.BootstrapResult
    problem : int
        The problem drawn.
    names : sequence of str, optional
        The parameters drawn (default all), by name.
    max_points : int
        At most this many converged samples are drawn (the first ones; default 4,000).
    bins : int
        Histogram bins on the diagonal.

    Returns
    -------
    matplotlib.figure.Figure
        An n x n grid: histograms of each parameter on the diagonal, scatters of the pairs
        below it with the full-data estimate marked, and nothing above it.
    """
    plt = _plt()
    fit, b = _parts(boot)
    if b is None:
        raise TypeError("boot: expected a lawfit.BootstrapResult (a scatter needs samples)")
    all_names = list(b.param_names)
    names = all_names if names is None else list(names)
    unknown = [n for n in names if n not in all_names]
    if unknown:
        raise ValueError(f"names: unknown parameter(s) {unknown}; the law's are {all_names}")
    P = len(fit.x)
    if not 0 <= problem < P:
        raise ValueError(f"problem: {problem} out of range for {P} problems")
    cols = [all_names.index(n) for n in names]
    S = b.samples[problem][b.converged[problem]][:max_points][:, cols]
    est = fit.x[problem][cols]
    n = len(cols)
    fig, axes = plt.subplots(n, n, figsize=(2.2 * n + 0.6, 2.2 * n + 0.3), squeeze=False,
                             layout="constrained")
    for r_ in range(n):
        for c in range(n):
            ax = axes[r_, c]
            if c > r_:
                ax.set_visible(False)
                continue
            if c == r_:
                ax.hist(S[:, c], bins=bins, color="C0", alpha=0.7)
                ax.axvline(est[c], color="C3", linewidth=1)
            else:
                ax.scatter(S[:, c], S[:, r_], s=2, alpha=0.3, color="C0", rasterized=True)
                ax.plot([est[c]], [est[r_]], marker="x", color="C3", markersize=8,
                        linestyle="none")
            if r_ == n - 1:
                ax.set_xlabel(names[c])
            if c == 0 and r_ > 0:
                ax.set_ylabel(names[r_])
    fig.suptitle(f"bootstrap samples, problem {problem} ({len(S):,} converged resamples)",
                 fontsize="medium")
    return fig


def compute_optimal(boot, C=None, problems=None, level: float = 0.9,
                    method: str = "percentile", max_problems: int = 8, labels=None):
    """The compute-optimal frontier of Chinchilla laws: N_opt(C) and D_opt(C) under
    C = 6 N D, with bootstrap bands (:meth:`lawfit.BootstrapResult.compute_optimal`).

    Parameters
    ----------
    boot : lawfit.BootstrapResult
        A bootstrap of ``chinchilla`` or ``chinchilla_log``.
    C : array, optional
        Compute budgets in FLOP (default 60 values from 1e18 to 1e26).
    problems : int or sequence of int, optional
        The problems drawn (default the first ``max_problems``), one colour each.
    level, method
        The bands' level and interval method.
    labels : sequence of str, optional
        Legend labels of the problems drawn (default their labels, else "problem i").

    Returns
    -------
    matplotlib.figure.Figure
        Two log-log axes, N_opt and D_opt against C: a line and a band per problem.
    """
    plt = _plt()
    fit, b = _parts(boot)
    if b is None:
        raise TypeError("boot: expected a lawfit.BootstrapResult")
    C = np.geomspace(1e18, 1e26, 60) if C is None else np.atleast_1d(np.asarray(C, float))
    idx = _problems(len(fit.x), problems, max_problems)
    sub = _subset(b, idx, method)
    co = sub.compute_optimal(C, level, method)
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), layout="constrained")
    fit_labels = getattr(fit, "labels", None)
    for key, ax in zip(("N_opt", "D_opt"), axes):
        est, lo, hi = (np.asarray(v) for v in co[key])
        for n, i in enumerate(idx):
            if labels is not None:
                name = str(labels[n])
            elif fit_labels is not None and len(fit.x) > 1:
                name = str(fit_labels[i])
            else:
                name = f"problem {i}" if len(fit.x) > 1 else "fit"
            ax.plot(C, est[n], color=f"C{n % 10}", label=name)
            ax.fill_between(C, lo[n], hi[n], color=f"C{n % 10}", alpha=0.25, linewidth=0,
                            label=f"{level:.0%} band ({method})" if n == 0 else None)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("C (FLOP)")
        ax.set_ylabel("N_opt (parameters)" if key == "N_opt" else "D_opt (tokens)")
    est, lo, hi = (np.asarray(v) for v in co["exponent"])
    if len(idx) == 1:
        axes[0].set_title(f"N_opt ~ C^{est[0]:.3f} [{lo[0]:.3f}, {hi[0]:.3f}]",
                          fontsize="medium")
    else:
        axes[0].set_title("compute-optimal model size", fontsize="medium")
    axes[1].set_title("compute-optimal tokens", fontsize="medium")
    axes[0].legend(fontsize="small")
    return fig
