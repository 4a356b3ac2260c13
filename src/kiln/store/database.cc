// Database::Open dispatch, Rows and Dialect, and the migration runner shared by both backends.
#include "kiln/store/database.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <random>
#include <thread>

#include "kiln/core/clock.h"
#include "kiln/core/log.h"
#include "kiln/store/database_internal.h"
#include "kiln/store/schema.h"

namespace kiln::store {
namespace {

// Lenient conversions for the typed accessors: a value of another type is converted when that
// makes sense (PostgreSQL returns SUM(bigint) as numeric, SQLite may hand back text for numbers
// stored in an untyped expression), else the default.
int64_t ToInt(const Value& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return *i;
  if (const auto* d = std::get_if<double>(&value)) {
    return std::isfinite(*d) ? static_cast<int64_t>(*d) : 0;
  }
  if (const auto* s = std::get_if<std::string>(&value)) {
    int64_t out = 0;
    std::from_chars(s->data(), s->data() + s->size(), out);
    return out;
  }
  return 0;
}

double ToDouble(const Value& value) {
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (const auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  if (const auto* s = std::get_if<std::string>(&value)) {
    double out = 0;
    std::from_chars(s->data(), s->data() + s->size(), out);
    return out;
  }
  return 0;
}

std::string ToText(const Value& value) {
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  if (const auto* i = std::get_if<int64_t>(&value)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&value)) {
    char buffer[64];
    auto result = std::to_chars(buffer, buffer + sizeof(buffer), *d);
    return std::string(buffer, result.ptr);
  }
  return "";
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

constexpr std::string_view kCreateSchemaMigrations =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT, "
    "applied_at BIGINT)";

}  // namespace

int64_t Rows::Int(size_t row, size_t column) const { return ToInt(at(row, column)); }
double Rows::Double(size_t row, size_t column) const { return ToDouble(at(row, column)); }
std::string Rows::Text(size_t row, size_t column) const { return ToText(at(row, column)); }
bool Rows::IsNull(size_t row, size_t column) const {
  return std::holds_alternative<std::monostate>(at(row, column));
}
std::optional<int64_t> Rows::OptInt(size_t row, size_t column) const {
  if (IsNull(row, column)) return std::nullopt;
  return Int(row, column);
}
std::optional<std::string> Rows::OptText(size_t row, size_t column) const {
  if (IsNull(row, column)) return std::nullopt;
  return Text(row, column);
}

// Both backends treat '\' as the escape character of a LIKE pattern (PostgreSQL's default; SQLite
// is told with ESCAPE), so the same pattern means the same on both.
std::string Dialect::Like(std::string_view lhs, std::string_view rhs) const {
  std::string out = std::string(lhs) + " LIKE " + std::string(rhs);
  if (backend_ == Backend::kSqlite) out += " ESCAPE '\\'";
  return out;
}

std::string Dialect::ILike(std::string_view lhs, std::string_view rhs) const {
  if (backend_ == Backend::kPostgres) {
    return std::string(lhs) + " ILIKE " + std::string(rhs);
  }
  return "LOWER(" + std::string(lhs) + ") LIKE LOWER(" + std::string(rhs) + ") ESCAPE '\\'";
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& uri, Options options) {
  return internal::OpenWithMigrations(uri, options, Migrations().back().version);
}

namespace internal {

Result<std::unique_ptr<Database>> OpenWithMigrations(const std::string& uri, Options options,
                                                     int64_t max_version) {
  if (uri.empty()) {
    return InvalidArgument(
        "empty database URI: use sqlite:///path/kiln.db, a path ending in .db, or "
        "postgresql://user@host/db");
  }
  std::unique_ptr<MigratableDatabase> db;
  if (StartsWith(uri, "postgresql://") || StartsWith(uri, "postgres://")) {
    KILN_ASSIGN_OR_RETURN(db, OpenPostgres(uri, options));
  } else {
    std::string path;
    if (StartsWith(uri, "sqlite://")) {
      path = uri.substr(9);  // "sqlite:///abs" -> "/abs"
    } else if (StartsWith(uri, "sqlite:")) {
      path = uri.substr(7);
    } else if (size_t scheme = uri.find("://"); scheme != std::string::npos) {
      return InvalidArgument("unsupported database URI scheme '" + uri.substr(0, scheme) +
                             "' in '" + RedactUri(uri) +
                             "': use sqlite:///path/kiln.db or postgresql://user@host/db");
    } else {
      path = uri;
    }
    if (path.empty()) {
      return InvalidArgument("database URI '" + uri + "' names no file: use sqlite:///path/kiln.db");
    }
    KILN_ASSIGN_OR_RETURN(db, OpenSqlite(uri, path, options));
  }
  KILN_RETURN_IF_ERROR(Migrate(*db, max_version));
  return std::unique_ptr<Database>(std::move(db));
}

Status Migrate(MigratableDatabase& db, int64_t max_version) {
  const std::vector<Migration>& migrations = Migrations();
  const int64_t newest_known = migrations.back().version;

  // Fast path: an up-to-date database is only read, so opening never waits on writers.
  int64_t current = -1;
  Status read = db.Read([&](Transaction& tx) -> Status {
    KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT MAX(version) FROM schema_migrations"));
    current = rows.empty() ? 0 : rows.Int(0, 0);
    return Status::Ok();
  });
  if (read.ok() && current > newest_known) {
    return FailedPrecondition("database schema version " + std::to_string(current) +
                              " is newer than this kiln supports (" +
                              std::to_string(newest_known) + "); upgrade kiln");
  }
  if (read.ok() && current >= max_version) return Status::Ok();

  KILN_RETURN_IF_ERROR(db.MigrationWrite([](Transaction& tx) -> Status {
    return tx.Exec(kCreateSchemaMigrations).status();
  }));
  for (const Migration& migration : migrations) {
    if (migration.version > max_version) break;
    Status applied = db.MigrationWrite([&](Transaction& tx) -> Status {
      // Re-checked under the migration lock: another process may have applied it meanwhile.
      KILN_ASSIGN_OR_RETURN(Rows done, tx.Query("SELECT 1 FROM schema_migrations WHERE version = ?",
                                                {migration.version}));
      if (!done.empty()) return Status::Ok();
      std::string_view sql = migration.sqlite_sql;
      if (db.backend() == Backend::kPostgres && !migration.postgres_sql.empty()) {
        sql = migration.postgres_sql;
      }
      for (const std::string& statement : SplitStatements(sql)) {
        KILN_RETURN_IF_ERROR(tx.Exec(statement).status());
      }
      return tx
          .Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                {migration.version, std::string(migration.name), Clock::Real()->NowMillis()})
          .status();
    });
    if (!applied.ok()) {
      return applied.WithContext("applying schema migration " + std::to_string(migration.version) +
                                 " (" + std::string(migration.name) + ") to " + db.DisplayUri());
    }
  }
  return Status::Ok();
}

std::vector<std::string> SplitStatements(std::string_view sql) {
  std::vector<std::string> statements;
  auto flush = [&](std::string_view piece) {
    size_t begin = piece.find_first_not_of(" \t\r\n");
    if (begin == std::string_view::npos) return;
    size_t end = piece.find_last_not_of(" \t\r\n");
    statements.emplace_back(piece.substr(begin, end - begin + 1));
  };
  size_t start = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    if (sql[i] != ';') continue;
    size_t next = sql.find_first_not_of(" \t\r", i + 1);
    if (next == std::string_view::npos || sql[next] == '\n') {
      flush(sql.substr(start, i - start));
      start = i + 1;
    }
  }
  flush(sql.substr(start));
  return statements;
}

Backoff::Backoff(int timeout_ms)
    : deadline_(std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms)) {}

int Backoff::RemainingMillis() const {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ -
                                                                    std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

bool Backoff::Wait() {
  auto now = std::chrono::steady_clock::now();
  if (now >= deadline_) return false;
  int cap_ms = 1 << std::min(attempts_, 6);  // 1, 2, 4, ... 64 ms
  ++attempts_;
  thread_local std::minstd_rand random(static_cast<unsigned>(
      std::hash<std::thread::id>()(std::this_thread::get_id()) ^
      static_cast<size_t>(now.time_since_epoch().count())));
  auto sleep = std::chrono::microseconds(
      std::uniform_int_distribution<int>(cap_ms * 500, cap_ms * 1000)(random));
  std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(sleep, deadline_ - now));
  return true;
}

Result<int64_t> NextSequenceValue(Transaction& tx, std::string_view name) {
  KILN_ASSIGN_OR_RETURN(
      Rows rows, tx.Query("INSERT INTO id_sequences (name, value) VALUES (?, 1) ON CONFLICT (name) "
                          "DO UPDATE SET value = id_sequences.value + 1 RETURNING value",
                          {std::string(name)}));
  return rows.Int(0, 0);
}

}  // namespace internal
}  // namespace kiln::store
