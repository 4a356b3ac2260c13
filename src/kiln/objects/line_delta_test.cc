#include "kiln/objects/line_delta.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kiln::objects {
namespace {

std::string Varint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

// Lines "row <i>,<i*7>\n" for i in [0, count).
std::string Rows(int count) {
  std::string out;
  for (int i = 0; i < count; ++i)
    out += "row " + std::to_string(i) + "," + std::to_string(i * 7) + "\n";
  return out;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(LineDeltaTest, EncodeThenDecodeRoundTrips) {
  const std::string base = Rows(200);
  struct Case {
    const char* name;
    std::string raw;
  };
  std::string replaced = base;
  replaced.replace(replaced.find("row 50,"), 9, "row 50,EDITED");
  std::string deleted = base;
  deleted.erase(deleted.find("row 10,"), deleted.find("row 20,") - deleted.find("row 10,"));
  const Case cases[] = {
      {"identical", base},
      {"one line replaced", replaced},
      {"ten lines deleted", deleted},
      {"a line inserted at the start", "new,line\n" + base},
      {"lines appended", base + "row 200,1400\nrow 201,1407\n"},
      {"last line without newline", base + "row 200"},
      {"empty", ""},
      {"lines reversed in two halves",
       base.substr(base.find("row 100,")) + base.substr(0, base.find("row 100,"))},
  };
  for (const Case& c : cases) {
    std::optional<std::string> body = EncodeLineDelta(base, c.raw);
    ASSERT_TRUE(body.has_value()) << c.name;
    EXPECT_LE(body->size(), MaxLineDeltaBodySize(c.raw.size())) << c.name;
    Result<std::string> decoded = DecodeLineDelta(base, *body, c.raw.size());
    ASSERT_TRUE(decoded.ok()) << c.name << ": " << decoded.status().ToString();
    EXPECT_TRUE(*decoded == c.raw) << c.name;
    // Whole runs are single copies: the body is far smaller than the raw text.
    if (c.raw.size() > 1000) {
      EXPECT_LT(body->size(), 100u) << c.name;
    }
  }
}

TEST(LineDeltaTest, EncodeGivesUpWhenLessThanHalfIsCopied) {
  const std::string base = Rows(100);
  EXPECT_FALSE(EncodeLineDelta(base, "nothing,in\ncommon,with\nthe,base\n").has_value());
  EXPECT_FALSE(EncodeLineDelta("", base).has_value());
  std::string mostly_new = base.substr(0, base.find("row 3,"));
  for (int i = 0; i < 100; ++i) mostly_new += "other " + std::to_string(i) + "\n";
  EXPECT_FALSE(EncodeLineDelta(base, mostly_new).has_value());
  // Exactly copied lines pay; near-copies do not (a zstd delta finds those).
  std::string shifted = base;
  for (char& c : shifted) {
    if (c == ',') c = ';';
  }
  EXPECT_FALSE(EncodeLineDelta(base, shifted).has_value());
  // A large rewritten table (every row gains a column) gives up after its first sixteenth.
  const std::string large = Rows(20000);
  std::string rewritten;
  for (size_t start = 0; start < large.size();) {
    size_t end = large.find('\n', start);
    rewritten += large.substr(start, end - start) + ",x\n";
    start = end + 1;
  }
  EXPECT_FALSE(EncodeLineDelta(large, rewritten).has_value());
}

TEST(LineDeltaTest, ManyTinyDuplicateLinesStayWithinTheBodyBound) {
  const std::string base(10000, '\n');
  std::string raw;
  for (int i = 0; i < 3000; ++i) raw += i % 3 == 0 ? "x\n" : "\n";
  std::optional<std::string> body = EncodeLineDelta(base, raw);
  if (body.has_value()) {
    EXPECT_LE(body->size(), MaxLineDeltaBodySize(raw.size()));
    Result<std::string> decoded = DecodeLineDelta(base, *body, raw.size());
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(*decoded, raw);
  }
}

TEST(LineDeltaTest, MalformedBodiesAreInternalErrorsSayingWhatIsWrong) {
  const std::string base = "abc\ndef\n";  // 8 bytes
  struct Case {
    const char* name;
    std::string body;
    uint64_t raw_size;
    const char* message_part;
  };
  const Case cases[] = {
      {"empty body", "", 0, "truncated literal size"},
      {"truncated literal size", "\x80", 0, "truncated literal size"},
      {"literal section overruns the body", Varint(5) + "ab", 2, "overruns the body"},
      {"truncated sequence", Varint(0) + Varint(0) + "\x84", 4, "truncated"},
      {"copy without its offset", Varint(0) + Varint(0) + Varint(4), 4, "truncated"},
      {"eleven-byte varint", Varint(0) + std::string(10, '\xff') + "\x01", 4, "varint"},
      {"varint over 64 bits", Varint(0) + std::string(9, '\xff') + "\x02", 4, "varint"},
      {"empty sequence", Varint(0) + Varint(0) + Varint(0), 0, "empty sequence"},
      {"literal overruns the literals", Varint(2) + "xy" + Varint(3) + Varint(0), 3, "overruns"},
      {"copy past the base's end", Varint(0) + Varint(0) + Varint(9) + Varint(0), 9, "outside"},
      {"copy starting past the base", Varint(0) + Varint(0) + Varint(1) + Varint(18), 1, "outside"},
      {"copy before the base's start", Varint(0) + Varint(0) + Varint(1) + Varint(1), 1, "outside"},
      {"most negative offset", Varint(0) + Varint(0) + Varint(1) + Varint(~uint64_t{0}), 1,
       "outside"},
      {"huge copy length", Varint(0) + Varint(0) + Varint(~uint64_t{0}) + Varint(0), 4,
       "more than"},
      {"output longer than raw size", Varint(0) + Varint(0) + Varint(8) + Varint(0), 7,
       "more than"},
      {"output shorter than raw size", Varint(0) + Varint(0) + Varint(4) + Varint(0), 8,
       "header says 8"},
      {"raw size far beyond the output", Varint(0) + Varint(0) + Varint(4) + Varint(0),
       uint64_t{1} << 30, "header says 1073741824"},  // checked before anything is allocated
      {"unused literal bytes", Varint(3) + "xyz" + Varint(2) + Varint(0), 2, "unused"},
      {"body longer than its bound", Varint(0) + std::string(70, '\0'), 1, "too long"},
  };
  for (const Case& c : cases) {
    Result<std::string> decoded = DecodeLineDelta(base, c.body, c.raw_size);
    ASSERT_FALSE(decoded.ok()) << c.name;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInternal) << c.name;
    EXPECT_TRUE(Contains(decoded.status().message(), c.message_part))
        << c.name << ": " << decoded.status().message();
  }
}

TEST(LineDeltaTest, HandWrittenBodyDecodes) {
  // "de" from literals, then "abc\n" copied from 0, then "def\n" resumed right after it.
  const std::string base = "abc\ndef\n";
  std::string body =
      Varint(2) + "de" + Varint(2) + Varint(4) + Varint(0) + Varint(0) + Varint(4) + Varint(0);
  Result<std::string> decoded = DecodeLineDelta(base, body, 10);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, "deabc\ndef\n");
}

}  // namespace
}  // namespace kiln::objects
