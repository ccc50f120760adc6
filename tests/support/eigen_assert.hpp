#pragma once

// Force-included before every test source (see tests/CMakeLists.txt): Eigen's internal assertions,
// including the EIGEN_RUNTIME_NO_MALLOC check, throw instead of aborting, so a violation is a test
// failure with a message rather than a crash, and they stay on in optimised builds.

namespace dynweight::test {
[[noreturn]] void eigen_assertion_failed(const char* condition, const char* file, int line);
}  // namespace dynweight::test

#define eigen_assert(condition)                                                  \
  do {                                                                           \
    if (!(condition))                                                            \
      ::dynweight::test::eigen_assertion_failed(#condition, __FILE__, __LINE__); \
  } while (false)
