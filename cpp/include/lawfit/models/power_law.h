// Power law  f(x) = A x^-alpha.  Parameters: A, alpha.  Inputs: x > 0.
#pragma once

#include "common.h"

LAWFIT_NAMESPACE_BEGIN
namespace models {

struct PowerLaw {
  static constexpr bool kLogInputs = true;
  static constexpr int kParams = 2, kInputs = 1;
  static constexpr const char* kName = "power_law";
  static constexpr const char* kParamNames[kParams] = {"A", "alpha"};
  static constexpr const char* kInputNames[kInputs] = {"x"};
  static constexpr const char* kFormula = "A * x**-alpha";
  static constexpr bool kHasLog = true;

  template <class T>
  LAWFIT_HD static T eval(const T* p, const T* x, T* grad) {
    T lx = x[0];  // log x
    T xa = exp(-p[1] * lx);
    T f = p[0] * xa;
    grad[0] = xa;
    grad[1] = -f * lx;
    return f;
  }

  // log f = log A - alpha log x: linear in alpha, so log-space fits are well conditioned.
  template <class T>
  LAWFIT_HD static T eval_log(const T* p, const T* x, T* grad) {
    T lx = x[0];  // log x
    grad[0] = T(1) / p[0];
    grad[1] = -lx;
    return log(p[0]) - p[1] * lx;
  }
};

// Saturating power law  f(x) = E + A x^-alpha.  Parameters: E, A, alpha.  Inputs: x > 0.
struct SaturatingPowerLaw {
  static constexpr bool kLogInputs = true;
  static constexpr int kParams = 3, kInputs = 1;
  static constexpr const char* kName = "saturating_power_law";
  static constexpr const char* kParamNames[kParams] = {"E", "A", "alpha"};
  static constexpr const char* kInputNames[kInputs] = {"x"};
  static constexpr const char* kFormula = "E + A * x**-alpha";

  template <class T>
  LAWFIT_HD static T eval(const T* p, const T* x, T* grad) {
    T lx = x[0];  // log x
    T xa = exp(-p[2] * lx);
    T axa = p[1] * xa;
    grad[0] = T(1);
    grad[1] = xa;
    grad[2] = -axa * lx;
    return p[0] + axa;
  }
};

// Exponentiated power law  f(x) = exp(a x^b)  (e.g. coverage against samples).
// Parameters: a, b.  Inputs: x > 0.
struct ExpPowerLaw {
  static constexpr bool kLogInputs = true;
  static constexpr int kParams = 2, kInputs = 1;
  static constexpr const char* kName = "exp_power_law";
  static constexpr const char* kParamNames[kParams] = {"a", "b"};
  static constexpr const char* kInputNames[kInputs] = {"x"};
  static constexpr const char* kFormula = "exp(a * x**b)";
  static constexpr bool kHasLog = true;

  template <class T>
  LAWFIT_HD static T eval(const T* p, const T* x, T* grad) {
    T lx = x[0];  // log x
    T xb = exp(p[1] * lx);
    T f = exp(p[0] * xb);
    grad[0] = f * xb;
    grad[1] = f * p[0] * xb * lx;
    return f;
  }

  template <class T>
  LAWFIT_HD static T eval_log(const T* p, const T* x, T* grad) {
    T lx = x[0];  // log x
    T xb = exp(p[1] * lx);
    grad[0] = xb;
    grad[1] = p[0] * xb * lx;
    return p[0] * xb;
  }
};

}  // namespace models
LAWFIT_NAMESPACE_END
