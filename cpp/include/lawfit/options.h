// options.h: the solver's options, one flat struct, each tolerance with its exact test.
//
// Notation (lm.h): F(p) is the cost, f_s and J_s the residuals and Jacobian after the robust
// loss scaling, g = J_s^T f_s, A = J_s^T J_s, d_j = sqrt(D_j) the parameter scales (the running
// maximum of diag(A)), delta the trial step, p the current point.  The tests are MINPACK's, as
// scipy.optimize.least_squares(method="lm") applies them; "free" means lower < upper.
#pragma once

namespace lawfit {

enum class Loss : int { kLinear = 0, kSoftL1 = 1, kHuber = 2, kCauchy = 3, kArctan = 4 };

struct Options {
  // Status 2 (ftol), tested after every trial step q = clip(p + delta), accepted or not:
  //   |F(p) - F(q)| <= ftol * F(p)  and  predicted reduction <= ftol * F(p)
  //   and actual / predicted reduction <= 2.
  double ftol = 1e-8;
  // Status 3 (xtol), tested after every trial step:  ||d * (q - p)|| <= xtol * ||d * p||
  // over the free parameters, with the scales d the step was computed with.
  double xtol = 1e-8;
  // Status 1 (gtol), tested at the current point before every step:
  //   max_j |g_j| / (sqrt(A_jj) sqrt(2 F)) <= gtol  over free parameters not held at a bound
  // (columns with A_jj = 0 are skipped; F = 0 satisfies it).  For least squares sqrt(2 F)
  // is ||f||, and this is MINPACK's test.
  double gtol = 1e-8;
  // Status 0: the solve stops once this many evaluations (each of residuals and Jacobian
  // together) have been made, unless it may extend its budget: while the total stays within
  // max_nfev_cap, a solve whose last max_nfev evaluations lowered the cost by more than
  // max(ftol, kRoundingFloor eps) relative gets max_nfev more.  max_nfev_cap <= max_nfev:
  // no extension (an explicit budget, as scipy's).  The Python layer's default is
  // 100 * n_params evaluations at a time, up to NFEV_BLOCKS (20) times that
  // (python/lawfit/_options.py).
  int max_nfev = 300;
  int max_nfev_cap = 0;
  // The damping lambda (relative to the scales D) that the first search for the step's
  // lambda starts from (lm.h, step 4d).
  double initial_damping = 1e-3;
  // A solve whose damping exceeds this gives up with status kNoProgress.
  double max_damping = 1e100;
  // Residuals r = (f - y) / sigma (false) or (log f - log y) / sigma (true).
  bool log_residuals = false;
  Loss loss = Loss::kLinear;
  // The robust loss acts on z = (r / f_scale)^2; the cost is 0.5 f_scale^2 sum w rho(z).
  double f_scale = 1.0;
};

// The accept threshold on actual / predicted reduction (MINPACK's 1e-4).  A step is accepted
// where the ratio exceeds it and the cost falls by more than kRoundingGain epsilons, or, for
// a Gauss-Newton step that promises less than the rounding floor, unless the cost rises by
// more than that floor (lm.h, step 4f).
inline constexpr double kAcceptRatio = 1e-4;
// The damping of the Gauss-Newton step: just enough to define it where A is singular.
inline constexpr double kMinDamping = 1e-30;
// The first trust radius, relative to ||d p0|| (MINPACK's `factor`).
inline constexpr double kRadiusFactor = 100.0;
// Newton steps on the secular equation ||d delta(lambda)|| = radius per iteration, at most,
// and how close to the radius a step must come to end them (relative).
inline constexpr int kRadiusIterations = 4;
inline constexpr double kRadiusTolerance = 0.1;
// The convergence check's damping (relative to diag(A)) and the least relative reduction of
// the cost and of the step it asks for, whatever ftol and xtol ask: what rounding lets the
// solver resolve, in units of the precision's epsilon (lm.h, step 4g).
inline constexpr double kRoundingFloor = 1e4;
// Step 4b's ftol test at the current point asks the next step to gain at most this share of
// ftol (and no more than the rounding floor): a step that changes nothing ftol cares about.
// Gains below kRoundingGain epsilons are rounding, whatever ftol asks.
inline constexpr double kSettledShare = 0.01;
inline constexpr double kRoundingGain = 16;

}  // namespace lawfit
