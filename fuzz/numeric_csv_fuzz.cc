// libFuzzer target for the fused numeric CSV/TSV profile (ProfileBuilder::AddNumericCsv), checked
// against the row reader's path it replaces. The first byte picks the table (1-4 columns of int64
// or float64, CSV or TSV, a header line or a later chunk, the first line number, a small or large
// sample); the rest is the chunk's rows. Beyond "never crash, leak or trip UBSan": whenever the
// fused parse takes a chunk, the reader's path must take it too (every row, no error, no
// widening) and give the same rows, saved state (whole and under a key limit) and profile, byte
// for byte. And a part limited from the start (ProfileBuilder::LimitSample, limits per column
// from the chunk's line count times 1, 2, 4 or 8), merged into a fresh builder as it is or saved
// with tighter limits and restored, must give that profile whenever the merge says its sample is
// exact; saved, it must be the unlimited part's bytes (unless it is long enough to compact).
//
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DKILN_FUZZ=ON -DKILN_TESTS=OFF
//   ninja -C build-fuzz numeric_csv_fuzz
//   build-fuzz/numeric_csv_fuzz fuzz/corpus/numeric_csv -max_total_time=60
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "kiln/data/profile.h"
#include "kiln/table/reader.h"

namespace {

using kiln::data::KeyLimits;
using kiln::data::ProfileBuilder;
using kiln::data::ProfileOptions;
using kiln::table::ColumnType;

struct Profiled {
  uint64_t rows = 0;
  std::string saved;
  std::string saved_limited;
  std::string finished;
};

Profiled Record(const ProfileBuilder& builder, uint64_t rows, const ProfileOptions& options) {
  return {rows, builder.Serialize(std::numeric_limits<uint64_t>::max()),
          builder.Serialize(ProfileBuilder::KeyLimitFor(rows * 3 + 1, options)),
          builder.Finish().dump()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t pick = data[0];
  const uint8_t more = data[1];
  const size_t columns = (pick & 3) + 1;
  const bool tsv = (pick & 4) != 0;
  const bool header = (pick & 8) != 0;
  const char delimiter = tsv ? '\t' : ',';
  kiln::table::Schema schema;
  std::string bytes;
  for (size_t c = 0; c < columns; ++c) {
    const ColumnType type = (more >> c) & 1 ? ColumnType::kFloat64 : ColumnType::kInt64;
    schema.columns.push_back({"c" + std::to_string(c), type, true});
    if (header) bytes += (c > 0 ? std::string(1, delimiter) : "") + "c" + std::to_string(c);
  }
  if (header) bytes += "\n";
  bytes.append(reinterpret_cast<const char*>(data + 2), size - 2);
  const int64_t first_line = header ? 1 : 1 + (pick >> 4);
  ProfileOptions options;
  options.sample_size = (more & 0x80) != 0 ? 100000 : 8;  // small: samples fill and compact
  options.seed = more & 0x70;

  ProfileBuilder fused_builder(schema, options);
  uint64_t fused_rows = 0;
  if (!fused_builder.AddNumericCsv(bytes, delimiter, first_line, header, &fused_rows)) return 0;
  const Profiled fused = Record(fused_builder, fused_rows, options);

  // The same rows into a part limited from the start, for a table whose columns hold 1, 2, 4 or
  // 8 times the chunk's lines in values.
  const uint64_t lines = static_cast<uint64_t>(std::count(bytes.begin(), bytes.end(), '\n')) + 1;
  std::vector<uint64_t> sampling(columns), saving(columns);
  for (size_t c = 0; c < columns; ++c) {
    const uint64_t values = lines << ((c + (pick >> 4)) % 4);
    sampling[c] = ProfileBuilder::KeyLimitFor(values, options, 5);
    saving[c] = ProfileBuilder::KeyLimitFor(values, options, 1.25);
  }
  ProfileBuilder limited(schema, options);
  limited.LimitSample(KeyLimits(sampling));
  uint64_t limited_rows = 0;
  REQUIRE(limited.AddNumericCsv(bytes, delimiter, first_line, header, &limited_rows));
  REQUIRE(limited_rows == fused_rows);
  const std::string saved = limited.Serialize(KeyLimits(saving));
  if (lines < 1024) REQUIRE(saved == fused_builder.Serialize(KeyLimits(saving)));
  auto restored = ProfileBuilder::Deserialize(schema, options, saved);
  REQUIRE(restored.ok());
  ProfileBuilder merged_saved(schema, options);
  merged_saved.Merge(std::move(*restored));
  if (merged_saved.SampleExact()) REQUIRE(merged_saved.Finish().dump() == fused.finished);
  ProfileBuilder merged(schema, options);
  merged.Merge(std::move(limited));
  if (merged.SampleExact()) REQUIRE(merged.Finish().dump() == fused.finished);

  kiln::table::ReadOptions read;
  read.file_name = "f.csv";
  read.first_line = first_line;
  read.has_header = header;
  if (!header) {
    for (const kiln::table::Column& column : schema.columns) read.column_names.push_back(column.name);
  }
  auto reader = kiln::table::RowReader::Open(
      tsv ? kiln::table::Format::kTsv : kiln::table::Format::kCsv, bytes, read);
  REQUIRE(reader.ok());
  ProfileBuilder generic_builder(schema, options);
  uint64_t generic_rows = 0;
  while (true) {
    kiln::Result<bool> next = (*reader)->Next();
    REQUIRE(next.ok());
    if (!*next) break;
    bool widen = false;
    REQUIRE(generic_builder.AddChecked(**reader, "f.csv", &widen).ok());
    REQUIRE(!widen);
    ++generic_rows;
  }
  const Profiled generic = Record(generic_builder, generic_rows, options);
  REQUIRE(fused.rows == generic.rows);
  REQUIRE(fused.saved == generic.saved);
  REQUIRE(fused.saved_limited == generic.saved_limited);
  REQUIRE(fused.finished == generic.finished);
  return 0;
}
