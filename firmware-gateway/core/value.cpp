#include "value.h"

#include <charconv>
#include <system_error>

namespace tg {

ValueType type_of(const Value& v) {
    switch (v.index()) {
        case 0:
            return ValueType::Number;
        case 1:
            return ValueType::Boolean;
        default:
            return ValueType::String;
    }
}

std::string_view type_name(ValueType t) {
    switch (t) {
        case ValueType::Number:
            return "number";
        case ValueType::Boolean:
            return "boolean";
        case ValueType::String:
            return "string";
    }
    return "number";
}

std::string format_number(double d) {
    if (d == 0) return "0";  // also folds -0 into 0
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, d);
    if (res.ec != std::errc{}) return "null";
    return std::string(buf, res.ptr);
}

std::string to_text(const Value& v) {
    if (const double* d = std::get_if<double>(&v)) return format_number(*d);
    if (const bool* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
    return std::get<std::string>(v);
}

}  // namespace tg
