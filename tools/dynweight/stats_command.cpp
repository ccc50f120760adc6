// `dynweight stats`: rolling-window or EWMA mean, volatility, covariance, correlation of returns,
// or average dollar volume, streamed from a price file in one pass.

#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dynweight/commands.hpp"
#include "dynweight/errors.hpp"
#include "dynweight/market_reader.hpp"
#include "dynweight/options.hpp"
#include "dynweight/output.hpp"
#include "dynweight/stats/dollar_volume.hpp"
#include "dynweight/stats/ewma_moments.hpp"
#include "dynweight/stats/returns.hpp"
#include "dynweight/stats/rolling_moments.hpp"

namespace dynweight::cli {

namespace {

enum class Statistic { mean, vol, cov, corr, adv };

Statistic parse_statistic(const std::string& text) {
  if (text == "mean")
    return Statistic::mean;
  if (text == "vol")
    return Statistic::vol;
  if (text == "cov")
    return Statistic::cov;
  if (text == "corr")
    return Statistic::corr;
  return Statistic::adv;  // CLI11 checked the value
}

struct StatsArguments {
  MarketInputOptions input;
  EstimatorOptions estimator;
  std::string statistic;
  bool all = false;
};

// Writes the statistic in the formats of the design: at the last date, a vector as `asset,value`
// rows and a matrix as a header `asset,<names>` and one row per asset; with --all, every date in
// long format `date,asset,value` or `date,asset,asset2,value` (each pair once: asset2 at or before
// asset in column order, the diagonal included).
class StatsWriter {
 public:
  StatsWriter(const std::vector<std::string>& names, bool matrix, bool all)
      : m_matrix(matrix), m_all(all) {
    for (const auto& name : names) {
      fmt::memory_buffer cell;
      append_cell(cell, name);
      m_names.push_back(fmt::to_string(cell));
    }
    auto& out = m_output.buffer();
    if (m_all) {
      out.append(std::string_view(m_matrix ? "date,asset,asset2,value\n" : "date,asset,value\n"));
    } else if (m_matrix) {
      out.append(std::string_view("asset"));
      for (const auto& name : m_names) {
        out.push_back(',');
        out.append(name);
      }
      out.push_back('\n');
    } else {
      out.append(std::string_view("asset,value\n"));
    }
  }

  void vector(const std::string& date, const Eigen::VectorXd& values) {
    auto& out = m_output.buffer();
    for (std::size_t i = 0; i < m_names.size(); ++i) {
      if (m_all) {
        append_cell(out, date);
        out.push_back(',');
      }
      out.append(m_names[i]);
      out.push_back(',');
      append_number(out, values(static_cast<Index>(i)));
      out.push_back('\n');
    }
    m_output.flush();
  }

  // `lower`: a symmetric matrix of which only the lower triangle is read.
  void matrix(const std::string& date, const Eigen::MatrixXd& lower) {
    auto& out = m_output.buffer();
    const auto n = static_cast<Index>(m_names.size());
    for (Index i = 0; i < n; ++i) {
      const std::string& name = m_names[static_cast<std::size_t>(i)];
      if (m_all) {
        for (Index j = 0; j <= i; ++j) {
          append_cell(out, date);
          out.push_back(',');
          out.append(name);
          out.push_back(',');
          out.append(m_names[static_cast<std::size_t>(j)]);
          out.push_back(',');
          append_number(out, lower(i, j));
          out.push_back('\n');
        }
        m_output.flush();
      } else {
        out.append(name);
        for (Index j = 0; j < n; ++j) {
          out.push_back(',');
          append_number(out, i >= j ? lower(i, j) : lower(j, i));
        }
        out.push_back('\n');
      }
    }
    m_output.flush();
  }

  void commit() { m_output.commit(stdout); }

 private:
  bool m_matrix;
  bool m_all;
  std::vector<std::string> m_names;  // as CSV cells
  DeferredOutput m_output;
};

template <class Engine>
void write_moment(const Engine& engine, Statistic statistic, const std::string& date,
                  StatsWriter& writer) {
  switch (statistic) {
    case Statistic::mean:
      writer.vector(date, engine.mean());
      break;
    case Statistic::vol:
      writer.vector(date, engine.volatility());
      break;
    case Statistic::cov:
      writer.matrix(date, engine.covariance_lower());
      break;
    case Statistic::corr:
      writer.matrix(date, engine.correlation_lower());
      break;
    case Statistic::adv:
      break;
  }
}

// One pass: each bar's prices update the returns and, from the second bar on, the engine.
// Returns true if the engine is ready at the last bar (the last bar's statistic was written unless
// --all wrote every ready one).
template <class Engine>
bool stream_moments(MarketReader& reader, ReturnKind kind, Engine& engine, Statistic statistic,
                    bool all, StatsWriter& writer, bool& wrote_any) {
  ReturnCalculator<double> returns(reader.asset_count(), kind, reader.assets());
  std::string last_date;
  while (reader.next()) {
    last_date = reader.date();
    on_bar(reader, [&] {
      if (!returns.update(reader.prices()))
        return;
      engine.update(returns.returns());
      if (all && engine.ready()) {
        write_moment(engine, statistic, last_date, writer);
        wrote_any = true;
      }
    });
  }
  if (!all && engine.ready()) {
    write_moment(engine, statistic, last_date, writer);
    wrote_any = true;
  }
  return engine.ready();
}

template <class Engine>
void stream_dollar_volume(MarketReader& reader, Engine& engine, bool all, StatsWriter& writer,
                          bool& wrote_any) {
  std::string last_date;
  while (reader.next()) {
    last_date = reader.date();
    on_bar(reader, [&] { engine.update(reader.prices(), reader.volumes()); });
    if (all && engine.ready()) {
      writer.vector(last_date, engine.average());
      wrote_any = true;
    }
  }
  if (!all && engine.ready()) {
    writer.vector(last_date, engine.average());
    wrote_any = true;
  }
}

void run_stats(const StatsArguments& arguments) {
  const EstimatorOptions& estimator = arguments.estimator;
  estimator.validate();
  const Statistic statistic = parse_statistic(arguments.statistic);
  const bool adv = statistic == Statistic::adv;
  if (adv && arguments.input.volumes.empty())
    throw InputError("--stat adv needs --volumes");
  if (!adv && !arguments.input.volumes.empty())
    throw InputError("--volumes is only read by --stat adv");
  if (!adv && estimator.rolling() && estimator.window < 2)
    throw InputError("--window must be at least 2 for mean, vol, cov and corr");

  MarketReader reader(arguments.input.prices, arguments.input.volumes_path(),
                      arguments.input.missing_policy());
  if (estimator.rolling())
    check_window_fits(estimator.window, adv ? 0 : 1, reader);
  const Index n = reader.asset_count();
  const bool matrix = statistic == Statistic::cov || statistic == Statistic::corr;
  StatsWriter writer(reader.assets(), matrix, arguments.all);
  bool wrote_any = false;
  Index rows_needed = 0;

  if (adv) {
    if (estimator.rolling()) {
      RollingDollarVolume<double> engine(n, {.window = estimator.window}, reader.assets());
      stream_dollar_volume(reader, engine, arguments.all, writer, wrote_any);
      rows_needed = estimator.window;
    } else {
      EwmaDollarVolume<double> engine(n, {.decay = EwmaDecay::from_halflife(estimator.halflife)},
                                      reader.assets());
      stream_dollar_volume(reader, engine, arguments.all, writer, wrote_any);
      rows_needed = 1;
    }
  } else if (estimator.rolling()) {
    RollingMoments<double> engine(n, {.window = estimator.window}, reader.assets());
    stream_moments(reader, estimator.return_kind(), engine, statistic, arguments.all, writer,
                   wrote_any);
    rows_needed = estimator.window + 1;
  } else {
    // The mean is defined from the first return, the (unbiased) dispersion from the second, as in
    // pandas, where ewm().std() / .cov() / .corr() are NaN on the first row.
    const Index min_periods = statistic == Statistic::mean ? 1 : 2;
    EwmaMoments<double> engine(
        n, {.decay = EwmaDecay::from_halflife(estimator.halflife), .min_periods = min_periods},
        reader.assets());
    stream_moments(reader, estimator.return_kind(), engine, statistic, arguments.all, writer,
                   wrote_any);
    rows_needed = min_periods + 1;
  }

  if (!wrote_any) {
    std::string message = arguments.input.prices;
    message.append(": not enough rows for --stat ").append(arguments.statistic);
    message.append(": it needs ").append(std::to_string(rows_needed));
    message.append(" price rows, the file has ").append(std::to_string(reader.bars()));
    if (arguments.input.missing != "error")
      message.append(" (after --missing ").append(arguments.input.missing).append(")");
    throw InputError(message);
  }
  writer.commit();
}

}  // namespace

Command add_stats_command(CLI::App& parent) {
  auto arguments = std::make_shared<StatsArguments>();
  CLI::App* app = parent.add_subcommand(
      "stats",
      "Rolling-window or EWMA statistics of returns (mean, vol, cov, corr) or average dollar "
      "volume (adv), at the last date or (--all) at every date; reads the file once");
  add_market_input_options(*app, arguments->input,
                           "Volume file (shares), same dates and assets as --prices; needed by "
                           "--stat adv (average of price x volume)");
  add_estimator_options(*app, arguments->estimator);
  app->add_option("--stat", arguments->statistic,
                  "Statistic: 'mean' or 'vol' (per-period standard deviation) of returns: rows "
                  "asset,value; 'cov' or 'corr' of returns: a header asset,<names> and one row "
                  "per asset; 'adv': average dollar volume (needs --volumes)")
      ->required()
      ->check(CLI::IsMember({"mean", "vol", "cov", "corr", "adv"}));
  app->add_flag("--all", arguments->all,
                "Every date where the statistic is defined, in long format date,asset,value "
                "(date,asset,asset2,value for cov and corr: each pair once, asset2 at or before "
                "asset in column order, diagonal included)");
  return {app, [arguments]() { run_stats(*arguments); }};
}

}  // namespace dynweight::cli
