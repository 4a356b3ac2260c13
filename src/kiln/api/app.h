// `kiln server`: the tracking and registry API at MLflow's paths, proxied artifacts, and the
// operational endpoints, assembled over one metadata database.
//
// Routes (each MLflow RPC also under /ajax-api/2.0/mlflow, as the MLflow UI calls it):
//   /api/2.0/mlflow/...                    tracking RPCs (mlflow_tracking.cc) and model registry
//                                          RPCs (mlflow_registry.cc)
//   /api/2.0/mlflow-artifacts/artifacts/.. proxied artifacts: PUT, GET, DELETE, GET ?path= (list)
//   /api/2.0/mlflow-artifacts/mpu/..       multipart uploads (artifacts.h)
//   /api/2.0/mlflow/artifacts/list         a run's artifacts; /get-artifact one file of a run,
//                                          /model-versions/get-artifact one of a model version
//                                          (downloads are streamed: http::Response::Stream)
//   /api/kiln/v1/data/...                  versioned datasets (data_api.h)
//   GET /health   -> 200 "OK" (text/plain)
//   GET /version  -> kiln's version (text/plain)
//   GET /metrics  -> Prometheus text: kiln_http_requests_total{method,route,status},
//                    kiln_http_request_duration_seconds{method,route} (histogram),
//                    kiln_http_requests_in_flight
//   anything else -> 404 {"error_code": "ENDPOINT_NOT_FOUND", ...} (405 for a wrong method)
//
// Usage (the CLI's `kiln server`):
//   KILN_ASSIGN_OR_RETURN(auto app, api::App::Open(config));
//   KILN_RETURN_IF_ERROR(app->Start());
//   http::WaitForShutdownSignal();
//   app->Stop();
//
// Ownership: App owns the Database, the stores, the router and the server; destroying it stops
// the server first. Thread safety: Start/Stop/Wait from one controlling thread; the handlers run
// on the server's threads and share the stores, which are thread-safe.
#pragma once

#include <memory>
#include <string>

#include "kiln/core/clock.h"
#include "kiln/core/status.h"
#include "kiln/http/router.h"
#include "kiln/http/server.h"

namespace kiln::store {
class Database;
}
namespace kiln::tracking {
class TrackingStore;
}
namespace kiln::registry {
class RegistryStore;
}
namespace kiln::data {
class Repository;
}

namespace kiln::api {

struct ServerConfig {
  // Database URI as store::Database::Open takes it ("sqlite:///abs/kiln.db", a path ending in
  // .db, "postgresql://...").
  std::string store_uri;
  // Folder holding proxied artifacts (<experiment>/<run>/artifacts/...); created if missing.
  std::string artifact_root;
  // Folder of data objects (the data layer's object store); created if missing. Empty: beside
  // the artifact root (<artifact_root>/../objects), as the CLI's store locator lays them out.
  // Unfinished data uploads live beside it, in <objects_root>/../uploads.
  std::string objects_root;
  // Address, port, limits. threads == 0 becomes kDefaultThreads: handlers block on the database,
  // so one thread per core would leave the cores idle while they wait.
  http::ServerOptions http;
};

inline constexpr int kDefaultThreads = 8;

class App {
 public:
  // Opens (creating and migrating if needed) the database and the stores, and builds the
  // router. Does not listen yet. Errors: the store's (IoError, Unavailable, InvalidArgument for
  // a malformed URI), IoError if the artifact root cannot be created.
  static Result<std::unique_ptr<App>> Open(const ServerConfig& config, Clock* clock = Clock::Real());
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Binds and starts serving. IoError naming the address when the port is taken.
  Status Start();
  // The bound port, after Start (useful with port 0).
  int port() const;
  // Graceful stop (requests in flight finish); idempotent.
  void Stop();
  // Blocks until the server has stopped.
  void Wait();

  // Handles one request without a socket (tests, fuzzers): the same routes, metrics included. A
  // streamed reply (artifact downloads, data exports) is collected into response.body.
  void Dispatch(const http::Request& request, http::Response& response) const;

  tracking::TrackingStore& tracking();
  registry::RegistryStore& registry();
  store::Database& database();
  data::Repository& data();

 private:
  struct State;
  explicit App(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace kiln::api
