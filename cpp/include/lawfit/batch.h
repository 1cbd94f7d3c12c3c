// batch.h: one packed batch of problems, and the solve of problem i within it.
//
// solve_in_batch() is the unit every driver runs: the CPU driver's scalar path calls it from
// its threads (its SIMD lanes run the same steps, lanes.h), the CUDA kernel from one thread
// per problem; objective_in_batch() likewise ranks a grid's starts.  Solve unit i owns row i of the (units x
// params) arrays and fits the points of its problem: offsets[i] to offsets[i+1] of the flat
// arrays, or, where several units share one problem's points (starts of a grid, later
// resamples), those of problem data_of[i].  It reads nothing else and writes nothing else,
// so a bad problem cannot touch its neighbours.
#pragma once

#if !defined(__CUDACC_RTC__)  // host code only (order_by_size)
#include <algorithm>
#include <vector>
#endif

#include "hd.h"
#include "lm.h"
#include "options.h"
#include "rng.h"

namespace lawfit {

template <class T>
struct Batch {
  // inputs
  const T* x;                  // (points, kInputs), or with x_shared (points of one, kInputs)
  const T* t;                  // (points,)  y, or log y for log residuals
  const T* sigma;              // (points,) or nullptr
  const T* w;                  // (points,) or nullptr
  const long long* offsets;    // (problems + 1,)
  const T* p0;                 // (problems, kParams)
  const T* lower;              // (problems, kParams)
  const T* upper;              // (problems, kParams)
  long long n_units;           // solve units: rows of p0, lower, upper and the outputs
  // The problem whose points unit i fits, (n_units,), each in [0, n_problems); nullptr: unit
  // i fits problem i (and n_problems is n_units).  offsets has n_problems + 1 entries.
  const long long* data_of = nullptr;
  long long n_problems = 0;
  // Resampling: unit i fits its problem with the weights of resample resample_of[i], times
  // w (nullptr: no resampling).  resample_mode kPairs: each point's count in n draws with
  // replacement, the multinomial stream of (boot_seed, data_index(i), resample_of[i])
  // (rng.h); kGroups: the same over the problem's groups (group_of: each point's group
  // within its problem, 0 .. n_groups[problem] - 1), every point of a group taking its
  // group's count; kJackknife / kGroupJackknife: all ones but point / group resample_of[i].
  const unsigned int* resample_of = nullptr;
  unsigned long long boot_seed = 0;
  // The problem term of problem k's streams: problem_key[k], (n_problems,); nullptr: k
  // itself.  A key that does not depend on the call (lawfit.bootstrap's problem_ids, e.g. a
  // group's place among all of a study's groups) gives a problem the same resamples in
  // whatever call, chunk or partition it is fitted.
  const long long* problem_key = nullptr;
  int resample_mode = 0;
  const int* group_of = nullptr;  // (points,)
  const int* n_groups = nullptr;  // (n_problems,)
  // kResidual (fixed design): unit i fits the targets fit_t[j] + sigma[j] fit_r[k_j], k_j
  // the stream's draw j within the problem: the fitted values plus resampled standardised
  // residuals of the full-data fit, both (points,); the weights are the batch's.
  const T* fit_t = nullptr;
  const T* fit_r = nullptr;
  // p0, lower and upper have a row per problem (n_problems rows, unit i reads row data_of[i]),
  // rather than a row per unit: every resample of a problem starts from the same point.
  bool box_per_problem = false;
  // lower and upper have one row, shared by every unit (bounds given once for all).
  bool bounds_shared = false;
  // x holds one problem's inputs, shared by every problem (all have as many points): a
  // padded batch on one grid.
  bool x_shared = false;
  // Every unit passes step 1's checks (lm.h's check_problem) without resampling: the caller
  // checked the whole batch at once (bindings.h's fit_grid), and a driver may skip them.
  bool checked = false;
  // The model's context, which every evaluation receives (ProblemData::ctx): a user's law's
  // program (tape.h's TapeContext); nullptr for the built-ins.
  const void* model_ctx = nullptr;
  // outputs
  T* p;                        // (problems, kParams)
  T* cost;                     // (problems,)
  T* optimality;               // (problems,)
  T* jtj;                      // (problems, kParams, kParams) or nullptr
  signed char* active;         // (problems, kParams)
  int* status;                 // (problems,)
  int* nfev;                   // (problems,)
  int* njev;                   // (problems,)
  int* nit;                    // (problems,)
};

}  // namespace lawfit

LAWFIT_NAMESPACE_BEGIN

#if !defined(__CUDACC__)
// How a CPU driver's thread stops a call early (cpu_driver.h's Call sets it up): `flag`,
// shared by the call's threads, is read with one relaxed load between problems and once per
// solver iteration, and nonzero stops the thread (another thread's error, or an interrupt).
// The calling thread also has `poll` (nullptr on the others), which looks for an interrupt
// and returns whether to stop; it runs after about kPollWork points of work.
struct StopCheck {
  static constexpr long long kPollWork = 1 << 16;
  static constexpr int kNever = 0;  // the flag of a check that never stops
  const int* flag = &kNever;
  bool (*poll)(void* ctx) = nullptr;
  void* poll_ctx = nullptr;
  long long work = 0;  // points since the last poll

  // Whether to stop, after `points` points of work.
  bool operator()(long long points) {
    if (__atomic_load_n(flag, __ATOMIC_RELAXED) != 0) return true;
    if (!poll) return false;
    work += points;
    if (work < kPollWork) return false;
    work = 0;
    return poll(poll_ctx);
  }
};
#endif

// The problem whose points unit i fits.
template <class T>
LAWFIT_HD LAWFIT_INLINE long long data_index(const Batch<T>& b, long long i) {
  return b.data_of ? b.data_of[i] : i;
}

// Unit i's number of points.
template <class T>
LAWFIT_HD LAWFIT_INLINE long long unit_points(const Batch<T>& b, long long i) {
  const long long k = data_index(b, i);
  return b.offsets[k + 1] - b.offsets[k];
}

// The order in which drivers take a batch's units (host code; which thread or lane solves a
// unit never changes its result): where every unit has the same number of points, at most
// max_points, none is needed and this returns false (take 0, 1, ...).  Otherwise `order`
// receives the units of at most max_points points in order of size (stable, so neighbouring
// SIMD lanes or warp threads pad little and none idles while a neighbour finishes a longer
// problem) and `larger` the others, in index order; returns true.
#if !defined(__CUDACC_RTC__)
template <class T>
bool order_by_size(const Batch<T>& b, long long max_points, std::vector<long long>& order,
                   std::vector<long long>& larger) {
  order.clear();
  larger.clear();
  const long long P = b.n_units;
  bool uniform = true;
  for (long long i = 1; i < P && uniform; ++i) uniform = unit_points(b, i) == unit_points(b, 0);
  if (uniform && (P == 0 || unit_points(b, 0) <= max_points)) return false;
  for (long long i = 0; i < P; ++i) (unit_points(b, i) <= max_points ? order : larger).push_back(i);
  std::stable_sort(order.begin(), order.end(), [&b](long long i, long long j) {
    return unit_points(b, i) < unit_points(b, j);
  });
  return true;
}
#endif

template <class Model, class T>
LAWFIT_HD LAWFIT_INLINE ProblemData<T> problem_data(const Batch<T>& b, long long i) {
  const long long k = data_index(b, i);
  const long long begin = b.offsets[k], end = b.offsets[k + 1];
  ProblemData<T> d;
  d.x = b.x_shared ? b.x : b.x + begin * Model::kInputs;
  d.t = b.t + begin;
  d.sigma = b.sigma ? b.sigma + begin : nullptr;
  d.w = b.w ? b.w + begin : nullptr;
  d.n = static_cast<int>(end - begin);
  d.ctx = b.model_ctx;
  return d;
}

template <class Model, class T>
LAWFIT_HD LAWFIT_INLINE ProblemBox<T, Model::kParams> problem_box(const Batch<T>& b, long long i) {
  constexpr int N = Model::kParams;
  ProblemBox<T, N> box;
  i = b.box_per_problem ? data_index(b, i) : i;
  const long long r = b.bounds_shared ? 0 : i;
  for (int j = 0; j < N; ++j) {
    box.p0[j] = b.p0[i * N + j];
    box.lower[j] = b.lower[r * N + j];
    box.upper[j] = b.upper[r * N + j];
  }
  return box;
}

// Writes one problem's summary into row i of the outputs.
template <class T, int N>
LAWFIT_HD LAWFIT_INLINE void store_summary(const Batch<T>& b, long long i, const Summary<T, N>& s) {
  for (int j = 0; j < N; ++j) {
    b.p[i * N + j] = s.p[j];
    b.active[i * N + j] = s.active[j];
  }
  if (b.jtj) {  // + 0: the one zero (a sum of zero products is -0 or +0 by its padding)
    for (int j = 0; j < N * N; ++j) b.jtj[i * N * N + j] = s.jtj[j] + T(0);
  }
  b.cost[i] = s.cost;
  b.optimality[i] = s.optimality;
  b.status[i] = s.status;
  b.nfev[i] = s.nfev;
  b.njev[i] = s.njev;
  b.nit[i] = s.nit;
}

enum ResampleMode { kPairs = 0, kGroups = 1, kJackknife = 2, kGroupJackknife = 3, kResidual = 4 };

// The problem term of the resampling streams of problem k (see Batch::problem_key).
template <class T>
LAWFIT_HD LAWFIT_INLINE long long stream_key(const Batch<T>& b, long long k) {
  return b.problem_key ? b.problem_key[k] : k;
}

// Unit i's targets under the residual bootstrap (see Batch::fit_t).  t: d.n entries.
template <class T>
LAWFIT_HD void unit_targets(const Batch<T>& b, long long i, const ProblemData<T>& d, T* t) {
  const long long k = data_index(b, i);
  const long long begin = b.offsets[k];
  for (int pt = 0; pt < d.n; ++pt) {
    const int j = bootstrap_index(b.boot_seed, stream_key(b, k), b.resample_of[i], pt, d.n);
    t[pt] = b.fit_t[begin + pt] + (d.sigma ? d.sigma[pt] : T(1)) * b.fit_r[begin + j];
  }
}

// Unit i's point weights under its resample (see Batch::resample_mode), times the batch's
// weights.  w: d.n entries; scratch: d.n entries (the group counts).
template <class T>
LAWFIT_HD void unit_weights(const Batch<T>& b, long long i, const ProblemData<T>& d, T* w,
                            T* scratch) {
  const long long k = data_index(b, i);
  const unsigned int r = b.resample_of[i];
  const int* group = b.group_of ? b.group_of + b.offsets[k] : nullptr;
  switch (b.resample_mode) {
    case kGroups: {
      const int G = b.n_groups[k];
      for (int g = 0; g < G; ++g) scratch[g] = T(0);
      bootstrap_counts(b.boot_seed, stream_key(b, k), r, G, scratch);
      for (int pt = 0; pt < d.n; ++pt) w[pt] = scratch[group[pt]];
      break;
    }
    case kJackknife:
      for (int pt = 0; pt < d.n; ++pt) w[pt] = static_cast<unsigned int>(pt) == r ? T(0) : T(1);
      break;
    case kGroupJackknife:
      for (int pt = 0; pt < d.n; ++pt)
        w[pt] = static_cast<unsigned int>(group[pt]) == r ? T(0) : T(1);
      break;
    case kPairs:
    default:
      for (int pt = 0; pt < d.n; ++pt) w[pt] = T(0);
      bootstrap_counts(b.boot_seed, stream_key(b, k), r, d.n, w);
  }
  if (d.w) {
    for (int pt = 0; pt < d.n; ++pt) w[pt] *= d.w[pt];
  }
}

// Unit i's data under its resample, where the batch resamples: its weights (or, for the
// residual bootstrap, its targets) drawn into `buffer`, 2 d.n entries (values, then scratch).
template <class T>
LAWFIT_HD void resample_data(const Batch<T>& b, long long i, ProblemData<T>& d, T* buffer) {
  if (!b.resample_of) return;
  if (b.resample_mode == kResidual) {
    unit_targets(b, i, d, buffer);
    d.t = buffer;
  } else {
    unit_weights(b, i, d, buffer, buffer + d.n);
    d.w = buffer;
    d.w_binary = false;
  }
}

// Unit i's points, with its resample's weights or targets drawn into `buffer` (2 n entries,
// n its number of points; unused, and may be null, where the batch does not resample).
template <class Model, class T>
LAWFIT_HD LAWFIT_INLINE ProblemData<T> unit_data(const Batch<T>& b, long long i, T* buffer) {
  ProblemData<T> d = problem_data<Model>(b, i);
  resample_data(b, i, d, buffer);
  return d;
}

// Solves unit i and writes its row of the outputs.  `buffer`: as for unit_data(); `stop`:
// as for solve() (lm.h).
template <class Model, class Objective = RuntimeObjective, class T, class Stop = NeverStop>
LAWFIT_HD void solve_in_batch(const Batch<T>& b, const Options& o, long long i, T* buffer,
                              Stop stop = {}) {
  Summary<T, Model::kParams> s;
  solve<Model, Objective>(unit_data<Model>(b, i, buffer), problem_box<Model>(b, i), o, s, stop);
  store_summary(b, i, s);
}

// The cost at unit i's parameters (row i of b.p0) into b.cost[i] (lm.h, objective_value),
// +inf where it is not finite (bad data, a model that overflows): what a grid of starts is
// ranked by.
template <class Model, class Objective = RuntimeObjective, class T>
LAWFIT_HD void objective_in_batch(const Batch<T>& b, const Options& o, long long i, T* buffer) {
  const T c = objective_value<Model>(unit_data<Model>(b, i, buffer), b.p0 + i * Model::kParams,
                                     o, Objective{});
  b.cost[i] = is_finite(c) ? c : T(INFINITY);
}

LAWFIT_NAMESPACE_END
