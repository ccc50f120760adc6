// `dynweight rebalance`: hand-checked plans, the same plan as `dynweight::Rebalancer` called
// directly (every number equal), both target layouts, lot sizes, participation, percentages, and
// every bad input rejected with exit status 2, "dynweight: file:line:column: message" and nothing
// on stdout.

#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <charconv>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "dynweight/rebalance/rebalancer.hpp"

namespace {

using dynweight::cli::test::run_cli;
using dynweight::cli::test::work_dir;
using dynweight::cli::test::write_text;
using Eigen::VectorXd;
using Rows = std::vector<std::vector<std::string>>;

// The three blocks of the output: trades, the resulting book, the summary (headers included).
struct Output {
  Rows trades, book, summary;
};

Output parse_output(const std::string& text) {
  std::vector<Rows> blocks(1);
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) {
      blocks.emplace_back();
      continue;
    }
    std::vector<std::string> cells;
    std::size_t from = 0;
    while (true) {
      const auto comma = line.find(',', from);
      cells.push_back(line.substr(from, comma - from));
      if (comma == std::string::npos)
        break;
      from = comma + 1;
    }
    blocks.back().push_back(std::move(cells));
  }
  REQUIRE(blocks.size() == 3);
  return {blocks[0], blocks[1], blocks[2]};
}

double number(const std::string& cell) {
  double value = std::numeric_limits<double>::quiet_NaN();
  const auto [end, error] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  INFO("cell '" << cell << "'");
  REQUIRE(error == std::errc());
  REQUIRE(end == cell.data() + cell.size());
  return value;
}

std::string summary_value(const Output& output, const std::string& key) {
  for (const auto& row : output.summary) {
    if (row.size() == 2 && row[0] == key)
      return row[1];
  }
  FAIL("no summary key " << key);
  return {};
}

// A book as the test writes it and the library sees it.
struct TestBook {
  std::vector<std::string> names;
  VectorXd shares, prices, lots, adv, targets;  // lots: NaN = empty cell
  double cash = 0.0;
};

std::string g17(double x) {
  return fmt::format("{:.17g}", x);
}

std::string book_csv(const TestBook& b, bool with_lots, bool with_adv) {
  // Columns after `asset` in a shuffled order, and the CASH row in the middle: both allowed.
  std::string text = "asset,price";
  text += with_adv ? ",adv" : "";
  text += ",shares";
  text += with_lots ? ",lot_size\n" : "\n";
  for (std::size_t i = 0; i < b.names.size(); ++i) {
    const auto k = static_cast<Eigen::Index>(i);
    if (i == b.names.size() / 2)
      text += "CASH,1" + std::string(with_adv ? "," : "") + "," + g17(b.cash) +
              (with_lots ? ",\n" : "\n");
    text += b.names[i] + "," + g17(b.prices(k));
    // Appended piece by piece: `"," + string` trips g++ 12's false -Wrestrict at -O3.
    if (with_adv)
      text.append(",").append(g17(b.adv(k)));
    text.append(",").append(g17(b.shares(k)));
    if (with_lots)
      text.append(",").append(std::isnan(b.lots(k)) ? std::string() : g17(b.lots(k)));
    text += "\n";
  }
  return text;
}

std::string long_targets_csv(const TestBook& b) {
  std::string text = "asset,weight\n";
  for (std::size_t i = b.names.size(); i-- > 0;)  // any order
    text += b.names[i] + "," + g17(b.targets(static_cast<Eigen::Index>(i))) + "\n";
  return text;
}

// `dynweight weights` layout: two earlier rows of other weights, the targets last.
std::string wide_targets_csv(const TestBook& b) {
  std::string text = "date";
  for (const auto& name : b.names)
    text += "," + name;
  text += "\n";
  for (const char* date : {"2024-01-02", "2024-01-03", "2024-01-04"}) {
    text += date;
    for (Eigen::Index i = 0; i < b.targets.size(); ++i)
      text.append(",").append(g17(std::string(date) == "2024-01-04" ? b.targets(i) : 1.0 / 64));
    text += "\n";
  }
  return text;
}

TestBook random_book(std::uint64_t seed, int n) {
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  TestBook b;
  b.shares.resize(n);
  b.prices.resize(n);
  b.lots.resize(n);
  b.adv.resize(n);
  b.targets.resize(n);
  for (int i = 0; i < n; ++i) {
    b.names.push_back(fmt::format("A{:02d}", i));
    b.prices(i) = std::round(std::exp(std::log(2.0) + unit(engine) * std::log(2000.0)) * 100) / 100;
    b.lots(i) = i % 4 == 0 ? 100.0 : i % 4 == 1 ? 0.001 : std::numeric_limits<double>::quiet_NaN();
    b.shares(i) = std::round(1e5 / n / b.prices(i) * (0.5 + unit(engine)));
    b.adv(i) = std::round(2e4 / b.prices(i) * (0.2 + unit(engine)) * 100);
    b.targets(i) = 0.2 + unit(engine);
  }
  b.targets *= 0.97 / b.targets.sum();
  b.cash = 2500.5;
  return b;
}

// Runs the CLI and the library on the same book and options; checks every output number equal.
dynweight::TradePlan<double> check_same_as_library(const TestBook& b,
                                                   const dynweight::RebalanceOptions& options,
                                                   const std::vector<std::string>& flags, bool wide,
                                                   double default_lot) {
  const auto dir = work_dir("rebalance_library");
  const bool capped = std::isfinite(options.max_participation);
  write_text(dir / "book.csv", book_csv(b, true, capped));
  write_text(dir / "targets.csv", wide ? wide_targets_csv(b) : long_targets_csv(b));
  std::vector<std::string> arguments = {"rebalance", "--book", (dir / "book.csv").string(),
                                        "--targets", (dir / "targets.csv").string()};
  arguments.insert(arguments.end(), flags.begin(), flags.end());
  const auto run = run_cli(arguments);
  INFO(run.err);
  REQUIRE(run.status == 0);

  const auto n = static_cast<Eigen::Index>(b.names.size());
  dynweight::Rebalancer<double> rebalancer(n, options, &b.names);
  rebalancer.set_lot_sizes(
      b.lots.unaryExpr([&](double lot) { return std::isnan(lot) ? default_lot : lot; }));
  const auto status = capped ? rebalancer.plan(b.targets, b.shares, b.cash, b.prices, b.adv)
                             : rebalancer.plan(b.targets, b.shares, b.cash, b.prices);
  const auto& plan = rebalancer.result();
  CHECK((status.code == dynweight::StatusCode::constrained) ==
        (run.err.find("dynweight: note: status constrained") != std::string::npos));

  const Output output = parse_output(run.out);
  REQUIRE(output.trades.size() == static_cast<std::size_t>(n) + 1);
  REQUIRE(output.book.size() == static_cast<std::size_t>(n) + 2);
  CHECK(output.trades[0] ==
        std::vector<std::string>{"asset", "shares_delta", "price", "notional", "cost", "limit"});
  CHECK(output.book[0] == std::vector<std::string>{"asset", "shares", "price", "weight"});
  for (Eigen::Index i = 0; i < n; ++i) {
    const auto& trade = output.trades[static_cast<std::size_t>(i) + 1];
    const auto& held = output.book[static_cast<std::size_t>(i) + 1];
    INFO("asset " << b.names[static_cast<std::size_t>(i)]);
    REQUIRE(trade.size() == 6);
    REQUIRE(held.size() == 4);
    CHECK(trade[0] == b.names[static_cast<std::size_t>(i)]);
    CHECK(number(trade[1]) == plan.shares_delta(i));
    CHECK(number(trade[2]) == b.prices(i));
    CHECK(number(trade[3]) == plan.notional(i));
    CHECK(number(trade[4]) == plan.cost(i));
    CHECK(trade[5] == dynweight::to_string(plan.limits[static_cast<std::size_t>(i)]));
    CHECK(held[0] == b.names[static_cast<std::size_t>(i)]);
    CHECK(number(held[1]) == plan.shares_after(i));
    CHECK(number(held[2]) == b.prices(i));
    CHECK(number(held[3]) == plan.weights_after(i));
  }
  const auto& cash = output.book.back();
  CHECK(cash[0] == "CASH");
  CHECK(number(cash[1]) == plan.cash_after);
  CHECK(cash[2] == "1");
  CHECK(number(cash[3]) == plan.cash_after / plan.value_after);

  CHECK(output.summary[0] == std::vector<std::string>{"key", "value"});
  CHECK(output.summary.size() == 9);
  CHECK(number(summary_value(output, "value_before")) == plan.value_before);
  CHECK(number(summary_value(output, "value_after")) == plan.value_after);
  CHECK(number(summary_value(output, "total_cost")) == plan.total_cost);
  CHECK(number(summary_value(output, "turnover")) == plan.turnover);
  CHECK(number(summary_value(output, "tracking_error_before")) == plan.tracking_error_before);
  CHECK(number(summary_value(output, "tracking_error")) == plan.tracking_error);
  CHECK(number(summary_value(output, "trades")) == static_cast<double>(plan.trades));
  CHECK(summary_value(output, "status") == dynweight::to_string(status.code));
  CHECK(plan.trades > 0);
  return plan;
}

bool any_limit(const dynweight::TradePlan<double>& plan, dynweight::TradeLimit limit) {
  return std::find(plan.limits.begin(), plan.limits.end(), limit) != plan.limits.end();
}

// The hand-checked book: V = 100·10 + 50·20 + 0·40 + 10·100 + 2000 = 5000.
constexpr const char* kHandBook =
    "asset,shares,price,lot_size\nA,100,10,\nB,50,20,\nC,0,40,5\nD,10,100,\nCASH,2000,1,\n";
constexpr const char* kHandTargets = "asset,weight\nA,0.4\nB,0.2\nC,0.16\nD,0.19\n";

std::vector<std::string> hand_arguments(const std::string& name,
                                        const std::vector<std::string>& flags,
                                        const char* targets = kHandTargets) {
  const auto dir = work_dir(name);
  write_text(dir / "book.csv", kHandBook);
  write_text(dir / "targets.csv", targets);
  std::vector<std::string> arguments = {"rebalance", "--book", (dir / "book.csv").string(),
                                        "--targets", (dir / "targets.csv").string()};
  arguments.insert(arguments.end(), flags.begin(), flags.end());
  return arguments;
}

}  // namespace

TEST_CASE("rebalance: a small book by hand", "[cli][rebalance]") {
  // Targets 0.4/0.2/0.16/0.19 of 5000 → A 200 shares (+100), B 50 (already there), C 20 (+20, 4
  // lots of 5), D 9.5 but its drift |0.2 − 0.19| is inside the 0.02 band: not traded. Cash 2000 −
  // 1000 − 800 = 200; only D is off target, by 0.01; turnover 1800 / (2·5000).
  const auto run = run_cli(hand_arguments("rebalance_hand", {"--band", "0.02"}));
  INFO(run.err);
  REQUIRE(run.status == 0);
  CHECK(run.err.empty());
  CHECK(run.out ==
        "asset,shares_delta,price,notional,cost,limit\n"
        "A,100,10,1000,0,none\n"
        "B,0,20,0,0,band\n"
        "C,20,40,800,0,none\n"
        "D,0,100,0,0,band\n"
        "\n"
        "asset,shares,price,weight\n"
        "A,200,10,0.40000000000000002\n"
        "B,50,20,0.20000000000000001\n"
        "C,20,40,0.16\n"
        "D,10,100,0.20000000000000001\n"
        "CASH,200,1,0.040000000000000001\n"
        "\n"
        "key,value\n"
        "value_before,5000\n"
        "value_after,5000\n"
        "total_cost,0\n"
        "turnover,0.17999999999999999\n"
        "tracking_error_before,0.25632011235952595\n"  // √(0.2² + 0.16² + 0.01²)
        "tracking_error,0.010000000000000009\n"
        "trades,2\n"
        "status,success\n");
  CHECK(number("0.25632011235952595") == Approx(std::sqrt(0.0657)).epsilon(1e-15));
}

TEST_CASE("rebalance: costs and a fee are paid from cash, by hand", "[cli][rebalance]") {
  // One asset, target 100% of 10 000 in cash, 10 bps + 1 per trade: sized after costs to 998.9
  // shares, 999 would cost 10 000.99, so 998 shares: cost 9.98 + 1, cash 10 000 − 9 980 − 10.98.
  const auto dir = work_dir("rebalance_costs");
  write_text(dir / "book.csv", "asset,shares,price\nX,0,10\nCASH,10000,\n");
  write_text(dir / "targets.csv", "asset,weight\nX,1\n");
  const auto run = run_cli({"rebalance", "--book", (dir / "book.csv").string(), "--targets",
                            (dir / "targets.csv").string(), "--cost-bps", "10", "--fee", "1"});
  INFO(run.err);
  REQUIRE(run.status == 0);
  const Output output = parse_output(run.out);
  CHECK(output.trades[1][0] == "X");
  CHECK(output.trades[1][1] == "998");
  CHECK(number(output.trades[1][3]) == 9980);
  CHECK(number(output.trades[1][4]) == Approx(10.98).epsilon(1e-14));
  CHECK(output.trades[1][5] == "cash");
  CHECK(number(output.book[2][1]) == Approx(10000 - 9980 - 10.98).epsilon(1e-12));
  CHECK(number(summary_value(output, "total_cost")) == Approx(10.98).epsilon(1e-14));
  CHECK(number(summary_value(output, "value_after")) == Approx(10000 - 10.98).epsilon(1e-15));
  CHECK(summary_value(output, "status") == "constrained");
  CHECK(run.err ==
        "dynweight: note: status constrained: 1 asset limited by cash (see the limit "
        "column)\n");
}

TEST_CASE("rebalance: the output is the library's plan, number for number", "[cli][rebalance]") {
  const TestBook b = random_book(20261125, 12);
  dynweight::RebalanceOptions options;
  SECTION("defaults (whole shares where the book has no lot size)") {
    options.lot_size = 1.0;
    check_same_as_library(b, options, {}, false, 1.0);
  }
  SECTION("costs, fee, band, minimum trade and cash buffer as percentages") {
    options.lot_size = 10.0;
    options.cost_bps = 5;
    options.fee_per_trade = 1.25;
    options.band = 0.3 / 100;
    options.min_notional_fraction = 0.5 / 100;
    options.cash_buffer_fraction = 1.5 / 100;
    options.min_quantity = 3;
    const auto plan = check_same_as_library(
        b, options,
        {"--lot-size", "10", "--cost-bps", "5", "--fee", "1.25", "--band", "0.3%", "--min-trade",
         "0.5%", "--cash-buffer", "1.5%", "--min-quantity", "3"},
        false, 10.0);
    CHECK(plan.total_cost > 0);
    CHECK(any_limit(plan, dynweight::TradeLimit::band));
    CHECK(plan.cash_after >= 0.015 * plan.value_before);
  }
  SECTION("amounts, a relative band, a participation cap, no residual investment, wide targets") {
    options.min_notional = 150;
    options.cash_buffer = 1000;
    options.band = 0.1;
    options.band_mode = dynweight::BandMode::relative;
    options.max_participation = 0.02;
    options.invest_residual_cash = false;
    check_same_as_library(
        b, options,
        {"--min-trade", "150", "--cash-buffer", "1000", "--band", "0.1", "--band-mode", "relative",
         "--max-participation", "0.02", "--no-residual"},
        true, 1.0);
  }
  SECTION("cash short, buys cut first (--shortfall cut-buys)") {
    options.cost_bps = 3;
    options.cash_buffer_fraction = 0.25;
    options.shortfall = dynweight::CashShortfall::cut_buys_first;
    const auto plan = check_same_as_library(
        b, options, {"--cost-bps", "3", "--cash-buffer", "25%", "--shortfall", "cut-buys"}, false,
        1.0);
    CHECK(any_limit(plan, dynweight::TradeLimit::cash));
    // The flag is seen: the default rule plans this book otherwise.
    options.shortfall = dynweight::CashShortfall::level;
    dynweight::Rebalancer<double> levelling(static_cast<Eigen::Index>(b.names.size()), options);
    levelling.set_lot_sizes(
        b.lots.unaryExpr([](double lot) { return std::isnan(lot) ? 1.0 : lot; }));
    levelling.plan(b.targets, b.shares, b.cash, b.prices);
    CHECK(levelling.result().shares_delta != plan.shares_delta);
  }
  SECTION("short positions allowed") {
    TestBook shorting = b;
    shorting.targets(3) = -0.05;
    shorting.targets(7) = -0.02;
    options.allow_short = true;
    options.cost_bps = 2;
    const auto plan =
        check_same_as_library(shorting, options, {"--allow-short", "--cost-bps", "2"}, true, 1.0);
    CHECK(plan.shares_after(3) < 0);
  }
}

TEST_CASE("rebalance: both target layouts give the same plan", "[cli][rebalance]") {
  const TestBook b = random_book(7, 9);
  const auto dir = work_dir("rebalance_layouts");
  write_text(dir / "book.csv", book_csv(b, true, false));
  write_text(dir / "long.csv", long_targets_csv(b));
  write_text(dir / "wide.csv", wide_targets_csv(b));
  const auto run = [&](const char* targets) {
    return run_cli({"rebalance", "--book", (dir / "book.csv").string(), "--targets",
                    (dir / targets).string(), "--cost-bps", "3"});
  };
  const auto from_long = run("long.csv");
  const auto from_wide = run("wide.csv");
  REQUIRE(from_long.status == 0);
  REQUIRE(from_wide.status == 0);
  CHECK(from_long.out == from_wide.out);
  // The wide file's earlier rows (1/64 each) give another plan: the last row is the one used.
  write_text(dir / "first.csv",
             wide_targets_csv(b).substr(0, wide_targets_csv(b).find("2024-01-03")));
  const auto from_first = run("first.csv");
  REQUIRE(from_first.status == 0);
  CHECK(from_first.out != from_long.out);
}

TEST_CASE("rebalance: a lot_size cell overrides --lot-size", "[cli][rebalance]") {
  // Without a cell, A, B and D trade in lots of 10: A's ideal +100 is 10 lots; B needs nothing;
  // D is not traded (its ideal −0.5 share rounds to 0 lots). C's cell says 5: +20 (4 lots).
  const auto run = run_cli(hand_arguments("rebalance_lots", {"--lot-size", "10"}));
  INFO(run.err);
  REQUIRE(run.status == 0);
  const Output output = parse_output(run.out);
  CHECK(output.trades[1][1] == "100");
  CHECK(output.trades[2][1] == "0");
  CHECK(output.trades[3][1] == "20");
  CHECK(output.trades[4][1] == "0");
  // With --lot-size 30, A's ideal +100 rounds to 90 (3 lots; a 4th, 120, is further from it);
  // C keeps its own lot of 5.
  const auto coarse = run_cli(hand_arguments("rebalance_lots30", {"--lot-size", "30"}));
  REQUIRE(coarse.status == 0);
  const Output coarse_output = parse_output(coarse.out);
  CHECK(coarse_output.trades[1][1] == "90");
  CHECK(coarse_output.trades[3][1] == "20");
}

TEST_CASE("rebalance: --max-participation with and without an adv column", "[cli][rebalance]") {
  const auto dir = work_dir("rebalance_participation");
  write_text(dir / "book.csv",
             "asset,shares,price,adv\nA,100,10,500\nB,50,20,1e6\nC,0,40,1e6\nCASH,2000,1,\n");
  write_text(dir / "book_no_adv.csv",
             "asset,shares,price\nA,100,10\nB,50,20\nC,0,40\nCASH,2000,1\n");
  write_text(dir / "targets.csv", "asset,weight\nA,0.5\nB,0.3\nC,0.2\n");
  const auto book = (dir / "book.csv").string();
  const auto targets = (dir / "targets.csv").string();

  // A wants +100 shares; 10% of an adv of 500 caps it at 50.
  const auto capped =
      run_cli({"rebalance", "--book", book, "--targets", targets, "--max-participation", "10%"});
  INFO(capped.err);
  REQUIRE(capped.status == 0);
  const Output output = parse_output(capped.out);
  CHECK(output.trades[1][1] == "50");
  CHECK(output.trades[1][5] == "participation");
  CHECK(summary_value(output, "status") == "constrained");
  CHECK(capped.err.find("dynweight: note: status constrained: 1 asset limited by participation") ==
        0);

  // The adv column is read only with a cap: without one, A goes to target.
  const auto uncapped = run_cli({"rebalance", "--book", book, "--targets", targets});
  REQUIRE(uncapped.status == 0);
  CHECK(parse_output(uncapped.out).trades[1][1] == "100");

  const auto no_adv = run_cli({"rebalance", "--book", (dir / "book_no_adv.csv").string(),
                               "--targets", targets, "--max-participation", "0.1"});
  CHECK(no_adv.status == 2);
  CHECK(no_adv.out.empty());
  CHECK(no_adv.err == "dynweight: " + (dir / "book_no_adv.csv").string() +
                          ": --max-participation needs an adv column (average daily volume, in "
                          "shares) in the book\n");
}

TEST_CASE("rebalance: percentages are fractions of the portfolio value", "[cli][rebalance]") {
  // V = 5000: 2% is 100, 5% is 250.
  const auto same = [](const std::vector<std::string>& a, const std::vector<std::string>& b,
                       const char* targets = kHandTargets) {
    const auto run_a = run_cli(hand_arguments("rebalance_pct_a", a, targets));
    const auto run_b = run_cli(hand_arguments("rebalance_pct_b", b, targets));
    REQUIRE(run_a.status == 0);
    REQUIRE(run_b.status == 0);
    CHECK(run_a.out == run_b.out);
    return parse_output(run_a.out);
  };
  // With D's target at 0.188, its ideal trade is a sale of 0.6 share, rounded to one share (a
  // notional of 100): allowed by a minimum of 2% = 100, not by 2.02% = 101. (Not 0.19 and a sale
  // of exactly half a share: that tie rounds either way once a compiler fuses the multiply-add.)
  constexpr const char* kTargets = "asset,weight\nA,0.4\nB,0.2\nC,0.16\nD,0.188\n";
  const Output min_trade = same({"--min-trade", "2%"}, {"--min-trade", "100"}, kTargets);
  CHECK(min_trade.trades[4][1] == "-1");
  CHECK(min_trade.trades[4][5] == "none");
  const auto above = run_cli(hand_arguments("rebalance_pct_c", {"--min-trade", "2.02%"}, kTargets));
  REQUIRE(above.status == 0);
  CHECK(parse_output(above.out).trades[4][5] == "min_trade");
  CHECK(parse_output(above.out).trades[4][1] == "0");

  // With D in the band, the 250 buffer binds: A's purchase is cut from 100 to 95 shares.
  const Output buffer =
      same({"--band", "0.02", "--cash-buffer", "5%"}, {"--band", "0.02", "--cash-buffer", "250"});
  CHECK(buffer.trades[1][1] == "95");
  CHECK(buffer.trades[1][5] == "cash");
  CHECK(buffer.book.back()[1] == "250");
  const Output band = same({"--band", "2%"}, {"--band", "0.02"});
  CHECK(band.trades[4][5] == "band");
}

namespace {

struct BadInput {
  const char* name;
  const char* book;
  const char* targets;
  std::vector<std::string> flags;
  const char* location;  // "book.csv:3:2" (the directory is prepended), or "" for none
  const char* message;   // a part of the message after the location
};

constexpr const char* kBook = "asset,shares,price\nA,100,10\nB,50,20\nCASH,500,1\n";
constexpr const char* kTargets = "asset,weight\nA,0.5\nB,0.4\n";

}  // namespace

TEST_CASE("rebalance: bad input exits with status 2, file:line:column and nothing on stdout",
          "[cli][rebalance]") {
  const std::vector<BadInput> cases = {
      {"unterminated quote",
       "asset,shares,price\nA,100,10\n\"B,50,20\nCASH,500,1\n",
       kTargets,
       {},
       "book.csv:3:1",
       "unterminated quoted cell"},
      {"negative price",
       "asset,shares,price\nA,100,10\nB,50,-20\nCASH,500,1\n",
       kTargets,
       {},
       "book.csv:3:3",
       "'-20' is not a positive price (asset 'B')"},
      {"zero price",
       "asset,shares,price\nA,100,0\nB,50,20\nCASH,500,1\n",
       kTargets,
       {},
       "book.csv:2:3",
       "'0' is not a positive price"},
      {"subnormal price",
       "asset,shares,price\nA,100,1e-320\nB,50,20\nCASH,500,1\n",
       kTargets,
       {},
       "book.csv:2:3",
       "'1e-320' is not a usable price: below 2.2e-308, a double keeps only some of its digits "
       "(subnormal) (asset 'A')"},
      {"NaN shares",
       "asset,shares,price\nA,nan,10\nB,50,20\nCASH,500,1\n",
       kTargets,
       {},
       "book.csv:2:2",
       "'nan' is not a finite number (asset 'A', shares)"},
      {"text in a price",
       "asset,shares,price\nA,100,10\nB,50,2O\nCASH,500,1\n",
       kTargets,
       {},
       "book.csv:3:3",
       "'2O' is not a number (asset 'B', price)"},
      {"sign after a plus in shares",
       "asset,shares,price\nA,+-5,10\nB,50,20\nCASH,500,1\n",
       kTargets,
       {},
       "book.csv:2:2",
       "'+-5' is not a number (asset 'A', shares)"},
      {"empty shares cell",
       "asset,shares,price\nA,,10\nB,50,20\nCASH,500,1\n",
       kTargets,
       {},
       "book.csv:2:2",
       "'' is not a number: the cell is empty"},
      {"NaN weight",
       kBook,
       "asset,weight\nA,0.5\nB,NaN\n",
       {},
       "targets.csv:3:2",
       "'NaN' is not a finite number (weight of 'B')"},
      {"unknown asset in long targets",
       kBook,
       "asset,weight\nA,0.5\nB,0.2\nMSFT,0.2\n",
       {},
       "targets.csv:4:1",
       "asset 'MSFT' is not in the book"},
      {"unknown asset in wide targets",
       kBook,
       "date,A,MSFT,B\n2024-01-02,0.5,0.2,0.2\n",
       {},
       "targets.csv:1:3",
       "asset 'MSFT' is not in the book"},
      {"book asset without a target",
       "asset,shares,price\nA,100,10\nB,50,20\nC,1,1\nCASH,5,1\n",
       kTargets,
       {},
       "book.csv:4:1",
       "asset 'C' has no target in"},
      {"duplicate asset in the book",
       "asset,shares,price\nA,100,10\nB,50,20\nA,1,10\nCASH,5,1\n",
       kTargets,
       {},
       "book.csv:4:1",
       "duplicate asset 'A' (also line 2)"},
      {"duplicate asset in long targets",
       kBook,
       "asset,weight\nA,0.5\nB,0.2\nA,0.1\n",
       {},
       "targets.csv:4:1",
       "duplicate asset 'A' (also line 2)"},
      {"duplicate asset in wide targets",
       kBook,
       "date,A,B,A\n2024-01-02,0.5,0.2,0.2\n",
       {},
       "targets.csv:1:4",
       "duplicate asset 'A' (also column 2)"},
      {"missing CASH row",
       "asset,shares,price\nA,100,10\nB,50,20\n",
       kTargets,
       {},
       "book.csv",
       "no CASH row"},
      {"two CASH rows",
       "asset,shares,price\nA,100,10\nCASH,1,1\nB,50,20\nCASH,500,1\n",
       kTargets,
       {},
       "book.csv:5:1",
       "duplicate asset 'CASH' (also line 3)"},
      {"CASH row with a price",
       "asset,shares,price\nA,100,10\nB,50,20\nCASH,500,1.1\n",
       kTargets,
       {},
       "book.csv:4:3",
       "the CASH row's price must be 1 or empty"},
      {"CASH target",
       kBook,
       "asset,weight\nA,0.5\nB,0.4\nCASH,0.1\n",
       {},
       "targets.csv:4:1",
       "the cash weight is implied"},
      {"negative lot size",
       "asset,shares,price,lot_size\nA,100,10,\nB,50,20,-5\nCASH,500,1,\n",
       kTargets,
       {},
       "book.csv:3:4",
       "lot size '-5' is not > 0 (asset 'B')"},
      {"negative adv",
       "asset,shares,price,adv\nA,100,10,1000\nB,50,20,-1\nCASH,500,1,\n",
       kTargets,
       {},
       "book.csv:3:4",
       "negative adv (asset 'B')"},
      {"empty adv cell under a cap",
       "asset,adv,shares,price\nA,1000,100,10\nB,,50,20\nCASH,,500,1\n",
       kTargets,
       {"--max-participation", "0.1"},
       "book.csv:3:2",
       "empty adv cell (asset 'B')"},
      {"too few cells",
       "asset,shares,price\nA,100,10\nB,50\nCASH,500,1\n",
       kTargets,
       {},
       "book.csv:3:3",
       "row has 2 cells, the header has 3"},
      {"too many cells",
       kBook,
       "asset,weight\nA,0.5,1\nB,0.4\n",
       {},
       "targets.csv:2:3",
       "row has 3 cells, the header has 2"},
      {"unknown column",
       "asset,shares,price,lots\nA,100,10,1\nCASH,500,1,\n",
       kTargets,
       {},
       "book.csv:1:4",
       "unknown column 'lots'"},
      {"duplicate column",
       "asset,shares,price,shares\nA,100,10,1\nCASH,500,1,\n",
       kTargets,
       {},
       "book.csv:1:4",
       "duplicate column 'shares' (also column 2)"},
      {"no price column",
       "asset,shares\nA,100\nCASH,500\n",
       kTargets,
       {},
       "book.csv:1",
       "the header has no 'price' column"},
      {"header not starting with asset",
       "name,shares,price\nA,100,10\nCASH,500,1\n",
       kTargets,
       {},
       "book.csv:1:1",
       "'name' is not 'asset'"},
      {"empty book", "", kTargets, {}, "book.csv:1:1", "the file is empty"},
      {"book without assets",
       "asset,shares,price\nCASH,500,1\n",
       kTargets,
       {},
       "book.csv:3:1",
       "no asset rows"},
      {"targets header only",
       kBook,
       "asset,weight\n",
       {},
       "targets.csv:2:1",
       "no data rows after the header"},
      {"wide targets header only",
       kBook,
       "date,A,B\n",
       {},
       "targets.csv:2:1",
       "no data rows after the header"},
      {"long header with a wrong column",
       kBook,
       "asset,target\nA,0.5\nB,0.4\n",
       {},
       "targets.csv:1:2",
       "a header starting with 'asset' must be asset,weight"},
      {"negative target, long-only",
       kBook,
       "asset,weight\nA,0.5\nB,-0.1\n",
       {},
       "targets.csv:3:2",
       "negative weight -0.1 for 'B' (long-only: pass --allow-short"},
      {"wide row with an empty cell",
       kBook,
       "date,A,B\n2024-01-02,0.5,0.4\n2024-01-03,,0.4\n",
       {},
       "targets.csv:3:2",
       "the cell is empty (weight of 'A', date 2024-01-03)"},
      // Wide targets use the last row, so their dates are checked as a price file's are.
      {"wide targets out of date order",
       kBook,
       "date,A,B\n2024-01-03,0.5,0.4\n2024-01-02,0.1,0.1\n",
       {},
       "targets.csv:3:1",
       "date 2024-01-02 comes after 2024-01-03 (line 2): rows must be sorted by date, oldest "
       "first"},
      {"wide targets with a duplicate date",
       kBook,
       "date,A,B\n2024-01-02,0.5,0.4\n2024-01-02,0.1,0.1\n",
       {},
       "targets.csv:3:1",
       "duplicate date 2024-01-02 (also on line 2)"},
      {"wide targets without dates",
       kBook,
       "name,A,B\nweight,0.5,0.4\n",
       {},
       "targets.csv:2:1",
       "'weight' is not an ISO 8601 date"},
      {"wide targets with dates in two formats",
       kBook,
       "date,A,B\n2024-01-02,0.5,0.4\n2024-01-02 00:00:00,0.1,0.1\n",
       {},
       "targets.csv:3:1",
       "date '2024-01-02 00:00:00' is not in the format of the first date '2024-01-02' (line 2)"},
      {"portfolio value of zero (the library's check)",
       "asset,shares,price\nA,0,10\nB,0,20\nCASH,0,1\n",
       kTargets,
       {},
       "",
       "portfolio value (shares · prices + cash)"},
      {"bad --min-trade",
       kBook,
       kTargets,
       {"--min-trade", "5 dollars"},
       "",
       "--min-trade: '5 dollars' is not a number >= 0 or a percentage (X%)"},
      {"--min-trade of 100%",
       kBook,
       kTargets,
       {"--min-trade", "100%"},
       "",
       "--min-trade: 100 must be below 100% of the portfolio value"},
      // A band of 1 (100%) or more keeps every asset inside it: nothing would ever trade.
      {"--band of 1",
       kBook,
       kTargets,
       {"--band", "1"},
       "",
       "--band: 1 must be below 1 (a band that wide keeps every asset inside it: nothing would "
       "trade)"},
      {"--band of 5, relative",
       kBook,
       kTargets,
       {"--band", "5", "--band-mode", "relative"},
       "",
       "--band: 5 must be below 1"},
      {"--band of 100%",
       kBook,
       kTargets,
       {"--band", "100%"},
       "",
       "--band: 100 must be below 100% (a band that wide keeps every asset inside it"},
      {"negative --cash-buffer",
       kBook,
       kTargets,
       {"--cash-buffer", "-5"},
       "",
       "--cash-buffer: '-5' is not a number >= 0"},
      {"zero --max-participation",
       kBook,
       kTargets,
       {"--max-participation", "0"},
       "",
       "--max-participation: 0 must be > 0"},
      {"zero --lot-size",
       kBook,
       kTargets,
       {"--lot-size", "0"},
       "",
       "--lot-size: 0 must be finite and > 0"},
      {"unknown --band-mode", kBook, kTargets, {"--band-mode", "percent"}, "", "--band-mode"},
      {"unknown --shortfall", kBook, kTargets, {"--shortfall", "sell"}, "", "--shortfall"},
      {"missing --targets", kBook, kTargets, {"--no-targets"}, "", "--targets"},
  };
  for (const BadInput& c : cases) {
    DYNAMIC_SECTION(c.name) {
      const auto dir = work_dir("rebalance_bad");
      write_text(dir / "book.csv", c.book);
      write_text(dir / "targets.csv", c.targets);
      std::vector<std::string> arguments = {"rebalance", "--book", (dir / "book.csv").string()};
      const bool drop_targets = !c.flags.empty() && c.flags[0] == "--no-targets";
      if (!drop_targets) {
        arguments.push_back("--targets");
        arguments.push_back((dir / "targets.csv").string());
        arguments.insert(arguments.end(), c.flags.begin(), c.flags.end());
      }
      const auto run = run_cli(arguments);
      INFO(run.err);
      CHECK(run.status == 2);
      CHECK(run.out.empty());
      CHECK(run.err.find("dynweight: ") == 0);
      if (*c.location != '\0') {
        const std::string prefix = "dynweight: " + (dir / c.location).string() + ": ";
        CHECK(run.err.substr(0, prefix.size()) == prefix);
      }
      CHECK(run.err.find(c.message) != std::string::npos);
      CHECK(std::count(run.err.begin(), run.err.end(), '\n') == 1);
    }
  }
}
