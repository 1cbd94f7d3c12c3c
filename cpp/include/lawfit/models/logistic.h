// Logistic  f(x) = a / (1 + exp(-k (x - x0))) + b  (e.g. downstream accuracy against loss).
// Parameters: a, k, x0, b.  Inputs: any real x.
#pragma once

#include "common.h"

LAWFIT_NAMESPACE_BEGIN
namespace models {

struct Logistic {
  static constexpr int kParams = 4, kInputs = 1;
  static constexpr const char* kName = "logistic";
  static constexpr const char* kParamNames[kParams] = {"a", "k", "x0", "b"};
  static constexpr const char* kInputNames[kInputs] = {"x"};
  static constexpr const char* kFormula = "a / (1 + exp(-k * (x - x0))) + b";

  template <class T>
  LAWFIT_HD static T eval(const T* p, const T* x, T* grad) {
    T a = p[0], k = p[1], x0 = p[2];
    T dx = x[0] - x0;
    T s = sigmoid(k * dx);
    T ds = a * s * (T(1) - s);
    grad[0] = s;
    grad[1] = ds * dx;
    grad[2] = -ds * k;
    grad[3] = T(1);
    return a * s + p[3];
  }
};

}  // namespace models
LAWFIT_NAMESPACE_END
