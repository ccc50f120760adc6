#pragma once

/// \file
/// `Rebalancer`: target weights and the book → whole-lot trades that the cash, the market and the
/// trading rules allow.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"

namespace dynweight {

/// How the no-trade band is measured.
enum class BandMode {
  absolute,  ///< asset i is not traded while |w_i − w*_i| <= band
  relative,  ///< asset i is not traded while |w_i − w*_i| <= band · |w*_i|
};

/// How step 4 of `Rebalancer::plan` raises the cash that the purchases lack.
enum class CashShortfall {
  /// Least tracking error: a lot cut from a buy and a lot sold beyond an asset's ideal are ranked
  /// together, so the deficits are levelled across the book (some assets are sold below their
  /// targets to fund others' buys).
  level,
  /// Fewer trades as a rule: buys are cut first, least tracking-error damage first; assets are
  /// sold beyond their ideals only when every buy is cut and cash is still short (step 6's
  /// exchanges may still sell a lot to fund a purchase).
  cut_buys_first,
};

/// Why an asset's trade differs from the whole-lot trade nearest its target.
enum class TradeLimit : std::uint8_t {
  none,       ///< traded to the lot count nearest its target (or already there)
  band,       ///< inside the no-trade band: not traded
  min_trade,  ///< the nearest lot count was below the minimum order: rounded to 0 or the minimum;
              ///< or a sale whose proceeds would not cover its costs: not made
  participation,  ///< cut to the participation cap q × ADV
  no_short,       ///< a sale cut at the shares held (long-only)
  cash,           ///< for want of cash: a purchase cut (or not made), or a sale made larger
};

constexpr std::string_view to_string(TradeLimit limit) noexcept {
  switch (limit) {
    case TradeLimit::none:
      return "none";
    case TradeLimit::band:
      return "band";
    case TradeLimit::min_trade:
      return "min_trade";
    case TradeLimit::participation:
      return "participation";
    case TradeLimit::no_short:
      return "no_short";
    case TradeLimit::cash:
      return "cash";
  }
  return "unknown";
}

/// Options of `Rebalancer`. Money is in the currency of prices and cash; quantities in shares (or
/// coins, contracts: any real unit).
struct RebalanceOptions {
  double lot_size = 1.0;  ///< every asset's lot, until `set_lot_sizes`; any real > 0 (0.0001 BTC)
  double min_quantity = 0.0;           ///< no order for fewer shares than this
  double min_notional = 0.0;           ///< no order below this notional ...
  double min_notional_fraction = 0.0;  ///< ... nor below this fraction of portfolio value
  double band = 0.0;                   ///< no-trade band, in weight (see `BandMode`)
  BandMode band_mode = BandMode::absolute;
  /// q in |shares traded| <= q × ADV (ADV in shares, passed to `plan`); infinity: no cap.
  double max_participation = std::numeric_limits<double>::infinity();
  double cost_bps = 0.0;              ///< proportional cost, basis points of |notional|
  double fee_per_trade = 0.0;         ///< fixed fee per asset traded
  double cash_buffer = 0.0;           ///< cash after trades and costs stays >= this ...
  double cash_buffer_fraction = 0.0;  ///< ... and >= this fraction of portfolio value
  bool allow_short = false;           ///< long-only unless true: no short is ever created
  bool invest_residual_cash = true;   ///< buy further lots with leftover cash where TE falls
  CashShortfall shortfall = CashShortfall::level;  ///< how step 4 raises cash (see the enum)

  /// Throws `dynweight::Error` unless every amount is finite and >= 0, lot_size > 0, the fractions
  /// are < 1 and max_participation > 0 (infinity allowed).
  void validate() const {
    const CheckContext context{"Rebalancer"};
    const auto nonnegative = [&](double value, const char* name) {
      check_parameter(std::isfinite(value) && value >= 0, context, name, value, "finite and >= 0");
    };
    check_parameter(std::isfinite(lot_size) && lot_size > 0, context, "lot_size", lot_size,
                    "finite and > 0");
    nonnegative(min_quantity, "min_quantity");
    nonnegative(min_notional, "min_notional");
    nonnegative(band, "band");
    nonnegative(cost_bps, "cost_bps");
    nonnegative(fee_per_trade, "fee_per_trade");
    nonnegative(cash_buffer, "cash_buffer");
    check_parameter(min_notional_fraction >= 0 && min_notional_fraction < 1, context,
                    "min_notional_fraction", min_notional_fraction, "in [0, 1)");
    check_parameter(cash_buffer_fraction >= 0 && cash_buffer_fraction < 1, context,
                    "cash_buffer_fraction", cash_buffer_fraction, "in [0, 1)");
    check_parameter(cost_bps < 1e4, context, "cost_bps", cost_bps, "< 10000 (100%)");
    check_parameter(max_participation > 0, context, "max_participation", max_participation,
                    "> 0 (infinity: no cap)");
    check_parameter(shortfall == CashShortfall::level || shortfall == CashShortfall::cut_buys_first,
                    context, "shortfall", static_cast<int>(shortfall),
                    "CashShortfall::level or CashShortfall::cut_buys_first");
  }
};

/// The outcome of `Rebalancer::plan`: the trades and the book they leave.
template <FloatingScalar Scalar>
struct TradePlan {
  using VectorType = Vector<Scalar>;

  VectorType shares_delta;         ///< signed shares to trade (buy > 0), a whole number of lots
  VectorType notional;             ///< shares_delta × price (buy > 0)
  VectorType cost;                 ///< bps × |notional| + fee, per asset (0 when not traded)
  VectorType shares_after;         ///< shares + shares_delta
  VectorType weights_after;        ///< shares_after × price / value_after
  std::vector<TradeLimit> limits;  ///< why each asset is where it is

  Scalar value_before = 0;  ///< Σ shares × price + cash
  Scalar value_after = 0;   ///< value_before − total_cost
  Scalar cash_before = 0;
  Scalar cash_after = 0;  ///< cash − Σ notional − total_cost
  Scalar cash_floor = 0;  ///< the buffer cash_after had to respect
  Scalar total_cost = 0;
  Scalar buy_notional = 0;           ///< Σ of positive notionals
  Scalar sell_notional = 0;          ///< Σ of |negative notionals|
  Scalar turnover = 0;               ///< one-way: (buy + sell notional) / (2 value_before)
  Scalar tracking_error_before = 0;  ///< ‖w − w*‖₂ before trading
  Scalar tracking_error = 0;         ///< ‖weights_after − w*‖₂
  Index trades = 0;                  ///< assets traded
  /// success or constrained (why, in detail); `iterations` counts the cash search's steps (heap
  /// steps and level evaluations), 0 when cash needed none.
  Status status;
};

/// Turns target weights into a plan of whole-lot trades against the current book.
///
/// **Input.** Targets w* (fractions of portfolio value; cash is the rest, 1 − Σw*), the book
/// (shares per asset, cash), prices, and, when a participation cap is set, ADV in shares.
/// Per-asset lot sizes are set once (`set_lot_sizes`, `set_lot_size(name, …)`).
///
/// **Method**, with V = Σ shares·price + cash:
///  1. *Band.* Asset i is not traded while its drift |w_i − w*_i| is inside the band.
///  2. *Fee-aware sizing.* Targets are sized on V_net = V − the cost of trading every asset
///     outside the band exactly to target, so that they are weights of the book after costs. The
///     ideal trade is x_i = (w*_i V_net / p_i − shares_i) / lot_i lots.
///  3. *Rounding.* Each asset gets the allowed lot count nearest x_i: allowed are 0 and every count
///     whose order meets the minimum quantity and notional, within the participation cap and,
///     long-only, not selling more than is held. Each bound is a count found by a bounded search
///     that checks the rule itself on the floats (no off-by-one from a division).
///  4. *Cash.* Sells are always made and fund the buys. While cash after costs is below the
///     buffer, the step taken is always the one that raises the squared tracking error least per
///     unit of cash it frees, of whichever asset and kind: a lot cut from a buy, or a lot sold
///     beyond a sale's ideal or from an asset that does not trade or whose buy is already cut
///     (a buy at its minimum order, or its last lot with a fixed fee, goes whole; so does a first
///     sale at the minimum order). For a lot that is the one whose mean deficit before and after
///     the step is smallest, so the deficits are levelled across the book: an asset far under its
///     target keeps part of its buy while others, nearer theirs, are sold below it. Each asset's
///     steps are runs of single lots at a constant cash per lot and whole steps; when the
///     shortfall needs many, they are taken in one go to the level the greedy would reach (a
///     root search over the runs' closed forms), and lots of one asset in batches while it stays
///     the cheapest, so the work does not grow with the number of lots and the result is the
///     one-step greedy's (up to keys that tie within rounding). The step that reaches the buffer is
///     compared with finishing without its asset (after steps 5–7 with `invest_residual_cash`), and
///     the better kept: a whole cut can overshoot the buffer by much. That is
///     `CashShortfall::level` (the default `shortfall`). With `CashShortfall::cut_buys_first` the
///     same greedy runs over the buys' cuts alone, and over every step only if cash is still short
///     with every buy cut: fewer trades for a higher tracking error (the rule until session 18;
///     README compares the two in backtests with costs).
///  5. *Residual cash* (only when step 4 cut something: otherwise every count is already the
///     nearest allowed one and no purchase can lower the tracking error). Leftover cash above the
///     buffer buys further lots (or shrinks a sale), best tracking-error gain per unit of cash
///     first, as long as it is affordable and lowers the tracking error; many tied lots are
///     bought in one go to the greedy's level, the rest from a heap, bounded by 16 N + 4096 steps
///     (status `constrained` if ever reached).
///  6. *Exchanges.* A purchase that cash cannot fund is made when a cut or a further sale of
///     another asset funds it and the pair lowers the tracking error (large lots make this
///     common); then step 5 again. A pass pairs the 64 purchases of largest gain with the 64
///     cash-raising steps of least loss, each asset once, while a pair lowers the squared
///     tracking error by more than 1e-6 of it (with fine lots a single-lot exchange gains next to
///     nothing, so none is made); at most 8 passes, O(N) each.
///  7. *Fixed fees.* Each buy that step 4 cut pays its whole fee for part of its trade: when cash
///     is short across many buys (targets above what it can fund, e.g. a volatility target's
///     leverage without borrowing), that leaves many thin buys each paying a fee. The thinnest
///     (least squared tracking error per unit of cash freed, fee included) are dropped whole and
///     their cash reinvested by step 5, as many as lowers the tracking error (doubling, then a
///     bisection: at most 2·log₂ N + 2 trials of step 5). Steps 5–7 run only with
///     `invest_residual_cash`.
///
/// Tracking error is ‖w_after − w*‖₂ over the assets (weights of the post-cost value). Every trade
/// is a whole number of lots, no trade is below the minimum, inside the band, over its cap, or (by
/// default) creates a short, and cash after costs never ends below the buffer unless it started
/// there, nothing is bought and no allowed sale could lift it. The result is deterministic (ties go
/// to the lower index).
///
/// **Status.** `success`, or `constrained` when cash, a participation cap or the long-only rule
/// kept some asset from its nearest lot count, or cash stays below the buffer (no allowed sale
/// could restore it): `result().limits` says which assets and why. Bad input throws
/// `dynweight::Error` naming the argument and asset; the rebalancer and its last result are then
/// unchanged.
///
/// **Cost.** O(N) when cash does not bind (see BM_Rebalance in README); when it does, up to
/// 60 root-search steps of O(N) for each level and O(log N) per heap step (`status.iterations`
/// counts both), the last step's alternative (a second greedy and, when it reinvests, steps 5–7
/// run for both finishes: twice where the plan would run them once), the exchange passes and,
/// with a fixed fee, step 7's trials.
/// Buffers are sized at construction: `plan` never allocates.
///
/// \code
/// dynweight::RebalanceOptions options;
/// options.cost_bps = 5;
/// options.band = 0.002;
/// dynweight::Rebalancer<double> rebalancer(n, options, &names);
/// rebalancer.set_lot_sizes(lots);
/// const dynweight::Status status = rebalancer.plan(targets, shares, cash, prices);
/// const auto& plan = rebalancer.result();  // plan.shares_delta, plan.cost, plan.weights_after ...
/// \endcode
template <FloatingScalar Scalar_ = double>
class Rebalancer {
 public:
  using Scalar = Scalar_;
  using VectorType = Vector<Scalar>;
  using ConstRef = const Eigen::Ref<const VectorType>&;

  /// A rebalancer of `assets` assets; `names` (optional, one per asset) are copied and label
  /// errors.
  explicit Rebalancer(Index assets, RebalanceOptions options = {},
                      const AssetNames* names = nullptr)
      : m_assets(assets), m_options(options) {
    const CheckContext context{"Rebalancer"};
    check_parameter(assets >= 1, context, "assets", static_cast<double>(assets), ">= 1");
    m_options.validate();
    if (names != nullptr) {
      check_names(context, *names, assets);
      m_names = *names;
    }
    m_lot_sizes.setConstant(assets, static_cast<Scalar>(m_options.lot_size));
    m_inverse_lot_sizes.resize(assets);
    m_min_quantity_lots.resize(assets);
    lot_sizes_changed();
    for (VectorType* buffer :
         {&m_ideal, &m_lot_weight, &m_count, &m_nearest, &m_lowest, &m_highest, &m_min_lots,
          &m_sale_lots, &m_key, &m_per_lot, &m_step, &m_saved_count, &m_saved_highest, &m_drop_key,
          &m_alt_count, &m_alt_key, &m_alt_highest, &m_without_count, &m_without_highest})
      buffer->setZero(assets);
    m_lowest_limit.assign(static_cast<std::size_t>(assets), TradeLimit::none);
    m_highest_limit = m_lowest_limit;
    m_heap.reserve(static_cast<std::size_t>(assets));
    m_alt_heap.reserve(static_cast<std::size_t>(assets));
    m_level_members.reserve(static_cast<std::size_t>(assets));
    m_sales.reserve(static_cast<std::size_t>(assets));
    m_thin.reserve(static_cast<std::size_t>(assets));
    m_used.assign(static_cast<std::size_t>(assets), 0);
    m_runs.resize(kMaxRuns * static_cast<std::size_t>(assets));
    m_run_counts.assign(static_cast<std::size_t>(assets), 0);
    m_result.shares_delta.setZero(assets);
    m_result.notional.setZero(assets);
    m_result.cost.setZero(assets);
    m_result.shares_after.setZero(assets);
    m_result.weights_after.setZero(assets);
    m_result.limits.assign(static_cast<std::size_t>(assets), TradeLimit::none);
    m_alt_limits = m_result.limits;
    m_without_limits = m_result.limits;
  }

  /// Per-asset lot sizes (finite, > 0), replacing `options.lot_size`.
  Rebalancer& set_lot_sizes(ConstRef lot_sizes) {
    const CheckContext context{"Rebalancer::set_lot_sizes", m_names};
    check_size(context, "lot_sizes", lot_sizes.size(), m_assets);
    check_positive(context, "lot_sizes", lot_sizes);
    m_lot_sizes = lot_sizes;
    lot_sizes_changed();
    return *this;
  }

  /// The lot size of the asset named `asset` (requires names); an unknown name is an error.
  Rebalancer& set_lot_size(std::string_view asset, Scalar lot_size) {
    const CheckContext context{"Rebalancer::set_lot_size", m_names};
    const auto found = std::find(m_names.begin(), m_names.end(), asset);
    if (found == m_names.end())
      detail::fail(context, detail::concat({"unknown asset '", asset, "'"}));
    check_parameter(std::isfinite(lot_size) && lot_size > 0, context, "lot_size",
                    static_cast<double>(lot_size), "finite and > 0");
    m_lot_sizes(found - m_names.begin()) = lot_size;
    lot_sizes_changed();
    return *this;
  }

  /// Plans the trades from `shares` and `cash` to `targets` at `prices`. Requires no participation
  /// cap (use the overload with ADV otherwise).
  Status plan(ConstRef targets, ConstRef shares, Scalar cash, ConstRef prices) {
    if (std::isfinite(m_options.max_participation)) {
      detail::fail(CheckContext{"Rebalancer::plan"},
                   "max_participation is set, so plan needs the ADV (in shares) of every asset");
    }
    return plan_impl(targets, shares, cash, prices, nullptr);
  }

  /// As above, with each asset's average daily volume in shares for the participation cap.
  Status plan(ConstRef targets, ConstRef shares, Scalar cash, ConstRef prices,
              ConstRef adv_shares) {
    return plan_impl(targets, shares, cash, prices, &adv_shares);
  }

  [[nodiscard]] const TradePlan<Scalar>& result() const { return m_result; }
  [[nodiscard]] const VectorType& lot_sizes() const { return m_lot_sizes; }

  /// Lots counted in floating point are exact only below 2⁵³ (and past the largest finite value
  /// not at all: a price of 1e-300 made the ideal count infinite and the plan NaN).
  static constexpr Scalar kExactLots = Scalar(9007199254740992.0);  // 2⁵³

  /// max(|weight| · value / price, |shares|) / lot size of asset i: the larger of the lots it
  /// would target at `weight` of `value` and the lots it holds.
  [[nodiscard]] Scalar lots_held_or_targeted(Index i, Scalar weight, Scalar shares, Scalar value,
                                             Scalar price) const {
    return std::max(std::abs(weight) * (value / price), std::abs(shares)) * m_inverse_lot_sizes(i);
  }

  /// The first asset whose `lots_held_or_targeted` is not below `kExactLots`, or −1: `plan`
  /// refuses such a book (`dynweight::Error`), so a caller that wants a status checks first.
  [[nodiscard]] Index first_uncountable(ConstRef targets, ConstRef shares, Scalar value,
                                        ConstRef prices) const {
    for (Index i = 0; i < m_assets; ++i) {
      if (!(lots_held_or_targeted(i, targets(i), shares(i), value, prices(i)) < kExactLots))
        return i;
    }
    return -1;
  }
  [[nodiscard]] const RebalanceOptions& options() const { return m_options; }
  [[nodiscard]] const AssetNames& names() const { return m_names; }
  [[nodiscard]] Index assets() const { return m_assets; }

 private:
  static constexpr Scalar kInfinity = std::numeric_limits<Scalar>::infinity();
  static constexpr std::size_t kExchangeCandidates = 64;
  static constexpr int kExchangePasses = 8;

  /// The largest n >= 0 with n·unit <= limit (limit >= 0, unit > 0): the quotient, then checked
  /// against the rule itself and moved by at most a few steps.
  static Scalar largest_count_within(Scalar limit, Scalar unit, Scalar inverse_unit) {
    if (!std::isfinite(limit))
      return kInfinity;
    Scalar n = std::floor(limit * inverse_unit);
    for (int step = 0; step < 4 && n > 0 && n * unit > limit; ++step)
      n -= 1;
    for (int step = 0; step < 4 && (n + 1) * unit <= limit; ++step)
      n += 1;
    return std::max(n, Scalar(0));
  }

  /// The smallest n >= 1 with n·lot·price >= threshold (`inverse_unit` = 1 / (lot·price)), the
  /// product taken as the plan reports it: (n·lot)·price, shares_delta times price.
  static Scalar smallest_count_reaching(Scalar threshold, Scalar lot, Scalar price,
                                        Scalar inverse_unit) {
    const auto amount = [&](Scalar n) { return n * lot * price; };
    Scalar n = std::max(Scalar(1), std::ceil(threshold * inverse_unit));
    for (int step = 0; step < 4 && amount(n) < threshold; ++step)
      n += 1;
    for (int step = 0; step < 4 && n > 1 && amount(n - 1) >= threshold; ++step)
      n -= 1;
    return n;
  }

  /// Per-lot constants of every plan: 1 / lot and the lots the minimum quantity needs.
  void lot_sizes_changed() {
    m_inverse_lot_sizes = m_lot_sizes.cwiseInverse();
    for (Index i = 0; i < m_assets; ++i) {
      m_min_quantity_lots(i) = smallest_count_reaching(static_cast<Scalar>(m_options.min_quantity),
                                                       m_lot_sizes(i), 1, m_inverse_lot_sizes(i));
    }
  }

  Scalar trade_cost(Scalar notional) const {
    const Scalar fee = notional != 0 ? static_cast<Scalar>(m_options.fee_per_trade) : Scalar(0);
    return static_cast<Scalar>(m_options.cost_bps * 1e-4) * std::abs(notional) + fee;
  }

  /// Change in cash of asset i's trade of `count` lots: −notional − cost.
  Scalar cash_effect(Index i, Scalar count, const Eigen::Ref<const VectorType>& prices) const {
    const Scalar notional = count * m_lot_sizes(i) * prices(i);
    return -notional - trade_cost(notional);
  }

  /// Squared tracking-error contribution of asset i at `count` lots, in units of lot weight².
  Scalar squared_gap(Index i, Scalar count) const {
    const Scalar gap = (m_ideal(i) - count) * m_lot_weight(i);
    return gap * gap;
  }

  /// The count that raises cash from asset i at least cost in lots: one lot less bought (a buy
  /// at its minimum order goes whole), or, for an asset not bought, one lot more sold (a first
  /// sale of `m_sale_lots(i)`). NaN when no such step is allowed.
  Scalar count_after_cut_from(Index i, Scalar n) const {
    if (n > 0)
      return n - 1 >= m_min_lots(i) ? n - 1 : Scalar(0);
    const Scalar next = n == 0 ? -m_sale_lots(i) : n - 1;
    return next >= m_lowest(i) ? next : std::numeric_limits<Scalar>::quiet_NaN();
  }

  /// The fewest lots of asset i whose sale raises cash: its minimum order, or more when a fixed
  /// fee exceeds the proceeds of that many lots after the proportional cost (a fee of $2 on lots
  /// of $0.01: 201 lots). kInfinity when no count does, which no sale can reach.
  Scalar smallest_sale(Index i, const Eigen::Ref<const VectorType>& prices) const {
    Scalar count = m_min_lots(i);
    if (cash_effect(i, -count, prices) > 0)
      return count;
    const Scalar net_per_lot =
        m_lot_sizes(i) * prices(i) * (1 - static_cast<Scalar>(m_options.cost_bps * 1e-4));
    count = std::max(count, std::floor(static_cast<Scalar>(m_options.fee_per_trade) / net_per_lot));
    // The quotient is within a few ulps of the threshold: a step or two settle it on the floats.
    for (int step = 0; step < 4; ++step, count += 1)
      if (cash_effect(i, -count, prices) > 0)
        return count;
    return kInfinity;
  }
  Scalar count_after_cut(Index i) const { return count_after_cut_from(i, m_count(i)); }
  /// Whether step 4's greedy may take a step of asset i now (a buy's, in the buys-only greedy).
  bool may_raise_cash(Index i) const { return !m_buys_only || m_count(i) > 0; }

  /// The count a purchase step moves asset i to (or kInfinity when none is allowed).
  Scalar count_after_step_up_from(Index i, Scalar n) const {
    Scalar next = n + 1;
    if (n == 0)
      next = m_min_lots(i);
    else if (n < 0 && -next < m_sale_lots(i))
      next = 0;
    return next <= m_highest(i) ? next : kInfinity;
  }
  Scalar count_after_step_up(Index i) const { return count_after_step_up_from(i, m_count(i)); }

  void validate(ConstRef targets, ConstRef shares, Scalar cash, ConstRef prices,
                const Eigen::Ref<const VectorType>* adv) const {
    const CheckContext context{"Rebalancer::plan", m_names};
    check_size(context, "targets", targets.size(), m_assets);
    check_size(context, "shares", shares.size(), m_assets);
    check_size(context, "prices", prices.size(), m_assets);
    check_finite(context, "targets", targets);
    if (!m_options.allow_short)
      check_nonnegative(context, "targets (long-only; set allow_short to short)", targets);
    check_finite(context, "shares", shares);
    check_positive_normal(context, "prices", prices);
    check_parameter(std::isfinite(cash), context, "cash", static_cast<double>(cash), "finite");
    if (adv != nullptr) {
      check_size(context, "adv_shares", adv->size(), m_assets);
      check_nonnegative(context, "adv_shares", *adv);
    }
    const Scalar value = shares.dot(prices) + cash;
    check_parameter(value > 0 && std::isfinite(value), context,
                    "portfolio value (shares · prices + cash)", static_cast<double>(value),
                    "finite and > 0");
    // Every lot count must be exact (`kExactLots`).
    const Index uncountable = first_uncountable(targets, shares, value, prices);
    if (uncountable >= 0) {
      detail::fail_entry(
          context, "lots held or targeted", uncountable, 0, true,
          static_cast<double>(lots_held_or_targeted(
              uncountable, targets(uncountable), shares(uncountable), value, prices(uncountable))),
          "below 2^53, to be counted exactly (a price or lot size too small for the portfolio "
          "value?)");
    }
  }

  Status plan_impl(ConstRef targets, ConstRef shares, Scalar cash, ConstRef prices,
                   const Eigen::Ref<const VectorType>* adv) {
    validate(targets, shares, cash, prices, adv);
    m_steps = 0;
    m_finished = false;
    const Index n = m_assets;
    const auto& o = m_options;
    TradePlan<Scalar>& r = m_result;
    const Scalar value = shares.dot(prices) + cash;
    r.cash_before = cash;
    const Scalar min_notional = static_cast<Scalar>(
        std::max(o.min_notional, o.min_notional_fraction * static_cast<double>(value)));
    r.cash_floor = static_cast<Scalar>(
        std::max(o.cash_buffer, o.cash_buffer_fraction * static_cast<double>(value)));

    // 1. The band, and the cost of trading every asset outside it exactly to target.
    Scalar ideal_cost = 0;
    Scalar gap_before = 0;
    for (Index i = 0; i < n; ++i) {
      const Scalar held = shares(i) * prices(i);
      const Scalar drift = held / value - targets(i);
      gap_before += drift * drift;
      const Scalar band = static_cast<Scalar>(
          o.band_mode == BandMode::absolute ? o.band : o.band * std::abs(double(targets(i))));
      const bool frozen = o.band > 0 && std::abs(drift) <= band;
      r.limits[static_cast<std::size_t>(i)] = frozen ? TradeLimit::band : TradeLimit::none;
      ideal_cost += frozen ? Scalar(0) : trade_cost(targets(i) * value - held);
    }
    const Scalar sizing_value = std::max(value - ideal_cost, value * Scalar(1e-6));

    // 2–3. Ideal lots, the allowed range, and the nearest allowed count.
    const Scalar inverse_sizing_value = 1 / sizing_value;
    const Scalar participation = static_cast<Scalar>(o.max_participation);
    for (Index i = 0; i < n; ++i) {
      const Scalar lot = m_lot_sizes(i);
      const Scalar inverse_lot = m_inverse_lot_sizes(i);
      m_lot_weight(i) = lot * prices(i) * inverse_sizing_value;
      m_count(i) = 0;
      if (r.limits[static_cast<std::size_t>(i)] == TradeLimit::band) {
        m_ideal(i) = 0;
        m_lowest(i) = m_highest(i) = m_nearest(i) = 0;
        continue;
      }
      const Scalar inverse_price = 1 / prices(i);
      m_ideal(i) = (targets(i) * sizing_value * inverse_price - shares(i)) * inverse_lot;
      const Scalar cap = adv == nullptr
                             ? kInfinity
                             : largest_count_within(participation * (*adv)(i), lot, inverse_lot);
      m_highest(i) = cap;
      m_lowest(i) = -cap;
      m_highest_limit[static_cast<std::size_t>(i)] = TradeLimit::participation;
      m_lowest_limit[static_cast<std::size_t>(i)] = TradeLimit::participation;
      if (!o.allow_short) {
        const Scalar sellable =
            shares(i) > 0 ? largest_count_within(shares(i), lot, inverse_lot) : Scalar(0);
        if (-sellable >= m_lowest(i)) {
          m_lowest(i) = -sellable;
          m_lowest_limit[static_cast<std::size_t>(i)] = TradeLimit::no_short;
        }
      }
      m_min_lots(i) = min_notional > 0
                          ? std::max(m_min_quantity_lots(i),
                                     smallest_count_reaching(min_notional, lot, prices(i),
                                                             inverse_lot * inverse_price))
                          : m_min_quantity_lots(i);
      m_sale_lots(i) = smallest_sale(i, prices);
      m_count(i) = m_nearest(i) = nearest_allowed(i);
      // A sale whose proceeds do not cover its costs (a fixed fee above a small position's value)
      // would lower the cash and the book's value for nothing: not made. (The cash steps below
      // start a sale at `m_sale_lots` too.)
      if (m_count(i) < 0 && -m_count(i) < m_sale_lots(i)) {
        m_count(i) = m_nearest(i) = 0;
        r.limits[static_cast<std::size_t>(i)] = TradeLimit::min_trade;
      }
    }

    // 4. Cut buys and sell more, least tracking-error damage first, until cash after costs is at
    // the buffer.
    Scalar cash_after = exact_cash_after(prices);
    // Every count is the allowed one nearest its ideal, so no purchase step can lower the tracking
    // error (steps 5–6 have nothing to do) unless cash forces cuts.
    const bool cuts = cash_after < r.cash_floor;
    if (cash_after < r.cash_floor)
      cash_after = cover_shortfall(cash_after, prices, true);

    // 5. Put leftover cash to work where it lowers the tracking error (done already when step 4's
    // last step was compared with finishing without it).
    bool capped = false;
    if (o.invest_residual_cash && cuts) {
      capped = m_finished ? m_finished_capped : reinvest(cash_after, prices);
      m_finished = false;  // (raise_cash stops while it is set)
      // Steps 5–7 kept a running sum; the exact one may differ by rounding, and if that
      // leaves it a hair under the buffer, one more cut settles it.
      cash_after = exact_cash_after(prices);
      if (cash_after < r.cash_floor)
        cover_shortfall(cash_after, prices, false);
    }

    return finish(targets, shares, prices, value, gap_before, capped);
  }

  /// Steps 5–7 on the plan as it stands: residual cash, exchanges, fixed fees. Returns true when
  /// step 5's step cap stopped a search.
  bool reinvest(Scalar& cash_after, const Eigen::Ref<const VectorType>& prices) {
    bool capped = invest_residual(cash_after, prices);
    // 6. Exchanges: sell (or cut) a lot to fund a purchase that lowers the tracking error more.
    int passes = 0;
    while (!capped && m_unaffordable > 0 && passes < kExchangePasses &&
           cash_after >= m_result.cash_floor && exchange_pass(cash_after, prices)) {
      ++passes;
      capped = invest_residual(cash_after, prices);
    }
    // 7. Fixed fees: drop whole the cut buys that only spread the fee thin.
    if (!capped && m_options.fee_per_trade > 0)
      capped = drop_thin_buys(cash_after, prices);
    return capped;
  }

  /// The allowed count nearest m_ideal(i); records the limit that moved it.
  Scalar nearest_allowed(Index i) {
    const auto k = static_cast<std::size_t>(i);
    const Scalar x = m_ideal(i);
    const Scalar rounded = std::round(x);
    Scalar count = std::min(std::max(rounded, m_lowest(i)), m_highest(i));
    TradeLimit limit = count > rounded   ? m_lowest_limit[k]
                       : count < rounded ? m_highest_limit[k]
                                         : TradeLimit::none;
    const Scalar minimum = m_min_lots(i);
    if (count != 0 && std::abs(count) < minimum) {
      const Scalar signed_minimum = count > 0 ? minimum : -minimum;
      const bool reachable = signed_minimum >= m_lowest(i) && signed_minimum <= m_highest(i);
      count = reachable && std::abs(x - signed_minimum) < std::abs(x) ? signed_minimum : Scalar(0);
      if (limit == TradeLimit::none)
        limit = TradeLimit::min_trade;
    }
    m_result.limits[k] = limit;
    return count;
  }

  // Heap order: by m_key, ties to the lower index. `max_first` for the residual-cash phase.
  template <bool max_first>
  struct HeapOrder {
    const VectorType* key;
    bool operator()(Index a, Index b) const {
      const Scalar ka = (*key)(a), kb = (*key)(b);
      if (ka != kb)
        return max_first ? ka < kb : ka > kb;
      return a > b;
    }
  };

  /// Squared-TE increase per unit of cash freed by asset i's next cut from `count` lots; NaN
  /// when it has none.
  Scalar cut_key_at(Index i, Scalar count, const Eigen::Ref<const VectorType>& prices) const {
    const Scalar next = count_after_cut_from(i, count);
    if (std::isnan(next))
      return next;
    const Scalar freed = cash_effect(i, next, prices) - cash_effect(i, count, prices);
    if (!(freed > 0))
      return std::numeric_limits<Scalar>::quiet_NaN();  // a sale that the fee would eat
    return (squared_gap(i, next) - squared_gap(i, count)) / freed;
  }
  Scalar cut_key(Index i, const Eigen::Ref<const VectorType>& prices) const {
    return cut_key_at(i, m_count(i), prices);
  }

  /// Lots of asset i that one cut-by-one-lot run may take (0 for a single step: a buy at its
  /// minimum order, or a first sale).
  Scalar single_lot_cuts(Index i) const {
    const Scalar n = m_count(i);
    return n > 0 ? n - m_min_lots(i) : (n < 0 ? n - m_lowest(i) : Scalar(0));
  }

  /// A run of an asset's next steps in a level take: `units` steps (possibly infinitely many),
  /// the k-th (from 0) ranked rank + k·step (all at `rank` when step is 0: a block), each moving
  /// the count by `delta` and costing `cash` (> 0: the cash a cut frees, or a purchase needs).
  struct Run {
    Scalar rank, step, cash, units, delta;
    Scalar inverse_step = 0;  ///< 1 / step (set by add_run)
  };
  /// An asset's steps are at most four runs: when raising cash, a buy's lots, its minimum order
  /// (or last lot) whole, a first sale, further lots of sale; when buying, lots of a sale bought
  /// back, the rest of it whole, a first purchase at its minimum order, then single lots. Each
  /// run after the first may be split in two (`add_run`).
  static constexpr std::size_t kMaxRuns = 7;

  std::span<const Run> runs(Index i) const {
    const auto k = static_cast<std::size_t>(i);
    return {m_runs.data() + kMaxRuns * k, m_run_counts[k]};
  }

  /// Appends a run to asset i's. The greedy takes an asset's steps in order, so those ranked
  /// below the last step before them come right after it: they become a block at its rank.
  void add_run(Index i, Run run) {
    const auto k = static_cast<std::size_t>(i);
    std::size_t& count = m_run_counts[k];
    if (count > 0) {
      const Run& last = m_runs[kMaxRuns * k + count - 1];
      const Scalar floor = last.rank + (last.units - 1) * last.step;
      if (run.rank < floor) {
        if (run.step > 0 && run.units > 1) {
          const Scalar early = std::min(run.units, std::floor((floor - run.rank) / run.step) + 1);
          m_runs[kMaxRuns * k + count++] = {floor, 0, run.cash, early, run.delta};
          run.units -= early;
          if (!(run.units > 0))
            return;
          run.rank += early * run.step;
        }
        run.rank = std::max(run.rank, floor);
      }
    }
    run.inverse_step = run.step > 0 ? 1 / run.step : Scalar(0);
    m_runs[kMaxRuns * k + count++] = run;
  }

  /// The greedy's end point in one go. Each member i of m_heap offers its steps as runs
  /// (`runs(i)`, in the order the greedy takes them, ranks non-decreasing). A root search finds
  /// a level λ whose steps cost less than `budget` (or no more, unless `strict`), close enough
  /// to the highest such level that about one step per member lies between, and hands each
  /// member the count change of its steps ranked <= λ: take(i, delta). Every step ranked <= λ
  /// is then taken and none above it, as the one-step-at-a-time greedy would have by then, each
  /// affordable when it comes (the costs are positive); where the search stops changes only how
  /// much the heap does after it (and, through rounding, the order of steps whose keys tie). At
  /// most 60 search steps of O(runs).
  template <class Take>
  void take_to_level(Scalar budget, bool strict, Take take) {
    // low: the lowest rank; high: the highest, or lower, the first level at which one member's
    // steps alone cost more than the budget (the total can only be more).
    Scalar low = kInfinity, high = -kInfinity, finest = kInfinity, alone = kInfinity;
    for (const Index i : m_heap) {
      Scalar spent = 0;
      bool over = false;
      for (const Run& run : runs(i)) {
        low = std::min(low, run.rank);
        if (run.step > 0 && run.units > 1)
          finest = std::min(finest, run.step);
        if (over)
          continue;
        const Scalar needed =
            run.step > 0 ? std::floor((budget - spent) / run.cash) + 1 : run.units;
        if (needed <= run.units && spent + needed * run.cash > budget) {
          alone = std::min(alone, run.rank + (needed - 1) * run.step);
          over = true;
        } else {
          spent += run.units * run.cash;
          high = std::max(high, run.rank + (run.units - 1) * run.step);
        }
      }
    }
    if (alone < kInfinity)
      high = alone;
    if (!(high >= low))
      return;
    const auto units_at = [](const Run& run, Scalar level) {
      if (level < run.rank)
        return Scalar(0);
      return run.step > 0
                 ? std::min(std::floor((level - run.rank) * run.inverse_step) + 1, run.units)
                 : run.units;
    };
    // Calls visit(run, units) for every run with units <= λ, in order.
    const auto walk = [&](Index i, Scalar level, auto visit) {
      for (const Run& run : runs(i)) {
        const Scalar units = units_at(run, level);
        if (units > 0)
          visit(run, units);
        if (units < run.units)
          break;
      }
    };
    // The cost of the steps ranked <= level, and how many heap steps they are (a block as one).
    // Only members with steps inside the bracket (low, high] are walked: one whose first step is
    // ranked above high adds nothing at any level tried from then on, and one whose last step is
    // ranked at or below low adds all its steps (kept in `settled`).
    struct Measure {
      Scalar cost = 0, steps = 0;
    };
    const auto add = [](Measure& m, const Run& run, Scalar units) {
      m.cost += units * run.cash;
      m.steps += run.step > 0 ? units : 1;
    };
    Measure settled;
    m_level_members.clear();
    for (const Index i : m_heap) {
      if (!runs(i).empty())
        m_level_members.push_back(i);
    }
    const auto measure = [&](Scalar level) {
      ++m_steps;
      std::size_t kept = 0;
      Measure m;
      for (const Index i : m_level_members) {
        const std::span<const Run> steps = runs(i);
        const Run& last = steps.back();
        if (steps.front().rank > high)
          continue;
        if (last.rank + (last.units - 1) * last.step <= low) {
          for (const Run& run : steps)
            add(settled, run, run.units);
          continue;
        }
        m_level_members[kept++] = i;
        walk(i, level, [&](const Run& run, Scalar units) { add(m, run, units); });
      }
      m_level_members.resize(kept);
      m.cost += settled.cost;
      m.steps += settled.steps;
      return m;
    };
    const auto fits = [&](const Measure& m) { return strict ? m.cost < budget : m.cost <= budget; };
    low = std::nextafter(low, -kInfinity);  // below every rank: takes nothing
    Measure at_low, at_high = measure(high);
    if (fits(at_high)) {
      low = high;
    } else {
      // Until the heap can place what lies between low and high in about one step per member,
      // or the bracket is narrower than any member's rank step. The cost grows about linearly
      // between levels, so the next level is interpolated (the Illinois variant of false
      // position: the weight of an end kept twice in a row is halved), or bisected when the
      // interpolation falls outside the bracket.
      const auto members = static_cast<Scalar>(m_heap.size());
      Scalar below = at_low.cost - budget, above = at_high.cost - budget;  // < 0 and >= 0
      int kept_side = 0;
      for (int step = 0;
           step < 60 && high - low > finest / 2 && at_high.steps - at_low.steps > members; ++step) {
        Scalar middle = (low * above - high * below) / (above - below);
        if (!(middle > low && middle < high))
          middle = low + (high - low) / 2;
        if (!(middle > low && middle < high))
          break;
        const Measure at_middle = measure(middle);
        if (fits(at_middle)) {
          low = middle;
          at_low = at_middle;
          below = at_middle.cost - budget;
          if (kept_side == 1)
            above /= 2;  // high kept twice
          kept_side = 1;
        } else {
          high = middle;
          at_high = at_middle;
          above = at_middle.cost - budget;
          if (kept_side == -1)
            below /= 2;  // low kept twice
          kept_side = -1;
        }
      }
    }
    for (const Index i : m_heap) {
      Scalar delta = 0;
      walk(i, low, [&](const Run& run, Scalar units) { delta += units * run.delta; });
      if (delta != 0)
        take(i, delta);
    }
  }

  /// Whether the heap would need more than about two pops per member of m_heap to spend
  /// `budget`: a bound that counts, for each member, the steps it could take before its own
  /// cost passes the budget (a block as one).
  bool many_steps(Scalar budget) const {
    const Scalar enough = 2 * static_cast<Scalar>(m_heap.size()) + 2;
    Scalar pops = 0;
    for (const Index i : m_heap) {
      Scalar spent = 0;
      for (const Run& run : runs(i)) {
        const Scalar units = std::min(run.units, std::ceil((budget - spent) / run.cash));
        if (!(units > 0))
          break;
        pops += run.step > 0 ? units : 1;
        spent += units * run.cash;
      }
      if (pops > enough)
        return true;
    }
    return false;
  }

  /// Asset i's steps of raising cash from its count, as runs: single lots at a constant cash per
  /// lot (the k-th further cut's key is key_i + k·2a_i²/(cash per lot)): the lots of a buy down to
  /// its minimum order, then that order (or, with a fee, the last lot) cut whole, a first sale (the
  /// fewest lots that raise cash: the minimum order, or more against a fee) and further single
  /// lots of sale.
  void cut_runs(Index i, const Eigen::Ref<const VectorType>& prices) {
    m_run_counts[static_cast<std::size_t>(i)] = 0;
    Scalar n = m_count(i);
    Scalar key = m_key(i);
    for (int r = 0; r < 4 && !std::isnan(key); ++r) {
      const Scalar next = count_after_cut_from(i, n);
      const Scalar freed = cash_effect(i, next, prices) - cash_effect(i, n, prices);
      // Single lots at a constant cash per lot: a buy above its minimum order, a sale under way.
      Scalar units = 1;
      if (next > 0)
        units = n - m_min_lots(i);
      else if (n < 0)
        units = n - m_lowest(i);
      const Scalar step = 2 * m_lot_weight(i) * m_lot_weight(i) / freed;
      add_run(i, {key, step, freed, units, next - n});
      if (!std::isfinite(units))
        break;
      n += units * (next - n);
      if (m_buys_only && !(n > 0))
        break;  // a buy cut whole: its sales wait for the greedy over all
      key = cut_key_at(i, n, prices);
    }
  }

  /// When the shortfall needs many steps from the assets in m_heap (`many_steps`), takes them in
  /// one go to just short of the level the step-by-step greedy would reach; the heap then finishes.
  Scalar cut_to_level(Scalar cash_after, const Eigen::Ref<const VectorType>& prices) {
    for (const Index i : m_heap)
      cut_runs(i, prices);
    const Scalar shortfall = m_result.cash_floor - cash_after;
    if (!(shortfall > 0) || !many_steps(shortfall))
      return cash_after;
    take_to_level(shortfall, true, [&](Index i, Scalar delta) {
      cash_after += cash_effect(i, m_count(i) + delta, prices) - cash_effect(i, m_count(i), prices);
      m_count(i) += delta;
      m_result.limits[static_cast<std::size_t>(i)] = TradeLimit::cash;
      m_key(i) = cut_key(i, prices);
    });
    std::size_t kept = 0;
    for (const Index i : m_heap) {
      if (!std::isnan(m_key(i)) && may_raise_cash(i))
        m_heap[kept++] = i;
    }
    m_heap.resize(kept);
    return cash_after;
  }

  /// Asset i's purchase steps that lower the tracking error, from its count on, as runs ranked by
  /// −key: lots of a sale bought back, the rest of it whole, a first purchase at its minimum order,
  /// single lots (the k-th further lot's key is key_i − k·2a_i²/(cash per lot)). A step that frees
  /// cash (a sale whose fee outweighs its proceeds, bought back) ends them: the heap places it.
  void buy_runs(Index i, const Eigen::Ref<const VectorType>& prices) {
    m_run_counts[static_cast<std::size_t>(i)] = 0;
    Scalar n = m_count(i);
    Scalar key = m_key(i);
    for (int r = 0; r < 4 && key > 0; ++r) {
      const Scalar next = count_after_step_up_from(i, n);
      const Scalar needed = cash_effect(i, n, prices) - cash_effect(i, next, prices);
      if (!(needed > 0) || !std::isfinite(key))
        break;
      // Single lots at a constant cash per lot (a purchase under way, a sale bought back down to
      // its minimum): lot k gains while k < x − n − ½.
      Scalar units = 1;
      if (n != 0 && next == n + 1) {
        const Scalar limit = n > 0 ? m_highest(i) - n : -m_sale_lots(i) - n;
        units = std::max(Scalar(1), std::min(std::ceil(m_ideal(i) - n - Scalar(0.5)), limit));
      }
      const Scalar step = 2 * m_lot_weight(i) * m_lot_weight(i) / needed;
      add_run(i, {-key, step, needed, units, next - n});
      n += units * (next - n);
      key = residual_key_at(i, n, prices);
    }
  }

  /// The residual-cash counterpart of cut_to_level: when the slack buys many steps (lots of
  /// near-equal keys would alternate in the heap), buys in one go up to the level the greedy
  /// would reach; the heap then finishes.
  Scalar buy_to_level(Scalar cash_after, const Eigen::Ref<const VectorType>& prices) {
    for (const Index i : m_heap)
      buy_runs(i, prices);
    const Scalar slack = cash_after - m_result.cash_floor;
    if (!(slack > 0) || !many_steps(slack))
      return cash_after;
    take_to_level(slack, false, [&](Index i, Scalar delta) {
      cash_after += cash_effect(i, m_count(i) + delta, prices) - cash_effect(i, m_count(i), prices);
      m_count(i) += delta;
      m_key(i) = residual_key(i, prices);
    });
    std::size_t kept = 0;
    for (const Index i : m_heap) {
      if (m_key(i) > 0)
        m_heap[kept++] = i;
    }
    m_heap.resize(kept);
    return cash_after;
  }

  /// Step 4 by `RebalanceOptions::shortfall`: with `cut_buys_first`, a greedy over the buys'
  /// cuts alone, then (if every buy is cut and cash is still short) the greedy over all.
  Scalar cover_shortfall(Scalar cash_after, const Eigen::Ref<const VectorType>& prices,
                         bool alternatives) {
    if (m_options.shortfall == CashShortfall::cut_buys_first) {
      m_buys_only = true;
      cash_after = raise_cash(cash_after, prices, alternatives);
      m_buys_only = false;
      if (m_finished || !(cash_after < m_result.cash_floor))
        return cash_after;
    }
    return raise_cash(cash_after, prices, alternatives);
  }

  /// Raises cash to the buffer by cutting buys and selling more (buys only while `m_buys_only`),
  /// each step the one that raises the squared tracking error least per unit of cash, whichever
  /// asset and kind it is; lots of one asset go in a batch while it stays the cheapest.
  Scalar raise_cash(Scalar cash_after, const Eigen::Ref<const VectorType>& prices,
                    bool alternatives) {
    const Scalar floor = m_result.cash_floor;
    for (int pass = 0; pass < 3 && cash_after < floor && !m_finished; ++pass) {
      m_heap.clear();
      for (Index i = 0; i < m_assets; ++i) {
        if (m_result.limits[static_cast<std::size_t>(i)] == TradeLimit::band || !may_raise_cash(i))
          continue;
        m_key(i) = cut_key(i, prices);
        if (!std::isnan(m_key(i)))
          m_heap.push_back(i);
      }
      cash_after = cut_greedily(cash_after, prices, alternatives);
      // The running sum may differ from the exact one by rounding: recompute, cut again if short.
      cash_after = exact_cash_after(prices);
    }
    return cash_after;
  }

  /// The greedy of raise_cash over the assets in m_heap (keys in m_key): to the level, then
  /// step by step from the heap. The step that reaches the buffer may overshoot it by much (a buy
  /// at its minimum order cut whole, a large lot); with `alternatives`, finishing without that
  /// asset (the same greedy over the others) is tried too, and kept if it leaves the lower
  /// squared tracking error.
  Scalar cut_greedily(Scalar cash_after, const Eigen::Ref<const VectorType>& prices,
                      bool alternatives) {
    const HeapOrder<false> order{&m_key};
    const Scalar floor = m_result.cash_floor;
    cash_after = cut_to_level(cash_after, prices);
    std::make_heap(m_heap.begin(), m_heap.end(), order);
    const auto cut = [&](Index i, Scalar next) {
      cash_after += cash_effect(i, next, prices) - cash_effect(i, m_count(i), prices);
      m_count(i) = next;
      m_result.limits[static_cast<std::size_t>(i)] = TradeLimit::cash;
    };
    while (cash_after < floor && !m_heap.empty()) {
      std::pop_heap(m_heap.begin(), m_heap.end(), order);
      const Index i = m_heap.back();
      m_heap.pop_back();
      ++m_steps;
      const Scalar n = m_count(i);
      Scalar next = count_after_cut(i);
      // Further single lots of i while it stays the cheapest and cash is still short: each
      // lot's key grows by 2 a_i² / (cash per lot).
      const Scalar batch_limit = single_lot_cuts(i);
      if (batch_limit > 1) {
        const Scalar per_lot = cash_effect(i, next, prices) - cash_effect(i, n, prices);
        const Scalar step = 2 * m_lot_weight(i) * m_lot_weight(i) / per_lot;
        Scalar lots = std::ceil((floor - cash_after) / per_lot);
        if (!m_heap.empty() && step > 0)
          lots = std::min(lots, std::floor((m_key(m_heap.front()) - m_key(i)) / step) + 1);
        next = n - std::clamp(lots, Scalar(1), batch_limit);
      }
      if (alternatives && !m_heap.empty() &&
          cash_after + (cash_effect(i, next, prices) - cash_effect(i, n, prices)) >= floor) {
        // The step that finishes: a batch's lots before its last do not, so they go first.
        if (batch_limit > 1 && next < n - 1)
          cut(i, next + 1);
        if (finish_without(i, next, cash_after, prices))
          return cash_after;
      }
      cut(i, next);
      if (!may_raise_cash(i))
        continue;
      m_key(i) = cut_key(i, prices);
      if (!std::isnan(m_key(i))) {
        m_heap.push_back(i);
        std::push_heap(m_heap.begin(), m_heap.end(), order);
      }
    }
    return cash_after;
  }

  /// Finishes raise_cash's greedy without asset i (m_heap holds the others) and keeps that
  /// when it reaches the buffer at a lower squared tracking error than cutting i to `next`
  /// (returns true, `cash_after` updated); otherwise undoes every change and returns false. With
  /// `invest_residual_cash` the two are compared as steps 5–7 finish each (step 5 reinvests what
  /// each leaves above the buffer, which recovers part of an overshoot, and steps 6–7 can turn
  /// the choice around): the better is kept as it stands after step 7 (`m_finished`; returns
  /// true either way). O(N) plus the greedy's own cost and, with reinvestment, two runs of
  /// steps 5–7 where the plan would take one.
  bool finish_without(Index i, Scalar next, Scalar& cash_after,
                      const Eigen::Ref<const VectorType>& prices) {
    const Scalar n = m_count(i);
    const Scalar taking_cash =
        cash_after + (cash_effect(i, next, prices) - cash_effect(i, n, prices));
    Scalar taking = total_squared_gap() + (squared_gap(i, next) - squared_gap(i, n));
    m_alt_count = m_count;
    m_alt_key = m_key;
    m_alt_limits = m_result.limits;
    m_alt_heap = m_heap;
    m_alt_highest = m_highest;  // step 7 sets a dropped buy's to 0
    const auto restore = [&] {
      m_count = m_alt_count;
      m_key = m_alt_key;
      m_result.limits = m_alt_limits;
      m_heap = m_alt_heap;
      m_highest = m_alt_highest;
    };
    const Scalar without_cash = cut_greedily(cash_after, prices, false);
    if (!(without_cash >= m_result.cash_floor)) {
      restore();
      return false;
    }
    Scalar without = total_squared_gap();
    if (m_options.invest_residual_cash) {
      Scalar without_final = without_cash;
      const bool without_capped = reinvest(without_final, prices);
      without = total_squared_gap();
      m_without_count = m_count;
      m_without_limits = m_result.limits;
      m_without_highest = m_highest;
      restore();
      m_count(i) = next;
      m_result.limits[static_cast<std::size_t>(i)] = TradeLimit::cash;
      Scalar taking_final = taking_cash;
      const bool taking_capped = reinvest(taking_final, prices);
      taking = total_squared_gap();
      m_finished = true;
      if (without < taking) {
        m_count = m_without_count;
        m_result.limits = m_without_limits;
        m_highest = m_without_highest;
        cash_after = without_final;
        m_finished_capped = without_capped;
      } else {
        cash_after = taking_final;
        m_finished_capped = taking_capped;
      }
      return true;
    }
    if (without < taking) {
      cash_after = without_cash;
      return true;
    }
    restore();
    return false;
  }

  /// Cost of each notional in `notional` (an array expression): bps·|notional| + fee if traded.
  template <class Notional>
  auto cost_of(const Notional& notional) const {
    const auto bps = static_cast<Scalar>(m_options.cost_bps * 1e-4);
    const auto fee = static_cast<Scalar>(m_options.fee_per_trade);
    return bps * notional.abs() + fee * (notional != 0).template cast<Scalar>();
  }

  /// Cash after the planned trades and their costs, summed the one way every check and the
  /// result use.
  Scalar exact_cash_after(const Eigen::Ref<const VectorType>& prices) const {
    const auto notional = m_count.array() * m_lot_sizes.array() * prices.array();
    return m_result.cash_before - (notional + cost_of(notional)).sum();
  }

  /// Squared-TE decrease of asset i's next purchase step per unit of cash it needs (+inf when the
  /// step frees cash); 0 when there is no step or it does not lower the tracking error.
  Scalar residual_key_at(Index i, Scalar n, const Eigen::Ref<const VectorType>& prices) const {
    if (m_result.limits[static_cast<std::size_t>(i)] == TradeLimit::band)
      return 0;
    const Scalar next = count_after_step_up_from(i, n);
    // (x − n)² − (x − next)² = (next − n)(2x − n − next): a gain iff x is past the midpoint.
    if (next == kInfinity || !(2 * m_ideal(i) > n + next))
      return 0;
    const Scalar gain =
        (next - n) * (2 * m_ideal(i) - n - next) * m_lot_weight(i) * m_lot_weight(i);
    const Scalar needed = cash_effect(i, n, prices) - cash_effect(i, next, prices);
    return needed > 0 ? gain / needed : kInfinity;
  }
  Scalar residual_key(Index i, const Eigen::Ref<const VectorType>& prices) const {
    return residual_key_at(i, m_count(i), prices);
  }

  /// Returns true when the step cap stopped the search.
  bool invest_residual(Scalar& cash_after, const Eigen::Ref<const VectorType>& prices) {
    const HeapOrder<true> order{&m_key};
    m_heap.clear();
    m_unaffordable = 0;
    const Scalar slack = cash_after - m_result.cash_floor;
    for (Index i = 0; i < m_assets; ++i) {
      m_key(i) = residual_key(i, prices);
      if (!(m_key(i) > 0))
        continue;
      const Scalar next = count_after_step_up(i);
      if (cash_effect(i, next, prices) - cash_effect(i, m_count(i), prices) + slack < 0)
        ++m_unaffordable;  // cannot be afforded now: later purchases only make it less so
      else
        m_heap.push_back(i);
    }
    cash_after = buy_to_level(cash_after, prices);
    std::make_heap(m_heap.begin(), m_heap.end(), order);
    const Index cap = 16 * m_assets + 4096;
    Index steps = 0;
    for (; !m_heap.empty() && steps < cap; ++steps) {
      std::pop_heap(m_heap.begin(), m_heap.end(), order);
      const Index i = m_heap.back();
      m_heap.pop_back();
      ++m_steps;
      const Scalar n = m_count(i);
      Scalar next = count_after_step_up(i);
      const Scalar change = cash_effect(i, next, prices) - cash_effect(i, n, prices);
      if (cash_after + change < m_result.cash_floor) {
        ++m_unaffordable;
        continue;  // not affordable; cheaper steps of other assets may still be
      }
      if (n > 0 && change < 0) {
        // Further single lots of a buy, at a constant cash per lot, while i stays the best
        // step, still gains and is affordable: lot k (from 0) gains a²(2(x − n − k) − 1), and its
        // key falls by 2a² / (cash per lot) per lot.
        const Scalar per_lot = -change;
        const Scalar a2 = m_lot_weight(i) * m_lot_weight(i);
        Scalar lots = std::floor((cash_after - m_result.cash_floor) / per_lot);
        lots = std::min(lots, std::ceil(m_ideal(i) - n - Scalar(0.5)));
        lots = std::min(lots, m_highest(i) - n);
        if (!m_heap.empty())
          lots = std::min(lots,
                          std::floor((m_key(i) - m_key(m_heap.front())) * per_lot / (2 * a2)) + 1);
        next = n + std::max(lots, Scalar(1));
      }
      cash_after += cash_effect(i, next, prices) - cash_effect(i, n, prices);
      m_count(i) = next;
      m_key(i) = residual_key(i, prices);
      if (m_key(i) > 0) {
        m_heap.push_back(i);
        std::push_heap(m_heap.begin(), m_heap.end(), order);
      }
    }
    return !m_heap.empty();
  }

  /// Σ_i squared_gap(i, m_count(i)): the squared tracking error the steps minimise.
  Scalar total_squared_gap() const {
    return ((m_ideal - m_count).cwiseProduct(m_lot_weight)).squaredNorm();
  }

  /// Step 7. With a fixed fee, a buy that cash cut pays its whole fee for part of its trade, and
  /// when cash is short across many buys (targets above what it can fund), steps 4–6 leave many
  /// thin buys each paying a fee. Candidates: the cut buys whose drop costs less squared tracking
  /// error per unit of cash it frees (its lots and its fee) than the best purchase step gains per
  /// unit (otherwise reinvesting could not pay), thinnest first. A trial drops the k thinnest whole
  /// and reinvests the cash by step 5 (never in them again); k doubles while the tracking error
  /// falls, then a bisection between the best k and the first that did not improve settles it.
  /// At most 2·log₂(candidates) + 2 trials of O(N log N). Returns true when step 5's cap stopped
  /// the kept trial.
  bool drop_thin_buys(Scalar& cash_after, const Eigen::Ref<const VectorType>& prices) {
    Scalar best_gain = 0;
    for (Index i = 0; i < m_assets; ++i)
      best_gain = std::max(best_gain, residual_key(i, prices));
    m_thin.clear();
    for (Index i = 0; i < m_assets; ++i) {
      const Scalar n = m_count(i);
      if (!(n > 0 && n < m_nearest(i)))
        continue;
      const Scalar freed = cash_effect(i, 0, prices) - cash_effect(i, n, prices);
      m_drop_key(i) = (squared_gap(i, 0) - squared_gap(i, n)) / freed;
      if (m_drop_key(i) < best_gain)
        m_thin.push_back(i);
    }
    if (m_thin.empty())
      return false;
    std::sort(m_thin.begin(), m_thin.end(), [this](Index a, Index b) {
      return m_drop_key(a) < m_drop_key(b) || (m_drop_key(a) == m_drop_key(b) && a < b);
    });
    m_saved_count = m_count;
    m_saved_highest = m_highest;
    const Scalar saved_cash = cash_after;
    bool capped = false;
    Index tried = 0;
    const auto trial = [&](Index k) {
      m_count = m_saved_count;
      m_highest = m_saved_highest;
      cash_after = saved_cash;
      for (Index j = 0; j < k; ++j) {
        const Index i = m_thin[static_cast<std::size_t>(j)];
        cash_after += cash_effect(i, 0, prices) - cash_effect(i, m_count(i), prices);
        m_count(i) = 0;
        m_highest(i) = 0;
      }
      capped = invest_residual(cash_after, prices);
      tried = k;
      return total_squared_gap();
    };
    const auto size = static_cast<Index>(m_thin.size());
    // A trial must beat the plan as it stands by more than rounding.
    Scalar best = total_squared_gap() * (1 - Scalar(64) * std::numeric_limits<Scalar>::epsilon());
    Index best_k = 0;
    Index fail = size + 1;
    for (Index k = 1;; k = std::min(2 * k, size)) {
      const Scalar objective = trial(k);
      if (!(objective < best)) {
        fail = k;
        break;
      }
      best = objective;
      best_k = k;
      if (k == size)
        break;
    }
    while (fail - best_k > 1) {
      const Index middle = best_k + (fail - best_k) / 2;
      const Scalar objective = trial(middle);
      if (objective < best) {
        best = objective;
        best_k = middle;
      } else {
        fail = middle;
      }
    }
    if (tried != best_k)
      trial(best_k);
    for (Index j = 0; j < best_k; ++j)
      m_result.limits[static_cast<std::size_t>(m_thin[static_cast<std::size_t>(j)])] =
          TradeLimit::cash;
    return capped;
  }

  /// One pass of exchanges: purchase steps that cash cannot fund (largest gain first) are paired
  /// with cash-raising steps of other assets (a cut or a further sale, least loss first): each
  /// purchase takes the first unused step that funds it and leaves a net gain above 1e-6 of the
  /// squared tracking error. At most `kExchangeCandidates` of each kind, each asset used once per
  /// pass. O(N + K log K + K²). Returns whether any exchange was made.
  bool exchange_pass(Scalar& cash_after, const Eigen::Ref<const VectorType>& prices) {
    m_heap.clear();   // purchase candidates, keyed by gain in m_key
    m_sales.clear();  // cash-raising candidates: loss in m_step, cash freed in m_per_lot
    Scalar total = 0;
    for (Index i = 0; i < m_assets; ++i) {
      const Scalar n = m_count(i);
      total += squared_gap(i, n);
      if (m_result.limits[static_cast<std::size_t>(i)] == TradeLimit::band)
        continue;
      const Scalar up = count_after_step_up(i);
      if (up != kInfinity && 2 * m_ideal(i) > n + up) {
        m_key(i) = (up - n) * (2 * m_ideal(i) - n - up) * m_lot_weight(i) * m_lot_weight(i);
        m_heap.push_back(i);
      }
      const Scalar down = count_after_cut(i);
      if (!std::isnan(down)) {
        m_per_lot(i) = cash_effect(i, down, prices) - cash_effect(i, n, prices);
        m_step(i) = squared_gap(i, down) - squared_gap(i, n);
        if (m_per_lot(i) > 0)
          m_sales.push_back(i);
      }
    }
    const auto keep_best = [](std::vector<Index>& list, auto better) {
      const auto kept = std::min<std::size_t>(list.size(), kExchangeCandidates);
      std::partial_sort(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(kept), list.end(),
                        better);
      list.resize(kept);
    };
    keep_best(m_heap,
              [&](Index a, Index b) { return m_key(a) != m_key(b) ? m_key(a) > m_key(b) : a < b; });
    keep_best(m_sales, [&](Index a, Index b) {
      return m_step(a) != m_step(b) ? m_step(a) < m_step(b) : a < b;
    });
    // Most cash any later sale frees, to stop scanning when none can fund a purchase.
    Scalar most_freed[kExchangeCandidates + 1];
    most_freed[m_sales.size()] = 0;
    for (std::size_t k = m_sales.size(); k-- > 0;)
      most_freed[k] = std::max(most_freed[k + 1], m_per_lot(m_sales[k]));
    const Scalar threshold = Scalar(1e-6) * total;
    bool exchanged = false;
    for (const Index j : m_heap) {
      if (m_used[static_cast<std::size_t>(j)])
        continue;
      const Scalar up = count_after_step_up(j);
      const Scalar need = cash_effect(j, m_count(j), prices) - cash_effect(j, up, prices);
      for (std::size_t k = 0; k < m_sales.size(); ++k) {
        const Index i = m_sales[k];
        if (cash_after - need + most_freed[k] < m_result.cash_floor)
          break;  // no later sale frees enough
        if (i == j || m_used[static_cast<std::size_t>(i)])
          continue;
        if (!(m_key(j) - m_step(i) > threshold))
          break;  // sales come least loss first: no later one gains enough either
        if (cash_after - need + m_per_lot(i) < m_result.cash_floor)
          continue;
        cash_after += m_per_lot(i) - need;
        m_count(i) = count_after_cut(i);
        m_count(j) = up;
        m_result.limits[static_cast<std::size_t>(i)] = TradeLimit::cash;
        m_used[static_cast<std::size_t>(i)] = m_used[static_cast<std::size_t>(j)] = 1;
        exchanged = true;
        break;
      }
    }
    for (const Index i : m_heap)
      m_used[static_cast<std::size_t>(i)] = 0;
    for (const Index i : m_sales)
      m_used[static_cast<std::size_t>(i)] = 0;
    return exchanged;
  }

  Status finish(ConstRef targets, ConstRef shares, ConstRef prices, Scalar value, Scalar gap_before,
                bool capped) {
    TradePlan<Scalar>& r = m_result;
    r.value_before = value;
    r.shares_delta = m_count.cwiseProduct(m_lot_sizes);
    r.notional = r.shares_delta.cwiseProduct(prices);
    r.cost = cost_of(r.notional.array());
    r.shares_after = shares + r.shares_delta;
    r.total_cost = r.cost.sum();
    r.buy_notional = r.notional.array().max(Scalar(0)).sum();
    r.sell_notional = (-r.notional.array()).max(Scalar(0)).sum();
    r.trades = (r.shares_delta.array() != 0).count();
    for (Index i = 0; i < m_assets; ++i) {
      auto& limit = r.limits[static_cast<std::size_t>(i)];
      if (limit == TradeLimit::cash && m_count(i) >= m_nearest(i))
        limit = TradeLimit::none;  // cut, then bought back with leftover cash
    }
    r.cash_after = exact_cash_after(prices);  // the very sum the cash decisions were checked on
    r.value_after = r.shares_after.dot(prices) + r.cash_after;
    const bool solvent = r.value_after > 0;  // costs can exceed the value (e.g. 100% in bps)
    if (solvent)
      r.weights_after = r.shares_after.cwiseProduct(prices) / r.value_after;
    else
      r.weights_after.setZero();
    r.tracking_error_before = std::sqrt(gap_before);
    r.tracking_error = (r.weights_after - targets).norm();
    r.turnover = (r.buy_notional + r.sell_notional) / (2 * value);

    r.status = Status{};
    if (!solvent) {
      r.status = Status{StatusCode::numerical_issue, 0, static_cast<double>(r.tracking_error),
                        "the costs consume the whole portfolio: its value after the plan is <= 0 "
                        "(weights_after set to 0)"};
    }
    const auto constrained = [&](const char* why) {
      if (r.status.ok())
        r.status = Status{StatusCode::constrained, 0, static_cast<double>(r.tracking_error), why};
    };
    if (r.cash_after < r.cash_floor)
      constrained(
          "cash after costs is below the buffer even with every buy cut and every "
          "allowed sale made");
    for (const TradeLimit limit : r.limits) {
      if (limit == TradeLimit::cash)
        constrained("cash was short: a purchase cut or a sale made larger (see result().limits)");
      else if (limit == TradeLimit::participation)
        constrained("a trade was cut to its participation cap (see result().limits)");
      else if (limit == TradeLimit::no_short)
        constrained("a sale was cut at the shares held: long-only (see result().limits)");
    }
    if (capped)
      constrained("the residual-cash search or its exchanges stopped at their step cap");
    if (r.status.ok())
      r.status.residual = static_cast<double>(r.tracking_error);
    r.status.iterations = m_steps;
    return r.status;
  }

  Index m_assets;
  RebalanceOptions m_options;
  AssetNames m_names;
  VectorType m_lot_sizes;
  VectorType m_inverse_lot_sizes, m_min_quantity_lots;
  // Per-asset working state of one plan, in lots.
  VectorType m_ideal;       ///< x_i, the ideal trade
  VectorType m_lot_weight;  ///< a_i = lot_i p_i / V_net, a lot's weight
  VectorType m_count;       ///< the planned trade
  VectorType m_nearest;     ///< the allowed count nearest x_i (before cash)
  VectorType m_lowest, m_highest, m_min_lots;
  VectorType m_sale_lots;        ///< the fewest lots whose sale raises cash (`smallest_sale`)
  VectorType m_key;              ///< heap keys
  VectorType m_per_lot, m_step;  ///< step 6: cash a cash-raising step frees, and its loss
  VectorType m_saved_count, m_saved_highest;  ///< m_count, m_highest before step 7's trials
  VectorType m_drop_key;  ///< step 7: squared-TE cost per unit of cash of dropping a cut buy
  std::vector<TradeLimit> m_lowest_limit, m_highest_limit;
  std::vector<Index> m_heap, m_sales, m_thin;
  std::vector<unsigned char> m_used;                 ///< assets already in an exchange of this pass
  VectorType m_alt_count, m_alt_key, m_alt_highest;  ///< the state finish_without restores
  std::vector<TradeLimit> m_alt_limits;
  VectorType m_without_count, m_without_highest;  ///< finish_without: the plan without the asset
  std::vector<TradeLimit> m_without_limits;
  std::vector<Index> m_alt_heap;
  std::vector<Run> m_runs;                ///< kMaxRuns per asset: the level take's steps
  std::vector<Index> m_level_members;     ///< take_to_level: members with steps inside its bracket
  std::vector<std::size_t> m_run_counts;  ///< runs in use per asset
  Index m_steps = 0;         ///< heap steps and level evaluations of the cash search (iterations)
  bool m_buys_only = false;  ///< step 4 with `CashShortfall::cut_buys_first`, its first greedy
  bool m_finished = false;   ///< finish_without left the plan after step 7
  bool m_finished_capped = false;  ///< and step 5's cap stopped a search there
  Index m_unaffordable = 0;        ///< purchase steps the last residual-cash pass could not afford
  TradePlan<Scalar> m_result;
};

}  // namespace dynweight
