// module.cpp: the private extension lawfit._core.  It checks the packed batch's shapes
// (the Python layer validates values first), releases the GIL and runs the CPU driver.
#include "bindings.h"
#include "cpu_driver.h"

namespace lawfit {
namespace {

template <class Model>
bool try_solve(const bindings::ModelEntry& m, const Batch<double>& b, const Options& o,
               int n_threads, const cpu::Engine* engine) {
  if (m.name != Model::kName) return false;
  cpu::solve_batch<Model>(b, o, n_threads, engine);
  return true;
}

void cpu_solve(const bindings::ModelEntry& m, const Batch<double>& b, long long /*n_points*/,
               const Options& o, int n_threads, const std::string& engine_name) {
  const cpu::Engine* engine = cpu::find_engine(engine_name);
#define LAWFIT_TRY(M) if (try_solve<M>(m, b, o, n_threads, engine)) return;
  LAWFIT_FOR_EACH_MODEL(LAWFIT_TRY)
#undef LAWFIT_TRY
}

}  // namespace
}  // namespace lawfit

PYBIND11_MODULE(_core, mod) {
  using namespace lawfit;
  mod.doc() = "lawfit's compiled CPU core (private; use the lawfit package).";
  bindings::def_fit(mod, &cpu_solve,
                    "Solve every problem of a packed batch (see lawfit/_packing.py).  x holds "
                    "the model's inputs: log x for models with log_inputs.");
  mod.def("evaluate_model", &bindings::evaluate_model, py::arg("model"), py::arg("p"), py::arg("x"),
          py::arg("log_value") = false,
          "Value and gradient of a built-in model, one parameter row per point.");
  mod.def("models", [] {
    py::list out;
    for (const auto& e : bindings::registry()) {
      py::dict d;
      d["name"] = e.name;
      d["params"] = e.params;
      d["n_inputs"] = e.n_inputs;
      d["formula"] = e.formula;
      d["has_log"] = e.has_log;
      d["log_inputs"] = e.log_inputs;
      out.append(d);
    }
    return out;
  });
  mod.def("status_table", [] {
    py::list out;
    for (const auto& s : kStatusTable) out.append(py::make_tuple(s.code, s.name, s.message));
    return out;
  });
  mod.def("hardware_threads", [] { return cpu::resolve_threads(0); });
  mod.def(
      "engines",
      [] {
        py::list out;
        for (const auto& e : cpu::engines())
          out.append(py::make_tuple(e.name, e.width(), e.supported()));
        return out;
      },
      "The SIMD builds of the CPU driver in this module, best first: (name, lanes, whether "
      "this CPU runs it).");
  mod.def(
      "vmath",
      [](const std::string& fn, const bindings::F64& x, const std::string& engine_name) {
        const int k = fn == "exp" ? 0 : fn == "log" ? 1 : fn == "log1p" ? 2 : -1;
        bindings::require(k >= 0, "fn: expected 'exp', 'log' or 'log1p'");
        const cpu::Engine* e = cpu::find_engine(engine_name);
        bindings::F64 out(x.size());
        const double* src = x.data();
        double* dst = out.mutable_data();
        if (e) {
          e->vmath(k, src, dst, x.size());
        } else {
          for (py::ssize_t i = 0; i < x.size(); ++i)
            dst[i] = k == 0 ? lawfit::exp(src[i]) : k == 1 ? lawfit::log(src[i]) : lawfit::log1p(src[i]);
        }
        return out;
      },
      py::arg("fn"), py::arg("x"), py::arg("engine") = "scalar",
      "For the tests: lawfit's own fp64 exp, log or log1p (cpp/include/lawfit/vmath.h) on a "
      "flat array, by the scalar code or an engine's SIMD packs.");
  mod.def(
      "auto_engine",
      [] {
        const cpu::Engine* e = cpu::find_engine("auto");
        return std::string(e ? e->name : "scalar");
      },
      "The engine fit(engine='auto') uses on this CPU: the best SIMD build it runs, or "
      "'scalar'.");
}
