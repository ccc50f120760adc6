// `dynweight backtest`: its equity curve, trades and weights equal a `DynamicWeighter` driven bar
// by bar by the test (to 1e-12 relative), its summary equals statistics recomputed here from
// equity.csv, the triggers fire as the options say, every trade stays within --max-participation
// of an ADV recomputed here from the input files, the chart is an SVG, and bad input exits with
// status 2 leaving the output directory untouched. With --halflife: the weights equal inverse
// volatilities recomputed here from the price file (pandas' EWMA, summed term by term), and the
// participation cap is that of an EWMA ADV recomputed likewise.

#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "dynweight/market_reader.hpp"
#include "dynweight/overlays/overlay.hpp"
#include "dynweight/overlays/volatility_target.hpp"
#include "dynweight/overlays/weight_bounds.hpp"
#include "dynweight/pipeline/dynamic_weighter.hpp"
#include "dynweight/policies/correlation_shrinkage.hpp"
#include "dynweight/policies/inverse_volatility.hpp"
#include "dynweight/policies/risk_parity.hpp"

namespace {

namespace fs = std::filesystem;
using dynweight::cli::test::Bound;
using dynweight::cli::test::compare_tables;
using dynweight::cli::test::data_path;
using dynweight::cli::test::parse_rows;
using dynweight::cli::test::read_text;
using dynweight::cli::test::run_cli;
using dynweight::cli::test::work_dir;
using dynweight::cli::test::write_text;
using Eigen::Index;

constexpr double kTolerance = 1e-12;

std::string prices_csv() {
  return data_path("market/prices.csv").string();
}

std::string volumes_csv() {
  return data_path("market/volumes.csv").string();
}

std::string number(double value) {
  return fmt::format("{:.17g}", value);
}

// What the backtest should write, from a `DynamicWeighter` the test drives itself.
struct Expected {
  std::string equity;
  std::string trades;
  std::string weights;
  long rebalances = 0;
};

template <class Policy>
Expected drive(const std::string& prices, Policy policy,
               const dynweight::DynamicWeighterOptions& options) {
  dynweight::cli::MarketReader reader(prices, std::nullopt, dynweight::cli::MissingPolicy::error);
  const auto& names = reader.assets();
  dynweight::DynamicWeighter weighter(reader.asset_count(), std::move(policy), options, names);
  Expected expected;
  expected.equity = "date,value,cash,turnover,cost,rebalanced,reasons\n";
  expected.trades = "date,asset,shares_delta,price,notional,cost,limit\n";
  expected.weights = "date";
  for (const auto& name : names)
    expected.weights += "," + name;
  expected.weights += "\n";
  bool started = false;
  while (reader.next()) {
    const auto& bar = weighter.update(reader.prices());
    started = started || bar.rebalanced;
    if (!started)
      continue;
    const auto& plan = weighter.plan();
    const double turnover = bar.rebalanced ? plan.turnover : 0.0;
    const double cost = bar.rebalanced ? plan.total_cost : 0.0;
    expected.equity += fmt::format("{},{},{},{},{},{},{}\n", reader.date(), number(bar.value),
                                   number(weighter.cash()), number(turnover), number(cost),
                                   bar.rebalanced ? 1 : 0, dynweight::to_string(bar.reasons, "|"));
    if (!bar.rebalanced)
      continue;
    ++expected.rebalances;
    expected.weights += reader.date();
    for (Index i = 0; i < reader.asset_count(); ++i)  // not `"," + string`: g++ 12 -O3 -Wrestrict
      expected.weights.append(",").append(number(weighter.book_weights()(i)));
    expected.weights += "\n";
    for (Index i = 0; i < reader.asset_count(); ++i) {
      if (plan.shares_delta(i) == 0.0)
        continue;
      expected.trades += fmt::format(
          "{},{},{},{},{},{},{}\n", reader.date(), names[static_cast<std::size_t>(i)],
          number(plan.shares_delta(i)), number(reader.prices()(i)), number(plan.notional(i)),
          number(plan.cost(i)), dynweight::to_string(plan.limits[static_cast<std::size_t>(i)]));
    }
  }
  return expected;
}

// The number after "key": in summary.json (NaN for null).
double json_number(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\": ";
  const auto at = json.find(needle);
  if (at == std::string::npos)
    throw std::runtime_error("no key " + key + " in summary.json");
  const std::string rest = json.substr(at + needle.size());
  if (rest.rfind("null", 0) == 0)
    return std::numeric_limits<double>::quiet_NaN();
  return std::stod(rest);
}

std::string json_string(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\": \"";
  const auto at = json.find(needle);
  if (at == std::string::npos)
    throw std::runtime_error("no key " + key + " in summary.json");
  const auto start = at + needle.size();
  return json.substr(start, json.find('"', start) - start);
}

void check_relative(double actual, double expected) {
  INFO("actual " << number(actual) << ", expected " << number(expected));
  CHECK(std::abs(actual - expected) <= kTolerance * std::max(std::abs(expected), 1e-300));
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> files;
  if (fs::exists(dir)) {
    for (const auto& entry : fs::directory_iterator(dir))
      files.push_back(entry.path().filename().string());
  }
  return files;
}

// Prices of 6 assets over 320 rows: daily volatility 0.5% for 200 rows, then 4%.
std::string turbulent_prices() {
  std::uint64_t state = 20240917;
  const auto uniform = [&state]() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (static_cast<double>(state >> 11) + 0.5) * 0x1.0p-53;
  };
  const auto gaussian = [&uniform]() {
    return std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform());
  };
  std::string text = "date,A,B,C,D,E,F\n";
  std::vector<double> prices(6, 100.0);
  for (int t = 0; t < 320; ++t) {
    const double vol = t < 200 ? 0.005 : 0.04;
    const double common = gaussian();
    text += fmt::format("{:04d}-{:02d}-{:02d}", 2001 + t / 336, 1 + (t / 28) % 12, 1 + t % 28);
    for (double& price : prices) {
      price *= std::exp(vol * (0.6 * common + 0.8 * gaussian()));
      text.append(",").append(number(price));
    }
    text += "\n";
  }
  return text;
}

// Whole-share volumes in [1e5, 1e6) for the dates and assets of a price table: a participation
// cap of 0.1% then allows about 550 shares a trade, below the first purchases of a $1M book in
// market/prices.csv (about 1/6 of it at $11 to $137: 1200 to 15000 shares).
std::string generated_volumes(const std::string& prices) {
  std::uint64_t state = 20250214;
  const auto uniform = [&state]() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (static_cast<double>(state >> 11) + 0.5) * 0x1.0p-53;
  };
  const auto rows = parse_rows(prices);
  std::string text;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    text += rows[r][0];
    for (std::size_t c = 1; c < rows[r].size(); ++c)
      text.append(",").append(r == 0 ? rows[r][c] : number(std::floor(1e5 + 9e5 * uniform())));
    text += "\n";
  }
  return text;
}

// The numbers of a CSV table without its header, the first column (dates) dropped.
std::vector<std::vector<double>> table_numbers(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::vector<double>> numbers;
  for (std::size_t r = 1; r < rows.size(); ++r) {
    std::vector<double> row;
    for (std::size_t c = 1; c < rows[r].size(); ++c)
      row.push_back(std::stod(rows[r][c]));
    numbers.push_back(row);
  }
  return numbers;
}

// pandas' `ewm(halflife=H, adjust=True)` weight of the observation `age` bars before the newest.
double ewma_weight(double halflife, std::size_t age) {
  const double decay = std::exp(-std::log(2.0) / halflife);  // 1 − α
  double weight = 1.0;
  for (std::size_t k = 0; k < age; ++k)
    weight *= decay;
  return weight;
}

// pandas' `x.ewm(halflife=H, adjust=True).std(bias=False)` at the last element of `x`, summed term
// by term in two passes: the weighted mean, then the weighted squared deviations, times
// (Σw)² / ((Σw)² − Σw²).
double ewma_volatility(const std::vector<double>& x, double halflife) {
  const std::size_t count = x.size();
  double sum_weight = 0.0, sum_weight_squared = 0.0, mean = 0.0;
  for (std::size_t k = 0; k < count; ++k) {
    const double weight = ewma_weight(halflife, count - 1 - k);
    sum_weight += weight;
    sum_weight_squared += weight * weight;
    mean += weight * x[k];
  }
  mean /= sum_weight;
  double squares = 0.0;
  for (std::size_t k = 0; k < count; ++k)
    squares += ewma_weight(halflife, count - 1 - k) * (x[k] - mean) * (x[k] - mean);
  const double biased = squares / sum_weight;
  return std::sqrt(biased * sum_weight * sum_weight /
                   (sum_weight * sum_weight - sum_weight_squared));
}

// Runs `base` plus each case's arguments (and `fallback`, unless the case gives its first option
// itself) and requires exit 2 with the case's message on stderr, nothing on stdout, and no `out`.
void require_refused(const std::vector<std::string>& base,
                     const std::vector<std::pair<std::vector<std::string>, std::string>>& cases,
                     const fs::path& out, const std::vector<std::string>& fallback = {}) {
  for (const auto& [extra, message] : cases) {
    std::vector<std::string> arguments = base;
    if (!fallback.empty() && extra.front() != fallback.front())
      arguments.insert(arguments.end(), fallback.begin(), fallback.end());
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    const auto result = run_cli(arguments);
    CAPTURE(message);
    CHECK(result.status == 2);
    CHECK(result.err.find(message) != std::string::npos);
    CHECK(result.out.empty());
    CHECK_FALSE(fs::exists(out));
  }
}

using Rows = std::vector<std::vector<std::string>>;

// Requires every trade in `trades_file` within `cap` times the asset's ADV in shares at its date:
// `dollar_volume(prices, volumes, row, column)` (rows of the two files, the header at 0) divided
// by that date's price; a trade marked `participation` within one share of it (lots of 1: the
// largest whole number within the cap), and at least one such trade.
void require_within_participation(const std::string& prices_text, const fs::path& volumes_file,
                                  const fs::path& trades_file, double cap,
                                  const std::function<double(const Rows&, const Rows&, std::size_t,
                                                             std::size_t)>& dollar_volume) {
  const Rows prices = parse_rows(prices_text);
  const Rows volumes = parse_rows(read_text(volumes_file));
  std::map<std::string, std::size_t> row_of;
  for (std::size_t r = 1; r < prices.size(); ++r)
    row_of[prices[r][0]] = r;
  std::map<std::string, std::size_t> column_of;
  for (std::size_t c = 1; c < prices[0].size(); ++c)
    column_of[prices[0][c]] = c;
  const Rows trades = parse_rows(read_text(trades_file));
  REQUIRE(trades.size() > 1);
  long participation = 0;
  for (std::size_t t = 1; t < trades.size(); ++t) {
    const auto& trade = trades[t];
    const std::size_t row = row_of.at(trade[0]);
    const std::size_t column = column_of.at(trade[1]);
    const double limit =
        cap * dollar_volume(prices, volumes, row, column) / std::stod(prices[row][column]);
    const double shares = std::abs(std::stod(trade[2]));
    INFO(trade[0] << " " << trade[1] << ": " << number(shares) << " shares, " << trade[6]
                  << ", cap " << number(limit));
    CHECK(shares <= limit * (1.0 + 1e-12));
    if (trade[6] == "participation") {
      ++participation;
      CHECK(shares > limit - 1.0);
    }
  }
  CHECK(participation >= 1);
}

// The tool's equity, trades and weights in `out` equal the library's to kTolerance, element by
// element, and so does the number of rebalances in its summary.
void require_outputs(const fs::path& out, const Expected& expected) {
  CHECK(compare_tables(read_text(out / "equity.csv"), expected.equity, kTolerance,
                       Bound::elementwise) == "");
  CHECK(compare_tables(read_text(out / "trades.csv"), expected.trades, kTolerance,
                       Bound::elementwise) == "");
  CHECK(compare_tables(read_text(out / "weights.csv"), expected.weights, kTolerance,
                       Bound::elementwise) == "");
  CHECK(json_number(read_text(out / "summary.json"), "rebalances") ==
        static_cast<double>(expected.rebalances));
}

}  // namespace

TEST_CASE("backtest: outputs equal DynamicWeighter driven bar by bar", "[cli][backtest]") {
  const fs::path out = work_dir("backtest_reference") / "out";
  dynweight::DynamicWeighterOptions options;
  options.moments.window = 20;
  options.rebalance.cost_bps = 5.0;
  options.rebalance.fee_per_trade = 1.0;
  options.initial_cash = 250000.0;
  Expected expected;
  std::vector<std::string> arguments = {"backtest", "--prices",        prices_csv(), "--window",
                                        "20",       "--annualization", "252",        "--cost-bps",
                                        "5",        "--fee",           "1",          "--capital",
                                        "250000",   "--out",           out.string()};
  SECTION("risk parity, calendar only") {
    options.every = 10;
    expected = drive(prices_csv(), dynweight::RiskParity<double>(), options);
    arguments.insert(arguments.end(), {"--policy", "risk-parity", "--every", "10"});
  }
  SECTION("risk parity, a cash buffer that binds, buys cut first") {
    options.every = 10;
    options.rebalance.cash_buffer_fraction = 0.05;
    options.rebalance.shortfall = dynweight::CashShortfall::cut_buys_first;
    expected = drive(prices_csv(), dynweight::RiskParity<double>(), options);
    arguments.insert(arguments.end(), {"--policy", "risk-parity", "--every", "10", "--cash-buffer",
                                       "5%", "--shortfall", "cut-buys"});
  }
  SECTION("inverse volatility, capped and vol-targeted, drift trigger and lots") {
    options.every = 30;
    options.drift_band = 0.01;
    options.rebalance.lot_size = 10.0;
    const auto n = static_cast<Index>(6);
    dynweight::Overlaid policy(
        dynweight::InverseVolatility<double>(), dynweight::WeightBounds<double>(n, 0.0, 0.25),
        dynweight::VolatilityTarget<double>({.target = 0.08, .annualization = 252}));
    expected = drive(prices_csv(), std::move(policy), options);
    arguments.insert(arguments.end(),
                     {"--policy", "inverse-vol", "--every", "30", "--drift-band", "0.01",
                      "--lot-size", "10", "--max-weight", "0.25", "--vol-target", "0.08"});
  }
  const auto result = run_cli(arguments);
  INFO(result.err);
  REQUIRE(result.status == 0);
  CHECK(result.out.empty());
  for (const char* file : {"weights.csv", "trades.csv", "equity.csv", "summary.json", "chart.svg"})
    CHECK(fs::is_regular_file(out / file));
  require_outputs(out, expected);
  CHECK(parse_rows(read_text(out / "trades.csv")).size() > 1);
}

TEST_CASE("backtest: summary.json equals statistics recomputed from equity.csv",
          "[cli][backtest]") {
  const fs::path out = work_dir("backtest_summary") / "out";
  const double annualization = 252.0;
  const auto result = run_cli({"backtest", "--prices", prices_csv(), "--policy", "risk-parity",
                               "--window", "20", "--every", "7", "--annualization", "252",
                               "--cost-bps", "10", "--out", out.string()});
  INFO(result.err);
  REQUIRE(result.status == 0);
  const std::string summary = read_text(out / "summary.json");
  const auto rows = parse_rows(read_text(out / "equity.csv"));
  REQUIRE(rows.size() > 3);
  std::vector<double> values;
  double turnover = 0.0, costs = 0.0;
  long rebalances = 0, calendar = 0, initial = 0;
  for (std::size_t r = 1; r < rows.size(); ++r) {
    values.push_back(std::stod(rows[r][1]));
    turnover += std::stod(rows[r][3]);
    costs += std::stod(rows[r][4]);
    rebalances += rows[r][5] == "1" ? 1 : 0;
    calendar += rows[r][6].find("calendar") != std::string::npos ? 1 : 0;
    initial += rows[r][6].find("initial") != std::string::npos ? 1 : 0;
  }
  // Two passes over log returns and simple returns, independently of the tool's code.
  const auto periods = static_cast<double>(values.size() - 1);
  const double cagr =
      std::exp(annualization / periods * std::log(values.back() / values.front())) - 1.0;
  std::vector<double> returns;
  for (std::size_t t = 1; t < values.size(); ++t)
    returns.push_back((values[t] - values[t - 1]) / values[t - 1]);
  double mean = 0.0;
  for (const double r : returns)
    mean += r / periods;
  double variance = 0.0;
  for (const double r : returns)
    variance += (r - mean) * (r - mean) / (periods - 1.0);
  double peak = 0.0, drawdown = 0.0;
  for (const double value : values) {
    peak = std::max(peak, value);
    drawdown = std::max(drawdown, (peak - value) / peak);
  }
  check_relative(json_number(summary, "cagr"), cagr);
  check_relative(json_number(summary, "annualized_volatility"),
                 std::sqrt(variance * annualization));
  check_relative(json_number(summary, "sharpe"), mean / std::sqrt(variance / annualization));
  check_relative(json_number(summary, "max_drawdown"), drawdown);
  check_relative(json_number(summary, "total_turnover"), turnover);
  check_relative(json_number(summary, "total_costs"), costs);
  check_relative(json_number(summary, "final_value"), values.back());
  CHECK(json_number(summary, "risk_free_rate") == 0.0);
  CHECK(json_string(summary, "first_date") == rows[1][0]);
  CHECK(json_string(summary, "last_date") == rows.back()[0]);
  // 120 price rows, window 20: 100 ready bars, a calendar rebalance at ready bars 0, 7, ..., 98.
  CHECK(rebalances == 15);
  CHECK(calendar == 15);
  CHECK(initial == 1);
  CHECK(json_number(summary, "rebalances") == 15.0);
  CHECK(summary.find("\"calendar\": 15") != std::string::npos);
  CHECK(summary.find("\"regime\": 0") != std::string::npos);
  CHECK(values.size() == 100);
}

TEST_CASE("backtest: --every K gives ceil(ready bars / K) rebalances", "[cli][backtest]") {
  for (const int every : {1, 10, 33, 200}) {
    const fs::path out = work_dir("backtest_every") / "out";
    const auto result = run_cli({"backtest", "--prices", prices_csv(), "--policy", "inverse-vol",
                                 "--window", "20", "--every", std::to_string(every),
                                 "--annualization", "252", "--out", out.string()});
    INFO("--every " << every << ": " << result.err);
    REQUIRE(result.status == 0);
    const long expected = (100 + every - 1) / every;
    CHECK(json_number(read_text(out / "summary.json"), "rebalances") ==
          static_cast<double>(expected));
    CHECK(parse_rows(read_text(out / "weights.csv")).size() ==
          static_cast<std::size_t>(expected) + 1);
  }
}

TEST_CASE("backtest: the regime trigger fires on a volatility jump", "[cli][backtest]") {
  const fs::path dir = work_dir("backtest_regime");
  write_text(dir / "turbulent.csv", turbulent_prices());
  const auto run = [&dir](bool regime) {
    const fs::path out = dir / (regime ? "with" : "without");
    std::vector<std::string> arguments = {"backtest",        (dir / "turbulent.csv").string(),
                                          "--policy",        "risk-parity",
                                          "--window",        "20",
                                          "--every",         "1000",
                                          "--annualization", "252",
                                          "--out",           out.string()};
    arguments.insert(arguments.begin() + 1, "--prices");
    if (regime)
      arguments.insert(arguments.end(), {"--regime", "1.5,1.2", "--regime-halflives", "5,50"});
    const auto result = run_cli(arguments);
    INFO(result.err);
    REQUIRE(result.status == 0);
    return out;
  };
  const fs::path with = run(true);
  const std::string summary = read_text(with / "summary.json");
  const auto rows = parse_rows(read_text(with / "equity.csv"));
  long regime_rows = 0;
  std::string first_regime_date;
  for (std::size_t r = 1; r < rows.size(); ++r) {
    if (rows[r][6].find("regime") != std::string::npos) {
      ++regime_rows;
      if (first_regime_date.empty())
        first_regime_date = rows[r][0];
    }
  }
  CHECK(regime_rows >= 1);
  CHECK(json_number(summary, "rebalances") == static_cast<double>(1 + regime_rows));
  CHECK(summary.find(fmt::format("\"regime\": {}", regime_rows)) != std::string::npos);
  // The jump is at row 201 (0-based 200): the trigger fires after it, not before.
  const auto prices = parse_rows(turbulent_prices());
  CHECK(first_regime_date > prices[200][0]);

  const std::string calm = read_text(run(false) / "summary.json");
  CHECK(json_number(calm, "rebalances") == 1.0);
  CHECK(calm.find("\"regime\": 0") != std::string::npos);
}

TEST_CASE("backtest: --max-participation caps every trade at X times the ADV in shares",
          "[cli][backtest]") {
  const fs::path dir = work_dir("backtest_participation");
  const std::string prices_text = read_text(prices_csv());
  write_text(dir / "volumes.csv", generated_volumes(prices_text));
  const fs::path out = dir / "out";
  const auto result =
      run_cli({"backtest", "--prices", prices_csv(), "--volumes", (dir / "volumes.csv").string(),
               "--policy", "risk-parity", "--window", "20", "--every", "5", "--annualization",
               "252", "--max-participation", "0.001", "--out", out.string()});
  INFO(result.err);
  REQUIRE(result.status == 0);

  // ADV in shares, recomputed from the files: the mean of price x volume over the W = 20 price
  // rows up to and including the trade's date, divided by that date's price.
  const std::size_t window = 20;
  require_within_participation(
      prices_text, dir / "volumes.csv", out / "trades.csv", 0.001,
      [&](const Rows& prices, const Rows& volumes, std::size_t row, std::size_t column) {
        REQUIRE(row >= window);
        double dollar_volume = 0.0;
        for (std::size_t k = row + 1 - window; k <= row; ++k)
          dollar_volume += std::stod(prices[k][column]) * std::stod(volumes[k][column]);
        return dollar_volume / static_cast<double>(window);
      });
}

TEST_CASE("backtest: a --max-participation that never binds changes nothing", "[cli][backtest]") {
  const fs::path dir = work_dir("backtest_participation_loose");
  write_text(dir / "volumes.csv", generated_volumes(read_text(prices_csv())));
  const auto run = [&dir](const std::string& name, const std::vector<std::string>& extra) {
    std::vector<std::string> arguments = {
        "backtest", "--prices",   prices_csv(), "--policy", "risk-parity",
        "--window", "20",         "--every",    "5",        "--annualization",
        "252",      "--cost-bps", "5",          "--out",    (dir / name).string()};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    const auto result = run_cli(arguments);
    INFO(result.err);
    REQUIRE(result.status == 0);
    return dir / name;
  };
  // 100% of an ADV of 1e5 shares or more: above any trade of a $1M book in these prices.
  const fs::path plain = run("plain", {});
  const fs::path loose =
      run("loose", {"--volumes", (dir / "volumes.csv").string(), "--max-participation", "100%"});
  for (const char* file :
       {"weights.csv", "trades.csv", "equity.csv", "summary.json", "chart.svg"}) {
    INFO(file);
    CHECK(read_text(loose / file) == read_text(plain / file));
  }
  CHECK(read_text(loose / "trades.csv").find("participation") == std::string::npos);
}

TEST_CASE("backtest --halflife: outputs equal DynamicWeighter on EWMA estimates",
          "[cli][backtest]") {
  const fs::path out = work_dir("backtest_halflife_reference") / "out";
  dynweight::DynamicWeighterOptions options;
  options.ewma =
      dynweight::EwmaOptions{.decay = dynweight::EwmaDecay::from_halflife(12.5), .min_periods = 2};
  options.every = 9;
  options.rebalance.cost_bps = 5.0;
  Expected expected;
  std::vector<std::string> arguments = {
      "backtest", "--prices", prices_csv(), "--halflife", "12.5",  "--annualization", "252",
      "--every",  "9",        "--cost-bps", "5",          "--out", out.string()};
  SECTION("risk parity") {
    expected = drive(prices_csv(), dynweight::RiskParity<double>(), options);
    arguments.insert(arguments.end(), {"--policy", "risk-parity"});
  }
  SECTION("a fixed shrinkage intensity, drift trigger") {
    options.drift_band = 0.02;
    dynweight::CorrelationShrinkage policy(dynweight::RiskParity<double>(),
                                           dynweight::ShrinkageTarget::scaled_identity, 0.3);
    expected = drive(prices_csv(), std::move(policy), options);
    arguments.insert(arguments.end(),
                     {"--policy", "shrinkage", "--shrinkage", "0.3", "--drift-band", "0.02"});
  }
  const auto result = run_cli(arguments);
  INFO(result.err);
  REQUIRE(result.status == 0);
  CHECK(result.out.empty());
  require_outputs(out, expected);
}

TEST_CASE("backtest --halflife: inverse-vol weights are 1/sigma of pandas' EWMA volatility",
          "[cli][backtest]") {
  // Lots of 2e-11 shares: at most 1e6 / 9.3 / 2e-11 = 5.4e15 lots (below 2^53) of the cheapest
  // asset, and a position of 100 shares or more is 5e12 lots, so the book's weights after the
  // trades are the targets to 2e-13 of themselves (whole lots, cash levelled).
  const double halflife = 7.5;
  const std::size_t every = 9;
  const fs::path out = work_dir("backtest_halflife_inverse_vol") / "out";
  const auto result = run_cli({"backtest", "--prices", prices_csv(), "--policy", "inverse-vol",
                               "--halflife", "7.5", "--every", std::to_string(every), "--lot-size",
                               "2e-11", "--annualization", "252", "--out", out.string()});
  INFO(result.err);
  REQUIRE(result.status == 0);

  const auto price_rows = parse_rows(read_text(prices_csv()));
  const auto prices = table_numbers(price_rows);
  const auto weight_rows = parse_rows(read_text(out / "weights.csv"));
  const auto weights = table_numbers(weight_rows);
  CHECK(weight_rows[0] == price_rows[0]);
  // Ready with two returns, at price row 3 (index 2), then every 9th bar: rows 2, 11, ..., 110.
  REQUIRE(weights.size() == (prices.size() - 2 + every - 1) / every);
  REQUIRE(weights.size() >= 10);
  const std::size_t n = prices[0].size();
  for (std::size_t k = 0; k < weights.size(); ++k) {
    const std::size_t row = 2 + k * every;
    INFO("rebalance " << k << " at " << price_rows[row + 1][0]);
    REQUIRE(weight_rows[k + 1][0] == price_rows[row + 1][0]);
    std::vector<double> inverse(n);
    double sum = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<double> returns;
      for (std::size_t t = 1; t <= row; ++t)
        returns.push_back(prices[t][i] / prices[t - 1][i] - 1.0);
      inverse[i] = 1.0 / ewma_volatility(returns, halflife);
      sum += inverse[i];
    }
    for (std::size_t i = 0; i < n; ++i) {
      const double target = inverse[i] / sum;
      INFO(price_rows[0][i + 1] << ": " << number(weights[k][i]) << " vs " << number(target));
      CHECK(std::abs(weights[k][i] - target) <= kTolerance * target);
    }
  }
}

TEST_CASE("backtest --halflife: --max-participation caps trades at X times the EWMA ADV",
          "[cli][backtest]") {
  const fs::path dir = work_dir("backtest_halflife_participation");
  const std::string prices_text = read_text(prices_csv());
  write_text(dir / "volumes.csv", generated_volumes(prices_text));
  const fs::path out = dir / "out";
  const double halflife = 10.0;
  const double cap = 0.001;
  const auto result =
      run_cli({"backtest", "--prices", prices_csv(), "--volumes", (dir / "volumes.csv").string(),
               "--policy", "risk-parity", "--halflife", "10", "--every", "5", "--annualization",
               "252", "--max-participation", "0.001", "--out", out.string()});
  INFO(result.err);
  REQUIRE(result.status == 0);

  // ADV in shares, recomputed from the files: pandas' ewm(halflife=10, adjust=True).mean() of
  // price x volume over every price row up to and including the trade's date, divided by that
  // date's price.
  require_within_participation(
      prices_text, dir / "volumes.csv", out / "trades.csv", cap,
      [&](const Rows& prices, const Rows& volumes, std::size_t row, std::size_t column) {
        double weighted = 0.0, sum_weight = 0.0;
        for (std::size_t k = 1; k <= row; ++k) {
          const double weight = ewma_weight(halflife, row - k);
          weighted += weight * std::stod(prices[k][column]) * std::stod(volumes[k][column]);
          sum_weight += weight;
        }
        return weighted / sum_weight;
      });
  const auto prices = parse_rows(prices_text);
  const auto trades = parse_rows(read_text(out / "trades.csv"));
  CHECK(trades[1][0] == prices[3][0]);  // the first rebalance: price row 3
}

TEST_CASE("backtest --halflife --min-periods P: the first rebalance is at price row P + 1",
          "[cli][backtest]") {
  const fs::path out = work_dir("backtest_halflife_min_periods") / "out";
  const auto result = run_cli({"backtest", "--prices", prices_csv(), "--policy", "inverse-vol",
                               "--halflife", "10", "--min-periods", "30", "--every", "5",
                               "--annualization", "252", "--out", out.string()});
  INFO(result.err);
  REQUIRE(result.status == 0);
  const auto price_rows = parse_rows(read_text(prices_csv()));
  const auto equity_rows = parse_rows(read_text(out / "equity.csv"));
  REQUIRE(equity_rows.size() >= 2);
  // Row 0 is the header: price row 31 (30 returns) is line 31 of the file.
  CHECK(equity_rows[1][0] == price_rows[31][0]);
  CHECK(equity_rows[1][6] == "initial|calendar");
}

TEST_CASE("backtest: chart.svg is an SVG with the equity curve and the weights",
          "[cli][backtest]") {
  const fs::path out = work_dir("backtest_chart") / "out";
  const auto result =
      run_cli({"backtest", "--prices", prices_csv(), "--policy", "risk-parity", "--window", "20",
               "--every", "10", "--annualization", "252", "--out", out.string()});
  REQUIRE(result.status == 0);
  std::string svg = read_text(out / "chart.svg");
  while (!svg.empty() && (svg.back() == '\n' || svg.back() == ' '))
    svg.pop_back();
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.size() >= 6);
  CHECK(svg.substr(svg.size() - 6) == "</svg>");
  CHECK(svg.find("<polyline") != std::string::npos);
  CHECK(svg.find("<path") != std::string::npos);
  for (const char* name : {"A001", "A006", "cash", "2015-01-30"})
    CHECK(svg.find(name) != std::string::npos);
  std::size_t opened = 0, closed = 0;
  for (const char c : svg) {
    opened += c == '<' ? 1 : 0;
    closed += c == '>' ? 1 : 0;
  }
  CHECK(opened == closed);
}

TEST_CASE("backtest: bad input exits with status 2 and writes nothing", "[cli][backtest]") {
  const fs::path dir = work_dir("backtest_errors");
  const fs::path out = dir / "out";
  SECTION("--annualization is required") {
    const auto result = run_cli({"backtest", "--prices", prices_csv(), "--policy", "risk-parity",
                                 "--window", "20", "--every", "10", "--out", out.string()});
    CHECK(result.status == 2);
    CHECK(result.err.find("--annualization") != std::string::npos);
    CHECK(result.out.empty());
    CHECK_FALSE(fs::exists(out));
  }
  SECTION("a malformed price, half-way through the file") {
    auto rows = parse_rows(read_text(prices_csv()));
    std::string text;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      if (r == 79)
        rows[r][2] = "1.2.3";
      for (std::size_t c = 0; c < rows[r].size(); ++c)
        text += (c == 0 ? "" : ",") + rows[r][c];
      text += "\n";
    }
    write_text(dir / "bad.csv", text);
    fs::create_directories(out);
    const auto result = run_cli({"backtest", "--prices", (dir / "bad.csv").string(), "--policy",
                                 "risk-parity", "--window", "20", "--every", "10",
                                 "--annualization", "252", "--out", out.string()});
    CHECK(result.status == 2);
    CHECK(result.err.find("bad.csv:80:3:") != std::string::npos);
    CHECK(result.out.empty());
    CHECK(files_in(out).empty());
  }
  SECTION("too few rows for the window") {
    const auto result =
        run_cli({"backtest", "--prices", prices_csv(), "--policy", "risk-parity", "--window", "200",
                 "--every", "10", "--annualization", "252", "--out", out.string()});
    CHECK(result.status == 2);
    CHECK(result.err.find("not enough rows") != std::string::npos);
    CHECK_FALSE(fs::exists(out));
  }
  SECTION("a bad regime pair") {
    const auto result = run_cli({"backtest", "--prices", prices_csv(), "--policy", "risk-parity",
                                 "--window", "20", "--every", "10", "--annualization", "252",
                                 "--regime", "1.1,1.3", "--out", out.string()});
    CHECK(result.status == 2);
    CHECK(result.err.find("--regime") != std::string::npos);
    CHECK_FALSE(fs::exists(out));
  }
  SECTION("--max-participation is checked as rebalance checks it, and needs --volumes") {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--max-participation", "0.01"}, "--max-participation needs --volumes"},
        {{"--volumes", volumes_csv()},
         "--volumes is read by --policy liquidity and --max-participation only"},
        {{"--volumes", volumes_csv(), "--max-participation", "0"},
         "--max-participation: 0 must be > 0"},
        {{"--volumes", volumes_csv(), "--max-participation", "-0.1"},
         "--max-participation: '-0.1' is not a number >= 0 or a percentage (X%)"},
        {{"--volumes", volumes_csv(), "--max-participation", "nan"},
         "--max-participation: 'nan' is not a number >= 0 or a percentage (X%)"},
        {{"--volumes", volumes_csv(), "--max-participation", "inf"},
         "--max-participation: 'inf' is not a number >= 0 or a percentage (X%)"},
        {{"--volumes", volumes_csv(), "--max-participation", "1e400"},
         "--max-participation: '1e400' is not a number >= 0 or a percentage (X%)"}};
    require_refused({"backtest", "--prices", prices_csv(), "--policy", "risk-parity", "--window",
                     "20", "--every", "10", "--annualization", "252", "--out", out.string()},
                    cases, out);
  }
  SECTION("trading options are checked as rebalance checks them") {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--fee", "-1"}, "--fee: -1 must be finite and >= 0"},
        {{"--min-trade", "100%"}, "--min-trade: 100 must be below 100% of the portfolio value"},
        {{"--cash-buffer", "1 dollar"}, "--cash-buffer: '1 dollar' is not a number >= 0"},
        {{"--lot-size", "0"}, "--lot-size: 0 must be finite and > 0"},
        {{"--band", "150%"}, "--band: 150 must be below 100%"}};
    require_refused({"backtest", "--prices", prices_csv(), "--policy", "risk-parity", "--window",
                     "20", "--every", "10", "--annualization", "252", "--out", out.string()},
                    cases, out);
  }
}

TEST_CASE("backtest: --window or --halflife, exactly one, checked as weights checks them",
          "[cli][backtest]") {
  const fs::path dir = work_dir("backtest_estimator_errors");
  const fs::path out = dir / "out";
  std::string two_rows;
  {
    const auto rows = parse_rows(read_text(prices_csv()));
    for (std::size_t r = 0; r < 3; ++r) {
      for (std::size_t c = 0; c < rows[r].size(); ++c)
        two_rows += (c == 0 ? "" : ",") + rows[r][c];
      two_rows += "\n";
    }
  }
  write_text(dir / "two_rows.csv", two_rows);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--policy", "risk-parity"}, "give exactly one of --window and --halflife"},
      {{"--policy", "risk-parity", "--window", "20", "--halflife", "10"},
       "--window excludes --halflife"},
      {{"--policy", "risk-parity", "--halflife", "0"}, "--halflife: '0' is not a number > 0"},
      {{"--policy", "risk-parity", "--halflife", "-5"}, "--halflife: '-5' is not a number > 0"},
      {{"--policy", "risk-parity", "--halflife", "nan"}, "--halflife: 'nan' is not a number > 0"},
      {{"--policy", "risk-parity", "--halflife", "inf"}, "--halflife: 'inf' is not a number > 0"},
      {{"--policy", "risk-parity", "--halflife", "0.01"},
       "--halflife 0.01 is too short: alpha = 1 - exp(-ln 2 / H) rounds to 1"},
      {{"--policy", "shrinkage", "--shrinkage", "lw-identity", "--halflife", "10"},
       "--shrinkage lw-identity estimates its intensity from the observations of a rolling "
       "window and needs --window; with --halflife give a fixed intensity in [0, 1] (e.g. "
       "--shrinkage 0.3)"},
      {{"--policy", "shrinkage", "--shrinkage", "oas", "--halflife", "10"},
       "--shrinkage oas estimates its intensity from the observations of a rolling window"},
      {{"--policy", "liquidity", "--volumes", volumes_csv(), "--shrinkage",
        "lw-constant-correlation", "--halflife", "10"},
       "--shrinkage lw-constant-correlation estimates its intensity from the observations of a "
       "rolling window"},
      {{"--policy", "risk-parity", "--halflife", "10", "--max-participation", "0.01"},
       "--max-participation needs --volumes"},
      {{"--policy", "risk-parity", "--window", "20", "--min-periods", "5"},
       "--min-periods is read with --halflife only"},
      {{"--policy", "risk-parity", "--halflife", "10", "--min-periods", "1"},
       "--min-periods: '1' is outside the range 2 to"},
      {{"--policy", "risk-parity", "--halflife", "10", "--min-periods", "200"},
       "not enough rows for the estimates: --halflife 10 needs 201 price rows"},
      {{"--prices", (dir / "two_rows.csv").string(), "--policy", "risk-parity", "--halflife", "10"},
       "two_rows.csv: not enough rows for the estimates: --halflife 10 needs 3 price rows, the "
       "file has 2"}};
  // The default --prices, unless the case gives its own (the two-row file).
  require_refused({"backtest", "--every", "10", "--annualization", "252", "--out", out.string()},
                  cases, out, {"--prices", prices_csv()});
}

TEST_CASE("backtest: when no rebalance could trade, the error gives the last one's reason",
          "[cli][backtest]") {
  const fs::path dir = work_dir("backtest_nothing_traded");
  const fs::path out = dir / "out";
  SECTION("the policy gave no weights: status 1, as weights") {
    // Prices that never move: no asset has a volatility, inverse-vol has no weights.
    std::string text = "date,A,B\n";
    for (int day = 1; day <= 25; ++day)
      text += fmt::format("2024-01-{:02d},100,50\n", day);
    write_text(dir / "flat.csv", text);
    const auto result =
        run_cli({"backtest", "--prices", (dir / "flat.csv").string(), "--window", "10", "--policy",
                 "inverse-vol", "--every", "5", "--annualization", "252", "--out", out.string()});
    INFO(result.err);
    CHECK(result.status == 1);
    CHECK(result.out.empty());
    CHECK(result.err.rfind("dynweight: the policy produced no weights: nothing was traded (last: "
                           "2024-01-25: numerical_issue: ",
                           0) == 0);
    CHECK_FALSE(fs::exists(out));
  }
  SECTION("2^53 lots or more: --capital is bad input, status 2") {
    const auto result = run_cli({"backtest", "--prices", prices_csv(), "--window", "20", "--policy",
                                 "risk-parity", "--every", "10", "--annualization", "252",
                                 "--capital", "1e20", "--out", out.string()});
    INFO(result.err);
    CHECK(result.status == 2);
    CHECK(result.out.empty());
    CHECK(result.err.rfind("dynweight: nothing was traded (last: ", 0) == 0);
    CHECK(result.err.find(": numerical_issue: a target or holding is 2^53 lots or more") !=
          std::string::npos);
    CHECK(result.err.find("--capital 1e+20 buys 2^53 lots or more of an asset at --lot-size 1") !=
          std::string::npos);
    CHECK_FALSE(fs::exists(out));
  }
}

TEST_CASE("backtest: an output that cannot be replaced leaves every old output as it was",
          "[cli][backtest]") {
  // One of the five targets is a non-empty directory, so renaming a file over it fails: the
  // replacement must be all or nothing, whichever file it is.
  const std::vector<std::string> outputs = {"weights.csv", "trades.csv", "equity.csv",
                                            "summary.json", "chart.svg"};
  const auto backtest = [](const fs::path& out, const std::string& every) {
    return run_cli({"backtest", "--prices", prices_csv(), "--policy", "risk-parity", "--window",
                    "20", "--every", every, "--annualization", "252", "--out", out.string()});
  };
  for (const std::string& blocked : outputs) {
    DYNAMIC_SECTION("blocked: " << blocked) {
      const fs::path out = work_dir("backtest_all_or_nothing") / "out";
      REQUIRE(backtest(out, "10").status == 0);
      fs::remove(out / blocked);
      fs::create_directories(out / blocked);
      write_text(out / blocked / "keep.txt", "not a file the backtest writes\n");
      std::vector<std::string> old_text;
      for (const auto& name : outputs)
        old_text.push_back(name == blocked ? std::string() : read_text(out / name));

      const auto result = backtest(out, "7");  // other trades: every file would change
      INFO(result.err);
      CHECK(result.status == 1);
      CHECK(result.out.empty());
      CHECK(result.err.rfind("dynweight: cannot replace '" + (out / blocked).string() + "'", 0) ==
            0);
      CHECK(result.err.find("no file in '" + out.string() + "' was changed") != std::string::npos);
      for (std::size_t k = 0; k < outputs.size(); ++k) {
        INFO(outputs[k]);
        if (outputs[k] == blocked)
          CHECK(read_text(out / blocked / "keep.txt") == "not a file the backtest writes\n");
        else
          CHECK(read_text(out / outputs[k]) == old_text[k]);
      }
      auto files = files_in(out);  // no temporary or set-aside file is left behind
      std::sort(files.begin(), files.end());
      auto expected = outputs;
      std::sort(expected.begin(), expected.end());
      CHECK(files == expected);
    }
  }
}
