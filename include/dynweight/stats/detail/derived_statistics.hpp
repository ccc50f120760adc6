#pragma once

/// \file
/// The statistics a moment engine derives from its covariance only when asked: volatility and
/// correlation, cached until the next update.

#include <limits>

#include "dynweight/core/types.hpp"
#include "dynweight/stats/detail/symmetric_update.hpp"

namespace dynweight::detail {

/// Volatility √variance (N square roots) and correlation S_ij/(σ_i σ_j) (O(N²)), computed on the
/// first request after `invalidate()` and kept until the next one, so an update never pays for
/// them. Filling the cache mutates it from a const accessor: not safe to call concurrently on one
/// object.
template <class Scalar>
class DerivedStatistics {
 public:
  using VectorType = Vector<Scalar>;
  using MatrixType = Matrix<Scalar>;

  explicit DerivedStatistics(Index assets) : m_volatility(assets), m_correlation(assets, assets) {
    reset();
  }

  /// Back to "no observation": NaN everywhere, nothing to recompute.
  void reset() {
    m_volatility.setConstant(std::numeric_limits<Scalar>::quiet_NaN());
    m_correlation.setConstant(std::numeric_limits<Scalar>::quiet_NaN());
    m_volatility_current = true;
    m_correlation_current = true;
  }

  /// The covariance changed: recompute on the next request.
  void invalidate() {
    m_volatility_current = false;
    m_correlation_current = false;
  }

  const VectorType& volatility(const VectorType& variance) const {
    if (!m_volatility_current) {
      m_volatility = variance.cwiseSqrt();
      m_volatility_current = true;
    }
    return m_volatility;
  }

  /// Lower triangle valid; an asset with zero variance has NaN correlations, as in pandas.
  const MatrixType& correlation_lower(const MatrixType& covariance_lower,
                                      const VectorType& variance) const {
    if (!m_correlation_current) {
      correlation_from_covariance(covariance_lower, volatility(variance), m_correlation);
      m_correlation_current = true;
    }
    return m_correlation;
  }

 private:
  mutable VectorType m_volatility;
  mutable MatrixType m_correlation;
  mutable bool m_volatility_current = true;
  mutable bool m_correlation_current = true;
};

}  // namespace dynweight::detail
