#pragma once

/// \file
/// Streaming exponentially weighted mean, variance, volatility, covariance and correlation.

#include <Eigen/Core>
#include <limits>
#include <type_traits>
#include <utility>

#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/stats/detail/derived_statistics.hpp"
#include "dynweight/stats/detail/symmetric_update.hpp"
#include "dynweight/stats/ewma_decay.hpp"

namespace dynweight {

/// Which exponentially weighted covariance an `EwmaMoments` engine keeps.
enum class EwmaEstimator {
  /// pandas' `ewm(...).mean()/.var()/.cov()/.corr()`: centred on the exponentially weighted mean,
  /// with the `adjust` and `bias` conventions of `EwmaOptions`.
  pandas,
  /// RiskMetrics' zero-mean recursion Σ_0 = r_0 r_0ᵀ, Σ_t = λ Σ_{t−1} + (1 − λ) r_t r_tᵀ with
  /// λ = 1 − α; `adjust` and `bias` are ignored.
  riskmetrics,
};

/// Parameters of an `EwmaMoments` engine.
struct EwmaOptions {
  /// Smoothing factor α; RiskMetrics' λ is 1 − α (λ = 0.94 is `EwmaDecay::from_alpha(0.06)`).
  EwmaDecay decay = EwmaDecay::from_halflife(30.0);
  /// pandas' `adjust`: weights (1 − α)^k over all observations (true), or the recursive form
  /// m_t = (1 − α) m_{t−1} + α x_t (false).
  bool adjust = true;
  /// pandas' `bias`: false multiplies the weighted covariance by (Σw)² / ((Σw)² − Σw²).
  bool bias = false;
  /// Observations needed before `ready()`, as pandas' `min_periods` (0 and 1 both mean one).
  Index min_periods = 0;
  EwmaEstimator estimator = EwmaEstimator::pandas;

  [[nodiscard]] Index effective_min_periods() const { return min_periods < 1 ? 1 : min_periods; }

  /// Throws `dynweight::Error` unless min_periods >= 0 and `estimator` is a listed value (the decay
  /// validated itself when it was built).
  void validate() const {
    const CheckContext context{"EwmaOptions"};
    check_parameter(min_periods >= 0, context, "min_periods", static_cast<double>(min_periods),
                    ">= 0");
    check_parameter(estimator == EwmaEstimator::pandas || estimator == EwmaEstimator::riskmetrics,
                    context, "estimator", static_cast<double>(static_cast<int>(estimator)),
                    "EwmaEstimator::pandas or EwmaEstimator::riskmetrics");
  }
};

/// Exponentially weighted moments of N series, updated in O(N²) per bar, equal to pandas'
/// `DataFrame.ewm(alpha=α, adjust=..., min_periods=...)` `.mean()`, `.var(bias)`, `.std(bias)`,
/// `.cov(bias)` and `.corr()` (or, as an option, to the zero-mean RiskMetrics recursion).
///
/// With weights w_k on the observations x_0..x_t so far — adjust = true: w_k = (1 − α)^(t−k);
/// adjust = false: w_0 = (1 − α)^t and w_k = α (1 − α)^(t−k) for k ≥ 1 — it keeps
///   mean        m = Σ w_k x_k / Σ w_k,
///   covariance  S = f · Σ w_k (x_k − m)(x_k − m)ᵀ / Σ w_k,
///               f = 1 (bias = true) or (Σw)² / ((Σw)² − Σw²) (bias = false, pandas' default),
///   variance    diag(S), volatility √diag(S), correlation S_ij / (σ_i σ_j) (computed on request).
/// As in pandas, the first observation gives m = x_0, a biased covariance of 0 and an unbiased one
/// of NaN (f divides by (Σw)² − Σw² = 0; with α = 1 it stays so), and a NaN correlation.
/// `min_periods` only decides `ready()`: the statistics are always those of every observation so
/// far. Values are per period: annualise explicitly (e.g. σ·√252).
///
/// With `EwmaEstimator::riskmetrics` the covariance is the zero-mean
///   Σ_0 = r_0 r_0ᵀ,  Σ_t = λ Σ_{t−1} + (1 − λ) r_t r_tᵀ,  λ = 1 − α,
/// `mean()` is the zero vector it assumes, and variance, volatility and correlation derive from Σ.
///
/// **Update.** pandas' `ewmcov` recursion: old weight w ← (1 − α) w, new weight v = 1 (adjust) or
/// α, ρ = w / (w + v), then with δ = x − m
///   m' = m + (1 − ρ) δ,   B' = ρ B + ρ(1 − ρ) δ δᵀ   (B the biased covariance),
/// then w ← w + v (renormalised to 1 when adjust = false); Σw and Σw² follow the same steps for f.
/// The engine stores S = f·B itself, so the update is S' = (f'/f) ρ S + f' ρ(1 − ρ) δ δᵀ: one
/// fused scale-and-rank-one pass over the lower triangle
/// (`detail::scale_and_rank_one_update`).
///
/// **Accuracy.** The recursion is a contraction: every rounding error is multiplied by ρ < 1 at
/// the next bar, so errors do not random-walk as in a sliding window (no resync is needed) and stay
/// at a few ulps of the statistics over any number of updates. Only deviations δ enter the
/// covariance, never sums of x xᵀ. The mean is held as an unevaluated sum m = m_hi + m_lo,
/// renormalised by Knuth's TwoSum every bar, so δ = (x − m_hi) − m_lo is formed to a few ulps of
/// |δ| at any level: pandas' (w m + v x)/(w + v) rounds m at the level, which for prices near 1e4
/// fed as levels is ~1e−12, an error of ~1e−10 relative to deviations of 1e−2. An asset that never
/// moves has δ = 0 exactly, so its variance and covariances are exactly 0 (correlations NaN), as
/// pandas reports.
///
/// **Cost.** O(N²) flops per update: one pass over the lower triangle (measured ~1.0–1.3× Eigen's
/// rank-1 `rankUpdate` for N ≥ 100), plus O(N) for the mean and variance; the volatility (N
/// square roots) and the correlation (O(N²)) are computed on the first request after an update.
/// O(N²) memory, all sized at construction; `update()` and the accessors never allocate. Only the
/// lower triangle of the covariance is maintained: `covariance()` is a symmetric view of it
/// (`Matrix full = ewma.covariance();` or `ewma.covariance() * w`).
///
/// **Errors.** `update()` throws `dynweight::Error` on a wrong size, a non-finite value or one
/// beyond `input_limit()` (far beyond any return; it would overflow the sums), naming
/// the asset and the bar, and leaves the engine unchanged.
///
/// \code
/// dynweight::EwmaMoments<double> ewma(3, {.decay = dynweight::EwmaDecay::from_halflife(10.0)});
/// ewma.update(returns_today);                   // an Eigen vector of 3 returns
/// if (ewma.ready()) {
///   Eigen::MatrixXd sigma = ewma.covariance();         // full symmetric N×N
///   double vol0_annual = ewma.volatility()(0) * std::sqrt(252.0);
/// }
/// \endcode
template <FloatingScalar Scalar_ = double>
class EwmaMoments {
 public:
  using Scalar = Scalar_;
  using VectorType = Vector<Scalar>;
  using MatrixType = Matrix<Scalar>;
  using SymmetricView = Eigen::SelfAdjointView<const MatrixType, Eigen::Lower>;

  /// Sizes every buffer for `assets` series; `names` (optional, one per asset) label error
  /// messages.
  EwmaMoments(Index assets, EwmaOptions options, AssetNames names = {})
      : m_options(validated(options, assets, names)),
        m_names(std::move(names)),
        m_mean(assets),
        m_mean_low(assets),
        m_delta(assets),
        m_sum(assets),
        m_covariance(assets, assets),
        m_variance(assets),
        m_derived(assets) {
    reset();
  }

  /// Forgets every observation; sizes and options are kept.
  void reset() {
    m_bars = 0;
    m_old_weight = Weight(1);
    m_sum_weight = Weight(1);
    m_sum_weight_squared = Weight(1);
    m_factor = Weight(0);
    m_mean.setConstant(nan());
    m_mean_low.setZero();
    m_delta.setZero();
    m_sum.setZero();
    m_covariance.setConstant(nan());
    m_variance.setConstant(nan());
    m_derived.reset();
  }

  /// Adds one observation (one value per asset).
  void update(const Eigen::Ref<const VectorType>& x) {
    const CheckContext context{"EwmaMoments::update", m_names, m_bars};
    check_size(context, "returns", x.size(), assets());
    check_magnitude(context, "returns", x, static_cast<double>(input_limit()),
                    "larger values would overflow the covariance");

    if (m_options.estimator == EwmaEstimator::riskmetrics) {
      riskmetrics_step(x);
    } else if (m_bars == 0) {
      first_observation(x);
    } else {
      pandas_step(x);
    }
    ++m_bars;
    m_variance = m_covariance.diagonal();
    m_derived.invalidate();
  }

  [[nodiscard]] Index assets() const { return m_mean.size(); }
  /// The largest |x_i| an update accepts: √(max of `Scalar`)/8 (1.7e153 in double), so that the
  /// products of deviations (up to 2|x|) and pandas' bias factor cannot overflow.
  [[nodiscard]] static Scalar input_limit() {
    return std::sqrt(std::numeric_limits<Scalar>::max()) / Scalar(8);
  }
  /// Updates accepted since construction or `reset()`.
  [[nodiscard]] Index bars() const { return m_bars; }
  /// True once `bars() >= max(min_periods, 1)`.
  [[nodiscard]] bool ready() const { return m_bars >= m_options.effective_min_periods(); }
  [[nodiscard]] const EwmaOptions& options() const { return m_options; }
  [[nodiscard]] const AssetNames& names() const { return m_names; }
  /// The smoothing factor α (RiskMetrics' 1 − λ).
  [[nodiscard]] double alpha() const { return m_options.decay.alpha(); }

  /// Exponentially weighted mean per asset (the zero vector for RiskMetrics); NaN before the first
  /// observation.
  [[nodiscard]] const VectorType& mean() const { return m_mean; }
  /// Weighted variance, diag of `covariance()`; NaN where the covariance is.
  [[nodiscard]] const VectorType& variance() const { return m_variance; }
  /// Standard deviation per period, √variance, computed on the first call after an update (O(N)
  /// square roots, kept off the update path); not safe to call concurrently with itself on one
  /// object (it fills a cache).
  [[nodiscard]] const VectorType& volatility() const { return m_derived.volatility(m_variance); }
  /// Symmetric view of the weighted covariance; NaN before the first observation, and with
  /// bias = false while pandas' correction factor is undefined (the first observation; always when
  /// α = 1).
  [[nodiscard]] SymmetricView covariance() const {
    return m_covariance.template selfadjointView<Eigen::Lower>();
  }
  /// The matrix behind `covariance()`: its lower triangle (diagonal included) is the covariance;
  /// the strict upper triangle is unspecified.
  [[nodiscard]] const MatrixType& covariance_lower() const { return m_covariance; }
  /// Symmetric view of the correlation, computed on the first call after an update (O(N²)); an
  /// asset with zero variance has NaN correlations, as in pandas. Not safe to call concurrently
  /// with itself on one object (it fills a cache).
  [[nodiscard]] SymmetricView correlation() const {
    return correlation_lower().template selfadjointView<Eigen::Lower>();
  }
  /// The matrix behind `correlation()` (lower triangle valid).
  [[nodiscard]] const MatrixType& correlation_lower() const {
    return m_derived.correlation_lower(m_covariance, m_variance);
  }

 private:
  // Weights and the bias factor are tracked in at least double precision, as pandas does.
  using Weight = std::common_type_t<Scalar, double>;

  static constexpr Scalar nan() { return std::numeric_limits<Scalar>::quiet_NaN(); }

  static EwmaOptions validated(const EwmaOptions& options, Index assets, const AssetNames& names) {
    options.validate();
    const CheckContext context{"EwmaMoments"};
    check_parameter(assets >= 1, context, "assets", static_cast<double>(assets), ">= 1");
    check_names(context, names, assets);
    return options;
  }

  void first_observation(const Eigen::Ref<const VectorType>& x) {
    m_mean = x;
    m_mean_low.setZero();
    detail::fill_lower(m_covariance, m_options.bias ? Scalar(0) : nan());
    m_factor = m_options.bias ? Weight(1) : Weight(0);
  }

  // One step of pandas' ewmcov (see the class comment); m_factor is f, or 0 while it is undefined.
  void pandas_step(const Eigen::Ref<const VectorType>& x) {
    const Weight decay = Weight(1) - Weight(alpha());
    const Weight new_weight = m_options.adjust ? Weight(1) : Weight(alpha());
    m_sum_weight *= decay;
    m_sum_weight_squared *= decay * decay;
    m_old_weight *= decay;
    const Weight total = m_old_weight + new_weight;
    const Weight keep = m_old_weight / total;  // ρ
    const Weight step = new_weight / total;    // 1 − ρ
    m_sum_weight += new_weight;
    m_sum_weight_squared += new_weight * new_weight;
    m_old_weight += new_weight;
    if (!m_options.adjust) {
      m_sum_weight /= m_old_weight;
      m_sum_weight_squared /= m_old_weight * m_old_weight;
      m_old_weight = Weight(1);
    }

    m_delta = (x - m_mean) - m_mean_low;
    if (keep == Weight(0)) {
      // α = 1: every older weight is 0 and the mean is x itself, exactly as pandas gives it.
      m_mean = x;
      m_mean_low.setZero();
    } else {
      advance_mean(static_cast<Scalar>(step));
    }

    const Weight factor = next_factor();
    if (factor == Weight(0)) {
      // f' undefined: with ≤ 1 nonzero weight the biased covariance is 0 and pandas gives NaN.
      detail::fill_lower(m_covariance, nan());
    } else if (m_factor == Weight(0)) {
      // The biased covariance before this bar was 0 (a single nonzero weight): S' = f' ρ(1−ρ) δδᵀ.
      detail::fill_lower(m_covariance, Scalar(0));
      detail::scale_and_rank_one_update(m_covariance, Scalar(0), m_delta,
                                        static_cast<Scalar>(factor * keep * step));
    } else {
      detail::scale_and_rank_one_update(m_covariance, static_cast<Scalar>(factor / m_factor * keep),
                                        m_delta, static_cast<Scalar>(factor * keep * step));
    }
    m_factor = factor;
  }

  // f = (Σw)² / ((Σw)² − Σw²) as pandas computes it, 1 when bias = true, 0 when undefined.
  [[nodiscard]] Weight next_factor() const {
    if (m_options.bias)
      return Weight(1);
    const Weight numerator = m_sum_weight * m_sum_weight;
    const Weight denominator = numerator - m_sum_weight_squared;
    return denominator > 0 ? numerator / denominator : Weight(0);
  }

  // m_hi + m_lo += step · δ, then TwoSum (Knuth) renormalises so that m_hi = fl(m) and m_lo holds
  // the exact remainder; written as whole-vector expressions so that it vectorises.
  void advance_mean(Scalar step) {
    m_mean_low += step * m_delta;
    m_sum = m_mean + m_mean_low;
    m_mean_low = (m_mean - (m_sum - (m_sum - m_mean))) + (m_mean_low - (m_sum - m_mean));
    m_mean = m_sum;
  }

  void riskmetrics_step(const Eigen::Ref<const VectorType>& x) {
    if (m_bars == 0) {
      m_mean.setZero();
      detail::fill_lower(m_covariance, Scalar(0));
      detail::scale_and_rank_one_update(m_covariance, Scalar(0), x, Scalar(1));
      return;
    }
    const Scalar lambda = static_cast<Scalar>(m_options.decay.lambda());
    detail::scale_and_rank_one_update(m_covariance, lambda, x, static_cast<Scalar>(alpha()));
  }

  EwmaOptions m_options;
  AssetNames m_names;
  VectorType m_mean;        // m_hi = fl(m), what mean() returns
  VectorType m_mean_low;    // m_lo = m − m_hi, exact remainder (see advance_mean)
  VectorType m_delta;       // δ = x − m of the latest update
  VectorType m_sum;         // scratch for advance_mean
  MatrixType m_covariance;  // lower triangle: S = f·B, exactly what covariance() returns
  VectorType m_variance;
  detail::DerivedStatistics<Scalar> m_derived;  // volatility and correlation, on request
  Index m_bars = 0;
  Weight m_old_weight = 1;          // pandas' old_wt
  Weight m_sum_weight = 1;          // Σw, as pandas tracks it
  Weight m_sum_weight_squared = 1;  // Σw²
  Weight m_factor = 0;              // f of the stored covariance; 0 while undefined
};

}  // namespace dynweight
