#include "dynweight/output.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace dynweight::cli {

namespace {

[[noreturn]] void fail_io(std::string_view action, const std::string& name) {
  std::string message = "cannot ";
  message.append(action).append(" '").append(name).append("': ").append(std::strerror(errno));
  throw std::runtime_error(message);
}

void write_all(std::FILE* out, const char* data, std::size_t size, const std::string& name) {
  if (size > 0 && std::fwrite(data, 1, size, out) != size)
    fail_io("write", name);
}

// A temporary file next to `target`, renamed over it by commit(), removed otherwise.
class AtomicFile {
 public:
  explicit AtomicFile(const std::filesystem::path& target) : m_target(target) {
    std::string pattern = target.string();
    pattern.append(".tmp.XXXXXX");
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    const int fd = ::mkstemp(name.data());
    if (fd < 0)
      fail_io("create a temporary file for", target.string());
    m_temp = name.data();
    m_file = ::fdopen(fd, "wb");
    if (m_file == nullptr) {
      ::close(fd);
      std::filesystem::remove(m_temp);
      fail_io("open", m_temp.string());
    }
  }
  ~AtomicFile() {
    if (m_file != nullptr)
      std::fclose(m_file);
    if (!m_committed) {
      std::error_code ignored;
      std::filesystem::remove(m_temp, ignored);
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  [[nodiscard]] std::FILE* file() const { return m_file; }
  [[nodiscard]] std::string name() const { return m_target.string(); }

  void commit() {
    std::FILE* file = m_file;
    m_file = nullptr;
    if (std::fflush(file) != 0 || ::fsync(::fileno(file)) != 0) {
      std::fclose(file);
      fail_io("write", name());
    }
    if (std::fclose(file) != 0)
      fail_io("write", name());
    // mkstemp creates the file 0600; give it the permissions of a file the user creates.
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::chmod(m_temp.c_str(), 0666 & ~mask);
    if (std::rename(m_temp.c_str(), m_target.c_str()) != 0)
      fail_io("replace", name());
    m_committed = true;
  }

 private:
  std::filesystem::path m_target;
  std::filesystem::path m_temp;
  std::FILE* m_file = nullptr;
  bool m_committed = false;
};

}  // namespace

void append_number(fmt::memory_buffer& out, double value) {
  // std::to_chars(general, 17) is specified as printf's %.17g, the text fmt's {:.17g} writes too,
  // at half fmt 9's cost; "nan" whatever the sign bit, as pandas writes it.
  if (std::isnan(value)) {
    out.append(std::string_view("nan"));
    return;
  }
  char text[32];
  const auto result =
      std::to_chars(text, text + sizeof(text), value, std::chars_format::general, 17);
  out.append(text, result.ptr);
}

void append_cell(fmt::memory_buffer& out, std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(text);
    return;
  }
  out.push_back('"');
  for (const char c : text) {
    if (c == '"')
      out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

DeferredOutput::DeferredOutput(std::size_t memory_limit) : m_memory_limit(memory_limit) {}

DeferredOutput::~DeferredOutput() {
  if (m_spill != nullptr)
    std::fclose(m_spill);
}

void DeferredOutput::flush() {
  if (m_buffer.size() > m_memory_limit)
    spill();
}

void DeferredOutput::spill() {
  if (m_spill == nullptr) {
    m_spill = std::tmpfile();
    if (m_spill == nullptr)
      fail_io("create", "a temporary file for the output");
  }
  write_all(m_spill, m_buffer.data(), m_buffer.size(), "the temporary output file");
  m_buffer.clear();
}

void DeferredOutput::copy_to(std::FILE* out) {
  const std::string name = out == stdout ? std::string("standard output") : std::string("output");
  if (m_spill != nullptr) {
    if (std::fflush(m_spill) != 0 || std::fseek(m_spill, 0, SEEK_SET) != 0)
      fail_io("read", "the temporary output file");
    std::vector<char> chunk(std::size_t{1} << 20);
    std::size_t read = 0;
    while ((read = std::fread(chunk.data(), 1, chunk.size(), m_spill)) > 0)
      write_all(out, chunk.data(), read, name);
    if (std::ferror(m_spill) != 0)
      fail_io("read", "the temporary output file");
  }
  write_all(out, m_buffer.data(), m_buffer.size(), name);
  if (std::fflush(out) != 0)
    fail_io("write", name);
}

void DeferredOutput::commit(std::FILE* out) {
  copy_to(out);
}

void DeferredOutput::commit(const std::filesystem::path& path) {
  AtomicFile file(path);
  copy_to(file.file());
  file.commit();
}

void write_file_atomically(const std::filesystem::path& path, std::string_view content) {
  AtomicFile file(path);
  write_all(file.file(), content.data(), content.size(), file.name());
  file.commit();
}

}  // namespace dynweight::cli
