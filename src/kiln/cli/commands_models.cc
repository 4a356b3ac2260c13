// kiln models list|show|versions.
#include <algorithm>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "kiln/cli/cli.h"
#include "kiln/cli/command_util.h"
#include "kiln/cli/output.h"

namespace kiln::cli {
namespace {

struct ModelOptions {
  std::string name;
  std::string filter;
  std::vector<std::string> order_by;
  int64_t max = 0;
};

// "champion=3, staging=4" from a registered model's [{alias, version}].
std::string AliasList(const Json& model) {
  std::string text;
  for (const Json& alias : ArrayField(model, "aliases")) {
    if (!text.empty()) text += ", ";
    text += Field(alias, "alias") + "=" + Field(alias, "version");
  }
  return text;
}

std::string JoinStrings(const Json& list) {
  std::string text;
  for (const Json& item : list) {
    if (!text.empty()) text += ", ";
    text += JsonScalarText(item);
  }
  return text;
}

std::string LatestVersion(const Json& model) {
  int64_t latest = 0;
  for (const Json& version : ArrayField(model, "latest_versions")) {
    latest = std::max(latest, IntField(version, "version"));
  }
  return latest > 0 ? std::to_string(latest) : "";
}

// All versions of `name`, oldest first.
Result<Json> Versions(MlflowClient& client, const std::string& name) {
  KILN_ASSIGN_OR_RETURN(Json reply, CallAllPages(client, "GET", "/model-versions/search",
                                                 {{"filter", "name = " + FilterLiteral(name)}},
                                                 "model_versions", 0, 10000));
  if (auto it = reply.find("model_versions"); it != reply.end()) {
    std::sort(it->begin(), it->end(), [](const Json& a, const Json& b) {
      return IntField(a, "version") < IntField(b, "version");
    });
  }
  return reply;
}

std::string VersionTable(const Json& versions) {
  Table table({"VERSION", "STAGE", "ALIASES", "STATUS", "RUN ID", "CREATED", "SOURCE"});
  for (const Json& version : ArrayField(versions, "model_versions")) {
    table.AddRow({Field(version, "version"), Field(version, "current_stage"),
                  JoinStrings(ArrayField(version, "aliases")), Field(version, "status"),
                  Field(version, "run_id"),
                  FormatTimestamp(IntField(version, "creation_timestamp")),
                  Field(version, "source")});
  }
  return table.Render();
}

Status List(Context& context, const ModelOptions& options) {
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  Json request = Json::object();
  if (!options.filter.empty()) request["filter"] = options.filter;
  if (!options.order_by.empty()) request["order_by"] = options.order_by;
  KILN_ASSIGN_OR_RETURN(Json reply, CallAllPages(*client, "GET", "/registered-models/search",
                                                 request, "registered_models", options.max, 1000));
  if (context.options.json) {
    PrintJson(reply);
    return Status::Ok();
  }
  Table table({"NAME", "LATEST", "ALIASES", "UPDATED", "DESCRIPTION"});
  for (const Json& model : ArrayField(reply, "registered_models")) {
    table.AddRow({Field(model, "name"), LatestVersion(model), AliasList(model),
                  FormatTimestamp(IntField(model, "last_updated_timestamp")),
                  Field(model, "description")});
  }
  std::cout << table.Render();
  return Status::Ok();
}

Status Show(Context& context, const ModelOptions& options) {
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  KILN_ASSIGN_OR_RETURN(Json reply,
                        client->Call("GET", "/registered-models/get", {{"name", options.name}}));
  KILN_ASSIGN_OR_RETURN(Json versions, Versions(*client, options.name));
  Json model = reply["registered_model"];
  if (context.options.json) {
    // registered-models/get's reply plus every version (model-versions/search's list).
    reply["model_versions"] = ArrayField(versions, "model_versions");
    PrintJson(reply);
    return Status::Ok();
  }
  std::cout << RenderKeyValues(
      {{"name", Field(model, "name")},
       {"description", Field(model, "description")},
       {"aliases", AliasList(model)},
       {"created", FormatTimestamp(IntField(model, "creation_timestamp"))},
       {"updated", FormatTimestamp(IntField(model, "last_updated_timestamp"))}});
  auto tags = KeyValues(ArrayField(model, "tags"));
  if (!tags.empty()) std::cout << "tags:\n" << RenderKeyValues(tags, "  ", 100);
  std::cout << "versions:\n" << VersionTable(versions);
  return Status::Ok();
}

Status ListVersions(Context& context, const ModelOptions& options) {
  KILN_ASSIGN_OR_RETURN(MlflowClient * client, context.Client());
  // registered-models/get first, so that an unknown model is "not found" rather than no rows.
  KILN_ASSIGN_OR_RETURN(Json model,
                        client->Call("GET", "/registered-models/get", {{"name", options.name}}));
  KILN_ASSIGN_OR_RETURN(Json versions, Versions(*client, options.name));
  if (context.options.json) {
    PrintJson(versions);
  } else {
    std::cout << VersionTable(versions);
  }
  return Status::Ok();
}

}  // namespace

void AddModelCommands(CLI::App& app, Context& context) {
  CLI::App* group = app.add_subcommand("models", "List and show registered models and versions");
  group->alias("model");
  group->require_subcommand(1);
  auto options = std::make_shared<ModelOptions>();
  auto on_run = [&context, options](CLI::App* command, auto action) {
    command->callback([&context, options, action] {
      context.SetAction([&context, options, action] { return action(context, *options); });
    });
  };

  CLI::App* list = group->add_subcommand("list", "List registered models");
  list->add_option("--filter", options->filter, "MLflow filter, e.g. \"name LIKE 'credit%'\"");
  list->add_option("--order-by", options->order_by, "Order, e.g. 'name' (repeatable)")
      ->allow_extra_args(false);
  list->add_option("--max", options->max, "At most N models")->check(CLI::PositiveNumber);
  on_run(list, List);

  CLI::App* show = group->add_subcommand("show", "Show a model: aliases, tags and its versions");
  show->add_option("NAME", options->name, "Registered model name")->required();
  on_run(show, Show);

  CLI::App* versions = group->add_subcommand("versions", "List a model's versions");
  versions->add_option("NAME", options->name, "Registered model name")->required();
  on_run(versions, ListVersions);
}

}  // namespace kiln::cli
