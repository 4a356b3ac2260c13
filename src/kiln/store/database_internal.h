// Pieces shared by the SQLite and PostgreSQL backends, and hooks for the store's own tests.
// Nothing outside src/kiln/store (and its tests) includes this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/store/database.h"

namespace kiln::store::internal {

// A Database that can also run schema migrations.
class MigratableDatabase : public Database {
 public:
  // Runs `body` in a write transaction that may change the schema and that is serialised against
  // every other process migrating the same database: SQLite's BEGIN IMMEDIATE already is;
  // PostgreSQL takes a transaction-scoped advisory lock as its first statement (READ COMMITTED,
  // so statements after the lock see what an earlier migrator committed).
  virtual Status MigrationWrite(const std::function<Status(Transaction&)>& body) = 0;
};

// Applies every migration of Migrations() with version <= max_version that `db` lacks, each in its
// own MigrationWrite, creating schema_migrations first. Safe to run from many processes at once.
Status Migrate(MigratableDatabase& db, int64_t max_version);

// Opens without migrating (the backends' factories).
Result<std::unique_ptr<MigratableDatabase>> OpenSqlite(const std::string& uri,
                                                       const std::string& path, Options options);
Result<std::unique_ptr<MigratableDatabase>> OpenPostgres(const std::string& uri, Options options);

// Database::Open, but migrating only up to max_version (tests build old-version databases this way).
Result<std::unique_ptr<Database>> OpenWithMigrations(const std::string& uri, Options options,
                                                     int64_t max_version);

// Splits a migration's text into statements on ';' at line ends; empty statements are dropped.
std::vector<std::string> SplitStatements(std::string_view sql);

// Retry pacing for busy databases: exponential from 1 ms to 64 ms with jitter, until a deadline.
class Backoff {
 public:
  explicit Backoff(int timeout_ms);
  // Sleeps before the next attempt; false (without sleeping) once the deadline has passed.
  bool Wait();
  int attempts() const { return attempts_; }
  int RemainingMillis() const;

 private:
  std::chrono::steady_clock::time_point deadline_;
  int attempts_ = 0;
};

// Transaction::NextSequenceValue for both backends: the statement is portable SQL.
Result<int64_t> NextSequenceValue(Transaction& tx, std::string_view name);

}  // namespace kiln::store::internal
