#include "kiln/cli/cli.h"

#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "kiln/cli/exit_codes.h"
#include "kiln/core/log.h"
#include "kiln/core/version.h"

namespace kiln::cli {

Result<StoreLocation> Context::Location() {
  return ResolveStore(StoreInputsFromProcess(options.store, options.objects));
}

Result<MlflowClient*> Context::Client() {
  if (client_ == nullptr) {
    KILN_ASSIGN_OR_RETURN(StoreLocation location, Location());
    KILN_ASSIGN_OR_RETURN(client_, OpenMlflowClient(location));
  }
  return client_.get();
}

namespace {

int ReportFailure(const Status& status) {
  std::cout.flush();
  std::cerr << "kiln: " << status.message() << '\n';
  return ExitCodeValue(ExitCodeFor(status.code()));
}

}  // namespace

int Run(int argc, char** argv) {
  Context context;
  CLI::App app("kiln: versioned data, tracked training, a model registry and serving in one binary",
               "kiln");
  app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION);
  // Global options are accepted before or after the subcommand (`kiln runs list --json`).
  app.fallthrough();
  app.require_subcommand(1);
  app.add_option("--store", context.options.store,
                 "Store URI: a path, sqlite://, postgresql:// or http://HOST:PORT (default: "
                 "$KILN_STORE, else the nearest .kiln/)");
  app.add_option("--objects", context.options.objects,
                 "Folder for artifacts and objects of a postgresql:// store (default: $KILN_OBJECTS)");
  app.add_flag("--json", context.options.json, "Print machine-readable JSON");
  app.add_option("--log-level", context.options.log_level, "debug, info, warning, error or off")
      ->check(CLI::IsMember({"debug", "info", "warning", "warn", "error", "off"}));

  AddInitCommand(app, context);
  AddServerCommand(app, context);
  AddVersionCommand(app, context);
  AddExperimentCommands(app, context);
  AddRunCommands(app, context);
  AddModelCommands(app, context);
  AddDataCommands(app, context);
  AddFsckCommand(app, context);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);  // --help, --version
    std::string message = error.what();
    // CLI11 reports a missing subcommand before an unexpected word; say which word it was.
    CLI::App* deepest = &app;
    while (!deepest->get_subcommands().empty()) deepest = deepest->get_subcommands().front();
    std::vector<std::string> remaining = app.remaining(true);
    if (dynamic_cast<const CLI::RequiredError*>(&error) != nullptr && !remaining.empty() &&
        !deepest->get_subcommands({}).empty()) {
      message = "unknown command '" + remaining.front() + "'";
      if (deepest != &app) message += " for '" + deepest->get_name() + "'";
    } else if (dynamic_cast<const CLI::RequiredError*>(&error) != nullptr &&
               deepest->get_require_subcommand_min() > 0 && deepest->get_subcommands().empty()) {
      std::string names;
      for (const CLI::App* sub : deepest->get_subcommands({})) {
        names += (names.empty() ? "" : ", ") + sub->get_name();
      }
      message = "'" + std::string(deepest == &app ? "kiln" : "kiln " + deepest->get_name()) +
                "' needs a command: " + names;
    }
    std::cerr << "kiln: " << message << "\nRun with --help for more information.\n";
    return ExitCodeValue(ExitCode::kUsage);
  }

  LogLevel level = LogLevel::kWarning;
  if (!context.options.log_level.empty()) ParseLogLevel(context.options.log_level, &level);
  else if (app.got_subcommand("server")) level = LogLevel::kInfo;
  SetLogLevel(level);

  if (!context.action()) return ExitCodeValue(ExitCode::kUsage);
  try {
    Status status = context.action()();
    if (!status.ok()) return ReportFailure(status);
  } catch (const std::exception& error) {
    // Our code does not throw; this catches a reply of an unexpected shape (a JSON type error).
    return ReportFailure(Internal(std::string("unexpected error: ") + error.what()));
  }
  std::cout.flush();
  return ExitCodeValue(ExitCode::kOk);
}

}  // namespace kiln::cli
