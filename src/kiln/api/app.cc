#include "kiln/api/app.h"

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "kiln/api/artifacts.h"
#include "kiln/api/data_api.h"
#include "kiln/api/mlflow_routes.h"
#include "kiln/core/file_util.h"
#include "kiln/core/json.h"
#include "kiln/core/version.h"
#include "kiln/data/repository.h"
#include "kiln/api/mlflow_logged_models.h"
#include "kiln/registry/registry_store.h"
#include "kiln/tracking/logged_model_store.h"
#include "kiln/store/database.h"
#include "kiln/tracking/tracking_store.h"

namespace kiln::api {
namespace {

// Routes served by prefix, whose paths carry ids or file paths (unbounded label values).
constexpr std::string_view kPrefixRoutes[] = {
    "/api/2.0/mlflow-artifacts/artifacts/",
    "/ajax-api/2.0/mlflow-artifacts/artifacts/",
    "/api/2.0/mlflow-artifacts/mpu/",
    "/ajax-api/2.0/mlflow-artifacts/mpu/",
    "/api/2.0/mlflow/logged-models/",
    "/ajax-api/2.0/mlflow/logged-models/",
    "/api/kiln/v1/data/commits/",
    "/api/kiln/v1/data/uploads/",
    "/api/kiln/v1/data/branches/",
    "/api/kiln/v1/data/tags/",
    "/api/kiln/v1/data/rules/",
};

// Upper bounds of the latency histogram, in seconds: 0.5 ms (a cached read) to 10 s.
constexpr std::array<double, 14> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                    0.1,    0.25,  0.5,    1,     2.5,   5,    10};

// Set by the not-found handler, read by the dispatcher that called the router on the same thread
// (Router::Dispatch is synchronous), so unmatched paths share one metrics label.
thread_local bool t_route_unmatched = false;

std::string_view MethodLabel(std::string_view method) {
  for (std::string_view known : {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}) {
    if (method == known) return known;
  }
  return "other";
}

// The route a request matched, as a bounded label: exact routes by their path, prefix routes by
// their prefix (paths below it are unbounded), anything unmatched as "unmatched".
std::string RouteLabel(const std::string& path, bool unmatched) {
  if (unmatched) return "unmatched";
  for (std::string_view prefix : kPrefixRoutes) {
    if (path.compare(0, prefix.size(), prefix) == 0) return std::string(prefix) + "{path}";
  }
  return path;
}

void AppendLabelValue(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
}

void AppendNumber(std::string& out, double value) {
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

void AppendNumber(std::string& out, uint64_t value) {
  char buffer[24];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

// Request counts and latencies by route, rendered in Prometheus' text format 0.0.4.
class RequestMetrics {
 public:
  void Record(std::string_view method, const std::string& route, int status, double seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counts_[{std::string(method), route, status}];
    Histogram& histogram = latencies_[{std::string(method), route}];
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      if (seconds <= kLatencyBuckets[i]) ++histogram.buckets[i];
    }
    ++histogram.count;
    histogram.sum += seconds;
  }

  std::atomic<int64_t>& in_flight() { return in_flight_; }

  std::string Render() const {
    std::string out;
    out += "# HELP kiln_build_info The running kiln's version.\n";
    out += "# TYPE kiln_build_info gauge\n";
    out += "kiln_build_info{version=\"";
    AppendLabelValue(out, KILN_VERSION);
    out += "\"} 1\n";
    out += "# HELP kiln_http_requests_in_flight HTTP requests being handled now.\n";
    out += "# TYPE kiln_http_requests_in_flight gauge\n";
    out += "kiln_http_requests_in_flight ";
    out += std::to_string(in_flight_.load());
    out += "\n";

    std::lock_guard<std::mutex> lock(mutex_);
    out += "# HELP kiln_http_requests_total HTTP requests handled, by method, route and status.\n";
    out += "# TYPE kiln_http_requests_total counter\n";
    for (const auto& [key, count] : counts_) {
      const auto& [method, route, status] = key;
      out += "kiln_http_requests_total{method=\"";
      AppendLabelValue(out, method);
      out += "\",route=\"";
      AppendLabelValue(out, route);
      out += "\",status=\"";
      out += std::to_string(status);
      out += "\"} ";
      AppendNumber(out, count);
      out += "\n";
    }
    out += "# HELP kiln_http_request_duration_seconds Time to handle an HTTP request, by method and "
           "route.\n";
    out += "# TYPE kiln_http_request_duration_seconds histogram\n";
    for (const auto& [key, histogram] : latencies_) {
      std::string labels = "method=\"";
      AppendLabelValue(labels, key.first);
      labels += "\",route=\"";
      AppendLabelValue(labels, key.second);
      labels += "\"";
      for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
        out += "kiln_http_request_duration_seconds_bucket{" + labels + ",le=\"";
        AppendNumber(out, kLatencyBuckets[i]);
        out += "\"} ";
        AppendNumber(out, histogram.buckets[i]);
        out += "\n";
      }
      out += "kiln_http_request_duration_seconds_bucket{" + labels + ",le=\"+Inf\"} ";
      AppendNumber(out, histogram.count);
      out += "\nkiln_http_request_duration_seconds_sum{" + labels + "} ";
      AppendNumber(out, histogram.sum);
      out += "\nkiln_http_request_duration_seconds_count{" + labels + "} ";
      AppendNumber(out, histogram.count);
      out += "\n";
    }
    return out;
  }

 private:
  struct Histogram {
    std::array<uint64_t, kLatencyBuckets.size()> buckets{};  // cumulative: seconds <= bound
    uint64_t count = 0;
    double sum = 0;
  };

  mutable std::mutex mutex_;  // guards counts_ and latencies_
  std::map<std::tuple<std::string, std::string, int>, uint64_t> counts_;
  std::map<std::pair<std::string, std::string>, Histogram> latencies_;
  std::atomic<int64_t> in_flight_{0};
};

void EndpointNotFound(const http::Request& request, http::Response& response) {
  t_route_unmatched = true;
  Json body;
  body["error_code"] = "ENDPOINT_NOT_FOUND";
  body["message"] = response.status == 405
                        ? "Method " + request.method + " is not allowed for " + request.path
                        : "No endpoint found for " + request.method + " " + request.path;
  response.content_type = "application/json";
  response.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// The folder `name` beside `folder` ("/p/.kiln/artifacts" -> "/p/.kiln/objects").
std::string SiblingFolder(const std::string& folder, const std::string& name) {
  std::filesystem::path path = std::filesystem::path(folder).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();  // a trailing slash
  return (path.parent_path() / name).string();
}

void WriteText(http::Response& response, std::string body) {
  response.status = 200;
  response.content_type = "text/plain; charset=utf-8";
  response.body = std::move(body);
}

}  // namespace

struct App::State {
  ServerConfig config;
  Clock* clock = nullptr;
  // Declared in dependency order: members are destroyed in reverse, so the server stops before
  // the stores and the database it uses go away.
  std::unique_ptr<store::Database> database;
  std::unique_ptr<tracking::TrackingStore> tracking;
  std::unique_ptr<registry::RegistryStore> registry;
  std::unique_ptr<tracking::LoggedModelStore> logged_models;
  std::unique_ptr<data::Repository> data;
  http::Router routes;
  RequestMetrics metrics;
  std::unique_ptr<http::Server> server;

  // Every request passes here: dispatch to `routes`, then count it.
  void Handle(const http::Request& request, http::Response& response) {
    struct InFlight {
      std::atomic<int64_t>& gauge;
      explicit InFlight(std::atomic<int64_t>& g) : gauge(g) { ++gauge; }
      ~InFlight() { --gauge; }
    } in_flight(metrics.in_flight());
    auto start = std::chrono::steady_clock::now();
    http::Response routed;
    t_route_unmatched = false;
    routes.Dispatch(request, routed);
    bool unmatched = t_route_unmatched;
    // A streamed reply (Response::Stream) is timed until its handler returns, not its transfer.
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics.Record(MethodLabel(request.method), RouteLabel(request.path, unmatched), routed.status,
                   seconds);
    response = std::move(routed);
  }
};

App::App(std::unique_ptr<State> state) : state_(std::move(state)) {}

App::~App() {
  if (state_ && state_->server) {
    state_->server->Stop();
    state_->server->Wait();
  }
}

Result<std::unique_ptr<App>> App::Open(const ServerConfig& config, Clock* clock) {
  if (config.artifact_root.empty()) {
    return InvalidArgument("kiln server needs an artifact root folder (--artifacts-destination)");
  }
  auto state = std::make_unique<State>();
  state->config = config;
  state->clock = clock;
  if (state->config.http.threads == 0) state->config.http.threads = kDefaultThreads;
  KILN_RETURN_IF_ERROR(MakeDirs(config.artifact_root));
  store::Options database_options;
  database_options.background_checkpoint = true;  // a long-lived process: no request checkpoints
  database_options.writer_cache_kib = 64 << 10;   // a 100,000-run store's indexes stay cached
  database_options.mmap_bytes = int64_t{1} << 30;  // readers share the kernel's page cache
  KILN_ASSIGN_OR_RETURN(state->database, store::Database::Open(config.store_uri, database_options));
  KILN_ASSIGN_OR_RETURN(state->tracking, tracking::TrackingStore::Open(state->database.get(), clock));
  KILN_ASSIGN_OR_RETURN(state->registry, registry::RegistryStore::Open(state->database.get(), clock));
  state->logged_models =
      std::make_unique<tracking::LoggedModelStore>(state->database.get(), clock);
  std::string objects_root =
      config.objects_root.empty() ? SiblingFolder(config.artifact_root, "objects") : config.objects_root;
  KILN_ASSIGN_OR_RETURN(state->data, data::Repository::Open(state->database.get(), objects_root));

  http::Router& routes = state->routes;
  RegisterTrackingRoutes(routes, *state->tracking);
  RegisterRegistryRoutes(routes, *state->registry);
  RegisterArtifactRoutes(routes, *state->tracking, config.artifact_root);
  RegisterModelVersionArtifactRoutes(routes, *state->registry, config.artifact_root);
  RegisterLoggedModelRoutes(routes, *state->logged_models, config.artifact_root);
  DataApiOptions data_options;
  data_options.uploads_dir = SiblingFolder(objects_root, "uploads");
  RegisterDataRoutes(routes, *state->data, data_options);
  routes.Add("GET", "/health",
             [](const http::Request&, http::Response& response) { WriteText(response, "OK"); });
  routes.Add("GET", "/version", [](const http::Request&, http::Response& response) {
    WriteText(response, KILN_VERSION);
  });
  State* raw_state = state.get();
  routes.Add("GET", "/metrics", [raw_state](const http::Request&, http::Response& response) {
    WriteText(response, raw_state->metrics.Render());
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  });
  routes.SetNotFound(EndpointNotFound);
  return std::unique_ptr<App>(new App(std::move(state)));
}

Status App::Start() {
  if (state_->server) return FailedPrecondition("the server is already started");
  // The server's router has no routes of its own: every request reaches Handle(), which
  // dispatches to the real routes and records metrics with the matched route's label.
  http::Router outer;
  State* state = state_.get();
  outer.SetNotFound([state](const http::Request& request, http::Response& response) {
    state->Handle(request, response);
  });
  KILN_ASSIGN_OR_RETURN(state_->server, http::Server::Start(state_->config.http, std::move(outer)));
  return Status::Ok();
}

int App::port() const { return state_->server ? state_->server->port() : 0; }

void App::Stop() {
  if (state_->server) state_->server->Stop();
}

void App::Wait() {
  if (state_->server) state_->server->Wait();
}

void App::Dispatch(const http::Request& request, http::Response& response) const {
  state_->Handle(request, response);
  http::CollectBody(response);  // no socket to stream to
}

tracking::TrackingStore& App::tracking() { return *state_->tracking; }
registry::RegistryStore& App::registry() { return *state_->registry; }
store::Database& App::database() { return *state_->database; }
data::Repository& App::data() { return *state_->data; }

}  // namespace kiln::api
