#include "dynweight/policies/risk_parity.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "allocation_counter.hpp"
#include "dynweight/estimators/rolling_shrinkage.hpp"
#include "market_data.hpp"
#include "near.hpp"
#include "reference_csv.hpp"

using Catch::Matchers::Contains;
using dynweight::Estimates;
using dynweight::Index;
using dynweight::RiskParity;
using dynweight::StatusCode;
using dynweight::SymmetricStorage;
using dynweight::test::near;

namespace {

// The sample covariance (ddof = 1) of 250 correlated returns: a realistic, full-rank Σ.
Eigen::MatrixXd sample_covariance(Index n, std::uint64_t seed) {
  return dynweight::test::two_pass_covariance(dynweight::test::correlated_returns(250, n, seed));
}

// `sample_covariance` with asset `stale` constant (its row and column 0).
Eigen::MatrixXd stale_covariance(Index n, std::uint64_t seed, Index stale) {
  Eigen::MatrixXd sigma = sample_covariance(n, seed);
  sigma.row(stale).setZero();
  sigma.col(stale).setZero();
  return sigma;
}

// max_i |RC_i/ΣRC − b_i| in long double, from the weights alone (the independent check).
double budget_residual(const Eigen::MatrixXd& sigma, const Eigen::VectorXd& w,
                       const Eigen::VectorXd& b) {
  const Index n = w.size();
  std::vector<long double> rc(std::size_t(n), 0.0L);
  long double total = 0;
  for (Index i = 0; i < n; ++i) {
    long double row = 0;
    for (Index j = 0; j < n; ++j)
      row += static_cast<long double>(sigma(i, j)) * w(j);
    rc[std::size_t(i)] = w(i) * row;
    total += rc[std::size_t(i)];
  }
  long double worst = 0;
  for (Index i = 0; i < n; ++i)
    worst = std::max(worst, std::abs(rc[std::size_t(i)] / total - b(i)));
  return static_cast<double>(worst);
}

// Equal budgets, or random ones in [0.2, 1] normalised to sum to 1 (from `seed`).
Eigen::VectorXd test_budgets(Index n, bool equal, std::uint64_t seed) {
  Eigen::VectorXd b = Eigen::VectorXd::Constant(n, 1.0 / double(n));
  if (equal)
    return b;
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<double> uniform(0.2, 1.0);
  for (Index i = 0; i < n; ++i)
    b(i) = uniform(engine);
  return b / b.sum();
}

Eigen::VectorXd solve(RiskParity<double>& policy, const Eigen::MatrixXd& sigma,
                      dynweight::Status* status = nullptr,
                      SymmetricStorage storage = SymmetricStorage::full) {
  Estimates<double> estimates(sigma.rows());
  estimates.set_covariance(sigma, storage);
  Eigen::VectorXd w(sigma.rows());
  const auto result = policy.compute(estimates, w);
  if (status != nullptr)
    *status = result;
  return w;
}

// `solve`, which must succeed (its status into `status`).
Eigen::VectorXd solve_ok(RiskParity<double>& policy, const Eigen::MatrixXd& sigma,
                         dynweight::Status& status) {
  Eigen::VectorXd w = solve(policy, sigma, &status);
  REQUIRE(status.ok());
  return w;
}

// The covariance of the 250-bar window of `returns` starting at bar t (the rolling markets below).
Eigen::MatrixXd window_covariance(const Eigen::MatrixXd& returns, Index t) {
  return dynweight::test::two_pass_covariance(returns.middleRows(t, 250));
}

}  // namespace

TEST_CASE("RiskParity: a diagonal covariance gives w_i proportional to sqrt(b_i)/sigma_i",
          "[policies][risk_parity]") {
  const Eigen::VectorXd sigma = (Eigen::VectorXd(4) << 0.01, 0.02, 0.005, 0.03).finished();
  const Eigen::VectorXd b = (Eigen::VectorXd(4) << 0.1, 0.2, 0.3, 0.4).finished();
  const Eigen::MatrixXd cov = sigma.cwiseAbs2().asDiagonal();
  RiskParity<double> policy({}, b);
  dynweight::Status status;
  const Eigen::VectorXd w = solve(policy, cov, &status);
  REQUIRE(status.ok());
  const Eigen::VectorXd expected =
      b.cwiseSqrt().cwiseQuotient(sigma) / b.cwiseSqrt().cwiseQuotient(sigma).sum();
  CHECK(near(w, expected, 1e-15));
}

// Properties on realistic covariances. Two solutions that both meet the 1e-10 budget tolerance
// can differ by about the tolerance times the conditioning of the budget equations, hence 1e-8
// (relative, max norm) wherever two solves are compared.
TEST_CASE("RiskParity: properties over sizes and seeds", "[policies][risk_parity]") {
  const Index n = GENERATE(2, 5, 20, 100);
  const std::uint64_t seed = GENERATE(1u, 2u, 3u);
  const Eigen::MatrixXd sigma = sample_covariance(n, seed);
  CAPTURE(n, seed);

  RiskParity<double> policy;
  dynweight::Status status;
  const Eigen::VectorXd w = solve(policy, sigma, &status);
  REQUIRE(status.ok());
  CHECK(status.residual <= 1e-10);
  CHECK((w.array() >= 0).all());
  CHECK(std::abs(w.sum() - 1.0) <= 1e-14);
  const Eigen::VectorXd equal = Eigen::VectorXd::Constant(n, 1.0 / double(n));
  CHECK(budget_residual(sigma, w, equal) <= 1e-10);
  // The residual reported is the one the weights have (equal budgets take it from the extreme
  // risk contributions alone): the two differ by the rounding of Σx and of the shares, ~1e-16.
  CHECK(std::abs(status.residual - budget_residual(sigma, w, equal)) <= 1e-14);

  SECTION("scaling the covariance leaves the weights unchanged") {
    RiskParity<double> other;
    const Eigen::MatrixXd scaled = 37.5 * sigma;
    CHECK(near(solve(other, scaled), w, 1e-8));
  }
  SECTION("permuting the assets permutes the weights") {
    std::vector<Index> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), Index(0));
    std::mt19937_64 engine(seed);
    std::shuffle(order.begin(), order.end(), engine);
    Eigen::MatrixXd permuted(n, n);
    for (Index i = 0; i < n; ++i) {
      for (Index j = 0; j < n; ++j)
        permuted(i, j) = sigma(order[std::size_t(i)], order[std::size_t(j)]);
    }
    RiskParity<double> other;
    const Eigen::VectorXd wp = solve(other, permuted);
    Eigen::VectorXd back(n);
    for (Index i = 0; i < n; ++i)
      back(order[std::size_t(i)]) = wp(i);
    CHECK(near(back, w, 1e-8));
  }
  SECTION("a lower-triangle covariance gives the same weights") {
    Eigen::MatrixXd lower = sigma;
    lower.triangularView<Eigen::StrictlyUpper>().setConstant(
        std::numeric_limits<double>::quiet_NaN());
    RiskParity<double> other;
    CHECK(near(solve(other, lower, nullptr, SymmetricStorage::lower), w, 1e-8));
  }
  SECTION("budgets are met, zero budgets give zero weight") {
    std::mt19937_64 engine(seed + 100);
    std::uniform_real_distribution<double> uniform(0.2, 1.0);
    Eigen::VectorXd b(n);
    for (Index i = 0; i < n; ++i)
      b(i) = uniform(engine);
    if (n > 2)
      b(1) = 0.0;
    b /= b.sum();
    RiskParity<double> budgeted({}, b);
    dynweight::Status budgeted_status;
    const Eigen::VectorXd wb = solve(budgeted, sigma, &budgeted_status);
    REQUIRE(budgeted_status.ok());
    CHECK(budget_residual(sigma, wb, b) <= 1e-10);
    CHECK(std::abs(budgeted_status.residual - budget_residual(sigma, wb, b)) <= 1e-14);
    if (n > 2)
      CHECK(wb(1) == 0.0);
  }
  SECTION("warm and cold starts agree as the covariance moves") {
    RiskParity<double> warm;
    RiskParity<double> cold({.warm_start = false});
    const Eigen::MatrixXd returns = dynweight::test::correlated_returns(300, n, seed + 7);
    for (Index t = 0; t < 5; ++t) {
      const Eigen::MatrixXd moved =
          dynweight::test::two_pass_covariance(returns.middleRows(t * 10, 250));
      dynweight::Status warm_status, cold_status;
      const Eigen::VectorXd ww = solve(warm, moved, &warm_status);
      const Eigen::VectorXd wc = solve(cold, moved, &cold_status);
      REQUIRE(warm_status.ok());
      REQUIRE(cold_status.ok());
      CHECK(near(ww, wc, 1e-8));
      if (t > 0 && n > 2)  // the warm start saves iterations once it has a previous solution
        CHECK(warm_status.iterations <= cold_status.iterations);
    }
  }
  SECTION("a warm start on a rescaled covariance (other units) is rescaled first") {
    // Risk parity is scale-free: after the start's scaling the previous x solves the rescaled
    // problem to its old residual, so at most one sweep is needed whichever way the scale went.
    RiskParity<double> warm;
    REQUIRE(near(solve(warm, sigma), w, 0.0));  // the same solve as above: the same weights
    for (const double scale : {1e6, 1e-6, 1.0}) {
      CAPTURE(scale);
      const Eigen::MatrixXd scaled = scale * sigma;
      dynweight::Status scaled_status;
      const Eigen::VectorXd ws = solve(warm, scaled, &scaled_status);
      REQUIRE(scaled_status.ok());
      CHECK(scaled_status.iterations <= 1);
      CHECK(near(ws, w, 1e-8));
    }
  }
}

TEST_CASE("RiskParity: a stale asset is excluded and the status says so",
          "[policies][risk_parity]") {
  const Index n = 6;
  const Eigen::MatrixXd sigma = stale_covariance(n, 11, 2);
  RiskParity<double> policy;
  dynweight::Status status;
  const Eigen::VectorXd w = solve(policy, sigma, &status);
  CHECK(status.code == StatusCode::numerical_issue);
  CHECK(status.residual <= 1e-10);
  CHECK(w(2) == 0.0);
  CHECK(std::abs(w.sum() - 1.0) <= 1e-14);
  // The others: the solution of the problem without asset 2.
  Eigen::MatrixXd reduced(n - 1, n - 1);
  const std::vector<Index> keep{0, 1, 3, 4, 5};
  for (Index i = 0; i < n - 1; ++i) {
    for (Index j = 0; j < n - 1; ++j)
      reduced(i, j) = sigma(keep[std::size_t(i)], keep[std::size_t(j)]);
  }
  RiskParity<double> other;
  const Eigen::VectorXd wr = solve(other, reduced);
  for (Index i = 0; i < n - 1; ++i)
    CHECK(w(keep[std::size_t(i)]) == Approx(wr(i)).epsilon(1e-8));
}

TEST_CASE("RiskParity: an indefinite covariance is a status, not a crash",
          "[policies][risk_parity]") {
  // A correlation of -1.5: Σ is indefinite and no positive w has equal risk contributions
  // (x₁ > 1.5 x₂ and x₂ > 1.5 x₁ would both be needed).
  Eigen::Matrix2d sigma;
  sigma << 1.0, -1.5, -1.5, 1.0;
  const Eigen::MatrixXd cov = 1e-4 * sigma;
  RiskParity<double> policy({.max_iterations = 200, .sweeps_before_newton = 20});
  Estimates<double> estimates(2);
  estimates.set_covariance(cov);
  Eigen::VectorXd w = Eigen::VectorXd::Constant(2, 0.5);
  dynweight::Status status;
  REQUIRE_NOTHROW(status = policy.compute(estimates, w));
  CHECK_FALSE(status.ok());
  CHECK(w.allFinite());
  CHECK(std::abs(w.sum() - 1.0) <= 1e-14);
}

TEST_CASE("RiskParity: an iterate of negative variance is never reported converged",
          "[policies][risk_parity]") {
  // Indefinite (the first three assets' block has eigenvalue 1 − 2·0.6 < 0, eigenvector
  // (1, 1, 1, 0)): the sweeps grow x₁..x₃ along that direction until xᵀΣx < 0, where the shares
  // RC_i/ΣRC change sign and their extremes swap. The residual must not read that as converged.
  Eigen::Matrix4d sigma;
  sigma << 1.0, -0.6, -0.6, 0.9,  //
      -0.6, 1.0, -0.6, 0.9,       //
      -0.6, -0.6, 1.0, 0.9,       //
      0.9, 0.9, 0.9, 1.0;
  const Eigen::Vector4d direction(1.0, 1.0, 1.0, 0.0);
  REQUIRE(direction.dot(sigma * direction) < 0);  // 3 − 6·0.6 = −0.6: a certificate
  const auto budgets = GENERATE(as<Eigen::VectorXd>{}, Eigen::Vector4d(0.25, 0.25, 0.25, 0.25),
                                Eigen::Vector4d(0.2, 0.3, 0.3, 0.2));
  RiskParity<double> policy({}, budgets);
  Estimates<double> estimates(4);
  const Eigen::MatrixXd cov = sigma;
  estimates.set_covariance(cov);
  Eigen::VectorXd w = Eigen::VectorXd::Constant(4, 9.0);
  dynweight::Status status;
  REQUIRE_NOTHROW(status = policy.compute(estimates, w));
  CHECK(status.code == StatusCode::numerical_issue);
  if (w != Eigen::VectorXd::Constant(4, 9.0)) {  // the best iterate, which must be a valid one
    CHECK(w.allFinite());
    CHECK(w.minCoeff() > 0);
    CHECK(std::abs(w.sum() - 1.0) <= 1e-14);
    CHECK(w.dot(sigma * w) > 0);
    REQUIRE(policy.portfolio_variance().has_value());
    CHECK(*policy.portfolio_variance() > 0);
    CHECK(std::isfinite(status.residual));
  }
}

TEST_CASE("RiskParity: a singular covariance with no solution is never reported converged",
          "[policies][risk_parity]") {
  // Σ = v vᵀ, as the covariance of two returns (a window of 2) gives: RC_i / ΣRC = w_i v_i / vᵀw,
  // and no w > 0 gives every share the sign of its budget when v has entries of both signs. The
  // sweeps drive vᵀw to 0, where rounding leaves ΣRC ~ −1e-21: a residual taken on that total once
  // read as converged (a negative residual, success, shares of ±1e7).
  Eigen::VectorXd v(6);
  v << 3.8, 1.8, -0.96, 4.5, 2.3, 2.3;
  const Eigen::MatrixXd cov = 1e-4 * v * v.transpose();
  // Equal budgets (none given: the fast path of the residual), the same given, and unequal.
  const auto budgets =
      GENERATE(as<Eigen::VectorXd>{}, Eigen::VectorXd(), Eigen::VectorXd::Constant(6, 1.0 / 6),
               (Eigen::VectorXd(6) << 0.1, 0.2, 0.2, 0.2, 0.2, 0.1).finished());
  RiskParity<double> policy({}, budgets);
  Estimates<double> estimates(6);
  estimates.set_covariance(cov);
  const Eigen::VectorXd before = Eigen::VectorXd::Constant(6, 9.0);
  Eigen::VectorXd w = before;
  dynweight::Status status;
  REQUIRE_NOTHROW(status = policy.compute(estimates, w));
  CAPTURE(status.code, status.residual);
  CHECK_FALSE(status.ok());
  CHECK_FALSE(status.residual < 0);
  if (w != before) {  // the best iterate: valid weights, of positive variance
    CHECK(w.minCoeff() > 0);
    CHECK(std::abs(w.sum() - 1.0) <= 1e-14);
    CHECK(w.dot(cov * w) > 0);
    CHECK(status.residual > 0.1);
  }
}

TEST_CASE("RiskParity: no asset left to solve for is a status, the weights unchanged",
          "[policies][risk_parity]") {
  SECTION("one asset, constant") {
    RiskParity<double> policy;
    Estimates<double> estimates(1);
    const Eigen::MatrixXd zero = Eigen::MatrixXd::Zero(1, 1);
    estimates.set_covariance(zero);
    Eigen::VectorXd w = Eigen::VectorXd::Constant(1, 9.0);
    const auto status = policy.compute(estimates, w);
    CHECK(status.code == StatusCode::numerical_issue);
    CHECK_THAT(status.detail, Contains("no asset"));
    CHECK(w(0) == 9.0);
    CHECK_FALSE(policy.portfolio_variance().has_value());
  }
  SECTION("every budgeted asset stale") {
    RiskParity<double> policy({}, Eigen::Vector3d(0.5, 0.5, 0.0));
    Eigen::MatrixXd sigma = Eigen::MatrixXd::Zero(3, 3);
    sigma(2, 2) = 1e-4;
    Estimates<double> estimates(3);
    estimates.set_covariance(sigma);
    Eigen::VectorXd w = Eigen::VectorXd::Constant(3, 9.0);
    const auto status = policy.compute(estimates, w);
    CHECK(status.code == StatusCode::numerical_issue);
    CHECK(w == Eigen::VectorXd::Constant(3, 9.0));
    // A later call with a usable covariance solves as usual.
    sigma = sample_covariance(3, 4);
    estimates.set_covariance(sigma);
    CHECK(policy.compute(estimates, w).ok());
    CHECK(w(2) == 0.0);
  }
}

TEST_CASE("RiskParity: with an asset excluded, the next call on the same assets starts warm",
          "[policies][risk_parity]") {
  const Index n = 8;
  const Eigen::MatrixXd sigma = stale_covariance(n, 31, 5);
  RiskParity<double> policy;
  dynweight::Status first, second;
  const Eigen::VectorXd w1 = solve(policy, sigma, &first);
  const Eigen::VectorXd w2 = solve(policy, sigma, &second);
  REQUIRE(first.code == StatusCode::numerical_issue);
  REQUIRE(first.iterations > 0);
  CHECK(second.code == StatusCode::numerical_issue);
  CHECK(second.iterations == 0);  // from the last solution: already within the tolerance
  CHECK(w2(5) == 0.0);
  CHECK((w2 - w1).cwiseAbs().maxCoeff() <= 1e-9);
}

TEST_CASE("RiskParity rejects bad input and stays unchanged", "[policies][risk_parity][errors]") {
  const Index n = 4;
  const dynweight::AssetNames names{"A", "B", "C", "D"};
  REQUIRE_THROWS_WITH(RiskParity<double>({}, Eigen::Vector4d(0.5, 0.5, 0.5, -0.5)),
                      Contains("budgets[3]") && Contains("-0.5"));
  REQUIRE_THROWS_WITH(RiskParity<double>({}, Eigen::Vector4d(0.3, 0.3, 0.3, 0.3)),
                      Contains("sum of budgets = 1.2"));
  REQUIRE_THROWS_WITH(RiskParity<double>({.tolerance = 0.0}), Contains("tolerance = 0"));

  const Eigen::MatrixXd good = sample_covariance(n, 5);
  const Eigen::MatrixXd next = sample_covariance(n, 6);
  RiskParity<double> policy;
  RiskParity<double> twin;
  solve(policy, good);
  solve(twin, good);
  const auto variance = policy.portfolio_variance();
  REQUIRE(variance.has_value());

  Eigen::MatrixXd bad = next;
  bad(2, 2) = std::numeric_limits<double>::quiet_NaN();
  Estimates<double> estimates(n, &names);
  REQUIRE_THROWS_WITH(estimates.set_covariance(bad),
                      Contains("covariance(2, 2) (row 2, asset 2 ('C'))") && Contains("nan"));
  bad(2, 2) = -1e-4;
  estimates.set_covariance(bad);
  Eigen::VectorXd w = Eigen::VectorXd::Constant(n, 9.0);
  REQUIRE_THROWS_WITH(policy.compute(estimates, w),
                      Contains("covariance diagonal[2] (asset 2 ('C'))") && Contains("-1e-04"));
  CHECK(w == Eigen::VectorXd::Constant(n, 9.0));
  Eigen::VectorXd short_weights(3);
  estimates.set_covariance(next);
  REQUIRE_THROWS_WITH(policy.compute(estimates, short_weights), Contains("weights has 3"));
  RiskParity<double> wrong_budgets({}, Eigen::Vector3d(0.2, 0.3, 0.5));
  REQUIRE_THROWS_WITH(wrong_budgets.compute(estimates, w), Contains("budgets has 3 entries"));
  // Off-diagonal trouble is caught when the matrix is given to the estimates.
  Eigen::MatrixXd asymmetric = next;
  asymmetric(3, 1) += 1e-6;
  REQUIRE_THROWS_WITH(estimates.set_covariance(asymmetric),
                      Contains("covariance is not symmetric: (3, 1)") && Contains("asset 3 ('D')"));
  Eigen::MatrixXd non_finite = next;
  non_finite(0, 3) = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_WITH(estimates.set_covariance(non_finite),
                      Contains("covariance(0, 3) (row 0, asset 3 ('D'))") && Contains("inf"));
  non_finite(0, 3) = next(0, 3);
  non_finite(3, 0) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_WITH(estimates.set_covariance(non_finite, SymmetricStorage::lower),
                      Contains("covariance(3, 0)") && Contains("nan"));
  non_finite(3, 0) = next(3, 0);
  non_finite(0, 3) = std::numeric_limits<double>::quiet_NaN();  // upper: never read
  REQUIRE_NOTHROW(estimates.set_covariance(non_finite, SymmetricStorage::lower));
  estimates.set_covariance(next);
  Estimates<double> missing(n);
  REQUIRE_THROWS_WITH(policy.compute(missing, w),
                      Contains("RiskParity needs the covariance estimate"));
  CHECK(policy.portfolio_variance() == variance);  // the rejected calls changed nothing

  // After the rejections the policy goes on exactly like its twin.
  dynweight::Status a, b;
  const Eigen::VectorXd wa = solve(policy, next, &a);
  const Eigen::VectorXd wb = solve(twin, next, &b);
  CHECK(a.iterations == b.iterations);
  CHECK(dynweight::test::identical(wa, wb));
}

TEST_CASE("RiskParity: compute does not allocate after the first call",
          "[policies][risk_parity][allocation]") {
  const Index n = 30;
  const Eigen::MatrixXd first = sample_covariance(n, 21);
  const Eigen::MatrixXd second = sample_covariance(n, 22);
  const Eigen::MatrixXd one_factor =
      dynweight::test::two_pass_covariance(dynweight::test::one_factor_returns(250, n, 23));
  Eigen::MatrixXd stale = second;
  stale.row(4).setZero();
  stale.col(4).setZero();
  const auto storage = GENERATE(SymmetricStorage::full, SymmetricStorage::lower);
  RiskParity<double> policy({.sweeps_before_newton = 3});  // the Newton path too
  Estimates<double> estimates(n);
  Eigen::VectorXd w(n);
  estimates.set_covariance(first, storage);
  policy.compute(estimates, w);  // sizes the workspace
  estimates.set_covariance(stale, storage);
  policy.compute(estimates, w);  // and the excluded-asset workspace
  dynweight::test::NoAllocationScope scope;
  estimates.set_covariance(second, storage);
  const auto warm = policy.compute(estimates, w);
  policy.reset_warm_start();
  const auto cold = policy.compute(estimates, w);
  estimates.set_covariance(stale, storage);
  const auto excluded = policy.compute(estimates, w);
  estimates.set_covariance(one_factor, storage);  // the fixed-point phase's own path
  policy.reset_warm_start();
  const auto fixed_point = policy.compute(estimates, w);
  CHECK(scope.allocations() == 0);
  CHECK(warm.ok());
  CHECK(cold.ok());
  CHECK(excluded.code == StatusCode::numerical_issue);
  CHECK(fixed_point.ok());
}

TEST_CASE("RiskParity: any number of excluded assets needs no allocation after the first call",
          "[policies][risk_parity][allocation]") {
  // The active assets' covariance is gathered into a corner of the N×N workspace: as assets go
  // stale and come back (0, 1, 3, 1, 0 excluded), no call allocates, and the weights of the
  // others are those of a fresh policy on their own covariance.
  const Index n = 24;
  const Eigen::MatrixXd base = sample_covariance(n, 31);
  const auto storage = GENERATE(SymmetricStorage::full, SymmetricStorage::lower);
  const Index sweeps = GENERATE(Index(0), Index(60));  // Newton steps on the gathered Σ, or not
  const auto with_stale = [&](std::vector<Index> stale) {
    Eigen::MatrixXd s = base;
    for (const Index i : stale) {
      s.row(i).setZero();
      s.col(i).setZero();
    }
    return std::pair{s, stale};
  };
  const std::vector<std::pair<Eigen::MatrixXd, std::vector<Index>>> bars{
      with_stale({}), with_stale({5}), with_stale({2, 9, 17}), with_stale({9}), with_stale({})};
  RiskParity<double> policy({.sweeps_before_newton = sweeps});
  Estimates<double> estimates(n);
  Eigen::VectorXd w(n);
  estimates.set_covariance(base, storage);
  REQUIRE(policy.compute(estimates, w).ok());  // sizes the workspace, with no asset excluded
  for (const auto& [covariance, stale] : bars) {
    CAPTURE(stale.size());
    Eigen::MatrixXd given = covariance;
    if (storage == SymmetricStorage::lower)
      given.triangularView<Eigen::StrictlyUpper>().setConstant(
          std::numeric_limits<double>::quiet_NaN());
    estimates.set_covariance(given, storage);
    dynweight::Status status;
    {
      dynweight::test::NoAllocationScope scope;
      status = policy.compute(estimates, w);
      CHECK(scope.allocations() == 0);
    }
    CHECK(status.code == (stale.empty() ? StatusCode::success : StatusCode::numerical_issue));
    // The active assets alone, by a fresh policy on their own covariance.
    std::vector<Index> active;
    for (Index i = 0; i < n; ++i)
      if (std::find(stale.begin(), stale.end(), i) == stale.end())
        active.push_back(i);
    const Index m = static_cast<Index>(active.size());
    Eigen::MatrixXd sub(m, m);
    for (Index r = 0; r < m; ++r)
      for (Index c = 0; c < m; ++c)
        sub(r, c) = covariance(active[r], active[c]);
    RiskParity<double> fresh;
    dynweight::Status fresh_status;
    const Eigen::VectorXd expected = solve_ok(fresh, sub, fresh_status);
    for (Index r = 0; r < m; ++r)
      CHECK(w(active[r]) == Approx(expected(r)).epsilon(1e-8));
    for (const Index i : stale)
      CHECK(w(i) == 0.0);
    CHECK(budget_residual(sub, expected, Eigen::VectorXd::Constant(m, 1.0 / double(m))) <= 1e-10);
  }
}

TEST_CASE("RiskParity: Newton steps do not allocate where Eigen's factorisation would",
          "[policies][risk_parity][allocation]") {
  // From ~400 assets Eigen's blocked LLT packs its panels into heap buffers on every call (past
  // its 128 KB stack limit); the solver's own factorisation must not.
  const Index n = 600;
  const auto covariance = [n](std::uint64_t seed) {
    return dynweight::test::two_pass_covariance(
        dynweight::test::correlated_returns(2 * n, n, seed));
  };
  const Eigen::MatrixXd first = covariance(41);
  const Eigen::MatrixXd second = covariance(42);
  RiskParity<double> policy({.sweeps_before_newton = 0});  // Newton steps only
  Estimates<double> estimates(n);
  Eigen::VectorXd w(n);
  estimates.set_covariance(first);
  REQUIRE(policy.compute(estimates, w).ok());  // sizes the workspace
  policy.reset_warm_start();
  dynweight::Status status;
  {
    dynweight::test::NoAllocationScope scope;
    estimates.set_covariance(second);
    status = policy.compute(estimates, w);
    CHECK(scope.allocations() == 0);
  }
  CHECK(status.ok());
  CHECK(status.iterations > 0);
  CHECK(budget_residual(second, w, Eigen::VectorXd::Constant(n, 1.0 / double(n))) <= 1e-10);
}

TEST_CASE("RiskParity: the fixed-point phase on one-factor markets", "[policies][risk_parity]") {
  // Positive correlations and one dominant factor: the phase converges on its own, in fewer
  // iterations than the sweeps need, to the same weights.
  const Index n = GENERATE(Index(10), Index(60), Index(250));
  const bool equal_budgets = GENERATE(true, false);
  CAPTURE(n, equal_budgets);
  const Eigen::MatrixXd returns =
      dynweight::test::one_factor_returns(270, n, 11 + std::uint64_t(n));
  const Eigen::VectorXd b = test_budgets(n, equal_budgets, 5);
  RiskParity<double> fixed_point({}, b);
  RiskParity<double> sweeps({.fixed_point = false}, b);
  RiskParity<double> cold({.warm_start = false}, b);
  Index fixed_point_iterations = 0;
  Index sweep_iterations = 0;
  for (Index t = 0; t < 20; ++t) {  // a bar at a time
    const Eigen::MatrixXd sigma = window_covariance(returns, t);
    dynweight::Status a, c, d;
    const Eigen::VectorXd wa = solve_ok(fixed_point, sigma, a);
    const Eigen::VectorXd wc = solve_ok(sweeps, sigma, c);
    const Eigen::VectorXd wd = solve_ok(cold, sigma, d);
    CHECK(budget_residual(sigma, wa, b) <= 1e-10);
    CHECK(budget_residual(sigma, wd, b) <= 1e-10);
    CHECK((wa.array() > 0).all());
    CHECK(std::abs(wa.sum() - 1.0) <= 1e-14);
    // Shares within 1e-10 of their budgets pin each weight to ~1e-10 / b_i relative.
    const double agreement = 4e-10 / b.minCoeff();
    CHECK(near(wa, wc, agreement));
    CHECK(near(wa, wd, agreement));
    CHECK(fixed_point.fixed_point_iterations() == a.iterations);  // the phase alone solved it
    CHECK(cold.fixed_point_iterations() == d.iterations);
    CHECK(sweeps.fixed_point_iterations() == 0);
    fixed_point_iterations += a.iterations;
    sweep_iterations += c.iterations;
  }
  CHECK(fixed_point_iterations < sweep_iterations);
}

TEST_CASE("RiskParity: Newton steps converge quadratically down to the tightest tolerances",
          "[policies][risk_parity]") {
  // Newton alone from the cold start. Near the solution the decrease a step promises falls below
  // the rounding of f, where an Armijo test on f decides by noise (it took 9–21 halved steps on
  // some of these cases without FMA and up to 46 with it); judged by the residual there, every
  // solve takes at most 6 steps.
  const Index n = GENERATE(Index(5), Index(30), Index(100));
  const std::uint64_t seed = GENERATE(1u, 2u, 3u);
  const double tolerance = GENERATE(1e-10, 1e-13, 1e-15);
  CAPTURE(n, seed, tolerance);
  const Eigen::MatrixXd sigma =
      dynweight::test::two_pass_covariance(dynweight::test::one_factor_returns(250, n, seed));
  RiskParity<double> newton(
      {.tolerance = tolerance, .sweeps_before_newton = 0, .fixed_point = false});
  dynweight::Status status;
  const Eigen::VectorXd w = solve(newton, sigma, &status);
  REQUIRE(status.ok());
  CHECK(status.iterations <= 8);
  CHECK(budget_residual(sigma, w, Eigen::VectorXd::Constant(n, 1.0 / double(n))) <=
        std::max(tolerance, 1e-15));
}

TEST_CASE("RiskParity: a residual just above the tolerance ends by combining two iterates",
          "[policies][risk_parity]") {
  // Warm solves on a rolling one-factor market: some bars end with the residual within 4× the
  // tolerance after an iteration, and the combination of two iterates (no product) finishes them.
  // Its Σx is a combination of products, so the residual it reports must be the weights' own, and
  // the weights those of a cold solve.
  const Index n = 250;
  const bool equal_budgets = GENERATE(true, false);
  CAPTURE(equal_budgets);
  const Eigen::MatrixXd returns = dynweight::test::one_factor_returns(300, n, 20261126);
  const Eigen::VectorXd b = test_budgets(n, equal_budgets, 9);
  RiskParity<double> warm({}, b);
  RiskParity<double> cold({.warm_start = false}, b);
  Index combined = 0;
  for (Index t = 0; t < 50; ++t) {
    const Eigen::MatrixXd sigma = window_covariance(returns, t);
    dynweight::Status a, c;
    const Eigen::VectorXd wa = solve_ok(warm, sigma, a);
    const Eigen::VectorXd wc = solve_ok(cold, sigma, c);
    if (!warm.combined_iterates())
      continue;
    ++combined;
    CAPTURE(t, a.residual);
    const double exact = budget_residual(sigma, wa, b);
    CHECK(exact <= 1e-10);
    CHECK(std::abs(a.residual - exact) <= 1e-14);
    CHECK(warm.fixed_point_iterations() == a.iterations);
    CHECK((wa.array() > 0).all());
    CHECK(std::abs(wa.sum() - 1.0) <= 1e-14);
    CHECK(near(wa, wc, 4e-10 / b.minCoeff()));
  }
  CHECK(combined >= 2);  // 3 of the 50 bars in either budget case, on this market
}

TEST_CASE("RiskParity: where the fixed-point phase stalls, it is skipped on the next calls",
          "[policies][risk_parity]") {
  // Random correlations of both signs: the map x ← b ⊘ Σx diverges or crawls, the phase stalls
  // and the next 16 calls go straight to the sweeps, the 32 after a second stall: over 60 bars,
  // probes at bars 0, 17 and 50.
  const Index n = GENERATE(Index(20), Index(100));
  CAPTURE(n);
  const Eigen::MatrixXd returns = dynweight::test::correlated_returns(310, n, 31);
  RiskParity<double> with_phase;
  RiskParity<double> sweeps({.fixed_point = false});
  for (Index t = 0; t < 60; ++t) {
    const Eigen::MatrixXd sigma = window_covariance(returns, t);
    dynweight::Status a, c;
    const Eigen::VectorXd wa = solve_ok(with_phase, sigma, a);
    const Eigen::VectorXd wc = solve_ok(sweeps, sigma, c);
    CHECK(budget_residual(sigma, wa, Eigen::VectorXd::Constant(n, 1.0 / double(n))) <= 1e-10);
    CHECK(near(wa, wc, 4e-10 * double(n)));
    CAPTURE(t);
    // The probes enter the phase; at n = 20 they iterate before they stall (at n = 100, bar 0's
    // Σx has an entry <= 0 at once, before any product).
    const bool probe = t == 0 || t == 17 || t == 50;
    CHECK(with_phase.fixed_point_attempted() == probe);
    CHECK_FALSE(sweeps.fixed_point_attempted());
    if (!probe)
      CHECK(with_phase.fixed_point_iterations() == 0);
    else if (n == 20)
      CHECK(with_phase.fixed_point_iterations() > 0);
  }
}

TEST_CASE("RiskParity in float", "[policies][risk_parity]") {
  const Eigen::MatrixXd sigma = sample_covariance(10, 31);
  const Eigen::MatrixXf sigma_f = sigma.cast<float>();
  RiskParity<float> policy({.tolerance = 1e-5});
  Estimates<float> estimates(10);
  estimates.set_covariance(sigma_f);
  Eigen::VectorXf w(10);
  const auto status = policy.compute(estimates, w);
  REQUIRE(status.ok());
  RiskParity<double> reference;
  const Eigen::VectorXd wd = solve(reference, sigma);
  CHECK(near(w.cast<double>(), wd, 1e-4));
}

TEST_CASE("RiskParity in float with its defaults: converges, and takes budgets normalised in float",
          "[policies][risk_parity]") {
  // The default tolerance was 1e-10 whatever the Scalar: below what float's shares resolve, so
  // every float solve ran to max_iterations (1000, ~940 of them O(N³) Newton steps).
  const Index n = GENERATE(3, 5, 20, 150);
  const std::uint64_t seed = GENERATE(1u, 2u, 3u);
  const bool equal = GENERATE(true, false);
  CAPTURE(n, seed, equal);
  const Eigen::MatrixXd sigma = sample_covariance(n, seed);
  const Eigen::MatrixXf sigma_f = sigma.cast<float>();
  // Budgets normalised in float, b / Σb: their sum misses 1 by up to ~N·ε of float, which the
  // old 1e-12 check rejected.
  Eigen::VectorXf budgets;
  if (!equal) {
    std::mt19937_64 generator(seed);
    std::uniform_real_distribution<float> draw(0.2f, 1.0f);
    budgets.resize(n);
    for (Index i = 0; i < n; ++i)
      budgets(i) = draw(generator);
    budgets /= budgets.sum();
  }
  std::optional<RiskParity<float>> policy;
  REQUIRE_NOTHROW(policy.emplace(dynweight::RiskParityOptions{}, budgets));
  Estimates<float> estimates(n);
  estimates.set_covariance(sigma_f);
  Eigen::VectorXf w(n);
  const auto status = policy->compute(estimates, w);
  CAPTURE(status.iterations, status.residual);
  REQUIRE(status.ok());
  // Measured at most 11 iterations over these cases, and 95 over the harsher sweep behind
  // `default_tolerance`: 100 bounds both, far below the cap of 1000 that every solve ran to.
  CHECK(status.iterations <= 100);
  // The weights' own residual, in long double from the float weights on the float covariance:
  // within the default 4 ε plus the rounding of the weights to float (a few ε of each share).
  const double tolerance = 4 * double(std::numeric_limits<float>::epsilon());
  const Eigen::VectorXd b = equal ? Eigen::VectorXd(Eigen::VectorXd::Constant(n, 1.0 / double(n)))
                                  : Eigen::VectorXd(budgets.cast<double>());
  CHECK(budget_residual(sigma_f.cast<double>(), w.cast<double>(), b) <= 2 * tolerance);
  // And near the double solution, to the float tolerance times the conditioning of the budget
  // equations (well below 1e3 on these covariances).
  RiskParity<double> reference({}, equal ? Eigen::VectorXd() : b / b.sum());
  CHECK(near(w.cast<double>(), solve(reference, sigma), 1e3 * tolerance));
}

TEST_CASE("RiskParity: the sum of budgets is checked to max(1e-12, N eps of Scalar)",
          "[policies][risk_parity][errors]") {
  // Float: 7 budgets off by 1e-5 are rejected (7 ε = 8.3e-7), naming the slack.
  Eigen::VectorXf off = Eigen::VectorXf::Constant(7, 1.0f / 7.0f);
  off(0) += 1e-5f;
  REQUIRE_THROWS_WITH(RiskParity<float>({}, off),
                      Contains("sum of budgets = 1.0000") && Contains("within 8.34465"));
  // Double: 1e-12 as before (N ε is below it up to N = 4503).
  Eigen::VectorXd close = Eigen::VectorXd::Constant(4, 0.25);
  close(0) += 5e-13;
  REQUIRE_NOTHROW(RiskParity<double>({}, close));
  close(0) += 1e-12;
  REQUIRE_THROWS_WITH(RiskParity<double>({}, close),
                      Contains("sum of budgets") && Contains("within 1e-12"));
}

TEST_CASE("RiskParity: the default tolerance follows the Scalar", "[policies][risk_parity]") {
  // Double keeps 1e-10 exactly; float takes 4 ε; an explicit tolerance is kept as given.
  STATIC_REQUIRE(RiskParity<double>::default_tolerance() == 1e-10);
  STATIC_REQUIRE(RiskParity<float>::default_tolerance() ==
                 4 * double(std::numeric_limits<float>::epsilon()));
  CHECK(RiskParity<double>().tolerance() == 1e-10);
  CHECK(RiskParity<float>().tolerance() == RiskParity<float>::default_tolerance());
  CHECK(RiskParity<float>({.tolerance = 1e-5}).tolerance() == 1e-5);
  CHECK(RiskParity<double>({.tolerance = 1e-13}).tolerance() == 1e-13);
}

namespace {

Eigen::VectorXd read_column(const std::string& relative) {
  const auto rows =
      dynweight::test::read_csv_rows(dynweight::test::reference_path(relative), nullptr);
  Eigen::VectorXd values(static_cast<Index>(rows.size()));
  for (const auto& row : rows)
    values(std::stol(row.at(0))) = dynweight::test::parse_number(row.at(1));
  return values;
}

}  // namespace

// SciPy reference (tests/reference/make_risk_parity_reference.py: Spinu's convex form by
// trust-exact plus Newton polishing, residuals <= 1e-13). Here the solver runs to 1e-12. The
// budgets are the defining condition and are checked independently (long double) to 1e-12. Two
// solutions that both meet their budgets to ε differ by up to about ε times the conditioning of
// the budget equations, bounded here by cond(Σ) from cases.csv: weights agree to 1e-12 · cond(Σ)
// relative (5e-10 for n100, 2e-4 for the ill-conditioned case, whose budgets are the real test).
TEST_CASE("RiskParity matches the SciPy reference", "[policies][risk_parity][reference]") {
  const auto cases = dynweight::test::read_csv_rows(
      dynweight::test::reference_path("risk_parity/cases.csv"), nullptr);
  REQUIRE(cases.size() == 7);
  for (const auto& row : cases) {
    const std::string name = row.at(0);
    const double condition = dynweight::test::parse_number(row.at(2));
    CAPTURE(name, condition);
    const Eigen::MatrixXd sigma =
        dynweight::test::read_square_matrix("risk_parity/" + name + "_covariance.csv");
    const Eigen::VectorXd budgets = read_column("risk_parity/" + name + "_budgets.csv");
    const Eigen::VectorXd expected = read_column("risk_parity/" + name + "_weights.csv");
    RiskParity<double> policy({.tolerance = 1e-12}, budgets);
    dynweight::Status status;
    const Eigen::VectorXd w = solve(policy, sigma, &status);
    CAPTURE(status.iterations, status.residual);
    REQUIRE(status.ok());
    CHECK(budget_residual(sigma, w, budgets) <= 1e-12);
    for (Index i = 0; i < budgets.size(); ++i) {
      if (budgets(i) == 0)
        CHECK(w(i) == 0.0);
    }
    CHECK(near(w, expected, 1e-12 * condition));
  }
}

TEST_CASE("RiskParity carries Σx across bars through the covariance's lineage",
          "[policies][risk_parity][lineage]") {
  const Index n = GENERATE(5, 40);
  const Index window = 60;
  const auto method = GENERATE(dynweight::RollingShrinkageMethod::ledoit_wolf,
                               dynweight::RollingShrinkageMethod::oas);
  const Index bars = window + 300;
  const Eigen::MatrixXd observations =
      dynweight::test::correlated_returns(bars, n, 4242 + std::uint64_t(n)).transpose();
  dynweight::RollingShrinkage<double> shrinkage(n, {.window = window}, method);
  RiskParity<double> carried, pulled, misled;
  const Eigen::VectorXd budgets = Eigen::VectorXd::Constant(n, 1.0 / double(n));
  Eigen::MatrixXd shrunk(n, n);
  Eigen::VectorXd w_carried(n), w_pulled(n), w_misled(n);
  Index solves = 0, carries = 0;
  for (Index t = 0; t < bars; ++t) {
    shrinkage.update(observations.col(t));
    if (!shrinkage.compute(shrunk).status.ok())
      continue;
    CAPTURE(n, t);
    Estimates<double> labelled(n), plain(n), mislabelled(n);
    labelled.set_covariance(shrunk).set_covariance_lineage(shrinkage.output_id(),
                                                           shrinkage.output_step());
    plain.set_covariance(shrunk);
    // A wrong step (its ridge off by 1e-3 μ): the row check must catch it and pull instead.
    auto wrong = shrinkage.output_step();
    if (wrong)
      wrong->ridge += 1e-3 * shrunk.diagonal().mean();
    mislabelled.set_covariance(shrunk).set_covariance_lineage(shrinkage.output_id(), wrong);
    REQUIRE(carried.compute(labelled, w_carried).ok());
    REQUIRE(pulled.compute(plain, w_pulled).ok());
    REQUIRE(misled.compute(mislabelled, w_misled).ok());
    REQUIRE_FALSE(pulled.carried_product());
    REQUIRE_FALSE(misled.carried_product());
    ++solves;
    carries += carried.carried_product() ? 1 : 0;
    // The carried solve's residual is taken on its carried Σx; on Σ̂ itself (long double, from
    // the weights alone) it meets the tolerance up to the rounding carried over at most 64 bars,
    // ~1e-15 relative to the budgets.
    REQUIRE(budget_residual(shrunk, w_carried, budgets) <= 1e-10 + 1e-13);
    REQUIRE(budget_residual(shrunk, w_misled, budgets) <= 1e-10 + 1e-13);
    // Both solve the same problem to 1e-10 in the risk contributions.
    REQUIRE(near(w_carried, w_pulled, 1e-8));
  }
  // Every bar after the first solve carries, but the refresh every 64 carried bars.
  CHECK(carries >= solves - 1 - solves / 64);
}

TEST_CASE("RiskParity: a covariance labelled unchanged that did change is caught",
          "[policies][risk_parity][lineage]") {
  const Index n = 25;
  const Eigen::MatrixXd first = sample_covariance(n, 31);
  Eigen::MatrixXd second = first;
  second(7, 7) *= 1.2;  // one variance moved: rows 7 and the checked rows differ in Σx
  Eigen::MatrixXd moved = 1.01 * first;  // every row moved
  RiskParity<double> policy;
  const Eigen::VectorXd budgets = Eigen::VectorXd::Constant(n, 1.0 / double(n));
  Eigen::VectorXd w(n);
  Estimates<double> estimates(n);
  const std::uint64_t id = dynweight::next_covariance_id();
  estimates.set_covariance(first).set_covariance_lineage(id);
  REQUIRE(policy.compute(estimates, w).ok());
  // The same id again, the same matrix: Σx is carried as is, nothing to do.
  REQUIRE(policy.compute(estimates, w).ok());
  CHECK(policy.carried_product());
  CHECK(budget_residual(first, w, budgets) <= 1e-10);
  // The same id on a matrix whose every row moved: the four checked rows disagree, so Σx is
  // taken from Σ.
  estimates.set_covariance(moved).set_covariance_lineage(id);
  REQUIRE(policy.compute(estimates, w).ok());
  CHECK_FALSE(policy.carried_product());
  CHECK(budget_residual(moved, w, budgets) <= 1e-10);
  // A label with no step from the previous id: not carried.
  estimates.set_covariance(second).set_covariance_lineage(dynweight::next_covariance_id());
  REQUIRE(policy.compute(estimates, w).ok());
  CHECK_FALSE(policy.carried_product());
  CHECK(budget_residual(second, w, budgets) <= 1e-10);
  // set_covariance clears the label.
  estimates.set_covariance(first);
  CHECK(estimates.covariance_id() == 0);
  CHECK_FALSE(estimates.covariance_step().has_value());
}
