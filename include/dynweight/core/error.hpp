#pragma once

/// \file
/// The exception thrown on a contract violation (bad argument, wrong size, NaN price, ...).

#include <stdexcept>
#include <string>

namespace dynweight {

/// Thrown when a caller breaks a contract. The message names the function, the argument, the
/// asset (index, and name when known), the bar and the offending value. Whatever throws it leaves
/// the object it was called on exactly as it was (strong guarantee).
class Error : public std::invalid_argument {
 public:
  explicit Error(const std::string& message) : std::invalid_argument(message) {}
  explicit Error(const char* message) : std::invalid_argument(message) {}
};

}  // namespace dynweight
