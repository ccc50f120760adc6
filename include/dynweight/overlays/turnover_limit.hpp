#pragma once

/// \file
/// `TurnoverLimit`: move from the book's current weights only part of the way to the target.

#include <Eigen/Core>
#include <cmath>
#include <limits>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/overlays/overlay.hpp"

namespace dynweight {

/// Options of `TurnoverLimit`.
struct TurnoverLimitOptions {
  /// τ, the largest one-way turnover ½Σ_i |w_i − w_prev,i| a rebalance may cause; > 0, and
  /// infinity (the default) for no limit.
  double max_turnover = std::numeric_limits<double>::infinity();
  /// b in (0, 1]: exponential smoothing w ← w_prev + b (w − w_prev) before the limit; 1 (the
  /// default) for none.
  double blend = 1.0;

  /// Throws `dynweight::Error` unless max_turnover > 0 (not NaN) and 0 < blend <= 1.
  void validate() const {
    const CheckContext context{"TurnoverLimit"};
    check_parameter(max_turnover > 0, context, "max_turnover", max_turnover,
                    "> 0 (infinity for no limit)");
    check_parameter(blend > 0 && blend <= 1, context, "blend", blend, "in (0, 1]");
  }
};

/// Moves the book from its current weights p (`OverlayContext::previous_weights`) towards the
/// target w along the straight line between them: first w ← p + b (w − p) (`blend`), then, if the
/// one-way turnover T = ½ Σ_i |w_i − p_i| (over assets; cash is implied) is above τ,
/// w ← p + (τ/T)(w − p). In all, w_out = p + s (w_in − p) with `step()` s in (0, 1].
///
/// **Constraints survive.** w_out = (1 − s) p + s w_in is a convex combination, so every convex
/// constraint that both p and w_in meet, w_out meets too: a gross leverage cap (Σ|·| is convex),
/// and bounds relative to the invested sum, l_i Σw <= w_i <= u_i Σw (`WeightBounds`), because they
/// are linear and homogeneous in w: with G = Σ_j w_j,
/// l_i G_out = (1 − s) l_i G_p + s l_i G_in <= (1 − s) p_i + s w_in,i = w_out,i, and likewise for
/// the cap. They hold to rounding (one multiply-add per weight).
///
/// **Input** (`dynweight::Error`, weights and diagnostics unchanged): no previous weights in the
/// context, either vector of the wrong size or not finite.
///
/// **Cost.** Three O(N) passes; no allocation.
///
/// \code
/// dynweight::TurnoverLimit<double> limit({.max_turnover = 0.05, .blend = 0.5});
/// limit.apply({.previous_weights = &book_weights}, targets);
/// \endcode
template <FloatingScalar Scalar_ = double>
class TurnoverLimit {
 public:
  using Scalar = Scalar_;
  using VectorType = Vector<Scalar>;

  explicit TurnoverLimit(TurnoverLimitOptions options = {}) : m_options(options) {
    m_options.validate();
  }

  /// The checks of `apply` that do not read the weights, for weights of `assets` entries: the
  /// previous weights given, of that size and finite (`Overlaid` runs them before its policy).
  void check_context(const OverlayContext<Scalar>& context, Index assets) const {
    const CheckContext check = checked_in(context);
    if (context.previous_weights == nullptr) {
      detail::fail(check,
                   "TurnoverLimit needs the previous weights (OverlayContext::previous_weights, "
                   "the book's current weights), which were not given");
    }
    check_size(check, "previous_weights", context.previous_weights->size(), assets);
    check_finite(check, "previous_weights", *context.previous_weights);
  }

  Status apply(const OverlayContext<Scalar>& context, Eigen::Ref<VectorType> weights) {
    check_context(context, weights.size());
    check_finite(checked_in(context), "weights", weights);
    const VectorType& previous = *context.previous_weights;

    const Index n = weights.size();
    Scalar requested = 0;
    for (Index i = 0; i < n; ++i)
      requested += std::abs(weights(i) - previous(i));
    requested /= 2;
    const Scalar blend = static_cast<Scalar>(m_options.blend);
    const Scalar limit = static_cast<Scalar>(m_options.max_turnover);
    Scalar step = blend;
    if (blend * requested > limit)
      step = limit / requested;
    if (step < 1) {
      for (Index i = 0; i < n; ++i)
        weights(i) = previous(i) + step * (weights(i) - previous(i));
    }
    Scalar done = 0;
    for (Index i = 0; i < n; ++i)
      done += std::abs(weights(i) - previous(i));
    m_turnover_before = requested;
    m_turnover_after = done / 2;
    m_step = step;
    return {};
  }

  [[nodiscard]] const TurnoverLimitOptions& options() const { return m_options; }
  /// ½Σ|w_in − p|: the turnover the target asked for, in the last `apply`.
  [[nodiscard]] Scalar turnover_before() const { return m_turnover_before; }
  /// ½Σ|w_out − p|: the turnover allowed (<= max_turnover, to rounding).
  [[nodiscard]] Scalar turnover_after() const { return m_turnover_after; }
  /// s, the fraction of the way from p to the target moved: w_out = p + s (w_in − p).
  [[nodiscard]] Scalar step() const { return m_step; }

 private:
  // Errors name the assets when the context has estimates.
  static CheckContext checked_in(const OverlayContext<Scalar>& context) {
    static const AssetNames no_names;
    return {"TurnoverLimit::apply",
            context.estimates != nullptr ? context.estimates->names() : no_names};
  }

  TurnoverLimitOptions m_options;
  Scalar m_turnover_before = 0;
  Scalar m_turnover_after = 0;
  Scalar m_step = 1;
};

static_assert(WeightOverlay<TurnoverLimit<double>>);
static_assert(WeightOverlay<TurnoverLimit<float>>);

}  // namespace dynweight
