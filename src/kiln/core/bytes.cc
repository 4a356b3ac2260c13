#include "kiln/core/bytes.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace kiln {

size_t CountByte(std::string_view bytes, char byte) {
  constexpr uint64_t kEveryByte = 0x0101010101010101ULL;
  constexpr uint64_t kLow7 = kEveryByte * 0x7F;
  constexpr uint64_t kEvenBytes = 0x00FF00FF00FF00FFULL;
  // Up to 255 words add into one word of byte-wide counters before they could overflow.
  constexpr size_t kWordsPerBlock = 255;
  const uint64_t pattern = kEveryByte * static_cast<unsigned char>(byte);
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  size_t count = 0;
  while (end - p >= 8) {
    const size_t words = std::min(static_cast<size_t>(end - p) / 8, kWordsPerBlock);
    const char* const block_end = p + 8 * words;
    uint64_t counters = 0;
    for (; p != block_end; p += 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      const uint64_t x = word ^ pattern;  // a zero byte where `byte` is
      // Bit 7 of each byte that is zero, exactly: adding 0x7F to a byte's low seven bits never
      // carries into the next byte. Shifted down, it counts one in that byte's counter.
      counters += (~(((x & kLow7) + kLow7) | x) & ~kLow7) >> 7;
    }
    // Eight counters of up to 255 into four of up to 510, then their sum (at most 2,040).
    const uint64_t pairs = (counters & kEvenBytes) + ((counters >> 8) & kEvenBytes);
    count += static_cast<size_t>((pairs * 0x0001000100010001ULL) >> 48);
  }
  for (; p != end; ++p) count += static_cast<size_t>(*p == byte);
  return count;
}

}  // namespace kiln
