#pragma once

/// \file
/// Oracle Approximating Shrinkage toward the scaled identity, as scikit-learn's `OAS`.

#include <Eigen/Core>
#include <algorithm>
#include <utility>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/estimators/shrinkage.hpp"

namespace dynweight {

/// Oracle Approximating Shrinkage (OAS) toward the scaled identity, on a T×N panel (observations
/// in rows):
///   Σ̂ = (1 − δ) S + δ μ I,
/// with S = YᵀY/T the covariance of the column-centred observations Y (divisor T) and
///   μ     = tr(S)/N,
///   α     = mean_ij S_ij² = ||S||_F² / N²,
///   δ     = min(1, (α + μ²) / ((T + 1)(α − μ²/N)))     (1 when the denominator is 0).
/// Chen, Wiesel, Eldar & Hero (2010), "Shrinkage algorithms for MMSE covariance estimation",
/// IEEE Trans. Signal Process. 58(10); in the form of scikit-learn 1.2.1 `OAS` (which, like the
/// authors' code, drops the 2/N factors of the paper's eq. 23).
///
/// **Conventions.** Exactly scikit-learn's estimator; its denominator factor α − μ²/N is summed as
/// ||S − μ I||_F²/N² (the same number without cancellation, never negative). N = 1 gives δ = 0,
/// as scikit-learn (the target equals S). Constant assets have exactly zero variance (see
/// `SampleCovarianceWorkspace`).
///
/// **Status.** `success`, or `numerical_issue` when every asset has zero variance (μ = 0: the
/// target and the result are the zero matrix).
///
/// **Cost.** S by one rank-T update of the lower triangle (T N²/2 multiply-adds), then O(N²).
/// Memory O(T N + N²), sized on the first `compute` at a given (T, N) or by the sizing
/// constructor; later calls at that size never allocate (for a contiguous column-major input).
///
/// **Errors.** `compute` throws `dynweight::Error` when T < 2, N < 1, an observation is not finite
/// or beyond `SampleCovarianceWorkspace::input_limit()` (naming row and asset), or `shrunk` is not
/// N×N; the estimator and `shrunk` are then unchanged.
///
/// \code
/// Eigen::MatrixXd returns = Eigen::MatrixXd::Random(250, 10) * 0.01;  // T × N, one bar a row
/// Eigen::MatrixXd sigma(10, 10);
/// dynweight::Oas<double> oas(250, 10);  // sized up front
/// const dynweight::ShrinkageResult result = oas.compute(returns, sigma);
/// \endcode
template <FloatingScalar Scalar_ = double>
class Oas : public detail::BatchShrinkageEstimator<Scalar_> {
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
  explicit Oas(AssetNames names = {}) : Base(std::move(names)) {}

  /// An estimator sized for T = `observations` rows of N = `assets` columns.
  Oas(Index observations, Index assets, AssetNames names = {})
      : Base("Oas", observations, assets, std::move(names)) {}

  /// Estimates from `observations` (T×N) and writes the full symmetric N×N shrunk covariance
  /// into `shrunk`.
  ShrinkageResult compute(const Eigen::Ref<const MatrixType>& observations,
                          Eigen::Ref<MatrixType> shrunk) {
    const MatrixType& lower = this->sample_covariance_of("Oas::compute", observations, shrunk);
    const auto moments = detail::scaled_identity_moments(lower);
    const Scalar delta =
        detail::oas_intensity(moments, Scalar(observations.rows()), Scalar(observations.cols()));
    const Scalar scale = m_workspace.scale();  // 1 but for extreme data (see the workspace)
    const Scalar mu = moments.mu * scale;
    detail::shrink_to_scaled_identity<Scalar>(lower, delta, mu, shrunk, scale);
    m_workspace.unscale();
    m_result = detail::scaled_identity_result(static_cast<double>(delta), static_cast<double>(mu));
    return m_result;
  }
};

}  // namespace dynweight
