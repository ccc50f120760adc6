#pragma once

/// \file
/// `WeightBounds`: per-asset floors and caps, met by an exact projection.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/overlays/overlay.hpp"

namespace dynweight {

/// Which point of the bounded set `WeightBounds` moves the weights to.
enum class BoundsProjection {
  /// w_i = clamp(c·v_i, l_i G, u_i G): the excess is redistributed pro rata among the unclamped
  /// weights, whose ratios are kept. The minimiser of the KL divergence Σ w log(w/v) − w.
  proportional,
  /// w_i = clamp(v_i − ν, l_i G, u_i G): the closest point in the Euclidean norm.
  euclidean,
};

/// Options of `WeightBounds`.
struct WeightBoundsOptions {
  BoundsProjection projection = BoundsProjection::proportional;

  /// Throws `dynweight::Error` unless `projection` is one of the enumerators.
  void validate() const {
    check_parameter(
        projection == BoundsProjection::proportional || projection == BoundsProjection::euclidean,
        CheckContext{"WeightBounds"}, "projection", static_cast<double>(projection),
        "proportional or euclidean");
  }
};

/// Per-asset floors l and caps u, as fractions of the invested sum G = Σ_i v_i of the weights v it
/// is given: the result is the projection of v onto {w : l_i G <= w_i <= u_i G, Σ w = G}. For a
/// fully invested book G = 1 (a sum within N·ε of 1 is taken as exactly 1) and they are plain
/// weight bounds; stated relative to G, they survive
/// exactly a later scaling of the whole book (a volatility target) and a move along a straight
/// line between two books that both meet them (a turnover limit).
///
/// **Projections** (`WeightBoundsOptions::projection`), both with Σw = G:
/// - `proportional` (default): w_i = clamp(c·v_i, l_i G, u_i G) with the one c >= 0 for which
///   Σw = G. What is cut from the capped weights (or added to the floored ones) is spread over the
///   free weights in proportion to their size, so their ratios are kept; it is the minimiser of
///   the KL divergence Σ w_i log(w_i/v_i) − w_i over the bounded set. Needs v >= 0 and l >= 0.
///   It cannot reach G when Σ_{v_i>0} u_i + Σ_{v_i=0} l_i < 1 (too few assets carry weight for
///   their caps): the euclidean projection is then used instead and the status is
///   `numerical_issue`, saying so.
/// - `euclidean`: w_i = clamp(v_i − ν, l_i G, u_i G) with the ν for which Σw = G: the closest
///   point in the L2 norm. Floors may be negative in this mode (short positions).
///
/// **Method.** Exact, no tolerance loop: f(c) = Σ_i clamp(a_i + s_i c, l_i G, u_i G) (a = 0, s = v
/// for proportional; a = v, s = 1, c = −ν for euclidean) is nondecreasing and piecewise linear;
/// its 2N breakpoints are sorted (into a buffer sized at construction), the segment holding G is
/// found in one walk with a running slope, and the assets it frees share what the others leave
/// of G in proportion to their slopes. That result is kept when every breakpoint is finite and Σw
/// is G to rounding. Otherwise (a weight 1e-17 times the others, whose slope the running sum
/// cancelled, so that the walk passed its segment and gave Σw = 1.35G; or a breakpoint past the
/// largest `Scalar`, from a weight down to the least subnormal) the segment is found again by
/// bisection, each probe evaluating f afresh, with breakpoints held as mantissa and exponent so
/// that they are ordered exactly. The final clamp makes every bound hold exactly
/// (bitwise, against l_i·G and u_i·G in `Scalar`); Σw equals G to rounding, for any weights.
/// Weights that already meet every bound are returned untouched (bitwise).
///
/// **Input.** At construction (`dynweight::Error`): floors or caps not finite, a floor above its
/// cap, a negative floor in proportional mode, Σl > 1 or Σu < 1 (beyond N·ε of `Scalar`, which
/// makes the bounds infeasible for a fully invested book). At `apply` (`dynweight::Error`, weights
/// and diagnostics unchanged): wrong size, a weight not finite, a negative weight in proportional
/// mode, G <= 0.
///
/// **Cost.** O(N log N) per `apply` (one sort of 2N breakpoints; in the fallback a second sort and
/// log₂(2N) evaluations of f, ~3× the time), O(N) when the weights are already within bounds; no
/// allocation after construction.
///
/// \code
/// dynweight::WeightBounds<double> bounds(n, 0.0, 0.10);  // n >= 10: no asset above 10%
/// dynweight::Status status = bounds.apply({}, weights);   // no context needed
/// \endcode
template <FloatingScalar Scalar_ = double>
class WeightBounds {
 public:
  using Scalar = Scalar_;
  using VectorType = Vector<Scalar>;

  /// The same floor and cap for each of `assets` assets; `names` (optional) are copied.
  WeightBounds(Index assets, double floor, double cap, WeightBoundsOptions options = {},
               const AssetNames* names = nullptr)
      : WeightBounds(constant(assets, floor), constant(assets, cap), options, names) {}

  /// Floors and caps, one per asset; `names` (optional) are copied.
  WeightBounds(VectorType floors, VectorType caps, WeightBoundsOptions options = {},
               const AssetNames* names = nullptr)
      : m_options(options), m_floors(std::move(floors)), m_caps(std::move(caps)) {
    m_options.validate();
    if (names != nullptr)
      m_names = *names;
    validate_bounds();
    const Index n = m_floors.size();
    m_lower.resize(n);
    m_upper.resize(n);
    m_offset.resize(n);
    m_slope.resize(n);
    m_side.resize(static_cast<std::size_t>(n));
    m_breakpoints.resize(static_cast<std::size_t>(2 * n));
  }

  /// The check of `apply` that does not read the weights: `assets` entries, as many as the bounds
  /// (`Overlaid` runs it before its policy; the context is not read).
  void check_context(const OverlayContext<Scalar>& context, Index assets) const {
    static_cast<void>(context);
    check_size(CheckContext{"WeightBounds::apply", m_names}, "weights", assets, this->assets());
  }

  /// Projects `weights` onto the bounds (the context is not read).
  Status apply(const OverlayContext<Scalar>& context, Eigen::Ref<VectorType> weights) {
    check_context(context, weights.size());
    const Index n = assets();
    const CheckContext check{"WeightBounds::apply", m_names};
    const bool proportional = m_options.projection == BoundsProjection::proportional;
    if (proportional)
      check_nonnegative(check, "weights", weights);
    else
      check_finite(check, "weights", weights);
    Scalar invested = weights.sum();
    check_parameter(invested > 0 && std::isfinite(invested), check, "sum of weights",
                    static_cast<double>(invested),
                    "finite and > 0 (the bounds are fractions of it)");
    // A fully invested book whose sum is 1 only to rounding is bounded by l and u themselves, so
    // that a cap of 0.1875 reads back as 0.1875, not 0.18750000000000006.
    if (std::abs(invested - 1) <= Scalar(n) * std::numeric_limits<Scalar>::epsilon())
      invested = 1;

    m_invested = invested;
    m_lower = m_floors * invested;
    m_upper = m_caps * invested;
    m_used = m_options.projection;
    if (((weights.array() >= m_lower.array()) && (weights.array() <= m_upper.array())).all()) {
      count_clamped(weights);
      return {};
    }
    if (proportional) {
      m_offset.setZero();
      m_slope = weights;
      if (solve(weights)) {
        count_clamped(weights);
        return {};
      }
      m_used = BoundsProjection::euclidean;
    }
    m_offset = weights;
    m_slope.setOnes();
    solve(weights);
    count_clamped(weights);
    if (proportional) {
      return {StatusCode::numerical_issue, 0, 0.0,
              "proportional bounds cannot be met: the caps of the assets with weight (plus the "
              "floors of the others) sum to less than 1, so the euclidean projection was used"};
    }
    return {};
  }

  [[nodiscard]] Index assets() const { return m_floors.size(); }
  /// The floors l and caps u, as fractions of the invested sum.
  [[nodiscard]] const VectorType& floors() const { return m_floors; }
  [[nodiscard]] const VectorType& caps() const { return m_caps; }
  [[nodiscard]] const WeightBoundsOptions& options() const { return m_options; }
  /// The invested sum G of the last `apply`'s input (the bounds were l·G and u·G).
  [[nodiscard]] Scalar invested() const { return m_invested; }
  /// The assets at their floor, and at their cap, after the last `apply`.
  [[nodiscard]] Index at_floor() const { return m_at_floor; }
  [[nodiscard]] Index at_cap() const { return m_at_cap; }
  /// The projection the last `apply` used (euclidean after a proportional fallback).
  [[nodiscard]] BoundsProjection projection_used() const { return m_used; }

 private:
  // c = mantissa · 2^exponent (mantissa 0 or ±[0.5, 1)): u_i G / v_i overflows `Scalar` for a
  // weight v_i below ~1e-308 G (double), and such breakpoints must still be ordered exactly.
  struct Breakpoint {
    Scalar mantissa;
    int exponent;
    Index asset;
    bool upper;  // past it the asset sits at its cap (else: past it, it leaves its floor)
  };

  // (bound − a) / s as a breakpoint; s > 0 and finite. A bound − a that overflowed (a bound of
  // 1e300 · G) is placed past every finite breakpoint, on its side.
  static Breakpoint breakpoint(Scalar numerator, Scalar slope, Index asset, bool upper) {
    if (numerator == 0)
      return {Scalar(0), 0, asset, upper};
    if (!std::isfinite(numerator))
      return {numerator > 0 ? Scalar(0.5) : Scalar(-0.5), std::numeric_limits<int>::max(), asset,
              upper};
    int numerator_exponent = 0;
    int slope_exponent = 0;
    const Scalar numerator_mantissa = std::frexp(numerator, &numerator_exponent);
    const Scalar slope_mantissa = std::frexp(slope, &slope_exponent);
    // A quotient of two mantissas lies in (0.5, 2): rounded once, as numerator / slope is when
    // that is a normal number, so the order is the one plain division gives wherever it can.
    int quotient_exponent = 0;
    const Scalar mantissa = std::frexp(numerator_mantissa / slope_mantissa, &quotient_exponent);
    return {mantissa, numerator_exponent - slope_exponent + quotient_exponent, asset, upper};
  }

  // a < b as the numbers they stand for.
  static bool precedes(const Breakpoint& a, const Breakpoint& b) {
    if (a.mantissa == 0 || b.mantissa == 0 || (a.mantissa < 0) != (b.mantissa < 0))
      return a.mantissa < b.mantissa;  // a zero or opposite signs: the signs decide
    if (a.exponent != b.exponent)
      return a.mantissa > 0 ? a.exponent < b.exponent : a.exponent > b.exponent;
    return a.mantissa < b.mantissa;
  }

  // f at a breakpoint c: Σ_i clamp(a_i + s_i c, l_i G, u_i G). When c itself is past the largest
  // `Scalar`, s_i c is formed as (s_i · mantissa) · 2^exponent: finite for the assets c leaves
  // free (s_i c < u_i G), infinite (at the cap after the clamp) for the others. Nondecreasing in
  // c under rounding too (each term is), which the bisection needs.
  Scalar total_at(const Breakpoint& point) const {
    const Scalar at = std::ldexp(point.mantissa, point.exponent);
    const bool wide = !std::isfinite(at);
    Scalar total = 0;
    for (Index i = 0; i < assets(); ++i) {
      Scalar moved = m_offset(i);
      if (m_slope(i) > 0) {
        moved += wide ? std::ldexp(m_slope(i) * point.mantissa, point.exponent) : m_slope(i) * at;
      }
      total += std::clamp(moved, m_lower(i), m_upper(i));
    }
    return total;
  }

  static VectorType constant(Index assets, double value) {
    check_parameter(assets >= 1, CheckContext{"WeightBounds"}, "assets",
                    static_cast<double>(assets), ">= 1");
    return VectorType::Constant(assets, static_cast<Scalar>(value));
  }

  void validate_bounds() const {
    const CheckContext check{"WeightBounds", m_names};
    check_parameter(m_floors.size() >= 1, check, "floors size",
                    static_cast<double>(m_floors.size()), ">= 1");
    check_size(check, "caps", m_caps.size(), m_floors.size());
    check_names(check, m_names, m_floors.size());
    check_finite(check, "floors", m_floors);
    check_finite(check, "caps", m_caps);
    if (m_options.projection == BoundsProjection::proportional)
      check_nonnegative(check, "floors", m_floors);
    for (Index i = 0; i < m_floors.size(); ++i) {
      if (m_floors(i) > m_caps(i)) {
        const std::string index = std::to_string(i);
        detail::fail(check,
                     detail::concat({"floors[", index,
                                     "] = ", detail::format_value(static_cast<double>(m_floors(i))),
                                     " is above caps[", index,
                                     "] = ", detail::format_value(static_cast<double>(m_caps(i))),
                                     " (", detail::describe_asset(i, m_names), ")"}));
      }
    }
    double floor_sum = 0;
    double cap_sum = 0;
    for (Index i = 0; i < m_floors.size(); ++i) {
      floor_sum += static_cast<double>(m_floors(i));
      cap_sum += static_cast<double>(m_caps(i));
    }
    const double slack =
        static_cast<double>(m_floors.size()) * double(std::numeric_limits<Scalar>::epsilon());
    if (floor_sum > 1 + slack || cap_sum < 1 - slack) {
      detail::fail(check, detail::concat({"floors sum to ", detail::format_value(floor_sum),
                                          " and caps sum to ", detail::format_value(cap_sum),
                                          ": infeasible for a fully invested book (needs sum of "
                                          "floors <= 1 <= sum of caps)"}));
    }
  }

  // weights ← clamp(a + s·c, lower, upper) with Σ = G, a = m_offset, s = m_slope >= 0. Returns
  // false, leaving `weights` as they were, when even c → ∞ falls short of G because assets with
  // s = 0 sit below their caps.
  //
  // First by one walk along the sorted breakpoints with a running slope (about 3× faster than
  // `solve_exactly` at N = 500), whose result is kept when every breakpoint was finite and Σw is
  // G to rounding; else (the running slope cancelled to 0 beside a weight 1e-17 times the others
  // and walked past its segment, or a breakpoint overflowed) by `solve_exactly`.
  bool solve(Eigen::Ref<VectorType> weights) {
    const Index n = assets();
    const Scalar target = m_invested;
    std::size_t count = 0;
    bool finite = true;
    for (Index i = 0; i < n; ++i) {
      if (m_slope(i) > 0) {
        const Scalar lower = (m_lower(i) - m_offset(i)) / m_slope(i);
        const Scalar upper = (m_upper(i) - m_offset(i)) / m_slope(i);
        finite = finite && std::isfinite(lower) && std::isfinite(upper);
        m_breakpoints[count++] = {lower, 0, i, false};  // the breakpoint itself, as mantissa
        m_breakpoints[count++] = {upper, 0, i, true};
      }
    }
    if (!finite)
      return solve_exactly(weights);
    const auto end = m_breakpoints.begin() + static_cast<std::ptrdiff_t>(count);
    std::sort(m_breakpoints.begin(), end,
              [](const Breakpoint& a, const Breakpoint& b) { return a.mantissa < b.mantissa; });

    // Walk f from below the first breakpoint (every asset at its floor) to the segment whose end
    // reaches G.
    Scalar value = m_lower.sum();
    Scalar slope = 0;
    Scalar at = count > 0 ? m_breakpoints[0].mantissa : Scalar(0);
    std::size_t passed = 0;  // breakpoints strictly before the segment holding G
    bool found = !(value < target);
    for (; !found && passed < count; ++passed) {
      const Breakpoint& next = m_breakpoints[passed];
      const Scalar reached = slope > 0 ? value + slope * (next.mantissa - at) : value;
      if (!(reached < target)) {
        found = true;
        break;
      }
      value = reached;
      at = next.mantissa;
      slope += next.upper ? -m_slope(next.asset) : m_slope(next.asset);
    }
    Scalar fixed = 0;
    Scalar free_offset = 0;
    Scalar free_slope = 0;
    sides_before(passed, fixed, free_offset, free_slope);
    if (!found && fixed < target) {
      for (Index i = 0; i < n; ++i) {  // see solve_exactly
        if (!(m_slope(i) > 0) && m_lower(i) < m_upper(i))
          return solve_exactly(weights);
      }
    }
    Scalar c;
    if (!found)
      c = std::numeric_limits<Scalar>::infinity();
    else if (passed == 0)
      c = -std::numeric_limits<Scalar>::infinity();  // the floors alone reach G
    else if (free_slope > 0)
      c = (target - fixed - free_offset) / free_slope;
    else
      c = at;
    Scalar total = 0;
    for (Index i = 0; i < n; ++i) {
      const Scalar moved = m_slope(i) > 0 ? m_offset(i) + m_slope(i) * c : m_offset(i);
      weights(i) = std::clamp(moved, m_lower(i), m_upper(i));
      total += weights(i);
    }
    // G to rounding: the caps may fall short of it by the N·ε the constructor allows.
    const Scalar slack = Scalar(4 * (n + 1)) * std::numeric_limits<Scalar>::epsilon() * target;
    if (std::abs(total - target) <= slack)
      return true;
    return solve_exactly(weights);
  }

  // Which side of each asset's bounds the segment after the first `passed` sorted breakpoints
  // lies on (m_side: 0 floor, 1 free, 2 cap), and the sums over the sides.
  void sides_before(std::size_t passed, Scalar& fixed, Scalar& free_offset, Scalar& free_slope) {
    std::fill(m_side.begin(), m_side.end(), static_cast<unsigned char>(0));
    for (std::size_t k = 0; k < passed; ++k) {
      const Breakpoint& point = m_breakpoints[k];
      auto& side = m_side[static_cast<std::size_t>(point.asset)];
      side = point.upper ? 2 : std::max<unsigned char>(side, 1);
    }
    fixed = 0;
    free_offset = 0;
    free_slope = 0;
    for (Index i = 0; i < assets(); ++i) {
      switch (m_side[static_cast<std::size_t>(i)]) {
        case 0:
          fixed += m_lower(i);
          break;
        case 1:
          free_offset += m_offset(i);
          free_slope += m_slope(i);
          break;
        default:
          fixed += m_upper(i);
      }
    }
  }

  // `solve` for any weights: breakpoints as mantissa and exponent, the segment found by bisection
  // with f evaluated afresh at each probe (no running slope to cancel).
  bool solve_exactly(Eigen::Ref<VectorType> weights) {
    const Index n = assets();
    const Scalar target = m_invested;
    std::size_t count = 0;
    for (Index i = 0; i < n; ++i) {
      if (m_slope(i) > 0) {
        m_breakpoints[count++] = breakpoint(m_lower(i) - m_offset(i), m_slope(i), i, false);
        m_breakpoints[count++] = breakpoint(m_upper(i) - m_offset(i), m_slope(i), i, true);
      }
    }
    const auto end = m_breakpoints.begin() + static_cast<std::ptrdiff_t>(count);
    std::sort(m_breakpoints.begin(), end, precedes);

    // The segment holding G ends at the first breakpoint where f reaches G (`passed` breakpoints
    // before it); below the first breakpoint every asset is at its floor.
    std::size_t passed = 0;
    bool found = !(m_lower.sum() < target);
    if (!found) {
      std::size_t below = 0;      // f < G at every breakpoint before `below`
      std::size_t above = count;  // f >= G at `above` (count: at none)
      while (below < above) {
        const std::size_t middle = below + (above - below) / 2;
        if (total_at(m_breakpoints[middle]) < target)
          below = middle + 1;
        else
          above = middle;
      }
      passed = below;
      found = below < count;
    }

    Scalar fixed = 0;
    Scalar free_offset = 0;
    Scalar free_slope = 0;
    sides_before(passed, fixed, free_offset, free_slope);
    if (!found && fixed < target) {
      // Every asset that can move is at its cap and G is still not reached. With every asset at
      // its cap, the caps fall short of 1 by no more than the rounding the constructor allows
      // (N·ε): the caps are the projection (c = ∞). Else the assets that cannot move are at fault.
      for (Index i = 0; i < n; ++i) {
        if (!(m_slope(i) > 0) && m_lower(i) < m_upper(i))
          return false;
      }
    }
    // The free assets share what the fixed ones leave: a_i + s_i c with c = rest / Σ_free s, or,
    // when c overflows (free slopes below ~1e-308 of the rest), a_i + (s_i / Σ_free s) · rest,
    // whose ratio is at most 1.
    const Scalar rest = target - fixed - free_offset;
    const Scalar c = free_slope > 0 ? rest / free_slope : Scalar(0);
    const bool wide = !std::isfinite(c);
    for (Index i = 0; i < n; ++i) {
      const unsigned char side = m_side[static_cast<std::size_t>(i)];
      Scalar moved;
      if (!(m_slope(i) > 0))
        moved = m_offset(i);
      else if (side == 0)
        moved = m_lower(i);
      else if (side == 2)
        moved = m_upper(i);
      else
        moved = m_offset(i) + (wide ? (m_slope(i) / free_slope) * rest : m_slope(i) * c);
      weights(i) = std::clamp(moved, m_lower(i), m_upper(i));
    }
    return true;
  }

  void count_clamped(const Eigen::Ref<VectorType>& weights) {
    m_at_floor = (weights.array() == m_lower.array()).count();
    m_at_cap = (weights.array() == m_upper.array()).count();
  }

  WeightBoundsOptions m_options;
  VectorType m_floors;
  VectorType m_caps;
  AssetNames m_names;
  // Workspace, sized at construction: the bounds l·G and u·G of the last apply, the line a + s·c.
  VectorType m_lower;
  VectorType m_upper;
  VectorType m_offset;
  VectorType m_slope;
  std::vector<unsigned char> m_side;
  std::vector<Breakpoint> m_breakpoints;
  // Diagnostics of the last apply.
  Scalar m_invested = 0;
  Index m_at_floor = 0;
  Index m_at_cap = 0;
  BoundsProjection m_used = BoundsProjection::proportional;
};

static_assert(WeightOverlay<WeightBounds<double>>);
static_assert(WeightOverlay<WeightBounds<float>>);

}  // namespace dynweight
