#pragma once

/// \file
/// Running third- and fourth-order cross-moment sums of a rolling window, the statistics the
/// rolling constant-correlation shrinkage keeps beside the covariance.

#include <Eigen/Core>
#include <array>
#include <memory>

#include "dynweight/core/types.hpp"
#include "dynweight/stats/detail/symmetric_update.hpp"

namespace dynweight::detail {

/// With u_t = x_t − K for a reference point K near the data, the N×N sums
///   A_ij = Σ_t u_ti³ u_tj,   B_ij = Σ_t u_ti² u_tj
/// (stored stacked, as the 2N×N matrix [A; B]) and the per-asset power sums p_k = Σ_t u_t^k,
/// k = 2, 3, 4, over the observations in a window. An observation enters and leaves in one pass
/// over [A; B] (a general rank-2 update), which also returns Σ_j y_j ([A; B]_:j · w) for weights
/// given by the caller, so that the bilinear forms the constant-correlation intensity needs cost
/// no second pass. `rebuild` re-accumulates everything exactly from the window about a new K.
///
/// For a caller that estimates their rounding, it also keeps g_k = Σ p_k² over the updates since
/// the last rebuild (k = 2, 4; the rebuild counts as `count` updates, its product summing that
/// many terms). Each update rounds A_ij and B_ij by ~ε times their magnitudes, which are below
/// p4_i^¾ p4_j^¼ and (p4_i p2_j)^½ (Hölder); those errors add like a random walk, to
/// ~ε √(Σ A_ij²) <= ε h4_i^¾ h4_j^¼ over the updates (Hölder again), with h_k = √g_k, and
/// ~ε (h4_i h2_j)^½ for B.
template <FloatingScalar Scalar>
class CrossMomentSums {
 public:
  using VectorType = Vector<Scalar>;
  using MatrixType = Matrix<Scalar>;
  struct NoAfterColumn {
    void operator()(Index /*column*/) const {}
  };

  CrossMomentSums() = default;
  CrossMomentSums(const CrossMomentSums& other) { *this = other; }
  CrossMomentSums& operator=(const CrossMomentSums& other) {
    if (this == &other)
      return *this;
    m_stacked = other.m_stacked;
    m_power2 = other.m_power2;
    m_power3 = other.m_power3;
    m_power4 = other.m_power4;
    m_history2 = other.m_history2;
    m_history4 = other.m_history4;
    m_shift = other.m_shift;
    m_entering = other.m_entering;
    m_leaving = other.m_leaving;
    m_linear_in = other.m_linear_in;
    m_linear_out = other.m_linear_out;
    m_empty = other.m_empty;
    m_centred = other.m_centred;
    m_powers = other.m_powers;
    allocate_blocking();
    return *this;
  }
  CrossMomentSums(CrossMomentSums&&) noexcept = default;
  CrossMomentSums& operator=(CrossMomentSums&&) noexcept = default;
  ~CrossMomentSums() = default;

  /// Sizes every buffer for `assets` series and windows of up to `window` observations.
  void resize(Index assets, Index window) {
    m_stacked.resize(2 * assets, assets);
    m_power2.resize(assets);
    m_power3.resize(assets);
    m_power4.resize(assets);
    m_history2.resize(assets);
    m_history4.resize(assets);
    m_shift.resize(assets);
    m_entering.resize(2 * assets);
    m_leaving.resize(2 * assets);
    m_linear_in.resize(assets);
    m_linear_out.resize(assets);
    m_centred.resize(assets, window);
    m_powers.resize(2 * assets, window);
    allocate_blocking();
    reset();
  }

  /// Empties the sums; K becomes the next observation added.
  void reset() {
    m_stacked.setZero();
    m_power2.setZero();
    m_power3.setZero();
    m_power4.setZero();
    m_history2.setZero();
    m_history4.setZero();
    m_shift.setZero();
    m_empty = true;
  }

  /// Adds the observation `x` and, when `leaving` is not null, removes `*leaving`; returns
  /// Σ_j column_weights_j ([A; B]_:j · weights) of the updated sums (`weights`: 2N).
  /// `after_column(j)` is called once column j is done, so that a caller can interleave its own
  /// per-column work with this pass (and share its trip through the cache).
  template <class AfterColumn = NoAfterColumn>
  Scalar update(const Eigen::Ref<const VectorType>& x, const VectorType* leaving,
                const VectorType& weights, const Eigen::Ref<const VectorType>& column_weights,
                AfterColumn&& after_column = {}) {
    const Index n = m_shift.size();
    if (m_empty) {
      m_shift = x;
      m_empty = false;
    }
    stage(x, m_entering, m_linear_in, Scalar(1));
    if (leaving != nullptr) {
      stage(*leaving, m_leaving, m_linear_out, Scalar(-1));
    } else {
      m_leaving.setZero();
      m_linear_out.setZero();
    }
    m_history2 += m_power2.cwiseAbs2();
    m_history4 += m_power4.cwiseAbs2();
    // Column j gains u_j [u³; u²] and loses u'_j [u'³; u'²], two columns at a time.
    Scalar sum = 0;
    Index j = 0;
    for (; j + 1 < n; j += 2) {
      const auto dots = update_column_pair(j, weights);
      sum += column_weights(j) * dots[0];
      after_column(j);
      sum += column_weights(j + 1) * dots[1];
      after_column(j + 1);
    }
    if (j < n) {
      kernel::Reduction<Scalar, 1, false> dot({weights.data()});
      kernel::rank_two_segment(m_stacked.data() + j * m_stacked.outerStride(), m_entering.data(),
                               m_leaving.data(), m_linear_in(j), m_linear_out(j), 2 * n, dot);
      sum += column_weights(j) * dot.dot(0);
      after_column(j);
    }
    return sum;
  }

  /// Σ_j column_weights_j ([A; B]_:j · weights), one read-only pass.
  [[nodiscard]] Scalar bilinear(const VectorType& weights, const VectorType& column_weights) const {
    Scalar sum = 0;
    for (Index j = 0; j < m_stacked.cols(); ++j)
      sum += column_weights(j) * m_stacked.col(j).dot(weights);
    return sum;
  }

  /// Re-accumulates the sums exactly from the `count` observations in the columns of `ring`
  /// (their order does not matter), about K = `shift`. One matrix product, with packing buffers
  /// sized by `resize` (no allocation).
  void rebuild(const MatrixType& ring, Index count, const VectorType& shift) {
    const Index n = m_shift.size();
    m_shift = shift;
    m_empty = false;
    auto centred = m_centred.leftCols(count);
    auto powers = m_powers.leftCols(count);
    centred = ring.leftCols(count).colwise() - m_shift;
    powers.topRows(n) = centred.array().cube().matrix();
    powers.bottomRows(n) = centred.array().square().matrix();
    m_power2 = powers.bottomRows(n).rowwise().sum();
    m_power3 = powers.topRows(n).rowwise().sum();
    m_power4 = centred.array().square().square().matrix().rowwise().sum();
    m_history2 = Scalar(count) * m_power2.cwiseAbs2();
    m_history4 = Scalar(count) * m_power4.cwiseAbs2();
    m_stacked.setZero();
    // [A; B] = [U³; U²] Uᵀ, U = centred (N×T): Uᵀ is the row-major T×N view of the same data.
    Eigen::internal::general_matrix_matrix_product<
        Index, Scalar, Eigen::ColMajor, false, Scalar, Eigen::RowMajor, false, Eigen::ColMajor,
        1>::run(2 * n, n, count, m_powers.data(), m_powers.outerStride(), m_centred.data(),
                m_centred.outerStride(), m_stacked.data(), 1, m_stacked.outerStride(), Scalar(1),
                *m_blocking);
  }

  /// K, the point the sums are about.
  [[nodiscard]] const VectorType& shift() const { return m_shift; }
  /// [A; B], 2N×N.
  [[nodiscard]] const MatrixType& stacked() const { return m_stacked; }
  [[nodiscard]] const VectorType& power2() const { return m_power2; }
  [[nodiscard]] const VectorType& power3() const { return m_power3; }
  [[nodiscard]] const VectorType& power4() const { return m_power4; }
  /// g2 and g4 (see the class comment).
  [[nodiscard]] const VectorType& history2() const { return m_history2; }
  [[nodiscard]] const VectorType& history4() const { return m_history4; }

 private:
  using Blocking =
      Eigen::internal::gemm_blocking_space<Eigen::ColMajor, Scalar, Scalar, Eigen::Dynamic,
                                           Eigen::Dynamic, Eigen::Dynamic>;

  // Columns j and j + 1 of [A; B] gain their rank-2 terms; returns the weights' dot product with
  // each updated column. Each entry is the same expression, and each dot sums the same terms in
  // the same order (two packet accumulators, then the tail), as `kernel::rank_two_segment` with a
  // one-weight `Reduction` gives column by column, so the sums and the bilinear form are the same
  // bit for bit; the pair shares the loads of the two terms and of the weights, which bound the
  // one-column loop (four loads for each packet written).
  std::array<Scalar, 2> update_column_pair(Index j, const VectorType& weights) {
    using P = kernel::Packet<Scalar>;
    using namespace Eigen::internal;
    constexpr Index size = packet_traits<Scalar>::size;
    const Index m = m_stacked.rows();
    Scalar* first = m_stacked.data() + j * m_stacked.outerStride();
    Scalar* second = first + m_stacked.outerStride();
    const Scalar* in = m_entering.data();
    const Scalar* out = m_leaving.data();
    const Scalar* w = weights.data();
    const Scalar a0 = m_linear_in(j), b0 = m_linear_out(j);
    const Scalar a1 = m_linear_in(j + 1), b1 = m_linear_out(j + 1);
    const P pa0 = pset1<P>(a0), pb0 = pset1<P>(b0), pa1 = pset1<P>(a1), pb1 = pset1<P>(b1);
    const P zero = pset1<P>(Scalar(0));
    P dot00 = zero, dot01 = zero, dot10 = zero, dot11 = zero;  // column, packet parity
    Index i = 0;
    for (; i + 2 * size <= m; i += 2 * size) {
      const P u0 = ploadu<P>(in + i), u1 = ploadu<P>(in + i + size);
      const P v0 = ploadu<P>(out + i), v1 = ploadu<P>(out + i + size);
      const P w0 = ploadu<P>(w + i), w1 = ploadu<P>(w + i + size);
      const P t00 = padd(ploadu<P>(first + i), padd(pmul(pa0, u0), pmul(pb0, v0)));
      const P t01 = padd(ploadu<P>(first + i + size), padd(pmul(pa0, u1), pmul(pb0, v1)));
      const P t10 = padd(ploadu<P>(second + i), padd(pmul(pa1, u0), pmul(pb1, v0)));
      const P t11 = padd(ploadu<P>(second + i + size), padd(pmul(pa1, u1), pmul(pb1, v1)));
      pstoreu(first + i, t00);
      pstoreu(first + i + size, t01);
      pstoreu(second + i, t10);
      pstoreu(second + i + size, t11);
      dot00 = padd(dot00, pmul(t00, w0));
      dot01 = padd(dot01, pmul(t01, w1));
      dot10 = padd(dot10, pmul(t10, w0));
      dot11 = padd(dot11, pmul(t11, w1));
    }
    Scalar tail0 = 0, tail1 = 0;
    for (; i < m; ++i) {
      const Scalar t0 = first[i] + (a0 * in[i] + b0 * out[i]);
      const Scalar t1 = second[i] + (a1 * in[i] + b1 * out[i]);
      first[i] = t0;
      second[i] = t1;
      tail0 += t0 * w[i];
      tail1 += t1 * w[i];
    }
    return {predux(padd(dot00, dot01)) + tail0, predux(padd(dot10, dot11)) + tail1};
  }

  // [u³; u²] of u = x − K into `stacked` (2N), sign · u into `linear`, and sign · (u², u³, u⁴)
  // into the power sums.
  void stage(const Eigen::Ref<const VectorType>& x, VectorType& stacked, VectorType& linear,
             Scalar sign) {
    const Index n = m_shift.size();
    linear = x - m_shift;
    stacked.bottomRows(n) = linear.array().square().matrix();
    stacked.topRows(n) = (stacked.bottomRows(n).array() * linear.array()).matrix();
    m_power2 += sign * stacked.bottomRows(n);
    m_power3 += sign * stacked.topRows(n);
    m_power4 += sign * stacked.bottomRows(n).cwiseAbs2();
    linear *= sign;
  }

  void allocate_blocking() {
    const Index n = m_shift.size();
    const Index window = m_centred.cols();
    m_blocking.reset();
    if (n > 0 && window > 0) {
      m_blocking = std::make_unique<Blocking>(2 * n, n, window, 1, false);
      m_blocking->allocateAll();
    }
  }

  MatrixType m_stacked;  // [A; B]
  VectorType m_power2;
  VectorType m_power3;
  VectorType m_power4;
  VectorType m_history2;    // Σ p2² over the updates since the last rebuild (count · p2² at it)
  VectorType m_history4;    // Σ p4² likewise
  VectorType m_shift;       // K
  VectorType m_entering;    // [u³; u²] of the entering observation (scratch)
  VectorType m_leaving;     // [u'³; u'²] of the leaving one (scratch)
  VectorType m_linear_in;   // u of the entering observation (scratch)
  VectorType m_linear_out;  // −u' of the leaving one (scratch)
  MatrixType m_centred;     // N×W scratch of rebuild
  MatrixType m_powers;      // 2N×W scratch of rebuild
  std::unique_ptr<Blocking> m_blocking;
  bool m_empty = true;
};

/// The magnitudes of the terms the rolling constant-correlation shrinkage forms its cross sum
/// Σ_t (xᵀy_t³)(sᵀy_t) and Σ_t Σ_i y_ti⁴ from, with `CrossMomentSums` about K' and the window's
/// offset c = m − K' (see `RollingShrinkage`): their rounding is ~ε times these. Per asset, with
/// x = 1/s and s (both 0 for a constant asset, which then adds nothing), a = |c|, and h_k = √g_k:
///   cross  = Σ s² · Σ (h4 x²(1 + 1.5 a x) + 3T a² x² s²)
///            + Σ a s · Σ (h4 x²/2 + (3 a x + 2 x s) h2 + 4T a³ x) + 2T Σ a³ x · Σ |m| s,
///   fourth = Σ x s (h4 + 2a (h4 x + h2 s) + 6 a² h2 + T a³ (3a + 4|m|)).
struct CrossMomentMagnitudes {
  double cross = 0;
  double fourth = 0;
};

/// Adds one packet (or, on the tail, one scalar) of assets to the seven sums behind
/// `CrossMomentMagnitudes`: Σ s², the bracket multiplied by Σ s², Σ a s, the bracket multiplied by
/// Σ a s, Σ a³ x, Σ |m| s, and the fourth-power magnitude.
template <class Scalar, class Q>
void add_cross_moment_magnitudes(Q (&sums)[7], const Q& x, const Q& s, const Q& c, const Q& mean,
                                 const Q& g2, const Q& g4, const Q& t) {
  using namespace Eigen::internal;
  const auto k = [](double value) { return pset1<Q>(Scalar(value)); };
  const Q a = pabs(c);
  const Q ax = pmul(a, x);
  const Q a2 = pmul(a, a);
  const Q s_2 = pmul(s, s);
  const Q m = pabs(mean);
  const Q live = pmul(x, s);  // 1, or 0 for a constant asset
  const Q h2 = psqrt(g2);
  const Q h4 = psqrt(g4);
  const Q h4x = pmul(h4, x);
  const Q h4x2 = pmul(h4x, x);
  sums[0] = padd(sums[0], s_2);
  sums[1] = padd(sums[1], padd(pmul(h4x2, padd(k(1), pmul(k(1.5), ax))),
                               pmul(pmul(k(3), t), pmul(pmul(ax, ax), s_2))));
  sums[2] = padd(sums[2], pmul(a, s));
  sums[3] =
      padd(sums[3], padd(padd(pmul(k(0.5), h4x2), pmul(padd(pmul(k(3), ax), pmul(k(2), live)), h2)),
                         pmul(pmul(k(4), t), pmul(a2, ax))));
  sums[4] = padd(sums[4], pmul(a2, ax));
  sums[5] = padd(sums[5], pmul(m, s));
  const Q history = padd(h4, pmul(pmul(k(2), a), padd(h4x, pmul(h2, s))));
  const Q centring = pmul(pmul(t, pmul(a2, a)), padd(pmul(k(3), a), pmul(k(4), m)));
  sums[6] = padd(sums[6], pmul(live, padd(padd(history, pmul(pmul(k(6), a2), h2)), centring)));
}

/// `CrossMomentMagnitudes` of T = `t` observations, in one pass over the assets (O(N), no
/// allocation).
template <class Scalar>
CrossMomentMagnitudes cross_moment_magnitudes(const Vector<Scalar>& x, const Vector<Scalar>& s,
                                              const Vector<Scalar>& c, const Vector<Scalar>& mean,
                                              const Vector<Scalar>& g2, const Vector<Scalar>& g4,
                                              Scalar t) {
  using P = kernel::Packet<Scalar>;
  using namespace Eigen::internal;
  constexpr Index size = packet_traits<Scalar>::size;
  const Index n = x.size();
  const P zero = pset1<P>(Scalar(0));
  P packets[7] = {zero, zero, zero, zero, zero, zero, zero};
  const P pt = pset1<P>(t);
  Index i = 0;
  for (; i + size <= n; i += size) {
    add_cross_moment_magnitudes<Scalar>(packets, ploadu<P>(x.data() + i), ploadu<P>(s.data() + i),
                                        ploadu<P>(c.data() + i), ploadu<P>(mean.data() + i),
                                        ploadu<P>(g2.data() + i), ploadu<P>(g4.data() + i), pt);
  }
  Scalar tail[7] = {};
  for (; i < n; ++i)
    add_cross_moment_magnitudes<Scalar>(tail, x(i), s(i), c(i), mean(i), g2(i), g4(i), t);
  double sums[7];
  for (int k = 0; k < 7; ++k)
    sums[k] = double(predux(packets[k]) + tail[k]);
  return {.cross = sums[0] * sums[1] + sums[2] * sums[3] + 2 * double(t) * sums[4] * sums[5],
          .fourth = sums[6]};
}

}  // namespace dynweight::detail
