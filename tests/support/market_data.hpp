#pragma once

// Seeded synthetic data and brute-force two-pass statistics, the independent side of the
// property and drift tests.

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <cstdint>
#include <random>

namespace dynweight::test {

/// T×N correlated Gaussian observations: level + scale · (L z) with L the Cholesky factor of a
/// random correlation matrix and per-asset scales spread over a factor of 5.
inline Eigen::MatrixXd correlated_returns(Index bars, Index assets, std::uint64_t seed,
                                          double level = 0.0, double scale = 0.01) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::MatrixXd factors(assets, assets);
  for (Index i = 0; i < factors.size(); ++i)
    factors(i) = normal(engine);
  Eigen::MatrixXd correlation =
      factors * factors.transpose() / double(assets) + Eigen::MatrixXd::Identity(assets, assets);
  const Eigen::VectorXd inv_sd = correlation.diagonal().cwiseSqrt().cwiseInverse();
  correlation = inv_sd.asDiagonal() * correlation * inv_sd.asDiagonal();
  const Eigen::MatrixXd chol = correlation.llt().matrixL();
  Eigen::VectorXd scales(assets);
  for (Index i = 0; i < assets; ++i) {
    scales(i) = scale * (1.0 + 4.0 * double(i) / double(std::max<Index>(assets - 1, 1)));
  }
  Eigen::MatrixXd out(bars, assets);
  Eigen::VectorXd z(assets);
  for (Index t = 0; t < bars; ++t) {
    for (Index i = 0; i < assets; ++i)
      z(i) = normal(engine);
    out.row(t) = (level + (scales.array() * (chol * z).array())).transpose();
  }
  return out;
}

/// T×N returns of a one-factor market: r_ti = β_i m_t + s_i ε_ti with market volatility 1%,
/// betas in [0.5, 1.5] and idiosyncratic volatilities in [0.5%, 1.5%] (average correlation about
/// 0.3, all of them positive in expectation).
inline Eigen::MatrixXd one_factor_returns(Index bars, Index assets, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.5, 1.5);
  Eigen::VectorXd beta(assets), idiosyncratic(assets);
  for (Index i = 0; i < assets; ++i) {
    beta(i) = uniform(engine);
    idiosyncratic(i) = 0.01 * uniform(engine);
  }
  Eigen::MatrixXd out(bars, assets);
  for (Index t = 0; t < bars; ++t) {
    const double market = 0.01 * normal(engine);
    for (Index i = 0; i < assets; ++i)
      out(t, i) = beta(i) * market + idiosyncratic(i) * normal(engine);
  }
  return out;
}

/// Two-pass mean of the rows.
inline Eigen::VectorXd two_pass_mean(const Eigen::MatrixXd& rows) {
  return rows.colwise().mean().transpose();
}

/// Two-pass covariance of the rows with divisor (T − ddof).
inline Eigen::MatrixXd two_pass_covariance(const Eigen::MatrixXd& rows, Index ddof = 1) {
  const Eigen::RowVectorXd mean = rows.colwise().mean();
  const Eigen::MatrixXd centred = rows.rowwise() - mean;
  return centred.transpose() * centred / double(rows.rows() - ddof);
}

/// Correlation from a covariance.
inline Eigen::MatrixXd correlation_of(const Eigen::MatrixXd& covariance) {
  const Eigen::VectorXd inv_sd = covariance.diagonal().cwiseSqrt().cwiseInverse();
  return inv_sd.asDiagonal() * covariance * inv_sd.asDiagonal();
}

}  // namespace dynweight::test
