// UTF-8 validation by the well-formed byte sequences of Unicode (Table 3-7):
// no overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
// Shared by the publish topic check and json(x), which must both decide on
// text that comes from sensors and may be anything.
#pragma once

#include <cstddef>
#include <string_view>

namespace tg::rules {

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

}  // namespace tg::rules
