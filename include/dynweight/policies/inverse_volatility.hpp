#pragma once

/// \file
/// Inverse-volatility weights, w_i ∝ σ_i^−p.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/policy.hpp"

namespace dynweight {

/// Options of `InverseVolatility`.
struct InverseVolatilityOptions {
  /// p in w_i ∝ σ_i^−p: 1 (inverse volatility, the default), 2 (inverse variance), any p > 0.
  double power = 1.0;
  /// An asset whose volatility is below `relative_floor` × the largest volatility (a stale or
  /// near-constant price) is excluded: weight 0, status `numerical_issue`. Relative, so that
  /// scaling every volatility leaves the weights unchanged.
  double relative_floor = 1e-8;

  /// Throws `dynweight::Error` unless power > 0 and 0 <= relative_floor < 1 (both finite).
  void validate() const {
    const CheckContext context{"InverseVolatility"};
    check_parameter(std::isfinite(power) && power > 0, context, "power", power, "finite and > 0");
    check_parameter(relative_floor >= 0 && relative_floor < 1, context, "relative_floor",
                    relative_floor, "in [0, 1)");
  }
};

/// w_i = σ_i^−p / Σ_j σ_j^−p from `estimates.volatility()`.
///
/// **Method.** Each term is taken as (σ_min/σ_i)^p, σ_min the smallest volatility kept: every term
/// lies in (0, 1], the smallest asset's is exactly 1, so no scale of the volatilities (1e-160 or
/// 1e160 with p = 2, where σ^−p itself overflows or underflows) changes the weights beyond
/// rounding.
///
/// **Input.** A volatility that is negative or not finite is bad input (`dynweight::Error` naming
/// the asset; the weights are unchanged). A volatility of exactly 0 is data, not an error: it is
/// what the rolling engines report for a stale price; such an asset, like any below the relative
/// floor, gets weight 0 and the status is `numerical_issue` (weights still sum to 1). If no asset
/// is above the floor, the weights are left unchanged and the status is `numerical_issue`.
///
/// **Cost.** O(N), no allocation.
template <FloatingScalar Scalar_ = double>
class InverseVolatility {
 public:
  using Scalar = Scalar_;
  using VectorType = Vector<Scalar>;

  explicit InverseVolatility(InverseVolatilityOptions options = {}) : m_options(options) {
    m_options.validate();
  }

  Status compute(const Estimates<Scalar>& estimates, Eigen::Ref<VectorType> weights) {
    const Index n = estimates.assets();
    const CheckContext context{"InverseVolatility::compute", estimates.names()};
    check_size(context, "weights", weights.size(), n);
    const VectorType& volatility = estimates.volatility("InverseVolatility");
    check_nonnegative(context, "volatility", volatility);

    const Scalar floor = static_cast<Scalar>(m_options.relative_floor) * volatility.maxCoeff();
    const auto kept = [&](Index i) { return volatility(i) > floor && volatility(i) != 0; };
    Scalar smallest = std::numeric_limits<Scalar>::infinity();
    Index excluded = 0;
    for (Index i = 0; i < n; ++i) {
      if (kept(i))
        smallest = std::min(smallest, volatility(i));
      else
        ++excluded;
    }
    if (excluded == n) {
      return {StatusCode::numerical_issue, 0, 0.0,
              "no asset has a volatility above the floor: the weights were left unchanged"};
    }
    // Terms in (0, 1], one of them 1: the total is in [1, N]. Each term once (a pow for p ≠ 1, 2).
    Scalar total = 0;
    for (Index i = 0; i < n; ++i) {
      weights(i) = kept(i) ? relative_weight(smallest / volatility(i)) : Scalar(0);
      total += weights(i);
    }
    weights /= total;
    if (excluded > 0) {
      return {StatusCode::numerical_issue, 0, 0.0,
              "an asset's volatility is below the floor (stale or constant price): it was given "
              "weight 0"};
    }
    return {};
  }

  [[nodiscard]] const InverseVolatilityOptions& options() const { return m_options; }

 private:
  // (σ_min/σ_i)^p from the ratio σ_min/σ_i in (0, 1].
  Scalar relative_weight(Scalar ratio) const {
    if (m_options.power == 1.0)
      return ratio;
    if (m_options.power == 2.0)
      return ratio * ratio;
    return std::pow(ratio, static_cast<Scalar>(m_options.power));
  }

  InverseVolatilityOptions m_options;
};

static_assert(WeightingPolicy<InverseVolatility<double>>);
static_assert(WeightingPolicy<InverseVolatility<float>>);

}  // namespace dynweight
