// vmath.h: exp, log and log1p for fp64, written once for a scalar double and for a SIMD pack
// of doubles (simd.h).  Included by hd.h; include that instead.
//
// Why lawfit has its own: the SIMD driver needs these vectorised, and a scalar solve must
// compute bitwise what a SIMD lane computes, so both use this one implementation.  The
// functions are branch-free (every special case is a select, or passes through the
// arithmetic), need only +, -, *, /, fused multiply-add, comparisons and integer access to
// the bits, and keep IEEE semantics for NaN, +-inf, zero, subnormal inputs and results.  Accuracy (tests/test_vmath.py, millions of arguments
// against long double): exp and log within 1 ulp, log1p within 2.5.
//
// Products that feed a sum are fused (fmadd, hd.h): fewer roundings and fewer
// instructions, and still the same bits on every instruction set.
//
// exp:   x = k ln2 + r, |r| <= ln2 / 2, k an integer (found by the 1.5 * 2^52 rounding
//        trick); exp(r) by its Taylor series to degree 13 (the next term is below 4e-18
//        relative), evaluated by Estrin's scheme; 2^k applied as two factors 2^(k/2)
//        2^(k - k/2) (scale_pow2), so that results in the subnormal range round once.
// log:   x = 2^e m, m in [sqrt(1/2), sqrt(2)); with f = m - 1 and s = f / (2 + f),
//        log m = 2 atanh(s) = 2 s (1 + s^2/3 + s^4/5 + ...), |s| <= 0.1716, eleven terms
//        (Estrin's scheme), combined as f - (f^2/2 - s (f^2/2 + R)) so that the leading
//        term f is exact and every rounding lands in a small correction.  ln2 is split into
//        a 32-bit head (e ln2_hi is exact) and a tail.
// log1p: log(u) * x / (u - 1) with u = 1 + x (Goldberg's correction of the rounding in u).
#pragma once

LAWFIT_NAMESPACE_BEGIN
namespace vmath {

inline constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 32 significant bits
inline constexpr double kLn2Lo = 1.90821492927058770002e-10;

// er * 2^kf for an integer-valued kf in [-1076, 1025] and er in [1/2, 2], rounded once (to a
// subnormal, zero or infinity where the exact product is one); t = kf + 1.5 * 2^52.  Here
// 2^kf is two normal factors 2^k1 2^k2, k1 about kf / 2, so that er 2^k1 is exact and only
// the second product rounds; a SIMD build may use one instruction that rounds the same
// exact product once (simd.h), which gives the same bits.
template <class T>
LAWFIT_HD LAWFIT_FORCE_INLINE T scale_pow2(T er, T kf, T t) {
  const T magic = T(6755399441055744.0);  // 1.5 * 2^52
  const auto k = Bits<T>::of(t) - Bits<T>::of(magic);  // kf as an int64
  // k1 = round(k / 2) by the same rounding trick (SSE2 has no arithmetic shift of 64-bit
  // lanes); k2 = k - k1.
  const auto k1 = Bits<T>::of(fmadd(kf, T(0.5), magic)) - Bits<T>::of(magic);
  const auto k2 = k - k1;
  return (er * Bits<T>::from((k1 + 1023) << 52)) * Bits<T>::from((k2 + 1023) << 52);
}

template <class T>
LAWFIT_HD LAWFIT_FORCE_INLINE T exp(T v) {
  // exp is 0 or inf beyond; a NaN passes (max and min give their second operand then) and
  // every step after keeps it NaN.
  const T x = min(T(710.0), max(T(-746.0), v));
  const T magic = T(6755399441055744.0);         // 1.5 * 2^52: adding it rounds to an integer
  const T t = fmadd(x, T(1.4426950408889634), magic);
  const T kf = t - magic;
  const T r = fmadd(kf, T(-kLn2Lo), fmadd(kf, T(-kLn2Hi), x));  // kf ln2_hi is exact
  // q(r) = sum_{k=0}^{11} r^k / (k + 2)!, by Estrin's scheme (pairs, then pairs of pairs):
  // a short dependency chain, so that consecutive points overlap in the pipeline.
  const T r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
  const T a0 = fmadd(r, T(1.0 / 6.0), T(1.0 / 2.0));
  const T a1 = fmadd(r, T(1.0 / 120.0), T(1.0 / 24.0));
  const T a2 = fmadd(r, T(1.0 / 5040.0), T(1.0 / 720.0));
  const T a3 = fmadd(r, T(1.0 / 362880.0), T(1.0 / 40320.0));
  const T a4 = fmadd(r, T(1.0 / 39916800.0), T(1.0 / 3628800.0));
  const T a5 = fmadd(r, T(1.0 / 6227020800.0), T(1.0 / 479001600.0));
  const T b0 = fmadd(r2, a1, a0), b1 = fmadd(r2, a3, a2), b2 = fmadd(r2, a5, a4);
  const T q = fmadd(r8, b2, fmadd(r4, b1, b0));
  const T er = T(1) + fmadd(r2, q, r);
  return scale_pow2(er, kf, t);
}

template <class T>
LAWFIT_HD LAWFIT_FORCE_INLINE T log(T v) {
  const auto tiny = v < T(2.2250738585072014e-308);  // subnormal (or not positive)
  const T x = select(tiny, v * T(18014398509481984.0), v);  // * 2^54
  const auto b = Bits<T>::of(x);
  const T two52 = T(4503599627370496.0);
  // The biased exponent as a double, without an int64 -> double conversion (which AVX2
  // lacks): put it in the mantissa of 2^52 and subtract 2^52.
  T e = (Bits<T>::from(((b >> 52) & 0x7ff) | Bits<T>::of(two52)) - two52) - T(1023);
  e = e - select(tiny, T(54), T(0));
  T m = Bits<T>::from((b & 0x000fffffffffffffLL) | 0x3ff0000000000000LL);  // [1, 2)
  const auto big = m > T(1.4142135623730951);
  m = select(big, m * T(0.5), m);
  e = e + select(big, T(1), T(0));
  const T f = m - T(1);  // exact
  const T s = f / (T(2) + f);
  const T z = s * s;
  // R = 2 (z/3 + z^2/5 + ... + z^11/23) (Estrin's scheme, as in exp).
  const T z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
  const T a0 = fmadd(z, T(2.0 / 5.0), T(2.0 / 3.0));
  const T a1 = fmadd(z, T(2.0 / 9.0), T(2.0 / 7.0));
  const T a2 = fmadd(z, T(2.0 / 13.0), T(2.0 / 11.0));
  const T a3 = fmadd(z, T(2.0 / 17.0), T(2.0 / 15.0));
  const T a4 = fmadd(z, T(2.0 / 21.0), T(2.0 / 19.0));
  const T b0 = fmadd(z2, a1, a0), b1 = fmadd(z2, a3, a2), b2 = fmadd(z2, T(2.0 / 23.0), a4);
  const T R = z * fmadd(z8, b2, fmadd(z4, b1, b0));
  // log m = 2 s + s R, and 2 s = f - hfsq + s hfsq with hfsq = f^2 / 2, so
  // log x = e ln2 + f - (hfsq - s (hfsq + R)): every rounding lands in a small correction.
  const T hfsq = T(0.5) * f * f;
  T out = e * T(kLn2Hi) - ((hfsq - fmadd(s, hfsq + R, e * T(kLn2Lo))) - f);
  out = select(v == T(INFINITY), v, out);
  out = select(v == T(0), T(-INFINITY), out);
  return select(v >= T(0), out, T(NAN));  // negative or NaN
}

template <class T>
LAWFIT_HD LAWFIT_FORCE_INLINE T log1p(T x) {
  const T u = T(1) + x;
  const auto exact = (u == T(1)) || (u == T(INFINITY));  // log1p(x) = x to working precision
  const T d = select(exact, T(1), u - T(1));
  return select(exact, select(u == T(1), x, u), log(u) * (x / d));
}

}  // namespace vmath
LAWFIT_NAMESPACE_END
