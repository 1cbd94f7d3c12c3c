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

template <class T>
void cuda_solve(const bindings::ModelEntry& m, const Batch<T>& b, long long n_points,
                const Options& o, int /*n_threads*/, const std::string& engine,
                bindings::Interrupt /*interrupt*/) {
  if (engine != "auto") throw std::invalid_argument("engine: the CUDA backend takes 'auto'");
  // solve_host_batch copies x for every point.
  if (b.x_shared) throw std::invalid_argument("x_shared: the CUDA backend takes x per point");
  if (b.bounds_shared)
    throw std::invalid_argument("bounds_shared: the CUDA backend takes bounds per unit");
  require_device();
  cuda::solve_host_batch(m.name, b, n_points, m.n_inputs, static_cast<int>(m.params.size()), o);
}

template <class T>
void cuda_objective(const bindings::ModelEntry& m, const Batch<T>& b, long long n_points,
                    const Options& o, int /*n_threads*/, const std::string&,
                    bindings::Interrupt /*interrupt*/) {
  require_device();
  cuda::objective_host_batch(m.name, b, n_points, m.n_inputs,
                             static_cast<int>(m.params.size()), o);
}

// fit_device: a batch in device memory, given by pointers (lawfit/_device.py packs it and
// owns every array).  Null pointers: no sigma, no weights.
template <class T>
void solve_pointers(const bindings::ModelEntry& m, const py::dict& in, const py::dict& out,
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
  cuda::solve_device_batch(m.name, b, o);
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
  bindings::def_fit(mod, &cuda_solve<double>,
                    "Solve a packed batch on CUDA device 0 (same contract as lawfit._core.fit; "
                    "a bootstrap's resamples are drawn on the device).");
  bindings::def_objective(mod, &cuda_objective<double>);
  bindings::def_fit<float>(mod, &cuda_solve<float>, "fit, in fp32 on the device.", "fit32");
  bindings::def_objective<float>(mod, &cuda_objective<float>, "objective32");
  mod.def(
      "fit_device",
      [](const std::string& model, const py::dict& in, const py::dict& out,
         const py::object& options, long long n_problems, bool fp32, bool log_residuals) {
        const bindings::ModelEntry& m = bindings::find_model(model);
        bindings::require(n_problems >= 0, "n_problems: must be >= 0");
        auto solve = fp32 ? &solve_pointers<float> : &solve_pointers<double>;
        solve(m, in, out, n_problems, log_residuals, options);
      },
      py::arg("model"), py::arg("inputs"), py::arg("outputs"), py::arg("options"),
      py::kw_only(), py::arg("n_problems"), py::arg("fp32"), py::arg("log_residuals"),
      "Solve a packed batch already in device memory, in place: `inputs` and `outputs` map "
      "the names of fit()'s arrays to device pointers (see lawfit/_device.py); `options` as "
      "for fit().");
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
          ms = cuda::time_host_batch(m.name, b, n_points, m.n_inputs,
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
