#include "kiln/table/writer.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kiln/table/inference.h"

namespace kiln::table {
namespace {

using Row = std::vector<std::optional<std::string>>;  // nullopt: a null cell
constexpr std::nullopt_t kNull = std::nullopt;

std::vector<Cell> ToCells(const Row& row) {
  std::vector<Cell> cells;
  for (const std::optional<std::string>& value : row) {
    cells.push_back(value ? Cell{*value, false, false} : Cell{{}, true, false});
  }
  return cells;
}

std::string Write(Format format, const Schema& schema, const std::vector<Row>& rows) {
  RowWriter writer(format, schema);
  std::string out;
  writer.WriteHeader(&out);
  for (const Row& row : rows) writer.WriteRow(ToCells(row), &out);
  return out;
}

std::vector<Row> ReadBack(Format format, std::string_view data, std::vector<std::string>* names) {
  Result<std::unique_ptr<RowReader>> reader = RowReader::Open(format, data, {});
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  if (!reader.ok()) return {};
  std::vector<Row> rows;
  while (true) {
    Result<bool> more = (*reader)->Next();
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    Row row;
    for (const Cell& cell : (*reader)->cells()) {
      row.push_back(cell.is_null ? std::nullopt : std::optional<std::string>(cell.text));
    }
    rows.push_back(std::move(row));
  }
  *names = (*reader)->column_names();
  return rows;
}

Schema StringSchema(const std::vector<std::string>& names) {
  Schema schema;
  for (const std::string& name : names) schema.columns.push_back({name, ColumnType::kString, true});
  return schema;
}

TEST(RowWriterTest, CsvQuotesOnlyWhatNeedsQuoting) {
  Schema schema = StringSchema({"plain", "comma,name", "q"});
  std::string out =
      Write(Format::kCsv, schema,
            {{"x", "a,b", "say \"hi\""}, {kNull, "", "two\nlines"}, {"cr\r", "1", kNull}});
  EXPECT_EQ(out,
            "plain,\"comma,name\",q\n"
            "x,\"a,b\",\"say \"\"hi\"\"\"\n"
            ",\"\",\"two\nlines\"\n"
            "\"cr\r\",1,\n");
  EXPECT_EQ(Write(Format::kTsv, schema, {{"a,b", "t\tab", kNull}}),
            "plain\tcomma,name\tq\na,b\t\"t\tab\"\t\n");
}

TEST(RowWriterTest, JsonlValuesFollowTheSchemaTypes) {
  Schema schema;
  schema.columns = {{"i", ColumnType::kInt64, true},     {"f", ColumnType::kFloat64, true},
                    {"b", ColumnType::kBool, true},      {"s", ColumnType::kString, true},
                    {"t", ColumnType::kTimestamp, true}, {"c", ColumnType::kCategorical, true}};
  std::string out = Write(Format::kJsonl, schema,
                          {{"12", "1.50", "True", "a\"b\n\x01", "2026-11-01", "red"},
                           {"+5", "nan", "false", "", kNull, kNull},
                           {"007", "-inf", "FALSE", "\xC3\xA9", kNull, kNull},
                           {"oops", "+.5", "maybe", kNull, kNull, kNull},
                           {"-0", "1e400", kNull, kNull, kNull, kNull}});
  EXPECT_EQ(out,
            "{\"i\":12,\"f\":1.50,\"b\":true,\"s\":\"a\\\"b\\n\\u0001\",\"t\":\"2026-11-01\","
            "\"c\":\"red\"}\n"
            "{\"i\":5,\"f\":\"NaN\",\"b\":false,\"s\":\"\",\"t\":null,\"c\":null}\n"
            "{\"i\":7,\"f\":\"-Infinity\",\"b\":false,\"s\":\"\xC3\xA9\",\"t\":null,\"c\":null}\n"
            "{\"i\":\"oops\",\"f\":0.5,\"b\":\"maybe\",\"s\":null,\"t\":null,\"c\":null}\n"
            "{\"i\":-0,\"f\":\"Infinity\",\"b\":null,\"s\":null,\"t\":null,\"c\":null}\n");
  // Nothing for a header.
  std::string header;
  RowWriter(Format::kJsonl, schema).WriteHeader(&header);
  EXPECT_EQ(header, "");
}

TEST(RowWriterTest, JsonlReplacesInvalidUtf8SoTheOutputIsJson) {
  std::string out = Write(Format::kJsonl, StringSchema({"s"}),
                          {{"a\xff"
                            "b"}});
  EXPECT_EQ(out,
            "{\"s\":\"a\xEF\xBF\xBD"
            "b\"}\n");
}

TEST(RowWriterTest, CsvAndTsvRoundTripTrickyCells) {
  const std::vector<std::string> names = {"id", "text, with comma", "quote\"d", "\xEF\xBB\xBFlead"};
  const std::vector<Row> rows = {
      {"1", "plain", "x", "y"},
      {"2", "", kNull, "\xEF\xBB\xBF"},
      {"3", "a,b\tc", "say \"hi\"", "\""},
      {"4", "multi\nline\r\nvalue", "\r", "\n"},
      {kNull, kNull, kNull, kNull},
      {"6", " spaced ", "caf\xC3\xA9", "\"\"\""},
  };
  for (Format format : {Format::kCsv, Format::kTsv}) {
    std::string written = Write(format, StringSchema(names), rows);
    std::vector<std::string> read_names;
    std::vector<Row> read = ReadBack(format, written, &read_names);
    EXPECT_EQ(read_names, names) << FormatName(format);
    EXPECT_EQ(read, rows) << FormatName(format) << "\n" << written;
  }
}

TEST(RowWriterTest, OneColumnNullRowsRoundTrip) {
  const std::vector<Row> rows = {{"a"}, {kNull}, {""}, {kNull}};
  std::string written = Write(Format::kCsv, StringSchema({"v"}), rows);
  EXPECT_EQ(written, "v\na\n\n\"\"\n\n");
  std::vector<std::string> names;
  EXPECT_EQ(ReadBack(Format::kCsv, written, &names), rows);
}

TEST(RowWriterTest, JsonlRoundTripsCellsOfEveryType) {
  Schema schema;
  schema.columns = {
      {"i", ColumnType::kInt64, true},     {"f", ColumnType::kFloat64, true},
      {"b", ColumnType::kBool, true},      {"s", ColumnType::kString, true},
      {"t", ColumnType::kTimestamp, true}, {"key with \"quote\"", ColumnType::kString, true}};
  const std::vector<Row> rows = {
      {"1", "1.5e3", "true", "x \"y\" \\ \t\n\xC3\xA9", "2026-11-01T12:00:00Z", "k"},
      {"-9223372036854775808", "NaN", "false", "", kNull, kNull},
      {kNull, "-Infinity", kNull, "[1,2]", kNull, "{}"},
  };
  std::string written = Write(Format::kJsonl, schema, rows);
  std::vector<std::string> names;
  EXPECT_EQ(ReadBack(Format::kJsonl, written, &names), rows) << written;
  EXPECT_EQ(names, (std::vector<std::string>{"i", "f", "b", "s", "t", "key with \"quote\""}));
}

TEST(RowWriterTest, RandomTablesRoundTripThroughCsv) {
  // Cells drawn from an alphabet of the characters that matter, at lengths around the reader's
  // 64-byte blocks.
  std::mt19937 random(12345);
  const std::vector<std::string> pieces = {"a",  "b",  ",", "\"", "\n",
                                           "\r", "\t", " ", "x",  "\xC3\xA9"};
  for (int table = 0; table < 50; ++table) {
    size_t columns = 1 + random() % 6;
    std::vector<std::string> names;
    for (size_t c = 0; c < columns; ++c) names.push_back(std::to_string(c) + "c");
    std::vector<Row> rows;
    for (int r = 0; r < 40; ++r) {
      Row row;
      for (size_t c = 0; c < columns; ++c) {
        if (random() % 7 == 0) {
          row.push_back(kNull);
          continue;
        }
        size_t length = random() % 90;
        std::string text;
        while (text.size() < length) text += pieces[random() % pieces.size()];
        row.push_back(text);
      }
      rows.push_back(std::move(row));
    }
    for (Format format : {Format::kCsv, Format::kTsv}) {
      std::string written = Write(format, StringSchema(names), rows);
      std::vector<std::string> read_names;
      ASSERT_EQ(ReadBack(format, written, &read_names), rows) << "table " << table;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Formats and schemas (small enough to live here)

TEST(FormatTest, NamesAndExtensions) {
  for (Format format : {Format::kCsv, Format::kTsv, Format::kJsonl}) {
    EXPECT_EQ(FormatFromName(FormatName(format)), format);
  }
  EXPECT_EQ(FormatFromName("parquet"), std::nullopt);
  EXPECT_EQ(FormatFromPath("data/credit.CSV"), Format::kCsv);
  EXPECT_EQ(FormatFromPath("a.tab"), Format::kTsv);
  EXPECT_EQ(FormatFromPath("a.b/events.NDJSON"), Format::kJsonl);
  EXPECT_EQ(FormatFromPath("x.jsonl"), Format::kJsonl);
  EXPECT_EQ(FormatFromPath("images/cat.png"), std::nullopt);
  EXPECT_EQ(FormatFromPath("csv.d/README"), std::nullopt);
  EXPECT_EQ(FormatFromPath(".csv"), std::nullopt);
}

TEST(SchemaTest, JsonRoundTripAndLookup) {
  Schema schema;
  schema.columns = {{"age", ColumnType::kInt64, true}, {"when", ColumnType::kTimestamp, false}};
  Json json = schema.ToJson();
  EXPECT_EQ(json.dump(), R"({"columns":[{"name":"age","nullable":true,"type":"int64"},)"
                         R"({"name":"when","nullable":false,"type":"timestamp"}]})");
  Result<Schema> back = Schema::FromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, schema);
  EXPECT_EQ(schema.Find("when"), 1);
  EXPECT_EQ(schema.Find("nope"), -1);
  EXPECT_TRUE(IsNumeric(ColumnType::kFloat64));
  EXPECT_FALSE(IsNumeric(ColumnType::kTimestamp));
}

TEST(SchemaTest, FromJsonRejectsMalformedSchemas) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"([])", "schema: expected a JSON object"},
      {R"({"columns": 1})", "schema: 'columns' must be an array"},
      {R"({"columns": [{"type": "int64"}]})",
       "schema: column 1: 'name' must be a non-empty string"},
      {R"({"columns": [{"name": "a", "type": "decimal"}]})",
       "schema: column 'a': unknown type 'decimal'"},
      {R"({"columns": [{"name": "a", "type": "bool", "nullable": 1}]})",
       "schema: column 'a': 'nullable' must be a bool"},
      {R"({"columns": [{"name": "a", "type": "bool"}, {"name": "a", "type": "bool"}]})",
       "schema: column 'a': duplicate name"},
  };
  for (const auto& [text, message] : cases) {
    Result<Schema> schema = Schema::FromJson(Json::parse(text));
    EXPECT_EQ(schema.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(schema.status().message(), message);
  }
}

}  // namespace
}  // namespace kiln::table
