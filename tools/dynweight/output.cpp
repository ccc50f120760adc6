#include "dynweight/output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

namespace dynweight::cli {

namespace {

// `error`: the errno of the failed call, saved before any clean-up that may change errno.
[[noreturn]] void fail_io(std::string_view action, const std::string& name, int error = errno) {
  std::string message = "cannot ";
  message.append(action).append(" '").append(name).append("': ").append(std::strerror(error));
  throw std::runtime_error(message);
}

void write_all(std::FILE* out, const char* data, std::size_t size, const std::string& name) {
  if (size > 0 && std::fwrite(data, 1, size, out) != size)
    fail_io("write", name);
}

// A temporary file next to `target` (`target.tmp.XXXXXX`), removed unless `release()`d.
class TemporaryFile {
 public:
  explicit TemporaryFile(const std::filesystem::path& target) : m_target(target) {
    std::string pattern = target.string();
    pattern.append(".tmp.XXXXXX");
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    const int fd = ::mkstemp(name.data());
    if (fd < 0)
      fail_io("create a temporary file for", target.string());
    m_path = name.data();
    m_file = ::fdopen(fd, "wb");
    if (m_file == nullptr) {
      const int error = errno;
      ::close(fd);
      std::error_code ignored;
      std::filesystem::remove(m_path, ignored);
      fail_io("open", m_path.string(), error);
    }
  }
  ~TemporaryFile() {
    if (m_file != nullptr)
      std::fclose(m_file);
    if (!m_released) {
      std::error_code ignored;
      std::filesystem::remove(m_path, ignored);
    }
  }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;

  [[nodiscard]] std::FILE* file() const { return m_file; }
  [[nodiscard]] const std::filesystem::path& path() const { return m_path; }
  [[nodiscard]] std::string name() const { return m_target.string(); }

  // Flushes the content to disk, closes the file and gives it the permissions of a file the user
  // creates (mkstemp makes it 0600).
  void finish() {
    std::FILE* file = m_file;
    m_file = nullptr;
    if (std::fflush(file) != 0 || ::fsync(::fileno(file)) != 0) {
      const int error = errno;
      std::fclose(file);
      fail_io("write", name(), error);
    }
    if (std::fclose(file) != 0)
      fail_io("write", name());
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::chmod(m_path.c_str(), 0666 & ~mask);
  }

  // The file is the caller's now: it is not removed.
  std::filesystem::path release() {
    m_released = true;
    return m_path;
  }

 private:
  std::filesystem::path m_target;
  std::filesystem::path m_path;
  std::FILE* m_file = nullptr;
  bool m_released = false;
};

// Flushes a directory's entries (the renames in it) to disk; a file system that cannot is no
// error.
void sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

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

void DeferredOutput::copy_to(std::FILE* out, const std::string& name) {
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
  copy_to(out, out == stdout ? std::string("standard output") : std::string("output"));
}

void DeferredOutput::commit(const std::filesystem::path& path) {
  TemporaryFile file(path);
  copy_to(file.file(), file.name());
  file.finish();
  if (std::rename(file.path().c_str(), path.c_str()) != 0)
    fail_io("replace", file.name());
  file.release();
}

void write_file_atomically(const std::filesystem::path& path, std::string_view content) {
  TemporaryFile file(path);
  write_all(file.file(), content.data(), content.size(), file.name());
  file.finish();
  if (std::rename(file.path().c_str(), path.c_str()) != 0)
    fail_io("replace", file.name());
  file.release();
}

FileSetReplacement::~FileSetReplacement() {
  if (m_committed)
    return;
  std::error_code ignored;
  for (const Entry& entry : m_entries)
    std::filesystem::remove(entry.temporary, ignored);
}

template <class Write>
void FileSetReplacement::add_with(const std::filesystem::path& target, Write&& write) {
  try {
    TemporaryFile file(target);
    write(file);
    file.finish();
    Entry& entry = m_entries.emplace_back();
    entry.target = target;
    entry.temporary = file.release();
  } catch (const std::runtime_error& error) {
    std::string message = error.what();
    message.append("; no file in '").append(target.parent_path().string());
    message.append("' was changed");
    throw std::runtime_error(message);
  }
}

void FileSetReplacement::add(const std::filesystem::path& target, std::string_view content) {
  add_with(target, [content](TemporaryFile& file) {
    write_all(file.file(), content.data(), content.size(), file.name());
  });
}

void FileSetReplacement::add(const std::filesystem::path& target, DeferredOutput& content) {
  add_with(target, [&content](TemporaryFile& file) { content.copy_to(file.file(), file.name()); });
}

void FileSetReplacement::commit() {
  // 1. Every existing target aside, to a name of its own: rename() over an empty placeholder made
  // by mkstemp, so nothing else is ever replaced. A directory is refused, never moved.
  for (Entry& entry : m_entries) {
    struct stat status {};
    if (::lstat(entry.target.c_str(), &status) != 0) {
      if (errno == ENOENT)
        continue;
      fail(entry, std::strerror(errno));
    }
    if (S_ISDIR(status.st_mode))
      fail(entry, std::strerror(EISDIR));
    std::string pattern = entry.target.string();
    pattern.append(".old.XXXXXX");
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    const int fd = ::mkstemp(name.data());
    if (fd < 0)
      fail(entry, std::string("cannot create a name to move it aside: ") + std::strerror(errno));
    ::close(fd);
    entry.old = name.data();
    if (std::rename(entry.target.c_str(), entry.old.c_str()) != 0)
      fail(entry, std::string("cannot move it aside: ") + std::strerror(errno));
    entry.moved_aside = true;
  }
  // 2. Every new file in.
  for (Entry& entry : m_entries) {
    if (std::rename(entry.temporary.c_str(), entry.target.c_str()) != 0)
      fail(entry, std::strerror(errno));
    entry.installed = true;
  }
  m_committed = true;
  // 3. The renames to disk, then the old files away (one that cannot be removed stays, harmless).
  for (const Entry& entry : m_entries)
    sync_directory(entry.target.parent_path());
  std::error_code ignored;
  for (const Entry& entry : m_entries) {
    if (!entry.old.empty())
      std::filesystem::remove(entry.old, ignored);
  }
}

void FileSetReplacement::fail(const Entry& entry, std::string_view reason) {
  std::string message = "cannot replace '";
  message.append(entry.target.string()).append("': ").append(reason);
  const std::string problems = roll_back();
  if (problems.empty()) {
    message.append("; no file in '").append(entry.target.parent_path().string());
    message.append("' was changed");
  } else {
    message.append("; rolling back failed too: ").append(problems);
  }
  throw std::runtime_error(message);
}

// Undoes the steps of commit() done so far, newest first; returns what could not be undone.
std::string FileSetReplacement::roll_back() {
  std::string problems;
  const auto problem = [&problems](const Entry& entry, std::string_view what) {
    problems.append(problems.empty() ? "" : "; ").append(what).append(" '");
    problems.append(entry.target.string()).append("'");
    if (!entry.old.empty())
      problems.append(" (the old file is '").append(entry.old.string()).append("')");
    problems.append(": ").append(std::strerror(errno));
  };
  for (auto entry = m_entries.rbegin(); entry != m_entries.rend(); ++entry) {
    if (entry->installed && !entry->moved_aside && std::remove(entry->target.c_str()) != 0)
      problem(*entry, "cannot remove the new");
    if (entry->moved_aside && std::rename(entry->old.c_str(), entry->target.c_str()) != 0) {
      problem(*entry, "cannot restore");
      continue;
    }
    if (!entry->moved_aside && !entry->old.empty())
      std::remove(entry->old.c_str());  // the unused placeholder
    entry->installed = false;
    entry->moved_aside = false;
    entry->old.clear();
  }
  return problems;
}

}  // namespace dynweight::cli
