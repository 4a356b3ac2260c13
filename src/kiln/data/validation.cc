#include "kiln/data/validation.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "kiln/core/hash.h"
#include "kiln/table/inference.h"

namespace kiln::data {

// The parsed rules of one table entry ("credit" or "*").
struct Rules::TableRules {
  struct Bound {
    std::string text;                     // as written, for messages
    std::optional<double> number;         // numeric columns
    std::optional<int64_t> integer;       // int64 columns, when the bound is a whole number
    std::optional<int64_t> timestamp_ms;  // timestamp columns
  };
  struct Drift {
    std::string reference;
    std::optional<double> max_ks;
    std::optional<double> max_psi;
  };
  struct Column {
    std::string name;
    bool required = false;
    std::optional<table::ColumnType> type;
    std::optional<double> not_null;  // minimum share of non-null values
    std::optional<Bound> min;
    std::optional<Bound> max;
    std::optional<std::vector<std::string>> allowed;
    bool unique = false;
    std::optional<Drift> drift;
  };

  std::string name;
  std::optional<int64_t> min_rows;
  std::optional<int64_t> max_rows;
  std::vector<Column> columns;  // in file order
};

namespace {

using TableRules = Rules::TableRules;

constexpr size_t kSampleRows = 5;
constexpr double kPsiEpsilon = 1e-4;  // a bin's share when it holds nothing (keeps the log finite)

// ---- Small helpers ---------------------------------------------------------------------------

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer: a bijection
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::optional<double> ParseNumberText(std::string_view text) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  if (text == ".inf" || text == ".Inf" || text == ".INF") {
    return std::numeric_limits<double>::infinity();
  }
  if (text == "-.inf" || text == "-.Inf" || text == "-.INF") {
    return -std::numeric_limits<double>::infinity();
  }
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> ParseIntegerText(std::string_view text) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

std::optional<bool> ParseBoolText(std::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return std::nullopt;
}

std::string FormatNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", value);
  return text;
}

// A cell's text for a message: at most about 60 bytes, cut on a UTF-8 boundary.
std::string ForMessage(const table::Cell& cell) {
  if (cell.is_null) return "null";
  std::string_view text = cell.text;
  constexpr size_t kMaxBytes = 60;
  if (text.size() <= kMaxBytes) return std::string(text);
  size_t cut = kMaxBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

std::string Quote(std::string_view text) { return "'" + std::string(text) + "'"; }

// A profile number: JSON numbers, or the strings DoubleToJson writes for NaN and infinities.
std::optional<double> JsonNumber(const Json& value) {
  if (value.is_number()) return value.get<double>();
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (text == "Infinity") return std::numeric_limits<double>::infinity();
    if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  return std::nullopt;
}

int64_t JsonInt(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return 0;
  return it->get<int64_t>();
}

// The stored sample of a numeric profile column (sorted when written; sorted again to be safe).
std::vector<double> JsonSample(const Json& column) {
  std::vector<double> values;
  auto it = column.find("sample");
  if (it == column.end() || !it->is_array()) return values;
  values.reserve(it->size());
  for (const Json& value : *it) {
    std::optional<double> number = JsonNumber(value);
    if (number && !std::isnan(*number)) values.push_back(*number);
  }
  if (!std::is_sorted(values.begin(), values.end())) std::sort(values.begin(), values.end());
  return values;
}

const Json* FindProfileColumn(const Json& profile, std::string_view name) {
  auto columns = profile.find("columns");
  if (columns == profile.end() || !columns->is_array()) return nullptr;
  for (const Json& column : *columns) {
    auto column_name = column.find("name");
    if (column_name != column.end() && column_name->is_string() &&
        column_name->get_ref<const std::string&>() == name) {
      return &column;
    }
  }
  return nullptr;
}

bool IsCategoryType(table::ColumnType type) {
  return type == table::ColumnType::kString || type == table::ColumnType::kCategorical ||
         type == table::ColumnType::kBool;
}

// A non-null cell's value as a double (numeric columns), or nullopt (NaN included: a NaN is
// neither above nor below a bound).
std::optional<double> NumericValue(table::ColumnType type, std::string_view text) {
  if (type == table::ColumnType::kInt64) {
    Result<int64_t> integer = table::ParseInt64(text);
    if (integer.ok()) return static_cast<double>(*integer);
  }
  Result<double> number = table::ParseFloat64(text);
  if (!number.ok() || std::isnan(*number)) return std::nullopt;
  return *number;
}

// How a category column's values are named in profiles: bools as "true"/"false".
std::string_view CategoryValue(table::ColumnType type, std::string_view text) {
  if (type == table::ColumnType::kBool) {
    Result<bool> parsed = table::ParseBool(text);
    if (parsed.ok()) return *parsed ? "true" : "false";
  }
  return text;
}

// Two-sample Kolmogorov-Smirnov statistic of sorted samples: the largest distance between their
// empirical distribution functions, evaluated after every distinct value.
double KsStatistic(const std::vector<double>& a, const std::vector<double>& b) {
  size_t i = 0, j = 0;
  double largest = 0;
  const double n = static_cast<double>(a.size()), m = static_cast<double>(b.size());
  while (i < a.size() && j < b.size()) {
    double value = std::min(a[i], b[j]);
    while (i < a.size() && a[i] == value) ++i;
    while (j < b.size() && b[j] == value) ++j;
    largest = std::max(largest, std::fabs(static_cast<double>(i) / n - static_cast<double>(j) / m));
  }
  return largest;  // past this point one side is at 1 and the distance only shrinks
}

// Population stability index of `actual` against `expected` bin counts.
double Psi(const std::vector<double>& expected, const std::vector<double>& actual) {
  double expected_total = 0, actual_total = 0;
  for (double count : expected) expected_total += count;
  for (double count : actual) actual_total += count;
  double psi = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    double e = std::max(expected[i] / expected_total, kPsiEpsilon);
    double a = std::max(actual[i] / actual_total, kPsiEpsilon);
    psi += (a - e) * std::log(a / e);
  }
  return psi;
}

// A set of 128-bit keys (open addressing); memory about 21 bytes per distinct value.
class KeySet {
 public:
  // True if the key was not in the set.
  bool Insert(uint64_t first, uint64_t second) {
    if (first == 0 && second == 0) {
      bool fresh = !has_zero_;
      has_zero_ = true;
      return fresh;
    }
    if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
    size_t mask = slots_.size() - 1;
    for (size_t i = Mix(first) & mask;; i = (i + 1) & mask) {
      auto& slot = slots_[i];
      if (slot.first == 0 && slot.second == 0) {
        slot = {first, second};
        ++size_;
        return true;
      }
      if (slot.first == first && slot.second == second) return false;
    }
  }

 private:
  void Grow() {
    std::vector<std::pair<uint64_t, uint64_t>> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, {0, 0});
    size_ = 0;
    for (const auto& [first, second] : old) {
      if (first != 0 || second != 0) Insert(first, second);
    }
  }

  std::vector<std::pair<uint64_t, uint64_t>> slots_;
  size_t size_ = 0;
  bool has_zero_ = false;
};

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
using StringSet = std::unordered_set<std::string, TransparentHash, std::equal_to<>>;

// ---- Parsing ---------------------------------------------------------------------------------

class RulesParser {
 public:
  explicit RulesParser(const std::string& source) : source_(source) {}

  Status Error(const YAML::Mark& mark, const std::string& what) const {
    if (mark.is_null()) return InvalidArgument(source_ + ": " + what);
    return InvalidArgument(source_ + ":" + std::to_string(mark.line + 1) + ":" +
                           std::to_string(mark.column + 1) + ": " + what);
  }

  Status ParseDocument(const YAML::Node& root,
                       std::vector<std::pair<std::string, std::shared_ptr<TableRules>>>* tables) {
    if (!root.IsDefined() || root.IsNull()) {
      return Error(YAML::Mark(), "the rules file is empty (expected a mapping with 'tables')");
    }
    if (!root.IsMap()) return Error(root.Mark(), "expected a mapping with 'tables'");
    for (const auto& entry : root) {
      KILN_ASSIGN_OR_RETURN(std::string key, Key(entry.first));
      if (key != "tables") {
        return Error(entry.first.Mark(), "unknown key '" + key + "' (expected 'tables')");
      }
      const YAML::Node& tables_node = entry.second;
      if (tables_node.IsNull()) continue;
      if (!tables_node.IsMap()) {
        return Error(tables_node.Mark(), "'tables' must be a mapping of table names to rules");
      }
      std::set<std::string> seen;
      for (const auto& table_entry : tables_node) {
        KILN_ASSIGN_OR_RETURN(std::string name, Key(table_entry.first));
        if (name.empty()) return Error(table_entry.first.Mark(), "empty table name");
        if (!seen.insert(name).second) {
          return Error(table_entry.first.Mark(), "table '" + name + "' is listed twice");
        }
        auto table = std::make_shared<TableRules>();
        table->name = name;
        KILN_RETURN_IF_ERROR(ParseTable(table_entry.second, *table));
        tables->emplace_back(name, std::move(table));
      }
    }
    return Status::Ok();
  }

 private:
  Result<std::string> Key(const YAML::Node& key) const {
    if (!key.IsScalar()) return Error(key.Mark(), "expected a name");
    return key.Scalar();
  }

  // Calls `on_entry(key, value)` for each entry of a mapping, rejecting keys not in `known` and
  // keys given twice.
  Status ForEachEntry(const YAML::Node& node, const std::string& what,
                      const std::vector<std::string_view>& known,
                      const std::function<Status(const std::string&, const YAML::Node&,
                                                 const YAML::Node&)>& on_entry) const {
    if (node.IsNull()) return Status::Ok();
    if (!node.IsMap()) return Error(node.Mark(), what + " must be a mapping");
    std::set<std::string> seen;
    for (const auto& entry : node) {
      KILN_ASSIGN_OR_RETURN(std::string key, Key(entry.first));
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string list;
        for (std::string_view name : known) list += (list.empty() ? "" : ", ") + std::string(name);
        return Error(entry.first.Mark(),
                     "unknown rule '" + key + "' in " + what + " (expected one of: " + list + ")");
      }
      if (!seen.insert(key).second) {
        return Error(entry.first.Mark(), "'" + key + "' is given twice in " + what);
      }
      KILN_RETURN_IF_ERROR(on_entry(key, entry.first, entry.second));
    }
    return Status::Ok();
  }

  Result<std::string> Scalar(const YAML::Node& node, const std::string& key,
                             const std::string& expected) const {
    if (!node.IsScalar()) return Error(node.Mark(), "'" + key + "' must be " + expected);
    return node.Scalar();
  }

  Result<double> Number(const YAML::Node& node, const std::string& key) const {
    KILN_ASSIGN_OR_RETURN(std::string text, Scalar(node, key, "a number"));
    std::optional<double> value = ParseNumberText(text);
    if (!value || std::isnan(*value)) {
      return Error(node.Mark(), "'" + key + "' must be a number, found '" + text + "'");
    }
    return *value;
  }

  Result<bool> Bool(const YAML::Node& node, const std::string& key) const {
    KILN_ASSIGN_OR_RETURN(std::string text, Scalar(node, key, "true or false"));
    std::optional<bool> value = ParseBoolText(text);
    if (!value)
      return Error(node.Mark(), "'" + key + "' must be true or false, found '" + text + "'");
    return *value;
  }

  Result<int64_t> Count(const YAML::Node& node, const std::string& key) const {
    KILN_ASSIGN_OR_RETURN(std::string text, Scalar(node, key, "a whole number"));
    std::optional<int64_t> value = ParseIntegerText(text);
    if (!value || *value < 0) {
      return Error(node.Mark(), "'" + key + "' must be a whole number >= 0, found '" + text + "'");
    }
    return *value;
  }

  Status ParseTable(const YAML::Node& node, TableRules& table) const {
    const std::string what = "table '" + table.name + "'";
    return ForEachEntry(
        node, what, {"row_count", "columns"},
        [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& value) -> Status {
          if (key == "row_count") {
            if (!value.IsMap()) {
              return Error(value.Mark(), "'row_count' must be a mapping like {min: 1, max: 100}");
            }
            KILN_RETURN_IF_ERROR(ForEachEntry(
                value, "row_count", {"min", "max"},
                [&](const std::string& bound, const YAML::Node&, const YAML::Node& bound_value) {
                  Result<int64_t> count = Count(bound_value, bound);
                  if (!count.ok()) return count.status();
                  (bound == "min" ? table.min_rows : table.max_rows) = *count;
                  return Status::Ok();
                }));
            if (table.min_rows && table.max_rows && *table.min_rows > *table.max_rows) {
              return Error(value.Mark(), "row_count min is greater than max");
            }
            return Status::Ok();
          }
          (void)key_node;
          if (!value.IsMap() && !value.IsNull()) {
            return Error(value.Mark(), "'columns' must be a mapping of column names to rules");
          }
          std::set<std::string> seen;
          for (const auto& entry : value) {
            KILN_ASSIGN_OR_RETURN(std::string name, Key(entry.first));
            if (!seen.insert(name).second) {
              return Error(entry.first.Mark(), "column '" + name + "' is listed twice in " + what);
            }
            TableRules::Column column;
            column.name = name;
            KILN_RETURN_IF_ERROR(ParseColumn(entry.second, column));
            table.columns.push_back(std::move(column));
          }
          return Status::Ok();
        });
  }

  Result<TableRules::Bound> ParseBound(const YAML::Node& node, const std::string& key) const {
    KILN_ASSIGN_OR_RETURN(std::string text, Scalar(node, key, "a number or an ISO 8601 timestamp"));
    TableRules::Bound bound;
    bound.text = text;
    bound.number = ParseNumberText(text);
    if (bound.number && std::isnan(*bound.number)) bound.number.reset();
    bound.integer = ParseIntegerText(text);
    if (!bound.number) {
      Result<int64_t> millis = table::ParseTimestampMillis(text);
      if (millis.ok()) bound.timestamp_ms = *millis;
    }
    if (!bound.number && !bound.timestamp_ms) {
      return Error(node.Mark(),
                   "'" + key + "' must be a number or an ISO 8601 timestamp, found '" + text + "'");
    }
    return bound;
  }

  Status ParseColumn(const YAML::Node& node, TableRules::Column& column) const {
    const std::string what = "column '" + column.name + "'";
    KILN_RETURN_IF_ERROR(ForEachEntry(
        node, what, {"type", "not_null", "min", "max", "allowed", "unique", "required", "drift"},
        [&](const std::string& key, const YAML::Node&, const YAML::Node& value) -> Status {
          if (key == "type") {
            KILN_ASSIGN_OR_RETURN(std::string name, Scalar(value, key, "a column type"));
            column.type = table::ColumnTypeFromName(name);
            if (!column.type) {
              return Error(value.Mark(), "unknown type '" + name +
                                             "' (expected int64, float64, bool, string, "
                                             "categorical or timestamp)");
            }
          } else if (key == "not_null") {
            KILN_ASSIGN_OR_RETURN(std::string text,
                                  Scalar(value, key, "a share between 0 and 1, or true/false"));
            if (std::optional<bool> flag = ParseBoolText(text)) {
              if (*flag) column.not_null = 1.0;
            } else {
              std::optional<double> share = ParseNumberText(text);
              if (!share || !(*share >= 0 && *share <= 1)) {
                return Error(value.Mark(),
                             "'not_null' must be a share between 0 and 1, or "
                             "true/false, found '" +
                                 text + "'");
              }
              column.not_null = *share;
            }
          } else if (key == "min" || key == "max") {
            KILN_ASSIGN_OR_RETURN(TableRules::Bound bound, ParseBound(value, key));
            (key == "min" ? column.min : column.max) = std::move(bound);
            if (column.min && column.max) {
              bool numbers = column.min->number && column.max->number;
              bool times = column.min->timestamp_ms && column.max->timestamp_ms;
              if ((numbers && *column.min->number > *column.max->number) ||
                  (times && *column.min->timestamp_ms > *column.max->timestamp_ms)) {
                return Error(value.Mark(), "min " + column.min->text + " is greater than max " +
                                               column.max->text);
              }
            }
          } else if (key == "allowed") {
            if (!value.IsSequence()) {
              return Error(value.Mark(), "'allowed' must be a list of values, like [a, b]");
            }
            std::vector<std::string> allowed;
            for (const YAML::Node& item : value) {
              if (!item.IsScalar()) {
                return Error(item.Mark(), "'allowed' values must be plain values");
              }
              allowed.push_back(item.Scalar());
            }
            column.allowed = std::move(allowed);
          } else if (key == "unique") {
            KILN_ASSIGN_OR_RETURN(column.unique, Bool(value, key));
          } else if (key == "required") {
            KILN_ASSIGN_OR_RETURN(column.required, Bool(value, key));
          } else {
            TableRules::Drift drift;
            KILN_RETURN_IF_ERROR(ForEachEntry(
                value, "drift of " + what, {"reference", "max_ks", "max_psi"},
                [&](const std::string& drift_key, const YAML::Node&,
                    const YAML::Node& drift_value) -> Status {
                  if (drift_key == "reference") {
                    KILN_ASSIGN_OR_RETURN(drift.reference,
                                          Scalar(drift_value, drift_key, "a REF (main~1, v1.0)"));
                    if (drift.reference.empty()) {
                      return Error(drift_value.Mark(), "'reference' must not be empty");
                    }
                    return Status::Ok();
                  }
                  KILN_ASSIGN_OR_RETURN(double limit, Number(drift_value, drift_key));
                  if (limit < 0 || (drift_key == "max_ks" && limit > 1)) {
                    return Error(drift_value.Mark(),
                                 "'" + drift_key + "' must be " +
                                     (drift_key == "max_ks" ? "between 0 and 1" : ">= 0"));
                  }
                  (drift_key == "max_ks" ? drift.max_ks : drift.max_psi) = limit;
                  return Status::Ok();
                }));
            if (!value.IsMap()) return Error(value.Mark(), "'drift' must be a mapping");
            if (drift.reference.empty()) {
              return Error(value.Mark(), "'drift' needs a 'reference' (a REF such as main~1)");
            }
            if (!drift.max_ks && !drift.max_psi) {
              return Error(value.Mark(), "'drift' needs 'max_ks' or 'max_psi'");
            }
            column.drift = std::move(drift);
          }
          return Status::Ok();
        }));
    return Status::Ok();
  }

  const std::string& source_;
};

// ---- Checking --------------------------------------------------------------------------------

// Offending rows seen while scanning: the count and the first few.
struct Offenders {
  int64_t count = 0;
  std::vector<int64_t> lines;
  std::vector<std::string> values;

  void Record(int64_t line, const table::Cell& cell) {
    ++count;
    if (lines.size() < kSampleRows) {
      lines.push_back(line);
      values.push_back(ForMessage(cell));
    }
  }
  void FillInto(Violation& violation) const {
    violation.violating_rows = count;
    violation.sample_lines = lines;
    violation.sample_values = values;
  }
};

// A rule that reads every row of one column. Observe sees each row's cell; Resolve writes the
// verdict (a violation or nothing) into the rule's slot.
class ScanTask {
 public:
  explicit ScanTask(int column) : column_(column) {}
  virtual ~ScanTask() = default;
  int column() const { return column_; }
  virtual void Observe(const table::Cell& cell, int64_t line) = 0;
  virtual std::optional<Violation> Resolve(int64_t rows) = 0;

 private:
  int column_;
};

class NullScan : public ScanTask {
 public:
  NullScan(int column, Violation base, double min_share)
      : ScanTask(column), base_(std::move(base)), min_share_(min_share) {}
  void Observe(const table::Cell& cell, int64_t line) override {
    if (cell.is_null) offenders_.Record(line, cell);
  }
  std::optional<Violation> Resolve(int64_t rows) override {
    if (rows == 0) return std::nullopt;
    double share = 1.0 - static_cast<double>(offenders_.count) / static_cast<double>(rows);
    if (share >= min_share_) return std::nullopt;
    Violation violation = base_;
    violation.observed = FormatNumber(share) + " non-null (" + std::to_string(offenders_.count) +
                         " nulls in " + std::to_string(rows) + " rows)";
    offenders_.FillInto(violation);
    return violation;
  }

 private:
  Violation base_;
  double min_share_;
  Offenders offenders_;
};

// Values below a minimum (below = true) or above a maximum.
class BoundScan : public ScanTask {
 public:
  BoundScan(int column, table::ColumnType type, TableRules::Bound bound, bool below, Violation base)
      : ScanTask(column),
        type_(type),
        bound_(std::move(bound)),
        below_(below),
        base_(std::move(base)) {}

  void Observe(const table::Cell& cell, int64_t line) override {
    if (cell.is_null) return;
    double value = 0;  // compared as "how far past the bound", sign-adjusted
    bool offends = false;
    if (type_ == table::ColumnType::kTimestamp) {
      Result<int64_t> millis = table::ParseTimestampMillis(cell.text);
      if (!millis.ok()) return;
      offends = below_ ? *millis < *bound_.timestamp_ms : *millis > *bound_.timestamp_ms;
      value = static_cast<double>(*millis);
    } else if (type_ == table::ColumnType::kInt64 && bound_.integer) {
      Result<int64_t> integer = table::ParseInt64(cell.text);
      if (integer.ok()) {
        offends = below_ ? *integer < *bound_.integer : *integer > *bound_.integer;
        value = static_cast<double>(*integer);
      } else {
        std::optional<double> number = NumericValue(type_, cell.text);
        if (!number) return;
        offends = below_ ? *number < *bound_.number : *number > *bound_.number;
        value = *number;
      }
    } else {
      std::optional<double> number = NumericValue(type_, cell.text);
      if (!number) return;
      offends = below_ ? *number < *bound_.number : *number > *bound_.number;
      value = *number;
    }
    if (!offends) return;
    offenders_.Record(line, cell);
    if (!extreme_ || (below_ ? value < *extreme_ : value > *extreme_)) {
      extreme_ = value;
      extreme_text_ = ForMessage(cell);
    }
  }

  std::optional<Violation> Resolve(int64_t) override {
    if (offenders_.count == 0) return std::nullopt;
    Violation violation = base_;
    violation.observed = extreme_text_;
    offenders_.FillInto(violation);
    return violation;
  }

 private:
  table::ColumnType type_;
  TableRules::Bound bound_;
  bool below_;
  Violation base_;
  Offenders offenders_;
  std::optional<double> extreme_;
  std::string extreme_text_;
};

class AllowedScan : public ScanTask {
 public:
  AllowedScan(int column, table::ColumnType type, const std::vector<std::string>& allowed,
              Violation base)
      : ScanTask(column), type_(type), base_(std::move(base)) {
    for (const std::string& value : allowed) {
      if (table::IsNumeric(type)) {
        std::optional<double> number = ParseNumberText(value);
        if (!number) continue;  // not a number: no cell can equal it
        if (std::isnan(*number)) {
          nan_allowed_ = true;
        } else {
          numbers_.insert(*number == 0 ? 0.0 : *number);
        }
      } else if (type == table::ColumnType::kTimestamp) {
        Result<int64_t> millis = table::ParseTimestampMillis(value);
        if (millis.ok()) timestamps_.insert(*millis);
      } else {
        texts_.insert(std::string(CategoryValue(type, value)));
      }
    }
    if (table::IsNumeric(type)) {
      for (const std::string& value : allowed) {
        std::string lower = value;
        std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
        if (lower == "nan" || lower == ".nan") nan_allowed_ = true;
      }
    }
  }

  void Observe(const table::Cell& cell, int64_t line) override {
    if (cell.is_null || Allowed(cell.text)) return;
    offenders_.Record(line, cell);
    std::string shown = ForMessage(cell);
    if (distinct_offenders_.size() < kSampleRows &&
        std::find(distinct_offenders_.begin(), distinct_offenders_.end(), shown) ==
            distinct_offenders_.end()) {
      distinct_offenders_.push_back(shown);
    }
  }

  std::optional<Violation> Resolve(int64_t) override {
    if (offenders_.count == 0) return std::nullopt;
    Violation violation = base_;
    std::string values;
    for (const std::string& value : distinct_offenders_) {
      values += (values.empty() ? "" : ", ") + Quote(value);
    }
    violation.observed =
        std::to_string(offenders_.count) + " values outside the set, such as " + values;
    offenders_.FillInto(violation);
    return violation;
  }

 private:
  bool Allowed(std::string_view text) const {
    if (table::IsNumeric(type_)) {
      Result<double> number = table::ParseFloat64(text);
      if (!number.ok()) return false;
      if (std::isnan(*number)) return nan_allowed_;
      return numbers_.count(*number == 0 ? 0.0 : *number) > 0;
    }
    if (type_ == table::ColumnType::kTimestamp) {
      Result<int64_t> millis = table::ParseTimestampMillis(text);
      return millis.ok() && timestamps_.count(*millis) > 0;
    }
    return texts_.find(CategoryValue(type_, text)) != texts_.end();
  }

  table::ColumnType type_;
  Violation base_;
  std::unordered_set<double> numbers_;
  bool nan_allowed_ = false;
  std::unordered_set<int64_t> timestamps_;
  StringSet texts_;
  Offenders offenders_;
  std::vector<std::string> distinct_offenders_;
};

// Rows whose value equals an earlier row's. Values are compared by type (1.0 equals 1 in a float
// column, True equals true); text through two independent 64-bit hashes.
class UniqueScan : public ScanTask {
 public:
  UniqueScan(int column, table::ColumnType type, Violation base)
      : ScanTask(column), type_(type), base_(std::move(base)) {}

  void Observe(const table::Cell& cell, int64_t line) override {
    if (cell.is_null) return;
    uint64_t first = 0, second = 0;
    if (table::IsNumeric(type_)) {
      std::optional<double> number = NumericValue(type_, cell.text);
      if (!number) return;  // NaN is not a value
      double value = *number == 0 ? 0.0 : *number;
      first = Mix(std::bit_cast<uint64_t>(value));  // a bijection: exact
    } else if (type_ == table::ColumnType::kTimestamp) {
      Result<int64_t> millis = table::ParseTimestampMillis(cell.text);
      if (!millis.ok()) return;
      first = Mix(static_cast<uint64_t>(*millis));
    } else {
      std::string_view text = CategoryValue(type_, cell.text);
      first = Xxh3(text);
      second = std::hash<std::string_view>{}(text) | 1;
    }
    if (!seen_.Insert(first, second)) offenders_.Record(line, cell);
  }

  std::optional<Violation> Resolve(int64_t) override {
    if (offenders_.count == 0) return std::nullopt;
    Violation violation = base_;
    violation.observed = std::to_string(offenders_.count) + " rows repeat an earlier value";
    offenders_.FillInto(violation);
    return violation;
  }

 private:
  table::ColumnType type_;
  Violation base_;
  KeySet seen_;
  Offenders offenders_;
};

// Counts the current values of a category column into the reference's top values plus "other",
// for PSI when the current profile's top list does not cover every value.
class CategoryCountScan : public ScanTask {
 public:
  CategoryCountScan(int column, table::ColumnType type, std::vector<std::string> values,
                    std::vector<double> reference_counts, double limit, Violation base)
      : ScanTask(column),
        type_(type),
        reference_counts_(std::move(reference_counts)),
        counts_(reference_counts_.size(), 0),
        limit_(limit),
        base_(std::move(base)) {
    for (size_t i = 0; i < values.size(); ++i) index_.emplace(std::move(values[i]), i);
  }

  void Observe(const table::Cell& cell, int64_t) override {
    if (cell.is_null) return;
    auto it = index_.find(CategoryValue(type_, cell.text));
    counts_[it == index_.end() ? counts_.size() - 1 : it->second] += 1;
  }

  std::optional<Violation> Resolve(int64_t) override;

 private:
  table::ColumnType type_;
  std::unordered_map<std::string, size_t, TransparentHash, std::equal_to<>> index_;
  std::vector<double> reference_counts_;  // the last bin is "other"
  std::vector<double> counts_;
  double limit_;
  Violation base_;
};

std::optional<Violation> PsiVerdict(const std::vector<double>& expected,
                                    const std::vector<double>& actual, double limit,
                                    Violation violation) {
  double actual_total = 0;
  for (double count : actual) actual_total += count;
  if (actual_total == 0) {
    violation.observed = "no values to compare";
    return violation;
  }
  double psi = Psi(expected, actual);
  if (psi <= limit) return std::nullopt;
  violation.observed = FormatNumber(psi);
  return violation;
}

std::optional<Violation> CategoryCountScan::Resolve(int64_t) {
  return PsiVerdict(reference_counts_, counts_, limit_, base_);
}

class Validator {
 public:
  Validator(const TableVersion& version, const Json& profile, const ReferenceProfiles& references)
      : version_(version), profile_(profile), references_(references) {}

  Status Check(const TableRules& rules);
  Result<std::vector<Violation>> Finish(ChunkLoader& loader);

 private:
  Violation Base(const std::string& column, const std::string& rule, std::string expected) const {
    Violation violation;
    violation.table = version_.name;
    violation.column = column;
    violation.rule = rule;
    violation.expected = std::move(expected);
    return violation;
  }
  void Report(Violation violation) { slots_.emplace_back(std::move(violation)); }
  void Scan(std::unique_ptr<ScanTask> task) {
    task_slots_.push_back(slots_.size());
    slots_.emplace_back(std::nullopt);
    tasks_.push_back(std::move(task));
  }

  void CheckBound(const TableRules::Column& rules, int index, const Json* stats, bool below);
  Status CheckDrift(const TableRules::Column& rules, int index, const Json* stats);
  Result<const Json*> ReferenceColumn(const std::string& reference, const std::string& column,
                                      Violation& failure);

  const TableVersion& version_;
  const Json& profile_;
  const ReferenceProfiles& references_;
  std::map<std::string, std::optional<Json>> reference_profiles_;
  std::vector<std::optional<Violation>> slots_;  // in rule order; tasks fill theirs after the scan
  std::vector<std::unique_ptr<ScanTask>> tasks_;
  std::vector<size_t> task_slots_;
};

Status Validator::Check(const TableRules& rules) {
  if (rules.min_rows || rules.max_rows) {
    int64_t rows = static_cast<int64_t>(version_.rows);
    std::string expected = rules.min_rows && rules.max_rows
                               ? "between " + std::to_string(*rules.min_rows) + " and " +
                                     std::to_string(*rules.max_rows)
                           : rules.min_rows ? ">= " + std::to_string(*rules.min_rows)
                                            : "<= " + std::to_string(*rules.max_rows);
    if ((rules.min_rows && rows < *rules.min_rows) || (rules.max_rows && rows > *rules.max_rows)) {
      Violation violation = Base("", "row_count", expected);
      violation.observed = std::to_string(rows) + " rows";
      Report(std::move(violation));
    }
  }
  for (const TableRules::Column& column : rules.columns) {
    int index = version_.schema.Find(column.name);
    if (index < 0) {
      if (column.required) {
        Violation violation = Base(column.name, "required", "column present");
        violation.observed = "missing";
        Report(std::move(violation));
      }
      continue;  // the other rules of an absent column do not apply
    }
    const table::ColumnType type = version_.schema.columns[static_cast<size_t>(index)].type;
    const Json* stats = FindProfileColumn(profile_, column.name);
    if (column.type && *column.type != type) {
      Violation violation =
          Base(column.name, "type", std::string(table::ColumnTypeName(*column.type)));
      violation.observed = std::string(table::ColumnTypeName(type));
      Report(std::move(violation));
    }
    if (column.not_null) {
      Violation base =
          Base(column.name, "not_null", ">= " + FormatNumber(*column.not_null) + " non-null");
      bool violated = true;  // unknown without a profile: scan
      if (stats != nullptr) {
        int64_t count = JsonInt(*stats, "count"), nulls = JsonInt(*stats, "nulls");
        violated =
            count + nulls > 0 &&
            static_cast<double>(count) / static_cast<double>(count + nulls) < *column.not_null;
      }
      if (violated) Scan(std::make_unique<NullScan>(index, std::move(base), *column.not_null));
    }
    if (column.min) CheckBound(column, index, stats, /*below=*/true);
    if (column.max) CheckBound(column, index, stats, /*below=*/false);
    if (column.allowed) {
      std::string list;
      for (size_t i = 0; i < column.allowed->size(); ++i) {
        if (i == 10) {
          list += ", ... (" + std::to_string(column.allowed->size()) + " values)";
          break;
        }
        list += (i == 0 ? "" : ", ") + (*column.allowed)[i];
      }
      Scan(std::make_unique<AllowedScan>(index, type, *column.allowed,
                                         Base(column.name, "allowed", "one of [" + list + "]")));
    }
    if (column.unique) {
      // A category column whose profile counted every value once needs no scan.
      bool known_unique = stats != nullptr && IsCategoryType(type) &&
                          stats->value("distinct_exact", false) &&
                          JsonInt(*stats, "distinct") == JsonInt(*stats, "count");
      if (!known_unique) {
        Scan(std::make_unique<UniqueScan>(index, type,
                                          Base(column.name, "unique", "no repeated values")));
      }
    }
    if (column.drift) KILN_RETURN_IF_ERROR(CheckDrift(column, index, stats));
  }
  return Status::Ok();
}

void Validator::CheckBound(const TableRules::Column& rules, int index, const Json* stats,
                           bool below) {
  const TableRules::Bound& bound = below ? *rules.min : *rules.max;
  const std::string rule = below ? "min" : "max";
  Violation base = Base(rules.name, rule, (below ? ">= " : "<= ") + bound.text);
  const table::ColumnType type = version_.schema.columns[static_cast<size_t>(index)].type;
  const bool timestamp = type == table::ColumnType::kTimestamp;
  if (!(table::IsNumeric(type) && bound.number) && !(timestamp && bound.timestamp_ms)) {
    base.observed = "a " + std::string(table::ColumnTypeName(type)) + " column (" + rule +
                    " needs a " + (bound.number ? "numeric" : "timestamp") + " column)";
    Report(std::move(base));
    return;
  }
  bool violated = true;  // unknown without a profile: scan
  if (stats != nullptr) {
    auto extreme = stats->find(rule);
    if (extreme == stats->end() || extreme->is_null()) {
      violated = false;  // no values
    } else if (timestamp && extreme->is_string()) {
      Result<int64_t> millis = table::ParseTimestampMillis(extreme->get<std::string>());
      if (millis.ok()) {
        violated = below ? *millis < *bound.timestamp_ms : *millis > *bound.timestamp_ms;
      }
    } else if (type == table::ColumnType::kInt64 && bound.integer && extreme->is_number_integer()) {
      int64_t value = extreme->get<int64_t>();
      violated = below ? value < *bound.integer : value > *bound.integer;
    } else if (std::optional<double> value = JsonNumber(*extreme)) {
      violated = below ? *value < *bound.number : *value > *bound.number;
    }
  }
  if (violated) {
    Scan(std::make_unique<BoundScan>(index, type, bound, below, std::move(base)));
  }
}

Result<const Json*> Validator::ReferenceColumn(const std::string& reference,
                                               const std::string& column, Violation& failure) {
  auto cached = reference_profiles_.find(reference);
  if (cached == reference_profiles_.end()) {
    if (!references_) {
      return FailedPrecondition("drift rules need the reference profiles (none were given)");
    }
    KILN_ASSIGN_OR_RETURN(std::optional<Json> profile, references_(reference, version_.name));
    cached = reference_profiles_.emplace(reference, std::move(profile)).first;
  }
  if (!cached->second) {
    failure.observed = "no table '" + version_.name + "' at " + reference;
    return nullptr;
  }
  const Json* stats = FindProfileColumn(*cached->second, column);
  if (stats == nullptr) failure.observed = "no column '" + column + "' at " + reference;
  return stats;
}

Status Validator::CheckDrift(const TableRules::Column& rules, int index, const Json* stats) {
  const TableRules::Drift& drift = *rules.drift;
  const table::ColumnType type = version_.schema.columns[static_cast<size_t>(index)].type;
  for (const char* rule : {"max_ks", "max_psi"}) {
    const bool ks = std::string_view(rule) == "max_ks";
    std::optional<double> limit = ks ? drift.max_ks : drift.max_psi;
    if (!limit) continue;
    Violation base =
        Base(rules.name, rule, "<= " + FormatNumber(*limit) + " against " + drift.reference);
    KILN_ASSIGN_OR_RETURN(const Json* reference,
                          ReferenceColumn(drift.reference, rules.name, base));
    if (reference == nullptr) {
      Report(std::move(base));
      continue;
    }
    if (stats == nullptr) {
      base.observed = "no profile of the column";
      Report(std::move(base));
      continue;
    }
    std::optional<table::ColumnType> reference_type =
        table::ColumnTypeFromName(reference->value("type", std::string()));
    const bool numeric = table::IsNumeric(type);
    const bool categories = IsCategoryType(type);
    if ((ks && !numeric) || (!numeric && !categories)) {
      base.observed = "a " + std::string(table::ColumnTypeName(type)) + " column (" + rule +
                      " needs a numeric" + (ks ? "" : " or categorical") + " column)";
      Report(std::move(base));
      continue;
    }
    if (!reference_type || table::IsNumeric(*reference_type) != numeric ||
        (categories && !IsCategoryType(*reference_type))) {
      base.observed = "the column was " + reference->value("type", std::string("?")) + " at " +
                      drift.reference + ", is " + std::string(table::ColumnTypeName(type)) + " now";
      Report(std::move(base));
      continue;
    }
    if (ks) {
      std::vector<double> current = JsonSample(*stats);
      std::vector<double> expected = JsonSample(*reference);
      if (current.empty() || expected.empty()) {
        base.observed = "no values to compare";
        Report(std::move(base));
        continue;
      }
      double statistic = KsStatistic(expected, current);
      if (statistic > *limit) {
        base.observed = FormatNumber(statistic);
        Report(std::move(base));
      }
      continue;
    }
    if (numeric) {
      // The reference's histogram bins; the current values from the current sample.
      std::vector<double> edges, expected;
      if (auto histogram = reference->find("histogram"); histogram != reference->end()) {
        for (const Json& edge : histogram->value("edges", Json::array())) {
          edges.push_back(JsonNumber(edge).value_or(0));
        }
        for (const Json& count : histogram->value("counts", Json::array())) {
          expected.push_back(count.is_number() ? count.get<double>() : 0);
        }
      }
      double expected_total = 0;
      for (double count : expected) expected_total += count;
      if (edges.size() != expected.size() + 1 || expected.empty() || expected_total == 0) {
        base.observed = "the reference has no values";
        Report(std::move(base));
        continue;
      }
      std::vector<double> actual(expected.size(), 0);
      for (double value : JsonSample(*stats)) {
        auto bin =
            std::upper_bound(edges.begin() + 1, edges.end() - 1, value) - (edges.begin() + 1);
        actual[static_cast<size_t>(bin)] += 1;
      }
      if (std::optional<Violation> violation = PsiVerdict(expected, actual, *limit, base)) {
        Report(std::move(*violation));
      }
      continue;
    }
    // Categories: the reference's top values plus "other" (every value not listed).
    std::vector<std::string> values;
    std::vector<double> expected;
    double listed = 0;
    for (const Json& entry : reference->value("top", Json::array())) {
      values.push_back(entry.value("value", std::string()));
      expected.push_back(static_cast<double>(JsonInt(entry, "count")));
      listed += expected.back();
    }
    expected.push_back(std::max(0.0, static_cast<double>(JsonInt(*reference, "count")) - listed));
    if (listed + expected.back() == 0) {
      base.observed = "the reference has no values";
      Report(std::move(base));
      continue;
    }
    const Json& current_top = stats->value("top", Json::array());
    bool top_is_complete = stats->value("distinct_exact", false) &&
                           JsonInt(*stats, "distinct") == static_cast<int64_t>(current_top.size());
    if (!top_is_complete) {
      Scan(std::make_unique<CategoryCountScan>(index, type, std::move(values), std::move(expected),
                                               *limit, std::move(base)));
      continue;
    }
    std::vector<double> actual(expected.size(), 0);
    for (const Json& entry : current_top) {
      std::string value = entry.value("value", std::string());
      auto it = std::find(values.begin(), values.end(), value);
      actual[static_cast<size_t>(it - values.begin())] +=
          static_cast<double>(JsonInt(entry, "count"));
    }
    if (std::optional<Violation> violation = PsiVerdict(expected, actual, *limit, base)) {
      Report(std::move(*violation));
    }
  }
  return Status::Ok();
}

Result<std::vector<Violation>> Validator::Finish(ChunkLoader& loader) {
  if (!tasks_.empty()) {
    int64_t rows = 0;
    static const table::Cell kNull{std::string_view(), true, false};
    KILN_RETURN_IF_ERROR(ForEachRow(version_, loader, [&](const table::RowReader& row) {
      const std::vector<table::Cell>& cells = row.cells();
      const int64_t line = row.line();
      for (const std::unique_ptr<ScanTask>& task : tasks_) {
        size_t column = static_cast<size_t>(task->column());
        task->Observe(column < cells.size() ? cells[column] : kNull, line);
      }
      ++rows;
      return Status::Ok();
    }));
    for (size_t i = 0; i < tasks_.size(); ++i) slots_[task_slots_[i]] = tasks_[i]->Resolve(rows);
  }
  std::vector<Violation> violations;
  for (std::optional<Violation>& slot : slots_) {
    if (slot) violations.push_back(std::move(*slot));
  }
  return violations;
}

}  // namespace

Json Violation::ToJson() const {
  std::string message = table + (column.empty() ? "" : "." + column) + ": " + rule + ": expected " +
                        expected + ", observed " + observed;
  if (violating_rows > 0) {
    message += "; " + std::to_string(violating_rows) + (violating_rows == 1 ? " row" : " rows");
    for (size_t i = 0; i < sample_lines.size(); ++i) {
      message += (i == 0 ? ", e.g. line " : ", line ") + std::to_string(sample_lines[i]);
      if (i < sample_values.size()) message += ": " + Quote(sample_values[i]);
    }
  }
  return Json{{"table", table},
              {"column", column},
              {"rule", rule},
              {"expected", expected},
              {"observed", observed},
              {"violating_rows", violating_rows},
              {"sample_lines", sample_lines},
              {"sample_values", sample_values},
              {"message", message}};
}

Result<Rules> Rules::Parse(const std::string& yaml_text, const std::string& source_name) {
  Rules rules;
  rules.text_ = yaml_text;
  RulesParser parser(source_name);
  try {
    YAML::Node root = YAML::Load(yaml_text);
    KILN_RETURN_IF_ERROR(parser.ParseDocument(root, &rules.tables));
  } catch (const YAML::Exception& error) {
    return parser.Error(error.mark, error.msg);
  } catch (const std::exception& error) {
    return InvalidArgument(source_name + ": " + error.what());
  }
  return rules;
}

std::vector<std::string> Rules::DriftReferences() const {
  std::vector<std::string> references;
  for (const auto& [name, table] : tables) {
    for (const TableRules::Column& column : table->columns) {
      if (column.drift && std::find(references.begin(), references.end(),
                                    column.drift->reference) == references.end()) {
        references.push_back(column.drift->reference);
      }
    }
  }
  return references;
}

bool Rules::AppliesTo(const std::string& table) const {
  for (const auto& [name, rules] : tables) {
    if (name == table || name == "*") return true;
  }
  return false;
}

Result<std::vector<Violation>> Validate(const Rules& rules, const TableVersion& version,
                                        const Json& profile, ChunkLoader& loader,
                                        const ReferenceProfiles& references) {
  if (!version.is_table()) return std::vector<Violation>();  // files have no rows or columns
  Validator validator(version, profile, references);
  for (const auto& [name, table] : rules.tables) {
    if (name == version.name || name == "*") KILN_RETURN_IF_ERROR(validator.Check(*table));
  }
  return validator.Finish(loader);
}

}  // namespace kiln::data
