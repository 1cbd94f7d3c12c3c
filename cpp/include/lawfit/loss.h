// loss.h: scipy's robust losses rho(z), z = (r / f_scale)^2, with rho' and rho''.
//
// Formulas are scipy.optimize._lsq.least_squares' (huber, soft_l1, cauchy, arctan); the cost
// of a point is 0.5 * f_scale^2 * rho(z).  robust_scale() then turns a residual and its
// Jacobian row into the scaled pair the solver treats as plain least squares, exactly as
// scipy's scale_for_robust_loss_function does.
#pragma once

#include "hd.h"
#include "options.h"

LAWFIT_NAMESPACE_BEGIN

template <class T>
struct LossValue {
  T rho, d1, d2;  // rho(z), rho'(z), rho''(z)
};

template <class T>
LAWFIT_HD LAWFIT_INLINE LossValue<T> eval_loss(Loss loss, T z) {
  switch (loss) {
    case Loss::kSoftL1: {
      T t = T(1) + z;
      T s = sqrt(t);
      return {T(2) * (s - T(1)), T(1) / s, T(-0.5) / (t * s)};
    }
    case Loss::kHuber: {
      auto inner = z <= T(1);
      T s = sqrt(z);
      T zi = select(inner, T(1), z);  // keeps the outer branch finite when z == 0
      T si = select(inner, T(1), s);
      return {select(inner, z, T(2) * s - T(1)), select(inner, T(1), T(1) / si),
              select(inner, T(0), T(-0.5) / (zi * si))};
    }
    case Loss::kCauchy: {
      T t = T(1) + z;
      return {log1p(z), T(1) / t, T(-1) / (t * t)};
    }
    case Loss::kArctan: {
      T t = T(1) + z * z;
      return {atan(z), T(1) / t, T(-2) * z / (t * t)};
    }
    case Loss::kLinear:
    default:
      return {z, T(1), T(0)};
  }
}

// One point's contribution after the loss: cost = 0.5 C^2 rho(z) times the weight, and the
// factors that scale the residual and the Jacobian row (scipy's J_scale = rho' + 2 rho'' r^2,
// floored at machine epsilon, square-rooted; f_s = rho' / J_scale * r).
template <class T>
struct Scaled {
  T cost;      // this point's cost (weight included)
  T r_factor;  // f_s = r_factor * r
  T j_factor;  // J_s row = j_factor * J row
};

// z = (r / C)^2, given inv_c = 1 / C.
template <class T>
LAWFIT_HD LAWFIT_INLINE T scaled_square(T r, T inv_c) {
  return (r * inv_c) * (r * inv_c);
}

// A point's cost under a robust loss before its weight, 0.5 C^2 rho: robust_scale()'s cost is
// this times the weight, and the objective (lm.h, point_value) computes it alone.
template <class T>
LAWFIT_HD LAWFIT_INLINE T unweighted_cost(T f_scale, T rho) {
  return T(0.5) * f_scale * f_scale * rho;
}

template <class T>
LAWFIT_HD LAWFIT_INLINE Scaled<T> robust_scale(Loss loss, T f_scale, T r, T w) {
  if (loss == Loss::kLinear) {
    T sw = sqrt(w);
    return {T(0.5) * w * r * r, sw, sw};
  }
  T inv_c = T(1) / f_scale;
  T z = scaled_square(r, inv_c);
  LossValue<T> l = eval_loss(loss, z);
  T eps = sizeof(T) == sizeof(float) ? T(1.1920929e-07) : T(2.220446049250313e-16);
  T js = l.d1 + T(2) * (l.d2 * inv_c * inv_c) * r * r;
  js = select(js < eps, eps, js);
  js = sqrt(js);
  T sw = sqrt(w);
  return {unweighted_cost(f_scale, l.rho) * w, sw * l.d1 / js, sw * js};
}

LAWFIT_NAMESPACE_END
