#include "tests/support/test_database.h"

// kiln_test_support does not get libpq's include directory; the distribution puts it here.
#include <postgresql/libpq-fe.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>

#include "kiln/core/log.h"

namespace kiln::testing {
namespace {

[[noreturn]] void FailSetup(const std::string& message) {
  ADD_FAILURE() << message;
  throw std::runtime_error(message);
}

// Runs one statement outside any transaction (CREATE/DROP DATABASE cannot run inside one).
Status AdminExec(const std::string& admin_uri, const std::string& sql) {
  PGconn* connection = PQconnectdb(admin_uri.c_str());
  Status status;
  if (PQstatus(connection) != CONNECTION_OK) {
    status = Unavailable("cannot connect to " + RedactUri(admin_uri) + ": " +
                         PQerrorMessage(connection));
  } else {
    PGresult* result = PQexec(connection, sql.c_str());
    if (PQresultStatus(result) != PGRES_COMMAND_OK) {
      status = Internal(sql + ": " + PQresultErrorMessage(result));
    }
    PQclear(result);
  }
  PQfinish(connection);
  return status;
}

// Replaces the database name in "postgresql://user@host:port/db?params" with `name`.
std::string WithDatabaseName(const std::string& uri, const std::string& name) {
  size_t authority = uri.find("://");
  size_t slash = uri.find('/', authority == std::string::npos ? 0 : authority + 3);
  size_t query = uri.find('?');
  std::string params = query == std::string::npos ? "" : uri.substr(query);
  if (slash == std::string::npos || (query != std::string::npos && slash > query)) {
    return uri.substr(0, query) + "/" + name + params;
  }
  return uri.substr(0, slash) + "/" + name + params;
}

}  // namespace

std::vector<store::Backend> AllBackends() {
  return {store::Backend::kSqlite, store::Backend::kPostgres};
}

std::string BackendName(const ::testing::TestParamInfo<store::Backend>& info) {
  return info.param == store::Backend::kSqlite ? "Sqlite" : "Postgres";
}

TestDatabase::TestDatabase(store::Backend backend, store::Options options)
    : TestDatabase(backend, options, /*open=*/true) {}

TestDatabase::TestDatabase(store::Backend backend, store::Options options, bool open)
    : backend_(backend) {
  if (backend == store::Backend::kSqlite) {
    temp_dir_ = std::make_unique<TempDir>();
    uri_ = "sqlite://" + temp_dir_->Join("kiln.db");
  } else {
    const char* server = std::getenv("KILN_TEST_POSTGRES");
    if (server == nullptr || *server == '\0') {
      FailSetup(
          "KILN_TEST_POSTGRES is not set: PostgreSQL tests need a server. Run the tests through "
          "scripts/with-postgres.sh (e.g. bash scripts/with-postgres.sh build/kiln_store_tests) "
          "or `make test`");
    }
    admin_uri_ = server;
    std::random_device random;
    std::uniform_int_distribution<uint64_t> digits;
    char suffix[17];
    std::snprintf(suffix, sizeof(suffix), "%016llx",
                  static_cast<unsigned long long>(digits(random)));
    database_name_ = std::string("kiln_test_") + suffix;
    // FILE_COPY is several times faster than the default WAL_LOG strategy for a tiny template
    // on the throwaway test cluster (which runs with fsync off).
    Status created =
        AdminExec(admin_uri_, "CREATE DATABASE " + database_name_ + " STRATEGY FILE_COPY");
    if (!created.ok()) FailSetup("creating test database: " + created.ToString());
    uri_ = WithDatabaseName(admin_uri_, database_name_);
  }
  if (!open) return;
  auto opened = store::Database::Open(uri_, options);
  if (!opened.ok()) {
    std::string message = "opening test database " + RedactUri(uri_) + ": " +
                          opened.status().ToString();
    if (!database_name_.empty()) {
      (void)AdminExec(admin_uri_, "DROP DATABASE IF EXISTS " + database_name_ + " WITH (FORCE)");
    }
    FailSetup(message);
  }
  db_ = std::move(opened).value();
}

TestDatabase::~TestDatabase() {
  db_.reset();
  if (!database_name_.empty()) {
    Status dropped =
        AdminExec(admin_uri_, "DROP DATABASE IF EXISTS " + database_name_ + " WITH (FORCE)");
    if (!dropped.ok()) ADD_FAILURE() << "dropping test database: " << dropped.ToString();
  }
}

Result<std::unique_ptr<store::Database>> TestDatabase::OpenAnother(store::Options options) const {
  return store::Database::Open(uri_, options);
}

}  // namespace kiln::testing
