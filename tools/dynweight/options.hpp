#pragma once

/// \file
/// Option groups shared by the subcommands that read a market (stats now; weights, backtest).

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "dynweight/core/types.hpp"
#include "dynweight/market_reader.hpp"
#include "dynweight/stats/returns.hpp"

namespace dynweight::cli {

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
  std::string returns = "simple";

  [[nodiscard]] bool rolling() const { return window > 0; }
  [[nodiscard]] ReturnKind return_kind() const;
  /// Throws `InputError` unless exactly one of --window and --halflife was given.
  void validate() const;
};

void add_estimator_options(CLI::App& app, EstimatorOptions& options);

/// A value given as `X` or `X%` (then X / 100, and `percent` is set).
struct Amount {
  double value = 0.0;
  bool percent = false;
};

/// Parses `X` or `X%` (finite, >= 0); throws `InputError` naming `option` otherwise.
Amount parse_amount(std::string_view option, std::string_view text);

}  // namespace dynweight::cli
