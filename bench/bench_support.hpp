#pragma once

// Shared by the benchmark binaries: a pool of seeded observations, and the Eigen floors each
// measurement is judged against (registered in every binary, so a ratio is always taken within
// one run).

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <random>

#include "dynweight/core/types.hpp"

namespace dynweight::bench {

constexpr Index kWindow = 250;
constexpr Index kPool = 256;

/// N × 256 Gaussian observations (σ = 1%), the same for every run.
inline Eigen::MatrixXd observation_pool(Index assets) {
  std::mt19937_64 engine(20261125);
  std::normal_distribution<double> normal(0.0, 0.01);
  Eigen::MatrixXd pool(assets, kPool);
  for (Index i = 0; i < pool.size(); ++i)
    pool(i) = normal(engine);
  return pool;
}

/// One bare `selfadjointView<Lower>().rankUpdate(u, v, α)` on N×N: the floor of an O(N²) update.
/// Through `Map`s, because Eigen copies plain-vector arguments of that call.
inline void rank_update_floor(benchmark::State& state) {
  const auto n = static_cast<Index>(state.range(0));
  const Eigen::MatrixXd pool = observation_pool(n);
  Eigen::MatrixXd lower = Eigen::MatrixXd::Zero(n, n);
  using ConstMap = Eigen::Map<const Eigen::VectorXd>;
  Index t = 0;
  for (auto _ : state) {
    const ConstMap u(pool.col(t % kPool).data(), n);
    const ConstMap v(pool.col((t + 1) % kPool).data(), n);
    lower.selfadjointView<Eigen::Lower>().rankUpdate(u, v, 1.0 / double(kWindow - 1));
    ++t;
    benchmark::DoNotOptimize(lower.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = static_cast<double>(n);
}

inline void sizes(benchmark::internal::Benchmark* b) {
  b->Arg(10)->Arg(100)->Arg(500)->Arg(1000);
}

}  // namespace dynweight::bench
