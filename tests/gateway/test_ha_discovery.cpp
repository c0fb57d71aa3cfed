// Home Assistant discovery (SPEC §8) without a broker: the config keys, the
// payloads of every kind of entity, the announced-topics file, and the
// announcer's connect, birth, rate limit, reload and restart behaviour.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../core/temp_dir.h"
#include "config.h"
#include "ha_discovery.h"

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const char* const kConfig = R"(
gateway: { id: greenhouse-pi }
homeassistant: { discovery: true }
sensors:
  - name: greenhouse.temp
    driver: simulated
    unit: "°C"
  - name: air.hum
    driver: simulated
    unit: "%"
    ha: { device_class: humidity, name: Air humidity }
  - name: door.open
    driver: simulated
    type: boolean
  - name: fast.raw
    driver: simulated
    publish: events
  - name: local.raw
    driver: simulated
    publish: none
  - name: state.only
    driver: simulated
    publish: state
    unit: bar
outputs:
  - name: fan
    driver: file
    remote: true
    options: { path: /tmp/fan }
  - name: led
    driver: file
    options: { path: /tmp/led }
)";

std::string error_of(const std::string& text) {
    try {
        tg::parse_config(text, "t.yaml");
    } catch (const tg::LoadError& e) {
        return e.diagnostics().items().front().format();
    }
    return "no error";
}

json payload_of(const std::vector<tg::ha::Entity>& es, const std::string& object_id) {
    for (const tg::ha::Entity& e : es) {
        if (e.object_id == object_id) return json::parse(e.payload);
    }
    FAIL("no entity " << object_id);
    return {};
}

struct Recorder {
    std::vector<tg::OutMessage> sent;
    bool connected = true;
    tg::ha::HaAnnouncer::PublishFn publish() {
        return [this](tg::OutMessage m) { sent.push_back(std::move(m)); };
    }
    tg::ha::HaAnnouncer::ConnectedFn online() {
        return [this] { return connected; };
    }
    std::size_t count(const std::string& topic, bool empty = false) const {
        return static_cast<std::size_t>(
            std::count_if(sent.begin(), sent.end(), [&](const tg::OutMessage& m) {
                return m.topic == topic && m.payload.empty() == empty;
            }));
    }
};

tg::MqttIncoming status(const std::string& payload, bool retained = false,
                        const std::string& topic = "homeassistant/status") {
    return tg::MqttIncoming{topic, payload, retained};
}

}  // namespace

TEST_CASE("ha: config defaults, keys and their errors", "[ha][config]") {
    const tg::Config def;
    CHECK_FALSE(def.homeassistant.discovery);
    CHECK(def.homeassistant.prefix == "homeassistant");

    const tg::Config c = tg::parse_config(kConfig, "t.yaml");
    CHECK(c.homeassistant.discovery);
    CHECK(c.sensors[1].ha_device_class == "humidity");
    CHECK(c.sensors[1].ha_name == "Air humidity");
    CHECK(c.sensors[0].ha_device_class.empty());

    CHECK(error_of("homeassistant: { discovery: true, prefx: x }\nsensors: []\n") ==
          "t.yaml:1:35: error: unknown key 'prefx' in 'homeassistant' (did you mean 'prefix'?)");
    CHECK(error_of("homeassistant: { prefix: 'ha/#' }\nsensors: []\n") ==
          "t.yaml:1:26: error: homeassistant.prefix: 'ha/#' must not contain the wildcards '+' or "
          "'#'");
    CHECK(error_of("homeassistant: { discovery: maybe }\nsensors: []\n")
              .find("t.yaml:1:29: error:") == 0);
    CHECK(error_of("sensors:\n  - name: a\n    driver: simulated\n"
                   "    ha: { device_class: temprature }\n") ==
          "t.yaml:4:25: error: unknown device_class 'temprature' for a number sensor (did you "
          "mean 'temperature'?)");
    CHECK(error_of("sensors:\n  - name: a\n    driver: simulated\n    type: boolean\n"
                   "    ha: { device_class: temperature }\n") ==
          "t.yaml:5:25: error: device_class 'temperature' is for number sensors, not boolean "
          "ones");
    CHECK(error_of("sensors:\n  - name: a\n    driver: simulated\n    ha: { nmae: x }\n") ==
          "t.yaml:4:11: error: unknown key 'nmae' in 'ha' (did you mean 'name'?)");
    CHECK(error_of("sensors:\n  - name: a\n    driver: simulated\n    ha: { name: [1] }\n")
              .find("t.yaml:4:17: error:") == 0);
    CHECK(error_of("sensors:\n  - name: a\n    driver: simulated\n    ha: 3\n")
              .find("t.yaml:4:9: error:") == 0);
}

TEST_CASE("ha: an ha block on a sensor without a state topic is a warning", "[ha][config]") {
    tg::Diagnostics warnings;
    const tg::Config c = tg::parse_config(
        "sensors:\n  - name: a\n    driver: simulated\n"
        "    publish: events\n    ha: { name: A }\n",
        "t.yaml", &warnings);
    REQUIRE(c.sensors.size() == 1);
    REQUIRE(warnings.items().size() == 1);
    CHECK(warnings.items()[0].format() ==
          "t.yaml:5:5: warning: ha has no effect with publish: events (Home Assistant reads the "
          "state topic)");
}

TEST_CASE("ha: device classes and ids", "[ha]") {
    CHECK(tg::ha::device_class_for_unit("°C") == "temperature");
    CHECK(tg::ha::device_class_for_unit("°F") == "temperature");
    CHECK(tg::ha::device_class_for_unit("K") == "temperature");
    CHECK(tg::ha::device_class_for_unit("hPa") == "pressure");
    CHECK(tg::ha::device_class_for_unit("Pa") == "pressure");
    CHECK(tg::ha::device_class_for_unit("bar") == "pressure");
    CHECK(tg::ha::device_class_for_unit("V") == "voltage");
    CHECK(tg::ha::device_class_for_unit("A") == "current");
    CHECK(tg::ha::device_class_for_unit("W") == "power");
    CHECK(tg::ha::device_class_for_unit("lx") == "illuminance");
    CHECK(tg::ha::device_class_for_unit("%").empty());  // humidity? battery? ambiguous
    CHECK(tg::ha::device_class_for_unit("").empty());
    CHECK(tg::ha::check_device_class("temperature", tg::ValueType::Number).empty());
    CHECK(tg::ha::check_device_class("door", tg::ValueType::Boolean).empty());
    CHECK(tg::ha::check_device_class("timestamp", tg::ValueType::String).empty());
    CHECK(tg::ha::check_device_class("enmu", tg::ValueType::String) ==
          "unknown device_class 'enmu' for a string sensor (did you mean 'enum'?)");
    CHECK(tg::ha::check_device_class("zzzzzzzz", tg::ValueType::String) ==
          "unknown device_class 'zzzzzzzz' for a string sensor (available: date, enum, "
          "timestamp)");
    CHECK(tg::ha::id_part("a.b c/d+#é-_Z9") == "a_b_c_d____-_Z9");
}

TEST_CASE("ha: one entity per sensor, rule and output, per SPEC §8", "[ha]") {
    const tg::Config c = tg::parse_config(kConfig, "t.yaml");
    const auto es = tg::ha::discovery_entities(c, {"too_warm"}, "1.2.3");
    std::vector<std::string> topics;
    for (const auto& e : es)
        topics.push_back(e.topic);
    CHECK(topics == std::vector<std::string>{
                        "homeassistant/sensor/greenhouse-pi/greenhouse_temp/config",
                        "homeassistant/sensor/greenhouse-pi/air_hum/config",
                        "homeassistant/binary_sensor/greenhouse-pi/door_open/config",
                        "homeassistant/sensor/greenhouse-pi/state_only/config",
                        "homeassistant/binary_sensor/greenhouse-pi/rule_too_warm/config",
                        "homeassistant/switch/greenhouse-pi/output_fan/config",
                        "homeassistant/binary_sensor/greenhouse-pi/output_led/config",
                    });

    const json t = payload_of(es, "greenhouse_temp");
    CHECK(t["name"] == "Greenhouse temp");
    CHECK(t["unique_id"] == "tidegate_greenhouse-pi_greenhouse_temp");
    CHECK(t["default_entity_id"] == "sensor.greenhouse-pi_greenhouse_temp");
    CHECK(t["object_id"] == "greenhouse-pi_greenhouse_temp");
    CHECK(t["state_topic"] == "tidegate/greenhouse-pi/state/greenhouse/temp");
    CHECK(t["value_template"] == "{{ value_json.value }}");
    CHECK(t["unit_of_measurement"] == "°C");
    CHECK(t["state_class"] == "measurement");
    CHECK(t["device_class"] == "temperature");
    CHECK(t["availability_topic"] == "tidegate/greenhouse-pi/status");
    CHECK(t["availability_template"] == "{{ value_json.state }}");
    CHECK(t["payload_available"] == "online");
    CHECK(t["payload_not_available"] == "offline");
    CHECK(t["device"] == json::parse(R"({"identifiers":["tidegate_greenhouse-pi"],
        "name":"greenhouse-pi","manufacturer":"tidegate","model":"tidegate edge gateway",
        "sw_version":"1.2.3"})"));
    CHECK(t["origin"] == json::parse(R"({"name":"tidegate","sw_version":"1.2.3"})"));

    const json h = payload_of(es, "air_hum");
    CHECK(h["name"] == "Air humidity");
    CHECK(h["device_class"] == "humidity");
    CHECK(h["unit_of_measurement"] == "%");
    CHECK(payload_of(es, "state_only")["device_class"] == "pressure");

    const json d = payload_of(es, "door_open");
    CHECK(d["value_template"] == "{{ 'ON' if value_json.value else 'OFF' }}");
    CHECK(d["default_entity_id"] == "binary_sensor.greenhouse-pi_door_open");
    CHECK_FALSE(d.contains("unit_of_measurement"));
    CHECK_FALSE(d.contains("state_class"));
    CHECK_FALSE(d.contains("device_class"));

    const json r = payload_of(es, "rule_too_warm");
    CHECK(r["unique_id"] == "tidegate_greenhouse-pi_rule_too_warm");
    CHECK(r["name"] == "Too warm");
    CHECK(r["device_class"] == "problem");
    CHECK(r["state_topic"] == "tidegate/greenhouse-pi/rules/too_warm");
    CHECK(r["value_template"] == "{{ 'ON' if value_json.value else 'OFF' }}");

    const json f = payload_of(es, "output_fan");
    CHECK(f["unique_id"] == "tidegate_greenhouse-pi_output_fan");
    CHECK(f["default_entity_id"] == "switch.greenhouse-pi_output_fan");
    CHECK(f["command_topic"] == "tidegate/greenhouse-pi/cmd/outputs/fan");
    CHECK(f["payload_on"] == "on");
    CHECK(f["payload_off"] == "off");
    CHECK(f["state_topic"] == "tidegate/greenhouse-pi/outputs/fan");
    CHECK(f["value_template"] == "{{ value_json.value }}");
    CHECK(f["state_on"] == "on");
    CHECK(f["state_off"] == "off");

    const json l = payload_of(es, "output_led");
    CHECK_FALSE(l.contains("command_topic"));
    CHECK(l["state_topic"] == "tidegate/greenhouse-pi/outputs/led");
    CHECK(l["default_entity_id"] == "binary_sensor.greenhouse-pi_output_led");
}

TEST_CASE("ha: colliding object ids are announced once", "[ha]") {
    const tg::Config c = tg::parse_config(
        "sensors:\n  - { name: a.b_c, driver: simulated }\n  - { name: a_b.c, driver: "
        "simulated }\n",
        "t.yaml");
    std::vector<std::string> skipped;
    const auto es = tg::ha::discovery_entities(c, {}, "1", &skipped);
    REQUIRE(es.size() == 1);
    CHECK(json::parse(es[0].payload)["state_topic"] == "tidegate/" + c.gateway.id + "/state/a/b_c");
    REQUIRE(skipped.size() == 1);
    CHECK(skipped[0].find("sensor 'a_b.c' is not announced") == 0);
}

TEST_CASE("ha: entity names do not repeat the device's", "[ha]") {
    const tg::Config c = tg::parse_config(
        "gateway: { id: Greenhouse }\nsensors:\n  - { name: greenhouse.temp, driver: simulated }\n"
        "  - { name: greenhouse, driver: simulated }\n  - { name: greenhouses.air, driver: "
        "simulated }\n",
        "t.yaml");
    const auto es = tg::ha::discovery_entities(c, {"greenhouse_too_hot"}, "1");
    REQUIRE(es.size() == 4);
    CHECK(json::parse(es[0].payload)["name"] == "Temp");
    CHECK(json::parse(es[1].payload)["name"] == "Greenhouse");  // nothing would be left
    CHECK(json::parse(es[2].payload)["name"] == "Greenhouses air");
    CHECK(json::parse(es[3].payload)["name"] == "Too hot");
}

TEST_CASE("ha: the announced-topics file reads back, and hostile content reads as nothing",
          "[ha]") {
    const std::set<std::string> topics{"homeassistant/sensor/g/a/config",
                                       "ha/switch/g/output_x/config"};
    CHECK(tg::ha::announced_from_text(tg::ha::announced_to_text(topics)) == topics);
    CHECK(tg::ha::announced_from_text("").empty());
    CHECK(tg::ha::announced_from_text("garbage{").empty());
    CHECK(tg::ha::announced_from_text("[1,2]").empty());
    CHECK(tg::ha::announced_from_text(R"({"topics":"x"})").empty());
    CHECK(tg::ha::announced_from_text(
              R"({"topics":[1, "a/#/config", "a/+/b/config", "a/b", "/config", "ok/x/config"]})") ==
          std::set<std::string>{"ok/x/config"});
}

TEST_CASE("ha: announcer: connect, birth at most once a second, reload, restart", "[ha]") {
    tg::test::TempDir dir("ha");
    tg::Config c = tg::parse_config(kConfig, "t.yaml");
    c.gateway.data_dir = dir.path().string();
    const std::string temp = "homeassistant/sensor/greenhouse-pi/greenhouse_temp/config";
    const std::string warm = "homeassistant/binary_sensor/greenhouse-pi/rule_too_warm/config";
    const std::string cold = "homeassistant/binary_sensor/greenhouse-pi/rule_too_cold/config";
    const tg::MonoTime t0{std::chrono::seconds(100)};
    Recorder rec;
    {
        rec.connected = false;
        tg::ha::HaAnnouncer a(c, "1", rec.publish(), rec.online());
        CHECK(a.status_topic() == "homeassistant/status");
        a.set_rules({"too_warm", "too_cold"});
        CHECK(rec.sent.empty());  // not connected: the connect announces

        rec.connected = true;
        a.on_connected(t0);
        CHECK(rec.sent.size() == 8);
        for (const auto& m : rec.sent) {
            CHECK(m.retain);
            CHECK(m.qos == 1);
        }
        CHECK(rec.count(warm) == 1);
        CHECK(a.announces() == 1);

        // Not a birth message: other topics, retained, other payloads.
        CHECK_FALSE(a.on_message(status("online", false, "homeassistant/status/x"), t0 + 2s));
        CHECK(a.on_message(status("online", true), t0 + 2s));
        CHECK(a.on_message(status("offline"), t0 + 2s));
        CHECK(a.on_message(status("Online"), t0 + 2s));
        CHECK(a.on_message(status(std::string(1 << 20, 'x')), t0 + 2s));
        CHECK(a.announces() == 1);
        CHECK_FALSE(a.next_deadline());

        // A birth: announced at once; a storm within the second: one more, deferred.
        CHECK(a.on_message(status("online"), t0 + 3s));
        CHECK(a.announces() == 2);
        for (int i = 0; i < 50; ++i)
            a.on_message(status("online"), t0 + 3s + std::chrono::milliseconds(10 * i));
        CHECK(a.announces() == 2);
        REQUIRE(a.next_deadline());
        CHECK(*a.next_deadline() == t0 + 4s);
        a.on_timer(t0 + 3900ms);
        CHECK(a.announces() == 2);
        a.on_timer(t0 + 4s);
        CHECK(a.announces() == 3);
        CHECK_FALSE(a.next_deadline());
        CHECK(rec.count(warm) == 3);

        // Reload while connected: only what changed; the removed rule emptied.
        rec.sent.clear();
        a.set_rules({"too_warm"});
        REQUIRE(rec.sent.size() == 1);
        CHECK(rec.sent[0].topic == cold);
        CHECK(rec.sent[0].payload.empty());
        CHECK(rec.sent[0].retain);
        std::ifstream in(tg::ha::announced_path(c));
        const auto saved =
            tg::ha::announced_from_text(std::string(std::istreambuf_iterator<char>(in), {}));
        CHECK(saved.count(warm) == 1);
        CHECK(saved.count(cold) == 0);
        CHECK(saved.size() == 7);
    }
    // A restart with a sensor gone: emptied at the first connect.
    c.sensors.erase(c.sensors.begin());
    rec.sent.clear();
    rec.connected = false;
    tg::ha::HaAnnouncer b(c, "1", rec.publish(), rec.online());
    b.set_rules({"too_warm"});
    CHECK(rec.sent.empty());
    rec.connected = true;
    b.on_connected(t0 + 100s);
    CHECK(rec.count(temp, true) == 1);
    CHECK(rec.count(warm) == 1);
    CHECK(rec.sent.size() == 7);
    // Emptied once: the next connect does not repeat it.
    rec.sent.clear();
    b.on_connected(t0 + 200s);
    CHECK(rec.count(temp, true) == 0);
    CHECK(rec.sent.size() == 6);
}
