#include "kiln/http/message.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace kiln::http {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(ParseQuery, SplitsAndDecodesPairsInOrder) {
  struct Case {
    std::string query;
    Pairs expected;
  };
  const std::vector<Case> cases = {
      {"", {}},
      {"a=1", {{"a", "1"}}},
      {"a=1&b=x%20y", {{"a", "1"}, {"b", "x y"}}},
      {"q=a+b", {{"q", "a b"}}},
      {"q=a%2Bb", {{"q", "a+b"}}},
      {"k=1&k=2", {{"k", "1"}, {"k", "2"}}},
      {"flag", {{"flag", ""}}},
      {"a=&b=2", {{"a", ""}, {"b", "2"}}},
      {"a=1&&b=2&", {{"a", "1"}, {"b", "2"}}},
      {"x=a=b", {{"x", "a=b"}}},
      {"na%6De=v", {{"name", "v"}}},
      {"filter=metrics.acc%20%3E%200.9", {{"filter", "metrics.acc > 0.9"}}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ParseQuery(c.query), c.expected) << "query: " << c.query;
  }
}

TEST(PercentDecode, DecodesEscapesAndKeepsInvalidOnesLiterally) {
  struct Case {
    std::string text;
    bool plus_is_space;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"plain", false, "plain"},
      {"a%20b", false, "a b"},
      {"a+b", false, "a+b"},
      {"a+b", true, "a b"},
      {"%41%62%2f", false, "Ab/"},
      {"100%", false, "100%"},
      {"%4", false, "%4"},
      {"%zz1", false, "%zz1"},
      {"%e2%82%ac", false, "\xe2\x82\xac"},
      {"%00x", false, std::string("\0x", 2)},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(PercentDecode(c.text, c.plus_is_space), c.expected) << "text: " << c.text;
  }
}

TEST(PercentEncode, EscapesAllButUnreservedCharacters) {
  EXPECT_EQ(PercentEncode("abcXYZ019-._~"), "abcXYZ019-._~");
  EXPECT_EQ(PercentEncode("a b/c?d=e&f"), "a%20b%2Fc%3Fd%3De%26f");
  EXPECT_EQ(PercentEncode("\xe2\x82\xac"), "%E2%82%AC");
  EXPECT_EQ(PercentDecode(PercentEncode("x+y z%"), true), "x+y z%");
}

TEST(Request, HeaderLookupIgnoresCaseAndReturnsFirstValue) {
  Request request;
  request.headers = {{"Content-Type", "application/json"}, {"X-Token", "a"}, {"x-token", "b"}};
  EXPECT_EQ(request.Header("content-type"), "application/json");
  EXPECT_EQ(request.Header("CONTENT-TYPE"), "application/json");
  EXPECT_EQ(request.Header("x-TOKEN"), "a");
  EXPECT_EQ(request.Header("missing"), "");
}

TEST(Request, QueryParamReturnsFirstValueOrNothing) {
  Request request;
  request.query = ParseQuery("a=1&a=2&empty=");
  EXPECT_EQ(request.QueryParam("a"), "1");
  EXPECT_EQ(request.QueryParam("empty"), "");
  EXPECT_EQ(request.QueryParam("missing"), std::nullopt);
}

TEST(Request, QueryParamsCollectsRepeatedAndIndexedForms) {
  Request request;
  request.query = ParseQuery(
      "ids=a&ids%5B0%5D=b&ids[1]=c&idsx=no&ids[]=no&ids[x]=no&other[0]=no&ids=d");
  EXPECT_EQ(request.QueryParams("ids"), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(request.QueryParams("missing"), std::vector<std::string>{});
}

}  // namespace
}  // namespace kiln::http
