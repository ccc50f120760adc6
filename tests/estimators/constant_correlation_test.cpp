// ConstantCorrelation specifics: the O(T N + N²) reductions of π̂ and ρ̂ against the direct
// O(T N²) formulas of Ledoit & Wolf (2003), and the degenerate cases (zero variance, N = 1, N = 2,
// T = 2). Reference values and the properties shared with the other estimators are in
// shrinkage_test.cpp.

#include "dynweight/estimators/constant_correlation.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "market_data.hpp"
#include "near.hpp"

using dynweight::ConstantCorrelation;
using dynweight::Index;
using dynweight::ShrinkageResult;
using dynweight::StatusCode;
using dynweight::test::near;

namespace {

struct DirectTerms {
  double rbar = 0;
  double pi_hat = 0;
  double rho_hat = 0;
  double gamma_hat = 0;
  double delta = 0;
};

// The paper's formulas entry by entry, O(T N²) per (i, j) pair sum, with a two-pass S.
DirectTerms direct_terms(const Eigen::MatrixXd& x) {
  const Index t = x.rows();
  const Index n = x.cols();
  const Eigen::MatrixXd y = x.rowwise() - x.colwise().mean();
  const Eigen::MatrixXd s = y.transpose() * y / double(t);
  const Eigen::VectorXd sd = s.diagonal().cwiseSqrt();
  DirectTerms d;
  if (n > 1) {
    for (Index i = 0; i < n; ++i)
      for (Index j = 0; j < n; ++j)
        if (i != j)
          d.rbar += s(i, j) / (sd(i) * sd(j));
    d.rbar /= double(n * (n - 1));
  }
  auto pi = [&](Index i, Index j) {
    return ((y.col(i).array() * y.col(j).array() - s(i, j)).square()).mean();
  };
  auto theta = [&](Index k, Index i, Index j) {  // θ_kk,ij
    return ((y.col(k).array().square() - s(k, k)) * (y.col(i).array() * y.col(j).array() - s(i, j)))
        .mean();
  };
  for (Index i = 0; i < n; ++i) {
    for (Index j = 0; j < n; ++j) {
      d.pi_hat += pi(i, j);
      if (i == j) {
        d.rho_hat += pi(i, i);
      } else {
        d.rho_hat += 0.5 * d.rbar *
                     (std::sqrt(s(j, j) / s(i, i)) * theta(i, i, j) +
                      std::sqrt(s(i, i) / s(j, j)) * theta(j, i, j));
        const double f = d.rbar * sd(i) * sd(j);
        d.gamma_hat += (f - s(i, j)) * (f - s(i, j));
      }
    }
  }
  d.delta = d.gamma_hat > 0 ? std::clamp((d.pi_hat - d.rho_hat) / d.gamma_hat / double(t), 0.0, 1.0)
                            : 0.0;
  return d;
}

}  // namespace

TEST_CASE("ConstantCorrelation: reduced pi and rho equal the direct O(T N^2) formulas",
          "[estimators][constant_correlation]") {
  const Index n = GENERATE(2, 3, 10, 40);
  const Index t = GENERATE(2, 5, 60, 300);
  const bool heavy = GENERATE(false, true);
  CAPTURE(n, t, heavy);
  Eigen::MatrixXd x = dynweight::test::correlated_returns(t, n, 100 + n + t, 0.0004, 0.02);
  if (heavy)  // cube the returns: fat tails, so π̂ and ρ̂ are far from their Gaussian values
    x = x.array().cube() * 2500.0;
  ConstantCorrelation<double> cc;
  Eigen::MatrixXd out(n, n);
  const ShrinkageResult result = cc.compute(x, out);
  const DirectTerms d = direct_terms(x);
  // π̂, ρ̂ and γ̂ are sums of terms of size S_ii S_jj; compare on that scale, (tr S)².
  const double scale = std::pow(Eigen::MatrixXd(cc.sample_covariance()).trace(), 2);
  CHECK(std::abs(cc.terms().pi_hat - d.pi_hat) <= 1e-13 * scale);
  CHECK(std::abs(cc.terms().rho_hat - d.rho_hat) <= 1e-13 * scale);
  CHECK(std::abs(cc.terms().gamma_hat - d.gamma_hat) <= 1e-13 * scale);
  CHECK(std::abs(result.target_parameter - d.rbar) <= 1e-13);
  if (n > 2 && t > 2) {
    // κ/T = (π̂ − ρ̂)/(γ̂ T): the absolute error above, over γ̂ T.
    CHECK(std::abs(result.intensity - d.delta) <= 1e-13 * scale / (d.gamma_hat * double(t)));
  }
}

TEST_CASE("ConstantCorrelation: a zero-variance asset is left out, without NaN",
          "[estimators][constant_correlation][degenerate]") {
  const Index n = GENERATE(2, 3, 8);
  const Index dead = GENERATE(0, 1);
  const double level = GENERATE(0.0, 0.1, -3.3e-3);
  CAPTURE(n, dead, level);
  const Eigen::MatrixXd live = dynweight::test::correlated_returns(50, n, 7 + n, 0.0005);
  Eigen::MatrixXd x(50, n + 1);
  x << live.leftCols(dead), Eigen::VectorXd::Constant(50, level), live.rightCols(n - dead);

  ConstantCorrelation<double> cc;
  Eigen::MatrixXd out(n + 1, n + 1);
  const ShrinkageResult result = cc.compute(x, out);
  ConstantCorrelation<double> reference;
  Eigen::MatrixXd expected(n, n);
  const ShrinkageResult without = reference.compute(live, expected);

  CHECK(result.status.code == StatusCode::numerical_issue);
  CHECK(std::string(result.status.detail).find("zero variance") != std::string::npos);
  REQUIRE(out.allFinite());
  CHECK(out.row(dead).isZero(0.0));
  CHECK(out.col(dead).isZero(0.0));
  // The other assets get exactly the estimate they would get without the dead one (n = 2: the
  // live pair alone has γ̂ = 0 by the rounding threshold, δ = 0, on both sides).
  Eigen::MatrixXd rest(n, n);
  Index r = 0;
  for (Index i = 0; i <= n; ++i) {
    if (i == dead)
      continue;
    Index c = 0;
    for (Index j = 0; j <= n; ++j) {
      if (j != dead)
        rest(r, c++) = out(i, j);
    }
    ++r;
  }
  CHECK(near(rest, expected, 1e-14));
  CHECK(std::abs(result.intensity - without.intensity) <= 1e-14);
  CHECK(std::abs(result.target_parameter - without.target_parameter) <= 1e-14);
  // Positive semi-definite: a pivoted LDLᵀ has D ≥ 0 (up to rounding).
  CHECK(out.ldlt().vectorD().minCoeff() >= -1e-16);
}

TEST_CASE("ConstantCorrelation target: a diagonal rounded below zero is zero variance, not NaN",
          "[estimators][constant_correlation][degenerate]") {
  // A rolling covariance's diagonal can round below 0 for an asset whose variance is below the
  // rounding its volatile past left (RollingShrinkage hands its covariance to this target).
  const Index n = 4;
  Eigen::MatrixXd zero =
      dynweight::test::two_pass_covariance(dynweight::test::correlated_returns(50, n, 3));
  zero.row(2).setZero();
  zero.col(2).setZero();
  Eigen::MatrixXd rounded = zero;
  rounded(2, 2) = -1e-20;
  dynweight::detail::ConstantCorrelationTarget<double> target;
  dynweight::detail::ConstantCorrelationTarget<double> exact;
  target.compute(rounded);
  exact.compute(zero);
  CHECK(target.sd()(2) == 0.0);
  CHECK(target.inv_sd()(2) == 0.0);
  CHECK(target.mean_correlation() == exact.mean_correlation());
  Eigen::MatrixXd out(n, n);
  target.shrink(rounded, 0.5, out);
  REQUIRE(out.allFinite());
  CHECK(out.row(2).tail(n - 3).isZero(0.0));
  CHECK(out.col(2).head(2).isZero(0.0));
}

TEST_CASE("ConstantCorrelation: one asset, two assets, two observations",
          "[estimators][constant_correlation][degenerate]") {
  Eigen::MatrixXd out;
  SECTION("N = 1: no pair, r-bar is NaN, the result is S") {
    const Eigen::MatrixXd x = dynweight::test::correlated_returns(30, 1, 3);
    ConstantCorrelation<double> cc;
    out.resize(1, 1);
    const ShrinkageResult r = cc.compute(x, out);
    CHECK(r.status.ok());
    CHECK(r.intensity == 0.0);
    CHECK(std::isnan(r.target_parameter));
    CHECK(near(out, dynweight::test::two_pass_covariance(x, 0), 1e-14));
  }
  SECTION("N = 2: the target equals S (r-bar = r_01), gamma-hat is rounding, delta = 0") {
    const std::uint64_t seed = GENERATE(1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u);
    const Eigen::MatrixXd x = dynweight::test::correlated_returns(60, 2, seed);
    ConstantCorrelation<double> cc;
    out.resize(2, 2);
    const ShrinkageResult r = cc.compute(x, out);
    CHECK(r.status.ok());
    CHECK(r.intensity == 0.0);
    CHECK(out == Eigen::MatrixXd(cc.sample_covariance()));
  }
  SECTION("T = 2: S is rank one, pi-hat = rho-hat exactly, delta is 0 up to rounding") {
    const Index n = GENERATE(3, 6);
    Eigen::MatrixXd x = dynweight::test::correlated_returns(2, n, 11);
    x(0, 1) = -x(0, 1);  // correlations ±1, not all +1
    ConstantCorrelation<double> cc;
    out.resize(n, n);
    const ShrinkageResult r = cc.compute(x, out);
    CHECK(r.intensity <= 1e-12);
    CHECK(out.allFinite());
  }
}

TEST_CASE("ConstantCorrelation: perfectly correlated assets make the target singular",
          "[estimators][constant_correlation][degenerate]") {
  const Eigen::VectorXd base = dynweight::test::correlated_returns(40, 1, 5).col(0);
  Eigen::MatrixXd x(40, 3);
  x << base, 2.0 * base, 0.5 * base;
  ConstantCorrelation<double> cc;
  Eigen::MatrixXd out(3, 3);
  const ShrinkageResult r = cc.compute(x, out);
  CHECK(out.allFinite());
  CHECK(r.intensity == 0.0);  // F = S (all r_ij = 1): γ̂ is rounding
  CHECK((r.status.code == StatusCode::numerical_issue) == !(r.target_parameter < 1.0));
}
