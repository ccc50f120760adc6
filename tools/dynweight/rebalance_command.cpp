// `dynweight rebalance`: target weights and a book (holdings, prices, cash) → whole-lot trades,
// the book they leave and a summary, by `dynweight::Rebalancer`.

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dynweight/book_reader.hpp"
#include "dynweight/commands.hpp"
#include "dynweight/errors.hpp"
#include "dynweight/options.hpp"
#include "dynweight/output.hpp"
#include "dynweight/rebalance/rebalancer.hpp"

namespace dynweight::cli {

namespace {

struct RebalanceArguments {
  std::string book;
  std::string targets;
  TradingOptions trading;
  double min_quantity = 0.0;
  std::string band_mode = "absolute";
  std::string max_participation;  // empty: no cap
  bool allow_short = false;
  bool no_residual = false;
};

RebalanceOptions rebalance_options(const RebalanceArguments& arguments) {
  RebalanceOptions options;
  arguments.trading.apply(options);
  check_option(std::isfinite(arguments.min_quantity) && arguments.min_quantity >= 0.0,
               "--min-quantity", arguments.min_quantity, "finite and >= 0");
  options.min_quantity = arguments.min_quantity;
  options.band_mode = arguments.band_mode == "relative" ? BandMode::relative : BandMode::absolute;
  if (!arguments.max_participation.empty())
    options.max_participation = parse_max_participation(arguments.max_participation);
  options.allow_short = arguments.allow_short;
  options.invest_residual_cash = !arguments.no_residual;
  return options;
}

// The targets in book order; every target asset must be in the book and vice versa.
Eigen::VectorXd aligned_targets(const Book& book, const Targets& targets, bool allow_short) {
  std::map<std::string, Eigen::Index, std::less<>> position;
  for (std::size_t i = 0; i < book.assets.size(); ++i)
    position.emplace(book.assets[i], static_cast<Eigen::Index>(i));
  Eigen::VectorXd weights = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(book.assets.size()));
  std::vector<char> seen(book.assets.size(), 0);
  for (std::size_t k = 0; k < targets.assets.size(); ++k) {
    const std::string& name = targets.assets[k];
    const auto found = position.find(name);
    if (found == position.end()) {
      throw InputError(located(targets.path, targets.names[k].line, targets.names[k].column,
                               "asset '" + name + "' is not in the book " + book.path));
    }
    const double weight = targets.weights(static_cast<Eigen::Index>(k));
    if (!allow_short && weight < 0.0) {
      throw InputError(located(targets.path, targets.cells[k].line, targets.cells[k].column,
                               fmt::format("negative weight {} for '{}' (long-only: pass "
                                           "--allow-short to allow short positions)",
                                           weight, name)));
    }
    weights(found->second) = weight;
    seen[static_cast<std::size_t>(found->second)] = 1;
  }
  for (std::size_t i = 0; i < book.assets.size(); ++i) {
    if (seen[i] == 0) {
      throw InputError(located(book.path, book.lines[i], 1,
                               "asset '" + book.assets[i] + "' has no target in " + targets.path +
                                   " (give it weight 0 to sell it out)"));
    }
  }
  return weights;
}

// Zero without a sign: a trade of -0 lots is written "0".
double unsigned_zero(double value) {
  return value + 0.0;
}

void write_plan(fmt::memory_buffer& out, const Book& book, const TradePlan<double>& plan) {
  const auto n = static_cast<Eigen::Index>(book.assets.size());
  const auto row = [&out](std::string_view asset, std::initializer_list<double> values) {
    append_cell(out, asset);
    for (const double value : values) {
      out.push_back(',');
      append_number(out, unsigned_zero(value));
    }
  };
  out.append(std::string_view("asset,shares_delta,price,notional,cost,limit\n"));
  for (Eigen::Index i = 0; i < n; ++i) {
    row(book.assets[static_cast<std::size_t>(i)],
        {plan.shares_delta(i), book.prices(i), plan.notional(i), plan.cost(i)});
    out.push_back(',');
    out.append(to_string(plan.limits[static_cast<std::size_t>(i)]));
    out.push_back('\n');
  }
  out.append(std::string_view("\nasset,shares,price,weight\n"));
  for (Eigen::Index i = 0; i < n; ++i) {
    row(book.assets[static_cast<std::size_t>(i)],
        {plan.shares_after(i), book.prices(i), plan.weights_after(i)});
    out.push_back('\n');
  }
  row(kCashAsset, {plan.cash_after, 1.0, plan.cash_after / plan.value_after});
  out.append(std::string_view("\n\nkey,value\n"));
  const std::pair<std::string_view, double> summary[] = {
      {"value_before", plan.value_before},
      {"value_after", plan.value_after},
      {"total_cost", plan.total_cost},
      {"turnover", plan.turnover},
      {"tracking_error_before", plan.tracking_error_before},
      {"tracking_error", plan.tracking_error},
      {"trades", static_cast<double>(plan.trades)}};
  for (const auto& [key, value] : summary) {
    row(key, {value});
    out.push_back('\n');
  }
  out.append(std::string_view("status,"));
  out.append(to_string(plan.status.code));
  out.push_back('\n');
}

// "dynweight: note: ..." on stderr for a constrained plan: which limits bound, and how often.
void report_constrained(const TradePlan<double>& plan) {
  std::map<TradeLimit, long> counts;
  for (const TradeLimit limit : plan.limits) {
    if (limit == TradeLimit::cash || limit == TradeLimit::participation ||
        limit == TradeLimit::no_short)
      ++counts[limit];
  }
  std::string why;
  for (const auto& [limit, count] : counts) {
    why.append(why.empty() ? "" : ", ");
    why.append(
        fmt::format("{} asset{} limited by {}", count, count == 1 ? "" : "s", to_string(limit)));
  }
  if (plan.cash_after < plan.cash_floor)
    why.append(why.empty() ? "" : "; ").append("cash stays below the --cash-buffer");
  if (why.empty())
    why = plan.status.detail;
  else
    why.append(" (see the limit column)");
  const std::string line = "dynweight: note: status constrained: " + why + "\n";
  std::fputs(line.c_str(), stderr);
}

void run_rebalance(const RebalanceArguments& arguments) {
  const RebalanceOptions options = rebalance_options(arguments);
  const Book book = read_book(arguments.book);
  const Targets targets = read_targets(arguments.targets);
  const Eigen::VectorXd weights = aligned_targets(book, targets, arguments.allow_short);
  const auto n = static_cast<Eigen::Index>(book.assets.size());

  Eigen::VectorXd lot_sizes(n);
  for (Eigen::Index i = 0; i < n; ++i)
    lot_sizes(i) = std::isnan(book.lot_sizes(i)) ? options.lot_size : book.lot_sizes(i);

  Rebalancer<double> rebalancer(n, options, &book.assets);
  rebalancer.set_lot_sizes(lot_sizes);
  if (std::isfinite(options.max_participation)) {
    if (book.adv_column == 0) {
      throw InputError(book.path +
                       ": --max-participation needs an adv column (average daily volume, in "
                       "shares) in the book");
    }
    for (Eigen::Index i = 0; i < n; ++i) {
      if (std::isnan(book.adv(i))) {
        throw InputError(
            located(book.path, book.lines[static_cast<std::size_t>(i)], book.adv_column,
                    "empty adv cell (asset '" + book.assets[static_cast<std::size_t>(i)] +
                        "'): --max-participation needs every asset's adv"));
      }
    }
    rebalancer.plan(weights, book.shares, book.cash, book.prices, book.adv);
  } else {
    rebalancer.plan(weights, book.shares, book.cash, book.prices);
  }
  const TradePlan<double>& plan = rebalancer.result();

  DeferredOutput output;
  write_plan(output.buffer(), book, plan);
  output.commit(stdout);
  if (plan.status.code == StatusCode::constrained)
    report_constrained(plan);
}

}  // namespace

Command add_rebalance_command(CLI::App& parent) {
  auto arguments = std::make_shared<RebalanceArguments>();
  CLI::App* app = parent.add_subcommand(
      "rebalance",
      "Trade a book to target weights in whole lots, after costs, within the cash, the "
      "no-trade band, the minimum order and the participation cap; writes the trades, the "
      "resulting book and a summary (see README, \"dynweight rebalance\")");
  app->add_option("--book", arguments->book,
                  "The book (CSV): header asset,shares,price[,lot_size][,adv] (after asset, any "
                  "order), one row per asset and a row CASH,<amount>,1 (price empty or 1)")
      ->required()
      ->type_name("FILE");
  app->add_option("--targets", arguments->targets,
                  "Target weights (CSV): rows asset,weight (header asset,weight), or the "
                  "date,<names> table `dynweight weights` writes (its last row is used); cash is "
                  "1 - the sum of the weights")
      ->required()
      ->type_name("FILE");
  add_trading_options(
      *app, arguments->trading,
      "Lot size of every asset without a lot_size cell (any real > 0: 100, 0.0001)",
      "No-trade band: an asset is not traded while |weight - target| <= X "
      "(absolute), or <= X * |target| (relative); X or X% (0.5% = 0.005), below 1 (100%)");
  app->add_option("--min-quantity", arguments->min_quantity, "No order for fewer shares than this")
      ->capture_default_str()
      ->type_name("X");
  app->add_option("--band-mode", arguments->band_mode, "How --band is measured")
      ->check(CLI::IsMember({"absolute", "relative"}))
      ->capture_default_str();
  app->add_option("--max-participation", arguments->max_participation,
                  "Trade at most X (or X%) of each asset's adv (average daily volume in shares: "
                  "the book needs an adv column)")
      ->type_name("X|X%");
  app->add_flag("--allow-short", arguments->allow_short,
                "Allow negative targets and short positions (default: long-only, no sale beyond "
                "the shares held)");
  app->add_flag("--no-residual", arguments->no_residual,
                "Do not buy further lots with the cash left over after rounding");
  return {app, [arguments]() { run_rebalance(*arguments); }};
}

}  // namespace dynweight::cli
