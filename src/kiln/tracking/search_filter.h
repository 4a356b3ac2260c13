// The syntax of MLflow search strings, without meaning: a filter is split into clauses of
// identifier, comparator and value, an order_by entry into identifier and direction. Which
// identifiers, comparators and values are allowed depends on what is searched (runs, experiments,
// registered models, model versions) and is checked by search.cc.
//
// Grammar (whitespace between tokens is free; keywords are case-insensitive):
//
//   filter      := "" | clause { "AND" clause }
//   clause      := identifier comparator value
//   identifier  := segment [ "." key ]          -- no "." means a bare attribute name
//   segment     := bare | quoted
//   key         := bare-with-dots | quoted       -- split at the first "." only
//   bare        := { letter | digit | "_" | "-" | "/" | ":" | byte >= 0x80 }+
//   quoted      := "`" ... "`" | '"' ... '"' | "'" ... "'"
//   comparator  := { "=" | "!" | "<" | ">" | "~" }+ | "LIKE" | "ILIKE" | "IN" | "NOT" "IN" | word
//   value       := string | number | "(" string { "," string } ")" | word
//   string      := "'" ... "'" | '"' ... '"'     -- a doubled quote or \<quote> is the quote itself
//   number      := [+-] ( digits [ "." digits ] | "." digits ) [ (e|E) [+-] digits ]
//   order_by    := identifier [ "ASC" | "DESC" ]
//
// Unknown comparators and unquoted words are kept (not rejected here) so that search.cc can
// report them with MLflow's messages, which name the allowed comparators for the identifier.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::tracking::filter {

struct Identifier {
  std::optional<std::string> entity;  // "metrics", "tag", ...; nullopt for a bare attribute
  std::string key;                    // quotes removed
  std::string text;                   // as written, for messages
};

struct Value {
  enum class Kind { kString, kNumber, kList, kWord };
  Kind kind = Kind::kString;
  std::string text;                 // as written, for messages
  std::string string;               // kString: unescaped content
  double number = 0;                // kNumber
  std::optional<int64_t> integer;   // kNumber written without "." or exponent, in int64 range
  std::vector<std::string> list;    // kList
};

struct Clause {
  Identifier identifier;
  std::string comparator;  // upper-cased: "=", "!=", "LIKE", "NOT IN", ...
  Value value;
};

struct OrderBy {
  Identifier identifier;
  bool ascending = true;
};

// Limits that keep one search to one reasonable SQL statement.
inline constexpr size_t kMaxClauses = 200;
inline constexpr size_t kMaxListValues = 10000;

// Errors are InvalidArgument naming the filter and the position of the problem.
Result<std::vector<Clause>> ParseFilter(std::string_view filter);
Result<OrderBy> ParseOrderBy(std::string_view order_by);

}  // namespace kiln::tracking::filter
