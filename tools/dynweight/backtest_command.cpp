// `dynweight backtest`: a price file streamed once through `DynamicWeighter` (rolling or EWMA
// estimates; calendar, drift and volatility-regime triggers; trades executed at each bar's close),
// writing the book's weights, the trades, the equity curve, a summary and an SVG chart into a
// directory.

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "dynweight/any_policy.hpp"
#include "dynweight/commands.hpp"
#include "dynweight/errors.hpp"
#include "dynweight/market_reader.hpp"
#include "dynweight/options.hpp"
#include "dynweight/output.hpp"
#include "dynweight/pipeline/dynamic_weighter.hpp"
#include "dynweight/policy_options.hpp"
#include "dynweight/stats/ewma_decay.hpp"
#include "dynweight/stats/ewma_moments.hpp"

namespace dynweight::cli {

namespace {

namespace fs = std::filesystem;

struct BacktestArguments {
  MarketInputOptions input;
  EstimatorOptions estimator;
  PolicyArguments policy;
  Index every = 0;
  double drift_band = 0.0;
  std::string regime;  // "UPPER,LOWER"
  double regime_upper = 0.0;
  double regime_lower = 0.0;
  std::string regime_halflives;  // "SHORT,LONG"
  TradingOptions trading;
  std::string max_participation;
  std::string out;
};

// "X,Y" as two finite numbers.
std::array<double, 2> parse_pair(std::string_view option, const std::string& text) {
  std::array<double, 2> values{};
  const std::size_t comma = text.find(',');
  bool ok = comma != std::string::npos;
  for (std::size_t k = 0; ok && k < 2; ++k) {
    const char* first = text.data() + (k == 0 ? 0 : comma + 1);
    const char* last = k == 0 ? text.data() + comma : text.data() + text.size();
    const auto [end, error] = std::from_chars(first, last, values[k]);
    ok = first != last && error == std::errc() && end == last && std::isfinite(values[k]);
  }
  if (!ok)
    throw InputError(fmt::format("{}: '{}' is not two numbers X,Y", option, text));
  return values;
}

DynamicWeighterOptions weighter_options(const BacktestArguments& arguments, const CLI::App& app,
                                        const PolicySetup& setup) {
  const auto given = [&app](const char* option) { return app.count(option) > 0; };
  DynamicWeighterOptions options;
  if (arguments.estimator.rolling()) {
    options.moments.window = arguments.estimator.window;
  } else {
    // The weighter's ADV (with --volumes) takes the same decay.
    options.ewma = EwmaOptions{.decay = EwmaDecay::from_halflife(arguments.estimator.halflife),
                               .min_periods = arguments.estimator.min_periods};
  }
  options.returns = arguments.estimator.return_kind();
  if (setup.shrink && setup.method)
    options.shrinkage = *setup.method;
  options.volumes = given("--volumes");
  options.every = arguments.every;
  require(std::isfinite(arguments.drift_band) && arguments.drift_band >= 0.0,
          fmt::format("--drift-band: {} must be finite and >= 0", arguments.drift_band));
  options.drift_band = arguments.drift_band;

  RegimeOptions& regime = options.regime;
  regime.enabled = given("--regime") || given("--regime-upper") || given("--regime-lower");
  require(regime.enabled || !given("--regime-halflives"),
          "--regime-halflives is read by the regime trigger only (--regime or --regime-upper)");
  if (given("--regime")) {
    const auto [upper, lower] = parse_pair("--regime", arguments.regime);
    regime.upper = upper;
    regime.lower = lower;
  }
  if (given("--regime-upper"))
    regime.upper = arguments.regime_upper;
  if (given("--regime-lower"))
    regime.lower = arguments.regime_lower;
  if (given("--regime-halflives")) {
    const auto [short_halflife, long_halflife] =
        parse_pair("--regime-halflives", arguments.regime_halflives);
    regime.short_halflife = short_halflife;
    regime.long_halflife = long_halflife;
  }
  if (regime.enabled) {
    require(regime.lower > 0.0 && regime.upper > regime.lower,
            fmt::format("--regime: the thresholds must satisfy 0 < lower < upper (upper {}, "
                        "lower {})",
                        regime.upper, regime.lower));
    require(regime.short_halflife > 0.0 && regime.long_halflife > regime.short_halflife,
            fmt::format("--regime-halflives: must satisfy 0 < short < long (short {}, long {})",
                        regime.short_halflife, regime.long_halflife));
  }
  arguments.trading.apply(options.rebalance);
  if (given("--max-participation")) {
    options.rebalance.max_participation = parse_max_participation(arguments.max_participation);
    require(options.volumes,
            "--max-participation needs --volumes (the cap is a fraction of each asset's average "
            "volume over the window or half-life, read from the volume file)");
  }
  options.initial_cash = arguments.policy.capital;
  options.execute_trades = true;
  return options;
}

// Keeps at most 2 x `limit` evenly spaced rows of (index, weights) of a stream of unknown
// length: every `stride`-th row, the stride doubling (and every other kept row dropped) whenever
// the buffer fills; the last row is kept apart.
class Downsampler {
 public:
  Downsampler(Index columns, std::size_t limit) : m_columns(columns), m_limit(limit) {}

  void add(std::size_t index, const Eigen::VectorXd& row) {
    m_last_index = index;
    m_last = row;
    if (index % m_stride != 0)
      return;
    if (m_indices.size() == 2 * m_limit) {
      std::size_t kept = 0;
      for (std::size_t k = 0; k < m_indices.size(); k += 2, ++kept) {
        m_indices[kept] = m_indices[k];
        m_rows.col(static_cast<Index>(kept)) = m_rows.col(static_cast<Index>(k));
      }
      m_indices.resize(kept);
      m_stride *= 2;
      if (index % m_stride != 0)
        return;
    }
    if (m_rows.cols() <= static_cast<Index>(m_indices.size()))
      m_rows.conservativeResize(m_columns, static_cast<Index>(2 * m_limit));
    m_rows.col(static_cast<Index>(m_indices.size())) = row;
    m_indices.push_back(index);
  }

  // The kept indices and rows, the last row appended when it was not kept.
  [[nodiscard]] std::vector<std::pair<std::size_t, Eigen::VectorXd>> samples() const {
    std::vector<std::pair<std::size_t, Eigen::VectorXd>> out;
    for (std::size_t k = 0; k < m_indices.size(); ++k)
      out.emplace_back(m_indices[k], m_rows.col(static_cast<Index>(k)));
    if (!m_indices.empty() && m_indices.back() != m_last_index)
      out.emplace_back(m_last_index, m_last);
    return out;
  }

 private:
  Index m_columns;
  std::size_t m_limit;
  std::size_t m_stride = 1;
  std::vector<std::size_t> m_indices;
  Eigen::MatrixXd m_rows;
  std::size_t m_last_index = 0;
  Eigen::VectorXd m_last;
};

// Statistics of an equity curve V_0..V_{T-1} (the rows of equity.csv): r_t = V_t / V_{t-1} - 1;
// CAGR = (V_{T-1} / V_0)^(A / (T - 1)) - 1; volatility = std(r, ddof 1) sqrt(A); Sharpe =
// mean(r) / std(r) sqrt(A) (risk-free rate 0); max drawdown = max_t 1 - V_t / max_{s<=t} V_s.
struct CurveStatistics {
  double cagr = std::numeric_limits<double>::quiet_NaN();
  double volatility = std::numeric_limits<double>::quiet_NaN();
  double sharpe = std::numeric_limits<double>::quiet_NaN();
  double max_drawdown = 0.0;
};

CurveStatistics curve_statistics(const std::vector<double>& values, double annualization) {
  CurveStatistics stats;
  const std::size_t count = values.size();
  double peak = values.front();
  for (const double value : values) {
    peak = std::max(peak, value);
    stats.max_drawdown = std::max(stats.max_drawdown, 1.0 - value / peak);
  }
  if (count < 2)
    return stats;
  const auto periods = static_cast<double>(count - 1);
  stats.cagr = std::pow(values.back() / values.front(), annualization / periods) - 1.0;
  if (count < 3)
    return stats;
  double mean = 0.0;
  for (std::size_t t = 1; t < count; ++t)
    mean += values[t] / values[t - 1] - 1.0;
  mean /= periods;
  double squares = 0.0;
  for (std::size_t t = 1; t < count; ++t) {
    const double deviation = values[t] / values[t - 1] - 1.0 - mean;
    squares += deviation * deviation;
  }
  const double deviation = std::sqrt(squares / (periods - 1.0));
  stats.volatility = deviation * std::sqrt(annualization);
  if (deviation > 0.0)
    stats.sharpe = mean / deviation * std::sqrt(annualization);
  return stats;
}

void append_json_number(fmt::memory_buffer& out, double value) {
  if (std::isfinite(value))
    append_number(out, value);
  else
    out.append(std::string_view("null"));
}

void append_json_string(fmt::memory_buffer& out, std::string_view text) {
  out.push_back('"');
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

std::string xml_escaped(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out.append("&amp;");
        break;
      case '<':
        out.append("&lt;");
        break;
      case '>':
        out.append("&gt;");
        break;
      case '"':
        out.append("&quot;");
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// The chart: the equity curve on top, the book's weights stacked below (the largest assets by
// average weight, the rest as "other", cash on top), date and value axes.
std::string chart_svg(const std::vector<std::string>& dates, const std::vector<double>& values,
                      const Downsampler& weights, const std::vector<std::string>& names) {
  constexpr double kWidth = 1000, kHeight = 720, kLeft = 90, kRight = 170, kTop = 40;
  constexpr double kEquityHeight = 280, kGap = 70, kWeightsHeight = 260;
  constexpr double kPlotWidth = kWidth - kLeft - kRight;
  constexpr double kWeightsTop = kTop + kEquityHeight + kGap;
  constexpr std::size_t kMaxLayers = 9;
  static constexpr std::array<const char*, 10> kColors = {
      "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
      "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#7f7f7f"};

  const auto samples = weights.samples();
  const std::size_t last = values.size() - 1;
  const auto x_of = [&](std::size_t index) {
    return kLeft +
           (last == 0 ? 0.0 : kPlotWidth * static_cast<double>(index) / static_cast<double>(last));
  };
  double low = *std::min_element(values.begin(), values.end());
  double high = *std::max_element(values.begin(), values.end());
  if (!(high > low)) {
    low -= 0.5 * std::max(std::abs(low), 1.0) * 0.01;
    high += 0.5 * std::max(std::abs(high), 1.0) * 0.01;
  }
  const double pad = 0.05 * (high - low);
  low -= pad;
  high += pad;
  const auto y_of_value = [&](double value) {
    return kTop + kEquityHeight * (high - value) / (high - low);
  };
  const auto y_of_weight = [&](double weight) {
    return kWeightsTop + kWeightsHeight * (1.0 - std::clamp(weight, 0.0, 1.0));
  };

  fmt::memory_buffer svg;
  auto out = std::back_inserter(svg);
  fmt::format_to(out,
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
                 "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n"
                 "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
                 kWidth, kHeight);
  fmt::format_to(out,
                 "<text x=\"{}\" y=\"{}\" font-size=\"14\" font-weight=\"bold\">Portfolio "
                 "value</text>\n<text x=\"{}\" y=\"{}\" font-size=\"14\" "
                 "font-weight=\"bold\">Weights (book, after each bar)</text>\n",
                 kLeft, kTop - 12, kLeft, kWeightsTop - 12);

  // Value axis and grid.
  for (int k = 0; k <= 4; ++k) {
    const double value = low + (high - low) * k / 4.0;
    const double y = y_of_value(value);
    fmt::format_to(out,
                   "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>"
                   "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{:.6g}</text>\n",
                   kLeft, y, kLeft + kPlotWidth, y, kLeft - 6, y + 4, value);
  }
  for (int k = 0; k <= 4; ++k) {
    const double y = y_of_weight(k / 4.0);
    fmt::format_to(out,
                   "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>"
                   "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}%</text>\n",
                   kLeft, y, kLeft + kPlotWidth, y, kLeft - 6, y + 4, 25 * k);
  }
  // Date axis under both panels.
  const std::size_t ticks = std::min<std::size_t>(5, last);
  for (std::size_t k = 0; k <= ticks; ++k) {
    const std::size_t index = ticks == 0 ? 0 : k * last / ticks;
    const double x = x_of(index);
    const std::string date = xml_escaped(std::string_view(dates[index]).substr(0, 10));
    for (const double bottom : {kTop + kEquityHeight, kWeightsTop + kWeightsHeight}) {
      fmt::format_to(out,
                     "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" "
                     "stroke=\"#333\"/><text x=\"{0:.1f}\" y=\"{3:.1f}\" "
                     "text-anchor=\"middle\">{4}</text>\n",
                     x, bottom, bottom + 5, bottom + 18, date);
    }
  }

  // Equity: every row up to 2000 points, else the rows at an even stride (and the last).
  const std::size_t stride = values.size() <= 2000 ? 1 : (values.size() + 1999) / 2000;
  svg.append(
      std::string_view("<polyline fill=\"none\" stroke=\"#1f3b73\" stroke-width=\"1.5\" "
                       "points=\""));
  for (std::size_t t = 0; t <= last; t += stride)
    fmt::format_to(out, "{:.2f},{:.2f} ", x_of(t), y_of_value(values[t]));
  if (last % stride != 0)
    fmt::format_to(out, "{:.2f},{:.2f}", x_of(last), y_of_value(values[last]));
  svg.append(std::string_view("\"/>\n"));

  // Layers: the largest assets by average sampled weight, "other", then cash.
  const auto n = static_cast<Index>(names.size());
  Eigen::VectorXd average = Eigen::VectorXd::Zero(n);
  for (const auto& sample : samples)
    average += sample.second;
  std::vector<Index> order(names.size());
  std::iota(order.begin(), order.end(), Index{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](Index a, Index b) { return average(a) > average(b); });
  const std::size_t shown = names.size() <= kMaxLayers + 1 ? names.size() : kMaxLayers;
  std::vector<std::string> labels;
  std::vector<std::vector<Index>> members;
  for (std::size_t k = 0; k < shown; ++k) {
    labels.push_back(names[static_cast<std::size_t>(order[k])]);
    members.push_back({order[k]});
  }
  if (shown < names.size()) {
    labels.push_back(fmt::format("other ({})", names.size() - shown));
    members.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(shown), order.end());
  }
  labels.emplace_back("cash");

  std::vector<double> lower(samples.size(), 0.0);
  std::vector<double> upper(samples.size(), 0.0);
  for (std::size_t layer = 0; layer < labels.size(); ++layer) {
    const bool cash = layer + 1 == labels.size();
    for (std::size_t s = 0; s < samples.size(); ++s) {
      double weight = 0.0;
      if (cash) {
        weight = std::max(0.0, 1.0 - lower[s]);
      } else {
        for (const Index i : members[layer])
          weight += samples[s].second(i);
      }
      upper[s] = lower[s] + weight;
    }
    const char* color = cash ? "#e8e8e8" : kColors[layer % kColors.size()];
    fmt::format_to(out, "<path fill=\"{}\" stroke=\"none\" d=\"", color);
    for (std::size_t s = 0; s < samples.size(); ++s) {
      fmt::format_to(out, "{}{:.2f},{:.2f} ", s == 0 ? "M" : "L", x_of(samples[s].first),
                     y_of_weight(upper[s]));
    }
    for (std::size_t s = samples.size(); s-- > 0;)
      fmt::format_to(out, "L{:.2f},{:.2f} ", x_of(samples[s].first), y_of_weight(lower[s]));
    svg.append(std::string_view("Z\"/>\n"));
    const double legend_y = kWeightsTop + 16.0 * static_cast<double>(layer);
    fmt::format_to(out,
                   "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"10\" height=\"10\" fill=\"{}\"/>"
                   "<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
                   kLeft + kPlotWidth + 12, legend_y, color, kLeft + kPlotWidth + 28, legend_y + 9,
                   xml_escaped(labels[layer]));
    lower = upper;
  }
  fmt::format_to(out,
                 "<rect x=\"{0}\" y=\"{1}\" width=\"{2}\" height=\"{3}\" fill=\"none\" "
                 "stroke=\"#333\"/>\n<rect x=\"{0}\" y=\"{4}\" width=\"{2}\" height=\"{5}\" "
                 "fill=\"none\" stroke=\"#333\"/>\n</svg>\n",
                 kLeft, kTop, kPlotWidth, kEquityHeight, kWeightsTop, kWeightsHeight);
  return fmt::to_string(svg);
}

// A one-line progress report on stderr, only when stderr is a terminal and the run is long.
class Progress {
 public:
  Progress() : m_terminal(::isatty(::fileno(stderr)) != 0) {}
  ~Progress() {
    if (m_shown)
      std::fputs("\r\033[2K", stderr);
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void update(long bars, const std::string& date) {
    if (!m_terminal || bars % 64 != 0)
      return;
    const auto now = std::chrono::steady_clock::now();
    if (bars <= 2000 && now - m_start < std::chrono::seconds(1))
      return;
    if (m_shown && now - m_last < std::chrono::milliseconds(100))
      return;
    m_shown = true;
    m_last = now;
    std::fputs(fmt::format("\rdynweight backtest: {} bars, {}", bars, date).c_str(), stderr);
    std::fflush(stderr);
  }

 private:
  bool m_terminal;
  bool m_shown = false;
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point m_last;
};

void append_header(fmt::memory_buffer& out, std::string_view first,
                   const std::vector<std::string>& names) {
  out.append(first);
  for (const auto& name : names) {
    out.push_back(',');
    append_cell(out, name);
  }
  out.push_back('\n');
}

// The error when no bar could trade, with the last refusal ("DATE: STATUS: detail"): bad input
// (exit 2) when lots could not be counted, which --capital, --lot-size or the prices cause; else
// the policy gave no weights on the data (exit 1, as `weights`).
[[noreturn]] void fail_nothing_traded(const BacktestArguments& arguments,
                                      const std::string& last_failure, bool lots) {
  if (lots) {
    throw InputError(fmt::format(
        "nothing was traded (last: {}): --capital {} buys 2^53 lots or more of an asset at "
        "--lot-size {}; lower --capital or raise --lot-size",
        last_failure, arguments.policy.capital, arguments.trading.lot_size));
  }
  throw std::runtime_error(
      "the policy produced no weights: nothing was traded (last: " + last_failure + ")");
}

void run_backtest(const BacktestArguments& arguments, const CLI::App& app) {
  arguments.estimator.validate(app.count("--min-periods") > 0);
  require(!arguments.estimator.rolling() || arguments.estimator.window >= 2,
          "--window must be at least 2");
  const PolicySetup setup =
      checked_policy_setup(arguments.policy, arguments.estimator, app,
                           PolicyContext{.capital_liquidity_only = false,
                                         .annualization_required = true,
                                         .volumes_reader = "--max-participation"});
  const double annualization = arguments.policy.annualization;
  const DynamicWeighterOptions options = weighter_options(arguments, app, setup);
  const fs::path out_dir(arguments.out);
  {
    std::error_code error;
    const auto status = fs::status(out_dir, error);
    require(!fs::exists(status) || fs::is_directory(status),
            "--out: '" + arguments.out + "' exists and is not a directory");
  }

  MarketReader reader(arguments.input.prices, arguments.input.volumes_path(),
                      arguments.input.missing_policy());
  if (arguments.estimator.rolling())
    check_window_fits(arguments.estimator.window, 1, reader);
  const Index n = reader.asset_count();
  const std::vector<std::string>& names = reader.assets();
  check_max_weight(setup, n);
  Eigen::VectorXd budgets;
  if (!arguments.policy.budgets.empty())
    budgets = read_budgets(arguments.policy.budgets, names);
  DynamicWeighter<AnyPolicy> weighter(n, build_policy(setup, std::move(budgets), nullptr, n, names),
                                      options, names);

  DeferredOutput weights_out;
  DeferredOutput trades_out;
  DeferredOutput equity_out;
  append_header(weights_out.buffer(), "date", names);
  trades_out.buffer().append(
      std::string_view("date,asset,shares_delta,price,notional,cost,limit\n"));
  equity_out.buffer().append(
      std::string_view("date,value,cash,turnover,cost,rebalanced,reasons\n"));

  std::vector<std::string> dates;
  std::vector<double> values;
  Downsampler weight_samples(n, 1000);
  double total_turnover = 0.0;
  double total_costs = 0.0;
  long rebalances = 0;
  std::array<long, 4> by_reason{};
  long failures = 0;
  std::string last_failure = "no rebalance was tried";
  bool last_failure_lots = false;
  std::string notes;
  bool ready = false;
  Progress progress;

  while (reader.next()) {
    const std::string& date = reader.date();
    const auto& bar = on_bar(reader, [&]() -> decltype(auto) {
      return options.volumes ? weighter.update(reader.prices(), reader.volumes())
                             : weighter.update(reader.prices());
    });
    progress.update(reader.bars(), date);
    ready = ready || weighter.ready();
    if (bar.reasons != RebalanceReason::none && !bar.rebalanced) {
      ++failures;
      last_failure = date + ": " + describe(bar.status);
      last_failure_lots = bar.uncountable_lots;
      notes.append("dynweight: note: ").append(date).append(": no rebalance (");
      notes.append(describe(bar.status)).append(")\n");
    } else if (bar.rebalanced && !bar.status.ok()) {
      notes.append("dynweight: note: ").append(date).append(": ");
      notes.append(describe(bar.status)).append("\n");
    }
    if (values.empty() && !bar.rebalanced)
      continue;  // no book yet

    double turnover = 0.0;
    double cost = 0.0;
    if (bar.rebalanced) {
      const TradePlan<double>& plan = weighter.plan();
      turnover = plan.turnover;
      cost = plan.total_cost;
      total_turnover += turnover;
      total_costs += cost;
      ++rebalances;
      for (std::size_t k = 0; k < by_reason.size(); ++k) {
        if (has(bar.reasons, static_cast<RebalanceReason>(1U << k)))
          ++by_reason[k];
      }
      auto& trades = trades_out.buffer();
      for (Index i = 0; i < n; ++i) {
        if (plan.shares_delta(i) == 0.0)
          continue;
        append_cell(trades, date);
        trades.push_back(',');
        append_cell(trades, names[static_cast<std::size_t>(i)]);
        for (const double number :
             {plan.shares_delta(i), reader.prices()(i), plan.notional(i), plan.cost(i)}) {
          trades.push_back(',');
          append_number(trades, number);
        }
        trades.push_back(',');
        trades.append(to_string(plan.limits[static_cast<std::size_t>(i)]));
        trades.push_back('\n');
      }
      trades_out.flush();
      auto& weights = weights_out.buffer();
      append_cell(weights, date);
      for (Index i = 0; i < n; ++i) {
        weights.push_back(',');
        append_number(weights, weighter.book_weights()(i));
      }
      weights.push_back('\n');
      weights_out.flush();
    }
    auto& equity = equity_out.buffer();
    append_cell(equity, date);
    for (const double number : {bar.value, weighter.cash(), turnover, cost}) {
      equity.push_back(',');
      append_number(equity, number);
    }
    equity.append(std::string_view(bar.rebalanced ? ",1," : ",0,"));
    equity.append(to_string(bar.reasons, "|"));
    equity.push_back('\n');
    equity_out.flush();
    weight_samples.add(values.size(), weighter.book_weights());
    dates.push_back(date);
    values.push_back(bar.value);
  }
  if (!ready) {
    std::string message = arguments.input.prices;
    const std::string estimator = arguments.estimator.rolling()
                                      ? fmt::format("--window {}", arguments.estimator.window)
                                      : fmt::format("--halflife {}", arguments.estimator.halflife);
    const Index rows_needed = (arguments.estimator.rolling() ? arguments.estimator.window
                                                             : arguments.estimator.min_periods) +
                              1;
    message.append(
        fmt::format(": not enough rows for the estimates: {} needs {} price rows, the file has {}",
                    estimator, rows_needed, reader.bars()));
    if (arguments.input.missing != "error")
      message.append(" (after --missing ").append(arguments.input.missing).append(")");
    throw InputError(message);
  }
  if (values.empty())
    fail_nothing_traded(arguments, last_failure, last_failure_lots);

  const CurveStatistics stats = curve_statistics(values, annualization);
  fmt::memory_buffer summary;
  const auto field = [&summary](std::string_view name, double value) {
    summary.append(std::string_view("  \""));
    summary.append(name);
    summary.append(std::string_view("\": "));
    append_json_number(summary, value);
    summary.append(std::string_view(",\n"));
  };
  summary.append(std::string_view("{\n  \"first_date\": "));
  append_json_string(summary, dates.front());
  summary.append(std::string_view(",\n  \"last_date\": "));
  append_json_string(summary, dates.back());
  summary.append(std::string_view(",\n"));
  field("bars", static_cast<double>(values.size()));
  field("annualization", annualization);
  field("initial_capital", arguments.policy.capital);
  field("final_value", values.back());
  field("total_return", values.back() / arguments.policy.capital - 1.0);
  field("cagr", stats.cagr);
  field("annualized_volatility", stats.volatility);
  field("sharpe", stats.sharpe);
  field("risk_free_rate", 0.0);
  field("max_drawdown", stats.max_drawdown);
  field("total_turnover", total_turnover);
  field("total_costs", total_costs);
  field("rebalances", static_cast<double>(rebalances));
  field("failed_rebalances", static_cast<double>(failures));
  summary.append(std::string_view("  \"rebalances_by_reason\": {"));
  for (std::size_t k = 0; k < by_reason.size(); ++k) {
    fmt::format_to(std::back_inserter(summary), "{}\"{}\": {}", k == 0 ? "" : ", ",
                   to_string(static_cast<RebalanceReason>(1U << k)), by_reason[k]);
  }
  summary.append(std::string_view("}\n}\n"));
  const std::string chart = chart_svg(dates, values, weight_samples, names);

  // Everything is computed: only now does the directory see a file.
  std::error_code error;
  fs::create_directories(out_dir, error);
  if (error)
    throw std::runtime_error("cannot create the directory '" + arguments.out +
                             "': " + error.message());
  // All five files replace the old ones together, or none does.
  FileSetReplacement files;
  files.add(out_dir / "weights.csv", weights_out);
  files.add(out_dir / "trades.csv", trades_out);
  files.add(out_dir / "equity.csv", equity_out);
  files.add(out_dir / "summary.json", std::string_view(summary.data(), summary.size()));
  files.add(out_dir / "chart.svg", chart);
  files.commit();
  std::fputs(notes.c_str(), stderr);
}

}  // namespace

Command add_backtest_command(CLI::App& parent) {
  auto arguments = std::make_shared<BacktestArguments>();
  CLI::App* app = parent.add_subcommand(
      "backtest",
      "Stream a price file once through the per-bar pipeline (rolling or EWMA estimates, a policy, "
      "calendar / drift / volatility-regime triggers, whole-lot trades executed at each bar's "
      "close, after costs) and write weights.csv, trades.csv, equity.csv, summary.json and "
      "chart.svg into --out (see README, \"dynweight backtest\")");
  add_market_input_options(*app, arguments->input,
                           "Volume file (shares), same dates and assets as --prices; needed by "
                           "--policy liquidity and --max-participation (average dollar volume "
                           "over the window, or EWMA with the half-life)");
  add_estimator_options(*app, arguments->estimator,
                        "Rolling window of returns for the estimates (sample moments, W - 1 in the "
                        "denominator); the first rebalance is at price row W + 1",
                        "EWMA estimates with half-life H bars instead of a window, as pandas "
                        "ewm(halflife=H) (adjust=True, bias=False; the ADV of --volumes likewise, "
                        "adjust=True); ready with --min-periods returns (default 2): the first "
                        "rebalance is at price row P + 1. Live --shrinkage methods need --window "
                        "(a fixed intensity works)");
  add_min_periods_option(*app, arguments->estimator);
  add_policy_options(*app, arguments->policy);
  app->add_option("--capital", arguments->policy.capital,
                  "Starting cash (also the capital of --policy liquidity)")
      ->capture_default_str()
      ->type_name("X");
  app->add_option("--annualization", arguments->policy.annualization,
                  "Periods per year (252 for trading days, 12 for months): required, for the "
                  "summary's CAGR, volatility and Sharpe ratio (and --vol-target); no default")
      ->type_name("A");
  app->add_option("--every", arguments->every,
                  "Calendar trigger: rebalance every K bars, counted from the first bar with "
                  "estimates (which always rebalances)")
      ->required()
      ->transform(integer_in_range<Index>(1, std::numeric_limits<Index>::max()))
      ->type_name("K");
  app->add_option("--drift-band", arguments->drift_band,
                  "Drift trigger: rebalance when max_i |w_i - v_i| > X, v the weights the last "
                  "rebalance's trades left (0: off)")
      ->type_name("X");
  auto* regime = app->add_option("--regime", arguments->regime,
                                 "Volatility-regime trigger: rebalance when the short/long EWMA "
                                 "volatility ratio of the portfolio's return rises above UPPER; "
                                 "re-armed below LOWER (e.g. 1.5,1.2)")
                     ->type_name("UPPER,LOWER");
  auto* upper = app->add_option("--regime-upper", arguments->regime_upper,
                                "The regime trigger's UPPER alone (default 1.5; turns it on)")
                    ->type_name("X");
  auto* lower = app->add_option("--regime-lower", arguments->regime_lower,
                                "The regime trigger's LOWER alone (default 1.2; turns it on)")
                    ->type_name("X");
  regime->excludes(upper)->excludes(lower);
  app->add_option("--regime-halflives", arguments->regime_halflives,
                  "Half-lives (bars) of the regime trigger's short and long EWMA volatilities "
                  "(default 10,100; the ratio is reported after 20 observations)")
      ->type_name("S,L");
  add_trading_options(*app, arguments->trading, "Lot size of every asset (any real > 0)",
                      "No-trade band: an asset is not traded while |weight - target| <= X "
                      "(X or X%, below 1 = 100%)");
  app->add_option("--max-participation", arguments->max_participation,
                  "Participation cap: each trade's |shares| <= X (or X%) times the asset's ADV "
                  "in shares, here the average dollar volume (price x volume) over the last W "
                  "price rows (the bar's included), or with --halflife its EWMA of half-life H "
                  "(adjust=True, over every price row so far), divided by the bar's price; needs "
                  "--volumes")
      ->type_name("X|X%");
  app->add_option("--out", arguments->out,
                  "Directory for the results (created if needed; files are written only once "
                  "the whole run succeeded, and replace the old ones all together or not at all)")
      ->required()
      ->type_name("DIR");
  return {app, [arguments, app]() { run_backtest(*arguments, *app); }};
}

}  // namespace dynweight::cli
