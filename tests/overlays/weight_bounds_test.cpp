#include "dynweight/overlays/weight_bounds.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "allocation_counter.hpp"
#include "near.hpp"
#include "overlay_data.hpp"

using Catch::Matchers::Contains;
using dynweight::BoundsProjection;
using dynweight::Index;
using dynweight::StatusCode;
using dynweight::WeightBounds;
using dynweight::test::near;

namespace {

using LongVector = Eigen::Matrix<long double, Eigen::Dynamic, 1>;
template <class Scalar>
using Vector = dynweight::Vector<Scalar>;

template <class Scalar>
constexpr long double epsilon = std::numeric_limits<Scalar>::epsilon();

// The proportional rule by its definition, in rounds: scale the free weights to fill what the
// fixed ones leave, then clamp the violators and repeat. Only the side with the larger violation
// is fixed in a round: if the cap excess E_U exceeds the floor shortfall E_L, the sum after
// clamping is G − E_U + E_L < G, so the final multiplier c is larger and the cap violators are
// certainly at their caps in the solution, while the floor violators may not stay at their
// floors (and the other way round); with E_U = E_L the current c is final.
LongVector proportional_by_rounds(const LongVector& v, const LongVector& lower,
                                  const LongVector& upper, long double invested) {
  const Index n = v.size();
  std::vector<int> state(static_cast<std::size_t>(n), 0);  // −1 floor, +1 cap, 0 free
  long double c = 0;
  for (Index round = 0; round <= n + 1; ++round) {
    long double fixed = 0;
    long double free_weight = 0;
    for (Index i = 0; i < n; ++i) {
      const int s = state[std::size_t(i)];
      fixed += s < 0 ? lower(i) : s > 0 ? upper(i) : 0.0L;
      free_weight += s == 0 ? v(i) : 0.0L;
    }
    if (free_weight == 0)
      break;
    c = (invested - fixed) / free_weight;
    long double over = 0;
    long double under = 0;
    for (Index i = 0; i < n; ++i) {
      if (state[std::size_t(i)] != 0)
        continue;
      over += std::max(0.0L, c * v(i) - upper(i));
      under += std::max(0.0L, lower(i) - c * v(i));
    }
    if (over == 0 && under == 0)
      break;
    for (Index i = 0; i < n; ++i) {
      int& s = state[std::size_t(i)];
      if (s == 0 && over >= under && c * v(i) > upper(i))
        s = 1;
      if (s == 0 && under >= over && c * v(i) < lower(i))
        s = -1;
    }
  }
  LongVector w(n);
  for (Index i = 0; i < n; ++i) {
    const int s = state[std::size_t(i)];
    w(i) = s < 0 ? lower(i) : s > 0 ? upper(i) : c * v(i);
  }
  return w;
}

// The euclidean projection by brute force: bisection on ν of Σ clamp(v − ν, L, U) = G.
LongVector euclidean_by_bisection(const LongVector& v, const LongVector& lower,
                                  const LongVector& upper, long double invested) {
  const auto projected = [&](long double nu) {
    return (v.array() - nu).max(lower.array()).min(upper.array()).matrix().eval();
  };
  long double lo = (v - upper).minCoeff() - 1;  // Σ = ΣU >= G
  long double hi = (v - lower).maxCoeff() + 1;  // Σ = ΣL <= G
  for (int iteration = 0; iteration < 300; ++iteration) {
    const long double mid = (lo + hi) / 2;
    if (projected(mid).sum() > invested)
      lo = mid;
    else
      hi = mid;
  }
  return projected((lo + hi) / 2);
}

template <class Scalar>
struct BoundsCase {
  Vector<Scalar> v;
  Vector<Scalar> floors;
  Vector<Scalar> caps;
};

template <class Scalar>
BoundsCase<Scalar> make_case(Index n, std::uint64_t seed, double invested, bool zeros) {
  const auto bounds = dynweight::test::random_bounds(n, seed);
  return {dynweight::test::random_weights(n, seed, invested, zeros).cast<Scalar>(),
          bounds.floors.cast<Scalar>(), bounds.caps.cast<Scalar>()};
}

// Every property of one projection of one case.
template <class Scalar>
void check_projection(const BoundsCase<Scalar>& data, BoundsProjection projection) {
  const Index n = data.v.size();
  WeightBounds<Scalar> bounds(data.floors, data.caps, {.projection = projection});
  Vector<Scalar> w = data.v;
  const auto status = bounds.apply({}, w);
  REQUIRE(status.ok());
  REQUIRE(bounds.projection_used() == projection);

  // The bounds hold exactly, against l·G and u·G as the overlay states them.
  const Scalar invested = bounds.invested();
  CHECK(std::abs(static_cast<long double>(invested) - dynweight::test::sum_ld(data.v)) <=
        n * epsilon<Scalar> * invested);
  Index violations = 0;
  for (Index i = 0; i < n; ++i) {
    violations += w(i) < data.floors(i) * invested || w(i) > data.caps(i) * invested;
  }
  CHECK(violations == 0);
  // Σw = G to rounding: within N·ε·G (observed at most 3.1 ε·G at N = 500).
  CHECK(std::abs(dynweight::test::sum_ld(w) - static_cast<long double>(invested)) <=
        n * epsilon<Scalar> * invested);

  // Against the independent computation, from the same inputs, in long double, to 8 ε·G
  // (observed at most 0.5 ε·G over this suite).
  const LongVector v = data.v.template cast<long double>();
  const long double g = dynweight::test::sum_ld(data.v);
  const LongVector lower = data.floors.template cast<long double>() * g;
  const LongVector upper = data.caps.template cast<long double>() * g;
  const LongVector reference = projection == BoundsProjection::proportional
                                   ? proportional_by_rounds(v, lower, upper, g)
                                   : euclidean_by_bisection(v, lower, upper, g);
  CHECK(near(w.template cast<double>(), reference.template cast<double>(),
             double(8 * epsilon<Scalar> * g), dynweight::test::Tolerance::absolute));

  // Optimality (KKT): one multiplier explains every free coordinate, and every clamped
  // coordinate is on the side of its bound that the multiplier puts it on (to 8 ε, relative to
  // the multiplier or to G).
  std::vector<long double> implied;
  for (Index i = 0; i < n; ++i) {
    if (w(i) > data.floors(i) * invested && w(i) < data.caps(i) * invested) {
      implied.push_back(projection == BoundsProjection::proportional
                            ? static_cast<long double>(w(i)) / v(i)
                            : v(i) - static_cast<long double>(w(i)));
    }
  }
  if (!implied.empty()) {
    const auto [lo, hi] = std::minmax_element(implied.begin(), implied.end());
    const long double multiplier = (*lo + *hi) / 2;
    const long double scale = projection == BoundsProjection::proportional ? multiplier : g;
    CHECK(*hi - *lo <= 8 * epsilon<Scalar> * scale);
    const long double slack = 8 * epsilon<Scalar> * g;
    for (Index i = 0; i < n; ++i) {
      const long double line =
          projection == BoundsProjection::proportional ? multiplier * v(i) : v(i) - multiplier;
      if (w(i) == data.caps(i) * invested && w(i) > data.floors(i) * invested)
        CHECK(line >= upper(i) - slack);
      if (w(i) == data.floors(i) * invested && w(i) < data.caps(i) * invested)
        CHECK(line <= lower(i) + slack);
    }
  }
  // From 5 assets on, bounds bind in every case (so the suite tests the projection, not the
  // early return); with 2 they may not.
  if (n >= 5)
    CHECK(bounds.at_cap() + bounds.at_floor() > 0);

  // Scaling invariance: 3·v projects to 3·w.
  Vector<Scalar> tripled = Scalar(3) * data.v;
  REQUIRE(bounds.apply({}, tripled).ok());
  CHECK(near(tripled, (Scalar(3) * w).eval(), double(8 * epsilon<Scalar> * 3 * g),
             dynweight::test::Tolerance::absolute));

  // The result is feasible: projecting it again moves it by rounding only (its sum, hence G, may
  // differ by an ulp).
  Vector<Scalar> again = w;
  REQUIRE(bounds.apply({}, again).ok());
  CHECK(near(again, w, double(8 * epsilon<Scalar> * g), dynweight::test::Tolerance::absolute));
}

// Proportional bounds on weights spread over the whole range of `Scalar`: every property against
// `proportional_by_rounds` in long double (whose wider exponent holds c and u_i G / v_i where
// `Scalar` cannot). Checks: status and projection, every bound exactly, Σw = G to N·ε·G, the
// weights to 8 ε·G absolute (as `check_projection`: free weights far below G may be subnormal, so
// their ratios, the KKT check there, are not taken), and the same assets at their caps.
template <class Scalar>
void check_wide_range(const Vector<Scalar>& v, const Vector<Scalar>& caps) {
  const Index n = v.size();
  WeightBounds<Scalar> bounds(Vector<Scalar>::Zero(n), caps);
  Vector<Scalar> w = v;
  const auto status = bounds.apply({}, w);
  REQUIRE(status.ok());
  REQUIRE(bounds.projection_used() == BoundsProjection::proportional);
  const Scalar invested = bounds.invested();
  Index violations = 0;
  for (Index i = 0; i < n; ++i)
    violations += w(i) < 0 || w(i) > caps(i) * invested;
  CHECK(violations == 0);
  CHECK(std::abs(dynweight::test::sum_ld(w) - static_cast<long double>(invested)) <=
        n * epsilon<Scalar> * invested);

  const long double g = dynweight::test::sum_ld(v);
  const LongVector upper = caps.template cast<long double>() * g;
  const LongVector reference =
      proportional_by_rounds(v.template cast<long double>(), LongVector::Zero(n), upper, g);
  CHECK(near(w.template cast<double>(), reference.template cast<double>(),
             double(8 * epsilon<Scalar> * g), dynweight::test::Tolerance::absolute));
  Index mismatched_caps = 0;
  Index reference_caps = 0;
  for (Index i = 0; i < n; ++i) {
    const bool capped = reference(i) == upper(i);
    reference_caps += capped;
    mismatched_caps += capped != (w(i) == caps(i) * invested);
  }
  CHECK(mismatched_caps == 0);
  CHECK(bounds.at_cap() == reference_caps);
}

// n weights 10^x, x uniform in [lowest, highest] (a mantissa in [1, 10) each), and caps uniform
// in [1.05, 2.5] / n (summing to more than 1).
template <class Scalar>
std::pair<Vector<Scalar>, Vector<Scalar>> wide_range_case(Index n, std::uint64_t seed,
                                                          double lowest, double highest) {
  std::mt19937_64 generator(seed);
  std::uniform_real_distribution<double> exponent(lowest, highest);
  std::uniform_real_distribution<double> cap(1.05, 2.5);
  Vector<Scalar> v(n);
  Vector<Scalar> caps(n);
  for (Index i = 0; i < n; ++i) {
    v(i) = static_cast<Scalar>(std::pow(10.0, exponent(generator)));
    caps(i) = static_cast<Scalar>(cap(generator) / double(n));
  }
  return {v, caps};
}
}  // namespace

TEST_CASE("WeightBounds: projections over sizes, seeds and invested sums",
          "[overlays][weight_bounds]") {
  const Index n = GENERATE(2, 5, 50, 500);
  const std::uint64_t seed = GENERATE(1u, 2u, 3u);
  const double invested = GENERATE(1.0, 0.7);
  const bool zeros = GENERATE(false, true);
  const auto projection = GENERATE(BoundsProjection::proportional, BoundsProjection::euclidean);
  CAPTURE(n, seed, invested, zeros, static_cast<int>(projection));
  SECTION("double") {
    check_projection(make_case<double>(n, seed, invested, zeros), projection);
  }
  SECTION("float") {
    check_projection(make_case<float>(n, seed, invested, zeros), projection);
  }
}

TEST_CASE("WeightBounds: a worked example of each projection", "[overlays][weight_bounds]") {
  const Eigen::VectorXd v = (Eigen::VectorXd(4) << 0.5, 0.3, 0.15, 0.05).finished();
  SECTION("proportional: clamp, redistribute pro rata, repeat") {
    // Floors 0.1, caps 0.35. Asset 0 is capped and asset 3 floored; assets 1 and 2 share the
    // remaining 0.55 in the ratio 0.3 : 0.15, i.e. 0.367 and 0.183, but 0.367 > 0.35: asset 1 is
    // capped too, and asset 2 takes 1 − 0.35 − 0.35 − 0.1 = 0.2 (c = 0.2/0.15; asset 3 at
    // 0.05·c = 0.067 stays below its floor).
    WeightBounds<double> bounds(4, 0.1, 0.35);
    Eigen::VectorXd w = v;
    REQUIRE(bounds.apply({}, w).ok());
    const Eigen::VectorXd expected = (Eigen::VectorXd(4) << 0.35, 0.35, 0.2, 0.1).finished();
    CHECK(near(w, expected, 1e-16, dynweight::test::Tolerance::absolute));
    CHECK(bounds.at_cap() == 2);
    CHECK(bounds.at_floor() == 1);
  }
  SECTION("proportional keeps the ratios of the free weights") {
    WeightBounds<double> bounds(4, 0.0, 0.4);
    Eigen::VectorXd w = v;
    REQUIRE(bounds.apply({}, w).ok());
    // 0.1 cut from asset 0 is spread over 0.3 : 0.15 : 0.05 → ×(0.6/0.5).
    const Eigen::VectorXd expected = (Eigen::VectorXd(4) << 0.4, 0.36, 0.18, 0.06).finished();
    CHECK(near(w, expected, 1e-16, dynweight::test::Tolerance::absolute));
  }
  SECTION("euclidean: the excess is shared equally by every free asset") {
    WeightBounds<double> bounds(4, 0.0, 0.4, {.projection = BoundsProjection::euclidean});
    Eigen::VectorXd w = v;
    REQUIRE(bounds.apply({}, w).ok());
    // The 0.1 cut from asset 0 is added equally to assets 1–3 (ν = −0.1/3).
    const double d = 0.1 / 3;
    const Eigen::VectorXd expected =
        (Eigen::VectorXd(4) << 0.4, 0.3 + d, 0.15 + d, 0.05 + d).finished();
    CHECK(near(w, expected, 1e-16, dynweight::test::Tolerance::absolute));
  }
  SECTION("floors summing to 1 pin every weight to its floor") {
    const Eigen::VectorXd floors = (Eigen::VectorXd(4) << 0.25, 0.25, 0.25, 0.25).finished();
    const Eigen::VectorXd caps = Eigen::VectorXd::Constant(4, 0.6);
    for (const auto projection : {BoundsProjection::proportional, BoundsProjection::euclidean}) {
      WeightBounds<double> bounds(floors, caps, {.projection = projection});
      Eigen::VectorXd w = 2.0 * v;  // invested sum 2
      REQUIRE(bounds.apply({}, w).ok());
      CHECK(w == Eigen::VectorXd::Constant(4, 0.5));
    }
  }
  SECTION("euclidean allows short floors") {
    const Eigen::VectorXd floors = Eigen::VectorXd::Constant(3, -0.2);
    const Eigen::VectorXd caps = Eigen::VectorXd::Constant(3, 0.6);
    WeightBounds<double> bounds(floors, caps, {.projection = BoundsProjection::euclidean});
    Eigen::VectorXd w = (Eigen::VectorXd(3) << 1.2, 0.1, -0.3).finished();
    REQUIRE(bounds.apply({}, w).ok());
    // ν = −0.3: asset 0 at its cap 0.6, asset 1 at 0.1 + 0.3, asset 2 at −0.3 + 0.3 (above its
    // floor −0.2).
    const Eigen::VectorXd expected = (Eigen::VectorXd(3) << 0.6, 0.4, 0.0).finished();
    CHECK(near(w, expected, 1e-15, dynweight::test::Tolerance::absolute));
  }
}

TEST_CASE("WeightBounds: weights already within bounds are untouched",
          "[overlays][weight_bounds]") {
  const Index n = GENERATE(2, 5, 50);
  const auto projection = GENERATE(BoundsProjection::proportional, BoundsProjection::euclidean);
  Eigen::VectorXd v = dynweight::test::random_weights(n, 42, 0.9);
  WeightBounds<double> bounds(n, 0.0, 1.0, {.projection = projection});
  const Eigen::VectorXd before = v;
  REQUIRE(bounds.apply({}, v).ok());
  CHECK(dynweight::test::identical(v, before));
  CHECK(bounds.at_cap() == 0);
}

TEST_CASE("WeightBounds: proportional falls back to euclidean when the caps cannot hold G",
          "[overlays][weight_bounds]") {
  // One asset carries all the weight and its cap is 0.5: no c reaches Σ = 1.
  WeightBounds<double> bounds(3, 0.0, 0.5);
  Eigen::VectorXd w = (Eigen::VectorXd(3) << 1.0, 0.0, 0.0).finished();
  const auto status = bounds.apply({}, w);
  CHECK(status.code == StatusCode::numerical_issue);
  CHECK_THAT(status.detail, Contains("euclidean"));
  CHECK(bounds.projection_used() == BoundsProjection::euclidean);
  const Eigen::VectorXd expected = (Eigen::VectorXd(3) << 0.5, 0.25, 0.25).finished();
  CHECK(near(w, expected, 1e-16, dynweight::test::Tolerance::absolute));

  // With the caps of the assets with weight summing to exactly 1, proportional still works: every
  // such asset at its cap, the zero-weight one at its floor.
  WeightBounds<double> exact(3, 0.0, 0.5);
  Eigen::VectorXd two = (Eigen::VectorXd(3) << 0.7, 0.3, 0.0).finished();
  REQUIRE(exact.apply({}, two).ok());
  const Eigen::VectorXd capped = (Eigen::VectorXd(3) << 0.5, 0.5, 0.0).finished();
  CHECK(near(two, capped, 1e-16, dynweight::test::Tolerance::absolute));
  CHECK(exact.projection_used() == BoundsProjection::proportional);
}

TEST_CASE("WeightBounds: caps summing to 1 only to rounding hold every weight at its cap",
          "[overlays][weight_bounds]") {
  // Caps 0.5 and 0.5 − 2⁻⁵³ sum to 1 − 2⁻⁵³ < 1, which the constructor accepts (within N·ε):
  // no c reaches Σ = 1 exactly, and the closest point that meets the bounds is the caps
  // themselves, in either projection, with Σw within 2ε of 1.
  const double below_half = 0.5 - std::ldexp(1.0, -53);
  const Eigen::VectorXd caps = (Eigen::VectorXd(2) << 0.5, below_half).finished();
  REQUIRE(caps.sum() < 1.0);
  const auto projection = GENERATE(BoundsProjection::proportional, BoundsProjection::euclidean);
  CAPTURE(projection == BoundsProjection::euclidean);
  WeightBounds<double> bounds(Eigen::VectorXd::Zero(2), caps, {.projection = projection});
  Eigen::VectorXd w = (Eigen::VectorXd(2) << 0.9, 0.1).finished();
  const auto status = bounds.apply({}, w);
  CHECK(status.ok());
  CHECK(w == caps);
  CHECK(bounds.at_cap() == 2);
  CHECK(bounds.projection_used() == projection);
  CHECK(std::abs(w.sum() - 1.0) <= 2 * epsilon<double>);
}

TEST_CASE("WeightBounds: proportional with weights down to the least subnormal",
          "[overlays][weight_bounds]") {
  SECTION("a subnormal weight beside two capped ones takes what they leave") {
    // u G / v = 0.45 / 1e-315 overflows double: the breakpoint was infinite, c = 0.1 / 1e-315
    // overflowed, and the asset went to its cap (Σw = 1.35, status success).
    WeightBounds<double> bounds(3, 0.0, 0.45);
    Eigen::VectorXd w = (Eigen::VectorXd(3) << 0.6, 0.4, 1e-315).finished();
    REQUIRE(bounds.apply({}, w).ok());
    const Eigen::VectorXd expected = (Eigen::VectorXd(3) << 0.45, 0.45, 0.1).finished();
    CHECK(near(w, expected, 1e-16, dynweight::test::Tolerance::absolute));
    CHECK(std::abs(dynweight::test::sum_ld(w) - 1) <= 3 * epsilon<double>);
    CHECK(bounds.at_cap() == 2);
  }
  SECTION("a weight 1e-300 of the others is not lost to a running sum of slopes") {
    // Its breakpoint (4.5e299) is finite; a slope summed along the walk (0.6 + 0.4 + 1e-300,
    // then minus 0.6 and 0.4) is 0 and put the asset at its cap.
    WeightBounds<double> bounds(3, 0.0, 0.45);
    Eigen::VectorXd w = (Eigen::VectorXd(3) << 0.6, 0.4, 1e-300).finished();
    REQUIRE(bounds.apply({}, w).ok());
    const Eigen::VectorXd expected = (Eigen::VectorXd(3) << 0.45, 0.45, 0.1).finished();
    CHECK(near(w, expected, 1e-16, dynweight::test::Tolerance::absolute));
  }
  SECTION("two breakpoints past the largest double are still ordered") {
    // G = 0.9. 0.2 G / 2e-320 = 9e318 and 0.45 G / 1e-320 = 4.05e319 both overflow double, and
    // c = 0.3 G / 1e-320 = 2.7e319 lies between them: asset 2 is capped at 0.2 G and asset 1
    // takes the remaining 0.3 G (sharing 0.5 G in the ratio 1 : 2 would put asset 2 above its cap).
    const Eigen::VectorXd caps = (Eigen::VectorXd(3) << 0.5, 0.45, 0.2).finished();
    WeightBounds<double> bounds(Eigen::VectorXd::Zero(3), caps);
    Eigen::VectorXd w = (Eigen::VectorXd(3) << 0.9, 1e-320, 2e-320).finished();
    REQUIRE(bounds.apply({}, w).ok());
    const Eigen::VectorXd expected = 0.9 * (Eigen::VectorXd(3) << 0.5, 0.3, 0.2).finished();
    CHECK(near(w, expected, 1e-16, dynweight::test::Tolerance::absolute));
    CHECK(bounds.at_cap() == 2);
  }
  SECTION("float: a subnormal weight") {
    WeightBounds<float> bounds(3, 0.0, 0.45);
    Eigen::VectorXf w = (Eigen::VectorXf(3) << 0.6f, 0.4f, 1e-44f).finished();
    REQUIRE(bounds.apply({}, w).ok());
    const Eigen::VectorXf expected = (Eigen::VectorXf(3) << 0.45f, 0.45f, 0.1f).finished();
    CHECK(near(w, expected, 1e-7, dynweight::test::Tolerance::absolute));
  }
}

TEST_CASE("WeightBounds: proportional over the whole exponent range, against long double",
          "[overlays][weight_bounds]") {
  // The reference needs long double's wider exponent (x87's 15 bits): with only double's, its c
  // overflows as the overlay's did.
  if (std::numeric_limits<long double>::max_exponent <= std::numeric_limits<double>::max_exponent)
    return;
  const Index n = GENERATE(3, 8, 40, 200);
  const std::uint64_t seed = GENERATE(1u, 2u, 3u, 4u, 5u);
  CAPTURE(n, seed);
  SECTION("double, subnormal to 1") {
    const auto [v, caps] = wide_range_case<double>(n, seed, -323.0, 0.0);
    check_wide_range(v, caps);
  }
  SECTION("double, 1e-30 to 1e300 (ratios past the largest double, no subnormal)") {
    const auto [v, caps] = wide_range_case<double>(n, seed, -30.0, 300.0);
    check_wide_range(v, caps);
  }
  SECTION("float, subnormal to 1") {
    const auto [v, caps] = wide_range_case<float>(n, seed, -44.5, 0.0);
    check_wide_range(v, caps);
  }
  SECTION("float, 1e-10 to 1e37") {
    const auto [v, caps] = wide_range_case<float>(n, seed, -10.0, 37.0);
    check_wide_range(v, caps);
  }
}

TEST_CASE("WeightBounds rejects infeasible or malformed bounds",
          "[overlays][weight_bounds][errors]") {
  REQUIRE_THROWS_WITH(WeightBounds<double>(3, 0.4, 0.5),
                      Contains("floors sum to 1.2") && Contains("caps sum to 1.5") &&
                          Contains("infeasible for a fully invested book"));
  REQUIRE_THROWS_WITH(WeightBounds<double>(4, 0.0, 0.2),
                      Contains("floors sum to 0") && Contains("caps sum to 0.8") &&
                          Contains("infeasible for a fully invested book"));
  const dynweight::AssetNames names{"A", "B", "C"};
  const Eigen::VectorXd floors = (Eigen::VectorXd(3) << 0.1, 0.3, 0.0).finished();
  const Eigen::VectorXd caps = (Eigen::VectorXd(3) << 0.5, 0.2, 0.5).finished();
  REQUIRE_THROWS_WITH(WeightBounds<double>(floors, caps, {}, &names),
                      Contains("floors[1] = 0.3 is above caps[1] = 0.2 (asset 1 ('B'))"));
  Eigen::VectorXd bad_caps = Eigen::VectorXd::Constant(3, 0.5);
  bad_caps(2) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_WITH(WeightBounds<double>(Eigen::VectorXd::Zero(3), bad_caps, {}, &names),
                      Contains("caps[2] (asset 2 ('C'))") && Contains("nan"));
  const Eigen::VectorXd short_floors = (Eigen::VectorXd(3) << 0.1, -0.1, 0.0).finished();
  REQUIRE_THROWS_WITH(WeightBounds<double>(short_floors, Eigen::VectorXd::Constant(3, 0.5)),
                      Contains("floors[1]") && Contains("-0.1"));
  CHECK_NOTHROW(WeightBounds<double>(short_floors, Eigen::VectorXd::Constant(3, 0.5),
                                     {.projection = BoundsProjection::euclidean}));
  REQUIRE_THROWS_WITH(WeightBounds<double>(Eigen::VectorXd::Zero(3), Eigen::VectorXd::Ones(2)),
                      Contains("caps has 2 entries"));
  REQUIRE_THROWS_WITH(WeightBounds<double>(0, 0.0, 1.0), Contains("assets = 0"));
  REQUIRE_THROWS_WITH(
      WeightBounds<double>(3, 0.0, 1.0, {.projection = static_cast<BoundsProjection>(7)}),
      Contains("projection = 7"));
}

TEST_CASE("WeightBounds: bad weights throw and change nothing",
          "[overlays][weight_bounds][errors]") {
  const dynweight::AssetNames names{"A", "B", "C"};
  WeightBounds<double> bounds(3, 0.1, 0.5, {}, &names);
  Eigen::VectorXd good = (Eigen::VectorXd(3) << 0.8, 0.15, 0.05).finished();
  REQUIRE(bounds.apply({}, good).ok());
  const double invested = bounds.invested();
  const Index at_cap = bounds.at_cap();
  const Index at_floor = bounds.at_floor();
  const auto unchanged = [&] {
    CHECK(bounds.invested() == invested);
    CHECK(bounds.at_cap() == at_cap);
    CHECK(bounds.at_floor() == at_floor);
  };

  Eigen::VectorXd w = (Eigen::VectorXd(3) << 0.6, -0.1, 0.5).finished();
  const Eigen::VectorXd before = w;
  REQUIRE_THROWS_WITH(bounds.apply({}, w),
                      Contains("weights[1] (asset 1 ('B'))") && Contains("-0.1"));
  CHECK(w == before);
  unchanged();
  w(1) = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_WITH(bounds.apply({}, w), Contains("weights[1]") && Contains("inf"));
  unchanged();
  Eigen::VectorXd zeros = Eigen::VectorXd::Zero(3);
  REQUIRE_THROWS_WITH(bounds.apply({}, zeros), Contains("sum of weights = 0"));
  CHECK(zeros == Eigen::VectorXd::Zero(3));
  Eigen::VectorXd short_weights(2);
  short_weights << 0.5, 0.5;
  REQUIRE_THROWS_WITH(bounds.apply({}, short_weights), Contains("weights has 2 entries"));
  unchanged();

  WeightBounds<double> euclidean(3, 0.1, 0.5, {.projection = BoundsProjection::euclidean});
  Eigen::VectorXd net_short = (Eigen::VectorXd(3) << 0.25, -0.5, 0.125).finished();
  REQUIRE_THROWS_WITH(euclidean.apply({}, net_short), Contains("sum of weights = -0.125"));
  CHECK(net_short == (Eigen::VectorXd(3) << 0.25, -0.5, 0.125).finished());
}

TEST_CASE("WeightBounds: apply does not allocate", "[overlays][weight_bounds]") {
  const Index n = 500;
  const auto data = make_case<double>(n, 9, 1.0, true);
  WeightBounds<double> proportional(data.floors, data.caps);
  WeightBounds<double> euclidean(data.floors, data.caps,
                                 {.projection = BoundsProjection::euclidean});
  WeightBounds<double> fallback(3, 0.0, 0.5);
  Eigen::VectorXd a = data.v;
  Eigen::VectorXd b = data.v;
  Eigen::VectorXd c = (Eigen::VectorXd(3) << 1.0, 0.0, 0.0).finished();
  dynweight::test::NoAllocationScope scope;  // from the first call: the buffers are sized already
  const auto sa = proportional.apply({}, a);
  const auto sb = euclidean.apply({}, b);
  const auto sc = fallback.apply({}, c);
  CHECK(scope.allocations() == 0);
  CHECK(sa.ok());
  CHECK(sb.ok());
  CHECK(sc.code == StatusCode::numerical_issue);
}
