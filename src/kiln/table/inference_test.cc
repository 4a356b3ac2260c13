#include "kiln/table/inference.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace kiln::table {
namespace {

// Infers the schema of a whole buffer.
Schema Infer(Format format, std::string_view data) {
  Result<std::unique_ptr<RowReader>> reader = RowReader::Open(format, data, {});
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  SchemaInferrer inferrer(format);
  while (true) {
    Result<bool> more = (*reader)->Next();
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    inferrer.Observe(**reader);
  }
  return inferrer.Finish();
}

// A one-column CSV of these values; "<null>" is an empty unquoted field.
std::string OneColumnCsv(const std::vector<std::string>& values) {
  std::string data = "v\n";
  for (const std::string& value : values) data += (value == "<null>" ? "" : value) + "\n";
  return data;
}

struct InferenceCase {
  std::string name;
  std::vector<std::string> values;
  ColumnType type;
  bool nullable;
};

TEST(SchemaInferrerTest, InfersEachTypeFromCsvCells) {
  const std::vector<InferenceCase> cases = {
      {"bools", {"true", "False", "TRUE", "false"}, ColumnType::kBool, false},
      {"0 and 1 are ints, not bools", {"0", "1", "1", "0"}, ColumnType::kInt64, false},
      {"ints with signs", {"-3", "+4", "0", "9223372036854775807"}, ColumnType::kInt64, false},
      {"int64 overflow is a float", {"1", "9223372036854775808"}, ColumnType::kFloat64, false},
      {"ints widen to floats", {"1", "2", "2.5"}, ColumnType::kFloat64, false},
      {"exponents, nan, inf",
       {"1e3", "NaN", "-inf", "Infinity", ".5"},
       ColumnType::kFloat64,
       false},
      {"quoted numbers are numbers in CSV", {"\"12\"", "\"13\""}, ColumnType::kInt64, false},
      {"dates", {"2026-11-01", "2024-02-29"}, ColumnType::kTimestamp, false},
      {"date-times",
       {"2026-11-01T12:00:00", "2026-11-01 12:00:00.123Z", "2026-11-01T12:00:00+02:00"},
       ColumnType::kTimestamp,
       false},
      {"impossible date is a string",
       {"2025-02-29", "2026-01-01", "x", "y"},
       ColumnType::kString,
       false},
      {"nullable int", {"1", "<null>", "3"}, ColumnType::kInt64, true},
      {"only nulls is a nullable string", {"<null>", "<null>"}, ColumnType::kString, true},
      {"categorical", {"red", "blue", "red", "red", "blue"}, ColumnType::kCategorical, false},
      {"distinct not fewer than half is a string",
       {"a", "b", "a", "b"},
       ColumnType::kString,
       false},
      {"mixed bool and int is categorical",
       {"true", "1", "true", "1", "true"},
       ColumnType::kCategorical,
       false},
      {"spaces make a string", {" 1", "2 ", "3"}, ColumnType::kString, false},
      {"hex is not a number", {"0x10"}, ColumnType::kString, false},
  };
  for (const InferenceCase& test : cases) {
    Schema schema = Infer(Format::kCsv, OneColumnCsv(test.values));
    ASSERT_EQ(schema.columns.size(), 1u) << test.name;
    EXPECT_EQ(ColumnTypeName(schema.columns[0].type), ColumnTypeName(test.type)) << test.name;
    EXPECT_EQ(schema.columns[0].nullable, test.nullable) << test.name;
  }
}

TEST(SchemaInferrerTest, CategoricalNeedsAtMostMaxCategoriesDistinctValues) {
  auto values = [](size_t distinct, size_t repeats) {
    std::vector<std::string> out;
    for (size_t r = 0; r < repeats; ++r) {
      for (size_t i = 0; i < distinct; ++i) out.push_back(std::to_string(i) + "c");
    }
    return out;
  };
  EXPECT_EQ(Infer(Format::kCsv, OneColumnCsv(values(kMaxCategories, 3))).columns[0].type,
            ColumnType::kCategorical);
  EXPECT_EQ(Infer(Format::kCsv, OneColumnCsv(values(kMaxCategories + 1, 3))).columns[0].type,
            ColumnType::kString);
  // Exactly half distinct is not fewer than half.
  EXPECT_EQ(Infer(Format::kCsv, OneColumnCsv(values(10, 2))).columns[0].type, ColumnType::kString);
  std::vector<std::string> almost = values(10, 2);
  almost.push_back("0c");
  EXPECT_EQ(Infer(Format::kCsv, OneColumnCsv(almost)).columns[0].type, ColumnType::kCategorical);
}

TEST(SchemaInferrerTest, JsonlStringsThatLookLikeNumbersStayStrings) {
  Schema schema = Infer(Format::kJsonl,
                        "{\"n\": 1, \"s\": \"12\", \"f\": 1, \"b\": true, \"t\": \"2026-11-01\", "
                        "\"q\": \"true\", \"x\": 2.5, \"arr\": [1]}\n"
                        "{\"n\": 2, \"s\": \"13\", \"f\": \"NaN\", \"b\": false, "
                        "\"t\": \"2026-11-02T00:00:00Z\", \"q\": \"false\", \"x\": \"Infinity\", "
                        "\"arr\": [2]}\n");
  std::vector<std::pair<std::string, ColumnType>> expected = {
      {"n", ColumnType::kInt64},   {"s", ColumnType::kString},    {"f", ColumnType::kFloat64},
      {"b", ColumnType::kBool},    {"t", ColumnType::kTimestamp}, {"q", ColumnType::kString},
      {"x", ColumnType::kFloat64}, {"arr", ColumnType::kString}};
  ASSERT_EQ(schema.columns.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(schema.columns[i].name, expected[i].first);
    EXPECT_EQ(ColumnTypeName(schema.columns[i].type), ColumnTypeName(expected[i].second))
        << expected[i].first;
  }
  // A column of only "NaN" strings is not a float column.
  EXPECT_EQ(Infer(Format::kJsonl, "{\"a\": \"NaN\"}\n").columns[0].type, ColumnType::kString);
}

TEST(SchemaInferrerTest, JsonlColumnFirstSeenLaterIsNullable) {
  Schema schema =
      Infer(Format::kJsonl, "{}\n{\"a\": 1}\n{\"a\": 2, \"b\": null}\n{\"a\": 3, \"b\": 1}\n");
  ASSERT_EQ(schema.columns.size(), 2u);
  EXPECT_EQ(schema.columns[0], (Column{"a", ColumnType::kInt64, true}));
  EXPECT_EQ(schema.columns[1], (Column{"b", ColumnType::kInt64, true}));
  schema = Infer(Format::kJsonl, "{\"a\": 1}\n{\"a\": 2}\n");
  EXPECT_EQ(schema.columns[0], (Column{"a", ColumnType::kInt64, false}));
}

TEST(SchemaInferrerTest, IsDeterministic) {
  std::string data = "a,b,c\n";
  for (int i = 0; i < 500; ++i) {
    data += std::to_string(i % 7) + ",x" + std::to_string(i % 3) + "," + std::to_string(i) + ".5\n";
  }
  Schema first = Infer(Format::kCsv, data);
  for (int run = 0; run < 3; ++run) EXPECT_EQ(Infer(Format::kCsv, data), first);
  EXPECT_EQ(first.columns[0].type, ColumnType::kInt64);
  EXPECT_EQ(first.columns[1].type, ColumnType::kCategorical);
  EXPECT_EQ(first.columns[2].type, ColumnType::kFloat64);
}

struct CheckCase {
  ColumnType type;
  std::string text;
  std::string message;  // empty: fits
  bool widens = false;
};

TEST(CheckCellTest, MismatchNamesFileLineColumnAndValue) {
  const std::vector<CheckCase> cases = {
      {ColumnType::kInt64, "42", ""},
      {ColumnType::kInt64, "-7", ""},
      {ColumnType::kInt64, "2.5", "", true},
      {ColumnType::kInt64, "abc", "credit.csv:1204:3: column 'age': expected int64, found 'abc'"},
      {ColumnType::kInt64, "", "credit.csv:1204:3: column 'age': expected int64, found ''"},
      {ColumnType::kFloat64, "1e-3", ""},
      {ColumnType::kFloat64, "nan", ""},
      {ColumnType::kFloat64, "1.2.3",
       "credit.csv:1204:3: column 'age': expected float64, found '1.2.3'"},
      {ColumnType::kBool, "TRUE", ""},
      {ColumnType::kBool, "1", "credit.csv:1204:3: column 'age': expected bool, found '1'"},
      {ColumnType::kTimestamp, "2026-11-01T12:00:00.5-05:30", ""},
      {ColumnType::kTimestamp, "2026-13-01",
       "credit.csv:1204:3: column 'age': expected timestamp, found '2026-13-01'"},
      {ColumnType::kString, "anything", ""},
      {ColumnType::kCategorical, "new category", ""},
      {ColumnType::kInt64, std::string(100, 'x'),
       "credit.csv:1204:3: column 'age': expected int64, found '" + std::string(40, 'x') + "...'"},
      {ColumnType::kInt64, "two\nlines",
       "credit.csv:1204:3: column 'age': expected int64, found 'two\\nlines'"},
  };
  for (const CheckCase& test : cases) {
    Column column{"age", test.type, false};
    bool widen = false;
    Status status = CheckCell(column, Cell{test.text, false, false}, "credit.csv", 1204, 3, &widen);
    if (test.message.empty()) {
      EXPECT_TRUE(status.ok()) << test.text << ": " << status.ToString();
    } else {
      EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << test.text;
      EXPECT_EQ(status.message(), test.message);
    }
    EXPECT_EQ(widen, test.widens) << test.text;
  }
}

TEST(CheckCellTest, NullsFitEveryTypeAndLongValuesAreCutOnCharacterBoundaries) {
  for (ColumnType type : {ColumnType::kInt64, ColumnType::kBool, ColumnType::kTimestamp}) {
    EXPECT_TRUE(
        CheckCell(Column{"c", type, false}, Cell{"", true, false}, "f", 1, 1, nullptr).ok());
  }
  std::string accented;
  for (int i = 0; i < 30; ++i) accented += "\xC3\xA9";  // 60 bytes of 'é'
  Status status = CheckCell(Column{"c", ColumnType::kInt64, false}, Cell{accented, false, false},
                            "f", 1, 1, nullptr);
  EXPECT_EQ(status.message(),
            "f:1:1: column 'c': expected int64, found '" + accented.substr(0, 40) + "...'");
}

TEST(TypedParseTest, ParsesWhatCheckCellAccepts) {
  EXPECT_EQ(*ParseInt64("+12"), 12);
  EXPECT_EQ(*ParseInt64("-9223372036854775808"), std::numeric_limits<int64_t>::min());
  EXPECT_FALSE(ParseInt64("9223372036854775808").ok());
  EXPECT_FALSE(ParseInt64("1.0").ok());
  EXPECT_EQ(*ParseFloat64("+1.5"), 1.5);
  EXPECT_EQ(*ParseFloat64("-Infinity"), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(*ParseFloat64("NaN")));
  EXPECT_FALSE(ParseFloat64("1,5").ok());
  EXPECT_TRUE(*ParseBool("True"));
  EXPECT_FALSE(*ParseBool("FALSE"));
  EXPECT_FALSE(ParseBool("yes").ok());
}

TEST(TypedParseTest, CheckCellAcceptsExactlyWhatTheTypedParsesAccept) {
  // CheckCell validates numbers without converting them; it must agree with the conversions.
  const std::string alphabet = "0123456789.eE+-naifNI( )x";
  std::mt19937 random(7);
  for (int i = 0; i < 200000; ++i) {
    std::string text;
    size_t length = random() % 9;
    for (size_t k = 0; k < length; ++k) text += alphabet[random() % alphabet.size()];
    Cell cell{text, false, false};
    EXPECT_EQ(CheckCell(Column{"f", ColumnType::kFloat64, false}, cell, "f", 1, 1, nullptr).ok(),
              ParseFloat64(text).ok())
        << text;
    EXPECT_EQ(CheckCell(Column{"i", ColumnType::kInt64, false}, cell, "f", 1, 1, nullptr).ok(),
              ParseInt64(text).ok() || ParseFloat64(text).ok())
        << text;
  }
}

// ParseCellValue must accept, widen and reject exactly as CheckCell does, and its values must
// be the typed parses' bit for bit.
void ExpectParseCellValueMatches(ColumnType type, const std::string& text) {
  const Column column{"c", type, false};
  bool check_widen = false;
  Status checked = CheckCell(column, Cell{text, false, false}, "f.csv", 7, 2, &check_widen);
  bool parse_widen = false;
  CellValue value;
  const bool fits = ParseCellValue(type, text, &parse_widen, &value);
  ASSERT_EQ(fits, checked.ok()) << ColumnTypeName(type) << " '" << text << "'";
  EXPECT_EQ(parse_widen, check_widen) << ColumnTypeName(type) << " '" << text << "'";
  if (!fits) {
    EXPECT_EQ(CellMismatch(column, text, "f.csv", 7, 2).message(), checked.message());
    return;
  }
  switch (type) {
    case ColumnType::kInt64:
      if (!parse_widen) {
        ASSERT_TRUE(ParseInt64(text).ok()) << text;
        EXPECT_EQ(value.integer, *ParseInt64(text)) << text;
        EXPECT_EQ(value.number, static_cast<double>(*ParseInt64(text))) << text;
        break;
      }
      [[fallthrough]];
    case ColumnType::kFloat64: {
      Result<double> parsed = ParseFloat64(text);
      ASSERT_TRUE(parsed.ok()) << text;
      EXPECT_EQ(std::bit_cast<uint64_t>(value.number), std::bit_cast<uint64_t>(*parsed)) << text;
      break;
    }
    case ColumnType::kBool: EXPECT_EQ(value.boolean, *ParseBool(text)) << text; break;
    case ColumnType::kTimestamp: EXPECT_EQ(value.integer, *ParseTimestampMillis(text)) << text; break;
    case ColumnType::kString:
    case ColumnType::kCategorical: break;
  }
}

TEST(ParseCellValueTest, AgreesWithCheckCellAndTheTypedParsesOnNotableCells) {
  const std::vector<std::string> texts = {
      "0", "-0", "+0", "42", "-7", "+12", "007", "999999999999999999", "-999999999999999999",
      "1000000000000000000", "9223372036854775807", "-9223372036854775808",
      "9223372036854775808", "-9223372036854775809", "123456789012345678901234567890", "+-5",
      "-+5", "--5", "+", "-", "", " 1", "1 ", "1_000", "0x10", "2.5", "-0.0", "5.", ".5", "-.5",
      "+.5", "1e3", "1E-3", "1e", "1e+", "1.2.3", "1,5", "e5", ".", "nan", "NaN", "-nan", "inf",
      "-Infinity", "+inf", "infinity", "nanx", "1e999", "-1e999", "4.9e-324", "1e-400",
      "9007199254740993", "9007199254740992.5", "0.1", "123456789.123456789", "3.14159265358979",
      "true", "False", "TRUE", "tRUE", "yes", "1", "2026-11-01", "2026-11-01T12:00:00.5-05:30",
      "2026-02-29", "2024-02-29 23:59:59Z", "2026-13-01", "2026-11-01T25:00:00", "2026/11/01",
      "anything", "two\nlines", std::string(100, '7')};
  for (ColumnType type : {ColumnType::kInt64, ColumnType::kFloat64, ColumnType::kBool,
                          ColumnType::kTimestamp, ColumnType::kString, ColumnType::kCategorical}) {
    for (const std::string& text : texts) ExpectParseCellValueMatches(type, text);
  }
}

TEST(ParseCellValueTest, AgreesWithCheckCellAndTheTypedParsesOnRandomCells) {
  const std::string alphabet = "0123456789.eE+-naifNItrueF:T Z";
  std::mt19937 random(11);
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    const size_t length = random() % 12;
    for (size_t k = 0; k < length; ++k) text += alphabet[random() % alphabet.size()];
    for (ColumnType type : {ColumnType::kInt64, ColumnType::kFloat64, ColumnType::kBool}) {
      ExpectParseCellValueMatches(type, text);
    }
  }
  // Digits with a sign and a point: the fast paths' territory.
  for (int i = 0; i < 20000; ++i) {
    std::string text = random() % 2 ? "-" : random() % 4 == 0 ? "+" : "";
    const size_t length = 1 + random() % 21;
    const size_t point = random() % (length + 4);
    for (size_t k = 0; k < length; ++k) {
      if (k == point) text += '.';
      text += static_cast<char>('0' + random() % 10);
    }
    ExpectParseCellValueMatches(ColumnType::kInt64, text);
    ExpectParseCellValueMatches(ColumnType::kFloat64, text);
  }
}

TEST(TypedParseTest, TimestampsAreMillisecondsSinceTheEpochUtc) {
  const std::vector<std::pair<std::string, int64_t>> cases = {
      {"1970-01-01", 0},
      {"1970-01-01T00:00:00Z", 0},
      {"1970-01-02 00:00:01.5", 86'401'500},
      {"2000-03-01T00:00:00", 951'868'800'000},
      {"2026-11-01T12:00:00+02:00", 1'793'527'200'000},
      {"2026-11-01T10:00:00Z", 1'793'527'200'000},
      {"2026-11-01T04:30:00-05:30", 1'793'527'200'000},
      {"1969-12-31T23:59:59.999", -1},
      {"2024-02-29T12:00:00.123456789Z", 1'709'208'000'123},
  };
  for (const auto& [text, millis] : cases) {
    Result<int64_t> parsed = ParseTimestampMillis(text);
    ASSERT_TRUE(parsed.ok()) << text;
    EXPECT_EQ(*parsed, millis) << text;
  }
  for (std::string_view bad : {"2026-11-1", "2026-11-01T", "2026-11-01T24:00:00",
                               "2026-11-01T12:00", "2026-11-01T12:00:00.", "2026-11-01T12:00:00+2",
                               "2026-11-01T12:00:00z", "2026/11/01", "2023-02-29"}) {
    EXPECT_FALSE(ParseTimestampMillis(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace kiln::table
