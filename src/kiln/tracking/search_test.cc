#include "kiln/tracking/search.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/core/ids.h"
#include "kiln/tracking/search_filter.h"
#include "kiln/tracking/tracking_store.h"
#include "tests/support/test_database.h"

namespace kiln::tracking {
namespace {

using store::Backend;
using store::Dialect;

const Dialect kSqlite(Backend::kSqlite);
const Dialect kPostgres(Backend::kPostgres);

RunSearchSpec RunSpec(std::string filter, std::vector<std::string> order_by = {}) {
  RunSearchSpec spec;
  spec.experiment_ids = {1};
  spec.filter = std::move(filter);
  spec.order_by = std::move(order_by);
  return spec;
}

bool HasParam(const SqlStatement& statement, const store::Value& value) {
  for (const auto& p : statement.params) {
    if (p == value) return true;
  }
  return false;
}

size_t CountPlaceholders(const std::string& sql) {
  return static_cast<size_t>(std::count(sql.begin(), sql.end(), '?'));
}

// ---------------------------------------------------------------------------------------------
// Parsing and SQL shape, no database.

struct ValidFilterCase {
  std::string filter;
  std::vector<std::string> sql_contains;
  std::vector<store::Value> params_contain;
};

void PrintTo(const ValidFilterCase& c, std::ostream* os) { *os << c.filter; }

class ValidRunFilterTest : public ::testing::TestWithParam<ValidFilterCase> {};

TEST_P(ValidRunFilterTest, CompilesToBoundParameters) {
  const ValidFilterCase& c = GetParam();
  for (const Dialect* dialect : {&kSqlite, &kPostgres}) {
    Result<SqlStatement> statement = BuildRunSearchSql(RunSpec(c.filter), *dialect);
    ASSERT_TRUE(statement.ok()) << c.filter << ": " << statement.status().ToString();
    // The expected fragments are SQLite's (ILIKE is spelled differently on PostgreSQL).
    if (dialect == &kSqlite) {
      for (const std::string& fragment : c.sql_contains) {
        EXPECT_NE(statement->sql.find(fragment), std::string::npos)
            << c.filter << " -> " << statement->sql << " lacks " << fragment;
      }
    }
    for (const store::Value& v : c.params_contain) {
      EXPECT_TRUE(HasParam(*statement, v)) << c.filter << " -> " << statement->sql;
    }
    EXPECT_EQ(CountPlaceholders(statement->sql), statement->params.size()) << statement->sql;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Filters, ValidRunFilterTest,
    ::testing::Values(
        ValidFilterCase{"metrics.auc > 0.9",
                        {"JOIN latest_metrics", ".is_nan = 0 AND", ".value > ?"},
                        {std::string("auc"), 0.9}},
        ValidFilterCase{"metric.auc >= -1", {".value >= ?"}, {-1.0}},
        ValidFilterCase{"metrics.loss < 1.5e-3", {".value < ?"}, {1.5e-3}},
        ValidFilterCase{"metrics.loss != 2", {".is_nan = 1 OR", ".value <> ?"}, {2.0}},
        ValidFilterCase{"params.model = 'xgb'", {"JOIN params", ".value = ?"},
                        {std::string("model"), std::string("xgb")}},
        ValidFilterCase{"param.model = \"xgb\"", {"JOIN params"}, {std::string("xgb")}},
        ValidFilterCase{"parameters.model LIKE 'x%'", {".value LIKE ?"}, {std::string("x%")}},
        ValidFilterCase{"parameter.model ilike 'X%'", {"LOWER("}, {std::string("X%")}},
        ValidFilterCase{"tags.user != 'bob'", {"JOIN tags", ".value <> ?"},
                        {std::string("user"), std::string("bob")}},
        ValidFilterCase{"tag.`user name` = 'bob'", {"JOIN tags"}, {std::string("user name")}},
        ValidFilterCase{"tags.\"user-name\" = 'bob'", {"JOIN tags"}, {std::string("user-name")}},
        ValidFilterCase{"metrics.`f1 score` > 0", {}, {std::string("f1 score")}},
        ValidFilterCase{"tags.mlflow.runName = 'a'", {}, {std::string("mlflow.runName")}},
        ValidFilterCase{"attributes.status = 'FINISHED'", {"r.status = ?"},
                        {std::string("FINISHED")}},
        ValidFilterCase{"attr.run_name LIKE 'a%'", {"r.name LIKE ?"}, {std::string("a%")}},
        ValidFilterCase{"run.user_id = 'u'", {"r.user_id = ?"}, {std::string("u")}},
        ValidFilterCase{"status = 'RUNNING'", {"r.status = ?"}, {std::string("RUNNING")}},
        ValidFilterCase{"`run name` = 'x'", {"r.name = ?"}, {std::string("x")}},
        ValidFilterCase{"attributes.\"Run Name\" = 'x'", {"r.name = ?"}, {std::string("x")}},
        ValidFilterCase{"artifact_uri ILIKE '%s3%'", {"LOWER(r.artifact_uri)"}, {}},
        ValidFilterCase{"attributes.run_id IN ('a', 'b')", {"r.run_uuid IN (?, ?)"},
                        {std::string("a"), std::string("b")}},
        ValidFilterCase{"run_id NOT IN ('a')", {"r.run_uuid NOT IN (?)"}, {std::string("a")}},
        ValidFilterCase{"attributes.start_time > 1000", {"r.start_time > ?"}, {int64_t{1000}}},
        ValidFilterCase{"created <= 5", {"r.start_time <= ?"}, {int64_t{5}}},
        ValidFilterCase{"Created = 1e3", {"r.start_time = ?"}, {int64_t{1000}}},
        ValidFilterCase{"end_time > 1.5", {"r.end_time > ?"}, {int64_t{1}}},
        ValidFilterCase{"end_time <= 1.5", {"r.end_time < ?"}, {int64_t{2}}},
        ValidFilterCase{"end_time = 1.5", {"1 = 0"}, {}},
        ValidFilterCase{"datasets.name = 'train'", {"EXISTS (SELECT 1 FROM inputs"},
                        {std::string("train")}},
        ValidFilterCase{"dataset.digest IN ('a','b')", {"EXISTS"}, {std::string("b")}},
        ValidFilterCase{"datasets.context = 'eval'", {"input_tags"}, {std::string("eval")}},
        ValidFilterCase{"metrics.a > 1 and params.b = 'c' AND tags.d LIKE '%'",
                        {"JOIN latest_metrics", "JOIN params", "JOIN tags"}, {}},
        ValidFilterCase{"  ", {}, {}},
        ValidFilterCase{"", {}, {}}));

struct InvalidFilterCase {
  std::string filter;
  std::string message;
};

void PrintTo(const InvalidFilterCase& c, std::ostream* os) { *os << c.filter; }

class InvalidRunFilterTest : public ::testing::TestWithParam<InvalidFilterCase> {};

TEST_P(InvalidRunFilterTest, IsInvalidArgumentNamingTheProblem) {
  const InvalidFilterCase& c = GetParam();
  Result<SqlStatement> statement = BuildRunSearchSql(RunSpec(c.filter), kSqlite);
  ASSERT_FALSE(statement.ok()) << c.filter << " compiled to " << statement->sql;
  EXPECT_EQ(statement.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(statement.status().message().find(c.message), std::string::npos)
      << c.filter << ": " << statement.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Filters, InvalidRunFilterTest,
    ::testing::Values(
        InvalidFilterCase{"params.x ~ 'a'",
                          "Invalid comparator '~' not one of '{'LIKE', '=', '!=', 'ILIKE'}'"},
        InvalidFilterCase{"metrics.x LIKE 1", "Invalid comparator 'LIKE' not one of"},
        InvalidFilterCase{"tags.x > 'a'", "Invalid comparator '>'"},
        InvalidFilterCase{"params.x IN ('a')", "Invalid comparator 'IN'"},
        InvalidFilterCase{"start_time LIKE 1", "Invalid comparator 'LIKE'"},
        InvalidFilterCase{"attributes.foo = 'x'", "Invalid attribute key 'foo' specified. Valid keys"},
        InvalidFilterCase{"lifecycle_stage = 'active'", "Invalid attribute key 'lifecycle_stage'"},
        InvalidFilterCase{"foo.bar = 'x'", "Invalid entity type 'foo'"},
        InvalidFilterCase{"metrics.x > 'a'", "Expected numeric value type for metric. Found 'a'"},
        InvalidFilterCase{"start_time > 'a'", "Expected numeric value type for numeric attribute"},
        InvalidFilterCase{"params.x = 1", "Expected a quoted string value for parameter"},
        InvalidFilterCase{"params.x = abc", "Parameter value is either not quoted"},
        InvalidFilterCase{"status = 1", "Expected a quoted string value for attributes"},
        InvalidFilterCase{"status IN ('a')", "Only the 'run_id' attribute supports"},
        InvalidFilterCase{"run_id IN 'a'", "needs a list"},
        InvalidFilterCase{"run_id = ('a')", "can only be compared with IN"},
        InvalidFilterCase{"run_id IN ()", "empty list"},
        InvalidFilterCase{"run_id IN ('a', 1)", "expected a quoted string"},
        InvalidFilterCase{"run_id IN ('a'", "expected ',' or ')'"},
        InvalidFilterCase{"datasets.foo = 'a'", "Invalid dataset key 'foo'"},
        InvalidFilterCase{"metrics.a > 1 OR metrics.b > 1", "OR is not supported"},
        InvalidFilterCase{"metrics.a > 1 metrics.b > 1", "expected AND"},
        InvalidFilterCase{"metrics.a > 1 AND", "expected a clause after AND"},
        InvalidFilterCase{"(metrics.a > 1)", "expected an identifier"},
        InvalidFilterCase{"metrics.a >", "expected a value"},
        InvalidFilterCase{"metrics.a", "expected a comparator"},
        InvalidFilterCase{"metrics. > 1", "expected a key after 'metrics.'"},
        InvalidFilterCase{"params.a = 'unterminated", "unterminated quoted text"},
        InvalidFilterCase{"metrics.a > 1.2.3", "malformed number"},
        InvalidFilterCase{"metrics.a > 12abc", "malformed number"},
        InvalidFilterCase{"metrics.a > 1; DROP TABLE runs", "expected AND"},
        InvalidFilterCase{"params.a NOT LIKE 'x'", "expected IN after NOT"},
        InvalidFilterCase{"params.a == 'x'", "Invalid comparator '=='"}));

TEST(RunSearchSqlTest, QuotesInValuesStayInsideTheBoundParameter) {
  Result<SqlStatement> statement =
      BuildRunSearchSql(RunSpec("params.x = 'a'' OR 1=1 --'"), kSqlite);
  ASSERT_TRUE(statement.ok()) << statement.status().ToString();
  EXPECT_TRUE(HasParam(*statement, std::string("a' OR 1=1 --")));
  EXPECT_EQ(statement->sql.find("1=1"), std::string::npos) << statement->sql;
  EXPECT_EQ(statement->sql.find("--"), std::string::npos) << statement->sql;

  statement = BuildRunSearchSql(RunSpec(R"(tags."x"" OR 1=1" = "y\"z")"), kSqlite);
  ASSERT_TRUE(statement.ok()) << statement.status().ToString();
  EXPECT_TRUE(HasParam(*statement, std::string("x\" OR 1=1")));
  EXPECT_TRUE(HasParam(*statement, std::string("y\"z")));
  EXPECT_EQ(statement->sql.find("1=1"), std::string::npos) << statement->sql;
}

TEST(RunSearchSqlTest, KeysWithSqlTextAreBoundNotInterpolated) {
  Result<SqlStatement> statement = BuildRunSearchSql(
      RunSpec("metrics.`a'; DROP TABLE runs; --` > 1", {"params.`x) OR (1=1` DESC"}), kSqlite);
  ASSERT_TRUE(statement.ok()) << statement.status().ToString();
  EXPECT_EQ(statement->sql.find("DROP"), std::string::npos) << statement->sql;
  EXPECT_EQ(statement->sql.find("1=1"), std::string::npos) << statement->sql;
  EXPECT_TRUE(HasParam(*statement, std::string("a'; DROP TABLE runs; --")));
  EXPECT_TRUE(HasParam(*statement, std::string("x) OR (1=1")));
}

TEST(RunSearchSqlTest, SelectsOneExtraRowAndBindsOffsetLast) {
  RunSearchSpec spec = RunSpec("");
  spec.experiment_ids = {3, 4};
  spec.max_results = 10;
  spec.offset = 20;
  Result<SqlStatement> statement = BuildRunSearchSql(spec, kSqlite);
  ASSERT_TRUE(statement.ok());
  EXPECT_NE(statement->sql.find("r.experiment_id IN (?, ?)"), std::string::npos);
  EXPECT_NE(statement->sql.find("r.lifecycle_stage = 'active'"), std::string::npos);
  ASSERT_GE(statement->params.size(), 4u);
  EXPECT_EQ(statement->params[statement->params.size() - 2], store::Value(int64_t{11}));
  EXPECT_EQ(statement->params.back(), store::Value(int64_t{20}));
  EXPECT_NE(statement->sql.find("ORDER BY r.start_time DESC, r.run_uuid ASC LIMIT ? OFFSET ?"),
            std::string::npos)
      << statement->sql;
}

TEST(RunSearchSqlTest, OrderByMetricReusesTheFilterJoin) {
  Result<SqlStatement> statement =
      BuildRunSearchSql(RunSpec("metrics.auc > 0.9", {"metrics.auc DESC"}), kSqlite);
  ASSERT_TRUE(statement.ok());
  EXPECT_EQ(statement->sql.find("LEFT JOIN"), std::string::npos) << statement->sql;
  // The filter guarantees a non-NaN value, so the order follows latest_metrics(key, value).
  EXPECT_NE(statement->sql.find("ORDER BY f0.value DESC, r.start_time DESC"), std::string::npos)
      << statement->sql;
  statement = BuildRunSearchSql(RunSpec("", {"metrics.auc DESC"}), kSqlite);
  ASSERT_TRUE(statement.ok());
  EXPECT_NE(statement->sql.find("LEFT JOIN latest_metrics"), std::string::npos);
}

// Ordered by a metric that a clause filters, SQLite walks that metric's index and is told (CROSS
// JOIN) to test the other clauses before it looks each run up; PostgreSQL plans by itself.
TEST(RunSearchSqlTest, OrderedByAFilteredMetricSqliteTestsTheOtherClausesBeforeTheRun) {
  const RunSearchSpec spec =
      RunSpec("params.model = 'xgb' AND metrics.auc > 0.9 AND tags.team = 'a'", {"metrics.auc DESC"});
  Result<SqlStatement> statement = BuildRunSearchSql(spec, kSqlite);
  ASSERT_TRUE(statement.ok()) << statement.status().ToString();
  const std::string& sql = statement->sql;
  const size_t from = sql.find(" FROM latest_metrics f1 CROSS JOIN params f0 ON f0.run_uuid = "
                               "f1.run_uuid AND f0.key = ? AND ");
  const size_t tags = sql.find(" CROSS JOIN tags f2 ON f2.run_uuid = f1.run_uuid AND f2.key = ?");
  const size_t runs =
      sql.find(" CROSS JOIN runs r ON f1.run_uuid = r.run_uuid AND f1.key = ? AND f1.is_nan = 0");
  EXPECT_NE(from, std::string::npos) << sql;
  EXPECT_LT(from, tags) << sql;
  EXPECT_LT(tags, runs) << sql;
  EXPECT_NE(runs, std::string::npos) << sql;
  EXPECT_NE(sql.find("ORDER BY f1.value DESC, r.start_time DESC"), std::string::npos) << sql;
  // Bound in the order of the text: the params' clause, the tags', the driving metric's, then
  // the experiment, LIMIT and OFFSET.
  const std::vector<store::Value> expected = {
      std::string("model"), std::string("xgb"), std::string("team"), std::string("a"),
      std::string("auc"),   0.9,                int64_t{1},          int64_t{1001},
      int64_t{0}};
  EXPECT_EQ(statement->params, expected);

  for (const RunSearchSpec& undriven :
       {RunSpec("params.model = 'xgb' AND metrics.auc > 0.9", {"start_time DESC"}),
        RunSpec("params.model = 'xgb' AND metrics.auc != 0.9", {"metrics.auc DESC"}),
        RunSpec("params.model = 'xgb'", {"metrics.auc DESC"}),
        RunSpec("metrics.auc > 0.9 AND metrics.f1 > 0.5", {"run_name ASC", "metrics.auc DESC"})}) {
    Result<SqlStatement> plain = BuildRunSearchSql(undriven, kSqlite);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    EXPECT_NE(plain->sql.find(" FROM runs r"), std::string::npos) << plain->sql;
    EXPECT_EQ(plain->sql.find("CROSS JOIN"), std::string::npos) << plain->sql;
  }
  Result<SqlStatement> postgres = BuildRunSearchSql(spec, kPostgres);
  ASSERT_TRUE(postgres.ok());
  EXPECT_NE(postgres->sql.find(" FROM runs r JOIN params f0"), std::string::npos) << postgres->sql;
  EXPECT_EQ(postgres->sql.find("CROSS JOIN"), std::string::npos) << postgres->sql;
}

// In the default order, SQLite's plan follows counts of the rows each clause passes (up to a
// cap): the most selective clause under the cap drives; with none, one experiment's runs are
// walked in order. The counter sees each clause's own test.
TEST(RunSearchSqlTest, DefaultOrderStartsFromTheMostSelectiveClauseOrFromTheRuns) {
  RunSearchSpec spec = RunSpec("metrics.auc > 0.9 AND params.model = 'xgb'");
  spec.max_results = 100;
  spec.offset = 50;
  const int64_t cap = 100 * (50 + 100 + 1);
  std::vector<SqlStatement> counted;
  std::vector<int64_t> counts;
  const RowCounter count = [&](const SqlStatement& statement) -> Result<int64_t> {
    counted.push_back(statement);
    if (counted.size() > counts.size()) {
      ADD_FAILURE() << "counted more clauses than expected: " << statement.sql;
      return int64_t{0};
    }
    return counts[counted.size() - 1];
  };
  auto plan = [&](std::vector<int64_t> given, const RunSearchSpec& searched) {
    counted.clear();
    counts = std::move(given);
    Result<SqlStatement> statement = BuildRunSearchSql(searched, kSqlite, &count);
    EXPECT_TRUE(statement.ok()) << statement.status().ToString();
    return statement.ok() ? statement->sql : std::string();
  };

  std::string sql = plan({12, cap}, spec);
  ASSERT_EQ(counted.size(), 2u);
  EXPECT_EQ(counted[0].sql,
            "SELECT COUNT(*) FROM (SELECT 1 FROM latest_metrics f0 WHERE f0.key = ? AND "
            "f0.is_nan = 0 AND f0.value > ? LIMIT ?) counted");
  EXPECT_EQ(counted[0].params,
            (std::vector<store::Value>{std::string("auc"), 0.9, int64_t{cap}}));
  EXPECT_EQ(counted[1].sql, "SELECT COUNT(*) FROM (SELECT 1 FROM params f1 WHERE f1.key = ? AND "
                            "f1.value = ? LIMIT ?) counted");
  EXPECT_NE(sql.find(" FROM latest_metrics f0 CROSS JOIN params f1 ON f1.run_uuid = f0.run_uuid"),
            std::string::npos)
      << sql;
  EXPECT_NE(sql.find("ORDER BY r.start_time DESC, r.run_uuid ASC"), std::string::npos) << sql;

  sql = plan({cap, 3}, spec);
  EXPECT_NE(sql.find(" FROM params f1 CROSS JOIN latest_metrics f0 ON f0.run_uuid = f1.run_uuid"),
            std::string::npos)
      << sql;
  sql = plan({40, 40}, spec);  // a tie: the first clause
  EXPECT_NE(sql.find(" FROM latest_metrics f0 CROSS JOIN"), std::string::npos) << sql;

  sql = plan({cap, cap}, spec);
  EXPECT_NE(sql.find(" FROM runs r CROSS JOIN latest_metrics f0 ON f0.run_uuid = r.run_uuid AND "
                     "f0.key = ? AND f0.is_nan = 0 AND f0.value > ? CROSS JOIN params f1 ON "
                     "f1.run_uuid = r.run_uuid"),
            std::string::npos)
      << sql;

  // Several experiments' runs are in no one index order: SQLite plans by itself.
  RunSearchSpec two = spec;
  two.experiment_ids = {1, 2};
  sql = plan({cap, cap}, two);
  EXPECT_EQ(sql.find("CROSS JOIN"), std::string::npos) << sql;
  EXPECT_NE(sql.find(" FROM runs r JOIN latest_metrics f0"), std::string::npos) << sql;
  sql = plan({cap, 7}, two);
  EXPECT_NE(sql.find(" FROM params f1 CROSS JOIN latest_metrics f0"), std::string::npos) << sql;

  // The cap: 1,000 to 50,000 rows, and an offset cannot overflow it.
  RunSearchSpec small = RunSpec("params.model = 'xgb'");
  small.max_results = 1;
  plan({0}, small);
  ASSERT_EQ(counted.size(), 1u);
  EXPECT_EQ(counted[0].params.back(), store::Value(int64_t{1000}));
  small.offset = std::numeric_limits<int64_t>::max() / 2;
  plan({0}, small);
  ASSERT_EQ(counted.size(), 1u);
  EXPECT_EQ(counted[0].params.back(), store::Value(int64_t{50000}));

  // A clause that passes no row ends the counting; at most 8 clauses are counted, and when
  // those leave clauses uncounted the runs are not walked.
  sql = plan({0, cap}, spec);
  EXPECT_EQ(counted.size(), 1u);
  EXPECT_NE(sql.find(" FROM latest_metrics f0 CROSS JOIN"), std::string::npos) << sql;
  RunSearchSpec many = RunSpec("");
  for (int i = 0; i < 10; ++i) {
    many.filter += std::string(i == 0 ? "" : " AND ") + "params.p" + std::to_string(i) + " = 'v'";
  }
  const int64_t lots = std::numeric_limits<int64_t>::max();  // above any cap
  sql = plan(std::vector<int64_t>(10, lots), many);
  EXPECT_EQ(counted.size(), 8u);
  EXPECT_EQ(sql.find("CROSS JOIN"), std::string::npos) << sql;
  sql = plan({lots, lots, lots, lots, lots, lots, lots, 5, 0, 0}, many);
  EXPECT_EQ(counted.size(), 8u);
  EXPECT_NE(sql.find(" FROM params f7 CROSS JOIN"), std::string::npos) << sql;

  // Nothing is counted for an explicit order, a filter without such clauses, or PostgreSQL.
  for (const RunSearchSpec& uncounted :
       {RunSpec("metrics.auc > 0.9 AND params.model = 'xgb'", {"start_time DESC"}),
        RunSpec("metrics.auc > 0.9", {"metrics.auc DESC"}), RunSpec("attributes.status = 'x'"),
        RunSpec("")}) {
    counted.clear();
    counts.clear();
    Result<SqlStatement> statement = BuildRunSearchSql(uncounted, kSqlite, &count);
    ASSERT_TRUE(statement.ok()) << statement.status().ToString();
    EXPECT_TRUE(counted.empty()) << uncounted.filter;
  }
  counts.clear();
  counted.clear();
  ASSERT_TRUE(BuildRunSearchSql(spec, kPostgres, &count).ok());
  EXPECT_TRUE(counted.empty());

  // A failed count fails the search.
  const RowCounter failing = [](const SqlStatement&) -> Result<int64_t> {
    return Status(StatusCode::kIoError, "disk gone");
  };
  Result<SqlStatement> failed = BuildRunSearchSql(spec, kSqlite, &failing);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().ToString().find("disk gone"), std::string::npos);
}

TEST(RunSearchSqlTest, ManyClausesFallBackToExistsSubqueries) {
  std::string filter;
  for (int i = 0; i < 60; ++i) {
    if (i > 0) filter += " AND ";
    filter += "params.p" + std::to_string(i) + " = 'v'";
  }
  Result<SqlStatement> statement = BuildRunSearchSql(RunSpec(filter), kSqlite);
  ASSERT_TRUE(statement.ok()) << statement.status().ToString();
  EXPECT_NE(statement->sql.find("EXISTS (SELECT 1 FROM params"), std::string::npos);
  EXPECT_EQ(CountPlaceholders(statement->sql), statement->params.size());
}

TEST(RunSearchSqlTest, RejectsTooManyClauses) {
  std::string filter = "metrics.a > 1";
  for (size_t i = 0; i < filter::kMaxClauses; ++i) filter += " AND metrics.a > 1";
  Result<SqlStatement> statement = BuildRunSearchSql(RunSpec(filter), kSqlite);
  ASSERT_FALSE(statement.ok());
  EXPECT_NE(statement.status().message().find("at most"), std::string::npos);
}

struct OrderByCase {
  std::string order_by;
  bool ok;
  std::string expected;  // SQL fragment if ok, message fragment otherwise
};

void PrintTo(const OrderByCase& c, std::ostream* os) { *os << c.order_by; }

class RunOrderByTest : public ::testing::TestWithParam<OrderByCase> {};

TEST_P(RunOrderByTest, ParsesOrRejects) {
  const OrderByCase& c = GetParam();
  Result<SqlStatement> statement = BuildRunSearchSql(RunSpec("", {c.order_by}), kSqlite);
  if (c.ok) {
    ASSERT_TRUE(statement.ok()) << c.order_by << ": " << statement.status().ToString();
    EXPECT_NE(statement->sql.find(c.expected), std::string::npos) << statement->sql;
  } else {
    ASSERT_FALSE(statement.ok()) << c.order_by;
    EXPECT_EQ(statement.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(statement.status().message().find(c.expected), std::string::npos)
        << statement.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(
    OrderBy, RunOrderByTest,
    ::testing::Values(OrderByCase{"metrics.auc DESC", true, ".value DESC"},
                      OrderByCase{"metrics.auc", true, ".value ASC"},
                      OrderByCase{"metrics.`f1 score` asc", true, ".value ASC"},
                      OrderByCase{"params.model desc", true, "LEFT JOIN params"},
                      OrderByCase{"tags.\"a b\"", true, "LEFT JOIN tags"},
                      OrderByCase{"start_time ASC", true, "r.start_time ASC"},
                      OrderByCase{"attributes.end_time DESC", true,
                                  "CASE WHEN r.end_time IS NULL THEN 1 ELSE 0 END, "
                                  "r.end_time DESC"},
                      OrderByCase{"run_name", true, "r.name ASC"},
                      OrderByCase{"created DESC", true, "r.start_time DESC"},
                      OrderByCase{"experiment_id", true, "r.experiment_id ASC"},
                      OrderByCase{"metrics.auc SIDEWAYS", false, "expected ASC or DESC"},
                      OrderByCase{"metrics.auc DESC DESC", false, "unexpected text"},
                      OrderByCase{"", false, "Invalid order_by clause"},
                      OrderByCase{"foo", false, "Invalid attribute key 'foo'"},
                      OrderByCase{"datasets.name", false, "Invalid order_by entity type"}));

TEST(ExperimentSearchSqlTest, FiltersAndDefaultOrder) {
  ExperimentSearchSpec spec;
  spec.filter = "name LIKE 'exp%' AND creation_time > 5 AND tags.team = 'ml'";
  Result<SqlStatement> statement = BuildExperimentSearchSql(spec, kPostgres);
  ASSERT_TRUE(statement.ok()) << statement.status().ToString();
  EXPECT_NE(statement->sql.find("JOIN experiment_tags"), std::string::npos);
  EXPECT_NE(statement->sql.find("e.name LIKE ?"), std::string::npos);
  EXPECT_NE(statement->sql.find("e.lifecycle_stage = 'active'"), std::string::npos);
  EXPECT_NE(statement->sql.find("e.creation_time DESC, e.experiment_id ASC"), std::string::npos)
      << statement->sql;
  EXPECT_EQ(CountPlaceholders(statement->sql), statement->params.size());
}

TEST(ExperimentSearchSqlTest, RejectsRunOnlyIdentifiers) {
  for (const char* filter : {"metrics.a > 1", "params.a = 'b'", "attributes.name = 'a'",
                             "status = 'x'", "name > 1", "name IN ('a')"}) {
    ExperimentSearchSpec spec;
    spec.filter = filter;
    Result<SqlStatement> statement = BuildExperimentSearchSql(spec, kSqlite);
    EXPECT_FALSE(statement.ok()) << filter;
  }
  ExperimentSearchSpec spec;
  spec.order_by = {"tags.a"};
  EXPECT_FALSE(BuildExperimentSearchSql(spec, kSqlite).ok());
}

TEST(ExperimentSearchSqlTest, TieBreakIsExperimentIdDescending) {
  ExperimentSearchSpec spec;
  spec.order_by = {"name"};
  Result<SqlStatement> statement = BuildExperimentSearchSql(spec, kSqlite);
  ASSERT_TRUE(statement.ok());
  EXPECT_NE(statement->sql.find("ORDER BY e.name ASC, e.experiment_id DESC"), std::string::npos)
      << statement->sql;
}

TEST(RegisteredModelSearchSqlTest, FiltersOrdersAndRejects) {
  RegisteredModelSearchSpec spec;
  spec.filter = "name ILIKE '%fraud%' AND tags.owner = 'x'";
  spec.order_by = {"last_updated_timestamp DESC"};
  Result<SqlStatement> statement = BuildRegisteredModelSearchSql(spec, kPostgres);
  ASSERT_TRUE(statement.ok()) << statement.status().ToString();
  EXPECT_NE(statement->sql.find("m.name ILIKE ?"), std::string::npos) << statement->sql;
  EXPECT_NE(statement->sql.find("m.last_updated_time DESC, m.name ASC"), std::string::npos)
      << statement->sql;

  spec = {};
  Result<SqlStatement> defaults = BuildRegisteredModelSearchSql(spec, kSqlite);
  ASSERT_TRUE(defaults.ok());
  EXPECT_NE(defaults->sql.find("ORDER BY m.name ASC LIMIT"), std::string::npos) << defaults->sql;

  for (const char* filter : {"run_id = 'a'", "name IN ('a')", "tags.a > 'b'", "version_number = 1",
                             "name = 5"}) {
    spec.filter = filter;
    EXPECT_FALSE(BuildRegisteredModelSearchSql(spec, kSqlite).ok()) << filter;
  }
  spec = {};
  spec.order_by = {"version_number"};
  Result<SqlStatement> bad = BuildRegisteredModelSearchSql(spec, kSqlite);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("Invalid attribute key 'version_number'"),
            std::string::npos);
}

TEST(ModelVersionSearchSqlTest, FiltersOrdersAndRejects) {
  ModelVersionSearchSpec spec;
  spec.filter =
      "name = 'm' AND run_id IN ('r1', 'r2') AND version_number >= 2 AND source_path LIKE 's3%' "
      "AND tags.stage = 'x'";
  Result<SqlStatement> statement = BuildModelVersionSearchSql(spec, kSqlite);
  ASSERT_TRUE(statement.ok()) << statement.status().ToString();
  EXPECT_NE(statement->sql.find("SELECT v.name, v.version FROM model_versions v"),
            std::string::npos);
  EXPECT_NE(statement->sql.find("v.run_id IN (?, ?)"), std::string::npos);
  EXPECT_NE(statement->sql.find("v.version >= ?"), std::string::npos);
  EXPECT_NE(statement->sql.find("v.source LIKE ?"), std::string::npos);
  EXPECT_NE(statement->sql.find("JOIN model_version_tags"), std::string::npos);
  EXPECT_NE(statement->sql.find("v.last_updated_time DESC, v.name ASC, v.version DESC"),
            std::string::npos)
      << statement->sql;
  EXPECT_EQ(CountPlaceholders(statement->sql), statement->params.size());

  for (const char* filter : {"run_id NOT IN ('a')", "name IN ('a')", "version_number = 'a'",
                             "version_number LIKE 1", "metrics.a > 1", "current_stage = 'x'"}) {
    spec.filter = filter;
    EXPECT_FALSE(BuildModelVersionSearchSql(spec, kSqlite).ok()) << filter;
  }
}

TEST(PageTokenTest, EncodesExactlyLikeMlflow) {
  EXPECT_EQ(EncodePageToken(2), "eyJvZmZzZXQiOiAyfQ==");
  Result<int64_t> offset = DecodePageToken("eyJvZmZzZXQiOiAyfQ==");
  ASSERT_TRUE(offset.ok());
  EXPECT_EQ(*offset, 2);
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{999}, int64_t{123456789012}}) {
    Result<int64_t> round = DecodePageToken(EncodePageToken(n));
    ASSERT_TRUE(round.ok()) << n;
    EXPECT_EQ(*round, n);
  }
  Result<int64_t> empty = DecodePageToken("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, 0);
}

TEST(PageTokenTest, RejectsGarbage) {
  Result<int64_t> bad = DecodePageToken("not base64!");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("could not base64-decode"), std::string::npos);
  for (std::string json : {"{\"offset\": -5}", "{\"offset\": \"x\"}", "{\"other\": 1}", "[1]",
                           "hello", "{\"offset\": 1.5}"}) {
    Result<int64_t> token = DecodePageToken(Base64Encode(json));
    ASSERT_FALSE(token.ok()) << json;
    EXPECT_EQ(token.status().code(), StatusCode::kInvalidArgument) << json;
  }
  Result<int64_t> as_string = DecodePageToken(Base64Encode("{\"offset\": \"7\"}"));
  ASSERT_TRUE(as_string.ok());
  EXPECT_EQ(*as_string, 7);
}

TEST(ViewTypeTest, ParsesNamesAndNumbers) {
  EXPECT_EQ(*ParseViewType(""), ViewType::kActiveOnly);
  EXPECT_EQ(*ParseViewType("ACTIVE_ONLY"), ViewType::kActiveOnly);
  EXPECT_EQ(*ParseViewType("DELETED_ONLY"), ViewType::kDeletedOnly);
  EXPECT_EQ(*ParseViewType("ALL"), ViewType::kAll);
  EXPECT_EQ(*ParseViewType("1"), ViewType::kActiveOnly);
  EXPECT_EQ(*ParseViewType("2"), ViewType::kDeletedOnly);
  EXPECT_EQ(*ParseViewType("3"), ViewType::kAll);
  Result<ViewType> bad = ParseViewType("SOME");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("SOME"), std::string::npos);
}

TEST(SearchFilterParserTest, SplitsIdentifiersAtTheFirstDotAndUnescapesQuotes) {
  Result<std::vector<filter::Clause>> clauses =
      filter::ParseFilter("tags.mlflow.user = 'it''s' AND `metrics`.\"a.b\" <= -2.5E+2");
  ASSERT_TRUE(clauses.ok()) << clauses.status().ToString();
  ASSERT_EQ(clauses->size(), 2u);
  EXPECT_EQ(*(*clauses)[0].identifier.entity, "tags");
  EXPECT_EQ((*clauses)[0].identifier.key, "mlflow.user");
  EXPECT_EQ((*clauses)[0].value.string, "it's");
  EXPECT_EQ(*(*clauses)[1].identifier.entity, "metrics");
  EXPECT_EQ((*clauses)[1].identifier.key, "a.b");
  EXPECT_EQ((*clauses)[1].comparator, "<=");
  EXPECT_DOUBLE_EQ((*clauses)[1].value.number, -250.0);
  EXPECT_FALSE((*clauses)[1].value.integer.has_value());
}

// ---------------------------------------------------------------------------------------------
// Execution against real databases.

class SearchExecutionTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db()->Write([&](store::Transaction& tx) -> Status {
      KILN_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO experiments (experiment_id, name, lifecycle_stage, creation_time, "
                  "last_update_time) VALUES (?, ?, ?, ?, ?)",
                  {int64_t{1}, std::string("first"), std::string("active"), int64_t{100},
                   int64_t{100}})
              .status());
      KILN_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO experiments (experiment_id, name, lifecycle_stage, creation_time, "
                  "last_update_time) VALUES (?, ?, ?, ?, ?)",
                  {int64_t{2}, std::string("Second"), std::string("active"), int64_t{200},
                   int64_t{200}})
              .status());
      KILN_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO experiments (experiment_id, name, lifecycle_stage, creation_time, "
                  "last_update_time) VALUES (?, ?, ?, ?, ?)",
                  {int64_t{3}, std::string("gone"), std::string("deleted"), int64_t{300},
                   int64_t{300}})
              .status());
      KILN_RETURN_IF_ERROR(tx.Exec("INSERT INTO experiment_tags VALUES (2, 'team', 'ml')").status());
      // run, name, experiment, user, status, start, end, lifecycle
      struct Run {
        const char* id;
        const char* name;
        int64_t experiment;
        const char* user;
        const char* status;
        int64_t start;
        const char* lifecycle;
      };
      const Run runs[] = {
          {"a1", "Alpha", 1, "ann", "FINISHED", 500, "active"},
          {"b2", "beta", 1, "bob", "RUNNING", 400, "active"},
          {"c3", "gamma", 1, "ann", "FAILED", 400, "active"},
          {"d4", "delta", 1, "bob", "FINISHED", 300, "active"},
          {"e5", "eps", 1, "ann", "FINISHED", 200, "deleted"},
          {"f6", "phi", 2, "cy", "FINISHED", 600, "active"},
      };
      for (const Run& r : runs) {
        KILN_RETURN_IF_ERROR(
            tx.Exec("INSERT INTO runs (run_uuid, name, experiment_id, user_id, status, "
                    "start_time, end_time, lifecycle_stage, artifact_uri) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    {std::string(r.id), std::string(r.name), r.experiment, std::string(r.user),
                     std::string(r.status), r.start,
                     r.start == 400 ? store::Null() : store::Value(r.start + 50),
                     std::string(r.lifecycle), std::string("s3://bucket/") + r.id})
                .status());
      }
      // latest_metrics: auc for a1 0.95, b2 0.5, c3 NaN, d4 0.99, e5 0.97, f6 0.91; none else.
      struct Metric {
        const char* run;
        double value;
        bool nan;
      };
      const Metric metrics[] = {{"a1", 0.95, false}, {"b2", 0.5, false}, {"c3", 0, true},
                                {"d4", 0.99, false}, {"e5", 0.97, false}, {"f6", 0.91, false}};
      for (const Metric& m : metrics) {
        KILN_RETURN_IF_ERROR(
            tx.Exec("INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step) "
                    "VALUES (?, 'auc', ?, ?, 1, 0)",
                    {std::string(m.run), m.value, int64_t{m.nan ? 1 : 0}})
                .status());
      }
      const char* params[][3] = {{"a1", "model", "xgb"},  {"b2", "model", "XGB"},
                                 {"c3", "model", "lgbm"}, {"d4", "model", "xgb"},
                                 {"e5", "model", "xgb"},  {"a1", "lr", "0.1"}};
      for (const auto& p : params) {
        KILN_RETURN_IF_ERROR(tx.Exec("INSERT INTO params VALUES (?, ?, ?)",
                                     {std::string(p[0]), std::string(p[1]), std::string(p[2])})
                                 .status());
      }
      KILN_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO tags VALUES ('a1', 'team', 'Vision'), ('b2', 'team', 'vision'), "
                  "('c3', 'note', 'it''s'), ('d4', 'user name', 'x')")
              .status());
      KILN_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO datasets VALUES ('ds1', 1, 'train', 'abc', 'local', 's', '', '')")
              .status());
      KILN_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO inputs VALUES ('in1', 'DATASET', 'ds1', 'RUN', 'b2')").status());
      KILN_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO input_tags VALUES ('in1', 'mlflow.data.context', 'training')")
              .status());
      return Status::Ok();
    }).ok());
  }

  store::Database* db() { return database_.db(); }

  std::vector<std::string> Keys(const Result<SqlStatement>& statement, size_t columns = 1) {
    EXPECT_TRUE(statement.ok()) << statement.status().ToString();
    std::vector<std::string> keys;
    if (!statement.ok()) return keys;
    Status status = db()->Read([&](store::Transaction& tx) -> Status {
      KILN_ASSIGN_OR_RETURN(store::Rows rows, tx.Query(statement->sql, statement->params));
      for (size_t i = 0; i < rows.size(); ++i) {
        std::string key;
        for (size_t c = 0; c < columns; ++c) {
          if (c > 0) key += "/";
          key += rows.IsNull(i, c) ? "NULL"
                 : std::holds_alternative<int64_t>(rows.at(i, c))
                     ? std::to_string(rows.Int(i, c))
                     : rows.Text(i, c);
        }
        keys.push_back(key);
      }
      return Status::Ok();
    });
    EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << statement->sql;
    return keys;
  }

  std::vector<std::string> Runs(const std::string& filter, std::vector<std::string> order_by = {},
                                ViewType view = ViewType::kActiveOnly, int64_t max = 1000,
                                int64_t offset = 0) {
    RunSearchSpec spec = RunSpec(filter, std::move(order_by));
    spec.view_type = view;
    spec.max_results = max;
    spec.offset = offset;
    const std::vector<std::string> runs = Keys(BuildRunSearchSql(spec, db()->dialect()));
    // Every plan the data could choose gives the same page: counted from this database, and
    // forced to start from each clause (a count of 0 for it, the cap for the others) or from
    // the runs (every count at the cap).
    const RowCounter counted = [&](const SqlStatement& statement) -> Result<int64_t> {
      int64_t rows = 0;
      KILN_RETURN_IF_ERROR(db()->Read([&](store::Transaction& tx) -> Status {
        KILN_ASSIGN_OR_RETURN(store::Rows result, tx.Query(statement.sql, statement.params));
        rows = result.Int(0, 0);
        return Status::Ok();
      }));
      return rows;
    };
    EXPECT_EQ(Keys(BuildRunSearchSql(spec, db()->dialect(), &counted)), runs) << filter;
    for (size_t driver = 0; driver <= 4; ++driver) {
      size_t calls = 0;
      const RowCounter forced = [&](const SqlStatement&) -> Result<int64_t> {
        return calls++ == driver ? int64_t{0} : std::numeric_limits<int64_t>::max();
      };
      EXPECT_EQ(Keys(BuildRunSearchSql(spec, db()->dialect(), &forced)), runs)
          << filter << ", starting from clause " << driver;
    }
    return runs;
  }

  kiln::testing::TestDatabase database_{GetParam()};
};

using Ids = std::vector<std::string>;

TEST_P(SearchExecutionTest, DefaultOrderIsStartTimeDescThenRunId) {
  EXPECT_EQ(Runs(""), (Ids{"a1", "b2", "c3", "d4"}));
}

TEST_P(SearchExecutionTest, MetricFilterSkipsNaNAndMissing) {
  EXPECT_EQ(Runs("metrics.auc > 0.9"), (Ids{"a1", "d4"}));
  EXPECT_EQ(Runs("metrics.auc <= 0.5"), (Ids{"b2"}));
  EXPECT_EQ(Runs("metrics.auc != 0.5"), (Ids{"a1", "c3", "d4"}));
  EXPECT_EQ(Runs("metrics.missing > -1e308"), Ids{});
}

TEST_P(SearchExecutionTest, OrderByMetricPutsNaNThenMissingLastInBothDirections) {
  // f6 is in another experiment; e5 is deleted.
  EXPECT_EQ(Runs("", {"metrics.auc DESC"}), (Ids{"d4", "a1", "b2", "c3"}));
  EXPECT_EQ(Runs("", {"metrics.auc ASC"}), (Ids{"b2", "a1", "d4", "c3"}));
  EXPECT_EQ(Runs("", {"metrics.nothing DESC"}), (Ids{"a1", "b2", "c3", "d4"}));
}

TEST_P(SearchExecutionTest, OrderByParamKeepsRunsWithoutItLast) {
  EXPECT_EQ(Runs("", {"params.lr DESC"}), (Ids{"a1", "b2", "c3", "d4"}));
  EXPECT_EQ(Runs("", {"params.model ASC"}), (Ids{"b2", "c3", "a1", "d4"}));
  EXPECT_EQ(Runs("", {"params.model DESC"}), (Ids{"a1", "d4", "c3", "b2"}));
}

TEST_P(SearchExecutionTest, OrderByAttributeWithTieBreak) {
  // b2 and c3 share start_time 400 and have no end_time; ties fall to start_time DESC, run_id.
  EXPECT_EQ(Runs("", {"end_time ASC"}), (Ids{"d4", "a1", "b2", "c3"}));
  EXPECT_EQ(Runs("", {"end_time DESC"}), (Ids{"a1", "d4", "b2", "c3"}));
  EXPECT_EQ(Runs("", {"user_id DESC", "start_time ASC"}), (Ids{"d4", "b2", "c3", "a1"}));
}

TEST_P(SearchExecutionTest, CombinedFilterAndOrder) {
  EXPECT_EQ(Runs("metrics.auc > 0.9 AND params.model = 'xgb'", {"metrics.auc DESC"}),
            (Ids{"d4", "a1"}));
}

// The same results whichever order the clauses are tested in (SQLite tests them before the run
// when ordered by a filtered metric).
TEST_P(SearchExecutionTest, OrderedByAFilteredMetricWithOtherClauses) {
  EXPECT_EQ(Runs("metrics.auc > 0.9 AND params.model = 'xgb' AND tags.team = 'Vision'",
                 {"metrics.auc DESC"}),
            (Ids{"a1"}));
  EXPECT_EQ(Runs("params.model ILIKE 'xgb' AND metrics.auc > 0.4", {"metrics.auc ASC"}),
            (Ids{"b2", "a1", "d4"}));
  EXPECT_EQ(Runs("metrics.auc > 0.4 AND attributes.user_id = 'bob'", {"metrics.auc DESC"}),
            (Ids{"d4", "b2"}));
  EXPECT_EQ(Runs("metrics.auc > 0.4 AND params.model ILIKE 'xgb'", {"metrics.auc ASC"},
                 ViewType::kActiveOnly, 1, 1),
            (Ids{"a1", "d4"}));
  EXPECT_EQ(Runs("metrics.auc > 0.9 AND params.model = 'xgb'", {"metrics.auc DESC"},
                 ViewType::kAll),
            (Ids{"d4", "e5", "a1"}));
  EXPECT_EQ(Runs("metrics.auc > 0.9 AND datasets.name = 'train'", {"metrics.auc DESC"}), Ids{});
  EXPECT_EQ(Runs("metrics.auc >= 0.5 AND datasets.name = 'train'", {"metrics.auc DESC"}),
            (Ids{"b2"}));
  EXPECT_EQ(Runs("metrics.auc > 0.9 AND params.model = 'xgb'",
                 {"metrics.auc DESC", "params.lr ASC"}),
            (Ids{"d4", "a1"}));
  RunSearchSpec spec = RunSpec("metrics.auc > 0.9 AND tags.team ILIKE 'vision'", {"metrics.auc ASC"});
  spec.experiment_ids = {1, 2};
  EXPECT_EQ(Keys(BuildRunSearchSql(spec, db()->dialect())), (Ids{"a1"}));
  spec.filter = "metrics.auc > 0.9";
  EXPECT_EQ(Keys(BuildRunSearchSql(spec, db()->dialect())), (Ids{"f6", "a1", "d4"}));
}

TEST_P(SearchExecutionTest, ClausesBeyondTheJoinLimitStillFilter) {
  // 40 clauses: the first 30 become joins, the rest EXISTS subqueries.
  std::string filter = "params.model = 'xgb'";
  for (int i = 0; i < 39; ++i) filter += " AND metrics.auc > " + std::to_string(0.1 + i * 0.02);
  EXPECT_EQ(Runs(filter, {"metrics.auc ASC"}), (Ids{"a1", "d4"}));
}

TEST_P(SearchExecutionTest, LikeIsCaseSensitiveAndILikeIsNot) {
  EXPECT_EQ(Runs("params.model LIKE 'xg%'"), (Ids{"a1", "d4"}));
  EXPECT_EQ(Runs("params.model ILIKE 'xg%'"), (Ids{"a1", "b2", "d4"}));
  EXPECT_EQ(Runs("tags.team LIKE 'v%'"), (Ids{"b2"}));
  EXPECT_EQ(Runs("tags.team ILIKE 'V_SION'"), (Ids{"a1", "b2"}));
  EXPECT_EQ(Runs("run_name LIKE 'a%'"), Ids{});
  EXPECT_EQ(Runs("attributes.run_name ILIKE 'a%'"), (Ids{"a1"}));
  EXPECT_EQ(Runs("params.model = 'XGB'"), (Ids{"b2"}));
}

TEST_P(SearchExecutionTest, NotEqualNeedsTheKey) {
  EXPECT_EQ(Runs("params.model != 'xgb'"), (Ids{"b2", "c3"}));
  EXPECT_EQ(Runs("params.lr != '0.2'"), (Ids{"a1"}));
}

TEST_P(SearchExecutionTest, InListsAndAttributes) {
  EXPECT_EQ(Runs("run_id IN ('d4', 'a1', 'zz')"), (Ids{"a1", "d4"}));
  EXPECT_EQ(Runs("attributes.run_id NOT IN ('a1', 'b2')"), (Ids{"c3", "d4"}));
  EXPECT_EQ(Runs("status = 'FINISHED' AND user_id = 'bob'"), (Ids{"d4"}));
  EXPECT_EQ(Runs("start_time >= 400"), (Ids{"a1", "b2", "c3"}));
  EXPECT_EQ(Runs("created < 400.5"), (Ids{"b2", "c3", "d4"}));
  EXPECT_EQ(Runs("end_time > 0"), (Ids{"a1", "d4"}));
  EXPECT_EQ(Runs("artifact_uri LIKE '%/c3'"), (Ids{"c3"}));
}

TEST_P(SearchExecutionTest, QuotedKeysAndValues) {
  EXPECT_EQ(Runs("tags.`user name` = 'x'"), (Ids{"d4"}));
  EXPECT_EQ(Runs("tags.\"user name\" = \"x\""), (Ids{"d4"}));
  EXPECT_EQ(Runs("tags.note = 'it''s'"), (Ids{"c3"}));
}

TEST_P(SearchExecutionTest, InjectionAttemptsAreJustValues) {
  EXPECT_EQ(Runs("params.model = 'a'' OR 1=1 --'"), Ids{});
  EXPECT_EQ(Runs("tags.`x' OR '1'='1` = 'y'"), Ids{});
  EXPECT_EQ(Runs(""), (Ids{"a1", "b2", "c3", "d4"}));  // still all there
}

TEST_P(SearchExecutionTest, ViewTypes) {
  EXPECT_EQ(Runs("", {}, ViewType::kDeletedOnly), (Ids{"e5"}));
  EXPECT_EQ(Runs("", {}, ViewType::kAll), (Ids{"a1", "b2", "c3", "d4", "e5"}));
}

TEST_P(SearchExecutionTest, PagingSelectsOneExtraRow) {
  EXPECT_EQ(Runs("", {}, ViewType::kActiveOnly, 2, 0), (Ids{"a1", "b2", "c3"}));
  EXPECT_EQ(Runs("", {}, ViewType::kActiveOnly, 2, 2), (Ids{"c3", "d4"}));
  EXPECT_EQ(Runs("", {}, ViewType::kActiveOnly, 2, 4), Ids{});
}

TEST_P(SearchExecutionTest, SeveralExperiments) {
  RunSearchSpec spec = RunSpec("", {"metrics.auc DESC"});
  spec.experiment_ids = {1, 2};
  EXPECT_EQ(Keys(BuildRunSearchSql(spec, db()->dialect())), (Ids{"d4", "a1", "f6", "b2", "c3"}));
  spec.experiment_ids = {};
  EXPECT_EQ(Keys(BuildRunSearchSql(spec, db()->dialect())), Ids{});
}

TEST_P(SearchExecutionTest, Datasets) {
  EXPECT_EQ(Runs("datasets.name = 'train'"), (Ids{"b2"}));
  EXPECT_EQ(Runs("datasets.digest IN ('abc')"), (Ids{"b2"}));
  EXPECT_EQ(Runs("datasets.context = 'training'"), (Ids{"b2"}));
  EXPECT_EQ(Runs("datasets.name = 'eval'"), Ids{});
}

TEST_P(SearchExecutionTest, Experiments) {
  ExperimentSearchSpec spec;
  EXPECT_EQ(Keys(BuildExperimentSearchSql(spec, db()->dialect())), (Ids{"2", "1"}));
  spec.view_type = ViewType::kAll;
  spec.order_by = {"name ASC"};
  // Byte order: "Second" < "first" < "gone" (the test PostgreSQL uses the C.UTF-8 collation).
  EXPECT_EQ(Keys(BuildExperimentSearchSql(spec, db()->dialect())), (Ids{"2", "1", "3"}));
  spec.filter = "name ILIKE 's%'";
  EXPECT_EQ(Keys(BuildExperimentSearchSql(spec, db()->dialect())), (Ids{"2"}));
  spec.filter = "tags.team = 'ml' AND creation_time > 150";
  EXPECT_EQ(Keys(BuildExperimentSearchSql(spec, db()->dialect())), (Ids{"2"}));
  spec = {};
  spec.view_type = ViewType::kDeletedOnly;
  EXPECT_EQ(Keys(BuildExperimentSearchSql(spec, db()->dialect())), (Ids{"3"}));
}

TEST_P(SearchExecutionTest, RegisteredModelsAndVersions) {
  ASSERT_TRUE(db()->Write([&](store::Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO registered_models (name, creation_time, last_updated_time) VALUES "
                "('fraud', 1, 30), ('Churn', 2, 20), ('fraud-v2', 3, 10)")
            .status());
    KILN_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO registered_model_tags VALUES ('Churn', 'owner', 'ann')").status());
    KILN_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO model_versions (name, version, creation_time, last_updated_time, "
                "source, run_id, current_stage) VALUES "
                "('fraud', 1, 1, 5, 's3://a/1', 'a1', 'None'), "
                "('fraud', 2, 2, 5, 's3://a/2', 'b2', 'Production'), "
                "('fraud', 3, 3, 7, 's3://a/3', 'c3', 'Deleted_Internal'), "
                "('Churn', 1, 4, 6, 'gs://b/1', 'a1', 'None')")
            .status());
    KILN_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO model_version_tags VALUES ('fraud', 2, 'validated', 'yes')").status());
    return Status::Ok();
  }).ok());

  RegisteredModelSearchSpec models;
  EXPECT_EQ(Keys(BuildRegisteredModelSearchSql(models, db()->dialect())),
            (Ids{"Churn", "fraud", "fraud-v2"}));
  models.filter = "name LIKE 'fraud%'";
  models.order_by = {"last_updated_timestamp ASC"};
  EXPECT_EQ(Keys(BuildRegisteredModelSearchSql(models, db()->dialect())),
            (Ids{"fraud-v2", "fraud"}));
  models.filter = "name ILIKE 'CHURN'";
  EXPECT_EQ(Keys(BuildRegisteredModelSearchSql(models, db()->dialect())), (Ids{"Churn"}));
  models.filter = "tags.owner = 'ann'";
  EXPECT_EQ(Keys(BuildRegisteredModelSearchSql(models, db()->dialect())), (Ids{"Churn"}));
  models = {};
  models.max_results = 1;
  models.offset = 1;
  EXPECT_EQ(Keys(BuildRegisteredModelSearchSql(models, db()->dialect())),
            (Ids{"fraud", "fraud-v2"}));

  ModelVersionSearchSpec versions;
  // Default: last_updated DESC, name ASC, version DESC; the Deleted_Internal version is hidden.
  EXPECT_EQ(Keys(BuildModelVersionSearchSql(versions, db()->dialect()), 2),
            (Ids{"Churn/1", "fraud/2", "fraud/1"}));
  versions.filter = "run_id IN ('a1', 'c3')";
  versions.order_by = {"version_number ASC"};
  EXPECT_EQ(Keys(BuildModelVersionSearchSql(versions, db()->dialect()), 2),
            (Ids{"Churn/1", "fraud/1"}));
  versions.filter = "name = 'fraud' AND version_number > 1";
  versions.order_by = {};
  EXPECT_EQ(Keys(BuildModelVersionSearchSql(versions, db()->dialect()), 2), (Ids{"fraud/2"}));
  versions.filter = "source_path LIKE 'gs://%'";
  EXPECT_EQ(Keys(BuildModelVersionSearchSql(versions, db()->dialect()), 2), (Ids{"Churn/1"}));
  versions.filter = "tags.validated = 'yes'";
  EXPECT_EQ(Keys(BuildModelVersionSearchSql(versions, db()->dialect()), 2), (Ids{"fraud/2"}));
}

INSTANTIATE_TEST_SUITE_P(Backends, SearchExecutionTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

// --- SearchRunPage: the page with its runs loaded whole --------------------------------------------

// Every field of two runs, NaN equal to NaN; "" when equal, else what differs.
std::string RunDifference(const Run& a, const Run& b) {
  const RunInfo& x = a.info;
  const RunInfo& y = b.info;
  if (std::tie(x.run_id, x.run_name, x.experiment_id, x.user_id, x.status, x.start_time,
               x.end_time, x.artifact_uri, x.lifecycle_stage) !=
      std::tie(y.run_id, y.run_name, y.experiment_id, y.user_id, y.status, y.start_time,
               y.end_time, y.artifact_uri, y.lifecycle_stage)) {
    return "info of " + x.run_id + " / " + y.run_id;
  }
  auto tags_equal = [](const std::vector<Tag>& p, const std::vector<Tag>& q) {
    return std::equal(p.begin(), p.end(), q.begin(), q.end(), [](const Tag& l, const Tag& r) {
      return l.key == r.key && l.value == r.value;
    });
  };
  if (!tags_equal(a.params, b.params)) return "params of " + x.run_id;
  if (!tags_equal(a.tags, b.tags)) return "tags of " + x.run_id;
  bool metrics_equal = std::equal(
      a.metrics.begin(), a.metrics.end(), b.metrics.begin(), b.metrics.end(),
      [](const Metric& l, const Metric& r) {
        bool values = std::isnan(l.value) ? std::isnan(r.value) : l.value == r.value;
        return l.key == r.key && values && l.timestamp == r.timestamp && l.step == r.step;
      });
  if (!metrics_equal) return "metrics of " + x.run_id;
  bool inputs_equal = std::equal(
      a.inputs.begin(), a.inputs.end(), b.inputs.begin(), b.inputs.end(),
      [&](const DatasetInput& l, const DatasetInput& r) {
        const Dataset& d = l.dataset;
        const Dataset& e = r.dataset;
        return tags_equal(l.tags, r.tags) &&
               std::tie(d.name, d.digest, d.source_type, d.source, d.schema, d.profile) ==
                   std::tie(e.name, e.digest, e.source_type, e.source, e.schema, e.profile);
      });
  if (!inputs_equal) return "inputs of " + x.run_id;
  return "";
}

// (Inside a gtest fixture, `Run` names testing::Test::Run.)
using RunPage = Page<kiln::tracking::Run>;

class SearchRunPageTest : public SearchExecutionTest {
 protected:
  RunPage Search(RunSearchSpec spec) {
    return Search(spec, nullptr);
  }
  RunPage Search(RunSearchSpec spec, RunChildrenCache* cache) {
    RunPage page;
    Status status = db()->Read([&](store::Transaction& tx) -> Status {
      KILN_ASSIGN_OR_RETURN(page, SearchRunPage(tx, spec, cache));
      return Status::Ok();
    });
    EXPECT_TRUE(status.ok()) << status.ToString();
    return page;
  }

  // Checks that `page` holds the runs of BuildRunSearchSql's page, each equal to GetRun's.
  void ExpectSameAsGetRun(const RunPage& page, const RunSearchSpec& spec) {
    std::vector<std::string> expected = Keys(BuildRunSearchSql(spec, db()->dialect()));
    if (static_cast<int64_t>(expected.size()) > spec.max_results) expected.pop_back();
    std::vector<std::string> ids;
    for (const auto& run : page.items) ids.push_back(run.info.run_id);
    EXPECT_EQ(ids, expected) << spec.filter;
    Result<std::unique_ptr<TrackingStore>> store = TrackingStore::Open(db());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (const auto& run : page.items) {
      Result<kiln::tracking::Run> stored = (*store)->GetRun(run.info.run_id);
      ASSERT_TRUE(stored.ok()) << stored.status().ToString();
      EXPECT_EQ(RunDifference(run, *stored), "");
    }
  }
};

TEST_P(SearchRunPageTest, LoadsEachRunAsGetRunDoesInSearchOrder) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> searches = {
      {"", {}},
      {"metrics.auc > 0.9", {"metrics.auc DESC"}},
      {"params.model = 'xgb'", {"metrics.auc ASC"}},
      {"tags.team ILIKE 'vision'", {"start_time ASC"}},
      {"", {"metrics.auc DESC"}},  // NaN and missing metrics last
  };
  for (const auto& [filter, order_by] : searches) {
    RunSearchSpec spec = RunSpec(filter, order_by);
    ExpectSameAsGetRun(Search(spec), spec);
  }
}

TEST_P(SearchRunPageTest, ChildrenAreSortedByKeyAndNaNIsKept) {
  RunPage page = Search(RunSpec("run_id IN ('a1', 'b2', 'c3')", {"start_time DESC"}));
  ASSERT_EQ(page.items.size(), 3u);
  const auto& a1 = page.items[0];
  ASSERT_EQ(a1.params.size(), 2u);
  EXPECT_EQ(a1.params[0].key, "lr");
  EXPECT_EQ(a1.params[1].key, "model");
  const auto& b2 = page.items[1];
  EXPECT_FALSE(b2.info.end_time.has_value());
  ASSERT_EQ(b2.inputs.size(), 1u);
  EXPECT_EQ(b2.inputs[0].dataset.name, "train");
  ASSERT_EQ(b2.inputs[0].tags.size(), 1u);
  EXPECT_EQ(b2.inputs[0].tags[0].value, "training");
  const auto& c3 = page.items[2];
  ASSERT_EQ(c3.metrics.size(), 1u);
  EXPECT_TRUE(std::isnan(c3.metrics[0].value));
  EXPECT_EQ(c3.tags[0].value, "it's");
}

TEST_P(SearchRunPageTest, PagesWithTokens) {
  RunSearchSpec spec = RunSpec("");
  spec.max_results = 3;
  RunPage first = Search(spec);
  EXPECT_EQ(first.next_page_token, EncodePageToken(3));
  ExpectSameAsGetRun(first, spec);
  spec.offset = 3;
  RunPage second = Search(spec);
  EXPECT_EQ(second.next_page_token, "");
  ASSERT_EQ(second.items.size(), 1u);
  EXPECT_EQ(second.items[0].info.run_id, "d4");
  spec.experiment_ids = {};
  EXPECT_TRUE(Search(spec).items.empty());
}

TEST_P(SearchRunPageTest, PagesLargerThanOneIdChunkKeepEveryChild) {
  constexpr int64_t kRuns = 1203;  // over one chunk of 1,000 page ids
  ASSERT_TRUE(db()->Write([&](store::Transaction& tx) -> Status {
    std::vector<std::vector<store::Value>> runs, params, metrics;
    for (int64_t i = 0; i < kRuns; ++i) {
      std::string id = "bulk" + std::to_string(10000 + i);
      runs.push_back({id, int64_t{10000} + i});
      params.push_back({id, "p" + std::to_string(i)});
      metrics.push_back({id, static_cast<double>(i)});
    }
    KILN_RETURN_IF_ERROR(tx.ExecMany("INSERT INTO runs (run_uuid, experiment_id, start_time, "
                                     "lifecycle_stage) VALUES (?, 3, ?, 'active')",
                                     runs)
                             .status());
    KILN_RETURN_IF_ERROR(
        tx.ExecMany("INSERT INTO params VALUES (?, 'k', ?)", params).status());
    return tx
        .ExecMany("INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step) "
                  "VALUES (?, 'm', ?, 0, 1, 0)",
                  metrics)
        .status();
  }).ok());
  RunSearchSpec spec;
  spec.experiment_ids = {3};
  spec.max_results = 5000;
  RunPage page = Search(spec);
  ASSERT_EQ(page.items.size(), static_cast<size_t>(kRuns));
  for (size_t i = 0; i < page.items.size(); ++i) {
    const auto& run = page.items[i];
    int64_t n = kRuns - 1 - static_cast<int64_t>(i);  // start_time DESC
    ASSERT_EQ(run.info.run_id, "bulk" + std::to_string(10000 + n));
    ASSERT_EQ(run.params.size(), 1u);
    EXPECT_EQ(run.params[0].value, "p" + std::to_string(n));
    ASSERT_EQ(run.metrics.size(), 1u);
    EXPECT_EQ(run.metrics[0].value, static_cast<double>(n));
  }
}

TEST_P(SearchRunPageTest, ACachedPageFollowsEveryWriteOfItsRuns) {
  RunChildrenCache cache(size_t{1} << 20);
  const RunSearchSpec spec = RunSpec("");
  RunPage first = Search(spec, &cache);
  ASSERT_FALSE(first.items.empty());
  ExpectSameAsGetRun(first, spec);
  EXPECT_EQ(cache.entries(), first.items.size());
  ExpectSameAsGetRun(Search(spec, &cache), spec);  // now every run comes from the cache
  EXPECT_EQ(cache.entries(), first.items.size());

  // Writes through a store that does not own the cache, as another process's would be.
  Result<std::unique_ptr<TrackingStore>> opened = TrackingStore::Open(db());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  TrackingStore& store = **opened;
  const std::string id = first.items[0].info.run_id;
  DatasetInput input;
  input.dataset = {"eval", "d1", "local", "/data/eval.csv", "{}", "{}"};
  input.tags = {{"mlflow.data.context", "eval"}};
  LogBatchRequest batch;
  batch.run_id = id;
  batch.metrics = {{"auc", 0.99, 5, 9}};
  batch.params = {{"batch_param", "1"}};
  batch.tags = {{"batch_tag", "x"}};
  UpdateRunRequest rename;
  rename.run_id = id;
  rename.run_name = "renamed";
  const std::vector<std::pair<std::string, std::function<Status()>>> writes = {
      {"log-metric", [&] { return store.LogMetric(id, {"new_metric", 1.5, 3, 1}); }},
      {"log-param", [&] { return store.LogParam(id, {"new_param", "v"}); }},
      {"set-tag", [&] { return store.SetTag(id, {"new_tag", "v"}); }},
      {"delete-tag", [&] { return store.DeleteTag(id, "new_tag"); }},
      {"log-batch", [&] { return store.LogBatch(batch); }},
      {"log-inputs", [&] { return store.LogInputs(id, {input}); }},
      {"log-model",
       [&] {
         return store.LogModel(id, R"({"artifact_path": "m", "flavors": {}, "run_id": ")" + id +
                                       R"(", "utc_time_created": "2026-11-27 00:00:00"})");
       }},
      {"update-run rename", [&] { return store.UpdateRun(rename).status(); }},
  };
  for (const auto& [name, write] : writes) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(write().ok()) << write().ToString();
    ExpectSameAsGetRun(Search(spec, &cache), spec);
  }
}

TEST(RunChildrenCacheTest, ServesOnlyTheCachedRevisionAndStaysWithinItsBudget) {
  auto run_with = [](const std::string& id, const std::string& value) {
    kiln::tracking::Run run;
    run.info.run_id = id;
    run.params = {{"p", value}};
    return run;
  };
  RunChildrenCache cache(size_t{1} << 20);
  cache.Put(run_with("a", "one"), 3);
  kiln::tracking::Run out;
  EXPECT_FALSE(cache.Fill("a", 2, &out));
  EXPECT_FALSE(cache.Fill("a", 4, &out));
  EXPECT_FALSE(cache.Fill("b", 3, &out));
  ASSERT_TRUE(cache.Fill("a", 3, &out));
  ASSERT_EQ(out.params.size(), 1u);
  EXPECT_EQ(out.params[0].value, "one");
  cache.Put(run_with("a", "older"), 2);  // a slower reader's older load does not replace it
  ASSERT_TRUE(cache.Fill("a", 3, &out));
  EXPECT_EQ(out.params[0].value, "one");
  cache.Put(run_with("a", "two"), 4);
  EXPECT_FALSE(cache.Fill("a", 3, &out));
  ASSERT_TRUE(cache.Fill("a", 4, &out));
  EXPECT_EQ(out.params[0].value, "two");
  EXPECT_EQ(cache.entries(), 1u);

  // A budget of a few entries keeps the most recently used.
  RunChildrenCache small(1500);
  for (int i = 0; i < 50; ++i) {
    small.Put(run_with("r" + std::to_string(i), std::string(100, 'x')), 1);
    ASSERT_TRUE(small.Fill("r0", 1, &out)) << i;  // used every time: never the one evicted
  }
  EXPECT_GT(small.entries(), 1u);
  EXPECT_LT(small.entries(), 10u);
  EXPECT_TRUE(small.Fill("r49", 1, &out));
  EXPECT_FALSE(small.Fill("r1", 1, &out));
  RunChildrenCache none(10);  // smaller than any entry: caches nothing
  none.Put(run_with("a", "one"), 1);
  EXPECT_EQ(none.entries(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, SearchRunPageTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

}  // namespace
}  // namespace kiln::tracking
