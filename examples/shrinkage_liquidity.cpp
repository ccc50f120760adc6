// Shrinkage + liquidity scaling on a large universe: risk parity on a shrunk covariance, capped
// by what each asset's trading volume can absorb.
//
// 300 assets in 10 sectors (a market factor, a sector factor each and idiosyncratic noise, 250
// daily bars of seeded synthetic prices and share volumes). Every bar updates a 120-bar
// RollingShrinkage (Ledoit–Wolf 2003, toward constant correlation: with 120 observations of 300
// assets the sample covariance is singular, so risk parity needs the shrinkage) and a 120-bar
// average dollar volume, and computes
//   LiquidityScaled<CorrelationShrinkage<RiskParity>>  (cap mode: $4B, 10% of ADV per asset).
// It prints the last bar's intensity, the assets at their liquidity cap, the cash left, the ten
// largest weights with their caps, and the time per bar.
//
//   ./build/dev/examples/shrinkage_liquidity_example

#include <fmt/core.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "dynweight/estimators/rolling_shrinkage.hpp"
#include "dynweight/policies/correlation_shrinkage.hpp"
#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/liquidity_scaled.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "dynweight/stats/dollar_volume.hpp"
#include "dynweight/stats/returns.hpp"

namespace {

using dynweight::Index;
using Eigen::VectorXd;

constexpr Index kAssets = 300;
constexpr Index kSectors = 10;
constexpr Index kBars = 250;
constexpr Index kWindow = 120;

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

}  // namespace

int main() {
  Draws draws(20261126);
  std::vector<std::string> names;
  VectorXd prices(kAssets), beta(kAssets), sector_beta(kAssets), idio(kAssets), shares(kAssets);
  for (Index i = 0; i < kAssets; ++i) {
    names.push_back(fmt::format("S{:02}_{:03}", i % kSectors, i));
    prices(i) = draws.log_uniform(5, 500);
    beta(i) = draws.log_uniform(0.5, 1.5);
    sector_beta(i) = draws.log_uniform(0.3, 1.0);
    idio(i) = draws.log_uniform(0.008, 0.03);
    shares(i) = draws.log_uniform(2e7, 2e10) / prices(i);  // typical shares traded a day
  }

  dynweight::ReturnCalculator<double> returns(kAssets);
  dynweight::RollingShrinkage<double> shrinkage(
      kAssets, {.window = kWindow}, dynweight::RollingShrinkageMethod::constant_correlation, names);
  dynweight::RollingDollarVolume<double> adv(kAssets, {.window = kWindow}, names);
  const dynweight::LiquidityOptions liquidity{.capital = 4e9, .participation = 0.10};
  using Shrunk = dynweight::CorrelationShrinkage<dynweight::RiskParity<double>>;
  dynweight::LiquidityScaled<Shrunk> policy(Shrunk(dynweight::RiskParity<double>(), shrinkage),
                                            liquidity);

  VectorXd volumes(kAssets), sectors(kSectors), weights(kAssets);
  dynweight::Status status = dynweight::Status::not_ready("no bar yet");
  std::chrono::steady_clock::duration busy{};
  Index timed = 0;
  for (Index bar = 0; bar < kBars; ++bar) {
    const double market = 0.009 * draws.normal();
    for (Index s = 0; s < kSectors; ++s)
      sectors(s) = 0.006 * draws.normal();
    for (Index i = 0; i < kAssets; ++i) {
      const double r =
          beta(i) * market + sector_beta(i) * sectors(i % kSectors) + idio(i) * draws.normal();
      prices(i) *= std::exp(r + 0.0002);
      volumes(i) = std::round(shares(i) * std::exp(0.4 * draws.normal()) * (1 + 40 * std::abs(r)));
    }
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
  for (Index i = 0; i < kAssets; ++i) {
    if (weights(i) >= caps(i)) {
      ++capped;
      capped_weight += weights(i);
    }
  }
  fmt::print("{} assets, {} bars, {}-bar window: risk parity on a constant-correlation shrinkage\n",
             kAssets, kBars, kWindow);
  fmt::print("shrinkage intensity {:.4f} toward average correlation {:.4f}\n", shrunk.intensity,
             shrunk.target_parameter);
  fmt::print(
      "liquidity: ${:.1f}B, at most {:.0f}% of ADV per asset: {} assets at their cap, "
      "holding {:.2f}%\n",
      liquidity.capital / 1e9, 100 * liquidity.participation, capped, 100 * capped_weight);
  fmt::print("invested {:.4f}%, cash left {:.4f}%; status {}\n\n", 100 * weights.sum(),
             100 * policy.cash(), dynweight::to_string(status.code));

  std::vector<Index> order(kAssets);
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
