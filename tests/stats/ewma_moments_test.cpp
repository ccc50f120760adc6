#include "dynweight/stats/ewma_moments.hpp"

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "allocation_counter.hpp"
#include "market_data.hpp"
#include "near.hpp"
#include "reference_csv.hpp"

using Catch::Matchers::Contains;
using dynweight::EwmaDecay;
using dynweight::EwmaEstimator;
using dynweight::EwmaMoments;
using dynweight::EwmaOptions;
using dynweight::Index;
using dynweight::test::near;
using dynweight::test::Tolerance;

namespace {

constexpr double nan_value = std::numeric_limits<double>::quiet_NaN();

using LongMatrix = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic>;
using LongVector = Eigen::Matrix<long double, Eigen::Dynamic, 1>;

// Catch prints doubles in fixed notation; errors are read in scientific notation.
std::string scientific(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3e", value);
  return text;
}

Eigen::MatrixXd lower_of(const Eigen::MatrixXd& m) {
  return m.triangularView<Eigen::Lower>();
}

template <class Scalar>
Eigen::MatrixXd covariance_of(const EwmaMoments<Scalar>& ewma) {
  return Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>(ewma.covariance())
      .template cast<double>();
}

template <class Scalar>
Eigen::MatrixXd correlation_of(const EwmaMoments<Scalar>& ewma) {
  return Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>(ewma.correlation())
      .template cast<double>();
}

// Worst difference over the lower triangle in units of √(E_ii E_jj) (a correlation-scale error,
// the measure in which pandas' rounding is bounded, see tests/reference/data/stats/README.md);
// +inf when the NaN patterns differ. For a vector of variances it is the worst relative error.
double scaled_covariance_error(const Eigen::MatrixXd& actual, const Eigen::MatrixXd& expected) {
  double worst = 0.0;
  for (Index j = 0; j < expected.cols(); ++j) {
    for (Index i = j; i < expected.rows(); ++i) {
      if (std::isnan(actual(i, j)) || std::isnan(expected(i, j))) {
        if (std::isnan(actual(i, j)) != std::isnan(expected(i, j)))
          return std::numeric_limits<double>::infinity();
        continue;
      }
      const double scale = std::sqrt(expected(i, i) * expected(j, j));
      const double diff = std::abs(actual(i, j) - expected(i, j));
      worst = std::max(worst, scale > 0 ? diff / scale : diff == 0 ? 0.0 : 1.0);
    }
  }
  return worst;
}

double relative_variance_error(const Eigen::VectorXd& actual, const Eigen::VectorXd& expected) {
  return scaled_covariance_error(Eigen::MatrixXd(actual.asDiagonal()),
                                 Eigen::MatrixXd(expected.asDiagonal()));
}

// ---------------------------------------------------------------------------------------------
// pandas reference (tests/reference/data/stats, pandas 1.5.3)

struct PandasParameter {
  std::string tag;  // as in the file names
  EwmaDecay decay;
};

std::vector<PandasParameter> mean_parameters() {
  return {{"halflife10", EwmaDecay::from_halflife(10)},
          {"span30", EwmaDecay::from_span(30)},
          {"com5", EwmaDecay::from_center_of_mass(5)},
          {"alpha0.2", EwmaDecay::from_alpha(0.2)}};
}

}  // namespace

TEST_CASE("EwmaMoments matches pandas ewm().mean()", "[stats][ewma][pandas]") {
  const auto returns = dynweight::test::read_vector_series("stats/returns_simple.csv", 4);
  REQUIRE(returns.size() == 250);
  const auto parameter_index = GENERATE(0, 1, 2, 3);
  const bool adjust = GENERATE(true, false);
  const PandasParameter parameter = mean_parameters().at(static_cast<std::size_t>(parameter_index));
  const auto mean = dynweight::test::read_vector_series(
      "stats/ewm_" + parameter.tag + "_adjust" + std::to_string(int(adjust)) + "_mean.csv", 4);
  REQUIRE(mean.size() == 250);

  EwmaMoments<double> ewma(4, {.decay = parameter.decay, .adjust = adjust});
  double worst = 0.0;
  for (const auto& [bar, r] : returns) {
    CAPTURE(parameter.tag, adjust, bar);
    ewma.update(r);
    REQUIRE(ewma.ready());
    // pandas forms (w m + v x)/(w + v) in double, we m + (1 − ρ)(x − m): both round at a few ulps
    // of the data, which near a zero mean is many ulps of the mean (worst measured 1.2e-14
    // max-norm relative); 1e-12 leaves a factor ~80.
    const auto result = near(ewma.mean(), mean.at(bar), 1e-12);
    CHECK(result);
    worst = std::max(worst, (ewma.mean() - mean.at(bar)).cwiseAbs().maxCoeff() /
                                mean.at(bar).cwiseAbs().maxCoeff());
  }
  CAPTURE(parameter.tag, adjust, scientific(worst));
  CHECK(worst <= 1e-12);
}

TEST_CASE("EwmaMoments matches pandas ewm().var/std/cov/corr", "[stats][ewma][pandas]") {
  const auto returns = dynweight::test::read_vector_series("stats/returns_simple.csv", 4);
  const bool use_halflife = GENERATE(true, false);
  const bool adjust = GENERATE(true, false);
  const bool bias = GENERATE(true, false);
  const PandasParameter parameter =
      use_halflife ? PandasParameter{"halflife10", EwmaDecay::from_halflife(10)}
                   : PandasParameter{"alpha0.2", EwmaDecay::from_alpha(0.2)};
  const std::string prefix = "stats/ewm_" + parameter.tag + "_adjust" + std::to_string(int(adjust));
  const std::string tag = prefix + "_bias" + std::to_string(int(bias));
  const auto var = dynweight::test::read_vector_series(tag + "_var.csv", 4);
  const auto cov = dynweight::test::read_matrix_series(tag + "_cov.csv", 4);
  const auto corr = dynweight::test::read_matrix_series(prefix + "_corr.csv", 4);
  REQUIRE(var.size() == 250);
  REQUIRE(cov.size() == 250);
  REQUIRE(corr.size() == 250);

  EwmaMoments<double> ewma(4, {.decay = parameter.decay, .adjust = adjust, .bias = bias},
                           {"A", "B", "C", "D"});
  double worst_variance = 0.0;
  double worst_covariance = 0.0;
  double worst_correlation = 0.0;
  for (const auto& [bar, r] : returns) {
    CAPTURE(tag, bar);
    ewma.update(r);
    // NaN exactly where pandas has NaN: the unbiased statistics and every correlation at bar 0.
    const double variance_error = relative_variance_error(ewma.variance(), var.at(bar));
    const double volatility_error =
        relative_variance_error(ewma.volatility(), var.at(bar).cwiseSqrt());
    const double covariance_error = scaled_covariance_error(covariance_of(ewma), cov.at(bar));
    const Eigen::MatrixXd correlation = lower_of(correlation_of(ewma));
    // pandas' ewmcov is the same recursion in double (pandas forms the mean and the centred
    // products in another order), so both sit a few ulps from the exact values: worst measured
    // 1.3e-15 for cov/var in units of √(S_ii S_jj) and 9e-16 absolute for corr. 1e-13 leaves a
    // factor ~80 for other compilers and FMA contraction.
    const auto correlation_near = near(correlation, corr.at(bar), 1e-13, Tolerance::absolute);
    CHECK(variance_error <= 1e-13);
    CHECK(volatility_error <= 1e-13);
    CHECK(covariance_error <= 1e-13);
    CHECK(correlation_near);
    worst_variance = std::max(worst_variance, variance_error);
    worst_covariance = std::max(worst_covariance, covariance_error);
    for (Index i = 0; i < correlation.size(); ++i) {
      if (!std::isnan(corr.at(bar)(i)))
        worst_correlation = std::max(worst_correlation, std::abs(correlation(i) - corr.at(bar)(i)));
    }
  }
  CAPTURE(tag, scientific(worst_variance), scientific(worst_covariance),
          scientific(worst_correlation));
  CHECK(worst_covariance <= 1e-13);
}

TEST_CASE("EwmaMoments RiskMetrics matches the pandas zero-mean recursion",
          "[stats][ewma][pandas][riskmetrics]") {
  const auto returns = dynweight::test::read_vector_series("stats/returns_simple.csv", 4);
  const auto cov = dynweight::test::read_matrix_series("stats/riskmetrics_lambda0.94_cov.csv", 4);
  REQUIRE(cov.size() == 250);
  // The reference script uses alpha = 1 − 0.94 in double; so do we.
  EwmaMoments<double> ewma(
      4, {.decay = EwmaDecay::from_alpha(1.0 - 0.94), .estimator = EwmaEstimator::riskmetrics});
  REQUIRE(ewma.alpha() == 1.0 - 0.94);
  double worst = 0.0;
  for (const auto& [bar, r] : returns) {
    CAPTURE(bar);
    ewma.update(r);
    REQUIRE(ewma.mean().isZero(0.0));
    const double error = scaled_covariance_error(covariance_of(ewma), cov.at(bar));
    // pandas ewm(adjust=False).mean() of r_i r_j rounds (0.94 s + 0.06 p)/(0.94 + 0.06): a few
    // ulps (the reference script checked it against the direct recursion at 1e-14); worst
    // measured 5.4e-16 in units of √(S_ii S_jj).
    CHECK(error <= 1e-13);
    worst = std::max(worst, error);
    CHECK(relative_variance_error(ewma.variance(), cov.at(bar).diagonal()) <= 1e-13);
  }
  CAPTURE(scientific(worst));
  CHECK(worst <= 1e-13);
}

namespace {

// ---------------------------------------------------------------------------------------------
// Brute force: the weighted moments from the explicit weights, in long double, over every bar so
// far (independent of the recursion).

struct BruteForce {
  Eigen::VectorXd mean;
  Eigen::MatrixXd covariance;  // full, NaN where pandas has NaN
};

BruteForce brute_force(const Eigen::MatrixXd& data, Index t, double alpha, bool adjust, bool bias,
                       EwmaEstimator estimator) {
  const Index n = data.cols();
  // The engine (and pandas) multiply by 1 − α rounded to double; use that same factor.
  const auto decay = static_cast<long double>(1.0 - alpha);
  const bool riskmetrics = estimator == EwmaEstimator::riskmetrics;
  LongVector weights(t + 1);
  for (Index k = 0; k <= t; ++k) {
    const long double age_factor = std::pow(decay, static_cast<long double>(t - k));
    weights(k) = (adjust && !riskmetrics) || k == 0 ? age_factor : alpha * age_factor;
  }
  const LongMatrix x = data.topRows(t + 1).cast<long double>();
  const long double sum = weights.sum();
  const long double sum_squares = weights.squaredNorm();
  BruteForce result;
  if (riskmetrics) {
    // Σ_t = λ^t r_0 r_0ᵀ + Σ_{k≥1} (1 − λ) λ^(t−k) r_k r_kᵀ: the adjust = false weights, no
    // centring and no normalisation.
    result.mean = Eigen::VectorXd::Zero(n);
    result.covariance = (x.transpose() * weights.asDiagonal() * x).cast<double>();
    return result;
  }
  const LongVector mean = (x.transpose() * weights) / sum;
  const LongMatrix centred = x.rowwise() - mean.transpose();
  LongMatrix covariance = centred.transpose() * weights.asDiagonal() * centred / sum;
  if (!bias) {
    const long double denominator = sum * sum - sum_squares;
    covariance = denominator > 0 ? LongMatrix(covariance * (sum * sum / denominator))
                                 : LongMatrix::Constant(n, n, nan_value);
  }
  result.mean = mean.cast<double>();
  result.covariance = covariance.cast<double>();
  return result;
}

// |corr − expected| in units of max_k S_kk / (σ_i σ_j): a covariance error ε·max_k S_kk becomes
// that correlation error. NaN patterns must agree.
double scaled_correlation_error(const Eigen::MatrixXd& correlation,
                                const Eigen::MatrixXd& covariance) {
  const Eigen::MatrixXd expected = dynweight::test::correlation_of(covariance);
  const Eigen::VectorXd sd = covariance.diagonal().cwiseSqrt();
  const double largest = covariance.diagonal().maxCoeff();
  double worst = 0.0;
  for (Index j = 0; j < expected.cols(); ++j) {
    for (Index i = j; i < expected.rows(); ++i) {
      if (std::isnan(correlation(i, j)) || std::isnan(expected(i, j))) {
        if (std::isnan(correlation(i, j)) != std::isnan(expected(i, j)))
          return std::numeric_limits<double>::infinity();
        continue;
      }
      worst =
          std::max(worst, std::abs(correlation(i, j) - expected(i, j)) * sd(i) * sd(j) / largest);
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("EwmaMoments equals the explicitly weighted moments at every bar", "[stats][ewma]") {
  const Index assets = GENERATE(1, 2, 10, 100);
  const double alpha = GENERATE(0.05, 0.3, 1.0);
  const bool adjust = GENERATE(true, false);
  const bool bias = GENERATE(true, false);
  const auto estimator = GENERATE(EwmaEstimator::pandas, EwmaEstimator::riskmetrics);
  if (estimator == EwmaEstimator::riskmetrics && (adjust || bias))
    return;  // both ignored: one RiskMetrics run per size and α
  const Index bars = assets == 100 ? 40 : 80;
  const Eigen::MatrixXd data =
      dynweight::test::correlated_returns(bars, assets, 2000 + static_cast<std::uint64_t>(assets));
  EwmaMoments<double> ewma(assets, {.decay = EwmaDecay::from_alpha(alpha),
                                    .adjust = adjust,
                                    .bias = bias,
                                    .min_periods = 3,
                                    .estimator = estimator});
  double worst_mean = 0.0;
  double worst_covariance = 0.0;
  double worst_correlation = 0.0;
  for (Index t = 0; t < bars; ++t) {
    CAPTURE(assets, alpha, adjust, bias, estimator == EwmaEstimator::riskmetrics, t);
    ewma.update(data.row(t).transpose());
    REQUIRE(ewma.bars() == t + 1);
    REQUIRE(ewma.ready() == (t + 1 >= 3));
    const BruteForce expected = brute_force(data, t, alpha, adjust, bias, estimator);
    // The recursion rounds a few ulps per bar and damps older errors by ρ < 1; the long double
    // reference is exact to ~1e-18. Worst measured: 1.3e-15 (covariance, max-norm relative),
    // 7.4e-16 (correlation, scaled as below); tolerances 1e-13. The mean is compared in units of
    // the data's size: relative to a mean near 0 its rounding is not small.
    const double data_scale = data.topRows(t + 1).cwiseAbs().maxCoeff();
    const auto mean_near =
        near(ewma.mean() / data_scale, expected.mean / data_scale, 1e-13, Tolerance::absolute);
    REQUIRE(mean_near);
    const Eigen::MatrixXd covariance = covariance_of(ewma);
    const auto covariance_near = near(covariance, expected.covariance, 1e-13);
    REQUIRE(covariance_near);
    REQUIRE(near(ewma.variance(), expected.covariance.diagonal(), 1e-13));
    REQUIRE(near(ewma.volatility(), expected.covariance.diagonal().cwiseSqrt(), 1e-13));
    const double correlation_error =
        scaled_correlation_error(correlation_of(ewma), expected.covariance);
    REQUIRE(correlation_error <= 1e-13);
    worst_mean =
        std::max(worst_mean, (ewma.mean() - expected.mean).cwiseAbs().maxCoeff() / data_scale);
    if (!expected.covariance.array().isNaN().any() && !expected.covariance.isZero(0.0)) {
      worst_covariance =
          std::max(worst_covariance, (covariance - expected.covariance).cwiseAbs().maxCoeff() /
                                         expected.covariance.cwiseAbs().maxCoeff());
    }
    worst_correlation = std::max(worst_correlation, correlation_error);
  }
  CAPTURE(assets, alpha, adjust, bias, scientific(worst_mean), scientific(worst_covariance),
          scientific(worst_correlation));
  CHECK(worst_covariance <= 1e-13);
}

TEST_CASE(
    "EwmaMoments: values up to input_limit() keep the covariance finite, larger are "
    "rejected",
    "[stats][ewma][errors]") {
  const Index n = 3;
  const double limit = EwmaMoments<double>::input_limit();
  const auto estimator = GENERATE(EwmaEstimator::pandas, EwmaEstimator::riskmetrics);
  const double alpha = GENERATE(0.05, 0.999);
  EwmaMoments<double> ewma(n, {.decay = EwmaDecay::from_alpha(alpha), .estimator = estimator});
  std::mt19937_64 random(9);
  std::bernoulli_distribution heads(0.5);
  for (Index t = 0; t < 40; ++t) {
    Eigen::VectorXd x(n);
    for (Index i = 0; i < n; ++i)
      x(i) = (heads(random) ? 0.999 : -0.999) * limit;
    ewma.update(x);
    INFO("bar " << t);
    // NaN only where pandas' bias correction is undefined (the first bar).
    if (t > 0)
      REQUIRE(dynweight::test::lower_triangle_finite(ewma.covariance_lower()));
  }
  const Eigen::MatrixXd before = ewma.covariance_lower();
  Eigen::VectorXd beyond = Eigen::VectorXd::Zero(n);
  beyond(1) = -1.01 * limit;
  REQUIRE_THROWS_WITH(ewma.update(beyond), Contains("returns[1]") && Contains("within ±"));
  REQUIRE(dynweight::test::identical(ewma.covariance_lower(), before));
  REQUIRE(ewma.bars() == 40);
}

TEST_CASE("EwmaMoments::update takes the engine's own vectors as input",
          "[stats][ewma][aliasing]") {
  const Index n = 3;
  const auto estimator = GENERATE(EwmaEstimator::pandas, EwmaEstimator::riskmetrics);
  const EwmaOptions options{.decay = EwmaDecay::from_halflife(5), .estimator = estimator};
  EwmaMoments<double> own(n, options);
  EwmaMoments<double> copied(n, options);
  std::mt19937_64 random(17);
  std::normal_distribution<double> normal(0.0, 0.01);
  for (Index t = 0; t < 40; ++t) {
    if (t > 0 && t % 3 == 0) {
      const Eigen::VectorXd mean = copied.mean();
      own.update(own.mean());
      copied.update(mean);
    } else if (t > 1 && t % 5 == 0) {
      const Eigen::VectorXd variance = copied.variance();
      own.update(own.variance());
      copied.update(variance);
    } else {
      Eigen::VectorXd x(n);
      for (Index i = 0; i < n; ++i)
        x(i) = normal(random);
      own.update(x);
      copied.update(x);
    }
    INFO("bar " << t);
    REQUIRE(dynweight::test::identical(own.mean(), copied.mean()));
    REQUIRE(dynweight::test::identical(own.covariance_lower(), copied.covariance_lower()));
  }
}

TEST_CASE("EwmaMoments: α = 1 keeps only the newest observation", "[stats][ewma]") {
  const Eigen::MatrixXd data = dynweight::test::correlated_returns(5, 3, 9);
  for (const bool adjust : {true, false}) {
    EwmaMoments<double> biased(
        3, {.decay = EwmaDecay::from_alpha(1.0), .adjust = adjust, .bias = true});
    EwmaMoments<double> unbiased(3, {.decay = EwmaDecay::from_alpha(1.0), .adjust = adjust});
    for (Index t = 0; t < data.rows(); ++t) {
      biased.update(data.row(t).transpose());
      unbiased.update(data.row(t).transpose());
      CHECK(biased.mean() == data.row(t).transpose());
      CHECK(biased.covariance_lower().triangularView<Eigen::Lower>().toDenseMatrix().isZero(0.0));
      CHECK(unbiased.variance().array().isNaN().all());
      CHECK(lower_of(unbiased.covariance_lower()).array().isNaN().count() == 6);
      CHECK(lower_of(unbiased.correlation_lower()).array().isNaN().count() == 6);
    }
  }
}

TEST_CASE("EwmaMoments<float> tracks the double brute force", "[stats][ewma][float]") {
  const Index assets = GENERATE(2, 10);
  const bool adjust = GENERATE(true, false);
  const auto estimator = GENERATE(EwmaEstimator::pandas, EwmaEstimator::riskmetrics);
  const double alpha = 0.1;
  const Eigen::MatrixXd data = dynweight::test::correlated_returns(200, assets, 7);
  const Eigen::MatrixXf data_float = data.cast<float>();
  // The float engine sees the float-rounded data; so does the reference.
  const Eigen::MatrixXd rounded = data_float.cast<double>();
  EwmaMoments<float> ewma(
      assets, {.decay = EwmaDecay::from_alpha(alpha), .adjust = adjust, .estimator = estimator});
  double worst = 0.0;
  for (Index t = 0; t < data.rows(); ++t) {
    ewma.update(data_float.row(t).transpose());
    if (t == 0)
      continue;
    CAPTURE(assets, adjust, t);
    const BruteForce expected = brute_force(rounded, t, alpha, adjust, false, estimator);
    // float keeps ~7 digits (ε = 6e-8); the contraction keeps the recursion's error at a few ε
    // (worst measured 5.2e-7 for the covariance): 5e-6 is ~80 ε.
    const double data_scale = rounded.topRows(t + 1).cwiseAbs().maxCoeff();
    REQUIRE(near(ewma.mean() / float(data_scale), expected.mean / data_scale, 5e-6,
                 Tolerance::absolute));
    REQUIRE(near(covariance_of(ewma), expected.covariance, 5e-6));
    REQUIRE(scaled_correlation_error(correlation_of(ewma), expected.covariance) <= 5e-6);
    worst = std::max(worst, (covariance_of(ewma) - expected.covariance).cwiseAbs().maxCoeff() /
                                expected.covariance.cwiseAbs().maxCoeff());
  }
  CAPTURE(assets, adjust, estimator == EwmaEstimator::riskmetrics, scientific(worst));
  CHECK(worst <= 5e-6);
}

namespace {

// ---------------------------------------------------------------------------------------------
// Drift: an EWMA forgets, so the exact moments at bar t depend, to (1 − α)^K relative, only on the
// last K bars. With α = 0.05 and K = 40/α = 800 that is 0.95^800 ≈ 1.6e-18, below double
// rounding: the test keeps its own ring of the last K observations and, at 10 checkpoints,
// compares with the weighted moments over it in long double. In steady state the normalised
// weights (1 − α)^age and the bias factor are the same for adjust = true and false.

struct DriftResult {
  double covariance_error = 0.0;  // max-norm relative
  double mean_error = 0.0;        // in units of the volatility
};

DriftResult stream_drift(Index bars, Index assets, double alpha, bool adjust, double level,
                         double scale) {
  EwmaMoments<double> ewma(assets, {.decay = EwmaDecay::from_alpha(alpha), .adjust = adjust});
  const auto memory = static_cast<Index>(40.0 / alpha);
  std::mt19937_64 engine(42);
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::MatrixXd recent(memory, assets);  // the test's own ring of the last K observations
  Eigen::VectorXd x(assets);
  const auto decay = static_cast<long double>(1.0 - alpha);
  LongVector weights(memory);  // by age: (1 − α)^age
  for (Index age = 0; age < memory; ++age)
    weights(age) = std::pow(decay, static_cast<long double>(age));
  const long double sum = weights.sum();
  const long double factor = sum * sum / (sum * sum - weights.squaredNorm());
  DriftResult result;
  for (Index t = 0; t < bars; ++t) {
    const double common = normal(engine);
    for (Index i = 0; i < assets; ++i)
      x(i) = level + scale * (double(i + 1) * normal(engine) + 0.5 * common);
    ewma.update(x);
    recent.row(t % memory) = x.transpose();
    if ((t + 1) % (bars / 10) != 0)
      continue;
    // Centred on the newest observation first, so the level costs the reference no digits.
    const LongVector newest = x.cast<long double>();
    LongVector offset = LongVector::Zero(assets);
    for (Index age = 0; age < memory; ++age) {
      offset +=
          weights(age) * (recent.row((t - age) % memory).transpose().cast<long double>() - newest);
    }
    offset /= sum;
    LongMatrix covariance = LongMatrix::Zero(assets, assets);
    for (Index age = 0; age < memory; ++age) {
      const LongVector d =
          recent.row((t - age) % memory).transpose().cast<long double>() - newest - offset;
      covariance += weights(age) * d * d.transpose();
    }
    covariance *= factor / sum;
    const Eigen::MatrixXd expected = covariance.cast<double>();
    const LongVector expected_mean = newest + offset;
    const Eigen::MatrixXd actual = ewma.covariance();
    result.covariance_error =
        std::max(result.covariance_error,
                 (actual - expected).cwiseAbs().maxCoeff() / expected.cwiseAbs().maxCoeff());
    for (Index i = 0; i < assets; ++i) {
      const long double gap = std::abs(static_cast<long double>(ewma.mean()(i)) - expected_mean(i));
      result.mean_error =
          std::max(result.mean_error, static_cast<double>(gap) / std::sqrt(expected(i, i)));
    }
  }
  return result;
}

}  // namespace

TEST_CASE("EwmaMoments: no drift over 10^6 updates", "[stats][ewma][drift]") {
  const double level = GENERATE(0.0, 1e4);
  const bool adjust = GENERATE(true, false);
  const auto result = stream_drift(1'000'000, 6, 0.05, adjust, level, 1e-2);
  CAPTURE(level, adjust, scientific(result.covariance_error), scientific(result.mean_error));
  // mean() is the mean rounded to double: at a level of 1e4 that alone is up to 9e-13, ~1e-10 of
  // the smallest volatility (~1e-2); measured 6.3e-11.
  CHECK(result.covariance_error <= 1e-9);
  CHECK(result.mean_error <= 1e-9);
  // Measured ~1e-15 at both levels. The bound guards the m_hi + m_lo mean: rounding the mean at
  // the level (as pandas' formula does) gives 1.7e-11 here at a level of 1e4.
  CHECK(result.covariance_error <= 1e-13);
}

TEST_CASE("EwmaMoments: no drift over 10^7 updates", "[stats][ewma][drift][long]") {
  const double level = GENERATE(0.0, 1e4);
  const bool adjust = GENERATE(true, false);
  const auto result = stream_drift(10'000'000, 6, 0.05, adjust, level, 1e-2);
  CAPTURE(level, adjust, scientific(result.covariance_error), scientific(result.mean_error));
  CHECK(result.covariance_error <= 1e-9);
  CHECK(result.mean_error <= 1e-9);
  CHECK(result.covariance_error <= 1e-13);  // measured ~1.5e-15, as after 10^6 updates
}

TEST_CASE("EwmaMoments::update and the accessors do not allocate", "[stats][ewma][allocation]") {
  const Index assets = 20;
  const bool bias = GENERATE(true, false);
  const auto estimator = GENERATE(EwmaEstimator::pandas, EwmaEstimator::riskmetrics);
  // One observation per column: a row of a column-major matrix is strided, and Eigen::Ref would
  // copy it into a temporary (the caller's allocation, not the engine's).
  const Eigen::MatrixXd data = dynweight::test::correlated_returns(200, assets, 3).transpose();
  EwmaMoments<double> ewma(
      assets, {.decay = EwmaDecay::from_halflife(10), .bias = bias, .estimator = estimator});
  const Eigen::VectorXd weights = Eigen::VectorXd::Constant(assets, 1.0 / double(assets));
  Eigen::VectorXd product(assets);
  double sink = 0.0;
  dynweight::test::NoAllocationScope scope;
  for (Index t = 0; t < data.cols(); ++t) {
    ewma.update(data.col(t));  // first observation, the undefined-factor bar and steady state
    product.noalias() = ewma.covariance() * weights;
    const double read = ewma.mean()(0) + ewma.variance()(1) + ewma.volatility()(2) +
                        ewma.covariance_lower()(assets - 1, 0) +
                        ewma.correlation_lower()(assets - 1, 0) + ewma.correlation_lower()(1, 1) +
                        product(0);
    if (std::isfinite(read))  // NaN at the first observation (unbiased covariance, correlation)
      sink += read;
    if (t == 100)
      ewma.reset();
  }
  REQUIRE(scope.allocations() == 0);
  REQUIRE(std::isfinite(sink));
}

TEST_CASE("EwmaMoments rejects bad input and stays unchanged", "[stats][ewma][errors]") {
  const Index assets = 4;
  const auto estimator = GENERATE(EwmaEstimator::pandas, EwmaEstimator::riskmetrics);
  const Eigen::MatrixXd data = dynweight::test::correlated_returns(30, assets, 11);
  const EwmaOptions options{.decay = EwmaDecay::from_span(8), .estimator = estimator};
  EwmaMoments<double> ewma(assets, options, {"A", "B", "C", "D"});
  EwmaMoments<double> twin(assets, options);
  for (Index t = 0; t < 12; ++t) {
    ewma.update(data.row(t).transpose());
    twin.update(data.row(t).transpose());
  }
  const Eigen::VectorXd mean = ewma.mean();
  const Eigen::VectorXd var = ewma.variance();
  const Eigen::VectorXd vol = ewma.volatility();
  const Eigen::MatrixXd cov = ewma.covariance_lower();
  const Eigen::MatrixXd corr = ewma.correlation_lower();

  Eigen::VectorXd bad = data.row(12).transpose();
  const double value =
      GENERATE(std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
               -std::numeric_limits<double>::infinity());
  bad(2) = value;
  REQUIRE_THROWS_AS(ewma.update(bad), dynweight::Error);
  REQUIRE_THROWS_WITH(ewma.update(bad), Contains("EwmaMoments::update") &&
                                            Contains("asset 2 ('C')") && Contains("bar 12"));
  REQUIRE_THROWS_WITH(
      ewma.update(Eigen::VectorXd::Zero(5)),
      Contains("EwmaMoments::update") && Contains("returns has 5 entries at bar 12, expected 4"));

  REQUIRE(ewma.bars() == 12);
  REQUIRE(dynweight::test::identical(ewma.mean(), mean));
  REQUIRE(dynweight::test::identical(ewma.variance(), var));
  REQUIRE(dynweight::test::identical(ewma.volatility(), vol));
  REQUIRE(dynweight::test::identical(ewma.covariance_lower(), cov));
  REQUIRE(dynweight::test::identical(ewma.correlation_lower(), corr));

  // ... and carries on exactly as an engine that never saw the bad bars.
  for (Index t = 12; t < 30; ++t) {
    ewma.update(data.row(t).transpose());
    twin.update(data.row(t).transpose());
    REQUIRE(dynweight::test::identical(ewma.mean(), twin.mean()));
    REQUIRE(dynweight::test::identical(ewma.covariance_lower(), twin.covariance_lower()));
    REQUIRE(dynweight::test::identical(ewma.correlation_lower(), twin.correlation_lower()));
  }
}

TEST_CASE("EwmaOptions and EwmaMoments validate their parameters", "[stats][ewma][errors]") {
  REQUIRE_THROWS_WITH((EwmaMoments<double>(3, {.min_periods = -1})),
                      Contains("EwmaOptions") && Contains("min_periods = -1; must be >= 0"));
  REQUIRE_THROWS_WITH((EwmaMoments<double>(0, {})), Contains("assets = 0"));
  REQUIRE_THROWS_WITH((EwmaMoments<double>(3, {}, {"A", "B"})),
                      Contains("names has 2 entries, expected 3"));
  REQUIRE_THROWS_WITH((EwmaMoments<double>(3, {.estimator = static_cast<EwmaEstimator>(7)})),
                      Contains("estimator = 7"));
  REQUIRE_THROWS_AS(EwmaDecay::from_halflife(0.0), dynweight::Error);
  // A half-life so long that α = 1 − exp(−ln 2 / h) rounds to 0 would freeze every average.
  REQUIRE_THROWS_WITH(EwmaDecay::from_halflife(1e17), Contains("halflife = 1e+17"));
  CHECK(EwmaDecay::from_halflife(1e15).alpha() > 0);
  REQUIRE_THROWS_AS(EwmaDecay::from_alpha(1.5), dynweight::Error);
  REQUIRE_NOTHROW(EwmaOptions{}.validate());
}

TEST_CASE("EwmaMoments: a constant asset has exactly zero variance and NaN correlations",
          "[stats][ewma]") {
  const bool adjust = GENERATE(true, false);
  const bool bias = GENERATE(true, false);
  Eigen::MatrixXd data = dynweight::test::correlated_returns(300, 3, 17);
  data.col(1).setConstant(0.0123);  // a halted price's return or a stale level: never moves
  EwmaMoments<double> ewma(3,
                           {.decay = EwmaDecay::from_halflife(7), .adjust = adjust, .bias = bias});
  for (Index t = 0; t < data.rows(); ++t) {
    CAPTURE(adjust, bias, t);
    ewma.update(data.row(t).transpose());
    REQUIRE(ewma.mean()(1) == 0.0123);
    if (t == 0 && !bias)
      continue;  // unbiased: NaN at the first observation, as pandas
    REQUIRE(ewma.variance()(1) == 0.0);
    REQUIRE(ewma.volatility()(1) == 0.0);
    REQUIRE(ewma.covariance_lower().row(1).head(2).isZero(0.0));
    REQUIRE(ewma.covariance_lower().col(1).tail(2).isZero(0.0));
    REQUIRE(std::isnan(ewma.correlation_lower()(1, 1)));
    REQUIRE(std::isnan(ewma.correlation_lower()(1, 0)));
    REQUIRE(std::isnan(ewma.correlation_lower()(2, 1)));
    if (t > 0)
      REQUIRE(std::isfinite(ewma.correlation_lower()(2, 0)));
  }
  REQUIRE(ewma.correlation_lower()(0, 0) == 1.0);
  REQUIRE(std::abs(ewma.correlation_lower()(2, 0)) <= 1.0);
}

TEST_CASE("EwmaMoments::reset forgets every observation", "[stats][ewma]") {
  const Eigen::MatrixXd data = dynweight::test::correlated_returns(40, 3, 5);
  const EwmaOptions options{.decay = EwmaDecay::from_alpha(0.1), .min_periods = 2};
  EwmaMoments<double> ewma(3, options);
  EwmaMoments<double> fresh(3, options);
  REQUIRE_FALSE(ewma.ready());
  REQUIRE(ewma.mean().array().isNaN().all());
  for (Index t = 0; t < 20; ++t)
    ewma.update(data.row(t).transpose());
  ewma.reset();
  REQUIRE(ewma.bars() == 0);
  REQUIRE_FALSE(ewma.ready());
  REQUIRE(ewma.mean().array().isNaN().all());
  REQUIRE(ewma.covariance_lower().array().isNaN().all());
  for (Index t = 20; t < 40; ++t) {
    ewma.update(data.row(t).transpose());
    fresh.update(data.row(t).transpose());
    REQUIRE(ewma.ready() == (t >= 21));
  }
  REQUIRE(dynweight::test::identical(ewma.mean(), fresh.mean()));
  REQUIRE(dynweight::test::identical(ewma.covariance_lower(), fresh.covariance_lower()));
}

TEST_CASE("EwmaMoments: the class comment's example", "[stats][ewma]") {
  const Eigen::Vector3d first(0.01, -0.02, 0.005);
  const Eigen::Vector3d returns_today(-0.004, 0.012, 0.001);
  dynweight::EwmaMoments<double> ewma(3, {.decay = dynweight::EwmaDecay::from_halflife(10.0)});
  ewma.update(first);
  ewma.update(returns_today);  // an Eigen vector of 3 returns
  REQUIRE(ewma.ready());
  Eigen::MatrixXd sigma = ewma.covariance();  // full symmetric N×N
  double vol0_annual = ewma.volatility()(0) * std::sqrt(252.0);
  CHECK(sigma.isApprox(sigma.transpose()));
  CHECK(vol0_annual == Approx(std::sqrt(sigma(0, 0) * 252.0)));
}
