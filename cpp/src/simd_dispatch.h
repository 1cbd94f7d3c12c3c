// simd_dispatch.h: the CPU driver's SIMD builds, one per instruction set, and how module.cpp
// reaches them.
//
// cpp/src/simd_driver.cpp is compiled once per instruction set (CMake: the baseline for the
// target, and on x86-64 also AVX2+FMA and AVX-512), each time with its own LAWFIT_ISA (so
// its inline code has its own symbols; see hd.h) and its own pack width.  Each build defines
// the functions below with its ISA's suffix; module.cpp picks one at run time from what
// the CPU supports.  Only plain data crosses: Batch, Options and LaneJob.
#pragma once

#include <cstddef>

#include "lawfit/batch.h"
#include "lawfit/options.h"

namespace lawfit::simd {

// A thread's early stop (lawfit/batch.h's StopCheck): the call's shared flag, and the
// calling thread's poll (nullptr on the others).
struct StopFields {
  const int* flag = nullptr;
  bool (*poll)(void* ctx) = nullptr;
  void* poll_ctx = nullptr;
};

// What one thread's Lanes run needs: the batch, the problems to solve (an index list, or
// all), the chunk counter every thread shares, and the largest problem (in points).
struct LaneJob {
  const Batch<double>* batch;
  const Options* options;
  const long long* order;  // nullptr: problems 0 .. n - 1
  long long n;
  long long* counter;
  long long chunk;
  int cap;
  bool objective = false;  // true: each unit's cost at its p0 (Lanes::run_objective), no solve
  bool bounded = true;     // false: every bound is infinite (Lanes<..., false>)
  StopFields stop{};       // this thread's
};

// The saturating power law's data-driven start (guess.h) for problems from a shared counter,
// one problem per lane: points lx, y of problem i at offsets[i] .. offsets[i + 1], at most
// `cap` of them; E, A, alpha into out[3 i ...].
struct GuessJob {
  const double* lx;
  const double* y;
  const long long* offsets;
  const long long* order;  // nullptr: problems 0 .. n - 1
  long long n;
  long long* counter;
  long long chunk;
  const double* coarse;
  int n_coarse;
  const double* factors;
  int n_factors;
  double* out;
  int cap;
  StopFields stop{};  // this thread's
};

// One unit's cost at `width` starts of its problem (grid_sum.h): values[pt * stride + s] is
// start s's value of point pt (lm.h, point_value), w the unit's n weights; the sums, +inf
// where not finite, go to out[0 .. width).  linear: the loss is linear (else robust).
struct GridSumJob {
  const double* values;
  long long stride;
  const double* w;
  int n;
  int width;
  bool linear;
  double* out;
};

#define LAWFIT_DECLARE_SIMD(isa)                                      \
  /* Pack width of this build. */                                     \
  int width_##isa();                                                  \
  /* Point-buffer bytes a thread needs for the model (0: unknown). */ \
  size_t buffer_bytes_##isa(const char* model, int cap);              \
  /* Runs one thread's share; false when the model is unknown. */     \
  bool run_##isa(const char* model, const LaneJob& job, void* buffer); \
  /* For the tests: vmath.h's fn (0 exp, 1 log, 2 log1p) on packs. */  \
  void vmath_##isa(int fn, const double* x, double* out, long long n); \
  /* Buffer bytes, then one thread's share of a guess job. */         \
  size_t guess_bytes_##isa(const GuessJob& job);                      \
  void guess_##isa(const GuessJob& job, void* buffer);                \
  /* One unit's grid objective sums (grid_sum.h). */                  \
  void grid_sum_##isa(const GridSumJob& job);                         \
  /* Whether all n values are finite (hd.h's all_finite, vectorised). */ \
  bool all_finite_##isa(const double* v, long long n);

LAWFIT_DECLARE_SIMD(generic)
#if defined(LAWFIT_X86_ISAS)
LAWFIT_DECLARE_SIMD(avx2)
LAWFIT_DECLARE_SIMD(avx512)
#endif

}  // namespace lawfit::simd
