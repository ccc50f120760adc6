#include "dynweight/policies/detail/fixed_point_kernel.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "dynweight/policies/detail/cholesky.hpp"
#include "near.hpp"

using dynweight::Index;
constexpr double* no_best = nullptr;

namespace {

Eigen::VectorXd uniform_vector(Index m, std::uint64_t seed, double low, double high) {
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<double> uniform(low, high);
  Eigen::VectorXd v(m);
  for (Index i = 0; i < m; ++i)
    v(i) = uniform(engine);
  return v;
}

}  // namespace

TEST_CASE("fixed_point_record does the fixed-point step's vector work in one pass, at every length",
          "[policies][risk_parity][kernel]") {
  const Index m = GENERATE(1, 2, 3, 4, 5, 8, 9, 31, 100, 501);
  CAPTURE(m);
  const Eigen::VectorXd b = uniform_vector(m, 1, 0.1, 1.0);
  const Eigen::VectorXd y = uniform_vector(m, 2, 0.5, 2.0);
  const Eigen::VectorXd x = uniform_vector(m, 3, 0.1, 1.0);
  const Eigen::VectorXd old_g = uniform_vector(m, 4, 0.1, 1.0);
  const Eigen::VectorXd old_f = uniform_vector(m, 5, -0.1, 0.1);
  Eigen::MatrixXd ring(m, 4);
  for (Index j = 0; j < 4; ++j)
    ring.col(j) = uniform_vector(m, 6 + std::uint64_t(j), -1.0, 1.0);
  const Index slot = 2;  // the new column goes here and is read back among the four
  const int used = GENERATE(1, 2, 3, 4);  // the history columns in use (sums past them are 0)
  CAPTURE(used);

  // The independent computation: plain vector expressions, one at a time, on the scaled iterate.
  const double scale = 0.75;
  // The products rounded on their own: bit for bit with the kernel without FMA; a build that
  // fuses scale·x into the subtraction (-march=native, in some of the kernel's instantiations)
  // rounds f and what depends on it differently, within a few ulps.
  const Eigen::VectorXd scaled_x = scale * x;
  const Eigen::VectorXd scaled_y = scale * y;
  const Eigen::VectorXd g = b.cwiseQuotient(scaled_y);
  const Eigen::VectorXd f = g - scaled_x;
  const Eigen::VectorXd delta_f = f - old_f;
  Eigen::MatrixXd expected_ring = ring;
  expected_ring.col(slot) = delta_f;

  Eigen::VectorXd last_g = old_g, last_f = old_f, delta_g(m), best_x(m), best_y(m);
  Eigen::MatrixXd written = ring;
  std::array<const double*, 4> columns{};
  for (Index j = 0; j < 4; ++j)
    columns[std::size_t(j)] = written.col(j).data();
  const auto record = [&]<int columns_used>() {
    return dynweight::detail::kernel::fixed_point_record<columns_used>(
        m, b.data(), y.data(), x.data(), last_g.data(), last_f.data(), delta_g.data(),
        written.col(slot).data(), columns, best_x.data(), best_y.data(), scale);
  };
  const auto sums = used == 1   ? record.operator()<1>()
                    : used == 2 ? record.operator()<2>()
                    : used == 3 ? record.operator()<3>()
                                : record.operator()<4>();

  // Element-wise results: the same operations, exact.
  CHECK(last_g == g);
  CHECK(dynweight::test::near(last_f, f, 1e-15));
  CHECK(delta_g == g - old_g);
  CHECK(dynweight::test::near(written, expected_ring, 1e-15));
  CHECK(best_x == scaled_x);
  CHECK(best_y == scaled_y);
  // Sums: another order of the same terms (packets); any two orders of m terms differ by at most
  // ~m ε Σ|terms| (the classical bound on recursive summation, taken twice).
  const double order = 2.0 * double(m) * std::numeric_limits<double>::epsilon();
  for (Index j = 0; j < 4; ++j) {
    const bool in_use = j < used;
    const double gram = in_use ? delta_f.dot(expected_ring.col(j)) : 0.0;
    const double rhs = in_use ? f.dot(expected_ring.col(j)) : 0.0;
    const double scale_gram = delta_f.cwiseAbs().dot(expected_ring.col(j).cwiseAbs());
    const double scale_rhs = f.cwiseAbs().dot(expected_ring.col(j).cwiseAbs());
    CHECK(std::abs(sums.gram[std::size_t(j)] - gram) <= order * scale_gram);
    CHECK(std::abs(sums.rhs[std::size_t(j)] - rhs) <= order * scale_rhs);
  }
  CHECK(std::abs(sums.g_sum - g.sum()) <= order * g.sum());
  CHECK(sums.g_min == g.minCoeff());
  CHECK(sums.g_positive());

  SECTION("without differences the ring is untouched") {
    Eigen::VectorXd g2 = old_g, f2 = old_f, unused(m);
    Eigen::MatrixXd untouched = ring;
    const auto first = dynweight::detail::kernel::fixed_point_record<0>(
        m, b.data(), y.data(), x.data(), g2.data(), f2.data(), unused.data(),
        untouched.col(slot).data(), columns, no_best, no_best, scale);
    CHECK(g2 == g);
    CHECK(dynweight::test::near(f2, f, 1e-15));
    CHECK(untouched == ring);
    CHECK(first.g_positive());
  }
  SECTION("a non-positive or zero Σx entry shows in g_positive") {
    Eigen::VectorXd bad_y = y;
    bad_y(m / 2) = GENERATE(-1.0, 0.0, std::numeric_limits<double>::quiet_NaN());
    Eigen::VectorXd g2 = old_g, f2 = old_f, unused(m);
    Eigen::MatrixXd scratch = ring;
    const auto bad = dynweight::detail::kernel::fixed_point_record<0>(
        m, b.data(), bad_y.data(), x.data(), g2.data(), f2.data(), unused.data(),
        scratch.col(slot).data(), columns, no_best, no_best, scale);
    CHECK_FALSE(bad.g_positive());
  }
}

TEST_CASE("mix_columns subtracts the mixed columns in one pass, at every length",
          "[policies][risk_parity][kernel]") {
  const Index m = GENERATE(1, 2, 3, 5, 8, 31, 100, 501);
  const int used = GENERATE(1, 2, 3, 4);
  CAPTURE(m, used);
  const Eigen::VectorXd base = uniform_vector(m, 11, 1.0, 2.0);
  Eigen::MatrixXd delta(m, 4);
  for (Index j = 0; j < 4; ++j)
    delta.col(j) = uniform_vector(m, 12 + std::uint64_t(j), -1.0, 1.0);
  const std::array<double, 4> gamma{0.25, -0.5, 0.125, -0.0625};
  std::array<const double*, 4> columns{};
  for (Index j = 0; j < 4; ++j)
    columns[std::size_t(j)] = delta.col(j).data();
  Eigen::VectorXd out(m);
  const auto mix = [&]<int count>() {
    return dynweight::detail::kernel::mix_columns<count>(m, out.data(), base.data(), columns,
                                                         gamma);
  };
  const double lowest = used == 1   ? mix.operator()<1>()
                        : used == 2 ? mix.operator()<2>()
                        : used == 3 ? mix.operator()<3>()
                                    : mix.operator()<4>();
  // The four-term sum with γ_j = 0 past the columns in use (the columns past them are not read).
  std::array<double, 4> in_use{};
  for (int j = 0; j < used; ++j)
    in_use[std::size_t(j)] = gamma[std::size_t(j)];
  Eigen::VectorXd expected(m);
  for (Index i = 0; i < m; ++i) {
    expected(i) = base(i) - ((in_use[0] * delta(i, 0) + in_use[1] * delta(i, 1)) +
                             (in_use[2] * delta(i, 2) + in_use[3] * delta(i, 3)));
  }
  // The same products and sums in the same order: bit for bit without FMA, a few ulps with.
  CHECK(dynweight::test::near(out, expected, 1e-15));
  CHECK(lowest == out.minCoeff());
}

TEST_CASE("contribution_sums gives xᵀy and the extreme products in one pass, at every length",
          "[policies][risk_parity][kernel]") {
  const Index m = GENERATE(1, 2, 3, 4, 5, 8, 9, 31, 100, 501);
  CAPTURE(m);
  const Eigen::VectorXd x = uniform_vector(m, 21, 0.1, 1.0);
  const Eigen::VectorXd y = uniform_vector(m, 22, -0.5, 2.0);
  const Eigen::VectorXd products = x.cwiseProduct(y);
  const auto sums = dynweight::detail::kernel::contribution_sums(m, x.data(), y.data());
  // The extremes are the same rounded products, exact; the total another order of the same
  // terms (within 2mε Σ|terms|, as above).
  CHECK(sums.largest == products.maxCoeff());
  CHECK(sums.smallest == products.minCoeff());
  const double order = 2.0 * double(m) * std::numeric_limits<double>::epsilon();
  CHECK(std::abs(sums.total - products.sum()) <= order * products.cwiseAbs().sum());

  SECTION("a NaN product makes the total NaN") {
    Eigen::VectorXd bad = y;
    bad(m / 2) = std::numeric_limits<double>::quiet_NaN();
    CHECK(std::isnan(dynweight::detail::kernel::contribution_sums(m, x.data(), bad.data()).total));
  }
}

TEST_CASE("cholesky_in_place: the factor Eigen's LLT gives, the upper triangle untouched",
          "[policies][risk_parity][kernels]") {
  const Index n = GENERATE(1, 3, 4, 5, 8, 37, 130);
  CAPTURE(n);
  const Eigen::MatrixXd a = Eigen::MatrixXd::Random(n, 2 * n + 3);
  Eigen::MatrixXd spd = a * a.transpose() / double(n);
  spd.diagonal().array() += 0.01;
  const Eigen::MatrixXd expected = Eigen::LLT<Eigen::MatrixXd>(spd).matrixL();
  Eigen::MatrixXd h = spd;
  h.triangularView<Eigen::StrictlyUpper>().setConstant(std::numeric_limits<double>::quiet_NaN());
  REQUIRE(dynweight::detail::cholesky_in_place<double>(h));
  const Eigen::MatrixXd lower = h.triangularView<Eigen::Lower>();
  CHECK((lower - expected).cwiseAbs().maxCoeff() <= 1e-13 * expected.cwiseAbs().maxCoeff());
  CHECK((lower * lower.transpose() - spd).norm() <= 1e-14 * spd.norm());
  for (Index j = 1; j < n; ++j)
    CHECK(h.col(j).head(j).array().isNaN().all());
  // Not positive definite (a negative eigenvalue), or a NaN: false.
  Eigen::MatrixXd indefinite = spd;
  indefinite(n - 1, n - 1) = -1.0;
  CHECK_FALSE(dynweight::detail::cholesky_in_place<double>(indefinite));
  Eigen::MatrixXd nan = spd;
  nan(n / 2, n / 2) = std::numeric_limits<double>::quiet_NaN();
  CHECK_FALSE(dynweight::detail::cholesky_in_place<double>(nan));
}
