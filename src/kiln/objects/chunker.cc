#include "kiln/objects/chunker.h"

#include <array>
#include <bit>
#include <cassert>
#include <cstring>

#include "kiln/core/bytes.h"

// How a cut is chosen (all of it depends only on the chunk's bytes and the quote state at its
// start, never on how the caller's buffer grew, so feeding the stream in any pieces gives the
// same chunks):
//
//   1. Candidate: the first position c in [min_size, max_size] where the gear hash of the bytes
//      just before c has its top log2(average_size) bits zero. The gear hash of position i is
//      sum over j <= i of kGear[byte j] << (i - j), so it forgets a byte after 64 steps; hashing
//      starts 64 bytes before min_size (the first min_size bytes are skipped, which is where
//      most of the speed comes from) so candidates depend only on the 64 bytes before them.
//   2. Row end: the cut moves forward from c to just after the first row end (kLines: '\n';
//      kCsv: '\n' outside double quotes). If that lies beyond max_size, or there is no candidate,
//      the cut is the last row end in [min_size, max_size]; if there is none there either, the
//      chunk's last row is longer than the window and the cut is that row's end.
//
// Quote state: a '"' toggles it, which also handles RFC 4180's "" escape (two toggles).

namespace kiln::objects {
namespace {

constexpr uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The gear table is part of the chunk format: changing the seed changes every cut, so every
// stored table would stop deduplicating against new commits. Never change it.
constexpr std::array<uint64_t, 256> MakeGearTable() {
  std::array<uint64_t, 256> table{};
  uint64_t state = 0x6b696c6e63646331ULL;  // "kilncdc1"
  for (auto& entry : table) entry = SplitMix64(state);
  return table;
}

constexpr std::array<uint64_t, 256> kGear = MakeGearTable();

constexpr size_t kGearWindow = 64;
constexpr size_t kNotFound = static_cast<size_t>(-1);

// Number of '"' in [begin, end), mod 2.
bool QuoteParity(const char* begin, const char* end) {
  return (CountByte(std::string_view(begin, static_cast<size_t>(end - begin)), '"') & 1) != 0;
}

// Index of the first '\n' in data[from, to) that is outside quotes, given the quote state at
// `from`; kNotFound if none. Jumps between quotes and newlines with memchr.
size_t FirstUnquotedNewline(std::string_view data, size_t from, size_t to, bool in_quotes) {
  const char* base = data.data();
  size_t pos = from;
  while (pos < to) {
    if (in_quotes) {
      const void* quote = std::memchr(base + pos, '"', to - pos);
      if (quote == nullptr) return kNotFound;
      pos = static_cast<size_t>(static_cast<const char*>(quote) - base) + 1;
      in_quotes = false;
      continue;
    }
    const void* newline = std::memchr(base + pos, '\n', to - pos);
    size_t newline_at =
        newline == nullptr ? to : static_cast<size_t>(static_cast<const char*>(newline) - base);
    const void* quote = std::memchr(base + pos, '"', newline_at - pos);
    if (quote == nullptr) return newline == nullptr ? kNotFound : newline_at;
    pos = static_cast<size_t>(static_cast<const char*>(quote) - base) + 1;
    in_quotes = true;
  }
  return kNotFound;
}

// Index of the last '\n' in data[from, to) outside quotes (quote state given at `from`).
size_t LastUnquotedNewline(std::string_view data, size_t from, size_t to, bool in_quotes) {
  size_t last = kNotFound;
  while (from < to) {
    size_t newline = FirstUnquotedNewline(data, from, to, in_quotes);
    if (newline == kNotFound) break;
    last = newline;
    in_quotes = false;  // a row end is outside quotes by definition
    from = newline + 1;
  }
  return last;
}

// The first position p in (pos, window] where the gear hash of bytes [.., p) has no bit of
// `mask` set; kNotFound if none. `hash` covers the bytes before `pos`. Unrolled so that the
// loop costs about one cycle a byte: the hash's dependency chain is a single lea per byte.
size_t FindCandidate(const unsigned char* bytes, size_t pos, size_t window, uint64_t hash,
                     uint64_t mask) {
  // Eight steps per bounds check (the compiler unrolls the inner loop).
  for (; pos + 8 <= window; pos += 8) {
    for (size_t k = 0; k < 8; ++k) {
      hash = (hash << 1) + kGear[bytes[pos + k]];
      if ((hash & mask) == 0) return pos + k + 1;
    }
  }
  for (; pos < window; ++pos) {
    hash = (hash << 1) + kGear[bytes[pos]];
    if ((hash & mask) == 0) return pos + 1;
  }
  return kNotFound;
}

size_t LastNewline(std::string_view data, size_t from, size_t to) {
  if (to <= from) return kNotFound;
  const void* newline = ::memrchr(data.data() + from, '\n', to - from);
  return newline == nullptr ? kNotFound
                            : static_cast<size_t>(static_cast<const char*>(newline) - data.data());
}

size_t FirstNewline(std::string_view data, size_t from, size_t to) {
  if (to <= from) return kNotFound;
  const void* newline = std::memchr(data.data() + from, '\n', to - from);
  return newline == nullptr ? kNotFound
                            : static_cast<size_t>(static_cast<const char*>(newline) - data.data());
}

}  // namespace

Chunker::Chunker(RowBoundary boundary, ChunkerOptions options)
    : boundary_(boundary), options_(options) {
  assert(std::has_single_bit(options_.average_size));
  assert(options_.min_size <= options_.max_size && options_.max_size > 0);
  int bits = std::countr_zero(options_.average_size);
  // The top bits: a gear hash's low bits depend only on the last few bytes.
  mask_ = bits == 0 ? 0 : (~uint64_t{0}) << (64 - bits);
}

size_t Chunker::NextCut(std::string_view data, bool at_eof) {
  const size_t size = data.size();
  if (size == 0) return 0;
  const size_t min_size = options_.min_size;
  const size_t max_size = options_.max_size;
  // Below max_size bytes a cut might still move (a later candidate, a later row end), so wait
  // for the window to fill; this also keeps the work linear when a caller grows its buffer in
  // small steps.
  if (!at_eof && size < max_size) return 0;
  const size_t window = size < max_size ? size : max_size;

  // Gear hash over [min_size - 64, window); candidates from min_size on.
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  size_t candidate = kNotFound;
  if (min_size < window) {
    uint64_t hash = 0;
    size_t pos = min_size > kGearWindow ? min_size - kGearWindow : 0;
    for (; pos < min_size; ++pos) hash = (hash << 1) + kGear[bytes[pos]];
    if (min_size == 0) {
      // A cut at 0 would be an empty chunk.
      hash = (hash << 1) + kGear[bytes[0]];
      if ((hash & mask_) == 0) candidate = 1;
      pos = 1;
    } else if ((hash & mask_) == 0) {
      candidate = min_size;
    }
    if (candidate == kNotFound) candidate = FindCandidate(bytes, pos, window, hash, mask_);
  }

  if (boundary_ == RowBoundary::kBytes) {
    if (candidate != kNotFound) return candidate;
    return window;  // max_size, or the tail at eof
  }

  const bool csv = boundary_ == RowBoundary::kCsv;
  const bool start_quotes = in_quotes_;
  auto finish = [&](size_t cut) {
    // Every cut but the eof tail is just after an unquoted '\n', so the next chunk starts
    // outside quotes; the tail's state is whatever its quotes leave.
    if (csv) {
      in_quotes_ =
          at_eof && cut == size && start_quotes != QuoteParity(data.data(), data.data() + cut);
    }
    return cut;
  };

  // 2a. Extend the candidate to its row end, if that stays within the window.
  if (candidate != kNotFound) {
    size_t from = candidate - 1;  // a '\n' just before the candidate ends the row there
    size_t newline;
    if (csv) {
      bool quotes = start_quotes != QuoteParity(data.data(), data.data() + from);
      newline = FirstUnquotedNewline(data, from, window, quotes);
    } else {
      newline = FirstNewline(data, from, window);
    }
    if (newline != kNotFound) return finish(newline + 1);
  }
  if (size < max_size) return finish(size);  // at eof: the tail is one chunk

  // 2b. The last row end in [min_size, max_size].
  size_t scan_from = min_size > 0 ? min_size - 1 : 0;
  size_t last;
  if (csv) {
    bool quotes = start_quotes != QuoteParity(data.data(), data.data() + scan_from);
    last = LastUnquotedNewline(data, scan_from, max_size, quotes);
  } else {
    last = LastNewline(data, scan_from, max_size);
  }
  if (last != kNotFound) return finish(last + 1);

  // 2c. A row longer than the window: the chunk ends at its end.
  size_t newline;
  if (csv) {
    bool quotes = start_quotes != QuoteParity(data.data(), data.data() + max_size);
    newline = FirstUnquotedNewline(data, max_size, size, quotes);
  } else {
    newline = FirstNewline(data, max_size, size);
  }
  if (newline != kNotFound) return finish(newline + 1);
  return at_eof ? finish(size) : 0;
}

}  // namespace kiln::objects
