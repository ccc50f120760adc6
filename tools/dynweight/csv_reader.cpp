#include "dynweight/csv_reader.hpp"

#include <cerrno>
#include <cstring>
#include <utility>

#include "dynweight/errors.hpp"

namespace dynweight::cli {

namespace {
constexpr std::size_t kBufferSize = std::size_t{1} << 20;
constexpr int kEnd = -1;
}  // namespace

CsvReader::CsvReader(std::string path)
    : m_path(std::move(path)), m_buffer(std::make_unique<char[]>(kBufferSize)) {
  m_file = std::fopen(m_path.c_str(), "rb");
  if (m_file == nullptr) {
    std::string message = "cannot open '";
    message.append(m_path).append("': ").append(std::strerror(errno));
    throw InputError(message);
  }
  // A UTF-8 byte-order mark (Excel writes one) is not part of the first cell.
  if (refill() && m_size >= 3 && std::memcmp(m_buffer.get(), "\xEF\xBB\xBF", 3) == 0)
    m_pos = 3;
}

CsvReader::~CsvReader() {
  if (m_file != nullptr)
    std::fclose(m_file);
}

bool CsvReader::refill() {
  if (m_eof)
    return false;
  m_size = std::fread(m_buffer.get(), 1, kBufferSize, m_file);
  m_pos = 0;
  if (m_size == 0) {
    if (std::ferror(m_file) != 0) {
      // fopen opens a directory; the read fails (EISDIR), and the reason is what tells the user.
      std::string message = "error reading '";
      message.append(m_path).append("': ").append(std::strerror(errno));
      throw InputError(message);
    }
    m_eof = true;
    return false;
  }
  return true;
}

int CsvReader::get() {
  if (m_pos == m_size && !refill())
    return kEnd;
  return static_cast<unsigned char>(m_buffer[m_pos++]);
}

int CsvReader::peek() {
  if (m_pos == m_size && !refill())
    return kEnd;
  return static_cast<unsigned char>(m_buffer[m_pos]);
}

// After a '\r' or '\n': consumes the '\n' of a CRLF and counts the line.
void CsvReader::skip_line_end(int c) {
  if (c == '\r' && peek() == '\n')
    get();
  ++m_line;
}

bool CsvReader::next(std::vector<std::string>& cells) {
  // Blank lines, also those of only spaces and tabs (as pandas skips them), are skipped; the
  // spaces and tabs that start a record are its first cell's.
  std::string indent;
  int c = get();
  while (true) {
    indent.clear();
    while (c == ' ' || c == '\t') {
      indent.push_back(static_cast<char>(c));
      c = get();
    }
    if (c != '\n' && c != '\r')
      break;
    skip_line_end(c);
    c = get();
  }
  if (c == kEnd)
    return false;

  m_record_line = m_line;
  std::size_t count = 0;
  while (true) {
    if (count == cells.size())
      cells.emplace_back();
    std::string& cell = cells[count++];
    cell.clear();
    if (count == 1)
      cell.append(indent);
    if (c == '"' && cell.empty()) {
      const long quote_line = m_line;
      while (true) {
        c = get();
        if (c == kEnd) {
          throw InputError(
              located(m_path, quote_line, static_cast<long>(count), "unterminated quoted cell"));
        }
        if (c == '"') {
          if (peek() != '"')
            break;
          get();  // a doubled quote stands for one
        } else if (c == '\n' || (c == '\r' && peek() != '\n')) {
          ++m_line;  // a line break inside quotes (the '\n' of a CRLF counts it)
        }
        cell.push_back(static_cast<char>(c));
      }
      c = get();
      while (c == ' ' || c == '\t')
        c = get();
      if (c != ',' && c != '\n' && c != '\r' && c != kEnd) {
        throw InputError(located(m_path, m_line, static_cast<long>(count),
                                 "unexpected text after a closing quote"));
      }
    } else {
      while (c != ',' && c != '\n' && c != '\r' && c != kEnd) {
        cell.push_back(static_cast<char>(c));
        c = get();
      }
    }
    if (c == ',') {
      c = get();
      continue;
    }
    if (c != kEnd)
      skip_line_end(c);
    break;
  }
  cells.resize(count);
  return true;
}

}  // namespace dynweight::cli
