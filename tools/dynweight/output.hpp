#pragma once

/// \file
/// Output of the `dynweight` tool: held back until a command succeeds (nothing reaches stdout on
/// error), files replaced atomically, numbers with 17 significant digits.

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace dynweight::cli {

/// Appends `value` with 17 significant digits, as `{:.17g}` / `%.17g` (reads back to the same
/// double; NaN is written "nan", infinities "inf" and "-inf").
void append_number(fmt::memory_buffer& out, double value);

/// Appends `text` as one CSV cell: quoted (quotes doubled) when it holds ',', '"', CR or LF.
void append_cell(fmt::memory_buffer& out, std::string_view text);

/// Text that a command writes while it runs and that reaches its destination only on `commit`:
/// kept in memory up to `memory_limit` bytes, then spilled to an anonymous temporary file (deleted
/// by the system however the process ends), so that an error half-way leaves stdout empty.
/// Commands append to `buffer()` and call `flush()` now and then.
class DeferredOutput {
 public:
  explicit DeferredOutput(std::size_t memory_limit = std::size_t{64} << 20);
  ~DeferredOutput();
  DeferredOutput(const DeferredOutput&) = delete;
  DeferredOutput& operator=(const DeferredOutput&) = delete;

  [[nodiscard]] fmt::memory_buffer& buffer() { return m_buffer; }
  /// Spills the buffer to the temporary file once it exceeds the memory limit.
  void flush();
  /// Writes everything to `out` (e.g. stdout) and flushes it; throws `std::runtime_error` on an
  /// I/O error.
  void commit(std::FILE* out);
  /// Writes everything to `path` atomically (see `write_file_atomically`).
  void commit(const std::filesystem::path& path);

 private:
  void spill();
  void copy_to(std::FILE* out);

  fmt::memory_buffer m_buffer;
  std::size_t m_memory_limit;
  std::FILE* m_spill = nullptr;
};

/// Replaces `path` by `content` atomically: writes a temporary file in the same directory, flushes
/// it to disk and renames it over `path`, so a reader sees the old file or the new one, never a
/// part. Throws `std::runtime_error` naming the file on an I/O error (and removes the temporary).
void write_file_atomically(const std::filesystem::path& path, std::string_view content);

}  // namespace dynweight::cli
