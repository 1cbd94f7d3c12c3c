// covariance.h: parameter covariances of finished fits from their Gauss-Newton matrices,
// as scipy's curve_fit gives them: the compiled form of lawfit/_result.py's covariance(),
// whose NumPy code (_covariance_numpy there) is the reference the tests hold this one to.
// Host code only (the finishing step of a call on any backend, not a solve).
//
// Per problem, with a = J^T J (rows and columns of fixed parameters zeroed; all zeros where
// an entry is not finite), d_j = sqrt(a_jj) (1 where that is 0) and S = a / (d d^T) (unit
// diagonal for the free parameters): S's eigenvalues ev and vectors V (cyclic Jacobi
// rotations); the eigenvalues above eps * max(m, n) * max(ev) kept, the others dropped (the
// rounding of the sums that formed J^T J); cov = V diag(1 / ev kept) V^T / (d d^T) scaled
// by 2 cost / (m - n_free) (1 with absolute_sigma).  inf where the matrix was not finite,
// the scale is undefined (m <= n_free) or anything is NaN, and with singular = "inf" where
// fewer eigenvalues were kept than parameters are free; 0 in the rows and columns of fixed
// parameters otherwise.
#pragma once

#include <cmath>
#include <limits>
#include <vector>

namespace lawfit::cov {

// The eigen-decomposition of the symmetric n x n matrix A (row-major, overwritten; its
// diagonal ends as the eigenvalues) into ev and V (V[i * n + j]: component i of vector j),
// by cyclic Jacobi rotations until the off-diagonal part is below rounding.
inline void jacobi_eigen(int n, double* A, double* ev, double* V) {
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) V[i * n + j] = i == j ? 1.0 : 0.0;
  for (int sweep = 0; sweep < 64; ++sweep) {
    double off = 0.0, diag = 0.0;
    for (int i = 0; i < n; ++i) {
      diag += A[i * n + i] * A[i * n + i];
      for (int j = i + 1; j < n; ++j) off += A[i * n + j] * A[i * n + j];
    }
    if (!(off > 1e-36 * diag)) break;  // (also where everything is 0)
    for (int p = 0; p < n; ++p) {
      for (int q = p + 1; q < n; ++q) {
        const double apq = A[p * n + q];
        if (apq == 0.0) continue;
        // The rotation that zeroes A_pq: t = tan, the root of t^2 + 2 theta t - 1 = 0 of
        // smaller magnitude.
        const double theta = (A[q * n + q] - A[p * n + p]) / (2.0 * apq);
        const double t = std::fabs(theta) > 1e150
                             ? 0.5 / theta
                             : (theta >= 0 ? 1.0 : -1.0) /
                                   (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (int k = 0; k < n; ++k) {  // A J
          const double akp = A[k * n + p], akq = A[k * n + q];
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // J^T (A J)
          const double apk = A[p * n + k], aqk = A[q * n + k];
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        A[p * n + q] = A[q * n + p] = 0.0;
        for (int k = 0; k < n; ++k) {  // V J
          const double vkp = V[k * n + p], vkq = V[k * n + q];
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  for (int i = 0; i < n; ++i) ev[i] = A[i * n + i];
}

// One problem's covariance into out (n x n) from its J^T J (n x n), final cost, point count
// m (`points`, weighted where the fit had weights) and fixed parameters.  `work`: 4 n^2 + 3 n
// doubles.
inline void covariance(int n, const double* jtj, double cost, double points, const bool* fixed,
                       bool absolute_sigma, bool singular_inf, double* out, double* work) {
  double* S = work;
  double* V = S + n * n;
  double* ev = V + n * n;
  double* d = ev + n;
  double* inv = d + n;
  bool finite = true, some_fixed = false;
  int n_free = 0;
  for (int j = 0; j < n; ++j) {
    some_fixed |= fixed[j];
    n_free += fixed[j] ? 0 : 1;
  }
  for (int j = 0; j < n; ++j)
    for (int k = 0; k < n; ++k) {
      const double v = fixed[j] || fixed[k] ? 0.0 : jtj[j * n + k];
      finite &= std::isfinite(v);
      S[j * n + k] = v;
    }
  if (!finite)
    for (int j = 0; j < n * n; ++j) S[j] = 0.0;
  for (int j = 0; j < n; ++j) {
    const double dj = std::sqrt(S[j * n + j]);
    d[j] = dj > 0 ? dj : 1.0;
  }
  for (int j = 0; j < n; ++j)
    for (int k = 0; k < n; ++k) S[j * n + k] /= d[j] * d[k];
  jacobi_eigen(n, S, ev, V);
  double top = -std::numeric_limits<double>::infinity();
  for (int j = 0; j < n; ++j) top = ev[j] > top ? ev[j] : top;
  const double noise =
      std::numeric_limits<double>::epsilon() * (points > n ? points : double(n)) * top;
  int kept = 0;
  for (int j = 0; j < n; ++j) {
    const bool keep = ev[j] > noise;
    inv[j] = keep ? 1.0 / ev[j] : 0.0;
    kept += keep ? 1 : 0;
  }
  const double dof = points - n_free;
  const double scale = absolute_sigma ? 1.0
                       : dof > 0     ? 2.0 * cost / dof
                                     : std::numeric_limits<double>::infinity();
  bool nan = false;
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) {
      double c = 0.0;
      for (int j = 0; j < n; ++j) c += V[i * n + j] * inv[j] * V[k * n + j];
      c = c / (d[i] * d[k]) * scale;
      nan |= std::isnan(c);
      out[i * n + k] = c;
    }
  const bool bad = !finite || !std::isfinite(scale) || nan || (singular_inf && kept < n_free);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) {
      if (bad) {
        out[i * n + k] = std::numeric_limits<double>::infinity();
      } else if (some_fixed && (fixed[i] || fixed[k])) {
        out[i * n + k] = 0.0;
      }
    }
}

// The covariances of P problems into out (P x n x n), from jtj (P x n x n) and cost (P,):
// problem i's point count points[i * points_step] and fixed parameters fixed[i * fixed_step
// ...] (a step of 0: one for all).
inline void covariances(int n, long long P, const double* jtj, const double* cost,
                        const double* points, long long points_step, const bool* fixed,
                        long long fixed_step, bool absolute_sigma, bool singular_inf,
                        double* out) {
  std::vector<double> work(static_cast<size_t>(4 * n * n + 3 * n + 1));
  const long long nn = static_cast<long long>(n) * n;
  for (long long i = 0; i < P; ++i)
    covariance(n, jtj + i * nn, cost[i], points[i * points_step], fixed + i * fixed_step,
               absolute_sigma, singular_inf, out + i * nn, work.data());
}

}  // namespace lawfit::cov
