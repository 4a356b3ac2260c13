// A Clock that tests move by hand, so times in assertions are exact. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

#include "kiln/core/clock.h"

namespace kiln::testing {

class ManualClock final : public Clock {
 public:
  int64_t NowMillis() const override { return now_.load(); }
  int64_t MonotonicNanos() const override { return now_.load() * 1'000'000; }
  void Set(int64_t millis) { now_.store(millis); }

 private:
  std::atomic<int64_t> now_{1'700'000'000'000};
};

}  // namespace kiln::testing
