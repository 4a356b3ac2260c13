// How every read/search/write command reaches its store: through the MLflow REST API, either
// in-process (a local store: the api layer's handlers are dispatched directly, no socket, no
// thread) or over HTTP (a remote `kiln server`). Both paths see the same request and reply
// objects, so commands are written once and print the same output against either store, and
// --json prints exactly the MLflow reply.
//
// Not thread-safe: one MlflowClient per command invocation.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "kiln/cli/store_locator.h"
#include "kiln/core/json.h"
#include "kiln/core/status.h"

namespace kiln::cli {

class MlflowClient {
 public:
  virtual ~MlflowClient() = default;

  // Calls the RPC at /api/2.0/mlflow<path> ("/runs/get"). GET sends `request`'s fields as query
  // parameters (arrays as repeated keys); other methods send it as the JSON body. An error reply
  // becomes the Status it was made from (see StatusFromMlflowError).
  virtual Result<Json> Call(std::string_view method, std::string_view path,
                            const Json& request) = 0;

  // The store's name for messages: the server URL or the database URI, passwords masked.
  virtual std::string DisplayName() const = 0;
};

// Opens the store at `location`: a local database (opened and migrated) or a remote server.
Result<std::unique_ptr<MlflowClient>> OpenMlflowClient(const StoreLocation& location);

// The Status for an MLflow error reply: a "kiln_code" field (StatusCodeName) wins when present;
// else error_code names are mapped back through
// api::MlflowErrorCode (so the mapping lives in one place), plus MLflow's own codes that kiln
// never sends. `http_status` decides when the code is unknown or the body is not MLflow's shape.
Status StatusFromMlflowError(int http_status, std::string_view body);

// Calls a search RPC page after page, concatenating the array `list_field` until there is no
// next_page_token or `max_items` (> 0) items were collected. The result has `list_field` only
// (omitted when empty, as MLflow does).
Result<Json> CallAllPages(MlflowClient& client, std::string_view method, std::string_view path,
                          Json request, const std::string& list_field, int64_t max_items,
                          int64_t page_size);

}  // namespace kiln::cli
