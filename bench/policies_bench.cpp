// Weighting policies, each beside the Eigen kernel that is its floor:
//   BM_RiskParityCold/N   RiskParity::compute to 1e-10 from no previous solution,
//   BM_RiskParityWarm/N   the same from the previous bar's solution, the covariance having moved
//                         by one rolling update (W = 250),
//   vs BM_CovMatVecFloor/N   one dense y.noalias() = Σ x on the full N×N matrix: the cost of one
//                         pass over Σ.
// The bars time compute() alone: giving a new Σ to the estimates checks it (finite, symmetric),
// a per-matrix cost timed by BM_EstimatesSetCovariance/N.
// The covariances are 16 consecutive rolling windows of a one-factor market (betas 0.5–1.5,
// average correlation about 0.3), visited back and forth so that each bar moves by exactly one
// update. Counters: iterations (coordinate sweeps plus Newton steps) and passes over Σ
// (iterations, + 1 for a cold start's Σx; a warm start's first sweep makes its own Σx).

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <random>
#include <vector>

#include "bench_support.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "dynweight/stats/detail/symmetric_update.hpp"
#include "dynweight/stats/rolling_moments.hpp"

namespace {

using dynweight::Index;
using dynweight::bench::kWindow;

constexpr Index kBars = 16;

// kBars full covariance matrices of consecutive rolling windows.
std::vector<Eigen::MatrixXd> moving_covariances(Index n) {
  std::mt19937_64 engine(20261125);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.5, 1.5);
  Eigen::VectorXd beta(n), idiosyncratic(n);
  for (Index i = 0; i < n; ++i) {
    beta(i) = uniform(engine);
    idiosyncratic(i) = 0.01 * uniform(engine);
  }
  dynweight::RollingMoments<double> moments(n, {.window = kWindow});
  Eigen::VectorXd x(n);
  std::vector<Eigen::MatrixXd> out;
  for (Index t = 0; t < kWindow + kBars - 1; ++t) {
    const double market = 0.01 * normal(engine);
    for (Index i = 0; i < n; ++i)
      x(i) = beta(i) * market + idiosyncratic(i) * normal(engine);
    moments.update(x);
    if (t >= kWindow - 1) {
      Eigen::MatrixXd full = moments.covariance_lower();
      dynweight::detail::mirror_lower_to_upper(full);
      out.push_back(std::move(full));
    }
  }
  return out;
}

// 0, 1, ..., 15, 14, ..., 1, 0, 1, ...: every step is one rolling update.
Index back_and_forth(Index step) {
  const Index period = 2 * (kBars - 1);
  const Index k = step % period;
  return k < kBars ? k : period - k;
}

void risk_parity(benchmark::State& state, bool warm) {
  const auto n = static_cast<Index>(state.range(0));
  const auto covariances = moving_covariances(n);
  dynweight::RiskParity<double> policy({.warm_start = warm});
  std::vector<dynweight::Estimates<double>> estimates;  // checked once here, see the comment above
  for (const auto& covariance : covariances)
    estimates.emplace_back(n).set_covariance(covariance);
  Eigen::VectorXd w(n);
  policy.compute(estimates[0], w);
  Index step = 1;
  double iterations = 0;
  bool all_converged = true;
  for (auto _ : state) {
    const auto status = policy.compute(estimates[std::size_t(back_and_forth(step++))], w);
    iterations += double(status.iterations);
    all_converged = all_converged && status.ok();
    benchmark::DoNotOptimize(w.data());
    benchmark::ClobberMemory();
  }
  if (!all_converged)
    state.SkipWithError("a solve did not converge");
  const double runs = double(state.iterations());
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
  state.counters["iterations"] = iterations / runs;
  state.counters["passes"] = iterations / runs + (warm ? 0.0 : 1.0);
}

void BM_RiskParityCold(benchmark::State& state) {
  risk_parity(state, false);
}
void BM_RiskParityWarm(benchmark::State& state) {
  risk_parity(state, true);
}

void BM_EstimatesSetCovariance(benchmark::State& state) {
  const auto n = static_cast<Index>(state.range(0));
  const auto covariances = moving_covariances(n);
  dynweight::Estimates<double> estimates(n);
  Index step = 0;
  for (auto _ : state) {
    estimates.set_covariance(covariances[std::size_t(back_and_forth(step++))]);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
}

void BM_CovMatVecFloor(benchmark::State& state) {
  const auto n = static_cast<Index>(state.range(0));
  const auto covariances = moving_covariances(n);
  const Eigen::MatrixXd& sigma = covariances[0];
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

}  // namespace

BENCHMARK(BM_RiskParityCold)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_RiskParityWarm)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_EstimatesSetCovariance)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_CovMatVecFloor)->Apply(dynweight::bench::sizes);

BENCHMARK_MAIN();
