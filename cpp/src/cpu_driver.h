// cpu_driver.h: runs solve_in_batch over a batch on a pool of std::threads.
//
// Problems are handed out in fixed chunks from an atomic counter.  Each problem's result
// depends only on its own inputs, so the output is the same for any thread count and order.
#pragma once

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "lawfit/batch.h"

namespace lawfit::cpu {

inline int resolve_threads(int n_threads) {
  if (n_threads > 0) return n_threads;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Calls work(i) for every i in [0, n) on up to n_threads threads.
template <class Work>
void parallel_for(long long n, int n_threads, const Work& work) {
  constexpr long long kChunk = 64;
  const long long n_chunks = (n + kChunk - 1) / kChunk;
  const int threads = static_cast<int>(std::min<long long>(resolve_threads(n_threads), n_chunks));
  std::atomic<long long> next{0};
  auto run = [&] {
    for (long long c = next.fetch_add(1); c < n_chunks; c = next.fetch_add(1)) {
      const long long end = std::min(n, (c + 1) * kChunk);
      for (long long i = c * kChunk; i < end; ++i) work(i);
    }
  };
  if (threads <= 1) {
    run();
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int k = 1; k < threads; ++k) pool.emplace_back(run);
  run();
  for (auto& th : pool) th.join();
}

template <class Model, class T>
void solve_batch(const Batch<T>& b, const Options& o, int n_threads) {
  parallel_for(b.n_problems, n_threads, [&](long long i) { solve_in_batch<Model>(b, o, i); });
}

}  // namespace lawfit::cpu
