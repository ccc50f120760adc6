// The examples' market data: the files `dynweight sample` writes, read into memory.
//
//   dynweight sample --assets 300 --days 1500 --seed 7 --out sample
//
// writes sample/prices.csv and sample/volumes.csv: a header `date,A001,...`, then one row per
// business day, every cell a number. This reader takes exactly that shape (complete rows, no gaps:
// leave `--late-start` at 0) and throws on anything else, naming file, line and column. It is a
// few lines for the examples, not a general CSV reader: for real files with missing values, a BOM
// or CRLF, the `dynweight` tool's readers handle them (see README, "Command-line tool").

#pragma once

#include <Eigen/Core>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace examples {

struct SampleTable {
  std::vector<std::string> dates;
  std::vector<std::string> names;
  Eigen::MatrixXd values;  // one row per date, one column per asset
};

struct SampleMarket {
  std::vector<std::string> dates;
  std::vector<std::string> names;
  Eigen::MatrixXd prices;   // dates × assets
  Eigen::MatrixXd volumes;  // shares traded, dates × assets
};

namespace detail {

[[noreturn]] inline void fail(const std::filesystem::path& file, std::size_t line,
                              std::size_t column, const std::string& what) {
  throw std::runtime_error(file.string() + ":" + std::to_string(line) + ":" +
                           std::to_string(column) + ": " + what);
}

// The comma-separated cells of one line, with the 1-based column each starts at.
inline std::vector<std::pair<std::string_view, std::size_t>> cells(std::string_view line) {
  std::vector<std::pair<std::string_view, std::size_t>> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = line.find(',', start);
    out.emplace_back(line.substr(start, comma - start), start + 1);
    if (comma == std::string_view::npos)
      return out;
    start = comma + 1;
  }
}

}  // namespace detail

/// Reads one file `dynweight sample` wrote (prices.csv or volumes.csv).
inline SampleTable read_sample_table(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in)
    throw std::runtime_error(file.string() + ": cannot open (write it with `dynweight sample`)");
  SampleTable table;
  std::string line;
  if (!std::getline(in, line))
    detail::fail(file, 1, 1, "empty file: expected a header `date,<asset>,...`");
  const auto header = detail::cells(line);
  if (header.size() < 2 || header.front().first != "date")
    detail::fail(file, 1, 1, "expected a header `date,<asset>,...`");
  for (std::size_t k = 1; k < header.size(); ++k)
    table.names.emplace_back(header[k].first);

  std::vector<double> values;
  for (std::size_t number = 2; std::getline(in, line); ++number) {
    const auto row = detail::cells(line);
    if (row.size() != header.size())
      detail::fail(file, number, 1,
                   "expected " + std::to_string(header.size()) + " cells, found " +
                       std::to_string(row.size()));
    table.dates.emplace_back(row.front().first);
    for (std::size_t k = 1; k < row.size(); ++k) {
      const auto [text, column] = row[k];
      double value = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
        detail::fail(
            file, number, column,
            "not a finite number: '" + std::string(text) + "' (" + table.names[k - 1] + ")");
      values.push_back(value);
    }
  }
  if (table.dates.empty())
    detail::fail(file, 2, 1, "no rows after the header");
  const auto rows = static_cast<Eigen::Index>(table.dates.size());
  const auto cols = static_cast<Eigen::Index>(table.names.size());
  table.values =
      Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
          values.data(), rows, cols);
  return table;
}

/// Reads DIR/prices.csv and DIR/volumes.csv, which must cover the same dates and assets.
inline SampleMarket read_sample_market(const std::filesystem::path& dir) {
  SampleTable prices = read_sample_table(dir / "prices.csv");
  SampleTable volumes = read_sample_table(dir / "volumes.csv");
  if (prices.dates != volumes.dates || prices.names != volumes.names)
    throw std::runtime_error((dir / "volumes.csv").string() +
                             ": dates or assets differ from prices.csv");
  return {std::move(prices.dates), std::move(prices.names), std::move(prices.values),
          std::move(volumes.values)};
}

/// The examples' main: reads the sample directory named by the one argument and runs `body` on
/// it. A missing argument prints the usage (with the `dynweight sample` command that writes the
/// data, `sample_options` being its options) and gives exit status 2; an error in the data or in
/// the example prints what and where, and gives 1.
template <class Body>
int run_on_sample(int argc, char** argv, std::string_view sample_options, Body&& body) {
  if (argc != 2) {
    std::cerr << "usage: " << (argc > 0 ? argv[0] : "example")
              << " SAMPLE_DIR\n  SAMPLE_DIR written by: dynweight sample " << sample_options
              << " --out SAMPLE_DIR\n";
    return 2;
  }
  try {
    body(read_sample_market(argv[1]));
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << '\n';
    return 1;
  }
}

}  // namespace examples
