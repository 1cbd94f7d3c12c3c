// bindings.h: what both compiled modules (_core and _cuda) share: the model registry, the
// shape checks of a packed batch, and the allocation of the result arrays.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "covariance.h"
#include "lawfit/batch.h"
#include "lawfit/models/all.h"
#include "lawfit/status.h"
#include "lawfit/tape.h"

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
  void (*eval)(const void* ctx, const double* p, const double* x, long long n, bool log_value,
               double* f, double* grad);
};

template <class Model>
void eval_points(const void* ctx, const double* p, const double* x, long long n,
                 bool log_value, double* f, double* grad) {
  constexpr int N = Model::kParams;
  for (long long i = 0; i < n; ++i) {
    const double* pi = p + i * N;
    const double* xi = x + i * Model::kInputs;
    double* gi = grad + i * N;
    if constexpr (HasLog<Model>::value) {
      f[i] = log_value ? model_eval_log<Model>(ctx, pi, xi, gi)
                       : model_eval<Model>(ctx, pi, xi, gi);
    } else {
      f[i] = model_eval<Model>(ctx, pi, xi, gi);
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

inline const ModelEntry& find_model(std::string_view name) {
  for (const auto& e : registry())
    if (e.name == name) return e;
  throw py::value_error("model: unknown model '" + std::string(name) + "'");
}

// What a driver that has no instantiation of m's model does.
[[noreturn]] inline void unknown_model(const ModelEntry& m) {
  throw std::invalid_argument("model: this backend has no compiled form of '" + m.name + "'");
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

// A user's law (lawfit.law) as the compiled core runs it: its two programs (tape.h), checked
// once when made, and the entry of the TapeModel of its parameter count.  Python makes one
// per law (lawfit._core.Law) and passes it where a model name goes.
struct Law {
  using I32 = py::array_t<int, py::array::c_style | py::array::forcecast>;
  I32 code[2], out[2];
  F64 consts[2];
  TapeContext ctx;
  const ModelEntry* entry = nullptr;

  template <class Model>
  static ModelEntry tape_entry() {
    ModelEntry e;
    e.name = Model::kName;
    for (int j = 0; j < Model::kParams; ++j) e.params.push_back("p" + std::to_string(j));
    for (int c = 0; c < Model::kInputs; ++c) e.inputs.push_back("u" + std::to_string(c));
    e.n_inputs = Model::kInputs;
    e.formula = "(a user's law)";
    e.has_log = true;
    e.log_inputs = false;
    e.eval = &eval_points<Model>;
    return e;
  }

  static const std::vector<ModelEntry>& entries() {
    static const std::vector<ModelEntry> v = [] {
      std::vector<ModelEntry> r;
#define LAWFIT_REGISTER(M) r.push_back(tape_entry<M>());
      LAWFIT_FOR_EACH_TAPE_MODEL(LAWFIT_REGISTER)
#undef LAWFIT_REGISTER
      return r;
    }();
    return v;
  }

  // One program: code (n, 4) int32, consts (n,), out (1 + n_params,) int32.
  void set(int k, const py::object& c, const py::object& v, const py::object& o,
           int n_params, const char* what) {
    const std::string w(what);
    code[k] = I32::ensure(c);
    consts[k] = F64::ensure(v);
    out[k] = I32::ensure(o);
    require(code[k] && code[k].ndim() == 2 && code[k].shape(1) == 4,
            w + ": code: expected an (operations, 4) integer array");
    const py::ssize_t n = code[k].shape(0);
    require(n >= 1 && n <= kMaxTapeOps, [&] {
      return w + ": " + std::to_string(n) + " operations; a law's program has 1 to " +
             std::to_string(kMaxTapeOps);
    });
    require(consts[k] && consts[k].ndim() == 1 && consts[k].shape(0) == n,
            w + ": consts: expected one constant per operation");
    require(out[k] && out[k].ndim() == 1 && out[k].shape(0) == 1 + n_params,
            w + ": out: expected the value's register and one per parameter");
    const int* ops = code[k].data();
    for (py::ssize_t i = 0; i < n; ++i) {
      const int op = ops[4 * i], a = ops[4 * i + 1], b = ops[4 * i + 2], imm = ops[4 * i + 3];
      const auto at = [&] { return w + ": operation " + std::to_string(i) + ": "; };
      require(op >= 0 && op < kTapeOpCount, [&] { return at() + "unknown operation"; });
      require(a >= 0 && b >= 0 && (i == 0 || (a < i && b < i)) && (i > 0 || op <= kTapeInput),
              [&] { return at() + "reads a register not yet written"; });
      if (op == kTapeParam)
        require(imm >= 0 && imm < n_params, [&] { return at() + "no such parameter"; });
      if (op == kTapeInput)
        require(imm >= 0 && imm < kTapeColumns, [&] { return at() + "no such input column"; });
    }
    const int* r = out[k].data();
    for (int j = 0; j <= n_params; ++j)
      require(r[j] < n && r[j] >= (j == 0 ? 0 : -1), w + ": out: not a register");
    TapeProgram& pr = k == 0 ? ctx.value : ctx.log;
    pr.code = ops;
    pr.consts = consts[k].data();
    pr.n_ops = static_cast<int>(n);
    pr.out = r;
    // The leading runs of loads (tape.h): parameters, then input columns, then constants.
    int i = 0;
    int* counts[3] = {&pr.n_param_loads, &pr.n_input_loads, &pr.n_const_loads};
    const int kinds[3] = {kTapeParam, kTapeInput, kTapeConst};
    for (int run = 0; run < 3; ++run) {
      *counts[run] = 0;
      for (; i < n && ops[4 * i] == kinds[run]; ++i) ++*counts[run];
    }
  }

  Law(int n_params, const py::tuple& value, const py::tuple& log) {
    require(n_params >= 1 && n_params <= kMaxTapeParams, [n_params] {
      return "n_params: a law's compiled form takes 1 to " + std::to_string(kMaxTapeParams) +
             " parameters, got " + std::to_string(n_params);
    });
    require(value.size() == 3 && log.size() == 3,
            "value, log: expected (code, consts, out) each");
    set(0, value[0], value[1], value[2], n_params, "value");
    set(1, log[0], log[1], log[2], n_params, "log");
    ctx.n_params = n_params;
    entry = &entries()[n_params - 1];
  }
};

// The model of a call: a built-in's name, or a Law; `ctx` receives the model's context.
inline const ModelEntry& resolve_model(const py::handle& model, const void** ctx) {
  *ctx = nullptr;
  if (PyUnicode_Check(model.ptr())) {  // the name as the str holds it (no copy)
    Py_ssize_t size = 0;
    const char* name = PyUnicode_AsUTF8AndSize(model.ptr(), &size);
    if (!name) throw py::error_already_set();
    return find_model(std::string_view(name, static_cast<size_t>(size)));
  }
  if (py::isinstance<Law>(model)) {
    const Law& law = model.cast<const Law&>();
    *ctx = &law.ctx;
    return *law.entry;
  }
  throw py::value_error("model: expected a built-in model's name or a compiled law");
}

inline void def_law(py::module_& mod) {
  py::class_<Law>(mod, "Law",
                  "A user's law's compiled form (lawfit.law makes it): its programs for f and "
                  "log f with their gradients (lawfit/tape.h), checked once.")
      .def(py::init<int, const py::tuple&, const py::tuple&>(), py::arg("n_params"),
           py::arg("value"), py::arg("log"))
      .def(
          "set_native",
          [](Law& l, std::uintptr_t bytes, std::uintptr_t run) {
            require((bytes == 0) == (run == 0), "bytes, run: both entry points, or neither");
            l.ctx.native_bytes = reinterpret_cast<const void*>(bytes);
            l.ctx.native_run = reinterpret_cast<const void*>(run);
          },
          py::arg("bytes"), py::arg("run"),
          "Use the law's native build (its entry points' addresses; 0, 0: none) where a fit "
          "runs on the 'auto' engine.  The caller keeps the library loaded.")
      .def_property_readonly("native", [](const Law& l) { return l.ctx.native_run != nullptr; })
      .def_property_readonly("n_params", [](const Law& l) { return l.ctx.n_params; })
      .def_property_readonly("n_columns", [](const Law&) { return kTapeColumns; });
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

// The solver options of a call in precision T, from any object with the attributes of
// lawfit._options.Options (loss, f_scale, ftol, xtol, gtol, max_nfev, max_nfev_cap,
// initial_damping); `log_residuals` is the data's (its targets are y or log y).
// (One lookup per attribute, by a name made once; an Options gives all eight at once, as
// its tuple `core_fields`.)  An attribute that is missing raises ValueError, or where not
// `required` gives a null object.
inline py::object option_attr(const py::handle& options, const char* name,
                              bool required = true) {
  // The names read (string literals), interned once each and kept for the process; read
  // and written with the GIL held, as every call here is.
  static const char* names[16] = {};
  static PyObject* keys[16] = {};
  PyObject* key = nullptr;
  size_t k = 0;
  for (; k < std::size(names) && names[k]; ++k)
    if (std::strcmp(names[k], name) == 0) {
      key = keys[k];
      break;
    }
  py::object owned;  // a name beyond the table's: made for this call
  if (!key) {
    key = PyUnicode_InternFromString(name);
    if (!key) throw py::error_already_set();
    if (k < std::size(names)) {
      names[k] = name;
      keys[k] = key;
    } else {
      owned = py::reinterpret_steal<py::object>(key);
    }
  }
  PyObject* v = PyObject_GetAttr(options.ptr(), key);
  if (!v) {
    if (!PyErr_ExceptionMatches(PyExc_AttributeError)) throw py::error_already_set();
    PyErr_Clear();
    if (!required) return py::object();
    throw py::value_error(std::string("options: has no attribute '") + name + "'");
  }
  return py::reinterpret_steal<py::object>(v);
}

template <class T>
Options make_options(const py::handle& options, bool log_residuals) {
  Options o;
  // The eight fields in one tuple (lawfit._options.Options.core_fields), or one by one.
  const py::object fields = option_attr(options, "core_fields", false);
  const bool packed = fields && PyTuple_Check(fields.ptr()) && PyTuple_GET_SIZE(fields.ptr()) == 8;
  auto field = [&](int k, const char* name) {
    return packed ? py::reinterpret_borrow<py::object>(PyTuple_GET_ITEM(fields.ptr(), k))
                  : option_attr(options, name);
  };
  o.ftol = py::cast<double>(field(0, "ftol"));
  o.xtol = py::cast<double>(field(1, "xtol"));
  o.gtol = py::cast<double>(field(2, "gtol"));
  o.max_nfev = py::cast<int>(field(3, "max_nfev"));
  o.max_nfev_cap = py::cast<int>(field(4, "max_nfev_cap"));
  o.initial_damping = py::cast<double>(field(5, "initial_damping"));
  o.loss = parse_loss(py::cast<std::string>(field(6, "loss")));
  o.f_scale = py::cast<double>(field(7, "f_scale"));
  o.log_residuals = log_residuals;
  require(o.max_nfev >= 1, "max_nfev: must be >= 1");
  require(o.max_nfev_cap == 0 || o.max_nfev_cap >= o.max_nfev,
          "max_nfev_cap: must be 0 (no extension) or >= max_nfev");
  require(o.f_scale > 0, "f_scale: must be > 0");
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
    // threading.main_thread, looked up once (an import per call cost a small call 2 us); it
    // is called each time, since a fork from another thread makes that one the main thread.
    static PyObject* main_thread = nullptr;  // kept for the process
    if (!main_thread) {
      py::object fn = py::module_::import("threading").attr("main_thread");
      main_thread = fn.release().ptr();
    }
    const auto main = py::reinterpret_borrow<py::object>(main_thread)().attr("ident");
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

// A dict's entry, or None where it has none.
inline py::object entry(const py::dict& d, const char* key) {
  return d.contains(key) ? py::reinterpret_borrow<py::object>(d[key]) : py::none();
}

// The host arrays of a call and the Batch that points into them: the one place where arrays
// become a Batch.  `data` (the packed points): x, t, sigma, weights (None: unweighted),
// offsets (P + 1,), log_residuals, and x_shared (x is one problem's inputs, shared by all).
// `box` (the starts): p0, lower, upper, per_problem (a row per problem, read by data_of[i];
// else a row per unit), bounds_shared (lower and upper: one row for all).  `units` (None:
// one unit per problem): data_of, and for resampling resample_of, seed, resample_mode,
// problem_key (None: each problem's index), group_of and n_groups (grouped), fit_t and fit_r
// (residual).
template <class T>
struct HostCall {
  FArray<T> x, t, sigma, w, p0, lower, upper, fit_t, fit_r;
  I64 offsets, data_of, problem_key;
  py::array_t<unsigned int, py::array::c_style | py::array::forcecast> resample_of;
  py::array_t<int, py::array::c_style | py::array::forcecast> group_of, n_groups;
  bool log_residuals = false;
  long long n_points = 0;
  Batch<T> b{};

  HostCall(const ModelEntry& m, const py::dict& data, const py::dict& box,
           const py::object& units) {
    using I32 = py::array_t<int, py::array::c_style | py::array::forcecast>;
    const py::ssize_t n_params = static_cast<py::ssize_t>(m.params.size());
    for (const char* key : {"x", "t", "offsets"})
      require(data.contains(key), std::string("data: has no '") + key + "'");
    for (const char* key : {"p0", "lower", "upper"})
      require(box.contains(key), std::string("box: has no '") + key + "'");
    x = FArray<T>::ensure(data["x"]);
    t = FArray<T>::ensure(data["t"]);
    offsets = I64::ensure(data["offsets"]);
    require(static_cast<bool>(x) && static_cast<bool>(t), "x, t: expected float arrays");
    require(static_cast<bool>(offsets) && offsets.ndim() == 1 && offsets.shape(0) >= 1,
            "offsets: expected a 1-D array");
    log_residuals = entry(data, "log_residuals").is_none() ? false
                                                            : data["log_residuals"].cast<bool>();
    const bool x_shared = !entry(data, "x_shared").is_none() && data["x_shared"].cast<bool>();
    const bool per_problem =
        !entry(box, "per_problem").is_none() && box["per_problem"].cast<bool>();
    const bool bounds_shared =
        !entry(box, "bounds_shared").is_none() && box["bounds_shared"].cast<bool>();
    const py::ssize_t n_problems = offsets.shape(0) - 1;
    // Solve units: one per problem, or one per entry of data_of (the problem it fits).
    py::dict u = units.is_none() ? py::dict() : units.cast<py::dict>();
    const py::object data_of_obj = entry(u, "data_of");
    if (!data_of_obj.is_none()) {
      data_of = I64::ensure(data_of_obj);
      require(static_cast<bool>(data_of) && data_of.ndim() == 1,
              "data_of: expected a 1-D integer array");
      const long long* k = data_of.data();
      for (py::ssize_t i = 0; i < data_of.shape(0); ++i)
        require(k[i] >= 0 && k[i] < n_problems,
                [i] { return "data_of: entry " + std::to_string(i) + " is not a problem index"; });
    }
    const py::ssize_t n_units = data_of_obj.is_none() ? n_problems : data_of.shape(0);
    const py::object resample_of_obj = entry(u, "resample_of");
    if (!resample_of_obj.is_none()) {
      resample_of = vector_arg<decltype(resample_of)>(
          resample_of_obj, n_units, "resample_of",
          "one resample index per unit, shape (" + std::to_string(n_units) + ",)");
    }
    n_points = t.ndim() == 1 ? t.shape(0) : -1;
    check_shape(t, {n_points}, "t");
    if (!x_shared) check_shape(x, {n_points, m.n_inputs}, "x");
    const py::ssize_t box_rows = per_problem ? n_problems : n_units;
    p0 = FArray<T>::ensure(box["p0"]);
    lower = FArray<T>::ensure(box["lower"]);
    upper = FArray<T>::ensure(box["upper"]);
    require(static_cast<bool>(p0) && static_cast<bool>(lower) && static_cast<bool>(upper),
            "p0, lower, upper: expected float arrays");
    check_shape(p0, {box_rows, n_params}, "p0");
    check_shape(lower, {bounds_shared ? 1 : box_rows, n_params}, "lower");
    check_shape(upper, {bounds_shared ? 1 : box_rows, n_params}, "upper");
    const long long* off = offsets.data();
    require(off[0] == 0 && off[n_problems] == n_points,
            "offsets: must start at 0 and end at the number of points");
    for (py::ssize_t i = 0; i < n_problems; ++i)
      require(off[i] <= off[i + 1], "offsets: must be non-decreasing");
    if (x_shared) {  // one problem's inputs for all: every problem has that many points
      require(x.ndim() == 2 && x.shape(1) == m.n_inputs,
              "x: expected shape (points per problem, " + std::to_string(m.n_inputs) +
                  ") with x_shared");
      for (py::ssize_t i = 0; i < n_problems; ++i)
        require(off[i + 1] - off[i] == x.shape(0), [&] {
          return "x_shared: problem " + std::to_string(i) + " has " +
                 std::to_string(off[i + 1] - off[i]) + " points, x has " +
                 std::to_string(x.shape(0)) + " rows";
        });
    }
    const py::object sigma_obj = entry(data, "sigma"), w_obj = entry(data, "weights");
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
    b.x = x.data();
    b.t = t.data();
    b.sigma = sigma_obj.is_none() ? nullptr : sigma.data();
    b.w = w_obj.is_none() ? nullptr : w.data();
    b.offsets = off;
    b.p0 = p0.data();
    b.lower = lower.data();
    b.upper = upper.data();
    b.n_units = n_units;
    b.n_problems = n_problems;
    b.data_of = data_of_obj.is_none() ? nullptr : data_of.data();
    b.resample_of = resample_of_obj.is_none() ? nullptr : resample_of.data();
    b.box_per_problem = per_problem;
    b.x_shared = x_shared;
    b.bounds_shared = bounds_shared;
    const py::object seed = entry(u, "seed"), mode = entry(u, "resample_mode");
    b.boot_seed = seed.is_none() ? 0 : seed.cast<unsigned long long>();
    const py::object key = entry(u, "problem_key");
    if (!key.is_none()) {
      problem_key = vector_arg<I64>(key, n_problems, "problem_key",
                                    "one stream key per problem, shape (" +
                                        std::to_string(n_problems) + ",)");
      b.problem_key = problem_key.data();
    }
    b.resample_mode = mode.is_none() ? 0 : mode.cast<int>();
    require(b.resample_mode >= 0 && b.resample_mode <= 4, "resample_mode: expected 0 to 4");
    if (b.resample_mode == 4) {
      require(!entry(u, "fit_t").is_none() && !entry(u, "fit_r").is_none(),
              "fit_t, fit_r: required by the residual bootstrap");
      fit_t = vector_arg<FArray<T>>(u["fit_t"], n_points, "fit_t",
                                    "one fitted target per point");
      fit_r = vector_arg<FArray<T>>(u["fit_r"], n_points, "fit_r", "one residual per point");
      b.fit_t = fit_t.data();
      b.fit_r = fit_r.data();
    }
    if (b.resample_mode == 1 || b.resample_mode == 3) {
      require(!entry(u, "group_of").is_none() && !entry(u, "n_groups").is_none(),
              "group_of, n_groups: required by grouped resampling");
      group_of = vector_arg<I32>(u["group_of"], n_points, "group_of",
                                 "one group index per point");
      n_groups = vector_arg<I32>(u["n_groups"], n_problems, "n_groups",
                                 "one group count per problem");
      for (py::ssize_t k = 0; k < n_problems; ++k) {
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
  }
};

// The result dicts' keys, made once (interned, and kept for the process's life, as the
// module is), so that a call does not decode and hash each name again.
struct ResultKeys {
  py::handle x, cost, optimality, active_mask, status, nfev, njev, nit, jtj, cov, n_free,
      n_omitted, offsets;
};
inline const ResultKeys& result_keys() {
  static const ResultKeys keys = [] {
    const auto key = [](const char* name) {
      PyObject* s = PyUnicode_InternFromString(name);
      if (!s) throw py::error_already_set();
      return py::handle(s);
    };
    return ResultKeys{key("x"),      key("cost"),      key("optimality"), key("active_mask"),
                      key("status"), key("nfev"),      key("njev"),       key("nit"),
                      key("jtj"),    key("cov"),       key("n_free"),     key("n_omitted"),
                      key("offsets")};
  }();
  return keys;
}

// Solves the batch `b` (its inputs set; n_points points) with `solve_fn`; returns fit()'s
// dict.
template <class T>
py::dict run_call(const typename SolveFnOf<T>::type& solve_fn, const ModelEntry& m,
                  Batch<T>& b, long long n_points, const Options& o, int n_threads,
                  bool return_jtj, const std::string& engine) {
  check_threads(n_threads);
  const py::ssize_t n_units = b.n_units;
  const py::ssize_t n_params = static_cast<py::ssize_t>(m.params.size());
  FArray<T> p({n_units, n_params});
  FArray<T> cost(n_units), optimality(n_units);
  py::array_t<signed char> active({n_units, n_params});
  py::array_t<int> status(n_units), nfev(n_units), njev(n_units), nit(n_units);
  FArray<T> jtj;
  if (return_jtj) jtj = FArray<T>({n_units, n_params, n_params});
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
  const ResultKeys& k = result_keys();
  py::dict out;
  out[k.x] = p;
  out[k.cost] = cost;
  out[k.optimality] = optimality;
  out[k.active_mask] = active;
  out[k.status] = status;
  out[k.nfev] = nfev;
  out[k.njev] = njev;
  out[k.nit] = nit;
  if (return_jtj) out[k.jtj] = jtj;
  return out;
}

// fit(): a packed batch solved by solve_fn (see HostCall for data, box and units).
template <class T>
py::dict fit_packed(const typename SolveFnOf<T>::type& solve_fn, const py::object& model,
                    const py::dict& data, const py::dict& box, const py::object& options,
                    const py::object& units, int n_threads, bool return_jtj,
                    const std::string& engine) {
  const void* ctx = nullptr;
  const ModelEntry& m = resolve_model(model, &ctx);
  check_threads(n_threads);
  HostCall<T> call(m, data, box, units);
  call.b.model_ctx = ctx;
  const Options o = make_options<T>(options, call.log_residuals);
  return run_call<T>(solve_fn, m, call.b, call.n_points, o, n_threads, return_jtj, engine);
}

// fit_grid(): the small-call route's solve (lawfit/_plan.py, solve_small).  P problems on
// one grid of inputs u (m, n_inputs; log x where the model takes it), targets t (P, m), starts
// p0 (P, n) or (n,) for all, bounds lower and upper each None (unbounded) or (n,) for all:
// float64 C-contiguous arrays as they are, no copy.  Returns fit()'s dict, with n_free,
// n_omitted and the batch's offsets, and where return_cov with jtj and each problem's
// covariance "cov" (covariance.h, from its m points and the parameters lower == upper holds,
// as lawfit._result.covariance is given them on the general route); or None where the call is not
// that clean case (another dtype or layout, a value not finite, a start outside its box),
// which the general route then checks and reports.  The Batch is what the general route
// packs for the same call (a shared grid, shared bounds), so the results are the same bits
// (tests/test_small.py).  all_finite_t: the check of the targets (the CPU module's runs in
// its widest SIMD build).
template <class Fn>
py::object fit_grid(const Fn& solve_fn, const py::object& model, const py::handle& u_obj,
                    const py::handle& t_obj, const py::handle& p0_obj,
                    const py::handle& lower_obj, const py::handle& upper_obj,
                    const py::object& options, bool log_residuals, int n_threads,
                    const std::string& engine, bool return_cov, bool absolute_sigma,
                    bool singular_inf,
                    bool (*all_finite_t)(const double*, long long) = &all_finite<double>) {
  using Arr = py::array_t<double, py::array::c_style>;
  const void* ctx = nullptr;
  const ModelEntry& m = resolve_model(model, &ctx);
  check_threads(n_threads);
  const py::ssize_t n = static_cast<py::ssize_t>(m.params.size());
  if (!py::isinstance<Arr>(u_obj) || !py::isinstance<Arr>(t_obj) ||
      !py::isinstance<Arr>(p0_obj))
    return py::none();
  const auto u = py::reinterpret_borrow<Arr>(u_obj);
  const auto t = py::reinterpret_borrow<Arr>(t_obj);
  const auto p0 = py::reinterpret_borrow<Arr>(p0_obj);
  if (u.ndim() != 2 || u.shape(1) != m.n_inputs || t.ndim() != 2 || t.shape(1) != u.shape(0) ||
      t.shape(0) < 1 || t.shape(1) < 1)
    return py::none();
  const py::ssize_t P = t.shape(0), mpts = t.shape(1);
  const bool p0_shared = p0.ndim() == 1;
  if (!(p0_shared ? p0.shape(0) == n : p0.ndim() == 2 && p0.shape(0) == P && p0.shape(1) == n))
    return py::none();
  // Bounds: one row for all, or none (that side infinite).
  std::vector<double> unbounded(2 * static_cast<size_t>(n));
  std::fill(unbounded.begin(), unbounded.begin() + n, -INFINITY);
  std::fill(unbounded.begin() + n, unbounded.end(), INFINITY);
  const double* lo = unbounded.data();
  const double* up = unbounded.data() + n;
  for (int side = 0; side < 2; ++side) {  // (the arguments outlive the call: no reference kept)
    const py::handle obj = side == 0 ? lower_obj : upper_obj;
    if (obj.is_none()) continue;
    if (!py::isinstance<Arr>(obj)) return py::none();
    const auto a = py::reinterpret_borrow<Arr>(obj);
    if (a.ndim() != 1 || a.shape(0) != n) return py::none();
    (side == 0 ? lo : up) = a.data();
  }
  // Finite data and starts within their box: else the general route says what is wrong.
  // (A large batch's pass over its targets runs without the GIL.)
  bool finite;
  {
    std::optional<py::gil_scoped_release> release;
    if (t.size() >= (1 << 20)) release.emplace();
    finite = all_finite(u.data(), static_cast<long long>(u.size())) &&
             all_finite_t(t.data(), static_cast<long long>(t.size()));
  }
  if (!finite) return py::none();
  const double* start = p0.data();
  for (py::ssize_t i = 0; i < (p0_shared ? 1 : P); ++i)
    for (py::ssize_t j = 0; j < n; ++j) {
      const double v = start[i * n + j];
      if (!(is_finite(v) && v >= lo[j] && v <= up[j])) return py::none();
    }
  long long n_free = 0;
  for (py::ssize_t j = 0; j < n; ++j) n_free += lo[j] < up[j] ? 1 : 0;
  // The batch: problem i's points are t's row i, its inputs the grid.
  py::array_t<long long> offsets(P + 1);
  long long* off = offsets.mutable_data();
  for (py::ssize_t i = 0; i <= P; ++i) off[i] = static_cast<long long>(i) * mpts;
  std::vector<double> starts;
  if (p0_shared && P > 1) {
    starts.resize(static_cast<size_t>(P * n));
    for (py::ssize_t i = 0; i < P; ++i)
      std::copy(start, start + n, starts.begin() + i * n);
    start = starts.data();
  }
  Batch<double> b{};
  b.x = u.data();
  b.t = t.data();
  b.sigma = b.w = nullptr;
  b.offsets = off;
  b.p0 = start;
  b.lower = lo;
  b.upper = up;
  b.n_units = b.n_problems = P;
  b.bounds_shared = true;
  b.x_shared = true;
  b.checked = mpts >= n_free;  // (finite data and starts in their box, checked above)
  b.model_ctx = ctx;
  const Options o = make_options<double>(options, log_residuals);
  py::dict out = run_call<double>(solve_fn, m, b, static_cast<long long>(P * mpts), o,
                                  n_threads, return_cov, engine);
  const ResultKeys& k = result_keys();
  if (return_cov) {
    F64 cov({P, n, n});
    std::unique_ptr<bool[]> fixed(new bool[n]);  // one row for all: the bounds are shared
    for (py::ssize_t j = 0; j < n; ++j) fixed[j] = lo[j] == up[j];
    const double points = static_cast<double>(mpts);
    cov::covariances(static_cast<int>(n), P, py::reinterpret_borrow<F64>(out[k.jtj]).data(),
                     py::reinterpret_borrow<F64>(out[k.cost]).data(), &points, 0, fixed.get(),
                     0, absolute_sigma, singular_inf, cov.mutable_data());
    out[k.cov] = cov;
  }
  py::array_t<long long> free_of(P), omitted(P);
  std::fill(free_of.mutable_data(), free_of.mutable_data() + P, n_free);
  std::fill(omitted.mutable_data(), omitted.mutable_data() + P, 0LL);
  out[k.n_free] = free_of;
  out[k.n_omitted] = omitted;
  out[k.offsets] = offsets;
  return out;
}

inline py::tuple evaluate_model(const py::object& model, const F64& p, const F64& x,
                                bool log_value) {
  const void* ctx = nullptr;
  const ModelEntry& m = resolve_model(model, &ctx);
  require(p.ndim() == 2 && p.shape(1) == static_cast<py::ssize_t>(m.params.size()),
          "p: expected shape (points, n_params)");
  const py::ssize_t n = p.shape(0);
  check_shape(x, {n, m.n_inputs}, "x");
  require(!log_value || m.has_log, "log_value: model has no native log form");
  F64 f(n);
  F64 grad({n, static_cast<py::ssize_t>(m.params.size())});
  const F64 u = model_inputs(m, x);
  m.eval(ctx, p.data(), u.data(), n, log_value, f.mutable_data(), grad.mutable_data());
  return py::make_tuple(f, grad);
}

// Registers `fit(model, data, box, options, units=None, *, n_threads, return_jtj, engine)`
// on a module (see HostCall), solved by `solve_fn` (the CPU driver or the CUDA launcher).
// With T = float (name "fit32"): the same in fp32, arrays cast to float32, results float32.
template <class T = double, class Fn>
inline void def_fit(py::module_& mod, Fn solve_fn, const char* doc, const char* name = "fit") {
  const typename SolveFnOf<T>::type fn = solve_fn;
  mod.def(
      name,
      [fn](const py::object& model, const py::dict& data, const py::dict& box,
           const py::object& options, const py::object& units, int n_threads,
           bool return_jtj, const std::string& engine) {
        return fit_packed<T>(fn, model, data, box, options, units, n_threads, return_jtj,
                             engine);
      },
      py::arg("model"), py::arg("data"), py::arg("box"), py::arg("options"),
      py::arg("units") = py::none(), py::kw_only(), py::arg("n_threads") = 0,
      py::arg("return_jtj") = false, py::arg("engine") = "auto", doc);
}

// Defines `objective(model, data, params, options, units=None, *, n_threads, engine)` on mod:
// the cost at each unit's parameters (rows of params are units, as in fit()), through
// cost_fn (a SolveFn that writes b.cost from b.p0 and uses the options' loss and f_scale).
template <class T = double, class Fn>
inline void def_objective(py::module_& mod, Fn cost_fn, const char* name = "objective") {
  const typename SolveFnOf<T>::type fn = cost_fn;
  mod.def(
      name,
      [fn](const py::object& model, const py::dict& data, const py::object& params,
           const py::object& options, const py::object& units, int n_threads,
           const std::string& engine) {
        py::dict box;
        box["p0"] = params;  // one row per unit
        box["lower"] = params;
        box["upper"] = params;
        py::dict out = fit_packed<T>(fn, model, data, box, options, units, n_threads, false,
                                     engine);
        return py::object(out["cost"]);  // a reference that outlives `out`
      },
      py::arg("model"), py::arg("data"), py::arg("params"), py::arg("options"),
      py::arg("units") = py::none(), py::kw_only(), py::arg("n_threads") = 0,
      py::arg("engine") = "auto",
      "The objective (0.5 sum of rho of the squared residuals, the cost fit() reports) at "
      "each unit's parameters, +inf where it is not finite; rows of params are units, as in "
      "fit().  For ranking a grid of starts.");
}

// grid_objective(): what a driver computes for it (cpu_driver.h, grid_objective).
using GridFn = std::function<void(const ModelEntry& m, const Batch<double>& b, const Options& o,
                                  const double* starts, long long n_starts, double* out,
                                  int n_threads, const std::string& engine, Interrupt interrupt)>;

// Defines `grid_objective(model, data, starts, options, units=None, *, n_threads, engine)`:
// unit i's objective at every start of its problem, starts[data_of[i]] (starts: (problems,
// S, n_params)), as a (units, S) array, +inf where it is not finite: bitwise objective() at
// each (unit, start).  The units resample by weights or not at all (the residual bootstrap
// has no shared work to reuse: use objective()).
inline void def_grid_objective(py::module_& mod, GridFn grid_fn) {
  mod.def(
      "grid_objective",
      [grid_fn](const py::object& model, const py::dict& data, const F64& starts,
                const py::object& options, const py::object& units, int n_threads,
                const std::string& engine) {
        const void* ctx = nullptr;
        const ModelEntry& m = resolve_model(model, &ctx);
        check_threads(n_threads);
        const py::ssize_t n_params = static_cast<py::ssize_t>(m.params.size());
        require(data.contains("offsets"), "data: has no 'offsets'");
        const py::ssize_t P = I64::ensure(data["offsets"]).size() - 1;
        require(starts.ndim() == 3 && starts.shape(0) == P && starts.shape(2) == n_params,
                "starts: expected shape (problems, starts, n_params)");
        const py::ssize_t S = starts.shape(1);
        F64 row({P, n_params});  // the box HostCall checks (unused: no solve)
        std::fill(row.mutable_data(), row.mutable_data() + row.size(), 0.0);
        py::dict box;
        box["p0"] = row;
        box["lower"] = row;
        box["upper"] = row;
        box["per_problem"] = true;
        HostCall<double> call(m, data, box, units);
        call.b.model_ctx = ctx;
        require(call.b.resample_mode != 4,
                "units: the residual bootstrap has no grid objective (use objective)");
        const Options o = make_options<double>(options, call.log_residuals);
        F64 out({static_cast<py::ssize_t>(call.b.n_units), S});
        const Interrupt interrupt = interrupt_check();
        {
          py::gil_scoped_release release;
          grid_fn(m, call.b, o, starts.data(), S, out.mutable_data(), n_threads, engine,
                  interrupt);
        }
        return out;
      },
      py::arg("model"), py::arg("data"), py::arg("starts"), py::arg("options"),
      py::arg("units") = py::none(), py::kw_only(), py::arg("n_threads") = 0,
      py::arg("engine") = "auto",
      "Each unit's objective at every start of its problem (starts: (problems, S, n_params)), "
      "(units, S), +inf where it is not finite: bitwise objective() at each (unit, start), with "
      "each start's point values computed once for all of the problem's units.");
}

}  // namespace lawfit::bindings
