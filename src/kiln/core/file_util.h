// Files: reading, atomic replacement, directories, and fault-injection points for crash tests.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"

namespace kiln {

Result<std::string> ReadFile(const std::string& path);

// Atomic writes first write "<path>.tmp-<12 random characters>" beside the file, then rename it.
// A name is therefore limited to NAME_MAX less kTempSuffixBytes, and listings skip names that
// contain kTempMarker.
inline constexpr std::string_view kTempMarker = ".tmp-";
inline constexpr size_t kTempSuffixBytes = kTempMarker.size() + 12;
std::string TempPathBeside(const std::string& path);

// Replaces `path` with `contents` so that a reader (or a crash at any moment) sees either the old
// file or the new one, never a mix: write a temp file beside it, fsync it, rename over `path`,
// fsync the directory. Acknowledge only after this returns Ok.
Status WriteFileAtomic(const std::string& path, std::string_view contents);

// mkdir -p.
Status MakeDirs(const std::string& path);
bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);
// Fsyncs a directory so that a rename or create inside it is durable.
Status SyncDirectory(const std::string& path);
// Makes a file's bytes durable (fdatasync; its name needs SyncDirectory of its folder). NotFound
// if there is no such file.
Status SyncFile(const std::string& path);
// Recursively removes `path` (file or folder). Missing is fine.
Status RemoveAll(const std::string& path);

// Fault injection. When the environment variable KILN_FAULT names `point` (e.g.
// "artifact.after_write"), the process exits with _exit(137) at that point, as a kill -9 would;
// "NAME#N" exits the Nth time the point is reached (a point inside a loop over chunks).
// Crash tests run a command once per point. A no-op otherwise (one cached getenv).
void FaultPoint(std::string_view point);

}  // namespace kiln
