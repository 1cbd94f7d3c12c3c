// simd_run.h: one thread's share of a LaneJob for one model, in the SIMD lanes of width W
// (lawfit/lanes.h): what each instruction set's build of simd_driver.cpp runs for its
// models, and what a law's native build (lawfit.law(..., native=True): its generated struct
// compiled by the host compiler) runs for that law alone.
#pragma once

#include "lawfit/lanes.h"
#include "lawfit/models/common.h"
#include "simd_dispatch.h"

namespace lawfit::simd {
namespace {
// The problems of a job, with its thread's stop check.
template <class Job>
ProblemSource source(const Job& job) {
  ProblemSource src{job.order, job.n, job.counter, job.chunk};
  if (job.stop.flag) src.stop = StopCheck{job.stop.flag, job.stop.poll, job.stop.poll_ctx};
  return src;
}

// The groups of lanes a thread runs side by side (Lanes::run_groups).  Two groups phase by
// phase measured 1.1x two groups a whole round each in turn (the 3-parameter law from
// generic starts, AMD EPYC Zen 4); three or four groups no faster than two.
constexpr int kGroups = 2;

// kGroups groups of lanes side by side, each in its share of the buffer.
template <class L>
void run_groups(const LaneJob& job, void* buffer, ProblemSource& src) {
  alignas(L) unsigned char storage[kGroups][sizeof(L)];
  L* groups[kGroups];
  for (int k = 0; k < kGroups; ++k)
    groups[k] = new (storage[k]) L(*job.batch, *job.options,
                                   static_cast<char*>(buffer) + k * L::buffer_bytes(job.cap),
                                   job.cap);
  L::run_groups(groups, src);
  for (int k = 0; k < kGroups; ++k) groups[k]->~L();
}

// Bytes of buffer a thread needs for model M's lanes (kGroups groups of them).
template <class M, int W>
size_t model_bytes(int cap) {
  return kGroups * Lanes<M, W>::buffer_bytes(cap);
}

// Model M's share of a job: the objective, or a solve (a law's tape always in the bounded
// lanes, which give the same bits for infinite bounds: one instantiation fewer per law size).
template <class M, int W>
void run_model(const LaneJob& job, void* buffer, ProblemSource& src) {
  if (job.objective) {
    Lanes<M, W> a(*job.batch, *job.options, buffer, job.cap);
    a.run_objective(src);
  } else if constexpr (UsesContext<M>::value) {
    run_groups<Lanes<M, W, true>>(job, buffer, src);
  } else if (job.bounded) {
    run_groups<Lanes<M, W, true>>(job, buffer, src);
  } else {
    run_groups<Lanes<M, W, false>>(job, buffer, src);
  }
}
}  // namespace
}  // namespace lawfit::simd
