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
  // together) have been made.  The Python layer defaults it to 100 * n_params, as scipy.
  int max_nfev = 300;
  // Starting damping lambda (relative to the scales D), and the accept threshold on
  // actual / predicted reduction.
  double initial_damping = 1e-3;
  // A solve whose damping exceeds this gives up with status kNoProgress.
  double max_damping = 1e100;
  // Residuals r = (f - y) / sigma (false) or (log f - log y) / sigma (true).
  bool log_residuals = false;
  Loss loss = Loss::kLinear;
  // The robust loss acts on z = (r / f_scale)^2; the cost is 0.5 f_scale^2 sum w rho(z).
  double f_scale = 1.0;
};

// The accept threshold on actual / predicted reduction (MINPACK's 1e-4).
inline constexpr double kAcceptRatio = 1e-4;
// The smallest damping after an accepted step.
inline constexpr double kMinDamping = 1e-30;

}  // namespace lawfit
