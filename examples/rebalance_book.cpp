// Rebalances a mixed book, 30 US equities and a 4-coin crypto sleeve, to risk-parity targets, in
// whole lots, after costs, within a no-trade band, a participation cap and a cash buffer.
//
// Prices are a seeded synthetic market (a market factor, a crypto factor and idiosyncratic noise,
// 250 daily bars). The book was put at risk parity a month ago and has drifted since; today's
// targets are risk parity on the 120-day covariance of RollingMoments, 98% invested. Some
// equities trade in round lots of 100, the coins in lots of 0.0001.
//
//   ./build/dev/examples/rebalance_book_example

#include <fmt/core.h>

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "dynweight/rebalance/rebalancer.hpp"
#include "dynweight/stats/returns.hpp"
#include "dynweight/stats/rolling_moments.hpp"

namespace {

using dynweight::Index;
using Eigen::VectorXd;

constexpr Index kEquities = 30;
constexpr Index kBars = 250;
constexpr Index kDrift = 21;  // trading days since the last rebalance
constexpr double kCapital = 25e6;
constexpr double kInvested = 0.98;  // target weight of the assets; cash is the rest

// Portable draws (the std:: distributions differ between standard libraries).
class Draws {
 public:
  explicit Draws(std::uint64_t seed) : m_engine(seed) {}
  double uniform() { return (static_cast<double>(m_engine() >> 11) + 0.5) * 0x1.0p-53; }
  double log_uniform(double low, double high) {
    return low * std::exp(uniform() * std::log(high / low));
  }
  double normal() {  // Box-Muller
    const double radius = std::sqrt(-2.0 * std::log(uniform()));
    return radius * std::cos(6.283185307179586 * uniform());
  }

 private:
  std::mt19937_64 m_engine;
};

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

}  // namespace

int main() {
  const std::vector<std::string> names = {
      "AAPL", "MSFT", "AMZN", "GOOGL", "META", "NVDA", "JPM",  "V",   "JNJ",  "WMT",  "PG",  "XOM",
      "UNH",  "HD",   "MA",   "CVX",   "KO",   "PEP",  "ABBV", "MRK", "COST", "AVGO", "LLY", "BAC",
      "TMO",  "MCD",  "CSCO", "ACN",   "DIS",  "ADBE", "BTC",  "ETH", "SOL",  "LINK"};
  const auto n = static_cast<Index>(names.size());
  Draws draws(20261125);

  // The market: starting prices, factor loadings, idiosyncratic vols, ADV in shares (or coins).
  VectorXd prices(n), beta(n), idio(n), adv(n), lots(n);
  for (Index i = 0; i < n; ++i) {
    const bool coin = i >= kEquities;
    prices(i) = coin ? std::vector<double>{61000, 3100, 145, 14.5}[std::size_t(i - kEquities)]
                     : std::round(draws.log_uniform(15, 900) * 100) / 100;
    beta(i) = coin ? 0.3 : draws.log_uniform(0.6, 1.6);
    idio(i) = coin ? draws.log_uniform(0.015, 0.03) : draws.log_uniform(0.008, 0.022);
    adv(i) = std::round(draws.log_uniform(coin ? 2e8 : 2e6, coin ? 2e9 : 4e8) / prices(i));
    lots(i) = coin ? 0.0001 : (i % 3 == 0 ? 100 : 1);
  }

  dynweight::ReturnCalculator<double> returns(n);
  dynweight::RollingMoments<double> moments(n, {.window = 120}, names);
  dynweight::RiskParity<double> policy;
  VectorXd shares = VectorXd::Zero(n);
  double cash = kCapital;
  for (Index bar = 0; bar < kBars; ++bar) {
    const double market = 0.010 * draws.normal(), crypto = 0.035 * draws.normal();
    for (Index i = 0; i < n; ++i) {
      const double r =
          beta(i) * market + (i >= kEquities ? crypto : 0.0) + idio(i) * draws.normal();
      prices(i) *= std::exp(r + 0.0003);
    }
    if (returns.update(prices))
      moments.update(returns.returns());
    if (bar == kBars - 1 - kDrift) {  // last month's rebalance: whole lots at that day's targets
      const VectorXd w = targets(policy, moments);
      for (Index i = 0; i < n; ++i)
        shares(i) = std::floor(w(i) * kCapital / prices(i) / lots(i)) * lots(i);
      cash = kCapital - shares.dot(prices);
    }
  }
  const VectorXd target = targets(policy, moments);

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
