#pragma once

/// \file
/// Per-bar simple or log returns from a stream of prices.

#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <utility>

#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"

namespace dynweight {

/// How a `ReturnCalculator` turns two consecutive prices into a return.
enum class ReturnKind {
  simple,  ///< r = p_t / p_{t−1} − 1 (pandas `pct_change()`, correctly rounded: see below)
  log,     ///< r = ln(p_t / p_{t−1}) (pandas `np.log(prices).diff()`)
};

/// Returns of N assets from one bar of prices at a time: after price bar t (t ≥ 1),
///   simple  r_t = p_t / p_{t−1} − 1,
///   log     r_t = ln(p_t / p_{t−1}),
/// the return from bar t−1 to bar t, per period (one bar), never annualised.
///
/// **Accuracy.** Both are computed from the price move d = p_t − p_{t−1}: simple r = d / p_{t−1};
/// log r = log1p(d / p_{t−1}) while the price moves by less than a factor of 2, ln(p_t / p_{t−1})
/// beyond. Within a factor of 2, d is exact (Sterbenz's lemma), so d / p_{t−1} is correctly
/// rounded (relative error ≤ u = 2⁻⁵³ however small the move) and log1p adds about one ulp of its
/// own. The textbook p_t / p_{t−1} − 1 rounds the ratio near 1 first, an absolute error up to
/// 1.1e-16, i.e. 1.1e-12 relative on a 1e-4 move; differencing logs (pandas) loses up to ulp(ln p),
/// 1.8e-15 absolute at prices near 1e4. Beyond a factor of 2 the ratio's relative rounding is
/// harmless while log1p near a total loss is ill-conditioned, hence the switch. A repeated price
/// gives exactly 0.
///
/// **Cost.** O(N) per update; every buffer is sized at construction and `update()` never
/// allocates.
///
/// **Errors.** `update()` throws `dynweight::Error` on a wrong size or a price that is NaN, ±Inf,
/// zero or negative, naming the asset and the price bar, and leaves the calculator unchanged.
///
/// \code
/// // prices: an Eigen::MatrixXd of 3 assets × T bars, one bar per column
/// dynweight::ReturnCalculator<double> returns(3);  // simple returns
/// dynweight::RollingMoments<double> rolling(3, {.window = 60});
/// for (Eigen::Index t = 0; t < prices.cols(); ++t) {
///   if (returns.update(prices.col(t)))  // true from the second bar on
///     rolling.update(returns.returns());
/// }
/// \endcode
template <FloatingScalar Scalar_ = double>
class ReturnCalculator {
 public:
  using Scalar = Scalar_;
  using VectorType = Vector<Scalar>;

  /// Sizes every buffer for `assets` series; `names` (optional, one per asset) label error
  /// messages.
  explicit ReturnCalculator(Index assets, ReturnKind kind = ReturnKind::simple,
                            AssetNames names = {})
      : m_kind(kind),
        m_names(validated(std::move(names), assets)),
        m_returns(assets),
        m_last_prices(assets) {
    reset();
  }

  /// Forgets every price; the size, kind and names are kept.
  void reset() {
    m_bars = 0;
    m_returns.setConstant(nan());
    m_last_prices.setConstant(nan());
  }

  /// Accepts one bar of prices (one per asset, finite and > 0). Returns `ready()`: true when this
  /// bar completed a return (from the second bar on).
  bool update(const Eigen::Ref<const VectorType>& prices) {
    const CheckContext context{"ReturnCalculator::update", m_names, m_bars};
    check_size(context, "prices", prices.size(), assets());
    check_positive(context, "prices", prices);
    // A simple return overflows when a price jumps by more than the range of Scalar (1e-300 to
    // 1e10); the log return does not (see period_return). Checked before anything changes.
    if (m_bars > 0 && m_kind == ReturnKind::simple) {
      for (Index i = 0; i < assets(); ++i) {
        if (!std::isfinite(period_return(m_last_prices(i), prices(i)))) {
          detail::fail_entry(
              context, "prices", i, 0, true, static_cast<double>(prices(i)),
              detail::concat({"a price whose simple return from the last bar's is finite (the "
                              "ratio to the last price, ",
                              detail::format_value(static_cast<double>(m_last_prices(i))),
                              ", overflows)"}));
        }
      }
    }

    if (m_bars > 0) {
      for (Index i = 0; i < assets(); ++i)
        m_returns(i) = period_return(m_last_prices(i), prices(i));
    }
    m_last_prices = prices;
    ++m_bars;
    return ready();
  }

  [[nodiscard]] Index assets() const { return m_returns.size(); }
  [[nodiscard]] ReturnKind kind() const { return m_kind; }
  [[nodiscard]] const AssetNames& names() const { return m_names; }
  /// Price bars accepted since construction or `reset()`.
  [[nodiscard]] Index bars() const { return m_bars; }
  /// True once two price bars have been accepted, i.e. `returns()` holds a return.
  [[nodiscard]] bool ready() const { return m_bars >= 2; }

  /// The return from the previous price bar to the latest one; NaN before the second bar.
  [[nodiscard]] const VectorType& returns() const { return m_returns; }
  /// The latest prices accepted; NaN before the first bar.
  [[nodiscard]] const VectorType& last_prices() const { return m_last_prices; }

 private:
  static constexpr Scalar nan() { return std::numeric_limits<Scalar>::quiet_NaN(); }

  // The accurate forms described in the class comment.
  [[nodiscard]] Scalar period_return(Scalar previous, Scalar current) const {
    const Scalar move = (current - previous) / previous;
    if (m_kind == ReturnKind::simple)
      return move;
    const Scalar ratio = current / previous;
    if (ratio >= Scalar(0.5) && ratio <= Scalar(2))
      return std::log1p(move);
    // A ratio beyond the range of Scalar (prices near its limits) still has a representable log.
    return std::isnormal(ratio) ? std::log(ratio) : std::log(current) - std::log(previous);
  }

  static AssetNames validated(AssetNames names, Index assets) {
    const CheckContext context{"ReturnCalculator"};
    check_parameter(assets >= 1, context, "assets", static_cast<double>(assets), ">= 1");
    check_names(context, names, assets);
    return names;
  }

  ReturnKind m_kind;
  AssetNames m_names;
  VectorType m_returns;
  VectorType m_last_prices;
  Index m_bars = 0;
};

}  // namespace dynweight
