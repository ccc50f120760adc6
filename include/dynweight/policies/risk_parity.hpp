#pragma once

/// \file
/// Risk parity / risk budgeting: long-only weights whose risk contributions match budgets.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "dynweight/core/status.hpp"
#include "dynweight/core/types.hpp"
#include "dynweight/core/validation.hpp"
#include "dynweight/policies/detail/cholesky.hpp"
#include "dynweight/policies/detail/fixed_point_kernel.hpp"
#include "dynweight/policies/estimates.hpp"
#include "dynweight/policies/policy.hpp"
#include "dynweight/stats/detail/symmetric_product.hpp"
#include "dynweight/stats/detail/symmetric_update.hpp"

namespace dynweight {

/// Options of `RiskParity`.
struct RiskParityOptions {
  /// Stop when max_i |RC_i/ΣRC − b_i| <= tolerance. Empty (the default): the default of the
  /// policy's `Scalar`, `RiskParity<Scalar>::default_tolerance()`: 1e-10 in double; in float
  /// max(1e-10, 4 ε) = 4.8e-7 (ε = 2⁻²³; float's shares RC_i/ΣRC cannot resolve 1e-10, and
  /// a solve asked for it ran to `max_iterations`, ~1000 Newton steps).
  std::optional<double> tolerance = std::nullopt;
  /// Cap on iterations (fixed-point iterations, coordinate sweeps and Newton steps); at the cap
  /// the best iterate is returned with status `max_iterations` and its residual.
  Index max_iterations = 1000;
  /// First-order iterations (fixed-point iterations and coordinate sweeps) before the solver
  /// switches to damped Newton steps (for ill-conditioned covariances, where they slow down).
  Index sweeps_before_newton = 60;
  /// An asset whose variance is below relative_floor² × the largest variance (volatility below
  /// relative_floor × the largest) is excluded: weight 0, the other budgets renormalised, status
  /// `numerical_issue`.
  double relative_floor = 1e-8;
  /// Start from the previous solution when the assets and the excluded set are unchanged.
  bool warm_start = true;
  /// Run the fixed-point phase before the coordinate sweeps (see `RiskParity`). Off, the solver
  /// goes straight to the sweeps: for markets with strong negative correlations, where the phase
  /// stalls, it saves the iterations of its occasional probes.
  bool fixed_point = true;

  /// Throws `dynweight::Error` unless tolerance (when given) > 0, max_iterations >= 1,
  /// sweeps_before_newton >= 0 and 0 <= relative_floor < 1.
  void validate() const {
    const CheckContext context{"RiskParity"};
    if (tolerance.has_value()) {
      check_parameter(*tolerance > 0 && std::isfinite(*tolerance), context, "tolerance", *tolerance,
                      "finite and > 0");
    }
    check_parameter(max_iterations >= 1, context, "max_iterations",
                    static_cast<double>(max_iterations), ">= 1");
    check_parameter(sweeps_before_newton >= 0, context, "sweeps_before_newton",
                    static_cast<double>(sweeps_before_newton), ">= 0");
    check_parameter(relative_floor >= 0 && relative_floor < 1, context, "relative_floor",
                    relative_floor, "in [0, 1)");
  }
};

/// Long-only risk budgeting: weights w >= 0, Σw = 1, whose risk contributions RC_i = w_i (Σw)_i
/// satisfy RC_i / Σ_j RC_j = b_i for budgets b >= 0, Σb = 1 (equal by default), to
/// max_i |RC_i/ΣRC − b_i| <= `tolerance` (by default 1e-10 in double, 4.8e-7 in float: see
/// `default_tolerance()`).
///
/// **Method.** Spinu's (2013) convex form: x minimises f(x) = ½ xᵀΣx − Σ_i b_i ln x_i over x > 0
/// (strictly convex when Σ is positive definite; its minimiser satisfies x_i (Σx)_i = b_i, so
/// w = x/Σx is the solution). Three phases, each handing its iterate x with its exact Σx on:
/// 1. **Fixed point** x ← b ⊘ Σx (Chaves, Hsu, Li & Shakernia 2012), each iterate scaled to its
///    optimal multiple and mixed by Anderson acceleration over the last five: one product Σx per
///    iteration and O(N) vector work. Near the solution it contracts by the second eigenvalue of
///    S Σ S, S = diag(x/√b) (whose largest, 1, is the scale direction): fast when the
///    correlations are positive and one market factor dominates (4–5 iterations from a cold start
///    to 1e-10 on a one-factor market of 500 assets), slow or divergent with strong negative
///    correlations. So it is guarded: it stops when its best residual falls behind a reduction of
///    8× per iteration (after one iteration's grace) or Σx has an entry <= 0, and hands on its
///    best iterate; it is then skipped for the next 16 calls (a market's spectrum persists from
///    bar to bar), 32 after a second stall in a row, and so on up to 1024. An iteration that
///    leaves the residual within 4× the tolerance is followed by a step without a product: the
///    best affine combination of two iterates, whose Σx is the same combination of theirs
///    (`combined_iterates()` says so): one warm solve in four a product early on the benchmarks'
///    market at N = 500, 3 in 50 on the tests' N = 250 market.
/// 2. **Cyclical coordinate descent** on f, each coordinate minimised exactly (the positive root
///    of Σ_ii x_i² + a_i x_i − b_i = 0, a_i = (Σx)_i − Σ_ii x_i), keeping Σx up to date (in blocks
///    of four coordinates, so a sweep is one pass over Σ); Griveau-Billion, Richard & Roncalli
///    (2013) prove its convergence. The sweeps are accelerated by safeguarded Anderson mixing of
///    the last five (an accelerated point is taken only when it lowers the residual), which costs
///    no extra pass.
/// 3. After `sweeps_before_newton` first-order iterations (phases 1 and 2) without convergence,
///    **damped Newton steps** on f (Hessian Σ + diag(b/x²), Cholesky, backtracking line search:
///    globally convergent, quadratic near the solution).
/// Convergence rests on phases 2 and 3; phase 1 ends after finitely many iterations (its best
/// residual must fall by 8× per iteration). The residual is taken on the Σx each phase
/// keeps (by a product, or by exact updates: rounding only).
///
/// **Start.** Cold: x_i ∝ √b_i / σ_i (the exact solution for a diagonal Σ). Warm (default): the
/// previous solve's x, when the assets and the excluded set are unchanged. Either is scaled to
/// its optimal multiple along its ray, t² = Σb / xᵀΣx, with one pass over Σ for Σx. When the
/// covariance carries its lineage (`Estimates::set_covariance_lineage`: the same id as the last
/// solve's, or one `CovarianceStep` from it, as the rolling engines give), a warm start's Σx is
/// carried from the last solve in O(N) instead, checked on four rows of Σ per call
/// (`carry_product`): `carried_product()` says so.
///
/// **Budgets and degenerate assets.** A zero budget gives exactly zero weight (the problem is
/// solved on the others). An asset whose volatility is below `relative_floor` × the largest (a
/// stale or constant price) is excluded with weight 0, the remaining budgets are renormalised to
/// sum to 1, and the status is `numerical_issue` (the weights are valid). When no asset is left
/// (every one with a positive budget excluded), the status is `numerical_issue` and the weights are
/// left unchanged. A covariance that is not positive definite on the remaining assets shows up as
/// an iterate that leaves x > 0 or reaches xᵀΣx <= 0, or as one that does not converge: the status
/// is `numerical_issue` or `max_iterations`, and the weights are the best valid iterate (least
/// residual, x > 0, xᵀΣx > 0) or, if there is none, left unchanged. Never an exception for
/// numerical trouble.
///
/// **Bad input** (`dynweight::Error`, policy and weights unchanged): budgets negative, not finite
/// or not summing to 1 within max(1e-12, N·ε) (ε of `Scalar`: 1e-12 in double up to N = 4503,
/// N·1.2e-7 in float, where budgets normalised in float miss 1 by a few ε), or of the wrong size; a
/// covariance of the wrong size or with a negative diagonal entry (non-finite entries and asymmetry
/// are rejected when the covariance is given to `Estimates::set_covariance`).
///
/// **Cost.** One pass over Σ per iteration of phase 1 or 2, plus one for the start unless Σx is
/// carried; the Newton fallback is O(N³) per step. The start and phase 1 read Σ's lower triangle
/// alone (`detail::symmetric_product`: half the reads of a general product, 0.65× its time at
/// N = 500 without FMA, 0.48× with AVX-512 FMA), so a covariance given as a lower triangle is used
/// where it lies; below 128 assets, on a full matrix and without FMA, they take the general
/// product, which is as fast there. Some assets excluded, the active ones are gathered (one copy
/// of their lower triangle). Phases 2 and 3 read whole columns: a lower triangle is mirrored for
/// them (one N×N copy, only in a call that reaches them).
/// No allocation after the first call at a given N, whatever the number of excluded assets.
template <FloatingScalar Scalar_ = double>
class RiskParity {
 public:
  using Scalar = Scalar_;
  using VectorType = Vector<Scalar>;
  using MatrixType = Matrix<Scalar>;
  /// The covariance as the solver reads it: the caller's, or the active assets' gathered into a
  /// corner of a workspace (no copy either way).
  using ConstMatrixRef = Eigen::Ref<const MatrixType>;

  /// Budgets b (one per asset, >= 0, summing to 1 within max(1e-12, N·ε)); empty for equal
  /// budgets.
  explicit RiskParity(RiskParityOptions options = {}, VectorType budgets = {})
      : m_options(options), m_budgets(std::move(budgets)) {
    m_options.validate();
    m_tolerance = m_options.tolerance.value_or(default_tolerance());
    if (m_budgets.size() == 0)
      return;
    const CheckContext context{"RiskParity"};
    check_nonnegative(context, "budgets", m_budgets);
    // Summed in double, as `WeightBounds` sums its bounds: budgets normalised in `Scalar` (b / Σb)
    // miss 1 by the rounding of their N terms, up to ~N·ε.
    double sum = 0;
    for (Index i = 0; i < m_budgets.size(); ++i)
      sum += static_cast<double>(m_budgets(i));
    const double slack = std::max(1e-12, static_cast<double>(m_budgets.size()) *
                                             double(std::numeric_limits<Scalar>::epsilon()));
    check_parameter(std::abs(sum - 1.0) <= slack, context, "sum of budgets", sum,
                    detail::concat({"1 (within ", detail::format_value(slack), ")"}));
  }

  /// The tolerance when `RiskParityOptions::tolerance` is empty: max(1e-10, 4 ε) with ε of
  /// `Scalar`, i.e. 1e-10 in double and 4.8e-7 in float. Measured in float (N = 2 to 400;
  /// one-factor, near-singular and sign-alternating covariances; equal, random and widely spread
  /// budgets): every solve reaches 1 ε, in at most 95 iterations, and some first fail at ε/2;
  /// 4 ε leaves a margin of 8 over that edge.
  static constexpr double default_tolerance() {
    return std::max(1e-10, 4.0 * double(std::numeric_limits<Scalar>::epsilon()));
  }
  /// The tolerance in use: the option's, or `default_tolerance()`.
  [[nodiscard]] double tolerance() const { return m_tolerance; }

  Status compute(const Estimates<Scalar>& estimates, Eigen::Ref<VectorType> weights) {
    const Index n = estimates.assets();
    const CheckContext context{"RiskParity::compute", estimates.names()};
    check_size(context, "weights", weights.size(), n);
    if (m_budgets.size() > 0)
      check_size(context, "budgets", m_budgets.size(), n);
    const MatrixType& sigma = estimates.covariance("RiskParity");
    // The diagonal, read once from its N strided places into contiguous storage for the vector
    // work below (scratch: resizing it changes nothing observable).
    if (m_diagonal.size() != n)
      m_diagonal.resize(n);
    m_diagonal = sigma.diagonal();
    check_nonnegative(context, "covariance diagonal", m_diagonal);
    m_has_variance = false;  // the input is valid: from here on this call's result replaces it

    resize(n);
    const bool excluded = select_assets();
    if (m_active_count == 0) {
      return {StatusCode::numerical_issue, 0, std::numeric_limits<double>::quiet_NaN(),
              "no asset has both a positive budget and a volatility above the floor: the weights "
              "were left unchanged"};
    }
    const ConstMatrixRef s = active_covariance(sigma, estimates.covariance_storage());
    const Index m = m_active_count;
    auto x = m_x.head(m);
    auto y = m_y.head(m);
    auto b = m_b.head(m);

    m_combined = false;
    const bool took_product = start(s, estimates);
    Index iterations = 0;
    // Every iteration keeps y = Σx, by a product or by exact updates (rounding only: ~ε per pass,
    // far below the tolerance), so the residual is taken on it without recomputing Σx.
    Scalar total = 0;
    double residual = residual_of(x, y, b, total);
    const Scalar budget_total = b.sum();
    // A start that took Σx by a product is scaled to its optimal multiple along its ray,
    // t² = Σb / xᵀΣx (the residual does not depend on it): by the fixed-point phase's first pass,
    // or here.
    const Scalar scale = took_product ? std::sqrt(budget_total / total) : Scalar(1);
    const bool phase = m_fixed_point_pause == 0 && m_options.fixed_point;
    if (m_fixed_point_pause > 0)
      --m_fixed_point_pause;
    if (phase) {
      residual = fixed_point_phase(s, residual, budget_total, scale, iterations);
    } else if (took_product) {
      x *= scale;
      y *= scale;
    }
    m_fixed_point_iterations = iterations;
    m_fixed_point_attempted = phase;
    m_history_count = 0;
    if (!(residual <= m_tolerance) && m_options.sweeps_before_newton > iterations)
      m_half_inverse.head(m) = (Scalar(2) * active_diagonal()).cwiseInverse();
    // The sweeps and Newton steps read whole columns of Σ: in full, mirrored when only the lower
    // triangle is at hand (once, and only when the fixed-point phase did not converge).
    const ConstMatrixRef full = residual <= m_tolerance ? s : full_covariance(s);
    // The best iterate of the sweeps and Newton steps (neither lowers the residual at every
    // step), saved in m_best_x, m_best_y before a step moves away from it; at the iteration cap
    // or a breakdown it is the one returned.
    double best = residual;
    bool current_is_best = true;
    while (!(residual <= m_tolerance) && iterations < m_options.max_iterations &&
           std::isfinite(residual)) {
      if (current_is_best) {
        m_best_x.head(m) = x;
        m_best_y.head(m) = y;
      }
      if (iterations < m_options.sweeps_before_newton) {
        residual = accelerated_sweep(full);
      } else if (!newton_step(full)) {
        break;
      } else {
        residual = residual_of(x, y, b);
      }
      ++iterations;
      current_is_best = residual < best;
      if (current_is_best)
        best = residual;
    }
    // A non-finite residual: the iterate left x > 0, or reached xᵀΣx <= 0 (an indefinite Σ).
    const bool broke_down = !std::isfinite(residual);
    if (!current_is_best && std::isfinite(best)) {
      x = m_best_x.head(m);
      y = m_best_y.head(m);
      residual = best;
    }
    // Every x_i finite and > 0, by two vectorised reductions: a NaN or an infinity makes the sum
    // non-finite (the terms cannot cancel to a finite value), and then min x > 0 is exact.
    const Scalar sum = x.sum();
    if (!std::isfinite(sum) || !std::isfinite(residual) || !(x.minCoeff() > 0)) {
      m_has_previous = false;
      return {StatusCode::numerical_issue, iterations, residual,
              "the iterate is not finite and positive (is the covariance positive definite?): "
              "the weights were left unchanged"};
    }

    // w = x / Σx on the active assets, 0 elsewhere; wᵀΣw = xᵀ(Σx) / (Σx)².
    m_variance = x.dot(y) / (sum * sum);
    m_has_variance = true;
    const Scalar inverse = 1 / sum;
    if (m == n) {
      weights = x * inverse;
      m_previous = x;
    } else {
      weights.setZero();
      m_previous.setZero();
      for (Index k = 0; k < m; ++k) {
        weights(m_active(k)) = x(k) * inverse;
        m_previous(m_active(k)) = x(k);
      }
    }
    m_has_previous = true;
    // Σx at the solution, for the next call to carry (every asset active only: then x and y are
    // indexed as the covariance).
    m_previous_id = m == n ? estimates.covariance_id() : 0;
    if (m_previous_id != 0)
      m_previous_y = y;
    m_previous_active.head(m) = m_active.head(m);
    m_previous_count = m;

    if (broke_down) {
      return {StatusCode::numerical_issue, iterations, residual,
              "the iteration broke down (is the covariance positive definite?): best iterate "
              "returned"};
    }
    if (!(residual <= m_tolerance)) {
      return {StatusCode::max_iterations, iterations, residual,
              "the risk contributions did not reach the tolerance: best iterate returned"};
    }
    if (excluded) {
      return {StatusCode::numerical_issue, iterations, residual,
              "an asset's volatility is below the floor (stale or constant price): it was "
              "excluded with weight 0 and the other budgets renormalised"};
    }
    return Status::success_after(iterations, residual);
  }

  /// Forgets the previous solution: the next `compute` starts cold.
  void reset_warm_start() {
    m_has_previous = false;
    m_previous_id = 0;
    m_fixed_point_pause = 0;
    m_fixed_point_backoff = kShortestPause;
  }

  /// wᵀΣw of the weights the last `compute` wrote, on the covariance it was given (O(1): from the
  /// Σx the solve keeps); empty when it wrote none. `Overlaid` hands it to the overlays.
  [[nodiscard]] std::optional<Scalar> portfolio_variance() const {
    return m_has_variance ? std::optional<Scalar>(m_variance) : std::nullopt;
  }

  /// Whether the last `compute` carried Σx from the call before through the covariance's lineage
  /// (`Estimates::set_covariance_lineage`), saving its pass over Σ for it.
  [[nodiscard]] bool carried_product() const { return m_carried > 0; }

  /// Whether the last `compute` ended its fixed-point phase with a combination of two iterates
  /// instead of one more product (see `RiskParity`).
  [[nodiscard]] bool combined_iterates() const { return m_combined; }

  /// How many of the last `compute`'s iterations were fixed-point iterations (see `RiskParity`;
  /// 0 when the phase was off or skipped after a stall).
  [[nodiscard]] Index fixed_point_iterations() const { return m_fixed_point_iterations; }

  /// Whether the last `compute` entered the fixed-point phase: false when it was off or paused
  /// after a stall (see `RiskParity`). A probe that stalls before its first product (Σx with an
  /// entry <= 0) entered it with 0 iterations.
  [[nodiscard]] bool fixed_point_attempted() const { return m_fixed_point_attempted; }

  [[nodiscard]] const RiskParityOptions& options() const { return m_options; }
  /// The budgets given at construction (empty for equal budgets).
  [[nodiscard]] const VectorType& budgets() const { return m_budgets; }

 private:
  void resize(Index n) {
    if (m_x.size() == n)
      return;
    m_x.resize(n);
    m_y.resize(n);
    m_b.resize(n);
    m_half_inverse.resize(n);
    m_gradient.resize(n);
    m_step.resize(n);
    m_step_image.resize(n);
    m_trial.resize(n);
    m_before.resize(n);
    m_last_x.resize(n);
    m_last_y.resize(n);
    m_last_f.resize(n);
    m_best_x.resize(n);
    m_best_y.resize(n);
    m_delta_x.resize(n, kDepth - 1);
    m_delta_y.resize(n, kDepth - 1);
    m_delta_f.resize(n, kDepth - 1);
    m_active.resize(n);
    m_active_diagonal.resize(n);
    m_previous_active.resize(n);
    m_previous.resize(n);
    m_previous_y.resize(n);
    m_previous_id = 0;
    m_work.resize(n, n);
    m_hessian.resize(n, n);
    m_has_previous = false;
  }

  // The assets solved for: positive budget and volatility above the floor. Returns true when an
  // asset with a positive budget was excluded by the floor. Fills m_active, m_active_count, m_b.
  bool select_assets() {
    const auto& diagonal = m_diagonal;
    const Index n = diagonal.size();
    const Scalar largest = diagonal.maxCoeff();
    const Scalar floor =
        static_cast<Scalar>(m_options.relative_floor * m_options.relative_floor) * largest;
    const Scalar equal = Scalar(1) / Scalar(n);
    const bool budgeted = m_budgets.size() > 0;
    m_equal_budgets = !budgeted;  // and still equal when some are excluded (renormalised alike)
    if (!budgeted && diagonal.minCoeff() > floor) {  // every asset (floor >= 0), vectorised
      for (Index i = 0; i < n; ++i)
        m_active(i) = i;
      m_b.setConstant(equal);
      m_active_count = n;
      return false;
    }
    Index m = 0;
    bool excluded = false;
    Scalar budget_sum = 0;
    for (Index i = 0; i < n; ++i) {
      const Scalar budget = budgeted ? m_budgets(i) : equal;
      if (budget == 0)
        continue;
      if (!(diagonal(i) > floor) || diagonal(i) == 0) {
        excluded = true;
        continue;
      }
      m_active(m) = i;
      m_active_diagonal(m) = diagonal(i);
      m_b(m) = budget;
      budget_sum += budget;
      ++m;
    }
    m_active_count = m;
    if (excluded && m > 0)
      m_b.head(m) /= budget_sum;
    return excluded;
  }

  // The diagonal of Σ on the active assets, contiguous.
  [[nodiscard]] auto active_diagonal() const {
    const Index m = m_active_count;
    return (m == m_diagonal.size() ? m_diagonal : m_active_diagonal).head(m);
  }

  // Σ on the active assets, its lower triangle valid (and its strict upper triangle too unless
  // m_lower_only): the caller's own when every asset is active, else the active rows and columns
  // gathered into the top-left m×m corner of m_work (lower triangle only). m_work is free then:
  // it holds a mirrored copy of the caller's Σ only when every asset is active. So any number of
  // excluded assets needs no memory beyond what N does.
  ConstMatrixRef active_covariance(const MatrixType& sigma, SymmetricStorage storage) {
    const Index n = sigma.rows();
    const Index m = m_active_count;
    m_gathered = m < n;
    if (!m_gathered) {
      m_lower_only = storage != SymmetricStorage::full;
      return sigma;
    }
    auto gathered = m_work.topLeftCorner(m, m);
    for (Index c = 0; c < m; ++c) {
      for (Index r = c; r < m; ++r) {
        const Index i = m_active(r);
        const Index j = m_active(c);
        gathered(r, c) = storage == SymmetricStorage::full || i >= j ? sigma(i, j) : sigma(j, i);
      }
    }
    m_lower_only = true;
    return gathered;
  }

  // The active covariance s in full, for the coordinate sweeps and Newton steps (which read whole
  // columns): s itself, or s mirrored (a gathered one in place, a caller's lower triangle into
  // m_work), once per call. The fixed-point phase and the start need only the lower triangle.
  ConstMatrixRef full_covariance(const ConstMatrixRef& s) {
    if (!m_lower_only)
      return s;
    m_lower_only = false;
    if (m_gathered) {
      auto gathered = m_work.topLeftCorner(s.rows(), s.cols());
      detail::mirror_lower_to_upper(gathered);
      return gathered;
    }
    detail::scaled_symmetric_copy(s, Scalar(1), m_work);
    return m_work;
  }

  // y = Σx on the active assets: the symmetric product on Σ's lower triangle (half the reads of a
  // general product, see `detail::symmetric_product`: 0.65× its time at N = 500), except on a full
  // matrix of fewer than kSymmetricFrom assets, where the general product is as fast or faster.
  void product(const ConstMatrixRef& s, const auto& x, auto&& y) const {
    if (m_lower_only || s.rows() >= kSymmetricFrom)
      detail::symmetric_product(s.data(), s.outerStride(), s.rows(), x.data(), y.data());
    else
      y.noalias() = s * x;
  }
  // Without FMA the symmetric product does the general one's multiplies and adds with more
  // overhead per column (1.07× its time at N = 100, 0.99× at 150, SSE2); with FMA it is faster at
  // every size measured (0.71× at N = 100, AVX-512).
  static constexpr Index kSymmetricFrom = detail::kFusedMultiplyAdd ? 0 : 128;

  // x from the previous solution (warm) or √b/σ (cold), and y = Σx. Cold, y is taken by a
  // product (one pass over Σ), and the caller scales x to its optimal multiple. Warm, x is the
  // previous solve's own x, near that scale already when Σ has moved by a bar; y is carried from
  // the previous solve when the covariance's lineage allows (`carry_product`: O(N)), else taken
  // by a product and x scaled as a cold start's. A warm start on a rescaled Σ is scaled as well.
  // Returns true when y was taken by a product.
  bool start(const ConstMatrixRef& s, const Estimates<Scalar>& estimates) {
    const Index m = m_active_count;
    auto x = m_x.head(m);
    auto y = m_y.head(m);
    const bool warm = m_options.warm_start && m_has_previous && m_previous_count == m &&
                      m_previous_active.head(m) == m_active.head(m);
    if (warm) {
      for (Index k = 0; k < m; ++k) {
        const Scalar previous = m_previous(m_active(k));
        x(k) = previous > 0 ? previous : std::sqrt(m_b(k) / s(k, k));
      }
    } else {
      x = (m_b.head(m).array() / active_diagonal().array()).sqrt();
    }
    // Σ rescaled since the last solve (other units, annualised: tr Σ off by more than 2×) puts
    // the previous x far from its optimal multiple: Σx is not carried then.
    const Scalar trace = active_diagonal().sum();
    const bool same_scale = trace <= 2 * m_previous_trace && m_previous_trace <= 2 * trace;
    m_previous_trace = trace;
    if (warm && same_scale && carry_product(s, estimates))
      return false;
    m_carried = 0;
    product(s, x, y);
    return true;
  }

  // y = Σx for the warm x (the previous solution) from the previous solve's Σx, when the covariance
  // is labelled as that solve's, or as one `CovarianceStep` from it (`Estimates::
  // set_covariance_lineage`): O(N) instead of a pass over Σ. Checked on four rows of Σ, in turn
  // (so every row within N/4 calls), against a product taken from Σ itself: a disagreement beyond
  // rounding (a wrong label) falls back to the product. The rounding a carried y gathers
  // (~ε relative per iteration and per step) is bounded by refreshing it at least every kCarryLimit
  // calls. Double precision and wider only (in float the check could not tell a wrong label from
  // rounding). Returns false when y was not carried.
  bool carry_product(const ConstMatrixRef& s, const Estimates<Scalar>& estimates) {
    if constexpr (std::numeric_limits<Scalar>::digits < 53)
      return false;
    const Index n = s.rows();
    const std::uint64_t id = estimates.covariance_id();
    const auto& step = estimates.covariance_step();
    if (m_active_count != n || m_previous_id == 0 || id == 0 || m_carried >= kCarryLimit)
      return false;
    auto x = m_x.head(n);
    auto y = m_y.head(n);
    if (id == m_previous_id) {
      y = m_previous_y;
    } else if (step && step->from == m_previous_id) {
      step->apply(x, m_previous_y, y);
    } else {
      return false;
    }
    const Index first = m_check_row % n;
    for (Index k = first; k < std::min(first + kBlock, n); ++k) {
      // Row k of Σ: column k where Σ is full (contiguous), else from the lower triangle, row k
      // left of the diagonal (strided) and column k from it down.
      const Index split = m_lower_only ? k : 0;
      const auto left = s.row(k).head(split);
      const auto down = s.col(k).tail(n - split);
      const Scalar exact = left.dot(x.head(split)) + down.dot(x.tail(n - split));
      const Scalar magnitude = left.cwiseAbs().dot(x.head(split).cwiseAbs()) +
                               down.cwiseAbs().dot(x.tail(n - split).cwiseAbs());
      if (!(std::abs(exact - y(k)) <= Scalar(kCarryCheck) * magnitude))
        return false;
    }
    m_check_row = first + kBlock < n ? first + kBlock : 0;
    ++m_carried;
    return true;
  }
  static constexpr Index kCarryLimit = 64;
  // A carried (Σx)_k is wrong when it differs from Σ's own row by more than this relative to
  // Σ_j |Σ_kj x_j| (the rounding of either is ~1e-16 per pass and step; 64 steps stay ~1e-14).
  static constexpr double kCarryCheck = 1e-12;

  // Coordinates are minimised in blocks of kBlock (see `sweep`).
  static constexpr Index kBlock = 4;  // = the columns of detail::kernel::add_four_columns
  using BlockVector = Eigen::Matrix<Scalar, kBlock, 1>;

  // The minimiser of f along coordinate i: the positive root of d x² + a x − b = 0 (d = Σ_ii,
  // a = (Σx)_i − Σ_ii x_i, b = b_i). (r − a)/(2d), r = √(a² + 4db), takes a multiplication by
  // the precomputed 1/(2d), but for a > 0 it cancels, to a relative error ε a²/(2db): it is used
  // when a <= 0 or that error is at most 5e-14 (a² <= kCancellation d b, about 450 in double);
  // otherwise 2b/(a + r), exact to rounding but a division on the sweep's critical path (taking
  // it out saves ~8% of a solve at N = 100; always the division in float).
  static Scalar coordinate_minimum(Scalar d, Scalar a, Scalar b, Scalar half_inverse_d) {
    const Scalar root = std::sqrt(a * a + 4 * d * b);
    if (a <= 0 || a * a <= kCancellation * d * b)
      return (root - a) * half_inverse_d;
    return 2 * b / (a + root);
  }
  static constexpr Scalar kCancellation = Scalar(1e-13) / std::numeric_limits<Scalar>::epsilon();

  // One cyclical coordinate-descent sweep on f, keeping y = Σx up to date. Coordinates go in
  // blocks of four: inside a block each one is minimised in turn with y corrected through the 4×4
  // diagonal block of Σ, then the block's four changes reach the rest of y as one 4-column
  // product (one pass over Σ per sweep, at the speed of a matrix-vector product rather than of N
  // separate column updates).
  void sweep(const ConstMatrixRef& s) {
    constexpr Index block = kBlock;
    const Index m = m_active_count;
    auto x = m_x.head(m);
    auto y = m_y.head(m);
    BlockVector change;
    for (Index start = 0; start < m; start += block) {
      const Index width = std::min(block, m - start);
      for (Index k = 0; k < width; ++k) {
        const Index i = start + k;
        // y_i with the changes already made in this block.
        Scalar yi = y(i);
        for (Index l = 0; l < k; ++l)
          yi += s(i, start + l) * change(l);
        const Scalar updated =
            coordinate_minimum(s(i, i), yi - s(i, i) * x(i), m_b(i), m_half_inverse(i));
        change(k) = updated - x(i);
        x(i) = updated;
      }
      if (width == block) {
        detail::kernel::add_four_columns(y.data(), s.data() + start * s.outerStride(),
                                         s.outerStride(), m, change.data());
      } else {
        y.noalias() += s.middleCols(start, width) * change.head(width);
      }
    }
  }

  // The fixed-point phase: iterations x ← b ⊘ Σx (Chaves, Hsu, Li & Shakernia 2012), mixed by
  // Anderson acceleration, from the start until the tolerance, the first-order budget
  // (`sweeps_before_newton`, shared with the sweeps that may follow) or a stall. Each iteration
  // is one product Σx and O(N) vector work, all of it vectorised, where a coordinate sweep is a
  // chain of N dependent square roots (3.7× the product's time at N = 100, 1.5× at N = 500).
  //
  // Near the solution x*, with S = diag(x*/√b), the map's linearisation is −SΣS in S's scaled
  // coordinates: a symmetric matrix with eigenvector √b (the scale direction, which the scaling
  // to the optimal multiple after each product removes) at eigenvalue 1, and its other
  // eigenvalues λ ≥ 0 those of a matrix whose Perron value is 1. So the plain iteration contracts
  // by the second eigenvalue (0.03–0.15 for one-factor markets, 0.3–0.75 for the real equity
  // covariances tried), and Anderson mixing, a Krylov method on I + SΣS (eigenvalues in [1, 2]
  // when every correlation is positive), does better. Negative correlations can put eigenvalues
  // above 1, where the iteration diverges. Hence the guard: the phase stalls when its best
  // residual falls behind the envelope below (kContraction), or when Σx has an entry <= 0, and
  // hands its best iterate (x with its exact Σx) to the coordinate sweeps, whose convergence is
  // proved. The envelope makes the phase finite. x and y come in counting at `scale` times their
  // stored values (as in `fixed_point_step`). Returns the best residual, whose iterate it leaves
  // in x, y, scaled.
  double fixed_point_phase(const ConstMatrixRef& s, double residual, Scalar budget_total,
                           Scalar scale, Index& iterations) {
    const Index m = m_active_count;
    auto x = m_x.head(m);
    auto y = m_y.head(m);
    auto best_x = m_best_x.head(m);
    auto best_y = m_best_y.head(m);
    m_history_count = 0;
    const Index budget = std::min(m_options.sweeps_before_newton, m_options.max_iterations);
    double best = residual;
    double envelope = residual / kContraction;  // one iteration's grace
    bool current_is_best = true;
    bool stalled = false;
    while (!(best <= m_tolerance) && std::isfinite(best) && iterations < budget) {
      double next = fixed_point_step(s, budget_total, current_is_best, scale);
      stalled = std::isnan(next);  // Σx had an entry <= 0: the map is not defined there
      if (stalled)
        break;
      ++iterations;
      if (next > m_tolerance && next <= kCombineReach * m_tolerance) {
        const double combined = combine_iterates(budget_total, scale);
        if (combined <= m_tolerance) {
          next = combined;
          m_combined = true;
        }
      }
      current_is_best = next < best;
      best = std::min(best, next);
      envelope *= kContraction;
      stalled = !(best <= envelope) && !(best <= m_tolerance);
      if (stalled)
        break;
    }
    if (current_is_best) {
      x *= scale;
      y *= scale;
    } else {
      x = best_x;
      y = best_y;
    }
    // The spectrum is one the map does not contract on well, which a market keeps from bar to
    // bar: the next calls go straight to the sweeps, 16 of them after a first stall, twice as
    // many after each further stall in a row (up to 1024), so that the probes cost a market
    // where the phase never works next to nothing.
    if (stalled) {
      m_fixed_point_pause = m_fixed_point_backoff;
      m_fixed_point_backoff = std::min(2 * m_fixed_point_backoff, kLongestPause);
    } else {
      m_fixed_point_backoff = kShortestPause;
    }
    return best;
  }
  // A last step without a product, tried when an iteration leaves the residual just above the
  // tolerance (within kCombineReach×): the affine combination x_c = x + β (x' − x) of the current
  // iterate x and the best earlier one x' (saved by `fixed_point_record`; both at their scales),
  // whose Σx_c = Σx + β (Σx' − Σx) is exact to rounding without a product. β minimises the
  // linearised residual ‖RC(x_c)/ΣRC(x_c) − b‖₂: with c = Δx∘Σx + x∘ΔΣx, s = RC/ΣRC, r = s − b
  // and C = Σc, the shares move by β (c − C s)/ΣRC to first order, a least-squares problem in one
  // unknown. Taken, into x and y at scale 1, when |β| <= 1e3 (which bounds the rounding it adds to
  // Σx_c, as for the mixing), x_c > 0 and the residual taken exactly on (x_c, Σx_c) is within the
  // tolerance; returns that residual, or NaN with x and y untouched. On the benchmarks' rolling
  // one-factor market at N = 500 it gains 1.3–2.4× on a residual of 1–4× the tolerance, which
  // ends about one warm solve in four a product early (3 in 50 on the tests' N = 250 market); a
  // cold solve's last step gains ~100× and rarely stops in reach.
  double combine_iterates(Scalar budget_total, Scalar& scale) {
    const Index m = m_active_count;
    auto x = m_x.head(m);
    auto y = m_y.head(m);
    const auto b = m_b.head(m).array();
    auto dx = m_trial.head(m);
    auto dy = m_step_image.head(m);
    const Scalar t = scale;
    dx = m_best_x.head(m) - t * x;
    dy = m_best_y.head(m) - t * y;
    // At the optimal multiple ΣRC = t² xᵀy = Σb.
    const auto s = ((t * t) * x.array() * y.array()) / budget_total;
    const auto c = t * (dx.array() * y.array() + x.array() * dy.array());
    const auto r = s - b;
    const Scalar total_c = c.sum();
    const Scalar rc = (r * c).sum();
    const Scalar rs = (r * s).sum();
    const Scalar cc = c.square().sum();
    const Scalar cs = (c * s).sum();
    const Scalar ss = s.square().sum();
    const Scalar beta =
        -budget_total * (rc - total_c * rs) / (cc - 2 * total_c * cs + total_c * total_c * ss);
    if (!(std::abs(beta) <= Scalar(1e3)))
      return std::numeric_limits<double>::quiet_NaN();
    dx = t * x + beta * dx;  // x_c
    dy = t * y + beta * dy;  // Σx_c
    if (!(dx.minCoeff() > 0))
      return std::numeric_limits<double>::quiet_NaN();
    const double residual = residual_of(dx, dy, m_b.head(m));
    if (!(residual <= m_tolerance))
      return std::numeric_limits<double>::quiet_NaN();
    x = dx;
    y = dy;
    scale = 1;
    return residual;
  }
  static constexpr double kCombineReach = 4;

  // The phase goes on while its best residual after k iterations is within kContraction^(k − 1)
  // of the start's: a reduction of 8× per iteration on average, after one iteration's grace (the
  // mixing needs a history). An accelerated sweep reduces the residual ~10–25× at 1–4× the cost
  // of an iteration here, so a slower phase would lose time to the sweeps.
  static constexpr double kContraction = 0.125;
  static constexpr Index kShortestPause = 16;
  static constexpr Index kLongestPause = 1024;

  // One fixed-point iteration: g = b ⊘ Σx, then x ← g − ΔG γ mixed over the last kDepth
  // iterations (type II, with f = g − x), or x ← g when the mixing is unsafe (`anderson_solve`) or
  // leaves an entry <= 0; y = Σx by one product, and `scale` set to the optimal multiple
  // t = √(Σb / xᵀΣx), by which x and y count (applied in the next step's pass or at the phase's
  // end). The O(N) work before the product is one pass (`kernel::fixed_point_record`: g, f, the
  // history's new column and the mixing's inner products), which also saves the scaled x, y as the
  // best iterate when `save_best`. Returns the residual (scale-free), or NaN with x, y and scale
  // untouched when Σx has an entry <= 0 (the history is then stale: the phase ends).
  double fixed_point_step(const ConstMatrixRef& s, Scalar budget_total, bool save_best,
                          Scalar& scale) {
    const Index m = m_active_count;
    auto x = m_x.head(m);
    auto y = m_y.head(m);
    const auto b = m_b.head(m);
    const bool differences = m_history_count > 0;
    const Index slot = differences ? (m_history_count - 1) % kRing : 0;
    const Index filled = std::min<Index>(m_history_count, kRing);  // columns after this record
    std::array<const Scalar*, 4> columns{};  // the first `filled`, the only ones read
    for (Index j = 0; j < filled; ++j)
      columns[std::size_t(j)] = m_delta_f.col(j).data();
    Scalar* best_x = save_best ? m_best_x.data() : nullptr;
    Scalar* best_y = save_best ? m_best_y.data() : nullptr;
    const auto record = [&]<int used>() {
      return detail::kernel::fixed_point_record<used>(
          m, b.data(), y.data(), x.data(), m_last_x.data(), m_last_f.data(),
          m_delta_x.col(slot).data(), m_delta_f.col(slot).data(), columns, best_x, best_y, scale);
    };
    const auto sums = !differences  ? record.template operator()<0>()
                      : filled == 1 ? record.template operator()<1>()
                      : filled == 2 ? record.template operator()<2>()
                      : filled == 3 ? record.template operator()<3>()
                                    : record.template operator()<4>();
    if (!sums.g_positive())
      return std::numeric_limits<double>::quiet_NaN();
    for (Index j = 0; j < filled; ++j) {
      m_gram(slot, j) = sums.gram[std::size_t(j)];
      m_gram(j, slot) = sums.gram[std::size_t(j)];
    }
    ++m_history_count;
    const auto g = m_last_x.head(m);
    if (filled > 0 && anderson_solve(sums.rhs, filled)) {
      if (!(mix_into(x, g, m_delta_x, filled) > 0))
        x = g;
    } else {
      x = g;
    }
    product(s, x, y);
    Scalar total = 0;
    const double residual = residual_of(x, y, b, total);
    scale = std::sqrt(budget_total / total);
    return residual;
  }

  // One sweep, then Anderson acceleration (type II, Walker & Ni 2011) over the last kDepth
  // sweeps: with G the sweep map and f = G(x) − x, x ← G(x) − ΔG γ, γ = argmin ‖f − ΔF γ‖.
  // Σx of the combination is the same combination of the Σx the sweeps kept, so no pass over Σ
  // is added. Safeguarded: the accelerated point is taken only when it is positive, its
  // coefficients are moderate (`anderson_mix`) and its residual is below the plain sweep's.
  // Returns the residual.
  double accelerated_sweep(const ConstMatrixRef& s) {
    const Index m = m_active_count;
    auto x = m_x.head(m);
    auto y = m_y.head(m);
    const auto b = m_b.head(m);
    m_before.head(m) = x;
    sweep(s);
    const double plain = residual_of(x, y, b);
    auto f = m_before.head(m);
    f = x - f;
    // The sweep's Σx differences go to the same ring slot as its x and f differences.
    if (m_history_count > 0)
      m_delta_y.col((m_history_count - 1) % kRing).head(m) = y - m_last_y.head(m);
    m_last_y.head(m) = y;
    const Index columns = anderson_record(x, f);
    if (columns < 1 || !anderson_mix(f, columns))
      return plain;
    auto trial = m_trial.head(m);
    auto trial_y = m_step_image.head(m);
    const Scalar lowest = mix_into(trial, x, m_delta_x, columns);
    mix_into(trial_y, y, m_delta_y, columns);
    if (!(lowest > 0))
      return plain;
    const double accelerated = residual_of(trial, trial_y, b);
    if (!(accelerated < plain))
      return plain;
    x = trial;
    y = trial_y;
    return accelerated;
  }

  // Anderson's history: records the map's newest value g and residual f, whose differences with
  // the last ones replace the oldest column of the ring (ΔG in m_delta_x, ΔF in m_delta_f; only
  // the new column's inner products in ΔFᵀΔF are new). Returns the number of difference columns.
  Index anderson_record(const auto& g, const auto& f) {
    const Index m = m_active_count;
    if (m_history_count > 0) {
      const Index slot = (m_history_count - 1) % kRing;
      m_delta_x.col(slot).head(m) = g - m_last_x.head(m);
      m_delta_f.col(slot).head(m) = f - m_last_f.head(m);
      const Index filled = std::min<Index>(m_history_count, kRing);
      for (Index j = 0; j < filled; ++j) {
        m_gram(slot, j) = m_delta_f.col(slot).head(m).dot(m_delta_f.col(j).head(m));
        m_gram(j, slot) = m_gram(slot, j);
      }
    }
    m_last_x.head(m) = g;
    m_last_f.head(m) = f;
    ++m_history_count;
    return std::min<Index>(m_history_count - 1, kRing);
  }

  // out = base − Δ γ over the first `columns` columns of Δ, in one pass; returns min out (NaN
  // entries aside, which a NaN residual then catches).
  Scalar mix_into(auto&& out, const auto& base, const MatrixType& delta, Index columns) const {
    std::array<const Scalar*, 4> used{};  // the first `columns`, the only ones read (with γ)
    for (Index j = 0; j < columns; ++j)
      used[std::size_t(j)] = delta.col(j).data();
    const auto mix = [&]<int count>() {
      return detail::kernel::mix_columns<count>(m_active_count, out.data(), base.data(), used,
                                                m_gamma);
    };
    return columns == 1   ? mix.template operator()<1>()
           : columns == 2 ? mix.template operator()<2>()
           : columns == 3 ? mix.template operator()<3>()
                          : mix.template operator()<4>();
  }

  // γ = argmin ‖f − ΔF γ‖ over the recorded columns, into m_gamma; false when the mixing is
  // unsafe (see `anderson_solve`).
  bool anderson_mix(const auto& f, Index columns) {
    const Index m = m_active_count;
    std::array<Scalar, kRing> rhs{};
    for (Index j = 0; j < columns; ++j)
      rhs[std::size_t(j)] = m_delta_f.col(j).head(m).dot(f);
    return anderson_solve(rhs, columns);
  }

  // γ = (ΔFᵀΔF + ρI)⁻¹ rhs over the first `columns` (≤ 4) columns (rhs = ΔFᵀ f), into m_gamma,
  // with the ridge ρ = 1e-14 max_j (ΔFᵀΔF)_jj + the least normal number. By a Cholesky
  // factorisation written out for these small systems (Eigen's pivoting LDLT of a dynamic-size
  // matrix took 10% of a cold solve's vector work at N = 100). False when the mixing is unsafe:
  // a pivot <= 0 (ΔF's columns dependent to rounding), γ not finite or ‖γ‖∞ > 1e3 (which bounds
  // the rounding it adds to a mixed Σx at ~1e-13 relative).
  bool anderson_solve(const std::array<Scalar, 4>& rhs, Index columns) {
    const auto k = static_cast<std::size_t>(columns);
    Scalar largest = 0;
    for (std::size_t j = 0; j < k; ++j)
      largest = std::max(largest, m_gram(Index(j), Index(j)));
    const Scalar ridge = Scalar(1e-14) * largest + tiny();
    std::array<std::array<Scalar, kRing>, kRing> l{};  // the lower factor L, LLᵀ = ΔFᵀΔF + ρI
    for (std::size_t j = 0; j < k; ++j) {
      Scalar pivot = m_gram(Index(j), Index(j)) + ridge;
      for (std::size_t p = 0; p < j; ++p)
        pivot -= l[j][p] * l[j][p];
      if (!(pivot > 0))
        return false;
      l[j][j] = std::sqrt(pivot);
      for (std::size_t i = j + 1; i < k; ++i) {
        Scalar entry = m_gram(Index(i), Index(j));
        for (std::size_t p = 0; p < j; ++p)
          entry -= l[i][p] * l[j][p];
        l[i][j] = entry / l[j][j];
      }
    }
    std::array<Scalar, kRing> z{};  // L z = rhs, then Lᵀ γ = z
    for (std::size_t i = 0; i < k; ++i) {
      Scalar entry = rhs[i];
      for (std::size_t p = 0; p < i; ++p)
        entry -= l[i][p] * z[p];
      z[i] = entry / l[i][i];
    }
    Scalar largest_gamma = 0;
    for (std::size_t i = k; i-- > 0;) {
      Scalar entry = z[i];
      for (std::size_t p = i + 1; p < k; ++p)
        entry -= l[p][i] * m_gamma[p];
      m_gamma[i] = entry / l[i][i];
      largest_gamma = std::max(largest_gamma, std::abs(m_gamma[i]));
    }
    return std::isfinite(largest_gamma) && largest_gamma <= Scalar(1e3);
  }

  static constexpr Scalar tiny() { return std::numeric_limits<Scalar>::min(); }

  // One damped Newton step on f; false when no step decreases f (stalled). Near the solution the
  // decrease a step promises, −slope, falls to the rounding of f itself (~ε times its terms): the
  // Armijo test then decides by rounding noise, and could halve every step (or stall) at a
  // residual of ~1e-10 (seen with FMA). There the step is judged by the residual it leaves
  // instead (on y + tΣδ, exact to rounding), which the full Newton step cuts quadratically.
  bool newton_step(const ConstMatrixRef& s) {
    const Index m = m_active_count;
    auto x = m_x.head(m);
    auto y = m_y.head(m);
    auto b = m_b.head(m);
    auto g = m_gradient.head(m);
    auto step = m_step.head(m);
    auto image = m_step_image.head(m);
    auto trial = m_trial.head(m);
    y.noalias() = s * x;
    g = y - b.cwiseQuotient(x);
    Eigen::Ref<MatrixType> h = m_hessian.topLeftCorner(m, m);
    h = s;
    h.diagonal() += b.cwiseQuotient(x.cwiseAbs2());
    if (!detail::cholesky_in_place<Scalar>(h))  // LLᵀ in h's lower triangle, no allocation
      return false;
    step = -g;
    h.template triangularView<Eigen::Lower>().solveInPlace(step);              // L z = −g
    h.transpose().template triangularView<Eigen::Upper>().solveInPlace(step);  // Lᵀ step = z
    image.noalias() = s * step;
    const Scalar slope = g.dot(step);
    const Scalar f0 = objective(x, y);
    const Scalar magnitude =
        Scalar(0.5) * std::abs(x.dot(y)) + b.dot(x.array().log().abs().matrix());
    const bool resolved =
        -slope > kNewtonResolution * std::numeric_limits<Scalar>::epsilon() * magnitude;
    const double before = resolved ? 0.0 : residual_of(x, y, b);
    auto trial_y = m_gradient.head(m);  // g is not needed past the slope
    for (Scalar t = 1; t > Scalar(1e-12); t /= 2) {
      trial = x + t * step;
      if (!(trial.array() > 0).all())
        continue;
      // f(x + t δ) with Σ(x + t δ) = y + t Σδ.
      trial_y = y + t * image;
      const bool accept =
          resolved ? Scalar(0.5) * trial.dot(trial_y) - b.dot(trial.array().log().matrix()) <=
                         f0 + Scalar(1e-4) * t * slope
                   : residual_of(trial, trial_y, b) < before;
      if (accept) {
        x = trial;
        y = trial_y;
        return true;
      }
    }
    return false;
  }
  // The Armijo test is trusted while the promised decrease −slope exceeds this many ε times the
  // magnitude of f's terms (|½xᵀΣx| + Σ b_i |ln x_i|).
  static constexpr Scalar kNewtonResolution = 1e3;

  Scalar objective(const auto& x, const auto& y) const {
    const auto b = m_b.head(m_active_count);
    return Scalar(0.5) * x.dot(y) - b.dot(x.array().log().matrix());
  }

  // max_i |RC_i/ΣRC − b_i| with RC_i = x_i (Σx)_i, and ΣRC = xᵀy into `total`.
  // NaN when a share is NaN. With ΣRC finite and non-zero every RC_i is finite, and the shares
  // are taken in packets; otherwise share by share. With equal budgets one pass gives ΣRC and the
  // largest and smallest RC_i, whose shares are the extreme ones: the rounded share
  // fl(fl(RC_i/ΣRC) − b) is monotone in RC_i, so this is the same number as share by share.
  // Otherwise ΣRC and the shares take a pass each.
  double residual_of(const auto& x, const auto& y, const auto& b, Scalar& total) const {
    if (!m_equal_budgets || x.size() == 0) {
      total = x.dot(y);
      return residual_with_total(x, y, b, total);
    }
    const auto sums = detail::kernel::contribution_sums(x.size(), x.data(), y.data());
    total = sums.total;
    if (!(total > 0) || !finite_total(total))  // NaN for ΣRC <= 0, as below
      return residual_with_total(x, y, b, total);
    const Scalar inverse = 1 / total;
    const Scalar budget = b(0);
    return double(std::max(sums.largest * inverse - budget, budget - sums.smallest * inverse));
  }
  double residual_of(const auto& x, const auto& y, const auto& b) const {
    Scalar total = 0;
    return residual_of(x, y, b, total);
  }
  static bool finite_total(Scalar total) {
    return std::isfinite(total) && total != 0 && std::isfinite(1 / total);
  }
  // max_i |RC_i/ΣRC − b_i| with ΣRC = xᵀy given; NaN when ΣRC <= 0, a variance no positive
  // definite Σ gives (the shares' signs flip there, and could mimic the budgets).
  static double residual_with_total(const auto& x, const auto& y, const auto& b, Scalar total) {
    if (!(total > 0))
      return std::numeric_limits<double>::quiet_NaN();
    if (finite_total(total))
      return double(((x.array() * y.array()) * (1 / total) - b.array()).abs().maxCoeff());
    double worst = 0;
    for (Index k = 0; k < x.size(); ++k) {
      const double gap = std::abs(double(x(k) * y(k) / total) - double(b(k)));
      worst = std::isnan(gap) ? gap : std::max(worst, gap);
      if (std::isnan(worst))
        return worst;
    }
    return worst;
  }

  RiskParityOptions m_options;
  double m_tolerance = 0;     // the option's, or the default for Scalar
  VectorType m_budgets;       // empty: equal
  VectorType m_x;             // Spinu's x on the active assets
  VectorType m_y;             // Σx
  VectorType m_b;             // budgets of the active assets (renormalised when some are excluded)
  VectorType m_half_inverse;  // 1 / (2 Σ_ii) of the active assets
  VectorType m_gradient;
  VectorType m_step;
  VectorType m_step_image;  // Σ step
  VectorType m_trial;
  VectorType m_diagonal;                             // Σ's diagonal (all assets)
  VectorType m_active_diagonal;                      // that of the active assets, when some are not
  Eigen::Matrix<Index, Eigen::Dynamic, 1> m_active;  // indices of the active assets
  Index m_active_count = 0;
  bool m_equal_budgets = true;  // every active budget the same (b(0))
  MatrixType m_work;        // full Σ mirrored from a caller's lower triangle, or the gathered one
  bool m_gathered = false;  // Σ of the active assets gathered into m_work (some excluded)
  bool m_lower_only = false;  // the active covariance's strict upper triangle is not valid
  MatrixType m_hessian;       // Newton's Hessian, factorised in place
  // Anderson acceleration: the last kDepth iterations' map values and residuals, and their
  // differences.
  static constexpr Index kDepth = 5;
  static constexpr Index kRing = kDepth - 1;
  static_assert(kRing == 4, "the mixing kernels take four history columns");
  VectorType m_before;
  VectorType m_last_x;  // the last iteration's map value G(x) (a sweep's: its x), Σ of it, and f
  VectorType m_last_y;
  VectorType m_last_f;
  // The differences of the last kDepth − 1 iterations' G(x), Σ G(x) (sweeps only) and f (a ring:
  // the newest replaces the oldest column), ΔFᵀΔF over it, and the mixing coefficients.
  using Gram = Eigen::Matrix<Scalar, kRing, kRing>;
  Gram m_gram = Gram::Zero();
  std::array<Scalar, kRing> m_gamma{};
  VectorType m_best_x;  // the fixed-point phase's best iterate and its Σx
  VectorType m_best_y;
  Index m_fixed_point_pause = 0;  // calls left that skip the fixed-point phase after it stalled
  Index m_fixed_point_backoff = kShortestPause;  // the pause after the next stall
  Index m_fixed_point_iterations = 0;
  bool m_fixed_point_attempted = false;
  bool m_combined = false;  // the last call's phase ended by `combine_iterates`
  MatrixType m_delta_x;
  MatrixType m_delta_y;
  MatrixType m_delta_f;
  Index m_history_count = 0;
  VectorType m_previous;  // the last solve's x (all assets; 0 where excluded)
  Eigen::Matrix<Index, Eigen::Dynamic, 1> m_previous_active;  // its active assets (first count)
  Index m_previous_count = 0;
  bool m_has_previous = false;
  Scalar m_previous_trace = 0;  // tr Σ of the last solve's active assets
  // Carrying Σx across calls (see `carry_product`): the last solve's Σx when every asset was
  // active, the covariance id it was solved on (0: none), the number of calls carried in a row,
  // and the first of the rows checked next.
  VectorType m_previous_y;
  std::uint64_t m_previous_id = 0;
  Index m_carried = 0;
  Index m_check_row = 0;
  Scalar m_variance = 0;  // wᵀΣw of the last weights written, when m_has_variance
  bool m_has_variance = false;
};

static_assert(WeightingPolicy<RiskParity<double>>);
static_assert(WeightingPolicy<RiskParity<float>>);

}  // namespace dynweight
