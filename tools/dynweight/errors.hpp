#pragma once

/// \file
/// The errors of the `dynweight` tool and the exit statuses they map to.

#include <stdexcept>
#include <string>
#include <string_view>

namespace dynweight::cli {

/// Exit statuses: 0 success, 2 bad input (a malformed file, a bad argument), 1 anything else.
inline constexpr int kExitSuccess = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;

/// Bad input from the user: a malformed or inconsistent CSV file, a missing file, a bad argument.
/// The message is complete ("prices.csv:14:3: 'abc' is not a number (...)"); `main` prefixes
/// "dynweight: " and exits with status 2.
class InputError : public std::runtime_error {
 public:
  explicit InputError(const std::string& message) : std::runtime_error(message) {}
};

/// "file:line:column: message" (line and column 1-based; a column of 0 is left out).
inline std::string located(std::string_view file, long line, long column,
                           std::string_view message) {
  std::string text(file);
  text.append(":").append(std::to_string(line));
  if (column > 0)
    text.append(":").append(std::to_string(column));
  text.append(": ").append(message);
  return text;
}

}  // namespace dynweight::cli
