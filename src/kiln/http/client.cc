#include "kiln/http/client.h"

#include <curl/curl.h>

#include <cassert>
#include <cstdlib>
#include <mutex>
#include <string_view>

namespace kiln::http {
namespace {

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Never cleaned up: other threads may still own handles when static destructors run.
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) std::abort();
  });
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                           text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

std::string Lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The URL without its query string, for error messages (queries may carry tokens).
std::string_view WithoutQuery(std::string_view url) { return url.substr(0, url.find('?')); }

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  static_cast<ClientResponse*>(user)->body.append(data, size * count);
  return size * count;
}

// The sink of Client::Download: error bodies are collected, others go to the caller's writer.
struct DownloadSink {
  CURL* curl = nullptr;
  ClientResponse* response = nullptr;
  const std::function<Status(std::string_view)>* write = nullptr;
  Status failure;
};

size_t ForwardBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<DownloadSink*>(user);
  long status = 0;
  curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 400) {
    sink->response->body.append(data, size * count);
    return size * count;
  }
  sink->failure = (*sink->write)(std::string_view(data, size * count));
  return sink->failure.ok() ? size * count : 0;  // 0 makes curl abort with CURLE_WRITE_ERROR
}

size_t CollectHeader(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<ClientResponse*>(user);
  std::string_view line(data, size * count);
  // Each status line starts a new header block ("100 Continue", redirects): keep the last one.
  if (line.substr(0, 5) == "HTTP/") {
    response->headers.clear();
    return line.size();
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    response->headers.emplace_back(Lowercase(Trim(line.substr(0, colon))),
                                   std::string(Trim(line.substr(colon + 1))));
  }
  return line.size();
}

// The options every transfer sets: where, how long, where the body and headers go.
void SetUpTransfer(CURL* curl, const std::string& url, int timeout_ms, char* error_buffer,
                   size_t (*write)(char*, size_t, size_t, void*), void* write_data,
                   ClientResponse* response) {
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for timeouts: we are threaded
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, write_data);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &CollectHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, response);
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
}

// A failed transfer as a Status: refused, unresolvable or timed out is Unavailable.
Status TransferError(CURLcode code, const std::string& method, const std::string& url,
                     const char* error) {
  std::string message = method + " " + std::string(WithoutQuery(url)) + ": " +
                        (error[0] != '\0' ? error : curl_easy_strerror(code));
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
      return Unavailable(std::move(message));
    default:
      return IoError(std::move(message));
  }
}

}  // namespace

std::string ClientResponse::Header(const std::string& lowercase_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lowercase_name) return value;
  }
  return "";
}

// One easy handle per Client: libcurl keeps the connection open between Sends (keep-alive).
struct Client::Impl {
  CURL* curl = nullptr;
  char error[CURL_ERROR_SIZE] = {};
};

Client::Client() : impl_(std::make_unique<Impl>()) {
  GlobalInitOnce();
  impl_->curl = curl_easy_init();
  assert(impl_->curl != nullptr && "curl_easy_init failed (out of memory)");
}

Client::~Client() {
  if (impl_->curl != nullptr) curl_easy_cleanup(impl_->curl);
}

Result<ClientResponse> Client::Download(const std::string& url,
                                        const std::function<Status(std::string_view)>& write,
                                        int timeout_ms) {
  CURL* curl = impl_->curl;
  curl_easy_reset(curl);
  ClientResponse response;
  impl_->error[0] = '\0';
  DownloadSink sink{curl, &response, &write, Status::Ok()};
  SetUpTransfer(curl, url, timeout_ms, impl_->error, &ForwardBody, &sink, &response);
  curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  CURLcode code = curl_easy_perform(curl);
  if (!sink.failure.ok()) return sink.failure;
  if (code != CURLE_OK) return TransferError(code, "GET", url, impl_->error);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  return response;
}

Result<ClientResponse> Client::Send(const std::string& method, const std::string& url,
                                    const std::string& body,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    int timeout_ms) {
  CURL* curl = impl_->curl;
  // Reset drops the previous request's options but keeps the live connection.
  curl_easy_reset(curl);
  ClientResponse response;
  impl_->error[0] = '\0';

  SetUpTransfer(curl, url, timeout_ms, impl_->error, &AppendBody, &response, &response);

  if (method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    if (method != "POST") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (method == "POST" || !body.empty()) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
  }

  struct curl_slist* header_list = nullptr;
  bool expect_given = false;
  bool content_type_given = false;
  for (const auto& [name, value] : headers) {
    std::string lower = Lowercase(name);
    expect_given = expect_given || lower == "expect";
    content_type_given = content_type_given || lower == "content-type";
    std::string line = name + ": " + value;
    header_list = curl_slist_append(header_list, line.c_str());
  }
  // libcurl would send "Expect: 100-continue" for larger bodies and wait a round trip; our
  // servers need no warning, so it is off unless the caller asks for it.
  if (!expect_given) header_list = curl_slist_append(header_list, "Expect:");
  // libcurl would label POST bodies application/x-www-form-urlencoded; say nothing instead.
  if (!content_type_given && method != "GET" && method != "HEAD") {
    header_list = curl_slist_append(header_list, "Content-Type:");
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);

  CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(header_list);
  if (code != CURLE_OK) return TransferError(code, method, url, impl_->error);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  return response;
}

}  // namespace kiln::http
