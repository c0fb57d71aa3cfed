// A rules engine on a virtual clock for the semantics tests: compile a rule
// file, feed readings and ticks at given seconds, read transitions back as
// short text ("fired:hot cleared:cold").
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "rules/engine.h"
#include "rules/rule_set.h"

namespace tg::rules::testing {

inline std::shared_ptr<const RuleSet> compile_or_fail(const std::vector<RuleSource>& sources,
                                                      const CheckOptions& options = {}) {
    CompileResult r = compile_rules(sources, options);
    for (const SourceError& e : r.diagnostics.items())
        UNSCOPED_INFO(e.format());
    REQUIRE(r.rules);
    return r.rules;
}

inline std::shared_ptr<const RuleSet> compile_or_fail(const std::string& yaml) {
    return compile_or_fail(std::vector<RuleSource>{{"r.yaml", yaml}});
}

inline std::string summary(const std::vector<Transition>& ts) {
    std::string out;
    for (const Transition& t : ts) {
        if (!out.empty()) out += ' ';
        out += std::string(transition_name(t.kind)) + ":" + t.rule;
    }
    return out;
}

// 2027-01-15T08:00:00Z: an epoch-scale wall clock, as on a real gateway.
inline const WallTime kStartWall{std::chrono::seconds(1'800'000'000)};

class Harness {
  public:
    explicit Harness(std::shared_ptr<const RuleSet> rules, bool render = true) : clock(kStartWall) {
        EngineOptions options;
        options.gateway = "gw";
        options.start = clock.monotonic();
        options.render_actions = render;
        start_mono = clock.monotonic();
        engine = std::make_unique<Engine>(std::move(rules), options);
    }
    explicit Harness(const std::string& yaml) : Harness(compile_or_fail(yaml)) {}

    // Moves both clocks to `seconds` after the start (never backwards).
    void at(double seconds) {
        const auto target = start_mono + std::chrono::duration_cast<MonoTime::duration>(
                                             std::chrono::duration<double>(seconds));
        if (target > clock.monotonic()) clock.advance(target - clock.monotonic());
    }

    std::string read(const std::string& sensor, Value v) {
        Reading r;
        r.sensor = sensor;
        r.value = std::move(v);
        r.ts = clock.wall();
        r.mono = clock.monotonic();
        last = engine->on_reading(r);
        return summary(last);
    }
    std::string read_at(double seconds, const std::string& sensor, Value v) {
        at(seconds);
        return read(sensor, std::move(v));
    }

    std::string tick() {
        last = engine->on_tick(clock.monotonic(), clock.wall());
        return summary(last);
    }
    std::string tick_at(double seconds) {
        at(seconds);
        return tick();
    }

    RuleState state(const std::string& rule) const { return engine->state_of(rule); }

    VirtualClock clock;
    MonoTime start_mono;
    std::unique_ptr<Engine> engine;
    std::vector<Transition> last;
};

}  // namespace tg::rules::testing
