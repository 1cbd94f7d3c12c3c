"""The ``lawfit`` command: fit scaling laws to a CSV or Parquet table, list the laws, or run
the synthetic demo.

    lawfit fit DATA.csv --law chinchilla_log --x N,D --y loss [...]
    lawfit models
    lawfit demo
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
import warnings
from typing import List, Optional

import numpy as np

from .plot import group_labels

DESCRIPTION = """\
lawfit: fit thousands of scaling laws at once.  Run 'lawfit COMMAND --help' for a
command's options and examples.
"""

FIT_DESCRIPTION = """\
Fit a law to a table: one problem per group of rows (--by), or one problem for the whole
table.  Prints each problem's fitted law with its parameters, standard errors and
intervals; writes one row per problem (--out) and a figure of the data with the fitted law
and its bootstrap band (--plot).  A bad input (unreadable file, missing column, a law that
does not parse) ends with a one-line reason and exit status 2.

Standard errors and intervals come from the bootstrap with --bootstrap R (percentile or BCa
intervals at --level), else from the covariance at the optimum (Wald intervals,
estimate +- z * se, at --level).
"""

FIT_EPILOG = """\
examples:
  # the Chinchilla replication (Besiroglu et al. 2024): tokens D = C / (6 N), the five
  # highest losses dropped, Huber loss on log residuals, a profile grid, 4,000 resamples
  lawfit fit ../shared/data/chinchilla_epoch.csv --law chinchilla_log \\
      --assign 'N=`Model Size`' --assign 'D=`Training FLOP` / (6 * N)' \\
      --where "loss.rank(ascending=False, method='first') > 5" --x N,D --y loss \\
      --loss huber --f-scale 1e-3 --log-residuals --grid alpha=0:1:6 beta=0:1:6 --profile \\
      --bootstrap 4000 --seed 0 --level 0.9 --compute-optimal 5.76e23 \\
      --out chinchilla.csv --plot chinchilla.png

  # 24 laws at once, one per (dataset, validation set), a law of one's own whose
  # inputs N and D read the columns params and tokens
  lawfit fit overtraining_losses.csv --law "E + A * N**-alpha + B * D**-beta" \\
      --x N=params,D=tokens --y loss --by dataset,val_data --log-residuals \\
      --p0 E=1.5,A=400,alpha=0.3,B=400,beta=0.3 --bounds E=0: A=0: B=0: --out laws.parquet

  # the replication's Cartesian grid of 4,500 starts, every start refined
  lawfit fit data.csv --law chinchilla_log --x N,D --y loss --log-residuals \\
      --grid a=0:25:6 b=0:25:6 e=-1:1:5 alpha=0:2:5 beta=0:2:5 --k all

  # 256 Sobol starts in a box
  lawfit fit data.csv --law saturating_power_law --x N --y loss \\
      --sobol 256 --grid E=0:5 A=0:1e4 alpha=0:1

values:
  --grid NAME=LO:HI:N   N values evenly spaced from LO to HI (NAME=LO:HI:N:log: spaced
                        geometrically); NAME=V1,V2,...: those values; with --sobol,
                        NAME=LO:HI is the box sampled
  --bounds NAME=LO:HI   LO or HI may be empty (unbounded on that side)
  a column name with spaces or other characters that an expression cannot use gets a
  name with --assign 'N=`Model Size`' (pandas.eval syntax; backticks quote a column)
"""

RESIDUAL_LOSSES = ("linear", "soft_l1", "huber", "cauchy", "arctan")


class CliError(Exception):
    """A bad input to the command line: reported in one line, exit status 2."""


# ------------------------------------------------------------------------------ helpers
def _names(text: str, arg: str) -> List[str]:
    names = [s.strip() for s in text.split(",")]
    if not all(names):
        raise CliError(f"{arg}: expected comma-separated column names, got {text!r}")
    return names


def _number(text: str, arg: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CliError(f"{arg}: {text!r} is not a number") from None


def _name_value(item: str, arg: str):
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise CliError(f"{arg}: expected NAME=VALUE, got {item!r}")
    return name.strip(), value.strip()


def _grid_values(spec: str, arg: str) -> np.ndarray:
    """NAME=LO:HI:N[:log] or NAME=V1,V2,... (the part after '=')."""
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "log"):
            raise CliError(f"{arg}: expected LO:HI:N, LO:HI:N:log or V1,V2,..., got {spec!r}")
        lo, hi = _number(parts[0], arg), _number(parts[1], arg)
        try:
            n = int(parts[2])
        except ValueError:
            raise CliError(f"{arg}: the count N of LO:HI:N must be an integer, got "
                           f"{parts[2]!r}") from None
        if n < 1:
            raise CliError(f"{arg}: the count N of LO:HI:N must be at least 1, got {n}")
        if len(parts) == 4:
            if lo <= 0 or hi <= 0:
                raise CliError(f"{arg}: a geometric range needs LO, HI > 0, got {spec!r}")
            return np.geomspace(lo, hi, n)
        return np.linspace(lo, hi, n)
    return np.array([_number(v, arg) for v in spec.split(",")])


def _range(spec: str, arg: str, empty=None):
    """LO:HI -> (lo, hi); an empty side is ``empty`` (None: not allowed)."""
    parts = spec.split(":")
    if len(parts) != 2:
        raise CliError(f"{arg}: expected LO:HI, got {spec!r}")
    out = []
    for p, inf in zip(parts, (-math.inf, math.inf)):
        if p.strip() == "":
            if empty is None:
                raise CliError(f"{arg}: both ends of LO:HI are needed, got {spec!r}")
            out.append(inf)
        else:
            out.append(_number(p, arg))
    if not out[0] <= out[1]:
        raise CliError(f"{arg}: LO must not exceed HI, got {spec!r}")
    return tuple(out)


class Progress:
    """One status line on stderr, rewritten in place, when stderr is a terminal (silent
    otherwise, so that pipes and logs stay clean)."""

    def __init__(self, stream=None, enabled: Optional[bool] = None):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = (hasattr(self.stream, "isatty") and self.stream.isatty()) \
            if enabled is None else enabled
        self.t0 = time.perf_counter()
        self.stage = ""
        self._last = 0.0

    def __call__(self, stage: str) -> None:
        self.stage = stage
        self._write(stage)

    def count(self, done: int, total: int) -> None:
        """A callback ``progress(done, total)`` for lawfit's calls (at most ~10 updates/s)."""
        now = time.perf_counter()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(20 * frac)
        self._write(f"{self.stage} [{bar:<20}] {done:,}/{total:,}")

    def _write(self, text: str) -> None:
        if self.enabled:
            self.stream.write(f"\r\x1b[K{text} ({time.perf_counter() - self.t0:.1f} s)")
            self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# --------------------------------------------------------------------------- the data
def read_table(path: str):
    """A pandas DataFrame from a .csv, .tsv, .parquet (.pq) or .json file."""
    try:
        import pandas as pd
    except ImportError:
        raise CliError("lawfit fit needs pandas: pip install pandas") from None
    ext = os.path.splitext(path)[1].lower()
    readers = {".csv": lambda p: pd.read_csv(p), ".tsv": lambda p: pd.read_csv(p, sep="\t"),
               ".parquet": pd.read_parquet, ".pq": pd.read_parquet,
               ".json": lambda p: pd.read_json(p)}
    if ext not in readers:
        raise CliError(f"DATA: {path!r} has no known extension (.csv, .tsv, .parquet, .pq, "
                       f".json)")
    if not os.path.isfile(path):
        raise CliError(f"DATA: no such file: {path!r}")
    try:
        return readers[ext](path)
    except ImportError as e:  # Parquet without pyarrow or fastparquet
        raise CliError(f"DATA: cannot read {path!r}: {_one_line(e)}") from None
    except Exception as e:  # a parser's error, whatever its type: one line, no traceback
        raise CliError(f"DATA: cannot read {path!r}: {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__


def prepare(df, assign=(), where=None):
    """Apply --assign NAME=EXPR (in order) and --where EXPR to the table."""
    for item in assign:
        name, expr = _name_value(item, "--assign")
        try:
            df[name] = df.eval(expr, engine="python")
        except Exception as e:
            raise CliError(f"--assign {item!r}: {_one_line(e)}") from None
    if where:
        try:
            out = df.query(where, engine="python")
        except Exception as e:
            raise CliError(f"--where {where!r}: {_one_line(e)}") from None
        if len(out) == 0:
            raise CliError(f"--where {where!r}: no rows are left")
        df = out
    return df


def _require_columns(df, names, arg: str) -> None:
    missing = [n for n in names if n not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns[:20])) + (", ..." if len(df.columns) > 20 else "")
        raise CliError(f"{arg}: no column {', '.join(map(repr, missing))} in the table "
                       f"(columns: {have})")


# --------------------------------------------------------------------------- the law
def resolve_law(spec: str, inputs: Optional[List[str]]):
    """A built-in model's or a library law's name, or an expression over the --x names."""
    import lawfit
    from lawfit import library, models

    if spec in models.available():
        return models.get(spec)
    if spec in library.available():
        return library.get(spec)
    if spec.isidentifier():
        raise CliError(f"--law: unknown law {spec!r}; built-in models: "
                       f"{', '.join(models.available())}; library laws: "
                       f"{', '.join(library.available())}; or an expression such as "
                       f"'E + A * N**-alpha' (see 'lawfit models')")
    if not inputs:
        raise CliError("--x: an expression law needs its inputs named by --x")
    for n in inputs:
        if not n.isidentifier():
            raise CliError(f"--x: column {n!r} is not a name an expression can use; name it "
                           f"with --assign 'N=`{n}`'")
    try:
        return lawfit.law(spec, inputs=inputs)
    except ValueError as e:
        raise CliError(f"--law: {_one_line(e)}") from None


def fitted_formula(model, values, y_name: str = "y") -> str:
    """The model's formula with its parameters replaced by ``values`` (4 significant
    digits; negative numbers in parentheses)."""
    names = set(model.param_names)
    lookup = dict(zip(model.param_names, values))

    def sub(m):
        w = m.group(0)
        if w not in names:
            return w
        v = float(lookup[w])
        text = f"{v:.4g}"
        return f"({text})" if v < 0 or not np.isfinite(v) else text

    return f"{y_name} = " + re.sub(r"\b[A-Za-z_][A-Za-z_0-9]*\b", sub, model.formula)


def _label_text(label, names) -> str:
    if label is None:
        return ""
    if isinstance(label, tuple):
        return ", ".join(f"{n}={v}" for n, v in zip(names, label))
    return f"{names[0]}={label}" if names else str(label)


# --------------------------------------------------------------------------- the fit
def _starts(args, model, bounds):
    """p0 (None, an array or a lawfit.Grid) from --p0, --grid, --profile and --sobol."""
    import lawfit

    names = list(model.param_names)
    if args.p0 and (args.grid or args.sobol):
        raise CliError("--p0: give a single start (--p0) or a grid (--grid, --sobol), not both")
    if args.profile and args.sobol:
        raise CliError("--profile: a profile grid takes --grid values, not --sobol")
    if args.profile and not args.grid:
        raise CliError("--profile: needs --grid values for the law's exponents")
    if args.p0:
        items = [s for s in args.p0.split(",") if s.strip()]
        if all("=" in s for s in items):
            given = dict(_name_value(s, "--p0") for s in items)
            unknown = [k for k in given if k not in names]
            missing = [k for k in names if k not in given]
            if unknown or missing:
                raise CliError(f"--p0: the law's parameters are {', '.join(names)}"
                               + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                               + (f"; missing: {', '.join(missing)}" if missing else ""))
            return np.array([_number(given[k], "--p0") for k in names])
        values = [_number(s, "--p0") for s in items]
        if len(values) != len(names):
            raise CliError(f"--p0: expected {len(names)} values ({', '.join(names)}), got "
                           f"{len(values)}")
        return np.array(values)
    if args.sobol:
        lo, hi = bounds[0].copy(), bounds[1].copy()
        for item in args.grid or ():
            name, spec = _param_item(item, "--grid", names)
            j = names.index(name)
            lo[j], hi[j] = _range(spec, f"--grid {name}")
        open_ = [n for j, n in enumerate(names) if not (np.isfinite(lo[j]) and
                                                         np.isfinite(hi[j]) and lo[j] < hi[j])]
        if open_:
            raise CliError(f"--sobol: needs a finite box LO < HI for every parameter; give "
                           f"--grid NAME=LO:HI (or finite --bounds) for {', '.join(open_)}")
        return lawfit.grid(sample="sobol", n=args.sobol, lower=lo, upper=hi, seed=args.seed)
    if args.grid:
        values = {}
        for item in args.grid:
            name, spec = _param_item(item, "--grid", names)
            values[name] = _grid_values(spec, f"--grid {name}")
        if args.profile:
            if model.profile is None:
                raise CliError(f"--profile: the law '{model.name}' has no linear "
                               f"coefficients to solve for")
            return lawfit.grid(profile=True, **values)
        missing = [n for n in names if n not in values]
        if missing:
            hint = ""
            if model.profile is not None:
                hint = (f" (or --profile with values for {', '.join(model.profile.exponents)}"
                        f" alone: {', '.join(model.profile.coefficients)} are then solved)")
            raise CliError(f"--grid: no values for {', '.join(missing)}{hint}")
        return lawfit.grid(**values)
    if not model.has_guess and model.profile is None:
        raise CliError(f"--p0: the law '{model.name}' has no data-driven start; give --p0 "
                       f"{','.join(n + '=...' for n in names)} or a --grid")
    if not model.has_guess:
        raise CliError(f"--p0: the law '{model.name}' has no data-driven start; give --p0, "
                       f"a --grid, or a profile grid (--grid "
                       f"{' '.join(e + '=0:1:5' for e in model.profile.exponents)} --profile)")
    return None


def _param_item(item: str, option: str, names: list):
    """An option's NAME=SPEC item (name, spec), NAME one of the law's parameters."""
    name, spec = _name_value(item, option)
    if name not in names:
        raise CliError(f"{option}: unknown parameter {name!r}; the law's are "
                       f"{', '.join(names)}")
    return name, spec


def _bounds(args, model):
    names = list(model.param_names)
    lo = np.full(len(names), -np.inf)
    hi = np.full(len(names), np.inf)
    for item in args.bounds or ():
        name, spec = _param_item(item, "--bounds", names)
        j = names.index(name)
        lo[j], hi[j] = _range(spec, f"--bounds {name}", empty=True)
    return lo, hi


def run_fit(args, out=None) -> int:
    """``lawfit fit``: see FIT_DESCRIPTION."""
    import lawfit

    out = sys.stdout if out is None else out
    t_start = time.perf_counter()
    progress = Progress()
    if not (0 < args.level < 1):
        raise CliError(f"--level: expected a number in (0, 1), got {args.level}")
    if args.bootstrap is not None and args.bootstrap < 2:
        raise CliError(f"--bootstrap: expected at least 2 resamples, got {args.bootstrap}")
    if args.sobol is not None and args.sobol < 1:
        raise CliError(f"--sobol: expected a positive number of starts, got {args.sobol}")
    if args.out:
        ext = os.path.splitext(args.out)[1].lower()
        if ext not in (".csv", ".parquet", ".pq", ".json"):
            raise CliError(f"--out: {args.out!r}: expected a .csv, .parquet or .json file")
    if args.plot and os.path.splitext(args.plot)[1].lower() not in (".png", ".pdf", ".svg"):
        raise CliError(f"--plot: {args.plot!r}: expected a .png, .pdf or .svg file")
    if args.compute_optimal and args.bootstrap is None:
        raise CliError("--compute-optimal: needs --bootstrap (its intervals come from the "
                       "resamples)")
    progress(f"reading {args.data}")
    df = read_table(args.data)
    n_rows = len(df)
    df = prepare(df, args.assign or (), args.where)
    x_names = None
    if args.x:  # NAME=COLUMN: the law's input NAME reads COLUMN
        x_names = []
        for item in _names(args.x, "--x"):
            name, sep, col = (s.strip() for s in item.partition("="))
            if sep:
                if not name or not col:
                    raise CliError(f"--x: expected COLUMN or NAME=COLUMN, got {item!r}")
                _require_columns(df, [col], "--x")
                df = df.assign(**{name: df[col]})
            x_names.append(name)
    model = resolve_law(args.law, x_names)
    if x_names is None:
        x_names = list(model.input_names)
    if len(x_names) != model.n_inputs:
        raise CliError(f"--x: the law '{model.name}' takes {model.n_inputs} input(s) "
                       f"({', '.join(model.input_names)}), got {len(x_names)} "
                       f"({', '.join(x_names)})")
    by = _names(args.by, "--by") if args.by else []
    _require_columns(df, x_names, "--x")
    _require_columns(df, [args.y], "--y")
    _require_columns(df, by, "--by")
    for col, arg in ((args.sigma, "--sigma"), (args.weights, "--weights"),
                     (args.clusters, "--clusters")):
        if col:
            _require_columns(df, [col], arg)
    for col, arg in [(c, "--x") for c in x_names] + [(args.y, "--y")]:
        if not np.issubdtype(np.asarray(df[col]).dtype, np.number):
            raise CliError(f"{arg}: column {col!r} is not numeric "
                           f"(dtype {df[col].dtype})")
    if args.compute_optimal:
        C = np.array([_number(c, "--compute-optimal") for c in args.compute_optimal.split(",")])
        if model.natural is None:
            raise CliError(f"--compute-optimal: needs a Chinchilla law (chinchilla, "
                           f"chinchilla_log), not '{model.name}'")
    lower, upper = _bounds(args, model)
    p0 = _starts(args, model, (lower, upper))
    k = None
    if args.k is not None:
        if not isinstance(p0, lawfit.Grid):
            raise CliError("--k: only used with a grid of starts (--grid, --sobol)")
        if args.k != "all" and not (args.k.isdigit() and int(args.k) >= 1):
            raise CliError(f"--k: expected a positive integer or 'all', got {args.k!r}")
        k = "all" if args.k == "all" else int(args.k)
    groups = (by if len(by) > 1 else by[0]) if by else None  # None: the table is one problem
    common = dict(data=df, x=x_names, y=args.y, groups=groups, sigma=args.sigma,
                  weights=args.weights, bounds=(lower, upper), loss=args.loss, f_scale=args.f_scale,
                  residuals="log" if args.log_residuals else "linear", p0=p0, k=k,
                  backend=args.backend, n_threads=args.threads)
    n_groups = int(df.groupby(by, sort=False).ngroups) if by else 1
    S = p0.n_starts if isinstance(p0, lawfit.Grid) else 1
    boot = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if args.bootstrap is not None:
                progress(f"fitting {n_groups:,} problem(s) x {S:,} start(s), then "
                         f"{args.bootstrap:,} resamples each")
                extra = {"progress": progress.count} if progress.enabled else {}
                method = "grouped" if args.clusters else args.resample
                boot = lawfit.bootstrap(model, n_resamples=args.bootstrap, seed=args.seed,
                                        method=method, clusters=args.clusters, **extra,
                                        **common)
                r = boot.fit
            else:
                progress(f"fitting {n_groups:,} problem(s) x {S:,} start(s)")
                extra = {"progress": progress.count} if progress.enabled else {}
                r = lawfit.fit(model, return_cov=True, **extra, **common)
        except (ValueError, MemoryError) as e:
            progress.done()
            raise CliError(_one_line(e)) from None
    progress("summarising")
    labels = group_labels(df, by if len(by) > 1 else by[0])[0] if by else None
    if labels is not None and len(labels) != len(r):  # pragma: no cover - a bug if so
        raise RuntimeError(f"{len(labels)} groups, {len(r)} results")
    table, how = summarise(r, boot, args, by, labels)
    progress.done()
    report(out, args, model, r, boot, table, how, n_rows, len(df), by, labels)
    for w in caught:
        print(f"warning: {_one_line(w.message)}", file=sys.stderr)
    if boot is not None and args.compute_optimal:
        co = compute_optimal_table(boot, C, args.level, args.interval)
        print_compute_optimal(out, co, labels, by, args.level, args.interval, args.show)
        for col in co.columns:
            if col != "problem":
                table[col] = co[col].to_numpy()
    if args.out:
        progress(f"writing {args.out}")
        write_table(table, args.out)
        progress.done()
        print(f"wrote {args.out} ({len(table)} row{'s' if len(table) != 1 else ''})",
              file=out)
    if args.plot:
        progress(f"drawing {args.plot}")
        draw(args, model, r, boot, df, x_names, by)
        progress.done()
        print(f"wrote {args.plot}", file=out)
    print(f"({time.perf_counter() - t_start:.2f} s)", file=out)
    return 0


def _intervals(r, boot, level: float, method: str):
    """(se, lo, hi, label): bootstrap statistics, else the covariance's Wald intervals."""
    if boot is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # said once already, by bootstrap itself
            se = boot.se
            lo, hi = boot.interval(level, method)
        return se, lo, hi, f"bootstrap ({boot.n_resamples:,} resamples), {method}"
    from scipy.stats import norm

    se = r.stderr
    z = norm.ppf(0.5 + level / 2)
    with np.errstate(invalid="ignore"):
        return se, r.x - z * se, r.x + z * se, "covariance (Wald: estimate +- z se)"


def summarise(r, boot, args, by, labels):
    """The results table (a pandas DataFrame, one row per problem; ``labels``: each
    problem's group label) and the intervals' label."""
    import pandas as pd
    from lawfit import Status

    se, lo, hi, how = _intervals(r, boot, args.level, args.interval)
    P = len(r)
    cols = {}
    if by:
        for k, name in enumerate(by):
            cols[name] = [lab[k] if len(by) > 1 else lab for lab in labels]
    for j, name in enumerate(r.param_names):
        cols[name] = r.x[:, j]
        cols[f"{name}_se"] = se[:, j]
        cols[f"{name}_lo"] = lo[:, j]
        cols[f"{name}_hi"] = hi[:, j]
    cols["cost"] = r.cost
    cols["status"] = r.status
    cols["status_name"] = [Status(int(s)).name for s in r.status]
    cols["success"] = r.status > 0
    cols["nfev"] = r.nfev
    cols["nit"] = r.nit
    cols["optimality"] = r.optimality
    cols["n_points"] = r.n_points
    cols["n_omitted"] = r.n_omitted
    if getattr(r, "share_at_best", None) is not None:
        for key in ("n_starts", "n_refined", "best_start", "start_cost", "n_at_best",
                    "share_at_best", "cost_median"):
            cols[key] = getattr(r, key)
        cols["fragile"] = r.fragile
    if boot is not None:
        cols["n_resamples"] = np.full(P, boot.n_resamples)
        cols["n_converged"] = boot.n_converged
        cols["n_failed"] = boot.n_failed
    cols["level"] = np.full(P, args.level)
    cols["intervals"] = [how] * P
    return pd.DataFrame(cols), how


def report(out, args, model, r, boot, table, how, n_rows, n_used, by, labels) -> None:
    """The printed summary: the setting once, then each problem's fitted law and
    parameters (the first --show problems, and a count of the rest)."""
    P = len(r)
    setting = [f"law: {args.y} = {model.formula}" if model.name == model.formula else
               f"law {model.name}: {args.y} = {model.formula}"]
    rows = f"{n_used:,} rows" + (f" of {n_rows:,}" if n_used != n_rows else "")
    objective = ("log residuals" if args.log_residuals else "linear residuals") + \
        (f", {args.loss} loss (f_scale {args.f_scale:g})" if args.loss != "linear" else "")
    setting.append(f"data {args.data}: {rows}, {P:,} problem{'s' if P != 1 else ''}"
                   + (f" by {', '.join(by)}" if by else "") + f"; {objective}")
    if getattr(r, "n_starts", None) is not None:
        setting.append(f"starts: a grid of {int(r.n_starts[0]):,} per problem, "
                       f"{int(r.n_refined[0]):,} refined")
    if boot is not None:
        kind = "grouped" if args.clusters else args.resample
        setting.append(f"bootstrap: {boot.n_resamples:,} {kind} resamples, seed {args.seed}")
    setting.append(f"standard errors and {args.level:.0%} intervals: {how}")
    print("\n".join(setting), file=out)
    pct = f"{args.level:.0%} interval"
    names = list(r.param_names)
    width = max(9, max(len(n) for n in names))
    shown = min(P, args.show)
    for i in range(shown):
        row = table.iloc[i]
        head = _label_text(labels[i], by) if by else ""
        status = row["status_name"]
        line = f"\n{head + ': ' if head else ''}{status}, cost {row['cost']:.6g}, " \
               f"{int(row['n_points'])} points"
        if "n_at_best" in table:
            line += f", {int(row['n_at_best'])} of {int(row['n_refined'])} refined starts at best"
        if boot is not None:
            line += f", {int(row['n_converged']):,} of {boot.n_resamples:,} resamples converged"
        print(line, file=out)
        print("  " + fitted_formula(model, r.x[i], args.y), file=out)
        print(f"  {'parameter':<{width}} {'estimate':>12} {'std err':>11}   {pct}", file=out)
        for n in names:
            print(f"  {n:<{width}} {row[n]:>12.6g} {row[n + '_se']:>11.4g}   "
                  f"[{row[n + '_lo']:.6g}, {row[n + '_hi']:.6g}]", file=out)
    if shown < P:
        print(f"\n... and {P - shown:,} more problems (--show N prints more; --out writes "
              f"them all)", file=out)
    counts = r.status_counts()
    if P > 1 or not bool(r.success.all()):
        print("\nstatus: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), file=out)


def compute_optimal_table(boot, C, level, method):
    """N_opt, D_opt at each compute budget of C, and the exponent, with intervals: a
    DataFrame, one row per problem."""
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        co = boot.compute_optimal(C, level, method)
    cols = {}

    def parts(v):  # a dict, a tuple (est, lo, hi) or an object with those fields
        if isinstance(v, tuple):
            return v
        return tuple(getattr(v, k) if not isinstance(v, dict) else v[k]
                     for k in ("estimate", "low", "high"))

    for key in ("N_opt", "D_opt"):
        est, lo, hi = (np.asarray(a) for a in parts(co[key]))
        for c, cval in enumerate(C):
            tag = f"{key}@{cval:.3g}"
            cols[tag], cols[f"{tag}_lo"], cols[f"{tag}_hi"] = est[:, c], lo[:, c], hi[:, c]
    est, lo, hi = (np.asarray(a) for a in parts(co["exponent"]))
    cols["exponent"], cols["exponent_lo"], cols["exponent_hi"] = est, lo, hi
    return pd.DataFrame(cols)


def print_compute_optimal(out, co, labels, by, level, method, show: int) -> None:
    """The compute-optimal allocation of the first ``show`` problems, and a count of the
    rest."""
    print(f"\ncompute-optimal allocation under C = 6 N D ({level:.0%} {method} intervals):",
          file=out)
    for i in range(min(show, len(co))):
        head = _label_text(labels[i], by) + ": " if by else ""
        row = co.iloc[i]
        print(f"  {head}exponent a = beta/(alpha+beta) = {row['exponent']:.3f} "
              f"[{row['exponent_lo']:.3f}, {row['exponent_hi']:.3f}]", file=out)
        for col in co.columns:
            if col.startswith("N_opt@") and not col.endswith(("_lo", "_hi")):
                c = col.split("@")[1]
                d = f"D_opt@{c}"
                print(f"    C = {c} FLOP: N_opt = {row[col]:.3g} [{row[col + '_lo']:.3g}, "
                      f"{row[col + '_hi']:.3g}], D_opt = {row[d]:.3g} "
                      f"[{row[d + '_lo']:.3g}, {row[d + '_hi']:.3g}]", file=out)
    if show < len(co):
        print(f"  ... and {len(co) - show:,} more problems (--out writes them all)", file=out)


def _plain(v):
    """A JSON value: numpy scalars as Python's, NaN and infinities as null."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_table(table, path: str) -> None:
    """The results table as .csv, .parquet (.pq) or .json (a list of records)."""
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".csv":
            table.to_csv(path, index=False)
        elif ext in (".parquet", ".pq"):
            table.to_parquet(path, index=False)
        else:  # exact floats (repr round-trips), NaN as null
            with open(path, "w") as fh:
                json.dump([{k: _plain(v) for k, v in row.items()}
                           for row in table.to_dict(orient="records")], fh, indent=1)
    except ImportError as e:
        raise CliError(f"--out: cannot write {path!r}: {_one_line(e)}") from None
    except OSError as e:
        raise CliError(f"--out: cannot write {path!r}: {_one_line(e)}") from None


def draw(args, model, r, boot, df, x_names, by) -> None:
    """The --plot figure: lawfit.plot.fits of the problems shown, saved to args.plot."""
    try:
        import matplotlib
    except ImportError:
        raise CliError("--plot: needs matplotlib: pip install 'lawfit[plot]'") from None
    matplotlib.use("Agg")
    from . import plot

    fig = plot.fits(boot if boot is not None else r, data=df, x=x_names, y=args.y,
                    groups=by or None, level=args.level, method=args.interval,
                    max_problems=args.show,
                    titles=None if by else [f"{model.name}, {os.path.basename(args.data)}"])
    try:
        fig.savefig(args.plot, dpi=110)
    except OSError as e:
        raise CliError(f"--plot: cannot write {args.plot!r}: {_one_line(e)}") from None
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


# ------------------------------------------------------------------------- models, demo
def run_models(args, out=None) -> int:
    """``lawfit models``: the built-in models and the library's laws, with formulas."""
    from lawfit import library, models

    out = sys.stdout if out is None else out
    print("built-in models (hand-written gradients; lawfit fit --law NAME):", file=out)
    for name in models.available():
        m = models.get(name)
        extras = []
        if m.has_guess:
            extras.append("data-driven start")
        if m.profile is not None:
            extras.append("profile grid over " + ", ".join(m.profile.exponents))
        if m.natural is not None:
            extras.append("compute-optimal allocation")
        print(f"  {name}: {m.formula}", file=out)
        print(f"      parameters {', '.join(m.param_names)}; inputs "
              f"{', '.join(m.input_names)}" + (f"; {'; '.join(extras)}" if extras else ""),
              file=out)
    print("\nlibrary laws (lawfit.library; lawfit fit --law NAME):", file=out)
    for name in library.available():
        e = library.LIBRARY[name]
        print(f"  {name}: {e.formula}", file=out)
        print(f"      parameters {', '.join(e.params)}; inputs {', '.join(e.inputs)}; "
              f"{e.paper}", file=out)
    print("\nor any expression over the --x columns, e.g. --law 'E + A * N**-alpha' --x N",
          file=out)
    return 0


def demo(args) -> int:
    import lawfit
    from lawfit._synthetic import saturating_power_laws, scipy_loop

    P, m = args.problems, args.points
    print(f"lawfit {lawfit.__version__} demo: {P:,} synthetic saturating power laws "
          f"E + A x^-alpha, {m} points each, {args.noise:.0%} noise, seed {args.seed}")
    avail = {k: v[0] for k, v in lawfit.backends().items()}
    print("backends: " + ", ".join(f"{k} ({'yes' if v else 'no'})" for k, v in avail.items()))
    x, y, truth = saturating_power_laws(P, m, args.noise, args.seed)

    lawfit.fit("saturating_power_law", x, y[:64], backend=args.backend)  # warm-up
    t0 = time.perf_counter()
    r = lawfit.fit("saturating_power_law", x, y, backend=args.backend, n_threads=args.threads)
    dt_all = time.perf_counter() - t0
    from lawfit._packing import pack
    from lawfit.models import saturating_power_law

    p0 = pack(saturating_power_law, x, y).p0  # the data-driven starts fit() used
    t0 = time.perf_counter()
    r = lawfit.fit("saturating_power_law", x, y, p0=p0, backend=args.backend,
                   n_threads=args.threads)
    dt = time.perf_counter() - t0
    print(f"\nlawfit ({r.backend}): {P:,} fits in {dt:.3f} s = {P / dt:,.0f} fits/s from given "
          f"starts; {P / dt_all:,.0f} fits/s including the data-driven starts (p0=None)")
    print(f"status: {r.status_counts()}")
    rel = np.abs(r.x - truth) / np.abs(truth)
    print("parameter recovery (median / 90th percentile relative error against the truth):")
    for j, name in enumerate(r.param_names):
        print(f"  {name:>6}: {np.median(rel[:, j]):8.2%} / {np.percentile(rel[:, j], 90):8.2%}")

    n = min(args.scipy_subset, P)
    if n > 0:
        sp, scost, sstatus, sdt = scipy_loop(x, y[:n], p0[:n])
        agree = np.abs(r.cost[:n] - scost) <= 1e-6 * np.maximum(scost, 1e-300)
        better = r.cost[:n] < scost * (1 - 1e-6)
        print(f"\nscipy.optimize.least_squares(method='lm', analytic jac) loop on the first "
              f"{n} problems, same starts: {n / sdt:,.0f} fits/s")
        print(f"speed ratio lawfit / scipy (same starts): {(P / dt) / (n / sdt):,.0f}x")
        print(f"same cost as scipy (1e-6 rel.) on {agree.mean():.1%} of those problems, "
              f"lower on {better.mean():.1%}")
    return 0


# ------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="lawfit", description=DESCRIPTION, formatter_class=raw)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands")

    f = sub.add_parser("fit", help="fit a law to every group of rows of a CSV or Parquet "
                                   "table: grids of starts, bootstrap, results table, figure",
                       description=FIT_DESCRIPTION, epilog=FIT_EPILOG, formatter_class=raw)
    f.add_argument("data", metavar="DATA", help="the table: .csv, .tsv, .parquet or .json")
    g = f.add_argument_group("the law and the data")
    g.add_argument("--law", required=True,
                   help="a built-in model or library law by name (see 'lawfit models'), or an "
                        "expression over the --x names, e.g. 'E + A * N**-alpha'")
    g.add_argument("--x", metavar="COLS",
                   help="the input column(s), comma-separated, in the law's input order "
                        "(default: the law's input names); NAME=COLUMN names a column as "
                        "the law's input NAME, e.g. N=params,D=tokens")
    g.add_argument("--y", required=True, metavar="COL", help="the column to fit, e.g. loss")
    g.add_argument("--by", metavar="COLS",
                   help="group column(s), comma-separated: one problem per group")
    g.add_argument("--sigma", metavar="COL", help="a column of per-point uncertainties")
    g.add_argument("--weights", metavar="COL", help="a column of per-point weights")
    g.add_argument("--assign", action="append", metavar="NAME=EXPR",
                   help="a new column computed from others (pandas.eval; repeatable, in "
                        "order), e.g. 'D=`Training FLOP` / (6 * N)'")
    g.add_argument("--where", metavar="EXPR",
                   help="keep the rows where EXPR holds (pandas.DataFrame.query), e.g. "
                        "'loss < 4'")
    o = f.add_argument_group("the objective")
    o.add_argument("--loss", default="linear", choices=RESIDUAL_LOSSES,
                   help="robust loss, as in scipy.optimize.least_squares (default: linear)")
    o.add_argument("--f-scale", type=float, default=1.0, metavar="S",
                   help="the robust loss's scale (default 1; the replication's Huber: 1e-3)")
    o.add_argument("--log-residuals", action="store_true",
                   help="fit log f - log y instead of f - y (the usual choice for losses)")
    o.add_argument("--bounds", nargs="+", metavar="NAME=LO:HI",
                   help="parameter bounds, e.g. E=0: alpha=0:2")
    s = f.add_argument_group("starting points")
    s.add_argument("--p0", metavar="NAME=V,...",
                   help="one start: NAME=VALUE for every parameter, or the values in order")
    s.add_argument("--grid", nargs="+", metavar="NAME=SPEC",
                   help="a Cartesian grid of starts: NAME=LO:HI:N, NAME=LO:HI:N:log or "
                        "NAME=V1,V2,... for every parameter (or, with --profile, the "
                        "exponents only)")
    s.add_argument("--profile", action="store_true",
                   help="a profile grid: --grid over the exponents, the linear coefficients "
                        "solved at each start (power laws and Chinchilla laws)")
    s.add_argument("--sobol", type=int, metavar="N",
                   help="N scrambled-Sobol starts in the box given by --grid NAME=LO:HI (or "
                        "finite --bounds)")
    s.add_argument("--k", metavar="K",
                   help="with a grid: refine the K starts of lowest objective, or 'all' "
                        "(default 100)")
    b = f.add_argument_group("uncertainty")
    b.add_argument("--bootstrap", type=int, metavar="R",
                   help="R bootstrap resamples per problem; without it, standard errors "
                        "come from the covariance")
    b.add_argument("--seed", type=int, default=0,
                   help="seed of the resamples and of --sobol (default 0)")
    b.add_argument("--level", type=float, default=0.95,
                   help="the intervals' confidence level (default 0.95)")
    b.add_argument("--interval", default="percentile", choices=["percentile", "bca"],
                   help="bootstrap interval method (default percentile)")
    b.add_argument("--resample", default="pairs", choices=["pairs", "residual"],
                   help="what a resample redraws: the points (pairs, default) or the "
                        "residuals (fixed design)")
    b.add_argument("--clusters", metavar="COL",
                   help="a numeric column of cluster labels: resample whole clusters "
                        "(the grouped bootstrap)")
    b.add_argument("--compute-optimal", metavar="C,...",
                   help="Chinchilla laws with --bootstrap: N_opt and D_opt at these compute "
                        "budgets (FLOP) under C = 6 N D, with intervals")
    w = f.add_argument_group("output")
    w.add_argument("--out", metavar="FILE",
                   help="write one row per problem (.csv, .parquet or .json): parameters, "
                        "standard errors, intervals, cost, status and diagnostics")
    w.add_argument("--plot", metavar="FILE",
                   help="draw the data, the fitted law and its band (.png, .pdf, .svg; needs "
                        "matplotlib)")
    w.add_argument("--show", type=int, default=10, metavar="N",
                   help="print (and plot) the first N problems (default 10)")
    w.add_argument("--backend", default="auto", choices=["auto", "cpu", "cuda", "numpy"],
                   help="where to solve (default auto: the GPU for large batches)")
    w.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all)")

    sub.add_parser("models", help="list the built-in models and library laws with formulas",
                   description="List the built-in models and the library's laws, with their "
                               "formulas, parameters and inputs.")

    d = sub.add_parser("demo", help="fit a seeded synthetic batch and compare with scipy",
                       description="Fit a seeded batch of synthetic saturating power laws "
                                   "E + A x^-alpha and compare speed and results with a "
                                   "scipy.optimize.least_squares loop.")
    d.add_argument("--problems", type=int, default=10_000, help="laws to fit (default 10,000)")
    d.add_argument("--points", type=int, default=20, help="points per law (default 20)")
    d.add_argument("--noise", type=float, default=0.01,
                   help="relative noise of the synthetic data (default 0.01)")
    d.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    d.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    d.add_argument("--backend", default="auto", choices=["auto", "cpu", "cuda", "numpy"],
                   help="where to solve (default auto)")
    d.add_argument("--scipy-subset", type=int, default=300,
                   help="problems also fitted by the scipy loop (default 300; 0 skips it)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "fit":
            return run_fit(args)
        if args.command == "models":
            return run_models(args)
        if args.command == "demo":
            return demo(args)
    except CliError as e:
        if sys.stderr.isatty():  # clear the status line first
            sys.stderr.write("\r\x1b[K")
        print(f"lawfit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lawfit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (lawfit models | head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
