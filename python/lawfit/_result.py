"""Result types: one object of arrays for a whole batch, batch dimension first."""
from __future__ import annotations

from collections import Counter
from typing import Optional

import numpy as np

from ._options import FRAGILE_SHARE
from ._status import Status, messages

__all__ = ["FitResult", "covariance"]

# What a multi-start fit (a grid p0) adds, one value per problem (see lawfit.fit's k).
GRID_FIELDS = ("n_starts", "n_refined", "best_start", "start_cost", "n_at_best",
               "share_at_best", "cost_median")


# The arrays of a saved fit (lawfit._io): always, and where the fit has them.
FIT_ARRAYS = ("x", "cost", "status", "nfev", "njev", "nit", "optimality", "active_mask",
              "n_omitted")
FIT_OPTIONAL = ("n_free", "offsets", "cov", "fun", "jac") + GRID_FIELDS


def covariance(jtj: np.ndarray, cost: np.ndarray, dof_points: np.ndarray,
               fixed: np.ndarray, absolute_sigma: bool = False,
               singular: str = "inf") -> np.ndarray:
    """Parameter covariances from the Gauss-Newton matrices, as scipy's ``curve_fit`` does.

    ``jtj`` is (P, n, n) = J^T J at each solution (J after the robust-loss scaling), ``cost``
    the final cost, ``dof_points`` the number of points of each problem and ``fixed`` (P, n)
    the parameters held by ``lower == upper`` (their rows and columns are 0).  Singular
    directions are dropped: with J^T J scaled to a unit diagonal, eigenvalues at or below
    ``eps * max(m, n)`` times the largest are the rounding of the sums that formed it.
    (scipy, which factors J itself, drops singular values of J below ``eps * max(m, n) *
    s_max``; from J^T J the floor is about the square root of that, so a problem whose
    column-scaled J has a condition number above about ``1 / sqrt(eps * m)``, some 10^7,
    counts as singular here, where scipy's covariance would be mostly rounding.)  The
    result is scaled by ``2 cost / (m - n_free)`` unless
    ``absolute_sigma``.  Where that scale is undefined (``m <= n_free``) or the matrix is not
    finite, the covariance is ``inf``, as in scipy.  A rank-deficient J^T J (a free
    parameter the data cannot determine) gives ``inf`` with ``singular="inf"`` (as scipy's
    ``curve_fit`` with method ``lm``) or the pseudo-inverse with ``singular="pinv"`` (as
    with ``trf``, used when there are bounds).
    """
    compiled = _compiled_covariance()
    if compiled is not None:
        return compiled(np.ascontiguousarray(jtj, dtype=np.float64),
                        np.ascontiguousarray(cost, dtype=np.float64),
                        np.ascontiguousarray(dof_points, dtype=np.float64),
                        np.ascontiguousarray(fixed, dtype=bool), absolute_sigma,
                        singular == "inf")
    return _covariance_numpy(jtj, cost, dof_points, fixed, absolute_sigma, singular)


_COMPILED: list = []  # [lawfit._core.covariance, or None on a broken install]


def _compiled_covariance():
    """The compiled form of covariance() (cpp/src/covariance.h), or None where lawfit._core
    does not load (then the NumPy form serves)."""
    if not _COMPILED:
        try:
            from ._core import covariance as compiled
        except ImportError:  # pragma: no cover - only on a broken install
            compiled = None
        _COMPILED.append(compiled)
    return _COMPILED[0]


def _covariance_numpy(jtj, cost, dof_points, fixed, absolute_sigma: bool = False,
                      singular: str = "inf") -> np.ndarray:
    """covariance() in NumPy: the reference for its compiled form (the same steps, with
    LAPACK's eigh where the core rotates Jacobi's; the tests hold the two together)."""
    jtj = np.asarray(jtj, dtype=float)
    P, n, _ = jtj.shape
    free = ~fixed
    # The masks only where they change something (a small call pays for every array op).
    some_fixed = bool(fixed.any())
    both = free[:, :, None] & free[:, None, :] if some_fixed else None
    a = np.where(both, jtj, 0.0) if some_fixed else jtj
    finite = np.isfinite(a).all(axis=(1, 2))
    if not finite.all():
        a = np.where(finite[:, None, None], a, 0.0)
    # Scaled to a unit diagonal (a parameter's units then do not matter), the rounding of
    # the sums that formed J^T J is about eps * m in every entry: eigenvalues below that
    # cannot be told from zero.
    d = np.sqrt(np.diagonal(a, axis1=1, axis2=2))
    d = np.where(d > 0, d, 1.0)
    ev, vec = np.linalg.eigh(a / (d[:, :, None] * d[:, None, :]))
    n_free = free.sum(axis=1)
    noise = np.finfo(float).eps * np.maximum(dof_points, n)[:, None] * ev.max(axis=1, keepdims=True)
    keep = ev > noise
    inv = np.where(keep, 1.0 / np.where(keep, ev, 1.0), 0.0)
    cov = np.einsum("pij,pj,pkj->pik", vec, inv, vec) / (d[:, :, None] * d[:, None, :])
    dof = dof_points - n_free
    if absolute_sigma:
        scale = np.ones(P)
    else:
        scale = np.where(dof > 0, 2.0 * cost / np.where(dof > 0, dof, 1), np.inf)
    with np.errstate(invalid="ignore"):
        cov = cov * scale[:, None, None]
    bad = ~finite | ~np.isfinite(scale) | np.isnan(cov).any(axis=(1, 2))
    if singular == "inf":
        bad |= (keep.sum(axis=1) < n_free)
    cov[bad] = np.inf
    if some_fixed:
        cov[~both & ~bad[:, None, None]] = 0.0
    return cov


def _more(n: int, idx, problems) -> str:
    """The closing line of a report that shows some of n problems."""
    rest = n - len(idx)
    if rest <= 0 or problems is not None:
        return ""
    return (f"... and {rest} more problem{'s' if rest != 1 else ''} (summary(problems=[...]) "
            f"shows others; to_frame() has them all)")


def label_columns(labels, label_names, P: int) -> dict:
    """Columns naming each of P problems: its group labels (one column per group column,
    named by ``label_names``; ``label`` where unnamed), or ``problem``, its index."""
    if labels is None:
        return {"problem": np.arange(P)}
    labels = _host(labels)
    if label_names and len(labels) and isinstance(labels[0], tuple):  # a column each
        return {name: [lab[k] for lab in labels] for k, name in enumerate(label_names)}
    return {label_names[0] if label_names else "label": list(labels)}


def _host(a):
    """A NumPy view or copy of ``a`` (a CuPy array's ``.get()``; anything else as is)."""
    return a.get() if a is not None and hasattr(a, "get") and not isinstance(a, dict) else a


class FitResult:
    """The fits of a batch of problems, every field an array with the batch dimension first.

    Fields (as in ``scipy.optimize.OptimizeResult``, one row per problem): ``x`` (P, n)
    parameters, ``cost`` (P,) the final cost ``0.5 * sum(w * rho(r**2))``, ``status`` (P,),
    ``success`` (P,), ``nfev``, ``njev``, ``nit`` (P,), ``optimality`` (P,) the infinity norm
    of the projected gradient, ``active_mask`` (P, n) (-1 at a lower bound, +1 at an upper
    bound), ``n_points`` (P,) each fit's points (a point of weight 0 counts) and
    ``n_omitted`` (P,) the missing points (NaN in y or x) left out of it, and, on request,
    ``cov`` (P, n, n) and the residuals ``fun``
    and their Jacobian ``jac`` at the solution (one row per point; ``residuals(i)``).  ``labels`` holds the group
    labels when the batch came with ``groups`` (tuples for several group columns, named by
    ``label_names``).  A fit of CuPy arrays gives CuPy arrays; ``get()`` copies them to the
    host.
    """

    # A multi-start fit's fields (GRID_FIELDS): None unless the fit had a grid of starts.
    n_starts = n_refined = best_start = start_cost = n_at_best = share_at_best = \
        cost_median = None

    def __init__(self, model, arrays: dict, n_points: np.ndarray, labels=None,
                 cov: Optional[np.ndarray] = None, backend: str = "",
                 label_names: Optional[tuple] = None, offsets: Optional[np.ndarray] = None,
                 fun: Optional[np.ndarray] = None, jac: Optional[np.ndarray] = None):
        self.model = model
        self.param_names = model.param_names
        self.x = arrays["x"]
        self.cost = arrays["cost"]
        self.status = arrays["status"]
        self.nfev = arrays["nfev"]
        self.njev = arrays["njev"]
        self.nit = arrays["nit"]
        self.optimality = arrays["optimality"]
        self.active_mask = arrays["active_mask"]
        self._n_points = n_points  # None: from offsets, when asked
        self.offsets = offsets
        self.fun = fun
        self.jac = jac
        self.labels = labels
        self.label_names = label_names
        self.cov = cov
        self.backend = backend
        # Missing points left out of each problem (zeros where the arrays do not say).
        omitted = arrays.get("n_omitted")
        self.n_omitted = np.zeros(len(self.cost), dtype=np.int64) if omitted is None else \
            omitted
        if not arrays.keys().isdisjoint(GRID_FIELDS):  # a fit with a grid of starts
            for key in GRID_FIELDS:
                if arrays.get(key) is not None:  # (else the class's None)
                    setattr(self, key, arrays[key])
        # Free parameters of each problem (those not fixed by lower == upper); None where
        # the fit did not say (a device fit), and then every parameter counts as free.
        self.n_free = arrays.get("n_free")

    @property
    def dof(self) -> np.ndarray:
        """Degrees of freedom of each fit, (P,): its points less its free parameters."""
        free = self.n_free if self.n_free is not None else len(self.param_names)
        return self.n_points - free

    @property
    def n_points(self) -> np.ndarray:
        """Points of each problem's fit, (P,): its points less the missing ones left out
        (``n_omitted``); a point of weight 0 counts."""
        if self._n_points is None:
            self._n_points = np.diff(self.offsets)
        return self._n_points

    @property
    def fragile(self) -> Optional[np.ndarray]:
        """Multi-start fits where under 10% of the refined starts reached the best objective
        (None without a grid)."""
        if self.share_at_best is None:
            return None

        return self.share_at_best < FRAGILE_SHARE

    @property
    def params(self) -> np.ndarray:
        """Alias of ``x``."""
        return self.x

    @property
    def success(self) -> np.ndarray:
        return self.status > 0

    @property
    def message(self) -> np.ndarray:
        """The message of each problem's status (object array of str)."""
        return messages(_host(self.status))

    def get(self) -> "FitResult":
        """The result with every array on the host (NumPy): for a fit of CuPy arrays, whose
        fields are CuPy arrays; otherwise the same arrays."""
        out = object.__new__(FitResult)
        out.__dict__.update({k: _host(v) for k, v in self.__dict__.items()})
        return out

    @property
    def stderr(self) -> np.ndarray:
        """Standard errors, the square roots of the covariance's diagonal (needs ``cov``)."""
        if self.cov is None:
            raise ValueError("stderr: fit again with return_cov=True")
        return np.sqrt(np.diagonal(self.cov, axis1=1, axis2=2))

    def residuals(self, i: int):
        """Problem ``i``'s residuals and Jacobian at the solution (needs return_residuals)."""
        if self.fun is None:
            raise ValueError("residuals: fit again with return_residuals=True")
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.fun[a:b], self.jac[a:b]

    def __len__(self) -> int:
        return len(self.cost)

    def __getitem__(self, i: int):
        """Problem ``i`` as a ``scipy.optimize.OptimizeResult``."""
        from scipy.optimize import OptimizeResult

        i = range(len(self))[i]
        out = OptimizeResult(
            x=self.x[i], cost=float(self.cost[i]), status=int(self.status[i]),
            success=bool(self.status[i] > 0), message=Status(int(self.status[i])).message,
            nfev=int(self.nfev[i]), njev=int(self.njev[i]), nit=int(self.nit[i]),
            optimality=float(self.optimality[i]), active_mask=self.active_mask[i],
        )
        if self.cov is not None:
            out["cov"] = self.cov[i]
        if self.fun is not None:
            out["fun"], out["jac"] = self.residuals(i)
        if self.labels is not None:
            out["label"] = self.labels[i]
        if self.share_at_best is not None:
            for key in GRID_FIELDS:
                out[key] = getattr(self, key)[i].item()
        return out

    def status_counts(self) -> dict:
        """How many problems ended with each status, by name."""
        counts = Counter(_host(self.status).tolist())
        return {Status(int(k)).name: v for k, v in sorted(counts.items(), key=lambda kv: -kv[0])}

    def to_frame(self):
        """A pandas DataFrame, one row per problem (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is in the test extra
            raise ImportError("to_frame() needs pandas: pip install pandas") from None
        if hasattr(self.x, "get"):  # CuPy arrays: a frame of their host copies
            return self.get().to_frame()
        cols = {}
        if self.labels is not None:
            cols.update(label_columns(self.labels, self.label_names, len(self)))
        for j, name in enumerate(self.param_names):
            cols[name] = self.x[:, j]
        if self.cov is not None:
            err = self.stderr
            for j, name in enumerate(self.param_names):
                cols[f"{name}_stderr"] = err[:, j]
        cols.update(cost=self.cost, status=self.status, success=self.success,
                    message=self.message, nfev=self.nfev, nit=self.nit, n_points=self.n_points,
                    n_omitted=self.n_omitted)
        if self.share_at_best is not None:
            cols.update({key: getattr(self, key) for key in GRID_FIELDS})
            cols["fragile"] = self.fragile
        return pd.DataFrame(cols)

    def save(self, path, *, compressed: bool = True) -> None:
        """Write the result to ``path`` as an ``.npz`` archive, read back by
        :func:`lawfit.load` without pickle (the format: ``lawfit._io``).  The model is kept
        by name, or a law by its expression; group labels must be numbers, strings,
        booleans or datetimes.  ``pickle`` carries a result whole as well."""
        from ._save import write

        fit = self.get()
        write(path, "FitResult", fit, fit._saved_arrays(), {}, compressed)

    def _saved_arrays(self) -> dict:
        """The arrays a saved file holds, by entry name (``fit.<field>``)."""
        out = {f"fit.{k}": np.asarray(getattr(self, k)) for k in FIT_ARRAYS}
        out["fit.n_points"] = np.asarray(self.n_points)
        out.update({f"fit.{k}": np.asarray(getattr(self, k)) for k in FIT_OPTIONAL
                    if getattr(self, k, None) is not None})
        return out

    def summary(self, problems=None, *, max_problems: int = 3,
                min_correl: float = 0.1) -> str:
        """A report of the fits, as lmfit's ``fit_report``: the model and its formula, the
        batch's status counts, then for each problem shown its labels, status and message,
        cost, points and degrees of freedom, evaluations, the multi-start diagnostics of a
        grid fit, its parameters (estimate; with ``return_cov``, the standard error and its
        share of the estimate) and the correlations between parameters above
        ``min_correl`` in magnitude.

        Parameters
        ----------
        problems : int or sequence of int, optional
            The problems to show; by default the first ``max_problems`` (and a count of the
            rest).
        max_problems : int
        min_correl : float
            Correlations of at most this magnitude are left out.

        Returns
        -------
        str
            ``print(result)`` prints the same; ``_repr_html_`` renders it for notebooks.
        """
        return self._report(problems, max_problems, min_correl).text()

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return self._report(None, 3, 0.1).html()

    def _report(self, problems, max_problems, min_correl):
        from ._report import (Report, Section, check_correl, correlations, fmt,
                              problem_rows)

        r = self.get()
        min_correl = check_correl(min_correl)
        idx = problem_rows(len(r), problems, max_problems)
        header = Section(f"FitResult: {len(r)} problem{'s' if len(r) != 1 else ''}",
                         r._header_lines())
        if r.cov is None:
            header.notes.append("standard errors: not computed (fit with return_cov=True)")
        else:
            header.notes.append("stderr: the square root of the covariance's diagonal "
                                "(as curve_fit: J^T J at the solution, scaled by the residual "
                                "variance unless absolute_sigma)")
        sections = []
        err = r.stderr if r.cov is not None else None
        for i in idx:
            sec = Section(r._problem_title(i), r._problem_lines(i))
            head = ["parameter", "estimate"]
            if err is not None:
                head += ["stderr", "rel. stderr"]
            rows = [head]
            for j, name in enumerate(r.param_names):
                row = [name, fmt(r.x[i, j])]
                if err is not None:
                    rel = abs(err[i, j] / r.x[i, j]) if r.x[i, j] != 0 else np.inf
                    row += [fmt(err[i, j], 4), f"{100 * rel:.2f}%" if np.isfinite(rel)
                            else "-"]
                rows.append(row)
            sec.table = rows
            if r.cov is not None:
                sec.correl = correlations(r.cov[i], r.param_names, min_correl)
                sec.correl_title = f"correlations (|r| > {min_correl:g})"
            sections.append(sec)
        return Report(header, sections, _more(len(r), idx, problems))

    def _header_lines(self) -> list:
        m = self.model
        lines = [("model", f"{m.name}" + (f": {m.formula}" if m.formula != m.name else "")),
                 ("parameters", ", ".join(self.param_names)),
                 ("problems", f"{len(self)} ({int(self.success.sum())} succeeded)"),
                 ("status", ", ".join(f"{k}: {v}" for k, v in self.status_counts().items())
                  or "-")]
        if self.backend:
            lines.append(("backend", self.backend))
        if self.fragile is not None and self.fragile.any():
            lines.append(("fragile", f"{int(self.fragile.sum())} multi-start fits (under "
                                     f"{FRAGILE_SHARE:.0%} of the refined starts at the best)"))
        return lines

    def _problem_title(self, i: int) -> str:
        from ._report import label_text

        lab = label_text(self.labels, self.label_names, i)
        return f"Problem {i}" + (f": {lab}" if lab else "")

    def _problem_lines(self, i: int) -> list:
        from ._report import fmt, status_text

        omitted = int(self.n_omitted[i])
        lines = [("status", status_text(self.status[i])),
                 ("cost", f"{fmt(self.cost[i])}  (0.5 * sum of w * rho(r**2))"),
                 ("points", f"{int(self.n_points[i])}" +
                  (f" ({omitted} missing left out)" if omitted else "")),
                 ("dof", f"{int(self.dof[i])}  (points less free parameters)"),
                 ("evaluations", f"nfev {int(self.nfev[i])}, njev {int(self.njev[i])}, "
                                 f"nit {int(self.nit[i])}; optimality "
                                 f"{fmt(self.optimality[i], 3)}")]
        if self.share_at_best is not None:
            lines.append(("starts", f"{int(self.n_starts[i])} in the grid, "
                                    f"{int(self.n_refined[i])} refined, {int(self.n_at_best[i])}"
                                    f" reached the best ({self.share_at_best[i]:.0%}; best "
                                    f"start {int(self.best_start[i])})"
                                    + ("  FRAGILE" if self.fragile[i] else "")))
        at = np.flatnonzero(np.asarray(self.active_mask[i]))
        if at.size:
            lines.append(("at bounds", ", ".join(
                f"{self.param_names[j]} ({'lower' if self.active_mask[i][j] < 0 else 'upper'})"
                for j in at)))
        return lines

    def __repr__(self) -> str:
        return (f"FitResult(model={self.model.name!r}, problems={len(self)}, "
                f"success={int(self.success.sum())}, status={self.status_counts()}, "
                f"backend={self.backend!r})")
