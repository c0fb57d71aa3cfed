// Parsing of the duration and size literals used in config and rule files.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tg {

// "250ms", "10s", "5m", "1h", "1d" and combinations in decreasing order
// ("1m30s", "1h30m"). A bare "0" is zero. On failure returns nullopt and, when
// `why` is given, a one-line reason.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text,
                                                        std::string* why = nullptr);

// "512KiB", "64MiB", "1GiB", "100B" or a bare byte count.
std::optional<std::uint64_t> parse_size(std::string_view text, std::string* why = nullptr);

// Shortest duration text that parse_duration reads back ("1m30s", "250ms").
std::string format_duration(std::chrono::milliseconds d);

}  // namespace tg
