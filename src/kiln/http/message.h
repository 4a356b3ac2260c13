// HTTP request and response values, independent of the server's implementation (Boost.Beast
// stays inside server.cc so that only one translation unit pays its compile time).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::http {

struct Request {
  std::string method;  // "GET", "POST", ... as sent
  std::string target;  // raw target: path plus query
  std::string path;    // percent-decoded path, no query
  // Query parameters in order, percent-decoded ('+' is a space). Repeated keys repeat.
  std::vector<std::pair<std::string, std::string>> query;
  // Header names as sent; look them up with Header(), which ignores case.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_address;

  // The first value of a header, case-insensitively, or "" when absent.
  std::string_view Header(std::string_view name) const;
  // The first value of a query parameter.
  std::optional<std::string> QueryParam(std::string_view name) const;
  // All values of a repeated query parameter; also collects MLflow 2.x's `name[0]=v` form.
  std::vector<std::string> QueryParams(std::string_view name) const;
};

struct Response;

// Where a streamed reply's producer writes its body (see Response::Stream).
class BodyWriter {
 public:
  // Appends `bytes` to the body. The server buffers a little (about kStreamPieceBytes) and
  // blocks here while earlier bytes still wait for the client: memory stays bounded whatever the
  // body's size or the client's speed. Fails with Unavailable when the client went away, the
  // connection timed out or the server closed it at shutdown, and with Internal when the
  // producer writes past the length it announced: the producer should then return.
  virtual Status Write(std::string_view bytes) = 0;

 protected:
  ~BodyWriter() = default;
};

// Produces a streamed body by calling writer.Write() piece by piece; returns Ok when the body is
// complete. It runs after the handler has returned, on a thread of the server's own (not an I/O
// thread), so it may read files or the database at leisure; it must be bounded, like a handler,
// and it must own (or share) everything it uses: the request is gone by then.
using BodyProducer = std::function<Status(BodyWriter& writer)>;

// Turns a producer's early failure into the reply (see Response::Stream).
using StreamErrorReply = std::function<void(const Status& status, Response& response)>;

// The size of the pieces a streamed body is sent in, and so the server's buffering per stream.
inline constexpr size_t kStreamPieceBytes = 256 * 1024;

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra headers. The server writes Content-Length and Connection itself (a handler's
  // "Connection: close" is honoured) and drops a Content-Type here when content_type is set.
  std::vector<std::pair<std::string, std::string>> headers;

  // Set by Stream(): the body is produced after the handler returns, instead of `body`.
  BodyProducer producer;
  std::optional<uint64_t> stream_length;
  StreamErrorReply stream_error;

  void SetHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }

  // Makes this a streamed reply: `producer` writes the body piece by piece (`body` is ignored).
  //  - `length` known: sent as Content-Length, and the producer must write exactly that many
  //    bytes; unknown: chunked transfer encoding (an HTTP/1.0 client gets the body until close).
  //  - The head goes out with the first piece. When the producer fails before anything was sent,
  //    `on_error` turns its Status into the reply (without it: 500 INTERNAL_ERROR); once bytes
  //    are out, a failure cuts the connection, so the client sees a truncated body, never a
  //    complete-looking wrong one. The failure is logged.
  //  - HEAD requests and 204/304 replies never run the producer.
  void Stream(std::optional<uint64_t> length, BodyProducer body_producer,
              StreamErrorReply on_error = nullptr) {
    stream_length = length;
    producer = std::move(body_producer);
    stream_error = std::move(on_error);
    body.clear();
  }
  bool streamed() const { return static_cast<bool>(producer); }
};

// For callers without a socket (tests, fuzzers): runs a streamed reply's producer into `body`
// and turns the reply into an ordinary one (an early failure goes through its `stream_error`,
// as the server would send it). Does nothing for an ordinary reply.
void CollectBody(Response& response);

// A handler fills `response`. It runs on one of the server's threads and may block (database
// work); it must not throw (the server turns an escaped exception into a 500 and logs it).
using Handler = std::function<void(const Request& request, Response& response)>;

// Splits "a=1&b=x%20y" into decoded pairs.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);
// Percent-decoding; `plus_is_space` for query strings. Invalid escapes are kept literally.
std::string PercentDecode(std::string_view text, bool plus_is_space);
std::string PercentEncode(std::string_view text);

}  // namespace kiln::http
