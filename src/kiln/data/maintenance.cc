// Garbage collection and fsck of the dataset repository.
#include <atomic>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "kiln/core/file_util.h"
#include "kiln/core/hash.h"
#include "kiln/data/repository_internal.h"

namespace kiln::data::internal {
namespace {

struct CommitRow {
  std::vector<std::string> parents;
  int64_t created_ms = 0;
};

struct ObjectRow {
  std::optional<std::string> base;
  uint64_t stored_size = 0;
  int64_t created_ms = 0;
};

struct Snapshot {
  std::unordered_map<std::string, CommitRow> commits;
  // commit id -> (manifest id, profile id or "")
  std::unordered_multimap<std::string, std::pair<std::string, std::string>> entries;
  std::unordered_map<std::string, ObjectRow> objects;
  std::vector<std::pair<std::string, std::string>> refs;  // name -> commit id
  std::unordered_set<std::string> run_references;         // commit ids runs name
};

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Status ReadSnapshot(store::Transaction& tx, Snapshot* snapshot) {
  KILN_ASSIGN_OR_RETURN(store::Rows commits,
                        tx.Query("SELECT commit_id, parents, created_ms FROM data_commits"));
  for (size_t r = 0; r < commits.size(); ++r) {
    snapshot->commits[commits.Text(r, 0)] = CommitRow{Split(commits.Text(r, 1)), commits.Int(r, 2)};
  }
  KILN_ASSIGN_OR_RETURN(store::Rows entries,
                        tx.Query("SELECT commit_id, manifest_id, profile_id FROM data_entries"));
  for (size_t r = 0; r < entries.size(); ++r) {
    snapshot->entries.emplace(entries.Text(r, 0),
                              std::make_pair(entries.Text(r, 1), entries.Text(r, 2)));
  }
  KILN_ASSIGN_OR_RETURN(
      store::Rows objects,
      tx.Query("SELECT object_id, base_id, stored_size, created_ms FROM data_objects"));
  for (size_t r = 0; r < objects.size(); ++r) {
    snapshot->objects[objects.Text(r, 0)] =
        ObjectRow{objects.OptText(r, 1), static_cast<uint64_t>(objects.Int(r, 2)),
                  objects.Int(r, 3)};
  }
  KILN_ASSIGN_OR_RETURN(store::Rows refs, tx.Query("SELECT name, commit_id FROM data_refs"));
  for (size_t r = 0; r < refs.size(); ++r) {
    snapshot->refs.emplace_back(refs.Text(r, 0), refs.Text(r, 1));
  }
  // Lineage: runs that name a dataset commit keep it (and its history) alive.
  KILN_ASSIGN_OR_RETURN(store::Rows tags,
                        tx.Query("SELECT value FROM tags WHERE key = 'kiln.data.commit'"));
  for (size_t r = 0; r < tags.size(); ++r) snapshot->run_references.insert(tags.Text(r, 0));
  KILN_ASSIGN_OR_RETURN(store::Rows datasets, tx.Query("SELECT digest FROM datasets"));
  for (size_t r = 0; r < datasets.size(); ++r) {
    snapshot->run_references.insert(datasets.Text(r, 0));
  }
  return Status::Ok();
}

// Every object a manifest names: its chunks and their saved partial profiles, as
// (what, hex id) pairs.
Result<std::vector<std::pair<const char*, std::string>>> ManifestObjects(
    objects::ObjectStore& objects, const std::string& manifest_hex) {
  TableVersion version;
  if (!Digest::FromHex(manifest_hex, &version.manifest)) {
    return Internal("malformed manifest id '" + manifest_hex + "'");
  }
  KILN_RETURN_IF_ERROR(LoadManifest(objects, &version));
  std::vector<std::pair<const char*, std::string>> named;
  named.reserve(version.chunks.size());
  for (const ChunkRef& chunk : version.chunks) {
    named.emplace_back("chunk", chunk.id.Hex());
    if (chunk.stats) named.emplace_back("chunk profile", chunk.stats->Hex());
  }
  return named;
}

}  // namespace

Result<GcReport> CollectGarbage(store::Database& database, objects::ObjectStore& objects,
                                const GcOptions& options, int64_t now_ms) {
  Snapshot snapshot;
  KILN_RETURN_IF_ERROR(database.Read([&](store::Transaction& tx) -> Status {
    snapshot = Snapshot();
    return ReadSnapshot(tx, &snapshot);
  }));
  const int64_t horizon = now_ms - options.retention_ms;

  // Mark commits: refs, runs' references and young commits are roots; parents are kept with
  // their children.
  std::unordered_set<std::string> live_commits;
  std::deque<std::string> queue;
  auto keep = [&](const std::string& id) {
    if (snapshot.commits.count(id) != 0 && live_commits.insert(id).second) queue.push_back(id);
  };
  for (const auto& [name, id] : snapshot.refs) keep(id);
  for (const std::string& id : snapshot.run_references) keep(id);
  for (const auto& [id, row] : snapshot.commits) {
    if (row.created_ms >= horizon) keep(id);
  }
  while (!queue.empty()) {
    std::string id = std::move(queue.front());
    queue.pop_front();
    for (const std::string& parent : snapshot.commits[id].parents) keep(parent);
  }

  // Mark objects: manifests, profiles, their chunks, and every delta base below them.
  std::unordered_set<std::string> live_objects;
  std::unordered_set<std::string> manifests_seen;
  auto keep_object = [&](std::string id) {
    while (live_objects.insert(id).second) {
      auto row = snapshot.objects.find(id);
      if (row == snapshot.objects.end() || !row->second.base) break;
      id = *row->second.base;
    }
  };
  for (const auto& [commit_id, ids] : snapshot.entries) {
    if (live_commits.count(commit_id) == 0) continue;
    const auto& [manifest, profile] = ids;
    keep_object(manifest);
    if (!profile.empty()) keep_object(profile);
    if (!manifests_seen.insert(manifest).second) continue;
    KILN_ASSIGN_OR_RETURN(auto named, ManifestObjects(objects, manifest));
    for (auto& [what, id] : named) keep_object(std::move(id));
  }

  GcReport report;
  std::vector<std::string> dead_commits;
  for (const auto& [id, row] : snapshot.commits) {
    if (live_commits.count(id) == 0) dead_commits.push_back(id);
  }
  std::vector<std::string> dead_objects;
  for (const auto& [id, row] : snapshot.objects) {
    if (live_objects.count(id) != 0) continue;
    if (row.created_ms >= horizon) {
      ++report.objects_kept;
      continue;
    }
    dead_objects.push_back(id);
    report.bytes_freed += row.stored_size;
  }
  report.objects_kept += static_cast<int64_t>(live_objects.size());
  report.commits_removed = static_cast<int64_t>(dead_commits.size());
  report.objects_removed = static_cast<int64_t>(dead_objects.size());

  // Files no metadata names: left by crashed writers (never acknowledged).
  std::vector<Digest> orphans;
  KILN_RETURN_IF_ERROR(objects.ForEach(
      [&](const Digest& id, uint64_t stored_size, int64_t mtime_ms) -> Status {
        if (snapshot.objects.count(id.Hex()) == 0 && mtime_ms < horizon) {
          orphans.push_back(id);
          report.bytes_freed += stored_size;
        }
        return Status::Ok();
      }));
  report.objects_removed += static_cast<int64_t>(orphans.size());
  if (options.dry_run) return report;

  // Metadata first, then files: a crash in between leaves only unnamed files for the next gc.
  KILN_RETURN_IF_ERROR(database.Write([&](store::Transaction& tx) -> Status {
    std::vector<std::vector<store::Value>> commit_rows;
    for (const std::string& id : dead_commits) commit_rows.push_back({id});
    std::vector<std::vector<store::Value>> object_rows;
    for (const std::string& id : dead_objects) object_rows.push_back({id});
    if (!commit_rows.empty()) {
      KILN_RETURN_IF_ERROR(
          tx.ExecMany("DELETE FROM data_entries WHERE commit_id = ?", commit_rows).status());
      KILN_RETURN_IF_ERROR(
          tx.ExecMany("DELETE FROM data_commits WHERE commit_id = ?", commit_rows).status());
    }
    if (!object_rows.empty()) {
      KILN_RETURN_IF_ERROR(
          tx.ExecMany("DELETE FROM data_objects WHERE object_id = ?", object_rows).status());
    }
    return Status::Ok();
  }));
  FaultPoint("data.gc.after_metadata");
  for (const std::string& hex : dead_objects) {
    Digest id;
    if (Digest::FromHex(hex, &id)) KILN_RETURN_IF_ERROR(objects.Remove(id));
  }
  for (const Digest& id : orphans) KILN_RETURN_IF_ERROR(objects.Remove(id));
  KILN_RETURN_IF_ERROR(objects.RemoveStaleTemps(horizon));
  return report;
}

Result<FsckReport> CheckRepository(store::Database& database, objects::ObjectStore& objects,
                                   ThreadPool& pool, const Progress& progress) {
  Snapshot snapshot;
  KILN_RETURN_IF_ERROR(database.Read([&](store::Transaction& tx) -> Status {
    snapshot = Snapshot();
    return ReadSnapshot(tx, &snapshot);
  }));
  FsckReport report;
  auto problem = [&](std::string what, std::string id, std::string text) {
    report.problems.push_back(FsckProblem{std::move(what), std::move(id), std::move(text)});
  };
  for (const auto& [name, id] : snapshot.refs) {
    if (snapshot.commits.count(id) == 0) problem("ref", name, "points at missing commit " + id);
  }
  std::unordered_set<std::string> manifests_checked;
  for (const auto& [id, row] : snapshot.commits) {
    ++report.commits_checked;
    for (const std::string& parent : row.parents) {
      if (snapshot.commits.count(parent) == 0) problem("commit", id, "parent " + parent + " missing");
    }
  }
  for (const auto& [commit_id, ids] : snapshot.entries) {
    const auto& [manifest, profile] = ids;
    if (snapshot.commits.count(commit_id) == 0) {
      problem("entry", commit_id, "entry of a missing commit");
    }
    if (snapshot.objects.count(manifest) == 0) {
      problem("commit", commit_id, "manifest " + manifest + " missing");
      continue;
    }
    if (!profile.empty() && snapshot.objects.count(profile) == 0) {
      problem("commit", commit_id, "profile " + profile + " missing");
    }
    if (!manifests_checked.insert(manifest).second) continue;
    auto named = ManifestObjects(objects, manifest);
    if (!named.ok()) {
      problem("object", manifest, named.status().message());
      continue;
    }
    for (const auto& [what, id] : *named) {
      if (snapshot.objects.count(id) == 0) {
        problem("commit", commit_id,
                std::string(what) + " " + id + " of manifest " + manifest + " missing");
      }
    }
  }

  // Every recorded object: its base is recorded, its file decodes, and its bytes hash to its id.
  std::vector<std::string> ids;
  ids.reserve(snapshot.objects.size());
  for (const auto& [id, row] : snapshot.objects) {
    if (row.base && snapshot.objects.count(*row.base) == 0) {
      problem("object", id, "delta base " + *row.base + " missing");
    }
    ids.push_back(id);
  }
  std::mutex mutex;  // guards report.problems from the workers
  std::atomic<uint64_t> done{0};
  std::vector<std::future<void>> results;
  results.reserve(ids.size());
  const size_t window = static_cast<size_t>(pool.size()) * 2;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (results.size() >= window) {
      results[results.size() - window].wait();
      if (progress) progress(done.load(), ids.size());
    }
    auto promise = std::make_shared<std::promise<void>>();
    results.push_back(promise->get_future());
    const std::string& hex = ids[i];
    pool.Submit([&, promise, hex] {
      Digest id;
      Status status = Digest::FromHex(hex, &id) ? objects.Verify(id)
                                                : Internal("malformed object id");
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(mutex);
        report.problems.push_back(FsckProblem{"object", hex, status.message()});
      }
      done.fetch_add(1);
      promise->set_value();
    });
  }
  for (auto& result : results) result.wait();
  if (progress) progress(ids.size(), ids.size());
  report.objects_checked = static_cast<int64_t>(ids.size());

  KILN_RETURN_IF_ERROR(objects.ForEach([&](const Digest& id, uint64_t, int64_t) -> Status {
    if (snapshot.objects.count(id.Hex()) == 0) ++report.unreferenced_objects;
    return Status::Ok();
  }));
  return report;
}

}  // namespace kiln::data::internal
