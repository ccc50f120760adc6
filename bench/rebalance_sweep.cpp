// The rebalancer's sweep: random books (2–600 assets; lots of 0.001 to 100 shares; costs, fees,
// cash buffers, minimum orders, bands, participation caps, shorts and step 5 each on or off at
// random; targets summing to 0.8–1.3 so that cash often binds), each planned under both
// `CashShortfall` rules. Prints how the plans differ (tracking error, trades, costs) and what
// planning them took; with --lines FILE, one line per book and rule for a diff against another
// build (the file's columns: book, assets, rule, tracking error, trades, total cost, cash after,
// a checksum of the trades, the cash floor; every number to 17 digits).
//
// README's sweep figures come from this program:
//   cmake --build --preset release --target dynweight_rebalance_sweep
//   ./build/release/bench/dynweight_rebalance_sweep               # 3000 books, seed 12345
//   ./build/release/bench/dynweight_rebalance_sweep --books 200 --seed 7
// Built against older headers (before `RebalanceOptions::shortfall`) it plans with the one rule
// those have and reports it as `level`: compare the --lines files.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "dynweight/rebalance/rebalancer.hpp"

namespace {

using dynweight::Index;
using Eigen::VectorXd;

struct Book {
  dynweight::RebalanceOptions options;
  VectorXd targets, shares, prices, adv;
  double cash = 0;
  bool capped = false;
};

Book random_book(std::mt19937_64& engine) {
  std::uniform_real_distribution<double> unit(0, 1);
  Book book;
  auto& o = book.options;
  const Index n = 2 + Index(unit(engine) * unit(engine) * 598);
  const double lots[] = {0.001, 0.01, 1, 1, 10, 100};
  o.lot_size = lots[int(unit(engine) * 6)];
  o.cost_bps = unit(engine) < 0.7 ? unit(engine) * 20 : 0;
  o.fee_per_trade = unit(engine) < 0.4 ? unit(engine) * 10 : 0;
  o.cash_buffer_fraction = unit(engine) < 0.8 ? unit(engine) * 0.1 : 0;
  o.min_notional = unit(engine) < 0.3 ? unit(engine) * 2000 : 0;
  o.band = unit(engine) < 0.3 ? unit(engine) * 0.01 : 0;
  o.allow_short = unit(engine) < 0.1;
  o.invest_residual_cash = unit(engine) < 0.85;
  book.capped = unit(engine) < 0.2;
  if (book.capped)
    o.max_participation = 0.05 + unit(engine) * 0.2;
  book.prices.resize(n);
  book.shares.resize(n);
  book.targets.resize(n);
  book.adv.resize(n);
  const double value = 1e4 + unit(engine) * 1e7;
  for (Index i = 0; i < n; ++i) {
    book.prices(i) = std::exp(unit(engine) * 8 - 1);
    book.targets(i) = unit(engine) < 0.1 ? 0 : unit(engine);
  }
  book.targets *= (0.8 + unit(engine) * 0.5) / book.targets.sum();  // may ask for more than cash
  double held = 0;
  for (Index i = 0; i < n; ++i) {
    const double weight =
        book.targets(i) * (0.6 + 0.8 * unit(engine)) * (unit(engine) < 0.1 ? 0 : 1);
    book.shares(i) = std::floor(weight * value / book.prices(i) / o.lot_size) * o.lot_size;
    held += book.shares(i) * book.prices(i);
    book.adv(i) = value / book.prices(i) * (0.01 + unit(engine));
  }
  book.cash = std::max(0.0, value - held) * (0.5 + unit(engine));
  return book;
}

/// Sets the rule where the headers have it (`cut_buys_first` true or false); returns whether they
/// do.
template <class Options>
bool set_rule(Options& options, bool cut_buys_first) {
  if constexpr (requires { options.shortfall; }) {
    using Rule = decltype(options.shortfall);
    options.shortfall = cut_buys_first ? Rule::cut_buys_first : Rule::level;
    return true;
  } else {
    return !cut_buys_first;
  }
}

struct Outcome {
  double tracking_error = 0, cost = 0, cash_after = 0, cash_floor = 0, checksum = 0,
         milliseconds = 0;
  Index trades = 0;
  [[nodiscard]] bool below_buffer() const { return cash_after < cash_floor; }
};

Outcome plan(const Book& book, const dynweight::RebalanceOptions& options) {
  dynweight::Rebalancer<double> rebalancer(book.targets.size(), options);
  const auto begin = std::chrono::steady_clock::now();
  if (book.capped)
    rebalancer.plan(book.targets, book.shares, book.cash, book.prices, book.adv);
  else
    rebalancer.plan(book.targets, book.shares, book.cash, book.prices);
  const auto end = std::chrono::steady_clock::now();
  const auto& result = rebalancer.result();
  Outcome outcome;
  outcome.milliseconds = std::chrono::duration<double, std::milli>(end - begin).count();
  outcome.tracking_error = result.tracking_error;
  outcome.trades = result.trades;
  outcome.cost = result.total_cost;
  outcome.cash_after = result.cash_after;
  outcome.cash_floor = result.cash_floor;
  for (Index i = 0; i < result.shares_delta.size(); ++i)
    outcome.checksum += result.shares_delta(i) * (1 + 0.618 * double(i));
  return outcome;
}

double quantile(std::vector<double> values, double q) {
  if (values.empty())
    return 0;
  std::sort(values.begin(), values.end());
  return values[std::size_t(q * double(values.size() - 1) + 0.5)];
}

void print_times(const char* rule, const std::vector<double>& milliseconds) {
  double total = 0;
  for (const double m : milliseconds)
    total += m;
  std::printf("%-15s planning: %.1f ms in all, 99th percentile %.3f ms a book, slowest %.3f ms\n",
              rule, total, quantile(milliseconds, 0.99), quantile(milliseconds, 1.0));
}

}  // namespace

int main(int argc, char** argv) {
  long books = 3000;
  std::uint64_t seed = 12345;
  const char* lines = nullptr;
  for (int a = 1; a < argc; ++a) {
    const bool has_value = a + 1 < argc;
    if (std::strcmp(argv[a], "--books") == 0 && has_value) {
      books = std::atol(argv[++a]);
    } else if (std::strcmp(argv[a], "--seed") == 0 && has_value) {
      seed = std::strtoull(argv[++a], nullptr, 10);
    } else if (std::strcmp(argv[a], "--lines") == 0 && has_value) {
      lines = argv[++a];
    } else {
      std::fprintf(stderr, "usage: %s [--books N] [--seed S] [--lines FILE]\n", argv[0]);
      return 2;
    }
  }
  if (books < 1) {
    std::fprintf(stderr, "--books must be >= 1\n");
    return 2;
  }
  std::FILE* out = lines != nullptr ? std::fopen(lines, "w") : nullptr;
  if (lines != nullptr && out == nullptr) {
    std::fprintf(stderr, "cannot write %s\n", lines);
    return 2;
  }

  std::mt19937_64 engine(seed);
  dynweight::RebalanceOptions probe;
  const bool both = set_rule(probe, true);
  std::vector<double> level_ms, cut_ms, better, worse;
  long differ = 0, fewer = 0, more = 0, same = 0, cheaper = 0, dearer = 0;
  long level_below = 0, cut_below = 0;  // plans ending with cash below the buffer
  for (long b = 0; b < books; ++b) {
    const Book book = random_book(engine);
    dynweight::RebalanceOptions options = book.options;
    set_rule(options, false);
    const Outcome level = plan(book, options);
    level_ms.push_back(level.milliseconds);
    const auto write = [&](const char* rule, const Outcome& o) {
      if (out != nullptr)
        std::fprintf(out, "%ld %ld %s %.17g %ld %.17g %.17g %.17g %.17g\n", b,
                     long(book.targets.size()), rule, o.tracking_error, long(o.trades), o.cost,
                     o.cash_after, o.checksum, o.cash_floor);
    };
    write("level", level);
    level_below += level.below_buffer() ? 1 : 0;
    if (!both)
      continue;
    set_rule(options, true);
    const Outcome cut = plan(book, options);
    cut_ms.push_back(cut.milliseconds);
    write("cut-buys", cut);
    cut_below += cut.below_buffer() ? 1 : 0;
    if (cut.checksum == level.checksum && cut.tracking_error == level.tracking_error)
      continue;
    ++differ;
    const double relative = (cut.tracking_error - level.tracking_error) /
                            std::max(cut.tracking_error, std::numeric_limits<double>::min());
    if (relative > 1e-9)
      better.push_back(relative);  // level's tracking error lower by `relative` of cut-buys'
    else if (relative < -1e-9)
      worse.push_back(-relative);
    (cut.trades < level.trades ? fewer : cut.trades > level.trades ? more : same) += 1;
    if (cut.cost < level.cost - 1e-9)
      ++cheaper;
    else if (cut.cost > level.cost + 1e-9)
      ++dearer;
  }
  if (out != nullptr)
    std::fclose(out);

  std::printf("%ld books, seed %llu\n", books, static_cast<unsigned long long>(seed));
  print_times("level", level_ms);
  if (!both) {
    std::printf("(these headers have one rule for step 4)\n");
    std::printf("plans ending with cash below the buffer: %ld\n", level_below);
    return 0;
  }
  print_times("cut_buys_first", cut_ms);
  std::printf("plans ending with cash below the buffer: level %ld, cut_buys_first %ld\n",
              level_below, cut_below);
  std::printf("plans that differ: %ld\n", differ);
  std::printf(
      "  level's tracking error lower in %ld (median by %.3g, 90th percentile %.3g, most "
      "%.3g, relative to cut_buys_first's), higher in %ld (most %.3g)\n",
      long(better.size()), quantile(better, 0.5), quantile(better, 0.9), quantile(better, 1.0),
      long(worse.size()), quantile(worse, 1.0));
  std::printf(
      "  cut_buys_first makes fewer trades in %ld, as many in %ld, more in %ld; costs "
      "less in %ld, more in %ld\n",
      fewer, same, more, cheaper, dearer);
  return 0;
}
