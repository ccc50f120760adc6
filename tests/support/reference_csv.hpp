#pragma once

// Readers for the reference CSVs written by tests/reference/*.py (17 significant digits, "nan" for
// NaN): wide input tables and long-format statistics keyed by bar.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef DYNWEIGHT_REFERENCE_DIR
#error "DYNWEIGHT_REFERENCE_DIR must point to tests/reference/data"
#endif

namespace dynweight::test {

inline std::string reference_path(const std::string& relative) {
  // Appended in place: with the test target's precompiled header, g++ 12 reports a false
  // -Warray-bounds inside libstdc++ for `std::string(DIR) + "/" + relative`.
  std::string path = DYNWEIGHT_REFERENCE_DIR;
  path += '/';
  path += relative;
  return path;
}

inline double parse_number(const std::string& text) {
  if (text == "nan" || text == "NaN")
    return std::numeric_limits<double>::quiet_NaN();
  return std::stod(text);
}

inline std::vector<std::vector<std::string>> read_csv_rows(const std::string& path,
                                                           std::vector<std::string>* header) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("cannot open reference file " + path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    std::vector<std::string> cells;
    std::stringstream stream(line);
    std::string cell;
    while (std::getline(stream, cell, ','))
      cells.push_back(cell);
    if (first) {
      if (header)
        *header = cells;
      first = false;
      continue;
    }
    rows.push_back(std::move(cells));
  }
  return rows;
}

/// A wide table "bar,<names>": one row per bar.
struct WideTable {
  std::vector<std::string> names;
  Eigen::MatrixXd values;  // bars × assets
};

inline WideTable read_wide(const std::string& relative) {
  std::vector<std::string> header;
  const auto rows = read_csv_rows(reference_path(relative), &header);
  WideTable table;
  table.names.assign(header.begin() + 1, header.end());
  table.values.resize(static_cast<Index>(rows.size()), static_cast<Index>(table.names.size()));
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t c = 1; c < rows[r].size(); ++c) {
      table.values(static_cast<Index>(r), static_cast<Index>(c - 1)) = parse_number(rows[r][c]);
    }
  }
  return table;
}

/// Long format "bar,i,value": one vector per bar.
inline std::map<Index, Eigen::VectorXd> read_vector_series(const std::string& relative,
                                                           Index assets) {
  std::map<Index, Eigen::VectorXd> series;
  for (const auto& row : read_csv_rows(reference_path(relative), nullptr)) {
    const Index bar = std::stol(row.at(0));
    auto [it, inserted] = series.try_emplace(bar, Eigen::VectorXd::Constant(assets, 0.0));
    it->second(std::stol(row.at(1))) = parse_number(row.at(2));
  }
  return series;
}

/// Long format "bar,i,j,value": one matrix per bar.
inline std::map<Index, Eigen::MatrixXd> read_matrix_series(const std::string& relative,
                                                           Index assets) {
  std::map<Index, Eigen::MatrixXd> series;
  for (const auto& row : read_csv_rows(reference_path(relative), nullptr)) {
    const Index bar = std::stol(row.at(0));
    auto [it, inserted] = series.try_emplace(bar, Eigen::MatrixXd::Constant(assets, assets, 0.0));
    it->second(std::stol(row.at(1)), std::stol(row.at(2))) = parse_number(row.at(3));
  }
  return series;
}

}  // namespace dynweight::test

namespace dynweight::test {

/// A full square matrix "i,j,value" (every (i, j) present); the size is the largest index + 1.
inline Eigen::MatrixXd read_square_matrix(const std::string& relative) {
  const auto rows = read_csv_rows(reference_path(relative), nullptr);
  Index size = 0;
  for (const auto& row : rows)
    size = std::max<Index>(size, std::max(std::stol(row.at(0)), std::stol(row.at(1))) + 1);
  Eigen::MatrixXd matrix =
      Eigen::MatrixXd::Constant(size, size, std::numeric_limits<double>::quiet_NaN());
  for (const auto& row : rows)
    matrix(std::stol(row.at(0)), std::stol(row.at(1))) = parse_number(row.at(2));
  return matrix;
}

/// Rows of a table with a header, keyed by the concatenation of its first `key_columns` cells
/// joined with ','; the remaining cells parsed as numbers ("estimator,dataset,intensity,...").
inline std::map<std::string, std::vector<double>> read_keyed_rows(const std::string& relative,
                                                                  std::size_t key_columns) {
  std::map<std::string, std::vector<double>> table;
  for (const auto& row : read_csv_rows(reference_path(relative), nullptr)) {
    std::string key;
    for (std::size_t c = 0; c < key_columns; ++c)
      key += (c == 0 ? "" : ",") + row.at(c);
    std::vector<double> values;
    for (std::size_t c = key_columns; c < row.size(); ++c)
      values.push_back(parse_number(row[c]));
    table.emplace(key, std::move(values));
  }
  return table;
}

}  // namespace dynweight::test
