#pragma once

/// \file
/// `DynamicWeighter`: the per-bar pipeline, bars in, targets and trades out, with calendar, drift
/// and volatility-regime rebalance triggers.

#include <Eigen/Core>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/estimators/rolling_shrinkage.hpp"
#include "dynweight/estimators/shrinkage.hpp"
#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/policy.hpp"
#include "dynweight/rebalance/rebalancer.hpp"
#include "dynweight/stats/dollar_volume.hpp"
#include "dynweight/stats/ewma_decay.hpp"
#include "dynweight/stats/ewma_moments.hpp"
#include "dynweight/stats/returns.hpp"
#include "dynweight/stats/rolling_moments.hpp"

namespace dynweight {

/// Why a bar rebalanced: a bitmask of the triggers that fired on it.
enum class RebalanceReason : std::uint8_t {
  none = 0,
  initial = 1,   ///< the first ready bar (no targets yet)
  calendar = 2,  ///< every `every` ready bars
  drift = 4,     ///< max_i |w_i − w̃_i| > `drift_band` (w̃: the weights the last plan left)
  regime = 8,    ///< σ_short / σ_long of the portfolio's return rose above `regime.upper`
};

constexpr RebalanceReason operator|(RebalanceReason a, RebalanceReason b) noexcept {
  return static_cast<RebalanceReason>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
constexpr RebalanceReason operator&(RebalanceReason a, RebalanceReason b) noexcept {
  return static_cast<RebalanceReason>(static_cast<std::uint8_t>(a) & static_cast<std::uint8_t>(b));
}
constexpr RebalanceReason& operator|=(RebalanceReason& a, RebalanceReason b) noexcept {
  return a = a | b;
}
/// True when `mask` holds every bit of `reason` (and `reason` is not `none`).
constexpr bool has(RebalanceReason mask, RebalanceReason reason) noexcept {
  return reason != RebalanceReason::none && (mask & reason) == reason;
}

/// Human-readable name of one reason (a single bit, or `none`).
constexpr std::string_view to_string(RebalanceReason reason) noexcept {
  switch (reason) {
    case RebalanceReason::none:
      return "none";
    case RebalanceReason::initial:
      return "initial";
    case RebalanceReason::calendar:
      return "calendar";
    case RebalanceReason::drift:
      return "drift";
    case RebalanceReason::regime:
      return "regime";
  }
  return "several";
}

/// The reasons set in `reasons`, in the order initial, calendar, drift, regime, joined by
/// `separator` ("calendar|regime"); empty for `none`.
inline std::string to_string(RebalanceReason reasons, std::string_view separator) {
  std::string text;
  for (const RebalanceReason reason : {RebalanceReason::initial, RebalanceReason::calendar,
                                       RebalanceReason::drift, RebalanceReason::regime}) {
    if (has(reasons, reason))
      text.append(text.empty() ? "" : separator).append(to_string(reason));
  }
  return text;
}

/// The volatility-regime trigger of `DynamicWeighter`.
struct RegimeOptions {
  /// Off by default.
  bool enabled = false;
  /// Half-lives (bars) of the short and the long EWMA volatility, 0 < short < long.
  double short_halflife = 10.0;
  double long_halflife = 100.0;
  /// Fires (once) when σ_s/σ_l > upper; re-armed when the ratio falls below lower < upper.
  double upper = 1.5;
  double lower = 1.2;
  /// Portfolio returns the EWMAs must have seen before the ratio is reported (and can fire), >= 1.
  Index min_observations = 20;

  /// Throws `dynweight::Error` unless the half-lives are finite with 0 < short < long, the
  /// thresholds finite with 0 < lower < upper, and min_observations >= 1 (checked when enabled).
  void validate() const {
    if (!enabled)
      return;
    const CheckContext context{"RegimeOptions"};
    check_parameter(std::isfinite(short_halflife) && short_halflife > 0, context, "short_halflife",
                    short_halflife, "finite and > 0");
    check_parameter(std::isfinite(long_halflife) && long_halflife > short_halflife, context,
                    "long_halflife", long_halflife, "finite and > short_halflife");
    check_parameter(std::isfinite(lower) && lower > 0, context, "lower", lower, "finite and > 0");
    check_parameter(std::isfinite(upper) && upper > lower, context, "upper", upper,
                    "finite and > lower");
    check_parameter(min_observations >= 1, context, "min_observations",
                    static_cast<double>(min_observations), ">= 1");
  }
};

/// Options of `DynamicWeighter`, with their defaults.
struct DynamicWeighterOptions {
  /// The rolling window of returns (W, min_periods, resync), as `RollingMoments`.
  RollingOptions moments = {};
  /// EWMA estimates instead of the rolling window (then `moments` is neither read nor
  /// validated): the mean, covariance and volatility of an `EwmaMoments` with these options, and
  /// with `volumes` the average dollar volume of an `EwmaDollarVolume` with the same decay,
  /// `adjust` and `min_periods`. Live shrinkage needs the window: not with `shrinkage`. Set
  /// `min_periods`: with `EwmaOptions`' default (pandas' 0) the weighter is ready at the second
  /// return, on a covariance of rank 1 (a window waits until it is full).
  std::optional<EwmaOptions> ewma = std::nullopt;
  ReturnKind returns = ReturnKind::simple;
  /// Live shrinkage of the window's covariance (kept by the weighter, see `DynamicWeighter`);
  /// none by default.
  std::optional<RollingShrinkageMethod> shrinkage = std::nullopt;
  /// True: every bar comes with traded volumes (shares), and the weighter keeps the average dollar
  /// volume over the same window, or with the same decay (for `LiquidityScaled` and the
  /// participation cap).
  bool volumes = false;
  /// Calendar trigger: rebalance every this many ready bars, counted from the first; 0: off.
  Index every = 0;
  /// Drift trigger: rebalance when max_i |w_i − w̃_i| > drift_band, w̃ the weights the last plan
  /// left the book at (see `DynamicWeighter`); 0: off.
  double drift_band = 0.0;
  RegimeOptions regime = {};
  /// At least this many bars from one rebalance to the next (a trigger inside the gap is held
  /// back, see `BarResult::held_back`); 0: no minimum.
  Index min_bars_between = 0;
  /// The `Rebalancer`'s options (lots, minimum orders, costs, cash buffer, participation cap).
  RebalanceOptions rebalance = {};
  /// Cash of the book at construction (no shares), in the currency of prices; finite and > 0.
  double initial_cash = 1e6;
  /// True (backtest): each plan is executed at the bar's prices. False (live): the book changes
  /// only through `set_book`.
  bool execute_trades = true;

  /// Throws `dynweight::Error` on any invalid value, when the rebalancer has a participation cap
  /// but `volumes` is false (the cap needs ADV), and when both `ewma` and `shrinkage` are set.
  void validate() const {
    if (ewma)
      ewma->validate();
    else
      moments.validate();
    regime.validate();
    rebalance.validate();
    const CheckContext context{"DynamicWeighterOptions"};
    if (shrinkage.has_value()) {
      const auto method = *shrinkage;
      check_parameter(method == RollingShrinkageMethod::ledoit_wolf ||
                          method == RollingShrinkageMethod::oas ||
                          method == RollingShrinkageMethod::constant_correlation,
                      context, "shrinkage", static_cast<double>(static_cast<int>(method)),
                      "a RollingShrinkageMethod");
    }
    check_parameter(returns == ReturnKind::simple || returns == ReturnKind::log, context, "returns",
                    static_cast<double>(static_cast<int>(returns)),
                    "ReturnKind::simple or ReturnKind::log");
    check_parameter(every >= 0, context, "every", static_cast<double>(every), ">= 0 (0: off)");
    check_parameter(std::isfinite(drift_band) && drift_band >= 0, context, "drift_band", drift_band,
                    "finite and >= 0 (0: off)");
    check_parameter(min_bars_between >= 0, context, "min_bars_between",
                    static_cast<double>(min_bars_between), ">= 0");
    check_parameter(std::isfinite(initial_cash) && initial_cash > 0, context, "initial_cash",
                    initial_cash, "finite and > 0");
    if (ewma && ewma->estimator == EwmaEstimator::pandas && !ewma->bias) {
      // α = 1 weighs the last return alone: the bias-corrected covariance is 0/0 for good.
      check_parameter(ewma->decay.alpha() < 1.0, context, "ewma.decay (alpha)", ewma->decay.alpha(),
                      "< 1 with the bias-corrected pandas estimator (at 1 its covariance is "
                      "undefined)");
    }
    if (ewma && shrinkage) {
      check_parameter(false, context, "shrinkage",
                      static_cast<double>(static_cast<int>(*shrinkage)),
                      "unset with ewma (live shrinkage is of the rolling window)");
    }
    check_parameter(volumes || !std::isfinite(rebalance.max_participation), context,
                    "rebalance.max_participation", rebalance.max_participation,
                    "infinite unless volumes is true (the cap needs ADV)");
  }
};

/// What one bar did. Vectors (targets, the plan, the book) are the weighter's accessors.
template <FloatingScalar Scalar>
struct BarResult {
  /// 0-based index of the bar among those accepted.
  Index bar = -1;
  /// True when the policy gave targets and the rebalancer planned trades on this bar.
  bool rebalanced = false;
  /// The triggers that fired on this bar (whether or not it rebalanced).
  RebalanceReason reasons = RebalanceReason::none;
  /// A trigger fired but the last rebalance was fewer than `min_bars_between` bars ago.
  bool held_back = false;
  /// The policy gave targets, but a target or holding was 2⁵³ lots or more (a price or lot size
  /// too small for the book): nothing was traded, and `status` says so.
  bool uncountable_lots = false;
  /// The policy's status on a rebalance bar (the shrinkage's, if worse); `not_ready` while the
  /// window fills; otherwise `success`.
  Status status = Status::not_ready("no bar yet");
  /// r_p = w_bookᵀ r_t of this bar, the book held since the previous bar; NaN on the first bar.
  Scalar portfolio_return = std::numeric_limits<Scalar>::quiet_NaN();
  /// σ_short / σ_long of r_p; NaN when the regime trigger is off or still warming up.
  Scalar regime_ratio = std::numeric_limits<Scalar>::quiet_NaN();
  /// Σ shares·price + cash at this bar's prices, after its trades.
  Scalar value = 0;
};

/// The per-bar pipeline: prices (and volumes) in, target weights, trades and the updated book out.
///
/// **Each bar** (`update(prices[, volumes])`):
///  1. The whole bar is validated first (sizes, prices finite and > 0, volumes finite and >= 0,
///     price × volume finite and within the ADV engine's `input_limit()`, the returns it makes
///     finite and within the window engine's, with the regime trigger on the portfolio return
///     within what its variances can hold, the book's value at its prices finite and > 0): a bad
///     bar throws `dynweight::Error` and leaves every engine, the book and the trigger state
///     unchanged (strong guarantee).
///  2. `ReturnCalculator` → r_t; the portfolio return r_p = w_bookᵀ r_t (w_book: the book's
///     weights at the previous bar's close, cash earning 0; exact for simple returns, first-order
///     for log returns); the rolling window of W returns (`RollingMoments`, or the `moments()` of
///     a `RollingShrinkage` when shrinkage is on: one rank-2 pass either way) or, with
///     `options.ewma`, an `EwmaMoments` (one rank-1 pass); the average dollar volume over the same
///     W bars, or with the same decay, when `volumes`.
///  3. The book's weights at the new prices, w_i = shares_i p_i / V, V = Σ shares·p + cash.
///  4. Triggers (below). On a rebalance bar: the estimates (mean, volatility, covariance, ADV) go
///     to the policy, which also gets w_book as previous weights when it takes them (an `Overlaid`
///     chain with a `TurnoverLimit`); its targets w* go to the `Rebalancer` with the book (and ADV
///     in shares, ADV$ / price, when a participation cap is set); with `execute_trades` the plan is
///     executed at the bar's prices: shares += shares_delta, cash = cash_after.
///
/// **Shrinkage** is the weighter's own: with `options.shrinkage` it keeps a `RollingShrinkage` of
/// the window and, on rebalance bars only, writes Σ̂ (full) into a member buffer that the estimates
/// hand to the policy as the covariance, with √diag Σ̂ as the volatility; the policy, and every
/// overlay after it (the volatility target included), see the same Σ̂. Use a plain policy
/// (`Overlaid<RiskParity, WeightBounds, VolatilityTarget, TurnoverLimit>`); wrapping it in
/// `CorrelationShrinkage` is for a fixed intensity only (its live-estimator form would hold a
/// pointer into the weighter, and its overlays would still read the unshrunk covariance). Without
/// shrinkage the covariance is the window's (ddof 1, lower triangle).
///
/// **EWMA estimates** (`options.ewma`): the policy gets the mean, covariance (lower triangle) and
/// volatility of an `EwmaMoments` of the returns (pandas `ewm(...)` or RiskMetrics, as its
/// options say) instead of the window's, and the ADV of an `EwmaDollarVolume` with the same
/// decay; ready once the EWMA is (`min_periods`) and has two returns. They react to a turbulent
/// bar at once (a half-life of 10 bars puts 6.7% of the weight on the newest return, a window of
/// 250 0.4%). No lineage: a warm risk parity takes its own Σx.
///
/// **Triggers**, any combination, each reported in `BarResult::reasons`:
///  - *not ready*: nothing fires while the window (and ADV) fill: status `not_ready`;
///  - *initial*: the first ready bar, and every bar until a rebalance succeeded;
///  - *calendar* (`every` = k > 0): ready bars 0, k, 2k, ... counted from the first ready bar, a
///    fixed schedule that other triggers do not shift; a calendar bar that does not rebalance (see
///    below) leaves the trigger pending, firing on every bar until one does;
///  - *drift* (`drift_band` > 0): max_i |w_i − w̃_i| > band, w the book's weights at the bar's
///    prices before trading, w̃ the weights the last rebalance's plan leaves the book at
///    (`planned_weights()`, its `weights_after`; cash implied in both). These are the targets as
///    far as cash, lots, bands and participation allow: measured from the targets themselves, a
///    book that cannot reach them (targets over 100% without borrowing, lots of a few percent of
///    the book) would be outside the band on every bar and trade nothing;
///  - *regime* (`regime.enabled`): r_p feeds two zero-mean EWMA variances, half-lives h_s < h_l,
///    σ²_t = Σ_k λ^{t−k} r_k² / Σ_k λ^{t−k} (λ = 2^{−1/h}; pandas
///    `(r_p**2).ewm(halflife=h, adjust=True).mean()`), only on bars where the book held a risky
///    position (so the all-cash warm-up adds no zeros). Once they have `min_observations`, the
///    ratio σ_s/σ_l is reported; while armed (at start) it fires when the ratio > `upper`, then
///    disarms until the ratio falls below `lower`. Per-period volatilities: annualisation cancels
///    in the ratio (the `VolatilityTarget` overlay states its own).
///  - `min_bars_between`: a trigger that fires fewer bars after the last rebalance is held back
///    (`held_back`) and not queued: drift and regime, being states, fire again on the next bar.
/// Triggers are consumed only when the bar rebalances: if the policy leaves its weights unwritten
/// (its status says why), or a target or holding is 2⁵³ lots or more, past what the rebalancer
/// counts exactly (status `numerical_issue`), nothing is traded and the triggers stay pending. The
/// window is ready with two returns at least, whatever `moments.min_periods` says (one return has
/// no variance).
///
/// **Errors.** Beyond bad bars (above), a policy, overlay or rebalancer that throws (a
/// configuration error, e.g. a policy that needs an estimate the weighter does not provide)
/// propagates after the statistics took the bar; the book and the targets are then unchanged, and
/// so is the trigger state, but that a calendar trigger of the bar stays pending for the next.
///
/// **Cost.** Per bar O(N²): one rank-2 update of the window (plus O(N) for returns, ADV, drift and
/// regime); a rebalance bar adds the policy (warm-started risk parity: a few passes over Σ), the
/// overlays and the plan (O(N)), and with shrinkage one N×N write of Σ̂. Every buffer is sized at
/// construction; after the policy's first call (which sizes its workspace) no bar allocates.
///
/// \code
/// using namespace dynweight;
/// Overlaid policy(RiskParity<double>(), WeightBounds<double>(n, 0.0, 0.10),
///                 VolatilityTarget<double>({.target = 0.10, .annualization = 252}),
///                 TurnoverLimit<double>({.max_turnover = 0.05}));
/// DynamicWeighter weighter(n, std::move(policy),
///                          {.moments = {.window = 250},
///                           .shrinkage = RollingShrinkageMethod::ledoit_wolf,
///                           .every = 21, .drift_band = 0.02,
///                           .regime = {.enabled = true, .short_halflife = 5,
///                                      .long_halflife = 60, .upper = 1.5, .lower = 1.2}});
/// for (Eigen::Index t = 0; t < prices.cols(); ++t) {
///   const auto& bar = weighter.update(prices.col(t));
///   if (bar.rebalanced)
///     send(weighter.plan().shares_delta);  // targets(), book_weights(), value() ...
/// }
/// \endcode
template <WeightingPolicy Policy>
class DynamicWeighter {
 public:
  using Scalar = typename Policy::Scalar;
  using VectorType = Vector<Scalar>;
  using MatrixType = Matrix<Scalar>;
  using Result = BarResult<Scalar>;

  /// A weighter of `assets` assets with `policy` (taken by value); `names` (optional, one per
  /// asset) label errors and reach the policy through the estimates.
  DynamicWeighter(Index assets, Policy policy, DynamicWeighterOptions options = {},
                  AssetNames names = {})
      : m_options(validated(options, assets, names)),
        m_names(std::move(names)),
        m_policy(std::move(policy)),
        m_returns(assets, options.returns, m_names),
        m_rebalancer(assets, options.rebalance, m_names.empty() ? nullptr : &m_names),
        m_shares(VectorType::Zero(assets)),
        m_cash(static_cast<Scalar>(options.initial_cash)),
        m_book_weights(VectorType::Zero(assets)),
        m_targets(assets),
        m_planned(assets),
        m_candidate(assets),
        m_scratch(assets),
        m_adv_shares(assets) {
    if (options.ewma) {
      m_ewma.emplace(assets, *options.ewma, m_names);
    } else if (options.shrinkage.has_value()) {
      m_shrinkage.emplace(assets, options.moments, *options.shrinkage, m_names);
      m_shrunk.resize(assets, assets);
      m_shrunk_volatility.resize(assets);
    } else {
      m_moments.emplace(assets, options.moments, m_names);
    }
    if (options.volumes && options.ewma) {
      m_ewma_dollar_volume.emplace(
          assets,
          EwmaDollarVolumeOptions{options.ewma->decay, options.ewma->adjust,
                                  options.ewma->min_periods},
          m_names);
    } else if (options.volumes) {
      m_dollar_volume.emplace(
          assets, RollingDollarVolumeOptions{options.moments.window, options.moments.min_periods},
          m_names);
    }
    if (options.regime.enabled) {
      m_lambda_short =
          Scalar(1) -
          static_cast<Scalar>(EwmaDecay::from_halflife(options.regime.short_halflife).alpha());
      m_lambda_long =
          Scalar(1) -
          static_cast<Scalar>(EwmaDecay::from_halflife(options.regime.long_halflife).alpha());
    }
    m_targets.setConstant(nan());
    m_planned.setConstant(nan());
    m_value = m_cash;
  }

  /// One bar of prices (finite, > 0), when the weighter was built without `volumes`.
  const Result& update(const Eigen::Ref<const VectorType>& prices) {
    if (m_options.volumes) {
      detail::fail(context(), "volumes were configured (options.volumes), so every bar needs them");
    }
    return step(prices, nullptr);
  }

  /// One bar of prices (finite, > 0) and traded volumes in shares (finite, >= 0).
  const Result& update(const Eigen::Ref<const VectorType>& prices,
                       const Eigen::Ref<const VectorType>& volumes) {
    if (!m_options.volumes) {
      detail::fail(context(),
                   "volumes were given but not configured (set options.volumes to use them)");
    }
    return step(prices, &volumes);
  }

  /// Replaces the book (shares per asset, finite; cash, finite), e.g. with the broker's state
  /// before a bar. Its value at the latest prices (when there are any) must be finite and > 0.
  /// Targets and triggers are kept: the next bar's drift is measured on the new book.
  void set_book(const Eigen::Ref<const VectorType>& shares, Scalar cash) {
    const CheckContext check{"DynamicWeighter::set_book", m_names};
    check_size(check, "shares", shares.size(), assets());
    check_finite(check, "shares", shares);
    check_parameter(std::isfinite(cash), check, "cash", static_cast<double>(cash), "finite");
    if (m_returns.bars() > 0) {
      const Scalar value = shares.dot(m_returns.last_prices()) + cash;
      check_parameter(std::isfinite(value) && value > 0, check, "book value at the latest prices",
                      static_cast<double>(value), "finite and > 0");
    }
    m_shares = shares;
    m_cash = cash;
    if (m_returns.bars() > 0)
      refresh_book_weights(m_returns.last_prices());
    else
      m_value = cash;
  }

  /// Per-asset lot sizes of the rebalancer (finite, > 0).
  void set_lot_sizes(const Eigen::Ref<const VectorType>& lot_sizes) {
    m_rebalancer.set_lot_sizes(lot_sizes);
  }

  [[nodiscard]] Index assets() const { return m_shares.size(); }
  [[nodiscard]] const DynamicWeighterOptions& options() const { return m_options; }
  [[nodiscard]] const AssetNames& names() const { return m_names; }
  /// Bars accepted.
  [[nodiscard]] Index bars() const { return m_bars; }
  /// True once the window (and ADV) are ready: rebalances may happen.
  [[nodiscard]] bool ready() const {
    // Two returns at least, whatever `min_periods` says: one return has no variance (NaN), which
    // no policy takes.
    const bool window = m_ewma        ? m_ewma->ready() && m_ewma->bars() >= 2
                        : m_shrinkage ? m_shrinkage->ready()
                                      : m_moments->ready() && m_moments->count() >= 2;
    const bool adv = m_dollar_volume        ? m_dollar_volume->ready()
                     : m_ewma_dollar_volume ? m_ewma_dollar_volume->ready()
                                            : true;
    return window && adv;
  }

  /// The latest bar's result.
  [[nodiscard]] const Result& result() const { return m_result; }
  /// Targets w* of the last rebalance (fractions of value, cash implied); NaN before the first.
  [[nodiscard]] const VectorType& targets() const { return m_targets; }
  [[nodiscard]] bool has_targets() const { return m_has_targets; }
  /// The weights the last rebalance's plan leaves the book at, at that bar's prices (its
  /// `weights_after`): what the drift trigger measures from. NaN before the first rebalance.
  [[nodiscard]] const VectorType& planned_weights() const { return m_planned; }
  /// The last plan (`Rebalancer::result()`); current only when `result().rebalanced`.
  [[nodiscard]] const TradePlan<Scalar>& plan() const { return m_rebalancer.result(); }
  /// The book's shares and cash.
  [[nodiscard]] const VectorType& shares() const { return m_shares; }
  [[nodiscard]] Scalar cash() const { return m_cash; }
  /// The book's weights at the latest prices, after the latest bar's trades (zero before a bar).
  [[nodiscard]] const VectorType& book_weights() const { return m_book_weights; }
  /// Σ shares·price + cash at the latest prices (the cash alone before a bar).
  [[nodiscard]] Scalar value() const { return m_value; }
  /// Bar index of the last rebalance; -1 before the first.
  [[nodiscard]] Index last_rebalance_bar() const { return m_last_rebalance; }
  /// Whether the regime trigger can fire (it disarms when it fires, re-arms below `lower`).
  [[nodiscard]] bool regime_armed() const { return m_regime_armed; }
  /// The short and long EWMA volatilities of r_p, per period (NaN before an observation).
  [[nodiscard]] Scalar regime_short_volatility() const {
    return std::sqrt(m_short_sum / m_short_weight);
  }
  [[nodiscard]] Scalar regime_long_volatility() const {
    return std::sqrt(m_long_sum / m_long_weight);
  }

  [[nodiscard]] Policy& policy() { return m_policy; }
  [[nodiscard]] const Policy& policy() const { return m_policy; }
  [[nodiscard]] const ReturnCalculator<Scalar>& returns() const { return m_returns; }
  /// The rolling window of returns (the shrinkage's own when shrinkage is on). Throws
  /// `dynweight::Error` with EWMA estimates (see `ewma()`).
  [[nodiscard]] const RollingMoments<Scalar>& moments() const {
    if (m_ewma)
      detail::fail(CheckContext{"DynamicWeighter::moments", m_names},
                   "the estimates are EWMA (options.ewma): there is no rolling window; see ewma()");
    return m_shrinkage ? m_shrinkage->moments() : *m_moments;
  }
  /// The EWMA estimates, or null without `options.ewma`.
  [[nodiscard]] const EwmaMoments<Scalar>* ewma() const { return m_ewma ? &*m_ewma : nullptr; }
  /// The live shrinkage, or null when off.
  [[nodiscard]] const RollingShrinkage<Scalar>* shrinkage() const {
    return m_shrinkage ? &*m_shrinkage : nullptr;
  }
  /// Σ̂ and the shrinkage result of the last rebalance (shrinkage on).
  [[nodiscard]] const MatrixType& shrunk_covariance() const { return m_shrunk; }
  [[nodiscard]] const ShrinkageResult& shrinkage_result() const { return m_shrinkage_result; }
  /// The rolling average dollar volume, or null without `volumes` or with EWMA estimates.
  [[nodiscard]] const RollingDollarVolume<Scalar>* dollar_volume() const {
    return m_dollar_volume ? &*m_dollar_volume : nullptr;
  }
  /// The EWMA average dollar volume, or null without `volumes` or without EWMA estimates.
  [[nodiscard]] const EwmaDollarVolume<Scalar>* ewma_dollar_volume() const {
    return m_ewma_dollar_volume ? &*m_ewma_dollar_volume : nullptr;
  }
  [[nodiscard]] const Rebalancer<Scalar>& rebalancer() const { return m_rebalancer; }

 private:
  static constexpr Scalar nan() { return std::numeric_limits<Scalar>::quiet_NaN(); }

  static DynamicWeighterOptions validated(const DynamicWeighterOptions& options, Index assets,
                                          const AssetNames& names) {
    options.validate();
    const CheckContext check{"DynamicWeighter"};
    check_parameter(assets >= 1, check, "assets", static_cast<double>(assets), ">= 1");
    check_names(check, names, assets);
    return options;
  }

  [[nodiscard]] CheckContext context() const {
    return CheckContext{"DynamicWeighter::update", m_names, m_bars};
  }

  // Everything that could make an engine throw, checked before any changes (the strong guarantee
  // across engines). Returns the book's value at `prices`.
  Scalar validate_bar(const Eigen::Ref<const VectorType>& prices,
                      const Eigen::Ref<const VectorType>* volumes) {
    const CheckContext check = context();
    check_size(check, "prices", prices.size(), assets());
    check_positive(check, "prices", prices);
    if (volumes != nullptr) {
      check_size(check, "volumes", volumes->size(), assets());
      check_nonnegative(check, "volumes", *volumes);
      check_magnitude(check, "dollar volume (prices * volumes)", prices.cwiseProduct(*volumes),
                      static_cast<double>(m_dollar_volume ? m_dollar_volume->input_limit()
                                                          : m_ewma_dollar_volume->input_limit()),
                      "larger values would overflow the average's sums");
    }
    if (m_returns.bars() > 0 && m_returns.kind() == ReturnKind::simple) {
      // ReturnCalculator's simple return, (p − p_prev) / p_prev: infinite when p_prev is tiny, and
      // it must be no larger than the window's engine can hold (a price ratio of ~1e150: bad
      // data). Log returns of finite positive prices stay within ±1500, far inside it.
      const VectorType& last = m_returns.last_prices();
      m_scratch = (prices - last).cwiseQuotient(last);
      if (m_ewma) {
        check_magnitude(check, "returns (from prices)", m_scratch,
                        static_cast<double>(m_ewma->input_limit()),
                        "larger values would overflow the EWMA's sums");
      } else if (m_shrinkage) {
        check_magnitude(check, "returns (from prices)", m_scratch,
                        static_cast<double>(m_shrinkage->input_limit()),
                        "larger values would overflow the window's fourth-power sums");
      } else {
        check_magnitude(check, "returns (from prices)", m_scratch,
                        static_cast<double>(m_moments->input_limit()),
                        "larger values would overflow the window's sums");
      }
    }
    if (m_options.regime.enabled && m_returns.bars() > 0 && m_book_weights.template lpNorm<1>() > 0)
      check_portfolio_return(check, prices);
    const Scalar value = m_shares.dot(prices) + m_cash;
    check_parameter(std::isfinite(value) && value > 0, check,
                    "book value at this bar's prices (shares · prices + cash)",
                    static_cast<double>(value), "finite and > 0 (replace the book with set_book)");
    return value;
  }

  // The regime trigger's variances sum r_p² with weights up to 1/(1 − λ_long): |r_p| must stay
  // below √(max (1 − λ_long)/2) to keep them finite (else they would be infinite for good). Simple
  // returns (in m_scratch) give r_p itself; log returns a bound, ‖w‖₁ max_i |ln p_i − ln p'_i| <=
  // ‖w‖₁ max(ln max p − ln min p', ln max p' − ln min p), from four logarithms rather than N.
  void check_portfolio_return(const CheckContext& check,
                              const Eigen::Ref<const VectorType>& prices) const {
    Scalar size;
    if (m_returns.kind() == ReturnKind::simple) {
      size = std::abs(m_book_weights.dot(m_scratch));
    } else {
      const VectorType& last = m_returns.last_prices();
      const Scalar spread = std::max(std::log(prices.maxCoeff()) - std::log(last.minCoeff()),
                                     std::log(last.maxCoeff()) - std::log(prices.minCoeff()));
      size = m_book_weights.template lpNorm<1>() * spread;
    }
    const Scalar limit =
        std::sqrt(std::numeric_limits<Scalar>::max() * (Scalar(1) - m_lambda_long) / Scalar(2));
    if (size <= limit)
      return;
    detail::fail(check, detail::concat(
                            {"the portfolio return (book weights · returns)", detail::at_bar(check),
                             " reaches ", detail::format_value(static_cast<double>(size)),
                             "; must be within ±", detail::format_value(static_cast<double>(limit)),
                             " (larger would overflow the regime trigger's variances)"}));
  }

  const Result& step(const Eigen::Ref<const VectorType>& prices,
                     const Eigen::Ref<const VectorType>* volumes) {
    const Scalar value_before = validate_bar(prices, volumes);
    // From here on, nothing the bar brings can throw.
    Result result;
    result.bar = m_bars;
    if (m_returns.update(prices)) {
      const VectorType& r = m_returns.returns();
      result.portfolio_return = m_book_weights.dot(r);
      if (m_options.regime.enabled && m_book_weights.template lpNorm<1>() > 0)
        observe_regime(result.portfolio_return);
      if (m_ewma)
        m_ewma->update(r);
      else if (m_shrinkage)
        m_shrinkage->update(r);
      else
        m_moments->update(r);
    }
    if (m_dollar_volume)
      m_dollar_volume->update(prices, *volumes);
    if (m_ewma_dollar_volume)
      m_ewma_dollar_volume->update(prices, *volumes);
    ++m_bars;
    m_value = value_before;
    refresh_book_weights(prices, value_before);
    result.regime_ratio = regime_ratio();
    if (!std::isnan(result.regime_ratio) &&
        result.regime_ratio < static_cast<Scalar>(m_options.regime.lower))
      m_regime_armed = true;
    result.value = m_value;

    if (!ready()) {
      result.status = Status::not_ready(m_ewma ? "the EWMA estimates are not ready yet"
                                               : "the rolling window is not full yet");
      m_result = result;
      return m_result;
    }
    result.status = Status{};
    result.reasons = fired_triggers(result.regime_ratio);
    ++m_ready_bars;
    if (result.reasons == RebalanceReason::none) {
      m_result = result;
      return m_result;
    }
    if (m_last_rebalance >= 0 && m_options.min_bars_between > 0 &&
        result.bar - m_last_rebalance < m_options.min_bars_between) {
      result.held_back = true;
      m_result = result;
      return m_result;
    }
    // A calendar bar is kept until a rebalance commits: pending before the policy runs, so that a
    // policy, overlay or rebalancer that throws leaves it pending for the next bar.
    const bool calendar = has(result.reasons, RebalanceReason::calendar);
    if (calendar)
      m_calendar_pending = true;
    rebalance(prices, result);
    if (calendar)
      m_calendar_pending = !result.rebalanced;
    m_result = result;
    return m_result;
  }

  RebalanceReason fired_triggers(Scalar ratio) {
    RebalanceReason reasons = RebalanceReason::none;
    if (!m_has_targets)
      reasons |= RebalanceReason::initial;
    if (m_options.every > 0 && (m_calendar_pending || m_ready_bars % m_options.every == 0))
      reasons |= RebalanceReason::calendar;
    if (m_options.drift_band > 0 && m_has_targets) {
      const Scalar drift = (m_book_weights - m_planned).cwiseAbs().maxCoeff();
      if (drift > static_cast<Scalar>(m_options.drift_band))
        reasons |= RebalanceReason::drift;
    }
    if (m_regime_armed && !std::isnan(ratio) && ratio > static_cast<Scalar>(m_options.regime.upper))
      reasons |= RebalanceReason::regime;
    return reasons;
  }

  void rebalance(const Eigen::Ref<const VectorType>& prices, Result& result) {
    const Index n = assets();
    Estimates<Scalar> estimates(n, m_names.empty() ? nullptr : &m_names);
    Status shrinkage_status;
    if (m_ewma) {
      // No lineage: an EWMA bar scales Σ and adds a rank-1 term, which `CovarianceStep` (a
      // rank-2 window step) does not state.
      estimates.set_mean(m_ewma->mean())
          .set_covariance(m_ewma->covariance_lower(), SymmetricStorage::lower,
                          Estimates<Scalar>::unchecked)
          .set_volatility(m_ewma->volatility());
    } else if (m_shrinkage) {
      estimates.set_mean(m_shrinkage->moments().mean());
      m_shrinkage_result = m_shrinkage->compute(m_shrunk, OutputStorage::full);
      shrinkage_status = m_shrinkage_result.status;
      m_shrunk_volatility = m_shrunk.diagonal().cwiseMax(Scalar(0)).cwiseSqrt();
      // Σ̂ is symmetric by construction and finite: the window's returns were checked finite.
      // With its lineage, a warm risk parity carries Σ̂x from the last bar (see RollingShrinkage).
      estimates.set_covariance(m_shrunk, SymmetricStorage::full, Estimates<Scalar>::unchecked)
          .set_covariance_lineage(m_shrinkage->output_id(), m_shrinkage->output_step())
          .set_volatility(m_shrunk_volatility);
    } else {
      estimates.set_mean(m_moments->mean())
          .set_covariance(m_moments->covariance_lower(), SymmetricStorage::lower,
                          Estimates<Scalar>::unchecked)
          .set_covariance_lineage(m_moments->covariance_id(), m_moments->covariance_step())
          .set_volatility(m_moments->volatility());
    }
    const VectorType* adv = m_dollar_volume        ? &m_dollar_volume->average()
                            : m_ewma_dollar_volume ? &m_ewma_dollar_volume->average()
                                                   : nullptr;
    if (adv != nullptr)
      estimates.set_dollar_volume(*adv);

    m_candidate.setConstant(nan());
    Status status;
    if constexpr (requires { m_policy.compute(estimates, m_book_weights, m_candidate); }) {
      status = m_policy.compute(estimates, m_book_weights, m_candidate);
    } else {
      status = m_policy.compute(estimates, m_candidate);
    }
    if (status.ok() && !shrinkage_status.ok()) {
      status.code = shrinkage_status.code;
      status.detail = shrinkage_status.detail;
    }
    result.status = status;
    if (!m_candidate.allFinite())
      return;  // the policy gave no weights (its status says why): nothing to trade

    // Lots are counted exactly only below 2⁵³, and the plan throws past that (a price of 5e-5 for
    // 1 with 1e-8 lots and $1M: 2e18 lots). The bar's data is valid and the engines have taken
    // it, so this is a numerical limit of the bar, reported as a status: nothing is traded and the
    // triggers stay pending.
    if (m_rebalancer.first_uncountable(m_candidate, m_shares, m_value, prices) >= 0) {
      result.uncountable_lots = true;
      result.status = Status{StatusCode::numerical_issue, 0, nan(),
                             "a target or holding is 2^53 lots or more (a price or lot size too "
                             "small for the book), too many to count exactly: nothing traded"};
      return;
    }
    if (std::isfinite(m_options.rebalance.max_participation)) {
      m_adv_shares = adv->cwiseQuotient(prices);
      m_rebalancer.plan(m_candidate, m_shares, m_cash, prices, m_adv_shares);
    } else {
      m_rebalancer.plan(m_candidate, m_shares, m_cash, prices);
    }
    // The plan succeeded: commit.
    m_targets = m_candidate;
    m_planned = m_rebalancer.result().weights_after;
    m_has_targets = true;
    m_last_rebalance = result.bar;
    if (has(result.reasons, RebalanceReason::regime))
      m_regime_armed = false;
    result.rebalanced = true;
    if (m_options.execute_trades) {
      const TradePlan<Scalar>& plan = m_rebalancer.result();
      m_shares = plan.shares_after;
      m_cash = plan.cash_after;
      m_value = m_shares.dot(prices) + m_cash;
      refresh_book_weights(prices, m_value);
      result.value = m_value;
    }
  }

  // σ² = Σ λ^{t−k} r_k² / Σ λ^{t−k} for both half-lives.
  void observe_regime(Scalar r) {
    const Scalar r2 = r * r;
    m_short_sum = m_lambda_short * m_short_sum + r2;
    m_short_weight = m_lambda_short * m_short_weight + Scalar(1);
    m_long_sum = m_lambda_long * m_long_sum + r2;
    m_long_weight = m_lambda_long * m_long_weight + Scalar(1);
    ++m_regime_observations;
  }

  [[nodiscard]] Scalar regime_ratio() const {
    if (!m_options.regime.enabled || m_regime_observations < m_options.regime.min_observations ||
        !(m_long_sum > 0))
      return nan();
    return std::sqrt((m_short_sum / m_short_weight) / (m_long_sum / m_long_weight));
  }

  void refresh_book_weights(const Eigen::Ref<const VectorType>& prices) {
    m_value = m_shares.dot(prices) + m_cash;
    refresh_book_weights(prices, m_value);
  }
  void refresh_book_weights(const Eigen::Ref<const VectorType>& prices, Scalar value) {
    m_book_weights = m_shares.cwiseProduct(prices) / value;
  }

  DynamicWeighterOptions m_options;
  AssetNames m_names;
  Policy m_policy;
  ReturnCalculator<Scalar> m_returns;
  std::optional<RollingMoments<Scalar>> m_moments;      // without shrinkage
  std::optional<RollingShrinkage<Scalar>> m_shrinkage;  // with shrinkage (owns the window)
  std::optional<EwmaMoments<Scalar>> m_ewma;            // with options.ewma (no window)
  std::optional<RollingDollarVolume<Scalar>> m_dollar_volume;
  std::optional<EwmaDollarVolume<Scalar>> m_ewma_dollar_volume;  // volumes with options.ewma
  Rebalancer<Scalar> m_rebalancer;
  MatrixType m_shrunk;             // Σ̂, full, of the last rebalance
  VectorType m_shrunk_volatility;  // √diag Σ̂
  ShrinkageResult m_shrinkage_result{Status::not_ready("no rebalance yet"), 0.0, 0.0};
  VectorType m_shares;
  Scalar m_cash;
  Scalar m_value = 0;
  VectorType m_book_weights;  // shares·p / V at the latest prices, after the latest trades
  VectorType m_targets;
  VectorType m_planned;     // the last plan's weights_after: the drift trigger's reference
  VectorType m_candidate;   // the policy's output before the plan commits it
  VectorType m_scratch;     // prospective returns (validation)
  VectorType m_adv_shares;  // ADV$ / price
  Result m_result;
  Index m_bars = 0;
  Index m_ready_bars = 0;
  Index m_last_rebalance = -1;
  bool m_has_targets = false;
  bool m_calendar_pending = false;  // a calendar trigger whose rebalance has not committed yet
  // Regime: zero-mean EWMA sums and weights (short, long).
  Scalar m_lambda_short = 0, m_lambda_long = 0;
  Scalar m_short_sum = 0, m_short_weight = 0, m_long_sum = 0, m_long_weight = 0;
  Index m_regime_observations = 0;
  bool m_regime_armed = true;
};

}  // namespace dynweight
