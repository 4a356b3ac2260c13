#include "kiln/store/database.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>
#include <thread>

#include "kiln/store/database_internal.h"
#include "kiln/store/schema.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_database.h"

namespace kiln::store {
namespace {

using kiln::testing::AllBackends;
using kiln::testing::BackendName;
using kiln::testing::TestDatabase;

constexpr std::string_view kCreateItems =
    "CREATE TABLE items (id BIGINT PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, s TEXT, n TEXT)";

Status CreateItems(Database& db) {
  return db.Write([](Transaction& tx) { return tx.Exec(kCreateItems).status(); });
}

int64_t CountItems(Database& db, std::string_view table = "items") {
  int64_t count = -1;
  Status status = db.Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT COUNT(*) FROM " + std::string(table)));
    count = rows.Int(0, 0);
    return Status::Ok();
  });
  EXPECT_TRUE(status.ok()) << status.ToString();
  return count;
}

class DatabaseTest : public ::testing::TestWithParam<Backend> {
 protected:
  TestDatabase database_{GetParam()};
  Database& db() { return *database_.db(); }
};

INSTANTIATE_TEST_SUITE_P(Backends, DatabaseTest, ::testing::ValuesIn(AllBackends()), BackendName);

TEST_P(DatabaseTest, ReportsItsBackend) {
  EXPECT_EQ(db().backend(), GetParam());
  EXPECT_EQ(db().dialect().backend(), GetParam());
}

TEST_P(DatabaseTest, RoundTripsEveryValueType) {
  ASSERT_TRUE(CreateItems(db()).ok());
  struct Case {
    int64_t integer;
    double real;
    std::string text;
  };
  const std::vector<Case> cases = {
      {0, 0.0, ""},
      {std::numeric_limits<int64_t>::max(), 0.1, "plain"},
      {std::numeric_limits<int64_t>::min(), -1.0e308, "héllo wörld 🌍 中文"},
      {-1, 5e-324, "quote ' and \" and ? and $1 and \\ backslash"},
      {1234567890123456789, 3.141592653589793, std::string(10000, 'x')},
      {42, std::numeric_limits<double>::infinity(), "inf"},
      {43, -std::numeric_limits<double>::infinity(), "-inf"},
  };
  Status written = db().Write([&](Transaction& tx) -> Status {
    for (size_t k = 0; k < cases.size(); ++k) {
      KILN_RETURN_IF_ERROR(tx.Exec("INSERT INTO items (id, i, d, s, n) VALUES (?, ?, ?, ?, ?)",
                                   {static_cast<int64_t>(k), cases[k].integer, cases[k].real,
                                    cases[k].text, Null()})
                               .status());
    }
    return Status::Ok();
  });
  ASSERT_TRUE(written.ok()) << written.ToString();

  Rows rows;
  Status read = db().Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(rows, tx.Query("SELECT i, d, s, n FROM items ORDER BY id"));
    return Status::Ok();
  });
  ASSERT_TRUE(read.ok()) << read.ToString();
  ASSERT_EQ(rows.size(), cases.size());
  EXPECT_EQ(rows.columns(), (std::vector<std::string>{"i", "d", "s", "n"}));
  for (size_t k = 0; k < cases.size(); ++k) {
    SCOPED_TRACE(k);
    ASSERT_TRUE(std::holds_alternative<int64_t>(rows.at(k, 0)));
    EXPECT_EQ(std::get<int64_t>(rows.at(k, 0)), cases[k].integer);
    ASSERT_TRUE(std::holds_alternative<double>(rows.at(k, 1)));
    EXPECT_EQ(std::get<double>(rows.at(k, 1)), cases[k].real);
    ASSERT_TRUE(std::holds_alternative<std::string>(rows.at(k, 2)));
    EXPECT_EQ(std::get<std::string>(rows.at(k, 2)), cases[k].text);
    EXPECT_TRUE(rows.IsNull(k, 3));
    EXPECT_EQ(rows.OptText(k, 3), std::nullopt);
    EXPECT_EQ(rows.OptInt(k, 0), cases[k].integer);
  }
}

TEST_P(DatabaseTest, NanReadsBackAsNullOrNanDependingOnBackend) {
  ASSERT_TRUE(CreateItems(db()).ok());
  ASSERT_TRUE(db().Write([](Transaction& tx) {
                    return tx.Exec("INSERT INTO items (id, d) VALUES (1, ?)",
                                   {std::numeric_limits<double>::quiet_NaN()})
                        .status();
                  })
                  .ok());
  Value stored;
  ASSERT_TRUE(db().Read([&](Transaction& tx) -> Status {
                    KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT d FROM items"));
                    stored = rows.at(0, 0);
                    return Status::Ok();
                  })
                  .ok());
  if (GetParam() == Backend::kSqlite) {
    EXPECT_TRUE(std::holds_alternative<std::monostate>(stored));
  } else {
    ASSERT_TRUE(std::holds_alternative<double>(stored));
    EXPECT_TRUE(std::isnan(std::get<double>(stored)));
  }
}

TEST_P(DatabaseTest, TypedAccessorsConvertAndDefaultOnNull) {
  Rows rows;
  ASSERT_TRUE(db().Read([&](Transaction& tx) -> Status {
                    KILN_ASSIGN_OR_RETURN(
                        rows, tx.Query("SELECT CAST(7 AS BIGINT), CAST(2.5 AS DOUBLE PRECISION), "
                                       "'text', NULL, COUNT(*) FROM schema_migrations"));
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(rows.Int(0, 0), 7);
  EXPECT_EQ(rows.Double(0, 0), 7.0);
  EXPECT_EQ(rows.Text(0, 0), "7");
  EXPECT_EQ(rows.Double(0, 1), 2.5);
  EXPECT_EQ(rows.Int(0, 1), 2);
  EXPECT_EQ(rows.Text(0, 2), "text");
  EXPECT_EQ(rows.Int(0, 3), 0);
  EXPECT_EQ(rows.Text(0, 3), "");
  EXPECT_EQ(rows.OptInt(0, 3), std::nullopt);
  EXPECT_EQ(rows.Int(0, 4), static_cast<int64_t>(Migrations().size()));
}

TEST_P(DatabaseTest, QueryWithoutRowsStillNamesColumns) {
  ASSERT_TRUE(CreateItems(db()).ok());
  ASSERT_TRUE(db().Read([](Transaction& tx) -> Status {
                    KILN_ASSIGN_OR_RETURN(Rows rows,
                                          tx.Query("SELECT id, s FROM items WHERE id = ?", {99}));
                    EXPECT_TRUE(rows.empty());
                    EXPECT_EQ(rows.columns(), (std::vector<std::string>{"id", "s"}));
                    return Status::Ok();
                  })
                  .ok());
}

TEST_P(DatabaseTest, ExecAndExecManyReturnChangedRows) {
  ASSERT_TRUE(CreateItems(db()).ok());
  std::vector<std::vector<Value>> batch;
  for (int64_t k = 0; k < 1000; ++k) batch.push_back({k, k * 2, "row"});
  Status status = db().Write([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(int64_t inserted,
                          tx.ExecMany("INSERT INTO items (id, i, s) VALUES (?, ?, ?)", batch));
    EXPECT_EQ(inserted, 1000);
    KILN_ASSIGN_OR_RETURN(int64_t updated,
                          tx.Exec("UPDATE items SET s = ? WHERE id < ?", {"changed", 10}));
    EXPECT_EQ(updated, 10);
    KILN_ASSIGN_OR_RETURN(int64_t none, tx.ExecMany("DELETE FROM items WHERE id = ?", {}));
    EXPECT_EQ(none, 0);
    return Status::Ok();
  });
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(CountItems(db()), 1000);
}

TEST_P(DatabaseTest, WriteRollsBackWhenBodyFails) {
  ASSERT_TRUE(CreateItems(db()).ok());
  Status status = db().Write([](Transaction& tx) -> Status {
    KILN_RETURN_IF_ERROR(tx.Exec("INSERT INTO items (id) VALUES (1)").status());
    return Conflict("changed my mind");
  });
  EXPECT_EQ(status.code(), StatusCode::kConflict);
  EXPECT_EQ(status.message(), "changed my mind");
  EXPECT_EQ(CountItems(db()), 0);
}

TEST_P(DatabaseTest, DuplicatePrimaryKeyIsAlreadyExists) {
  ASSERT_TRUE(CreateItems(db()).ok());
  ASSERT_TRUE(
      db().Write([](Transaction& tx) { return tx.Exec("INSERT INTO items (id) VALUES (1)").status(); })
          .ok());
  Status status = db().Write(
      [](Transaction& tx) { return tx.Exec("INSERT INTO items (id) VALUES (?)", {1}).status(); });
  EXPECT_EQ(status.code(), StatusCode::kAlreadyExists) << status.ToString();
}

TEST_P(DatabaseTest, ForeignKeyAndNotNullViolationsAreInvalidArgument) {
  const std::vector<std::string> statements = {
      "INSERT INTO runs (run_uuid, experiment_id) VALUES ('r1', 12345)",  // no such experiment
      "INSERT INTO experiments (experiment_id, name) VALUES (1, NULL)",
  };
  for (const std::string& sql : statements) {
    Status status = db().Write([&](Transaction& tx) { return tx.Exec(sql).status(); });
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << sql << ": " << status.ToString();
  }
}

TEST_P(DatabaseTest, FailedStatementAbortsTheTransactionOnBothBackends) {
  ASSERT_TRUE(CreateItems(db()).ok());
  Status status = db().Write([](Transaction& tx) -> Status {
    EXPECT_TRUE(tx.Exec("INSERT INTO items (id) VALUES (1)").ok());
    EXPECT_FALSE(tx.Exec("INSERT INTO items (id) VALUES (1)").ok());
    auto after = tx.Exec("INSERT INTO items (id) VALUES (2)");
    EXPECT_FALSE(after.ok());
    return Status::Ok();  // wrongly ignoring the failures must not commit anything
  });
  EXPECT_EQ(status.code(), StatusCode::kAlreadyExists) << status.ToString();
  EXPECT_EQ(CountItems(db()), 0);
}

TEST_P(DatabaseTest, InvalidSqlIsAnErrorNamingTheProblem) {
  Status status = db().Read([](Transaction& tx) { return tx.Query("SELEC 1").status(); });
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("syntax"), std::string::npos) << status.ToString();
  status = db().Read([](Transaction& tx) { return tx.Query("SELECT ?", {1, 2}).status(); });
  EXPECT_FALSE(status.ok());
}

TEST_P(DatabaseTest, PlaceholdersInsideQuotesAreLiterals) {
  Rows rows;
  ASSERT_TRUE(db().Read([&](Transaction& tx) -> Status {
                    KILN_ASSIGN_OR_RETURN(rows, tx.Query("SELECT '?' AS \"what?\", "
                                                         "CAST(? AS BIGINT) + 1 /* ? */",
                                                         {41}));
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(rows.Text(0, 0), "?");
  EXPECT_EQ(rows.columns()[0], "what?");
  EXPECT_EQ(rows.Int(0, 1), 42);
}

TEST_P(DatabaseTest, LikeIsCaseSensitiveAndILikeIsNot) {
  ASSERT_TRUE(CreateItems(db()).ok());
  ASSERT_TRUE(db().Write([](Transaction& tx) {
                    return tx
                        .ExecMany("INSERT INTO items (id, s) VALUES (?, ?)",
                                  {{1, "Alpha"}, {2, "alpha"}, {3, "a_b"}, {4, "axb"}})
                        .status();
                  })
                  .ok());
  struct Case {
    bool insensitive;
    std::string pattern;
    std::vector<int64_t> ids;
  };
  const std::vector<Case> cases = {
      {false, "Al%", {1}},      {false, "al%", {2}},      {true, "AL%", {1, 2}},
      {false, "a\\_b", {3}},    {false, "a_b", {3, 4}},   {true, "A\\_B", {3}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.pattern);
    const Dialect& dialect = db().dialect();
    std::string predicate = c.insensitive ? dialect.ILike("s", "?") : dialect.Like("s", "?");
    std::vector<int64_t> ids;
    ASSERT_TRUE(db().Read([&](Transaction& tx) -> Status {
                      KILN_ASSIGN_OR_RETURN(
                          Rows rows, tx.Query("SELECT id FROM items WHERE " + predicate +
                                                  " ORDER BY id",
                                              {c.pattern}));
                      for (size_t r = 0; r < rows.size(); ++r) ids.push_back(rows.Int(r, 0));
                      return Status::Ok();
                    })
                    .ok());
    EXPECT_EQ(ids, c.ids);
  }
}

TEST_P(DatabaseTest, NextSequenceValueCountsPerName) {
  std::vector<int64_t> values;
  for (int k = 0; k < 3; ++k) {
    ASSERT_TRUE(db().Write([&](Transaction& tx) -> Status {
                      KILN_ASSIGN_OR_RETURN(int64_t a, tx.NextSequenceValue("a"));
                      values.push_back(a);
                      return Status::Ok();
                    })
                    .ok());
  }
  ASSERT_TRUE(db().Write([&](Transaction& tx) -> Status {
                    KILN_ASSIGN_OR_RETURN(int64_t b, tx.NextSequenceValue("b"));
                    values.push_back(b);
                    KILN_ASSIGN_OR_RETURN(int64_t b2, tx.NextSequenceValue("b"));
                    values.push_back(b2);
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(values, (std::vector<int64_t>{1, 2, 3, 1, 2}));
}

TEST_P(DatabaseTest, FreshDatabaseIsAtNewestSchemaVersion) {
  auto version = db().SchemaVersion();
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(*version, Migrations().back().version);
  EXPECT_EQ(CountItems(db(), "experiments"), 0);
}

TEST_P(DatabaseTest, ReopeningIsANoOp) {
  auto applied = [&](Database& database) {
    std::vector<std::pair<int64_t, int64_t>> out;
    EXPECT_TRUE(database
                    .Read([&](Transaction& tx) -> Status {
                      KILN_ASSIGN_OR_RETURN(
                          Rows rows, tx.Query("SELECT version, applied_at FROM schema_migrations "
                                              "ORDER BY version"));
                      for (size_t r = 0; r < rows.size(); ++r) {
                        out.emplace_back(rows.Int(r, 0), rows.Int(r, 1));
                      }
                      return Status::Ok();
                    })
                    .ok());
    return out;
  };
  auto before = applied(db());
  ASSERT_EQ(before.size(), Migrations().size());
  auto again = database_.OpenAnother();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(applied(**again), before);
}

TEST_P(DatabaseTest, ConcurrentWritersAllCommit) {
  ASSERT_TRUE(CreateItems(db()).ok());
  constexpr int kThreads = 8;
  constexpr int kTransactions = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < kTransactions; ++k) {
        Status status = db().Write([](Transaction& tx) -> Status {
          KILN_ASSIGN_OR_RETURN(int64_t id, tx.NextSequenceValue("items"));
          return tx.Exec("INSERT INTO items (id, s) VALUES (?, 'x')", {id}).status();
        });
        if (!status.ok()) {
          ADD_FAILURE() << status.ToString();
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(CountItems(db()), kThreads * kTransactions);
}

TEST_P(DatabaseTest, ReadSeesAllOrNothingOfAConcurrentBatch) {
  ASSERT_TRUE(CreateItems(db()).ok());
  constexpr int kBatch = 100;
  constexpr int kBatches = 40;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int b = 0; b < kBatches; ++b) {
      std::vector<std::vector<Value>> rows;
      for (int k = 0; k < kBatch; ++k) rows.push_back({int64_t{b} * kBatch + k});
      Status status = db().Write([&](Transaction& tx) {
        return tx.ExecMany("INSERT INTO items (id) VALUES (?)", rows).status();
      });
      EXPECT_TRUE(status.ok()) << status.ToString();
    }
    done = true;
  });
  int reads = 0;
  while (!done || reads == 0) {
    Status status = db().Read([&](Transaction& tx) -> Status {
      KILN_ASSIGN_OR_RETURN(Rows first, tx.Query("SELECT COUNT(*) FROM items"));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      KILN_ASSIGN_OR_RETURN(Rows second, tx.Query("SELECT COUNT(*), MAX(id) FROM items"));
      EXPECT_EQ(first.Int(0, 0) % kBatch, 0);
      EXPECT_EQ(first.Int(0, 0), second.Int(0, 0)) << "a Read saw two snapshots";
      return Status::Ok();
    });
    EXPECT_TRUE(status.ok()) << status.ToString();
    ++reads;
  }
  writer.join();
  EXPECT_EQ(CountItems(db()), kBatch * kBatches);
}

TEST_P(DatabaseTest, WriteBlockedPastBusyTimeoutIsUnavailable) {
  ASSERT_TRUE(CreateItems(db()).ok());
  ASSERT_TRUE(
      db().Write([](Transaction& tx) { return tx.Exec("INSERT INTO items (id) VALUES (1)").status(); })
          .ok());
  Options impatient;
  impatient.busy_timeout_ms = 300;
  auto other = database_.OpenAnother(impatient);
  ASSERT_TRUE(other.ok()) << other.status().ToString();

  std::atomic<bool> holding{false};
  std::atomic<bool> release{false};
  std::thread holder([&] {
    Status status = db().Write([&](Transaction& tx) -> Status {
      KILN_RETURN_IF_ERROR(tx.Exec("UPDATE items SET s = 'held' WHERE id = 1").status());
      holding = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return Status::Ok();
    });
    EXPECT_TRUE(status.ok()) << status.ToString();
  });
  while (!holding) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto start = std::chrono::steady_clock::now();
  Status blocked = (*other)->Write(
      [](Transaction& tx) { return tx.Exec("UPDATE items SET s = 'other' WHERE id = 1").status(); });
  auto waited = std::chrono::steady_clock::now() - start;
  release = true;
  holder.join();
  EXPECT_EQ(blocked.code(), StatusCode::kUnavailable) << blocked.ToString();
  EXPECT_EQ(blocked.message().find("database is locked"), std::string::npos) << blocked.message();
  EXPECT_GE(waited, std::chrono::milliseconds(250));
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST_P(DatabaseTest, PoolOfOneMakesCallersWaitInsteadOfFailing) {
  Options options;
  options.pool_size = 1;
  auto small = database_.OpenAnother(options);
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  ASSERT_TRUE(CreateItems(**small).ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 25; ++k) {
        Status wrote = (*small)->Write([&](Transaction& tx) {
          return tx.Exec("INSERT INTO items (id) VALUES (?)", {int64_t{t} * 1000 + k}).status();
        });
        Status read = (*small)->Read([](Transaction& tx) { return tx.Query("SELECT 1").status(); });
        if (!wrote.ok() || !read.ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(CountItems(**small), 100);
}

// A server-side disconnect (restart, idle kill) of a pooled connection is noticed and the
// transaction reruns on a fresh connection.
TEST(PostgresConnectionTest, WriteSurvivesATerminatedPooledConnection) {
  TestDatabase database(Backend::kPostgres);
  Database& db = *database.db();
  ASSERT_TRUE(CreateItems(db).ok());
  Options one;
  one.pool_size = 1;
  auto single = database.OpenAnother(one);
  ASSERT_TRUE(single.ok());
  int64_t pid = 0;
  ASSERT_TRUE((*single)->Read([&](Transaction& tx) -> Status {
                         KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT pg_backend_pid()"));
                         pid = rows.Int(0, 0);
                         return Status::Ok();
                       })
                  .ok());
  ASSERT_TRUE(db.Read([&](Transaction& tx) {
                  return tx.Query("SELECT pg_terminate_backend(CAST(? AS INTEGER))", {pid}).status();
                })
                  .ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Status status = (*single)->Write(
      [](Transaction& tx) { return tx.Exec("INSERT INTO items (id) VALUES (1)").status(); });
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(CountItems(db), 1);
}

// Migrations on a database made without them (TestDatabase with open = false).
class MigrationTest : public ::testing::TestWithParam<Backend> {
 protected:
  TestDatabase empty_{GetParam(), Options{}, /*open=*/false};
};

INSTANTIATE_TEST_SUITE_P(Backends, MigrationTest, ::testing::ValuesIn(AllBackends()), BackendName);

TEST_P(MigrationTest, OpenUpgradesAnOlderDatabaseInPlace) {
  const int64_t newest = Migrations().back().version;
  {
    auto old = internal::OpenWithMigrations(empty_.uri(), Options{}, newest - 1);
    ASSERT_TRUE(old.ok()) << old.status().ToString();
    auto version = (*old)->SchemaVersion();
    ASSERT_TRUE(version.ok());
    EXPECT_EQ(*version, newest - 1);
  }
  auto upgraded = Database::Open(empty_.uri());
  ASSERT_TRUE(upgraded.ok()) << upgraded.status().ToString();
  auto version = (*upgraded)->SchemaVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, newest);
  EXPECT_EQ(CountItems(**upgraded, "runs"), 0);
}

TEST_P(MigrationTest, ConcurrentOpensOfAFreshDatabaseMigrateOnce) {
  constexpr int kOpeners = 8;
  std::vector<std::thread> threads;
  std::vector<Status> results(kOpeners);
  for (int t = 0; t < kOpeners; ++t) {
    threads.emplace_back([&, t] {
      auto db = Database::Open(empty_.uri());
      results[t] = db.ok() ? Status::Ok() : db.status();
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const Status& status : results) EXPECT_TRUE(status.ok()) << status.ToString();
  auto db = Database::Open(empty_.uri());
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(CountItems(**db, "schema_migrations"), static_cast<int64_t>(Migrations().size()));
}

TEST(OpenTest, AcceptsEverySqliteUriForm) {
  kiln::testing::TempDir dir;
  std::string relative =
      std::filesystem::relative(dir.Join("relative.db"), std::filesystem::current_path()).string();
  const std::vector<std::string> uris = {
      "sqlite://" + dir.Join("a.db"),
      "sqlite:" + relative,
      dir.Join("plain.db"),
      dir.Join("no_extension"),
  };
  for (const std::string& uri : uris) {
    auto db = Database::Open(uri);
    ASSERT_TRUE(db.ok()) << uri << ": " << db.status().ToString();
    EXPECT_EQ((*db)->backend(), Backend::kSqlite);
  }
  EXPECT_TRUE(std::filesystem::exists(dir.Join("relative.db")));
  EXPECT_TRUE(std::filesystem::exists(dir.Join("no_extension")));
}

TEST(OpenTest, RejectsUnknownSchemesAndEmptyUris) {
  for (const std::string uri : {"", "mysql://root@localhost/kiln", "sqlite://"}) {
    auto db = Database::Open(uri);
    ASSERT_FALSE(db.ok()) << uri;
    EXPECT_EQ(db.status().code(), StatusCode::kInvalidArgument) << uri;
  }
}

TEST(OpenTest, MissingFolderIsAnIoErrorNamingThePath) {
  auto db = Database::Open("/nonexistent-kiln-folder/sub/kiln.db");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kIoError);
  EXPECT_NE(db.status().message().find("/nonexistent-kiln-folder/sub/kiln.db"), std::string::npos);
}

TEST(OpenTest, PostgresDisplayUriMasksThePassword) {
  // Nothing listens on port 1, so Open fails; the error must not carry the password either.
  auto db = Database::Open("postgresql://kiln:hunter2@127.0.0.1:1/kiln?connect_timeout=2");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kUnavailable) << db.status().ToString();
  EXPECT_EQ(db.status().message().find("hunter2"), std::string::npos) << db.status().ToString();
}

TEST(SplitStatementsTest, SplitsOnSemicolonsAtLineEnds) {
  EXPECT_EQ(internal::SplitStatements("CREATE TABLE a (x TEXT DEFAULT ';');\n"
                                      "  CREATE TABLE b (y INT);  \n\n;\nSELECT 1"),
            (std::vector<std::string>{"CREATE TABLE a (x TEXT DEFAULT ';')",
                                      "CREATE TABLE b (y INT)", "SELECT 1"}));
}

// Eight processes writing one SQLite file at once: each forks before touching SQLite (a
// connection must not cross fork), opens the fresh file itself (racing to migrate it) and commits
// 200 transactions of 100 rows. None may fail with "database is locked"; no row may be lost.
TEST(SqliteProcessesTest, EightProcessesWritingOneFileLoseNothing) {
  constexpr int kProcesses = 8;
  constexpr int kTransactions = 200;
  constexpr int kRowsPerTransaction = 100;
  kiln::testing::TempDir dir;
  const std::string uri = "sqlite://" + dir.Join("shared.db");
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Options options;
      options.sync_full = false;  // durability is not under test; keeps the test quick
      auto db = Database::Open(uri, options);
      if (!db.ok()) {
        std::fprintf(stderr, "child %d: open: %s\n", p, db.status().ToString().c_str());
        _exit(2);
      }
      if (!(*db)->Write([](Transaction& tx) {
                  return tx
                      .Exec("CREATE TABLE IF NOT EXISTS batch_rows (process BIGINT, txn BIGINT, "
                            "row_index BIGINT, PRIMARY KEY (process, txn, row_index))")
                      .status();
                })
               .ok()) {
        _exit(3);
      }
      for (int t = 0; t < kTransactions; ++t) {
        std::vector<std::vector<Value>> rows;
        for (int r = 0; r < kRowsPerTransaction; ++r) {
          rows.push_back({int64_t{p}, int64_t{t}, int64_t{r}});
        }
        Status status = (*db)->Write([&](Transaction& tx) {
          return tx.ExecMany("INSERT INTO batch_rows (process, txn, row_index) VALUES (?, ?, ?)",
                             rows)
              .status();
        });
        if (!status.ok()) {
          std::fprintf(stderr, "child %d: write %d: %s\n", p, t, status.ToString().c_str());
          _exit(4);
        }
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int wait_status = 0;
    ASSERT_EQ(waitpid(pid, &wait_status, 0), pid);
    EXPECT_TRUE(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0)
        << "child exited with status " << wait_status;
  }
  auto db = Database::Open(uri);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ(CountItems(**db, "batch_rows"), kProcesses * kTransactions * kRowsPerTransaction);
}


}  // namespace
}  // namespace kiln::store

namespace kiln::store {
namespace {

TEST(SqliteSchemaTest, PerRunTablesAreClusteredOnTheirPrimaryKey) {
  kiln::testing::TestDatabase database(Backend::kSqlite);
  for (std::string table :
       {"params", "tags", "latest_metrics", "experiment_tags", "metric_chunks"}) {
    Rows rows;
    ASSERT_TRUE(database.db()
                    ->Read([&](Transaction& tx) -> Status {
                      KILN_ASSIGN_OR_RETURN(
                          rows, tx.Query("SELECT sql FROM sqlite_master WHERE name = ?", {table}));
                      return Status::Ok();
                    })
                    .ok());
    ASSERT_EQ(rows.size(), 1u) << table;
    EXPECT_NE(rows.Text(0, 0).find("WITHOUT ROWID"), std::string::npos) << rows.Text(0, 0);
  }
}

// With background checkpoints the writer never checkpoints in its commits below 16,000 WAL pages,
// so the database file grows only if the background thread copies the WAL into it.
TEST(SqliteCheckpointTest, ABackgroundThreadCopiesTheWalIntoTheDatabase) {
  kiln::testing::TempDir dir;
  const std::string path = dir.Join("kiln.db");
  Options options;
  options.background_checkpoint = true;
  {
    auto db = Database::Open(path, options);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    const uintmax_t empty = std::filesystem::file_size(path);
    ASSERT_TRUE((*db)->Write([](Transaction& tx) {
                     return tx.Exec("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data TEXT)")
                         .status();
                   }, Durability::kProcessCrash)
                    .ok());
    // About 2,500 pages: past the 1,000 that ask for a checkpoint, far below 16,000.
    for (int i = 0; i < 250; ++i) {
      ASSERT_TRUE((*db)->Write([&](Transaction& tx) {
                       return tx.Exec("INSERT INTO blobs (id, data) VALUES (?, ?)",
                                      {int64_t{i}, std::string(40000, static_cast<char>('a' + i % 26))})
                           .status();
                     }, Durability::kProcessCrash)
                      .ok());
    }
    uintmax_t size = empty;
    for (int wait = 0; wait < 200 && size < empty + 4'000'000; ++wait) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      size = std::filesystem::file_size(path);
    }
    EXPECT_GE(size, empty + 4'000'000) << "the WAL was not checkpointed into " << path;
    const uintmax_t wal = std::filesystem::file_size(path + "-wal");
    EXPECT_LT(wal, uintmax_t{16000} * 4096) << "the WAL grew past the inline limit";
  }
  // Everything acknowledged is there after reopening.
  auto again = Database::Open(path);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  int64_t count = 0;
  ASSERT_TRUE((*again)->Read([&](Transaction& tx) -> Status {
                   KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT COUNT(*) FROM blobs"));
                   count = rows.Int(0, 0);
                   return Status::Ok();
                 })
                  .ok());
  EXPECT_EQ(count, 250);
}

// The server's cache and memory-map settings reach the connections they are meant for: the
// writer's page cache, and the map on the writer and on every reader.
TEST(SqliteOptionsTest, TheWriterCacheAndTheMemoryMapApplyToTheirConnections) {
  kiln::testing::TempDir dir;
  Options options;
  options.writer_cache_kib = 65536;
  options.mmap_bytes = int64_t{256} << 20;
  auto db = Database::Open(dir.Join("kiln.db"), options);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto pragma = [](Transaction& tx, const char* name, int64_t* out) -> Status {
    KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string("PRAGMA ") + name));
    *out = rows.Int(0, 0);
    return Status::Ok();
  };
  int64_t writer_cache = 0, writer_map = 0, reader_cache = 0, reader_map = 0;
  ASSERT_TRUE((*db)->Write([&](Transaction& tx) -> Status {
                   KILN_RETURN_IF_ERROR(pragma(tx, "cache_size", &writer_cache));
                   return pragma(tx, "mmap_size", &writer_map);
                 }, Durability::kProcessCrash)
                  .ok());
  ASSERT_TRUE((*db)->Read([&](Transaction& tx) -> Status {
                   KILN_RETURN_IF_ERROR(pragma(tx, "cache_size", &reader_cache));
                   return pragma(tx, "mmap_size", &reader_map);
                 })
                  .ok());
  EXPECT_EQ(writer_cache, -65536);  // negative: KiB
  EXPECT_EQ(writer_map, int64_t{256} << 20);
  EXPECT_EQ(reader_map, int64_t{256} << 20);
  EXPECT_NE(reader_cache, -65536) << "readers keep SQLite's default cache";
}

}  // namespace
}  // namespace kiln::store
