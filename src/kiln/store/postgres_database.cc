// The PostgreSQL backend (libpq): a lazily filled pool of connections, prepared statements cached
// per connection, `?` placeholders rewritten to $1..$n, parameters and results in text format.
//
// Isolation: Write() runs SERIALIZABLE so that callbacks behave as they do on SQLite, where write
// transactions run one at a time (a read-then-insert such as "next version = max + 1" cannot race).
// Serialization failures and deadlocks (SQLSTATE 40001, 40P01) and lock waits past the busy
// timeout (55P03) roll back and rerun the whole callback until busy_timeout_ms has passed.
// Read() runs REPEATABLE READ READ ONLY: one snapshot, never a serialization failure.
//
// A connection the server dropped (restart, idle kill) is noticed when a statement fails or by
// PQstatus when it is next leased; it is reset, and a transaction that had not reached COMMIT is
// rerun on a fresh connection.
#include <postgresql/libpq-fe.h>

#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "kiln/core/log.h"
#include "kiln/store/database_internal.h"

namespace kiln::store::internal {
namespace {

constexpr size_t kMaxCachedStatements = 256;
// Rows of an ExecMany sent per pipeline sync; small enough that the server's replies (about
// 30 bytes a row) never fill the socket buffers while we are still sending.
constexpr size_t kPipelineChunk = 1000;
// pg_advisory_xact_lock key that serialises schema migrations ("kiln" in ASCII).
constexpr int64_t kMigrationLockKey = 0x6b696c6e;

// Type OIDs from PostgreSQL's pg_type.
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kOidOid = 26;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kNumericOid = 1700;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>()(text); }
};

// Rewrites `?` to $1..$n outside quoted strings, quoted identifiers, comments and dollar quotes.
std::string RewritePlaceholders(std::string_view sql, int* count) {
  std::string out;
  out.reserve(sql.size() + 16);
  *count = 0;
  size_t i = 0;
  auto copy_until = [&](std::string_view terminator) {
    size_t end = sql.find(terminator, i);
    end = end == std::string_view::npos ? sql.size() : end + terminator.size();
    out.append(sql.substr(i, end - i));
    i = end;
  };
  while (i < sql.size()) {
    char c = sql[i];
    if (c == '\'') {
      bool backslash_escapes = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e');
      out.push_back(c);
      ++i;
      while (i < sql.size()) {
        char d = sql[i++];
        out.push_back(d);
        if (backslash_escapes && d == '\\' && i < sql.size()) {
          out.push_back(sql[i++]);
        } else if (d == '\'') {
          break;  // a doubled '' closes and reopens: handled by the next loop turn
        }
      }
    } else if (c == '"') {
      out.push_back(c);
      ++i;
      copy_until("\"");
    } else if (c == '-' && sql.substr(i, 2) == "--") {
      copy_until("\n");
    } else if (c == '/' && sql.substr(i, 2) == "/*") {
      copy_until("*/");
    } else if (c == '$') {
      size_t tag_end = i + 1;
      while (tag_end < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[tag_end])) ||
                                      sql[tag_end] == '_')) {
        ++tag_end;
      }
      bool is_tag = tag_end < sql.size() && sql[tag_end] == '$' &&
                    (tag_end == i + 1 || !std::isdigit(static_cast<unsigned char>(sql[i + 1])));
      if (!is_tag) {
        out.push_back(c);
        ++i;
        continue;
      }
      std::string_view tag = sql.substr(i, tag_end + 1 - i);
      out.append(tag);
      i = tag_end + 1;
      copy_until(tag);
    } else if (c == '?') {
      out += "$" + std::to_string(++*count);
      ++i;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

// Parameters in libpq's text format. Doubles are written in the shortest form that reads back
// to the same bits; NaN and the infinities in PostgreSQL's spelling.
class TextParams {
 public:
  explicit TextParams(const std::vector<Value>& params) {
    texts_.resize(params.size());
    pointers_.resize(params.size(), nullptr);
    for (size_t k = 0; k < params.size(); ++k) {
      const Value& value = params[k];
      if (const auto* integer = std::get_if<int64_t>(&value)) {
        texts_[k] = std::to_string(*integer);
      } else if (const auto* real = std::get_if<double>(&value)) {
        if (std::isnan(*real)) {
          texts_[k] = "NaN";
        } else if (std::isinf(*real)) {
          texts_[k] = *real > 0 ? "Infinity" : "-Infinity";
        } else {
          char buffer[64];
          auto result = std::to_chars(buffer, buffer + sizeof(buffer), *real);
          texts_[k].assign(buffer, result.ptr);
        }
      } else if (const auto* text = std::get_if<std::string>(&value)) {
        pointers_[k] = text->c_str();
        continue;
      } else {
        continue;  // NULL: a null pointer
      }
      pointers_[k] = texts_[k].c_str();
    }
  }
  int size() const { return static_cast<int>(pointers_.size()); }
  const char* const* values() const { return pointers_.data(); }

 private:
  std::vector<std::string> texts_;
  std::vector<const char*> pointers_;
};

Value CellValue(const PGresult* result, int row, int column) {
  if (PQgetisnull(result, row, column)) return Null();
  const char* text = PQgetvalue(result, row, column);
  int length = PQgetlength(result, row, column);
  switch (PQftype(result, column)) {
    case kInt8Oid:
    case kInt2Oid:
    case kInt4Oid:
    case kOidOid: {
      int64_t value = 0;
      std::from_chars(text, text + length, value);
      return value;
    }
    case kFloat4Oid:
    case kFloat8Oid:
    case kNumericOid: {
      double value = 0;
      auto parsed = std::from_chars(text, text + length, value);
      if (parsed.ec == std::errc::result_out_of_range) value = std::strtod(text, nullptr);
      return value;
    }
    case kBoolOid:
      return int64_t{text[0] == 't' ? 1 : 0};
    default:
      return std::string(text, length);
  }
}

// What the transaction loop should do after a failed statement.
enum class Failure { kFinal, kRetry, kConnectionLost };

struct PgError {
  Status status;
  Failure failure = Failure::kFinal;
};

PgError ErrorFrom(PGconn* connection, const PGresult* result, std::string_view sql,
                  int busy_timeout_ms) {
  const char* sqlstate_field =
      result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  if (PQstatus(connection) != CONNECTION_OK || sqlstate_field == nullptr) {
    std::string message = result != nullptr ? PQresultErrorMessage(result) : "";
    if (message.empty()) message = PQerrorMessage(connection);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return {Unavailable("lost the connection to PostgreSQL: " + message),
            Failure::kConnectionLost};
  }
  std::string sqlstate = sqlstate_field;
  std::string message = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  if (const char* detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL)) {
    message += " (" + std::string(detail) + ")";
  }
  if (sqlstate == "40001" || sqlstate == "40P01") {
    return {Unavailable("database is busy: concurrent transactions kept conflicting for " +
                        std::to_string(busy_timeout_ms) + " ms (" + message + ")"),
            Failure::kRetry};
  }
  if (sqlstate == "55P03") {
    return {Unavailable("database is busy: rows stayed locked by other writers for " +
                        std::to_string(busy_timeout_ms) + " ms; try again later"),
            Failure::kRetry};
  }
  if (sqlstate == "23505") return {AlreadyExists(message)};
  std::string_view sqlclass = std::string_view(sqlstate).substr(0, 2);
  if (sqlclass == "23" || sqlclass == "22") return {InvalidArgument(message)};
  if (sqlclass == "08" || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
    return {Unavailable("lost the connection to PostgreSQL: " + message),
            Failure::kConnectionLost};
  }
  if (sqlclass == "53") return {Unavailable("PostgreSQL is out of resources: " + message)};
  return {Internal("PostgreSQL: " + message + " [SQLSTATE " + sqlstate +
                   "] (in: " + std::string(sql.substr(0, 200)) + ")")};
}

struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

void IgnoreNotice(void*, const char*) {}

// One libpq connection and its prepared statements; used by one thread at a time (a lease).
class PgConnection {
 public:
  struct Prepared {
    std::string name;
    int parameter_count;
  };

  ~PgConnection() { PQfinish(connection_); }

  static Result<std::unique_ptr<PgConnection>> Connect(const std::string& uri) {
    auto connection = std::unique_ptr<PgConnection>(new PgConnection(PQconnectdb(uri.c_str())));
    if (connection->connection_ == nullptr) return Internal("libpq could not allocate a connection");
    if (PQstatus(connection->connection_) != CONNECTION_OK) {
      std::string message = PQerrorMessage(connection->connection_);
      while (!message.empty() && message.back() == '\n') message.pop_back();
      return Unavailable("cannot connect to PostgreSQL at " + RedactUri(uri) + ": " + message);
    }
    KILN_RETURN_IF_ERROR(connection->Setup());
    return connection;
  }

  PGconn* handle() { return connection_; }
  bool healthy() const { return PQstatus(connection_) == CONNECTION_OK; }

  // Reconnects with the same parameters; server-side prepared statements are gone after it.
  bool Reset() {
    prepared_.clear();
    PQreset(connection_);
    return healthy() && Setup().ok();
  }

  Result<const Prepared*> Prepare(std::string_view sql, int busy_timeout_ms, PgError* error) {
    if (auto it = prepared_.find(sql); it != prepared_.end()) return &it->second;
    if (prepared_.size() >= kMaxCachedStatements) {
      PgResult(PQexec(connection_, "DEALLOCATE ALL"));
      prepared_.clear();
    }
    int count = 0;
    std::string rewritten = RewritePlaceholders(sql, &count);
    std::string name = "kiln_" + std::to_string(next_statement_++);
    PgResult result(PQprepare(connection_, name.c_str(), rewritten.c_str(), 0, nullptr));
    if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
      *error = ErrorFrom(connection_, result.get(), sql, busy_timeout_ms);
      return error->status;
    }
    auto [it, inserted] = prepared_.emplace(std::string(sql), Prepared{std::move(name), count});
    return &it->second;
  }

  // Runs a parameterless command (BEGIN, COMMIT, ...) with the simple protocol.
  PgResult Command(const char* sql) { return PgResult(PQexec(connection_, sql)); }

 private:
  explicit PgConnection(PGconn* connection) : connection_(connection) {
    if (connection_ != nullptr) PQsetNoticeProcessor(connection_, IgnoreNotice, nullptr);
  }

  Status Setup() {
    PQsetClientEncoding(connection_, "UTF8");
    // Statements are prepared once per connection. After five executions PostgreSQL may switch a
    // prepared statement to a generic plan, which for search-runs (a filter on a metric and a
    // param of skewed selectivity) joins every row of the param instead of using the bound
    // values: measured 8x slower on 100,000 runs. Planning with the values costs far less.
    // No parallel workers: kiln's statements are short, mostly with a LIMIT, and starting a
    // worker costs more than they do (the filtered search over 100,000 runs, a Gather Merge of
    // one worker: 90-140 ms on a busy 2-core machine, 30-50 ms without); a server's parallelism
    // comes from its concurrent requests instead.
    PgResult result(PQexec(connection_,
                           "SET client_min_messages = warning; "
                           "SET plan_cache_mode = force_custom_plan; "
                           "SET max_parallel_workers_per_gather = 0"));
    if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
      return Unavailable(std::string("configuring PostgreSQL session: ") +
                         PQresultErrorMessage(result.get()));
    }
    return Status::Ok();
  }

  PGconn* connection_;
  std::unordered_map<std::string, Prepared, StringHash, std::equal_to<>> prepared_;
  int64_t next_statement_ = 0;
};

class PgTransaction : public Transaction {
 public:
  PgTransaction(PgConnection& connection, const Dialect& dialect, int busy_timeout_ms)
      : connection_(connection), dialect_(dialect), busy_timeout_ms_(busy_timeout_ms) {}

  Result<Rows> Query(std::string_view sql, const std::vector<Value>& params) override {
    KILN_ASSIGN_OR_RETURN(PgResult result, Run(sql, params));
    int fields = PQnfields(result.get());
    int tuples = PQntuples(result.get());
    std::vector<std::string> columns;
    columns.reserve(fields);
    for (int c = 0; c < fields; ++c) columns.emplace_back(PQfname(result.get(), c));
    std::vector<std::vector<Value>> rows(tuples);
    for (int r = 0; r < tuples; ++r) {
      rows[r].reserve(fields);
      for (int c = 0; c < fields; ++c) rows[r].push_back(CellValue(result.get(), r, c));
    }
    return Rows(std::move(columns), std::move(rows));
  }

  Result<int64_t> Exec(std::string_view sql, const std::vector<Value>& params) override {
    KILN_ASSIGN_OR_RETURN(PgResult result, Run(sql, params));
    return ChangedRows(result.get());
  }

  // Sends the rows through libpq's pipeline mode: one round trip per kPipelineChunk rows.
  Result<int64_t> ExecMany(std::string_view sql,
                           const std::vector<std::vector<Value>>& param_rows) override {
    KILN_RETURN_IF_ERROR(CheckUsable());
    if (param_rows.empty()) return int64_t{0};
    KILN_ASSIGN_OR_RETURN(const PgConnection::Prepared* prepared, Prepare(sql));
    for (const std::vector<Value>& params : param_rows) {
      KILN_RETURN_IF_ERROR(CheckParameterCount(*prepared, params, sql));
    }
    PGconn* connection = connection_.handle();
    if (PQenterPipelineMode(connection) != 1) {
      return Fail({Internal(std::string("libpq pipeline mode: ") + PQerrorMessage(connection))});
    }
    int64_t changed = 0;
    for (size_t start = 0; start < param_rows.size() && first_error_.ok();
         start += kPipelineChunk) {
      size_t end = std::min(param_rows.size(), start + kPipelineChunk);
      size_t sent = 0;
      for (size_t k = start; k < end; ++k, ++sent) {
        TextParams text(param_rows[k]);
        if (PQsendQueryPrepared(connection, prepared->name.c_str(), text.size(), text.values(),
                                nullptr, nullptr, 0) != 1) {
          (void)Fail(ErrorFrom(connection, nullptr, sql, busy_timeout_ms_));
          break;
        }
      }
      if (PQpipelineSync(connection) != 1) {
        (void)Fail(ErrorFrom(connection, nullptr, sql, busy_timeout_ms_));
        break;
      }
      // Each query yields its result then a null; the sync yields PGRES_PIPELINE_SYNC.
      int consecutive_nulls = 0;
      for (;;) {
        PgResult result(PQgetResult(connection));
        if (result == nullptr) {
          if (++consecutive_nulls > 1 || !connection_.healthy()) {
            (void)Fail(ErrorFrom(connection, nullptr, sql, busy_timeout_ms_));
            break;
          }
          continue;
        }
        consecutive_nulls = 0;
        ExecStatusType status = PQresultStatus(result.get());
        if (status == PGRES_PIPELINE_SYNC) break;
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
          changed += ChangedRows(result.get());
        } else if (status != PGRES_PIPELINE_ABORTED) {
          (void)Fail(ErrorFrom(connection, result.get(), sql, busy_timeout_ms_));
        }
      }
    }
    PQexitPipelineMode(connection);
    if (!first_error_.ok()) return first_error_;
    return changed;
  }

  Result<int64_t> NextSequenceValue(std::string_view name) override {
    return internal::NextSequenceValue(*this, name);
  }

  const Dialect& dialect() const override { return dialect_; }

  Failure failure() const { return failure_; }
  const Status& first_error() const { return first_error_; }

 private:
  Status CheckUsable() const {
    if (first_error_.ok()) return Status::Ok();
    return Status(first_error_.code(),
                  "transaction aborted by an earlier error: " + first_error_.message());
  }

  Status Fail(PgError error) {
    if (first_error_.ok()) {
      first_error_ = error.status;
      failure_ = error.failure;
    }
    return error.status;
  }

  Result<const PgConnection::Prepared*> Prepare(std::string_view sql) {
    PgError error;
    auto prepared = connection_.Prepare(sql, busy_timeout_ms_, &error);
    if (!prepared.ok()) return Fail(error);
    return *prepared;
  }

  Status CheckParameterCount(const PgConnection::Prepared& prepared,
                             const std::vector<Value>& params, std::string_view sql) {
    if (prepared.parameter_count == static_cast<int>(params.size())) return Status::Ok();
    return Fail({InvalidArgument("SQL statement expects " +
                                 std::to_string(prepared.parameter_count) + " parameters, got " +
                                 std::to_string(params.size()) + ": " +
                                 std::string(sql.substr(0, 200)))});
  }

  Result<PgResult> Run(std::string_view sql, const std::vector<Value>& params) {
    KILN_RETURN_IF_ERROR(CheckUsable());
    KILN_ASSIGN_OR_RETURN(const PgConnection::Prepared* prepared, Prepare(sql));
    KILN_RETURN_IF_ERROR(CheckParameterCount(*prepared, params, sql));
    TextParams text(params);
    PgResult result(PQexecPrepared(connection_.handle(), prepared->name.c_str(), text.size(),
                                   text.values(), nullptr, nullptr, 0));
    ExecStatusType status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      return Fail(ErrorFrom(connection_.handle(), result.get(), sql, busy_timeout_ms_));
    }
    return result;
  }

  static int64_t ChangedRows(const PGresult* result) {
    const char* tuples = PQcmdTuples(const_cast<PGresult*>(result));
    int64_t count = 0;
    std::from_chars(tuples, tuples + std::strlen(tuples), count);
    return count;
  }

  PgConnection& connection_;
  const Dialect& dialect_;
  const int busy_timeout_ms_;
  Status first_error_;
  Failure failure_ = Failure::kFinal;
};

class PostgresDatabase : public MigratableDatabase {
 public:
  PostgresDatabase(std::string uri, Options options, std::unique_ptr<PgConnection> first)
      : uri_(std::move(uri)), options_(options), dialect_(Backend::kPostgres) {
    idle_.push_back(std::move(first));
    open_ = 1;
  }

  Backend backend() const override { return Backend::kPostgres; }
  const Dialect& dialect() const override { return dialect_; }
  std::string DisplayUri() const override { return RedactUri(uri_); }

  Status Write(const std::function<Status(Transaction&)>& body, Durability durability) override {
    if (durability == Durability::kPowerLoss || options_.sync_full) {
      return RunTransaction("BEGIN ISOLATION LEVEL SERIALIZABLE", false, body);
    }
    // The commit returns before the WAL is flushed: a kiln crash loses nothing (the server has
    // the transaction), a crash of the database server may lose its last moments.
    // (Set with BEGIN, in the same round trip.)
    return RunTransaction("BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL synchronous_commit = off",
                          false, body);
  }

  Status MigrationWrite(const std::function<Status(Transaction&)>& body) override {
    return RunTransaction("BEGIN ISOLATION LEVEL READ COMMITTED", true, body);
  }

  Status Read(const std::function<Status(Transaction&)>& body) override {
    return RunTransaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", false, body);
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
  // A connection borrowed from the pool; returned (or dropped if broken) when destroyed.
  class Lease {
   public:
    Lease(PostgresDatabase* pool, std::unique_ptr<PgConnection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    Lease(Lease&& other) noexcept = default;
    ~Lease() {
      if (connection_ != nullptr) pool_->Release(std::move(connection_));
    }
    PgConnection& operator*() { return *connection_; }
    PgConnection* operator->() { return connection_.get(); }

   private:
    PostgresDatabase* pool_;
    std::unique_ptr<PgConnection> connection_;
  };

  Status RunTransaction(const std::string& begin, bool migration_lock,
                        const std::function<Status(Transaction&)>& body) {
    Backoff backoff(options_.busy_timeout_ms);
    for (;;) {
      KILN_ASSIGN_OR_RETURN(Lease lease, Acquire(backoff));
      // Lock waits end at the time left, so a blocked write fails as Unavailable, not hangs.
      std::string start = begin + "; SET LOCAL lock_timeout = " +
                          std::to_string(std::max(backoff.RemainingMillis(), 1));
      if (migration_lock) {
        start += "; SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLockKey) + ")";
      }
      PgResult started = lease->Command(start.c_str());
      ExecStatusType started_status = PQresultStatus(started.get());
      if (started_status != PGRES_COMMAND_OK && started_status != PGRES_TUPLES_OK) {
        PgError error = ErrorFrom(lease->handle(), started.get(), begin, options_.busy_timeout_ms);
        Rollback(*lease);
        if (error.failure != Failure::kFinal && backoff.Wait()) continue;
        return error.status;
      }
      PgTransaction tx(*lease, dialect_, options_.busy_timeout_ms);
      Status status = body(tx);
      if (tx.failure() != Failure::kFinal) {
        Rollback(*lease);
        if (backoff.Wait()) continue;
        return tx.first_error();
      }
      if (!tx.first_error().ok()) {
        // The body returned Ok after a failed statement; PostgreSQL would turn COMMIT into a
        // silent ROLLBACK, so report the failure instead.
        Rollback(*lease);
        return status.ok() ? tx.first_error() : status;
      }
      if (!status.ok()) {
        Rollback(*lease);
        return status;
      }
      PgResult committed = lease->Command("COMMIT");
      if (PQresultStatus(committed.get()) == PGRES_COMMAND_OK) return Status::Ok();
      PgError error = ErrorFrom(lease->handle(), committed.get(), "COMMIT", options_.busy_timeout_ms);
      if (error.failure == Failure::kRetry) {
        Rollback(*lease);
        if (backoff.Wait()) continue;
        return error.status;
      }
      if (error.failure == Failure::kConnectionLost) {
        return Unavailable("lost the connection to PostgreSQL during COMMIT; the transaction may "
                           "or may not have committed: " + error.status.message());
      }
      return error.status;
    }
  }

  static void Rollback(PgConnection& connection) {
    if (connection.healthy() &&
        PQtransactionStatus(connection.handle()) != PQTRANS_IDLE) {
      connection.Command("ROLLBACK");
    }
  }

  Result<Lease> Acquire(const Backoff& backoff) {
    std::unique_ptr<PgConnection> connection;
    {
      std::unique_lock<std::mutex> lock(pool_mutex_);
      bool ready = available_.wait_for(
          lock, std::chrono::milliseconds(std::max(backoff.RemainingMillis(), 1)),
          [&] { return !idle_.empty() || open_ < std::max(options_.pool_size, 1); });
      if (!ready) {
        return Unavailable("database is busy: all " + std::to_string(options_.pool_size) +
                           " PostgreSQL connections stayed in use for " +
                           std::to_string(options_.busy_timeout_ms) + " ms");
      }
      if (!idle_.empty()) {
        connection = std::move(idle_.back());
        idle_.pop_back();
      } else {
        ++open_;
      }
    }
    if (connection == nullptr) {
      auto connected = PgConnection::Connect(uri_);
      if (!connected.ok()) {
        Drop();
        return connected.status();
      }
      connection = std::move(connected).value();
    } else if (!connection->healthy() && !connection->Reset()) {
      std::string message = PQerrorMessage(connection->handle());
      connection.reset();
      Drop();
      return Unavailable("lost the connection to PostgreSQL at " + DisplayUri() +
                         " and could not reconnect: " + message);
    }
    return Lease(this, std::move(connection));
  }

  void Release(std::unique_ptr<PgConnection> connection) {
    if (!connection->healthy() || PQtransactionStatus(connection->handle()) != PQTRANS_IDLE) {
      // Broken or left mid-transaction: reset it now rather than hand it to the next caller.
      if (!connection->Reset()) {
        connection.reset();
        Drop();
        return;
      }
    }
    std::lock_guard<std::mutex> lock(pool_mutex_);
    idle_.push_back(std::move(connection));
    available_.notify_one();
  }

  void Drop() {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    --open_;
    available_.notify_one();
  }

  const std::string uri_;  // holds the password: never log it, use DisplayUri()
  const Options options_;
  const Dialect dialect_;

  std::mutex pool_mutex_;  // guards idle_ and open_
  std::condition_variable available_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  int open_ = 0;  // idle plus leased
};

}  // namespace

Result<std::unique_ptr<MigratableDatabase>> OpenPostgres(const std::string& uri, Options options) {
  // Connect once now so a wrong URI or a server that is down fails Open, not the first query.
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> first, PgConnection::Connect(uri));
  return std::unique_ptr<MigratableDatabase>(
      std::make_unique<PostgresDatabase>(uri, options, std::move(first)));
}

}  // namespace kiln::store::internal
