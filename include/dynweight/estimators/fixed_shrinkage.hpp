#pragma once

/// \file
/// Shrinkage of the sample covariance toward a chosen target with a fixed, given intensity.

#include <Eigen/Core>
#include <utility>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/estimators/shrinkage.hpp"

namespace dynweight {

/// Shrinkage with a fixed intensity δ toward a chosen target, on a T×N panel (observations in
/// rows):
///   Σ̂ = (1 − δ) S + δ F,
/// with S = YᵀY/T the covariance of the column-centred observations (divisor T, as the
/// estimated-intensity classes) and F either
///   - `ShrinkageTarget::scaled_identity`: F = μ I, μ = tr(S)/N (as `LedoitWolf`, `Oas`), or
///   - `ShrinkageTarget::constant_correlation`: F_ii = S_ii, F_ij = r̄ √(S_ii S_jj), r̄ the
///     average correlation (as `ConstantCorrelation`, whose conventions for zero-variance assets
///     it shares: left out of r̄, zero rows in F).
/// δ = 0 returns S, δ = 1 the target. Ledoit & Wolf (2003, 2004) for the targets.
///
/// **Status.** `success`, or `numerical_issue` when the target is singular (μ = 0 for the scaled
/// identity; a zero-variance asset, or r̄ at a bound, for constant correlation).
///
/// **Cost.** S by one rank-T update of the lower triangle (T N²/2 multiply-adds), then O(N²);
/// sized on the first `compute` at a given (T, N) or by the sizing constructor, then allocation
/// free (for a contiguous column-major input).
///
/// **Errors.** The constructor throws `dynweight::Error` unless δ is in [0, 1]; `compute` throws
/// when T < 2, N < 1, an observation is not finite or beyond
/// `SampleCovarianceWorkspace::input_limit()` (naming row and asset), or `shrunk` is not
/// N×N, and the estimator and `shrunk` are then unchanged.
///
/// \code
/// Eigen::MatrixXd returns = Eigen::MatrixXd::Random(250, 10) * 0.01;  // T × N, one bar a row
/// Eigen::MatrixXd sigma(10, 10);
/// dynweight::FixedShrinkage<double> fixed(dynweight::ShrinkageTarget::constant_correlation, 0.3);
/// const dynweight::ShrinkageResult result = fixed.compute(returns, sigma);  // intensity 0.3
/// \endcode
template <FloatingScalar Scalar_ = double>
class FixedShrinkage : public detail::BatchShrinkageEstimator<Scalar_> {
  using Base = detail::BatchShrinkageEstimator<Scalar_>;
  using Base::m_names;
  using Base::m_result;
  using Base::m_workspace;

 public:
  using Scalar = Scalar_;
  using MatrixType = Matrix<Scalar>;
  using typename Base::SymmetricView;

  /// Shrinks toward `target` with intensity δ = `intensity` in [0, 1]; `names` (optional, one per
  /// asset) label error messages.
  FixedShrinkage(ShrinkageTarget target, Scalar intensity, AssetNames names = {})
      : Base(std::move(names)), m_target_kind(target), m_intensity(checked_intensity(intensity)) {}

  /// As above, sized for T = `observations` rows of N = `assets` columns.
  FixedShrinkage(ShrinkageTarget target, Scalar intensity, Index observations, Index assets,
                 AssetNames names = {})
      : Base("FixedShrinkage", observations, assets, std::move(names)),
        m_target_kind(target),
        m_intensity(checked_intensity(intensity)) {
    m_target.resize(assets);
  }

  /// Writes the full symmetric N×N shrunk covariance of `observations` (T×N) into `shrunk`.
  ShrinkageResult compute(const Eigen::Ref<const MatrixType>& observations,
                          Eigen::Ref<MatrixType> shrunk) {
    const MatrixType& lower =
        this->sample_covariance_of("FixedShrinkage::compute", observations, shrunk);
    const Scalar scale = m_workspace.scale();  // 1 but for extreme data (see the workspace)
    if (m_target_kind == ShrinkageTarget::scaled_identity) {
      const Scalar mu = lower.diagonal().sum() / Scalar(lower.rows()) * scale;
      detail::shrink_to_scaled_identity<Scalar>(lower, m_intensity, mu, shrunk, scale);
      m_result =
          detail::scaled_identity_result(static_cast<double>(m_intensity), static_cast<double>(mu));
    } else {
      m_target.compute(lower);
      m_target.shrink(lower, m_intensity, shrunk, scale, OutputStorage::full, scale);
      m_result = {m_target.status(), static_cast<double>(m_intensity),
                  m_target.reported_mean_correlation()};
    }
    m_workspace.unscale();
    return m_result;
  }

  [[nodiscard]] ShrinkageTarget target() const { return m_target_kind; }
  [[nodiscard]] Scalar intensity() const { return m_intensity; }

 private:
  static Scalar checked_intensity(Scalar intensity) {
    check_parameter(intensity >= 0 && intensity <= 1, CheckContext{"FixedShrinkage"}, "intensity",
                    static_cast<double>(intensity), "in [0, 1]");
    return intensity;
  }

  ShrinkageTarget m_target_kind;
  Scalar m_intensity;
  detail::ConstantCorrelationTarget<Scalar> m_target;
};

}  // namespace dynweight
