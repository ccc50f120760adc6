#include "dynweight/stats/detail/symmetric_update.hpp"

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <random>

#include "near.hpp"

using dynweight::Index;

namespace {

// A random symmetric n×n matrix.
Eigen::MatrixXd random_symmetric(Index n, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd a(n, n);
  for (Index i = 0; i < a.size(); ++i)
    a(i) = normal(engine);
  return (a + a.transpose()).eval();
}

}  // namespace

TEST_CASE("mirror_lower_to_upper copies the strict lower triangle exactly, at every tile edge",
          "[stats][symmetric_update]") {
  // Sizes around the 8×8 tiles: below one, at one, one over, several plus a remainder.
  const Index n = GENERATE(1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 500);
  CAPTURE(n);
  const Eigen::MatrixXd full = random_symmetric(n, 20261126 + std::uint64_t(n));

  SECTION("a plain matrix") {
    Eigen::MatrixXd m = full;
    m.triangularView<Eigen::StrictlyUpper>().setConstant(std::numeric_limits<double>::quiet_NaN());
    dynweight::detail::mirror_lower_to_upper(m);
    CHECK(m == full);  // copies: bit for bit
  }
  SECTION("a block of a larger matrix (outer stride above n), nothing outside it touched") {
    Eigen::MatrixXd big = Eigen::MatrixXd::Constant(n + 5, n + 3, -7.0);
    big.block(2, 1, n, n) = full;
    big.block(2, 1, n, n)
        .triangularView<Eigen::StrictlyUpper>()
        .setConstant(std::numeric_limits<double>::quiet_NaN());
    Eigen::Ref<Eigen::MatrixXd> view = big.block(2, 1, n, n);
    dynweight::detail::mirror_lower_to_upper(view);
    CHECK(big.block(2, 1, n, n) == full);
    Eigen::MatrixXd outside = big;
    outside.block(2, 1, n, n).setConstant(-7.0);
    CHECK((outside.array() == -7.0).all());
  }
}

TEST_CASE("scaled_symmetric_copy writes scale times the symmetric matrix, at every tile edge",
          "[stats][symmetric_update]") {
  const Index n = GENERATE(1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 500);
  CAPTURE(n);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Eigen::MatrixXd full = random_symmetric(n, 20261127 + std::uint64_t(n));
  Eigen::MatrixXd lower = full;
  lower.triangularView<Eigen::StrictlyUpper>().setConstant(nan);  // never read
  const double scale = 0.7312;
  // The reference: each entry scaled on its own (the same one product per entry, so bit for bit).
  const Eigen::MatrixXd expected = scale * full;

  SECTION("into a plain matrix") {
    Eigen::MatrixXd out = Eigen::MatrixXd::Constant(n, n, nan);
    dynweight::detail::scaled_symmetric_copy(lower, scale, out);
    CHECK(out == expected);
  }
  SECTION("into a block of a larger matrix, nothing outside it touched") {
    Eigen::MatrixXd big = Eigen::MatrixXd::Constant(n + 5, n + 3, -7.0);
    big.block(2, 1, n, n).setConstant(nan);
    Eigen::Ref<Eigen::MatrixXd> view = big.block(2, 1, n, n);
    dynweight::detail::scaled_symmetric_copy(lower, scale, view);
    CHECK(big.block(2, 1, n, n) == expected);
    Eigen::MatrixXd outside = big;
    outside.block(2, 1, n, n).setConstant(-7.0);
    CHECK((outside.array() == -7.0).all());
  }
}

TEST_CASE("add_four_columns adds four columns times their coefficients, at every length",
          "[stats][symmetric_update]") {
  const Index m = GENERATE(0, 1, 3, 4, 5, 8, 9, 31, 500);
  CAPTURE(m);
  Eigen::MatrixXd a = random_symmetric(m + 6, 77 + std::uint64_t(m)).leftCols(6);
  const double c[4] = {0.25, -1.5, 3.0, 0.125};
  Eigen::VectorXd y = Eigen::VectorXd::LinSpaced(m + 2, -1.0, 1.0);
  Eigen::VectorXd expected = y;
  // Columns 1..4 of `a`, rows 2..m+1, into y(1..m): an offset block, nothing else touched.
  for (Index i = 0; i < m; ++i) {
    expected(1 + i) +=
        (c[0] * a(2 + i, 1) + c[1] * a(2 + i, 2)) + (c[2] * a(2 + i, 3) + c[3] * a(2 + i, 4));
  }
  dynweight::detail::kernel::add_four_columns(y.data() + 1, &a(2, 1), a.outerStride(), m, c);
  // The same products and sums in the same order: bit for bit without FMA; a build that fuses
  // them (-march=native) rounds differently, within a few ulps.
  CHECK(dynweight::test::near(y, expected, 1e-15));
}

TEST_CASE("rank_two_update matches Eigen's rankUpdate and reduces the result, at every size",
          "[stats][symmetric_update]") {
  // Odd and even sizes (the fused kernel takes two columns at a time), below, at and past the
  // packet widths.
  const Index n = GENERATE(1, 2, 3, 4, 5, 8, 9, 16, 17, 31, 100, 101);
  CAPTURE(n);
  const Eigen::MatrixXd start = random_symmetric(n, 7 + std::uint64_t(n));
  std::mt19937_64 engine(99 + std::uint64_t(n));
  std::normal_distribution<double> normal;
  Eigen::VectorXd u(n), v(n), w(n);
  for (Index i = 0; i < n; ++i) {
    u(i) = normal(engine);
    v(i) = normal(engine);
    w(i) = normal(engine);
  }
  const double alpha = 0.37;
  Eigen::MatrixXd expected = start;  // the independent computation: Eigen's own kernel
  expected.selfadjointView<Eigen::Lower>().rankUpdate(u, v, alpha);

  Eigen::MatrixXd plain = start;
  dynweight::detail::rank_two_update(plain, u, v, alpha);
  Eigen::MatrixXd fused = start;
  const auto sums = dynweight::detail::rank_two_update(fused, u, v, alpha, w);
  // The same expression per entry as Eigen's column update: bit for bit without FMA, a few ulps
  // with it (-march=native contracts some of the products into the additions).
  const Eigen::MatrixXd lower_expected = expected.triangularView<Eigen::Lower>();
  const Eigen::MatrixXd lower_plain = plain.triangularView<Eigen::Lower>();
  const Eigen::MatrixXd lower_fused = fused.triangularView<Eigen::Lower>();
  CHECK(dynweight::test::near(lower_plain, lower_expected, 1e-15));
  CHECK(dynweight::test::near(lower_fused, lower_plain, 1e-15));  // the same expressions
  // The upper triangle is not touched.
  const Eigen::MatrixXd upper_start = start.triangularView<Eigen::StrictlyUpper>();
  CHECK(Eigen::MatrixXd(fused.triangularView<Eigen::StrictlyUpper>()) == upper_start);

  // The sums over the strict lower triangle of the result, term by term, and the order bound:
  // any two orders of m terms differ by at most ~m ε Σ|terms| (taken twice).
  double squares = 0, weighted = 0, squares_scale = 0, weighted_scale = 0;
  for (Index j = 0; j < n; ++j) {
    for (Index i = j + 1; i < n; ++i) {
      squares += lower_fused(i, j) * lower_fused(i, j);
      weighted += w(i) * w(j) * lower_fused(i, j);
      squares_scale += lower_fused(i, j) * lower_fused(i, j);
      weighted_scale += std::abs(w(i) * w(j) * lower_fused(i, j));
    }
  }
  const double order = 2.0 * double(n * n) * std::numeric_limits<double>::epsilon();
  CHECK(std::abs(sums.squares - squares) <= order * squares_scale);
  CHECK(std::abs(sums.weighted - weighted) <= order * weighted_scale + 1e-300);
  const auto read = dynweight::detail::strict_lower_sums(fused, w);
  CHECK(std::abs(read.squares - squares) <= order * squares_scale);
  CHECK(std::abs(read.weighted - weighted) <= order * weighted_scale + 1e-300);

  // The squares-only form: the same matrix bit for bit, the same squares (the same order of terms
  // as the weighted form), no weighted sum.
  Eigen::MatrixXd squared = start;
  const auto squares_only = dynweight::detail::rank_two_update_squares(squared, u, v, alpha);
  CHECK(squared == fused);
  CHECK(squares_only.squares == sums.squares);
  CHECK(squares_only.weighted == 0);
}
