// UTF-8 validation (core/utf8.h): RFC 3629 well-formed sequences only.
#include <catch2/catch.hpp>
#include <string>

#include "core/utf8.h"

namespace {
constexpr std::size_t kValid = std::string_view::npos;
}

TEST_CASE("well-formed UTF-8 passes", "[core][utf8]") {
    CHECK(tg::invalid_utf8_at("") == kValid);
    CHECK(tg::invalid_utf8_at("plain ascii\t\n") == kValid);
    CHECK(tg::invalid_utf8_at("\xC2\xB0"
                              "C") == kValid);                     // °C
    CHECK(tg::invalid_utf8_at("\xE2\x82\xAC") == kValid);          // €
    CHECK(tg::invalid_utf8_at("\xF0\x9F\x8C\xA1") == kValid);      // U+1F321
    CHECK(tg::invalid_utf8_at("\xF4\x8F\xBF\xBF") == kValid);      // U+10FFFF
    CHECK(tg::invalid_utf8_at(std::string("a\0b", 3)) == kValid);  // NUL is valid UTF-8
}

TEST_CASE("ill-formed UTF-8 is found at its first byte", "[core][utf8]") {
    CHECK(tg::invalid_utf8_at("ab\xB0"
                              "C") == 2);      // Latin-1 degree sign
    CHECK(tg::invalid_utf8_at("\xFF") == 0);   // never in UTF-8
    CHECK(tg::invalid_utf8_at("x\xC3") == 1);  // truncated at the end
    CHECK(tg::invalid_utf8_at("\xE2\x82"
                              "x") == 0);                 // truncated inside
    CHECK(tg::invalid_utf8_at("\xC0\xAF") == 0);          // overlong '/'
    CHECK(tg::invalid_utf8_at("\xE0\x80\xAF") == 0);      // overlong, 3 bytes
    CHECK(tg::invalid_utf8_at("\xF0\x80\x80\xAF") == 0);  // overlong, 4 bytes
    CHECK(tg::invalid_utf8_at("ok\xED\xA0\x80") == 2);    // surrogate U+D800
    CHECK(tg::invalid_utf8_at("\xF4\x90\x80\x80") == 0);  // above U+10FFFF
    CHECK(tg::invalid_utf8_at("\xF5\x80\x80\x80") == 0);
    CHECK(tg::invalid_utf8_at("\xE2\x28\xA1") == 0);  // bad continuation
}
