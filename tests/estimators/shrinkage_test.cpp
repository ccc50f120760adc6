// Tests of the batch shrinkage estimators that share one shape (LedoitWolf, Oas,
// ConstantCorrelation, FixedShrinkage): reference values from scikit-learn 1.2.1 and an
// independent NumPy constant-correlation implementation
// (tests/reference/make_shrinkage_reference.py), properties over seeded data, allocation, errors
// and float. Constant-correlation specifics are in constant_correlation_test.cpp.

#include "dynweight/estimators/shrinkage.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <iostream>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "allocation_counter.hpp"
#include "dynweight/estimators/constant_correlation.hpp"
#include "dynweight/estimators/fixed_shrinkage.hpp"
#include "dynweight/estimators/ledoit_wolf.hpp"
#include "dynweight/estimators/oas.hpp"
#include "market_data.hpp"
#include "near.hpp"
#include "reference_csv.hpp"

using Catch::Matchers::Contains;
using dynweight::ConstantCorrelation;
using dynweight::FixedShrinkage;
using dynweight::Index;
using dynweight::LedoitWolf;
using dynweight::Oas;
using dynweight::ShrinkageResult;
using dynweight::ShrinkageTarget;
using dynweight::StatusCode;
using dynweight::test::near;
using dynweight::test::Tolerance;

namespace {

const std::vector<std::string> k_datasets = {"typical",      "wide",         "collinear",
                                             "single_asset", "heavy_tailed", "tiny"};

Eigen::MatrixXd dataset(const std::string& name) {
  return dynweight::test::read_wide("shrinkage/data_" + name + ".csv").values;
}

template <class Estimator>
ShrinkageResult estimate(Estimator& estimator, const Eigen::MatrixXd& x, Eigen::MatrixXd& out) {
  out.resize(x.cols(), x.cols());
  return estimator.compute(x, out);
}

// The four estimators behind one switch, so property tests run over all of them.
enum class Kind { ledoit_wolf, oas, constant_correlation, fixed_identity, fixed_cc };

const char* name_of(Kind kind) {
  switch (kind) {
    case Kind::ledoit_wolf:
      return "lw";
    case Kind::oas:
      return "oas";
    case Kind::constant_correlation:
      return "cc";
    case Kind::fixed_identity:
      return "fixed_identity";
    case Kind::fixed_cc:
      return "fixed_cc";
  }
  return "";
}

template <class Scalar = double>
ShrinkageResult run(Kind kind, const Eigen::Matrix<Scalar, -1, -1>& x,
                    Eigen::Matrix<Scalar, -1, -1>& out, double fixed = 0.3) {
  out.resize(x.cols(), x.cols());
  switch (kind) {
    case Kind::ledoit_wolf: {
      LedoitWolf<Scalar> e;
      return e.compute(x, out);
    }
    case Kind::oas: {
      Oas<Scalar> e;
      return e.compute(x, out);
    }
    case Kind::constant_correlation: {
      ConstantCorrelation<Scalar> e;
      return e.compute(x, out);
    }
    case Kind::fixed_identity: {
      FixedShrinkage<Scalar> e(ShrinkageTarget::scaled_identity, Scalar(fixed));
      return e.compute(x, out);
    }
    case Kind::fixed_cc: {
      FixedShrinkage<Scalar> e(ShrinkageTarget::constant_correlation, Scalar(fixed));
      return e.compute(x, out);
    }
  }
  return {};
}

// Norm-wise relative covariance error (max norm), the measure near() uses.
double relative_error(const Eigen::MatrixXd& actual, const Eigen::MatrixXd& expected) {
  return (actual - expected).cwiseAbs().maxCoeff() / expected.cwiseAbs().maxCoeff();
}

// Worst errors against the reference files, per estimator (printed by the [.report] test).
struct ReferenceErrors {
  double covariance = 0;
  double intensity = 0;
  double parameter = 0;
};

ReferenceErrors reference_errors(Kind kind, const std::string& name) {
  const auto scalars = dynweight::test::read_keyed_rows("shrinkage/scalars.csv", 2);
  const Eigen::MatrixXd x = dataset(name);
  Eigen::MatrixXd out;
  const ShrinkageResult result = run(kind, x, out);
  const Eigen::MatrixXd expected = dynweight::test::read_square_matrix(
      std::string("shrinkage/") + name_of(kind) + "_" + name + "_covariance.csv");
  const auto& row = scalars.at(std::string(name_of(kind)) + "," + name);
  ReferenceErrors e;
  e.covariance = relative_error(out, expected);
  e.intensity = std::abs(result.intensity - row.at(0));
  if (std::isnan(row.at(1)))
    e.parameter = std::isnan(result.target_parameter) ? 0.0 : 1.0;
  else
    e.parameter = std::abs(result.target_parameter - row.at(1)) / std::abs(row.at(1));
  return e;
}

}  // namespace

// Tolerances. Covariance: 1e-12 norm-wise relative. Both sides form S = YᵀY/T in double (numpy's
// BLAS and Eigen's kernel) with errors of a few ulps of the largest |S_ij| (T ≤ 250 products per
// entry, blocked sums); the shrunk matrix is a convex combination of S and a target built from S,
// so it inherits that (~1e-15), and 1e-12 leaves three orders of margin while still catching any
// formula error (the smallest intensity here, 0.015, moves entries by ~1e-3 relative).
// Intensity: absolute 1e-12. δ is a ratio of sums whose only cancellation is β̄ = A − B
// (A = Σ||y_t||⁴/T, B = ||S||²; A/B ≤ ~10 here except T = 2, where A = B exactly) and, for
// constant correlation, π̂ − ρ̂ (likewise ≤ ~10); a relative error of 1e-15 in A, B amplified by
// ≤ 10 and divided by γ̂ or d² (well away from 0 in every dataset: no target is close to S) stays
// below 1e-13. T = 2 (`tiny`) has exact answers 0, 1, 0 that both sides reach up to rounding
// noise (see the reference README), also within 1e-12. Collinear and wide need nothing looser:
// near-singular S does not enter δ through an inverse, only through these sums.
// Target parameter: relative 1e-12 (μ is a sum of N variances; r̄ a mean of correlations, each a
// ratio with error ~1e-15).
TEST_CASE("Shrinkage estimators match the reference files", "[estimators][shrinkage][reference]") {
  const auto kind = GENERATE(Kind::ledoit_wolf, Kind::oas, Kind::constant_correlation);
  const std::string name = GENERATE_REF(from_range(k_datasets));
  CAPTURE(name_of(kind), name);
  const auto scalars = dynweight::test::read_keyed_rows("shrinkage/scalars.csv", 2);
  const Eigen::MatrixXd x = dataset(name);
  Eigen::MatrixXd out;
  const ShrinkageResult result = run(kind, x, out);
  const Eigen::MatrixXd expected = dynweight::test::read_square_matrix(
      std::string("shrinkage/") + name_of(kind) + "_" + name + "_covariance.csv");
  const auto& row = scalars.at(std::string(name_of(kind)) + "," + name);
  CHECK(result.status.ok());
  CHECK(near(out, expected, 1e-12));
  CHECK(out == out.transpose());
  CHECK(std::abs(result.intensity - row.at(0)) <= 1e-12);
  if (std::isnan(row.at(1))) {
    CHECK(std::isnan(result.target_parameter));
  } else {
    CHECK(std::abs(result.target_parameter - row.at(1)) <= 1e-12 * std::abs(row.at(1)));
  }
}

TEST_CASE("FixedShrinkage matches the reference files", "[estimators][shrinkage][reference]") {
  const auto kind = GENERATE(Kind::fixed_identity, Kind::fixed_cc);
  CAPTURE(name_of(kind));
  const auto scalars = dynweight::test::read_keyed_rows("shrinkage/scalars.csv", 2);
  const auto& row = scalars.at(std::string(name_of(kind)) + ",typical");
  const Eigen::MatrixXd x = dataset("typical");
  Eigen::MatrixXd out;
  const ShrinkageResult result = run(kind, x, out, row.at(0));
  const Eigen::MatrixXd expected = dynweight::test::read_square_matrix(
      std::string("shrinkage/") + name_of(kind) + "_typical_covariance.csv");
  CHECK(result.status.ok());
  CHECK(near(out, expected, 1e-12));  // same argument as above, without an intensity to estimate
  CHECK(result.intensity == row.at(0));
  CHECK(std::abs(result.target_parameter - row.at(1)) <= 1e-12 * std::abs(row.at(1)));
}

TEST_CASE("Shrinkage: worst errors against the references", "[.][report]") {
  for (const auto kind : {Kind::ledoit_wolf, Kind::oas, Kind::constant_correlation}) {
    ReferenceErrors worst;
    for (const auto& name : k_datasets) {
      const auto e = reference_errors(kind, name);
      std::cout << name_of(kind) << " " << name << ": covariance " << e.covariance << ", intensity "
                << e.intensity << ", parameter " << e.parameter << "\n";
      worst.covariance = std::max(worst.covariance, e.covariance);
      worst.intensity = std::max(worst.intensity, e.intensity);
      worst.parameter = std::max(worst.parameter, e.parameter);
    }
    std::cout << name_of(kind) << " WORST: covariance " << worst.covariance << ", intensity "
              << worst.intensity << ", parameter " << worst.parameter << "\n";
  }
  for (const auto kind : {Kind::fixed_identity, Kind::fixed_cc}) {
    Eigen::MatrixXd out;
    run(kind, dataset("typical"), out);
    std::cout << name_of(kind) << " typical: covariance "
              << relative_error(out, dynweight::test::read_square_matrix(std::string("shrinkage/") +
                                                                         name_of(kind) +
                                                                         "_typical_covariance.csv"))
              << "\n";
  }
}

TEST_CASE("Shrinkage estimators: rolling windows match the reference intensities",
          "[estimators][shrinkage][reference]") {
  // Header row,lw_shrinkage,lw_mu,oas_shrinkage,oas_mu,cc_shrinkage,cc_rbar; every 60-row window
  // estimated from scratch. One estimator object per kind, reused: also exercises repeated calls.
  const Eigen::MatrixXd x = dataset("rolling");
  const auto table = dynweight::test::read_keyed_rows("shrinkage/rolling_w60_intensities.csv", 1);
  LedoitWolf<double> lw(60, x.cols());
  Oas<double> oas(60, x.cols());
  ConstantCorrelation<double> cc(60, x.cols());
  Eigen::MatrixXd out(x.cols(), x.cols());
  Index compared = 0;
  for (const auto& [key, v] : table) {
    const Index last = std::stol(key);
    const Eigen::MatrixXd window = x.middleRows(last - 59, 60);
    CAPTURE(last);
    const auto r_lw = lw.compute(window, out);
    CHECK(std::abs(r_lw.intensity - v.at(0)) <= 1e-12);
    CHECK(std::abs(r_lw.target_parameter - v.at(1)) <= 1e-12 * v.at(1));
    const auto r_oas = oas.compute(window, out);
    CHECK(std::abs(r_oas.intensity - v.at(2)) <= 1e-12);
    CHECK(std::abs(r_oas.target_parameter - v.at(3)) <= 1e-12 * v.at(3));
    const auto r_cc = cc.compute(window, out);
    CHECK(std::abs(r_cc.intensity - v.at(4)) <= 1e-12);
    CHECK(std::abs(r_cc.target_parameter - v.at(5)) <= 1e-12);
    for (const Index t : {59, 200, 399}) {
      if (t != last)
        continue;
      const std::string prefix = "shrinkage/rolling_w60_t" + std::to_string(t) + "_";
      lw.compute(window, out);
      CHECK(near(out, dynweight::test::read_square_matrix(prefix + "lw_covariance.csv"), 1e-12));
      oas.compute(window, out);
      CHECK(near(out, dynweight::test::read_square_matrix(prefix + "oas_covariance.csv"), 1e-12));
      cc.compute(window, out);
      CHECK(near(out, dynweight::test::read_square_matrix(prefix + "cc_covariance.csv"), 1e-12));
    }
    ++compared;
  }
  CHECK(compared == 341);
}

namespace {

// The target each kind shrinks toward, built here from a two-pass S (the independent side).
Eigen::MatrixXd target_of(Kind kind, const Eigen::MatrixXd& s) {
  const Index n = s.rows();
  if (kind == Kind::ledoit_wolf || kind == Kind::oas || kind == Kind::fixed_identity)
    return Eigen::MatrixXd::Identity(n, n) * (s.trace() / double(n));
  const Eigen::VectorXd sd = s.diagonal().cwiseSqrt();
  const Eigen::MatrixXd r = dynweight::test::correlation_of(s);
  const double rbar = n > 1 ? (r.sum() - double(n)) / double(n * (n - 1)) : 0.0;
  Eigen::MatrixXd f = rbar * sd * sd.transpose();
  f.diagonal() = s.diagonal();
  return f;
}

}  // namespace

TEST_CASE("Shrinkage estimators: properties over sizes and seeds", "[estimators][shrinkage]") {
  const auto kind = GENERATE(Kind::ledoit_wolf, Kind::oas, Kind::constant_correlation,
                             Kind::fixed_identity, Kind::fixed_cc);
  const Index n = GENERATE(1, 2, 3, 7, 25);
  const Index t = GENERATE(3, 40, 200);
  const std::uint64_t seed = GENERATE(1u, 2u, 3u);
  CAPTURE(name_of(kind), n, t, seed);
  const Eigen::MatrixXd x = dynweight::test::correlated_returns(t, n, seed * 977 + n, 0.001, 0.01);
  Eigen::MatrixXd out;
  const ShrinkageResult result = run(kind, x, out);
  REQUIRE(result.status.ok());
  REQUIRE(out.allFinite());
  REQUIRE(out == out.transpose());  // mirrored exactly
  REQUIRE(result.intensity >= 0.0);
  REQUIRE(result.intensity <= 1.0);

  // The definition: (1 − δ) S + δ F with S and F formed independently.
  const Eigen::MatrixXd s = dynweight::test::two_pass_covariance(x, 0);
  const Eigen::MatrixXd f = target_of(kind, s);
  REQUIRE(near(out, (1 - result.intensity) * s + result.intensity * f, 1e-13));

  // Symmetric positive definite whenever the target is and δ > 0 (S is singular when T ≤ N);
  // positive semi-definite always.
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(out);
  REQUIRE(eig.eigenvalues().minCoeff() >= -1e-14 * eig.eigenvalues().cwiseAbs().maxCoeff());
  if (result.intensity > 0 || t > n) {
    CHECK(out.llt().info() == Eigen::Success);
    CHECK(eig.eigenvalues().minCoeff() > 0);
  }

  // Permuting assets permutes the result and leaves δ unchanged (up to summation order).
  std::vector<Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Index(0));
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  Eigen::PermutationMatrix<Eigen::Dynamic> p(n);
  for (Index i = 0; i < n; ++i)
    p.indices()(i) = static_cast<int>(order[static_cast<std::size_t>(i)]);
  const Eigen::MatrixXd xp = x * p;  // column i of xp is column order[i] of x
  Eigen::MatrixXd out_p;
  const ShrinkageResult result_p = run(kind, xp, out_p);
  CHECK(near(out_p, p.transpose() * out * p, 1e-13));
  CHECK(std::abs(result_p.intensity - result.intensity) <= 1e-12);

  // Scaling returns by c scales the covariance by c² and leaves δ unchanged: exactly for a power
  // of two, to rounding otherwise.
  Eigen::MatrixXd out_c;
  const ShrinkageResult result_4 = run(kind, Eigen::MatrixXd(4.0 * x), out_c);
  CHECK(result_4.intensity == result.intensity);
  CHECK(out_c == 16.0 * out);
  const double c = 3.7;
  const ShrinkageResult result_c = run(kind, Eigen::MatrixXd(c * x), out_c);
  CHECK(near(out_c, c * c * out, 1e-13));
  CHECK(std::abs(result_c.intensity - result.intensity) <= 1e-12);
}

TEST_CASE("Shrinkage estimators: the intensity holds at any magnitude of the data",
          "[estimators][shrinkage]") {
  // Σ_t ‖y_t‖⁴ and ‖S‖²_F overflow or underflow long before S does: at 1e80 Ledoit–Wolf gave
  // δ = 0 and OAS and constant correlation NaN, at 1e-120 δ = 0, 1 and 0, all with status
  // `success`. The workspace scales extreme panels by a power of two, so δ is the same as at
  // scale 1: exactly for a power of two (and the output exactly c² times), to rounding otherwise.
  const auto kind = GENERATE(Kind::ledoit_wolf, Kind::oas, Kind::constant_correlation,
                             Kind::fixed_identity, Kind::fixed_cc);
  const Eigen::MatrixXd x = dynweight::test::correlated_returns(20, 5, 11, 0.0, 0.01);
  Eigen::MatrixXd out;
  const ShrinkageResult base = run(kind, x, out);
  REQUIRE(base.status.ok());
  for (const int power : {-400, -200, 200, 400}) {
    const double c = std::ldexp(1.0, power);
    CAPTURE(name_of(kind), power);
    Eigen::MatrixXd out_c;
    const ShrinkageResult scaled = run(kind, Eigen::MatrixXd(c * x), out_c);
    CHECK(scaled.intensity == base.intensity);
    CHECK(scaled.status.code == base.status.code);
    CHECK(out_c == (c * c) * out);
  }
  for (const double c : {1e-140, 1e-120, 1e-80, 1e80, 1e120, 1e150}) {
    CAPTURE(name_of(kind), c);
    Eigen::MatrixXd out_c;
    const ShrinkageResult scaled = run(kind, Eigen::MatrixXd(c * x), out_c);
    CHECK(std::abs(scaled.intensity - base.intensity) <= 1e-12);
    CHECK(scaled.status.code == base.status.code);
    CHECK(near(Eigen::MatrixXd(out_c / (c * c)), out, 1e-13));
  }
  // Subnormal data (~1e-315 and ~1e-324: 20 and 1 significant bits left) keeps few digits and
  // S underflows to 0, but δ is still an intensity: 2^−e alone overflowed there, and OAS gave NaN.
  for (const int power : {-1040, -1070}) {
    CAPTURE(name_of(kind), power);
    Eigen::MatrixXd out_c;
    const ShrinkageResult scaled = run(kind, Eigen::MatrixXd(std::ldexp(1.0, power) * x), out_c);
    CHECK(scaled.intensity >= 0.0);
    CHECK(scaled.intensity <= 1.0);
    CHECK(out_c.allFinite());
  }
  // Beyond the limit (S would overflow): rejected, naming the entry, before `out` is touched.
  Eigen::MatrixXd big = x;
  big(3, 2) = 1e160;
  Eigen::MatrixXd untouched = out;
  REQUIRE_THROWS_WITH(run(kind, big, untouched),
                      Contains("observations(3, 2) (row 3, asset 2) is 1e+160") &&
                          Contains("larger values would overflow the sample covariance"));
  CHECK(untouched == out);
}

TEST_CASE("Shrinkage estimators in float: the intensity at a P&L's magnitude",
          "[estimators][shrinkage][float]") {
  // Daily P&L in dollars (~1e9 here) overflowed float's fourth moments: Ledoit–Wolf gave δ = 1
  // and constant correlation NaN. The float estimators must give the double ones' δ on the same
  // data, to float's rounding, from 1e-9 to 1e9.
  const Eigen::MatrixXd x = dynweight::test::correlated_returns(40, 6, 3, 0.0, 1.0);
  Eigen::MatrixXd out(6, 6);
  const double lw = LedoitWolf<double>().compute(x, out).intensity;
  const double oas = Oas<double>().compute(x, out).intensity;
  const double cc = ConstantCorrelation<double>().compute(x, out).intensity;
  for (const float c : {1e-9f, 1.0f, 1e9f}) {
    CAPTURE(c);
    const Eigen::MatrixXf xf = (x.cast<float>() * c).eval();
    Eigen::MatrixXf outf(6, 6);
    CHECK(LedoitWolf<float>().compute(xf, outf).intensity == Approx(lw).margin(1e-4));
    CHECK(outf.allFinite());
    CHECK(Oas<float>().compute(xf, outf).intensity == Approx(oas).margin(1e-4));
    CHECK(ConstantCorrelation<float>().compute(xf, outf).intensity == Approx(cc).margin(1e-4));
    CHECK(outf.allFinite());
  }
}

TEST_CASE("FixedShrinkage: intensity 0 gives S and 1 the target", "[estimators][shrinkage]") {
  const auto target =
      GENERATE(ShrinkageTarget::scaled_identity, ShrinkageTarget::constant_correlation);
  const Index n = GENERATE(1, 4, 30);
  const Eigen::MatrixXd x = dynweight::test::correlated_returns(50, n, 17 + n, 0.0005);
  const Eigen::MatrixXd s = dynweight::test::two_pass_covariance(x, 0);
  const Kind kind =
      target == ShrinkageTarget::scaled_identity ? Kind::fixed_identity : Kind::fixed_cc;
  FixedShrinkage<double> none(target, 0.0);
  FixedShrinkage<double> full(target, 1.0);
  Eigen::MatrixXd out;
  CHECK(estimate(none, x, out).intensity == 0.0);
  CHECK(near(out, s, 1e-13));
  CHECK(estimate(full, x, out).intensity == 1.0);
  CHECK(near(out, target_of(kind, s), 1e-13));
  CHECK(full.target() == target);
  CHECK(full.intensity() == 1.0);
}

TEST_CASE("FixedShrinkage validates its intensity", "[estimators][shrinkage][errors]") {
  const double bad = GENERATE(-0.1, 1.5, std::numeric_limits<double>::quiet_NaN(),
                              std::numeric_limits<double>::infinity());
  REQUIRE_THROWS_AS(FixedShrinkage<double>(ShrinkageTarget::scaled_identity, bad),
                    dynweight::Error);
  REQUIRE_THROWS_WITH(
      FixedShrinkage<double>(ShrinkageTarget::constant_correlation, bad),
      Contains("FixedShrinkage") && Contains("intensity") && Contains("must be in [0, 1]"));
}

TEST_CASE("Shrinkage estimators validate their sizes", "[estimators][shrinkage][errors]") {
  REQUIRE_THROWS_WITH(LedoitWolf<double>(1, 3), Contains("LedoitWolf: observations = 1"));
  REQUIRE_THROWS_WITH(Oas<double>(5, 0), Contains("Oas: assets = 0"));
  REQUIRE_THROWS_WITH(ConstantCorrelation<double>(5, 2, {"A"}),
                      Contains("names has 1 entries, expected 2"));
  REQUIRE_THROWS_AS(FixedShrinkage<double>(ShrinkageTarget::scaled_identity, 0.5, 0, 3),
                    dynweight::Error);
}

namespace {

// Calls compute twice at one size; the second call (and, with a sizing constructor, the first)
// must not allocate.
template <class Estimator>
void check_no_allocation(Estimator& estimator, const Eigen::MatrixXd& x, bool sized) {
  Eigen::MatrixXd out(x.cols(), x.cols());
  if (!sized)
    estimator.compute(x, out);
  const Eigen::MatrixXd y = 1.5 * x;
  std::size_t allocations = 0;
  double sink = 0;
  {
    dynweight::test::NoAllocationScope scope;
    sink += estimator.compute(y, out).intensity;
    sink += estimator.compute(x, out).intensity;
    allocations = scope.allocations();
  }
  REQUIRE(allocations == 0);
  REQUIRE(std::isfinite(sink));
}

}  // namespace

TEST_CASE("Shrinkage estimators do not allocate after the first call at a size",
          "[estimators][shrinkage][allocation]") {
  // 400 × 300 exceeds Eigen's 128 KB stack limit for the rank-T kernel's packing buffers (Eigen's
  // own rankUpdate would take them from the heap on every call).
  const auto [t, n] = GENERATE(std::pair<Index, Index>{60, 8}, std::pair<Index, Index>{400, 300});
  const bool sized = GENERATE(false, true);
  CAPTURE(t, n, sized);
  const Eigen::MatrixXd x = dynweight::test::correlated_returns(t, n, 5);
  if (sized) {
    LedoitWolf<double> lw(t, n);
    Oas<double> oas(t, n);
    ConstantCorrelation<double> cc(t, n);
    FixedShrinkage<double> fi(ShrinkageTarget::scaled_identity, 0.2, t, n);
    FixedShrinkage<double> fc(ShrinkageTarget::constant_correlation, 0.2, t, n);
    check_no_allocation(lw, x, true);
    check_no_allocation(oas, x, true);
    check_no_allocation(cc, x, true);
    check_no_allocation(fi, x, true);
    check_no_allocation(fc, x, true);
  } else {
    LedoitWolf<double> lw;
    Oas<double> oas;
    ConstantCorrelation<double> cc;
    FixedShrinkage<double> fi(ShrinkageTarget::scaled_identity, 0.2);
    FixedShrinkage<double> fc(ShrinkageTarget::constant_correlation, 0.2);
    check_no_allocation(lw, x, false);
    check_no_allocation(oas, x, false);
    check_no_allocation(cc, x, false);
    check_no_allocation(fi, x, false);
    check_no_allocation(fc, x, false);
  }
}

TEST_CASE("Shrinkage: the rank-T kernel is Eigen's rankUpdate, bit for bit",
          "[estimators][shrinkage]") {
  const auto [t, n] = GENERATE(std::pair<Index, Index>{2, 1}, std::pair<Index, Index>{7, 13},
                               std::pair<Index, Index>{300, 40}, std::pair<Index, Index>{500, 301});
  CAPTURE(t, n);
  const Eigen::MatrixXd y = dynweight::test::correlated_returns(t, n, 9);
  Eigen::MatrixXd expected = Eigen::MatrixXd::Zero(n, n);
  expected.selfadjointView<Eigen::Lower>().rankUpdate(y.transpose(), 1.0 / double(t));
  Eigen::MatrixXd actual = Eigen::MatrixXd::Zero(n, n);
  dynweight::detail::GramKernel<double> kernel;
  kernel.resize(t, n);
  kernel.run(y, actual, 1.0 / double(t));
  const Eigen::MatrixXd a = actual.triangularView<Eigen::Lower>();
  const Eigen::MatrixXd e = expected.triangularView<Eigen::Lower>();
  REQUIRE(a == e);
  dynweight::detail::GramKernel<double> copy(kernel);  // a copy gets its own buffers
  actual.setZero();
  copy.run(y, actual, 1.0 / double(t));
  REQUIRE(Eigen::MatrixXd(actual.triangularView<Eigen::Lower>()) == e);
}

namespace {

template <class Estimator>
void check_rejects_and_unchanged(Estimator& estimator, const std::string& where) {
  const Eigen::MatrixXd x = dynweight::test::correlated_returns(30, 4, 21);
  Eigen::MatrixXd out(4, 4);
  const ShrinkageResult before = estimator.compute(x, out);
  const Eigen::MatrixXd out_before = out;
  const Eigen::MatrixXd s_before = estimator.sample_covariance();

  Eigen::MatrixXd bad = 2.0 * x;
  bad(3, 2) =
      GENERATE(std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
               -std::numeric_limits<double>::infinity());
  REQUIRE_THROWS_AS(estimator.compute(bad, out), dynweight::Error);
  REQUIRE_THROWS_WITH(estimator.compute(bad, out), Contains(where) &&
                                                       Contains("observations(3, 2)") &&
                                                       Contains("asset 2 ('C')"));
  Eigen::MatrixXd wrong(3, 4);
  REQUIRE_THROWS_WITH(estimator.compute(x, wrong), Contains("shrunk is 3x4, expected 4x4"));
  REQUIRE_THROWS_WITH(estimator.compute(x.topRows(1), out),
                      Contains("observations.rows() (T) = 1; must be >= 2"));
  Eigen::MatrixXd none(10, 0);
  Eigen::MatrixXd empty(0, 0);
  REQUIRE_THROWS_WITH(estimator.compute(none, empty),
                      Contains("observations.cols() (N) = 0; must be >= 1"));
  REQUIRE_THROWS_WITH(estimator.compute(x.leftCols(3), out),
                      Contains("names has 4 entries, expected 3"));

  const ShrinkageResult after = estimator.result();
  REQUIRE(after.status.code == before.status.code);
  REQUIRE(after.intensity == before.intensity);
  REQUIRE(dynweight::test::identical(Eigen::Vector2d(after.target_parameter, 0),
                                     Eigen::Vector2d(before.target_parameter, 0)));
  REQUIRE(dynweight::test::identical(out, out_before));
  REQUIRE(dynweight::test::identical(Eigen::MatrixXd(estimator.sample_covariance()), s_before));
  REQUIRE(estimator.observations() == 30);
  REQUIRE(estimator.assets() == 4);
  // ... and carries on as one that never saw the bad calls.
  REQUIRE(estimator.compute(x, out).intensity == before.intensity);
  REQUIRE(dynweight::test::identical(out, out_before));
}

}  // namespace

TEST_CASE("Shrinkage estimators reject bad input and stay unchanged",
          "[estimators][shrinkage][errors]") {
  const dynweight::AssetNames names = {"A", "B", "C", "D"};
  SECTION("LedoitWolf") {
    LedoitWolf<double> e(names);
    check_rejects_and_unchanged(e, "LedoitWolf::compute");
  }
  SECTION("Oas") {
    Oas<double> e(names);
    check_rejects_and_unchanged(e, "Oas::compute");
  }
  SECTION("ConstantCorrelation") {
    ConstantCorrelation<double> e(names);
    check_rejects_and_unchanged(e, "ConstantCorrelation::compute");
  }
  SECTION("FixedShrinkage") {
    FixedShrinkage<double> e(ShrinkageTarget::constant_correlation, 0.4, names);
    check_rejects_and_unchanged(e, "FixedShrinkage::compute");
  }
}

TEST_CASE("Shrinkage estimators report not_ready before the first compute",
          "[estimators][shrinkage]") {
  LedoitWolf<double> lw;
  CHECK(lw.result().status.code == StatusCode::not_ready);
  ConstantCorrelation<double> cc(10, 3);
  CHECK(cc.result().status.code == StatusCode::not_ready);
  CHECK(cc.observations() == 10);
  CHECK(cc.assets() == 3);
  CHECK(Eigen::MatrixXd(cc.sample_covariance()).array().isNaN().all());  // nothing computed yet
}

TEST_CASE("Shrinkage estimators: moved from, assigned to, they compute as new",
          "[estimators][shrinkage]") {
  const Index t = 400, n = 300;  // packing buffers past Eigen's stack limit, as in use
  const Eigen::MatrixXd xa = dynweight::test::correlated_returns(t, n, 7);
  const Eigen::MatrixXd xb = dynweight::test::correlated_returns(t, n, 8);
  Eigen::MatrixXd expected(n, n), out(n, n), scratch(n, n);
  LedoitWolf<double> fresh;
  const double intensity = fresh.compute(xa, expected).intensity;
  LedoitWolf<double> a(t, n);
  LedoitWolf<double> b(t, n);
  a.compute(xa, scratch);
  b.compute(xb, scratch);
  a = std::move(b);  // b keeps a's old buffers in exchange, and no packing buffers
  CHECK(b.compute(xa, out).intensity == intensity);
  CHECK(out == expected);
  LedoitWolf<double> c(std::move(a));
  CHECK(a.compute(xa, out).intensity == intensity);
  CHECK(out == expected);
}

TEST_CASE("Shrinkage estimators: zero-variance and all-constant data",
          "[estimators][shrinkage][degenerate]") {
  Eigen::MatrixXd x = dynweight::test::correlated_returns(40, 5, 31, 0.001);
  x.col(2).setConstant(0.1);  // a halted asset: 0.1 is not exact in binary, the mean must be
  Eigen::MatrixXd out;
  SECTION("LedoitWolf and Oas: harmless, positive definite") {
    for (const auto kind : {Kind::ledoit_wolf, Kind::oas}) {
      const ShrinkageResult r = run(kind, x, out);
      CHECK(r.status.ok());
      CHECK(r.intensity > 0);
      CHECK(out.llt().info() == Eigen::Success);
      CHECK(out.col(2).head(2).isZero(0.0));
      CHECK(out.col(2).tail(2).isZero(0.0));
    }
  }
  SECTION("every asset constant: scaled identity target is zero") {
    Eigen::MatrixXd constant(10, 3);
    constant.rowwise() = Eigen::RowVector3d(0.1, -0.3, 7.0);
    const ShrinkageResult lw = run(Kind::ledoit_wolf, constant, out);
    CHECK(lw.status.code == StatusCode::numerical_issue);
    CHECK(lw.intensity == 0.0);  // scikit-learn: beta = delta = 0 -> 0
    CHECK(lw.target_parameter == 0.0);
    CHECK(out.isZero(0.0));
    const ShrinkageResult oas = run(Kind::oas, constant, out);
    CHECK(oas.status.code == StatusCode::numerical_issue);
    CHECK(oas.intensity == 1.0);  // scikit-learn: den == 0 -> 1
    CHECK(out.isZero(0.0));
    const ShrinkageResult cc = run(Kind::constant_correlation, constant, out);
    CHECK(cc.status.code == StatusCode::numerical_issue);
    CHECK(cc.intensity == 0.0);
    CHECK(std::isnan(cc.target_parameter));
    CHECK(out.isZero(0.0));
    const ShrinkageResult fixed = run(Kind::fixed_identity, constant, out);
    CHECK(fixed.status.code == StatusCode::numerical_issue);
    CHECK(out.isZero(0.0));
  }
}

TEST_CASE("Shrinkage estimators: float instantiation", "[estimators][shrinkage][float]") {
  const auto kind = GENERATE(Kind::ledoit_wolf, Kind::oas, Kind::constant_correlation,
                             Kind::fixed_identity, Kind::fixed_cc);
  const std::string name = GENERATE(as<std::string>{}, "typical", "heavy_tailed", "wide");
  CAPTURE(name_of(kind), name);
  const Eigen::MatrixXd x = dataset(name);
  Eigen::MatrixXd out;
  const ShrinkageResult expected = run(kind, x, out);
  Eigen::MatrixXf out_f;
  const ShrinkageResult actual = run<float>(kind, Eigen::MatrixXf(x.cast<float>()), out_f);
  // float keeps ~7 digits; sums over T ≤ 250 terms lose up to ~2 more, and δ's cancellation
  // (A − B, π̂ − ρ̂, at most ~10×) one more.
  CHECK(near(out_f, out, 1e-4));
  CHECK(std::abs(actual.intensity - expected.intensity) <= 1e-4);
  CHECK(std::abs(actual.target_parameter - expected.target_parameter) <=
        1e-4 * std::abs(expected.target_parameter));
  CHECK(out_f == out_f.transpose());
}

TEST_CASE("Shrinkage: the documentation examples compile and run", "[estimators][shrinkage]") {
  {
    Eigen::MatrixXd returns = Eigen::MatrixXd::Random(250, 10) * 0.01;  // T × N, one bar a row
    Eigen::MatrixXd sigma(10, 10);
    dynweight::LedoitWolf<double> lw;
    const dynweight::ShrinkageResult result = lw.compute(returns, sigma);
    CHECK(result.status.ok());
  }
  {
    Eigen::MatrixXd returns = Eigen::MatrixXd::Random(250, 10) * 0.01;
    Eigen::MatrixXd sigma(10, 10);
    dynweight::Oas<double> oas(250, 10);  // sized up front
    const dynweight::ShrinkageResult result = oas.compute(returns, sigma);
    CHECK(result.status.ok());
  }
  {
    Eigen::MatrixXd returns = Eigen::MatrixXd::Random(250, 10) * 0.01;
    Eigen::MatrixXd sigma(10, 10);
    dynweight::ConstantCorrelation<double> cc;
    const dynweight::ShrinkageResult result = cc.compute(returns, sigma);
    CHECK(result.status.ok());
  }
  {
    Eigen::MatrixXd returns = Eigen::MatrixXd::Random(250, 10) * 0.01;
    Eigen::MatrixXd sigma(10, 10);
    dynweight::FixedShrinkage<double> fixed(dynweight::ShrinkageTarget::constant_correlation, 0.3);
    const dynweight::ShrinkageResult result = fixed.compute(returns, sigma);  // intensity 0.3
    CHECK(result.intensity == 0.3);
  }
  CHECK(dynweight::to_string(ShrinkageTarget::constant_correlation) == "constant_correlation");
}
