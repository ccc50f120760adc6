#include "dynweight/commands.hpp"

#include <cstdio>
#include <exception>
#include <new>
#include <string_view>

#include "dynweight/core/error.hpp"
#include "dynweight/errors.hpp"

namespace dynweight::cli {

namespace {

void report(std::string_view message) {
  constexpr std::string_view kPrefix = "dynweight: ";
  std::string line;
  if (message.substr(0, kPrefix.size()) != kPrefix)  // library errors carry it already
    line.append(kPrefix);
  line.append(message).append("\n");
  std::fwrite(line.data(), 1, line.size(), stderr);  // whole, even past a NUL byte
}

}  // namespace

std::vector<Command> add_all_commands(CLI::App& app) {
  return {add_stats_command(app), add_weights_command(app), add_rebalance_command(app),
          add_backtest_command(app), add_sample_command(app)};
}

int run_tool(int argc, char** argv) {
  CLI::App app{
      "Rolling and EWMA statistics of asset prices, target weights of a weighting policy, trades "
      "that rebalance a book to target weights, backtests of the whole pipeline, and a synthetic "
      "market to try them on.\n"
      "CSV in, CSV out: price and volume files have a header row (the date column, then the "
      "asset names) and one row per date, oldest first.",
      "dynweight"};
  app.require_subcommand(1);
  std::vector<Command> commands = add_all_commands(app);
  // CLI11 would only say "A subcommand is required" for a misspelt one.
  if (argc >= 2 && argv[1][0] != '-') {
    const std::string_view name = argv[1];
    std::string known;
    bool found = false;
    for (const Command& command : commands) {
      found = found || command.app->get_name() == name;
      known.append(known.empty() ? "" : ", ").append(command.app->get_name());
    }
    if (!found) {
      std::string message = "unknown subcommand '";
      message.append(name).append("' (the subcommands: ").append(known).append(")");
      report(message);
      return kExitBadInput;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0)
      return app.exit(error);  // --help: the usage text on stdout
    std::string message = error.what();
    message.append(" (run with --help for usage)");
    report(message);
    return kExitBadInput;
  }
  try {
    for (const Command& command : commands) {
      if (command.app->parsed())
        command.run();
    }
    return kExitSuccess;
  } catch (const InputError& error) {
    report(error.what());
    return kExitBadInput;
  } catch (const dynweight::Error& error) {  // the library rejected a value read from the input
    report(error.what());
    return kExitBadInput;
  } catch (const std::bad_alloc&) {
    report(
        "out of memory: a buffer could not be allocated (a --window or universe too large for "
        "this machine?)");
    return kExitFailure;
  } catch (const std::exception& error) {
    report(error.what());
    return kExitFailure;
  } catch (...) {
    report("unknown error");
    return kExitFailure;
  }
}

}  // namespace dynweight::cli
