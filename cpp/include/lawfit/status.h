// status.h: the per-problem status codes and their messages, in one table.
//
// Numbers follow scipy.optimize.least_squares where scipy has one (success = status > 0);
// negative numbers below -1 are lawfit's own, for a batch in which one bad problem must not
// stop the others.  Python reads this table through lawfit._core.status_table() and a test
// checks it against lawfit.Status.
#pragma once

namespace lawfit {

enum Status : int {
  kMaxNfev = 0,          // scipy 0
  kGtol = 1,             // scipy 1
  kFtol = 2,             // scipy 2
  kXtol = 3,             // scipy 3
  kFtolXtol = 4,         // scipy 4
  kInvalidInput = -1,    // scipy -1
  kNonfiniteData = -2,
  kTooFewPoints = -3,
  kNonfiniteInitial = -4,
  kNoProgress = -5,
  kNotRun = -100,        // sentinel written before a solve; never returned by a finished solve
};

struct StatusInfo {
  int code;
  const char* name;
  const char* message;
};

inline constexpr StatusInfo kStatusTable[] = {
    {kMaxNfev, "MAX_NFEV", "The maximum number of function evaluations is exceeded."},
    {kGtol, "GTOL", "`gtol` termination condition is satisfied."},
    {kFtol, "FTOL", "`ftol` termination condition is satisfied."},
    {kXtol, "XTOL", "`xtol` termination condition is satisfied."},
    {kFtolXtol, "FTOL_XTOL", "Both `ftol` and `xtol` termination conditions are satisfied."},
    {kInvalidInput, "INVALID_INPUT",
     "Improper input: the start is not finite or lies outside the bounds."},
    {kNonfiniteData, "NONFINITE_DATA",
     "The problem's data contain NaN or infinity, an x <= 0 for a model of log x (a power "
     "law), or, with log residuals, a y <= 0."},
    {kTooFewPoints, "TOO_FEW_POINTS",
     "The problem has fewer points (with nonzero weight) than free parameters."},
    {kNonfiniteInitial, "NONFINITE_INITIAL",
     "The model, residuals or Jacobian are not finite at the starting point."},
    {kNoProgress, "NO_PROGRESS",
     "No step lowers the cost: the trust region shrank to what rounding can tell from no "
     "step, or the damping grew without bound (a singular system)."},
    {kNotRun, "NOT_RUN", "The problem was not solved."},
};

}  // namespace lawfit
