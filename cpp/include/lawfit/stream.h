// stream.h: the chunk pipeline of the CUDA backend's streamed solve (cuda/kernels.cu), in host
// code free of CUDA, so that the CPU tests run the same pipeline with the CPU solve in the
// device's place (lawfit._core.testing.stream_fit; tests/test_stream.py).
//
// A large batch whose units each fit their own problem is cut into chunks of consecutive
// units.  Each chunk is packed into one of a few slots' host staging blocks (pinned memory on
// the GPU: one block of inputs, one of outputs, the arrays at a Layout's offsets), copied in,
// solved and copied out asynchronously, and unpacked into the caller's result arrays; while
// the device works on one chunk, the host packs the next and unpacks the one before.  The
// slots' device blocks serve every chunk (allocated once per call, for the largest chunk).
// Which chunk, slot or thread solves a unit does not change its result: the streamed solve
// gives the one-shot solve's results bit for bit.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "batch.h"

namespace lawfit::stream {

// Whether a batch can stream: every unit fits its own problem (no data_of, no resampling) and
// has its own inputs and bounds, so that a chunk of consecutive units reads one slice of each
// array.
template <class T>
bool streamable(const Batch<T>& b) {
  return b.data_of == nullptr && b.resample_of == nullptr && !b.x_shared && !b.bounds_shared;
}

// Units [begin, end) and their points [point_begin, point_end) of the flat arrays.
struct Chunk {
  long long begin, end, point_begin, point_end;
  long long units() const { return end - begin; }
  long long points() const { return point_end - point_begin; }
};

// Consecutive chunks of at most max_units units and at most max_points points (a unit with
// more points than that makes a chunk of its own).  A streamable batch's units only.
template <class T>
std::vector<Chunk> plan(const Batch<T>& b, long long max_units, long long max_points) {
  if (max_units < 1 || max_points < 1) throw std::invalid_argument("stream: empty chunks");
  std::vector<Chunk> chunks;
  const long long* off = b.offsets;
  for (long long begin = 0; begin < b.n_units;) {
    long long end = begin + 1;
    const long long most = std::min(b.n_units, begin + max_units);
    while (end < most && off[end + 1] - off[begin] <= max_points) ++end;
    chunks.push_back(Chunk{begin, end, off[begin], off[end]});
    begin = end;
  }
  return chunks;
}

// Where each array of a chunk lies in a slot's blocks: byte offsets from the block's start
// (kAbsent where the chunk has no such array), each array 256-byte aligned.  The device's
// blocks have the same layout as the host's staging blocks, so that one copy moves each.
struct Layout {
  static constexpr size_t kAbsent = std::numeric_limits<size_t>::max();
  // inputs
  size_t x = kAbsent, t = kAbsent, sigma = kAbsent, w = kAbsent, offsets = kAbsent,
         p0 = kAbsent, lower = kAbsent, upper = kAbsent, order = kAbsent, in_bytes = 0;
  // outputs
  size_t p = kAbsent, cost = kAbsent, optimality = kAbsent, jtj = kAbsent, active = kAbsent,
         status = kAbsent, nfev = kAbsent, njev = kAbsent, nit = kAbsent, out_bytes = 0;
};

// The layout of a chunk of `units` units and `points` points of batch b (which arrays it
// has), for a model of n_inputs inputs and n_params parameters; `order`: room for an order
// of the units (batch.h, order_by_size).
template <class T>
Layout layout(const Batch<T>& b, long long units, long long points, int n_inputs, int n_params,
              bool order) {
  Layout l;
  size_t at = 0;
  auto place = [&at](size_t& field, long long count, size_t size) {
    field = at;
    at += (static_cast<size_t>(count) * size + 255) / 256 * 256;
  };
  const long long N = n_params;
  place(l.x, points * n_inputs, sizeof(T));
  place(l.t, points, sizeof(T));
  if (b.sigma) place(l.sigma, points, sizeof(T));
  if (b.w) place(l.w, points, sizeof(T));
  place(l.offsets, units + 1, sizeof(long long));
  place(l.p0, units * N, sizeof(T));
  place(l.lower, units * N, sizeof(T));
  place(l.upper, units * N, sizeof(T));
  if (order) place(l.order, units, sizeof(long long));
  l.in_bytes = at;
  at = 0;
  place(l.p, units * N, sizeof(T));
  place(l.cost, units, sizeof(T));
  place(l.optimality, units, sizeof(T));
  if (b.jtj) place(l.jtj, units * N * N, sizeof(T));
  place(l.active, units * N, sizeof(signed char));
  place(l.status, units, sizeof(int));
  place(l.nfev, units, sizeof(int));
  place(l.njev, units, sizeof(int));
  place(l.nit, units, sizeof(int));
  l.out_bytes = at;
  return l;
}

// A chunk's batch: b's settings, its arrays those of the blocks `in` and `out` laid out by l
// (a slot's device blocks, or the host's for the CPU's solve in the tests).
template <class T>
Batch<T> view(const Batch<T>& b, const Layout& l, long long units, const char* in, char* out) {
  auto at = [](const char* base, size_t field) {
    return field == Layout::kAbsent ? nullptr : base + field;
  };
  auto out_at = [out](size_t field) {
    return field == Layout::kAbsent ? nullptr : out + field;
  };
  Batch<T> v = b;
  v.x = reinterpret_cast<const T*>(at(in, l.x));
  v.t = reinterpret_cast<const T*>(at(in, l.t));
  v.sigma = reinterpret_cast<const T*>(at(in, l.sigma));
  v.w = reinterpret_cast<const T*>(at(in, l.w));
  v.offsets = reinterpret_cast<const long long*>(at(in, l.offsets));
  v.p0 = reinterpret_cast<const T*>(at(in, l.p0));
  v.lower = reinterpret_cast<const T*>(at(in, l.lower));
  v.upper = reinterpret_cast<const T*>(at(in, l.upper));
  v.n_units = v.n_problems = units;
  // A batch that streams has no resampling (streamable): nothing of the host's else is read.
  v.data_of = v.problem_key = nullptr;
  v.resample_of = nullptr;
  v.group_of = v.n_groups = nullptr;
  v.fit_t = v.fit_r = nullptr;
  v.p = reinterpret_cast<T*>(out_at(l.p));
  v.cost = reinterpret_cast<T*>(out_at(l.cost));
  v.optimality = reinterpret_cast<T*>(out_at(l.optimality));
  v.jtj = reinterpret_cast<T*>(out_at(l.jtj));
  v.active = reinterpret_cast<signed char*>(out_at(l.active));
  v.status = reinterpret_cast<int*>(out_at(l.status));
  v.nfev = reinterpret_cast<int*>(out_at(l.nfev));
  v.njev = reinterpret_cast<int*>(out_at(l.njev));
  v.nit = reinterpret_cast<int*>(out_at(l.nit));
  return v;
}

// The order in which the device's threads take a chunk's units (by size, where sizes differ:
// batch.h, order_by_size), from the chunk's offsets rebased to 0; empty where none is needed.
inline std::vector<long long> chunk_order(const long long* offsets, long long units) {
  Batch<double> sizes{};
  sizes.offsets = offsets;
  sizes.n_units = sizes.n_problems = units;
  std::vector<long long> order, larger;
  order_by_size(sizes, std::numeric_limits<long long>::max(), order, larger);
  return order;
}

// Packs chunk c of host batch h into the staging block `in`: each array's slice, and the
// offsets rebased to start at 0.  Returns the chunk's layout: sized for it, with an order of
// its units where their sizes differ (written into the block).
template <class T>
Layout pack(const Batch<T>& h, const Chunk& c, int n_inputs, int n_params, char* in) {
  const long long U = c.units(), M = c.points(), N = n_params;
  std::vector<long long> offsets(static_cast<size_t>(U + 1));
  for (long long k = 0; k <= U; ++k) offsets[k] = h.offsets[c.begin + k] - c.point_begin;
  const std::vector<long long> order = chunk_order(offsets.data(), U);
  const Layout l = layout(h, U, M, n_inputs, n_params, !order.empty());
  auto put = [in](size_t field, const void* src, long long count, size_t size) {
    if (count > 0) std::memcpy(in + field, src, static_cast<size_t>(count) * size);
  };
  put(l.x, h.x + c.point_begin * n_inputs, M * n_inputs, sizeof(T));
  put(l.t, h.t + c.point_begin, M, sizeof(T));
  if (h.sigma) put(l.sigma, h.sigma + c.point_begin, M, sizeof(T));
  if (h.w) put(l.w, h.w + c.point_begin, M, sizeof(T));
  put(l.offsets, offsets.data(), U + 1, sizeof(long long));
  put(l.p0, h.p0 + c.begin * N, U * N, sizeof(T));
  put(l.lower, h.lower + c.begin * N, U * N, sizeof(T));
  put(l.upper, h.upper + c.begin * N, U * N, sizeof(T));
  if (!order.empty()) put(l.order, order.data(), U, sizeof(long long));
  return l;
}

// Copies chunk c's results from the staging block `out` (laid out by l) into rows
// [c.begin, c.end) of host batch h's outputs.
template <class T>
void unpack(const Batch<T>& h, const Chunk& c, int n_params, const Layout& l, const char* out) {
  const long long U = c.units(), N = n_params;
  auto get = [out](void* dst, size_t field, long long count, size_t size) {
    if (count > 0) std::memcpy(dst, out + field, static_cast<size_t>(count) * size);
  };
  get(h.p + c.begin * N, l.p, U * N, sizeof(T));
  get(h.cost + c.begin, l.cost, U, sizeof(T));
  get(h.optimality + c.begin, l.optimality, U, sizeof(T));
  if (h.jtj) get(h.jtj + c.begin * N * N, l.jtj, U * N * N, sizeof(T));
  get(h.active + c.begin * N, l.active, U * N, sizeof(signed char));
  get(h.status + c.begin, l.status, U, sizeof(int));
  get(h.nfev + c.begin, l.nfev, U, sizeof(int));
  get(h.njev + c.begin, l.njev, U, sizeof(int));
  get(h.nit + c.begin, l.nit, U, sizeof(int));
}

// The largest in_bytes and out_bytes of the chunks' layouts (each with room for an order):
// what a slot's blocks must hold.
template <class T>
Layout capacity(const Batch<T>& h, const std::vector<Chunk>& chunks, int n_inputs,
                int n_params) {
  Layout most;
  for (const Chunk& c : chunks) {
    const Layout l = layout(h, c.units(), c.points(), n_inputs, n_params, true);
    most.in_bytes = std::max(most.in_bytes, l.in_bytes);
    most.out_bytes = std::max(most.out_bytes, l.out_bytes);
  }
  return most;
}

// Runs chunks 0 .. n_chunks - 1 through `slots` slots, chunk c in slot c % slots:
// ops.pack(c, s) fills slot s's staging inputs with chunk c; ops.submit(c, s) starts its copy
// in, solve and copy out (asynchronously, in order within the slot); ops.finish(s) waits until
// slot s's work is done; ops.unpack(c, s) copies chunk c's results out of slot s's staging
// outputs.  A slot is packed again only after its last chunk was finished and unpacked; with
// two slots or more the host packs chunk c + 1 while the device solves chunk c.  An exception
// from ops ends the run (the caller's ops then wait for what is in flight before freeing it).
template <class Ops>
void run(long long n_chunks, int slots, Ops& ops) {
  if (slots < 1) throw std::invalid_argument("stream: slots must be >= 1");
  for (long long c = 0; c < n_chunks; ++c) {
    const int s = static_cast<int>(c % slots);
    if (c >= slots) {
      ops.finish(s);
      ops.unpack(c - slots, s);
    }
    ops.pack(c, s);
    ops.submit(c, s);
  }
  for (long long c = std::max(0LL, n_chunks - slots); c < n_chunks; ++c) {
    const int s = static_cast<int>(c % slots);
    ops.finish(s);
    ops.unpack(c, s);
  }
}

}  // namespace lawfit::stream
