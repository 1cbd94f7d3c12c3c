// lanes.h: the lockstep SIMD driver.  W problems at once, one per lane of a Pack<W>
// (simd.h), every lane running lm.h's algorithm: the same step functions the scalar solve()
// calls, instantiated for the pack, with masks where the scalar loop branches.
//
// A Lanes object runs on one thread (two of them per thread, side by side: run_groups()).
// It evaluates all W lanes together (the expensive part: the model at every point,
// vectorised across problems) and then applies steps 4f-4g and 4a-4e to every lane at once.
// A lane whose problem has finished writes its result and takes the next problem at once
// (the lanes do not wait for the slowest), so the lanes stay full until the work runs out.
// Each lane's point data is copied once, when the lane takes the problem, into
// lane-interleaved buffers (point i of lane k at x[i][k]) that the evaluation reads as
// whole packs; a lane with fewer points than its neighbours is padded with zero weights,
// which add exact zeros.
//
// Lane k computes bitwise what the scalar solve() computes for the same problem: every
// operation is lane-wise IEEE arithmetic, exp and log are vmath.h's on both paths, and the
// control flow of solve() is reproduced per lane (a failed Cholesky step raises that lane's
// damping and retries it without an evaluation; counters and statuses are per lane).  The
// tests hold the two to that.
#pragma once

#include <new>

#include "batch.h"
#include "simd.h"

LAWFIT_NAMESPACE_BEGIN

// Where the problems a thread solves come from: chunks of an index list (or of 0..n-1),
// taken from a counter that every thread shares.
struct ProblemSource {
  const long long* order;  // problem indices, or nullptr for 0, 1, ..., n - 1
  long long n;
  long long* counter;      // next chunk; shared, advanced atomically
  long long chunk;
  long long next_i = 0, end_i = 0;
  StopCheck stop{};        // the call's early stop (batch.h), checked once per round too

  // The next problem index, or -1 when there is none (or the call is stopping).
  long long next() {
    if (next_i == end_i) {
      if (stop(0)) {
        next_i = end_i = n;
        return -1;
      }
      const long long c = __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
      next_i = c * chunk;
      if (next_i >= n) {
        next_i = end_i = n;
        return -1;
      }
      end_i = next_i + chunk < n ? next_i + chunk : n;
    }
    const long long k = next_i++;
    return order ? order[k] : k;
  }
};

// kBounded = false: the driver has checked that every bound of the batch is infinite, and
// the lanes skip the bound tests (held_set, propose), which then change nothing.
template <class Model, int W, bool kBounded = true>
class Lanes {
 public:
  using P = Pack<W>;
  using M = Mask<W>;
  using I = typename Vec<W>::I;
  static constexpr int N = Model::kParams;
  static constexpr int kIn = Model::kInputs;

  // Bytes of point buffer for problems of up to `cap` points.
  static size_t buffer_bytes(int cap) {  // the lanes' points; one problem's weights, scratch
    return sizeof(P) * static_cast<size_t>(cap) * static_cast<size_t>(kIn + 3) +
           sizeof(P) * ((2 * static_cast<size_t>(cap) * sizeof(double) + sizeof(P) - 1) /
                        sizeof(P));
  }

  // `buffer`: buffer_bytes(cap) bytes, aligned for P, zeroed.  Every problem the source
  // hands out must have at most `cap` points.
  Lanes(const Batch<double>& b, const Options& o, void* buffer, int cap) : b_(b), o_(o) {
    P* base = static_cast<P*>(buffer);
    x_ = base;
    t_ = x_ + static_cast<size_t>(cap) * kIn;
    sigma_ = t_ + cap;
    w_ = sigma_ + cap;
    resampled_ = reinterpret_cast<double*>(w_ + cap);
    for (int k = 0; k < W; ++k) {
      n_[k] = filled_[k] = 0;
      prob_[k] = -1;
    }
  }

  // G groups of lanes on one thread (simd_run.h's kGroups), step by step side by side: each
  // group's bookkeeping is chains of dependent divisions and square roots (the damped
  // factorisations of the secular equation's fit, above all), short of independent work,
  // and with the groups' steps next to each other the core overlaps their chains.  Every
  // problem still gets the same arithmetic, so the results are the same bits as one group's
  // alone.  Solves problems from `src` until it runs dry (or its stop check ends the call).
  template <int G>
  static void run_groups(Lanes* const (&g)[G], ProblemSource& src) {
    for (int k = 0; k < G; ++k) g[k]->begin(src);
    while (true) {
      bool on[G], some = false;
      for (int k = 0; k < G; ++k) {
        on[k] = g[k]->active();
        if (on[k]) g[k]->evaluate_trial();
        some = some || on[k];
      }
      if (!some) return;
      // Steps 3-4 after the evaluation: judge the trials (or start from them), write the
      // problems that finished, propose the next trial points, and refill emptied lanes.
      for (int k = 0; k < G; ++k) {
        if (!on[k]) continue;
        g[k]->judge_running();
        g[k]->start_fresh();
      }
      propose_groups(g);
      for (int k = 0; k < G; ++k)
        if (on[k]) g[k]->refill(src);
      if (src.stop(kRoundWork)) return;
    }
  }

  // The objective at every unit's parameters (row i of b.p0) from `src` into b.cost, W units
  // at a time: bitwise what objective_in_batch() (batch.h) computes, +inf where the cost is
  // not finite, and, as there, no step-1 checks.
  void run_objective(ProblemSource& src) {
    set_data();
    while (true) {
      for (int k = 0; k < W; ++k) {
        const long long i = src_done_ ? -1 : src.next();
        if (i < 0) {
          src_done_ = true;
          continue;
        }
        ProblemData<double> d = problem_data<Model>(b_, i);
        resample_data(b_, i, d, resampled_);
        load(k, i, d, problem_box<Model>(b_, i));
      }
      if (!active()) return;
      set_points();
      const P cost = objective_value<Model>(d_, q_, o_);
      for (unsigned b = active_; b;) {
        const int k = pop(b);
        b_.cost[prob_[k]] = is_finite(cost[k]) ? cost[k] : double(INFINITY);
        release(k);
      }
      fresh_ = 0;
      if (src.stop(kRoundWork)) return;
    }
  }

  bool active() const { return active_ != 0; }

  // Fills the lanes.
  void begin(ProblemSource& src) {
    for (int k = 0; k < W; ++k) take(k, src);
    set_data();
  }

  // Step 2 at every lane's trial point (its start, for a lane that just took a problem).
  void evaluate_trial() {
    set_points();
    evaluate<Model>(d_, q_, o_, trial_);
  }

  // The points the lanes evaluate, after a lane took or gave back a problem.
  void set_points() {
    if (resized_) {  // a lane took or gave back a problem: the points to evaluate
      int n_max = -1, n_min = 1 << 30;
      for (unsigned b = active_; b;) {
        const int k = pop(b);
        n_max = n_[k] > n_max ? n_[k] : n_max;
        n_min = n_[k] < n_min ? n_[k] : n_min;
      }
      d_.n = n_max;
      // Without weights in the batch and without padding, every weight is 1: evaluate as
      // the scalar solve does without weights (no masks), which gives the same numbers.
      d_.w = b_.w == nullptr && b_.resample_of == nullptr && n_min == n_max ? nullptr : w_;
      resized_ = false;
    }
  }

  // Gives every empty lane the next problem, while the source has one.
  void refill(ProblemSource& src) {
    if (active_ != kAll && !src_done_)
      for (unsigned b = kAll & ~active_; b;) take(pop(b), src);
  }

 private:
  static constexpr unsigned kAll = (1u << W) - 1;
  // The work a round counts towards the calling thread's poll: a poll every 64 rounds, at
  // most 64 x 2 W x 4096 point evaluations (tens of ms).
  static constexpr long long kRoundWork = StopCheck::kPollWork / 64;

  // The lowest set bit's lane, cleared from b.
  static int pop(unsigned& b) {
    const int k = __builtin_ctz(b);
    b &= b - 1;
    return k;
  }

  // Loads the next problem that passes step 1 into lane k (problems that fail it are
  // written out at once); leaves the lane empty when the source is exhausted.
  void take(int k, ProblemSource& src) {
    while (true) {
      const long long i = src_done_ ? -1 : src.next();
      if (i < 0) {
        src_done_ = true;
        prob_[k] = -1;
        n_[k] = 0;
        return;
      }
      ProblemData<double> d = problem_data<Model>(b_, i);
      resample_data(b_, i, d, resampled_);  // a bootstrap resample, drawn here
      const ProblemBox<double, N> bx = problem_box<Model>(b_, i);
      const int status =
          b_.checked && !b_.resample_of ? kNotRun : check_problem<Model>(d, bx);
      if (status != kNotRun) {
        Summary<double, N> out;
        summarize_unsolved(bx, status, double(NAN), 0, out);
        store_summary(b_, i, out);
        continue;
      }
      load(k, i, d, bx);
      return;
    }
  }

  // The lanes' view of the point buffers.
  void set_data() {
    d_.x = x_;
    d_.t = t_;
    d_.sigma = b_.sigma ? sigma_ : nullptr;
    d_.w_binary = b_.w == nullptr && b_.resample_of == nullptr;
    d_.ctx = b_.model_ctx;
  }

  // Copies problem i's points and box into lane k, its trial point q the start.
  // A problem with weights gets only its points of positive weight (a bootstrap resample
  // leaves about a third of the points out): a point of weight 0 adds exact zeros to every
  // sum of the evaluation (lm.h, evaluate_points), so the lane's sums are the same bits
  // without it, and the lane evaluates fewer points.
  // What the lane's columns already hold is not copied again: the grid that every problem
  // shares (x_shared), and unit weights for as many points as the last problem had.
  void load(int k, long long i, const ProblemData<double>& d, const ProblemBox<double, N>& bx) {
    const unsigned bit = 1u << k;
    const bool unit_w = d.w == nullptr;
    int n = d.n;
    if (unit_w) {
      const bool copy_x = !(b_.x_shared && (grid_loaded_ & bit));
      const bool copy_w = !((unit_w_ & bit) && d.n == filled_[k]);
      for (int pt = 0; pt < d.n; ++pt) {
        if (copy_x)
          for (int c = 0; c < kIn; ++c) x_[pt * kIn + c].set(k, d.x[pt * kIn + c]);
        t_[pt].set(k, d.t[pt]);
        if (d.sigma) sigma_[pt].set(k, d.sigma[pt]);
        if (copy_w) w_[pt].set(k, 1.0);
      }
      grid_loaded_ |= b_.x_shared ? bit : 0u;
      unit_w_ |= bit;
    } else {
      // Without a branch on the weight (a resample's zeros fall at random): every point is
      // written at slot n, which only a point of positive weight then keeps.
      n = 0;
      for (int pt = 0; pt < d.n; ++pt) {
        for (int c = 0; c < kIn; ++c) x_[n * kIn + c].set(k, d.x[pt * kIn + c]);
        t_[n].set(k, d.t[pt]);
        if (d.sigma) sigma_[n].set(k, d.sigma[pt]);
        w_[n].set(k, d.w[pt]);
        n += d.w[pt] > 0.0;
      }
      if (n < d.n) w_[n].set(k, 0.0);  // the last point written, if it was not kept
      grid_loaded_ &= ~bit;
      unit_w_ &= ~bit;
    }
    for (int pt = n; pt < filled_[k]; ++pt) w_[pt].set(k, 0.0);
    filled_[k] = n;
    n_[k] = n;
    for (int j = 0; j < N; ++j) {
      box_.p0[j].set(k, bx.p0[j]);
      box_.lower[j].set(k, bx.lower[j]);
      box_.upper[j].set(k, bx.upper[j]);
      q_[j].set(k, bx.p0[j]);
    }
    prob_[k] = i;
    active_ |= 1u << k;
    fresh_ |= 1u << k;
    resized_ = true;
    nfev_[k] = nit_[k] = 0;
  }

  // Empties lane k, whose problem's result has been written.
  void release(int k) {
    prob_[k] = -1;
    n_[k] = 0;
    active_ &= ~(1u << k);
    resized_ = true;
  }

  // Writes lane k's result (step 5) and empties the lane.
  void finish(int k, int status) {
    State<double, N> s;
    ProblemBox<double, N> bx;
    for (int j = 0; j < N; ++j) {
      s.p[j] = s_.p[j][k];
      s.D[j] = s_.D[j][k];
      s.fixed[j] = s_.fixed[j].lane(k);
      s.cur.g[j] = s_.cur.g[j][k];
      bx.p0[j] = box_.p0[j][k];
      bx.lower[j] = box_.lower[j][k];
      bx.upper[j] = box_.upper[j][k];
    }
    for (int j = 0; j < N * N; ++j) s.cur.A[j] = s_.cur.A[j][k];
    s.cur.cost = s_.cur.cost[k];
    s.cur.finite = s_.cur.finite.lane(k);
    s.lambda = s_.lambda[k];
    s.nu = s_.nu[k];
    Summary<double, N> out;
    summarize(s, bx, status, static_cast<int>(nfev_[k]), static_cast<int>(nit_[k]), out);
    store_summary(b_, prob_[k], out);
    release(k);
  }

  // Steps 4f-4g for the lanes whose trial point was just evaluated.
  void judge_running() {
    const unsigned running = active_ & ~fresh_;
    if (!running) return;
    const Verdict<P> v =
        judge<kBounded>(s_, box_, trial_, q_, step_, predicted_, o_, M::from_bits(running));
    const I one = M::from_bits(running).m;  // -1 in the running lanes
    nfev_ -= one;
    nit_ -= one;
    const unsigned stalled = v.stalled.bits();
    const unsigned accept = v.accept.bits(), ftol = v.ftol_ok.bits(), xtol = v.xtol_ok.bits();
    for (unsigned b = running & (ftol | xtol | (~accept & stalled)); b;) {
      const int k = pop(b);
      const unsigned bit = 1u << k;
      finish(k, step_status(accept & bit, ftol & bit, xtol & bit, stalled & bit));
    }
  }

  // Step 3 for the lanes whose start was just evaluated.
  void start_fresh() {
    const unsigned on = fresh_;
    if (!on) return;
    fresh_ = 0;
    const M fresh = M::from_bits(on);
    State<P, N> s0;
    start(s0, box_, trial_, o_);
    for (int j = 0; j < N; ++j) {
      s_.p[j] = select(fresh, s0.p[j], s_.p[j]);
      s_.D[j] = select(fresh, s0.D[j], s_.D[j]);
      s_.fixed[j] = select(fresh, s0.fixed[j], s_.fixed[j]);
    }
    s_.lambda = select(fresh, s0.lambda, s_.lambda);
    s_.nu = select(fresh, s0.nu, s_.nu);
    s_.radius = select(fresh, s0.radius, s_.radius);
    s_.x_norm = select(fresh, s0.x_norm, s_.x_norm);
    s_.F_mark = select(fresh, s0.F_mark, s_.F_mark);
    s_.first = select(fresh, s0.first, s_.first);
    for (int j = 0; j < N; ++j) s_.sec_u[j] = select(fresh, s0.sec_u[j], s_.sec_u[j]);
    s_.sec_k = select(fresh, s0.sec_k, s_.sec_k);
    s_.settle_known = select(fresh, s0.settle_known, s_.settle_known);
    assign(s_.cur, s0.cur, fresh);
    nfev_ = (fresh.m & 1) | (~fresh.m & nfev_);
    budget_ = (fresh.m & o_.max_nfev) | (~fresh.m & budget_);
    for (unsigned b = on & ~trial_.finite.bits(); b;) {
      const int k = pop(b);
      ProblemBox<double, N> bx;
      for (int j = 0; j < N; ++j) bx.p0[j] = box_.p0[j][k];
      Summary<double, N> out;
      summarize_unsolved(bx, kNonfiniteInitial, trial_.cost[k], 1, out);
      store_summary(b_, prob_[k], out);
      release(k);
    }
  }

  // One group's steps 4a-4e in progress (propose_groups).
  struct Round {
    unsigned need;      // the lanes still without a step
    P delta[N];         // the steps found
    M held[N];
    P try_delta[N];
    unsigned gtol, ftol, max_nfev, go_on;
    P lambda, nu;       // before the fit, for the lanes that take no step
    RadiusFit<P> fit;   // step 4d's
  };

  // Steps 4a-4e for every lane with a problem in the groups g: the tests at the current
  // point, then the damped step (retried with more damping, lane by lane, where Cholesky
  // fails).  Each phase runs for every group before the next phase (the secular equation's
  // iterations too), so that the groups' chains overlap; a group's arithmetic is its own.
  template <int G>
  static void propose_groups(Lanes* const (&g)[G]) {
    Round r[G];
    bool had[G];
    for (int k = 0; k < G; ++k) {
      had[k] = g[k]->active_ != 0;
      r[k].need = g[k]->active_;
      for (int j = 0; j < N; ++j) r[k].delta[j] = P(0);
    }
    while (true) {
      unsigned need = 0;
      for (int k = 0; k < G; ++k) need |= r[k].need;
      if (!need) break;
      for (int k = 0; k < G; ++k)
        if (r[k].need) g[k]->round_tests(r[k]);
      for (int it = 0; it < kRadiusIterations; ++it) {  // trust_step's loop, per group
        bool more = false;
        for (int k = 0; k < G; ++k) {
          if (!(r[k].need && any(r[k].fit.fit))) continue;
          radius_fit_iterate<kBounded>(g[k]->s_, r[k].held, r[k].fit, r[k].try_delta);
          more = true;
        }
        if (!more) break;
      }
      for (int k = 0; k < G; ++k)
        if (r[k].need) g[k]->round_end(r[k]);
    }
    for (int k = 0; k < G; ++k)
      if (had[k])
        g[k]->predicted_ = propose<kBounded>(g[k]->s_, g[k]->box_, r[k].delta, g[k]->q_,
                                             g[k]->step_);
  }

  // Steps 4a-4c for the lanes in r.need, the Gauss-Newton step and the start of 4d's fit.
  void round_tests(Round& r) {
    const unsigned need = r.need;
    held_set<kBounded>(s_, box_, r.held);
    r.gtol = need & gtol_reached(s_.cur, r.held, P(o_.gtol)).bits();
    P gain;
    const M gn_ok = gauss_newton_step<kBounded>(s_, r.held, r.try_delta, gain);
    // (The tests and the step only in the lanes that need them: a lane without a
    // problem, or one that ends here, would otherwise keep every lane's settling check
    // and secular-equation loop running.)
    r.ftol = need & ~r.gtol &
             settled<kBounded>(s_, box_,
                               M::from_bits(need & ~r.gtol) && gn_ok && gain <= ftol_at_p(s_, o_),
                               o_).bits();
    // Step 4c: a spent budget is extended where the cost still falls.
    const unsigned spent = need & ~r.gtol & ~r.ftol & M{nfev_ >= budget_}.bits();
    r.max_nfev = spent;
    if (spent) {
      const unsigned more =
          spent & M{budget_ < (I{} + cap_)}.bits() & still_improving(s_, o_).bits();
      const I extend = M::from_bits(more).m;
      const I room = (I{} + cap_) - budget_;
      const I next = budget_ + ((room > (I{} + o_.max_nfev)) & (I{} + o_.max_nfev)) +
                     (~(room > (I{} + o_.max_nfev)) & room);
      budget_ = (extend & next) | (~extend & budget_);
      s_.F_mark = select(M::from_bits(more), s_.cur.cost, s_.F_mark);
      r.max_nfev = spent & ~more;
    }
    r.go_on = need & ~r.gtol & ~r.ftol & ~r.max_nfev;
    r.lambda = s_.lambda;
    r.nu = s_.nu;
    r.fit = radius_fit_start<kBounded>(s_, gn_ok, r.try_delta, M::from_bits(r.go_on));
  }

  // The rest of step 4d after the fit: the steps found, the lanes that end here written,
  // and the lanes whose solve failed left in r.need with more damping.
  void round_end(Round& r) {
    const unsigned go_on = r.go_on;
    const unsigned ok = radius_fit_finish<kBounded>(s_, r.held, r.fit, r.try_delta).bits();
    const M stays = M::from_bits(~go_on);  // lanes that take no step here keep their damping
    s_.lambda = select(stays, r.lambda, s_.lambda);
    s_.nu = select(stays, r.nu, s_.nu);
    if (go_on & ok) {
      const M solved = M::from_bits(go_on & ok);
      for (int j = 0; j < N; ++j) r.delta[j] = select(solved, r.try_delta[j], r.delta[j]);
    }
    for (unsigned b = r.gtol; b;) finish(pop(b), kGtol);
    for (unsigned b = r.ftol; b;) finish(pop(b), kFtol);
    for (unsigned b = r.max_nfev; b;) finish(pop(b), kMaxNfev);
    const unsigned failed = go_on & ~ok;
    r.need = failed;
    if (failed) {
      raise_damping(s_, M::from_bits(failed));
      const unsigned over = failed & (s_.lambda > P(o_.max_damping)).bits();
      for (unsigned b = over; b;) finish(pop(b), kNoProgress);
      r.need = failed & ~over;
    }
  }

  const Batch<double>& b_;
  const Options& o_;
  P *x_, *t_, *sigma_, *w_;  // lane-interleaved point data
  double* resampled_;        // the weights or targets of the resample being loaded, scratch
  int n_[W];                 // points of each lane's problem
  int filled_[W];            // entries of each lane's column that may hold nonzero weights
  long long prob_[W];        // each lane's problem, -1 for none
  unsigned active_ = 0;      // bit k: lane k has a problem
  unsigned fresh_ = 0;       // bit k: q is lane k's p0, evaluated but not yet started from
  unsigned grid_loaded_ = 0;  // bit k: lane k's x column holds the shared grid (x_shared)
  unsigned unit_w_ = 0;      // bit k: lane k's weights are 1 for its filled_[k] points
  bool resized_ = false;     // lanes changed since the points to evaluate were counted
  bool src_done_ = false;    // the source has no more problems for this thread
  ProblemData<P> d_{};       // the lanes' points, as evaluate() reads them
  I nfev_{}, nit_{};
  I budget_{};               // each lane's evaluation budget (step 4c)
  const int cap_ = o_.max_nfev_cap > o_.max_nfev ? o_.max_nfev_cap : o_.max_nfev;
  // Vector state; lanes without a problem hold zeros or stale values that nothing reads.
  ProblemBox<P, N> box_{};
  State<P, N> s_{};
  P q_[N]{}, step_[N]{}, predicted_{};
  Evaluation<P, N> trial_{};
};

LAWFIT_NAMESPACE_END
