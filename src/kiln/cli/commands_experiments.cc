// kiln experiments list|show|create|delete|restore|rename.
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "kiln/cli/cli.h"
#include "kiln/cli/command_util.h"
#include "kiln/cli/output.h"

namespace kiln::cli {
namespace {

struct ExperimentOptions {
  std::string id_or_name;
  std::string name;
  std::string new_name;
  std::string artifact_location;
  std::vector<std::string> tags;
  std::string view = "active";
  std::string filter;
  std::vector<std::string> order_by;
  int64_t max = 0;
};

Status List(Context& context, const ExperimentOptions& options) {
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  Json request = {{"view_type", ViewTypeName(options.view)}};
  if (!options.filter.empty()) request["filter"] = options.filter;
  if (!options.order_by.empty()) request["order_by"] = options.order_by;
  KILN_ASSIGN_OR_RETURN(Json reply, CallAllPages(*client, "POST", "/experiments/search", request,
                                                 "experiments", options.max, 1000));
  if (context.options.json) {
    PrintJson(reply);
    return Status::Ok();
  }
  Table table({"ID", "NAME", "LIFECYCLE", "CREATED", "ARTIFACT LOCATION"});
  for (const Json& experiment : ArrayField(reply, "experiments")) {
    table.AddRow({Field(experiment, "experiment_id"), Field(experiment, "name"),
                  Field(experiment, "lifecycle_stage"),
                  FormatTimestamp(IntField(experiment, "creation_time")),
                  Field(experiment, "artifact_location")});
  }
  std::cout << table.Render();
  return Status::Ok();
}

Status Show(Context& context, const ExperimentOptions& options) {
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  KILN_ASSIGN_OR_RETURN(Json experiment, ResolveExperiment(*client, options.id_or_name));
  if (context.options.json) {
    PrintJson({{"experiment", experiment}});
    return Status::Ok();
  }
  std::cout << RenderKeyValues(
      {{"experiment_id", Field(experiment, "experiment_id")},
       {"name", Field(experiment, "name")},
       {"lifecycle_stage", Field(experiment, "lifecycle_stage")},
       {"artifact_location", Field(experiment, "artifact_location")},
       {"creation_time", FormatTimestamp(IntField(experiment, "creation_time"))},
       {"last_update_time", FormatTimestamp(IntField(experiment, "last_update_time"))}});
  auto tags = KeyValues(ArrayField(experiment, "tags"));
  if (!tags.empty()) std::cout << "tags:\n" << RenderKeyValues(tags, "  ", 100);
  return Status::Ok();
}

Status Create(Context& context, const ExperimentOptions& options) {
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  Json request = {{"name", options.name}};
  if (!options.artifact_location.empty()) request["artifact_location"] = options.artifact_location;
  KILN_ASSIGN_OR_RETURN(Json tags, KeyValueList(options.tags, "--tag"));
  if (!tags.empty()) request["tags"] = tags;
  KILN_ASSIGN_OR_RETURN(Json reply, client->Call("POST", "/experiments/create", request));
  if (context.options.json) {
    PrintJson(reply);
  } else {
    std::cout << "Created experiment '" << options.name << "' with id "
              << Field(reply, "experiment_id") << "\n";
  }
  return Status::Ok();
}

// delete, restore and rename take an id or a name and print what they changed.
Status Change(Context& context, const ExperimentOptions& options, const std::string& verb) {
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  KILN_ASSIGN_OR_RETURN(Json experiment, ResolveExperiment(*client, options.id_or_name));
  std::string id = Field(experiment, "experiment_id");
  std::string name = Field(experiment, "name");
  Json reply;
  if (verb == "rename") {
    KILN_ASSIGN_OR_RETURN(reply, client->Call("POST", "/experiments/update",
                                              {{"experiment_id", id}, {"new_name", options.new_name}}));
  } else {
    KILN_ASSIGN_OR_RETURN(reply,
                          client->Call("POST", "/experiments/" + verb, {{"experiment_id", id}}));
  }
  if (context.options.json) {
    PrintJson(reply);
  } else if (verb == "rename") {
    std::cout << "Renamed experiment " << id << " from '" << name << "' to '" << options.new_name
              << "'\n";
  } else {
    std::cout << (verb == "delete" ? "Deleted" : "Restored") << " experiment " << id << " ('"
              << name << "')\n";
  }
  return Status::Ok();
}

}  // namespace

void AddExperimentCommands(CLI::App& app, Context& context) {
  CLI::App* group = app.add_subcommand("experiments", "List, show, create and change experiments");
  group->alias("experiment");
  group->require_subcommand(1);
  auto options = std::make_shared<ExperimentOptions>();

  CLI::App* list = group->add_subcommand("list", "List experiments");
  list->add_option("--view", options->view, "Which experiments: active, deleted or all")
      ->check(CLI::IsMember({"active", "deleted", "all"}));
  list->add_option("--filter", options->filter,
                   "MLflow filter, e.g. \"name LIKE 'churn%'\" or \"tags.team = 'risk'\"");
  list->add_option("--order-by", options->order_by, "Order, e.g. 'name' or 'creation_time DESC'")
      ->allow_extra_args(false);
  list->add_option("--max", options->max, "At most N experiments")->check(CLI::PositiveNumber);
  list->callback([&context, options] { context.SetAction([&context, options] { return List(context, *options); }); });

  CLI::App* show = group->add_subcommand("show", "Show one experiment");
  show->add_option("ID_OR_NAME", options->id_or_name, "Experiment id or name")->required();
  show->callback([&context, options] { context.SetAction([&context, options] { return Show(context, *options); }); });

  CLI::App* create = group->add_subcommand("create", "Create an experiment");
  create->add_option("NAME", options->name, "Experiment name")->required();
  create->add_option("--artifact-location", options->artifact_location,
                     "Where its runs' artifacts go (default: the store's artifact root)");
  create->add_option("--tag", options->tags, "A tag KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  create->callback([&context, options] { context.SetAction([&context, options] { return Create(context, *options); }); });

  for (const char* verb : {"delete", "restore"}) {
    CLI::App* change = group->add_subcommand(
        verb, std::string(verb == std::string("delete") ? "Delete" : "Restore") +
                  " an experiment (by id or name)");
    change->add_option("ID", options->id_or_name, "Experiment id or name")->required();
    std::string name = verb;
    change->callback([&context, options, name] {
      context.SetAction([&context, options, name] { return Change(context, *options, name); });
    });
  }

  CLI::App* rename = group->add_subcommand("rename", "Rename an experiment");
  rename->add_option("ID", options->id_or_name, "Experiment id or name")->required();
  rename->add_option("NEW_NAME", options->new_name, "The new name")->required();
  rename->callback([&context, options] {
    context.SetAction([&context, options] { return Change(context, *options, "rename"); });
  });
}

}  // namespace kiln::cli
