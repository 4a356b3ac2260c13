// kiln data commit|log|show|diff|checkout|export|branch|tag|merge|revert|validate|rules|gc, and
// kiln fsck. Every command goes through DataClient (data_client.h), so it runs the same against
// a local store and a remote `kiln server`; --json prints the data layer's ToJson() replies.
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "kiln/cli/cli.h"
#include "kiln/cli/command_util.h"
#include "kiln/cli/data_client.h"
#include "kiln/cli/output.h"
#include "kiln/core/file_util.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;

// Commit ids are 64 hex digits; people read and type the first 12.
constexpr size_t kShortId = 12;

struct DataOptions {
  // commit
  std::vector<std::string> paths;
  std::string message;
  std::string branch = "main";
  std::string table;
  std::string key;
  std::vector<std::string> remove;
  // log / show / diff / checkout / export / revert / validate
  std::string ref;
  std::string ref_b;
  std::string table_name;
  bool profile = false;
  int64_t limit = 0;
  int64_t max_rows = 100;
  std::string to = ".";
  std::string format = "csv";
  std::string output;
  // branch / tag
  std::string name;
  std::string from;
  std::string delete_name;
  // merge
  std::string source;
  std::string into = "main";
  std::string strategy;
  // validate / rules
  std::string rules_file;
  std::string set_file;
  bool clear = false;
  // gc
  std::string retention = "7d";
  bool dry_run = false;
};

std::string ShortId(const std::string& id) { return id.substr(0, kShortId); }

std::string Author() {
  for (const char* name : {"KILN_USER", "USER", "LOGNAME"}) {
    if (const char* value = std::getenv(name); value != nullptr && *value != '\0') return value;
  }
  return "unknown";
}

// "0 B", "999 B", "1.5 KB", "12.0 MB" (powers of 1024).
std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KB", "MB", "GB", "TB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f %s", value, kUnits[unit]);
  return text;
}

uint64_t UintField(const Json& object, std::string_view key) {
  int64_t value = IntField(object, key);
  return value < 0 ? 0 : static_cast<uint64_t>(value);
}

// A cell value for human output: strings as JSON strings (so "" and null differ), the rest as
// written.
std::string CellText(const Json& value) {
  if (value.is_null()) return "null";
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// "7d", "12h", "30m", "45s", "500ms", "2w" or "0" -> milliseconds.
Result<int64_t> ParseRetention(const std::string& text) {
  if (text == "0") return int64_t{0};
  int64_t number = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  std::string unit(end, text.data() + text.size());
  static const std::map<std::string, int64_t> kUnits = {
      {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000},
      {"d", 24LL * 3600 * 1000}, {"w", 7LL * 24 * 3600 * 1000}};
  auto it = kUnits.find(unit);
  if (error != std::errc() || end == text.data() || number < 0 || it == kUnits.end()) {
    return InvalidArgument("--retention '" + text +
                           "': expected a number with a unit (ms, s, m, h, d, w), e.g. 7d, or 0");
  }
  return number * it->second;
}

// A progress bar on stderr, drawn only when stderr is a terminal (never in scripts or logs).
// The callback may be called from several threads.
class ProgressBar {
 public:
  explicit ProgressBar(std::string label) : label_(std::move(label)) {
    enabled_ = ::isatty(STDERR_FILENO) == 1;
  }
  ~ProgressBar() { Finish(); }

  data::Progress Callback() {
    if (!enabled_) return nullptr;
    return [this](uint64_t done, uint64_t total) { Update(done, total); };
  }

  void Finish() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (drawn_) std::cerr << "\r\033[K" << std::flush;
    drawn_ = false;
  }

 private:
  void Update(uint64_t done, uint64_t total) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    if (drawn_ && done < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    drawn_ = true;
    constexpr int kWidth = 30;
    double share = total == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / total);
    int filled = static_cast<int>(share * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(kWidth - filled), ' ');
    char percent[8];
    std::snprintf(percent, sizeof(percent), "%3d%%", static_cast<int>(share * 100));
    std::cerr << "\r" << label_ << " [" << bar << "] " << percent << "  " << FormatBytes(done)
              << " / " << FormatBytes(total) << "\033[K" << std::flush;
  }

  std::string label_;
  bool enabled_ = false;
  std::mutex mutex_;  // guards drawn_ and last_draw_, and the terminal line
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_;
};

Result<std::unique_ptr<DataClient>> OpenClient(Context& context) {
  KILN_ASSIGN_OR_RETURN(StoreLocation location, context.Location());
  return OpenDataClient(location);
}

Result<std::string> ReadTextFile(const std::string& path, std::string_view what) {
  if (!PathExists(path)) return NotFound(std::string(what) + " '" + path + "' does not exist");
  return ReadFile(path);
}

const Json& Entries(const Json& commit) { return ArrayField(commit, "entries"); }

const Json* FindEntry(const Json& commit, const std::string& name) {
  for (const Json& entry : Entries(commit)) {
    if (Field(entry, "name") == name) return &entry;
  }
  return nullptr;
}

std::string EntryFormat(const Json& entry) {
  std::string format = Field(entry, "format");
  return format.empty() ? "bytes" : format;
}

size_t ColumnCount(const Json& entry) {
  auto schema = entry.find("schema");
  if (schema == entry.end() || !schema->is_object()) return 0;
  return ArrayField(*schema, "columns").size();
}

// ---- commit ---------------------------------------------------------------------------------

// "[main 3fa2c1d2e4f5] message\n", as git prints a new commit.
std::string CommitLine(const std::string& branch, const Json& commit) {
  std::string message = Field(commit, "message");
  return "[" + branch + " " + ShortId(Field(commit, "id")) + "]" +
         (message.empty() ? "" : " " + message) + "\n";
}

Status Commit(Context& context, const DataOptions& options) {
  if (options.paths.empty() && options.remove.empty()) {
    return InvalidArgument("nothing to commit: pass PATH... or --remove NAME");
  }
  if (!options.table.empty() && options.paths.size() != 1) {
    return InvalidArgument("--table names the table of one file; got " +
                           std::to_string(options.paths.size()) + " paths");
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataClient> client, OpenClient(context));
  data::CommitRequest request;
  request.branch = options.branch;
  request.message = options.message;
  request.author = Author();
  request.remove = options.remove;
  for (const std::string& path : options.paths) {
    data::CommitInput input;
    input.path = path;
    if (!options.table.empty()) input.table = options.table;
    if (!options.key.empty()) input.key = options.key;
    request.inputs.push_back(std::move(input));
  }
  ProgressBar progress(client->DisplayName().rfind("http", 0) == 0 ? "uploading" : "committing");
  request.progress = progress.Callback();
  Result<Json> result = client->Commit(request);
  progress.Finish();
  if (!result.ok()) return result.status();
  if (context.options.json) {
    PrintJson(*result);
    return Status::Ok();
  }
  const Json& commit = (*result)["commit"];
  if (result->value("unchanged", false)) {
    std::cout << "Nothing to commit: " << options.branch << " already holds these files (commit "
              << ShortId(Field(commit, "id")) << ")\n";
    return Status::Ok();
  }
  std::cout << CommitLine(options.branch, commit);
  std::set<std::string> files;  // opaque files have no rows
  for (const Json& entry : Entries(commit)) {
    if (EntryFormat(entry) == "bytes") files.insert(Field(entry, "name"));
  }
  Table table({"NAME", "ROWS", "SIZE", "CHUNKS", "NEW", "STORED"});
  for (const Json& stats : ArrayField(*result, "stats")) {
    table.AddRow({Field(stats, "name"), files.count(Field(stats, "name")) ? "" : Field(stats, "rows"),
                  FormatBytes(UintField(stats, "bytes")), Field(stats, "chunks"),
                  Field(stats, "chunks_new"), FormatBytes(UintField(stats, "stored_bytes"))});
  }
  if (table.row_count() > 0) std::cout << table.Render();
  for (const std::string& name : options.remove) std::cout << "removed " << name << "\n";
  return Status::Ok();
}

// ---- log / show -----------------------------------------------------------------------------

// commit id -> "main, v1.0" for decorating log lines.
std::map<std::string, std::string> RefNames(DataClient& client) {
  std::map<std::string, std::string> names;
  Result<Json> refs = client.Refs();
  if (!refs.ok()) return names;
  for (const Json& ref : ArrayField(*refs, "refs")) {
    std::string& text = names[Field(ref, "commit_id")];
    if (!text.empty()) text += ", ";
    text += Field(ref, "name");
  }
  return names;
}

Status Log(Context& context, const DataOptions& options) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataClient> client, OpenClient(context));
  std::string ref = options.ref.empty() ? "main" : options.ref;
  KILN_ASSIGN_OR_RETURN(Json log, client->Log(ref, static_cast<size_t>(options.limit)));
  if (context.options.json) {
    PrintJson(log);
    return Status::Ok();
  }
  std::map<std::string, std::string> ref_names = RefNames(*client);
  Table table({"COMMIT", "CREATED", "AUTHOR", "REFS", "MESSAGE"}, 72);
  for (const Json& commit : ArrayField(log, "commits")) {
    std::string id = Field(commit, "id");
    table.AddRow({ShortId(id), FormatTimestamp(IntField(commit, "created_ms")),
                  Field(commit, "author"), ref_names.count(id) ? ref_names[id] : "",
                  Field(commit, "message")});
  }
  std::cout << table.Render();
  return Status::Ok();
}

std::string Parents(const Json& commit) {
  std::string text;
  for (const Json& parent : ArrayField(commit, "parents")) {
    if (!text.empty()) text += " ";
    text += ShortId(JsonScalarText(parent));
  }
  return text;
}

std::string ProfileCell(const Json& column, std::string_view field) {
  auto it = column.find(field);
  if (it == column.end() || it->is_null()) return "";
  if (it->is_number_float()) {
    // Six significant digits are enough to read; --json has the exact values.
    char text[32];
    std::snprintf(text, sizeof(text), "%.6g", it->get<double>());
    return text;
  }
  return JsonScalarText(*it);
}

std::string TopValues(const Json& column) {
  std::string text;
  for (const Json& top : ArrayField(column, "top")) {
    if (!text.empty()) text += ", ";
    text += Field(top, "value") + " (" + Field(top, "count") + ")";
  }
  return text;
}

Status ShowTable(Context& context, DataClient& client, const Json& commit,
                 const DataOptions& options) {
  const Json* entry = FindEntry(commit, options.table_name);
  if (entry == nullptr) {
    return NotFound("commit " + ShortId(Field(commit, "id")) + " has no table or file '" +
                    options.table_name + "'");
  }
  Json profile;
  if (options.profile) {
    KILN_ASSIGN_OR_RETURN(profile, client.Profile(Field(commit, "id"), options.table_name));
  }
  if (context.options.json) {
    Json reply = {{"commit", Field(commit, "id")}, {"table", *entry}};
    if (options.profile) reply["profile"] = profile;
    PrintJson(reply);
    return Status::Ok();
  }
  std::cout << RenderKeyValues({{"table", Field(*entry, "name")},
                                {"file", Field(*entry, "file_name")},
                                {"format", EntryFormat(*entry)},
                                {"commit", Field(commit, "id")},
                                {"rows", Field(*entry, "rows")},
                                {"size", FormatBytes(UintField(*entry, "bytes"))},
                                {"key", Field(*entry, "key")}});
  auto schema = entry->find("schema");
  if (!options.profile && schema != entry->end() && schema->is_object() &&
      !ArrayField(*schema, "columns").empty()) {
    Table columns({"COLUMN", "TYPE", "NULLABLE"});
    for (const Json& column : ArrayField(*schema, "columns")) {
      columns.AddRow({Field(column, "name"), Field(column, "type"),
                      column.value("nullable", false) ? "yes" : "no"});
    }
    std::cout << "schema:\n" << columns.Render();
  }
  if (options.profile) {
    Table columns({"COLUMN", "TYPE", "COUNT", "NULLS", "MIN", "MAX", "MEAN", "STD", "DISTINCT",
                   "TOP"});
    for (const Json& column : ArrayField(profile, "columns")) {
      columns.AddRow({Field(column, "name"), Field(column, "type"), Field(column, "count"),
                      Field(column, "nulls"), ProfileCell(column, "min"),
                      ProfileCell(column, "max"), ProfileCell(column, "mean"),
                      ProfileCell(column, "std"), ProfileCell(column, "distinct"),
                      TopValues(column)});
    }
    std::cout << "profile:\n" << columns.Render();
  }
  return Status::Ok();
}

Status Show(Context& context, const DataOptions& options) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataClient> client, OpenClient(context));
  KILN_ASSIGN_OR_RETURN(Json commit, client->Show(options.ref));
  if (!options.table_name.empty()) return ShowTable(context, *client, commit, options);
  if (options.profile) return InvalidArgument("--profile needs a TABLE: kiln data show REF TABLE --profile");
  if (context.options.json) {
    PrintJson(commit);
    return Status::Ok();
  }
  std::cout << RenderKeyValues({{"commit", Field(commit, "id")},
                                {"parents", Parents(commit)},
                                {"author", Field(commit, "author")},
                                {"created", FormatTimestamp(IntField(commit, "created_ms"))},
                                {"message", Field(commit, "message")}});
  Table table({"NAME", "FILE", "FORMAT", "ROWS", "COLUMNS", "SIZE", "KEY"});
  for (const Json& entry : Entries(commit)) {
    bool is_table = EntryFormat(entry) != "bytes";
    table.AddRow({Field(entry, "name"), Field(entry, "file_name"), EntryFormat(entry),
                  is_table ? Field(entry, "rows") : "",
                  is_table ? std::to_string(ColumnCount(entry)) : "",
                  FormatBytes(UintField(entry, "bytes")), Field(entry, "key")});
  }
  std::cout << table.Render();
  return Status::Ok();
}

// ---- diff -----------------------------------------------------------------------------------

// "age 31 -> 32, city \"a\" -> \"b\"" from a changed row's {before} and {after} cells.
std::string ChangedCells(const Json& before, const Json& after) {
  std::set<std::string> columns;
  for (const Json* side : {&before, &after}) {
    if (!side->is_object()) continue;
    for (const auto& [column, value] : side->items()) columns.insert(column);
  }
  std::string text;
  for (const std::string& column : columns) {
    if (!text.empty()) text += ", ";
    Json old_value = before.is_object() && before.contains(column) ? before[column] : Json();
    Json new_value = after.is_object() && after.contains(column) ? after[column] : Json();
    text += column + " " + CellText(old_value) + " -> " + CellText(new_value);
  }
  return text;
}

std::string RowLabel(const Json& row) {
  std::string key = Field(row, "key");
  if (!key.empty()) return "key " + key;
  std::string kind = Field(row, "kind");
  int64_t line = kind == "removed" ? IntField(row, "line_a") : IntField(row, "line_b");
  return "line " + std::to_string(line);
}

std::string RenderTableDiff(const Json& diff) {
  std::string out;
  std::string status = Field(diff, "status");
  out += Field(diff, "table") + ": " + status;
  int64_t added = IntField(diff, "rows_added");
  int64_t removed = IntField(diff, "rows_removed");
  int64_t changed = IntField(diff, "rows_changed");
  if (added != 0 || removed != 0 || changed != 0) {
    out += " (" + std::to_string(added) + " added, " + std::to_string(removed) + " removed, " +
           std::to_string(changed) + " changed)";
  }
  out += "\n";
  for (const Json& change : ArrayField(diff, "schema_changes")) {
    std::string kind = Field(change, "change");
    out += "  column " + Field(change, "column") + ": ";
    if (kind == "added") {
      out += "added (" + Field(change, "after") + ")";
    } else if (kind == "removed") {
      out += "removed (" + Field(change, "before") + ")";
    } else {
      out += "type " + Field(change, "before") + " -> " + Field(change, "after");
    }
    out += "\n";
  }
  const Json& rows = ArrayField(diff, "rows");
  for (const Json& row : rows) {
    std::string kind = Field(row, "kind");
    const Json& before = row.contains("before") ? row["before"] : Json();
    const Json& after = row.contains("after") ? row["after"] : Json();
    if (kind == "added") {
      out += "  + " + RowLabel(row) + ": " + CellText(after) + "\n";
    } else if (kind == "removed") {
      out += "  - " + RowLabel(row) + ": " + CellText(before) + "\n";
    } else {
      out += "  ~ " + RowLabel(row) + ": " + ChangedCells(before, after) + "\n";
    }
  }
  if (diff.value("truncated", false)) {
    int64_t more = added + removed + changed - static_cast<int64_t>(rows.size());
    out += "  ... " + (more > 0 ? std::to_string(more) + " more row change(s)" : std::string("more")) +
           " (raise --max-rows)\n";
  }
  return out;
}

Status Diff(Context& context, const DataOptions& options) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataClient> client, OpenClient(context));
  KILN_ASSIGN_OR_RETURN(Json diff, client->Diff(options.ref, options.ref_b,
                                                static_cast<size_t>(options.max_rows)));
  if (context.options.json) {
    PrintJson(diff);
    return Status::Ok();
  }
  bool any = false;
  for (const Json& table : ArrayField(diff, "tables")) {
    if (Field(table, "status") == "unchanged") continue;
    any = true;
    std::cout << RenderTableDiff(table);
  }
  if (!any) {
    std::cout << "No differences between " << options.ref << " (" << ShortId(Field(diff, "a"))
              << ") and " << options.ref_b << " (" << ShortId(Field(diff, "b")) << ")\n";
  }
  return Status::Ok();
}

// ---- checkout / export ----------------------------------------------------------------------

Status Checkout(Context& context, const DataOptions& options) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataClient> client, OpenClient(context));
  std::error_code error;
  std::string dir = fs::absolute(options.to, error).lexically_normal().string();
  if (error) return IoError("cannot resolve folder '" + options.to + "': " + error.message());
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  KILN_RETURN_IF_ERROR(MakeDirs(dir));
  std::optional<std::string> name;
  if (!options.table_name.empty()) name = options.table_name;
  ProgressBar progress("checking out");
  Result<Json> commit = client->Checkout(options.ref, dir, name, progress.Callback());
  progress.Finish();
  if (!commit.ok()) return commit.status();
  Json files = Json::array();
  for (const Json& entry : Entries(*commit)) {
    if (name && Field(entry, "name") != *name) continue;
    files.push_back(Field(entry, "file_name"));
  }
  if (context.options.json) {
    PrintJson({{"commit", Field(*commit, "id")}, {"dir", dir}, {"files", files}});
    return Status::Ok();
  }
  std::cout << "Checked out " << files.size() << " file(s) of commit "
            << ShortId(Field(*commit, "id")) << " into " << options.to << "\n";
  return Status::Ok();
}

Status Export(Context& context, const DataOptions& options) {
  std::optional<table::Format> format = table::FormatFromName(options.format);
  if (!format) return InvalidArgument("--format must be csv, tsv or jsonl, got '" + options.format + "'");
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataClient> client, OpenClient(context));
  if (options.output.empty() || options.output == "-") {
    return client->Export(options.ref, options.table_name, *format, [](std::string_view bytes) {
      std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!std::cout) return IoError("cannot write to standard output");
      return Status::Ok();
    });
  }
  // Written beside the target and renamed into place, so a failed export leaves no half file.
  std::string temp = options.output + ".kiln-partial";
  uint64_t written = 0;
  Status status;
  {
    std::ofstream file(temp, std::ios::binary | std::ios::trunc);
    if (!file) return IoError("cannot write '" + options.output + "'");
    status = client->Export(options.ref, options.table_name, *format,
                            [&file, &written, &options](std::string_view bytes) {
                              file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
                              if (!file) return IoError("cannot write '" + options.output + "'");
                              written += bytes.size();
                              return Status::Ok();
                            });
    file.close();
    if (status.ok() && !file) status = IoError("cannot write '" + options.output + "'");
  }
  std::error_code error;
  if (!status.ok()) {
    fs::remove(temp, error);
    return status;
  }
  fs::rename(temp, options.output, error);
  if (error) return IoError("cannot write '" + options.output + "': " + error.message());
  if (context.options.json) {
    PrintJson({{"ref", options.ref}, {"table", options.table_name}, {"format", options.format},
               {"path", options.output}, {"bytes", written}});
  } else {
    std::cout << "Exported " << options.table_name << "@" << options.ref << " as "
              << options.format << " to " << options.output << " (" << FormatBytes(written)
              << ")\n";
  }
  return Status::Ok();
}

// ---- branch / tag ---------------------------------------------------------------------------

Status ListRefs(Context& context, DataClient& client, const std::string& kind) {
  KILN_ASSIGN_OR_RETURN(Json refs, client.Refs());
  Json selected = Json::array();
  for (const Json& ref : ArrayField(refs, "refs")) {
    if (Field(ref, "kind") == kind) selected.push_back(ref);
  }
  if (context.options.json) {
    PrintJson({{"refs", selected}});
    return Status::Ok();
  }
  Table table({kind == "branch" ? "BRANCH" : "TAG", "COMMIT", "UPDATED"});
  for (const Json& ref : selected) {
    table.AddRow({Field(ref, "name"), ShortId(Field(ref, "commit_id")),
                  FormatTimestamp(IntField(ref, "updated_ms"))});
  }
  std::cout << table.Render();
  return Status::Ok();
}

Status BranchOrTag(Context& context, const DataOptions& options, const std::string& kind) {
  bool branch = kind == "branch";
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataClient> client, OpenClient(context));
  if (!options.delete_name.empty()) {
    if (!options.name.empty()) {
      return InvalidArgument("pass either NAME (create) or -d NAME (delete), not both");
    }
    KILN_RETURN_IF_ERROR(branch ? client->DeleteBranch(options.delete_name)
                                : client->DeleteTag(options.delete_name));
    if (context.options.json) {
      PrintJson({{"deleted", options.delete_name}, {"kind", kind}});
    } else {
      std::cout << "Deleted " << kind << " " << options.delete_name << "\n";
    }
    return Status::Ok();
  }
  if (options.name.empty()) return ListRefs(context, *client, kind);
  std::string from = options.from.empty() ? "main" : options.from;
  KILN_RETURN_IF_ERROR(branch ? client->CreateBranch(options.name, from)
                              : client->CreateTag(options.name, from));
  KILN_ASSIGN_OR_RETURN(Json commit, client->Show(options.name));
  if (context.options.json) {
    PrintJson({{"name", options.name}, {"kind", kind}, {"commit_id", Field(commit, "id")}});
  } else {
    std::cout << "Created " << kind << " " << options.name << " at "
              << ShortId(Field(commit, "id")) << " (" << from << ")\n";
  }
  return Status::Ok();
}

// ---- merge / revert -------------------------------------------------------------------------

Status Merge(Context& context, const DataOptions& options) {
  data::MergeRequest request;
  request.source = options.source;
  request.into = options.into;
  request.message = options.message;
  request.author = Author();
  if (options.strategy == "ours") request.strategy = data::MergeStrategy::kOurs;
  if (options.strategy == "theirs") request.strategy = data::MergeStrategy::kTheirs;
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataClient> client, OpenClient(context));
  KILN_ASSIGN_OR_RETURN(Json result, client->Merge(request));
  const Json& conflicts = ArrayField(result, "conflicts");
  if (context.options.json) {
    PrintJson(result);
  } else if (!conflicts.empty()) {
    for (const Json& conflict : conflicts) {
      std::string where = Field(conflict, "table");
      if (!Field(conflict, "key").empty()) where += " key " + Field(conflict, "key");
      std::cout << "CONFLICT " << where << ": " << Field(conflict, "reason") << "\n"
                << "  ours (" << options.into << "):   "
                << CellText(conflict.contains("ours") ? conflict["ours"] : Json()) << "\n"
                << "  theirs (" << options.source << "): "
                << CellText(conflict.contains("theirs") ? conflict["theirs"] : Json()) << "\n";
    }
  } else if (result.value("up_to_date", false)) {
    std::cout << "Already up to date: " << options.into << " contains " << options.source << "\n";
  } else {
    const Json& commit = result.contains("commit") ? result["commit"] : Json();
    std::string id = commit.is_object() ? Field(commit, "id") : "";
    if (result.value("fast_forward", false)) {
      std::cout << "Fast-forwarded " << options.into << " to " << ShortId(id) << "\n";
    } else {
      std::cout << "Merged " << options.source << " into " << options.into << ": " << ShortId(id)
                << "\n";
    }
  }
  if (!conflicts.empty()) {
    return Conflict("merge of " + options.source + " into " + options.into + " stopped: " +
                    std::to_string(conflicts.size()) +
                    " conflict(s), nothing was changed (resolve with --strategy ours|theirs)");
  }
  return Status::Ok();
}

Status Revert(Context& context, const DataOptions& options) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataClient> client, OpenClient(context));
  KILN_ASSIGN_OR_RETURN(Json commit, client->Revert(options.ref, options.branch, Author()));
  if (context.options.json) {
    PrintJson(commit);
    return Status::Ok();
  }
  std::cout << CommitLine(options.branch, commit);
  return Status::Ok();
}

// ---- validate / rules -----------------------------------------------------------------------

std::string Samples(const Json& violation) {
  const Json& lines = ArrayField(violation, "sample_lines");
  const Json& values = ArrayField(violation, "sample_values");
  std::string text;
  for (size_t i = 0; i < std::max(lines.size(), values.size()); ++i) {
    if (!text.empty()) text += ", ";
    if (i < lines.size()) text += "line " + JsonScalarText(lines[i]);
    if (i < values.size()) text += (i < lines.size() ? ": " : "") + JsonScalarText(values[i]);
  }
  return text;
}

Status Validate(Context& context, const DataOptions& options) {
  std::optional<std::string> rules_text;
  if (!options.rules_file.empty()) {
    KILN_ASSIGN_OR_RETURN(rules_text, ReadTextFile(options.rules_file, "rules file"));
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataClient> client, OpenClient(context));
  KILN_ASSIGN_OR_RETURN(Json reply, client->Validate(options.ref, rules_text, options.rules_file));
  const Json& violations = ArrayField(reply, "violations");
  if (context.options.json) {
    PrintJson(reply);
  } else if (violations.empty()) {
    std::cout << "OK: " << options.ref << " (" << ShortId(Field(reply, "ref"))
              << ") passes every rule\n";
  } else {
    Table table({"TABLE", "COLUMN", "RULE", "EXPECTED", "OBSERVED", "ROWS", "SAMPLE"}, 60);
    for (const Json& violation : violations) {
      table.AddRow({Field(violation, "table"), Field(violation, "column"), Field(violation, "rule"),
                    Field(violation, "expected"), Field(violation, "observed"),
                    Field(violation, "violating_rows"), Samples(violation)});
    }
    std::cout << table.Render();
  }
  if (!violations.empty()) {
    return Status(StatusCode::kValidationFailed,
                  std::to_string(violations.size()) + " violation(s) in " + options.ref + " (" +
                      ShortId(Field(reply, "ref")) + ")");
  }
  return Status::Ok();
}

Status Rules(Context& context, const DataOptions& options) {
  if (!options.set_file.empty() && options.clear) {
    return InvalidArgument("pass either --set FILE or --clear, not both");
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataClient> client, OpenClient(context));
  if (!options.set_file.empty()) {
    KILN_ASSIGN_OR_RETURN(std::string text, ReadTextFile(options.set_file, "rules file"));
    if (text.empty()) return InvalidArgument("rules file '" + options.set_file + "' is empty");
    KILN_RETURN_IF_ERROR(client->SetRules(options.branch, text));
    if (context.options.json) {
      PrintJson({{"branch", options.branch}, {"rules", text}});
    } else {
      std::cout << "Attached the rules of " << options.set_file << " to branch " << options.branch
                << ": later commits and merges that break them are refused\n";
    }
    return Status::Ok();
  }
  if (options.clear) {
    KILN_RETURN_IF_ERROR(client->SetRules(options.branch, ""));
    if (context.options.json) {
      PrintJson({{"branch", options.branch}});
    } else {
      std::cout << "Removed the rules of branch " << options.branch << "\n";
    }
    return Status::Ok();
  }
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> rules, client->GetRules(options.branch));
  if (context.options.json) {
    Json reply = {{"branch", options.branch}};
    if (rules) reply["rules"] = *rules;
    PrintJson(reply);
  } else if (!rules) {
    std::cout << "Branch " << options.branch << " has no rules\n";
  } else {
    std::cout << *rules;
    if (!rules->empty() && rules->back() != '\n') std::cout << "\n";
  }
  return Status::Ok();
}

// ---- gc / fsck ------------------------------------------------------------------------------

Status Gc(Context& context, const DataOptions& options) {
  data::GcOptions gc;
  KILN_ASSIGN_OR_RETURN(gc.retention_ms, ParseRetention(options.retention));
  gc.dry_run = options.dry_run;
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataClient> client, OpenClient(context));
  KILN_ASSIGN_OR_RETURN(Json report, client->Gc(gc));
  if (context.options.json) {
    PrintJson(report);
    return Status::Ok();
  }
  std::cout << (gc.dry_run ? "Would remove " : "Removed ") << Field(report, "commits_removed")
            << " commit(s) and " << Field(report, "objects_removed") << " object(s), "
            << (gc.dry_run ? "freeing " : "freed ") << FormatBytes(UintField(report, "bytes_freed"))
            << "; " << Field(report, "objects_kept") << " object(s) kept\n";
  return Status::Ok();
}

Status Fsck(Context& context) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<DataClient> client, OpenClient(context));
  ProgressBar progress("checking");
  Result<Json> report = client->Fsck(progress.Callback());
  progress.Finish();
  if (!report.ok()) return report.status();
  const Json& problems = ArrayField(*report, "problems");
  if (context.options.json) {
    PrintJson(*report);
  } else {
    std::cout << "Checked " << Field(*report, "commits_checked") << " commit(s) and "
              << Field(*report, "objects_checked") << " object(s): "
              << (problems.empty() ? "no problems" : std::to_string(problems.size()) + " problem(s)")
              << "\n";
    if (!problems.empty()) {
      Table table({"WHAT", "ID", "PROBLEM"}, 80);
      for (const Json& problem : problems) {
        table.AddRow({Field(problem, "what"), Field(problem, "id"), Field(problem, "problem")});
      }
      std::cout << table.Render();
    }
    int64_t unreferenced = IntField(*report, "unreferenced_objects");
    if (unreferenced > 0) {
      std::cout << unreferenced
                << " unreferenced object file(s), left by refused or interrupted commits (kiln data "
                   "gc removes them)\n";
    }
  }
  if (!problems.empty()) {
    return FailedPrecondition("fsck found " + std::to_string(problems.size()) +
                              " problem(s) in " + client->DisplayName());
  }
  return Status::Ok();
}

}  // namespace

void AddDataCommands(CLI::App& app, Context& context) {
  CLI::App* group = app.add_subcommand(
      "data", "Versioned datasets: commit tables and files, branch, diff, merge, validate");
  group->require_subcommand(1);
  auto options = std::make_shared<DataOptions>();
  auto on_run = [&context, options](CLI::App* command, auto action) {
    command->callback([&context, options, action] {
      context.SetAction([&context, options, action] { return action(context, *options); });
    });
  };

  CLI::App* commit = group->add_subcommand(
      "commit", "Commit CSV, TSV and JSONL tables and other files as a new commit on a branch");
  commit->add_option("PATH", options->paths, "Files to commit (tables by extension, else bytes)");
  commit->add_option("-m,--message", options->message, "Commit message");
  commit->add_option("--branch", options->branch, "Branch to commit to (default main)");
  commit->add_option("--table", options->table,
                     "Make the file a new version of this existing table");
  commit->add_option("--key", options->key, "The table's key column (rows matched by it)");
  commit->add_option("--remove", options->remove, "Remove this table or file (repeatable)")
      ->allow_extra_args(false);
  on_run(commit, Commit);

  CLI::App* log = group->add_subcommand("log", "List commits, newest first (first parents)");
  log->add_option("REF", options->ref, "Branch, tag or commit (default main)");
  log->add_option("-n,--max", options->limit, "At most N commits")->check(CLI::PositiveNumber);
  on_run(log, Log);

  CLI::App* show = group->add_subcommand("show", "Show a commit, or one table's schema and profile");
  show->add_option("REF", options->ref, "Branch, tag, commit id (prefix), main~1, main@{DATE}")
      ->required();
  show->add_option("TABLE", options->table_name, "A table or file of the commit");
  show->add_flag("--profile", options->profile, "Print the table's stored profile");
  on_run(show, Show);

  CLI::App* diff = group->add_subcommand("diff", "Rows and schema changed between two commits");
  diff->add_option("A", options->ref, "From REF")->required();
  diff->add_option("B", options->ref_b, "To REF")->required();
  diff->add_option("--max-rows", options->max_rows, "List at most N changed rows per table")
      ->check(CLI::NonNegativeNumber);
  on_run(diff, Diff);

  CLI::App* checkout = group->add_subcommand("checkout", "Write a commit's tables and files to a folder");
  checkout->add_option("REF", options->ref, "Branch, tag or commit")->required();
  checkout->add_option("--to", options->to, "Folder (default .)");
  checkout->add_option("--table", options->table_name, "Only this table or file");
  on_run(checkout, Checkout);

  CLI::App* export_command =
      group->add_subcommand("export", "Write one table as CSV, TSV or JSONL (stdout by default)");
  export_command->add_option("REF", options->ref, "Branch, tag or commit")->required();
  export_command->add_option("TABLE", options->table_name, "Table name")->required();
  export_command->add_option("--format", options->format, "csv (default), tsv or jsonl")
      ->check(CLI::IsMember({"csv", "tsv", "jsonl"}));
  export_command->add_option("-o,--output", options->output, "File to write (default stdout)");
  on_run(export_command, Export);

  for (const char* kind : {"branch", "tag"}) {
    bool is_branch = std::string(kind) == "branch";
    CLI::App* command = group->add_subcommand(
        kind, is_branch ? "List branches, create NAME at FROM (default main), or -d NAME"
                        : "List tags, create NAME at REF (default main), or -d NAME");
    command->add_option("NAME", options->name, is_branch ? "New branch" : "New tag");
    command->add_option(is_branch ? "FROM" : "REF", options->from,
                        "Where it points (default main)");
    command->add_option("-d,--delete", options->delete_name,
                        is_branch ? "Delete this branch" : "Delete this tag");
    std::string name = kind;
    on_run(command, [name](Context& c, const DataOptions& o) { return BranchOrTag(c, o, name); });
  }

  CLI::App* merge = group->add_subcommand("merge", "Three-way merge of SRC into a branch");
  merge->add_option("SRC", options->source, "Branch, tag or commit to merge")->required();
  merge->add_option("--into", options->into, "Branch to merge into (default main)");
  merge->add_option("--strategy", options->strategy,
                    "Resolve every conflict to one side: ours or theirs")
      ->check(CLI::IsMember({"ours", "theirs"}));
  merge->add_option("-m,--message", options->message, "Merge commit message");
  on_run(merge, Merge);

  CLI::App* revert = group->add_subcommand(
      "revert", "New commit on a branch that undoes what REF changed");
  revert->add_option("REF", options->ref, "The commit to undo")->required();
  revert->add_option("--branch", options->branch, "Branch (default main)");
  on_run(revert, Revert);

  CLI::App* validate = group->add_subcommand(
      "validate", "Check a commit's tables against rules (the branch's, or --rules FILE)");
  validate->add_option("REF", options->ref, "Branch, tag or commit")->required();
  validate->add_option("--rules", options->rules_file, "Rules file (YAML)");
  on_run(validate, Validate);

  CLI::App* rules = group->add_subcommand(
      "rules", "Show, attach (--set FILE) or remove (--clear) a branch's validation rules");
  rules->add_option("BRANCH", options->branch, "Branch")->required();
  rules->add_option("--set", options->set_file, "Attach the rules in this YAML file");
  rules->add_flag("--clear", options->clear, "Remove the branch's rules");
  on_run(rules, Rules);

  CLI::App* gc = group->add_subcommand(
      "gc", "Remove commits and objects no branch, tag, run or model references");
  gc->add_option("--retention", options->retention,
                 "Keep unreferenced data younger than this (default 7d; 0 removes all)");
  gc->add_flag("--dry-run", options->dry_run, "Only report what would be removed");
  on_run(gc, Gc);
}

void AddFsckCommand(CLI::App& app, Context& context) {
  CLI::App* fsck = app.add_subcommand(
      "fsck", "Verify the data store: metadata, every object's hash, every commit's closure");
  fsck->callback([&context] { context.SetAction([&context] { return Fsck(context); }); });
}

}  // namespace kiln::cli
