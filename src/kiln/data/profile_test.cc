#include "kiln/data/profile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <ctime>
#include <cstdio>
#include <functional>
#include <limits>
#include <random>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "kiln/core/hash.h"
#include "kiln/data/chunked_table_for_test.h"
#include "kiln/data/table_version.h"
#include "kiln/table/inference.h"
#include "kiln/table/reader.h"
#include "kiln/table/schema.h"

namespace kiln::data {
namespace {

using table::ColumnType;

using testing::MemoryLoader;

table::Schema MakeSchema(const std::vector<std::pair<std::string, ColumnType>>& columns) {
  table::Schema schema;
  for (const auto& [name, type] : columns) schema.columns.push_back({name, type, true});
  return schema;
}

// A CSV table (header line + one line per row) cut into chunks that start at the given rows.
TableVersion MakeVersion(const std::string& csv, table::Schema schema,
                         const std::vector<size_t>& chunk_starts, MemoryLoader& loader) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < csv.size()) {
    size_t end = csv.find('\n', start);
    end = end == std::string::npos ? csv.size() : end + 1;
    lines.push_back(csv.substr(start, end - start));
    start = end;
  }
  TableVersion version;
  version.name = "t";
  version.file_name = "t.csv";
  version.format = table::Format::kCsv;
  version.schema = std::move(schema);
  CutCsvIntoChunks(lines, chunk_starts, loader, version);
  return version;
}

// One builder over all rows.
Json ProfileAll(const TableVersion& version, MemoryLoader& loader, ProfileOptions options = {}) {
  ProfileBuilder builder(version.schema, options);
  Status status = ForEachRow(version, loader, [&](const table::RowReader& row) {
    builder.Add(row);
    return Status::Ok();
  });
  EXPECT_TRUE(status.ok()) << status.ToString();
  return builder.Finish();
}

// Calls `add` on every row of every chunk with that chunk's builder (limited to sample keys
// below `key_limit`: ProfileBuilder::LimitSample); returns the builders.
std::vector<ProfileBuilder> ChunkBuilders(
    const TableVersion& version, MemoryLoader& loader, ProfileOptions options,
    const std::function<void(ProfileBuilder&, const table::RowReader&)>& add,
    const KeyLimits& key_limit = KeyLimits::kNone) {
  std::vector<ProfileBuilder> builders;
  for (size_t i = 0; i < version.chunks.size(); ++i) {
    builders.emplace_back(version.schema, options);
    builders.back().LimitSample(key_limit);
    Result<std::string> bytes = loader.Load(version.chunks[i].id);
    EXPECT_TRUE(bytes.ok());
    auto reader = table::RowReader::Open(*version.format, *bytes, ChunkReadOptions(version, i));
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    while (true) {
      Result<bool> more = (*reader)->Next();
      EXPECT_TRUE(more.ok()) << more.status().ToString();
      if (!more.ok() || !*more) break;
      add(builders.back(), **reader);
    }
  }
  return builders;
}

// One builder per chunk, as commits do, merged in chunk order (pairwise, as a tree, when `tree`).
Json ProfileByChunk(const TableVersion& version, MemoryLoader& loader, ProfileOptions options,
                    bool tree) {
  std::vector<ProfileBuilder> builders = ChunkBuilders(
      version, loader, options,
      [](ProfileBuilder& builder, const table::RowReader& row) { builder.Add(row); });
  if (tree) {
    while (builders.size() > 1) {
      std::vector<ProfileBuilder> next;
      for (size_t i = 0; i < builders.size(); i += 2) {
        if (i + 1 < builders.size()) builders[i].Merge(std::move(builders[i + 1]));
        next.push_back(std::move(builders[i]));
      }
      builders = std::move(next);
    }
  } else {
    for (size_t i = 1; i < builders.size(); ++i) builders[0].Merge(std::move(builders[i]));
  }
  return builders[0].Finish();
}

// A copy: callers often pass a temporary profile.
Json Column(const Json& profile, const std::string& name) {
  for (const Json& column : profile["columns"]) {
    if (column["name"] == name) return column;
  }
  ADD_FAILURE() << "no column " << name;
  return Json::object();
}

// A mixed table of `rows` rows; deterministic.
std::string MixedCsv(int rows) {
  static const char* kCities[] = {"paris", "berlin", "rome", "madrid", "oslo"};
  std::string csv = "id,amount,ratio,city,name,active,seen\n";
  for (int i = 0; i < rows; ++i) {
    csv += std::to_string((i * 7919) % 1000 - 500) + ",";
    csv += i % 13 == 0 ? "" : std::to_string(std::sin(i) * 1000.0 + i * 0.25);
    csv += ",";
    csv += i % 17 == 0 ? "nan" : std::to_string(1.0 / (i + 1));
    csv += ",";
    csv += kCities[(i * i) % 5];
    csv += ",name";
    csv += std::to_string(i % 37);
    csv += ",";
    csv += i % 3 == 0 ? "true" : i % 3 == 1 ? "False" : "";
    csv += ",2026-" + std::string(i % 12 < 9 ? "0" : "") + std::to_string(i % 12 + 1) + "-" +
           (i % 28 < 9 ? "0" : "") + std::to_string(i % 28 + 1) + "T10:00:00Z\n";
  }
  return csv;
}

table::Schema MixedSchema() {
  return MakeSchema({{"id", ColumnType::kInt64},
                     {"amount", ColumnType::kFloat64},
                     {"ratio", ColumnType::kFloat64},
                     {"city", ColumnType::kCategorical},
                     {"name", ColumnType::kString},
                     {"active", ColumnType::kBool},
                     {"seen", ColumnType::kTimestamp}});
}

TEST(ProfileTest, IntColumnHasExactStatistics) {
  MemoryLoader loader;
  std::string csv = "n\n";
  for (int i = 1; i <= 10; ++i) csv += std::to_string(i) + "\n";
  csv += "\n";  // one null (an empty unquoted field)
  TableVersion version = MakeVersion(csv, MakeSchema({{"n", ColumnType::kInt64}}), {4}, loader);
  Json profile = ProfileAll(version, loader);
  EXPECT_EQ(profile["rows"], 11);
  Json n = Column(profile, "n");
  EXPECT_EQ(n["type"], "int64");
  EXPECT_EQ(n["count"], 10);
  EXPECT_EQ(n["nulls"], 1);
  EXPECT_EQ(n["nan"], 0);
  EXPECT_EQ(n["min"], 1);
  EXPECT_EQ(n["max"], 10);
  EXPECT_TRUE(n["min"].is_number_integer());
  EXPECT_DOUBLE_EQ(n["mean"].get<double>(), 5.5);
  EXPECT_DOUBLE_EQ(n["std"].get<double>(), std::sqrt(82.5 / 9));  // sample std, n-1
  EXPECT_DOUBLE_EQ(n["quantiles"]["0.5"].get<double>(), 5.5);
  EXPECT_DOUBLE_EQ(n["quantiles"]["0.25"].get<double>(), 3.25);
  EXPECT_DOUBLE_EQ(n["quantiles"]["0.99"].get<double>(), 9.91);
  EXPECT_EQ(n["quantiles"]["0"], 1.0);
  EXPECT_EQ(n["quantiles"]["1"], 10.0);
  EXPECT_EQ(n["sample"], Json::parse("[1,2,3,4,5,6,7,8,9,10]"));
  EXPECT_EQ(n["sample_exact"], true);
  ASSERT_EQ(n["histogram"]["edges"].size(), 11u);
  EXPECT_DOUBLE_EQ(n["histogram"]["edges"][0].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(n["histogram"]["edges"][1].get<double>(), 1.9);
  EXPECT_DOUBLE_EQ(n["histogram"]["edges"][10].get<double>(), 10.0);
  EXPECT_EQ(n["histogram"]["counts"], Json::parse("[1,1,1,1,1,1,1,1,1,1]"));
}

TEST(ProfileTest, FloatColumnCountsNanApartAndKeepsInfinities) {
  MemoryLoader loader;
  TableVersion version = MakeVersion(
      "x,y\n1.5,1\nnan,2\n2.5,NaN\n,inf\n-0.5,-inf\n",
      MakeSchema({{"x", ColumnType::kFloat64}, {"y", ColumnType::kFloat64}}), {}, loader);
  Json profile = ProfileAll(version, loader);
  Json x = Column(profile, "x");
  EXPECT_EQ(x["count"], 4);  // NaN is a value, not a null
  EXPECT_EQ(x["nulls"], 1);
  EXPECT_EQ(x["nan"], 1);
  EXPECT_EQ(x["min"], -0.5);
  EXPECT_EQ(x["max"], 2.5);
  EXPECT_DOUBLE_EQ(x["mean"].get<double>(), 3.5 / 3);
  EXPECT_EQ(x["sample"], Json::parse("[-0.5,1.5,2.5]"));
  Json y = Column(profile, "y");
  EXPECT_EQ(y["nan"], 1);
  EXPECT_EQ(y["min"], "-Infinity");
  EXPECT_EQ(y["max"], "Infinity");
  EXPECT_EQ(y["mean"], "NaN");  // +inf and -inf
  EXPECT_EQ(y["sample"], Json::parse(R"(["-Infinity",1.0,2.0,"Infinity"])"));
  // Infinities fall in the end bins of the finite range.
  EXPECT_EQ(y["histogram"]["counts"], Json::parse("[2,0,0,0,0,0,0,0,0,2]"));
}

TEST(ProfileTest, ColumnOfOnlyNullsHasNoStatistics) {
  MemoryLoader loader;
  TableVersion version = MakeVersion(
      "a,b\n,x\n,y\n", MakeSchema({{"a", ColumnType::kFloat64}, {"b", ColumnType::kString}}), {},
      loader);
  Json profile = ProfileAll(version, loader);
  Json a = Column(profile, "a");
  EXPECT_EQ(a["count"], 0);
  EXPECT_EQ(a["nulls"], 2);
  EXPECT_TRUE(a["min"].is_null());
  EXPECT_TRUE(a["mean"].is_null());
  EXPECT_TRUE(a["std"].is_null());
  EXPECT_EQ(a["sample"], Json::array());
  EXPECT_EQ(a["sample_exact"], true);
}

TEST(ProfileTest, SingleValueHasNullStdAndAUnitHistogram) {
  MemoryLoader loader;
  TableVersion version =
      MakeVersion("a\n7\n", MakeSchema({{"a", ColumnType::kFloat64}}), {}, loader);
  Json a = Column(ProfileAll(version, loader), "a");
  EXPECT_EQ(a["mean"], 7.0);
  EXPECT_TRUE(a["std"].is_null());
  EXPECT_EQ(a["histogram"]["edges"][0], 6.5);  // numpy's convention for a constant column
  EXPECT_EQ(a["histogram"]["edges"][10], 7.5);
  EXPECT_EQ(a["histogram"]["counts"], Json::parse("[0,0,0,0,0,1,0,0,0,0]"));
}

TEST(ProfileTest, CategoricalStringAndBoolColumnsCountValues) {
  MemoryLoader loader;
  TableVersion version = MakeVersion(
      "city,name,flag\n"
      "paris,héllo,true\n"
      "rome,a,True\n"
      "paris,,FALSE\n"
      "oslo,\"\",false\n"
      "rome,abcdefgh,true\n"
      "paris,a,\n",
      MakeSchema({{"city", ColumnType::kCategorical},
                  {"name", ColumnType::kString},
                  {"flag", ColumnType::kBool}}),
      {3}, loader);
  Json profile = ProfileAll(version, loader);
  Json city = Column(profile, "city");
  EXPECT_EQ(city["distinct"], 3);
  EXPECT_EQ(city["distinct_exact"], true);
  EXPECT_EQ(city["top"], Json::parse(R"([{"value":"paris","count":3},{"value":"rome","count":2},
                                         {"value":"oslo","count":1}])"));
  EXPECT_FALSE(city.contains("min_length"));
  Json name = Column(profile, "name");
  EXPECT_EQ(name["count"], 5);  // "" (quoted) is a value, the empty field a null
  EXPECT_EQ(name["nulls"], 1);
  EXPECT_EQ(name["min_length"], 0);
  EXPECT_EQ(name["max_length"], 8);
  EXPECT_EQ(name["top"][0], Json::parse(R"({"value":"a","count":2})"));
  Json flag = Column(profile, "flag");
  EXPECT_EQ(flag["top"],
            Json::parse(R"([{"value":"true","count":3},{"value":"false","count":2}])"));
  EXPECT_EQ(flag["nulls"], 1);
}

TEST(ProfileTest, StringLengthsCountCodePoints) {
  MemoryLoader loader;
  TableVersion version =
      MakeVersion("s\nhéllo\n日本\n", MakeSchema({{"s", ColumnType::kString}}), {}, loader);
  Json s = Column(ProfileAll(version, loader), "s");
  EXPECT_EQ(s["min_length"], 2);
  EXPECT_EQ(s["max_length"], 5);
}

TEST(ProfileTest, TopKeepsTwentyValuesByCountThenValue) {
  MemoryLoader loader;
  std::string csv = "v\n";
  for (int i = 0; i < 30; ++i) {
    for (int k = 0; k <= i % 4; ++k) {
      csv += 'v';
      csv += std::to_string(100 + i);
      csv += '\n';
    }
  }
  TableVersion version = MakeVersion(csv, MakeSchema({{"v", ColumnType::kString}}), {}, loader);
  Json v = Column(ProfileAll(version, loader), "v");
  EXPECT_EQ(v["distinct"], 30);
  ASSERT_EQ(v["top"].size(), 20u);
  EXPECT_EQ(v["top"][0], Json::parse(R"({"value":"v103","count":4})"));
  EXPECT_EQ(v["top"][1], Json::parse(R"({"value":"v107","count":4})"));
  EXPECT_EQ(v["top"][19]["count"], 2);
}

TEST(ProfileTest, TimestampColumnHasIsoBounds) {
  MemoryLoader loader;
  TableVersion version = MakeVersion(
      "t\n2026-11-01\n2026-11-01T12:00:00.250Z\n1969-12-31T23:59:59Z\n\n2000-02-29T08:30:00+02:"
      "00\n",
      MakeSchema({{"t", ColumnType::kTimestamp}}), {2}, loader);
  Json t = Column(ProfileAll(version, loader), "t");
  EXPECT_EQ(t["count"], 4);
  EXPECT_EQ(t["nulls"], 1);
  EXPECT_EQ(t["min"], "1969-12-31T23:59:59Z");
  EXPECT_EQ(t["max"], "2026-11-01T12:00:00.250Z");
}

TEST(ProfileTest, MergedChunkBuildersEqualOneBuilderExactly) {
  const std::string csv = MixedCsv(3000);
  ProfileOptions options;
  options.sample_size = 200;  // well below the row count: the sample is a real sample
  MemoryLoader loader;
  TableVersion whole = MakeVersion(csv, MixedSchema(), {}, loader);
  const std::string expected = ProfileAll(whole, loader, options).dump();
  struct Split {
    std::string name;
    std::vector<size_t> chunk_starts;
  };
  const std::vector<Split> splits = {
      {"two halves", {1500}},
      {"first row alone", {1}},
      {"last row alone", {2999}},
      {"uneven", {7, 150, 151, 1024, 2500}},
      {"many small", {100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1700, 2200, 2900}},
  };
  for (const Split& split : splits) {
    MemoryLoader chunked_loader;
    TableVersion chunked = MakeVersion(csv, MixedSchema(), split.chunk_starts, chunked_loader);
    EXPECT_EQ(ProfileByChunk(chunked, chunked_loader, options, /*tree=*/false).dump(), expected)
        << split.name;
    EXPECT_EQ(ProfileByChunk(chunked, chunked_loader, options, /*tree=*/true).dump(), expected)
        << split.name << " (merged as a tree)";
  }
}

// FinishText is what the commit stores: Finish().dump() byte for byte, whatever the pool, for
// real samples and exact ones, every column type, no rows, and more threads than columns.
TEST(ProfileTest, FinishTextIsFinishDumpedWithOrWithoutAPool) {
  struct Case {
    std::string name;
    std::string csv;
    table::Schema schema;
    size_t sample_size;
  };
  const std::vector<Case> cases = {
      {"mixed, sampled", MixedCsv(3000), MixedSchema(), 200},
      {"mixed, exact", MixedCsv(500), MixedSchema(), 100000},
      {"header only", "v\n", MakeSchema({{"v", ColumnType::kFloat64}}), 100},
      {"one column", "v\n1\n2.5\n\n-3\n", MakeSchema({{"v", ColumnType::kFloat64}}), 100},
  };
  ThreadPool one(1);
  ThreadPool three(3);
  for (const Case& test : cases) {
    ProfileOptions options;
    options.sample_size = test.sample_size;
    MemoryLoader loader;
    TableVersion version = MakeVersion(test.csv, test.schema, {}, loader);
    ProfileBuilder builder(version.schema, options);
    ASSERT_TRUE(ForEachRow(version, loader, [&](const table::RowReader& row) {
                  builder.Add(row);
                  return Status::Ok();
                }).ok());
    const std::string expected = builder.Finish().dump();
    EXPECT_EQ(builder.FinishText(), expected) << test.name;
    EXPECT_EQ(builder.FinishText(&one), expected) << test.name << ", 1 thread";
    EXPECT_EQ(builder.FinishText(&three), expected) << test.name << ", 3 threads";
  }
}

TEST(ProfileTest, MergedProfilesOfExactSamplesAlsoMatch) {
  const std::string csv = MixedCsv(500);
  MemoryLoader loader;
  TableVersion whole = MakeVersion(csv, MixedSchema(), {}, loader);
  const std::string expected = ProfileAll(whole, loader).dump();
  MemoryLoader chunked_loader;
  TableVersion chunked = MakeVersion(csv, MixedSchema(), {3, 250, 499}, chunked_loader);
  EXPECT_EQ(ProfileByChunk(chunked, chunked_loader, {}, false).dump(), expected);
}

TEST(ProfileTest, SampleIsExactBelowItsSizeAndBoundedAbove) {
  std::string csv = "v\n";
  for (int i = 0; i < 5000; ++i) csv += std::to_string(i) + "\n";
  MemoryLoader loader;
  TableVersion version = MakeVersion(csv, MakeSchema({{"v", ColumnType::kInt64}}), {2000}, loader);

  ProfileOptions large;
  large.sample_size = 5000;
  Json exact = Column(ProfileAll(version, loader, large), "v");
  EXPECT_EQ(exact["sample_exact"], true);
  ASSERT_EQ(exact["sample"].size(), 5000u);
  EXPECT_EQ(exact["sample"][4999], 4999);

  ProfileOptions small;
  small.sample_size = 400;
  Json sampled = Column(ProfileAll(version, loader, small), "v");
  EXPECT_EQ(sampled["sample_exact"], false);
  ASSERT_EQ(sampled["sample"].size(), 400u);
  std::vector<int64_t> values = sampled["sample"].get<std::vector<int64_t>>();
  EXPECT_TRUE(std::is_sorted(values.begin(), values.end()));
  EXPECT_EQ(std::adjacent_find(values.begin(), values.end()), values.end()) << "rows repeat";
  // Uniform over the rows, not the first ones: each fifth of the table holds about 80.
  for (int fifth = 0; fifth < 5; ++fifth) {
    auto in_fifth = std::count_if(values.begin(), values.end(), [&](int64_t v) {
      return v >= fifth * 1000 && v < (fifth + 1) * 1000;
    });
    EXPECT_GT(in_fifth, 45) << "fifth " << fifth;
    EXPECT_LT(in_fifth, 120) << "fifth " << fifth;
  }
  // Quantiles come from the sample (the true median is 2499.5); exact bounds stay exact.
  EXPECT_NEAR(sampled["quantiles"]["0.5"].get<double>(), 2499.5, 300);
  EXPECT_EQ(sampled["quantiles"]["0"], 0.0);
  EXPECT_EQ(sampled["quantiles"]["1"], 4999.0);
  // The histogram is scaled to every value.
  int64_t total = 0;
  for (const Json& count : sampled["histogram"]["counts"]) {
    total += count.get<int64_t>();
    EXPECT_NEAR(count.get<double>(), 500, 250) << sampled["histogram"];  // binomial: sd ~75
  }
  EXPECT_EQ(total, 5000);
  // A different seed gives a different sample; the same seed the same one.
  ProfileOptions other_seed = small;
  other_seed.seed = 7;
  EXPECT_NE(Column(ProfileAll(version, loader, other_seed), "v")["sample"], sampled["sample"]);
  EXPECT_EQ(Column(ProfileAll(version, loader, small), "v")["sample"], sampled["sample"]);
}

TEST(ProfileTest, MeanAndStdAreAccurateForLargeOffsets) {
  // Values near 1e9 with a spread of a few units: naive sums of squares lose every digit.
  std::string csv = "v\n";
  std::vector<double> values;
  for (int i = 0; i < 2000; ++i) {
    double value = 1e9 + 0.001 * ((i * 37) % 101) + 0.5;
    values.push_back(value);
    char text[64];
    std::snprintf(text, sizeof(text), "%.17g\n", value);
    csv += text;
  }
  long double sum = 0;
  for (double value : values) sum += value;
  long double mean = sum / values.size();
  long double squares = 0;
  for (double value : values) squares += (value - mean) * (value - mean);
  double std_dev = static_cast<double>(std::sqrt(squares / (values.size() - 1)));

  MemoryLoader loader;
  TableVersion version = MakeVersion(csv, MakeSchema({{"v", ColumnType::kFloat64}}), {999}, loader);
  Json v = Column(ProfileByChunk(version, loader, {}, false), "v");
  EXPECT_NEAR(v["mean"].get<double>(), static_cast<double>(mean), 1e-6);
  EXPECT_NEAR(v["std"].get<double>(), std_dev, std_dev * 1e-9);
}

TEST(ProfileTest, NegativeAndTinyValuesSumExactly) {
  MemoryLoader loader;
  TableVersion version = MakeVersion("v\n-1e300\n1e300\n5e-324\n-3\n1e-310\n",
                                     MakeSchema({{"v", ColumnType::kFloat64}}), {2}, loader);
  Json v = Column(ProfileAll(version, loader), "v");
  // The exact sum is -3 + 5e-324 + 1e-310, which rounds to -3.
  EXPECT_DOUBLE_EQ(v["mean"].get<double>(), -3.0 / 5);
  EXPECT_EQ(v["min"], -1e300);
}

TEST(ProfileTest, FloatValuesEqualTheTableLayersParseBitForBit) {
  // The profile parses short decimals itself; every value must equal table::ParseFloat64's.
  std::vector<std::string> texts = {"0",
                                    "-0",
                                    "-0.0",
                                    "007.50",
                                    "1e5",
                                    "2.5E-3",
                                    "inf",
                                    "-Infinity",
                                    "9007199254740993",
                                    "9007199254740992.5",
                                    "0.1",
                                    "0.3",
                                    "123456789012345678.9",
                                    "1.00000000000000000000001",
                                    "3.14159265358979323846",
                                    "+4.5",
                                    "5.",
                                    ".25"};
  uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  for (int i = 0; i < 3000; ++i) {
    std::string text = next() % 2 ? "-" : "";
    int integer_digits = 1 + static_cast<int>(next() % 12);
    int fraction_digits = static_cast<int>(next() % 12);
    for (int d = 0; d < integer_digits; ++d) text += static_cast<char>('0' + next() % 10);
    if (fraction_digits > 0) text += '.';
    for (int d = 0; d < fraction_digits; ++d) text += static_cast<char>('0' + next() % 10);
    texts.push_back(text);
  }
  std::string csv = "v\n";
  std::vector<double> expected;
  for (const std::string& text : texts) {
    csv += text + "\n";
    Result<double> parsed = table::ParseFloat64(text);
    ASSERT_TRUE(parsed.ok()) << text;
    expected.push_back(*parsed);
  }
  MemoryLoader loader;
  TableVersion version = MakeVersion(csv, MakeSchema({{"v", ColumnType::kFloat64}}), {}, loader);
  Json v = Column(ProfileAll(version, loader), "v");
  std::vector<double> actual;
  for (const Json& value : v["sample"]) {
    actual.push_back(value.is_string() ? (value == "Infinity" ? INFINITY : -INFINITY)
                                       : value.get<double>());
  }
  // -0 before 0, so that equal values compare bit for bit.
  auto total_order = [](double a, double b) {
    return a < b || (a == b && std::signbit(a) && !std::signbit(b));
  };
  std::sort(expected.begin(), expected.end(), total_order);
  std::sort(actual.begin(), actual.end(), total_order);
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(std::bit_cast<uint64_t>(actual[i]), std::bit_cast<uint64_t>(expected[i]))
        << i << ": " << actual[i] << " vs " << expected[i];
  }
}

// ---------------------------------------------------------------------------------------------
// AddChecked: CheckCell and Add in one pass

// What a commit did before AddChecked: CheckCell on every cell, then Add.
void CheckThenAdd(const table::Schema& schema, ProfileBuilder& builder,
                  const table::RowReader& row) {
  const std::vector<table::Cell>& cells = row.cells();
  for (size_t i = 0; i < schema.columns.size() && i < cells.size(); ++i) {
    bool widen = false;
    Status status = table::CheckCell(schema.columns[i], cells[i], "t.csv", row.line(),
                                     static_cast<int>(i) + 1, &widen);
    EXPECT_TRUE(status.ok()) << status.ToString();
    EXPECT_FALSE(widen);
  }
  builder.Add(row);
}

void AddCheckedOk(ProfileBuilder& builder, const table::RowReader& row) {
  bool widen = false;
  Status status = builder.AddChecked(row, "t.csv", &widen);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_FALSE(widen);
}

ProfileBuilder MergeInOrder(std::vector<ProfileBuilder> builders) {
  for (size_t i = 1; i < builders.size(); ++i) builders[0].Merge(std::move(builders[i]));
  return std::move(builders[0]);
}

// A table of awkward numbers, bools, timestamps and strings, with nulls; deterministic.
std::string AwkwardCsv(int rows) {
  static const std::vector<std::string> kInts = {
      "0",  "-0", "+5", "007", "-9223372036854775808", "9223372036854775807", "", "123456789012",
      "-42", "999999999999999999", "1000000000000000000"};
  static const std::vector<std::string> kFloats = {
      "1e5", "-0",  "inf", "-Infinity", "nan", "+4.5", "5.", ".25", "1e999", "", "-1e-320",
      "3.14159265358979323846", "9007199254740993", "0.1", "-12.375", "1.7976931348623157e308",
      "NaN", "2.5E-3", "-123456789.123456789", "0", "-0.0", "0.0"};
  static const std::vector<std::string> kBools = {"true", "False", "TRUE", "", "false", "True"};
  static const std::vector<std::string> kTimes = {
      "2026-11-01", "", "1969-12-31T23:59:59.999Z", "2000-02-29 08:30:00+02:00",
      "2024-02-29T12:00:00.123456789Z"};
  static const std::vector<std::string> kStrings = {"héllo", "\"\"", "日本", "a", "", "\"x,y\""};
  std::string csv = "i,f,b,t,s\n";
  for (int row = 0; row < rows; ++row) {
    const size_t r = static_cast<size_t>(row);
    csv += kInts[(r * 7) % kInts.size()] + "," + kFloats[(r * 5) % kFloats.size()] + "," +
           kBools[(r * 3) % kBools.size()] + "," + kTimes[r % kTimes.size()] + "," +
           kStrings[(r * 11) % kStrings.size()] + "\n";
  }
  return csv;
}

table::Schema AwkwardSchema() {
  return MakeSchema({{"i", ColumnType::kInt64},
                     {"f", ColumnType::kFloat64},
                     {"b", ColumnType::kBool},
                     {"t", ColumnType::kTimestamp},
                     {"s", ColumnType::kString}});
}

// A numeric table like most training data: an int64 id and float64 columns of short decimals
// ("822.465", "-0.5"), with nulls, longer decimals and now and then a value only the general parse
// reads (exponents, nan, "5.", 17 digits); deterministic.
std::string NumericCsv(int rows) {
  static const std::vector<std::string> kRare = {
      "1e5", "nan", "5.", ".25", "-0", "+4.5", "9007199254740993", "12345678.123456789",
      "0.000001", "-inf", "1234567890123456", "-0.0", "123456789012345678901"};
  std::mt19937_64 random(1234);
  std::string csv = "id,a,b,c,d\n";
  for (int row = 0; row < rows; ++row) {
    csv += std::to_string(row % 97 == 5 ? -row : row);
    for (int c = 0; c < 4; ++c) {
      csv += ',';
      const uint64_t pick = random() % 100;
      if (pick < 3) continue;  // null
      if (pick < 8) {
        csv += kRare[random() % kRare.size()];
        continue;
      }
      if (random() % 4 == 0) csv += '-';
      csv += std::to_string(random() % (pick < 50 ? 1000 : 100000000));
      const int fraction = static_cast<int>(random() % 8);
      if (fraction > 0) {
        csv += '.';
        for (int i = 0; i < fraction; ++i) csv += static_cast<char>('0' + random() % 10);
      }
    }
    csv += row % 13 == 0 ? "\r\n" : "\n";
  }
  return csv;
}

table::Schema NumericSchema() {
  return MakeSchema({{"id", ColumnType::kInt64},
                     {"a", ColumnType::kFloat64},
                     {"b", ColumnType::kFloat64},
                     {"c", ColumnType::kFloat64},
                     {"d", ColumnType::kFloat64}});
}

// Numeric columns with values in every row, every second, fifth and twentieth row.
std::string SparseCsv(int rows) {
  std::string csv = "id,half,fifth,twentieth\n";
  for (int row = 0; row < rows; ++row) {
    csv += std::to_string((row * 7919) % 10007) + ",";
    if (row % 2 == 0) csv += std::to_string(row % 101) + ".5";
    csv += ",";
    if (row % 5 == 0) csv += std::to_string(-(row % 1009));
    csv += ",";
    if (row % 20 == 0) csv += std::to_string(row) + ".125";
    csv += "\n";
  }
  return csv;
}

table::Schema SparseSchema() {
  return MakeSchema({{"id", ColumnType::kInt64},
                     {"half", ColumnType::kFloat64},
                     {"fifth", ColumnType::kInt64},
                     {"twentieth", ColumnType::kFloat64}});
}

struct TableCase {
  std::string name;
  std::string csv;
  table::Schema schema;
  std::vector<size_t> chunk_starts;
  size_t sample_size;
  // One key limit sized for the rows keeps too few values of some column (saved chunks merge
  // to an inexact sample); limits per column, sized for each column's values, do not.
  bool sparse = false;
};

std::vector<TableCase> TableCases() {
  return {
      {"mixed, one chunk", MixedCsv(3000), MixedSchema(), {}, 200},
      {"mixed, halves", MixedCsv(3000), MixedSchema(), {1500}, 200},
      {"mixed, uneven", MixedCsv(3000), MixedSchema(), {7, 150, 151, 1024, 2500}, 200},
      {"mixed, exact sample", MixedCsv(500), MixedSchema(), {3, 250, 499}, 100000},
      {"awkward values", AwkwardCsv(900), AwkwardSchema(), {1, 300, 301, 899}, 100},
      {"awkward values, exact sample", AwkwardCsv(400), AwkwardSchema(), {200}, 100000},
      {"numeric", NumericCsv(5000), NumericSchema(), {1, 1700, 3999}, 300},
      {"numeric, exact sample", NumericCsv(2000), NumericSchema(), {1000}, 100000},
      {"sparse columns", SparseCsv(6000), SparseSchema(), {900, 2000, 4100}, 100, true},
  };
}

// Per column, a key limit for the values it holds in `profile` (a Finish()), as commits size
// them: columns with fewer values get looser limits.
KeyLimits PerColumnLimits(const Json& profile, const table::Schema& schema,
                          const ProfileOptions& options, double margin) {
  std::vector<uint64_t> limits(schema.columns.size(), KeyLimits::kNone);
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    const Json& column = profile["columns"][i];
    const uint64_t values = column["count"].get<uint64_t>() - column.value("nan", uint64_t{0});
    limits[i] = ProfileBuilder::KeyLimitFor(values, options, margin);
  }
  return KeyLimits(std::move(limits));
}

TEST(ProfileAddCheckedTest, ProfilesEqualCheckCellThenAdd) {
  for (const TableCase& test : TableCases()) {
    MemoryLoader loader;
    TableVersion version = MakeVersion(test.csv, test.schema, test.chunk_starts, loader);
    ProfileOptions options;
    options.sample_size = test.sample_size;
    const std::string expected =
        MergeInOrder(ChunkBuilders(version, loader, options,
                                   [&](ProfileBuilder& builder, const table::RowReader& row) {
                                     CheckThenAdd(version.schema, builder, row);
                                   }))
            .Finish()
            .dump();
    const std::string actual =
        MergeInOrder(ChunkBuilders(version, loader, options, AddCheckedOk)).Finish().dump();
    EXPECT_EQ(actual, expected) << test.name;
  }
}

// AddChecked reads short decimals word by word; its saved states must be the bytes Add's are.
TEST(ProfileAddCheckedTest, SavedStatesEqualCheckCellThenAdd) {
  for (const TableCase& test : TableCases()) {
    MemoryLoader loader;
    TableVersion version = MakeVersion(test.csv, test.schema, test.chunk_starts, loader);
    ProfileOptions options;
    options.sample_size = test.sample_size;
    std::vector<ProfileBuilder> expected =
        ChunkBuilders(version, loader, options,
                      [&](ProfileBuilder& builder, const table::RowReader& row) {
                        CheckThenAdd(version.schema, builder, row);
                      });
    std::vector<ProfileBuilder> actual = ChunkBuilders(version, loader, options, AddCheckedOk);
    ASSERT_EQ(actual.size(), expected.size()) << test.name;
    for (size_t i = 0; i < actual.size(); ++i) {
      for (uint64_t key_limit : {std::numeric_limits<uint64_t>::max(), uint64_t{1} << 62}) {
        EXPECT_EQ(actual[i].Serialize(key_limit), expected[i].Serialize(key_limit))
            << test.name << ", chunk " << i;
      }
    }
  }
}

struct BadRowCase {
  std::string name;
  std::string row;  // a CSV row of table i,f,b,t,s (without its newline)
};

TEST(ProfileAddCheckedTest, ReportsCheckCellsErrorAndWidenAndAddsNothingOfABadRow) {
  const std::vector<BadRowCase> cases = {
      {"a good row", "1,2.5,true,2026-11-01,x"},
      {"a row of nulls", ",,,,"},
      {"text in an int column", "abc,2.5,true,2026-11-01,x"},
      {"quoted empty int", "\"\",1,true,2026-11-01,x"},
      {"int with underscore", "1_000,1,true,2026-11-01,x"},
      {"int with two signs", "--5,1,true,2026-11-01,x"},
      {"int sign alone", "+,1,true,2026-11-01,x"},
      {"hex int", "0x10,1,true,2026-11-01,x"},
      {"int with a space", "\" 1\",1,true,2026-11-01,x"},
      {"float with two points", "1,1.2.3,true,2026-11-01,x"},
      {"float without exponent digits", "1,1e,true,2026-11-01,x"},
      {"float point alone", "1,.,true,2026-11-01,x"},
      {"float with a comma", "1,\"1,5\",true,2026-11-01,x"},
      {"float with a word", "1,nanx,true,2026-11-01,x"},
      {"bool yes", "1,1,yes,2026-11-01,x"},
      {"bool 1", "1,1,1,2026-11-01,x"},
      {"bool mixed case", "1,1,tRUE,2026-11-01,x"},
      {"impossible date", "1,1,true,2026-02-30,x"},
      {"hour 25", "1,1,true,2026-11-01T25:00:00,x"},
      {"slashed date", "1,1,true,2026/11/01,x"},
      {"long bad value", "1," + std::string(100, 'x') + ",true,2026-11-01,x"},
      {"two bad cells: the first is reported", "x,y,true,2026-11-01,x"},
      {"a widened cell, then a bad one", "2.5,y,true,2026-11-01,x"},
      {"widen: decimal in an int column", "2.5,1,true,2026-11-01,x"},
      {"widen: exponent", "1e3,1,true,2026-11-01,x"},
      {"widen: nan", "nan,1,true,2026-11-01,x"},
      {"widen: int64 overflow", "9223372036854775808,1,true,2026-11-01,x"},
      {"widen: signed decimal", "+1.5,1,true,2026-11-01,x"},
  };
  const table::Schema schema = AwkwardSchema();
  for (const BadRowCase& test : cases) {
    const std::string csv = "i,f,b,t,s\n" + test.row + "\n";
    table::ReadOptions read;
    read.file_name = "t.csv";
    auto reader = table::RowReader::Open(table::Format::kCsv, csv, read);
    ASSERT_TRUE(reader.ok()) << test.name;
    Result<bool> more = (*reader)->Next();
    ASSERT_TRUE(more.ok() && *more) << test.name;

    Status expected = Status::Ok();
    bool expected_widen = false;
    const std::vector<table::Cell>& cells = (*reader)->cells();
    for (size_t i = 0; i < cells.size() && expected.ok(); ++i) {
      expected = table::CheckCell(schema.columns[i], cells[i], "t.csv", (*reader)->line(),
                                  static_cast<int>(i) + 1, &expected_widen);
    }
    ProfileBuilder builder(schema);
    bool widen = false;
    Status status = builder.AddChecked(**reader, "t.csv", &widen);
    EXPECT_EQ(status.code(), expected.code()) << test.name;
    EXPECT_EQ(status.message(), expected.message()) << test.name;
    if (expected.ok()) {
      EXPECT_EQ(widen, expected_widen) << test.name;
    }
    const bool added = expected.ok() && !expected_widen;
    EXPECT_EQ(builder.Finish()["rows"], added ? 1 : 0) << test.name;
    if (!added) {
      EXPECT_EQ(builder.Finish(), ProfileBuilder(schema).Finish())
          << test.name << ": part of a bad row was added";
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Saved chunk states

// Profiles each chunk with AddChecked; the chunks for which `saved` is true go through
// Serialize(key_limit) and Deserialize. Returns the builders in chunk order.
std::vector<ProfileBuilder> SavedChunkBuilders(const TableVersion& version, MemoryLoader& loader,
                                               ProfileOptions options, const KeyLimits& key_limit,
                                               const std::function<bool(size_t)>& saved) {
  std::vector<ProfileBuilder> builders = ChunkBuilders(version, loader, options, AddCheckedOk);
  for (size_t i = 0; i < builders.size(); ++i) {
    if (!saved(i)) continue;
    const std::string bytes = builders[i].Serialize(key_limit);
    Result<ProfileBuilder> restored = ProfileBuilder::Deserialize(version.schema, options, bytes);
    EXPECT_TRUE(restored.ok()) << restored.status().ToString();
    if (!restored.ok()) continue;
    // The format is canonical: saving a restored state gives the same bytes.
    EXPECT_EQ(restored->Serialize(key_limit), bytes) << "chunk " << i;
    builders[i] = std::move(*restored);
  }
  return builders;
}

TEST(ProfileSavedStateTest, RestoredChunkStatesMergeToTheSameProfile) {
  struct Mix {
    std::string name;
    std::function<bool(size_t)> saved;
  };
  const std::vector<Mix> mixes = {
      {"every chunk saved", [](size_t) { return true; }},
      {"even chunks saved", [](size_t i) { return i % 2 == 0; }},
      {"odd chunks saved", [](size_t i) { return i % 2 == 1; }},
  };
  for (const TableCase& test : TableCases()) {
    MemoryLoader loader;
    TableVersion version = MakeVersion(test.csv, test.schema, test.chunk_starts, loader);
    ProfileOptions options;
    options.sample_size = test.sample_size;
    const std::string expected =
        MergeInOrder(ChunkBuilders(version, loader, options, AddCheckedOk)).Finish().dump();
    const uint64_t key_limit = ProfileBuilder::KeyLimitFor(version.rows, options);
    for (const Mix& mix : mixes) {
      ProfileBuilder merged =
          MergeInOrder(SavedChunkBuilders(version, loader, options, key_limit, mix.saved));
      EXPECT_EQ(merged.SampleExact(), !test.sparse) << test.name << ", " << mix.name;
      if (!test.sparse) {
        EXPECT_EQ(merged.Finish().dump(), expected) << test.name << ", " << mix.name;
      }
      // Limits per column, for the values each holds: exact for sparse columns too.
      const KeyLimits per_column =
          PerColumnLimits(Json::parse(expected), version.schema, options, 1.25);
      merged = MergeInOrder(SavedChunkBuilders(version, loader, options, per_column, mix.saved));
      EXPECT_TRUE(merged.SampleExact()) << test.name << ", " << mix.name << ", per column";
      EXPECT_EQ(merged.Finish().dump(), expected) << test.name << ", " << mix.name << ", per column";
    }
    // Merged as a tree, and a restored state merged into by a fresh one.
    std::vector<ProfileBuilder> builders = SavedChunkBuilders(
        version, loader, options,
        PerColumnLimits(Json::parse(expected), version.schema, options, 1.25), mixes[1].saved);
    while (builders.size() > 1) {
      std::vector<ProfileBuilder> next;
      for (size_t i = 0; i < builders.size(); i += 2) {
        if (i + 1 < builders.size()) builders[i].Merge(std::move(builders[i + 1]));
        next.push_back(std::move(builders[i]));
      }
      builders = std::move(next);
    }
    EXPECT_TRUE(builders[0].SampleExact()) << test.name;
    EXPECT_EQ(builders[0].Finish().dump(), expected) << test.name << ", as a tree";
  }
}

TEST(ProfileSavedStateTest, SumsRoundTripExactly) {
  // Sums that need many limbs, negative sums and subnormals; one chunk per value.
  const std::string csv = "v\n-1e300\n1e300\n5e-324\n-3\n1e-310\n-1.7976931348623157e308\n0.1\n";
  MemoryLoader loader;
  TableVersion version =
      MakeVersion(csv, MakeSchema({{"v", ColumnType::kFloat64}}), {1, 2, 3, 4, 5, 6}, loader);
  const std::string expected =
      MergeInOrder(ChunkBuilders(version, loader, {}, AddCheckedOk)).Finish().dump();
  ProfileBuilder merged = MergeInOrder(SavedChunkBuilders(
      version, loader, {}, ProfileBuilder::KeyLimitFor(version.rows, {}), [](size_t) {
        return true;
      }));
  EXPECT_EQ(merged.Finish().dump(), expected);
}

TEST(ProfileSavedStateTest, TooSmallKeyLimitMakesTheSampleInexact) {
  MemoryLoader loader;
  TableVersion version = MakeVersion(MixedCsv(3000), MixedSchema(), {1000, 2000}, loader);
  ProfileOptions options;
  options.sample_size = 200;
  struct LimitCase {
    std::string name;
    uint64_t key_limit;
    bool exact;
  };
  const std::vector<LimitCase> cases = {
      {"KeyLimitFor the table", ProfileBuilder::KeyLimitFor(3000, options), true},
      {"unlimited", std::numeric_limits<uint64_t>::max(), true},
      {"half the sample size", ProfileBuilder::KeyLimitFor(3000, options, 0.5), false},
      {"zero", 0, false},
  };
  for (const LimitCase& test : cases) {
    ProfileBuilder merged = MergeInOrder(SavedChunkBuilders(
        version, loader, options, test.key_limit, [](size_t i) { return i == 1; }));
    EXPECT_EQ(merged.SampleExact(), test.exact) << test.name;
    // Saving again with a larger limit cannot bring back what was dropped.
    Result<ProfileBuilder> again = ProfileBuilder::Deserialize(
        version.schema, options, merged.Serialize(std::numeric_limits<uint64_t>::max()));
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->SampleExact(), test.exact) << test.name << ", saved again";
  }
}

// LimitSample: a part that keeps only candidates below a limit from the start saves exactly what
// the unlimited part saves with a limit at most that one, and merged parts give the unlimited
// profile when SampleExact() says so.
TEST(ProfileSavedStateTest, PartsLimitedFromTheStartSaveAndMergeAsUnlimitedOnes) {
  std::vector<TableCase> cases = TableCases();
  // No numeric column: no sample at all (a limit must not touch one).
  cases.push_back({"no numeric column", MixedCsv(3000),
                   MakeSchema({{"id", ColumnType::kString},
                               {"amount", ColumnType::kString},
                               {"ratio", ColumnType::kString},
                               {"city", ColumnType::kCategorical},
                               {"name", ColumnType::kString},
                               {"active", ColumnType::kBool},
                               {"seen", ColumnType::kTimestamp}}),
                   {1000, 2000},
                   200});
  for (const TableCase& test : cases) {
    MemoryLoader loader;
    TableVersion version = MakeVersion(test.csv, test.schema, test.chunk_starts, loader);
    ProfileOptions options;
    options.sample_size = test.sample_size;
    const std::string expected =
        MergeInOrder(ChunkBuilders(version, loader, options, AddCheckedOk)).Finish().dump();
    // Limits per column, sized for the values each holds, as commits set them.
    const Json whole = Json::parse(expected);
    const KeyLimits key_limit = PerColumnLimits(whole, version.schema, options, 1.25);
    std::vector<std::string> saved;
    for (const ProfileBuilder& part : ChunkBuilders(version, loader, options, AddCheckedOk)) {
      saved.push_back(part.Serialize(key_limit));
    }
    struct LimitCase {
      std::string name;
      KeyLimits limit;
    };
    const std::vector<LimitCase> limits = {
        {"the saving limit", key_limit},
        {"four times looser", PerColumnLimits(whole, version.schema, options, 5)},
        {"unlimited", KeyLimits::kNone},
        // Looser for some columns than for others.
        {"mixed", KeyLimits({key_limit[0], KeyLimits::kNone, key_limit[2], 0,
                             ProfileBuilder::KeyLimitFor(1, options)})},
    };
    const auto add = [](ProfileBuilder& builder, const table::RowReader& row) {
      builder.Add(row);
    };
    for (const LimitCase& limit : limits) {
      for (bool checked : {true, false}) {
        const std::string label = test.name + ", " + limit.name + (checked ? ", checked" : "");
        std::vector<ProfileBuilder> parts = ChunkBuilders(
            version, loader, options, checked ? AddCheckedOk : add, limit.limit);
        for (size_t i = 0; i < parts.size(); ++i) {
          // A part of more rows than its first compaction (a chunk of a commit holds fewer)
          // prunes at other moments than the unlimited one: the same profile, other bytes.
          if (version.chunks[i].rows < std::max<uint64_t>(2 * test.sample_size, 1024)) {
            EXPECT_EQ(parts[i].Serialize(key_limit), saved[i]) << label << ", chunk " << i;
            continue;
          }
          Result<ProfileBuilder> restored =
              ProfileBuilder::Deserialize(version.schema, options, parts[i].Serialize(key_limit));
          Result<ProfileBuilder> expected_part =
              ProfileBuilder::Deserialize(version.schema, options, saved[i]);
          ASSERT_TRUE(restored.ok() && expected_part.ok()) << label;
          EXPECT_EQ(restored->SampleExact(), expected_part->SampleExact()) << label << ", " << i;
          EXPECT_EQ(restored->Finish().dump(), expected_part->Finish().dump()) << label << ", " << i;
        }
        ProfileBuilder merged = MergeInOrder(std::move(parts));
        EXPECT_TRUE(merged.SampleExact()) << label;
        EXPECT_EQ(merged.Finish().dump(), expected) << label;
      }
    }
    // A limit far below what the table needs: the merged sample says it is not exact.
    const KeyLimits tight_limit = PerColumnLimits(whole, version.schema, options, 0.25);
    std::vector<ProfileBuilder> tight = ChunkBuilders(version, loader, options, add, tight_limit);
    ProfileBuilder merged = MergeInOrder(std::move(tight));
    // Exact only when every numeric column has at most sample_size values (all of them kept),
    // or there is no numeric column.
    EXPECT_EQ(merged.SampleExact(), merged.Finish().dump() == expected) << test.name;
    const bool numeric = std::any_of(
        version.schema.columns.begin(), version.schema.columns.end(), [](const auto& column) {
          return table::IsNumeric(column.type);
        });
    if (numeric && ProfileBuilder::KeyLimitFor(version.rows, options, 0.25) != KeyLimits::kNone) {
      EXPECT_FALSE(merged.SampleExact()) << test.name;
    }
  }
}

TEST(ProfileSavedStateTest, KeyLimitKeepsAboutMarginTimesSampleSizeCandidates) {
  ProfileOptions options;  // sample_size 100000
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(ProfileBuilder::KeyLimitFor(0, options), kMax);
  EXPECT_EQ(ProfileBuilder::KeyLimitFor(200000, options), kMax);  // most rows: keep all
  EXPECT_EQ(ProfileBuilder::KeyLimitFor(1000, options), kMax);
  const double share =
      static_cast<double>(ProfileBuilder::KeyLimitFor(6000000, options)) / std::ldexp(1.0, 64);
  EXPECT_NEAR(share, 125000.0 / 6000000, 1e-9);
  const double tighter =
      static_cast<double>(ProfileBuilder::KeyLimitFor(6000000, options, 2.0)) / std::ldexp(1.0, 64);
  EXPECT_NEAR(tighter, 200000.0 / 6000000, 1e-9);
}

// Stores written before key limits were per column hold "KPS1" states: one key limit for every
// column, after the seed, and only the saved limits before the candidates. They are still read,
// as that limit for every column.
std::string AsOneLimitState(const std::string& state, uint64_t key_limit, size_t numeric_columns) {
  std::string limit_bytes(8, '\0');
  for (int i = 0; i < 8; ++i) limit_bytes[i] = static_cast<char>(key_limit >> (8 * i));
  size_t seed_end = 4;
  while (static_cast<uint8_t>(state[seed_end]) & 0x80) ++seed_end;  // sample_size, a varint
  seed_end += 1 + 8;
  // The sample starts with numeric_columns (key_limit, saved_limit) pairs.
  const size_t sample = state.find(limit_bytes, seed_end);
  EXPECT_NE(sample, std::string::npos);
  if (sample == std::string::npos) return "";
  std::string out = "KPS1" + state.substr(4, seed_end - 4) + limit_bytes +
                    state.substr(seed_end, sample - seed_end);
  for (size_t c = 0; c < numeric_columns; ++c) {
    EXPECT_EQ(state.substr(sample + 16 * c, 8), limit_bytes);
    out += state.substr(sample + 16 * c + 8, 8);
  }
  out += state.substr(sample + 16 * numeric_columns,
                      state.size() - 8 - (sample + 16 * numeric_columns));
  const uint64_t checksum = Xxh3(out);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(checksum >> (8 * i)));
  return out;
}

TEST(ProfileSavedStateTest, StatesWithOneKeyLimitForEveryColumnAreStillRead) {
  for (const TableCase& test : TableCases()) {
    MemoryLoader loader;
    TableVersion version = MakeVersion(test.csv, test.schema, test.chunk_starts, loader);
    ProfileOptions options;
    options.sample_size = test.sample_size;
    const uint64_t key_limit = ProfileBuilder::KeyLimitFor(version.rows, options);
    if (key_limit == KeyLimits::kNone) continue;
    size_t numeric_columns = 0;
    for (const table::Column& column : version.schema.columns) {
      numeric_columns += table::IsNumeric(column.type);
    }
    for (const ProfileBuilder& part : ChunkBuilders(version, loader, options, AddCheckedOk)) {
      const std::string state = part.Serialize(key_limit);
      const std::string old_state = AsOneLimitState(state, key_limit, numeric_columns);
      ASSERT_EQ(old_state.substr(0, 4), "KPS1") << test.name;
      Result<ProfileBuilder> restored =
          ProfileBuilder::Deserialize(version.schema, options, old_state);
      ASSERT_TRUE(restored.ok()) << test.name << ": " << restored.status().ToString();
      EXPECT_EQ(restored->Serialize(key_limit), state) << test.name;
      for (size_t i = 0; i < version.schema.columns.size(); ++i) {
        const bool numeric = table::IsNumeric(version.schema.columns[i].type);
        EXPECT_EQ(restored->RestoredKeyLimits()[i], numeric ? key_limit : KeyLimits::kNone)
            << test.name << ", column " << i;
      }
      // A damaged old state is refused like a new one.
      std::string damaged = old_state;
      damaged[damaged.size() / 2] ^= 0x20;
      EXPECT_FALSE(ProfileBuilder::Deserialize(version.schema, options, damaged).ok());
    }
  }
}

TEST(ProfileSavedStateTest, StateSavedForAnotherSchemaOrOptionsIsRefused) {
  MemoryLoader loader;
  TableVersion version = MakeVersion(MixedCsv(300), MixedSchema(), {}, loader);
  ProfileOptions options;
  options.sample_size = 50;
  const std::string bytes = MergeInOrder(ChunkBuilders(version, loader, options, AddCheckedOk))
                                .Serialize(std::numeric_limits<uint64_t>::max());
  ASSERT_TRUE(ProfileBuilder::Deserialize(version.schema, options, bytes).ok());

  table::Schema renamed = MixedSchema();
  renamed.columns[2].name = "ratio2";
  table::Schema retyped = MixedSchema();
  retyped.columns[0].type = ColumnType::kFloat64;
  table::Schema narrower = MixedSchema();
  narrower.columns.pop_back();
  table::Schema wider = MixedSchema();
  wider.columns.push_back({"extra", ColumnType::kString, true});
  ProfileOptions other_seed = options;
  other_seed.seed = 43;
  ProfileOptions other_size = options;
  other_size.sample_size = 51;
  struct RefusalCase {
    std::string name;
    table::Schema schema;
    ProfileOptions options;
  };
  const std::vector<RefusalCase> cases = {
      {"renamed column", renamed, options},  {"retyped column", retyped, options},
      {"fewer columns", narrower, options},  {"more columns", wider, options},
      {"other seed", version.schema, other_seed}, {"other sample size", version.schema, other_size},
  };
  for (const RefusalCase& test : cases) {
    Result<ProfileBuilder> restored = ProfileBuilder::Deserialize(test.schema, test.options, bytes);
    ASSERT_FALSE(restored.ok()) << test.name;
    EXPECT_EQ(restored.status().code(), StatusCode::kInvalidArgument) << test.name;
  }
}

// A real saved state: a chunk of the mixed table, with a key limit that drops candidates.
std::string RealSavedState(const table::Schema& schema, const ProfileOptions& options) {
  MemoryLoader loader;
  TableVersion version = MakeVersion(MixedCsv(400), schema, {}, loader);
  return MergeInOrder(ChunkBuilders(version, loader, options, AddCheckedOk))
      .Serialize(ProfileBuilder::KeyLimitFor(4000, options));
}

TEST(ProfileSavedStateTest, TruncatedStateIsRejected) {
  ProfileOptions options;
  options.sample_size = 100;
  const std::string bytes = RealSavedState(MixedSchema(), options);
  ASSERT_TRUE(ProfileBuilder::Deserialize(MixedSchema(), options, bytes).ok());
  for (size_t length = 0; length < bytes.size(); ++length) {
    Result<ProfileBuilder> restored =
        ProfileBuilder::Deserialize(MixedSchema(), options, bytes.substr(0, length));
    ASSERT_FALSE(restored.ok()) << "length " << length;
    EXPECT_EQ(restored.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(ProfileSavedStateTest, CorruptStateIsRejectedAndNeverCrashes) {
  ProfileOptions options;
  options.sample_size = 100;
  const table::Schema schema = MixedSchema();
  const std::string bytes = RealSavedState(schema, options);
  std::mt19937_64 random(99);
  auto corrupt = [&](std::string copy) {
    const int flips = 1 + static_cast<int>(random() % 3);
    for (int i = 0; i < flips; ++i) {
      copy[random() % copy.size()] ^= static_cast<char>(1 + random() % 255);
    }
    return copy;
  };
  for (int round = 0; round < 500; ++round) {
    Result<ProfileBuilder> restored = ProfileBuilder::Deserialize(schema, options, corrupt(bytes));
    ASSERT_FALSE(restored.ok()) << "round " << round;
    EXPECT_EQ(restored.status().code(), StatusCode::kInvalidArgument);
  }
  // With the checksum made to match, the parser itself meets the damage: it must reject it or
  // restore something that merges and finishes without harm.
  int accepted = 0;
  for (int round = 0; round < 1000; ++round) {
    std::string copy = corrupt(bytes.substr(0, bytes.size() - 8));
    const uint64_t checksum = Xxh3(copy);
    for (int i = 0; i < 8; ++i) copy += static_cast<char>(checksum >> (8 * i));
    Result<ProfileBuilder> restored = ProfileBuilder::Deserialize(schema, options, copy);
    if (!restored.ok()) {
      EXPECT_EQ(restored.status().code(), StatusCode::kInvalidArgument);
      continue;
    }
    ++accepted;
    ProfileBuilder merged(schema, options);
    merged.Merge(std::move(*restored));
    (void)merged.SampleExact();
    // What is stored and printed: the JSON text (its dump throws on text that is not UTF-8).
    EXPECT_EQ(merged.FinishText(), merged.Finish().dump());
  }
  EXPECT_LT(accepted, 1000);
  // A category value that is not UTF-8 (no reader takes such a cell) is damage too; found by
  // fuzz/profile_state_fuzz.cc, whose Finish().dump() threw on it.
  const size_t paris = bytes.find("paris");
  ASSERT_NE(paris, std::string::npos);
  std::string bad = bytes.substr(0, bytes.size() - 8);
  bad[paris + 3] = '\xC3';
  const uint64_t checksum = Xxh3(bad);
  for (int i = 0; i < 8; ++i) bad += static_cast<char>(checksum >> (8 * i));
  Result<ProfileBuilder> restored = ProfileBuilder::Deserialize(schema, options, bad);
  ASSERT_FALSE(restored.ok());
  EXPECT_EQ(restored.status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Timing (not a test): ./kiln_data_tests --gtest_also_run_disabled_tests
//   --gtest_filter='*DISABLED_TimeProfiling*'

// ---------------------------------------------------------------------------------------------
// Edits: Remove of replaced rows, then AddChecked of their replacements

// Every row of `csv` (header on line 1) added with AddChecked.
ProfileBuilder ProfileCsv(const std::string& csv, const table::Schema& schema,
                          ProfileOptions options) {
  ProfileBuilder builder(schema, options);
  table::ReadOptions read;
  read.file_name = "t.csv";
  auto reader = table::RowReader::Open(table::Format::kCsv, csv, read);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  while (reader.ok()) {
    Result<bool> more = (*reader)->Next();
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    bool widen = false;
    EXPECT_TRUE(builder.AddChecked(**reader, "t.csv", &widen).ok());
  }
  return builder;
}

// The reader of one line (which must outlive it), at line `line` of the file.
std::unique_ptr<table::RowReader> LineReader(std::string_view text, int64_t line,
                                             const table::Schema& schema) {
  table::ReadOptions read;
  read.file_name = "t.csv";
  read.first_line = line;
  read.has_header = false;
  for (const table::Column& column : schema.columns) read.column_names.push_back(column.name);
  auto reader = table::RowReader::Open(table::Format::kCsv, text, read);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  if (!reader.ok()) return nullptr;
  Result<bool> more = (*reader)->Next();
  EXPECT_TRUE(more.ok() && *more);
  return std::move(*reader);
}

std::string EditCsv(const std::vector<std::string>& rows, const std::string& header) {
  std::string csv = header + "\n";
  for (const std::string& row : rows) csv += row + "\n";
  return csv;
}

struct RemoveCase {
  std::string name;
  table::Schema schema;
  std::vector<std::string> rows;
  std::map<size_t, std::string> edits;  // row index -> replacement
  size_t sample_size;
  bool limited;               // saved with a key limit that drops candidates
  std::vector<size_t> stale;  // columns whose bounds the edits leave stale
};

TEST(ProfileEditTest, RemovedAndReplacedRowsGiveTheFreshProfileAndSavedState) {
  const table::Schema numbers = MakeSchema(
      {{"id", ColumnType::kInt64}, {"x", ColumnType::kFloat64}, {"y", ColumnType::kFloat64}});
  std::vector<std::string> plain;
  for (int i = 0; i < 300; ++i) {
    plain.push_back(std::to_string(i) + "," + std::to_string((i * 37) % 101) + ".5," +
                    (i % 7 == 0 ? std::string() : std::to_string(i % 13)));
  }
  std::vector<std::string> special = plain;
  special[10] = "10,nan,1";
  special[20] = "20,inf,";
  special[30] = "30,0.0,2";
  const table::Schema stamped =
      MakeSchema({{"id", ColumnType::kInt64}, {"at", ColumnType::kTimestamp}});
  std::vector<std::string> stamps;
  for (int i = 0; i < 300; ++i) {
    stamps.push_back(std::to_string(i) + ",2026-01-" + (i % 28 < 9 ? "0" : "") +
                     std::to_string(i % 28 + 1) + "T10:00:00Z");
  }
  const std::vector<RemoveCase> cases = {
      {"scattered rows, unlimited", numbers, plain,
       {{5, "5,1.5,2"}, {79, "79,3.5,"}, {150, "150,50.5,4"}}, 1000, false, {}},
      {"scattered rows, limited", numbers, plain,
       {{5, "5,1.5,2"}, {79, "79,3.5,"}, {150, "150,50.5,4"}, {151, "151,2.5,1"}}, 20, true, {}},
      // Row 0 holds the smallest id and x, row 299 the largest id and the smallest y.
      {"rows holding bounds", numbers, plain, {{0, "0,1.5,2"}, {299, "299,2.5,3"}}, 20, true,
       {0, 1, 2}},
      {"a row with no value left", numbers, plain, {{40, "40,,"}}, 20, true, {}},
      {"a replacement of nothing with values", numbers, special,
       {{10, "10,2.5,3"}, {20, "20,-inf,5"}, {30, "30,-0.0,1"}}, 20, true, {1}},
      {"timestamps", stamped, stamps, {{3, "3,2026-01-05T11:00:00Z"}}, 20, true, {}},
      {"timestamp bound", stamped, stamps, {{0, "0,2026-01-03T11:00:00Z"}}, 20, true, {0, 1}},
  };
  for (const RemoveCase& test : cases) {
    SCOPED_TRACE(test.name);
    ProfileOptions options;
    options.sample_size = test.sample_size;
    std::vector<std::string> edited = test.rows;
    for (const auto& [row, text] : test.edits) edited[row] = text;
    std::string header;
    for (const table::Column& column : test.schema.columns) {
      header += (header.empty() ? "" : ",") + column.name;
    }
    const std::string before = EditCsv(test.rows, header);
    const std::string after = EditCsv(edited, header);
    const uint64_t key_limit = test.limited ? ProfileBuilder::KeyLimitFor(test.rows.size(), options)
                                            : std::numeric_limits<uint64_t>::max();
    ASSERT_EQ(test.limited, key_limit != std::numeric_limits<uint64_t>::max());
    Result<ProfileBuilder> restored = ProfileBuilder::Deserialize(
        test.schema, options, ProfileCsv(before, test.schema, options).Serialize(key_limit));
    ASSERT_TRUE(restored.ok()) << restored.status().ToString();
    for (size_t i = 0; i < test.schema.columns.size(); ++i) {
      const bool numeric = table::IsNumeric(test.schema.columns[i].type);
      EXPECT_EQ(restored->RestoredKeyLimits()[i], numeric ? key_limit : KeyLimits::kNone) << i;
    }
    for (const auto& [row, text] : test.edits) {
      const int64_t line = static_cast<int64_t>(row) + 2;
      const std::string old_line = test.rows[row] + "\n";  // the readers point into these
      const std::string new_line = text + "\n";
      auto old_row = LineReader(old_line, line, test.schema);
      ASSERT_TRUE(restored->Remove(*old_row));
      auto new_row = LineReader(new_line, line, test.schema);
      bool widen = false;
      ASSERT_TRUE(restored->AddChecked(*new_row, "t.csv", &widen).ok());
      ASSERT_FALSE(widen);
    }
    EXPECT_EQ(restored->StaleBounds(), test.stale);
    for (size_t column : restored->StaleBounds()) {
      std::vector<std::string> texts;
      for (const std::string& row : edited) {
        texts.push_back(row + ",");  // every field ends at a comma
      }
      std::vector<table::Cell> cells;
      for (const std::string& text : texts) {
        size_t start = 0;
        for (size_t i = 0; i < column; ++i) start = text.find(',', start) + 1;
        std::string_view cell(text.data() + start, text.find(',', start) - start);
        cells.push_back(table::Cell{cell, cell.empty(), false});
      }
      ASSERT_TRUE(restored->RecomputeBounds(column, cells));
    }
    ASSERT_TRUE(restored->EditsExact());
    ProfileBuilder fresh = ProfileCsv(after, test.schema, options);
    EXPECT_EQ(restored->Serialize(key_limit), fresh.Serialize(key_limit));
    if (restored->SampleExact()) {
      EXPECT_EQ(restored->Finish().dump(), fresh.Finish().dump());
    }
  }
}

TEST(ProfileEditTest, RemoveRefusesWhatItCannotTakeBackExactly) {
  const table::Schema mixed = MakeSchema({{"id", ColumnType::kInt64}, {"s", ColumnType::kString}});
  ProfileOptions options;
  options.sample_size = 20;
  ProfileBuilder strings = ProfileCsv("id,s\n1,a\n2,b\n3,c\n", mixed, options);
  EXPECT_FALSE(strings.Remove(*LineReader("2,b\n", 3, mixed))) << "category counts";

  const table::Schema ints = MakeSchema({{"id", ColumnType::kInt64}});
  ProfileBuilder builder = ProfileCsv("id\n1\n2\n3\n", ints, options);
  EXPECT_FALSE(builder.Remove(*LineReader("2.5\n", 3, ints))) << "needs widening";
  EXPECT_FALSE(builder.Remove(*LineReader("x\n", 3, ints))) << "does not parse";
  EXPECT_TRUE(builder.Remove(*LineReader("2\n", 3, ints)));
  EXPECT_TRUE(builder.StaleBounds().empty());
  EXPECT_EQ(builder.Finish().dump(), ProfileCsv("id\n1\n3\n", ints, options).Finish().dump());

  std::string many = "id\n";
  for (int i = 0; i < 600; ++i) many += std::to_string(i) + "\n";
  ProfileBuilder large = ProfileCsv(many, ints, options);
  EXPECT_FALSE(large.Remove(*LineReader("5\n", 7, ints))) << "more rows than Remove handles";
}

TEST(ProfileTimingTest, DISABLED_TimeProfiling) {
  constexpr int kRows = 1000000;
  constexpr int kColumns = 11;
  std::vector<std::pair<std::string, ColumnType>> columns;
  for (int c = 0; c < kColumns; ++c) {
    columns.emplace_back("c" + std::to_string(c), c < 4 ? ColumnType::kInt64 : ColumnType::kFloat64);
  }
  const table::Schema schema = MakeSchema(columns);
  std::string csv;
  for (int c = 0; c < kColumns; ++c) csv += (c > 0 ? "," : "") + columns[c].first;
  csv += '\n';
  std::mt19937_64 random(5);
  char text[64];
  for (int row = 0; row < kRows; ++row) {
    for (int c = 0; c < kColumns; ++c) {
      if (c > 0) csv += ',';
      if (c < 4) {
        csv += std::to_string(static_cast<int64_t>(random() % 200000) - 1000);
      } else {
        std::snprintf(text, sizeof(text), "%.*f", 1 + c % 4,
                      static_cast<double>(random() % 10000000) / 1000.0 - 50.0);
        csv += text;
      }
    }
    csv += '\n';
  }
  // ~1 MB chunks, as commits cut them.
  std::vector<std::string> chunks;
  size_t start = 0;
  while (start < csv.size()) {
    size_t end = std::min(csv.size(), start + (1 << 20));
    end = csv.find('\n', end - 1);
    end = end == std::string::npos ? csv.size() : end + 1;
    chunks.push_back(csv.substr(start, end - start));
    start = end;
  }
  auto profile_chunks = [&](bool checked, std::vector<ProfileBuilder>& builders) {
    int64_t line = 1;
    for (size_t i = 0; i < chunks.size(); ++i) {
      table::ReadOptions read;
      read.file_name = "t.csv";
      read.first_line = line;
      read.has_header = i == 0;
      for (const auto& column : schema.columns) read.column_names.push_back(column.name);
      if (i == 0) read.column_names.clear();
      line += std::count(chunks[i].begin(), chunks[i].end(), '\n');
      auto reader = table::RowReader::Open(table::Format::kCsv, chunks[i], read);
      ASSERT_TRUE(reader.ok());
      builders.emplace_back(schema);
      while (*(*reader)->Next()) {
        if (checked) {
          bool widen = false;
          ASSERT_TRUE(builders.back().AddChecked(**reader, "t.csv", &widen).ok());
        } else {
          CheckThenAdd(schema, builders.back(), **reader);
        }
      }
    }
  };
  // Thread CPU time: on a shared machine wall time is mostly noise.
  auto cpu_now = [] {
    timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
  };
  auto seconds_since = [&](double start) { return cpu_now() - start; };
  // Reading alone, for reference.
  double start_time = cpu_now();
  {
    table::ReadOptions read;
    auto reader = table::RowReader::Open(table::Format::kCsv, csv, read);
    int64_t rows = 0;
    while (*(*reader)->Next()) ++rows;
    EXPECT_EQ(rows, kRows);
  }
  const double read_seconds = seconds_since(start_time);
  std::string expected;
  for (bool checked : {false, true}) {
    std::vector<ProfileBuilder> builders;
    start_time = cpu_now();
    profile_chunks(checked, builders);
    const double add_seconds = seconds_since(start_time);
    start_time = cpu_now();
    ProfileBuilder merged = MergeInOrder(std::move(builders));
    const double merge_seconds = seconds_since(start_time);
    start_time = cpu_now();
    Json profile = merged.Finish();
    const double finish_seconds = seconds_since(start_time);
    start_time = cpu_now();
    std::string dumped = profile.dump();
    const double dump_seconds = seconds_since(start_time);
    std::printf(
        "%s: read %.3f s; read+check+profile %.3f s = %.0f rows/s (%.0f rows/s beyond reading); "
        "merge %.3f s; Finish %.3f s; dump %.3f s (%zu bytes)\n",
        checked ? "AddChecked" : "CheckCell+Add", read_seconds, add_seconds, kRows / add_seconds,
        kRows / (add_seconds - read_seconds), merge_seconds, finish_seconds, dump_seconds,
        dumped.size());
    if (expected.empty()) expected = dumped;
    EXPECT_EQ(dumped, expected);
  }
  // Saved state of a ~13,000-row chunk (about 1 MB of a wide table) for a 6,000,000-row table.
  std::vector<ProfileBuilder> builders;
  profile_chunks(true, builders);
  ProfileOptions options;
  const uint64_t key_limit = ProfileBuilder::KeyLimitFor(6000000, options);
  size_t total = 0;
  for (size_t i = 1; i + 1 < builders.size(); ++i) total += builders[i].Serialize(key_limit).size();
  std::printf("saved state: %.0f bytes per chunk of %.0f rows (KeyLimitFor(6,000,000))\n",
              static_cast<double>(total) / static_cast<double>(builders.size() - 2),
              static_cast<double>(kRows) / static_cast<double>(builders.size()));
}

// ---------------------------------------------------------------------------------------------
// AddNumericCsv: straight from CSV bytes to the profile, exactly as the row reader + AddChecked.

namespace numeric_csv {

// What profiling `bytes` one way gave: taken (false: an error, a widening, or the fused parse
// declined), the rows, the saved state and the finished profile.
struct Outcome {
  bool taken = false;
  uint64_t rows = 0;
  std::string saved;
  std::string finished;
  std::string saved_limited;
};

ProfileOptions SmallSample() {
  ProfileOptions options;
  options.sample_size = 40;  // small, so that samples fill up and compact
  options.seed = 7;
  return options;
}

void Record(const ProfileBuilder& builder, uint64_t rows, Outcome* outcome) {
  outcome->taken = true;
  outcome->rows = rows;
  outcome->saved = builder.Serialize(std::numeric_limits<uint64_t>::max());
  outcome->saved_limited = builder.Serialize(ProfileBuilder::KeyLimitFor(rows * 3, SmallSample()));
  outcome->finished = builder.Finish().dump();
}

// The row reader's path, as Ingest::ProfileChunk takes it.
Outcome Generic(const table::Schema& schema, std::string_view bytes, table::Format format,
                int64_t first_line, bool has_header, ProfileBuilder* out = nullptr) {
  Outcome outcome;
  table::ReadOptions read;
  read.file_name = "t.csv";
  read.first_line = first_line;
  read.has_header = has_header;
  if (!has_header) {
    for (const table::Column& column : schema.columns) read.column_names.push_back(column.name);
  }
  auto reader = table::RowReader::Open(format, bytes, read);
  if (!reader.ok()) return outcome;
  ProfileBuilder builder(schema, SmallSample());
  uint64_t rows = 0;
  while (true) {
    Result<bool> more = (*reader)->Next();
    if (!more.ok()) return outcome;
    if (!*more) break;
    bool widen = false;
    if (!builder.AddChecked(**reader, "t.csv", &widen).ok() || widen) return outcome;
    ++rows;
  }
  Record(builder, rows, &outcome);
  if (out != nullptr) *out = std::move(builder);
  return outcome;
}

Outcome Fused(const table::Schema& schema, std::string_view bytes, char delimiter,
              int64_t first_line, bool skip_first_line, ProfileBuilder* out = nullptr) {
  Outcome outcome;
  ProfileBuilder builder(schema, SmallSample());
  uint64_t rows = 0;
  if (!builder.AddNumericCsv(bytes, delimiter, first_line, skip_first_line, &rows)) return outcome;
  Record(builder, rows, &outcome);
  if (out != nullptr) *out = std::move(builder);
  return outcome;
}

// Either the fused parse declines, or it gives what the generic path gives, byte for byte.
void ExpectSameOrDeclined(const table::Schema& schema, std::string_view bytes, table::Format format,
                          int64_t first_line, bool header, const std::string& what) {
  const char delimiter = format == table::Format::kTsv ? '\t' : ',';
  Outcome fused = Fused(schema, bytes, delimiter, first_line, header);
  Outcome generic = Generic(schema, bytes, format, first_line, header);
  if (!fused.taken) return;
  ASSERT_TRUE(generic.taken) << what << "\n" << bytes;
  EXPECT_EQ(fused.rows, generic.rows) << what;
  EXPECT_EQ(fused.saved, generic.saved) << what;
  EXPECT_EQ(fused.saved_limited, generic.saved_limited) << what;
  EXPECT_EQ(fused.finished, generic.finished) << what;
}

std::string IntText(std::mt19937_64& random) {
  switch (random() % 8) {
    case 0: return "";
    case 1: return std::to_string(static_cast<int64_t>(random() % 2000) - 1000);
    case 2: return std::to_string(static_cast<int64_t>(random()));  // beyond 2^53, 19 digits
    case 3: return "-" + std::to_string(random() % 100000000000000000ULL);  // 17 digits
    case 4: return "+" + std::to_string(random() % 1000);
    case 5: return std::to_string((uint64_t{1} << 53) + random() % 5);
    default: return std::to_string(static_cast<int64_t>(random() % 100000000));
  }
}

std::string FloatText(std::mt19937_64& random) {
  static const std::vector<std::string> kSpecial = {"nan",
                                                    "NaN",
                                                    "inf",
                                                    "-inf",
                                                    "Infinity",
                                                    "1e5",
                                                    "-2.5E-3",
                                                    "0",
                                                    "-0",
                                                    "-0.0",
                                                    "0.000",
                                                    "9007199254740993",
                                                    "9007199254740992.5",
                                                    "12345678901234567890",
                                                    "1.7976931348623157e308",
                                                    "4.9e-324",
                                                    "+4.5",
                                                    "5.",
                                                    ".25",
                                                    "1e999"};
  switch (random() % 10) {
    case 0: return "";
    case 1: return kSpecial[random() % kSpecial.size()];
    case 2: {  // long decimal: more than 16 digits
      std::string text =
          std::to_string(random() % 1000000000) + "." + std::to_string(random() % 1000000000000ULL);
      return random() % 2 ? "-" + text : text;
    }
    case 3: return std::to_string(static_cast<int64_t>(random() % 100000) - 50000);
    default: {  // short decimal like 822.465
      std::string fraction = std::to_string(random() % 1000);
      fraction.insert(0, 3 - fraction.size(), '0');
      fraction.resize(1 + random() % 3);
      std::string text = std::to_string(random() % 10000) + "." + fraction;
      return random() % 3 == 0 ? "-" + text : text;
    }
  }
}

struct Table {
  table::Schema schema;
  std::string header;
  std::vector<std::string> lines;  // without terminators
};

Table RandomTable(std::mt19937_64& random, char delimiter, size_t rows) {
  Table table;
  const size_t columns = 1 + random() % 5;
  for (size_t i = 0; i < columns; ++i) {
    const ColumnType type = random() % 2 ? ColumnType::kInt64 : ColumnType::kFloat64;
    table.schema.columns.push_back({"c" + std::to_string(i), type, true});
    if (i > 0) table.header += delimiter;
    table.header += "c" + std::to_string(i);
  }
  for (size_t r = 0; r < rows; ++r) {
    std::string line;
    for (size_t i = 0; i < columns; ++i) {
      if (i > 0) line += delimiter;
      line +=
          table.schema.columns[i].type == ColumnType::kInt64 ? IntText(random) : FloatText(random);
    }
    if (columns == 1 && line.empty()) line = "0";  // an empty line is a blank line, tested apart
    table.lines.push_back(line);
  }
  return table;
}

std::string Join(const Table& table, bool header, size_t from, size_t to, bool final_newline) {
  std::string text = header ? table.header + "\n" : "";
  for (size_t r = from; r < to; ++r) {
    text += table.lines[r];
    if (r + 1 < to || final_newline) text += '\n';
  }
  return text;
}

}  // namespace numeric_csv

TEST(ProfileNumericCsvTest, RandomTablesGiveTheReadersProfileByteForByte) {
  using namespace numeric_csv;
  std::mt19937_64 random(2026);
  size_t taken = 0, cases = 0;
  for (int round = 0; round < 120; ++round) {
    const table::Format format = round % 3 == 0 ? table::Format::kTsv : table::Format::kCsv;
    const char delimiter = format == table::Format::kTsv ? '\t' : ',';
    const size_t rows = 1 + random() % 120;
    Table table = RandomTable(random, delimiter, rows);
    const bool final_newline = random() % 4 != 0;
    // Whole table with its header, then cut into chunks at later lines (first_line > 1).
    std::string whole = Join(table, true, 0, rows, final_newline);
    const std::string what = "round " + std::to_string(round);
    ExpectSameOrDeclined(table.schema, whole, format, 1, true, what);
    ++cases;
    taken += Fused(table.schema, whole, delimiter, 1, true).taken;
    const size_t cut = random() % rows;
    std::string head = Join(table, true, 0, cut, true);
    std::string tail = Join(table, false, cut, rows, final_newline);
    ExpectSameOrDeclined(table.schema, head, format, 1, true, what + " head");
    ExpectSameOrDeclined(table.schema, tail, format, static_cast<int64_t>(cut) + 2, false,
                         what + " tail");
  }
  // Most random tables hold only what the fused parse takes (it declines only on widening).
  EXPECT_GT(taken, cases / 3);
}

TEST(ProfileNumericCsvTest, MergedChunksEqualTheReadersMergedChunks) {
  using namespace numeric_csv;
  std::mt19937_64 random(99);
  for (int round = 0; round < 20; ++round) {
    Table table;
    table.schema = MakeSchema(
        {{"id", ColumnType::kInt64}, {"x", ColumnType::kFloat64}, {"y", ColumnType::kFloat64}});
    table.header = "id,x,y";
    const size_t rows = 300;
    for (size_t r = 0; r < rows; ++r) {
      std::string x = std::to_string(random() % 1000) + "." + std::to_string(random() % 1000);
      table.lines.push_back(std::to_string(r) + "," + (random() % 10 ? x : "") + ",-" +
                            std::to_string(random() % 100) + ".5");
    }
    std::vector<size_t> cuts = {0, 1 + random() % 100, 150 + random() % 100, rows};
    std::vector<ProfileBuilder> fused, generic;
    for (size_t c = 0; c + 1 < cuts.size(); ++c) {
      const bool header = c == 0;
      const std::string bytes = Join(table, header, cuts[c], cuts[c + 1], true);
      const int64_t first_line = header ? 1 : static_cast<int64_t>(cuts[c]) + 2;
      fused.emplace_back(table.schema, SmallSample());
      generic.emplace_back(table.schema, SmallSample());
      ASSERT_TRUE(Fused(table.schema, bytes, ',', first_line, header, &fused.back()).taken);
      ASSERT_TRUE(
          Generic(table.schema, bytes, table::Format::kCsv, first_line, header, &generic.back())
              .taken);
    }
    ProfileBuilder a = MergeInOrder(std::move(fused));
    ProfileBuilder b = MergeInOrder(std::move(generic));
    EXPECT_EQ(a.Finish().dump(), b.Finish().dump());
    EXPECT_EQ(a.Serialize(std::numeric_limits<uint64_t>::max()),
              b.Serialize(std::numeric_limits<uint64_t>::max()));
  }
}

TEST(ProfileNumericCsvTest, DeclinesWhatOnlyTheReaderHandles) {
  using namespace numeric_csv;
  const table::Schema schema =
      MakeSchema({{"id", ColumnType::kInt64}, {"x", ColumnType::kFloat64}});
  struct Case {
    std::string name;
    std::string bytes;
    bool header;
  };
  const std::vector<Case> cases = {
      {"quoted number", "1,\"2.5\"\n", false},
      {"quoted header", "\"id\",x\n1,2.5\n", true},
      {"quoted field with delimiter", "1,\"2,5\"\n", false},
      {"crlf", "1,2.5\r\n2,3.5\r\n", false},
      {"crlf header", "id,x\r\n1,2.5\n", true},
      {"blank line", "1,2.5\n\n2,3.5\n", false},
      {"blank line at end", "1,2.5\n\n", false},
      {"too few fields", "1,2.5\n2\n", false},
      {"too many fields", "1,2.5,3\n", false},
      {"int turns decimal", "1,2.5\n2.5,3\n", false},
      {"int turns exponent", "1e3,2.5\n", false},
      {"not a number", "1,abc\n", false},
      {"space in number", "1, 2.5\n", false},
      {"int too large", "99999999999999999999,2.5\n", false},
      {"header of other names", "id,y\n1,2.5\n", true},
      {"header of other width", "id,x,z\n1,2.5,3\n", true},
      {"header only, empty", "", true},
      {"tab in csv", "1\t2.5\n", false},
      {"bom before data",
       "\xEF\xBB\xBF"
       "1,2.5\n",
       false},
      {"field over the size limit", "1," + std::string(5000, '1') + "\n", false},
  };
  for (const Case& c : cases) {
    uint64_t rows = 0;
    ProfileBuilder builder(schema, SmallSample());
    EXPECT_FALSE(builder.AddNumericCsv(c.bytes, ',', 1, c.header, &rows)) << c.name;
  }
  // A schema with a column the fused parse does not take.
  ProfileBuilder strings(MakeSchema({{"id", ColumnType::kInt64}, {"s", ColumnType::kString}}),
                         SmallSample());
  uint64_t rows = 0;
  EXPECT_FALSE(strings.AddNumericCsv("1,2\n", ',', 2, false, &rows));
}

TEST(ProfileNumericCsvTest, TakesNullsSpecialsAndEdgesAsTheReaderDoes) {
  using namespace numeric_csv;
  const table::Schema schema = MakeSchema(
      {{"id", ColumnType::kInt64}, {"x", ColumnType::kFloat64}, {"y", ColumnType::kFloat64}});
  struct Case {
    std::string name;
    std::string bytes;
    bool header;
    int64_t first_line;
    uint64_t rows;
  };
  const std::vector<Case> cases = {
      {"nulls", "1,,\n,2.5,\n,,\n", false, 5, 3},
      {"header and no newline at the end", "id,x,y\n1,2.5,3\n2,-0.5,1e5", true, 1, 2},
      {"header only", "id,x,y\n", true, 1, 0},
      {"header without newline", "id,x,y", true, 1, 0},
      {"bom before header",
       "\xEF\xBB\xBF"
       "id,x,y\n1,2,3\n",
       true, 1, 1},
      {"specials", "1,nan,inf\n2,-inf,NaN\n3,1e5,-2.5e-3\n", false, 10, 3},
      {"long decimals", "1,12345678.123456789012,-0.00000000000000000012\n", false, 2, 1},
      {"beyond 2^53",
       "9223372036854775807,9007199254740993,-9223372036854775808\n"
       "-9223372036854775808,1,2\n",
       false, 3, 2},
      {"signed zeros", "0,-0.0,0.0\n-0,0,-0\n+0,-0.000,0.000\n", false, 2, 3},
      {"empty buffer", "", false, 7, 0},
  };
  for (const Case& c : cases) {
    Outcome fused = Fused(schema, c.bytes, ',', c.first_line, c.header);
    Outcome generic = Generic(schema, c.bytes, table::Format::kCsv, c.first_line, c.header);
    ASSERT_TRUE(fused.taken) << c.name;
    ASSERT_TRUE(generic.taken) << c.name;
    EXPECT_EQ(fused.rows, c.rows) << c.name;
    EXPECT_EQ(generic.rows, c.rows) << c.name;
    EXPECT_EQ(fused.saved, generic.saved) << c.name;
    EXPECT_EQ(fused.finished, generic.finished) << c.name;
  }
}

TEST(ProfileNumericCsvTest, MutatedTablesAreDeclinedOrProfiledAlike) {
  using namespace numeric_csv;
  std::mt19937_64 random(5);
  for (int round = 0; round < 200; ++round) {
    const size_t rows = 2 + random() % 40;
    Table table = RandomTable(random, ',', rows);
    const size_t at = random() % rows;
    std::string& line = table.lines[at];
    bool must_decline = true;
    switch (round % 8) {
      case 0: line += "\r"; break;               // a CRLF line end
      case 1: line = "\"" + line + "\""; break;  // quotes
      case 2: line += "\n"; break;               // a blank line after it
      case 3: line += ",7"; break;               // one field too many
      case 4: line = "x" + line; break;          // not a number
      case 5:
        if (table.schema.columns[0].type != ColumnType::kInt64) {
          must_decline = false;
          break;
        }
        line =
            "2.5" + line.substr(line.find(',') == std::string::npos ? line.size() : line.find(','));
        break;  // an int column that turns decimal
      case 6:
        if (table.schema.columns.size() < 2) {
          must_decline = false;
          break;
        }
        line = line.substr(0, line.rfind(','));  // one field too few
        break;
      default: must_decline = false; break;  // unchanged
    }
    const std::string bytes = Join(table, true, 0, rows, random() % 2);
    const std::string what = "round " + std::to_string(round) + "\n" + bytes;
    if (must_decline) {
      EXPECT_FALSE(Fused(table.schema, bytes, ',', 1, true).taken) << what;
    }
    ExpectSameOrDeclined(table.schema, bytes, table::Format::kCsv, 1, true, what);
  }
}

}  // namespace
}  // namespace kiln::data
