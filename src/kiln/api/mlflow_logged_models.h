// MLflow 3.x logged-model RPCs (service.proto: createLoggedModel ... LogLoggedModelParams), the
// calls a 3.x client's log_model makes. Served, like every 2.0 RPC, at /api/2.0/mlflow<path> and
// /ajax-api/2.0/mlflow<path>:
//
//   POST   /logged-models                                 create    -> {"model": LoggedModel}
//   POST   /logged-models/search                          search    -> {"models": [...],
//                                                                      "next_page_token"}
//   GET    /logged-models/<model_id>                      get       -> {"model": LoggedModel}
//   PATCH  /logged-models/<model_id>                      finalize  -> {"model": LoggedModel}
//   DELETE /logged-models/<model_id>                      delete    -> {}
//   PATCH  /logged-models/<model_id>/tags                 set tags  -> {}
//   DELETE /logged-models/<model_id>/tags/<tag_key>       delete tag (no body needed) -> {}
//   POST   /logged-models/<model_id>/params               log params -> {}
//   GET    /logged-models/<model_id>/artifacts/directories[?artifact_directory_path=]
//                                                         -> {"root_uri", "files": [FileInfo]}
//
// LoggedModel on the wire (empty fields omitted, int64 as numbers, status as the enum name):
//   {"info": {"model_id", "experiment_id", "name", "creation_timestamp_ms",
//             "last_updated_timestamp_ms", "artifact_uri", "status", "model_type",
//             "source_run_id", "status_message", "tags": [{"key", "value"}]},
//    "data": {"params": [{"key", "value"}],
//             "metrics": [{"key", "value", "timestamp", "step", "model_id", "run_id",
//                          "dataset_name", "dataset_digest"}]}}
//
// Model artifacts are listed from the folder the model's artifact_location names:
// "mlflow-artifacts:/<rest>" is <artifact_root>/<rest> (so by default
// <artifact_root>/<experiment_id>/models/<model_id>/artifacts), "file://<path>" and absolute paths
// are used as they are; other schemes are not served (400 INVALID_STATE).
#pragma once

#include <string>

#include "kiln/http/router.h"

namespace kiln::tracking {
class LoggedModelStore;
}

namespace kiln::api {

// `store` must outlive the router's handlers.
void RegisterLoggedModelRoutes(http::Router& router, tracking::LoggedModelStore& store,
                               const std::string& artifact_root);

}  // namespace kiln::api
