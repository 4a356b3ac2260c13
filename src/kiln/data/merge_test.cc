#include "kiln/data/merge.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "kiln/data/chunked_table_for_test.h"

namespace kiln::data {
namespace {

using testing::MakeVersion;
using testing::MemoryLoader;
using testing::ReadRows;
using Outcome = TableMerge::Outcome;

const std::string kHeader = "id,name,score\n";

std::string Row(int i) {
  return std::to_string(i) + ",n" + std::to_string(i) + "," + std::to_string(i) + ".5\n";
}

std::string Rows(int from, int to) {
  std::string rows;
  for (int i = from; i <= to; ++i) rows += Row(i);
  return rows;
}

// As ReadRows prints them.
std::string Merged(int i) {
  return std::to_string(i) + "|n" + std::to_string(i) + "|" + std::to_string(i) + ".5";
}

std::vector<std::string> BaseChunks() { return {kHeader + Rows(1, 3), Rows(4, 6), Rows(7, 9)}; }

std::vector<std::string> With(size_t index, const std::string& text) {
  std::vector<std::string> chunks = BaseChunks();
  chunks[index] = text;
  return chunks;
}

struct Merge {
  Result<TableMerge> result = TableMerge();
  std::string bytes;
  int writes = 0;
};

Merge MergeWith(MemoryLoader& loader, const TableVersion* base, const TableVersion* ours,
                const TableVersion* theirs, MergeStrategy strategy) {
  Merge merge;
  merge.result = MergeTable(base, ours, theirs, loader, strategy, [&](std::string_view bytes) {
    merge.bytes.append(bytes);
    ++merge.writes;
    return Status::Ok();
  });
  return merge;
}

struct MergeCase {
  std::string name;
  std::vector<std::string> ours;
  std::vector<std::string> theirs;
  MergeStrategy strategy = MergeStrategy::kNone;
  Outcome outcome = Outcome::kMerged;
  std::vector<std::string> rows;  // kMerged: the merged rows as ReadRows prints them
  std::string conflicts = "[]";   // kConflict: MergeConflict::ToJson of each
};

const std::string kRow5Ours = "4,n4,4.5\n5,n5,50\n6,n6,6.5\n";
const std::string kRow5Theirs = "4,n4,4.5\n5,n5,55\n6,n6,6.5\n";
const std::string kRow8Theirs = "7,n7,7.5\n8,eight,8.5\n9,n9,9.5\n";

std::vector<std::string> BaseRows() {
  std::vector<std::string> rows;
  for (int i = 1; i <= 9; ++i) rows.push_back(Merged(i));
  return rows;
}

std::vector<MergeCase> MergeCases() {
  std::vector<std::string> base = BaseChunks();
  std::vector<std::string> ours_row5_theirs_row8 = With(1, kRow5Theirs);
  ours_row5_theirs_row8[2] = kRow8Theirs;
  std::vector<std::string> strategy_ours_rows = BaseRows();
  strategy_ours_rows[4] = "5|n5|50";
  strategy_ours_rows[7] = "8|eight|8.5";
  std::vector<std::string> strategy_theirs_rows = strategy_ours_rows;
  strategy_theirs_rows[4] = "5|n5|55";
  std::vector<std::string> restored = BaseRows();
  restored.erase(restored.begin() + 4);
  restored.push_back("5|n5|55");
  std::vector<std::string> both_added = BaseRows();
  both_added[1] = "2|two|2.5";
  both_added.push_back(Merged(10));
  return {
      {"OnlyOursChangedTakesOurs", With(1, kRow5Ours), base, MergeStrategy::kNone,
       Outcome::kTakeOurs},
      {"OnlyTheirsChangedTakesTheirs", base, With(1, kRow5Theirs), MergeStrategy::kNone,
       Outcome::kTakeTheirs},
      {"SameEditOnBothSidesTakesOurs", With(1, kRow5Ours), With(1, kRow5Ours), MergeStrategy::kNone,
       Outcome::kTakeOurs},
      {"DisjointKeyedEditsAreMergedInOursOrderThenTheirsAdditions",
       {kHeader + "1,n1,1.5\n2,n2,2.75\n3,n3,3.5\n", Rows(4, 6), Rows(7, 10)},
       {base[0], Rows(4, 4) + Rows(6, 6), kRow8Theirs + Row(11)},
       MergeStrategy::kNone,
       Outcome::kMerged,
       {Merged(1), "2|n2|2.75", Merged(3), Merged(4), Merged(6), Merged(7), "8|eight|8.5",
        Merged(9), Merged(10), Merged(11)}},
      {"MergeRejectsConflictingRowEdits",
       With(1, kRow5Ours),
       With(1, kRow5Theirs),
       MergeStrategy::kNone,
       Outcome::kConflict,
       {},
       R"([{"table":"credit","key":"5","reason":"both changed",
            "ours":{"id":5,"name":"n5","score":50.0},
            "theirs":{"id":5,"name":"n5","score":55.0}}])"},
      {"RowRemovedByOneSideAndChangedByTheOtherConflicts",
       With(1, Row(4) + Row(6)),
       With(1, kRow5Theirs),
       MergeStrategy::kNone,
       Outcome::kConflict,
       {},
       R"([{"table":"credit","key":"5","reason":"changed and removed","ours":null,
            "theirs":{"id":5,"name":"n5","score":55.0}}])"},
      {"SameRowAddedOnBothSidesIsNotAConflict",
       With(2, Rows(7, 10)),
       {kHeader + "1,n1,1.5\n2,two,2.5\n3,n3,3.5\n", base[1], Rows(7, 10)},
       MergeStrategy::kNone,
       Outcome::kMerged,
       both_added},
      {"DifferentRowsAddedUnderOneKeyConflict",
       With(2, Rows(7, 9) + "10,ten,10.5\n"),
       With(2, Rows(7, 10)),
       MergeStrategy::kNone,
       Outcome::kConflict,
       {},
       R"([{"table":"credit","key":"10","reason":"both added",
            "ours":{"id":10,"name":"ten","score":10.5},
            "theirs":{"id":10,"name":"n10","score":10.5}}])"},
      {"StrategyOursKeepsOursSideOfConflictsAndTheirOtherEdits", With(1, kRow5Ours),
       ours_row5_theirs_row8, MergeStrategy::kOurs, Outcome::kMerged, strategy_ours_rows},
      {"StrategyTheirsTakesTheirSideOfConflicts", With(1, kRow5Ours), ours_row5_theirs_row8,
       MergeStrategy::kTheirs, Outcome::kMerged, strategy_theirs_rows},
      {"StrategyTheirsRestoresARowOursRemovedAfterOursRows", With(1, Row(4) + Row(6)),
       With(1, kRow5Theirs), MergeStrategy::kTheirs, Outcome::kMerged, restored},
      {"StrategyOursKeepsARowOursRemovedRemoved", With(1, Row(4) + Row(6)), With(1, kRow5Theirs),
       MergeStrategy::kOurs, Outcome::kTakeOurs},
  };
}

class MergeCaseTest : public ::testing::TestWithParam<MergeCase> {};

TEST_P(MergeCaseTest, DecidesAndWritesTheExpectedRows) {
  const MergeCase& test = GetParam();
  MemoryLoader loader;
  TableVersion base = MakeVersion(loader, "credit", table::Format::kCsv, BaseChunks(), "id");
  TableVersion ours = MakeVersion(loader, "credit", table::Format::kCsv, test.ours, "id");
  TableVersion theirs = MakeVersion(loader, "credit", table::Format::kCsv, test.theirs, "id");

  Merge merge = MergeWith(loader, &base, &ours, &theirs, test.strategy);
  ASSERT_TRUE(merge.result.ok()) << merge.result.status().ToString();
  EXPECT_EQ(static_cast<int>(merge.result->outcome), static_cast<int>(test.outcome));
  Json conflicts = Json::array();
  for (const MergeConflict& conflict : merge.result->conflicts) {
    conflicts.push_back(conflict.ToJson());
  }
  EXPECT_EQ(conflicts, Json::parse(test.conflicts)) << conflicts.dump();
  if (test.outcome == Outcome::kMerged) {
    EXPECT_TRUE(merge.bytes.starts_with(kHeader)) << merge.bytes;
    EXPECT_EQ(ReadRows(table::Format::kCsv, merge.bytes), test.rows) << merge.bytes;
  } else {
    EXPECT_EQ(merge.writes, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Merge, MergeCaseTest, ::testing::ValuesIn(MergeCases()),
                         [](const auto& info) { return info.param.name; });

TEST(MergeTest, UnkeyedTableChangedOnBothSidesIsOneTableConflict) {
  MemoryLoader loader;
  TableVersion base = MakeVersion(loader, "credit", table::Format::kCsv, BaseChunks());
  TableVersion ours = MakeVersion(loader, "credit", table::Format::kCsv, With(1, kRow5Ours));
  TableVersion theirs = MakeVersion(loader, "credit", table::Format::kCsv, With(2, kRow8Theirs));
  loader.ResetCounts();

  Merge merge = MergeWith(loader, &base, &ours, &theirs, MergeStrategy::kNone);
  ASSERT_TRUE(merge.result.ok()) << merge.result.status().ToString();
  EXPECT_EQ(merge.result->outcome, Outcome::kConflict);
  ASSERT_EQ(merge.result->conflicts.size(), 1u);
  const MergeConflict& conflict = merge.result->conflicts[0];
  EXPECT_EQ(conflict.key, "");
  EXPECT_EQ(conflict.reason, "table changed on both sides");
  EXPECT_EQ(conflict.ours["rows"], 9);
  EXPECT_EQ(conflict.ours["manifest"], ours.manifest.Hex());
  EXPECT_EQ(conflict.theirs["columns"], Json::parse(R"(["id","name","score"])"));
  EXPECT_EQ(loader.loads(), 0);

  EXPECT_EQ(MergeWith(loader, &base, &ours, &theirs, MergeStrategy::kTheirs).result->outcome,
            Outcome::kTakeTheirs);
  EXPECT_EQ(MergeWith(loader, &base, &ours, &theirs, MergeStrategy::kOurs).result->outcome,
            Outcome::kTakeOurs);
}

TEST(MergeTest, TableRemovedOnOneSideFollowsTheOtherOnlyIfItWasUnchanged) {
  MemoryLoader loader;
  TableVersion base = MakeVersion(loader, "credit", table::Format::kCsv, BaseChunks(), "id");
  TableVersion changed =
      MakeVersion(loader, "credit", table::Format::kCsv, With(1, kRow5Ours), "id");

  EXPECT_EQ(MergeWith(loader, &base, nullptr, &base, MergeStrategy::kNone).result->outcome,
            Outcome::kRemoved);
  EXPECT_EQ(MergeWith(loader, &base, &base, nullptr, MergeStrategy::kNone).result->outcome,
            Outcome::kRemoved);
  EXPECT_EQ(MergeWith(loader, nullptr, nullptr, &changed, MergeStrategy::kNone).result->outcome,
            Outcome::kTakeTheirs);

  Merge conflict = MergeWith(loader, &base, nullptr, &changed, MergeStrategy::kNone);
  ASSERT_EQ(conflict.result->outcome, Outcome::kConflict);
  ASSERT_EQ(conflict.result->conflicts.size(), 1u);
  EXPECT_EQ(conflict.result->conflicts[0].reason, "changed and removed");
  EXPECT_TRUE(conflict.result->conflicts[0].ours.is_null());
  EXPECT_EQ(conflict.result->conflicts[0].theirs["rows"], 9);
  EXPECT_EQ(MergeWith(loader, &base, nullptr, &changed, MergeStrategy::kOurs).result->outcome,
            Outcome::kRemoved);
  EXPECT_EQ(MergeWith(loader, &base, nullptr, &changed, MergeStrategy::kTheirs).result->outcome,
            Outcome::kTakeTheirs);
}

TEST(MergeTest, DifferentColumnsAreATableConflictUnlessAStrategyPicksASide) {
  MemoryLoader loader;
  TableVersion base = MakeVersion(loader, "credit", table::Format::kCsv, BaseChunks(), "id");
  TableVersion ours =
      MakeVersion(loader, "credit", table::Format::kCsv,
                  {"id,name,score,flag\n1,n1,1.5,true\n2,n2,2.5,true\n3,n3,3.5,false\n",
                   "4,n4,4.5,true\n5,n5,5.5,true\n6,n6,6.5,true\n",
                   "7,n7,7.5,true\n8,n8,8.5,true\n9,n9,9.5,true\n"},
                  "id");
  TableVersion theirs =
      MakeVersion(loader, "credit", table::Format::kCsv, With(1, kRow5Theirs), "id");
  Merge merge = MergeWith(loader, &base, &ours, &theirs, MergeStrategy::kNone);
  ASSERT_TRUE(merge.result.ok());
  ASSERT_EQ(merge.result->outcome, Outcome::kConflict);
  EXPECT_EQ(merge.result->conflicts[0].reason, "table changed on both sides");
  EXPECT_EQ(MergeWith(loader, &base, &ours, &theirs, MergeStrategy::kOurs).result->outcome,
            Outcome::kTakeOurs);
}

TEST(MergeTest, IntColumnWidensToFloatWhenOneSideWritesDecimals) {
  MemoryLoader loader;
  TableVersion base = MakeVersion(loader, "t", table::Format::kCsv, {"id,v\n1,1\n", "2,2\n"}, "id");
  TableVersion ours =
      MakeVersion(loader, "t", table::Format::kCsv, {"id,v\n1,10\n", "2,2\n"}, "id");
  TableVersion theirs =
      MakeVersion(loader, "t", table::Format::kCsv, {"id,v\n1,1\n", "2,2.5\n"}, "id");
  ASSERT_EQ(ours.schema.columns[1].type, table::ColumnType::kInt64);
  ASSERT_EQ(theirs.schema.columns[1].type, table::ColumnType::kFloat64);
  Merge merge = MergeWith(loader, &base, &ours, &theirs, MergeStrategy::kNone);
  ASSERT_TRUE(merge.result.ok()) << merge.result.status().ToString();
  ASSERT_EQ(merge.result->outcome, Outcome::kMerged);
  EXPECT_EQ(ReadRows(table::Format::kCsv, merge.bytes),
            (std::vector<std::string>{"1|10", "2|2.5"}));
}

TEST(MergeTest, JsonlMergeWritesJsonlThatReadsBack) {
  MemoryLoader loader;
  auto jsonl = [&](const std::vector<std::string>& chunks) {
    return MakeVersion(loader, "events", table::Format::kJsonl, chunks, "id");
  };
  TableVersion base =
      jsonl({"{\"id\":1,\"s\":\"a\",\"ok\":true}\n{\"id\":2,\"s\":\"b\",\"ok\":true}\n",
             "{\"id\":3,\"s\":\"c\",\"ok\":false}\n"});
  TableVersion ours = jsonl(
      {"{\"id\":1,\"s\":\"A, \\\"quoted\\\"\",\"ok\":true}\n{\"id\":2,\"s\":\"b\",\"ok\":true}\n",
       "{\"id\":3,\"s\":\"c\",\"ok\":false}\n"});
  TableVersion theirs =
      jsonl({"{\"id\":1,\"s\":\"a\",\"ok\":true}\n{\"id\":2,\"s\":\"b\",\"ok\":true}\n",
             "{\"id\":3,\"s\":null,\"ok\":false}\n{\"id\":4,\"s\":\"d\",\"ok\":true}\n"});
  Merge merge = MergeWith(loader, &base, &ours, &theirs, MergeStrategy::kNone);
  ASSERT_TRUE(merge.result.ok()) << merge.result.status().ToString();
  ASSERT_EQ(merge.result->outcome, Outcome::kMerged);
  EXPECT_EQ(
      ReadRows(table::Format::kJsonl, merge.bytes),
      (std::vector<std::string>{"1|A, \"quoted\"|true", "2|b|true", "3|<null>|false", "4|d|true"}))
      << merge.bytes;
}

TEST(MergeTest, TableAddedOnBothSidesMergesByKey) {
  MemoryLoader loader;
  TableVersion ours =
      MakeVersion(loader, "credit", table::Format::kCsv, {kHeader + Rows(1, 3)}, "id");
  TableVersion theirs =
      MakeVersion(loader, "credit", table::Format::kCsv, {kHeader + Rows(2, 4)}, "id");
  Merge merge = MergeWith(loader, nullptr, &ours, &theirs, MergeStrategy::kNone);
  ASSERT_TRUE(merge.result.ok()) << merge.result.status().ToString();
  ASSERT_EQ(merge.result->outcome, Outcome::kMerged);
  EXPECT_EQ(ReadRows(table::Format::kCsv, merge.bytes),
            (std::vector<std::string>{Merged(1), Merged(2), Merged(3), Merged(4)}));
}

TEST(MergeTest, DuplicateKeyIsInvalidArgumentNamingTableKeyAndLines) {
  MemoryLoader loader;
  TableVersion base = MakeVersion(loader, "credit", table::Format::kCsv, BaseChunks(), "id");
  TableVersion ours = MakeVersion(loader, "credit", table::Format::kCsv,
                                  With(1, Rows(4, 6) + "5,again,1.5\n"), "id");
  TableVersion theirs =
      MakeVersion(loader, "credit", table::Format::kCsv, With(2, kRow8Theirs), "id");
  Merge merge = MergeWith(loader, &base, &ours, &theirs, MergeStrategy::kNone);
  ASSERT_EQ(merge.result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(merge.result.status().message(),
            "table 'credit': key '5' appears twice in ours (line 6 and line 8)");

  // A key added in a changed chunk that an unchanged chunk already holds.
  TableVersion ours_again = MakeVersion(loader, "credit", table::Format::kCsv,
                                        With(1, Rows(4, 6) + "2,again,1.5\n"), "id");
  Merge again = MergeWith(loader, &base, &ours_again, &theirs, MergeStrategy::kNone);
  ASSERT_EQ(again.result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(again.result.status().message(),
            "table 'credit': key '2' appears twice in ours (line 8 and line 3)");
}

TEST(MergeTest, ReadsBaseAndTheirsOnlyWhereTheyDifferAndStreamsOurs) {
  // Ten chunks of five rows; ours edits chunk 2, theirs chunk 7.
  MemoryLoader loader;
  std::vector<std::string> chunks;
  for (int c = 0; c < 10; ++c)
    chunks.push_back((c == 0 ? kHeader : "") + Rows(c * 5 + 1, c * 5 + 5));
  std::vector<std::string> ours_chunks = chunks;
  ours_chunks[2] = Rows(11, 14) + "15,fifteen,15.5\n";
  std::vector<std::string> theirs_chunks = chunks;
  theirs_chunks[7] = Rows(36, 39);
  TableVersion base = MakeVersion(loader, "credit", table::Format::kCsv, chunks, "id");
  TableVersion ours = MakeVersion(loader, "credit", table::Format::kCsv, ours_chunks, "id");
  TableVersion theirs = MakeVersion(loader, "credit", table::Format::kCsv, theirs_chunks, "id");
  loader.ResetCounts();

  Merge merge = MergeWith(loader, &base, &ours, &theirs, MergeStrategy::kNone);
  ASSERT_TRUE(merge.result.ok()) << merge.result.status().ToString();
  ASSERT_EQ(merge.result->outcome, Outcome::kMerged);
  // base chunks 2 and 7, ours' chunk 2, theirs' chunk 7, then ours' nine unchanged chunks.
  EXPECT_EQ(loader.loads(), 13);
  std::vector<std::string> rows = ReadRows(table::Format::kCsv, merge.bytes);
  ASSERT_EQ(rows.size(), 49u);
  EXPECT_EQ(rows[14], "15|fifteen|15.5");
  EXPECT_EQ(rows[39], Merged(41));
}

}  // namespace
}  // namespace kiln::data
