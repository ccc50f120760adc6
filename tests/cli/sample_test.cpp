// `dynweight sample`: deterministic by seed (byte for byte, and equal to the committed fixtures),
// complete unless --late-start, and shaped like a market (fat tails, correlation, regimes).

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "cli_support.hpp"
#include "dynweight/market_reader.hpp"
#include "dynweight/market_sample.hpp"

namespace {

namespace fs = std::filesystem;
using dynweight::cli::test::data_path;
using dynweight::cli::test::read_text;
using dynweight::cli::test::run_cli;
using dynweight::cli::test::work_dir;

void sample(const fs::path& out, const std::string& seed, const std::string& extra_option = {},
            const std::string& extra_value = {}) {
  std::vector<std::string> arguments = {"sample", "--assets", "6",     "--days",    "120",
                                        "--seed", seed,       "--out", out.string()};
  if (!extra_option.empty())
    arguments.insert(arguments.end(), {extra_option, extra_value});
  const auto result = run_cli(arguments);
  REQUIRE(result.status == 0);
  CHECK(result.out.empty());
  CHECK(result.err.empty());
}

std::vector<std::string> directory_listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("sample is deterministic: same seed same bytes and another seed other data",
          "[cli][sample]") {
  const auto dir = work_dir("sample_determinism");
  sample(dir / "a", "42");
  sample(dir / "b", "42");
  sample(dir / "c", "43");
  CHECK(directory_listing(dir / "a") == std::vector<std::string>{"prices.csv", "volumes.csv"});
  for (const char* file : {"prices.csv", "volumes.csv"}) {
    CHECK(read_text(dir / "a" / file) == read_text(dir / "b" / file));
    CHECK(read_text(dir / "a" / file) != read_text(dir / "c" / file));
  }
}

TEST_CASE("sample reproduces the committed fixtures byte for byte", "[cli][sample]") {
  // tests/cli/data/{market,late_start} were written by these very commands; a change to the
  // generator (or a platform whose arithmetic differs) shows here first.
  const auto dir = work_dir("sample_fixtures");
  sample(dir / "market", "20261125");
  sample(dir / "late_start", "20261125", "--late-start", "2");
  for (const char* fixture : {"market", "late_start"}) {
    for (const char* file : {"prices.csv", "volumes.csv"}) {
      INFO(fixture << "/" << file);
      CHECK(read_text(dir / fixture / file) == read_text(data_path(fixture) / file));
    }
  }
}

TEST_CASE("sample writes complete business-day data with positive prices and whole-share volumes",
          "[cli][sample]") {
  const auto dir = work_dir("sample_sanity");
  const auto result = run_cli({"sample", "--assets", "12", "--days", "300", "--seed", "7",
                               "--start-date", "2021-01-02", "--out", dir.string()});
  REQUIRE(result.status == 0);
  // The tool's own reader checks the layout (header, ISO dates strictly increasing, numbers).
  dynweight::cli::TableReader prices((dir / "prices.csv").string(),
                                     dynweight::cli::ValueRule::positive);
  dynweight::cli::TableReader volumes((dir / "volumes.csv").string(),
                                      dynweight::cli::ValueRule::nonnegative);
  CHECK(prices.assets().size() == 12);
  CHECK(prices.assets().front() == "A001");
  CHECK(volumes.assets() == prices.assets());
  int rows = 0;
  while (prices.next()) {
    REQUIRE(volumes.next());
    ++rows;
    CHECK_FALSE(prices.any_missing());
    CHECK_FALSE(volumes.any_missing());
    CHECK(volumes.date() == prices.date());
    CHECK((volumes.values().array() == volumes.values().array().round()).all());
    CHECK((volumes.values().array() > 0).all());
    // Monday to Friday only.
    const auto& d = prices.date();
    const std::chrono::year_month_day ymd{std::chrono::year(std::stoi(d.substr(0, 4))),
                                          std::chrono::month(std::stoul(d.substr(5, 2))),
                                          std::chrono::day(std::stoul(d.substr(8, 2)))};
    const std::chrono::weekday weekday{std::chrono::sys_days(ymd)};
    CHECK(weekday != std::chrono::Saturday);
    CHECK(weekday != std::chrono::Sunday);
    if (rows == 1)
      CHECK(d == "2021-01-04");  // 2021-01-02 is a Saturday: rolled to Monday
  }
  CHECK_FALSE(volumes.next());
  CHECK(rows == 300);
}

TEST_CASE("sample --late-start blanks the leading cells of the last K assets only",
          "[cli][sample]") {
  const auto dir = work_dir("sample_late_start");
  sample(dir / "full", "5");
  sample(dir / "late", "5", "--late-start", "3");
  for (const char* file : {"prices.csv", "volumes.csv"}) {
    INFO(file);
    dynweight::cli::TableReader full((dir / "full" / file).string(),
                                     dynweight::cli::ValueRule::nonnegative);
    dynweight::cli::TableReader late((dir / "late" / file).string(),
                                     dynweight::cli::ValueRule::nonnegative);
    std::vector<int> started(6, 0);
    std::vector<int> first_row(6, -1);
    int row = 0;
    while (full.next()) {
      REQUIRE(late.next());
      for (Eigen::Index i = 0; i < 6; ++i) {
        if (late.missing(i)) {
          CHECK(i >= 3);           // only the last 3 assets start late
          CHECK(started[i] == 0);  // and once started, never stop
        } else {
          if (started[i] == 0)
            first_row[i] = row;
          started[i] = 1;
          CHECK(late.values()(i) == full.values()(i));  // otherwise the same market
        }
      }
      ++row;
    }
    // Starts spread over the first half: rows 1·120/6, 2·120/6, 3·120/6.
    CHECK(first_row == std::vector<int>{0, 0, 0, 20, 40, 60});
  }
}

TEST_CASE("the sample market has fat tails and correlated assets and volatile busy regimes",
          "[cli][sample]") {
  dynweight::cli::SampleOptions options;
  options.assets = 20;
  options.days = 5000;
  options.seed = 11;
  const auto market = dynweight::cli::generate_sample_market(options);
  const Eigen::Index t = options.days - 1;
  const Eigen::MatrixXd log_prices = market.prices.array().log().matrix();
  const Eigen::MatrixXd r = log_prices.bottomRows(t) - log_prices.topRows(t);

  // Both regimes occur, the turbulent one less often.
  const auto turbulent_days = std::count(market.turbulent.begin(), market.turbulent.end(), 1);
  CHECK(turbulent_days > options.days / 20);
  CHECK(turbulent_days < options.days / 2);

  double kurtosis_sum = 0.0;
  for (Eigen::Index i = 0; i < r.cols(); ++i) {
    const Eigen::ArrayXd x = r.col(i).array() - r.col(i).mean();
    const double variance = x.square().mean();
    kurtosis_sum += x.pow(4).mean() / (variance * variance);
  }
  CHECK(kurtosis_sum / double(r.cols()) > 5.0);  // a normal has 3

  const Eigen::MatrixXd centred = r.rowwise() - r.colwise().mean();
  const Eigen::MatrixXd cov = centred.transpose() * centred / double(t - 1);
  const Eigen::VectorXd sd = cov.diagonal().cwiseSqrt();
  const Eigen::MatrixXd corr =
      sd.cwiseInverse().asDiagonal() * cov * sd.cwiseInverse().asDiagonal();
  const double mean_corr = (corr.sum() - corr.trace()) / double(r.cols() * (r.cols() - 1));
  CHECK(mean_corr > 0.15);
  CHECK(mean_corr < 0.8);

  // Returns are wilder and volumes higher on turbulent days.
  double abs_return[2] = {0, 0}, volume[2] = {0, 0};
  int days[2] = {0, 0};
  for (Eigen::Index d = 1; d < options.days; ++d) {
    const int regime = market.turbulent[static_cast<std::size_t>(d)];
    abs_return[regime] += r.row(d - 1).cwiseAbs().mean();
    volume[regime] +=
        (market.volumes.row(d).array() / market.volumes.colwise().mean().array()).mean();
    ++days[regime];
  }
  CHECK(abs_return[1] / days[1] > 1.5 * abs_return[0] / days[0]);
  CHECK(volume[1] / days[1] > 1.5 * volume[0] / days[0]);
}

TEST_CASE("sample keeps every date up to 9999-12-31 (the last date the readers accept)",
          "[cli][sample]") {
  const auto dir = work_dir("sample_last_year");
  // 9999-12-27 is a Monday: five business days fit, up to Friday 9999-12-31.
  for (const auto& [start, days] :
       std::vector<std::pair<std::string, std::string>>{{"9999-12-27", "6"},
                                                        {"9999-12-30", "3"},
                                                        {"9999-12-25", "6"},
                                                        {"2015-01-02", "2100000"}}) {
    const fs::path out = dir / ("too_late_" + start);
    const auto result = run_cli({"sample", "--assets", "2", "--days", days, "--seed", "1",
                                 "--start-date", start, "--out", out.string()});
    INFO(result.err);
    CHECK(result.status == 2);
    CHECK(result.out.empty());
    CHECK(result.err.rfind("dynweight: --days " + days + ": ", 0) == 0);
    CHECK(result.err.find("past 9999-12-31") != std::string::npos);
    CHECK_FALSE(fs::exists(out));
  }
  const auto fits = run_cli({"sample", "--assets", "2", "--days", "6", "--seed", "1",
                             "--start-date", "9999-12-27", "--out", (dir / "x").string()});
  CHECK(fits.err.find("at most 5 business days from 9999-12-27") != std::string::npos);

  for (const char* start : {"9999-12-27", "9999-12-25"}) {
    const fs::path out = dir / (std::string("fits_") + start);
    const auto result = run_cli({"sample", "--assets", "2", "--days", "5", "--seed", "1",
                                 "--start-date", start, "--out", out.string()});
    INFO(result.err);
    REQUIRE(result.status == 0);
    dynweight::cli::MarketReader reader((out / "prices.csv").string(),
                                        (out / "volumes.csv").string(),
                                        dynweight::cli::MissingPolicy::error);
    std::string last;
    while (reader.next())
      last = reader.date();
    CHECK(reader.bars() == 5);
    CHECK(last == "9999-12-31");
  }
}

TEST_CASE("sample replaces prices.csv and volumes.csv together or not at all", "[cli][sample]") {
  const auto dir = work_dir("sample_all_or_nothing");
  sample(dir, "1");
  const std::string old_prices = read_text(dir / "prices.csv");
  fs::remove(dir / "volumes.csv");
  fs::create_directories(dir / "volumes.csv" / "sub");
  const auto result =
      run_cli({"sample", "--assets", "6", "--days", "120", "--seed", "2", "--out", dir.string()});
  INFO(result.err);
  CHECK(result.status == 1);
  CHECK(result.err.find("cannot replace '" + (dir / "volumes.csv").string() + "'") !=
        std::string::npos);
  CHECK(read_text(dir / "prices.csv") == old_prices);
  CHECK(directory_listing(dir) == std::vector<std::string>{"prices.csv", "volumes.csv"});
}
