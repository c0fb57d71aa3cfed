// JsonObject: builds one flat JSON object as text, keys in insertion order.
// Numbers use format_number (shortest round-trip, no ".0"), which a generic
// JSON library does not guarantee; events are written on the hot path, so this
// also avoids building a DOM per reading.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "value.h"

namespace tg {

// Appends s to out as a JSON string literal (quotes included).
void append_json_string(std::string& out, std::string_view s);

class JsonObject {
  public:
    JsonObject() {
        out_.reserve(256);
        out_ += '{';
    }

    JsonObject& field(std::string_view key, std::string_view s);
    JsonObject& field(std::string_view key, const char* s) {
        return field(key, std::string_view(s));
    }
    JsonObject& field(std::string_view key, double d);
    JsonObject& field(std::string_view key, bool b);
    JsonObject& field(std::string_view key, std::int64_t i);
    JsonObject& field(std::string_view key, std::uint64_t u);
    JsonObject& field(std::string_view key, int i) { return field(key, std::int64_t{i}); }
    JsonObject& value_field(std::string_view key, const Value& v);
    JsonObject& null_field(std::string_view key);
    // `json` must already be valid JSON text (e.g. a nested object).
    JsonObject& raw_field(std::string_view key, std::string_view json);

    // Closes the object; the builder must not be used afterwards.
    std::string finish() &&;

  private:
    void key(std::string_view k);
    std::string out_;
    bool first_ = true;
};

}  // namespace tg
