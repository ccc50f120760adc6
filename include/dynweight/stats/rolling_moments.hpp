#pragma once

/// \file
/// Streaming rolling-window mean, variance, volatility, covariance and correlation.

#include <Eigen/Core>
#include <limits>
#include <optional>
#include <utility>

#include "dynweight/core/covariance_step.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/stats/detail/derived_statistics.hpp"
#include "dynweight/stats/detail/symmetric_update.hpp"

namespace dynweight {

/// Parameters of a `RollingMoments` engine.
struct RollingOptions {
  /// Observations in the window, W >= 2.
  Index window = 60;
  /// Observations needed before `ready()`, as pandas' `min_periods`; 0 means `window`.
  Index min_periods = 0;
  /// Every this many full-window updates, the engine re-accumulates the window exactly (see
  /// `RollingMoments`); 0 disables it. Default: 16 windows.
  Index resync_period = -1;

  [[nodiscard]] Index effective_min_periods() const {
    return min_periods == 0 ? window : min_periods;
  }
  [[nodiscard]] Index effective_resync_period() const {
    return resync_period < 0 ? 16 * window : resync_period;
  }

  /// Throws `dynweight::Error` unless W >= 2, 0 <= min_periods <= W and resync_period >= -1.
  void validate() const {
    const CheckContext context{"RollingOptions"};
    check_parameter(window >= 2, context, "window", static_cast<double>(window), ">= 2");
    check_parameter(min_periods >= 0 && min_periods <= window, context, "min_periods",
                    static_cast<double>(min_periods), "in [0, window] (0 means window)");
    check_parameter(resync_period >= -1, context, "resync_period",
                    static_cast<double>(resync_period), ">= 0, or -1 for the default");
  }
};

/// Rolling-window moments of N series over the last W observations, updated in O(N²) per bar.
///
/// With the window `x_{t−W+1..t}` (fewer while it fills), it keeps
///   mean        m = (1/n) Σ x_k,
///   covariance  S = (1/(n−1)) Σ (x_k − m)(x_k − m)ᵀ   (ddof = 1, as pandas `rolling(W).cov()`),
///   variance    diag(S), volatility √diag(S), correlation S_ij / (σ_i σ_j) (computed on request).
/// Values are per period: annualise explicitly (e.g. σ·√252).
///
/// **Update.** Once the window is full, replacing the oldest observation `x_o` by the new one `x_n`
/// (d = x_n − x_o, m' = m + d/W) changes the centred cross-product sum by the exact rank-2 term
///   C' = C + u dᵀ + d uᵀ,  u = ½(x_n + x_o) − ½(m + m'),
/// so one `selfadjointView<Lower>().rankUpdate(u, d, 1/(W−1))` is the whole O(N²) work (while the
/// window fills, Welford's rank-1 add does it). This is Welford's centred add/remove: u and d are
/// deviations and differences, never raw levels, so a large common level (prices near 1e4 fed as
/// levels) loses no digits to cancellation, unlike sums of x xᵀ; likewise the mean is kept as
/// m = K + δ about a reference point K near the data, so δ += d/W rounds at the scale of the
/// deviations, not of the level. What remains is a random walk of
/// rounding errors in m and C over millions of updates; to bound it, every `resync_period` bars the
/// engine re-accumulates the next W observations exactly into a shadow (sums of (x − K)(x − K)ᵀ
/// about K = the current mean, added only, never removed) and, once it holds exactly the window,
/// replaces m and S by it. The shadow costs one extra rank-1 update per bar during those W bars
/// (amortised 1/32 of a rank-1 with the default period of 16 W) and never a window recompute, so no
/// bar is ever slower than ~1.5 updates, but for one case: a bad print far outside the data (a
/// return of ~10³σ or more) leaves its ε·print² in S once the downdate has removed it, up to 4e-10
/// of the largest variance until the next resync. An O(N) rounding check on each update bounds
/// that error and, when it could pass 1e5 ε (2.2e-11) of the largest variance, re-accumulates the
/// window at once, about a new K = the newest observation (O(W·N²), `forced_recomputes()`); on
/// ordinary data it does not fire from W = 5 on (at W = 2 and 3, where one return moves the
/// variance by its own size, on ~1.5% and ~0.03% of iid bars, each recompute costing ~1 update
/// there). It also counts the size of x − K, at which u is rounded, and a shadow's own rounding:
/// when the data move far from K (a level shift of more than ~10³σ, or returns that drop to 1e-90
/// times the size of those that left), the next update re-centres; and when the mean has moved
/// more than 16 times the largest volatility from K (a trend fed as levels), K moves onto it
/// exactly (O(N)). The check models the updates' rounding as a random walk, not rounding that is
/// systematic over many updates (the mean's own δ += d/W and the rank-2 terms on a steady trend),
/// which the periodic resync removes: with `resync_period = 0`, levels with a steady trend drift
/// (N = 3, 3e5 bars of 100 + t + 0.01·z: 2.8e-9 of the largest variance at W = 50, 9.4e-8 at
/// W = 3, against a long-double two-pass; 8e-6 and 4e-4 before the re-centring; with the default
/// resync 1.2e-11). Measured after 10⁷ updates (N = 6, W = 50, data around 0 and around 1e4):
/// covariance within 4e-15 of a two-pass recompute (norm-wise relative) with the default resync,
/// 4e-13 with it disabled.
///
/// **Lineage.** Every update gives the covariance a fresh `covariance_id()`; when the update was
/// the plain rank-2 replacement above (the window was full, no resync completed, no asset's window
/// is constant), `covariance_step()` states it as S' = S + (1/(W−1))(u dᵀ + d uᵀ) from the previous
/// id, so that a policy can carry Σx across the bar in O(N) (see `CovarianceStep`).
///
/// An asset whose last n observations are all equal (a halted or stale price) has exactly zero
/// variance and covariances, as pandas reports, instead of rounding residue.
///
/// **Cost.** O(N²) flops per update, O(N·W + N²) memory, all sized at construction; `update()`
/// never allocates. Only the lower triangle of the covariance is maintained: `covariance()` is a
/// symmetric view of it (`Matrix full = rm.covariance();` or `rm.covariance() * w`).
///
/// **Errors.** `update()` throws `dynweight::Error` on a wrong size, a non-finite value or one
/// beyond `input_limit()` (far beyond any return; it would overflow the sums), naming
/// the asset and the bar, and leaves the engine unchanged.
///
/// \code
/// dynweight::RollingMoments<double> rolling(3, {.window = 60});
/// rolling.update(returns_today);                // an Eigen vector of 3 returns
/// if (rolling.ready()) {
///   Eigen::MatrixXd sigma = rolling.covariance();      // full symmetric N×N
///   double vol0_annual = rolling.volatility()(0) * std::sqrt(252.0);
/// }
/// \endcode
template <FloatingScalar Scalar_ = double>
class RollingMoments {
 public:
  using Scalar = Scalar_;
  using VectorType = Vector<Scalar>;
  using MatrixType = Matrix<Scalar>;
  using SymmetricView = Eigen::SelfAdjointView<const MatrixType, Eigen::Lower>;

  /// Sizes every buffer for `assets` series; `names` (optional, one per asset) label error
  /// messages.
  RollingMoments(Index assets, RollingOptions options, AssetNames names = {})
      : m_options(validated(options, assets, names)),
        m_names(std::move(names)),
        m_ring(assets, options.window),
        m_input(assets),
        m_mean(assets),
        m_shift(assets),
        m_offset(assets),
        m_covariance(assets, assets),
        m_variance(assets),
        m_derived(assets),
        m_run_length(assets),
        m_u(assets),
        m_d(assets),
        m_weights(assets),
        m_shadow_shift(assets),
        m_shadow_sum(assets),
        m_shadow_deviation(assets),
        m_shadow_cross(assets, assets),
        m_recentred(assets) {
    reset();
  }

  /// Forgets every observation; sizes and options are kept.
  void reset() {
    m_count = 0;
    m_head = 0;
    m_bars = 0;
    m_full_updates = 0;
    m_forced_recomputes = 0;
    m_shadow_filled = -1;
    m_ring.setZero();
    m_mean.setConstant(nan());
    m_shift.setZero();
    m_offset.setZero();
    m_covariance.setConstant(nan());
    m_variance.setConstant(nan());
    m_derived.reset();
    m_run_length.setZero();
    m_id = next_covariance_id();
    m_stepped = false;
    m_rounding = 0;
    m_term = 0;
    m_offset_size = 0;
  }

  /// Adds one observation (one value per asset), dropping the oldest once the window is full.
  void update(const Eigen::Ref<const VectorType>& x) { update_with(x, nullptr, nullptr); }

  /// `update(x)`, also gathering, inside the update's own pass over the lower triangle, the sums
  /// Σ_{i>j} C_ij² and Σ_{i>j} w_i w_j C_ij of the new covariance C with w = mean() − `reference`
  /// (the new mean), for engines that keep reductions of the covariance (`RollingShrinkage`).
  /// Returns true when `sums` holds those of the final covariance of this update; false (and
  /// `sums` unspecified) when the covariance was formed or rewritten another way (while the window
  /// fills, at a shadow resync, when an asset's window is constant): the caller then reduces
  /// `covariance_lower()` itself. Throws like `update(x)`, and then changes nothing.
  bool update(const Eigen::Ref<const VectorType>& x, const VectorType& reference,
              detail::StrictLowerSums<Scalar>& sums) {
    return update_with(x, &reference, &sums);
  }
  /// The same with Σ_{i>j} C_ij² only (`sums.weighted` 0): a quarter fewer multiplies in the pass.
  bool update(const Eigen::Ref<const VectorType>& x, detail::StrictLowerSums<Scalar>& sums) {
    return update_with(x, nullptr, &sums);
  }

  [[nodiscard]] Index assets() const { return m_mean.size(); }
  [[nodiscard]] Index window() const { return m_options.window; }
  /// The largest |x_i| an update accepts for a window of W bars: √(max of `Scalar`)/(2W)
  /// (2.7e151 in double at W = 250), so that no sum the engine forms (the shadow's W products of
  /// deviations up to 2|x|, the window sum's square) can overflow.
  [[nodiscard]] static Scalar input_limit(Index window) {
    return std::sqrt(std::numeric_limits<Scalar>::max()) / (Scalar(2) * Scalar(window));
  }
  [[nodiscard]] Scalar input_limit() const { return input_limit(window()); }
  /// Observations currently in the window (≤ W).
  [[nodiscard]] Index count() const { return m_count; }
  /// Updates accepted since construction or `reset()`.
  [[nodiscard]] Index bars() const { return m_bars; }
  /// Bars since construction or `reset()` on which the rounding check re-accumulated the window
  /// at once (see the class comment).
  [[nodiscard]] Index forced_recomputes() const { return m_forced_recomputes; }
  /// True once `count() >= min_periods` (the window is full when min_periods is its default).
  [[nodiscard]] bool ready() const { return m_count >= m_options.effective_min_periods(); }
  [[nodiscard]] const RollingOptions& options() const { return m_options; }
  [[nodiscard]] const AssetNames& names() const { return m_names; }

  /// Window mean per asset; NaN before the first observation.
  [[nodiscard]] const VectorType& mean() const { return m_mean; }
  /// The mean's parts, m = K + δ (see the class comment): K, a point near the data, and δ, small,
  /// whose digits are those of the deviations. x − m is best taken as (x − K) − δ.
  [[nodiscard]] const VectorType& mean_reference() const { return m_shift; }
  [[nodiscard]] const VectorType& mean_offset() const { return m_offset; }
  /// mean() − `reference` into `out`, from the mean's parts: (K − reference) + δ (m = K + δ, see
  /// the class comment). With `reference` near the data, K − reference is exact and this rounds
  /// at the scale of the difference, where mean() − reference keeps the rounding of the level
  /// (1e4's ulp, 1.8e-12, is 1.8e-10 of a 0.01 move). No allocation.
  void mean_minus(const VectorType& reference, VectorType& out) const {
    out = (m_shift - reference) + m_offset;
  }
  /// Sample variance (ddof = 1); NaN with fewer than two observations.
  [[nodiscard]] const VectorType& variance() const { return m_variance; }
  /// Sample standard deviation per period, √variance, computed on the first call after an update
  /// (N square roots kept off the update path); not safe to call concurrently with itself on one
  /// object (it fills a cache).
  [[nodiscard]] const VectorType& volatility() const { return m_derived.volatility(m_variance); }
  /// Symmetric view of the sample covariance (ddof = 1); NaN with fewer than two observations.
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
  /// The id of the current covariance (new at every update and reset; see `CovarianceStep`).
  [[nodiscard]] std::uint64_t covariance_id() const { return m_id; }
  /// How the last update moved the covariance from the previous id, when it was the plain rank-2
  /// replacement (see the class comment); null otherwise (the window filling, a resync, a
  /// constant asset). Its vectors are this engine's, valid until its next update.
  [[nodiscard]] std::optional<CovarianceStep<Scalar>> covariance_step() const {
    if (!m_stepped)
      return std::nullopt;
    return CovarianceStep<Scalar>{.from = m_previous_id,
                                  .scale = Scalar(1),
                                  .weight = Scalar(1) / Scalar(window() - 1),
                                  .p = &m_u,
                                  .q = &m_d,
                                  .ridge = Scalar(0)};
  }
  /// The observation the next `update()` drops once the window is full (the oldest one); while the
  /// window fills, an unused column. For engines that keep more statistics of the same window.
  [[nodiscard]] auto oldest() const { return m_ring.col(m_head); }
  /// The observations in the window as an N×W ring (column `(head + k) % W` is the k-th oldest once
  /// full); for exact recomputation and diagnostics.
  [[nodiscard]] const MatrixType& window_observations() const { return m_ring; }

 private:
  bool update_with(const Eigen::Ref<const VectorType>& input, const VectorType* reference,
                   detail::StrictLowerSums<Scalar>* sums) {
    const CheckContext context{"RollingMoments::update", m_names, m_bars};
    check_size(context, "returns", input.size(), assets());
    check_magnitude(context, "returns", input, static_cast<double>(input_limit()),
                    "larger values would overflow the window's sums");
    if (reference != nullptr)
      check_size(context, "reference", reference->size(), assets());
    // The input may be one of this engine's own vectors (a missing bar filled with `mean()`),
    // which the update overwrites before its last read of it: the update works on a copy (O(N)
    // beside the O(N²) update).
    m_input = input;
    const VectorType& x = m_input;
    track_runs(x);
    bool summed = false;
    bool stepped = false;
    if (m_count < window()) {
      add(x);
    } else {
      stepped = replace_oldest(x, reference, sums, summed);
    }
    m_ring.col(m_head) = x;
    m_head = (m_head + 1) % window();
    ++m_bars;
    const bool cleared = zero_constant_assets();
    summed = !cleared && summed;
    if (rounding_could_show()) {
      recompute_from_window();
      summed = false;
      stepped = false;
    }
    m_previous_id = m_id;
    m_id = next_covariance_id();
    refresh_variance();
    const bool clamped = clear_negative_variances();
    if (m_count >= 2 && m_offset_size * m_offset_size > Scalar(256) * m_variance.maxCoeff())
      recentre();
    m_stepped = stepped && !cleared && !clamped;
    m_derived.invalidate();
    return summed;
  }

  static constexpr Scalar nan() { return std::numeric_limits<Scalar>::quiet_NaN(); }

  static RollingOptions validated(const RollingOptions& options, Index assets,
                                  const AssetNames& names) {
    options.validate();
    const CheckContext context{"RollingMoments"};
    check_parameter(assets >= 1, context, "assets", static_cast<double>(assets), ">= 1");
    check_names(context, names, assets);
    return options;
  }

  // Welford's add: n → n + 1 with a = x − m, m' = m + a/(n+1), C' = C + (n/(n+1)) a aᵀ, and
  // S = C/(n − 1) kept directly: S' = S (n−1)/n + a aᵀ/(n+1).
  void add(const Eigen::Ref<const VectorType>& x) {
    const Index n = m_count;
    if (n == 0) {
      m_shift = x;
      m_offset.setZero();
      m_mean = x;
      detail::fill_lower(m_covariance, nan());
    } else {
      m_d = (x - m_shift) - m_offset;
      m_offset += m_d / Scalar(n + 1);
      m_mean = m_shift + m_offset;
      const Scalar keep = n == 1 ? Scalar(0) : Scalar(n - 1) / Scalar(n);
      if (n == 1)
        detail::fill_lower(m_covariance, Scalar(0));
      detail::scale_and_rank_one_update(m_covariance, keep, m_d, Scalar(1) / Scalar(n + 1));
      const Scalar a = m_d.template lpNorm<Eigen::Infinity>();
      // m_d is rounded at the size of x − K, within 2|m_d| of δ (see replace_oldest).
      m_offset_size = m_offset.template lpNorm<Eigen::Infinity>();
      m_term = a * (Scalar(3) * a + m_offset_size) / Scalar(n + 1);
    }
    ++m_count;
  }

  // The rank-2 replacement described in the class comment, plus the shadow re-accumulation;
  // with `sums`, gathers them in the same pass (`summed`: true unless the shadow resync then
  // rewrote the covariance). Returns true unless that resync rewrote it.
  bool replace_oldest(const Eigen::Ref<const VectorType>& x, const VectorType* reference,
                      detail::StrictLowerSums<Scalar>* sums, bool& summed) {
    const auto oldest = m_ring.col(m_head);
    const Scalar w = Scalar(window());
    m_d = x - oldest;
    // u = ½(x_n + x_o) − m − ½ d/W, with m = K + δ and the deviations from K formed first.
    m_u = Scalar(0.5) * ((x - m_shift) + (oldest - m_shift)) - m_offset - (Scalar(0.5) / w) * m_d;
    m_offset += m_d / w;
    m_mean = m_shift + m_offset;
    if (sums != nullptr && reference != nullptr) {
      mean_minus(*reference, m_weights);
      *sums = detail::rank_two_update(m_covariance, m_u, m_d, Scalar(1) / (w - 1), m_weights);
    } else if (sums != nullptr) {
      *sums = detail::rank_two_update_squares(m_covariance, m_u, m_d, Scalar(1) / (w - 1));
    } else {
      detail::rank_two_update(m_covariance, m_u, m_d, Scalar(1) / (w - 1));
    }
    // u is formed from x − K and x_o − K, so it is rounded at their size, which exceeds |u| when
    // the data moved far from K (a level shift since the last resync): that enters the check too.
    // Both are within |u| + ½|d|(1 + 1/W) <= |u| + |d| of m − K = δ, so one more O(N) read
    // bounds them.
    const Scalar u_size = m_u.template lpNorm<Eigen::Infinity>();
    const Scalar d_size = m_d.template lpNorm<Eigen::Infinity>();
    m_offset_size = m_offset.template lpNorm<Eigen::Infinity>();
    m_term = Scalar(2) * (Scalar(2) * u_size + d_size + m_offset_size) * d_size / (w - 1);
    ++m_full_updates;
    const bool rewritten = shadow_step(x);
    summed = !rewritten && sums != nullptr;
    return !rewritten;
  }

  // Returns true when the shadow completed and replaced the covariance.
  bool shadow_step(const Eigen::Ref<const VectorType>& x) {
    const Index period = m_options.effective_resync_period();
    if (period == 0)
      return false;
    if (m_shadow_filled < 0) {
      if (m_full_updates % period != 0)
        return false;
      m_shadow_shift = m_mean;
      m_shadow_peak = 0;
      m_shadow_sum.setZero();
      detail::fill_lower(m_shadow_cross, Scalar(0));
      m_shadow_filled = 0;
    }
    m_shadow_deviation = x - m_shadow_shift;
    const Scalar deviation = m_shadow_deviation.template lpNorm<Eigen::Infinity>();
    m_shadow_peak = std::max(m_shadow_peak, deviation * deviation);
    m_shadow_sum += m_shadow_deviation;
    m_shadow_cross.template selfadjointView<Eigen::Lower>().rankUpdate(m_shadow_deviation);
    if (++m_shadow_filled < window())
      return false;
    // The shadow now holds exactly the window: C = Σ y yᵀ − s sᵀ/W with y = x − K, s = Σ y.
    const Scalar w = Scalar(window());
    m_shift = m_shadow_shift;
    m_offset = m_shadow_sum / w;
    m_offset_size = m_offset.template lpNorm<Eigen::Infinity>();
    m_mean = m_shift + m_offset;
    m_shadow_cross.template selfadjointView<Eigen::Lower>().rankUpdate(m_shadow_sum,
                                                                       -Scalar(1) / w);
    const Index n = assets();
    for (Index j = 0; j < n; ++j) {
      m_covariance.col(j).tail(n - j) = m_shadow_cross.col(j).tail(n - j) / (w - 1);
    }
    m_shadow_filled = -1;
    // S is the shadow's: exact but for its own W additions and the subtraction of s sᵀ/W, rounded
    // at the size of max‖x − K‖² (the variances when K, the mean when the shadow began, is near
    // the data; far more when the window then held a level shift), which the check now starts
    // from.
    m_rounding = Scalar(2) * m_shadow_peak;
    return true;
  }

  // The rounding check, after each update. An update rounds every entry of S by ~ε times its
  // term and the entries themselves, both below g = max|term_ij| + max_i S_ii (|S_ij| <= max S_ii;
  // add/replace_oldest leave max|term_ij| in m_term), and those errors add like a random walk:
  // ~ε √Σg². m_rounding holds √Σg² since S was last exact (by hypot: g² of data near
  // `input_limit()` would overflow). A bad print far outside the data leaves its ε·print² there
  // once it has left the window and S is small again (a return of +100 on σ = 0.01 and its
  // reversal, W = 20: 4e-10 of the largest variance, for the 16 W bars until the next resync).
  // True when that rounding could pass 1e5 ε of the largest variance (2.2e-11, norm-wise). On
  // ordinary data √Σg² grows like √t · max S_ii, ~10⁹ bars to get there, far past the periodic
  // resync; so this costs O(N) per bar and fires only after a print of more than ~10³σ (times
  // √(W/20)) has left the window.
  bool rounding_could_show() {
    if (m_count < 2)
      return false;
    const Scalar largest = m_covariance.diagonal().cwiseAbs().maxCoeff();
    if (largest == 0) {
      m_rounding = 0;  // every asset constant: S is exactly 0
      return false;
    }
    m_rounding = std::hypot(m_rounding, m_term + largest);
    return !(m_rounding <= Scalar(1e5) * largest);
  }

  // Re-accumulates the mean's offset and S exactly from the window (two passes over the ring:
  // O(W·N²), on the rare bar the rounding check fires), about K = the newest observation: the
  // data may have moved far from the old K (a level shift, or returns 1e-90 times those that left),
  // and x − K about a point of the window keeps the digits of its spread.
  void recompute_from_window() {
    const Index n = m_count;
    m_shift = m_ring.col((m_head + window() - 1) % window());
    m_offset.setZero();
    for (Index k = 0; k < n; ++k)
      m_offset += m_ring.col(k) - m_shift;
    m_offset /= Scalar(n);
    m_offset_size = m_offset.template lpNorm<Eigen::Infinity>();
    m_mean = m_shift + m_offset;
    detail::fill_lower(m_covariance, Scalar(0));
    for (Index k = 0; k < n; ++k) {
      m_recentred = (m_ring.col(k) - m_shift) - m_offset;
      m_covariance.template selfadjointView<Eigen::Lower>().rankUpdate(m_recentred,
                                                                       Scalar(1) / Scalar(n - 1));
    }
    m_rounding = 0;
    ++m_forced_recomputes;
  }

  // Counts, per asset, how many of the latest observations equal the newest one.
  void track_runs(const Eigen::Ref<const VectorType>& x) {
    if (m_count == 0) {
      m_run_length.setOnes();
      return;
    }
    const Index previous = (m_head + window() - 1) % window();
    for (Index i = 0; i < assets(); ++i) {
      m_run_length(i) = x(i) == m_ring(i, previous) ? m_run_length(i) + 1 : 1;
    }
  }

  // A constant window has exactly zero variance: clear the rounding residue (O(N) per such asset).
  // Returns true when an asset was cleared.
  bool zero_constant_assets() {
    if (m_count < 2)
      return false;
    bool cleared = false;
    for (Index i = 0; i < assets(); ++i) {
      if (m_run_length(i) < m_count)
        continue;
      m_shift(i) = m_ring(i, (m_head + window() - 1) % window());
      m_offset(i) = Scalar(0);
      m_mean(i) = m_shift(i);
      detail::zero_row_and_column(m_covariance, i);
      cleared = true;
    }
    return cleared;
  }

  // The covariance's diagonal is what policies and estimators read as variances. A variance below
  // the rounding the window's past left can come out of a downdate just below 0 (−9.5e-30 for an
  // asset whose returns were constant to 1e-16 after livelier ones had left the window), which a
  // caller would rightly reject as a covariance: set such entries to 0 (the strict lower
  // triangle, and so its sums, are untouched; the step no longer describes the change exactly).
  // Returns true when an entry was set. After `refresh_variance`, from its contiguous copy of the
  // diagonal (the diagonal itself is one cache line, and at N = 500 one page, per entry: a second
  // read of it cost ~15% of a shrinkage bar).
  bool clear_negative_variances() {
    if (m_count < 2 || !(m_variance.minCoeff() < Scalar(0)))
      return false;
    for (Index i = 0; i < assets(); ++i) {
      if (m_variance(i) < Scalar(0))
        m_variance(i) = m_covariance(i, i) = Scalar(0);
    }
    return true;
  }

  // K := K + δ exactly, per asset by TwoSum (the sum's rounding error becomes the new δ), so the
  // mean keeps its value to the last bit and later updates round at the data's spread again
  // rather than at |m − K|: when the data have moved more than 16 times the largest volatility
  // from K (a trend fed as levels, a level shift) since the last resync. O(N), on those bars only;
  // without it u was rounded at |m − K|, which a linear trend with the resync off grows without
  // bound: 2.4e-7 of the largest variance after 3e5 bars at W = 250, 1.5e-9 with it.
  void recentre() {
    m_offset_size = 0;
    for (Index i = 0; i < assets(); ++i) {
      const Scalar k = m_shift(i);
      const Scalar d = m_offset(i);
      const Scalar sum = k + d;
      const Scalar k_part = sum - d;
      const Scalar d_part = sum - k_part;
      m_shift(i) = sum;
      m_offset(i) = (k - k_part) + (d - d_part);
      m_offset_size = std::max(m_offset_size, std::abs(m_offset(i)));
    }
  }

  void refresh_variance() {
    if (m_count < 2)
      return;
    m_variance = m_covariance.diagonal();
  }

  RollingOptions m_options;
  AssetNames m_names;
  MatrixType m_ring;    // N × W, one observation per column
  VectorType m_input;   // the observation being added (a copy: see update_with)
  VectorType m_mean;    // m = K + δ, formed once per update from:
  VectorType m_shift;   // K, a reference point near the data (first observation, then resyncs)
  VectorType m_offset;  // δ = m − K, small, so its updates keep their digits at any price level
  MatrixType m_covariance;  // lower triangle
  VectorType m_variance;
  detail::DerivedStatistics<Scalar> m_derived;  // volatility and correlation, on request
  Eigen::Matrix<Index, Eigen::Dynamic, 1> m_run_length;
  VectorType m_u;  // the rank-2 term u dᵀ + d uᵀ of the last replacement
  VectorType m_d;
  VectorType m_weights;  // w of update(x, reference, sums)
  VectorType m_shadow_shift;
  VectorType m_shadow_sum;
  VectorType m_shadow_deviation;  // x − K of the shadow (scratch)
  MatrixType m_shadow_cross;      // lower triangle
  VectorType m_recentred;         // x − K − δ of recompute_from_window (scratch)
  Scalar m_shadow_peak = 0;       // max ‖x − K‖∞² over the shadow's additions
  Scalar m_rounding = 0;          // √Σg² of the rounding check since S was last exact
  Scalar m_term = 0;              // max|term_ij| of the last update (rounding check)
  Scalar m_offset_size = 0;       // ‖δ‖∞ after the last update
  Index m_forced_recomputes = 0;
  std::uint64_t m_id = 0;
  std::uint64_t m_previous_id = 0;
  bool m_stepped = false;  // the last update was the plain rank-2 step from m_previous_id
  Index m_count = 0;
  Index m_head = 0;  // next column of m_ring to write (the oldest once the window is full)
  Index m_bars = 0;
  Index m_full_updates = 0;
  Index m_shadow_filled = -1;  // bars accumulated in the shadow; -1 when idle
};

}  // namespace dynweight
