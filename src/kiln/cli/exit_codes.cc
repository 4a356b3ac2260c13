#include "kiln/cli/exit_codes.h"

namespace kiln::cli {

ExitCode ExitCodeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return ExitCode::kOk;
    case StatusCode::kInvalidArgument: return ExitCode::kUsage;
    case StatusCode::kNotFound: return ExitCode::kNotFound;
    case StatusCode::kAlreadyExists:
    case StatusCode::kConflict: return ExitCode::kConflict;
    case StatusCode::kValidationFailed: return ExitCode::kValidationFailed;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kUnauthenticated:
    case StatusCode::kPermissionDenied:
    case StatusCode::kNotImplemented:
    case StatusCode::kIoError:
    case StatusCode::kInternal: return ExitCode::kFailure;
  }
  return ExitCode::kFailure;
}

}  // namespace kiln::cli
