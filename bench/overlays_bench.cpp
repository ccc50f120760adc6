// Overlays, each beside the kernel that bounds it:
//   BM_WeightBounds/N       WeightBounds::apply, proportional and euclidean (O(N log N): one sort
//                           of 2N breakpoints), on heavy-tailed weights with floors 0.3/N and
//                           caps 1.5/N (about a fifth of the assets at a bound);
//   BM_SortFloor/N          std::sort of 2N doubles, the dominant term of the above;
//   BM_VolatilityTarget/N   VolatilityTarget::apply, covariance stored as its lower triangle
//                           (the rolling engines' storage) and full;
//   vs BM_CovMatVecFloor/N  one dense y.noalias() = Σ x on the full N×N matrix: one pass over Σ;
//   BM_TurnoverLimit/N      TurnoverLimit::apply with the limit binding (three O(N) passes).
// Each iteration restores the input weights first (an O(N) copy, included in the time).

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <random>
#include <vector>

#include "bench_support.hpp"
#include "dynweight/overlays/turnover_limit.hpp"
#include "dynweight/overlays/volatility_target.hpp"
#include "dynweight/overlays/weight_bounds.hpp"

namespace {

using dynweight::Index;
using dynweight::SymmetricStorage;

// Heavy-tailed positive weights summing to 1 (squares of exponentials).
Eigen::VectorXd heavy_tailed_weights(Index n, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::exponential_distribution<double> exponential(1.0);
  Eigen::VectorXd w(n);
  for (Index i = 0; i < n; ++i) {
    const double e = exponential(engine);
    w(i) = e * e + 1e-3;
  }
  return w / w.sum();
}

// The sample covariance of the benchmark pool: N × 256 observations, σ = 1%.
Eigen::MatrixXd pool_covariance(Index n) {
  const Eigen::MatrixXd pool = dynweight::bench::observation_pool(n);
  const Eigen::VectorXd mean = pool.rowwise().mean();
  const Eigen::MatrixXd centred = pool.colwise() - mean;
  return centred * centred.transpose() / double(pool.cols() - 1);
}

void weight_bounds(benchmark::State& state, dynweight::BoundsProjection projection) {
  const auto n = static_cast<Index>(state.range(0));
  const Eigen::VectorXd input = heavy_tailed_weights(n, 20261125);
  dynweight::WeightBounds<double> bounds(n, 0.3 / double(n), 1.5 / double(n),
                                         {.projection = projection});
  Eigen::VectorXd w(n);
  bool all_ok = true;
  for (auto _ : state) {
    w = input;
    all_ok = bounds.apply({}, w).ok() && all_ok;
    benchmark::DoNotOptimize(w.data());
    benchmark::ClobberMemory();
  }
  if (!all_ok)
    state.SkipWithError("a projection did not succeed");
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
  state.counters["at_bounds"] = double(bounds.at_floor() + bounds.at_cap());
}

void BM_WeightBoundsProportional(benchmark::State& state) {
  weight_bounds(state, dynweight::BoundsProjection::proportional);
}
void BM_WeightBoundsEuclidean(benchmark::State& state) {
  weight_bounds(state, dynweight::BoundsProjection::euclidean);
}

void BM_SortFloor(benchmark::State& state) {
  const auto n = static_cast<Index>(state.range(0));
  const Eigen::VectorXd input = heavy_tailed_weights(2 * n, 20261125);
  std::vector<double> keys(static_cast<std::size_t>(2 * n));
  for (auto _ : state) {
    std::copy(input.data(), input.data() + 2 * n, keys.begin());
    std::sort(keys.begin(), keys.end());
    benchmark::DoNotOptimize(keys.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
}

void volatility_target(benchmark::State& state, SymmetricStorage storage) {
  const auto n = static_cast<Index>(state.range(0));
  const Eigen::MatrixXd covariance = pool_covariance(n);
  dynweight::Estimates<double> estimates(n);
  estimates.set_covariance(covariance, storage);
  const Eigen::VectorXd input = heavy_tailed_weights(n, 20261125);
  dynweight::VolatilityTarget<double> overlay({.target = 0.05, .annualization = 252});
  Eigen::VectorXd w(n);
  bool all_ok = true;
  for (auto _ : state) {
    w = input;
    all_ok = overlay.apply({.estimates = &estimates}, w).ok() && all_ok;
    benchmark::DoNotOptimize(w.data());
    benchmark::ClobberMemory();
  }
  if (!all_ok)
    state.SkipWithError("volatility targeting did not succeed");
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
}

void BM_VolatilityTarget(benchmark::State& state) {
  volatility_target(state, SymmetricStorage::lower);
}
void BM_VolatilityTargetFull(benchmark::State& state) {
  volatility_target(state, SymmetricStorage::full);
}

void BM_CovMatVecFloor(benchmark::State& state) {
  const auto n = static_cast<Index>(state.range(0));
  const Eigen::MatrixXd sigma = pool_covariance(n);
  Eigen::VectorXd x = Eigen::VectorXd::Constant(n, 1.0 / double(n));
  Eigen::VectorXd y(n);
  for (auto _ : state) {
    y.noalias() = sigma * x;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
}

void BM_TurnoverLimit(benchmark::State& state) {
  const auto n = static_cast<Index>(state.range(0));
  const Eigen::VectorXd previous = heavy_tailed_weights(n, 1);
  const Eigen::VectorXd input = heavy_tailed_weights(n, 2);
  dynweight::TurnoverLimit<double> limit({.max_turnover = 0.05});
  Eigen::VectorXd w(n);
  for (auto _ : state) {
    w = input;
    limit.apply({.previous_weights = &previous}, w);
    benchmark::DoNotOptimize(w.data());
    benchmark::ClobberMemory();
  }
  if (!(limit.step() < 1))
    state.SkipWithError("the turnover limit did not bind");
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
}

}  // namespace

BENCHMARK(BM_WeightBoundsProportional)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_WeightBoundsEuclidean)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_SortFloor)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_VolatilityTarget)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_VolatilityTargetFull)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_CovMatVecFloor)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_TurnoverLimit)->Apply(dynweight::bench::sizes);

BENCHMARK_MAIN();
