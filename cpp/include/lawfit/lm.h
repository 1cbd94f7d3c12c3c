// lm.h: the per-problem Levenberg-Marquardt solve, templated on the model and the scalar.
//
// One problem, one start: no heap, sizes fixed by Model::kParams, so the CPU driver, a SIMD
// driver and the CUDA kernels all instantiate this same code.  The NumPy reference
// (python/lawfit/reference/lm.py) implements the algorithm below independently, step for
// step; keep the two in agreement when either changes.
//
// The algorithm
// -------------
// Data of one problem: points i with inputs x_i, target t_i (y_i, or log y_i for log
// residuals), scale s_i (sigma, default 1) and weight w_i >= 0 (default 1; a bootstrap
// multiplicity).  Points with w_i = 0 take no part in anything.
//
// 0. Inputs: a model with kLogInputs (models/common.h) receives log x, taken once per batch
//    before any solve (by the Python layer, vectorised); x <= 0 then shows up as a
//    non-finite input in step 1.
// 1. Checks, in this order, each ending the solve with its status:
//    any used point with a non-finite x, t or s, or s <= 0  -> kNonfiniteData;
//    fewer used points than free parameters (lower < upper)  -> kTooFewPoints;
//    p0 not finite or outside [lower, upper]                 -> kInvalidInput.
// 2. Evaluation at p (one "nfev"): for each used point
//      r_i = (f_i - t_i) / s_i,  row_i = grad f_i / s_i           (linear residuals)
//      r_i = (log f_i - t_i) / s_i,  row_i = grad log f_i / s_i   (log residuals)
//    then the robust loss (loss.h) gives cost_i and the scaled f_s,i = a_i r_i and
//    J_s,i = b_i row_i;  F = sum cost_i,  g = sum J_s,i f_s,i,  A = sum J_s,i J_s,i^T.
//    The evaluation is finite when F, every g_j and every A_jk are (each
//    checked on its own: finite values may overflow when added).
//    If the evaluation at p0 is not finite -> kNonfiniteInitial.
// 3. Scales: D_j = A_jj at p0 (1 where that is 0); after every accepted step
//    D_j = max(D_j, A_jj) (MINPACK's diag).  d_j = sqrt(D_j).  The trust radius starts at
//    kRadiusFactor ||d p0|| (kRadiusFactor where that is 0); lambda = initial_damping,
//    nu = 2; the budget is max_nfev, its mark F_mark = F(p0).  (Norms of d-scaled vectors
//    run over the free parameters.)
// 4. Loop:
//    a. Active set: parameter j is held when it is fixed (lower_j == upper_j), or when
//       p_j <= lower_j and g_j > 0, or p_j >= upper_j and g_j < 0.
//    b. gtol: if F == 0, or max over free, not held j with A_jj > 0 of
//       |g_j| / (sqrt(A_jj) sqrt(2 F)) <= gtol, where some A_jj > 0 (a model whose Jacobian
//       is zero, every term underflowed, sits on a plateau, not at a minimum)  -> kGtol.  (MINPACK's cosine between the
//       residual vector and the Jacobian's columns; with a robust loss sqrt(2 F) stands in
//       for ||f_s||, which the loss scaling inflates by up to 1/sqrt(eps) for outer points.)
//       Then the Gauss-Newton step at p, delta_gn (step d's first step): where its solve
//       succeeds and it predicts a reduction -(g . delta_gn + 0.5 delta_gn^T A delta_gn)
//       <= max(min(kSettledShare ftol, floor), kRoundingGain eps) F (floor as in g, eps the
//       precision's epsilon), and so does the settling step of g (its model's reduction, as
//       in g), which is well defined where A is singular  -> kFtol: the next step would
//       change nothing ftol cares about, by no more than rounding resolves (and whether it
//       lowered the cost at all would be rounding's choice).
//    c. Budget: if nfev >= budget, then where budget < max_nfev_cap and the cost fell by
//       more than ftol and rounding resolve since the mark (F_mark - F > max(ftol, floor) F,
//       floor = kRoundingFloor times the precision's epsilon): budget += max_nfev
//       (at most max_nfev_cap), F_mark = F; otherwise -> kMaxNfev.
//    d. The step within the radius (Moré's Levenberg-Marquardt parameter, as MINPACK's
//       lmpar).  A damped step solves (A + lambda diag(D)) delta = -g over the free, not
//       held parameters (delta_j = 0 for the others) by Cholesky, as L D L^T (no square
//       roots; the pivots d_j are L L^T's squared diagonal); it fails on a non-positive or
//       non-finite pivot.  First the Gauss-Newton step, lambda = kMinDamping (from b): taken
//       when it does not fail and ||d delta|| <= 1.1 radius.  Otherwise lambda is fitted to the
//       secular equation ||d delta(lambda)|| = radius: from max(lambda, kMinDamping), up to
//       kRadiusIterations times, the step at lambda, q = ||d delta||; done when it did not
//       fail and |q - radius| <= kRadiusTolerance radius; else, where it did not fail,
//       Newton's step  lambda = max(lambda + (q - radius) / radius * q^2 / (v . u),
//       lambda / 10)  with v = D delta over the parameters not held and u the damped solve
//       of A u = v at lambda (the same system, right-hand side v; 1 where v . u <= 0), and
//       where it failed lambda *= nu, nu *= 2; then, if the fit was not done, the step at
//       the last lambda.  If that step fails: lambda *= nu, nu *= 2; if lambda >
//       max_damping -> kNoProgress; otherwise back to d.  A step longer than the radius is
//       shortened to it (delta *= radius / q).
//    e. Trial q = clip(p + delta, lower, upper); step = q - p;
//       predicted = -(g . step + 0.5 step^T A step).  Evaluate at q (nfev += 1, nit += 1).
//       actual = F(p) - F(q) if the evaluation is finite, else -infinity.
//       ratio = actual / predicted if predicted > 0, else 0.
//    f. Accept when the evaluation is finite and either ratio > 1e-4 and actual >
//       kRoundingGain eps F_old (a smaller reduction is rounding's), or the step is
//       Gauss-Newton's (lambda = kMinDamping) with predicted <= floor F_old and actual >=
//       -floor F_old (floor = kRoundingFloor eps: below it the cost's rounding cannot judge
//       the step and the model, from the accurately summed gradient, is trusted):
//       p = q (with its F, g, A), update D
//       (step 3).  nu = 2.  The radius, as MINPACK's, with s = ||d step|| and d
//       the scales the step was computed with (before the update): after the first step
//       radius = min(radius, s); then radius = 0.5 min(radius, 10 s) where the step was
//       rejected or ratio < 0.25 (and at most 0.9 s after a rejected Gauss-Newton step, so
//       that the next trial differs),
//       radius = 2 s where ratio >= 0.75 or the step was Gauss-Newton's (lambda =
//       kMinDamping); otherwise it is kept.
//    g. With F_old the cost before the step and d the scales the step was computed with:
//       ftol_ok = finite and |actual| <= ftol F_old and predicted <= ftol F_old and ratio <= 2;
//       xtol_ok = ||d * step|| <= xtol ||d * p_old||.
//       Either counts only where Gauss-Newton sees no material progress left at the current
//       point (p, after f): its settling step delta_c, the step of the model
//       A_c = A + u u^T / kappa (A where kappa = 0; u, kappa from the last accepted step,
//       below) damped by floor diag(A) (floor = kRoundingFloor times the precision's
//       epsilon; the parameters held at p, and columns with A_jj = 0, held), predicts a
//       reduction -(g . delta_c + 0.5 delta_c^T A_c delta_c) <= max(ftol, floor) F, or is
//       short, ||d delta_c|| <= max(xtol, floor) ||d p||, with the updated d.  (The step
//       tests alone fire on a slow stretch far from any minimum, where a heavily damped step
//       is short and changes the cost little.)  u and kappa: at an accepted step s,
//       u = (g(q) - g(p)) - A(q) s and kappa = u . s where kappa > s^T A(q) s and kappa >
//       floor sum_j |s_j| (|g_j(q)| + |g_j(p)|) (curvature beyond the Gauss-Newton model's,
//       larger than its own and than rounding of g can make), else u = 0, kappa = 0: a
//       symmetric rank-one secant correction, so that where the residuals' own curvature
//       dominates (a Jacobian that vanishes at a minimum with nonzero residuals) A's promise
//       is not trusted.  Only a step that lowered the cost by more than floor F_old updates
//       u and kappa (a smaller one keeps them: its change of g is rounding's).
//       Both -> kFtolXtol; ftol_ok -> kFtol; xtol_ok -> kXtol.
//       If the step was rejected and lambda > max_damping, or the radius is at most the
//       precision's epsilon times ||d p|| (no step that rounding can tell from none)
//       -> kNoProgress.
//    Sums of products (F, g and A over the points, the Cholesky solve, the predicted
//    reduction) add each product with a fused multiply-add (hd.h's fmadd): one rounding
//    per term, the same on every instruction set.
// 5. Output (a solve that ends in step 1 reports p0, NaN cost and zero counts; one that ends
//    with kNonfiniteInitial reports p0, the cost at p0 and nfev = 1; both NaN optimality and
//    NaN A): p, F, the status, nfev, nit, optimality = max |g_j| over free, not held j,
//    active_mask_j = -1 if p_j <= lower_j, +1 if p_j >= upper_j, else 0 (a fixed parameter
//    reports -1), and A at p (the Gauss-Newton matrix, for covariances).
#pragma once

#include "hd.h"
#include "loss.h"
#include "models/common.h"
#include "options.h"
#include "status.h"

LAWFIT_NAMESPACE_BEGIN

// One problem's data, as pointers into the batch's flat arrays.
template <class T>
struct ProblemData {
  const T* x;      // n * Model::kInputs, point-major
  const T* t;      // n targets: y, or log y for log residuals
  const T* sigma;  // n scales, or nullptr for all ones
  const T* w;      // n weights, or nullptr for all ones
  int n;
  // The weights are all 0 or 1 (the SIMD driver's padding of a batch without weights), so
  // sqrt(w) is w: the linear loss then costs no square root per point.
  bool w_binary = false;
  // The model's context (Batch::model_ctx): a user's law's program (tape.h); nullptr for
  // the built-ins.
  const void* ctx = nullptr;
};

// One problem's bounds and start.
template <class T, int N>
struct ProblemBox {
  T p0[N];
  T lower[N];
  T upper[N];
};

template <class T, int N>
struct Summary {
  T p[N];
  T cost;
  T optimality;
  T jtj[N * N];
  signed char active[N];
  int status = kNotRun;
  int nfev = 0;
  int njev = 0;
  int nit = 0;
};

// The quantities of one evaluation (step 2 of the algorithm).
template <class T, int N>
struct Evaluation {
  T cost;
  T g[N];
  T A[N * N];  // full symmetric matrix
  MaskOf<T> finite;
};

// What the loop carries from one iteration to the next (steps 3 and 4).
template <class T, int N>
struct State {
  T p[N];
  T D[N];  // the scales, the running maximum of diag(A)
  T lambda, nu;
  T radius;            // the trust radius of ||d delta||
  T x_norm;            // ||d p||, with the current scales (start and judge keep it)
  T F_mark;            // the cost when the budget was last set (step 4c)
  MaskOf<T> first;     // no step taken yet
  MaskOf<T> fixed[N];  // lower_j == upper_j
  Evaluation<T, N> cur;  // at p
  // The curvature the cost showed beyond A along the last accepted step (step 4f): u = y - A s
  // and kappa = u . s > 0, else kappa = 0 (none seen).
  T sec_u[N];
  T sec_k;
  // The settling step at p where judge() computed it (step 4g) after its last change of the
  // state: whether its solve held and the reduction it predicts, which step 4b's ftol test
  // at the same point then reads rather than solving again (settled(); the same bits).
  MaskOf<T> settle_known, settle_ok;
  T settle_gain;
};

// What the test after a trial step found (steps 4f and 4g).
template <class T>
struct Verdict {
  MaskOf<T> accept, ftol_ok, xtol_ok;
  MaskOf<T> stalled;  // lambda > max_damping, or a radius below rounding
};

// The precision's machine epsilon (a SIMD pack's is its lanes' double's).
template <class T>
LAWFIT_HD constexpr double epsilon_of() {
  return sizeof(T) == sizeof(float) ? 1.1920928955078125e-07 : 2.220446049250313e-16;
}

// ||d v|| = sqrt(sum_j D_j v_j^2) over the free parameters.  (kBounded = false: a driver's
// promise that no parameter is fixed.)
template <bool kBounded = true, class T, int N>
LAWFIT_HD LAWFIT_FORCE_INLINE T scaled_norm(const T (&D)[N], const T* v,
                                             const MaskOf<T> (&fixed)[N]) {
  T sum = T(0);
  for (int j = 0; j < N; ++j) {
    const T term = D[j] * (v[j] * v[j]);
    if constexpr (kBounded) {
      sum += select(fixed[j], T(0), term);
    } else {
      sum += term;
    }
  }
  return sqrt(sum);
}

// The reduction of the cost that the quadratic model predicts for `step`:
// -(g . step + 0.5 step^T A step).
template <int N, class T>
LAWFIT_HD LAWFIT_FORCE_INLINE T predicted_reduction(const T* A, const T* g, const T* step) {
  T predicted = T(0);
  for (int j = 0; j < N; ++j) {
    T as = T(0);
    for (int k = 0; k < N; ++k) as = fmadd(A[j * N + k], step[k], as);
    predicted = fmadd(-step[j], fmadd(T(0.5), as, g[j]), predicted);
  }
  return predicted;
}

// Point i's residual from the model's value (or log value, for log residuals) and its
// gradient `row`, which it scales by sigma in place.
template <class T, int N>
LAWFIT_HD LAWFIT_FORCE_INLINE T residual_of(const ProblemData<T>& d, int i, T model, T* row) {
  if (d.sigma) {
    T inv_s = T(1) / d.sigma[i];
    for (int j = 0; j < N; ++j) row[j] *= inv_s;
    return (model - d.t[i]) * inv_s;
  }
  return model - d.t[i];
}

// Residual and gradient of one point, before the loss.
template <class Model, bool kLogResiduals, class T>
LAWFIT_HD LAWFIT_FORCE_INLINE T point_residual(const ProblemData<T>& d, int i, const T* p, T* row) {
  constexpr int N = Model::kParams;
  const T* xi = d.x + static_cast<long long>(i) * Model::kInputs;
  T model;
  if constexpr (kLogResiduals && HasLog<Model>::value) {
    model = model_eval_log<Model>(d.ctx, p, xi, row);
  } else if constexpr (kLogResiduals) {
    model = model_eval<Model>(d.ctx, p, xi, row);
    T inv = T(1) / model;
    for (int j = 0; j < N; ++j) row[j] *= inv;
    model = log(model);
  } else {
    model = model_eval<Model>(d.ctx, p, xi, row);
  }
  return residual_of<T, N>(d, i, model, row);
}

// Points per block of evaluate_points(): 8 (doubles and SIMD packs alike; for a pack 8 was
// measured ~1.3x faster than one point at a time on Chinchilla's Huber fits, whose loss is a
// latency-bound chain per point), or, for a model that evaluates a block of points at once
// (a law's tape, which dispatches once per operation for the whole block), its own count.
template <class Model, class T, bool = UsesContext<Model>::value>
struct PointBlock {
  static constexpr int value = 8;
};
template <class Model, class T>
struct PointBlock<Model, T, true> {
  static constexpr int value = Model::template kBlock<T>;
};

template <class T>
LAWFIT_HD LAWFIT_FORCE_INLINE T point_weight(const ProblemData<T>& d, int i) {
  return d.w ? d.w[i] : T(1);
}

// Step 2 for one loss and residual space, fixed at compile time so that the loop over points
// carries no branch on them.  kPlain: the problem has neither weights nor scales (d.w and
// d.sigma are null), known at compile time, so that the loop carries no test of them.
template <class Model, Loss kLoss, bool kLogResiduals, bool kPlain, class T>
LAWFIT_HD void evaluate_points(const ProblemData<T>& data, const T* p, T f_scale,
                               Evaluation<T, Model::kParams>& e) {
  constexpr int N = Model::kParams;
  // A local copy whose pointers the compiler sees are null in the plain case.
  const ProblemData<T> d{data.x, data.t, kPlain ? nullptr : data.sigma,
                         kPlain ? nullptr : data.w, data.n, data.w_binary, data.ctx};
  T cost = T(0);
  T g[N], A[N * N];
  for (int j = 0; j < N; ++j) g[j] = T(0);
  for (int j = 0; j < N * N; ++j) A[j] = T(0);
  // Points go in blocks, in three passes over the block: the model (library calls such as
  // exp, which clobber every floating-point register on x86-64), then the loss (a chain of
  // dependent square roots and divisions per point: in a pass of its own, the chains of the
  // block's points overlap), then the accumulation, so the accumulators are spilled once per
  // block rather than once per point.  Each point gets the same arithmetic as one at a time.
  // A law's tape (UsesContext) evaluates the block's points at once, in one pass over its
  // program, the same arithmetic per point as one at a time.
#if defined(__CUDA_ARCH__)
  constexpr int kBlock = 1;
  constexpr bool kBlockEval = false;
#else
  constexpr int kBlock = PointBlock<Model, T>::value;
  constexpr bool kBlockEval = UsesContext<Model>::value;
#endif
  for (int i0 = 0; i0 < d.n; i0 += kBlock) {
    const int nb = d.n - i0 < kBlock ? d.n - i0 : kBlock;
    // A point's cost is cost_a * cost_m, added with one rounding: (w r / 2) * r for the
    // linear loss, the loss's cost * 1 for the others.
    T r_b[kBlock], fs_b[kBlock], cost_a[kBlock], cost_m[kBlock], jr_b[kBlock][N];
    T model_b[kBlockEval ? kBlock : 1], row_b[kBlockEval ? kBlock : 1][N];
    if constexpr (kBlockEval)
      Model::template eval_block<kLogResiduals>(
          d.ctx, p, d.x + static_cast<long long>(i0) * Model::kInputs, nb, model_b, row_b);
    for (int b = 0; b < nb; ++b) {  // the residuals and their gradients (in jr_b)
      const int i = i0 + b;
      if constexpr (kBlockEval) {
        for (int j = 0; j < N; ++j) jr_b[b][j] = row_b[b][j];
        r_b[b] = residual_of<T, N>(d, i, model_b[b], jr_b[b]);
      } else {
        r_b[b] = point_residual<Model, kLogResiduals>(d, i, p, jr_b[b]);
      }
    }
    for (int b = 0; b < nb; ++b) {  // the loss
      const int i = i0 + b;
      const T w = point_weight(d, i);
      const auto used = w > T(0);
      const T r = r_b[b];
      Scaled<T> sc;
      // Unused points contribute exact zeros, even where the model is NaN there.
      if constexpr (kLoss == Loss::kLinear) {
        T sw = !d.w ? T(1)
                    : (d.w_binary ? select(used, T(1), T(0)) : sqrt(select(used, w, T(1))));
        sc = {T(0), sw, sw};
        cost_a[b] = select(used, T(0.5) * w * r, T(0));
        cost_m[b] = select(used, r, T(0));
      } else {
        sc = robust_scale(kLoss, f_scale, r, select(used, w, T(1)));
        cost_a[b] = select(used, sc.cost, T(0));
        cost_m[b] = T(1);
      }
      fs_b[b] = select(used, sc.r_factor * r, T(0));
      for (int j = 0; j < N; ++j) jr_b[b][j] = select(used, sc.j_factor * jr_b[b][j], T(0));
    }
    for (int b = 0; b < nb; ++b) {
      const T fs = fs_b[b];
      const T* jr = jr_b[b];
      cost = fmadd(cost_a[b], cost_m[b], cost);
      for (int j = 0; j < N; ++j) {
        g[j] = fmadd(jr[j], fs, g[j]);
        for (int k = 0; k <= j; ++k) A[j * N + k] = fmadd(jr[j], jr[k], A[j * N + k]);
      }
    }
  }
  auto finite = is_finite(cost);
  for (int j = 0; j < N; ++j) {
    finite = finite && is_finite(g[j]);
    for (int k = 0; k <= j; ++k) {
      finite = finite && is_finite(A[j * N + k]);
      A[k * N + j] = A[j * N + k];
    }
  }
  e.cost = cost;
  for (int j = 0; j < N; ++j) e.g[j] = g[j];
  for (int j = 0; j < N * N; ++j) e.A[j] = A[j];
  e.finite = finite;
}

template <class Model, Loss kLoss, bool kLogResiduals, class T>
LAWFIT_HD void evaluate_as(const ProblemData<T>& d, const T* p, T f_scale,
                           Evaluation<T, Model::kParams>& e) {
#if !defined(__CUDACC__)
  // On the CPU, the common case gets its own loop (the same arithmetic: a weight of 1 and
  // no scale are what the general loop uses when the pointers are null).  The GPU keeps
  // one loop, for its registers and its build time.
  if (!d.w && !d.sigma) return evaluate_points<Model, kLoss, kLogResiduals, true>(d, p, f_scale, e);
#endif
  evaluate_points<Model, kLoss, kLogResiduals, false>(d, p, f_scale, e);
}

// The evaluation with the robust loss chosen at run time (o.loss), in the residual space
// kLogResiduals.
template <class Model, bool kLogResiduals, class T>
LAWFIT_HD void evaluate_with_loss(const ProblemData<T>& d, const T* p, const Options& o,
                               Evaluation<T, Model::kParams>& e) {
  const T c = T(o.f_scale);
  switch (o.loss) {
    case Loss::kSoftL1: return evaluate_as<Model, Loss::kSoftL1, kLogResiduals>(d, p, c, e);
    case Loss::kHuber: return evaluate_as<Model, Loss::kHuber, kLogResiduals>(d, p, c, e);
    case Loss::kCauchy: return evaluate_as<Model, Loss::kCauchy, kLogResiduals>(d, p, c, e);
    case Loss::kArctan: return evaluate_as<Model, Loss::kArctan, kLogResiduals>(d, p, c, e);
    case Loss::kLinear:
    default: return evaluate_as<Model, Loss::kLinear, kLogResiduals>(d, p, c, e);
  }
}

// How a solve picks its loss and residual space: from Options at run time (one
// instantiation serves all), or fixed at compile time, for drivers that dispatch once per
// batch (a GPU kernel then carries the registers of one objective only).
struct RuntimeObjective {};
template <Loss kLoss, bool kLogResiduals>
struct FixedObjective {};

// Step 2 of the algorithm: cost, gradient and Gauss-Newton matrix at p.
template <class Model, class T>
LAWFIT_HD void evaluate(const ProblemData<T>& d, const T* p, const Options& o,
                        Evaluation<T, Model::kParams>& e, RuntimeObjective = {}) {
  if (o.log_residuals) {
    evaluate_with_loss<Model, true>(d, p, o, e);
  } else {
    evaluate_with_loss<Model, false>(d, p, o, e);
  }
}

template <class Model, class T, Loss kLoss, bool kLogResiduals>
LAWFIT_HD void evaluate(const ProblemData<T>& d, const T* p, const Options& o,
                        Evaluation<T, Model::kParams>& e, FixedObjective<kLoss, kLogResiduals>) {
  evaluate_as<Model, kLoss, kLogResiduals>(d, p, T(o.f_scale), e);
}

// The objective alone, what a grid of starts is ranked by: the cost evaluate() computes, the
// same arithmetic point by point in the same order, without the gradient and the
// Gauss-Newton matrix.  Its two steps are shared with the grid objective under resampling
// (cpu_driver.h, grid_objective: each start's point values computed once, then summed under
// every resample's weights): point_value(), a point's value before its weight, and
// add_point_cost(), the weighted point's cost added to a running sum.  As in
// evaluate_points(), the linear loss adds (0.5 w r) * r with one rounding, the others
// (0.5 C^2 rho) * w; a point with w = 0 adds an exact zero (given v = 0), so a driver may
// skip it.
template <class T>
LAWFIT_HD LAWFIT_FORCE_INLINE T point_value(Loss loss, T r, T f_scale) {
  if (loss == Loss::kLinear) return r;
  const T inv_c = T(1) / f_scale;
  return unweighted_cost(f_scale, eval_loss(loss, scaled_square(r, inv_c)).rho);
}

template <Loss kLoss, class T>
LAWFIT_HD LAWFIT_FORCE_INLINE T add_point_cost(T cost, T v, T w) {
  if constexpr (kLoss == Loss::kLinear) {
    return fmadd(T(0.5) * w * v, v, cost);
  } else {
    return fmadd(v * w, T(1), cost);
  }
}

template <class Model, Loss kLoss, bool kLogResiduals, class T>
LAWFIT_HD T objective_as(const ProblemData<T>& d, const T* p, T f_scale) {
  T cost = T(0);
  for (int i = 0; i < d.n; ++i) {
    const T w = point_weight(d, i);
    const auto used = w > T(0);
    T row[Model::kParams];
    const T v = point_value(kLoss, point_residual<Model, kLogResiduals>(d, i, p, row), f_scale);
    cost = add_point_cost<kLoss>(cost, select(used, v, T(0)), select(used, w, T(0)));
  }
  return cost;
}

template <class Model, bool kLogResiduals, class T>
LAWFIT_HD T objective_with_loss(const ProblemData<T>& d, const T* p, const Options& o) {
  const T c = T(o.f_scale);
  switch (o.loss) {
    case Loss::kSoftL1: return objective_as<Model, Loss::kSoftL1, kLogResiduals>(d, p, c);
    case Loss::kHuber: return objective_as<Model, Loss::kHuber, kLogResiduals>(d, p, c);
    case Loss::kCauchy: return objective_as<Model, Loss::kCauchy, kLogResiduals>(d, p, c);
    case Loss::kArctan: return objective_as<Model, Loss::kArctan, kLogResiduals>(d, p, c);
    case Loss::kLinear:
    default: return objective_as<Model, Loss::kLinear, kLogResiduals>(d, p, c);
  }
}

// The cost at p (NaN or infinite where a used point's residual is not finite).
template <class Model, class T>
LAWFIT_HD T objective_value(const ProblemData<T>& d, const T* p, const Options& o,
                            RuntimeObjective = {}) {
  return o.log_residuals ? objective_with_loss<Model, true>(d, p, o)
                         : objective_with_loss<Model, false>(d, p, o);
}

template <class Model, class T, Loss kLoss, bool kLogResiduals>
LAWFIT_HD T objective_value(const ProblemData<T>& d, const T* p, const Options& o,
                            FixedObjective<kLoss, kLogResiduals>) {
  return objective_as<Model, kLoss, kLogResiduals>(d, p, T(o.f_scale));
}

// dst = src where `which` holds.
template <class T, int N>
LAWFIT_HD LAWFIT_INLINE void assign(Evaluation<T, N>& dst, const Evaluation<T, N>& src,
                                    MaskOf<T> which) {
  dst.cost = select(which, src.cost, dst.cost);
  for (int j = 0; j < N; ++j) dst.g[j] = select(which, src.g[j], dst.g[j]);
  for (int j = 0; j < N * N; ++j) dst.A[j] = select(which, src.A[j], dst.A[j]);
  dst.finite = select(which, src.finite, dst.finite);
}

// Step 3: the state at p0, from the evaluation there.
template <class T, int N>
LAWFIT_HD LAWFIT_INLINE void start(State<T, N>& s, const ProblemBox<T, N>& box,
                                   const Evaluation<T, N>& e, const Options& o) {
  for (int j = 0; j < N; ++j) {
    s.p[j] = box.p0[j];
    s.fixed[j] = !(box.lower[j] < box.upper[j]);
    const T ajj = e.A[j * N + j];
    s.D[j] = select(ajj > T(0), ajj, T(1));
  }
  s.lambda = T(o.initial_damping);
  s.nu = T(2);
  s.cur = e;
  const T x_norm = scaled_norm(s.D, s.p, s.fixed);
  s.x_norm = x_norm;
  s.radius = T(kRadiusFactor) * select(x_norm > T(0), x_norm, T(1));
  s.F_mark = e.cost;
  s.first = T(0) == T(0);
  for (int j = 0; j < N; ++j) s.sec_u[j] = T(0);
  s.sec_k = T(0);
  s.settle_known = s.settle_ok = !(T(0) == T(0));
  s.settle_gain = T(0);
}

// Step 4a: the parameters held this iteration (fixed, or at a bound the gradient pushes
// against).  kBounded = false: a driver's promise that every bound is infinite, so that
// nothing is fixed and no finite parameter is at a bound: none is held.
template <bool kBounded = true, class T, int N>
LAWFIT_HD LAWFIT_INLINE void held_set(const State<T, N>& s, const ProblemBox<T, N>& box,
                                      MaskOf<T>* held) {
  if constexpr (!kBounded) {
    for (int j = 0; j < N; ++j) held[j] = !(T(0) == T(0));
    return;
  }
  for (int j = 0; j < N; ++j) {
    held[j] = s.fixed[j] || (s.p[j] <= box.lower[j] && s.cur.g[j] > T(0)) ||
              (s.p[j] >= box.upper[j] && s.cur.g[j] < T(0));
  }
}

// Whether the model depends on its parameters at all (some A_jj > 0).  Where the Jacobian is
// zero (say every term of the law has underflowed) the cost is flat in every direction, and
// no convergence is claimed there: it is a plateau, not a minimum.
template <class T, int N>
LAWFIT_HD LAWFIT_INLINE MaskOf<T> depends_on_parameters(const Evaluation<T, N>& cur) {
  auto some = !(T(0) == T(0));
  for (int j = 0; j < N; ++j) some = some || cur.A[j * N + j] > T(0);
  return some;
}

// Step 4b: the gtol test at the current point.
template <class T, int N>
LAWFIT_HD LAWFIT_FORCE_INLINE MaskOf<T> gtol_reached(const Evaluation<T, N>& cur,
                                                     const MaskOf<T>* held, T gtol) {
  // max_j |g_j| / (sqrt(A_jj) sqrt(2 F)) <= gtol, tested without dividing: each term
  // against gtol times its denominator.
  const T fnorm = sqrt(T(2) * cur.cost);
  const T bound = gtol * select(fnorm > T(0), fnorm, T(1));
  auto ok = cur.cost == cur.cost;
  for (int j = 0; j < N; ++j) {
    const T ajj = cur.A[j * N + j];
    const auto use = !held[j] && ajj > T(0);
    ok = ok && (!use || abs(cur.g[j]) <= bound * sqrt(select(use, ajj, T(1))));
  }
  return cur.cost == T(0) || (ok && depends_on_parameters(cur));
}

// Step 4d's factorisation of A + lambda diag(D) over the parameters not held, in the
// square-root-free Cholesky form L D L^T (L unit lower triangular; inv[j] = 1 / d_j).
template <class T, int N>
struct DampedFactor {
  T L[N * N];
  T inv[N];
};

// Factors A + lambda diag(D) (held rows and columns replaced by the identity's) into f.
// False (per lane) on a non-positive or non-finite pivot.  (kBounded = false: the caller's
// promise that nothing is held, as held_set's; the masks are then not read.)
template <int N, bool kBounded = true, class T>
LAWFIT_HD LAWFIT_STEP_INLINE MaskOf<T> damped_factor(const T* A, const T* D, T lambda,
                                                     const MaskOf<T>* held,
                                                     DampedFactor<T, N>& f) {
  T* L = f.L;
  for (int j = 0; j < N; ++j) {
    if constexpr (kBounded) {
      for (int k = 0; k < N; ++k) {
        const auto live = !held[j] && !held[k];
        L[j * N + k] = select(live, A[j * N + k], T(0));
      }
      L[j * N + j] = select(held[j], T(1), fmadd(lambda, D[j], A[j * N + j]));
    } else {
      for (int k = 0; k < N; ++k) L[j * N + k] = A[j * N + k];
      L[j * N + j] = fmadd(lambda, D[j], A[j * N + j]);
    }
  }
  // The same pivots d_j as L L^T's squared diagonal, without a square root.  Lower triangle
  // in place: first the unscaled column U_ij = L_ij d_j, then L_ij = U_ij / d_j, so that the
  // rest multiplies (one division per pivot in all).
  MaskOf<T> ok = T(0) == T(0);
  for (int j = 0; j < N; ++j) {
    T s = L[j * N + j];
    for (int k = 0; k < j; ++k) s = fmadd(-L[j * N + k], L[k * N + j], s);  // U_jk L_jk
    ok = ok && s > T(0) && is_finite(s);
    f.inv[j] = T(1) / select(s > T(0), s, T(1));
    for (int i = j + 1; i < N; ++i) {
      T t = L[i * N + j];
      for (int k = 0; k < j; ++k) t = fmadd(-L[i * N + k], L[k * N + j], t);  // L_ik U_jk
      L[j * N + i] = t;              // U_ij, kept in the upper triangle
      L[i * N + j] = t * f.inv[j];   // L_ij
    }
  }
  return ok;
}

// Solves (A + lambda diag(D)) out = rhs with f (held parameters get out_j = 0).
// (kBounded as for damped_factor.)
template <int N, bool kBounded = true, class T>
LAWFIT_HD LAWFIT_STEP_INLINE void damped_apply(const DampedFactor<T, N>& f, const T* rhs,
                                               const MaskOf<T>* held, T* out) {
  const T* L = f.L;
  T b[N];
  for (int j = 0; j < N; ++j) b[j] = kBounded ? select(held[j], T(0), rhs[j]) : rhs[j];
  // L y = b, then D L^T out = y.
  for (int j = 0; j < N; ++j) {
    T s = b[j];
    for (int k = 0; k < j; ++k) s = fmadd(-L[j * N + k], b[k], s);
    b[j] = s;
  }
  for (int j = N - 1; j >= 0; --j) {
    T s = b[j] * f.inv[j];
    for (int k = j + 1; k < N; ++k) s = fmadd(-L[k * N + j], b[k], s);
    b[j] = s;
  }
  for (int j = 0; j < N; ++j) out[j] = kBounded ? select(held[j], T(0), b[j]) : b[j];
}

// Step 4d: solves (A + lambda diag(D)) delta = -g over the parameters not held; held
// parameters get delta_j = 0.  False (per lane) on a non-positive or non-finite pivot.
// (kBounded as for damped_factor.)
template <int N, bool kBounded = true, class T>
LAWFIT_HD MaskOf<T> damped_solve(const T* A, const T* g, const T* D, T lambda,
                                 const MaskOf<T>* held, T* delta) {
  DampedFactor<T, N> f;
  const auto ok = damped_factor<N, kBounded>(A, D, lambda, held, f);
  T minus_g[N];
  for (int j = 0; j < N; ++j) minus_g[j] = -g[j];
  damped_apply<N, kBounded>(f, minus_g, held, delta);
  return ok;
}

// Step 4d's failure, and 4f's rejection: lambda *= nu, nu *= 2 where `which` holds.
template <class T, int N>
LAWFIT_HD LAWFIT_INLINE void raise_damping(State<T, N>& s, MaskOf<T> which) {
  s.lambda = select(which, s.lambda * s.nu, s.lambda);
  s.nu = select(which, s.nu * T(2), s.nu);
}

// Step 4c: whether the cost fell by more than max(ftol, floor) F since the budget was set
// (floor = kRoundingFloor epsilons): a change that ftol and rounding both resolve.
template <class T, int N>
LAWFIT_HD LAWFIT_INLINE MaskOf<T> still_improving(const State<T, N>& s, const Options& o) {
  const T floor = T(kRoundingFloor) * epsilon_of<T>();
  return s.F_mark - s.cur.cost > max(T(o.ftol), floor) * s.cur.cost;
}

// Step 4b's bound on the Gauss-Newton step's predicted reduction:
// max(min(kSettledShare ftol, floor), kRoundingGain eps) F.
template <class T, int N>
LAWFIT_HD LAWFIT_INLINE T ftol_at_p(const State<T, N>& s, const Options& o) {
  const T eps = T(epsilon_of<T>());
  return max(min(T(kSettledShare * o.ftol), T(kRoundingFloor) * eps), T(kRoundingGain) * eps) *
         s.cur.cost;
}

// Step 4b's Gauss-Newton step (lambda = kMinDamping) into `delta`, and the reduction it
// predicts into `gain`; false (per lane) where its solve failed.  (kBounded = false, as for
// held_set: nothing is held.)
template <bool kBounded = true, class T, int N>
LAWFIT_HD LAWFIT_INLINE MaskOf<T> gauss_newton_step(const State<T, N>& s,
                                                    const MaskOf<T>* held, T* delta, T& gain) {
  const auto ok = damped_solve<N, kBounded>(s.cur.A, s.cur.g, s.D, T(kMinDamping), held, delta);
  gain = predicted_reduction<N>(s.cur.A, s.cur.g, delta);
  return ok;
}

// Step 4d's fit of lambda to the radius (the secular equation), one Newton iteration at a
// time: trust_step() runs it for one group of lanes; a SIMD driver runs several groups'
// iterations side by side, so that their chains of dependent divisions overlap (each group's
// arithmetic is its own, the same bits either way).
template <class T>
struct RadiusFit {
  T q;          // ||d delta|| of the current step
  T lambda, nu;
  MaskOf<T> fit;  // the lanes still fitting lambda
  MaskOf<T> ok;   // the lanes whose last damped solve succeeded
};

// The fit's start from the Gauss-Newton step in `delta` (solved where `ok` holds): the lanes
// in `live` whose step fails or is longer than 1.1 radius fit lambda, from max(lambda,
// kMinDamping).
template <bool kBounded = true, class T, int N>
LAWFIT_HD LAWFIT_INLINE RadiusFit<T> radius_fit_start(const State<T, N>& s, MaskOf<T> ok,
                                                      const T* delta, MaskOf<T> live) {
  const T lambda_gn = T(kMinDamping);
  const T q = scaled_norm<kBounded>(s.D, delta, s.fixed);
  const auto fit = live && !(ok && q <= T(1.1) * s.radius);
  return {q, select(fit, max(s.lambda, lambda_gn), lambda_gn), s.nu, fit, ok};
}

// One iteration of the fit: the step at r.lambda into `delta` (in the lanes still fitting),
// then Newton's step on the secular equation (or, where the solve failed, more damping).
template <bool kBounded = true, class T, int N>
LAWFIT_HD void radius_fit_iterate(const State<T, N>& s, const MaskOf<T>* held, RadiusFit<T>& r,
                                  T* delta) {
  const T* g = s.cur.g;
  const T radius = s.radius;
  const T lambda = r.lambda;
  const auto fit = r.fit;
  T d_fit[N], minus_g[N];
  DampedFactor<T, N> f;  // one factorisation for both solves
  const auto ok_fit = damped_factor<N, kBounded>(s.cur.A, s.D, lambda, held, f);
  for (int j = 0; j < N; ++j) minus_g[j] = -g[j];
  damped_apply<N, kBounded>(f, minus_g, held, d_fit);
  const T q_fit = scaled_norm<kBounded>(s.D, d_fit, s.fixed);
  for (int j = 0; j < N; ++j) delta[j] = select(fit, d_fit[j], delta[j]);
  r.ok = select(fit, ok_fit, r.ok);
  r.q = select(fit, q_fit, r.q);
  r.fit = fit && !(ok_fit && abs(q_fit - radius) <= T(kRadiusTolerance) * radius);
  // (Where no lane fits on, the rest would change nothing: lambda and nu move only in the
  // lanes still fitting.)
  if (!any(r.fit)) return;
  // Newton's step on the secular equation: v = D delta, u = (A + lambda D)^-1 v.
  T v[N], u[N];
  for (int j = 0; j < N; ++j)
    v[j] = kBounded ? select(held[j], T(0), s.D[j] * d_fit[j]) : s.D[j] * d_fit[j];
  damped_apply<N, kBounded>(f, v, held, u);
  T vu = T(0);
  for (int j = 0; j < N; ++j) vu = fmadd(v[j], u[j], vu);
  const T newton =
      lambda + (q_fit - radius) / radius * (q_fit * q_fit / select(vu > T(0), vu, T(1)));
  const auto failed = r.fit && !ok_fit;
  const T next = select(r.fit && ok_fit, max(newton, T(0.1) * lambda), lambda);
  r.lambda = select(failed, next * r.nu, next);
  r.nu = select(failed, r.nu * T(2), r.nu);
}

// The fit's end: the step at the last lambda where the fit ran out of iterations, s.lambda
// and s.nu as the fit left them, and the step shortened to the radius; false (per lane) where
// the last damped solve failed.
template <bool kBounded = true, class T, int N>
LAWFIT_HD MaskOf<T> radius_fit_finish(State<T, N>& s, const MaskOf<T>* held, RadiusFit<T>& r,
                                      T* delta) {
  const T radius = s.radius;
  if (any(r.fit)) {  // the last lambda's step
    T d_fit[N];
    const auto ok_fit = damped_solve<N, kBounded>(s.cur.A, s.cur.g, s.D, r.lambda, held, d_fit);
    for (int j = 0; j < N; ++j) delta[j] = select(r.fit, d_fit[j], delta[j]);
    r.ok = select(r.fit, ok_fit, r.ok);
    r.q = select(r.fit, scaled_norm<kBounded>(s.D, d_fit, s.fixed), r.q);
  }
  s.lambda = r.lambda;
  s.nu = r.nu;
  const T q = r.q;
  const T shorten = select(q > radius, radius / select(q > T(0), q, T(1)), T(1));
  for (int j = 0; j < N; ++j) delta[j] = delta[j] * shorten;
  return r.ok;
}

// Step 4d: the step within the radius into `delta`, which holds the Gauss-Newton step
// (solved where `ok` holds): that step, else lambda fitted to the radius, with s.lambda and
// s.nu as the fit left them; false (per lane) where the last damped solve failed.
// (kBounded = false, as for held_set: no parameter is fixed.)  `live`: the lanes whose step
// is wanted (a SIMD driver's lanes without a problem, or whose problem ends here, would
// otherwise keep the secular equation's loop running for nothing; their results are not
// used).  A lane's result does not depend on the others'.
template <bool kBounded = true, class T, int N>
LAWFIT_HD MaskOf<T> trust_step(State<T, N>& s, const MaskOf<T>* held, MaskOf<T> ok, T* delta,
                               MaskOf<T> live = T(0) == T(0)) {
  RadiusFit<T> r = radius_fit_start<kBounded>(s, ok, delta, live);
  for (int it = 0; it < kRadiusIterations && any(r.fit); ++it)
    radius_fit_iterate<kBounded>(s, held, r, delta);
  return radius_fit_finish<kBounded>(s, held, r, delta);
}

// The settling check's Gauss-Newton step at the current point (steps 4b and 4g), of the
// model A + u u^T / kappa (the secant correction of step 4g, where kappa > 0): damped by
// floor diag(A) (floor = kRoundingFloor times the precision's epsilon; the parameters held
// at p and the columns with A_jj = 0 held), so that it is well defined where A is singular.
// Its predicted reduction goes into `gain`, its length ||d delta|| into `length`; false (per
// lane) where the solve failed, or where the Jacobian is zero (depends_on_parameters).
template <bool kBounded = true, class T, int N>
LAWFIT_HD MaskOf<T> settling_step(const State<T, N>& s, const ProblemBox<T, N>& box, T& gain,
                                  T& length) {
  MaskOf<T> held[N];
  held_set<kBounded>(s, box, held);
  T ajj[N];
  for (int j = 0; j < N; ++j) {
    ajj[j] = s.cur.A[j * N + j];
    held[j] = held[j] || !(ajj[j] > T(0));
  }
  // The model: A + u u^T / kappa where the last accepted step showed curvature beyond A
  // (A itself where no lane's did).
  const auto seen = s.sec_k > T(0);
  T M[N * N];
  const T* model = s.cur.A;
  if (any(seen)) {
    const T kappa = select(seen, s.sec_k, T(1));
    for (int j = 0; j < N; ++j)
      for (int k = 0; k < N; ++k)
        M[j * N + k] = select(seen, s.cur.A[j * N + k] + s.sec_u[j] * (s.sec_u[k] / kappa),
                              s.cur.A[j * N + k]);
    model = M;
  }
  // (Where no lane holds a parameter, the solve without the masks: the same bits.)
  auto some_held = !(T(0) == T(0));
  for (int j = 0; j < N; ++j) some_held = some_held || held[j];
  const T floor = T(kRoundingFloor * epsilon_of<T>());
  T delta[N];
  const auto ok = any(some_held) ? damped_solve<N>(model, s.cur.g, ajj, floor, held, delta)
                                 : damped_solve<N, false>(model, s.cur.g, ajj, floor, held, delta);
  gain = predicted_reduction<N>(model, s.cur.g, delta);
  length = scaled_norm<kBounded>(s.D, delta, s.fixed);
  return ok && depends_on_parameters(s.cur);  // as gtol: a flat model settles nothing
}

// Step 4g's check of a convergence claim at the current point: the settling step predicts
// no reduction beyond max(ftol, floor) F, or is at most max(xtol, floor) ||d p|| long.  The
// step's outcome is kept in s (settle_known) for step 4b at the same point.
template <bool kBounded = true, class T, int N>
LAWFIT_HD MaskOf<T> no_progress_left(State<T, N>& s, const ProblemBox<T, N>& box, T ftol,
                                     T xtol) {
  const T floor = T(kRoundingFloor * epsilon_of<T>());
  T gain, length;
  const auto ok = settling_step<kBounded>(s, box, gain, length);
  s.settle_known = T(0) == T(0);
  s.settle_ok = ok;
  s.settle_gain = gain;
  return ok && (gain <= max(ftol, floor) * s.cur.cost ||
                length <= max(xtol, floor) * s.x_norm);
}

// Step 4b's ftol test at the current point, where `candidate` holds (its Gauss-Newton step
// predicts at most min(ftol, floor) F): the settling step predicts as little.  (Solved only
// where step 4g did not solve it at this point already.)
template <bool kBounded = true, class T, int N>
LAWFIT_HD MaskOf<T> settled(const State<T, N>& s, const ProblemBox<T, N>& box,
                            MaskOf<T> candidate, const Options& o) {
  if (!any(candidate)) return candidate;
  auto ok = s.settle_ok;
  T gain = s.settle_gain;
  if (any(candidate && !s.settle_known)) {
    T solved, length;
    const auto ok_solved = settling_step<kBounded>(s, box, solved, length);
    ok = select(s.settle_known, ok, ok_solved);
    gain = select(s.settle_known, gain, solved);
  }
  return candidate && ok && gain <= ftol_at_p(s, o);
}

// Step 4e: the trial point q, clipped to the box, the step q - p, and the reduction the
// quadratic model predicts.  (kBounded = false, as for held_set: an infinite box clips
// nothing.)
template <bool kBounded = true, class T, int N>
LAWFIT_HD LAWFIT_INLINE T propose(const State<T, N>& s, const ProblemBox<T, N>& box,
                                  const T* delta, T* q, T* step) {
  for (int j = 0; j < N; ++j) {
    T v = s.p[j] + delta[j];
    if constexpr (kBounded) {
      v = select(v < box.lower[j], box.lower[j], v);
      v = select(v > box.upper[j], box.upper[j], v);
    }
    q[j] = v;
    step[j] = v - s.p[j];
  }
  return predicted_reduction<N>(s.cur.A, s.cur.g, step);
}

// What a trial's cost (and whether its evaluation was finite) says, before its gradient
// is looked at: the reduction, its ratio to the prediction, whether the step is accepted
// and whether the trial may claim ftol (judge, below; a solve of a model with a lazy
// Jacobian asks first, models/common.h's LazyJacobian).
template <class T>
struct Outcome {
  T actual, ratio;
  MaskOf<T> accept, ftol_claim;
};

template <class T, int N>
LAWFIT_HD LAWFIT_INLINE Outcome<T> outcome(const State<T, N>& s, MaskOf<T> finite, T cost,
                                           T predicted, const Options& o) {
  const T f_old = s.cur.cost;
  const T actual = select(finite, f_old - cost, T(-INFINITY));
  const T ratio = select(predicted > T(0), actual / predicted, T(0));
  // A reduction of at most kRoundingGain epsilons is rounding's, not the step's.  Below the
  // rounding floor the cost cannot judge a step, but the quadratic model (from the gradient,
  // summed without the cost's cancellation) can: a Gauss-Newton step predicted to gain at
  // most the floor is taken unless the cost rises by more than the floor.
  const T floor = T(kRoundingFloor * epsilon_of<T>()) * f_old;
  const auto resolved = ratio > T(kAcceptRatio) &&
                        actual > T(kRoundingGain * epsilon_of<T>()) * f_old;
  const auto below_floor =
      s.lambda == T(kMinDamping) && predicted <= floor && actual >= -floor;
  const T ftol = T(o.ftol);
  return {actual, ratio, finite && (resolved || below_floor),
          finite && abs(actual) <= ftol * f_old && predicted <= ftol * f_old && ratio <= T(2)};
}

// Steps 4f and 4g: accept or reject the trial point (updating the state) and test ftol and
// xtol.  (kBounded = false, as for held_set: no parameter is fixed.)  `live`: the lanes whose
// trial this was (the others' verdicts are not used).
template <bool kBounded = true, class T, int N>
LAWFIT_HD LAWFIT_INLINE Verdict<T> judge(State<T, N>& s, const ProblemBox<T, N>& box,
                                         const Evaluation<T, N>& trial, const T* q,
                                         const T* step, T predicted, const Options& o,
                                         MaskOf<T> live = T(0) == T(0)) {
  const T f_old = s.cur.cost;
  const Outcome<T> out = outcome(s, trial.finite, trial.cost, predicted, o);
  const T actual = out.actual, ratio = out.ratio;
  const T step_norm = scaled_norm<kBounded>(s.D, step, s.fixed);
  const T x_norm = s.x_norm;  // (p and d before the step)
  const T floor = T(kRoundingFloor * epsilon_of<T>()) * f_old;
  const auto accept = out.accept;
  // The curvature the cost showed along an accepted step that lowered it by more than the
  // rounding floor, beyond the Gauss-Newton model's: u = y - A s (y the change of g, A at q),
  // kappa = u . s, kept where kappa exceeds the model's own s^T A s (the residuals' curvature
  // dominates) and what the rounding of g can make (floor times sum_j |s_j| (|g_j(q)| +
  // |g_j(p)|)).  A smaller step keeps the last one's.
  T u[N], kappa = T(0), model = T(0), noise = T(0);
  for (int j = 0; j < N; ++j) {
    T as = T(0);
    for (int k = 0; k < N; ++k) as = fmadd(trial.A[j * N + k], step[k], as);
    u[j] = (trial.g[j] - s.cur.g[j]) - as;
    kappa = fmadd(u[j], step[j], kappa);
    model = fmadd(as, step[j], model);
    noise = fmadd(abs(step[j]), abs(trial.g[j]) + abs(s.cur.g[j]), noise);
  }
  const auto learn = accept && actual > floor;
  const auto seen = kappa > model && kappa > T(kRoundingFloor * epsilon_of<T>()) * noise;
  for (int j = 0; j < N; ++j) s.sec_u[j] = select(learn, select(seen, u[j], T(0)), s.sec_u[j]);
  s.sec_k = select(learn, select(seen, kappa, T(0)), s.sec_k);
  for (int j = 0; j < N; ++j) s.p[j] = select(accept, q[j], s.p[j]);
  assign(s.cur, trial, accept);
  for (int j = 0; j < N; ++j) s.D[j] = select(accept, max(s.D[j], s.cur.A[j * N + j]), s.D[j]);
  s.nu = T(2);
  // The radius, by MINPACK's rules.
  T radius = select(s.first, min(s.radius, step_norm), s.radius);
  const auto good = ratio >= T(0.75) || s.lambda == T(kMinDamping);
  // (After a rejected Gauss-Newton step below 0.9 of it, so that the next trial differs:
  // a Gauss-Newton step is taken where it is at most 1.1 radius.)
  const T shorter = select(s.lambda == T(kMinDamping), T(0.9) * step_norm, T(INFINITY));
  radius = select(!accept, min(T(0.5) * min(radius, T(10) * step_norm), shorter),
                  select(ratio < T(0.25), T(0.5) * min(radius, T(10) * step_norm),
                         select(good, T(2) * step_norm, radius)));
  s.radius = radius;
  s.first = !(T(0) == T(0));
  s.settle_known = !(T(0) == T(0));  // (p, g or A may have changed)
  s.x_norm = scaled_norm<kBounded>(s.D, s.p, s.fixed);
  const T ftol = T(o.ftol), xtol = T(o.xtol);
  // (Claims only in the `live` lanes: a SIMD driver's lanes whose trial was not a step of
  // theirs would otherwise make every lane pay for the settling check.)
  auto ftol_ok = live && out.ftol_claim;
  auto xtol_ok = live && step_norm <= xtol * x_norm;
  if (any(ftol_ok || xtol_ok)) {
    const auto converged = no_progress_left<kBounded>(s, box, ftol, xtol);
    ftol_ok = ftol_ok && converged;
    xtol_ok = xtol_ok && converged;
  }
  const auto shrunk = s.radius <= T(epsilon_of<T>()) * s.x_norm;
  const auto stalled = s.lambda > T(o.max_damping) || shrunk;
  return {accept, ftol_ok, xtol_ok, stalled};
}

// Step 4g's status for one problem (kNotRun: go on).
LAWFIT_HD LAWFIT_INLINE int step_status(bool accept, bool ftol_ok, bool xtol_ok, bool stalled) {
  if (ftol_ok && xtol_ok) return kFtolXtol;
  if (ftol_ok) return kFtol;
  if (xtol_ok) return kXtol;
  if (!accept && stalled) return kNoProgress;
  return kNotRun;
}

// Step 1 of the algorithm: the checks that need no evaluation.  Returns kNotRun when the
// problem may be solved.
template <class Model, class T>
LAWFIT_HD int check_problem(const ProblemData<T>& d, const ProblemBox<T, Model::kParams>& box) {
  constexpr int N = Model::kParams;
  // Branch-free over the points (& rather than &&), so that the compiler can vectorise it.
  int used = 0;
  bool data_ok = true;
  if (!d.w && !d.sigma) {  // the common case: every point counts and needs finite data
    data_ok = all_finite(d.t, d.n) && all_finite(d.x, static_cast<long long>(d.n) * Model::kInputs);
    used = d.n;
  }
  // The general case (a zero trip count above) rather than an else branch: GCC inlines
  // the else form differently, at 2% more instructions per solve in callgrind.
  for (int i = 0; i < (d.w || d.sigma ? d.n : 0); ++i) {
    const T w = point_weight(d, i);
    const bool counts = !(w <= T(0));  // a NaN or infinite weight counts, as bad data
    bool ok = is_finite(w) & is_finite(d.t[i]);
    for (int k = 0; k < Model::kInputs; ++k)
      ok = ok & is_finite(d.x[static_cast<long long>(i) * Model::kInputs + k]);
    if (d.sigma) ok = ok & is_finite(d.sigma[i]) & (d.sigma[i] > T(0));
    data_ok = data_ok & (ok | !counts);
    used += counts ? 1 : 0;
  }
  if (!data_ok) return kNonfiniteData;
  int n_free = 0;
  bool start_ok = true;
  for (int j = 0; j < N; ++j) {
    n_free += box.lower[j] < box.upper[j] ? 1 : 0;
    start_ok = start_ok && is_finite(box.p0[j]) && box.p0[j] >= box.lower[j] &&
               box.p0[j] <= box.upper[j];
  }
  if (used < n_free) return kTooFewPoints;
  if (!start_ok) return kInvalidInput;
  return kNotRun;
}

// Step 5 for a solve that ended before its loop: p0, no optimality, no A.
template <class T, int N>
LAWFIT_HD LAWFIT_INLINE void summarize_unsolved(const ProblemBox<T, N>& box, int status, T cost,
                                                int nfev, Summary<T, N>& out) {
  for (int j = 0; j < N; ++j) {
    out.p[j] = box.p0[j];
    out.active[j] = 0;
  }
  for (int j = 0; j < N * N; ++j) out.jtj[j] = T(NAN);
  out.cost = cost;
  out.optimality = T(NAN);
  out.status = status;
  out.nfev = out.njev = nfev;
  out.nit = 0;
}

// Step 5: the output of a solve that ran its loop.
template <class T, int N>
LAWFIT_HD LAWFIT_INLINE void summarize(const State<T, N>& s, const ProblemBox<T, N>& box,
                                       int status, int nfev, int nit, Summary<T, N>& out) {
  MaskOf<T> held[N];
  held_set(s, box, held);
  T opt = T(0);
  for (int j = 0; j < N; ++j) {
    const T p = s.p[j];
    opt = max(opt, select(held[j], T(0), abs(s.cur.g[j])));
    out.p[j] = p;
    out.active[j] = p <= box.lower[j] ? -1 : (p >= box.upper[j] ? 1 : 0);
  }
  for (int j = 0; j < N * N; ++j) out.jtj[j] = s.cur.A[j];
  out.cost = s.cur.cost;
  out.optimality = opt;
  out.status = status;
  out.nfev = nfev;
  out.njev = nfev;
  out.nit = nit;
}

// A solve's early stop: called once per iteration, true ends the solve with kNotRun (the
// CPU driver's cancellation, batch.h's StopCheck).  NeverStop, the default, compiles away.
struct NeverStop {
  LAWFIT_HD constexpr bool operator()() const { return false; }
};

// The whole algorithm for one problem: the scalar instantiation that the CUDA kernels run,
// one thread per problem, and the reference the SIMD driver (lanes.h) is tested against.
template <class Model, class Objective = RuntimeObjective, class T, class Stop = NeverStop>
LAWFIT_HD void solve(const ProblemData<T>& d, const ProblemBox<T, Model::kParams>& box,
                     const Options& o, Summary<T, Model::kParams>& out, Stop stop = {}) {
  constexpr int N = Model::kParams;
  int status = check_problem<Model>(d, box);
  if (status != kNotRun) {
    summarize_unsolved(box, status, T(NAN), 0, out);
    return;
  }
  Evaluation<T, N> trial;
  evaluate<Model>(d, box.p0, o, trial, Objective{});
  if (!trial.finite) {
    summarize_unsolved(box, kNonfiniteInitial, trial.cost, 1, out);
    return;
  }
  State<T, N> s;
  start(s, box, trial, o);
  int nfev = 1, nit = 0, budget = o.max_nfev;
  const int cap = o.max_nfev_cap > o.max_nfev ? o.max_nfev_cap : o.max_nfev;
  const T max_damping = T(o.max_damping);
  while (true) {
    if (stop()) {
      status = kNotRun;
      break;
    }
    bool held[N];
    held_set(s, box, held);
    if (gtol_reached(s.cur, held, T(o.gtol))) {
      status = kGtol;
      break;
    }
    T delta[N], gain;
    const bool gn_ok = gauss_newton_step(s, held, delta, gain);
    if (settled(s, box, gn_ok && gain <= ftol_at_p(s, o), o)) {
      status = kFtol;
      break;
    }
    if (nfev >= budget) {
      if (!(budget < cap && still_improving(s, o))) {
        status = kMaxNfev;
        break;
      }
      budget = cap - budget > o.max_nfev ? budget + o.max_nfev : cap;
      s.F_mark = s.cur.cost;
    }
    if (!trust_step(s, held, gn_ok, delta)) {
      raise_damping(s, true);
      if (s.lambda > max_damping) {
        status = kNoProgress;
        break;
      }
      continue;
    }
    T q[N], step[N];
    const T predicted = propose(s, box, delta, q, step);
    if constexpr (LazyJacobian<Model>::value) {
      // The cost first; the gradient where it could be read (judge reads a trial's gradient
      // only where the step is accepted or claims ftol): the same verdict either way.
      Model::want_jacobian(d.ctx, false);
      evaluate<Model>(d, q, o, trial, Objective{});
      Model::want_jacobian(d.ctx, true);
      const Outcome<T> cost_says = outcome(s, trial.finite, trial.cost, predicted, o);
      if (cost_says.accept || cost_says.ftol_claim) evaluate<Model>(d, q, o, trial, Objective{});
    } else {
      evaluate<Model>(d, q, o, trial, Objective{});
    }
    ++nfev;
    ++nit;
    const Verdict<T> v = judge(s, box, trial, q, step, predicted, o);
    status = step_status(v.accept, v.ftol_ok, v.xtol_ok, v.stalled);
    if (status != kNotRun) break;
  }
  summarize(s, box, status, nfev, nit, out);
}

LAWFIT_NAMESPACE_END
