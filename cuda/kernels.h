// kernels.h: the host-side entry points of the CUDA backend, free of CUDA types so that the
// pybind11 module compiles with the ordinary C++ compiler.
#pragma once

#include <string>
#include <vector>

#include "lawfit/batch.h"
#include "lawfit/options.h"

namespace lawfit::cuda {

// The kernels a call runs: a built-in model's, by name, or a user's law's, from the cubin
// NVRTC compiled for the call's precision, loss and residual space (lawfit/_nvrtc.py: two
// extern "C" kernels, lawfit_law_solve and lawfit_law_objective, wrapping the bodies of
// lawfit/kernels.cuh as the built-ins' kernels do), loaded once per distinct image.
struct Kernels {
  std::string model;      // a built-in's name (its kName)
  std::string law_image;  // a law's cubin; empty for a built-in
};

// The device's architecture as NVRTC names it: 10 * major + minor (90 for sm_90).
int device_arch();

// Number of visible CUDA devices (0 when there is no driver or no device).
int device_count();

// Description of device 0: name, compute capability, multiprocessors.
std::string device_name();

// Solves a packed batch whose arrays are on the host: one fused kernel (every iteration
// inside, one thread per problem; a bootstrap's resamples drawn inside it) between a copy in
// and a copy out.  A large batch whose units are its problems is streamed (lawfit/stream.h):
// in chunks staged in pinned memory, copied and solved on several CUDA streams while the
// host packs the next chunk and unpacks the last, `interrupt` (where not null; it throws to
// stop) called before each chunk; others, one copy each way.  The same results either way.
// Throws std::runtime_error on a CUDA error.  n_params and n_inputs are the model's sizes
// (for a law, its parameters and kTapeColumns).  T: double, or float (fp32).
template <class T>
void solve_host_batch(const Kernels& kernels, const Batch<T>& host, long long n_points,
                      int n_inputs, int n_params, const Options& o,
                      void (*interrupt)() = nullptr);

// For benchmarks: the best rates, in GB/s, of copies of `bytes` bytes between pinned host
// memory and the device, host to device then device to host, over `repeats` tries each.
std::vector<double> pinned_bandwidth(long long bytes, int repeats);

// The objective at each unit's parameters (host.p0) into host.cost, +inf where not finite:
// the same contract as lawfit._core.objective, for ranking a grid of starts on the device.
template <class T>
void objective_host_batch(const Kernels& kernels, const Batch<T>& host,
                          long long n_points, int n_inputs, int n_params, const Options& o);

// Solves a batch whose arrays (inputs and outputs, every pointer of `device`) are in device
// memory already (CuPy's): the kernel reads and writes them in place; nothing is copied.
template <class T>
void solve_device_batch(const Kernels& kernels, const Batch<T>& device, const Options& o);

// For benchmarks: copies a host batch to the device once, runs the kernel `repeats` times
// (timing each launch alone with CUDA events), copies the last results back into the host
// batch, and returns the milliseconds of each launch.
std::vector<double> time_host_batch(const Kernels& kernels, const Batch<double>& host,
                                    long long n_points, int n_inputs, int n_params,
                                    const Options& o, int repeats);

}  // namespace lawfit::cuda
