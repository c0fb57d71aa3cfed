// `tidegate replay`, library part: golden files (events in, transitions out)
// under tests/rules/golden/<case>/, invalid lines, the virtual clock's ticks,
// and RFC 3339 parsing.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/units.h"
#include "engine_harness.h"
#include "rules/replay.h"

using namespace tg;
using namespace tg::rules;
using namespace tg::rules::testing;

namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct ReplayRun {
    int code = 0;
    std::string out;
    std::string err;
};

ReplayRun run(const std::string& rules_yaml, const std::string& events,
              std::chrono::milliseconds tick = std::chrono::seconds(1)) {
    const auto set = compile_or_fail(rules_yaml);
    std::istringstream in(events);
    std::ostringstream out, err;
    ReplayRun r;
    r.code = replay(in, "events.jsonl", *set, tick, out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
}

std::string reading(const std::string& source, const std::string& ts, const std::string& value) {
    return R"({"v":1,"type":"reading","source":")" + source + R"(","ts":")" + ts + R"(","value":)" +
           value + "}\n";
}

}  // namespace

TEST_CASE("golden replays produce exactly the expected transitions", "[rules][replay]") {
    const fs::path root = fs::path(TIDEGATE_SOURCE_DIR) / "tests" / "rules" / "golden";
    int cases = 0;
    for (const auto& entry : fs::directory_iterator(root)) {
        if (!entry.is_directory()) continue;
        const fs::path dir = entry.path();
        INFO("golden case " << dir.filename().string());
        ++cases;
        std::chrono::milliseconds tick{1000};
        if (fs::exists(dir / "tick")) {
            std::string text = read_text(dir / "tick");
            while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
                text.pop_back();
            const auto d = parse_duration(text);
            REQUIRE(d);
            tick = *d;
        }
        const auto set = compile_or_fail(std::vector<RuleSource>{
            {(dir / "rules.yaml").string(), read_text(dir / "rules.yaml")}});
        std::ifstream events(dir / "events.jsonl", std::ios::binary);
        std::ostringstream out, err;
        const int code = replay(events, (dir / "events.jsonl").string(), *set, tick, out, err);
        CHECK(err.str() == "");
        CHECK(code == 0);
        CHECK(out.str() == read_text(dir / "expected.jsonl"));
    }
    CHECK(cases >= 3);
}

TEST_CASE("an invalid line is reported with its place; the others still count", "[rules][replay]") {
    const std::string events =
        reading("t", "2026-11-26T10:00:00.000Z", "31") + "{not json\n" +
        R"({"type":"reading","source":"t","value":1})"
        "\n" +
        R"({"type":"reading","source":"t","ts":"yesterday","value":1})"
        "\n" +
        R"({"type":"reading","ts":"2026-11-26T10:00:01.000Z","value":1})"
        "\n" +
        R"({"type":"reading","source":"t","ts":"2026-11-26T10:00:01.000Z","value":[1]})"
        "\n" +
        "[1,2]\n" +
        R"({"type":"status","state":"online"})"
        "\n" +
        reading("t", "2026-11-26T10:00:02.000Z", "20");
    const ReplayRun r = run("rules:\n  - name: hot\n    when: t > 30\n", events);
    CHECK(r.code == 1);
    CHECK(
        r.out ==
        "{\"ts\":\"2026-11-26T10:00:00.000Z\",\"rule\":\"hot\",\"transition\":\"fired\",\"values\":"
        "{\"t\":31}}\n"
        "{\"ts\":\"2026-11-26T10:00:02.000Z\",\"rule\":\"hot\",\"transition\":\"cleared\","
        "\"values\":{\"t\":20}}\n");
    std::istringstream err(r.err);
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(err, line))
        lines.push_back(line);
    REQUIRE(lines.size() == 6);
    CHECK(lines[0].rfind("events.jsonl:2:1: error: invalid JSON: parse error at line 1, column 3",
                         0) == 0);
    CHECK(lines[1] ==
          "events.jsonl:3:1: error: reading without a valid 'ts' (RFC 3339, e.g. "
          "2026-11-26T17:15:53.123Z)");
    CHECK(lines[2] ==
          "events.jsonl:4:1: error: reading without a valid 'ts' (RFC 3339, e.g. "
          "2026-11-26T17:15:53.123Z)");
    CHECK(lines[3] == "events.jsonl:5:1: error: reading without a 'source'");
    CHECK(lines[4] ==
          "events.jsonl:6:1: error: reading without a 'value' (number, boolean or string)");
    CHECK(lines[5] == "events.jsonl:7:1: error: expected an event envelope (a JSON object)");
}

TEST_CASE("replay ticks at every multiple of the tick in [first ts, last ts]", "[rules][replay]") {
    const std::string rules = "rules:\n  - name: quiet\n    when: age(t) >= 3\n";
    SECTION("a tick at the first and last event's instants counts, after the reading") {
        const ReplayRun r = run(rules, reading("t", "2026-11-26T10:00:00.000Z", "1") +
                                           reading("x", "2026-11-26T10:00:03.000Z", "1"));
        CHECK(r.code == 0);
        CHECK(r.out ==
              "{\"ts\":\"2026-11-26T10:00:03.000Z\",\"rule\":\"quiet\",\"transition\":\"fired\","
              "\"values\":{\"t\":1}}\n");
    }
    SECTION("a reading at a tick's instant comes first") {
        const ReplayRun r = run(rules, reading("t", "2026-11-26T10:00:00.000Z", "1") +
                                           reading("t", "2026-11-26T10:00:03.000Z", "2"));
        CHECK(r.out == "");  // age is 0 when the 10:00:03 tick runs
    }
    SECTION("no tick after the last event") {
        const ReplayRun r = run(rules, reading("t", "2026-11-26T10:00:00.000Z", "1") +
                                           reading("x", "2026-11-26T10:00:02.999Z", "1"));
        CHECK(r.out == "");
    }
    SECTION("ticks fall on the epoch grid, not relative to the first event") {
        const ReplayRun r = run(rules,
                                reading("t", "2026-11-26T10:00:00.500Z", "1") +
                                    reading("x", "2026-11-26T10:00:04.000Z", "1"),
                                std::chrono::seconds(2));
        // Ticks at :02 (age 1.5) and :04 (age 3.5).
        CHECK(r.out ==
              "{\"ts\":\"2026-11-26T10:00:04.000Z\",\"rule\":\"quiet\",\"transition\":\"fired\","
              "\"values\":{\"t\":1}}\n");
    }
    SECTION("empty input") {
        const ReplayRun r = run(rules, "");
        CHECK(r.code == 0);
        CHECK(r.out == "");
    }
}

TEST_CASE("several inputs replay as one timeline", "[rules][replay]") {
    const auto set = compile_or_fail("rules:\n  - name: hot\n    when: t > 30\n    for: 5s\n");
    std::ostringstream out, err;
    Replayer r(set, std::chrono::seconds(1), out);
    std::istringstream a(reading("t", "2026-11-26T10:00:00.000Z", "31"));
    std::istringstream b(reading("t", "2026-11-26T10:00:10.000Z", "31"));
    CHECK(r.feed(a, "a.jsonl", err));
    CHECK(r.feed(b, "b.jsonl", err));
    r.finish();
    CHECK(out.str() ==
          "{\"ts\":\"2026-11-26T10:00:05.000Z\",\"rule\":\"hot\",\"transition\":\"fired\","
          "\"values\":{\"t\":31}}\n");
    CHECK(err.str() == "");
}

TEST_CASE("RFC 3339 timestamps", "[rules][replay]") {
    using std::chrono::milliseconds;
    const auto z = parse_rfc3339("2026-11-26T17:15:53.123Z");
    REQUIRE(z);
    CHECK(format_rfc3339_ms(*z) == "2026-11-26T17:15:53.123Z");
    CHECK(parse_rfc3339("2026-11-26T18:15:53.123+01:00") == z);
    CHECK(parse_rfc3339("2026-11-26T16:45:53.123-00:30") == z);
    CHECK(parse_rfc3339("2026-11-26t17:15:53.123z") == z);
    CHECK(parse_rfc3339("2026-11-26 17:15:53.123Z") == z);
    CHECK(parse_rfc3339("2026-11-26T17:15:53.123456789Z") == *z + std::chrono::nanoseconds(456789));
    CHECK(parse_rfc3339("1970-01-01T00:00:00Z") == WallTime{});
    CHECK(parse_rfc3339("2024-02-29T00:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-02-29T00:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-11-26T17:15:53"));
    CHECK_FALSE(parse_rfc3339("2026-11-26T17:15:53.Z"));
    CHECK_FALSE(parse_rfc3339("2026-11-26T24:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-13-01T00:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-11-26T17:15:53Zjunk"));
    CHECK_FALSE(parse_rfc3339("9999-12-31T23:59:59Z"));  // beyond 64-bit nanoseconds
    CHECK_FALSE(parse_rfc3339("yesterday"));
    CHECK_FALSE(parse_rfc3339(""));
}
