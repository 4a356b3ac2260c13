// Table profiles: per-column statistics stored with every committed table version, the
// reference the drift monitor and validation compare against (never recomputed per check).
//
// JSON form (what is stored, as an object, and what `kiln data show --profile` prints):
//   {"rows": N, "columns": [{
//      "name": "...", "type": "float64", "count": non-null count, "nulls": N,
//      numeric (int64, float64): "min", "max", "mean", "std" (sample, n-1), "quantiles":
//        {"0": .., "0.01": .., "0.05": .., "0.25": .., "0.5": .., "0.75": .., "0.95": .., "0.99": .., "1": ..},
//        "histogram": {"edges": [11 numbers], "counts": [10 counts]},
//        "sample": sorted values; all non-null values (NaN excluded) when there are at most
//                  sample_size of them, else a uniform sample of sample_size, "sample_exact": bool,
//        "nan": count of NaN values,
//      categorical, string, bool: "distinct" (exact up to 100,000 distinct, then a lower bound
//        with "distinct_exact": false), "top": [{"value": "...", "count": N}, ... up to 20],
//        string also "min_length", "max_length",
//      timestamp: "min", "max" as ISO 8601 strings
//   }, ...]}
// Quantiles are exact when the sample is exact, else estimated from the sample.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/json.h"
#include "kiln/core/status.h"
#include "kiln/core/thread_pool.h"
#include "kiln/table/reader.h"
#include "kiln/table/schema.h"

namespace kiln::data {

struct ProfileOptions {
  size_t sample_size = 100000;  // per numeric column
  uint64_t seed = 42;           // the sample is deterministic for a given table version
};

// Per column of the schema, the key below which a part keeps its sample values of that column
// (ProfileBuilder::Serialize, LimitSample; only numeric columns' limits matter): columns[i] for
// column i, `rest` for the columns beyond. A plain number is one limit for every column. A
// sparse column needs a looser limit than a dense one to keep as many values.
struct KeyLimits {
  static constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();  // keeps everything

  KeyLimits(uint64_t all = kNone) : rest(all) {}  // NOLINT(google-explicit-constructor)
  explicit KeyLimits(std::vector<uint64_t> per_column) : columns(std::move(per_column)) {}
  uint64_t operator[](size_t column) const {
    return column < columns.size() ? columns[column] : rest;
  }

  std::vector<uint64_t> columns;
  uint64_t rest = kNone;
};

// Builds a profile from rows. Chunks of a large table are profiled in parallel by separate
// builders and merged in chunk order, so the result does not depend on the thread count.
// Not thread-safe; one per thread.
class ProfileBuilder {
 public:
  ProfileBuilder(table::Schema schema, ProfileOptions options = {});
  ~ProfileBuilder();
  ProfileBuilder(ProfileBuilder&&) noexcept;
  ProfileBuilder& operator=(ProfileBuilder&&) noexcept;

  // Adds the reader's current row (cells in schema order; assumed to have passed CheckCell).
  void Add(const table::RowReader& row);
  // Checks the reader's current row against the schema and adds it, parsing each cell once: the
  // same rules and the same error messages as table::CheckCell (naming file_name, the row's line
  // and the column), for the first bad cell. A cell that fits only a widened type (2.5 in an
  // int64 column) sets *widen and the row is not added (the caller reprofiles the whole table);
  // cells beyond the schema's width are ignored. On an error nothing of the row is added.
  Status AddChecked(const table::RowReader& row, std::string_view file_name, bool* widen);
  // AddChecked for every row of `bytes`, a buffer of CSV/TSV rows (fields separated by
  // `delimiter`, each line ending in \n, the last one perhaps without) of a table whose columns
  // are all int64 or float64, read straight from the bytes: the same rows, values and lines as
  // a table::RowReader (ReadOptions::first_line = first_line, has_header = skip_first_line)
  // feeding AddChecked would give. An empty field is a null. Returns false at the first thing
  // it does not take: a quote, a '\r', a blank line, a row of another width, a field that is
  // not a number of its column's type (or widens an int64 column), a header other than the
  // schema's names, another schema. Then this builder is half filled: discard it and profile
  // the bytes with a RowReader, which gives the errors. *rows: the rows added (when true).
  bool AddNumericCsv(std::string_view bytes, char delimiter, int64_t first_line,
                     bool skip_first_line, uint64_t* rows);
  // Edits, for a chunk whose lines were replaced: takes back the reader's current row, which
  // this builder holds at the same line (added, or restored by Deserialize). Returns false, and
  // changes nothing, when the result could differ from profiling the remaining rows afresh: a
  // category, bool or string column (their counts keep first-seen order), a cell that no
  // longer parses under the schema, a sample that was compacted, or max(sample_size, 512) rows
  // or more. Then profile the rows afresh. Each row may be removed once; add its replacement
  // with AddChecked, and no more rows than were removed. A removed value at its column's min or
  // max (the bound may have been only this row's) leaves the column's bounds stale.
  bool Remove(const table::RowReader& row);
  // Columns whose min and max edits left stale: a removed value at a bound, or an added zero of
  // the other sign than an equal bound (min and max keep the first of +0 and -0 met).
  std::vector<size_t> StaleBounds() const;
  // Recomputes column `index`'s min and max from its cells in every row the builder holds, in
  // line order (null cells included or not). False if a cell does not parse or the cells do not
  // match the column's count (then profile the rows afresh).
  bool RecomputeBounds(size_t index, const std::vector<table::Cell>& cells);
  // After edits: true if the builder holds exactly what profiling its rows afresh would give:
  // no stale bounds and no compacted sample.
  bool EditsExact() const;
  // The key limits of the state this builder was restored from (Deserialize), per column; none
  // for a builder that was not restored. Serialize an edited builder with them: only values
  // below them are known, and then the saved state is exactly what the edited rows profiled
  // afresh give.
  KeyLimits RestoredKeyLimits() const;
  // Keeps only sample values with keys below their column's limit from the start (a row with
  // none is not kept), instead of every row's values, and records the columns that lost one as
  // a part saved with those limits does: for a part of a large table, with limits at or above
  // the ones it is saved with (Serialize saves the same then). A builder it is merged into holds
  // only those values, so check SampleExact() there (else profile without limits). Call before
  // adding rows. A limit of 0 is none.
  void LimitSample(const KeyLimits& limits);
  // Folds `other` (rows that come after this builder's) into this one.
  void Merge(ProfileBuilder&& other);
  Json Finish() const;
  // Finish().dump(), byte for byte, with the columns finished in parallel on `pool` (and this
  // thread) when one is given: a table's samples are most of a commit's serial tail. Not to be
  // called from a task of `pool` (it waits for the tasks it submits there).
  std::string FinishText(ThreadPool* pool = nullptr) const;

  // Saved partial state, so that a later table version holding the same chunk at the same first
  // line merges it instead of parsing it again. Only the sample values whose key is below their
  // column's limit are kept (KeyLimitFor of the column's expected values); the rest of the state
  // is whole. Compact binary; the schema (names and types), the options and the limits are
  // recorded in it.
  std::string Serialize(const KeyLimits& limits) const;
  // InvalidArgument if `bytes` is malformed (never a crash: it is read from disk) or was saved
  // for another schema or other options.
  static Result<ProfileBuilder> Deserialize(const table::Schema& schema, ProfileOptions options,
                                            std::string_view bytes);
  // True if every numeric column's sample is exactly what Add on every row would have produced,
  // after merging parts saved with key limits: a column is exact if no part dropped one of its
  // values, or if its sample_size-th smallest key is below the smallest limit merged in.
  // Finish's output is identical to an unsaved builder's whenever this holds.
  bool SampleExact() const;
  // A key limit that keeps about margin * sample_size values of a column expected to have
  // `expected_rows` values (the maximum key, keeping everything, when that is most of them).
  static uint64_t KeyLimitFor(uint64_t expected_rows, const ProfileOptions& options,
                              double margin = 1.25);

 private:
  struct State;
  // Column i's part of Finish; full_limit is the sample's FullLimit().
  Json FinishColumn(size_t i, std::optional<uint64_t> full_limit) const;

  std::unique_ptr<State> state_;
};

}  // namespace kiln::data
