// Decoding MLflow requests into a JSON object, whatever the method.
//
// GET: every query parameter becomes a field; a repeated key, or MLflow 2.x's `key[0]=v` form,
// becomes an array. POST/PATCH/PUT/DELETE: the body must be a JSON object and Content-Type must
// be application/json (MLflow answers 400 "Content-Type must be one of ['application/json']"
// otherwise); without a body the request has no fields, whatever its query string says, as on
// MLflow (a DELETE with its fields in the query gets "Missing value for required parameter").
#pragma once

#include <string>
#include <string_view>

#include "kiln/core/json.h"
#include "kiln/core/status.h"
#include "kiln/http/message.h"

namespace kiln::api {

Result<Json> DecodeRequest(const http::Request& request);

// A required string field: missing or empty gives MLflow's
// "Missing value for required parameter '<field>'. See the API docs for more information about
// request parameters."
Result<std::string> RequireString(const Json& object, std::string_view field);

// Writes `body` as the 200 JSON reply.
void WriteJson(const Json& body, http::Response& response);

}  // namespace kiln::api
