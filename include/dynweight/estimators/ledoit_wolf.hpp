#pragma once

/// \file
/// Ledoit–Wolf shrinkage of the sample covariance toward the scaled identity, as scikit-learn's
/// `LedoitWolf`.

#include <Eigen/Core>
#include <algorithm>
#include <utility>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/estimators/shrinkage.hpp"

namespace dynweight {

/// Ledoit–Wolf shrinkage toward the scaled identity, on a T×N panel (observations in rows):
///   Σ̂ = (1 − δ) S + δ μ I,
/// with Y the column-centred observations, y_t its row t, S = YᵀY/T (divisor T, the MLE) and
///   μ      = tr(S)/N,
///   β̄      = ((1/T) Σ_t ||y_t||⁴ − ||S||_F²) / (N T)   (= (1/(N T²)) Σ_t ||y_t y_tᵀ − S||_F²),
///   d²     = ||S − μ I||_F² / N,
///   δ      = min(β̄, d²) / d²                           (0 when β̄ <= 0 or d² = 0).
/// Ledoit & Wolf (2004), "A well-conditioned estimator for large-dimensional covariance
/// matrices", J. Multivariate Anal. 88; the arithmetic of scikit-learn 1.2.1
/// `LedoitWolf(assume_centered=False)`.
///
/// **Conventions.** Exactly scikit-learn's estimator, with three rounding-level differences:
/// d² is summed as Σ_{i≠j} S_ij² + Σ_i (S_ii − μ)² rather than ||S||² − 2μ tr S + N μ² (no
/// cancellation when S is close to μ I); a β̄ that rounding makes negative (it is ≥ 0 by Jensen,
/// and exactly 0 when T = 2) gives δ = 0 rather than a tiny negative δ; and d² = 0 (S = μ I
/// already) gives δ = 0 where scikit-learn may divide by 0. N = 1 gives δ = 0, as scikit-learn
/// (the target equals S). Column means are taken about each column's first value (see
/// `SampleCovarianceWorkspace`), so a constant asset has exactly zero variance.
///
/// **Status.** `success`, or `numerical_issue` when every asset has zero variance (μ = 0: the
/// target and the result are the zero matrix). Otherwise, with δ > 0 the result is symmetric
/// positive definite.
///
/// **Cost.** S by one rank-T update of the lower triangle (Eigen's `rankUpdate` kernel,
/// T N²/2 multiply-adds), then O(T N + N²). Memory O(T N + N²), sized on the first `compute` at a
/// given (T, N) or by the sizing constructor; later calls at that size never allocate (pass a
/// contiguous column-major matrix: an `Eigen::Ref` to anything else makes a temporary, which is
/// the caller's allocation).
///
/// **Errors.** `compute` throws `dynweight::Error` when T < 2, N < 1, an observation is not finite
/// or beyond `SampleCovarianceWorkspace::input_limit()` (naming row and asset), or `shrunk` is not
/// N×N; the estimator and `shrunk` are then unchanged.
///
/// \code
/// Eigen::MatrixXd returns = Eigen::MatrixXd::Random(250, 10) * 0.01;  // T × N, one bar a row
/// Eigen::MatrixXd sigma(10, 10);
/// dynweight::LedoitWolf<double> lw;
/// const dynweight::ShrinkageResult result = lw.compute(returns, sigma);
/// // sigma is the full symmetric shrunk covariance; result.intensity is δ, result.target_parameter
/// μ \endcode
template <FloatingScalar Scalar_ = double>
class LedoitWolf : public detail::BatchShrinkageEstimator<Scalar_> {
  using Base = detail::BatchShrinkageEstimator<Scalar_>;
  using Base::m_names;
  using Base::m_result;
  using Base::m_workspace;

 public:
  using Scalar = Scalar_;
  using MatrixType = Matrix<Scalar>;
  using typename Base::SymmetricView;

  /// An estimator whose workspace is sized by the first `compute`; `names` (optional, one per
  /// asset) label error messages.
  explicit LedoitWolf(AssetNames names = {}) : Base(std::move(names)) {}

  /// An estimator sized for T = `observations` rows of N = `assets` columns.
  LedoitWolf(Index observations, Index assets, AssetNames names = {})
      : Base("LedoitWolf", observations, assets, std::move(names)), m_row_norm2(observations) {}

  /// Estimates from `observations` (T×N) and writes the full symmetric N×N shrunk covariance
  /// into `shrunk`.
  ShrinkageResult compute(const Eigen::Ref<const MatrixType>& observations,
                          Eigen::Ref<MatrixType> shrunk) {
    const MatrixType& lower =
        this->sample_covariance_of("LedoitWolf::compute", observations, shrunk);
    const auto moments = detail::scaled_identity_moments(lower);
    const Scalar delta = detail::ledoit_wolf_intensity(
        row_fourth_moment(), moments, Scalar(observations.rows()), Scalar(observations.cols()));
    const Scalar scale = m_workspace.scale();  // 1 but for extreme data (see the workspace)
    const Scalar mu = moments.mu * scale;
    detail::shrink_to_scaled_identity<Scalar>(lower, delta, mu, shrunk, scale);
    m_workspace.unscale();
    m_result = detail::scaled_identity_result(static_cast<double>(delta), static_cast<double>(mu));
    return m_result;
  }

 private:
  // Σ_t ||y_t||⁴, with ||y_t||² accumulated column by column into a T-vector.
  Scalar row_fourth_moment() {
    const auto& y = m_workspace.centred();
    m_row_norm2.resize(y.rows());
    m_row_norm2.setZero();
    for (Index j = 0; j < y.cols(); ++j)
      m_row_norm2.array() += y.col(j).array().square();
    return m_row_norm2.squaredNorm();
  }

  Vector<Scalar> m_row_norm2;
};

}  // namespace dynweight
