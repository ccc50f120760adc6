// CSV input of the `dynweight` tool: every malformed file is rejected with exit status 2, a
// "dynweight: file:line:column: message" on stderr and nothing on stdout; the variants pandas and
// spreadsheets write (BOM, CRLF, quotes, blank lines) are read as the plain file.

#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "dynweight/csv_reader.hpp"
#include "dynweight/errors.hpp"
#include "dynweight/output.hpp"
#include "dynweight/random.hpp"

namespace {

using dynweight::cli::test::data_path;
using dynweight::cli::test::read_text;
using dynweight::cli::test::run_cli;
using dynweight::cli::test::work_dir;
using dynweight::cli::test::write_text;

struct BadFile {
  const char* name;
  const char* prices;
  const char* volumes;   // nullptr: `stats --stat mean`, else `--stat adv --volumes`
  const char* location;  // "prices.csv:3:2", or "prices.csv" when there is no line
  const char* message;   // a part of the message after the location
  const char* missing = "error";
};

constexpr const char* kGoodPrices = "date,A,B\n2020-01-01,1,2\n2020-01-02,1.5,2.5\n";

const BadFile kBadFiles[] = {
    {"too many cells", "date,A,B\n2020-01-01,1,2\n2020-01-02,1,2,3\n", nullptr, "prices.csv:3:4",
     "row has 4 cells, the header has 3"},
    {"too few cells", "date,A,B\n2020-01-01,1,2\n2020-01-02,1\n", nullptr, "prices.csv:3:3",
     "row has 2 cells, the header has 3"},
    {"text in a number cell", "date,A,MSFT\n2020-01-01,1,2\n2020-01-17,1,abc\n2020-01-20,1,2\n",
     nullptr, "prices.csv:3:3", "'abc' is not a number (asset 'MSFT', date 2020-01-17)"},
    {"number with trailing text", "date,A,B\n2020-01-01,1,2\n2020-01-02,1.5x,2\n", nullptr,
     "prices.csv:3:2", "'1.5x' is not a number (asset 'A', date 2020-01-02)"},
    {"sign after a plus", "date,A,B\n2020-01-01,1,2\n2020-01-02,1,2\n",
     "date,A,B\n2020-01-01,5,+-0\n", "volumes.csv:2:3", "'+-0' is not a number"},
    {"duplicate asset name once trimmed", "date,A, A\n2020-01-01,1,2\n", nullptr, "prices.csv:1:3",
     "duplicate asset name 'A' (also column 2)"},
    {"NaN cell", "date,A,B\n2020-01-01,1,2\n2020-01-02,NaN,2\n", nullptr, "prices.csv:3:2",
     "'NaN' is not a finite number"},
    {"inf cell", "date,A,B\n2020-01-01,1,2\n2020-01-02,1,inf\n", nullptr, "prices.csv:3:3",
     "'inf' is not a finite number"},
    {"overflowing number", "date,A,B\n2020-01-01,1,2\n2020-01-02,1e999,2\n", nullptr,
     "prices.csv:3:2", "'1e999' is out of the range of a double"},
    {"zero price", "date,A,B\n2020-01-01,1,2\n2020-01-02,1,0\n", nullptr, "prices.csv:3:3",
     "'0' is not a positive price (asset 'B', date 2020-01-02)"},
    {"negative price", "date,A,B\n2020-01-01,-1.5,2\n", nullptr, "prices.csv:2:2",
     "'-1.5' is not a positive price"},
    {"subnormal price", "date,A,B\n2020-01-01,1,2\n2020-01-02,1,1e-320\n2020-01-03,1,2\n", nullptr,
     "prices.csv:3:3",
     "'1e-320' is not a usable price: below 2.2e-308, a double keeps only some of its digits "
     "(subnormal) (asset 'B', date 2020-01-02)"},
    {"duplicate date", "date,A,B\n2020-01-01,1,2\n2020-01-02,1,2\n2020-01-02,1,2\n", nullptr,
     "prices.csv:4:1", "duplicate date 2020-01-02 (also on line 3)"},
    {"unsorted dates", "date,A,B\n2020-01-01,1,2\n2020-01-03,1,2\n2020-01-02,1,2\n", nullptr,
     "prices.csv:4:1", "date 2020-01-02 comes after 2020-01-03 (line 3)"},
    {"not an ISO date", "date,A,B\n2020-01-01,1,2\n01/02/2020,1,2\n", nullptr, "prices.csv:3:1",
     "'01/02/2020' is not an ISO 8601 date"},
    // Compared as text, '2020-01-02 00:00:00' sorts after '2020-01-02' (the same instant: a
    // duplicate that went through), ' ' before 'T' (in order, yet refused as unsorted).
    {"a date-time after dates",
     "date,A,B\n2020-01-01,1,2\n2020-01-02,1,2\n2020-01-02 00:00:00,1,2\n2020-01-03,1,2\n", nullptr,
     "prices.csv:4:1",
     "date '2020-01-02 00:00:00' is not in the format of the first date '2020-01-01' (line 2): "
     "write every date of the file in one format"},
    {"a ' ' date-time after 'T' ones",
     "date,A,B\n2020-01-02T10:00,1,2\n2020-01-02 11:00,1,2\n2020-01-03T10:00,1,2\n", nullptr,
     "prices.csv:3:1",
     "date '2020-01-02 11:00' is not in the format of the first date '2020-01-02T10:00' (line 2)"},

    {"impossible date", "date,A,B\n2021-02-28,1,2\n2021-02-29,1,2\n", nullptr, "prices.csv:3:1",
     "'2021-02-29' is not an ISO 8601 date"},
    {"empty date", "date,A,B\n2020-01-01,1,2\n,1,2\n", nullptr, "prices.csv:3:1", "empty date"},
    {"empty file", "", nullptr, "prices.csv:1:1", "the file is empty"},
    {"blank lines only", "\n\r\n\n", nullptr, "prices.csv:1:1", "the file is empty"},
    {"header only", "date,A,B\n", nullptr, "prices.csv:2:1", "no data rows after the header"},
    {"no asset columns", "date\n2020-01-01\n", nullptr, "prices.csv:1:2",
     "no asset columns in the header"},
    {"duplicate asset name", "date,A,B,A\n2020-01-01,1,2,3\n", nullptr, "prices.csv:1:4",
     "duplicate asset name 'A' (also column 2)"},
    {"empty asset name", "date,A,\n2020-01-01,1,2\n", nullptr, "prices.csv:1:3",
     "empty asset name"},
    {"empty cell with --missing error", "date,A,B\n2020-01-01,1,2\n2020-01-02,,2\n", nullptr,
     "prices.csv:3:2", "empty cell (use --missing drop or --missing ffill"},
    {"unterminated quote", "date,A,B\n2020-01-01,1,2\n2020-01-02,\"1,2\n", nullptr,
     "prices.csv:3:2", "unterminated quoted cell"},
    {"text after a closing quote", "date,A,B\n2020-01-01,\"1\"x,2\n", nullptr, "prices.csv:2:2",
     "unexpected text after a closing quote"},
    {"CRLF lines are counted", "date,A,B\r\n2020-01-01,1,2\r\n2020-01-02,1,x\r\n", nullptr,
     "prices.csv:3:3", "'x' is not a number"},
    {"line breaks inside quotes are counted", "date,\"A\nB\",C\n2020-01-01,1,2\n2020-01-02,1,?\n",
     nullptr, "prices.csv:4:3", "'?' is not a number (asset 'C', date 2020-01-02)"},
    {"blank lines are counted", "date,A,B\n\n2020-01-01,1,2\n\n2020-01-02,-3,2\n", nullptr,
     "prices.csv:5:2", "'-3' is not a positive price"},
    {"nothing left after --missing drop", "date,A,B\n2020-01-01,,2\n2020-01-02,1,\n", nullptr,
     "prices.csv", "no row with a price (and volume) for every asset (--missing drop)", "drop"},
    {"nothing left after --missing ffill", "date,A,B\n2020-01-01,,2\n2020-01-02,,3\n", nullptr,
     "prices.csv", "no row after which every asset has had a price (--missing ffill)", "ffill"},
    {"negative volume", kGoodPrices, "date,A,B\n2020-01-01,10,20\n2020-01-02,-5,20\n",
     "volumes.csv:3:2", "'-5' is a negative volume (asset 'A', date 2020-01-02)"},
    {"empty volume with --missing error", kGoodPrices,
     "date,A,B\n2020-01-01,10,20\n2020-01-02,5,\n", "volumes.csv:3:3", "empty cell"},
    {"volumes on another date", kGoodPrices, "date,A,B\n2020-01-01,10,20\n2020-01-03,5,20\n",
     "volumes.csv:3:1", "date 2020-01-03 differs from 2020-01-02 on line 3 of"},
    {"volumes end early", kGoodPrices, "date,A,B\n2020-01-01,10,20\n", "volumes.csv:3:1",
     "no row for date 2020-01-02"},
    {"volumes go on", kGoodPrices, "date,A,B\n2020-01-01,10,20\n2020-01-02,5,20\n2020-01-03,5,20\n",
     "volumes.csv:4:1", "date 2020-01-03 is not in"},
    {"volumes of another asset", kGoodPrices, "date,A,C\n2020-01-01,10,20\n2020-01-02,5,20\n",
     "volumes.csv:1:3", "asset 'C' differs from 'B'"},
    {"volumes of fewer assets", kGoodPrices, "date,A\n2020-01-01,10\n2020-01-02,5\n",
     "volumes.csv:1", "the header has 1 assets"},
};

}  // namespace

TEST_CASE("a control character in a cell is shown escaped, and the message is whole",
          "[cli][csv]") {
  // A NUL byte used to end the message where it stood ("prices.csv:3:3: '1").
  const auto dir = work_dir("nul_cell");
  using namespace std::string_literals;
  write_text(dir / "prices.csv", "date,A,B\n2020-01-01,1,2\n2020-01-02,1,1\0\t5\n"s);
  const auto result = run_cli(
      {"stats", "--prices", (dir / "prices.csv").string(), "--window", "2", "--stat", "mean"});
  CHECK(result.status == 2);
  CHECK(result.out.empty());
  CHECK(result.err == "dynweight: " + (dir / "prices.csv").string() +
                          ":3:3: '1\\x00\\x095' is not a number (asset 'B', date 2020-01-02)\n");
}

TEST_CASE("stats rejects every malformed CSV with file:line:column and status 2 and empty stdout",
          "[cli][csv]") {
  int index = 0;
  for (const BadFile& bad : kBadFiles) {
    DYNAMIC_SECTION(bad.name) {
      const auto dir = work_dir("bad_csv_" + std::to_string(index));
      write_text(dir / "prices.csv", bad.prices);
      std::vector<std::string> arguments = {"stats",    "--prices", (dir / "prices.csv").string(),
                                            "--window", "2",        "--missing",
                                            bad.missing};
      if (bad.volumes != nullptr) {
        write_text(dir / "volumes.csv", bad.volumes);
        arguments.insert(arguments.end(),
                         {"--stat", "adv", "--volumes", (dir / "volumes.csv").string()});
      } else {
        arguments.insert(arguments.end(), {"--stat", "mean"});
      }
      const auto result = run_cli(arguments);
      const std::string location = (dir / bad.location).string() + ": ";
      INFO("stderr: " << result.err);
      CHECK(result.status == 2);
      CHECK(result.out.empty());
      CHECK(result.err.rfind("dynweight: " + location, 0) == 0);
      CHECK(result.err.find(bad.message) != std::string::npos);
      CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    }
    ++index;
  }
}

TEST_CASE("a missing price file is bad input", "[cli][csv]") {
  const auto dir = work_dir("missing_file");
  const auto path = (dir / "nowhere.csv").string();
  const auto result = run_cli({"stats", "--prices", path, "--window", "2", "--stat", "vol"});
  CHECK(result.status == 2);
  CHECK(result.out.empty());
  CHECK(result.err == "dynweight: cannot open '" + path + "': No such file or directory\n");
}

TEST_CASE("a directory given as an input file is bad input with the reason", "[cli][csv]") {
  // fopen opens a directory and the first read fails: the message used to stop at the path.
  const auto dir = work_dir("directory_input");
  const auto result =
      run_cli({"stats", "--prices", dir.string(), "--window", "2", "--stat", "vol"});
  CHECK(result.status == 2);
  CHECK(result.out.empty());
  CHECK(result.err == "dynweight: error reading '" + dir.string() + "': Is a directory\n");
}

TEST_CASE("lines of only spaces and tabs are skipped like blank lines", "[cli][csv]") {
  const auto dir = work_dir("whitespace_lines");
  const std::string plain = (dir / "plain.csv").string();
  const std::string spaced = (dir / "spaced.csv").string();
  write_text(plain, "date,A,B\n2020-01-01,100,50\n2020-01-02,101,49\n2020-01-03,99.5,51\n");
  write_text(spaced,
             " \t\ndate,A,B\n   \n2020-01-01,100,50\n\t\r\n2020-01-02,101,49\n"
             "2020-01-03,99.5,51\n  \t ");
  const auto expected =
      run_cli({"stats", "--prices", plain, "--window", "2", "--stat", "cov", "--all"});
  const auto result =
      run_cli({"stats", "--prices", spaced, "--window", "2", "--stat", "cov", "--all"});
  INFO(result.err);
  REQUIRE(expected.status == 0);
  CHECK(result.status == 0);
  CHECK(result.err.empty());
  CHECK(result.out == expected.out);

  // The skipped lines are counted.
  write_text(spaced, "date,A,B\n \n2020-01-01,100,50\n\t\n  2020-01-02x,101,49\n");
  const auto bad = run_cli({"stats", "--prices", spaced, "--window", "2", "--stat", "vol"});
  CHECK(bad.status == 2);
  CHECK(bad.err.rfind("dynweight: " + spaced + ":5:1: '2020-01-02x' is not an ISO 8601 date", 0) ==
        0);
}

TEST_CASE("an error on the last row leaves stdout empty however much was computed", "[cli][csv]") {
  const auto dir = work_dir("late_error");
  std::string text = read_text(data_path("market/prices.csv"));
  text.append("2099-01-01,1,2,3,4,5,oops\n");
  write_text(dir / "prices.csv", text);
  const auto result = run_cli({"stats", "--prices", (dir / "prices.csv").string(), "--window", "5",
                               "--stat", "cov", "--all"});
  CHECK(result.status == 2);
  CHECK(result.out.empty());
  CHECK(result.err.find("prices.csv:122:7: 'oops' is not a number (asset 'A006', date "
                        "2099-01-01)") != std::string::npos);
}

TEST_CASE(
    "BOM and CRLF and quoted cells and blank lines and an empty date header read as plain CSV",
    "[cli][csv]") {
  const auto dir = work_dir("tolerated");
  write_text(dir / "plain.csv",
             "date,A,B\n2020-01-01,100,50\n2020-01-02,101,49\n2020-01-03,99.5,51\n"
             "2020-01-06,100.25,50.5\n");
  write_text(dir / "fancy.csv",
             "\xEF\xBB\xBF"
             "\"\",\"A\",B\r\n\"2020-01-01\",\"100\",50\r\n\r\n2020-01-02, 101 ,\"49\"\r\n"
             "2020-01-03,99.5,51\r\n2020-01-06,\"100.25\",50.5");
  for (const char* stat : {"mean", "cov"}) {
    const auto plain = run_cli({"stats", "--prices", (dir / "plain.csv").string(), "--window", "3",
                                "--stat", stat, "--all"});
    const auto fancy = run_cli({"stats", "--prices", (dir / "fancy.csv").string(), "--window", "3",
                                "--stat", stat, "--all"});
    REQUIRE(plain.status == 0);
    REQUIRE(fancy.status == 0);
    CHECK(fancy.err.empty());
    CHECK(fancy.out == plain.out);
  }
}

TEST_CASE("asset names with commas and quotes are quoted in the output", "[cli][csv]") {
  const auto dir = work_dir("quoted_names");
  write_text(dir / "prices.csv",
             "date,\"Acme, Inc.\",\"The \"\"B\"\" fund\"\n2020-01-01,1,2\n2020-01-02,2,3\n"
             "2020-01-03,3,5\n");
  const auto result = run_cli(
      {"stats", "--prices", (dir / "prices.csv").string(), "--window", "2", "--stat", "cov"});
  REQUIRE(result.status == 0);
  CHECK(result.out.rfind("asset,\"Acme, Inc.\",\"The \"\"B\"\" fund\"\n\"Acme, Inc.\",", 0) == 0);
}

TEST_CASE("CsvReader reports cells and the line each record starts on", "[cli][csv]") {
  const auto dir = work_dir("csv_reader");
  write_text(dir / "t.csv", "a,\"b\nc\",\"\"\"q\"\"\"\r\n\r\n1,,3");
  dynweight::cli::CsvReader reader((dir / "t.csv").string());
  std::vector<std::string> cells;
  REQUIRE(reader.next(cells));
  CHECK(reader.line() == 1);
  CHECK(cells == std::vector<std::string>{"a", "b\nc", "\"q\""});
  REQUIRE(reader.next(cells));
  CHECK(reader.line() == 4);
  CHECK(cells == std::vector<std::string>{"1", "", "3"});
  CHECK_FALSE(reader.next(cells));
}

TEST_CASE("CsvReader skips lines of only spaces and tabs and keeps a record's leading spaces",
          "[cli][csv]") {
  const auto dir = work_dir("csv_reader_whitespace");
  write_text(dir / "t.csv", "a,b\n \t \r\n  1,2\n\t\n \"q\",3\n   ");
  dynweight::cli::CsvReader reader((dir / "t.csv").string());
  std::vector<std::string> cells;
  REQUIRE(reader.next(cells));
  CHECK(cells == std::vector<std::string>{"a", "b"});
  REQUIRE(reader.next(cells));
  CHECK(reader.line() == 3);
  CHECK(cells == std::vector<std::string>{"  1", "2"});
  REQUIRE(reader.next(cells));
  CHECK(reader.line() == 5);
  CHECK(cells == std::vector<std::string>{" \"q\"", "3"});  // a quote after a space is text
  CHECK_FALSE(reader.next(cells));
  CHECK(reader.end_line() == 6);
}

TEST_CASE("DeferredOutput spills to a temporary file and commits everything in order",
          "[cli][output]") {
  dynweight::cli::DeferredOutput output(16);  // spill after 16 bytes
  std::string expected;
  for (int k = 0; k < 1000; ++k) {
    const std::string line = "row " + std::to_string(k) + ",";
    output.buffer().append(line);
    expected += line;
    dynweight::cli::append_number(output.buffer(), 0.1 * k);
    expected += fmt::format("{:.17g}", 0.1 * k);
    output.flush();
  }
  std::FILE* sink = std::tmpfile();
  REQUIRE(sink != nullptr);
  output.commit(sink);
  std::rewind(sink);
  std::string written(expected.size() + 10, '\0');
  written.resize(std::fread(written.data(), 1, written.size(), sink));
  std::fclose(sink);
  CHECK(written == expected);
}

TEST_CASE("numbers are written with 17 significant digits and read back exactly", "[cli][output]") {
  fmt::memory_buffer out;
  dynweight::cli::append_number(out, 0.1);
  CHECK(fmt::to_string(out) == "0.10000000000000001");
  for (const double value : {1.0 / 3.0, -2.5e-300, 123456789.123456789, 6.02214076e23}) {
    out.clear();
    dynweight::cli::append_number(out, value);
    CHECK(std::stod(fmt::to_string(out)) == value);
  }
}

TEST_CASE("append_number writes what fmt's {:.17g} writes", "[cli][output]") {
  std::uint64_t state = 12345;
  fmt::memory_buffer out;
  for (int k = 0; k < 100000; ++k) {
    // Random bit patterns cover every exponent, subnormals, infinities and NaNs.
    std::uint64_t bits = dynweight::cli::splitmix64(state);
    double value = 0.0;
    std::memcpy(&value, &bits, sizeof value);
    out.clear();
    dynweight::cli::append_number(out, value);
    const std::string expected = std::isnan(value) ? "nan" : fmt::format("{:.17g}", value);
    REQUIRE(fmt::to_string(out) == expected);
  }
}

TEST_CASE("a library error on a row names the file and the line of the row", "[cli][csv]") {
  // Both prices are valid cells, but the simple return 1e300 / 1e-300 - 1 overflows: the library
  // rejects the bar, and the message must say where that bar is (line 4: a blank line precedes).
  const auto dir = work_dir("library_error_location");
  const std::string prices = (dir / "prices.csv").string();
  write_text(prices,
             "date,A,B\n2024-01-01,1e-300,1\n\n2024-01-02,1e300,1.1\n2024-01-03,1,1.2\n"
             "2024-01-04,1,1.3\n2024-01-05,1,1.1\n");
  const std::vector<std::vector<std::string>> commands = {
      {"stats", "--prices", prices, "--window", "2", "--stat", "vol"},
      {"stats", "--prices", prices, "--halflife", "2", "--stat", "cov", "--all"},
      {"weights", "--prices", prices, "--window", "2", "--policy", "inverse-vol"},
      {"weights", "--prices", prices, "--halflife", "2", "--policy", "risk-parity", "--all"},
      {"backtest", "--prices", prices, "--window", "2", "--policy", "inverse-vol", "--every", "1",
       "--annualization", "252", "--out", (dir / "out").string()},
  };
  for (const auto& arguments : commands) {
    const auto result = run_cli(arguments);
    INFO(arguments[0] << " " << arguments[3] << ": " << result.err);
    CHECK(result.status == 2);
    CHECK(result.out.empty());
    CHECK(result.err.rfind("dynweight: " + prices + ":4: ", 0) == 0);
    CHECK(result.err.find("(date 2024-01-02)") != std::string::npos);
    CHECK(result.err.find("at bar 1") != std::string::npos);  // the library's own diagnosis
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  }
  CHECK_FALSE(std::filesystem::exists(dir / "out"));

  // A dollar volume (price x volume) that overflows: the prices' row, and the volumes' row too.
  write_text(dir / "p.csv", "date,A,B\n2024-01-01,1e300,1\n2024-01-02,1e300,1.1\n");
  write_text(dir / "v.csv", "date,A,B\n\n2024-01-01,1e10,1\n2024-01-02,1e10,1\n");
  const auto adv = run_cli({"stats", "--prices", (dir / "p.csv").string(), "--volumes",
                            (dir / "v.csv").string(), "--window", "2", "--stat", "adv"});
  INFO(adv.err);
  CHECK(adv.status == 2);
  CHECK(adv.err.rfind("dynweight: " + (dir / "p.csv").string() + ":2: ", 0) == 0);
  CHECK(adv.err.find("(date 2024-01-01, volumes " + (dir / "v.csv").string() + ":3)") !=
        std::string::npos);
}

TEST_CASE("a date followed by text is rejected and the documented date-times are read",
          "[cli][csv]") {
  const auto dir = work_dir("date_suffix");
  // The first and last dates are written as the second one is (`time`): one format per file.
  const auto stats = [&dir](const std::string& second_date, const std::string& time) {
    write_text(dir / "prices.csv", "date,A,B\n2020-01-01" + time + ",1,2\n" + second_date +
                                       ",1.5,2.5\n2020-01-31" + time + ",1.25,2.25\n");
    return run_cli(
        {"stats", "--prices", (dir / "prices.csv").string(), "--window", "2", "--stat", "mean"});
  };
  for (const std::string bad :
       {"2020-01-02xyz", "2020-01-02 junk", "2020-01-02Tjunk", "2020-01-02T", "2020-01-02 10",
        "2020-01-02 10:00junk", "2020-01-02T10:00:00 UTC", "2020-01-02 24:00", "2020-01-02T10:60",
        "2020-01-02T10:30:61", "2020-01-02T10:30:00.", "2020-01-02T10:30+1", "2020-01-02T10:30Zx",
        "2020-01-02T10:30+25:00", "2020-01-02  10:30", "2020-01-02 00:00:00+0019:32",
        "2020-01-02 00:00:00+00:19:", "2020-01-02 00:00:00+00:19:32."}) {
    const auto result = stats(bad, "");
    INFO("date '" << bad << "': " << result.err);
    CHECK(result.status == 2);
    CHECK(result.out.empty());
    CHECK(result.err.rfind("dynweight: " + (dir / "prices.csv").string() + ":3:1: '" + bad +
                               "' is not an ISO 8601 date",
                           0) == 0);
  }
  for (const std::string good :
       {"2020-01-02", "2020-01-02 00:00:00", "2020-01-02T09:30", "2020-01-02T09:30:00",
        "2020-01-02 09:30:00.123456", "2020-01-02T09:30:00Z", "2020-01-02 09:30:00+01:00",
        "2020-01-02T09:30:00-0500", "2020-01-02T09:30+05", "2020-01-02T23:59:60",
        // Python's isoformat of a local-mean-time zone (pandas to_csv of a tz-aware 1850 date).
        "2020-01-02 00:00:00+00:19:32", "2020-01-02 00:00:00-00:01:15.5"}) {
    const auto result = stats(good, good.substr(10));
    INFO("date '" << good << "': " << result.err);
    CHECK(result.status == 0);
    CHECK(result.err.empty());
  }
}

TEST_CASE("errors in a header after blank lines name the header's line", "[cli][csv]") {
  const auto dir = work_dir("header_line");
  const std::string prices = (dir / "prices.csv").string();
  const std::string volumes = (dir / "volumes.csv").string();
  write_text(prices, "date,A,B\n2020-01-01,1,2\n2020-01-02,1.5,2.5\n");
  const auto adv = [&]() {
    return run_cli(
        {"stats", "--prices", prices, "--volumes", volumes, "--window", "2", "--stat", "adv"});
  };
  write_text(volumes, "\n\r\ndate,A,C\n2020-01-01,10,20\n2020-01-02,5,20\n");
  auto result = adv();
  CHECK(result.status == 2);
  CHECK(result.err.rfind("dynweight: " + volumes + ":3:3: asset 'C' differs from 'B'", 0) == 0);

  write_text(volumes, "\n\ndate,A\n2020-01-01,10\n2020-01-02,5\n");
  result = adv();
  CHECK(result.status == 2);
  CHECK(result.err.rfind("dynweight: " + volumes + ":3: the header has 1 assets", 0) == 0);

  write_text(volumes, "\ndate,A,B\n2020-01-01,10,20\n2020-01-02,5,20\n");
  CHECK(adv().status == 0);

  write_text(prices, "\n\ndate,A,A\n2020-01-01,1,2\n");
  result = adv();
  CHECK(result.status == 2);
  CHECK(result.err.rfind("dynweight: " + prices + ":3:3: duplicate asset name 'A'", 0) == 0);
}
