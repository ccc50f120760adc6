// `dynweight weights`: target weights of a policy (inverse volatility, risk parity, correlation
// shrinkage, liquidity scaling) with optional weight caps and a volatility target, at the last
// date or at every K-th date, streamed from a price file in one pass.

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dynweight/any_policy.hpp"
#include "dynweight/commands.hpp"
#include "dynweight/errors.hpp"
#include "dynweight/estimators/rolling_shrinkage.hpp"
#include "dynweight/market_reader.hpp"
#include "dynweight/options.hpp"
#include "dynweight/output.hpp"
#include "dynweight/policies/estimates.hpp"
#include "dynweight/policy_options.hpp"
#include "dynweight/stats/dollar_volume.hpp"
#include "dynweight/stats/ewma_moments.hpp"
#include "dynweight/stats/returns.hpp"
#include "dynweight/stats/rolling_moments.hpp"

namespace dynweight::cli {

namespace {

struct WeightsArguments {
  MarketInputOptions input;
  EstimatorOptions estimator;
  PolicyArguments policy;
  Index every = 0;
  bool all = false;
};

// The policy, and the rebalance grid (0: the last date only).
struct WeightsSetup {
  PolicySetup policy;
  Index every = 0;
};

WeightsSetup checked_setup(const WeightsArguments& arguments, const CLI::App& app) {
  arguments.estimator.validate(app.count("--min-periods") > 0);
  require(!arguments.estimator.rolling() || arguments.estimator.window >= 2,
          "--window must be at least 2");
  WeightsSetup setup;
  setup.policy = checked_policy_setup(arguments.policy, arguments.estimator, app, PolicyContext{});
  setup.every = arguments.all ? 1 : arguments.every;
  return setup;
}

// The streaming engines: returns, then rolling or EWMA moments (or a live `RollingShrinkage`,
// whose own window supplies the moments), and average dollar volume for liquidity.
class EstimateStream {
 public:
  EstimateStream(const MarketReader& reader, const EstimatorOptions& estimator,
                 const PolicySetup& setup)
      : m_names(&reader.assets()),
        m_returns(reader.asset_count(), estimator.return_kind(), reader.assets()) {
    const Index n = reader.asset_count();
    if (estimator.rolling()) {
      const RollingOptions options{.window = estimator.window};
      if (setup.method)
        m_shrinkage.emplace(n, options, *setup.method, reader.assets());
      else
        m_rolling.emplace(n, options, reader.assets());
      if (setup.liquidity)
        m_rolling_adv.emplace(n, RollingDollarVolumeOptions{.window = estimator.window},
                              reader.assets());
      m_rows_needed = estimator.window + 1;
    } else {
      const EwmaDecay decay = EwmaDecay::from_halflife(estimator.halflife);
      // The unbiased dispersion is defined from the second return, as pandas ewm().cov():
      // --min-periods is at least 2.
      m_ewma.emplace(n, EwmaOptions{.decay = decay, .min_periods = estimator.min_periods},
                     reader.assets());
      if (setup.liquidity)
        m_ewma_adv.emplace(n, EwmaDollarVolumeOptions{.decay = decay}, reader.assets());
      m_rows_needed = estimator.min_periods + 1;
    }
  }

  // One bar: its prices (and volumes) update every engine.
  void update(const MarketReader& reader) {
    if (m_rolling_adv)
      m_rolling_adv->update(reader.prices(), reader.volumes());
    if (m_ewma_adv)
      m_ewma_adv->update(reader.prices(), reader.volumes());
    if (!m_returns.update(reader.prices()))
      return;
    if (m_shrinkage)
      m_shrinkage->update(m_returns.returns());
    else if (m_rolling)
      m_rolling->update(m_returns.returns());
    else
      m_ewma->update(m_returns.returns());
  }

  [[nodiscard]] bool ready() const {
    const bool moments =
        m_shrinkage ? m_shrinkage->ready() : (m_rolling ? m_rolling->ready() : m_ewma->ready());
    const bool liquidity =
        m_rolling_adv ? m_rolling_adv->ready() : (m_ewma_adv ? m_ewma_adv->ready() : true);
    return moments && liquidity;
  }

  // Mean, volatility, covariance (lower triangle) and, for liquidity, the average dollar volume.
  [[nodiscard]] Estimates<double> estimates() const {
    Estimates<double> estimates(static_cast<Index>(m_names->size()), m_names);
    if (m_ewma) {
      estimates.set_mean(m_ewma->mean())
          .set_volatility(m_ewma->volatility())
          .set_covariance(m_ewma->covariance_lower(), SymmetricStorage::lower);
    } else {
      const RollingMoments<double>& moments = m_shrinkage ? m_shrinkage->moments() : *m_rolling;
      estimates.set_mean(moments.mean())
          .set_volatility(moments.volatility())
          .set_covariance(moments.covariance_lower(), SymmetricStorage::lower);
    }
    if (m_rolling_adv)
      estimates.set_dollar_volume(m_rolling_adv->average());
    if (m_ewma_adv)
      estimates.set_dollar_volume(m_ewma_adv->average());
    return estimates;
  }

  [[nodiscard]] RollingShrinkage<double>* shrinkage() {
    return m_shrinkage ? &*m_shrinkage : nullptr;
  }
  // Price rows the first estimate needs.
  [[nodiscard]] Index rows_needed() const { return m_rows_needed; }

 private:
  const std::vector<std::string>* m_names;
  ReturnCalculator<double> m_returns;
  std::optional<RollingMoments<double>> m_rolling;
  std::optional<RollingShrinkage<double>> m_shrinkage;
  std::optional<EwmaMoments<double>> m_ewma;
  std::optional<RollingDollarVolume<double>> m_rolling_adv;
  std::optional<EwmaDollarVolume<double>> m_ewma_adv;
  Index m_rows_needed = 0;
};

void run_weights(const WeightsArguments& arguments, const CLI::App& app) {
  const WeightsSetup setup = checked_setup(arguments, app);
  MarketReader reader(arguments.input.prices, arguments.input.volumes_path(),
                      arguments.input.missing_policy());
  if (arguments.estimator.rolling())
    check_window_fits(arguments.estimator.window, 1, reader);
  const Index n = reader.asset_count();
  const std::vector<std::string>& names = reader.assets();
  check_max_weight(setup.policy, n);
  Eigen::VectorXd budgets;
  if (!arguments.policy.budgets.empty())
    budgets = read_budgets(arguments.policy.budgets, names);

  EstimateStream stream(reader, arguments.estimator, setup.policy);
  AnyPolicy policy = build_policy(setup.policy, std::move(budgets), stream.shrinkage(), n, names);

  DeferredOutput output;
  auto& out = output.buffer();
  out.append(std::string_view("date"));
  for (const auto& name : names) {
    out.push_back(',');
    append_cell(out, name);
  }
  out.push_back('\n');

  std::string notes;
  std::string last_failure;
  long rows = 0;
  Eigen::VectorXd weights(n);
  const auto rebalance = [&](const std::string& date) {
    weights.setConstant(std::numeric_limits<double>::quiet_NaN());
    const Status status = policy.compute(stream.estimates(), weights);
    if (!weights.allFinite()) {
      last_failure = date + ": " + describe(status);
      notes.append("dynweight: note: ").append(date).append(": no weights (");
      notes.append(describe(status)).append(")\n");
      return;
    }
    if (!status.ok())
      notes.append("dynweight: note: ").append(date).append(": ").append(describe(status)) += '\n';
    append_cell(out, date);
    for (Index i = 0; i < n; ++i) {
      out.push_back(',');
      append_number(out, weights(i));
    }
    out.push_back('\n');
    output.flush();
    ++rows;
  };

  long bar = -1;
  long first_ready = -1;
  std::string last_date;
  while (reader.next()) {
    ++bar;
    last_date = reader.date();
    on_bar(reader, [&] {
      stream.update(reader);
      if (!stream.ready())
        return;
      if (first_ready < 0)
        first_ready = bar;
      if (setup.every > 0 && (bar - first_ready) % setup.every == 0)
        rebalance(last_date);
    });
  }
  if (first_ready < 0) {
    std::string message = arguments.input.prices;
    message.append(
        fmt::format(": not enough rows for the estimates: they need {} price rows, the "
                    "file has {}",
                    stream.rows_needed(), reader.bars()));
    if (arguments.input.missing != "error")
      message.append(" (after --missing ").append(arguments.input.missing).append(")");
    throw InputError(message);
  }
  if (setup.every == 0)
    on_bar(reader, [&] { rebalance(last_date); });
  if (rows == 0)
    throw std::runtime_error("the policy produced no weights (last: " + last_failure + ")");
  output.commit(stdout);
  std::fputs(notes.c_str(), stderr);
}

}  // namespace

Command add_weights_command(CLI::App& parent) {
  auto arguments = std::make_shared<WeightsArguments>();
  CLI::App* app = parent.add_subcommand(
      "weights",
      "Target weights of a policy (inverse-vol, risk-parity, shrinkage, liquidity) on rolling or "
      "EWMA estimates, with optional caps and a volatility target, at the last date or every "
      "K-th date: rows date,<names>; reads the file once (see README, \"dynweight weights\")");
  add_market_input_options(*app, arguments->input,
                           "Volume file (shares), same dates and assets as --prices; needed by "
                           "--policy liquidity (average dollar volume, price x volume, over the "
                           "window or half-life)");
  add_estimator_options(*app, arguments->estimator);
  add_min_periods_option(*app, arguments->estimator);
  add_policy_options(*app, arguments->policy);
  app->add_option("--capital", arguments->policy.capital,
                  "--policy liquidity: the capital C; asset i holds at most participation x "
                  "ADV_i / C of it, the excess goes pro rata to the others, what no asset can "
                  "absorb stays in cash")
      ->capture_default_str()
      ->type_name("X");
  app->add_option("--annualization", arguments->policy.annualization,
                  "Periods per year for --vol-target (252 for trading days); no default")
      ->type_name("A");
  auto* every = app->add_option("--every", arguments->every,
                                "A row every K dates, from the first date with estimates (the "
                                "last date is printed only if it falls on that grid)")
                    ->transform(integer_in_range<Index>(1, std::numeric_limits<Index>::max()))
                    ->type_name("K");
  auto* all =
      app->add_flag("--all", arguments->all, "A row at every date with estimates (--every 1)");
  every->excludes(all);
  return {app, [arguments, app]() { run_weights(*arguments, *app); }};
}

}  // namespace dynweight::cli
