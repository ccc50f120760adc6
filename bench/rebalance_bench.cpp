// BM_Rebalance/N: one full plan of a drifted book of N assets (5 bps + a fee, minimum notional,
// band, participation cap, cash buffer), beside BM_RoundToLotsFloor/N, the bare vectorised O(N)
// pass (ideal trade, rounded to lots) that any planner must make. Each iteration plans a different
// one of 16 bars, so branch predictors cannot learn one book. BM_RebalanceCashBound/N: the same
// with a buffer that makes cash bind (BM_RebalanceCashBoundCutBuys/N: with
// CashShortfall::cut_buys_first); BM_RebalanceDeepShortfall/N: a levered book in fine lots whose
// buffer is met by sales.

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cmath>
#include <random>
#include <vector>

#include "bench_support.hpp"
#include "dynweight/rebalance/rebalancer.hpp"

namespace {

using dynweight::Index;

/// One universe (lot sizes: 30% of assets trade in round lots of 100, the rest in single shares)
/// seen on 16 different bars: a book that has drifted from its targets by up to ±30%, 1% cash.
struct Book {
  Eigen::VectorXd targets, shares, prices, lots, adv;
  double cash = 0;
};

std::vector<Book> books(Index n, int count) {
  std::mt19937_64 engine(20261125 + static_cast<std::uint64_t>(n));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const Eigen::VectorXd lots =
      Eigen::VectorXd::NullaryExpr(n, [&] { return unit(engine) < 0.3 ? 100.0 : 1.0; });
  std::vector<Book> result;
  for (int b = 0; b < count; ++b) {
    Book book;
    book.targets = Eigen::VectorXd::NullaryExpr(n, [&] { return 0.2 + unit(engine); });
    book.targets *= 0.99 / book.targets.sum();
    book.prices = Eigen::VectorXd::NullaryExpr(n, [&] { return std::exp(1 + 5 * unit(engine)); });
    book.lots = lots;
    const double capital = 1e8;
    book.shares.resize(n);
    for (Index i = 0; i < n; ++i) {
      const double drifted = book.targets(i) * capital * (0.7 + 0.6 * unit(engine));
      book.shares(i) = std::round(drifted / book.prices(i));
    }
    book.adv = book.shares * 2.0;
    book.cash = 0.01 * capital;
    result.push_back(book);
  }
  return result;
}

/// `buffer`: the cash buffer as a fraction of value. 1% is about what the book holds; 5% makes
/// the planner cut buys worth about 4% of the book (the cash-bound path: level cut, heap,
/// exchanges).
void plan_books(benchmark::State& state, double buffer,
                dynweight::CashShortfall shortfall = dynweight::CashShortfall::level) {
  const auto n = static_cast<Index>(state.range(0));
  const std::vector<Book> pool = books(n, 16);
  dynweight::RebalanceOptions options;
  options.cost_bps = 5;
  options.fee_per_trade = 1;
  options.min_notional = 500;
  options.band = 0.05 / double(n);  // 5% of an average weight
  options.max_participation = 0.1;
  options.cash_buffer_fraction = buffer;
  options.shortfall = shortfall;
  dynweight::Rebalancer<double> rebalancer(n, options);
  rebalancer.set_lot_sizes(pool[0].lots);
  Index t = 0;
  double cut = 0, trades = 0, tracking_error = 0;
  for (auto _ : state) {
    const Book& book = pool[static_cast<std::size_t>(t++ % 16)];
    rebalancer.plan(book.targets, book.shares, book.cash, book.prices, book.adv);
    benchmark::DoNotOptimize(rebalancer.result().shares_delta.data());
    const auto& limits = rebalancer.result().limits;
    cut += double(std::count(limits.begin(), limits.end(), dynweight::TradeLimit::cash));
    trades += double(rebalancer.result().trades);
    tracking_error += rebalancer.result().tracking_error;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
  state.counters["trades"] = trades / double(state.iterations());
  state.counters["cash_cut"] = cut / double(state.iterations());
  state.counters["te"] = tracking_error / double(state.iterations());
}

void BM_Rebalance(benchmark::State& state) {
  plan_books(state, 0.01);
}
void BM_RebalanceCashBound(benchmark::State& state) {
  plan_books(state, 0.05);
}
void BM_RebalanceCashBoundCutBuys(benchmark::State& state) {
  plan_books(state, 0.05, dynweight::CashShortfall::cut_buys_first);
}

/// A levered book in fine (crypto-style) lots: 0.001-unit lots, a $200 minimum order, shorts
/// allowed, targets summing to 1.4 and no cash. Buys are cut and sales raise a 5% buffer, the
/// deficits levelled across the book: each asset's first sale is a whole minimum order, then
/// single lots. The counter `steps` is status.iterations (heap steps and level evaluations).
void BM_RebalanceDeepShortfall(benchmark::State& state) {
  const auto n = static_cast<Index>(state.range(0));
  std::mt19937_64 engine(20261127 + static_cast<std::uint64_t>(n));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<Book> pool;
  for (int b = 0; b < 16; ++b) {
    Book book;
    book.targets = Eigen::VectorXd::NullaryExpr(n, [&] { return 0.5 + unit(engine); });
    book.targets *= 1.4 / book.targets.sum();
    book.prices = Eigen::VectorXd::NullaryExpr(n, [&] { return 5 + 500 * unit(engine); });
    book.lots = Eigen::VectorXd::Constant(n, 1e-3);
    book.shares.resize(n);
    for (Index i = 0; i < n; ++i) {
      const double held = book.targets(i) / 1.4 * 1e6 * (0.6 + 0.3 * unit(engine));
      book.shares(i) = std::round(held / book.prices(i) / 1e-3) * 1e-3;
    }
    pool.push_back(book);
  }
  dynweight::RebalanceOptions options;
  options.cost_bps = 5;
  options.min_notional = 200;
  options.allow_short = true;
  options.cash_buffer_fraction = 0.05;
  dynweight::Rebalancer<double> rebalancer(n, options);
  rebalancer.set_lot_sizes(pool[0].lots);
  Index t = 0;
  double steps = 0;
  for (auto _ : state) {
    const Book& book = pool[static_cast<std::size_t>(t++ % 16)];
    steps += double(rebalancer.plan(book.targets, book.shares, book.cash, book.prices).iterations);
    benchmark::DoNotOptimize(rebalancer.result().shares_delta.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
  state.counters["steps"] = steps / double(state.iterations());
}

void BM_RoundToLotsFloor(benchmark::State& state) {
  const auto n = static_cast<Index>(state.range(0));
  const std::vector<Book> pool = books(n, 16);
  Eigen::VectorXd lots(n);
  Index t = 0;
  for (auto _ : state) {
    const Book& book = pool[static_cast<std::size_t>(t++ % 16)];
    const double value = book.shares.dot(book.prices) + book.cash;
    lots = ((book.targets * value).cwiseQuotient(book.prices) - book.shares)
               .cwiseQuotient(book.lots)
               .array()
               .round()
               .matrix();
    benchmark::DoNotOptimize(lots.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["N"] = double(n);
}

}  // namespace

BENCHMARK(BM_Rebalance)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_RebalanceCashBound)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_RebalanceCashBoundCutBuys)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_RebalanceDeepShortfall)->Apply(dynweight::bench::sizes);
BENCHMARK(BM_RoundToLotsFloor)->Apply(dynweight::bench::sizes);

BENCHMARK_MAIN();
