#pragma once

/// \file
/// Date × asset tables (prices, volumes) read one row at a time, validated, with the
/// `--missing` policy applied.

#include <Eigen/Core>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dynweight/core/error.hpp"
#include "dynweight/csv_reader.hpp"
#include "dynweight/errors.hpp"

namespace dynweight::cli {

/// What to do with an empty cell of a price (or volume) table.
enum class MissingPolicy {
  error,  ///< an empty cell is an error naming its line and column
  drop,   ///< rows with any empty cell are skipped, wherever they are (pandas `dropna()`)
  ffill,  ///< an empty price repeats the asset's last price (pandas `ffill().dropna()`)
};

/// Parses "error" | "drop" | "ffill".
MissingPolicy parse_missing_policy(std::string_view text);

/// Why a price > 0 below the smallest normal double is refused, after the quoted cell: it keeps
/// only some of its digits, and the library refuses it deeper down (the rebalancer's prices must
/// be normal), where the message cannot say which cell it came from.
inline constexpr std::string_view kSubnormalPrice =
    " is not a usable price: below 2.2e-308, a double keeps only some of its digits (subnormal)";

/// The rule a table's numbers obey.
enum class ValueRule {
  positive,     ///< prices: finite and > 0
  nonnegative,  ///< volumes: finite and >= 0
};

/// The date column of a table, checked row by row: each date an ISO 8601 date (YYYY-MM-DD,
/// optionally followed by 'T' or ' ' and a time `hh:mm[:ss[.fraction]]` with an optional zone `Z`,
/// `±hh`, `±hh:mm` or `±hhmm`; nothing else after it), written in the format of the file's first
/// date (same length, same separators: dates are compared as text, which is chronological only
/// within one format), and strictly after the previous one. Shared by the price and volume tables
/// and the wide targets of `rebalance`.
class DateColumn {
 public:
  explicit DateColumn(std::string path) : m_path(std::move(path)) {}

  /// Checks `date` (trimmed), the date of the row on `line`, and remembers it; throws
  /// `InputError` "file:line:1: message" when it is empty, not an ISO date, in another format than
  /// the first date, equal to the previous date or before it.
  void check(const std::string& date, long line);

 private:
  std::string m_path;
  std::string m_first;
  std::string m_previous;
  long m_first_line = 0;
  long m_previous_line = 0;
};

/// One date × asset CSV table, as pandas `to_csv` writes it: a header row (the date column's name,
/// possibly empty, then the asset names: non-empty, unique), then one row per date, oldest first.
///
/// Each row is checked as it is read: as many cells as the header; the date as `DateColumn` says
/// (ISO 8601, one format, strictly increasing); every other cell empty (missing) or a finite
/// number obeying the table's `ValueRule`.
/// Every violation throws `InputError` "file:line:column: message (asset 'X', date D)". An empty
/// file and a header without rows are errors too.
class TableReader {
 public:
  TableReader(std::string path, ValueRule rule);

  /// Reads the next row; false at the end of the file.
  bool next();

  [[nodiscard]] const std::vector<std::string>& assets() const { return m_assets; }
  [[nodiscard]] const std::string& path() const { return m_csv.path(); }
  /// The latest row's date, values (NaN where the cell is empty) and line.
  [[nodiscard]] const std::string& date() const { return m_date; }
  [[nodiscard]] const Eigen::VectorXd& values() const { return m_values; }
  [[nodiscard]] bool missing(Eigen::Index asset) const { return m_missing[asset] != 0; }
  [[nodiscard]] bool any_missing() const { return m_missing_count > 0; }
  [[nodiscard]] long line() const { return m_csv.line(); }
  [[nodiscard]] long end_line() const { return m_csv.end_line(); }
  /// The line of the header row (after any blank lines).
  [[nodiscard]] long header_line() const { return m_header_line; }
  /// "file:line:column: message (asset 'X', date D)" for column `column` (1-based, 1 = date) of
  /// the latest row.
  [[nodiscard]] std::string error_at(long column, std::string_view message) const;

 private:
  void read_header();
  void read_value(Eigen::Index asset, const std::string& cell);

  CsvReader m_csv;
  ValueRule m_rule;
  std::vector<std::string> m_cells;
  std::vector<std::string> m_assets;
  std::string m_date;
  DateColumn m_dates;
  long m_header_line = 0;
  long m_rows = 0;
  Eigen::VectorXd m_values;
  std::vector<char> m_missing;
  long m_missing_count = 0;
};

/// Prices, and optionally volumes of the same dates and assets, as bars: every bar has a price
/// (finite, > 0) and a volume (finite, >= 0) for every asset, after the `MissingPolicy`:
/// - error: an empty cell in either file is an `InputError`;
/// - drop: a row with an empty price or volume cell is skipped (leading rows of late starters,
///   and any gap later on: the next return then spans the gap), as pandas `dropna()`;
/// - ffill: an empty price takes the asset's last price (also from rows that were skipped), an
///   empty volume is 0 (nothing traded); rows before every asset has had a price are skipped, as
///   pandas `prices.ffill().dropna()`.
/// The volumes file must have the prices file's header (same assets, same order) and its dates,
/// row by row.
class MarketReader {
 public:
  MarketReader(const std::string& prices_path, const std::optional<std::string>& volumes_path,
               MissingPolicy policy);

  /// Advances to the next bar the policy keeps; false at the end. Throws `InputError` at the end
  /// if no bar was kept at all.
  bool next();

  [[nodiscard]] const std::vector<std::string>& assets() const { return m_prices.assets(); }
  [[nodiscard]] Eigen::Index asset_count() const { return m_price_bar.size(); }
  [[nodiscard]] bool has_volumes() const { return m_volumes.has_value(); }
  [[nodiscard]] const std::string& date() const { return m_prices.date(); }
  [[nodiscard]] const Eigen::VectorXd& prices() const { return m_price_bar; }
  /// Volumes of the bar (only with a volumes file).
  [[nodiscard]] const Eigen::VectorXd& volumes() const { return m_volume_bar; }
  /// Bars delivered so far.
  [[nodiscard]] long bars() const { return m_bars; }
  [[nodiscard]] const std::string& prices_path() const { return m_prices.path(); }
  /// The message of an error the library raised on the latest bar, located at the bar's row:
  /// "prices.csv:LINE: <message> (date D)", with ", volumes volumes.csv:LINE" before the ')' when
  /// there is a volumes file (the library's "dynweight: " prefix dropped, `main` adds it).
  [[nodiscard]] std::string error_on_bar(std::string_view message) const;

 private:
  bool next_row();
  [[noreturn]] void fail_missing(const TableReader& table) const;

  MissingPolicy m_policy;
  TableReader m_prices;
  std::optional<TableReader> m_volumes;
  Eigen::VectorXd m_price_bar;
  Eigen::VectorXd m_volume_bar;
  Eigen::VectorXd m_last_price;  // ffill: latest price seen per asset (NaN: none yet)
  long m_bars = 0;
  long m_bar_line = 0;  // where the latest bar's rows are, for error_on_bar
  long m_bar_volume_line = 0;
  std::string m_bar_date;
};

/// Runs `step`, the library's work on the latest bar of `reader`, and turns a `dynweight::Error`
/// it throws into an `InputError` located at the bar's row (`MarketReader::error_on_bar`).
template <class Step>
decltype(auto) on_bar(const MarketReader& reader, Step&& step) {
  try {
    return std::forward<Step>(step)();
  } catch (const dynweight::Error& error) {
    throw InputError(reader.error_on_bar(error.what()));
  }
}

}  // namespace dynweight::cli
