#pragma once

// Seeded weights and bounds for the overlay tests, and the long-double measurements the tests
// compare against (gross, turnover, invested sum).

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>

#include "dynweight/core/types.hpp"

namespace dynweight::test {

/// N positive weights summing to `invested`, heavy-tailed (squares of exponentials) so that caps
/// and floors bind; with `zeros`, every fifth weight is exactly 0.
inline Eigen::VectorXd random_weights(Index n, std::uint64_t seed, double invested = 1.0,
                                      bool zeros = false) {
  std::mt19937_64 engine(seed);
  std::exponential_distribution<double> exponential(1.0);
  Eigen::VectorXd w(n);
  for (Index i = 0; i < n; ++i) {
    const double e = exponential(engine);
    w(i) = zeros && i % 5 == 3 ? 0.0 : e * e + 1e-3;
  }
  return w * (invested / w.sum());
}

/// Floors in [0, 0.6/N] and caps in [1.1/N, 2.5/N]: Σl <= 0.6 < 1 < 1.1 <= Σu.
struct RandomBounds {
  Eigen::VectorXd floors;
  Eigen::VectorXd caps;
};
inline RandomBounds random_bounds(Index n, std::uint64_t seed) {
  std::mt19937_64 engine(seed * 7919 + 17);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  RandomBounds bounds{Eigen::VectorXd(n), Eigen::VectorXd(n)};
  for (Index i = 0; i < n; ++i) {
    bounds.floors(i) = 0.6 * unit(engine) / double(n);
    bounds.caps(i) = (1.1 + 1.4 * unit(engine)) / double(n);
  }
  return bounds;
}

template <class Derived>
long double sum_ld(const Eigen::MatrixBase<Derived>& v) {
  long double total = 0;
  for (Index i = 0; i < v.size(); ++i)
    total += static_cast<long double>(v(i));
  return total;
}

template <class Derived>
long double gross_ld(const Eigen::MatrixBase<Derived>& v) {
  long double total = 0;
  for (Index i = 0; i < v.size(); ++i)
    total += std::abs(static_cast<long double>(v(i)));
  return total;
}

/// ½ Σ |w − p|, in long double.
template <class A, class B>
long double turnover_ld(const Eigen::MatrixBase<A>& w, const Eigen::MatrixBase<B>& p) {
  long double total = 0;
  for (Index i = 0; i < w.size(); ++i)
    total += std::abs(static_cast<long double>(w(i)) - static_cast<long double>(p(i)));
  return total / 2;
}

/// The largest violation of l_i·Σw <= w_i <= u_i·Σw (0 when every bound holds), in long double.
template <class W>
long double relative_bound_violation(const Eigen::MatrixBase<W>& w, const Eigen::VectorXd& floors,
                                     const Eigen::VectorXd& caps) {
  const long double invested = sum_ld(w);
  long double worst = 0;
  for (Index i = 0; i < w.size(); ++i) {
    const long double x = static_cast<long double>(w(i));
    worst = std::max(worst, floors(i) * invested - x);
    worst = std::max(worst, x - caps(i) * invested);
  }
  return worst;
}

}  // namespace dynweight::test
