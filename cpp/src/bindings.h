// bindings.h: what both compiled modules (_core and _cuda) share: the model registry, the
// shape checks of a packed batch, and the allocation of the result arrays.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "lawfit/batch.h"
#include "lawfit/models/all.h"
#include "lawfit/status.h"

namespace py = pybind11;

namespace lawfit::bindings {


template <class T>
using FArray = py::array_t<T, py::array::c_style | py::array::forcecast>;
using F64 = FArray<double>;
using I64 = py::array_t<long long, py::array::c_style | py::array::forcecast>;

struct ModelEntry {
  std::string name;
  std::vector<std::string> params;
  std::vector<std::string> inputs;
  int n_inputs;
  std::string formula;
  bool has_log;
  bool log_inputs;  // the model takes log x (see models/common.h)
  void (*eval)(const double* p, const double* x, long long n, bool log_value, double* f,
               double* grad);
};

template <class Model>
 void eval_points(const double* p, const double* x, long long n, bool log_value, double* f,
                 double* grad) {
  constexpr int N = Model::kParams;
  for (long long i = 0; i < n; ++i) {
    const double* pi = p + i * N;
    const double* xi = x + i * Model::kInputs;
    double* gi = grad + i * N;
    if constexpr (HasLog<Model>::value) {
      f[i] = log_value ? Model::eval_log(pi, xi, gi) : Model::eval(pi, xi, gi);
    } else {
      f[i] = Model::eval(pi, xi, gi);
    }
  }
}

template <class Model>
 ModelEntry make_entry() {
  ModelEntry e;
  e.name = Model::kName;
  for (const char* p : Model::kParamNames) e.params.emplace_back(p);
  for (const char* x : Model::kInputNames) e.inputs.emplace_back(x);
  e.n_inputs = Model::kInputs;
  e.formula = Model::kFormula;
  e.has_log = HasLog<Model>::value;
  e.log_inputs = LogInputs<Model>::value;
  e.eval = &eval_points<Model>;
  return e;
}

inline const std::vector<ModelEntry>& registry() {
  static const std::vector<ModelEntry> entries = [] {
    std::vector<ModelEntry> v;
#define LAWFIT_REGISTER(M) v.push_back(make_entry<M>());
    LAWFIT_FOR_EACH_MODEL(LAWFIT_REGISTER)
#undef LAWFIT_REGISTER
    return v;
  }();
  return entries;
}

inline const ModelEntry& find_model(const std::string& name) {
  for (const auto& e : registry())
    if (e.name == name) return e;
  throw py::value_error("model: unknown model '" + name + "'");
}

inline Loss parse_loss(const std::string& s) {
  if (s == "linear") return Loss::kLinear;
  if (s == "soft_l1") return Loss::kSoftL1;
  if (s == "huber") return Loss::kHuber;
  if (s == "cauchy") return Loss::kCauchy;
  if (s == "arctan") return Loss::kArctan;
  throw py::value_error("loss: unknown loss '" + s + "'");
}

// Raises ValueError(msg) where !ok.  In the loops over every problem or point, pass a
// literal or a callable that makes the message: a std::string argument is built on every
// call, and allocating one per problem cost 0.1 us each.
inline void require(bool ok, const char* msg) {
  if (!ok) throw py::value_error(msg);
}
inline void require(bool ok, const std::string& msg) {
  if (!ok) throw py::value_error(msg);
}
template <class MakeMsg, class = decltype(std::declval<const MakeMsg&>()())>
inline void require(bool ok, const MakeMsg& make_msg) {
  if (!ok) throw py::value_error(make_msg());
}

inline void check_shape(const py::array& a, std::vector<py::ssize_t> shape, const char* name) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t k = 0; ok && k < shape.size(); ++k) ok = a.shape(k) == shape[k];
  if (!ok) {
    std::string want = "(";
    for (size_t k = 0; k < shape.size(); ++k) want += (k ? ", " : "") + std::to_string(shape[k]);
    throw py::value_error(std::string(name) + ": expected shape " + want + ")");
  }
}

// A required 1-D array of `n` entries, converted to A; a ValueError naming `what` otherwise.
template <class A>
A vector_arg(const py::object& obj, py::ssize_t n, const std::string& what,
             const std::string& expected) {
  A a = A::ensure(obj);
  require(static_cast<bool>(a) && a.ndim() == 1 && a.shape(0) == n,
          what + ": expected " + expected);
  return a;
}

// The model's inputs: x itself, or log x for models that take logarithms.  fit() receives
// them already transformed (the Python layer takes the logarithm once per batch, vectorised);
// evaluate_model() takes raw x and uses this.
inline F64 model_inputs(const ModelEntry& m, const F64& x) {
  if (!m.log_inputs) return x;
  F64 u(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const double* src = x.data();
  double* dst = u.mutable_data();
  for (py::ssize_t i = 0; i < x.size(); ++i) dst[i] = std::log(src[i]);
  return u;
}

// The solver options of a call in precision T.
template <class T>
Options make_options(bool log_residuals, const std::string& loss, double f_scale, double ftol,
                     double xtol, double gtol, int max_nfev, double initial_damping,
                     int max_nfev_cap = 0) {
  require(max_nfev >= 1, "max_nfev: must be >= 1");
  require(max_nfev_cap == 0 || max_nfev_cap >= max_nfev,
          "max_nfev_cap: must be 0 (no extension) or >= max_nfev");
  require(f_scale > 0, "f_scale: must be > 0");
  Options o;
  o.ftol = ftol;
  o.xtol = xtol;
  o.gtol = gtol;
  o.max_nfev = max_nfev;
  o.max_nfev_cap = max_nfev_cap;
  o.initial_damping = initial_damping;
  o.log_residuals = log_residuals;
  o.loss = parse_loss(loss);
  o.f_scale = f_scale;
  // fp32: a damping fp32 can hold (lambda * nu stays finite) bounds every solve.
  if (sizeof(T) == sizeof(float)) o.max_damping = 1e30;
  return o;
}

// The most threads a call may ask for: more is refused (a typo, not a machine).
inline constexpr int kMaxThreads = 4096;

inline void check_threads(int n_threads) {
  require(n_threads >= 0 && n_threads <= kMaxThreads, [n_threads] {
    return "n_threads: expected 0 (one per usable CPU) to " + std::to_string(kMaxThreads) +
           ", got " + std::to_string(n_threads);
  });
}

// A long call's check for interrupts, run by its calling thread (without the GIL) about every
// 50 ms: it throws what stops the call (py::error_already_set: KeyboardInterrupt for Ctrl-C).
using Interrupt = void (*)();

// Takes the GIL and runs Python's signal handlers.
inline void check_signals() {
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

// The interrupt check for a call from this thread (with the GIL held): Python runs signal
// handlers on its main thread only, so elsewhere there is nothing to check (nullptr).
inline Interrupt interrupt_check() {
  try {
    const auto main = py::module_::import("threading").attr("main_thread")().attr("ident");
    return main.cast<unsigned long>() == PyThread_get_thread_ident() ? &check_signals : nullptr;
  } catch (const py::error_already_set&) {  // no threading module (interpreter shutdown)
    return nullptr;
  }
}

// What a backend runs on a checked, packed batch whose arrays are on the host, in
// precision T (double; float where fp32 was asked for).  `engine` picks the CPU driver's
// engine ("auto", "scalar" or a SIMD build; the CUDA backend accepts "auto" only);
// `interrupt`, where not null, is for the calling thread to run now and then.
template <class T>
struct SolveFnOf {  // a struct, so that fit_packed deduces T from its arrays only
  using type = std::function<void(const ModelEntry& m, const Batch<T>& b, long long n_points,
                                  const Options& o, int n_threads, const std::string& engine,
                                  Interrupt interrupt)>;
};
using SolveFn = SolveFnOf<double>::type;

template <class T>
py::dict fit_packed(const typename SolveFnOf<T>::type& solve_fn, const std::string& model,
             const FArray<T>& x, const FArray<T>& t, const py::object& sigma_obj,
             const py::object& w_obj, const I64& offsets, const FArray<T>& p0,
             const FArray<T>& lower, const FArray<T>& upper, bool log_residuals, const std::string& loss, double f_scale,
             double ftol, double xtol, double gtol, int max_nfev, double initial_damping,
             int n_threads, bool return_jtj, const std::string& engine,
             const py::object& data_of_obj = py::none(),
             const py::object& resample_of_obj = py::none(), unsigned long long seed = 0,
             bool box_per_problem = false, int resample_mode = 0,
             const py::object& group_of_obj = py::none(),
             const py::object& n_groups_obj = py::none(),
             const py::object& fit_t_obj = py::none(), const py::object& fit_r_obj = py::none(),
             bool x_shared = false, bool bounds_shared = false, int max_nfev_cap = 0) {
  const ModelEntry& m = find_model(model);
  check_threads(n_threads);
  const py::ssize_t n_params = static_cast<py::ssize_t>(m.params.size());
  require(offsets.ndim() == 1 && offsets.shape(0) >= 1, "offsets: expected a 1-D array");
  const py::ssize_t n_data = offsets.shape(0) - 1;
  // Solve units: one per problem, or one per entry of data_of (the problem it fits).
  I64 data_of;
  if (!data_of_obj.is_none()) {
    data_of = I64::ensure(data_of_obj);
    require(static_cast<bool>(data_of) && data_of.ndim() == 1,
            "data_of: expected a 1-D integer array");
    const long long* k = data_of.data();
    for (py::ssize_t i = 0; i < data_of.shape(0); ++i)
      require(k[i] >= 0 && k[i] < n_data,
              [i] { return "data_of: entry " + std::to_string(i) + " is not a problem index"; });
  }
  const py::ssize_t n_problems = data_of_obj.is_none() ? n_data : data_of.shape(0);
  py::array_t<unsigned int, py::array::c_style | py::array::forcecast> resample_of;
  if (!resample_of_obj.is_none()) {
    resample_of = vector_arg<py::array_t<unsigned int, py::array::c_style | py::array::forcecast>>(
        resample_of_obj, n_problems, "resample_of",
        "one resample index per unit, shape (" + std::to_string(n_problems) + ",)");
  }
  const py::ssize_t n_points = t.ndim() == 1 ? t.shape(0) : -1;
  check_shape(t, {n_points}, "t");
  if (!x_shared) check_shape(x, {n_points, m.n_inputs}, "x");
  const py::ssize_t box_rows = box_per_problem ? n_data : n_problems;
  check_shape(p0, {box_rows, n_params}, "p0");
  check_shape(lower, {bounds_shared ? 1 : box_rows, n_params}, "lower");
  check_shape(upper, {bounds_shared ? 1 : box_rows, n_params}, "upper");
  const long long* off = offsets.data();
  require(off[0] == 0 && off[n_data] == n_points,
          "offsets: must start at 0 and end at the number of points");
  for (py::ssize_t i = 0; i < n_data; ++i)
    require(off[i] <= off[i + 1], "offsets: must be non-decreasing");
  if (x_shared) {  // one problem's inputs for all: every problem has that many points
    require(x.ndim() == 2 && x.shape(1) == m.n_inputs,
            "x: expected shape (points per problem, " + std::to_string(m.n_inputs) +
                ") with x_shared");
    for (py::ssize_t i = 0; i < n_data; ++i)
      require(off[i + 1] - off[i] == x.shape(0), [&] {
        return "x_shared: problem " + std::to_string(i) + " has " +
               std::to_string(off[i + 1] - off[i]) + " points, x has " +
               std::to_string(x.shape(0)) + " rows";
      });
  }
  FArray<T> sigma, w;
  if (!sigma_obj.is_none()) {
    sigma = FArray<T>::ensure(sigma_obj);
    require(static_cast<bool>(sigma), "sigma: expected a float array");
    check_shape(sigma, {n_points}, "sigma");
  }
  if (!w_obj.is_none()) {
    w = FArray<T>::ensure(w_obj);
    require(static_cast<bool>(w), "weights: expected a float array");
    check_shape(w, {n_points}, "weights");
  }

  const Options o = make_options<T>(log_residuals, loss, f_scale, ftol, xtol, gtol, max_nfev,
                                    initial_damping, max_nfev_cap);

  FArray<T> p({n_problems, n_params});
  FArray<T> cost(n_problems), optimality(n_problems);
  py::array_t<signed char> active({n_problems, n_params});
  py::array_t<int> status(n_problems), nfev(n_problems), njev(n_problems), nit(n_problems);
  FArray<T> jtj;
  if (return_jtj) jtj = FArray<T>({n_problems, n_params, n_params});

  Batch<T> b;
  b.x = x.data();
  b.t = t.data();
  b.sigma = sigma_obj.is_none() ? nullptr : sigma.data();
  b.w = w_obj.is_none() ? nullptr : w.data();
  b.offsets = off;
  b.p0 = p0.data();
  b.lower = lower.data();
  b.upper = upper.data();
  b.n_problems = n_problems;
  b.data_of = data_of_obj.is_none() ? nullptr : data_of.data();
  b.resample_of = resample_of_obj.is_none() ? nullptr : resample_of.data();
  b.boot_seed = seed;
  b.box_per_problem = box_per_problem;
  b.x_shared = x_shared;
  b.bounds_shared = bounds_shared;
  b.resample_mode = resample_mode;
  require(resample_mode >= 0 && resample_mode <= 4, "resample_mode: expected 0 to 4");
  FArray<T> fit_t, fit_r;
  if (resample_mode == 4) {
    require(!fit_t_obj.is_none() && !fit_r_obj.is_none(),
            "fit_t, fit_r: required by the residual bootstrap");
    fit_t = vector_arg<FArray<T>>(fit_t_obj, n_points, "fit_t", "one fitted target per point");
    fit_r = vector_arg<FArray<T>>(fit_r_obj, n_points, "fit_r", "one residual per point");
    b.fit_t = fit_t.data();
    b.fit_r = fit_r.data();
  }
  using I32 = py::array_t<int, py::array::c_style | py::array::forcecast>;
  I32 group_of, n_groups;
  if (resample_mode == 1 || resample_mode == 3) {
    require(!group_of_obj.is_none() && !n_groups_obj.is_none(),
            "group_of, n_groups: required by grouped resampling");
    group_of = vector_arg<I32>(group_of_obj, n_points, "group_of", "one group index per point");
    n_groups = vector_arg<I32>(n_groups_obj, n_data, "n_groups", "one group count per problem");
    for (py::ssize_t k = 0; k < n_data; ++k) {
      const int G = n_groups.data()[k];
      require(G >= 1 && G <= off[k + 1] - off[k] + (off[k + 1] == off[k] ? 1 : 0), [k] {
        return "n_groups: problem " + std::to_string(k) + " has an impossible group count";
      });
      for (long long pt = off[k]; pt < off[k + 1]; ++pt)
        require(group_of.data()[pt] >= 0 && group_of.data()[pt] < G, [pt] {
          return "group_of: point " + std::to_string(pt) + " names no group of its problem";
        });
    }
    b.group_of = group_of.data();
    b.n_groups = n_groups.data();
  }
  b.n_data = n_data;
  b.p = p.mutable_data();
  b.cost = cost.mutable_data();
  b.optimality = optimality.mutable_data();
  b.jtj = return_jtj ? jtj.mutable_data() : nullptr;
  b.active = active.mutable_data();
  b.status = status.mutable_data();
  b.nfev = nfev.mutable_data();
  b.njev = njev.mutable_data();
  b.nit = nit.mutable_data();
  const Interrupt interrupt = interrupt_check();
  {
    py::gil_scoped_release release;
    solve_fn(m, b, n_points, o, n_threads, engine, interrupt);
  }
  py::dict out;
  out["x"] = p;
  out["cost"] = cost;
  out["optimality"] = optimality;
  out["active_mask"] = active;
  out["status"] = status;
  out["nfev"] = nfev;
  out["njev"] = njev;
  out["nit"] = nit;
  if (return_jtj) out["jtj"] = jtj;
  return out;
}

inline py::tuple evaluate_model(const std::string& model, const F64& p, const F64& x, bool log_value) {
  const ModelEntry& m = find_model(model);
  require(p.ndim() == 2 && p.shape(1) == static_cast<py::ssize_t>(m.params.size()),
          "p: expected shape (points, n_params)");
  const py::ssize_t n = p.shape(0);
  check_shape(x, {n, m.n_inputs}, "x");
  require(!log_value || m.has_log, "log_value: model has no native log form");
  F64 f(n);
  F64 grad({n, static_cast<py::ssize_t>(m.params.size())});
  const F64 u = model_inputs(m, x);
  m.eval(p.data(), u.data(), n, log_value, f.mutable_data(), grad.mutable_data());
  return py::make_tuple(f, grad);
}

// Registers `fit(model, x, t, sigma, weights, offsets, p0, lower, upper, *, options...)` on a
// module, solved by `solve_fn` (the CPU driver or the CUDA launcher).
// With T = float (name "fit32"): the same in fp32, arrays cast to float32, results float32.
template <class T = double, class Fn>
inline void def_fit(py::module_& mod, Fn solve_fn, const char* doc, const char* name = "fit") {
  const typename SolveFnOf<T>::type fn = solve_fn;
  mod.def(
      name,
      [fn](const std::string& model, const FArray<T>& x, const FArray<T>& t,
           const py::object& sigma, const py::object& w, const I64& offsets,
           const FArray<T>& p0, const FArray<T>& lower, const FArray<T>& upper,
           bool log_residuals, const std::string& loss, double f_scale, double ftol,
           double xtol, double gtol, int max_nfev, double initial_damping, int n_threads,
           bool return_jtj, const std::string& engine, const py::object& data_of,
           const py::object& resample_of, unsigned long long seed, bool box_per_problem,
           int resample_mode, const py::object& group_of, const py::object& n_groups,
           const py::object& fit_t, const py::object& fit_r, bool x_shared,
           bool bounds_shared, int max_nfev_cap) {
        return fit_packed(fn, model, x, t, sigma, w, offsets, p0, lower, upper,
                          log_residuals, loss, f_scale, ftol, xtol, gtol, max_nfev,
                          initial_damping, n_threads, return_jtj, engine, data_of,
                          resample_of, seed, box_per_problem, resample_mode, group_of,
                          n_groups, fit_t, fit_r, x_shared, bounds_shared, max_nfev_cap);
      },
      py::arg("model"), py::arg("x"), py::arg("t"), py::arg("sigma"), py::arg("weights"),
      py::arg("offsets"), py::arg("p0"), py::arg("lower"), py::arg("upper"), py::kw_only(),
      py::arg("log_residuals"), py::arg("loss"), py::arg("f_scale"), py::arg("ftol"),
      py::arg("xtol"), py::arg("gtol"), py::arg("max_nfev"), py::arg("initial_damping"),
      py::arg("n_threads"), py::arg("return_jtj"), py::arg("engine") = "auto",
      py::arg("data_of") = py::none(), py::arg("resample_of") = py::none(),
      py::arg("seed") = 0, py::arg("box_per_problem") = false, py::arg("resample_mode") = 0,
      py::arg("group_of") = py::none(), py::arg("n_groups") = py::none(),
      py::arg("fit_t") = py::none(), py::arg("fit_r") = py::none(),
      py::arg("x_shared") = false, py::arg("bounds_shared") = false,
      py::arg("max_nfev_cap") = 0, doc);
}

// Defines `objective` on mod: the cost at each unit's parameters, through cost_fn (a SolveFn
// that writes b.cost from b.p0 and ignores the solver options; `engine` as for fit).
template <class T = double, class Fn>
inline void def_objective(py::module_& mod, Fn cost_fn, const char* name = "objective") {
  const typename SolveFnOf<T>::type fn = cost_fn;
  mod.def(
      name,
      [fn](const std::string& model, const FArray<T>& x, const FArray<T>& t,
           const py::object& sigma, const py::object& w, const I64& offsets,
           const FArray<T>& params, const py::object& data_of, bool log_residuals,
           const std::string& loss, double f_scale, int n_threads,
           const py::object& resample_of, unsigned long long seed, int resample_mode,
           const py::object& group_of, const py::object& n_groups, const py::object& fit_t,
           const py::object& fit_r, const std::string& engine) {
        py::dict out = fit_packed(fn, model, x, t, sigma, w, offsets, params, params,
                                  params, log_residuals, loss, f_scale, 1e-8, 1e-8, 1e-8, 1,
                                  1e-3, n_threads, false, engine, data_of, resample_of, seed,
                                  false, resample_mode, group_of, n_groups, fit_t, fit_r);
        return py::object(out["cost"]);  // a reference that outlives `out`
      },
      py::arg("model"), py::arg("x"), py::arg("t"), py::arg("sigma"), py::arg("weights"),
      py::arg("offsets"), py::arg("params"), py::kw_only(), py::arg("data_of") = py::none(),
      py::arg("log_residuals"), py::arg("loss"), py::arg("f_scale"), py::arg("n_threads") = 0,
      py::arg("resample_of") = py::none(), py::arg("seed") = 0, py::arg("resample_mode") = 0,
      py::arg("group_of") = py::none(), py::arg("n_groups") = py::none(),
      py::arg("fit_t") = py::none(), py::arg("fit_r") = py::none(), py::arg("engine") = "auto",
      "The objective (0.5 sum of rho of the squared residuals, the cost fit() reports) at "
      "each unit's parameters, +inf where it is not finite; rows of params are units, as in "
      "fit().  For ranking a grid of starts.");
}

}  // namespace lawfit::bindings
