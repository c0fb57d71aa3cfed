// Turning device text into sensor values, in one place: the `number`, `json`
// and `kv` formats of line and program drivers (serial, command) and MQTT
// payloads, so every driver reads "21.5", {"t":21.5} and t=21.5 alike and
// fails with the same reasons ("parse" for unreadable text, "bad_reading" for
// NaN or infinity).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/value.h"

namespace tg::drivers {

// One value, or why there is none.
struct Parsed {
    std::optional<Value> value;
    std::string reason;  // on failure: a machine word, "parse" or "bad_reading"
    std::string detail;  // on failure: human text

    static Parsed ok(Value v) { return Parsed{std::move(v), {}, {}}; }
    static Parsed fail(std::string reason, std::string detail) {
        return Parsed{std::nullopt, std::move(reason), std::move(detail)};
    }
    explicit operator bool() const { return value.has_value(); }
};

// A number, optionally surrounded by whitespace and followed by a unit of up
// to 16 characters without digits ("48.3'C", "21.5 °C", "0.8563V"). NaN and
// infinities (also from overflow, "1e999") are bad readings.
Parsed parse_number(std::string_view text);

// A plain value of the given type: a number as above; a boolean as on, off,
// true or false in any case, or a number (0 = false, else true); a string is
// the text without surrounding whitespace.
Parsed parse_plain(std::string_view text, ValueType type);

// The key/value pairs of a kv line in order: pairs separated by whitespace,
// ',' or ';', key and value by '=' or ':' ("t=21.5 h=40", "t:21.5,h:40",
// "t = 21.5; h = 40"). Tokens without a separator are skipped.
std::vector<std::pair<std::string, std::string>> parse_kv(std::string_view line);

// `s` without leading and trailing whitespace (spaces, tabs, CR, LF).
std::string trim(std::string_view s);

// Device text made safe and short for a log line or dead letter: at most 60
// bytes ("…" appended when cut), control and non-ASCII bytes as '?'.
std::string excerpt(std::string_view text);

// Picks one sensor's value out of a line, a program's output or an MQTT
// payload. Built once per sensor from its options (validated then, no I/O).
class FieldParser {
  public:
    // format: number (the whole text is the value), json (field: a top-level
    // key, or a JSON pointer starting with '/'; empty: the whole document,
    // which must then be a scalar) or kv (field: the key, required).
    // Throws OptionError naming "format" or "field".
    FieldParser(const std::string& format, const std::string& field, ValueType type);

    // For MQTT payloads: with a JSON pointer the payload must be JSON and the
    // pointer selects the value; without one the payload is a JSON scalar or
    // plain text. Throws OptionError naming "json_pointer".
    static FieldParser for_payload(const std::string& json_pointer, ValueType type);

    Parsed parse(std::string_view text) const;

  private:
    enum class Mode { Number, JsonWhole, JsonKey, JsonPointer, Kv, Payload };
    FieldParser(Mode mode, std::string field, ValueType type)
        : mode_(mode), field_(std::move(field)), type_(type) {}

    Mode mode_;
    std::string field_;
    ValueType type_;
};

}  // namespace tg::drivers
