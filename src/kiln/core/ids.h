// Identifiers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln {

// A random 128-bit id as 32 lowercase hex digits (the shape of MLflow's run ids).
// Thread-safe; seeded from the OS.
std::string NewId();

// 64 random bits from the OS. Thread-safe.
uint64_t RandomUint64();

// True for MLflow's run id rule: ^[a-zA-Z0-9][\w\-]{0,255}$
bool IsValidRunId(std::string_view id);

// Standard base64 (with padding), for page tokens.
std::string Base64Encode(std::string_view bytes);
// Returns false on characters outside the alphabet.
bool Base64Decode(std::string_view text, std::string* out);

}  // namespace kiln
