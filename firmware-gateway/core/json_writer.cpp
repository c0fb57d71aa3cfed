#include "json_writer.h"

#include <cstdio>

#include "utf8.h"

namespace tg {

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x80) {
            // Bytes from outside (a sensor's string, an MQTT payload) may
            // not be UTF-8; JSON text must be. Invalid bytes become U+FFFD.
            // One U+FFFD per maximal subpart, as Unicode recommends.
            const Utf8Step step = decode_utf8(s, i);
            out.append(step.valid ? s.substr(i, step.length) : std::string_view("\xEF\xBF\xBD"));
            i += step.length - 1;
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (u < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(u));
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

void JsonObject::key(std::string_view k) {
    if (!first_) out_ += ',';
    first_ = false;
    append_json_string(out_, k);
    out_ += ':';
}

JsonObject& JsonObject::field(std::string_view k, std::string_view s) {
    key(k);
    append_json_string(out_, s);
    return *this;
}

JsonObject& JsonObject::field(std::string_view k, double d) {
    key(k);
    out_ += format_number(d);
    return *this;
}

JsonObject& JsonObject::field(std::string_view k, bool b) {
    key(k);
    out_ += b ? "true" : "false";
    return *this;
}

JsonObject& JsonObject::field(std::string_view k, std::int64_t i) {
    key(k);
    out_ += std::to_string(i);
    return *this;
}

JsonObject& JsonObject::field(std::string_view k, std::uint64_t u) {
    key(k);
    out_ += std::to_string(u);
    return *this;
}

JsonObject& JsonObject::value_field(std::string_view k, const Value& v) {
    if (const double* d = std::get_if<double>(&v)) return field(k, *d);
    if (const bool* b = std::get_if<bool>(&v)) return field(k, *b);
    return field(k, std::string_view(std::get<std::string>(v)));
}

JsonObject& JsonObject::null_field(std::string_view k) {
    key(k);
    out_ += "null";
    return *this;
}

JsonObject& JsonObject::raw_field(std::string_view k, std::string_view json) {
    key(k);
    out_ += json;
    return *this;
}

std::string JsonObject::finish() && {
    out_ += '}';
    return std::move(out_);
}

}  // namespace tg
