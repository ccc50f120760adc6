#include "dynweight/stats/returns.hpp"

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "allocation_counter.hpp"
#include "dynweight/stats/rolling_moments.hpp"
#include "near.hpp"
#include "reference_csv.hpp"

using Catch::Matchers::Contains;
using dynweight::Index;
using dynweight::ReturnCalculator;
using dynweight::ReturnKind;
using dynweight::test::identical;
using dynweight::test::near;
using dynweight::test::Tolerance;

namespace {

constexpr double unit_roundoff = std::numeric_limits<double>::epsilon() / 2;  // u = 2^-53

// The return from `previous` to `current` in long double (64-bit significand on x86-64): 11 bits
// more than double, so an error of a few double ulps in the library shows up plainly.
long double exact_return(double previous, double current, ReturnKind kind) {
  const long double move =
      (static_cast<long double>(current) - static_cast<long double>(previous)) / previous;
  return kind == ReturnKind::simple ? move : std::log1p(move);
}

Eigen::MatrixXd columns_of(const Eigen::MatrixXd& rows) {
  return rows.transpose();  // one bar per column: contiguous, so Eigen::Ref binds without a copy
}

}  // namespace

TEST_CASE("ReturnCalculator matches pandas pct_change and log-diff at every bar",
          "[stats][returns][pandas]") {
  const auto prices = dynweight::test::read_wide("stats/prices.csv");
  const Eigen::MatrixXd bars = columns_of(prices.values);
  REQUIRE(bars.rows() == 4);
  REQUIRE(bars.cols() == 251);

  const ReturnKind kind = GENERATE(ReturnKind::simple, ReturnKind::log);
  const auto expected = dynweight::test::read_vector_series(
      kind == ReturnKind::simple ? "stats/returns_simple.csv" : "stats/returns_log.csv", 4);
  REQUIRE(expected.size() == 250);

  ReturnCalculator<double> calculator(4, kind, prices.names);
  // pandas' own rounding, per entry, in units of u = 2^-53:
  //  - pct_change computes fl(fl(p_t / p_{t−1}) − 1): the ratio's rounding, ≤ u·(1 + |r|), is an
  //    absolute error of the return (the subtraction of 1 is exact near 1);
  //  - np.log(p).diff() rounds each log, ≤ u·|ln p| each (numpy's log is within 1 ulp), then
  //    differences them exactly (Sterbenz).
  // The library is within u·|r| of the exact return (checked below), so the two may differ by the
  // sum of those bounds; the checks allow twice that.
  double worst_pandas = 0.0;  // in units of the per-entry bound
  double worst_exact = 0.0;   // |ours − exact| / (u |exact|)
  for (Index t = 0; t < bars.cols(); ++t) {
    CAPTURE(t);
    const bool ready = calculator.update(bars.col(t));
    REQUIRE(ready == (t >= 1));
    REQUIRE(calculator.bars() == t + 1);
    if (t == 0) {
      REQUIRE(calculator.returns().array().isNaN().all());
      continue;
    }
    const Eigen::VectorXd& reference = expected.at(t - 1);
    for (Index i = 0; i < 4; ++i) {
      CAPTURE(i);
      const double previous = bars(i, t - 1);
      const double current = bars(i, t);
      const double ours = calculator.returns()(i);
      const double pandas_bound =
          kind == ReturnKind::simple
              ? unit_roundoff * (1 + std::abs(reference(i))) + unit_roundoff * std::abs(ours)
              : unit_roundoff * (std::abs(std::log(current)) + std::abs(std::log(previous))) +
                    unit_roundoff * std::abs(ours);
      const double pandas_error = std::abs(ours - reference(i));
      CHECK(pandas_error <= 2 * pandas_bound);
      worst_pandas = std::max(worst_pandas, pandas_error / pandas_bound);

      const long double exact = exact_return(previous, current, kind);
      const double exact_error = static_cast<double>(std::abs(ours - exact));
      // One rounding of d / p_{t−1} (≤ u) plus log1p's own (≤ 1 ulp in glibc).
      CHECK(exact_error <= 3 * unit_roundoff * static_cast<double>(std::abs(exact)));
      if (exact != 0)
        worst_exact = std::max(
            worst_exact, exact_error / (unit_roundoff * static_cast<double>(std::abs(exact))));
    }
  }
  INFO("worst error: " << worst_pandas << " of the pandas bound, " << worst_exact
                       << " u relative to exact");
  CHECK(worst_pandas <= 2);
  CHECK(worst_exact <= 3);
}

TEST_CASE("ReturnCalculator: a stale price gives exactly zero returns, as pandas",
          "[stats][returns][pandas]") {
  // Asset B repeats price bar 136 on price bars 137..161: return bars 136..160 are exactly 0.
  const auto prices = dynweight::test::read_wide("stats/prices.csv");
  const Eigen::MatrixXd bars = columns_of(prices.values);
  const ReturnKind kind = GENERATE(ReturnKind::simple, ReturnKind::log);
  ReturnCalculator<double> calculator(4, kind);
  for (Index t = 0; t < bars.cols(); ++t) {
    calculator.update(bars.col(t));
    if (t >= 137 && t <= 161) {
      CAPTURE(t);
      REQUIRE(calculator.returns()(1) == 0.0);
      REQUIRE_FALSE(std::signbit(calculator.returns()(1)));
    }
  }
}

TEST_CASE("ReturnCalculator closed forms", "[stats][returns]") {
  const double ln2 = std::log(2.0);
  ReturnCalculator<double> simple(3);
  ReturnCalculator<double> log(3, ReturnKind::log);
  REQUIRE(simple.kind() == ReturnKind::simple);
  REQUIRE(log.kind() == ReturnKind::log);
  REQUIRE(simple.assets() == 3);

  // Asset 0 doubles every bar, asset 1 halves, asset 2 never moves.
  Eigen::VectorXd prices(3);
  prices << 3.0, 1e6, 42.5;
  REQUIRE_FALSE(simple.update(prices));
  REQUIRE_FALSE(log.update(prices));
  REQUIRE_FALSE(simple.ready());
  REQUIRE(simple.returns().array().isNaN().all());
  REQUIRE(log.returns().array().isNaN().all());
  REQUIRE(identical(simple.last_prices(), prices));
  for (int bar = 1; bar <= 40; ++bar) {
    CAPTURE(bar);
    prices(0) *= 2;
    prices(1) /= 2;
    REQUIRE(simple.update(prices));
    REQUIRE(log.update(prices));
    REQUIRE(simple.ready());
    REQUIRE(simple.returns()(0) == 1.0);
    REQUIRE(simple.returns()(1) == -0.5);
    REQUIRE(simple.returns()(2) == 0.0);
    REQUIRE(log.returns()(0) == ln2);
    REQUIRE(log.returns()(1) == -ln2);
    REQUIRE(log.returns()(2) == 0.0);
    REQUIRE(identical(log.last_prices(), prices));
  }
  REQUIRE(simple.bars() == 41);

  // Tiny moves keep every digit: p → p(1 + 2^-40) gives exactly 2^-40 (the ratio-minus-one form
  // gives 2^-40 only up to an absolute 1.1e-16, i.e. 1.2e-4 relative), and the log return is
  // log1p(2^-40) = 2^-40 − 2^-81 + ..., correctly rounded.
  const double tiny = std::ldexp(1.0, -40);
  const double base = 1234.5;
  const double moved = base + base * tiny;  // exact: base · 2^-40 and the sum are representable
  Eigen::VectorXd two(1);
  ReturnCalculator<double> simple_tiny(1);
  ReturnCalculator<double> log_tiny(1, ReturnKind::log);
  two << base;
  simple_tiny.update(two);
  log_tiny.update(two);
  two << moved;
  simple_tiny.update(two);
  log_tiny.update(two);
  CHECK(simple_tiny.returns()(0) == tiny);
  CHECK(log_tiny.returns()(0) == std::log1p(tiny));
  CHECK(log_tiny.returns()(0) < tiny);

  // Large moves (beyond a factor of 2) use ln(p_t/p_{t−1}): a 1e-6 crash keeps its digits.
  ReturnCalculator<double> crash(1, ReturnKind::log);
  two << 1e6;
  crash.update(two);
  two << 1.0;
  crash.update(two);
  CHECK(crash.returns()(0) == std::log(1e-6));
  // ... and a ratio outside the range of double still has its (representable) log.
  two << 1e-300;
  crash.update(two);
  two << 1e300;
  crash.update(two);
  CHECK(std::abs(crash.returns()(0) - 600 * std::log(10.0)) <= 1e-13 * 600 * std::log(10.0));
}

TEST_CASE("ReturnCalculator rejects bad prices and stays unchanged", "[stats][returns][errors]") {
  const auto prices = dynweight::test::read_wide("stats/prices.csv");
  const Eigen::MatrixXd bars = columns_of(prices.values);
  const ReturnKind kind = GENERATE(ReturnKind::simple, ReturnKind::log);
  ReturnCalculator<double> calculator(4, kind, {"A", "B", "C", "D"});
  ReturnCalculator<double> twin(4, kind);

  struct Bad {
    double value;
    const char* text;
  };
  const auto bad_value = GENERATE(Bad{0.0, "is 0;"}, Bad{-0.0, "is -0;"}, Bad{-12.5, "is -12.5;"},
                                  Bad{std::numeric_limits<double>::quiet_NaN(), "is nan;"},
                                  Bad{std::numeric_limits<double>::infinity(), "is inf;"},
                                  Bad{-std::numeric_limits<double>::infinity(), "is -inf;"},
                                  Bad{std::numeric_limits<double>::denorm_min(), ""});
  const bool legal = bad_value.value > 0 && std::isfinite(bad_value.value);
  CAPTURE(bad_value.value);

  // Before the first bar.
  Eigen::VectorXd bad = bars.col(0);
  bad(2) = bad_value.value;
  if (!legal) {
    REQUIRE_THROWS_AS(calculator.update(bad), dynweight::Error);
    REQUIRE_THROWS_WITH(calculator.update(bad),
                        Contains("ReturnCalculator::update") && Contains("prices[2]") &&
                            Contains("asset 2 ('C')") && Contains("at bar 0") &&
                            Contains(bad_value.text) && Contains("must be finite and > 0"));
    REQUIRE(calculator.bars() == 0);
    REQUIRE(calculator.last_prices().array().isNaN().all());
    REQUIRE(calculator.returns().array().isNaN().all());
  }

  for (Index t = 0; t < 6; ++t) {
    calculator.update(bars.col(t));
    twin.update(bars.col(t));
  }
  const Eigen::VectorXd returns = calculator.returns();
  const Eigen::VectorXd last = calculator.last_prices();

  bad = bars.col(6);
  bad(3) = bad_value.value;
  if (legal) {
    // The smallest positive price is a price: accepted, and the engine goes on.
    ReturnCalculator<double> copy = calculator;
    REQUIRE(copy.update(bad));
    REQUIRE(std::isfinite(copy.returns()(3)));
    return;
  }
  REQUIRE_THROWS_AS(calculator.update(bad), dynweight::Error);
  REQUIRE_THROWS_WITH(calculator.update(bad), Contains("ReturnCalculator::update") &&
                                                  Contains("prices[3] (asset 3 ('D')) at bar 6") &&
                                                  Contains(bad_value.text));
  REQUIRE_THROWS_WITH(calculator.update(Eigen::VectorXd::Ones(5)),
                      Contains("ReturnCalculator::update") &&
                          Contains("prices has 5 entries at bar 6, expected 4"));
  REQUIRE_THROWS_AS(calculator.update(Eigen::VectorXd(0)), dynweight::Error);

  REQUIRE(calculator.bars() == 6);
  REQUIRE(calculator.ready());
  REQUIRE(identical(calculator.returns(), returns));
  REQUIRE(identical(calculator.last_prices(), last));

  // ... and carries on exactly as a calculator that never saw the bad bars.
  for (Index t = 6; t < bars.cols(); ++t) {
    calculator.update(bars.col(t));
    twin.update(bars.col(t));
    REQUIRE(identical(calculator.returns(), twin.returns()));
  }
}

TEST_CASE("ReturnCalculator validates its construction", "[stats][returns][errors]") {
  REQUIRE_THROWS_WITH(ReturnCalculator<double>(0),
                      Contains("ReturnCalculator") && Contains("assets = 0; must be >= 1"));
  REQUIRE_THROWS_WITH((ReturnCalculator<double>(3, ReturnKind::log, {"A", "B"})),
                      Contains("names has 2 entries, expected 3"));
  const ReturnCalculator<double> named(2, ReturnKind::simple, {"X", "Y"});
  REQUIRE(named.names().size() == 2);
  REQUIRE(named.names()[1] == "Y");
}

TEST_CASE("ReturnCalculator::reset forgets the prices", "[stats][returns]") {
  const auto prices = dynweight::test::read_wide("stats/prices.csv");
  const Eigen::MatrixXd bars = columns_of(prices.values);
  ReturnCalculator<double> calculator(4, ReturnKind::log);
  ReturnCalculator<double> fresh(4, ReturnKind::log);
  for (Index t = 0; t < 10; ++t)
    calculator.update(bars.col(t));
  calculator.reset();
  REQUIRE(calculator.bars() == 0);
  REQUIRE_FALSE(calculator.ready());
  REQUIRE(calculator.returns().array().isNaN().all());
  REQUIRE(calculator.last_prices().array().isNaN().all());
  REQUIRE(calculator.kind() == ReturnKind::log);
  for (Index t = 10; t < 30; ++t) {
    REQUIRE(calculator.update(bars.col(t)) == fresh.update(bars.col(t)));
    REQUIRE(identical(calculator.returns(), fresh.returns()));
  }
}

TEST_CASE("ReturnCalculator::update does not allocate", "[stats][returns][allocation]") {
  const Index assets = 50;
  const Index bars = 300;
  std::mt19937_64 engine(17);
  std::normal_distribution<double> shock(0.0, 0.02);
  Eigen::MatrixXd prices(assets, bars);  // one bar per column
  prices.col(0).setConstant(100.0);
  for (Index t = 1; t < bars; ++t) {
    for (Index i = 0; i < assets; ++i)
      prices(i, t) = prices(i, t - 1) * std::exp(shock(engine));
  }
  prices(7, 200) = 10 * prices(7, 199);  // a move beyond a factor of 2
  const ReturnKind kind = GENERATE(ReturnKind::simple, ReturnKind::log);
  ReturnCalculator<double> calculator(assets, kind);
  double sink = 0.0;
  {
    dynweight::test::NoAllocationScope scope;
    for (Index t = 0; t < bars; ++t) {
      if (calculator.update(prices.col(t)))
        sink += calculator.returns()(assets - 1);
    }
    REQUIRE(scope.allocations() == 0);
  }
  REQUIRE(std::isfinite(sink));
}

TEST_CASE("ReturnCalculator<float> is accurate to float precision", "[stats][returns][float]") {
  const auto table = dynweight::test::read_wide("stats/prices.csv");
  const Eigen::MatrixXf bars = columns_of(table.values).cast<float>();
  const ReturnKind kind = GENERATE(ReturnKind::simple, ReturnKind::log);
  ReturnCalculator<float> calculator(4, kind);
  const double float_roundoff = std::numeric_limits<float>::epsilon() / 2.0;
  for (Index t = 0; t < bars.cols(); ++t) {
    CAPTURE(t);
    const bool ready = calculator.update(bars.col(t));
    REQUIRE(ready == (t >= 1));
    if (!ready)
      continue;
    for (Index i = 0; i < 4; ++i) {
      CAPTURE(i);
      // The same float prices, exactly, in long double: only the library's float rounding differs.
      const long double exact = exact_return(bars(i, t - 1), bars(i, t), kind);
      const double error = static_cast<double>(std::abs(calculator.returns()(i) - exact));
      REQUIRE(error <= 3 * float_roundoff * static_cast<double>(std::abs(exact)));
    }
  }
}

TEST_CASE("ReturnCalculator class example: returns chained into RollingMoments",
          "[stats][returns][example]") {
  const Eigen::MatrixXd prices = columns_of(dynweight::test::read_wide("stats/prices.csv").values)
                                     .topRows(3);  // 3 × T, one bar a column
  // --- the example in the class comment ---
  // prices: an Eigen::MatrixXd of 3 assets × T bars, one bar per column
  dynweight::ReturnCalculator<double> returns(3);  // simple returns
  dynweight::RollingMoments<double> rolling(3, {.window = 60});
  for (Eigen::Index t = 0; t < prices.cols(); ++t) {
    if (returns.update(prices.col(t)))  // true from the second bar on
      rolling.update(returns.returns());
  }
  // ---
  REQUIRE(rolling.bars() == prices.cols() - 1);
  const auto mean = dynweight::test::read_vector_series("stats/rolling_w60_mp60_mean.csv", 4);
  CHECK(near(rolling.mean(), mean.at(prices.cols() - 2).head(3), 1e-12));
  CHECK(near(returns.last_prices(), prices.rightCols(1), 0.0, Tolerance::absolute));
}

TEST_CASE("ReturnCalculator: a simple return that overflows is rejected, naming the price",
          "[stats][returns][errors]") {
  ReturnCalculator<double> simple(2, ReturnKind::simple, {"A", "B"});
  simple.update(Eigen::Vector2d(1e-300, 1.0));
  simple.update(Eigen::Vector2d(2e-300, 1.5));
  const Eigen::VectorXd returns = simple.returns();
  const Eigen::VectorXd last = simple.last_prices();
  // 1e10 / 2e-300 overflows: the simple return would be +Inf.
  REQUIRE_THROWS_WITH(simple.update(Eigen::Vector2d(1e10, 2.0)),
                      Contains("prices[0] (asset 0 ('A')) at bar 2") && Contains("simple return") &&
                          Contains("the ratio to the last price, 2e-300, overflows"));
  CHECK(simple.bars() == 2);
  CHECK(identical(simple.returns(), returns));
  CHECK(identical(simple.last_prices(), last));
  // The log return of the same jump is representable.
  ReturnCalculator<double> log(2, ReturnKind::log);
  log.update(Eigen::Vector2d(2e-300, 1.5));
  CHECK(log.update(Eigen::Vector2d(1e10, 2.0)));
  CHECK(std::isfinite(log.returns()(0)));
}
