#pragma once

/// \file
/// The inputs of `dynweight rebalance`: the book (holdings, prices, cash, lot sizes, ADV) and the
/// target weights, read and checked with file, line and column in every message.

#include <Eigen/Core>
#include <string>
#include <string_view>
#include <vector>

namespace dynweight::cli {

/// The asset name of the book row that holds the cash (its `shares` cell is the amount).
inline constexpr std::string_view kCashAsset = "CASH";

/// A place in a file, for messages ("file:line:column").
struct Location {
  long line = 0;
  long column = 0;
};

/// A book: a header row `asset,shares,price[,lot_size][,adv]` (`asset` first, the other columns
/// by name in any order; each once, no other column), one row per asset, and one `CASH` row whose
/// `shares` cell is the cash amount (any finite number), whose `price` cell is empty or 1 and whose
/// `lot_size` and `adv` cells are empty. Asset names are trimmed of spaces and tabs, non-empty and
/// unique. `shares`: finite; `price`: finite, > 0 and not subnormal; `lot_size`: empty (the
/// `--lot-size` default) or finite and > 0; `adv` (average daily volume, shares): empty or finite
/// and >= 0. Every violation throws `InputError` "file:line:column: message".
struct Book {
  std::string path;
  std::vector<std::string> assets;  ///< in file order, CASH excluded
  std::vector<long> lines;          ///< the line of each asset's row
  Eigen::VectorXd shares;
  Eigen::VectorXd prices;
  Eigen::VectorXd lot_sizes;  ///< NaN where the cell is empty or there is no lot_size column
  Eigen::VectorXd adv;        ///< NaN where the cell is empty or there is no adv column
  long lot_size_column = 0;   ///< 1-based; 0: no such column
  long adv_column = 0;        ///< 1-based; 0: no such column
  double cash = 0.0;
};

Book read_book(const std::string& path);

/// Target weights, in one of two layouts, told apart by the first header cell:
/// - long: a header `asset,weight`, then one row per asset;
/// - wide (what `dynweight weights` writes): a header `date,<names>` (the first cell any name but
///   `asset`, possibly empty), one row per date, the dates checked as a price file's
///   (`DateColumn`: ISO 8601, one format, strictly increasing); the last row, the latest date, is
///   used, every row is checked.
/// Weights are finite numbers (the sign is checked by the caller); names as in `Book`. The cash
/// weight is implied, 1 − Σ weights: a `CASH` target is an error.
struct Targets {
  std::string path;
  bool wide = false;
  std::string date;                 ///< wide: the date of the row used
  std::vector<std::string> assets;  ///< in file order
  std::vector<Location> names;      ///< where each asset's name is
  std::vector<Location> cells;      ///< where each asset's weight is
  Eigen::VectorXd weights;
};

Targets read_targets(const std::string& path);

/// Parses a whole cell as a double (spaces and tabs around it and a leading '+' allowed); throws
/// `InputError` "file:line:column: 'text' is not a number (what)" unless it is a finite number.
double parse_cell_number(std::string_view cell, const std::string& path, Location where,
                         std::string_view what);

}  // namespace dynweight::cli
