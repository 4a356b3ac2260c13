// The Boost.Beast server. Beast and Asio appear in this file only (compile time).
//
// Threading: `threads` workers, each one thread running an io_context of its own (concurrency
// hint 1), plus one thread whose io_context holds only the acceptor. The acceptor hands every
// accepted socket to a worker (the one with the fewest connections, ties broken round-robin,
// skipping a worker whose handler has been running for a while), and the connection (Session)
// then lives its whole life on that worker's thread: reads, the handler call, writes and timers
// never leave it, so no request pays for a hand-off between threads (about 0.1 ms each on a
// small machine when all threads shared one io_context). A worker's thread runs its connections
// one handler at a time, so they never overlap and need no strand.
//
// The price: a handler runs synchronously on its worker thread and may block (database work);
// while it does, the other connections of that worker wait, though the other workers and the
// acceptor carry on. With a handful of workers and handlers bounded to milliseconds that is fine
// for kiln; a handler must never wait for another request to the same server. Shutdown only
// needs each blocked handler to return eventually (Stop() waits for it, as before).
//
// Per connection, one request at a time (pipelined requests queue in the read buffer):
//   idle    waiting for the first byte of a request (idle_timeout_ms; Stop() closes it here)
//   reading the request has started; the whole request must arrive within header_timeout_ms
//   handling the router runs
//   writing the response, as one gather write of head + body
//   streaming a streamed reply (Response::Stream): its producer runs on a thread of its own and
//           hands pieces over to the connection's worker thread, which writes them one at a time
//           (StreamState)
// Beast's parser is fed from the connection's flat_buffer directly, so a request that arrives in
// one segment is parsed and handled with no extra hop through the io_context.

#include <utility>  // g++ 12 with C++20 needs this before the Boost.Asio headers

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/system_error.hpp>

#include "kiln/core/log.h"
#include "kiln/http/server.h"

namespace kiln::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMaxHeaderBytes = 64 * 1024;  // request line plus headers; more is a 431
constexpr size_t kReadChunkBytes = 16 * 1024;
constexpr size_t kKeepBufferBytes = 64 * 1024;  // a connection's read buffer shrinks past this
// After an error response that ends the connection, the client may still be sending (a body we
// refused): read and discard for a while so that closing does not reset the connection before
// the client has read our response.
constexpr auto kLingerTime = std::chrono::milliseconds(500);
constexpr size_t kLingerMaxBytes = 8 * 1024 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool HasLineBreak(std::string_view text) { return text.find_first_of("\r\n") != text.npos; }

void AppendNumber(std::string& out, int64_t value) {
  char digits[24];
  auto result = std::to_chars(digits, digits + sizeof(digits), value);
  out.append(digits, result.ptr);
}

// "Sun, 06 Nov 1994 08:49:37 GMT", formatted at most once a second per thread.
std::string_view HttpDate() {
  thread_local std::time_t cached_second = -1;
  thread_local char text[40];
  thread_local size_t length = 0;
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm utc{};
    gmtime_r(&now, &utc);
    length = std::strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &utc);
    cached_second = now;
  }
  return {text, length};
}

std::string ErrorJson(std::string_view error_code, std::string_view message) {
  // Callers pass constant ASCII text without quotes or backslashes.
  std::string body = "{\"error_code\":\"";
  body.append(error_code).append("\",\"message\":\"").append(message).append("\"}");
  return body;
}

std::string FormatAddress(const std::string& host, int port) {
  bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

class ServerImpl;

// One thread running one io_context; the connections handed to it live on it.
struct Worker {
  Worker() : ioc(1), work(net::make_work_guard(ioc)) {}

  // Read by the acceptor to place new connections. Declared before `ioc`: destroying `ioc`
  // destroys the last Sessions, whose destructors still count themselves out.
  std::atomic<int> connections{0};
  // SteadyClock ticks when the handler running now started; 0 while none runs.
  std::atomic<int64_t> handler_started{0};
  net::io_context ioc;
  // Keeps run() going while the worker has no connection; reset at shutdown.
  net::executor_work_guard<net::io_context::executor_type> work;
  // Never armed: making a timer sets up the io_context's reactor (an epoll, an eventfd and a
  // timerfd) now, not at the worker's first connection, so every descriptor the server keeps is
  // open once it listens (a later one is a leak).
  net::steady_timer reactor_ready{ioc};
  std::thread thread;
};

// The hand-over between a streamed reply's producer thread and its connection's worker thread.
// The producer fills a piece of its own; when it is full it waits until the worker has written the
// previous one, swaps it into `piece` and posts Session::SendPiece. So a stream holds at most two
// pieces (about 2 * kStreamPieceBytes) however large its body and however slow its client.
struct StreamState {
  std::mutex mutex;  // guards the fields below
  std::condition_variable piece_written;
  std::string piece;    // owned by the worker while `busy`, by the producer otherwise
  bool busy = false;    // `piece` is posted to the worker or being written
  bool last = false;    // `piece` ends the body, and `result` is the producer's result
  bool failed = false;  // the connection failed or was closed: the producer should stop
  Status result;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `socket` belongs to `worker`'s io_context; the Session counts itself in its connections.
  Session(ServerImpl* server, Worker* worker, tcp::socket socket, uint64_t id);
  ~Session();

  void Start();
  // Stop(): close the connection if it waits for a request; one in progress finishes.
  void CloseIfIdle();
  // After the drain timeout: close whatever state the connection is in.
  void ForceClose() { Close(); }
  // At shutdown, once no I/O thread runs: wakes a producer waiting for a piece to be written.
  void AbortStream();
  // Writes the piece the producer handed over (on the connection's worker thread).
  void SendPiece();
  // Runs `method` on this connection's worker thread (safe from any thread).
  void Post(void (Session::*method)()) {
    net::post(stream_.get_executor(), [self = shared_from_this(), method] { ((*self).*method)(); });
  }

 private:
  enum class Phase { kIdle, kReading, kHandling, kWriting, kStreaming, kClosing, kClosed };
  // How the head frames the body.
  enum class Framing { kLength, kChunked, kUntilClose };

  void ReadRequest();
  void ReadMore();
  void OnRead(beast::error_code ec, size_t bytes);
  // Feeds buffered bytes to the parser and acts on the result: handle, read more, or fail.
  void Advance();
  void Handle();
  void FillRequest();
  void SendError(int status, std::string_view error_code, std::string_view message);
  void WriteResponse();
  // Fills head_ for response_; `length` is the Content-Length with Framing::kLength.
  void BuildHead(Framing framing, uint64_t length);
  void StartStream();
  void ResetResponse();
  // Sets close_after_write_ when the handler asked for it or the server is stopping.
  void DecideClose();
  std::chrono::milliseconds WriteTimeout() const;
  // Access log of a finished (or cut) stream; idempotent.
  void EndStream();
  void OnPieceWritten(beast::error_code ec, size_t bytes);
  // The producer failed: an error reply when nothing was sent yet, else cut the connection.
  void FailStream(const Status& result);
  void OnWrite(beast::error_code ec, size_t bytes);
  void Finish(size_t bytes);
  void Linger();
  void Close();

  ServerImpl* server_;
  Worker* const worker_;
  const uint64_t id_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Phase phase_ = Phase::kIdle;
  bool continue_sent_ = false;
  bool close_after_write_ = false;
  bool is_head_ = false;
  size_t lingered_bytes_ = 0;
  SteadyClock::time_point started_;
  std::string remote_address_;
  // Reused across the connection's requests so that their strings keep their capacity.
  Request request_;
  Response response_;
  std::string head_;
  // The streamed reply in progress, if any.
  std::shared_ptr<StreamState> body_stream_;
  Framing stream_framing_ = Framing::kLength;
  bool head_sent_ = false;
  size_t stream_bytes_ = 0;  // written so far, head included (access log)
  std::string chunk_prefix_;
};

class ServerImpl final : public Server {
 public:
  ServerImpl(ServerOptions options, Router router)
      : options_(std::move(options)),
        router_(std::move(router)),
        thread_count_(options_.threads > 0
                          ? options_.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
        accept_ioc_(1),
        acceptor_(accept_ioc_),
        accept_retry_timer_(accept_ioc_) {
    workers_.reserve(static_cast<size_t>(thread_count_));
    for (int i = 0; i < thread_count_; ++i) workers_.push_back(std::make_unique<Worker>());
  }

  ~ServerImpl() override {
    Stop();
    if (shutdown_thread_.joinable()) shutdown_thread_.join();
  }

  Status Listen();
  void StartThreads();

  int port() const override { return port_; }
  void Stop() override;
  void Wait() override;

  const ServerOptions& options() const { return options_; }
  const Router& router() const { return router_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void Register(uint64_t id, const std::shared_ptr<Session>& session);
  void Unregister(uint64_t id);
  // Runs `work` (a streamed reply's producer) on a thread of its own, joined at shutdown.
  // Throws std::system_error when no thread can be made.
  void RunOnProducerThread(std::function<void()> work);

 private:
  // Waits for a connection to arrive on the listening socket.
  void Accept();
  void OnAcceptable(beast::error_code ec);
  // Hands an accepted socket (made on `worker`'s io_context) to a new Session on that worker.
  void StartSession(Worker& worker, tcp::socket socket);
  // The worker for the next connection (acceptor thread only).
  Worker& PickWorker();
  void Shutdown();
  std::vector<std::shared_ptr<Session>> LiveSessions();
  bool OnWorkerThread() const;

  const ServerOptions options_;
  const Router router_;
  const int thread_count_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> next_session_id_{1};

  std::mutex sessions_mutex_;  // guards sessions_
  std::condition_variable sessions_empty_;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions_;

  std::mutex state_mutex_;  // guards shutdown_started_, stopped_, shutdown_thread_
  std::condition_variable stopped_cv_;
  bool shutdown_started_ = false;
  bool stopped_ = false;
  std::thread shutdown_thread_;
  std::thread acceptor_thread_;

  struct ProducerThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::mutex producers_mutex_;  // guards producers_
  std::vector<ProducerThread> producers_;

  // Declared after everything a Session touches: destroying a worker's io_context destroys its
  // pending handlers and with them its last Sessions, whose destructors still use
  // sessions_mutex_ and sessions_. A Session and every handler holding it belong to one worker.
  std::vector<std::unique_ptr<Worker>> workers_;
  size_t next_worker_ = 0;  // acceptor thread only

  // Only the listening socket and its retry timer live here; accepted sockets are made on their
  // workers' io_contexts (ServerImpl::OnAcceptable).
  net::io_context accept_ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer accept_retry_timer_;
};

thread_local const ServerImpl* tl_worker_of = nullptr;

// ---------------------------------------------------------------------------------------------
// Session

Session::Session(ServerImpl* server, Worker* worker, tcp::socket socket, uint64_t id)
    : server_(server), worker_(worker), id_(id), stream_(std::move(socket)) {
  worker_->connections.fetch_add(1, std::memory_order_relaxed);
  beast::error_code ec;
  tcp::endpoint remote = stream_.socket().remote_endpoint(ec);
  if (!ec) remote_address_ = remote.address().to_string() + ":" + std::to_string(remote.port());
  head_.reserve(512);
}

Session::~Session() {
  worker_->connections.fetch_sub(1, std::memory_order_relaxed);
  server_->Unregister(id_);
}

void Session::Start() {
  server_->Register(id_, shared_from_this());
  ReadRequest();
}

void Session::CloseIfIdle() {
  if (phase_ == Phase::kIdle) Close();
}

void Session::ReadRequest() {
  phase_ = Phase::kIdle;
  if (server_->stopping()) {
    Close();
    return;
  }
  parser_.emplace();
  parser_->header_limit(kMaxHeaderBytes);
  parser_->body_limit(server_->options().max_body_bytes);
  parser_->eager(true);
  continue_sent_ = false;
  if (buffer_.size() > 0) {  // a pipelined request is already here
    phase_ = Phase::kReading;
    started_ = SteadyClock::now();
    stream_.expires_after(std::chrono::milliseconds(server_->options().header_timeout_ms));
    Advance();
    return;
  }
  if (buffer_.capacity() > kKeepBufferBytes) buffer_.shrink_to_fit();
  stream_.expires_after(std::chrono::milliseconds(server_->options().idle_timeout_ms));
  ReadMore();
}

void Session::ReadMore() {
  stream_.async_read_some(buffer_.prepare(kReadChunkBytes),
                          [self = shared_from_this()](beast::error_code ec, size_t bytes) {
                            self->OnRead(ec, bytes);
                          });
}

void Session::OnRead(beast::error_code ec, size_t bytes) {
  if (phase_ == Phase::kClosed) return;  // closed while the read was completing
  if (phase_ == Phase::kClosing) {  // discarding what the client still sends before closing
    buffer_.consume(buffer_.size());
    lingered_bytes_ += bytes;
    if (ec || lingered_bytes_ > kLingerMaxBytes) {
      Close();
    } else {
      ReadMore();
    }
    return;
  }
  if (ec) {
    // End of stream, reset, timeout (tcp_stream has closed the socket) or Stop(): nothing to
    // answer to. A request cut off half way is dropped.
    Close();
    return;
  }
  buffer_.commit(bytes);
  if (phase_ == Phase::kIdle) {
    phase_ = Phase::kReading;
    started_ = SteadyClock::now();
    stream_.expires_after(std::chrono::milliseconds(server_->options().header_timeout_ms));
  }
  Advance();
}

void Session::Advance() {
  beast::error_code ec;
  while (buffer_.size() > 0 && !parser_->is_done()) {
    size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == bhttp::error::need_more) {
      ec = {};
      break;
    }
    if (ec || used == 0) break;
  }
  if (ec == bhttp::error::body_limit) {
    SendError(413, "REQUEST_LIMIT_EXCEEDED",
              "request body exceeds the server's limit of " +
                  std::to_string(server_->options().max_body_bytes) + " bytes");
    return;
  }
  if (ec == bhttp::error::header_limit) {
    SendError(431, "REQUEST_LIMIT_EXCEEDED", "request headers are too large");
    return;
  }
  if (ec) {
    SendError(400, "BAD_REQUEST", "malformed HTTP request");
    return;
  }
  if (parser_->is_done()) {
    Handle();
    return;
  }
  if (parser_->is_header_done() && !continue_sent_) {
    continue_sent_ = true;
    if (EqualsIgnoreCase(parser_->get()[bhttp::field::expect], "100-continue")) {
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this()](beast::error_code write_ec, size_t) {
                         if (write_ec) {
                           self->Close();
                         } else {
                           self->ReadMore();
                         }
                       });
      return;
    }
  }
  ReadMore();
}

void Session::FillRequest() {
  auto& message = parser_->get();
  request_.method.assign(message.method_string());
  std::string_view target = message.target();
  request_.target.assign(target);
  size_t question = target.find('?');
  std::string_view raw_path = target.substr(0, question);
  if (raw_path.find('%') == std::string_view::npos) {
    request_.path.assign(raw_path);
  } else {
    request_.path = PercentDecode(raw_path, false);
  }
  if (question == std::string_view::npos) {
    request_.query.clear();
  } else {
    request_.query = ParseQuery(target.substr(question + 1));
  }
  size_t count = 0;
  for (const auto& field : message) {
    if (count < request_.headers.size()) {
      request_.headers[count].first.assign(field.name_string());
      request_.headers[count].second.assign(field.value());
    } else {
      request_.headers.emplace_back(field.name_string(), field.value());
    }
    ++count;
  }
  request_.headers.resize(count);
  request_.body = std::move(message.body());
  request_.remote_address = remote_address_;
}

void Session::Handle() {
  phase_ = Phase::kHandling;
  FillRequest();
  const bool keep_alive = parser_->get().keep_alive();
  is_head_ = request_.method == "HEAD";
  close_after_write_ = !keep_alive;

  ResetResponse();
  // Tells the acceptor to send new connections elsewhere should this handler take long.
  worker_->handler_started.store(
      std::max<int64_t>(1, SteadyClock::now().time_since_epoch().count()),
      std::memory_order_relaxed);
  try {
    server_->router().Dispatch(request_, response_);
  } catch (const std::exception& e) {
    LogError("handler for " + request_.method + " " + request_.path + " threw: " + e.what());
    ResetResponse();
    response_.status = 500;
    response_.body = ErrorJson("INTERNAL_ERROR", "internal error");
  } catch (...) {
    LogError("handler for " + request_.method + " " + request_.path + " threw a non-exception");
    ResetResponse();
    response_.status = 500;
    response_.body = ErrorJson("INTERNAL_ERROR", "internal error");
  }
  worker_->handler_started.store(0, std::memory_order_relaxed);
  const int status = response_.status;
  const bool bodiless_status = status < 200 || status == 204 || status == 304;
  if (response_.streamed() && !is_head_ && !bodiless_status) {
    StartStream();
    return;
  }
  WriteResponse();
}

void Session::ResetResponse() {
  response_.status = 200;
  response_.content_type = "application/json";
  response_.body.clear();
  response_.headers.clear();
  response_.producer = nullptr;
  response_.stream_length.reset();
  response_.stream_error = nullptr;
}

// Answers a request the parser rejected, then closes the connection.
void Session::SendError(int status, std::string_view error_code, std::string_view message) {
  phase_ = Phase::kHandling;
  if (parser_->is_header_done()) {
    auto& header = parser_->get();
    request_.method.assign(header.method_string());
    request_.target.assign(header.target());
    request_.path.assign(request_.target.substr(0, request_.target.find('?')));
  } else {
    request_.method = "-";
    request_.target.clear();
    request_.path.clear();
  }
  request_.query.clear();
  request_.headers.clear();
  request_.body.clear();
  request_.remote_address = remote_address_;
  is_head_ = false;
  close_after_write_ = true;
  ResetResponse();
  response_.status = status;
  response_.body = ErrorJson(error_code, message);
  WriteResponse();
}

void Session::DecideClose() {
  for (const auto& [name, value] : response_.headers) {
    if (EqualsIgnoreCase(name, "connection") && EqualsIgnoreCase(value, "close")) {
      close_after_write_ = true;
    }
  }
  if (server_->stopping()) close_after_write_ = true;
}

void Session::BuildHead(Framing framing, uint64_t length) {
  const int status = response_.status;
  const bool bodiless_status = status < 200 || status == 204 || status == 304;

  head_.clear();
  head_.append("HTTP/1.1 ");
  AppendNumber(head_, status);
  head_.push_back(' ');
  std::string_view reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  head_.append(reason == "<unknown-status>" ? std::string_view("Unknown") : reason);
  head_.append("\r\nServer: ").append(server_->options().server_name);
  head_.append("\r\nDate: ").append(HttpDate());
  if (!response_.content_type.empty() && !bodiless_status) {
    head_.append("\r\nContent-Type: ").append(response_.content_type);
  }
  if (!bodiless_status && framing == Framing::kLength) {
    head_.append("\r\nContent-Length: ");
    AppendNumber(head_, static_cast<int64_t>(length));
  } else if (!bodiless_status && framing == Framing::kChunked) {
    head_.append("\r\nTransfer-Encoding: chunked");
  }
  for (const auto& [name, value] : response_.headers) {
    // Framing is ours; Response::content_type wins over a Content-Type in the extra headers.
    if (EqualsIgnoreCase(name, "connection") || EqualsIgnoreCase(name, "content-length") ||
        EqualsIgnoreCase(name, "transfer-encoding") ||
        (EqualsIgnoreCase(name, "content-type") && !response_.content_type.empty())) {
      continue;
    }
    if (HasLineBreak(name) || HasLineBreak(value)) {
      LogWarning("dropped response header '" + std::string(name.substr(0, 64)) +
                 "' holding a line break, for " + request_.method + " " + request_.path);
      continue;
    }
    head_.append("\r\n").append(name).append(": ").append(value);
  }
  if (close_after_write_) {
    head_.append("\r\nConnection: close");
  } else if (parser_->get().version() == 10) {
    head_.append("\r\nConnection: keep-alive");  // HTTP/1.0 closes unless told otherwise
  }
  head_.append("\r\n\r\n");
}

void Session::WriteResponse() {
  phase_ = Phase::kWriting;
  DecideClose();
  const int status = response_.status;
  const bool bodiless_status = status < 200 || status == 204 || status == 304;
  Framing framing = Framing::kLength;
  uint64_t length = response_.body.size();
  if (response_.streamed()) {
    // HEAD or a bodiless status: the head a GET would get, and the producer never runs.
    if (response_.stream_length.has_value()) {
      length = *response_.stream_length;
    } else {
      framing = parser_->get().version() == 10 ? Framing::kUntilClose : Framing::kChunked;
    }
    response_.producer = nullptr;
    response_.stream_error = nullptr;
  }
  BuildHead(framing, length);

  const bool send_body = !is_head_ && !bodiless_status;
  std::array<net::const_buffer, 2> buffers = {
      net::buffer(head_),
      send_body ? net::buffer(response_.body) : net::const_buffer()};
  stream_.expires_after(WriteTimeout());
  net::async_write(stream_, buffers,
                   [self = shared_from_this()](beast::error_code ec, size_t bytes) {
                     self->OnWrite(ec, bytes);
                   });
}

std::chrono::milliseconds Session::WriteTimeout() const {
  return std::chrono::milliseconds(
      std::max(server_->options().idle_timeout_ms, server_->options().header_timeout_ms));
}

// ---------------------------------------------------------------------------------------------
// Streamed replies

// The BodyWriter a producer thread writes to: it fills a piece and hands it to the connection's
// worker thread.
class StreamBodyWriter final : public BodyWriter {
 public:
  StreamBodyWriter(std::shared_ptr<Session> session, std::shared_ptr<StreamState> state,
                   std::optional<uint64_t> length)
      : session_(std::move(session)), state_(std::move(state)), length_(length) {
    pending_.reserve(kStreamPieceBytes);
  }

  Status Write(std::string_view bytes) override {
    if (length_.has_value() && bytes.size() > *length_ - written_) {
      return Internal("the streamed body is longer than the " + std::to_string(*length_) +
                      " bytes it announced");
    }
    written_ += bytes.size();
    pending_.append(bytes);
    if (pending_.size() >= kStreamPieceBytes) return HandOver(false, Status::Ok());
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->failed ? Gone() : Status::Ok();
  }

  // Hands the pending bytes (and with `last`, the producer's result) to the worker once it has
  // written the previous piece. Unavailable when the connection is gone.
  Status HandOver(bool last, Status result) {
    {
      std::unique_lock<std::mutex> lock(state_->mutex);
      state_->piece_written.wait(lock, [this] { return !state_->busy || state_->failed; });
      if (state_->failed) return Gone();
      state_->piece.swap(pending_);
      state_->busy = true;
      state_->last = last;
      state_->result = std::move(result);
    }
    pending_.clear();  // the piece written before; its capacity is reused
    session_->Post(&Session::SendPiece);
    return Status::Ok();
  }

  uint64_t written() const { return written_; }

 private:
  static Status Gone() { return Unavailable("the client connection is closed"); }

  std::shared_ptr<Session> session_;
  std::shared_ptr<StreamState> state_;
  const std::optional<uint64_t> length_;
  uint64_t written_ = 0;
  std::string pending_;
};

// The body of a producer thread.
void RunProducer(std::shared_ptr<Session> session, std::shared_ptr<StreamState> state,
                 const BodyProducer& producer, std::optional<uint64_t> length) {
  StreamBodyWriter writer(std::move(session), std::move(state), length);
  Status result;
  try {
    result = producer(writer);
  } catch (const std::exception& e) {
    result = Internal(std::string("the body producer threw: ") + e.what());
  } catch (...) {
    result = Internal("the body producer threw a non-exception");
  }
  if (result.ok() && length.has_value() && writer.written() != *length) {
    result = Internal("the streamed body ended after " + std::to_string(writer.written()) +
                      " of the " + std::to_string(*length) + " bytes it announced");
  }
  // Fails only when the connection is gone, and then there is nobody left to tell.
  (void)writer.HandOver(true, std::move(result));
}

void Session::StartStream() {
  phase_ = Phase::kStreaming;
  DecideClose();
  if (response_.stream_length.has_value()) {
    stream_framing_ = Framing::kLength;
  } else if (parser_->get().version() == 10) {
    stream_framing_ = Framing::kUntilClose;  // HTTP/1.0 knows no chunks: the close ends the body
    close_after_write_ = true;
  } else {
    stream_framing_ = Framing::kChunked;
  }
  BuildHead(stream_framing_, response_.stream_length.value_or(0));
  head_sent_ = false;
  stream_bytes_ = 0;
  auto state = std::make_shared<StreamState>();
  body_stream_ = state;
  BodyProducer producer = std::move(response_.producer);
  response_.producer = nullptr;
  try {
    server_->RunOnProducerThread([self = shared_from_this(), state, producer = std::move(producer),
                                  length = response_.stream_length]() mutable {
      RunProducer(std::move(self), std::move(state), producer, length);
    });
  } catch (const std::exception& e) {
    FailStream(Unavailable(std::string("cannot start a thread for the streamed reply: ") +
                           e.what()));
  }
}

void Session::SendPiece() {
  std::shared_ptr<StreamState> state = body_stream_;
  if (state == nullptr || phase_ != Phase::kStreaming) {
    // Closed while the piece was on its way: the producer learns it from `failed`.
    if (state != nullptr) AbortStream();
    return;
  }
  bool last = false;
  Status result;
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    last = state->last;
    result = state->result;
  }
  if (last && !result.ok()) {
    FailStream(result);
    return;
  }
  // `piece` is the worker's while `busy`; the producer fills another one meanwhile.
  const std::string& piece = state->piece;
  const bool chunked = stream_framing_ == Framing::kChunked;
  std::vector<net::const_buffer> buffers;
  buffers.reserve(5);
  if (!head_sent_) buffers.push_back(net::buffer(head_));
  head_sent_ = true;
  if (!piece.empty()) {
    if (chunked) {
      char digits[24];
      auto hex = std::to_chars(digits, digits + sizeof(digits), piece.size(), 16);
      chunk_prefix_.assign(digits, hex.ptr).append("\r\n");
      buffers.push_back(net::buffer(chunk_prefix_));
    }
    buffers.push_back(net::buffer(piece));
    if (chunked) buffers.push_back(net::buffer("\r\n", 2));
  }
  if (last && chunked) buffers.push_back(net::buffer("0\r\n\r\n", 5));
  if (buffers.empty()) {
    OnPieceWritten({}, 0);
    return;
  }
  stream_.expires_after(WriteTimeout());
  // The handler keeps `state`, and with it the piece's bytes, alive until the write is over.
  net::async_write(stream_, buffers,
                   [self = shared_from_this(), state](beast::error_code ec, size_t bytes) {
                     self->OnPieceWritten(ec, bytes);
                   });
}

void Session::OnPieceWritten(beast::error_code ec, size_t bytes) {
  stream_bytes_ += bytes;
  std::shared_ptr<StreamState> state = body_stream_;
  if (state == nullptr) return;  // the connection was closed meanwhile
  bool last = false;
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    state->busy = false;
    if (ec) state->failed = true;
    last = state->last;
  }
  state->piece_written.notify_all();
  if (ec || phase_ != Phase::kStreaming) {
    Close();  // a client gone away or too slow: the producer stops at its next Write
    return;
  }
  if (!last) return;  // the producer hands over the next piece
  EndStream();
  if (close_after_write_) {
    Linger();
    return;
  }
  ReadRequest();
}

void Session::FailStream(const Status& result) {
  std::string_view raw_path =
      std::string_view(request_.target).substr(0, std::string_view(request_.target).find('?'));
  LogError("streamed reply to " + request_.method + " " + std::string(raw_path) + " failed" +
           (head_sent_ ? " after " + std::to_string(stream_bytes_) + " bytes" : std::string()) +
           ": " + result.ToString());
  if (head_sent_) {
    Close();  // a truncated body, never a complete-looking wrong one
    return;
  }
  body_stream_.reset();
  StreamErrorReply on_error = std::move(response_.stream_error);
  ResetResponse();
  response_.status = 500;
  response_.body = ErrorJson("INTERNAL_ERROR", "internal error");
  if (on_error) {
    try {
      on_error(result, response_);
    } catch (const std::exception& e) {
      LogError(std::string("stream error reply threw: ") + e.what());
      ResetResponse();
      response_.status = 500;
      response_.body = ErrorJson("INTERNAL_ERROR", "internal error");
    }
  }
  if (response_.streamed()) {  // an error reply is never streamed
    response_.producer = nullptr;
    response_.stream_length.reset();
  }
  WriteResponse();
}

void Session::AbortStream() {
  if (body_stream_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(body_stream_->mutex);
    body_stream_->failed = true;
  }
  body_stream_->piece_written.notify_all();
}

void Session::EndStream() {
  if (body_stream_ == nullptr) return;
  body_stream_.reset();
  Finish(stream_bytes_);
}

void Session::OnWrite(beast::error_code ec, size_t bytes) {
  Finish(bytes);
  if (ec) {
    Close();
    return;
  }
  if (close_after_write_) {
    Linger();
    return;
  }
  ReadRequest();
}

// Access log and metrics for one request.
void Session::Finish(size_t bytes) {
  int64_t micros =
      std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started_).count();
  const ServerOptions& options = server_->options();
  if (options.on_request) {
    try {
      options.on_request(request_, response_.status, micros);
    } catch (const std::exception& e) {
      LogError(std::string("on_request callback threw: ") + e.what());
    }
  }
  if (options.access_log && GetLogLevel() <= LogLevel::kInfo) {
    // The raw path only: query strings, headers and bodies can carry secrets.
    std::string_view raw_path = std::string_view(request_.target).substr(
        0, std::string_view(request_.target).find('?'));
    std::string line;
    line.reserve(64 + raw_path.size());
    line.append(request_.method).push_back(' ');
    line.append(raw_path).push_back(' ');
    AppendNumber(line, response_.status);
    line.push_back(' ');
    AppendNumber(line, static_cast<int64_t>(bytes));
    line.append("B ");
    AppendNumber(line, micros);
    line.append("us");
    LogInfo(line);
  }
}

// Half-closes, then reads and discards until the client closes (or a limit), so that the
// client sees the final response instead of a connection reset.
void Session::Linger() {
  phase_ = Phase::kClosing;
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) {
    Close();
    return;
  }
  buffer_.consume(buffer_.size());
  lingered_bytes_ = 0;
  stream_.expires_after(kLingerTime);
  ReadMore();
}

void Session::Close() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  if (body_stream_ != nullptr) {
    AbortStream();
    EndStream();  // the access log line of a stream cut short
  }
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
}

// ---------------------------------------------------------------------------------------------
// ServerImpl

Status ServerImpl::Listen() {
  const std::string address_text = FormatAddress(options_.host, options_.port);
  beast::error_code ec;
  tcp::endpoint endpoint;
  net::ip::address address = net::ip::make_address(options_.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, static_cast<unsigned short>(options_.port));
  } else {
    tcp::resolver resolver(accept_ioc_);
    auto results = resolver.resolve(options_.host, std::to_string(options_.port), ec);
    if (ec || results.empty()) {
      return IoError("cannot listen on " + address_text + ": cannot resolve host '" +
                     options_.host + "': " + (ec ? ec.message() : "no addresses"));
    }
    endpoint = results.begin()->endpoint();
  }
  auto fail = [&](std::string_view step) {
    return IoError("cannot listen on " + address_text + ": " + std::string(step) + ": " +
                   ec.message());
  };
  if (acceptor_.open(endpoint.protocol(), ec); ec) return fail("socket");
  if (acceptor_.set_option(net::socket_base::reuse_address(true), ec); ec) return fail("setsockopt");
  if (acceptor_.bind(endpoint, ec); ec) return fail("bind");
  if (acceptor_.listen(net::socket_base::max_listen_connections, ec); ec) return fail("listen");
  if (acceptor_.non_blocking(true, ec); ec) return fail("non-blocking");
  port_ = acceptor_.local_endpoint(ec).port();
  if (ec) return fail("getsockname");
  return Status::Ok();
}

void ServerImpl::StartThreads() {
  const auto run = [this](net::io_context& ioc) {
    tl_worker_of = this;
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception& e) {
        LogError(std::string("HTTP server thread caught: ") + e.what());
      }
    }
  };
  for (auto& worker : workers_) {
    worker->thread = std::thread([run, ioc = &worker->ioc] { run(*ioc); });
  }
  Accept();
  acceptor_thread_ = std::thread([run, this] { run(accept_ioc_); });
}

Worker& ServerImpl::PickWorker() {
  // A handler running this long is probably blocked (on a database, say): its worker's other
  // connections wait for it, so new ones go elsewhere while another worker is free.
  constexpr auto kBusyAfter = std::chrono::milliseconds(2);
  constexpr int64_t kBusyPenalty = int64_t{1} << 32;
  const int64_t now = SteadyClock::now().time_since_epoch().count();
  const int64_t busy_ticks = std::chrono::duration_cast<SteadyClock::duration>(kBusyAfter).count();
  const size_t count = workers_.size();
  size_t best = next_worker_;
  int64_t best_load = std::numeric_limits<int64_t>::max();
  for (size_t i = 0; i < count; ++i) {
    const size_t index = (next_worker_ + i) % count;
    const Worker& worker = *workers_[index];
    int64_t load = worker.connections.load(std::memory_order_relaxed);
    const int64_t started = worker.handler_started.load(std::memory_order_relaxed);
    if (started != 0 && now - started > busy_ticks) load += kBusyPenalty;
    if (load < best_load) {
      best = index;
      best_load = load;
    }
  }
  next_worker_ = (best + 1) % count;
  return *workers_[best];
}

void ServerImpl::Accept() {
  acceptor_.async_wait(tcp::acceptor::wait_read,
                       [this](beast::error_code ec) { OnAcceptable(ec); });
}

void ServerImpl::OnAcceptable(beast::error_code ec) {
  if (stopping() || !acceptor_.is_open()) return;
  // Accepts every connection waiting, each straight onto the io_context of the worker chosen for
  // it now (the choice needs the workers' load when the connection arrives, not when the
  // previous one did). The acceptor is non-blocking: `would_block` means none is left.
  while (!ec) {
    Worker& worker = PickWorker();
    tcp::socket socket(worker.ioc);
    acceptor_.accept(socket, ec);
    if (ec == net::error::connection_aborted) {
      ec = {};  // the client gave up while it waited; next
    } else if (!ec) {
      StartSession(worker, std::move(socket));
    }
  }
  if (ec == net::error::would_block || ec == net::error::try_again) {
    Accept();
    return;
  }
  // Out of file descriptors and the like: back off instead of spinning.
  LogWarning("HTTP accept failed: " + ec.message());
  accept_retry_timer_.expires_after(std::chrono::milliseconds(50));
  accept_retry_timer_.async_wait([this](beast::error_code wait_ec) {
    if (!wait_ec) Accept();
  });
}

void ServerImpl::StartSession(Worker& worker, tcp::socket socket) {
  beast::error_code option_ec;
  socket.set_option(tcp::no_delay(true), option_ec);
  uint64_t id = next_session_id_.fetch_add(1, std::memory_order_relaxed);
  // Made here, so that the next PickWorker() counts it; started on its worker's thread.
  auto session = std::make_shared<Session>(this, &worker, std::move(socket), id);
  net::post(worker.ioc, [session = std::move(session)] { session->Start(); });
}

void ServerImpl::Register(uint64_t id, const std::shared_ptr<Session>& session) {
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  sessions_.emplace(id, session);
}

void ServerImpl::Unregister(uint64_t id) {
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  sessions_.erase(id);
  if (sessions_.empty()) sessions_empty_.notify_all();
}

std::vector<std::shared_ptr<Session>> ServerImpl::LiveSessions() {
  std::vector<std::shared_ptr<Session>> live;
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  live.reserve(sessions_.size());
  for (const auto& [id, weak] : sessions_) {
    if (auto session = weak.lock()) live.push_back(std::move(session));
  }
  return live;
}

bool ServerImpl::OnWorkerThread() const { return tl_worker_of == this; }

void ServerImpl::RunOnProducerThread(std::function<void()> work) {
  std::lock_guard<std::mutex> lock(producers_mutex_);
  // Join the threads whose producers have finished (they are exiting or gone).
  std::erase_if(producers_, [](ProducerThread& producer) {
    if (!producer.done->load(std::memory_order_acquire)) return false;
    producer.thread.join();
    return true;
  });
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::thread thread([work = std::move(work), done]() mutable {
    work();
    work = nullptr;  // releases the connection before saying so
    done->store(true, std::memory_order_release);
  });
  producers_.push_back({std::move(thread), std::move(done)});
}

void ServerImpl::Stop() {
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    if (!shutdown_started_) {
      shutdown_started_ = true;
      // A thread of its own, so that a handler may call Stop() without joining itself.
      shutdown_thread_ = std::thread([this] { Shutdown(); });
    }
  }
  if (!OnWorkerThread()) Wait();
}

void ServerImpl::Wait() {
  std::unique_lock<std::mutex> lock(state_mutex_);
  stopped_cv_.wait(lock, [this] { return stopped_; });
}

void ServerImpl::Shutdown() {
  stopping_.store(true, std::memory_order_release);
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
    accept_retry_timer_.cancel();
  });
  // Sessions that enter their idle phase from now on (or start: one accepted just now may still
  // be on its way to its worker) see stopping() and close themselves; the ones idle already are
  // closed on their workers' threads. Requests in progress finish and their responses say
  // "Connection: close". A worker blocked in a handler runs its posts once the handler returns.
  for (auto& session : LiveSessions()) session->Post(&Session::CloseIfIdle);
  const auto wait_for_sessions = [this](std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(sessions_mutex_);
    return sessions_empty_.wait_for(lock, timeout, [this] { return sessions_.empty(); });
  };
  if (!wait_for_sessions(std::chrono::milliseconds(options_.drain_timeout_ms))) {
    std::vector<std::shared_ptr<Session>> busy = LiveSessions();
    LogWarning("HTTP server: " + std::to_string(busy.size()) +
               " connections still open after the drain timeout; closing them");
    for (auto& session : busy) session->Post(&Session::ForceClose);
    busy.clear();
    (void)wait_for_sessions(std::chrono::milliseconds(100));
  }
  accept_ioc_.stop();
  for (auto& worker : workers_) {
    worker->work.reset();
    worker->ioc.stop();
  }
  // Returns once every handler still running has returned.
  if (acceptor_thread_.joinable()) acceptor_thread_.join();
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
  }
  // No I/O thread runs now: wake the producers still waiting for a piece to be written, and join
  // them (each returns at its next Write). No new producer can start: only I/O threads start them.
  for (auto& session : LiveSessions()) session->AbortStream();
  std::vector<ProducerThread> producers;
  {
    std::lock_guard<std::mutex> lock(producers_mutex_);
    producers.swap(producers_);
  }
  for (auto& producer : producers) producer.thread.join();
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    stopped_ = true;
  }
  stopped_cv_.notify_all();
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options, Router router) {
  auto server = std::make_unique<ServerImpl>(std::move(options), std::move(router));
  KILN_RETURN_IF_ERROR(server->Listen());
  server->StartThreads();
  return std::unique_ptr<Server>(std::move(server));
}

void WaitForShutdownSignal() {
  // Asio's signal_set catches the signals through a self-pipe in its own io_context, whatever
  // the threads' signal masks; the default actions return when it is destroyed.
  net::io_context ioc(1);
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([](beast::error_code, int) {});
  ioc.run();
}

}  // namespace kiln::http
