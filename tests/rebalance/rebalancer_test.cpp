#include "dynweight/rebalance/rebalancer.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "allocation_counter.hpp"
#include "near.hpp"

using Catch::Matchers::Contains;
using dynweight::BandMode;
using dynweight::CashShortfall;
using dynweight::Index;
using dynweight::RebalanceOptions;
using dynweight::Rebalancer;
using dynweight::StatusCode;
using dynweight::TradeLimit;
using Eigen::VectorXd;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Book {
  VectorXd targets, shares, prices, lots, adv;
  double cash = 0;
  [[nodiscard]] Index assets() const { return targets.size(); }
  [[nodiscard]] double value() const { return shares.dot(prices) + cash; }
};

/// A random book of n assets. `lots_per_position` sets how many lots a typical position holds:
/// small values give huge lots, large values fine (crypto-like) lots.
Book random_book(std::mt19937_64& engine, Index n, double lots_per_position, double cash_fraction,
                 bool fractional_lots) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Book book;
  book.targets.resize(n);
  book.shares.resize(n);
  book.prices.resize(n);
  book.lots.resize(n);
  book.adv.resize(n);
  const double capital = 1e6;
  double total = 0;
  for (Index i = 0; i < n; ++i) {
    book.targets(i) = unit(engine) < 0.15 ? 0.0 : 0.2 + unit(engine);
    total += book.targets(i);
  }
  if (total == 0)
    book.targets(0) = total = 1;
  book.targets *= (0.9 + 0.1 * unit(engine)) / total;  // leaves 0-10% in cash
  for (Index i = 0; i < n; ++i) {
    book.prices(i) = std::exp(std::log(0.5) + unit(engine) * std::log(2e4));  // 0.5 .. 10 000
    const double position = capital / double(n) / book.prices(i);             // shares
    double lot = position / lots_per_position * (0.5 + unit(engine));
    if (!fractional_lots)
      lot = std::max(1.0, std::round(lot));
    book.lots(i) = lot;
    // Holdings drift around the target, some of them odd lots, some assets not held at all.
    const double drift = unit(engine) < 0.2 ? 0.0 : 0.5 + unit(engine);
    book.shares(i) = std::floor(book.targets(i) * capital * drift / book.prices(i) / lot *
                                (1 + 0.3 * unit(engine))) *
                     lot;
    if (unit(engine) < 0.2)
      book.shares(i) += lot * 0.37;  // an odd lot
    book.adv(i) = position * (0.05 + 2 * unit(engine));
  }
  book.cash = cash_fraction * capital;
  if (book.shares.dot(book.prices) == 0)
    book.cash += capital;  // nothing held: the book is its cash
  return book;
}

double min_notional_of(const RebalanceOptions& o, double value) {
  return std::max(o.min_notional, o.min_notional_fraction * value);
}

bool in_band(const RebalanceOptions& o, const Book& book, Index i) {
  const double value = book.value();
  const double drift = book.shares(i) * book.prices(i) / value - book.targets(i);
  const double band = o.band_mode == BandMode::absolute ? o.band : o.band * book.targets(i);
  return o.band > 0 && std::abs(drift) <= band;
}

/// Is `count` lots of asset i a trade the rules allow? Written from the rules, not the planner.
bool allowed_count(const RebalanceOptions& o, const Book& book, Index i, double count) {
  if (count == 0)
    return true;
  if (in_band(o, book, i))
    return false;
  const double quantity = std::abs(count) * book.lots(i);
  if (quantity < o.min_quantity || quantity * book.prices(i) < min_notional_of(o, book.value()))
    return false;
  if (std::isfinite(o.max_participation) && quantity > o.max_participation * book.adv(i))
    return false;
  if (!o.allow_short && count < 0 && book.shares(i) + count * book.lots(i) < 0)
    return false;
  return true;
}

struct Outcome {
  double cash_after;
  double tracking_error;
};

/// Cash and tracking error of a plan given as lot counts, from first principles.
Outcome evaluate(const RebalanceOptions& o, const Book& book, const std::vector<double>& counts) {
  double cash = book.cash;
  double value_held = 0;
  for (Index i = 0; i < book.assets(); ++i) {
    const double notional = counts[std::size_t(i)] * book.lots(i) * book.prices(i);
    cash -= notional;
    if (notional != 0)
      cash -= o.cost_bps * 1e-4 * std::abs(notional) + o.fee_per_trade;
    value_held += (book.shares(i) + counts[std::size_t(i)] * book.lots(i)) * book.prices(i);
  }
  const double value = value_held + cash;
  double squared = 0;
  for (Index i = 0; i < book.assets(); ++i) {
    const double w =
        (book.shares(i) + counts[std::size_t(i)] * book.lots(i)) * book.prices(i) / value;
    squared += (w - book.targets(i)) * (w - book.targets(i));
  }
  return {cash, std::sqrt(squared)};
}

/// Every invariant the planner promises, checked against the book and the options.
void check_invariants(const RebalanceOptions& o, const Book& book,
                      const dynweight::TradePlan<double>& plan) {
  const Index n = book.assets();
  const double value = book.value();
  const double floor = std::max(o.cash_buffer, o.cash_buffer_fraction * value);
  double cash = book.cash;
  double total_cost = 0;
  bool any_buy = false;
  std::vector<double> counts(std::size_t(n), 0.0);
  for (Index i = 0; i < n; ++i) {
    INFO("asset " << i << ": shares " << book.shares(i) << ", lot " << book.lots(i) << ", delta "
                  << plan.shares_delta(i) << ", price " << book.prices(i));
    const double count = plan.shares_delta(i) / book.lots(i);
    REQUIRE(std::abs(count - std::round(count)) <= 1e-9 * std::max(1.0, std::abs(count)));
    counts[std::size_t(i)] = std::round(count);
    REQUIRE(allowed_count(o, book, i, std::round(count)));
    if (in_band(o, book, i))
      REQUIRE(plan.limits[std::size_t(i)] == TradeLimit::band);
    const double notional = plan.shares_delta(i) * book.prices(i);
    REQUIRE(plan.notional(i) == notional);
    const double cost =
        notional == 0 ? 0.0 : o.cost_bps * 1e-4 * std::abs(notional) + o.fee_per_trade;
    REQUIRE(plan.cost(i) == Approx(cost).epsilon(1e-14).margin(0));
    REQUIRE(plan.shares_after(i) == book.shares(i) + plan.shares_delta(i));
    cash -= notional + cost;
    total_cost += cost;
    any_buy = any_buy || notional > 0;
  }
  REQUIRE(plan.total_cost == Approx(total_cost).epsilon(1e-12).margin(1e-12 * value));
  REQUIRE(plan.cash_after == Approx(cash).epsilon(0).margin(1e-12 * value));
  REQUIRE(plan.cash_floor == floor);
  // Never overdraw: below the buffer only if it started there and nothing is bought.
  if (plan.cash_after < floor) {
    REQUIRE_FALSE(any_buy);
    REQUIRE(plan.status.code == StatusCode::constrained);
  }
  const Outcome outcome = evaluate(o, book, counts);
  REQUIRE(plan.tracking_error == Approx(outcome.tracking_error).epsilon(1e-10).margin(1e-13));
  REQUIRE(plan.value_after == Approx(value - total_cost).epsilon(1e-13));
  const VectorXd weights = plan.shares_after.cwiseProduct(book.prices) / plan.value_after;
  REQUIRE(dynweight::test::near(plan.weights_after, weights, 1e-14));
}

/// The feasible plan of least tracking error, by enumerating lot counts: for each asset every
/// count between 0 and a few lots beyond its ideal trade (at the pre-cost value).
Outcome exhaustive_best(const RebalanceOptions& o, const Book& book, int reach) {
  const Index n = book.assets();
  const double value = book.value();
  const double floor = std::max(o.cash_buffer, o.cash_buffer_fraction * value);
  std::vector<std::vector<double>> choices(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) {
    const double ideal = (book.targets(i) * value / book.prices(i) - book.shares(i)) / book.lots(i);
    const double low = std::min(0.0, std::floor(ideal) - reach);
    const double high = std::max(0.0, std::ceil(ideal) + reach);
    for (double c = low; c <= high; c += 1)
      if (allowed_count(o, book, i, c))
        choices[std::size_t(i)].push_back(c);
  }
  std::vector<std::size_t> pick(std::size_t(n), 0);
  std::vector<double> counts(static_cast<std::size_t>(n));
  Outcome best{0, kInf};
  while (true) {
    for (Index i = 0; i < n; ++i)
      counts[std::size_t(i)] = choices[std::size_t(i)][pick[std::size_t(i)]];
    const Outcome outcome = evaluate(o, book, counts);
    if (outcome.cash_after >= floor && outcome.tracking_error < best.tracking_error)
      best = outcome;
    Index k = 0;
    while (k < n && ++pick[std::size_t(k)] == choices[std::size_t(k)].size())
      pick[std::size_t(k++)] = 0;
    if (k == n)
      break;
  }
  return best;
}

Rebalancer<double> make(const Book& book, const RebalanceOptions& options) {
  Rebalancer<double> rebalancer(book.assets(), options);
  rebalancer.set_lot_sizes(book.lots);
  return rebalancer;
}

dynweight::Status plan(Rebalancer<double>& rebalancer, const Book& book) {
  if (std::isfinite(rebalancer.options().max_participation))
    return rebalancer.plan(book.targets, book.shares, book.cash, book.prices, book.adv);
  return rebalancer.plan(book.targets, book.shares, book.cash, book.prices);
}

}  // namespace

TEST_CASE("Rebalancer: unconstrained whole-share plan by hand", "[rebalance]") {
  // V = 100·10 + 50·20 + 0 + 2000 = 4000. Targets 50/30/20 → 2000, 1200, 800 at prices 10, 20, 40
  // → 200, 60, 20 shares: trades +100, +10, +20; cash 2000 − 1000 − 200 − 800 = 0.
  Book book;
  book.targets = (VectorXd(3) << 0.5, 0.3, 0.2).finished();
  book.shares = (VectorXd(3) << 100, 50, 0).finished();
  book.prices = (VectorXd(3) << 10, 20, 40).finished();
  book.lots = VectorXd::Ones(3);
  book.cash = 2000;
  Rebalancer<double> rebalancer(3);
  const auto status = plan(rebalancer, book);
  const auto& result = rebalancer.result();
  REQUIRE(status.ok());
  CHECK(result.shares_delta == (VectorXd(3) << 100, 10, 20).finished());
  CHECK(result.cash_after == 0);
  CHECK(result.tracking_error == 0);
  CHECK(result.trades == 3);
  CHECK(result.turnover == Approx(2000.0 / 8000.0));
  CHECK(result.tracking_error_before == Approx(std::sqrt(0.25 * 0.25 + 0.05 * 0.05 + 0.2 * 0.2)));
}

TEST_CASE("Rebalancer: costs are paid from cash and targets are sized after costs", "[rebalance]") {
  // One asset, target 100%, V = 10 000 in cash, 10 bps + a fee of 1. Trading to target would cost
  // 11, so targets are sized on V_net = 9 989: 998.9 shares, rounded to 999. 999 shares would cost
  // 9 990 + 9.99 + 1 = 10 000.99 > 10 000, so the planner cuts to 998 (9 980 + 9.98 + 1) and keeps
  // 9.02 in cash; a 999th share is still unaffordable.
  Book book;
  book.targets = VectorXd::Constant(1, 1.0);
  book.shares = VectorXd::Zero(1);
  book.prices = VectorXd::Constant(1, 10.0);
  book.lots = VectorXd::Ones(1);
  book.cash = 10000;
  RebalanceOptions options;
  options.cost_bps = 10;
  options.fee_per_trade = 1;
  Rebalancer<double> rebalancer = make(book, options);
  plan(rebalancer, book);
  const auto& result = rebalancer.result();
  CHECK(result.shares_delta(0) == 998);
  CHECK(result.cost(0) == Approx(9.98 + 1));
  CHECK(result.cash_after == Approx(10000 - 9980 - 10.98));
  CHECK(result.cash_after >= 0);
  check_invariants(options, book, result);
}

TEST_CASE("Rebalancer: every invariant holds over random books", "[rebalance]") {
  const double lots_per_position = GENERATE(0.7, 3.0, 40.0, 5000.0);
  const bool fractional = GENERATE(false, true);
  const int scenario = GENERATE(0, 1, 2, 3, 4, 5);
  std::mt19937_64 engine(1234 + 17 * scenario + (fractional ? 1000 : 0) +
                         static_cast<std::uint64_t>(lots_per_position));
  RebalanceOptions options;
  options.shortfall = GENERATE(CashShortfall::level, CashShortfall::cut_buys_first);
  switch (scenario) {
    case 0:  // frictionless
      break;
    case 1:  // costs, minimums, a buffer
      options.cost_bps = 8;
      options.fee_per_trade = 2.5;
      options.min_notional = 500;
      options.min_quantity = 0.5;
      options.cash_buffer = 5000;
      break;
    case 2:  // absolute band and participation
      options.band = 0.004;
      options.max_participation = 0.1;
      options.cost_bps = 3;
      break;
    case 3:  // relative band, fraction-of-value minimum and buffer
      options.band = 0.25;
      options.band_mode = BandMode::relative;
      options.min_notional_fraction = 0.002;
      options.cash_buffer_fraction = 0.01;
      break;
    case 4:  // tiny cash, heavy costs
      options.cost_bps = 50;
      options.fee_per_trade = 20;
      options.cash_buffer = 1000;
      break;
    case 5:  // shorts allowed
      options.allow_short = true;
      options.cost_bps = 5;
      options.max_participation = 0.5;
      break;
  }
  for (int trial = 0; trial < 25; ++trial) {
    const Index n = 1 + Index(engine() % 40);
    const double cash_fraction = scenario == 4 ? 0.0005 : 0.02 * double(engine() % 5);
    Book book = random_book(engine, n, lots_per_position, cash_fraction, fractional);
    if (scenario == 5)
      book.targets(0) = -0.1;
    Rebalancer<double> rebalancer = make(book, options);
    INFO("scenario " << scenario << ", trial " << trial << ", N = " << n);
    plan(rebalancer, book);
    check_invariants(options, book, rebalancer.result());
    // Deterministic: the same input, the same plan, bit for bit.
    const VectorXd first = rebalancer.result().shares_delta;
    plan(rebalancer, book);
    REQUIRE(dynweight::test::identical(rebalancer.result().shares_delta, first));
  }
}

TEST_CASE("Rebalancer: the best plan found by exhaustive search, or within a lot of it",
          "[rebalance]") {
  const int scenario = GENERATE(0, 1, 2, 3);
  std::mt19937_64 engine(99 + scenario);
  RebalanceOptions options;
  options.shortfall = GENERATE(CashShortfall::level, CashShortfall::cut_buys_first);
  if (scenario >= 1) {
    options.cost_bps = 10;
    options.fee_per_trade = 3;
  }
  if (scenario >= 2) {
    options.min_notional = 2000;
    options.cash_buffer = 2000;
  }
  if (scenario == 3)
    options.max_participation = 0.2;
  int equal = 0;
  int trials = 0;
  for (int trial = 0; trial < 150; ++trial) {
    const Index n = 1 + Index(engine() % 4);
    Book book = random_book(engine, n, 1.5, 0.01 * double(engine() % 4), trial % 2 == 1);
    Rebalancer<double> rebalancer = make(book, options);
    plan(rebalancer, book);
    const auto& result = rebalancer.result();
    check_invariants(options, book, result);
    const Outcome best = exhaustive_best(options, book, 4);
    if (best.tracking_error == kInf) {
      // No plan reaches the buffer (cash starts below it and sales cannot restore it): the
      // planner must say so and buy nothing.
      REQUIRE(result.status.code == StatusCode::constrained);
      REQUIRE(result.buy_notional == 0);
      continue;
    }
    INFO("trial " << trial << ": planner " << result.tracking_error << ", best "
                  << best.tracking_error << "\ntargets " << book.targets.transpose() << "\nshares "
                  << book.shares.transpose() << "\nprices " << book.prices.transpose() << "\nlots "
                  << book.lots.transpose() << "\ncash " << book.cash << "\ndelta "
                  << result.shares_delta.transpose());
    REQUIRE(result.tracking_error >= best.tracking_error * (1 - 1e-9));
    // The bound: never worse than the best plan by more than one lot of the largest lot weight.
    const double largest_lot = (book.lots.cwiseProduct(book.prices)).maxCoeff() / book.value();
    REQUIRE(result.tracking_error <= best.tracking_error + largest_lot);
    ++trials;
    equal += result.tracking_error <= best.tracking_error * (1 + 1e-9) + 1e-15;
  }
  // And in practice optimal: all 569 feasible cases of these seeds (150, 150, 149, 120). Cutting
  // buys first (the only rule until session 18), 567: one book in each of the first two
  // scenarios needs two sales to fund one purchase, which step 6's single exchanges do not search.
  INFO("scenario " << scenario << ": optimal in " << equal << " of " << trials << " cases");
  CHECK(equal >= trials - (options.shortfall == CashShortfall::level || scenario >= 2 ? 0 : 1));
}

TEST_CASE("Rebalancer: fractional lots (crypto), huge lots, all inside the band", "[rebalance]") {
  Book book;
  book.targets = (VectorXd(3) << 0.5, 0.3, 0.18).finished();  // 2% cash pays the costs
  book.shares = (VectorXd(3) << 1.23456789, 20.5, 0).finished();
  book.prices = (VectorXd(3) << 43210.5, 2345.25, 0.3125).finished();
  book.cash = 50000;
  RebalanceOptions options;
  options.cost_bps = 10;
  SECTION("0.0001 BTC lots: every trade a whole number of them, the target within half a lot") {
    book.lots = (VectorXd(3) << 1e-4, 1e-3, 1.0).finished();
    Rebalancer<double> rebalancer = make(book, options);
    REQUIRE(plan(rebalancer, book).ok());
    const auto& result = rebalancer.result();
    check_invariants(options, book, result);
    for (Index i = 0; i < 3; ++i) {
      const double lot_weight = book.lots(i) * book.prices(i) / result.value_after;
      CHECK(std::abs(result.weights_after(i) - book.targets(i)) <= 0.5 * lot_weight + 1e-4);
    }
  }
  SECTION("a lot worth more than the book: nothing can be bought") {
    book.lots = (VectorXd(3) << 1000, 1000, 1e9).finished();
    Rebalancer<double> rebalancer = make(book, options);
    plan(rebalancer, book);
    check_invariants(options, book, rebalancer.result());
    CHECK(rebalancer.result().shares_delta.isZero(0));
  }
  SECTION("every asset inside the band: no trade at all, status success") {
    book.lots = VectorXd::Constant(3, 1e-8);
    Rebalancer<double> exact = make(book, {});
    plan(exact, book);
    Book settled = book;
    settled.shares = exact.result().shares_after;
    settled.cash = exact.result().cash_after;
    RebalanceOptions banded;
    banded.band = 1e-3;
    Rebalancer<double> rebalancer = make(settled, banded);
    REQUIRE(plan(rebalancer, settled).ok());
    CHECK(rebalancer.result().trades == 0);
    for (const TradeLimit limit : rebalancer.result().limits)
      CHECK(limit == TradeLimit::band);
  }
}

TEST_CASE("Rebalancer: minimum orders, participation and long-only are honoured and reported",
          "[rebalance]") {
  Book book;
  book.targets = (VectorXd(3) << 0.0, 0.6, 0.4).finished();
  book.shares = (VectorXd(3) << 150, 10, 0).finished();
  book.prices = (VectorXd(3) << 10, 100, 50).finished();
  book.lots = (VectorXd(3) << 100, 1, 1).finished();
  book.adv = (VectorXd(3) << 1e6, 1e6, 50).finished();
  book.cash = 500;  // V = 1500 + 1000 + 500 = 3000
  RebalanceOptions options;
  options.max_participation = 0.1;  // asset 2: at most 5 shares
  Rebalancer<double> rebalancer = make(book, options);
  const auto status = plan(rebalancer, book);
  const auto& result = rebalancer.result();
  check_invariants(options, book, result);
  CHECK(status.code == StatusCode::constrained);
  CHECK(result.shares_delta(0) == -100);  // 150 held in lots of 100: 50 cannot be sold
  CHECK(result.limits[0] == TradeLimit::no_short);
  CHECK(result.shares_delta(2) == 5);
  CHECK(result.limits[2] == TradeLimit::participation);

  RebalanceOptions minimum;
  // Asset 1 needs +8 shares (800): 0 is nearer than the minimum order of 20 shares (2000).
  minimum.min_notional = 2000;
  Rebalancer<double> strict = make(book, minimum);
  plan(strict, book);
  check_invariants(minimum, book, strict.result());
  CHECK(strict.result().shares_delta(1) == 0);
  CHECK(strict.result().limits[1] == TradeLimit::min_trade);
}

TEST_CASE("Rebalancer: a minimum order is met by the notional the plan reports, to the last bit",
          "[rebalance]") {
  // A minimum of m lots' notional computed as m·(lot·price) can be one ulp above (m·lot)·price,
  // the notional the plan reports: checked the first way, an order of m lots passed the rule and
  // was reported below it (908.72875061642821 against 908.72875061642833, an audit's case).
  std::mt19937_64 engine(11);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int run = 0; run < 20000; ++run) {
    RebalanceOptions options;
    options.lot_size = 0.5 + 2 * unit(engine);
    const double price = 1 + 50 * unit(engine);
    const double lots = double(2 + engine() % 60);
    options.min_notional = lots * (options.lot_size * price);
    if (run == 0) {
      options.lot_size = 1.7762979688695371;
      options.min_notional = 908.72875061642833;
    }
    Rebalancer<double> rebalancer(1, options);
    const VectorXd prices = VectorXd::Constant(1, run == 0 ? 19.676375476116185 : price);
    const double cash = 1e6;
    // Wants ~0.8 of the minimum: rounded up to it (nearer than 0).
    const VectorXd targets = VectorXd::Constant(1, 0.8 * options.min_notional / cash);
    rebalancer.plan(targets, VectorXd::Zero(1), cash, prices);
    const auto& result = rebalancer.result();
    CAPTURE(run, options.lot_size, prices(0), options.min_notional);
    REQUIRE(result.shares_delta(0) > 0);
    REQUIRE(result.notional(0) >= options.min_notional);
  }
}

TEST_CASE("Rebalancer: bad input names what and where and changes nothing", "[rebalance]") {
  std::mt19937_64 engine(7);
  const Book book = random_book(engine, 4, 20, 0.05, false);
  const dynweight::AssetNames names{"AAA", "BBB", "CCC", "DDD"};
  RebalanceOptions options;
  options.cost_bps = 5;
  Rebalancer<double> rebalancer(4, options, &names);
  rebalancer.set_lot_sizes(book.lots);
  plan(rebalancer, book);
  const auto before = rebalancer.result();
  const auto unchanged = [&] {
    REQUIRE(dynweight::test::identical(rebalancer.result().shares_delta, before.shares_delta));
    REQUIRE(rebalancer.result().cash_after == before.cash_after);
    REQUIRE(rebalancer.result().limits == before.limits);
    REQUIRE(dynweight::test::identical(rebalancer.lot_sizes(), book.lots));
  };
  const auto rejects = [&](Book bad, const std::string& message) {
    REQUIRE_THROWS_WITH(plan(rebalancer, bad), Contains(message));
    unchanged();
  };
  Book bad = book;
  bad.prices(2) = -1;
  rejects(bad, "prices[2] (asset 2 ('CCC')) is -1; must be finite and >= the smallest normal");
  bad = book;
  bad.prices(1) = 0;
  rejects(bad, "asset 1 ('BBB')");
  bad = book;  // neither held nor targeted, yet 1 / price is infinite (was "lots ... is nan")
  bad.targets(0) = 0;
  bad.shares(0) = 0;
  bad.prices(0) = 5e-324;
  rejects(bad, "prices[0] (asset 0 ('AAA')) is 5e-324; must be finite and >= the smallest normal");
  bad = book;
  bad.targets(3) = std::numeric_limits<double>::quiet_NaN();
  rejects(bad, "targets[3] (asset 3 ('DDD')) is nan");
  bad = book;
  bad.targets(0) = -0.1;
  rejects(bad, "long-only");
  bad = book;
  bad.shares.resize(3);
  rejects(bad, "shares has 3 entries, expected 4");
  bad = book;
  bad.cash = std::numeric_limits<double>::infinity();
  rejects(bad, "cash = inf");
  bad = book;
  bad.cash = -1e12;
  rejects(bad, "portfolio value");
  Index held = 0;  // an asset with a target: its ideal lot count grows as its price shrinks
  book.targets.maxCoeff(&held);
  const std::string where = "lots held or targeted[" + std::to_string(held) + "] (asset " +
                            std::to_string(held) + " ('" + names[std::size_t(held)] + "')) is ";
  bad = book;
  bad.prices(held) = 1e-300;  // V/p ~ 1e306 lots: finite, and far past what can be counted
  rejects(bad, where);
  bad = book;
  bad.prices(held) = 1e-20;  // finite, but past 2^53 lots, where n − 1 == n
  rejects(bad, where);
  rejects(bad, "must be below 2^53");
  REQUIRE_THROWS_WITH(rebalancer.set_lot_sizes((VectorXd(4) << 1, 1, -1, 1).finished()),
                      Contains("lot_sizes[2] (asset 2 ('CCC')) is -1"));
  REQUIRE_THROWS_WITH(rebalancer.set_lot_size("ZZZ", 1.0), Contains("unknown asset 'ZZZ'"));
  REQUIRE_THROWS_WITH(rebalancer.set_lot_size("BBB", 0.0), Contains("lot_size = 0"));
  unchanged();
  options.max_participation = 0.1;
  Rebalancer<double> capped(4, options, &names);
  REQUIRE_THROWS_WITH(capped.plan(book.targets, book.shares, book.cash, book.prices),
                      Contains("needs the ADV"));
  bad = book;
  bad.adv(1) = -5;
  REQUIRE_THROWS_WITH(capped.plan(bad.targets, bad.shares, bad.cash, bad.prices, bad.adv),
                      Contains("adv_shares[1] (asset 1 ('BBB')) is -5"));
  RebalanceOptions wrong;
  wrong.lot_size = 0;
  REQUIRE_THROWS_WITH(Rebalancer<double>(4, wrong),
                      Contains("lot_size = 0; must be finite and > 0"));
  wrong = {};
  wrong.cash_buffer_fraction = 1.5;
  REQUIRE_THROWS_WITH(Rebalancer<double>(4, wrong), Contains("cash_buffer_fraction = 1.5"));
  wrong = {};
  wrong.shortfall = static_cast<CashShortfall>(7);
  REQUIRE_THROWS_WITH(Rebalancer<double>(4, wrong), Contains("shortfall = 7"));
}

TEST_CASE("Rebalancer: a sale whose fee exceeds its proceeds is not made", "[rebalance]") {
  // A holds one $3 share and should go to 0; B is inside the band. Selling A for $3 with a $5 fee
  // would leave cash at −2 (and the book worth less for nothing): the planner keeps A.
  RebalanceOptions options;
  options.band = 0.01;
  options.fee_per_trade = 5;
  Rebalancer<double> rebalancer(2, options);
  const VectorXd targets = (VectorXd(2) << 0.0, 100.0 / 103.0).finished();
  const VectorXd shares = (VectorXd(2) << 1.0, 100.0).finished();
  const VectorXd prices = (VectorXd(2) << 3.0, 1.0).finished();
  const auto status = rebalancer.plan(targets, shares, 0.0, prices);
  const auto& plan = rebalancer.result();
  CHECK(status.ok());
  CHECK(plan.shares_delta.isZero(0.0));
  CHECK(plan.cash_after == 0.0);
  CHECK(plan.limits[0] == TradeLimit::min_trade);
  CHECK(plan.limits[1] == TradeLimit::band);
  // Two shares at $3 cover the fee: sold.
  const VectorXd two = (VectorXd(2) << 2.0, 100.0).finished();
  const VectorXd sized = (VectorXd(2) << 0.0, 100.0 / 106.0).finished();
  rebalancer.plan(sized, two, 0.0, prices);
  CHECK(rebalancer.result().shares_delta(0) == -2.0);
  CHECK(rebalancer.result().cash_after == 1.0);
  // The whole book in one such position: no trade, rather than a book worth 0 after the fee.
  Rebalancer<double> single(1, options);
  const VectorXd zero = VectorXd::Zero(1);
  const VectorXd one = VectorXd::Ones(1);
  const VectorXd five = VectorXd::Constant(1, 5.0);
  CHECK(single.plan(zero, one, 0.0, five).ok());
  CHECK(single.result().shares_delta(0) == 0.0);
  CHECK(single.result().value_after == 5.0);
  CHECK(single.result().weights_after.allFinite());
}

TEST_CASE("Rebalancer: plan allocates nothing after construction", "[rebalance]") {
  std::mt19937_64 engine(11);
  const Book book = random_book(engine, 300, 2.0, 0.0, true);
  RebalanceOptions options;
  options.cost_bps = 10;
  options.fee_per_trade = 1;
  options.cash_buffer = 20000;  // binds: buys are cut, then exchanges run
  options.max_participation = 0.5;
  Rebalancer<double> rebalancer = make(book, options);
  dynweight::test::NoAllocationScope scope;
  plan(rebalancer, book);
  CHECK(scope.allocations() == 0);
  CHECK(rebalancer.result().status.code == StatusCode::constrained);
}

TEST_CASE("Rebalancer: float instantiation keeps the invariants", "[rebalance]") {
  Rebalancer<float> rebalancer(3);
  const Eigen::VectorXf targets = (Eigen::VectorXf(3) << 0.5f, 0.3f, 0.2f).finished();
  const Eigen::VectorXf shares = (Eigen::VectorXf(3) << 100, 50, 0).finished();
  const Eigen::VectorXf prices = (Eigen::VectorXf(3) << 10, 20, 40).finished();
  REQUIRE(rebalancer.plan(targets, shares, 2000.0f, prices).ok());
  CHECK(rebalancer.result().shares_delta == (Eigen::VectorXf(3) << 100, 10, 20).finished());
  CHECK(rebalancer.result().cash_after >= 0);
}

TEST_CASE(
    "Rebalancer: cash short, the deficits are levelled by buys and sales alike, or buys are "
    "cut first",
    "[rebalance]") {
  // Targets 0.5 and 0.5 on a $1M book holding A at 0.2 and B at 0.45, with $350,000 of cash of
  // which $250,000 must stay: the ideal buys (0.3 and 0.05) need 0.35 of the book, the cash funds
  // 0.1. Least squared tracking error: both deficits at λ with 0.35 − 2λ = 0.1, λ = 0.125: A buys
  // 0.175 and B sells 0.075 below its target, TE = √2 · 0.125 (`CashShortfall::level`). Lots of one
  // $1 share: the plan is exact.
  Book book;
  book.targets = (VectorXd(2) << 0.5, 0.5).finished();
  book.shares = (VectorXd(2) << 200000, 450000).finished();
  book.prices = VectorXd::Ones(2);
  book.lots = VectorXd::Ones(2);
  book.cash = 350000;
  RebalanceOptions options;
  options.cash_buffer = 250000;
  const bool invest = GENERATE(false, true);
  options.invest_residual_cash = invest;
  Rebalancer<double> rebalancer = make(book, options);
  CHECK(plan(rebalancer, book).code == StatusCode::constrained);
  const auto& result = rebalancer.result();
  check_invariants(options, book, result);
  CHECK(result.shares_delta(0) == 175000);
  CHECK(result.shares_delta(1) == -75000);
  CHECK(result.cash_after == 250000);
  CHECK(result.tracking_error == Approx(std::sqrt(2.0) * 0.125).epsilon(1e-12));
  CHECK(result.limits[0] == TradeLimit::cash);
  CHECK(result.limits[1] == TradeLimit::cash);

  // Cutting buys first: B's buy (the smaller deficit, 0.05) is cut whole, then A's down to the
  // $100,000 the cash funds: deficits 0.2 and 0.05, TE √(0.2² + 0.05²) = 0.2062, and no sale.
  // Step 6 may then exchange lots of B for lots of A (each pair must lower the tracking error).
  options.shortfall = CashShortfall::cut_buys_first;
  Rebalancer<double> cutting = make(book, options);
  CHECK(plan(cutting, book).code == StatusCode::constrained);
  const auto& cut = cutting.result();
  check_invariants(options, book, cut);
  CHECK(cut.cash_after == 250000);
  CHECK(cut.shares_delta.sum() == 100000);
  if (!invest) {
    CHECK(cut.shares_delta(0) == 100000);
    CHECK(cut.shares_delta(1) == 0);
    CHECK(cut.tracking_error == Approx(std::hypot(0.2, 0.05)).epsilon(1e-12));
  } else {
    CHECK(cut.shares_delta(1) <= 0);
    CHECK(cut.tracking_error <= std::hypot(0.2, 0.05));
    CHECK(cut.tracking_error > result.tracking_error);
  }
}

TEST_CASE("Rebalancer: with fine lots, step 4 reaches the water-filling optimum", "[rebalance]") {
  // Every asset under target and cash for only 60% of the purchases. With lots of 1e-4 shares the
  // integer problem is the continuous one: minimise Σ (d_i − u_i)² over traded weights u_i with
  // Σ u_i = budget, a sale never more than the weight h_i held (long-only), whose solution is
  // u_i = max(d_i − λ, −h_i) (water-filling on the deficits d_i: each final deficit is
  // min(λ, d_i + h_i) = min(λ, target_i)). Taking the step of smallest mean deficit first, a cut
  // of a buy or a further sale alike (steps 1–4), must end at that level, each asset within a lot
  // weight a (~2e-8 here), so the TE within 2·√N·max a of the optimum. Until session 18 step 4
  // cut buys only (sales came once every buy was cut) and ended at the optimum over u_i >= 0,
  // 0.9–3.1% higher on these books: the REQUIRE below keeps the test able to tell them apart.
  const int seed = GENERATE(1, 2, 3, 4, 5);
  std::mt19937_64 engine(static_cast<std::uint64_t>(seed));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const Index n = 25;
  const double capital = 1e6;
  Book book;
  book.targets = VectorXd::NullaryExpr(n, [&] { return 0.1 + unit(engine); });
  book.targets /= book.targets.sum();
  book.prices = VectorXd::NullaryExpr(n, [&] { return 20 + 200 * unit(engine); });
  book.lots = VectorXd::Constant(n, 1e-4);
  book.shares.resize(n);
  for (Index i = 0; i < n; ++i)
    book.shares(i) = book.targets(i) * capital * (0.3 + 0.6 * unit(engine)) / book.prices(i);
  book.cash = capital - book.shares.dot(book.prices);

  const VectorXd deficit = book.targets - book.shares.cwiseProduct(book.prices) / capital;
  RebalanceOptions options;
  options.cash_buffer = 0.4 * book.cash;
  const double budget = (book.cash - options.cash_buffer) / capital;
  const VectorXd held = book.targets - deficit;
  // The level λ of the remaining deficits, with sales (u_i down to −h_i) or without (u_i >= 0).
  const auto level_of = [&](const VectorXd& lowest) {
    double low = 0, high = book.targets.maxCoeff();
    for (int step = 0; step < 200; ++step) {
      const double level = 0.5 * (low + high);
      ((deficit.array() - level).max(lowest.array()).sum() > budget ? low : high) = level;
    }
    return high;
  };
  const double optimum = book.targets.array().min(level_of(-held)).matrix().norm();
  const double cuts_only = deficit.array().min(level_of(VectorXd::Zero(n))).matrix().norm();
  CAPTURE(optimum, cuts_only);
  REQUIRE(optimum < 0.995 * cuts_only);

  options.invest_residual_cash = false;
  Rebalancer<double> cutting = make(book, options);
  REQUIRE(plan(cutting, book).code == StatusCode::constrained);
  check_invariants(options, book, cutting.result());
  const double lot_weight = book.lots.cwiseProduct(book.prices).maxCoeff() / capital;
  const double margin = 2 * std::sqrt(double(n)) * lot_weight;
  CHECK(cutting.result().tracking_error == Approx(optimum).epsilon(0).margin(margin));
  CHECK(cutting.result().cash_after - options.cash_buffer < 0.05);  // a few lots left over

  // Cutting buys first ends at the optimum over u_i >= 0 instead.
  options.shortfall = CashShortfall::cut_buys_first;
  Rebalancer<double> buys_first = make(book, options);
  REQUIRE(plan(buys_first, book).code == StatusCode::constrained);
  check_invariants(options, book, buys_first.result());
  CHECK(buys_first.result().tracking_error == Approx(cuts_only).epsilon(0).margin(margin));
  options.shortfall = CashShortfall::level;

  options.invest_residual_cash = true;
  Rebalancer<double> full = make(book, options);
  plan(full, book);
  check_invariants(options, book, full.result());
  CHECK(full.result().tracking_error <= cutting.result().tracking_error);
  CHECK(full.result().tracking_error >= optimum - margin);
}

namespace {

/// Step 4 as the README states it, one step at a time from first principles: from each asset's
/// nearest lot count, while cash after costs is below the buffer, take the cash-raising step of
/// least squared-tracking-error increase per unit of cash it frees (ties to the lower index),
/// one lot down from any asset's count: a buy cut or a sale made larger (with a fee, a buy's last
/// lot frees it too), or from an asset that does not trade, a first sale of the fewest lots whose
/// proceeds exceed their costs (found by counting up); the step that reaches the buffer only if
/// finishing without its asset does not do better. For books without minimum orders, caps or a
/// band, where the nearest count is round(x), and without step 5 (`invest_residual_cash` false).
/// With `CashShortfall::cut_buys_first`, the greedy first steps buys only (an asset whose count is
/// > 0), down to 0 at most, and only when every buy is cut and cash is still short, all.
std::vector<double> one_step_greedy(const RebalanceOptions& o, const Book& book) {
  const Index n = book.assets();
  const double value = book.value();
  const auto cost = [&](double notional) {
    return notional == 0 ? 0.0 : o.cost_bps * 1e-4 * std::abs(notional) + o.fee_per_trade;
  };
  double ideal_cost = 0;
  for (Index i = 0; i < n; ++i)
    ideal_cost += cost(book.targets(i) * value - book.shares(i) * book.prices(i));
  const double sizing = std::max(value - ideal_cost, value * 1e-6);
  const auto size = static_cast<std::size_t>(n);
  std::vector<double> x(size), a(size), count(size);
  const auto cash_of = [&](Index i, double c) {
    const double notional = c * book.lots(i) * book.prices(i);
    return -notional - cost(notional);
  };
  double cash = book.cash;
  for (Index i = 0; i < n; ++i) {
    const auto k = std::size_t(i);
    x[k] = (book.targets(i) * sizing / book.prices(i) - book.shares(i)) / book.lots(i);
    a[k] = book.lots(i) * book.prices(i) / sizing;
    count[k] = std::round(x[k]);
    if (count[k] < 0 && !(cash_of(i, count[k]) > 0))
      count[k] = 0;  // a sale the fee would eat
    cash += cash_of(i, count[k]);
  }
  const double floor = std::max(o.cash_buffer, o.cash_buffer_fraction * value);
  const auto gap = [&](Index i, double c) {
    const auto k = std::size_t(i);
    return (x[k] - c) * (x[k] - c) * a[k] * a[k];
  };
  const auto total_gap = [&](const std::vector<double>& counts) {
    double total = 0;
    for (Index i = 0; i < n; ++i)
      total += gap(i, counts[std::size_t(i)]);
    return total;
  };
  // The greedy, never stepping `excluded` (nor, `buys_only`, an asset whose count is not > 0);
  // with `alternatives`, the step that reaches the buffer is compared with finishing without that
  // asset (the same greedy over the others), which is kept if it reaches the buffer at a lower
  // squared tracking error.
  const auto next_count = [&](Index i, double c) {
    if (c != 0)
      return c - 1;
    double sale = 1;
    while (!(cash_of(i, -sale) > 0) && sale < 1e7)
      sale += 1;
    return -sale;
  };
  const auto greedy = [&](auto& self, std::vector<double>& counts, double& cash_now, Index excluded,
                          bool alternatives, bool buys_only) -> void {
    while (cash_now < floor) {
      Index best = -1;
      double best_key = kInf, best_freed = 0, best_next = 0;
      for (Index i = 0; i < n; ++i) {
        const double c = counts[std::size_t(i)];
        if (i == excluded || (buys_only && !(c > 0)))
          continue;
        const double next = next_count(i, c);
        const double freed = cash_of(i, next) - cash_of(i, c);
        if (!(freed > 0))
          continue;
        const double key = (gap(i, next) - gap(i, c)) / freed;
        if (key < best_key) {
          best = i;
          best_key = key;
          best_freed = freed;
          best_next = next;
        }
      }
      if (best < 0)
        return;
      if (alternatives && cash_now + best_freed >= floor) {
        std::vector<double> without = counts;
        double without_cash = cash_now;
        self(self, without, without_cash, best, false, buys_only);
        counts[std::size_t(best)] = best_next;
        if (without_cash >= floor && total_gap(without) < total_gap(counts)) {
          counts = without;
          cash_now = without_cash;
        } else {
          cash_now += best_freed;
        }
        return;
      }
      counts[std::size_t(best)] = best_next;
      cash_now += best_freed;
    }
  };
  if (o.shortfall == CashShortfall::cut_buys_first)
    greedy(greedy, count, cash, -1, true, true);
  greedy(greedy, count, cash, -1, true, false);  // (nothing to do once cash reaches the buffer)
  return count;
}

}  // namespace

TEST_CASE("Rebalancer: step 4 ends where the one-step-at-a-time greedy does", "[rebalance]") {
  // Targets above what the cash funds (levered 1.3–1.6), a fixed fee (so a buy's last lot and a
  // first sale are whole steps of their own) and shorts allowed (sales go on as long as needed):
  // the level take and the heap must together end exactly where the README's greedy ends one
  // step at a time (about 750 single-lot steps per book here; the planner takes at most 18), under
  // either rule for the shortfall. Scenario 3's fee ($2,000–5,000) is above the proceeds of one
  // lot (~$230–2,600) of most assets, so that first sales take several lots.
  const int scenario = GENERATE(0, 1, 2, 3);
  std::mt19937_64 engine(static_cast<std::uint64_t>(17 + scenario));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  RebalanceOptions options;
  options.shortfall = GENERATE(CashShortfall::level, CashShortfall::cut_buys_first);
  options.cost_bps = scenario == 1 ? 0.0 : 8.0;
  options.fee_per_trade = scenario == 2   ? 0.0
                          : scenario == 3 ? 2000 + 3000 * unit(engine)
                                          : 1 + 5 * unit(engine);
  options.allow_short = true;
  options.invest_residual_cash = false;
  int compared = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const Index n = 2 + Index(engine() % 12);
    Book book = random_book(engine, n, 30 + 300 * unit(engine), 0.02 * unit(engine), true);
    book.targets *= (1.3 + 0.3 * unit(engine)) / book.targets.sum();
    options.cash_buffer_fraction = 0.2 * unit(engine);
    Rebalancer<double> rebalancer = make(book, options);
    plan(rebalancer, book);
    const auto& result = rebalancer.result();
    check_invariants(options, book, result);
    const std::vector<double> expected = one_step_greedy(options, book);
    INFO("scenario " << scenario << ", trial " << trial << ", cut_buys_first "
                     << (options.shortfall == CashShortfall::cut_buys_first));
    for (Index i = 0; i < n; ++i) {
      INFO("asset " << i);
      CHECK(std::round(result.shares_delta(i) / book.lots(i)) == expected[std::size_t(i)]);
    }
    ++compared;
  }
  CHECK(compared == 40);
}

TEST_CASE("Rebalancer: a fee above a lot's proceeds does not stop the sales that lift cash",
          "[rebalance]") {
  // A first sale is a whole step of the fewest lots whose proceeds exceed their costs: with a fee
  // above one lot's proceeds, one lot would lower the cash, yet a larger sale raises it, and the
  // buffer must be met (both books used to end below it, selling nothing).
  RebalanceOptions options;
  options.shortfall = GENERATE(CashShortfall::level, CashShortfall::cut_buys_first);
  INFO("cut_buys_first " << (options.shortfall == CashShortfall::cut_buys_first));
  SECTION("one asset, lots of $0.10 against a $1 fee") {
    // V = 10,000, all in the asset, no cash; 10% buffer: sell $1,001 (10,010 lots) to net $1,000.
    Book book;
    book.targets = VectorXd::Ones(1);
    book.shares = VectorXd::Constant(1, 1000);
    book.prices = VectorXd::Constant(1, 10);
    book.lots = VectorXd::Constant(1, 0.01);
    book.cash = 0;
    options.fee_per_trade = 1;
    options.cash_buffer_fraction = 0.1;
    Rebalancer<double> rebalancer = make(book, options);
    plan(rebalancer, book);
    const auto& result = rebalancer.result();
    check_invariants(options, book, result);
    CHECK(result.cash_after >= 1000);
    const double count = std::round(result.shares_delta(0) / 0.01);
    // The fewest lots that reach the buffer: one lot fewer nets less than $1,000.
    CHECK(count <= -10010);
    CHECK(-(count + 1) * 0.01 * 10 - 1 < 1000);
    CHECK(result.status.code == StatusCode::constrained);
  }
  SECTION("three assets under levered targets, lots of $0.0001 against a $2 fee") {
    // Each asset holds 3,300 shares at 100 against a target of 0.45 (levered 1.35): every asset
    // would buy. Cash 9,000 is below the 1% buffer (9,990), so the buys are cut whole and sales
    // must raise the remaining ~$990 plus their fees.
    Book book;
    book.targets = VectorXd::Constant(3, 0.45);
    book.shares = VectorXd::Constant(3, 3300);
    book.prices = VectorXd::Constant(3, 100);
    book.lots = VectorXd::Constant(3, 1e-6);
    book.cash = 9000;
    options.fee_per_trade = 2;
    options.cash_buffer_fraction = 0.01;
    Rebalancer<double> rebalancer = make(book, options);
    plan(rebalancer, book);
    const auto& result = rebalancer.result();
    check_invariants(options, book, result);
    CHECK(result.cash_after >= 9990);
    CHECK(result.cash_after < 9990 + 3 * 1e-4);  // not more than a lot over, for each asset
    CHECK(result.shares_delta.maxCoeff() <= 0);
    CHECK(result.shares_delta.minCoeff() < 0);
  }
}

TEST_CASE("Rebalancer: the step that reaches the buffer does not overshoot it needlessly",
          "[rebalance]") {
  // $10,000 of cash, a $1,000 minimum order. A (price 100) has an ideal trade of 6 lots, so its
  // nearest allowed count is the 10-lot minimum order; B (price 1) buys its ideal 2,000 shares.
  // The buffer leaves $150 short. The greedy cuts 100 shares of B (the k-th at key (2k + 1) / V²),
  // then A's whole order ((10 − 6)² → 6² lot weights², 100² / V² each, for $1,000: key 200 / V²),
  // which reaches the buffer $950 over it at a squared tracking error of 3.7e-3. Finishing with
  // B alone (150 shares) costs 1.825e-3: that is the plan, with or without step 5 (which cannot
  // fund A's minimum order again from $950).
  const bool invest = GENERATE(false, true);
  Book book;
  book.targets = (VectorXd(2) << 0.06, 0.2).finished();
  book.shares = VectorXd::Zero(2);
  book.prices = (VectorXd(2) << 100.0, 1.0).finished();
  book.lots = VectorXd::Ones(2);
  book.cash = 10000;
  RebalanceOptions options;
  options.min_notional = 1000;
  options.cash_buffer = 7150;
  options.invest_residual_cash = invest;
  Rebalancer<double> rebalancer = make(book, options);
  {
    dynweight::test::NoAllocationScope scope;  // the alternatives' state is kept in buffers
    plan(rebalancer, book);
    CHECK(scope.allocations() == 0);
  }
  const auto& result = rebalancer.result();
  check_invariants(options, book, result);
  CHECK(result.shares_delta(0) == 10);
  CHECK(result.shares_delta(1) == 1850);
  CHECK(result.cash_after == 7150);
  CHECK(result.tracking_error == Approx(std::sqrt(1.825e-3)).epsilon(1e-12));
}

TEST_CASE("Rebalancer: the last step's two finishes are compared after steps 5-7", "[rebalance]") {
  // Book 2664 of session 16's sweep of 3000 random books: 5 assets, lots of 0.001, 100, 1, 1 and
  // 100 shares, targets summing to 0.98 and a 9.8% buffer, $2,068 of cash. Compared after step
  // 5 only, the last step of step 4 kept cutting asset 1's 100-share lots, and steps 6-7 then
  // finished that at the plan `earlier` below (tracking error 0.0637); finished through step 6's
  // exchanges, the other choice ends lower. `earlier` is a feasible plan (checked here from first
  // principles), so the planner must now do better than it.
  Book book;
  book.targets = (VectorXd(5) << 0.22032503315333765, 0.17279729794672888, 0.26329037503988512,
                  0.10100063696779478, 0.22258665689225349)
                     .finished();
  book.shares = (VectorXd(5) << 4975.0140000000001, 12900, 42214, 2431, 2900).finished();
  book.prices = (VectorXd(5) << 12.160868614088765, 2.28702443223637, 2.1435385551158932,
                 12.892142992131786, 21.223863174231749)
                    .finished();
  book.lots = (VectorXd(5) << 0.001, 100, 1, 1, 100).finished();
  book.cash = 2068.0389119396395;
  RebalanceOptions options;
  options.cost_bps = 5;
  options.cash_buffer_fraction = 0.098149035115854877;
  Rebalancer<double> rebalancer = make(book, options);
  {
    dynweight::test::NoAllocationScope scope;
    plan(rebalancer, book);
    CHECK(scope.allocations() == 0);
  }
  const auto& result = rebalancer.result();
  check_invariants(options, book, result);
  const Outcome earlier = evaluate(options, book, {-48101, 3, -8742, -333, -1});
  REQUIRE(earlier.cash_after >= options.cash_buffer_fraction * book.value());
  CAPTURE(result.shares_delta.transpose(), earlier.tracking_error);
  CHECK(result.tracking_error < 0.95 * earlier.tracking_error);
}

TEST_CASE("Rebalancer: fine lots and a deep shortfall take few steps", "[rebalance]") {
  // Every asset under a levered target (Σ = 1.4), no cash, 0.001-share lots, a $200 minimum
  // order and shorts allowed: buys are cut and sales raise the buffer. Each first sale is a
  // whole step (the minimum order), and the level take used to rank only lots of
  // sales already under way, so it had none: the heap then alternated between assets a few
  // lots per step (session 16 found 85 million steps, 10 s, in such a book). Each asset's steps
  // are now runs the level take ranks, first sales included: the steps (status.iterations)
  // stay O(N), and the plan is the greedy's (the test above). Under either rule; cutting buys
  // first, every buy is cut whole before the sales.
  const CashShortfall rule = GENERATE(CashShortfall::level, CashShortfall::cut_buys_first);
  std::mt19937_64 engine(3);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const Index n = 60;
  const double capital = 1e6;
  Book book;
  book.targets = VectorXd::NullaryExpr(n, [&] { return 0.5 + unit(engine); });
  book.targets *= 1.4 / book.targets.sum();
  book.prices = VectorXd::NullaryExpr(n, [&] { return 5 + 500 * unit(engine); });
  book.lots = VectorXd::Constant(n, 1e-3);
  book.shares.resize(n);
  for (Index i = 0; i < n; ++i) {
    const double shares = book.targets(i) / 1.4 * capital * (0.6 + 0.3 * unit(engine));
    book.shares(i) = std::round(shares / book.prices(i) / 1e-3) * 1e-3;
  }
  book.cash = 0;
  RebalanceOptions options;
  options.cost_bps = 5;
  options.min_notional = 200;
  options.allow_short = true;
  options.cash_buffer_fraction = 0.05;
  options.invest_residual_cash = false;
  options.shortfall = rule;
  Rebalancer<double> rebalancer = make(book, options);
  dynweight::Status status;
  {
    dynweight::test::NoAllocationScope scope;
    status = plan(rebalancer, book);
    CHECK(scope.allocations() == 0);
  }
  check_invariants(options, book, rebalancer.result());
  REQUIRE(status.code == StatusCode::constrained);
  REQUIRE(rebalancer.result().sell_notional > 0.04 * book.value());
  if (rule == CashShortfall::cut_buys_first)
    REQUIRE(rebalancer.result().buy_notional == 0);
  INFO("steps " << status.iterations);
  CHECK(status.iterations > 0);
  CHECK(status.iterations <= 8 * n + 256);
}

TEST_CASE("Rebalancer: a fixed fee is not spread over thin buys that cash cut", "[rebalance]") {
  // Three assets at 100 under a 0.4 target each (1.2 in all: more than the cash can fund) and
  // $10 of cash, a $2 fee, lots of 0.001 shares ($0.10). Steps 4–6 alone left three buys of
  // $1.30–1.40, paying $6 of fees for $4 of stock. Step 7 drops two whole: one buy of $8 and $2 of
  // fees, the least squared tracking error over every affordable plan (exhaustive search below),
  // with the gaps taken as the steps take them: in lots against the ideal trade, at the value
  // after the ideal costs (V_net = 3010 − 3 × $2 = 3004).
  Book book;
  book.targets = VectorXd::Constant(3, 0.4);
  book.shares = VectorXd::Constant(3, 10.0);
  book.prices = VectorXd::Constant(3, 100.0);
  book.lots = VectorXd::Constant(3, 0.001);
  book.cash = 10;
  RebalanceOptions options;
  options.fee_per_trade = 2;
  Rebalancer<double> rebalancer = make(book, options);
  CHECK(plan(rebalancer, book).code == StatusCode::constrained);
  const auto& result = rebalancer.result();
  check_invariants(options, book, result);
  CHECK(result.trades == 1);
  CHECK(result.total_cost == 2.0);
  CHECK(result.buy_notional == Approx(8.0).epsilon(1e-12));

  const double sizing_value = 3004;
  const double ideal = (0.4 * sizing_value / 100 - 10) / 0.001;  // 2016 lots each
  const double lot_weight = 0.1 / sizing_value;
  const auto objective = [&](const VectorXd& lots) {
    return ((VectorXd::Constant(3, ideal) - lots) * lot_weight).squaredNorm();
  };
  double best = kInf;
  for (int a = 0; a <= 100; ++a) {
    for (int b = 0; b <= 100; ++b) {
      for (int c = 0; c <= 100; ++c) {
        const VectorXd lots = Eigen::Vector3d(a, b, c);
        const double spent = 0.1 * lots.sum() + 2.0 * double((lots.array() > 0).count());
        if (spent <= 10 + 1e-9)
          best = std::min(best, objective(lots));
      }
    }
  }
  const VectorXd planned = result.shares_delta / 0.001;
  CHECK(objective(planned) == Approx(best).epsilon(1e-12));
}

TEST_CASE("Rebalancer: levered targets and a fixed fee give a few real buys, not a fee per asset",
          "[rebalance]") {
  // 25 assets at ~2/3 of targets summing to 1.5 (a volatility target's leverage, no borrowing),
  // fine lots (1e-6 shares) and a $2 fee: the cash buys a fraction of what the targets ask. Without
  // step 7 every asset kept a buy of one lot (~$0.0001) for its $2 fee; now each buy is worth its
  // fee many times over and the cash goes to a few of the largest deficits.
  const int seed = GENERATE(1, 2, 3, 5);
  std::mt19937_64 engine(static_cast<std::uint64_t>(seed));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const Index n = 25;
  const double capital = 1e6;
  Book book;
  book.targets = VectorXd::NullaryExpr(n, [&] { return 0.1 + unit(engine); });
  book.targets *= 1.5 / book.targets.sum();
  book.prices = VectorXd::NullaryExpr(n, [&] { return 20 + 200 * unit(engine); });
  book.lots = VectorXd::Constant(n, 1e-6);
  book.shares.resize(n);
  for (Index i = 0; i < n; ++i)
    book.shares(i) = book.targets(i) / 1.5 * capital * (0.95 + 0.1 * unit(engine)) / book.prices(i);
  book.shares *= (capital - 5000) / book.shares.dot(book.prices);  // $5000 of cash
  book.cash = capital - book.shares.dot(book.prices);
  RebalanceOptions options;
  options.fee_per_trade = 2;
  Rebalancer<double> rebalancer = make(book, options);
  CHECK(plan(rebalancer, book).code == StatusCode::constrained);
  const auto& result = rebalancer.result();
  check_invariants(options, book, result);
  CAPTURE(result.trades, result.total_cost);
  CHECK(result.sell_notional == 0);
  CHECK(result.trades >= 1);
  CHECK(result.total_cost <= 0.01 * book.cash);
  for (Index i = 0; i < n; ++i) {
    if (result.notional(i) > 0)
      CHECK(result.notional(i) >= 50 * options.fee_per_trade);
  }
}
