// Checks for libFuzzer targets: a failed property aborts (libFuzzer then keeps the input), and
// the message starts with "ERROR" so scripts/run-fuzzers.sh shows it.
#pragma once

#include <cstdio>
#include <cstdlib>

// Aborts with the failed condition and its line.
#define REQUIRE(condition)                                                                \
  do {                                                                                    \
    if (!(condition)) {                                                                   \
      std::fprintf(stderr, "ERROR: check failed at line %d: %s\n", __LINE__, #condition); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)
