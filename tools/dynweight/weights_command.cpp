// `dynweight weights`: target weights of a policy (inverse volatility, risk parity, correlation
// shrinkage, liquidity scaling) with optional weight caps and a volatility target, at the last
// date or at every K-th date, streamed from a price file in one pass.

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "dynweight/any_policy.hpp"
#include "dynweight/book_reader.hpp"
#include "dynweight/commands.hpp"
#include "dynweight/csv_reader.hpp"
#include "dynweight/errors.hpp"
#include "dynweight/estimators/rolling_shrinkage.hpp"
#include "dynweight/market_reader.hpp"
#include "dynweight/options.hpp"
#include "dynweight/output.hpp"
#include "dynweight/overlays/overlay.hpp"
#include "dynweight/overlays/volatility_target.hpp"
#include "dynweight/overlays/weight_bounds.hpp"
#include "dynweight/policies/correlation_shrinkage.hpp"
#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/inverse_volatility.hpp"
#include "dynweight/policies/liquidity_scaled.hpp"
#include "dynweight/policies/risk_parity.hpp"
#include "dynweight/stats/dollar_volume.hpp"
#include "dynweight/stats/ewma_moments.hpp"
#include "dynweight/stats/returns.hpp"
#include "dynweight/stats/rolling_moments.hpp"

namespace dynweight::cli {

namespace {

struct WeightsArguments {
  MarketInputOptions input;
  EstimatorOptions estimator;
  std::string policy;
  std::string inner = "risk-parity";
  std::string shrinkage;
  std::string budgets;
  double capital = 1e6;
  double participation = 0.1;
  double max_weight = 0.0;
  double vol_target = 0.0;
  double annualization = 0.0;
  double max_leverage = 1.0;
  Index every = 0;
  bool all = false;
};

// The options of a parsed command line that decide the computation, checked against each other.
struct WeightsSetup {
  enum class Base { inverse_volatility, risk_parity };
  Base base = Base::risk_parity;
  bool liquidity = false;
  bool shrink = false;
  std::optional<RollingShrinkageMethod> method;  // estimated on the live window
  double intensity = 0.0;                        // fixed, toward the scaled identity
  LiquidityOptions liquidity_options;
  std::optional<double> max_weight;
  std::optional<VolatilityTargetOptions> vol_target;
  Index every = 0;  // 0: the last date only
};

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

// "lw-constant-correlation" | "lw-identity" | "oas" | an intensity in [0, 1].
void parse_shrinkage(const std::string& text, WeightsSetup& setup) {
  if (text == "lw-constant-correlation") {
    setup.method = RollingShrinkageMethod::constant_correlation;
    return;
  }
  if (text == "lw-identity") {
    setup.method = RollingShrinkageMethod::ledoit_wolf;
    return;
  }
  if (text == "oas") {
    setup.method = RollingShrinkageMethod::oas;
    return;
  }
  const char* first = text.data();
  const char* last = first + text.size();
  double value = 0.0;
  const auto [end, error] = std::from_chars(first, last, value);
  if (text.empty() || error != std::errc() || end != last || !(value >= 0.0 && value <= 1.0)) {
    throw InputError("--shrinkage: '" + text +
                     "' is not lw-constant-correlation, lw-identity, oas or an intensity in "
                     "[0, 1]");
  }
  setup.intensity = value;
}

void require(bool ok, const std::string& message) {
  if (!ok)
    throw InputError(message);
}

void check_positive_option(const CLI::App& app, const char* option, double value) {
  if (app.count(option) > 0) {
    require(std::isfinite(value) && value > 0.0,
            fmt::format("{}: {} must be finite and > 0", option, value));
  }
}

WeightsSetup checked_setup(const WeightsArguments& arguments, const CLI::App& app) {
  const auto given = [&app](const char* option) { return app.count(option) > 0; };
  arguments.estimator.validate();
  require(!arguments.estimator.rolling() || arguments.estimator.window >= 2,
          "--window must be at least 2");

  WeightsSetup setup;
  const std::string& policy = arguments.policy;
  setup.liquidity = policy == "liquidity";
  setup.shrink = policy == "shrinkage" || (setup.liquidity && given("--shrinkage"));
  const bool wrapper = policy == "shrinkage" || setup.liquidity;
  require(wrapper || !given("--inner"),
          "--inner is read by --policy shrinkage and --policy liquidity only");
  const std::string& base = wrapper ? arguments.inner : policy;
  setup.base = base == "inverse-vol" ? WeightsSetup::Base::inverse_volatility
                                     : WeightsSetup::Base::risk_parity;

  if (policy == "shrinkage")
    require(given("--shrinkage"), "--policy shrinkage needs --shrinkage");
  require(setup.shrink || !given("--shrinkage"),
          "--shrinkage is read by --policy shrinkage and --policy liquidity only");
  if (setup.shrink) {
    parse_shrinkage(arguments.shrinkage, setup);
    require(!setup.method || arguments.estimator.rolling(),
            "--shrinkage " + arguments.shrinkage +
                " estimates its intensity from the observations of a rolling window and needs "
                "--window; with --halflife give a fixed intensity in [0, 1] (e.g. --shrinkage "
                "0.3)");
  }

  require(!given("--budgets") || setup.base == WeightsSetup::Base::risk_parity,
          "--budgets is read by risk parity only (--policy risk-parity, or --inner risk-parity)");

  require(setup.liquidity == given("--volumes"),
          setup.liquidity ? "--policy liquidity needs --volumes (average dollar volume)"
                          : "--volumes is read by --policy liquidity only");
  for (const char* option : {"--capital", "--participation"})
    require(setup.liquidity || !given(option),
            std::string(option) + " is read by --policy liquidity only");
  check_positive_option(app, "--capital", arguments.capital);
  check_positive_option(app, "--participation", arguments.participation);
  setup.liquidity_options.mode = LiquidityMode::cap;
  setup.liquidity_options.capital = arguments.capital;
  setup.liquidity_options.participation = arguments.participation;

  if (given("--max-weight")) {
    require(std::isfinite(arguments.max_weight) && arguments.max_weight > 0.0 &&
                arguments.max_weight <= 1.0,
            fmt::format("--max-weight: {} must be in (0, 1]", arguments.max_weight));
    setup.max_weight = arguments.max_weight;
  }

  if (given("--vol-target")) {
    require(given("--annualization"),
            "--vol-target needs --annualization (periods per year, e.g. 252 for daily bars): "
            "there is no implicit default");
    check_positive_option(app, "--vol-target", arguments.vol_target);
    check_positive_option(app, "--annualization", arguments.annualization);
    check_positive_option(app, "--max-leverage", arguments.max_leverage);
    setup.vol_target = VolatilityTargetOptions{.target = arguments.vol_target,
                                               .annualization = arguments.annualization,
                                               .max_leverage = arguments.max_leverage};
  } else {
    for (const char* option : {"--annualization", "--max-leverage"})
      require(!given(option), std::string(option) + " is read by --vol-target only");
  }

  setup.every = arguments.all ? 1 : arguments.every;
  return setup;
}

// `asset,budget` rows (header `asset,budget`), one per asset of the price file, in any order;
// returned in the price file's column order.
Eigen::VectorXd read_budgets(const std::string& path, const std::vector<std::string>& assets) {
  CsvReader csv(path);
  std::vector<std::string> cells;
  if (!csv.next(cells))
    throw InputError(located(path, 1, 1, "the file is empty (expected a header asset,budget)"));
  if (cells.size() != 2 || trimmed(cells[0]) != "asset" || trimmed(cells[1]) != "budget") {
    throw InputError(
        located(path, csv.line(), 1, "the header must be asset,budget (then one row per asset)"));
  }
  std::map<std::string, Index, std::less<>> column;
  for (std::size_t i = 0; i < assets.size(); ++i)
    column.emplace(assets[i], static_cast<Index>(i));
  const auto n = static_cast<Index>(assets.size());
  Eigen::VectorXd budgets = Eigen::VectorXd::Constant(n, std::numeric_limits<double>::quiet_NaN());
  std::vector<long> lines(assets.size(), 0);
  while (csv.next(cells)) {
    const long line = csv.line();
    if (cells.size() != 2) {
      throw InputError(
          located(path, line, cells.size() > 2 ? 3 : static_cast<long>(cells.size()),
                  fmt::format("row has {} cells, expected 2 (asset,budget)", cells.size())));
    }
    const std::string name(trimmed(cells[0]));
    const auto found = column.find(name);
    if (found == column.end()) {
      throw InputError(
          located(path, line, 1, "asset '" + name + "' is not a column of the prices"));
    }
    const auto k = static_cast<std::size_t>(found->second);
    if (lines[k] != 0) {
      throw InputError(located(path, line, 1,
                               fmt::format("duplicate asset '{}' (also line {})", name, lines[k])));
    }
    lines[k] = line;
    const double budget = parse_cell_number(cells[1], path, {line, 2}, "budget of '" + name + "'");
    if (budget < 0.0) {
      throw InputError(
          located(path, line, 2, fmt::format("negative budget {} for '{}'", budget, name)));
    }
    budgets(found->second) = budget;
  }
  for (std::size_t i = 0; i < assets.size(); ++i) {
    if (lines[i] == 0) {
      throw InputError(
          located(path, csv.end_line(), 1,
                  "no budget for asset '" + assets[i] + "' (every asset of the prices needs one)"));
    }
  }
  const double sum = budgets.sum();  // as RiskParity sums them
  if (!(std::abs(sum - 1.0) <= 1e-12)) {
    throw InputError(
        fmt::format("{}: the budgets sum to {:.17g}, not 1 (within 1e-12)", path, sum));
  }
  return budgets;
}

// The streaming engines: returns, then rolling or EWMA moments (or a live `RollingShrinkage`,
// whose own window supplies the moments), and average dollar volume for liquidity.
class EstimateStream {
 public:
  EstimateStream(const MarketReader& reader, const EstimatorOptions& estimator,
                 const WeightsSetup& setup)
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
      // The unbiased dispersion is defined from the second return, as pandas ewm().cov().
      m_ewma.emplace(n, EwmaOptions{.decay = decay, .min_periods = 2}, reader.assets());
      if (setup.liquidity)
        m_ewma_adv.emplace(n, EwmaDollarVolumeOptions{.decay = decay}, reader.assets());
      m_rows_needed = 3;
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

// base → [CorrelationShrinkage] → [LiquidityScaled] → [Overlaid with WeightBounds, then
// VolatilityTarget].
AnyPolicy build_policy(const WeightsSetup& setup, Eigen::VectorXd budgets,
                       RollingShrinkage<double>* rolling, Index assets,
                       const std::vector<std::string>& names) {
  AnyPolicy policy = setup.base == WeightsSetup::Base::inverse_volatility
                         ? AnyPolicy(InverseVolatility<double>())
                         : AnyPolicy(RiskParity<double>({}, std::move(budgets)));
  if (setup.shrink) {
    policy = rolling != nullptr
                 ? AnyPolicy(CorrelationShrinkage<AnyPolicy>(std::move(policy), *rolling))
                 : AnyPolicy(CorrelationShrinkage<AnyPolicy>(
                       std::move(policy), ShrinkageTarget::scaled_identity, setup.intensity));
  }
  if (setup.liquidity)
    policy = AnyPolicy(LiquidityScaled<AnyPolicy>(std::move(policy), setup.liquidity_options));
  std::optional<WeightBounds<double>> bounds;
  if (setup.max_weight)
    bounds.emplace(assets, 0.0, *setup.max_weight, WeightBoundsOptions{}, &names);
  if (bounds && setup.vol_target) {
    return AnyPolicy(Overlaid(std::move(policy), std::move(*bounds),
                              VolatilityTarget<double>(*setup.vol_target)));
  }
  if (bounds)
    return AnyPolicy(Overlaid(std::move(policy), std::move(*bounds)));
  if (setup.vol_target)
    return AnyPolicy(Overlaid(std::move(policy), VolatilityTarget<double>(*setup.vol_target)));
  return policy;
}

// "<code>: <detail>" of a status that is not success.
std::string describe(const Status& status) {
  std::string text(to_string(status.code));
  if (status.detail != nullptr && *status.detail != '\0')
    text.append(": ").append(status.detail);
  return text;
}

void run_weights(const WeightsArguments& arguments, const CLI::App& app) {
  const WeightsSetup setup = checked_setup(arguments, app);
  MarketReader reader(arguments.input.prices, arguments.input.volumes_path(),
                      arguments.input.missing_policy());
  const Index n = reader.asset_count();
  const std::vector<std::string>& names = reader.assets();
  if (setup.max_weight && *setup.max_weight * static_cast<double>(n) < 1.0) {
    throw InputError(fmt::format(
        "--max-weight {} is infeasible for {} assets: {} x {} < 1 (the weights sum to 1)",
        *setup.max_weight, n, n, *setup.max_weight));
  }
  Eigen::VectorXd budgets;
  if (!arguments.budgets.empty())
    budgets = read_budgets(arguments.budgets, names);

  EstimateStream stream(reader, arguments.estimator, setup);
  AnyPolicy policy = build_policy(setup, std::move(budgets), stream.shrinkage(), n, names);

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
    stream.update(reader);
    if (!stream.ready())
      continue;
    if (first_ready < 0)
      first_ready = bar;
    if (setup.every > 0 && (bar - first_ready) % setup.every == 0)
      rebalance(last_date);
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
    rebalance(last_date);
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
  app->add_option("--policy", arguments->policy,
                  "'inverse-vol' (w ~ 1/vol), 'risk-parity' (equal or --budgets risk "
                  "contributions), 'shrinkage' (--inner on a shrunk covariance, see --shrinkage), "
                  "'liquidity' (--inner capped by liquidity capacity, needs --volumes)")
      ->required()
      ->check(CLI::IsMember({"inverse-vol", "risk-parity", "shrinkage", "liquidity"}));
  app->add_option("--inner", arguments->inner, "The policy inside --policy shrinkage or liquidity")
      ->check(CLI::IsMember({"risk-parity", "inverse-vol"}))
      ->capture_default_str();
  app->add_option("--shrinkage", arguments->shrinkage,
                  "Covariance shrinkage (required by --policy shrinkage; with --policy liquidity "
                  "it shrinks the inner policy's covariance): 'lw-constant-correlation' (Ledoit-"
                  "Wolf 2003), 'lw-identity' (Ledoit-Wolf 2004), 'oas', intensities estimated on "
                  "the live window (--window only); or a fixed intensity in [0, 1] toward the "
                  "scaled identity (average variance) x I")
      ->type_name("METHOD|X");
  app->add_option("--budgets", arguments->budgets,
                  "Risk budgets (CSV): a header asset,budget and one row per asset of the prices, "
                  "budgets >= 0 summing to 1 (within 1e-12); default: equal")
      ->type_name("FILE");
  app->add_option("--capital", arguments->capital,
                  "--policy liquidity: the capital C; asset i holds at most participation x "
                  "ADV_i / C of it, the excess goes pro rata to the others, what no asset can "
                  "absorb stays in cash")
      ->capture_default_str()
      ->type_name("X");
  app->add_option("--participation", arguments->participation,
                  "--policy liquidity: the fraction q of an asset's average dollar volume a "
                  "position may take")
      ->capture_default_str()
      ->type_name("X");
  app->add_option("--max-weight", arguments->max_weight,
                  "Cap every weight at X of the invested sum (exact proportional redistribution); "
                  "X x assets must be >= 1")
      ->type_name("X");
  app->add_option("--vol-target", arguments->vol_target,
                  "Scale the book to an annualised ex-ante volatility X (0.10 = 10%) on the "
                  "window's covariance, after --max-weight; needs --annualization")
      ->type_name("X");
  app->add_option("--annualization", arguments->annualization,
                  "Periods per year for --vol-target (252 for trading days); no default")
      ->type_name("A");
  app->add_option("--max-leverage", arguments->max_leverage,
                  "--vol-target: cap on the gross exposure sum |w| after scaling (1: no "
                  "borrowing, the volatility may stay below target)")
      ->capture_default_str()
      ->type_name("L");
  auto* every = app->add_option("--every", arguments->every,
                                "A row every K dates, from the first date with estimates (the "
                                "last date is printed only if it falls on that grid)")
                    ->check(CLI::PositiveNumber)
                    ->type_name("K");
  auto* all =
      app->add_flag("--all", arguments->all, "A row at every date with estimates (--every 1)");
  every->excludes(all);
  return {app, [arguments, app]() { run_weights(*arguments, *app); }};
}

}  // namespace dynweight::cli
