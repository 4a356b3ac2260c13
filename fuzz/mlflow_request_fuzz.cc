// libFuzzer target: arbitrary MLflow requests through kiln server's real routes over a real SQLite
// database (api::App::Dispatch, no socket).
//
// Input layout:
//   byte 0      route: index into kRoutes (method + path)
//   byte 1      flags: bit 0 = send Content-Type: application/json; bit 1 = also parse the
//               payload as a query string (for GET routes it always is)
//   bytes 2..   payload: the body, or the query string for GET routes; for the artifact file
//               route, the text up to the first newline is appended to the path
// The tokens RUNID and EXPID in the payload are replaced by the id of a run and an experiment
// created at start-up, so that the fuzzer reaches code behind a successful lookup.
//
// Oracle: no crash, no sanitizer report, and no 5xx reply except 503 (a busy database): every
// malformed request is the client's mistake and must be a 4xx.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "kiln/api/app.h"
#include "kiln/core/file_util.h"
#include "kiln/data/repository.h"
#include "kiln/core/json.h"
#include "kiln/core/log.h"
#include "kiln/http/message.h"
#include "kiln/tracking/tracking_store.h"

namespace {

struct Route {
  const char* method;
  const char* path;
};

constexpr Route kRoutes[] = {
    {"POST", "/api/2.0/mlflow/experiments/create"},
    {"GET", "/api/2.0/mlflow/experiments/get"},
    {"GET", "/api/2.0/mlflow/experiments/get-by-name"},
    {"GET", "/api/2.0/mlflow/experiments/search"},
    {"POST", "/api/2.0/mlflow/experiments/search"},
    {"POST", "/api/2.0/mlflow/experiments/update"},
    {"POST", "/api/2.0/mlflow/experiments/delete"},
    {"POST", "/api/2.0/mlflow/experiments/restore"},
    {"POST", "/api/2.0/mlflow/experiments/set-experiment-tag"},
    {"POST", "/api/2.0/mlflow/experiments/delete-experiment-tag"},
    {"POST", "/api/2.0/mlflow/runs/create"},
    {"POST", "/api/2.0/mlflow/runs/update"},
    {"POST", "/api/2.0/mlflow/runs/delete"},
    {"POST", "/api/2.0/mlflow/runs/restore"},
    {"GET", "/api/2.0/mlflow/runs/get"},
    {"POST", "/api/2.0/mlflow/runs/log-metric"},
    {"POST", "/api/2.0/mlflow/runs/log-parameter"},
    {"POST", "/api/2.0/mlflow/runs/set-tag"},
    {"POST", "/api/2.0/mlflow/runs/delete-tag"},
    {"POST", "/api/2.0/mlflow/runs/log-batch"},
    {"POST", "/api/2.0/mlflow/runs/search"},
    {"POST", "/api/2.0/mlflow/runs/log-model"},
    {"POST", "/api/2.0/mlflow/runs/log-inputs"},
    {"GET", "/api/2.0/mlflow/metrics/get-history"},
    {"GET", "/api/2.0/mlflow/metrics/get-history-bulk-interval"},
    {"GET", "/api/2.0/mlflow/artifacts/list"},
    {"GET", "/api/2.0/mlflow-artifacts/artifacts"},
    {"GET", "/api/2.0/mlflow-artifacts/artifacts/"},
    {"PUT", "/api/2.0/mlflow-artifacts/artifacts/"},
    {"DELETE", "/api/2.0/mlflow-artifacts/artifacts/"},
    {"GET", "/get-artifact"},
    {"POST", "/api/2.0/mlflow/registered-models/create"},
    {"GET", "/api/2.0/mlflow/registered-models/get"},
    {"GET", "/api/2.0/mlflow/registered-models/search"},
    {"POST", "/api/2.0/mlflow/model-versions/create"},
    {"GET", "/api/2.0/mlflow/model-versions/search"},
    {"POST", "/api/2.0/mlflow/registered-models/alias"},
    {"DELETE", "/api/2.0/mlflow/registered-models/alias"},
    {"GET", "/health"},
    {"GET", "/metrics"},
    // Added later, at the end so that earlier corpus entries keep their routes' meaning.
    {"POST", "/api/2.0/mlflow-artifacts/mpu/create/"},
    {"POST", "/api/2.0/mlflow-artifacts/mpu/complete/"},
    {"POST", "/api/2.0/mlflow-artifacts/mpu/abort/"},
    {"PUT", "/api/2.0/mlflow-artifacts/mpu/parts/"},
    {"GET", "/model-versions/get-artifact"},
    {"POST", "/api/kiln/v1/data/uploads"},
    {"POST", "/api/kiln/v1/data/uploads/"},
    {"POST", "/api/kiln/v1/data/commits"},
    {"GET", "/api/kiln/v1/data/commits/"},
    {"GET", "/api/kiln/v1/data/log"},
    {"POST", "/api/kiln/v1/data/branches"},
    {"DELETE", "/api/kiln/v1/data/branches/"},
    {"POST", "/api/kiln/v1/data/tags"},
    {"GET", "/api/kiln/v1/data/diff"},
    {"POST", "/api/kiln/v1/data/merge"},
    {"POST", "/api/kiln/v1/data/revert"},
    {"GET", "/api/kiln/v1/data/export"},
    {"GET", "/api/kiln/v1/data/files"},
    {"GET", "/api/kiln/v1/data/profile"},
    {"POST", "/api/kiln/v1/data/validate"},
    {"PUT", "/api/kiln/v1/data/rules/"},
};
constexpr size_t kRouteCount = sizeof(kRoutes) / sizeof(kRoutes[0]);

// The server under test, built once per process; the temp folder goes when the process exits.
struct Fixture {
  std::string folder;
  std::unique_ptr<kiln::api::App> app;
  std::string run_id;
  std::string experiment_id;

  ~Fixture() {
    app.reset();
    if (!folder.empty()) (void)kiln::RemoveAll(folder);
  }
};

Fixture& TheFixture() {
  static Fixture instance;
  return instance;
}

void ReplaceAll(std::string& text, std::string_view token, const std::string& value) {
  for (size_t at = text.find(token); at != std::string::npos; at = text.find(token, at + value.size())) {
    text.replace(at, token.size(), value);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  kiln::SetLogLevel(kiln::LogLevel::kOff);
  // Every acknowledged write fsyncs; on a RAM-backed folder that costs nothing, so the fuzzer
  // runs several times faster there.
  char shm_template[] = "/dev/shm/kiln-mlflow-fuzz-XXXXXX";
  char tmp_template[] = "/tmp/kiln-mlflow-fuzz-XXXXXX";
  char* folder_template = kiln::IsDirectory("/dev/shm") ? shm_template : tmp_template;
  if (mkdtemp(folder_template) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  Fixture* fixture = &TheFixture();
  fixture->folder = folder_template;
  kiln::api::ServerConfig config;
  config.store_uri = fixture->folder + "/kiln.db";
  config.artifact_root = fixture->folder + "/artifacts";
  auto app = kiln::api::App::Open(config);
  if (!app.ok()) {
    std::fprintf(stderr, "App::Open: %s\n", app.status().ToString().c_str());
    std::abort();
  }
  fixture->app = std::move(*app);
  auto experiment_id = fixture->app->tracking().CreateExperiment("fuzz", "", {});
  if (!experiment_id.ok()) std::abort();
  fixture->experiment_id = *experiment_id;
  kiln::tracking::CreateRunRequest create;
  create.experiment_id = fixture->experiment_id;
  auto run = fixture->app->tracking().CreateRun(create);
  if (!run.ok()) std::abort();
  fixture->run_id = run->info.run_id;
  // A data commit on main (table "t", two versions), so data routes get past their lookups.
  const std::string csv = fixture->folder + "/t.csv";
  for (const char* contents : {"id,x,c\n1,1.5,a\n2,2.5,b\n", "id,x,c\n1,1.5,a\n2,3.5,b\n3,4,c\n"}) {
    if (!kiln::WriteFileAtomic(csv, contents).ok()) std::abort();
    kiln::data::CommitRequest commit;
    commit.message = "fuzz";
    commit.inputs.push_back(kiln::data::CommitInput{csv, std::nullopt, std::string("id")});
    if (!fixture->app->data().Commit(commit).ok()) std::abort();
  }
  // Stop the server's worker threads at exit before OpenSSL's own exit handler (registered
  // later than this fixture, when the commit above first hashed, so it would run first) drops
  // the per-thread state those threads still hold, which LeakSanitizer would then report.
  std::atexit([] { TheFixture().app.reset(); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  Fixture* fixture = &TheFixture();
  const Route& route = kRoutes[data[0] % kRouteCount];
  const uint8_t flags = data[1];
  std::string payload(reinterpret_cast<const char*>(data + 2), size - 2);
  ReplaceAll(payload, "RUNID", fixture->run_id);
  ReplaceAll(payload, "EXPID", fixture->experiment_id);

  kiln::http::Request request;
  request.method = route.method;
  request.path = route.path;
  std::string_view path_view(route.path);
  if (!path_view.empty() && path_view.back() == '/') {
    size_t newline = payload.find('\n');
    std::string suffix = payload.substr(0, newline);
    payload = newline == std::string::npos ? std::string() : payload.substr(newline + 1);
    request.path += kiln::http::PercentDecode(suffix, false);
  }
  request.target = request.path;
  if (request.method == "GET" || (flags & 2) != 0) {
    request.query = kiln::http::ParseQuery(payload);
    request.target += "?" + payload;
  }
  if (request.method != "GET") request.body = payload;
  if ((flags & 1) != 0) request.headers.emplace_back("Content-Type", "application/json");

  kiln::http::Response response;
  fixture->app->Dispatch(request, response);
  if (response.status >= 500 && response.status != 503) {
    std::fprintf(stderr, "%s %s -> %d %s\n", request.method.c_str(), request.path.c_str(),
                 response.status, response.body.c_str());
    std::abort();
  }
  if (response.status < 100 || response.status > 599) std::abort();
  return 0;
}
