// Logging to stderr, one line per call, safe from any thread.
//
// Never pass secrets (passwords, tokens, connection strings with passwords) to these functions;
// use RedactUri() on URIs before logging them.
#pragma once

#include <string>
#include <string_view>

namespace kiln {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug", "info", "warning", "error", "off".
bool ParseLogLevel(std::string_view text, LogLevel* level);

void Log(LogLevel level, std::string_view message);
inline void LogDebug(std::string_view m) { Log(LogLevel::kDebug, m); }
inline void LogInfo(std::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarning(std::string_view m) { Log(LogLevel::kWarning, m); }
inline void LogError(std::string_view m) { Log(LogLevel::kError, m); }

// "postgresql://kiln:secret@host/db" -> "postgresql://kiln:***@host/db"; also masks
// "password=..." in libpq keyword strings.
std::string RedactUri(std::string_view uri);

}  // namespace kiln
