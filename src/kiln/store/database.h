// The metadata database: one schema on SQLite (embedded default) or PostgreSQL (teams, scale).
//
// Callers write portable SQL with `?` placeholders; the PostgreSQL backend rewrites them to $1..$n.
// The SQL that differs between the two (case-insensitive LIKE, upserts that need it) is asked of
// Dialect. Nothing above this layer knows which backend it talks to.
//
// Thread safety: a Database is shared by all threads of a process. Read() and Write() may be
// called concurrently from any thread; each call gets its own connection for its duration.
// A Transaction must not outlive the callback it was passed to, nor be shared between threads.
//
// Concurrency and durability: SQLite runs in WAL mode with one writer connection (writers in this
// process queue on a mutex; writers in other processes wait through busy_timeout and a retry
// loop), so no caller ever sees "database is locked"; it gets Unavailable only after
// Options::busy_timeout_ms of continuous contention. PostgreSQL transactions that fail with a
// serialization failure or deadlock are retried the same way. A Write() that returns Ok has
// committed: with SQLite's synchronous=FULL (the default here) it survives power loss.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::store {

// A SQL value. NULL is std::monostate. Booleans are stored as int64 0/1 on both backends.
// Doubles: SQLite turns NaN into NULL, so the schema keeps an is_nan column where NaN matters.
using Value = std::variant<std::monostate, int64_t, double, std::string>;

inline Value Null() { return std::monostate{}; }

// Rows returned by a query; values are typed by what the backend returned (SQLite's storage
// class; PostgreSQL's column type: int2/4/8 -> int64, float4/8/numeric -> double, else string).
class Rows {
 public:
  Rows() = default;
  Rows(std::vector<std::string> columns, std::vector<std::vector<Value>> rows)
      : columns_(std::move(columns)), rows_(std::move(rows)) {}

  size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  const std::vector<std::string>& columns() const { return columns_; }
  const std::vector<Value>& row(size_t i) const { return rows_[i]; }
  const Value& at(size_t row, size_t column) const { return rows_[row][column]; }

  // Typed accessors; NULL yields the default (0, 0.0, "") or nullopt for the Opt* forms.
  int64_t Int(size_t row, size_t column) const;
  double Double(size_t row, size_t column) const;
  std::string Text(size_t row, size_t column) const;
  bool IsNull(size_t row, size_t column) const;
  std::optional<int64_t> OptInt(size_t row, size_t column) const;
  std::optional<std::string> OptText(size_t row, size_t column) const;

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<Value>> rows_;
};

enum class Backend { kSqlite, kPostgres };

// The few places where the two SQL dialects differ.
class Dialect {
 public:
  explicit Dialect(Backend backend) : backend_(backend) {}
  Backend backend() const { return backend_; }
  // `lhs LIKE rhs` that is case-sensitive on both backends (SQLite's LIKE is not, by default;
  // connections set PRAGMA case_sensitive_like=ON). Backslash escapes % and _ on both.
  std::string Like(std::string_view lhs, std::string_view rhs) const;
  // Case-insensitive LIKE.
  std::string ILike(std::string_view lhs, std::string_view rhs) const;

 private:
  Backend backend_;
};

// One transaction on one connection. Statements run in order; the callback's return decides
// commit (Ok) or rollback (anything else). A failed statement ends the transaction on both
// backends (as PostgreSQL does natively): later statements fail and the transaction rolls back
// with the first error, so write `INSERT ... ON CONFLICT` rather than "insert and check the error".
// PostgreSQL write transactions run SERIALIZABLE, so read-then-write code (MAX(version) + 1) is
// safe there as it is under SQLite's single writer; serialization failures rerun the callback.
class Transaction {
 public:
  virtual ~Transaction() = default;

  // Runs a statement that returns rows.
  virtual Result<Rows> Query(std::string_view sql, const std::vector<Value>& params = {}) = 0;
  // Runs a statement and returns the number of rows it changed.
  virtual Result<int64_t> Exec(std::string_view sql, const std::vector<Value>& params = {}) = 0;
  // Runs one statement many times with different parameters (a prepared statement reused),
  // e.g. a batch of 1,000 metric rows. Returns the total rows changed.
  virtual Result<int64_t> ExecMany(std::string_view sql,
                                   const std::vector<std::vector<Value>>& param_rows) = 0;

  // The next value of a named counter (ids for experiments), allocated inside this transaction.
  virtual Result<int64_t> NextSequenceValue(std::string_view name) = 0;

  virtual const Dialect& dialect() const = 0;
};

// How far an acknowledged write must survive (DESIGN.md, Storage). Every write survives kill -9 of
// any kiln process; kPowerLoss writes also survive power loss (SQLite synchronous=FULL, an fsync of
// the WAL per commit; PostgreSQL's synchronous_commit as configured). kProcessCrash writes skip
// that fsync (SQLite synchronous=NORMAL; PostgreSQL synchronous_commit=off for the transaction)
// and may lose their last moments on power loss: metric, param and tag logging.
enum class Durability { kPowerLoss, kProcessCrash };

struct Options {
  // How long a write waits for other writers (other processes, or serialization retries) before
  // giving up with Unavailable.
  int busy_timeout_ms = 30000;
  // PostgreSQL: connections kept open in the pool. SQLite: reader connections.
  int pool_size = 8;
  // true: every write is kPowerLoss, whatever it asks for (the `--sync full` setting).
  bool sync_full = false;
  // SQLite, for long-lived processes (kiln server): commits do not copy the WAL back into the
  // database file themselves (SQLite's automatic checkpoint, every 1,000 pages, in whichever
  // commit crosses it); a background thread does it, so no request waits for one. A commit still
  // checkpoints itself if the WAL passes 16,000 pages (64 MB) regardless.
  bool background_checkpoint = false;
  // SQLite, for long-lived processes: the writer's page cache, in KiB (0: SQLite's 2 MB). The
  // random-key indexes of a large store (run ids, chunk ids) miss a small cache on most inserts.
  int64_t writer_cache_kib = 0;
  // SQLite: bytes of the database file every connection reads through a memory map (0: none).
  // Readers then share the kernel's page cache instead of each copying pages into its own.
  int64_t mmap_bytes = 0;
};

class Database {
 public:
  virtual ~Database() = default;

  // Opens (creating if needed) and migrates to the newest schema.
  //   "sqlite:///abs/path/kiln.db", "sqlite:relative.db", a plain path ending in .db,
  //   "postgresql://user[:password]@host[:port]/db[?...]" or "postgres://...".
  static Result<std::unique_ptr<Database>> Open(const std::string& uri, Options options = {});

  virtual Backend backend() const = 0;
  virtual const Dialect& dialect() const = 0;

  // Runs `body` in a write transaction, retrying the whole callback on busy/serialization errors,
  // so `body` must be safe to run more than once (no side effects outside the transaction).
  virtual Status Write(const std::function<Status(Transaction&)>& body,
                       Durability durability) = 0;
  Status Write(const std::function<Status(Transaction&)>& body) {
    return Write(body, Durability::kPowerLoss);
  }
  // Runs `body` in a read-only transaction that sees one consistent snapshot.
  virtual Status Read(const std::function<Status(Transaction&)>& body) = 0;

  // The schema version now in force (the highest applied migration).
  virtual Result<int64_t> SchemaVersion() = 0;

  // The URI with any password masked, for logs and `kiln status`.
  virtual std::string DisplayUri() const = 0;
};

}  // namespace kiln::store
