// callable.h: lm.h's solve of one problem whose model is a Python function (lawfit._core.
// solve_callable), for scipy's curve_fit of a callable that cannot be traced into a law.
//
// The function gives the model's values at all m points for a parameter vector; its
// Jacobian comes from forward differences (scipy's '2-point' rule: step sqrt(eps)
// max(1, |p_j|) with p_j's sign, taken backwards where the forward point leaves the bounds)
// or from the user's jac.  Each parameter vector the solve evaluates costs one call (and n
// more, or one jac call, for the Jacobian), made with the GIL held on the calling thread;
// the points are served from those values in lm.h's blocks.  The solve is the scalar
// instantiation of lm.h (the CUDA kernels' and the CPU tests' code), on kCallableParams
// parameters: a function of fewer has the rest fixed at 0 with a zero Jacobian column, which
// a solve holds and leaves out of every norm and test.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <vector>

#include "bindings.h"
#include "lawfit/lm.h"

LAWFIT_NAMESPACE_BEGIN
namespace callable {

namespace py = pybind11;

inline constexpr int kCallableParams = 8;

// The Python function and what it gave at the last parameter vectors asked for.
struct Context {
  py::object fn;     // f(xdata, p_1, ..., p_n) -> the model's values (m,)
  py::object jac;    // None, or jac(xdata, p_1, ..., p_n) -> their derivatives (m, n)
  py::object xdata;  // passed to both as it is
  int m = 0, n = 0;
  const double* lower = nullptr;  // n bounds, for the difference steps' direction
  const double* upper = nullptr;
  // The last two parameter vectors asked for (the current point and a trial, as a rule):
  // f and J at p, f_prev and J_prev at p_prev.
  double p[kCallableParams] = {}, p_prev[kCallableParams] = {};
  bool have = false, have_prev = false;
  std::vector<double> f, J, f_prev, J_prev;  // m values; m x n derivatives, point-major
  long long calls = 0, jac_calls = 0;

  bool holds(const double* a, bool valid, const double* q) const {
    for (int j = 0; j < n && valid; ++j) valid = q[j] == a[j];
    return valid;
  }

  // `what`(xdata, *q) as a C-contiguous float64 array (checked: real, and of the shape
  // expected, else ValueError naming `name`).
  bindings::F64 call(const py::object& what, const double* q, const char* name,
                     std::vector<py::ssize_t> shape) {
    py::tuple args(n + 1);
    args[0] = xdata;
    for (int j = 0; j < n; ++j) args[j + 1] = py::float_(q[j]);
    const py::array out = py::array::ensure(what(*args));
    if (!out) throw py::error_already_set();
    bindings::require(out.dtype().kind() != 'c', [&] {
      return std::string(name) + ": returned complex values";
    });
    const bool scalar_ok = shape.size() == 1 && shape[0] == 1 && out.size() == 1;
    bool same = out.ndim() == static_cast<py::ssize_t>(shape.size());
    for (size_t k = 0; same && k < shape.size(); ++k) same = out.shape(k) == shape[k];
    bindings::require(same || scalar_ok, [&] {
      py::tuple want(shape.size());
      for (size_t k = 0; k < shape.size(); ++k) want[k] = shape[k];
      const std::string got = py::str(out.attr("shape")).cast<std::string>();
      const std::string expected = py::str(want).cast<std::string>();
      return shape.size() == 1 ? std::string(name) + ": returned shape " + got +
                                     ", expected ydata's shape " + expected
                               : std::string(name) + ": returned shape " + got +
                                     ", expected " + expected + " (points, parameters)";
    });
    const auto values = bindings::F64::ensure(out);
    if (!values) throw py::error_already_set();
    return values;
  }

  std::vector<double> values_at(const double* q) {
    const bindings::F64 v = call(fn, q, "f", {m});
    ++calls;
    return std::vector<double>(v.data(), v.data() + m);
  }

  // Fills f and J at q, unless they hold it already.
  void at(const double* q) {
    if (holds(p, have, q)) return;
    std::swap(f, f_prev);
    std::swap(J, J_prev);
    for (int j = 0; j < n; ++j) std::swap(p[j], p_prev[j]);
    std::swap(have, have_prev);
    if (holds(p, have, q)) return;
    have = false;
    f = values_at(q);
    J.assign(static_cast<size_t>(m) * n, 0.0);
    if (!jac.is_none()) {
      const bindings::F64 d = call(jac, q, "jac", {m, n});
      ++jac_calls;
      for (size_t k = 0; k < J.size(); ++k) J[k] = d.data()[k];
    } else {
      double r[kCallableParams];
      for (int j = 0; j < n; ++j) r[j] = q[j];
      for (int j = 0; j < n; ++j) {
        if (lower[j] == upper[j]) continue;  // fixed: held by the solve
        double h = std::sqrt(2.220446049250313e-16) * std::max(1.0, std::fabs(q[j]));
        h = q[j] < 0 ? -h : h;
        if (q[j] + h > upper[j] || q[j] + h < lower[j]) h = -h;
        r[j] = q[j] + h;
        h = r[j] - q[j];  // the step as represented
        const std::vector<double> fh = values_at(r);
        r[j] = q[j];
        for (int i = 0; i < m; ++i) J[static_cast<size_t>(i) * n + j] = (fh[i] - f[i]) / h;
      }
    }
    for (int j = 0; j < n; ++j) p[j] = q[j];
    have = true;
  }
};

// The model lm.h solves: its one input is the point's index, its values the function's.
struct Model {
  static constexpr int kParams = kCallableParams, kInputs = 1;
  static constexpr bool kHasLog = true;
  static constexpr bool kUsesContext = true;
  static constexpr const char* kName = "callable";

  template <class T>
  static T eval(const void* ctx, const T* p, const T* x, T* grad) {
    return one<false>(ctx, p, x, grad);
  }
  template <class T>
  static T eval_log(const void* ctx, const T* p, const T* x, T* grad) {
    return one<true>(ctx, p, x, grad);
  }

  template <class T>
  static constexpr int kBlock = 8;

  template <bool kLog, class T, int B>
  static void eval_block(const void* ctx, const T* p, const T* x, int nb, T (&f)[B],
                         T (&grad)[B][kParams]) {
    static_assert(std::is_same<T, double>::value, "a Python model runs in double");
    Context* c = const_cast<Context*>(static_cast<const Context*>(ctx));
    c->at(p);
    for (int b = 0; b < nb; ++b) {
      const int i = static_cast<int>(x[b]);
      const double v = c->f[i];
      for (int j = 0; j < kParams; ++j)
        grad[b][j] = j < c->n ? c->J[static_cast<size_t>(i) * c->n + j] : 0.0;
      if (kLog) {
        for (int j = 0; j < kParams; ++j) grad[b][j] /= v;
        f[b] = std::log(v);
      } else {
        f[b] = v;
      }
    }
  }

 private:
  template <bool kLog, class T>
  static T one(const void* ctx, const T* p, const T* x, T* grad) {
    T f[1], g[1][kParams];
    eval_block<kLog>(ctx, p, x, 1, f, g);
    for (int j = 0; j < kParams; ++j) grad[j] = g[0][j];
    return f[0];
  }
};

// lawfit._core.solve_callable: see the module's docstring there.
inline py::dict fit_one(py::object fn, py::object jac, py::object xdata,
                        const bindings::F64& target, py::object sigma, const bindings::F64& p0, const bindings::F64& lower,
                      const bindings::F64& upper, const py::handle& options) {
  constexpr int K = kCallableParams;
  const int n = static_cast<int>(p0.size());
  const int m = static_cast<int>(target.size());
  bindings::require(n >= 1 && n <= K, [&] {
    return "p0: a Python model of 1 to " + std::to_string(K) + " parameters, got " +
           std::to_string(n);
  });
  bindings::require(lower.size() == n && upper.size() == n, "bounds: expected one per parameter");
  bindings::require(m >= 1, "ydata: must not be empty");
  bindings::F64 s;
  if (!sigma.is_none()) {
    s = bindings::F64::ensure(sigma);
    bindings::require(s && s.size() == m, "sigma: expected one value per point");
  }
  const Options o = bindings::make_options<double>(
      options, bindings::option_attr(options, "log_residuals").cast<bool>());

  Context c;
  c.fn = std::move(fn);
  c.jac = std::move(jac);
  c.xdata = std::move(xdata);
  c.m = m;
  c.n = n;
  c.lower = lower.data();
  c.upper = upper.data();
  std::vector<double> index(m);
  for (int i = 0; i < m; ++i) index[i] = i;
  ProblemData<double> d{index.data(), target.data(), sigma.is_none() ? nullptr : s.data(),
                        nullptr, m, false, &c};
  ProblemBox<double, K> box;
  for (int j = 0; j < K; ++j) {
    box.p0[j] = j < n ? p0.data()[j] : 0.0;
    box.lower[j] = j < n ? lower.data()[j] : 0.0;
    box.upper[j] = j < n ? upper.data()[j] : 0.0;
  }
  bindings::require(o.loss == Loss::kLinear, "loss: a Python model takes the linear loss");
  Summary<double, K> out;
  if (o.log_residuals)  // the two objectives compiled, not the runtime choice of all ten
    solve<Model, FixedObjective<Loss::kLinear, true>>(d, box, o, out);
  else
    solve<Model, FixedObjective<Loss::kLinear, false>>(d, box, o, out);

  bindings::F64 x(static_cast<py::ssize_t>(n));
  for (int j = 0; j < n; ++j) x.mutable_data()[j] = out.p[j];
  py::dict r;
  r["x"] = x;
  r["cost"] = out.cost;
  r["status"] = out.status;
  r["nfev"] = out.nfev;
  r["nit"] = out.nit;
  r["calls"] = c.calls;
  r["jac_calls"] = c.jac_calls;
  r["optimality"] = out.optimality;
  // The model's values and derivatives at x (computed already: the solve's last point).
  if (out.nfev > 0) {
    c.at(out.p);
    bindings::F64 f(static_cast<py::ssize_t>(m)), J({static_cast<py::ssize_t>(m),
                                                     static_cast<py::ssize_t>(n)});
    std::copy(c.f.begin(), c.f.end(), f.mutable_data());
    std::copy(c.J.begin(), c.J.end(), J.mutable_data());
    r["f"] = f;
    r["J"] = J;
  }
  return r;
}

}  // namespace callable
LAWFIT_NAMESPACE_END
