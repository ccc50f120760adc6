#include "dynweight/market_sample.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "dynweight/errors.hpp"
#include "dynweight/output.hpp"
#include "dynweight/random.hpp"

namespace dynweight::cli {

namespace {

using Index = Eigen::Index;

constexpr double kCalmToTurbulent = 0.01;
constexpr double kTurbulentToCalm = 0.05;
constexpr double kMarketVol = 0.008;
constexpr double kSectorVol = 0.005;
constexpr double kTurbulentFactorScale = 2.5;
constexpr double kTurbulentIdioScale = 1.6;
constexpr int kStudentDof = 4;
constexpr double kShockCap = 8.0;
constexpr double kVolumeNoise = 0.4;
constexpr double kTurbulentVolumeScale = 1.8;
constexpr double kVolumePerAbsReturn = 10.0;
constexpr Index kMaxSectors = 4;
// Prices and volumes of at most this many cells (a bound on the memory `sample` takes).
constexpr Index kMaxCells = 20'000'000;

double shock(Random& random) {
  return std::clamp(random.student_t(kStudentDof), -kShockCap, kShockCap);
}

std::chrono::year_month_day parse_date(const std::string& text) {
  const auto bad = [&text]() {
    std::string message = "--start-date: '";
    message.append(text).append("' is not an ISO 8601 date (YYYY-MM-DD)");
    return InputError(message);
  };
  if (text.size() != 10 || text[4] != '-' || text[7] != '-')
    throw bad();
  int parts[3] = {0, 0, 0};
  const std::size_t starts[3] = {0, 5, 8};
  const std::size_t lengths[3] = {4, 2, 2};
  for (int p = 0; p < 3; ++p) {
    for (std::size_t k = 0; k < lengths[p]; ++k) {
      const char c = text[starts[p] + k];
      if (c < '0' || c > '9')
        throw bad();
      parts[p] = parts[p] * 10 + (c - '0');
    }
  }
  const std::chrono::year_month_day date{std::chrono::year(parts[0]),
                                         std::chrono::month(static_cast<unsigned>(parts[1])),
                                         std::chrono::day(static_cast<unsigned>(parts[2]))};
  if (!date.ok())
    throw bad();
  return date;
}

// Business days (Monday..Friday) from `start` (a weekend rolling forward) to 9999-12-31, the last
// date a four-digit year can write, both included.
Index business_days_left(std::chrono::year_month_day start) {
  using namespace std::chrono;
  constexpr sys_days kLastDate{year{9999} / December / 31};
  sys_days day{start};
  Index count = 0;
  // Whole weeks hold five business days each; the remaining days are counted one by one.
  const Index weeks = (kLastDate - day).count() / 7;
  count += 5 * weeks;
  day += days{7 * weeks};
  for (; day <= kLastDate; day += days{1}) {
    const weekday w{day};
    if (w != Saturday && w != Sunday)
      ++count;
  }
  return count;
}

}  // namespace

void SampleOptions::validate() const {
  if (assets < 1)
    throw InputError("--assets must be at least 1");
  if (days < 2)
    throw InputError("--days must be at least 2 (one return needs two prices)");
  if (late_start < 0 || late_start >= assets)
    throw InputError("--late-start must be in [0, --assets)");
  if (assets > kMaxCells / days) {
    throw InputError(fmt::format(
        "--assets {} x --days {} is too large a sample: at most {} cells (prices and volumes), "
        "about 1 GB of memory at that size",
        assets, days, kMaxCells));
  }
  const std::chrono::year_month_day start = parse_date(start_date);
  const Index left = business_days_left(start);
  if (days > left) {
    throw InputError(fmt::format(
        "--days {}: {} business days from {} run past 9999-12-31, the last date the readers "
        "accept (at most {} business day{} from {})",
        days, days, start_date, left, left == 1 ? "" : "s", start_date));
  }
}

std::vector<std::string> business_days(const std::string& start, Index count) {
  using namespace std::chrono;
  sys_days day{parse_date(start)};
  std::vector<std::string> dates;
  dates.reserve(static_cast<std::size_t>(count));
  while (static_cast<Index>(dates.size()) < count) {
    const weekday w{day};
    if (w != Saturday && w != Sunday) {
      const year_month_day ymd{day};
      dates.push_back(fmt::format("{:04d}-{:02d}-{:02d}", static_cast<int>(ymd.year()),
                                  static_cast<unsigned>(ymd.month()),
                                  static_cast<unsigned>(ymd.day())));
    }
    day += days{1};
  }
  return dates;
}

SampleMarket generate_sample_market(const SampleOptions& options) {
  options.validate();
  const Index n = options.assets;
  const Index t_max = options.days;
  const Index sectors = std::clamp<Index>(n / 5, 1, kMaxSectors);
  Random random(options.seed);

  SampleMarket market;
  market.dates = business_days(options.start_date, t_max);
  const int width = std::max(3, static_cast<int>(std::to_string(n).size()));
  for (Index i = 0; i < n; ++i)
    market.assets.push_back(fmt::format("A{:0{}d}", i + 1, width));

  Eigen::VectorXd price(n), beta(n), loading(n), idio_vol(n), drift(n), base_volume(n);
  for (Index i = 0; i < n; ++i) {
    price(i) = random.log_uniform(10.0, 500.0);
    beta(i) = random.uniform(0.6, 1.4);
    loading(i) = random.uniform(0.5, 1.0);
    idio_vol(i) = random.uniform(0.010, 0.022);
    drift(i) = random.uniform(0.0, 0.0004);
    base_volume(i) = random.log_uniform(2e5, 2e7);
  }

  market.prices.resize(t_max, n);
  market.volumes.resize(t_max, n);
  market.turbulent.assign(static_cast<std::size_t>(t_max), 0);
  Eigen::VectorXd sector_factor(sectors);
  Eigen::VectorXd log_return = Eigen::VectorXd::Zero(n);
  bool turbulent = false;
  for (Index t = 0; t < t_max; ++t) {
    if (t > 0) {
      const double u = random.uniform();
      turbulent = turbulent ? !(u < kTurbulentToCalm) : u < kCalmToTurbulent;
      const double factor_scale = turbulent ? kTurbulentFactorScale : 1.0;
      const double idio_scale = turbulent ? kTurbulentIdioScale : 1.0;
      const double market_factor = kMarketVol * shock(random);
      for (Index s = 0; s < sectors; ++s)
        sector_factor(s) = kSectorVol * shock(random);
      for (Index i = 0; i < n; ++i) {
        const double common = beta(i) * market_factor + loading(i) * sector_factor(i % sectors);
        log_return(i) = drift(i) + factor_scale * common + idio_scale * idio_vol(i) * shock(random);
        price(i) *= std::exp(log_return(i));
      }
    }
    market.turbulent[static_cast<std::size_t>(t)] = turbulent ? 1 : 0;
    for (Index i = 0; i < n; ++i) {
      const double noise = std::exp(kVolumeNoise * random.normal());
      const double activity = (turbulent ? kTurbulentVolumeScale : 1.0) *
                              (1.0 + kVolumePerAbsReturn * std::abs(log_return(i)));
      market.prices(t, i) = price(i);
      market.volumes(t, i) = std::round(base_volume(i) * noise * activity);
    }
  }

  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Index k = options.late_start;
  for (Index j = 0; j < k; ++j) {
    const Index asset = n - k + j;
    const Index first_row = std::max<Index>(1, (j + 1) * t_max / (2 * k));
    market.prices.col(asset).head(first_row).setConstant(nan);
    market.volumes.col(asset).head(first_row).setConstant(nan);
  }
  return market;
}

std::string format_market_table(const SampleMarket& market, const Eigen::MatrixXd& table) {
  fmt::memory_buffer out;
  out.append(std::string_view("date"));
  for (const auto& name : market.assets) {
    out.push_back(',');
    append_cell(out, name);
  }
  out.push_back('\n');
  for (Index t = 0; t < table.rows(); ++t) {
    out.append(market.dates[static_cast<std::size_t>(t)]);
    for (Index i = 0; i < table.cols(); ++i) {
      out.push_back(',');
      if (!std::isnan(table(t, i)))
        append_number(out, table(t, i));
    }
    out.push_back('\n');
  }
  return fmt::to_string(out);
}

}  // namespace dynweight::cli
