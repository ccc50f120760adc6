#pragma once

/// \file
/// A synthetic daily market for demos and tests (`dynweight sample`).

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

namespace dynweight::cli {

/// What `generate_sample_market` makes.
struct SampleOptions {
  Eigen::Index assets = 10;  ///< N >= 1
  Eigen::Index days = 500;   ///< T >= 2 price rows (business days)
  std::uint64_t seed = 1;
  std::string start_date = "2015-01-02";  ///< ISO date; a weekend rolls forward to Monday
  Eigen::Index late_start = 0;            ///< the last K assets (0 <= K < N) start trading late

  /// Throws `InputError` naming the option unless the values above hold, `assets × days` is at
  /// most 2·10⁷ cells, and the last business day is at most 9999-12-31 (the readers take
  /// four-digit years only).
  void validate() const;
};

/// T business days × N assets of prices and share volumes, NaN where an asset does not trade yet.
///
/// The model, one row per business day (Monday to Friday, no holidays):
/// - a two-state Markov regime, calm ↔ turbulent (switch probabilities 1% and 5% a day, so calm
///   spells last ~100 days and turbulent ones ~20);
/// - log return r_i = μ_i + m_f (β_i f_mkt + γ_i f_sector(i)) + m_e σ_i ε_i: one market factor
///   (0.8% a day) and up to four sector factors (0.5%), idiosyncratic noise σ_i in [1%, 2.2%];
///   in the turbulent regime factor volatility is ×2.5 and idiosyncratic ×1.6, so correlations rise
///   with volatility;
/// - every shock Student-t with ν = 4, scaled to unit variance and truncated at ±8;
/// - prices P_0 log-uniform in [10, 500], P_t = P_{t−1} exp(r_t);
/// - whole-share volumes: a base per asset (log-uniform 2e5..2e7) × lognormal noise (σ = 0.4)
///   × 1.8 in turbulence × (1 + 10 |r_i|).
/// Late starters: the j-th of the last K assets (j = 0..K−1) has no price or volume before row
/// ⌊(j + 1) T / (2K)⌋ (at least 1); apart from those empty cells the market is the one generated
/// without `late_start`.
///
/// Deterministic and portable: one xoshiro256** stream (`Random`) drawn in a fixed order; only
/// IEEE-exact arithmetic and `std::sqrt` (exact) plus `std::log` / `std::exp` (libm, faithfully
/// rounded everywhere, correctly rounded in glibc) touch the numbers.
struct SampleMarket {
  std::vector<std::string> dates;   ///< ISO dates, T of them
  std::vector<std::string> assets;  ///< "A001", "A002", ...
  Eigen::MatrixXd prices;           ///< T × N
  Eigen::MatrixXd volumes;          ///< T × N, whole shares
  std::vector<int> turbulent;       ///< T flags: 1 on turbulent days
};

SampleMarket generate_sample_market(const SampleOptions& options);

/// The CSV text of a T × N table of `market` (`date,<assets>` header, `{:.17g}` numbers, empty
/// cells for NaN).
std::string format_market_table(const SampleMarket& market, const Eigen::MatrixXd& table);

/// `count` business days (Monday..Friday) from `start` (an ISO date; a weekend rolls forward).
std::vector<std::string> business_days(const std::string& start, Eigen::Index count);

}  // namespace dynweight::cli
