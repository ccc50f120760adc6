#pragma once

// One comparison helper for Eigen objects (after manif's isEigenMatrixNear): absolute or norm-wise
// relative tolerance, NaN only where the reference has NaN, and on failure a report with both
// matrices, their difference and the worst entry.

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>
#include <string>

namespace dynweight::test {

enum class Tolerance {
  absolute,  ///< max |a − b| ≤ tol
  relative,  ///< max |a − b| ≤ tol · max |b|  (norm-wise, in the max norm)
};

struct NearResult {
  bool ok = true;
  std::string report;
  explicit operator bool() const { return ok; }
};

template <class A, class B>
NearResult near(const Eigen::DenseBase<A>& actual_in, const Eigen::DenseBase<B>& expected_in,
                double tolerance, Tolerance mode = Tolerance::relative) {
  const Eigen::MatrixXd actual = actual_in.derived().template cast<double>();
  const Eigen::MatrixXd expected = expected_in.derived().template cast<double>();
  NearResult result;
  std::ostringstream out;
  out.precision(17);
  if (actual.rows() != expected.rows() || actual.cols() != expected.cols()) {
    out << "shape " << actual.rows() << "x" << actual.cols() << " != expected " << expected.rows()
        << "x" << expected.cols();
    return {false, out.str()};
  }
  double scale = 0.0;
  for (Index i = 0; i < expected.size(); ++i) {
    if (std::isfinite(expected(i)))
      scale = std::max(scale, std::abs(expected(i)));
  }
  const double bound = mode == Tolerance::absolute ? tolerance : tolerance * scale;
  double worst = 0.0;
  Index worst_index = -1;
  bool nan_mismatch = false;
  for (Index i = 0; i < expected.size(); ++i) {
    const bool a_nan = std::isnan(actual(i));
    const bool e_nan = std::isnan(expected(i));
    if (a_nan || e_nan) {
      if (a_nan != e_nan)
        nan_mismatch = true;
      continue;
    }
    const double diff = std::abs(actual(i) - expected(i));
    if (!(diff <= worst)) {
      worst = diff;
      worst_index = i;
    }
  }
  result.ok = !nan_mismatch && worst <= bound;
  if (!result.ok || actual.size() <= 0) {
    out << (mode == Tolerance::absolute ? "absolute" : "relative") << " tolerance " << tolerance
        << " (bound " << bound << "), worst |diff| " << worst;
    if (worst_index >= 0) {
      out << " at (" << worst_index % expected.rows() << ", " << worst_index / expected.rows()
          << ")";
    }
    if (nan_mismatch)
      out << "; NaN in one but not the other";
    if (expected.size() <= 100) {
      out << "\nactual:\n"
          << actual << "\nexpected:\n"
          << expected << "\ndifference:\n"
          << (actual - expected);
    }
    result.report = out.str();
  }
  return result;
}

/// True when every entry of the lower triangle (diagonal included) is finite.
template <class A>
bool lower_triangle_finite(const Eigen::DenseBase<A>& m) {
  for (Index j = 0; j < m.cols(); ++j)
    for (Index i = j; i < m.rows(); ++i)
      if (!std::isfinite(m.coeff(i, j)))
        return false;
  return true;
}

/// Entry-by-entry identity, NaN equal to NaN (for "the object is unchanged" checks).
template <class A, class B>
bool identical(const Eigen::DenseBase<A>& a, const Eigen::DenseBase<B>& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols())
    return false;
  for (Index j = 0; j < a.cols(); ++j) {
    for (Index i = 0; i < a.rows(); ++i) {
      const auto x = a.coeff(i, j);
      const auto y = b.coeff(i, j);
      if (!(x == y || (std::isnan(x) && std::isnan(y))))
        return false;
    }
  }
  return true;
}

}  // namespace dynweight::test

namespace Catch {
template <>
struct StringMaker<dynweight::test::NearResult> {
  static std::string convert(const dynweight::test::NearResult& r) {
    return r.ok ? "near" : r.report;
  }
};
}  // namespace Catch
