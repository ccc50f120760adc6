#pragma once

/// \file
/// `Estimates`: the const views of the current estimates that weighting policies read.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>

#include "dynweight/core/covariance_step.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/stats/rolling_moments.hpp"

namespace dynweight {

/// Non-owning views of the current estimates of N assets: mean and volatility per period,
/// covariance, correlation, average dollar volume, names. Each is optional; a policy that needs
/// one that is absent throws `dynweight::Error` naming it. The viewed objects must outlive the
/// `Estimates` (binding a temporary is a compile error), and they are read, never copied, so a
/// view costs nothing to build on every bar.
///
/// Covariance and correlation are symmetric matrices stored `full` or as their `lower` triangle
/// (the rolling engines' storage; the upper triangle is then never read).
///
/// \code
/// dynweight::Estimates<double> estimates(n);
/// estimates.set_volatility(moments.volatility())
///     .set_covariance(moments.covariance_lower(), dynweight::SymmetricStorage::lower);
/// // or: auto estimates = dynweight::Estimates<double>::of(moments);
/// \endcode
template <FloatingScalar Scalar_ = double>
class Estimates {
 public:
  using Scalar = Scalar_;
  using VectorType = Vector<Scalar>;
  using MatrixType = Matrix<Scalar>;

  /// Estimates of `assets` series; `names` (optional, one per asset, not copied) label errors.
  explicit Estimates(Index assets, const AssetNames* names = nullptr)
      : m_assets(checked_assets(assets)), m_names(names) {
    if (names != nullptr)
      check_names(CheckContext{"Estimates"}, *names, assets);
  }

  /// The mean, volatility and covariance (lower triangle, with its lineage) and names of a
  /// rolling window.
  static Estimates of(const RollingMoments<Scalar>& moments) {
    Estimates estimates(moments.assets(), &moments.names());
    estimates.set_mean(moments.mean())
        .set_volatility(moments.volatility())
        .set_covariance(moments.covariance_lower(), SymmetricStorage::lower)
        .set_covariance_lineage(moments.covariance_id(), moments.covariance_step());
    return estimates;
  }

  Estimates& set_mean(const VectorType& mean) { return set_vector(m_mean, mean, "mean"); }
  Estimates& set_volatility(const VectorType& volatility) {
    return set_vector(m_volatility, volatility, "volatility");
  }
  Estimates& set_dollar_volume(const VectorType& dollar_volume) {
    return set_vector(m_dollar_volume, dollar_volume, "dollar_volume");
  }
  /// Checks (O(N²), once per matrix set): N×N, every stored entry finite, and, when `full`,
  /// symmetric to 1e-12 × the largest diagonal entry; then views it.
  Estimates& set_covariance(const MatrixType& covariance,
                            SymmetricStorage storage = SymmetricStorage::full) {
    set_matrix(m_covariance, covariance, storage, "covariance");
    m_covariance_storage = storage;
    set_covariance_lineage(0);
    return *this;
  }
  /// Tag of the unchecked `set_covariance`.
  struct Unchecked {};
  static constexpr Unchecked unchecked{};
  /// Views `covariance` without the O(N²) check, for callers that built it finite and symmetric
  /// themselves (e.g. `CorrelationShrinkage`, from checked estimates); only its size is checked.
  Estimates& set_covariance(const MatrixType& covariance, SymmetricStorage storage, Unchecked) {
    const CheckContext context{"Estimates", names()};
    check_size(context, "covariance", covariance.rows(), m_assets);
    check_size(context, "covariance", covariance.cols(), m_assets);
    m_covariance = &covariance;
    m_covariance_storage = storage;
    set_covariance_lineage(0);
    return *this;
  }
  Estimates& set_covariance(MatrixType&&, SymmetricStorage, Unchecked) = delete;

  /// Labels the covariance (after `set_covariance`, which clears the label): `id` (from
  /// `next_covariance_id()`, as the rolling engines give it) promises that the covariance holds
  /// exactly the values that carried that id, and `step` (optional; copied, its vectors viewed) how
  /// they moved from the covariance of id `step->from`. Policies that keep a product with the
  /// covariance across calls (`RiskParity`) use it to carry that product in O(N); the others ignore
  /// it. 0, the default, is no id. A wrong label gives wrong results to such a policy (risk parity
  /// checks four rows of its carried product per call and falls back to a full pass when they
  /// disagree, which catches a wrong step most of the time, not always): set one only from the
  /// engine that produced the matrix.
  Estimates& set_covariance_lineage(std::uint64_t id,
                                    const std::optional<CovarianceStep<Scalar>>& step = {}) {
    m_covariance_id = id;
    m_covariance_step = step;
    return *this;
  }
  [[nodiscard]] std::uint64_t covariance_id() const { return m_covariance_id; }
  /// The step given with the id, if any.
  [[nodiscard]] const std::optional<CovarianceStep<Scalar>>& covariance_step() const {
    return m_covariance_step;
  }
  /// As `set_covariance`.
  Estimates& set_correlation(const MatrixType& correlation,
                             SymmetricStorage storage = SymmetricStorage::full) {
    set_matrix(m_correlation, correlation, storage, "correlation");
    m_correlation_storage = storage;
    return *this;
  }
  // Views of temporaries would dangle.
  Estimates& set_mean(VectorType&&) = delete;
  Estimates& set_volatility(VectorType&&) = delete;
  Estimates& set_dollar_volume(VectorType&&) = delete;
  Estimates& set_covariance(MatrixType&&, SymmetricStorage = SymmetricStorage::full) = delete;
  Estimates& set_correlation(MatrixType&&, SymmetricStorage = SymmetricStorage::full) = delete;

  [[nodiscard]] Index assets() const { return m_assets; }
  /// Asset names, or an empty list when none were given.
  [[nodiscard]] const AssetNames& names() const { return m_names ? *m_names : no_names(); }

  [[nodiscard]] bool has_mean() const { return m_mean != nullptr; }
  [[nodiscard]] bool has_volatility() const { return m_volatility != nullptr; }
  [[nodiscard]] bool has_dollar_volume() const { return m_dollar_volume != nullptr; }
  [[nodiscard]] bool has_covariance() const { return m_covariance != nullptr; }
  [[nodiscard]] bool has_correlation() const { return m_correlation != nullptr; }

  /// The views; each throws `dynweight::Error` naming `who` (the policy) when absent.
  [[nodiscard]] const VectorType& mean(std::string_view who = "a policy") const {
    return required(m_mean, who, "mean");
  }
  [[nodiscard]] const VectorType& volatility(std::string_view who = "a policy") const {
    return required(m_volatility, who, "volatility");
  }
  [[nodiscard]] const VectorType& dollar_volume(std::string_view who = "a policy") const {
    return required(m_dollar_volume, who, "dollar_volume");
  }
  [[nodiscard]] const MatrixType& covariance(std::string_view who = "a policy") const {
    return required(m_covariance, who, "covariance");
  }
  [[nodiscard]] SymmetricStorage covariance_storage() const { return m_covariance_storage; }
  [[nodiscard]] const MatrixType& correlation(std::string_view who = "a policy") const {
    return required(m_correlation, who, "correlation");
  }
  [[nodiscard]] SymmetricStorage correlation_storage() const { return m_correlation_storage; }

 private:
  static Index checked_assets(Index assets) {
    check_parameter(assets >= 1, CheckContext{"Estimates"}, "assets", static_cast<double>(assets),
                    ">= 1");
    return assets;
  }
  static const AssetNames& no_names() {
    static const AssetNames empty;
    return empty;
  }

  Estimates& set_vector(const VectorType*& slot, const VectorType& value, const char* what) {
    check_size(CheckContext{"Estimates", names()}, what, value.size(), m_assets);
    slot = &value;
    return *this;
  }
  void set_matrix(const MatrixType*& slot, const MatrixType& value, SymmetricStorage storage,
                  const char* what) {
    const CheckContext context{"Estimates", names()};
    check_size(context, what, value.rows(), m_assets);
    check_size(context, what, value.cols(), m_assets);
    const Index n = m_assets;
    if (storage == SymmetricStorage::full) {
      check_finite(context, what, value);
      const Scalar tolerance = Scalar(1e-12) * value.diagonal().cwiseAbs().maxCoeff();
      constexpr Index tile = 32;  // tile against transposed tile: the reads stay in cache
      for (Index jb = 0; jb < n; jb += tile) {
        for (Index ib = jb; ib < n; ib += tile) {
          const Index jn = std::min(tile, n - jb);
          const Index in = std::min(tile, n - ib);
          if ((value.block(ib, jb, in, jn) - value.block(jb, ib, jn, in).transpose())
                  .cwiseAbs()
                  .maxCoeff() <= tolerance)
            continue;
          for (Index j = jb; j < jb + jn; ++j) {  // name the first offending entry
            for (Index i = std::max(ib, j + 1); i < ib + in; ++i) {
              if (!(std::abs(value(i, j) - value(j, i)) <= tolerance))
                detail::fail_asymmetric(context, what, i, j, static_cast<double>(value(i, j)),
                                        static_cast<double>(value(j, i)));
            }
          }
        }
      }
    } else {
      for (Index j = 0; j < n; ++j) {
        if (value.col(j).tail(n - j).allFinite())
          continue;
        for (Index i = j; i < n; ++i) {
          if (!std::isfinite(value(i, j)))
            detail::fail_entry(context, what, i, j, false, static_cast<double>(value(i, j)),
                               "finite");
        }
      }
    }
    slot = &value;
  }
  template <class T>
  static const T& required(const T* slot, std::string_view who, std::string_view what) {
    if (slot == nullptr)
      detail::fail_missing(who, what);
    return *slot;
  }

  Index m_assets;
  const AssetNames* m_names;
  const VectorType* m_mean = nullptr;
  const VectorType* m_volatility = nullptr;
  const VectorType* m_dollar_volume = nullptr;
  const MatrixType* m_covariance = nullptr;
  const MatrixType* m_correlation = nullptr;
  SymmetricStorage m_covariance_storage = SymmetricStorage::full;
  std::uint64_t m_covariance_id = 0;
  std::optional<CovarianceStep<Scalar>> m_covariance_step;
  SymmetricStorage m_correlation_storage = SymmetricStorage::full;
};

}  // namespace dynweight
