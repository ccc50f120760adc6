#include "dynweight/estimators/rolling_shrinkage.hpp"

#include "dynweight/estimators/constant_correlation.hpp"

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <string>

#include "allocation_counter.hpp"
#include "market_data.hpp"
#include "near.hpp"
#include "reference_csv.hpp"

using Catch::Matchers::Contains;
using dynweight::CrossMomentSource;
using dynweight::Index;
using dynweight::RollingShrinkage;
using dynweight::RollingShrinkageMethod;
using dynweight::test::near;
using dynweight::test::Tolerance;

namespace {

Eigen::MatrixXd read_full_matrix(const std::string& relative, Index n) {
  Eigen::MatrixXd m(n, n);
  for (const auto& row :
       dynweight::test::read_csv_rows(dynweight::test::reference_path(relative), nullptr)) {
    m(std::stol(row.at(0)), std::stol(row.at(1))) = dynweight::test::parse_number(row.at(2));
  }
  return m;
}

// scikit-learn's LedoitWolf / OAS on a T×N window, written out from their definitions with a
// two-pass centring (the independent side of the every-bar comparison).
struct BatchShrinkage {
  Eigen::MatrixXd covariance;
  double intensity;
  double mu;  // r̄ for constant correlation
};

BatchShrinkage batch(const Eigen::MatrixXd& window, RollingShrinkageMethod method) {
  if (method == RollingShrinkageMethod::constant_correlation) {
    // The batch estimator, itself checked against NumPy in constant_correlation_test.cpp.
    dynweight::ConstantCorrelation<double> cc;
    Eigen::MatrixXd shrunk(window.cols(), window.cols());
    const auto result = cc.compute(window, shrunk);
    return {shrunk, result.intensity, result.target_parameter};
  }
  const double t = double(window.rows());
  const double n = double(window.cols());
  const Eigen::MatrixXd y = window.rowwise() - window.colwise().mean();
  const Eigen::MatrixXd s = y.transpose() * y / t;
  const double mu = s.trace() / n;
  const double frobenius = s.squaredNorm();
  double delta = 0.0;
  if (window.cols() > 1) {
    if (method == RollingShrinkageMethod::ledoit_wolf) {
      const double q = y.rowwise().squaredNorm().array().square().sum();
      const double b = (q / t - frobenius) / (n * t);
      const double d = (frobenius - n * mu * mu) / n;
      const double bounded = std::min(b, d);
      delta = bounded == 0 ? 0.0 : bounded / d;
    } else {
      const double alpha = frobenius / (n * n);
      const double den = (t + 1) * (alpha - mu * mu / n);
      delta = den == 0 ? 1.0 : std::min((alpha + mu * mu) / den, 1.0);
    }
  }
  Eigen::MatrixXd shrunk = (1 - delta) * s;
  shrunk.diagonal().array() += delta * mu;
  return {shrunk, delta, mu};
}

// The identity targets have no cross sum: their window-pass runs would repeat the others.
bool same_as_running_sums(RollingShrinkageMethod method, CrossMomentSource source) {
  return method != RollingShrinkageMethod::constant_correlation &&
         source == CrossMomentSource::window_pass;
}

}  // namespace

// LW and OAS against scikit-learn; constant correlation against the NumPy implementation of the
// 2003 paper in the same script (columns cc_shrinkage, cc_rbar).
TEST_CASE("RollingShrinkage matches the reference on every 60-bar window",
          "[estimators][rolling_shrinkage][sklearn]") {
  const auto data = dynweight::test::read_wide("shrinkage/data_rolling.csv");
  const Eigen::MatrixXd observations = data.values.transpose();  // one observation per column
  const Index n = observations.rows();
  std::vector<std::string> header;
  const auto intensities = dynweight::test::read_csv_rows(
      dynweight::test::reference_path("shrinkage/rolling_w60_intensities.csv"), &header);
  const auto method = GENERATE(RollingShrinkageMethod::ledoit_wolf, RollingShrinkageMethod::oas,
                               RollingShrinkageMethod::constant_correlation);
  const int column = method == RollingShrinkageMethod::ledoit_wolf ? 1
                     : method == RollingShrinkageMethod::oas       ? 3
                                                                   : 5;
  const char* suffix = column == 1 ? "lw" : column == 3 ? "oas" : "cc";
  REQUIRE(header.at(std::size_t(column)).find(suffix) == 0);
  const auto source = GENERATE(CrossMomentSource::running_sums, CrossMomentSource::window_pass);
  if (same_as_running_sums(method, source))
    return;
  RollingShrinkage<double> shrinkage(n, {.window = 60}, method, {}, source);
  Eigen::MatrixXd shrunk(n, n);
  std::size_t next = 0;
  for (Index t = 0; t < observations.cols(); ++t) {
    shrinkage.update(observations.col(t));
    const auto result = shrinkage.compute(shrunk);
    if (t < 59) {
      REQUIRE(result.status.code == dynweight::StatusCode::not_ready);
      continue;
    }
    REQUIRE(result.status.ok());
    const auto& row = intensities.at(next++);
    REQUIRE(std::stol(row.at(0)) == t);
    CAPTURE(t, suffix, int(source));
    // Intensities are ratios of O(1) quantities formed from sums that both sides round
    // differently; 1e-12 absolute leaves ~1000 ulps for that.
    CHECK(result.intensity ==
          Approx(std::stod(row.at(std::size_t(column)))).margin(1e-12).epsilon(0));
    CHECK(result.target_parameter ==
          Approx(std::stod(row.at(std::size_t(column) + 1))).epsilon(1e-12));
    if (t == 59 || t == 200 || t == 399) {
      const auto expected = read_full_matrix(
          "shrinkage/rolling_w60_t" + std::to_string(t) + "_" + suffix + "_covariance.csv", n);
      CHECK(near(shrunk, expected, 1e-12));
    }
  }
  CHECK(next == intensities.size());
}

// Every bar, against the batch formulas on the window: through the fused path (the reductions
// gathered inside the covariance update), the shadow resync (every 3 full updates in one run),
// an asset whose price goes stale for longer than the window (its variance is then exactly 0 and
// the update's own reductions are not used), and both output storages; constant correlation by
// both sources of its cross sum.
TEST_CASE("RollingShrinkage equals a batch recompute of the window at every bar",
          "[estimators][rolling_shrinkage]") {
  const Index n = GENERATE(1, 2, 10, 60);
  const Index window = GENERATE(5, 40);
  const auto method = GENERATE(RollingShrinkageMethod::ledoit_wolf, RollingShrinkageMethod::oas,
                               RollingShrinkageMethod::constant_correlation);
  const double level = GENERATE(0.0, 100.0);
  const Index resync = GENERATE(-1, 3);
  const auto source = GENERATE(CrossMomentSource::running_sums, CrossMomentSource::window_pass);
  if (same_as_running_sums(method, source))
    return;
  Eigen::MatrixXd data =
      dynweight::test::correlated_returns(3 * window + 30, n, 99 + std::uint64_t(n), level);
  if (n > 1)  // asset 1 stale from bar W + 5 to bar 2W + 10
    data.col(1).segment(window + 5, window + 5).setConstant(data(window + 4, 1));
  const Eigen::MatrixXd observations = data.transpose();
  RollingShrinkage<double> shrinkage(
      n, {.window = window, .min_periods = 2, .resync_period = resync}, method, {}, source);
  Eigen::MatrixXd shrunk(n, n);
  Eigen::MatrixXd lower_only(n, n);
  for (Index t = 0; t < data.rows(); ++t) {
    shrinkage.update(observations.col(t));
    const auto result = shrinkage.compute(shrunk);
    lower_only.setConstant(7.0);
    const auto lower_result = shrinkage.compute(lower_only, dynweight::OutputStorage::lower);
    const Index count = std::min(t + 1, window);
    if (count < 2) {
      REQUIRE_FALSE(result.status.ok());
      REQUIRE(lower_result.status.code == dynweight::StatusCode::not_ready);
      continue;
    }
    const auto expected = batch(data.middleRows(t + 1 - count, count), method);
    CAPTURE(n, window, level, resync, int(source), t);
    REQUIRE(result.intensity == Approx(expected.intensity).margin(1e-10).epsilon(0));
    REQUIRE(near(shrunk, expected.covariance, 1e-10));
    if (std::isnan(expected.mu)) {  // constant correlation without a pair of live assets
      REQUIRE(std::isnan(result.target_parameter));
    } else {
      REQUIRE(result.target_parameter == Approx(expected.mu).margin(1e-10).epsilon(1e-10));
    }
    REQUIRE(lower_result.intensity == result.intensity);
    for (Index j = 0; j < n; ++j) {
      for (Index i = 0; i < n; ++i)
        REQUIRE(lower_only(i, j) == (i >= j ? shrunk(i, j) : 7.0));
    }
  }  // Ordinary data: the fourth-power sums' rounding check almost never asks for an early resync
  // (once, in 4 of these 128 runs, all at N = 2, W = 5).
  CHECK(shrinkage.forced_resyncs() <= 1);
}

TEST_CASE("RollingShrinkage: a near-constant asset is left out of r̄ as by the batch estimator",
          "[estimators][rolling_shrinkage]") {
  // Asset 0 moves like the others (σ ~ 1e-3) for 2W bars, then returns 1e-4 plus noise of 1e-17
  // (a money-market "asset", whose returns are constant but for rounding): its variance in the
  // window, ~1e-34, is far below what a rolling covariance accurate to ~ε‖S‖ resolves (its own
  // S_00 then holds rounding residue from the livelier bars, ~1e-22). Both estimators count a
  // variance up to 1e-16 of the largest as zero, so both leave the asset out of r̄ and agree to
  // 1e-10 as at every other bar (before, r̄ took the residue's correlations: δ 0.05 off on a
  // real-data case of this kind).
  const Index n = 6;
  const Index window = 20;
  const auto source = GENERATE(CrossMomentSource::running_sums, CrossMomentSource::window_pass);
  Eigen::MatrixXd data = dynweight::test::correlated_returns(6 * window, n, 2024);
  std::mt19937_64 engine(5);
  std::normal_distribution<double> noise(0.0, 1e-17);
  for (Index t = 0; t < data.rows(); ++t)
    data(t, 0) = t < 2 * window ? 0.1 * data(t, 0) : 1e-4 + noise(engine);
  const Eigen::MatrixXd observations = data.transpose();
  RollingShrinkage<double> shrinkage(n, {.window = window},
                                     RollingShrinkageMethod::constant_correlation, {}, source);
  Eigen::MatrixXd shrunk(n, n);
  int near_constant_bars = 0;
  for (Index t = 0; t < data.rows(); ++t) {
    shrinkage.update(observations.col(t));
    if (t + 1 < window)
      continue;
    const auto result = shrinkage.compute(shrunk);
    const auto expected = batch(data.middleRows(t + 1 - window, window),
                                RollingShrinkageMethod::constant_correlation);
    CAPTURE(int(source), t);
    REQUIRE(result.intensity == Approx(expected.intensity).margin(1e-10).epsilon(0));
    REQUIRE(result.target_parameter == Approx(expected.mu).margin(1e-10).epsilon(1e-10));
    REQUIRE(near(shrunk, expected.covariance, 1e-10));
    if (t >= 3 * window) {  // only the near-constant returns in the window
      REQUIRE(result.status.code == dynweight::StatusCode::numerical_issue);
      ++near_constant_bars;
    }
  }
  CHECK(near_constant_bars == 3 * window);
}

namespace {
// scikit-learn's Ledoit–Wolf (or OAS) intensity of the T×N window in long double: the reference
// for data whose level (1e4) is 1e6 times its moves.
double long_double_intensity(const Eigen::MatrixXd& window, RollingShrinkageMethod method) {
  using LD = long double;
  using MatrixLD = Eigen::Matrix<LD, Eigen::Dynamic, Eigen::Dynamic>;
  const Index t = window.rows();
  const Index n = window.cols();
  MatrixLD y = window.cast<LD>();
  const Eigen::Matrix<LD, 1, Eigen::Dynamic> mean = y.colwise().sum() / LD(t);
  y.rowwise() -= mean;
  const MatrixLD s = y.transpose() * y / LD(t);
  const LD mu = s.trace() / LD(n);
  const LD fro = s.squaredNorm();
  if (method == RollingShrinkageMethod::oas) {
    const LD alpha = fro / LD(n * n);
    const LD numerator = alpha + mu * mu;
    const LD denominator = LD(t + 1) * (alpha - mu * mu / LD(n));
    return double(denominator == 0 ? LD(1) : std::min(numerator / denominator, LD(1)));
  }
  LD q = 0;
  for (Index k = 0; k < t; ++k) {
    const LD a = y.row(k).squaredNorm();
    q += a * a;
  }
  const LD beta = (q / LD(t) - fro) / LD(n * t);
  MatrixLD d = s;
  d.diagonal().array() -= mu;
  const LD delta = d.squaredNorm() / LD(n);
  const LD shrink = std::min(beta, delta);
  return double(delta > 0 ? shrink / delta : LD(0));
}
}  // namespace

TEST_CASE(
    "RollingShrinkage: data at a level of 1e4 with moves of 0.01 keeps "
    "the intensity's digits",
    "[estimators][rolling_shrinkage]") {
  // The re-centring c = m − K was taken from the mean rounded at the level (1e4's ulp, 1.8e-12,
  // is 1.8e-10 of a move): Ledoit–Wolf's intensity was 6.8e-10 off at W = 3, with no rounding
  // check firing. c is now formed from the mean's parts, (K_moments − K) + δ, and constant
  // correlation's window pass centres on them, y = (x − K) − δ (it was 1.2e-10 off the batch
  // estimator, by either source, at W = 20).
  const Index n = 4;
  const Index window = GENERATE(3, 20);
  const auto method = GENERATE(RollingShrinkageMethod::ledoit_wolf, RollingShrinkageMethod::oas,
                               RollingShrinkageMethod::constant_correlation);
  const auto source = GENERATE(CrossMomentSource::running_sums, CrossMomentSource::window_pass);
  if (same_as_running_sums(method, source))
    return;
  std::mt19937_64 engine(7);
  std::normal_distribution<double> normal(0.0, 0.01);
  const Index bars = 400;
  Eigen::MatrixXd data(bars, n);
  for (Index t = 0; t < bars; ++t) {
    for (Index i = 0; i < n; ++i)
      data(t, i) = normal(engine) + (i > 0 ? 0.5 * data(t, 0) : 0.0);
  }
  data.array() += 1e4;
  RollingShrinkage<double> rolling(n, {.window = window}, method, {}, source);
  Eigen::MatrixXd shrunk(n, n);
  double worst = 0;
  for (Index t = 0; t < bars; ++t) {
    rolling.update(data.row(t).transpose());
    if (!rolling.ready())
      continue;
    const double intensity = rolling.compute(shrunk).intensity;
    const Eigen::MatrixXd rows = data.middleRows(t - window + 1, window);
    // Constant correlation against the batch estimator, which matched a long-double evaluation
    // of the 2003 formulas (tests/reference/make_shrinkage_reference.py on np.longdouble) to
    // 1e-16 on the bars checked; the identity targets against the long-double formula here.
    const double reference = method == RollingShrinkageMethod::constant_correlation
                                 ? batch(rows, method).intensity
                                 : long_double_intensity(rows, method);
    worst = std::max(worst, std::abs(intensity - reference));
  }
  CAPTURE(window, static_cast<int>(method), static_cast<int>(source));
  // The batch estimators in double are within 5e-14 of the references here.
  CHECK(worst <= 1e-12);
}

TEST_CASE("RollingShrinkage: no drift over 10^6 bars", "[estimators][rolling_shrinkage][drift]") {
  const Index n = 4;
  const Index window = 50;
  const auto method = GENERATE(RollingShrinkageMethod::ledoit_wolf, RollingShrinkageMethod::oas,
                               RollingShrinkageMethod::constant_correlation);
  const auto source = GENERATE(CrossMomentSource::running_sums, CrossMomentSource::window_pass);
  if (same_as_running_sums(method, source))
    return;
  RollingShrinkage<double> shrinkage(n, {.window = window}, method, {}, source);
  std::mt19937_64 engine(5);
  std::normal_distribution<double> normal(0.0, 0.01);
  Eigen::MatrixXd recent(window, n);
  Eigen::VectorXd x(n);
  Eigen::MatrixXd shrunk(n, n);
  const Index bars = 1'000'000;
  for (Index t = 0; t < bars; ++t) {
    const double common = normal(engine);
    for (Index i = 0; i < n; ++i)
      x(i) = 100.0 + normal(engine) * double(i + 1) + common;
    shrinkage.update(x);
    recent.row(t % window) = x.transpose();
    if ((t + 1) % (bars / 5) != 0)
      continue;
    const auto result = shrinkage.compute(shrunk);
    const auto expected = batch(recent, method);
    CAPTURE(t);
    REQUIRE(result.intensity == Approx(expected.intensity).margin(1e-10).epsilon(0));
    REQUIRE(near(shrunk, expected.covariance, 1e-10));
  }
}

TEST_CASE("RollingShrinkage: update and compute do not allocate",
          "[estimators][rolling_shrinkage][allocation]") {
  const Index n = 12;
  const Eigen::MatrixXd observations = dynweight::test::correlated_returns(100, n, 1).transpose();
  const auto method = GENERATE(RollingShrinkageMethod::ledoit_wolf, RollingShrinkageMethod::oas,
                               RollingShrinkageMethod::constant_correlation);
  const auto source = GENERATE(CrossMomentSource::running_sums, CrossMomentSource::window_pass);
  if (same_as_running_sums(method, source))
    return;
  // resync_period 30: the exact rebuilds (constant correlation's matrix product) run in scope.
  RollingShrinkage<double> shrinkage(n, {.window = 20, .resync_period = 30}, method, {}, source);
  Eigen::MatrixXd shrunk(n, n);
  double sum = 0;
  dynweight::test::NoAllocationScope scope;
  for (Index t = 0; t < observations.cols(); ++t) {
    shrinkage.update(observations.col(t));
    sum += shrinkage.compute(shrunk).intensity;
  }
  REQUIRE(scope.allocations() == 0);
  REQUIRE(std::isfinite(sum));
}

TEST_CASE("RollingShrinkage rejects bad input and stays unchanged",
          "[estimators][rolling_shrinkage][errors]") {
  const Index n = 3;
  const Eigen::MatrixXd observations = dynweight::test::correlated_returns(40, n, 2).transpose();
  const auto method = GENERATE(RollingShrinkageMethod::ledoit_wolf, RollingShrinkageMethod::oas,
                               RollingShrinkageMethod::constant_correlation);
  const auto source = GENERATE(CrossMomentSource::running_sums, CrossMomentSource::window_pass);
  if (same_as_running_sums(method, source))
    return;
  RollingShrinkage<double> shrinkage(n, {.window = 10}, method, {"A", "B", "C"}, source);
  RollingShrinkage<double> twin(n, {.window = 10}, method, {}, source);
  for (Index t = 0; t < 15; ++t) {
    shrinkage.update(observations.col(t));
    twin.update(observations.col(t));
  }
  Eigen::VectorXd bad = observations.col(15);
  bad(1) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_WITH(shrinkage.update(bad), Contains("asset 1 ('B')") && Contains("bar 15"));
  Eigen::MatrixXd wrong(2, 3);
  REQUIRE_THROWS_WITH(shrinkage.compute(wrong), Contains("shrunk (rows) has 2 entries"));
  for (Index t = 15; t < 40; ++t) {
    shrinkage.update(observations.col(t));
    twin.update(observations.col(t));
  }
  Eigen::MatrixXd a(n, n), b(n, n);
  const auto ra = shrinkage.compute(a);
  const auto rb = twin.compute(b);
  REQUIRE(ra.intensity == rb.intensity);
  REQUIRE(dynweight::test::identical(a, b));
}

TEST_CASE(
    "RollingShrinkage: values up to input_limit() give a finite shrunk covariance, larger "
    "are rejected",
    "[estimators][rolling_shrinkage][errors]") {
  const Index n = 4;
  const Index window = 12;
  const auto method = GENERATE(RollingShrinkageMethod::ledoit_wolf, RollingShrinkageMethod::oas,
                               RollingShrinkageMethod::constant_correlation);
  const auto source = GENERATE(CrossMomentSource::running_sums, CrossMomentSource::window_pass);
  if (same_as_running_sums(method, source))
    return;
  RollingShrinkage<double> shrinkage(n, {.window = window, .resync_period = 5}, method, {}, source);
  const double limit = shrinkage.input_limit();
  CHECK(limit == std::sqrt(std::sqrt(std::numeric_limits<double>::max() /
                                     (64.0 * double(window) * double(n * n)))));
  std::mt19937_64 random(13);
  std::bernoulli_distribution heads(0.6);
  Eigen::MatrixXd shrunk(n, n);
  for (Index t = 0; t < 50; ++t) {
    Eigen::VectorXd x(n);
    for (Index i = 0; i < n; ++i)
      x(i) = (heads(random) ? 0.999 : -0.999) * limit;
    shrinkage.update(x);
    if (!shrinkage.ready())
      continue;
    INFO("bar " << t);
    const auto result = shrinkage.compute(shrunk);
    REQUIRE(result.status.ok());
    REQUIRE(std::isfinite(result.intensity));
    REQUIRE(shrunk.allFinite());
  }
  const Eigen::MatrixXd before = shrunk;
  const double intensity = shrinkage.compute(shrunk).intensity;
  Eigen::VectorXd beyond = Eigen::VectorXd::Zero(n);
  beyond(3) = 1.01 * limit;
  REQUIRE_THROWS_WITH(shrinkage.update(beyond),
                      Contains("returns[3]") && Contains("fourth-power sums"));
  // Unchanged: the same window gives the same output.
  CHECK(shrinkage.compute(shrunk).intensity == intensity);
  CHECK(dynweight::test::identical(shrunk, before));
}

TEST_CASE("RollingShrinkage: constant correlation near the input limit gives a finite result",
          "[estimators][rolling_shrinkage][errors]") {
  // Values at 0.999 of the limit with a nearly constant asset (relative moves of 1e-8): the running
  // sums' re-centring terms (c'³/s) overflow, so the window pass decides; the result is finite and
  // the intensity is the window pass's own.
  const Index n = 3;
  const Index window = 8;
  Eigen::MatrixXd observations(n, window + 1);
  RollingShrinkage<double> probe(n, {.window = window},
                                 RollingShrinkageMethod::constant_correlation);
  const double limit = 0.999 * probe.input_limit();
  observations.col(0).setConstant(-limit);
  const int p0[8] = {1, 0, 0, 1, 1, 0, 1, 0};
  const int p1[8] = {1, 0, 1, 0, 1, 0, 1, 0};
  const int p2[8] = {1, 1, 0, 0, 1, 0, 0, 1};
  for (Index t = 0; t < window; ++t) {
    observations(0, t + 1) = p0[t] ? limit : limit * (1 - 1e-8);
    observations(1, t + 1) = p1[t] ? limit : -limit;
    observations(2, t + 1) = p2[t] ? limit : -limit / 2;
  }
  dynweight::ConstantCorrelationTerms terms[2];
  const auto run = [&](CrossMomentSource source, Eigen::MatrixXd& out) {
    RollingShrinkage<double> shrinkage(n, {.window = window},
                                       RollingShrinkageMethod::constant_correlation, {}, source);
    for (Index t = 0; t < observations.cols(); ++t)
      shrinkage.update(observations.col(t));
    const auto result = shrinkage.compute(out);
    terms[source == CrossMomentSource::window_pass ? 1 : 0] = shrinkage.terms();
    return result;
  };
  Eigen::MatrixXd running(n, n), window_pass(n, n);
  const auto a = run(CrossMomentSource::running_sums, running);
  const auto b = run(CrossMomentSource::window_pass, window_pass);
  // ρ̂ itself is the window pass's (the intensity clamps to 1 either way).
  CHECK(terms[0].rho_hat == Approx(terms[1].rho_hat).epsilon(1e-12));
  CHECK(a.status.code == b.status.code);
  CHECK(std::isfinite(a.intensity));
  CHECK(a.intensity == b.intensity);
  CHECK(running.allFinite());
  CHECK(dynweight::test::identical(running, window_pass));
}

// The running sums' cross sum of ρ̂ is re-centred from their reference point K' (the first
// observation, until the first rebuild 16 W full bars later) on the window's mean, and they carry
// the rounding of every observation they have seen since that rebuild. A permanent level shift of
// ~100σ leaves the mean far from K'; one bad print of ~1000σ leaves its fourth powers' rounding in
// the sums after it has left the window. Without the guard, ρ̂ was off by 1e-7 and 5e-7 relative
// there (the intensity 5e-8 and 2e-7 away from the batch estimator's, the shrunk covariance 7e-9
// and 6e-8 relative) while the window pass stayed within 1e-11; with it, those bars take the
// window pass and the others keep the running sums.
TEST_CASE(
    "RollingShrinkage: constant correlation by running sums after a level shift or a bad "
    "print equals the window pass and the batch estimator",
    "[estimators][rolling_shrinkage]") {
  const bool level_shift = GENERATE(true, false);
  const Index n = level_shift ? 12 : 20;
  const Index window = level_shift ? 100 : 40;
  const Index bars = 1000;
  const Index event = level_shift ? 100 : 300;
  Eigen::MatrixXd data = dynweight::test::one_factor_returns(bars, n, 31);  // bars in rows
  if (level_shift)
    data.bottomRows(bars - event).array() += 1.0;  // every level moves by ~100σ and stays
  else
    data.row(event).array() += 10.0;  // one bad print of ~1000σ on every asset
  const auto cc = RollingShrinkageMethod::constant_correlation;
  RollingShrinkage<double> running(n, {.window = window}, cc, {}, CrossMomentSource::running_sums);
  RollingShrinkage<double> window_pass(n, {.window = window}, cc, {},
                                       CrossMomentSource::window_pass);
  Eigen::MatrixXd a(n, n), b(n, n);
  for (Index t = 0; t < bars; ++t) {
    running.update(data.row(t).transpose());
    window_pass.update(data.row(t).transpose());
    if (!running.ready())
      continue;
    if (t < event)  // well-conditioned sums: the running sums alone
      REQUIRE(running.window_pass_fallbacks() == 0);
    const auto ra = running.compute(a);
    const auto rb = window_pass.compute(b);
    const auto expected = batch(data.middleRows(t + 1 - window, window), cc);
    CAPTURE(level_shift, t);
    // Against the window pass: the same sums to rounding (6e-14 measured).
    REQUIRE(ra.intensity == Approx(rb.intensity).margin(1e-12).epsilon(0));
    REQUIRE(near(a, b, 1e-12));
    // Against the batch estimator: the contract.
    REQUIRE(ra.intensity == Approx(expected.intensity).margin(1e-10).epsilon(0));
    REQUIRE(near(a, expected.covariance, 1e-10));
  }
  CHECK(running.window_pass_fallbacks() > 0);
}

// π̂'s fourth-power sum Q comes from the sums Σ a_t, Σ a_t², Σ a_t u_t about K (a_t = ‖u_t‖²),
// re-centred on the window's mean and re-accumulated every W bars. A bad print's a² leaves its
// rounding in Σ a_t² after it has left the window, and a level shift moves the mean far from K:
// before the guard, the intensity was off the batch estimator's by 2.7e-7 (Ledoit–Wolf) and 2.8e-6
// (constant correlation, either cross-moment source) after a 1000σ print on these data.
TEST_CASE(
    "RollingShrinkage: the fourth-power sums after a bad print or a level shift still give "
    "the batch intensity",
    "[estimators][rolling_shrinkage]") {
  const bool level_shift = GENERATE(false, true);
  const auto method =
      GENERATE(RollingShrinkageMethod::ledoit_wolf, RollingShrinkageMethod::constant_correlation);
  const auto source = GENERATE(CrossMomentSource::window_pass, CrossMomentSource::running_sums);
  if (method == RollingShrinkageMethod::ledoit_wolf && source == CrossMomentSource::running_sums)
    return;  // the source is for constant correlation only
  const Index n = 20;
  const Index window = 40;
  const Index bars = 400;
  const Index event = 300;
  Eigen::MatrixXd data = dynweight::test::one_factor_returns(bars, n, 32);  // bars in rows
  if (level_shift)
    data.bottomRows(bars - event).array() += 1.0;  // every level moves by ~100σ and stays
  else
    data.row(event).array() += 10.0;  // one bad print of ~1000σ on every asset
  RollingShrinkage<double> shrinkage(n, {.window = window}, method, {}, source);
  Eigen::MatrixXd out(n, n);
  for (Index t = 0; t < bars; ++t) {
    shrinkage.update(data.row(t).transpose());
    if (!shrinkage.ready())
      continue;
    if (t < event)
      REQUIRE(shrinkage.forced_resyncs() == 0);
    const auto result = shrinkage.compute(out);
    const auto expected = batch(data.middleRows(t + 1 - window, window), method);
    CAPTURE(level_shift, method, source, t);
    REQUIRE(result.intensity == Approx(expected.intensity).margin(1e-10).epsilon(0));
    REQUIRE(near(out, expected.covariance, 1e-10));
  }
  CHECK(shrinkage.forced_resyncs() > 0);
}

TEST_CASE("RollingShrinkage::update takes the window's own mean as input",
          "[estimators][rolling_shrinkage][aliasing]") {
  // A missing bar filled with moments().mean(), which the window's update overwrites before the
  // shrinkage's own sums read the input: the result must be that of a copy, bit for bit.
  const Index n = 4;
  const Eigen::MatrixXd observations = dynweight::test::correlated_returns(60, n, 8).transpose();
  const auto method = GENERATE(RollingShrinkageMethod::ledoit_wolf, RollingShrinkageMethod::oas,
                               RollingShrinkageMethod::constant_correlation);
  const auto source = GENERATE(CrossMomentSource::running_sums, CrossMomentSource::window_pass);
  if (same_as_running_sums(method, source))
    return;
  RollingShrinkage<double> own(n, {.window = 10, .resync_period = 7}, method, {}, source);
  RollingShrinkage<double> copied(n, {.window = 10, .resync_period = 7}, method, {}, source);
  Eigen::MatrixXd a(n, n), b(n, n);
  for (Index t = 0; t < observations.cols(); ++t) {
    if (t > 0 && t % 4 == 0) {
      const Eigen::VectorXd mean = copied.moments().mean();
      own.update(own.moments().mean());
      copied.update(mean);
    } else {
      own.update(observations.col(t));
      copied.update(observations.col(t));
    }
    if (!own.ready())
      continue;
    INFO("bar " << t);
    const auto ra = own.compute(a);
    const auto rb = copied.compute(b);
    REQUIRE(ra.intensity == rb.intensity);
    REQUIRE(dynweight::test::identical(a, b));
  }
}

TEST_CASE("RollingShrinkage: tiny returns give the intensity of ordinary ones",
          "[estimators][rolling_shrinkage]") {
  // The running fourth-power sums (Σ‖y‖⁴, ‖S‖²_F) underflow long before S does: at returns of
  // 1e-80 Ledoit–Wolf gave δ = 0.3 off and constant correlation 1, with status `success`. Below
  // a largest variance of 2^(0.4 min_exponent) (1.5e-123) `compute()` takes the batch estimator
  // on the window, which scales it by a power of two, so δ is that of the same data at scale 1.
  const Index n = 6;
  const Index window = 30;
  const auto method = GENERATE(RollingShrinkageMethod::ledoit_wolf, RollingShrinkageMethod::oas,
                               RollingShrinkageMethod::constant_correlation);
  const auto source = GENERATE(CrossMomentSource::running_sums, CrossMomentSource::window_pass);
  if (same_as_running_sums(method, source))
    return;
  const Eigen::MatrixXd observations = dynweight::test::correlated_returns(80, n, 5).transpose();
  RollingShrinkage<double> base(n, {.window = window}, method, {}, source);
  std::vector<dynweight::ShrinkageResult> base_results;
  std::vector<Eigen::MatrixXd> base_shrunk;
  Eigen::MatrixXd shrunk(n, n);
  for (Index t = 0; t < observations.cols(); ++t) {
    base.update(observations.col(t));
    base_results.push_back(base.compute(shrunk));
    base_shrunk.push_back(shrunk);
  }
  REQUIRE(base.window_estimates() == 0);
  for (const double c : {1e-50, 1e-80, 1e-100, std::ldexp(1.0, -400), 1e-140}) {
    CAPTURE(int(method), int(source), c);
    RollingShrinkage<double> tiny(n, {.window = window}, method, {}, source);
    Eigen::MatrixXd lower(n, n);
    std::uint64_t computed = 0;
    for (Index t = 0; t < observations.cols(); ++t) {
      CAPTURE(t);
      tiny.update(c * observations.col(t));
      const auto result = tiny.compute(shrunk);
      const auto& expected = base_results[std::size_t(t)];
      REQUIRE(result.status.code == expected.status.code);
      if (!result.status.ok())
        continue;
      ++computed;
      // Both sides round differently (the batch estimator's two-pass centring against the
      // running sums at scale 1): the every-bar contract's 1e-10.
      CHECK(result.intensity == Approx(expected.intensity).margin(1e-10).epsilon(0));
      CHECK(near(Eigen::MatrixXd(shrunk / (c * c)), base_shrunk[std::size_t(t)], 1e-10));
      lower.setConstant(7.0);
      CHECK(tiny.compute(lower, dynweight::OutputStorage::lower).intensity == result.intensity);
      for (Index j = 0; j < n; ++j) {
        for (Index i = 0; i < n; ++i)
          REQUIRE(lower(i, j) == (i >= j ? shrunk(i, j) : 7.0));
      }
      if (c != 1e-50)  // the batch estimator's S is not the window's running one: no step
        CHECK_FALSE(tiny.output_step());
    }
    // At 1e-50 the variances (~1e-104) are above the threshold, the others below it.
    CHECK(tiny.window_estimates() == (c == 1e-50 ? 0 : 2 * computed));
  }
}

TEST_CASE("RollingShrinkage: tiny returns between ordinary ones",
          "[estimators][rolling_shrinkage]") {
  // Ordinary returns, then 1e-90 times them for 60 bars, then ordinary again: every bar against
  // the test's own formulas on the window, which is scaled by 2^300 (exactly) when it holds only
  // tiny returns. The batch path serves the bars whose window holds tiny returns only; once an
  // ordinary return enters, the running sums serve again, and the second tiny stretch does not
  // allocate (the batch estimator's buffers were sized by the first).
  const Index n = 5;
  const Index window = 20;
  const auto method = GENERATE(RollingShrinkageMethod::ledoit_wolf, RollingShrinkageMethod::oas,
                               RollingShrinkageMethod::constant_correlation);
  const auto source = GENERATE(CrossMomentSource::running_sums, CrossMomentSource::window_pass);
  if (same_as_running_sums(method, source))
    return;
  Eigen::MatrixXd data = dynweight::test::correlated_returns(240, n, 8);
  const auto tiny_bars = [](Index t) { return (t >= 40 && t < 100) || (t >= 160 && t < 220); };
  for (Index t = 0; t < data.rows(); ++t) {
    if (tiny_bars(t))
      data.row(t) *= 1e-90;
  }
  const Eigen::MatrixXd observations = data.transpose();
  RollingShrinkage<double> shrinkage(n, {.window = window}, method, {}, source);
  Eigen::MatrixXd shrunk(n, n);
  std::size_t allocations = 0;
  std::uint64_t tiny_windows = 0;
  for (Index t = 0; t < data.rows(); ++t) {
    CAPTURE(int(method), int(source), t);
    dynweight::ShrinkageResult result;
    {
      std::optional<dynweight::test::NoAllocationScope> scope;
      if (t >= 160)  // the first tiny stretch sized the batch estimator's buffers
        scope.emplace();
      shrinkage.update(observations.col(t));
      result = shrinkage.compute(shrunk);
      if (scope)
        allocations += scope->allocations();
    }
    if (t + 1 < window)
      continue;
    bool all_tiny = true;
    for (Index k = t + 1 - window; k <= t; ++k)
      all_tiny = all_tiny && tiny_bars(k);
    tiny_windows += all_tiny ? 1 : 0;
    const double up = all_tiny ? std::ldexp(1.0, 300) : 1.0;
    const auto expected = batch(up * data.middleRows(t + 1 - window, window), method);
    REQUIRE(result.intensity == Approx(expected.intensity).margin(1e-10).epsilon(0));
    REQUIRE(near(Eigen::MatrixXd(shrunk * (up * up)), expected.covariance, 1e-10));
    REQUIRE(shrinkage.window_estimates() == tiny_windows);
  }
  CHECK(tiny_windows == 2 * (60 - window + 1));
  CHECK(allocations == 0);
}

TEST_CASE("RollingShrinkage<float>: tiny returns give the intensity of ordinary ones",
          "[estimators][rolling_shrinkage][float]") {
  // In float the sums underflow from returns of ~1e-10 (δ 0.46 off at 1.5e-11 in a probe); the
  // threshold is a largest variance of 2^-50 (8.9e-16). Against double at scale 1, to float's
  // rounding (the batch float test's 1e-4).
  const Index n = 6;
  const auto method = GENERATE(RollingShrinkageMethod::ledoit_wolf, RollingShrinkageMethod::oas,
                               RollingShrinkageMethod::constant_correlation);
  const Eigen::MatrixXd observations = dynweight::test::correlated_returns(60, n, 5).transpose();
  RollingShrinkage<double> reference(n, {.window = 30}, method);
  RollingShrinkage<float> tiny(n, {.window = 30}, method);
  Eigen::MatrixXd shrunk(n, n);
  Eigen::MatrixXf shrunk_float(n, n);
  for (Index t = 0; t < observations.cols(); ++t) {
    CAPTURE(int(method), t);
    reference.update(observations.col(t));
    tiny.update((1e-12 * observations.col(t)).cast<float>());
    const auto expected = reference.compute(shrunk);
    const auto result = tiny.compute(shrunk_float);
    REQUIRE(result.status.code == expected.status.code);
    if (expected.status.ok())
      CHECK(result.intensity == Approx(expected.intensity).margin(1e-4));
  }
  CHECK(tiny.window_estimates() > 0);
}

TEST_CASE("RollingShrinkage on a constant window", "[estimators][rolling_shrinkage]") {
  RollingShrinkage<double> lw(3, {.window = 5}, RollingShrinkageMethod::ledoit_wolf);
  RollingShrinkage<double> oas(3, {.window = 5}, RollingShrinkageMethod::oas);
  const auto source = GENERATE(CrossMomentSource::running_sums, CrossMomentSource::window_pass);
  RollingShrinkage<double> cc(3, {.window = 5}, RollingShrinkageMethod::constant_correlation, {},
                              source);
  const Eigen::Vector3d x(1.0, 2.0, 3.0);
  Eigen::Matrix3d a, b, c;
  for (int t = 0; t < 8; ++t) {
    lw.update(x);
    oas.update(x);
    cc.update(x);
  }
  const auto ra = lw.compute(a);
  const auto rb = oas.compute(b);
  const auto rc = cc.compute(c);
  // As ConstantCorrelation: no live pair, so r̄ is NaN, the target is S and δ = 0.
  CHECK(rc.intensity == 0.0);
  CHECK(std::isnan(rc.target_parameter));
  CHECK(rc.status.code == dynweight::StatusCode::numerical_issue);
  CHECK(c.isZero(0.0));
  CHECK(ra.intensity == 0.0);  // scikit-learn's conventions when S is already μI (here 0)
  CHECK(rb.intensity == 1.0);
  CHECK(ra.status.code == dynweight::StatusCode::numerical_issue);  // μ = 0, as the batch ones
  CHECK(rb.status.code == dynweight::StatusCode::numerical_issue);
  CHECK(a.isZero(0.0));
  CHECK(b.isZero(0.0));
}

TEST_CASE("RollingShrinkage::output_step states how the shrunk covariance moved",
          "[estimators][rolling_shrinkage][lineage]") {
  const Index n = GENERATE(3, 30);
  const Index window = 25;
  const auto method = GENERATE(RollingShrinkageMethod::ledoit_wolf, RollingShrinkageMethod::oas,
                               RollingShrinkageMethod::constant_correlation);
  const Eigen::MatrixXd observations =
      dynweight::test::correlated_returns(4 * window, n, 77 + std::uint64_t(n), 0.5).transpose();
  RollingShrinkage<double> shrinkage(n, {.window = window, .resync_period = 0}, method);
  const bool identity = method != RollingShrinkageMethod::constant_correlation;
  Eigen::MatrixXd shrunk(n, n), previous(n, n);
  std::uint64_t previous_id = 0;
  bool has_previous = false;
  Index stepped = 0;
  const Eigen::VectorXd x = Eigen::VectorXd::LinSpaced(n, 2.0, 0.5);
  for (Index t = 0; t < observations.cols(); ++t) {
    CAPTURE(n, t);
    shrinkage.update(observations.col(t));
    REQUIRE_FALSE(shrinkage.output_step().has_value());  // the window moved past the last output
    if (t % 10 == 7) {  // skip the output on some bars: the next one is two updates away
      has_previous = false;
      continue;
    }
    if (!shrinkage.compute(shrunk).status.ok())
      continue;
    REQUIRE(shrinkage.output_id() != previous_id);
    const auto step = shrinkage.output_step();
    const bool expected_step = identity && has_previous && t >= window;
    REQUIRE(step.has_value() == expected_step);
    if (step) {
      ++stepped;
      REQUIRE(step->from == previous_id);
      Eigen::MatrixXd moved = step->scale * previous;
      moved.diagonal().array() += step->ridge;
      moved += step->weight * (*step->p * step->q->transpose() + *step->q * step->p->transpose());
      // Two roundings of a shrink and one of the rank-2 update: ~1e-15 of the largest entry.
      REQUIRE(near(shrunk, moved, 1e-13));
      Eigen::VectorXd product = previous * x;
      step->apply(x, product, product);
      REQUIRE(near(product, shrunk * x, 1e-13));
    }
    // A second output of the same window: a step of scale 1 (to rounding) and no rank-2 term.
    const std::uint64_t first_id = shrinkage.output_id();
    Eigen::MatrixXd again(n, n);
    shrinkage.compute(again);
    REQUIRE(shrinkage.output_id() != first_id);
    if (identity) {
      const auto same = shrinkage.output_step();
      REQUIRE(same.has_value());
      REQUIRE(same->from == first_id);
      REQUIRE(same->weight == 0.0);
      REQUIRE(same->scale == Approx(1.0).epsilon(1e-14));
      REQUIRE(std::abs(same->ridge) <= 1e-14 * shrunk.diagonal().maxCoeff());
      REQUIRE(near(again, shrunk, 1e-14));
    } else {
      REQUIRE_FALSE(shrinkage.output_step().has_value());
    }
    previous = again;
    previous_id = shrinkage.output_id();
    has_previous = true;
  }
  CHECK(stepped >= (identity ? 2 * window : 0));
}

TEST_CASE("RollingShrinkage: the automatic cross-moment source follows W against 2N",
          "[estimators][rolling_shrinkage]") {
  const auto cc = RollingShrinkageMethod::constant_correlation;
  const auto source = [&](Index n, Index window, RollingShrinkageMethod method, auto... chosen) {
    return RollingShrinkage<double>(n, {.window = window}, method, {}, chosen...)
        .cross_moment_source();
  };
  CHECK(source(10, 20, cc) == CrossMomentSource::window_pass);
  CHECK(source(10, 21, cc) == CrossMomentSource::running_sums);
  CHECK(source(500, 250, cc) == CrossMomentSource::window_pass);
  CHECK(source(100, 250, cc) == CrossMomentSource::running_sums);
  CHECK(source(100, 250, cc, CrossMomentSource::window_pass) == CrossMomentSource::window_pass);
  CHECK(source(500, 250, cc, CrossMomentSource::running_sums) == CrossMomentSource::running_sums);
  // The identity targets keep no cross sums whatever is asked.
  CHECK(source(500, 250, RollingShrinkageMethod::ledoit_wolf, CrossMomentSource::window_pass) ==
        CrossMomentSource::running_sums);
}
