// EventQueue: bounded for readings (producers wait), never for control messages.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "event_queue.h"

using namespace tg;

namespace {
Reading reading(double v) {
    return Reading{"s", v, WallTime{}, MonoTime{}};
}
MonoTime soon() {
    return std::chrono::steady_clock::now() + std::chrono::seconds(5);
}
}  // namespace

TEST_CASE("messages come out in the order they went in", "[queue]") {
    EventQueue q(8);
    q.post(reading(1));
    q.post_control(MqttConnected{});
    q.post(reading(2));
    auto a = q.pop_until(soon());
    auto b = q.pop_until(soon());
    auto c = q.pop_until(soon());
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(c);
    CHECK(std::get<double>(std::get<Reading>(*a).value) == 1);
    CHECK(std::holds_alternative<MqttConnected>(*b));
    CHECK(std::get<double>(std::get<Reading>(*c).value) == 2);
    CHECK_FALSE(q.try_pop());
}

TEST_CASE("pop_until returns empty at the deadline", "[queue]") {
    EventQueue q(2);
    auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(q.pop_until(start + std::chrono::milliseconds(20)));
    CHECK(std::chrono::steady_clock::now() >= start + std::chrono::milliseconds(20));
}

TEST_CASE("a full queue holds producers back until the loop takes a reading", "[queue]") {
    EventQueue q(2);
    q.post(reading(1));
    q.post(reading(2));
    q.post_control(MqttConnected{});  // control messages are never refused
    std::atomic<bool> posted{false};
    std::thread producer([&] {
        q.post(reading(3));
        posted = true;
    });
    // The producer cannot finish while two readings wait.
    for (int i = 0; i < 20 && !posted; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK_FALSE(posted.load());
    REQUIRE(q.pop_until(soon()));
    producer.join();
    CHECK(posted.load());
    CHECK(q.size() == 3);
}

TEST_CASE("close releases a waiting producer and refuses its reading", "[queue]") {
    EventQueue q(1);
    q.post(reading(1));
    std::atomic<int> result{-1};
    std::thread producer([&] { result = q.post(reading(2)) ? 1 : 0; });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    q.close();
    producer.join();
    CHECK(result.load() == 0);
}
