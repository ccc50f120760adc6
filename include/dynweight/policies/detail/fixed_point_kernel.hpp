#pragma once

/// \file
/// The O(N) work of a risk-parity fixed-point iteration, each part in one pass: the record of the
/// map's value and the mixing's inner products, the mixing itself, and after the product Σx the
/// risk contributions' total and extremes.

#include <array>
#include <cmath>
#include <limits>

#include "dynweight/core/types.hpp"
#include "dynweight/stats/detail/symmetric_update.hpp"

namespace dynweight::detail::kernel {

/// What `fixed_point_record` sums.
template <class Scalar>
struct FixedPointSums {
  std::array<Scalar, 4> gram{};                            // Σ_i ΔF_i · columns[j]_i
  std::array<Scalar, 4> rhs{};                             // Σ_i f_i · columns[j]_i
  Scalar g_sum = 0;                                        // Σ_i g_i
  Scalar g_min = std::numeric_limits<Scalar>::infinity();  // min_i g_i

  /// Whether every g_i is finite and > 0 (a NaN or an infinity makes the sum non-finite).
  [[nodiscard]] bool g_positive() const { return std::isfinite(g_sum) && g_min > 0; }
};

/// One pass over m entries, with x and y taken as scale·x and scale·y (the caller's iterate and
/// its Σx, whose scaling to the optimal multiple is deferred to here): g = b ⊘ y (the fixed-point
/// map), f = g − x; when `used` > 0,
/// ΔG = g − last_g into `delta_g` and ΔF = f − last_f into `delta_f`, and the sums of ΔF and of f
/// against the first `used` (≤ 4) of the `columns` (each m long; `delta_f` may be among them, read
/// after it is written; the other sums are 0); then last_g ← g, last_f ← f. With best_x and best_y
/// not null, also best_x ← x and best_y ← y (scaled).
/// Replaces about a dozen Eigen vector passes (their loads, stores and loop overhead dominated the
/// iteration's O(N) work: ~20 cycles an entry at N = 100 and 500). Taking only the columns in use
/// spares the first iterations of a solve, whose history is short, half of the multiply-adds.
template <int used, class Scalar>
FixedPointSums<Scalar> fixed_point_record(Index m, const Scalar* b, const Scalar* y,
                                          const Scalar* x, Scalar* last_g, Scalar* last_f,
                                          Scalar* delta_g, Scalar* delta_f,
                                          const std::array<const Scalar*, 4>& columns,
                                          Scalar* best_x, Scalar* best_y, Scalar scale) {
  static_assert(used >= 0 && used <= 4, "at most four history columns");
  constexpr bool differences = used > 0;
  using P = Packet<Scalar>;
  using namespace Eigen::internal;
  constexpr Index size = packet_traits<Scalar>::size;
  P gram0 = pset1<P>(0), gram1 = gram0, gram2 = gram0, gram3 = gram0;
  P rhs0 = gram0, rhs1 = gram0, rhs2 = gram0, rhs3 = gram0;
  P sum = gram0;
  P low = pset1<P>(std::numeric_limits<Scalar>::infinity());
  const P t = pset1<P>(scale);
  const bool best = best_x != nullptr && best_y != nullptr;
  Index i = 0;
  for (; i + size <= m; i += size) {
    const P yi = pmul(t, ploadu<P>(y + i));
    const P xi = pmul(t, ploadu<P>(x + i));
    const P g = pdiv(ploadu<P>(b + i), yi);
    const P f = psub(g, xi);
    if (best) {
      pstoreu(best_x + i, xi);
      pstoreu(best_y + i, yi);
    }
    sum = padd(sum, g);
    low = pmin(low, g);
    if constexpr (differences) {
      const P df = psub(f, ploadu<P>(last_f + i));
      pstoreu(delta_g + i, psub(g, ploadu<P>(last_g + i)));
      pstoreu(delta_f + i, df);
      const auto accumulate = [&](const Scalar* column, P& gram, P& rhs) {
        const P c = ploadu<P>(column + i);
        gram = pmadd(df, c, gram);
        rhs = pmadd(f, c, rhs);
      };
      accumulate(columns[0], gram0, rhs0);
      if constexpr (used > 1)
        accumulate(columns[1], gram1, rhs1);
      if constexpr (used > 2)
        accumulate(columns[2], gram2, rhs2);
      if constexpr (used > 3)
        accumulate(columns[3], gram3, rhs3);
    }
    pstoreu(last_g + i, g);
    pstoreu(last_f + i, f);
  }
  FixedPointSums<Scalar> out;
  out.gram = {predux(gram0), predux(gram1), predux(gram2), predux(gram3)};
  out.rhs = {predux(rhs0), predux(rhs1), predux(rhs2), predux(rhs3)};
  out.g_sum = predux(sum);
  out.g_min = predux_min(low);
  for (; i < m; ++i) {
    const Scalar xi = scale * x[i];
    const Scalar yi = scale * y[i];
    const Scalar g = b[i] / yi;
    const Scalar f = g - xi;
    if (best) {
      best_x[i] = xi;
      best_y[i] = yi;
    }
    out.g_sum += g;
    out.g_min = std::min(out.g_min, g);
    if constexpr (differences) {
      const Scalar df = f - last_f[i];
      delta_g[i] = g - last_g[i];
      delta_f[i] = df;
      for (std::size_t j = 0; j < std::size_t(used); ++j) {
        out.gram[j] += df * columns[j][i];
        out.rhs[j] += f * columns[j][i];
      }
    }
    last_g[i] = g;
    last_f[i] = f;
  }
  return out;
}

/// out = base − Σ_{j < used} gamma[j] columns[j] over m entries, in one pass (Anderson's mixing
/// over the first `used` (1 to 4) of its history columns; the others are not read), summed as
/// (γ₀c₀ + γ₁c₁) + (γ₂c₂ + γ₃c₃) with the absent terms left out: the same value as the four-term
/// sum with those γ_j = 0. Returns min out.
template <int used, class Scalar>
Scalar mix_columns(Index m, Scalar* out, const Scalar* base,
                   const std::array<const Scalar*, 4>& columns,
                   const std::array<Scalar, 4>& gamma) {
  static_assert(used >= 1 && used <= 4, "one to four history columns");
  using P = Packet<Scalar>;
  using namespace Eigen::internal;
  constexpr Index size = packet_traits<Scalar>::size;
  const P g0 = pset1<P>(gamma[0]);
  const P g1 = pset1<P>(gamma[1]);
  const P g2 = pset1<P>(gamma[2]);
  const P g3 = pset1<P>(gamma[3]);
  const auto term = [&](const P& g, int j, Index i) { return pmul(g, ploadu<P>(columns[j] + i)); };
  P low = pset1<P>(std::numeric_limits<Scalar>::infinity());
  Index i = 0;
  for (; i + size <= m; i += size) {
    P mixed = term(g0, 0, i);
    if constexpr (used > 1)
      mixed = padd(mixed, term(g1, 1, i));
    if constexpr (used == 3)
      mixed = padd(mixed, term(g2, 2, i));
    if constexpr (used == 4)
      mixed = padd(mixed, padd(term(g2, 2, i), term(g3, 3, i)));
    const P value = psub(ploadu<P>(base + i), mixed);
    low = pmin(low, value);
    pstoreu(out + i, value);
  }
  Scalar lowest = predux_min(low);
  for (; i < m; ++i) {
    Scalar mixed = gamma[0] * columns[0][i];
    if constexpr (used > 1)
      mixed += gamma[1] * columns[1][i];
    if constexpr (used == 3)
      mixed += gamma[2] * columns[2][i];
    if constexpr (used == 4)
      mixed += gamma[2] * columns[2][i] + gamma[3] * columns[3][i];
    out[i] = base[i] - mixed;
    lowest = std::min(lowest, out[i]);
  }
  return lowest;
}

/// Σ_i x_i y_i with the largest and the smallest product x_i y_i (risk parity's ΣRC and extreme
/// risk contributions).
template <class Scalar>
struct ContributionSums {
  Scalar total = 0;
  Scalar largest = -std::numeric_limits<Scalar>::infinity();
  Scalar smallest = std::numeric_limits<Scalar>::infinity();
};

/// `ContributionSums` of x and y over m entries, in one pass. A NaN product makes the total NaN
/// (the extremes may then skip it).
template <class Scalar>
ContributionSums<Scalar> contribution_sums(Index m, const Scalar* x, const Scalar* y) {
  using P = Packet<Scalar>;
  using namespace Eigen::internal;
  constexpr Index size = packet_traits<Scalar>::size;
  P sum0 = pset1<P>(0), sum1 = sum0;  // two sums, so that consecutive adds do not wait
  P high = pset1<P>(-std::numeric_limits<Scalar>::infinity());
  P low = pset1<P>(std::numeric_limits<Scalar>::infinity());
  Index i = 0;
  for (; i + 2 * size <= m; i += 2 * size) {
    const P r0 = pmul(ploadu<P>(x + i), ploadu<P>(y + i));
    const P r1 = pmul(ploadu<P>(x + i + size), ploadu<P>(y + i + size));
    sum0 = padd(sum0, r0);
    sum1 = padd(sum1, r1);
    high = pmax(high, pmax(r0, r1));
    low = pmin(low, pmin(r0, r1));
  }
  ContributionSums<Scalar> out;
  out.total = predux(padd(sum0, sum1));
  out.largest = predux_max(high);
  out.smallest = predux_min(low);
  for (; i < m; ++i) {
    const Scalar r = x[i] * y[i];
    out.total += r;
    out.largest = std::max(out.largest, r);
    out.smallest = std::min(out.smallest, r);
  }
  return out;
}

}  // namespace dynweight::detail::kernel
