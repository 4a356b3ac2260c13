// The line delta: a text object written as whole lines copied from a base object plus the bytes
// of the lines that are new. Encoding 3 of the object store (object_store.h) is this body
// compressed as one zstd frame; this file is the body's codec and knows nothing of files.
//
//   body     := varint(literal_size) | literals(literal_size) | sequence*
//   sequence := varint(literal_length) | varint(copy_length)
//               | [varint(zigzag(copy_offset - previous_copy_end)) if copy_length > 0]
//
// Decoding a sequence appends the next literal_length bytes of `literals`, then copy_length
// bytes of the base starting at copy_offset. previous_copy_end is the end of the last copy
// (0 before the first), so a copy that resumes the base right after a replaced line costs a
// byte or two. Varints are LEB128 (7 bits a byte, low first, at most 10 bytes). A valid body
// has no empty sequence (both lengths 0), uses every literal byte, produces exactly raw_size
// bytes and is at most MaxLineDeltaBodySize(raw_size) bytes long.
//
// Lines end after '\n' (a '\r' before it is part of the line); the last line may lack one.
// The encoder copies only lines found byte-for-byte in the base; the decoder checks every
// length and offset against the base, the literals and raw_size before it allocates.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kiln/core/status.h"

namespace kiln::objects {

// A body never exceeds this (the encoder gives up instead), so a decoder can bound what it
// allocates for a body by the object's raw size.
constexpr uint64_t MaxLineDeltaBodySize(uint64_t raw_size) { return raw_size + 64; }

// The body for `raw` against `base`, or nullopt when a line delta does not pay: fewer than half
// of raw's bytes are lines of the base (a zstd delta finds sub-line matches and does better),
// more than three quarters of raw's first sixteenth (at least 16 KB) are new (a rewritten
// table: given up early, as the rest is most likely new too), or the body would exceed
// MaxLineDeltaBodySize. Deterministic; thread-safe (no shared state).
// Unchanged runs cost a memory compare; only lines that break a run are hashed, and the base's
// line index is built only when simple guesses (one line replaced, inserted or deleted) fail.
std::optional<std::string> EncodeLineDelta(std::string_view base, std::string_view raw);

// The raw bytes `body` describes against `base`. Internal with a message saying what is wrong
// (the caller adds which object) for anything out of bounds or not adding up to raw_size.
// Allocates raw_size bytes only after the whole body has been checked.
Result<std::string> DecodeLineDelta(std::string_view base, std::string_view body,
                                    uint64_t raw_size);

}  // namespace kiln::objects
