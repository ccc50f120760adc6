#pragma once

/// \file
/// y = S x for a symmetric S read from its lower triangle alone: the symmetric matrix-vector
/// product (BLAS's SYMV), one pass over half the matrix.

#include <Eigen/Core>

#include "dynweight/core/types.hpp"
#include "dynweight/stats/detail/symmetric_update.hpp"

namespace dynweight::detail {

/// Whether Eigen's packet multiply-adds are fused in this build (x86 FMA: -mfma, -march=native).
#ifdef EIGEN_VECTORIZE_FMA
inline constexpr bool kFusedMultiplyAdd = true;
#else
inline constexpr bool kFusedMultiplyAdd = false;
#endif

/// y = S x for the n×n symmetric S whose lower triangle (diagonal included) starts at `lower`
/// with outer stride `stride`; the strict upper triangle is never read (it may hold anything).
/// `x` and `y` are n long and must not overlap.
///
/// Four columns at a time: their 4×4 diagonal block gives its rows' terms directly, and below it
/// each packet of rows i is loaded once and used twice, for y_i += Σ_k S_ik x_k (the columns'
/// push down) and for y_k += Σ_i S_ik x_i (their transposes, the rows' pull across, summed in
/// four packet accumulators). So the pass reads N²/2 entries where a general product on the full
/// matrix reads N², for the same multiply-adds: it is faster where the product waits on memory
/// and no faster where it waits on arithmetic. Measured against Eigen's `y.noalias() = S * x` on
/// the full matrix (g++ 12 -O3, 7 interleaved repetitions, medians): SSE2 0.65× at N = 500,
/// 0.72× at N = 1000, 0.87× at N = 250 and 1.07× at N = 100; AVX-512 with FMA 0.48× at N = 500 and
/// 0.71× at N = 100. The terms are summed in another order than the general product's: the two
/// agree to rounding (within 2nε Σ_j |S_ij x_j| per entry).
template <class Scalar>
void symmetric_product(const Scalar* lower, Index stride, Index n, const Scalar* x, Scalar* y) {
  using P = kernel::Packet<Scalar>;
  using namespace Eigen::internal;
  constexpr Index size = packet_traits<Scalar>::size;
  for (Index i = 0; i < n; ++i)
    y[i] = 0;
  Index j = 0;
  for (; j + 4 <= n; j += 4) {
    const Scalar* c0 = lower + j * stride;
    const Scalar* c1 = c0 + stride;
    const Scalar* c2 = c1 + stride;
    const Scalar* c3 = c2 + stride;
    const Scalar x0 = x[j], x1 = x[j + 1], x2 = x[j + 2], x3 = x[j + 3];
    // The diagonal block, from its lower entries.
    const Scalar a10 = c0[j + 1], a20 = c0[j + 2], a30 = c0[j + 3];
    const Scalar a21 = c1[j + 2], a31 = c1[j + 3], a32 = c2[j + 3];
    Scalar t0 = c0[j] * x0 + a10 * x1 + a20 * x2 + a30 * x3;
    Scalar t1 = a10 * x0 + c1[j + 1] * x1 + a21 * x2 + a31 * x3;
    Scalar t2 = a20 * x0 + a21 * x1 + c2[j + 2] * x2 + a32 * x3;
    Scalar t3 = a30 * x0 + a31 * x1 + a32 * x2 + c3[j + 3] * x3;
    // Below it: push the four columns into y_i, pull the rows' terms into t0..t3.
    const P p0 = pset1<P>(x0), p1 = pset1<P>(x1), p2 = pset1<P>(x2), p3 = pset1<P>(x3);
    P s0 = pset1<P>(Scalar(0)), s1 = s0, s2 = s0, s3 = s0;
    Index i = j + 4;
    for (; i + size <= n; i += size) {
      const P xi = ploadu<P>(x + i);
      const P b0 = ploadu<P>(c0 + i);
      const P b1 = ploadu<P>(c1 + i);
      const P b2 = ploadu<P>(c2 + i);
      const P b3 = ploadu<P>(c3 + i);
      P yi = ploadu<P>(y + i);
      yi = pmadd(b0, p0, yi);
      yi = pmadd(b1, p1, yi);
      yi = pmadd(b2, p2, yi);
      yi = pmadd(b3, p3, yi);
      pstoreu(y + i, yi);
      s0 = pmadd(b0, xi, s0);
      s1 = pmadd(b1, xi, s1);
      s2 = pmadd(b2, xi, s2);
      s3 = pmadd(b3, xi, s3);
    }
    t0 += predux(s0);
    t1 += predux(s1);
    t2 += predux(s2);
    t3 += predux(s3);
    for (; i < n; ++i) {
      const Scalar xi = x[i];
      y[i] += c0[i] * x0 + c1[i] * x1 + c2[i] * x2 + c3[i] * x3;
      t0 += c0[i] * xi;
      t1 += c1[i] * xi;
      t2 += c2[i] * xi;
      t3 += c3[i] * xi;
    }
    y[j] += t0;
    y[j + 1] += t1;
    y[j + 2] += t2;
    y[j + 3] += t3;
  }
  for (; j < n; ++j) {  // the last n mod 4 columns
    const Scalar* column = lower + j * stride;
    const Scalar xj = x[j];
    Scalar t = column[j] * xj;
    for (Index i = j + 1; i < n; ++i) {
      y[i] += column[i] * xj;
      t += column[i] * x[i];
    }
    y[j] += t;
  }
}

/// `symmetric_product` on the lower triangle of `lower` (n×n, any outer stride) and the first n
/// entries of contiguous `x` and `y`.
template <class Scalar>
void symmetric_product(const Matrix<Scalar>& lower, const Scalar* x, Scalar* y) {
  symmetric_product(lower.data(), lower.outerStride(), lower.rows(), x, y);
}

}  // namespace dynweight::detail
