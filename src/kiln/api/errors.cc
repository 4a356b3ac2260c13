#include "kiln/api/errors.h"

#include "kiln/core/json.h"

namespace kiln::api {

std::string_view MlflowErrorCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "INVALID_PARAMETER_VALUE";
    case StatusCode::kNotFound: return "RESOURCE_DOES_NOT_EXIST";
    case StatusCode::kAlreadyExists: return "RESOURCE_ALREADY_EXISTS";
    case StatusCode::kConflict: return "RESOURCE_CONFLICT";
    case StatusCode::kFailedPrecondition: return "INVALID_STATE";
    case StatusCode::kValidationFailed: return "INVALID_PARAMETER_VALUE";
    case StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case StatusCode::kUnavailable: return "TEMPORARILY_UNAVAILABLE";
    case StatusCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case StatusCode::kUnauthenticated: return "UNAUTHENTICATED";
    case StatusCode::kPermissionDenied: return "PERMISSION_DENIED";
    case StatusCode::kNotImplemented: return "NOT_IMPLEMENTED";
    case StatusCode::kIoError: return "INTERNAL_ERROR";
    case StatusCode::kInternal: return "INTERNAL_ERROR";
  }
  return "INTERNAL_ERROR";
}

int HttpStatus(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 400;  // MLflow answers 400, not 409, for taken names
    case StatusCode::kConflict: return 409;
    // A request that the current state does not allow is the client's to fix (restore the run
    // first): a 400, so clients do not retry it as they would a 500.
    case StatusCode::kFailedPrecondition: return 400;
    case StatusCode::kValidationFailed: return 400;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotImplemented: return 501;
    case StatusCode::kIoError: return 500;
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

void WriteError(const Status& status, http::Response& response) {
  response.status = HttpStatus(status.code());
  response.content_type = "application/json";
  Json body = {{"error_code", std::string(MlflowErrorCode(status.code()))},
               {"message", status.message()}};
  response.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (status.code() == StatusCode::kUnavailable) response.SetHeader("Retry-After", "1");
}

}  // namespace kiln::api
