// `dynweight sample`: a synthetic market (prices.csv, volumes.csv) to try the other commands on.

#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include "dynweight/commands.hpp"
#include "dynweight/market_sample.hpp"
#include "dynweight/options.hpp"
#include "dynweight/output.hpp"

namespace dynweight::cli {

namespace {

struct SampleArguments {
  SampleOptions market;
  std::string out;
};

void run_sample(const SampleArguments& arguments) {
  const SampleMarket market = generate_sample_market(arguments.market);
  const std::string prices = format_market_table(market, market.prices);
  const std::string volumes = format_market_table(market, market.volumes);

  const std::filesystem::path dir(arguments.out);
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    std::string message = "cannot create the directory '";
    message.append(arguments.out).append("': ").append(error.message());
    throw std::runtime_error(message);
  }
  FileSetReplacement files;  // both files replace the old ones, or neither does
  files.add(dir / "prices.csv", prices);
  files.add(dir / "volumes.csv", volumes);
  files.commit();
}

}  // namespace

Command add_sample_command(CLI::App& parent) {
  auto arguments = std::make_shared<SampleArguments>();
  CLI::App* app = parent.add_subcommand(
      "sample",
      "Write DIR/prices.csv and DIR/volumes.csv: a synthetic daily market (a market factor and "
      "sector factors, calm and turbulent regimes, Student-t shocks, business days, volumes "
      "that rise in turbulence), the same for the same seed on every platform");
  constexpr Eigen::Index kMaxIndex = std::numeric_limits<Eigen::Index>::max();
  app->add_option("--assets", arguments->market.assets, "Number of assets N (>= 1)")
      ->required()
      ->transform(integer_in_range<Eigen::Index>(1, kMaxIndex))
      ->type_name("N");
  app->add_option("--days", arguments->market.days,
                  "Number of business days T, price rows (>= 2; the last one at most "
                  "9999-12-31, and N x T at most 20000000 cells)")
      ->required()
      ->transform(integer_in_range<Eigen::Index>(2, 10000000))
      ->type_name("T");
  app->add_option("--seed", arguments->market.seed, "Seed of the random generator (0 .. 2^64-1)")
      ->required()
      ->transform(integer_in_range<std::uint64_t>(0, std::numeric_limits<std::uint64_t>::max()))
      ->type_name("S");
  app->add_option("--out", arguments->out, "Output directory (created if needed)")
      ->required()
      ->type_name("DIR");
  app->add_option("--start-date", arguments->market.start_date,
                  "First date (ISO YYYY-MM-DD; a weekend rolls forward to Monday)")
      ->capture_default_str()
      ->type_name("DATE");
  app->add_option("--late-start", arguments->market.late_start,
                  "The last K assets start trading late (empty cells before, spread over the "
                  "first half of the dates), to try --missing drop|ffill; 0 <= K < N")
      ->capture_default_str()
      ->transform(integer_in_range<Eigen::Index>(0, kMaxIndex))
      ->type_name("K");
  return {app, [arguments]() { run_sample(*arguments); }};
}

}  // namespace dynweight::cli
