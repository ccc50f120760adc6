#pragma once

/// \file
/// The O(N) work of one risk-parity fixed-point iteration before its product Σx, in one pass.

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
/// map), f = g − x; when `differences`,
/// ΔG = g − last_g into `delta_g` and ΔF = f − last_f into `delta_f`, and the sums of ΔF and of f
/// against the four `columns` (each m long; `delta_f` may be among them, read after it is
/// written); then last_g ← g, last_f ← f. With best_x and best_y not null, also best_x ← x and
/// best_y ← y (scaled).
/// Replaces about a dozen Eigen vector passes (their loads, stores and loop overhead dominated the
/// iteration's O(N) work: ~20 cycles an entry at N = 100 and 500).
template <bool differences, class Scalar>
FixedPointSums<Scalar> fixed_point_record(Index m, const Scalar* b, const Scalar* y,
                                          const Scalar* x, Scalar* last_g, Scalar* last_f,
                                          Scalar* delta_g, Scalar* delta_f,
                                          const std::array<const Scalar*, 4>& columns,
                                          Scalar* best_x, Scalar* best_y, Scalar scale) {
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
      const P c0 = ploadu<P>(columns[0] + i);
      const P c1 = ploadu<P>(columns[1] + i);
      const P c2 = ploadu<P>(columns[2] + i);
      const P c3 = ploadu<P>(columns[3] + i);
      gram0 = pmadd(df, c0, gram0);
      gram1 = pmadd(df, c1, gram1);
      gram2 = pmadd(df, c2, gram2);
      gram3 = pmadd(df, c3, gram3);
      rhs0 = pmadd(f, c0, rhs0);
      rhs1 = pmadd(f, c1, rhs1);
      rhs2 = pmadd(f, c2, rhs2);
      rhs3 = pmadd(f, c3, rhs3);
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
      for (std::size_t j = 0; j < 4; ++j) {
        out.gram[j] += df * columns[j][i];
        out.rhs[j] += f * columns[j][i];
      }
    }
    last_g[i] = g;
    last_f[i] = f;
  }
  return out;
}

/// out = base − Σ_j gamma[j] columns[j] over m entries, in one pass (Anderson's mixing over its
/// four history columns; an unused column takes gamma 0 and any finite column). Returns min out.
template <class Scalar>
Scalar mix_four_columns(Index m, Scalar* out, const Scalar* base,
                        const std::array<const Scalar*, 4>& columns,
                        const std::array<Scalar, 4>& gamma) {
  using P = Packet<Scalar>;
  using namespace Eigen::internal;
  constexpr Index size = packet_traits<Scalar>::size;
  const P g0 = pset1<P>(gamma[0]);
  const P g1 = pset1<P>(gamma[1]);
  const P g2 = pset1<P>(gamma[2]);
  const P g3 = pset1<P>(gamma[3]);
  P low = pset1<P>(std::numeric_limits<Scalar>::infinity());
  Index i = 0;
  for (; i + size <= m; i += size) {
    const P mixed =
        padd(padd(pmul(g0, ploadu<P>(columns[0] + i)), pmul(g1, ploadu<P>(columns[1] + i))),
             padd(pmul(g2, ploadu<P>(columns[2] + i)), pmul(g3, ploadu<P>(columns[3] + i))));
    const P value = psub(ploadu<P>(base + i), mixed);
    low = pmin(low, value);
    pstoreu(out + i, value);
  }
  Scalar lowest = predux_min(low);
  for (; i < m; ++i) {
    out[i] = base[i] - ((gamma[0] * columns[0][i] + gamma[1] * columns[1][i]) +
                        (gamma[2] * columns[2][i] + gamma[3] * columns[3][i]));
    lowest = std::min(lowest, out[i]);
  }
  return lowest;
}

}  // namespace dynweight::detail::kernel
