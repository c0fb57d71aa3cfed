// UTF-8 validation for text that ends up in JSON envelopes and MQTT topics,
// both of which must be valid UTF-8 (RFC 8259, MQTT 3.1.1 §1.5.3).
#pragma once

#include <cstddef>
#include <string_view>

namespace tg {

// Offset of the first byte of `text` that does not start a well-formed UTF-8
// sequence (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF, no truncated sequence); std::string_view::npos when all is valid.
std::size_t invalid_utf8_at(std::string_view text);

}  // namespace tg
