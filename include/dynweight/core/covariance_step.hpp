#pragma once

/// \file
/// Covariance lineage: ids that name a covariance's exact values, and the low-rank step between
/// two of them, so that a policy can carry a product with the covariance (risk parity's Σx) from
/// one bar to the next in O(N) instead of a pass over the N×N matrix.

#include <atomic>
#include <cstdint>

#include "dynweight/core/types.hpp"

namespace dynweight {

/// A fresh covariance id: unique in the process (a thread-safe counter), never 0 (0 means "no
/// id"). The rolling engines label every covariance they produce with one.
inline std::uint64_t next_covariance_id() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

/// How a covariance Σ moved from the one labelled `from`:
///   Σ = scale · Σ_from + weight · (p qᵀ + q pᵀ) + ridge · I,
/// exact up to rounding. This is what one bar of a rolling window does (a rank-2 term, u dᵀ + d uᵀ
/// with the class comment of `RollingMoments`), and what the scaled-identity shrinkages
/// (Ledoit–Wolf, OAS, fixed) make of it ((1 − δ)S + δμI moves by a rescale, the rank-2 term and a
/// ridge). `p` and `q` point into the producer's own buffers and stay valid until its next update.
/// A policy that kept Σ_from·x can then form Σx as scale·(Σ_from x) + weight·(p (qᵀx) + q (pᵀx)) +
/// ridge·x in O(N).
template <FloatingScalar Scalar>
struct CovarianceStep {
  std::uint64_t from = 0;
  Scalar scale = 1;
  Scalar weight = 0;
  const Vector<Scalar>* p = nullptr;
  const Vector<Scalar>* q = nullptr;
  Scalar ridge = 0;

  /// Σx from Σ_from·x (`previous_product`) and x, into `product` (all of size N; `product` may be
  /// `previous_product` itself). Null `p` or `q`: no rank-2 term. O(N), no allocation.
  template <class X, class Previous, class Out>
  void apply(const X& x, const Previous& previous_product, Out&& product) const {
    if (p == nullptr || q == nullptr) {
      product = scale * previous_product + ridge * x;
      return;
    }
    const Scalar qx = q->dot(x);
    const Scalar px = p->dot(x);
    product = scale * previous_product + (weight * qx) * (*p) + (weight * px) * (*q) + ridge * x;
  }
};

}  // namespace dynweight
