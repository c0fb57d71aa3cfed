// The rendered publish topic check of SPEC §5.1 with hostile input: what a
// sensor's text can turn a topic template into must never reach the broker
// as a wildcard, NUL, ill-formed UTF-8 or a length MQTT cannot encode.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/utf8.h"
#include "rules/publish_topic.h"

using namespace tg;
using namespace tg::rules;
using Kind = TopicProblem::Kind;

namespace {

std::string bytes(std::initializer_list<unsigned> list) {
    std::string out;
    for (unsigned b : list)
        out += static_cast<char>(b);
    return out;
}

}  // namespace

TEST_CASE("well-formed topics pass, including UTF-8 and the longest MQTT allows",
          "[rules][topic]") {
    const std::vector<std::string> good{
        "alerts/ok",
        "a",
        "/",
        "//",
        "site/greenhouse-pi/alerts",
        "temp/°C/Zürich",
        "emoji/\xF0\x9F\x8C\xA1",         // U+1F321, four bytes
        bytes({0xF4, 0x8F, 0xBF, 0xBF}),  // U+10FFFF, the last code point
        bytes({0xED, 0x9F, 0xBF}),        // U+D7FF, just below the surrogates
        bytes({0xEE, 0x80, 0x80}),        // U+E000, just above them
        "$SYS-like/but/fine",
        "spaces are allowed",
        std::string(kMaxTopicBytes, 'x'),
    };
    for (const std::string& t : good) {
        INFO(show_topic(t));
        CHECK_FALSE(check_publish_topic(t).has_value());
    }
}

TEST_CASE("empty and overlong topics are refused", "[rules][topic]") {
    const auto empty = check_publish_topic("");
    REQUIRE(empty);
    CHECK(empty->kind == Kind::Empty);
    CHECK(empty->message == "is empty");

    const auto longest = check_publish_topic(std::string(kMaxTopicBytes + 1, 'x'));
    REQUIRE(longest);
    CHECK(longest->kind == Kind::TooLong);
    CHECK(longest->message == "is 65536 bytes long (MQTT allows at most 65535)");

    // 70 000 would wrap to 4 464 in the 16-bit length field.
    const auto wrapped = check_publish_topic("alerts/" + std::string(70'000, 'v'));
    REQUIRE(wrapped);
    CHECK(wrapped->kind == Kind::TooLong);
}

TEST_CASE("wildcards and NUL are refused where they stand", "[rules][topic]") {
    struct Row {
        std::string topic;
        Kind kind;
        std::size_t offset;
        std::string message;
    };
    const std::vector<Row> rows{
        {"+", Kind::Wildcard, 0, "contains the MQTT wildcard '+' at byte 0"},
        {"#", Kind::Wildcard, 0, "contains the MQTT wildcard '#' at byte 0"},
        {"a/#", Kind::Wildcard, 2, "contains the MQTT wildcard '#' at byte 2"},
        {"+/x", Kind::Wildcard, 0, "contains the MQTT wildcard '+' at byte 0"},
        {"alerts/x+y", Kind::Wildcard, 8, "contains the MQTT wildcard '+' at byte 8"},
        {"alerts/a#b", Kind::Wildcard, 8, "contains the MQTT wildcard '#' at byte 8"},
        {std::string("ab\0cd", 5), Kind::Nul, 2, "contains a NUL character at byte 2"},
        {std::string("\0", 1), Kind::Nul, 0, "contains a NUL character at byte 0"},
        {std::string("x/\0", 3), Kind::Nul, 2, "contains a NUL character at byte 2"},
    };
    for (const Row& r : rows) {
        INFO(show_topic(r.topic));
        const auto p = check_publish_topic(r.topic);
        REQUIRE(p);
        CHECK(p->kind == r.kind);
        CHECK(p->offset == r.offset);
        CHECK(p->message == r.message);
    }
}

TEST_CASE("ill-formed UTF-8 is refused with what is wrong", "[rules][topic]") {
    struct Row {
        std::string topic;
        std::size_t offset;
        std::string problem;
    };
    const std::vector<Row> rows{
        {"a/" + bytes({0x80}), 2, "a continuation byte without a lead byte"},
        {bytes({0xBF}) + "x", 0, "a continuation byte without a lead byte"},
        {bytes({0xC0, 0xAF}), 0, "an overlong encoding"},  // '/' in two bytes
        {bytes({0xC1, 0xBF}), 0, "an overlong encoding"},
        {bytes({0xE0, 0x80, 0xAF}), 0, "an overlong encoding"},
        {bytes({0xF0, 0x80, 0x80, 0xAF}), 0, "an overlong encoding"},
        {"s/" + bytes({0xED, 0xA0, 0x80}), 2, "a UTF-16 surrogate (U+D800..U+DFFF)"},
        {bytes({0xED, 0xBF, 0xBF}), 0, "a UTF-16 surrogate (U+D800..U+DFFF)"},
        {bytes({0xF4, 0x90, 0x80, 0x80}), 0, "a code point above U+10FFFF"},
        {bytes({0xF5, 0x80, 0x80, 0x80}), 0, "a byte that never occurs in UTF-8 (above U+10FFFF)"},
        {bytes({0xFF}), 0, "a byte that never occurs in UTF-8 (above U+10FFFF)"},
        {"x" + bytes({0xC3}), 1, "a truncated sequence"},
        {bytes({0xE2, 0x82}), 0, "a truncated sequence"},
        {bytes({0xF0, 0x9F, 0x8C}), 0, "a truncated sequence"},
        {bytes({0xE2, 0x82, 0x41}), 0, "a truncated sequence"},  // 'A' cuts it short
        {bytes({0xC3, 0xC3, 0xA9}), 0, "a truncated sequence"},
    };
    for (const Row& r : rows) {
        INFO(show_topic(r.topic));
        const auto p = check_publish_topic(r.topic);
        REQUIRE(p);
        CHECK(p->kind == Kind::BadUtf8);
        CHECK(p->offset == r.offset);
        CHECK(p->message ==
              "is not valid UTF-8 at byte " + std::to_string(r.offset) + " (" + r.problem + ")");
    }
}

TEST_CASE("the first problem is reported; the length comes before the bytes", "[rules][topic]") {
    CHECK(check_publish_topic("a+#")->offset == 1);
    CHECK(check_publish_topic(bytes({0x80}) + "#")->kind == Kind::BadUtf8);
    CHECK(check_publish_topic(std::string(kMaxTopicBytes + 1, '#'))->kind == Kind::TooLong);
    // check_topic_bytes (literal pieces of a template) ignores the length.
    CHECK_FALSE(check_topic_bytes("").has_value());
    CHECK_FALSE(check_topic_bytes(std::string(kMaxTopicBytes + 10, 'x')).has_value());
    CHECK(check_topic_bytes("a/#")->kind == Kind::Wildcard);
}

TEST_CASE("the maximal subparts of ill-formed sequences", "[rules][topic]") {
    // One U+FFFD per maximal subpart (Unicode's recommended practice), which
    // json() relies on.
    CHECK(decode_utf8(bytes({0xE2, 0x82}), 0).length == 2);
    CHECK(decode_utf8(bytes({0xE2, 0x82, 0x41}), 0).length == 2);
    CHECK(decode_utf8(bytes({0xED, 0xA0, 0x80}), 0).length == 1);
    CHECK(decode_utf8(bytes({0xF0, 0x9F, 0x8C}), 0).length == 3);
    CHECK(decode_utf8(bytes({0xC0, 0x80}), 0).length == 1);
    const Utf8Step euro = decode_utf8("\xE2\x82\xAC", 0);
    CHECK(euro.valid);
    CHECK(euro.length == 3);
    CHECK(euro.code_point == 0x20AC);
    CHECK(first_invalid_utf8("ok/°C") == std::string_view::npos);
    CHECK(first_invalid_utf8("ok/" + bytes({0xFE})) == 3);
}

TEST_CASE("topics are shown escaped and cut for dead letters", "[rules][topic]") {
    CHECK(show_topic("a/#") == "\"a/#\"");
    CHECK(show_topic("°C/\"q\"\\") == "\"°C/\\\"q\\\"\\\\\"");
    CHECK(show_topic(std::string("a\0b\n", 4)) == "\"a\\x00b\\x0a\"");
    CHECK(show_topic("x" + bytes({0xFF, 0xC3})) == "\"x\\xff\\xc3\"");
    const std::string huge(70'000, 'v');
    CHECK(show_topic(huge) == "\"" + std::string(100, 'v') + "\"… (70000 bytes)");
    // A character the cut would split is left out whole.
    const std::string accents = std::string(99, 'a') + "é";
    CHECK(show_topic(accents) == "\"" + std::string(99, 'a') + "\"… (101 bytes)");
}
