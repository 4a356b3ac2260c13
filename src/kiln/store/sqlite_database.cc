// The SQLite backend: WAL, one writer connection per process behind a mutex, a pool of readers.
//
// Writers of this process queue on writer_mutex_; writers of other processes are waited for by
// SQLite's busy handler and, past it, by retrying the whole callback until busy_timeout_ms has
// elapsed. Writes start with BEGIN IMMEDIATE, so a write transaction never has to upgrade a read
// lock (the source of SQLITE_BUSY deadlocks in WAL mode). Reads use BEGIN DEFERRED on a reader
// connection: the first SELECT fixes the snapshot that every later statement of the callback sees.
#include <sqlite3.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "kiln/core/log.h"
#include "kiln/store/database_internal.h"

namespace kiln::store::internal {
namespace {

// Prepared statements kept per connection; past this many distinct SQL texts (generated search
// queries) the cache is emptied rather than grown without bound.
constexpr size_t kMaxCachedStatements = 256;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>()(text); }
};

bool IsBusy(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

// Maps a SQLite result code to kiln's error model. Busy is Unavailable; the transaction layer
// retries it and only reports it once busy_timeout_ms has passed.
Status SqliteStatus(sqlite3* db, int rc, std::string_view sql) {
  std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return AlreadyExists(message);
      }
      return InvalidArgument(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable("database is busy: " + message);
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
      return IoError("SQLite: " + message);
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return InvalidArgument("SQLite: " + message);
    default:
      return Internal("SQLite: " + message + " (in: " + std::string(sql.substr(0, 200)) + ")");
  }
}

// One sqlite3 handle and its prepared statements. Used by one thread at a time (the owner holds
// the writer mutex or a reader lease), so it needs no lock of its own.
class SqliteConnection {
 public:
  ~SqliteConnection() {
    for (auto& [sql, statement] : statements_) sqlite3_finalize(statement);
    sqlite3_close_v2(db_);
  }

  static Result<std::unique_ptr<SqliteConnection>> Open(const std::string& path,
                                                        const Options& options, bool writer) {
    sqlite3* db = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    auto connection = std::unique_ptr<SqliteConnection>(new SqliteConnection(db));
    if (rc != SQLITE_OK) {
      return IoError("cannot open SQLite database '" + path + "': " +
                     (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)) +
                     " (does its folder exist and is it writable?)");
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, options.busy_timeout_ms);
    // Writes start at FULL; Write() lowers it per transaction for kProcessCrash writes.
    std::string pragmas =
        "PRAGMA foreign_keys=ON; PRAGMA case_sensitive_like=ON; PRAGMA synchronous=FULL;";
    // Switching to WAL needs a lock; several processes opening a fresh file race for it.
    if (writer) pragmas = "PRAGMA journal_mode=WAL; " + pragmas;
    if (!writer) pragmas += " PRAGMA query_only=ON;";
    if (writer && options.writer_cache_kib > 0) {
      pragmas += " PRAGMA cache_size=-" + std::to_string(options.writer_cache_kib) + ";";
    }
    if (options.mmap_bytes > 0) {
      pragmas += " PRAGMA mmap_size=" + std::to_string(options.mmap_bytes) + ";";
    }
    Backoff backoff(options.busy_timeout_ms);
    for (;;) {
      rc = sqlite3_exec(db, pragmas.c_str(), nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) break;
      if (!IsBusy(rc) || !backoff.Wait()) {
        return SqliteStatus(db, rc, pragmas).WithContext("configuring SQLite database '" + path +
                                                         "'");
      }
    }
    return connection;
  }

  sqlite3* handle() { return db_; }

  // A prepared statement for `sql`, reset and unbound, owned by this connection.
  Result<sqlite3_stmt*> Prepare(std::string_view sql) {
    if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
    if (statements_.size() >= kMaxCachedStatements) {
      for (auto& [text, statement] : statements_) sqlite3_finalize(statement);
      statements_.clear();
    }
    sqlite3_stmt* statement = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &statement, &tail);
    if (rc != SQLITE_OK) return SqliteStatus(db_, rc, sql);
    if (statement == nullptr) return InvalidArgument("empty SQL statement");
    if (std::string_view(tail, sql.data() + sql.size() - tail).find_first_not_of(" \t\r\n;") !=
        std::string_view::npos) {
      sqlite3_finalize(statement);
      return InvalidArgument("one SQL statement per call, got more: " +
                             std::string(sql.substr(0, 200)));
    }
    statements_.emplace(std::string(sql), statement);
    return statement;
  }

  // Runs a statement without parameters or results (BEGIN, COMMIT, ROLLBACK); returns the rc.
  int Simple(std::string_view sql) {
    auto statement = Prepare(sql);
    if (!statement.ok()) return SQLITE_ERROR;
    int rc = sqlite3_step(*statement);
    sqlite3_reset(*statement);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
  }

  void RollbackIfOpen() {
    if (!sqlite3_get_autocommit(db_)) Simple("ROLLBACK");
  }

 private:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*, StringHash, std::equal_to<>> statements_;
};

// Resets a statement when it goes out of scope, so a cached statement never holds a read
// snapshot or bound text past its use.
class StatementUse {
 public:
  explicit StatementUse(sqlite3_stmt* statement) : statement_(statement) {}
  ~StatementUse() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
  }
  StatementUse(const StatementUse&) = delete;
  StatementUse& operator=(const StatementUse&) = delete;

 private:
  sqlite3_stmt* statement_;
};

class SqliteTransaction : public Transaction {
 public:
  SqliteTransaction(SqliteConnection& connection, const Dialect& dialect)
      : connection_(connection), dialect_(dialect) {}

  Result<Rows> Query(std::string_view sql, const std::vector<Value>& params) override {
    KILN_RETURN_IF_ERROR(CheckUsable());
    KILN_ASSIGN_OR_RETURN(sqlite3_stmt * statement, PrepareAndBind(sql, params));
    StatementUse use(statement);
    int columns = sqlite3_column_count(statement);
    std::vector<std::string> names;
    names.reserve(columns);
    for (int c = 0; c < columns; ++c) names.emplace_back(sqlite3_column_name(statement, c));
    std::vector<std::vector<Value>> rows;
    for (;;) {
      int rc = sqlite3_step(statement);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Fail(rc, sql);
      std::vector<Value>& row = rows.emplace_back();
      row.reserve(columns);
      for (int c = 0; c < columns; ++c) row.push_back(ColumnValue(statement, c));
    }
    return Rows(std::move(names), std::move(rows));
  }

  Result<int64_t> Exec(std::string_view sql, const std::vector<Value>& params) override {
    KILN_RETURN_IF_ERROR(CheckUsable());
    KILN_ASSIGN_OR_RETURN(sqlite3_stmt * statement, PrepareAndBind(sql, params));
    StatementUse use(statement);
    return Step(statement, sql);
  }

  Result<int64_t> ExecMany(std::string_view sql,
                           const std::vector<std::vector<Value>>& param_rows) override {
    KILN_RETURN_IF_ERROR(CheckUsable());
    if (param_rows.empty()) return int64_t{0};
    // Looked up once; each row only binds, steps and resets.
    auto prepared = connection_.Prepare(sql);
    if (!prepared.ok()) {
      if (prepared.status().code() == StatusCode::kUnavailable) busy_ = true;
      return FailWith(prepared.status());
    }
    sqlite3* db = connection_.handle();
    const int64_t before = sqlite3_total_changes64(db);
    for (const std::vector<Value>& params : param_rows) {
      KILN_RETURN_IF_ERROR(Bind(*prepared, params, sql));
      StatementUse use(*prepared);
      for (;;) {
        int rc = sqlite3_step(*prepared);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return Fail(rc, sql);
      }
    }
    return sqlite3_total_changes64(db) - before;
  }

  Result<int64_t> NextSequenceValue(std::string_view name) override {
    return internal::NextSequenceValue(*this, name);
  }

  const Dialect& dialect() const override { return dialect_; }

  bool busy() const { return busy_; }
  const Status& first_error() const { return first_error_; }

 private:
  // Statements after a failed one are refused, as PostgreSQL does, so callers behave the same
  // on both backends: a failed statement ends the transaction.
  Status CheckUsable() const {
    if (first_error_.ok()) return Status::Ok();
    return Status(first_error_.code(),
                  "transaction aborted by an earlier error: " + first_error_.message());
  }

  Status Fail(int rc, std::string_view sql) {
    Status status = SqliteStatus(connection_.handle(), rc, sql);
    if (first_error_.ok()) first_error_ = status;
    if (IsBusy(rc)) busy_ = true;
    return status;
  }

  Status FailWith(Status status) {
    if (first_error_.ok()) first_error_ = status;
    return status;
  }

  Result<sqlite3_stmt*> PrepareAndBind(std::string_view sql, const std::vector<Value>& params) {
    auto prepared = connection_.Prepare(sql);
    if (!prepared.ok()) {
      if (prepared.status().code() == StatusCode::kUnavailable) busy_ = true;
      return FailWith(prepared.status());
    }
    KILN_RETURN_IF_ERROR(Bind(*prepared, params, sql));
    return *prepared;
  }

  // Binds `params` to a reset statement; on failure the statement is left unbound.
  Status Bind(sqlite3_stmt* statement, const std::vector<Value>& params, std::string_view sql) {
    int expected = sqlite3_bind_parameter_count(statement);
    if (expected != static_cast<int>(params.size())) {
      return FailWith(InvalidArgument("SQL statement expects " + std::to_string(expected) +
                                      " parameters, got " + std::to_string(params.size()) + ": " +
                                      std::string(sql.substr(0, 200))));
    }
    for (int i = 0; i < expected; ++i) {
      const Value& value = params[i];
      int rc = SQLITE_OK;
      if (const auto* integer = std::get_if<int64_t>(&value)) {
        rc = sqlite3_bind_int64(statement, i + 1, *integer);
      } else if (const auto* real = std::get_if<double>(&value)) {
        rc = sqlite3_bind_double(statement, i + 1, *real);  // NaN is stored as NULL
      } else if (const auto* text = std::get_if<std::string>(&value)) {
        // SQLITE_STATIC: `params` outlives the statement's use (StatementUse clears bindings).
        rc = sqlite3_bind_text64(statement, i + 1, text->data(), text->size(), SQLITE_STATIC,
                                 SQLITE_UTF8);
      } else {
        rc = sqlite3_bind_null(statement, i + 1);
      }
      if (rc != SQLITE_OK) {
        sqlite3_clear_bindings(statement);
        return Fail(rc, sql);
      }
    }
    return Status::Ok();
  }

  Result<int64_t> Step(sqlite3_stmt* statement, std::string_view sql) {
    sqlite3* db = connection_.handle();
    int64_t before = sqlite3_total_changes64(db);
    for (;;) {
      int rc = sqlite3_step(statement);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Fail(rc, sql);
    }
    return sqlite3_total_changes64(db) - before;
  }

  static Value ColumnValue(sqlite3_stmt* statement, int column) {
    switch (sqlite3_column_type(statement, column)) {
      case SQLITE_INTEGER:
        return static_cast<int64_t>(sqlite3_column_int64(statement, column));
      case SQLITE_FLOAT:
        return sqlite3_column_double(statement, column);
      case SQLITE_NULL:
        return Null();
      default: {
        const auto* data = static_cast<const char*>(sqlite3_column_blob(statement, column));
        int size = sqlite3_column_bytes(statement, column);
        return data == nullptr ? std::string() : std::string(data, size);
      }
    }
  }

  SqliteConnection& connection_;
  const Dialect& dialect_;
  Status first_error_;
  bool busy_ = false;
};

class SqliteDatabase : public MigratableDatabase {
 public:
  SqliteDatabase(std::string uri, std::string path, Options options,
                 std::unique_ptr<SqliteConnection> writer,
                 std::unique_ptr<SqliteConnection> checkpointer)
      : uri_(std::move(uri)),
        path_(std::move(path)),
        options_(options),
        dialect_(Backend::kSqlite),
        writer_(std::move(writer)),
        checkpointer_(std::move(checkpointer)) {
    if (checkpointer_ != nullptr) {
      // Replaces SQLite's automatic checkpoint on this connection (sqlite3_wal_autocheckpoint).
      sqlite3_wal_hook(writer_->handle(), &SqliteDatabase::AfterCommit, this);
      checkpoint_thread_ = std::thread([this] { CheckpointLoop(); });
    }
  }

  ~SqliteDatabase() override {
    if (checkpoint_thread_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(checkpoint_mutex_);
        checkpoint_stop_ = true;
      }
      checkpoint_wanted_.notify_one();
      checkpoint_thread_.join();
    }
  }

  Backend backend() const override { return Backend::kSqlite; }
  const Dialect& dialect() const override { return dialect_; }
  std::string DisplayUri() const override { return uri_; }

  Status Write(const std::function<Status(Transaction&)>& body, Durability durability) override {
    std::lock_guard<std::mutex> lock(writer_mutex_);
    // synchronous applies per connection and cannot change inside a transaction: set it between
    // transactions, only when it differs from what the writer has now.
    bool want_full = options_.sync_full || durability == Durability::kPowerLoss;
    if (want_full != writer_sync_full_) {
      int rc = writer_->Simple(want_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
      if (rc != SQLITE_OK) return SqliteStatus(writer_->handle(), rc, "PRAGMA synchronous");
      writer_sync_full_ = want_full;
    }
    return RunTransaction(*writer_, "BEGIN IMMEDIATE", body);
  }

  Status MigrationWrite(const std::function<Status(Transaction&)>& body) override {
    return Write(body, Durability::kPowerLoss);
  }

  Status Read(const std::function<Status(Transaction&)>& body) override {
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> reader, AcquireReader());
    Status status = RunTransaction(*reader, "BEGIN DEFERRED", body);
    ReleaseReader(std::move(reader));
    return status;
  }

  Result<int64_t> SchemaVersion() override {
    int64_t version = 0;
    KILN_RETURN_IF_ERROR(Read([&](Transaction& tx) -> Status {
      KILN_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT MAX(version) FROM schema_migrations"));
      version = rows.Int(0, 0);
      return Status::Ok();
    }));
    return version;
  }

 private:
  // Runs `body` between `begin` and COMMIT, retrying the whole of it while the database is busy.
  Status RunTransaction(SqliteConnection& connection, std::string_view begin,
                        const std::function<Status(Transaction&)>& body) {
    Backoff backoff(options_.busy_timeout_ms);
    for (;;) {
      sqlite3_busy_timeout(connection.handle(), std::max(backoff.RemainingMillis(), 1));
      int rc = connection.Simple(begin);
      if (rc != SQLITE_OK) {
        if (IsBusy(rc) && backoff.Wait()) continue;
        return BeginFailure(connection, rc, begin);
      }
      SqliteTransaction tx(connection, dialect_);
      Status status = body(tx);
      if (tx.busy()) {
        connection.RollbackIfOpen();
        if (backoff.Wait()) continue;
        return BusyStatus();
      }
      if (!tx.first_error().ok()) {
        // The body returned Ok after a failed statement; committing would hide the failure.
        connection.RollbackIfOpen();
        return status.ok() ? tx.first_error() : status;
      }
      if (!status.ok()) {
        connection.RollbackIfOpen();
        return status;
      }
      rc = connection.Simple("COMMIT");
      if (rc == SQLITE_OK) return Status::Ok();
      connection.RollbackIfOpen();
      if (IsBusy(rc) && backoff.Wait()) continue;
      if (IsBusy(rc)) return BusyStatus();
      return SqliteStatus(connection.handle(), rc, "COMMIT");
    }
  }

  Status BeginFailure(SqliteConnection& connection, int rc, std::string_view begin) {
    if (IsBusy(rc)) return BusyStatus();
    return SqliteStatus(connection.handle(), rc, begin);
  }

  Status BusyStatus() const {
    return Unavailable("database is busy: " + path_ + " stayed locked by other writers for " +
                       std::to_string(options_.busy_timeout_ms) + " ms; try again later");
  }

  Result<std::unique_ptr<SqliteConnection>> AcquireReader() {
    {
      std::unique_lock<std::mutex> lock(readers_mutex_);
      readers_available_.wait(lock, [&] {
        return !idle_readers_.empty() || open_readers_ < std::max(options_.pool_size, 1);
      });
      if (!idle_readers_.empty()) {
        std::unique_ptr<SqliteConnection> reader = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return reader;
      }
      ++open_readers_;
    }
    auto opened = SqliteConnection::Open(path_, options_, /*writer=*/false);
    if (!opened.ok()) {
      std::lock_guard<std::mutex> lock(readers_mutex_);
      --open_readers_;
      readers_available_.notify_one();
    }
    return opened;
  }

  void ReleaseReader(std::unique_ptr<SqliteConnection> reader) {
    std::lock_guard<std::mutex> lock(readers_mutex_);
    idle_readers_.push_back(std::move(reader));
    readers_available_.notify_one();
  }

  // The WAL pages past which the background thread checkpoints (SQLite's own default), and past
  // which a commit does it itself because the thread has not kept up.
  static constexpr int kCheckpointPages = 1000;
  static constexpr int kInlineCheckpointPages = 16000;

  // sqlite3_wal_hook: runs on the writer's thread after each commit, `pages` the WAL's length.
  static int AfterCommit(void* self, sqlite3* db, const char* name, int pages) {
    auto* database = static_cast<SqliteDatabase*>(self);
    if (pages >= kInlineCheckpointPages) {
      sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (pages >= kCheckpointPages) {
      {
        std::lock_guard<std::mutex> lock(database->checkpoint_mutex_);
        database->checkpoint_due_ = true;
      }
      database->checkpoint_wanted_.notify_one();
    }
    return SQLITE_OK;
  }

  // Copies the WAL back into the database whenever a commit asks for it, on its own connection. A
  // PASSIVE checkpoint waits for no reader or writer: it copies what it can now, and the WAL
  // starts over once a checkpoint has copied all of it and no reader still needs it.
  void CheckpointLoop() {
    std::unique_lock<std::mutex> lock(checkpoint_mutex_);
    for (;;) {
      checkpoint_wanted_.wait(lock, [&] { return checkpoint_stop_ || checkpoint_due_; });
      if (checkpoint_stop_) return;
      checkpoint_due_ = false;
      lock.unlock();
      int rc = sqlite3_wal_checkpoint_v2(checkpointer_->handle(), nullptr,
                                         SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      if (rc != SQLITE_OK && !IsBusy(rc)) {
        LogWarning("background checkpoint of " + path_ + ": " +
                   sqlite3_errmsg(checkpointer_->handle()));
      }
      lock.lock();
    }
  }

  const std::string uri_;
  const std::string path_;
  const Options options_;
  const Dialect dialect_;

  std::mutex writer_mutex_;  // guards writer_ (one write transaction at a time in this process)
  bool writer_sync_full_ = true;  // guarded by writer_mutex_: the writer's synchronous setting
  std::unique_ptr<SqliteConnection> writer_;

  std::mutex readers_mutex_;  // guards idle_readers_ and open_readers_
  std::condition_variable readers_available_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_readers_;
  int open_readers_ = 0;  // idle plus leased

  // Background checkpoints (Options::background_checkpoint), else all null/idle.
  std::unique_ptr<SqliteConnection> checkpointer_;
  std::mutex checkpoint_mutex_;  // guards the two flags
  std::condition_variable checkpoint_wanted_;
  bool checkpoint_due_ = false;
  bool checkpoint_stop_ = false;
  std::thread checkpoint_thread_;  // last: started after everything it uses
};

}  // namespace

Result<std::unique_ptr<MigratableDatabase>> OpenSqlite(const std::string& uri,
                                                       const std::string& path, Options options) {
  std::error_code error;
  std::string absolute = std::filesystem::absolute(path, error).string();
  if (error) absolute = path;
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> writer,
                        SqliteConnection::Open(absolute, options, /*writer=*/true));
  std::unique_ptr<SqliteConnection> checkpointer;
  if (options.background_checkpoint) {
    KILN_ASSIGN_OR_RETURN(checkpointer,
                          SqliteConnection::Open(absolute, options, /*writer=*/true));
  }
  return std::unique_ptr<MigratableDatabase>(std::make_unique<SqliteDatabase>(
      uri, absolute, options, std::move(writer), std::move(checkpointer)));
}

}  // namespace kiln::store::internal
