#include "dynweight/stats/rolling_moments.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "allocation_counter.hpp"
#include "market_data.hpp"
#include "near.hpp"
#include "reference_csv.hpp"

using Catch::Matchers::Contains;
using dynweight::Index;
using dynweight::RollingMoments;
using dynweight::RollingOptions;
using dynweight::test::near;
using dynweight::test::Tolerance;

namespace {

Eigen::MatrixXd lower_of(const Eigen::MatrixXd& m) {
  return m.triangularView<Eigen::Lower>();
}

// Covariance difference in units of √(S_ii S_jj) (a correlation-scale error), the measure in which
// pandas' own rounding is bounded (see tests/reference/data/stats/README.md).
double scaled_covariance_error(const Eigen::MatrixXd& actual, const Eigen::MatrixXd& expected) {
  double worst = 0.0;
  for (Index j = 0; j < expected.cols(); ++j) {
    for (Index i = j; i < expected.rows(); ++i) {
      const double scale = std::sqrt(expected(i, i) * expected(j, j));
      const double diff = std::abs(actual(i, j) - expected(i, j));
      worst = std::max(worst, scale > 0 ? diff / scale : diff == 0 ? 0.0 : 1.0);
    }
  }
  return worst;
}

template <class Scalar>
Eigen::MatrixXd covariance_of(const RollingMoments<Scalar>& rolling) {
  return Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>(rolling.covariance())
      .template cast<double>();
}

// Streams `data` (one observation per row) through `rolling`, no update allocating (the exact
// re-accumulation included), and requires at every full window the covariance within 1e5 ε
// (2.2e-11) of the largest variance of a two-pass recompute (the rounding check's bound) and the
// mean within 1e-13.
void require_rounding_bound_at_every_bar(RollingMoments<double>& rolling,
                                         const Eigen::MatrixXd& data) {
  const Index window = rolling.window();
  const Eigen::MatrixXd observations = data.transpose();  // columns: no copy into the Ref
  for (Index t = 0; t < data.rows(); ++t) {
    {
      dynweight::test::NoAllocationScope scope;
      rolling.update(observations.col(t));
      REQUIRE(scope.allocations() == 0);
    }
    if (t + 1 < window)
      continue;
    const Eigen::MatrixXd rows = data.middleRows(t + 1 - window, window);
    const Eigen::MatrixXd expected = dynweight::test::two_pass_covariance(rows);
    const Eigen::MatrixXd actual = rolling.covariance();
    CAPTURE(t);
    REQUIRE((actual - expected).cwiseAbs().maxCoeff() <= 2.2e-11 * expected.diagonal().maxCoeff());
    REQUIRE(near(rolling.mean(), dynweight::test::two_pass_mean(rows), 1e-13));
  }
}

}  // namespace

TEST_CASE("RollingMoments matches pandas rolling mean/var/cov/corr", "[stats][rolling][pandas]") {
  const auto returns = dynweight::test::read_vector_series("stats/returns_simple.csv", 4);
  struct Case {
    Index window, min_periods;
    double covariance_tolerance;
  };
  // pandas forms rolling cov as mean(xy) − mean(x)mean(y), accurate to ~1e-12 in units of
  // √(S_ii S_jj) for W ≥ 20 but only ~1e-9 for W = 2 (measured by the reference script's author
  // against exact long-double values); the tolerances leave a factor ~100 above that.
  const auto config =
      GENERATE(Case{20, 20, 1e-10}, Case{20, 5, 1e-10}, Case{60, 60, 1e-10}, Case{2, 2, 1e-7});
  const std::string tag = "stats/rolling_w" + std::to_string(config.window) + "_mp" +
                          std::to_string(config.min_periods);
  const auto mean = dynweight::test::read_vector_series(tag + "_mean.csv", 4);
  const auto var = dynweight::test::read_vector_series(tag + "_var.csv", 4);
  const auto cov = dynweight::test::read_matrix_series(tag + "_cov.csv", 4);
  const auto corr = dynweight::test::read_matrix_series(tag + "_corr.csv", 4);
  REQUIRE(returns.size() == 250);

  RollingMoments<double> rolling(4, {.window = config.window, .min_periods = config.min_periods},
                                 {"A", "B", "C", "D"});
  Index compared = 0;
  for (const auto& [bar, r] : returns) {
    CAPTURE(config.window, config.min_periods, bar);
    rolling.update(r);
    if (!rolling.ready()) {
      REQUIRE(mean.at(bar).array().isNaN().all());
      continue;
    }
    ++compared;
    CHECK(near(rolling.mean(), mean.at(bar), 1e-12));
    if (rolling.count() < 2) {
      CHECK(var.at(bar).array().isNaN().all());
      CHECK(rolling.variance().array().isNaN().all());
      continue;
    }
    CHECK(near(rolling.variance(), var.at(bar), 1e-10));
    CHECK(near(rolling.volatility(), var.at(bar).cwiseSqrt(), 1e-10));
    CHECK(scaled_covariance_error(covariance_of(rolling), cov.at(bar)) <=
          config.covariance_tolerance);
    CHECK(near(lower_of(Eigen::MatrixXd(rolling.correlation())), corr.at(bar),
               config.covariance_tolerance * 10, Tolerance::absolute));
  }
  CHECK(compared == 250 - config.min_periods + 1);
}

TEST_CASE("RollingMoments: a stale price gives exactly zero variance, as pandas",
          "[stats][rolling][pandas]") {
  // Asset B's returns are exactly 0 on return bars 136..160: the 20-bar windows ending at bars
  // 155..160 hold only zeros.
  const auto returns = dynweight::test::read_vector_series("stats/returns_simple.csv", 4);
  const auto corr = dynweight::test::read_matrix_series("stats/rolling_w20_mp20_corr.csv", 4);
  RollingMoments<double> rolling(4, {.window = 20});
  for (const auto& [bar, r] : returns) {
    rolling.update(r);
    if (bar < 155 || bar > 160)
      continue;
    CAPTURE(bar);
    CHECK(rolling.mean()(1) == 0.0);
    CHECK(rolling.variance()(1) == 0.0);
    CHECK(rolling.covariance_lower().row(1).head(2).isZero(0.0));
    CHECK(rolling.covariance_lower().col(1).tail(3).isZero(0.0));
    CHECK(std::isnan(rolling.correlation_lower()(1, 1)));
    CHECK(std::isnan(rolling.correlation_lower()(3, 1)));
    CHECK(std::isnan(corr.at(bar)(3, 1)));
  }
}

TEST_CASE("RollingMoments equals a two-pass recompute at every bar", "[stats][rolling]") {
  const Index assets = GENERATE(1, 2, 10, 100);
  const Index window = GENERATE(2, 5, 33);
  const bool default_min_periods = GENERATE(true, false);
  const Index resync = GENERATE(-1, 0, 1, 7);
  const Index bars = 3 * window + 40;
  const Eigen::MatrixXd data =
      dynweight::test::correlated_returns(bars, assets, 1000 + static_cast<std::uint64_t>(assets));
  RollingOptions options{
      .window = window, .min_periods = default_min_periods ? 0 : 1, .resync_period = resync};
  RollingMoments<double> rolling(assets, options);
  for (Index t = 0; t < bars; ++t) {
    CAPTURE(assets, window, default_min_periods, resync, t);
    rolling.update(data.row(t).transpose());
    const Index n = std::min(t + 1, window);
    REQUIRE(rolling.count() == n);
    REQUIRE(rolling.ready() == (n >= (default_min_periods ? window : 1)));
    const Eigen::MatrixXd rows = data.middleRows(t + 1 - n, n);
    REQUIRE(near(rolling.mean(), dynweight::test::two_pass_mean(rows), 1e-13));
    if (n < 2) {
      REQUIRE(rolling.variance().array().isNaN().all());
      continue;
    }
    const Eigen::MatrixXd expected = dynweight::test::two_pass_covariance(rows);
    // Differences of a few ulps of the largest entry, accumulated over ≤ 3W + 40 updates.
    REQUIRE(near(covariance_of(rolling), expected, 1e-12));
    REQUIRE(near(rolling.variance(), expected.diagonal(), 1e-12));
    REQUIRE(near(rolling.volatility(), expected.diagonal().cwiseSqrt(), 1e-12));
    // A correlation is a ratio: a covariance error ε·max_k S_kk becomes ε·max_k S_kk/(σ_i σ_j),
    // which is large for a pair whose moves in this window are tiny (W = 2 makes many such).
    const Eigen::MatrixXd correlation = rolling.correlation();
    const Eigen::MatrixXd expected_correlation = dynweight::test::correlation_of(expected);
    const Eigen::VectorXd sd = expected.diagonal().cwiseSqrt();
    for (Index j = 0; j < assets; ++j) {
      for (Index i = j; i < assets; ++i) {
        CAPTURE(i, j);
        REQUIRE(std::abs(correlation(i, j) - expected_correlation(i, j)) <=
                1e-12 * expected.diagonal().maxCoeff() / (sd(i) * sd(j)));
      }
    }
  }
}

TEST_CASE("RollingMoments: a bad print far outside the data leaves no rounding behind",
          "[stats][rolling]") {
  // A return of +100 on σ = 0.01, then its reversal (a ×101 price misprint): the rank-2
  // downdate that removes it left ε·100² in S, 2.5–4e-10 of the largest variance for the 16 W
  // bars until the next resync. The rounding check now re-accumulates the window at once.
  const Index n = 5;
  const Index window = GENERATE(20, 60);
  const double spike = GENERATE(100.0, 1000.0);
  const Index bars = 8 * window;
  Eigen::MatrixXd data = dynweight::test::correlated_returns(bars, n, 7);
  data(window + 3, 0) = spike;
  data(window + 4, 0) = -spike / (1 + spike);
  RollingMoments<double> rolling(n, {.window = window});
  CAPTURE(window, spike);
  // Before the check, 2.5–4e-10 of the largest variance once the print had left.
  require_rounding_bound_at_every_bar(rolling, data);
  // Once per print leaving the window (its reversal is small: it leaves no trace).
  CHECK(rolling.forced_recomputes() >= 1);
  CHECK(rolling.forced_recomputes() <= 2);
  rolling.reset();  // counted since construction or reset(), like bars()
  CHECK(rolling.forced_recomputes() == 0);
}

TEST_CASE("RollingMoments: data far from the reference point keep the covariance's digits",
          "[stats][rolling]") {
  // Levels of 100 ± 0.01 that jump to 1e3 or 1e6 ± 0.01 (prices fed as levels, or a
  // misprinted stretch), or returns that drop to 1e-90 times their size: the mean is kept as
  // K + δ about a reference point K, and the shadow resync re-accumulates about the mean at its
  // start. Far from the data, both round at the size of x − K: a shadow that began while the jump
  // was in the window gave S 0.83 off (jump to 1e6), 5e-7 (to 1e3), and the exact recompute, still
  // about the old K, kept variances of 1e-35 for returns whose variance was 1e-185. The rounding
  // check now counts x − K, a shadow's result starts it from its own rounding, and the recompute
  // re-centres on the window.
  const int kind = GENERATE(0, 1, 2);  // jump to 1e3, jump to 1e6, returns ×1e-90
  const Index resync = GENERATE(-1, 2, 7);
  const Index n = 3;
  const Index window = 20;
  const Index bars = 400;
  Eigen::MatrixXd data = dynweight::test::correlated_returns(bars, n, 13);
  for (Index t = 0; t < bars; ++t) {
    if (kind == 2) {
      if (t >= 50 && t < 300)
        data.row(t) *= 1e-90;
    } else {
      data.row(t).array() += t < 50 ? 100.0 : kind == 0 ? 1e3 : 1e6;
    }
  }
  RollingMoments<double> rolling(n, {.window = window, .resync_period = resync});
  CAPTURE(kind, resync);
  require_rounding_bound_at_every_bar(rolling, data);
  CHECK(rolling.forced_recomputes() <= 4);
}

TEST_CASE("RollingMoments: a trend fed as levels moves the reference point with the mean",
          "[stats][rolling]") {
  // Levels 100 + (i + 1)·t + 0.01·z: the mean leaves K behind by the trend. With the periodic
  // resync the error stays within the check's 2.2e-11 of the largest variance; without it, the
  // mean's own rounding drifts (not modelled by the check, see the class comment), and before K
  // followed the mean the error reached 8e-6 at W = 50 after 3e5 bars (1e-8 allowed here; 2.8e-9
  // measured).
  const Index resync = GENERATE(-1, 0);
  const Index n = 3;
  const Index window = 50;
  const Index bars = resync == 0 ? 300'000 : 30'000;
  std::mt19937_64 engine(5);
  std::normal_distribution<double> normal(0.0, 1.0);
  RollingMoments<double> rolling(n, {.window = window, .resync_period = resync});
  Eigen::MatrixXd recent(window, n);  // the window, in ring order
  double worst = 0;
  for (Index t = 0; t < bars; ++t) {
    Eigen::VectorXd x(n);
    for (Index i = 0; i < n; ++i)
      x(i) = 100.0 + double(t) * double(i + 1) + 0.01 * normal(engine);
    rolling.update(x);
    recent.row(t % window) = x.transpose();
    if (t + 1 < window || t % 997 != 0)
      continue;
    const Eigen::MatrixXd expected = dynweight::test::two_pass_covariance(recent);
    const Eigen::MatrixXd actual = rolling.covariance();
    worst =
        std::max(worst, (actual - expected).cwiseAbs().maxCoeff() / expected.diagonal().maxCoeff());
  }
  CAPTURE(resync, worst);
  CHECK(worst <= (resync == 0 ? 1e-8 : 2.2e-11));
}

TEST_CASE("RollingMoments: a variance below the window's rounding never comes out negative",
          "[stats][rolling]") {
  // Asset 0 alternates 100 lively bars (σ = 1%) with 300 of 1e-4 plus noise of 1e-17 (a money
  // market's returns): in the quiet stretches its variance, ~1e-34, is below what the downdates
  // of the lively bars leave, and S_00 rounded to −3.8e-20 in 478 of 3000 bars, which policies
  // reject as a covariance ("diagonal is -9.5e-30; must be >= 0" on real data). The covariance's
  // diagonal must be >= 0 and equal variance() at every bar.
  RollingMoments<double> moments(2, {.window = 20});
  std::mt19937_64 engine(3);
  std::normal_distribution<double> normal(0.0, 1.0);
  int quiet = 0;
  for (int t = 0; t < 3000; ++t) {
    const bool lively = t % 400 < 100;
    const Eigen::Vector2d x(lively ? 0.01 * normal(engine) : 1e-4 + 1e-17 * normal(engine),
                            0.01 * normal(engine));
    moments.update(x);
    if (t < 1)
      continue;
    CAPTURE(t);
    REQUIRE(moments.covariance_lower()(0, 0) >= 0);
    REQUIRE(moments.covariance_lower()(1, 1) >= 0);
    REQUIRE(moments.variance()(0) == moments.covariance_lower()(0, 0));
    REQUIRE(moments.variance()(1) == moments.covariance_lower()(1, 1));
    quiet += !lively && t % 400 >= 120 ? 1 : 0;
  }
  CHECK(quiet == 7 * 280 + 80);  // bars whose window holds quiet returns only
}

TEST_CASE("RollingMoments: the rounding check does not fire on ordinary data", "[stats][rolling]") {
  const double level = GENERATE(0.0, 1e4);
  const Index resync = GENERATE(-1, 0);
  const Index n = 6;
  const Index window = 50;
  const Eigen::MatrixXd data = dynweight::test::correlated_returns(200'000 / n, n, 31);
  RollingMoments<double> rolling(n, {.window = window, .resync_period = resync});
  for (Index pass = 0; pass < n; ++pass) {
    for (Index t = 0; t < data.rows(); ++t)
      rolling.update((data.row(t).transpose().array() + level).matrix());
  }
  CAPTURE(level, resync);
  CHECK(rolling.forced_recomputes() == 0);
}

TEST_CASE("RollingMoments<float> tracks a double two-pass recompute", "[stats][rolling][float]") {
  const Index assets = GENERATE(2, 10);
  const Index window = 33;
  const Eigen::MatrixXf data = dynweight::test::correlated_returns(200, assets, 7).cast<float>();
  RollingMoments<float> rolling(assets, {.window = window, .resync_period = 40});
  for (Index t = 0; t < data.rows(); ++t) {
    rolling.update(data.row(t).transpose());
    if (!rolling.ready())
      continue;
    const Eigen::MatrixXd rows = data.middleRows(t + 1 - window, window).cast<double>();
    CAPTURE(t);
    // float keeps ~7 digits; the window's sums lose at most a factor ~W of that.
    REQUIRE(near(covariance_of(rolling), dynweight::test::two_pass_covariance(rows), 2e-5));
    REQUIRE(near(rolling.mean(), dynweight::test::two_pass_mean(rows), 2e-5));
  }
}

namespace {

// Streams `bars` observations from a seeded generator through the engine and returns the worst
// norm-wise relative error of the covariance, and of the mean in units of the volatility, against
// a two-pass recompute of the same window at 10 checkpoints. `level` is added to every
// observation: 1e4 with a scale of 1e-2 mimics prices near 1e4 fed as levels, where sums of x xᵀ
// would lose 12 of their 16 digits to cancellation.
struct DriftResult {
  double covariance_error = 0.0;
  double mean_error = 0.0;
};

DriftResult stream_drift(Index bars, Index assets, Index window, double level, double scale,
                         Index resync_period) {
  RollingMoments<double> rolling(assets, {.window = window, .resync_period = resync_period});
  std::mt19937_64 engine(42);
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::MatrixXd recent(window, assets);  // the test's own copy of the last W observations
  Eigen::VectorXd x(assets);
  DriftResult result;
  for (Index t = 0; t < bars; ++t) {
    const double common = normal(engine);
    for (Index i = 0; i < assets; ++i) {
      x(i) = level + scale * (double(i + 1) * normal(engine) + 0.5 * common);
    }
    rolling.update(x);
    recent.row(t % window) = x.transpose();
    if ((t + 1) % (bars / 10) != 0)
      continue;
    const Eigen::MatrixXd expected = dynweight::test::two_pass_covariance(recent);
    const Eigen::MatrixXd actual = rolling.covariance();
    result.covariance_error =
        std::max(result.covariance_error,
                 (actual - expected).cwiseAbs().maxCoeff() / expected.cwiseAbs().maxCoeff());
    const Eigen::VectorXd mean_gap =
        (rolling.mean() - dynweight::test::two_pass_mean(recent)).cwiseAbs();
    result.mean_error = std::max(
        result.mean_error, mean_gap.cwiseQuotient(expected.diagonal().cwiseSqrt()).maxCoeff());
  }
  return result;
}

}  // namespace

TEST_CASE("RollingMoments: no drift over 10^6 updates", "[stats][rolling][drift]") {
  const double level = GENERATE(0.0, 1e4);
  const Index resync_period = GENERATE(-1, 0);  // the default shadow resync, and none at all
  const auto result = stream_drift(1'000'000, 6, 50, level, 1e-2, resync_period);
  CAPTURE(level, resync_period, result.covariance_error, result.mean_error);
  CHECK(result.covariance_error <= 1e-9);
  CHECK(result.mean_error <= 1e-9);
  // With the shadow resync the covariance stays at a fresh window's rounding: measured 3.0e-15 to
  // 3.9e-15; without it the rounding gathers, 3.3e-14 and 7.2e-14 at 10⁶ (4.0e-13 at 10⁷). The
  // bound 1.6e-14 (4× the measured) catches a resync that does not take over.
  if (resync_period != 0)
    CHECK(result.covariance_error <= 1.6e-14);
}

TEST_CASE("RollingMoments: no drift over 10^7 updates", "[stats][rolling][drift][long]") {
  const double level = GENERATE(0.0, 1e4);
  const Index resync_period = GENERATE(-1, 0);  // the default shadow resync, and none at all
  const auto result = stream_drift(10'000'000, 6, 50, level, 1e-2, resync_period);
  CAPTURE(level, resync_period, result.covariance_error, result.mean_error);
  CHECK(result.covariance_error <= 1e-9);
  CHECK(result.mean_error <= 1e-9);
}

TEST_CASE("RollingMoments::update does not allocate", "[stats][rolling][allocation]") {
  const Index assets = 20;
  const Index window = 16;
  // One observation per column: a row of a column-major matrix is strided, and Eigen::Ref would
  // copy it into a temporary (the caller's allocation, not the engine's).
  const Eigen::MatrixXd data = dynweight::test::correlated_returns(200, assets, 3).transpose();
  RollingMoments<double> rolling(assets, {.window = window, .resync_period = 5});
  double sink = 0.0;
  dynweight::test::NoAllocationScope scope;
  for (Index t = 0; t < data.cols(); ++t) {
    rolling.update(data.col(t));  // warm-up, full window and shadow resyncs
    if (rolling.count() >= 2)
      sink += rolling.correlation_lower()(assets - 1, 0) + rolling.volatility()(0);
  }
  REQUIRE(scope.allocations() == 0);
  REQUIRE(std::isfinite(sink));
}

TEST_CASE("RollingMoments rejects bad input and stays unchanged", "[stats][rolling][errors]") {
  const Index assets = 4;
  const Eigen::MatrixXd data = dynweight::test::correlated_returns(30, assets, 11);
  RollingMoments<double> rolling(assets, {.window = 10}, {"A", "B", "C", "D"});
  RollingMoments<double> twin(assets, {.window = 10});
  for (Index t = 0; t < 12; ++t) {
    rolling.update(data.row(t).transpose());
    twin.update(data.row(t).transpose());
  }
  const Eigen::VectorXd mean = rolling.mean();
  const Eigen::VectorXd vol = rolling.volatility();
  const Eigen::MatrixXd cov = rolling.covariance_lower();
  const Eigen::MatrixXd corr = rolling.correlation_lower();
  const Eigen::MatrixXd ring = rolling.window_observations();

  Eigen::VectorXd bad = data.row(12).transpose();
  const double value =
      GENERATE(std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
               -std::numeric_limits<double>::infinity());
  bad(2) = value;
  REQUIRE_THROWS_AS(rolling.update(bad), dynweight::Error);
  REQUIRE_THROWS_WITH(rolling.update(bad), Contains("RollingMoments::update") &&
                                               Contains("asset 2 ('C')") && Contains("bar 12"));
  REQUIRE_THROWS_WITH(rolling.update(Eigen::VectorXd::Zero(3)),
                      Contains("returns has 3 entries at bar 12, expected 4"));

  REQUIRE(rolling.bars() == 12);
  REQUIRE(rolling.count() == 10);
  REQUIRE(dynweight::test::identical(rolling.mean(), mean));
  REQUIRE(dynweight::test::identical(rolling.volatility(), vol));
  REQUIRE(dynweight::test::identical(rolling.covariance_lower(), cov));
  REQUIRE(dynweight::test::identical(rolling.correlation_lower(), corr));
  REQUIRE(dynweight::test::identical(rolling.window_observations(), ring));

  // ... and carries on exactly as an engine that never saw the bad bars.
  for (Index t = 12; t < 30; ++t) {
    rolling.update(data.row(t).transpose());
    twin.update(data.row(t).transpose());
  }
  REQUIRE(dynweight::test::identical(rolling.covariance_lower(), twin.covariance_lower()));
}

TEST_CASE("RollingOptions and RollingMoments validate their parameters",
          "[stats][rolling][errors]") {
  REQUIRE_THROWS_WITH((RollingMoments<double>(3, {.window = 1})),
                      Contains("window = 1; must be >= 2"));
  REQUIRE_THROWS_WITH((RollingMoments<double>(3, {.window = 5, .min_periods = 6})),
                      Contains("min_periods = 6"));
  REQUIRE_THROWS_WITH((RollingMoments<double>(0, {.window = 5})), Contains("assets = 0"));
  REQUIRE_THROWS_WITH((RollingMoments<double>(3, {.window = 5}, {"A", "B"})),
                      Contains("names has 2 entries, expected 3"));
  REQUIRE_THROWS_AS((RollingMoments<double>(3, {.window = 5, .resync_period = -2})),
                    dynweight::Error);
}

TEST_CASE("RollingMoments::reset forgets the window", "[stats][rolling]") {
  const Eigen::MatrixXd data = dynweight::test::correlated_returns(40, 3, 5);
  RollingMoments<double> rolling(3, {.window = 8});
  RollingMoments<double> fresh(3, {.window = 8});
  for (Index t = 0; t < 20; ++t)
    rolling.update(data.row(t).transpose());
  rolling.reset();
  REQUIRE(rolling.count() == 0);
  REQUIRE_FALSE(rolling.ready());
  REQUIRE(rolling.mean().array().isNaN().all());
  for (Index t = 20; t < 40; ++t) {
    rolling.update(data.row(t).transpose());
    fresh.update(data.row(t).transpose());
  }
  REQUIRE(dynweight::test::identical(rolling.covariance_lower(), fresh.covariance_lower()));
}

TEST_CASE("RollingMoments::update takes the engine's own vectors as input",
          "[stats][rolling][aliasing]") {
  // Filling a missing bar with the window mean (or variance) passes the engine a reference to a
  // vector the update overwrites: the result must be that of a copy, bit for bit, both while the
  // window fills (Welford's add) and once it is full (the rank-2 replacement, with a resync).
  const Eigen::MatrixXd data = dynweight::test::correlated_returns(40, 4, 11);
  const RollingOptions options{.window = 6, .resync_period = 5};
  RollingMoments<double> rolling(4, options);
  RollingMoments<double> copied(4, options);
  for (Index t = 0; t < 40; ++t) {
    if (t > 0 && t % 3 == 0) {
      const Eigen::VectorXd mean = copied.mean();
      rolling.update(rolling.mean());
      copied.update(mean);
    } else if (t > 1 && t % 7 == 0) {
      const Eigen::VectorXd variance = copied.variance();
      rolling.update(rolling.variance());
      copied.update(variance);
    } else {
      rolling.update(data.row(t).transpose());
      copied.update(data.row(t).transpose());
    }
    INFO("bar " << t);
    REQUIRE(dynweight::test::identical(rolling.mean(), copied.mean()));
    REQUIRE(dynweight::test::identical(rolling.covariance_lower(), copied.covariance_lower()));
    REQUIRE(
        dynweight::test::identical(rolling.window_observations(), copied.window_observations()));
  }
}

TEST_CASE("RollingMoments: values up to input_limit() keep every sum finite, larger are rejected",
          "[stats][rolling][errors]") {
  // Random signs at 0.999 of the limit, through fills, replacements and shadow resyncs: the
  // extreme deviations (2|x|) and the shadow's window sum all stay finite. Just beyond the
  // limit, the update throws and changes nothing.
  const Index n = 3;
  const Index window = 8;
  const double limit = RollingMoments<double>::input_limit(window);
  CHECK(limit == std::sqrt(std::numeric_limits<double>::max()) / 16);
  RollingMoments<double> rolling(n, {.window = window, .resync_period = 3}, {"A", "B", "C"});
  RollingMoments<double> twin(n, {.window = window, .resync_period = 3});
  std::mt19937_64 random(5);
  std::bernoulli_distribution heads(0.7);
  for (Index t = 0; t < 60; ++t) {
    Eigen::VectorXd x(n);
    for (Index i = 0; i < n; ++i)
      x(i) = (heads(random) ? 0.999 : -0.999) * limit;
    rolling.update(x);
    twin.update(x);
    INFO("bar " << t);
    REQUIRE(rolling.mean().allFinite());
    if (t > 0)  // NaN with one observation
      REQUIRE(dynweight::test::lower_triangle_finite(rolling.covariance_lower()));
  }
  Eigen::VectorXd beyond = Eigen::VectorXd::Constant(n, 0.5 * limit);
  beyond(2) = 1.01 * limit;
  REQUIRE_THROWS_WITH(rolling.update(beyond), Contains("returns[2] (asset 2 ('C')) at bar 60") &&
                                                  Contains("must be within ±") &&
                                                  Contains("overflow"));
  REQUIRE(dynweight::test::identical(rolling.covariance_lower(), twin.covariance_lower()));
  REQUIRE(dynweight::test::identical(rolling.window_observations(), twin.window_observations()));
  REQUIRE(rolling.bars() == 60);
}

TEST_CASE("RollingMoments::covariance_step states each plain update exactly",
          "[stats][rolling][lineage]") {
  const Index assets = GENERATE(1, 7, 40);
  const Index window = 12;
  const Index resync = GENERATE(0, 5);  // 5: shadow resyncs complete every few bars
  const Index bars = 6 * window;
  Eigen::MatrixXd data = dynweight::test::correlated_returns(
      bars, assets, 2026 + static_cast<std::uint64_t>(assets), 3.0);
  // Asset 0 halts (a constant price) over bars [40, 58): its window is constant from bar 51.
  for (Index t = 40; t < 58; ++t)
    data(t, 0) = data(39, 0);
  RollingMoments<double> rolling(assets, {.window = window, .resync_period = resync});
  std::uint64_t previous_id = rolling.covariance_id();
  Eigen::MatrixXd previous = Eigen::MatrixXd::Zero(assets, assets);
  Index stepped = 0;
  Index full_updates = 0;  // the documented shadow schedule, by hand: it starts on a full update
  Index shadow = -1;       // k with k % resync == 0 while idle and takes over on its W-th bar
  for (Index t = 0; t < bars; ++t) {
    CAPTURE(assets, resync, t);
    const bool full_before = rolling.count() == window;
    bool resynced = false;
    if (full_before && resync > 0) {
      ++full_updates;
      if (shadow < 0 && full_updates % resync == 0)
        shadow = 0;
      if (shadow >= 0 && ++shadow == window) {
        resynced = true;
        shadow = -1;
      }
    }
    rolling.update(data.row(t).transpose());
    REQUIRE(rolling.covariance_id() != previous_id);
    const Eigen::MatrixXd current = covariance_of(rolling);
    const auto step = rolling.covariance_step();
    // Whether the constant-window rewrite ran: asset 0's last W observations all equal.
    const bool constant = t >= 39 + window - 1 && t < 58;
    // A step exactly on the plain updates: none while filling, on a resync or a constant window.
    REQUIRE(step.has_value() == (full_before && !constant && !resynced));
    if (step) {
      ++stepped;
      REQUIRE(step->from == previous_id);
      REQUIRE(step->scale == 1.0);
      REQUIRE(step->ridge == 0.0);
      REQUIRE(step->weight == 1.0 / double(window - 1));
      const Eigen::VectorXd& p = *step->p;
      const Eigen::VectorXd& q = *step->q;
      const Eigen::MatrixXd moved =
          step->scale * previous + step->weight * (p * q.transpose() + q * p.transpose());
      // The step is the update itself: rounding of one rank-2 update (a few ulps of the largest).
      REQUIRE(near(current, moved, 1e-14));
      // And applied to a vector, it carries a product: Σx from Σ_prev x in O(N).
      const Eigen::VectorXd x = Eigen::VectorXd::LinSpaced(assets, 0.5, 1.5);
      Eigen::VectorXd product = previous * x;
      step->apply(x, product, product);
      REQUIRE(near(product, current * x, 1e-13));
    }
    previous = current;
    previous_id = rolling.covariance_id();
  }
  // With resync 5 the shadow takes over on bars 27, 42 and 57 (57 is also a constant-window bar).
  CHECK(stepped == 5 * window - 8 - (resync == 0 ? 0 : 2));
}

TEST_CASE(
    "RollingMoments: a variance rounded to zero beside a non-zero covariance gives NaN "
    "correlations, never Inf",
    "[stats][rolling]") {
  // The window {(1, 0), (1 + 2⁻⁵², 1)} of asset 0 has variance 2⁻¹⁰⁵ but the rank-2 step leaves
  // it at 0 (to rounding) while the covariance keeps 2⁻⁵³: cov / (σ₀σ₁) would be +Inf.
  RollingMoments<double> moments(2, {.window = 2});
  moments.update(Eigen::Vector2d(0.0, 0.0));
  moments.update(Eigen::Vector2d(1.0, 0.0));
  moments.update(Eigen::Vector2d(1.0 + std::ldexp(1.0, -52), 1.0));
  const Eigen::MatrixXd correlation = moments.correlation();
  CHECK_FALSE(correlation.array().isInf().any());
  if (!(moments.volatility()(0) > 0)) {
    CHECK(std::isnan(correlation(1, 0)));
    CHECK(std::isnan(correlation(0, 0)));
    CHECK(correlation(1, 1) == 1.0);
  }
  // The kernel itself, on such a covariance.
  Eigen::MatrixXd lower(2, 2);
  lower << 0.0, 0.0, 1e-16, 1.0;
  const Eigen::VectorXd volatility = Eigen::Vector2d(0.0, 1.0);
  Eigen::MatrixXd out(2, 2);
  dynweight::detail::correlation_from_covariance(lower, volatility, out);
  CHECK(std::isnan(out(0, 0)));
  CHECK(std::isnan(out(1, 0)));
  CHECK(out(1, 1) == 1.0);
}
