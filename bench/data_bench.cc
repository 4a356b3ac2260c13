// data_bench: kiln's versioned datasets against git-lfs and plain git on a large CSV (issue 3).
//
// The program generates (deterministically, in C++) a CSV of --rows rows (default 6,000,000) of
// an id column and 10 numeric columns, about 500 MB, and three more versions of it, each derived
// from the previous one:
//   v1  base
//   v2  1% of the rows changed, at random positions
//   v3  1% of the rows changed, in one contiguous block (starting at 40% of the file)
//   v4  1% more rows appended
// Then, for each tool in --tools, it commits the four versions one after the other into a fresh
// store, each command a child process (posix_spawn) whose wall time, CPU time (user + system)
// and peak RSS come from wait4's rusage (which includes the children it reaped, such as git's
// filter and pack processes):
//   kiln     `kiln init`, then per version `kiln data commit data.csv -m vN`; store size is the
//            .kiln folder after `kiln data gc --retention 0` and `PRAGMA wal_checkpoint(TRUNCATE)`
//   git-lfs  `git lfs install --local`, `git lfs track "*.csv"`, then per version `git add` +
//            `git commit`; store size is the .git folder (which holds .git/lfs/objects)
//   git      per version `git add` + `git commit`, then `git gc` (timed separately); store size
//            is the .git folder after gc
// Each version's CSV is copied into the work tree and written back to disk (sync) before its
// commit is timed. kiln's v1 commit is also made into --first-commit-runs - 1 (default 2) more
// fresh stores, and the table shows the median of them all: right after the 2 GB of CSVs are
// generated a single run varies by a tenth. The tool then brings the oldest version (v1) back,
// checking its bytes against the generated v1:
//   kiln     `kiln data checkout <v1 id> --to DIR`
//   git(-lfs) `git checkout <v1 sha> -- data.csv` (git-lfs: through its smudge filter)
//
// Store sizes are apparent sizes (the sum of st_size over the folder, recursively); the allocated
// size (st_blocks) is printed beside the totals. Growth of version N is the store size after N
// minus the size after N-1 (v1: minus the empty store). Changed bytes are the CSV bytes of the
// changed or added rows as they read in the new version (v1: the whole file).
//
// --memory-check instead commits one CSV several times kiln's 256 MB memory budget (1.5 GB by
// default) and reports kiln's peak RSS for that commit and for checking it out, against the
// budget plus the binary's own overhead (the peak RSS of committing a tiny CSV).
//
// Goals (issue 3, kiln on 2 cores): a first commit or an append under 1 s per 500 MB, edits (the
// issue says scattered edits; the block edit is held to the same) under 2 s per 500 MB, growth
// within 2x the changed bytes for all three kinds of change, the oldest version back in under
// 1 s per 500 MB. They scale with the file's size, so they mean what the issue says only at the
// default size. Goals are reported (ok / MISS), never asserted.
//
// Exit status: 0 when every command succeeded and every checkout gave back v1's exact bytes;
// 1 otherwise; 2 for usage.
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/json.h"
#include "kiln/core/status.h"

extern char** environ;

namespace kiln::bench {
namespace {

namespace fs = std::filesystem;

constexpr double kMB = 1e6;
constexpr double kGoalBytes = 500e6;               // goals are per 500 MB of CSV
constexpr double kGoalCommitSeconds = 1.0;         // first commit, append
constexpr double kGoalEditSeconds = 2.0;           // scattered edits (and the block edit)
constexpr double kGoalGrowthRatio = 2.0;           // growth / changed bytes, v2..v4
constexpr double kGoalCheckoutSeconds = 1.0;       // oldest version back
constexpr uint64_t kMemoryBudget = 256ULL << 20;   // kiln's default RepositoryOptions
constexpr int kColumns = 10;

// ---------------------------------------------------------------------------------------------
// Child processes.

struct Usage {
  double wall_s = 0;
  double cpu_s = 0;      // user + system of the child and the descendants it reaped
  double max_rss_mb = 0;

  // Two commands run one after the other (git add + git commit): times add, memory is the max.
  Usage& operator+=(const Usage& other) {
    wall_s += other.wall_s;
    cpu_s += other.cpu_s;
    max_rss_mb = std::max(max_rss_mb, other.max_rss_mb);
    return *this;
  }
};

struct Outcome {
  Usage usage;
  int exit_code = -1;    // -1 when killed by a signal
  std::string out;       // stdout (first MB)
  std::string err;       // stderr (first 64 KB)
};

std::string ReadHead(const std::string& path, size_t limit) {
  std::string text;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  text.resize(limit);
  size_t got = 0;
  while (got < limit) {
    ssize_t n = ::read(fd, text.data() + got, limit - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(got);
  return text;
}

std::string Quote(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& arg : argv) {
    if (!text.empty()) text += ' ';
    bool plain = !arg.empty() && arg.find_first_of(" \t'\"*$") == std::string::npos;
    text += plain ? arg : "'" + arg + "'";
  }
  return text;
}

class Runner {
 public:
  explicit Runner(std::string log_dir) : log_dir_(std::move(log_dir)) {
    // Children get this process's environment without the variables that would point kiln at
    // another store or arm a fault, plus a fixed git identity.
    for (char** entry = environ; *entry != nullptr; ++entry) {
      std::string_view text = *entry;
      if (text.starts_with("KILN_STORE=") || text.starts_with("KILN_OBJECTS=") ||
          text.starts_with("KILN_FAULT=")) {
        continue;
      }
      env_.emplace_back(text);
    }
    for (const char* entry : {"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@kiln.invalid",
                              "GIT_COMMITTER_NAME=bench",
                              "GIT_COMMITTER_EMAIL=bench@kiln.invalid", "GIT_TERMINAL_PROMPT=0"}) {
      env_.emplace_back(entry);
    }
  }

  // Runs argv[0] (looked up in PATH) in `cwd` and waits for it. A non-zero exit is an error
  // naming the command and the end of its stderr, unless allow_failure.
  Result<Outcome> Run(const std::vector<std::string>& argv, const std::string& cwd,
                      bool allow_failure = false) {
    std::string out_path = log_dir_ + "/stdout";
    std::string err_path = log_dir_ + "/stderr";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    std::vector<char*> env;
    for (const std::string& entry : env_) env.push_back(const_cast<char*>(entry.c_str()));
    env.push_back(nullptr);

    auto start = std::chrono::steady_clock::now();
    pid_t pid = 0;
    int spawn_error = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    if (spawn_error != 0) {
      return Status(StatusCode::kIoError, "cannot start `" + Quote(argv) + "` in " + cwd + ": " +
                                              std::strerror(spawn_error));
    }
    int wait_status = 0;
    struct rusage usage {};
    while (::wait4(pid, &wait_status, 0, &usage) < 0) {
      if (errno != EINTR) return IoError(std::string("wait4: ") + std::strerror(errno));
    }
    auto end = std::chrono::steady_clock::now();

    Outcome outcome;
    outcome.usage.wall_s = std::chrono::duration<double>(end - start).count();
    outcome.usage.cpu_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                          static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) /
                              1e6;
    outcome.usage.max_rss_mb = static_cast<double>(usage.ru_maxrss) * 1024 / kMB;  // KB on Linux
    outcome.exit_code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
    outcome.out = ReadHead(out_path, 1 << 20);
    outcome.err = ReadHead(err_path, 64 << 10);
    if (outcome.exit_code != 0 && !allow_failure) {
      std::string tail = outcome.err.size() > 2000 ? outcome.err.substr(outcome.err.size() - 2000)
                                                   : outcome.err;
      if (tail.empty()) tail = outcome.out.substr(0, 2000);
      return Internal("`" + Quote(argv) + "` in " + cwd + " " +
                      (outcome.exit_code < 0
                           ? "was killed by signal " + std::to_string(WTERMSIG(wait_status))
                           : "exited " + std::to_string(outcome.exit_code)) +
                      ":\n" + tail);
    }
    return outcome;
  }

 private:
  std::string log_dir_;
  std::vector<std::string> env_;
};

#define BENCH_ASSIGN_OR_RETURN(lhs, expr)           \
  auto KILN_CONCAT_(result_, __LINE__) = (expr);    \
  if (!KILN_CONCAT_(result_, __LINE__).ok()) {      \
    return KILN_CONCAT_(result_, __LINE__).status(); \
  }                                                 \
  lhs = std::move(KILN_CONCAT_(result_, __LINE__)).value()

// ---------------------------------------------------------------------------------------------
// Files.

struct DiskSize {
  uint64_t apparent = 0;   // sum of st_size
  uint64_t allocated = 0;  // sum of st_blocks * 512
};

DiskSize SizeOf(const std::string& root) {
  DiskSize size;
  std::error_code error;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied,
                                           error),
       end;
       it != end; it.increment(error)) {
    if (error) break;
    struct stat info;
    if (::lstat(it->path().c_str(), &info) == 0 && S_ISREG(info.st_mode)) {
      size.apparent += static_cast<uint64_t>(info.st_size);
      size.allocated += static_cast<uint64_t>(info.st_blocks) * 512;
    }
  }
  return size;
}

Status CopyFile(const std::string& from, const std::string& to) {
  std::error_code error;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, error);
  if (error) return IoError("cannot copy " + from + " to " + to + ": " + error.message());
  return Status::Ok();
}

// True when the two files hold the same bytes.
Result<bool> SameBytes(const std::string& a, const std::string& b) {
  int fa = ::open(a.c_str(), O_RDONLY | O_CLOEXEC);
  if (fa < 0) return IoError("cannot open " + a + ": " + std::strerror(errno));
  int fb = ::open(b.c_str(), O_RDONLY | O_CLOEXEC);
  if (fb < 0) {
    ::close(fa);
    return IoError("cannot open " + b + ": " + std::strerror(errno));
  }
  constexpr size_t kBlock = 8 << 20;
  std::vector<char> ba(kBlock), bb(kBlock);
  bool same = true;
  while (same) {
    ssize_t na = 0, nb = 0;
    size_t ga = 0, gb = 0;  // fill each block fully (short reads)
    while (ga < kBlock && (na = ::read(fa, ba.data() + ga, kBlock - ga)) > 0) ga += na;
    while (gb < kBlock && (nb = ::read(fb, bb.data() + gb, kBlock - gb)) > 0) gb += nb;
    if (na < 0 || nb < 0) {
      same = false;
      break;
    }
    if (ga != gb || std::memcmp(ba.data(), bb.data(), ga) != 0) same = false;
    if (ga < kBlock) break;
  }
  ::close(fa);
  ::close(fb);
  return same;
}

// ---------------------------------------------------------------------------------------------
// The generated table. Row i of generation g has id i and 10 values that depend only on (i, g),
// so any version can be written again from a per-row generation number.

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

char* WriteUnsigned(char* out, uint64_t value) {
  char digits[20];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0) *out++ = digits[--n];
  return out;
}

// Writes one row ("id,v0,...,v9\n") at `out`; returns the end. At most 7 + 20 + 10 * 9 bytes.
// Even columns lie in [0, 1000), odd ones in [0, 100), all with 3 decimals.
char* WriteRow(char* out, uint64_t id, uint8_t generation) {
  out = WriteUnsigned(out, id);
  uint64_t state = id * 0x2545F4914F6CDD1DULL + generation * 0x9E3779B97F4A7C15ULL + 1;
  for (int c = 0; c < kColumns; ++c) {
    uint64_t milli = SplitMix(state) % (c % 2 == 0 ? 1000000 : 100000);
    *out++ = ',';
    out = WriteUnsigned(out, milli / 1000);
    uint64_t frac = milli % 1000;
    out[0] = '.';
    out[1] = static_cast<char>('0' + frac / 100);
    out[2] = static_cast<char>('0' + frac / 10 % 10);
    out[3] = static_cast<char>('0' + frac % 10);
    out += 4;
  }
  *out++ = '\n';
  return out;
}

constexpr std::string_view kHeader = "id,c0,c1,c2,c3,c4,c5,c6,c7,c8,c9\n";

struct Written {
  uint64_t bytes = 0;          // the file's size
  uint64_t changed_bytes = 0;  // bytes of the rows `changed` selects
};

// Writes the table whose row i has generation[i]; `changed(i)` selects the rows whose bytes count
// as changed in this version (the header counts only when every row does).
Result<Written> WriteCsv(const std::string& path, const std::vector<uint8_t>& generation,
                         const std::function<bool(uint64_t)>& changed, bool all_changed) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot create " + path + ": " + std::strerror(errno));
  constexpr size_t kBuffer = 8 << 20;
  std::vector<char> buffer(kBuffer);
  char* const begin = buffer.data();
  char* cursor = begin;
  Written written;
  auto flush = [&]() -> Status {
    size_t length = static_cast<size_t>(cursor - begin);
    size_t done = 0;
    while (done < length) {
      ssize_t n = ::write(fd, begin + done, length - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return IoError("cannot write " + path + ": " + std::strerror(errno));
      done += static_cast<size_t>(n);
    }
    written.bytes += length;
    cursor = begin;
    return Status::Ok();
  };
  std::memcpy(cursor, kHeader.data(), kHeader.size());
  cursor += kHeader.size();
  if (all_changed) written.changed_bytes += kHeader.size();
  Status status;
  for (uint64_t i = 0; i < generation.size() && status.ok(); ++i) {
    if (static_cast<size_t>(begin + kBuffer - cursor) < 256) status = flush();
    char* row_end = WriteRow(cursor, i, generation[i]);
    if (all_changed || changed(i)) written.changed_bytes += static_cast<uint64_t>(row_end - cursor);
    cursor = row_end;
  }
  if (status.ok()) status = flush();
  ::close(fd);
  if (!status.ok()) return status;
  return written;
}

struct Version {
  std::string name;    // v1..v4
  std::string change;  // short label
  std::string description;
  std::string path;    // the generated CSV
  uint64_t rows = 0;
  Written written;
};

// Puts a version's CSV into a tool's work tree as the file it commits, and writes everything
// dirty back to the disk before the tool's commit is timed: the copy (500 MB), the generated CSVs
// (2 GB) and a previous tool's deleted store are the benchmark's doing, not the user's, and would
// otherwise be written during the timed commit (by kiln's syncfs, or by the kernel's write-back
// beside git), costing any tool 0.1-0.3 s that a file written earlier does not. Every timed
// command comes after one of these.
Status PlaceVersion(const Version& version, const std::string& dir) {
  KILN_RETURN_IF_ERROR(CopyFile(version.path, dir + "/data.csv"));
  ::sync();
  return Status::Ok();
}

// Generates v1..v4 under `dir`, each derived from the previous one.
Result<std::vector<Version>> GenerateVersions(const std::string& dir, uint64_t rows) {
  std::vector<Version> versions;
  std::vector<uint8_t> generation(rows, 0);
  uint64_t one_percent = std::max<uint64_t>(1, rows / 100);
  std::mt19937_64 random(20261126);

  auto make = [&](std::string name, std::string change, std::string description, uint8_t marker,
                  bool all) -> Status {
    Version version{std::move(name), std::move(change), std::move(description), "", 0, {}};
    version.path = dir + "/" + version.name + ".csv";
    version.rows = generation.size();
    auto start = std::chrono::steady_clock::now();
    uint64_t base_rows = rows;
    auto changed = [&](uint64_t i) {
      return marker == 0xFF ? i >= base_rows : generation[i] == marker;
    };
    BENCH_ASSIGN_OR_RETURN(version.written, WriteCsv(version.path, generation, changed, all));
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "data_bench: generated %s (%.1f MB, %.1f MB changed) in %.2f s\n",
                 version.path.c_str(), version.written.bytes / kMB,
                 version.written.changed_bytes / kMB, seconds);
    versions.push_back(std::move(version));
    return Status::Ok();
  };

  KILN_RETURN_IF_ERROR(make("v1", "base", "base table", 0, true));

  // v2: 1% of the rows, distinct, at random positions, get generation 1.
  uint64_t picked = 0;
  while (picked < one_percent) {
    uint64_t i = random() % rows;
    if (generation[i] == 0) {
      generation[i] = 1;
      ++picked;
    }
  }
  KILN_RETURN_IF_ERROR(make("v2", "1% scattered",
                            std::to_string(one_percent) + " rows changed at random positions", 1,
                            false));

  // v3: one block of 1% of the rows from 40% of the file gets generation 2.
  uint64_t block_start = rows * 2 / 5;
  uint64_t block_end = std::min(rows, block_start + one_percent);
  for (uint64_t i = block_start; i < block_end; ++i) generation[i] = 2;
  KILN_RETURN_IF_ERROR(make("v3", "1% block",
                            std::to_string(block_end - block_start) + " rows changed in one block (rows " +
                                std::to_string(block_start) + ".." + std::to_string(block_end - 1) +
                                ")",
                            2, false));

  // v4: 1% more rows, new ids, appended.
  generation.resize(rows + one_percent, 0);
  KILN_RETURN_IF_ERROR(
      make("v4", "1% appended", std::to_string(one_percent) + " rows appended", 0xFF, false));
  return versions;
}

// ---------------------------------------------------------------------------------------------
// Measurements per tool.

struct VersionResult {
  const Version* version = nullptr;
  Usage commit;
  std::optional<Usage> gc;  // plain git only
  DiskSize store;           // after the commit (and gc, checkpoint)
  int64_t growth = 0;       // apparent bytes
};

struct ToolResult {
  std::string tool;
  DiskSize empty_store;
  std::vector<VersionResult> versions;
  std::string checkout_command;
  Usage checkout;
  bool checkout_identical = false;
  std::optional<Usage> overhead;  // kiln: `kiln data log --json` (the binary, SQLite, libraries)
};

struct Flags {
  uint64_t rows = 6'000'000;
  std::string work = "/tmp";
  bool keep = false;
  std::string tools = "kiln,git-lfs,git";
  std::string kiln;
  bool memory_check = false;
  double memory_gb = 1.5;
  int first_commit_runs = 3;
};

// The id of the first commit in `kiln data log --json` output: an array of commits, or an object
// with a "commits" array, or one commit object.
Result<std::string> FirstCommitId(const std::string& text) {
  BENCH_ASSIGN_OR_RETURN(Json json, ParseJson(text));
  const Json* commit = &json;
  if (json.is_array()) {
    if (json.empty()) return NotFound("kiln data log --json printed no commits");
    commit = &json[0];
  } else if (json.is_object() && json.contains("commits") && json["commits"].is_array()) {
    if (json["commits"].empty()) return NotFound("kiln data log --json printed no commits");
    commit = &json["commits"][0];
  }
  if (!commit->is_object() || !commit->contains("id") || !(*commit)["id"].is_string()) {
    return Internal("no commit id in `kiln data log --json` output: " + text.substr(0, 300));
  }
  return (*commit)["id"].get<std::string>();
}

void Progress(const std::string& tool, const std::string& what, const Usage& usage) {
  std::fprintf(stderr, "data_bench: [%s] %s: %.2f s wall, %.2f s CPU, %.0f MB peak RSS\n",
               tool.c_str(), what.c_str(), usage.wall_s, usage.cpu_s, usage.max_rss_mb);
}

// Commits `version` into `runs` - 1 fresh stores of their own, for the median of the first
// commit's time (`store_commit` is the measured store's own commit); the stores stay until the end,
// since deleting 250 MB of objects slows the next commit's file creation. Returns the median run.
Result<Usage> MedianFirstCommit(Runner& runner, const std::string& kiln, const std::string& work,
                                const Version& version, int runs, const Usage& store_commit) {
  std::vector<Usage> usages = {store_commit};
  for (int run = 1; run < runs; ++run) {
    std::string dir = work + "/kiln-first-commit-" + std::to_string(run);
    KILN_RETURN_IF_ERROR(runner.Run({kiln, "init", dir}, work).status());
    KILN_RETURN_IF_ERROR(PlaceVersion(version, dir));
    BENCH_ASSIGN_OR_RETURN(
        Outcome commit, runner.Run({kiln, "data", "commit", "data.csv", "-m", version.name}, dir));
    Progress("kiln", version.name + " commit, fresh store " + std::to_string(run + 1),
             commit.usage);
    usages.push_back(commit.usage);
  }
  std::sort(usages.begin(), usages.end(),
            [](const Usage& a, const Usage& b) { return a.wall_s < b.wall_s; });
  return usages[usages.size() / 2];
}

Result<ToolResult> MeasureKiln(Runner& runner, const std::string& kiln, const std::string& work,
                               const std::vector<Version>& versions, int first_commit_runs) {
  ToolResult result;
  result.tool = "kiln";
  std::string dir = work + "/kiln";
  std::string store = dir + "/.kiln";
  KILN_RETURN_IF_ERROR(runner.Run({kiln, "init", dir}, work).status());
  auto settle = [&]() -> Status {  // what the store size means: after gc and checkpoint
    KILN_RETURN_IF_ERROR(runner.Run({kiln, "data", "gc", "--retention", "0"}, dir).status());
    return runner.Run({"sqlite3", store + "/kiln.db", "PRAGMA wal_checkpoint(TRUNCATE);"}, dir)
        .status();
  };
  KILN_RETURN_IF_ERROR(
      runner.Run({"sqlite3", store + "/kiln.db", "PRAGMA wal_checkpoint(TRUNCATE);"}, dir).status());
  result.empty_store = SizeOf(store);
  uint64_t previous = result.empty_store.apparent;
  std::string v1_id;
  for (const Version& version : versions) {
    KILN_RETURN_IF_ERROR(PlaceVersion(version, dir));
    VersionResult entry;
    entry.version = &version;
    BENCH_ASSIGN_OR_RETURN(
        Outcome commit,
        runner.Run({kiln, "data", "commit", "data.csv", "-m", version.name}, dir));
    entry.commit = commit.usage;
    Progress("kiln", version.name + " commit", entry.commit);
    if (v1_id.empty() && first_commit_runs > 1) {
      BENCH_ASSIGN_OR_RETURN(entry.commit, MedianFirstCommit(runner, kiln, work, version,
                                                             first_commit_runs, commit.usage));
    }
    KILN_RETURN_IF_ERROR(settle());
    entry.store = SizeOf(store);
    entry.growth = static_cast<int64_t>(entry.store.apparent) - static_cast<int64_t>(previous);
    previous = entry.store.apparent;
    if (v1_id.empty()) {
      BENCH_ASSIGN_OR_RETURN(Outcome log, runner.Run({kiln, "data", "log", "--json"}, dir));
      result.overhead = log.usage;
      BENCH_ASSIGN_OR_RETURN(v1_id, FirstCommitId(log.out));
    }
    result.versions.push_back(entry);
  }
  std::string out = work + "/kiln-checkout";
  std::error_code ignored;
  fs::remove_all(out, ignored);
  std::vector<std::string> checkout = {kiln, "data", "checkout", v1_id, "--to", out};
  result.checkout_command = "kiln data checkout <v1 id> --to DIR";
  BENCH_ASSIGN_OR_RETURN(Outcome outcome, runner.Run(checkout, dir));
  result.checkout = outcome.usage;
  Progress("kiln", "checkout v1", result.checkout);
  std::string file = out + "/data.csv";
  if (!fs::exists(file)) {  // whatever single file the checkout wrote
    for (const auto& entry : fs::recursive_directory_iterator(out, ignored)) {
      if (entry.is_regular_file()) {
        file = entry.path();
        break;
      }
    }
  }
  BENCH_ASSIGN_OR_RETURN(result.checkout_identical, SameBytes(file, versions.front().path));
  fs::remove_all(out, ignored);
  return result;
}

Result<ToolResult> MeasureGit(Runner& runner, const std::string& work,
                              const std::vector<Version>& versions, bool lfs) {
  ToolResult result;
  result.tool = lfs ? "git-lfs" : "git";
  std::string dir = work + "/" + result.tool;
  fs::create_directories(dir);
  KILN_RETURN_IF_ERROR(runner.Run({"git", "init", "-q", "."}, dir).status());
  // Garbage collection only when this program asks (plain git), never behind a commit's back.
  KILN_RETURN_IF_ERROR(runner.Run({"git", "config", "gc.auto", "0"}, dir).status());
  if (lfs) {
    KILN_RETURN_IF_ERROR(runner.Run({"git", "lfs", "install", "--local"}, dir).status());
    KILN_RETURN_IF_ERROR(runner.Run({"git", "lfs", "track", "*.csv"}, dir).status());
    KILN_RETURN_IF_ERROR(runner.Run({"git", "add", ".gitattributes"}, dir).status());
    KILN_RETURN_IF_ERROR(
        runner.Run({"git", "commit", "-q", "-m", "track csv with lfs"}, dir).status());
  }
  result.empty_store = SizeOf(dir + "/.git");
  uint64_t previous = result.empty_store.apparent;
  std::string v1_sha;
  for (const Version& version : versions) {
    KILN_RETURN_IF_ERROR(PlaceVersion(version, dir));
    VersionResult entry;
    entry.version = &version;
    BENCH_ASSIGN_OR_RETURN(Outcome add, runner.Run({"git", "add", "data.csv"}, dir));
    BENCH_ASSIGN_OR_RETURN(Outcome commit,
                           runner.Run({"git", "commit", "-q", "-m", version.name}, dir));
    entry.commit = add.usage;
    entry.commit += commit.usage;
    Progress(result.tool, version.name + " add + commit", entry.commit);
    if (!lfs) {
      BENCH_ASSIGN_OR_RETURN(Outcome gc, runner.Run({"git", "gc", "--quiet"}, dir));
      entry.gc = gc.usage;
      Progress(result.tool, version.name + " gc", *entry.gc);
    }
    entry.store = SizeOf(dir + "/.git");
    entry.growth = static_cast<int64_t>(entry.store.apparent) - static_cast<int64_t>(previous);
    previous = entry.store.apparent;
    if (v1_sha.empty()) {
      BENCH_ASSIGN_OR_RETURN(Outcome head, runner.Run({"git", "rev-parse", "HEAD"}, dir));
      v1_sha = head.out.substr(0, head.out.find_first_of("\r\n"));
    }
    result.versions.push_back(entry);
  }
  result.checkout_command = lfs ? "git checkout <v1 sha> -- data.csv (lfs smudge)"
                                : "git checkout <v1 sha> -- data.csv";
  BENCH_ASSIGN_OR_RETURN(Outcome outcome,
                         runner.Run({"git", "checkout", v1_sha, "--", "data.csv"}, dir));
  result.checkout = outcome.usage;
  Progress(result.tool, "checkout v1", result.checkout);
  BENCH_ASSIGN_OR_RETURN(result.checkout_identical,
                         SameBytes(dir + "/data.csv", versions.front().path));
  return result;
}

// ---------------------------------------------------------------------------------------------
// Output.

std::string Fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, value);
  return buffer;
}

std::string Mark(bool ok) { return ok ? "ok" : "MISS"; }

std::string MachineLine() {
  struct utsname name {};
  ::uname(&name);
  char when[64];
  std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%MZ", std::gmtime(&now));
  return std::string(name.sysname) + " " + name.release + " " + name.machine + ", " +
         std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " cores, " + when;
}

bool PrintTable(const std::vector<Version>& versions, const std::vector<ToolResult>& tools,
                int first_commit_runs) {
  bool all_identical = true;
  const Version& base = versions.front();
  double scale = base.written.bytes / kGoalBytes;
  std::printf("kiln data benchmark: %llu rows x (id + %d numeric columns), v1 = %.1f MB of CSV; "
              "each version derived from the previous one\n",
              static_cast<unsigned long long>(base.rows), kColumns, base.written.bytes / kMB);
  for (const Version& version : versions) {
    std::printf("  %s  %-13s %s: %.1f MB file, %.2f MB changed\n", version.name.c_str(),
                version.change.c_str(), version.description.c_str(),
                version.written.bytes / kMB, version.written.changed_bytes / kMB);
  }
  std::printf("  %s\n\n", MachineLine().c_str());

  std::printf("%-8s %-3s %-13s %9s %8s %8s %8s %8s %9s %9s %10s %10s %10s  %s\n", "tool", "ver",
              "change", "commit_s", "cpu_s", "rss_MB", "gc_s", "gc_cpu_s", "gc_rss_MB", "store_MB",
              "growth_MB", "changed_MB", "growth/chg", "goals (kiln)");
  for (const ToolResult& tool : tools) {
    for (const VersionResult& v : tool.versions) {
      const Version& version = *v.version;
      double ratio = static_cast<double>(v.growth) / static_cast<double>(version.written.changed_bytes);
      std::string goals = "-";
      if (tool.tool == "kiln") {
        bool edit = version.name == "v2" || version.name == "v3";
        double goal_s = (edit ? kGoalEditSeconds : kGoalCommitSeconds) * scale;
        goals = "commit<" + Fixed(goal_s, 2) + "s " + Mark(v.commit.wall_s < goal_s);
        if (version.name != "v1") {
          goals += ", growth<=" + Fixed(kGoalGrowthRatio, 0) + "x " +
                   Mark(ratio <= kGoalGrowthRatio);
        }
      }
      std::printf("%-8s %-3s %-13s %9s %8s %8s %8s %8s %9s %9s %10s %10s %10s  %s\n",
                  tool.tool.c_str(), version.name.c_str(), version.change.c_str(),
                  Fixed(v.commit.wall_s, 3).c_str(), Fixed(v.commit.cpu_s, 2).c_str(),
                  Fixed(v.commit.max_rss_mb, 0).c_str(),
                  v.gc ? Fixed(v.gc->wall_s, 2).c_str() : "-",
                  v.gc ? Fixed(v.gc->cpu_s, 2).c_str() : "-",
                  v.gc ? Fixed(v.gc->max_rss_mb, 0).c_str() : "-",
                  Fixed(v.store.apparent / kMB, 1).c_str(), Fixed(v.growth / kMB, 2).c_str(),
                  Fixed(version.written.changed_bytes / kMB, 2).c_str(), Fixed(ratio, 3).c_str(),
                  goals.c_str());
    }
  }

  std::printf("\n%-8s %-48s %9s %8s %8s %10s  %s\n", "tool", "oldest version (v1) back",
              "wall_s", "cpu_s", "rss_MB", "identical", "goal (kiln)");
  for (const ToolResult& tool : tools) {
    all_identical = all_identical && tool.checkout_identical;
    std::string goal = "-";
    if (tool.tool == "kiln") {
      double goal_s = kGoalCheckoutSeconds * scale;
      goal = "<" + Fixed(goal_s, 2) + "s " + Mark(tool.checkout.wall_s < goal_s);
    }
    std::printf("%-8s %-48s %9s %8s %8s %10s  %s\n", tool.tool.c_str(),
                tool.checkout_command.c_str(), Fixed(tool.checkout.wall_s, 3).c_str(),
                Fixed(tool.checkout.cpu_s, 2).c_str(), Fixed(tool.checkout.max_rss_mb, 0).c_str(),
                tool.checkout_identical ? "yes" : "NO", goal.c_str());
  }

  std::printf("\n%-8s %14s %14s %14s\n", "tool", "empty_MB", "final_MB", "final_alloc_MB");
  for (const ToolResult& tool : tools) {
    const DiskSize& last = tool.versions.empty() ? tool.empty_store : tool.versions.back().store;
    std::printf("%-8s %14s %14s %14s\n", tool.tool.c_str(),
                Fixed(tool.empty_store.apparent / kMB, 2).c_str(),
                Fixed(last.apparent / kMB, 1).c_str(), Fixed(last.allocated / kMB, 1).c_str());
  }

  for (const ToolResult& tool : tools) {
    if (tool.tool != "kiln" || !tool.overhead) continue;
    double peak = 0;
    for (const VersionResult& v : tool.versions) peak = std::max(peak, v.commit.max_rss_mb);
    double limit = kMemoryBudget / kMB + tool.overhead->max_rss_mb;
    std::printf("\nkiln commit peak RSS: %.0f MB (goal < %.0f MB = the 256 MiB budget + %.0f MB of "
                "`kiln data log` overhead) %s\n",
                peak, limit, tool.overhead->max_rss_mb, Mark(peak < limit).c_str());
  }
  std::printf(
      "\nTimes are wall seconds of the child processes; cpu_s is user + system (with reaped "
      "descendants), rss_MB the peak RSS (max over add and commit for git). store_MB is the "
      "apparent size (sum of st_size) of .kiln/ after `kiln data gc --retention 0` and a WAL "
      "checkpoint, or of .git/ (git: after gc). Goals are per 500 MB of CSV (scaled to %.1f MB "
      "here); edits: the issue names scattered edits, the block edit is held to the same. "
      "kiln's v1 commit is the median of %d commits, each into a fresh store (the first one "
      "right after the CSVs were generated); every other figure is one run.\n",
      base.written.bytes / kMB, first_commit_runs);
  std::fflush(stdout);
  return all_identical;
}

// ---------------------------------------------------------------------------------------------

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, ',')) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

std::string DefaultKiln() {
  std::error_code error;
  fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (error) return "kiln";
  for (const fs::path& candidate : {self.parent_path() / "bin" / "kiln",
                                    self.parent_path().parent_path() / "bin" / "kiln"}) {
    if (fs::exists(candidate, error)) return candidate;
  }
  return (self.parent_path() / "bin" / "kiln").string();
}

// Commits one CSV several times the memory budget and reports kiln's peak RSS.
Result<bool> MemoryCheck(Runner& runner, const Flags& flags, const std::string& work) {
  uint64_t target = static_cast<uint64_t>(flags.memory_gb * 1e9);
  // Average row length from a sample, so the file lands near the target.
  std::vector<char> sample(256);
  uint64_t sample_bytes = 0;
  constexpr uint64_t kSampleRows = 100000;
  for (uint64_t i = 0; i < kSampleRows; ++i) {
    sample_bytes += static_cast<uint64_t>(WriteRow(sample.data(), i * 61, 0) - sample.data());
  }
  uint64_t rows = target * kSampleRows / sample_bytes;
  std::string big = work + "/big.csv";
  std::string tiny = work + "/tiny.csv";
  auto start = std::chrono::steady_clock::now();
  BENCH_ASSIGN_OR_RETURN(Written big_written,
                         WriteCsv(big, std::vector<uint8_t>(rows, 0), nullptr, true));
  std::fprintf(stderr, "data_bench: generated %s (%.1f MB) in %.1f s\n", big.c_str(),
               big_written.bytes / kMB,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  BENCH_ASSIGN_OR_RETURN(Written tiny_written,
                         WriteCsv(tiny, std::vector<uint8_t>(1000, 3), nullptr, true));

  std::string dir = work + "/kiln";
  KILN_RETURN_IF_ERROR(runner.Run({flags.kiln, "init", dir}, work).status());
  KILN_RETURN_IF_ERROR(CopyFile(tiny, dir + "/tiny.csv"));
  BENCH_ASSIGN_OR_RETURN(Outcome tiny_commit,
                         runner.Run({flags.kiln, "data", "commit", "tiny.csv", "-m", "tiny"}, dir));
  Progress("kiln", "commit tiny.csv", tiny_commit.usage);
  KILN_RETURN_IF_ERROR(CopyFile(big, dir + "/big.csv"));
  BENCH_ASSIGN_OR_RETURN(Outcome big_commit,
                         runner.Run({flags.kiln, "data", "commit", "big.csv", "-m", "big"}, dir));
  Progress("kiln", "commit big.csv", big_commit.usage);
  fs::remove(dir + "/big.csv");
  std::string out = work + "/checkout";
  BENCH_ASSIGN_OR_RETURN(Outcome checkout,
                         runner.Run({flags.kiln, "data", "checkout", "main", "--to", out}, dir));
  Progress("kiln", "checkout", checkout.usage);
  BENCH_ASSIGN_OR_RETURN(bool identical, SameBytes(out + "/big.csv", big));

  double overhead = tiny_commit.usage.max_rss_mb;
  double limit = kMemoryBudget / kMB + overhead;
  std::printf("kiln memory check: one %.2f GB CSV (%llu rows) against the %.0f MB budget "
              "(256 MiB); %s\n",
              big_written.bytes / 1e9, static_cast<unsigned long long>(rows),
              kMemoryBudget / kMB, MachineLine().c_str());
  std::printf("%-40s %9s %8s %8s  %s\n", "command", "wall_s", "cpu_s", "rss_MB", "goal");
  std::printf("%-40s %9s %8s %8s  %s\n", "kiln data commit tiny.csv (overhead)",
              Fixed(tiny_commit.usage.wall_s, 3).c_str(), Fixed(tiny_commit.usage.cpu_s, 2).c_str(),
              Fixed(overhead, 0).c_str(), "-");
  std::printf("%-40s %9s %8s %8s  %s\n", "kiln data commit big.csv",
              Fixed(big_commit.usage.wall_s, 3).c_str(), Fixed(big_commit.usage.cpu_s, 2).c_str(),
              Fixed(big_commit.usage.max_rss_mb, 0).c_str(),
              ("<" + Fixed(limit, 0) + " MB " + Mark(big_commit.usage.max_rss_mb < limit)).c_str());
  std::printf("%-40s %9s %8s %8s  %s\n", "kiln data checkout main --to DIR",
              Fixed(checkout.usage.wall_s, 3).c_str(), Fixed(checkout.usage.cpu_s, 2).c_str(),
              Fixed(checkout.usage.max_rss_mb, 0).c_str(),
              ("<" + Fixed(limit, 0) + " MB " + Mark(checkout.usage.max_rss_mb < limit)).c_str());
  std::printf("checkout identical to the committed file: %s\n", identical ? "yes" : "NO");
  (void)tiny_written;
  return identical;
}

int Main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"kiln's versioned datasets against git-lfs and plain git on a ~500 MB CSV"};
  app.add_option("--rows", flags.rows, "Rows of the base CSV (6,000,000 make about 500 MB)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--work", flags.work,
                 "Folder in which a fresh working folder is made (removed at the end unless "
                 "--keep)")
      ->capture_default_str();
  app.add_flag("--keep", flags.keep, "Keep the working folder");
  app.add_option("--first-commit-runs", flags.first_commit_runs,
                 "kiln's v1 commit: the median of this many commits, each into a fresh store")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--tools", flags.tools, "Comma-separated: kiln, git-lfs, git")
      ->capture_default_str();
  app.add_option("--kiln", flags.kiln, "The kiln binary (default: bin/kiln beside this program)");
  app.add_flag("--memory-check", flags.memory_check,
               "Instead: commit one CSV several times the 256 MB budget and report peak RSS");
  app.add_option("--memory-gb", flags.memory_gb, "Size of the --memory-check CSV in GB")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;
  }
  std::vector<std::string> tools = SplitList(flags.tools);
  for (const std::string& tool : tools) {
    if (tool != "kiln" && tool != "git-lfs" && tool != "git") {
      std::fprintf(stderr, "data_bench: --tools: '%s' is not kiln, git-lfs or git\n",
                   tool.c_str());
      return 2;
    }
  }
  if (flags.kiln.empty()) flags.kiln = DefaultKiln();
  bool needs_kiln = flags.memory_check ||
                    std::find(tools.begin(), tools.end(), "kiln") != tools.end();
  if (needs_kiln) {
    std::error_code error;
    flags.kiln = fs::absolute(flags.kiln, error).string();
    if (::access(flags.kiln.c_str(), X_OK) != 0) {
      std::fprintf(stderr, "data_bench: kiln binary %s not found (pass --kiln PATH)\n",
                   flags.kiln.c_str());
      return 2;
    }
  }

  std::string pattern = flags.work + "/kiln-data-bench.XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::fprintf(stderr, "data_bench: cannot make a folder in %s: %s\n", flags.work.c_str(),
                 std::strerror(errno));
    return 1;
  }
  std::string work = fs::absolute(pattern).string();
  fs::create_directories(work + "/logs");
  fs::create_directories(work + "/data");
  std::fprintf(stderr, "data_bench: working in %s\n", work.c_str());
  Runner runner(work + "/logs");

  int exit_code = 0;
  if (flags.memory_check) {
    Result<bool> identical = MemoryCheck(runner, flags, work);
    if (!identical.ok()) {
      std::fprintf(stderr, "data_bench: %s\n", identical.status().ToString().c_str());
      exit_code = 1;
    } else if (!*identical) {
      exit_code = 1;
    }
  } else {
    Result<std::vector<Version>> versions = GenerateVersions(work + "/data", flags.rows);
    std::vector<ToolResult> results;
    if (!versions.ok()) {
      std::fprintf(stderr, "data_bench: %s\n", versions.status().ToString().c_str());
      exit_code = 1;
    }
    for (size_t i = 0; exit_code == 0 && i < tools.size(); ++i) {
      const std::string& tool = tools[i];
      Result<ToolResult> result =
          tool == "kiln" ? MeasureKiln(runner, flags.kiln, work, *versions, flags.first_commit_runs)
                         : MeasureGit(runner, work, *versions, tool == "git-lfs");
      if (!result.ok()) {
        std::fprintf(stderr, "data_bench: %s: %s\n", tool.c_str(),
                     result.status().ToString().c_str());
        exit_code = 1;
        break;
      }
      results.push_back(std::move(result).value());
      // Each tool's store is measured; free the disk before the next one.
      if (!flags.keep) {
        std::error_code ignored;
        fs::remove_all(work + "/" + tool, ignored);
      }
    }
    if (!results.empty() && !PrintTable(*versions, results, flags.first_commit_runs)) {
      std::fprintf(stderr, "data_bench: a checkout did not give back v1's bytes\n");
      exit_code = 1;
    }
  }
  if (flags.keep) {
    std::fprintf(stderr, "data_bench: kept %s\n", work.c_str());
  } else {
    std::error_code ignored;
    fs::remove_all(work, ignored);
  }
  return exit_code;
}

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) { return kiln::bench::Main(argc, argv); }
