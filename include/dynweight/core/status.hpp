#pragma once

/// \file
/// The outcome of a numerical computation, returned (never thrown) with its diagnostics.

#include <string_view>

#include "dynweight/core/types.hpp"

namespace dynweight {

/// What a computation achieved. Contract violations are exceptions (`dynweight::Error`); these are
/// the numerical outcomes of a call whose arguments were valid.
enum class StatusCode {
  success,          ///< The result is valid (an iterative solver met its tolerance).
  max_iterations,   ///< An iterative solver stopped at its cap; the result is its best iterate.
  numerical_issue,  ///< The data do not allow a reliable result (e.g. a singular matrix).
  not_ready,        ///< Not enough observations yet (a window still filling).
  constrained,      ///< The result honours every constraint, but one kept it from the target.
};

/// Human-readable name of a status code.
constexpr std::string_view to_string(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::success:
      return "success";
    case StatusCode::max_iterations:
      return "max_iterations";
    case StatusCode::numerical_issue:
      return "numerical_issue";
    case StatusCode::not_ready:
      return "not_ready";
    case StatusCode::constrained:
      return "constrained";
  }
  return "unknown";
}

/// A status code with diagnostics. Cheap to copy and never allocates: `detail` points to a string
/// literal.
struct Status {
  StatusCode code = StatusCode::success;
  Index iterations = 0;     ///< Iterations (or sweeps) an iterative method used; 0 for direct ones.
  double residual = 0.0;    ///< Final residual in the method's own documented norm; 0 if none.
  const char* detail = "";  ///< Static text saying why, when `code` is not `success`.

  [[nodiscard]] constexpr bool ok() const noexcept { return code == StatusCode::success; }
  constexpr explicit operator bool() const noexcept { return ok(); }

  static constexpr Status success_after(Index iterations, double residual) noexcept {
    return {StatusCode::success, iterations, residual, ""};
  }
  static constexpr Status not_ready(const char* why) noexcept {
    return {StatusCode::not_ready, 0, 0.0, why};
  }
};

}  // namespace dynweight
