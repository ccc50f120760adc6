#pragma once

// Proof of "no allocation on the hot path": inside a NoAllocationScope, Eigen's own
// EIGEN_RUNTIME_NO_MALLOC switch is off (an Eigen heap allocation throws, see eigen_assert.hpp)
// and a replaced global operator new counts every other heap allocation.

#include <cstddef>

namespace dynweight::test {

/// Number of global operator new calls made while counting was on (this thread).
std::size_t counted_allocations();

class NoAllocationScope {
 public:
  NoAllocationScope();
  ~NoAllocationScope();
  NoAllocationScope(const NoAllocationScope&) = delete;
  NoAllocationScope& operator=(const NoAllocationScope&) = delete;

  /// operator new calls since the scope opened.
  [[nodiscard]] std::size_t allocations() const;

 private:
  std::size_t m_start;
  bool m_was_counting;
};

}  // namespace dynweight::test
