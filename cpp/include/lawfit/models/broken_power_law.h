// Broken power law with one break (Caballero et al. 2022, "broken neural scaling laws"):
//   f(x) = a + b x^-c0 (1 + (x / d1)^(1 / f1))^(-c1 f1).
// Parameters: a, b, c0, c1, d1, f1.  Inputs: x > 0; d1 > 0 and f1 != 0.
// With t = log(x / d1) / f1, the factor is exp(-c1 f1 softplus(t)), so a sharp break
// (small f1) does not overflow.
#pragma once

#include "common.h"

LAWFIT_NAMESPACE_BEGIN
namespace models {

struct BrokenPowerLaw {
  static constexpr bool kLogInputs = true;
  static constexpr int kParams = 6, kInputs = 1;
  static constexpr const char* kName = "broken_power_law";
  static constexpr const char* kParamNames[kParams] = {"a", "b", "c0", "c1", "d1", "f1"};
  static constexpr const char* kInputNames[kInputs] = {"x"};
  static constexpr const char* kFormula =
      "a + b * x**-c0 * (1 + (x / d1)**(1 / f1))**(-c1 * f1)";

  template <class T>
  LAWFIT_HD static T eval(const T* p, const T* x, T* grad) {
    T a = p[0], b = p[1], c0 = p[2], c1 = p[3], d1 = p[4], f1 = p[5];
    T lx = x[0];  // log x
    T t = (lx - log(d1)) / f1;
    T lh = softplus(t);  // log(1 + q), q = (x / d1)^(1 / f1)
    T sg = sigmoid(t);   // q / (1 + q)
    T pw = exp(-c0 * lx - c1 * f1 * lh);
    T bp = b * pw;
    grad[0] = T(1);
    grad[1] = pw;
    grad[2] = -bp * lx;
    grad[3] = -bp * f1 * lh;
    grad[4] = bp * c1 * sg / d1;
    grad[5] = bp * c1 * (sg * t - lh);
    return a + bp;
  }
};

}  // namespace models
LAWFIT_NAMESPACE_END
