#include "dynweight/policies/inverse_volatility.hpp"

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "allocation_counter.hpp"

using Catch::Matchers::Contains;
using dynweight::Estimates;
using dynweight::Index;
using dynweight::InverseVolatility;
using dynweight::StatusCode;

// Views of temporaries would dangle: they do not compile.
template <class E>
concept views_temporary = requires(E e) {
  e.set_volatility(Eigen::VectorXd(3));
};
template <class E>
concept views_lvalue = requires(E e, const Eigen::VectorXd& v) {
  e.set_volatility(v);
};
static_assert(!views_temporary<Estimates<double>>);
static_assert(views_lvalue<Estimates<double>>);

TEST_CASE("InverseVolatility: w_i proportional to sigma_i^-p", "[policies][inverse_volatility]") {
  const double power = GENERATE(1.0, 2.0, 0.5, 3.0);
  const Eigen::VectorXd sigma = (Eigen::VectorXd(5) << 0.01, 0.02, 0.015, 0.03, 0.005).finished();
  Estimates<double> estimates(5);
  estimates.set_volatility(sigma);
  InverseVolatility<double> policy({.power = power});
  Eigen::VectorXd w(5);
  const auto status = policy.compute(estimates, w);
  REQUIRE(status.ok());
  double total = 0;
  for (Index i = 0; i < 5; ++i)
    total += std::pow(sigma(i), -power);
  for (Index i = 0; i < 5; ++i) {
    CAPTURE(power, i);
    CHECK(w(i) == Approx(std::pow(sigma(i), -power) / total).epsilon(1e-14));
  }
  CHECK(w.sum() == Approx(1.0).epsilon(1e-15));

  // Scaling every volatility leaves the weights unchanged.
  const Eigen::VectorXd scaled = 250.0 * sigma;
  Estimates<double> scaled_estimates(5);
  scaled_estimates.set_volatility(scaled);
  Eigen::VectorXd w2(5);
  REQUIRE(policy.compute(scaled_estimates, w2).ok());
  CHECK((w2 - w).cwiseAbs().maxCoeff() <= 1e-15);
}

// Weights for `sigma` scaled by `scale`, with the status required to be success.
template <class Scalar>
dynweight::Vector<Scalar> scaled_weights(const dynweight::Vector<Scalar>& sigma, Scalar scale,
                                         double power) {
  const dynweight::Vector<Scalar> scaled = scale * sigma;
  Estimates<Scalar> estimates(sigma.size());
  estimates.set_volatility(scaled);
  InverseVolatility<Scalar> policy({.power = power});
  dynweight::Vector<Scalar> w(sigma.size());
  const auto status = policy.compute(estimates, w);
  CAPTURE(status.detail);
  REQUIRE(status.ok());
  return w;
}

TEST_CASE("InverseVolatility: scale-invariant at the extremes of the exponent range",
          "[policies][inverse_volatility]") {
  // σ^−2 of 1e-160 overflows double and of 1e160 underflows to 0: taken as σ_i^−p directly, no
  // asset was above the floor (numerical_issue). Scaled volatilities round differently from the
  // unscaled ones (1e±160 is not a power of 2), so the weights agree to a few ulps: 4 ε relative.
  const double power = GENERATE(1.0, 2.0);
  CAPTURE(power);
  SECTION("double") {
    const double scale = GENERATE(1e-160, 1e160, 1e-300, 1e300);
    CAPTURE(scale);
    for (const Eigen::VectorXd& sigma :
         {(Eigen::VectorXd(3) << 1.0, 2.0, 4.0).finished(),
          (Eigen::VectorXd(4) << 0.013, 0.021, 0.047, 0.0095).finished()}) {
      const Eigen::VectorXd reference = scaled_weights<double>(sigma, 1.0, power);
      const Eigen::VectorXd w = scaled_weights<double>(sigma, scale, power);
      const double tolerance = 4 * std::numeric_limits<double>::epsilon();
      CHECK(((w - reference).array().abs() <= tolerance * reference.array()).all());
      // And both against the closed form in long double.
      long double total = 0;
      for (Index i = 0; i < sigma.size(); ++i)
        total += std::pow(static_cast<long double>(sigma(i)), -static_cast<long double>(power));
      for (Index i = 0; i < sigma.size(); ++i) {
        const long double exact =
            std::pow(static_cast<long double>(sigma(i)), -static_cast<long double>(power)) / total;
        CHECK(std::abs(w(i) - exact) <= tolerance * exact);
      }
    }
  }
  SECTION("float") {
    const float scale = GENERATE(1e-20f, 1e20f, 1e-35f, 1e35f);
    CAPTURE(scale);
    const Eigen::VectorXf sigma =
        (Eigen::VectorXf(4) << 0.013f, 0.021f, 0.047f, 0.0095f).finished();
    const Eigen::VectorXf reference = scaled_weights<float>(sigma, 1.0f, power);
    const Eigen::VectorXf w = scaled_weights<float>(sigma, scale, power);
    const float tolerance = 4 * std::numeric_limits<float>::epsilon();
    CHECK(((w - reference).array().abs() <= tolerance * reference.array()).all());
  }
}

TEST_CASE("InverseVolatility: a stale asset gets weight 0 and the status says so",
          "[policies][inverse_volatility]") {
  const Eigen::VectorXd sigma = (Eigen::VectorXd(4) << 0.01, 0.0, 0.02, 1e-12).finished();
  Estimates<double> estimates(4);
  estimates.set_volatility(sigma);
  InverseVolatility<double> policy;
  Eigen::VectorXd w(4);
  const auto status = policy.compute(estimates, w);
  CHECK(status.code == StatusCode::numerical_issue);
  CHECK(w(1) == 0.0);
  CHECK(w(3) == 0.0);  // 1e-12 < 1e-8 × 0.02
  CHECK(w(0) == Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(w(2) == Approx(1.0 / 3.0).epsilon(1e-15));

  const Eigen::VectorXd all_stale = Eigen::VectorXd::Zero(4);
  Estimates<double> stale(4);
  stale.set_volatility(all_stale);
  Eigen::VectorXd unchanged = Eigen::VectorXd::Constant(4, 0.25);
  CHECK(policy.compute(stale, unchanged).code == StatusCode::numerical_issue);
  CHECK(unchanged == Eigen::VectorXd::Constant(4, 0.25));
}

TEST_CASE("InverseVolatility rejects bad input and changes nothing",
          "[policies][inverse_volatility][errors]") {
  const dynweight::AssetNames names{"A", "B", "C"};
  Eigen::VectorXd sigma = (Eigen::VectorXd(3) << 0.01, -0.02, 0.03).finished();
  Estimates<double> estimates(3, &names);
  estimates.set_volatility(sigma);
  InverseVolatility<double> policy;
  Eigen::VectorXd w = Eigen::VectorXd::Constant(3, 7.0);
  REQUIRE_THROWS_WITH(policy.compute(estimates, w),
                      Contains("volatility[1] (asset 1 ('B'))") && Contains("-0.02"));
  sigma(1) = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_WITH(policy.compute(estimates, w), Contains("volatility[1]"));
  CHECK(w == Eigen::VectorXd::Constant(3, 7.0));
  Eigen::VectorXd short_weights(2);
  sigma(1) = 0.02;
  REQUIRE_THROWS_WITH(policy.compute(estimates, short_weights), Contains("weights has 2 entries"));
  Estimates<double> empty(3);
  REQUIRE_THROWS_WITH(policy.compute(empty, w),
                      Contains("InverseVolatility needs the volatility estimate"));
  REQUIRE_THROWS_WITH(InverseVolatility<double>({.power = 0.0}), Contains("power = 0"));
  REQUIRE_THROWS_WITH(estimates.set_volatility(short_weights), Contains("volatility has 2"));
}

TEST_CASE("InverseVolatility: compute does not allocate", "[policies][inverse_volatility]") {
  const Eigen::VectorXd sigma = Eigen::VectorXd::LinSpaced(50, 0.01, 0.05);
  Estimates<double> estimates(50);
  estimates.set_volatility(sigma);
  InverseVolatility<double> policy({.power = 1.5});
  Eigen::VectorXd w(50);
  dynweight::test::NoAllocationScope scope;
  const auto status = policy.compute(estimates, w);
  CHECK(scope.allocations() == 0);
  CHECK(status.ok());
}
