// The event envelope of SPEC §4, checked by parsing it back with nlohmann_json.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "envelope.h"

using namespace tg;
using nlohmann::json;

namespace {
WallTime at_ms(long long ms) {
    return WallTime(std::chrono::milliseconds(ms));
}
}  // namespace

TEST_CASE("reading envelope has every field of SPEC 4 in order", "[envelope]") {
    const std::string text = reading_envelope("greenhouse-pi", 1042, "greenhouse.temp",
                                              at_ms(1795800953123), 23.4, "°C");
    CHECK(text == R"({"v":1,"id":"greenhouse-pi:1042","type":"reading","gateway":"greenhouse-pi",)"
                  R"("seq":1042,"source":"greenhouse.temp","ts":"2026-11-27T17:35:53.123Z",)"
                  R"("value":23.4,"unit":"°C"})");
    const json j = json::parse(text);
    CHECK(j["v"] == 1);
    CHECK(j["seq"].get<std::uint64_t>() == 1042);
    CHECK(j["unit"] == "°C");
}

TEST_CASE("integral numbers carry no .0 and others are shortest round-trip", "[envelope]") {
    auto value_text = [](double d) {
        const std::string t = reading_envelope("g", 1, "s", at_ms(0), d, "");
        const auto start = t.find("\"value\":") + 8;
        return t.substr(start, t.size() - 1 - start);
    };
    CHECK(value_text(35.0) == "35");
    CHECK(value_text(0.1) == "0.1");
    CHECK(value_text(-2.5) == "-2.5");
    CHECK(value_text(0.1 + 0.2) == "0.30000000000000004");
    CHECK(json::parse(reading_envelope("g", 1, "s", at_ms(0), 0.1 + 0.2, ""))["value"]
              .get<double>() == 0.1 + 0.2);
}

TEST_CASE("boolean and string values, and no unit when none is configured", "[envelope]") {
    json b = json::parse(reading_envelope("g", 7, "door.open", at_ms(0), true, ""));
    CHECK(b["value"] == true);
    CHECK_FALSE(b.contains("unit"));
    CHECK(b["id"] == "g:7");
    CHECK(b["ts"] == "1970-01-01T00:00:00.000Z");

    json s = json::parse(
        reading_envelope("g", 8, "meter.mode", at_ms(0), std::string("a \"q\"\n"), "x"));
    CHECK(s["value"] == "a \"q\"\n");
}

TEST_CASE("dead letter envelope adds reason, detail and suppressed", "[envelope]") {
    json d = json::parse(
        deadletter_envelope("g", 9, "tank.level", at_ms(1500), "out_of_range", "120 > 100", 3));
    CHECK(d["type"] == "deadletter");
    CHECK(d["source"] == "tank.level");
    CHECK(d["reason"] == "out_of_range");
    CHECK(d["detail"] == "120 > 100");
    CHECK(d["suppressed"] == 3);
    CHECK(d["ts"] == "1970-01-01T00:00:01.500Z");
    json n = json::parse(deadletter_envelope("g", 10, "x", at_ms(0), "parse", "bad", 0));
    CHECK_FALSE(n.contains("suppressed"));
}

TEST_CASE("control characters are escaped", "[envelope]") {
    std::string out;
    append_json_string(out, std::string("a\x01z\t", 4));
    CHECK(out == "\"a\\u0001z\\t\"");
}
