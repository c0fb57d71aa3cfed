// UTF-8 well-formedness (RFC 3629): what may go into an event's JSON, a topic
// or a log line as text. Sensor strings, MQTT payloads and config values are
// bytes from outside; they are checked here, in one place.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tg {

// Length (1-4) of the well-formed UTF-8 sequence `s` starts with, or 0 when it
// does not start with one (a stray continuation byte, an overlong form, a
// surrogate, a code point above U+10FFFF, a cut sequence, or `s` empty).
std::size_t utf8_sequence(std::string_view s);

bool valid_utf8(std::string_view s);

// `s` with every byte that is not part of a well-formed sequence replaced by
// U+FFFD, the replacement character.
std::string utf8_repaired(std::string_view s);

}  // namespace tg
