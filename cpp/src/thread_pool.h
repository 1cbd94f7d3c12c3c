// thread_pool.h: the CPU driver's helper threads, kept from one call to the next.
//
// Starting a thread costs little, but on a virtual machine the thread's CPU has often gone to
// sleep since the last call and takes 0.1 ms or more to wake: a 2-thread fit of 130 small
// problems took 2.4 times as long as a 1-thread one.  Pooled helpers wait awake for a
// millisecond after each call (long enough for the Python between two calls of a loop), then
// asleep.  One call holds the pool at a time; a concurrent call, and a forked child's first
// call, fall back to threads of their own (the child gets a new pool).  rouse() wakes them
// ahead of a call, so that the caller's own work before it (validating and packing the
// arrays in Python) hides their wake-up.  An exception on any thread of a call reaches its
// caller, once every thread has returned.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace lawfit::cpu {

// A pause in a spin-wait loop.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Pins a running thread to one CPU, or with cpu = -1 lets it run on the calling thread's CPUs
// (the process's mask: lawfit never pins a calling thread) (Linux; elsewhere nothing).  Only
// for a thread that has not exited: an exited one's thread id reads 0, which would pin the
// caller instead.
inline void pin_thread(std::thread& th, int cpu) {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu >= 0) {
    CPU_SET(cpu, &set);
  } else if (sched_getaffinity(0, sizeof set, &set) != 0) {
    return;
  }
  pthread_setaffinity_np(th.native_handle(), sizeof set, &set);  // a hint: failure is harmless
#else
  (void)th, (void)cpu;
#endif
}

class HelperPool {
 public:
  using Fn = void (*)(const void* ctx, int k);
  using Wait = void (*)(void* ctx);
  // How often a caller waiting for its helpers runs its Wait.
  static constexpr std::chrono::milliseconds kWaitSlice{50};

  // Wakes the sleeping helpers, which then wait awake (kIdleSpin) for a call; nothing when a
  // call holds the pool or none sleeps.
  void rouse() {
    std::unique_lock<std::mutex> own(busy_, std::try_to_lock);
    if (!own.owns_lock() || sleepers_.load(std::memory_order_acquire) == 0) return;
    {
      std::lock_guard<std::mutex> lock(m_);
      const unsigned long long call = (generation_.load(std::memory_order_relaxed) >> 16) + 1;
      generation_.store(call << 16, std::memory_order_release);  // a call of no helpers
    }
    wake_.notify_all();
  }

  // Runs fn(ctx, k) for k = 1 .. helpers on pooled threads, helper k pinned to CPU
  // cpus[k - 1] (-1: not pinned), and fn(ctx, 0) on the calling thread, and returns once
  // every one has returned; while the caller waits for the helpers it runs wait(wait_ctx)
  // every kWaitSlice (where wait is set).  Where fn threw, on any thread, the first exception is
  // rethrown then.  False, having run nothing, when another call holds the pool or the
  // system refuses a new thread (or the memory for one).
  bool run(int helpers, const std::vector<int>& cpus, Fn fn, const void* ctx,
           Wait wait = nullptr, void* wait_ctx = nullptr) {
    if (helpers < 1 || helpers > 0xffff || static_cast<int>(cpus.size()) < helpers) return false;
    std::unique_lock<std::mutex> own(busy_, std::try_to_lock);
    if (!own.owns_lock()) return false;
    try {
      while (static_cast<int>(workers_.size()) < helpers) {
        const int k = static_cast<int>(workers_.size()) + 1;
        const unsigned long long seen = generation_.load(std::memory_order_acquire);
        workers_.push_back(std::make_unique<Worker>());
        workers_.back()->thread = std::thread([this, k, seen] { loop(k, seen); });
      }
    } catch (...) {  // std::system_error, or std::bad_alloc
      if (!workers_.empty() && !workers_.back()->thread.joinable()) workers_.pop_back();
      return false;
    }
    for (int k = 1; k <= helpers; ++k) {  // a helper lives on: pinning it from here is safe
      Worker& w = *workers_[k - 1];
      if (cpus[k - 1] != w.cpu) {
        pin_thread(w.thread, cpus[k - 1]);
        w.cpu = cpus[k - 1];
      }
    }
    fn_ = fn;
    ctx_ = ctx;
    remaining_.store(helpers, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(m_);  // so that no helper misses it on its way to sleep
      const unsigned long long call = (generation_.load(std::memory_order_relaxed) >> 16) + 1;
      generation_.store(call << 16 | static_cast<unsigned long long>(helpers),
                        std::memory_order_release);
    }
    if (sleepers_.load(std::memory_order_acquire) > 0) wake_.notify_all();
    try {
      fn(ctx, 0);
    } catch (...) {
      keep(std::current_exception());
    }
    // The helpers' last chunks end within microseconds of the caller's: wait awake first.
    const auto until = std::chrono::steady_clock::now() + kCallerSpin;
    const auto done = [this] { return remaining_.load(std::memory_order_acquire) == 0; };
    for (int i = 1; !done(); ++i) {
      cpu_relax();
      if (i % 256 == 0 && std::chrono::steady_clock::now() > until) {
        std::unique_lock<std::mutex> lock(m_);
        if (!wait) {
          done_.wait(lock, done);
        } else {
          while (!done_.wait_for(lock, kWaitSlice, done)) {
            lock.unlock();
            wait(wait_ctx);
            lock.lock();
          }
        }
      }
    }
    std::exception_ptr error;
    {
      std::lock_guard<std::mutex> lock(m_);
      error.swap(error_);
    }
    if (error) std::rethrow_exception(error);
    return true;
  }

 private:
  static constexpr std::chrono::microseconds kIdleSpin{1000}, kCallerSpin{200};

  struct Worker {
    std::thread thread;
    int cpu = -1;  // the CPU it is pinned to, -1 for none
  };

  void loop(int k, unsigned long long seen) {
    // A helper that just worked, or was roused, waits awake a while; others sleep.
    bool awake = false;
    while (true) {
      const auto until =
          std::chrono::steady_clock::now() + (awake ? kIdleSpin : std::chrono::microseconds(0));
      unsigned long long g;
      for (int i = 1; (g = generation_.load(std::memory_order_acquire)) == seen; ++i) {
        cpu_relax();
        if (i % 256 == 0 && std::chrono::steady_clock::now() > until) {
          std::unique_lock<std::mutex> lock(m_);
          sleepers_.fetch_add(1, std::memory_order_acq_rel);
          wake_.wait(lock, [this, seen] {
            return generation_.load(std::memory_order_acquire) != seen;
          });
          sleepers_.fetch_sub(1, std::memory_order_acq_rel);
        }
      }
      seen = g;
      const int helpers = static_cast<int>(g & 0xffff);
      awake = helpers == 0 || k <= helpers;  // roused, or working now
      if (helpers < k) continue;  // roused, or this call needs fewer helpers
      try {
        fn_(ctx_, k);
      } catch (...) {  // for the caller to rethrow: an exception must not end the thread
        keep(std::current_exception());
      }
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(m_);
        done_.notify_one();
      }
    }
  }

  // Keeps a call's first exception.
  void keep(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(m_);
    if (!error_) error_ = std::move(e);
  }

  std::mutex busy_;  // held by the call using the pool
  std::mutex m_;     // with wake_ and done_, for sleeping helpers and a sleeping caller
  std::condition_variable wake_, done_;
  // The call's number << 16 | its number of helpers: a helper reads both in one load, so
  // that one left out of a call cannot take the next call's count for its own.
  std::atomic<unsigned long long> generation_{0};
  std::atomic<int> remaining_{0};                  // helpers of this call still working
  std::atomic<int> sleepers_{0};
  Fn fn_ = nullptr;  // this call's work, set before generation_ moves
  const void* ctx_ = nullptr;
  std::exception_ptr error_;  // the call's first exception, under m_
  std::vector<std::unique_ptr<Worker>> workers_;  // helper k is workers_[k - 1]
};

// The process's pool, or nullptr while another thread is fetching it.  Pools are never
// destroyed (their helpers wait until the process ends); a forked child, which has none of
// its parent's threads, gets a pool of its own.
inline HelperPool* helper_pool() {
  static std::mutex mu;
  static HelperPool* pool = nullptr;
  static long owner = -1;
#if defined(__unix__) || defined(__APPLE__)
  const long pid = static_cast<long>(getpid());
#else
  const long pid = 0;
#endif
  std::unique_lock<std::mutex> lock(mu, std::try_to_lock);
  if (!lock.owns_lock()) return nullptr;
  if (!pool || owner != pid) {
    pool = new HelperPool();  // a parent's pool, after fork, is left as it is
    owner = pid;
  }
  return pool;
}

}  // namespace lawfit::cpu
