// A brand-new, empty, migrated kiln database per test, on either backend.
//
//   class RunsTest : public ::testing::TestWithParam<store::Backend> {
//    protected:
//     kiln::testing::TestDatabase database_{GetParam()};
//   };
//   TEST_P(RunsTest, ...) { store::Database* db = database_.db(); ... }
//   INSTANTIATE_TEST_SUITE_P(Backends, RunsTest,
//                            ::testing::ValuesIn(kiln::testing::AllBackends()),
//                            kiln::testing::BackendName);
//
// SQLite: a kiln.db file in a fresh TempDir. PostgreSQL: `CREATE DATABASE kiln_test_<random>` on
// the server named by $KILN_TEST_POSTGRES (set by scripts/with-postgres.sh and `make test`),
// dropped WITH (FORCE) by the destructor. If $KILN_TEST_POSTGRES is unset, constructing a
// PostgreSQL TestDatabase fails the test (ADD_FAILURE and throws); it never skips.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/store/database.h"
#include "tests/support/temp_dir.h"

namespace kiln::testing {

// Every backend tests must pass on: {kSqlite, kPostgres}.
std::vector<store::Backend> AllBackends();

// "Sqlite" / "Postgres", for INSTANTIATE_TEST_SUITE_P's name generator.
std::string BackendName(const ::testing::TestParamInfo<store::Backend>& info);

class TestDatabase {
 public:
  // Creates the empty database and opens it (migrated to the newest schema) with `options`.
  // Throws std::runtime_error (after ADD_FAILURE) if that fails.
  explicit TestDatabase(store::Backend backend, store::Options options = {});
  // With open = false, only creates the empty database (no schema) and db() is null: for tests
  // of opening and migrating, which call Database::Open(uri()) themselves.
  TestDatabase(store::Backend backend, store::Options options, bool open);
  // Closes db() and deletes the database.
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  store::Backend backend() const { return backend_; }
  // The URI to pass to Database::Open (or to a kiln server under test) for this database.
  const std::string& uri() const { return uri_; }
  // The opened database; owned by this object (null if constructed with open = false).
  store::Database* db() const { return db_.get(); }

  // A second, independent Database on the same data (another "process").
  Result<std::unique_ptr<store::Database>> OpenAnother(store::Options options = {}) const;

 private:
  store::Backend backend_;
  std::unique_ptr<TempDir> temp_dir_;  // SQLite only
  std::string admin_uri_;              // PostgreSQL only: the server's maintenance database
  std::string database_name_;          // PostgreSQL only
  std::string uri_;
  std::unique_ptr<store::Database> db_;
};

}  // namespace kiln::testing
