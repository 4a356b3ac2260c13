#include "kiln/data/table_version.h"

namespace kiln::data {

bool IsSafeEntryPath(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.size() > 4096) return false;
  for (char c : path) {
    if (c == '\\' || c == '\0') return false;
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

table::ReadOptions ChunkReadOptions(const TableVersion& version, size_t index) {
  table::ReadOptions options;
  options.file_name = version.file_name.empty() ? version.name : version.file_name;
  options.first_line = index < version.chunks.size() ? version.chunks[index].first_line : 1;
  options.has_header = index == 0 && version.format != table::Format::kJsonl;
  if (!options.has_header) {
    for (const table::Column& column : version.schema.columns) {
      options.column_names.push_back(column.name);
    }
  }
  return options;
}

Status ForEachRow(const TableVersion& version, ChunkLoader& loader,
                  const std::function<Status(const table::RowReader& row)>& on_row) {
  if (!version.format) {
    return InvalidArgument("'" + version.name + "' is a file, not a table");
  }
  for (size_t i = 0; i < version.chunks.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(std::string bytes, loader.Load(version.chunks[i].id));
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<table::RowReader> reader,
                          table::RowReader::Open(*version.format, bytes, ChunkReadOptions(version, i)));
    while (true) {
      KILN_ASSIGN_OR_RETURN(bool more, reader->Next());
      if (!more) break;
      KILN_RETURN_IF_ERROR(on_row(*reader));
    }
  }
  return Status::Ok();
}

}  // namespace kiln::data
