// Shrinkage estimators beside their floors, W = T = 250:
//   BM_LedoitWolf/N    batch LedoitWolf::compute on a T×N window (centring, S, intensity, output),
//                      vs BM_SampleCovarianceFloor/N: Eigen's rankUpdate(Yᵀ) of the already
//                      centred window, the kernel that forms S;
//   BM_LedoitWolfRollingUpdate/N, BM_OasRollingUpdate/N   one bar of RollingShrinkage (update,
//                      intensity, shrunk covariance written as its lower triangle, the library's
//                      storage), vs BM_RankUpdateFloor/N (one bare rank-2 update of N×N, the floor
//                      of any O(N²) per-bar update);
//   BM_LedoitWolfRollingUpdateFull/N   the same with the full symmetric matrix written;
//   BM_ConstCorrRollingUpdate/N   the same for the constant-correlation target (its N×N
//                      cross-moment sums moved and reduced in the same bar);
//   BM_ConstCorrRollingRebuild/N  a bar that also rebuilds those sums exactly from the window
//                      (resync_period = 1 makes every bar such a bar; by default one bar in 16 W);
//   BM_CrossMomentUpdateFloor/N   Eigen moving those 2N×N sums by one bar (two rank-1 terms): the
//                      arithmetic a constant-correlation bar adds, beside BM_RankUpdateFloor/N.

#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include "bench_support.hpp"
#include "dynweight/estimators/ledoit_wolf.hpp"
#include "dynweight/estimators/rolling_shrinkage.hpp"

namespace {

using dynweight::bench::kPool;
using dynweight::bench::kWindow;
using dynweight::bench::observation_pool;

void rolling_shrinkage_bar(
    benchmark::State& state, dynweight::RollingShrinkageMethod method,
    dynweight::OutputStorage storage = dynweight::OutputStorage::lower,
    dynweight::Index resync_period = -1,
    dynweight::CrossMomentSource source = dynweight::CrossMomentSource::automatic) {
  const auto n = static_cast<dynweight::Index>(state.range(0));
  const Eigen::MatrixXd pool = observation_pool(n);
  dynweight::RollingShrinkage<double> shrinkage(
      n, {.window = kWindow, .resync_period = resync_period}, method, {}, source);
  for (dynweight::Index t = 0; t < kWindow; ++t)
    shrinkage.update(pool.col(t % kPool));
  Eigen::MatrixXd shrunk(n, n);
  dynweight::Index t = 0;
  double intensity = 0;
  for (auto _ : state) {
    shrinkage.update(pool.col(t++ % kPool));
    intensity = shrinkage.compute(shrunk, storage).intensity;
    benchmark::DoNotOptimize(shrunk.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = static_cast<double>(n);
  state.counters["intensity"] = intensity;
  if (method == dynweight::RollingShrinkageMethod::constant_correlation)
    state.counters["window_pass"] =
        shrinkage.cross_moment_source() == dynweight::CrossMomentSource::window_pass ? 1.0 : 0.0;
}

void BM_LedoitWolfRollingUpdate(benchmark::State& state) {
  rolling_shrinkage_bar(state, dynweight::RollingShrinkageMethod::ledoit_wolf);
}
void BM_LedoitWolfRollingUpdateFull(benchmark::State& state) {
  rolling_shrinkage_bar(state, dynweight::RollingShrinkageMethod::ledoit_wolf,
                        dynweight::OutputStorage::full);
}
void BM_ConstCorrRollingUpdate(benchmark::State& state) {
  rolling_shrinkage_bar(state, dynweight::RollingShrinkageMethod::constant_correlation);
}
void BM_ConstCorrRunningSums(benchmark::State& state) {
  rolling_shrinkage_bar(state, dynweight::RollingShrinkageMethod::constant_correlation,
                        dynweight::OutputStorage::lower, -1,
                        dynweight::CrossMomentSource::running_sums);
}
void BM_ConstCorrWindowPass(benchmark::State& state) {
  rolling_shrinkage_bar(state, dynweight::RollingShrinkageMethod::constant_correlation,
                        dynweight::OutputStorage::lower, -1,
                        dynweight::CrossMomentSource::window_pass);
}
void BM_ConstCorrRollingRebuild(benchmark::State& state) {
  rolling_shrinkage_bar(state, dynweight::RollingShrinkageMethod::constant_correlation,
                        dynweight::OutputStorage::lower, 1,
                        dynweight::CrossMomentSource::running_sums);
}
void BM_OasRollingUpdate(benchmark::State& state) {
  rolling_shrinkage_bar(state, dynweight::RollingShrinkageMethod::oas);
}
void BM_RankUpdateFloor(benchmark::State& state) {
  dynweight::bench::rank_update_floor(state);
}

Eigen::MatrixXd window_of(dynweight::Index n) {
  return observation_pool(n).leftCols(kWindow).transpose();  // T×N, observations in rows
}

void BM_LedoitWolf(benchmark::State& state) {
  const auto n = static_cast<dynweight::Index>(state.range(0));
  const Eigen::MatrixXd window = window_of(n);
  dynweight::LedoitWolf<double> lw(kWindow, n);
  Eigen::MatrixXd shrunk(n, n);
  double intensity = 0;
  for (auto _ : state) {
    intensity = lw.compute(window, shrunk).intensity;
    benchmark::DoNotOptimize(shrunk.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = static_cast<double>(n);
  state.counters["intensity"] = intensity;
}

void BM_SampleCovarianceFloor(benchmark::State& state) {
  const auto n = static_cast<dynweight::Index>(state.range(0));
  const Eigen::MatrixXd window = window_of(n);
  const Eigen::MatrixXd centred = window.rowwise() - window.colwise().mean();
  Eigen::MatrixXd lower = Eigen::MatrixXd::Zero(n, n);
  for (auto _ : state) {
    lower.selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose(), 1.0 / double(kWindow));
    benchmark::DoNotOptimize(lower.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = static_cast<double>(n);
}

// Moving constant correlation's 2N×N sums [A; B] by one bar (the entering observation's term
// [u³; u²] uᵀ and minus the leaving one's), by Eigen alone, column by column (a rank-2 product
// `sums += terms * factorsᵀ` took 1.35× this at N = 500): the arithmetic every
// ConstCorrRollingUpdate bar does beyond a Ledoit–Wolf bar, 4N² multiply-adds against the floor's
// N².
void BM_CrossMomentUpdateFloor(benchmark::State& state) {
  const auto n = static_cast<dynweight::Index>(state.range(0));
  const Eigen::MatrixXd pool = observation_pool(n);
  const Eigen::ArrayXXd centred = (pool.colwise() - pool.rowwise().mean()).array();
  Eigen::MatrixXd stacked(2 * n, kPool);
  stacked.topRows(n) = centred.cube().matrix();
  stacked.bottomRows(n) = centred.square().matrix();
  Eigen::MatrixXd sums = Eigen::MatrixXd::Zero(2 * n, n);
  Eigen::MatrixXd terms(2 * n, 2);
  Eigen::MatrixXd factors(n, 2);
  dynweight::Index t = 0;
  for (auto _ : state) {
    terms.col(0) = stacked.col(t % kPool);
    terms.col(1) = -stacked.col((t + 1) % kPool);
    factors.col(0) = centred.col(t % kPool).matrix();
    factors.col(1) = centred.col((t + 1) % kPool).matrix();
    for (dynweight::Index j = 0; j < n; ++j)
      sums.col(j) += factors(j, 0) * terms.col(0) + factors(j, 1) * terms.col(1);
    ++t;
    benchmark::DoNotOptimize(sums.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = static_cast<double>(n);
}

}  // namespace

BENCHMARK(BM_LedoitWolf)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_SampleCovarianceFloor)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_LedoitWolfRollingUpdate)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_LedoitWolfRollingUpdateFull)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_OasRollingUpdate)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_ConstCorrRollingUpdate)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_ConstCorrRunningSums)->Apply(dynweight::bench::sizes)->Arg(250);
BENCHMARK(BM_ConstCorrWindowPass)->Apply(dynweight::bench::sizes)->Arg(250);
BENCHMARK(BM_ConstCorrRollingRebuild)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_RankUpdateFloor)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_CrossMomentUpdateFloor)->Apply(dynweight::bench::sizes);

BENCHMARK_MAIN();
