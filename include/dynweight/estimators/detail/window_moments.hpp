#pragma once

/// \file
/// The fourth-moment sums of constant-correlation shrinkage by one pass over the window's
/// observations (the alternative to the running N×N sums of `cross_moment_sums.hpp`).

#include <Eigen/Core>
#include <cmath>
#include <limits>

#include "dynweight/core/types.hpp"
#include "dynweight/stats/detail/symmetric_update.hpp"

namespace dynweight::detail {

/// Sums over the observations of a window, centred on its mean (y_t = x_t − m), with weights s
/// and x (in constant correlation: the volatilities and their inverses, 0 for a constant asset).
struct WindowMoments {
  double cross = 0;   ///< Σ_t (Σ_i x_i y_ti³)(Σ_j s_j y_tj)
  double fourth = 0;  ///< Σ_t Σ_i y_ti⁴
};

/// `WindowMoments` of the first `count` columns of `ring` (observations; their order does not
/// matter) about `centre`: y = x − centre, or, with `split`, about the mean given as its parts
/// `centre` = K (near the data) and `offset` = δ: y = (x − K) − δ. One read of the N×count
/// observations, O(N·count), 9 flops an entry (10 split), no allocation. Each observation's three
/// dot products run in two packet accumulators apiece; the sums over observations are taken in
/// double.
template <bool split, class Scalar>
WindowMoments window_moments_about(const Matrix<Scalar>& ring, Index count,
                                   const Vector<Scalar>& centre, const Vector<Scalar>& offset,
                                   const Vector<Scalar>& s, const Vector<Scalar>& x) {
  using P = kernel::Packet<Scalar>;
  using namespace Eigen::internal;
  constexpr Index size = packet_traits<Scalar>::size;
  const Index n = centre.size();
  const Scalar* m = centre.data();
  const Scalar* d = offset.data();
  const Scalar* ps = s.data();
  const Scalar* px = x.data();
  // Three running dot products over packets of an observation (named, not in arrays: g++ -O2
  // keeps them in registers only then).
  struct Dots {
    P cube, linear, fourth;
    void add(const Scalar* observation, const Scalar* mean, const Scalar* delta, const Scalar* sw,
             const Scalar* xw, Index at) {
      P y = psub(ploadu<P>(observation + at), ploadu<P>(mean + at));
      if constexpr (split)
        y = psub(y, ploadu<P>(delta + at));
      const P y2 = pmul(y, y);
      cube = padd(cube, pmul(pmul(ploadu<P>(xw + at), y), y2));
      linear = padd(linear, pmul(ploadu<P>(sw + at), y));
      fourth = padd(fourth, pmul(y2, y2));
    }
  };
  const P zero = pset1<P>(Scalar(0));
  WindowMoments sums;
  for (Index t = 0; t < count; ++t) {
    const Scalar* r = ring.data() + t * ring.outerStride();
    Dots a{zero, zero, zero};
    Dots b{zero, zero, zero};
    Index i = 0;
    for (; i + 2 * size <= n; i += 2 * size) {
      a.add(r, m, d, ps, px, i);
      b.add(r, m, d, ps, px, i + size);
    }
    Scalar c = predux(padd(a.cube, b.cube));
    Scalar l = predux(padd(a.linear, b.linear));
    Scalar f = predux(padd(a.fourth, b.fourth));
    for (; i < n; ++i) {
      Scalar y = r[i] - m[i];
      if constexpr (split)
        y -= d[i];
      const Scalar y2 = y * y;
      c += (px[i] * y) * y2;
      l += ps[i] * y;
      f += y2 * y2;
    }
    sums.cross += double(c) * double(l);
    sums.fourth += double(f);
  }
  return sums;
}

/// `WindowMoments` about the window's mean m = K + δ, given as `mean` (m̃, m rounded) and its
/// parts `reference` (K, near the data) and `offset` (δ). Centring on m̃ is exact for x − m̃ but
/// m̃ is off m by e = (m̃ − K) − δ, up to half an ulp of the level: at a level 10⁶ times the
/// moves that is 1e-10 of them, and ρ̂ lost as much. So when some |e_i| / s_i passes ε the sums
/// are taken about the parts, y = (x − K) − δ (one more subtraction an entry, ~20% of the pass);
/// otherwise (data near 0, the common case) about m̃.
template <class Scalar>
WindowMoments window_moments(const Matrix<Scalar>& ring, Index count, const Vector<Scalar>& mean,
                             const Vector<Scalar>& reference, const Vector<Scalar>& offset,
                             const Vector<Scalar>& s, const Vector<Scalar>& x) {
  const Scalar tolerance = std::numeric_limits<Scalar>::epsilon();
  bool split = false;
  for (Index i = 0; i < mean.size() && !split; ++i)
    split = std::abs((mean(i) - reference(i)) - offset(i)) * x(i) > tolerance;
  return split ? window_moments_about<true>(ring, count, reference, offset, s, x)
               : window_moments_about<false>(ring, count, mean, offset, s, x);
}

}  // namespace dynweight::detail
