#pragma once

/// \file
/// The weighting-policy options shared by `dynweight weights` and `dynweight backtest`: the base
/// policy, correlation shrinkage, liquidity scaling, risk budgets, the weight cap and the
/// volatility target; their cross-checks and the `AnyPolicy` they assemble.

#include <CLI/CLI.hpp>
#include <Eigen/Core>
#include <optional>
#include <string>
#include <vector>

#include "dynweight/any_policy.hpp"
#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/estimators/rolling_shrinkage.hpp"
#include "dynweight/options.hpp"
#include "dynweight/overlays/volatility_target.hpp"
#include "dynweight/policies/liquidity_scaled.hpp"

namespace dynweight::cli {

/// `--policy`, `--inner`, `--shrinkage`, `--budgets`, `--participation`, `--max-weight`,
/// `--vol-target`, `--max-leverage` as given; `--capital` and `--annualization` are registered by
/// each command (their meaning differs), but stored here.
struct PolicyArguments {
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
};

/// The options of a parsed command line that decide the policy, checked against each other.
struct PolicySetup {
  enum class Base { inverse_volatility, risk_parity };
  Base base = Base::risk_parity;
  bool liquidity = false;
  bool shrink = false;
  std::optional<RollingShrinkageMethod> method;  // estimated on the live window
  double intensity = 0.0;                        // fixed, toward the scaled identity
  LiquidityOptions liquidity_options;
  std::optional<double> max_weight;
  std::optional<VolatilityTargetOptions> vol_target;
};

/// How the command uses `--capital`, `--annualization` and `--volumes`.
struct PolicyContext {
  /// `--capital` is read by `--policy liquidity` only (weights); false: it is always allowed (the
  /// backtest's starting capital, also the liquidity capital).
  bool capital_liquidity_only = true;
  /// `--annualization` is required whatever the policy (backtest), not only by `--vol-target`.
  bool annualization_required = false;
  /// The command's own option that also reads `--volumes` (backtest: "--max-participation"), or
  /// null: when it is given, `--volumes` is allowed whatever the policy.
  const char* volumes_reader = nullptr;
};

/// Registers the policy options of `PolicyArguments` (not `--capital` and `--annualization`).
void add_policy_options(CLI::App& app, PolicyArguments& arguments);

/// Throws `InputError` for a bad option, or one given without the option that reads it.
PolicySetup checked_policy_setup(const PolicyArguments& arguments,
                                 const EstimatorOptions& estimator, const CLI::App& app,
                                 const PolicyContext& context);

/// Throws `InputError` when `--max-weight` is infeasible for `assets` assets.
void check_max_weight(const PolicySetup& setup, Index assets);

/// `asset,budget` rows (header `asset,budget`), one per asset of the price file, in any order,
/// budgets >= 0 summing to 1 (within 1e-12); returned in the price file's column order.
Eigen::VectorXd read_budgets(const std::string& path, const std::vector<std::string>& assets);

/// base → [CorrelationShrinkage] → [LiquidityScaled] → [Overlaid with WeightBounds, then
/// VolatilityTarget]. With a live shrinkage method (`setup.method`), `rolling` is the
/// `RollingShrinkage` the policy reads; null leaves the shrinkage out of the policy (the
/// `DynamicWeighter` shrinks its own window then). An empty `budgets` means equal budgets.
AnyPolicy build_policy(const PolicySetup& setup, Eigen::VectorXd budgets,
                       RollingShrinkage<double>* rolling, Index assets,
                       const std::vector<std::string>& names);

/// "<code>: <detail>" of a status that is not success.
std::string describe(const Status& status);

/// Throws `InputError` unless `ok`.
void require(bool ok, const std::string& message);

}  // namespace dynweight::cli
