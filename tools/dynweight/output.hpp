#pragma once

/// \file
/// Output of the `dynweight` tool: held back until a command succeeds (nothing reaches stdout on
/// error), files replaced atomically, numbers with 17 significant digits.

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace dynweight::cli {

class FileSetReplacement;

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
  friend class FileSetReplacement;

  void spill();
  void copy_to(std::FILE* out, const std::string& name);

  fmt::memory_buffer m_buffer;
  std::size_t m_memory_limit;
  std::FILE* m_spill = nullptr;
};

/// Replaces `path` by `content` atomically: writes a temporary file in the same directory, flushes
/// it to disk and renames it over `path`, so a reader sees the old file or the new one, never a
/// part. Throws `std::runtime_error` naming the file on an I/O error (and removes the temporary).
void write_file_atomically(const std::filesystem::path& path, std::string_view content);

/// Replaces several files together, all or nothing as far as POSIX allows (there is no atomic
/// rename of several files):
/// - `add` writes each new content to a temporary file beside its target and flushes it to disk;
/// - `commit` moves every existing target aside (renamed to `NAME.old.XXXXXX` beside it), renames
///   every new file in, and only then deletes the old ones.
/// If any step fails, the steps done are undone (old files moved back, new ones and temporaries
/// removed) and `std::runtime_error` names the file that failed: "cannot replace 'DIR/x.csv': Is a
/// directory; no file in 'DIR' was changed". Only a crash during `commit` can leave a mixed set,
/// with the old files kept as `NAME.old.XXXXXX`. A target that is a directory is never touched.
/// Destroyed without `commit`, it removes its temporaries.
class FileSetReplacement {
 public:
  FileSetReplacement() = default;
  ~FileSetReplacement();
  FileSetReplacement(const FileSetReplacement&) = delete;
  FileSetReplacement& operator=(const FileSetReplacement&) = delete;

  /// Writes `content` to a temporary file beside `target` (throws `std::runtime_error` naming it).
  void add(const std::filesystem::path& target, std::string_view content);
  void add(const std::filesystem::path& target, DeferredOutput& content);
  /// Installs every file added, or none (see the class comment); throws `std::runtime_error`.
  void commit();

 private:
  struct Entry {
    std::filesystem::path target;
    std::filesystem::path temporary;  // the new content, until renamed in
    std::filesystem::path old;        // where the old file was moved aside (empty: none)
    bool moved_aside = false;
    bool installed = false;
  };

  template <class Write>
  void add_with(const std::filesystem::path& target, Write&& write);
  [[noreturn]] void fail(const Entry& entry, std::string_view reason);
  std::string roll_back();

  std::vector<Entry> m_entries;
  bool m_committed = false;
};

}  // namespace dynweight::cli
