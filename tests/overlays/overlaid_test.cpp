// Overlaid<Policy, Overlays...>: a policy followed by weight bounds, a volatility target and a
// turnover limit, bar after bar, keeps every constraint at once.

#include "dynweight/overlays/overlay.hpp"

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "allocation_counter.hpp"
#include "dynweight/overlays/turnover_limit.hpp"
#include "dynweight/overlays/volatility_target.hpp"
#include "dynweight/overlays/weight_bounds.hpp"
#include "dynweight/policies/inverse_volatility.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "market_data.hpp"
#include "near.hpp"
#include "overlay_data.hpp"

using Catch::Matchers::Contains;
using dynweight::Estimates;
using dynweight::Index;
using dynweight::InverseVolatility;
using dynweight::Overlaid;
using dynweight::RiskParity;
using dynweight::StatusCode;
using dynweight::SymmetricStorage;
using dynweight::TurnoverLimit;
using dynweight::VolatilityTarget;
using dynweight::WeightBounds;

static_assert(dynweight::WeightingPolicy<Overlaid<InverseVolatility<double>>>);
static_assert(dynweight::WeightingPolicy<
              Overlaid<RiskParity<float>, WeightBounds<float>, VolatilityTarget<float>>>);
static_assert(dynweight::WeightingPolicy<
              Overlaid<Overlaid<RiskParity<double>, WeightBounds<double>>, TurnoverLimit<double>>>);

namespace {

constexpr double kEpsilon = std::numeric_limits<double>::epsilon();

// A rolling window of estimates over a synthetic market: full or lower-triangle covariance.
struct Market {
  Eigen::MatrixXd returns;
  Eigen::MatrixXd covariance;
  Eigen::VectorXd volatility;
  Market(Index n, std::uint64_t seed)
      : returns(dynweight::test::correlated_returns(280, n, seed)) {}
  void at_bar(Index t, SymmetricStorage storage) {
    covariance = dynweight::test::two_pass_covariance(returns.middleRows(t, 250));
    volatility = covariance.diagonal().cwiseSqrt();
    if (storage == SymmetricStorage::lower) {
      covariance.triangularView<Eigen::StrictlyUpper>().setConstant(
          std::numeric_limits<double>::quiet_NaN());
    }
  }
};

template <class Policy>
void run_chain(Policy policy, Index n, std::uint64_t seed, SymmetricStorage storage) {
  const Eigen::VectorXd floors = Eigen::VectorXd::Constant(n, 0.5 / double(n));
  const Eigen::VectorXd caps = Eigen::VectorXd::Constant(n, 1.5 / double(n));
  const double max_leverage = 1.0;
  const double tau = 0.05;
  Overlaid chain(std::move(policy), WeightBounds<double>(floors, caps),
                 VolatilityTarget<double>(
                     {.target = 0.08, .annualization = 252, .max_leverage = max_leverage}),
                 TurnoverLimit<double>({.max_turnover = tau}));
  Market market(n, seed);
  // The book starts half in cash, equally weighted: within the bounds relative to its sum 0.5.
  Eigen::VectorXd book = Eigen::VectorXd::Constant(n, 0.5 / double(n));
  Eigen::VectorXd w(n);
  Index limited = 0;
  for (Index t = 0; t < 30; ++t) {
    CAPTURE(t);
    market.at_bar(t, storage);
    Estimates<double> estimates(n);
    estimates.set_covariance(market.covariance, storage).set_volatility(market.volatility);
    const auto status = chain.compute(estimates, book, w);
    REQUIRE(status.ok());
    // Every constraint at once, measured independently in long double.
    CHECK(dynweight::test::relative_bound_violation(w, floors, caps) <= 4 * kEpsilon);
    CHECK(dynweight::test::gross_ld(w) <= max_leverage * (1 + double(n) * kEpsilon));
    CHECK(dynweight::test::turnover_ld(w, book) <= tau * (1 + double(n) * kEpsilon));
    // The overlays' diagnostics agree with what happened.
    CHECK(chain.template overlay<1>().gross() <= max_leverage);
    CHECK(std::abs(chain.template overlay<2>().turnover_after() -
                   double(dynweight::test::turnover_ld(w, book))) <= double(n) * kEpsilon);
    limited += chain.template overlay<2>().step() < 1;
    book = w;
  }
  CHECK(limited > 0);  // the turnover limit did bind on some bars
}

}  // namespace

TEST_CASE("Overlaid keeps bounds, leverage and turnover at once", "[overlays][overlaid]") {
  const Index n = GENERATE(5, 50);
  const std::uint64_t seed = GENERATE(1u, 2u);
  const auto storage = GENERATE(SymmetricStorage::full, SymmetricStorage::lower);
  CAPTURE(n, seed, static_cast<int>(storage));
  SECTION("inverse volatility") {
    run_chain(InverseVolatility<double>(), n, seed, storage);
  }
  SECTION("risk parity") {
    run_chain(RiskParity<double>(), n, seed, storage);
  }
}

TEST_CASE("Overlaid runs the overlays in order on the policy's weights", "[overlays][overlaid]") {
  const Eigen::VectorXd sigma = (Eigen::VectorXd(4) << 0.01, 0.02, 0.04, 0.08).finished();
  Estimates<double> estimates(4);
  estimates.set_volatility(sigma);
  Overlaid chain(InverseVolatility<double>(), WeightBounds<double>(4, 0.0, 0.4));
  Eigen::VectorXd w(4);
  REQUIRE(chain.compute(estimates, w).ok());
  // Inverse volatility: (8, 4, 2, 1)/15; asset 0 capped at 0.4, the rest scaled by 0.6/(7/15).
  const double c = 0.6 / (7.0 / 15.0);
  const Eigen::VectorXd expected =
      (Eigen::VectorXd(4) << 0.4, c * 4 / 15, c * 2 / 15, c * 1 / 15).finished();
  CHECK(dynweight::test::near(w, expected, 1e-15));
  CHECK(chain.overlay<0>().at_cap() == 1);
  CHECK(chain.policy().options().power == 1.0);
}

TEST_CASE("Overlaid returns the first status that is not success", "[overlays][overlaid]") {
  SECTION("the policy's") {
    const Eigen::VectorXd sigma = (Eigen::VectorXd(3) << 0.01, 0.0, 0.02).finished();
    Estimates<double> estimates(3);
    estimates.set_volatility(sigma);
    // Asset 1 is stale (weight 0), and the caps 0.4 of the two others cannot hold everything
    // proportionally (euclidean fallback: (0.4, 0.2, 0.4)): both report numerical_issue, the
    // policy's comes first.
    Overlaid chain(InverseVolatility<double>(), WeightBounds<double>(3, 0.0, 0.4));
    Eigen::VectorXd w(3);
    const auto status = chain.compute(estimates, w);
    CHECK(status.code == StatusCode::numerical_issue);
    CHECK_THAT(status.detail, Contains("below the floor"));
    CHECK(chain.overlay<0>().projection_used() == dynweight::BoundsProjection::euclidean);
    const Eigen::VectorXd expected = (Eigen::VectorXd(3) << 0.4, 0.2, 0.4).finished();
    CHECK(dynweight::test::near(w, expected, 1e-15));
  }
  SECTION("an overlay's") {
    const Eigen::VectorXd sigma = (Eigen::VectorXd(3) << 0.01, 1e-3, 0.02).finished();
    const Eigen::MatrixXd zero = Eigen::MatrixXd::Zero(3, 3);
    Estimates<double> estimates(3);
    estimates.set_volatility(sigma).set_covariance(zero);
    Overlaid chain(InverseVolatility<double>(), WeightBounds<double>(3, 0.0, 0.5),
                   VolatilityTarget<double>({.target = 0.1, .annualization = 252}));
    Eigen::VectorXd w(3);
    const auto status = chain.compute(estimates, w);
    CHECK(status.code == StatusCode::numerical_issue);
    CHECK_THAT(status.detail, Contains("leverage cap"));
  }
  SECTION("a policy that writes no weights: overlays skipped, weights unchanged") {
    const Eigen::VectorXd sigma = Eigen::VectorXd::Zero(3);
    Estimates<double> estimates(3);
    estimates.set_volatility(sigma);
    Overlaid chain(InverseVolatility<double>(), WeightBounds<double>(3, 0.0, 0.5));
    Eigen::VectorXd w = Eigen::VectorXd::Constant(3, 7.0);
    const auto status = chain.compute(estimates, w);
    CHECK(status.code == StatusCode::numerical_issue);
    CHECK_THAT(status.detail, Contains("left unchanged"));
    CHECK(w == Eigen::VectorXd::Constant(3, 7.0));
  }
}

TEST_CASE("Overlaid: errors leave the weights unchanged", "[overlays][overlaid][errors]") {
  const Eigen::VectorXd sigma = (Eigen::VectorXd(3) << 0.01, 0.02, 0.03).finished();
  Estimates<double> estimates(3);
  estimates.set_volatility(sigma);
  Overlaid chain(InverseVolatility<double>(), WeightBounds<double>(3, 0.0, 0.5),
                 TurnoverLimit<double>({.max_turnover = 0.1}));
  Eigen::VectorXd w = Eigen::VectorXd::Constant(3, 7.0);
  REQUIRE_THROWS_WITH(chain.compute(estimates, w),
                      Contains("TurnoverLimit needs the previous weights"));
  CHECK(w == Eigen::VectorXd::Constant(3, 7.0));
  const Eigen::VectorXd short_book = Eigen::VectorXd::Constant(2, 0.5);
  REQUIRE_THROWS_WITH(chain.compute(estimates, short_book, w),
                      Contains("previous_weights has 2 entries, expected 3"));
  Eigen::VectorXd short_weights(2);
  REQUIRE_THROWS_WITH(chain.compute(estimates, short_weights), Contains("weights has 2 entries"));
  CHECK(w == Eigen::VectorXd::Constant(3, 7.0));

  // The book may be the output vector itself.
  Eigen::VectorXd book = Eigen::VectorXd::Constant(3, 1.0 / 3);
  REQUIRE(chain.compute(estimates, book, book).ok());
  CHECK(dynweight::test::turnover_ld(book, Eigen::VectorXd::Constant(3, 1.0 / 3)) <=
        0.1 * (1 + 4 * kEpsilon));
}

TEST_CASE("Overlaid: an overlay's rejected context stops the chain before the policy runs",
          "[overlays][overlaid][errors]") {
  // A chain whose call is rejected must go on exactly as a twin that never saw the call: the
  // policy's warm start and every overlay's diagnostics are those of the last accepted call.
  const Index n = 12;
  Market market(n, 21);
  const auto make_chain = [&] {
    return Overlaid(RiskParity<double>(), WeightBounds<double>(n, 0.0, 0.2),
                    VolatilityTarget<double>({.target = 0.08, .annualization = 252}),
                    TurnoverLimit<double>({.max_turnover = 0.05}));
  };
  auto chain = make_chain();
  auto twin = make_chain();
  Eigen::VectorXd book = Eigen::VectorXd::Constant(n, 1.0 / double(n));
  Eigen::VectorXd w(n);
  Eigen::VectorXd w_twin(n);
  market.at_bar(0, SymmetricStorage::full);
  Estimates<double> estimates(n);
  estimates.set_covariance(market.covariance).set_volatility(market.volatility);
  REQUIRE(chain.compute(estimates, book, w).ok());
  REQUIRE(twin.compute(estimates, book, w_twin).ok());
  book = w;

  market.at_bar(1, SymmetricStorage::full);
  const Eigen::VectorXd before = w;
  Eigen::VectorXd bad_book = book;
  bad_book(4) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_WITH(chain.compute(estimates, bad_book, w),
                      Contains("TurnoverLimit::apply") && Contains("previous_weights[4]"));
  REQUIRE_THROWS_WITH(chain.compute(estimates, w), Contains("TurnoverLimit needs the previous"));
  CHECK(w == before);
  CHECK(chain.policy().portfolio_variance() == twin.policy().portfolio_variance());
  CHECK(chain.overlay<1>().scale() == twin.overlay<1>().scale());

  // The next accepted call agrees with the twin's bit for bit (the same warm start).
  const auto status = chain.compute(estimates, book, w);
  const auto twin_status = twin.compute(estimates, book, w_twin);
  REQUIRE(status.ok());
  REQUIRE(twin_status.ok());
  CHECK(w == w_twin);
  CHECK(status.iterations == twin_status.iterations);
  CHECK(chain.overlay<2>().turnover_before() == twin.overlay<2>().turnover_before());

  // A volatility target without a covariance, after a policy that needs none.
  Overlaid volatility_only(InverseVolatility<double>(),
                           VolatilityTarget<double>({.target = 0.08, .annualization = 252}));
  Estimates<double> no_covariance(n);
  no_covariance.set_volatility(market.volatility);
  REQUIRE(volatility_only.compute(estimates, w).ok());
  const double scale = volatility_only.overlay<0>().scale();
  REQUIRE_THROWS_WITH(volatility_only.compute(no_covariance, w),
                      Contains("VolatilityTarget needs the covariance"));
  CHECK(volatility_only.overlay<0>().scale() == scale);

  // Bounds sized for another number of assets are caught before the policy runs as well.
  Overlaid mismatched(RiskParity<double>(), WeightBounds<double>(n + 1, 0.0, 0.2));
  REQUIRE_THROWS_WITH(mismatched.compute(estimates, w), Contains("weights has 12 entries"));
  CHECK_FALSE(mismatched.policy().portfolio_variance().has_value());
}

TEST_CASE("Overlaid: compute does not allocate after the first call", "[overlays][overlaid]") {
  const Index n = 100;
  Market market(n, 3);
  market.at_bar(0, SymmetricStorage::lower);
  Estimates<double> estimates(n);
  estimates.set_covariance(market.covariance, SymmetricStorage::lower)
      .set_volatility(market.volatility);
  Overlaid chain(RiskParity<double>(), WeightBounds<double>(n, 0.2 / double(n), 1.5 / double(n)),
                 VolatilityTarget<double>({.target = 0.08, .annualization = 252}),
                 TurnoverLimit<double>({.max_turnover = 0.05}));
  Eigen::VectorXd book = Eigen::VectorXd::Constant(n, 1.0 / double(n));
  Eigen::VectorXd w(n);
  REQUIRE(chain.compute(estimates, book, w).ok());  // sizes every workspace
  book = w;
  dynweight::test::NoAllocationScope scope;
  const auto status = chain.compute(estimates, book, w);
  CHECK(scope.allocations() == 0);
  CHECK(status.ok());
}

namespace {

// An overlay that records the variance the chain hands it, and optionally moves the weights.
struct Recorder {
  using Scalar = double;
  bool given = false;
  double variance = 0;
  bool tilt = false;  // move weight from the last asset to the first
  dynweight::Status apply(const dynweight::OverlayContext<double>& context,
                          Eigen::Ref<Eigen::VectorXd> weights) {
    given = context.variance != nullptr;
    variance = given ? *context.variance : 0.0;
    if (tilt) {
      weights(0) += 0.01;
      weights(weights.size() - 1) -= 0.01;
    }
    return {};
  }
};
static_assert(dynweight::WeightOverlay<Recorder>);

// wᵀΣw in long double, from the weights alone.
double quadratic_form(const Eigen::MatrixXd& sigma, const Eigen::VectorXd& w) {
  long double total = 0;
  for (Index i = 0; i < w.size(); ++i)
    for (Index j = 0; j < w.size(); ++j)
      total += static_cast<long double>(w(i)) * sigma(i, j) * w(j);
  return static_cast<double>(total);
}

}  // namespace

TEST_CASE("Overlaid hands the policy's wᵀΣw to the overlays until one changes the weights",
          "[overlays][overlaid]") {
  const Index n = GENERATE(4, 60);
  const auto storage = GENERATE(SymmetricStorage::full, SymmetricStorage::lower);
  Market market(n, 7);
  market.at_bar(0, storage);
  Eigen::MatrixXd full = dynweight::test::two_pass_covariance(market.returns.middleRows(0, 250));
  Estimates<double> estimates(n);
  estimates.set_covariance(market.covariance, storage).set_volatility(market.volatility);

  // Risk parity, a recorder, a recorder that tilts, a recorder: the first two see risk parity's
  // variance (the first recorder left the weights as they were), the last sees none.
  Overlaid chain(RiskParity<double>(), Recorder{}, Recorder{.tilt = true}, Recorder{});
  Eigen::VectorXd w(n);
  REQUIRE(chain.compute(estimates, w).ok());
  Eigen::VectorXd parity(n);
  RiskParity<double> alone;
  REQUIRE(alone.compute(estimates, parity).ok());
  REQUIRE(chain.overlay<0>().given);
  REQUIRE(chain.overlay<1>().given);
  CHECK_FALSE(chain.overlay<2>().given);
  // Taken from the solve's own Σx: equal to wᵀΣw from the weights to rounding.
  CHECK(chain.overlay<0>().variance == Approx(quadratic_form(full, parity)).epsilon(1e-13));
  CHECK(chain.overlay<1>().variance == chain.overlay<0>().variance);

  // A volatility target after risk parity scales exactly as on its own, with the pass over Σ.
  Overlaid targeted(RiskParity<double>(),
                    VolatilityTarget<double>({.target = 0.10, .annualization = 252}));
  VolatilityTarget<double> target({.target = 0.10, .annualization = 252});
  REQUIRE(targeted.compute(estimates, w).ok());
  REQUIRE(target.apply({.estimates = &estimates}, parity).ok());
  CHECK(dynweight::test::near(w, parity, 1e-13));
  CHECK(targeted.overlay<0>().volatility_before() ==
        Approx(target.volatility_before()).epsilon(1e-13));
  // Inverse volatility reports no variance: nothing is handed on.
  Overlaid plain(InverseVolatility<double>(), Recorder{});
  REQUIRE(plain.compute(estimates, w).ok());
  CHECK_FALSE(plain.overlay<0>().given);
}
