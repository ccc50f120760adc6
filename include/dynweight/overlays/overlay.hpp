#pragma once

/// \file
/// The weight-overlay concept, what an overlay reads (`OverlayContext`), and `Overlaid`, a
/// weighting policy followed by overlays.

#include <Eigen/Core>
#include <concepts>
#include <cstddef>
#include <limits>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/policy.hpp"

namespace dynweight {

/// What an overlay may read besides the weights it reshapes. Both are optional, non-owning views;
/// an overlay that needs one that is absent throws `dynweight::Error` naming it.
template <FloatingScalar Scalar>
struct OverlayContext {
  /// The estimates the policy read (`VolatilityTarget` reads the covariance).
  const Estimates<Scalar>* estimates = nullptr;
  /// The book's current weights, one per asset, cash implied (1 − Σ); `TurnoverLimit` reads them.
  const Vector<Scalar>* previous_weights = nullptr;
  /// wᵀΣw of the weights as they enter the overlay, with Σ the estimates' covariance, when it is
  /// already known: `Overlaid` passes on the policy's own (`RiskParity::portfolio_variance`) for
  /// as long as no overlay has changed the weights. `VolatilityTarget` then needs no pass over Σ.
  const Scalar* variance = nullptr;
};

/// A weight overlay reshapes target weights in place, after any weighting policy: a type `O` with
/// `O::Scalar` and `Status O::apply(const OverlayContext<Scalar>&, Eigen::Ref<Vector<Scalar>>)`.
/// Weights are fractions of capital and cash is implied (1 − Σw), so an overlay may leave them
/// summing to less (or more) than 1. `apply` is non-const: an overlay keeps workspace and the
/// diagnostics of its last call. Bad input throws `dynweight::Error` and leaves the overlay and the
/// weights unchanged; numerical trouble is a returned `Status`. An overlay may also have
/// `void check_context(const OverlayContext<Scalar>&, Index assets) const`: the checks of `apply`
/// that do not read the weights (what the context must hold, sizes), which `Overlaid` runs for
/// every overlay before its policy.
template <class O>
concept WeightOverlay = FloatingScalar<typename O::Scalar> &&
    requires(O& overlay, const OverlayContext<typename O::Scalar>& context,
             Eigen::Ref<Vector<typename O::Scalar>> weights) {
  { overlay.apply(context, weights) } -> std::same_as<Status>;
};

/// A weighting policy followed by overlays, applied in order: itself a `WeightingPolicy`.
///
/// `compute(estimates, weights)` runs `Policy::compute`, then each overlay's `apply` with the
/// estimates in the context; `compute(estimates, previous_weights, weights)` also gives the
/// overlays the book's current weights (needed by `TurnoverLimit`; `previous_weights` may be the
/// same vector as `weights`). The returned `Status` is the first that is not `success`, the
/// policy's first, or `success`.
///
/// **Workspace.** The chain runs in an internal vector that is copied to `weights` at the end, so
/// `weights` changes only when every step succeeded. The workspace is filled with NaN before the
/// policy runs: a policy that leaves its weights unwritten (as `InverseVolatility` does when no
/// asset has a volatility) is detected, the overlays are skipped, its status is returned and
/// `weights` is left unchanged.
///
/// **Errors.** A wrong-size `weights` or `previous_weights`, and whatever an overlay's
/// `check_context` rejects (`TurnoverLimit` without previous weights or with one not finite,
/// `VolatilityTarget` without a covariance, `WeightBounds` for another number of assets), throw
/// before anything runs: the policy, the overlays and `weights` are as they were. An overlay that
/// throws on the weights it is handed (`WeightBounds`' proportional mode given a negative weight,
/// or weights summing to <= 0) leaves `weights` unchanged too, but the policy and the overlays
/// before it have run (their warm starts and diagnostics are those of this call).
///
/// **Known variance.** A policy with `std::optional<Scalar> portfolio_variance()` (wᵀΣw of the
/// weights it just wrote, on the covariance it was given: `RiskParity` has it from its solve) hands
/// it to the overlays through `OverlayContext::variance` until one of them changes the weights
/// (compared entry by entry), so that a `VolatilityTarget` right after it costs O(N).
///
/// **Cost.** The policy's and the overlays' own, plus two O(N) passes (and one copy per overlay
/// while the variance is known); no allocation after the first call at a given N if the parts
/// allocate none.
///
/// \code
/// dynweight::Overlaid chain(dynweight::RiskParity<double>(),
///                           dynweight::WeightBounds<double>(n, 0.0, 0.10),
///                           dynweight::VolatilityTarget<double>({.target = 0.10,
///                                                                .annualization = 252}),
///                           dynweight::TurnoverLimit<double>({.max_turnover = 0.05}));
/// const dynweight::Status status = chain.compute(estimates, book_weights, targets);
/// const double leverage = chain.overlay<1>().gross();
/// \endcode
template <WeightingPolicy Policy, WeightOverlay... Overlays>
class Overlaid {
 public:
  using Scalar = typename Policy::Scalar;
  using VectorType = Vector<Scalar>;
  static_assert((std::same_as<typename Overlays::Scalar, Scalar> && ...),
                "every overlay must have the policy's Scalar");

  explicit Overlaid(Policy policy, Overlays... overlays)
      : m_policy(std::move(policy)), m_overlays(std::move(overlays)...) {}

  /// The policy, then the overlays (with no previous weights).
  Status compute(const Estimates<Scalar>& estimates, Eigen::Ref<VectorType> weights) {
    return run(estimates, nullptr, weights);
  }

  /// The policy, then the overlays, given the book's current weights.
  Status compute(const Estimates<Scalar>& estimates, const VectorType& previous_weights,
                 Eigen::Ref<VectorType> weights) {
    check_size(CheckContext{"Overlaid::compute", estimates.names()}, "previous_weights",
               previous_weights.size(), estimates.assets());
    return run(estimates, &previous_weights, weights);
  }
  // A view of a temporary would dangle inside the chain's context.
  Status compute(const Estimates<Scalar>&, VectorType&&, Eigen::Ref<VectorType>) = delete;

  [[nodiscard]] Policy& policy() { return m_policy; }
  [[nodiscard]] const Policy& policy() const { return m_policy; }
  /// The I-th overlay (0-based, in the order they run).
  template <std::size_t I>
  [[nodiscard]] auto& overlay() {
    return std::get<I>(m_overlays);
  }
  template <std::size_t I>
  [[nodiscard]] const auto& overlay() const {
    return std::get<I>(m_overlays);
  }

 private:
  Status run(const Estimates<Scalar>& estimates, const VectorType* previous_weights,
             Eigen::Ref<VectorType> weights) {
    const Index n = estimates.assets();
    check_size(CheckContext{"Overlaid::compute", estimates.names()}, "weights", weights.size(), n);
    if (m_work.size() != n) {
      m_work.resize(n);
      m_entering.resize(n);
    }
    OverlayContext<Scalar> context{&estimates, previous_weights};
    std::apply(
        [&](const auto&... overlay) {
          const auto check = [&](const auto& one) {
            if constexpr (requires { one.check_context(context, n); })
              one.check_context(context, n);
          };
          (check(overlay), ...);
        },
        m_overlays);
    m_work.setConstant(std::numeric_limits<Scalar>::quiet_NaN());
    Status first = m_policy.compute(estimates, m_work);
    if (!m_work.allFinite())
      return first;  // the policy left its weights unwritten (its status says why)
    bool known = false;
    if constexpr (requires { m_policy.portfolio_variance(); }) {
      if (const std::optional<Scalar> variance = m_policy.portfolio_variance()) {
        m_variance = *variance;
        known = true;
      }
    }
    std::apply(
        [&](auto&... overlay) {
          const auto step = [&](auto& one) {
            if (known)
              m_entering = m_work;
            context.variance = known ? &m_variance : nullptr;
            const Status status = one.apply(context, m_work);
            known = known && m_work == m_entering;
            if (first.ok() && !status.ok())
              first = status;
          };
          (step(overlay), ...);
        },
        m_overlays);
    weights = m_work;
    return first;
  }

  Policy m_policy;
  std::tuple<Overlays...> m_overlays;
  VectorType m_work;
  VectorType m_entering;  // the weights before an overlay, while their variance is known
  Scalar m_variance = 0;
};

}  // namespace dynweight
