// CSV/TSV and JSONL row readers.
//
// CSV fast path: a row without quotes is split by one pass of 64-byte blocks, each turned into a
// bitmask of the bytes that matter (delimiter, '"', '\n') with SSE2; cells point into the
// caller's buffer, so reading allocates nothing per row. The mask left over after a row's
// newline is carried into the next row. A row with a quote is re-read by the scalar slow path,
// which unescapes doubled quotes into a per-row scratch buffer.
//
// UTF-8 is validated once for the whole buffer (simdjson::validate_utf8, several GB/s); the
// first bad byte, if any, is reported when the row holding it is reached, so every row before
// it still reads.
#include "kiln/table/reader.h"

#include <fast_float/fast_float.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_map>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kiln/core/json.h"
#include "kiln/table/text_util.h"

namespace kiln::table {
namespace {

constexpr size_t kNpos = std::string_view::npos;
constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();
constexpr std::string_view kBom = "\xEF\xBB\xBF";

// A parse failure at byte `offset` of the buffer; turned into "FILE:LINE:COLUMN: what".
struct RowError {
  size_t offset = kNpos;
  std::string what;
  bool ok() const { return offset == kNpos; }
};

std::string FieldsPhrase(size_t count) {
  return std::to_string(count) + (count == 1 ? " field" : " fields");
}

class ReaderBase : public RowReader {
 public:
  int64_t line() const override { return row_line_; }
  size_t row_offset() const override { return row_start_; }
  std::string_view row_bytes() const override {
    return data_.substr(row_start_, row_end_ - row_start_);
  }

 protected:
  ReaderBase(std::string_view data, ReadOptions options, bool at_file_start)
      : data_(data), options_(std::move(options)) {
    if (at_file_start && data_.substr(0, kBom.size()) == kBom) begin_ = kBom.size();
    pos_ = row_start_ = row_end_ = begin_;
    next_line_ = row_line_ = options_.first_line;
    bad_utf8_ = internal::FirstInvalidUtf8(data_);
  }

  // The error for byte `offset`, which lies in the current row (starting at row_start_, a line
  // start, on line row_line_). Remembered: a reader that failed keeps failing.
  Status Fail(const RowError& error) {
    size_t offset = std::min(error.offset, data_.size());
    int64_t line = row_line_;
    size_t line_start = row_start_;
    for (size_t i = row_start_; i < offset; ++i) {
      if (data_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    size_t column = offset - line_start + 1;
    failure_ = InvalidArgument(options_.file_name + ":" + std::to_string(line) + ":" +
                               std::to_string(column) + ": " + error.what);
    return failure_;
  }

  // Prefers an invalid-UTF-8 error over `error` if the bad byte comes first (or `error` is ok
  // and the bad byte is inside the row that ends at `row_end`).
  RowError PreferUtf8(RowError error, size_t row_end) const {
    size_t reach = error.ok() ? row_end : error.offset;
    if (bad_utf8_ != kNpos && bad_utf8_ < reach) return {bad_utf8_, "invalid UTF-8"};
    return error;
  }

  std::string TooLarge() const {
    return "field is larger than " + std::to_string(options_.max_field_bytes) + " bytes";
  }

  std::string_view data_;
  ReadOptions options_;
  size_t begin_ = 0;         // first byte after a skipped BOM
  size_t bad_utf8_ = kNpos;  // first byte of ill-formed UTF-8
  size_t pos_ = 0;           // start of the next row
  int64_t next_line_ = 1;    // line of pos_
  size_t row_start_ = 0;     // current row: [row_start_, row_end_), starting on row_line_
  size_t row_end_ = 0;
  int64_t row_line_ = 1;
  Status failure_;
};

// ---------------------------------------------------------------------------------------------
// CSV / TSV

class CsvReader final : public ReaderBase {
 public:
  CsvReader(std::string_view data, ReadOptions options, bool at_file_start, char delimiter)
      : ReaderBase(data, std::move(options), at_file_start), delimiter_(delimiter) {}

  Status Init();
  const std::vector<std::string>& column_names() const override { return names_; }
  const std::vector<Cell>& cells() const override { return cells_; }
  Result<bool> Next() override;

 private:
  struct Fixup {
    size_t cell;
    size_t offset;  // in scratch_
    size_t size;
  };

  // Reads the row at pos_ into cells_ (at most `limit` cells; kNoLimit for the header) and
  // moves pos_ past it.
  RowError ReadRow(size_t limit);
  // Returns false on meeting a quote: the row must be read by ParseRowSlow.
  bool ParseRowFast(size_t limit);
  // ParseRowFast for a data row (`limit` is cells_.size()) that is well formed: true if the row
  // has no quote and exactly `limit` fields, none over max_field_bytes. False for anything else,
  // leaving the mask state as it found it, so that ReadRow reads the row again the general way.
  bool ParseDataRowFast(size_t limit);
  RowError ParseRowSlow(size_t limit);
  void ResetRow() {
    field_count_ = 0;
    extra_field_start_ = kNpos;
    oversized_start_ = kNpos;
    field_starts_.clear();
    scratch_.clear();
    fixups_.clear();
  }
  // Inlined: ParseRowFast calls it for every field of every row.
  [[gnu::always_inline]] void AddField(size_t start, std::string_view text, bool quoted,
                                       size_t limit) {
    if (field_count_ < limit) [[likely]] {
      // cells_ keeps its size between rows: overwriting is cheaper than clear() + push_back().
      Cell cell{text, text.empty() && !quoted, quoted};
      if (field_count_ < cells_.size()) {
        cells_[field_count_] = cell;
      } else {
        cells_.push_back(cell);
      }
    } else if (field_count_ == limit) {
      extra_field_start_ = start;
    }
    if (text.size() > options_.max_field_bytes && oversized_start_ == kNpos) [[unlikely]] {
      oversized_start_ = start;
    }
    if (limit == kNoLimit) [[unlikely]] field_starts_.push_back(start);
    ++field_count_;
  }
  uint64_t SpecialMask(size_t block) const;
  // The special bytes from pos_ on: the rest of the block the last row ended in, if pos_ is in
  // it, else a new block starting at pos_ (set in *block).
  uint64_t MaskFromPos(size_t* block) const {
    if (mask_block_ != kNpos && pos_ >= mask_block_ && pos_ < mask_block_ + 64) {
      *block = mask_block_;
      return mask_bits_ & (~uint64_t{0} << (pos_ - mask_block_));
    }
    *block = pos_;
    return SpecialMask(*block);
  }
  bool AtBlankLine() const;

  char delimiter_;
  std::vector<std::string> names_;
  std::vector<Cell> cells_;
  size_t field_count_ = 0;
  size_t extra_field_start_ = kNpos;  // start of the first field past the limit
  size_t oversized_start_ = kNpos;    // start of the first field over max_field_bytes
  size_t content_end_ = 0;            // where the row's terminator starts
  int64_t row_newlines_ = 0;          // newlines inside the row, terminator included
  std::vector<size_t> field_starts_;  // header only: where each field starts
  std::string scratch_;               // unescaped quoted fields of the current row
  std::vector<Fixup> fixups_;
  // The mask of the block at mask_block_ with the bits already consumed cleared.
  size_t mask_block_ = kNpos;
  uint64_t mask_bits_ = 0;
};

uint64_t CsvReader::SpecialMask(size_t block) const {
  const char* p = data_.data() + block;
  char tail[64];
  size_t available = data_.size() - block;
  if (available < 64) {
    std::memset(tail, 0, sizeof(tail));
    std::memcpy(tail, p, available);
    p = tail;
  }
  uint64_t mask = 0;
#if defined(__SSE2__)
  const __m128i delimiter = _mm_set1_epi8(delimiter_);
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i newline = _mm_set1_epi8('\n');
  for (int i = 0; i < 4; ++i) {
    __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i));
    __m128i hits =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(bytes, delimiter), _mm_cmpeq_epi8(bytes, quote)),
                     _mm_cmpeq_epi8(bytes, newline));
    mask |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(hits))) << (16 * i);
  }
#else
  for (int i = 0; i < 64; ++i) {
    char c = p[i];
    if (c == delimiter_ || c == '"' || c == '\n') mask |= uint64_t{1} << i;
  }
#endif
  if (available < 64) mask &= (uint64_t{1} << available) - 1;
  return mask;
}

bool CsvReader::ParseDataRowFast(size_t limit) {
  const char* base = data_.data();
  const size_t size = data_.size();
  const size_t max_field = options_.max_field_bytes;
  const char delimiter = delimiter_;
  Cell* cells = cells_.data();
  size_t count = 0;
  size_t field_start = pos_;
  size_t block;
  uint64_t mask = MaskFromPos(&block);
  // Stores the field [field_start, end); false if the row has too many or it is too large.
  auto add = [&](size_t end) {
    if (count == limit || end - field_start > max_field) [[unlikely]] return false;
    cells[count++] = Cell{std::string_view(base + field_start, end - field_start),
                          end == field_start, false};
    return true;
  };
  while (true) {
    while (mask != 0) {
      const size_t i = block + static_cast<size_t>(__builtin_ctzll(mask));
      mask &= mask - 1;
      const char c = base[i];
      if (c == delimiter) [[likely]] {
        if (!add(i)) return false;
        field_start = i + 1;
      } else if (c == '\n') {
        size_t end = i;
        if (end > field_start && base[end - 1] == '\r') --end;
        if (!add(end) || count != limit) return false;
        content_end_ = end;
        row_end_ = i + 1;
        row_newlines_ = 1;
        field_count_ = count;
        mask_block_ = block;
        mask_bits_ = mask;
        return true;
      } else {
        return false;  // a quote
      }
    }
    block += 64;
    if (block >= size) {  // the buffer's last row, without a newline
      size_t end = size;
      if (end > field_start && base[end - 1] == '\r') --end;
      if (!add(end) || count != limit) return false;
      content_end_ = end;
      row_end_ = size;
      row_newlines_ = 0;
      field_count_ = count;
      mask_block_ = kNpos;
      return true;
    }
    mask = SpecialMask(block);
  }
}

bool CsvReader::ParseRowFast(size_t limit) {
  const char* base = data_.data();
  const size_t size = data_.size();
  size_t field_start = pos_;
  size_t block;
  uint64_t mask = MaskFromPos(&block);
  while (true) {
    while (mask != 0) {
      size_t i = block + static_cast<size_t>(__builtin_ctzll(mask));
      mask &= mask - 1;
      char c = base[i];
      if (c == delimiter_) {
        AddField(field_start, std::string_view(base + field_start, i - field_start), false, limit);
        field_start = i + 1;
      } else if (c == '\n') {
        size_t end = i;
        if (end > field_start && base[end - 1] == '\r') --end;
        AddField(field_start, std::string_view(base + field_start, end - field_start), false,
                 limit);
        content_end_ = end;
        row_end_ = i + 1;
        row_newlines_ = 1;
        mask_block_ = block;
        mask_bits_ = mask;
        return true;
      } else {
        mask_block_ = kNpos;
        return false;  // a quote
      }
    }
    block += 64;
    if (block >= size) {  // the buffer's last row, without a newline
      size_t end = size;
      if (end > field_start && base[end - 1] == '\r') --end;
      AddField(field_start, std::string_view(base + field_start, end - field_start), false, limit);
      content_end_ = end;
      row_end_ = size;
      row_newlines_ = 0;
      mask_block_ = kNpos;
      return true;
    }
    mask = SpecialMask(block);
  }
}

RowError CsvReader::ParseRowSlow(size_t limit) {
  const char* base = data_.data();
  const size_t size = data_.size();
  size_t i = pos_;
  int64_t newlines = 0;
  while (true) {
    const size_t start = i;
    if (i < size && base[i] == '"') {
      size_t segment = i + 1;  // start of the text not yet copied
      size_t search = i + 1;
      size_t scratch_offset = kNpos;
      size_t close;
      while (true) {
        const void* quote = std::memchr(base + search, '"', size - search);
        if (quote == nullptr) return {start, "unterminated quoted field"};
        size_t k = static_cast<size_t>(static_cast<const char*>(quote) - base);
        if (k + 1 < size && base[k + 1] == '"') {  // "" stands for one quote
          if (scratch_offset == kNpos) scratch_offset = scratch_.size();
          scratch_.append(base + segment, k + 1 - segment);
          segment = search = k + 2;
          continue;
        }
        close = k;
        break;
      }
      newlines += std::count(base + start, base + close, '\n');
      if (scratch_offset == kNpos) {
        AddField(start, std::string_view(base + start + 1, close - start - 1), true, limit);
      } else {
        scratch_.append(base + segment, close - segment);
        size_t length = scratch_.size() - scratch_offset;
        if (field_count_ < limit) fixups_.push_back({field_count_, scratch_offset, length});
        // The text is set by the fixup once scratch_ stops growing; its length counts now.
        AddField(start, std::string_view(base, length), true, limit);
      }
      i = close + 1;
      if (i == size) {
        content_end_ = row_end_ = size;
        break;
      }
      char c = base[i];
      if (c == delimiter_) {
        ++i;
        continue;
      }
      if (c == '\n') {
        content_end_ = i;
        row_end_ = i + 1;
        ++newlines;
        break;
      }
      if (c == '\r' && (i + 1 == size || base[i + 1] == '\n')) {
        content_end_ = i;
        row_end_ = i + 1 == size ? size : i + 2;
        if (i + 1 < size) ++newlines;
        break;
      }
      return {i, "unexpected text after a closing quote"};
    }
    size_t k = i;
    while (k < size && base[k] != delimiter_ && base[k] != '\n' && base[k] != '"') ++k;
    if (k < size && base[k] == '"') return {k, "quote in an unquoted field"};
    size_t end = k;
    bool row_ends = k == size || base[k] == '\n';
    if (row_ends && end > start && base[end - 1] == '\r') --end;
    AddField(start, std::string_view(base + start, end - start), false, limit);
    if (!row_ends) {
      i = k + 1;
      continue;
    }
    content_end_ = end;
    row_end_ = k == size ? size : k + 1;
    if (k < size) ++newlines;
    break;
  }
  for (const Fixup& fixup : fixups_) {
    cells_[fixup.cell].text = std::string_view(scratch_.data() + fixup.offset, fixup.size);
  }
  row_newlines_ = newlines;
  return {};
}

RowError CsvReader::ReadRow(size_t limit) {
  row_start_ = pos_;
  row_line_ = next_line_;
  if (limit == cells_.size()) [[likely]] {
    // A well-formed row without quotes (the common case) in one pass; anything else is read
    // again from the start of the row below, with the mask state restored.
    const size_t saved_block = mask_block_;
    const uint64_t saved_bits = mask_bits_;
    if (ParseDataRowFast(limit) && bad_utf8_ >= row_end_) [[likely]] {
      pos_ = row_end_;
      next_line_ = row_line_ + row_newlines_;
      return {};
    }
    mask_block_ = saved_block;
    mask_bits_ = saved_bits;
  }
  ResetRow();
  RowError error;
  if (!ParseRowFast(limit)) {
    ResetRow();
    error = ParseRowSlow(limit);
  }
  if (error.ok()) {
    if (oversized_start_ != kNpos) {
      error = {oversized_start_, TooLarge()};
    } else if (limit != kNoLimit && field_count_ != limit) {
      error = {
          field_count_ > limit ? extra_field_start_ : content_end_,
          "row has " + FieldsPhrase(field_count_) + ", the header has " + std::to_string(limit)};
    }
  }
  error = PreferUtf8(std::move(error), row_end_);
  if (error.ok()) {
    pos_ = row_end_;
    next_line_ = row_line_ + row_newlines_;
  }
  return error;
}

Status CsvReader::Init() {
  if (!options_.has_header) {
    names_ = options_.column_names;
    if (names_.empty()) {
      return InvalidArgument(options_.file_name + ": no column names for a chunk without a header");
    }
    cells_.assign(names_.size(), Cell{{}, true, false});
    return Status::Ok();
  }
  if (begin_ >= data_.size()) {
    return InvalidArgument(options_.file_name + ":" + std::to_string(options_.first_line) +
                           ":1: empty file (no header row)");
  }
  RowError error = ReadRow(kNoLimit);
  if (!error.ok()) return Fail(error);
  std::unordered_map<std::string_view, size_t> seen;
  for (size_t i = 0; i < cells_.size(); ++i) {
    std::string_view name = cells_[i].text;
    if (name.empty()) {
      return Fail({field_starts_[i], "empty column name (column " + std::to_string(i + 1) + ")"});
    }
    auto [it, inserted] = seen.emplace(name, i);
    if (!inserted) {
      return Fail({field_starts_[i], "duplicate column name '" + internal::ForMessage(name) +
                                         "' (columns " + std::to_string(it->second + 1) + " and " +
                                         std::to_string(i + 1) + ")"});
    }
  }
  names_.reserve(cells_.size());
  for (const Cell& cell : cells_) names_.emplace_back(cell.text);
  ResetRow();
  cells_.assign(names_.size(), Cell{{}, true, false});
  return Status::Ok();
}

// A line with nothing on it. In a table of several columns it cannot be a row, so it is skipped;
// in a one-column table it is a row holding one null (that is how such a row is written).
bool CsvReader::AtBlankLine() const {
  if (data_[pos_] == '\n') return true;
  return data_[pos_] == '\r' && (pos_ + 1 == data_.size() || data_[pos_ + 1] == '\n');
}

Result<bool> CsvReader::Next() {
  if (!failure_.ok()) return failure_;
  if (names_.size() > 1) {
    while (pos_ < data_.size() && AtBlankLine()) {
      pos_ += data_[pos_] == '\r' ? std::min<size_t>(2, data_.size() - pos_) : 1;
      ++next_line_;
    }
  }
  if (pos_ >= data_.size()) return false;
  RowError error = ReadRow(names_.size());
  if (!error.ok()) return Fail(error);
  return true;
}

// ---------------------------------------------------------------------------------------------
// JSONL

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Reports where nlohmann's parser stops on a malformed line, without building a DOM (a deep
// document would otherwise cost a deep recursion to destroy).
class ErrorLocator final : public nlohmann::json_sax<Json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    position_ = position;
    detail_ = ex.what();
    return false;
  }

  size_t position() const { return position_; }
  const std::string& detail() const { return detail_; }

 private:
  size_t position_ = 0;
  std::string detail_;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

class JsonlReader final : public ReaderBase {
 public:
  JsonlReader(std::string_view data, ReadOptions options, bool at_file_start)
      : ReaderBase(data, std::move(options), at_file_start) {}

  Status Init() {
    for (const std::string& name : options_.column_names) {
      if (index_.count(name) == 0) AddColumn(name);
    }
    return Status::Ok();
  }
  const std::vector<std::string>& column_names() const override { return names_; }
  const std::vector<Cell>& cells() const override { return cells_; }
  Result<bool> Next() override;

 private:
  RowError ParseObject(size_t first, size_t end);
  RowError SyntaxError(size_t first, size_t end, simdjson::error_code code) const;
  void AddColumn(std::string_view name) {
    index_.emplace(std::string(name), names_.size());
    names_.emplace_back(name);
    seen_.push_back(0);
    cells_.push_back(Cell{{}, true, false});
  }

  simdjson::ondemand::parser parser_;
  std::vector<char> padded_;  // the current line, followed by SIMDJSON_PADDING zero bytes
  std::vector<std::string> names_;
  std::unordered_map<std::string, size_t, StringHash, std::equal_to<>> index_;
  std::vector<uint64_t> seen_;  // per column: the last row number that had its key
  uint64_t row_number_ = 0;
  std::vector<Cell> cells_;
};

Result<bool> JsonlReader::Next() {
  if (!failure_.ok()) return failure_;
  const char* base = data_.data();
  const size_t size = data_.size();
  while (pos_ < size) {
    const void* newline = std::memchr(base + pos_, '\n', size - pos_);
    size_t line_end =
        newline ? static_cast<size_t>(static_cast<const char*>(newline) - base) : size;
    row_start_ = pos_;
    row_line_ = next_line_;
    row_end_ = newline ? line_end + 1 : size;
    pos_ = row_end_;
    ++next_line_;
    size_t first = row_start_;
    while (first < line_end && IsJsonSpace(base[first])) ++first;
    if (first == line_end) continue;  // blank line
    size_t end = line_end;
    while (end > first && IsJsonSpace(base[end - 1])) --end;
    RowError error = PreferUtf8({}, row_end_);
    if (error.ok()) error = ParseObject(first, end);
    if (!error.ok()) return Fail(error);
    return true;
  }
  for (Cell& cell : cells_) cell = Cell{{}, true, false};
  return false;
}

RowError JsonlReader::SyntaxError(size_t first, size_t end, simdjson::error_code code) const {
  std::string_view line = data_.substr(first, end - first);
  ErrorLocator locator;
  bool parsed = false;
  try {
    parsed = Json::sax_parse(line.begin(), line.end(), &locator);
  } catch (const std::exception& error) {  // sax_parse reports through the locator; be safe
    return {first, std::string("malformed JSON: ") + error.what()};
  }
  if (parsed) return {first, std::string("malformed JSON: ") + simdjson::error_message(code)};
  // nlohmann's messages read "[json.exception.parse_error.101] parse error at line 1, column 2:
  // syntax error while parsing value - ..."; we say where ourselves.
  std::string detail = locator.detail();
  size_t cut = detail.find("column ");
  cut = cut == std::string::npos ? detail.find("] ") : detail.find(": ", cut);
  if (cut != std::string::npos) detail = detail.substr(cut + 2);
  // "...; last read: '\"a\": tru}'" repeats the line without helping: the column says where.
  size_t last_read = detail.find("; last read:");
  if (last_read != std::string::npos) detail.resize(last_read);
  size_t offset = locator.position() == 0 ? 0 : locator.position() - 1;
  return {first + std::min(offset, line.size()), "malformed JSON: " + detail};
}

RowError JsonlReader::ParseObject(size_t first, size_t end) {
  if (data_[first] != '{') return {first, "expected a JSON object"};
  std::string_view line = data_.substr(first, end - first);
  // simdjson does not reject control characters inside strings; tabs are fine between tokens.
  // A line with any byte below 0x20 is rare: let nlohmann judge it first.
  unsigned char control = 0;
  for (char c : line) control |= static_cast<unsigned char>(static_cast<unsigned char>(c) < 0x20);
  if (control != 0) {
    // nlohmann stops at a NUL byte as at the end of input; JSON has no place for one.
    size_t nul = line.find('\0');
    if (nul != std::string_view::npos) return {first + nul, "malformed JSON: a NUL byte"};
    if (!Json::accept(line.begin(), line.end())) {
      return SyntaxError(first, end, simdjson::TAPE_ERROR);
    }
  }
  padded_.resize(line.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(padded_.data(), line.data(), line.size());
  std::memset(padded_.data() + line.size(), 0, simdjson::SIMDJSON_PADDING);
  // Maps a pointer into padded_ back to an offset in data_.
  auto offset_of = [&](const char* p) { return first + static_cast<size_t>(p - padded_.data()); };

  simdjson::ondemand::document document;
  simdjson::error_code code =
      parser_.iterate(padded_.data(), line.size(), padded_.size()).get(document);
  if (code) return SyntaxError(first, end, code);
  simdjson::ondemand::object object;
  if ((code = document.get_object().get(object))) return SyntaxError(first, end, code);

  ++row_number_;
  for (Cell& cell : cells_) cell = Cell{{}, true, false};
  size_t guess = 0;  // rows usually list their keys in the same order
  for (auto field_result : object) {
    simdjson::ondemand::field field;
    if ((code = std::move(field_result).get(field))) return SyntaxError(first, end, code);
    // Before unescaped_key(), which consumes the key.
    size_t key_offset = offset_of(field.key().raw()) - 1;
    std::string_view key;
    if ((code = field.unescaped_key().get(key))) return SyntaxError(first, end, code);
    simdjson::ondemand::value value = field.value();
    simdjson::ondemand::json_type type;
    if ((code = value.type().get(type))) return SyntaxError(first, end, code);
    std::string_view raw = value.raw_json_token();
    while (!raw.empty() && IsJsonSpace(raw.back())) raw.remove_suffix(1);
    size_t value_offset = offset_of(raw.data());
    Cell cell;
    switch (type) {
      case simdjson::ondemand::json_type::string: {
        if ((code = value.get_string().get(cell.text))) return SyntaxError(first, end, code);
        // \u escapes can spell lone surrogates; the result must still be UTF-8.
        if (raw.find('\\') != std::string_view::npos &&
            !simdjson::validate_utf8(cell.text.data(), cell.text.size())) {
          return {value_offset, "invalid \\u escape (a lone surrogate)"};
        }
        cell.quoted = true;
        break;
      }
      case simdjson::ondemand::json_type::number: {
        if (!internal::IsJsonNumber(raw)) return SyntaxError(first, end, simdjson::NUMBER_ERROR);
        // Only an exponent or hundreds of digits can overflow a double.
        double number = 0;
        if ((raw.size() > 300 ||
             std::any_of(raw.begin(), raw.end(), [](char c) { return (c | 0x20) == 'e'; })) &&
            (fast_float::from_chars(raw.data(), raw.data() + raw.size(), number),
             std::isinf(number))) {
          return {value_offset, "number out of range: " + internal::ForMessage(raw)};
        }
        cell.text = raw;
        break;
      }
      case simdjson::ondemand::json_type::boolean:
        if (raw != "true" && raw != "false") return SyntaxError(first, end, simdjson::T_ATOM_ERROR);
        cell.text = raw;
        break;
      case simdjson::ondemand::json_type::null:
        if (raw != "null") return SyntaxError(first, end, simdjson::N_ATOM_ERROR);
        cell.is_null = true;
        break;
      case simdjson::ondemand::json_type::array:
      case simdjson::ondemand::json_type::object: {
        // Kept as JSON text. simdjson skips a nested value without checking it: nlohmann does.
        std::string_view text;
        if (type == simdjson::ondemand::json_type::array) {
          simdjson::ondemand::array array;
          if ((code = value.get_array().get(array))) return SyntaxError(first, end, code);
          if ((code = array.raw_json().get(text))) return SyntaxError(first, end, code);
        } else {
          simdjson::ondemand::object nested;
          if ((code = value.get_object().get(nested))) return SyntaxError(first, end, code);
          if ((code = nested.raw_json().get(text))) return SyntaxError(first, end, code);
        }
        while (!text.empty() && IsJsonSpace(text.back())) text.remove_suffix(1);
        if (!Json::accept(text.begin(), text.end())) {
          return SyntaxError(first, end, simdjson::TAPE_ERROR);
        }
        cell.text = text;
        break;
      }
    }
    if (cell.text.size() > options_.max_field_bytes) return {value_offset, TooLarge()};

    size_t column;
    if (guess < names_.size() && names_[guess] == key) {
      column = guess;
    } else if (auto it = index_.find(key); it != index_.end()) {
      column = it->second;
    } else {
      if (key.empty()) return {key_offset, "empty key (a column needs a name)"};
      if (!simdjson::validate_utf8(key.data(), key.size())) {
        return {key_offset, "invalid \\u escape (a lone surrogate)"};
      }
      column = names_.size();
      AddColumn(key);
    }
    if (seen_[column] == row_number_) {
      return {key_offset, "duplicate key '" + internal::ForMessage(key) + "'"};
    }
    seen_[column] = row_number_;
    cells_[column] = cell;
    guess = column + 1;
  }
  // Anything after the object's closing brace.
  if (document.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return SyntaxError(first, end, simdjson::TRAILING_CONTENT);
  }
  return {};
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  return internal::FirstInvalidUtf8(text) == std::string_view::npos;
}

Result<std::unique_ptr<RowReader>> RowReader::Open(Format format, std::string_view data,
                                                   ReadOptions options) {
  // A BOM is skipped only where the file starts.
  bool at_file_start = options.first_line == 1 || (format != Format::kJsonl && options.has_header);
  if (format == Format::kJsonl) {
    auto reader = std::make_unique<JsonlReader>(data, std::move(options), at_file_start);
    KILN_RETURN_IF_ERROR(reader->Init());
    return std::unique_ptr<RowReader>(std::move(reader));
  }
  auto reader = std::make_unique<CsvReader>(data, std::move(options), at_file_start,
                                            format == Format::kTsv ? '\t' : ',');
  KILN_RETURN_IF_ERROR(reader->Init());
  return std::unique_ptr<RowReader>(std::move(reader));
}

}  // namespace kiln::table
