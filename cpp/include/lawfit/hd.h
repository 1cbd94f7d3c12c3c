// hd.h: the one macro that lets every lawfit header compile for host and device alike,
// plus the few math functions the solver uses, declared in namespace lawfit so that a SIMD
// pack type (or float) can add overloads that unqualified calls find.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define LAWFIT_HD __host__ __device__
#define LAWFIT_INLINE __forceinline__
#else
#define LAWFIT_HD
#define LAWFIT_INLINE inline
#endif

namespace lawfit {

LAWFIT_HD LAWFIT_INLINE double exp(double v) { return ::exp(v); }
LAWFIT_HD LAWFIT_INLINE double log(double v) { return ::log(v); }
LAWFIT_HD LAWFIT_INLINE double log1p(double v) { return ::log1p(v); }
LAWFIT_HD LAWFIT_INLINE double sqrt(double v) { return ::sqrt(v); }
LAWFIT_HD LAWFIT_INLINE double atan(double v) { return ::atan(v); }
LAWFIT_HD LAWFIT_INLINE double abs(double v) { return ::fabs(v); }
LAWFIT_HD LAWFIT_INLINE double max(double a, double b) { return a > b ? a : b; }
LAWFIT_HD LAWFIT_INLINE double min(double a, double b) { return a < b ? a : b; }

LAWFIT_HD LAWFIT_INLINE float exp(float v) { return ::expf(v); }
LAWFIT_HD LAWFIT_INLINE float log(float v) { return ::logf(v); }
LAWFIT_HD LAWFIT_INLINE float log1p(float v) { return ::log1pf(v); }
LAWFIT_HD LAWFIT_INLINE float sqrt(float v) { return ::sqrtf(v); }
LAWFIT_HD LAWFIT_INLINE float atan(float v) { return ::atanf(v); }
LAWFIT_HD LAWFIT_INLINE float abs(float v) { return ::fabsf(v); }
LAWFIT_HD LAWFIT_INLINE float max(float a, float b) { return a > b ? a : b; }
LAWFIT_HD LAWFIT_INLINE float min(float a, float b) { return a < b ? a : b; }

// True when v is neither NaN nor infinite.  Written as arithmetic so that it needs no
// library call on the device and survives in a SIMD lane; lawfit is never compiled with
// the compiler's fast-math mode, which would fold it away.
template <class T>
LAWFIT_HD LAWFIT_INLINE bool is_finite(T v) {
  return (v - v) == T(0);
}

// Branch-free choice, the form every data-dependent decision in the math takes.
template <class T>
LAWFIT_HD LAWFIT_INLINE T select(bool c, T a, T b) {
  return c ? a : b;
}

}  // namespace lawfit
