// kernels.h: the host-side entry points of the CUDA backend, free of CUDA types so that the
// pybind11 module compiles with the ordinary C++ compiler.
#pragma once

#include <string>
#include <vector>

#include "lawfit/batch.h"
#include "lawfit/options.h"

namespace lawfit::cuda {

// Number of visible CUDA devices (0 when there is no driver or no device).
int device_count();

// Description of device 0: name, compute capability, multiprocessors.
std::string device_name();

// Solves a packed batch whose arrays are on the host: one copy in, one fused kernel (every
// iteration inside, one thread per problem; a bootstrap's resamples drawn inside it), one
// copy out.  Throws std::runtime_error on a CUDA error.  n_params and n_inputs are the
// model's sizes.  T: double, or float (fp32).
template <class T>
void solve_host_batch(const std::string& model, const Batch<T>& host, long long n_points,
                      int n_inputs, int n_params, const Options& o);

// The objective at each unit's parameters (host.p0) into host.cost, +inf where not finite:
// the same contract as lawfit._core.objective, for ranking a grid of starts on the device.
template <class T>
void objective_host_batch(const std::string& model, const Batch<T>& host,
                          long long n_points, int n_inputs, int n_params, const Options& o);

// Solves a batch whose arrays (inputs and outputs, every pointer of `device`) are in device
// memory already (CuPy's): the kernel reads and writes them in place; nothing is copied.
template <class T>
void solve_device_batch(const std::string& model, const Batch<T>& device, const Options& o);

// For benchmarks: copies a host batch to the device once, runs the kernel `repeats` times
// (timing each launch alone with CUDA events), copies the last results back into the host
// batch, and returns the milliseconds of each launch.
std::vector<double> time_host_batch(const std::string& model, const Batch<double>& host,
                                    long long n_points, int n_inputs, int n_params,
                                    const Options& o, int repeats);

}  // namespace lawfit::cuda
