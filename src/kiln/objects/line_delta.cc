#include "kiln/objects/line_delta.h"

#include <bit>
#include <cstring>
#include <limits>
#include <vector>

#include "kiln/core/hash.h"

namespace kiln::objects {
namespace {

static_assert(std::endian::native == std::endian::little, "CommonPrefix reads words little-endian");

constexpr size_t kNone = std::numeric_limits<size_t>::max();

// How many leading bytes of a and b agree, up to `limit`. Eight bytes a step: this is the whole
// cost of an unchanged run.
size_t CommonPrefix(const char* a, const char* b, size_t limit) {
  size_t i = 0;
  while (i + 16 <= limit) {
    uint64_t a0, a1, b0, b1;
    std::memcpy(&a0, a + i, 8);
    std::memcpy(&a1, a + i + 8, 8);
    std::memcpy(&b0, b + i, 8);
    std::memcpy(&b1, b + i + 8, 8);
    if (((a0 ^ b0) | (a1 ^ b1)) != 0) {
      if (a0 != b0) return i + static_cast<size_t>(std::countr_zero(a0 ^ b0) / 8);
      return i + 8 + static_cast<size_t>(std::countr_zero(a1 ^ b1) / 8);
    }
    i += 16;
  }
  while (i < limit && a[i] == b[i]) ++i;
  return i;
}

// The end of the line starting at `from` (just past its '\n', or the end of text).
size_t LineEnd(std::string_view text, size_t from) {
  if (from >= text.size()) return text.size();
  const void* newline = std::memchr(text.data() + from, '\n', text.size() - from);
  if (newline == nullptr) return text.size();
  return static_cast<size_t>(static_cast<const char*>(newline) - text.data()) + 1;
}

void PutVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

uint64_t ZigZag(int64_t value) {
  return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
}

int64_t UnZigZag(uint64_t value) {
  return static_cast<int64_t>(value >> 1) ^ -static_cast<int64_t>(value & 1);
}

// Hash of each distinct base line -> its first offset. Open addressing; a slot is
// (upper 32 bits of the line's XXH3) << 32 | (offset + 1), 0 when empty. Lines whose tag is
// already in their probe run are skipped: repeats of a line, or (rarely) a tag collision, which
// only costs a missed copy because Find verifies bytes. A one-bit-per-hash filter of 8 bits a
// line sits in front: in a changed block most lookups miss, and the filter (a 35 KB array for
// a 1 MB chunk) answers those without touching the table, whose random reads are cache misses.
// Only the first kMaxIndexedLines lines are indexed, bounding memory (~25 bytes a line).
class LineIndex {
 public:
  static constexpr size_t kMaxIndexedLines = size_t{1} << 22;

  explicit LineIndex(std::string_view base) : base_(base) {
    std::vector<uint32_t> starts;
    for (size_t start = 0; start < base.size() && starts.size() < kMaxIndexedLines;
         start = LineEnd(base, start)) {
      starts.push_back(static_cast<uint32_t>(start));
    }
    std::vector<uint64_t> hashes(starts.size());
    for (size_t i = 0; i < starts.size(); ++i) {
      size_t end = i + 1 < starts.size() ? starts[i + 1] : LineEnd(base, starts[i]);
      hashes[i] = Xxh3(base.substr(starts[i], end - starts[i]));
    }
    slots_.assign(std::bit_ceil(std::max<size_t>(16, starts.size() + starts.size() / 2)), 0);
    slot_mask_ = slots_.size() - 1;
    filter_.assign(std::bit_ceil(std::max<size_t>(64, starts.size() * 8)) / 64, 0);
    filter_mask_ = filter_.size() * 64 - 1;
    constexpr size_t kPrefetchAhead = 16;  // hide the table's cache misses while building
    for (size_t i = 0; i < starts.size(); ++i) {
      if (i + kPrefetchAhead < starts.size()) {
        __builtin_prefetch(&slots_[hashes[i + kPrefetchAhead] & slot_mask_], 1);
      }
      uint64_t tag = hashes[i] >> 32;
      filter_[(tag & filter_mask_) / 64] |= uint64_t{1} << (tag % 64);
      for (size_t slot = hashes[i] & slot_mask_;; slot = (slot + 1) & slot_mask_) {
        if (slots_[slot] == 0) {
          slots_[slot] = tag << 32 | (uint64_t{starts[i]} + 1);
          break;
        }
        if (slots_[slot] >> 32 == tag) break;
      }
    }
  }

  // The base offset where `line` occurs as a line start, or kNone.
  size_t Find(std::string_view line) const {
    uint64_t hash = Xxh3(line);
    uint64_t tag = hash >> 32;
    if ((filter_[(tag & filter_mask_) / 64] & (uint64_t{1} << (tag % 64))) == 0) return kNone;
    for (size_t slot = hash & slot_mask_; slots_[slot] != 0; slot = (slot + 1) & slot_mask_) {
      if (slots_[slot] >> 32 != tag) continue;
      size_t offset = static_cast<size_t>(slots_[slot] & 0xffffffff) - 1;
      if (line.size() <= base_.size() - offset &&
          std::memcmp(base_.data() + offset, line.data(), line.size()) == 0) {
        return offset;
      }
    }
    return kNone;
  }

 private:
  std::string_view base_;
  std::vector<uint64_t> slots_;
  size_t slot_mask_ = 0;
  std::vector<uint64_t> filter_;
  size_t filter_mask_ = 0;
};

class Encoder {
 public:
  Encoder(std::string_view base, std::string_view raw) : base_(base), raw_(raw) {}

  std::optional<std::string> Run() {
    // Offsets in the index are 32 bits; objects are at most 1 GiB, so this never triggers.
    if (base_.size() >= std::numeric_limits<uint32_t>::max()) return std::nullopt;
    const size_t n = raw_.size();
    size_t pos = 0;                         // always a line start in raw
    size_t resume = 0;                      // where in the base raw probably continues
    size_t resume_end = LineEnd(base_, 0);  // end of the base line at `resume`
    int unmatched = 0;                      // raw lines in a row that were not found in the base
    auto set_resume = [&](size_t offset) {
      resume = offset;
      resume_end = LineEnd(base_, offset);
    };
    // Once raw's first sixteenth is done: if three quarters of it are new, the rest is most
    // likely new too (a rewritten table) and a zstd delta will be made anyway; stop paying here.
    const size_t checkpoint = std::max<size_t>(n / 16, 16 << 10);
    bool checked = false;
    while (pos < n) {
      if (!checked && pos >= checkpoint) {
        checked = true;
        if (literals_.size() * 4 > pos * 3) return std::nullopt;
      }
      // The common case: raw continues the base where the last copy ended.
      if (resume < base_.size()) {
        size_t same = CommonPrefix(raw_.data() + pos, base_.data() + resume,
                                   std::min(n - pos, base_.size() - resume));
        size_t take = same;
        if (pos + same < n) {  // copy whole lines only
          const void* newline = memrchr(raw_.data() + pos, '\n', same);
          take =
              newline == nullptr
                  ? 0
                  : static_cast<size_t>(static_cast<const char*>(newline) - raw_.data()) + 1 - pos;
        }
        if (take > 0) {
          Copy(resume, take);
          pos += take;
          set_resume(resume + take);
          unmatched = 0;
          continue;
        }
      }
      // The line at pos breaks the run. Try the cheap guesses before hashing anything.
      const size_t line_end = LineEnd(raw_, pos);
      const size_t length = line_end - pos;
      if (Matches(pos, length, resume_end)) {  // a base line was deleted
        Copy(resume_end, length);
        pos = line_end;
        set_resume(resume_end + length);
        unmatched = 0;
        continue;
      }
      const size_t next_length = LineEnd(raw_, line_end) - line_end;  // 0 at the end
      bool replaced = next_length > 0 && Matches(line_end, next_length, resume_end);
      bool inserted = !replaced && next_length > 0 && Matches(line_end, next_length, resume);
      // Two unexplained lines in a row: a moved or deleted block, so look the line up. In a
      // large raw, not before something was copied or the checkpoint passed: a rewritten table
      // then gives up without building the index (about 1 ms per MB of base).
      if (!replaced && !inserted && unmatched > 0 &&
          (pos > literals_.size() || checked || checkpoint >= n)) {
        if (!index_) index_.emplace(base_);
        size_t found = index_->Find(raw_.substr(pos, length));
        if (found != kNone) {
          Copy(found, length);
          pos = line_end;
          set_resume(found + length);
          unmatched = 0;
          continue;
        }
      }
      Literal(pos, line_end);
      pos = line_end;
      if (literals_.size() * 2 > n) return std::nullopt;  // cannot reach half copied
      if (!inserted) set_resume(resume_end);              // guess: this line replaced the base's
      unmatched = replaced || inserted ? 0 : unmatched + 1;
    }
    if (literals_.size() * 2 > n) return std::nullopt;
    if (literal_run_ > 0) sequences_.push_back({literal_run_, 0, 0});

    std::string body;
    body.reserve(literals_.size() + sequences_.size() * 4 + 10);
    PutVarint(literals_.size(), &body);
    body += literals_;
    uint64_t previous_end = 0;
    for (const Sequence& sequence : sequences_) {
      PutVarint(sequence.literal_length, &body);
      PutVarint(sequence.copy_length, &body);
      if (sequence.copy_length > 0) {
        PutVarint(
            ZigZag(static_cast<int64_t>(sequence.copy_offset) - static_cast<int64_t>(previous_end)),
            &body);
        previous_end = sequence.copy_offset + sequence.copy_length;
      }
    }
    if (body.size() > MaxLineDeltaBodySize(n)) return std::nullopt;
    return body;
  }

 private:
  struct Sequence {
    uint64_t literal_length;
    uint64_t copy_offset;
    uint64_t copy_length;
  };

  // Whether the base holds raw[raw_pos, raw_pos + length) at base_pos.
  bool Matches(size_t raw_pos, size_t length, size_t base_pos) const {
    return base_pos <= base_.size() && length <= base_.size() - base_pos &&
           std::memcmp(raw_.data() + raw_pos, base_.data() + base_pos, length) == 0;
  }

  void Copy(size_t offset, size_t length) {
    if (literal_run_ == 0 && !sequences_.empty() &&
        sequences_.back().copy_offset + sequences_.back().copy_length == offset) {
      sequences_.back().copy_length += length;  // contiguous in the base: one longer copy
      return;
    }
    sequences_.push_back({literal_run_, offset, length});
    literal_run_ = 0;
  }

  void Literal(size_t from, size_t to) {
    literals_.append(raw_.data() + from, to - from);
    literal_run_ += to - from;
  }

  const std::string_view base_;
  const std::string_view raw_;
  std::vector<Sequence> sequences_;
  std::string literals_;
  uint64_t literal_run_ = 0;        // literal bytes since the last sequence
  std::optional<LineIndex> index_;  // built on first need
};

// Reads LEB128 varints; every read is bounds-checked.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  bool Varint(uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) return false;
      auto byte = static_cast<uint8_t>(bytes_[pos_++]);
      if (shift == 63 && byte > 1) return false;  // more than 64 bits
      result |= uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;
  }
  size_t pos() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }
  bool done() const { return pos_ == bytes_.size(); }
  void Skip(size_t count) { pos_ += count; }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

Status Bad(const std::string& what) { return Internal("line delta: " + what); }

// Walks the sequences, checking each against the base, the literals and raw_size; copies into
// `out` when it is not null (the second pass, after a first has checked everything).
Status Apply(std::string_view base, std::string_view literals, std::string_view sequences,
             uint64_t raw_size, char* out) {
  Reader reader(sequences);
  uint64_t written = 0;
  uint64_t literals_used = 0;
  uint64_t previous_end = 0;
  while (!reader.done()) {
    uint64_t literal_length = 0;
    uint64_t copy_length = 0;
    uint64_t offset_code = 0;
    size_t at = reader.pos();
    if (!reader.Varint(&literal_length) || !reader.Varint(&copy_length) ||
        (copy_length > 0 && !reader.Varint(&offset_code))) {
      return Bad("truncated or oversized varint in the sequence at byte " + std::to_string(at));
    }
    if (literal_length == 0 && copy_length == 0) {
      return Bad("empty sequence at byte " + std::to_string(at));
    }
    if (literal_length > literals.size() - literals_used) {
      return Bad("literal of " + std::to_string(literal_length) + " bytes overruns the " +
                 std::to_string(literals.size() - literals_used) + " literal bytes left");
    }
    if (literal_length > raw_size - written || copy_length > raw_size - written - literal_length) {
      return Bad("sequences produce more than the header's raw size " + std::to_string(raw_size));
    }
    if (out != nullptr) {
      std::memcpy(out + written, literals.data() + literals_used, literal_length);
    }
    literals_used += literal_length;
    written += literal_length;
    if (copy_length == 0) continue;
    int64_t delta = UnZigZag(offset_code);
    // offset = previous_end + delta, which must lie within the base with its whole copy.
    uint64_t offset = previous_end + static_cast<uint64_t>(delta);
    bool in_base = delta < 0 ? static_cast<uint64_t>(-(delta + 1)) < previous_end
                             : static_cast<uint64_t>(delta) <= base.size() - previous_end;
    if (!in_base || copy_length > base.size() - offset) {
      return Bad("copy of " + std::to_string(copy_length) + " bytes at " + std::to_string(delta) +
                 " from base offset " + std::to_string(previous_end) +
                 " reaches outside the base's " + std::to_string(base.size()) + " bytes");
    }
    if (out != nullptr) std::memcpy(out + written, base.data() + offset, copy_length);
    written += copy_length;
    previous_end = offset + copy_length;
  }
  if (written != raw_size) {
    return Bad("sequences produce " + std::to_string(written) + " bytes, the header says " +
               std::to_string(raw_size));
  }
  if (literals_used != literals.size()) {
    return Bad(std::to_string(literals.size() - literals_used) + " literal bytes unused");
  }
  return Status::Ok();
}

}  // namespace

std::optional<std::string> EncodeLineDelta(std::string_view base, std::string_view raw) {
  return Encoder(base, raw).Run();
}

Result<std::string> DecodeLineDelta(std::string_view base, std::string_view body,
                                    uint64_t raw_size) {
  if (body.size() > MaxLineDeltaBodySize(raw_size)) {
    return Bad("body of " + std::to_string(body.size()) + " bytes is too long for raw size " +
               std::to_string(raw_size));
  }
  Reader reader(body);
  uint64_t literal_size = 0;
  if (!reader.Varint(&literal_size)) return Bad("truncated literal size");
  if (literal_size > reader.remaining()) {
    return Bad("literal section of " + std::to_string(literal_size) + " bytes overruns the body");
  }
  std::string_view literals = body.substr(reader.pos(), literal_size);
  std::string_view sequences = body.substr(reader.pos() + literal_size);
  KILN_RETURN_IF_ERROR(Apply(base, literals, sequences, raw_size, nullptr));
  std::string raw(raw_size, '\0');
  KILN_RETURN_IF_ERROR(Apply(base, literals, sequences, raw_size, raw.data()));
  return raw;
}

}  // namespace kiln::objects
