// kiln's metadata schema, as an ordered list of migrations.
//
// A database records the migrations it has applied in schema_migrations(version, name,
// applied_at). Database::Open applies every newer migration in order, each in its own
// transaction, so an existing database is upgraded in place and a crash mid-upgrade leaves it at
// the last whole version. Migrations are append-only: never edit one that has shipped; add the
// next version instead.
//
// Most SQL is shared. Where the dialects differ, a migration carries one text per backend.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace kiln::store {

struct Migration {
  int64_t version;
  std::string_view name;
  std::string_view sqlite_sql;    // statements separated by ';' at line ends
  std::string_view postgres_sql;  // empty: same as sqlite_sql
};

const std::vector<Migration>& Migrations();

}  // namespace kiln::store
