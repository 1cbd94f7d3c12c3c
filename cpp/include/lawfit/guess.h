// guess.h: data-driven starts, per problem, for fits given no p0.
//
// saturating_power_law (E + A x^-alpha) by variable projection: for a given alpha, E and A
// solve a linear least-squares problem in closed form, so the residual sum of squares is a
// function of alpha alone.  It is scanned on a coarse grid of alpha, then on a finer one
// (the coarse grid's best times each factor), and the best alpha with its E and A is the
// start.  One exp per point and alpha.  The same algorithm as lawfit/models.py's NumPy guess, which the tests hold it to;
// the grids come from the caller, so both use the same numbers.
#pragma once

#include "hd.h"
#include "lm.h"

LAWFIT_NAMESPACE_BEGIN

// Points with a finite log x (x > 0) and a finite y take part.  lx: log x (n,), y: (n,).
// Writes E, A, alpha into p (a problem without usable points gets 0, 0 and the first alpha,
// as the NumPy guess gives it; its fit then reports the bad data).
//
// T is a double (one problem) or a SIMD pack (simd.h: one problem per lane, point i of lane
// k at lx[i][k], a lane's points past its own padded with NaN, which take no part).  Every
// decision is a select, so a lane computes bitwise what the scalar guess computes for its
// problem (the tests hold the two to that).  inv: n entries of scratch (1 / the running count
// of usable points, computed once rather than divided by at every alpha).  stop: as for
// solve() (lm.h), called before each alpha; true leaves p unfinished.
template <class T, class Stop = NeverStop>
LAWFIT_HD void guess_saturating_power_law(const T* lx, const T* y, int n, const T* coarse,
                                          int n_coarse, const T* factors, int n_factors, T* p,
                                          T* inv, Stop stop = {}) {
  T count = T(0), ysum = T(0);
  for (int i = 0; i < n; ++i) {
    const auto ok = is_finite(lx[i]) && is_finite(y[i]);
    count = count + select(ok, T(1), T(0));
    ysum = ysum + select(ok, y[i], T(0));
    inv[i] = T(1) / select(count > T(0), count, T(1));
  }
  const T ymean = ysum / select(count > T(0), count, T(1));
  T syy = T(0);
  for (int i = 0; i < n; ++i) {
    const auto ok = is_finite(lx[i]) && is_finite(y[i]);
    const T yc = select(ok, y[i] - ymean, T(0));
    syy = syy + yc * yc;
  }
  // E, A and the residual sum of squares at one alpha: one pass over the points (Welford's
  // update of the mean and the centred sums of u = x^-alpha; y is centred already, so the
  // cross sum needs no centring of u).
  auto profile = [&](T alpha, T& E, T& A) {
    T mu = T(0), suu = T(0), suy = T(0);
    for (int i = 0; i < n; ++i) {
      const auto ok = is_finite(lx[i]) && is_finite(y[i]);
      const T u = exp(-alpha * lx[i]);
      const T du = u - mu;
      const T mu_next = mu + du * inv[i];
      suu = select(ok, suu + du * (u - mu_next), suu);
      suy = select(ok, suy + u * (y[i] - ymean), suy);
      mu = select(ok, mu_next, mu);
    }
    A = select(suu > T(0), suy / suu, T(0));
    E = ymean - A * mu;
    return syy - A * suy;
  };
  T best = T(INFINITY), centre = coarse[0];
  p[0] = p[1] = p[2] = T(0);
  for (int k = 0; k < n_coarse; ++k) {
    if (stop()) return;
    T E, A;
    const T ss = profile(coarse[k], E, A);
    const auto better = ss < best;
    best = select(better, ss, best);
    centre = select(better, coarse[k], centre);
    p[0] = select(better, E, p[0]);
    p[1] = select(better, A, p[1]);
    p[2] = select(better, coarse[k], p[2]);
  }
  for (int k = 0; k < n_factors; ++k) {
    if (stop()) return;
    T E, A;
    const T alpha = centre * factors[k];
    const T ss = profile(alpha, E, A);
    const auto better = ss < best;
    best = select(better, ss, best);
    p[0] = select(better, E, p[0]);
    p[1] = select(better, A, p[1]);
    p[2] = select(better, alpha, p[2]);
  }
}

LAWFIT_NAMESPACE_END
