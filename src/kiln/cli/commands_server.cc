// kiln server: the tracking + registry API, artifacts and operational endpoints (api::App).
#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "kiln/api/app.h"
#include "kiln/cli/cli.h"
#include "kiln/core/log.h"

namespace kiln::cli {
namespace {

struct ServerCommandOptions {
  std::string host = "127.0.0.1";
  int port = 5000;
  int threads = 0;
};

// Shutdown signals are blocked before any thread exists, so every server thread inherits the
// mask and SIGINT/SIGTERM stay pending until sigwait() collects them here: no signal is lost in
// the window before waiting starts, and no handler runs on a server thread. (Only this command
// blocks them: the short-lived commands keep Ctrl-C's default action.)
sigset_t BlockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

Status Serve(Context& context, const ServerCommandOptions& options) {
  sigset_t signals = BlockShutdownSignals();
  KILN_ASSIGN_OR_RETURN(StoreLocation location, context.Location());
  if (location.kind == StoreLocation::Kind::kRemote) {
    return InvalidArgument("kiln server needs a database store, not a server URL (" +
                           RedactUri(location.uri) + ")");
  }
  api::ServerConfig config;
  config.store_uri = location.uri;
  config.artifact_root = location.artifact_root;
  config.http.host = options.host;
  config.http.port = options.port;
  config.http.threads = options.threads;
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<api::App> app, api::App::Open(config));
  KILN_RETURN_IF_ERROR(app->Start());
  std::cout << "kiln server listening on http://" << options.host << ":" << app->port()
            << " (store: " << RedactUri(location.uri) << ")" << std::endl;

  int received = 0;
  sigwait(&signals, &received);
  // A second Ctrl-C during the drain ends the process at once.
  pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
  LogInfo(std::string("received ") + (received == SIGINT ? "SIGINT" : "SIGTERM") +
          ", stopping (requests in flight finish)");
  app->Stop();
  app->Wait();
  std::cout << "kiln server stopped" << std::endl;
  return Status::Ok();
}

}  // namespace

void AddServerCommand(CLI::App& app, Context& context) {
  CLI::App* server = app.add_subcommand(
      "server", "Run the tracking and model registry server (MLflow REST API) until SIGINT/SIGTERM");
  auto options = std::make_shared<ServerCommandOptions>();
  server->add_option("--host", options->host, "Address to listen on (default 127.0.0.1)");
  server->add_option("--port", options->port, "Port (default 5000; 0 picks a free one)")
      ->check(CLI::Range(0, 65535));
  server->add_option("--threads", options->threads,
                     "Handler threads (default " + std::to_string(api::kDefaultThreads) + ")")
      ->check(CLI::NonNegativeNumber);
  server->callback([&context, options] {
    context.SetAction([&context, options] { return Serve(context, *options); });
  });
}

}  // namespace kiln::cli
