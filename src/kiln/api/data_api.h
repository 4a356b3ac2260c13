// kiln's REST API for versioned datasets (the data layer's Repository over HTTP), under
// /api/kiln/v1/data. JSON in and out; replies are the data layer's ToJson() shapes; errors are
// MLflow's error shape from api/errors.h plus "kiln_code" (StatusCodeName), so a client can tell
// ValidationFailed (a commit refused by branch rules) from InvalidArgument.
//
//   POST   uploads                  raw body = the file's bytes (or its first part)
//                                   -> {"upload_id", "size"}
//   POST   uploads/{id}?offset=N    appends the next part; N must be the upload's size so far
//                                   (else 409) -> {"upload_id", "size"}
//   POST   commits                  {"branch", "message", "author",
//                                    "inputs": [{"upload_id", "file_name", "table", "key"}],
//                                    "remove": [NAME...]} -> CommitResult
//   GET    commits/{ref}            -> CommitInfo
//   GET    log?ref=&limit=          -> {"commits": [CommitInfo...]} (ref default main)
//   GET    refs                     -> {"refs": [Ref...]}
//   POST   branches {"name","from"} ; DELETE branches/{name}      -> {}
//   POST   tags {"name","ref"}      ; DELETE tags/{name}          -> {}
//   GET    diff?a=&b=&max_rows=     -> {"a": id, "b": id, "tables": [TableDiff...]}
//   POST   merge {"source","into","strategy": ""|"ours"|"theirs","message","author"}
//                                   -> MergeResult; with conflicts a 409 whose body is the
//                                      MergeResult plus error_code/kiln_code/message
//   POST   revert {"ref","branch","author"} -> CommitInfo
//   GET    export?ref=&table=&format=csv|tsv|jsonl -> text/csv, text/tab-separated-values or
//                                      application/x-ndjson
//   GET    files?ref=&name=         -> the file's exact bytes (application/octet-stream)
//   GET    profile?ref=&table=      -> the stored profile
//   POST   validate {"ref", "rules": YAML text (optional: else the branch's), "rules_name"}
//                                   -> {"ref": id, "violations": [Violation...]} (200 either way)
//   GET    rules/{branch} -> {"branch", "rules"?} ; PUT rules/{branch} {"rules": YAML} ;
//   DELETE rules/{branch}
//   POST   gc {"retention_ms", "dry_run"} -> GcReport
//   GET    fsck                     -> FsckReport
//
// Uploads: the server's request body limit (http::ServerOptions::max_body_bytes, 64 MB by
// default, one limit for every route) bounds one request, not a file: clients send large files
// in parts (cli/data_client.h sends 32 MB parts). Uploads live in `uploads_dir` as files named by
// their id; a commit consumes its uploads, and uploads older than an hour are removed (checked on
// every new upload and by gc). Replies are built in memory (the HTTP framework has no streaming
// responses), so export and files hold one table's bytes while they answer.
//
// Thread safety: handlers run concurrently on the server's threads; the Repository is shared.
#pragma once

#include <cstdint>
#include <string>

#include "kiln/http/router.h"

namespace kiln::data {
class Repository;
}

namespace kiln::api {

inline constexpr char kDataApiPrefix[] = "/api/kiln/v1/data";

struct DataApiOptions {
  std::string uploads_dir;                  // created if missing
  int64_t upload_ttl_ms = 3600LL * 1000;    // unfinished uploads older than this are removed
};

// Adds every route above. `repository` must outlive the router.
void RegisterDataRoutes(http::Router& router, data::Repository& repository,
                        const DataApiOptions& options);

}  // namespace kiln::api
