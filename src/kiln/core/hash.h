// Hashing: SHA-256 (OpenSSL, which uses the CPU's SHA instructions) for content addresses, and
// XXH3 for cheap change detection (row hashes in diffs) where collisions cost nothing durable.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace kiln {

// A SHA-256 digest. Content addresses are written as 64 lowercase hex digits.
struct Digest {
  std::array<uint8_t, 32> bytes{};

  std::string Hex() const;
  // Parses 64 hex digits; false if `hex` is anything else.
  static bool FromHex(std::string_view hex, Digest* out);
  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest&, const Digest&) = default;
};

// Incremental SHA-256. Not thread-safe; one per stream.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  Digest Finish();  // the hasher may not be updated afterwards

 private:
  struct State;
  std::unique_ptr<State> state_;
};

Digest Sha256Of(std::string_view data);
std::string Sha256Hex(std::string_view data);

// XXH3 64-bit.
uint64_t Xxh3(std::string_view data);

// True if `text` is 64 lowercase hex digits (a content address or a commit id).
bool IsHexDigest(std::string_view text);

}  // namespace kiln
