// Packed 4-bit symbols: bytes drawn from at most 16 distinct values (numeric CSV: digits, '.',
// ',', '-', '\n', 'e') stored two per byte. Exactly 2.0x, at 2-3 GB/s each way on one core of
// this 2-core VM (1.25 MB numeric CSV chunks), where zstd's Huffman coding of the same literals
// reaches about 2.2x at 0.2-0.4 GB/s.
//
//   packed  := count(1) | symbols(16) | codes(ceil(n / 2)) | checksum(8)
//   count   := the number of distinct byte values, 0..16 (0 only for n = 0)
//   symbols := those values, each once, in order of first appearance in the raw bytes, then
//              zeros up to 16 bytes; a value's code is its position here (0..count-1). The table
//              has a fixed size so that the codes can be written before the count is known.
//   codes   := raw byte 2i's code in the low nibble of byte i, raw byte 2i+1's in its high
//              nibble; for odd n the last byte's high nibble is 0
//   checksum:= XXH3-64 of the n raw bytes with XXH3-64 of count and symbols (17 bytes) as its
//              seed, little-endian: it covers the table too, so every changed byte is caught
//
// n, the raw size, is not stored: the caller records it (the object header's raw_size) and
// passes it to UnpackNibbles, which checks the packed length against it before allocating.
// Thread safety: both functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kiln/core/status.h"

namespace kiln::objects {

inline constexpr size_t kMaxNibbleSymbols = 16;

// The packed size of `raw_size` bytes (whatever symbols they use).
constexpr uint64_t PackedNibblesSize(uint64_t raw_size) {
  return 1 + kMaxNibbleSymbols + (raw_size + 1) / 2 + 8;
}

// `raw` packed as above, or nullopt if it uses more than 16 distinct byte values (found as soon
// as the 17th appears). The same bytes always pack to the same result.
std::optional<std::string> PackNibbles(std::string_view raw);

// The `raw_size` bytes that `packed` holds. InvalidArgument, saying what is wrong, if `packed`
// is malformed (length that disagrees with raw_size, count above 16, repeated symbols, nonzero
// padding) or its checksum does not match what it decodes to. Allocates nothing
// before the length check, so at most twice packed.size().
Result<std::string> UnpackNibbles(std::string_view packed, uint64_t raw_size);

}  // namespace kiln::objects
