#include "kiln/data/diff.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "kiln/data/chunked_table_for_test.h"

namespace kiln::data {
namespace {

using testing::MakeVersion;
using testing::MemoryLoader;

const std::string kHeader = "id,name,score\n";

// "I,nI,I.5" rows from..to, one per line: row I is on line I + 1.
std::string Rows(int from, int to) {
  std::string rows;
  for (int i = from; i <= to; ++i) {
    rows += std::to_string(i) + ",n" + std::to_string(i) + "," + std::to_string(i) + ".5\n";
  }
  return rows;
}

// Three chunks of three rows: 1-3 (with the header), 4-6, 7-9.
std::vector<std::string> BaseChunks() { return {kHeader + Rows(1, 3), Rows(4, 6), Rows(7, 9)}; }

struct DiffCase {
  std::string name;
  std::vector<std::string> b_chunks;
  std::optional<std::string> key;
  std::string status;
  int64_t added = 0;
  int64_t removed = 0;
  int64_t changed = 0;
  std::string rows;            // expected TableDiff::rows as JSON
  std::string schema_changes;  // expected TableDiff::schema_changes as JSON
  int loads = 0;               // chunks the diff may read
};

std::vector<DiffCase> DiffCases() {
  std::vector<std::string> base = BaseChunks();
  auto with = [&](size_t index, const std::string& text) {
    std::vector<std::string> chunks = base;
    chunks[index] = text;
    return chunks;
  };
  std::vector<std::string> with_flag;
  for (const std::string& chunk : base) {
    std::string flagged;
    size_t start = 0;
    while (start < chunk.size()) {
      size_t end = chunk.find('\n', start);
      std::string line = chunk.substr(start, end - start);
      flagged += line + (line == "id,name,score" ? ",flag\n" : ",true\n");
      start = end + 1;
    }
    with_flag.push_back(flagged);
  }
  return {
      {"UnchangedVersionsReadNothing", base, "id", "unchanged", 0, 0, 0, "[]", "[]", 0},
      {"ChangedCellListsOnlyChangedColumns", with(1, "4,n4,4.5\n5,n5,9.25\n6,n6,6.5\n"), "id",
       "modified", 0, 0, 1,
       R"([{"kind":"changed","key":"5","line_a":6,"line_b":6,
            "before":{"score":5.5},"after":{"score":9.25}}])",
       "[]", 2},
      {"KeyOnlyInBIsAdded", with(2, Rows(7, 10)), "id", "modified", 1, 0, 0,
       R"([{"kind":"added","key":"10","line_a":0,"line_b":11,"before":null,
            "after":{"id":10,"name":"n10","score":10.5}}])",
       "[]", 2},
      {"KeyOnlyInAIsRemoved", with(1, Rows(5, 6)), "id", "modified", 0, 1, 0,
       R"([{"kind":"removed","key":"4","line_a":5,"line_b":0,
            "before":{"id":4,"name":"n4","score":4.5},"after":null}])",
       "[]", 2},
      {"KeyMovedToAnotherChunkIsNoRowChange",
       {kHeader + Rows(1, 2), Rows(3, 6), Rows(7, 9)},
       "id",
       "modified",
       0,
       0,
       0,
       "[]",
       "[]",
       4},
      {"ChunksThatOnlyMovedAreNotRead",
       {base[0], base[2], base[1]},
       "id",
       "modified",
       0,
       0,
       0,
       "[]",
       "[]",
       0},
      {"UnkeyedEditAtSamePositionIsOneChangedRow", with(1, "4,n4,4.5\n5,n5,9.25\n6,n6,6.5\n"),
       std::nullopt, "modified", 0, 0, 1,
       R"([{"kind":"changed","key":"","line_a":6,"line_b":6,
            "before":{"score":5.5},"after":{"score":9.25}}])",
       "[]", 2},
      {"UnkeyedInsertedRowIsAddedAndOthersMatch",
       with(1, "4,n4,4.5\n44,n44,44.5\n5,n5,5.5\n6,n6,6.5\n"), std::nullopt, "modified", 1, 0, 0,
       R"([{"kind":"added","key":"","line_a":0,"line_b":6,"before":null,
            "after":{"id":44,"name":"n44","score":44.5}}])",
       "[]", 2},
      {"UnkeyedMissingRowIsRemoved", with(1, Rows(5, 6)), std::nullopt, "modified", 0, 1, 0,
       R"([{"kind":"removed","key":"","line_a":5,"line_b":0,"before":{"id":4,"name":"n4","score":4.5},
            "after":null}])",
       "[]", 2},
      {"AddedColumnIsASchemaChangeAndRowsCompareOnCommonColumns", with_flag, "id", "modified", 0, 0,
       0, "[]", R"([{"column":"flag","change":"added","before":"","after":"bool"}])", 6},
      {"ColumnTypeChangeIsReportedWithTheRowThatCausedIt",
       with(1, "4,n4,4.5\n5,n5,n/a\n6,n6,6.5\n"), "id", "modified", 0, 0, 1,
       R"([{"kind":"changed","key":"5","line_a":6,"line_b":6,
            "before":{"score":5.5},"after":{"score":"n/a"}}])",
       R"([{"column":"score","change":"type","before":"float64","after":"string"}])", 2},
  };
}

class DiffCaseTest : public ::testing::TestWithParam<DiffCase> {};

TEST_P(DiffCaseTest, ReportsTheExpectedChanges) {
  const DiffCase& test = GetParam();
  MemoryLoader loader;
  TableVersion a = MakeVersion(loader, "credit", table::Format::kCsv, BaseChunks(), test.key);
  TableVersion b = MakeVersion(loader, "credit", table::Format::kCsv, test.b_chunks, test.key);
  loader.ResetCounts();

  auto diff = DiffTables(&a, &b, loader);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_EQ(diff->table, "credit");
  EXPECT_EQ(diff->status, test.status);
  EXPECT_EQ(diff->rows_added, test.added);
  EXPECT_EQ(diff->rows_removed, test.removed);
  EXPECT_EQ(diff->rows_changed, test.changed);
  EXPECT_FALSE(diff->truncated);
  Json json = diff->ToJson();
  EXPECT_EQ(json["rows"], Json::parse(test.rows)) << json["rows"].dump();
  EXPECT_EQ(json["schema_changes"], Json::parse(test.schema_changes))
      << json["schema_changes"].dump();
  EXPECT_EQ(loader.loads(), test.loads);
}

INSTANTIATE_TEST_SUITE_P(Diff, DiffCaseTest, ::testing::ValuesIn(DiffCases()),
                         [](const auto& info) { return info.param.name; });

TEST(DiffTest, AddedTableCountsEveryRowAndReadsOnlyWhatItLists) {
  MemoryLoader loader;
  TableVersion b = MakeVersion(loader, "credit", table::Format::kCsv, BaseChunks(), "id");
  loader.ResetCounts();
  auto diff = DiffTables(nullptr, &b, loader, DiffOptions{2});
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_EQ(diff->status, "added");
  EXPECT_EQ(diff->rows_added, 9);
  ASSERT_EQ(diff->rows.size(), 2u);
  EXPECT_EQ(diff->rows[0].kind, "added");
  EXPECT_EQ(diff->rows[0].key, "1");
  EXPECT_EQ(diff->rows[0].line_b, 2);
  EXPECT_EQ(diff->rows[1].after, Json::parse(R"({"id":2,"name":"n2","score":2.5})"));
  EXPECT_TRUE(diff->truncated);
  EXPECT_EQ(loader.loads(), 1);
}

TEST(DiffTest, RemovedTableCountsEveryRowAsRemoved) {
  MemoryLoader loader;
  TableVersion a = MakeVersion(loader, "credit", table::Format::kCsv, BaseChunks());
  auto diff = DiffTables(&a, nullptr, loader, DiffOptions{100});
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_EQ(diff->status, "removed");
  EXPECT_EQ(diff->rows_removed, 9);
  ASSERT_EQ(diff->rows.size(), 9u);
  EXPECT_EQ(diff->rows[8].before, Json::parse(R"({"id":9,"name":"n9","score":9.5})"));
  EXPECT_EQ(diff->rows[8].line_a, 10);
  EXPECT_FALSE(diff->truncated);
}

TEST(DiffTest, TruncatesListedRowsAtMaxRowsButCountsEveryChange) {
  MemoryLoader loader;
  TableVersion a = MakeVersion(loader, "credit", table::Format::kCsv, BaseChunks(), "id");
  TableVersion b = MakeVersion(loader, "credit", table::Format::kCsv,
                               {kHeader + "1,n1,1.5\n2,n2,0\n3,n3,3.5\n", "5,n5,0\n6,n6,6.5\n",
                                "7,n7,7.5\n8,n8,0\n9,n9,9.5\n"},
                               "id");
  auto diff = DiffTables(&a, &b, loader, DiffOptions{2});
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_EQ(diff->rows_changed, 3);
  EXPECT_EQ(diff->rows_removed, 1);
  ASSERT_EQ(diff->rows.size(), 2u);
  EXPECT_EQ(diff->rows[0].key, "2");
  EXPECT_EQ(diff->rows[0].kind, "changed");
  EXPECT_EQ(diff->rows[1].key, "4");
  EXPECT_EQ(diff->rows[1].kind, "removed");
  EXPECT_TRUE(diff->truncated);
  EXPECT_TRUE(diff->ToJson()["truncated"].get<bool>());
}

TEST(DiffTest, OpaqueFilesCompareByChunksWithoutReadingThem) {
  MemoryLoader loader;
  auto file = [&](const std::vector<std::string>& parts) {
    TableVersion version;
    version.name = version.file_name = "images/cat.png";
    std::string manifest;
    for (const std::string& part : parts) {
      ChunkRef ref;
      ref.id = loader.Put(part);
      ref.size = part.size();
      version.chunks.push_back(ref);
      version.bytes += part.size();
      manifest += ref.id.Hex();
    }
    version.manifest = Sha256Of(manifest);
    return version;
  };
  TableVersion a = file({"\x89PNG", "pixels"});
  TableVersion same = file({"\x89PNG", "pixels"});
  TableVersion other = file({"\x89PNG", "other pixels"});
  loader.ResetCounts();
  auto unchanged = DiffTables(&a, &same, loader);
  auto modified = DiffTables(&a, &other, loader);
  ASSERT_TRUE(unchanged.ok() && modified.ok());
  EXPECT_EQ(unchanged->status, "unchanged");
  EXPECT_EQ(modified->status, "modified");
  EXPECT_TRUE(modified->rows.empty());
  EXPECT_EQ(loader.loads(), 0);

  TableVersion table = MakeVersion(loader, "credit", table::Format::kCsv, BaseChunks());
  auto mixed = DiffTables(&a, &table, loader);
  EXPECT_EQ(mixed.status().code(), StatusCode::kInvalidArgument);
}

TEST(DiffTest, DuplicateKeyIsInvalidArgumentNamingTableKeyAndLines) {
  MemoryLoader loader;
  TableVersion a = MakeVersion(loader, "credit", table::Format::kCsv, BaseChunks(), "id");
  TableVersion b =
      MakeVersion(loader, "credit", table::Format::kCsv,
                  {BaseChunks()[0], "4,n4,4.5\n5,n5,5.5\n5,again,1\n", Rows(7, 9)}, "id");
  auto diff = DiffTables(&a, &b, loader);
  ASSERT_EQ(diff.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(diff.status().message(),
            "table 'credit': key '5' appears twice in version B (lines 6 and 7)");
}

TEST(DiffTest, ValuesAreTypedBySchemaWithNaNAsAString) {
  MemoryLoader loader;
  TableVersion a = MakeVersion(loader, "t", table::Format::kCsv,
                               {"id,x,ok,s\n1,1.5,true,a\n2,2.5,false,b\n"}, "id");
  TableVersion b = MakeVersion(loader, "t", table::Format::kCsv,
                               {"id,x,ok,s\n1,nan,false,\n2,2.5,false,b\n"}, "id");
  auto diff = DiffTables(&a, &b, loader);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  ASSERT_EQ(diff->rows.size(), 1u);
  EXPECT_EQ(diff->rows[0].before, Json::parse(R"({"x":1.5,"ok":true,"s":"a"})"));
  EXPECT_EQ(diff->rows[0].after, Json::parse(R"({"x":"NaN","ok":false,"s":null})"));
}

TEST(DiffTest, NullDiffersFromEmptyStringInJsonl) {
  MemoryLoader loader;
  TableVersion a = MakeVersion(loader, "events", table::Format::kJsonl,
                               {"{\"id\":1,\"s\":\"\"}\n", "{\"id\":2,\"s\":\"x\"}\n"}, "id");
  TableVersion b = MakeVersion(loader, "events", table::Format::kJsonl,
                               {"{\"id\":1,\"s\":null}\n", "{\"id\":2,\"s\":\"x\"}\n"}, "id");
  loader.ResetCounts();
  auto diff = DiffTables(&a, &b, loader);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_EQ(diff->rows_changed, 1);
  ASSERT_EQ(diff->rows.size(), 1u);
  EXPECT_EQ(diff->rows[0].key, "1");
  EXPECT_EQ(diff->rows[0].before, Json::parse(R"({"s":""})"));
  EXPECT_EQ(diff->rows[0].after, Json::parse(R"({"s":null})"));
  EXPECT_EQ(loader.loads(), 2);
}

TEST(DiffTest, ReadsOnlyTheChunksThatChanged) {
  // 200 chunks of 50 rows; two chunks edited in B.
  MemoryLoader loader;
  std::vector<std::string> chunks;
  for (int c = 0; c < 200; ++c) {
    chunks.push_back((c == 0 ? kHeader : "") + Rows(c * 50 + 1, c * 50 + 50));
  }
  std::vector<std::string> edited = chunks;
  edited[17] = Rows(17 * 50 + 1, 17 * 50 + 49) + "900000,new,1.5\n";
  edited[150] = Rows(150 * 50 + 2, 150 * 50 + 50);
  for (std::optional<std::string> key :
       {std::optional<std::string>("id"), std::optional<std::string>()}) {
    TableVersion a = MakeVersion(loader, "big", table::Format::kCsv, chunks, key);
    TableVersion b = MakeVersion(loader, "big", table::Format::kCsv, edited, key);
    loader.ResetCounts();
    auto diff = DiffTables(&a, &b, loader);
    ASSERT_TRUE(diff.ok()) << diff.status().ToString();
    if (key) {
      EXPECT_EQ(diff->rows_added, 1);    // 900000
      EXPECT_EQ(diff->rows_removed, 2);  // 900 and 7501
      EXPECT_EQ(diff->rows_changed, 0);
    } else {
      EXPECT_EQ(diff->rows_added, 0);
      EXPECT_EQ(diff->rows_removed, 1);  // 7501
      EXPECT_EQ(diff->rows_changed, 1);  // 900 became 900000 at the same position
    }
    EXPECT_EQ(loader.loads(), 4);
    for (size_t i = 0; i < a.chunks.size(); ++i) {
      if (i != 17 && i != 150) {
        EXPECT_FALSE(loader.WasLoaded(a.chunks[i].id)) << i;
      }
    }
  }
}

}  // namespace
}  // namespace kiln::data
