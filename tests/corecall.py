"""The compiled cores' fit and objective called with explicit arrays, for the tests of the
core's own mechanics (units, resampling, shared grids and bounds, faults).

The binding takes a call as a few structured arguments (``data``, ``box``, ``options``,
``units``: cpp/src/bindings.h, HostCall); these helpers build them from the flat arrays a
test holds, so that each test reads as the arrays it passes."""
from __future__ import annotations

from lawfit._options import Options

_UNIT_KEYS = ("data_of", "resample_of", "seed", "resample_mode", "group_of", "n_groups",
              "fit_t", "fit_r")


def _call_args(x, t, sigma, weights, offsets, p0, lower, upper, kw):
    data = dict(x=x, t=t, sigma=sigma, weights=weights, offsets=offsets,
                log_residuals=kw.pop("log_residuals", False),
                x_shared=kw.pop("x_shared", False))
    box = dict(p0=p0, lower=lower, upper=upper,
               per_problem=kw.pop("box_per_problem", False),
               bounds_shared=kw.pop("bounds_shared", False))
    units = {k: v for k in _UNIT_KEYS if (v := kw.pop(k, None)) is not None}
    call = {k: kw.pop(k) for k in ("n_threads", "return_jtj", "engine") if k in kw}
    return data, box, Options(**kw), units or None, call


def fit(fn, model, x, t, sigma, weights, offsets, p0, lower, upper, **kw):
    """``fn`` (``_core.fit``, ``_core.fit32``, ``_cuda.fit``) on these arrays; ``kw``: the
    options (Options' fields), log_residuals, x_shared, bounds_shared, box_per_problem, the
    units' arrays and n_threads, return_jtj, engine."""
    data, box, options, units, call = _call_args(x, t, sigma, weights, offsets, p0, lower,
                                                 upper, dict(kw))
    return fn(model, data, box, options, units, **call)


def objective(fn, model, x, t, sigma, weights, offsets, params, **kw):
    """``fn`` (``_core.objective``, ...) at ``params``, one row per unit."""
    data, _, options, units, call = _call_args(x, t, sigma, weights, offsets, params, params,
                                               params, dict(kw))
    call.pop("return_jtj", None)
    return fn(model, data, params, options, units, **call)
