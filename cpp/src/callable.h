// callable.h: lm.h's solve of one problem whose model is a Python function (lawfit._core.
// solve_callable), for scipy's curve_fit of a callable that cannot be traced into a law.
//
// The function gives the model's values at all m points for a parameter vector; its
// Jacobian comes from forward differences (scipy's '2-point' rule: step sqrt(eps)
// max(1, |p_j|) with p_j's sign, taken backwards where the forward point leaves the bounds)
// or from the user's jac.  Each parameter vector the solve evaluates costs one call (and n
// more, or one jac call, for the Jacobian), made with the GIL held on the calling thread;
// the points are served from those values in lm.h's blocks.  The solve is the scalar
// instantiation of lm.h (the CUDA kernels' and the CPU tests' code), for the function's own
// number of parameters, 1 to kCallableParams.
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
  // f at p (and J where have_J), f_prev at p_prev (and J_prev where have_J_prev).
  double p[kCallableParams] = {}, p_prev[kCallableParams] = {};
  bool have = false, have_prev = false, have_J = false, have_J_prev = false;
  std::vector<double> f, J, f_prev, J_prev;  // m values; m x n derivatives, point-major
  std::vector<double> fh;                     // the values at a difference step
  bool want_J = true;  // the solve's wish for the next evaluations (Model::want_jacobian)
  long long calls = 0, jac_calls = 0;

  bool holds(const double* a, bool valid, const double* q) const {
    for (int j = 0; j < n && valid; ++j) valid = q[j] == a[j];
    return valid;
  }

  // `what`(xdata, *q) as a C-contiguous float64 array (checked: real, and of the shape
  // expected, (rows,) or with cols > 0 (rows, cols), else ValueError naming `name`).  The
  // call passes its arguments on the stack (vectorcall); a result that is already such an
  // array is used as it is.
  bindings::F64 call(const py::object& what, const double* q, const char* name,
                     py::ssize_t rows, py::ssize_t cols = 0) {
    PyObject* args[kCallableParams + 1];
    py::object floats[kCallableParams];
    args[0] = xdata.ptr();
    for (int j = 0; j < n; ++j) {
      floats[j] = py::reinterpret_steal<py::object>(PyFloat_FromDouble(q[j]));
      if (!floats[j]) throw py::error_already_set();
      args[j + 1] = floats[j].ptr();
    }
    PyObject* res = PyObject_Vectorcall(what.ptr(), args, static_cast<size_t>(n) + 1, nullptr);
    if (!res) throw py::error_already_set();
    const py::object out = py::reinterpret_steal<py::object>(res);
    const int ndim = cols > 0 ? 2 : 1;
    if (bindings::F64::check_(out)) {  // float64, C-contiguous: as it is, where its shape is
      const auto values = py::reinterpret_borrow<bindings::F64>(out);
      if (values.ndim() == ndim && values.shape(0) == rows && (cols == 0 || values.shape(1) == cols))
        return values;
    }
    const py::array a = py::array::ensure(out);
    if (!a) throw py::error_already_set();
    bindings::require(a.dtype().kind() != 'c', [&] {
      return std::string(name) + ": returned complex values";
    });
    const bool scalar_ok = cols == 0 && rows == 1 && a.size() == 1;
    const bool same = a.ndim() == ndim && a.shape(0) == rows && (cols == 0 || a.shape(1) == cols);
    bindings::require(same || scalar_ok, [&] {
      const std::string got = py::str(a.attr("shape")).cast<std::string>();
      return cols == 0 ? std::string(name) + ": returned shape " + got +
                             ", expected ydata's shape (" + std::to_string(rows) + ",)"
                       : std::string(name) + ": returned shape " + got + ", expected (" +
                             std::to_string(rows) + ", " + std::to_string(cols) +
                             ") (points, parameters)";
    });
    const auto values = bindings::F64::ensure(a);
    if (!values) throw py::error_already_set();
    return values;
  }

  // f's values at q into `into` (m of them).
  void values_at(const double* q, std::vector<double>& into) {
    const bindings::F64 v = call(fn, q, "f", m);
    ++calls;
    into.assign(v.data(), v.data() + m);
  }

  // Fills f at q, and J where with_J, unless they hold them already.
  void at(const double* q, bool with_J = true) {
    if (!holds(p, have, q)) {
      std::swap(f, f_prev);
      std::swap(J, J_prev);
      for (int j = 0; j < n; ++j) std::swap(p[j], p_prev[j]);
      std::swap(have, have_prev);
      std::swap(have_J, have_J_prev);
      if (!holds(p, have, q)) {
        have = have_J = false;
        values_at(q, f);
        for (int j = 0; j < n; ++j) p[j] = q[j];
        have = true;
      }
    }
    if (with_J && !have_J) jacobian_at(q);
  }

  // J at q, where f holds q's values.
  void jacobian_at(const double* q) {
    J.assign(static_cast<size_t>(m) * n, 0.0);
    if (!jac.is_none()) {
      const bindings::F64 d = call(jac, q, "jac", m, n);
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
        values_at(r, fh);
        r[j] = q[j];
        for (int i = 0; i < m; ++i) J[static_cast<size_t>(i) * n + j] = (fh[i] - f[i]) / h;
      }
    }
    have_J = true;
  }
};

// The model lm.h solves, of N parameters (the function's own count: lm.h's algebra at its
// size): its one input is the point's index, its values the function's.
template <int N>
struct Model {
  static constexpr int kParams = N, kInputs = 1;
  static constexpr bool kHasLog = true;
  static constexpr bool kUsesContext = true;
  static constexpr const char* kName = "callable";
  // A trial's Jacobian costs n calls of the function (or a jac call): lm.h asks for it only
  // where the trial's cost could accept it (models/common.h, LazyJacobian), as MINPACK
  // differences only at the points it moves to.
  static constexpr bool kLazyJacobian = true;
  static void want_jacobian(const void* ctx, bool want) {
    const_cast<Context*>(static_cast<const Context*>(ctx))->want_J = want;
  }

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
    c->at(p, c->want_J);
    for (int b = 0; b < nb; ++b) {
      const int i = static_cast<int>(x[b]);
      const double v = c->f[i];
      for (int j = 0; j < kParams; ++j)  // (0 where the solve asked for values only)
        grad[b][j] = j < c->n && c->want_J ? c->J[static_cast<size_t>(i) * c->n + j] : 0.0;
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

// What fit_one reads of a solve's Summary, whatever its size.
struct Solved {
  double p[kCallableParams] = {};
  double cost = 0, optimality = 0;
  int status = 0, nfev = 0, nit = 0;
};

// lm.h's solve of the N-parameter model from p0 within [lower, upper] (each N values).
template <int N>
Solved solve_sized(const ProblemData<double>& d, const bindings::F64& p0,
                   const bindings::F64& lower, const bindings::F64& upper, const Options& o) {
  ProblemBox<double, N> box;
  for (int j = 0; j < N; ++j) {
    box.p0[j] = p0.data()[j];
    box.lower[j] = lower.data()[j];
    box.upper[j] = upper.data()[j];
  }
  Summary<double, N> out;
  if (o.log_residuals)  // the two objectives compiled, not the runtime choice of all ten
    solve<Model<N>, FixedObjective<Loss::kLinear, true>>(d, box, o, out);
  else
    solve<Model<N>, FixedObjective<Loss::kLinear, false>>(d, box, o, out);
  Solved s;
  for (int j = 0; j < N; ++j) s.p[j] = out.p[j];
  s.cost = out.cost;
  s.optimality = out.optimality;
  s.status = out.status;
  s.nfev = out.nfev;
  s.nit = out.nit;
  return s;
}

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
  bindings::require(o.loss == Loss::kLinear, "loss: a Python model takes the linear loss");
  Solved out;
  switch (n) {  // (n is 1 to K, checked above)
    case 1: out = solve_sized<1>(d, p0, lower, upper, o); break;
    case 2: out = solve_sized<2>(d, p0, lower, upper, o); break;
    case 3: out = solve_sized<3>(d, p0, lower, upper, o); break;
    case 4: out = solve_sized<4>(d, p0, lower, upper, o); break;
    case 5: out = solve_sized<5>(d, p0, lower, upper, o); break;
    case 6: out = solve_sized<6>(d, p0, lower, upper, o); break;
    case 7: out = solve_sized<7>(d, p0, lower, upper, o); break;
    default: out = solve_sized<8>(d, p0, lower, upper, o); break;
  }
  static_assert(K == 8, "one case per parameter count");

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
