// `dynweight weights`: its output equals the library's policies called directly on the same
// streaming engines (to 1e-15 relative, elementwise), rows come at the dates --every / --all say,
// the overlays' guarantees hold in the printed numbers, and bad input exits with status 2.

#include <fmt/format.h>

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "dynweight/estimators/rolling_shrinkage.hpp"
#include "dynweight/market_reader.hpp"
#include "dynweight/overlays/overlay.hpp"
#include "dynweight/overlays/volatility_target.hpp"
#include "dynweight/overlays/weight_bounds.hpp"
#include "dynweight/policies/correlation_shrinkage.hpp"
#include "dynweight/policies/inverse_volatility.hpp"
#include "dynweight/policies/liquidity_scaled.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "dynweight/stats/dollar_volume.hpp"
#include "dynweight/stats/ewma_moments.hpp"
#include "dynweight/stats/returns.hpp"
#include "dynweight/stats/rolling_moments.hpp"

namespace {

using dynweight::cli::test::Bound;
using dynweight::cli::test::compare_tables;
using dynweight::cli::test::data_path;
using dynweight::cli::test::parse_rows;
using dynweight::cli::test::read_text;
using dynweight::cli::test::run_cli;
using dynweight::cli::test::work_dir;
using dynweight::cli::test::write_text;
using Eigen::Index;
using Eigen::VectorXd;

// The CLI runs the library's own arithmetic and prints 17 digits, which read back exactly.
constexpr double kLibraryTolerance = 1e-15;
constexpr Index kAssets = 6;
using Rolling = dynweight::RollingShrinkage<double>;

std::string prices_csv() {
  return data_path("market/prices.csv").string();
}
std::string volumes_csv() {
  return data_path("market/volumes.csv").string();
}

// The fixture's dates, oldest first.
std::vector<std::string> fixture_dates() {
  std::vector<std::string> dates;
  const auto rows = parse_rows(read_text(prices_csv()));
  for (std::size_t r = 1; r < rows.size(); ++r)
    dates.push_back(rows[r][0]);
  return dates;
}

// How the reference feeds the policy: the engines and the rebalance dates.
struct Feed {
  Index window = 0;  // 0: EWMA with `halflife`
  double halflife = 0.0;
  bool log = false;  // log returns (else simple)
  std::optional<dynweight::RollingShrinkageMethod> method =
      std::nullopt;  // a live RollingShrinkage
  bool liquidity = false;
  Index every = 0;  // 0: the last date only
};

// What `weights` prints, from the library directly: returns → RollingMoments (or the
// RollingShrinkage's own window) or EwmaMoments (min_periods 2), dollar volume over the same
// window or half-life, Estimates (mean, volatility, lower covariance, ADV), `policy.compute`
// at the first date with estimates and every `every` dates after it (or at the last date).
template <class Policy>
std::string library_weights(const Feed& feed, const std::function<Policy(Rolling*)>& make_policy) {
  dynweight::cli::MarketReader reader(
      prices_csv(), feed.liquidity ? std::optional<std::string>(volumes_csv()) : std::nullopt,
      dynweight::cli::MissingPolicy::error);
  const auto& names = reader.assets();
  dynweight::ReturnCalculator<double> returns(
      kAssets, feed.log ? dynweight::ReturnKind::log : dynweight::ReturnKind::simple);
  std::optional<dynweight::RollingMoments<double>> rolling;
  std::optional<Rolling> shrinkage;
  std::optional<dynweight::EwmaMoments<double>> ewma;
  std::optional<dynweight::RollingDollarVolume<double>> rolling_adv;
  std::optional<dynweight::EwmaDollarVolume<double>> ewma_adv;
  const auto decay = dynweight::EwmaDecay::from_halflife(feed.halflife > 0 ? feed.halflife : 1.0);
  if (feed.window > 0) {
    if (feed.method)
      shrinkage.emplace(kAssets, dynweight::RollingOptions{.window = feed.window}, *feed.method);
    else
      rolling.emplace(kAssets, dynweight::RollingOptions{.window = feed.window});
    if (feed.liquidity)
      rolling_adv.emplace(kAssets, dynweight::RollingDollarVolumeOptions{.window = feed.window});
  } else {
    ewma.emplace(kAssets, dynweight::EwmaOptions{.decay = decay, .min_periods = 2});
    if (feed.liquidity)
      ewma_adv.emplace(kAssets, dynweight::EwmaDollarVolumeOptions{.decay = decay});
  }
  Policy policy = make_policy(shrinkage ? &*shrinkage : nullptr);

  std::ostringstream text;
  text << "date";
  for (const auto& name : names)
    text << ',' << name;
  text << '\n';
  VectorXd weights(kAssets);
  const auto rebalance = [&](const std::string& date) {
    dynweight::Estimates<double> estimates(kAssets, &names);
    if (ewma) {
      estimates.set_mean(ewma->mean())
          .set_volatility(ewma->volatility())
          .set_covariance(ewma->covariance_lower(), dynweight::SymmetricStorage::lower);
    } else {
      const auto& moments = shrinkage ? shrinkage->moments() : *rolling;
      estimates.set_mean(moments.mean())
          .set_volatility(moments.volatility())
          .set_covariance(moments.covariance_lower(), dynweight::SymmetricStorage::lower);
    }
    if (rolling_adv)
      estimates.set_dollar_volume(rolling_adv->average());
    if (ewma_adv)
      estimates.set_dollar_volume(ewma_adv->average());
    weights.setConstant(std::numeric_limits<double>::quiet_NaN());
    policy.compute(estimates, weights);
    if (!weights.allFinite())
      return;
    text << date;
    for (Index i = 0; i < kAssets; ++i)
      text << ',' << fmt::format("{:.17g}", weights(i));
    text << '\n';
  };

  Index bar = -1;
  Index first = -1;
  std::string date;
  while (reader.next()) {
    ++bar;
    date = reader.date();
    if (rolling_adv)
      rolling_adv->update(reader.prices(), reader.volumes());
    if (ewma_adv)
      ewma_adv->update(reader.prices(), reader.volumes());
    if (returns.update(reader.prices())) {
      if (shrinkage)
        shrinkage->update(returns.returns());
      else if (rolling)
        rolling->update(returns.returns());
      else
        ewma->update(returns.returns());
    }
    const bool ready = (shrinkage ? shrinkage->ready()
                        : rolling ? rolling->ready()
                                  : ewma->ready()) &&
                       (rolling_adv ? rolling_adv->ready() : true);
    if (!ready)
      continue;
    if (first < 0)
      first = bar;
    if (feed.every > 0 && (bar - first) % feed.every == 0)
      rebalance(date);
  }
  if (feed.every == 0)
    rebalance(date);
  return text.str();
}

std::vector<std::string> weights_arguments(const Feed& feed, std::vector<std::string> options) {
  std::vector<std::string> arguments = {"weights", "--prices", prices_csv()};
  if (feed.window > 0)
    arguments.insert(arguments.end(), {"--window", std::to_string(feed.window)});
  else
    arguments.insert(arguments.end(), {"--halflife", fmt::format("{}", feed.halflife)});
  if (feed.log)
    arguments.insert(arguments.end(), {"--returns", "log"});
  if (feed.liquidity)
    arguments.insert(arguments.end(), {"--volumes", volumes_csv()});
  if (feed.every == 1)
    arguments.emplace_back("--all");
  else if (feed.every > 1)
    arguments.insert(arguments.end(), {"--every", std::to_string(feed.every)});
  arguments.insert(arguments.end(), options.begin(), options.end());
  return arguments;
}

// Runs the CLI and compares with the library; returns the CLI's stdout.
template <class Policy>
std::string check_against_library(const Feed& feed, const std::vector<std::string>& options,
                                  const std::function<Policy(Rolling*)>& make_policy) {
  const auto result = run_cli(weights_arguments(feed, options));
  INFO("stderr: " << result.err);
  REQUIRE(result.status == 0);
  const std::string expected = library_weights<Policy>(feed, make_policy);
  REQUIRE(parse_rows(expected).size() >= 2);  // at least one row of weights
  const std::string mismatch =
      compare_tables(result.out, expected, kLibraryTolerance, Bound::elementwise);
  INFO(mismatch);
  CHECK(mismatch.empty());
  return result.out;
}

using InverseVol = dynweight::InverseVolatility<double>;
using RiskParity = dynweight::RiskParity<double>;
template <class Inner>
using Shrunk = dynweight::CorrelationShrinkage<Inner>;
template <class Inner>
using Liquid = dynweight::LiquidityScaled<Inner>;
using Bounds = dynweight::WeightBounds<double>;
using VolTarget = dynweight::VolatilityTarget<double>;

// Every weight cell of a `weights` output, row by row.
std::vector<std::vector<double>> weight_rows(const std::string& out) {
  std::vector<std::vector<double>> rows;
  const auto cells = parse_rows(out);
  for (std::size_t r = 1; r < cells.size(); ++r) {
    std::vector<double> row;
    for (std::size_t c = 1; c < cells[r].size(); ++c)
      row.push_back(std::stod(cells[r][c]));
    rows.push_back(row);
  }
  return rows;
}

std::vector<std::string> row_dates(const std::string& out) {
  std::vector<std::string> dates;
  const auto cells = parse_rows(out);
  for (std::size_t r = 1; r < cells.size(); ++r)
    dates.push_back(cells[r][0]);
  return dates;
}

}  // namespace

TEST_CASE("weights: inverse-vol and risk-parity equal the library to 1e-15", "[cli][weights]") {
  SECTION("inverse-vol, window 20, last date") {
    check_against_library<InverseVol>({.window = 20}, {"--policy", "inverse-vol"},
                                      [](Rolling*) { return InverseVol(); });
  }
  SECTION("inverse-vol, half-life 10, log returns, --every 9") {
    check_against_library<InverseVol>({.halflife = 10.0, .log = true, .every = 9},
                                      {"--policy", "inverse-vol"},
                                      [](Rolling*) { return InverseVol(); });
  }
  SECTION("risk-parity, window 20, --all (warm starts bar after bar)") {
    check_against_library<RiskParity>({.window = 20, .every = 1}, {"--policy", "risk-parity"},
                                      [](Rolling*) { return RiskParity(); });
  }
  SECTION("risk-parity, half-life 10, --every 5") {
    check_against_library<RiskParity>({.halflife = 10.0, .every = 5}, {"--policy", "risk-parity"},
                                      [](Rolling*) { return RiskParity(); });
  }
}

TEST_CASE("weights: shrinkage methods equal the library to 1e-15", "[cli][weights]") {
  using Method = dynweight::RollingShrinkageMethod;
  const std::vector<std::pair<std::string, Method>> methods = {
      {"lw-identity", Method::ledoit_wolf},
      {"oas", Method::oas},
      {"lw-constant-correlation", Method::constant_correlation}};
  for (const auto& [name, method] : methods) {
    DYNAMIC_SECTION(name << ", risk parity, window 30, --all") {
      check_against_library<Shrunk<RiskParity>>(
          {.window = 30, .method = method, .every = 1},
          {"--policy", "shrinkage", "--shrinkage", name},
          [](Rolling* rolling) { return Shrunk<RiskParity>(RiskParity(), *rolling); });
    }
    DYNAMIC_SECTION(name << ", inverse-vol, window 25, last date") {
      check_against_library<Shrunk<InverseVol>>(
          {.window = 25, .method = method},
          {"--policy", "shrinkage", "--inner", "inverse-vol", "--shrinkage", name},
          [](Rolling* rolling) { return Shrunk<InverseVol>(InverseVol(), *rolling); });
    }
  }
  SECTION("fixed intensity 0.4 toward the scaled identity, window 20, --every 4") {
    check_against_library<Shrunk<RiskParity>>(
        {.window = 20, .every = 4}, {"--policy", "shrinkage", "--shrinkage", "0.4"}, [](Rolling*) {
          return Shrunk<RiskParity>(RiskParity(), dynweight::ShrinkageTarget::scaled_identity, 0.4);
        });
  }
  SECTION("fixed intensity 0.25 on the EWMA covariance, --all") {
    check_against_library<Shrunk<RiskParity>>(
        {.halflife = 10.0, .every = 1}, {"--policy", "shrinkage", "--shrinkage", "0.25"},
        [](Rolling*) {
          return Shrunk<RiskParity>(RiskParity(), dynweight::ShrinkageTarget::scaled_identity,
                                    0.25);
        });
  }
}

TEST_CASE("weights: liquidity equals the library to 1e-15 and the caps bind", "[cli][weights]") {
  SECTION("risk parity capped by ADV, window 20, --all") {
    const dynweight::LiquidityOptions options{.capital = 3e7, .participation = 0.1};
    const std::string out = check_against_library<Liquid<RiskParity>>(
        {.window = 20, .liquidity = true, .every = 1},
        {"--policy", "liquidity", "--capital", "3e7", "--participation", "0.1"},
        [&](Rolling*) { return Liquid<RiskParity>(RiskParity(), options); });
    // The caps bind somewhere (otherwise this would be plain risk parity) and the weights still
    // sum to 1.
    const std::string plain =
        run_cli(weights_arguments({.window = 20, .every = 1}, {"--policy", "risk-parity"})).out;
    CHECK(out != plain);
    for (const auto& row : weight_rows(out)) {
      double sum = 0;
      for (const double w : row)
        sum += w;
      CHECK(sum == Approx(1.0).epsilon(1e-14));
    }
  }
  SECTION("inverse-vol on a live constant-correlation shrinkage, half the capital, window 30") {
    const dynweight::LiquidityOptions options{.capital = 1.5e7, .participation = 0.05};
    check_against_library<Liquid<Shrunk<InverseVol>>>(
        {.window = 30,
         .method = dynweight::RollingShrinkageMethod::constant_correlation,
         .liquidity = true,
         .every = 3},
        {"--policy", "liquidity", "--inner", "inverse-vol", "--shrinkage",
         "lw-constant-correlation", "--capital", "1.5e7", "--participation", "0.05"},
        [&](Rolling* rolling) {
          return Liquid<Shrunk<InverseVol>>(Shrunk<InverseVol>(InverseVol(), *rolling), options);
        });
  }
  SECTION("EWMA dollar volume, default capital and participation") {
    check_against_library<Liquid<RiskParity>>(
        {.halflife = 10.0, .liquidity = true, .every = 6}, {"--policy", "liquidity"},
        [](Rolling*) { return Liquid<RiskParity>(RiskParity(), {}); });
  }
}

TEST_CASE("weights: overlays equal the library's Overlaid chain to 1e-15", "[cli][weights]") {
  SECTION("risk parity, --max-weight then --vol-target, --all") {
    check_against_library<dynweight::Overlaid<RiskParity, Bounds, VolTarget>>(
        {.window = 20, .every = 1},
        {"--policy", "risk-parity", "--max-weight", "0.2", "--vol-target", "0.08",
         "--annualization", "252"},
        [](Rolling*) {
          return dynweight::Overlaid(RiskParity(), Bounds(kAssets, 0.0, 0.2),
                                     VolTarget({.target = 0.08, .annualization = 252}));
        });
  }
  SECTION("inverse-vol, --max-weight only") {
    check_against_library<dynweight::Overlaid<InverseVol, Bounds>>(
        {.window = 30, .every = 10}, {"--policy", "inverse-vol", "--max-weight", "0.18"},
        [](Rolling*) { return dynweight::Overlaid(InverseVol(), Bounds(kAssets, 0.0, 0.18)); });
  }
  SECTION("liquidity with an OAS shrinkage, --vol-target with leverage 1.5") {
    // Under liquidity caps the target only scales down (max_scale 1): levering up would pass them.
    const dynweight::LiquidityOptions options{.capital = 3e7};
    using Chain = dynweight::Overlaid<Liquid<Shrunk<RiskParity>>, VolTarget>;
    check_against_library<Chain>(
        {.window = 40,
         .method = dynweight::RollingShrinkageMethod::oas,
         .liquidity = true,
         .every = 1},
        {"--policy", "liquidity", "--shrinkage", "oas", "--capital", "3e7", "--vol-target", "0.3",
         "--annualization", "252", "--max-leverage", "1.5"},
        [&](Rolling* rolling) {
          return dynweight::Overlaid(
              Liquid<Shrunk<RiskParity>>(Shrunk<RiskParity>(RiskParity(), *rolling), options),
              VolTarget(
                  {.target = 0.3, .annualization = 252, .max_leverage = 1.5, .max_scale = 1.0}));
        });
  }
  SECTION("liquidity, --max-weight: one water-filling with the capacities") {
    // A WeightBounds after the liquidity caps moved weight onto assets at capacity (1.7× it in
    // the audit's case): the cap is the policy's own max_weight instead.
    const dynweight::LiquidityOptions options{.capital = 3e7, .max_weight = 0.3};
    check_against_library<Liquid<RiskParity>>(
        {.window = 40, .liquidity = true, .every = 1},
        {"--policy", "liquidity", "--capital", "3e7", "--max-weight", "0.3"},
        [&](Rolling*) { return Liquid<RiskParity>(RiskParity(), options); });
  }
}

TEST_CASE("weights: rows at the last date, every K-th date, or every date", "[cli][weights]") {
  const std::vector<std::string> dates = fixture_dates();
  REQUIRE(dates.size() == 120);
  const auto dates_of = [](const Feed& feed) {
    const auto result = run_cli(weights_arguments(feed, {"--policy", "inverse-vol"}));
    INFO("stderr: " << result.err);
    REQUIRE(result.status == 0);
    return row_dates(result.out);
  };
  const auto expected = [&](std::size_t first, std::size_t step) {
    std::vector<std::string> out;
    for (std::size_t i = first; i < dates.size(); i += step)
      out.push_back(dates[i]);
    return out;
  };
  // A 20-return window is ready at the 21st price row (index 20); EWMA at the third (index 2).
  CHECK(dates_of({.window = 20}) == std::vector<std::string>{dates.back()});
  CHECK(dates_of({.window = 20, .every = 1}) == expected(20, 1));
  CHECK(dates_of({.window = 20, .every = 7}) == expected(20, 7));
  CHECK(dates_of({.halflife = 5.0, .every = 1}) == expected(2, 1));
  CHECK(dates_of({.halflife = 5.0, .every = 25}) == expected(2, 25));
  // --min-periods P: the EWMA from its P-th return on (price row P + 1, index P); with --halflife
  // only, and at least 2.
  const auto later = run_cli(weights_arguments({.halflife = 5.0, .every = 1},
                                               {"--policy", "inverse-vol", "--min-periods", "30"}));
  INFO("stderr: " << later.err);
  REQUIRE(later.status == 0);
  CHECK(row_dates(later.out) == expected(30, 1));
  const auto one = run_cli(weights_arguments({.halflife = 5.0, .every = 1},
                                             {"--policy", "inverse-vol", "--min-periods", "1"}));
  CHECK(one.status == 2);
  CHECK(one.err.find("--min-periods: '1' is outside the range 2 to") != std::string::npos);
  const auto windowed = run_cli(weights_arguments(
      {.window = 20, .every = 1}, {"--policy", "inverse-vol", "--min-periods", "5"}));
  CHECK(windowed.status == 2);
  CHECK(windowed.err.find("--min-periods is read with --halflife only") != std::string::npos);
  // Liquidity: the dollar-volume window (20 price rows) is ready before the returns' one.
  const auto liquidity = run_cli(
      weights_arguments({.window = 20, .liquidity = true, .every = 30}, {"--policy", "liquidity"}));
  REQUIRE(liquidity.status == 0);
  CHECK(row_dates(liquidity.out) == expected(20, 30));
  // The window needs 120 price rows: the last one.
  CHECK(dates_of({.window = 119, .every = 1}) == std::vector<std::string>{dates.back()});
  const auto short_file = run_cli(weights_arguments({.window = 120}, {"--policy", "inverse-vol"}));
  CHECK(short_file.status == 2);
  CHECK(short_file.out.empty());
  CHECK(short_file.err.find("not enough rows for the estimates: they need 121 price rows, the "
                            "file has 120") != std::string::npos);
}

TEST_CASE("weights: --budgets sets the risk budgets and a bad file is exit 2", "[cli][weights]") {
  const auto dir = work_dir("weights_budgets");
  const std::string good = (dir / "budgets.csv").string();
  write_text(good, "asset,budget\nA003,0.25\nA001,0.05\nA002,0.1\nA004,0.2\nA005,0.3\nA006,0.1\n");
  VectorXd budgets(kAssets);
  budgets << 0.05, 0.1, 0.25, 0.2, 0.3, 0.1;
  const std::string out = check_against_library<RiskParity>(
      {.window = 20, .every = 10}, {"--policy", "risk-parity", "--budgets", good},
      [&](Rolling*) { return RiskParity({}, budgets); });
  const std::string equal =
      run_cli(weights_arguments({.window = 20, .every = 10}, {"--policy", "risk-parity"})).out;
  CHECK(out != equal);
  check_against_library<Shrunk<RiskParity>>(
      {.window = 20, .method = dynweight::RollingShrinkageMethod::ledoit_wolf},
      {"--policy", "shrinkage", "--shrinkage", "lw-identity", "--budgets", good},
      [&](Rolling* rolling) { return Shrunk<RiskParity>(RiskParity({}, budgets), *rolling); });

  struct Bad {
    const char* name;
    std::string text;
    std::string message;
  };
  const std::vector<Bad> bad = {
      {"sum", "asset,budget\nA001,0.2\nA002,0.2\nA003,0.2\nA004,0.2\nA005,0.1\nA006,0.2\n",
       "sum.csv: the budgets sum to 1.1"},
      {"missing", "asset,budget\nA001,0.2\nA002,0.2\nA003,0.2\nA004,0.2\nA005,0.2\n",
       "missing.csv:7:1: no budget for asset 'A006'"},
      {"unknown", "asset,budget\nA001,0.5\nZZZ,0.5\n",
       "unknown.csv:3:1: asset 'ZZZ' is not a column of the prices"},
      {"duplicate", "asset,budget\nA001,0.5\nA001,0.5\n",
       "duplicate.csv:3:1: duplicate asset 'A001' (also line 2)"},
      {"negative", "asset,budget\nA001,-0.5\n", "negative.csv:2:2: negative budget -0.5"},
      {"text", "asset,budget\nA001,abc\n", "text.csv:2:2: 'abc' is not a number"},
      {"header", "name,budget\nA001,1\n", "header.csv:1:1: the header must be asset,budget"},
      {"empty", "", "empty.csv:1:1: the file is empty"},
  };
  for (const Bad& b : bad) {
    DYNAMIC_SECTION("bad budgets: " << b.name) {
      const std::string path = (dir / (std::string(b.name) + ".csv")).string();
      write_text(path, b.text);
      const auto result = run_cli(
          weights_arguments({.window = 20}, {"--policy", "risk-parity", "--budgets", path}));
      INFO("stderr: " << result.err);
      CHECK(result.status == 2);
      CHECK(result.out.empty());
      CHECK(result.err.find(b.message) != std::string::npos);
    }
  }
  SECTION("budgets with inverse-vol") {
    const auto result =
        run_cli(weights_arguments({.window = 20}, {"--policy", "inverse-vol", "--budgets", good}));
    CHECK(result.status == 2);
    CHECK(result.err.find("--budgets is read by risk parity only") != std::string::npos);
  }
}

TEST_CASE("weights: --max-weight caps every printed weight exactly", "[cli][weights]") {
  // The policy's weights sum to 1 only to rounding; WeightBounds takes such a sum as exactly 1, so
  // the cap holds against X itself, bitwise, and the capped weights read back as X.
  const std::string uncapped = library_weights<InverseVol>({.window = 20, .every = 1},
                                                           [](Rolling*) { return InverseVol(); });
  const auto policy_rows = weight_rows(uncapped);
  for (const char* cap : {"0.17", "0.2", "0.1875"}) {
    DYNAMIC_SECTION("--max-weight " << cap) {
      const double x = std::stod(cap);
      const auto result = run_cli(weights_arguments(
          {.window = 20, .every = 1}, {"--policy", "inverse-vol", "--max-weight", cap}));
      INFO("stderr: " << result.err);
      REQUIRE(result.status == 0);
      const auto rows = weight_rows(result.out);
      REQUIRE(rows.size() == policy_rows.size());
      bool binds = false;
      for (std::size_t r = 0; r < rows.size(); ++r) {
        double sum = 0;
        for (const double w : rows[r]) {
          CHECK(w <= x);
          binds = binds || w == x;
          sum += w;
        }
        CHECK(sum == Approx(1.0).epsilon(1e-14));
      }
      CHECK(binds);  // the cap is active somewhere, so the checks above mean something
    }
  }
  SECTION("infeasible: 6 assets x 0.16 < 1") {
    const auto result = run_cli(
        weights_arguments({.window = 20}, {"--policy", "risk-parity", "--max-weight", "0.16"}));
    CHECK(result.status == 2);
    CHECK(result.out.empty());
    CHECK(result.err.find("--max-weight 0.16 is infeasible for 6 assets") != std::string::npos);
  }
}

TEST_CASE("weights: a status other than success is a note on stderr, not an error",
          "[cli][weights]") {
  // Capital far above what the assets can absorb: every asset at capacity, the rest in cash.
  const auto result = run_cli(weights_arguments({.window = 20, .liquidity = true, .every = 50},
                                                {"--policy", "liquidity", "--capital", "1e10"}));
  INFO("stderr: " << result.err);
  REQUIRE(result.status == 0);
  const auto dates = row_dates(result.out);
  REQUIRE(dates.size() == 2);
  for (const auto& date : dates) {
    CHECK(result.err.find("dynweight: note: " + date +
                          ": numerical_issue: the assets' liquidity capacity is below the "
                          "capital") != std::string::npos);
  }
  for (const auto& row : weight_rows(result.out)) {
    double sum = 0;
    for (const double w : row)
      sum += w;
    CHECK(sum < 0.1);  // the rest is cash
  }
}

TEST_CASE("weights: bad arguments and bad input exit with status 2 and nothing on stdout",
          "[cli][weights]") {
  struct Bad {
    const char* name;
    std::vector<std::string> options;
    std::string message;
  };
  const auto window = Feed{.window = 20};
  const std::vector<Bad> bad = {
      {"vol target without annualization",
       {"--policy", "risk-parity", "--vol-target", "0.1"},
       "--vol-target needs --annualization"},
      {"annualization without vol target",
       {"--policy", "risk-parity", "--annualization", "252"},
       "--annualization is read by --vol-target only"},
      {"negative vol target",
       {"--policy", "risk-parity", "--vol-target", "-0.1", "--annualization", "252"},
       "--vol-target: -0.1 must be finite and > 0"},
      {"liquidity without volumes",
       {"--policy", "liquidity"},
       "--policy liquidity needs --volumes"},
      {"volumes without liquidity",
       {"--policy", "risk-parity", "--volumes", volumes_csv()},
       "--volumes is read by --policy liquidity only"},
      {"capital without liquidity",
       {"--policy", "risk-parity", "--capital", "1e6"},
       "--capital is read by --policy liquidity only"},
      {"shrinkage not a number",
       {"--policy", "shrinkage", "--shrinkage", "0.5x"},
       "--shrinkage: '0.5x' is not lw-constant-correlation, lw-identity, oas or an intensity"},
      {"shrinkage above 1", {"--policy", "shrinkage", "--shrinkage", "1.5"}, "'1.5' is not"},
      {"shrinkage unknown method", {"--policy", "shrinkage", "--shrinkage", "ledoit"}, "'ledoit'"},
      {"shrinkage missing", {"--policy", "shrinkage"}, "--policy shrinkage needs --shrinkage"},
      {"shrinkage with risk-parity",
       {"--policy", "risk-parity", "--shrinkage", "oas"},
       "--shrinkage is read by --policy shrinkage and --policy liquidity only"},
      {"inner with inverse-vol",
       {"--policy", "inverse-vol", "--inner", "risk-parity"},
       "--inner is read by"},
      {"unknown policy", {"--policy", "equal"}, "--policy"},
      {"max-weight above 1", {"--policy", "risk-parity", "--max-weight", "1.5"}, "(0, 1]"},
  };
  for (const Bad& b : bad) {
    DYNAMIC_SECTION(b.name) {
      const auto result = run_cli(weights_arguments(window, b.options));
      INFO("stderr: " << result.err);
      CHECK(result.status == 2);
      CHECK(result.out.empty());
      CHECK(result.err.find(b.message) != std::string::npos);
    }
  }
  SECTION("an estimated shrinkage with --halflife") {
    for (const char* method : {"lw-identity", "oas", "lw-constant-correlation"}) {
      const auto result = run_cli(
          weights_arguments({.halflife = 10.0}, {"--policy", "shrinkage", "--shrinkage", method}));
      CHECK(result.status == 2);
      CHECK(result.out.empty());
      CHECK(result.err.find("needs --window") != std::string::npos);
    }
  }
  SECTION("--every and --all together") {
    auto arguments = weights_arguments({.window = 20, .every = 1}, {"--policy", "inverse-vol"});
    arguments.insert(arguments.end(), {"--every", "3"});
    const auto result = run_cli(arguments);
    CHECK(result.status == 2);
    CHECK(result.out.empty());
  }
  SECTION("a malformed price file, after many rows of output") {
    const auto dir = work_dir("weights_malformed");
    std::string text = read_text(prices_csv());
    const auto last_row = text.rfind('\n', text.size() - 2) + 1;
    const auto cell = text.find(',', last_row) + 1;
    text.replace(cell, text.find(',', cell) - cell, "abc");
    const std::string path = (dir / "prices.csv").string();
    write_text(path, text);
    const auto result = run_cli(
        {"weights", "--prices", path, "--window", "20", "--all", "--policy", "risk-parity"});
    CHECK(result.status == 2);
    CHECK(result.out.empty());
    CHECK(result.err.find(path + ":121:2: 'abc' is not a number (asset 'A001'") !=
          std::string::npos);
  }
}
