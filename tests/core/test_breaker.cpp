// The circuit breaker's state machine (SPEC §11) on given times: no clock,
// no threads, no sleeps.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "core/breaker.h"

using namespace tg;
using namespace std::chrono_literals;

namespace {

const MonoTime t0{};

std::vector<std::string> states(std::vector<BreakerChange> cs) {
    std::vector<std::string> out;
    for (const BreakerChange& c : cs)
        out.emplace_back(breaker_state_name(c.state));
    return out;
}

}  // namespace

TEST_CASE("breaker: opens after the configured consecutive failures", "[breaker]") {
    Breaker b(BreakerSettings{3, 10s});
    for (int i = 0; i < 2; ++i) {
        REQUIRE(b.allow(t0));
        b.failed(t0, "e" + std::to_string(i));
    }
    // A success in between starts the count again.
    REQUIRE(b.allow(t0));
    b.succeeded();
    CHECK(b.failures() == 0);
    CHECK(b.take_changes().empty());
    for (int i = 0; i < 3; ++i) {
        REQUIRE(b.allow(t0 + 1s));
        b.failed(t0 + 1s, "write error " + std::to_string(i));
    }
    CHECK(b.state() == BreakerState::Open);
    const auto cs = b.take_changes();
    REQUIRE(cs.size() == 1);
    CHECK(cs[0].state == BreakerState::Open);
    CHECK(cs[0].failures == 3);
    CHECK(cs[0].detail == "write error 2");
    CHECK(b.open_for() == 10s);
}

TEST_CASE("breaker: open skips calls until open_for, then one trial at a time", "[breaker]") {
    Breaker b(BreakerSettings{1, 10s});
    REQUIRE(b.allow(t0));
    b.failed(t0, "x");
    CHECK(states(b.take_changes()) == std::vector<std::string>{"open"});
    CHECK_FALSE(b.allow(t0 + 9999ms));
    CHECK(b.state() == BreakerState::Open);
    // Time is up: the next call is the trial; others wait for its outcome.
    CHECK(b.allow(t0 + 10s));
    CHECK(b.state() == BreakerState::HalfOpen);
    CHECK_FALSE(b.allow(t0 + 10s));
    CHECK(states(b.take_changes()) == std::vector<std::string>{"half_open"});
    b.succeeded();
    CHECK(b.state() == BreakerState::Closed);
    CHECK(states(b.take_changes()) == std::vector<std::string>{"closed"});
    CHECK(b.allow(t0 + 10s));
}

TEST_CASE("breaker: a failed trial opens it again for twice as long, at most 10 minutes",
          "[breaker]") {
    Breaker b(BreakerSettings{1, 3min});
    REQUIRE(b.allow(t0));
    b.failed(t0, "x");
    MonoTime now = t0;
    std::vector<std::chrono::milliseconds> opened;
    for (int i = 0; i < 4; ++i) {
        opened.push_back(b.open_for());
        now += b.open_for();
        CHECK_FALSE(b.allow(now - 1ms));
        REQUIRE(b.allow(now));
        b.failed(now, "still broken");
    }
    CHECK(opened == std::vector<std::chrono::milliseconds>{3min, 6min, 10min, 10min});
    CHECK(b.failures() == 5);
    // The changes: open, then half_open/open per trial.
    CHECK(states(b.take_changes()) == std::vector<std::string>{"open", "half_open", "open",
                                                               "half_open", "open", "half_open",
                                                               "open", "half_open", "open"});
    // Recovery resets the doubling.
    now += b.open_for();
    REQUIRE(b.allow(now));
    b.succeeded();
    REQUIRE(b.allow(now));
    b.failed(now, "again");
    CHECK(b.state() == BreakerState::Open);
    CHECK(b.open_for() == 3min);
}

TEST_CASE("breaker: a trial that never ran may be made again", "[breaker]") {
    Breaker b(BreakerSettings{1, 1s});
    REQUIRE(b.allow(t0));
    b.failed(t0, "x");
    REQUIRE(b.allow(t0 + 1s));
    CHECK_FALSE(b.allow(t0 + 1s));
    b.abandoned();
    CHECK(b.allow(t0 + 1s));
    CHECK(b.state() == BreakerState::HalfOpen);
}

TEST_CASE("breaker: failures of 0 in settings still needs one failure", "[breaker]") {
    Breaker b(BreakerSettings{0, 1s});
    CHECK(b.allow(t0));
    b.failed(t0, "x");
    CHECK(b.state() == BreakerState::Open);
}
