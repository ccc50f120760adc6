#pragma once

// Helpers of the CLI tests: run the built `dynweight` program, write and read fixtures, compare
// CSV outputs numerically.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace dynweight::cli::test {

struct RunResult {
  int status = -1;  ///< exit status (-1 if the program did not exit normally)
  std::string out;  ///< stdout
  std::string err;  ///< stderr
};

/// Runs DYNWEIGHT_CLI_PATH with `arguments`; stdout and stderr are captured in files. With
/// `standard_input`, the program reads that text from a pipe on its stdin (`/dev/stdin` is then
/// not a regular file); the text must fit the pipe's buffer (64 KiB).
RunResult run_cli(const std::vector<std::string>& arguments,
                  const std::optional<std::string>& standard_input = std::nullopt);

/// Splits "a b c" on spaces (for the reference manifest), replacing "{data}" by the data dir.
std::vector<std::string> split_arguments(const std::string& text);

/// tests/cli/data/<relative>.
std::filesystem::path data_path(const std::string& relative);
/// A fresh (emptied) directory under the build tree, one per test.
std::filesystem::path work_dir(const std::string& name);

void write_text(const std::filesystem::path& path, const std::string& text);
std::string read_text(const std::filesystem::path& path);

/// The cells of a CSV text (no quoting: the outputs compared here have plain names).
std::vector<std::vector<std::string>> parse_rows(const std::string& text);

/// How `compare_tables` bounds the difference of two numbers a (actual) and b (expected).
enum class Bound {
  elementwise,  ///< |a − b| ≤ tol · |b| for each number
  per_date,  ///< |a − b| ≤ tol · max |b| over the rows of the same date (first column "date"),
             ///< or over the whole table when there is no date column
};

/// Compares two CSV texts: same header, same number of rows and cells, label cells equal,
/// numbers within the bound (NaN only where expected is NaN). Returns "" on success, else a
/// description of the first mismatch and the worst difference.
std::string compare_tables(const std::string& actual, const std::string& expected, double tolerance,
                           Bound bound);

}  // namespace dynweight::cli::test
