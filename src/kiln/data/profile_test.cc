#include "kiln/data/profile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
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

// One builder per chunk, as commits do, merged in chunk order (pairwise, as a tree, when `tree`).
Json ProfileByChunk(const TableVersion& version, MemoryLoader& loader, ProfileOptions options,
                    bool tree) {
  std::vector<ProfileBuilder> builders;
  for (size_t i = 0; i < version.chunks.size(); ++i) {
    builders.emplace_back(version.schema, options);
    Result<std::string> bytes = loader.Load(version.chunks[i].id);
    EXPECT_TRUE(bytes.ok());
    auto reader = table::RowReader::Open(*version.format, *bytes, ChunkReadOptions(version, i));
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    while (true) {
      Result<bool> more = (*reader)->Next();
      EXPECT_TRUE(more.ok()) << more.status().ToString();
      if (!more.ok() || !*more) break;
      builders.back().Add(**reader);
    }
  }
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

}  // namespace
}  // namespace kiln::data
