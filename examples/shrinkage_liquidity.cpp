// Shrinkage + liquidity scaling on a large universe: risk parity on a shrunk covariance, capped
// by what each asset's trading volume can absorb.
//
// The market is a `dynweight sample` market of 300 assets (a market factor, sector factors, calm
// and turbulent regimes), its last 250 daily bars of prices and share volumes. Every bar updates a
// 120-bar RollingShrinkage (Ledoit–Wolf 2003, toward constant correlation: with 120 observations
// of 300 assets the sample covariance is singular, so risk parity needs the shrinkage) and a
// 120-bar average dollar volume, and computes
//   LiquidityScaled<CorrelationShrinkage<RiskParity>>  (cap mode: $4B, 10% of ADV per asset).
// It prints the last bar's intensity, the assets at their liquidity cap, the cash left, the ten
// largest weights with their caps, and the time per bar.
//
//   ./build/dev/tools/dynweight sample --assets 300 --days 1000 --seed 7 --out build/sample
//   ./build/dev/examples/shrinkage_liquidity_example build/sample

#include <fmt/core.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "dynweight/estimators/rolling_shrinkage.hpp"
#include "dynweight/policies/correlation_shrinkage.hpp"
#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/liquidity_scaled.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "dynweight/stats/dollar_volume.hpp"
#include "dynweight/stats/returns.hpp"
#include "sample_market.hpp"

namespace {

using dynweight::Index;
using Eigen::VectorXd;

constexpr const char* kSampleOptions = "--assets 300 --days 1000 --seed 7";
constexpr Index kBars = 250;
constexpr Index kWindow = 120;

void weigh(const examples::SampleMarket& market) {
  const Index assets = market.prices.cols();
  if (market.prices.rows() < kBars)
    throw std::invalid_argument(fmt::format("the sample needs at least {} days", kBars));
  const Index first = market.prices.rows() - kBars;
  const std::vector<std::string>& names = market.names;

  dynweight::ReturnCalculator<double> returns(assets);
  dynweight::RollingShrinkage<double> shrinkage(
      assets, {.window = kWindow}, dynweight::RollingShrinkageMethod::constant_correlation, names);
  dynweight::RollingDollarVolume<double> adv(assets, {.window = kWindow}, names);
  const dynweight::LiquidityOptions liquidity{.capital = 4e9, .participation = 0.10};
  using Shrunk = dynweight::CorrelationShrinkage<dynweight::RiskParity<double>>;
  dynweight::LiquidityScaled<Shrunk> policy(Shrunk(dynweight::RiskParity<double>(), shrinkage),
                                            liquidity);

  VectorXd prices(assets), volumes(assets), weights(assets);
  dynweight::Status status = dynweight::Status::not_ready("no bar yet");
  std::chrono::steady_clock::duration busy{};
  Index timed = 0;
  for (Index bar = 0; bar < kBars; ++bar) {
    prices = market.prices.row(first + bar).transpose();
    volumes = market.volumes.row(first + bar).transpose();
    const auto start = std::chrono::steady_clock::now();
    adv.update(prices, volumes);
    if (returns.update(prices))
      shrinkage.update(returns.returns());
    if (!shrinkage.ready() || !adv.ready())
      continue;
    auto estimates = dynweight::Estimates<double>::of(shrinkage.moments());
    estimates.set_dollar_volume(adv.average());
    status = policy.compute(estimates, weights);
    busy += std::chrono::steady_clock::now() - start;
    ++timed;
  }

  const dynweight::ShrinkageResult& shrunk = policy.inner().shrinkage();
  const VectorXd& caps = policy.capacity();
  Index capped = 0;
  double capped_weight = 0;
  for (Index i = 0; i < assets; ++i) {
    if (weights(i) >= caps(i)) {
      ++capped;
      capped_weight += weights(i);
    }
  }
  fmt::print("{} assets, {} bars, {}-bar window: risk parity on a constant-correlation shrinkage\n",
             assets, kBars, kWindow);
  fmt::print("shrinkage intensity {:.4f} toward average correlation {:.4f}\n", shrunk.intensity,
             shrunk.target_parameter);
  fmt::print(
      "liquidity: ${:.1f}B, at most {:.0f}% of ADV per asset: {} assets at their cap, "
      "holding {:.2f}%\n",
      liquidity.capital / 1e9, 100 * liquidity.participation, capped, 100 * capped_weight);
  fmt::print("invested {:.4f}%, cash left {:.4f}%; status {}\n\n", 100 * weights.sum(),
             100 * policy.cash(), dynweight::to_string(status.code));

  std::vector<Index> order(assets);
  std::iota(order.begin(), order.end(), Index{0});
  std::partial_sort(order.begin(), order.begin() + 10, order.end(),
                    [&](Index a, Index b) { return weights(a) > weights(b); });
  fmt::print("{:<8} {:>8} {:>8} {:>11} {:>9}\n", "asset", "weight", "cap", "ADV ($M)", "vol (ann)");
  for (Index k = 0; k < 10; ++k) {
    const Index i = order[static_cast<std::size_t>(k)];
    fmt::print("{:<8} {:>7.3f}% {:>7.3f}% {:>11.1f} {:>8.1f}%{}\n",
               names[static_cast<std::size_t>(i)], 100 * weights(i), 100 * caps(i),
               adv.average()(i) / 1e6,
               100 * std::sqrt(252 * policy.inner().shrunk_covariance()(i, i)),
               weights(i) >= caps(i) ? "  at cap" : "");
  }
  const double micros = std::chrono::duration<double, std::micro>(busy).count() / double(timed);
  fmt::print("\ntime per bar (update + compute, mean of {} bars): {:.0f} us\n", timed, micros);
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_on_sample(argc, argv, kSampleOptions, weigh);
}
