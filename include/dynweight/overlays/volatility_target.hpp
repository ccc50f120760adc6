#pragma once

/// \file
/// `VolatilityTarget`: scale the whole book to an ex-ante volatility, under a leverage cap.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/overlays/overlay.hpp"
#include "dynweight/policies/estimates.hpp"

namespace dynweight {

/// Options of `VolatilityTarget`.
struct VolatilityTargetOptions {
  /// The annualised volatility to aim for (e.g. 0.10 for 10%); finite and > 0.
  double target = 0.0;
  /// Periods per year A: σ_annual = σ_period·√A. No default: 0 means unset and is rejected.
  double annualization = 0.0;
  /// Cap on the gross exposure Σ|w| after scaling; finite and > 0 (1: no borrowing).
  double max_leverage = 1.0;
  /// Cap on the scale k itself; > 0, none by default. 1 only ever scales down: for weights that
  /// sit at hard caps of their own (liquidity capacity), which scaling up would break.
  double max_scale = std::numeric_limits<double>::infinity();

  /// Throws `dynweight::Error` unless target and max_leverage are finite and > 0, max_scale is
  /// > 0 and annualization was set to a finite value > 0.
  void validate() const {
    const CheckContext context{"VolatilityTarget"};
    check_parameter(std::isfinite(target) && target > 0, context, "target", target,
                    "finite and > 0 (annualised, e.g. 0.10)");
    check_parameter(annualization != 0, context, "annualization", annualization,
                    "set explicitly, e.g. 252 or 365 (periods per year)");
    check_parameter(std::isfinite(annualization) && annualization > 0, context, "annualization",
                    annualization, "finite and > 0 (periods per year, e.g. 252 or 365)");
    check_parameter(std::isfinite(max_leverage) && max_leverage > 0, context, "max_leverage",
                    max_leverage, "finite and > 0");
    check_parameter(max_scale > 0, context, "max_scale", max_scale, "> 0");
  }
};

/// Scales the whole book so that its ex-ante volatility is the target: w ← k·w, with
/// σ = √(wᵀΣw · A) from `estimates.covariance()` (per period) and A = `annualization`, and
/// k = target / σ, lowered if needed so that the gross exposure Σ|k w_i| <= `max_leverage` and
/// k <= `max_scale` (then the volatility is below target: `leverage_capped()`). What is not
/// invested, 1 − Σw, is cash (`cash()`); scaling keeps the proportions of the weights, so bounds
/// stated relative to the invested sum (`WeightBounds`) still hold.
///
/// **Exactness.** Uncapped, k·σ hits the target to rounding (1e-12 relative in double). The cap
/// holds exactly as computed: `gross()`, the sum of |k w_i| in index order, is <= `max_leverage`
/// (k is nudged down by ulps if rounding put it above).
///
/// **Degenerate cases** (status `numerical_issue`): wᵀΣw <= 0 (a zero or indefinite covariance):
/// k is the leverage cap alone; wᵀΣw not finite, or every weight 0: the weights are left
/// unchanged (k = 1).
///
/// **Input** (`dynweight::Error`, weights and diagnostics unchanged): no estimates or no
/// covariance in the context, weights of the wrong size or not finite. Only the lower triangle of
/// the covariance is read, in either storage (the upper is never touched): wᵀΣw as one dot
/// product per column segment.
///
/// **Cost.** One read of the lower triangle of Σ (N²/2 entries, ~0.7× a dense Σw) and a few O(N)
/// passes; no allocation. When the context carries wᵀΣw already (`OverlayContext::variance`, e.g.
/// risk parity's own inside `Overlaid`), it is taken from there and the cost is O(N).
///
/// \code
/// dynweight::VolatilityTarget<double> target({.target = 0.10, .annualization = 252,
///                                             .max_leverage = 1.5});
/// target.apply({.estimates = &estimates}, weights);
/// const double cash = target.cash();  // 1 − Σw, negative when borrowing
/// \endcode
template <FloatingScalar Scalar_ = double>
class VolatilityTarget {
 public:
  using Scalar = Scalar_;
  using VectorType = Vector<Scalar>;
  using MatrixType = Matrix<Scalar>;

  explicit VolatilityTarget(VolatilityTargetOptions options) : m_options(options) {
    m_options.validate();
  }

  /// The checks of `apply` that do not read the weights, for weights of `assets` entries: a
  /// covariance in the context, of that size (`Overlaid` runs them before its policy).
  void check_context(const OverlayContext<Scalar>& context, Index assets) const {
    if (context.estimates == nullptr)
      detail::fail_missing("VolatilityTarget", "covariance");
    static_cast<void>(context.estimates->covariance("VolatilityTarget"));
    check_size(CheckContext{"VolatilityTarget::apply", context.estimates->names()}, "weights",
               assets, context.estimates->assets());
  }

  Status apply(const OverlayContext<Scalar>& context, Eigen::Ref<VectorType> weights) {
    check_context(context, weights.size());
    const Estimates<Scalar>& estimates = *context.estimates;
    const MatrixType& sigma = estimates.covariance("VolatilityTarget");
    const Index n = estimates.assets();
    const CheckContext check{"VolatilityTarget::apply", estimates.names()};
    check_finite(check, "weights", weights);

    // Σ is symmetric in either storage (a full Σ is checked when given to `Estimates`), so its
    // lower triangle is all the quadratic form needs: half the reads of Σw.
    const Scalar variance =
        context.variance != nullptr ? *context.variance : quadratic_form_lower(sigma, weights);
    const Scalar gross_before = weights.template lpNorm<1>();
    const Scalar annualization = static_cast<Scalar>(m_options.annualization);
    const Scalar leverage = static_cast<Scalar>(m_options.max_leverage);

    if (!(gross_before > 0) || !std::isfinite(variance)) {
      m_volatility_before = std::sqrt(std::max(variance, Scalar(0)) * annualization);
      m_scale = 1;
      m_volatility_after = m_volatility_before;
      m_gross = gross_before;
      m_cash = Scalar(1) - weights.sum();
      m_capped = false;
      return {StatusCode::numerical_issue, 0, 0.0,
              "the weights are all zero or their variance is not finite: they were left "
              "unchanged"};
    }
    m_volatility_before = variance > 0 ? std::sqrt(variance * annualization) : Scalar(0);
    m_capped = false;
    Status status;
    Scalar k;
    if (variance > 0) {
      k = static_cast<Scalar>(m_options.target) / m_volatility_before;
      if (k * gross_before > leverage) {
        k = leverage / gross_before;
        m_capped = true;
      }
    } else {
      k = leverage / gross_before;
      m_capped = true;
      status = {StatusCode::numerical_issue, 0, 0.0,
                "the ex-ante variance w'Sw is not positive: the weights were scaled to the "
                "leverage cap"};
    }
    if (k > static_cast<Scalar>(m_options.max_scale)) {
      k = static_cast<Scalar>(m_options.max_scale);
      m_capped = true;
    }
    Scalar gross = scaled_gross(weights, k);
    if (gross > leverage) {  // rounding: bring Σ|k w_i| back under the cap
      m_capped = true;
      k *= leverage / gross;
      gross = scaled_gross(weights, k);
      for (int nudge = 0; gross > leverage && nudge < 16; ++nudge) {
        k = std::nextafter(k, Scalar(0));
        gross = scaled_gross(weights, k);
      }
      if (gross > leverage) {
        k *= Scalar(1) - Scalar(4 * (n + 1)) * std::numeric_limits<Scalar>::epsilon();
        gross = scaled_gross(weights, k);
      }
    }
    Scalar invested = 0;
    for (Index i = 0; i < n; ++i) {
      weights(i) = k * weights(i);
      invested += weights(i);
    }
    m_scale = k;
    m_volatility_after = k * m_volatility_before;
    m_gross = gross;
    m_cash = Scalar(1) - invested;
    return status;
  }

  [[nodiscard]] const VolatilityTargetOptions& options() const { return m_options; }
  /// k of the last `apply`.
  [[nodiscard]] Scalar scale() const { return m_scale; }
  /// Annualised ex-ante volatility before and after scaling (0 when wᵀΣw <= 0).
  [[nodiscard]] Scalar volatility_before() const { return m_volatility_before; }
  [[nodiscard]] Scalar volatility_after() const { return m_volatility_after; }
  /// Σ|w| after scaling, in index order; <= max_leverage.
  [[nodiscard]] Scalar gross() const { return m_gross; }
  /// 1 − Σw after scaling (negative when the book borrows).
  [[nodiscard]] Scalar cash() const { return m_cash; }
  /// Whether a cap (max_leverage or max_scale) rather than the target set the scale.
  [[nodiscard]] bool leverage_capped() const { return m_capped; }

 private:
  // wᵀΣw from the lower triangle, reading each entry once:
  // Σ_j w_j (Σ_jj w_j + 2 Σ_{i>j} Σ_ij w_i), a dot product per column segment. (Eigen's
  // selfadjointView<Lower>() * w does the same work, but g++ 12 reports a false
  // -Wmaybe-uninitialized inside it.)
  static Scalar quadratic_form_lower(const MatrixType& sigma, const Eigen::Ref<VectorType>& w) {
    using ConstMap = Eigen::Map<const VectorType>;
    const Index n = w.size();
    Scalar total = 0;
    for (Index j = 0; j < n; ++j) {
      const Index below = n - j - 1;
      const ConstMap column(sigma.data() + j * sigma.outerStride() + j + 1, below);
      const ConstMap rest(w.data() + j + 1, below);
      total += w(j) * (sigma(j, j) * w(j) + Scalar(2) * column.dot(rest));
    }
    return total;
  }

  static Scalar scaled_gross(const Eigen::Ref<VectorType>& weights, Scalar k) {
    Scalar gross = 0;
    for (Index i = 0; i < weights.size(); ++i)
      gross += std::abs(k * weights(i));
    return gross;
  }

  VolatilityTargetOptions m_options;
  Scalar m_scale = 1;
  Scalar m_volatility_before = 0;
  Scalar m_volatility_after = 0;
  Scalar m_gross = 0;
  Scalar m_cash = 1;
  bool m_capped = false;
};

static_assert(WeightOverlay<VolatilityTarget<double>>);
static_assert(WeightOverlay<VolatilityTarget<float>>);

}  // namespace dynweight
