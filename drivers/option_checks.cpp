#include "option_checks.h"

namespace tg::drivers {

void require_absolute(const std::string& key, const std::string& path) {
    if (path.empty() || path.front() != '/') {
        throw OptionError(key, "'" + path + "' is not an absolute path (it must start with /)");
    }
}

std::optional<bool> optional_on_off(const Options& options, const std::string& key) {
    const std::string& text = options.string(key);
    if (text.empty()) return std::nullopt;
    if (auto b = parse_on_off(text)) return b;
    throw OptionError(key, "expected on or off, got '" + text + "'");
}

long long integer_in(const Options& options, const std::string& key, long long lo, long long hi) {
    const long long v = options.integer(key);
    if (v < lo || v > hi) {
        throw OptionError(key, "must be " + std::to_string(lo) + " to " + std::to_string(hi) +
                                   ", got " + std::to_string(v));
    }
    return v;
}

}  // namespace tg::drivers
