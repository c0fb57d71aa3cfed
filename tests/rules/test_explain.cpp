// `tidegate replay --explain RULE`: conditions rebuilt as text from the
// compiled program, each comparison with the values it saw, and the replay
// lines for the evaluations that changed (or would have changed) the state.
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "engine_harness.h"
#include "rules/explain.h"
#include "rules/replay.h"

using namespace tg;
using namespace tg::rules;
using namespace tg::rules::testing;

namespace {

std::string when_text(const std::string& expr) {
    const auto set = compile_or_fail("rules:\n  - name: r\n    when: '" + expr + "'\n");
    const Program& p = set->rules()[0].when;
    return program_text(p, p.root, set->sensors(), set->windows());
}

std::string replay_explained(const std::string& rules, const std::string& events,
                             const std::string& rule) {
    const auto set = compile_or_fail(rules);
    std::istringstream in(events);
    std::ostringstream out, err;
    Replayer r(set, std::chrono::seconds(1), out, rule);
    REQUIRE(r.feed(in, "e.jsonl", err));
    r.finish();
    return out.str();
}

std::string reading(const std::string& source, const std::string& ts, const std::string& value) {
    return R"({"type":"reading","source":")" + source + R"(","ts":"2026-01-01T00:)" + ts +
           R"(Z","value":)" + value + "}\n";
}

}  // namespace

TEST_CASE("explain: conditions read back like the rule file", "[rules][explain]") {
    CHECK(when_text("a.b > 30") == "a.b > 30");
    CHECK(when_text("30 < a") == "30 < a");
    CHECK(when_text("avg(t, 10m) > 3 and not door") == "avg(t, 10m) > 3 and not door");
    CHECK(when_text("(a + b) * 2 >= c - (d - 1)") == "(a + b) * 2 >= c - (d - 1)");
    CHECK(when_text("a > 1 or b > 2 and c > 3") == "a > 1 or b > 2 and c > 3");
    CHECK(when_text("(a > 1 or b > 2) and c > 3") == "(a > 1 or b > 2) and c > 3");
    CHECK(when_text("age(s) > 5m") == "age(s) > 300");
    CHECK(when_text("between(round(x, 1), -1, max(y, 2))") ==
          "between(round(x, 1), -1, max(y, 2))");
    CHECK(when_text("rate(f, 250ms) * 10m > 0.5") == "rate(f, 250ms) * 600 > 0.5");
    CHECK(when_text("mode == \"on\"") == "mode == \"on\"");
    CHECK(when_text("abs(-t) != 2") == "abs(-t) != 2");
}

TEST_CASE("explain: each comparison with its values, missing included", "[rules][explain]") {
    const auto set = compile_or_fail(
        "rules:\n  - name: r\n    when: t > 30 and avg(h, 15m) > 85\n  - name: d\n"
        "    when: door\n");
    std::vector<SensorData> sensors(set->sensors().size());
    std::vector<Window> windows;
    for (const WindowSpec& w : set->windows())
        windows.emplace_back(w.length_ns, w.extremes);
    EvalEnv env{sensors.data(), windows.data(), 0, 0, nullptr};
    const Program& p = set->rules()[0].when;
    CHECK(explain_condition(p, env, set->sensors(), set->windows()) ==
          "t > 30: missing > 30 = missing; avg(h, 15m) > 85: missing > 85 = missing; "
          "condition = missing");
    sensors[0] = SensorData{true, Value(31.25), 0};
    windows[0].add(0, 90, true);
    CHECK(explain_condition(p, env, set->sensors(), set->windows()) ==
          "t > 30: 31.25 > 30 = true; avg(h, 15m) > 85: 90 > 85 = true; condition = true");
    const Program& d = set->rules()[1].when;
    CHECK(explain_condition(d, env, set->sensors(), set->windows()) == "door = missing");
}

TEST_CASE("explain: replay prints the evaluations that matter, between the transitions",
          "[rules][explain]") {
    const std::string rules = R"(
rules:
  - name: hot
    when: t > 30
    for: 1m
    clear_when: t < 28
    cooldown: 5m
  - name: other
    when: t > 0
)";
    const std::string events = reading("t", "00:00", "29") + reading("t", "00:10", "31") +
                               reading("t", "01:00", "31.5") + reading("t", "01:30", "27") +
                               reading("t", "02:00", "32") + reading("t", "04:00", "32");
    const std::string out = replay_explained(rules, events, "hot");
    const std::string expected =
        "2026-01-01T00:00:00.000Z hot idle (reading): when t > 30: 29 > 30 = false\n"
        "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"rule\":\"other\",\"transition\":\"fired\","
        "\"values\":{\"t\":29}}\n"
        "2026-01-01T00:00:10.000Z hot idle -> pending (reading): when t > 30: 31 > 30 = true; "
        "for 1m: 0s elapsed\n"
        "2026-01-01T00:01:00.000Z hot pending (reading): when t > 30: 31.5 > 30 = true; for 1m: "
        "50s elapsed\n"
        "2026-01-01T00:01:10.000Z hot pending -> firing (tick): when t > 30: 31.5 > 30 = true; "
        "for 1m: 1m elapsed\n"
        "{\"ts\":\"2026-01-01T00:01:10.000Z\",\"rule\":\"hot\",\"transition\":\"fired\","
        "\"values\":{\"t\":31.5}}\n"
        "2026-01-01T00:01:30.000Z hot firing -> idle (reading): clear_when t < 28: 27 < 28 = "
        "true; cooldown: 4m40s left\n"
        "{\"ts\":\"2026-01-01T00:01:30.000Z\",\"rule\":\"hot\",\"transition\":\"cleared\","
        "\"values\":{\"t\":27}}\n"
        "2026-01-01T00:02:00.000Z hot idle -> pending (reading): when t > 30: 32 > 30 = true; "
        "for 1m: 0s elapsed; cooldown: 4m10s left\n"
        // Due at 00:03:00 but held back by the cooldown: shown once.
        "2026-01-01T00:03:00.000Z hot pending (tick): when t > 30: 32 > 30 = true; for 1m: 1m "
        "elapsed; cooldown: 3m10s left\n"
        "2026-01-01T00:04:00.000Z hot pending (reading): when t > 30: 32 > 30 = true; for 1m: 2m "
        "elapsed; cooldown: 2m10s left\n";
    CHECK(out == expected);
}

TEST_CASE("explain: without --explain the replay output is unchanged", "[rules][explain]") {
    const std::string rules = "rules:\n  - name: hot\n    when: t > 30\n";
    const std::string out = replay_explained(rules, reading("t", "00:00", "31"), "");
    CHECK(out ==
          "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"rule\":\"hot\",\"transition\":\"fired\","
          "\"values\":{\"t\":31}}\n");
}
