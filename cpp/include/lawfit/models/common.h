// models/common.h: what every model shares: the numerically stable pieces (softplus,
// sigmoid) and the shape a model struct takes.
//
// A model is a struct with
//   static constexpr int kParams, kInputs;            sizes known at compile time
//   static constexpr const char* kName;               the name Python uses
//   static constexpr const char* kParamNames[kParams];
//   static constexpr const char* kInputNames[kInputs]; the data columns, e.g. {"N", "D"}
//   static constexpr const char* kFormula;            one line, for docs and errors
//   static constexpr bool kLogInputs;                  (optional) true: the model receives
//       log x instead of x.  The logarithm is taken once per batch, before the solve, so the
//       per-iteration work has no log, and x <= 0 becomes non-finite data before any solve.
//   template <class T> LAWFIT_HD static T eval(const T* p, const T* x, T* grad);
//       returns f(x; p) and writes df/dp_j into grad[j]
// and, where log f has a more stable form than log(eval(...)):
//   static constexpr bool kHasLog = true;
//   template <class T> LAWFIT_HD static T eval_log(const T* p, const T* x, T* grad);
//       returns log f and writes d(log f)/dp_j.
#pragma once

#include "../hd.h"

LAWFIT_NAMESPACE_BEGIN

// log(1 + exp(t)) without overflow.
template <class T>
LAWFIT_HD LAWFIT_INLINE T softplus(T t) {
  return max(t, T(0)) + log1p(exp(-abs(t)));
}

// 1 / (1 + exp(-t)) without overflow.
template <class T>
LAWFIT_HD LAWFIT_INLINE T sigmoid(T t) {
  T e = exp(-abs(t));
  T inv = T(1) / (T(1) + e);
  return select(t >= T(0), inv, e * inv);
}

// a^n for an integer n by repeated squaring (1 / a^-n for n < 0): the integer powers of a
// user's law, in its tape (tape.h) and in its generated struct alike.
template <class T>
LAWFIT_HD LAWFIT_INLINE T pow_int(T a, int n) {
  const bool inverse = n < 0;
  unsigned m = static_cast<unsigned>(inverse ? -n : n);
  T r = T(1), base = a;
  while (m) {
    if (m & 1u) r = r * base;
    m >>= 1;
    if (m) base = base * base;
  }
  return inverse ? T(1) / r : r;
}

// exp(d) for d <= 0, a term of a sum whose largest term is 1 (a logsumexp): exactly 0 where
// d < -300.  Such a term (below 1e-130) cannot change the sum in double precision, and
// dropping it keeps every product the solver forms with it, its square included, a normal
// number: subnormal arithmetic costs about a hundred times more on x86, and in a SIMD lane
// it slows every lane of the vector (measured: the Chinchilla replication's 4,500-start
// grid ran 2 to 3 times slower, most starts wandering to where some terms underflow).
template <class T>
LAWFIT_HD LAWFIT_INLINE T negligible_exp(T d) {
  const T lo = T(-300);
  return select(d < lo, T(0), exp(max(d, lo)));
}

// f and its gradient from a model's native log form: f = exp(log f), df = f dlog f.
template <class Model, class T>
LAWFIT_HD LAWFIT_INLINE T value_from_log(const T* p, const T* x, T* grad) {
  T f = exp(Model::eval_log(p, x, grad));
  for (int j = 0; j < Model::kParams; ++j) grad[j] *= f;
  return f;
}

// Models whose eval takes a context first (static constexpr bool kUsesContext = true):
//   template <class T> static T eval(const void* ctx, const T* p, const T* x, T* grad);
// (and eval_log alike), the context being ProblemData::ctx (a user's law's program, tape.h).
template <class Model, class = void>
struct UsesContext {
  static constexpr bool value = false;
};
template <class Model>
struct UsesContext<Model, decltype(void(Model::kUsesContext))> {
  static constexpr bool value = Model::kUsesContext;
};

// Models whose gradient costs much more than their value (static constexpr bool
// kLazyJacobian = true, and static void want_jacobian(const void* ctx, bool)): the solve
// evaluates a trial's cost first, with want_jacobian(ctx, false) (the gradient then 0), and
// the gradient only where the cost could accept the trial or claim ftol (lm.h, solve): a
// rejected trial's gradient is never read, so the results are the same.  (A Python function
// with forward differences: n + 1 calls a trial, or 1.)
template <class Model, class = void>
struct LazyJacobian {
  static constexpr bool value = false;
};
template <class Model>
struct LazyJacobian<Model, decltype(void(Model::kLazyJacobian))> {
  static constexpr bool value = Model::kLazyJacobian;
};

// f and its gradient, from a model with or without a context.
template <class Model, class T>
LAWFIT_HD LAWFIT_FORCE_INLINE T model_eval(const void* ctx, const T* p, const T* x, T* grad) {
  if constexpr (UsesContext<Model>::value) {
    return Model::eval(ctx, p, x, grad);
  } else {
    (void)ctx;
    return Model::eval(p, x, grad);
  }
}
template <class Model, class T>
LAWFIT_HD LAWFIT_FORCE_INLINE T model_eval_log(const void* ctx, const T* p, const T* x,
                                               T* grad) {
  if constexpr (UsesContext<Model>::value) {
    return Model::eval_log(ctx, p, x, grad);
  } else {
    (void)ctx;
    return Model::eval_log(p, x, grad);
  }
}

template <class Model, class = void>
struct LogInputs {
  static constexpr bool value = false;
};
template <class Model>
struct LogInputs<Model, decltype(void(Model::kLogInputs))> {
  static constexpr bool value = Model::kLogInputs;
};

template <class Model, class = void>
struct HasLog {
  static constexpr bool value = false;
};
template <class Model>
struct HasLog<Model, decltype(void(Model::kHasLog))> {
  static constexpr bool value = Model::kHasLog;
};

LAWFIT_NAMESPACE_END
