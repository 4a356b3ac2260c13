#include "kiln/http/message.h"

#include <cstddef>

namespace kiln::http {
namespace {

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// True when `key` is `name[<digits>]`, the indexed form MLflow 2.x clients send for lists.
bool IsIndexedKey(std::string_view key, std::string_view name) {
  if (key.size() < name.size() + 3 || key.substr(0, name.size()) != name) return false;
  std::string_view rest = key.substr(name.size());
  if (rest.front() != '[' || rest.back() != ']') return false;
  for (size_t i = 1; i + 1 < rest.size(); ++i) {
    if (rest[i] < '0' || rest[i] > '9') return false;
  }
  return true;
}

}  // namespace

std::string_view Request::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return {};
}

std::optional<std::string> Request::QueryParam(std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) return value;
  }
  return std::nullopt;
}

std::vector<std::string> Request::QueryParams(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [key, value] : query) {
    if (key == name || IsIndexedKey(key, name)) values.push_back(value);
  }
  return values;
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;  // "a=1&&b=2"
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      pairs.emplace_back(PercentDecode(part, true), std::string());
    } else {
      pairs.emplace_back(PercentDecode(part.substr(0, eq), true),
                         PercentDecode(part.substr(eq + 1), true));
    }
  }
  return pairs;
}

std::string PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int high = HexValue(text[i + 1]);
      int low = HexValue(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(c);
    } else {
      auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0x0F]);
    }
  }
  return out;
}

namespace {

// Collects a streamed body in memory, holding the producer to the length it announced.
class StringBodyWriter final : public BodyWriter {
 public:
  StringBodyWriter(std::string& out, std::optional<uint64_t> length) : out_(out), length_(length) {}
  Status Write(std::string_view bytes) override {
    if (length_.has_value() && out_.size() + bytes.size() > *length_) {
      return Internal("a streamed body is longer than its announced length");
    }
    out_.append(bytes);
    return Status::Ok();
  }

 private:
  std::string& out_;
  std::optional<uint64_t> length_;
};

}  // namespace

void CollectBody(Response& response) {
  if (!response.streamed()) return;
  BodyProducer producer = std::move(response.producer);
  StreamErrorReply on_error = std::move(response.stream_error);
  std::optional<uint64_t> length = response.stream_length;
  response.producer = nullptr;
  response.stream_error = nullptr;
  response.stream_length.reset();
  response.body.clear();
  StringBodyWriter writer(response.body, length);
  Status status = producer(writer);
  if (status.ok() && length.has_value() && response.body.size() != *length) {
    status = Internal("a streamed body is shorter than its announced length");
  }
  if (status.ok()) return;
  response.body.clear();
  response.headers.clear();
  if (on_error) {
    on_error(status, response);
  } else {
    response.status = 500;
    response.content_type = "application/json";
    response.body = R"({"error_code":"INTERNAL_ERROR","message":"internal error"})";
  }
}

}  // namespace kiln::http
