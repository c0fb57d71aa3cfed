// The simulated driver: each profile's values, determinism of the random walk
// for a given seed, and the option checks its factory makes.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "drivers/simulated/simulated.h"

using namespace std::chrono_literals;
using tg::drivers::OptionError;
using tg::drivers::SensorSpec;
using tg::drivers::SimulatedDriver;

namespace {

// A spec with every option at its table default, as the config loader fills it.
SensorSpec spec_with_defaults(tg::ValueType type = tg::ValueType::Number) {
    SensorSpec s;
    s.name = "sim.value";
    s.type = type;
    s.interval = 1s;
    s.options.set("profile", std::string("sine"));
    s.options.set("min", 0.0);
    s.options.set("max", 100.0);
    s.options.set("period", std::chrono::milliseconds(60s));
    s.options.set("step", 1.0);
    s.options.set("value", 0.0);
    s.options.set("values", std::vector<double>{});
    s.options.set("seed", 1LL);
    return s;
}

double number(const tg::Value& v) {
    REQUIRE(std::holds_alternative<double>(v));
    return std::get<double>(v);
}

std::vector<double> walk(long long seed, int n, double min = 40, double max = 90,
                         double step = 1.5) {
    SensorSpec s = spec_with_defaults();
    s.options.set("profile", std::string("random_walk"));
    s.options.set("min", min);
    s.options.set("max", max);
    s.options.set("step", step);
    s.options.set("seed", seed);
    SimulatedDriver d(s);
    std::vector<double> out;
    tg::MonoTime t{};
    for (int i = 0; i < n; ++i) {
        out.push_back(number(d.next(t)));
        t += 1s;
    }
    return out;
}

// Which option the factory refuses, and why.
std::pair<std::string, std::string> refusal(const SensorSpec& s) {
    try {
        tg::drivers::kSimulatedDriver.create(std::span(&s, 1));
    } catch (const OptionError& e) {
        return {e.key(), e.what()};
    }
    FAIL("expected the factory to refuse the options");
    return {};
}

class CaptureSink final : public tg::drivers::Sink {
  public:
    void reading(tg::Reading r) override { readings.push_back(std::move(r)); }
    void bad_reading(const std::string& sensor, std::string reason, std::string detail) override {
        bad.push_back(sensor + ": " + reason + ": " + detail);
    }
    std::vector<tg::Reading> readings;
    std::vector<std::string> bad;
};

}  // namespace

TEST_CASE("sine starts at the midpoint and peaks a quarter period later", "[driver:simulated]") {
    SensorSpec s = spec_with_defaults();
    s.options.set("min", 18.0);
    s.options.set("max", 32.0);
    s.options.set("period", std::chrono::milliseconds(2min));
    SimulatedDriver d(s);
    const tg::MonoTime t0 = tg::MonoTime{} + 1000s;

    CHECK(number(d.next(t0)) == Approx(25).margin(1e-9));
    CHECK(number(d.next(t0 + 30s)) == Approx(32).margin(1e-9));
    CHECK(number(d.next(t0 + 60s)) == Approx(25).margin(1e-9));
    CHECK(number(d.next(t0 + 90s)) == Approx(18).margin(1e-9));
    CHECK(number(d.next(t0 + 120s)) == Approx(25).margin(1e-9));

    for (int i = 0; i <= 1000; ++i) {
        const double v = number(d.next(t0 + std::chrono::milliseconds(i * 737)));
        CHECK(v >= 18);
        CHECK(v <= 32);
    }
}

TEST_CASE("random_walk is deterministic per seed and stays in range", "[driver:simulated]") {
    const std::vector<double> a = walk(7, 2000);
    CHECK(walk(7, 2000) == a);
    CHECK(walk(8, 2000) != a);
    for (const double v : a) {
        REQUIRE(v >= 40);
        REQUIRE(v <= 90);
    }
    // It moves, by at most `step` per reading.
    CHECK(a.front() != a.back());
    for (std::size_t i = 1; i < a.size(); ++i)
        CHECK(std::abs(a[i] - a[i - 1]) <= 1.5 + 1e-12);

    SECTION("a step larger than the range still stays inside it") {
        for (const long long seed : {1LL, 2LL, 3LL}) {
            for (const double v : walk(seed, 2000, 0, 10, 35)) {
                REQUIRE(v >= 0);
                REQUIRE(v <= 10);
            }
        }
    }
}

TEST_CASE("constant and sequence", "[driver:simulated]") {
    SECTION("constant") {
        SensorSpec s = spec_with_defaults();
        s.options.set("profile", std::string("constant"));
        s.options.set("value", 21.5);
        // min/max do not matter for constant, even when not ordered.
        s.options.set("min", 5.0);
        s.options.set("max", 5.0);
        SimulatedDriver d(s);
        for (int i = 0; i < 5; ++i)
            CHECK(number(d.next(tg::MonoTime{} + i * 1s)) == 21.5);
    }
    SECTION("sequence cycles through its values") {
        SensorSpec s = spec_with_defaults();
        s.options.set("profile", std::string("sequence"));
        s.options.set("values", std::vector<double>{80, 75, 70});
        SimulatedDriver d(s);
        std::vector<double> got;
        for (int i = 0; i < 7; ++i)
            got.push_back(number(d.next(tg::MonoTime{} + i * 1s)));
        CHECK(got == std::vector<double>{80, 75, 70, 80, 75, 70, 80});
    }
}

TEST_CASE("type boolean gives booleans", "[driver:simulated]") {
    SECTION("sequence of 0 and 1") {
        SensorSpec s = spec_with_defaults(tg::ValueType::Boolean);
        s.options.set("profile", std::string("sequence"));
        s.options.set("values", std::vector<double>{0, 0, 1, 0});
        SimulatedDriver d(s);
        std::vector<tg::Value> got;
        for (int i = 0; i < 5; ++i)
            got.push_back(d.next(tg::MonoTime{} + i * 1s));
        CHECK(got == std::vector<tg::Value>{false, false, true, false, false});
    }
    SECTION("constant") {
        SensorSpec s = spec_with_defaults(tg::ValueType::Boolean);
        s.options.set("profile", std::string("constant"));
        s.options.set("value", 1.0);
        SimulatedDriver d(s);
        CHECK(d.next(tg::MonoTime{}) == tg::Value(true));
    }
}

TEST_CASE("poll stamps readings from the clock", "[driver:simulated]") {
    SensorSpec s = spec_with_defaults();
    s.options.set("profile", std::string("sequence"));
    s.options.set("values", std::vector<double>{3, 4});
    auto driver = tg::drivers::kSimulatedDriver.create(std::span(&s, 1));
    REQUIRE(driver);
    CHECK(driver->polled());

    tg::VirtualClock clock(tg::WallTime(std::chrono::milliseconds(1'795'713'353'123)));
    CaptureSink sink;
    driver->poll(clock, sink);
    clock.advance(2s);
    driver->poll(clock, sink);

    REQUIRE(sink.readings.size() == 2);
    CHECK(sink.bad.empty());
    CHECK(sink.readings[0].sensor == "sim.value");
    CHECK(sink.readings[0].value == tg::Value(3.0));
    CHECK(sink.readings[0].ts == tg::WallTime(std::chrono::milliseconds(1'795'713'353'123)));
    CHECK(sink.readings[1].value == tg::Value(4.0));
    CHECK(sink.readings[1].ts - sink.readings[0].ts == 2s);
    CHECK(sink.readings[1].mono - sink.readings[0].mono == 2s);
}

TEST_CASE("the factory refuses inconsistent options", "[driver:simulated]") {
    SECTION("min not below max") {
        SensorSpec s = spec_with_defaults();
        s.options.set("min", 50.0);
        s.options.set("max", 50.0);
        CHECK(refusal(s) ==
              std::pair<std::string, std::string>{"max", "max must be greater than min"});
        s.options.set("profile", std::string("random_walk"));
        s.options.set("max", 10.0);
        CHECK(refusal(s).first == "max");
    }
    SECTION("empty values for sequence") {
        SensorSpec s = spec_with_defaults();
        s.options.set("profile", std::string("sequence"));
        CHECK(refusal(s) == std::pair<std::string, std::string>{
                                "values", "the sequence profile needs a non-empty 'values' list"});
    }
    SECTION("unknown profile") {
        SensorSpec s = spec_with_defaults();
        s.options.set("profile", std::string("square"));
        CHECK(refusal(s) ==
              std::pair<std::string, std::string>{
                  "profile",
                  "unknown profile 'square' (expected sine, random_walk, constant or sequence)"});
    }
    SECTION("zero period, zero step, string type") {
        SensorSpec s = spec_with_defaults();
        s.options.set("period", std::chrono::milliseconds(0));
        CHECK(refusal(s).first == "period");

        SensorSpec w = spec_with_defaults();
        w.options.set("profile", std::string("random_walk"));
        w.options.set("step", 0.0);
        CHECK(refusal(w).first == "step");

        CHECK(refusal(spec_with_defaults(tg::ValueType::String)).first == "profile");
    }
}
