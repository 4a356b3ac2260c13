#include "kiln/data/validation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "kiln/core/hash.h"
#include "kiln/data/chunked_table_for_test.h"
#include "kiln/data/profile.h"
#include "kiln/table/schema.h"

namespace kiln::data {
namespace {

using table::ColumnType;

using testing::MemoryLoader;

// A CSV table (header line + one line per row) cut into chunks that start at the given rows,
// with its profile.
struct Table {
  TableVersion version;
  Json profile;
};

Table MakeTable(const std::string& name, const std::string& csv,
                const std::vector<std::pair<std::string, ColumnType>>& columns,
                const std::vector<size_t>& chunk_starts, MemoryLoader& loader) {
  std::vector<std::string> lines;
  for (size_t start = 0; start < csv.size();) {
    size_t end = csv.find('\n', start);
    end = end == std::string::npos ? csv.size() : end + 1;
    lines.push_back(csv.substr(start, end - start));
    start = end;
  }
  Table table;
  TableVersion& version = table.version;
  version.name = name;
  version.file_name = name + ".csv";
  version.format = table::Format::kCsv;
  for (const auto& [column, type] : columns) version.schema.columns.push_back({column, type, true});
  CutCsvIntoChunks(lines, chunk_starts, loader, version);
  ProfileBuilder builder(version.schema);
  Status status = ForEachRow(version, loader, [&](const table::RowReader& row) {
    builder.Add(row);
    return Status::Ok();
  });
  EXPECT_TRUE(status.ok()) << status.ToString();
  table.profile = builder.Finish();
  return table;
}

// Lines 2..9 of the file; three chunks.
const char kCreditCsv[] =
    "id,age,income,city,joined,score\n"
    "1,34,50000.5,paris,2026-01-05,0.5\n"           // line 2
    "2,-4,,berlin,2026-02-01,0.7\n"                 // line 3
    "3,130,72000,paris,2026-03-01,0.2\n"            // line 4
    "4,45,61000,rome,2026-01-20,0.1\n"              // line 5
    "5,45,,paris,2025-12-31,0.9\n"                  // line 6
    "6,28,58000,madrid,2026-01-11,0.4\n"            // line 7
    "2,51,43000,berlin,2026-02-14,0.3\n"            // line 8
    "8,-1,39000,paris,2026-01-01T00:00:00Z,0.6\n";  // line 9

Table CreditTable(MemoryLoader& loader) {
  return MakeTable("credit", kCreditCsv,
                   {{"id", ColumnType::kInt64},
                    {"age", ColumnType::kInt64},
                    {"income", ColumnType::kFloat64},
                    {"city", ColumnType::kCategorical},
                    {"joined", ColumnType::kTimestamp},
                    {"score", ColumnType::kFloat64}},
                   {3, 5}, loader);
}

Result<std::vector<Violation>> Check(const std::string& yaml, const Table& table,
                                     MemoryLoader& loader,
                                     const ReferenceProfiles& references = {}) {
  Result<Rules> rules = Rules::Parse(yaml, "rules.yaml");
  if (!rules.ok()) return rules.status();
  return Validate(*rules, table.version, table.profile, loader, references);
}

std::string ColumnRules(const std::string& column, const std::string& rules) {
  return "tables:\n  credit:\n    columns:\n      " + column + ": " + rules + "\n";
}

struct RuleCase {
  std::string name;
  std::string yaml;
  // Expected violations, in order: "rule" or "" for none.
  std::string rule;
  int64_t violating_rows = 0;
  std::vector<int64_t> lines;
  std::vector<std::string> values;
  std::string observed;  // checked when not empty
};

TEST(ValidationTest, EveryRuleKindPassesAndFails) {
  const std::vector<RuleCase> cases = {
      {"type matches", ColumnRules("age", "{type: int64}"), ""},
      {"type differs", ColumnRules("age", "{type: float64}"), "type", 0, {}, {}, "int64"},
      {"not_null share met", ColumnRules("income", "{not_null: 0.75}"), ""},
      {"not_null share missed",
       ColumnRules("income", "{not_null: 0.9}"),
       "not_null",
       2,
       {3, 6},
       {"null", "null"},
       "0.75 non-null (2 nulls in 8 rows)"},
      {"not_null true on a full column", ColumnRules("age", "{not_null: true}"), ""},
      {"not_null true on a column with nulls",
       ColumnRules("income", "{not_null: true}"),
       "not_null",
       2,
       {3, 6}},
      {"min met", ColumnRules("age", "{min: -10}"), ""},
      {"min broken", ColumnRules("age", "{min: 0}"), "min", 2, {3, 9}, {"-4", "-1"}, "-4"},
      {"max met", ColumnRules("age", "{max: 130}"), ""},
      {"max broken", ColumnRules("age", "{max: 120}"), "max", 1, {4}, {"130"}, "130"},
      {"float max broken",
       ColumnRules("income", "{max: 60000}"),
       "max",
       2,
       {4, 5},
       {"72000", "61000"},
       "72000"},
      {"timestamp min met", ColumnRules("joined", "{min: 2025-12-31}"), ""},
      {"timestamp min broken",
       ColumnRules("joined", "{min: '2026-01-01'}"),
       "min",
       1,
       {6},
       {"2025-12-31"}},
      {"timestamp max broken",
       ColumnRules("joined", "{max: 2026-02-28T23:59:59Z}"),
       "max",
       1,
       {4},
       {"2026-03-01"}},
      {"min on a text column",
       ColumnRules("city", "{min: 3}"),
       "min",
       0,
       {},
       {},
       "a categorical column (min needs a numeric column)"},
      {"allowed met", ColumnRules("city", "{allowed: [paris, berlin, rome, madrid]}"), ""},
      {"allowed broken",
       ColumnRules("city", "{allowed: [paris, berlin, rome]}"),
       "allowed",
       1,
       {7},
       {"madrid"},
       "1 values outside the set, such as 'madrid'"},
      {"allowed numbers compare as numbers",
       ColumnRules("score", "{allowed: [0.1, 0.2, 0.3, 0.40, 0.5, .6, 0.7, 0.9]}"), ""},
      {"unique met", ColumnRules("score", "{unique: true}"), ""},
      {"unique broken",
       ColumnRules("id", "{unique: true}"),
       "unique",
       1,
       {8},
       {"2"},
       "1 rows repeat an earlier value"},
      {"unique on categories", ColumnRules("city", "{unique: true}"), "unique", 4, {4, 6, 8, 9}},
      {"unique false checks nothing", ColumnRules("id", "{unique: false}"), ""},
      {"required present", ColumnRules("age", "{required: true}"), ""},
      {"required missing",
       ColumnRules("salary", "{required: true}"),
       "required",
       0,
       {},
       {},
       "missing"},
      {"rules of an absent optional column are skipped", ColumnRules("salary", "{min: 0}"), ""},
      {"row_count met", "tables:\n  credit:\n    row_count: {min: 1, max: 8}\n", ""},
      {"row_count too small",
       "tables:\n  credit:\n    row_count: {min: 10}\n",
       "row_count",
       0,
       {},
       {},
       "8 rows"},
      {"row_count too large",
       "tables:\n  credit:\n    row_count: {max: 7}\n",
       "row_count",
       0,
       {},
       {},
       "8 rows"},
      {"star applies to every table",
       "tables:\n  '*':\n    columns:\n      age: {max: 100}\n",
       "max",
       1,
       {4}},
      {"other tables' rules do not apply", "tables:\n  loans:\n    row_count: {min: 100}\n", ""},
  };
  MemoryLoader loader;
  Table table = CreditTable(loader);
  for (const RuleCase& c : cases) {
    SCOPED_TRACE(c.name);
    Result<std::vector<Violation>> violations = Check(c.yaml, table, loader);
    ASSERT_TRUE(violations.ok()) << violations.status().ToString();
    if (c.rule.empty()) {
      for (const Violation& v : *violations) ADD_FAILURE() << v.ToJson().dump();
      continue;
    }
    ASSERT_EQ(violations->size(), 1u);
    const Violation& v = violations->front();
    EXPECT_EQ(v.table, "credit");
    EXPECT_EQ(v.rule, c.rule);
    EXPECT_EQ(v.violating_rows, c.violating_rows) << v.ToJson().dump();
    EXPECT_EQ(v.sample_lines, c.lines) << v.ToJson().dump();
    if (!c.values.empty()) {
      EXPECT_EQ(v.sample_values, c.values);
    }
    if (!c.observed.empty()) {
      EXPECT_EQ(v.observed, c.observed);
    }
    EXPECT_FALSE(v.expected.empty());
  }
}

TEST(ValidationTest, EveryViolationIsReportedInRuleOrderWithAClearMessage) {
  MemoryLoader loader;
  Table table = CreditTable(loader);
  Result<std::vector<Violation>> violations = Check(R"(tables:
  credit:
    row_count: {min: 100}
    columns:
      age: {type: int64, min: 0, max: 120, unique: true}
      city: {allowed: [paris, rome]}
      income: {required: true, not_null: 0.99}
)",
                                                    table, loader);
  ASSERT_TRUE(violations.ok()) << violations.status().ToString();
  std::vector<std::string> rules;
  for (const Violation& v : *violations) rules.push_back(v.column + ":" + v.rule);
  EXPECT_EQ(rules, (std::vector<std::string>{":row_count", "age:min", "age:max", "age:unique",
                                             "city:allowed", "income:not_null"}));
  Json city = (*violations)[4].ToJson();
  EXPECT_EQ(city["violating_rows"], 3);
  EXPECT_EQ(city["sample_lines"], Json::parse("[3, 7, 8]"));
  EXPECT_EQ(city["message"],
            "credit.city: allowed: expected one of [paris, rome], observed 3 values outside the "
            "set, such as 'berlin', 'madrid'; 3 rows, e.g. line 3: 'berlin', line 7: 'madrid', "
            "line 8: 'berlin'");
  EXPECT_EQ((*violations)[1].expected, ">= 0");
}

TEST(ValidationTest, SamplesStopAtFiveRowsButCountsDoNot) {
  MemoryLoader loader;
  std::string csv = "v\n";
  for (int i = 0; i < 40; ++i) csv += std::to_string(i % 2 == 0 ? -i : i) + "\n";
  Table table = MakeTable("t", csv, {{"v", ColumnType::kInt64}}, {10, 25}, loader);
  Result<std::vector<Violation>> violations =
      Check("tables:\n  t:\n    columns:\n      v: {min: 0}\n", table, loader);
  ASSERT_TRUE(violations.ok());
  ASSERT_EQ(violations->size(), 1u);
  EXPECT_EQ(violations->front().violating_rows, 19);  // -2, -4, ..., -38
  EXPECT_EQ(violations->front().sample_lines, (std::vector<int64_t>{4, 6, 8, 10, 12}));
  EXPECT_EQ(violations->front().observed, "-38");
}

struct YamlErrorCase {
  std::string name;
  std::string yaml;
  std::string message_start;  // "rules.yaml:LINE:COLUMN: ..."
};

TEST(ValidationTest, YamlErrorsNameLineAndColumn) {
  const std::vector<YamlErrorCase> cases = {
      {"syntax error", "tables:\n  credit:\n    row_count: {min: 1\n", "rules.yaml:4:1: "},
      {"bad indentation", "tables:\n  credit:\n    columns:\n      age: {min: 1}\n     x: 2\n",
       "rules.yaml:5:"},
      {"unknown rule", "tables:\n  credit:\n    columns:\n      age:\n        maxx: 3\n",
       "rules.yaml:5:9: unknown rule 'maxx' in column 'age' (expected one of: type, not_null, min, "
       "max, allowed, unique, required, drift)"},
      {"unknown table key", "tables:\n  credit:\n    rows: 3\n",
       "rules.yaml:3:5: unknown rule 'rows' in table 'credit'"},
      {"unknown top-level key", "table:\n  credit: {}\n", "rules.yaml:1:1: unknown key 'table'"},
      {"not a mapping", "- a\n- b\n", "rules.yaml:1:1: expected a mapping with 'tables'"},
      {"empty file", "", "rules.yaml:1:1: the rules file is empty"},
      {"not_null not a share", "tables:\n  t:\n    columns:\n      a: {not_null: lots}\n",
       "rules.yaml:4:21: 'not_null' must be a share between 0 and 1"},
      {"not_null above one", "tables:\n  t:\n    columns:\n      a: {not_null: 1.5}\n",
       "rules.yaml:4:21: 'not_null' must be a share"},
      {"unique not a bool", "tables:\n  t:\n    columns:\n      a: {unique: 3}\n",
       "rules.yaml:4:19: 'unique' must be true or false, found '3'"},
      {"min not a number", "tables:\n  t:\n    columns:\n      a: {min: [1]}\n",
       "rules.yaml:4:16: 'min' must be a number or an ISO 8601 timestamp"},
      {"min text", "tables:\n  t:\n    columns:\n      a: {min: abc}\n",
       "rules.yaml:4:16: 'min' must be a number or an ISO 8601 timestamp, found 'abc'"},
      {"min above max", "tables:\n  t:\n    columns:\n      a: {min: 5, max: 1}\n",
       "rules.yaml:4:24: min 5 is greater than max 1"},
      {"unknown type", "tables:\n  t:\n    columns:\n      a: {type: int32}\n",
       "rules.yaml:4:17: unknown type 'int32'"},
      {"allowed not a list", "tables:\n  t:\n    columns:\n      a: {allowed: x}\n",
       "rules.yaml:4:20: 'allowed' must be a list"},
      {"row_count negative", "tables:\n  t:\n    row_count: {min: -1}\n",
       "rules.yaml:3:22: 'min' must be a whole number >= 0, found '-1'"},
      {"row_count unknown bound", "tables:\n  t:\n    row_count: {least: 1}\n",
       "rules.yaml:3:17: unknown rule 'least' in row_count"},
      {"drift without reference",
       "tables:\n  t:\n    columns:\n      a:\n        drift: {max_ks: 0.1}\n",
       "rules.yaml:5:16: 'drift' needs a 'reference'"},
      {"drift without a bound",
       "tables:\n  t:\n    columns:\n      a:\n        drift: {reference: main}\n",
       "rules.yaml:5:16: 'drift' needs 'max_ks' or 'max_psi'"},
      {"drift ks above one",
       "tables:\n  t:\n    columns:\n      a:\n        drift: {reference: main, max_ks: 2}\n",
       "rules.yaml:5:42: 'max_ks' must be between 0 and 1"},
      {"drift unknown key", "tables:\n  t:\n    columns:\n      a:\n        drift: {ref: main}\n",
       "rules.yaml:5:17: unknown rule 'ref' in drift of column 'a'"},
      {"rule given twice", "tables:\n  t:\n    columns:\n      a: {min: 1, min: 2}\n",
       "rules.yaml:4:19: 'min' is given twice"},
      {"table listed twice", "tables:\n  t: {}\n  t: {}\n",
       "rules.yaml:3:3: table 't' is listed twice"},
  };
  for (const YamlErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    Result<Rules> rules = Rules::Parse(c.yaml, "rules.yaml");
    ASSERT_FALSE(rules.ok());
    EXPECT_EQ(rules.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(rules.status().message().substr(0, c.message_start.size()), c.message_start)
        << rules.status().message();
  }
}

TEST(ValidationTest, ParsesTheDocumentedExample) {
  Result<Rules> rules = Rules::Parse(R"(tables:
  credit:                      # table name; "*" applies to every table
    row_count: {min: 1000, max: 10000000}
    columns:
      age:
        type: int64            # the stored schema's type must be this
        not_null: 0.99         # share of non-null values >= 0.99 (true means 1.0)
        min: 0                 # numeric (or timestamp, as ISO 8601) bounds, inclusive
        max: 120
        allowed: [a, b, c]     # every non-null value is one of these
        unique: true           # no two non-null values are equal
        drift:                 # distribution bounds against a reference commit's profile
          reference: main~1    # a REF; resolved by the caller
          max_ks: 0.1          # Kolmogorov-Smirnov statistic (numeric), or
          max_psi: 0.2         # population stability index (numeric or categorical)
      income: {required: true} # the column must exist
  "*":
    columns:
      id: {drift: {reference: v1.0, max_psi: 0.3}}
      age: {drift: {reference: main~1, max_ks: 0.3}}
)",
                                     "rules.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  EXPECT_EQ(rules->DriftReferences(), (std::vector<std::string>{"main~1", "v1.0"}));
  EXPECT_TRUE(rules->AppliesTo("credit"));
  EXPECT_TRUE(rules->AppliesTo("anything"));
  ASSERT_EQ(rules->tables.size(), 2u);
  EXPECT_EQ(rules->tables[0].first, "credit");
  EXPECT_EQ(rules->tables[1].first, "*");
  EXPECT_NE(rules->text().find("max_psi"), std::string::npos);

  Result<Rules> named_only = Rules::Parse("tables:\n  credit: {}\n", "r.yaml");
  ASSERT_TRUE(named_only.ok());
  EXPECT_TRUE(named_only->AppliesTo("credit"));
  EXPECT_FALSE(named_only->AppliesTo("loans"));
}

// ---- Drift -----------------------------------------------------------------------------------

// The two-sample KS statistic by its definition: the largest gap between the empirical CDFs,
// checked at every value of either sample (O(n*m)).
double KsByDefinition(const std::vector<double>& a, const std::vector<double>& b) {
  double largest = 0;
  std::vector<double> points = a;
  points.insert(points.end(), b.begin(), b.end());
  for (double x : points) {
    double fa =
        static_cast<double>(std::count_if(a.begin(), a.end(), [&](double v) { return v <= x; })) /
        a.size();
    double fb =
        static_cast<double>(std::count_if(b.begin(), b.end(), [&](double v) { return v <= x; })) /
        b.size();
    largest = std::max(largest, std::fabs(fa - fb));
  }
  return largest;
}

std::string NumbersCsv(const std::vector<double>& values) {
  std::string csv = "x\n";
  for (double value : values) {
    char text[40];
    std::snprintf(text, sizeof(text), "%.17g\n", value);
    csv += text;
  }
  return csv;
}

ReferenceProfiles ReferenceOf(const std::string& table, const Json& profile) {
  return [table, profile](const std::string& ref,
                          const std::string& name) -> Result<std::optional<Json>> {
    if (ref != "main~1") return NotFound("unknown ref " + ref);
    if (name != table) return std::optional<Json>();
    return std::optional<Json>(profile);
  };
}

TEST(ValidationTest, KsAgainstAReferenceMatchesTheDefinition) {
  std::vector<double> reference_values, current_values;
  for (int i = 0; i < 150; ++i) reference_values.push_back(std::round(std::sin(i * 1.7) * 50) / 4);
  for (int i = 0; i < 120; ++i)
    current_values.push_back(std::round(std::cos(i * 0.9) * 40 + 6) / 4);
  const double expected = KsByDefinition(reference_values, current_values);
  ASSERT_GT(expected, 0.05);

  MemoryLoader loader;
  Table reference =
      MakeTable("m", NumbersCsv(reference_values), {{"x", ColumnType::kFloat64}}, {70}, loader);
  Table current =
      MakeTable("m", NumbersCsv(current_values), {{"x", ColumnType::kFloat64}}, {50}, loader);
  ReferenceProfiles references = ReferenceOf("m", reference.profile);
  auto rules = [&](double max_ks) {
    char text[200];
    std::snprintf(
        text, sizeof(text),
        "tables:\n  m:\n    columns:\n      x: {drift: {reference: main~1, max_ks: %.17g}}\n",
        max_ks);
    return std::string(text);
  };
  Result<std::vector<Violation>> failing =
      Check(rules(expected - 1e-9), current, loader, references);
  ASSERT_TRUE(failing.ok()) << failing.status().ToString();
  ASSERT_EQ(failing->size(), 1u);
  EXPECT_EQ(failing->front().rule, "max_ks");
  EXPECT_NEAR(std::stod(failing->front().observed), expected, 1e-5);
  EXPECT_EQ(failing->front().expected.substr(0, 3), "<= ");
  Result<std::vector<Violation>> passing =
      Check(rules(expected + 1e-9), current, loader, references);
  ASSERT_TRUE(passing.ok());
  EXPECT_TRUE(passing->empty());
  // A table against itself has no drift.
  Result<std::vector<Violation>> same = Check(rules(0), reference, loader, references);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->empty());
}

TEST(ValidationTest, KsOnSampledProfilesUsesTheStoredSamples) {
  std::vector<double> reference_values, current_values;
  for (int i = 0; i < 3000; ++i) reference_values.push_back(std::sin(i) * 10);
  for (int i = 0; i < 2500; ++i) current_values.push_back(std::sin(i) * 10 + 1);
  MemoryLoader loader;
  Table reference =
      MakeTable("m", NumbersCsv(reference_values), {{"x", ColumnType::kFloat64}}, {1000}, loader);
  Table current =
      MakeTable("m", NumbersCsv(current_values), {{"x", ColumnType::kFloat64}}, {}, loader);
  // Profiles keep the whole column here (below the default sample size); shrink them to real
  // samples, as larger tables would have, by profiling with a small sample.
  auto profile_with_sample = [&](const Table& table) {
    ProfileOptions options;
    options.sample_size = 300;
    ProfileBuilder builder(table.version.schema, options);
    EXPECT_TRUE(ForEachRow(table.version, loader, [&](const table::RowReader& row) {
                  builder.Add(row);
                  return Status::Ok();
                }).ok());
    return builder.Finish();
  };
  Table sampled_reference{reference.version, profile_with_sample(reference)};
  Table sampled_current{current.version, profile_with_sample(current)};
  ASSERT_EQ(sampled_current.profile["columns"][0]["sample_exact"], false);
  const double expected =
      KsByDefinition(sampled_reference.profile["columns"][0]["sample"].get<std::vector<double>>(),
                     sampled_current.profile["columns"][0]["sample"].get<std::vector<double>>());
  Result<std::vector<Violation>> violations =
      Check("tables:\n  m:\n    columns:\n      x: {drift: {reference: main~1, max_ks: 0.01}}\n",
            sampled_current, loader, ReferenceOf("m", sampled_reference.profile));
  ASSERT_TRUE(violations.ok());
  ASSERT_EQ(violations->size(), 1u);
  EXPECT_NEAR(std::stod(violations->front().observed), expected, 1e-5);
}

TEST(ValidationTest, PsiOnReferenceHistogramBins) {
  // Reference: 0..99, ten values per bin. Current: twenty values, all in the first bin.
  std::vector<double> reference_values, current_values;
  for (int i = 0; i < 100; ++i) reference_values.push_back(i);
  for (int i = 0; i < 20; ++i) current_values.push_back(i % 10);
  MemoryLoader loader;
  Table reference =
      MakeTable("m", NumbersCsv(reference_values), {{"x", ColumnType::kFloat64}}, {}, loader);
  Table current =
      MakeTable("m", NumbersCsv(current_values), {{"x", ColumnType::kFloat64}}, {}, loader);
  const double expected = (1 - 0.1) * std::log(1 / 0.1) + 9 * (1e-4 - 0.1) * std::log(1e-4 / 0.1);
  Result<std::vector<Violation>> violations =
      Check("tables:\n  m:\n    columns:\n      x: {drift: {reference: main~1, max_psi: 0.2}}\n",
            current, loader, ReferenceOf("m", reference.profile));
  ASSERT_TRUE(violations.ok()) << violations.status().ToString();
  ASSERT_EQ(violations->size(), 1u);
  EXPECT_EQ(violations->front().rule, "max_psi");
  EXPECT_NEAR(std::stod(violations->front().observed), expected, expected * 1e-5);
  // Against itself: zero.
  Result<std::vector<Violation>> same =
      Check("tables:\n  m:\n    columns:\n      x: {drift: {reference: main~1, max_psi: 0}}\n",
            reference, loader, ReferenceOf("m", reference.profile));
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->empty());
}

TEST(ValidationTest, PsiOnCategoriesUsesTopValuesAndOther) {
  MemoryLoader loader;
  // Reference: paris 6, rome 3, oslo 1. Current: paris 2, rome 2, oslo 4, lima 2.
  std::string reference_csv = "city\n", current_csv = "city\n";
  for (const auto& [city, n] :
       std::vector<std::pair<std::string, int>>{{"paris", 6}, {"rome", 3}, {"oslo", 1}}) {
    for (int i = 0; i < n; ++i) reference_csv += city + "\n";
  }
  for (const auto& [city, n] : std::vector<std::pair<std::string, int>>{
           {"paris", 2}, {"rome", 2}, {"oslo", 4}, {"lima", 2}}) {
    for (int i = 0; i < n; ++i) current_csv += city + "\n";
  }
  Table reference = MakeTable("c", reference_csv, {{"city", ColumnType::kCategorical}}, {}, loader);
  Table current = MakeTable("c", current_csv, {{"city", ColumnType::kCategorical}}, {4}, loader);
  // Bins: paris, rome, oslo, other (lima); the empty reference "other" bin gets the epsilon.
  const std::vector<double> e = {0.6, 0.3, 0.1, 1e-4}, a = {0.2, 0.2, 0.4, 0.2};
  double expected = 0;
  for (size_t i = 0; i < e.size(); ++i) expected += (a[i] - e[i]) * std::log(a[i] / e[i]);
  Result<std::vector<Violation>> violations =
      Check("tables:\n  c:\n    columns:\n      city: {drift: {reference: main~1, max_psi: 0.5}}\n",
            current, loader, ReferenceOf("c", reference.profile));
  ASSERT_TRUE(violations.ok()) << violations.status().ToString();
  ASSERT_EQ(violations->size(), 1u);
  EXPECT_NEAR(std::stod(violations->front().observed), expected, expected * 1e-5);
  // KS needs numbers.
  Result<std::vector<Violation>> ks =
      Check("tables:\n  c:\n    columns:\n      city: {drift: {reference: main~1, max_ks: 0.5}}\n",
            current, loader, ReferenceOf("c", reference.profile));
  ASSERT_TRUE(ks.ok());
  ASSERT_EQ(ks->size(), 1u);
  EXPECT_NE(ks->front().observed.find("needs a numeric column"), std::string::npos);
}

std::string Line(char prefix, int number) {
  std::string line(1, prefix);
  line += std::to_string(number);
  line += '\n';
  return line;
}

TEST(ValidationTest, PsiOnManyCategoriesCountsTheCurrentRows) {
  // More distinct values than a profile's top list: the current side is counted from the rows.
  MemoryLoader loader;
  std::string reference_csv = "s\n", current_csv = "s\n";
  for (int i = 0; i < 30; ++i) {
    for (int k = 0; k < 2; ++k) reference_csv += Line('v', i);
    current_csv += Line('v', i);
  }
  for (int i = 0; i < 30; ++i) current_csv += Line('w', i);
  Table reference = MakeTable("s", reference_csv, {{"s", ColumnType::kString}}, {}, loader);
  Table current = MakeTable("s", current_csv, {{"s", ColumnType::kString}}, {20}, loader);
  // Reference top 20 values (v0, v1, v10..v19, v2.. by count then value) hold 2 each = 40 of 60;
  // other = 20. Current: each of those 20 values once = 20 of 60, other = 40.
  double expected = 20 * (1.0 / 60 - 2.0 / 60) * std::log((1.0 / 60) / (2.0 / 60)) +
                    (40.0 / 60 - 20.0 / 60) * std::log((40.0 / 60) / (20.0 / 60));
  Result<std::vector<Violation>> violations =
      Check("tables:\n  s:\n    columns:\n      s: {drift: {reference: main~1, max_psi: 0.01}}\n",
            current, loader, ReferenceOf("s", reference.profile));
  ASSERT_TRUE(violations.ok()) << violations.status().ToString();
  ASSERT_EQ(violations->size(), 1u);
  EXPECT_NEAR(std::stod(violations->front().observed), expected, expected * 1e-5);
}

TEST(ValidationTest, DriftWithoutAReferenceTableIsAViolationAndLookupErrorsPropagate) {
  MemoryLoader loader;
  Table table = CreditTable(loader);
  ReferenceProfiles references = ReferenceOf("other", Json::object());
  Result<std::vector<Violation>> violations =
      Check(ColumnRules("age", "{drift: {reference: main~1, max_ks: 0.1, max_psi: 0.1}}"), table,
            loader, references);
  ASSERT_TRUE(violations.ok());
  ASSERT_EQ(violations->size(), 2u);
  EXPECT_EQ((*violations)[0].rule, "max_ks");
  EXPECT_EQ((*violations)[0].observed, "no table 'credit' at main~1");
  EXPECT_EQ((*violations)[1].rule, "max_psi");

  Result<std::vector<Violation>> failed =
      Check(ColumnRules("age", "{drift: {reference: v9, max_ks: 0.1}}"), table, loader, references);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kNotFound);
}

TEST(ValidationTest, MissingChunkIsAnError) {
  MemoryLoader loader;
  Table table = CreditTable(loader);
  MemoryLoader empty;
  Result<std::vector<Violation>> violations =
      Check(ColumnRules("id", "{unique: true}"), table, empty);
  ASSERT_FALSE(violations.ok());
  EXPECT_EQ(violations.status().code(), StatusCode::kNotFound);
  // Rules that need no rows do not read them.
  Result<std::vector<Violation>> profile_only =
      Check(ColumnRules("age", "{type: int64, min: -100}"), table, empty);
  EXPECT_TRUE(profile_only.ok());
}

}  // namespace
}  // namespace kiln::data
