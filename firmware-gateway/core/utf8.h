// UTF-8 well-formedness by the byte sequences of Unicode (Table 3-7, RFC
// 3629): no overlong forms, no surrogates (U+D800..U+DFFF), nothing above
// U+10FFFF, no truncated sequence. Text from outside -- sensor strings, MQTT
// payloads, config values, rendered topics -- is checked here, in one place,
// before it goes into JSON, a topic or a message.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tg {

struct Utf8Step {
    bool valid = false;
    // Bytes this step covers: the whole character when valid, else the
    // maximal subpart of a well-formed sequence (at least one byte), which is
    // what one U+FFFD replaces in the Unicode recommended practice.
    std::size_t length = 1;
    char32_t code_point = 0;   // when valid
    const char* problem = "";  // when not: a short phrase for messages
};

// Decodes the character starting at byte `at` (< text.size()).
Utf8Step decode_utf8(std::string_view text, std::size_t at);

// Byte offset of the first ill-formed sequence, or npos when `text` is valid.
std::size_t first_invalid_utf8(std::string_view text, const char** problem = nullptr);

inline bool valid_utf8(std::string_view text) {
    return first_invalid_utf8(text) == std::string_view::npos;
}

// The length of the longest prefix of `text` of at most `max` bytes that
// does not end inside a UTF-8 sequence: where to cut a long value for a log
// line or a message.
std::size_t utf8_cut(std::string_view text, std::size_t max);

// `text` with each ill-formed sequence (maximal subpart) replaced by U+FFFD.
std::string utf8_repaired(std::string_view text);

}  // namespace tg
