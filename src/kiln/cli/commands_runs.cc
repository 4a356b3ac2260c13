// kiln runs list|search|show|compare|delete|restore|create|log|end.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <set>

#include <CLI/CLI.hpp>

#include "kiln/cli/cli.h"
#include "kiln/cli/command_util.h"
#include "kiln/cli/output.h"
#include "kiln/core/clock.h"

namespace kiln::cli {
namespace {

struct RunOptions {
  // list / search
  std::vector<std::string> experiments;
  std::string filter;
  std::vector<std::string> order_by;
  int64_t max = 0;
  std::string view = "active";
  // show / compare / delete / restore / log / end
  std::vector<std::string> run_ids;
  std::string run_id;
  // create
  std::string experiment;
  std::string name;
  // create / log
  std::vector<std::string> tags;
  std::vector<std::string> metrics;
  std::vector<std::string> params;
  int64_t step = 0;
  // end
  std::string status = "FINISHED";
};

const Json& RunInfo(const Json& run) {
  static const Json kEmpty = Json::object();
  auto it = run.find("info");
  return it == run.end() ? kEmpty : *it;
}

const Json& RunData(const Json& run, std::string_view list) {
  auto data = run.find("data");
  if (data == run.end()) return ArrayField(Json::object(), list);
  return ArrayField(*data, list);
}

std::string Duration(const Json& info) {
  int64_t start = IntField(info, "start_time");
  int64_t end = IntField(info, "end_time");
  if (start <= 0 || end <= 0) return "";
  return FormatDuration(end - start);
}

// "metrics.rmse", "params.lr" named in a filter or order-by clause, in order of appearance, so
// that `runs list` shows the columns the user is searching by.
std::vector<std::string> MentionedColumns(const RunOptions& options) {
  static const std::regex kIdentifier(
      R"((metrics|metric|params|param|parameters|parameter)\.(`[^`]*`|"[^"]*"|[A-Za-z0-9_.\-/:]+))");
  std::vector<std::string> columns;
  auto scan = [&](const std::string& text) {
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kIdentifier);
         it != std::sregex_iterator(); ++it) {
      std::string kind = (*it)[1].str().rfind("metric", 0) == 0 ? "metrics" : "params";
      std::string key = (*it)[2].str();
      if (key.size() >= 2 && (key.front() == '`' || key.front() == '"')) {
        key = key.substr(1, key.size() - 2);
      }
      std::string column = kind + "." + key;
      if (std::find(columns.begin(), columns.end(), column) == columns.end()) {
        columns.push_back(column);
      }
    }
  };
  scan(options.filter);
  for (const std::string& clause : options.order_by) scan(clause);
  return columns;
}

std::string DataValue(const Json& run, const std::string& column) {
  bool metric = column.rfind("metrics.", 0) == 0;
  std::string key = column.substr(metric ? 8 : 7);
  for (const Json& item : RunData(run, metric ? "metrics" : "params")) {
    if (Field(item, "key") == key) return Field(item, "value");
  }
  return "";
}

Status List(Context& context, const RunOptions& options) {
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  Json experiment_ids = Json::array();
  for (const std::string& experiment : options.experiments) {
    KILN_ASSIGN_OR_RETURN(Json found, ResolveExperiment(*client, experiment));
    experiment_ids.push_back(Field(found, "experiment_id"));
  }
  if (options.experiments.empty()) {
    // Every experiment; runs of deleted experiments only when deleted runs are asked for.
    Json request = {{"view_type", options.view == "active" ? "ACTIVE_ONLY" : "ALL"}};
    KILN_ASSIGN_OR_RETURN(Json all, CallAllPages(*client, "POST", "/experiments/search", request,
                                                 "experiments", 0, 1000));
    for (const Json& experiment : ArrayField(all, "experiments")) {
      experiment_ids.push_back(Field(experiment, "experiment_id"));
    }
  }
  Json reply = Json::object();
  if (!experiment_ids.empty()) {
    Json request = {{"experiment_ids", experiment_ids},
                    {"run_view_type", ViewTypeName(options.view)}};
    if (!options.filter.empty()) request["filter"] = options.filter;
    if (!options.order_by.empty()) request["order_by"] = options.order_by;
    KILN_ASSIGN_OR_RETURN(reply, CallAllPages(*client, "POST", "/runs/search", request, "runs",
                                              options.max, 1000));
  }
  if (context.options.json) {
    PrintJson(reply);
    return Status::Ok();
  }
  std::vector<std::string> extra = MentionedColumns(options);
  std::vector<std::string> headers = {"RUN ID", "NAME", "EXPERIMENT", "STATUS", "STARTED",
                                      "DURATION"};
  headers.insert(headers.end(), extra.begin(), extra.end());
  Table table(headers);
  for (const Json& run : ArrayField(reply, "runs")) {
    const Json& info = RunInfo(run);
    std::vector<std::string> row = {Field(info, "run_id"), Field(info, "run_name"),
                                    Field(info, "experiment_id"), Field(info, "status"),
                                    FormatTimestamp(IntField(info, "start_time")), Duration(info)};
    for (const std::string& column : extra) row.push_back(DataValue(run, column));
    table.AddRow(std::move(row));
  }
  std::cout << table.Render();
  return Status::Ok();
}

Result<Json> GetRun(MlflowClient& client, const std::string& run_id) {
  KILN_ASSIGN_OR_RETURN(Json reply, client.Call("GET", "/runs/get", {{"run_id", run_id}}));
  return reply["run"];
}

Status Show(Context& context, const RunOptions& options) {
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  KILN_ASSIGN_OR_RETURN(Json run, GetRun(*client, options.run_id));
  if (context.options.json) {
    PrintJson({{"run", run}});
    return Status::Ok();
  }
  const Json& info = RunInfo(run);
  std::cout << RenderKeyValues({{"run_id", Field(info, "run_id")},
                                {"run_name", Field(info, "run_name")},
                                {"experiment_id", Field(info, "experiment_id")},
                                {"status", Field(info, "status")},
                                {"user_id", Field(info, "user_id")},
                                {"start_time", FormatTimestamp(IntField(info, "start_time"))},
                                {"end_time", FormatTimestamp(IntField(info, "end_time"))},
                                {"duration", Duration(info)},
                                {"artifact_uri", Field(info, "artifact_uri")},
                                {"lifecycle_stage", Field(info, "lifecycle_stage")}});
  for (const char* section : {"params", "metrics", "tags"}) {
    auto pairs = KeyValues(RunData(run, section));
    std::sort(pairs.begin(), pairs.end());
    if (!pairs.empty()) std::cout << section << ":\n" << RenderKeyValues(pairs, "  ", 100);
  }
  return Status::Ok();
}

Status Compare(Context& context, const RunOptions& options) {
  if (options.run_ids.size() < 2) {
    return InvalidArgument("runs compare needs at least two run ids, got " +
                           std::to_string(options.run_ids.size()));
  }
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  std::vector<Json> runs;
  for (const std::string& run_id : options.run_ids) {
    KILN_ASSIGN_OR_RETURN(Json run, GetRun(*client, run_id));
    runs.push_back(std::move(run));
  }

  // field -> one value per run ("" where a run lacks it).
  std::vector<std::pair<std::string, std::vector<std::string>>> rows;
  auto add_row = [&](const std::string& field, auto value_of) {
    std::vector<std::string> values;
    for (const Json& run : runs) values.push_back(value_of(run));
    rows.emplace_back(field, std::move(values));
  };
  for (const char* attribute : {"run_id", "run_name", "experiment_id", "status", "user_id"}) {
    add_row(attribute, [&](const Json& run) { return Field(RunInfo(run), attribute); });
  }
  add_row("start_time", [](const Json& run) {
    return FormatTimestamp(IntField(RunInfo(run), "start_time"));
  });
  add_row("duration", [](const Json& run) { return Duration(RunInfo(run)); });
  for (const char* section : {"params", "metrics", "tags"}) {
    std::set<std::string> keys;
    for (const Json& run : runs) {
      for (const auto& [key, value] : KeyValues(RunData(run, section))) {
        if (std::string_view(section) == "tags" && key.rfind("mlflow.", 0) == 0) continue;
        keys.insert(key);
      }
    }
    for (const std::string& key : keys) {
      add_row(std::string(section) + "." + key, [&](const Json& run) {
        for (const auto& [k, v] : KeyValues(RunData(run, section))) {
          if (k == key) return v;
        }
        return std::string();
      });
    }
  }

  auto differs = [](const std::vector<std::string>& values) {
    return std::adjacent_find(values.begin(), values.end(), std::not_equal_to<>()) != values.end();
  };
  if (context.options.json) {
    Json fields = Json::array();
    for (const auto& [field, values] : rows) {
      if (field == "run_id") continue;
      fields.push_back({{"field", field}, {"values", values}, {"differs", differs(values)}});
    }
    Json run_ids = Json::array();
    for (const Json& run : runs) run_ids.push_back(Field(RunInfo(run), "run_id"));
    PrintJson({{"run_ids", run_ids}, {"fields", fields}});
    return Status::Ok();
  }
  // Columns are titled by run name (or id); the run_id row tells runs of one name apart.
  std::vector<std::string> headers = {"", "FIELD"};
  for (const Json& run : runs) {
    std::string title = Field(RunInfo(run), "run_name");
    headers.push_back(title.empty() ? Field(RunInfo(run), "run_id") : title);
  }
  Table table(headers);
  for (const auto& [field, values] : rows) {
    std::vector<std::string> cells = {
        field != "run_id" && field != "run_name" && differs(values) ? "*" : "", field};
    cells.insert(cells.end(), values.begin(), values.end());
    table.AddRow(std::move(cells));
  }
  std::cout << table.Render() << "(* marks fields that differ)\n";
  return Status::Ok();
}

Status DeleteOrRestore(Context& context, const RunOptions& options, const std::string& verb) {
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  KILN_ASSIGN_OR_RETURN(Json reply, client->Call("POST", "/runs/" + verb, {{"run_id", options.run_id}}));
  if (context.options.json) {
    PrintJson(reply);
  } else {
    std::cout << (verb == "delete" ? "Deleted" : "Restored") << " run " << options.run_id << "\n";
  }
  return Status::Ok();
}

Status Create(Context& context, const RunOptions& options) {
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  std::string experiment_id = "0";
  if (!options.experiment.empty()) {
    KILN_ASSIGN_OR_RETURN(Json experiment, ResolveExperiment(*client, options.experiment));
    experiment_id = Field(experiment, "experiment_id");
  }
  Json request = {{"experiment_id", experiment_id}, {"start_time", Clock::Real()->NowMillis()}};
  if (!options.name.empty()) request["run_name"] = options.name;
  if (const char* user = std::getenv("USER")) request["user_id"] = user;
  KILN_ASSIGN_OR_RETURN(Json tags, KeyValueList(options.tags, "--tag"));
  if (!tags.empty()) request["tags"] = tags;
  KILN_ASSIGN_OR_RETURN(Json reply, client->Call("POST", "/runs/create", request));
  if (context.options.json) {
    PrintJson(reply);
  } else {
    // Only the id, so that scripts can write RUN=$(kiln runs create ...).
    std::cout << Field(RunInfo(reply["run"]), "run_id") << "\n";
  }
  return Status::Ok();
}

Result<double> ParseMetricValue(const std::string& key, const std::string& text) {
  if (text == "NaN" || text == "nan") return std::nan("");
  if (text == "Infinity" || text == "inf") return HUGE_VAL;
  if (text == "-Infinity" || text == "-inf") return -HUGE_VAL;
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) {
    return InvalidArgument("--metric " + key + ": '" + text + "' is not a number");
  }
  return value;
}

Status Log(Context& context, const RunOptions& options) {
  if (options.metrics.empty() && options.params.empty() && options.tags.empty()) {
    return InvalidArgument("nothing to log: pass --metric, --param or --tag");
  }
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  int64_t now = Clock::Real()->NowMillis();
  Json metrics = Json::array();
  for (const std::string& argument : options.metrics) {
    KILN_ASSIGN_OR_RETURN(auto pair, ParseKeyValue(argument, "--metric"));
    KILN_ASSIGN_OR_RETURN(double value, ParseMetricValue(pair.first, pair.second));
    metrics.push_back({{"key", pair.first},
                       {"value", DoubleToJson(value)},
                       {"timestamp", now},
                       {"step", options.step}});
  }
  KILN_ASSIGN_OR_RETURN(Json params, KeyValueList(options.params, "--param"));
  KILN_ASSIGN_OR_RETURN(Json tags, KeyValueList(options.tags, "--tag"));
  Json request = {{"run_id", options.run_id}};
  if (!metrics.empty()) request["metrics"] = metrics;
  if (!params.empty()) request["params"] = params;
  if (!tags.empty()) request["tags"] = tags;
  KILN_ASSIGN_OR_RETURN(Json reply, client->Call("POST", "/runs/log-batch", request));
  if (context.options.json) {
    PrintJson(reply);
  } else {
    std::cout << "Logged " << metrics.size() << " metric(s), " << params.size() << " param(s), "
              << tags.size() << " tag(s) to run " << options.run_id << "\n";
  }
  return Status::Ok();
}

Status End(Context& context, const RunOptions& options) {
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  KILN_ASSIGN_OR_RETURN(Json reply, client->Call("POST", "/runs/update",
                                                 {{"run_id", options.run_id},
                                                  {"status", options.status},
                                                  {"end_time", Clock::Real()->NowMillis()}}));
  if (context.options.json) {
    PrintJson(reply);
  } else {
    std::cout << "Run " << options.run_id << " " << options.status << "\n";
  }
  return Status::Ok();
}

void AddSearchOptions(CLI::App* command, RunOptions& options) {
  command->add_option("--experiment", options.experiments,
                      "Experiment id or name (repeatable; default: all experiments)")
      ->allow_extra_args(false);
  command->add_option("--order-by", options.order_by,
                      "Order, e.g. 'metrics.rmse ASC' (repeatable; default: start_time DESC)")
      ->allow_extra_args(false);
  command->add_option("--max", options.max, "At most N runs")->check(CLI::PositiveNumber);
  command->add_option("--view", options.view, "Which runs: active, deleted or all")
      ->check(CLI::IsMember({"active", "deleted", "all"}));
}

}  // namespace

void AddRunCommands(CLI::App& app, Context& context) {
  CLI::App* group = app.add_subcommand("runs", "List, search, show, compare, log and delete runs");
  group->alias("run");
  group->require_subcommand(1);
  auto options = std::make_shared<RunOptions>();
  auto on_run = [&context, options](CLI::App* command, auto action) {
    command->callback([&context, options, action] {
      context.SetAction([&context, options, action] { return action(context, *options); });
    });
  };

  CLI::App* list = group->add_subcommand("list", "List runs, newest first");
  AddSearchOptions(list, *options);
  list->add_option("--filter", options->filter,
                   "MLflow filter, e.g. \"metrics.rmse < 0.5 and params.model = 'xgb'\"");
  on_run(list, List);

  CLI::App* search = group->add_subcommand("search", "Search runs with an MLflow filter");
  search->add_option("FILTER", options->filter,
                     "e.g. \"metrics.rmse < 0.5 and params.model = 'xgb'\"");
  search->add_option("--filter", options->filter, "Same as FILTER");
  AddSearchOptions(search, *options);
  on_run(search, List);

  CLI::App* show = group->add_subcommand("show", "Show a run: attributes, params, metrics, tags");
  show->add_option("RUN_ID", options->run_id, "Run id")->required();
  on_run(show, Show);

  CLI::App* compare = group->add_subcommand(
      "compare", "Compare runs side by side (params, metrics, tags); differing fields marked *");
  compare->add_option("RUN_ID", options->run_ids, "Two or more run ids")->required();
  on_run(compare, Compare);

  for (const char* verb : {"delete", "restore"}) {
    CLI::App* change = group->add_subcommand(
        verb, std::string(verb == std::string("delete") ? "Delete" : "Restore") + " a run");
    change->add_option("RUN_ID", options->run_id, "Run id")->required();
    std::string name = verb;
    on_run(change, [name](Context& c, const RunOptions& o) { return DeleteOrRestore(c, o, name); });
  }

  CLI::App* create = group->add_subcommand("create", "Start a run and print its id");
  create->add_option("--experiment", options->experiment,
                     "Experiment id or name (default: 0, Default)");
  create->add_option("--name", options->name, "Run name (default: generated)");
  create->add_option("--tag", options->tags, "A tag KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  on_run(create, Create);

  CLI::App* log = group->add_subcommand("log", "Log metrics, params and tags to a run");
  log->add_option("RUN_ID", options->run_id, "Run id")->required();
  log->add_option("--metric", options->metrics, "A metric KEY=NUMBER (repeatable)")
      ->allow_extra_args(false);
  log->add_option("--param", options->params, "A param KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  log->add_option("--tag", options->tags, "A tag KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  log->add_option("--step", options->step, "The step of the metrics (default 0)");
  on_run(log, Log);

  CLI::App* end = group->add_subcommand("end", "End a run: set its status and end time");
  end->add_option("RUN_ID", options->run_id, "Run id")->required();
  end->add_option("--status", options->status, "FINISHED (default), FAILED or KILLED")
      ->check(CLI::IsMember({"FINISHED", "FAILED", "KILLED"}));
  on_run(end, End);
}

}  // namespace kiln::cli
