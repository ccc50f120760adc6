#pragma once

/// \file
/// `LiquidityScaled<Inner>`: make another policy's weights tradable given average dollar volume.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/policy.hpp"

namespace dynweight {

/// How `LiquidityScaled` uses liquidity.
enum class LiquidityMode {
  /// Cap each weight at its capacity c_i = q·h·ADV_i / C and water-fill the excess.
  cap,
  /// Tilt: w_i ∝ inner_i · ADV_i^γ.
  tilt,
};

/// Options of `LiquidityScaled`.
struct LiquidityOptions {
  LiquidityMode mode = LiquidityMode::cap;
  double capital = 1e6;        ///< C, in the currency of the dollar volume (cap mode)
  double participation = 0.1;  ///< q, the fraction of a bar's dollar volume one may trade
  double horizon = 1.0;        ///< h, the bars over which a position may be built (cap mode)
  double exponent = 0.5;       ///< γ >= 0 (tilt mode)
  /// A cap on every weight beside its capacity, in (0, 1] (cap mode): c_i = min(q·h·ADV_i / C,
  /// max_weight), one water-filling for both (a `WeightBounds` after this policy would move
  /// weight onto assets at capacity). 1: none.
  double max_weight = 1.0;

  /// Throws `dynweight::Error` unless capital, participation and horizon are finite and > 0, the
  /// exponent is finite and >= 0 and max_weight is in (0, 1].
  void validate() const {
    const CheckContext context{"LiquidityScaled"};
    const auto positive = [&](double value, const char* name) {
      check_parameter(std::isfinite(value) && value > 0, context, name, value, "finite and > 0");
    };
    positive(capital, "capital");
    positive(participation, "participation");
    positive(horizon, "horizon");
    check_parameter(std::isfinite(exponent) && exponent >= 0, context, "exponent", exponent,
                    "finite and >= 0");
    check_parameter(max_weight > 0 && max_weight <= 1, context, "max_weight", max_weight,
                    "in (0, 1]");
  }
};

/// Makes `Inner`'s weights tradable with the average dollar volume ADV of `estimates`.
///
/// **Cap mode.** Asset i can hold at most c_i = min(q·h·ADV_i / C, max_weight). Weights above
/// capacity are cut to it and the excess goes to the assets with spare capacity in proportion to
/// their inner weights, again and again until nothing is over: the result is exactly
/// w_i = min(λ w_i^inner, c_i) with the λ >= 1 for which the weights sum to 1 (found by sorting
/// the breakpoints c_i / w_i, O(N log N)). When the capacities cannot hold everything (Σ c_i < 1
/// over the assets with weight) every such asset is at capacity and the rest, `cash()`, stays in
/// cash: the weights then sum to 1 − cash and the status is `numerical_issue` saying so.
///
/// **Tilt mode.** w_i ∝ w_i^inner · ADV_i^γ (γ >= 0, ½ by default); an asset with ADV 0 gets
/// weight 0 (for γ > 0), and if no weight is left the inner weights are kept with status
/// `numerical_issue`.
///
/// **Input.** ADV must be finite and >= 0 (else `dynweight::Error` naming the asset; nothing
/// changes). The inner policy's status is returned unless liquidity made it worse.
template <WeightingPolicy Inner>
class LiquidityScaled {
 public:
  using Scalar = typename Inner::Scalar;
  using VectorType = Vector<Scalar>;

  explicit LiquidityScaled(Inner inner, LiquidityOptions options = {})
      : m_inner(std::move(inner)), m_options(options) {
    m_options.validate();
  }

  Status compute(const Estimates<Scalar>& estimates, Eigen::Ref<VectorType> weights) {
    const Index n = estimates.assets();
    const CheckContext context{"LiquidityScaled::compute", estimates.names()};
    check_size(context, "weights", weights.size(), n);
    const VectorType& adv = estimates.dollar_volume("LiquidityScaled");
    check_nonnegative(context, "dollar_volume", adv);
    if (m_inner_weights.size() != n) {
      m_inner_weights.resize(n);
      m_order.resize(static_cast<std::size_t>(n));
      m_free.resize(static_cast<std::size_t>(n) + 1);
    }
    // NaN first: an inner policy that cannot produce weights leaves them unwritten.
    m_inner_weights.setConstant(std::numeric_limits<Scalar>::quiet_NaN());
    Status status = m_inner.compute(estimates, m_inner_weights);
    if (!m_inner_weights.allFinite())
      return status;             // the inner policy left its weights undefined (it says why)
    if (m_capacity.size() != n)  // after the inner policy, which may throw: capacity() is ours
      m_capacity.resize(n);
    m_cash = 0;
    const Status liquidity = m_options.mode == LiquidityMode::cap ? cap(adv) : tilt(adv);
    weights = m_inner_weights;
    if (status.ok() && !liquidity.ok()) {
      status.code = liquidity.code;
      status.detail = liquidity.detail;
    }
    return status;
  }

  /// The part of capital no asset could absorb in the last `compute` (cap mode), in [0, 1].
  [[nodiscard]] Scalar cash() const { return m_cash; }
  /// The capacities c_i of the last `compute` (cap mode).
  [[nodiscard]] const VectorType& capacity() const { return m_capacity; }
  [[nodiscard]] const LiquidityOptions& options() const { return m_options; }
  [[nodiscard]] Inner& inner() { return m_inner; }
  [[nodiscard]] const Inner& inner() const { return m_inner; }

 private:
  // m_inner_weights ← min(λ w, c), Σ = 1 (or everything at capacity and the rest in cash).
  Status cap(const VectorType& adv) {
    const Index n = adv.size();
    VectorType& w = m_inner_weights;
    const Scalar scale =
        static_cast<Scalar>(m_options.participation * m_options.horizon / m_options.capital);
    m_capacity = scale * adv;
    if (m_options.max_weight < 1)  // (a cap of 1 cannot bind: capacity() keeps q·h·ADV_i / C)
      m_capacity = m_capacity.cwiseMin(static_cast<Scalar>(m_options.max_weight));
    // Breakpoints λ_i = c_i / w_i over the assets with weight; λ grows until the weights fit.
    std::size_t count = 0;
    Scalar room = 0;  // Σ c_i over the assets with weight
    for (Index i = 0; i < n; ++i) {
      if (w(i) > 0) {
        m_order[count++] = i;
        room += m_capacity(i);
      }
    }
    if (room <= 1) {  // not enough capacity: all at capacity, the rest in cash
      for (Index i = 0; i < n; ++i)
        w(i) = w(i) > 0 ? m_capacity(i) : Scalar(0);
      m_cash = std::max(Scalar(0), Scalar(1) - room);
      if (m_cash == 0)
        return {};
      return {StatusCode::numerical_issue, 0, 0.0,
              "the assets' liquidity capacity is below the capital: the rest is kept in cash "
              "(see cash())"};
    }
    const auto ratio = [&](Index i) { return m_capacity(i) / w(i); };
    std::sort(m_order.begin(), m_order.begin() + static_cast<std::ptrdiff_t>(count),
              [&](Index a, Index b) { return ratio(a) < ratio(b); });
    // With the first k (smallest-ratio) assets capped: Σ_{capped} c + λ Σ_{free} w = 1. The free
    // weight Σ_{j>=k} w is summed from the remaining weights (not kept by subtraction, which loses
    // a tiny weight beside large ones to rounding: 0 free weight and an infinite λ).
    m_free[count] = 0;
    for (std::size_t j = count; j-- > 0;)
      m_free[j] = m_free[j + 1] + w(m_order[j]);
    Scalar capped = 0;
    Scalar lambda = 1;
    std::size_t k = 0;
    for (; k < count; ++k) {
      lambda = (Scalar(1) - capped) / m_free[k];
      // Asset k is not over capacity at this λ: neither is any later one. The last is never
      // capped: all at capacity would need Σc <= 1, which room > 1 rules out (rounding aside).
      if (k + 1 == count || lambda <= ratio(m_order[k]))
        break;
      capped += m_capacity(m_order[k]);
    }
    for (std::size_t j = 0; j < count; ++j) {
      const Index i = m_order[j];
      // min: when the capacities sum to 1 up to rounding, λw of the last free asset could pass its
      // capacity by an ulp.
      w(i) = j < k ? m_capacity(i) : std::min(lambda * w(i), m_capacity(i));
    }
    return {};
  }

  Status tilt(const VectorType& adv) {
    VectorType& w = m_inner_weights;
    const auto exponent = static_cast<Scalar>(m_options.exponent);
    Scalar total = 0;
    for (Index i = 0; i < w.size(); ++i) {
      const Scalar factor = exponent == 0 ? Scalar(1) : std::pow(adv(i), exponent);  // 0^γ = 0
      m_capacity(i) = w(i) * factor;
      total += m_capacity(i);
    }
    if (!(total > 0) || !std::isfinite(total)) {
      return {StatusCode::numerical_issue, 0, 0.0,
              "no asset with weight has liquidity: the inner weights were kept"};
    }
    w = m_capacity / total;
    return {};
  }

  Inner m_inner;
  LiquidityOptions m_options;
  VectorType m_inner_weights;
  VectorType m_capacity;  // c (cap mode), or the tilted weights before normalising (tilt mode)
  std::vector<Index> m_order;
  std::vector<Scalar> m_free;  // Σ of the sorted weights from position k on (cap mode)
  Scalar m_cash = 0;
};

}  // namespace dynweight
