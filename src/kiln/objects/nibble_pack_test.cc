#include "kiln/objects/nibble_pack.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "tests/support/random.h"

namespace kiln::objects {
namespace {

using kiln::testing::NextRandom;

// `size` bytes drawn at random from `alphabet`.
std::string RandomFrom(std::string_view alphabet, size_t size, uint64_t seed) {
  std::string out(size, '\0');
  for (char& c : out) c = alphabet[NextRandom(seed) % alphabet.size()];
  return out;
}

// 16 byte values spread over the whole range, high bits included.
const std::string kSixteen = {'\x00', '\x01', '0',    '9',    ',',    '.',    '\n', '-',
                              'e',    'E',    '\x7f', '\x80', '\xfe', '\xff', ' ',  '+'};

void ExpectRoundTrip(const std::string& raw, const std::string& what) {
  std::optional<std::string> packed = PackNibbles(raw);
  ASSERT_TRUE(packed.has_value()) << what;
  EXPECT_EQ(packed->size(), PackedNibblesSize(raw.size())) << what;
  Result<std::string> unpacked = UnpackNibbles(*packed, raw.size());
  ASSERT_TRUE(unpacked.ok()) << what << ": " << unpacked.status().ToString();
  EXPECT_TRUE(*unpacked == raw) << what;
}

TEST(NibblePackTest, RoundTripsShortOddAndFullAlphabetInputs) {
  struct Case {
    const char* name;
    std::string raw;
  };
  const Case cases[] = {
      {"empty", ""},
      {"one byte", "7"},
      {"one zero byte", std::string(1, '\0')},
      {"odd length", "12.5,-3e4\n"},
      {"exactly 16 symbols, each once", kSixteen},
      {"16 symbols, long", RandomFrom(kSixteen, 100001, 1)},
      {"one symbol repeated", std::string(4097, '0')},
      {"numeric csv", "0,822.465,28.519,-1e-3\n1,208.074,46.835,664.444\n"},
  };
  for (const Case& c : cases) ExpectRoundTrip(c.raw, c.name);
}

TEST(NibblePackTest, RoundTripsEveryLengthUpTo300) {
  for (size_t size = 0; size <= 300; ++size) {
    ExpectRoundTrip(RandomFrom(kSixteen, size, 100 + size), "length " + std::to_string(size));
  }
}

TEST(NibblePackTest, RefusesASeventeenthSymbolWhereverItAppears) {
  const std::string seventeen = kSixteen + "x";
  // Where the 17th value first appears: in the fast blocks, at a block edge, in the tail.
  for (size_t at : {size_t{0}, size_t{15}, size_t{16}, size_t{1000}, size_t{4095}, size_t{4096}}) {
    std::string raw = RandomFrom(kSixteen, 4097, at);
    raw.replace(0, kSixteen.size(), kSixteen);  // all 16 present
    raw[std::max(at, kSixteen.size())] = 'x';
    EXPECT_FALSE(PackNibbles(raw).has_value()) << "17th value at " << at;
  }
  EXPECT_FALSE(PackNibbles(seventeen).has_value());
  EXPECT_FALSE(PackNibbles(RandomFrom(seventeen, 300, 7)).has_value());
}

TEST(NibblePackTest, PacksToHalfPlusTableAndChecksum) {
  EXPECT_EQ(PackedNibblesSize(0), 25u);
  EXPECT_EQ(PackedNibblesSize(1), 26u);
  EXPECT_EQ(PackedNibblesSize(1000), 525u);
  EXPECT_EQ(PackedNibblesSize(1001), 526u);
  // The same bytes always pack alike (a content-addressed store relies on no such thing, but
  // repeated puts of one chunk should write the same file).
  std::string raw = RandomFrom("0123456789.,\n", 5000, 3);
  EXPECT_EQ(PackNibbles(raw), PackNibbles(raw));
}

TEST(NibblePackTest, MalformedPayloadsAreRefusedSayingWhy) {
  const std::string raw = RandomFrom("0123456789.,\n", 101, 4);  // odd: a padding nibble
  const std::string packed = *PackNibbles(raw);
  const size_t codes = 17;
  const size_t checksum = packed.size() - 8;
  size_t mixed = codes;  // a code byte whose two codes differ
  while ((packed[mixed] & 0x0f) == ((packed[mixed] >> 4) & 0x0f)) ++mixed;
  struct Case {
    const char* name;
    std::string packed;
    uint64_t raw_size;
    const char* message_part;
  };
  auto with = [&](size_t at, char value) {
    std::string copy = packed;
    copy[at] = value;
    return copy;
  };
  const Case cases[] = {
      {"empty", "", raw.size(), "shorter"},
      {"truncated to the table", packed.substr(0, 20), raw.size(), "shorter"},
      {"truncated by one", packed.substr(0, packed.size() - 1), raw.size(), "expected"},
      {"one byte too many", packed + "x", raw.size(), "expected"},
      {"raw size one larger", packed, raw.size() + 2, "expected"},
      {"raw size one smaller", packed, raw.size() - 2, "expected"},
      {"huge raw size", packed, uint64_t{1} << 40, "expected"},
      {"count above 16", with(0, 17), raw.size(), "exceeds 16"},
      {"count 255", with(0, '\xff'), raw.size(), "exceeds 16"},
      {"count zero", with(0, 0), raw.size(), "empty"},
      {"repeated symbol", with(2, packed[1]), raw.size(), "repeats"},
      {"nonzero table padding", with(16, 'x'), raw.size(), "padding"},
      {"nonzero padding nibble", with(checksum - 1, static_cast<char>(packed[checksum - 1] | 0x10)),
       raw.size(), "padding nibble"},
      {"code beyond the count", with(codes + 3, '\xff'), raw.size(), "checksum"},
      {"swapped codes",
       with(mixed,
            static_cast<char>(((packed[mixed] & 0x0f) << 4) | ((packed[mixed] >> 4) & 0x0f))),
       raw.size(), "checksum"},
      {"count one higher (a symbol no code uses)", with(0, static_cast<char>(packed[0] + 1)),
       raw.size(), "checksum"},
      {"flipped checksum", with(checksum, static_cast<char>(packed[checksum] ^ 1)), raw.size(),
       "checksum"},
  };
  for (const Case& c : cases) {
    if (c.packed == packed && c.raw_size == raw.size()) {
      ADD_FAILURE() << c.name << ": the case changes nothing";
      continue;
    }
    Result<std::string> unpacked = UnpackNibbles(c.packed, c.raw_size);
    ASSERT_FALSE(unpacked.ok()) << c.name;
    EXPECT_EQ(unpacked.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(unpacked.status().message().find(c.message_part), std::string::npos)
        << c.name << ": " << unpacked.status().message();
  }
}

TEST(NibblePackTest, EverySingleByteFlipIsRefused) {
  const std::string raw = RandomFrom("0123456789.,-\n", 333, 5);
  const std::string packed = *PackNibbles(raw);
  uint64_t seed = 6;
  for (size_t at = 0; at < packed.size(); ++at) {
    std::string copy = packed;
    copy[at] = static_cast<char>(copy[at] ^ static_cast<char>(1 + NextRandom(seed) % 255));
    Result<std::string> unpacked = UnpackNibbles(copy, raw.size());
    EXPECT_FALSE(unpacked.ok()) << "byte " << at << " flipped still unpacks";
  }
}

}  // namespace
}  // namespace kiln::objects
