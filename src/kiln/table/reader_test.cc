#include "kiln/table/reader.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

namespace kiln::table {
namespace {

using Row = std::vector<std::optional<std::string>>;  // nullopt: a null cell
constexpr std::nullopt_t kNull = std::nullopt;

struct ReadResult {
  std::vector<std::string> columns;
  std::vector<Row> rows;
  std::vector<int64_t> lines;
  Status status;  // the first error, if any (rows holds what came before it)
};

ReadResult ReadAll(Format format, std::string_view data, ReadOptions options = {}) {
  if (options.file_name.empty()) options.file_name = format == Format::kJsonl ? "x.jsonl" : "x.csv";
  ReadResult result;
  Result<std::unique_ptr<RowReader>> reader = RowReader::Open(format, data, options);
  if (!reader.ok()) {
    result.status = reader.status();
    return result;
  }
  while (true) {
    Result<bool> more = (*reader)->Next();
    if (!more.ok()) {
      result.status = more.status();
      break;
    }
    if (!*more) break;
    Row row;
    for (const Cell& cell : (*reader)->cells()) {
      row.push_back(cell.is_null ? std::nullopt : std::optional<std::string>(cell.text));
    }
    result.rows.push_back(std::move(row));
    result.lines.push_back((*reader)->line());
  }
  result.columns = (*reader)->column_names();
  return result;
}

// ---------------------------------------------------------------------------------------------
// CSV

TEST(CsvReaderTest, ReadsHeaderAndRows) {
  ReadResult read = ReadAll(Format::kCsv, "id,name,score\n1,ann,0.5\n2,bob,1e3\n");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.columns, (std::vector<std::string>{"id", "name", "score"}));
  EXPECT_EQ(read.rows, (std::vector<Row>{{"1", "ann", "0.5"}, {"2", "bob", "1e3"}}));
  EXPECT_EQ(read.lines, (std::vector<int64_t>{2, 3}));
}

TEST(CsvReaderTest, EmptyUnquotedFieldIsNullAndQuotedEmptyIsEmptyString) {
  ReadResult read = ReadAll(Format::kCsv, "a,b,c\n,\"\",x\n1,,\n");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.rows, (std::vector<Row>{{kNull, "", "x"}, {"1", kNull, kNull}}));
}

TEST(CsvReaderTest, QuotedFieldsHoldDelimitersNewlinesAndDoubledQuotes) {
  ReadResult read = ReadAll(Format::kCsv,
                            "a,b\n"
                            "\"x,y\",\"say \"\"hi\"\"\"\n"
                            "\"two\nlines\",\"\"\"\"\n"
                            "3,4\n");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.rows, (std::vector<Row>{{"x,y", "say \"hi\""}, {"two\nlines", "\""}, {"3", "4"}}));
  // Lines are physical: the row after a two-line field starts on line 5.
  EXPECT_EQ(read.lines, (std::vector<int64_t>{2, 3, 5}));
}

TEST(CsvReaderTest, QuotedFlagIsSet) {
  Result<std::unique_ptr<RowReader>> reader = RowReader::Open(Format::kCsv, "a,b\n\"1\",2\n", {});
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(*(*reader)->Next());
  EXPECT_TRUE((*reader)->cells()[0].quoted);
  EXPECT_FALSE((*reader)->cells()[1].quoted);
}

TEST(CsvReaderTest, CrlfLineEndingsAreAccepted) {
  ReadResult read = ReadAll(Format::kCsv, "a,b\r\n1,2\r\n\"x\r\ny\",\"q\"\r\n,\r\n");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.columns, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(read.rows, (std::vector<Row>{{"1", "2"}, {"x\r\ny", "q"}, {kNull, kNull}}));
  EXPECT_EQ(read.lines, (std::vector<int64_t>{2, 3, 5}));
}

TEST(CsvReaderTest, FinalLineWithoutNewlineIsARow) {
  for (std::string_view data : {"a,b\n1,2\n3,4", "a,b\n1,2\n3,4\r", "a,b\n1,2\n\"3\",\"4\""}) {
    ReadResult read = ReadAll(Format::kCsv, data);
    ASSERT_TRUE(read.status.ok()) << read.status.ToString();
    EXPECT_EQ(read.rows, (std::vector<Row>{{"1", "2"}, {"3", "4"}})) << data;
  }
}

TEST(CsvReaderTest, ByteOrderMarkAtFileStartIsSkipped) {
  ReadResult read = ReadAll(Format::kCsv, "\xEF\xBB\xBFid,v\n1,2\n");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.columns, (std::vector<std::string>{"id", "v"}));
  // Only where the file starts: in the middle of a file it is data.
  ReadOptions later;
  later.has_header = false;
  later.first_line = 9;
  later.column_names = {"a"};
  read = ReadAll(Format::kCsv, "\xEF\xBB\xBFx\n", later);
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.rows, (std::vector<Row>{{"\xEF\xBB\xBFx"}}));
}

TEST(CsvReaderTest, EmptyFileHasNoHeaderRow) {
  for (std::string_view data : {"", "\xEF\xBB\xBF"}) {
    ReadResult read = ReadAll(Format::kCsv, data);
    EXPECT_EQ(read.status.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(read.status.message(), "x.csv:1:1: empty file (no header row)");
  }
}

TEST(CsvReaderTest, HeaderOnlyFileAndEmptyChunkHaveNoRows) {
  for (std::string_view data : {"a,b\n", "a,b", "a,b\r\n"}) {
    ReadResult read = ReadAll(Format::kCsv, data);
    ASSERT_TRUE(read.status.ok()) << read.status.ToString();
    EXPECT_EQ(read.columns, (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(read.rows.empty());
  }
  ReadOptions chunk;
  chunk.has_header = false;
  chunk.column_names = {"a", "b"};
  ReadResult read = ReadAll(Format::kCsv, "", chunk);
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_TRUE(read.rows.empty());
}

TEST(CsvReaderTest, ChunkWithoutHeaderUsesGivenColumnsAndLineNumbers) {
  ReadOptions chunk;
  chunk.file_name = "credit.csv";
  chunk.has_header = false;
  chunk.first_line = 11;
  chunk.column_names = {"a", "b", "c", "d", "e"};
  ReadResult read = ReadAll(Format::kCsv, "1,2,3,4,5\n1,2,3,4,5\n1,2,3,4,5\n1,2,3,45\n", chunk);
  EXPECT_EQ(read.rows.size(), 3u);
  EXPECT_EQ(read.lines, (std::vector<int64_t>{11, 12, 13}));
  EXPECT_EQ(read.status.message(), "credit.csv:14:9: row has 4 fields, the header has 5");
}

TEST(CsvReaderTest, BlankLinesAreSkippedUnlessTheTableHasOneColumn) {
  ReadResult read = ReadAll(Format::kCsv, "a,b\n1,2\n\n\r\n3,4\n\n");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.rows, (std::vector<Row>{{"1", "2"}, {"3", "4"}}));
  EXPECT_EQ(read.lines, (std::vector<int64_t>{2, 5}));
  // With one column an empty line is a row holding a null (that is how the writer writes it).
  read = ReadAll(Format::kCsv, "a\n1\n\n2\n");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.rows, (std::vector<Row>{{"1"}, {kNull}, {"2"}}));
}

TEST(CsvReaderTest, TsvSplitsOnTabs) {
  ReadResult read = ReadAll(Format::kTsv, "a\tb\n1,5\t\"x\ty\"\n");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.rows, (std::vector<Row>{{"1,5", "x\ty"}}));
}

TEST(CsvReaderTest, RowBytesAndOffsetsCoverEachRow) {
  std::string data = "a,b\n1,2\r\n\"x\ny\",3\n4,5";
  Result<std::unique_ptr<RowReader>> reader = RowReader::Open(Format::kCsv, data, {});
  ASSERT_TRUE(reader.ok());
  std::vector<std::string> rows;
  std::vector<size_t> offsets;
  while (*(*reader)->Next()) {
    rows.emplace_back((*reader)->row_bytes());
    offsets.push_back((*reader)->row_offset());
  }
  EXPECT_EQ(rows, (std::vector<std::string>{"1,2\r\n", "\"x\ny\",3\n", "4,5"}));
  EXPECT_EQ(offsets, (std::vector<size_t>{4, 9, 17}));
}

struct MalformedCase {
  std::string name;
  std::string data;
  std::string message;
  size_t rows_before;  // rows read before the error
};

TEST(CsvReaderTest, MalformedInputNamesFileLineAndColumn) {
  const std::vector<MalformedCase> cases = {
      {"too few fields", "a,b,c,d,e\n1,2,3,4,5\n1,2,3,45\n",
       "x.csv:3:9: row has 4 fields, the header has 5", 1},
      {"too few fields crlf", "a,b,c\r\n1,2\r\n", "x.csv:2:4: row has 2 fields, the header has 3",
       0},
      {"one field", "a,b,c\nxyz\n", "x.csv:2:4: row has 1 field, the header has 3", 0},
      {"too many fields", "a,b\n1,2,3,4\n", "x.csv:2:5: row has 4 fields, the header has 2", 0},
      {"too many quoted fields", "a,b\n\"1\",2,\"3\"\n",
       "x.csv:2:7: row has 3 fields, the header has 2", 0},
      {"unterminated quote", "a,b\n1,2\n3,\"xx\n4,5\n", "x.csv:3:3: unterminated quoted field", 1},
      {"quote in unquoted field", "a,b\n1,x\"y\n", "x.csv:2:4: quote in an unquoted field", 0},
      {"text after closing quote", "a,b\n1,\"x\"y\n",
       "x.csv:2:6: unexpected text after a closing quote", 0},
      {"invalid utf8", "a,b\n1,2\n3,\xff\n", "x.csv:3:3: invalid UTF-8", 1},
      {"invalid utf8 in header", "a,\xc3\x28\n", "x.csv:1:3: invalid UTF-8", 0},
      {"overlong utf8", "a,b\n1,\xc0\xaf\n", "x.csv:2:3: invalid UTF-8", 0},
      {"invalid utf8 after quoted newline", "a,b\n\"x\ny\xe2\x82\",2\n", "x.csv:3:2: invalid UTF-8",
       0},
      {"truncated utf8 at end", "a,b\n1,\xe2\x82", "x.csv:2:3: invalid UTF-8", 0},
      {"duplicate header", "id,age,x,age\n",
       "x.csv:1:10: duplicate column name 'age' (columns 2 and 4)", 0},
      {"empty header name", "id,,x\n", "x.csv:1:4: empty column name (column 2)", 0},
      {"empty quoted header name", "id,\"\"\n", "x.csv:1:4: empty column name (column 2)", 0},
      {"error after quoted newline", "a,b\n\"p\nq\",\"r\"s\n",
       "x.csv:3:7: unexpected text after a closing quote", 0},
  };
  for (const MalformedCase& test : cases) {
    ReadResult read = ReadAll(Format::kCsv, test.data);
    EXPECT_EQ(read.status.code(), StatusCode::kInvalidArgument) << test.name;
    EXPECT_EQ(read.status.message(), test.message) << test.name;
    EXPECT_EQ(read.rows.size(), test.rows_before) << test.name;
  }
}

// What a CSV buffer without quotes reads as, computed the plain way: its lines split on the
// delimiter, blank lines skipped (several columns), the first ragged row an error at the start of
// its first extra field or at the end of its content.
ReadResult ReadUnquotedByHand(std::string_view data, size_t width, int64_t first_line) {
  ReadResult result;
  int64_t line = first_line;
  size_t at = 0;
  while (at < data.size()) {
    size_t end = data.find('\n', at);
    const size_t next = end == std::string_view::npos ? data.size() : end + 1;
    if (end == std::string_view::npos) end = data.size();
    std::string_view content = data.substr(at, end - at);
    if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
    if (content.empty() && width > 1) {
      ++line;
      at = next;
      continue;
    }
    Row row;
    size_t field_start = 0;
    size_t extra_start = std::string_view::npos;
    for (size_t i = 0; i <= content.size(); ++i) {
      if (i < content.size() && content[i] != ',') continue;
      if (row.size() == width && extra_start == std::string_view::npos) extra_start = field_start;
      const std::string_view field = content.substr(field_start, i - field_start);
      row.push_back(field.empty() ? std::nullopt : std::optional<std::string>(field));
      field_start = i + 1;
    }
    if (row.size() != width) {
      const size_t column = (row.size() > width ? extra_start : content.size()) + 1;
      const size_t count = row.size();
      result.status = InvalidArgument(
          "x.csv:" + std::to_string(line) + ":" + std::to_string(column) + ": row has " +
          std::to_string(count) + (count == 1 ? " field" : " fields") + ", the header has " +
          std::to_string(width));
      return result;
    }
    result.rows.push_back(std::move(row));
    result.lines.push_back(line);
    ++line;
    at = next;
  }
  return result;
}

// Rows without quotes take a one-pass path; it must read every buffer (CRLF, blank lines, no
// final newline, ragged rows, fields across 64-byte blocks) as the plain splitting does.
TEST(CsvReaderTest, UnquotedRowsReadAsPlainSplittingSays) {
  std::mt19937_64 random(99);
  const std::vector<std::string> kPieces = {"1", "22.5", "-0.125", "abcdefghijklmnopqrstuvwxyz",
                                            "", "x", "1234567890123456789012345"};
  for (int round = 0; round < 3000; ++round) {
    const size_t width = 1 + random() % 5;
    std::string body;
    const size_t lines = random() % 12;
    for (size_t l = 0; l < lines; ++l) {
      if (random() % 10 == 0) {
        body += random() % 2 ? "\n" : "\r\n";  // blank line
        continue;
      }
      size_t fields = width;
      if (random() % 25 == 0) fields = random() % (width + 3);
      for (size_t f = 0; f < fields; ++f) {
        if (f > 0) body += ',';
        body += kPieces[random() % kPieces.size()];
      }
      if (fields == 0) body += "z";
      const bool last = l + 1 == lines;
      if (!last || random() % 3 != 0) body += random() % 4 == 0 ? "\r\n" : "\n";
    }
    ReadOptions options;
    options.file_name = "x.csv";
    options.has_header = false;
    options.first_line = 7;
    for (size_t c = 0; c < width; ++c) options.column_names.push_back("c" + std::to_string(c));
    const ReadResult read = ReadAll(Format::kCsv, body, options);
    const ReadResult expected = ReadUnquotedByHand(body, width, 7);
    ASSERT_EQ(read.status.ok(), expected.status.ok()) << body << read.status.ToString();
    EXPECT_EQ(read.status.message(), expected.status.message()) << body;
    EXPECT_EQ(read.rows, expected.rows) << body;
    EXPECT_EQ(read.lines, expected.lines) << body;
  }
}

// A row the one-pass path cannot take (a quote, a bad byte, a field too large) is read again the
// general way from the row's start, with the same rows before it and the same error.
TEST(CsvReaderTest, RowsThePassCannotTakeReadTheGeneralWay) {
  struct Case {
    std::string name;
    std::string data;
    std::vector<Row> rows;
    std::string error;  // empty: no error
  };
  const std::vector<Case> cases = {
      {"quote in a later field", "a,b\n1,2\n3,\"x,y\"\n5,6\n", {{"1", "2"}, {"3", "x,y"}, {"5", "6"}},
       ""},
      {"quote mid-field", "a,b\n1,2\n3,x\"y\n", {{"1", "2"}}, "x.csv:3:4: quote in an unquoted field"},
      {"doubled quotes then plain rows", "a,b\n\"p\"\"q\",2\n3,4\n", {{"p\"q", "2"}, {"3", "4"}}, ""},
      {"invalid UTF-8 in a later row", "a,b\n1,2\n3,\xff\n", {{"1", "2"}},
       "x.csv:3:3: invalid UTF-8"},
      {"field too large", "a,b\n1,2\n3,123456789\n", {{"1", "2"}},
       "x.csv:3:3: field is larger than 8 bytes"},
      {"too many fields after a good row", "a,b\n1,2\n3,4,5\n", {{"1", "2"}},
       "x.csv:3:5: row has 3 fields, the header has 2"},
      {"too few fields, crlf, no final newline", "a,b\r\n1,2\r\n3\r", {{"1", "2"}},
       "x.csv:3:2: row has 1 field, the header has 2"},
  };
  for (const Case& test : cases) {
    ReadOptions options;
    options.max_field_bytes = 8;
    const ReadResult read = ReadAll(Format::kCsv, test.data, options);
    EXPECT_EQ(read.rows, test.rows) << test.name;
    if (test.error.empty()) {
      EXPECT_TRUE(read.status.ok()) << test.name << ": " << read.status.ToString();
    } else {
      EXPECT_EQ(read.status.message(), test.error) << test.name;
    }
  }
}

TEST(CsvReaderTest, ReaderThatFailedKeepsFailing) {
  Result<std::unique_ptr<RowReader>> reader = RowReader::Open(Format::kCsv, "a,b\n1\n2,3\n", {});
  ASSERT_TRUE(reader.ok());
  EXPECT_FALSE((*reader)->Next().ok());
  EXPECT_FALSE((*reader)->Next().ok());
}

TEST(CsvReaderTest, FieldLargerThanMaxFieldBytesIsAnError) {
  ReadOptions options;
  options.max_field_bytes = 8;
  ReadResult read = ReadAll(Format::kCsv, "a,b\n12345678,x\n1,123456789\n", options);
  EXPECT_EQ(read.rows.size(), 1u);
  EXPECT_EQ(read.status.message(), "x.csv:3:3: field is larger than 8 bytes");
  // Quoted fields count their unescaped bytes.
  read = ReadAll(Format::kCsv, "a\n\"" + std::string(16, '"') + "\"\n", options);
  EXPECT_EQ(read.rows.size(), 1u) << read.status.ToString();
  read = ReadAll(Format::kCsv, "a\n\"123456789\"\n", options);
  EXPECT_EQ(read.status.message(), "x.csv:2:1: field is larger than 8 bytes");
}

TEST(CsvReaderTest, HugeFieldsAndLongRowsCrossBlockBoundaries) {
  // Fields of every length around the 64-byte blocks of the fast path, quoted and not.
  std::string data = "a,b,c\n";
  std::vector<Row> expected;
  for (size_t length = 0; length < 200; ++length) {
    std::string text(length, static_cast<char>('a' + length % 26));
    std::string quoted = "q" + text + "\"\"";
    data += text + "," + std::to_string(length) + ",\"" + quoted + "\"\n";
    expected.push_back(Row{length == 0 ? kNull : std::optional<std::string>(text),
                           std::to_string(length), "q" + text + "\""});
  }
  ReadResult read = ReadAll(Format::kCsv, data);
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.rows, expected);
  ASSERT_EQ(read.lines.size(), 200u);
  EXPECT_EQ(read.lines.back(), 201);
}

// ---------------------------------------------------------------------------------------------
// JSONL

TEST(JsonlReaderTest, KeysBecomeColumnsInFirstSeenOrderAndMissingKeysAreNull) {
  ReadResult read = ReadAll(Format::kJsonl,
                            "{\"a\": 1, \"b\": \"x\"}\n"
                            "{\"b\": \"y\", \"c\": true}\n"
                            "{\"c\": false, \"a\": 2}\n");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.columns, (std::vector<std::string>{"a", "b", "c"}));
  // Rows are padded to the columns known when they are read.
  EXPECT_EQ(read.rows, (std::vector<Row>{{"1", "x"}, {kNull, "y", "true"}, {"2", kNull, "false"}}));
}

TEST(JsonlReaderTest, ValuesKeepTheirJsonSpellingAndStringsAreUnescaped) {
  Result<std::unique_ptr<RowReader>> reader = RowReader::Open(
      Format::kJsonl,
      R"({"n": 1.5e3, "i": -0, "s": "a\"b\u00e9\n", "q": "12", "t": true, "z": null})", {});
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(*(*reader)->Next());
  const std::vector<Cell>& cells = (*reader)->cells();
  ASSERT_EQ(cells.size(), 6u);
  EXPECT_EQ(cells[0].text, "1.5e3");
  EXPECT_FALSE(cells[0].quoted);
  EXPECT_EQ(cells[1].text, "-0");
  EXPECT_EQ(cells[2].text, "a\"b\xC3\xA9\n");
  EXPECT_TRUE(cells[2].quoted);
  EXPECT_EQ(cells[3].text, "12");
  EXPECT_TRUE(cells[3].quoted);
  EXPECT_EQ(cells[4].text, "true");
  EXPECT_TRUE(cells[5].is_null);
}

TEST(JsonlReaderTest, NestedValuesAreKeptAsJsonText) {
  ReadResult read = ReadAll(Format::kJsonl, R"({"a": [1, {"b": [2]}] , "o": {"k": "v"}, "e": []})");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.rows, (std::vector<Row>{{R"([1, {"b": [2]}])", R"({"k": "v"})", "[]"}}));
}

TEST(JsonlReaderTest, BlankLinesAreSkippedButCounted) {
  ReadResult read = ReadAll(Format::kJsonl, "\n{\"a\":1}\r\n  \n\t\r\n{\"a\":2}\n\n");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.rows, (std::vector<Row>{{"1"}, {"2"}}));
  EXPECT_EQ(read.lines, (std::vector<int64_t>{2, 5}));
}

TEST(JsonlReaderTest, EmptyInputAndEmptyObjects) {
  ReadResult read = ReadAll(Format::kJsonl, "");
  ASSERT_TRUE(read.status.ok());
  EXPECT_TRUE(read.rows.empty());
  read = ReadAll(Format::kJsonl, "{}\n{ }\n");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.rows, (std::vector<Row>{{}, {}}));
}

TEST(JsonlReaderTest, GivenColumnNamesComeFirstAndBomIsSkipped) {
  ReadOptions options;
  options.column_names = {"z", "a"};
  ReadResult read = ReadAll(Format::kJsonl, "\xEF\xBB\xBF{\"a\": 1, \"b\": 2}\n", options);
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.columns, (std::vector<std::string>{"z", "a", "b"}));
  EXPECT_EQ(read.rows, (std::vector<Row>{{kNull, "1", "2"}}));
}

TEST(JsonlReaderTest, MalformedInputNamesFileLineAndColumn) {
  const std::vector<MalformedCase> cases = {
      {"array line", "{\"a\":1}\n[1,2]\n", "x.jsonl:2:1: expected a JSON object", 1},
      {"scalar line", "{\"a\":1}\n  42\n", "x.jsonl:2:3: expected a JSON object", 1},
      {"missing colon", "{\"a\" 1}\n",
       "x.jsonl:1:6: malformed JSON: syntax error while parsing "
       "object separator - unexpected number literal; expected ':'",
       0},
      {"bad literal", "{\"a\": tru}\n",
       "x.jsonl:1:10: malformed JSON: syntax error while parsing value - invalid literal", 0},
      {"trailing comma", "{\"a\": 1,}", "", 0},
      {"trailing content", "{\"a\": 1} {\"b\": 2}", "", 0},
      {"unclosed object", "{\"a\": {\"b\": 1}\n", "", 0},
      {"bad nested value", "{\"a\": [1,,2]}\n", "", 0},
      {"bad number", "{\"a\": 01}\n", "", 0},
      {"control character in string", "{\"a\": \"x\ty\"}\n", "", 0},
      {"duplicate key", "{\"a\": 1, \"a\": 2}\n", "x.jsonl:1:10: duplicate key 'a'", 0},
      {"empty key", "{\"\": 1}\n", "x.jsonl:1:2: empty key (a column needs a name)", 0},
      {"number out of range", "{\"a\": 1e999}\n", "x.jsonl:1:7: number out of range: 1e999", 0},
      {"lone surrogate", "{\"a\": \"\\udc00\"}\n", "", 0},
      {"invalid utf8", "{\"a\": 1}\n{\"a\": \"\xff\"}\n", "x.jsonl:2:8: invalid UTF-8", 1},
      {"nul byte", std::string("{\"a\": 1}\0\n", 10), "x.jsonl:1:9: malformed JSON: a NUL byte", 0},
  };
  for (const MalformedCase& test : cases) {
    ReadResult read = ReadAll(Format::kJsonl, test.data);
    EXPECT_EQ(read.status.code(), StatusCode::kInvalidArgument) << test.name;
    if (test.message.empty()) {
      EXPECT_NE(read.status.message().find("malformed JSON"), std::string::npos)
          << test.name << ": " << read.status.message();
    } else {
      EXPECT_EQ(read.status.message(), test.message) << test.name;
    }
    EXPECT_EQ(read.rows.size(), test.rows_before) << test.name;
  }
}

TEST(JsonlReaderTest, FieldLargerThanMaxFieldBytesIsAnError) {
  ReadOptions options;
  options.max_field_bytes = 4;
  ReadResult read = ReadAll(Format::kJsonl, "{\"a\": \"abcd\"}\n{\"a\": \"abcde\"}\n", options);
  EXPECT_EQ(read.rows.size(), 1u);
  EXPECT_EQ(read.status.message(), "x.jsonl:2:7: field is larger than 4 bytes");
}

TEST(JsonlReaderTest, TabsBetweenTokensAreWhitespace) {
  ReadResult read = ReadAll(Format::kJsonl, "{\t\"a\":\t1}\n");
  ASSERT_TRUE(read.status.ok()) << read.status.ToString();
  EXPECT_EQ(read.rows, (std::vector<Row>{{"1"}}));
}

}  // namespace
}  // namespace kiln::table
