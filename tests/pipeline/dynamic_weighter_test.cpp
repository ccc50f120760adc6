// DynamicWeighter: bar by bar equal to its parts driven by hand, each trigger (initial, calendar,
// drift, volatility regime, minimum gap), no allocation per bar, the strong guarantee across
// engines, and live books (set_book).

#include "dynweight/pipeline/dynamic_weighter.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "allocation_counter.hpp"
#include "dynweight/overlays/overlay.hpp"
#include "dynweight/overlays/turnover_limit.hpp"
#include "dynweight/overlays/volatility_target.hpp"
#include "dynweight/overlays/weight_bounds.hpp"
#include "dynweight/policies/inverse_volatility.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "market_data.hpp"
#include "near.hpp"

using Catch::Matchers::Contains;
using dynweight::DynamicWeighter;
using dynweight::DynamicWeighterOptions;
using dynweight::Estimates;
using dynweight::Index;
using dynweight::InverseVolatility;
using dynweight::Overlaid;
using dynweight::RebalanceReason;
using dynweight::RiskParity;
using dynweight::RollingShrinkageMethod;
using dynweight::StatusCode;
using dynweight::TurnoverLimit;
using dynweight::VolatilityTarget;
using dynweight::WeightBounds;
using dynweight::test::identical;
using dynweight::test::near;
using dynweight::test::Tolerance;
using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

using Chain = Overlaid<RiskParity<double>, WeightBounds<double>, VolatilityTarget<double>,
                       TurnoverLimit<double>>;
using BoundedTarget = Overlaid<RiskParity<double>, WeightBounds<double>, VolatilityTarget<double>>;

Chain make_chain(Index n, double max_turnover = 0.2) {
  return Chain(RiskParity<double>(), WeightBounds<double>(n, 0.0, 2.5 / double(n)),
               VolatilityTarget<double>({.target = 0.10, .annualization = 252, .max_leverage = 1}),
               TurnoverLimit<double>({.max_turnover = max_turnover}));
}

BoundedTarget make_bounded_target(Index n) {
  return BoundedTarget(
      RiskParity<double>(), WeightBounds<double>(n, 0.0, 2.5 / double(n)),
      VolatilityTarget<double>({.target = 0.12, .annualization = 252, .max_leverage = 1}));
}

// Prices (N × T, one bar per column) compounding T − 1 returns (row t − 1 of `returns` is the
// return of bar t), and positive volumes.
struct Market {
  MatrixXd prices;
  MatrixXd volumes;
  [[nodiscard]] Index bars() const { return prices.cols(); }
  [[nodiscard]] Index assets() const { return prices.rows(); }
};

// Weights of a book (shares, cash) at `prices`, cash implied.
VectorXd weights_of(const VectorXd& shares, double cash, const VectorXd& prices) {
  return shares.cwiseProduct(prices) / (shares.dot(prices) + cash);
}

Market market_from_returns(const MatrixXd& returns) {
  const Index n = returns.cols();
  const Index bars = returns.rows() + 1;
  Market market;
  market.prices.resize(n, bars);
  market.volumes.resize(n, bars);
  for (Index i = 0; i < n; ++i)
    market.prices(i, 0) = 40.0 + 15.0 * double(i);
  for (Index t = 1; t < bars; ++t)
    market.prices.col(t) =
        market.prices.col(t - 1).cwiseProduct((VectorXd::Ones(n) + returns.row(t - 1).transpose()));
  for (Index t = 0; t < bars; ++t) {
    for (Index i = 0; i < n; ++i)
      market.volumes(i, t) = 2e4 * (1.0 + 0.5 * std::abs(std::sin(0.37 * double(t) + double(i))));
  }
  return market;
}

// `bars` bars of n assets whose returns alternate ±amplitude·(1 + 0.3 i); from bar `trend_from` on,
// asset 0 also gains `trend` a bar.
Market oscillating_market(Index bars, Index n, double amplitude, Index trend_from, double trend) {
  MatrixXd returns(bars - 1, n);
  for (Index t = 0; t < returns.rows(); ++t) {
    for (Index i = 0; i < n; ++i)
      returns(t, i) = amplitude * (t % 2 == 0 ? 1.0 : -1.0) * (1.0 + 0.3 * double(i));
    if (t + 1 >= trend_from)
      returns(t, 0) += trend;
  }
  return market_from_returns(returns);
}

Market correlated_market(Index bars, Index n, std::uint64_t seed) {
  return market_from_returns(dynweight::test::correlated_returns(bars - 1, n, seed));
}

// A one-factor market whose volatility jumps: return of bar t = σ_t (s_t + 0.1 z_ti), s_t = ±1.
Market regime_market(Index bars, Index n, const std::vector<std::pair<Index, double>>& regimes,
                     std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::bernoulli_distribution coin(0.5);
  MatrixXd returns(bars - 1, n);
  for (Index t = 1; t < bars; ++t) {
    double sigma = 0;
    for (const auto& [start, level] : regimes) {
      if (t >= start)
        sigma = level;
    }
    const double s = coin(engine) ? 1.0 : -1.0;
    for (Index i = 0; i < n; ++i)
      returns(t - 1, i) = sigma * (1.0 + 0.3 * double(i)) * (s + 0.1 * normal(engine));
  }
  return market_from_returns(returns);
}

// The parts of the pipeline, driven by hand: the side the weighter is checked against.
template <class Policy>
struct ByHand {
  DynamicWeighterOptions options;
  dynweight::ReturnCalculator<double> returns;
  std::optional<dynweight::RollingMoments<double>> moments;
  std::optional<dynweight::RollingShrinkage<double>> shrinkage;
  std::optional<dynweight::RollingDollarVolume<double>> adv;
  std::optional<dynweight::EwmaMoments<double>> ewma;
  std::optional<dynweight::EwmaDollarVolume<double>> ewma_adv;
  Policy policy;
  dynweight::Rebalancer<double> rebalancer;
  VectorXd shares, held_weights, targets, planned, candidate;
  double cash;
  MatrixXd shrunk;
  VectorXd shrunk_volatility;
  dynweight::Status status;
  bool has_targets = false;
  Index last_rebalance = -1;
  std::vector<double> portfolio_returns;  // r_p of the bars the book held risk

  ByHand(Index n, Policy p, const DynamicWeighterOptions& o)
      : options(o),
        returns(n, o.returns),
        policy(std::move(p)),
        rebalancer(n, o.rebalance),
        shares(VectorXd::Zero(n)),
        held_weights(VectorXd::Zero(n)),
        targets(VectorXd::Constant(n, kNaN)),
        planned(VectorXd::Constant(n, kNaN)),
        candidate(n),
        cash(o.initial_cash),
        shrunk(n, n),
        shrunk_volatility(n) {
    if (o.ewma)
      ewma.emplace(n, *o.ewma);
    else if (o.shrinkage)
      shrinkage.emplace(n, o.moments, *o.shrinkage);
    else
      moments.emplace(n, o.moments);
    if (o.volumes && o.ewma)
      ewma_adv.emplace(n, dynweight::EwmaDollarVolumeOptions{o.ewma->decay, o.ewma->adjust,
                                                             o.ewma->min_periods});
    else if (o.volumes)
      adv.emplace(n, dynweight::RollingDollarVolumeOptions{o.moments.window, 0});
  }

  const dynweight::RollingMoments<double>& window() const {
    return shrinkage ? shrinkage->moments() : *moments;
  }
  bool ready() const {
    if (ewma)  // two returns at least: one has no variance (pandas, bias = false)
      return ewma->ready() && ewma->bars() >= 2 && (!ewma_adv || ewma_adv->ready());
    return (shrinkage ? shrinkage->ready() : moments->ready()) && (!adv || adv->ready());
  }
  const VectorXd& average_dollar_volume() const {
    return ewma_adv ? ewma_adv->average() : adv->average();
  }
  VectorXd weights_at(const VectorXd& prices) const {
    return shares.cwiseProduct(prices) / (shares.dot(prices) + cash);
  }

  // The statistics; returns r_p of the bar (NaN on the first).
  double feed(const VectorXd& prices, const VectorXd& volumes) {
    double rp = kNaN;
    if (returns.update(prices)) {
      rp = held_weights.dot(returns.returns());
      if (held_weights.cwiseAbs().sum() > 0)
        portfolio_returns.push_back(rp);
      if (ewma)
        ewma->update(returns.returns());
      else if (shrinkage)
        shrinkage->update(returns.returns());
      else
        moments->update(returns.returns());
    }
    if (adv)
      adv->update(prices, volumes);
    if (ewma_adv)
      ewma_adv->update(prices, volumes);
    return rp;
  }

  // σ_short / σ_long by direct sums Σ λ^{m−k} r_k² / Σ λ^{m−k}, λ = 2^{−1/h}.
  double regime_ratio() const {
    const auto m = static_cast<Index>(portfolio_returns.size());
    if (!options.regime.enabled || m < options.regime.min_observations)
      return kNaN;
    const auto variance = [&](double halflife) {
      const double lambda = std::pow(2.0, -1.0 / halflife);
      double sum = 0, weight = 0;
      for (Index k = 0; k < m; ++k) {
        const double w = std::pow(lambda, double(m - 1 - k));
        sum += w * portfolio_returns[static_cast<std::size_t>(k)] *
               portfolio_returns[static_cast<std::size_t>(k)];
        weight += w;
      }
      return sum / weight;
    };
    return std::sqrt(variance(options.regime.short_halflife) /
                     variance(options.regime.long_halflife));
  }

  void rebalance(Index bar, const VectorXd& prices) {
    const Index n = prices.size();
    Estimates<double> estimates(n);
    dynweight::Status shrinkage_status;
    if (ewma) {
      estimates.set_mean(ewma->mean())
          .set_volatility(ewma->volatility())
          .set_covariance(ewma->covariance_lower(), dynweight::SymmetricStorage::lower);
    } else if (shrinkage) {
      shrinkage_status = shrinkage->compute(shrunk).status;
      shrunk_volatility = shrunk.diagonal().cwiseMax(0.0).cwiseSqrt();
      estimates.set_mean(window().mean())
          .set_covariance(shrunk)
          .set_covariance_lineage(shrinkage->output_id(), shrinkage->output_step())
          .set_volatility(shrunk_volatility);
    } else {
      estimates = Estimates<double>::of(*moments);
    }
    if (adv || ewma_adv)
      estimates.set_dollar_volume(average_dollar_volume());
    const VectorXd previous = weights_at(prices);
    candidate.setConstant(kNaN);
    if constexpr (requires { policy.compute(estimates, previous, candidate); })
      status = policy.compute(estimates, previous, candidate);
    else
      status = policy.compute(estimates, candidate);
    if (status.ok() && !shrinkage_status.ok())
      status.code = shrinkage_status.code;
    REQUIRE(candidate.allFinite());
    if (std::isfinite(options.rebalance.max_participation)) {
      const VectorXd adv_shares = average_dollar_volume().cwiseQuotient(prices);
      rebalancer.plan(candidate, shares, cash, prices, adv_shares);
    } else {
      rebalancer.plan(candidate, shares, cash, prices);
    }
    targets = candidate;
    has_targets = true;
    last_rebalance = bar;
    shares += rebalancer.result().shares_delta;
    cash = rebalancer.result().cash_after;
    planned = weights_at(prices);  // the book the plan leaves, at this bar's prices
  }
};

// Which triggers fire on a bar, decided by hand from the by-hand book (an independent statement
// of the documented rules).
struct Triggers {
  Index first_ready = -1;
  Index ready_bars = 0;
  bool armed = true;

  template <class Policy>
  RebalanceReason fire(const ByHand<Policy>& hand, const VectorXd& prices, double ratio) {
    const auto& o = hand.options;
    if (!std::isnan(ratio) && ratio < o.regime.lower)
      armed = true;
    RebalanceReason reasons = RebalanceReason::none;
    if (!hand.has_targets)
      reasons |= RebalanceReason::initial;
    if (o.every > 0 && ready_bars % o.every == 0)
      reasons |= RebalanceReason::calendar;
    if (o.drift_band > 0 && hand.has_targets &&
        (hand.weights_at(prices) - hand.planned).cwiseAbs().maxCoeff() > o.drift_band)
      reasons |= RebalanceReason::drift;
    if (o.regime.enabled && armed && !std::isnan(ratio) && ratio > o.regime.upper)
      reasons |= RebalanceReason::regime;
    ++ready_bars;
    return reasons;
  }
};

struct Counts {
  Index rebalances = 0;
  Index drift = 0;
  Index calendar = 0;
  Index regime = 0;
  Index held_back = 0;
};

// Runs the weighter and its parts by hand side by side over the whole market and checks, every
// bar, that they agree: bit for bit on targets, trades, book; 1e-12 on the regime ratio.
template <class Policy>
Counts run_against_hand(const Market& market, const Policy& policy,
                        const DynamicWeighterOptions& options) {
  const Index n = market.assets();
  DynamicWeighter weighter(n, policy, options);
  ByHand<Policy> hand(n, policy, options);
  Triggers triggers;
  Counts counts;
  for (Index t = 0; t < market.bars(); ++t) {
    CAPTURE(t);
    const VectorXd prices = market.prices.col(t);
    const VectorXd volumes = market.volumes.col(t);
    const auto& bar = options.volumes ? weighter.update(prices, volumes) : weighter.update(prices);
    const double rp = hand.feed(prices, volumes);
    CHECK(bar.bar == t);
    CHECK(identical(VectorXd::Constant(1, bar.portfolio_return), VectorXd::Constant(1, rp)));
    const double ratio = hand.regime_ratio();
    if (std::isnan(ratio)) {
      CHECK(std::isnan(bar.regime_ratio));
    } else {
      CHECK(bar.regime_ratio == Approx(ratio).epsilon(1e-12));
    }
    if (!hand.ready()) {
      CHECK(bar.status.code == StatusCode::not_ready);
      CHECK_FALSE(bar.rebalanced);
      CHECK(bar.reasons == RebalanceReason::none);
      continue;
    }
    const RebalanceReason expected = triggers.fire(hand, prices, ratio);
    CHECK(bar.reasons == expected);
    const bool held = expected != RebalanceReason::none && hand.last_rebalance >= 0 &&
                      options.min_bars_between > 0 &&
                      t - hand.last_rebalance < options.min_bars_between;
    CHECK(bar.held_back == held);
    const bool rebalance = expected != RebalanceReason::none && !held;
    REQUIRE(bar.rebalanced == rebalance);
    if (rebalance) {
      hand.rebalance(t, prices);
      if (dynweight::has(expected, RebalanceReason::regime))
        triggers.armed = false;
      CHECK(bar.status.code == hand.status.code);
      CHECK(bar.status.iterations == hand.status.iterations);
      CHECK(identical(weighter.plan().shares_delta, hand.rebalancer.result().shares_delta));
      CHECK(weighter.plan().cash_after == hand.rebalancer.result().cash_after);
      ++counts.rebalances;
      counts.drift += dynweight::has(expected, RebalanceReason::drift);
      counts.calendar += dynweight::has(expected, RebalanceReason::calendar);
      counts.regime += dynweight::has(expected, RebalanceReason::regime);
    }
    counts.held_back += held;
    REQUIRE(identical(weighter.targets(), hand.targets));
    // The plan's weights_after divide by its value_after, the hand's by shares·p + cash: the
    // same number by two roundings' worth of different sums.
    REQUIRE(near(weighter.planned_weights(), hand.planned, 4e-16, Tolerance::absolute));
    REQUIRE(identical(weighter.shares(), hand.shares));
    REQUIRE(weighter.cash() == hand.cash);
    hand.held_weights = hand.weights_at(prices);
    REQUIRE(identical(weighter.book_weights(), hand.held_weights));
    CHECK(bar.value == hand.shares.dot(prices) + hand.cash);
  }
  return counts;
}

// Every field of a bar's output, for twin comparisons.
template <class W>
void require_same_state(const W& a, const W& b) {
  const auto& ra = a.result();
  const auto& rb = b.result();
  REQUIRE(ra.bar == rb.bar);
  REQUIRE(ra.rebalanced == rb.rebalanced);
  REQUIRE(ra.reasons == rb.reasons);
  REQUIRE(ra.held_back == rb.held_back);
  REQUIRE(ra.status.code == rb.status.code);
  REQUIRE(
      identical(VectorXd::Constant(1, ra.regime_ratio), VectorXd::Constant(1, rb.regime_ratio)));
  REQUIRE(identical(VectorXd::Constant(1, ra.portfolio_return),
                    VectorXd::Constant(1, rb.portfolio_return)));
  REQUIRE(ra.value == rb.value);
  REQUIRE(identical(a.targets(), b.targets()));
  REQUIRE(identical(a.plan().shares_delta, b.plan().shares_delta));
  REQUIRE(identical(a.shares(), b.shares()));
  REQUIRE(a.cash() == b.cash());
  REQUIRE(identical(a.book_weights(), b.book_weights()));
  REQUIRE(identical(a.moments().covariance_lower(), b.moments().covariance_lower()));
  REQUIRE(a.regime_armed() == b.regime_armed());
}

}  // namespace

TEST_CASE("DynamicWeighter equals its parts by hand: calendar trigger", "[pipeline]") {
  const Market market = correlated_market(320, 6, 101);
  const DynamicWeighterOptions options{
      .moments = {.window = 40}, .every = 10, .rebalance = {.cost_bps = 5}};
  const Counts counts = run_against_hand(market, make_chain(6), options);
  CHECK(counts.rebalances == (320 - 40 + 9) / 10);
  CHECK(counts.calendar == counts.rebalances);
}

TEST_CASE("DynamicWeighter equals its parts by hand: drift trigger, shrinkage, ADV cap",
          "[pipeline]") {
  const Market market = correlated_market(300, 6, 202);
  const DynamicWeighterOptions options{.moments = {.window = 40},
                                       .shrinkage = RollingShrinkageMethod::ledoit_wolf,
                                       .volumes = true,
                                       .drift_band = 0.01,
                                       .rebalance = {.max_participation = 0.2, .cost_bps = 5}};
  const Counts counts = run_against_hand(market, make_bounded_target(6), options);
  CHECK(counts.drift >= 10);
  CHECK(counts.rebalances < 300 - 40 - 10);  // not every bar: the band holds in between
}

// The regime trigger of the by-hand regime tests: half-lives 5 and 60, fires above 1.3, re-arms
// below 0.9, after 20 portfolio returns.
constexpr dynweight::RegimeOptions kRegime{.enabled = true,
                                           .short_halflife = 5,
                                           .long_halflife = 60,
                                           .upper = 1.3,
                                           .lower = 0.9,
                                           .min_observations = 20};

TEST_CASE("DynamicWeighter equals its parts by hand: regime trigger, minimum gap", "[pipeline]") {
  const Market market =
      regime_market(360, 5, {{0, 0.004}, {150, 0.016}, {240, 0.004}, {300, 0.016}}, 303);
  const DynamicWeighterOptions options{.moments = {.window = 40},
                                       .shrinkage = RollingShrinkageMethod::constant_correlation,
                                       .every = 25,
                                       .regime = kRegime,
                                       .min_bars_between = 3};
  const Counts counts = run_against_hand(market, make_chain(5, 0.5), options);
  CHECK(counts.regime >= 2);
  CHECK(counts.calendar >= 10);
}

TEST_CASE("DynamicWeighter equals its parts by hand: EWMA estimates, ADV cap, regime trigger",
          "[pipeline]") {
  // pandas' ewm (half-life 10, 20 returns before ready) and RiskMetrics' λ = 0.94, each with the
  // EWMA average dollar volume of the same decay for the participation cap.
  const auto estimator =
      GENERATE(dynweight::EwmaEstimator::pandas, dynweight::EwmaEstimator::riskmetrics);
  const dynweight::EwmaDecay decay = estimator == dynweight::EwmaEstimator::pandas
                                         ? dynweight::EwmaDecay::from_halflife(10.0)
                                         : dynweight::EwmaDecay::from_alpha(0.06);
  const Market market =
      regime_market(300, 5, {{0, 0.004}, {120, 0.016}, {200, 0.004}, {260, 0.016}}, 404);
  const DynamicWeighterOptions options{
      .ewma = dynweight::EwmaOptions{.decay = decay, .min_periods = 20, .estimator = estimator},
      .volumes = true,
      .every = 15,
      .regime = kRegime,
      .rebalance = {.max_participation = 0.2, .cost_bps = 5}};
  const Counts counts = run_against_hand(market, make_chain(5, 0.5), options);
  CHECK(counts.regime >= 2);
  CHECK(counts.calendar >= 15);
}

TEST_CASE("DynamicWeighter with EWMA estimates reacts to a volatility jump before the window",
          "[pipeline]") {
  // Asset 0's volatility quadruples at bar 200. Inverse volatility, rebalanced every bar, moves
  // its weight from ~1/4 towards (1/4)/(1/4 + 3) = 1/13 (volatilities 4, 1, 1, 1). Five bars
  // later EWMA estimates (half-life 10) have gone more than 80% of the way (92% here), a 190-bar
  // window less than 40% (32%).
  const Index n = 4;
  std::mt19937_64 engine(9);
  std::normal_distribution<double> normal(0.0, 1.0);
  MatrixXd returns(299, n);
  for (Index t = 0; t < returns.rows(); ++t) {
    for (Index i = 0; i < n; ++i)
      returns(t, i) = 0.01 * normal(engine) * (i == 0 && t + 1 >= 200 ? 4.0 : 1.0);
  }
  const Market market = market_from_returns(returns);
  DynamicWeighter ewma(
      n, InverseVolatility<double>(),
      {.ewma = dynweight::EwmaOptions{.decay = dynweight::EwmaDecay::from_halflife(10)},
       .every = 1});
  DynamicWeighter window(n, InverseVolatility<double>(), {.moments = {.window = 190}, .every = 1});
  double ewma_before = 0, window_before = 0;
  for (Index t = 0; t < 205; ++t) {
    ewma.update(market.prices.col(t));
    window.update(market.prices.col(t));
    if (t == 199) {
      ewma_before = ewma.targets()(0);
      window_before = window.targets()(0);
    }
  }
  REQUIRE(ewma.ewma() != nullptr);
  CHECK(ewma.dollar_volume() == nullptr);
  // At volatility ×4, inverse volatility's weight of asset 0 falls from ~1/4 to ~1/13.
  const double full = 1.0 / 13.0;
  CAPTURE(ewma_before, ewma.targets()(0), window_before, window.targets()(0));
  CHECK(ewma_before - ewma.targets()(0) > 0.8 * (ewma_before - full));
  CHECK(window_before - window.targets()(0) < 0.4 * (window_before - full));
  CHECK_THROWS_WITH(ewma.moments(), Contains("EWMA"));
}

TEST_CASE("DynamicWeighter is not ready until the window is full, then follows the calendar",
          "[pipeline]") {
  const Index n = 4;
  const Market market = correlated_market(120, n, 7);
  DynamicWeighter weighter(n, make_chain(n), {.moments = {.window = 30}, .every = 7});
  for (Index t = 0; t < market.bars(); ++t) {
    CAPTURE(t);
    const auto& bar = weighter.update(market.prices.col(t));
    if (t < 30) {  // bar t holds t returns
      CHECK(bar.status.code == StatusCode::not_ready);
      CHECK_FALSE(bar.rebalanced);
      CHECK_FALSE(weighter.ready());
      CHECK_FALSE(weighter.has_targets());
      CHECK(weighter.targets().array().isNaN().all());
      CHECK(weighter.shares().isZero());
      continue;
    }
    CHECK(weighter.ready());
    CHECK(bar.rebalanced == ((t - 30) % 7 == 0));
    if (t == 30)
      CHECK(bar.reasons == (RebalanceReason::initial | RebalanceReason::calendar));
    else if (bar.rebalanced)
      CHECK(bar.reasons == RebalanceReason::calendar);
    else
      CHECK(bar.reasons == RebalanceReason::none);
    CHECK(weighter.last_rebalance_bar() == 30 + (t - 30) / 7 * 7);
  }
}

TEST_CASE("DynamicWeighter's drift trigger fires when and only when the band is left",
          "[pipeline]") {
  // Three assets alternating ±0.5%; from bar 30 asset 0 also climbs 1.5% a bar, so the book
  // drifts away from its targets, is rebalanced, drifts again.
  const Index n = 3;
  const Market market = oscillating_market(120, n, 0.005, 30, 0.015);
  const double band = 0.03;
  DynamicWeighter weighter(n, InverseVolatility<double>(),
                           {.moments = {.window = 20}, .drift_band = band});
  VectorXd planned;
  Index fired = 0, quiet = 0;
  for (Index t = 0; t < market.bars(); ++t) {
    CAPTURE(t);
    const VectorXd prices = market.prices.col(t);
    const VectorXd shares = weighter.shares();
    const double cash = weighter.cash();
    const bool had_targets = weighter.has_targets();
    const auto& bar = weighter.update(prices);
    if (t < 20) {
      CHECK_FALSE(bar.rebalanced);
      continue;
    }
    if (!had_targets) {
      CHECK(bar.reasons == RebalanceReason::initial);
      CHECK(bar.rebalanced);
      planned = weights_of(weighter.shares(), weighter.cash(), prices);
      continue;
    }
    // The book's weights at this bar's prices before trading, against those the last plan left.
    const bool outside = (weights_of(shares, cash, prices) - planned).cwiseAbs().maxCoeff() > band;
    CHECK(bar.rebalanced == outside);
    CHECK(bar.reasons == (outside ? RebalanceReason::drift : RebalanceReason::none));
    if (bar.rebalanced)
      planned = weights_of(weighter.shares(), weighter.cash(), prices);
    fired += outside;
    quiet += !outside;
  }
  CHECK(fired >= 3);
  CHECK(quiet >= 40);
}

TEST_CASE(
    "DynamicWeighter's drift is measured from what the plan reached, not from targets it "
    "cannot reach",
    "[pipeline]") {
  // Targets the book cannot hold: a volatility target far above the market's, levered to 150%,
  // in a backtest that cannot borrow; and lots of about 4% of the book. Measured from the
  // targets, the book would be outside a 2% band on every bar and the plan would trade nothing.
  const Index n = 3;
  // From bar 60 asset 0 climbs 1% a bar: the book drifts for real.
  const Market market = oscillating_market(100, n, 0.004, 60, 0.01);
  const double band = 0.02;
  using Levered = Overlaid<InverseVolatility<double>, VolatilityTarget<double>>;
  const Levered policy(
      InverseVolatility<double>(),
      VolatilityTarget<double>({.target = 1.0, .annualization = 252, .max_leverage = 1.5}));
  DynamicWeighter weighter(n, policy, {.moments = {.window = 20}, .drift_band = band});
  // A lot of each asset is worth ~4% of the book (1e6) at the first prices.
  weighter.set_lot_sizes((0.04 * 1e6) * market.prices.col(0).cwiseInverse());
  VectorXd planned;
  Index fired = 0;
  for (Index t = 0; t < market.bars(); ++t) {
    CAPTURE(t);
    const VectorXd prices = market.prices.col(t);
    const VectorXd shares = weighter.shares();
    const double cash = weighter.cash();
    const bool had_targets = weighter.has_targets();
    const auto& bar = weighter.update(prices);
    if (t < 20)
      continue;
    if (had_targets) {
      REQUIRE(weighter.targets().sum() > 1.2);  // beyond what the book can hold
      const bool outside =
          (weights_of(shares, cash, prices) - planned).cwiseAbs().maxCoeff() > band;
      CHECK(bar.reasons == (outside ? RebalanceReason::drift : RebalanceReason::none));
      if (t < 60)
        CHECK_FALSE(outside);  // quiet while the prices only oscillate
      fired += outside;
    }
    if (bar.rebalanced)
      planned = weights_of(weighter.shares(), weighter.cash(), prices);
  }
  // Firing once the trend moves the book (bars 60 on), not on every bar.
  CHECK(fired >= 2);
  CHECK(fired <= 20);
}

TEST_CASE(
    "DynamicWeighter's regime trigger fires on the first bar of a jump, then waits to be "
    "re-armed",
    "[pipeline]") {
  const Index n = 4;
  // 4× jumps at bars 150 and 450, a calm spell from 230: long enough for the long EWMA (half-life
  // 30) to forget the turbulence, so the second jump stands out on its first bar too.
  const Market market =
      regime_market(500, n, {{0, 0.005}, {150, 0.02}, {230, 0.005}, {450, 0.02}}, 99);
  const DynamicWeighterOptions options{.moments = {.window = 40},
                                       .regime = {.enabled = true,
                                                  .short_halflife = 5,
                                                  .long_halflife = 30,
                                                  .upper = 1.3,
                                                  .lower = 0.9,
                                                  .min_observations = 20}};
  DynamicWeighter weighter(n, RiskParity<double>(), options);
  std::vector<Index> regime_bars;
  bool rearmed_between = false;
  for (Index t = 0; t < market.bars(); ++t) {
    CAPTURE(t);
    const auto& bar = weighter.update(market.prices.col(t));
    if (dynweight::has(bar.reasons, RebalanceReason::regime)) {
      regime_bars.push_back(t);
      CHECK(bar.rebalanced);
      CHECK_FALSE(weighter.regime_armed());
    }
    if (t == 151)  // still above the threshold: a level trigger would fire again here
      CHECK(bar.regime_ratio > 1.3);
    if (t > 150 && t < 230)
      CHECK_FALSE(weighter.regime_armed());
    if (t > 230 && t < 450 && weighter.regime_armed()) {
      rearmed_between = true;
      CHECK(bar.regime_ratio < 1.3);
    }
    if (t > 40 && t < 150)
      CHECK_FALSE(bar.regime_ratio >= 1.3);
    if (t == 40)
      CHECK(bar.reasons == RebalanceReason::initial);
  }
  CHECK(regime_bars == std::vector<Index>{150, 450});
  CHECK(rearmed_between);
}

TEST_CASE("DynamicWeighter honours the minimum number of bars between rebalances", "[pipeline]") {
  const Index n = 4;
  const Market market = correlated_market(100, n, 11);
  DynamicWeighter weighter(n, make_chain(n),
                           {.moments = {.window = 20}, .every = 1, .min_bars_between = 5});
  for (Index t = 0; t < market.bars(); ++t) {
    CAPTURE(t);
    const auto& bar = weighter.update(market.prices.col(t));
    if (t < 20)
      continue;
    const bool due = (t - 20) % 5 == 0;
    CHECK(bar.rebalanced == due);
    CHECK(bar.held_back == !due);
    CHECK(dynweight::has(bar.reasons, RebalanceReason::calendar));
  }
}

TEST_CASE("DynamicWeighter allocates nothing per bar", "[pipeline][allocation]") {
  const Index n = 8;
  const Market market = correlated_market(300, n, 5);
  DynamicWeighter weighter(n, make_chain(n),
                           {.moments = {.window = 30},
                            .shrinkage = RollingShrinkageMethod::ledoit_wolf,
                            .volumes = true,
                            .every = 3,
                            .drift_band = 0.01,
                            .regime = {.enabled = true,
                                       .short_halflife = 3,
                                       .long_halflife = 30,
                                       .upper = 1.2,
                                       .lower = 1.05,
                                       .min_observations = 5},
                            .rebalance = {.max_participation = 0.3, .cost_bps = 3}});
  for (Index t = 0; t < 60; ++t)
    weighter.update(market.prices.col(t), market.volumes.col(t));
  REQUIRE(weighter.has_targets());
  Index rebalances = 0, quiet = 0;
  {
    dynweight::test::NoAllocationScope scope;
    for (Index t = 60; t < 260; ++t) {
      const auto& bar = weighter.update(market.prices.col(t), market.volumes.col(t));
      rebalances += bar.rebalanced;
      quiet += !bar.rebalanced;
    }
    CHECK(scope.allocations() == 0);
  }
  CHECK(rebalances >= 60);
  CHECK(quiet >= 60);

  // With EWMA estimates and their average dollar volume.
  DynamicWeighter ewma(n, make_chain(n),
                       {.ewma = dynweight::EwmaOptions{.min_periods = 20},
                        .volumes = true,
                        .every = 3,
                        .drift_band = 0.01,
                        .rebalance = {.max_participation = 0.3, .cost_bps = 3}});
  for (Index t = 0; t < 60; ++t)
    ewma.update(market.prices.col(t), market.volumes.col(t));
  REQUIRE(ewma.has_targets());
  rebalances = 0;
  {
    dynweight::test::NoAllocationScope scope;
    for (Index t = 60; t < 260; ++t)
      rebalances += ewma.update(market.prices.col(t), market.volumes.col(t)).rebalanced;
    CHECK(scope.allocations() == 0);
  }
  CHECK(rebalances >= 60);
}

TEST_CASE("A bad bar leaves DynamicWeighter exactly as a twin that never saw it",
          "[pipeline][errors]") {
  const Index n = 5;
  const dynweight::AssetNames names{"A", "B", "C", "D", "E"};
  const Market market = correlated_market(90, n, 17);
  const DynamicWeighterOptions options{.moments = {.window = 30},
                                       .shrinkage = RollingShrinkageMethod::ledoit_wolf,
                                       .volumes = true,
                                       .every = 4,
                                       .drift_band = 0.02,
                                       .regime = {.enabled = true,
                                                  .short_halflife = 3,
                                                  .long_halflife = 20,
                                                  .upper = 1.2,
                                                  .lower = 1.05,
                                                  .min_observations = 5},
                                       .rebalance = {.max_participation = 0.5}};
  DynamicWeighter a(n, make_chain(n), options, names);
  DynamicWeighter b(n, make_chain(n), options, names);
  for (Index t = 0; t < 50; ++t) {
    a.update(market.prices.col(t), market.volumes.col(t));
    b.update(market.prices.col(t), market.volumes.col(t));
  }
  const VectorXd prices = market.prices.col(50);
  const VectorXd volumes = market.volumes.col(50);
  const auto bad_price = [&](Index i, double value) {
    VectorXd p = prices;
    p(i) = value;
    return p;
  };
  const auto bad_volume = [&](Index i, double value) {
    VectorXd v = volumes;
    v(i) = value;
    return v;
  };
  using dynweight::Error;
  CHECK_THROWS_WITH(a.update(bad_price(2, kNaN), volumes),
                    Contains("prices[2] (asset 2 ('C')) at bar 50 is nan"));
  CHECK_THROWS_AS(a.update(bad_price(0, 0.0), volumes), Error);
  CHECK_THROWS_AS(a.update(bad_price(4, -1.0), volumes), Error);
  CHECK_THROWS_AS(a.update(bad_price(1, std::numeric_limits<double>::infinity()), volumes), Error);
  CHECK_THROWS_AS(a.update(prices.head(n - 1), volumes), Error);
  CHECK_THROWS_AS(a.update(prices, volumes.head(n - 1)), Error);
  CHECK_THROWS_WITH(a.update(prices, bad_volume(3, -5.0)), Contains("volumes[3] (asset 3 ('D'))"));
  CHECK_THROWS_AS(a.update(prices, bad_volume(0, kNaN)), Error);
  // Every engine but the dollar volume would accept this bar: only the product overflows.
  CHECK_THROWS_WITH(a.update(bad_price(1, 1e200), bad_volume(1, 1e200)), Contains("dollar volume"));
  CHECK_THROWS_WITH(a.update(prices), Contains("volumes were configured"));
  // A return of 1e100 would overflow the shrinkage's fourth-power sums (its limit: ~2.5e75 here).
  CHECK_THROWS_WITH(
      a.update(bad_price(3, prices(3) * 1e100), volumes),
      Contains("returns (from prices)[3] (asset 3 ('D'))") && Contains("fourth-power sums"));
  CHECK_THROWS_AS(a.set_book(VectorXd::Zero(n - 1), 1e6), Error);
  CHECK_THROWS_AS(a.set_book(VectorXd::Zero(n), kNaN), Error);
  CHECK_THROWS_AS(a.set_book(VectorXd::Constant(n, kNaN), 1e6), Error);
  CHECK_THROWS_WITH(a.set_book(VectorXd::Zero(n), -1.0), Contains("book value"));
  require_same_state(a, b);
  for (Index t = 50; t < 70; ++t) {
    CAPTURE(t);
    a.update(market.prices.col(t), market.volumes.col(t));
    b.update(market.prices.col(t), market.volumes.col(t));
    require_same_state(a, b);
  }
}

TEST_CASE(
    "DynamicWeighter rejects a bar whose returns overflow or whose book is bankrupt, "
    "unchanged",
    "[pipeline][errors]") {
  const Index n = 2;
  DynamicWeighter weighter(n, InverseVolatility<double>(), {.moments = {.window = 5}});
  weighter.update((VectorXd(2) << 1e-300, 10.0).finished());
  // (1e300 − 1e-300) / 1e-300 overflows: the ReturnCalculator alone would accept the prices.
  CHECK_THROWS_WITH(weighter.update((VectorXd(2) << 1e300, 10.0).finished()),
                    Contains("returns (from prices)[0]"));
  CHECK(weighter.bars() == 1);
  CHECK(weighter.returns().bars() == 1);
  CHECK(weighter.moments().count() == 0);
  // A finite return of 1e160 would overflow the window's sums (limit √max/(2W) = 1.3e153).
  CHECK_THROWS_WITH(weighter.update((VectorXd(2) << 1e-140, 10.0).finished()),
                    Contains("returns (from prices)[0]") && Contains("is 1e+160") &&
                        Contains("within ±1.3") && Contains("e+153"));
  CHECK(weighter.returns().bars() == 1);
  CHECK(weighter.moments().count() == 0);
  weighter.update((VectorXd(2) << 2e-300, 10.0).finished());  // a return of 1
  CHECK(weighter.moments().count() == 1);
  CHECK(weighter.moments().mean()(0) == 1.0);

  DynamicWeighter logs(n, InverseVolatility<double>(),
                       {.moments = {.window = 5}, .returns = dynweight::ReturnKind::log});
  logs.update((VectorXd(2) << 1e-300, 10.0).finished());
  logs.update((VectorXd(2) << 1e300, 10.0).finished());  // ln(1e600) is finite
  CHECK(std::isfinite(logs.returns().returns()(0)));

  DynamicWeighter book(n, InverseVolatility<double>(), {.moments = {.window = 5}});
  book.update((VectorXd(2) << 100.0, 10.0).finished());
  book.set_book((VectorXd(2) << 100.0, 0.0).finished(), -5000.0);  // worth 5000
  CHECK(book.value() == 5000.0);
  // At 40 the shares are worth 4000, less than the debt.
  CHECK_THROWS_WITH(book.update((VectorXd(2) << 40.0, 10.0).finished()), Contains("book value"));
  CHECK(book.bars() == 1);
  CHECK(book.value() == 5000.0);
}

// Writes `leverage` / N to every asset: targets levered as far as a test needs.
struct LeveredPolicy {
  using Scalar = double;
  double leverage = 1;
  dynweight::Status compute(const Estimates<double>& /*estimates*/, Eigen::Ref<VectorXd> weights) {
    weights.setConstant(leverage / double(weights.size()));
    return {};
  }
};
static_assert(dynweight::WeightingPolicy<LeveredPolicy>);

TEST_CASE(
    "DynamicWeighter reports targets or holdings past 2^53 lots as a status, not an exception",
    "[pipeline][errors]") {
  const Index n = 2;
  const DynamicWeighterOptions options{
      .moments = {.window = 3}, .every = 1, .rebalance = {.lot_size = 1e-8}, .initial_cash = 1e6};
  Eigen::MatrixXd prices(2, 8);
  prices << 1.00, 1.01, 0.99, 1.02, 1.00, 5e-5, 1.01, 1.00,  //
      2.00, 2.02, 1.98, 2.01, 2.03, 2.00, 2.02, 2.01;
  DynamicWeighter weighter(n, InverseVolatility<double>(), options);
  for (Index t = 0; t < 5; ++t)
    weighter.update(prices.col(t));
  const VectorXd shares = weighter.shares();
  const double cash = weighter.cash();
  // $1M at 5e-5 is ~1e18 lots of 1e-8, which the rebalancer cannot count exactly: its plan threw
  // after the engines had taken the bar. The price is valid data, so the statistics take it and
  // the rebalance reports the limit.
  dynweight::BarResult<double> bar;
  REQUIRE_NOTHROW(bar = weighter.update(prices.col(5)));
  CHECK(bar.status.code == StatusCode::numerical_issue);
  CHECK_THAT(bar.status.detail, Contains("2^53 lots"));
  CHECK(bar.uncountable_lots);
  CHECK_FALSE(bar.rebalanced);
  CHECK(weighter.bars() == 6);
  CHECK(weighter.returns().last_prices()(0) == 5e-5);
  CHECK(identical(weighter.shares(), shares));
  CHECK(weighter.cash() == cash);
  // The calendar trigger stays pending, and the next bar rebalances.
  const auto& next = weighter.update(prices.col(6));
  CHECK(next.status.ok());
  CHECK(next.rebalanced);
  CHECK_FALSE(next.uncountable_lots);

  // Targets of 1e10 (half of it per asset) at prices of 1 and 2 with 1e-8 lots: ~1e23 lots.
  DynamicWeighter levered(n, LeveredPolicy{1e10}, options);
  for (Index t = 0; t < 4; ++t)
    levered.update(prices.col(t));
  const auto& first = levered.update(prices.col(4));
  CHECK(first.status.code == StatusCode::numerical_issue);
  CHECK_FALSE(first.rebalanced);
  CHECK(levered.shares().isZero());
  CHECK(levered.cash() == 1e6);
  CHECK(dynweight::has(first.reasons, RebalanceReason::initial));  // still pending
}

// Equal weights of 1/(2N) (half in cash), or on the bars listed no weights at all: a status, or
// with `throws` an exception (a configuration error, e.g. caps sized for other assets).
struct FailingPolicy {
  using Scalar = double;
  std::vector<Index> failing_bars;
  bool throws = false;
  Index bar = 0;  // set by the test before each update
  dynweight::Status compute(const Estimates<double>& /*estimates*/, Eigen::Ref<VectorXd> weights) {
    if (std::find(failing_bars.begin(), failing_bars.end(), bar) != failing_bars.end()) {
      if (throws)
        throw dynweight::Error("FailingPolicy: misconfigured this bar");
      return {StatusCode::numerical_issue, 0, 0.0, "no weights this bar"};
    }
    weights.setConstant(0.5 / double(weights.size()));
    return {};
  }
};
static_assert(dynweight::WeightingPolicy<FailingPolicy>);

namespace {

// Two assets' prices at bar t, moving every bar (the calendar tests' market).
VectorXd seesaw_prices(Index t) {
  return (VectorXd(2) << 100.0 + double(t + t % 3), 50.0 + 0.5 * double(t) - double(t % 2))
      .finished();
}

}  // namespace

TEST_CASE("DynamicWeighter keeps a calendar trigger pending until a rebalance commits",
          "[pipeline]") {
  // Window 3: ready from bar 3 (ready bar 0); every 4: calendar bars 3, 7, 11, 15. The policy
  // gives no weights on `failing`: the trigger fired on that bar only and was lost until bar 11.
  const std::vector<Index> failing = GENERATE(std::vector<Index>{7}, std::vector<Index>{7, 8, 9});
  CAPTURE(failing);
  const Index n = 2;
  const DynamicWeighterOptions options{.moments = {.window = 3}, .every = 4};
  DynamicWeighter weighter(n, FailingPolicy{failing}, options);
  const Index recovered = failing.back() + 1;
  for (Index t = 0; t < 16; ++t) {
    CAPTURE(t);
    const VectorXd prices = seesaw_prices(t);
    weighter.policy().bar = t;
    const auto& bar = weighter.update(prices);
    const bool failed = std::find(failing.begin(), failing.end(), t) != failing.end();
    const bool scheduled = t >= 3 && (t - 3) % 4 == 0;
    const bool pending = t >= failing.front() && t <= recovered;
    CHECK(dynweight::has(bar.reasons, RebalanceReason::calendar) == (scheduled || pending));
    CHECK(bar.rebalanced == (t >= 3 && (scheduled || pending) && !failed));
    if (failed)
      CHECK(bar.status.code == StatusCode::numerical_issue);
    if (t == recovered)
      CHECK(weighter.last_rebalance_bar() == recovered);
  }
  // The schedule is not shifted: bar 15 (ready bar 12) was a calendar bar.
  CHECK(weighter.last_rebalance_bar() == 15);
}

TEST_CASE("DynamicWeighter keeps a calendar trigger pending when the policy throws",
          "[pipeline][errors]") {
  // Window 3, every 4: calendar bars 3, 7, 11, 15. The policy throws on bar 7 (and 8): the
  // statistics took the bar, the book and targets stay, and the calendar trigger fires on the
  // next bar that gets through (before the fix it was lost until bar 11).
  const std::vector<Index> throwing = GENERATE(std::vector<Index>{7}, std::vector<Index>{7, 8});
  CAPTURE(throwing);
  const Index n = 2;
  const DynamicWeighterOptions options{.moments = {.window = 3}, .every = 4};
  DynamicWeighter weighter(n, FailingPolicy{throwing, true}, options);
  const Index recovered = throwing.back() + 1;
  for (Index t = 0; t < 16; ++t) {
    CAPTURE(t);
    const VectorXd prices = seesaw_prices(t);
    weighter.policy().bar = t;
    if (std::find(throwing.begin(), throwing.end(), t) != throwing.end()) {
      const VectorXd shares = weighter.shares();
      const VectorXd targets = weighter.targets();
      CHECK_THROWS_WITH(weighter.update(prices), Contains("misconfigured"));
      CHECK(weighter.bars() == t + 1);  // the statistics took the bar
      CHECK(identical(weighter.shares(), shares));
      CHECK(identical(weighter.targets(), targets));
      CHECK(weighter.last_rebalance_bar() == 3);
      continue;
    }
    const auto& bar = weighter.update(prices);
    const bool scheduled = t >= 3 && (t - 3) % 4 == 0;
    CHECK(dynweight::has(bar.reasons, RebalanceReason::calendar) == (scheduled || t == recovered));
    CHECK(bar.rebalanced == (scheduled || t == recovered));
  }
  CHECK(weighter.last_rebalance_bar() == 15);
}

TEST_CASE("DynamicWeighter: a bad bar leaves a pending calendar trigger as a twin's",
          "[pipeline][errors]") {
  const Index n = 2;
  const DynamicWeighterOptions options{.moments = {.window = 3}, .every = 4};
  DynamicWeighter a(n, FailingPolicy{{7}}, options);
  DynamicWeighter b(n, FailingPolicy{{7}}, options);
  for (Index t = 0; t < 8; ++t) {
    a.policy().bar = b.policy().bar = t;
    a.update(seesaw_prices(t));
    b.update(seesaw_prices(t));
  }
  REQUIRE_FALSE(a.result().rebalanced);  // bar 7: calendar, no weights: pending
  a.policy().bar = b.policy().bar = 8;
  CHECK_THROWS_AS(a.update((VectorXd(2) << kNaN, 50.0).finished()), dynweight::Error);
  for (Index t = 8; t < 12; ++t) {
    CAPTURE(t);
    a.policy().bar = b.policy().bar = t;
    a.update(seesaw_prices(t));
    b.update(seesaw_prices(t));
    require_same_state(a, b);
    if (t == 8) {  // the trigger survived the rejected bar
      CHECK(dynweight::has(a.result().reasons, RebalanceReason::calendar));
      CHECK(a.result().rebalanced);
    }
  }
  CHECK(a.last_rebalance_bar() == 11);
}

TEST_CASE("DynamicWeighter is ready with two returns whatever min_periods says",
          "[pipeline][errors]") {
  // With min_periods = 1 the window is "ready" after one return, whose variance is NaN: the
  // policy threw on clean prices, after the engines had taken the bar.
  DynamicWeighter weighter(2, RiskParity<double>(),
                           {.moments = {.window = 5, .min_periods = 1}, .every = 1});
  const double p[][2] = {{1, 2}, {1.01, 2.02}, {0.99, 1.98}, {1.02, 2.01}};
  std::vector<StatusCode> codes;
  for (const auto& row : p)
    codes.push_back(weighter.update(Eigen::Vector2d(row[0], row[1])).status.code);
  CHECK(codes[0] == StatusCode::not_ready);  // no return yet
  CHECK(codes[1] == StatusCode::not_ready);  // one return: no variance
  CHECK(codes[2] == StatusCode::success);
  CHECK(codes[3] == StatusCode::success);
  CHECK(weighter.targets().allFinite());
}

TEST_CASE("DynamicWeighter rejects a portfolio return that would overflow the regime variances",
          "[pipeline][errors]") {
  // A levered book (weights 10 and −9) and returns within the window's limit make r_p ~ 1.8e154,
  // whose square would make the regime variances infinite for good: the bar is rejected, the
  // weighter stays as its twin, and the trigger goes on working.
  const auto kind = GENERATE(dynweight::ReturnKind::simple, dynweight::ReturnKind::log);
  DynamicWeighterOptions options{.moments = {.window = 2},
                                 .returns = kind,
                                 .regime = {.enabled = true, .min_observations = 1},
                                 .execute_trades = false};
  DynamicWeighter a(2, InverseVolatility<double>(), options);
  DynamicWeighter b(2, InverseVolatility<double>(), options);
  const VectorXd one = VectorXd::Ones(2);
  a.update(one);
  b.update(one);
  const VectorXd levered = (VectorXd(2) << 10.0, -9.0).finished();
  a.set_book(levered, 0.0);  // worth 1 at prices 1: weights (10, −9)
  b.set_book(levered, 0.0);
  const double limit = a.moments().input_limit();
  // Simple returns (L, L/2); for log returns, prices whose logs differ by up to ~355.
  const VectorXd jump = kind == dynweight::ReturnKind::simple
                            ? VectorXd((VectorXd(2) << 1 + limit, 1 + limit / 2).finished())
                            : VectorXd((VectorXd(2) << 1e154, 1e-154).finished());
  if (kind == dynweight::ReturnKind::log) {
    // ‖w‖₁ = 19 times a log spread of 355: far inside the limit, so this bar is accepted.
    CHECK_NOTHROW(a.update(jump));
    b.update(jump);
    require_same_state(a, b);
    return;
  }
  CHECK_THROWS_WITH(a.update(jump), Contains("portfolio return") && Contains("regime"));
  require_same_state(a, b);
  a.set_book((VectorXd(2) << 1.0, 2.0).finished(), 0.0);
  for (Index t = 0; t < 30; ++t) {
    const VectorXd prices = one * (t % 2 ? 1.01 : 0.99);
    a.update(prices);
  }
  CHECK(std::isfinite(a.result().regime_ratio));
}

TEST_CASE("DynamicWeighter in live mode: set_book with the broker's fills tracks the backtest",
          "[pipeline]") {
  const Index n = 5;
  const Market market = correlated_market(160, n, 23);
  DynamicWeighterOptions options{
      .moments = {.window = 30}, .every = 5, .drift_band = 0.05, .rebalance = {.cost_bps = 5}};
  DynamicWeighter backtest(n, make_chain(n), options);
  options.execute_trades = false;
  DynamicWeighter live(n, make_chain(n), options);
  Index rebalances = 0;
  for (Index t = 0; t < 120; ++t) {
    CAPTURE(t);
    const VectorXd before = live.shares();
    const double cash = live.cash();
    const auto& bar = live.update(market.prices.col(t));
    backtest.update(market.prices.col(t));
    CHECK(identical(live.shares(), before));  // live mode: only set_book changes the book
    CHECK(live.cash() == cash);
    if (bar.rebalanced) {
      ++rebalances;
      live.set_book(live.plan().shares_after, live.plan().cash_after);  // filled as planned
    }
    REQUIRE(identical(live.targets(), backtest.targets()));
    REQUIRE(identical(live.shares(), backtest.shares()));
    REQUIRE(live.cash() == backtest.cash());
    REQUIRE(identical(live.book_weights(), backtest.book_weights()));
    REQUIRE(live.value() == backtest.value());
  }
  CHECK(rebalances >= 18);

  // The broker says the book was liquidated: the next bar (off the calendar) sees weights of 0,
  // outside the band.
  const Index t = 121;
  REQUIRE((t - 30) % 5 != 0);
  backtest.update(market.prices.col(120));
  backtest.set_book(VectorXd::Zero(n), backtest.value());
  CHECK(backtest.book_weights().isZero());
  const auto& bar = backtest.update(market.prices.col(t));
  CHECK(bar.reasons == RebalanceReason::drift);
  CHECK(bar.rebalanced);
  CHECK(backtest.shares().minCoeff() > 0);
}

TEST_CASE("DynamicWeighterOptions rejects invalid settings", "[pipeline][errors]") {
  const auto build = [](DynamicWeighterOptions options) {
    DynamicWeighter weighter(3, InverseVolatility<double>(), options);
  };
  CHECK_THROWS_WITH(build({.every = -1}), Contains("every = -1"));
  CHECK_THROWS_WITH(build({.drift_band = kNaN}), Contains("drift_band"));
  CHECK_THROWS_WITH(build({.regime = {.enabled = true, .short_halflife = 50, .long_halflife = 20}}),
                    Contains("long_halflife"));
  CHECK_THROWS_WITH(build({.regime = {.enabled = true, .upper = 1.0, .lower = 1.1}}),
                    Contains("upper"));
  CHECK_THROWS_WITH(build({.rebalance = {.max_participation = 0.1}}), Contains("volumes"));
  CHECK_THROWS_WITH(build({.initial_cash = 0}), Contains("initial_cash"));
  CHECK_THROWS_WITH(build({.moments = {.window = 1}}), Contains("window"));
  CHECK_THROWS_WITH(
      build({.ewma = dynweight::EwmaOptions{}, .shrinkage = RollingShrinkageMethod::oas}),
      Contains("shrinkage") && Contains("unset with ewma"));
  CHECK_THROWS_WITH(build({.ewma = dynweight::EwmaOptions{.min_periods = -1}}),
                    Contains("min_periods"));
  // α = 1: the bias-corrected pandas covariance is undefined for good (it threw on every bar).
  CHECK_THROWS_WITH(
      build({.ewma = dynweight::EwmaOptions{.decay = dynweight::EwmaDecay::from_alpha(1.0)}}),
      Contains("ewma.decay (alpha)"));
  CHECK_NOTHROW(
      build({.ewma = dynweight::EwmaOptions{.decay = dynweight::EwmaDecay::from_alpha(1.0),
                                            .estimator = dynweight::EwmaEstimator::riskmetrics}}));
  // With EWMA estimates the window's options are not read.
  CHECK_NOTHROW(build({.moments = {.window = 1}, .ewma = dynweight::EwmaOptions{}}));
  CHECK_THROWS_AS(DynamicWeighter(3, InverseVolatility<double>(), {}, {"a", "b"}),
                  dynweight::Error);
  CHECK_NOTHROW(build({.regime = {.enabled = false, .short_halflife = 50, .long_halflife = 20}}));
}

TEST_CASE("RebalanceReason masks print as their reasons in a fixed order", "[pipeline]") {
  using dynweight::RebalanceReason;
  CHECK(dynweight::to_string(RebalanceReason::none, "|").empty());
  CHECK(dynweight::to_string(RebalanceReason::drift, "|") == "drift");
  CHECK(dynweight::to_string(RebalanceReason::regime | RebalanceReason::calendar, "|") ==
        "calendar|regime");
  CHECK(dynweight::to_string(RebalanceReason::regime | RebalanceReason::drift |
                                 RebalanceReason::calendar | RebalanceReason::initial,
                             " + ") == "initial + calendar + drift + regime");
  CHECK(dynweight::to_string(RebalanceReason::calendar) == "calendar");
}
