#include "log.h"

#include <atomic>
#include <cstdio>
#include <string>

namespace tg {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::mutex g_write_mutex;

const char* level_word(LogLevel l) {
    switch (l) {
        case LogLevel::Debug:
            return "DEBUG";
        case LogLevel::Info:
            return "INFO";
        case LogLevel::Warn:
            return "WARN";
        case LogLevel::Error:
            return "ERROR";
        case LogLevel::Off:
            break;
    }
    return "INFO";
}
}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view s) {
    if (s == "debug") return LogLevel::Debug;
    if (s == "info") return LogLevel::Info;
    if (s == "warn" || s == "warning") return LogLevel::Warn;
    if (s == "error") return LogLevel::Error;
    return std::nullopt;
}

void set_log_level(LogLevel level) {
    g_level.store(static_cast<int>(level));
}
LogLevel log_level() {
    return static_cast<LogLevel>(g_level.load());
}
bool log_enabled(LogLevel level) {
    return static_cast<int>(level) >= g_level.load();
}

void log(LogLevel level, std::string_view component, std::string_view message) {
    if (!log_enabled(level)) return;
    std::string line;
    line.reserve(component.size() + message.size() + 16);
    line += level_word(level);
    line += ' ';
    line += component;
    line += ": ";
    // One event, one line: embedded newlines would split it in journald.
    for (char c : message)
        line += (c == '\n' || c == '\r') ? ' ' : c;
    line += '\n';
    std::lock_guard lock(g_write_mutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

std::optional<unsigned long> RateLimiter::allow(const std::string& key,
                                                std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = slots_.try_emplace(key);
    Slot& s = it->second;
    if (inserted || now - s.last >= period_) {
        const unsigned long held = s.suppressed;
        s.last = now;
        s.suppressed = 0;
        return held;
    }
    ++s.suppressed;
    return std::nullopt;
}

}  // namespace tg
