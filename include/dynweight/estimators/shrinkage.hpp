#pragma once

/// \file
/// Shared vocabulary of the batch shrinkage estimators (`LedoitWolf`, `Oas`, `ConstantCorrelation`,
/// `FixedShrinkage`): the shrinkage targets, the result record, and the workspace that centres a
/// T×N panel and forms its maximum-likelihood covariance S = YᵀY/T.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/stats/detail/symmetric_update.hpp"

namespace dynweight {

/// The structured matrix F a sample covariance S is shrunk toward: Σ̂ = (1 − δ) S + δ F.
enum class ShrinkageTarget {
  /// F = μ I with μ = tr(S)/N, the average variance (Ledoit & Wolf 2004, OAS).
  scaled_identity,
  /// F_ii = S_ii, F_ij = r̄ √(S_ii S_jj) with r̄ the average sample correlation (Ledoit & Wolf 2003).
  constant_correlation,
};

/// Human-readable name of a shrinkage target.
constexpr std::string_view to_string(ShrinkageTarget target) noexcept {
  switch (target) {
    case ShrinkageTarget::scaled_identity:
      return "scaled_identity";
    case ShrinkageTarget::constant_correlation:
      return "constant_correlation";
  }
  return "unknown";
}

/// What a shrinkage estimator writes into its N×N output: `full`, or `lower` (half the writes,
/// for per-bar pipelines).
using OutputStorage = SymmetricStorage;

/// What a shrinkage estimator reports beside the shrunk covariance.
struct ShrinkageResult {
  /// `success`, or `numerical_issue` (with a static `detail`) when the target is singular, e.g. an
  /// asset with zero variance; the shrunk covariance is then still symmetric positive
  /// semi-definite. `not_ready` before the first `compute()`.
  Status status;
  /// The shrinkage intensity δ in [0, 1].
  double intensity = 0.0;
  /// The target's parameter: μ = tr(S)/N for the scaled identity, r̄ for constant correlation
  /// (NaN when no two assets have a positive variance, e.g. N = 1).
  double target_parameter = 0.0;
};

namespace detail {

/// `lower += alpha · Yᵀ Y` on the lower triangle, with Y the T×N matrix `centred`: exactly Eigen's
/// `lower.selfadjointView<Lower>().rankUpdate(centred.transpose(), alpha)` (the same kernel,
/// `general_matrix_matrix_triangular_product`, bit for bit), but with its packing buffers sized
/// once per (T, N) here instead of on every call (Eigen takes them from the heap whenever they
/// exceed its 128 KB stack limit, e.g. N = 500 and T ≥ 256).
template <FloatingScalar Scalar>
class GramKernel {
 public:
  GramKernel() = default;
  GramKernel(const GramKernel& other) { resize(other.m_depth, other.m_size); }
  GramKernel& operator=(const GramKernel& other) {
    if (this != &other)
      resize(other.m_depth, other.m_size);
    return *this;
  }
  GramKernel(GramKernel&&) noexcept = default;
  GramKernel& operator=(GramKernel&&) noexcept = default;
  ~GramKernel() = default;

  /// Sizes the packing buffers for T = `depth` observations of N = `size` assets.
  void resize(Index depth, Index size) {
    if (depth == m_depth && size == m_size && m_blocking)
      return;
    m_blocking.reset();
    m_depth = depth;
    m_size = size;
    if (depth <= 0 || size <= 0)
      return;
    m_blocking = std::make_unique<Blocking>(size, size, depth, 1, false);
    m_blocking->allocateAll();
  }

  /// `lower += alpha · centredᵀ centred` (lower triangle); `centred` must be `depth × size`.
  void run(const Matrix<Scalar>& centred, Matrix<Scalar>& lower, Scalar alpha) const {
    eigen_assert(m_blocking && centred.rows() == m_depth && centred.cols() == m_size);
    eigen_assert(lower.rows() == m_size && lower.cols() == m_size);
    // Yᵀ is a row-major N×T view of the column-major Y; Eigen's rankUpdate(Y.transpose()) makes
    // exactly this call.
    Eigen::internal::general_matrix_matrix_triangular_product<
        Index, Scalar, Eigen::RowMajor, false, Scalar, Eigen::ColMajor, false, Eigen::ColMajor, 1,
        Eigen::Lower>::run(m_size, m_depth, centred.data(), centred.outerStride(), centred.data(),
                           centred.outerStride(), lower.data(), 1, lower.outerStride(), alpha,
                           *m_blocking);
  }

 private:
  using Blocking =
      Eigen::internal::gemm_blocking_space<Eigen::ColMajor, Scalar, Scalar, Eigen::Dynamic,
                                           Eigen::Dynamic, Eigen::Dynamic>;
  std::unique_ptr<Blocking> m_blocking;
  Index m_depth = 0;
  Index m_size = 0;
};

/// Throws `dynweight::Error` unless T >= 2, N >= 1 (sizing constructors).
inline void check_dimensions(const CheckContext& context, Index observations, Index assets) {
  check_parameter(observations >= 2, context, "observations", static_cast<double>(observations),
                  ">= 2");
  check_parameter(assets >= 1, context, "assets", static_cast<double>(assets), ">= 1");
}

/// The centred panel Y (T×N, column j is asset j minus its mean) and S = YᵀY/T (lower triangle),
/// sized on first use at a given (T, N); shared by every shrinkage estimator.
template <FloatingScalar Scalar>
class SampleCovarianceWorkspace {
 public:
  using MatrixType = Matrix<Scalar>;

  SampleCovarianceWorkspace() = default;
  SampleCovarianceWorkspace(Index observations, Index assets) { resize(observations, assets); }

  /// The largest |observation| accepted: 2^(max_exponent/2 − 3) (1.7e153 in double, 2.3e18 in
  /// float), so that a centred value is at most 2^(max_exponent/2 − 2) and S, its mean square,
  /// stays finite.
  static Scalar input_limit() {
    return std::ldexp(Scalar(1), std::numeric_limits<Scalar>::max_exponent / 2 - 3);
  }

  /// Throws `dynweight::Error` unless T >= 2, N >= 1, every observation is finite and within
  /// ±`input_limit()`, `names` is empty or has N entries, and `shrunk` is N×N. Reads only; changes
  /// nothing.
  static void check(const CheckContext& context, const Eigen::Ref<const MatrixType>& observations,
                    Index shrunk_rows, Index shrunk_cols) {
    check_parameter(observations.rows() >= 2, context, "observations.rows() (T)",
                    static_cast<double>(observations.rows()), ">= 2");
    const Index n = observations.cols();
    check_parameter(n >= 1, context, "observations.cols() (N)", static_cast<double>(n), ">= 1");
    check_names(context, context.names, n);
    check_magnitude(context, "observations", observations, static_cast<double>(input_limit()),
                    "larger values would overflow the sample covariance");
    if (shrunk_rows != n || shrunk_cols != n) {
      fail(context, concat({"shrunk is ", std::to_string(shrunk_rows), "x",
                            std::to_string(shrunk_cols), ", expected ", std::to_string(n), "x",
                            std::to_string(n), " (N×N, N = observations.cols())"}));
    }
  }

  /// Sizes every buffer for T observations of N assets (a no-op at the current size). S reads NaN
  /// until the first `compute()`.
  void resize(Index observations, Index assets) {
    // Also when the panel has this size already: a workspace moved from keeps the panel it was
    // given in exchange, but its kernel's buffers left with the move.
    m_kernel.resize(observations, assets);
    if (observations == m_centred.rows() && assets == m_centred.cols())
      return;
    m_centred.resize(observations, assets);
    m_covariance.setConstant(assets, assets, std::numeric_limits<Scalar>::quiet_NaN());
  }

  /// Centres `observations` (checked) into Y and forms the lower triangle of S = YᵀY/T, both
  /// scaled by powers of two when the data's magnitude is extreme (see `scale()`).
  ///
  /// Each column's mean is taken about its first value, m_j = x_0j + mean_t(x_tj − x_0j), so an
  /// asset whose observations are all equal has exactly Y = 0 and zero variance and covariances
  /// (a plain mean can miss the constant by an ulp and leave ~1e-33 of rounding residue), and a
  /// large common level costs no digits.
  ///
  /// The estimators' fourth moments (Σ_t ‖y_t‖⁴, ‖S‖²_F) overflow or underflow long before S does:
  /// at returns of 1e80 (or 1e9 in float) δ came out 0 or NaN, at 1e-120 0 or 1. Their intensities
  /// do not change when the data are scaled, and S and μ scale by its square, so a panel whose
  /// largest centred |y| lies outside [2^(min_exponent/6), 2^(max_exponent/6)] (6.7e-52 to 1.5e51
  /// in double) is scaled by the power of two that brings it into [1/2, 1): exactly, so nothing but
  /// the range changes. Inside that range nothing is scaled (`scale()` is 1).
  void compute(const Eigen::Ref<const MatrixType>& observations) {
    resize(observations.rows(), observations.cols());
    const Index t = observations.rows();
    const Scalar inv_t = Scalar(1) / Scalar(t);
    for (Index j = 0; j < observations.cols(); ++j) {
      auto column = m_centred.col(j).array();
      column = observations.col(j).array() - observations(0, j);
      column -= column.sum() * inv_t;
    }
    m_exponent = 0;
    const Scalar largest = m_centred.cwiseAbs().maxCoeff();
    constexpr int low = std::numeric_limits<Scalar>::min_exponent / 6;
    constexpr int high = std::numeric_limits<Scalar>::max_exponent / 6;
    if (largest > 0 &&
        (largest < std::ldexp(Scalar(1), low) || largest > std::ldexp(Scalar(1), high))) {
      std::frexp(largest, &m_exponent);
      // In two factors: 2^−e alone overflows for subnormal data (e < −max_exponent).
      const int half = -m_exponent / 2;
      m_centred *= std::ldexp(Scalar(1), half);
      m_centred *= std::ldexp(Scalar(1), -m_exponent - half);
    }
    const Index n = assets();
    for (Index j = 0; j < n; ++j)
      m_covariance.col(j).tail(n - j).setZero();
    m_kernel.run(m_centred, m_covariance, inv_t);
  }

  /// The factor by which `covariance_lower()` (and Y, squared) must be multiplied to give S:
  /// 2^(2e) after a `compute` that scaled Y by 2^−e, else 1. (For data below ~1e-154 in double
  /// it underflows to 0 with S itself.)
  [[nodiscard]] Scalar scale() const { return std::ldexp(Scalar(1), 2 * m_exponent); }
  /// e of `scale()` = 2^(2e).
  [[nodiscard]] int exponent() const { return m_exponent; }

  /// Multiplies S back to the data's units (exact; a no-op when nothing was scaled), once the
  /// estimator has read what it needs.
  void unscale() {
    if (m_exponent == 0)
      return;
    const Scalar factor = scale();
    const Index n = assets();
    for (Index j = 0; j < n; ++j)
      m_covariance.col(j).tail(n - j) *= factor;
    m_exponent = 0;
  }

  [[nodiscard]] Index observations() const { return m_centred.rows(); }
  [[nodiscard]] Index assets() const { return m_centred.cols(); }
  /// Y, T×N.
  [[nodiscard]] const MatrixType& centred() const { return m_centred; }
  /// S = YᵀY/T in the lower triangle (diagonal included); the strict upper triangle is
  /// unspecified.
  [[nodiscard]] const MatrixType& covariance_lower() const { return m_covariance; }

 private:
  MatrixType m_centred;
  MatrixType m_covariance;
  GramKernel<Scalar> m_kernel;
  int m_exponent = 0;  ///< Y and S hold the data scaled by 2^−e and 2^−2e
};

/// Sums over the lower triangle of S that the scaled-identity estimators need.
template <class Scalar>
struct ScaledIdentityMoments {
  Scalar mu = 0;          ///< μ = tr(S)/N
  Scalar frobenius2 = 0;  ///< ||S||_F²
  Scalar distance2 = 0;   ///< ||S − μ I||_F², formed without cancellation
};

template <class Scalar>
ScaledIdentityMoments<Scalar> scaled_identity_moments(const Matrix<Scalar>& lower) {
  const Index n = lower.rows();
  ScaledIdentityMoments<Scalar> m;
  m.mu = lower.diagonal().sum() / Scalar(n);
  Scalar off2 = 0;
  Scalar diag2 = 0;
  Scalar dev2 = 0;
  for (Index j = 0; j < n; ++j) {
    const Scalar d = lower(j, j);
    diag2 += d * d;
    dev2 += (d - m.mu) * (d - m.mu);
    off2 += lower.col(j).tail(n - j - 1).squaredNorm();
  }
  m.frobenius2 = 2 * off2 + diag2;
  m.distance2 = 2 * off2 + dev2;
  return m;
}

/// Ledoit–Wolf's intensity as scikit-learn 1.2.1 `ledoit_wolf_shrinkage` computes it, from
/// Q = Σ_t ‖y_t‖⁴ and the moments of S on T observations of N assets: b = (Q/T − ‖S‖²_F)/(N T),
/// d = ‖S − μI‖²_F / N, δ = min(b, d)/d. N = 1, d = 0 (S is already μI) and a b that rounds below 0
/// give δ = 0.
template <class Scalar>
Scalar ledoit_wolf_intensity(Scalar fourth_moment_sum, const ScaledIdentityMoments<Scalar>& m,
                             Scalar t, Scalar n) {
  if (n <= 1)
    return Scalar(0);
  const Scalar beta = (fourth_moment_sum / t - m.frobenius2) / (n * t);
  const Scalar d2 = m.distance2 / n;
  const Scalar capped = std::min(beta, d2);
  return capped > 0 && d2 > 0 ? capped / d2 : Scalar(0);
}

/// OAS's intensity as scikit-learn 1.2.1 `oas` computes it: α = ‖S‖²_F/N², δ = min(1, (α + μ²) /
/// ((T + 1)(α − μ²/N))), with α − μ²/N formed as ‖S − μI‖²_F/N² (no cancellation). A zero
/// denominator gives 1 and N = 1 gives 0, as scikit-learn.
template <class Scalar>
Scalar oas_intensity(const ScaledIdentityMoments<Scalar>& m, Scalar t, Scalar n) {
  if (n <= 1)
    return Scalar(0);
  const Scalar alpha = m.frobenius2 / (n * n);
  const Scalar denominator = (t + 1) * (m.distance2 / (n * n));
  return denominator == 0 ? Scalar(1) : std::min((alpha + m.mu * m.mu) / denominator, Scalar(1));
}

/// out = (1 − δ) · scale · L + δ μ I, with L the lower triangle of S / scale (`scale` = 1 when
/// `lower` is S itself; (T − 1)/T for a sample covariance with ddof = 1); full symmetric, or its
/// lower triangle only.
template <class Scalar>
void shrink_to_scaled_identity(const Matrix<Scalar>& lower, Scalar delta, Scalar mu,
                               Eigen::Ref<Matrix<Scalar>> out, Scalar scale = Scalar(1),
                               OutputStorage storage = OutputStorage::full) {
  const Index n = lower.rows();
  const Scalar keep = (Scalar(1) - delta) * scale;
  // Rounded once, so that both paths add the same shift (a build with fused multiply-adds would
  // otherwise fuse δμ into one path's addition and not the other's).
  const Scalar shift = delta * mu;
  const bool in_place = out.data() == lower.data();
  if (storage == OutputStorage::full && !in_place) {
    scaled_symmetric_copy(lower, keep, out);  // one pass (see there)
    out.diagonal().array() += shift;
    return;
  }
  // Last columns first: an update pass that has just run over `lower` from the first column left
  // its last columns in the cache, so this pass starts on them (a Ledoit–Wolf bar of
  // `RollingShrinkage` at N = 500 took 0.87× its time in the other order, median of 6 alternating
  // runs).
  for (Index j = n - 1; j >= 0; --j) {
    out.col(j).tail(n - j) = keep * lower.col(j).tail(n - j);
    out(j, j) += shift;
  }
  if (storage == OutputStorage::full)
    mirror_lower_to_upper(out);
}

inline constexpr const char* zero_variance_identity_detail =
    "every asset has zero variance: the target mu I and the shrunk covariance are zero";

/// The result of a shrinkage toward μI: `numerical_issue` when μ = 0 (every asset constant).
inline ShrinkageResult scaled_identity_result(double intensity, double mu) {
  const Status status =
      mu > 0 ? Status{}
             : Status{StatusCode::numerical_issue, 0, 0.0, zero_variance_identity_detail};
  return {status, intensity, mu};
}

/// The constant-correlation target of S (Ledoit & Wolf 2003): s_i = √S_ii and the average
/// correlation r̄ over the pairs of assets whose variances are both > 0. An asset with S_ii = 0
/// (constant observations) has no correlation: it is left out of r̄ and its row and column of the
/// target are 0 (F_ij = r̄ s_i s_j = 0), so the target is singular.
template <FloatingScalar Scalar>
class ConstantCorrelationTarget {
 public:
  void resize(Index assets) {
    m_sd.resize(assets);
    m_inv_sd.resize(assets);
  }

  /// Computes s, 1/s (0 for a zero-variance asset) and r̄ from the lower triangle `lower` of
  /// S / scale (`scale` = 1 when it is S itself).
  void compute(const Matrix<Scalar>& lower, Scalar scale = Scalar(1)) {
    const Index n = lower.rows();
    compute_deviations(lower, scale);
    Scalar sum = 0;
    for (Index j = 0; j < n; ++j) {
      if (m_inv_sd(j) == 0)
        continue;
      sum += m_inv_sd(j) * lower.col(j).tail(n - j - 1).dot(m_inv_sd.tail(n - j - 1));
    }
    set_correlation_sum(scale * sum);
  }

  /// Variances at most this fraction of the largest count as zero: a volatility below 1e-8 of
  /// the largest, as `RiskParity`'s floor. Below it a variance is not resolved by a covariance
  /// accurate to ~ε‖S‖ (a rolling one, after livelier returns have left its window), and the
  /// asset's correlations are rounding noise that would move r̄ (by 0.05 in δ on real data).
  static constexpr Scalar kRelativeVarianceFloor = Scalar(1e-16);

  /// Computes s and 1/s only (O(N)); `compute` does this and then r̄. An asset whose variance is
  /// at most `kRelativeVarianceFloor` of the largest (zero included) has s = 0 and 1/s = 0.
  void compute_deviations(const Matrix<Scalar>& lower, Scalar scale = Scalar(1)) {
    const Index n = lower.rows();
    resize(n);
    m_live = 0;
    // The diagonal read once (an entry per cache line) into s, then s's contiguous copy. A
    // variance that rounded below 0 is below the floor (>= 0): zero variance, not NaN.
    Scalar largest = 0;
    for (Index i = 0; i < n; ++i) {
      m_sd(i) = scale * lower(i, i);
      largest = std::max(largest, m_sd(i));
    }
    const Scalar floor = kRelativeVarianceFloor * largest;
    for (Index i = 0; i < n; ++i) {
      const Scalar variance = m_sd(i);
      const bool live = variance > floor;
      m_sd(i) = live ? std::sqrt(variance) : Scalar(0);
      m_inv_sd(i) = live ? Scalar(1) / m_sd(i) : Scalar(0);
      m_live += live ? 1 : 0;
    }
  }

  /// Sets r̄ from Σ_{i>j} S_ij/(s_i s_j) over the live pairs, after `compute_deviations` (for
  /// callers that form the sum in a pass of their own).
  void set_correlation_sum(Scalar sum) {
    const Index pairs = m_live * (m_live - 1) / 2;
    m_mean_correlation = pairs > 0 ? sum / Scalar(pairs) : Scalar(0);
  }

  /// r̄ as used in the target (0 when there is no pair).
  [[nodiscard]] Scalar mean_correlation() const { return m_mean_correlation; }
  /// r̄ as reported: NaN when no two assets have a positive variance.
  [[nodiscard]] double reported_mean_correlation() const {
    return m_live >= 2 ? static_cast<double>(m_mean_correlation)
                       : std::numeric_limits<double>::quiet_NaN();
  }
  [[nodiscard]] const Vector<Scalar>& sd() const { return m_sd; }
  [[nodiscard]] const Vector<Scalar>& inv_sd() const { return m_inv_sd; }
  /// Assets with a positive variance.
  [[nodiscard]] Index live() const { return m_live; }

  /// `success`, or `numerical_issue` when the target is singular: an asset with zero variance,
  /// or r̄ at a bound (r̄ >= 1, or r̄ <= −1/(N − 1)).
  [[nodiscard]] Status status() const {
    const Index n = m_sd.size();
    if (m_live < n) {
      return {StatusCode::numerical_issue, 0, 0.0,
              "an asset has zero variance: its row of the constant-correlation target is 0 and "
              "the shrunk covariance is singular"};
    }
    if (n >= 2 &&
        (!(m_mean_correlation < 1) || !(m_mean_correlation > Scalar(-1) / Scalar(n - 1)))) {
      return {StatusCode::numerical_issue, 0, 0.0,
              "the average correlation is at a bound (1 or -1/(N-1)): the constant-correlation "
              "target is singular"};
    }
    return {};
  }

  /// ||F − S||_F² = Σ_{i≠j} (r̄ s_i s_j − S_ij)², with S = scale · `lower`.
  [[nodiscard]] Scalar squared_distance(const Matrix<Scalar>& lower,
                                        Scalar scale = Scalar(1)) const {
    const Index n = lower.rows();
    Scalar sum = 0;
    for (Index j = 0; j < n; ++j) {
      const Index m = n - j - 1;
      sum += ((m_mean_correlation * m_sd(j)) * m_sd.tail(m) - scale * lower.col(j).tail(m))
                 .squaredNorm();
    }
    return 2 * sum;
  }

  /// out = (1 − δ) S + δ F with S = scale · `lower`, full symmetric or its lower triangle; the
  /// diagonal is S_ii exactly. F is formed from the deviations `compute` found, times
  /// `target_scale` (1 when they are S's; `scale` when they are `lower`'s).
  void shrink(const Matrix<Scalar>& lower, Scalar delta, Eigen::Ref<Matrix<Scalar>> out,
              Scalar scale = Scalar(1), OutputStorage storage = OutputStorage::full,
              Scalar target_scale = Scalar(1)) const {
    const Index n = lower.rows();
    const Scalar keep = (Scalar(1) - delta) * scale;
    for (Index j = n - 1; j >= 0; --j) {  // last columns first: see shrink_to_scaled_identity
      const Index m = n - j - 1;
      out(j, j) = scale * lower(j, j);
      out.col(j).tail(m) = (delta * m_mean_correlation * m_sd(j) * target_scale) * m_sd.tail(m) +
                           keep * lower.col(j).tail(m);
    }
    if (storage == OutputStorage::full)
      mirror_lower_to_upper(out);
  }

 private:
  Vector<Scalar> m_sd;
  Vector<Scalar> m_inv_sd;
  Scalar m_mean_correlation = 0;
  Index m_live = 0;
};

/// The constant-correlation intensity of Ledoit & Wolf (2003) from π̂, ρ̂, γ̂ and tr S:
/// max(0, min(1, (π̂ − ρ̂)/γ̂ / T)), and 0 when γ̂ ≤ (16 ε tr S)² (F equals S up to rounding, as
/// always for N = 2; the shrunk matrix is then S whatever δ would be).
template <FloatingScalar Scalar>
Scalar constant_correlation_intensity(Scalar pi_hat, Scalar rho_hat, Scalar gamma_hat, Scalar trace,
                                      Scalar observations) {
  const Scalar noise = 16 * std::numeric_limits<Scalar>::epsilon() * trace;
  if (!(gamma_hat > noise * noise))
    return Scalar(0);
  const Scalar kappa = (pi_hat - rho_hat) / gamma_hat;
  return std::clamp(kappa / observations, Scalar(0), Scalar(1));
}

}  // namespace detail
}  // namespace dynweight

namespace dynweight::detail {

/// What every batch shrinkage estimator holds and reports: the asset names, the sample-covariance
/// workspace and the last result, with their accessors. `LedoitWolf`, `Oas`, `ConstantCorrelation`
/// and `FixedShrinkage` derive from it and add `compute()`.
template <FloatingScalar Scalar>
class BatchShrinkageEstimator {
 public:
  using MatrixType = Matrix<Scalar>;
  using SymmetricView = Eigen::SelfAdjointView<const MatrixType, Eigen::Lower>;

  /// The result of the last successful `compute` (`not_ready` before the first).
  [[nodiscard]] const ShrinkageResult& result() const { return m_result; }
  /// Symmetric view of the sample covariance S = YᵀY/T of the last `compute`.
  [[nodiscard]] SymmetricView sample_covariance() const {
    return m_workspace.covariance_lower().template selfadjointView<Eigen::Lower>();
  }
  [[nodiscard]] Index observations() const { return m_workspace.observations(); }
  [[nodiscard]] Index assets() const { return m_workspace.assets(); }
  [[nodiscard]] const AssetNames& names() const { return m_names; }

 protected:
  /// Workspace sized by the first `compute`.
  explicit BatchShrinkageEstimator(AssetNames names) : m_names(std::move(names)) {}
  /// Workspace sized for T = `observations` rows of N = `assets` columns; `where` names the
  /// estimator in error messages.
  BatchShrinkageEstimator(std::string_view where, Index observations, Index assets,
                          AssetNames names)
      : m_names(checked_names(where, observations, assets, std::move(names))),
        m_workspace(observations, assets) {}

  /// Checks the arguments of `<where>` (naming it in any error, before anything changes), centres
  /// `observations` and returns the lower triangle of S = YᵀY/T.
  const MatrixType& sample_covariance_of(std::string_view where,
                                         const Eigen::Ref<const MatrixType>& observations,
                                         const Eigen::Ref<MatrixType>& shrunk) {
    const CheckContext context{where, m_names};
    m_workspace.check(context, observations, shrunk.rows(), shrunk.cols());
    m_workspace.compute(observations);
    return m_workspace.covariance_lower();
  }

  AssetNames m_names;
  SampleCovarianceWorkspace<Scalar> m_workspace;
  ShrinkageResult m_result{Status::not_ready("compute() has not been called"), 0.0, 0.0};

 private:
  static AssetNames checked_names(std::string_view where, Index observations, Index assets,
                                  AssetNames names) {
    const CheckContext context{where};
    check_dimensions(context, observations, assets);
    check_names(context, names, assets);
    return names;
  }
};

}  // namespace dynweight::detail
