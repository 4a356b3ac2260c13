#include "kiln/cli/exit_codes.h"

#include <gtest/gtest.h>

namespace kiln::cli {
namespace {

TEST(ExitCodeTest, MapsEveryStatusCodeAsTheContractSays) {
  struct Case {
    StatusCode status;
    int exit_code;
  };
  const Case cases[] = {
      {StatusCode::kOk, 0},
      {StatusCode::kInvalidArgument, 2},
      {StatusCode::kNotFound, 3},
      {StatusCode::kAlreadyExists, 4},
      {StatusCode::kConflict, 4},
      {StatusCode::kValidationFailed, 5},
      {StatusCode::kFailedPrecondition, 1},
      {StatusCode::kResourceExhausted, 1},
      {StatusCode::kUnavailable, 1},
      {StatusCode::kDeadlineExceeded, 1},
      {StatusCode::kUnauthenticated, 1},
      {StatusCode::kPermissionDenied, 1},
      {StatusCode::kNotImplemented, 1},
      {StatusCode::kIoError, 1},
      {StatusCode::kInternal, 1},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ExitCodeValue(ExitCodeFor(c.status)), c.exit_code) << StatusCodeName(c.status);
  }
}

}  // namespace
}  // namespace kiln::cli
