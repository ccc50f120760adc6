#include "dynweight/overlays/turnover_limit.hpp"

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "allocation_counter.hpp"
#include "dynweight/overlays/weight_bounds.hpp"
#include "near.hpp"
#include "overlay_data.hpp"

using Catch::Matchers::Contains;
using dynweight::Index;
using dynweight::TurnoverLimit;
using dynweight::WeightBounds;
using dynweight::test::near;
using dynweight::test::Tolerance;
using dynweight::test::turnover_ld;

namespace {

template <class Scalar>
using Vector = dynweight::Vector<Scalar>;

template <class Scalar>
constexpr double epsilon = std::numeric_limits<Scalar>::epsilon();

template <class Scalar>
void check_limit(Index n, std::uint64_t seed) {
  const Vector<Scalar> previous = dynweight::test::random_weights(n, seed, 0.95).cast<Scalar>();
  const Vector<Scalar> target = dynweight::test::random_weights(n, seed + 1000).cast<Scalar>();
  const long double requested = turnover_ld(target, previous);
  // Turnover sums N terms: within N ε (relative) of the long-double sum.
  const double tolerance = double(n) * epsilon<Scalar>;

  SECTION("above the limit: the straight line from the previous weights, cut at tau") {
    const double tau = 0.3 * double(requested);
    TurnoverLimit<Scalar> limit({.max_turnover = tau});
    Vector<Scalar> w = target;
    REQUIRE(limit.apply({.previous_weights = &previous}, w).ok());
    const long double done = turnover_ld(w, previous);
    CHECK(done <= tau * (1 + tolerance));
    CHECK(done >= tau * (1 - tolerance));
    CHECK(std::abs(double(limit.turnover_after()) / tau - 1) <= tolerance);
    CHECK(std::abs(double(limit.turnover_before() / requested) - 1) <= tolerance);
    CHECK(std::abs(double(limit.step()) / 0.3 - 1) <= tolerance);
    // w − p = s (target − p), coordinate by coordinate.
    const Vector<Scalar> expected = previous + limit.step() * (target - previous);
    CHECK(near(w, expected, 2 * epsilon<Scalar>, Tolerance::absolute));
  }
  SECTION("below the limit: untouched") {
    TurnoverLimit<Scalar> limit({.max_turnover = 2 * double(requested)});
    Vector<Scalar> w = target;
    REQUIRE(limit.apply({.previous_weights = &previous}, w).ok());
    CHECK(dynweight::test::identical(w, target));
    CHECK(limit.step() == 1);
    CHECK(limit.turnover_after() == limit.turnover_before());
  }
  SECTION("blend: exponential smoothing towards the target") {
    const double blend = 0.3;
    TurnoverLimit<Scalar> limit({.blend = blend});
    Vector<Scalar> w = target;
    REQUIRE(limit.apply({.previous_weights = &previous}, w).ok());
    Eigen::VectorXd expected(n);
    for (Index i = 0; i < n; ++i)
      expected(i) = double(previous(i)) + blend * (double(target(i)) - double(previous(i)));
    CHECK(near(w, expected, 2 * epsilon<Scalar>, Tolerance::absolute));
    CHECK(std::abs(double(limit.turnover_after() / requested) / blend - 1) <= tolerance);
  }
  SECTION("blend, then the limit") {
    const double tau = 0.2 * double(requested);
    TurnoverLimit<Scalar> limit({.max_turnover = tau, .blend = 0.5});
    Vector<Scalar> w = target;
    REQUIRE(limit.apply({.previous_weights = &previous}, w).ok());
    CHECK(turnover_ld(w, previous) <= tau * (1 + tolerance));
    CHECK(std::abs(double(limit.step()) / 0.2 - 1) <= tolerance);
  }
}

}  // namespace

TEST_CASE("TurnoverLimit over sizes and seeds", "[overlays][turnover_limit]") {
  const Index n = GENERATE(2, 5, 50, 500);
  const std::uint64_t seed = GENERATE(1u, 2u, 3u);
  CAPTURE(n, seed);
  SECTION("double") {
    check_limit<double>(n, seed);
  }
  SECTION("float") {
    check_limit<float>(n, seed);
  }
}

TEST_CASE("TurnoverLimit keeps bounds relative to the invested sum", "[overlays][turnover_limit]") {
  // Both ends meet l_i Σw <= w_i <= u_i Σw, with different invested sums (0.8 and 1): every point
  // of the segment between them does too.
  const Index n = GENERATE(5, 50, 500);
  const std::uint64_t seed = GENERATE(1u, 2u, 3u);
  CAPTURE(n, seed);
  const auto random = dynweight::test::random_bounds(n, seed);
  WeightBounds<double> bounds(random.floors, random.caps);
  Eigen::VectorXd previous = dynweight::test::random_weights(n, seed, 0.8);
  REQUIRE(bounds.apply({}, previous).ok());
  Eigen::VectorXd w = dynweight::test::random_weights(n, seed + 50);
  REQUIRE(bounds.apply({}, w).ok());
  const double tau = 0.25 * double(turnover_ld(w, previous));
  TurnoverLimit<double> limit({.max_turnover = tau, .blend = 0.8});
  REQUIRE(limit.apply({.previous_weights = &previous}, w).ok());
  CHECK(limit.step() < 1);
  CHECK(turnover_ld(w, previous) <= tau * (1 + double(n) * epsilon<double>));
  // To rounding: one multiply-add per weight, and the sum of N of them.
  CHECK(dynweight::test::relative_bound_violation(w, random.floors, random.caps) <=
        4 * epsilon<double>);
}

TEST_CASE("TurnoverLimit rejects bad options and input and changes nothing",
          "[overlays][turnover_limit][errors]") {
  REQUIRE_THROWS_WITH(TurnoverLimit<double>({.max_turnover = 0}), Contains("max_turnover = 0"));
  REQUIRE_THROWS_WITH(TurnoverLimit<double>({.max_turnover = std::nan("")}),
                      Contains("max_turnover = nan"));
  REQUIRE_THROWS_WITH(TurnoverLimit<double>({.blend = 0}),
                      Contains("blend = 0; must be in (0, 1]"));
  REQUIRE_THROWS_WITH(TurnoverLimit<double>({.blend = 1.5}), Contains("blend = 1.5"));

  const Eigen::VectorXd previous = Eigen::VectorXd::Constant(3, 1.0 / 3);
  TurnoverLimit<double> limit({.max_turnover = 0.1});
  Eigen::VectorXd good = (Eigen::VectorXd(3) << 0.6, 0.3, 0.1).finished();
  REQUIRE(limit.apply({.previous_weights = &previous}, good).ok());
  const double before = limit.turnover_before();
  const double after = limit.turnover_after();
  const double step = limit.step();
  const auto unchanged = [&] {
    CHECK(limit.turnover_before() == before);
    CHECK(limit.turnover_after() == after);
    CHECK(limit.step() == step);
  };

  Eigen::VectorXd w = (Eigen::VectorXd(3) << 0.6, 0.3, 0.1).finished();
  const Eigen::VectorXd original = w;
  REQUIRE_THROWS_WITH(limit.apply({}, w), Contains("TurnoverLimit needs the previous weights"));
  CHECK(w == original);
  unchanged();
  const Eigen::VectorXd short_previous = Eigen::VectorXd::Constant(2, 0.5);
  REQUIRE_THROWS_WITH(limit.apply({.previous_weights = &short_previous}, w),
                      Contains("previous_weights has 2 entries, expected 3"));
  Eigen::VectorXd bad_previous = previous;
  bad_previous(2) = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_WITH(limit.apply({.previous_weights = &bad_previous}, w),
                      Contains("previous_weights[2]") && Contains("inf"));
  w(0) = std::nan("");
  REQUIRE_THROWS_WITH(limit.apply({.previous_weights = &previous}, w),
                      Contains("weights[0]") && Contains("nan"));
  CHECK(w(1) == 0.3);
  CHECK(w(2) == 0.1);
  unchanged();
}

TEST_CASE("TurnoverLimit: apply does not allocate", "[overlays][turnover_limit]") {
  const Index n = 500;
  const Eigen::VectorXd previous = dynweight::test::random_weights(n, 8);
  Eigen::VectorXd w = dynweight::test::random_weights(n, 9);
  TurnoverLimit<double> limit({.max_turnover = 0.01, .blend = 0.5});
  dynweight::test::NoAllocationScope scope;
  const auto status = limit.apply({.previous_weights = &previous}, w);
  CHECK(scope.allocations() == 0);
  CHECK(status.ok());
  CHECK(limit.step() < 1);
}
