#pragma once

/// \file
/// The subcommands of the `dynweight` tool and the driver that parses and runs them.

#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace dynweight::cli {

/// A subcommand: its CLI11 app (owned by the parent app) and what runs it once the command line
/// is parsed. `run` throws `InputError` on bad input (exit status 2), anything else on other
/// failures (1); it writes to stdout or files only once it has succeeded.
struct Command {
  CLI::App* app = nullptr;
  std::function<void()> run;
};

/// `dynweight sample`: writes a synthetic market (see sample_command.cpp).
Command add_sample_command(CLI::App& parent);
/// `dynweight stats`: rolling or EWMA statistics of a price file (see stats_command.cpp).
Command add_stats_command(CLI::App& parent);
/// `dynweight weights`: target weights of a policy on streamed estimates (see
/// weights_command.cpp).
Command add_weights_command(CLI::App& parent);
/// `dynweight rebalance`: trades from a book to target weights (see rebalance_command.cpp).
Command add_rebalance_command(CLI::App& parent);
/// `dynweight backtest`: a price file through the per-bar pipeline, results into a directory
/// (see backtest_command.cpp).
Command add_backtest_command(CLI::App& parent);

/// Registers every subcommand on `app`, in the order `--help` lists them. Adding one: write
/// `Command add_<name>_command(CLI::App&)` in `<name>_command.cpp`, declare it above, list it in
/// this function (commands.cpp) and add the source to tools/CMakeLists.txt.
std::vector<Command> add_all_commands(CLI::App& app);

/// The whole tool: parses `argv`, runs the chosen subcommand, reports any error on stderr as
/// "dynweight: <message>" and returns the exit status (0, 1, or 2 for bad input and bad
/// arguments).
int run_tool(int argc, char** argv);

}  // namespace dynweight::cli
