#include "dynweight/options.hpp"

#include <fmt/core.h>

#include "dynweight/csv_reader.hpp"
#include "dynweight/errors.hpp"
#include "dynweight/rebalance/rebalancer.hpp"
#include "dynweight/stats/ewma_decay.hpp"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

namespace dynweight::cli {

std::optional<std::string> MarketInputOptions::volumes_path() const {
  if (volumes.empty())
    return std::nullopt;
  return volumes;
}

void add_market_input_options(CLI::App& app, MarketInputOptions& options,
                              const std::string& volumes_help) {
  app.add_option("--prices", options.prices,
                 "Price file (CSV): a header row (the date column, then asset names), one row "
                 "per date, oldest first; ISO dates; empty cells are missing prices")
      ->required()
      ->type_name("FILE");
  app.add_option("--volumes", options.volumes, volumes_help)->type_name("FILE");
  app.add_option("--missing", options.missing,
                 "Empty cells: 'error' rejects them; 'drop' skips every row that has one; "
                 "'ffill' repeats each asset's last price (and takes a missing volume as 0), "
                 "skipping the rows before every asset has a price")
      ->check(CLI::IsMember({"error", "drop", "ffill"}))
      ->capture_default_str();
}

ReturnKind EstimatorOptions::return_kind() const {
  return returns == "log" ? ReturnKind::log : ReturnKind::simple;
}

void EstimatorOptions::validate(bool min_periods_given) const {
  if ((window > 0) == (halflife > 0.0))
    throw InputError("give exactly one of --window and --halflife");
  if (min_periods_given && halflife <= 0.0)
    throw InputError("--min-periods is read with --halflife only (a --window is ready when full)");
  if (halflife > 0.0 && EwmaDecay::from_halflife(halflife).alpha() == 1.0)
    throw InputError(fmt::format(
        "--halflife {} is too short: alpha = 1 - exp(-ln 2 / H) rounds to 1, so only the last "
        "return has weight and the EWMA variance (bias-corrected, as pandas) is undefined",
        halflife));
}

CLI::Validator positive_number() {
  return CLI::Validator(
      [](const std::string& text) -> std::string {
        double value = 0;
        const std::errc error = parse_cell_double(text, value);
        if (error == std::errc() && std::isfinite(value) && value > 0)
          return {};
        return dynweight::cli::quoted(text) + " is not a number > 0";
      },
      "> 0", "POSITIVE");
}

void add_min_periods_option(CLI::App& app, EstimatorOptions& options) {
  app.add_option("--min-periods", options.min_periods,
                 "With --halflife: returns before the EWMA estimates are used (pandas' "
                 "min_periods; at least 2, from which the unbiased covariance is defined; more "
                 "than the number of assets for a covariance of full rank)")
      ->transform(integer_in_range<Index>(2, std::numeric_limits<Index>::max()))
      ->capture_default_str()
      ->type_name("P");
}

void add_estimator_options(CLI::App& app, EstimatorOptions& options) {
  add_estimator_options(
      app, options,
      "Rolling window: the statistic of the last W returns (sample moments, W - 1 "
      "in the denominator, as pandas rolling(W)); for adv, the last W price rows",
      "Exponential weighting with half-life H periods, as pandas ewm(halflife=H) "
      "(adjust=True, bias=False)");
}

void add_estimator_options(CLI::App& app, EstimatorOptions& options, const std::string& window_help,
                           const std::string& halflife_help) {
  auto* window = app.add_option("--window", options.window, window_help)
                     ->transform(integer_in_range<Index>(1, std::numeric_limits<Index>::max()))
                     ->type_name("W");
  auto* halflife = app.add_option("--halflife", options.halflife, halflife_help)
                       ->check(positive_number())
                       ->type_name("H");
  window->excludes(halflife);
  app.add_option("--returns", options.returns,
                 "Returns: 'simple' p_t/p_{t-1} - 1, or 'log' ln(p_t/p_{t-1})")
      ->check(CLI::IsMember({"simple", "log"}))
      ->capture_default_str();
}

void check_window_fits(Index window, Index extra_rows, const MarketReader& reader) {
  constexpr double kCheckedBytes = 64.0 * 1024 * 1024;
  const double bytes = static_cast<double>(window) * static_cast<double>(reader.asset_count()) * 8;
  const std::string& path = reader.prices_path();
  if (bytes <= kCheckedBytes)
    return;
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    // A pipe cannot be read twice: the one check left is the machine's memory.
    const double memory = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) *
                          static_cast<double>(::sysconf(_SC_PAGE_SIZE));
    if (memory > 0 && bytes > memory)
      throw InputError(fmt::format(
          "--window {} needs {:.3g} GB for {} assets (W x assets x 8 bytes), more than this "
          "machine's {:.3g} GB of memory ({} is not a regular file, so its rows cannot be counted "
          "first)",
          window, bytes / 1e9, reader.asset_count(), memory / 1e9, path));
    return;
  }
  CsvReader csv(path);
  std::vector<std::string> cells;
  long records = 0;
  while (csv.next(cells))
    ++records;
  const long rows = records - 1;  // the header
  if (window <= rows - extra_rows)
    return;
  throw InputError(fmt::format(
      "--window {} is longer than the price file: it needs {} price rows, {} has {}", window,
      static_cast<unsigned long long>(window) + static_cast<unsigned long long>(extra_rows), path,
      rows));
}

Amount parse_amount(std::string_view option, std::string_view text) {
  Amount amount;
  std::string_view digits = text;
  if (!digits.empty() && digits.back() == '%') {
    amount.percent = true;
    digits.remove_suffix(1);
  }
  const char* first = digits.data();
  const char* last = first + digits.size();
  const auto [end, error] = std::from_chars(first, last, amount.value);
  if (digits.empty() || error != std::errc() || end != last || !std::isfinite(amount.value) ||
      amount.value < 0.0) {
    std::string message(option);
    message.append(": '").append(text).append("' is not a number >= 0 or a percentage (X%)");
    throw InputError(message);
  }
  if (amount.percent)
    amount.value /= 100.0;
  return amount;
}

double parse_max_participation(std::string_view text) {
  const double value = parse_amount("--max-participation", text).value;
  check_option(value > 0.0, "--max-participation", value, "> 0");
  return value;
}

void check_option(bool ok, std::string_view option, double value, std::string_view requirement) {
  if (!ok)
    throw InputError(fmt::format("{}: {} must be {}", option, value, requirement));
}

void TradingOptions::apply(RebalanceOptions& options) const {
  check_option(std::isfinite(lot_size) && lot_size > 0.0, "--lot-size", lot_size, "finite and > 0");
  check_option(std::isfinite(cost_bps) && cost_bps >= 0.0 && cost_bps < 1e4, "--cost-bps", cost_bps,
               "finite, >= 0 and < 10000");
  check_option(std::isfinite(fee) && fee >= 0.0, "--fee", fee, "finite and >= 0");
  const Amount min_trade_amount = parse_amount("--min-trade", min_trade);
  const Amount cash_buffer_amount = parse_amount("--cash-buffer", cash_buffer);
  check_option(!min_trade_amount.percent || min_trade_amount.value < 1.0, "--min-trade",
               min_trade_amount.value * 100.0, "below 100% of the portfolio value");
  check_option(!cash_buffer_amount.percent || cash_buffer_amount.value < 1.0, "--cash-buffer",
               cash_buffer_amount.value * 100.0, "below 100% of the portfolio value");
  // The band is a distance in weight (absolute) or a fraction of the target (relative): at 1 or
  // more, an asset bought from nothing (drift = its target) stays inside it, so nothing trades.
  const Amount band_amount = parse_amount("--band", band);
  check_option(band_amount.value < 1.0, "--band",
               band_amount.percent ? band_amount.value * 100.0 : band_amount.value,
               band_amount.percent ? "below 100% (a band that wide keeps every asset inside it: "
                                     "nothing would trade)"
                                   : "below 1 (a band that wide keeps every asset inside it: "
                                     "nothing would trade)");

  options.lot_size = lot_size;
  options.cost_bps = cost_bps;
  options.fee_per_trade = fee;
  (min_trade_amount.percent ? options.min_notional_fraction : options.min_notional) =
      min_trade_amount.value;
  (cash_buffer_amount.percent ? options.cash_buffer_fraction : options.cash_buffer) =
      cash_buffer_amount.value;
  options.band = band_amount.value;
  options.shortfall =
      shortfall == "cut-buys" ? CashShortfall::cut_buys_first : CashShortfall::level;
}

void add_trading_options(CLI::App& app, TradingOptions& options, const std::string& lot_size_help,
                         const std::string& band_help) {
  app.add_option("--lot-size", options.lot_size, lot_size_help)
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--min-trade", options.min_trade,
                 "No order below this notional, or X% of the portfolio value")
      ->capture_default_str()
      ->type_name("X|X%");
  app.add_option("--band", options.band, band_help)->capture_default_str()->type_name("X|X%");
  app.add_option("--cost-bps", options.cost_bps,
                 "Proportional cost, basis points of |notional|, paid from cash")
      ->capture_default_str()
      ->type_name("X");
  app.add_option("--fee", options.fee, "Fixed fee per asset traded, paid from cash")
      ->capture_default_str()
      ->type_name("X");
  app.add_option("--cash-buffer", options.cash_buffer,
                 "Cash after trades and costs stays >= this amount, or X% of the portfolio value")
      ->capture_default_str()
      ->type_name("X|X%");
  app.add_option("--shortfall", options.shortfall,
                 "When cash is short: level (least tracking error: buy cuts and sales below "
                 "target ranked together) or cut-buys (fewer trades: buys cut first)")
      ->capture_default_str()
      ->check(CLI::IsMember({"level", "cut-buys"}));
}

}  // namespace dynweight::cli
