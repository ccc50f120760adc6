#pragma once

/// \file
/// A streaming reader of CSV records (RFC 4180 as pandas `to_csv` writes it) that knows where each
/// record starts, for error messages.

#include <charconv>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace dynweight::cli {

/// Reads a CSV file one record at a time, through a fixed 1 MiB buffer (never the whole file).
///
/// Accepted: `,` separators; LF, CRLF or CR line ends; a UTF-8 byte-order mark at the start;
/// quoted cells (`"a,b"`, `"say ""hi"""`, line breaks inside quotes); blank lines, also lines of
/// only spaces and tabs, which are skipped (as pandas `read_csv` does). Cells are returned as
/// written, quotes removed, nothing trimmed. An unterminated quote, or text after a closing quote,
/// throws `InputError` naming file, line and column (the 1-based cell index).
class CsvReader {
 public:
  /// Opens `path` (throws `InputError` if it cannot be read); `path` is also the name used in
  /// messages.
  explicit CsvReader(std::string path);
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  /// Reads the next non-blank record into `cells` (reusing their capacity); false at the end.
  bool next(std::vector<std::string>& cells);

  /// Line (1-based) on which the record last returned by `next()` starts.
  [[nodiscard]] long line() const { return m_record_line; }
  /// The line after the last one read: where a missing record would have been.
  [[nodiscard]] long end_line() const { return m_line; }
  [[nodiscard]] const std::string& path() const { return m_path; }

 private:
  int get();
  int peek();
  bool refill();
  void skip_line_end(int c);

  std::string m_path;
  std::FILE* m_file = nullptr;
  std::unique_ptr<char[]> m_buffer;
  std::size_t m_size = 0;
  std::size_t m_pos = 0;
  bool m_eof = false;
  long m_line = 1;
  long m_record_line = 0;
};

/// `text` in single quotes, for messages: 'abc'; control characters (a NUL, which would end the
/// message, a tab, a line break) are written as \xHH.
inline std::string quoted(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out.append("\\x").push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

/// A cell's number: `text` (trimmed, non-empty) whole as a double, with one optional sign, '+'
/// (which `std::from_chars` does not take) or '-'. Returns `std::errc()`,
/// `std::errc::result_out_of_range`, or `std::errc::invalid_argument` when `text` is not wholly a
/// number ("1.5x", "+-5").
inline std::errc parse_cell_double(std::string_view text, double& value) {
  const char* first = text.data();
  const char* last = first + text.size();
  if (text.size() > 1 && *first == '+') {
    ++first;
    if (*first == '-')
      return std::errc::invalid_argument;
  }
  const auto [end, error] = std::from_chars(first, last, value);
  if (error != std::errc())
    return error;
  return end == last ? std::errc() : std::errc::invalid_argument;
}

/// `text` without leading and trailing spaces and tabs.
inline std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

}  // namespace dynweight::cli
