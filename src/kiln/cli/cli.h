// The `kiln` command: global options, subcommand wiring, error reporting and exit codes.
//
// Every subcommand's action is a function returning Status; Run() prints a failure to stderr as
// "kiln: <message>" and turns its code into the exit code (exit_codes.h). Usage errors found by
// CLI11 exit 2 after printing "kiln: <what was wrong>".
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "kiln/cli/mlflow_client.h"
#include "kiln/cli/store_locator.h"
#include "kiln/core/status.h"

namespace CLI {
class App;
}

namespace kiln::cli {

struct GlobalOptions {
  std::string store;    // --store URI
  std::string objects;  // --objects DIR
  bool json = false;    // --json: machine output
  std::string log_level;  // --log-level; empty = the command's default
};

// State shared by the commands of one invocation. Not thread-safe.
class Context {
 public:
  GlobalOptions options;

  // The store this invocation talks to (resolved once).
  Result<StoreLocation> Location();
  // The store's MLflow API, opened on first use.
  Result<MlflowClient*> Client();

  // Commands call this from their CLI11 callback; Run() executes the action after parsing.
  void SetAction(std::function<Status()> action) { action_ = std::move(action); }
  const std::function<Status()>& action() const { return action_; }

 private:
  std::function<Status()> action_;
  std::unique_ptr<MlflowClient> client_;
};

// Runs the command line; returns the process exit code.
int Run(int argc, char** argv);

// Subcommand groups (commands_*.cc).
void AddInitCommand(CLI::App& app, Context& context);
void AddServerCommand(CLI::App& app, Context& context);
void AddVersionCommand(CLI::App& app, Context& context);
void AddExperimentCommands(CLI::App& app, Context& context);
void AddRunCommands(CLI::App& app, Context& context);
void AddModelCommands(CLI::App& app, Context& context);
void AddDataCommands(CLI::App& app, Context& context);   // commands_data.cc
void AddFsckCommand(CLI::App& app, Context& context);    // commands_data.cc

}  // namespace kiln::cli
