#pragma once

/// \file
/// Ledoit–Wolf (2004), OAS and Ledoit–Wolf (2003) constant-correlation shrinkage of the live
/// rolling window, in O(N²) per bar.

#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/estimators/constant_correlation.hpp"
#include "dynweight/estimators/detail/cross_moment_sums.hpp"
#include "dynweight/estimators/detail/window_moments.hpp"
#include "dynweight/estimators/ledoit_wolf.hpp"
#include "dynweight/estimators/oas.hpp"
#include "dynweight/estimators/shrinkage.hpp"
#include "dynweight/stats/rolling_moments.hpp"

namespace dynweight {

/// Which shrinkage a `RollingShrinkage` applies.
enum class RollingShrinkageMethod {
  ledoit_wolf,  ///< Ledoit & Wolf (2004), as scikit-learn's `LedoitWolf`
  oas,          ///< Chen, Wiesel, Eldar & Hero (2010), as scikit-learn's `OAS`
  /// Ledoit & Wolf (2003) toward the constant-correlation target, as `ConstantCorrelation`
  constant_correlation,
};

/// Where a constant-correlation `RollingShrinkage` takes the fourth-moment cross sum of ρ̂ from
/// (see the class comment). Both are exact; they differ in cost and memory.
enum class CrossMomentSource {
  /// `window_pass` when W <= 2N, else `running_sums`: the faster of the two at every size
  /// measured (they cost the same near W = 2.5N; see README, Benchmarks).
  automatic,
  /// N×N running sums [A; B] moved by every `update()` in O(N²), never re-reading the window;
  /// 2N² + 3N·W doubles.
  running_sums,
  /// One read of the window's W×N observations per `compute()`, O(W·N); no extra memory.
  window_pass,
};

/// Shrinkage of the covariance of the last W observations, kept up to date bar by bar: after each
/// `update()`, `compute()` gives what scikit-learn's `LedoitWolf(assume_centered=False)` or `OAS`,
/// or dynweight's `ConstantCorrelation` (Ledoit & Wolf 2003), give on the window's T×N matrix
/// (T = `count()`), without re-reading the window.
///
/// With Y the window centred on its mean, S = YᵀY/T (divisor T, the MLE covariance: (T−1)/T times
/// `moments().covariance()`), μ = tr S / N and the shrunk Σ̂ = (1 − δ) S + δ F:
///   Ledoit–Wolf: F = μI, b = (Q/T − ‖S‖²_F)/(N T), d = ‖S − μI‖²_F / N, δ = min(b, d)/d,
///   OAS:         F = μI, a = ‖S‖²_F/N², δ = min((a + μ²) / ((T + 1)(a − μ²/N)), 1),
///   constant correlation: F_ij = r̄ s_i s_j, δ from π̂ = Q/T − ‖S‖²_F, ρ̂ and γ̂ as in
///                `ConstantCorrelation`,
/// where Q = Σ_t ‖y_t‖⁴, and for ρ̂ the sum Σ_t (Σ_i y_ti³/s_i)(Σ_j s_j y_tj), are what the
/// covariance does not carry.
///
/// **Incremental Q.** With a reference point K and u_t = x_t − K, a_t = ‖u_t‖², and the offset
/// c = m − K of the window mean, y_t = u_t − c gives the exact identity
///   Q = Σ a_t² − 4 cᵀ Σ a_t u_t + 2‖c‖² Σ a_t + 4T cᵀ S c + T ‖c‖⁴,
/// so the engine keeps the scalars Σ a_t, Σ a_t² and the vector Σ a_t u_t, adding the entering
/// observation and removing the leaving one in O(N). ‖S‖²_F and cᵀSc are gathered inside the
/// rolling covariance's own rank-2 pass (`RollingMoments::update(x, reference, sums)`), so the
/// O(N²) work per bar is that one pass plus the output. Every W bars the sums are re-accumulated
/// exactly from the window about K = the current mean (O(W·N), O(N) amortised), so they do not
/// drift and c stays small. Each `compute()` also bounds their rounding (ε times what they added
/// and removed since then, and the re-centring terms' size): a bad print's a² leaves its rounding
/// behind when it leaves the window, and a level shift moves c. When δ at the two ends of that
/// bound differs by more than 10⁵ ε, the sums are re-accumulated at once (`forced_resyncs()`):
/// after a 1000σ print δ was off by 2.7e-7 otherwise; on ordinary data it almost never happens.
///
/// **Incremental ρ̂ (constant correlation).** About a second reference point K' (c' = m − K'), the
/// engine keeps the N×N running sums A_ij = Σ_t u_ti³ u_tj and B_ij = Σ_t u_ti² u_tj and the power
/// sums Σ u², Σ u³, Σ u⁴ per asset (`detail::CrossMomentSums`). With x = 1/s, the exact identity
///   Σ_t (xᵀy_t³)(sᵀy_t) = xᵀAs − 3 (x∘c')ᵀBs + 3T (x∘c'²)ᵀ S s + 2T (x·c'³)(c'·s)
///                         − (x·m₃)(c'·s),   m₃ = Σ_t y_t³ = Σu³ − 3c'∘Σu² + 2T c'³,
/// re-centres them on the current mean. Each bar moves [A; B] by one general rank-2 update and
/// takes the bilinear forms xᵀAs, (x∘c')ᵀBs in the same pass, with r̄, sᵀSs and the S term from
/// the covariance riding along; γ̂ comes from sums already at hand (with an exact extra pass when
/// that form would lose more than 4 of its digits to cancellation, e.g. N = 2). Every
/// `options.effective_resync_period()` full updates (16 W by default; 0 disables it) [A; B] and
/// the power sums are rebuilt exactly from the window about K' = the current mean, by one matrix
/// product with preallocated packing buffers: O(W·N²) at that bar (15 ms at N = 500, W = 250,
/// `BM_ConstCorrRollingRebuild`), O(N²/16) amortised.
///
/// **When the running sums would lose ρ̂'s digits.** The identity is exact, but its terms are the
/// size of the sums about K', and the sums carry the rounding of every observation since their
/// last rebuild, while ρ̂ is the size of the centred moments. When the mean is far from K' in units
/// of s (a level shift, prices fed as levels with a trend, a nearly constant asset whose level
/// moved, a first observation far from the rest) or after a bad print, the cancellation can take
/// most of ρ̂'s digits (1e-7 relative left after a 100σ level shift, δ then off by 5e-8; 2e-7
/// after a 1000σ print). So each `compute()` bounds that rounding: ε times the magnitudes of the
/// identity's terms (Hölder bounds on A and B from the power sums), with the history entering
/// through g_k = Σ p_k² over the updates since the rebuild (p_k the window's power sums; the
/// updates' errors add like a random walk) and the mean's own rounding (ε|m|) through the c'³
/// terms: `detail::cross_moment_magnitudes`, one O(N) pass with two square roots an asset, and
/// O(N) per update for g_k. δ = clip((π̂ − ρ̂)/γ̂/T) then lies between the intensities at ρ̂ ± that
/// bound (equal when both clip, so a clipped δ keeps the running sums); when they differ by more
/// than 10⁵ ε (2.2e-11 in double, against the 1e-10 to which the rolling estimators match the
/// batch ones; the largest error measured on a kept bar is 1.1e-11), or are not finite (overflow
/// near `input_limit()`), that `compute()` takes ρ̂'s sums from the window pass below instead
/// (O(W·N); `window_pass_fallbacks()` counts them). On the test suite's data with the running sums
/// forced, that is 2 of 1,003,664 computes (both on a nearly constant asset), none of them in the
/// 10⁶-bar drift data; after a 100σ level shift, every bar until the next rebuild.
///
/// **Or one pass over the window (`CrossMomentSource`).** The same sums come exactly from one
/// read of the window's W×N observations about the current mean, O(W·N) per `compute()` (the
/// cross sum Σ_t (xᵀy_t³)(sᵀy_t) and Σ_t y_ti⁴; r̄ and Σ s_i s_j S_ij from one read of the
/// covariance's lower triangle). That is cheaper than moving [A; B] when the window is short
/// against the universe, and needs no memory beyond the window: `automatic` (the default) takes
/// it when W <= 2N (at W = 250: 0.58× the running sums' bar at N = 500, 0.39× at N = 1000; they
/// cost the same near W = 2.5N). This departs from "never re-reading the window" for a cost below
/// O(N²); `running_sums` forces the running sums.
///
/// **Lineage.** Each `compute()` labels its output with a fresh `output_id()`. With an identity
/// target, when the window moved by one plain rank-2 step since the previous `compute()` (see
/// `RollingMoments::covariance_step`), or not at all, and the previous intensity was below 1,
/// `output_step()` states how Σ̂ moved: with C = `moments().covariance()` (divisor T − 1, so that
/// S = (T − 1)/T · C) and k = (1 − δ)(T − 1)/T, Σ̂ = kC + δμI becomes
///   Σ̂' = (k'/k) Σ̂ + (k'/(W−1)) (u dᵀ + d uᵀ) + (δ'μ' − (k'/k) δμ) I,
/// so that a policy can carry Σ̂x across the bar in O(N) (`Estimates::set_covariance_lineage`;
/// risk parity then starts without its pass over Σ̂ for Σ̂x). Constant correlation gives an id and
/// no step (its target moves by more than a rank-2 term).
///
/// **Degenerate windows.** N = 1: δ = 0 (scikit-learn's convention; any δ gives the same matrix).
/// When S is already a multiple of the identity (d = 0, e.g. an all-constant window) Ledoit–Wolf
/// reports δ = 0 and OAS δ = 1, as scikit-learn; the shrunk matrix is S either way, and when
/// μ = 0 (every asset constant) the status is `numerical_issue`, as for the batch estimators.
/// Constant correlation treats an asset whose window is constant as `ConstantCorrelation` does
/// (left out of r̄, status `numerical_issue`). The intensities, targets and output are those of the
/// batch estimators (shared code in `estimators/shrinkage.hpp`); only the statistics they are fed
/// are kept incrementally.
///
/// **Tiny data.** The fourth-power sums are of the order of the variances squared, and they
/// underflow long before the covariance does: at returns of 1e-80 Ledoit–Wolf's δ came out 0.3 off
/// and constant correlation's 1. When the window's largest variance is positive and below
/// `tiny_variance()` (2^(0.4 · the least normal exponent): 1.5e-123 in double, returns below
/// ~1e-62; 8.9e-16 in float), `compute()` takes the batch estimator on a copy of the window
/// instead, which scales it by a power of two (see `detail::SampleCovarianceWorkspace`): the same
/// δ as at ordinary scales, at O(W·N²) per call, with an id and no step (`window_estimates()`
/// counts them). Its buffers are sized by the first such call at each window length: while the
/// window fills (`min_periods` < W) each call allocates; once it is full, none.
///
/// **Cost.** Identity targets: `update()` is one `RollingMoments` update (with its sums) plus
/// O(N); `compute()` is O(N) plus one write of the output (`OutputStorage::lower` halves it).
/// Constant correlation adds, with the running sums, one pass over the 2N×N [A; B] per `update()`
/// and O(N) per `compute()` for the rounding bound (a window pass on the bars it flags),
/// and 2N² + 3N·W doubles of memory ([A; B] and the rebuild's scratch); with the window pass, one
/// read of the window and one of the covariance's lower triangle per `compute()`, and no memory.
/// No allocation after construction, but on tiny data (above), where the first `compute()` at each
/// window length (each bar while the window fills, once when full) sizes the batch buffers.
///
/// \code
/// dynweight::RollingShrinkage<double> lw(3, {.window = 250},
///                                        dynweight::RollingShrinkageMethod::ledoit_wolf);
/// Eigen::MatrixXd sigma(3, 3);
/// lw.update(returns_today);
/// if (const auto result = lw.compute(sigma); result.status.ok()) {
///   double delta = result.intensity;  // sigma = (1 − δ) S + δ μ I
/// }
/// \endcode
template <FloatingScalar Scalar_ = double>
class RollingShrinkage {
 public:
  using Scalar = Scalar_;
  using VectorType = Vector<Scalar>;
  using MatrixType = Matrix<Scalar>;

  /// `assets` and `options` as `RollingMoments`; `cross_moments` matters for constant correlation
  /// only (see `CrossMomentSource`).
  RollingShrinkage(Index assets, RollingOptions options, RollingShrinkageMethod method,
                   AssetNames names = {},
                   CrossMomentSource cross_moments = CrossMomentSource::automatic)
      : m_moments(assets, options, std::move(names)),
        m_method(method),
        m_window_pass(
            method == RollingShrinkageMethod::constant_correlation &&
            (cross_moments == CrossMomentSource::window_pass ||
             (cross_moments == CrossMomentSource::automatic && m_moments.window() <= 2 * assets))),
        m_shift(assets),
        m_weighted_sum(assets),
        m_entering(assets),
        m_input(assets),
        m_leaving(assets),
        m_offset(assets) {
    if (method == RollingShrinkageMethod::constant_correlation)
      m_target.resize(assets);
    if (method == RollingShrinkageMethod::constant_correlation && !m_window_pass) {
      m_cross.resize(assets, m_moments.window());
      m_oldest.resize(assets);
      m_cross_offset.resize(assets);
      m_cross_weights.resize(2 * assets);
      m_z.resize(assets);
    }
    reset();
  }

  /// Forgets every observation.
  void reset() {
    m_moments.reset();
    m_shift.setZero();
    m_sum_a = 0;
    m_sum_a2 = 0;
    m_history_a = 0;
    m_history_a2 = 0;
    m_history_w = 0;
    m_forced_resyncs = 0;
    m_weighted_sum.setZero();
    m_sums_current = false;
    m_since_resync = 0;
    if (uses_running_sums())
      m_cross.reset();
    m_cross_current = false;
    m_since_rebuild = 0;
    m_window_fallbacks = 0;
    m_window_estimates = 0;
    m_output_id = 0;
    m_output_moments_id = 0;
    m_has_output_step = false;
  }

  /// Adds one observation, dropping the oldest once the window is full. Throws `dynweight::Error`
  /// on bad input (see `RollingMoments::update`; values beyond `input_limit()` included) and then
  /// changes nothing.
  void update(const Eigen::Ref<const VectorType>& input) {
    const CheckContext context{"RollingShrinkage::update", m_moments.names(), m_moments.bars()};
    check_size(context, "returns", input.size(), assets());
    check_magnitude(context, "returns", input, static_cast<double>(input_limit()),
                    "larger values would overflow the window's fourth-power sums");
    // The input may be one of this engine's own vectors (`moments().mean()` for a missing bar),
    // which the window's update overwrites before the sums below read it: they read a copy.
    m_input = input;
    const VectorType& x = m_input;
    const bool full = m_moments.count() == m_moments.window();
    const bool first = m_moments.count() == 0;
    // OAS needs ‖S‖²_F only: not the fourth-power sums of Q nor their cᵀSc.
    const bool oas = m_method == RollingShrinkageMethod::oas;
    if (full) {
      if (!oas)
        m_leaving = m_moments.oldest() - m_shift;
      if (uses_running_sums())
        m_oldest = m_moments.oldest();
    }
    // Validates first; if it throws, only the scratch copies of the leaving observation above
    // have changed, which nothing reads before the next update sets them again. The sums of the
    // new covariance come out of the update's own pass over the lower triangle.
    detail::StrictLowerSums<Scalar> sums;
    const bool summed = oas ? m_moments.update(x, sums) : m_moments.update(x, m_shift, sums);
    if (first)
      m_shift = x;  // a reference point near the data (K); the sums below see u = x − K
    bool shifted = false;
    if (!oas) {  // Q's sums, which OAS does not read
      m_entering = x - m_shift;
      const Scalar a_in = m_entering.squaredNorm();
      m_sum_a += a_in;
      m_sum_a2 += a_in * a_in;
      m_weighted_sum += a_in * m_entering;
      add_history(a_in, m_entering);
      if (full) {
        const Scalar a_out = m_leaving.squaredNorm();
        m_sum_a -= a_out;
        m_sum_a2 -= a_out * a_out;
        m_weighted_sum -= a_out * m_leaving;
        add_history(a_out, m_leaving);
        if (++m_since_resync >= m_moments.window()) {
          resync();
          shifted = true;  // c changed: the visited cross sum is about the old K
        }
      }
    }
    m_sums = sums;
    m_sums_current = summed && !shifted;
    if (uses_running_sums())
      update_cross_moments(x, full);
    if (m_window_pass)
      m_cross_current = false;  // the last window pass is of another window
  }

  /// Writes the shrunk covariance into `shrunk` (N×N): the full symmetric matrix, or with
  /// `OutputStorage::lower` its lower triangle only (half the writes); returns the intensity and
  /// μ. `not_ready` (and `shrunk` untouched) until the window is ready and holds two
  /// observations.
  ShrinkageResult compute(Eigen::Ref<MatrixType> shrunk,
                          OutputStorage storage = OutputStorage::full) {
    const Index n = assets();
    const CheckContext context{"RollingShrinkage::compute", m_moments.names(), m_moments.bars()};
    check_size(context, "shrunk (rows)", shrunk.rows(), n);
    check_size(context, "shrunk (columns)", shrunk.cols(), n);
    if (!ready())
      return {Status::not_ready("the rolling window is not ready"), 0.0, 0.0};
    if (tiny_window())
      return compute_from_window(shrunk, storage);

    if (m_method == RollingShrinkageMethod::constant_correlation)
      return compute_constant_correlation(shrunk, storage);

    // S = scale · cov (MLE, divisor T, from the sample covariance with ddof = 1).
    const auto t = static_cast<double>(m_moments.count());
    const double scale = (t - 1) / t;
    const MatrixType& cov = m_moments.covariance_lower();
    const bool oas = m_method == RollingShrinkageMethod::oas;
    // First: each brings m_sums up to date (OAS reads its squares only).
    const double q = oas ? 0.0 : fourth_power_sum();
    if (oas && !m_sums_current) {
      m_moments.mean_minus(m_shift, m_offset);
      m_sums = detail::strict_lower_sums(cov, m_offset);
      m_sums_current = true;
    }
    const double cov_mu = double(cov.diagonal().sum()) / double(n);
    double diagonal_squares = 0, deviations = 0;
    for (Index j = 0; j < n; ++j) {
      const double diagonal = cov(j, j);
      diagonal_squares += diagonal * diagonal;
      deviations += (diagonal - cov_mu) * (diagonal - cov_mu);
    }
    const double off_diagonal = double(m_sums.squares);
    const detail::ScaledIdentityMoments<double> moments{
        scale * cov_mu, scale * scale * (2 * off_diagonal + diagonal_squares),
        scale * scale * (2 * off_diagonal + deviations)};
    const auto ledoit_wolf = [&](double sum) {
      return detail::ledoit_wolf_intensity(sum, moments, t, double(n));
    };
    const double intensity = oas ? detail::oas_intensity(moments, t, double(n))
                                 : ledoit_wolf(checked_fourth_power_sum(q, ledoit_wolf));
    detail::shrink_to_scaled_identity<Scalar>(cov, static_cast<Scalar>(intensity),
                                              static_cast<Scalar>(moments.mu), shrunk,
                                              static_cast<Scalar>(scale), storage);
    // The factors shrink_to_scaled_identity applied: Σ̂ = keep · cov + shift · I.
    const Scalar keep = (Scalar(1) - static_cast<Scalar>(intensity)) * static_cast<Scalar>(scale);
    const Scalar shift = static_cast<Scalar>(intensity) * static_cast<Scalar>(moments.mu);
    label_output(keep, shift);
    return detail::scaled_identity_result(intensity, moments.mu);
  }
  /// The id of the last `compute()`'s output (0 before the first; see the class comment).
  [[nodiscard]] std::uint64_t output_id() const { return m_output_id; }
  /// How the last output moved from the one before, when the class comment's conditions hold;
  /// otherwise null, and null again once `update()` has moved the window past that output. Its
  /// vectors are the window's.
  [[nodiscard]] std::optional<CovarianceStep<Scalar>> output_step() const {
    if (!m_has_output_step || m_moments.covariance_id() != m_output_moments_id)
      return std::nullopt;
    CovarianceStep<Scalar> step = m_output_step;
    if (const auto moved = m_moments.covariance_step(); moved && step.weight != 0) {
      step.p = moved->p;  // this object's own (a copy's step is built from the copy)
      step.q = moved->q;
    }
    return step;
  }

  /// π̂, ρ̂ and γ̂ of the last `compute` (constant correlation only), as `ConstantCorrelation::terms`.
  [[nodiscard]] const ConstantCorrelationTerms& terms() const { return m_terms; }

  [[nodiscard]] Index assets() const { return m_moments.assets(); }
  /// The largest |x_i| an update accepts: the smaller of `RollingMoments::input_limit` and
  /// (max of `Scalar` / (64 W N²))^¼ (4.6e74 in double at N = 500, W = 250), so that the sums of
  /// fourth powers (Σ_t ‖x_t − K‖⁴, ‖S‖²_F: up to 16 W N² |x|⁴) cannot overflow.
  [[nodiscard]] Scalar input_limit() const {
    const Scalar n = Scalar(assets());
    const Scalar w = Scalar(m_moments.window());
    const Scalar fourth =
        std::sqrt(std::sqrt(std::numeric_limits<Scalar>::max() / (Scalar(64) * w * n * n)));
    return std::min(fourth, m_moments.input_limit());
  }
  [[nodiscard]] bool ready() const { return m_moments.ready() && m_moments.count() >= 2; }
  [[nodiscard]] RollingShrinkageMethod method() const { return m_method; }
  /// Constant correlation: where ρ̂'s cross sum comes from (`automatic` resolved; `running_sums`
  /// for the identity targets, which need neither).
  [[nodiscard]] CrossMomentSource cross_moment_source() const {
    return m_window_pass ? CrossMomentSource::window_pass : CrossMomentSource::running_sums;
  }
  /// Constant correlation by running sums: how many `compute()` calls since the last `reset()`
  /// took the window pass because the running sums' ρ̂ could have moved δ by more than 10⁵ ε (see
  /// the class comment).
  [[nodiscard]] std::uint64_t window_pass_fallbacks() const { return m_window_fallbacks; }
  /// Ledoit–Wolf and constant correlation: how many `compute()` calls since the last `reset()`
  /// re-accumulated the fourth-power sums from the window early, because their rounding could have
  /// moved δ by more than 10⁵ ε (see the class comment).
  [[nodiscard]] std::uint64_t forced_resyncs() const { return m_forced_resyncs; }
  /// How many `compute()` calls since the last `reset()` took the batch estimator on the window
  /// because its largest variance was below `tiny_variance()` (see the class comment).
  [[nodiscard]] std::uint64_t window_estimates() const { return m_window_estimates; }
  /// The rolling moments of the window (mean, covariance with ddof = 1, ...).
  [[nodiscard]] const RollingMoments<Scalar>& moments() const { return m_moments; }

  /// The largest variance below which `compute()` takes the batch estimator on the window (see
  /// the class comment): 2^(0.4 · the least normal exponent), 1.5e-123 in double, 8.9e-16 in
  /// float.
  [[nodiscard]] static Scalar tiny_variance() {
    return std::ldexp(Scalar(1), std::numeric_limits<Scalar>::min_exponent * 2 / 5);
  }

 private:
  // The window's largest variance is positive and below `tiny_variance()`: the fourth-power sums
  // of its scale would lose digits to underflow (from the contiguous copy of the diagonal).
  [[nodiscard]] bool tiny_window() const {
    const Scalar largest = m_moments.variance().maxCoeff();
    return largest > Scalar(0) && largest < tiny_variance();
  }

  // The batch estimator of the method on the window's observations (T×N, copied), which scales
  // them by a power of two first (`detail::SampleCovarianceWorkspace`). The output has an id and
  // no step (its S is the batch estimator's, not the window's running covariance).
  ShrinkageResult compute_from_window(Eigen::Ref<MatrixType> shrunk, OutputStorage storage) {
    const Index n = assets();
    const Index count = m_moments.count();
    // The first `count` columns of the ring hold the window (in ring order, which no estimator
    // depends on); the assignment sizes the panel.
    m_panel = m_moments.window_observations().leftCols(count).transpose();
    const auto estimate = [&](Eigen::Ref<MatrixType> out) {
      switch (m_method) {
        case RollingShrinkageMethod::ledoit_wolf:
          return m_batch_ledoit_wolf.compute(m_panel, out);
        case RollingShrinkageMethod::oas:
          return m_batch_oas.compute(m_panel, out);
        case RollingShrinkageMethod::constant_correlation:
          break;
      }
      const ShrinkageResult result = m_batch_constant_correlation.compute(m_panel, out);
      m_terms = m_batch_constant_correlation.terms();
      return result;
    };
    ShrinkageResult result;
    if (storage == OutputStorage::full) {
      result = estimate(shrunk);
    } else {
      m_full.resize(n, n);
      result = estimate(m_full);
      shrunk.template triangularView<Eigen::Lower>() = m_full;
    }
    m_output_id = next_covariance_id();
    m_output_moments_id = m_moments.covariance_id();
    m_has_output_step = false;
    m_output_keep = 0;  // no step from this output either
    ++m_window_estimates;
    return result;
  }

  [[nodiscard]] bool uses_running_sums() const {
    return m_method == RollingShrinkageMethod::constant_correlation && !m_window_pass;
  }

  // Q = Σ_t ||y_t||⁴ by the identity in the class comment; also makes m_offset = c and m_sums
  // those of the current covariance.
  double fourth_power_sum() {
    const Index n = assets();
    const auto t = static_cast<double>(m_moments.count());
    const double scale = (t - 1) / t;
    const MatrixType& cov = m_moments.covariance_lower();
    m_moments.mean_minus(m_shift, m_offset);
    if (!m_sums_current) {
      m_sums = detail::strict_lower_sums(cov, m_offset);
      m_sums_current = true;
    }
    double quadratic = 2 * double(m_sums.weighted);  // cᵀ cov c
    for (Index j = 0; j < n; ++j)
      quadratic += double(m_offset(j)) * double(cov(j, j)) * double(m_offset(j));
    const double c2 = double(m_offset.squaredNorm());
    return double(m_sum_a2) - 4.0 * double(m_offset.dot(m_weighted_sum)) +
           2.0 * c2 * double(m_sum_a) + 4.0 * t * scale * quadratic + t * c2 * c2;
  }

  // Q = `fourth_power_sum()` as given, or re-accumulated from the window (`resync()`, O(W·N)) when
  // the running sums' rounding could move the intensity `intensity_of(Q)` by more than 10⁵ ε: the
  // sums carry the rounding of every a_t² they added and removed since their last resync (a bad
  // print's ε·a² stays after it has left the window), and the re-centring on c = m − K cancels
  // terms the size of ‖c‖⁴ (a level shift since the resync). The bound is ε times those magnitudes;
  // it stays ~2ε relative on ordinary data, so this costs O(1) on almost every call.
  template <class Intensity>
  double checked_fourth_power_sum(double q, Intensity intensity_of) {
    const auto t = static_cast<double>(m_moments.count());
    const MatrixType& cov = m_moments.covariance_lower();
    const double c1 = double(m_offset.template lpNorm<1>());
    const double c2 = double(m_offset.squaredNorm());
    const double magnitude =
        double(m_history_a2) +
        4 * c1 * (double(m_weighted_sum.template lpNorm<Eigen::Infinity>()) + double(m_history_w)) +
        2 * c2 * double(m_history_a) + 4 * t * c1 * c1 * double(cov.diagonal().maxCoeff()) +
        t * c2 * c2;
    const double bound = 8 * double(std::numeric_limits<Scalar>::epsilon()) * magnitude;
    const double spread = std::abs(intensity_of(q + bound) - intensity_of(q - bound));
    if (spread > 1e5 * double(std::numeric_limits<Scalar>::epsilon()) || !std::isfinite(q)) {
      resync();
      m_sums_current = false;  // about the new K
      ++m_forced_resyncs;
      q = fourth_power_sum();
    }
    return q;
  }

  // The weights of the cross-moment bilinear form for the current window: s and 1/s of the
  // target into m_target, c' = m − K' and [1/s; −3 c' / s] into m_cross_weights. False while the
  // window holds fewer than two observations (no s yet).
  bool prepare_cross_weights() {
    const Index n = assets();
    const Index count = m_moments.count();
    if (count < 2)
      return false;
    const Scalar scale = Scalar(count - 1) / Scalar(count);
    m_target.compute_deviations(m_moments.covariance_lower(), scale);
    m_moments.mean_minus(m_cross.shift(), m_cross_offset);
    m_cross_weights.head(n) = m_target.inv_sd();
    m_cross_weights.tail(n) = Scalar(-3) * m_target.inv_sd().cwiseProduct(m_cross_offset);
    return true;
  }

  // Moves the cross-moment sums with the window; their bilinear form comes out of the same pass.
  void update_cross_moments(const Eigen::Ref<const VectorType>& x, bool full) {
    const bool weighted = prepare_cross_weights();
    if (weighted) {
      m_z = m_target.inv_sd().cwiseProduct(m_cross_offset).cwiseProduct(m_cross_offset);
    } else {
      m_cross_weights.setZero();  // no bilinear form yet: zero weights, zero column weights
    }
    const auto column_weights = weighted
                                    ? Eigen::Ref<const VectorType>(m_target.sd())
                                    : Eigen::Ref<const VectorType>(m_cross_weights.head(assets()));
    // The reductions of the covariance ride along the pass over [A; B], column by column.
    m_reductions = {};
    m_bilinear = double(m_cross.update(x, full ? &m_oldest : nullptr, m_cross_weights,
                                       column_weights, [this, weighted](Index j) {
                                         if (weighted)
                                           reduce_covariance_column(j, m_reductions);
                                       }));
    m_cross_current = weighted;
    const Index period = m_moments.options().effective_resync_period();
    if (full && period > 0 && ++m_since_rebuild >= period) {
      m_cross.rebuild(m_moments.window_observations(), m_moments.count(), m_moments.mean());
      m_since_rebuild = 0;
      m_cross_current = false;
    }
  }

  // Σ_{i>j} cov_ij/(s_i s_j) (for r̄), Σ_{i>j} s_i s_j cov_ij and zᵀ cov s, z = c'²/s, over
  // column j of the lower triangle of cov (one read, three packet dot products).
  struct CovarianceReductions {
    double correlation_sum = 0;
    double off_sss = 0;
    double zss = 0;
  };
  // (Without `WithZ`, the first two only: the window pass has c' = 0.)
  template <bool WithZ = true>
  void reduce_covariance_column(Index j, CovarianceReductions& sums) const {
    const MatrixType& cov = m_moments.covariance_lower();
    const VectorType& sd = m_target.sd();
    const VectorType& inv_sd = m_target.inv_sd();
    const Index m = assets() - j - 1;
    const Scalar* below = cov.data() + j * cov.outerStride() + j + 1;
    using Dots = detail::kernel::Reduction<Scalar, WithZ ? 3 : 2, false>;
    Dots dots = [&] {
      if constexpr (WithZ)
        return Dots({inv_sd.data() + j + 1, sd.data() + j + 1, m_z.data() + j + 1});
      else
        return Dots({inv_sd.data() + j + 1, sd.data() + j + 1});
    }();
    detail::kernel::read_segment(below, m, dots);
    sums.correlation_sum += double(inv_sd(j)) * double(dots.dot(0));
    sums.off_sss += double(sd(j)) * double(dots.dot(1));
    if constexpr (WithZ) {
      sums.zss += double(m_z(j)) * (double(cov(j, j)) * double(sd(j)) + double(dots.dot(1))) +
                  double(sd(j)) * double(dots.dot(2));
    }
  }

  // What ρ̂ needs beyond the covariance, for the window of T observations y_t (centred), with s
  // the volatilities (divisor T) and x = 1/s (0 for a constant asset):
  struct FourthMoments {
    double sum_fourth = 0;  // Σ_i Σ_t y_ti⁴ / T over the assets with positive variance
    double cross = 0;       // Σ_t (Σ_i x_i y_ti³)(Σ_j s_j y_tj)
    double off_sss = 0;     // Σ_{i>j} s_i s_j S_ij
    double rounding = 0;    // the rounding these carry into ρ̂, bounded (0 for the window pass)
  };

  // From the running sums [A; B] and the power sums about K' (see the class comment); also sets
  // s, 1/s and r̄ of m_target.
  FourthMoments running_fourth_moments() {
    const Index n = assets();
    const Index count = m_moments.count();
    const auto t = static_cast<double>(count);
    const auto scale = static_cast<double>(Scalar(count - 1) / Scalar(count));
    // s, 1/s, and c' = m − K' with the bilinear weights: when the bilinear form is current, the
    // update's pass left them for this window and K'.
    if (!m_cross_current)
      prepare_cross_weights();
    const VectorType& sd = m_target.sd();
    const VectorType& inv_sd = m_target.inv_sd();
    const VectorType& c = m_cross_offset;
    if (!m_cross_current) {
      m_bilinear = double(m_cross.bilinear(m_cross_weights, sd));
      m_z = inv_sd.cwiseProduct(c).cwiseProduct(c);
      m_reductions = {};
      for (Index j = 0; j < n; ++j)
        reduce_covariance_column(j, m_reductions);
      m_cross_current = true;
    }
    m_target.set_correlation_sum(static_cast<Scalar>(scale * m_reductions.correlation_sum));

    // Per asset (positive variance only; a constant asset's centred observations are 0):
    // Σ_t y⁴ and Σ_t y³ from the power sums about K', with Σ_t u = T c'.
    double sum_fourth = 0, x_m3 = 0, x_c3 = 0, c_s = 0;
    for (Index i = 0; i < n; ++i) {
      if (inv_sd(i) == 0)
        continue;
      const double ci = double(c(i));
      const double p2 = double(m_cross.power2()(i));
      const double p3 = double(m_cross.power3()(i));
      const double p4 = double(m_cross.power4()(i));
      sum_fourth += p4 - 4 * ci * p3 + 6 * ci * ci * p2 - 3 * t * ci * ci * ci * ci;
      x_m3 += double(inv_sd(i)) * (p3 - 3 * ci * p2 + 2 * t * ci * ci * ci);
      x_c3 += double(inv_sd(i)) * ci * ci * ci;
      c_s += ci * double(sd(i));
    }
    const double zss = scale * m_reductions.zss;
    const double rbar = double(m_target.mean_correlation());
    const auto sizes = detail::cross_moment_magnitudes(
        inv_sd, sd, c, m_moments.mean(), m_cross.history2(), m_cross.history4(), Scalar(t));
    return {.sum_fourth = sum_fourth / t,
            .cross = m_bilinear + 3 * t * zss + 2 * t * x_c3 * c_s - x_m3 * c_s,
            .off_sss = scale * m_reductions.off_sss,
            .rounding = double(std::numeric_limits<Scalar>::epsilon()) *
                        (std::abs(rbar) * sizes.cross + std::abs(1 - rbar) * sizes.fourth) / t};
  }

  // From one pass over the window's observations about the current mean (the cross sum and the
  // fourth powers) and one over the covariance's lower triangle (r̄ and Σ s_i s_j S_ij, taken on
  // the covariance itself, as the running sums take them: r̄ and the target then agree with S to
  // rounding, which γ̂ needs when S is near the target). Also sets s, 1/s and r̄ of m_target.
  FourthMoments window_fourth_moments() {
    const Index n = assets();
    const Index count = m_moments.count();
    const Scalar scale = Scalar(count - 1) / Scalar(count);
    m_target.compute_deviations(m_moments.covariance_lower(), scale);
    if (!m_cross_current) {
      // The covariance first and from its last column, which the update's pass left in the
      // cache; then the window.
      m_reductions = {};
      for (Index j = n - 1; j >= 0; --j)
        reduce_covariance_column<false>(j, m_reductions);
      window_pass();
      m_cross_current = true;
    }
    m_target.set_correlation_sum(static_cast<Scalar>(double(scale) * m_reductions.correlation_sum));
    return window_sums_moments();
  }

  // m_window_sums from one pass over the current window, with s and 1/s set.
  void window_pass() {
    m_window_sums = detail::window_moments(
        m_moments.window_observations(), m_moments.count(), m_moments.mean(),
        m_moments.mean_reference(), m_moments.mean_offset(), m_target.sd(), m_target.inv_sd());
  }

  // ρ̂'s sums from m_window_sums (of the current window) and m_reductions, with s and 1/s set.
  [[nodiscard]] FourthMoments window_sums_moments() const {
    const Index n = assets();
    const Index count = m_moments.count();
    const auto t = static_cast<double>(count);
    const Scalar scale = Scalar(count - 1) / Scalar(count);
    const VectorType& inv_sd = m_target.inv_sd();
    const VectorType& reference = m_moments.mean_reference();
    const VectorType& offset = m_moments.mean_offset();
    const MatrixType& ring = m_moments.window_observations();
    double constant_fourth = 0;  // of the constant assets (rounding-level y), which ρ̂ leaves out
    for (Index i = 0; i < n; ++i) {
      if (inv_sd(i) != 0)
        continue;
      for (Index k = 0; k < count; ++k) {
        const double y = (double(ring(i, k)) - double(reference(i))) - double(offset(i));
        constant_fourth += y * y * y * y;
      }
    }
    return {.sum_fourth = (m_window_sums.fourth - constant_fourth) / t,
            .cross = m_window_sums.cross,
            .off_sss = double(scale) * m_reductions.off_sss};
  }

  ShrinkageResult compute_constant_correlation(Eigen::Ref<MatrixType> shrunk,
                                               OutputStorage storage) {
    const Index n = assets();
    const auto count = m_moments.count();
    const auto t = static_cast<double>(count);
    const Scalar scale = Scalar(count - 1) / Scalar(count);
    const MatrixType& cov = m_moments.covariance_lower();
    const double q = fourth_power_sum();  // first: it brings m_sums up to date
    const double frobenius2 = double(scale) * double(scale) * 2 * double(m_sums.squares) +
                              double(scale) * double(scale) * double(cov.diagonal().squaredNorm());

    // s and 1/s (0 for a constant asset), r̄, and ρ̂'s sums, from one source or the other.
    FourthMoments moments = m_window_pass ? window_fourth_moments() : running_fourth_moments();
    const double off_sss = moments.off_sss;  // the same from either source
    const VectorType& sd = m_target.sd();
    double diag2 = 0;
    for (Index i = 0; i < n; ++i) {
      const double variance = double(scale) * double(cov(i, i));
      diag2 += variance * variance;
    }

    const double rbar = double(m_target.mean_correlation());
    // ρ̂ = Σ_i π_ii + r̄ Σ θ, from the fourth moments.
    const auto rho_of = [&](const FourthMoments& m) {
      return (m.sum_fourth - diag2) + rbar * (m.cross / t - m.sum_fourth - 2 * off_sss);
    };
    double rho_hat = rho_of(moments);
    // γ̂/2 = Σ_{i>j} (S_ij − r̄ s_i s_j)² = Σ S_ij² − 2 r̄ Σ s_i s_j S_ij + r̄² Σ s_i² s_j², from
    // sums already at hand. Its rounding error is ~ε times the largest of the three terms; when
    // γ̂ is less than 10⁻⁴ of that (correlations nearly all equal; always when N = 2), it is
    // recomputed exactly by one more pass, so γ̂ keeps 12 digits either way.
    double pair_squares = 0, suffix = 0;  // Σ_{i>j} s_i² s_j²
    for (Index i = n - 1; i >= 0; --i) {
      const double variance = double(sd(i)) * double(sd(i));
      pair_squares += variance * suffix;
      suffix += variance;
    }
    const double off_squares = double(scale) * double(scale) * double(m_sums.squares);
    const double magnitude =
        std::max({off_squares, std::abs(2 * rbar * off_sss), rbar * rbar * pair_squares});
    double gamma_hat = 2 * (off_squares - 2 * rbar * off_sss + rbar * rbar * pair_squares);
    if (!(gamma_hat > 2e-4 * magnitude))
      gamma_hat = double(m_target.squared_distance(cov, scale));
    const double trace = double(scale) * double(cov.diagonal().sum());
    const auto intensity_of_q = [&](double sum) {
      return detail::constant_correlation_intensity(sum / t - frobenius2, rho_hat, gamma_hat, trace,
                                                    t);
    };
    const double pi_hat = checked_fourth_power_sum(q, intensity_of_q) / t - frobenius2;
    const auto intensity_at = [&](double rho) {
      return detail::constant_correlation_intensity(pi_hat, rho, gamma_hat, trace, t);
    };
    // The running sums' ρ̂ is within `rounding` of the exact one, so δ is between the intensities
    // at its two ends; when they differ by more than 10⁵ ε (or are not finite), the window pass
    // decides, for this call (see the class comment).
    if (!m_window_pass) {
      const double spread =
          intensity_at(rho_hat - moments.rounding) - intensity_at(rho_hat + moments.rounding);
      if (!(spread <= 1e5 * double(std::numeric_limits<Scalar>::epsilon()))) {
        window_pass();
        moments = window_sums_moments();
        rho_hat = rho_of(moments);
        ++m_window_fallbacks;
      }
    }
    m_terms = {pi_hat, rho_hat, gamma_hat};
    double delta = intensity_at(rho_hat);
    Status status = m_target.status();
    if (!std::isfinite(delta)) {
      delta = 0;
      status = {StatusCode::numerical_issue, 0, 0.0,
                "the shrinkage intensity is not finite (the window's fourth moments overflow): "
                "the sample covariance is returned (intensity 0)"};
    }
    m_target.shrink(cov, static_cast<Scalar>(delta), shrunk, scale, storage);
    m_output_id = next_covariance_id();
    m_output_moments_id = m_moments.covariance_id();
    m_has_output_step = false;
    return {status, delta, m_target.reported_mean_correlation()};
  }

  // A new output id, and the step from the previous output when the window moved by at most one
  // plain rank-2 step since it (and that output's keep was not 0: then S cannot be recovered).
  void label_output(Scalar keep, Scalar shift) {
    const auto moved = m_moments.covariance_step();
    const bool unchanged = m_output_id != 0 && m_moments.covariance_id() == m_output_moments_id;
    const bool one_step = m_output_id != 0 && moved && moved->from == m_output_moments_id;
    m_has_output_step = (unchanged || one_step) && m_output_keep != 0;
    if (m_has_output_step) {
      const Scalar ratio = keep / m_output_keep;
      m_output_step = {.from = m_output_id,
                       .scale = ratio,
                       .weight = unchanged ? Scalar(0) : keep * moved->weight,
                       .p = nullptr,  // set by output_step()
                       .q = nullptr,
                       .ridge = shift - ratio * m_output_shift};
    }
    m_output_id = next_covariance_id();
    m_output_moments_id = m_moments.covariance_id();
    m_output_keep = keep;
    m_output_shift = shift;
  }
  // Re-accumulates Σa, Σa², Σ a u exactly from the window, about K = the current mean.
  // What the sums of a_t about K have added and removed since their last resync (their rounding
  // is ~ε times these): Σ a, Σ a², Σ a‖u‖∞.
  void add_history(Scalar a, const VectorType& u) {
    m_history_a += a;
    m_history_a2 += a * a;
    m_history_w += a * u.template lpNorm<Eigen::Infinity>();
  }

  void resync() {
    m_shift = m_moments.mean();
    m_sum_a = 0;
    m_sum_a2 = 0;
    m_history_a = 0;
    m_history_a2 = 0;
    m_history_w = 0;
    m_weighted_sum.setZero();
    const auto& ring = m_moments.window_observations();
    for (Index k = 0; k < m_moments.count(); ++k) {
      m_entering = ring.col(k) - m_shift;
      const Scalar a = m_entering.squaredNorm();
      m_sum_a += a;
      m_sum_a2 += a * a;
      m_weighted_sum += a * m_entering;
      add_history(a, m_entering);
    }
    m_since_resync = 0;
  }

  RollingMoments<Scalar> m_moments;
  RollingShrinkageMethod m_method;
  bool m_window_pass;         // constant correlation by CrossMomentSource::window_pass
  VectorType m_shift;         // K
  Scalar m_sum_a = 0;         // Σ a_t
  Scalar m_sum_a2 = 0;        // Σ a_t²
  VectorType m_weighted_sum;  // Σ a_t u_t
  Scalar m_history_a = 0;   // Σ a, Σ a², Σ a‖u‖∞ over what the three sums above added and
  Scalar m_history_a2 = 0;  // removed since their last resync (see add_history)
  Scalar m_history_w = 0;
  std::uint64_t m_forced_resyncs = 0;  // see forced_resyncs()
  VectorType m_entering;               // u of the entering observation (scratch)
  VectorType m_input;                  // the observation being added (a copy: see update)
  VectorType m_leaving;                // u of the leaving observation (scratch)
  VectorType m_offset;                 // c = m − K (scratch of compute)
  // Σ_{i>j} cov_ij² and Σ_{i>j} c_i c_j cov_ij of the current covariance when m_sums_current
  // (for OAS the first only, the second 0 or stale)
  detail::StrictLowerSums<Scalar> m_sums;
  bool m_sums_current = false;
  Index m_since_resync = 0;
  // Constant correlation only (empty otherwise):
  detail::CrossMomentSums<Scalar> m_cross;  // [A; B] and Σu², Σu³, Σu⁴ about K'
  detail::ConstantCorrelationTarget<Scalar> m_target;
  VectorType m_oldest;                // the observation leaving the window (scratch)
  VectorType m_cross_offset;          // c' = m − K'
  VectorType m_cross_weights;         // [1/s; −3 c'/s]
  VectorType m_z;                     // c'² / s
  CovarianceReductions m_reductions;  // of the current covariance when m_cross_current
  double m_bilinear = 0;              // Σ_ij (1/s_i)(A_ij − 3 c'_i B_ij) s_j
  // of the current window when m_cross_current (window pass), or of a running-sums fallback
  detail::WindowMoments m_window_sums;
  // m_reductions and m_bilinear (running sums) or m_window_sums (window pass) are current
  bool m_cross_current = false;
  Index m_since_rebuild = 0;
  std::uint64_t m_window_fallbacks = 0;  // see window_pass_fallbacks()
  ConstantCorrelationTerms m_terms;
  // Tiny data (see compute_from_window): sized by their first use.
  MatrixType m_panel;  // the window, T×N
  MatrixType m_full;   // the full output when the caller asked for the lower triangle
  LedoitWolf<Scalar> m_batch_ledoit_wolf;
  Oas<Scalar> m_batch_oas;
  ConstantCorrelation<Scalar> m_batch_constant_correlation;
  std::uint64_t m_window_estimates = 0;  // see window_estimates()
  // Lineage of the output (see the class comment).
  std::uint64_t m_output_id = 0;
  std::uint64_t m_output_moments_id = 0;  // the window's covariance id at that output
  Scalar m_output_keep = 0;               // its Σ̂ = keep · cov + shift · I (identity targets)
  Scalar m_output_shift = 0;
  CovarianceStep<Scalar> m_output_step;
  bool m_has_output_step = false;
};

}  // namespace dynweight
