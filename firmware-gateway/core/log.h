// Logging: one line per message on standard error, "LEVEL component: message",
// journald friendly. Safe to call from any thread.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace tg {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

std::optional<LogLevel> parse_log_level(std::string_view s);
void set_log_level(LogLevel level);
LogLevel log_level();
bool log_enabled(LogLevel level);
void log(LogLevel level, std::string_view component, std::string_view message);

inline void log_debug(std::string_view c, std::string_view m) {
    log(LogLevel::Debug, c, m);
}
inline void log_info(std::string_view c, std::string_view m) {
    log(LogLevel::Info, c, m);
}
inline void log_warn(std::string_view c, std::string_view m) {
    log(LogLevel::Warn, c, m);
}
inline void log_error(std::string_view c, std::string_view m) {
    log(LogLevel::Error, c, m);
}

// Lets a message through at most once per `period` per key, and tells how many
// were held back since the last one that passed.
class RateLimiter {
  public:
    explicit RateLimiter(std::chrono::steady_clock::duration period) : period_(period) {}
    // Returns the number suppressed since the last pass, or nullopt to suppress.
    std::optional<unsigned long> allow(const std::string& key,
                                       std::chrono::steady_clock::time_point now);

  private:
    struct Slot {
        std::chrono::steady_clock::time_point last;
        unsigned long suppressed = 0;
    };
    std::chrono::steady_clock::duration period_;
    std::mutex mutex_;
    std::map<std::string, Slot> slots_;
};

}  // namespace tg
