// Content-defined chunking aligned to rows.
//
// A gear rolling hash picks cut candidates that depend only on the bytes just before them, so
// an insertion or edit moves the boundaries of the chunks it touches and no others. For tables
// the cut then moves forward to the end of the row it falls in, so every chunk is whole rows
// (and parses alone). Sizes: no chunk is shorter than min_size (except the last) and none longer
// than max_size, unless a single row is longer, in which case the chunk is that row.
//
// Row ends: kBytes cuts anywhere; kLines cuts after '\n'; kCsv cuts after a '\n' that is outside
// double quotes (RFC 4180 quoting; the quote state is carried from chunk to chunk).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kiln::objects {

enum class RowBoundary { kBytes, kLines, kCsv };

struct ChunkerOptions {
  size_t min_size = 256 << 10;
  size_t average_size = 1 << 20;  // a power of two
  size_t max_size = 4 << 20;
};

// Not thread-safe; one per stream.
class Chunker {
 public:
  Chunker(RowBoundary boundary, ChunkerOptions options = {});

  // Returns the length of the next chunk at the start of `data`, or 0 if `data` may end before
  // the cut (it holds fewer than max_size bytes, or no row end after the candidate, and !at_eof):
  // then call again with more bytes appended. With at_eof, returns data.size() for the tail.
  // After a non-zero return the caller drops that many bytes from the front of its buffer; the
  // chunker's quote state advances past them.
  size_t NextCut(std::string_view data, bool at_eof);

 private:
  RowBoundary boundary_;
  ChunkerOptions options_;
  uint64_t mask_;
  bool in_quotes_ = false;  // kCsv: the state at the start of the next chunk
};

}  // namespace kiln::objects
