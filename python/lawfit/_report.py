"""Reports of results, as text (``print(result)``, ``result.summary()``) and HTML (notebooks).

In the manner of lmfit's ``fit_report`` and statsmodels' ``summary``: a header for the batch
(model, formula, problems, status counts), then each problem shown (the first few of a batch,
and how many more there are): its labels, status and message, cost, points and degrees of
freedom, a table of parameters with their estimates, standard errors (saying where they
come from) and, for a bootstrap, intervals labelled with their method and level, and the
correlations between parameters above a threshold.

A report is built once as a :class:`Report` (sections of key/value lines and tables), then
rendered as text or HTML, so the two always say the same.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from ._status import Status

__all__ = ["Report", "Section", "fmt", "problem_rows", "correlations"]


def fmt(v, digits: int = 6) -> str:
    """A number in ``digits`` significant digits ('nan', 'inf' as such)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(f):
        return str(f)
    return f"{f:.{digits}g}"


@dataclass
class Section:
    """One part of a report: a ``title``, key/value ``lines``, a ``table`` (header row, then
    rows of cells) and free ``notes``."""

    title: str
    lines: List[tuple] = field(default_factory=list)
    table: Optional[List[Sequence[str]]] = None
    correl: List[tuple] = field(default_factory=list)  # (name_i, name_j, r)
    correl_title: str = ""
    notes: List[str] = field(default_factory=list)


@dataclass
class Report:
    """A header section, one section per problem shown, and a closing note."""

    header: Section
    problems: List[Section]
    footer: str = ""

    def text(self) -> str:
        out = [f"[[{self.header.title}]]"]
        out += _lines_text(self.header.lines)
        out += [f"    {n}" for n in self.header.notes]
        for sec in self.problems:
            out.append(f"[[{sec.title}]]")
            out += _lines_text(sec.lines)
            if sec.table:
                out += _table_text(sec.table)
            if sec.correl:
                out.append(f"    {sec.correl_title}")
                w = max(len(f"{a}, {b}") for a, b, _ in sec.correl)
                out += [f"      {f'{a}, {b}':<{w}}  {r:+.4f}" for a, b, r in sec.correl]
            out += [f"    {n}" for n in sec.notes]
        if self.footer:
            out.append(self.footer)
        return "\n".join(out)

    def html(self) -> str:
        e = html.escape
        out = ["<div class='lawfit-report'>", f"<h4>{e(self.header.title)}</h4>",
               _lines_html(self.header.lines)]
        out += [f"<p>{e(n)}</p>" for n in self.header.notes]
        for sec in self.problems:
            out.append(f"<h5>{e(sec.title)}</h5>")
            out.append(_lines_html(sec.lines))
            if sec.table:
                head, *rows = sec.table
                out.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head)
                           + "</tr></thead><tbody>")
                out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
                        for row in rows]
                out.append("</tbody></table>")
            if sec.correl:
                out.append(f"<p>{e(sec.correl_title)}: " + ", ".join(
                    f"{e(a)}&ndash;{e(b)} {r:+.4f}" for a, b, r in sec.correl) + "</p>")
            out += [f"<p>{e(n)}</p>" for n in sec.notes]
        if self.footer:
            out.append(f"<p>{e(self.footer)}</p>")
        out.append("</div>")
        return "\n".join(out)


def _lines_text(lines) -> List[str]:
    if not lines:
        return []
    w = max(len(k) for k, _ in lines)
    return [f"    {k:<{w}}  {v}" for k, v in lines]


def _lines_html(lines) -> str:
    if not lines:
        return ""
    e = html.escape
    return ("<table>" + "".join(f"<tr><th style='text-align:left'>{e(k)}</th>"
                                f"<td style='text-align:left'>{e(v)}</td></tr>"
                                for k, v in lines) + "</table>")


def _table_text(rows) -> List[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    out = []
    for i, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        out.append("    " + "  ".join(cells).rstrip())
    return out


def problem_rows(n: int, problems, max_problems: int) -> np.ndarray:
    """The problems a report shows: ``problems`` (an index or indices), else the first
    ``max_problems`` of ``n``."""
    if problems is None:
        return np.arange(min(n, max(0, int(max_problems))))
    idx = np.atleast_1d(np.asarray(problems))
    if idx.dtype.kind not in "iu":
        raise ValueError(f"problems: expected a problem index or indices, got {problems!r}")
    bad = idx[(idx < -n) | (idx >= n)]
    if bad.size:
        raise ValueError(f"problems: index {int(bad[0])} is out of range for {n} problems")
    return np.where(idx < 0, idx + n, idx)


def label_text(labels, label_names, i: int) -> str:
    """Problem i's group labels, as ``name=value`` pairs ('' without labels)."""
    if labels is None:
        return ""
    def py(v):  # a NumPy scalar as Python's (its repr without 'np.')
        return v.item() if isinstance(v, np.generic) else v

    lab = labels[i]
    if label_names and isinstance(lab, tuple):
        return ", ".join(f"{n}={py(v)!r}" for n, v in zip(label_names, lab))
    return f"{label_names[0] if label_names else 'label'}={py(lab)!r}"


def status_text(code: int) -> str:
    s = Status(int(code))
    return f"{s.name} ({int(code)}): {s.message}"


def counts_text(counts: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"


def correlations(matrix: Optional[np.ndarray], names: Sequence[str],
                 min_correl: float) -> List[tuple]:
    """(name_i, name_j, r) for |r| > min_correl, strongest first, from a covariance matrix
    (None or non-finite: none)."""
    if matrix is None or not np.all(np.isfinite(matrix)):
        return []
    d = np.sqrt(np.diagonal(matrix))
    out = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if d[i] > 0 and d[j] > 0:
                r = matrix[i, j] / (d[i] * d[j])
                if abs(r) > min_correl:
                    out.append((names[i], names[j], float(r)))
    return sorted(out, key=lambda t: -abs(t[2]))


def check_correl(min_correl) -> float:
    try:
        v = float(min_correl)
    except (TypeError, ValueError):
        v = np.nan
    if not 0 <= v <= 1:
        raise ValueError(f"min_correl: expected a number in [0, 1], got {min_correl!r}")
    return v
