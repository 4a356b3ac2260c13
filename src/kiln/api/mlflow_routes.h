// Shared plumbing for the MLflow REST handlers and the assembly of kiln server's routes.
//
// Every MLflow RPC is served at /api/2.0/mlflow<path> and /ajax-api/2.0/mlflow<path>.
// Handlers are written as functions from the decoded request object to the reply object; the
// wrapper turns a non-ok Status into MLflow's error reply (api/errors.h), so no handler writes
// an error by hand.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "kiln/core/json.h"
#include "kiln/core/status.h"
#include "kiln/http/router.h"

namespace kiln::tracking {
class TrackingStore;
}
namespace kiln::registry {
class RegistryStore;
}

namespace kiln::api {

using JsonRpc = std::function<Result<Json>(const Json& request)>;

// Wraps `rpc`: DecodeRequest, call, then WriteJson or WriteError.
http::Handler JsonHandler(JsonRpc rpc);

// Adds `handler` for `method` at /api/2.0/mlflow<path> and /ajax-api/2.0/mlflow<path>.
void AddMlflowRoute(http::Router& router, const std::string& method, std::string_view path,
                    const http::Handler& handler);

// Tracking RPCs (experiments, runs, metrics, search, log-batch, ...): mlflow_tracking.cc.
void RegisterTrackingRoutes(http::Router& router, tracking::TrackingStore& tracking);

// Model registry RPCs: mlflow_registry.cc.
void RegisterRegistryRoutes(http::Router& router, registry::RegistryStore& registry);

// Proxied artifacts (/api/2.0/mlflow-artifacts/artifacts/..., /artifacts/list, /get-artifact):
// artifacts.cc. Files live under `artifact_root`, laid out as <experiment>/<run>/artifacts/<path>,
// matching artifact URIs "mlflow-artifacts:/<experiment>/<run>/artifacts".
void RegisterArtifactRoutes(http::Router& router, tracking::TrackingStore& tracking,
                            const std::string& artifact_root);

}  // namespace kiln::api
