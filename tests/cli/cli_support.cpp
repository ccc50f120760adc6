#include "cli_support.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace dynweight::cli::test {

namespace fs = std::filesystem;

fs::path data_path(const std::string& relative) {
  return fs::path(DYNWEIGHT_CLI_DATA_DIR) / relative;
}

fs::path work_dir(const std::string& name) {
  const fs::path dir = fs::path(DYNWEIGHT_CLI_WORK_DIR) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out)
    throw std::runtime_error("cannot write " + path.string());
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

RunResult run_cli(const std::vector<std::string>& arguments,
                  const std::optional<std::string>& standard_input) {
  static int counter = 0;
  const fs::path dir = fs::path(DYNWEIGHT_CLI_WORK_DIR) / "runs";
  fs::create_directories(dir);
  const std::string stem = std::to_string(::getpid()) + "_" + std::to_string(counter++);
  const fs::path out_path = dir / (stem + ".out");
  const fs::path err_path = dir / (stem + ".err");

  std::vector<std::string> storage;
  storage.emplace_back(DYNWEIGHT_CLI_PATH);
  storage.insert(storage.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  for (auto& argument : storage)
    argv.push_back(argument.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  int pipe_ends[2] = {-1, -1};
  if (standard_input) {
    // Filled and closed before the program starts: a non-blocking write fails instead of waiting
    // for a reader when the text does not fit the pipe.
    if (::pipe2(pipe_ends, O_CLOEXEC) != 0)
      throw std::runtime_error("cannot create a pipe");
    ::fcntl(pipe_ends[1], F_SETFL, O_NONBLOCK);
    const auto written = ::write(pipe_ends[1], standard_input->data(), standard_input->size());
    ::close(pipe_ends[1]);
    if (written < 0 || static_cast<std::size_t>(written) != standard_input->size()) {
      ::close(pipe_ends[0]);
      throw std::runtime_error("the standard input does not fit the pipe");
    }
    posix_spawn_file_actions_adddup2(&actions, pipe_ends[0], 0);
  }
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (standard_input)
    ::close(pipe_ends[0]);
  if (spawned != 0)
    throw std::runtime_error("cannot run " + storage[0]);
  int wait_status = 0;
  if (waitpid(pid, &wait_status, 0) != pid)
    throw std::runtime_error("waitpid failed");

  RunResult result;
  result.status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
  result.out = read_text(out_path);
  result.err = read_text(err_path);
  fs::remove(out_path);
  fs::remove(err_path);
  return result;
}

std::vector<std::string> split_arguments(const std::string& text) {
  std::vector<std::string> arguments;
  std::istringstream in(text);
  std::string word;
  const std::string placeholder = "{data}";
  while (in >> word) {
    const auto at = word.find(placeholder);
    if (at != std::string::npos)
      word.replace(at, placeholder.size(), std::string(DYNWEIGHT_CLI_DATA_DIR));
    arguments.push_back(word);
  }
  return arguments;
}

std::vector<std::vector<std::string>> parse_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::size_t start = 0;
    while (true) {
      const auto comma = line.find(',', start);
      cells.push_back(line.substr(start, comma - start));
      if (comma == std::string::npos)
        break;
      start = comma + 1;
    }
    rows.push_back(std::move(cells));
  }
  return rows;
}

namespace {

std::optional<double> number(const std::string& cell) {
  if (cell == "nan")
    return std::numeric_limits<double>::quiet_NaN();
  double value = 0.0;
  const auto [end, error] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  if (error != std::errc() || end != cell.data() + cell.size())
    return std::nullopt;
  return value;
}

}  // namespace

std::string compare_tables(const std::string& actual_text, const std::string& expected_text,
                           double tolerance, Bound bound) {
  const auto actual = parse_rows(actual_text);
  const auto expected = parse_rows(expected_text);
  std::ostringstream report;
  report.precision(17);
  if (actual.empty() || expected.empty())
    return "empty table";
  if (actual[0] != expected[0])
    return "headers differ";
  if (actual.size() != expected.size()) {
    report << actual.size() << " rows, expected " << expected.size();
    return report.str();
  }
  const bool by_date = bound == Bound::per_date && expected[0][0] == "date";
  std::map<std::string, double> scale;  // per date, or "" for the whole table
  for (std::size_t r = 1; r < expected.size(); ++r) {
    double& s = scale[by_date ? expected[r][0] : std::string()];
    for (const auto& cell : expected[r]) {
      const auto value = number(cell);
      if (value && std::isfinite(*value))
        s = std::max(s, std::abs(*value));
    }
  }
  double worst = 0.0;
  std::string first_failure;
  for (std::size_t r = 1; r < expected.size(); ++r) {
    if (actual[r].size() != expected[r].size())
      return "row " + std::to_string(r + 1) + ": cell counts differ";
    for (std::size_t c = 0; c < expected[r].size(); ++c) {
      const auto e = number(expected[r][c]);
      const auto a = number(actual[r][c]);
      if (!e || c == 0) {  // a label (the first cell always is: a date or an asset)
        if (actual[r][c] != expected[r][c])
          return "row " + std::to_string(r + 1) + ": '" + actual[r][c] + "' != '" + expected[r][c] +
                 "'";
        continue;
      }
      if (!a)
        return "row " + std::to_string(r + 1) + ": '" + actual[r][c] + "' is not a number";
      const bool a_nan = std::isnan(*a);
      const bool e_nan = std::isnan(*e);
      const double reference = bound == Bound::elementwise
                                   ? std::abs(*e)
                                   : scale[by_date ? expected[r][0] : std::string()];
      const double error = (a_nan || e_nan) ? 0.0 : std::abs(*a - *e) / reference;
      const bool ok = a_nan == e_nan && (reference > 0.0 ? error <= tolerance : *a == *e);
      worst = std::max(worst, std::isfinite(error) ? error : 0.0);
      if (!ok && first_failure.empty()) {
        std::ostringstream failure;
        failure.precision(17);
        failure << "row " << r + 1 << " cell " << c + 1 << ": " << actual[r][c] << " vs "
                << expected[r][c] << " (relative error " << error << ")";
        first_failure = failure.str();
      }
    }
  }
  if (first_failure.empty())
    return {};
  report << first_failure << "; worst relative error " << worst << ", tolerance " << tolerance;
  return report.str();
}

}  // namespace dynweight::cli::test
