#pragma once

/// \file
/// The weighting-policy concept.

#include <concepts>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/policies/estimates.hpp"

namespace dynweight {

/// A weighting policy reads the current `Estimates` and writes target weights (one per asset,
/// summing to 1) into a caller-supplied vector, returning a `Status` with its diagnostics
/// (iterations, residual; `success`, `max_iterations`, `numerical_issue` or `not_ready`).
/// `compute` is non-const: a policy may keep workspace and a warm start between bars. Bad input
/// throws `dynweight::Error` and leaves the policy and the weights unchanged.
///
/// Wrappers (`CorrelationShrinkage<Inner>`, `LiquidityScaled<Inner>`) are class templates over any
/// type that satisfies this concept.
template <class P>
concept WeightingPolicy = FloatingScalar<typename P::Scalar> &&
    requires(P& policy, const Estimates<typename P::Scalar>& estimates,
             Eigen::Ref<Vector<typename P::Scalar>> weights) {
  { policy.compute(estimates, weights) } -> std::same_as<Status>;
};

}  // namespace dynweight
