#pragma once

/// \file
/// Average dollar volume (ADV) of N assets: rolling-window and exponentially weighted means of
/// price × volume.

#include <Eigen/Core>
#include <limits>
#include <utility>

#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/stats/ewma_decay.hpp"

namespace dynweight {

namespace detail {

/// Checks one bar of prices and volumes and writes their product into `dollar_volume`, touching
/// nothing on failure. Prices must be finite and > 0, volumes finite and >= 0 (a bar without
/// trades is legal), and their product finite.
template <class Scalar>
void checked_dollar_volume(const CheckContext& context,
                           const Eigen::Ref<const Vector<Scalar>>& prices,
                           const Eigen::Ref<const Vector<Scalar>>& volumes, Scalar limit,
                           Vector<Scalar>& dollar_volume) {
  check_size(context, "prices", prices.size(), dollar_volume.size());
  check_size(context, "volumes", volumes.size(), dollar_volume.size());
  check_positive(context, "prices", prices);
  check_nonnegative(context, "volumes", volumes);
  check_magnitude(context, "dollar volume (prices * volumes)", prices.cwiseProduct(volumes),
                  static_cast<double>(limit), "larger values would overflow the average's sums");
  dollar_volume = prices.cwiseProduct(volumes);
}

}  // namespace detail

/// Parameters of a `RollingDollarVolume`.
struct RollingDollarVolumeOptions {
  /// Bars in the window, W >= 1 (default 60, as `RollingOptions`).
  Index window = 60;
  /// Bars needed before `ready()`, as pandas' `min_periods`; 0 means `window`.
  Index min_periods = 0;

  [[nodiscard]] Index effective_min_periods() const {
    return min_periods == 0 ? window : min_periods;
  }

  /// Throws `dynweight::Error` unless W >= 1 and 0 <= min_periods <= W.
  void validate() const {
    const CheckContext context{"RollingDollarVolumeOptions"};
    check_parameter(window >= 1, context, "window", static_cast<double>(window), ">= 1");
    check_parameter(min_periods >= 0 && min_periods <= window, context, "min_periods",
                    static_cast<double>(min_periods), "in [0, window] (0 means window)");
  }
};

/// Rolling average dollar volume of N assets: after bar t, with dollar volume x_k = p_k v_k,
///   ADV_t = (1/n) Σ_{k=t−n+1..t} x_k,   n = min(t + 1, W),
/// as pandas `(prices * volumes).rolling(W, min_periods).mean()`: NaN until n >= min_periods.
///
/// **Exactness.** Dollar volumes are never negative, so a sum of them has no cancellation: in
/// any order, n of them add up to within (n − 1)·u of exact (u = 2⁻⁵³ ≈ 1.1e-16 in double). A
/// running sum that subtracts the bar leaving the window loses that: a 1e12 spike entering and
/// leaving a window of twenty 1e3s leaves a residue of up to 6e-5 (3e-9 relative), and a window
/// of zero volumes no longer sums to 0. So this engine never subtracts. It cuts the stream into
/// blocks of B = ⌊W/2⌋ bars (B = 1 when W = 1) and adds up the window from three partial sums of
/// its own bars: the current block so far (a running prefix sum), the whole previous block (its
/// prefix sum when it ended) and, as far as the window reaches back, the newest bars of the block
/// before that (a suffix sum). The suffix sums of a finished block are built one per bar during the
/// next block, so they are complete when the window first needs them: the "two stacks"
/// sliding-window aggregation, de-amortised by the half-window block. Hence the window sum is a sum
/// of exactly the window's bars with no memory of earlier ones: within (n − 1)·u at every bar
/// however long the stream (nothing drifts, nothing needs a resync), and exactly 0 for a window of
/// zero volumes. Measured over 10⁶ bars of values spanning 1e3..1e12 with spikes and halts: within
/// 7e-16 (W = 20) and 1.4e-15 (W = 63) of a long-double direct mean at every bar. The mean agrees
/// with pandas (a Kahan-compensated running sum) to within 4e-16 relative, not bit for bit.
///
/// **Cost.** Four vector additions, one copy and one division per bar, every bar (no periodic
/// recompute, no slow bar): O(N) flops; O(N·3B) ≤ O(1.5·N·W) memory, all sized at construction.
/// `update()` never allocates.
///
/// **Errors.** `update()` throws `dynweight::Error` on a wrong size, a price that is not finite
/// and > 0, a volume that is not finite and >= 0 or an overflowing product, naming the argument,
/// the asset and the bar, and leaves the engine unchanged.
///
/// \code
/// dynweight::RollingDollarVolume<double> adv(3, {.window = 20});
/// adv.update(prices_today, volumes_today);      // Eigen vectors of 3 prices and 3 share volumes
/// if (adv.ready()) {
///   double adv0 = adv.average()(0);            // mean dollar volume over the last 20 bars
/// }
/// \endcode
template <FloatingScalar Scalar_ = double>
class RollingDollarVolume {
 public:
  using Scalar = Scalar_;
  using VectorType = Vector<Scalar>;
  using MatrixType = Matrix<Scalar>;
  using Options = RollingDollarVolumeOptions;

  /// Sizes every buffer for `assets` series; `names` (optional, one per asset) label error
  /// messages.
  RollingDollarVolume(Index assets, Options options, AssetNames names = {})
      : m_options(validated(options, assets, names)),
        m_names(std::move(names)),
        m_block(options.window >= 2 ? options.window / 2 : 1),
        m_blocks(assets, 3 * m_block),
        m_prefix(assets),
        m_previous_block(assets),
        m_window_sum(assets),
        m_average(assets),
        m_dollar_volume(assets) {
    reset();
  }

  /// Forgets every bar; sizes and options are kept.
  void reset() {
    m_bars = 0;
    m_blocks.setZero();
    m_prefix.setZero();
    m_previous_block.setZero();
    m_window_sum.setZero();
    m_average.setConstant(nan());
    m_dollar_volume.setConstant(nan());
  }

  /// Adds one bar: prices (finite, > 0) and traded volumes in shares (finite, >= 0), one per asset;
  /// the oldest bar leaves once the window is full.
  void update(const Eigen::Ref<const VectorType>& prices,
              const Eigen::Ref<const VectorType>& volumes) {
    const CheckContext context{"RollingDollarVolume::update", m_names, m_bars};
    detail::checked_dollar_volume<Scalar>(context, prices, volumes, input_limit(), m_dollar_volume);
    accumulate(m_dollar_volume);
    ++m_bars;
    if (ready()) {
      m_average = m_window_sum / Scalar(count());
    }
  }

  [[nodiscard]] Index assets() const { return m_average.size(); }
  [[nodiscard]] Index window() const { return m_options.window; }
  /// The largest dollar volume (price × volume) a bar may bring: max of `Scalar` / (4W), so that
  /// the window's sums (of up to W bars, kept in three blocks) cannot overflow.
  [[nodiscard]] Scalar input_limit() const {
    return std::numeric_limits<Scalar>::max() / (Scalar(4) * Scalar(window()));
  }
  /// Bars currently in the window (≤ W).
  [[nodiscard]] Index count() const { return m_bars < window() ? m_bars : window(); }
  /// Bars accepted since construction or `reset()`.
  [[nodiscard]] Index bars() const { return m_bars; }
  /// True once `count() >= min_periods` (the window is full when min_periods is its default).
  [[nodiscard]] bool ready() const { return count() >= m_options.effective_min_periods(); }
  [[nodiscard]] const Options& options() const { return m_options; }
  [[nodiscard]] const AssetNames& names() const { return m_names; }

  /// Average dollar volume per bar over the window (price units × shares); NaN until `ready()`.
  [[nodiscard]] const VectorType& average() const { return m_average; }
  /// Total dollar volume of the bars in the window (kept from the first bar on).
  [[nodiscard]] const VectorType& window_sum() const { return m_window_sum; }
  /// Price × volume of the latest bar; NaN before the first.
  [[nodiscard]] const VectorType& last_dollar_volume() const { return m_dollar_volume; }

 private:
  static constexpr Scalar nan() { return std::numeric_limits<Scalar>::quiet_NaN(); }

  static Options validated(const Options& options, Index assets, const AssetNames& names) {
    options.validate();
    const CheckContext context{"RollingDollarVolume"};
    check_parameter(assets >= 1, context, "assets", static_cast<double>(assets), ">= 1");
    check_names(context, names, assets);
    return options;
  }

  // Bar t = kB + j is the j-th bar of block k. The ring `m_blocks` holds three blocks, block k in
  // columns (k mod 3)·B ..: the current block's values as they arrive, the previous block being
  // turned into suffix sums (one column per bar, newest first), and the suffix sums of the block
  // before it. The window's W − j − 1 bars before the current block are the whole previous block
  // (for W >= 2, W − j − 1 >= 2B − B) and the newest L = W − j − 1 − B bars of the block before.
  // Blocks before the first bar are zeros, which makes a filling window come out right.
  void accumulate(const VectorType& x) {
    const Index b = m_block;
    const Index k = m_bars / b;
    const Index j = m_bars % b;
    const Index current = (k % 3) * b;
    const Index previous = ((k + 2) % 3) * b;
    const Index oldest = ((k + 1) % 3) * b;

    if (j == 0) {
      m_previous_block = m_prefix;
      m_prefix = x;
    } else {
      m_prefix += x;
      m_blocks.col(previous + b - 1 - j) += m_blocks.col(previous + b - j);
    }
    m_blocks.col(current + j) = x;

    m_window_sum = m_prefix;
    const Index before = window() - j - 1;
    if (before >= b)
      m_window_sum += m_previous_block;
    if (before > b)
      m_window_sum += m_blocks.col(oldest + 2 * b - before);
  }

  Options m_options;
  AssetNames m_names;
  Index m_block;                // B, bars per block
  MatrixType m_blocks;          // N × 3B ring of three blocks, see accumulate()
  VectorType m_prefix;          // sum of the current block's bars so far
  VectorType m_previous_block;  // sum of the whole previous block
  VectorType m_window_sum;
  VectorType m_average;
  VectorType m_dollar_volume;
  Index m_bars = 0;
};

/// Parameters of an `EwmaDollarVolume`.
struct EwmaDollarVolumeOptions {
  /// Decay of the weights (default: a half-life of 30 bars, as `EwmaOptions`).
  EwmaDecay decay = EwmaDecay::from_halflife(30.0);
  /// pandas' `adjust`: true divides by the sum of the weights of the bars seen (see
  /// `EwmaDollarVolume`); false is the recursion a_t = (1 − α) a_{t−1} + α x_t from a_0 = x_0.
  bool adjust = true;
  /// Bars needed before `ready()`, as pandas' `min_periods` (0 and 1 both mean the first bar).
  Index min_periods = 0;

  [[nodiscard]] Index effective_min_periods() const { return min_periods < 1 ? 1 : min_periods; }

  /// Throws `dynweight::Error` unless min_periods >= 0 (the decay validated itself when built).
  void validate() const {
    check_parameter(min_periods >= 0, {"EwmaDollarVolumeOptions"}, "min_periods",
                    static_cast<double>(min_periods), ">= 0");
  }
};

/// Exponentially weighted average dollar volume of N assets, as pandas
/// `(prices * volumes).ewm(alpha, adjust).mean()`: with x_k = p_k v_k and λ = 1 − α,
///   adjust = true:   ADV_t = Σ_{k=0..t} λ^{t−k} x_k / Σ_{k=0..t} λ^{t−k},
///   adjust = false:  ADV_0 = x_0,  ADV_t = λ ADV_{t−1} + α x_t,
/// NaN until `bars() >= max(min_periods, 1)`.
///
/// **Update.** pandas' own recursion: with the weight w of the past (w_0 = 1),
///   w ← λ w,   ADV ← (w ADV + c x) / (w + c),   then w ← w + c (adjust) or w ← 1 (not),
/// with c = 1 (adjust) or α (not). Each step is a convex combination of the previous average and
/// the new value, so an earlier rounding error is multiplied by w / (w + c) < 1 (→ λ) every bar:
/// errors settle at a few u/α relative instead of accumulating (measured: bit-identical to pandas
/// on the reference data; within 1.1e-14 of a long-double recursion after 10⁶ bars with a half-life
/// of 20, u/α ≈ 3e-15). An average equal to the new value is left untouched, so a constant stream
/// averages to exactly its value, as in pandas.
///
/// **Cost.** O(N) per bar; buffers sized at construction; `update()` never allocates.
///
/// **Errors.** As `RollingDollarVolume`.
///
/// \code
/// dynweight::EwmaDollarVolume<double> adv(3, {.decay = dynweight::EwmaDecay::from_halflife(10)});
/// adv.update(prices_today, volumes_today);
/// double adv0 = adv.average()(0);
/// \endcode
template <FloatingScalar Scalar_ = double>
class EwmaDollarVolume {
 public:
  using Scalar = Scalar_;
  using VectorType = Vector<Scalar>;
  using Options = EwmaDollarVolumeOptions;

  /// Sizes every buffer for `assets` series; `names` (optional, one per asset) label error
  /// messages.
  EwmaDollarVolume(Index assets, Options options, AssetNames names = {})
      : m_options(validated(options, assets, names)),
        m_names(std::move(names)),
        m_alpha(static_cast<Scalar>(options.decay.alpha())),
        m_lambda(Scalar(1) - m_alpha),
        m_new_weight(options.adjust ? Scalar(1) : m_alpha),
        m_state(assets),
        m_average(assets),
        m_dollar_volume(assets) {
    reset();
  }

  /// Forgets every bar; sizes and options are kept.
  void reset() {
    m_bars = 0;
    m_old_weight = Scalar(1);
    m_state.setConstant(nan());
    m_average.setConstant(nan());
    m_dollar_volume.setConstant(nan());
  }

  /// Adds one bar: prices (finite, > 0) and traded volumes in shares (finite, >= 0), one per asset.
  void update(const Eigen::Ref<const VectorType>& prices,
              const Eigen::Ref<const VectorType>& volumes) {
    const CheckContext context{"EwmaDollarVolume::update", m_names, m_bars};
    detail::checked_dollar_volume<Scalar>(context, prices, volumes, input_limit(), m_dollar_volume);
    const VectorType& x = m_dollar_volume;
    if (m_bars == 0) {
      m_state = x;
    } else {
      m_old_weight *= m_lambda;
      const Scalar total = m_old_weight + m_new_weight;
      for (Index i = 0; i < assets(); ++i) {
        if (m_state(i) != x(i))
          m_state(i) = (m_old_weight * m_state(i) + m_new_weight * x(i)) / total;
      }
      m_old_weight = m_options.adjust ? m_old_weight + m_new_weight : Scalar(1);
    }
    ++m_bars;
    if (ready())
      m_average = m_state;
  }

  [[nodiscard]] Index assets() const { return m_average.size(); }
  /// Bars accepted since construction or `reset()`.
  [[nodiscard]] Index bars() const { return m_bars; }
  /// True once `bars() >= max(min_periods, 1)`.
  [[nodiscard]] bool ready() const { return m_bars >= m_options.effective_min_periods(); }
  [[nodiscard]] const Options& options() const { return m_options; }
  [[nodiscard]] const AssetNames& names() const { return m_names; }
  /// The smoothing factor α, in `Scalar`.
  [[nodiscard]] Scalar alpha() const { return m_alpha; }
  /// The largest dollar volume (price × volume) a bar may bring: α · max of `Scalar` / 2, so that
  /// old weight × average (the old weight reaches 1/α with adjust) cannot overflow.
  [[nodiscard]] Scalar input_limit() const {
    return m_alpha * (std::numeric_limits<Scalar>::max() / Scalar(2));
  }

  /// Exponentially weighted average dollar volume per bar (price units × shares); NaN until
  /// `ready()`.
  [[nodiscard]] const VectorType& average() const { return m_average; }
  /// Price × volume of the latest bar; NaN before the first.
  [[nodiscard]] const VectorType& last_dollar_volume() const { return m_dollar_volume; }

 private:
  static constexpr Scalar nan() { return std::numeric_limits<Scalar>::quiet_NaN(); }

  static Options validated(const Options& options, Index assets, const AssetNames& names) {
    options.validate();
    const CheckContext context{"EwmaDollarVolume"};
    check_parameter(assets >= 1, context, "assets", static_cast<double>(assets), ">= 1");
    check_names(context, names, assets);
    return options;
  }

  Options m_options;
  AssetNames m_names;
  Scalar m_alpha;
  Scalar m_lambda;          // 1 − α
  Scalar m_new_weight;      // c: 1 with adjust, α without
  Scalar m_old_weight = 1;  // w, the weight of the past
  VectorType m_state;       // the average, kept from the first bar on
  VectorType m_average;     // m_state once ready, NaN before
  VectorType m_dollar_volume;
  Index m_bars = 0;
};

}  // namespace dynweight
