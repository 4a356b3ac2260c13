// The one place where a Status becomes an HTTP reply: MLflow's error shape
// {"error_code": "<name>", "message": "..."} with the HTTP status MLflow uses for that code.
// A client's mistake is always a 4xx: MLflow clients retry 5xx for minutes.
#pragma once

#include <string_view>

#include "kiln/core/status.h"
#include "kiln/http/message.h"

namespace kiln::api {

// INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, RESOURCE_ALREADY_EXISTS, ...
std::string_view MlflowErrorCode(StatusCode code);
int HttpStatus(StatusCode code);

// Fills `response` with the error reply for a non-ok `status`.
void WriteError(const Status& status, http::Response& response);

}  // namespace kiln::api
