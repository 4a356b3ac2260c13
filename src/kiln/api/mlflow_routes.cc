#include "kiln/api/mlflow_routes.h"

#include <string>
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
    // Handlers read fields through core/json.h's typed readers, so nlohmann should not throw;
    // where it still does (a dump of a request value holding invalid UTF-8 in an error message),
    // the cause is the request's content: answer 400, never a 500 that clients would retry.
    Result<Json> reply = [&]() -> Result<Json> {
      try {
        return rpc(*decoded);
      } catch (const Json::exception& error) {
        return InvalidArgument(std::string("invalid request: ") + error.what());
      }
    }();
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
