// libFuzzer target for the search grammar: the input is used as a filter string and as an
// order_by entry for all four search builders on both SQL dialects, and as a page token and a
// view type. Nothing may crash, and every statement built must bind exactly one parameter per
// `?` placeholder (a mismatch would be a bug that shifts user values into the wrong slots).
//
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DKILN_FUZZ=ON -DKILN_TESTS=OFF
//   ninja -C build-fuzz search_filter_fuzz
//   build-fuzz/search_filter_fuzz fuzz/corpus/search_filter -max_total_time=60
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kiln/store/database.h"
#include "kiln/tracking/search.h"

namespace {

using kiln::Result;
using kiln::tracking::SqlStatement;

void Check(const Result<SqlStatement>& statement) {
  if (!statement.ok()) {
    // Bad input must be reported as bad input, never as an internal error.
    if (statement.status().code() != kiln::StatusCode::kInvalidArgument) std::abort();
    return;
  }
  size_t placeholders = std::count(statement->sql.begin(), statement->sql.end(), '?');
  if (placeholders != statement->params.size()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  static const kiln::store::Dialect kDialects[] = {
      kiln::store::Dialect(kiln::store::Backend::kSqlite),
      kiln::store::Dialect(kiln::store::Backend::kPostgres)};
  for (const kiln::store::Dialect& dialect : kDialects) {
    kiln::tracking::RunSearchSpec runs;
    runs.experiment_ids = {1, 2};
    runs.filter = input;
    Check(kiln::tracking::BuildRunSearchSql(runs, dialect));
    runs.filter = "";
    runs.order_by = {input};
    Check(kiln::tracking::BuildRunSearchSql(runs, dialect));

    kiln::tracking::ExperimentSearchSpec experiments;
    experiments.filter = input;
    Check(kiln::tracking::BuildExperimentSearchSql(experiments, dialect));
    experiments.filter = "";
    experiments.order_by = {input};
    Check(kiln::tracking::BuildExperimentSearchSql(experiments, dialect));

    kiln::tracking::RegisteredModelSearchSpec models;
    models.filter = input;
    Check(kiln::tracking::BuildRegisteredModelSearchSql(models, dialect));
    models.filter = "";
    models.order_by = {input};
    Check(kiln::tracking::BuildRegisteredModelSearchSql(models, dialect));

    kiln::tracking::ModelVersionSearchSpec versions;
    versions.filter = input;
    Check(kiln::tracking::BuildModelVersionSearchSql(versions, dialect));
    versions.filter = "";
    versions.order_by = {input};
    Check(kiln::tracking::BuildModelVersionSearchSql(versions, dialect));
  }
  Result<int64_t> offset = kiln::tracking::DecodePageToken(input);
  if (offset.ok() && *offset < 0) std::abort();
  (void)kiln::tracking::ParseViewType(input);
  return 0;
}
