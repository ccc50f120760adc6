// The whole per-bar pipeline, beside the floor of its O(N²) statistics update:
//   BM_PipelineStep/N             one bar that rebalances (calendar every bar): returns → rolling
//                                 window + Ledoit–Wolf shrinkage (RollingShrinkage) → Σ̂ →
//                                 warm-started risk parity → weight bounds (0, 2.5/N) → volatility
//                                 target (10%, A = 252, leverage <= 1) → turnover limit (5%) →
//                                 whole-lot plan → book updated;
//   BM_PipelineStepNoRebalance/N  one bar that does not: the same statistics and the drift and
//                                 regime triggers evaluated (neither fires);
//   BM_PipelineStepByHand/N       the rebalancing bar's parts called by hand, as a user without
//                                 DynamicWeighter would (ReturnCalculator, RollingShrinkage,
//                                 the same policy chain, Rebalancer, the book kept in vectors):
//                                 the sum of the parts, against which the pipeline's own overhead
//                                 is measured;
//   BM_PipelineStepEwma/N, BM_PipelineStepEwmaNoRebalance/N
//                                 the same two bars on EWMA estimates (half-life 60: EwmaMoments,
//                                 one rank-1 pass a bar), risk parity behind a fixed shrinkage
//                                 (δ = 0.2 toward μI, CorrelationShrinkage: the weighter's live
//                                 shrinkage is of the window only, and an EWMA covariance of the
//                                 pool's 256 observations is singular at N = 500); no lineage, so
//                                 risk parity takes its own first Σx;
//   vs BM_RankUpdateFloor/N       one bare rank-2 update of the lower triangle of an N×N matrix.
// Window W = 250. Prices follow a log random walk that runs forward through the 256-bar pool of
// observations and back (returns negated), so they stay bounded however many iterations run.
// Counters: N; sweeps (the risk-parity iterations per rebalance, averaged); rebalanced (the share
// of timed bars that rebalanced: 1 and 0 by construction, checked).

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cmath>
#include <utility>

#include "bench_support.hpp"
#include "dynweight/overlays/overlay.hpp"
#include "dynweight/overlays/turnover_limit.hpp"
#include "dynweight/overlays/volatility_target.hpp"
#include "dynweight/overlays/weight_bounds.hpp"
#include "dynweight/pipeline/dynamic_weighter.hpp"
#include "dynweight/policies/correlation_shrinkage.hpp"
#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "dynweight/rebalance/rebalancer.hpp"

namespace {

using dynweight::Index;
using Chain =
    dynweight::Overlaid<dynweight::RiskParity<double>, dynweight::WeightBounds<double>,
                        dynweight::VolatilityTarget<double>, dynweight::TurnoverLimit<double>>;

using EwmaChain =
    dynweight::Overlaid<dynweight::CorrelationShrinkage<dynweight::RiskParity<double>>,
                        dynweight::WeightBounds<double>, dynweight::VolatilityTarget<double>,
                        dynweight::TurnoverLimit<double>>;

EwmaChain make_ewma_chain(Index n) {
  return EwmaChain(
      dynweight::CorrelationShrinkage<dynweight::RiskParity<double>>(
          dynweight::RiskParity<double>(), dynweight::ShrinkageTarget::scaled_identity, 0.2),
      dynweight::WeightBounds<double>(n, 0.0, 2.5 / double(n)),
      dynweight::VolatilityTarget<double>(
          {.target = 0.10, .annualization = 252, .max_leverage = 1.0}),
      dynweight::TurnoverLimit<double>({.max_turnover = 0.05}));
}

Chain make_chain(Index n) {
  return Chain(dynweight::RiskParity<double>(),
               dynweight::WeightBounds<double>(n, 0.0, 2.5 / double(n)),
               dynweight::VolatilityTarget<double>(
                   {.target = 0.10, .annualization = 252, .max_leverage = 1.0}),
               dynweight::TurnoverLimit<double>({.max_turnover = 0.05}));
}

// Bar t's prices: exp of a log-price walking forward through the pool, then back.
class PricePath {
 public:
  explicit PricePath(Index n)
      : m_pool(dynweight::bench::observation_pool(n)),
        m_log(Eigen::VectorXd::LinSpaced(n, std::log(20.0), std::log(200.0))),
        m_prices(m_log.array().exp()) {}

  const Eigen::VectorXd& next() {
    const Index k = m_t % (2 * dynweight::bench::kPool);
    if (k < dynweight::bench::kPool)
      m_log += m_pool.col(k);
    else
      m_log -= m_pool.col(2 * dynweight::bench::kPool - 1 - k);
    m_prices = m_log.array().exp();
    ++m_t;
    return m_prices;
  }

 private:
  Eigen::MatrixXd m_pool;
  Eigen::VectorXd m_log;
  Eigen::VectorXd m_prices;
  Index m_t = 0;
};

template <class Policy>
void pipeline_step(benchmark::State& state, bool rebalancing, Policy policy, bool ewma) {
  const auto n = static_cast<Index>(state.range(0));
  dynweight::DynamicWeighterOptions options{
      .moments = {.window = dynweight::bench::kWindow},
      .shrinkage = dynweight::RollingShrinkageMethod::ledoit_wolf,
      .every = rebalancing ? 1 : 0,
      .drift_band = rebalancing ? 0.0 : 0.5,
      .regime = {.enabled = !rebalancing,
                 .short_halflife = 5,
                 .long_halflife = 60,
                 .upper = 1e6,
                 .lower = 1e3},
      .rebalance = {.cost_bps = 2},
      .initial_cash = 1e9};
  if (ewma) {
    options.shrinkage.reset();
    options.ewma = dynweight::EwmaOptions{.decay = dynweight::EwmaDecay::from_halflife(60),
                                          .min_periods = dynweight::bench::kWindow};
  }
  dynweight::DynamicWeighter weighter(n, std::move(policy), options);
  // Warm-up: the window fills, the first ready bar rebalances (the initial trigger), and a few
  // more bars pass, so the timed bars start from an invested book and a warm risk parity.
  PricePath path(n);
  for (Index t = 0; t <= dynweight::bench::kWindow + 20; ++t)
    weighter.update(path.next());

  double sweeps = 0;
  Index bars = 0, rebalanced = 0;
  bool all_ok = true;
  for (auto _ : state) {
    const auto& bar = weighter.update(path.next());
    rebalanced += bar.rebalanced;
    sweeps += double(bar.status.iterations);
    all_ok = all_ok && bar.status.code != dynweight::StatusCode::numerical_issue;
    ++bars;
    benchmark::DoNotOptimize(&bar);
    benchmark::ClobberMemory();
  }
  if (rebalancing ? rebalanced != bars : rebalanced != 0)
    state.SkipWithError("a bar did not (or did) rebalance as intended");
  if (!all_ok)
    state.SkipWithError("the policy reported a numerical issue");
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
  state.counters["sweeps"] = rebalanced > 0 ? sweeps / double(rebalanced) : 0.0;
  state.counters["rebalanced"] = bars > 0 ? double(rebalanced) / double(bars) : 0.0;
}

void BM_PipelineStep(benchmark::State& state) {
  pipeline_step(state, true, make_chain(Index(state.range(0))), false);
}
void BM_PipelineStepNoRebalance(benchmark::State& state) {
  pipeline_step(state, false, make_chain(Index(state.range(0))), false);
}
void BM_PipelineStepEwma(benchmark::State& state) {
  pipeline_step(state, true, make_ewma_chain(Index(state.range(0))), true);
}
void BM_PipelineStepEwmaNoRebalance(benchmark::State& state) {
  pipeline_step(state, false, make_ewma_chain(Index(state.range(0))), true);
}

// The rebalancing bar of BM_PipelineStep without DynamicWeighter: the same engines, options,
// prices and warm-up, called in the order the pipeline calls them.
void BM_PipelineStepByHand(benchmark::State& state) {
  const auto n = static_cast<Index>(state.range(0));
  dynweight::ReturnCalculator<double> returns(n);
  dynweight::RollingShrinkage<double> shrinkage(n, {.window = dynweight::bench::kWindow},
                                                dynweight::RollingShrinkageMethod::ledoit_wolf);
  Chain policy = make_chain(n);
  dynweight::Rebalancer<double> rebalancer(n, {.cost_bps = 2});
  Eigen::MatrixXd shrunk(n, n);
  Eigen::VectorXd volatility(n), targets(n), book_weights = Eigen::VectorXd::Zero(n);
  Eigen::VectorXd shares = Eigen::VectorXd::Zero(n);
  double cash = 1e9;
  double sweeps = 0;
  bool all_ok = true;
  const auto bar = [&](const Eigen::VectorXd& prices) {
    const double value = shares.dot(prices) + cash;
    book_weights = shares.cwiseProduct(prices) / value;
    if (returns.update(prices))
      shrinkage.update(returns.returns());
    if (!shrinkage.ready())
      return;
    shrinkage.compute(shrunk, dynweight::OutputStorage::full);
    volatility = shrunk.diagonal().cwiseMax(0.0).cwiseSqrt();
    dynweight::Estimates<double> estimates(n);
    estimates.set_mean(shrinkage.moments().mean());
    estimates
        .set_covariance(shrunk, dynweight::SymmetricStorage::full,
                        dynweight::Estimates<double>::unchecked)
        .set_covariance_lineage(shrinkage.output_id(), shrinkage.output_step())
        .set_volatility(volatility);
    const dynweight::Status status = policy.compute(estimates, book_weights, targets);
    sweeps += double(status.iterations);
    all_ok = all_ok && status.code != dynweight::StatusCode::numerical_issue;
    rebalancer.plan(targets, shares, cash, prices);
    shares = rebalancer.result().shares_after;
    cash = rebalancer.result().cash_after;
  };
  PricePath path(n);
  for (Index t = 0; t <= dynweight::bench::kWindow + 20; ++t)
    bar(path.next());
  sweeps = 0;
  for (auto _ : state) {
    bar(path.next());
    benchmark::DoNotOptimize(shares.data());
    benchmark::ClobberMemory();
  }
  if (!all_ok)
    state.SkipWithError("the policy reported a numerical issue");
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
  state.counters["sweeps"] = sweeps / double(state.iterations());
}

void BM_RankUpdateFloor(benchmark::State& state) {
  dynweight::bench::rank_update_floor(state);
}

void pipeline_sizes(benchmark::internal::Benchmark* b) {
  b->Arg(10)->Arg(100)->Arg(500);
}

}  // namespace

BENCHMARK(BM_PipelineStep)->Apply(pipeline_sizes);
BENCHMARK(BM_PipelineStepNoRebalance)->Apply(pipeline_sizes);
BENCHMARK(BM_PipelineStepByHand)->Apply(pipeline_sizes);
BENCHMARK(BM_PipelineStepEwma)->Apply(pipeline_sizes);
BENCHMARK(BM_PipelineStepEwmaNoRebalance)->Apply(pipeline_sizes);
BENCHMARK(BM_RankUpdateFloor)->Apply(pipeline_sizes);

BENCHMARK_MAIN();
