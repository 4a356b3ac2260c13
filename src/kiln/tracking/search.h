// MLflow's search grammar (filter strings, order_by clauses, page tokens) compiled to SQL.
//
// A filter is `<clause> [AND <clause>]*` where a clause is `<identifier> <comparator> <value>`;
// identifiers are metrics.<k>, params.<k>, tags.<k>, attributes.<a> and their aliases
// (see shared/reference/mlflow-rest-api.md). The parser never interpolates user text into SQL:
// every value travels as a bound parameter, and identifiers are checked against fixed lists.
//
// The builders return the keys of one page of results, in order, so callers load only that page:
// the runs search selects run_uuid, experiments experiment_id, registered models name, model
// versions (name, version). They select max_results + 1 rows so the caller can tell whether a next
// page exists (drop the extra row and emit next_page_token = EncodePageToken(offset + max)).
// Schema: src/kiln/store/schema.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/store/database.h"

namespace kiln::tracking {

enum class ViewType { kActiveOnly, kDeletedOnly, kAll };

// "ACTIVE_ONLY" | "DELETED_ONLY" | "ALL" (also 1, 2, 3 as MLflow's enum numbers); empty = active.
Result<ViewType> ParseViewType(std::string_view text);

struct SqlStatement {
  std::string sql;                    // portable SQL with ? placeholders
  std::vector<store::Value> params;   // bound in order
};

// MLflow's page token: base64 of {"offset": N}. A malformed token is InvalidArgument.
Result<int64_t> DecodePageToken(std::string_view token);
std::string EncodePageToken(int64_t offset);

struct RunSearchSpec {
  std::vector<int64_t> experiment_ids;
  std::string filter;
  std::vector<std::string> order_by;
  ViewType view_type = ViewType::kActiveOnly;
  int64_t max_results = 1000;  // validated by the caller: 1..50000
  int64_t offset = 0;          // from DecodePageToken
};
// Runs a `SELECT COUNT(*) ...` statement and returns the count: lets a runs search look at the
// data before it picks a plan.
using RowCounter = std::function<Result<int64_t>(const SqlStatement&)>;
// SELECT run_uuid ... ORDER BY <order_by>, start_time DESC, run_uuid LIMIT max+1 OFFSET offset.
// With `count`, a SQLite search in the default order whose filter has metric, param or tag
// clauses first counts, up to a cap, the rows each clause passes, and starts from the most
// selective clause, or walks the experiment's runs in order when no clause is selective.
Result<SqlStatement> BuildRunSearchSql(const RunSearchSpec& spec, const store::Dialect& dialect,
                                       const RowCounter* count = nullptr);

struct Run;  // tracking_store.h
template <typename T>
struct Page;  // tracking_store.h

// Runs a runs search in `tx` and loads its page whole, in order, with next_page_token set when
// more runs follow. Statements: the page query (BuildRunSearchSql's, selecting the runs' own
// columns), then per chunk of page ids one query each for latest metrics, params, tags and
// dataset inputs (+ their tags when there are any). A run's metrics, params and tags are sorted
// by key (byte order), its inputs by dataset name then digest, an input's tags by name.
// The children of runs (latest metrics, params, tags, inputs: everything of a Run but its info)
// as last loaded, keyed by run id and the run's revision (runs.revision, which every write of a
// run's children increments in the same transaction, from any process). A search page reads each
// run's revision with its own columns and loads only the runs whose children are not here at that
// revision. Least recently used entries go first once the estimated size passes the budget.
// Thread-safe.
class RunChildrenCache {
 public:
  explicit RunChildrenCache(size_t budget_bytes);
  ~RunChildrenCache();
  RunChildrenCache(const RunChildrenCache&) = delete;
  RunChildrenCache& operator=(const RunChildrenCache&) = delete;

  // Copies the children cached for (run_id, revision) into `run`; false if there are none.
  bool Fill(const std::string& run_id, int64_t revision, Run* run);
  // Caches `run`'s children as those of (run id, revision), replacing an older revision's.
  void Put(const Run& run, int64_t revision);
  size_t entries() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A page of runs, each loaded whole. With a cache, runs whose children it holds at their current
// revision are filled from it and the others are loaded and added to it.
Result<Page<Run>> SearchRunPage(store::Transaction& tx, const RunSearchSpec& spec,
                                RunChildrenCache* cache = nullptr);

struct ExperimentSearchSpec {
  std::string filter;  // name, creation_time, last_update_time, tags.<k>
  std::vector<std::string> order_by;
  ViewType view_type = ViewType::kActiveOnly;
  int64_t max_results = 1000;
  int64_t offset = 0;
};
Result<SqlStatement> BuildExperimentSearchSql(const ExperimentSearchSpec& spec,
                                              const store::Dialect& dialect);

struct RegisteredModelSearchSpec {
  std::string filter;  // name, tags.<k>
  std::vector<std::string> order_by;
  int64_t max_results = 100;
  int64_t offset = 0;
};
Result<SqlStatement> BuildRegisteredModelSearchSql(const RegisteredModelSearchSpec& spec,
                                                   const store::Dialect& dialect);

struct ModelVersionSearchSpec {
  std::string filter;  // name, version_number, run_id, source_path, tags.<k>; IN allowed
  std::vector<std::string> order_by;
  int64_t max_results = 10000;
  int64_t offset = 0;
};
Result<SqlStatement> BuildModelVersionSearchSql(const ModelVersionSearchSpec& spec,
                                                const store::Dialect& dialect);

}  // namespace kiln::tracking
