// `dynweight stats`: its output equals the library called directly (to 1e-15 relative, elementwise)
// and pandas (tests/reference/make_cli_reference.py, to 1e-12 norm-wise per date), and
// --missing drop / ffill do what they say.

#include <fmt/format.h>

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "dynweight/market_reader.hpp"
#include "dynweight/stats/dollar_volume.hpp"
#include "dynweight/stats/ewma_moments.hpp"
#include "dynweight/stats/returns.hpp"
#include "dynweight/stats/rolling_moments.hpp"

namespace {

using dynweight::cli::test::Bound;
using dynweight::cli::test::compare_tables;
using dynweight::cli::test::data_path;
using dynweight::cli::test::read_text;
using dynweight::cli::test::run_cli;
using dynweight::cli::test::split_arguments;
using dynweight::cli::test::work_dir;
using dynweight::cli::test::write_text;
using Eigen::Index;

// pandas and the library differ by their rounding only: measured worst 2.5e-13 over the 60 cases
// (covariances, where pandas forms mean(xy) − mean(x)mean(y)); 1e-12 leaves a factor 4.
constexpr double kPandasTolerance = 1e-12;
// The CLI runs the library's own arithmetic and prints 17 digits, which read back exactly.
constexpr double kLibraryTolerance = 1e-15;

struct Case {
  std::string statistic;  // mean, vol, cov, corr, adv
  bool rolling = true;
  std::string returns = "simple";
  bool all = false;
};

// What the design says `stats` prints, computed by the library directly.
class ExpectedOutput {
 public:
  ExpectedOutput(const Case& c, const std::vector<std::string>& names) : m_case(c), m_names(names) {
    const bool matrix = c.statistic == "cov" || c.statistic == "corr";
    if (c.all) {
      m_text << (matrix ? "date,asset,asset2,value\n" : "date,asset,value\n");
    } else if (matrix) {
      m_text << "asset";
      for (const auto& name : names)
        m_text << ',' << name;
      m_text << '\n';
    } else {
      m_text << "asset,value\n";
    }
  }

  void vector(const std::string& date, const Eigen::VectorXd& v) {
    for (Index i = 0; i < v.size(); ++i) {
      if (m_case.all)
        m_text << date << ',';
      m_text << m_names[static_cast<std::size_t>(i)] << ',' << number(v(i)) << '\n';
    }
  }

  void matrix(const std::string& date, const Eigen::MatrixXd& full) {
    for (Index i = 0; i < full.rows(); ++i) {
      if (m_case.all) {
        for (Index j = 0; j <= i; ++j) {
          m_text << date << ',' << m_names[static_cast<std::size_t>(i)] << ','
                 << m_names[static_cast<std::size_t>(j)] << ',' << number(full(i, j)) << '\n';
        }
      } else {
        m_text << m_names[static_cast<std::size_t>(i)];
        for (Index j = 0; j < full.cols(); ++j)
          m_text << ',' << number(full(i, j));
        m_text << '\n';
      }
    }
  }

  template <class Engine>
  void moments(const std::string& date, const Engine& engine) {
    if (m_case.statistic == "mean")
      vector(date, engine.mean());
    else if (m_case.statistic == "vol")
      vector(date, engine.volatility());
    else if (m_case.statistic == "cov")
      matrix(date, engine.covariance());
    else
      matrix(date, engine.correlation());
  }

  [[nodiscard]] std::string text() const { return m_text.str(); }

 private:
  static std::string number(double x) { return fmt::format("{:.17g}", x); }

  Case m_case;
  std::vector<std::string> m_names;
  std::ostringstream m_text;
};

template <class Engine>
std::string library_moments(const Case& c, Engine engine) {
  dynweight::cli::MarketReader reader(data_path("market/prices.csv").string(), std::nullopt,
                                      dynweight::cli::MissingPolicy::error);
  dynweight::ReturnCalculator<double> returns(
      reader.asset_count(),
      c.returns == "log" ? dynweight::ReturnKind::log : dynweight::ReturnKind::simple);
  ExpectedOutput expected(c, reader.assets());
  std::string date;
  while (reader.next()) {
    date = reader.date();
    if (!returns.update(reader.prices()))
      continue;
    engine.update(returns.returns());
    if (c.all && engine.ready())
      expected.moments(date, engine);
  }
  if (!c.all)
    expected.moments(date, engine);
  return expected.text();
}

template <class Engine>
std::string library_adv(const Case& c, Engine engine) {
  dynweight::cli::MarketReader reader(data_path("market/prices.csv").string(),
                                      data_path("market/volumes.csv").string(),
                                      dynweight::cli::MissingPolicy::error);
  ExpectedOutput expected(c, reader.assets());
  std::string date;
  while (reader.next()) {
    date = reader.date();
    engine.update(reader.prices(), reader.volumes());
    if (c.all && engine.ready())
      expected.vector(date, engine.average());
  }
  if (!c.all)
    expected.vector(date, engine.average());
  return expected.text();
}

std::string library_output(const Case& c) {
  constexpr Index kAssets = 6;
  const auto decay = dynweight::EwmaDecay::from_halflife(10.0);
  if (c.statistic == "adv") {
    if (c.rolling)
      return library_adv(c, dynweight::RollingDollarVolume<double>(kAssets, {.window = 20}));
    return library_adv(c, dynweight::EwmaDollarVolume<double>(kAssets, {.decay = decay}));
  }
  if (c.rolling)
    return library_moments(c, dynweight::RollingMoments<double>(kAssets, {.window = 20}));
  const Index min_periods = c.statistic == "mean" ? 1 : 2;
  return library_moments(
      c, dynweight::EwmaMoments<double>(kAssets, {.decay = decay, .min_periods = min_periods}));
}

}  // namespace

TEST_CASE("stats prints what the library computes to 1e-15", "[cli][stats]") {
  std::vector<Case> cases;
  for (const char* statistic : {"mean", "vol", "cov", "corr"})
    for (const bool rolling : {true, false})
      for (const char* returns : {"simple", "log"})
        for (const bool all : {false, true})
          cases.push_back({statistic, rolling, returns, all});
  for (const bool rolling : {true, false})
    for (const bool all : {false, true})
      cases.push_back({"adv", rolling, "simple", all});

  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.statistic << (c.rolling ? " window 20 " : " halflife 10 ") << c.returns
                                << (c.all ? " --all" : "")) {
      std::vector<std::string> arguments = {"stats",
                                            "--prices",
                                            data_path("market/prices.csv").string(),
                                            c.rolling ? "--window" : "--halflife",
                                            c.rolling ? "20" : "10",
                                            "--returns",
                                            c.returns,
                                            "--stat",
                                            c.statistic};
      if (c.statistic == "adv")
        arguments.insert(arguments.end(), {"--volumes", data_path("market/volumes.csv").string()});
      if (c.all)
        arguments.emplace_back("--all");
      const auto result = run_cli(arguments);
      INFO("stderr: " << result.err);
      REQUIRE(result.status == 0);
      CHECK(result.err.empty());
      const std::string mismatch =
          compare_tables(result.out, library_output(c), kLibraryTolerance, Bound::elementwise);
      INFO(mismatch);
      CHECK(mismatch.empty());
    }
  }
}

TEST_CASE("stats agrees with pandas on the committed references to 1e-12 per date",
          "[cli][stats][pandas]") {
  const std::string manifest = read_text(data_path("reference/cases.txt"));
  std::istringstream lines(manifest);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    const auto bar = line.find('|');
    REQUIRE(bar != std::string::npos);
    const std::string name = line.substr(0, bar);
    DYNAMIC_SECTION(name) {
      const auto result = run_cli(split_arguments(line.substr(bar + 1)));
      INFO("stderr: " << result.err);
      REQUIRE(result.status == 0);
      const std::string expected = read_text(data_path("reference/" + name + ".csv"));
      const std::string mismatch =
          compare_tables(result.out, expected, kPandasTolerance, Bound::per_date);
      INFO(mismatch);
      CHECK(mismatch.empty());
    }
    ++count;
  }
  CHECK(count == 60);
}

TEST_CASE("missing drop skips incomplete rows and ffill carries prices and zero-fills volumes",
          "[cli][stats][missing]") {
  const auto dir = work_dir("missing_policies");
  // B starts on the second row; A has a gap on the third; the volumes of A the same.
  write_text(dir / "prices.csv",
             "date,A,B\n2020-01-01,100,\n2020-01-02,110,50\n2020-01-03,,55\n"
             "2020-01-06,121,60.5\n2020-01-07,133.1,66.55\n");
  write_text(dir / "volumes.csv",
             "date,A,B\n2020-01-01,1000,\n2020-01-02,1000,2000\n2020-01-03,,2000\n"
             "2020-01-06,1000,2000\n2020-01-07,1000,2000\n");
  const auto run = [&](const char* missing, const char* statistic) {
    std::vector<std::string> arguments = {"stats",    (dir / "prices.csv").string(),
                                          "--window", "2",
                                          "--stat",   statistic,
                                          "--all",    "--missing",
                                          missing};
    arguments.insert(arguments.begin() + 1, "--prices");
    if (std::string(statistic) == "adv")
      arguments.insert(arguments.end(), {"--volumes", (dir / "volumes.csv").string()});
    const auto result = run_cli(arguments);
    INFO("stderr: " << result.err);
    REQUIRE(result.status == 0);
    return result.out;
  };
  const auto r = [](double from, double to) { return (to - from) / from; };  // the library's form
  const auto n = [](double x) { return fmt::format("{:.17g}", x); };

  SECTION("drop: rows 2, 4, 5 remain; the return of row 4 spans the gap") {
    const std::string mean = "date,asset,value\n2020-01-07,A," +
                             n((r(110, 121) + r(121, 133.1)) / 2) + "\n2020-01-07,B," +
                             n((r(50, 60.5) + r(60.5, 66.55)) / 2) + "\n";
    CHECK(compare_tables(run("drop", "mean"), mean, kLibraryTolerance, Bound::elementwise) == "");
    const std::string adv = "date,asset,value\n2020-01-06,A," + n((110000.0 + 121000.0) / 2) +
                            "\n2020-01-06,B," + n((100000.0 + 121000.0) / 2) + "\n2020-01-07,A," +
                            n((121000.0 + 133100.0) / 2) + "\n2020-01-07,B," +
                            n((121000.0 + 133100.0) / 2) + "\n";
    CHECK(compare_tables(run("drop", "adv"), adv, kLibraryTolerance, Bound::elementwise) == "");
  }
  SECTION("ffill: row 1 dropped (B has no price yet), A's gap repeats 110 with volume 0") {
    const std::string mean = "date,asset,value\n2020-01-06,A," + n((0.0 + r(110, 121)) / 2) +
                             "\n2020-01-06,B," + n((r(50, 55) + r(55, 60.5)) / 2) +
                             "\n2020-01-07,A," + n((r(110, 121) + r(121, 133.1)) / 2) +
                             "\n2020-01-07,B," + n((r(55, 60.5) + r(60.5, 66.55)) / 2) + "\n";
    CHECK(compare_tables(run("ffill", "mean"), mean, kLibraryTolerance, Bound::elementwise) == "");
    const std::string adv =
        "date,asset,value\n2020-01-03,A," + n((110000.0 + 0.0) / 2) + "\n2020-01-03,B," +
        n((100000.0 + 110000.0) / 2) + "\n2020-01-06,A," + n((0.0 + 121000.0) / 2) +
        "\n2020-01-06,B," + n((110000.0 + 121000.0) / 2) + "\n2020-01-07,A," +
        n((121000.0 + 133100.0) / 2) + "\n2020-01-07,B," + n((121000.0 + 133100.0) / 2) + "\n";
    CHECK(compare_tables(run("ffill", "adv"), adv, kLibraryTolerance, Bound::elementwise) == "");
  }
  SECTION("error: the first empty cell, with its line and column") {
    const auto result = run_cli(
        {"stats", "--prices", (dir / "prices.csv").string(), "--window", "2", "--stat", "mean"});
    CHECK(result.status == 2);
    CHECK(result.out.empty());
    CHECK(result.err.find("prices.csv:2:3: empty cell") != std::string::npos);
  }
}

TEST_CASE("drop and ffill agree on late starters (leading gaps only) and differ on gaps",
          "[cli][stats][missing]") {
  const auto run = [](const char* fixture, const char* missing) {
    const auto result =
        run_cli({"stats", "--prices", data_path(std::string(fixture) + "/prices.csv").string(),
                 "--window", "10", "--stat", "cov", "--all", "--missing", missing});
    REQUIRE(result.status == 0);
    return result.out;
  };
  CHECK(run("late_start", "drop") == run("late_start", "ffill"));
  CHECK(run("gaps", "drop") != run("gaps", "ffill"));
}
