// The tabular file formats kiln reads and writes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kiln::table {

enum class Format { kCsv, kTsv, kJsonl };

std::string_view FormatName(Format format);  // "csv", "tsv", "jsonl"
std::optional<Format> FormatFromName(std::string_view name);
// By extension: .csv, .tsv/.tab, .jsonl/.ndjson (case-insensitive). nullopt: an opaque file.
std::optional<Format> FormatFromPath(std::string_view path);

}  // namespace kiln::table
