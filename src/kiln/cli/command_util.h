// Helpers shared by the commands_*.cc files: reading fields of MLflow reply objects, parsing
// KEY=VALUE arguments, and resolving experiments given by id or name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/cli/mlflow_client.h"
#include "kiln/core/json.h"
#include "kiln/core/status.h"

namespace kiln::cli {

// A field of a reply object as text ("" when absent); numbers and booleans as written.
std::string Field(const Json& object, std::string_view key);
// A field holding an int64 (a number, or a string of digits as versions are); 0 when absent.
int64_t IntField(const Json& object, std::string_view key);
// A field holding an array; an empty array when absent.
const Json& ArrayField(const Json& object, std::string_view key);
// [{key, value}, ...] as pairs, in reply order.
std::vector<std::pair<std::string, std::string>> KeyValues(const Json& list);

// "KEY=VALUE" -> (KEY, VALUE); the key must be non-empty. `what` names the option in errors.
Result<std::pair<std::string, std::string>> ParseKeyValue(std::string_view text,
                                                          std::string_view what);
// [{key, value}, ...] from "KEY=VALUE" arguments.
Result<Json> KeyValueList(const std::vector<std::string>& arguments, std::string_view what);

// "active" | "deleted" | "all" -> MLflow's ACTIVE_ONLY | DELETED_ONLY | ALL.
std::string ViewTypeName(std::string_view view);

// The experiment object for an id or a name: an all-digit argument is tried as an id first,
// then as a name; anything else is a name.
Result<Json> ResolveExperiment(MlflowClient& client, const std::string& id_or_name);

// A quoted string literal for MLflow's filter grammar.
std::string FilterLiteral(std::string_view text);

bool AllDigits(std::string_view text);

}  // namespace kiln::cli
