// Sagas (SPEC §12) in the engine, on given times: steps confirmed by their
// `expect`, timeouts and failed actions compensated in reverse, one instance
// per rule, reloads, restarts; and the rule-file checks of saga keys.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "engine_harness.h"
#include "rules/rule_set.h"

using namespace tg;
using namespace tg::rules;
using namespace tg::rules::testing;

namespace {

const char* kIrrigate = R"(
rules:
  - name: irrigate
    when: soil < 20
    saga:
      steps:
        - name: open_valve
          do: [ { output: { name: valve, value: on } } ]
          expect: flow > 0.5
          within: 30s
          undo: [ { output: { name: valve, value: off } }, { log: "undo {{step}}" } ]
        - name: start_pump
          do: [ { output: { name: pump, value: on } } ]
          expect: pressure > 1.2
          within: 20s
          undo: [ { output: { name: pump, value: off } } ]
      on_failure:
        - publish: { topic: "alerts/{{gateway}}", payload: '{{rule}}: {{step}} failed' }
)";

// "saga_started open_valve [output valve on]" per event.
std::vector<std::string> events(Engine& e) {
    std::vector<std::string> out;
    for (const SagaEvent& ev : e.take_saga_events()) {
        std::string s = std::string(saga_event_name(ev.kind)) + " " + ev.step;
        if (!ev.reason.empty()) s += " (" + ev.reason + ")";
        std::string acts;
        for (const Action& a : ev.actions) {
            if (!acts.empty()) acts += ", ";
            if (const auto* o = std::get_if<OutputAction>(&a))
                acts += "output " + o->name + (o->on ? " on" : " off");
            else if (const auto* p = std::get_if<PublishAction>(&a))
                acts += "publish " + p->topic + " " + p->payload;
            else if (const auto* l = std::get_if<LogAction>(&a))
                acts += "log " + l->message;
        }
        if (!acts.empty()) s += " [" + acts + "]";
        out.push_back(s);
    }
    return out;
}

using Lines = std::vector<std::string>;

}  // namespace

TEST_CASE("saga: steps confirmed by their expect complete the saga", "[rules][saga]") {
    Harness h(kIrrigate);
    h.read_at(0, "flow", 0.0);
    h.read_at(0, "pressure", 1.0);
    CHECK(h.read_at(1, "soil", 15.0) == "fired:irrigate");
    CHECK(events(*h.engine) == Lines{"saga_started open_valve [output valve on]"});
    CHECK(h.engine->saga_running("irrigate"));
    h.tick_at(2);
    CHECK(events(*h.engine).empty());
    h.read_at(5, "flow", 0.8);
    CHECK(events(*h.engine) == Lines{"saga_step open_valve [output pump on]"});
    h.read_at(10, "pressure", 1.5);
    CHECK(events(*h.engine) == Lines{"saga_step start_pump", "saga_completed start_pump"});
    CHECK_FALSE(h.engine->saga_running("irrigate"));
}

TEST_CASE("saga: a step not confirmed in time is undone with the steps before it, in reverse",
          "[rules][saga]") {
    Harness h(kIrrigate);
    h.read_at(0, "flow", 1.0);
    h.read_at(0, "pressure", 1.0);
    h.read_at(0, "soil", 15.0);
    events(*h.engine);
    // Already flowing: confirmed at the next evaluation, not the one that
    // handed out the `do`.
    h.tick_at(1);
    CHECK(events(*h.engine) == Lines{"saga_step open_valve [output pump on]"});
    h.tick_at(20);
    CHECK(events(*h.engine).empty());
    h.tick_at(21);
    CHECK(events(*h.engine) ==
          Lines{"saga_failed start_pump (timeout) [output pump off, output valve off, log undo "
                "open_valve, publish alerts/gw irrigate: start_pump failed]",
                "saga_compensated start_pump"});
    CHECK_FALSE(h.engine->saga_running("irrigate"));
}

TEST_CASE("saga: one instance per rule; a failed action compensates the step", "[rules][saga]") {
    const char* rules = R"(
rules:
  - name: r
    when: x > 0
    saga:
      steps:
        - name: a
          do: [ { output: { name: o, value: on } } ]
          expect: y > 0
          within: 1m
          undo: [ { output: { name: o, value: off } } ]
)";
    Harness h(rules);
    h.read_at(0, "x", 1.0);
    CHECK(events(*h.engine).size() == 1);
    h.read_at(1, "x", 0.0);
    h.read_at(2, "x", 1.0);  // fires again while its saga runs
    CHECK(h.last.size() == 1);
    CHECK(events(*h.engine).empty());
    CHECK(h.engine->sagas_skipped() == 1);
    // An action of another step is not this step's failure.
    h.engine->saga_action_failed("r", 1, h.clock.monotonic(), h.clock.wall());
    CHECK(events(*h.engine).empty());
    h.engine->saga_action_failed("r", 0, h.clock.monotonic(), h.clock.wall());
    CHECK(events(*h.engine) ==
          Lines{"saga_failed a (action_failed) [output o off]", "saga_compensated a"});
}

TEST_CASE("saga: a restart resumes the step with what is left of its time", "[rules][saga]") {
    Harness h(kIrrigate);
    h.read_at(0, "flow", 0.0);
    h.read_at(0, "soil", 15.0);
    events(*h.engine);
    h.at(10);
    const EngineState saved = h.engine->export_state(h.clock.monotonic());
    REQUIRE(saved.sagas.size() == 1);
    CHECK(saved.sagas[0].step == 0);
    // The text form keeps it.
    const auto round = state_from_json(state_to_json(saved));
    REQUIRE(round);
    REQUIRE(round->sagas.size() == 1);
    CHECK(round->sagas[0].step_started == saved.sagas[0].step_started);

    SECTION("down 5 s: 15 s of the 30 s are left") {
        Harness next(kIrrigate);
        next.clock.set_wall(h.clock.wall() + std::chrono::seconds(5));
        next.engine->import_state(*round, next.clock.monotonic(), next.clock.wall());
        CHECK(events(*next.engine).empty());
        CHECK(next.engine->saga_running("irrigate"));
        next.tick_at(14);
        CHECK(events(*next.engine).empty());
        next.tick_at(15);
        CHECK(events(*next.engine).front().rfind("saga_failed open_valve (timeout)", 0) == 0);
    }
    SECTION("down longer than the step's time: restart_expired, compensated") {
        Harness next(kIrrigate);
        next.clock.set_wall(h.clock.wall() + std::chrono::seconds(25));
        next.engine->import_state(*round, next.clock.monotonic(), next.clock.wall());
        CHECK(events(*next.engine) ==
              Lines{"saga_failed open_valve (restart_expired) [output valve off, log undo "
                    "open_valve, publish alerts/gw irrigate: open_valve failed]",
                    "saga_compensated open_valve"});
    }
    SECTION("a changed saga does not resume") {
        std::string changed = kIrrigate;
        changed.replace(changed.find("within: 30s"), 11, "within: 40s");
        Harness next(changed);
        next.engine->import_state(*round, next.clock.monotonic(), next.clock.wall());
        CHECK_FALSE(next.engine->saga_running("irrigate"));
        CHECK(events(*next.engine).empty());
    }
}

TEST_CASE("saga: a reload keeps an unchanged saga and compensates a changed one", "[rules][saga]") {
    Harness h(kIrrigate);
    h.read_at(0, "flow", 0.0);
    h.read_at(0, "soil", 15.0);
    events(*h.engine);
    h.engine->replace_rules(compile_or_fail(kIrrigate), h.clock.monotonic(), h.clock.wall());
    CHECK(events(*h.engine).empty());
    CHECK(h.engine->saga_running("irrigate"));
    std::string changed = kIrrigate;
    changed.replace(changed.find("flow > 0.5"), 10, "flow > 0.7");
    h.at(3);
    h.engine->replace_rules(compile_or_fail(changed), h.clock.monotonic(), h.clock.wall());
    const Lines ev = events(*h.engine);
    REQUIRE(ev.size() == 2);
    CHECK(ev[0].rfind("saga_failed open_valve (reloaded) [output valve off", 0) == 0);
    CHECK_FALSE(h.engine->saga_running("irrigate"));
}

TEST_CASE("saga: rule files with saga mistakes are errors at their place", "[rules][saga]") {
    struct Case {
        const char* saga;
        const char* error;
    };
    const Case cases[] = {
        {"    saga: { steps: [] }\n", "r.yaml:5:20: error: rule 'r': saga: steps: expected a list"},
        {"    saga: {}\n", "r.yaml:5:5: error: rule 'r': saga: missing 'steps'"},
        {"    saga:\n      steps:\n        - name: a\n          expect: x > 1\n",
         "r.yaml:7:11: error: rule 'r': step 'a' has no 'within'"},
        {"    saga:\n      steps:\n        - name: a\n          within: 5s\n",
         "r.yaml:7:11: error: rule 'r': step 'a' has no 'expect'"},
        {"    saga:\n      steps:\n        - { name: a, within: 5s, expect: x > 1, do: [ { "
         "output: { name: valv, value: on } } ] }\n",
         "r.yaml:7:73: error: unknown output 'valv' (did you mean 'valve'?)"},
        {"    saga:\n      steps:\n        - { name: a, within: 5s, expect: x > 1, undo: [ { "
         "output: { name: pmp, value: off } } ] }\n",
         "r.yaml:7:75: error: unknown output 'pmp'"},
        {"    saga:\n      steps:\n        - { name: a, within: 5s, expect: x > 1 }\n        - { "
         "name: a, within: 5s, expect: x > 1 }\n",
         "r.yaml:8:19: error: duplicate step name 'a'"},
        {"    saga:\n      stesp: []\n",
         "r.yaml:6:7: error: unknown key 'stesp' in saga (did you mean 'steps'?)"},
        {"    saga:\n      steps:\n        - { name: a, within: 5x, expect: x > 1 }\n",
         "r.yaml:7:30: error: within: invalid duration '5x'"},
    };
    CheckOptions opts;
    opts.outputs = std::vector<std::string>{"valve", "pump"};
    for (const Case& c : cases) {
        const std::string yaml =
            std::string("rules:\n  - name: r\n    when: x > 1\n    actions: []\n") + c.saga;
        const CompileResult r = compile_rules({RuleSource{"r.yaml", yaml}}, opts);
        std::string all;
        for (const SourceError& e : r.diagnostics.items())
            all += e.format() + "\n";
        INFO(yaml);
        INFO(all);
        CHECK_FALSE(r.rules);
        CHECK(all.find(c.error) != std::string::npos);
    }
}
