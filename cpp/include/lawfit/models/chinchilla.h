// Chinchilla's data-and-parameters law, in two parameterisations.  Inputs: N > 0, D > 0.
#pragma once

#include "common.h"

LAWFIT_NAMESPACE_BEGIN
namespace models {

// f(N, D) = E + A N^-alpha + B D^-beta.  Parameters: E, A, B, alpha, beta.
struct Chinchilla {
  static constexpr bool kLogInputs = true;
  static constexpr int kParams = 5, kInputs = 2;
  static constexpr const char* kName = "chinchilla";
  static constexpr const char* kParamNames[kParams] = {"E", "A", "B", "alpha", "beta"};
  static constexpr const char* kInputNames[kInputs] = {"N", "D"};
  static constexpr const char* kFormula = "E + A * N**-alpha + B * D**-beta";

  template <class T>
  LAWFIT_HD static T eval(const T* p, const T* x, T* grad) {
    T ln = x[0], ld = x[1];  // log N, log D
    T na = exp(-p[3] * ln), db = exp(-p[4] * ld);
    T tn = p[1] * na, td = p[2] * db;
    grad[0] = T(1);
    grad[1] = na;
    grad[2] = db;
    grad[3] = -tn * ln;
    grad[4] = -td * ld;
    return p[0] + tn + td;
  }
};

// The replication study's log parameterisation (Besiroglu et al. 2024):
//   log f = logsumexp(a - alpha log N, b - beta log D, e),  i.e. A = e^a, B = e^b, E = e^e.
// Parameters: a, b, e, alpha, beta.  Evaluated with the maximum factored out, so no term
// overflows; log residuals use eval_log directly.
struct ChinchillaLog {
  static constexpr bool kLogInputs = true;
  static constexpr int kParams = 5, kInputs = 2;
  static constexpr const char* kName = "chinchilla_log";
  static constexpr const char* kParamNames[kParams] = {"a", "b", "e", "alpha", "beta"};
  static constexpr const char* kInputNames[kInputs] = {"N", "D"};
  static constexpr const char* kFormula =
      "exp(logsumexp(a - alpha * log(N), b - beta * log(D), e))";
  static constexpr bool kHasLog = true;

  template <class T>
  LAWFIT_HD static T eval_log(const T* p, const T* x, T* grad) {
    T ln = x[0], ld = x[1];  // log N, log D
    T u1 = p[0] - p[3] * ln, u2 = p[1] - p[4] * ld, u3 = p[2];
    T m = max(max(u1, u2), u3);
    T e1 = negligible_exp(u1 - m), e2 = negligible_exp(u2 - m), e3 = negligible_exp(u3 - m);
    T s = e1 + e2 + e3;
    T inv = T(1) / s;
    T w1 = e1 * inv, w2 = e2 * inv, w3 = e3 * inv;  // softmax weights
    grad[0] = w1;
    grad[1] = w2;
    grad[2] = w3;
    grad[3] = -w1 * ln;
    grad[4] = -w2 * ld;
    return m + log(s);
  }

  template <class T>
  LAWFIT_HD static T eval(const T* p, const T* x, T* grad) {
    return value_from_log<ChinchillaLog>(p, x, grad);
  }
};

// Kaplan et al. (2020):  f(N, D) = ((Nc / N)^(alphaN / alphaD) + Dc / D)^alphaD.
// Parameters: Nc, Dc, alphaN, alphaD.
struct Kaplan {
  static constexpr bool kLogInputs = true;
  static constexpr int kParams = 4, kInputs = 2;
  static constexpr const char* kName = "kaplan";
  static constexpr const char* kParamNames[kParams] = {"Nc", "Dc", "alphaN", "alphaD"};
  static constexpr const char* kInputNames[kInputs] = {"N", "D"};
  static constexpr const char* kFormula = "((Nc / N)**(alphaN / alphaD) + Dc / D)**alphaD";
  static constexpr bool kHasLog = true;

  template <class T>
  LAWFIT_HD static T eval_log(const T* p, const T* x, T* grad) {
    T nc = p[0], dc = p[1], an = p[2], ad = p[3];
    T lr = log(nc) - x[0];  // log(Nc / N)
    T u = exp(an / ad * lr);  // (Nc / N)^(alphaN / alphaD)
    T inv_d = exp(-x[1]);     // 1 / D
    T v = dc * inv_d;
    T s = u + v;
    T ls = log(s);
    T inv = T(1) / s;
    grad[0] = u * an * inv / nc;
    grad[1] = ad * inv * inv_d;
    grad[2] = u * lr * inv;
    grad[3] = ls - u * an * lr * inv / ad;
    return ad * ls;
  }

  template <class T>
  LAWFIT_HD static T eval(const T* p, const T* x, T* grad) {
    return value_from_log<Kaplan>(p, x, grad);
  }
};

}  // namespace models
LAWFIT_NAMESPACE_END
