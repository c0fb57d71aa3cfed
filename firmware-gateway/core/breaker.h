// Circuit breakers (SPEC §11): one per output and per exec program, so that a
// failing actuator or program is not called again and again. Closed: calls go
// through, `failures` consecutive failures open it. Open: calls are skipped
// (the caller dead-letters them) until `open_for` has passed; then the
// breaker is half-open and lets one trial call through: its success closes
// the breaker, its failure opens it again for twice as long (at most
// kMaxBreakerOpen). A pure state machine on the times it is given: no clock,
// no threads, no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"

namespace tg {

inline constexpr std::chrono::milliseconds kMaxBreakerOpen{10 * 60 * 1000};

struct BreakerSettings {
    unsigned failures = 5;
    std::chrono::milliseconds open_for{30'000};
    bool operator==(const BreakerSettings&) const = default;
};

enum class BreakerState : std::uint8_t { Closed, Open, HalfOpen };
std::string_view breaker_state_name(BreakerState s);  // closed, open, half_open

// One change of state, as the `breaker` event reports it.
struct BreakerChange {
    BreakerState state = BreakerState::Closed;
    unsigned failures = 0;  // consecutive failures at the change
    std::string detail;     // the last error
};

class Breaker {
  public:
    explicit Breaker(BreakerSettings settings = {}) : settings_(settings) {}

    // New settings (a reloaded rule file); the state stays.
    void configure(BreakerSettings settings) { settings_ = settings; }

    // Before a call: whether to attempt it. An open breaker whose time is up
    // becomes half-open and lets this call through as its trial; while that
    // trial is outstanding, further calls are refused.
    bool allow(MonoTime now);
    // How the attempted call went.
    void succeeded();
    void failed(MonoTime now, std::string detail);
    // The attempted call never ran for a reason that is not the target's
    // (the gateway stopping, a full queue): a trial may be made again.
    void abandoned() { trial_ = false; }

    BreakerState state() const { return state_; }
    unsigned failures() const { return failures_; }        // consecutive
    const std::string& detail() const { return detail_; }  // the last error
    std::chrono::milliseconds open_for() const { return open_for_now_; }
    // The changes of state since the last call, oldest first: the caller
    // reports each.
    std::vector<BreakerChange> take_changes() { return std::exchange(changes_, {}); }

  private:
    void open(MonoTime now, std::chrono::milliseconds d);
    void enter(BreakerState s);

    BreakerSettings settings_;
    BreakerState state_ = BreakerState::Closed;
    unsigned failures_ = 0;
    std::string detail_;
    MonoTime open_until_{};
    std::chrono::milliseconds open_for_now_{0};
    bool trial_ = false;
    std::vector<BreakerChange> changes_;
};

}  // namespace tg
