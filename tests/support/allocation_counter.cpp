#include "allocation_counter.hpp"

#include <Eigen/Core>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

namespace {
thread_local bool t_counting = false;
thread_local std::size_t t_allocations = 0;

void* counted_new(std::size_t size) {
  if (t_counting)
    ++t_allocations;
  if (size == 0)
    size = 1;
  if (void* p = std::malloc(size))
    return p;
  throw std::bad_alloc();
}

void* counted_new_aligned(std::size_t size, std::align_val_t alignment) {
  if (t_counting)
    ++t_allocations;
  const auto align = static_cast<std::size_t>(alignment);
  const std::size_t rounded = (size + align - 1) / align * align;
  if (void* p = std::aligned_alloc(align, rounded == 0 ? align : rounded))
    return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t size) {
  return counted_new(size);
}
void* operator new[](std::size_t size) {
  return counted_new(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_new(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_new(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t size, std::align_val_t alignment) {
  return counted_new_aligned(size, alignment);
}
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return counted_new_aligned(size, alignment);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

namespace dynweight::test {

void eigen_assertion_failed(const char* condition, const char* file, int line) {
  throw std::logic_error(std::string("Eigen assertion failed: ") + condition + " at " + file + ":" +
                         std::to_string(line));
}

std::size_t counted_allocations() {
  return t_allocations;
}

NoAllocationScope::NoAllocationScope() : m_start(t_allocations), m_was_counting(t_counting) {
  t_counting = true;
  Eigen::internal::set_is_malloc_allowed(false);
}

NoAllocationScope::~NoAllocationScope() {
  Eigen::internal::set_is_malloc_allowed(true);
  t_counting = m_was_counting;
}

std::size_t NoAllocationScope::allocations() const {
  return t_allocations - m_start;
}

}  // namespace dynweight::test
