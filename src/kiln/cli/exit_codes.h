// The one place where a Status becomes the `kiln` command's exit code (DESIGN.md, "Contracts").
//
//   0 ok            the command did what it was asked
//   1 failure       anything not listed below (I/O, unavailable server, internal errors)
//   2 usage         the command line was wrong: CLI11 parse errors, and InvalidArgument from a
//                   layer below (a bad --filter, an invalid name), since in the CLI every such
//                   value came from the user's arguments
//   3 not found     NotFound
//   4 conflict      AlreadyExists, Conflict
//   5 validation    ValidationFailed (data broke a validation rule)
#pragma once

#include "kiln/core/status.h"

namespace kiln::cli {

enum class ExitCode : int {
  kOk = 0,
  kFailure = 1,
  kUsage = 2,
  kNotFound = 3,
  kConflict = 4,
  kValidationFailed = 5,
};

ExitCode ExitCodeFor(StatusCode code);
inline int ExitCodeValue(ExitCode code) { return static_cast<int>(code); }

}  // namespace kiln::cli
