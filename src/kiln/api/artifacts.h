// Artifact routes beyond RegisterArtifactRoutes (mlflow_routes.h): the UI's model-version
// download, and the wire format of multipart uploads.
//
// Multipart upload (MLflow's mlflow-artifacts/mpu/*; kiln stores artifacts locally, so the part
// URLs point back at kiln):
//   POST <api>/mlflow-artifacts/mpu/create/<path>   {path, num_parts}
//        -> {upload_id, credentials: [{part_number, url, headers: {}}]}    part_number from 1
//   PUT  <api>/mlflow-artifacts/mpu/parts/<upload_id>/<part_number>    raw bytes -> {} + ETag
//   POST <api>/mlflow-artifacts/mpu/complete/<path> {path, upload_id, parts: [{part_number, etag}]}
//        -> {}: the parts, in part_number order, become the artifact at <path> atomically
//   POST <api>/mlflow-artifacts/mpu/abort/<path>    {path, upload_id} -> {}: the parts are removed
// <api> is /api/2.0 or /ajax-api/2.0. A part's ETag is the hex SHA-256 of its bytes, quoted.
// On disk: <artifact_root>/.mpu/<upload_id>/{target, part-<N>} (target holds <path>); the
// ".mpu" folder is not an artifact (its name cannot be a run's experiment id) and is left out
// of listings. Uploads never completed or aborted stay until removed by hand.
#pragma once

#include <string>

#include "kiln/http/router.h"

namespace kiln::registry {
class RegistryStore;
}

namespace kiln::api {

// GET /model-versions/get-artifact?name=&version=&path= (and under /ajax-api/2.0/mlflow): one
// file of a model version, from its download URI below `artifact_root`. mlflow_registry.cc.
void RegisterModelVersionArtifactRoutes(http::Router& router, registry::RegistryStore& registry,
                                        const std::string& artifact_root);

}  // namespace kiln::api
