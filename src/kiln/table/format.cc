#include "kiln/table/format.h"

#include <cctype>

namespace kiln::table {
namespace {

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string_view FormatName(Format format) {
  switch (format) {
    case Format::kCsv: return "csv";
    case Format::kTsv: return "tsv";
    case Format::kJsonl: return "jsonl";
  }
  return "csv";
}

std::optional<Format> FormatFromName(std::string_view name) {
  if (name == "csv") return Format::kCsv;
  if (name == "tsv") return Format::kTsv;
  if (name == "jsonl") return Format::kJsonl;
  return std::nullopt;
}

std::optional<Format> FormatFromPath(std::string_view path) {
  size_t slash = path.find_last_of("/\\");
  std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  size_t dot = base.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;  // "csv", ".csv"
  std::string_view extension = base.substr(dot + 1);
  if (EqualsIgnoringCase(extension, "csv")) return Format::kCsv;
  if (EqualsIgnoringCase(extension, "tsv") || EqualsIgnoringCase(extension, "tab")) {
    return Format::kTsv;
  }
  if (EqualsIgnoringCase(extension, "jsonl") || EqualsIgnoringCase(extension, "ndjson")) {
    return Format::kJsonl;
  }
  return std::nullopt;
}

}  // namespace kiln::table
