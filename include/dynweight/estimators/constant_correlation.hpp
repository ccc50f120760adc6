#pragma once

/// \file
/// Ledoit–Wolf (2003) shrinkage of the sample covariance toward the constant-correlation target.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/estimators/shrinkage.hpp"

namespace dynweight {

/// The sums behind the constant-correlation intensity (Ledoit & Wolf 2003), for diagnostics and
/// tests; see `ConstantCorrelation`.
struct ConstantCorrelationTerms {
  double pi_hat = 0.0;     ///< π̂ = Σ_ij π_ij
  double rho_hat = 0.0;    ///< ρ̂
  double gamma_hat = 0.0;  ///< γ̂ = ||F − S||_F²
};

/// Ledoit–Wolf shrinkage toward the constant-correlation target, on a T×N panel (observations in
/// rows):
///   Σ̂ = (1 − δ) S + δ F,   F_ii = S_ii,  F_ij = r̄ s_i s_j,
/// with Y the column-centred observations (rows y_t), S = YᵀY/T (divisor T), s_i = √S_ii,
/// r̄ = the average of S_ij/(s_i s_j) over i ≠ j, and
///   π̂  = Σ_ij (1/T) Σ_t (y_ti y_tj − S_ij)²,
///   ρ̂  = Σ_i π_ii + Σ_{i≠j} (r̄/2) (√(S_jj/S_ii) θ_ii,ij + √(S_ii/S_jj) θ_jj,ij),
///        θ_ii,ij = (1/T) Σ_t (y_ti² − S_ii)(y_ti y_tj − S_ij),
///   γ̂  = ||F − S||_F²,
///   δ  = max(0, min(1, (π̂ − ρ̂)/γ̂ / T)).
/// Ledoit & Wolf (2003), "Improved estimation of the covariance matrix of stock returns with an
/// application to portfolio selection", J. Empirical Finance 10 (the authors' covCor.m, 2014
/// version with divisor T).
///
/// **Algorithm.** Beyond forming S, everything is O(T N + N²), by the exact reductions
///   π̂ = (1/T) Σ_t ||y_t||⁴ − ||S||_F²,
///   Σ_i π_ii = (1/T) Σ_t Σ_i y_ti⁴ − Σ_i S_ii²,
///   Σ_{i≠j} √(S_jj/S_ii) θ_ii,ij = (1/T) Σ_t (z_t w_t − Σ_i y_ti⁴) − (sᵀ S s − Σ_i S_ii²),
/// with z_t = Σ_j s_j y_tj and w_t = Σ_i y_ti³/s_i; the two halves of ρ̂'s pair sum are equal by
/// symmetry, so ρ̂ = Σ_i π_ii + r̄ Σ_{i≠j} √(S_jj/S_ii) θ_ii,ij.
///
/// **Conventions and degenerate cases.**
/// - An asset with zero variance (constant observations: its centred column is exactly 0, see
///   `SampleCovarianceWorkspace`) has no correlation. It is left out of r̄ (the average over the
///   pairs of positive-variance assets), its row and column of F are 0 and its terms in π̂, ρ̂,
///   γ̂ vanish, so the other assets get exactly the estimate they would get without it. The status
///   is `numerical_issue` (the target and the result are singular, still symmetric positive
///   semi-definite).
/// - No pair of positive-variance assets (N = 1, say): r̄ is reported as NaN, F = S, δ = 0.
/// - γ̂ ≤ (16 ε)² (tr S)² (F equals S up to rounding: always when N = 2, where r̄ = r_01) gives
///   δ = 0; the shrunk matrix is S whatever δ would be.
/// - r̄ ≥ 1 or r̄ ≤ −1/(N − 1) (F singular) is reported as `numerical_issue`.
///
/// **Cost.** S by one rank-T update of the lower triangle (T N²/2 multiply-adds), then
/// ~6 T N + 4 N². Memory O(T N + N²), sized on the first `compute` at a given (T, N) or by the
/// sizing constructor; later calls at that size never allocate (for a contiguous column-major
/// input).
///
/// **Errors.** `compute` throws `dynweight::Error` when T < 2, N < 1, an observation is not finite
/// or beyond `SampleCovarianceWorkspace::input_limit()` (naming row and asset), or `shrunk` is not
/// N×N; the estimator and `shrunk` are then unchanged.
///
/// \code
/// Eigen::MatrixXd returns = Eigen::MatrixXd::Random(250, 10) * 0.01;  // T × N, one bar a row
/// Eigen::MatrixXd sigma(10, 10);
/// dynweight::ConstantCorrelation<double> cc;
/// const dynweight::ShrinkageResult result = cc.compute(returns, sigma);
/// // result.intensity is δ, result.target_parameter is r̄
/// \endcode
template <FloatingScalar Scalar_ = double>
class ConstantCorrelation : public detail::BatchShrinkageEstimator<Scalar_> {
  using Base = detail::BatchShrinkageEstimator<Scalar_>;
  using Base::m_names;
  using Base::m_result;
  using Base::m_workspace;

 public:
  using Scalar = Scalar_;
  using MatrixType = Matrix<Scalar>;
  using VectorType = Vector<Scalar>;
  using typename Base::SymmetricView;

  /// An estimator whose workspace is sized by the first `compute`; `names` (optional, one per
  /// asset) label error messages.
  explicit ConstantCorrelation(AssetNames names = {}) : Base(std::move(names)) {}

  /// An estimator sized for T = `observations` rows of N = `assets` columns.
  ConstantCorrelation(Index observations, Index assets, AssetNames names = {})
      : Base("ConstantCorrelation", observations, assets, std::move(names)) {
    resize_rows(observations);
    m_target.resize(assets);
  }

  /// Estimates from `observations` (T×N) and writes the full symmetric N×N shrunk covariance
  /// into `shrunk`.
  ShrinkageResult compute(const Eigen::Ref<const MatrixType>& observations,
                          Eigen::Ref<MatrixType> shrunk) {
    const MatrixType& lower =
        this->sample_covariance_of("ConstantCorrelation::compute", observations, shrunk);
    m_target.compute(lower);
    const Scalar delta = intensity(lower);
    const Scalar scale = m_workspace.scale();  // 1 but for extreme data (see the workspace)
    m_target.shrink(lower, delta, shrunk, scale, OutputStorage::full, scale);
    m_workspace.unscale();

    m_result.status = m_target.status();
    m_result.intensity = static_cast<double>(delta);
    m_result.target_parameter = m_target.reported_mean_correlation();
    return m_result;
  }

  /// π̂, ρ̂ and γ̂ of the last `compute`.
  [[nodiscard]] const ConstantCorrelationTerms& terms() const { return m_terms; }

 private:
  void resize_rows(Index observations) {
    m_row_norm2.resize(observations);
    m_row_fourth.resize(observations);
    m_scaled_sum.resize(observations);
    m_cubed_sum.resize(observations);
  }

  // δ from the reductions in the class comment; also records π̂, ρ̂, γ̂.
  Scalar intensity(const MatrixType& lower) {
    const MatrixType& y = m_workspace.centred();
    const Index t = y.rows();
    const Index n = y.cols();
    const VectorType& sd = m_target.sd();
    const VectorType& inv_sd = m_target.inv_sd();

    // One pass over Y, column by column, into four T-vectors: ||y_t||², Σ_i y_ti⁴, z_t, w_t.
    resize_rows(t);
    m_row_norm2.setZero();
    m_row_fourth.setZero();
    m_scaled_sum.setZero();
    m_cubed_sum.setZero();
    for (Index j = 0; j < n; ++j) {
      const auto column = y.col(j).array();
      m_row_norm2.array() += column.square();
      m_row_fourth.array() += column.square().square();
      m_scaled_sum.array() += sd(j) * column;
      m_cubed_sum.array() += inv_sd(j) * column.cube();
    }
    // Over the lower triangle of S: ||S||_F², Σ_i S_ii², sᵀ S s.
    Scalar off2 = 0;
    Scalar diag2 = 0;
    Scalar off_sss = 0;
    for (Index j = 0; j < n; ++j) {
      const Index m = n - j - 1;
      diag2 += lower(j, j) * lower(j, j);
      off2 += lower.col(j).tail(m).squaredNorm();
      off_sss += sd(j) * lower.col(j).tail(m).dot(sd.tail(m));
    }
    const Scalar inv_t = Scalar(1) / Scalar(t);
    const Scalar frobenius2 = 2 * off2 + diag2;
    const Scalar sum_fourth = m_row_fourth.sum() * inv_t;
    const Scalar pi_hat = m_row_norm2.squaredNorm() * inv_t - frobenius2;
    const Scalar pi_diagonal = sum_fourth - diag2;
    // sᵀSs − Σ_i S_ii² = 2 Σ_{i>j} s_i s_j S_ij (the diagonal terms are s_i² S_ii = S_ii²).
    const Scalar theta_sum = m_scaled_sum.dot(m_cubed_sum) * inv_t - sum_fourth - 2 * off_sss;
    const Scalar rbar = m_target.mean_correlation();
    const Scalar rho_hat = pi_diagonal + rbar * theta_sum;
    const Scalar gamma_hat = m_target.squared_distance(lower);
    // In the data's units (they scale as S², by 2^(4e)): inf where that is beyond double.
    const int exponent = 4 * m_workspace.exponent();
    m_terms = {std::ldexp(static_cast<double>(pi_hat), exponent),
               std::ldexp(static_cast<double>(rho_hat), exponent),
               std::ldexp(static_cast<double>(gamma_hat), exponent)};

    return detail::constant_correlation_intensity(pi_hat, rho_hat, gamma_hat,
                                                  Scalar(lower.diagonal().sum()), Scalar(t));
  }

  detail::ConstantCorrelationTarget<Scalar> m_target;
  VectorType m_row_norm2;   // ||y_t||²
  VectorType m_row_fourth;  // Σ_i y_ti⁴
  VectorType m_scaled_sum;  // z_t = Σ_j s_j y_tj
  VectorType m_cubed_sum;   // w_t = Σ_i y_ti³ / s_i (0 for a zero-variance asset)
  ConstantCorrelationTerms m_terms;
};

}  // namespace dynweight
