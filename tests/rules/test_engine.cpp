// Semantics of SPEC §5.2 and §5.3 on a virtual clock: every transition and
// boundary (exactly `for`, exactly `cooldown`, window edges), missing values,
// evaluation order, wall-clock jumps, values and rendered actions.
#include <catch2/catch.hpp>

#include "engine_harness.h"

using namespace tg;
using namespace tg::rules;
using namespace tg::rules::testing;

TEST_CASE("a threshold rule fires once, stays firing, and clears when false", "[rules][engine]") {
    Harness h("rules:\n  - name: hot\n    when: t > 30\n");
    CHECK(h.read_at(0, "t", 25.0) == "");
    CHECK(h.state("hot") == RuleState::Idle);
    CHECK(h.read_at(1, "t", 31.0) == "fired:hot");
    CHECK(h.state("hot") == RuleState::Firing);
    CHECK(h.read_at(2, "t", 32.0) == "");
    CHECK(h.tick_at(3) == "");
    CHECK(h.read_at(4, "t", 30.0) == "cleared:hot");  // 30 > 30 is false
    CHECK(h.state("hot") == RuleState::Idle);
    CHECK(h.read_at(5, "t", 29.0) == "");
    CHECK(h.read_at(6, "t", 30.5) == "fired:hot");
}

TEST_CASE("only the rules reading a sensor are evaluated on its reading", "[rules][engine]") {
    Harness h("rules:\n  - name: a\n    when: x > 1\n  - name: b\n    when: y > 1\n");
    CHECK(h.read("x", 5.0) == "fired:a");
    CHECK(h.read("y", 5.0) == "fired:b");
    CHECK(h.read("unrelated.sensor", 5.0) == "");
    CHECK(h.read("x", std::string("text")) == "");  // a string where a number is expected: missing
    CHECK(h.state("a") == RuleState::Firing);
}

TEST_CASE("a silent sensor never clears an alarm by itself", "[rules][engine]") {
    SECTION("an empty window is missing, not false") {
        Harness h("rules:\n  - name: hot\n    when: avg(t, 1m) > 30\n");
        CHECK(h.read_at(0, "t", 35.0) == "fired:hot");
        CHECK(h.tick_at(59) == "");
        CHECK(h.tick_at(60) == "");  // the window is empty now
        CHECK(h.tick_at(3600) == "");
        CHECK(h.state("hot") == RuleState::Firing);
        CHECK(h.read_at(3601, "t", 20.0) == "cleared:hot");
    }
    SECTION("clear_when on a sensor that never reported") {
        Harness h("rules:\n  - name: hot\n    when: t > 30\n    clear_when: reset.button\n");
        CHECK(h.read("t", 31.0) == "fired:hot");
        CHECK(h.read("t", 10.0) == "");
        CHECK(h.state("hot") == RuleState::Firing);
        CHECK(h.read("reset.button", true) == "cleared:hot");
    }
    SECTION("and/or with a missing operand") {
        Harness h("rules:\n  - name: both\n    when: t > 30 and h > 50\n");
        CHECK(h.read("t", 31.0) == "");  // true and missing = missing
        CHECK(h.read("h", 60.0) == "fired:both");
        CHECK(h.read("h", 40.0) == "cleared:both");
    }
}

TEST_CASE("clear_when gives hysteresis", "[rules][engine]") {
    Harness h("rules:\n  - name: hot\n    when: t > 30\n    clear_when: t < 28\n");
    CHECK(h.read("t", 31.0) == "fired:hot");
    CHECK(h.read("t", 29.0) == "");
    CHECK(h.read("t", 28.0) == "");
    CHECK(h.read("t", 27.9) == "cleared:hot");
    CHECK(h.read("t", 29.0) == "");
    CHECK(h.read("t", 30.5) == "fired:hot");
}

TEST_CASE("for: pending until the condition held that long, measured exactly", "[rules][engine]") {
    Harness h("rules:\n  - name: hot\n    when: t > 30\n    for: 2m\n");
    CHECK(h.read_at(0, "t", 31.0) == "");
    CHECK(h.state("hot") == RuleState::Pending);
    CHECK(h.tick_at(119.999) == "");
    CHECK(h.tick_at(120) == "fired:hot");  // now - since == for
    CHECK(h.tick_at(121) == "");

    SECTION("a false condition while pending returns to idle and restarts the timer") {
        CHECK(h.read_at(130, "t", 20.0) == "cleared:hot");
        CHECK(h.read_at(140, "t", 31.0) == "");
        CHECK(h.read_at(200, "t", 29.0) == "");
        CHECK(h.state("hot") == RuleState::Idle);
        CHECK(h.read_at(210, "t", 31.0) == "");
        CHECK(h.tick_at(329.5) == "");
        CHECK(h.read_at(330, "t", 31.5) == "fired:hot");  // a reading fires it too
    }
}

TEST_CASE("for: a missing condition while pending returns to idle", "[rules][engine]") {
    Harness h("rules:\n  - name: warm\n    when: avg(t, 30s) > 30\n    for: 1m\n");
    CHECK(h.read_at(0, "t", 31.0) == "");
    CHECK(h.tick_at(29) == "");
    CHECK(h.state("warm") == RuleState::Pending);
    CHECK(h.tick_at(30) == "");  // window empty: missing
    CHECK(h.state("warm") == RuleState::Idle);
    CHECK(h.tick_at(60) == "");
}

TEST_CASE("one transition per evaluation; clearing does not start pending", "[rules][engine]") {
    Harness h(
        "rules:\n  - name: band\n    when: t > 10\n    clear_when: t > 20\n"
        "  - name: slow\n    when: t > 10\n    clear_when: t > 20\n    for: 1m\n");
    CHECK(h.read_at(0, "t", 15.0) == "fired:band");
    CHECK(h.tick_at(60) == "fired:slow");
    // Both clear; `when` is still true, yet neither fires nor goes pending now.
    CHECK(h.read_at(61, "t", 25.0) == "cleared:band cleared:slow");
    CHECK(h.state("band") == RuleState::Idle);
    CHECK(h.state("slow") == RuleState::Idle);
    // The next evaluation starts over.
    CHECK(h.read_at(62, "t", 25.0) == "fired:band");
    CHECK(h.state("slow") == RuleState::Pending);
    CHECK(h.tick_at(121.999) == "");  // band uses no time: ticks leave it alone
    CHECK(h.tick_at(122) == "fired:slow");
}

TEST_CASE("cooldown holds a rule back, keeping it pending until it is over", "[rules][engine]") {
    SECTION("without for") {
        Harness h("rules:\n  - name: cool\n    when: t > 30\n    cooldown: 10m\n");
        CHECK(h.read_at(0, "t", 31.0) == "fired:cool");
        CHECK(h.read_at(60, "t", 20.0) == "cleared:cool");
        CHECK(h.read_at(120, "t", 31.0) == "");
        CHECK(h.state("cool") == RuleState::Pending);
        CHECK(h.tick_at(599.999) == "");
        CHECK(h.tick_at(600) == "fired:cool");  // exactly last firing + cooldown
    }
    SECTION("with for: since is kept while held back") {
        Harness h("rules:\n  - name: cool\n    when: t > 30\n    for: 1m\n    cooldown: 10m\n");
        CHECK(h.read_at(0, "t", 31.0) == "");
        CHECK(h.tick_at(60) == "fired:cool");
        CHECK(h.read_at(100, "t", 20.0) == "cleared:cool");
        CHECK(h.read_at(200, "t", 31.0) == "");
        CHECK(h.tick_at(260) == "");  // for has elapsed, cooldown has not
        CHECK(h.tick_at(659) == "");
        CHECK(h.tick_at(660) == "fired:cool");
    }
    SECTION("a condition that goes away while held back fires nothing") {
        Harness h("rules:\n  - name: cool\n    when: t > 30\n    cooldown: 10m\n");
        CHECK(h.read_at(0, "t", 31.0) == "fired:cool");
        CHECK(h.read_at(10, "t", 20.0) == "cleared:cool");
        CHECK(h.read_at(20, "t", 31.0) == "");
        CHECK(h.read_at(30, "t", 20.0) == "");
        CHECK(h.state("cool") == RuleState::Idle);
        CHECK(h.tick_at(600) == "");
        CHECK(h.read_at(601, "t", 31.0) == "fired:cool");
    }
}

TEST_CASE("rules run in file path order, then position in the file", "[rules][engine]") {
    const auto set = compile_or_fail(std::vector<RuleSource>{
        {"z.yaml", "rules:\n  - name: z_first\n    when: t > 1\n"},
        {"a.yaml", "rules:\n  - name: a_two\n    when: t > 1\n  - name: a_one\n    when: t > 1\n"},
        {"m.yaml", "rules:\n  - name: m\n    when: t > 1\n    for: 1s\n"}});
    Harness h(set);
    CHECK(h.read_at(0, "t", 5.0) == "fired:a_two fired:a_one fired:z_first");
    CHECK(h.tick_at(1) == "fired:m");
    CHECK(h.read_at(2, "t", 0.0) == "cleared:a_two cleared:a_one cleared:m cleared:z_first");
}

TEST_CASE("age counts from the last reading, or from the engine start", "[rules][engine]") {
    Harness h("rules:\n  - name: silent\n    when: age(t) > 10\n    clear_when: age(t) < 1\n");
    CHECK(h.tick_at(10) == "");  // 10 s since start: not more than 10
    CHECK(h.tick_at(11) == "fired:silent");
    CHECK(h.read_at(12, "t", 1.0) == "cleared:silent");
    CHECK(h.tick_at(22) == "");
    CHECK(h.tick_at(23) == "fired:silent");
}

TEST_CASE("a wall-clock jump fires, clears and expires nothing", "[rules][engine]") {
    Harness h(
        "rules:\n  - name: hot\n    when: t > 30\n    for: 1m\n"
        "  - name: silent\n    when: age(t) > 30\n");
    CHECK(h.read_at(0, "t", 31.0) == "");
    h.at(1);
    h.clock.set_wall(h.clock.wall() + std::chrono::hours(1));  // NTP steps the clock
    CHECK(h.tick() == "");
    h.at(2);
    h.clock.set_wall(h.clock.wall() - std::chrono::hours(3));  // and back
    CHECK(h.tick() == "");
    CHECK(h.tick_at(30) == "");
    CHECK(h.tick_at(30.5) == "fired:silent");
    CHECK(h.tick_at(59.5) == "");
    CHECK(h.tick_at(60) == "fired:hot");
    // Event times come from the wall clock, durations from the monotonic one.
    CHECK(h.last.at(0).ts == h.clock.wall());
    CHECK(h.last.at(0).ts < kStartWall);
}

TEST_CASE("window functions see readings after now - D up to and including now",
          "[rules][engine]") {
    Harness h(
        "rules:\n  - name: busy\n    when: count(t, 10s) >= 2\n"
        "  - name: avg_hot\n    when: avg(t, 10s) > 14\n    clear_when: avg(t, 10s) > 18\n");
    CHECK(h.read_at(0, "t", 10.0) == "");
    CHECK(h.read_at(5, "t", 20.0) == "fired:busy fired:avg_hot");  // avg 15
    CHECK(h.tick_at(9.999) == "");
    // At 10 s the reading of 0 s has left: count 1, avg 20.
    CHECK(h.tick_at(10) == "cleared:busy cleared:avg_hot");
    CHECK(h.tick_at(15) == "");  // empty window: count 0 (false), avg missing
}

TEST_CASE("windows of the same sensor and length are shared", "[rules][engine]") {
    const auto set = compile_or_fail(
        "rules:\n  - name: a\n    when: avg(t, 5m) > 1\n  - name: b\n    when: max(t, 300s) > 2\n"
        "  - name: c\n    when: rate(t, 5m) > 0 and min(t, 1m) > 0\n");
    REQUIRE(set->windows().size() == 2);
    CHECK(set->windows()[0].length_ns == 300'000'000'000);
    CHECK(set->windows()[0].extremes);
    CHECK(set->windows()[1].length_ns == 60'000'000'000);
    Harness h(set);
    CHECK(h.read_at(0, "t", 1.0) == "");
    CHECK(h.read_at(1, "t", 3.0) == "fired:a fired:b fired:c");
}

TEST_CASE("transitions carry every sensor of when and clear_when", "[rules][engine]") {
    Harness h(
        "rules:\n  - name: hot\n    severity: critical\n"
        "    when: t > 30 and avg(h, 5m) > 50 and mode == \"auto\"\n"
        "    clear_when: t < 28 or door == false\n");
    CHECK(h.read("h", 60.0) == "");
    CHECK(h.read("mode", std::string("auto")) == "");
    CHECK(h.read("t", 31.0) == "fired:hot");
    const Transition& f = h.last.at(0);
    CHECK(f.values_json() == R"({"t":31,"h":60,"mode":"auto","door":null})");
    CHECK(f.severity == RuleSeverity::Critical);
    CHECK(f.ts == kStartWall);
    CHECK(h.read("door", false) == "cleared:hot");
    CHECK(h.last.at(0).values_json() == R"({"t":31,"h":60,"mode":"auto","door":false})");
    CHECK(transition_json(h.last.at(0)) ==
          R"({"ts":"2027-01-15T08:00:00.000Z","rule":"hot","transition":"cleared",)"
          R"("values":{"t":31,"h":60,"mode":"auto","door":false}})");
}

TEST_CASE("actions are rendered with templates at the transition", "[rules][engine]") {
    Harness h(R"(rules:
  - name: hot
    severity: critical
    when: greenhouse.temp > 30
    actions:
      - publish: { topic: "site/{{gateway}}/alerts/{{rule}}", payload: '{"temp": {{greenhouse.temp}}, "hum": {{greenhouse.humidity}}, "sev": "{{severity}}", "ts": "{{ts}}"}', qos: 0, retain: true }
      - output: { name: fan, value: on, for: 30s }
      - exec: [/usr/local/bin/notify, "hot: {{ round(greenhouse.temp, 1) }}", "$(rm -rf /); `x`"]
      - log: "avg {{ avg(greenhouse.temp, 5m) }} hot={{ greenhouse.temp > 30 }} {{ \"q\" }}"
    on_clear:
      - output: { name: fan, value: off }
      - log: "cleared after {{ count(greenhouse.temp, 5m) }} readings"
)");
    CHECK(h.read("greenhouse.temp", 31.25) == "fired:hot");
    const std::vector<Action>& a = h.last.at(0).actions;
    REQUIRE(a.size() == 4);
    const auto& pub = std::get<PublishAction>(a[0]);
    CHECK(pub.topic == "site/gw/alerts/hot");
    CHECK(pub.payload ==
          R"({"temp": 31.25, "hum": null, "sev": "critical", "ts": "2027-01-15T08:00:00.000Z"})");
    CHECK(pub.qos == 0);
    CHECK(pub.retain);
    const auto& out = std::get<OutputAction>(a[1]);
    CHECK(out.name == "fan");
    CHECK(out.on);
    CHECK(out.duration == std::chrono::seconds(30));
    const auto& ex = std::get<ExecAction>(a[2]);
    CHECK(ex.argv ==
          std::vector<std::string>{"/usr/local/bin/notify", "hot: 31.3", "$(rm -rf /); `x`"});
    CHECK(ex.timeout == std::chrono::seconds(10));
    CHECK(std::get<LogAction>(a[3]).message == "avg 31.25 hot=true q");

    CHECK(h.read("greenhouse.temp", 20.0) == "cleared:hot");
    const std::vector<Action>& c = h.last.at(0).actions;
    REQUIRE(c.size() == 2);
    CHECK_FALSE(std::get<OutputAction>(c[0]).on);
    CHECK(std::get<LogAction>(c[1]).message == "cleared after 2 readings");
}

TEST_CASE("replay-style engines render no actions", "[rules][engine]") {
    Harness h(
        compile_or_fail("rules:\n  - name: x\n    when: t > 1\n    actions:\n      - log: hi\n"),
        false);
    CHECK(h.read("t", 2.0) == "fired:x");
    CHECK(h.last.at(0).actions.empty());
}

TEST_CASE("a reading older than the engine's now counts as now", "[rules][engine]") {
    Harness h("rules:\n  - name: c\n    when: count(t, 10s) >= 3\n");
    CHECK(h.read_at(5, "t", 1.0) == "");
    Reading late;
    late.sensor = "t";
    late.value = 2.0;
    late.ts = kStartWall;
    late.mono = h.start_mono;  // 5 s in the past
    CHECK(summary(h.engine->on_reading(late)) == "");
    CHECK(h.read_at(14.9, "t", 3.0) == "fired:c");
    CHECK(h.tick_at(15) == "cleared:c");  // both readings counted at 5 s leave together
}

TEST_CASE("ticks fall on multiples of the tick since the Unix epoch", "[rules][engine]") {
    using std::chrono::milliseconds;
    using std::chrono::nanoseconds;
    using std::chrono::seconds;
    auto at = [](long long ns) {
        return WallTime(std::chrono::duration_cast<WallTime::duration>(nanoseconds(ns)));
    };
    CHECK(next_tick_after(at(0), milliseconds(1000)) == at(1'000'000'000));
    CHECK(next_tick_after(at(1), milliseconds(1000)) == at(1'000'000'000));
    CHECK(next_tick_after(at(999'999'999), milliseconds(1000)) == at(1'000'000'000));
    CHECK(next_tick_after(at(1'000'000'000), milliseconds(1000)) == at(2'000'000'000));
    CHECK(next_tick_after(kStartWall + milliseconds(2500), milliseconds(5000)) ==
          kStartWall + seconds(5));
    CHECK(next_tick_after(kStartWall, milliseconds(250)) == kStartWall + milliseconds(250));
    CHECK(next_tick_after(at(-1'000'000), milliseconds(1000)) == at(0));
    CHECK(next_tick_after(at(-1'000'000'000), milliseconds(1000)) == at(0));
}
