// Value: what a sensor reading carries (number, boolean or string), and the
// shortest-round-trip number formatting that envelopes and templates share.
#pragma once

#include <string>
#include <string_view>
#include <variant>

namespace tg {

enum class ValueType { Number, Boolean, String };

using Value = std::variant<double, bool, std::string>;

ValueType type_of(const Value& v);
std::string_view type_name(ValueType t);

// Shortest text that reads back to the same double; integral values carry no
// ".0" (35, 23.4, 0.1). NaN and infinities are never formatted: callers reject
// them as bad readings first.
std::string format_number(double d);

// Text form used in logs and templates: numbers as above, booleans as
// true/false, strings as they are.
std::string to_text(const Value& v);

}  // namespace tg
