// hd.h: the one macro that lets every lawfit header compile for host and device alike, the
// namespace every function lives in, and the few math functions the solver uses, declared in
// namespace lawfit so that a SIMD pack type (simd.h) can add overloads that unqualified calls
// find.
#pragma once

#if defined(__CUDACC_RTC__)
// NVRTC (a user's law's kernels, compiled at run time: lawfit/_nvrtc.py) has no C++ library;
// the device's math functions and memcpy are built in, and these two macros are all that
// the headers take from <cmath>.
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#ifndef NAN
#define NAN __int_as_float(0x7fffffff)
#endif
#else
#include <cmath>
#include <cstring>
#endif

#if defined(__CUDACC__)
#define LAWFIT_HD __host__ __device__
#define LAWFIT_INLINE __forceinline__
#else
#define LAWFIT_HD
#define LAWFIT_INLINE inline
#endif
// For the few functions the SIMD evaluation calls once per point (vmath.h): inlined into the
// point loop, so that the compiler schedules them with the rest of the point's work.
#if defined(__CUDACC__)
#define LAWFIT_FORCE_INLINE __forceinline__
#elif defined(__GNUC__)
#define LAWFIT_FORCE_INLINE inline __attribute__((always_inline))
#else
#define LAWFIT_FORCE_INLINE inline
#endif
// For the damped factorisation and its solves (lm.h), several per round of a solve: inlined
// on the CPU, where the SIMD driver's round then keeps the lanes' small matrices in registers
// across them (solves of a 3-parameter law 3-10% faster, AMD EPYC Zen 4); left to nvcc on the
// GPU, as before.
#if defined(__CUDACC__)
#define LAWFIT_STEP_INLINE
#else
#define LAWFIT_STEP_INLINE LAWFIT_FORCE_INLINE
#endif

// Every function and template of the headers lives in an inline namespace named after the
// instruction set its translation unit is compiled for (LAWFIT_ISA, set by CMake for the
// AVX2 and AVX-512 builds of the SIMD driver; "generic" otherwise).  Code still names them
// lawfit::..., but the AVX2 instantiation of, say, evaluate_as<...> gets its own symbol, so
// the linker can never hand the baseline code an AVX2 copy of an inline function.  Plain
// data types that cross between translation units (Options, Batch, the status codes) stay
// directly in namespace lawfit.
#ifndef LAWFIT_ISA
#define LAWFIT_ISA generic
#endif
#define LAWFIT_NAMESPACE_BEGIN \
  namespace lawfit {           \
  inline namespace LAWFIT_ISA {
#define LAWFIT_NAMESPACE_END \
  }                          \
  }

LAWFIT_NAMESPACE_BEGIN

LAWFIT_HD LAWFIT_INLINE double abs(double v) { return ::fabs(v); }
LAWFIT_HD LAWFIT_INLINE double max(double a, double b) { return a > b ? a : b; }
LAWFIT_HD LAWFIT_INLINE double min(double a, double b) { return a < b ? a : b; }
LAWFIT_HD LAWFIT_INLINE double sqrt(double v) { return ::sqrt(v); }
LAWFIT_HD LAWFIT_INLINE double atan(double v) { return ::atan(v); }

// Fused multiply-add, a * b + c with one rounding, written by name where the solver wants
// it (lawfit is compiled with -ffp-contract=off: no other product is ever fused, so every
// instruction set computes the same bits).  The SIMD builds with FMA (AVX2, AVX-512, NEON)
// emit the instruction; the x86-64 baseline calls libm's fma, which rounds the same way, in
// hardware where the CPU has it and in software where it does not (slower, same bits).
#if defined(__CUDA_ARCH__)
LAWFIT_HD LAWFIT_INLINE double fmadd(double a, double b, double c) { return ::fma(a, b, c); }
LAWFIT_HD LAWFIT_INLINE float fmadd(float a, float b, float c) { return ::fmaf(a, b, c); }
#else
LAWFIT_HD LAWFIT_FORCE_INLINE double fmadd(double a, double b, double c) {
  return __builtin_fma(a, b, c);
}
LAWFIT_HD LAWFIT_FORCE_INLINE float fmadd(float a, float b, float c) {
  return __builtin_fmaf(a, b, c);
}
#endif

LAWFIT_HD LAWFIT_INLINE float exp(float v) { return ::expf(v); }
LAWFIT_HD LAWFIT_INLINE float log(float v) { return ::logf(v); }
LAWFIT_HD LAWFIT_INLINE float log1p(float v) { return ::log1pf(v); }
LAWFIT_HD LAWFIT_INLINE float sqrt(float v) { return ::sqrtf(v); }
LAWFIT_HD LAWFIT_INLINE float atan(float v) { return ::atanf(v); }
LAWFIT_HD LAWFIT_INLINE float abs(float v) { return ::fabsf(v); }
LAWFIT_HD LAWFIT_INLINE float max(float a, float b) { return a > b ? a : b; }
LAWFIT_HD LAWFIT_INLINE float min(float a, float b) { return a < b ? a : b; }

// The type a comparison of two T gives: bool for a scalar, a lane mask for a SIMD pack.
template <class T>
using MaskOf = decltype(T() < T());

// True when v is neither NaN nor infinite.  Written as arithmetic so that it needs no
// library call on the device and survives in a SIMD lane; lawfit is never compiled with
// the compiler's fast-math mode, which would fold it away.
template <class T>
LAWFIT_HD LAWFIT_INLINE MaskOf<T> is_finite(T v) {
  return (v - v) == T(0);
}

// Branch-free choice, the form every data-dependent decision in the math takes.
template <class T>
LAWFIT_HD LAWFIT_INLINE T select(bool c, T a, T b) {
  return c ? a : b;
}

// Whether any lane of a mask holds (for a scalar's bool, the bool): a branch that skips
// work every lane would discard must give the same bits as doing the work.
LAWFIT_HD LAWFIT_INLINE bool any(bool b) { return b; }

// Integer access to the bits of a T (a double, or a SIMD pack in simd.h): what vmath.h
// builds exp and log from.  Bits<T>::of(v) gives an int64 (or int64 lanes), from() goes back.
template <class T>
struct Bits;
template <>
struct Bits<double> {
  using I = long long;
  LAWFIT_HD static LAWFIT_INLINE I of(double v) {
    I b;
    memcpy(&b, &v, sizeof b);
    return b;
  }
  LAWFIT_HD static LAWFIT_INLINE double from(I b) {
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
  }
};

// True when every one of v[0], ..., v[n-1] is finite.  For doubles, integer operations
// that the compiler vectorises: a double is NaN or infinite exactly when its exponent bits
// are all set, and then adding one at the exponent's lowest bit carries into the sign bit.
template <class T>
LAWFIT_HD LAWFIT_INLINE bool all_finite(const T* v, long long n) {
  if constexpr (sizeof(T) == sizeof(unsigned long long)) {
    constexpr unsigned long long kExponent = 0x7ff0000000000000ULL;
    unsigned long long carry = 0;
    for (long long i = 0; i < n; ++i) {
      unsigned long long b;
      memcpy(&b, v + i, sizeof b);
      carry |= (b & kExponent) + (1ULL << 52);
    }
    return (carry >> 63) == 0;
  } else {
    bool ok = true;
    for (long long i = 0; i < n; ++i) ok = ok & is_finite(v[i]);
    return ok;
  }
}

LAWFIT_NAMESPACE_END

#include "vmath.h"

LAWFIT_NAMESPACE_BEGIN

// On the host, fp64 exp, log and log1p are lawfit's own (vmath.h), so that a scalar solve
// and a SIMD lane compute bitwise the same numbers; on the device, CUDA's.
#if defined(__CUDA_ARCH__)
LAWFIT_HD LAWFIT_INLINE double exp(double v) { return ::exp(v); }
LAWFIT_HD LAWFIT_INLINE double log(double v) { return ::log(v); }
LAWFIT_HD LAWFIT_INLINE double log1p(double v) { return ::log1p(v); }
#else
LAWFIT_HD LAWFIT_INLINE double exp(double v) { return vmath::exp(v); }
LAWFIT_HD LAWFIT_INLINE double log(double v) { return vmath::log(v); }
LAWFIT_HD LAWFIT_INLINE double log1p(double v) { return vmath::log1p(v); }
#endif

LAWFIT_NAMESPACE_END
