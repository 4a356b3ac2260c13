// The HTTP/1.1 server that `kiln server` and `kiln serve` run on (Boost.Beast inside server.cc).
//
// Keep-alive, TCP_NODELAY, a request size limit (413), read and idle timeouts (408 / close),
// an access log line per request (method, path, status, bytes, microseconds; never headers or
// bodies, which may hold secrets), and graceful shutdown: Stop() stops accepting, lets requests in
// flight finish (up to a drain timeout) and then closes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "kiln/core/status.h"
#include "kiln/http/router.h"

namespace kiln::http {

struct ServerOptions {
  std::string host = "127.0.0.1";  // never 0.0.0.0 unless the user says so
  int port = 5000;                 // 0 picks a free port; see Server::port()
  // Threads that run I/O and handlers. 0 means one per core. Handlers that block on a
  // database want more than one per core.
  int threads = 0;
  size_t max_body_bytes = 64 * 1024 * 1024;
  int header_timeout_ms = 30000;   // time to receive a whole request once it has started
  int idle_timeout_ms = 120000;    // keep-alive connection with no request
  int drain_timeout_ms = 10000;    // Stop() waits this long for requests in flight
  bool access_log = true;
  std::string server_name = "kiln";
  // Called after every request with its method, route path, status and duration, for metrics.
  std::function<void(const Request&, int status, int64_t micros)> on_request;
};

class Server {
 public:
  virtual ~Server() = default;

  // Binds, listens and starts the threads. Fails with IoError naming the address when the port
  // is taken.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options, Router router);

  // The bound port (useful with port 0).
  virtual int port() const = 0;
  // Graceful shutdown; idempotent; safe from any thread including a signal-watching one.
  virtual void Stop() = 0;
  // Blocks until the server has stopped.
  virtual void Wait() = 0;
};

// Blocks until SIGINT or SIGTERM arrives, then returns (used by the CLI's long-running commands).
void WaitForShutdownSignal();

}  // namespace kiln::http
