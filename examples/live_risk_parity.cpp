// Streaming risk parity on a live feed loop: bars arrive one at a time, DynamicWeighter turns
// each into targets and a trade plan when a trigger fires, and a simulated broker fills the plan;
// its fills, not the plan, become the book (execute_trades = false, then set_book).
//
// The feed replays the first 8 assets of a `dynweight sample` market row by row (a stand-in for a
// market-data callback). The sample's market has calm and turbulent regimes: when turbulence
// starts, the regime trigger (short/long EWMA volatility of the portfolio's return) rebalances at
// once instead of waiting for the monthly calendar. The policy is risk parity on the 60-bar
// covariance, scaled to 10% annualised volatility, with at most 10% one-way turnover per rebalance
// (so the book is built up over the first rebalances, and TE, the tracking error ||w - w*|| to the
// turnover-limited targets, is the rounding to whole shares). The broker pays 2 bp of slippage and
// the 5 bp commission.
//
//   ./build/dev/tools/dynweight sample --assets 300 --days 1000 --seed 7 --out build/sample
//   ./build/dev/examples/live_risk_parity_example build/sample

#include <fmt/core.h>

#include <Eigen/Core>
#include <cmath>
#include <string>

#include "dynweight/overlays/overlay.hpp"
#include "dynweight/overlays/turnover_limit.hpp"
#include "dynweight/overlays/volatility_target.hpp"
#include "dynweight/pipeline/dynamic_weighter.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "sample_market.hpp"

namespace {

using dynweight::Index;
using Eigen::VectorXd;

constexpr const char* kSampleOptions = "--assets 300 --days 1000 --seed 7";
constexpr Index kAssets = 8;
constexpr double kSlippage = 2e-4;

// The feed: one bar of prices per call, from the sample's first kAssets columns.
class ReplayFeed {
 public:
  explicit ReplayFeed(const examples::SampleMarket& market)
      : m_prices(market.prices.leftCols(kAssets).transpose()) {}

  [[nodiscard]] bool done() const { return m_next == m_prices.cols(); }
  Eigen::Ref<const VectorXd> next_bar() { return m_prices.col(m_next++); }

 private:
  Eigen::MatrixXd m_prices;  // assets × bars: a bar is a contiguous column
  Index m_next = 0;
};

void stream(const examples::SampleMarket& market) {
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
  ReplayFeed feed(market);

  fmt::print("{:>5} {:<16} {:>6} {:>9} {:>9} {:>9} {:>14}\n", "bar", "reasons", "ratio", "turnover",
             "TE before", "TE after", "value");
  while (!feed.done()) {
    const Eigen::Ref<const VectorXd> prices = feed.next_bar();
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
        to_string(bar.reasons, "+"),
        std::isnan(bar.regime_ratio) ? std::string("-") : fmt::format("{:.2f}", bar.regime_ratio),
        100 * plan.turnover, 100 * plan.tracking_error_before, 100 * plan.tracking_error,
        weighter.value());
  }
  fmt::print("final: value {:.2f}, cash {:.2f}, invested {:.1f}%\n", weighter.value(),
             weighter.cash(), 100 * weighter.book_weights().sum());
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_on_sample(argc, argv, kSampleOptions, stream);
}
