// dynweight: the command-line tool (see README, "Command-line tool", and `dynweight --help`).

#include "dynweight/commands.hpp"

int main(int argc, char** argv) {
  return dynweight::cli::run_tool(argc, argv);
}
