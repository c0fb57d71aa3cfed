#include "sensor_parse.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "driver.h"

namespace tg::drivers {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxUnitBytes = 16;
constexpr std::size_t kExcerptBytes = 60;

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_kv_delimiter(char c) {
    return is_space(c) || c == ',' || c == ';';
}
bool is_kv_separator(char c) {
    return c == '=' || c == ':';
}

std::string_view trim_view(std::string_view s) {
    while (!s.empty() && is_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_space(s.back()))
        s.remove_suffix(1);
    return s;
}

// What follows a number may be a unit ("'C", "°C", "V", "%"), nothing else.
bool is_unit(std::string_view rest) {
    if (rest.size() > kMaxUnitBytes) return false;
    for (char c : rest) {
        if (is_digit(c) || is_space(c)) return false;
    }
    return true;
}

// from_chars says "out of range" for both 1e999 and 1e-999; the exponent's
// sign tells overflow (infinite) from underflow (zero).
double out_of_range_value(std::string_view number) {
    const bool negative = !number.empty() && number.front() == '-';
    const std::size_t e = number.find_first_of("eE");
    const bool tiny = e != std::string_view::npos && e + 1 < number.size() && number[e + 1] == '-';
    if (tiny) return negative ? -0.0 : 0.0;
    return negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
}

const char* json_kind(const json& j) {
    switch (j.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::object:
            return "an object";
        case json::value_t::array:
            return "an array";
        case json::value_t::string:
            return "a string";
        case json::value_t::boolean:
            return "a boolean";
        default:
            return "a number";
    }
}

// A JSON value as a value of the sensor's type; `where` names it in messages.
Parsed from_json(const json& j, ValueType type, const std::string& where) {
    if (j.is_null()) return Parsed::fail("parse", where + " is null");
    switch (type) {
        case ValueType::Number:
            if (j.is_number()) return Parsed::ok(j.get<double>());
            if (j.is_string()) return parse_number(j.get_ref<const std::string&>());
            break;
        case ValueType::Boolean:
            if (j.is_boolean()) return Parsed::ok(j.get<bool>());
            if (j.is_number()) return Parsed::ok(j.get<double>() != 0);
            if (j.is_string()) return parse_plain(j.get_ref<const std::string&>(), type);
            break;
        case ValueType::String:
            if (j.is_string()) return Parsed::ok(j.get<std::string>());
            if (j.is_boolean()) return Parsed::ok(std::string(j.get<bool>() ? "true" : "false"));
            if (j.is_number()) return Parsed::ok(format_number(j.get<double>()));
            return Parsed::ok(j.dump());
    }
    return Parsed::fail("parse",
                        where + " is " + json_kind(j) + ", not a " + std::string(type_name(type)));
}

}  // namespace

std::string trim(std::string_view s) {
    return std::string(trim_view(s));
}

std::string excerpt(std::string_view text) {
    std::string out;
    const std::size_t n = std::min(text.size(), kExcerptBytes);
    out.reserve(n + 3);
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        out += (c < 0x20 || c >= 0x7f) ? '?' : static_cast<char>(c);
    }
    if (text.size() > n) out += "…";
    return out;
}

Parsed parse_number(std::string_view text) {
    const std::string_view s = trim_view(text);
    if (s.empty()) return Parsed::fail("parse", "empty text where a number was expected");
    std::string_view body = s;
    // from_chars takes no '+'; a lone leading one is common enough to accept.
    if (body.front() == '+' && body.size() > 1 && body[1] != '-' && body[1] != '+') {
        body.remove_prefix(1);
    }
    double d = 0;
    const char* const end = body.data() + body.size();
    auto [ptr, ec] = std::from_chars(body.data(), end, d);
    if (ec == std::errc::invalid_argument) {
        return Parsed::fail("parse", "'" + excerpt(s) + "' is not a number");
    }
    if (ec == std::errc::result_out_of_range) {
        d = out_of_range_value(
            std::string_view(body.data(), static_cast<std::size_t>(ptr - body.data())));
    }
    if (!is_unit(trim_view(std::string_view(ptr, static_cast<std::size_t>(end - ptr))))) {
        return Parsed::fail("parse", "'" + excerpt(s) + "' is not a number");
    }
    if (!std::isfinite(d)) {
        return Parsed::fail("bad_reading", "'" + excerpt(s) + "' is not a finite number");
    }
    return Parsed::ok(d);
}

Parsed parse_plain(std::string_view text, ValueType type) {
    const std::string_view s = trim_view(text);
    switch (type) {
        case ValueType::Number:
            return parse_number(s);
        case ValueType::Boolean: {
            if (auto b = parse_on_off(s)) return Parsed::ok(*b);
            Parsed n = parse_number(s);
            if (n) return Parsed::ok(std::get<double>(*n.value) != 0);
            if (n.reason == "bad_reading") return n;
            return Parsed::fail(
                "parse",
                "'" + excerpt(s) + "' is not a boolean (on, off, true, false or a number)");
        }
        case ValueType::String:
            return Parsed::ok(std::string(s));
    }
    return Parsed::fail("parse", "unknown value type");
}

std::vector<std::pair<std::string, std::string>> parse_kv(std::string_view line) {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t i = 0;
    const std::size_t n = line.size();
    while (i < n) {
        while (i < n && is_kv_delimiter(line[i]))
            ++i;
        const std::size_t key_start = i;
        while (i < n && !is_kv_delimiter(line[i]) && !is_kv_separator(line[i]))
            ++i;
        const std::string_view key = line.substr(key_start, i - key_start);
        std::size_t j = i;
        while (j < n && (line[j] == ' ' || line[j] == '\t'))
            ++j;
        if (key.empty() || j >= n || !is_kv_separator(line[j])) {
            // A token without a separator ("OK", a unit after a space): skip it.
            if (key.empty() && i < n && is_kv_separator(line[i])) ++i;
            continue;
        }
        ++j;
        while (j < n && (line[j] == ' ' || line[j] == '\t'))
            ++j;
        const std::size_t value_start = j;
        while (j < n && !is_kv_delimiter(line[j]))
            ++j;
        out.emplace_back(std::string(key), std::string(line.substr(value_start, j - value_start)));
        i = j;
    }
    return out;
}

FieldParser::FieldParser(const std::string& format, const std::string& field, ValueType type)
    : mode_(Mode::Number), field_(field), type_(type) {
    if (format == "number") {
        if (!field.empty()) {
            throw OptionError("field", "'field' is only used with format json or kv");
        }
        mode_ = Mode::Number;
    } else if (format == "json") {
        if (field.empty()) {
            mode_ = Mode::JsonWhole;
        } else if (field.front() == '/') {
            try {
                json::json_pointer check(field);
            } catch (const json::exception& e) {
                throw OptionError("field", "invalid JSON pointer '" + field +
                                               "' (use /key/sub or /list/0; ~1 for '/' and "
                                               "~0 for '~' in keys)");
            }
            mode_ = Mode::JsonPointer;
        } else {
            mode_ = Mode::JsonKey;
        }
    } else if (format == "kv") {
        if (field.empty()) {
            throw OptionError("field", "format kv needs 'field': the key, e.g. t for t=21.5");
        }
        for (char c : field) {
            if (is_kv_delimiter(c) || is_kv_separator(c)) {
                throw OptionError("field", "a kv key cannot contain spaces, ',', ';', '=' or ':'");
            }
        }
        mode_ = Mode::Kv;
    } else {
        throw OptionError("format",
                          "unknown format '" + format + "' (expected number, json or kv)");
    }
}

FieldParser FieldParser::for_payload(const std::string& json_pointer, ValueType type) {
    if (json_pointer.empty()) return FieldParser(Mode::Payload, "", type);
    if (json_pointer.front() != '/') {
        throw OptionError("json_pointer", "a JSON pointer starts with '/', e.g. /temperature");
    }
    try {
        json::json_pointer check(json_pointer);
    } catch (const json::exception& e) {
        throw OptionError("json_pointer", "invalid JSON pointer '" + json_pointer +
                                              "' (~1 stands for '/' and ~0 for '~' in keys)");
    }
    return FieldParser(Mode::JsonPointer, json_pointer, type);
}

Parsed FieldParser::parse(std::string_view text) const {
    switch (mode_) {
        case Mode::Number:
            return parse_plain(text, type_);
        case Mode::Kv: {
            for (const auto& [key, value] : parse_kv(text)) {
                if (key == field_) return parse_plain(value, type_);
            }
            return Parsed::fail("parse",
                                "no key '" + field_ + "' in '" + excerpt(trim_view(text)) + "'");
        }
        case Mode::Payload: {
            const std::string_view s = trim_view(text);
            const json j = json::parse(s, nullptr, /*allow_exceptions=*/false);
            if (j.is_discarded()) return parse_plain(s, type_);
            if (j.is_structured()) {
                if (type_ == ValueType::String) return Parsed::ok(std::string(s));
                return Parsed::fail("parse", std::string("payload is ") + json_kind(j) +
                                                 ": set json_pointer to pick a value, e.g. "
                                                 "/temperature");
            }
            return from_json(j, type_, "payload");
        }
        case Mode::JsonWhole:
        case Mode::JsonKey:
        case Mode::JsonPointer:
            break;
    }
    const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
        return Parsed::fail("parse", "not valid JSON: '" + excerpt(trim_view(text)) + "'");
    }
    if (mode_ == Mode::JsonWhole) {
        if (j.is_structured() && type_ != ValueType::String) {
            return Parsed::fail("parse", std::string("the JSON is ") + json_kind(j) +
                                             ": set 'field' to pick a value");
        }
        return from_json(j, type_, "the JSON value");
    }
    if (mode_ == Mode::JsonKey) {
        if (!j.is_object()) {
            return Parsed::fail("parse", std::string("the JSON is ") + json_kind(j) +
                                             ", not an object with '" + field_ + "'");
        }
        const auto it = j.find(field_);
        if (it == j.end()) return Parsed::fail("parse", "no field '" + field_ + "' in the JSON");
        return from_json(*it, type_, "field '" + field_ + "'");
    }
    try {
        return from_json(j.at(json::json_pointer(field_)), type_, "'" + field_ + "'");
    } catch (const json::exception&) {
        return Parsed::fail("parse", "nothing at '" + field_ + "' in the JSON");
    }
}

}  // namespace tg::drivers
