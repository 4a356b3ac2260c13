// libFuzzer target for saved profile states (ProfileBuilder::Deserialize), which commits read back
// from the object store. The first byte picks the schema (four tables of numeric, category, bool
// and timestamp columns), the sample size and the mode:
//   - patch (bit 7 clear): a valid state of a fixed table of that schema, saved with per-column
//     key limits (byte 1 picks them), is truncated (byte 2: to 8 times it bytes, 0 for none) and
//     patched (then 3-byte records: 2 bytes of offset, the new byte), and its checksum
//     recomputed, so that every field's checks are reached, not only the checksum;
//   - rows (bit 7 set): from byte 2 on, CSV rows of that schema; they are profiled, saved with
//     the key limits byte 1 picks, and the saved state goes through the same checks.
// Beyond "never crash, leak or trip UBSan", a state that Deserialize takes must be usable: saved
// again with the limits it was restored with, it reads back and saves to the same bytes; its
// FinishText is its Finish; it merges into and with other builders; taking a row back and adding
// it again never crashes. A state it refuses gets InvalidArgument.
//
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DKILN_FUZZ=ON -DKILN_TESTS=OFF
//   ninja -C build-fuzz profile_state_fuzz
//   build-fuzz/profile_state_fuzz fuzz/corpus/profile_state -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "kiln/core/hash.h"
#include "kiln/data/profile.h"
#include "kiln/table/reader.h"

namespace {

using kiln::data::KeyLimits;
using kiln::data::ProfileBuilder;
using kiln::data::ProfileOptions;
using kiln::table::ColumnType;
using kiln::table::Schema;

struct Table {
  Schema schema;
  std::string header;
  std::string (*row)(int i);  // row i of the fixed table, without its newline
};

const std::vector<Table>& Tables() {
  static const std::vector<Table> tables = {
      {{{{"id", ColumnType::kInt64, false},
         {"x", ColumnType::kFloat64, true},
         {"y", ColumnType::kFloat64, true}}},
       "id,x,y",
       [](int i) {
         return std::to_string(i * 7 % 101) + "," + (i % 3 == 0 ? "" : std::to_string(i) + ".5") +
                "," + (i % 11 == 0 ? "nan" : i % 5 == 0 ? "" : std::to_string(-i) + ".25");
       }},
      {{{{"id", ColumnType::kInt64, false},
         {"x", ColumnType::kFloat64, true},
         {"s", ColumnType::kString, true},
         {"c", ColumnType::kCategorical, true},
         {"b", ColumnType::kBool, true},
         {"t", ColumnType::kTimestamp, true}}},
       "id,x,s,c,b,t",
       [](int i) {
         return std::to_string(i) + "," + std::to_string(i % 17) + ".5,name" +
                std::to_string(i % 7) + "," + (i % 2 == 0 ? "red" : "blue") + "," +
                (i % 3 == 0 ? "" : i % 3 == 1 ? "true" : "false") + ",2026-11-" +
                (i % 28 < 9 ? "0" : "") + std::to_string(i % 28 + 1) + "T10:00:00Z";
       }},
      {{{{"v", ColumnType::kFloat64, true}, {"t", ColumnType::kTimestamp, true}}},
       "v,t",
       [](int i) {
         return (i % 4 == 0 ? std::string("inf") : std::to_string(i * 13 % 1000) + ".125") +
                ",2026-01-0" + std::to_string(i % 9 + 1);
       }},
      {{{{"only", ColumnType::kFloat64, true}}},
       "only",
       [](int i) { return i % 2 == 0 ? std::string() : std::to_string(i) + "e3"; }},
  };
  return tables;
}

ProfileOptions OptionsFor(uint8_t pick) {
  ProfileOptions options;
  options.sample_size = (pick & 0x10) != 0 ? 100000 : 16;
  return options;
}

// Per column, a key limit keeping about `keep` of `of` values (none for the 0 case).
KeyLimits LimitsFor(const Schema& schema, uint8_t bits, const ProfileOptions& options) {
  std::vector<uint64_t> limits;
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    const uint64_t values = uint64_t{8} << ((bits >> (2 * (i % 4))) & 3);
    limits.push_back(((bits >> i) & 1) != 0 ? KeyLimits::kNone
                                            : ProfileBuilder::KeyLimitFor(values, options, 0.5));
  }
  return KeyLimits(std::move(limits));
}

// Profiles CSV rows (with the header) with Add after the reader's checks; null if they do not
// read or fit the schema.
std::unique_ptr<ProfileBuilder> Profile(const Table& table, const ProfileOptions& options,
                                        std::string_view csv) {
  kiln::table::ReadOptions read;
  read.file_name = "t.csv";
  auto reader = kiln::table::RowReader::Open(kiln::table::Format::kCsv, csv, read);
  if (!reader.ok()) return nullptr;
  auto builder = std::make_unique<ProfileBuilder>(table.schema, options);
  while (true) {
    kiln::Result<bool> next = (*reader)->Next();
    if (!next.ok()) return nullptr;
    if (!*next) break;
    bool widen = false;
    if (!builder->AddChecked(**reader, "t.csv", &widen).ok() || widen) return nullptr;
  }
  return builder;
}

std::string WithChecksum(std::string body) {
  const uint64_t checksum = kiln::Xxh3(body);
  for (int i = 0; i < 8; ++i) body.push_back(static_cast<char>(checksum >> (8 * i)));
  return body;
}

void CheckState(const Table& table, const ProfileOptions& options, const std::string& state,
                int64_t line) {
  auto restored = ProfileBuilder::Deserialize(table.schema, options, state);
  if (!restored.ok()) {
    REQUIRE(restored.status().code() == kiln::StatusCode::kInvalidArgument);
    return;
  }
  const KeyLimits limits = restored->RestoredKeyLimits();
  const std::string saved = restored->Serialize(limits);
  auto again = ProfileBuilder::Deserialize(table.schema, options, saved);
  REQUIRE(again.ok());
  REQUIRE(again->Serialize(again->RestoredKeyLimits()) == saved);
  const std::string finished = restored->Finish().dump();
  REQUIRE(restored->FinishText() == finished);
  (void)restored->SampleExact();

  ProfileBuilder merged(table.schema, options);
  merged.Merge(std::move(*again));
  merged.Merge(std::move(*restored));
  (void)merged.Finish();
  (void)merged.SampleExact();
  (void)merged.Serialize(limits);

  // Take back a row of the fixed table at `line` and add it again.
  auto edited = ProfileBuilder::Deserialize(table.schema, options, state);
  REQUIRE(edited.ok());
  const std::string text = table.row(static_cast<int>(line) - 1) + "\n";  // row n: line n + 1
  kiln::table::ReadOptions read;
  read.file_name = "t.csv";
  read.has_header = false;
  read.first_line = line;
  for (const auto& column : table.schema.columns) read.column_names.push_back(column.name);
  auto old_row = kiln::table::RowReader::Open(kiln::table::Format::kCsv, text, read);
  REQUIRE(old_row.ok());
  auto has_row = (*old_row)->Next();
  REQUIRE(has_row.ok() && *has_row);
  if (edited->Remove(**old_row)) {
    auto new_row = kiln::table::RowReader::Open(kiln::table::Format::kCsv, text, read);
    REQUIRE(new_row.ok());
    REQUIRE((*new_row)->Next().ok());
    bool widen = false;
    (void)edited->AddChecked(**new_row, "t.csv", &widen);
    (void)edited->StaleBounds();
    (void)edited->EditsExact();
    (void)edited->Serialize(edited->RestoredKeyLimits());
    (void)edited->Finish();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t pick = data[0];
  const Table& table = Tables()[pick & 3];
  const ProfileOptions options = OptionsFor(pick);
  const int64_t line = 2 + ((pick >> 2) & 3) * 37;  // a row the fixed tables hold

  if ((pick & 0x80) != 0) {
    // Rows mode: the bytes after the limits are the table's rows.
    const std::string csv =
        table.header + "\n" + std::string(reinterpret_cast<const char*>(data + 2), size - 2);
    std::unique_ptr<ProfileBuilder> builder = Profile(table, options, csv);
    if (builder == nullptr) return 0;
    CheckState(table, options, builder->Serialize(LimitsFor(table.schema, data[1], options)),
               line);
    return 0;
  }

  // Patch mode: a valid state of 200 fixed rows, saved with per-column limits from byte 1.
  std::string csv = table.header + "\n";
  for (int i = 0; i < 200; ++i) csv += table.row(i + 1) + "\n";  // row i + 1 is at line i + 2
  std::unique_ptr<ProfileBuilder> builder = Profile(table, options, csv);
  REQUIRE(builder != nullptr);
  std::string state = builder->Serialize(LimitsFor(table.schema, data[1], options));
  state.resize(state.size() - 8);  // its checksum, recomputed after the patches
  const size_t keep = static_cast<size_t>(data[2]) * 8;
  if (keep != 0 && keep < state.size()) state.resize(keep);
  for (size_t at = 3; at + 3 <= size; at += 3) {
    const size_t offset = (static_cast<size_t>(data[at]) << 8 | data[at + 1]) % state.size();
    state[offset] = static_cast<char>(data[at + 2]);
  }
  CheckState(table, options, WithChecksum(state), line);
  return 0;
}
