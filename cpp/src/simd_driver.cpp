// simd_driver.cpp: one instruction set's build of the lockstep SIMD driver (lawfit/lanes.h)
// for every model (the built-ins and the laws' tapes, tape.h).  Compiled once per
// instruction set; see simd_dispatch.h.  Nothing here may instantiate a standard-library
// template (it would be emitted with this file's instruction set under a shared symbol):
// only lawfit's headers, C functions and builtins.
#include <cstring>

#include "lawfit/guess.h"
#include "lawfit/lanes.h"
#include "lawfit/models/all.h"
#include "lawfit/tape.h"
#include "grid_sum.h"
#include "simd_dispatch.h"
#include "simd_run.h"

#ifndef LAWFIT_SIMD_WIDTH
#define LAWFIT_SIMD_WIDTH 4
#endif

// The models of this build: every model, or (x86-64's baseline build, which "auto" never
// picks) the built-ins only, whose laws' tapes then run the scalar solve.
#if defined(LAWFIT_SIMD_BUILTINS_ONLY)
#define LAWFIT_SIMD_MODELS(X) LAWFIT_FOR_EACH_MODEL(X)
#else
#define LAWFIT_SIMD_MODELS(X) LAWFIT_FOR_EACH_CPU_MODEL(X)
#endif

#define LAWFIT_CAT2(a, b) a##b
#define LAWFIT_CAT(a, b) LAWFIT_CAT2(a, b)

namespace lawfit::simd {

int LAWFIT_CAT(width_, LAWFIT_ISA)() { return LAWFIT_SIMD_WIDTH; }

size_t LAWFIT_CAT(buffer_bytes_, LAWFIT_ISA)(const char* model, int cap) {
#define LAWFIT_BYTES(M) \
  if (std::strcmp(model, M::kName) == 0) return model_bytes<M, LAWFIT_SIMD_WIDTH>(cap);
  LAWFIT_SIMD_MODELS(LAWFIT_BYTES)
#undef LAWFIT_BYTES
  return 0;
}

bool LAWFIT_CAT(run_, LAWFIT_ISA)(const char* model, const LaneJob& job, void* buffer) {
  ProblemSource src = source(job);
#define LAWFIT_RUN(M)                                  \
  if (std::strcmp(model, M::kName) == 0) {             \
    run_model<M, LAWFIT_SIMD_WIDTH>(job, buffer, src); \
    return true;                                       \
  }
  LAWFIT_SIMD_MODELS(LAWFIT_RUN)
#undef LAWFIT_RUN
  return false;
}

void LAWFIT_CAT(vmath_, LAWFIT_ISA)(int fn, const double* x, double* out, long long n) {
  using P = Pack<LAWFIT_SIMD_WIDTH>;
  for (long long i0 = 0; i0 < n; i0 += LAWFIT_SIMD_WIDTH) {
    P v(1.0);
    for (int k = 0; k < LAWFIT_SIMD_WIDTH && i0 + k < n; ++k) v.set(k, x[i0 + k]);
    const P r = fn == 0 ? exp(v) : (fn == 1 ? log(v) : log1p(v));
    for (int k = 0; k < LAWFIT_SIMD_WIDTH && i0 + k < n; ++k) out[i0 + k] = r[k];
  }
}

size_t LAWFIT_CAT(guess_bytes_, LAWFIT_ISA)(const GuessJob& job) {
  return sizeof(Pack<LAWFIT_SIMD_WIDTH>) *
         (3 * static_cast<size_t>(job.cap) + static_cast<size_t>(job.n_coarse + job.n_factors));
}

// W problems at a time: their points interleaved into packs (NaN past a lane's own, and in a
// lane without a problem: points that take no part), the guess run on the packs.
void LAWFIT_CAT(guess_, LAWFIT_ISA)(const GuessJob& job, void* buffer) {
  constexpr int W = LAWFIT_SIMD_WIDTH;
  using P = Pack<W>;
  P* lx = static_cast<P*>(buffer);
  P* y = lx + job.cap;
  P* inv = y + job.cap;
  P* coarse = inv + job.cap;
  P* factors = coarse + job.n_coarse;
  for (int k = 0; k < job.n_coarse; ++k) coarse[k] = P(job.coarse[k]);
  for (int k = 0; k < job.n_factors; ++k) factors[k] = P(job.factors[k]);
  ProblemSource src = source(job);
  const long long group_work =
      static_cast<long long>(job.cap) * W * (job.n_coarse + job.n_factors);
  while (true) {
    if (src.stop(group_work)) return;
    long long prob[W];
    int n[W], n_max = 0, taken = 0;
    for (int k = 0; k < W; ++k) {
      prob[k] = src.next();
      n[k] = prob[k] < 0 ? 0 : static_cast<int>(job.offsets[prob[k] + 1] - job.offsets[prob[k]]);
      n_max = n[k] > n_max ? n[k] : n_max;
      taken += prob[k] < 0 ? 0 : 1;
    }
    if (taken == 0) return;
    for (int k = 0; k < W; ++k) {
      const long long begin = prob[k] < 0 ? 0 : job.offsets[prob[k]];
      for (int i = 0; i < n_max; ++i) {
        lx[i].set(k, i < n[k] ? job.lx[begin + i] : __builtin_nan(""));
        y[i].set(k, i < n[k] ? job.y[begin + i] : __builtin_nan(""));
      }
    }
    P p[3];
    guess_saturating_power_law(lx, y, n_max, coarse, job.n_coarse, factors, job.n_factors, p,
                               inv);
    for (int k = 0; k < W; ++k)
      if (prob[k] >= 0)
        for (int j = 0; j < 3; ++j) job.out[3 * prob[k] + j] = p[j][k];
  }
}

void LAWFIT_CAT(grid_sum_, LAWFIT_ISA)(const GridSumJob& job) {
  grid_sum<Pack<LAWFIT_SIMD_WIDTH>>(job);
}

bool LAWFIT_CAT(all_finite_, LAWFIT_ISA)(const double* v, long long n) {
  return all_finite(v, n);
}

}  // namespace lawfit::simd
