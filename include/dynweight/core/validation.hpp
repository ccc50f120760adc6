#pragma once

/// \file
/// Argument checks whose messages name the function, the argument, the asset (index, and name when
/// the caller gave names), the bar and the offending value. They build a message only on failure,
/// so they cost a comparison per entry and never allocate on the good path.

#include <charconv>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dynweight/core/error.hpp"
#include "dynweight/core/types.hpp"

namespace dynweight {

/// Asset names, in the order of the columns; may be empty when the caller has none.
using AssetNames = std::vector<std::string>;

/// Where a check is made, for the message: the function, the asset names (optional) and the bar
/// (the 0-based count of updates the object has accepted; -1 when the input is not a bar).
struct CheckContext {
  std::string_view where;
  std::span<const std::string> names = {};
  Index bar = -1;
};

namespace detail {

/// Shortest representation that reads back to the same value ("nan", "inf", "-inf" included).
inline std::string format_value(double value) {
  if (std::isnan(value))
    return "nan";
  if (std::isinf(value))
    return value > 0 ? "inf" : "-inf";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

/// Joins pieces into one string (appends, rather than chains of `operator+`, which g++ 12 at -O3
/// misreads as overlapping copies: a -Wrestrict false positive).
inline std::string concat(std::initializer_list<std::string_view> pieces) {
  std::string text;
  for (const auto piece : pieces)
    text.append(piece);
  return text;
}

/// "asset 3" or "asset 3 ('MSFT')".
inline std::string describe_asset(Index index, std::span<const std::string> names) {
  const std::string number = std::to_string(index);
  if (index >= 0 && static_cast<std::size_t>(index) < names.size())
    return concat({"asset ", number, " ('", names[static_cast<std::size_t>(index)], "')"});
  return concat({"asset ", number});
}

inline std::string at_bar(const CheckContext& context) {
  return context.bar >= 0 ? concat({" at bar ", std::to_string(context.bar)}) : std::string();
}

/// Throws the `dynweight::Error` "dynweight: <where>: <message>". Out of line and cold: failure
/// paths never weigh on the inlined checks of a hot loop.
[[noreturn, gnu::noinline, gnu::cold]] inline void fail(const CheckContext& context,
                                                        std::string_view message) {
  throw Error(concat({"dynweight: ", context.where, ": ", message}));
}

/// The message for entry (row, col) of `argument` that broke `requirement`.
[[noreturn, gnu::noinline, gnu::cold]] inline void fail_entry(const CheckContext& context,
                                                              std::string_view argument, Index row,
                                                              Index col, bool is_vector,
                                                              double value,
                                                              std::string_view requirement) {
  const std::string r = std::to_string(row);
  const std::string position =
      is_vector ? concat({"[", r, "] (", describe_asset(row, context.names), ")"})
                : concat({"(", r, ", ", std::to_string(col), ") (row ", r, ", ",
                          describe_asset(col, context.names), ")"});
  fail(context, concat({argument, position, at_bar(context), " is ", format_value(value),
                        "; must be ", requirement}));
}

/// "<who> needs the <what> estimate, which was not given".
[[noreturn, gnu::noinline, gnu::cold]] inline void fail_missing(std::string_view who,
                                                                std::string_view what) {
  throw Error(concat({"dynweight: ", who, " needs the ", what, " estimate, which was not given"}));
}

/// "<what> is not symmetric: (i, j) = a but (j, i) = b".
[[noreturn, gnu::noinline, gnu::cold]] inline void fail_asymmetric(const CheckContext& context,
                                                                   std::string_view what, Index i,
                                                                   Index j, double lower,
                                                                   double upper) {
  const std::string row = std::to_string(i);
  const std::string col = std::to_string(j);
  fail(context,
       concat({what, " is not symmetric: (", row, ", ", col, ") = ", format_value(lower), " but (",
               col, ", ", row, ") = ", format_value(upper), " (", describe_asset(i, context.names),
               ", ", describe_asset(j, context.names), ")"}));
}

/// True when every entry is finite: x·0 is 0 for a finite x and NaN otherwise, and a sum is a
/// vectorised reduction (Eigen's allFinite() is a scalar loop).
template <class Derived>
bool all_finite(const Eigen::DenseBase<Derived>& values) {
  using Scalar = typename Derived::Scalar;
  return values.size() == 0 || (values.derived().array() * Scalar(0)).sum() == Scalar(0);
}

template <class Derived, class Predicate>
void check_entries(const CheckContext& context, std::string_view argument,
                   const Eigen::DenseBase<Derived>& values, Predicate&& acceptable,
                   std::string_view requirement) {
  for (Index col = 0; col < values.cols(); ++col) {
    for (Index row = 0; row < values.rows(); ++row) {
      const auto value = values.coeff(row, col);
      if (!acceptable(value))
        fail_entry(context, argument, row, col, values.cols() == 1, static_cast<double>(value),
                   requirement);
    }
  }
}

}  // namespace detail

/// Throws unless `actual == expected`; `argument` is named in the message.
inline void check_size(const CheckContext& context, std::string_view argument, Index actual,
                       Index expected) {
  if (actual == expected)
    return;
  detail::fail(context,
               detail::concat({argument, " has ", std::to_string(actual), " entries",
                               detail::at_bar(context), ", expected ", std::to_string(expected)}));
}

/// Throws unless `condition`; for scalar parameters: "window = 1; must be >= 2".
inline void check_parameter(bool condition, const CheckContext& context, std::string_view argument,
                            double value, std::string_view requirement) {
  if (condition)
    return;
  detail::fail(context, detail::concat({argument, " = ", detail::format_value(value), "; must be ",
                                        requirement}));
}

/// Throws unless every entry is finite. A vector's entry i is asset i; a matrix is observations in
/// rows, assets in columns.
template <class Derived>
void check_finite(const CheckContext& context, std::string_view argument,
                  const Eigen::DenseBase<Derived>& values) {
  if (detail::all_finite(values))
    return;  // vectorised fast path; the loop below finds and names the culprit
  detail::check_entries(
      context, argument, values, [](auto v) { return std::isfinite(v); }, "finite");
}

/// Throws unless every entry is finite ("must be finite", as `check_finite`) and has |x| <=
/// `limit`: the magnitude an engine's arithmetic can hold without overflow, which `why` explains
/// ("must be within ±L (why)"). One call does both checks.
template <class Derived>
void check_magnitude(const CheckContext& context, std::string_view argument,
                     const Eigen::DenseBase<Derived>& values, double limit, std::string_view why) {
  using Scalar = typename Derived::Scalar;
  if (detail::all_finite(values) &&
      (values.size() == 0 || values.derived().cwiseAbs().maxCoeff() <= Scalar(limit)))
    return;  // vectorised fast path; the loops below find and name the culprit
  detail::check_entries(
      context, argument, values, [](auto v) { return std::isfinite(v); }, "finite");
  const std::string requirement =
      detail::concat({"within ±", detail::format_value(limit), " (", why, ")"});
  detail::check_entries(
      context, argument, values, [limit](auto v) { return std::abs(double(v)) <= limit; },
      requirement);
}

/// Throws unless every entry is finite and > 0 (prices).
template <class Derived>
void check_positive(const CheckContext& context, std::string_view argument,
                    const Eigen::DenseBase<Derived>& values) {
  if (detail::all_finite(values) && (values.size() == 0 || values.minCoeff() > 0))
    return;  // vectorised fast path; the loop below finds and names the culprit
  detail::check_entries(
      context, argument, values, [](auto v) { return std::isfinite(v) && v > 0; },
      "finite and > 0");
}

/// Throws unless every entry is finite and at least the smallest normal number (prices whose
/// reciprocal must be finite: 1 / 5e-324 is infinite).
template <class Derived>
void check_positive_normal(const CheckContext& context, std::string_view argument,
                           const Eigen::DenseBase<Derived>& values) {
  using Scalar = typename Derived::Scalar;
  constexpr Scalar smallest = std::numeric_limits<Scalar>::min();
  if (detail::all_finite(values) && (values.size() == 0 || values.minCoeff() >= smallest))
    return;  // vectorised fast path; the loop below finds and names the culprit
  detail::check_entries(
      context, argument, values, [](auto v) { return std::isfinite(v) && v >= smallest; },
      "finite and >= the smallest normal number (its reciprocal must be finite)");
}

/// Throws unless every entry is finite and >= 0 (volumes).
template <class Derived>
void check_nonnegative(const CheckContext& context, std::string_view argument,
                       const Eigen::DenseBase<Derived>& values) {
  if (detail::all_finite(values) && (values.size() == 0 || values.minCoeff() >= 0))
    return;  // vectorised fast path; the loop below finds and names the culprit
  detail::check_entries(
      context, argument, values, [](auto v) { return std::isfinite(v) && v >= 0; },
      "finite and >= 0");
}

/// Throws unless `names` is empty or has one entry per asset.
inline void check_names(const CheckContext& context, std::span<const std::string> names,
                        Index assets) {
  if (names.empty())
    return;
  check_size(context, "names", static_cast<Index>(names.size()), assets);
}

}  // namespace dynweight
