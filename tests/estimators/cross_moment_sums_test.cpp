#include "dynweight/estimators/detail/cross_moment_sums.hpp"

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "allocation_counter.hpp"
#include "near.hpp"

using dynweight::Index;
using dynweight::test::near;

namespace {

// [A; B] of the observations in the columns of `window` about K, summed directly.
Eigen::MatrixXd stacked_sums(const Eigen::MatrixXd& window, const Eigen::VectorXd& shift) {
  const Index n = window.rows();
  Eigen::MatrixXd sums = Eigen::MatrixXd::Zero(2 * n, n);
  for (Index t = 0; t < window.cols(); ++t) {
    const Eigen::ArrayXd u = window.col(t) - shift;
    for (Index j = 0; j < n; ++j) {
      sums.col(j).head(n) += (u.cube() * u(j)).matrix();
      sums.col(j).tail(n) += (u.square() * u(j)).matrix();
    }
  }
  return sums;
}

}  // namespace

// The running sums, moved bar by bar (one observation in, one out once the window is full) and
// rebuilt once from the window, against a direct sum over the window at every bar, and the
// bilinear forms (the one the update returns and the read-only one) against the direct matrix's.
// Tolerance 1e-12 relative to the largest entry (or to the form of the absolute values): sums of
// <= 20 products of O(1) values, added in two orders and moved by ~40 updates.
TEST_CASE("CrossMomentSums equal direct sums over the window at every bar",
          "[estimators][cross_moment_sums]") {
  using Sums = dynweight::detail::CrossMomentSums<double>;
  const Index n = GENERATE(1, 3, 13, 40);
  const Index window = 20;
  std::mt19937_64 engine(17 + std::uint64_t(n));
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::MatrixXd data(n, 3 * window + 11);
  for (Index t = 0; t < data.cols(); ++t)
    for (Index i = 0; i < n; ++i)
      data(i, t) = 5.0 + normal(engine) * double(i % 4 + 1) * 0.1;
  Sums sums;
  sums.resize(n, window);
  Eigen::VectorXd weights(2 * n), column_weights(n);
  for (Index t = 0; t < data.cols(); ++t) {
    const bool full = t >= window;
    const Eigen::VectorXd leaving = full ? data.col(t - window) : Eigen::VectorXd();
    for (Index i = 0; i < 2 * n; ++i)
      weights(i) = normal(engine);
    for (Index i = 0; i < n; ++i)
      column_weights(i) = normal(engine);
    const double form =
        sums.update(data.col(t), full ? &leaving : nullptr, weights, column_weights);
    const Index first = full ? t + 1 - window : 0;
    const Eigen::MatrixXd in_window = data.middleCols(first, t + 1 - first);
    if (t == 2 * window + 1) {  // a rebuild about the window mean
      const Eigen::VectorXd mean = in_window.rowwise().mean();
      sums.rebuild(in_window, in_window.cols(), mean);
      REQUIRE(sums.shift() == mean);
    }
    const Eigen::MatrixXd expected = stacked_sums(in_window, sums.shift());
    CAPTURE(n, t);
    REQUIRE(near(sums.stacked(), expected, 1e-12));
    const double expected_form = weights.dot(expected * column_weights);
    const double form_scale =
        (weights.cwiseAbs().transpose() * expected.cwiseAbs() * column_weights.cwiseAbs())(0);
    if (t != 2 * window + 1)  // update's form is of the sums before the rebuild
      REQUIRE(std::abs(form - expected_form) <= 1e-12 * form_scale);
    REQUIRE(std::abs(sums.bilinear(weights, column_weights) - expected_form) <= 1e-12 * form_scale);
    const Eigen::ArrayXXd u = (in_window.colwise() - sums.shift()).array();
    REQUIRE(near(sums.power2(), u.square().rowwise().sum().matrix(), 1e-12));
    REQUIRE(near(sums.power3(), u.cube().rowwise().sum().matrix(), 1e-12));
    REQUIRE(near(sums.power4(), u.square().square().rowwise().sum().matrix(), 1e-12));
  }
}

TEST_CASE("CrossMomentSums: update, bilinear and rebuild do not allocate",
          "[estimators][cross_moment_sums][allocation]") {
  using Sums = dynweight::detail::CrossMomentSums<double>;
  const Index n = 37;
  const Index window = 12;
  const Eigen::MatrixXd data = Eigen::MatrixXd::Random(n, 40);
  const Eigen::VectorXd weights = Eigen::VectorXd::Random(2 * n);
  const Eigen::VectorXd column_weights = Eigen::VectorXd::Random(n);
  const Eigen::MatrixXd first_window = data.leftCols(window);
  const Eigen::VectorXd mean = first_window.rowwise().mean();
  Sums sums;
  sums.resize(n, window);
  Sums copy = sums;  // a copy sizes its own product buffers
  Eigen::VectorXd leaving(n);
  double total = 0;
  dynweight::test::NoAllocationScope scope;
  for (Index t = 0; t < data.cols(); ++t) {
    leaving = data.col(t >= window ? t - window : 0);
    total += copy.update(data.col(t), t >= window ? &leaving : nullptr, weights, column_weights);
    total += copy.bilinear(weights, column_weights);
  }
  copy.rebuild(first_window, window, mean);
  REQUIRE(scope.allocations() == 0);
  REQUIRE(std::isfinite(total));
}
