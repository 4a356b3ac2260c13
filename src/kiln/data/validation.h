// Validation rules for tables: a schema and expectations, checked on a committed table version
// (`kiln data validate REF`) or before a commit lands on a branch that has rules attached.
//
// Rules file (YAML):
//
//   tables:
//     credit:                      # table name; "*" applies to every table
//       row_count: {min: 1000, max: 10000000}
//       columns:
//         age:
//           type: int64            # the stored schema's type must be this
//           not_null: 0.99         # share of non-null values >= 0.99 (true means 1.0)
//           min: 0                 # numeric (or timestamp, as ISO 8601) bounds, inclusive
//           max: 120
//           allowed: [a, b, c]     # every non-null value is one of these
//           unique: true           # no two non-null values are equal
//           drift:                 # distribution bounds against a reference commit's profile
//             reference: main~1    # a REF; resolved by the caller
//             max_ks: 0.1          # Kolmogorov-Smirnov statistic (numeric), or
//             max_psi: 0.2         # population stability index (numeric or categorical)
//         income: {required: true} # the column must exist
//
// Every violation is reported, not just the first.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/json.h"
#include "kiln/core/status.h"
#include "kiln/data/table_version.h"

namespace kiln::data {

struct Violation {
  std::string table;
  std::string column;    // empty for table-level rules (row_count)
  std::string rule;      // "type", "not_null", "min", "max", "allowed", "unique", "row_count",
                         // "required", "max_ks", "max_psi"
  std::string expected;  // e.g. ">= 0.99"
  std::string observed;  // e.g. "0.93" or "-4"
  int64_t violating_rows = 0;
  std::vector<int64_t> sample_lines;  // file line numbers of up to 5 offending rows
  std::vector<std::string> sample_values;
  Json ToJson() const;
};

class Rules {
 public:
  // Errors name the file, line and column of the YAML problem (source_name is for messages).
  static Result<Rules> Parse(const std::string& yaml_text, const std::string& source_name);
  const std::string& text() const { return text_; }
  // The drift references the rules name (REF strings), for the caller to resolve.
  std::vector<std::string> DriftReferences() const;
  bool AppliesTo(const std::string& table) const;

  struct TableRules;
  std::vector<std::pair<std::string, std::shared_ptr<TableRules>>> tables;  // in file order

 private:
  std::string text_;
};

// Looks up a reference table's profile for drift rules: (reference REF, table) -> profile JSON.
using ReferenceProfiles =
    std::function<Result<std::optional<Json>>(const std::string& ref, const std::string& table)>;

// Checks `version` (with its stored profile) against the rules that apply to it. Reads the rows
// (one chunk at a time) only when a rule needs them (allowed, unique, samples of min/max).
Result<std::vector<Violation>> Validate(const Rules& rules, const TableVersion& version,
                                        const Json& profile, ChunkLoader& loader,
                                        const ReferenceProfiles& references);

}  // namespace kiln::data
