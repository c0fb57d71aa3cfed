// EventQueue: bounded for readings (producers wait), never for control messages.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "core/value.h"
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

namespace {
MqttIncoming input(std::string payload) {
    return MqttIncoming{"in/topic", std::move(payload), false};
}
}  // namespace

TEST_CASE("input from the broker never waits: beyond its byte bound it is shed and counted",
          "[queue]") {
    // Room for two messages of this size, not three.
    const std::size_t one = std::string("in/topic").size() + 100 + EventQueue::kInputOverhead;
    EventQueue q(1, 2 * one + one / 2);
    CHECK(q.offer_input(input(std::string(100, 'a'))));
    CHECK(q.offer_input(input(std::string(100, 'b'))));
    // Called from a thread that must not block (Paho's receive thread): it
    // returns at once even though the lane is full, and so does post().
    auto shed = std::async(std::launch::async, [&] {
        const bool a = q.offer_input(input(std::string(100, 'c')));
        const bool b = q.post(input(std::string(100, 'd')));
        return a || b;
    });
    REQUIRE(shed.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    CHECK_FALSE(shed.get());
    CHECK(q.shed().count == 2);
    CHECK(q.shed().last_topic == "in/topic");
    CHECK(q.input_size() == 2);
    // Taking one makes room for one more.
    REQUIRE(q.try_pop());
    CHECK(q.offer_input(input(std::string(100, 'e'))));
    CHECK(q.shed().count == 2);
}

TEST_CASE("a message larger than the input bound still gets through an empty lane", "[queue]") {
    EventQueue q(1, 1024);
    CHECK(q.offer_input(input(std::string(5000, 'x'))));
    CHECK_FALSE(q.offer_input(input("small")));
    auto m = q.try_pop();
    REQUIRE(m);
    CHECK(std::get<MqttIncoming>(*m).payload.size() == 5000);
    CHECK(q.offer_input(input("small")));
}

TEST_CASE("data and control go before waiting input, each in arrival order", "[queue]") {
    EventQueue q(8);
    q.offer_input(input("1"));
    q.offer_input(input("2"));
    q.post(reading(1));
    q.post_control(StopRequest{15});
    q.post(reading(2));
    std::vector<std::string> order;
    while (auto m = q.try_pop()) {
        std::visit(
            [&](const auto& msg) {
                using T = std::decay_t<decltype(msg)>;
                if constexpr (std::is_same_v<T, Reading>) {
                    order.push_back("r" + format_number(std::get<double>(msg.value)));
                } else if constexpr (std::is_same_v<T, MqttIncoming>) {
                    order.push_back("in" + msg.payload);
                } else if constexpr (std::is_same_v<T, StopRequest>) {
                    order.push_back("stop");
                } else {
                    order.push_back("?");
                }
            },
            *m);
    }
    CHECK(order == std::vector<std::string>{"r1", "stop", "r2", "in1", "in2"});
}

TEST_CASE("lanes are chosen by message type", "[queue]") {
    CHECK(lane_of(Message{reading(1)}) == Lane::Data);
    CHECK(lane_of(Message{BadReading{"s", "parse", "x"}}) == Lane::Data);
    CHECK(lane_of(Message{input("x")}) == Lane::Input);
    CHECK(lane_of(Message{MqttDelivered{1}}) == Lane::Control);
    CHECK(lane_of(Message{ExecFinished{}}) == Lane::Control);
    CHECK(lane_of(Message{StopRequest{}}) == Lane::Control);
}

TEST_CASE("close sheds waiting input, counts it and refuses later input", "[queue]") {
    EventQueue q(4);
    q.offer_input(input("1"));
    q.offer_input(input("2"));
    q.post(reading(1));
    CHECK(q.close() == 2);
    CHECK(q.shed().count == 2);
    CHECK_FALSE(q.offer_input(input("3")));
    CHECK(q.shed().count == 3);
    // Data already queued is still handed out (the loop processes it).
    auto m = q.try_pop();
    REQUIRE(m);
    CHECK(std::holds_alternative<Reading>(*m));
    CHECK_FALSE(q.try_pop());
}

TEST_CASE("a producer blocked on full data does not hold back input or control", "[queue]") {
    EventQueue q(1);
    q.post(reading(1));
    std::thread producer([&] { q.post(reading(2)); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto other = std::async(std::launch::async, [&] {
        q.post_control(MqttConnected{});
        return q.offer_input(input("x"));
    });
    REQUIRE(other.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    CHECK(other.get());
    REQUIRE(q.try_pop());  // frees the producer
    producer.join();
    CHECK(q.size() == 3);
}
