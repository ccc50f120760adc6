#include "dynweight/market_reader.hpp"

#include <cmath>
#include <limits>
#include <system_error>
#include <utility>

#include "dynweight/csv_reader.hpp"
#include "dynweight/errors.hpp"

namespace dynweight::cli {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int two_digits(std::string_view text, std::size_t at) {
  return (text[at] - '0') * 10 + (text[at + 1] - '0');
}

// Two digits at `at`, a number <= `max`; advances `at` past them.
bool two_digits_up_to(std::string_view text, std::size_t& at, int max) {
  if (at + 2 > text.size() || !is_digit(text[at]) || !is_digit(text[at + 1]))
    return false;
  const int value = two_digits(text, at);
  at += 2;
  return value <= max;
}

// An optional ".digits" (at least one digit) at `at`; advances `at` past it. False for a '.'
// without digits.
bool optional_fraction(std::string_view text, std::size_t& at) {
  if (at == text.size() || text[at] != '.')
    return true;
  const std::size_t first = ++at;
  while (at < text.size() && is_digit(text[at]))
    ++at;
  return at > first;
}

// hh:mm[:ss[.fraction]], then optionally Z or an offset ±hh[[:]mm], or ±hh:mm:ss[.fraction] (as
// Python writes historical local-mean-time offsets, e.g. +00:19:32): a time as pandas and ISO 8601
// (extended format) write it. ss may be 60 (a leap second).
bool is_iso_time(std::string_view text) {
  std::size_t at = 0;
  if (!two_digits_up_to(text, at, 23) || at == text.size() || text[at++] != ':' ||
      !two_digits_up_to(text, at, 59)) {
    return false;
  }
  if (at < text.size() && text[at] == ':') {
    ++at;
    if (!two_digits_up_to(text, at, 60) || !optional_fraction(text, at))
      return false;
  }
  if (at == text.size())
    return true;
  if (text[at] == 'Z')
    return at + 1 == text.size();
  if (text[at] != '+' && text[at] != '-')
    return false;
  ++at;
  if (!two_digits_up_to(text, at, 23))
    return false;
  if (at == text.size())
    return true;
  const bool extended = text[at] == ':';
  if (extended)
    ++at;
  if (!two_digits_up_to(text, at, 59))
    return false;
  if (at == text.size())
    return true;
  // Seconds of the offset, extended format only.
  if (!extended || text[at++] != ':' || !two_digits_up_to(text, at, 59) ||
      !optional_fraction(text, at))
    return false;
  return at == text.size();
}

// YYYY-MM-DD with a real month and day, optionally followed by 'T' or ' ' and a time (above).
bool is_iso_date(std::string_view text) {
  if (text.size() < 10 || text[4] != '-' || text[7] != '-')
    return false;
  for (const std::size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u}) {
    if (!is_digit(text[i]))
      return false;
  }
  if (text.size() > 10 && ((text[10] != 'T' && text[10] != ' ') || !is_iso_time(text.substr(11))))
    return false;
  const int year = two_digits(text, 0) * 100 + two_digits(text, 2);
  const int month = two_digits(text, 5);
  const int day = two_digits(text, 8);
  if (month < 1 || month > 12 || day < 1)
    return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return day <= kDays[month - 1] + (month == 2 && leap ? 1 : 0);
}

// The same length and the same non-digit characters at the same places: "2020-01-02" and
// "2020-01-03", not "2020-01-02 00:00:00" (which sorts after "2020-01-02" as text, though it is
// the same instant) nor "2020-01-02T10:00" and "2020-01-02 11:00" (' ' sorts before 'T').
bool same_format(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i] && !(is_digit(a[i]) && is_digit(b[i])))
      return false;
  }
  return true;
}

}  // namespace

void DateColumn::check(const std::string& date, long line) {
  const auto fail = [&](std::string_view message) {
    throw InputError(located(m_path, line, 1, message));
  };
  if (date.empty())
    fail("empty date");
  if (!is_iso_date(date)) {
    fail(quoted(date).append(
        " is not an ISO 8601 date (YYYY-MM-DD, optionally followed by 'T' or a space and a time "
        "hh:mm[:ss[.f]] with an optional zone Z, ±hh, ±hhmm, ±hh:mm or ±hh:mm:ss[.f])"));
  }
  if (m_first_line == 0) {
    m_first = date;
    m_first_line = line;
  } else if (!same_format(date, m_first)) {
    std::string message = "date ";
    message.append(quoted(date)).append(" is not in the format of the first date ");
    message.append(quoted(m_first)).append(" (line ").append(std::to_string(m_first_line));
    message.append("): write every date of the file in one format (dates are compared as text)");
    fail(message);
  } else if (date == m_previous) {
    std::string message = "duplicate date ";
    message.append(date).append(" (also on line ").append(std::to_string(m_previous_line));
    message.append(")");
    fail(message);
  } else if (date < m_previous) {
    std::string message = "date ";
    message.append(date).append(" comes after ").append(m_previous);
    message.append(" (line ").append(std::to_string(m_previous_line));
    message.append("): rows must be sorted by date, oldest first");
    fail(message);
  }
  m_previous = date;
  m_previous_line = line;
}

MissingPolicy parse_missing_policy(std::string_view text) {
  if (text == "error")
    return MissingPolicy::error;
  if (text == "drop")
    return MissingPolicy::drop;
  if (text == "ffill")
    return MissingPolicy::ffill;
  std::string message = "--missing: ";
  message.append(quoted(text)).append(" is not one of error, drop, ffill");
  throw InputError(message);
}

TableReader::TableReader(std::string path, ValueRule rule)
    : m_csv(std::move(path)), m_rule(rule), m_dates(m_csv.path()) {
  read_header();
}

void TableReader::read_header() {
  if (!m_csv.next(m_cells)) {
    throw InputError(located(path(), 1, 1,
                             "the file is empty (expected a header row: the date column, then "
                             "the asset names)"));
  }
  m_header_line = m_csv.line();
  if (m_cells.size() < 2)
    throw InputError(located(path(), m_csv.line(), 2, "no asset columns in the header"));
  for (std::size_t c = 1; c < m_cells.size(); ++c) {
    // Trimmed of spaces and tabs, as the book's and the budgets' asset names are ("date, A, B").
    const std::string name(trimmed(m_cells[c]));
    const long column = static_cast<long>(c) + 1;
    if (name.empty())
      throw InputError(located(path(), m_csv.line(), column, "empty asset name in the header"));
    for (std::size_t k = 0; k < m_assets.size(); ++k) {
      if (m_assets[k] == name) {
        std::string message = "duplicate asset name ";
        message.append(quoted(name)).append(" (also column ").append(std::to_string(k + 2));
        message.append(")");
        throw InputError(located(path(), m_csv.line(), column, message));
      }
    }
    m_assets.push_back(name);
  }
  m_values.resize(static_cast<Eigen::Index>(m_assets.size()));
  m_missing.assign(m_assets.size(), 0);
}

std::string TableReader::error_at(long column, std::string_view message) const {
  std::string text(message);
  if (column >= 2 && static_cast<std::size_t>(column - 2) < m_assets.size()) {
    text.append(" (asset ").append(quoted(m_assets[static_cast<std::size_t>(column - 2)]));
    text.append(", date ").append(m_date).append(")");
  }
  return located(path(), m_csv.line(), column, text);
}

bool TableReader::next() {
  if (!m_csv.next(m_cells)) {
    if (m_rows == 0) {
      throw InputError(
          located(path(), m_csv.end_line(), 1, "no data rows after the header (header only)"));
    }
    return false;
  }
  ++m_rows;
  const std::size_t expected = m_assets.size() + 1;
  if (m_cells.size() != expected) {
    std::string message = "row has ";
    message.append(std::to_string(m_cells.size())).append(" cells, the header has ");
    message.append(std::to_string(expected));
    const std::size_t column = m_cells.size() > expected ? expected + 1 : m_cells.size() + 1;
    m_date.clear();
    throw InputError(located(path(), m_csv.line(), static_cast<long>(column), message));
  }
  m_date = trimmed(m_cells[0]);
  m_dates.check(m_date, m_csv.line());
  m_missing_count = 0;
  for (std::size_t c = 1; c < m_cells.size(); ++c)
    read_value(static_cast<Eigen::Index>(c - 1), m_cells[c]);
  return true;
}

void TableReader::read_value(Eigen::Index asset, const std::string& cell) {
  const long column = static_cast<long>(asset) + 2;
  const std::string_view text = trimmed(cell);
  if (text.empty()) {
    m_values(asset) = std::numeric_limits<double>::quiet_NaN();
    m_missing[static_cast<std::size_t>(asset)] = 1;
    ++m_missing_count;
    return;
  }
  m_missing[static_cast<std::size_t>(asset)] = 0;
  double value = 0.0;
  const std::errc error = parse_cell_double(text, value);
  if (error == std::errc::result_out_of_range)
    throw InputError(error_at(column, quoted(text).append(" is out of the range of a double")));
  if (error != std::errc())
    throw InputError(error_at(column, quoted(text).append(" is not a number")));
  if (!std::isfinite(value)) {
    throw InputError(
        error_at(column, quoted(text).append(" is not a finite number (leave the cell empty for a "
                                             "missing value)")));
  }
  if (m_rule == ValueRule::positive && !(value > 0.0))
    throw InputError(error_at(column, quoted(text).append(" is not a positive price")));
  if (m_rule == ValueRule::positive && !std::isnormal(value)) {
    throw InputError(error_at(column, quoted(text).append(kSubnormalPrice)));
  }
  if (m_rule == ValueRule::nonnegative && value < 0.0)
    throw InputError(error_at(column, quoted(text).append(" is a negative volume")));
  m_values(asset) = value;
}

MarketReader::MarketReader(const std::string& prices_path,
                           const std::optional<std::string>& volumes_path, MissingPolicy policy)
    : m_policy(policy), m_prices(prices_path, ValueRule::positive) {
  const auto n = static_cast<Eigen::Index>(m_prices.assets().size());
  m_price_bar.resize(n);
  m_last_price.setConstant(n, std::numeric_limits<double>::quiet_NaN());
  if (!volumes_path)
    return;
  m_volumes.emplace(*volumes_path, ValueRule::nonnegative);
  m_volume_bar.resize(n);
  const auto& names = m_volumes->assets();
  if (names.size() != m_prices.assets().size()) {
    std::string message = "the header has ";
    message.append(std::to_string(names.size())).append(" assets, ").append(prices_path);
    message.append(" has ").append(std::to_string(m_prices.assets().size()));
    throw InputError(located(m_volumes->path(), m_volumes->header_line(), 0, message));
  }
  for (std::size_t k = 0; k < names.size(); ++k) {
    if (names[k] != m_prices.assets()[k]) {
      std::string message = "asset ";
      message.append(quoted(names[k])).append(" differs from ");
      message.append(quoted(m_prices.assets()[k])).append(" in the same column of ");
      message.append(prices_path);
      throw InputError(
          located(m_volumes->path(), m_volumes->header_line(), static_cast<long>(k) + 2, message));
    }
  }
}

bool MarketReader::next_row() {
  const bool has_prices = m_prices.next();
  if (!m_volumes)
    return has_prices;
  TableReader& volumes = *m_volumes;
  if (!has_prices) {
    // Both end together, or the volumes have a row too many (next() reads it, or throws on it).
    if (volumes.next()) {
      std::string message = "date ";
      message.append(volumes.date()).append(" is not in ").append(m_prices.path());
      message.append(" (it ends on line ").append(std::to_string(m_prices.end_line() - 1));
      message.append(")");
      throw InputError(located(volumes.path(), volumes.line(), 1, message));
    }
    return false;
  }
  // A volumes file that ends early reports "header only" on its own when it has no rows at all.
  if (!volumes.next()) {
    std::string message = "no row for date ";
    message.append(m_prices.date()).append(" (").append(m_prices.path()).append(" line ");
    message.append(std::to_string(m_prices.line())).append(")");
    throw InputError(located(volumes.path(), volumes.end_line(), 1, message));
  }
  if (volumes.date() != m_prices.date()) {
    std::string message = "date ";
    message.append(volumes.date()).append(" differs from ").append(m_prices.date());
    message.append(" on line ").append(std::to_string(m_prices.line())).append(" of ");
    message.append(m_prices.path());
    throw InputError(located(volumes.path(), volumes.line(), 1, message));
  }
  return true;
}

void MarketReader::fail_missing(const TableReader& table) const {
  for (Eigen::Index i = 0; i < m_price_bar.size(); ++i) {
    if (table.missing(i)) {
      throw InputError(table.error_at(
          static_cast<long>(i) + 2,
          "empty cell (use --missing drop or --missing ffill to accept missing values)"));
    }
  }
  throw InputError(table.error_at(1, "empty cell"));  // unreachable: any_missing() was true
}

bool MarketReader::next() {
  while (next_row()) {
    const bool volume_gap = m_volumes && m_volumes->any_missing();
    switch (m_policy) {
      case MissingPolicy::error:
        if (m_prices.any_missing())
          fail_missing(m_prices);
        if (volume_gap)
          fail_missing(*m_volumes);
        break;
      case MissingPolicy::drop:
        if (m_prices.any_missing() || volume_gap)
          continue;
        break;
      case MissingPolicy::ffill:
        break;
    }
    if (m_policy == MissingPolicy::ffill) {
      bool complete = true;
      for (Eigen::Index i = 0; i < m_price_bar.size(); ++i) {
        if (!m_prices.missing(i))
          m_last_price(i) = m_prices.values()(i);
        complete = complete && !std::isnan(m_last_price(i));
      }
      if (!complete)
        continue;
      m_price_bar = m_last_price;
      if (m_volumes) {
        for (Eigen::Index i = 0; i < m_volume_bar.size(); ++i)
          m_volume_bar(i) = m_volumes->missing(i) ? 0.0 : m_volumes->values()(i);
      }
    } else {
      m_price_bar = m_prices.values();
      if (m_volumes)
        m_volume_bar = m_volumes->values();
    }
    ++m_bars;
    m_bar_line = m_prices.line();
    m_bar_volume_line = m_volumes ? m_volumes->line() : 0;
    m_bar_date = m_prices.date();
    return true;
  }
  if (m_bars == 0) {
    std::string message = m_prices.path();
    message.append(m_policy == MissingPolicy::ffill
                       ? ": no row after which every asset has had a price (--missing ffill)"
                       : ": no row with a price (and volume) for every asset (--missing drop)");
    throw InputError(message);
  }
  return false;
}

std::string MarketReader::error_on_bar(std::string_view message) const {
  constexpr std::string_view kPrefix = "dynweight: ";
  if (message.substr(0, kPrefix.size()) == kPrefix)
    message.remove_prefix(kPrefix.size());
  std::string text(message);
  text.append(" (date ").append(m_bar_date);
  if (m_volumes) {
    text.append(", volumes ").append(m_volumes->path()).append(":");
    text.append(std::to_string(m_bar_volume_line));
  }
  text.append(")");
  return located(m_prices.path(), m_bar_line, 0, text);
}

}  // namespace dynweight::cli
