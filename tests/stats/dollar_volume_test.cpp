#include "dynweight/stats/dollar_volume.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "allocation_counter.hpp"
#include "near.hpp"
#include "reference_csv.hpp"

using Catch::Matchers::Contains;
using dynweight::EwmaDecay;
using dynweight::EwmaDollarVolume;
using dynweight::Index;
using dynweight::RollingDollarVolume;
using dynweight::test::identical;

namespace {

constexpr double unit_roundoff = std::numeric_limits<double>::epsilon() / 2;  // u = 2^-53

// Worst entry-wise relative error |a − e| / |e|; +inf when NaNs differ or e = 0 and a != 0.
template <class A>
double worst_relative_error(const Eigen::MatrixBase<A>& actual, const Eigen::VectorXd& expected) {
  double worst = 0.0;
  for (Index i = 0; i < expected.size(); ++i) {
    const double a = static_cast<double>(actual(i));
    const double e = expected(i);
    if (std::isnan(a) || std::isnan(e)) {
      if (std::isnan(a) != std::isnan(e))
        return std::numeric_limits<double>::infinity();
      continue;
    }
    if (e == 0) {
      if (a != 0)
        return std::numeric_limits<double>::infinity();
      continue;
    }
    worst = std::max(worst, std::abs(a - e) / std::abs(e));
  }
  return worst;
}

// The reference inputs, one bar per column (contiguous, so Eigen::Ref binds without a copy).
struct Market {
  std::vector<std::string> names;
  Eigen::MatrixXd prices;   // 4 × 251
  Eigen::MatrixXd volumes;  // 4 × 251
};

Market reference_market() {
  const auto prices = dynweight::test::read_wide("stats/prices.csv");
  const auto volumes = dynweight::test::read_wide("stats/volumes.csv");
  return {prices.names, prices.values.transpose(), volumes.values.transpose()};
}

// Seeded volumes with everything that hurts a subtracting running sum: values log-uniform over
// 1e3..1e9, spikes of 1e11..1e12 and stretches of zero volume (up to 3W bars, so they empty a
// window of W), half the time right after a spike. With prices of 1 they are the dollar volumes.
class NastyVolumes {
 public:
  NastyVolumes(Index assets, Index window, std::uint64_t seed)
      : m_window(window), m_engine(seed), m_zero_left(assets, 0) {}

  void next(Eigen::VectorXd& volumes) {
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (Index i = 0; i < volumes.size(); ++i) {
      auto& zero_left = m_zero_left[static_cast<std::size_t>(i)];
      if (zero_left > 0) {
        --zero_left;
        volumes(i) = 0.0;
        continue;
      }
      const double draw = uniform(m_engine);
      if (draw < 0.002) {
        volumes(i) = std::pow(10.0, 11.0 + uniform(m_engine));  // spike
        if (uniform(m_engine) < 0.5)                            // and then a halt
          zero_left = static_cast<Index>(uniform(m_engine) * double(3 * m_window)) + 1;
      } else if (draw < 0.003) {
        zero_left = static_cast<Index>(uniform(m_engine) * double(3 * m_window));
        volumes(i) = 0.0;
      } else {
        volumes(i) = std::pow(10.0, 3.0 + 6.0 * uniform(m_engine));
      }
    }
  }

 private:
  Index m_window;
  std::mt19937_64 m_engine;
  std::vector<Index> m_zero_left;
};

// Direct long-double sum of the last n columns of `values` ending at column t, rounded once.
Eigen::VectorXd direct_sum(const Eigen::MatrixXd& values, Index t, Index n) {
  Eigen::VectorXd total(values.rows());
  for (Index i = 0; i < values.rows(); ++i) {
    long double sum = 0;
    for (Index k = t - n + 1; k <= t; ++k)
      sum += values(i, k);
    total(i) = static_cast<double>(sum);
  }
  return total;
}

// The same, divided by n in long double and rounded once.
Eigen::VectorXd direct_mean(const Eigen::MatrixXd& values, Index t, Index n) {
  Eigen::VectorXd mean(values.rows());
  for (Index i = 0; i < values.rows(); ++i) {
    long double sum = 0;
    for (Index k = t - n + 1; k <= t; ++k)
      sum += values(i, k);
    mean(i) = static_cast<double>(sum / n);
  }
  return mean;
}

// Direct long-double pandas EWM mean of columns 0..t: weights λ^{t−k} (adjust) or, without
// adjust, λ^t on bar 0 and α λ^{t−k} on bar k >= 1.
Eigen::VectorXd direct_ewm(const Eigen::MatrixXd& values, Index t, long double alpha, bool adjust) {
  const long double lambda = 1 - alpha;
  Eigen::VectorXd mean(values.rows());
  for (Index i = 0; i < values.rows(); ++i) {
    long double sum = 0;
    long double weights = 0;
    for (Index k = 0; k <= t; ++k) {
      const long double w =
          std::pow(lambda, static_cast<long double>(t - k)) * (adjust || k == 0 ? 1.0L : alpha);
      sum += w * values(i, k);
      weights += w;
    }
    mean(i) = static_cast<double>(sum / weights);
  }
  return mean;
}

}  // namespace

TEST_CASE("RollingDollarVolume matches pandas rolling mean of price * volume",
          "[stats][adv][pandas]") {
  const Market market = reference_market();
  const Index min_periods = GENERATE(20, 5);
  const auto expected = dynweight::test::read_vector_series(
      "stats/adv_rolling_w20_mp" + std::to_string(min_periods) + ".csv", 4);
  REQUIRE(expected.size() == 251);

  RollingDollarVolume<double> adv(4, {.window = 20, .min_periods = min_periods}, market.names);
  // pandas keeps a Kahan-compensated running sum (near exact); ours is a plain sum of the window's
  // 20 nonnegative values, within 19 u = 2.1e-15 of exact: 1e-14 leaves a margin of ~5 (measured:
  // 4e-16).
  double worst = 0.0;
  Index ready_bars = 0;
  for (Index t = 0; t < market.prices.cols(); ++t) {
    CAPTURE(min_periods, t);
    adv.update(market.prices.col(t), market.volumes.col(t));
    REQUIRE(adv.bars() == t + 1);
    REQUIRE(adv.count() == std::min<Index>(t + 1, 20));
    REQUIRE(adv.ready() == (t + 1 >= min_periods));
    REQUIRE(identical(adv.last_dollar_volume(),
                      market.prices.col(t).cwiseProduct(market.volumes.col(t))));
    REQUIRE(adv.average().array().isNaN().all() == !adv.ready());
    const double error = worst_relative_error(adv.average(), expected.at(t));
    CHECK(error <= 1e-14);
    worst = std::max(worst, error);
    ready_bars += adv.ready() ? 1 : 0;
  }
  CHECK(ready_bars == 251 - min_periods + 1);
  // Asset D trades nothing at the last bar: a legal zero dollar volume.
  CHECK(adv.last_dollar_volume()(3) == 0.0);
  INFO("worst relative error " << worst);  // Catch prints doubles in fixed notation
  CHECK(worst <= 1e-14);
}

TEST_CASE("EwmaDollarVolume matches pandas ewm(halflife=10).mean() of price * volume",
          "[stats][adv][pandas]") {
  const Market market = reference_market();
  const bool adjust = GENERATE(false, true);
  const auto expected = dynweight::test::read_vector_series(
      std::string("stats/adv_ewm_halflife10_adjust") + (adjust ? "1" : "0") + ".csv", 4);
  REQUIRE(expected.size() == 251);

  EwmaDollarVolume<double> adv(4, {.decay = EwmaDecay::from_halflife(10), .adjust = adjust},
                               market.names);
  // The same recursion as pandas, so the same roundings, except that α may differ from pandas'
  // (which goes through the centre of mass) by an ulp: a relative effect of ~u/α ≈ 15 u = 1.7e-15
  // at most. Measured: bit-identical on this data.
  double worst = 0.0;
  for (Index t = 0; t < market.prices.cols(); ++t) {
    CAPTURE(adjust, t);
    adv.update(market.prices.col(t), market.volumes.col(t));
    REQUIRE(adv.ready());
    REQUIRE(adv.bars() == t + 1);
    const double error = worst_relative_error(adv.average(), expected.at(t));
    CHECK(error <= 1e-14);
    worst = std::max(worst, error);
  }
  INFO("worst relative error " << worst);  // Catch prints doubles in fixed notation
  CHECK(worst <= 1e-14);
}

TEST_CASE("RollingDollarVolume equals a direct window mean at every bar", "[stats][adv]") {
  const Index assets = GENERATE(1, 3, 17);
  const Index window = GENERATE(1, 2, 3, 4, 5, 7, 20, 33);
  const Index min_periods = GENERATE(0, 1, 2);
  if (min_periods > window)
    return;
  const Index bars = 4 * window + 50;  // several cycles of the three-block ring
  NastyVolumes generator(assets, window, 100 + static_cast<std::uint64_t>(assets * window));
  std::mt19937_64 engine(7);
  std::lognormal_distribution<double> price(3.0, 1.0);
  Eigen::MatrixXd prices(assets, bars);
  Eigen::MatrixXd volumes(assets, bars);
  Eigen::VectorXd v(assets);
  for (Index t = 0; t < bars; ++t) {
    generator.next(v);
    volumes.col(t) = v;
    for (Index i = 0; i < assets; ++i)
      prices(i, t) = price(engine);
  }
  const Eigen::MatrixXd dollar_volumes = prices.cwiseProduct(volumes);

  RollingDollarVolume<double> adv(assets, {.window = window, .min_periods = min_periods});
  const Index needed = min_periods == 0 ? window : min_periods;
  for (Index t = 0; t < bars; ++t) {
    CAPTURE(assets, window, min_periods, t);
    adv.update(prices.col(t), volumes.col(t));
    const Index n = std::min(t + 1, window);
    REQUIRE(adv.count() == n);
    REQUIRE(adv.ready() == (n >= needed));
    // A sum of n nonnegative values in any order is within (n − 1) u of exact, one more u for the
    // division and one for the reference's own rounding. Zero only when the window holds only
    // zeros, and then exactly (worst_relative_error requires it).
    REQUIRE(worst_relative_error(adv.window_sum(), direct_sum(dollar_volumes, t, n)) <=
            double(n) * unit_roundoff);
    if (adv.ready()) {
      REQUIRE(worst_relative_error(adv.average(), direct_mean(dollar_volumes, t, n)) <=
              double(n + 1) * unit_roundoff);
    } else {
      REQUIRE(adv.average().array().isNaN().all());
    }
  }
}

TEST_CASE("RollingDollarVolume with a window of 1 is the last dollar volume", "[stats][adv]") {
  const Market market = reference_market();
  RollingDollarVolume<double> adv(4, {.window = 1});
  for (Index t = 0; t < market.prices.cols(); ++t) {
    adv.update(market.prices.col(t), market.volumes.col(t));
    REQUIRE(adv.ready());
    REQUIRE(identical(adv.average(), adv.last_dollar_volume()));
  }
}

TEST_CASE("EwmaDollarVolume equals a direct weighted mean at every bar", "[stats][adv][ewm]") {
  const bool adjust = GENERATE(false, true);
  struct Case {
    EwmaDecay decay;
    double tolerance;
  };
  // The recursion's rounding errors decay by λ a bar: ~c u/α in steady state.
  const Case config =
      GENERATE(Case{EwmaDecay::from_alpha(1.0), 4 * unit_roundoff},
               Case{EwmaDecay::from_alpha(0.5), 1e-15}, Case{EwmaDecay::from_halflife(10), 1e-14},
               Case{EwmaDecay::from_span(30), 1e-14}, Case{EwmaDecay::from_halflife(100), 1e-13});
  const Index min_periods = GENERATE(0, 1, 5);
  const Index assets = 5;
  const Index bars = 300;
  NastyVolumes generator(assets, 10, 99);
  Eigen::MatrixXd volumes(assets, bars);
  Eigen::VectorXd v(assets);
  for (Index t = 0; t < bars; ++t) {
    generator.next(v);
    volumes.col(t) = v;
  }
  const Eigen::MatrixXd prices = Eigen::MatrixXd::Constant(assets, bars, 2.5);
  const Eigen::MatrixXd dollar_volumes = prices.cwiseProduct(volumes);

  EwmaDollarVolume<double> adv(
      assets, {.decay = config.decay, .adjust = adjust, .min_periods = min_periods});
  REQUIRE(adv.alpha() == config.decay.alpha());
  for (Index t = 0; t < bars; ++t) {
    CAPTURE(adjust, config.decay.alpha(), min_periods, t);
    adv.update(prices.col(t), volumes.col(t));
    REQUIRE(adv.ready() == (t + 1 >= std::max<Index>(min_periods, 1)));
    if (!adv.ready()) {
      REQUIRE(adv.average().array().isNaN().all());
      continue;
    }
    const Eigen::VectorXd expected =
        direct_ewm(dollar_volumes, t, static_cast<long double>(config.decay.alpha()), adjust);
    REQUIRE(worst_relative_error(adv.average(), expected) <= config.tolerance);
  }
}

TEST_CASE("EwmaDollarVolume: a constant stream averages to exactly its value, as pandas",
          "[stats][adv][ewm]") {
  const bool adjust = GENERATE(false, true);
  EwmaDollarVolume<double> adv(2, {.decay = EwmaDecay::from_halflife(7), .adjust = adjust});
  Eigen::VectorXd prices(2);
  Eigen::VectorXd volumes(2);
  prices << 0.1, 33.3;
  volumes << 7.0, 0.0;
  for (int t = 0; t < 1000; ++t) {
    adv.update(prices, volumes);
    REQUIRE(adv.average()(0) == 0.1 * 7.0);
    REQUIRE(adv.average()(1) == 0.0);
  }
}

namespace {

// Streams `bars` bars of NastyVolumes through a RollingDollarVolume and checks every bar against
// the test's own long-double sum of its copy of the window. Returns the worst relative error.
struct ExactnessResult {
  double worst_relative_error = 0.0;
  Index zero_windows = 0;           // bars whose window held only zeros
  Index zero_windows_exact = 0;     // ... where the engine reported exactly 0
  Index spikes_then_zero = 0;       // ... that came right after a spike had left the window
  Index naive_residue_windows = 0;  // ... where a subtracting running sum would not be 0
};

ExactnessResult stream_exactness(Index bars, Index assets, Index window) {
  NastyVolumes generator(assets, window, 2024);
  RollingDollarVolume<double> adv(assets, {.window = window});
  Eigen::MatrixXd ring = Eigen::MatrixXd::Zero(assets, window);  // the test's copy of the window
  std::vector<Index> nonzero(static_cast<std::size_t>(assets), 0);
  std::vector<double> naive(static_cast<std::size_t>(assets), 0.0);
  std::vector<double> largest(static_cast<std::size_t>(assets), 0.0);  // in the current zero run
  Eigen::VectorXd volumes(assets);
  const Eigen::VectorXd prices = Eigen::VectorXd::Ones(assets);
  ExactnessResult result;
  for (Index t = 0; t < bars; ++t) {
    generator.next(volumes);
    adv.update(prices, volumes);
    const Index slot = t % window;
    for (Index i = 0; i < assets; ++i) {
      const auto s = static_cast<std::size_t>(i);
      const double leaving = ring(i, slot);
      nonzero[s] += (volumes(i) != 0) - (leaving != 0 && t >= window);
      naive[s] += volumes(i) - (t >= window ? leaving : 0.0);
      largest[s] = std::max(largest[s], volumes(i));
      ring(i, slot) = volumes(i);
    }
    if (t + 1 < window)
      continue;
    for (Index i = 0; i < assets; ++i) {
      const auto s = static_cast<std::size_t>(i);
      const double got = adv.average()(i);
      if (nonzero[s] == 0) {
        ++result.zero_windows;
        result.zero_windows_exact += got == 0.0 && adv.window_sum()(i) == 0.0;
        result.spikes_then_zero += largest[s] >= 1e11;
        result.naive_residue_windows += naive[s] != 0.0;
        largest[s] = 0.0;
        continue;
      }
      long double sum = 0;
      for (Index k = 0; k < window; ++k)
        sum += ring(i, k);
      const double expected = static_cast<double>(sum / window);
      result.worst_relative_error =
          std::max(result.worst_relative_error, std::abs(got - expected) / expected);
    }
  }
  return result;
}

}  // namespace

TEST_CASE("RollingDollarVolume is exact over 10^6 bars of 1e3..1e12 with spikes and halts",
          "[stats][adv][drift]") {
  const Index window = GENERATE(20, 63);
  const auto result = stream_exactness(1'000'000, 4, window);
  INFO("window " << window << ": worst relative error " << result.worst_relative_error << ", "
                 << result.zero_windows << " all-zero windows, " << result.spikes_then_zero
                 << " right after a spike, " << result.naive_residue_windows
                 << " where a subtracting running sum is not 0");
  // The data do exercise the failure mode: all-zero windows after spikes, where a running sum that
  // subtracts what leaves is left with rounding residue.
  REQUIRE(result.spikes_then_zero > 0);
  REQUIRE(result.naive_residue_windows > 0);
  CHECK(result.zero_windows_exact == result.zero_windows);
  CHECK(result.worst_relative_error <= 1e-12);
  // In fact within the (W − 1) u bound of a plain window sum, at every bar.
  CHECK(result.worst_relative_error <= double(window) * unit_roundoff);
}

TEST_CASE("EwmaDollarVolume does not drift over 10^6 bars", "[stats][adv][ewm][drift]") {
  const bool adjust = GENERATE(false, true);
  const Index assets = 3;
  NastyVolumes generator(assets, 20, 77);
  const EwmaDecay decay = EwmaDecay::from_halflife(20);
  EwmaDollarVolume<double> adv(assets, {.decay = decay, .adjust = adjust});
  const long double alpha = decay.alpha();
  const long double lambda = 1 - alpha;
  // The long-double recursion over the same values: pandas' recursion in 11 more bits.
  std::vector<long double> mean(assets, 0.0L);
  long double old_weight = 1;
  Eigen::VectorXd volumes(assets);
  const Eigen::VectorXd prices = Eigen::VectorXd::Ones(assets);
  double worst = 0.0;
  for (Index t = 0; t < 1'000'000; ++t) {
    generator.next(volumes);
    adv.update(prices, volumes);
    if (t == 0) {
      for (Index i = 0; i < assets; ++i)
        mean[static_cast<std::size_t>(i)] = volumes(i);
    } else {
      old_weight *= lambda;
      const long double c = adjust ? 1.0L : alpha;
      for (Index i = 0; i < assets; ++i) {
        auto& m = mean[static_cast<std::size_t>(i)];
        m = (old_weight * m + c * volumes(i)) / (old_weight + c);
      }
      old_weight = adjust ? old_weight + c : 1.0L;
    }
    for (Index i = 0; i < assets; ++i) {
      const long double m = mean[static_cast<std::size_t>(i)];
      if (m > 0)
        worst = std::max(worst, static_cast<double>(std::abs(adv.average()(i) - m) / m));
    }
  }
  INFO("adjust " << adjust << ": worst relative error " << worst);
  CHECK(worst <= 1e-13);
}

TEST_CASE("Dollar volume engines reject bad input and stay unchanged", "[stats][adv][errors]") {
  const Market market = reference_market();
  RollingDollarVolume<double> rolling(4, {.window = 5}, market.names);
  RollingDollarVolume<double> rolling_twin(4, {.window = 5});
  EwmaDollarVolume<double> ewm(4, {.decay = EwmaDecay::from_halflife(3)}, market.names);
  EwmaDollarVolume<double> ewm_twin(4, {.decay = EwmaDecay::from_halflife(3)});
  for (Index t = 0; t < 7; ++t) {
    rolling.update(market.prices.col(t), market.volumes.col(t));
    rolling_twin.update(market.prices.col(t), market.volumes.col(t));
    ewm.update(market.prices.col(t), market.volumes.col(t));
    ewm_twin.update(market.prices.col(t), market.volumes.col(t));
  }
  const Eigen::VectorXd rolling_average = rolling.average();
  const Eigen::VectorXd rolling_sum = rolling.window_sum();
  const Eigen::VectorXd rolling_last = rolling.last_dollar_volume();
  const Eigen::VectorXd ewm_average = ewm.average();
  const Eigen::VectorXd ewm_last = ewm.last_dollar_volume();

  struct Bad {
    bool in_prices;
    double value;
    const char* message;
  };
  const auto bad = GENERATE(
      Bad{true, 0.0, "prices[1] (asset 1 ('B')) at bar 7 is 0; must be finite and > 0"},
      Bad{true, -3.0, "prices[1] (asset 1 ('B')) at bar 7 is -3; must be finite and > 0"},
      Bad{true, std::numeric_limits<double>::quiet_NaN(),
          "prices[1] (asset 1 ('B')) at bar 7 is nan"},
      Bad{true, std::numeric_limits<double>::infinity(),
          "prices[1] (asset 1 ('B')) at bar 7 is inf"},
      Bad{true, -std::numeric_limits<double>::infinity(),
          "prices[1] (asset 1 ('B')) at bar 7 is -inf"},
      Bad{false, -1.0, "volumes[1] (asset 1 ('B')) at bar 7 is -1; must be finite and >= 0"},
      Bad{false, std::numeric_limits<double>::quiet_NaN(),
          "volumes[1] (asset 1 ('B')) at bar 7 is nan"},
      Bad{false, std::numeric_limits<double>::infinity(),
          "volumes[1] (asset 1 ('B')) at bar 7 is inf"},
      Bad{false, -std::numeric_limits<double>::infinity(),
          "volumes[1] (asset 1 ('B')) at bar 7 is -inf"});
  CAPTURE(bad.message);
  Eigen::VectorXd prices = market.prices.col(7);
  Eigen::VectorXd volumes = market.volumes.col(7);
  (bad.in_prices ? prices : volumes)(1) = bad.value;

  REQUIRE_THROWS_AS(rolling.update(prices, volumes), dynweight::Error);
  REQUIRE_THROWS_WITH(rolling.update(prices, volumes),
                      Contains("RollingDollarVolume::update") && Contains(bad.message));
  REQUIRE_THROWS_AS(ewm.update(prices, volumes), dynweight::Error);
  REQUIRE_THROWS_WITH(ewm.update(prices, volumes),
                      Contains("EwmaDollarVolume::update") && Contains(bad.message));

  // Wrong sizes, and a product that overflows although both factors are finite.
  const Eigen::VectorXd three = Eigen::VectorXd::Ones(3);
  REQUIRE_THROWS_WITH(rolling.update(three, market.volumes.col(7)),
                      Contains("prices has 3 entries at bar 7, expected 4"));
  REQUIRE_THROWS_WITH(ewm.update(market.prices.col(7), three),
                      Contains("volumes has 3 entries at bar 7, expected 4"));
  Eigen::VectorXd huge_prices = market.prices.col(7);
  Eigen::VectorXd huge_volumes = market.volumes.col(7);
  huge_prices(2) = 1e200;
  huge_volumes(2) = 1e200;
  REQUIRE_THROWS_WITH(
      rolling.update(huge_prices, huge_volumes),
      Contains("dollar volume (prices * volumes)[2] (asset 2 ('C')) at bar 7 is inf"));
  REQUIRE_THROWS_AS(ewm.update(huge_prices, huge_volumes), dynweight::Error);

  REQUIRE(rolling.bars() == 7);
  REQUIRE(rolling.count() == 5);
  REQUIRE(identical(rolling.average(), rolling_average));
  REQUIRE(identical(rolling.window_sum(), rolling_sum));
  REQUIRE(identical(rolling.last_dollar_volume(), rolling_last));
  REQUIRE(ewm.bars() == 7);
  REQUIRE(identical(ewm.average(), ewm_average));
  REQUIRE(identical(ewm.last_dollar_volume(), ewm_last));

  // ... and both carry on exactly as engines that never saw the bad bars.
  for (Index t = 7; t < market.prices.cols(); ++t) {
    rolling.update(market.prices.col(t), market.volumes.col(t));
    rolling_twin.update(market.prices.col(t), market.volumes.col(t));
    ewm.update(market.prices.col(t), market.volumes.col(t));
    ewm_twin.update(market.prices.col(t), market.volumes.col(t));
    REQUIRE(identical(rolling.average(), rolling_twin.average()));
    REQUIRE(identical(ewm.average(), ewm_twin.average()));
  }
}

TEST_CASE(
    "Dollar volume engines: values up to input_limit() keep the sums finite, larger are "
    "rejected",
    "[stats][adv][errors]") {
  // Dollar volumes at 0.999 of the limit on every bar, through several windows: the window sums
  // and the EWMA's old weight × average stay finite; 1.01 × the limit is rejected, unchanged.
  const Index n = 2;
  RollingDollarVolume<double> rolling(n, {.window = 7});
  EwmaDollarVolume<double> ewma(n, {.decay = dynweight::EwmaDecay::from_alpha(0.01)});
  const Eigen::VectorXd prices = Eigen::VectorXd::Constant(n, 1.0);
  for (Index t = 0; t < 40; ++t) {
    const double heavy = t % 3 == 0 ? 0.999 : 0.5;
    rolling.update(prices, Eigen::VectorXd::Constant(n, heavy * rolling.input_limit()));
    ewma.update(prices, Eigen::VectorXd::Constant(n, heavy * ewma.input_limit()));
    INFO("bar " << t);
    REQUIRE(rolling.window_sum().allFinite());
    REQUIRE(rolling.average().allFinite() == rolling.ready());  // NaN until the window is full
    REQUIRE(ewma.average().allFinite());
  }
  const Eigen::VectorXd before = rolling.average();
  const Eigen::VectorXd ewma_before = ewma.average();
  Eigen::VectorXd volumes = Eigen::VectorXd::Zero(n);
  volumes(1) = 1.01 * rolling.input_limit();
  REQUIRE_THROWS_WITH(rolling.update(prices, volumes),
                      Contains("dollar volume (prices * volumes)[1]") && Contains("within ±"));
  volumes(1) = 1.01 * ewma.input_limit();
  REQUIRE_THROWS_WITH(ewma.update(prices, volumes), Contains("within ±"));
  CHECK(rolling.bars() == 40);
  CHECK(ewma.bars() == 40);
  CHECK(dynweight::test::identical(rolling.average(), before));
  CHECK(dynweight::test::identical(ewma.average(), ewma_before));
}

TEST_CASE("Dollar volume engines validate their parameters", "[stats][adv][errors]") {
  REQUIRE_THROWS_WITH(
      (RollingDollarVolume<double>(3, {.window = 0})),
      Contains("RollingDollarVolumeOptions") && Contains("window = 0; must be >= 1"));
  REQUIRE_THROWS_WITH((RollingDollarVolume<double>(3, {.window = 5, .min_periods = 6})),
                      Contains("min_periods = 6"));
  REQUIRE_THROWS_WITH((RollingDollarVolume<double>(3, {.window = 5, .min_periods = -1})),
                      Contains("min_periods = -1"));
  REQUIRE_THROWS_WITH((RollingDollarVolume<double>(0, {.window = 5})), Contains("assets = 0"));
  REQUIRE_THROWS_WITH((RollingDollarVolume<double>(3, {.window = 5}, {"A", "B"})),
                      Contains("names has 2 entries, expected 3"));
  const auto decay = EwmaDecay::from_span(10);
  REQUIRE_THROWS_WITH((EwmaDollarVolume<double>(3, {.decay = decay, .min_periods = -2})),
                      Contains("EwmaDollarVolumeOptions") && Contains("min_periods = -2"));
  REQUIRE_THROWS_WITH((EwmaDollarVolume<double>(-1, {.decay = decay})),
                      Contains("EwmaDollarVolume") && Contains("assets = -1"));
  REQUIRE_THROWS_WITH((EwmaDollarVolume<double>(2, {.decay = decay}, {"A", "B", "C"})),
                      Contains("names has 3 entries, expected 2"));
  const EwmaDollarVolume<double> named(2, {.decay = decay, .adjust = false}, {"X", "Y"});
  REQUIRE(named.names()[1] == "Y");
  REQUIRE_FALSE(named.options().adjust);
  const RollingDollarVolume<double> defaults(2, {});
  REQUIRE(defaults.window() == 60);
  const EwmaDollarVolume<double> ewm_defaults(2, {});
  REQUIRE(ewm_defaults.options().adjust);
  REQUIRE(ewm_defaults.alpha() == EwmaDecay::from_halflife(30).alpha());
  const RollingDollarVolume<double> rolling(2, {.window = 9});
  REQUIRE(rolling.window() == 9);
  REQUIRE(rolling.options().effective_min_periods() == 9);
  REQUIRE(rolling.assets() == 2);
}

TEST_CASE("Dollar volume engines: reset forgets every bar", "[stats][adv]") {
  const Market market = reference_market();
  RollingDollarVolume<double> rolling(4, {.window = 7});
  RollingDollarVolume<double> rolling_fresh(4, {.window = 7});
  EwmaDollarVolume<double> ewm(4, {.decay = EwmaDecay::from_alpha(0.1)});
  EwmaDollarVolume<double> ewm_fresh(4, {.decay = EwmaDecay::from_alpha(0.1)});
  for (Index t = 0; t < 30; ++t) {
    rolling.update(market.prices.col(t), market.volumes.col(t));
    ewm.update(market.prices.col(t), market.volumes.col(t));
  }
  rolling.reset();
  ewm.reset();
  REQUIRE(rolling.bars() == 0);
  REQUIRE(rolling.count() == 0);
  REQUIRE_FALSE(rolling.ready());
  REQUIRE(rolling.average().array().isNaN().all());
  REQUIRE(rolling.last_dollar_volume().array().isNaN().all());
  REQUIRE(ewm.bars() == 0);
  REQUIRE_FALSE(ewm.ready());
  REQUIRE(ewm.average().array().isNaN().all());
  for (Index t = 30; t < 80; ++t) {
    rolling.update(market.prices.col(t), market.volumes.col(t));
    rolling_fresh.update(market.prices.col(t), market.volumes.col(t));
    ewm.update(market.prices.col(t), market.volumes.col(t));
    ewm_fresh.update(market.prices.col(t), market.volumes.col(t));
    REQUIRE(identical(rolling.average(), rolling_fresh.average()));
    REQUIRE(identical(ewm.average(), ewm_fresh.average()));
  }
}

TEST_CASE("Dollar volume engines do not allocate in update", "[stats][adv][allocation]") {
  const Index assets = 30;
  const Index bars = 200;
  std::mt19937_64 engine(5);
  std::lognormal_distribution<double> draw(4.0, 1.0);
  Eigen::MatrixXd prices(assets, bars);  // one bar per column
  Eigen::MatrixXd volumes(assets, bars);
  for (Index t = 0; t < bars; ++t) {
    for (Index i = 0; i < assets; ++i) {
      prices(i, t) = draw(engine);
      volumes(i, t) = t % 17 == 0 ? 0.0 : std::round(1000 * draw(engine));
    }
  }
  RollingDollarVolume<double> rolling(assets, {.window = 21, .min_periods = 3});
  EwmaDollarVolume<double> ewm(assets, {.decay = EwmaDecay::from_halflife(10), .adjust = false});
  double sink = 0.0;
  {
    dynweight::test::NoAllocationScope scope;
    for (Index t = 0; t < bars; ++t) {
      rolling.update(prices.col(t), volumes.col(t));
      ewm.update(prices.col(t), volumes.col(t));
      if (rolling.ready())
        sink += rolling.average()(assets - 1) + ewm.average()(0);
    }
    REQUIRE(scope.allocations() == 0);
  }
  REQUIRE(std::isfinite(sink));
}

TEST_CASE("Dollar volume engines in float track a double direct computation",
          "[stats][adv][float]") {
  const Market market = reference_market();
  // float inputs; their products are exact in double (24 + 24 bits), so only the engines' float
  // arithmetic differs from the reference.
  const Eigen::MatrixXf prices = market.prices.cast<float>();
  const Eigen::MatrixXf volumes = market.volumes.cast<float>();
  const Eigen::MatrixXd dollar_volumes = prices.cast<double>().cwiseProduct(volumes.cast<double>());
  const double float_roundoff = std::numeric_limits<float>::epsilon() / 2.0;
  const Index window = 20;
  RollingDollarVolume<float> rolling(4, {.window = window, .min_periods = 5});
  EwmaDollarVolume<float> ewm(4, {.decay = EwmaDecay::from_halflife(10)});
  for (Index t = 0; t < prices.cols(); ++t) {
    CAPTURE(t);
    rolling.update(prices.col(t), volumes.col(t));
    ewm.update(prices.col(t), volumes.col(t));
    const Index n = std::min(t + 1, window);
    if (rolling.ready()) {
      // One rounding of each product, n − 1 in the sum, one in the division.
      REQUIRE(worst_relative_error(rolling.average(), direct_mean(dollar_volumes, t, n)) <=
              double(2 * n + 1) * float_roundoff);
    }
    // ~c u/α for the recursion, α ≈ 0.067.
    REQUIRE(worst_relative_error(ewm.average(), direct_ewm(dollar_volumes, t, ewm.alpha(), true)) <=
            40 * float_roundoff);
  }
}
