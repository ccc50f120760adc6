#include "dynweight/core/validation.hpp"

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <limits>

#include "dynweight/core/status.hpp"

using Catch::Matchers::Contains;
using dynweight::CheckContext;

TEST_CASE("Error is a std::invalid_argument", "[core]") {
  STATIC_REQUIRE(std::is_base_of_v<std::invalid_argument, dynweight::Error>);
}

TEST_CASE("check_finite names function, argument, asset, bar and value", "[core]") {
  const dynweight::AssetNames names{"AAPL", "MSFT", "SPY"};
  const CheckContext context{"Engine::update", names, 17};
  Eigen::Vector3d x(1.0, std::numeric_limits<double>::quiet_NaN(), 2.0);
  REQUIRE_THROWS_AS(dynweight::check_finite(context, "returns", x), dynweight::Error);
  REQUIRE_THROWS_WITH(dynweight::check_finite(context, "returns", x),
                      Contains("Engine::update") && Contains("returns[1]") &&
                          Contains("asset 1 ('MSFT')") && Contains("bar 17") &&
                          Contains("is nan") && Contains("finite"));
  x(1) = -std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_WITH(dynweight::check_finite(context, "returns", x), Contains("is -inf"));
  x(1) = 0.5;
  REQUIRE_NOTHROW(dynweight::check_finite(context, "returns", x));
}

TEST_CASE("check_positive and check_nonnegative", "[core]") {
  const CheckContext unnamed{"Prices::update", {}, 3};
  Eigen::Vector2d prices(10.0, 0.0);
  REQUIRE_THROWS_WITH(dynweight::check_positive(unnamed, "prices", prices),
                      Contains("prices[1] (asset 1) at bar 3 is 0; must be finite and > 0"));
  REQUIRE_NOTHROW(dynweight::check_nonnegative(unnamed, "volumes", prices));
  prices(0) = -2.5;
  REQUIRE_THROWS_WITH(dynweight::check_nonnegative(unnamed, "volumes", prices),
                      Contains("volumes[0] (asset 0) at bar 3 is -2.5; must be finite and >= 0"));
}

TEST_CASE("check_finite on a matrix names row and asset", "[core]") {
  const dynweight::AssetNames names{"A", "B"};
  Eigen::MatrixXd window = Eigen::MatrixXd::Zero(4, 2);
  window(3, 1) = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_WITH(
      dynweight::check_finite(CheckContext{"LedoitWolf::compute", names}, "returns", window),
      Contains("returns(3, 1) (row 3, asset 1 ('B')) is inf"));
}

TEST_CASE("check_size and check_parameter", "[core]") {
  const CheckContext context{"Engine::update", {}, 0};
  REQUIRE_THROWS_WITH(dynweight::check_size(context, "returns", 3, 4),
                      Contains("returns has 3 entries at bar 0, expected 4"));
  REQUIRE_NOTHROW(dynweight::check_size(context, "returns", 4, 4));
  REQUIRE_THROWS_WITH(
      dynweight::check_parameter(false, CheckContext{"RollingOptions"}, "window", 1, ">= 2"),
      Contains("dynweight: RollingOptions: window = 1; must be >= 2"));
}

TEST_CASE("format_value round-trips", "[core]") {
  REQUIRE(dynweight::detail::format_value(0.1) == "0.1");
  REQUIRE(dynweight::detail::format_value(1e-300) == "1e-300");
  REQUIRE(std::stod(dynweight::detail::format_value(1.0 / 3.0)) == 1.0 / 3.0);
}

TEST_CASE("Status", "[core]") {
  constexpr auto ready = dynweight::Status::success_after(9, 1e-12);
  STATIC_REQUIRE(ready.ok());
  constexpr auto waiting = dynweight::Status::not_ready("window not full");
  STATIC_REQUIRE(!waiting.ok());
  REQUIRE(dynweight::to_string(waiting.code) == "not_ready");
  REQUIRE(std::string(waiting.detail) == "window not full");
}
