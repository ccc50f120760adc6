// Streaming statistics, each beside the Eigen kernel that is its floor:
//   BM_RollingCovUpdate/N   one RollingMoments::update (W = 250) — rank-2 replace, mean, variances,
//                           amortised shadow resync; vs BM_RankUpdateFloor/N, one bare
//                           selfadjointView<Lower>().rankUpdate(u, v, alpha) on N×N;
//   BM_EwmaCovUpdate/N      one EwmaMoments::update (pandas adjust=True, bias=False) — fused scale
//                           + rank-1; vs BM_RankOneUpdateFloor/N, one bare rankUpdate(v, alpha).
// Inputs cycle through a pool of 256 pre-generated observations so that neither side sees a
// constant vector. Compare ratios from one run (see README, "Benchmarks").

#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include "bench_support.hpp"
#include "dynweight/stats/ewma_moments.hpp"
#include "dynweight/stats/rolling_moments.hpp"

namespace {

using dynweight::bench::kPool;
using dynweight::bench::kWindow;
using dynweight::bench::observation_pool;

void BM_RollingCovUpdate(benchmark::State& state) {
  const auto n = static_cast<dynweight::Index>(state.range(0));
  const Eigen::MatrixXd pool = observation_pool(n);
  dynweight::RollingMoments<double> rolling(n, {.window = kWindow});
  for (dynweight::Index t = 0; t < kWindow; ++t)
    rolling.update(pool.col(t % kPool));
  dynweight::Index t = 0;
  for (auto _ : state) {
    rolling.update(pool.col(t++ % kPool));
    benchmark::DoNotOptimize(rolling.covariance_lower().data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = static_cast<double>(n);
}

void BM_RankUpdateFloor(benchmark::State& state) {
  dynweight::bench::rank_update_floor(state);
}

void BM_EwmaCovUpdate(benchmark::State& state) {
  const auto n = static_cast<dynweight::Index>(state.range(0));
  const Eigen::MatrixXd pool = observation_pool(n);
  dynweight::EwmaMoments<double> ewma(n, {.decay = dynweight::EwmaDecay::from_halflife(30.0)});
  for (dynweight::Index t = 0; t < kPool; ++t)
    ewma.update(pool.col(t));
  dynweight::Index t = 0;
  for (auto _ : state) {
    ewma.update(pool.col(t++ % kPool));
    benchmark::DoNotOptimize(ewma.covariance_lower().data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = static_cast<double>(n);
}

void BM_RankOneUpdateFloor(benchmark::State& state) {
  const auto n = static_cast<dynweight::Index>(state.range(0));
  const Eigen::MatrixXd pool = observation_pool(n);
  Eigen::MatrixXd lower = Eigen::MatrixXd::Zero(n, n);
  dynweight::Index t = 0;
  for (auto _ : state) {
    lower.selfadjointView<Eigen::Lower>().rankUpdate(pool.col(t++ % kPool), 0.05);
    benchmark::DoNotOptimize(lower.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = static_cast<double>(n);
}

}  // namespace

BENCHMARK(BM_RollingCovUpdate)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_RankUpdateFloor)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_EwmaCovUpdate)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_RankOneUpdateFloor)->Apply(dynweight::bench::sizes);

BENCHMARK_MAIN();
