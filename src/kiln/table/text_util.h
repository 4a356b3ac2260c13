// Private helpers of the table layer: UTF-8 checks, JSON number grammar and string escaping,
// values quoted in error messages. Not part of the layer's interface.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kiln::table::internal {

// Offset of the first byte of the first ill-formed UTF-8 sequence (overlong forms, surrogates and
// code points above U+10FFFF are ill-formed), or std::string_view::npos if `text` is valid.
size_t FirstInvalidUtf8(std::string_view text);

// True if `text` is exactly one JSON number (RFC 8259):
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view text);

// Appends `text` as a JSON string literal. Ill-formed UTF-8 becomes U+FFFD so the output is
// always valid JSON.
void AppendJsonString(std::string_view text, std::string* out);

// `text` for an error message: at most about `max_bytes` bytes (cut on a UTF-8 boundary, then
// "..."), with control characters escaped so the message stays on one line.
std::string ForMessage(std::string_view text, size_t max_bytes = 40);

}  // namespace kiln::table::internal
