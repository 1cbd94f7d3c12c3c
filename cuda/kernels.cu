// kernels.cu: the CUDA backend's kernels for the built-in models, and the host code that
// launches them and those of a user's law (compiled at run time by NVRTC, lawfit/_nvrtc.py,
// and loaded here).  Each kernel is a thin wrapper around the bodies in lawfit/kernels.cuh,
// which call the same host-device functions the CPU driver calls.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <limits>
#include <vector>

#include "kernels.h"
#include "lawfit/batch.h"
#include "lawfit/kernels.cuh"
#include "lawfit/models/all.h"
#include "lawfit/stream.h"

namespace lawfit::cuda {
namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " +
                             cudaGetErrorString(err));
}

// One kernel per (model, loss, residual space): each carries the registers of its own
// objective only, and the switch over losses happens once, on the host.
template <class Model, class Objective, class T>
__global__ void __launch_bounds__(kBlock, min_blocks<Model>()) solve_kernel(
    Batch<T> b, Options o, Work<T> w) {
  solve_units<Model, Objective>(b, o, w);
}

template <class Model, class Objective, class T>
__global__ void __launch_bounds__(kBlock) objective_kernel(Batch<T> b, Options o, Work<T> w) {
  objective_units<Model, Objective>(b, o, w);
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

// A law's two kernels, loaded from its cubin.
struct LawKernels {
  cudaKernel_t solve, objective;
};

// Loads a law's cubin once per process (a cache: libraries are never unloaded, as the
// built-ins' kernels are not) and finds its kernels.
const LawKernels& load_law(const std::string& image) {
  static std::mutex mutex;
  static std::map<std::string, LawKernels> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = loaded.find(image);
  if (it != loaded.end()) return it->second;
  cudaLibrary_t library;
  check(cudaLibraryLoadData(&library, image.data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
        "cudaLibraryLoadData (a law's kernels)");
  LawKernels k;
  check(cudaLibraryGetKernel(&k.solve, library, "lawfit_law_solve"), "cudaLibraryGetKernel");
  check(cudaLibraryGetKernel(&k.objective, library, "lawfit_law_objective"),
        "cudaLibraryGetKernel");
  return loaded.emplace(image, k).first->second;
}

// A law's kernel of `kind`, launched as launch_kernel() launches a built-in's: the same
// arguments (by value), block and grid.
template <class T>
void launch_law(Kind kind, const LawKernels& law, const Batch<T>& d, const Options& o,
                cudaStream_t stream, const Work<T>& w) {
  if (d.n_units == 0) return;
  const void* kernel = reinterpret_cast<const void*>(kind == Kind::kSolve ? law.solve
                                                                           : law.objective);
  if (kind == Kind::kSolve)
    check(cudaMemsetAsync(w.next, 0, sizeof(*w.next), stream), "cudaMemsetAsync");
  Batch<T> b = d;
  Options options = o;
  Work<T> work = w;
  void* args[] = {&b, &options, &work};
  check(cudaLaunchKernel(kernel, dim3(grid_size(kernel, d.n_units)), dim3(kBlock), args, 0,
                         stream),
        "kernel launch (a law's)");
}

template <class T>
void launch_kernels(Kind kind, const Kernels& k, const Batch<T>& d, const Options& o,
                    cudaStream_t stream, const Work<T>& w) {
  if (k.law_image.empty()) {
    launch_by_name(kind, k.model, d, o, stream, w);
  } else {
    launch_law(kind, load_law(k.law_image), d, o, stream, w);
  }
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

int device_arch() {
  int device = 0, major = 0, minor = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "attribute");
  check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "attribute");
  return 10 * major + minor;
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
  DeviceArray<long long> problem_key;
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
        problem_key(h.problem_key ? (h.data_of ? h.n_problems : P) : 0, h.problem_key),
        group_of(h.group_of ? n_points : 0, h.group_of),
        n_groups(h.n_groups ? (h.data_of ? h.n_problems : P) : 0, h.n_groups),
        fit_t(h.fit_t ? n_points : 0, h.fit_t), fit_r(h.fit_r ? n_points : 0, h.fit_r),
        stride(h.resample_of ? 2 * largest_problem(h) : 0),
        scratch(h.resample_of ? stride * max_threads(P) : 0, nullptr),
        host_order(size_order(h)),
        order(static_cast<long long>(host_order.size()),
              host_order.empty() ? nullptr : host_order.data()) {
    d = h;
    d.model_ctx = nullptr;  // host memory (a law's tape): the device's kernels never read it
    d.x = x.ptr;
    d.t = t.ptr;
    d.sigma = h.sigma ? sigma.ptr : nullptr;
    d.w = h.w ? w.ptr : nullptr;
    d.offsets = offsets.ptr;
    d.data_of = h.data_of ? data_of.ptr : nullptr;
    d.resample_of = h.resample_of ? resample_of.ptr : nullptr;
    d.problem_key = h.problem_key ? problem_key.ptr : nullptr;
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
void run_host_batch(Kind kind, const Kernels& kernels, const Batch<T>& h, long long n_points,
                    int n_inputs, int n_params, const Options& o) {
  DeviceBatch<T> db(h, n_points, n_inputs, n_params);
  launch_kernels(kind, kernels, db.d, o, nullptr, db.work());
  check(cudaDeviceSynchronize(), kind == Kind::kSolve ? "solve_kernel" : "objective_kernel");
  db.to_host(h, kind);
}

// ---- The streamed solve (lawfit/stream.h's pipeline) ----

// Chunks of at most kStreamUnits units (a launch of that many threads fills an H100 or H200
// alone: 132 multiprocessors of 2,048 threads) and kStreamPoints points, through
// kStreamSlots slots: while the device solves one chunk, the host packs the next and unpacks
// the one before, and one slot's copies overlap another's kernel.
constexpr long long kStreamUnits = 1LL << 18;
constexpr long long kStreamPoints = 1LL << 23;
constexpr int kStreamSlots = 3;

// Whether a batch is solved streamed: one that streams (stream.h), larger than a chunk, whose
// problems have at most kStreamPoints / kStreamUnits points on average (so that a chunk's
// launch has about kStreamUnits threads; larger problems make fewer, longer chunks than
// fill the device, and go in one copy), unless $LAWFIT_CUDA_STREAM is "0" (the one-shot
// copy, for comparison).
template <class T>
bool streamed(const Batch<T>& h) {
  if (!stream::streamable(h) || h.n_units <= kStreamUnits ||
      h.offsets[h.n_units] - h.offsets[0] > h.n_units * (kStreamPoints / kStreamUnits))
    return false;
  const char* env = std::getenv("LAWFIT_CUDA_STREAM");
  return !(env && std::strcmp(env, "0") == 0);
}

// Pinned (page-locked) host memory, grown on demand: the staging blocks, which the
// asynchronous copies need.  Page-locking a few hundred MB takes tens of milliseconds, so
// the blocks are kept for the process (PinnedPool) rather than made per call.
struct PinnedBlock {
  char* ptr = nullptr;
  size_t bytes = 0;
  void reserve(size_t n) {
    if (n <= bytes) return;
    if (ptr) cudaFreeHost(ptr);
    ptr = nullptr;
    bytes = 0;
    check(cudaHostAlloc(reinterpret_cast<void**>(&ptr), n, cudaHostAllocDefault),
          "cudaHostAlloc (the streamed solve's staging)");
    bytes = n;
  }
};

// The process's staging blocks, an input and an output block per slot; one streamed call
// uses them at a time (the mutex).  Never freed: the driver may be gone when static objects
// are destroyed at exit, and the process's end releases them.
struct PinnedPool {
  std::mutex mutex;
  PinnedBlock in[kStreamSlots], out[kStreamSlots];
};

PinnedPool& pinned_pool() {
  static PinnedPool* pool = new PinnedPool;
  return *pool;
}

// The device's side of stream::run: a slot's stream, its device blocks (made once per call,
// for the largest chunk, and reused by every chunk of the slot) and its launch's counter.
template <class T>
struct CudaStream {
  const Kernels& kernels;
  const Batch<T>& h;
  const Options& o;
  int n_inputs, n_params;
  std::vector<stream::Chunk> chunks;
  PinnedPool& pool;
  void (*interrupt)();
  struct Slot {
    cudaStream_t stream = nullptr;
    char* d_in = nullptr;
    char* d_out = nullptr;
    unsigned long long* next = nullptr;
    stream::Layout layout;
  } slot[kStreamSlots];

  CudaStream(const Kernels& k, const Batch<T>& host, const Options& opts, int inputs,
             int params, std::vector<stream::Chunk> plan, PinnedPool& p, void (*poll)())
      : kernels(k), h(host), o(opts), n_inputs(inputs), n_params(params),
        chunks(std::move(plan)), pool(p), interrupt(poll) {
    const stream::Layout most = stream::capacity(h, chunks, n_inputs, n_params);
    try {  // (a failure frees what was made: the destructor does not run for it)
      for (int s = 0; s < kStreamSlots; ++s) {
        pool.in[s].reserve(most.in_bytes);
        pool.out[s].reserve(most.out_bytes);
      }
      for (Slot& s : slot) {
        check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreate");
        check(cudaMalloc(reinterpret_cast<void**>(&s.d_in), most.in_bytes), "cudaMalloc");
        check(cudaMalloc(reinterpret_cast<void**>(&s.d_out), most.out_bytes), "cudaMalloc");
        check(cudaMalloc(reinterpret_cast<void**>(&s.next), sizeof(*s.next)), "cudaMalloc");
      }
    } catch (...) {
      release();
      throw;
    }
  }

  ~CudaStream() { release(); }

  // What is in flight finishes before its memory is freed (also after an error).
  void release() {
    for (Slot& s : slot) {
      if (s.stream) cudaStreamSynchronize(s.stream);
      cudaFree(s.d_in);
      cudaFree(s.d_out);
      cudaFree(s.next);
      if (s.stream) cudaStreamDestroy(s.stream);
      s = Slot{};
    }
  }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;

  void pack(long long c, int s) {
    if (interrupt) interrupt();  // Ctrl-C: stops between chunks (after what is in flight)
    slot[s].layout = stream::pack(h, chunks[c], n_inputs, n_params, pool.in[s].ptr);
  }

  void submit(long long c, int s) {
    Slot& sl = slot[s];
    const stream::Layout& l = sl.layout;
    check(cudaMemcpyAsync(sl.d_in, pool.in[s].ptr, l.in_bytes, cudaMemcpyHostToDevice,
                          sl.stream),
          "copy in (streamed)");
    Batch<T> d = stream::view(h, l, chunks[c].units(), sl.d_in, sl.d_out);
    d.model_ctx = nullptr;  // host memory (a law's tape): the device's kernels never read it
    const long long* order = l.order == stream::Layout::kAbsent
                                 ? nullptr
                                 : reinterpret_cast<const long long*>(sl.d_in + l.order);
    launch_kernels(Kind::kSolve, kernels, d, o, sl.stream, Work<T>{sl.next, nullptr, 0, order});
    check(cudaMemcpyAsync(pool.out[s].ptr, sl.d_out, l.out_bytes, cudaMemcpyDeviceToHost,
                          sl.stream),
          "copy out (streamed)");
  }

  void finish(int s) { check(cudaStreamSynchronize(slot[s].stream), "solve_kernel (streamed)"); }

  void unpack(long long c, int s) {
    stream::unpack(h, chunks[c], n_params, slot[s].layout, pool.out[s].ptr);
  }
};

template <class T>
void stream_host_batch(const Kernels& kernels, const Batch<T>& h, int n_inputs, int n_params,
                       const Options& o, void (*interrupt)()) {
  PinnedPool& pool = pinned_pool();
  std::lock_guard<std::mutex> lock(pool.mutex);
  CudaStream<T> ops(kernels, h, o, n_inputs, n_params,
                    stream::plan(h, kStreamUnits, kStreamPoints), pool, interrupt);
  stream::run(static_cast<long long>(ops.chunks.size()), kStreamSlots, ops);
}

}  // namespace

template <class T>
void solve_host_batch(const Kernels& kernels, const Batch<T>& h, long long n_points,
                      int n_inputs, int n_params, const Options& o, void (*interrupt)()) {
  if (streamed(h)) {
    stream_host_batch(kernels, h, n_inputs, n_params, o, interrupt);
  } else {
    run_host_batch(Kind::kSolve, kernels, h, n_points, n_inputs, n_params, o);
  }
}

std::vector<double> pinned_bandwidth(long long bytes, int repeats) {
  if (bytes < 1 || repeats < 1) throw std::invalid_argument("bytes, repeats: must be >= 1");
  char* host = nullptr;
  check(cudaHostAlloc(reinterpret_cast<void**>(&host), bytes, cudaHostAllocDefault),
        "cudaHostAlloc");
  DeviceArray<char> device(bytes, nullptr);
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::memset(host, 1, bytes);
  double best[2] = {0, 0};
  for (int r = 0; r < repeats; ++r)
    for (int way = 0; way < 2; ++way) {
      check(cudaEventRecord(start), "cudaEventRecord");
      if (way == 0) {
        check(cudaMemcpyAsync(device.ptr, host, bytes, cudaMemcpyHostToDevice), "copy in");
      } else {
        check(cudaMemcpyAsync(host, device.ptr, bytes, cudaMemcpyDeviceToHost), "copy out");
      }
      check(cudaEventRecord(stop), "cudaEventRecord");
      check(cudaEventSynchronize(stop), "copy");
      float ms = 0;
      check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
      best[way] = std::max(best[way], bytes / (ms * 1e-3) / 1e9);
    }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFreeHost(host);
  return {best[0], best[1]};
}

template <class T>
void objective_host_batch(const Kernels& kernels, const Batch<T>& h, long long n_points,
                          int n_inputs, int n_params, const Options& o) {
  run_host_batch(Kind::kObjective, kernels, h, n_points, n_inputs, n_params, o);
}

std::vector<double> time_host_batch(const Kernels& kernels, const Batch<double>& h,
                                    long long n_points, int n_inputs, int n_params,
                                    const Options& o, int repeats) {
  DeviceBatch<double> db(h, n_points, n_inputs, n_params);
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    check(cudaEventRecord(start), "cudaEventRecord");
    launch_kernels(Kind::kSolve, kernels, db.d, o, nullptr, db.work());
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
void solve_device_batch(const Kernels& kernels, const Batch<T>& d, const Options& o) {
  DeviceArray<unsigned long long> next(1, nullptr);
  // The arrays may have been written on another stream (CuPy's): let that work finish.
  check(cudaDeviceSynchronize(), "before solve_kernel");
  launch_kernels(Kind::kSolve, kernels, d, o, nullptr, Work<T>{next.ptr, nullptr, 0, nullptr});
  check(cudaDeviceSynchronize(), "solve_kernel");
}

// fp64 (the default) and fp32 (on request).
#define LAWFIT_INSTANTIATE(T)                                                               \
  template void solve_host_batch<T>(const Kernels&, const Batch<T>&, long long, int, int, \
                                    const Options&, void (*)());                             \
  template void objective_host_batch<T>(const Kernels&, const Batch<T>&, long long, int,  \
                                        int, const Options&);                                 \
  template void solve_device_batch<T>(const Kernels&, const Batch<T>&, const Options&);
LAWFIT_INSTANTIATE(double)
LAWFIT_INSTANTIATE(float)
#undef LAWFIT_INSTANTIATE

}  // namespace lawfit::cuda
