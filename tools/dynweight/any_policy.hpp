#pragma once

/// \file
/// `AnyPolicy`: a weighting policy of any type, chosen at run time (by `dynweight weights`).

#include <Eigen/Core>
#include <concepts>
#include <memory>
#include <type_traits>
#include <utility>

#include "dynweight/core/status.hpp"
#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/policy.hpp"

namespace dynweight::cli {

/// Holds any `WeightingPolicy` with `Scalar = double` and forwards `compute` to it by one virtual
/// call, so that the tool composes the library's templates (`CorrelationShrinkage<AnyPolicy>`,
/// `LiquidityScaled<AnyPolicy>`, `Overlaid<AnyPolicy, ...>`) from its options without a type per
/// combination. Move-only; the arithmetic is the held policy's own.
class AnyPolicy {
 public:
  using Scalar = double;

  template <WeightingPolicy Policy>
  requires(!std::same_as<std::remove_cvref_t<Policy>, AnyPolicy> &&
           std::same_as<typename Policy::Scalar, double>) explicit AnyPolicy(Policy policy)
      : m_self(std::make_unique<Model<Policy>>(std::move(policy))) {}

  Status compute(const Estimates<double>& estimates, Eigen::Ref<Eigen::VectorXd> weights) {
    return m_self->compute(estimates, weights);
  }

 private:
  struct Interface {
    virtual ~Interface() = default;
    virtual Status compute(const Estimates<double>& estimates,
                           Eigen::Ref<Eigen::VectorXd> weights) = 0;
  };
  template <class Policy>
  struct Model final : Interface {
    explicit Model(Policy held) : policy(std::move(held)) {}
    Status compute(const Estimates<double>& estimates,
                   Eigen::Ref<Eigen::VectorXd> weights) override {
      return policy.compute(estimates, weights);
    }
    Policy policy;
  };

  std::unique_ptr<Interface> m_self;
};

static_assert(WeightingPolicy<AnyPolicy>);

}  // namespace dynweight::cli
