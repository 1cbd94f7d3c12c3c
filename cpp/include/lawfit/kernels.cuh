// kernels.cuh: the bodies of the CUDA backend's kernels, shared by the kernels nvcc builds
// for the built-in models (cuda/kernels.cu) and those NVRTC builds at run time for a user's
// law (lawfit/_nvrtc.py: the law's generated struct, then extern "C" kernels calling these).
// Each body computes its unit's index and calls lawfit::solve_in_batch (or
// objective_in_batch, for ranking a grid's starts), the same host-device functions the CPU
// driver calls, so the math the GPU runs is the math the CPU tests check: the solve, the
// objective, and the bootstrap's Philox resampling (rng.h, drawn inside the kernel into a
// per-thread slice of `Work::scratch`).
//
// Device code only, and free of the C++ library and of CUDA's own headers, which NVRTC does
// not have.
#pragma once

#include "batch.h"

namespace lawfit {
namespace cuda {

// Threads per block of every launch.
constexpr int kBlock = 128;

// Blocks per multiprocessor the register allocator must allow (__launch_bounds__): small
// models then fit in 128 registers (4 blocks of 128 threads); larger ones would spill, so
// they get room.
template <class Model>
__host__ __device__ constexpr int min_blocks() {
#if defined(LAWFIT_NO_LAUNCH_BOUNDS)
  return 1;
#else
  return Model::kParams <= 3 ? 4 : 2;
#endif
}

// What a launch needs beside the batch: the persistent grid's problem counter, room for the
// resamples of a bootstrap (`stride` values per thread of the grid; null without one), and
// the order in which the threads take the units (null: 0, 1, ...).  Passed by value to the
// kernels, whichever compiler built them: a plain struct.
template <class T>
struct Work {
  unsigned long long* next;
  T* scratch;
  long long stride;
  const long long* order;
};

template <class T>
__device__ __forceinline__ long long unit_at(const Work<T>& w, long long k) {
  return w.order ? w.order[k] : k;
}

template <class T>
__device__ __forceinline__ T* thread_scratch(const Work<T>& w) {
  if (!w.scratch) return nullptr;
  const long long slot = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  return w.scratch + slot * w.stride;
}

// The next unit for the calling thread: the threads of a warp that ask together take
// consecutive units with one atomic (the lowest active lane adds their count, and each
// takes its rank among them), as cooperative groups' coalesced_threads() would.
__device__ __forceinline__ long long claim_unit(unsigned long long* next) {
  const unsigned active = __activemask();
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int leader = __ffs(active) - 1;
  const unsigned rank = __popc(active & ((1u << lane) - 1u));
  unsigned long long base = 0;
  if (lane == leader) base = atomicAdd(next, static_cast<unsigned long long>(__popc(active)));
  base = __shfl_sync(active, base, leader);
  return static_cast<long long>(base + rank);
}

// A persistent grid: each thread takes the next unsolved unit from a counter whenever it
// finishes one, so a warp's time follows the mean solve rather than its slowest lane.
// Which thread solves a unit does not change its result.
template <class Model, class Objective, class T>
__device__ __forceinline__ void solve_units(const Batch<T>& b, const Options& o,
                                            const Work<T>& w) {
  T* buffer = thread_scratch<T>(w);
#if defined(LAWFIT_CUDA_STATIC_GRID)
  const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < b.n_units) solve_in_batch<Model, Objective>(b, o, unit_at(w, i), buffer);
#else
  for (;;) {
    const long long i = claim_unit(w.next);
    if (i >= b.n_units) return;
    solve_in_batch<Model, Objective>(b, o, unit_at(w, i), buffer);
  }
#endif
}

// The cost at every unit's parameters (b.p0): a grid-stride loop, one evaluation per unit.
template <class Model, class Objective, class T>
__device__ __forceinline__ void objective_units(const Batch<T>& b, const Options& o,
                                                const Work<T>& w) {
  T* buffer = thread_scratch<T>(w);
  const long long step = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < b.n_units; i += step)
    objective_in_batch<Model, Objective>(b, o, unit_at(w, i), buffer);
}

}  // namespace cuda
}  // namespace lawfit
