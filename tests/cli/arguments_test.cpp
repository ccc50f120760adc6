// Command-line arguments of the `dynweight` tool: every bad argument is exit status 2 with a
// "dynweight: " message on stderr and nothing on stdout; --help is usage on stdout, status 0.

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cli_support.hpp"

namespace {

using dynweight::cli::test::data_path;
using dynweight::cli::test::read_text;
using dynweight::cli::test::run_cli;

struct BadArguments {
  const char* name;
  std::vector<std::string> arguments;
  const char* message;  // a part of stderr
};

}  // namespace

TEST_CASE("bad arguments exit with status 2 and a message and nothing on stdout",
          "[cli][arguments]") {
  const std::string prices = data_path("market/prices.csv").string();
  const std::string volumes = data_path("market/volumes.csv").string();
  const std::string late = data_path("late_start/prices.csv").string();
  const std::vector<BadArguments> cases = {
      {"no subcommand", {}, "A subcommand is required"},
      {"unknown subcommand", {"frobnicate", "--window", "3"}, "unknown subcommand 'frobnicate'"},
      {"unknown option",
       {"stats", "--prices", prices, "--window", "5", "--stat", "vol", "--bogus"},
       "--bogus"},
      {"stats without --prices", {"stats", "--window", "5", "--stat", "vol"}, "--prices"},
      {"stats without --stat", {"stats", "--prices", prices, "--window", "5"}, "--stat"},
      {"both --window and --halflife",
       {"stats", "--prices", prices, "--window", "5", "--halflife", "3", "--stat", "vol"},
       "excludes"},
      {"neither --window nor --halflife",
       {"stats", "--prices", prices, "--stat", "vol"},
       "give exactly one of --window and --halflife"},
      {"window of 1 for moments",
       {"stats", "--prices", prices, "--window", "1", "--stat", "mean"},
       "--window must be at least 2"},
      {"window of 0",
       {"stats", "--prices", prices, "--window", "0", "--stat", "mean"},
       "--window: '0' is outside the range 1 to 9223372036854775807"},
      // CLI11 clamps an integer beyond its type to the type's end: these used to run as
      // 9223372036854775807 (or 2^64 - 1 for --seed) without a word.
      {"window beyond the integers",
       {"stats", "--prices", prices, "--window", "99999999999999999999", "--stat", "vol"},
       "--window: '99999999999999999999' is outside the range 1 to 9223372036854775807"},
      {"window beyond the integers, weights",
       {"weights", "--prices", prices, "--window", "9223372036854775808", "--policy",
        "inverse-vol"},
       "--window: '9223372036854775808' is outside the range 1 to 9223372036854775807"},
      {"every beyond the integers, backtest",
       {"backtest", "--prices", prices, "--window", "5", "--policy", "inverse-vol", "--every",
        "99999999999999999999", "--annualization", "252", "--out", "unused"},
       "--every: '99999999999999999999' is outside the range 1 to 9223372036854775807"},
      {"window beyond the integers, backtest",
       {"backtest", "--prices", prices, "--window", "-99999999999999999999", "--policy",
        "inverse-vol", "--every", "5", "--annualization", "252", "--out", "unused"},
       "--window: '-99999999999999999999' is outside the range 1 to 9223372036854775807"},
      {"window not an integer",
       {"stats", "--prices", prices, "--window", "2.5", "--stat", "mean"},
       "--window"},
      {"negative half-life",
       {"stats", "--prices", prices, "--halflife", "-3", "--stat", "mean"},
       "--halflife: '-3' is not a number > 0"},
      {"half-life not a number",
       {"stats", "--prices", prices, "--halflife", "nan", "--stat", "vol"},
       "--halflife: 'nan' is not a number > 0"},
      {"infinite half-life",
       {"stats", "--prices", prices, "--halflife", "inf", "--stat", "vol"},
       "--halflife: 'inf' is not a number > 0"},
      {"half-life so short that alpha is 1",
       {"stats", "--prices", prices, "--halflife", "1e-300", "--stat", "vol"},
       "--halflife 1e-300 is too short: alpha = 1 - exp(-ln 2 / H) rounds to 1"},
      {"half-life so short that alpha is 1, weights",
       {"weights", "--prices", prices, "--halflife", "0.01", "--policy", "inverse-vol"},
       "--halflife 0.01 is too short"},
      {"every 0",
       {"weights", "--prices", prices, "--window", "5", "--policy", "inverse-vol", "--every", "0"},
       "--every: '0' is outside the range 1 to 9223372036854775807"},
      {"every past the largest integer, weights",
       {"weights", "--prices", prices, "--window", "5", "--policy", "inverse-vol", "--every",
        "99999999999999999999"},
       "--every: '99999999999999999999' is outside the range 1 to 9223372036854775807"},
      {"unknown statistic",
       {"stats", "--prices", prices, "--window", "5", "--stat", "skew"},
       "--stat"},
      {"unknown return kind",
       {"stats", "--prices", prices, "--window", "5", "--stat", "vol", "--returns", "excess"},
       "--returns"},
      {"unknown missing policy",
       {"stats", "--prices", prices, "--window", "5", "--stat", "vol", "--missing", "zero"},
       "--missing"},
      {"adv without volumes",
       {"stats", "--prices", prices, "--window", "5", "--stat", "adv"},
       "--stat adv needs --volumes"},
      {"volumes without adv",
       {"stats", "--prices", prices, "--window", "5", "--stat", "vol", "--volumes", volumes},
       "--volumes is only read by --stat adv"},
      {"window longer than the data",
       {"stats", "--prices", prices, "--window", "120", "--stat", "cov"},
       "not enough rows for --stat cov: it needs 121 price rows, the file has 120"},
      {"window longer than the data after drop",
       {"stats", "--prices", late, "--window", "60", "--stat", "vol", "--missing", "drop"},
       "it needs 61 price rows, the file has 60 (after --missing drop)"},
      {"late starters with --missing error",
       {"stats", "--prices", late, "--window", "5", "--stat", "vol"},
       "prices.csv:2:6: empty cell (use --missing drop or --missing ffill to accept missing "
       "values) (asset 'A005', date 2015-01-02)"},
      {"sample without --out", {"sample", "--assets", "3", "--days", "10", "--seed", "1"}, "--out"},
      {"sample with one day",
       {"sample", "--assets", "3", "--days", "1", "--seed", "1", "--out", "unused"},
       "--days"},
      {"sample with zero assets",
       {"sample", "--assets", "0", "--days", "10", "--seed", "1", "--out", "unused"},
       "--assets: '0' is outside the range 1 to 9223372036854775807"},
      {"sample with days beyond the integers",
       {"sample", "--assets", "3", "--days", "100000000000000000000", "--seed", "1", "--out",
        "unused"},
       "--days: '100000000000000000000' is outside the range 2 to 10000000"},
      {"sample with a late start beyond the integers",
       {"sample", "--assets", "3", "--days", "10", "--seed", "1", "--late-start",
        "99999999999999999999", "--out", "unused"},
       "--late-start: '99999999999999999999' is outside the range 0 to 9223372036854775807"},
      {"sample with every asset late",
       {"sample", "--assets", "3", "--days", "10", "--seed", "1", "--late-start", "3", "--out",
        "unused"},
       "--late-start must be in [0, --assets)"},
      {"sample with a bad start date",
       {"sample", "--assets", "3", "--days", "10", "--seed", "1", "--start-date", "2015-02-30",
        "--out", "unused"},
       "--start-date: '2015-02-30' is not an ISO 8601 date"},
      {"sample with a negative seed",
       {"sample", "--assets", "3", "--days", "10", "--seed", "-1", "--out", "unused"},
       "--seed: '-1' is outside the range 0 to 18446744073709551615"},
      {"sample with a seed of 2^64",
       {"sample", "--assets", "3", "--days", "10", "--seed", "18446744073709551616", "--out",
        "unused"},
       "--seed: '18446744073709551616' is outside the range 0 to 18446744073709551615"},
      {"sample with a seed far beyond 2^64",
       {"sample", "--assets", "3", "--days", "10", "--seed", "99999999999999999999999", "--out",
        "unused"},
       "--seed: '99999999999999999999999' is outside the range 0 to 18446744073709551615"},
      {"sample with a seed that is not a whole number",
       {"sample", "--assets", "3", "--days", "10", "--seed", "1.5", "--out", "unused"},
       "--seed: '1.5' is not a whole number (0 to 18446744073709551615)"},
  };
  for (const auto& bad : cases) {
    DYNAMIC_SECTION(bad.name) {
      const auto result = run_cli(bad.arguments);
      INFO("stderr: " << result.err);
      CHECK(result.status == 2);
      CHECK(result.out.empty());
      CHECK(result.err.rfind("dynweight: ", 0) == 0);
      CHECK(result.err.find(bad.message) != std::string::npos);
    }
  }
}

TEST_CASE("help prints usage on stdout with status 0", "[cli][arguments]") {
  for (const auto& arguments : std::vector<std::vector<std::string>>{
           {"--help"}, {"stats", "--help"}, {"sample", "--help"}}) {
    const auto result = run_cli(arguments);
    CHECK(result.status == 0);
    CHECK(result.err.empty());
    CHECK(result.out.find("Usage: dynweight") != std::string::npos);
  }
  const auto stats = run_cli({"stats", "--help"});
  for (const char* option : {"--prices", "--volumes", "--missing", "--window", "--halflife",
                             "--returns", "--stat", "--all"})
    CHECK(stats.out.find(option) != std::string::npos);
}

TEST_CASE("a huge --window is rejected for the file's rows before any buffer is sized",
          "[cli][arguments]") {
  // 10^9 returns x 6 assets would be a 48 GB ring buffer (std::bad_alloc); the price file has 120
  // rows, so the window can never fill.
  const std::string prices = data_path("market/prices.csv").string();
  const std::string volumes = data_path("market/volumes.csv").string();
  const std::vector<std::vector<std::string>> commands = {
      {"stats", "--prices", prices, "--window", "1000000000", "--stat", "vol"},
      {"stats", "--prices", prices, "--window", "1000000000", "--stat", "cov", "--all"},
      {"stats", "--prices", prices, "--volumes", volumes, "--window", "1000000000", "--stat",
       "adv"},
      {"weights", "--prices", prices, "--window", "1000000000", "--policy", "inverse-vol"},
      {"weights", "--prices", prices, "--window", "1000000000", "--policy", "shrinkage",
       "--shrinkage", "oas"},
      {"weights", "--prices", prices, "--volumes", volumes, "--window", "1000000000", "--policy",
       "liquidity"},
      {"backtest", "--prices", prices, "--window", "1000000000", "--policy", "inverse-vol",
       "--every", "5", "--annualization", "252", "--out", "unused_out_dir"},
  };
  for (const auto& arguments : commands) {
    const auto result = run_cli(arguments);
    INFO(result.err);
    CHECK(result.status == 2);
    CHECK(result.out.empty());
    CHECK(result.err.rfind("dynweight: --window 1000000000 is longer than the price file", 0) == 0);
    CHECK(result.err.find(prices + " has 120") != std::string::npos);
  }
  const auto adv = run_cli(commands[2]);
  CHECK(adv.err.find("it needs 1000000000 price rows") != std::string::npos);
  const auto vol = run_cli(commands[0]);
  CHECK(vol.err.find("it needs 1000000001 price rows") != std::string::npos);
}

TEST_CASE("a price file from a pipe: a --window beyond the machine's memory is rejected up front",
          "[cli][arguments]") {
  // A pipe cannot be counted first; 10^15 returns x 6 assets (48 PB) cannot be allocated on any
  // machine, which used to end in std::bad_alloc (exit 1).
  const std::string text = read_text(data_path("market/prices.csv"));
  const std::string volumes = data_path("market/volumes.csv").string();
  const std::string window = "1000000000000000";
  const std::vector<std::vector<std::string>> commands = {
      {"stats", "--prices", "/dev/stdin", "--window", window, "--stat", "cov", "--all"},
      {"stats", "--prices", "/dev/stdin", "--volumes", volumes, "--window", window, "--stat",
       "adv"},
      {"weights", "--prices", "/dev/stdin", "--window", window, "--policy", "shrinkage",
       "--shrinkage", "oas"},
      {"backtest", "--prices", "/dev/stdin", "--window", window, "--policy", "inverse-vol",
       "--every", "5", "--annualization", "252", "--out", "unused_out_dir"},
  };
  for (const auto& arguments : commands) {
    const auto result = run_cli(arguments, text);
    INFO(result.err);
    CHECK(result.status == 2);
    CHECK(result.out.empty());
    CHECK(result.err.rfind("dynweight: --window " + window + " needs 4.8e+07 GB for 6 assets", 0) ==
          0);
    CHECK(result.err.find("/dev/stdin is not a regular file") != std::string::npos);
  }
  // A window that fits is read from the pipe as from the file.
  const std::vector<std::string> stats = {"stats", "--prices", "/dev/stdin", "--window",
                                          "20",    "--stat",   "vol"};
  const auto piped = run_cli(stats, text);
  std::vector<std::string> from_file = stats;
  from_file[2] = data_path("market/prices.csv").string();
  const auto direct = run_cli(from_file);
  INFO(piped.err);
  CHECK(piped.status == 0);
  CHECK(direct.status == 0);
  CHECK(!piped.out.empty());
  CHECK(piped.out == direct.out);
}

TEST_CASE("sample rejects more cells than it can hold before generating any", "[cli][arguments]") {
  for (const auto& [assets, days] : std::vector<std::pair<std::string, std::string>>{
           {"1000000000", "2"}, {"100000", "100000"}, {"9000000000000000000", "10000000"}}) {
    const auto result = run_cli(
        {"sample", "--assets", assets, "--days", days, "--seed", "1", "--out", "unused_sample"});
    INFO(result.err);
    CHECK(result.status == 2);
    CHECK(result.out.empty());
    CHECK(result.err.rfind("dynweight: --assets " + assets + " x --days " + days, 0) == 0);
    CHECK(result.err.find("at most 20000000") != std::string::npos);
  }
}

TEST_CASE("integer options read the largest value and decimal digits as written",
          "[cli][arguments]") {
  // CLI11 reads integers with strtoull(base 0): "010" was the octal 8.
  const auto sample = [](const std::string& seed) {
    const auto dir = dynweight::cli::test::work_dir("sample_seed_" + seed);
    const auto result =
        run_cli({"sample", "--assets", "2", "--days", "5", "--seed", seed, "--out", dir.string()});
    INFO("--seed " << seed << ": " << result.err);
    CHECK(result.status == 0);
    return read_text(dir / "prices.csv");
  };
  CHECK(sample("010") == sample("10"));
  CHECK(sample("+10") == sample("10"));
  CHECK(sample("010") != sample("8"));
  CHECK(!sample("18446744073709551615").empty());
}
