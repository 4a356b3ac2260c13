#include "kiln/tracking/tracking_validation.h"

#include <array>
#include <random>
#include <vector>

namespace kiln::tracking::validation {
namespace {

constexpr std::string_view kBadCharactersMessage =
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), "
    "and slashes (/).";

// MLflow's ^[/\w.\- :]*$, where Python's \w also matches non-ASCII letters: any byte of a
// multi-byte UTF-8 sequence is accepted.
bool IsNameCharacter(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '/' || c == '.' || c == '-' || c == ' ' || c == ':' || c >= 0x80;
}

}  // namespace

size_t Utf8Length(std::string_view text) {
  size_t count = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
}

std::string Utf8Truncate(std::string_view text, size_t max_code_points) {
  size_t count = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      if (count == max_code_points) return std::string(text.substr(0, i));
      ++count;
    }
  }
  return std::string(text);
}

std::string NormalizePosixPath(std::string_view path) {
  if (path.empty()) return ".";
  // POSIX keeps exactly two leading slashes; three or more collapse to one.
  size_t leading = 0;
  while (leading < path.size() && path[leading] == '/') ++leading;
  std::string prefix = leading == 0 ? "" : (leading == 2 ? "//" : "/");
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(start, slash - start);
    start = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (prefix.empty() && (parts.empty() || parts.back() == "..")) {
        parts.push_back(part);
      } else if (!parts.empty()) {
        parts.pop_back();
      }
      continue;
    }
    parts.push_back(part);
  }
  std::string out = prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  return out.empty() ? "." : out;
}

Status ValidateLength(std::string_view entity, std::string_view value, size_t limit) {
  size_t length = Utf8Length(value);
  if (length <= limit) return Status::Ok();
  return InvalidArgument(std::string(entity) + " '" + Utf8Truncate(value, 250) + "' had length " +
                         std::to_string(length) + ", which exceeded length limit of " +
                         std::to_string(limit));
}

Status ValidateEntityName(std::string_view kind, std::string_view name) {
  // Built only for an error: log-batch validates up to 1,000 names per request.
  auto quoted = [&] {
    return "Invalid " + std::string(kind) + " name: '" + std::string(name) + "'. ";
  };
  for (char c : name) {
    if (!IsNameCharacter(static_cast<unsigned char>(c))) {
      return InvalidArgument(quoted() + std::string(kBadCharactersMessage));
    }
  }
  // A name without '/' that is not "." and does not start with ".." normalises to itself and
  // passes the path rule: skip building the normalised copy for it (the usual case).
  bool plain = !name.empty() && name.find('/') == std::string_view::npos && name != "." &&
               !name.starts_with("..");
  std::string normalized = plain ? std::string(name) : NormalizePosixPath(name);
  if (!plain && (normalized != name || normalized == "." || normalized.starts_with("..") ||
                 normalized.starts_with("/"))) {
    return InvalidArgument(quoted() +
                           "Names may be treated as files in certain cases, and must not resolve "
                           "to other names when treated as such. This name would resolve to '" +
                           normalized + "'");
  }
  std::string entity = std::string(kind) + " name";
  entity[0] = static_cast<char>(entity[0] - 'a' + 'A');
  return ValidateLength(entity, name, kMaxEntityKeyLength);
}

Status ValidateExperimentName(std::string_view name) {
  if (name.empty()) return InvalidArgument("Invalid experiment name: ''");
  return ValidateLength("Experiment name", name, kMaxExperimentNameLength);
}

Status ValidateRunStatus(std::string_view status) {
  static constexpr std::array<std::string_view, 5> kStatuses = {"RUNNING", "SCHEDULED", "FINISHED",
                                                                "FAILED", "KILLED"};
  for (std::string_view known : kStatuses) {
    if (status == known) return Status::Ok();
  }
  return InvalidArgument("Invalid run status '" + std::string(status) +
                         "': must be one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED");
}

std::string GenerateRunName() {
  // Our own word lists; the shape (adjective-noun-number below 1000) is MLflow's.
  static constexpr std::array<std::string_view, 40> kAdjectives = {
      "amber",  "bold",   "brave",  "bright", "calm",   "clever", "crisp",  "curious",
      "daring", "eager",  "fancy",  "fierce", "gentle", "glossy", "golden", "grand",
      "happy",  "humble", "jolly",  "keen",   "kind",   "lively", "lucky",  "mellow",
      "merry",  "mighty", "nimble", "noble",  "polite", "proud",  "quick",  "quiet",
      "rapid",  "shiny",  "silent", "smooth", "steady", "swift",  "tidy",   "vivid"};
  static constexpr std::array<std::string_view, 40> kNouns = {
      "badger", "bear",  "bison", "crane",  "crow",  "deer",  "dolphin", "eagle", "falcon", "finch",
      "fox",    "frog",  "gecko", "goat",   "hare",  "hawk",  "heron",   "ibis",  "jay",    "koala",
      "lark",   "lemur", "lynx",  "mole",   "moose", "newt",  "otter",   "owl",   "panda",  "pike",
      "quail",  "raven", "robin", "salmon", "seal",  "shrew", "swan",    "trout", "wolf",   "wren"};
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::string name(kAdjectives[random() % kAdjectives.size()]);
  name += '-';
  name += kNouns[random() % kNouns.size()];
  name += '-';
  name += std::to_string(random() % 1000);
  return name;
}

}  // namespace kiln::tracking::validation
