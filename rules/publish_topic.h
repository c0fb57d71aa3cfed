// The check a rendered `publish` topic passes before it is sent (SPEC §5.1):
// no '+', '#' or NUL, valid UTF-8, not empty, at most 65 535 bytes. A topic
// built from a sensor's text could otherwise make the broker close the
// connection (wildcards, NUL, bad UTF-8 are protocol errors) or overflow
// MQTT's 16-bit topic length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tg::rules {

// MQTT encodes a topic's length in 16 bits.
inline constexpr std::size_t kMaxTopicBytes = 65'535;

struct TopicProblem {
    enum class Kind : std::uint8_t { Empty, TooLong, Wildcard, Nul, BadUtf8 };
    Kind kind = Kind::Empty;
    std::size_t offset = 0;  // byte of the problem (Empty, TooLong: 0)
    // What is wrong, for messages: "contains the MQTT wildcard '#' at byte 2".
    std::string message;
};

// The rendered topic as a whole: nullopt when it may be published.
std::optional<TopicProblem> check_publish_topic(std::string_view topic);

// Only the bytes (wildcards, NUL, UTF-8), not the length: for the literal
// pieces of a topic template, which `check` verifies before anything renders.
std::optional<TopicProblem> check_topic_bytes(std::string_view text);

// A topic for a log line or dead letter: at most `max_bytes` of it, with
// quotes, backslashes, control characters and bytes that are not UTF-8
// written as escapes, and the full length when cut ("…" + " (70003 bytes)").
std::string show_topic(std::string_view topic, std::size_t max_bytes = 100);

}  // namespace tg::rules
