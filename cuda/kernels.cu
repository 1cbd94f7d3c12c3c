// kernels.cu: the CUDA backend's kernels.  Each kernel is a thin wrapper: it computes its
// problem index and calls lawfit::solve_in_batch (or objective_in_batch, for ranking a grid's
// starts), the same host-device functions the CPU driver calls, so the math the GPU runs is
// the math the CPU tests check: the solve, the objective, and the bootstrap's Philox
// resampling (rng.h, drawn inside the kernel into a per-thread slice of `Work::scratch`).
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <limits>
#include <vector>

#include "kernels.h"
#include "lawfit/batch.h"
#include "lawfit/models/all.h"

namespace lawfit::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kBlock = 128;

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " +
                             cudaGetErrorString(err));
}

// One kernel per (model, loss, residual space): each carries the registers of its own
// objective only, and the switch over losses happens once, on the host.
// Blocks per multiprocessor the register allocator must allow: small models then fit in 128
// registers (4 blocks of 128 threads); larger ones would spill, so they get room.
template <class Model>
constexpr int min_blocks() {
#if defined(LAWFIT_NO_LAUNCH_BOUNDS)
  return 1;
#else
  return Model::kParams <= 3 ? 4 : 2;
#endif
}

// What a launch needs beside the batch: the persistent grid's problem counter, room for the
// resamples of a bootstrap (`stride` values per thread of the grid; null without one), and
// the order in which the threads take the units (null: 0, 1, ...).
template <class T>
struct Work {
  unsigned long long* next;
  T* scratch;
  long long stride;
  const long long* order = nullptr;
};

template <class T>
__device__ long long unit_at(const Work<T>& w, long long k) {
  return w.order ? w.order[k] : k;
}

template <class T>
__device__ T* thread_scratch(const Work<T>& w) {
  if (!w.scratch) return nullptr;
  const long long slot = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  return w.scratch + slot * w.stride;
}

// A persistent grid: each thread takes the next unsolved problem from a counter whenever it
// finishes one, so a warp's time follows the mean solve rather than its slowest lane.  The
// threads that ask together take consecutive problems with one atomic (coalesced group).
// Which thread solves a problem does not change its result.
template <class Model, class Objective, class T>
__global__ void __launch_bounds__(kBlock, min_blocks<Model>()) solve_kernel(
    Batch<T> b, Options o, Work<T> w) {
  T* buffer = thread_scratch<T>(w);
#if defined(LAWFIT_CUDA_STATIC_GRID)
  const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < b.n_units) solve_in_batch<Model, Objective>(b, o, unit_at(w, i), buffer);
#else
  for (;;) {
    cg::coalesced_group g = cg::coalesced_threads();
    unsigned long long base = 0;
    if (g.thread_rank() == 0)
      base = atomicAdd(w.next, static_cast<unsigned long long>(g.size()));
    base = g.shfl(base, 0);
    const long long i = static_cast<long long>(base + g.thread_rank());
    if (i >= b.n_units) return;
    solve_in_batch<Model, Objective>(b, o, unit_at(w, i), buffer);
  }
#endif
}

// The cost at every unit's parameters (b.p0): a grid-stride loop, one evaluation per unit.
template <class Model, class Objective, class T>
__global__ void __launch_bounds__(kBlock) objective_kernel(Batch<T> b, Options o, Work<T> w) {
  T* buffer = thread_scratch<T>(w);
  const long long step = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < b.n_units; i += step)
    objective_in_batch<Model, Objective>(b, o, unit_at(w, i), buffer);
}

// Blocks to launch: one per kBlock problems, at most as many as are resident at once (so
// that no launch has more threads than max_threads() below).
template <class Kernel>
unsigned grid_size(Kernel kernel, long long n_problems) {
  const long long wanted = (n_problems + kBlock - 1) / kBlock;
#if defined(LAWFIT_CUDA_STATIC_GRID)
  return static_cast<unsigned>(wanted);
#else
  int device = 0, sms = 0, per_sm = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "attribute");
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kBlock, 0), "occupancy");
  const long long resident = static_cast<long long>(sms) * (per_sm > 0 ? per_sm : 1);
  return static_cast<unsigned>(wanted < resident ? wanted : resident);
#endif
}

// The most threads a launch of grid_size() blocks can have.
long long max_threads(long long n_problems) {
  const long long wanted = (n_problems + kBlock - 1) / kBlock * kBlock;
#if defined(LAWFIT_CUDA_STATIC_GRID)
  return wanted;
#else
  int device = 0, sms = 0, per_sm = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "attribute");
  check(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, device),
        "attribute");
  const long long resident = static_cast<long long>(sms) * per_sm;
  return wanted < resident ? wanted : resident;
#endif
}

enum class Kind { kSolve, kObjective };

template <class Model, class Objective, class T>
void launch_kernel(Kind kind, const Batch<T>& d, const Options& o, cudaStream_t stream,
                   const Work<T>& w) {
  if (kind == Kind::kObjective) {
    auto kernel = objective_kernel<Model, Objective, T>;
    kernel<<<grid_size(kernel, d.n_units), kBlock, 0, stream>>>(d, o, w);
    return;
  }
  auto kernel = solve_kernel<Model, Objective, T>;
  check(cudaMemsetAsync(w.next, 0, sizeof(*w.next), stream), "cudaMemsetAsync");
  kernel<<<grid_size(kernel, d.n_units), kBlock, 0, stream>>>(d, o, w);
}

template <class Model, Loss kLoss, class T>
void launch_loss(Kind kind, const Batch<T>& d, const Options& o, cudaStream_t stream,
                 const Work<T>& w) {
  if (o.log_residuals) {
    launch_kernel<Model, FixedObjective<kLoss, true>>(kind, d, o, stream, w);
  } else {
    launch_kernel<Model, FixedObjective<kLoss, false>>(kind, d, o, stream, w);
  }
}

template <class Model, class T>
void launch(Kind kind, const Batch<T>& d, const Options& o, cudaStream_t stream,
            const Work<T>& w) {
  if (d.n_units == 0) return;
  switch (o.loss) {
    case Loss::kSoftL1: launch_loss<Model, Loss::kSoftL1>(kind, d, o, stream, w); break;
    case Loss::kHuber: launch_loss<Model, Loss::kHuber>(kind, d, o, stream, w); break;
    case Loss::kCauchy: launch_loss<Model, Loss::kCauchy>(kind, d, o, stream, w); break;
    case Loss::kArctan: launch_loss<Model, Loss::kArctan>(kind, d, o, stream, w); break;
    case Loss::kLinear:
    default: launch_loss<Model, Loss::kLinear>(kind, d, o, stream, w); break;
  }
  check(cudaGetLastError(), "kernel launch");
}

template <class T>
void launch_by_name(Kind kind, const std::string& model, const Batch<T>& d, const Options& o,
                    cudaStream_t stream, const Work<T>& w) {
#define LAWFIT_LAUNCH(M)                  \
  if (model == M::kName) {                \
    launch<M>(kind, d, o, stream, w);     \
    return;                               \
  }
  LAWFIT_FOR_EACH_MODEL(LAWFIT_LAUNCH)
#undef LAWFIT_LAUNCH
  throw std::invalid_argument("model: unknown model '" + model + "'");
}

// A device allocation that frees itself.
template <class T>
struct DeviceArray {
  T* ptr = nullptr;
  DeviceArray(long long n, const T* host) {
    if (n <= 0) n = 1;
    check(cudaMalloc(&ptr, sizeof(T) * n), "cudaMalloc");
    if (host) check(cudaMemcpy(ptr, host, sizeof(T) * n, cudaMemcpyHostToDevice), "copy in");
  }
  ~DeviceArray() { cudaFree(ptr); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  void to_host(T* host, long long n) const {
    if (n > 0) check(cudaMemcpy(host, ptr, sizeof(T) * n, cudaMemcpyDeviceToHost), "copy out");
  }
};

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

std::string device_name() {
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
         std::to_string(prop.minor) + ", " + std::to_string(prop.multiProcessorCount) + " SMs)";
}

namespace {

// Rows of p0, lower and upper: one per unit, or one per problem.
template <class T>
long long box_rows(const Batch<T>& h) {
  return h.box_per_problem ? h.n_problems : h.n_units;
}

// Points of the largest problem a unit fits (0 for none).
template <class T>
long long largest_problem(const Batch<T>& h) {
  const long long n_problems = h.data_of ? h.n_problems : h.n_units;
  long long cap = 0;
  for (long long k = 0; k < n_problems; ++k) {
    const long long n = h.offsets[k + 1] - h.offsets[k];
    cap = n > cap ? n : cap;
  }
  return cap;
}

// The units in order of size, where sizes differ (empty where they do not): the threads of a
// warp then take units of about the same size (batch.h, order_by_size).
template <class T>
std::vector<long long> size_order(const Batch<T>& h) {
  std::vector<long long> order, larger;
  order_by_size(h, std::numeric_limits<long long>::max(), order, larger);
  return order;
}

template <class T>
struct DeviceBatch {
  long long P, N, NN;
  DeviceArray<T> x, t, sigma, w;
  DeviceArray<long long> offsets, data_of;
  DeviceArray<T> p0, lower, upper, p, cost, opt, jtj;
  DeviceArray<signed char> active;
  DeviceArray<int> status, nfev, njev, nit;
  DeviceArray<unsigned long long> next;  // the persistent grid's problem counter
  DeviceArray<unsigned int> resample_of;
  DeviceArray<int> group_of, n_groups;
  DeviceArray<T> fit_t, fit_r;
  long long stride;
  DeviceArray<T> scratch;
  std::vector<long long> host_order;
  DeviceArray<long long> order;
  Batch<T> d;

  DeviceBatch(const Batch<T>& h, long long n_points, int n_inputs, int n_params)
      : P(h.n_units), N(n_params), NN(h.jtj ? P * N * N : 0),
        x(n_points * n_inputs, h.x), t(n_points, h.t),
        sigma(h.sigma ? n_points : 0, h.sigma), w(h.w ? n_points : 0, h.w),
        offsets((h.data_of ? h.n_problems : P) + 1, h.offsets),
        data_of(h.data_of ? P : 0, h.data_of), p0(box_rows(h) * N, h.p0),
        lower(box_rows(h) * N, h.lower), upper(box_rows(h) * N, h.upper), p(P * N, nullptr), cost(P, nullptr), opt(P, nullptr),
        jtj(NN, nullptr), active(P * N, nullptr), status(P, nullptr), nfev(P, nullptr),
        njev(P, nullptr), nit(P, nullptr), next(1, nullptr),
        resample_of(h.resample_of ? P : 0, h.resample_of),
        group_of(h.group_of ? n_points : 0, h.group_of),
        n_groups(h.n_groups ? (h.data_of ? h.n_problems : P) : 0, h.n_groups),
        fit_t(h.fit_t ? n_points : 0, h.fit_t), fit_r(h.fit_r ? n_points : 0, h.fit_r),
        stride(h.resample_of ? 2 * largest_problem(h) : 0),
        scratch(h.resample_of ? stride * max_threads(P) : 0, nullptr),
        host_order(size_order(h)),
        order(static_cast<long long>(host_order.size()),
              host_order.empty() ? nullptr : host_order.data()) {
    d = h;
    d.x = x.ptr;
    d.t = t.ptr;
    d.sigma = h.sigma ? sigma.ptr : nullptr;
    d.w = h.w ? w.ptr : nullptr;
    d.offsets = offsets.ptr;
    d.data_of = h.data_of ? data_of.ptr : nullptr;
    d.resample_of = h.resample_of ? resample_of.ptr : nullptr;
    d.group_of = h.group_of ? group_of.ptr : nullptr;
    d.n_groups = h.n_groups ? n_groups.ptr : nullptr;
    d.fit_t = h.fit_t ? fit_t.ptr : nullptr;
    d.fit_r = h.fit_r ? fit_r.ptr : nullptr;
    d.p0 = p0.ptr;
    d.lower = lower.ptr;
    d.upper = upper.ptr;
    d.p = p.ptr;
    d.cost = cost.ptr;
    d.optimality = opt.ptr;
    d.jtj = h.jtj ? jtj.ptr : nullptr;
    d.active = active.ptr;
    d.status = status.ptr;
    d.nfev = nfev.ptr;
    d.njev = njev.ptr;
    d.nit = nit.ptr;
  }

  Work<T> work() const {
    return {next.ptr, d.resample_of ? scratch.ptr : nullptr, stride,
            host_order.empty() ? nullptr : order.ptr};
  }

  void to_host(const Batch<T>& h, Kind kind) const {
    cost.to_host(h.cost, P);
    if (kind == Kind::kObjective) return;
    p.to_host(h.p, P * N);
    opt.to_host(h.optimality, P);
    if (h.jtj) jtj.to_host(h.jtj, NN);
    active.to_host(h.active, P * N);
    status.to_host(h.status, P);
    nfev.to_host(h.nfev, P);
    njev.to_host(h.njev, P);
    nit.to_host(h.nit, P);
  }
};

}  // namespace

namespace {

// One copy in, one launch of `kind`'s kernel, one copy out.
template <class T>
void run_host_batch(Kind kind, const std::string& model, const Batch<T>& h, long long n_points,
                    int n_inputs, int n_params, const Options& o) {
  DeviceBatch<T> db(h, n_points, n_inputs, n_params);
  launch_by_name(kind, model, db.d, o, nullptr, db.work());
  check(cudaDeviceSynchronize(), kind == Kind::kSolve ? "solve_kernel" : "objective_kernel");
  db.to_host(h, kind);
}

}  // namespace

template <class T>
void solve_host_batch(const std::string& model, const Batch<T>& h, long long n_points,
                      int n_inputs, int n_params, const Options& o) {
  run_host_batch(Kind::kSolve, model, h, n_points, n_inputs, n_params, o);
}

template <class T>
void objective_host_batch(const std::string& model, const Batch<T>& h, long long n_points,
                          int n_inputs, int n_params, const Options& o) {
  run_host_batch(Kind::kObjective, model, h, n_points, n_inputs, n_params, o);
}

std::vector<double> time_host_batch(const std::string& model, const Batch<double>& h,
                                    long long n_points, int n_inputs, int n_params,
                                    const Options& o, int repeats) {
  DeviceBatch<double> db(h, n_points, n_inputs, n_params);
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    check(cudaEventRecord(start), "cudaEventRecord");
    launch_by_name(Kind::kSolve, model, db.d, o, nullptr, db.work());
    check(cudaEventRecord(stop), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "solve_kernel");
    float t = 0;
    check(cudaEventElapsedTime(&t, start, stop), "cudaEventElapsedTime");
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  db.to_host(h, Kind::kSolve);
  return ms;
}

template <class T>
void solve_device_batch(const std::string& model, const Batch<T>& d, const Options& o) {
  DeviceArray<unsigned long long> next(1, nullptr);
  // The arrays may have been written on another stream (CuPy's): let that work finish.
  check(cudaDeviceSynchronize(), "before solve_kernel");
  launch_by_name(Kind::kSolve, model, d, o, nullptr, Work<T>{next.ptr, nullptr, 0});
  check(cudaDeviceSynchronize(), "solve_kernel");
}

// fp64 (the default) and fp32 (on request).
#define LAWFIT_INSTANTIATE(T)                                                               \
  template void solve_host_batch<T>(const std::string&, const Batch<T>&, long long, int, int, \
                                    const Options&);                                         \
  template void objective_host_batch<T>(const std::string&, const Batch<T>&, long long, int,  \
                                        int, const Options&);                                 \
  template void solve_device_batch<T>(const std::string&, const Batch<T>&, const Options&);
LAWFIT_INSTANTIATE(double)
LAWFIT_INSTANTIATE(float)
#undef LAWFIT_INSTANTIATE

}  // namespace lawfit::cuda
