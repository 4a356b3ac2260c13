#include "kiln/cli/output.h"

#include <cmath>
#include <cstdlib>
#include <ctime>

#include <gtest/gtest.h>

namespace kiln::cli {
namespace {

TEST(DisplayWidthTest, CountsCodePointsNotBytes) {
  EXPECT_EQ(DisplayWidth(""), 0u);
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("caf\xC3\xA9"), 4u);        // café
  EXPECT_EQ(DisplayWidth("\xE2\x80\xA6"), 1u);       // …
}

TEST(TruncateTest, CutsLongTextAndEndsWithEllipsis) {
  struct Case {
    std::string text;
    size_t max_width;
    std::string expected;
  };
  const Case cases[] = {
      {"short", 10, "short"},
      {"exactly10!", 10, "exactly10!"},
      {"eleven chars", 10, "eleven ch\xE2\x80\xA6"},
      {"anything", 0, "anything"},
      {"caf\xC3\xA9 au lait", 5, "caf\xC3\xA9\xE2\x80\xA6"},   // never splits a code point
      {"line1\nline2\tx", 0, "line1 line2 x"},                // control characters become spaces
      {"abc", 1, "\xE2\x80\xA6"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Truncate(c.text, c.max_width), c.expected) << c.text << " / " << c.max_width;
    if (c.max_width > 0) {
      EXPECT_LE(DisplayWidth(Truncate(c.text, c.max_width)), c.max_width);
    }
  }
}

TEST(TableTest, AlignsColumnsWithoutTrailingSpaces) {
  Table table({"ID", "NAME", "STATUS"});
  table.AddRow({"1", "first", "active"});
  table.AddRow({"10", "x", ""});
  EXPECT_EQ(table.Render(),
            "ID  NAME   STATUS\n"
            "1   first  active\n"
            "10  x\n");
}

TEST(TableTest, TruncatesLongCellsToTheMaximumWidth) {
  Table table({"K", "V"}, 8);
  table.AddRow({"a", "0123456789abcdef"});
  EXPECT_EQ(table.Render(),
            "K  V\n"
            "a  0123456\xE2\x80\xA6\n");
}

TEST(TableTest, AlignsCellsWithMultiByteCharacters) {
  Table table({"NAME", "N"});
  table.AddRow({"caf\xC3\xA9", "1"});
  table.AddRow({"tea", "2"});
  EXPECT_EQ(table.Render(),
            "NAME  N\n"
            "caf\xC3\xA9  1\n"
            "tea   2\n");
}

TEST(TableTest, PadsShortRowsAndRendersHeaderWhenEmpty) {
  Table empty({"A", "B"});
  EXPECT_EQ(empty.Render(), "A  B\n");
  Table table({"A", "B"});
  table.AddRow({"x"});
  EXPECT_EQ(table.row_count(), 1u);
  EXPECT_EQ(table.Render(), "A  B\nx\n");
}

TEST(RenderKeyValuesTest, AlignsValuesAndIndents) {
  EXPECT_EQ(RenderKeyValues({{"a", "1"}, {"long_key", "2"}, {"empty", ""}}, "  "),
            "  a         1\n"
            "  long_key  2\n"
            "  empty\n");
  EXPECT_EQ(RenderKeyValues({{"k", "0123456789"}}, "", 5), "k  0123\xE2\x80\xA6\n");
}

TEST(FormatDurationTest, PicksAReadableUnit) {
  struct Case {
    int64_t millis;
    std::string expected;
  };
  const Case cases[] = {{0, "0ms"},          {850, "850ms"},          {12345, "12.3s"},
                        {245000, "4m 05s"},  {7380000, "2h 03m"},     {-1, ""}};
  for (const Case& c : cases) EXPECT_EQ(FormatDuration(c.millis), c.expected) << c.millis;
}

TEST(FormatDoubleTest, WritesTheShortestRoundTripText) {
  EXPECT_EQ(FormatDouble(0.1), "0.1");
  EXPECT_EQ(FormatDouble(3), "3");
  EXPECT_EQ(FormatDouble(1e-7), "1e-07");
  EXPECT_EQ(FormatDouble(std::nan("")), "NaN");
  EXPECT_EQ(FormatDouble(HUGE_VAL), "Infinity");
  EXPECT_EQ(FormatDouble(-HUGE_VAL), "-Infinity");
}

TEST(FormatTimestampTest, FormatsLocalTimeAndLeavesUnsetEmpty) {
  setenv("TZ", "UTC", 1);
  tzset();
  EXPECT_EQ(FormatTimestamp(1700000000123), "2023-11-14 22:13:20");
  EXPECT_EQ(FormatTimestamp(0), "");
}

TEST(JsonScalarTextTest, PrintsStringsUnquotedAndNumbersAsWritten) {
  EXPECT_EQ(JsonScalarText(Json("abc")), "abc");
  EXPECT_EQ(JsonScalarText(Json(42)), "42");
  EXPECT_EQ(JsonScalarText(Json(0.5)), "0.5");
  EXPECT_EQ(JsonScalarText(Json(true)), "true");
  EXPECT_EQ(JsonScalarText(Json()), "");
}

}  // namespace
}  // namespace kiln::cli
