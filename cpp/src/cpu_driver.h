// cpu_driver.h: runs a batch on a pool of std::threads, through the SIMD lanes (lanes.h, in
// the best build for this CPU; simd_dispatch.h) or the scalar solve.
//
// Problems are handed out in fixed chunks from an atomic counter.  Each problem's result
// depends only on its own inputs, and a SIMD lane computes bitwise what the scalar solve
// computes, so the output is the same for any thread count, order and engine.
//
// A call stops early, on every thread, when one of its threads raises (std::bad_alloc from
// a buffer) or its caller's interrupt check does (Ctrl-C): see Call.  The exception reaches
// the caller once every thread has returned.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

#include "lawfit/batch.h"
#include "lawfit/guess.h"
#include "grid_sum.h"
#include "simd_dispatch.h"
#include "thread_pool.h"

namespace lawfit::cpu {

// The CPUs this thread may run on: its affinity mask, as `taskset`, cgroup cpusets and
// `os.sched_setaffinity` set it (Linux); empty where unknown.
inline std::vector<int> usable_cpus() {
  std::vector<int> cpus;
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
#endif
  return cpus;
}

// The most threads one call may use (the bindings refuse more).
inline constexpr int kMaxThreads = 4096;

// LAWFIT_NUM_THREADS, where it holds a positive integer: the default thread count, a
// process's budget (one of several workers on a host); 0 where it is unset or not one (the
// Python layer refuses such a value with a message before any call).
inline int env_threads() {
  const char* s = std::getenv("LAWFIT_NUM_THREADS");
  if (s == nullptr || *s == '\0') return 0;
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  return (*end == '\0' && v > 0) ? static_cast<int>(std::min<long>(v, kMaxThreads)) : 0;
}

// n_threads (at most kMaxThreads), or where it is 0 LAWFIT_NUM_THREADS, else the CPUs this
// process may use (not all the machine's cores when a container or `taskset` allows fewer).
inline int resolve_threads(int n_threads) {
  if (n_threads > 0) return std::min(n_threads, kMaxThreads);
  if (const int budget = env_threads()) return budget;
  const auto cpus = usable_cpus();
  if (!cpus.empty()) return static_cast<int>(cpus.size());
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

#if defined(__linux__)
// The physical core of Linux CPU `cpu` (package and core id from sysfs), or a key of its own
// where sysfs does not say: SMT siblings share a key.
inline long long core_key(int cpu) {
  auto read_id = [cpu](const char* what) -> long long {
    const std::string path =
        "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/" + what;
    std::FILE* f = std::fopen(path.c_str(), "r");
    long long v = -1;
    if (f) {
      if (std::fscanf(f, "%lld", &v) != 1) v = -1;
      std::fclose(f);
    }
    return v;
  };
  const long long pkg = read_id("physical_package_id"), core = read_id("core_id");
  if (pkg < 0 || core < 0) return -1 - cpu;
  return (pkg << 32) | core;
}
#endif

// The CPU for each helper thread of a `threads`-thread call (helper k >= 1 gets element
// k - 1): one CPU each, none of them the caller's, a core of their own before any SMT
// sibling; empty (no pinning) where there are not that many CPUs or they are unknown.
// Linux tends to start a new thread on its parent's CPU, and in a virtual machine it takes a
// vCPU that has idled for a few milliseconds for a busy one (the host has descheduled it), so
// an unpinned helper can wait out the whole call: on a 2-vCPU VM, 10,000 fits on 2 threads
// ran at the 1-thread rate when the call came 50 ms after the last.  Pinning moves each helper
// at once; the caller's own thread is never pinned, and a helper lives only for the call.
inline std::vector<int> helper_cpus(int threads) {
  std::vector<int> out;
#if defined(__linux__)
  const auto cpus = usable_cpus();
  if (threads < 2 || static_cast<int>(cpus.size()) < threads) return out;
  // Cores by CPU number, read once for the machine's online CPUs (and any of this mask).
  static const std::vector<long long> keys = [&cpus] {
    const int n = std::max<int>(std::thread::hardware_concurrency(), cpus.back() + 1);
    std::vector<long long> k(n);
    for (int c = 0; c < n; ++c) k[c] = core_key(c);
    return k;
  }();
  auto key = [](int c) { return c < static_cast<int>(keys.size()) ? keys[c] : -1LL - c; };
  const int here = sched_getcpu();
  std::vector<long long> taken;  // cores with a thread of this call
  if (here >= 0) taken.push_back(key(here));
  auto is_taken = [&taken](long long k) {
    return std::find(taken.begin(), taken.end(), k) != taken.end();
  };
  for (int pass = 0; pass < 2; ++pass)  // free cores first, then siblings
    for (int c : cpus) {
      if (static_cast<int>(out.size()) == threads - 1) return out;
      if (c == here || std::find(out.begin(), out.end(), c) != out.end()) continue;
      if (pass == 0 && is_taken(key(c))) continue;
      out.push_back(c);
      taken.push_back(key(c));
    }
  if (static_cast<int>(out.size()) < threads - 1) out.clear();
#else
  (void)threads;
#endif
  return out;
}

// Whether a call on n_threads threads (0: the default) pins its helpers to CPUs of their own
// (helper_cpus).  LAWFIT_PIN=0 never, LAWFIT_PIN=1 always (where there are CPUs enough);
// otherwise only a call that may take the process's whole CPU mask.  A process on a smaller
// budget (n_threads or LAWFIT_NUM_THREADS below its mask's size, as each of several workers
// on one host is) shares the mask with others, and each pinning its helpers to the same free
// CPUs would stack them there: its helpers are left to the scheduler.
inline bool pins_helpers(int n_threads) {
  if (const char* s = std::getenv("LAWFIT_PIN")) {
    if (std::strcmp(s, "0") == 0) return false;
    if (std::strcmp(s, "1") == 0) return true;
  }
  const int budget = n_threads > 0 ? n_threads : env_threads();
  if (budget <= 0) return true;
  const auto cpus = usable_cpus();
  return cpus.empty() || budget >= static_cast<int>(cpus.size());
}

// The CPU each helper of a `threads`-thread call on n_threads (0: the default) runs on:
// helper_cpus(threads) where the call pins them, else -1 each (the process's own CPUs).
inline std::vector<int> call_cpus(int threads, int n_threads) {
  std::vector<int> cpus;
  if (threads < 2) return cpus;
  if (pins_helpers(n_threads)) cpus = helper_cpus(threads);
  if (cpus.empty()) cpus.assign(threads - 1, -1);
  return cpus;
}

// What the threads of one call share besides their work: a stop flag, which each thread
// reads through its StopCheck (lawfit/batch.h) between problems and once per solver
// iteration, and the first exception any thread raised.  A thread's exception (fail()) sets
// the flag, so the others stop within an iteration, and the calling thread rethrows it once
// every thread has returned (on_threads).  The calling thread also runs `interrupt` about
// every kPollInterval while the call works, from its StopCheck's poll and while it waits for
// helpers (nullptr: never): what it throws (KeyboardInterrupt, for Ctrl-C) stops the call
// the same way.  A call that does not stop runs the same arithmetic as one without a Call.
class Call {
 public:
  static constexpr std::chrono::milliseconds kPollInterval{50};

  explicit Call(void (*interrupt)() = nullptr)
      : interrupt_(interrupt), next_poll_(std::chrono::steady_clock::now() + kPollInterval) {}
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  // Thread k's stop check: only the calling thread's (k = 0) polls.
  StopCheck stop_check(int k) {
    StopCheck s;
    s.flag = &stop_;
    if (k == 0 && interrupt_) {
      s.poll = &Call::poll;
      s.poll_ctx = this;
    }
    return s;
  }

  // The same, for a SIMD job (simd_dispatch.h).
  simd::StopFields stop_fields(int k) {
    const StopCheck s = stop_check(k);
    return {s.flag, s.poll, s.poll_ctx};
  }

  bool stopped() const { return __atomic_load_n(&stop_, __ATOMIC_RELAXED) != 0; }

  // Whether the calling thread has an interrupt check to run.
  bool polls() const { return interrupt_ != nullptr; }

  // Keeps e if it is the call's first exception, and stops every thread.
  void fail(std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lock(m_);
      if (!error_) error_ = std::move(e);
    }
    __atomic_store_n(&stop_, 1, __ATOMIC_RELAXED);
  }

  // The calling thread's check: runs `interrupt` once kPollInterval has passed since the
  // last time; whether the call is stopping.
  static bool poll(void* self) {
    Call& c = *static_cast<Call*>(self);
    if (c.interrupt_) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= c.next_poll_) {
        c.next_poll_ = now + kPollInterval;
        try {
          c.interrupt_();
        } catch (...) {
          c.fail(std::current_exception());
        }
      }
    }
    return c.stopped();
  }
  static void wait_poll(void* self) { poll(self); }

  // Rethrows the call's first exception, if any (once every thread has returned).
  void rethrow() {
    std::exception_ptr e;
    {
      std::lock_guard<std::mutex> lock(m_);
      e.swap(error_);
    }
    if (e) std::rethrow_exception(e);
  }

 private:
  alignas(64) int stop_ = 0;  // read and written with __atomic builtins, as StopCheck reads it
  void (*const interrupt_)();
  std::chrono::steady_clock::time_point next_poll_;  // the calling thread's only
  std::mutex m_;
  std::exception_ptr error_;
};

// Runs body(thread) on `threads` threads (the calling thread is one of them) and returns once
// every one has returned, rethrowing the first exception any raised (the call's stop flag
// ended the others' work).  Every body takes its work from a shared counter, so where the
// system refuses a thread the others do its share.
template <class Body>
void on_threads(int threads, int n_threads, Call& call, const Body& body) {
  const auto guarded = [&call, &body](int k) {
    try {
      body(k);
    } catch (...) {
      call.fail(std::current_exception());
    }
  };
  using Guarded = decltype(guarded);
  if (threads <= 1) {
    guarded(0);
    call.rethrow();
    return;
  }
  const std::vector<int> cpus = call_cpus(threads, n_threads);
  // The pool's helpers (thread_pool.h), pinned or not as call_cpus says.
  HelperPool* shared = helper_pool();
  const auto run_body = [](const void* ctx, int k) { (*static_cast<const Guarded*>(ctx))(k); };
  if (shared && shared->run(threads - 1, cpus, run_body, &guarded,
                            call.polls() ? &Call::wait_poll : nullptr, &call)) {
    call.rethrow();
    return;
  }
  // Otherwise threads of its own.  A helper starts work only once it is pinned: one that had
  // already finished would have a thread id of 0, which pthread_setaffinity_np takes for the
  // caller's own thread.
  std::atomic<bool> placed{false};
  std::atomic<int> running{0};  // helpers not yet done
  std::mutex m;
  std::condition_variable done;
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  struct Joiner {  // every started helper is joined, however this function ends
    std::vector<std::thread>& pool;
    std::atomic<bool>& placed;
    ~Joiner() {
      placed.store(true, std::memory_order_release);
      for (auto& th : pool)
        if (th.joinable()) th.join();
    }
  } joiner{pool, placed};
  for (int k = 1; k < threads; ++k) {
    running.fetch_add(1, std::memory_order_relaxed);
    try {
      pool.emplace_back([&guarded, &placed, &running, &m, &done, k] {
        while (!placed.load(std::memory_order_acquire)) std::this_thread::yield();
        guarded(k);
        if (running.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          std::lock_guard<std::mutex> lock(m);
          done.notify_one();
        }
      });
    } catch (...) {  // no more threads (or no memory for one): fewer helpers
      running.fetch_sub(1, std::memory_order_relaxed);
      break;
    }
    if (cpus[k - 1] >= 0) pin_thread(pool.back(), cpus[k - 1]);
  }
  placed.store(true, std::memory_order_release);
  guarded(0);
  {
    std::unique_lock<std::mutex> lock(m);
    const auto finished = [&running] { return running.load(std::memory_order_acquire) == 0; };
    if (!call.polls()) {
      done.wait(lock, finished);
    } else {
      while (!done.wait_for(lock, HelperPool::kWaitSlice, finished)) {
        lock.unlock();
        Call::wait_poll(&call);
        lock.lock();
      }
    }
  }
  for (auto& th : pool) th.join();
  pool.clear();
  call.rethrow();
}

// Nominal points of work per item of parallel_for, for the calling thread's poll.
inline constexpr long long kItemWork = 256;

// Calls work(i, stop) for every i in [0, n) on up to n_threads threads, stop being the
// thread's StopCheck (work passes it to the solve); stops early where the call stops.
// Threads take `chunk` consecutive items at a time.
template <class Work>
void parallel_for(long long n, int n_threads, Call& call, const Work& work,
                  long long chunk = 64) {
  const long long n_chunks = (n + chunk - 1) / chunk;
  const int threads = static_cast<int>(
      n_chunks <= 1 ? n_chunks : std::min<long long>(resolve_threads(n_threads), n_chunks));
  std::atomic<long long> next{0};
  on_threads(threads, n_threads, call, [&](int k) {
    StopCheck stop = call.stop_check(k);
    for (long long c = next.fetch_add(1); c < n_chunks; c = next.fetch_add(1)) {
      const long long end = std::min(n, (c + 1) * chunk);
      for (long long i = c * chunk; i < end; ++i) {
        if (stop(kItemWork)) return;
        work(i, stop);
      }
    }
  });
}

// One build of the SIMD driver.
struct Engine {
  const char* name;
  int (*width)();
  size_t (*buffer_bytes)(const char* model, int cap);
  bool (*run)(const char* model, const simd::LaneJob& job, void* buffer);
  void (*vmath)(int fn, const double* x, double* out, long long n);
  size_t (*guess_bytes)(const simd::GuessJob& job);
  void (*guess)(const simd::GuessJob& job, void* buffer);
  void (*grid_sum)(const simd::GridSumJob& job);
  bool (*all_finite)(const double* v, long long n);
  bool (*supported)();
  // Whether "auto" may pick it: the baseline build on x86-64 (SSE2, two lanes per
  // instruction, no 64-bit arithmetic shifts) measured slower than the scalar solve there,
  // so "auto" falls back to the scalar solve on x86-64 CPUs without AVX2.
  bool for_auto;
};

inline bool always() { return true; }
#if defined(LAWFIT_X86_ISAS)
inline bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
inline bool has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("fma");
}
#endif

// The SIMD builds in this module, best first.
inline const std::vector<Engine>& engines() {
  static const std::vector<Engine> all = {
#if defined(LAWFIT_X86_ISAS)
      {"avx512", &simd::width_avx512, &simd::buffer_bytes_avx512, &simd::run_avx512,
       &simd::vmath_avx512, &simd::guess_bytes_avx512, &simd::guess_avx512,
       &simd::grid_sum_avx512, &simd::all_finite_avx512, &has_avx512, true},
      {"avx2", &simd::width_avx2, &simd::buffer_bytes_avx2, &simd::run_avx2, &simd::vmath_avx2,
       &simd::guess_bytes_avx2, &simd::guess_avx2, &simd::grid_sum_avx2,
       &simd::all_finite_avx2, &has_avx2, true},
      {"generic", &simd::width_generic, &simd::buffer_bytes_generic, &simd::run_generic,
       &simd::vmath_generic, &simd::guess_bytes_generic, &simd::guess_generic,
       &simd::grid_sum_generic, &simd::all_finite_generic, &always, false},
#else
      {"generic", &simd::width_generic, &simd::buffer_bytes_generic, &simd::run_generic,
       &simd::vmath_generic, &simd::guess_bytes_generic, &simd::guess_generic,
       &simd::grid_sum_generic, &simd::all_finite_generic, &always, true},
#endif
  };
  return all;
}

// The engine a name asks for: "auto" (the best this CPU runs), "scalar" (nullptr: the
// scalar solve), or a build by name.
// A law's native build as an engine (tape.h's TapeContext::native_*): its own lanes, of
// the width the build chose, for that law alone.
inline Engine native_engine(const void* bytes, const void* run) {
  Engine e{};
  e.name = "native";
  e.buffer_bytes = reinterpret_cast<size_t (*)(const char*, int)>(const_cast<void*>(bytes));
  e.run = reinterpret_cast<bool (*)(const char*, const simd::LaneJob&, void*)>(
      const_cast<void*>(run));
  e.supported = &always;
  e.for_auto = true;
  return e;
}

inline const Engine* find_engine(const std::string& name) {
  if (name == "scalar") return nullptr;
  if (name == "auto") {
    for (const auto& e : engines())
      if (e.for_auto && e.supported()) return &e;
    return nullptr;
  }
  for (const auto& e : engines()) {
    if (name == e.name) {
      if (!e.supported()) throw std::invalid_argument("engine: this CPU cannot run '" + name + "'");
      return &e;
    }
  }
  throw std::invalid_argument("engine: unknown engine '" + name + "'");
}

// Whether all n values are finite, in the widest vectors this CPU runs (a batch's pass over
// its targets before the small-call route takes it: SSE2 alone, in module.cpp's own
// build, took 4% of a 10,000-problem call).
inline bool all_finite_wide(const double* v, long long n) {
  static bool (*const check)(const double*, long long) = [] {
    for (const auto& e : engines())
      if (e.supported()) return e.all_finite;
    return static_cast<bool (*)(const double*, long long)>(nullptr);
  }();
  return check ? check(v, n) : all_finite(v, n);
}

// Problems with more points than this go to the scalar solve (a lane copies its problem's
// points, and the lanes of a large problem gain nothing from lockstep).
inline constexpr long long kMaxLanePoints = 4096;

// For the tests (lawfit._core.fail_allocations): how many of the next requests for a
// thread's scratch buffer raise std::bad_alloc, as they do when memory runs out.
inline std::atomic<long long> injected_allocation_failures{0};

// Raises std::bad_alloc where a failure is injected for this request.
inline void take_injected_failure() {
  long long k = injected_allocation_failures.load(std::memory_order_relaxed);
  while (k > 0 && !injected_allocation_failures.compare_exchange_weak(
                      k, k - 1, std::memory_order_relaxed)) {
  }
  if (k > 0) throw std::bad_alloc();
}

// Room for unit i's resample (unit_data() in batch.h), on the calling thread.
template <class T>
T* resample_buffer(const Batch<T>& b, long long i) {
  thread_local std::vector<T> buffer;
  if (!b.resample_of) return nullptr;
  take_injected_failure();
  buffer.resize(2 * static_cast<size_t>(unit_points(b, i)));
  return buffer.data();
}

// The scalar solve of unit i, with its resample's weights where the batch is a bootstrap;
// `stop` checked once per iteration.
template <class Model, class T>
void solve_unit(const Batch<T>& b, const Options& o, long long i, StopCheck& stop) {
  const long long n = unit_points(b, i);
  solve_in_batch<Model>(b, o, i, resample_buffer(b, i), [&stop, n] { return stop(n); });
}

// Unit i's cost at its p0 (objective_in_batch), with its resample where the batch has one.
template <class Model, class T>
void objective_unit(const Batch<T>& b, const Options& o, long long i) {
  objective_in_batch<Model>(b, o, i, resample_buffer(b, i));
}

// Threads for n units taken in chunks of kLaneChunk, and one zeroed, 64-byte aligned buffer
// of `bytes` for each (allocated before any work, so that a failure raises in Python).
inline constexpr long long kLaneChunk = 64;

// With the default thread count (n_threads = 0), each thread gets at least this many data
// points of work (0.1 to 0.15 ms of it; 200 twenty-point power laws).  A pooled helper that
// is awake starts at once (256 such fits ran 1.2 times faster on 2 threads than on 1), but
// one that slept costs 0.1 to 0.3 ms to wake on a VM.  An explicit n_threads is taken as
// given (up to one thread per chunk).
inline constexpr long long kMinPointsPerThread = 4096;

inline int lane_threads(int n_threads, long long n, long long points) {
  long long most = (n + kLaneChunk - 1) / kLaneChunk;
  if (n_threads <= 0) most = std::min(most, points / kMinPointsPerThread);
  if (most <= 1) return 1;  // (a small call: no need to ask the system for its CPUs)
  return static_cast<int>(std::min<long long>(resolve_threads(n_threads), most));
}

// Wakes the pooled helpers ahead of a call of n units and `points` data points on n_threads
// threads (0: the default) that will use them (HelperPool::rouse; on_threads).
inline void rouse_helpers(int n_threads, long long n, long long points) {
  const int threads = lane_threads(n_threads, n, points);
  if (threads <= 1) return;
  if (HelperPool* pool = helper_pool()) pool->rouse();
}

struct AlignedFree {
  void operator()(void* p) const { ::operator delete(p, std::align_val_t(64)); }
};

// The lanes' zeroed buffers of a call, one per thread (k = 0 the calling thread's).  The
// calling thread keeps its block between calls (up to kKeptBytes): a call of a few small
// problems would otherwise spend a good share of its time allocating and freeing it.  A call
// nested on the same thread while the block is in use (Python code run by a signal handler
// at an interrupt poll) gets a block of its own.
class ThreadBuffers {
 public:
  static constexpr size_t kKeptBytes = size_t(1) << 18;

  ThreadBuffers(int threads, size_t bytes) {
    Kept& kept = kept_block();
    if (!kept.busy && bytes <= kKeptBytes) {
      if (kept.bytes < bytes) {
        kept.block.reset();
        kept.block.reset(::operator new(bytes, std::align_val_t(64)));
        kept.bytes = bytes;
      }
      kept.busy = true;
      kept_ = &kept;
      first_ = kept.block.get();
    } else {
      own_first_.reset(::operator new(bytes, std::align_val_t(64)));
      first_ = own_first_.get();
    }
    std::memset(first_, 0, bytes);
    try {
      for (int k = 1; k < threads; ++k) {
        owned_.emplace_back(::operator new(bytes, std::align_val_t(64)));
        std::memset(owned_.back().get(), 0, bytes);
      }
    } catch (...) {  // (no destructor runs for an object whose constructor throws)
      if (kept_) kept_->busy = false;
      throw;
    }
  }
  ~ThreadBuffers() {
    if (kept_) kept_->busy = false;
  }
  ThreadBuffers(const ThreadBuffers&) = delete;
  ThreadBuffers& operator=(const ThreadBuffers&) = delete;

  void* operator[](int k) const {
    return k == 0 ? first_ : owned_[static_cast<size_t>(k) - 1].get();
  }

 private:
  struct Kept {
    std::unique_ptr<void, AlignedFree> block;
    size_t bytes = 0;
    bool busy = false;
  };
  static Kept& kept_block() {
    thread_local Kept kept;
    return kept;
  }
  Kept* kept_ = nullptr;                                 // the kept block, or nullptr
  std::unique_ptr<void, AlignedFree> own_first_;         // k = 0's block where not kept
  void* first_ = nullptr;                                // k = 0's block
  std::vector<std::unique_ptr<void, AlignedFree>> owned_;  // k = 1, 2, ...'s
};

// Whether some bound of the batch is finite (or NaN); false when all are infinite, as with
// the default bounds, and the lanes may skip the bound tests.
template <int N>
bool has_bounds(const Batch<double>& b) {
  const long long rows = b.bounds_shared ? 1 : (b.box_per_problem ? b.n_problems : b.n_units);
  bool all_infinite = true;
  for (long long k = 0; k < rows * N; ++k)
    all_infinite = all_infinite & (b.lower[k] == -INFINITY) & (b.upper[k] == INFINITY);
  return !all_infinite;
}

// Solves every unit of the batch (or, with `objective`, evaluates each unit's cost at its
// p0): in the engine's SIMD lanes, the scalar path without one or for very large problems.
template <class Model>
void solve_batch(const Batch<double>& b, const Options& o, int n_threads, const Engine* engine,
                 Call& call, bool objective = false) {
  const long long n_units = b.n_units;
  auto scalar = [&](long long i, StopCheck& stop) {
    if (objective) {
      objective_unit<Model>(b, o, i);
    } else {
      solve_unit<Model>(b, o, i, stop);
    }
  };
  // An engine built without this model (buffer_bytes 0: x86-64's baseline build has no
  // laws' tapes) leaves it to the scalar solve, which gives the same bits.
  if (!engine || engine->buffer_bytes(Model::kName, 1) == 0) {
    parallel_for(n_units, n_threads, call, scalar);
    return;
  }
  // Sizes: if they differ, the lanes take problems in order of size, so that neighbouring
  // lanes pad little; problems too large for lanes are solved apart.
  std::vector<long long> order, large;
  const bool all_in_lanes = !order_by_size(b, kMaxLanePoints, order, large);
  long long cap = 0, points = 0;
  for (long long k = 0, n = all_in_lanes ? n_units : static_cast<long long>(order.size());
       k < n; ++k) {
    const long long pts = unit_points(b, all_in_lanes ? k : order[k]);
    cap = std::max(cap, pts);
    points += pts;
  }
  const long long n_lane = all_in_lanes ? n_units : static_cast<long long>(order.size());
  const int threads = lane_threads(n_threads, n_lane, points);
  const ThreadBuffers buffers(
      threads, engine->buffer_bytes(Model::kName, static_cast<int>(std::max(cap, 1LL))));
  alignas(64) long long counter = 0;
  simd::LaneJob job{&b, &o, order.empty() ? nullptr : order.data(), n_lane, &counter,
                    kLaneChunk, static_cast<int>(cap), objective,
                    objective || has_bounds<Model::kParams>(b)};
  if (n_lane > 0) {
    on_threads(threads, n_threads, call, [&](int k) {
      simd::LaneJob mine = job;
      mine.stop = call.stop_fields(k);
      engine->run(Model::kName, mine, buffers[k]);
    });
  }
  parallel_for(static_cast<long long>(large.size()), n_threads, call,
               [&](long long k, StopCheck& stop) { scalar(large[k], stop); });
}

// The saturating power law's data-driven start for every problem of `job` (job.n problems,
// job.order unset): in an engine's SIMD lanes for problems of up to kMaxLanePoints points,
// in the scalar guess for larger ones and without an engine.  Bitwise the same either way.
inline void guess_batch(simd::GuessJob job, int n_threads, const Engine* engine, Call& call) {
  const long long P = job.n;
  auto scalar = [&job](long long i, StopCheck& stop) {
    thread_local std::vector<double> inv;
    const int n = static_cast<int>(job.offsets[i + 1] - job.offsets[i]);
    take_injected_failure();
    inv.resize(static_cast<size_t>(n > 0 ? n : 1));
    guess_saturating_power_law(job.lx + job.offsets[i], job.y + job.offsets[i], n, job.coarse,
                               job.n_coarse, job.factors, job.n_factors, job.out + 3 * i,
                               inv.data(), [&stop, n] { return stop(n); });
  };
  if (!engine) {
    parallel_for(P, n_threads, call, scalar);
    return;
  }
  std::vector<long long> lanes, large;
  long long cap = 0, points = 0;
  for (long long i = 0; i < P; ++i) {
    const long long n = job.offsets[i + 1] - job.offsets[i];
    (n <= kMaxLanePoints ? lanes : large).push_back(i);
    if (n <= kMaxLanePoints) {
      cap = std::max(cap, n);
      points += n;
    }
  }
  job.order = lanes.data();
  job.n = static_cast<long long>(lanes.size());
  job.cap = static_cast<int>(std::max(cap, 1LL));
  alignas(64) long long counter = 0;
  job.counter = &counter;
  job.chunk = kLaneChunk;
  const int threads = lane_threads(n_threads, job.n, points);
  const ThreadBuffers buffers(threads, engine->guess_bytes(job));
  if (job.n > 0) {
    on_threads(threads, n_threads, call, [&](int k) {
      simd::GuessJob mine = job;
      mine.stop = call.stop_fields(k);
      engine->guess(mine, buffers[k]);
    });
  }
  parallel_for(static_cast<long long>(large.size()), n_threads, call,
               [&](long long k, StopCheck& stop) { scalar(large[k], stop); });
}

// ---- The grid objective under resampling ---------------------------------------------------
//
// grid_objective() gives unit i's cost at each of the S starts of its problem (starts +
// data_of[i] * S * N) in out[i * S ...]: for each (unit, start) bitwise what
// objective_in_batch() gives, but with the work its resamples share done once.  A point's
// value at a start (lm.h, point_value: its residual, or its robust cost before the weight)
// does not depend on the unit's weights, so it is computed once per problem and start; each
// unit then draws its weights once and sums its used points' costs (add_point_cost) for
// every start, in the points' order, in SIMD lanes across starts (grid_sum.h).  For units
// whose resample draws weights (pairs, groups, jackknifes) or without a resample; the
// residual bootstrap, whose targets differ per resample, is the caller's to refuse.

// The starts' point values held at once, in doubles (a problem's starts are split into ranges
// that fit, and the problems' ranges grouped up to it).
inline constexpr long long kGridValues = 1LL << 22;
// Starts per item of the values pass; units per item of the sums; starts per grid_sum call.
inline constexpr long long kGridStartBlock = 32;
inline constexpr long long kGridUnitBlock = 8;
inline constexpr int kGridSumWidth = 512;

// One range of a problem's starts, [s0, s1), and its units, order[u0 .. u1).
struct GridRange {
  long long k, s0, s1, u0, u1;
  double* values;  // values[pt * (s1 - s0) + s - s0]
};

template <class Model, bool kLogResiduals>
void grid_values(const Batch<double>& b, const Options& o, const double* starts, long long S,
                 const GridRange& r, long long unit, long long a, long long e) {
  constexpr int N = Model::kParams;
  const ProblemData<double> d = problem_data<Model>(b, unit);
  const long long stride = r.s1 - r.s0;
  const double f_scale = o.f_scale;
  for (long long s = a; s < e; ++s) {
    const double* p = starts + (r.k * S + s) * N;
    for (int pt = 0; pt < d.n; ++pt) {
      double row[N];
      r.values[pt * stride + s - r.s0] =
          point_value(o.loss, point_residual<Model, kLogResiduals>(d, pt, p, row), f_scale);
    }
  }
}

template <class Model>
void grid_objective(const Batch<double>& b, const Options& o, const double* starts, long long S,
                    double* out, int n_threads, const Engine* engine, Call& call) {
  const long long U = b.n_units, P = b.n_problems;
  // The units of each problem, in order (a counting sort by problem).
  std::vector<long long> first(static_cast<size_t>(P) + 1, 0), order(static_cast<size_t>(U));
  for (long long i = 0; i < U; ++i) ++first[data_index(b, i) + 1];
  for (long long k = 0; k < P; ++k) first[k + 1] += first[k];
  {
    std::vector<long long> next(first.begin(), first.end() - 1);
    for (long long i = 0; i < U; ++i) order[next[data_index(b, i)]++] = i;
  }
  void (*sum)(const simd::GridSumJob&) =
      engine && engine->grid_sum ? engine->grid_sum : &grid_sum<double>;
  const bool linear = o.loss == Loss::kLinear;
  std::vector<GridRange> ranges;
  std::vector<double> values;
  // Fills the values of the grouped ranges, then sums every unit of them.
  auto flush = [&] {
    if (ranges.empty()) return;
    take_injected_failure();
    auto size = [&](const GridRange& r) {
      return (b.offsets[r.k + 1] - b.offsets[r.k]) * (r.s1 - r.s0);
    };
    long long total = 0;
    for (const GridRange& r : ranges) total += size(r);
    values.resize(static_cast<size_t>(std::max(total, 1LL)));
    total = 0;
    std::vector<std::pair<size_t, long long>> fill, sums;  // (range, first start / unit)
    for (size_t j = 0; j < ranges.size(); ++j) {
      GridRange& r = ranges[j];
      r.values = values.data() + total;
      total += size(r);
      for (long long s = r.s0; s < r.s1; s += kGridStartBlock) fill.emplace_back(j, s);
      for (long long u = r.u0; u < r.u1; u += kGridUnitBlock) sums.emplace_back(j, u);
    }
    parallel_for(static_cast<long long>(fill.size()), n_threads, call,
                 [&](long long item, StopCheck& stop) {
      const GridRange& r = ranges[fill[item].first];
      const long long a = fill[item].second, e = std::min(r.s1, a + kGridStartBlock);
      const long long unit = order[r.u0];
      if (o.log_residuals) {
        grid_values<Model, true>(b, o, starts, S, r, unit, a, e);
      } else {
        grid_values<Model, false>(b, o, starts, S, r, unit, a, e);
      }
      stop((e - a) * (b.offsets[r.k + 1] - b.offsets[r.k]));
    }, 1);
    parallel_for(static_cast<long long>(sums.size()), n_threads, call,
                 [&](long long item, StopCheck& stop) {
      const GridRange& r = ranges[sums[item].first];
      const long long n = b.offsets[r.k + 1] - b.offsets[r.k];
      thread_local std::vector<double> buffer;
      take_injected_failure();
      buffer.resize(static_cast<size_t>(3 * std::max(n, 1LL)));
      for (long long u = sums[item].second, e = std::min(r.u1, u + kGridUnitBlock); u < e; ++u) {
        const long long i = order[u];
        ProblemData<double> d = problem_data<Model>(b, i);
        resample_data(b, i, d, buffer.data());
        const double* w = d.w;
        if (!w) {  // every point at weight 1
          for (long long pt = 0; pt < n; ++pt) buffer[2 * n + pt] = 1.0;
          w = buffer.data() + 2 * n;
        }
        for (long long s = r.s0; s < r.s1; s += kGridSumWidth) {
          const int width = static_cast<int>(std::min<long long>(kGridSumWidth, r.s1 - s));
          sum({r.values + (s - r.s0), r.s1 - r.s0, w, static_cast<int>(n), width, linear,
               out + i * S + s});
        }
        stop(n * (r.s1 - r.s0) / 8);
      }
    }, 1);
    ranges.clear();
  };
  long long held = 0;
  for (long long k = 0; k < P; ++k) {
    if (first[k] == first[k + 1]) continue;
    const long long n = std::max<long long>(b.offsets[k + 1] - b.offsets[k], 1);
    const long long span = std::max<long long>(1, std::min(S, kGridValues / n));
    for (long long s0 = 0; s0 < S; s0 += span) {
      const long long s1 = std::min(S, s0 + span);
      if (held + n * (s1 - s0) > kGridValues) {
        flush();
        held = 0;
      }
      ranges.push_back({k, s0, s1, first[k], first[k + 1], nullptr});
      held += n * (s1 - s0);
    }
  }
  flush();
}

}  // namespace lawfit::cpu
