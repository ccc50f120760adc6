#include "dynweight/policy_options.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <string_view>
#include <system_error>
#include <utility>

#include "dynweight/book_reader.hpp"
#include "dynweight/csv_reader.hpp"
#include "dynweight/errors.hpp"
#include "dynweight/market_reader.hpp"
#include "dynweight/overlays/overlay.hpp"
#include "dynweight/overlays/weight_bounds.hpp"
#include "dynweight/policies/correlation_shrinkage.hpp"
#include "dynweight/policies/inverse_volatility.hpp"
#include "dynweight/policies/risk_parity.hpp"

namespace dynweight::cli {

namespace {

// "lw-constant-correlation" | "lw-identity" | "oas" | an intensity in [0, 1].
void parse_shrinkage(const std::string& text, PolicySetup& setup) {
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

void check_positive_option(const CLI::App& app, const char* option, double value) {
  if (app.count(option) > 0) {
    require(std::isfinite(value) && value > 0.0,
            fmt::format("{}: {} must be finite and > 0", option, value));
  }
}

}  // namespace

void require(bool ok, const std::string& message) {
  if (!ok)
    throw InputError(message);
}

void add_policy_options(CLI::App& app, PolicyArguments& arguments) {
  app.add_option("--policy", arguments.policy,
                 "'inverse-vol' (w ~ 1/vol), 'risk-parity' (equal or --budgets risk "
                 "contributions), 'shrinkage' (--inner on a shrunk covariance, see --shrinkage), "
                 "'liquidity' (--inner capped by liquidity capacity, needs --volumes)")
      ->required()
      ->check(CLI::IsMember({"inverse-vol", "risk-parity", "shrinkage", "liquidity"}));
  app.add_option("--inner", arguments.inner, "The policy inside --policy shrinkage or liquidity")
      ->check(CLI::IsMember({"risk-parity", "inverse-vol"}))
      ->capture_default_str();
  app.add_option("--shrinkage", arguments.shrinkage,
                 "Covariance shrinkage (required by --policy shrinkage; with --policy liquidity "
                 "it shrinks the inner policy's covariance): 'lw-constant-correlation' (Ledoit-"
                 "Wolf 2003), 'lw-identity' (Ledoit-Wolf 2004), 'oas', intensities estimated on "
                 "the live window (--window only); or a fixed intensity in [0, 1] toward the "
                 "scaled identity (average variance) x I")
      ->type_name("METHOD|X");
  app.add_option("--budgets", arguments.budgets,
                 "Risk budgets (CSV): a header asset,budget and one row per asset of the prices, "
                 "budgets >= 0 summing to 1 (within 1e-12); default: equal")
      ->type_name("FILE");
  app.add_option("--participation", arguments.participation,
                 "--policy liquidity: the fraction q of an asset's average dollar volume a "
                 "position may take")
      ->capture_default_str()
      ->type_name("X");
  app.add_option("--max-weight", arguments.max_weight,
                 "Cap every weight at X of the invested sum (exact proportional redistribution); "
                 "X x assets must be >= 1. With --policy liquidity: at X of capital, in the same "
                 "water-filling as the liquidity caps")
      ->type_name("X");
  app.add_option("--vol-target", arguments.vol_target,
                 "Scale the book to an annualised ex-ante volatility X (0.10 = 10%) on the "
                 "estimates' covariance (the window's, or the EWMA's with --halflife), after "
                 "--max-weight; needs --annualization. With --policy "
                 "liquidity it only scales down (levering up would pass the liquidity caps)")
      ->type_name("X");
  app.add_option("--max-leverage", arguments.max_leverage,
                 "--vol-target: cap on the gross exposure sum |w| after scaling (1: no "
                 "borrowing, the volatility may stay below target)")
      ->capture_default_str()
      ->type_name("L");
}

PolicySetup checked_policy_setup(const PolicyArguments& arguments,
                                 const EstimatorOptions& estimator, const CLI::App& app,
                                 const PolicyContext& context) {
  const auto given = [&app](const char* option) { return app.count(option) > 0; };
  PolicySetup setup;
  const std::string& policy = arguments.policy;
  setup.liquidity = policy == "liquidity";
  setup.shrink = policy == "shrinkage" || (setup.liquidity && given("--shrinkage"));
  const bool wrapper = policy == "shrinkage" || setup.liquidity;
  require(wrapper || !given("--inner"),
          "--inner is read by --policy shrinkage and --policy liquidity only");
  const std::string& base = wrapper ? arguments.inner : policy;
  setup.base = base == "inverse-vol" ? PolicySetup::Base::inverse_volatility
                                     : PolicySetup::Base::risk_parity;

  if (policy == "shrinkage")
    require(given("--shrinkage"), "--policy shrinkage needs --shrinkage");
  require(setup.shrink || !given("--shrinkage"),
          "--shrinkage is read by --policy shrinkage and --policy liquidity only");
  if (setup.shrink) {
    parse_shrinkage(arguments.shrinkage, setup);
    require(!setup.method || estimator.rolling(),
            "--shrinkage " + arguments.shrinkage +
                " estimates its intensity from the observations of a rolling window and needs "
                "--window; with --halflife give a fixed intensity in [0, 1] (e.g. --shrinkage "
                "0.3)");
  }

  require(!given("--budgets") || setup.base == PolicySetup::Base::risk_parity,
          "--budgets is read by risk parity only (--policy risk-parity, or --inner risk-parity)");

  require(!setup.liquidity || given("--volumes"),
          "--policy liquidity needs --volumes (average dollar volume)");
  const bool volumes_read =
      setup.liquidity || (context.volumes_reader != nullptr && given(context.volumes_reader));
  require(volumes_read || !given("--volumes"),
          context.volumes_reader == nullptr
              ? std::string("--volumes is read by --policy liquidity only")
              : fmt::format("--volumes is read by --policy liquidity and {} only",
                            context.volumes_reader));
  require(setup.liquidity || !given("--participation"),
          "--participation is read by --policy liquidity only");
  if (context.capital_liquidity_only)
    require(setup.liquidity || !given("--capital"), "--capital is read by --policy liquidity only");
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

  if (context.annualization_required) {
    require(given("--annualization"),
            "--annualization is required (periods per year, e.g. 252 for daily bars, 12 for "
            "monthly): there is no implicit default");
    check_positive_option(app, "--annualization", arguments.annualization);
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
    require(!given("--max-leverage"), "--max-leverage is read by --vol-target only");
    if (!context.annualization_required)
      require(!given("--annualization"), "--annualization is read by --vol-target only");
  }
  return setup;
}

void check_max_weight(const PolicySetup& setup, Index assets) {
  if (setup.max_weight && *setup.max_weight * static_cast<double>(assets) < 1.0) {
    throw InputError(fmt::format(
        "--max-weight {} is infeasible for {} assets: {} x {} < 1 (the weights sum to 1)",
        *setup.max_weight, assets, assets, *setup.max_weight));
  }
}

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

AnyPolicy build_policy(const PolicySetup& setup, Eigen::VectorXd budgets,
                       RollingShrinkage<double>* rolling, Index assets,
                       const std::vector<std::string>& names) {
  AnyPolicy policy = setup.base == PolicySetup::Base::inverse_volatility
                         ? AnyPolicy(InverseVolatility<double>())
                         : AnyPolicy(RiskParity<double>({}, std::move(budgets)));
  if (setup.shrink && (rolling != nullptr || !setup.method)) {
    policy = rolling != nullptr
                 ? AnyPolicy(CorrelationShrinkage<AnyPolicy>(std::move(policy), *rolling))
                 : AnyPolicy(CorrelationShrinkage<AnyPolicy>(
                       std::move(policy), ShrinkageTarget::scaled_identity, setup.intensity));
  }
  // Liquidity capacity is a hard cap, which an overlay after it must not undo: `WeightBounds`
  // would move weight onto assets at capacity and a volatility target would lever them past it.
  // So under liquidity the weight cap joins the capacities in one water-filling, and the target
  // only ever scales down.
  std::optional<VolatilityTargetOptions> vol_target = setup.vol_target;
  if (setup.liquidity) {
    LiquidityOptions options = setup.liquidity_options;
    if (setup.max_weight)
      options.max_weight = *setup.max_weight;
    if (vol_target)
      vol_target->max_scale = 1.0;
    policy = AnyPolicy(LiquidityScaled<AnyPolicy>(std::move(policy), options));
  }
  std::optional<WeightBounds<double>> bounds;
  if (setup.max_weight && !setup.liquidity)
    bounds.emplace(assets, 0.0, *setup.max_weight, WeightBoundsOptions{}, &names);
  if (bounds && vol_target) {
    return AnyPolicy(
        Overlaid(std::move(policy), std::move(*bounds), VolatilityTarget<double>(*vol_target)));
  }
  if (bounds)
    return AnyPolicy(Overlaid(std::move(policy), std::move(*bounds)));
  if (vol_target)
    return AnyPolicy(Overlaid(std::move(policy), VolatilityTarget<double>(*vol_target)));
  return policy;
}

std::string describe(const Status& status) {
  std::string text(to_string(status.code));
  if (status.detail != nullptr && *status.detail != '\0')
    text.append(": ").append(status.detail);
  return text;
}

}  // namespace dynweight::cli
