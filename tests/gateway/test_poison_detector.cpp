// PoisonDetector: an event the broker refuses by closing the connection
// (MQTT 3.1.1) is told from a failing network.
#include <catch2/catch.hpp>

#include "poison_detector.h"

using namespace tg;
using namespace std::chrono_literals;

namespace {

const std::string kTopic = "tidegate/gw/events/bad";

// One connection that dies right after `seq` was sent alone.
std::optional<PoisonDetector::Verdict> refused_once(PoisonDetector& d, std::uint64_t seq,
                                                    MonoTime& now) {
    d.on_connected();
    d.on_other_sent();  // the birth goes first ...
    now += 2ms;         // ... and is acknowledged before the probe is sent
    d.on_record_sent(seq, kTopic, true, now);
    now += 5ms;
    auto v = d.on_connection_lost(now);
    now += 1s;  // the reconnect backoff
    return v;
}

}  // namespace

TEST_CASE("an event sent alone that the connection dies on five times is refused",
          "[mqtt][poison]") {
    PoisonDetector d(5, 3s);
    MonoTime now{};
    for (int i = 1; i <= 4; ++i) {
        CHECK_FALSE(refused_once(d, 7, now));
        CHECK(d.suspect() == 7);
        CHECK(d.strikes() == i);
    }
    auto v = refused_once(d, 7, now);
    REQUIRE(v);
    CHECK(v->seq == 7);
    CHECK(v->topic == kTopic);
    CHECK(v->strikes == 5);
    CHECK(d.strikes() == 0);  // counting starts afresh for the next one
}

TEST_CASE("an ack of the suspect clears its strikes", "[mqtt][poison]") {
    PoisonDetector d(5, 3s);
    MonoTime now{};
    for (int i = 0; i < 4; ++i)
        refused_once(d, 7, now);
    d.on_connected();
    d.on_record_sent(7, kTopic, true, now);
    d.on_record_settled(7);  // it went through after all: a flaky network
    CHECK(d.strikes() == 0);
    for (int i = 0; i < 4; ++i)
        CHECK_FALSE(refused_once(d, 7, now));
}

TEST_CASE("strikes count on one event in a row", "[mqtt][poison]") {
    PoisonDetector d(3, 3s);
    MonoTime now{};
    refused_once(d, 7, now);
    refused_once(d, 7, now);
    refused_once(d, 8, now);  // another event: counting starts again
    CHECK(d.suspect() == 8);
    CHECK(d.strikes() == 1);

    // A loss with no event in flight says nothing about the suspect (it was
    // not sent again): the run goes on.
    d.on_connected();
    d.on_other_sent();
    CHECK_FALSE(d.on_connection_lost(now));
    CHECK(d.suspect() == 8);
    CHECK(d.strikes() == 1);
    refused_once(d, 8, now);
    CHECK(refused_once(d, 8, now));
}

TEST_CASE("a loss with a window in flight is no strike but starts probing", "[mqtt][poison]") {
    PoisonDetector d(5, 3s);
    MonoTime now{};
    d.on_connected();
    for (std::uint64_t seq = 10; seq < 20; ++seq) {
        d.on_record_sent(seq, kTopic, seq == 10, now);
        now += 1ms;
    }
    d.on_record_settled(10);
    d.on_record_settled(11);
    CHECK_FALSE(d.probing(11));
    CHECK_FALSE(d.on_connection_lost(now));
    CHECK(d.strikes() == 0);
    // The events in flight at the loss (12..19) go one at a time until the
    // last of them is settled.
    CHECK(d.probing(11));
    CHECK(d.probing(18));
    CHECK_FALSE(d.probing(19));
}

TEST_CASE("what does not point at the event is no strike", "[mqtt][poison]") {
    PoisonDetector d(2, 3s);
    MonoTime now{};

    SECTION("lost long after the event was sent: a keepalive timeout, an outage") {
        refused_once(d, 7, now);
        d.on_connected();
        d.on_record_sent(7, kTopic, true, now);
        now += 4s;
        CHECK_FALSE(d.on_connection_lost(now));
        CHECK(d.strikes() == 0);
    }
    SECTION("sent while the birth was unacknowledged: the broker may have refused that") {
        refused_once(d, 7, now);
        d.on_connected();
        d.on_other_sent();
        d.on_record_sent(7, kTopic, false, now);
        CHECK_FALSE(d.on_connection_lost(now + 5ms));
        CHECK(d.strikes() == 0);
    }
    SECTION("something sent after it: that may be the refused one") {
        refused_once(d, 7, now);
        d.on_connected();
        d.on_record_sent(7, kTopic, true, now);
        d.on_other_sent();  // a metrics message
        CHECK_FALSE(d.on_connection_lost(now + 5ms));
        CHECK(d.strikes() == 0);
    }
    SECTION("another event in flight with it") {
        refused_once(d, 7, now);
        d.on_connected();
        d.on_record_sent(7, kTopic, true, now);
        d.on_record_sent(8, kTopic, false, now);
        CHECK_FALSE(d.on_connection_lost(now + 5ms));
        CHECK(d.strikes() == 0);
    }
}

TEST_CASE("a network outage while streaming dead-letters nothing", "[mqtt][poison]") {
    // 50 events/s with a window in flight; the network fails three times,
    // for a while each time; every event sent after a reconnect is acked.
    PoisonDetector d(5, 3s);
    MonoTime now{};
    std::uint64_t next = 1, cursor = 0;
    for (int outage = 0; outage < 3; ++outage) {
        d.on_connected();
        // Probing first (one at a time), then the full window.
        for (int i = 0; i < 200; ++i) {
            d.on_record_sent(next, kTopic, d.probing(cursor), now);
            if (i < 195) {  // the last few are in flight when the network fails
                d.on_record_settled(next);
                cursor = next;
            }
            ++next;
            now += 20ms;
        }
        CHECK_FALSE(d.on_connection_lost(now));
        now += 10s;  // reconnect attempts fail while the network is down
        // Everything unacked is sent again, first alone: acked this time.
        next = cursor + 1;
    }
    CHECK(d.strikes() == 0);
}

TEST_CASE("an outage right after a probe costs one strike, not the event", "[mqtt][poison]") {
    PoisonDetector d(5, 3s);
    MonoTime now{};
    for (int round = 0; round < 10; ++round) {
        CHECK_FALSE(refused_once(d, 7, now));  // the network fails right after sending 7
        d.on_connected();                      // back: 7 goes through
        d.on_record_sent(7, kTopic, true, now);
        d.on_record_settled(7);
        CHECK(d.strikes() == 0);
        d.on_record_sent(8, kTopic, true, now);
        d.on_record_settled(8);
        CHECK_FALSE(d.on_connection_lost(now));
    }
}
