// CorrelationShrinkage<Inner> and LiquidityScaled<Inner>, alone and nested.

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>

#include "allocation_counter.hpp"
#include "dynweight/estimators/rolling_shrinkage.hpp"
#include "dynweight/policies/correlation_shrinkage.hpp"
#include "dynweight/policies/inverse_volatility.hpp"
#include "dynweight/policies/liquidity_scaled.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "market_data.hpp"
#include "near.hpp"

using Catch::Matchers::Contains;
using dynweight::CorrelationShrinkage;
using dynweight::Estimates;
using dynweight::Index;
using dynweight::InverseVolatility;
using dynweight::LiquidityMode;
using dynweight::LiquidityScaled;
using dynweight::RiskParity;
using dynweight::ShrinkageTarget;
using dynweight::StatusCode;
using dynweight::test::near;

static_assert(dynweight::WeightingPolicy<CorrelationShrinkage<RiskParity<double>>>);
static_assert(dynweight::WeightingPolicy<LiquidityScaled<InverseVolatility<double>>>);
static_assert(
    dynweight::WeightingPolicy<LiquidityScaled<CorrelationShrinkage<RiskParity<double>>>>);

namespace {

Eigen::MatrixXd sample_covariance(Index n, std::uint64_t seed) {
  return dynweight::test::two_pass_covariance(dynweight::test::correlated_returns(250, n, seed));
}

// The cap rule by its definition: cut what is over capacity, hand the excess to the assets with
// room in proportion to their inner weights, repeat.
Eigen::VectorXd water_fill_by_rounds(Eigen::VectorXd w, const Eigen::VectorXd& capacity) {
  const Eigen::VectorXd inner = w;
  for (int round = 0; round < 1000; ++round) {
    double excess = 0;
    for (Index i = 0; i < w.size(); ++i) {
      if (w(i) > capacity(i)) {
        excess += w(i) - capacity(i);
        w(i) = capacity(i);
      }
    }
    if (excess <= 1e-17)
      break;
    double free_inner = 0;
    for (Index i = 0; i < w.size(); ++i)
      free_inner += w(i) < capacity(i) ? inner(i) : 0.0;
    for (Index i = 0; i < w.size(); ++i) {
      if (w(i) < capacity(i))
        w(i) += excess * inner(i) / free_inner;
    }
  }
  return w;
}

}  // namespace

TEST_CASE("CorrelationShrinkage: a fixed intensity shrinks the covariance the inner policy sees",
          "[policies][wrappers]") {
  const Index n = 8;
  const Eigen::MatrixXd sigma = sample_covariance(n, 41);
  const double delta = 0.4;
  const auto target =
      GENERATE(ShrinkageTarget::scaled_identity, ShrinkageTarget::constant_correlation);
  CorrelationShrinkage<RiskParity<double>> policy(RiskParity<double>{}, target, delta);
  Estimates<double> estimates(n);
  estimates.set_covariance(sigma);
  Eigen::VectorXd w(n);
  REQUIRE(policy.compute(estimates, w).ok());

  // The shrunk matrix, from its definition.
  Eigen::MatrixXd expected = (1 - delta) * sigma;
  if (target == ShrinkageTarget::scaled_identity) {
    expected.diagonal().array() += delta * sigma.trace() / double(n);
  } else {
    const Eigen::VectorXd sd = sigma.diagonal().cwiseSqrt();
    double rbar = 0;
    for (Index i = 0; i < n; ++i) {
      for (Index j = 0; j < i; ++j)
        rbar += sigma(i, j) / (sd(i) * sd(j));
    }
    rbar /= double(n * (n - 1) / 2);
    for (Index i = 0; i < n; ++i) {
      for (Index j = 0; j < n; ++j)
        expected(i, j) += delta * (i == j ? sigma(i, i) : rbar * sd(i) * sd(j));
    }
    CHECK(policy.shrinkage().target_parameter == Approx(rbar).epsilon(1e-13));
  }
  CHECK(near(policy.shrunk_covariance(), expected, 1e-14));
  // The weights are the inner policy's on the shrunk matrix.
  RiskParity<double> direct;
  Estimates<double> shrunk(n);
  shrunk.set_covariance(expected);
  Eigen::VectorXd wd(n);
  REQUIRE(direct.compute(shrunk, wd).ok());
  CHECK(near(w, wd, 1e-8));
  // δ = 0 is the inner policy itself.
  CorrelationShrinkage<RiskParity<double>> none(RiskParity<double>{}, target, 0.0);
  Eigen::VectorXd w0(n), wi(n);
  REQUIRE(none.compute(estimates, w0).ok());
  RiskParity<double> inner;
  REQUIRE(inner.compute(estimates, wi).ok());
  CHECK(near(w0, wi, 1e-8));
  REQUIRE_THROWS_WITH((CorrelationShrinkage<RiskParity<double>>(RiskParity<double>{}, target, 1.5)),
                      Contains("intensity = 1.5"));
}

TEST_CASE("CorrelationShrinkage over a RollingShrinkage", "[policies][wrappers]") {
  const Index n = 6;
  const Eigen::MatrixXd returns = dynweight::test::correlated_returns(80, n, 43);
  dynweight::RollingShrinkage<double> rolling(n, {.window = 40},
                                              dynweight::RollingShrinkageMethod::ledoit_wolf);
  CorrelationShrinkage<InverseVolatility<double>> policy(InverseVolatility<double>{}, rolling);
  Estimates<double> estimates(n);
  Eigen::VectorXd w(n);
  rolling.update(returns.row(0).transpose());
  CHECK(policy.compute(estimates, w).code == StatusCode::not_ready);
  for (Index t = 1; t < 80; ++t)
    rolling.update(returns.row(t).transpose());
  REQUIRE(policy.compute(estimates, w).ok());
  Eigen::MatrixXd shrunk(n, n);
  const auto result = rolling.compute(shrunk);
  CHECK(policy.shrinkage().intensity == result.intensity);
  const Eigen::VectorXd inverse = shrunk.diagonal().cwiseSqrt().cwiseInverse();
  CHECK(near(w, inverse / inverse.sum(), 1e-15));
}

TEST_CASE("LiquidityScaled: capacities are water-filled exactly", "[policies][wrappers]") {
  const Index n = 12;
  const Eigen::VectorXd sigma = Eigen::VectorXd::LinSpaced(n, 0.01, 0.03);
  const double capital = GENERATE(1e5, 1e6, 2e6, 5e6);  // none, few, several caps; cash
  Eigen::VectorXd adv(n);
  for (Index i = 0; i < n; ++i)
    adv(i) = 2e5 * (1.0 + double((i * 7) % 5));  // 2e5 .. 1e6
  Estimates<double> estimates(n);
  estimates.set_volatility(sigma).set_dollar_volume(adv);
  LiquidityScaled<InverseVolatility<double>> policy(
      InverseVolatility<double>{}, {.capital = capital, .participation = 0.1, .horizon = 5});
  Eigen::VectorXd w(n);
  const auto status = policy.compute(estimates, w);
  Eigen::VectorXd inner(n);
  InverseVolatility<double> plain;
  REQUIRE(plain.compute(estimates, inner).ok());
  const Eigen::VectorXd capacity = 0.1 * 5 * adv / capital;
  CHECK(near(policy.capacity(), capacity, 1e-15));
  CAPTURE(capital, capacity.sum());
  if (capacity.sum() >= 1) {
    REQUIRE(status.ok());
    CHECK(policy.cash() == 0.0);
    CHECK(std::abs(w.sum() - 1.0) <= 1e-14);
    CHECK(((w - capacity).array() <= 1e-15).all());
    CHECK(near(w, water_fill_by_rounds(inner, capacity), 1e-13));
    if (capital == 2e6)
      CHECK(((w - capacity).array().abs() <= 1e-15).count() >= 2);
  } else {
    CHECK(status.code == StatusCode::numerical_issue);
    CHECK(near(w, capacity, 1e-15));
    CHECK(policy.cash() == Approx(1.0 - capacity.sum()).epsilon(1e-14));
  }
}

TEST_CASE("LiquidityScaled: max_weight caps every weight in the same water-filling",
          "[policies][wrappers]") {
  // A weight cap beside liquidity must be one projection: w_i = min(λ v_i, min(c_i, m)), Σw = 1.
  // (A WeightBounds after the policy moved weight onto assets already at capacity: 1.7× their
  // capacity in the CLI's `--policy liquidity --max-weight`.) Checked against the same
  // water-filling by rounds on the combined caps, and both caps hold.
  const Index n = 12;
  const Eigen::VectorXd sigma = Eigen::VectorXd::LinSpaced(n, 0.005, 0.03);
  Eigen::VectorXd adv(n);
  for (Index i = 0; i < n; ++i)
    adv(i) = 2e5 * (1.0 + double((i * 7) % 5));  // 2e5 .. 1e6
  Estimates<double> estimates(n);
  estimates.set_volatility(sigma).set_dollar_volume(adv);
  const double max_weight = GENERATE(0.12, 0.15, 0.2);
  const double capital = 2e6;
  LiquidityScaled<InverseVolatility<double>> policy(
      InverseVolatility<double>{},
      {.capital = capital, .participation = 0.1, .horizon = 5, .max_weight = max_weight});
  Eigen::VectorXd w(n);
  REQUIRE(policy.compute(estimates, w).ok());
  Eigen::VectorXd inner(n);
  InverseVolatility<double> plain;
  REQUIRE(plain.compute(estimates, inner).ok());
  const Eigen::VectorXd liquidity = 0.1 * 5 * adv / capital;
  const Eigen::VectorXd caps = liquidity.cwiseMin(max_weight);
  CAPTURE(max_weight, caps.sum());
  REQUIRE(caps.sum() > 1.05);  // room for everything: no cash
  CHECK(near(policy.capacity(), caps, 1e-15));
  CHECK(std::abs(w.sum() - 1.0) <= 1e-14);
  CHECK(((w - liquidity).array() <= 1e-15).all());
  CHECK((w.array() <= max_weight + 1e-15).all());
  CHECK(near(w, water_fill_by_rounds(inner, caps), 1e-13));
  CHECK(((w - caps).array().abs() <= 1e-15).count() >= 2);  // both kinds of cap bind somewhere
}

TEST_CASE("LiquidityScaled: a tiny weight beside large ones takes the excess, not its capacity",
          "[policies][wrappers]") {
  // Inner weights (0.5, 0.5, 5e-21): the first two are capped at 0.2 and the third, with room for
  // 5, takes the remaining 0.6 (λ = 1.2e20). A free weight kept by subtraction is 1 − 0.5 − 0.5 =
  // 0 there, which capped the third asset too and invested 5.4.
  const Eigen::VectorXd sigma = Eigen::Vector3d(1.0, 1.0, 1e20);
  const Eigen::VectorXd adv = Eigen::Vector3d(2.0, 2.0, 50.0);  // capacities 0.1 · ADV
  Estimates<double> estimates(3);
  estimates.set_volatility(sigma).set_dollar_volume(adv);
  LiquidityScaled<InverseVolatility<double>> policy(
      InverseVolatility<double>({.relative_floor = 0.0}),  // keep the 1e20 outlier's neighbours
      {.capital = 1.0, .participation = 0.1, .horizon = 1.0});
  Eigen::VectorXd w(3);
  REQUIRE(policy.compute(estimates, w).ok());
  CHECK(policy.cash() == 0.0);
  CHECK(w(0) == Approx(0.2).epsilon(1e-15));
  CHECK(w(1) == Approx(0.2).epsilon(1e-15));
  CHECK(w(2) == Approx(0.6).epsilon(1e-14));
  CHECK(std::abs(w.sum() - 1.0) <= 1e-15);
}

namespace {
// Writes fixed weights: the inner policy of the capacity tests below.
struct FixedWeights {
  using Scalar = double;
  Eigen::VectorXd weights;
  dynweight::Status compute(const Estimates<double>& /*estimates*/,
                            Eigen::Ref<Eigen::VectorXd> out) {
    out = weights;
    return {};
  }
};
}  // namespace

TEST_CASE("LiquidityScaled: no weight passes its capacity, even when they sum to 1 by rounding",
          "[policies][wrappers]") {
  // Capacities (q = h = C = 1: c = ADV) normalised to sum to 1, then moved by up to 2 ulps: the
  // water level makes every asset (nearly) full, and the last free asset's λw passed its capacity
  // by an ulp in 238 of 200,000 such books (an audit's count) before it was clamped.
  std::mt19937_64 engine(5);
  std::uniform_real_distribution<double> unit(0.1, 1.0);
  int over = 0;
  for (int run = 0; run < 20000; ++run) {
    const Index n = 2 + Index(engine() % 6);
    Eigen::VectorXd adv(n), inner(n);
    for (Index i = 0; i < n; ++i) {
      adv(i) = unit(engine);
      inner(i) = unit(engine);
    }
    adv /= adv.sum();
    adv *= 1.0 + double(int(engine() % 5) - 2) * 1.1e-16;
    inner /= inner.sum();
    LiquidityScaled<FixedWeights> policy(FixedWeights{inner},
                                         {.capital = 1.0, .participation = 1.0});
    Estimates<double> estimates(n);
    estimates.set_dollar_volume(adv);
    Eigen::VectorXd w(n);
    const auto status = policy.compute(estimates, w);
    CAPTURE(run);
    over += int((w.array() > policy.capacity().array()).any());
    // Summing to 1 but for rounding (or, with too little room, to 1 − cash).
    REQUIRE(std::abs(w.sum() + policy.cash() - 1.0) <= 8 * std::numeric_limits<double>::epsilon());
    REQUIRE((status.ok() || status.code == StatusCode::numerical_issue));
  }
  CHECK(over == 0);
}

TEST_CASE("LiquidityScaled: tilt mode", "[policies][wrappers]") {
  const Index n = 5;
  const Eigen::VectorXd sigma = Eigen::VectorXd::LinSpaced(n, 0.01, 0.02);
  const Eigen::VectorXd adv = (Eigen::VectorXd(n) << 1e6, 4e6, 0.0, 9e6, 1e6).finished();
  Estimates<double> estimates(n);
  estimates.set_volatility(sigma).set_dollar_volume(adv);
  LiquidityScaled<InverseVolatility<double>> policy(InverseVolatility<double>{},
                                                    {.mode = LiquidityMode::tilt, .exponent = 0.5});
  Eigen::VectorXd w(n);
  REQUIRE(policy.compute(estimates, w).ok());
  const Eigen::VectorXd raw = sigma.cwiseInverse().cwiseProduct(adv.cwiseSqrt());
  CHECK(near(w, raw / raw.sum(), 1e-15));
  CHECK(w(2) == 0.0);
}

TEST_CASE("LiquidityScaled: an inner policy without weights leaves the output unchanged",
          "[policies][wrappers]") {
  // Bar 1 gives weights; on bar 2 every volatility is 0, InverseVolatility writes nothing, and the
  // wrapper must not hand on bar 1's weights (or uninitialised memory) as if they were new.
  const Index n = 3;
  const Eigen::VectorXd adv = Eigen::VectorXd::Constant(n, 1e9);
  const Eigen::VectorXd sigma = (Eigen::VectorXd(n) << 0.01, 0.02, 0.04).finished();
  const Eigen::VectorXd stale = Eigen::VectorXd::Zero(n);
  LiquidityScaled<InverseVolatility<double>> policy(InverseVolatility<double>{});
  Estimates<double> first(n);
  first.set_volatility(sigma).set_dollar_volume(adv);
  Eigen::VectorXd w(n);
  REQUIRE(policy.compute(first, w).ok());
  Estimates<double> second(n);
  second.set_volatility(stale).set_dollar_volume(adv);
  Eigen::VectorXd untouched = Eigen::VectorXd::Constant(n, -7.0);
  CHECK(policy.compute(second, untouched).code == StatusCode::numerical_issue);
  CHECK(untouched == Eigen::VectorXd::Constant(n, -7.0));
}

TEST_CASE("LiquidityScaled<CorrelationShrinkage<RiskParity>> nests and works",
          "[policies][wrappers]") {
  const Index n = 10;
  const Eigen::MatrixXd sigma = sample_covariance(n, 47);
  const Eigen::VectorXd adv = Eigen::VectorXd::LinSpaced(n, 5e5, 5e6);
  Estimates<double> estimates(n);
  estimates.set_covariance(sigma).set_dollar_volume(adv);
  using Nested = LiquidityScaled<CorrelationShrinkage<RiskParity<double>>>;
  Nested policy(CorrelationShrinkage<RiskParity<double>>(
                    RiskParity<double>{}, ShrinkageTarget::constant_correlation, 0.25),
                {.capital = 1e7, .participation = 0.05, .horizon = 10});
  // The inner policy as it starts (cold): the same solve gives the same inner weights.
  auto inner_policy = policy.inner();
  Eigen::VectorXd w(n);
  const auto status = policy.compute(estimates, w);
  REQUIRE(status.ok());
  CHECK(status.residual <= 1e-10);
  const Eigen::VectorXd capacity = 0.05 * 10 * adv / 1e7;
  REQUIRE(capacity.sum() > 1);
  REQUIRE((capacity.array() < 0.1).any());  // some caps bind
  CHECK(std::abs(w.sum() - 1.0) <= 1e-14);
  CHECK(((w - capacity).array() <= 1e-15).all());
  Eigen::VectorXd inner(n);
  REQUIRE(inner_policy.compute(estimates, inner).ok());
  CHECK(near(w, water_fill_by_rounds(inner, capacity), 1e-12));

  // No allocation after the first call.
  dynweight::test::NoAllocationScope scope;
  const auto again = policy.compute(estimates, w);
  CHECK(scope.allocations() == 0);
  CHECK(again.ok());
}

TEST_CASE("LiquidityScaled rejects bad input and changes nothing", "[policies][wrappers][errors]") {
  const dynweight::AssetNames names{"A", "B", "C"};
  const Eigen::VectorXd sigma = Eigen::VectorXd::Constant(3, 0.01);
  Eigen::VectorXd adv = (Eigen::VectorXd(3) << 1e6, -1.0, 1e6).finished();
  Estimates<double> estimates(3, &names);
  estimates.set_volatility(sigma).set_dollar_volume(adv);
  LiquidityScaled<InverseVolatility<double>> policy(InverseVolatility<double>{});
  Eigen::VectorXd w = Eigen::VectorXd::Constant(3, 5.0);
  REQUIRE_THROWS_WITH(policy.compute(estimates, w),
                      Contains("dollar_volume[1] (asset 1 ('B'))") && Contains("-1"));
  CHECK(w == Eigen::VectorXd::Constant(3, 5.0));
  Estimates<double> no_adv(3);
  no_adv.set_volatility(sigma);
  REQUIRE_THROWS_WITH(policy.compute(no_adv, w),
                      Contains("LiquidityScaled needs the dollar_volume estimate"));
  REQUIRE_THROWS_WITH(
      LiquidityScaled<InverseVolatility<double>>(InverseVolatility<double>{}, {.capital = 0.0}),
      Contains("capital = 0"));
  for (const double max_weight : {0.0, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    REQUIRE_THROWS_WITH(LiquidityScaled<InverseVolatility<double>>(InverseVolatility<double>{},
                                                                   {.max_weight = max_weight}),
                        Contains("max_weight = ") && Contains("in (0, 1]"));
  }
  const Eigen::VectorXd short_adv(2);
  REQUIRE_THROWS_WITH(estimates.set_dollar_volume(short_adv), Contains("dollar_volume has 2"));
}

TEST_CASE("CorrelationShrinkage: an error from the inner policy changes nothing",
          "[policies][wrappers][errors]") {
  const Index n = 4;
  const Eigen::VectorXd adv = Eigen::VectorXd::Constant(n, 1e9);
  const Eigen::MatrixXd first = sample_covariance(n, 51);
  const Eigen::MatrixXd second = sample_covariance(n, 52);
  Estimates<double> good(n);
  good.set_covariance(first).set_dollar_volume(adv);
  Estimates<double> no_adv(n);  // the inner LiquidityScaled needs dollar volume
  no_adv.set_covariance(second);
  CorrelationShrinkage<LiquidityScaled<InverseVolatility<double>>> policy(
      LiquidityScaled<InverseVolatility<double>>(InverseVolatility<double>{}),
      ShrinkageTarget::constant_correlation, 0.3);
  Eigen::VectorXd w(n);
  REQUIRE(policy.compute(good, w).ok());
  const Eigen::MatrixXd shrunk = policy.shrunk_covariance();
  const auto shrinkage = policy.shrinkage();
  const Eigen::VectorXd weights = w;
  REQUIRE_THROWS_WITH(policy.compute(no_adv, w),
                      Contains("LiquidityScaled needs the dollar_volume estimate"));
  Eigen::VectorXd short_weights(n - 1);
  REQUIRE_THROWS_WITH(policy.compute(good, short_weights), Contains("weights has 3"));
  CHECK(w == weights);
  CHECK(policy.shrunk_covariance() == shrunk);
  CHECK(policy.shrinkage().intensity == shrinkage.intensity);
  CHECK(policy.shrinkage().target_parameter == shrinkage.target_parameter);
  // And it goes on as before: the same call gives the same result, without allocating.
  dynweight::test::NoAllocationScope scope;
  REQUIRE(policy.compute(good, w).ok());
  CHECK(scope.allocations() == 0);
  CHECK(w == weights);
  CHECK(policy.shrunk_covariance() == shrunk);
}

TEST_CASE("LiquidityScaled: an error from the inner policy leaves the capacities as they were",
          "[policies][wrappers][errors]") {
  LiquidityScaled<RiskParity<double>> policy(
      RiskParity<double>({}, Eigen::Vector3d(0.2, 0.3, 0.5)),
      {.capital = 1e9, .participation = 0.1, .horizon = 1.0});
  const Eigen::MatrixXd sigma3 = sample_covariance(3, 61);
  const Eigen::VectorXd adv3 = Eigen::Vector3d(5e9, 4e9, 3e9);
  Estimates<double> three(3);
  three.set_covariance(sigma3).set_dollar_volume(adv3);
  Eigen::VectorXd w3(3);
  REQUIRE(policy.compute(three, w3).ok());
  const Eigen::VectorXd capacity = policy.capacity();
  const Eigen::MatrixXd sigma4 = sample_covariance(4, 62);
  const Eigen::VectorXd adv4 = Eigen::VectorXd::Constant(4, 1e9);
  Estimates<double> four(4);  // the budgets have 3 entries: the inner policy throws
  four.set_covariance(sigma4).set_dollar_volume(adv4);
  Eigen::VectorXd w4(4);
  REQUIRE_THROWS_WITH(policy.compute(four, w4), Contains("budgets has 3 entries"));
  CHECK(policy.capacity() == capacity);
}
