// tape.h: a user's law (lawfit.law) as a compact instruction tape, and the model struct that
// runs it inside the same solver as the built-ins: the scalar solve and the SIMD lanes.
//
// lawfit.law parses the law once, in Python, differentiates it symbolically (shared
// subexpressions kept once) and writes two programs: one for f and df/dp, one for log f and
// d(log f)/dp (log residuals; the stable form where the law allows, e.g. log(A x^-a) =
// log A - a log x).  A program is a list of operations in SSA form: operation k writes
// register k, reading earlier registers only.  Running it needs no compiler at run time:
// a wheel works anywhere.  TapeModel<N> is a model struct (models/common.h) for laws of N
// parameters whose eval_block() runs the program of the call's context (ProblemData::ctx,
// which the drivers set from Batch::model_ctx) on a block of points (lm.h's
// evaluate_points), so that every driver instantiates it as it does a built-in; its inputs
// are kTapeColumns columns per point, the law's inputs or their logarithms as the law reads
// them (unused columns are zero).
//
// Host code only: the GPU runs a user's law as a generated model struct compiled at run
// time, not through this interpreter.  The scalar and SIMD evaluations apply the same
// operations in the same order (lawfit's own exp, log and log1p, the C library's for the
// rest, lane by lane), so the two give the same bits, as for the built-ins.
#pragma once

#include <cmath>
#include <type_traits>

#include "hd.h"
#include "models/common.h"

namespace lawfit {

// The operations.  Operands a and b are registers (earlier operations); c is an integer
// immediate (a parameter's index, an input column, an integer exponent); a constant's value
// is the program's consts[k].
enum TapeOp : int {
  kTapeConst = 0,
  kTapeParam,     // p[c]
  kTapeInput,     // x[c]
  kTapeAdd,       // a + b
  kTapeSub,       // a - b
  kTapeMul,       // a * b
  kTapeDiv,       // a / b
  kTapeNeg,       // -a
  kTapeExp,       // exp a
  kTapeLog,       // log a
  kTapeLog1p,     // log(1 + a)
  kTapeExpm1,     // exp(a) - 1
  kTapeSqrt,      // sqrt a
  kTapePowInt,    // a^c, c an integer (pow_int, models/common.h)
  kTapeTanh,      // tanh a
  kTapeSin,       // sin a
  kTapeCos,       // cos a
  kTapeAtan,      // arctan a
  kTapeAbs,       // |a|
  kTapeSign,      // -1, 0 or 1 (the derivative of |a|)
  kTapeMin,       // min(a, b)
  kTapeMax,       // max(a, b)
  kTapeStep,      // 1 where a > 0, else 0 (the derivative of min and max)
  kTapeSigmoid,   // 1 / (1 + exp(-a)), without overflow
  kTapeSoftplus,  // log(1 + exp(a)), without overflow
  kTapeOpCount
};

// The most operations in one program (the registers are a stack array of this many).
inline constexpr int kMaxTapeOps = 256;
// Input columns per point that a law's program may read.
inline constexpr int kTapeColumns = 6;
// Parameters of the largest law the compiled CPU path instantiates (TapeModel<1 ... 10>).
inline constexpr int kMaxTapeParams = 10;

// One program: n_ops operations of 4 ints each (op, a, b, c) and their constants; out[0] is
// the register of the value, out[1 + j] that of its derivative in parameter j (-1: zero).
// The program's first operations load parameters (n_param_loads of them), then input
// columns (n_input_loads), then constants (n_const_loads): plain loops, before the loop
// that dispatches on each operation.
struct TapeProgram {
  const int* code = nullptr;
  const double* consts = nullptr;
  int n_ops = 0;
  const int* out = nullptr;
  int n_param_loads = 0, n_input_loads = 0, n_const_loads = 0;
};

// A law's two programs: f, and log f (each with its gradient).
struct TapeContext {
  TapeProgram value;
  TapeProgram log;
  int n_params = 0;
  // The law's native build, where one was made (lawfit.law(..., native=True): its generated
  // struct compiled by the host compiler, cpp/src/simd_run.h): entry points with the
  // signatures of a CPU engine's buffer_bytes and run (cpp/src/cpu_driver.h), which the
  // driver uses in place of the tape's lanes; the same bits.  nullptr: none.
  const void* native_bytes = nullptr;
  const void* native_run = nullptr;
};

}  // namespace lawfit

LAWFIT_NAMESPACE_BEGIN

// f(a) lane by lane: the C library's function, the same call in the scalar path.
template <class T, class F>
inline T lane_by_lane(T a, F f) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(f(a));
  } else {
    T r;
    for (int k = 0; k < T::kWidth; ++k) r.set(k, f(a[k]));
    return r;
  }
}

// Runs program `pr` on parameters p and the columns x of nb <= B consecutive points (the
// last one's repeated to fill the block): each operation once for the whole block (one
// dispatch for B points), the same arithmetic for every point whatever the block.  Writes
// f[b] and grad[b][j] for b < nb.
// Not inlined: one copy per (T, B, N) rather than one per loss and residual space that
// calls it (the call costs nothing beside a block's work; the copies cost build minutes).
template <class T, int B, int N>
__attribute__((noinline)) void run_tape_block(const TapeProgram& pr, const T* p, const T* x, int nb, T (&f)[B],
                           T (&grad)[B][N]) {
  T reg[kMaxTapeOps][B];
  int k = 0;
  for (const int end = pr.n_param_loads; k < end; ++k) {
    const T v = p[pr.code[4 * k + 3]];
    for (int q = 0; q < B; ++q) reg[k][q] = v;
  }
  for (const int end = k + pr.n_input_loads; k < end; ++k) {
    const int c = pr.code[4 * k + 3];
    for (int q = 0; q < B; ++q) reg[k][q] = x[(q < nb ? q : nb - 1) * kTapeColumns + c];
  }
  for (const int end = k + pr.n_const_loads; k < end; ++k) {
    const T v = T(pr.consts[k]);
    for (int q = 0; q < B; ++q) reg[k][q] = v;
  }
  const int* code = pr.code + 4 * k;
  for (; k < pr.n_ops; ++k, code += 4) {
    const T* a = reg[code[1]];
    const T* b = reg[code[2]];
    const int c = code[3];
    T* r = reg[k];
#define LAWFIT_TAPE_EACH(expr)                   \
  for (int q = 0; q < B; ++q) r[q] = (expr);     \
  break;
    switch (code[0]) {
      case kTapeConst: LAWFIT_TAPE_EACH(T(pr.consts[k]))
      case kTapeParam: LAWFIT_TAPE_EACH(p[c])
      case kTapeInput: LAWFIT_TAPE_EACH(x[(q < nb ? q : nb - 1) * kTapeColumns + c])
      case kTapeAdd: LAWFIT_TAPE_EACH(a[q] + b[q])
      case kTapeSub: LAWFIT_TAPE_EACH(a[q] - b[q])
      case kTapeMul: LAWFIT_TAPE_EACH(a[q] * b[q])
      case kTapeDiv: LAWFIT_TAPE_EACH(a[q] / b[q])
      case kTapeNeg: LAWFIT_TAPE_EACH(-a[q])
      case kTapeExp: LAWFIT_TAPE_EACH(exp(a[q]))
      case kTapeLog: LAWFIT_TAPE_EACH(log(a[q]))
      case kTapeLog1p: LAWFIT_TAPE_EACH(log1p(a[q]))
      case kTapeExpm1:
        LAWFIT_TAPE_EACH(lane_by_lane(a[q], [](double v) { return std::expm1(v); }))
      case kTapeSqrt: LAWFIT_TAPE_EACH(sqrt(a[q]))
      case kTapePowInt: LAWFIT_TAPE_EACH(pow_int(a[q], c))
      case kTapeTanh:
        LAWFIT_TAPE_EACH(lane_by_lane(a[q], [](double v) { return std::tanh(v); }))
      case kTapeSin: LAWFIT_TAPE_EACH(lane_by_lane(a[q], [](double v) { return std::sin(v); }))
      case kTapeCos: LAWFIT_TAPE_EACH(lane_by_lane(a[q], [](double v) { return std::cos(v); }))
      case kTapeAtan:
        LAWFIT_TAPE_EACH(lane_by_lane(a[q], [](double v) { return std::atan(v); }))
      case kTapeAbs: LAWFIT_TAPE_EACH(abs(a[q]))
      case kTapeSign:
        LAWFIT_TAPE_EACH(select(a[q] > T(0), T(1), select(a[q] < T(0), T(-1), a[q] * T(0))))
      case kTapeMin: LAWFIT_TAPE_EACH(select(b[q] < a[q], b[q], a[q]))
      case kTapeMax: LAWFIT_TAPE_EACH(select(b[q] > a[q], b[q], a[q]))
      case kTapeStep: LAWFIT_TAPE_EACH(select(a[q] > T(0), T(1), T(0)))
      case kTapeSigmoid: LAWFIT_TAPE_EACH(sigmoid(a[q]))
      case kTapeSoftplus: LAWFIT_TAPE_EACH(softplus(a[q]))
      default: LAWFIT_TAPE_EACH(T(NAN))
    }
#undef LAWFIT_TAPE_EACH
  }
  for (int q = 0; q < nb; ++q) {
    f[q] = reg[pr.out[0]][q];
    for (int j = 0; j < N; ++j) grad[q][j] = pr.out[1 + j] < 0 ? T(0) : reg[pr.out[1 + j]][q];
  }
}

namespace models {

// A user's law of N parameters: runs the law's program from the call's context.
template <int N>
struct TapeModel {
  static constexpr int kParams = N, kInputs = kTapeColumns;
  static constexpr bool kHasLog = true;
  static constexpr bool kUsesContext = true;
  static constexpr const char* kNames[kMaxTapeParams] = {
      "law:1", "law:2", "law:3", "law:4", "law:5", "law:6", "law:7", "law:8", "law:9",
      "law:10"};
  static constexpr const char* kName = kNames[N - 1];

  // One point: f (or log f) and the gradient, as a block of one.
  template <class T>
  static T eval(const void* ctx, const T* p, const T* x, T* grad) {
    return one<false>(ctx, p, x, grad);
  }
  template <class T>
  static T eval_log(const void* ctx, const T* p, const T* x, T* grad) {
    return one<true>(ctx, p, x, grad);
  }

  // Points per block (lm.h's evaluate_points): 8 doubles or floats, 4 SIMD packs.
  template <class T>
  static constexpr int kBlock = std::is_floating_point_v<T> ? 8 : 4;

  // f (or log f, kLog) and the gradient at nb <= B consecutive points of columns x.
  template <bool kLog, class T, int B>
  static void eval_block(const void* ctx, const T* p, const T* x, int nb, T (&f)[B],
                         T (&grad)[B][N]) {
    const TapeContext* c = static_cast<const TapeContext*>(ctx);
    run_tape_block<T, B, N>(kLog ? c->log : c->value, p, x, nb, f, grad);
  }

 private:
  template <bool kLog, class T>
  static T one(const void* ctx, const T* p, const T* x, T* grad) {
    T f[1], g[1][N];
    eval_block<kLog>(ctx, p, x, 1, f, g);
    for (int j = 0; j < N; ++j) grad[j] = g[0][j];
    return f[0];
  }
};

}  // namespace models
LAWFIT_NAMESPACE_END

// Every TapeModel the CPU driver instantiates.
#define LAWFIT_FOR_EACH_TAPE_MODEL(X)                                          \
  X(::lawfit::models::TapeModel<1>) X(::lawfit::models::TapeModel<2>)          \
  X(::lawfit::models::TapeModel<3>) X(::lawfit::models::TapeModel<4>)          \
  X(::lawfit::models::TapeModel<5>) X(::lawfit::models::TapeModel<6>)          \
  X(::lawfit::models::TapeModel<7>) X(::lawfit::models::TapeModel<8>)          \
  X(::lawfit::models::TapeModel<9>) X(::lawfit::models::TapeModel<10>)

// Every model the CPU driver instantiates: the built-ins (models/all.h) and the laws' tapes.
#define LAWFIT_FOR_EACH_CPU_MODEL(X) \
  LAWFIT_FOR_EACH_MODEL(X)           \
  LAWFIT_FOR_EACH_TAPE_MODEL(X)
