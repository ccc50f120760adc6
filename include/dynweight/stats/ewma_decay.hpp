#pragma once

/// \file
/// The decay of an exponentially weighted average, given the way pandas accepts it.

#include <cmath>

#include "dynweight/core/validation.hpp"

namespace dynweight {

/// Smoothing factor α of an exponentially weighted average (weight (1 − α)^k on the observation k
/// bars old), built from any of pandas' four parameterisations:
///   half-life h > 0:        α = 1 − exp(−ln 2 / h)
///   span s ≥ 1:             α = 2 / (s + 1)
///   centre of mass c ≥ 0:   α = 1 / (1 + c)
///   α itself, 0 < α ≤ 1.
/// The RiskMetrics decay λ is 1 − α (λ = 0.94 is `EwmaDecay::from_alpha(0.06)`).
///
/// \code
/// auto decay = dynweight::EwmaDecay::from_halflife(30.0);   // α ≈ 0.0228
/// \endcode
class EwmaDecay {
 public:
  /// Half-life in bars, h > 0.
  static EwmaDecay from_halflife(double halflife) {
    check_parameter(halflife > 0 && std::isfinite(halflife), {"EwmaDecay::from_halflife"},
                    "halflife", halflife, "finite and > 0");
    const double alpha = 1.0 - std::exp(-std::log(2.0) / halflife);  // pandas' form
    // Past ~1.2e16 bars α rounds to 0, which would freeze the average.
    check_parameter(alpha > 0, {"EwmaDecay::from_halflife"}, "halflife", halflife,
                    "short enough that alpha = 1 - exp(-ln 2 / halflife) is > 0 in double "
                    "(below ~1.2e16 bars)");
    return EwmaDecay(alpha);
  }
  /// Span in bars, s ≥ 1.
  static EwmaDecay from_span(double span) {
    check_parameter(span >= 1 && std::isfinite(span), {"EwmaDecay::from_span"}, "span", span,
                    "finite and >= 1");
    return EwmaDecay(2.0 / (span + 1.0));
  }
  /// Centre of mass in bars, c ≥ 0.
  static EwmaDecay from_center_of_mass(double com) {
    check_parameter(com >= 0 && std::isfinite(com), {"EwmaDecay::from_center_of_mass"}, "com", com,
                    "finite and >= 0");
    return EwmaDecay(1.0 / (1.0 + com));
  }
  /// Smoothing factor, 0 < α ≤ 1.
  static EwmaDecay from_alpha(double alpha) {
    check_parameter(alpha > 0 && alpha <= 1, {"EwmaDecay::from_alpha"}, "alpha", alpha,
                    "in (0, 1]");
    return EwmaDecay(alpha);
  }

  [[nodiscard]] double alpha() const { return m_alpha; }
  /// RiskMetrics' λ = 1 − α.
  [[nodiscard]] double lambda() const { return 1.0 - m_alpha; }

 private:
  explicit EwmaDecay(double alpha) : m_alpha(alpha) {}
  double m_alpha;
};

}  // namespace dynweight
