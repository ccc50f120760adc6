#include "dynweight/book_reader.hpp"

#include <cmath>
#include <limits>
#include <map>
#include <system_error>

#include "dynweight/csv_reader.hpp"
#include "dynweight/errors.hpp"
#include "dynweight/market_reader.hpp"

namespace dynweight::cli {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

[[noreturn]] void fail(const std::string& path, Location where, std::string_view message) {
  throw InputError(located(path, where.line, where.column, message));
}

// Asset names seen so far, with the line (or column) where each was first seen.
class NameRegistry {
 public:
  NameRegistry(const std::string& path, const char* also) : m_path(path), m_also(also) {}

  // Checks `cell` (trimmed: non-empty, not seen before) and returns it.
  std::string add(std::string_view cell, Location where, long first_seen_at) {
    const std::string name(trimmed(cell));
    if (name.empty())
      fail(m_path, where, "empty asset name");
    const auto [found, inserted] = m_seen.emplace(name, first_seen_at);
    if (!inserted) {
      std::string message = "duplicate asset ";
      message.append(quoted(name)).append(" (also ").append(m_also).append(" ");
      message.append(std::to_string(found->second)).append(")");
      fail(m_path, where, message);
    }
    return name;
  }

 private:
  const std::string& m_path;
  const char* m_also;
  std::map<std::string, long, std::less<>> m_seen;
};

void check_cell_count(const CsvReader& csv, std::size_t cells, std::size_t expected) {
  if (cells == expected)
    return;
  std::string message = "row has ";
  message.append(std::to_string(cells)).append(" cells, the header has ");
  message.append(std::to_string(expected));
  const std::size_t column = cells > expected ? expected + 1 : cells + 1;
  fail(csv.path(), {csv.line(), static_cast<long>(column)}, message);
}

std::string cash_is_implied(std::string_view where) {
  std::string message(where);
  message.append(" ").append(kCashAsset);
  message.append(": the cash weight is implied (1 - the sum of the weights); leave it out");
  return message;
}

}  // namespace

double parse_cell_number(std::string_view cell, const std::string& path, Location where,
                         std::string_view what) {
  const std::string_view text = trimmed(cell);
  const auto describe = [&](std::string_view problem) {
    std::string message = quoted(text);
    message.append(problem).append(" (").append(what).append(")");
    return message;
  };
  if (text.empty())
    fail(path, where, describe(" is not a number: the cell is empty"));
  double value = 0.0;
  const std::errc error = parse_cell_double(text, value);
  if (error == std::errc::result_out_of_range)
    fail(path, where, describe(" is out of the range of a double"));
  if (error != std::errc())
    fail(path, where, describe(" is not a number"));
  if (!std::isfinite(value))
    fail(path, where, describe(" is not a finite number"));
  return value;
}

Book read_book(const std::string& path) {
  CsvReader csv(path);
  std::vector<std::string> cells;
  if (!csv.next(cells))
    fail(path, {1, 1}, "the file is empty (expected a header row asset,shares,price)");

  // Header: `asset` first, then the known columns by name.
  const long header_line = csv.line();
  if (trimmed(cells[0]) != "asset") {
    fail(path, {header_line, 1},
         quoted(trimmed(cells[0])) +
             " is not 'asset' (the header is asset,shares,price"
             "[,lot_size][,adv], the last three in any order)");
  }
  long shares_column = 0;
  long price_column = 0;
  Book book;
  book.path = path;
  for (std::size_t c = 1; c < cells.size(); ++c) {
    const std::string_view name = trimmed(cells[c]);
    const long column = static_cast<long>(c) + 1;
    long* slot = name == "shares"     ? &shares_column
                 : name == "price"    ? &price_column
                 : name == "lot_size" ? &book.lot_size_column
                 : name == "adv"      ? &book.adv_column
                                      : nullptr;
    if (slot == nullptr) {
      fail(
          path, {header_line, column},
          "unknown column " + quoted(name) + " (the columns: asset, shares, price, lot_size, adv)");
    }
    if (*slot != 0) {
      fail(path, {header_line, column},
           "duplicate column " + quoted(name) + " (also column " + std::to_string(*slot) + ")");
    }
    *slot = column;
  }
  for (const auto& [column, name] : {std::pair{shares_column, "shares"}, {price_column, "price"}}) {
    if (column == 0)
      fail(path, {header_line, 0}, std::string("the header has no '") + name + "' column");
  }

  const std::size_t columns = cells.size();
  std::vector<double> shares, prices, lots, adv;
  long cash_line = 0;
  NameRegistry registry(path, "line");
  const auto number = [&](long column, std::string_view what) {
    return parse_cell_number(cells[static_cast<std::size_t>(column - 1)], path,
                             {csv.line(), column}, what);
  };
  const auto empty = [&](long column) {
    return column == 0 || trimmed(cells[static_cast<std::size_t>(column - 1)]).empty();
  };
  while (csv.next(cells)) {
    check_cell_count(csv, cells.size(), columns);
    const long line = csv.line();
    const std::string name = registry.add(cells[0], {line, 1}, line);
    const std::string what_prefix = "asset " + quoted(name) + ", ";
    if (name == kCashAsset) {
      cash_line = line;
      book.cash = number(shares_column, what_prefix + "the cash amount");
      if (!empty(price_column) && number(price_column, what_prefix + "price") != 1.0)
        fail(path, {line, price_column}, "the CASH row's price must be 1 or empty");
      for (const long column : {book.lot_size_column, book.adv_column}) {
        if (!empty(column))
          fail(path, {line, column}, "the CASH row has no lot size or adv: leave the cell empty");
      }
      continue;
    }
    book.assets.push_back(name);
    book.lines.push_back(line);
    shares.push_back(number(shares_column, what_prefix + "shares"));
    const double price = number(price_column, what_prefix + "price");
    if (!(price > 0.0) || !std::isnormal(price)) {
      const std::string text = quoted(trimmed(cells[static_cast<std::size_t>(price_column - 1)]));
      const std::string problem(price > 0.0 ? kSubnormalPrice
                                            : std::string_view(" is not a positive price"));
      fail(path, {line, price_column},
           text + problem + " (" + what_prefix.substr(0, what_prefix.size() - 2) + ")");
    }
    prices.push_back(price);
    double lot = kNaN;
    if (!empty(book.lot_size_column)) {
      lot = number(book.lot_size_column, what_prefix + "lot size");
      if (!(lot > 0.0)) {
        fail(path, {line, book.lot_size_column},
             "lot size " +
                 quoted(trimmed(cells[static_cast<std::size_t>(book.lot_size_column - 1)])) +
                 " is not > 0 (asset " + quoted(name) + ")");
      }
    }
    lots.push_back(lot);
    double volume = kNaN;
    if (!empty(book.adv_column)) {
      volume = number(book.adv_column, what_prefix + "adv");
      if (volume < 0.0)
        fail(path, {line, book.adv_column}, "negative adv (asset " + quoted(name) + ")");
    }
    adv.push_back(volume);
  }
  if (book.assets.empty()) {
    fail(path, {csv.end_line(), 1},
         "no asset rows (one row per asset, plus a CASH row for the cash)");
  }
  if (cash_line == 0) {
    throw InputError(
        path +
        ": no CASH row (add a row CASH,<amount>,1: the cash amount in the shares column, 0 for "
        "none)");
  }
  const auto to_vector = [](const std::vector<double>& values) {
    return Eigen::VectorXd(
        Eigen::Map<const Eigen::VectorXd>(values.data(), static_cast<Eigen::Index>(values.size())));
  };
  book.shares = to_vector(shares);
  book.prices = to_vector(prices);
  book.lot_sizes = to_vector(lots);
  book.adv = to_vector(adv);
  return book;
}

Targets read_targets(const std::string& path) {
  CsvReader csv(path);
  std::vector<std::string> cells;
  if (!csv.next(cells)) {
    fail(path, {1, 1},
         "the file is empty (expected a header asset,weight, or date,<names> as `dynweight "
         "weights` writes)");
  }
  Targets targets;
  targets.path = path;
  const long header_line = csv.line();
  std::vector<double> weights;

  if (trimmed(cells[0]) == "asset") {
    if (cells.size() != 2 || trimmed(cells[1]) != "weight") {
      const long column = cells.size() > 2 && trimmed(cells[1]) == "weight" ? 3 : 2;
      fail(path, {header_line, column}, "a header starting with 'asset' must be asset,weight");
    }
    NameRegistry registry(path, "line");
    while (csv.next(cells)) {
      check_cell_count(csv, cells.size(), 2);
      const long line = csv.line();
      const std::string name = registry.add(cells[0], {line, 1}, line);
      if (name == kCashAsset)
        fail(path, {line, 1}, cash_is_implied("a target for"));
      targets.assets.push_back(name);
      targets.names.push_back({line, 1});
      targets.cells.push_back({line, 2});
      weights.push_back(parse_cell_number(cells[1], path, {line, 2}, "weight of " + quoted(name)));
    }
    if (targets.assets.empty())
      fail(path, {csv.end_line(), 1}, "no data rows after the header (header only)");
  } else {
    targets.wide = true;
    if (cells.size() < 2)
      fail(path, {header_line, 2}, "no asset columns in the header");
    NameRegistry registry(path, "column");
    for (std::size_t c = 1; c < cells.size(); ++c) {
      const long column = static_cast<long>(c) + 1;
      const std::string name = registry.add(cells[c], {header_line, column}, column);
      if (name == kCashAsset)
        fail(path, {header_line, column}, cash_is_implied("a column"));
      targets.assets.push_back(name);
      targets.names.push_back({header_line, column});
    }
    const std::size_t columns = cells.size();
    weights.resize(targets.assets.size());
    targets.cells.resize(targets.assets.size());
    // The last row is used, so the dates are checked as a price file's are: unsorted, the last
    // row would silently be an older date's.
    DateColumn dates(path);
    long rows = 0;
    while (csv.next(cells)) {
      check_cell_count(csv, cells.size(), columns);
      const long line = csv.line();
      targets.date = trimmed(cells[0]);
      dates.check(targets.date, line);
      for (std::size_t k = 0; k < targets.assets.size(); ++k) {
        const long column = static_cast<long>(k) + 2;
        weights[k] =
            parse_cell_number(cells[k + 1], path, {line, column},
                              "weight of " + quoted(targets.assets[k]) + ", date " + targets.date);
        targets.cells[k] = {line, column};
      }
      ++rows;
    }
    if (rows == 0)
      fail(path, {csv.end_line(), 1}, "no data rows after the header (header only)");
  }
  targets.weights =
      Eigen::Map<const Eigen::VectorXd>(weights.data(), static_cast<Eigen::Index>(weights.size()));
  return targets;
}

}  // namespace dynweight::cli
