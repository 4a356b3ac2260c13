#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "kiln/core/bytes.h"
#include "kiln/core/file_util.h"
#include "kiln/core/ids.h"
#include "kiln/core/json.h"
#include "kiln/core/log.h"
#include "kiln/core/status.h"
#include "tests/support/temp_dir.h"

namespace kiln {
namespace {

Result<int> Half(int n) {
  if (n % 2 != 0) return InvalidArgument("odd: " + std::to_string(n));
  return n / 2;
}

Result<int> Quarter(int n) {
  KILN_ASSIGN_OR_RETURN(int half, Half(n));
  KILN_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

TEST(StatusTest, ResultCarriesValueOrStatus) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> bad = Quarter(6);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "odd: 3");
  EXPECT_EQ(bad.status().ToString(), "INVALID_ARGUMENT: odd: 3");
  EXPECT_EQ(bad.status().WithContext("run 7").message(), "run 7: odd: 3");
}

// CountByte against std::count: every length around the word and block sizes, every offset
// into a word, the byte at each position of a word, bytes with the high bit set (the word trick
// must not flag their neighbours), and runs long enough that a block's counters fill up.
TEST(BytesTest, CountByteMatchesAByteLoop) {
  std::mt19937_64 random(7);
  const std::string alphabet = std::string("\n\",.0129") + '\x80' + '\xff' + '\x7f' + '\x00';
  for (size_t size : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 2039, 2040, 2041, 5000, 70000}) {
    std::string text(size + 8, '\0');
    for (char& c : text) c = alphabet[random() % alphabet.size()];
    for (size_t offset = 0; offset < 8; ++offset) {
      std::string_view view(text.data() + offset, size);
      for (char byte : alphabet) {
        const auto expected = static_cast<size_t>(std::count(view.begin(), view.end(), byte));
        EXPECT_EQ(CountByte(view, byte), expected)
            << "size " << size << ", offset " << offset << ", byte " << static_cast<int>(byte);
      }
    }
  }
  for (size_t at = 0; at < 8; ++at) {
    std::string word(8, '\x0a' + 1);
    word[at] = '\n';
    EXPECT_EQ(CountByte(word, '\n'), 1u) << at;
  }
  // Every byte a match, over several blocks of 255 words: each counter reaches its limit.
  EXPECT_EQ(CountByte(std::string(8 * 255 * 3 + 5, '"'), '"'), 8u * 255 * 3 + 5);
  EXPECT_EQ(CountByte(std::string(100000, '\xff'), '\xfe'), 0u);
  EXPECT_EQ(CountByte(std::string(100000, '\xfe'), '\xff'), 0u);
}

TEST(JsonTest, MalformedJsonNamesLineAndColumn) {
  Result<Json> parsed = ParseJson("{\n  \"a\": 1,\n  \"b\": tru\n}");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("line 3"), std::string::npos)
      << parsed.status().message();
  EXPECT_NE(parsed.status().message().find("column"), std::string::npos);
}

TEST(JsonTest, NumberTooLargeForADoubleIsAnErrorNotACrash) {
  Result<Json> parsed = ParseJson(R"({"value": 8888888888888888888888888888888e8888888888})");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("number overflow"), std::string::npos)
      << parsed.status().message();
}

TEST(JsonTest, FieldReadersAcceptProtobufJsonForms) {
  Json object = Json::parse(R"({"n": "12", "m": 13, "x": "NaN", "y": 1.5, "s": 4, "b": true})");
  EXPECT_EQ(**GetInt64(object, "n"), 12);
  EXPECT_EQ(**GetInt64(object, "m"), 13);
  EXPECT_TRUE(std::isnan(**GetDouble(object, "x")));
  EXPECT_EQ(**GetDouble(object, "y"), 1.5);
  EXPECT_EQ(**GetString(object, "s"), "4");
  EXPECT_TRUE(**GetBool(object, "b"));
  EXPECT_FALSE(GetInt64(object, "missing")->has_value());
}

TEST(JsonTest, WrongTypeNamesTheField) {
  Json object = Json::parse(R"({"step": "abc", "key": [1]})");
  Result<std::optional<int64_t>> step = GetInt64(object, "step");
  ASSERT_FALSE(step.ok());
  EXPECT_NE(step.status().message().find("'step'"), std::string::npos);
  EXPECT_FALSE(GetString(object, "key").ok());
}

TEST(JsonTest, NonFiniteDoublesUseMlflowStrings) {
  EXPECT_EQ(DoubleToJson(std::nan("")).dump(), "\"NaN\"");
  EXPECT_EQ(DoubleToJson(HUGE_VAL).dump(), "\"Infinity\"");
  EXPECT_EQ(DoubleToJson(0.25).dump(), "0.25");
}

TEST(IdsTest, NewIdsAreDistinctValidRunIds) {
  std::string a = NewId(), b = NewId();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(IsValidRunId(a));
  EXPECT_FALSE(IsValidRunId(""));
  EXPECT_FALSE(IsValidRunId("../etc"));
  EXPECT_FALSE(IsValidRunId("-abc"));
}

TEST(IdsTest, Base64RoundTripsMlflowPageToken) {
  EXPECT_EQ(Base64Encode("{\"offset\": 2}"), "eyJvZmZzZXQiOiAyfQ==");
  std::string decoded;
  ASSERT_TRUE(Base64Decode("eyJvZmZzZXQiOiAyfQ==", &decoded));
  EXPECT_EQ(decoded, "{\"offset\": 2}");
  EXPECT_FALSE(Base64Decode("not base64!", &decoded));
}

TEST(LogTest, RedactUriMasksPasswords) {
  EXPECT_EQ(RedactUri("postgresql://kiln:s3cret@db:5432/kiln"), "postgresql://kiln:***@db:5432/kiln");
  EXPECT_EQ(RedactUri("host=db password=s3cret user=k"), "host=db password=*** user=k");
  EXPECT_EQ(RedactUri("sqlite:///tmp/kiln.db"), "sqlite:///tmp/kiln.db");
}

TEST(FileUtilTest, AtomicWriteReplacesWholeFile) {
  testing::TempDir dir;
  std::string path = dir.Join("a/b/file.txt");
  ASSERT_TRUE(MakeDirs(dir.Join("a/b")).ok());
  ASSERT_TRUE(WriteFileAtomic(path, "first").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "second version").ok());
  EXPECT_EQ(*ReadFile(path), "second version");
  EXPECT_EQ(ReadFile(dir.Join("missing")).status().code(), StatusCode::kNotFound);
}

TEST(FileUtilTest, SyncFileSyncsAFileAndSaysWhenThereIsNone) {
  testing::TempDir dir;
  std::string path = dir.Join("file.txt");
  ASSERT_TRUE(WriteFileAtomic(path, "bytes").ok());
  EXPECT_TRUE(SyncFile(path).ok());
  Status missing = SyncFile(dir.Join("missing"));
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("missing"), std::string::npos) << missing.ToString();
  EXPECT_EQ(SyncFile(dir.Join("missing/below")).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace kiln
