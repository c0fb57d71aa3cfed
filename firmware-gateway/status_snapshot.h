// StatusSnapshot: what the local HTTP server shows (SPEC §9), as the event
// loop last saw it. The loop builds a new one at most once a second when
// something changed and hands it over whole; the server's threads only ever
// read a snapshot they hold, so they never touch the loop's state or locks.
// Ages and the uptime are worked out when a page is rendered, from the
// monotonic times kept here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/breaker.h"
#include "core/clock.h"
#include "core/value.h"
#include "event_publisher.h"
#include "rules/engine.h"

namespace tg {

struct StatusSnapshot {
    std::string gateway;
    std::string version;
    WallTime started{};
    MonoTime started_mono{};
    // Wall and monotonic time when this snapshot was taken.
    WallTime taken{};
    MonoTime taken_mono{};

    struct Link {
        bool connected = false;
        std::string uri;  // the one connected to, or the first configured
        std::uint64_t reconnects = 0;
    } link;
    struct OutboxView {
        std::uint64_t depth = 0, bytes = 0, dropped = 0;
    } outbox;
    std::vector<EventPublisher::Metric> metrics;

    struct Sensor {
        std::string name;
        std::string unit;
        std::optional<Value> value;  // none until the first reading
        WallTime ts{};
        MonoTime mono{};
        // Recent numeric values, oldest first: one per kHistoryStep.
        std::vector<float> history;
    };
    std::vector<Sensor> sensors;

    struct Rule {
        std::string name;
        rules::RuleState state = rules::RuleState::Idle;
        std::optional<WallTime> since;  // when it entered that state, if seen
        std::uint64_t fired = 0;        // since the start
    };
    std::vector<Rule> rules;

    struct Output {
        std::string name;
        std::optional<bool> on;  // unknown until first switched
        bool remote = false;
    };
    std::vector<Output> outputs;

    struct BreakerView {
        std::string target;  // output/<name> or exec/<file name>
        BreakerState state = BreakerState::Closed;
        unsigned failures = 0;
        std::string detail;
    };
    std::vector<BreakerView> breakers;

    struct Saga {
        std::string rule;
        std::string state;  // running, completed, failed, compensated
        std::string step;
        std::string reason;
        WallTime ts{};
    };
    std::vector<Saga> sagas;

    std::vector<EventPublisher::DeadLetter> deadletters;  // oldest first

    const Output* output(std::string_view name) const {
        for (const Output& o : outputs) {
            if (o.name == name) return &o;
        }
        return nullptr;
    }
};

// Sensor history: one value per step, this many (10 minutes).
inline constexpr std::chrono::seconds kHistoryStep{10};
inline constexpr std::size_t kHistoryPoints = 60;

}  // namespace tg
