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

// Two groups of lanes (Lanes::run_pair), each in its half of the buffer.
template <class L>
void run_pair(const LaneJob& job, void* buffer, ProblemSource& src) {
  char* half = static_cast<char*>(buffer) + L::buffer_bytes(job.cap);
  L a(*job.batch, *job.options, buffer, job.cap), b(*job.batch, *job.options, half, job.cap);
  L::run_pair(a, b, src);
}

// Bytes of buffer a thread needs for model M's lanes (two groups of them).
template <class M, int W>
size_t model_bytes(int cap) {
  return 2 * Lanes<M, W>::buffer_bytes(cap);
}

// Model M's share of a job: the objective, or a solve (a law's tape always in the bounded
// lanes, which give the same bits for infinite bounds: one instantiation fewer per law size).
template <class M, int W>
void run_model(const LaneJob& job, void* buffer, ProblemSource& src) {
  if (job.objective) {
    Lanes<M, W> a(*job.batch, *job.options, buffer, job.cap);
    a.run_objective(src);
  } else if constexpr (UsesContext<M>::value) {
    run_pair<Lanes<M, W, true>>(job, buffer, src);
  } else if (job.bounded) {
    run_pair<Lanes<M, W, true>>(job, buffer, src);
  } else {
    run_pair<Lanes<M, W, false>>(job, buffer, src);
  }
}
}  // namespace
}  // namespace lawfit::simd
