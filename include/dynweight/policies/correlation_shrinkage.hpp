#pragma once

/// \file
/// `CorrelationShrinkage<Inner>`: shrink the covariance, then let another policy weight.

#include <Eigen/Core>
#include <cmath>
#include <utility>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/estimators/rolling_shrinkage.hpp"
#include "dynweight/estimators/shrinkage.hpp"
#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/policy.hpp"

namespace dynweight {

/// Hands `Inner` the estimates with a shrunk covariance Σ̂ (and the volatilities √Σ̂_ii, so that
/// they agree with it); mean, dollar volume and names pass through unchanged. Σ̂ comes from
///   - a fixed intensity δ toward a target built from the given covariance S:
///     `ShrinkageTarget::scaled_identity` (Σ̂ = (1 − δ) S + δ μI, μ = tr S / N) or
///     `ShrinkageTarget::constant_correlation` (Σ̂ = (1 − δ) S + δ F, F_ii = S_ii,
///     F_ij = r̄ √(S_ii S_jj), r̄ the average correlation); or
///   - a `RollingShrinkage` the caller keeps updated with the returns (Ledoit–Wolf, OAS or
///     constant correlation of the live window, intensity estimated every bar); the estimates'
///     covariance is then not read.
/// The status is the worse of the shrinkage's and the inner policy's (the inner one's iterations
/// and residual are kept). Σ̂ is formed in a spare buffer that becomes `shrunk_covariance()` once
/// the inner policy has returned (an O(1) swap), so that an error thrown by either leaves the
/// policy as it was; the price is a second N×N matrix.
///
/// \code
/// dynweight::CorrelationShrinkage<dynweight::RiskParity<double>> policy(
///     dynweight::RiskParity<double>{}, dynweight::ShrinkageTarget::constant_correlation, 0.3);
/// policy.compute(estimates, weights);
/// \endcode
template <WeightingPolicy Inner>
class CorrelationShrinkage {
 public:
  using Scalar = typename Inner::Scalar;
  using VectorType = Vector<Scalar>;
  using MatrixType = Matrix<Scalar>;

  /// A fixed intensity δ in [0, 1] toward `target`.
  CorrelationShrinkage(Inner inner, ShrinkageTarget target, Scalar intensity)
      : m_inner(std::move(inner)), m_target(target), m_intensity(intensity) {
    check_parameter(intensity >= 0 && intensity <= 1, CheckContext{"CorrelationShrinkage"},
                    "intensity", static_cast<double>(intensity), "in [0, 1]");
  }

  /// The intensity and target of `rolling`, which must outlive the policy and be updated by the
  /// caller.
  CorrelationShrinkage(Inner inner, RollingShrinkage<Scalar>& rolling)
      : m_inner(std::move(inner)), m_rolling(&rolling) {}

  Status compute(const Estimates<Scalar>& estimates, Eigen::Ref<VectorType> weights) {
    const Index n = estimates.assets();
    const CheckContext context{"CorrelationShrinkage::compute", estimates.names()};
    check_size(context, "weights", weights.size(), n);
    if (m_rolling != nullptr)
      check_size(context, "assets of the rolling shrinkage", m_rolling->assets(), n);
    if (m_spare.rows() != n) {
      m_spare.resize(n, n);
      m_spare_volatility.resize(n);
    }
    ShrinkageResult shrinkage;
    if (m_rolling != nullptr) {
      shrinkage = m_rolling->compute(m_spare);
      if (shrinkage.status.code == StatusCode::not_ready)
        return shrinkage.status;
    } else {
      shrinkage = shrink_fixed(estimates, context);
    }
    m_spare_volatility = m_spare.diagonal().cwiseMax(Scalar(0)).cwiseSqrt();

    Estimates<Scalar> shrunk(n, estimates.names().empty() ? nullptr : &estimates.names());
    // Σ̂ is symmetric by construction and finite when S is (checked when it was set).
    shrunk.set_covariance(m_spare, SymmetricStorage::full, Estimates<Scalar>::unchecked)
        .set_volatility(m_spare_volatility);
    if (m_rolling != nullptr)  // the rolling output's lineage (see `RollingShrinkage`)
      shrunk.set_covariance_lineage(m_rolling->output_id(), m_rolling->output_step());
    if (estimates.has_mean())
      shrunk.set_mean(estimates.mean());
    if (estimates.has_dollar_volume())
      shrunk.set_dollar_volume(estimates.dollar_volume());
    Status status = m_inner.compute(shrunk, weights);
    m_shrunk.swap(m_spare);  // this call's Σ̂ becomes the current one
    m_volatility.swap(m_spare_volatility);
    m_last = shrinkage;
    if (m_spare.rows() != n) {  // the first call at this size: the spare for the next ones
      m_spare.resize(n, n);
      m_spare_volatility.resize(n);
    }
    if (status.ok() && !shrinkage.status.ok()) {
      status.code = shrinkage.status.code;
      status.detail = shrinkage.status.detail;
    }
    return status;
  }

  /// The shrinkage of the last `compute` (intensity, target parameter, status).
  [[nodiscard]] const ShrinkageResult& shrinkage() const { return m_last; }
  /// Σ̂ of the last `compute` (full symmetric).
  [[nodiscard]] const MatrixType& shrunk_covariance() const { return m_shrunk; }
  [[nodiscard]] Inner& inner() { return m_inner; }
  [[nodiscard]] const Inner& inner() const { return m_inner; }

 private:
  ShrinkageResult shrink_fixed(const Estimates<Scalar>& estimates, const CheckContext& context) {
    const Index n = estimates.assets();
    const MatrixType& covariance = estimates.covariance("CorrelationShrinkage");
    check_nonnegative(context, "covariance diagonal", covariance.diagonal());
    // The shared shrinkage code reads the lower triangle only: either storage works as is.
    if (m_target == ShrinkageTarget::scaled_identity) {
      const Scalar mu = covariance.diagonal().sum() / Scalar(n);
      detail::shrink_to_scaled_identity<Scalar>(covariance, m_intensity, mu, m_spare);
      return detail::scaled_identity_result(static_cast<double>(m_intensity),
                                            static_cast<double>(mu));
    }
    m_correlation_target.compute(covariance);
    m_correlation_target.shrink(covariance, m_intensity, m_spare);
    return {m_correlation_target.status(), static_cast<double>(m_intensity),
            m_correlation_target.reported_mean_correlation()};
  }

  Inner m_inner;
  RollingShrinkage<Scalar>* m_rolling = nullptr;
  ShrinkageTarget m_target = ShrinkageTarget::scaled_identity;
  Scalar m_intensity = 0;
  MatrixType m_shrunk;  // Σ̂ of the last compute
  VectorType m_volatility;
  MatrixType m_spare;  // where the next compute forms its Σ̂
  VectorType m_spare_volatility;
  detail::ConstantCorrelationTarget<Scalar> m_correlation_target;
  ShrinkageResult m_last{Status::not_ready("compute() has not been called"), 0.0, 0.0};
};

}  // namespace dynweight
