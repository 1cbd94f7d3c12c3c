"""lawfit's own fp64 exp, log and log1p (cpp/include/lawfit/vmath.h).

The scalar host solve and every SIMD build compute the model with these, so they must be
accurate (checked here against long-double references, in ulps) and every build must give
bitwise the scalar code's result (up to the sign of a NaN; the property that makes a SIMD lane equal the scalar
solve).  Special values keep their IEEE meaning.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lawfit._core")
from lawfit import _core  # noqa: E402

ENGINES = [name for name, _, ok in _core.engines() if ok]
REFERENCE = {"exp": np.exp, "log": np.log, "log1p": np.log1p}
HAVE_LONG_DOUBLE = np.finfo(np.longdouble).nmant >= 63  # x87 extended precision


def ulps(got: np.ndarray, x: np.ndarray, fn: str) -> np.ndarray:
    """|got - f(x)| in units of the last place of f(x), with f in long double."""
    exact = REFERENCE[fn](x.astype(np.longdouble))
    spacing = np.spacing(np.abs(exact.astype(np.float64)))
    return np.abs((got.astype(np.longdouble) - exact) / spacing.astype(np.longdouble))


def arguments(fn: str, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if fn == "exp":  # the whole range with a finite, normal result, dense near 0
        return np.concatenate([rng.uniform(-708, 709.7, n // 2), rng.uniform(-1, 1, n // 2)])
    if fn == "log":  # positive normal numbers over the whole exponent range, and near 1
        return np.concatenate([np.exp(rng.uniform(-700, 700, n // 2)),
                               1 + rng.uniform(-0.3, 0.3, n // 2)])
    return np.concatenate([np.exp(rng.uniform(-40, 40, n // 2)), rng.uniform(-0.9, 1, n // 2)])


@pytest.mark.skipif(not HAVE_LONG_DOUBLE, reason="needs an extended-precision long double")
@pytest.mark.parametrize("fn", ["exp", "log", "log1p"])
def test_accuracy(fn):
    x = arguments(fn, 2_000_000)
    err = ulps(_core.testing.vmath(fn, x), x, fn)
    # exp and log: within 1 ulp; log1p (log(u) x / (u - 1)): within 2.5.
    assert err.max() <= (1.0 if fn != "log1p" else 2.5), (fn, err.max(), x[err.argmax()])
    assert err.mean() < (0.3 if fn != "log1p" else 0.5), (fn, err.mean())


def test_subnormal_results_and_arguments():
    x = np.array([-708.5, -720.0, -740.0, -744.4, -745.1, -745.2])
    np.testing.assert_array_equal(_core.testing.vmath("exp", x), np.exp(x))
    tiny = np.array([5e-324, 1e-310, 2.2e-308, 1e-300])
    assert (ulps(_core.testing.vmath("log", tiny), tiny, "log") <= 1).all() if HAVE_LONG_DOUBLE else True
    np.testing.assert_allclose(_core.testing.vmath("log", tiny), np.log(tiny), rtol=1e-15)


@pytest.mark.parametrize("engine", ["scalar", *ENGINES])
def test_special_values(engine):
    inf, nan = np.inf, np.nan
    x = np.array([0.0, -0.0, inf, -inf, nan, 1.0, -1.0, 710.0, -746.0, 709.78, 1e-320])
    with np.errstate(all="ignore"):
        for fn in ("exp", "log", "log1p"):
            got, want = _core.testing.vmath(fn, x, engine), REFERENCE[fn](x)
            same = (got == want) | (np.isnan(got) & np.isnan(want))
            close = np.isfinite(want) & np.isclose(got, want, rtol=1e-15, atol=0)
            assert (same | close).all(), (fn, x[~(same | close)], got[~(same | close)])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fn", ["exp", "log", "log1p"])
def test_every_build_bitwise_equals_scalar(engine, fn):
    x = np.concatenate([arguments(fn, 100_003, seed=1), [0.0, np.inf, -np.inf, np.nan, -1.0]])
    with np.errstate(all="ignore"):
        a, b = _core.testing.vmath(fn, x, "scalar"), _core.testing.vmath(fn, x, engine)
    # Bitwise, except the sign of a NaN (which operand's NaN an IEEE operation passes on is
    # the compiler's choice; NaN is NaN to the solver).
    nan = np.isnan(a)
    assert np.array_equal(np.isnan(b), nan)
    assert np.array_equal(a[~nan].view(np.int64), b[~nan].view(np.int64))


def test_bad_arguments():
    with pytest.raises(ValueError, match="fn"):
        _core.testing.vmath("sin", np.ones(3))
    with pytest.raises(ValueError, match="engine"):
        _core.testing.vmath("exp", np.ones(3), "sse9")
