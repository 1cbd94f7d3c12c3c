// module.cpp: the private extension lawfit._cuda, built only where a CUDA compiler was found.
// It takes the same packed batch as lawfit._core (fit, objective) and runs it on device 0.
#include <cstdint>
#include <stdexcept>

#include "../cpp/src/bindings.h"
#include "kernels.h"

namespace lawfit {
namespace {

void require_device() {
  if (cuda::device_count() == 0) throw std::runtime_error("no CUDA device is available");
}

// A call's kernels: the built-in model m's, or (where `law_image` is not empty) a user's
// law's, compiled for the call by lawfit/_nvrtc.py.
cuda::Kernels kernels_of(const bindings::ModelEntry& m, const std::string& law_image) {
  return cuda::Kernels{m.name, law_image};
}

template <class T>
void cuda_solve(const cuda::Kernels& k, const bindings::ModelEntry& m, const Batch<T>& b,
                long long n_points, const Options& o, const std::string& engine,
                bindings::Interrupt interrupt) {
  if (engine != "auto") throw std::invalid_argument("engine: the CUDA backend takes 'auto'");
  // solve_host_batch copies x for every point.
  if (b.x_shared) throw std::invalid_argument("x_shared: the CUDA backend takes x per point");
  if (b.bounds_shared)
    throw std::invalid_argument("bounds_shared: the CUDA backend takes bounds per unit");
  require_device();
  cuda::solve_host_batch(k, b, n_points, m.n_inputs, static_cast<int>(m.params.size()), o,
                         interrupt);
}

template <class T>
void cuda_objective(const cuda::Kernels& k, const bindings::ModelEntry& m, const Batch<T>& b,
                    long long n_points, const Options& o) {
  require_device();
  cuda::objective_host_batch(k, b, n_points, m.n_inputs, static_cast<int>(m.params.size()), o);
}

// The solve and objective of a backend call (the signature of bindings::SolveFnOf<T>).
template <class T>
void builtin_solve(const bindings::ModelEntry& m, const Batch<T>& b, long long n_points,
                   const Options& o, int, const std::string& engine,
                   bindings::Interrupt interrupt) {
  cuda_solve<T>(kernels_of(m, {}), m, b, n_points, o, engine, interrupt);
}

template <class T>
void builtin_objective(const bindings::ModelEntry& m, const Batch<T>& b, long long n_points,
                       const Options& o, int, const std::string&, bindings::Interrupt) {
  cuda_objective<T>(kernels_of(m, {}), m, b, n_points, o);
}

// fit_law / objective_law (and their fp32 twins): fit() and objective() for a user's law,
// whose kernels come as the first argument, a cubin (lawfit/_nvrtc.py compiles it for the
// call's precision, loss and residual space); the model argument is the law's compiled form
// (lawfit._core.Law), which sizes its arrays.
template <class T>
void def_law_calls(py::module_& mod, const char* fit_name, const char* objective_name) {
  mod.def(
      fit_name,
      [](const py::bytes& image, const py::object& model, const py::dict& data,
         const py::dict& box, const py::object& options, const py::object& units,
         int n_threads, bool return_jtj, const std::string& engine) {
        const std::string law_image = image;
        bindings::require(!law_image.empty(), "image: a law's cubin is required");
        auto solve = [&law_image](const bindings::ModelEntry& m, const Batch<T>& b,
                                  long long n_points, const Options& o, int,
                                  const std::string& engine, bindings::Interrupt interrupt) {
          cuda_solve<T>(kernels_of(m, law_image), m, b, n_points, o, engine, interrupt);
        };
        return bindings::fit_packed<T>(solve, model, data, box, options, units, n_threads,
                                       return_jtj, engine);
      },
      py::arg("image"), py::arg("model"), py::arg("data"), py::arg("box"), py::arg("options"),
      py::arg("units") = py::none(), py::kw_only(), py::arg("n_threads") = 0,
      py::arg("return_jtj") = false, py::arg("engine") = "auto",
      "fit() for a user's law: `image` is its kernels' cubin (lawfit/_nvrtc.py).");
  mod.def(
      objective_name,
      [](const py::bytes& image, const py::object& model, const py::dict& data,
         const py::object& params, const py::object& options, const py::object& units,
         int n_threads, const std::string& engine) {
        const std::string law_image = image;
        bindings::require(!law_image.empty(), "image: a law's cubin is required");
        auto cost = [&law_image](const bindings::ModelEntry& m, const Batch<T>& b,
                                 long long n_points, const Options& o, int,
                                 const std::string&, bindings::Interrupt) {
          cuda_objective<T>(kernels_of(m, law_image), m, b, n_points, o);
        };
        py::dict box;
        box["p0"] = params;  // one row per unit, as objective()
        box["lower"] = params;
        box["upper"] = params;
        py::dict out = bindings::fit_packed<T>(cost, model, data, box, options, units,
                                               n_threads, false, engine);
        return py::object(out["cost"]);
      },
      py::arg("image"), py::arg("model"), py::arg("data"), py::arg("params"),
      py::arg("options"), py::arg("units") = py::none(), py::kw_only(),
      py::arg("n_threads") = 0, py::arg("engine") = "auto",
      "objective() for a user's law: `image` is its kernels' cubin (lawfit/_nvrtc.py).");
}

// fit_device: a batch in device memory, given by pointers (lawfit/_device.py packs it and
// owns every array).  Null pointers: no sigma, no weights.
template <class T>
void solve_pointers(const cuda::Kernels& kernels, const py::dict& in, const py::dict& out,
                    long long n_problems, bool log_residuals, const py::object& options) {
  const Options o = bindings::make_options<T>(options, log_residuals);
  auto ptr = [](const py::dict& d, const char* key, bool required) {
    const auto p = d[key].cast<std::uintptr_t>();
    if (required && p == 0)
      throw std::invalid_argument(std::string(key) + ": a device pointer is required");
    return p;
  };
  Batch<T> b{};
  b.x = reinterpret_cast<const T*>(ptr(in, "x", true));
  b.t = reinterpret_cast<const T*>(ptr(in, "t", true));
  b.sigma = reinterpret_cast<const T*>(ptr(in, "sigma", false));
  b.w = reinterpret_cast<const T*>(ptr(in, "weights", false));
  b.offsets = reinterpret_cast<const long long*>(ptr(in, "offsets", true));
  b.p0 = reinterpret_cast<const T*>(ptr(in, "p0", true));
  b.lower = reinterpret_cast<const T*>(ptr(in, "lower", true));
  b.upper = reinterpret_cast<const T*>(ptr(in, "upper", true));
  b.n_units = n_problems;
  b.n_problems = n_problems;
  b.p = reinterpret_cast<T*>(ptr(out, "x", true));
  b.cost = reinterpret_cast<T*>(ptr(out, "cost", true));
  b.optimality = reinterpret_cast<T*>(ptr(out, "optimality", true));
  b.jtj = nullptr;
  b.active = reinterpret_cast<signed char*>(ptr(out, "active_mask", true));
  b.status = reinterpret_cast<int*>(ptr(out, "status", true));
  b.nfev = reinterpret_cast<int*>(ptr(out, "nfev", true));
  b.njev = reinterpret_cast<int*>(ptr(out, "njev", true));
  b.nit = reinterpret_cast<int*>(ptr(out, "nit", true));
  require_device();
  py::gil_scoped_release release;
  cuda::solve_device_batch(kernels, b, o);
}

}  // namespace
}  // namespace lawfit

PYBIND11_MODULE(_cuda, mod) {
  using namespace lawfit;
  using bindings::F64;
  using bindings::I64;
  mod.doc() = "lawfit's CUDA backend (private; use lawfit.fit(..., backend='cuda')).";
  mod.def("device_count", &cuda::device_count);
  mod.def("device_name", &cuda::device_name);
  mod.def("device_arch", [] {
    require_device();
    return cuda::device_arch();
  }, "Device 0's architecture as NVRTC names it: 10 * major + minor (90 for sm_90).");
  bindings::def_fit(mod, &builtin_solve<double>,
                    "Solve a packed batch on CUDA device 0 (same contract as lawfit._core.fit; "
                    "a bootstrap's resamples are drawn on the device).");
  bindings::def_objective(mod, &builtin_objective<double>);
  bindings::def_fit<float>(mod, &builtin_solve<float>, "fit, in fp32 on the device.", "fit32");
  bindings::def_objective<float>(mod, &builtin_objective<float>, "objective32");
  def_law_calls<double>(mod, "fit_law", "objective_law");
  def_law_calls<float>(mod, "fit_law32", "objective_law32");
  mod.def(
      "fit_device",
      [](const py::object& model, const py::dict& in, const py::dict& out,
         const py::object& options, long long n_problems, bool fp32, bool log_residuals,
         const py::bytes& image) {
        const void* ctx = nullptr;
        const bindings::ModelEntry& m = bindings::resolve_model(model, &ctx);
        const cuda::Kernels kernels = kernels_of(m, image);
        bindings::require(ctx == nullptr || !kernels.law_image.empty(),
                          "image: a law's cubin is required");
        bindings::require(n_problems >= 0, "n_problems: must be >= 0");
        auto solve = fp32 ? &solve_pointers<float> : &solve_pointers<double>;
        solve(kernels, in, out, n_problems, log_residuals, options);
      },
      py::arg("model"), py::arg("inputs"), py::arg("outputs"), py::arg("options"),
      py::kw_only(), py::arg("n_problems"), py::arg("fp32"), py::arg("log_residuals"),
      py::arg("image") = py::bytes(),
      "Solve a packed batch already in device memory, in place: `inputs` and `outputs` map "
      "the names of fit()'s arrays to device pointers (see lawfit/_device.py); `options` as "
      "for fit(); `model` a built-in's name or a law's compiled form, whose kernels' cubin "
      "is `image` (lawfit/_nvrtc.py).");
  mod.def(
      "pinned_bandwidth",
      [](long long bytes, int repeats) {
        require_device();
        py::gil_scoped_release release;
        return cuda::pinned_bandwidth(bytes, repeats);
      },
      py::arg("bytes") = 1LL << 28, py::arg("repeats") = 5,
      "Benchmark: the best rates (GB/s) of copies of `bytes` bytes between pinned host "
      "memory and device 0, [host to device, device to host].");
  mod.def(
      "time_fit",
      [](int repeats, const py::object& model, const py::dict& data, const py::dict& box,
         const py::object& options) {
        require_device();
        if (repeats < 1) throw py::value_error("repeats: must be >= 1");
        std::vector<double> ms;
        auto timed = [&](const bindings::ModelEntry& m, const Batch<double>& b,
                         long long n_points, const Options& o, int, const std::string&,
                         bindings::Interrupt) {
          ms = cuda::time_host_batch(kernels_of(m, {}), b, n_points, m.n_inputs,
                                     static_cast<int>(m.params.size()), o, repeats);
        };
        py::dict out = bindings::fit_packed<double>(timed, model, data, box, options,
                                                    py::none(), 0, false, "auto");
        return py::make_tuple(out, ms);
      },
      py::arg("repeats"), py::arg("model"), py::arg("data"), py::arg("box"),
      py::arg("options"),
      "Benchmark: the kernel alone, run `repeats` times on device-resident data; returns "
      "(results of the last run, milliseconds of each run).");
}
