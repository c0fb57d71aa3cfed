// Rule state is data: export/import across a restart (the monotonic clock
// starts over), its JSON form, and reloads that keep unchanged rules' state
// and windows while clearing firing rules that were removed or changed.
#include <catch2/catch.hpp>

#include "engine_harness.h"

using namespace tg;
using namespace tg::rules;
using namespace tg::rules::testing;

namespace {

// `h` is the same rules in a new process: a fresh virtual clock whose
// monotonic time starts at zero again (a reboot); the wall clock is a day later.
void restore(Harness& h, const EngineState& saved) {
    h.clock.set_wall(kStartWall + std::chrono::hours(24));
    const std::string text = state_to_json(saved);
    const auto back = state_from_json(text);
    REQUIRE(back);
    const auto ts = h.engine->import_state(*back, h.clock.monotonic(), h.clock.wall());
    CHECK(ts.empty());
}

}  // namespace

TEST_CASE("a firing rule resumes as firing after a restart and does not fire again",
          "[rules][state]") {
    const auto rules = compile_or_fail("rules:\n  - name: hot\n    when: t > 30\n");
    Harness a(rules);
    a.at(5000);  // long uptime: a large monotonic time
    CHECK(a.read("t", 31.0) == "fired:hot");
    const EngineState saved = a.engine->export_state(a.clock.monotonic());

    Harness b(rules);
    restore(b, saved);
    CHECK(b.state("hot") == RuleState::Firing);
    CHECK(b.read_at(1, "t", 32.0) == "");
    CHECK(b.read_at(2, "t", 20.0) == "cleared:hot");
}

TEST_CASE("a pending for continues after a restart", "[rules][state]") {
    const auto rules = compile_or_fail("rules:\n  - name: hot\n    when: t > 30\n    for: 2m\n");
    Harness a(rules);
    CHECK(a.read_at(1000, "t", 31.0) == "");
    CHECK(a.tick_at(1090) == "");
    const EngineState saved = a.engine->export_state(a.clock.monotonic());
    REQUIRE(saved.rules.size() == 1);
    CHECK(saved.rules[0].pending_for == std::chrono::seconds(90));

    Harness b(rules);
    restore(b, saved);
    CHECK(b.state("hot") == RuleState::Pending);
    CHECK(b.tick_at(29.999) == "");
    CHECK(b.tick_at(30) == "fired:hot");
}

TEST_CASE("sensor values survive a restart with their age", "[rules][state]") {
    const auto rules = compile_or_fail(
        "rules:\n  - name: silent\n    when: age(t) > 60\n"
        "  - name: hot\n    when: t > 30 and mode == \"auto\"\n");
    Harness a(rules);
    CHECK(a.read_at(100, "mode", std::string("auto")) == "");
    CHECK(a.read_at(130, "t", 31.0) == "fired:hot");
    a.at(150);
    const EngineState saved = a.engine->export_state(a.clock.monotonic());

    Harness b(rules);
    restore(b, saved);
    CHECK(b.state("hot") == RuleState::Firing);
    CHECK(b.tick_at(40) == "");  // t was 20 s old at the export: 60 s now
    CHECK(b.tick_at(41) == "fired:silent");
    CHECK(b.read_at(42, "mode", std::string("manual")) == "cleared:hot");
    CHECK(b.last.at(0).values_json() == R"({"t":31,"mode":"manual"})");
}

TEST_CASE("the last firing survives a restart, so does the cooldown", "[rules][state]") {
    const auto rules =
        compile_or_fail("rules:\n  - name: cool\n    when: t > 30\n    cooldown: 10m\n");
    Harness a(rules);
    CHECK(a.read_at(0, "t", 31.0) == "fired:cool");
    CHECK(a.read_at(60, "t", 20.0) == "cleared:cool");
    a.at(100);
    const EngineState saved = a.engine->export_state(a.clock.monotonic());
    CHECK(saved.rules.at(0).since_last_firing == std::chrono::seconds(100));

    Harness b(rules);
    restore(b, saved);
    CHECK(b.read_at(100, "t", 31.0) == "");  // cooldown ends 500 s into the new run
    CHECK(b.tick_at(499.9) == "");
    CHECK(b.tick_at(500) == "fired:cool");
}

TEST_CASE("restored state of a changed or removed firing rule clears it", "[rules][state]") {
    Harness a(
        "rules:\n  - name: hot\n    severity: critical\n    when: t > 30\n"
        "  - name: gone\n    when: t > 1\n");
    CHECK(a.read("t", 31.0) == "fired:hot fired:gone");
    const EngineState saved = a.engine->export_state(a.clock.monotonic());

    Harness b("rules:\n  - name: hot\n    when: t > 35\n    on_clear:\n      - log: bye\n");
    const auto ts = b.engine->import_state(saved, b.clock.monotonic(), b.clock.wall());
    REQUIRE(summary(ts) == "cleared:hot cleared:gone");
    CHECK(std::get<LogAction>(ts[0].actions.at(0)).message == "bye");
    CHECK(ts[1].severity == RuleSeverity::Warning);
    CHECK(ts[1].actions.empty());
    CHECK(b.state("hot") == RuleState::Idle);
    CHECK(b.read("t", 36.0) == "fired:hot");
}

TEST_CASE("engine state as JSON text", "[rules][state]") {
    EngineState s;
    RuleStateRecord r;
    r.name = "hot";
    r.definition = "when=(t > 30)\nfor=2m\nclear_when=\ncooldown=0s";
    r.state = RuleState::Pending;
    r.severity = RuleSeverity::Critical;
    r.pending_for = std::chrono::milliseconds(90'500);
    r.since_last_firing = std::chrono::milliseconds(3'600'000);
    s.rules.push_back(r);
    s.sensors.push_back(SensorRecord{"t", 23.4, std::chrono::milliseconds(1500)});
    s.sensors.push_back(SensorRecord{"door.open", true, std::chrono::milliseconds(0)});
    s.sensors.push_back(SensorRecord{"mode", std::string("auto"), std::chrono::milliseconds(7)});
    const std::string text = state_to_json(s);
    CHECK(
        text ==
        R"({"rules":[{"definition":"when=(t > 30)\nfor=2m\nclear_when=\ncooldown=0s",)"
        R"("name":"hot","pending_ms":90500,"severity":"critical","since_last_firing_ms":3600000,)"
        R"("state":"pending"}],"sensors":[{"age_ms":1500,"name":"t","value":23.4},)"
        R"({"age_ms":0,"name":"door.open","value":true},{"age_ms":7,"name":"mode","value":"auto"}],)"
        R"("version":1})"
        "\n");
    const auto back = state_from_json(text);
    REQUIRE(back);
    REQUIRE(back->rules.size() == 1);
    CHECK(back->rules[0].name == "hot");
    CHECK(back->rules[0].definition == r.definition);
    CHECK(back->rules[0].state == RuleState::Pending);
    CHECK(back->rules[0].severity == RuleSeverity::Critical);
    CHECK(back->rules[0].pending_for == r.pending_for);
    CHECK(back->rules[0].since_last_firing == r.since_last_firing);
    REQUIRE(back->sensors.size() == 3);
    CHECK(back->sensors[0].name == "t");
    CHECK(back->sensors[0].value == Value(23.4));
    CHECK(back->sensors[0].age == std::chrono::milliseconds(1500));
    CHECK(back->sensors[1].value == Value(true));
    CHECK(back->sensors[2].value == Value(std::string("auto")));

    std::string why;
    CHECK_FALSE(state_from_json("{not json", &why));
    CHECK(why == "not valid JSON");
    CHECK_FALSE(state_from_json(R"({"version":2,"rules":[]})", &why));
    CHECK_FALSE(state_from_json(R"({"version":1})", &why));
    CHECK_FALSE(state_from_json(R"({"version":1,"rules":[{"name":"x","state":"weird"}]})", &why));
    CHECK(why == "unknown rule state 'weird'");
    CHECK(state_from_json(R"({"version":1,"rules":[]})"));

    // Bytes that are not UTF-8 (a serial device's garbage) do not break the file.
    EngineState odd;
    odd.sensors.push_back(SensorRecord{"meter.raw", std::string("a\xFF"), {}});
    const auto odd_back = state_from_json(state_to_json(odd));
    REQUIRE(odd_back);
    CHECK(odd_back->sensors.at(0).value == Value(std::string("a\xEF\xBF\xBD")));
}

TEST_CASE("a reload keeps the state of unchanged rules", "[rules][state]") {
    Harness h(
        "rules:\n  - name: hot\n    when: t > 30\n"
        "  - name: slow\n    when: t > 30 && u > 0\n    for: 1m\n");
    CHECK(h.read_at(0, "u", 1.0) == "");
    CHECK(h.read_at(0, "t", 31.0) == "fired:hot");
    CHECK(h.state("slow") == RuleState::Pending);
    // Same definitions, spelled differently, plus actions and a new rule.
    const auto next = compile_or_fail(
        "rules:\n  - name: new_one\n    when: u > 5\n"
        "  - name: slow\n    when: (t > 30) and u > 0\n    for: 60s\n    severity: critical\n"
        "  - name: hot\n    description: now with an action\n    when: t>30\n"
        "    actions:\n      - log: again\n");
    h.at(10);
    CHECK(summary(h.engine->replace_rules(next, h.clock.monotonic(), h.clock.wall())) == "");
    CHECK(h.state("hot") == RuleState::Firing);
    CHECK(h.state("slow") == RuleState::Pending);
    CHECK(h.state("new_one") == RuleState::Idle);
    CHECK(h.read_at(20, "t", 32.0) == "");  // no second `fired`
    CHECK(h.tick_at(60) == "fired:slow");   // the pending timer kept its start
    // Sensor values survive too: the new rule sees u at once.
    CHECK(h.read_at(61, "u", 6.0) == "fired:new_one");
}

TEST_CASE("a reload clears firing rules that were removed or changed, with the old on_clear",
          "[rules][state]") {
    Harness h(
        "rules:\n  - name: hot\n    when: t > 30\n    on_clear:\n      - log: old hot off\n"
        "  - name: gone\n    when: t > 1\n    on_clear:\n      - log: old gone off\n"
        "  - name: calm\n    when: t > 100\n");
    CHECK(h.read("t", 31.0) == "fired:hot fired:gone");
    const auto next = compile_or_fail(
        "rules:\n  - name: hot\n    when: t > 20\n    on_clear:\n      - log: new hot off\n"
        "  - name: calm\n    when: t > 100\n");
    const auto ts = h.engine->replace_rules(next, h.clock.monotonic(), h.clock.wall());
    REQUIRE(summary(ts) == "cleared:hot cleared:gone");
    CHECK(std::get<LogAction>(ts[0].actions.at(0)).message == "old hot off");
    CHECK(std::get<LogAction>(ts[1].actions.at(0)).message == "old gone off");
    CHECK(ts[0].values_json() == R"({"t":31})");
    // The changed rule starts over from idle and fires by its new definition.
    CHECK(h.state("hot") == RuleState::Idle);
    CHECK(h.read("t", 25.0) == "fired:hot");
}

TEST_CASE("a reload keeps windows still in use, readings included", "[rules][state]") {
    Harness h("rules:\n  - name: avg_high\n    when: avg(t, 1m) > 100\n");
    CHECK(h.read_at(0, "t", 10.0) == "");
    CHECK(h.read_at(1, "t", 50.0) == "");
    const auto next = compile_or_fail(
        "rules:\n  - name: busy\n    when: count(t, 60s) >= 3\n"
        "  - name: peak\n    when: max(t, 1m) >= 50\n"
        "  - name: fresh\n    when: count(t, 2m) >= 2\n");
    h.at(2);
    CHECK(summary(h.engine->replace_rules(next, h.clock.monotonic(), h.clock.wall())) == "");
    // The 1m window kept both readings, and min/max now cover them too; the
    // 2m window is new and starts empty.
    CHECK(h.read_at(3, "t", 20.0) == "fired:busy fired:peak");
    CHECK(h.state("fresh") == RuleState::Idle);
    CHECK(h.read_at(4, "t", 20.0) == "fired:fresh");
}

TEST_CASE("the state generation moves with every state change", "[rules][state]") {
    Harness h("rules:\n  - name: hot\n    when: t > 30\n    for: 1m\n");
    const auto g0 = h.engine->state_generation();
    CHECK(h.read_at(0, "t", 20.0) == "");
    CHECK(h.engine->state_generation() == g0);
    CHECK(h.read_at(1, "t", 31.0) == "");  // pending: no transition, but state to persist
    const auto g1 = h.engine->state_generation();
    CHECK(g1 > g0);
    CHECK(h.tick_at(2) == "");
    CHECK(h.engine->state_generation() == g1);
    CHECK(h.tick_at(61) == "fired:hot");
    CHECK(h.engine->state_generation() > g1);
}
