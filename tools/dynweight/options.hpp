#pragma once

/// \file
/// Option groups shared by the subcommands: the market input and estimator (stats, weights,
/// backtest) and the trading options (rebalance, backtest).

#include <CLI/CLI.hpp>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "dynweight/core/types.hpp"
#include "dynweight/csv_reader.hpp"
#include "dynweight/market_reader.hpp"
#include "dynweight/stats/returns.hpp"

namespace dynweight {
struct RebalanceOptions;
}

namespace dynweight::cli {

/// A check of a real option: finite and > 0 ("--halflife: '0' is not a number > 0"). CLI11's
/// `PositiveNumber` lets NaN through and words its refusals as a range up to 1.8e308. Integer
/// options take `integer_in_range` instead.
CLI::Validator positive_number();

/// A transform of an integer option: the text must be a whole decimal number (an optional '+' or
/// '-', then digits) in [min, max], else "--seed: '18446744073709551616' is outside the range 0 to
/// 18446744073709551615". CLI11 (2.1) reads integers with strtoll/strtoull, which clamp a value
/// beyond the type to its end without a word, wrap "-1" to 2^64 - 1 for an unsigned type, and read
/// "010" as octal: the text is replaced by the number in plain decimal, so CLI11 reads back the
/// value checked here. Add it with `->transform(...)`: a `->check` would not change the text.
template <class Integer>
CLI::Validator integer_in_range(Integer min, Integer max) {
  const std::string range = std::to_string(min) + " to " + std::to_string(max);
  return CLI::Validator(
      [min, max, range](std::string& text) -> std::string {
        const bool negative = !text.empty() && text.front() == '-';
        const std::size_t sign = !text.empty() && (negative || text.front() == '+') ? 1 : 0;
        if (text.size() == sign || text.find_first_not_of("0123456789", sign) != std::string::npos)
          return dynweight::cli::quoted(text) + " is not a whole number (" + range + ")";
        Integer value{};
        std::errc error{};
        if (negative && std::is_unsigned_v<Integer>) {
          // from_chars takes no '-' for an unsigned type: of the negative numbers only -0 fits.
          if (text.find_first_not_of('0', 1) != std::string::npos)
            error = std::errc::result_out_of_range;
        } else {
          // from_chars takes a '-' but not a '+'.
          const char* first = text.data() + (negative ? 0 : sign);
          error = std::from_chars(first, text.data() + text.size(), value).ec;
        }
        if (error != std::errc() || value < min || value > max)
          return dynweight::cli::quoted(text) + " is outside the range " + range;
        text = std::to_string(value);
        return {};
      },
      "[" + range + "]", "INTEGER");
}

/// `--prices`, `--volumes`, `--missing`.
struct MarketInputOptions {
  std::string prices;
  std::string volumes;  // empty: none
  std::string missing = "error";

  [[nodiscard]] std::optional<std::string> volumes_path() const;
  [[nodiscard]] MissingPolicy missing_policy() const { return parse_missing_policy(missing); }
};

/// Adds `--prices` (required), `--volumes` (with `volumes_help`) and `--missing` to `app`.
void add_market_input_options(CLI::App& app, MarketInputOptions& options,
                              const std::string& volumes_help);

/// `--window W | --halflife H` (exactly one) and `--returns simple|log`.
struct EstimatorOptions {
  Index window = 0;
  double halflife = 0.0;
  /// Returns the EWMA estimates need before they are used (pandas' min_periods; the unbiased
  /// dispersion is defined from the second); `--min-periods`, with --halflife only.
  Index min_periods = 2;
  std::string returns = "simple";

  [[nodiscard]] bool rolling() const { return window > 0; }
  [[nodiscard]] ReturnKind return_kind() const;
  /// Throws `InputError` unless exactly one of --window and --halflife was given, or when the
  /// half-life is so short that α = 1 − exp(−ln 2 / H) rounds to 1 (only the last return weighted:
  /// the bias-corrected EWMA variance is undefined, NaN in pandas), or when `--min-periods`
  /// (`min_periods_given`) comes without --halflife.
  void validate(bool min_periods_given = false) const;
};

/// Adds `--window`, `--halflife` (exclusive) and `--returns` to `app`.
void add_estimator_options(CLI::App& app, EstimatorOptions& options);
/// The same, with the help texts of --window and --halflife given (the backtest says where its
/// first rebalance falls).
void add_estimator_options(CLI::App& app, EstimatorOptions& options, const std::string& window_help,
                           const std::string& halflife_help);

/// Adds `--min-periods` (the EWMA's, with --halflife) to `app` (weights and backtest).
void add_min_periods_option(CLI::App& app, EstimatorOptions& options);

/// Throws `InputError` "--window W is longer than the price file: it needs W + `extra_rows` price
/// rows, FILE has K" before the engines size their N × W buffers, when those buffers would pass
/// 64 MiB (W × assets × 8 bytes) and the price file (a regular file) has fewer data rows. Counting
/// reads the file once more, so smaller windows are left to the one pass, which reports a window
/// the file cannot fill as "not enough rows" at its end. A price file that is not a regular file
/// (a pipe) cannot be counted: there the buffers are checked against the machine's physical
/// memory instead (`InputError` "--window W needs X GB for N assets ...").
void check_window_fits(Index window, Index extra_rows, const MarketReader& reader);

/// A value given as `X` or `X%` (then X / 100, and `percent` is set).
struct Amount {
  double value = 0.0;
  bool percent = false;
};

/// Parses `X` or `X%` (finite, >= 0); throws `InputError` naming `option` otherwise.
Amount parse_amount(std::string_view option, std::string_view text);

/// `--max-participation`'s X or X% (then X / 100): finite and > 0, else an `InputError`.
double parse_max_participation(std::string_view text);

/// Throws `InputError` "OPTION: VALUE must be REQUIREMENT" unless `ok`.
void check_option(bool ok, std::string_view option, double value, std::string_view requirement);

/// `--lot-size`, `--min-trade`, `--band`, `--cost-bps`, `--fee`, `--cash-buffer`, `--shortfall`:
/// how a book trades (rebalance and backtest). `--min-trade` and `--cash-buffer` as a percentage,
/// and `--band` in either form, must be below 100% (1).
struct TradingOptions {
  double lot_size = 1.0;
  std::string min_trade = "0";
  std::string band = "0";
  double cost_bps = 0.0;
  double fee = 0.0;
  std::string cash_buffer = "0";
  std::string shortfall = "level";  ///< `level` or `cut-buys` (`CashShortfall`)

  /// Checks each value (an `InputError` naming the option) and sets it in `options`.
  void apply(RebalanceOptions& options) const;
};

/// Adds the trading options to `app`, with the help texts of --lot-size and --band given (they
/// differ where a book file may carry lot sizes, or a band mode applies).
void add_trading_options(CLI::App& app, TradingOptions& options, const std::string& lot_size_help,
                         const std::string& band_help);

}  // namespace dynweight::cli
