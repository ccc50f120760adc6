// Streaming risk parity on a live feed loop: bars arrive one at a time, DynamicWeighter turns
// each into targets and a trade plan when a trigger fires, and a simulated broker fills the plan;
// its fills, not the plan, become the book (execute_trades = false, then set_book).
//
// The feed is a seeded synthetic market of 8 assets (one common factor plus noise) whose
// volatility jumps 2.5x at bar 400: the regime trigger (short/long EWMA volatility of the
// portfolio's return) rebalances at once instead of waiting for the monthly calendar. The policy
// is risk parity on the 60-bar covariance, scaled to 10% annualised volatility, with at most 10%
// one-way turnover per rebalance (so the book is built up over the first rebalances, and TE, the
// tracking error ||w - w*|| to the turnover-limited targets, is the rounding to whole shares).
// The broker pays 2 bp of slippage and the 5 bp commission.
//
//   ./build/dev/examples/live_risk_parity_example

#include <fmt/core.h>

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <string>

#include "dynweight/overlays/overlay.hpp"
#include "dynweight/overlays/turnover_limit.hpp"
#include "dynweight/overlays/volatility_target.hpp"
#include "dynweight/pipeline/dynamic_weighter.hpp"
#include "dynweight/policies/risk_parity.hpp"

namespace {

using dynweight::Index;
using Eigen::VectorXd;

constexpr Index kAssets = 8;
constexpr Index kBars = 800;
constexpr Index kJump = 400;  // the volatility regime changes here
constexpr double kSlippage = 2e-4;

// The feed: a seeded generator called once per bar (a stand-in for a market-data callback).
class SyntheticFeed {
 public:
  explicit SyntheticFeed(std::uint64_t seed)
      : m_state(seed), m_prices(VectorXd::Constant(kAssets, 50.0)) {
    for (Index i = 0; i < kAssets; ++i)
      m_prices(i) *= 1.0 + 0.25 * static_cast<double>(i);
  }

  const VectorXd& next_bar(Index bar) {
    const double scale = bar < kJump ? 1.0 : 2.5;
    const double market = gaussian();
    for (Index i = 0; i < kAssets; ++i) {
      const double vol = scale * (0.006 + 0.002 * static_cast<double>(i));  // daily
      m_prices(i) *= std::exp(2e-4 + vol * (0.5 * market + 0.866 * gaussian()));
    }
    return m_prices;
  }

 private:
  double uniform() {
    m_state = m_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (static_cast<double>(m_state >> 11) + 0.5) * 0x1.0p-53;
  }
  double gaussian() {
    const double radius = std::sqrt(-2.0 * std::log(uniform()));
    return radius * std::cos(6.283185307179586 * uniform());
  }

  std::uint64_t m_state;
  VectorXd m_prices;
};

std::string reasons_text(dynweight::RebalanceReason reasons) {
  using dynweight::RebalanceReason;
  std::string text;
  for (const RebalanceReason reason : {RebalanceReason::initial, RebalanceReason::calendar,
                                       RebalanceReason::drift, RebalanceReason::regime}) {
    if (dynweight::has(reasons, reason))
      text.append(text.empty() ? "" : "+").append(dynweight::to_string(reason));
  }
  return text;
}

}  // namespace

int main() {
  using namespace dynweight;
  Overlaid policy(RiskParity<double>(),
                  VolatilityTarget<double>({.target = 0.10, .annualization = 252}),
                  TurnoverLimit<double>({.max_turnover = 0.10}));
  DynamicWeighter weighter(kAssets, std::move(policy),
                           {.moments = {.window = 60},
                            .every = 21,
                            .regime = {.enabled = true,
                                       .short_halflife = 10,
                                       .long_halflife = 100,
                                       .upper = 1.8,
                                       .lower = 1.2},
                            .rebalance = {.lot_size = 1, .cost_bps = 5},
                            .initial_cash = 1e6,
                            .execute_trades = false});

  // The broker's book: changed only by fills.
  VectorXd shares = VectorXd::Zero(kAssets);
  double cash = 1e6;
  SyntheticFeed feed(42);

  fmt::print("{:>5} {:<16} {:>6} {:>9} {:>9} {:>9} {:>14}\n", "bar", "reasons", "ratio", "turnover",
             "TE before", "TE after", "value");
  for (Index t = 0; t < kBars; ++t) {
    const VectorXd& prices = feed.next_bar(t);
    const auto& bar = weighter.update(prices);
    if (!bar.rebalanced)
      continue;
    // Fill the plan: every order at the bar's price plus slippage, commission as planned.
    const TradePlan<double>& plan = weighter.plan();
    for (Index i = 0; i < kAssets; ++i) {
      const double delta = plan.shares_delta(i);
      if (delta == 0.0)
        continue;
      const double fill_price = prices(i) * (1.0 + (delta > 0 ? kSlippage : -kSlippage));
      shares(i) += delta;
      cash -= delta * fill_price + plan.cost(i);
    }
    weighter.set_book(shares, cash);
    fmt::print(
        "{:>5} {:<16} {:>6} {:>8.2f}% {:>8.2f}% {:>8.2f}% {:>14.2f}\n", bar.bar,
        reasons_text(bar.reasons),
        std::isnan(bar.regime_ratio) ? std::string("-") : fmt::format("{:.2f}", bar.regime_ratio),
        100 * plan.turnover, 100 * plan.tracking_error_before, 100 * plan.tracking_error,
        weighter.value());
  }
  fmt::print("final: value {:.2f}, cash {:.2f}, invested {:.1f}%\n", weighter.value(),
             weighter.cash(), 100 * weighter.book_weights().sum());
  return 0;
}
