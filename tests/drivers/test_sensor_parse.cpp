// The shared parsing helpers (drivers/sensor_parse.h), table driven: every
// format, field style and value type, and the reasons failures carry.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "drivers/driver.h"
#include "drivers/sensor_parse.h"

using tg::Value;
using tg::ValueType;
using tg::drivers::FieldParser;
using tg::drivers::Parsed;

namespace {

// One row: how the parser is built, the text, and the outcome.
struct Row {
    const char* format;  // number | json | kv | payload (MQTT: field = json_pointer)
    const char* field;
    ValueType type;
    const char* text;
    Value expect;        // when reason is empty
    const char* reason;  // "" = a value is expected
};

FieldParser build(const Row& r) {
    if (std::string(r.format) == "payload") return FieldParser::for_payload(r.field, r.type);
    return FieldParser(r.format, r.field, r.type);
}

const std::vector<Row> kRows = {
    // number: the whole text
    {"number", "", ValueType::Number, "21.5", 21.5, ""},
    {"number", "", ValueType::Number, "  -3.25\r\n", -3.25, ""},
    {"number", "", ValueType::Number, "+7", 7.0, ""},
    {"number", "", ValueType::Number, "1e3", 1000.0, ""},
    {"number", "", ValueType::Number, "48.3'C", 48.3, ""},
    {"number", "", ValueType::Number, "21.5 °C", 21.5, ""},
    {"number", "", ValueType::Number, "0.8563V", 0.8563, ""},
    {"number", "", ValueType::Number, "1e-999", 0.0, ""},
    {"number", "", ValueType::Number, "", 0.0, "parse"},
    {"number", "", ValueType::Number, "abc", 0.0, "parse"},
    {"number", "", ValueType::Number, "12abc34", 0.0, "parse"},
    {"number", "", ValueType::Number, "1,5", 0.0, "parse"},
    {"number", "", ValueType::Number, "0x1A", 0.0, "parse"},
    {"number", "", ValueType::Number, "21.5 22.5", 0.0, "parse"},
    {"number", "", ValueType::Number, "+-1", 0.0, "parse"},
    {"number", "", ValueType::Number, "\x01\x02\xff", 0.0, "parse"},
    {"number", "", ValueType::Number, "nan", 0.0, "bad_reading"},
    {"number", "", ValueType::Number, "-inf", 0.0, "bad_reading"},
    {"number", "", ValueType::Number, "1e999", 0.0, "bad_reading"},
    {"number", "", ValueType::Boolean, "1", true, ""},
    {"number", "", ValueType::Boolean, "0", false, ""},
    {"number", "", ValueType::Boolean, "ON", true, ""},
    {"number", "", ValueType::Boolean, "False", false, ""},
    {"number", "", ValueType::Boolean, "maybe", false, "parse"},
    {"number", "", ValueType::String, "  hello world \n", std::string("hello world"), ""},
    // json: whole document, key, pointer
    {"json", "", ValueType::Number, "21.5", 21.5, ""},
    {"json", "", ValueType::Number, "{\"t\":1}", 0.0, "parse"},
    {"json", "t", ValueType::Number, "{\"t\": 21.5, \"h\": 40}", 21.5, ""},
    {"json", "h", ValueType::Number, "{\"t\": 21.5, \"h\": 40}", 40.0, ""},
    {"json", "t", ValueType::Number, "{\"t\": \"21.5\"}", 21.5, ""},
    {"json", "x", ValueType::Number, "{\"t\": 21.5}", 0.0, "parse"},
    {"json", "t", ValueType::Number, "[1, 2]", 0.0, "parse"},
    {"json", "t", ValueType::Number, "{\"t\": null}", 0.0, "parse"},
    {"json", "t", ValueType::Number, "{\"t\": true}", 0.0, "parse"},
    {"json", "t", ValueType::Number, "{\"t\": \"nan\"}", 0.0, "bad_reading"},
    {"json", "t", ValueType::Number, "{\"t\": 21.5", 0.0, "parse"},
    {"json", "t", ValueType::Number, "garbage", 0.0, "parse"},
    {"json", "/env/temp", ValueType::Number, "{\"env\": {\"temp\": 19.25}}", 19.25, ""},
    {"json", "/list/1", ValueType::Number, "{\"list\": [5, 6, 7]}", 6.0, ""},
    {"json", "/list/9", ValueType::Number, "{\"list\": [5, 6, 7]}", 0.0, "parse"},
    {"json", "/a~1b", ValueType::Number, "{\"a/b\": 3}", 3.0, ""},
    {"json", "/env/x", ValueType::Number, "{\"env\": 1}", 0.0, "parse"},
    {"json", "open", ValueType::Boolean, "{\"open\": true}", true, ""},
    {"json", "open", ValueType::Boolean, "{\"open\": 0}", false, ""},
    {"json", "open", ValueType::Boolean, "{\"open\": \"OFF\"}", false, ""},
    {"json", "open", ValueType::Boolean, "{\"open\": [true]}", false, "parse"},
    {"json", "mode", ValueType::String, "{\"mode\": \"auto\"}", std::string("auto"), ""},
    {"json", "mode", ValueType::String, "{\"mode\": 2}", std::string("2"), ""},
    {"json", "mode", ValueType::String, "{\"mode\": false}", std::string("false"), ""},
    {"json", "mode", ValueType::String, "{\"mode\": {\"a\":1}}", std::string("{\"a\":1}"), ""},
    // kv: both styles and spacing
    {"kv", "t", ValueType::Number, "t=21.5 h=40", 21.5, ""},
    {"kv", "h", ValueType::Number, "t=21.5 h=40", 40.0, ""},
    {"kv", "h", ValueType::Number, "t:21.5,h:40", 40.0, ""},
    {"kv", "h", ValueType::Number, "t = 21.5; h = 40\r\n", 40.0, ""},
    {"kv", "temp", ValueType::Number, "temp=48.3'C", 48.3, ""},
    {"kv", "t", ValueType::Number, "OK t=1", 1.0, ""},
    {"kv", "h", ValueType::Number, "t=21.5", 0.0, "parse"},
    {"kv", "t", ValueType::Number, "t=abc", 0.0, "parse"},
    {"kv", "t", ValueType::Number, "t=inf", 0.0, "bad_reading"},
    {"kv", "t", ValueType::Number, "", 0.0, "parse"},
    {"kv", "door", ValueType::Boolean, "door=open", false, "parse"},
    {"kv", "door", ValueType::Boolean, "door=1 t=3", true, ""},
    {"kv", "at", ValueType::String, "at=12:30 t=1", std::string("12:30"), ""},
    // MQTT payloads
    {"payload", "", ValueType::Number, "21.5", 21.5, ""},
    {"payload", "", ValueType::Number, "\"21.5\"", 21.5, ""},
    {"payload", "", ValueType::Number, "21.5 °C", 21.5, ""},
    {"payload", "", ValueType::Number, "{\"temperature\": 21.5}", 0.0, "parse"},
    {"payload", "", ValueType::Number, "hello", 0.0, "parse"},
    {"payload", "", ValueType::Boolean, "ON", true, ""},
    {"payload", "", ValueType::Boolean, "off", false, ""},
    {"payload", "", ValueType::Boolean, "true", true, ""},
    {"payload", "", ValueType::Boolean, "\"OFF\"", false, ""},
    {"payload", "", ValueType::String, "hello there", std::string("hello there"), ""},
    {"payload", "", ValueType::String, "\"quoted\"", std::string("quoted"), ""},
    {"payload", "", ValueType::String, "{\"a\": 1}", std::string("{\"a\": 1}"), ""},
    {"payload", "/temperature", ValueType::Number, "{\"temperature\": 21.5, \"humidity\": 40}",
     21.5, ""},
    {"payload", "/humidity", ValueType::Number, "{\"temperature\": 21.5, \"humidity\": 40}", 40.0,
     ""},
    {"payload", "/humidity", ValueType::Number, "{\"temperature\": 21.5}", 0.0, "parse"},
    {"payload", "/humidity", ValueType::Number, "40", 0.0, "parse"},
    {"payload", "/humidity", ValueType::Number, "not json", 0.0, "parse"},
    {"payload", "/occupancy", ValueType::Boolean, "{\"occupancy\": true}", true, ""},
    {"payload", "/state", ValueType::Boolean, "{\"state\": \"ON\"}", true, ""},
    {"payload", "/state", ValueType::String, "{\"state\": \"ON\"}", std::string("ON"), ""},
};

}  // namespace

TEST_CASE("parsers: every row of the table", "[driver:parse]") {
    int i = 0;
    for (const Row& r : kRows) {
        INFO("row " << i++ << ": " << r.format << " field '" << r.field << "' type "
                    << tg::type_name(r.type) << " text '" << r.text << "'");
        const Parsed p = build(r).parse(r.text);
        if (std::string(r.reason).empty()) {
            INFO("failed: " << p.reason << ": " << p.detail);
            REQUIRE(p);
            REQUIRE(p.value->index() == r.expect.index());
            if (const double* d = std::get_if<double>(&*p.value)) {
                CHECK(*d == Approx(std::get<double>(r.expect)));
            } else {
                CHECK(*p.value == r.expect);
            }
        } else {
            CHECK_FALSE(p);
            CHECK(p.reason == r.reason);
            CHECK_FALSE(p.detail.empty());
        }
    }
}

TEST_CASE("parsers: failures say what was wrong", "[driver:parse]") {
    CHECK(FieldParser("kv", "h", ValueType::Number).parse("t=1").detail == "no key 'h' in 't=1'");
    CHECK(FieldParser("json", "h", ValueType::Number).parse("{\"t\":1}").detail ==
          "no field 'h' in the JSON");
    CHECK(FieldParser("json", "t", ValueType::Number).parse("{\"t\":true}").detail ==
          "field 't' is a boolean, not a number");
    CHECK(FieldParser("number", "", ValueType::Number).parse("abc").detail ==
          "'abc' is not a number");
    // Device garbage is shown safely: control bytes as '?', long text cut.
    CHECK(tg::drivers::excerpt("a\x01\x7f\xc3") == "a???");
    CHECK(tg::drivers::excerpt(std::string(100, 'x')) == std::string(60, 'x') + "…");
}

TEST_CASE("parsers: bad format and field options are refused", "[driver:parse]") {
    using tg::drivers::OptionError;
    auto key_of = [](auto make) -> std::string {
        try {
            make();
        } catch (const OptionError& e) {
            return e.key();
        }
        return "";
    };
    CHECK(key_of([] { FieldParser("xml", "", ValueType::Number); }) == "format");
    CHECK(key_of([] { FieldParser("number", "t", ValueType::Number); }) == "field");
    CHECK(key_of([] { FieldParser("kv", "", ValueType::Number); }) == "field");
    CHECK(key_of([] { FieldParser("kv", "a b", ValueType::Number); }) == "field");
    CHECK(key_of([] { FieldParser("kv", "a=b", ValueType::Number); }) == "field");
    CHECK(key_of([] { FieldParser("json", "/a~2", ValueType::Number); }) == "field");
    CHECK(key_of([] { FieldParser::for_payload("temperature", ValueType::Number); }) ==
          "json_pointer");
    CHECK(key_of([] { FieldParser::for_payload("/a~x", ValueType::Number); }) == "json_pointer");
    CHECK(key_of([] { FieldParser("json", "t", ValueType::Number); }).empty());
    CHECK(key_of([] { FieldParser("json", "/a/0", ValueType::Number); }).empty());
}

TEST_CASE("parsers: kv pairs in order", "[driver:parse]") {
    using Pairs = std::vector<std::pair<std::string, std::string>>;
    CHECK(tg::drivers::parse_kv("t=21.5 h=40") == Pairs{{"t", "21.5"}, {"h", "40"}});
    CHECK(tg::drivers::parse_kv("t:21.5,h:40") == Pairs{{"t", "21.5"}, {"h", "40"}});
    CHECK(tg::drivers::parse_kv(" a = 1 ; b: 2 ,c=3") == Pairs{{"a", "1"}, {"b", "2"}, {"c", "3"}});
    CHECK(tg::drivers::parse_kv("READY =5 x") == Pairs{{"READY", "5"}});
    CHECK(tg::drivers::parse_kv("=1 t=2") == Pairs{{"t", "2"}});
    CHECK(tg::drivers::parse_kv("").empty());
}
