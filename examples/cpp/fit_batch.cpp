// fit_batch: fits the saturating power law L(x) = E + A x^-alpha to every problem of a batch
// with lawfit's header-only solver, as lawfit.fit("saturating_power_law", ...) does on the
// CPU, and prints one CSV row per problem.
//
//   fit_batch              fits a built-in batch of three problems
//   fit_batch points.csv   fits the rows "problem,x,y" of a CSV file (a header line, then
//                          rows grouped by problem, problems numbered 0, 1, ... in order)
//
// Every problem starts from (E, A, alpha) = (1, 1, 0.5), unbounded, with lawfit.fit's default
// options: linear residuals and loss, ftol = xtol = gtol = 1e-8, and an evaluation budget of
// 100 per parameter, extended while the fit still improves up to 20 times that.  The output
// equals lawfit.fit(..., p0=[1, 1, 0.5]) on the same data (tests/test_embed.py checks it).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "lawfit/batch.h"
#include "lawfit/models/power_law.h"

using Model = lawfit::models::SaturatingPowerLaw;
constexpr int kParams = Model::kParams;  // E, A, alpha

struct Points {
  std::vector<double> x, y;
  std::vector<long long> offsets{0};  // problem k's points: offsets[k] .. offsets[k + 1] - 1
};

// Three problems of seven points, and a fourth with too few points for three parameters,
// which ends with its own status (TOO_FEW_POINTS) and leaves the others untouched.
Points builtin_points() {
  const double x[] = {1, 2, 4, 8, 16, 32, 64};
  const double y[3][7] = {{5.0035, 4.1295, 3.5033, 3.0476, 2.7591, 2.5348, 2.3696},
                          {6.5019, 4.3665, 3.1453, 2.4229, 2.0621, 1.8239, 1.6762},
                          {2.7204, 2.2989, 2.0237, 1.7661, 1.5660, 1.4050, 1.2541}};
  Points pts;
  for (const auto& row : y) {
    for (int j = 0; j < 7; ++j) {
      pts.x.push_back(x[j]);
      pts.y.push_back(row[j]);
    }
    pts.offsets.push_back(static_cast<long long>(pts.x.size()));
  }
  pts.x.insert(pts.x.end(), {1.0, 2.0});
  pts.y.insert(pts.y.end(), {3.0, 2.5});
  pts.offsets.push_back(static_cast<long long>(pts.x.size()));
  return pts;
}

// Rows "problem,x,y" after one header line; problem numbers 0, 1, ... in order.
bool read_points(const char* path, Points& pts) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  std::getline(in, line);  // header
  long long current = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream row(line);
    long long k;
    double x, y;
    char c1, c2;
    if (!(row >> k >> c1 >> x >> c2 >> y) || c1 != ',' || c2 != ',' || k < current ||
        k > current + 1) {
      std::cerr << "fit_batch: bad row: " << line << "\n";
      return false;
    }
    if (k == current + 1) {
      pts.offsets.push_back(static_cast<long long>(pts.x.size()));
      current = k;
    }
    pts.x.push_back(x);
    pts.y.push_back(y);
  }
  if (!pts.x.empty()) pts.offsets.push_back(static_cast<long long>(pts.x.size()));
  return true;
}

int main(int argc, char** argv) {
  Points pts;
  if (argc > 1) {
    if (!read_points(argv[1], pts)) {
      std::cerr << "fit_batch: cannot read " << argv[1] << "\n";
      return 1;
    }
  } else {
    pts = builtin_points();
  }
  const long long n_problems = static_cast<long long>(pts.offsets.size()) - 1;

  // The power laws take log x (Model::kLogInputs), as lawfit.fit packs them; y is the target.
  std::vector<double> inputs(pts.x.size());
  for (size_t i = 0; i < pts.x.size(); ++i) inputs[i] = std::log(pts.x[i]);

  // One start per problem, rows of a (problems, kParams) array; one row of bounds for all.
  const double p0[kParams] = {1.0, 1.0, 0.5};
  std::vector<double> starts(n_problems * kParams);
  for (long long k = 0; k < n_problems; ++k)
    for (int j = 0; j < kParams; ++j) starts[k * kParams + j] = p0[j];
  const double lower[kParams] = {-INFINITY, -INFINITY, -INFINITY};
  const double upper[kParams] = {INFINITY, INFINITY, INFINITY};

  // Outputs, a row per problem.
  std::vector<double> p(n_problems * kParams), cost(n_problems), optimality(n_problems);
  std::vector<signed char> active(n_problems * kParams);
  std::vector<int> status(n_problems), nfev(n_problems), njev(n_problems), nit(n_problems);

  lawfit::Batch<double> b{};
  b.x = inputs.data();
  b.t = pts.y.data();
  b.sigma = nullptr;  // unit scales
  b.w = nullptr;      // unit weights
  b.offsets = pts.offsets.data();
  b.p0 = starts.data();
  b.lower = lower;
  b.upper = upper;
  b.bounds_shared = true;
  b.n_units = n_problems;  // one solve unit per problem (data_of == nullptr)
  b.n_problems = n_problems;
  b.p = p.data();
  b.cost = cost.data();
  b.optimality = optimality.data();
  b.jtj = nullptr;  // no J^T J wanted
  b.active = active.data();
  b.status = status.data();
  b.nfev = nfev.data();
  b.njev = njev.data();
  b.nit = nit.data();

  lawfit::Options o;             // ftol, xtol, gtol 1e-8; linear residuals and loss
  o.max_nfev = 100 * kParams;    // lawfit.fit's default budget
  o.max_nfev_cap = 20 * o.max_nfev;

  // The unit every driver runs; a program may spread the loop over its own threads (each
  // problem reads and writes only its own rows).  No resampling: no buffer.
  double* no_buffer = nullptr;
  for (long long i = 0; i < n_problems; ++i) lawfit::solve_in_batch<Model>(b, o, i, no_buffer);

  std::printf("problem,status,nfev,cost,E,A,alpha\n");
  for (long long k = 0; k < n_problems; ++k) {
    std::printf("%lld,%d,%d,%.17g", k, status[k], nfev[k], cost[k]);
    for (int j = 0; j < kParams; ++j) std::printf(",%.17g", p[k * kParams + j]);
    std::printf("\n");
  }
  return 0;
}
