// UTF-8 well-formedness and the JSON writer's handling of bytes that are not.
#include <catch2/catch.hpp>

#include <string>

#include "core/json_writer.h"
#include "core/utf8.h"

using namespace tg;

TEST_CASE("well-formed UTF-8 is accepted", "[utf8]") {
    CHECK(valid_utf8(""));
    CHECK(valid_utf8("plain ascii / topic"));
    CHECK(
        valid_utf8("\xC2\xB0"
                   "C"));                       // °C
    CHECK(valid_utf8("\xE2\x82\xAC"));          // €
    CHECK(valid_utf8("\xF0\x9F\x8C\xA1"));      // U+1F321
    CHECK(valid_utf8("\xF4\x8F\xBF\xBF"));      // U+10FFFF, the last code point
    CHECK(valid_utf8("\xED\x9F\xBF"));          // U+D7FF, just below the surrogates
    CHECK(valid_utf8(std::string("a\0b", 3)));  // NUL is UTF-8 (topics refuse it elsewhere)
    CHECK(decode_utf8("\xE2\x82\xAC rest", 0).length == 3);
    CHECK(decode_utf8("\xE2\x82\xAC rest", 0).code_point == U'\u20AC');
}

TEST_CASE("ill-formed UTF-8 is refused", "[utf8]") {
    CHECK_FALSE(valid_utf8("\x80"));              // a lone continuation byte
    CHECK_FALSE(valid_utf8("caf\xC3"));           // cut at the end
    CHECK_FALSE(valid_utf8("\xC3("));             // bad continuation
    CHECK_FALSE(valid_utf8("\xC0\xAF"));          // overlong '/'
    CHECK_FALSE(valid_utf8("\xE0\x80\xAF"));      // overlong, 3 bytes
    CHECK_FALSE(valid_utf8("\xF0\x80\x80\xAF"));  // overlong, 4 bytes
    CHECK_FALSE(valid_utf8("\xED\xA0\x80"));      // U+D800, a surrogate
    CHECK_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
    CHECK_FALSE(valid_utf8("\xF5\x80\x80\x80"));  // no such lead byte
    CHECK_FALSE(valid_utf8("\xFF\xFE"));
    CHECK_FALSE(decode_utf8("\xE2\x82", 0).valid);
    CHECK(first_invalid_utf8("ok\xC0\xAF") == 2);
}

TEST_CASE("repair replaces each bad byte with U+FFFD and keeps the rest", "[utf8]") {
    CHECK(utf8_repaired("caf\xC3\xA9") == "caf\xC3\xA9");
    CHECK(utf8_repaired("a\xFF"
                        "b") ==
          "a\xEF\xBF\xBD"
          "b");
    CHECK(utf8_repaired("\xE2\x82") == "\xEF\xBF\xBD");  // one per maximal subpart
    CHECK(valid_utf8(utf8_repaired("\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80")));
}

TEST_CASE("a JSON string from bytes that are not UTF-8 is still valid JSON text", "[utf8][json]") {
    std::string out;
    append_json_string(out, "caf\xC3\xA9 \xFF\xFE \"q\"\n\x01");
    CHECK(out == "\"caf\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD \\\"q\\\"\\n\\u0001\"");
    CHECK(valid_utf8(out));
    JsonObject o;
    o.value_field("value", Value(std::string("\xED\xA0\x80")));
    CHECK(std::move(o).finish() == "{\"value\":\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"}");
}

TEST_CASE("ill-formed UTF-8 is found at its first byte", "[utf8]") {
    constexpr std::size_t kValid = std::string_view::npos;
    CHECK(first_invalid_utf8("plain ascii\t\n") == kValid);
    CHECK(first_invalid_utf8("ab\xB0"
                             "C") == 2);      // a Latin-1 degree sign
    CHECK(first_invalid_utf8("x\xC3") == 1);  // truncated at the end
    CHECK(first_invalid_utf8("\xE2\x82"
                             "x") == 0);  // truncated inside
    CHECK(first_invalid_utf8("ok\xED\xA0\x80") == 2);
    CHECK(first_invalid_utf8("\xE2\x28\xA1") == 0);  // bad continuation
    const char* problem = "";
    CHECK(first_invalid_utf8("ok\xED\xA0\x80", &problem) == 2);
    CHECK(std::string(problem) == "a UTF-16 surrogate (U+D800..U+DFFF)");
}

TEST_CASE("a cut for display never ends inside a character", "[utf8]") {
    CHECK(utf8_cut("short", 80) == 5);
    CHECK(utf8_cut("ab\xE2\x82\xAC", 3) == 2);  // "€" would be split: cut before it
    CHECK(utf8_cut("ab\xE2\x82\xAC"
                   "cd",
                   5) == 5);
    CHECK(utf8_cut("abc", 0) == 0);
}
