#include "dynweight/stats/detail/symmetric_product.hpp"

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

using dynweight::Index;
using Long = long double;

namespace {

// A random symmetric n×n matrix and vector, in Scalar.
template <class Scalar>
struct Problem {
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> full;
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> x;
};
template <class Scalar>
Problem<Scalar> random_problem(Index n, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd a(n, n);
  for (Index i = 0; i < a.size(); ++i)
    a(i) = normal(engine);
  Eigen::VectorXd x(n);
  for (Index i = 0; i < n; ++i)
    x(i) = normal(engine);
  return {(a + a.transpose()).template cast<Scalar>(), x.template cast<Scalar>()};
}

// Every y_i against (S x)_i summed in long double from the full matrix, within (n + 8) ε
// Σ_j |S_ij x_j|: the rounding bound γ_k ≈ kε of a sum of products whose terms each pass through
// at most k roundings, in any order. Here k <= n + 3: one rounding per product, at most n − 1 adds
// along its way into y_i, the packet reduction's at most log2(8) = 3 adds.
template <class Scalar>
void check_product(const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& full,
                   const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>& x,
                   const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>& y) {
  const Index n = full.rows();
  const Long eps = std::numeric_limits<Scalar>::epsilon();
  for (Index i = 0; i < n; ++i) {
    Long exact = 0, magnitude = 0;
    for (Index j = 0; j < n; ++j) {
      exact += Long(full(i, j)) * Long(x(j));
      magnitude += std::abs(Long(full(i, j)) * Long(x(j)));
    }
    CAPTURE(i, exact, y(i));
    CHECK(std::abs(Long(y(i)) - exact) <= Long(n + 8) * eps * magnitude);
  }
}

}  // namespace

TEST_CASE("symmetric_product is S x from the lower triangle alone, at every block edge",
          "[stats][symmetric_product]") {
  // Around the four-column blocks and the packet widths (2 to 8 doubles, 4 to 16 floats).
  const Index n = GENERATE(1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 16, 17, 31, 33, 100, 101, 503);
  CAPTURE(n);
  const double nan = std::numeric_limits<double>::quiet_NaN();

  SECTION("double, the strict upper triangle NaN (never read)") {
    const auto problem = random_problem<double>(n, 20261126 + std::uint64_t(n));
    Eigen::MatrixXd lower = problem.full;
    lower.triangularView<Eigen::StrictlyUpper>().setConstant(nan);
    Eigen::VectorXd y = Eigen::VectorXd::Constant(n, nan);  // every entry written
    dynweight::detail::symmetric_product(lower, problem.x.data(), y.data());
    check_product(problem.full, problem.x, y);
  }
  SECTION("double, a block of a larger matrix (outer stride above n)") {
    const auto problem = random_problem<double>(n, 7 + std::uint64_t(n));
    Eigen::MatrixXd big = Eigen::MatrixXd::Constant(n + 5, n + 3, nan);
    big.block(2, 1, n, n).triangularView<Eigen::Lower>() = problem.full;
    Eigen::VectorXd y(n);
    dynweight::detail::symmetric_product(&big(2, 1), big.outerStride(), n, problem.x.data(),
                                         y.data());
    check_product(problem.full, problem.x, y);
  }
  SECTION("float") {
    const auto problem = random_problem<float>(n, 99 + std::uint64_t(n));
    Eigen::MatrixXf lower = problem.full;
    lower.triangularView<Eigen::StrictlyUpper>().setConstant(std::nanf(""));
    Eigen::VectorXf y(n);
    dynweight::detail::symmetric_product(lower, problem.x.data(), y.data());
    check_product(problem.full, problem.x, y);
  }
}

TEST_CASE("symmetric_product passes a NaN or an infinity on", "[stats][symmetric_product]") {
  const Index n = 37;
  auto problem = random_problem<double>(n, 5);
  problem.full(20, 9) = problem.full(9, 20) = std::numeric_limits<double>::quiet_NaN();
  Eigen::VectorXd y(n);
  dynweight::detail::symmetric_product(problem.full, problem.x.data(), y.data());
  CHECK(std::isnan(y(20)));  // S_20,9 x_9
  CHECK(std::isnan(y(9)));   // S_9,20 x_20, read from the lower triangle
  CHECK(std::isfinite(y(0)));
  problem.full(20, 9) = problem.full(9, 20) = 0;
  problem.x(3) = std::numeric_limits<double>::infinity();
  dynweight::detail::symmetric_product(problem.full, problem.x.data(), y.data());
  CHECK(!std::isfinite(y(3)));
  CHECK(!std::isfinite(y(30)));
}
