// Time, injectable so tests can pin it.
#pragma once

#include <cstdint>

namespace kiln {

// Thread-safe. The default clock reads the system's real time.
class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (MLflow's timestamps).
  virtual int64_t NowMillis() const = 0;
  // Monotonic nanoseconds, for durations only.
  virtual int64_t MonotonicNanos() const = 0;

  // The process-wide real clock; never null, lives forever.
  static Clock* Real();
};

}  // namespace kiln
