// The mqtt input driver: messages the gateway's connection received, turned
// into readings; sensors on one topic share one subscription.
#include <catch2/catch.hpp>

#include "../driver_test_util.h"
#include "drivers/mqtt/mqtt_input.h"

using namespace tg;
using namespace tg::test;

namespace {
VirtualClock clock_at(long long ms) {
    return VirtualClock(WallTime(std::chrono::milliseconds(ms)));
}
}  // namespace

TEST_CASE("mqtt input: a plain payload is the value", "[driver:mqtt]") {
    const auto spec = make_spec("mqtt", "{topic: tasmota/plug1/power}", "number", "plug.power");
    auto d = drivers::kMqttInputDriver.create(std::span(&spec, 1));
    CHECK_FALSE(d->polled());
    REQUIRE(d->subscriptions() == std::vector<std::string>{"tasmota/plug1/power"});
    RecordingSink sink;
    VirtualClock clock = clock_at(1'000);
    d->on_message("tasmota/plug1/power", "42.5", clock, sink);
    REQUIRE(sink.readings().size() == 1);
    CHECK(sink.readings()[0].sensor == "plug.power");
    CHECK(std::get<double>(sink.readings()[0].value) == 42.5);
    CHECK(sink.readings()[0].ts == WallTime(std::chrono::milliseconds(1'000)));
}

TEST_CASE("mqtt input: sensors on one topic share one driver, each with its pointer",
          "[driver:mqtt]") {
    const Config c = parse_config(
        "sensors:\n"
        "  - {name: room.temp, driver: mqtt, options: {topic: zigbee2mqtt/room, json_pointer: "
        "/temperature}}\n"
        "  - {name: room.humidity, driver: mqtt, options: {topic: zigbee2mqtt/room, "
        "json_pointer: /humidity}}\n"
        "  - {name: room.occupied, driver: mqtt, type: boolean, options: {topic: "
        "zigbee2mqtt/room, json_pointer: /occupancy}}\n",
        "t.yaml");
    std::vector<drivers::SensorSpec> specs;
    for (const auto& s : c.sensors)
        specs.push_back(s.spec());
    CHECK(drivers::kMqttInputDriver.share_key(specs[0]) ==
          drivers::kMqttInputDriver.share_key(specs[1]));
    auto d = drivers::kMqttInputDriver.create(specs);
    RecordingSink sink;
    VirtualClock clock;
    d->on_message("zigbee2mqtt/room", R"({"temperature":21.5,"humidity":40,"occupancy":true})",
                  clock, sink);
    const auto r = sink.readings();
    REQUIRE(r.size() == 3);
    CHECK(r[0].sensor == "room.temp");
    CHECK(std::get<double>(r[0].value) == 21.5);
    CHECK(std::get<double>(r[1].value) == 40);
    CHECK(std::get<bool>(r[2].value) == true);
}

TEST_CASE("mqtt input: unreadable payloads are bad readings, empty ones are ignored",
          "[driver:mqtt]") {
    const auto spec =
        make_spec("mqtt", "{topic: 'dev/+/state', json_pointer: /t}", "number", "dev.t");
    auto d = drivers::kMqttInputDriver.create(std::span(&spec, 1));
    RecordingSink sink;
    VirtualClock clock;
    d->on_message("dev/a/state", "not json", clock, sink);
    d->on_message("dev/a/state", R"({"h": 1})", clock, sink);
    d->on_message("dev/a/state", "", clock, sink);  // a retained message deleted
    CHECK(sink.readings().empty());
    const auto bad = sink.bad();
    REQUIRE(bad.size() == 2);
    CHECK(bad[0].sensor == "dev.t");
    CHECK(bad[0].reason == "parse");
    CHECK_THAT(bad[0].detail, Catch::Contains("dev/a/state"));
}

TEST_CASE("mqtt input: topic filters are checked", "[driver:mqtt]") {
    auto key_of = [](const std::string& options) {
        try {
            const auto spec = make_spec("mqtt", options);
            drivers::kMqttInputDriver.create(std::span(&spec, 1));
        } catch (const LoadError& e) {
            return std::string(e.what());
        } catch (const drivers::OptionError& e) {
            return e.key();
        }
        return std::string();
    };
    CHECK(key_of("{topic: 'a/#'}").empty());
    CHECK(key_of("{topic: 'a/+/c'}").empty());
    CHECK_THAT(key_of("{topic: 'a/b#'}"), Catch::Contains("whole level"));
    CHECK_THAT(key_of("{topic: 'a/#/c'}"), Catch::Contains("last level"));
    CHECK_THAT(key_of("{}"), Catch::Contains("topic"));
}
