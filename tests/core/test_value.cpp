// Value helpers: shortest round-trip number text (SPEC §4), text forms and
// type names.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "core/value.h"

TEST_CASE("format_number writes the shortest text that reads back", "[core]") {
    CHECK(tg::format_number(35) == "35");
    CHECK(tg::format_number(23.4) == "23.4");
    CHECK(tg::format_number(0.1) == "0.1");
    CHECK(tg::format_number(-0.5) == "-0.5");
    CHECK(tg::format_number(1e21) == "1e+21");
    CHECK(tg::format_number(1e-7) == "1e-07");
    CHECK(tg::format_number(-0.0) == "0");
    CHECK(tg::format_number(0.0) == "0");
    CHECK(tg::format_number(-40) == "-40");

    const double tricky = 0.1 + 0.2;  // 0.30000000000000004
    const std::string text = tg::format_number(tricky);
    CHECK(text == "0.30000000000000004");
    CHECK(std::strtod(text.c_str(), nullptr) == tricky);

    for (const double d : {1.0 / 3, 2.0 / 3, 1e300, 5e-324, 123456.789, -98.76e-5}) {
        const std::string t = tg::format_number(d);
        INFO(t);
        CHECK(std::strtod(t.c_str(), nullptr) == d);
        CHECK(t.find(".0e") == std::string::npos);
    }
}

TEST_CASE("to_text", "[core]") {
    CHECK(tg::to_text(tg::Value(23.5)) == "23.5");
    CHECK(tg::to_text(tg::Value(35.0)) == "35");
    CHECK(tg::to_text(tg::Value(true)) == "true");
    CHECK(tg::to_text(tg::Value(false)) == "false");
    CHECK(tg::to_text(tg::Value(std::string("open"))) == "open");
    CHECK(tg::to_text(tg::Value(std::string())) == "");
}

TEST_CASE("value types and their names", "[core]") {
    CHECK(tg::type_of(tg::Value(1.5)) == tg::ValueType::Number);
    CHECK(tg::type_of(tg::Value(false)) == tg::ValueType::Boolean);
    CHECK(tg::type_of(tg::Value(std::string("x"))) == tg::ValueType::String);
    CHECK(tg::type_name(tg::ValueType::Number) == "number");
    CHECK(tg::type_name(tg::ValueType::Boolean) == "boolean");
    CHECK(tg::type_name(tg::ValueType::String) == "string");
}
