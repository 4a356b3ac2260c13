// The server and the client together over loopback: real sockets, real threads.
#include "kiln/http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kiln/core/json.h"
#include "kiln/core/log.h"
#include "kiln/http/client.h"

namespace kiln::http {
namespace {

using namespace std::chrono_literals;

ServerOptions TestOptions() {
  ServerOptions options;
  options.port = 0;
  options.threads = 4;
  options.access_log = false;
  options.drain_timeout_ms = 5000;
  return options;
}

std::unique_ptr<Server> StartOrDie(Router router, ServerOptions options = TestOptions()) {
  auto server = Server::Start(std::move(options), std::move(router));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  if (!server.ok()) return nullptr;
  return std::move(server).value();
}

std::string Url(const Server& server, const std::string& path_and_query) {
  return "http://127.0.0.1:" + std::to_string(server.port()) + path_and_query;
}

Handler Reply(std::string text) {
  return [text](const Request&, Response& response) {
    response.content_type = "text/plain";
    response.body = text;
  };
}

// Sends raw bytes and collects everything the server sends back until it closes the
// connection (closed = true) or `timeout` passes with nothing new (closed = false).
struct RawReply {
  std::string data;
  bool closed = false;
};

int ConnectTo(const std::string& ip, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

RawReply RawExchange(int port, const std::string& request,
                     std::chrono::milliseconds timeout = 3000ms) {
  RawReply reply;
  int fd = ConnectTo("127.0.0.1", port);
  if (fd < 0) return reply;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  char chunk[4096];
  for (;;) {
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n == 0) {
      reply.closed = true;
      break;
    }
    if (n < 0) {
      reply.closed = errno == ECONNRESET;
      break;
    }
    reply.data.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  return reply;
}

size_t CountOccurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++count;
  }
  return count;
}

TEST(Server, RoutesExactPrefixNotFoundAndWrongMethod) {
  Router router;
  router.Add("GET", "/api/exact", Reply("exact"));
  router.Add("POST", "/api/exact", Reply("posted"));
  router.AddPrefix("GET", "/files/", Reply("files"));
  router.AddPrefix("GET", "/files/deep/", Reply("deep"));
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);

  struct Case {
    std::string method;
    std::string path;
    int status;
    std::string body;  // for 200s; "ENDPOINT_NOT_FOUND" error_code otherwise
  };
  const std::vector<Case> cases = {
      {"GET", "/api/exact", 200, "exact"},
      {"POST", "/api/exact", 200, "posted"},
      {"GET", "/files/a/b.txt", 200, "files"},
      {"GET", "/files/deep/c", 200, "deep"},
      {"GET", "/api/missing", 404, ""},
      {"DELETE", "/api/exact", 405, ""},
  };
  Client client;
  for (const auto& c : cases) {
    auto response = client.Send(c.method, Url(*server, c.path), c.method == "POST" ? "{}" : "");
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    EXPECT_EQ(response->status, c.status) << c.method << " " << c.path;
    if (c.status == 200) {
      EXPECT_EQ(response->body, c.body) << c.method << " " << c.path;
      EXPECT_EQ(response->Header("content-type"), "text/plain");
    } else {
      EXPECT_EQ(Json::parse(response->body)["error_code"], "ENDPOINT_NOT_FOUND");
      EXPECT_EQ(response->Header("content-type"), "application/json");
    }
    EXPECT_EQ(response->Header("server"), "kiln");
  }
}

TEST(Server, DeliversDecodedPathQueryHeadersAndBody) {
  Router router;
  router.AddPrefix("POST", "/echo/", [](const Request& request, Response& response) {
    Json out;
    out["method"] = request.method;
    out["path"] = request.path;
    out["target"] = request.target;
    out["k"] = request.QueryParams("k");
    out["list"] = request.QueryParams("list");
    out["q"] = request.QueryParam("q").value_or("<none>");
    out["header"] = std::string(request.Header("x-custom-header"));
    out["body"] = request.body;
    response.body = out.dump();
    response.SetHeader("X-Reply", "yes");
  });
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);

  Client client;
  auto response = client.Send(
      "POST", Url(*server, "/echo/a%20b/c?k=1&k=2&list[0]=x&list%5B1%5D=y&q=a%2Bb+c%26d"),
      "payload \x01 bytes", {{"X-Custom-Header", "value 1"}});
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  ASSERT_EQ(response->status, 200);
  Json echoed = Json::parse(response->body);
  EXPECT_EQ(echoed["method"], "POST");
  EXPECT_EQ(echoed["path"], "/echo/a b/c");
  EXPECT_EQ(echoed["target"], "/echo/a%20b/c?k=1&k=2&list[0]=x&list%5B1%5D=y&q=a%2Bb+c%26d");
  EXPECT_EQ(echoed["k"], Json::array({"1", "2"}));
  EXPECT_EQ(echoed["list"], Json::array({"x", "y"}));
  EXPECT_EQ(echoed["q"], "a+b c&d");
  EXPECT_EQ(echoed["header"], "value 1");
  EXPECT_EQ(echoed["body"], "payload \x01 bytes");
  EXPECT_EQ(response->Header("x-reply"), "yes");
}

TEST(Server, ClientReusesOneKeepAliveConnection) {
  Router router;
  router.Add("GET", "/whoami", [](const Request& request, Response& response) {
    response.body = request.remote_address;
  });
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);

  Client client;
  std::set<std::string> peers;
  for (int i = 0; i < 200; ++i) {
    auto response = client.Get(Url(*server, "/whoami"));
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    ASSERT_EQ(response->status, 200);
    peers.insert(response->body);
  }
  ASSERT_EQ(peers.size(), 1u) << "every request should arrive on the same connection";
  EXPECT_EQ(peers.begin()->rfind("127.0.0.1:", 0), 0u) << *peers.begin();

  Client other;
  auto response = other.Get(Url(*server, "/whoami"));
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(peers.count(response->body), 0u) << "a second client has its own connection";
}

TEST(Server, OversizedBodyGets413AndBodyAtTheLimitIsAccepted) {
  Router router;
  router.Add("POST", "/upload", [](const Request& request, Response& response) {
    response.body = std::to_string(request.body.size());
  });
  ServerOptions options = TestOptions();
  options.max_body_bytes = 1024;
  auto server = StartOrDie(std::move(router), options);
  ASSERT_NE(server, nullptr);

  Client client;
  auto at_limit = client.PostJson(Url(*server, "/upload"), std::string(1024, 'a'));
  ASSERT_TRUE(at_limit.ok()) << at_limit.status().ToString();
  EXPECT_EQ(at_limit->status, 200);
  EXPECT_EQ(at_limit->body, "1024");

  for (size_t size : {1025ul, 64ul * 1024, 4ul * 1024 * 1024}) {
    Client fresh;
    auto over = fresh.PostJson(Url(*server, "/upload"), std::string(size, 'a'));
    ASSERT_TRUE(over.ok()) << size << ": " << over.status().ToString();
    EXPECT_EQ(over->status, 413) << size;
    EXPECT_EQ(Json::parse(over->body)["error_code"], "REQUEST_LIMIT_EXCEEDED");
    EXPECT_EQ(over->Header("connection"), "close");
  }

  // With "Expect: 100-continue" the refusal comes before the body is sent, and a small body
  // gets its "100 Continue".
  Client expecting;
  auto refused = expecting.Send("POST", Url(*server, "/upload"), std::string(100000, 'b'),
                                {{"Expect", "100-continue"}});
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_EQ(refused->status, 413);
  auto accepted = expecting.Send("POST", Url(*server, "/upload"), std::string(1000, 'b'),
                                 {{"Expect", "100-continue"}});
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_EQ(accepted->status, 200);
  EXPECT_EQ(accepted->body, "1000");
}

TEST(Server, ConcurrentClientsAllSucceed) {
  Router router;
  router.Add("GET", "/square", [](const Request& request, Response& response) {
    int64_t n = std::stoll(request.QueryParam("n").value_or("0"));
    response.body = std::to_string(n * n);
  });
  ServerOptions options = TestOptions();
  options.threads = 8;
  auto server = StartOrDie(std::move(router), options);
  ASSERT_NE(server, nullptr);

  constexpr int kThreads = 8;
  constexpr int kRequestsPerThread = 200;
  std::atomic<int> succeeded{0};
  std::mutex failure_mutex;
  std::string first_failure;  // guarded by failure_mutex
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Client client;
      for (int i = 0; i < kRequestsPerThread; ++i) {
        int64_t n = t * 1000 + i;
        auto response = client.Get(Url(*server, "/square?n=" + std::to_string(n)));
        if (response.ok() && response->status == 200 && response->body == std::to_string(n * n)) {
          succeeded.fetch_add(1);
        } else {
          std::lock_guard<std::mutex> lock(failure_mutex);
          if (first_failure.empty()) {
            first_failure = response.ok() ? std::to_string(response->status) + " " + response->body
                                          : response.status().ToString();
          }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(succeeded.load(), kThreads * kRequestsPerThread) << first_failure;
}

TEST(Server, StopLetsSlowInFlightRequestFinish) {
  std::promise<void> entered;
  std::atomic<bool> finished{false};
  Router router;
  router.Add("GET", "/slow", [&](const Request&, Response& response) {
    entered.set_value();
    std::this_thread::sleep_for(500ms);
    finished = true;
    response.body = "done";
  });
  router.Add("GET", "/fast", Reply("fast"));
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);

  // An idle keep-alive connection must not hold Stop() up.
  Client idle_client;
  ASSERT_TRUE(idle_client.Get(Url(*server, "/fast")).ok());

  auto slow = std::async(std::launch::async, [&] {
    Client client;
    return client.Get(Url(*server, "/slow"));
  });
  entered.get_future().wait();
  auto stop_started = std::chrono::steady_clock::now();
  server->Stop();
  auto stop_took = std::chrono::steady_clock::now() - stop_started;
  EXPECT_TRUE(finished.load()) << "Stop() returned before the request in flight finished";
  EXPECT_LT(stop_took, 4s) << "the idle connection delayed Stop() to the drain timeout";

  auto response = slow.get();
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "done");
  EXPECT_EQ(response->Header("connection"), "close");

  Client after;
  auto refused = after.Get(Url(*server, "/fast"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().ToString();

  server->Stop();  // idempotent
  server->Wait();  // returns at once when stopped
}

TEST(Server, StopFromInsideAHandlerDoesNotDeadlock) {
  std::atomic<Server*> self{nullptr};
  Router router;
  router.Add("POST", "/shutdown", [&](const Request&, Response& response) {
    self.load()->Stop();
    response.body = "bye";
  });
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);
  self = server.get();

  Client client;
  auto response = client.PostJson(Url(*server, "/shutdown"), "{}");
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->body, "bye");
  server->Wait();
}

// Each worker thread owns the connections handed to it: with more keep-alive connections than
// threads, all are answered, every worker gets some, and a connection never changes thread.
TEST(Server, ManyKeepAliveConnectionsSpreadOverTheThreadsAndEachStaysOnOne) {
  for (int threads : {1, 3}) {
    SCOPED_TRACE("threads = " + std::to_string(threads));
    std::mutex seen_mutex;
    std::map<std::string, std::set<std::thread::id>> threads_by_peer;  // guarded by seen_mutex
    Router router;
    router.Add("GET", "/echo", [&](const Request& request, Response& response) {
      {
        std::lock_guard<std::mutex> lock(seen_mutex);
        threads_by_peer[request.remote_address].insert(std::this_thread::get_id());
      }
      response.body = request.QueryParam("n").value_or("");
    });
    ServerOptions options = TestOptions();
    options.threads = threads;
    auto server = StartOrDie(std::move(router), options);
    ASSERT_NE(server, nullptr);

    constexpr int kConnections = 16;
    constexpr int kRounds = 25;
    // All connections are open before any of them is used concurrently.
    std::vector<std::unique_ptr<Client>> clients;
    for (int c = 0; c < kConnections; ++c) {
      clients.push_back(std::make_unique<Client>());
      auto opened = clients.back()->Get(Url(*server, "/echo?n=open"));
      ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    }
    std::atomic<int> answered{0};
    std::vector<std::thread> callers;
    for (int c = 0; c < kConnections; ++c) {
      callers.emplace_back([&, c] {
        for (int i = 0; i < kRounds; ++i) {
          std::string n = std::to_string(c * 1000 + i);
          auto response = clients[static_cast<size_t>(c)]->Get(Url(*server, "/echo?n=" + n));
          if (response.ok() && response->status == 200 && response->body == n) answered++;
        }
      });
    }
    for (auto& caller : callers) caller.join();
    EXPECT_EQ(answered.load(), kConnections * kRounds);

    std::lock_guard<std::mutex> lock(seen_mutex);
    EXPECT_EQ(threads_by_peer.size(), static_cast<size_t>(kConnections))
        << "a client opened more than one connection";
    std::set<std::thread::id> all_threads;
    for (const auto& [peer, seen] : threads_by_peer) {
      EXPECT_EQ(seen.size(), 1u) << peer << " was served on more than one thread";
      all_threads.insert(seen.begin(), seen.end());
    }
    EXPECT_EQ(all_threads.size(), static_cast<size_t>(threads)) << "a thread got no connection";
  }
}

// A handler that blocks holds up only its own thread's connections: the other thread serves its
// connections and new ones, and Stop() waits for the blocked handler and returns once it does.
TEST(Server, BlockedHandlerHoldsUpOnlyItsThreadAndStopWaitsForIt) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> finished{false};
  Router router;
  router.Add("GET", "/block", [&](const Request&, Response& response) {
    entered.set_value();
    released.wait();
    finished = true;
    response.body = "unblocked";
  });
  router.Add("GET", "/fast", Reply("fast"));
  ServerOptions options = TestOptions();
  options.threads = 2;
  auto server = StartOrDie(std::move(router), options);
  ASSERT_NE(server, nullptr);

  // Two open connections on two threads (a new connection goes to the emptiest thread).
  Client blocked_client;
  Client other_client;
  ASSERT_TRUE(blocked_client.Get(Url(*server, "/fast")).ok());
  ASSERT_TRUE(other_client.Get(Url(*server, "/fast")).ok());

  auto blocked = std::async(std::launch::async, [&] {
    return blocked_client.Send("GET", Url(*server, "/block"), "", {}, 20000);
  });
  std::once_flag released_once;
  const auto unblock = [&] { std::call_once(released_once, [&] { release.set_value(); }); };
  // Should an assertion fail, the handler still returns before `blocked` and the server go.
  struct OnExit {
    std::function<void()> run;
    ~OnExit() { run(); }
  } unblock_on_exit{unblock};
  entered.get_future().wait();
  for (int i = 0; i < 20; ++i) {
    auto response = other_client.Send("GET", Url(*server, "/fast"), "", {}, 5000);
    ASSERT_TRUE(response.ok()) << "request " << i << ": " << response.status().ToString();
    EXPECT_EQ(response->body, "fast");
  }
  // The acceptor sends new connections away from a thread whose handler runs for a while.
  std::this_thread::sleep_for(20ms);
  for (int i = 0; i < 5; ++i) {
    Client fresh;
    auto response = fresh.Send("GET", Url(*server, "/fast"), "", {}, 5000);
    ASSERT_TRUE(response.ok()) << "new connection " << i << ": " << response.status().ToString();
    EXPECT_EQ(response->body, "fast");
  }
  EXPECT_FALSE(finished.load());

  auto stop = std::async(std::launch::async, [&] { server->Stop(); });
  EXPECT_EQ(stop.wait_for(300ms), std::future_status::timeout)
      << "Stop() returned while a handler was still running";
  unblock();
  ASSERT_EQ(stop.wait_for(10s), std::future_status::ready)
      << "Stop() did not return after the handler did";
  stop.get();
  auto response = blocked.get();
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->body, "unblocked");
  EXPECT_EQ(response->Header("connection"), "close");
}

TEST(Server, HandlerExceptionBecomes500) {
  Router router;
  router.Add("GET", "/boom", [](const Request&, Response& response) {
    response.SetHeader("X-Partial", "1");
    throw std::runtime_error("database exploded");
  });
  router.Add("GET", "/ok", Reply("ok"));
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);

  Client client;
  auto response = client.Get(Url(*server, "/boom"));
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->status, 500);
  Json body = Json::parse(response->body);
  EXPECT_EQ(body["error_code"], "INTERNAL_ERROR");
  EXPECT_EQ(body["message"], "internal error");  // no internals leak to the client
  EXPECT_EQ(response->Header("x-partial"), "");
  // The connection and the server carry on.
  auto next = client.Get(Url(*server, "/ok"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->body, "ok");
}

TEST(Server, BindingATakenPortFailsNamingTheAddress) {
  auto first = StartOrDie(Router());
  ASSERT_NE(first, nullptr);
  ServerOptions options = TestOptions();
  options.port = first->port();
  auto second = Server::Start(options, Router());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kIoError);
  EXPECT_NE(second.status().message().find("127.0.0.1:" + std::to_string(first->port())),
            std::string::npos)
      << second.status().message();
}

TEST(Server, ListensOnLoopbackOnlyByDefault) {
  EXPECT_EQ(ServerOptions().host, "127.0.0.1");
  ServerOptions options = TestOptions();
  options.host = ServerOptions().host;
  auto server = StartOrDie(Router(), options);
  ASSERT_NE(server, nullptr);
  int fd = ConnectTo("127.0.0.1", server->port());
  EXPECT_GE(fd, 0);
  if (fd >= 0) ::close(fd);

  // Every other IPv4 address of this machine refuses the connection.
  ifaddrs* interfaces = nullptr;
  ASSERT_EQ(::getifaddrs(&interfaces), 0);
  for (ifaddrs* i = interfaces; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text,
                sizeof(text));
    if (std::string(text).rfind("127.", 0) == 0) continue;
    int other = ConnectTo(text, server->port());
    EXPECT_LT(other, 0) << "reachable on " << text;
    if (other >= 0) ::close(other);
  }
  ::freeifaddrs(interfaces);
}

TEST(Server, HeadSendsHeadersWithoutBody) {
  Router router;
  router.Add("GET", "/doc", Reply("hello"));
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);
  RawReply reply =
      RawExchange(server->port(), "HEAD /doc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(reply.closed);
  EXPECT_EQ(reply.data.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << reply.data;
  EXPECT_NE(reply.data.find("Content-Length: 5\r\n"), std::string::npos) << reply.data;
  EXPECT_EQ(reply.data.substr(reply.data.size() - 4), "\r\n\r\n") << "HEAD must not send a body";
}

TEST(Server, MalformedRequestGets400AndTheConnectionCloses) {
  auto server = StartOrDie(Router());
  ASSERT_NE(server, nullptr);
  for (const std::string request :
       {"GARBAGE\r\n\r\n", "GET /x HTTP/9.9\r\n\r\n", "GET /x HTTP/1.1\r\nBad Header\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: zz\r\n\r\n"}) {
    RawReply reply = RawExchange(server->port(), request);
    EXPECT_TRUE(reply.closed) << request;
    EXPECT_EQ(reply.data.rfind("HTTP/1.1 400 ", 0), 0u) << request << " -> " << reply.data;
    EXPECT_NE(reply.data.find("Connection: close\r\n"), std::string::npos) << reply.data;
  }
}

TEST(Server, OversizedHeadersGet431) {
  auto server = StartOrDie(Router());
  ASSERT_NE(server, nullptr);
  std::string request =
      "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(100 * 1024, 'h') + "\r\n\r\n";
  RawReply reply = RawExchange(server->port(), request);
  EXPECT_EQ(reply.data.rfind("HTTP/1.1 431 ", 0), 0u) << reply.data.substr(0, 100);
}

TEST(Server, ConnectionCloseIsHonoured) {
  Router router;
  router.Add("GET", "/x", Reply("x"));
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);
  RawReply reply =
      RawExchange(server->port(), "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(reply.closed) << "the server kept the connection open";
  EXPECT_NE(reply.data.find("Connection: close\r\n"), std::string::npos) << reply.data;

  // HTTP/1.0 closes by default.
  RawReply old = RawExchange(server->port(), "GET /x HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(old.closed);
  EXPECT_EQ(old.data.substr(old.data.size() - 1), "x");
}

TEST(Server, HandlerMayCloseTheConnectionButNotReframeTheResponse) {
  Router router;
  router.Add("GET", "/bye", [](const Request&, Response& response) {
    response.content_type = "text/plain";
    response.body = "bye";
    response.SetHeader("Connection", "close");
    response.SetHeader("Content-Length", "999");
    response.SetHeader("Content-Type", "text/html");
    response.SetHeader("X-Bad", "a\r\nSet-Cookie: injected");
  });
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);
  RawReply reply = RawExchange(server->port(), "GET /bye HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_TRUE(reply.closed) << "the handler's Connection: close was ignored";
  EXPECT_NE(reply.data.find("Content-Length: 3\r\n"), std::string::npos) << reply.data;
  EXPECT_EQ(reply.data.find("999"), std::string::npos) << reply.data;
  EXPECT_EQ(CountOccurrences(reply.data, "Content-Type:"), 1u) << reply.data;
  EXPECT_NE(reply.data.find("Content-Type: text/plain\r\n"), std::string::npos) << reply.data;
  EXPECT_EQ(reply.data.find("injected"), std::string::npos) << reply.data;
}

TEST(Server, PipelinedRequestsAreAnsweredInOrder) {
  Router router;
  router.Add("GET", "/a", Reply("first"));
  router.Add("POST", "/b", [](const Request& request, Response& response) {
    response.body = "second:" + request.body;
  });
  router.Add("GET", "/c", Reply("third"));
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);
  RawReply reply = RawExchange(server->port(),
                               "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                               "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
                               "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(reply.closed);
  EXPECT_EQ(CountOccurrences(reply.data, "HTTP/1.1 200 OK"), 3u) << reply.data;
  size_t first = reply.data.find("first");
  size_t second = reply.data.find("second:xyz");
  size_t third = reply.data.find("third");
  ASSERT_NE(third, std::string::npos) << reply.data;
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
}

TEST(Server, IdleKeepAliveConnectionIsClosedAfterIdleTimeout) {
  Router router;
  router.Add("GET", "/x", Reply("x"));
  ServerOptions options = TestOptions();
  options.idle_timeout_ms = 200;
  auto server = StartOrDie(std::move(router), options);
  ASSERT_NE(server, nullptr);
  auto started = std::chrono::steady_clock::now();
  RawReply reply = RawExchange(server->port(), "GET /x HTTP/1.1\r\nHost: h\r\n\r\n", 5000ms);
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(reply.closed);
  EXPECT_EQ(reply.data.rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_LT(took, 3s);
}

TEST(Server, IncompleteRequestIsDroppedAfterHeaderTimeout) {
  ServerOptions options = TestOptions();
  options.header_timeout_ms = 200;
  auto server = StartOrDie(Router(), options);
  ASSERT_NE(server, nullptr);
  auto started = std::chrono::steady_clock::now();
  RawReply reply = RawExchange(server->port(), "GET /x HTTP/1.1\r\nHost: h\r\n", 5000ms);
  EXPECT_TRUE(reply.closed);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
}

TEST(Server, OnRequestSeesEveryRequestWithItsStatus) {
  Router router;
  router.Add("GET", "/ok", Reply("ok"));
  std::mutex mutex;
  std::vector<std::string> seen;  // guarded by mutex
  ServerOptions options = TestOptions();
  options.on_request = [&](const Request& request, int status, int64_t micros) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back(request.method + " " + request.path + " " + std::to_string(status) +
                   (micros >= 0 ? "" : " negative"));
  };
  auto server = StartOrDie(std::move(router), options);
  ASSERT_NE(server, nullptr);
  Client client;
  ASSERT_TRUE(client.Get(Url(*server, "/ok")).ok());
  ASSERT_TRUE(client.Get(Url(*server, "/missing")).ok());
  server->Stop();
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(seen, (std::vector<std::string>{"GET /ok 200", "GET /missing 404"}));
}

TEST(Server, AccessLogNamesRequestButNeverQueryHeadersOrBody) {
  Router router;
  router.Add("POST", "/api/login", Reply("ok"));
  ServerOptions options = TestOptions();
  options.access_log = true;
  auto server = StartOrDie(std::move(router), options);
  ASSERT_NE(server, nullptr);
  LogLevel previous = GetLogLevel();
  SetLogLevel(LogLevel::kInfo);
  testing::internal::CaptureStderr();
  {
    Client client;
    auto response = client.Send("POST", Url(*server, "/api/login?token=querysecret"),
                                "bodysecret", {{"Authorization", "Bearer headersecret"}});
    ASSERT_TRUE(response.ok());
    server->Stop();
  }
  std::string log = testing::internal::GetCapturedStderr();
  SetLogLevel(previous);
  EXPECT_NE(log.find("POST /api/login 200 "), std::string::npos) << log;
  EXPECT_EQ(log.find("querysecret"), std::string::npos) << log;
  EXPECT_EQ(log.find("headersecret"), std::string::npos) << log;
  EXPECT_EQ(log.find("bodysecret"), std::string::npos) << log;
}

// ---------------------------------------------------------------------------------------------
// Streamed replies (Response::Stream)

// A body of `size` bytes whose content depends on the position, written in `piece`-byte Writes.
std::string PatternBytes(size_t size) {
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>('a' + (i * 7 + i / 977) % 26);
  return bytes;
}

BodyProducer WritePieces(std::shared_ptr<const std::string> body, size_t piece) {
  return [body, piece](BodyWriter& writer) -> Status {
    for (size_t at = 0; at < body->size(); at += piece) {
      KILN_RETURN_IF_ERROR(writer.Write(std::string_view(*body).substr(at, piece)));
    }
    return Status::Ok();
  };
}

TEST(Server, StreamsBodiesWithLengthOrChunkedAndKeepsTheConnection) {
  auto body = std::make_shared<const std::string>(PatternBytes(3 * 1024 * 1024 + 17));
  Router router;
  router.Add("GET", "/sized", [body](const Request&, Response& response) {
    response.content_type = "application/octet-stream";
    response.Stream(body->size(), WritePieces(body, 100 * 1000));
  });
  router.Add("GET", "/chunked", [body](const Request&, Response& response) {
    response.content_type = "text/plain";
    response.Stream(std::nullopt, WritePieces(body, 333));
  });
  router.Add("GET", "/empty", [](const Request&, Response& response) {
    response.Stream(std::nullopt, [](BodyWriter&) { return Status::Ok(); });
  });
  router.Add("GET", "/whoami", [](const Request& request, Response& response) {
    response.body = request.remote_address;
  });
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);

  struct Case {
    std::string path;
    std::string content_length;      // "" when chunked
    std::string transfer_encoding;
    size_t size;
  };
  const std::vector<Case> cases = {
      {"/sized", std::to_string(body->size()), "", body->size()},
      {"/chunked", "", "chunked", body->size()},
      {"/empty", "", "chunked", 0},
      {"/sized", std::to_string(body->size()), "", body->size()},
  };
  Client client;
  auto first = client.Get(Url(*server, "/whoami"));
  ASSERT_TRUE(first.ok());
  for (const auto& c : cases) {
    auto response = client.Get(Url(*server, c.path));
    ASSERT_TRUE(response.ok()) << c.path << ": " << response.status().ToString();
    EXPECT_EQ(response->status, 200) << c.path;
    EXPECT_EQ(response->Header("content-length"), c.content_length) << c.path;
    EXPECT_EQ(response->Header("transfer-encoding"), c.transfer_encoding) << c.path;
    ASSERT_EQ(response->body.size(), c.size) << c.path;
    EXPECT_TRUE(response->body == body->substr(0, c.size)) << c.path << ": bytes differ";
  }
  // Every reply above came over the first connection: streaming keeps keep-alive.
  auto last = client.Get(Url(*server, "/whoami"));
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->body, first->body);
}

// Streamed replies from several threads at once: each producer hands its pieces to the thread
// that owns its connection.
TEST(Server, ConcurrentStreamedRepliesOnEveryThreadArriveWhole) {
  auto body = std::make_shared<const std::string>(PatternBytes(1024 * 1024 + 5));
  std::mutex seen_mutex;
  std::set<std::thread::id> handler_threads;  // guarded by seen_mutex
  const auto record_thread = [&] {
    std::lock_guard<std::mutex> lock(seen_mutex);
    handler_threads.insert(std::this_thread::get_id());
  };
  Router router;
  router.Add("GET", "/sized", [&, body](const Request&, Response& response) {
    record_thread();
    response.Stream(body->size(), WritePieces(body, 64 * 1000));
  });
  router.Add("GET", "/chunked", [&, body](const Request&, Response& response) {
    record_thread();
    response.Stream(std::nullopt, WritePieces(body, 4099));
  });
  ServerOptions options = TestOptions();
  options.threads = 3;
  auto server = StartOrDie(std::move(router), options);
  ASSERT_NE(server, nullptr);

  constexpr int kClients = 6;
  constexpr int kDownloads = 4;
  // Connections first, so that each thread owns two of them while they all stream at once.
  std::vector<std::unique_ptr<Client>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::make_unique<Client>());
    auto response = clients.back()->Get(Url(*server, "/sized"));
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    ASSERT_TRUE(response->body == *body);
  }
  std::atomic<int> whole{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kClients; ++c) {
    callers.emplace_back([&, c] {
      for (int i = 0; i < kDownloads; ++i) {
        const char* path = (c + i) % 2 == 0 ? "/sized" : "/chunked";
        auto response = clients[static_cast<size_t>(c)]->Get(Url(*server, path));
        if (response.ok() && response->status == 200 && response->body == *body) whole++;
      }
    });
  }
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(whole.load(), kClients * kDownloads);
  std::lock_guard<std::mutex> lock(seen_mutex);
  EXPECT_EQ(handler_threads.size(), 3u);
}

TEST(Server, StreamedReplyToHeadAndHttp10) {
  auto body = std::make_shared<const std::string>(PatternBytes(300 * 1000));
  auto produced = std::make_shared<std::atomic<int>>(0);
  Router router;
  router.Add("GET", "/sized", [body, produced](const Request&, Response& response) {
    response.Stream(body->size(), [body, produced](BodyWriter& writer) {
      ++*produced;
      return writer.Write(*body);
    });
  });
  router.Add("GET", "/chunked", [body](const Request&, Response& response) {
    response.Stream(std::nullopt, WritePieces(body, 1000));
  });
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);

  // HEAD: the GET's head, no body, and the producer never runs.
  RawReply head = RawExchange(server->port(), "HEAD /sized HTTP/1.1\r\nHost: x\r\n\r\n", 500ms);
  EXPECT_NE(head.data.find("Content-Length: " + std::to_string(body->size())), std::string::npos)
      << head.data;
  EXPECT_EQ(head.data.substr(head.data.find("\r\n\r\n") + 4), "");
  EXPECT_EQ(produced->load(), 0);

  // HTTP/1.0 knows no chunks: the body runs until the server closes.
  RawReply old = RawExchange(server->port(), "GET /chunked HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(old.closed);
  EXPECT_EQ(old.data.find("Transfer-Encoding"), std::string::npos) << old.data.substr(0, 300);
  EXPECT_EQ(old.data.find("Content-Length"), std::string::npos) << old.data.substr(0, 300);
  size_t start = old.data.find("\r\n\r\n");
  ASSERT_NE(start, std::string::npos);
  EXPECT_TRUE(old.data.substr(start + 4) == *body);
}

TEST(Server, StreamFailureBeforeTheFirstByteBecomesAnErrorReply) {
  Router router;
  router.Add("GET", "/mapped", [](const Request&, Response& response) {
    response.Stream(
        std::nullopt,
        [](BodyWriter& writer) -> Status {
          KILN_RETURN_IF_ERROR(writer.Write("a few bytes, still buffered"));
          return NotFound("no such table");
        },
        [](const Status& status, Response& reply) {
          reply.status = 404;
          reply.body = status.message();
        });
  });
  router.Add("GET", "/unmapped", [](const Request&, Response& response) {
    response.Stream(10, [](BodyWriter&) { return IoError("disk on fire"); });
  });
  router.Add("GET", "/short", [](const Request&, Response& response) {
    response.Stream(10, [](BodyWriter& writer) { return writer.Write("12345"); });
  });
  router.Add("GET", "/long", [](const Request&, Response& response) {
    response.Stream(3, [](BodyWriter& writer) { return writer.Write("12345"); });
  });
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);
  const LogLevel previous_level = GetLogLevel();
  SetLogLevel(LogLevel::kOff);

  struct Case {
    std::string path;
    int status;
    std::string body_has;
  };
  const std::vector<Case> cases = {
      {"/mapped", 404, "no such table"},
      {"/unmapped", 500, "INTERNAL_ERROR"},
      {"/short", 500, "INTERNAL_ERROR"},
      {"/long", 500, "INTERNAL_ERROR"},
  };
  Client client;
  for (const auto& c : cases) {
    auto response = client.Get(Url(*server, c.path));
    ASSERT_TRUE(response.ok()) << c.path << ": " << response.status().ToString();
    EXPECT_EQ(response->status, c.status) << c.path;
    EXPECT_NE(response->body.find(c.body_has), std::string::npos) << c.path << ": " << response->body;
  }
  SetLogLevel(previous_level);
}

TEST(Server, StreamFailureAfterBytesWentOutCutsTheConnection) {
  Router router;
  for (bool sized : {true, false}) {
    router.Add("GET", sized ? "/sized" : "/chunked", [sized](const Request&, Response& response) {
      response.Stream(sized ? std::optional<uint64_t>(4 * kStreamPieceBytes) : std::nullopt,
                      [](BodyWriter& writer) -> Status {
                        std::string piece(kStreamPieceBytes, 'x');
                        KILN_RETURN_IF_ERROR(writer.Write(piece));
                        KILN_RETURN_IF_ERROR(writer.Write(piece));
                        return IoError("the disk went away half way");
                      });
    });
  }
  router.Add("GET", "/ok", Reply("ok"));
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);
  const LogLevel previous_level = GetLogLevel();
  SetLogLevel(LogLevel::kOff);
  for (const char* path : {"/sized", "/chunked"}) {
    Client client;
    auto response = client.Get(Url(*server, path));
    // A truncated body is a transport error for the client, never a complete-looking reply.
    EXPECT_FALSE(response.ok()) << path << " arrived whole: " << response->body.size() << " bytes";
    auto after = client.Get(Url(*server, "/ok"));
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    EXPECT_EQ(after->body, "ok");
  }
  SetLogLevel(previous_level);
}

// A producer with no end, counting what it wrote and reporting how it ended.
struct EndlessProducer {
  std::shared_ptr<std::atomic<uint64_t>> written = std::make_shared<std::atomic<uint64_t>>(0);
  std::shared_ptr<std::promise<Status>> ended = std::make_shared<std::promise<Status>>();

  BodyProducer Make() const {
    return [written = written, ended = ended](BodyWriter& writer) -> Status {
      std::string piece(64 * 1024, 'z');
      Status status;
      while (status.ok()) {
        status = writer.Write(piece);
        if (status.ok()) *written += piece.size();
      }
      ended->set_value(status);
      return status;
    };
  }
};

TEST(Server, SlowClientHoldsBackTheProducerAndAClosedOneStopsIt) {
  EndlessProducer endless;
  Router router;
  router.Add("GET", "/endless", [&endless](const Request&, Response& response) {
    response.Stream(std::nullopt, endless.Make());
  });
  router.Add("GET", "/ok", Reply("ok"));
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);

  int fd = ConnectTo("127.0.0.1", server->port());
  ASSERT_GE(fd, 0);
  int small = 64 * 1024;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  std::string request = "GET /endless HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  char head[512];
  ASSERT_GT(::recv(fd, head, sizeof(head), 0), 0);
  // The client reads nothing more: once the socket buffers are full the producer must wait.
  std::this_thread::sleep_for(300ms);
  uint64_t stalled_at = endless.written->load();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(endless.written->load(), stalled_at) << "the producer kept going";
  EXPECT_LT(stalled_at, 24u * 1024 * 1024) << "the server buffered far more than two pieces";

  // The client goes away mid-download: the producer's Write fails and it stops.
  ::close(fd);
  auto ended = endless.ended->get_future();
  ASSERT_EQ(ended.wait_for(5s), std::future_status::ready) << "the producer never stopped";
  EXPECT_EQ(ended.get().code(), StatusCode::kUnavailable);

  Client client;  // and the server serves on
  auto after = client.Get(Url(*server, "/ok"));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->body, "ok");
}

TEST(Server, StopClosesAStalledStreamAfterTheDrainTimeout) {
  EndlessProducer endless;
  Router router;
  router.Add("GET", "/endless", [&endless](const Request&, Response& response) {
    response.Stream(std::nullopt, endless.Make());
  });
  ServerOptions options = TestOptions();
  options.drain_timeout_ms = 200;
  auto server = StartOrDie(std::move(router), options);
  ASSERT_NE(server, nullptr);

  int fd = ConnectTo("127.0.0.1", server->port());
  ASSERT_GE(fd, 0);
  std::string request = "GET /endless HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  char head[512];
  ASSERT_GT(::recv(fd, head, sizeof(head), 0), 0);
  std::this_thread::sleep_for(100ms);
  const LogLevel previous_level = GetLogLevel();
  SetLogLevel(LogLevel::kOff);
  auto started = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  SetLogLevel(previous_level);
  auto ended = endless.ended->get_future();
  ASSERT_EQ(ended.wait_for(0s), std::future_status::ready) << "Stop() returned before the producer";
  ::close(fd);
}

TEST(Client, RefusedConnectionIsUnavailableWithCurlsMessage) {
  int port;
  {
    auto server = StartOrDie(Router());
    ASSERT_NE(server, nullptr);
    port = server->port();
  }
  Client client;
  auto response = client.Get("http://127.0.0.1:" + std::to_string(port) + "/x?secret=1");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(response.status().message().find("127.0.0.1"), std::string::npos)
      << response.status().message();
  EXPECT_EQ(response.status().message().find("secret"), std::string::npos)
      << response.status().message();
}

TEST(Client, TimeoutIsUnavailable) {
  Router router;
  router.Add("GET", "/slow", [](const Request&, Response& response) {
    std::this_thread::sleep_for(600ms);
    response.body = "late";
  });
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);
  Client client;
  auto response = client.Send("GET", Url(*server, "/slow"), "", {}, 100);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnavailable) << response.status().ToString();
  // The same Client works afterwards.
  auto again = client.Send("GET", Url(*server, "/slow"), "", {}, 5000);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->body, "late");
}

TEST(Client, SendsMethodsAndBodies) {
  Router router;
  for (const char* method : {"PUT", "PATCH", "DELETE", "POST"}) {
    router.Add(method, "/m", [](const Request& request, Response& response) {
      response.body = request.method + ":" + request.body + ":" +
                      std::string(request.Header("content-type"));
    });
  }
  auto server = StartOrDie(std::move(router));
  ASSERT_NE(server, nullptr);
  Client client;
  struct Case {
    std::string method, body, expected;
  };
  for (const auto& c : std::vector<Case>{{"PUT", "p", "PUT:p:"},
                                         {"PATCH", "q", "PATCH:q:"},
                                         {"DELETE", "", "DELETE::"},
                                         {"POST", "", "POST::"},
                                         {"POST", "r", "POST:r:"}}) {
    auto response = client.Send(c.method, Url(*server, "/m"), c.body);
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    EXPECT_EQ(response->body, c.expected);
  }
  auto json = client.PostJson(Url(*server, "/m"), "{}");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->body, "POST:{}:application/json");
}

}  // namespace
}  // namespace kiln::http
