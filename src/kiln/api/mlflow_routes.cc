#include "kiln/api/mlflow_routes.h"

#include <utility>

#include "kiln/api/errors.h"
#include "kiln/api/request.h"

namespace kiln::api {

http::Handler JsonHandler(JsonRpc rpc) {
  return [rpc = std::move(rpc)](const http::Request& request, http::Response& response) {
    Result<Json> decoded = DecodeRequest(request);
    if (!decoded.ok()) {
      WriteError(decoded.status(), response);
      return;
    }
    Result<Json> reply = rpc(*decoded);
    if (!reply.ok()) {
      WriteError(reply.status(), response);
      return;
    }
    WriteJson(*reply, response);
  };
}

void AddMlflowRoute(http::Router& router, const std::string& method, std::string_view path,
                    const http::Handler& handler) {
  router.Add(method, "/api/2.0/mlflow" + std::string(path), handler);
  router.Add(method, "/ajax-api/2.0/mlflow" + std::string(path), handler);
}

}  // namespace kiln::api
