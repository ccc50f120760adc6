#include "dynweight/overlays/volatility_target.hpp"

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>

#include "allocation_counter.hpp"
#include "market_data.hpp"
#include "near.hpp"
#include "overlay_data.hpp"

using Catch::Matchers::Contains;
using dynweight::Estimates;
using dynweight::Index;
using dynweight::StatusCode;
using dynweight::SymmetricStorage;
using dynweight::VolatilityTarget;
using dynweight::test::near;

namespace {

constexpr double kAnnualization = 252.0;

Eigen::MatrixXd sample_covariance(Index n, std::uint64_t seed) {
  return dynweight::test::two_pass_covariance(dynweight::test::correlated_returns(250, n, seed));
}

// √(wᵀΣw · A) in long double from the full matrix: first y = Σw, then wᵀy.
template <class Matrix, class Weights>
long double annual_volatility(const Matrix& sigma, const Weights& w) {
  const Index n = w.size();
  long double variance = 0;
  for (Index i = 0; i < n; ++i) {
    long double row = 0;
    for (Index j = 0; j < n; ++j)
      row += static_cast<long double>(sigma(i, j)) * static_cast<long double>(w(j));
    variance += static_cast<long double>(w(i)) * row;
  }
  return std::sqrt(variance * kAnnualization);
}

// Long/short weights (about one in four short) with Σw = 1.
Eigen::VectorXd long_short_weights(Index n, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Eigen::VectorXd w(n);
  for (Index i = 0; i < n; ++i)
    w(i) = unit(engine) < 0.25 ? -0.5 * unit(engine) : unit(engine);
  return w / w.sum();
}

Eigen::MatrixXd lower_only(const Eigen::MatrixXd& sigma) {
  Eigen::MatrixXd lower = sigma;
  lower.triangularView<Eigen::StrictlyUpper>().setConstant(
      std::numeric_limits<double>::quiet_NaN());
  return lower;
}

}  // namespace

TEST_CASE("VolatilityTarget hits the target over sizes and seeds",
          "[overlays][volatility_target]") {
  const Index n = GENERATE(2, 5, 50, 500);
  const std::uint64_t seed = GENERATE(1u, 2u, 3u);
  const double ratio = GENERATE(0.5, 1.5);  // the target as a multiple of the current volatility
  CAPTURE(n, seed, ratio);
  const Eigen::MatrixXd sigma = sample_covariance(n, seed);
  const Eigen::VectorXd v = dynweight::test::random_weights(n, seed, 0.9);
  const long double before = annual_volatility(sigma, v);
  const double target = ratio * double(before);

  Estimates<double> estimates(n);
  estimates.set_covariance(sigma);
  VolatilityTarget<double> overlay(
      {.target = target, .annualization = kAnnualization, .max_leverage = 2.0});
  Eigen::VectorXd w = v;
  REQUIRE(overlay.apply({.estimates = &estimates}, w).ok());
  CHECK_FALSE(overlay.leverage_capped());

  // The independent check: the volatility of the result, recomputed from the full matrix.
  CHECK(std::abs(annual_volatility(sigma, w) / target - 1) <= 1e-12);
  CHECK(std::abs(overlay.volatility_after() / target - 1) <= 1e-12);
  CHECK(std::abs(overlay.volatility_before() / double(before) - 1) <= 1e-12);
  CHECK(std::abs(overlay.scale() / ratio - 1) <= 1e-12);
  CHECK(near(w, (overlay.scale() * v).eval(), 0.0));  // w = k v, the proportions kept
  // Sums of N terms in double: within N ε of the long-double sums.
  const double sum_tolerance = double(n) * std::numeric_limits<double>::epsilon();
  CHECK(std::abs(overlay.gross() - double(dynweight::test::gross_ld(w))) <= sum_tolerance);
  CHECK(std::abs(overlay.cash() - double(1 - dynweight::test::sum_ld(w))) <= sum_tolerance);

  SECTION("the lower triangle alone gives the same result") {
    const Eigen::MatrixXd lower = lower_only(sigma);
    Estimates<double> lower_estimates(n);
    lower_estimates.set_covariance(lower, SymmetricStorage::lower);
    VolatilityTarget<double> other(
        {.target = target, .annualization = kAnnualization, .max_leverage = 2.0});
    Eigen::VectorXd wl = v;
    REQUIRE(other.apply({.estimates = &lower_estimates}, wl).ok());
    CHECK(std::abs(annual_volatility(sigma, wl) / target - 1) <= 1e-12);
    CHECK(near(wl, w, 1e-14));
  }
}

TEST_CASE("VolatilityTarget in float", "[overlays][volatility_target]") {
  const Index n = GENERATE(5, 50);
  const Eigen::MatrixXf sigma = sample_covariance(n, 4).cast<float>();
  const Eigen::VectorXf v = dynweight::test::random_weights(n, 4).cast<float>();
  const double target = 0.6 * double(annual_volatility(sigma, v));
  Estimates<float> estimates(n);
  estimates.set_covariance(sigma);
  VolatilityTarget<float> overlay({.target = target, .annualization = kAnnualization});
  Eigen::VectorXf w = v;
  REQUIRE(overlay.apply({.estimates = &estimates}, w).ok());
  // Float: Σw and wᵀΣw in float, relative error up to about N ε.
  const double tolerance = double(n) * std::numeric_limits<float>::epsilon();
  CHECK(std::abs(double(annual_volatility(sigma, w)) / target - 1) <= tolerance);
  CHECK(std::abs(double(overlay.volatility_after()) / target - 1) <= tolerance);
}

TEST_CASE("VolatilityTarget: the leverage cap holds exactly", "[overlays][volatility_target]") {
  const Index n = GENERATE(2, 5, 50, 500);
  const std::uint64_t seed = GENERATE(1u, 2u, 3u);
  const double max_leverage = GENERATE(1.0, 1.25, 3.0);
  CAPTURE(n, seed, max_leverage);
  const Eigen::MatrixXd sigma = sample_covariance(n, seed);
  const Eigen::VectorXd v = long_short_weights(n, seed);
  const double target = 10.0 * double(annual_volatility(sigma, v));  // unreachable
  Estimates<double> estimates(n);
  estimates.set_covariance(sigma);
  VolatilityTarget<double> overlay(
      {.target = target, .annualization = kAnnualization, .max_leverage = max_leverage});
  Eigen::VectorXd w = v;
  REQUIRE(overlay.apply({.estimates = &estimates}, w).ok());
  CHECK(overlay.leverage_capped());
  CHECK(overlay.gross() <= max_leverage);  // as computed: Σ|k v_i| in index order
  const long double gross = dynweight::test::gross_ld(w);
  CHECK(gross <= max_leverage * (1 + double(n) * std::numeric_limits<double>::epsilon()));
  CHECK(gross >= max_leverage * (1 - 1e-14));  // capped, not merely below
  CHECK(overlay.volatility_after() < target);
  CHECK(std::abs(annual_volatility(sigma, w) / overlay.volatility_after() - 1) <= 1e-12);
  CHECK(near(w, (overlay.scale() * v).eval(), 0.0));
}

TEST_CASE("VolatilityTarget: max_scale caps the scale itself", "[overlays][volatility_target]") {
  // Weights investing 30% (the rest in cash, as liquidity caps leave it) at half the target's
  // volatility: the target alone would scale them by 2, the leverage cap (1) by 3.3; max_scale = 1
  // keeps them as they are (only scaling down is allowed), 1.5 scales by 1.5, and a target below
  // the book's volatility still scales down whatever max_scale is.
  const Index n = 5;
  const Eigen::MatrixXd sigma = sample_covariance(n, 9);
  Eigen::VectorXd v = Eigen::VectorXd::LinSpaced(n, 1.0, 2.0);
  v *= 0.3 / v.sum();
  const double volatility = double(annual_volatility(sigma, v));
  Estimates<double> estimates(n);
  estimates.set_covariance(sigma);
  for (const double max_scale : {1.0, 1.5}) {
    CAPTURE(max_scale);
    VolatilityTarget<double> up(
        {.target = 2 * volatility, .annualization = kAnnualization, .max_scale = max_scale});
    Eigen::VectorXd w = v;
    REQUIRE(up.apply({.estimates = &estimates}, w).ok());
    CHECK(up.scale() == max_scale);
    CHECK(up.leverage_capped());
    CHECK(w == (max_scale * v).eval());
    VolatilityTarget<double> down(
        {.target = 0.5 * volatility, .annualization = kAnnualization, .max_scale = max_scale});
    w = v;
    REQUIRE(down.apply({.estimates = &estimates}, w).ok());
    CHECK(down.scale() == Approx(0.5).epsilon(1e-12));
    CHECK_FALSE(down.leverage_capped());
  }
  for (const double bad : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN()}) {
    REQUIRE_THROWS_WITH(VolatilityTarget<double>(
                            {.target = 0.1, .annualization = kAnnualization, .max_scale = bad}),
                        Contains("max_scale = ") && Contains("> 0"));
  }
}

TEST_CASE("VolatilityTarget: a zero covariance scales to the leverage cap",
          "[overlays][volatility_target]") {
  const Eigen::MatrixXd zero = Eigen::MatrixXd::Zero(4, 4);
  Estimates<double> estimates(4);
  estimates.set_covariance(zero);
  VolatilityTarget<double> overlay(
      {.target = 0.1, .annualization = kAnnualization, .max_leverage = 1.5});
  Eigen::VectorXd w = (Eigen::VectorXd(4) << 0.4, 0.3, 0.2, 0.1).finished();
  const auto status = overlay.apply({.estimates = &estimates}, w);
  CHECK(status.code == StatusCode::numerical_issue);
  CHECK_THAT(status.detail, Contains("leverage cap"));
  CHECK(overlay.volatility_before() == 0.0);
  CHECK(overlay.gross() <= 1.5);
  CHECK(overlay.gross() == Approx(1.5).epsilon(1e-15));
  CHECK(overlay.cash() == Approx(-0.5).epsilon(1e-15));
  CHECK(near(w, (Eigen::VectorXd(4) << 0.6, 0.45, 0.3, 0.15).finished(), 1e-15));

  // All-zero weights: nothing to scale, left as they are.
  Eigen::VectorXd none = Eigen::VectorXd::Zero(4);
  const auto empty = overlay.apply({.estimates = &estimates}, none);
  CHECK(empty.code == StatusCode::numerical_issue);
  CHECK(none == Eigen::VectorXd::Zero(4));
  CHECK(overlay.scale() == 1.0);
  CHECK(overlay.cash() == 1.0);
}

TEST_CASE("VolatilityTarget rejects bad options and input and changes nothing",
          "[overlays][volatility_target][errors]") {
  REQUIRE_THROWS_WITH(VolatilityTarget<double>({.target = 0.1}),
                      Contains("annualization = 0") && Contains("e.g. 252 or 365"));
  REQUIRE_THROWS_WITH(VolatilityTarget<double>({.target = 0.1, .annualization = -252}),
                      Contains("annualization = -252"));
  REQUIRE_THROWS_WITH(VolatilityTarget<double>({.target = 0.0, .annualization = 252}),
                      Contains("target = 0"));
  REQUIRE_THROWS_WITH(
      VolatilityTarget<double>({.target = 0.1, .annualization = 252, .max_leverage = 0}),
      Contains("max_leverage = 0"));

  const dynweight::AssetNames names{"A", "B", "C"};
  const Eigen::MatrixXd sigma = sample_covariance(3, 5);
  Estimates<double> estimates(3, &names);
  estimates.set_covariance(sigma);
  VolatilityTarget<double> overlay({.target = 0.05, .annualization = 252});
  Eigen::VectorXd good = Eigen::VectorXd::Constant(3, 1.0 / 3);
  REQUIRE(overlay.apply({.estimates = &estimates}, good).ok());
  const double scale = overlay.scale();
  const double before = overlay.volatility_before();
  const double after = overlay.volatility_after();
  const double gross = overlay.gross();
  const double cash = overlay.cash();
  const auto unchanged = [&] {
    CHECK(overlay.scale() == scale);
    CHECK(overlay.volatility_before() == before);
    CHECK(overlay.volatility_after() == after);
    CHECK(overlay.gross() == gross);
    CHECK(overlay.cash() == cash);
  };

  Eigen::VectorXd w = (Eigen::VectorXd(3) << 0.5, std::nan(""), 0.5).finished();
  REQUIRE_THROWS_WITH(overlay.apply({.estimates = &estimates}, w),
                      Contains("weights[1] (asset 1 ('B'))") && Contains("nan"));
  CHECK(w(0) == 0.5);
  CHECK(w(2) == 0.5);
  unchanged();
  Eigen::VectorXd short_weights = Eigen::VectorXd::Constant(2, 0.5);
  REQUIRE_THROWS_WITH(overlay.apply({.estimates = &estimates}, short_weights),
                      Contains("weights has 2 entries"));
  CHECK(short_weights == Eigen::VectorXd::Constant(2, 0.5));
  Eigen::VectorXd fine = Eigen::VectorXd::Constant(3, 1.0 / 3);
  REQUIRE_THROWS_WITH(overlay.apply({}, fine),
                      Contains("VolatilityTarget needs the covariance estimate"));
  Estimates<double> no_covariance(3);
  REQUIRE_THROWS_WITH(overlay.apply({.estimates = &no_covariance}, fine),
                      Contains("VolatilityTarget needs the covariance estimate"));
  CHECK(fine == Eigen::VectorXd::Constant(3, 1.0 / 3));
  unchanged();
}

TEST_CASE("VolatilityTarget: apply never allocates", "[overlays][volatility_target]") {
  const Index n = 500;
  const Eigen::MatrixXd sigma = sample_covariance(n, 6);
  const Eigen::MatrixXd lower = lower_only(sigma);
  Estimates<double> full_estimates(n);
  full_estimates.set_covariance(sigma);
  Estimates<double> lower_estimates(n);
  lower_estimates.set_covariance(lower, SymmetricStorage::lower);
  VolatilityTarget<double> overlay({.target = 0.05, .annualization = 252});
  const Eigen::VectorXd v = dynweight::test::random_weights(n, 6);
  Eigen::VectorXd w = v;
  dynweight::test::NoAllocationScope scope;  // not even on the first call: no buffer to size
  const auto full = overlay.apply({.estimates = &full_estimates}, w);
  w = v;
  const auto from_lower = overlay.apply({.estimates = &lower_estimates}, w);
  CHECK(scope.allocations() == 0);
  CHECK(full.ok());
  CHECK(from_lower.ok());
}
