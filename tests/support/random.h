// Deterministic pseudo-random numbers for tests: SplitMix64, so that a failing case can be
// replayed from its seed on any platform (std::mt19937's distributions are not portable).
#pragma once

#include <cstdint>

namespace kiln::testing {

// The next SplitMix64 output; advances `state`.
inline uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace kiln::testing
