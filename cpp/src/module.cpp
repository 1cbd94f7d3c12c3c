// module.cpp: the private extension lawfit._core.  It checks the packed batch's shapes
// (the Python layer validates values first), releases the GIL and runs the CPU driver.
#include "bindings.h"
#include "callable.h"
#include "covariance.h"
#include "cpu_driver.h"
#include "lawfit/guess.h"
#include "lawfit/rng.h"
#include "lawfit/stream.h"

#include <algorithm>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

namespace lawfit {
namespace {

static_assert(cpu::kMaxThreads == bindings::kMaxThreads, "one thread cap");

// The engine of a call: `engine_name`'s, or for a law with a native build and the "auto"
// engine, that build (`native` holds it).
template <class Model>
const cpu::Engine* engine_for(const Batch<double>& b, const std::string& engine_name,
                              cpu::Engine& native) {
  if constexpr (UsesContext<Model>::value) {
    const auto* c = static_cast<const TapeContext*>(b.model_ctx);
    if (engine_name == "auto" && c->native_run) {
      native = cpu::native_engine(c->native_bytes, c->native_run);
      return &native;
    }
  }
  return cpu::find_engine(engine_name);
}

template <class Model>
bool try_solve(const bindings::ModelEntry& m, const Batch<double>& b, const Options& o,
               int n_threads, const std::string& engine_name, cpu::Call& call) {
  if (m.name != Model::kName) return false;
  cpu::Engine native;
  cpu::solve_batch<Model>(b, o, n_threads, engine_for<Model>(b, engine_name, native), call);
  return true;
}

void cpu_solve(const bindings::ModelEntry& m, const Batch<double>& b, long long /*n_points*/,
               const Options& o, int n_threads, const std::string& engine_name,
               bindings::Interrupt interrupt) {
  cpu::Call call(interrupt);
#define LAWFIT_TRY(M) if (try_solve<M>(m, b, o, n_threads, engine_name, call)) return;
  LAWFIT_FOR_EACH_CPU_MODEL(LAWFIT_TRY)
#undef LAWFIT_TRY
  bindings::unknown_model(m);
}

// fp32 (fit32): the scalar solve of every unit, in float, on the CPU's threads: what the
// CUDA backend's fp32 kernels run, here so that the CPU tests check the same math.
template <class Model>
bool try_solve_fp32(const bindings::ModelEntry& m, const Batch<float>& b, const Options& o,
                    int n_threads, cpu::Call& call) {
  if (m.name != Model::kName) return false;
  cpu::parallel_for(b.n_units, n_threads, call, [&](long long i, StopCheck& stop) {
    cpu::solve_unit<Model>(b, o, i, stop);
  });
  return true;
}

void cpu_solve_fp32(const bindings::ModelEntry& m, const Batch<float>& b, long long,
                    const Options& o, int n_threads, const std::string& engine,
                    bindings::Interrupt interrupt) {
  bindings::require(engine == "auto" || engine == "scalar",
                    "engine: fp32 runs on the scalar engine ('auto' or 'scalar')");
  cpu::Call call(interrupt);
#define LAWFIT_TRY(M) if (try_solve_fp32<M>(m, b, o, n_threads, call)) return;
  LAWFIT_FOR_EACH_CPU_MODEL(LAWFIT_TRY)
#undef LAWFIT_TRY
  bindings::unknown_model(m);
}

// Step 2's cost at each unit's parameters (b.p0), into b.cost: +inf where the cost is not
// finite (bad data, a model that overflows).  What a grid of starts is ranked by: in SIMD
// lanes in fp64 (bitwise the scalar evaluation), the scalar evaluation in fp32.
template <class Model, class T>
bool try_objective(const bindings::ModelEntry& m, const Batch<T>& b, const Options& o,
                   int n_threads, const std::string& engine, cpu::Call& call) {
  if (m.name != Model::kName) return false;
  if constexpr (std::is_same_v<T, double>) {
    cpu::Engine native;
    cpu::solve_batch<Model>(b, o, n_threads, engine_for<Model>(b, engine, native), call, true);
  } else {
    cpu::parallel_for(b.n_units, n_threads, call, [&](long long i, StopCheck&) {
      cpu::objective_unit<Model>(b, o, i);
    });
  }
  return true;
}

template <class T>
void cpu_objective(const bindings::ModelEntry& m, const Batch<T>& b, long long,
                   const Options& o, int n_threads, const std::string& engine,
                   bindings::Interrupt interrupt) {
  cpu::Call call(interrupt);
#define LAWFIT_TRY(M) if (try_objective<M>(m, b, o, n_threads, engine, call)) return;
  LAWFIT_FOR_EACH_CPU_MODEL(LAWFIT_TRY)
#undef LAWFIT_TRY
  bindings::unknown_model(m);
}

// Each unit's objective at every start of its problem (cpu_driver.h, grid_objective).
void cpu_grid_objective(const bindings::ModelEntry& m, const Batch<double>& b, const Options& o,
                        const double* starts, long long n_starts, double* out, int n_threads,
                        const std::string& engine, bindings::Interrupt interrupt) {
  cpu::Call call(interrupt);
  const cpu::Engine* e = cpu::find_engine(engine);
#define LAWFIT_TRY(M)                                                                \
  if (m.name == M::kName) {                                                         \
    cpu::grid_objective<M>(b, o, starts, n_starts, out, n_threads, e, call);        \
    return;                                                                         \
  }
  LAWFIT_FOR_EACH_CPU_MODEL(LAWFIT_TRY)
#undef LAWFIT_TRY
  bindings::unknown_model(m);
}

// The streamed solve's pipeline (lawfit/stream.h) with the CPU in the device's place, for
// the tests: the CUDA backend's ops (cuda/kernels.cu) with host vectors for its pinned and
// device blocks, a copy for each asynchronous copy, and the solve run when the slot's work is
// waited for, as late as the device could run it.  It refuses (a ValueError) any step out of
// the pipeline's order that would be a race on the device: packing a slot whose chunk is in
// flight or not yet unpacked, unpacking a chunk before its slot was waited for; and it checks
// the order of units each chunk carries for the device's threads.  Every event goes into
// `events`, (step, chunk, slot).
struct CpuStream {
  const bindings::ModelEntry& m;
  const Batch<double>& h;
  const Options& o;
  std::vector<stream::Chunk> chunks;
  int n_inputs, n_params;
  std::vector<std::vector<char>> staged_in, staged_out, device_in, device_out;
  std::vector<stream::Layout> layouts;
  std::vector<long long> in_flight, done;  // per slot: the chunk submitted / finished, or -1
  std::vector<std::tuple<std::string, long long, int>>& events;

  CpuStream(const bindings::ModelEntry& model, const Batch<double>& host, const Options& opts,
            std::vector<stream::Chunk> plan, int slots,
            std::vector<std::tuple<std::string, long long, int>>& log)
      : m(model), h(host), o(opts), chunks(std::move(plan)), n_inputs(model.n_inputs),
        n_params(static_cast<int>(model.params.size())), layouts(slots),
        in_flight(slots, -1), done(slots, -1), events(log) {
    const stream::Layout most = stream::capacity(h, chunks, n_inputs, n_params);
    for (int s = 0; s < slots; ++s) {  // filled with a NaN pattern: nothing reads unwritten
      staged_in.emplace_back(most.in_bytes, '\xff');
      staged_out.emplace_back(most.out_bytes, '\xff');
      device_in.emplace_back(most.in_bytes, '\xff');
      device_out.emplace_back(most.out_bytes, '\xff');
    }
  }

  void pack(long long c, int s) {
    bindings::require(in_flight[s] < 0 && done[s] < 0,
                      "stream: a slot was packed while its last chunk was in use");
    layouts[s] = stream::pack(h, chunks[c], n_inputs, n_params, staged_in[s].data());
    events.emplace_back("pack", c, s);
  }

  void submit(long long c, int s) {
    in_flight[s] = c;
    events.emplace_back("submit", c, s);
  }

  void finish(int s) {
    bindings::require(in_flight[s] >= 0, "stream: a slot was waited for with nothing in it");
    const stream::Chunk& c = chunks[in_flight[s]];
    const stream::Layout& l = layouts[s];
    std::copy(staged_in[s].begin(), staged_in[s].begin() + l.in_bytes, device_in[s].begin());
    const Batch<double> v =
        stream::view(h, l, c.units(), device_in[s].data(), device_out[s].data());
    if (l.order != stream::Layout::kAbsent) {  // a permutation, by size
      std::vector<long long> order(v.n_units);
      std::memcpy(order.data(), device_in[s].data() + l.order, sizeof(long long) * v.n_units);
      std::vector<char> seen(v.n_units, 0);
      for (long long k = 0; k < v.n_units; ++k) {
        const long long i = order[k];
        bindings::require(i >= 0 && i < v.n_units && !seen[i], "stream: a bad order");
        seen[i] = 1;
        bindings::require(k == 0 || unit_points(v, order[k - 1]) <= unit_points(v, i),
                          "stream: an order not by size");
      }
    }
    cpu_solve(m, v, c.points(), o, 1, "auto", nullptr);
    std::copy(device_out[s].begin(), device_out[s].begin() + l.out_bytes,
              staged_out[s].begin());
    std::fill(device_out[s].begin(), device_out[s].end(), '\xff');
    done[s] = in_flight[s];
    in_flight[s] = -1;
    events.emplace_back("finish", done[s], s);
  }

  void unpack(long long c, int s) {
    bindings::require(done[s] == c, "stream: a chunk was unpacked before its slot finished");
    stream::unpack(h, chunks[c], n_params, layouts[s], staged_out[s].data());
    done[s] = -1;
    events.emplace_back("unpack", c, s);
  }
};

}  // namespace
}  // namespace lawfit

PYBIND11_MODULE(_core, mod) {
  using namespace lawfit;
  mod.doc() = "lawfit's compiled CPU core (private; use the lawfit package).";
  bindings::def_fit(mod, &cpu_solve,
                    "Solve every problem of a packed batch (see lawfit/_packing.py).  x holds "
                    "the model's inputs: log x for models with log_inputs.");
  mod.def(
      "fit_grid",
      [](const py::object& model, const py::handle& u, const py::handle& t,
         const py::handle& p0, const py::handle& lower, const py::handle& upper,
         const py::object& options, bool log_residuals, int n_threads,
         const std::string& engine, bool return_cov, bool absolute_sigma,
         bool singular_inf) {
        static const bindings::SolveFn solve(&cpu_solve);
        return bindings::fit_grid(solve, model, u, t, p0, lower, upper, options,
                                  log_residuals, n_threads, engine, return_cov,
                                  absolute_sigma, singular_inf, &cpu::all_finite_wide);
      },
      py::arg("model"), py::arg("u"), py::arg("t"), py::arg("p0"), py::arg("lower"),
      py::arg("upper"), py::arg("options"), py::arg("log_residuals"), py::arg("n_threads"),
      py::arg("engine"), py::arg("return_cov") = false, py::arg("absolute_sigma") = false,
      py::arg("singular_inf") = true,
      "The small-call route's fit (lawfit/_plan.py, solve_small): P problems on one grid of "
      "inputs u (m, n_inputs), targets t (P, m), p0 (P, n) or (n,), bounds None or (n,) "
      "each; float64 C-contiguous.  fit()'s dict with n_free, n_omitted and offsets (and "
      "where return_cov, jtj and the covariances \"cov\", as lawfit._result.covariance "
      "computes them with absolute_sigma and singular 'inf' or 'pinv'), or None where the "
      "call is not that clean case (the general route then checks it).");
  bindings::def_objective(mod, &cpu_objective<double>);
  bindings::def_grid_objective(mod, &cpu_grid_objective);
  bindings::def_fit<float>(mod, &cpu_solve_fp32,
                           "fit in fp32: the scalar solve in float (the math of the CUDA "
                           "backend's fp32 kernels); arrays are cast to float32.",
                           "fit32");
  bindings::def_objective<float>(mod, &cpu_objective<float>, "objective32");
  bindings::def_law(mod);
  mod.def("solve_callable", &callable::fit_one, py::arg("f"), py::arg("jac"),
          py::arg("xdata"), py::arg("target"), py::arg("sigma"), py::arg("p0"),
          py::arg("lower"), py::arg("upper"), py::arg("options"),
          "One problem whose model is a Python function f(xdata, *p) -> (m,) model values "
          "(jac: None for forward differences, or jac(xdata, *p) -> (m, n)), solved by lm.h's "
          "scalar solve on the calling thread with the GIL held: a dict of x, cost, status, "
          "nfev, nit, calls, jac_calls, optimality and the values f and derivatives J at x.");
  mod.def(
      "guess_saturating_power_law",
      [](const bindings::F64& lx, const bindings::F64& y, const bindings::I64& offsets,
         const bindings::F64& coarse, const bindings::F64& factors, int n_threads,
         const std::string& engine) {
        bindings::check_threads(n_threads);
        bindings::require(offsets.ndim() == 1 && offsets.shape(0) >= 1,
                          "offsets: expected a 1-D array");
        const py::ssize_t P = offsets.shape(0) - 1;
        const long long* off = offsets.data();
        bindings::require(y.ndim() == 1 && lx.size() == y.size() && off[0] == 0 &&
                              off[P] == y.shape(0),
                          "lx, y: expected one value per point of the offsets");
        for (py::ssize_t i = 0; i < P; ++i)
          bindings::require(off[i] <= off[i + 1], "offsets: must be non-decreasing");
        bindings::require(coarse.ndim() == 1 && coarse.size() >= 1 && factors.ndim() == 1,
                          "coarse, factors: expected non-empty 1-D grids");
        bindings::F64 out({P, static_cast<py::ssize_t>(3)});
        double* o = out.mutable_data();
        const double *plx = lx.data(), *py_ = y.data(), *pc = coarse.data(), *pf = factors.data();
        const int nc = static_cast<int>(coarse.size()), nf = static_cast<int>(factors.size());
        const cpu::Engine* e = cpu::find_engine(engine);
        simd::GuessJob job{plx, py_, off, nullptr, P, nullptr, 0, pc, nc, pf, nf, o, 0};
        const bindings::Interrupt interrupt = bindings::interrupt_check();
        {
          py::gil_scoped_release release;
          cpu::Call call(interrupt);
          cpu::guess_batch(job, n_threads, e, call);
        }
        return out;
      },
      py::arg("lx"), py::arg("y"), py::arg("offsets"), py::arg("coarse"), py::arg("factors"),
      py::arg("n_threads") = 0, py::arg("engine") = "auto",
      "The saturating power law's data-driven start (lawfit/guess.h): E, A, alpha per problem "
      "by variable projection over the coarse grid of alpha, then the factors around its best; "
      "in SIMD lanes (engine, as for fit), bitwise what the scalar guess gives.");
  // Hooks for the tests (lawfit._core.testing): not part of the package's interface.
  py::module_ testing = mod.def_submodule(
      "testing", "Hooks for lawfit's tests: the RNG, lawfit's vector math, injected faults.");
  testing.def(
      "stream_fit",
      [](const py::object& model, const py::dict& data, const py::dict& box,
         const py::object& options, long long chunk_units, long long chunk_points, int slots,
         bool return_jtj) {
        std::vector<std::tuple<std::string, long long, int>> events;
        auto solve = [&](const bindings::ModelEntry& m, const Batch<double>& b, long long,
                         const Options& o, int, const std::string&, bindings::Interrupt) {
          bindings::require(stream::streamable(b), "stream_fit: the batch does not stream");
          CpuStream ops(m, b, o, stream::plan(b, chunk_units, chunk_points), slots, events);
          stream::run(static_cast<long long>(ops.chunks.size()), slots, ops);
        };
        py::dict out = bindings::fit_packed<double>(solve, model, data, box, options,
                                                    py::none(), 1, return_jtj, "auto");
        return py::make_tuple(out, events);
      },
      py::arg("model"), py::arg("data"), py::arg("box"), py::arg("options"),
      py::arg("chunk_units"), py::arg("chunk_points"), py::arg("slots"),
      py::arg("return_jtj") = false,
      "For the tests: fit()'s solve through the CUDA backend's streamed pipeline "
      "(lawfit/stream.h), the CPU in the device's place; returns (fit()'s dict, the "
      "pipeline's events as (step, chunk, slot)).");
  testing.def(
      "philox4x32_10",
      [](const py::array_t<unsigned int, py::array::c_style | py::array::forcecast>& ctr,
         unsigned int k0, unsigned int k1) {
        bindings::require(ctr.ndim() == 2 && ctr.shape(1) == 4,
                          "ctr: expected shape (n, 4) of uint32");
        py::array_t<unsigned int> out({ctr.shape(0), static_cast<py::ssize_t>(4)});
        const unsigned int* c = ctr.data();
        unsigned int* o = out.mutable_data();
        for (py::ssize_t i = 0; i < ctr.shape(0); ++i) {
          const Philox4x32 r = philox4x32_10(Philox4x32{{c[4 * i], c[4 * i + 1], c[4 * i + 2],
                                                         c[4 * i + 3]}}, k0, k1);
          for (int k = 0; k < 4; ++k) o[4 * i + k] = r.v[k];
        }
        return out;
      },
      py::arg("ctr"), py::arg("k0"), py::arg("k1"),
      "For the tests: Philox4x32-10 (lawfit/rng.h) of each counter row under key (k0, k1).");
  testing.def(
      "bootstrap_counts",
      [](unsigned long long seed, const bindings::I64& problems, const bindings::I64& resamples,
         int n) {
        bindings::require(problems.ndim() == 1 && resamples.ndim() == 1 &&
                              problems.shape(0) == resamples.shape(0),
                          "problems, resamples: expected 1-D arrays of one length");
        bindings::require(n >= 1, "n: must be >= 1");
        const py::ssize_t R = problems.shape(0);
        py::array_t<int> out({R, static_cast<py::ssize_t>(n)});
        int* o = out.mutable_data();
        std::fill(o, o + R * n, 0);
        for (py::ssize_t i = 0; i < R; ++i) {
          bindings::require(resamples.data()[i] >= 0 && resamples.data()[i] < (1LL << 32),
                            "resamples: each must be in [0, 2^32)");
          bootstrap_counts(seed, problems.data()[i],
                           static_cast<unsigned int>(resamples.data()[i]), n, o + i * n);
        }
        return out;
      },
      py::arg("seed"), py::arg("problems"), py::arg("resamples"), py::arg("n"),
      "For the tests: the pairs bootstrap's counts (lawfit/rng.h) of (seed, problem, "
      "resample) over n points, one row per (problems[i], resamples[i]).");
  testing.def(
      "fail_allocations",
      [](long long count) {
        bindings::require(count >= 0, "count: must be >= 0");
        cpu::injected_allocation_failures.store(count);
      },
      py::arg("count"),
      "For the tests: the next `count` requests for a thread's scratch buffer (a bootstrap "
      "unit's weights in the scalar solve, the scalar guess's) raise MemoryError, as when "
      "memory runs out; 0 ends it.");
  mod.def(
      "covariance",
      [](const bindings::F64& jtj, const bindings::F64& cost, const bindings::F64& points,
         const py::array_t<bool, py::array::c_style | py::array::forcecast>& fixed,
         bool absolute_sigma, bool singular_inf) {
        bindings::require(jtj.ndim() == 3 && jtj.shape(1) == jtj.shape(2),
                          "jtj: expected shape (P, n, n)");
        const py::ssize_t P = jtj.shape(0), n = jtj.shape(1);
        bindings::require(cost.ndim() == 1 && cost.shape(0) == P, "cost: expected shape (P,)");
        bindings::require(points.ndim() == 1 && points.shape(0) == P,
                          "points: expected shape (P,)");
        bindings::require(fixed.ndim() == 2 && fixed.shape(0) == P && fixed.shape(1) == n,
                          "fixed: expected shape (P, n)");
        bindings::F64 out({P, n, n});
        const double *a = jtj.data(), *c = cost.data(), *m = points.data();
        const bool* f = fixed.data();
        double* o = out.mutable_data();
        {
          py::gil_scoped_release release;
          cov::covariances(static_cast<int>(n), P, a, c, m, 1, f, n, absolute_sigma,
                           singular_inf, o);
        }
        return out;
      },
      py::arg("jtj"), py::arg("cost"), py::arg("points"), py::arg("fixed"),
      py::arg("absolute_sigma"), py::arg("singular_inf"),
      "Parameter covariances from J^T J (P, n, n), as lawfit._result.covariance (its "
      "compiled form; cpp/src/covariance.h).");
  mod.def("evaluate_model", &bindings::evaluate_model, py::arg("model"), py::arg("p"), py::arg("x"),
          py::arg("log_value") = false,
          "Value and gradient of a built-in model, one parameter row per point.");
  mod.def("models", [] {
    py::list out;
    for (const auto& e : bindings::registry()) {
      py::dict d;
      d["name"] = e.name;
      d["params"] = e.params;
      d["inputs"] = e.inputs;
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
      "rouse_helpers",
      [](int n_threads, long long n, long long points) {
        bindings::check_threads(n_threads);
        cpu::rouse_helpers(n_threads, n, points);
      },
      py::arg("n_threads"), py::arg("n"), py::arg("points"),
          "Wakes the pooled helper threads that a fit of n problems and `points` data points "
          "on n_threads threads (0: default) will use, so that they are awake when it starts.");
  mod.def("helper_cpus", &cpu::helper_cpus, py::arg("threads"),
          "The CPUs a threads-thread call would pin its helper threads to (empty: none).");
  mod.def(
      "call_cpus",
      [](int threads, int n_threads) {
        bindings::check_threads(n_threads);
        return cpu::call_cpus(threads, n_threads);
      },
      py::arg("threads"), py::arg("n_threads"),
      "The CPU each helper of a threads-thread call on n_threads (0: the default) runs on: "
      "pinned (helper_cpus) where the call may take the whole affinity mask, else -1 (the "
      "scheduler's choice); LAWFIT_PIN=0/1 forces either.");
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
  testing.def(
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
