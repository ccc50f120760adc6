#pragma once

/// \file
/// A portable random source for `dynweight sample`: the same seed gives the same numbers with any
/// compiler and standard library (std::*_distribution are not specified bit for bit).

#include <cmath>
#include <cstdint>

namespace dynweight::cli {

/// SplitMix64 (Steele, Lea & Flood 2014), used to expand a 64-bit seed into a generator state.
constexpr std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// xoshiro256** (Blackman & Vigna 2018) seeded by SplitMix64, with the transforms the sample
/// market needs, all written out here: uniforms from the top 53 bits, normals by Marsaglia's polar
/// method (uses only `std::log` and `std::sqrt`), unit-variance Student-t from normals.
class Random {
 public:
  explicit Random(std::uint64_t seed) {
    for (auto& word : m_state)
      word = splitmix64(seed);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(m_state[1] * 5, 7) * 9;
    const std::uint64_t t = m_state[1] << 17;
    m_state[2] ^= m_state[0];
    m_state[3] ^= m_state[1];
    m_state[1] ^= m_state[2];
    m_state[0] ^= m_state[3];
    m_state[2] ^= t;
    m_state[3] = rotl(m_state[3], 45);
    return result;
  }

  /// Uniform on [0, 1), a multiple of 2⁻⁵³.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// Uniform on [low, high).
  double uniform(double low, double high) { return low + (high - low) * uniform(); }

  /// Log-uniform on [low, high): exp of a uniform between the logs.
  double log_uniform(double low, double high) {
    return std::exp(uniform(std::log(low), std::log(high)));
  }

  /// Standard normal, Marsaglia's polar method (both values of a pair are used).
  double normal() {
    if (m_has_spare) {
      m_has_spare = false;
      return m_spare;
    }
    double u = 0.0;
    double v = 0.0;
    double s = 0.0;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double factor = std::sqrt(-2.0 * std::log(s) / s);
    m_spare = v * factor;
    m_has_spare = true;
    return u * factor;
  }

  /// Student-t with `dof` (> 2, an integer) degrees of freedom scaled to unit variance:
  /// z / √(χ²/ν) · √((ν − 2)/ν), χ² the sum of ν squared normals.
  double student_t(int dof) {
    const double z = normal();
    double chi2 = 0.0;
    for (int k = 0; k < dof; ++k) {
      const double x = normal();
      chi2 += x * x;
    }
    const double nu = dof;
    return z / std::sqrt(chi2 / nu) * std::sqrt((nu - 2.0) / nu);
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  std::uint64_t m_state[4] = {};
  double m_spare = 0.0;
  bool m_has_spare = false;
};

}  // namespace dynweight::cli
