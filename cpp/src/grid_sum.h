// grid_sum.h: the inner loop of the grid objective under resampling (cpu_driver.h,
// grid_objective): one unit's cost at a row of starts, from the starts' point values and the
// unit's weights.  Lane s of the result sums, over the points in their order, what lm.h's
// add_point_cost() adds for start s, and skips the points of weight 0 (which add an exact
// zero there): bitwise objective_value() at that start.  Written once for a pack type P:
// Pack<W> in each instruction set's build of simd_driver.cpp, double for the scalar path.
// Header-only, in the build's LAWFIT_ISA namespace (hd.h) like every inline function the SIMD
// builds share; nothing here instantiates a standard-library template.
#pragma once

#include "lawfit/hd.h"
#include "simd_dispatch.h"

LAWFIT_NAMESPACE_BEGIN

using simd::GridSumJob;

// Loads and stores of P from and to memory (unaligned).
template <class P>
struct GridLoad {  // a SIMD pack (simd.h)
  static constexpr int kWidth = P::kWidth;
  static P load(const double* p) {
    P v;
    __builtin_memcpy(&v.v, p, sizeof(v.v));
    return v;
  }
  static void store(double* p, P v) { __builtin_memcpy(p, &v.v, sizeof(v.v)); }
};
template <>
struct GridLoad<double> {
  static constexpr int kWidth = 1;
  static double load(const double* p) { return *p; }
  static void store(double* p, double v) { *p = v; }
};

// Starts s .. s + K W - 1 of `job`, K packs of W lanes in registers across the points.
template <class P, int K>
LAWFIT_FORCE_INLINE void grid_sum_block(const GridSumJob& job, int s) {
  using L = GridLoad<P>;
  constexpr int W = L::kWidth;
  P acc[K];
  for (int q = 0; q < K; ++q) acc[q] = P(0.0);
  const double* v = job.values + s;
  for (int pt = 0; pt < job.n; ++pt, v += job.stride) {
    const double w = job.w[pt];
    if (!(w > 0.0)) continue;
    if (job.linear) {
      const P hw = P(0.5) * P(w);
      for (int q = 0; q < K; ++q) {
        const P r = L::load(v + q * W);
        acc[q] = fmadd(hw * r, r, acc[q]);
      }
    } else {
      const P pw(w);
      for (int q = 0; q < K; ++q) acc[q] = fmadd(L::load(v + q * W) * pw, P(1.0), acc[q]);
    }
  }
  for (int q = 0; q < K; ++q)
    L::store(job.out + s + q * W, select(is_finite(acc[q]), acc[q], P(INFINITY)));
}

template <class P>
void grid_sum(const GridSumJob& job) {
  constexpr int W = GridLoad<P>::kWidth;
  constexpr int K = 4;
  int s = 0;
  for (; s + K * W <= job.width; s += K * W) grid_sum_block<P, K>(job, s);
  for (; s + W <= job.width; s += W) grid_sum_block<P, 1>(job, s);
  for (; s < job.width; ++s) grid_sum_block<double, 1>(job, s);
}

LAWFIT_NAMESPACE_END
