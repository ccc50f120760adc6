#pragma once

/// \file
/// Shared vocabulary: the index type, scalar-templated Eigen aliases and the `Scalar` concept.

#include <Eigen/Core>
#include <concepts>

namespace dynweight {

/// Sizes and indices, as Eigen uses them (signed, `std::ptrdiff_t`).
using Index = Eigen::Index;

/// The floating-point types the library is instantiated for (`float`, `double`, `long double`).
template <class T>
concept FloatingScalar = std::floating_point<T>;

/// Column vector of `Scalar`.
template <FloatingScalar Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

/// Column-major dense matrix of `Scalar`.
template <FloatingScalar Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

/// Read-only vector argument: binds to a vector, a column block or a map without a copy.
template <FloatingScalar Scalar>
using ConstVectorRef = Eigen::Ref<const Vector<Scalar>>;

/// Writable vector argument supplied by the caller.
template <FloatingScalar Scalar>
using VectorRef = Eigen::Ref<Vector<Scalar>>;

/// Read-only matrix argument.
template <FloatingScalar Scalar>
using ConstMatrixRef = Eigen::Ref<const Matrix<Scalar>>;

/// Writable matrix argument supplied by the caller.
template <FloatingScalar Scalar>
using MatrixRef = Eigen::Ref<Matrix<Scalar>>;

/// Which part of a symmetric N×N matrix is stored (read, or written).
enum class SymmetricStorage {
  /// The full symmetric matrix.
  full,
  /// The lower triangle, diagonal included; the strict upper triangle is unspecified (left as it
  /// was when written). Read it through `selfadjointView<Eigen::Lower>()`, as the library's own
  /// covariances.
  lower,
};

}  // namespace dynweight
