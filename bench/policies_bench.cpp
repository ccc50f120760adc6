// Weighting policies, each beside the Eigen kernel that is its floor:
//   BM_RiskParityCold/N   RiskParity::compute to 1e-10 from no previous solution,
//   BM_RiskParityWarm/N   the same from the previous bar's solution, the covariance having moved
//                         by one rolling update (W = 250),
//   BM_RiskParityWarmCarried/N  the same with the covariances labelled with their lineage (ids
//                         and the rank-2 step between neighbours, as RollingMoments gives them),
//                         so that the solver carries Σx from the previous bar instead of
//                         taking it by a product,
//   vs BM_CovMatVecFloor/N   one dense y.noalias() = Σ x on the full N×N matrix: the cost of one
//                         pass over Σ;
//   BM_SymmetricProduct/N  risk parity's own pass: Σx from the lower triangle alone
//                         (detail::symmetric_product; the solver takes it at N >= 128, or at any
//                         N with FMA or a lower-triangle Σ);
//   BM_NewtonCholesky/N    the Newton fallback's factorisation (detail::cholesky_in_place), vs
//   BM_EigenLltFloor/N     Eigen's blocked LLT in place of the same matrix.
// The bars time compute() alone (manual time: a steady clock around it). Before each, untimed,
// the estimates take the bar's Σ and check it (finite, symmetric: a per-matrix cost timed by
// BM_EstimatesSetCovariance/N), which leaves Σ in cache as in a pipeline, where it is written
// just before the solve; so the solve's passes over Σ and the floor's run from the same level of
// the memory hierarchy. (Solving the 16 matrices in turn where they lie, 32 MB at N = 500, the
// first pass of each solve came from memory at twice the floor's time. Google Benchmark's
// PauseTiming reads the process CPU clock, ~1 µs a bar here, which N <= 100 would show.)
// The covariances are 16 consecutive rolling windows of a one-factor market (betas 0.5–1.5,
// average correlation about 0.3), visited back and forth so that each bar moves by exactly one
// update. Counters: iterations (fixed-point iterations, coordinate sweeps and Newton steps, one
// pass over Σ each) and passes over Σ (iterations, + 1 for the start's Σx unless carried).

#include <benchmark/benchmark.h>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "bench_support.hpp"
#include "dynweight/policies/detail/cholesky.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "dynweight/stats/detail/symmetric_product.hpp"
#include "dynweight/stats/detail/symmetric_update.hpp"
#include "dynweight/stats/rolling_moments.hpp"
#include "market_data.hpp"

namespace {

using dynweight::Index;
using dynweight::bench::kWindow;

constexpr Index kBars = 16;

// The rank-2 terms u, d of the rolling updates between consecutive windows (entry k: from
// window k − 1 to window k; entry 0 unused).
struct RollingSteps {
  std::vector<Eigen::VectorXd> u, d;
};

// kBars full covariance matrices of consecutive rolling windows.
std::vector<Eigen::MatrixXd> moving_covariances(Index n, RollingSteps* steps = nullptr) {
  const Eigen::MatrixXd returns =
      dynweight::test::one_factor_returns(kWindow + kBars - 1, n, 20261125);
  dynweight::RollingMoments<double> moments(n, {.window = kWindow});
  std::vector<Eigen::MatrixXd> out;
  for (Index t = 0; t < returns.rows(); ++t) {
    moments.update(returns.row(t).transpose());
    if (steps != nullptr && t >= kWindow - 1) {
      const auto step = moments.covariance_step();
      steps->u.push_back(step ? *step->p : Eigen::VectorXd());
      steps->d.push_back(step ? *step->q : Eigen::VectorXd());
    }
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

void risk_parity(benchmark::State& state, bool warm, bool lineage = false) {
  const auto n = static_cast<Index>(state.range(0));
  RollingSteps steps;
  const auto covariances = moving_covariances(n, &steps);
  dynweight::RiskParity<double> policy({.warm_start = warm});
  dynweight::Estimates<double> estimates(n);
  std::vector<std::uint64_t> ids;
  for (Index k = 0; k < kBars; ++k)
    ids.push_back(dynweight::next_covariance_id());
  const double weight = 1.0 / double(kWindow - 1);
  // Window k from window `from` (k ± 1): forward the update's own step, backward its inverse.
  const auto label = [&](Index from, Index k) {
    const auto rank2 = std::size_t(std::max(from, k));
    estimates.set_covariance_lineage(ids[std::size_t(k)], dynweight::CovarianceStep<double>{
                                                              .from = ids[std::size_t(from)],
                                                              .scale = 1.0,
                                                              .weight = k > from ? weight : -weight,
                                                              .p = &steps.u[rank2],
                                                              .q = &steps.d[rank2],
                                                              .ridge = 0.0});
  };
  Eigen::VectorXd w(n);
  estimates.set_covariance(covariances[0]);
  if (lineage)
    estimates.set_covariance_lineage(ids[0]);
  policy.compute(estimates, w);
  Index step = 1;
  double iterations = 0, carried = 0;
  bool all_converged = true;
  for (auto _ : state) {
    const Index k = back_and_forth(step);  // the bar's Σ, untimed (see the comment above)
    estimates.set_covariance(covariances[std::size_t(k)]);
    if (lineage)
      label(back_and_forth(step - 1), k);
    ++step;
    const auto begin = std::chrono::steady_clock::now();
    const auto status = policy.compute(estimates, w);
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
    iterations += double(status.iterations);
    carried += policy.carried_product() ? 1.0 : 0.0;
    all_converged = all_converged && status.ok();
    benchmark::DoNotOptimize(w.data());
    benchmark::ClobberMemory();
  }
  if (!all_converged)
    state.SkipWithError("a solve did not converge");
  if (lineage && carried < 0.9 * double(state.iterations()))
    state.SkipWithError("the solver did not carry Σx through the lineage");
  const double runs = double(state.iterations());
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
  state.counters["iterations"] = iterations / runs;
  state.counters["passes"] = (iterations + (runs - carried)) / runs;
}

void BM_RiskParityCold(benchmark::State& state) {
  risk_parity(state, false);
}
void BM_RiskParityWarm(benchmark::State& state) {
  risk_parity(state, true);
}

void BM_RiskParityWarmCarried(benchmark::State& state) {
  risk_parity(state, true, true);
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

// One product y = Σx on the first bar's Σ per iteration, by `product(Σ, x, y)`.
template <class Product>
void covariance_product(benchmark::State& state, Product product) {
  const auto n = static_cast<Index>(state.range(0));
  const auto covariances = moving_covariances(n);
  const Eigen::MatrixXd& sigma = covariances[0];
  Eigen::VectorXd x = Eigen::VectorXd::Constant(n, 1.0 / double(n));
  Eigen::VectorXd y(n);
  for (auto _ : state) {
    product(sigma, x, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
}

void BM_CovMatVecFloor(benchmark::State& state) {
  covariance_product(state, [](const Eigen::MatrixXd& sigma, const Eigen::VectorXd& x,
                               Eigen::VectorXd& y) { y.noalias() = sigma * x; });
}

// Risk parity's own pass over Σ (its start and fixed-point phase): the symmetric product on the
// lower triangle alone, beside the floor's general product on the full matrix.
void BM_SymmetricProduct(benchmark::State& state) {
  covariance_product(
      state, [](const Eigen::MatrixXd& sigma, const Eigen::VectorXd& x, Eigen::VectorXd& y) {
        dynweight::detail::symmetric_product(sigma, x.data(), y.data());
      });
}

// The Newton fallback's factorisation of the Hessian Σ + diag(b/x²) (here Σ + its mean variance
// on the diagonal): the solver's allocation-free Cholesky beside Eigen's blocked LLT in place,
// which from ~400 assets heap-allocates its packing buffers on every call.
template <class Factor>
void hessian_factorisation(benchmark::State& state, Factor factor) {
  const auto n = static_cast<Index>(state.range(0));
  Eigen::MatrixXd hessian = moving_covariances(n)[0];
  hessian.diagonal().array() += hessian.diagonal().mean();
  Eigen::MatrixXd work(n, n);
  for (auto _ : state) {
    work = hessian;
    benchmark::DoNotOptimize(factor(work));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
}

void BM_NewtonCholesky(benchmark::State& state) {
  hessian_factorisation(
      state, [](Eigen::MatrixXd& h) { return dynweight::detail::cholesky_in_place<double>(h); });
}

void BM_EigenLltFloor(benchmark::State& state) {
  hessian_factorisation(state, [](Eigen::MatrixXd& h) {
    const Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>> llt(h);
    return llt.info() == Eigen::Success;
  });
}

}  // namespace

BENCHMARK(BM_RiskParityCold)->Apply(dynweight::bench::sizes)->UseManualTime();
BENCHMARK(BM_RiskParityWarm)->Apply(dynweight::bench::sizes)->UseManualTime();
BENCHMARK(BM_RiskParityWarmCarried)->Apply(dynweight::bench::sizes)->UseManualTime();
BENCHMARK(BM_EstimatesSetCovariance)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_CovMatVecFloor)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_SymmetricProduct)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_NewtonCholesky)->Apply(dynweight::bench::sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EigenLltFloor)->Apply(dynweight::bench::sizes)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
