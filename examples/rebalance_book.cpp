// Rebalances a mixed book, 30 equities and a 4-coin crypto sleeve, to risk-parity targets, in
// whole lots, after costs, within a no-trade band, a participation cap and a cash buffer.
//
// The market is the first 34 assets of a `dynweight sample` market (its last 250 days); the last
// four stand in for the coins. The book was put at risk parity a month ago and has drifted since;
// today's targets are risk parity on the 120-day covariance of RollingMoments, 98% invested. One
// equity in three trades in round lots of 100, the coins in lots of 0.0001; the participation cap
// is on the 20-day average of the sample's share volumes.
//
//   ./build/dev/tools/dynweight sample --assets 300 --days 1000 --seed 7 --out build/sample
//   ./build/dev/examples/rebalance_book_example build/sample

#include <fmt/core.h>

#include <Eigen/Core>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "dynweight/rebalance/rebalancer.hpp"
#include "dynweight/stats/returns.hpp"
#include "dynweight/stats/rolling_moments.hpp"
#include "sample_market.hpp"

namespace {

using dynweight::Index;
using Eigen::VectorXd;

constexpr const char* kSampleOptions = "--assets 300 --days 1000 --seed 7";
constexpr Index kEquities = 30;
constexpr Index kCoins = 4;
constexpr Index kBars = 250;
constexpr Index kDrift = 21;    // trading days since the last rebalance
constexpr Index kAdvDays = 20;  // days in the average volume
constexpr double kCapital = 25e6;
constexpr double kInvested = 0.98;  // target weight of the assets; cash is the rest

// Risk parity on the window's covariance, scaled to the invested fraction.
VectorXd targets(dynweight::RiskParity<double>& policy,
                 const dynweight::RollingMoments<double>& moments) {
  VectorXd weights(moments.assets());
  const dynweight::Status status =
      policy.compute(dynweight::Estimates<double>::of(moments), weights);
  if (!status.ok())
    fmt::print("risk parity: {}\n", dynweight::to_string(status.code));
  return kInvested * weights;
}

void rebalance(const examples::SampleMarket& market) {
  const Index n = kEquities + kCoins;
  if (market.prices.cols() < n || market.prices.rows() < kBars)
    throw std::invalid_argument(
        fmt::format("the sample needs at least {} assets and {} days", n, kBars));
  const Index first = market.prices.rows() - kBars;
  const std::vector<std::string> names(market.names.begin(), market.names.begin() + n);
  VectorXd lots(n);
  for (Index i = 0; i < n; ++i)
    lots(i) = i >= kEquities ? 0.0001 : (i % 3 == 0 ? 100 : 1);

  dynweight::ReturnCalculator<double> returns(n);
  dynweight::RollingMoments<double> moments(n, {.window = 120}, names);
  dynweight::RiskParity<double> policy;
  VectorXd prices(n);
  VectorXd shares = VectorXd::Zero(n);
  double cash = kCapital;
  for (Index bar = 0; bar < kBars; ++bar) {
    prices = market.prices.row(first + bar).head(n).transpose();
    if (returns.update(prices))
      moments.update(returns.returns());
    if (bar == kBars - 1 - kDrift) {  // last month's rebalance: whole lots at that day's targets
      const VectorXd w = targets(policy, moments);
      cash = kCapital;
      for (Index i = 0; i < n; ++i) {
        shares(i) = std::floor(w(i) * kCapital / prices(i) / lots(i)) * lots(i);
        cash -= shares(i) * prices(i);
      }
    }
  }
  const VectorXd target = targets(policy, moments);
  const VectorXd adv = market.volumes.bottomRows(kAdvDays).leftCols(n).colwise().mean().transpose();

  dynweight::RebalanceOptions options;
  options.cost_bps = 5;                  // commission and half-spread
  options.fee_per_trade = 1.0;           // ticket fee
  options.band = 0.002;                  // leave weights within 0.2% of target alone
  options.min_notional = 1000;           // no order below $1,000
  options.max_participation = 0.05;      // at most 5% of a day's volume
  options.cash_buffer_fraction = 0.005;  // keep 0.5% in cash after costs
  dynweight::Rebalancer<double> rebalancer(n, options, &names);
  rebalancer.set_lot_sizes(lots);
  const dynweight::Status status = rebalancer.plan(target, shares, cash, prices, adv);
  const dynweight::TradePlan<double>& plan = rebalancer.result();

  const double value = plan.value_before;
  fmt::print(
      "book {:.2f}, cash {:.2f} ({:.2f}%); targets: risk parity, 120-day window, {:.0f}% "
      "invested\n\n",
      value, cash, 100 * cash / value, 100 * kInvested);
  fmt::print("{:<6} {:>7} {:>10} {:>14} {:>13} {:>8} {:>7} {:>7} {:>7}  {}\n", "asset", "lot",
             "price", "trade", "notional", "cost", "w now", "w after", "target", "limit");
  for (Index i = 0; i < n; ++i) {
    const dynweight::TradeLimit limit = plan.limits[std::size_t(i)];
    if (plan.shares_delta(i) == 0 && limit == dynweight::TradeLimit::band)
      continue;  // inside the band: nothing to say
    fmt::print(
        "{:<6} {:>7g} {:>10.2f} {:>+14.10g} {:>+13.2f} {:>8.2f} {:>6.2f}% {:>6.2f}% {:>6.2f}%  "
        "{}\n",
        names[std::size_t(i)], lots(i), prices(i), plan.shares_delta(i) + 0.0,
        plan.notional(i) + 0.0, plan.cost(i), 100 * shares(i) * prices(i) / value,
        100 * plan.weights_after(i), 100 * target(i), dynweight::to_string(limit));
  }
  Index banded = 0;
  for (const dynweight::TradeLimit limit : plan.limits)
    banded += limit == dynweight::TradeLimit::band ? 1 : 0;
  fmt::print("\n{} trades, {} assets left inside the band\n", plan.trades, banded);
  fmt::print("bought {:.2f}, sold {:.2f}, turnover {:.2f}%, costs {:.2f} ({:.2f} bps of value)\n",
             plan.buy_notional, plan.sell_notional, 100 * plan.turnover, plan.total_cost,
             1e4 * plan.total_cost / value);
  fmt::print("cash after {:.2f} (floor {:.2f}); tracking error {:.4f}% -> {:.4f}%\n",
             plan.cash_after, plan.cash_floor, 100 * plan.tracking_error_before,
             100 * plan.tracking_error);
  fmt::print("status: {}{}{}\n", dynweight::to_string(status.code), status.ok() ? "" : ": ",
             status.detail);
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_on_sample(argc, argv, kSampleOptions, rebalance);
}
