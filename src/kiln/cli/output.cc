#include "kiln/cli/output.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>

namespace kiln::cli {
namespace {

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026

void AppendPadded(std::string& out, std::string_view text, size_t width) {
  out += text;
  for (size_t w = DisplayWidth(text); w < width; ++w) out += ' ';
}

}  // namespace

size_t DisplayWidth(std::string_view text) {
  size_t width = 0;
  for (char c : text) {
    if (!IsContinuationByte(c)) ++width;
  }
  return width;
}

std::string Truncate(std::string_view text, size_t max_width) {
  std::string clean;
  clean.reserve(text.size());
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    clean += (u < 0x20 || u == 0x7F) ? ' ' : c;
  }
  if (max_width == 0 || DisplayWidth(clean) <= max_width) return clean;
  // Keep max_width - 1 code points, then the ellipsis.
  size_t kept = 0;
  size_t end = 0;
  while (end < clean.size()) {
    if (!IsContinuationByte(clean[end])) {
      if (kept == max_width - 1) break;
      ++kept;
    }
    ++end;
  }
  return clean.substr(0, end) + std::string(kEllipsis);
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(std::max(cells.size(), headers_.size()));
  for (std::string& cell : cells) cell = Truncate(cell, max_cell_width_);
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  size_t columns = headers_.size();
  for (const auto& row : rows_) columns = std::max(columns, row.size());
  std::vector<size_t> widths(columns, 0);
  auto measure = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) widths[i] = std::max(widths[i], DisplayWidth(cells[i]));
  };
  measure(headers_);
  for (const auto& row : rows_) measure(row);

  std::string out;
  auto render_line = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < columns; ++i) {
      std::string_view cell = i < cells.size() ? std::string_view(cells[i]) : std::string_view();
      if (i > 0) line += "  ";
      AppendPadded(line, cell, widths[i]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  };
  render_line(headers_);
  for (const auto& row : rows_) render_line(row);
  return out;
}

std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& pairs,
                            std::string_view indent, size_t max_value_width) {
  size_t width = 0;
  for (const auto& [key, value] : pairs) width = std::max(width, DisplayWidth(key));
  std::string out;
  for (const auto& [key, value] : pairs) {
    std::string line(indent);
    AppendPadded(line, key, width);
    line += "  ";
    line += Truncate(value, max_value_width);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  }
  return out;
}

std::string FormatTimestamp(int64_t millis) {
  if (millis <= 0) return "";
  std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  std::tm local{};
  localtime_r(&seconds, &local);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", &local);
  return text;
}

std::string FormatDuration(int64_t millis) {
  if (millis < 0) return "";
  char text[32];
  if (millis < 1000) {
    std::snprintf(text, sizeof(text), "%lldms", static_cast<long long>(millis));
  } else if (millis < 60'000) {
    std::snprintf(text, sizeof(text), "%.1fs", static_cast<double>(millis) / 1000.0);
  } else if (millis < 3'600'000) {
    long long seconds = millis / 1000;
    std::snprintf(text, sizeof(text), "%lldm %02llds", seconds / 60, seconds % 60);
  } else {
    long long minutes = millis / 60'000;
    std::snprintf(text, sizeof(text), "%lldh %02lldm", minutes / 60, minutes % 60);
  }
  return text;
}

std::string FormatDouble(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char text[64];
  auto [end, error] = std::to_chars(text, text + sizeof(text), value);
  assert(error == std::errc());
  return std::string(text, end);
}

std::string JsonScalarText(const Json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) return FormatDouble(value.get<double>());
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  return value.dump();
}

void PrintJson(const Json& value) {
  std::cout << value.dump(2, ' ', false, Json::error_handler_t::replace) << '\n';
}

}  // namespace kiln::cli
