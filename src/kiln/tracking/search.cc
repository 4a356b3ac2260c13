// Compiles parsed MLflow search strings (search_filter.h) into one SQL statement per search.
//
// Query shapes (schema: store/schema.cc):
//
//   SELECT r.run_uuid FROM runs r
//     JOIN latest_metrics f0 ON f0.run_uuid = r.run_uuid AND f0.key = ? AND <value test>
//     JOIN params f1 ON ...                    -- one inner join per metric/param/tag clause
//     LEFT JOIN latest_metrics o0 ON ...       -- one per order_by key not already joined
//   WHERE r.experiment_id IN (?, ...) AND r.lifecycle_stage = 'active' AND <attribute tests>
//   ORDER BY <order_by keys>, r.start_time DESC, r.run_uuid
//   LIMIT ? OFFSET ?
//
// latest_metrics, params and tags have the primary key (run_uuid, key), so an inner join per
// clause never duplicates a run, and it lets the planner start from the most selective index
// (e.g. latest_metrics(key, value) for `metrics.auc > 0.9`). Past kMaxFilterJoins clauses the
// rest become EXISTS subqueries (SQLite allows at most 64 tables in one join). Ordering by a
// metric that a clause already filters (`metrics.auc > 0.9` ... ORDER BY metrics.auc DESC) reuses
// that join and orders by its value alone, so SQLite walks latest_metrics(key, value) in order
// and stops near the LIMIT (on 100,000 runs: ~1 ms for 10 rows, ~40 ms CPU for 1,000).
//
// Semantics chosen where MLflow's are loose:
// - A run lacking the metric, param or tag of a clause never matches it (also for !=).
// - NaN metric values (is_nan = 1) match only `!=`, as IEEE comparison does; MLflow's SQL store
//   compares the stored placeholder 0 instead.
// - In ORDER BY, runs lacking the key come last in both directions; NaN metrics come after the
//   numbers and before the missing ones (as MLflow's SQL store orders them). Nullable attributes
//   (end_time, ...) likewise sort NULLs last, identically on SQLite and PostgreSQL.
// - Integer columns (times, version numbers) compared with a fractional number are compared
//   exactly: `start_time > 1.5` means start_time >= 2.
#include "kiln/tracking/search.h"

#include <algorithm>
#include <cassert>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "kiln/core/ids.h"
#include "kiln/core/json.h"
#include "kiln/tracking/search_filter.h"
#include "kiln/tracking/tracking_store.h"

namespace kiln::tracking {
namespace {

using filter::Clause;
using filter::Value;

constexpr size_t kMaxFilterJoins = 30;
constexpr size_t kMaxOrderBy = 20;

enum class Entity { kAttribute, kMetric, kParam, kTag, kDataset };

enum class ColumnType { kString, kInteger };

// A searchable or orderable attribute and the column it lives in.
struct Attribute {
  std::string_view name;
  std::string_view column;
  ColumnType type;
  bool nullable;
  bool list_allowed;  // IN / NOT IN lists (MLflow allows them for run_id only)
};

// What one search domain accepts.
struct Domain {
  // Entity-type prefixes ("metrics", "tag", ...) and what they mean; a bare name is an attribute.
  std::vector<std::pair<std::string_view, Entity>> prefixes;
  std::string_view prefix_list;  // for messages
  std::vector<Attribute> search_attributes;
  std::vector<Attribute> order_attributes;
  std::vector<std::string_view> string_comparators;
};

const std::vector<std::string_view> kNumericComparators = {">", ">=", "!=", "=", "<", "<="};
const std::vector<std::string_view> kKeyValueComparators = {"LIKE", "=", "!=", "ILIKE"};
const std::vector<std::string_view> kStringComparators = {"!=", "=",  "LIKE",
                                                          "ILIKE", "IN", "NOT IN"};

// Runs accept MLflow's long list of prefixes and bare attribute names.
const Domain& RunDomain() {
  static const Domain kDomain = [] {
    Domain d;
    d.prefixes = {{"metric", Entity::kMetric},        {"metrics", Entity::kMetric},
                  {"parameter", Entity::kParam},      {"parameters", Entity::kParam},
                  {"param", Entity::kParam},          {"params", Entity::kParam},
                  {"tag", Entity::kTag},              {"tags", Entity::kTag},
                  {"attribute", Entity::kAttribute},  {"attributes", Entity::kAttribute},
                  {"attr", Entity::kAttribute},       {"run", Entity::kAttribute},
                  {"dataset", Entity::kDataset},      {"datasets", Entity::kDataset}};
    d.prefix_list = "['metric', 'parameter', 'tag', 'attribute', 'dataset']";
    d.search_attributes = {
        {"artifact_uri", "r.artifact_uri", ColumnType::kString, true, false},
        {"created", "r.start_time", ColumnType::kInteger, true, false},
        {"Created", "r.start_time", ColumnType::kInteger, true, false},
        {"end_time", "r.end_time", ColumnType::kInteger, true, false},
        {"run name", "r.name", ColumnType::kString, true, false},
        {"Run name", "r.name", ColumnType::kString, true, false},
        {"Run Name", "r.name", ColumnType::kString, true, false},
        {"run_id", "r.run_uuid", ColumnType::kString, false, true},
        {"run_name", "r.name", ColumnType::kString, true, false},
        {"start_time", "r.start_time", ColumnType::kInteger, true, false},
        {"status", "r.status", ColumnType::kString, false, false},
        {"user_id", "r.user_id", ColumnType::kString, true, false},
    };
    d.order_attributes = d.search_attributes;
    d.order_attributes.push_back(
        {"experiment_id", "r.experiment_id", ColumnType::kInteger, false, false});
    d.string_comparators = kStringComparators;
    return d;
  }();
  return kDomain;
}

const std::vector<std::pair<std::string_view, Entity>> kRegistryPrefixes = {
    {"attribute", Entity::kAttribute}, {"tag", Entity::kTag}, {"tags", Entity::kTag}};
constexpr std::string_view kRegistryPrefixList = "('attribute', 'tag', 'tags')";

const Domain& ExperimentDomain() {
  static const Domain kDomain = [] {
    Domain d;
    d.prefixes = kRegistryPrefixes;
    d.prefix_list = kRegistryPrefixList;
    d.search_attributes = {
        {"creation_time", "e.creation_time", ColumnType::kInteger, true, false},
        {"last_update_time", "e.last_update_time", ColumnType::kInteger, true, false},
        {"name", "e.name", ColumnType::kString, false, false},
    };
    d.order_attributes = d.search_attributes;
    d.order_attributes.push_back(
        {"experiment_id", "e.experiment_id", ColumnType::kInteger, false, false});
    d.string_comparators = kStringComparators;
    return d;
  }();
  return kDomain;
}

const Domain& RegisteredModelDomain() {
  static const Domain kDomain = [] {
    Domain d;
    d.prefixes = kRegistryPrefixes;
    d.prefix_list = kRegistryPrefixList;
    d.search_attributes = {{"name", "m.name", ColumnType::kString, false, false}};
    d.order_attributes = {
        {"creation_timestamp", "m.creation_time", ColumnType::kInteger, true, false},
        {"last_updated_timestamp", "m.last_updated_time", ColumnType::kInteger, true, false},
        {"name", "m.name", ColumnType::kString, false, false},
        {"timestamp", "m.creation_time", ColumnType::kInteger, true, false},
    };
    d.string_comparators = kStringComparators;
    return d;
  }();
  return kDomain;
}

const Domain& ModelVersionDomain() {
  static const Domain kDomain = [] {
    Domain d;
    d.prefixes = kRegistryPrefixes;
    d.prefix_list = kRegistryPrefixList;
    d.search_attributes = {
        {"name", "v.name", ColumnType::kString, false, false},
        {"run_id", "v.run_id", ColumnType::kString, true, true},
        {"source_path", "v.source", ColumnType::kString, true, false},
        {"version_number", "v.version", ColumnType::kInteger, false, false},
    };
    d.order_attributes = {
        {"creation_timestamp", "v.creation_time", ColumnType::kInteger, true, false},
        {"last_updated_timestamp", "v.last_updated_time", ColumnType::kInteger, true, false},
        {"name", "v.name", ColumnType::kString, false, false},
        {"version_number", "v.version", ColumnType::kInteger, false, false},
    };
    d.string_comparators = {"!=", "=", "LIKE", "ILIKE", "IN"};
    return d;
  }();
  return kDomain;
}

// "{'>', '>=', ...}" as MLflow prints a Python set.
std::string SetText(const std::vector<std::string_view>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += '\'';
    out += items[i];
    out += '\'';
  }
  return out + "}";
}

std::string AttributeNames(const std::vector<Attribute>& attributes) {
  std::vector<std::string_view> names;
  for (const Attribute& a : attributes) names.push_back(a.name);
  return SetText(names);
}

bool Contains(const std::vector<std::string_view>& items, std::string_view item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

Status CheckComparator(const std::string& comparator,
                       const std::vector<std::string_view>& allowed) {
  if (Contains(allowed, comparator)) return Status::Ok();
  return InvalidArgument("Invalid comparator '" + comparator + "' not one of '" +
                         SetText(allowed) + "'");
}

struct ResolvedIdentifier {
  Entity entity;
  std::string key;
  const Attribute* attribute = nullptr;  // for kAttribute
};

Result<ResolvedIdentifier> Resolve(const filter::Identifier& identifier, const Domain& domain,
                                   const std::vector<Attribute>& attributes) {
  ResolvedIdentifier resolved{Entity::kAttribute, identifier.key};
  if (identifier.entity) {
    auto it = std::find_if(domain.prefixes.begin(), domain.prefixes.end(),
                           [&](const auto& p) { return p.first == *identifier.entity; });
    if (it == domain.prefixes.end()) {
      return InvalidArgument("Invalid entity type '" + *identifier.entity +
                             "'. Valid values are " + std::string(domain.prefix_list));
    }
    resolved.entity = it->second;
  }
  if (resolved.entity == Entity::kAttribute) {
    auto it = std::find_if(attributes.begin(), attributes.end(),
                           [&](const Attribute& a) { return a.name == resolved.key; });
    if (it == attributes.end()) {
      return InvalidArgument("Invalid attribute key '" + resolved.key +
                             "' specified. Valid keys are '" + AttributeNames(attributes) + "'");
    }
    resolved.attribute = &*it;
  }
  if (resolved.entity == Entity::kDataset && resolved.key != "name" && resolved.key != "digest" &&
      resolved.key != "context") {
    return InvalidArgument("Invalid dataset key '" + resolved.key +
                           "' specified. Valid keys are '{'name', 'digest', 'context'}'");
  }
  return resolved;
}

// The key/value table behind metrics, params and tags of one domain.
struct KeyValueTable {
  std::string_view table;
  // Columns matched to the searched row, {a} standing for the table's alias and {r} for the
  // searched row's: "{a}.run_uuid = {r}.run_uuid".
  std::string_view join_on;
  std::string_view row_alias;  // what {r} is unless the query is driven from a filter join
};

std::string JoinOn(const KeyValueTable& kv, const std::string& alias,
                   std::string_view row_alias = {}) {
  if (row_alias.empty()) row_alias = kv.row_alias;
  std::string out;
  std::string_view text = kv.join_on;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.substr(i, 3) == "{a}") {
      out += alias;
      i += 2;
    } else if (text.substr(i, 3) == "{r}") {
      out += row_alias;
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// The statement under construction. Fragments are kept per section so that bound parameters
// line up with the placeholders in text order: joins, then WHERE, then LIMIT/OFFSET.
class QueryBuilder {
 public:
  explicit QueryBuilder(const store::Dialect& dialect) : dialect_(dialect) {}

  const store::Dialect& dialect() const { return dialect_; }
  std::string NewAlias(std::string_view prefix) {
    return std::string(prefix) + std::to_string(alias_count_++);
  }
  size_t join_count() const { return join_count_ + filter_joins_.size(); }
  size_t filter_join_count() const { return filter_joins_.size(); }
  // How many rows of its table filter join i's own test passes, counted up to `cap`.
  SqlStatement CountFilterJoin(size_t i, int64_t cap) const {
    const FilterJoin& join = filter_joins_[i];
    SqlStatement statement;
    statement.sql = "SELECT COUNT(*) FROM (SELECT 1 FROM " + std::string(join.kv.table) + " " +
                    join.alias + " WHERE " + join.test + " LIMIT ?) counted";
    statement.params = join.params;
    statement.params.emplace_back(cap);
    return statement;
  }

  // An inner join of a filter clause: rows of kv.table (as `alias`) linked to the searched row
  // that pass `test`.
  void AddFilterJoin(const KeyValueTable& kv, std::string alias, std::string test,
                     std::vector<store::Value> params) {
    filter_joins_.push_back({kv, std::move(alias), std::move(test), std::move(params)});
  }
  // Any other join (LEFT JOINs for ORDER BY keys), after the filter joins.
  void AddJoin(std::string sql, std::vector<store::Value> params) {
    joins_ += " " + sql;
    Append(&join_params_, std::move(params));
    ++join_count_;
  }
  // SQLite: start from filter join `alias`, walked in the order of its index, then probe every
  // other filter join, and only then look up the searched row (CROSS JOIN fixes that order in
  // SQLite's planner), so rows that fail a filter never cost a lookup of the row. The other
  // joins link to the driver's row id. Nothing changes if `alias` is no filter join.
  void DriveFrom(const std::string& alias) {
    for (size_t i = 0; i < filter_joins_.size(); ++i) {
      if (filter_joins_[i].alias == alias) DriveFromFilterJoin(i);
    }
  }
  void DriveFromFilterJoin(size_t i) {
    driver_ = i;
    searched_rows_first_ = false;
  }
  // SQLite: walk the searched rows first, in the order of the index that the ORDER BY matches,
  // and probe every filter join for each (CROSS JOIN), so that the LIMIT ends the walk early.
  void DriveFromSearchedRows() {
    driver_.reset();
    searched_rows_first_ = true;
  }
  void AddWhere(std::string sql, std::vector<store::Value> params) {
    where_.push_back(std::move(sql));
    Append(&where_params_, std::move(params));
  }
  void AddOrder(std::string sql) { order_.push_back(std::move(sql)); }

  // `select` lists the columns; `from` is the searched table and its alias ("runs r").
  SqlStatement Finish(std::string_view select, std::string_view from, int64_t limit,
                      int64_t offset) {
    SqlStatement statement;
    statement.sql = std::string(select) + " FROM ";
    std::vector<store::Value> params;
    auto filter_join = [&](const FilterJoin& join, std::string_view keyword,
                           std::string_view row_alias) {
      statement.sql += " " + std::string(keyword) + " " + std::string(join.kv.table) + " " +
                       join.alias + " ON " + JoinOn(join.kv, join.alias, row_alias) + " AND " +
                       join.test;
      Append(&params, join.params);
    };
    if (driver_) {
      const FilterJoin& driver = filter_joins_[*driver_];
      statement.sql += std::string(driver.kv.table) + " " + driver.alias;
      for (size_t i = 0; i < filter_joins_.size(); ++i) {
        if (i != *driver_) filter_join(filter_joins_[i], "CROSS JOIN", driver.alias);
      }
      // The driver's link to the searched row, and its test, in the row's ON.
      statement.sql += " CROSS JOIN " + std::string(from) + " ON " +
                       JoinOn(driver.kv, driver.alias) + " AND " + driver.test;
      Append(&params, driver.params);
    } else {
      statement.sql += from;
      for (const FilterJoin& join : filter_joins_) {
        filter_join(join, searched_rows_first_ ? "CROSS JOIN" : "JOIN", {});
      }
    }
    statement.sql += joins_;
    for (size_t i = 0; i < where_.size(); ++i) {
      statement.sql += (i == 0 ? " WHERE " : " AND ") + where_[i];
    }
    for (size_t i = 0; i < order_.size(); ++i) {
      statement.sql += (i == 0 ? " ORDER BY " : ", ") + order_[i];
    }
    statement.sql += " LIMIT ? OFFSET ?";
    statement.params = std::move(params);
    Append(&statement.params, std::move(join_params_));
    Append(&statement.params, std::move(where_params_));
    statement.params.push_back(limit);
    statement.params.push_back(offset);
    return statement;
  }

 private:
  struct FilterJoin {
    KeyValueTable kv;
    std::string alias;
    std::string test;
    std::vector<store::Value> params;
  };

  static void Append(std::vector<store::Value>* to, std::vector<store::Value> from) {
    for (auto& v : from) to->push_back(std::move(v));
  }

  const store::Dialect& dialect_;
  int alias_count_ = 0;
  size_t join_count_ = 0;
  std::vector<FilterJoin> filter_joins_;
  std::optional<size_t> driver_;  // DriveFrom
  bool searched_rows_first_ = false;  // DriveFromSearchedRows
  std::string joins_;
  std::vector<store::Value> join_params_;
  std::vector<std::string> where_;
  std::vector<store::Value> where_params_;
  std::vector<std::string> order_;
};

// A SQL test with its bound parameters.
struct Predicate {
  std::string sql;
  std::vector<store::Value> params;
};

// `column <op> ?` for a string comparison; lists for IN / NOT IN.
Predicate StringPredicate(const store::Dialect& dialect, const std::string& column,
                          const std::string& comparator, const Value& value) {
  Predicate p;
  if (comparator == "IN" || comparator == "NOT IN") {
    p.sql = column + (comparator == "IN" ? " IN (" : " NOT IN (");
    for (size_t i = 0; i < value.list.size(); ++i) {
      p.sql += i == 0 ? "?" : ", ?";
      p.params.emplace_back(value.list[i]);
    }
    p.sql += ")";
    return p;
  }
  if (comparator == "=") {
    p.sql = column + " = ?";
  } else if (comparator == "!=") {
    p.sql = column + " <> ?";
  } else if (comparator == "LIKE") {
    p.sql = dialect.Like(column, "?");
  } else {
    assert(comparator == "ILIKE");
    p.sql = dialect.ILike(column, "?");
  }
  // The dialect may mention the pattern more than once; bind it for every placeholder.
  size_t placeholders = std::count(p.sql.begin(), p.sql.end(), '?');
  for (size_t i = 0; i < placeholders; ++i) p.params.emplace_back(value.string);
  return p;
}

std::string SqlOperator(const std::string& comparator) {
  return comparator == "!=" ? "<>" : comparator;
}

// `column <op> ?` on an integer column, exact for fractional and out-of-range numbers.
Predicate IntegerPredicate(const std::string& column, const std::string& comparator,
                           const Value& value) {
  const std::string op = SqlOperator(comparator);
  if (value.integer) return {column + " " + op + " ?", {*value.integer}};
  double d = value.number;
  // Doubles in [-2^63, 2^63) convert to int64 exactly when integral.
  constexpr double kLimit = 9223372036854775808.0;
  if (d >= -kLimit && d < kLimit && std::floor(d) == d) {
    return {column + " " + op + " ?", {static_cast<int64_t>(d)}};
  }
  const Predicate kNever{"1 = 0", {}};
  const Predicate kAnyValue{column + " IS NOT NULL", {}};
  if (comparator == "=") return kNever;
  if (comparator == "!=") return kAnyValue;
  bool greater = comparator == ">" || comparator == ">=";
  if (!(d >= -kLimit && d < kLimit)) {  // beyond int64 (or infinite)
    bool above = d > 0;
    return greater == above ? kNever : kAnyValue;
  }
  // Fractional: x > 1.5 and x >= 1.5 mean x > 1; x < 1.5 and x <= 1.5 mean x < 2.
  if (greater) return {column + " > ?", {static_cast<int64_t>(std::floor(d))}};
  return {column + " < ?", {static_cast<int64_t>(std::ceil(d))}};
}

// A metric value test on alias `m`; NaN matches only !=.
Predicate MetricPredicate(const std::string& alias, const std::string& comparator,
                          const Value& value) {
  if (comparator == "!=") {
    return {"(" + alias + ".is_nan = 1 OR " + alias + ".value <> ?)", {value.number}};
  }
  return {alias + ".is_nan = 0 AND " + alias + ".value " + comparator + " ?", {value.number}};
}

std::string EntityName(Entity entity) {
  switch (entity) {
    case Entity::kParam: return "parameter";
    case Entity::kTag: return "tag";
    case Entity::kMetric: return "metric";
    case Entity::kDataset: return "dataset";
    case Entity::kAttribute: return "attribute";
  }
  return "";
}

std::string NotQuoted(const Value& value) {
  return "Parameter value is either not quoted or unidentified quote types used for string "
         "value " + value.text + ". Use either single or double quotes.";
}

// Checks a clause's comparator and value against its identifier's type.
Status CheckClause(const Clause& clause, const ResolvedIdentifier& id, const Domain& domain) {
  const std::string& comparator = clause.comparator;
  const Value& value = clause.value;
  bool numeric = id.entity == Entity::kMetric ||
                 (id.entity == Entity::kAttribute && id.attribute->type == ColumnType::kInteger);
  if (numeric) {
    KILN_RETURN_IF_ERROR(CheckComparator(comparator, kNumericComparators));
    if (value.kind != Value::Kind::kNumber) {
      if (id.entity == Entity::kMetric) {
        return InvalidArgument("Expected numeric value type for metric. Found " + value.text);
      }
      return InvalidArgument("Expected numeric value type for numeric attribute: " + id.key +
                             ". Found " + value.text);
    }
    if (std::isnan(value.number)) {
      return InvalidArgument("Expected a number for '" + clause.identifier.text + "', found " +
                             value.text);
    }
    return Status::Ok();
  }
  bool lists = false;
  if (id.entity == Entity::kParam || id.entity == Entity::kTag) {
    KILN_RETURN_IF_ERROR(CheckComparator(comparator, kKeyValueComparators));
  } else if (id.entity == Entity::kDataset) {
    KILN_RETURN_IF_ERROR(CheckComparator(comparator, kStringComparators));
    lists = true;
  } else {
    KILN_RETURN_IF_ERROR(CheckComparator(comparator, domain.string_comparators));
    lists = id.attribute->list_allowed;
  }
  bool in = comparator == "IN" || comparator == "NOT IN";
  switch (value.kind) {
    case Value::Kind::kString:
      if (in) {
        return InvalidArgument("Comparator '" + comparator + "' in '" + clause.identifier.text +
                               " " + comparator + " " + value.text +
                               "' needs a list of quoted strings, e.g. ('a', 'b')");
      }
      return Status::Ok();
    case Value::Kind::kList:
      if (!lists) {
        return InvalidArgument(
            "Only the 'run_id' attribute supports comparison with a list of quoted string "
            "values.");
      }
      if (!in) {
        return InvalidArgument("A list of values can only be compared with IN or NOT IN, not '" +
                               comparator + "'");
      }
      return Status::Ok();
    case Value::Kind::kWord:
      return InvalidArgument(NotQuoted(value));
    case Value::Kind::kNumber:
      if (id.entity == Entity::kAttribute) {
        return InvalidArgument("Expected a quoted string value for attributes. Got value " +
                               value.text);
      }
      return InvalidArgument("Expected a quoted string value for " + EntityName(id.entity) +
                             " (e.g. 'my-value'). Got value " + value.text);
  }
  return Status::Ok();
}

Predicate AttributePredicate(const store::Dialect& dialect, const Attribute& attribute,
                             const Clause& clause) {
  if (attribute.type == ColumnType::kInteger) {
    return IntegerPredicate(std::string(attribute.column), clause.comparator, clause.value);
  }
  return StringPredicate(dialect, std::string(attribute.column), clause.comparator, clause.value);
}

// Adds the filter of one domain. `tables` maps metric/param/tag to their key/value tables;
// metric joins are recorded in `metric_aliases` so ORDER BY can reuse them.
struct DomainTables {
  std::optional<KeyValueTable> metrics;
  std::optional<KeyValueTable> params;
  KeyValueTable tags;
};

// A metric joined for a filter clause. `numeric` = the clause admits only existing, non-NaN
// values (every comparator but !=), so ORDER BY on it needs no NULL/NaN ranking and can follow
// the latest_metrics(key, value) index and stop at the LIMIT.
struct MetricJoin {
  std::string key;
  std::string alias;
  bool numeric;
};

Status AddFilter(std::string_view filter_text, const Domain& domain, const DomainTables& tables,
                 QueryBuilder* query, std::vector<MetricJoin>* metric_joins) {
  KILN_ASSIGN_OR_RETURN(std::vector<Clause> clauses, filter::ParseFilter(filter_text));
  const store::Dialect& dialect = query->dialect();
  for (const Clause& clause : clauses) {
    KILN_ASSIGN_OR_RETURN(ResolvedIdentifier id,
                          Resolve(clause.identifier, domain, domain.search_attributes));
    KILN_RETURN_IF_ERROR(CheckClause(clause, id, domain));
    switch (id.entity) {
      case Entity::kAttribute: {
        Predicate p = AttributePredicate(dialect, *id.attribute, clause);
        query->AddWhere(std::move(p.sql), std::move(p.params));
        break;
      }
      case Entity::kMetric:
      case Entity::kParam:
      case Entity::kTag: {
        const KeyValueTable& kv = id.entity == Entity::kMetric  ? *tables.metrics
                                  : id.entity == Entity::kParam ? *tables.params
                                                                : tables.tags;
        std::string alias = query->NewAlias("f");
        Predicate test = id.entity == Entity::kMetric
                             ? MetricPredicate(alias, clause.comparator, clause.value)
                             : StringPredicate(dialect, alias + ".value", clause.comparator,
                                               clause.value);
        std::vector<store::Value> params = {id.key};
        for (auto& v : test.params) params.push_back(std::move(v));
        std::string key_and_value = alias + ".key = ? AND " + test.sql;
        if (query->join_count() < kMaxFilterJoins) {
          query->AddFilterJoin(kv, alias, std::move(key_and_value), std::move(params));
          if (id.entity == Entity::kMetric) {
            metric_joins->push_back({id.key, alias, clause.comparator != "!="});
          }
        } else {
          query->AddWhere("EXISTS (SELECT 1 FROM " + std::string(kv.table) + " " + alias +
                              " WHERE " + JoinOn(kv, alias) + " AND " + key_and_value + ")",
                          std::move(params));
        }
        break;
      }
      case Entity::kDataset: {
        // Runs' dataset inputs: inputs(source DATASET -> destination RUN), as MLflow records them.
        std::string i = query->NewAlias("i");
        std::string d = query->NewAlias("d");
        std::string sql = "EXISTS (SELECT 1 FROM inputs " + i;
        std::string column;
        if (id.key == "context") {
          sql += " JOIN input_tags " + d + " ON " + d + ".input_uuid = " + i + ".input_uuid AND " +
                 d + ".name = 'mlflow.data.context'";
          column = d + ".value";
        } else {
          sql += " JOIN datasets " + d + " ON " + d + ".dataset_uuid = " + i + ".source_id";
          column = d + "." + id.key;
        }
        Predicate test = StringPredicate(dialect, column, clause.comparator, clause.value);
        sql += " WHERE " + i + ".source_type = 'DATASET' AND " + i +
               ".destination_type = 'RUN' AND " + i + ".destination_id = r.run_uuid AND " +
               test.sql + ")";
        query->AddWhere(std::move(sql), std::move(test.params));
        break;
      }
    }
  }
  return Status::Ok();
}

std::string Direction(bool ascending) { return ascending ? " ASC" : " DESC"; }

// One parsed order_by entry; `attribute` is set for attributes.
struct OrderKey {
  ResolvedIdentifier id;
  bool ascending;
};

Result<std::vector<OrderKey>> ParseOrderKeys(const std::vector<std::string>& order_by,
                                             const Domain& domain) {
  if (order_by.size() > kMaxOrderBy) {
    return InvalidArgument("order_by may hold at most " + std::to_string(kMaxOrderBy) +
                           " entries, got " + std::to_string(order_by.size()));
  }
  std::vector<OrderKey> keys;
  for (const std::string& text : order_by) {
    KILN_ASSIGN_OR_RETURN(filter::OrderBy parsed, filter::ParseOrderBy(text));
    KILN_ASSIGN_OR_RETURN(ResolvedIdentifier id,
                          Resolve(parsed.identifier, domain, domain.order_attributes));
    if (id.entity == Entity::kDataset) {
      return InvalidArgument("Invalid order_by entity type 'dataset' in '" + text +
                             "'; order by metrics, params, tags or attributes");
    }
    keys.push_back({std::move(id), parsed.ascending});
  }
  return keys;
}

void AddAttributeOrder(const Attribute& attribute, bool ascending, QueryBuilder* query) {
  std::string column(attribute.column);
  if (attribute.nullable) query->AddOrder("CASE WHEN " + column + " IS NULL THEN 1 ELSE 0 END");
  query->AddOrder(column + Direction(ascending));
}

// Registry and experiment searches order by attributes only.
Status AddAttributeOrders(const std::vector<OrderKey>& keys, QueryBuilder* query) {
  for (const OrderKey& key : keys) {
    if (key.id.entity != Entity::kAttribute) {
      return InvalidArgument("Invalid order_by entity: " + EntityName(key.id.entity) +
                             "; order by one of the listed attributes");
    }
    AddAttributeOrder(*key.id.attribute, key.ascending, query);
  }
  return Status::Ok();
}

bool HasAttribute(const std::vector<OrderKey>& keys, std::string_view column) {
  return std::any_of(keys.begin(), keys.end(), [&](const OrderKey& k) {
    return k.id.entity == Entity::kAttribute && k.id.attribute->column == column;
  });
}

Status CheckPaging(int64_t max_results, int64_t offset) {
  if (max_results < 1 || max_results > 1'000'000'000) {
    return InvalidArgument("max_results must be a positive integer, got " +
                           std::to_string(max_results));
  }
  if (offset < 0) return InvalidArgument("offset must not be negative, got " + std::to_string(offset));
  return Status::Ok();
}

std::string LifecycleTest(std::string_view column, ViewType view_type) {
  switch (view_type) {
    case ViewType::kActiveOnly: return std::string(column) + " = 'active'";
    case ViewType::kDeletedOnly: return std::string(column) + " = 'deleted'";
    case ViewType::kAll: return "";
  }
  return "";
}

// SQLite, a search in the default order with filter joins: where the query starts. The rows
// each join's own test passes are counted up to a cap (100 times the rows the page needs, within
// 1,000..50,000; the first 8 joins, none after one that passes no row). The query starts from
// the join with the fewest rows if that is under the cap (a walk of those few index entries,
// then a sort); when every join reaches the cap, from the experiment's runs in start-time order,
// probing the joins for each run until the page is full (when every clause passes that many
// rows, a page's worth of runs that pass them all comes early). Without statistics SQLite
// started from a metric's range however large: 66-85 ms for `metrics.auc > 0.9 AND
// params.model = 'xgb'` over 100,000 runs, 330-460 ms for `metrics.auc > 0.5 ...`. Runs of
// several experiments are not in one index order: they are never walked.
Status PlanDefaultOrder(const RunSearchSpec& spec, const RowCounter& count, QueryBuilder* query) {
  const int64_t wanted = std::clamp<int64_t>(spec.offset, 0, 1000000) + spec.max_results + 1;
  const int64_t cap = std::clamp<int64_t>(100 * wanted, 1000, 50000);
  std::optional<size_t> fewest;
  int64_t fewest_rows = cap;
  // The first kCountedClauses clauses are enough to find a selective one; none beats 0 rows.
  constexpr size_t kCountedClauses = 8;
  const size_t counted = std::min(query->filter_join_count(), kCountedClauses);
  for (size_t i = 0; i < counted && fewest_rows > 0; ++i) {
    KILN_ASSIGN_OR_RETURN(int64_t rows, count(query->CountFilterJoin(i, cap)));
    if (rows < fewest_rows) {
      fewest = i;
      fewest_rows = rows;
    }
  }
  if (fewest) {
    query->DriveFromFilterJoin(*fewest);
  } else if (spec.experiment_ids.size() == 1 && counted == query->filter_join_count()) {
    query->DriveFromSearchedRows();
  }
  return Status::Ok();
}

// The page query of a runs search selecting `columns` (of runs r) in the order of the results;
// `count` lets SQLite's plan follow the data (PlanDefaultOrder).
Result<SqlStatement> BuildRunPageSql(const RunSearchSpec& spec, const store::Dialect& dialect,
                                     std::string_view columns, const RowCounter* count) {
  KILN_RETURN_IF_ERROR(CheckPaging(spec.max_results, spec.offset));
  const Domain& domain = RunDomain();
  QueryBuilder query(dialect);
  DomainTables tables{KeyValueTable{"latest_metrics", "{a}.run_uuid = {r}.run_uuid", "r"},
                      KeyValueTable{"params", "{a}.run_uuid = {r}.run_uuid", "r"},
                      KeyValueTable{"tags", "{a}.run_uuid = {r}.run_uuid", "r"}};
  std::vector<MetricJoin> metric_joins;
  KILN_RETURN_IF_ERROR(AddFilter(spec.filter, domain, tables, &query, &metric_joins));
  KILN_ASSIGN_OR_RETURN(std::vector<OrderKey> keys, ParseOrderKeys(spec.order_by, domain));

  // WHERE parameters bind after all join parameters (QueryBuilder keeps the sections apart).
  if (spec.experiment_ids.empty()) {
    query.AddWhere("1 = 0", {});
  } else {
    std::string in = "r.experiment_id IN (";
    std::vector<store::Value> ids;
    for (size_t i = 0; i < spec.experiment_ids.size(); ++i) {
      in += i == 0 ? "?" : ", ?";
      ids.emplace_back(spec.experiment_ids[i]);
    }
    query.AddWhere(in + ")", std::move(ids));
  }
  std::string lifecycle = LifecycleTest("r.lifecycle_stage", spec.view_type);
  if (!lifecycle.empty()) query.AddWhere(lifecycle, {});

  std::optional<std::string> driver;  // a filter's metric join that the first key orders by
  for (const OrderKey& key : keys) {
    if (key.id.entity == Entity::kAttribute) {
      AddAttributeOrder(*key.id.attribute, key.ascending, &query);
      continue;
    }
    std::string alias;
    bool numeric = false;
    if (key.id.entity == Entity::kMetric) {
      for (const MetricJoin& join : metric_joins) {
        if (join.key == key.id.key && (alias.empty() || (join.numeric && !numeric))) {
          alias = join.alias;
          numeric = join.numeric;
        }
      }
    }
    if (alias.empty()) {
      const KeyValueTable& kv = key.id.entity == Entity::kMetric  ? *tables.metrics
                                : key.id.entity == Entity::kParam ? *tables.params
                                                                  : tables.tags;
      alias = query.NewAlias("o");
      query.AddJoin("LEFT JOIN " + std::string(kv.table) + " " + alias + " ON " +
                        JoinOn(kv, alias) + " AND " + alias + ".key = ?",
                    {key.id.key});
    }
    if (numeric && &key == &keys.front()) driver = alias;
    if (key.id.entity == Entity::kMetric && !numeric) {
      query.AddOrder("CASE WHEN " + alias + ".run_uuid IS NULL THEN 2 WHEN " + alias +
                     ".is_nan = 1 THEN 1 ELSE 0 END");
    } else if (key.id.entity != Entity::kMetric) {
      query.AddOrder("CASE WHEN " + alias + ".value IS NULL THEN 1 ELSE 0 END");
    }
    query.AddOrder(alias + ".value" + Direction(key.ascending));
  }
  // MLflow's natural order and tie-break. start_time is set on every run (NULLs would sort
  // differently on the two backends), and this shape matches runs_experiment_start.
  query.AddOrder("r.start_time DESC");
  query.AddOrder("r.run_uuid ASC");
  // Ordered by a metric a clause filters, SQLite already walks that metric's (key, value) index
  // and stops near the LIMIT; it is told to test the other clauses before looking up each run
  // (its planner, without statistics, looked the run up first: 2-3 times the work on 100,000
  // runs). PostgreSQL plans from its statistics.
  if (dialect.backend() == store::Backend::kSqlite) {
    if (driver) {
      query.DriveFrom(*driver);
    } else if (keys.empty() && count != nullptr && query.filter_join_count() > 0) {
      KILN_RETURN_IF_ERROR(PlanDefaultOrder(spec, *count, &query));
    }
  }
  return query.Finish("SELECT " + std::string(columns), "runs r", spec.max_results + 1,
                      spec.offset);
}

}  // namespace

Result<ViewType> ParseViewType(std::string_view text) {
  std::string upper(text);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper.empty() || upper == "ACTIVE_ONLY" || upper == "1") return ViewType::kActiveOnly;
  if (upper == "DELETED_ONLY" || upper == "2") return ViewType::kDeletedOnly;
  if (upper == "ALL" || upper == "3") return ViewType::kAll;
  return InvalidArgument("Invalid view type '" + std::string(text) +
                         "': expected ACTIVE_ONLY, DELETED_ONLY or ALL");
}

Result<int64_t> DecodePageToken(std::string_view token) {
  if (token.empty()) return int64_t{0};
  std::string decoded;
  if (!Base64Decode(token, &decoded)) {
    return InvalidArgument("Invalid page token, could not base64-decode");
  }
  Result<Json> json = ParseJson(decoded);
  if (!json.ok() || !json->is_object() || !json->contains("offset")) {
    return InvalidArgument("Invalid page token, expected base64 of {\"offset\": N}");
  }
  const Json& offset = (*json)["offset"];
  int64_t value = 0;
  if (offset.is_number_integer()) {
    value = offset.get<int64_t>();
  } else if (offset.is_string()) {
    const std::string& s = offset.get_ref<const std::string&>();
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || ptr != s.data() + s.size()) {
      return InvalidArgument("Invalid page token, offset '" + s + "' is not an integer");
    }
  } else {
    return InvalidArgument("Invalid page token, offset is not an integer");
  }
  if (value < 0) {
    return InvalidArgument("Invalid page token, offset " + std::to_string(value) +
                           " is negative");
  }
  return value;
}

std::string EncodePageToken(int64_t offset) {
  // Byte-for-byte what Python's json.dumps({"offset": n}) gives, so tokens are interchangeable.
  return Base64Encode("{\"offset\": " + std::to_string(offset) + "}");
}

Result<SqlStatement> BuildRunSearchSql(const RunSearchSpec& spec, const store::Dialect& dialect,
                                       const RowCounter* count) {
  return BuildRunPageSql(spec, dialect, "r.run_uuid", count);
}

Result<SqlStatement> BuildExperimentSearchSql(const ExperimentSearchSpec& spec,
                                              const store::Dialect& dialect) {
  KILN_RETURN_IF_ERROR(CheckPaging(spec.max_results, spec.offset));
  const Domain& domain = ExperimentDomain();
  QueryBuilder query(dialect);
  DomainTables tables{std::nullopt, std::nullopt,
                      KeyValueTable{"experiment_tags", "{a}.experiment_id = e.experiment_id"}};
  std::vector<MetricJoin> unused;
  KILN_RETURN_IF_ERROR(AddFilter(spec.filter, domain, tables, &query, &unused));
  std::string lifecycle = LifecycleTest("e.lifecycle_stage", spec.view_type);
  if (!lifecycle.empty()) query.AddWhere(lifecycle, {});

  std::vector<std::string> order_by = spec.order_by;
  if (order_by.empty()) order_by = {"creation_time DESC", "experiment_id ASC"};
  KILN_ASSIGN_OR_RETURN(std::vector<OrderKey> keys, ParseOrderKeys(order_by, domain));
  KILN_RETURN_IF_ERROR(AddAttributeOrders(keys, &query));
  // MLflow's tie-break: experiment_id descending unless ordered by it already.
  if (!HasAttribute(keys, "e.experiment_id")) query.AddOrder("e.experiment_id DESC");
  return query.Finish("SELECT e.experiment_id", "experiments e", spec.max_results + 1,
                      spec.offset);
}

Result<SqlStatement> BuildRegisteredModelSearchSql(const RegisteredModelSearchSpec& spec,
                                                   const store::Dialect& dialect) {
  KILN_RETURN_IF_ERROR(CheckPaging(spec.max_results, spec.offset));
  const Domain& domain = RegisteredModelDomain();
  QueryBuilder query(dialect);
  DomainTables tables{std::nullopt, std::nullopt,
                      KeyValueTable{"registered_model_tags", "{a}.name = m.name"}};
  std::vector<MetricJoin> unused;
  KILN_RETURN_IF_ERROR(AddFilter(spec.filter, domain, tables, &query, &unused));
  KILN_ASSIGN_OR_RETURN(std::vector<OrderKey> keys, ParseOrderKeys(spec.order_by, domain));
  KILN_RETURN_IF_ERROR(AddAttributeOrders(keys, &query));
  if (!HasAttribute(keys, "m.name")) query.AddOrder("m.name ASC");
  return query.Finish("SELECT m.name", "registered_models m", spec.max_results + 1, spec.offset);
}

Result<SqlStatement> BuildModelVersionSearchSql(const ModelVersionSearchSpec& spec,
                                                const store::Dialect& dialect) {
  KILN_RETURN_IF_ERROR(CheckPaging(spec.max_results, spec.offset));
  const Domain& domain = ModelVersionDomain();
  QueryBuilder query(dialect);
  DomainTables tables{
      std::nullopt, std::nullopt,
      KeyValueTable{"model_version_tags", "{a}.name = v.name AND {a}.version = v.version"}};
  std::vector<MetricJoin> unused;
  KILN_RETURN_IF_ERROR(AddFilter(spec.filter, domain, tables, &query, &unused));
  // MLflow hides versions whose deletion is pending (stage Deleted_Internal) from searches.
  query.AddWhere("v.current_stage <> 'Deleted_Internal'", {});

  std::vector<std::string> order_by = spec.order_by;
  if (order_by.empty()) {
    order_by = {"last_updated_timestamp DESC", "name ASC", "version_number DESC"};
  }
  KILN_ASSIGN_OR_RETURN(std::vector<OrderKey> keys, ParseOrderKeys(order_by, domain));
  KILN_RETURN_IF_ERROR(AddAttributeOrders(keys, &query));
  if (!HasAttribute(keys, "v.name")) query.AddOrder("v.name ASC");
  if (!HasAttribute(keys, "v.version")) query.AddOrder("v.version DESC");
  return query.Finish("SELECT v.name, v.version", "model_versions v", spec.max_results + 1,
                      spec.offset);
}

// --- Loading a page of runs ----------------------------------------------------------------------

namespace {

// The runs' own columns, in ReadRunInfo's order, then the revision of their children.
constexpr std::string_view kRunPageColumns =
    "r.run_uuid, r.name, r.experiment_id, r.user_id, r.status, r.start_time, r.end_time, "
    "r.artifact_uri, r.lifecycle_stage, r.revision";
constexpr size_t kRevisionColumn = 9;
// Page ids per child query: one statement for a page of up to 1,000 runs, and far below SQLite's
// bound-parameter limit.
constexpr size_t kIdChunk = 1000;

// A text cell without copying it ("" for NULL or a non-text value).
std::string_view TextCell(const store::Rows& rows, size_t row, size_t column) {
  const auto* text = std::get_if<std::string>(&rows.at(row, column));
  return text != nullptr ? std::string_view(*text) : std::string_view();
}

int64_t IntCell(const store::Rows& rows, size_t row, size_t column) {
  const store::Value& value = rows.at(row, column);
  if (const auto* integer = std::get_if<int64_t>(&value)) return *integer;
  if (const auto* real = std::get_if<double>(&value)) return static_cast<int64_t>(*real);
  return 0;
}

double DoubleCell(const store::Rows& rows, size_t row, size_t column) {
  const store::Value& value = rows.at(row, column);
  if (const auto* real = std::get_if<double>(&value)) return *real;
  if (const auto* integer = std::get_if<int64_t>(&value)) return static_cast<double>(*integer);
  return 0;
}

RunInfo ReadRunInfo(const store::Rows& rows, size_t i) {
  RunInfo info;
  info.run_id = TextCell(rows, i, 0);
  info.run_name = TextCell(rows, i, 1);
  info.experiment_id = std::to_string(IntCell(rows, i, 2));
  info.user_id = TextCell(rows, i, 3);
  info.status = TextCell(rows, i, 4);
  info.start_time = IntCell(rows, i, 5);
  if (!rows.IsNull(i, 6)) info.end_time = IntCell(rows, i, 6);
  info.artifact_uri = TextCell(rows, i, 7);
  info.lifecycle_stage = TextCell(rows, i, 8);
  return info;
}

// `column IN (...)` over ids[begin, end): bound parameters on SQLite; on PostgreSQL one text[]
// parameter (`= ANY`), so the statement text is the same for every page and its planning does not
// grow with the page.
std::string IdsTest(const store::Dialect& dialect, std::string_view column,
                    const std::vector<const std::string*>& ids, size_t begin, size_t end,
                    std::vector<store::Value>* params) {
  std::string sql(column);
  if (dialect.backend() == store::Backend::kPostgres) {
    std::string array = "{";
    for (size_t i = begin; i < end; ++i) {
      if (i > begin) array.push_back(',');
      array.push_back('"');
      for (char c : *ids[i]) {
        if (c == '"' || c == '\\') array.push_back('\\');
        array.push_back(c);
      }
      array.push_back('"');
    }
    array.push_back('}');
    params->emplace_back(std::move(array));
    return sql + " = ANY(CAST(? AS text[]))";
  }
  sql += " IN (";
  for (size_t i = begin; i < end; ++i) {
    sql += i == begin ? "?" : ", ?";
    params->emplace_back(*ids[i]);
  }
  return sql + ")";
}

// Adds the children of runs ids[begin, end) to their runs (`position` maps an id to its run).
Status LoadChildren(store::Transaction& tx, const std::vector<const std::string*>& ids,
                    size_t begin, size_t end,
                    const std::unordered_map<std::string_view, Run*>& position) {
  // Child rows mostly arrive grouped by run (SQLite walks the IN list through the primary key),
  // so the last lookup is remembered.
  std::string_view last_id;
  Run* last_run = nullptr;
  auto find = [&](std::string_view id) -> Run* {
    if (last_run != nullptr && id == last_id) return last_run;
    auto it = position.find(id);
    if (it == position.end()) return nullptr;
    last_id = it->first;
    last_run = it->second;
    return last_run;
  };
  const store::Dialect& dialect = tx.dialect();
  std::vector<store::Value> params;
  std::string test = IdsTest(dialect, "run_uuid", ids, begin, end, &params);

  KILN_ASSIGN_OR_RETURN(
      store::Rows metric_rows,
      tx.Query("SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics WHERE " +
                   test,
               params));
  for (size_t i = 0; i < metric_rows.size(); ++i) {
    if (Run* run = find(TextCell(metric_rows, i, 0))) {
      Metric& metric = run->metrics.emplace_back();
      metric.key = TextCell(metric_rows, i, 1);
      metric.value = IntCell(metric_rows, i, 3) != 0 ? std::numeric_limits<double>::quiet_NaN()
                                                     : DoubleCell(metric_rows, i, 2);
      metric.timestamp = IntCell(metric_rows, i, 4);
      metric.step = IntCell(metric_rows, i, 5);
    }
  }
  KILN_ASSIGN_OR_RETURN(store::Rows param_rows,
                        tx.Query("SELECT run_uuid, key, value FROM params WHERE " + test, params));
  for (size_t i = 0; i < param_rows.size(); ++i) {
    if (Run* run = find(TextCell(param_rows, i, 0))) {
      run->params.push_back({std::string(TextCell(param_rows, i, 1)),
                             std::string(TextCell(param_rows, i, 2))});
    }
  }
  KILN_ASSIGN_OR_RETURN(store::Rows tag_rows,
                        tx.Query("SELECT run_uuid, key, value FROM tags WHERE " + test, params));
  for (size_t i = 0; i < tag_rows.size(); ++i) {
    if (Run* run = find(TextCell(tag_rows, i, 0))) {
      run->tags.push_back({std::string(TextCell(tag_rows, i, 1)),
                           std::string(TextCell(tag_rows, i, 2))});
    }
  }

  std::vector<store::Value> input_params;
  std::string input_test = IdsTest(dialect, "i.destination_id", ids, begin, end, &input_params);
  KILN_ASSIGN_OR_RETURN(
      store::Rows input_rows,
      tx.Query("SELECT i.destination_id, i.input_uuid, d.name, d.digest, d.source_type, "
               "d.source, d.schema, d.profile FROM inputs i JOIN datasets d ON "
               "d.dataset_uuid = i.source_id WHERE i.source_type = 'DATASET' AND "
               "i.destination_type = 'RUN' AND " +
                   input_test + " ORDER BY i.destination_id, d.name, d.digest",
               input_params));
  if (input_rows.empty()) return Status::Ok();
  KILN_ASSIGN_OR_RETURN(
      store::Rows input_tag_rows,
      tx.Query("SELECT t.input_uuid, t.name, t.value FROM input_tags t JOIN inputs i ON "
               "i.input_uuid = t.input_uuid WHERE i.destination_type = 'RUN' AND " +
                   input_test + " ORDER BY t.input_uuid, t.name",
               input_params));
  std::unordered_map<std::string_view, std::vector<Tag>> tags_by_input;
  for (size_t i = 0; i < input_tag_rows.size(); ++i) {
    tags_by_input[TextCell(input_tag_rows, i, 0)].push_back(
        {std::string(TextCell(input_tag_rows, i, 1)), std::string(TextCell(input_tag_rows, i, 2))});
  }
  for (size_t i = 0; i < input_rows.size(); ++i) {
    Run* run = find(TextCell(input_rows, i, 0));
    if (run == nullptr) continue;
    DatasetInput& input = run->inputs.emplace_back();
    Dataset& dataset = input.dataset;
    dataset.name = TextCell(input_rows, i, 2);
    dataset.digest = TextCell(input_rows, i, 3);
    dataset.source_type = TextCell(input_rows, i, 4);
    dataset.source = TextCell(input_rows, i, 5);
    dataset.schema = TextCell(input_rows, i, 6);
    dataset.profile = TextCell(input_rows, i, 7);
    if (auto it = tags_by_input.find(TextCell(input_rows, i, 1)); it != tags_by_input.end()) {
      input.tags = std::move(it->second);
    }
  }
  return Status::Ok();
}

}  // namespace

// --- The children cache ---------------------------------------------------------------------------

namespace {

size_t EstimatedBytes(const Run& run) {
  size_t bytes = sizeof(Run) + run.info.run_id.size() * 2 + 64;  // the key, the LRU node
  for (const Metric& metric : run.metrics) bytes += sizeof(Metric) + metric.key.size();
  for (const Tag& param : run.params) bytes += sizeof(Tag) + param.key.size() + param.value.size();
  for (const Tag& tag : run.tags) bytes += sizeof(Tag) + tag.key.size() + tag.value.size();
  for (const DatasetInput& input : run.inputs) {
    const Dataset& d = input.dataset;
    bytes += sizeof(DatasetInput) + d.name.size() + d.digest.size() + d.source_type.size() +
             d.source.size() + d.schema.size() + d.profile.size();
    for (const Tag& tag : input.tags) bytes += sizeof(Tag) + tag.key.size() + tag.value.size();
  }
  return bytes;
}

}  // namespace

struct RunChildrenCache::State {
  struct Entry {
    int64_t revision;
    Run children;  // info unused
    size_t bytes;
    std::list<std::string>::iterator recency;
  };
  mutable std::mutex mutex;
  size_t budget;
  size_t bytes = 0;
  std::unordered_map<std::string, Entry> entries;
  std::list<std::string> recency;  // most recently used first

  void Erase(std::unordered_map<std::string, Entry>::iterator it) {
    bytes -= it->second.bytes;
    recency.erase(it->second.recency);
    entries.erase(it);
  }
};

RunChildrenCache::RunChildrenCache(size_t budget_bytes) : state_(std::make_unique<State>()) {
  state_->budget = budget_bytes;
}

RunChildrenCache::~RunChildrenCache() = default;

bool RunChildrenCache::Fill(const std::string& run_id, int64_t revision, Run* run) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  auto it = state_->entries.find(run_id);
  if (it == state_->entries.end() || it->second.revision != revision) return false;
  const Run& children = it->second.children;
  run->metrics = children.metrics;
  run->params = children.params;
  run->tags = children.tags;
  run->inputs = children.inputs;
  state_->recency.splice(state_->recency.begin(), state_->recency, it->second.recency);
  return true;
}

void RunChildrenCache::Put(const Run& run, int64_t revision) {
  const size_t bytes = EstimatedBytes(run);
  std::lock_guard<std::mutex> lock(state_->mutex);
  State& state = *state_;
  auto it = state.entries.find(run.info.run_id);
  if (it != state.entries.end()) {
    if (it->second.revision > revision) return;  // a newer revision is cached already
    state.Erase(it);
  }
  if (bytes > state.budget) return;
  while (state.bytes + bytes > state.budget && !state.recency.empty()) {
    state.Erase(state.entries.find(state.recency.back()));
  }
  state.recency.push_front(run.info.run_id);
  State::Entry& entry = state.entries[run.info.run_id];
  entry.revision = revision;
  entry.children.metrics = run.metrics;
  entry.children.params = run.params;
  entry.children.tags = run.tags;
  entry.children.inputs = run.inputs;
  entry.bytes = bytes;
  entry.recency = state.recency.begin();
  state.bytes += bytes;
}

size_t RunChildrenCache::entries() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->entries.size();
}

// --- The page ------------------------------------------------------------------------------------

Result<Page<Run>> SearchRunPage(store::Transaction& tx, const RunSearchSpec& spec,
                                RunChildrenCache* cache) {
  const RowCounter count_rows = [&tx](const SqlStatement& statement) -> Result<int64_t> {
    KILN_ASSIGN_OR_RETURN(store::Rows rows, tx.Query(statement.sql, statement.params));
    return rows.empty() ? int64_t{0} : rows.Int(0, 0);
  };
  KILN_ASSIGN_OR_RETURN(SqlStatement statement,
                        BuildRunPageSql(spec, tx.dialect(), kRunPageColumns, &count_rows));
  KILN_ASSIGN_OR_RETURN(store::Rows rows, tx.Query(statement.sql, statement.params));
  Page<Run> page;
  size_t count = std::min(rows.size(), static_cast<size_t>(spec.max_results));
  if (rows.size() > count) page.next_page_token = EncodePageToken(spec.offset + spec.max_results);
  page.items.resize(count);
  // The runs whose children are loaded here (not found in the cache), with their revisions.
  std::vector<const std::string*> ids;
  std::vector<std::pair<Run*, int64_t>> loaded;
  // Keys view the runs' own ids: page.items is not resized again while the map lives.
  std::unordered_map<std::string_view, Run*> position;
  for (size_t i = 0; i < count; ++i) {
    Run& run = page.items[i];
    run.info = ReadRunInfo(rows, i);
    const int64_t revision = IntCell(rows, i, kRevisionColumn);
    if (cache != nullptr && cache->Fill(run.info.run_id, revision, &run)) continue;
    ids.push_back(&run.info.run_id);
    loaded.emplace_back(&run, revision);
    position.emplace(run.info.run_id, &run);
  }
  for (size_t begin = 0; begin < ids.size(); begin += kIdChunk) {
    KILN_RETURN_IF_ERROR(
        LoadChildren(tx, ids, begin, std::min(ids.size(), begin + kIdChunk), position));
  }
  auto key_less = [](const auto& a, const auto& b) { return a.key < b.key; };
  auto sort_by_key = [&](auto& items) {
    if (!std::is_sorted(items.begin(), items.end(), key_less)) {
      std::sort(items.begin(), items.end(), key_less);
    }
  };
  for (auto& [run, revision] : loaded) {
    sort_by_key(run->metrics);
    sort_by_key(run->params);
    sort_by_key(run->tags);
    if (cache != nullptr) cache->Put(*run, revision);
  }
  return page;
}

}  // namespace kiln::tracking
