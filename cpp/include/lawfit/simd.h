// simd.h: Pack<W>, W fp64 lanes, and its lane mask: the scalar type that the lockstep CPU
// driver (lanes.h) instantiates the solver's math with, one problem per lane.
//
// Built on the GCC/Clang vector extensions, so the compiler emits whatever the translation
// unit targets: two SSE2 registers for a Pack<4> on baseline x86-64, one AVX2 register, one
// AVX-512 register for a Pack<8>, NEON pairs on aarch64.  Every operation is lane-wise and
// IEEE (no fast-math), so lane k computes bitwise what the scalar code computes for the
// same inputs: that is what lets the tests compare the SIMD driver with the scalar solve
// exactly.  Host only: the CUDA kernels run the scalar instantiation, one thread per problem.
#pragma once

#include "hd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

LAWFIT_NAMESPACE_BEGIN

// The vector types themselves, one specialisation per width (a vector_size attribute that
// depends on a template parameter is not honoured inside a class template).
template <int W>
struct Vec;
template <>
struct Vec<2> {
  typedef double V __attribute__((vector_size(16)));
  typedef long long I __attribute__((vector_size(16)));
};
template <>
struct Vec<4> {
  typedef double V __attribute__((vector_size(32)));
  typedef long long I __attribute__((vector_size(32)));
};
template <>
struct Vec<8> {
  typedef double V __attribute__((vector_size(64)));
  typedef long long I __attribute__((vector_size(64)));
};

template <int W>
struct Mask {
  using I = typename Vec<W>::I;
  I m;  // all ones (true) or all zeros (false) per lane

  bool lane(int k) const { return m[k] != 0; }
  // Lane k's truth as bit k, and back: the driver's per-lane bookkeeping visits only the
  // lanes whose bit is set.
  unsigned bits() const {
#if defined(__AVX512DQ__)
    if constexpr (W == 8) return _mm512_movepi64_mask((__m512i)m);
#endif
#if defined(__AVX__)
    if constexpr (W == 4) return static_cast<unsigned>(_mm256_movemask_pd((__m256d)m));
#endif
#if defined(__SSE2__)
    if constexpr (W == 2) return static_cast<unsigned>(_mm_movemask_pd((__m128d)m));
#endif
    unsigned r = 0;
    for (int k = 0; k < W; ++k) r |= (m[k] != 0 ? 1u : 0u) << k;
    return r;
  }
  static Mask from_bits(unsigned b) {
    I lanes;
    for (int k = 0; k < W; ++k) lanes[k] = 1LL << k;
    return {((I{} + static_cast<long long>(b)) & lanes) != 0};
  }
  friend Mask operator&&(Mask a, Mask b) { return {a.m & b.m}; }
  friend Mask operator||(Mask a, Mask b) { return {a.m | b.m}; }
  friend Mask operator!(Mask a) { return {~a.m}; }
  // A scalar bool (the same for every lane) mixes in as a full or empty mask.
  friend Mask operator&&(Mask a, bool b) { return {b ? a.m : I{}}; }
  friend Mask operator&&(bool a, Mask b) { return b && a; }
  friend Mask operator||(Mask a, bool b) { return {b ? (I{} - 1) : a.m}; }
  friend Mask operator||(bool a, Mask b) { return b || a; }
};

template <int W>
LAWFIT_INLINE bool any(Mask<W> a) {
  return a.bits() != 0;
}

template <int W>
struct Pack {
  using V = typename Vec<W>::V;
  using I = typename Vec<W>::I;
  static constexpr int kWidth = W;
  V v;

  Pack() = default;
  Pack(double s) : v(V{} + s) {}  // NOLINT: broadcast, as T(2) in the generic code
  static Pack of(V x) {
    Pack p;
    p.v = x;
    return p;
  }
  double operator[](int k) const { return v[k]; }
  void set(int k, double s) { v[k] = s; }

  Pack& operator+=(Pack b) { v += b.v; return *this; }
  Pack& operator-=(Pack b) { v -= b.v; return *this; }
  Pack& operator*=(Pack b) { v *= b.v; return *this; }
  Pack& operator/=(Pack b) { v /= b.v; return *this; }
  friend Pack operator+(Pack a, Pack b) { return of(a.v + b.v); }
  friend Pack operator-(Pack a, Pack b) { return of(a.v - b.v); }
  friend Pack operator*(Pack a, Pack b) { return of(a.v * b.v); }
  friend Pack operator/(Pack a, Pack b) { return of(a.v / b.v); }
  friend Pack operator-(Pack a) { return of(-a.v); }
  friend Mask<W> operator<(Pack a, Pack b) { return {a.v < b.v}; }
  friend Mask<W> operator<=(Pack a, Pack b) { return {a.v <= b.v}; }
  friend Mask<W> operator>(Pack a, Pack b) { return {a.v > b.v}; }
  friend Mask<W> operator>=(Pack a, Pack b) { return {a.v >= b.v}; }
  friend Mask<W> operator==(Pack a, Pack b) { return {a.v == b.v}; }
  friend Mask<W> operator!=(Pack a, Pack b) { return {a.v != b.v}; }
};

// Integer lanes for vmath.h's bit manipulation.
template <int W>
struct Bits<Pack<W>> {
  using I = typename Pack<W>::I;
  static LAWFIT_INLINE I of(Pack<W> a) { return (I)a.v; }
  static LAWFIT_INLINE Pack<W> from(I b) { return Pack<W>::of((typename Pack<W>::V)b); }
};

template <int W>
LAWFIT_FORCE_INLINE Pack<W> select(Mask<W> c, Pack<W> a, Pack<W> b) {
  using I = typename Pack<W>::I;
  return Pack<W>::of((typename Pack<W>::V)((c.m & (I)a.v) | (~c.m & (I)b.v)));
}
template <int W>
LAWFIT_INLINE Mask<W> select(Mask<W> c, Mask<W> a, Mask<W> b) {
  return {(c.m & a.m) | (~c.m & b.m)};
}

// max(a, b) = a > b ? a : b and min(a, b) = a < b ? a : b, as the scalar ones: b when either
// is NaN, and b for -0 against +0.  x86's maxpd/minpd are defined as exactly that (the
// second operand in both cases), so where the unit targets them they do it in one
// instruction rather than a compare and a blend.
template <int W>
LAWFIT_FORCE_INLINE Pack<W> max(Pack<W> a, Pack<W> b) {
#if defined(__AVX512F__)
  if constexpr (W == 8)  // the masked form: GCC 12 warns on the plain one's undefined
    return Pack<W>::of((typename Pack<W>::V)_mm512_mask_max_pd(a.v, 0xff, a.v, b.v));
#endif
#if defined(__AVX__)
  if constexpr (W == 4) return Pack<W>::of((typename Pack<W>::V)_mm256_max_pd(a.v, b.v));
#endif
#if defined(__SSE2__)
  if constexpr (W == 2) return Pack<W>::of((typename Pack<W>::V)_mm_max_pd(a.v, b.v));
#endif
  return select(a > b, a, b);
}
template <int W>
LAWFIT_FORCE_INLINE Pack<W> min(Pack<W> a, Pack<W> b) {
#if defined(__AVX512F__)
  if constexpr (W == 8)  // the masked form: GCC 12 warns on the plain one's undefined
    return Pack<W>::of((typename Pack<W>::V)_mm512_mask_min_pd(a.v, 0xff, a.v, b.v));
#endif
#if defined(__AVX__)
  if constexpr (W == 4) return Pack<W>::of((typename Pack<W>::V)_mm256_min_pd(a.v, b.v));
#endif
#if defined(__SSE2__)
  if constexpr (W == 2) return Pack<W>::of((typename Pack<W>::V)_mm_min_pd(a.v, b.v));
#endif
  return select(a < b, a, b);
}
// a * b + c with one rounding per lane (hd.h): the FMA instruction where the unit targets
// it, else lane by lane the scalar fmadd (libm's fma on the x86-64 baseline: the same bits).
template <int W>
LAWFIT_FORCE_INLINE Pack<W> fmadd(Pack<W> a, Pack<W> b, Pack<W> c) {
#if defined(__AVX512F__)
  if constexpr (W == 8) return Pack<W>::of((typename Pack<W>::V)_mm512_fmadd_pd(a.v, b.v, c.v));
#endif
#if defined(__FMA__)
  if constexpr (W == 4) return Pack<W>::of((typename Pack<W>::V)_mm256_fmadd_pd(a.v, b.v, c.v));
  if constexpr (W == 2) return Pack<W>::of((typename Pack<W>::V)_mm_fmadd_pd(a.v, b.v, c.v));
#endif
  Pack<W> r;
  for (int k = 0; k < W; ++k) r.v[k] = __builtin_fma(a.v[k], b.v[k], c.v[k]);
  return r;
}
// vmath.h's er * 2^kf, rounded once: AVX-512's scalef computes exactly that (subnormal,
// zero and infinite results included); elsewhere the two-factor product.
template <int W>
LAWFIT_FORCE_INLINE Pack<W> scale_pow2(Pack<W> er, Pack<W> kf, Pack<W> t) {
#if defined(__AVX512F__)
  if constexpr (W == 8)  // the masked form: GCC 12 warns on the plain one's undefined
    return Pack<W>::of((typename Pack<W>::V)_mm512_mask_scalef_pd(er.v, 0xff, er.v, kf.v));
#endif
  return vmath::scale_pow2<Pack<W>>(er, kf, t);
}
template <int W>
LAWFIT_FORCE_INLINE Pack<W> abs(Pack<W> a) {
  return Bits<Pack<W>>::from(Bits<Pack<W>>::of(a) & 0x7fffffffffffffffLL);
}
template <int W>
LAWFIT_FORCE_INLINE Pack<W> sqrt(Pack<W> a) {
  Pack<W> r;  // a loop the compiler turns into the packed square root instruction
  for (int k = 0; k < W; ++k) r.v[k] = __builtin_sqrt(a.v[k]);
  return r;
}
template <int W>
LAWFIT_FORCE_INLINE Pack<W> exp(Pack<W> a) {
  return vmath::exp(a);
}
template <int W>
LAWFIT_FORCE_INLINE Pack<W> log(Pack<W> a) {
  return vmath::log(a);
}
template <int W>
LAWFIT_FORCE_INLINE Pack<W> log1p(Pack<W> a) {
  return vmath::log1p(a);
}
template <int W>
LAWFIT_INLINE Pack<W> atan(Pack<W> a) {
  Pack<W> r;  // the arctan loss only; lane by lane, the same libm call as the scalar path
  for (int k = 0; k < W; ++k) r.v[k] = ::atan(a.v[k]);
  return r;
}

LAWFIT_NAMESPACE_END
