// Config loading (SPEC §2): defaults, every section, and the exact place and
// wording of each kind of error a user can make.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../core/finishes_within.h"
#include "../core/temp_dir.h"
#include "config.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using tg::test::TempDir;

namespace {

// The formatted errors of a config that must fail to load.
std::vector<std::string> errors_of(const std::string& text, const std::string& file = "t.yaml") {
    try {
        tg::parse_config(text, file);
    } catch (const tg::LoadError& e) {
        std::vector<std::string> out;
        for (const tg::SourceError& item : e.diagnostics().items())
            out.push_back(item.format());
        return out;
    }
    FAIL("expected the config to be rejected:\n" << text);
    return {};
}

// The single error of a config with exactly one problem.
std::string error_of(const std::string& text) {
    const std::vector<std::string> errors = errors_of(text);
    INFO(text);
    REQUIRE(errors.size() == 1);
    return errors.front();
}

const std::string kSine =
    "sensors:\n"
    "  - name: greenhouse.temp\n"
    "    driver: simulated\n";

}  // namespace

TEST_CASE("minimal config gets every default", "[config]") {
    const tg::Config c = tg::parse_config("sensors: []\n", "/etc/tidegate/tidegate.yaml");
    CHECK(c.file == "/etc/tidegate/tidegate.yaml");
    CHECK(c.gateway.data_dir == "/var/lib/tidegate");
    CHECK_FALSE(c.gateway.id.empty());
    CHECK(c.mqtt.uri == "tcp://localhost:1883");
    CHECK(c.mqtt.version == 4);
    CHECK(c.mqtt.client_id == "tidegate-" + c.gateway.id);
    CHECK(c.mqtt.topic_prefix == "tidegate");
    CHECK(c.mqtt.qos == 1);
    CHECK(c.mqtt.keepalive == 30s);
    CHECK(c.mqtt.username.empty());
    CHECK(c.mqtt.password_file.empty());
    CHECK(c.mqtt.password.empty());
    CHECK_FALSE(c.mqtt.tls.present);
    CHECK(c.rules.paths == std::vector<std::string>{"/etc/tidegate/rules.d"});
    CHECK(c.rules.tick == 1s);
    CHECK(c.outbox.max_bytes == 64u * 1024 * 1024);
    CHECK_FALSE(c.outbox.sync_always);
    CHECK(c.outbox.sync == 1s);
    CHECK(c.journal.retain_bytes == 0);
    CHECK(c.metrics.interval == 60s);
    CHECK(c.sensors.empty());
    CHECK(c.outputs.empty());
    CHECK(c.topic_base() == "tidegate/" + c.gateway.id);
}

TEST_CASE("default gateway id is derived from this host", "[config]") {
    char host[256] = {};
    REQUIRE(::gethostname(host, sizeof host - 1) == 0);
    std::string machine_id;
    std::ifstream("/etc/machine-id") >> machine_id;
    const tg::Config c = tg::parse_config("sensors: []\n", "t.yaml");
    CHECK(c.gateway.id == tg::default_gateway_id(host, machine_id));
}

TEST_CASE("every section is parsed", "[config]") {
    const std::string text = R"(gateway:
  id: greenhouse-pi
  data_dir: /srv/tidegate
mqtt:
  uri: ssl://broker.example:8883
  version: 5
  client_id: gh1
  topic_prefix: site/a
  qos: 0
  keepalive: 1m30s
  username: pi
rules:
  paths: [/etc/r1, /etc/r2.yaml]
  tick: 250ms
outbox:
  max_bytes: 512KiB
  sync: always
journal:
  retain_bytes: 1GiB
metrics:
  interval: 5m
sensors:
  - name: greenhouse.temp
    driver: simulated
    interval: 2s
    type: number
    unit: "°C"
    range: [-40, 125.5]
    precision: 2
    deadband: 0.2
    heartbeat: 5m
    publish: events
    options: { profile: sine, min: 18, max: 32, period: 2m }
  - name: door.open
    driver: simulated
    type: boolean
    publish: none
    options:
      profile: sequence
      values: [0, 1]
outputs:
  - name: fan
    driver: gpio
    options: { chip: gpiochip1, line: 17, active_low: true, initial: ON }
    remote: true
  - name: led
    driver: file
    options: { path: /sys/class/leds/led0/brightness }
  - name: plug
    driver: mqtt
    options: { topic: cmnd/plug1/POWER, qos: 0, retain: yes }
)";
    tg::Diagnostics warnings;
    const tg::Config c = tg::parse_config(text, "/etc/tidegate/tidegate.yaml", &warnings);
    CHECK(warnings.items().empty());
    CHECK(c.gateway.id == "greenhouse-pi");
    CHECK(c.gateway.data_dir == "/srv/tidegate");
    CHECK(c.mqtt.uri == "ssl://broker.example:8883");
    CHECK(c.mqtt.version == 5);
    CHECK(c.mqtt.client_id == "gh1");
    CHECK(c.mqtt.topic_prefix == "site/a");
    CHECK(c.mqtt.qos == 0);
    CHECK(c.mqtt.keepalive == 90s);
    CHECK(c.mqtt.username == "pi");
    CHECK(c.topic_base() == "site/a/greenhouse-pi");
    CHECK(c.rules.paths == std::vector<std::string>{"/etc/r1", "/etc/r2.yaml"});
    CHECK(c.rules.tick == 250ms);
    CHECK(c.outbox.max_bytes == 512u * 1024);
    CHECK(c.outbox.sync_always);
    CHECK(c.journal.retain_bytes == 1ull << 30);
    CHECK(c.metrics.interval == 5min);

    REQUIRE(c.sensors.size() == 2);
    const tg::SensorConfig& t = c.sensors[0];
    CHECK(t.name == "greenhouse.temp");
    CHECK(t.path() == "greenhouse/temp");
    CHECK(t.driver == "simulated");
    CHECK(t.interval == 2s);
    CHECK(t.type == tg::ValueType::Number);
    CHECK(t.unit == "°C");
    REQUIRE(t.range.has_value());
    CHECK(t.range->first == -40);
    CHECK(t.range->second == 125.5);
    CHECK(t.precision == 2);
    CHECK(t.deadband == 0.2);
    CHECK(t.heartbeat == std::chrono::milliseconds(5min));
    CHECK(t.publish == tg::PublishMode::Events);
    CHECK(t.options.string("profile") == "sine");
    CHECK(t.options.number("min") == 18);
    CHECK(t.options.number("max") == 32);
    CHECK(t.options.duration("period") == 2min);
    CHECK(t.options.number("step") == 1);        // default
    CHECK(t.options.integer("seed") == 1);       // default
    CHECK(t.options.numbers("values").empty());  // default
    CHECK(t.pos.line == 23);
    CHECK(t.pos.col == 5);
    const tg::drivers::SensorSpec spec = t.spec();
    CHECK(spec.name == "greenhouse.temp");
    CHECK(spec.interval == 2s);
    CHECK(spec.options.number("max") == 32);

    const tg::SensorConfig& d = c.sensors[1];
    CHECK(d.type == tg::ValueType::Boolean);
    CHECK(d.interval == 5s);
    CHECK(d.publish == tg::PublishMode::None);
    CHECK(d.options.numbers("values") == std::vector<double>{0, 1});
    CHECK_FALSE(d.range.has_value());
    CHECK_FALSE(d.precision.has_value());

    REQUIRE(c.outputs.size() == 3);
    CHECK(c.outputs[0].name == "fan");
    CHECK(c.outputs[0].driver == "gpio");
    CHECK(c.outputs[0].remote);
    CHECK(c.outputs[0].options.string("chip") == "gpiochip1");
    CHECK(c.outputs[0].options.integer("line") == 17);
    CHECK(c.outputs[0].options.boolean("active_low"));
    CHECK(c.outputs[0].options.string("initial") == "on");
    CHECK_FALSE(c.outputs[1].remote);
    CHECK(c.outputs[1].options.string("path") == "/sys/class/leds/led0/brightness");
    CHECK(c.outputs[1].options.string("on") == "1");
    CHECK(c.outputs[1].options.string("off") == "0");
    CHECK(c.outputs[2].options.string("topic") == "cmnd/plug1/POWER");
    CHECK(c.outputs[2].options.string("on") == "ON");
    CHECK(c.outputs[2].options.integer("qos") == 0);
    CHECK(c.outputs[2].options.boolean("retain"));
}

TEST_CASE("small forms of values are accepted", "[config]") {
    SECTION("rules.paths as one string, outbox.sync as a duration, version 3.1.1") {
        const tg::Config c = tg::parse_config(
            "mqtt: {version: 3.1.1}\nrules: {paths: /etc/r}\noutbox: {sync: 200ms}\n"
            "sensors:\n",
            "/x/t.yaml");
        CHECK(c.mqtt.version == 4);
        CHECK(c.rules.paths == std::vector<std::string>{"/etc/r"});
        CHECK(c.outbox.sync == 200ms);
        CHECK_FALSE(c.outbox.sync_always);
        CHECK(c.sensors.empty());
    }
    SECTION("interval 0 and journal size 0 are allowed") {
        const tg::Config c = tg::parse_config(
            "journal: {retain_bytes: 0}\n" + kSine + "    interval: 0\n", "t.yaml");
        CHECK(c.sensors.at(0).interval == 0ms);
        CHECK(c.journal.retain_bytes == 0);
    }
    SECTION("output initial accepts on/off/true/false in any case") {
        for (const auto& [written, stored] : std::vector<std::pair<std::string, std::string>>{
                 {"on", "on"}, {"OFF", "off"}, {"True", "on"}, {"false", "off"}, {"Off", "off"}}) {
            const tg::Config c = tg::parse_config(
                "sensors: []\noutputs:\n  - {name: fan, driver: gpio, options: {line: 4, "
                "initial: " +
                    written + "}}\n",
                "t.yaml");
            CHECK(c.outputs.at(0).options.string("initial") == stored);
        }
        CHECK(error_of("sensors: []\noutputs:\n"
                       "  - {name: fan, driver: gpio, options: {line: 4, initial: maybe}}\n") ==
              "t.yaml:3:59: error: option 'initial': expected on or off, got 'maybe'");
    }
}

TEST_CASE("client_id defaults to tidegate-<gateway.id>", "[config]") {
    const tg::Config c = tg::parse_config("gateway: {id: shed}\nsensors: []\n", "t.yaml");
    CHECK(c.mqtt.client_id == "tidegate-shed");
    CHECK(c.topic_base() == "tidegate/shed");
}

TEST_CASE("default_gateway_id", "[config]") {
    CHECK(tg::default_gateway_id("greenhouse-pi", "0123456789abcdef") == "greenhouse-pi");
    CHECK(tg::default_gateway_id("shed.example.org", "0123456789abcdef") == "shed");
    CHECK(tg::default_gateway_id("my host+1", "") == "my-host-1");
    CHECK(tg::default_gateway_id("", "abcdef123456") == "tidegate");
    CHECK(tg::default_gateway_id(".local", "abcdef123456") == "tidegate");
    CHECK(tg::default_gateway_id("raspberrypi", "a1b2c3d4e5f60718293a4b5c6d7e8f90\n") ==
          "raspberrypi-a1b2c3");
    CHECK(tg::default_gateway_id("localhost", "deadbeefcafe\n") == "localhost-deadbe");
    CHECK(tg::default_gateway_id("localhost.localdomain", "0011223344") == "localhost-001122");
    CHECK(tg::default_gateway_id("raspberrypi", "") == "raspberrypi");
    CHECK(tg::default_gateway_id("raspberrypi", "abc") == "raspberrypi");
    CHECK(tg::default_gateway_id("raspberrypi2", "abcdef123456") == "raspberrypi2");
}

TEST_CASE("unknown keys are errors with a did-you-mean hint", "[config]") {
    SECTION("top level") {
        CHECK(error_of("sensors: []\nmqtt: {}\ngatewy: {}\n") ==
              "t.yaml:3:1: error: unknown key 'gatewy' (did you mean 'gateway'?)");
        // The misspelt key does not count as the required one.
        CHECK(errors_of("sensrs: []\n") ==
              std::vector<std::string>{
                  "t.yaml:1:1: error: unknown key 'sensrs' (did you mean 'sensors'?)",
                  "t.yaml:1:1: error: missing required key 'sensors'"});
    }
    SECTION("nested") {
        CHECK(error_of("mqtt:\n  uri: tcp://h:1883\n  kepalive: 10s\nsensors: []\n") ==
              "t.yaml:3:3: error: unknown key 'kepalive' in 'mqtt' (did you mean 'keepalive'?)");
    }
    SECTION("no close match lists the keys") {
        CHECK(error_of("journal:\n  zzz: 1\nsensors: []\n") ==
              "t.yaml:2:3: error: unknown key 'zzz' in 'journal' (expected one of: "
              "retain_bytes)");
    }
    SECTION("in a sensor") {
        CHECK(error_of(kSine + "    intervall: 5s\n") ==
              "t.yaml:4:5: error: unknown key 'intervall' in sensor (did you mean 'interval'?)");
    }
}

TEST_CASE("duplicate keys are errors at the second occurrence", "[config]") {
    CHECK(error_of("mqtt:\n  qos: 1\n  uri: tcp://a:1\n  qos: 0\nsensors: []\n") ==
          "t.yaml:4:3: error: duplicate key 'qos' (first at line 2)");
    CHECK(error_of("sensors: []\nmetrics: {}\nsensors: []\n") ==
          "t.yaml:3:1: error: duplicate key 'sensors' (first at line 1)");
    CHECK(error_of(kSine + "    options: {min: 1, min: 2}\n") ==
          "t.yaml:4:23: error: duplicate option 'min' (first at line 4)");
}

TEST_CASE("wrong types are errors at the value", "[config]") {
    CHECK(error_of("mqtt:\n  uri: {host: a}\nsensors: []\n") ==
          "t.yaml:2:8: error: mqtt.uri: expected text, got a map");
    CHECK(error_of(kSine + "    deadband: abc\n") ==
          "t.yaml:4:15: error: deadband: expected a number, got 'abc'");
    CHECK(error_of("mqtt: [1, 2]\nsensors: []\n") ==
          "t.yaml:1:7: error: mqtt: expected a map, got a list");
    CHECK(error_of("sensors: {a: 1}\n") ==
          "t.yaml:1:10: error: sensors: expected a list of sensors, got a map");
    CHECK(error_of("sensors:\n  - just-a-string\n") ==
          "t.yaml:2:5: error: expected a sensor (a map with name, driver, ...), got "
          "'just-a-string'");
    CHECK(error_of("mqtt:\n  username:\nsensors: []\n") ==
          "t.yaml:2:3: error: mqtt.username: expected text, got nothing");
    CHECK(error_of(kSine + "    precision: 2.5\n") ==
          "t.yaml:4:16: error: precision: expected a whole number, got '2.5'");
    CHECK(error_of(kSine + "    precision: 16\n") ==
          "t.yaml:4:16: error: precision: must be 0 to 15, got '16'");
    CHECK(error_of(kSine + "    range: [5, 1]\n") ==
          "t.yaml:4:12: error: range: low (5) must be below high (1)");
    CHECK(error_of(kSine + "    range: [1, x]\n") ==
          "t.yaml:4:16: error: range: expected a number, got 'x'");
    CHECK(error_of(kSine + "    range: [1]\n") ==
          "t.yaml:4:12: error: range: expected [low, high], got a list");
    CHECK(error_of(kSine + "    type: integer\n") ==
          "t.yaml:4:11: error: type: expected number, boolean or string, got 'integer'");
    CHECK(error_of(kSine + "    publish: some\n") ==
          "t.yaml:4:14: error: publish: expected all, events, state or none, got 'some'");
    CHECK(error_of(kSine + "    deadband: -1\n") ==
          "t.yaml:4:15: error: deadband: must not be negative, got '-1'");
    CHECK(error_of("gateway: {id: 'my pi'}\nsensors: []\n") ==
          "t.yaml:1:15: error: gateway.id: 'my pi' may only contain letters, digits, '_' and "
          "'-'");
    CHECK(error_of("sensors: []\noutputs:\n  - {name: fan, driver: gpio, remote: maybe, "
                   "options: {line: 1}}\n") ==
          "t.yaml:3:39: error: remote: expected true or false, got 'maybe'");
}

TEST_CASE("bad durations and sizes are errors with the reason", "[config]") {
    CHECK(error_of(kSine + "    interval: 5 seconds\n") ==
          "t.yaml:4:15: error: interval: invalid duration '5 seconds': a number needs a unit "
          "(ms, s, m, h, d), e.g. 250ms, 10s, 1m30s");
    CHECK(error_of("rules:\n  tick: 0\nsensors: []\n") ==
          "t.yaml:2:9: error: rules.tick: must be at least 1ms, got '0'");
    CHECK(error_of("mqtt:\n  keepalive: 500ms\nsensors: []\n") ==
          "t.yaml:2:14: error: mqtt.keepalive: must be at least 1s, got '500ms'");
    CHECK(error_of("outbox:\n  sync: sometimes\nsensors: []\n") ==
          "t.yaml:2:9: error: outbox.sync: invalid duration 'sometimes' (expected e.g. 250ms, "
          "10s, 5m, 1h, 1m30s)");
    CHECK(error_of("outbox:\n  max_bytes: 64MB\nsensors: []\n") ==
          "t.yaml:2:14: error: outbox.max_bytes: invalid size '64MB': unit must be B, KiB, MiB, "
          "GiB or TiB");
    CHECK(error_of("outbox:\n  max_bytes: 0\nsensors: []\n") ==
          "t.yaml:2:14: error: outbox.max_bytes: must be greater than 0");
    CHECK(error_of("journal: {retain_bytes: lots}\nsensors: []\n") ==
          "t.yaml:1:25: error: journal.retain_bytes: invalid size 'lots' (expected e.g. 512KiB, "
          "64MiB, 1GiB)");
    CHECK(error_of(kSine + "    heartbeat: 0\n") ==
          "t.yaml:4:16: error: heartbeat: must be at least 1ms, got '0'");
}

TEST_CASE("mqtt settings are checked", "[config]") {
    CHECK(error_of("mqtt:\n  uri: http://broker:1883\nsensors: []\n") ==
          "t.yaml:2:8: error: mqtt.uri: 'http://broker:1883' must start with tcp:// or ssl://");
    CHECK(error_of("mqtt:\n  uri: tcp://\nsensors: []\n") ==
          "t.yaml:2:8: error: mqtt.uri: 'tcp://' names no host");
    CHECK(error_of("mqtt:\n  qos: 2\nsensors: []\n") ==
          "t.yaml:2:8: error: mqtt.qos: must be 0 or 1, got '2'");
    CHECK(error_of("mqtt:\n  qos: one\nsensors: []\n") ==
          "t.yaml:2:8: error: mqtt.qos: expected a whole number, got 'one'");
    CHECK(error_of("mqtt:\n  version: 4\nsensors: []\n") ==
          "t.yaml:2:12: error: mqtt.version: expected 3.1.1 or 5, got '4'");
    CHECK(error_of("mqtt:\n  topic_prefix: a/+/b\nsensors: []\n") ==
          "t.yaml:2:17: error: mqtt.topic_prefix: 'a/+/b' must not contain the wildcards '+' "
          "or '#'");
    CHECK(error_of("mqtt:\n  topic_prefix: /a\nsensors: []\n") ==
          "t.yaml:2:17: error: mqtt.topic_prefix: '/a' must not start or end with '/'");
    CHECK(error_of("mqtt:\n  topic_prefix: a/\nsensors: []\n") ==
          "t.yaml:2:17: error: mqtt.topic_prefix: 'a/' must not start or end with '/'");
    CHECK(error_of("mqtt:\n  topic_prefix: ''\nsensors: []\n") ==
          "t.yaml:2:17: error: mqtt.topic_prefix: must not be empty");
}

TEST_CASE("drivers and their options are checked", "[config]") {
    SECTION("unknown driver with did-you-mean") {
        CHECK(error_of("sensors:\n  - name: a\n    driver: simulatd\n") ==
              "t.yaml:3:13: error: unknown driver 'simulatd' (did you mean 'simulated'?)");
        CHECK(error_of("sensors:\n  - name: a\n    driver: zigbee\n") ==
              "t.yaml:3:13: error: unknown driver 'zigbee' (available: simulated, file, w1, iio, "
              "gpio, "
              "serial, command, mqtt)");
        CHECK(error_of("sensors: []\noutputs:\n  - name: fan\n    driver: gpiio\n") ==
              "t.yaml:4:13: error: unknown output driver 'gpiio' (did you mean 'gpio'?)");
    }
    SECTION("unknown option with did-you-mean") {
        CHECK(error_of(kSine + "    options:\n      profle: sine\n") ==
              "t.yaml:5:7: error: unknown option 'profle' for driver 'simulated' (did you mean "
              "'profile'?)");
        CHECK(error_of("sensors: []\noutputs:\n  - name: led\n    driver: file\n"
                       "    options: {path: /x, onn: '1'}\n") ==
              "t.yaml:5:25: error: unknown option 'onn' for output driver 'file' (did you mean "
              "'on'?)");
    }
    SECTION("option of the wrong type") {
        CHECK(error_of(kSine + "    options: {min: low}\n") ==
              "t.yaml:4:20: error: option 'min': expected a number, got 'low'");
        CHECK(error_of(kSine + "    options: {seed: 1.5}\n") ==
              "t.yaml:4:21: error: option 'seed': expected a whole number, got '1.5'");
        CHECK(error_of(kSine + "    options: {period: 10}\n") ==
              "t.yaml:4:23: error: option 'period': invalid duration '10': a number needs a "
              "unit (ms, s, m, h, d), e.g. 250ms, 10s, 1m30s");
        CHECK(error_of(kSine + "    options: {profile: sequence, values: [1, two, 3]}\n") ==
              "t.yaml:4:46: error: option 'values': expected a number, got 'two'");
        CHECK(error_of(kSine + "    options: {values: 3}\n") ==
              "t.yaml:4:23: error: option 'values': expected a list of numbers, got '3'");
        CHECK(error_of(kSine + "    options: [1]\n") ==
              "t.yaml:4:14: error: options: expected a map, got a list");
        CHECK(error_of("sensors: []\noutputs:\n  - {name: fan, driver: gpio, options: {line: "
                       "x}}\n") ==
              "t.yaml:3:47: error: option 'line': expected a whole number, got 'x'");
    }
    SECTION("missing required option") {
        CHECK(error_of("sensors: []\noutputs:\n  - name: fan\n    driver: gpio\n"
                       "    options: {chip: gpiochip0}\n") ==
              "t.yaml:5:5: error: missing required option 'line' for output driver 'gpio' "
              "(line offset on the chip)");
        CHECK(error_of("sensors: []\noutputs:\n  - name: fan\n    driver: gpio\n") ==
              "t.yaml:3:5: error: missing required option 'line' for output driver 'gpio' "
              "(line offset on the chip)");
    }
    SECTION("cross-option rules from the driver, at the option's value") {
        CHECK(error_of(kSine + "    options: {min: 5, max: 5}\n") ==
              "t.yaml:4:28: error: option 'max': max must be greater than min");
        CHECK(error_of(kSine + "    options: {profile: wave}\n") ==
              "t.yaml:4:24: error: option 'profile': unknown profile 'wave' (expected sine, "
              "random_walk, constant or sequence)");
    }
    SECTION("cross-option rule about an option not written: at the sensor") {
        CHECK(error_of(kSine + "    options: {profile: sequence}\n") ==
              "t.yaml:2:5: error: sensor 'greenhouse.temp': the sequence profile needs a "
              "non-empty 'values' list");
        CHECK(error_of(kSine + "    options: {min: 200}\n") ==
              "t.yaml:2:5: error: sensor 'greenhouse.temp': max must be greater than min");
    }
}

TEST_CASE("sensor names are checked", "[config]") {
    SECTION("missing name") {
        CHECK(error_of("sensors:\n  - driver: simulated\n") ==
              "t.yaml:2:5: error: sensor has no 'name'");
    }
    SECTION("missing driver") {
        CHECK(error_of("sensors:\n  - name: a.b\n") ==
              "t.yaml:2:5: error: sensor 'a.b' has no 'driver'");
    }
    SECTION("duplicate names, at the second, naming the line of the first") {
        CHECK(error_of("sensors:\n"
                       "  - name: tank.level\n"
                       "    driver: simulated\n"
                       "  - name: door.open\n"
                       "    driver: simulated\n"
                       "  - name: tank.level\n"
                       "    driver: simulated\n") ==
              "t.yaml:6:11: error: duplicate sensor name 'tank.level' (first defined at line 2)");
    }
    SECTION("reserved names") {
        for (const std::string name :
             {"and", "or",    "not",     "true",   "false",   "avg",      "min",
              "max", "sum",   "count",   "stddev", "delta",   "rate",     "age",
              "abs", "round", "between", "rule",   "gateway", "severity", "ts"}) {
            CHECK(error_of("sensors:\n  - name: " + name + "\n    driver: simulated\n") ==
                  "t.yaml:2:11: error: '" + name +
                      "' is reserved in rule expressions and cannot be a sensor name");
        }
        // Only the whole name is reserved; segments may use the words.
        const tg::Config c = tg::parse_config(
            "sensors:\n  - {name: rate.max, driver: simulated}\n"
            "  - {name: door.and, driver: simulated, type: boolean}\n",
            "t.yaml");
        REQUIRE(c.sensors.size() == 2);
        CHECK(c.sensors[0].name == "rate.max");
        CHECK(c.sensors[1].name == "door.and");
    }
    SECTION("invalid names") {
        for (const std::string name : {"Greenhouse.temp", "greenhouse..temp", ".temp", "temp.",
                                       "1temp", "green-house", "temp.2x", "\"\""}) {
            const std::string written = name;
            const std::string shown = name == "\"\"" ? "" : name;
            CHECK(error_of("sensors:\n  - name: " + written + "\n    driver: simulated\n") ==
                  "t.yaml:2:11: error: invalid sensor name '" + shown +
                      "': use segments of [a-z][a-z0-9_]* joined by '.', e.g. greenhouse.temp");
        }
    }
    SECTION("output names") {
        CHECK(error_of("sensors: []\noutputs:\n  - {name: Fan, driver: file, options: {path: "
                       "/x}}\n") ==
              "t.yaml:3:12: error: invalid output name 'Fan': use [a-z][a-z0-9_]*, e.g. fan");
        CHECK(error_of("sensors: []\noutputs:\n"
                       "  - {name: fan, driver: file, options: {path: /x}}\n"
                       "  - {name: fan, driver: file, options: {path: /y}}\n") ==
              "t.yaml:4:12: error: duplicate output name 'fan' (first defined at line 3)");
    }
}

TEST_CASE("a type the driver cannot make is refused at the sensor", "[config]") {
    // The simulated driver makes numbers or booleans and refuses strings
    // through its factory, which does not know where `type` was written.
    CHECK(error_of(kSine + "    type: string\n") ==
          "t.yaml:2:5: error: sensor 'greenhouse.temp': the simulated driver makes numbers or "
          "booleans, not strings");
}

TEST_CASE("sensors is required", "[config]") {
    CHECK(error_of("gateway:\n  id: x\n") == "t.yaml:1:1: error: missing required key 'sensors'");
    CHECK(error_of("# nothing but a comment\n") ==
          "t.yaml:1:1: error: missing required key 'sensors'");
    CHECK(error_of("") == "t.yaml:1:1: error: missing required key 'sensors'");
    CHECK(error_of("- a\n- b\n") ==
          "t.yaml:1:1: error: expected a map of sections (gateway, mqtt, rules, ..., sensors), "
          "got a list");
}

TEST_CASE("YAML syntax errors carry yaml-cpp's position and message", "[config]") {
    CHECK(error_of("sensors: [1, 2\nmqtt: {}\n") ==
          "t.yaml:2:5: error: end of sequence flow not found");
    CHECK(error_of("mqtt:\n  uri: a: b\nsensors: []\n") == "t.yaml:2:9: error: illegal map value");
    CHECK(error_of("sensors: []\n---\nsensors: []\n") ==
          "t.yaml:2:1: error: a config file holds one YAML document; found a second one here");
}

TEST_CASE("every problem is reported in one go, in document order", "[config]") {
    const std::string text = R"(gatway:
  id: x
mqtt:
  qos: 3
  uri: mqtt://x
sensors:
  - name: Bad
    driver: simulated
    interval: soon
  - driver: simulatd
    options: {foo: 1}
  - name: ok.one
    driver: simulated
    options: {min: a, max: b}
)";
    const std::vector<std::string> errors = errors_of(text);
    const std::vector<std::string> expected{
        "t.yaml:1:1: error: unknown key 'gatway' (did you mean 'gateway'?)",
        "t.yaml:4:8: error: mqtt.qos: must be 0 or 1, got '3'",
        "t.yaml:5:8: error: mqtt.uri: 'mqtt://x' must start with tcp:// or ssl://",
        "t.yaml:7:11: error: invalid sensor name 'Bad': use segments of [a-z][a-z0-9_]* joined "
        "by '.', e.g. greenhouse.temp",
        "t.yaml:9:15: error: interval: invalid duration 'soon' (expected e.g. 250ms, 10s, 5m, "
        "1h, 1m30s)",
        "t.yaml:10:5: error: sensor has no 'name'",
        "t.yaml:10:13: error: unknown driver 'simulatd' (did you mean 'simulated'?)",
        "t.yaml:14:20: error: option 'min': expected a number, got 'a'",
        "t.yaml:14:28: error: option 'max': expected a number, got 'b'",
    };
    CHECK(errors.size() == 9);
    CHECK(errors == expected);
}

TEST_CASE("warnings do not fail the load", "[config]") {
    tg::Diagnostics warnings;
    const tg::Config c =
        tg::parse_config("mqtt:\n  tls: {verify_hostname: false}\n" + kSine + "    heartbeat: 1m\n",
                         "t.yaml", &warnings);
    CHECK(c.mqtt.tls.present);
    CHECK_FALSE(c.mqtt.tls.verify_hostname);
    REQUIRE(warnings.items().size() == 2);
    CHECK_FALSE(warnings.has_errors());
    CHECK(warnings.items()[0].format() ==
          "t.yaml:2:3: warning: mqtt.tls is ignored with a tcp:// uri (use ssl:// to connect "
          "with TLS)");
    CHECK(warnings.items()[1].format() ==
          "t.yaml:6:5: warning: heartbeat has no effect without deadband");
}

TEST_CASE("load_config reads files", "[config]") {
    TempDir dir;

    SECTION("missing file is one error naming it") {
        try {
            tg::load_config(dir.path().string() + "/nope.yaml");
            FAIL("expected LoadError");
        } catch (const tg::LoadError& e) {
            REQUIRE(e.diagnostics().items().size() == 1);
            CHECK(e.diagnostics().items()[0].format() ==
                  dir.path().string() +
                      "/nope.yaml: error: cannot read config file: No such file or "
                      "directory");
            CHECK(e.diagnostics().items()[0].pos().line == 0);
        }
    }

    SECTION("a folder is not a config file") {
        try {
            tg::load_config(dir.path());
            FAIL("expected LoadError");
        } catch (const tg::LoadError& e) {
            REQUIRE(e.diagnostics().items().size() == 1);
            CHECK(e.diagnostics().items()[0].format() ==
                  dir.path().string() + ": error: cannot read config file: Is a directory");
        }
    }

    SECTION("errors name the file") {
        const std::string path = dir.write("bad.yaml", "sensors: []\nmetrics: {interval: 0}\n");
        try {
            tg::load_config(path);
            FAIL("expected LoadError");
        } catch (const tg::LoadError& e) {
            REQUIRE(e.diagnostics().items().size() == 1);
            CHECK(e.diagnostics().items()[0].format() ==
                  path + ":2:21: error: metrics.interval: must be at least 1ms, got '0'");
        }
    }

    SECTION("password read and trimmed") {
        dir.write("secret", "hunter2  \n\n");
        const std::string path = dir.write(
            "tidegate.yaml", "mqtt:\n  username: pi\n  password_file: secret\nsensors: []\n");
        const tg::Config c = tg::load_config(path);
        CHECK(c.file == path);
        CHECK(c.mqtt.password_file == dir.path().string() + "/secret");
        CHECK(c.mqtt.password == "hunter2");
        CHECK(c.mqtt.username == "pi");
    }

    SECTION("unreadable password_file names the file") {
        const std::string path =
            dir.write("tidegate.yaml", "mqtt:\n  password_file: missing.txt\nsensors: []\n");
        const std::vector<std::string> errors = [&] {
            try {
                tg::load_config(path);
            } catch (const tg::LoadError& e) {
                std::vector<std::string> out;
                for (const auto& item : e.diagnostics().items())
                    out.push_back(item.format());
                return out;
            }
            return std::vector<std::string>{};
        }();
        CHECK(errors == std::vector<std::string>{
                            path + ":2:18: error: mqtt.password_file: cannot read '" +
                            dir.path().string() + "/missing.txt': No such file or directory"});
    }

    SECTION("relative paths resolve against the config's folder") {
        dir.write("conf/pw", "pw\n");
        const std::string path = dir.write("conf/tidegate.yaml",
                                           "gateway:\n  data_dir: state\n"
                                           "mqtt:\n  password_file: ./pw\n"
                                           "rules:\n  paths: [rules.d, ../more/x.yaml, /abs/r]\n"
                                           "sensors: []\n");
        const tg::Config c = tg::load_config(path);
        CHECK(c.gateway.data_dir == dir.path().string() + "/conf/state");
        CHECK(c.mqtt.password_file == dir.path().string() + "/conf/pw");
        CHECK(c.mqtt.password == "pw");
        CHECK(c.rules.paths == std::vector<std::string>{dir.path().string() + "/conf/rules.d",
                                                        dir.path().string() + "/more/x.yaml",
                                                        "/abs/r"});
    }

    SECTION("tls files are read and resolved; verify_hostname defaults to true") {
        dir.write("ca.crt", "CA");
        dir.write("client.crt", "CERT");
        dir.write("client.key", "KEY");
        const std::string path = dir.write("tidegate.yaml",
                                           "mqtt:\n  uri: ssl://broker:8883\n  tls:\n"
                                           "    ca_file: ca.crt\n"
                                           "    cert_file: client.crt\n"
                                           "    key_file: " +
                                               dir.path().string() + "/client.key\nsensors: []\n");
        tg::Diagnostics warnings;
        const tg::Config c = tg::load_config(path, &warnings);
        CHECK(warnings.items().empty());
        CHECK(c.mqtt.tls.present);
        CHECK(c.mqtt.tls.ca_file == dir.path().string() + "/ca.crt");
        CHECK(c.mqtt.tls.cert_file == dir.path().string() + "/client.crt");
        CHECK(c.mqtt.tls.key_file == dir.path().string() + "/client.key");
        CHECK(c.mqtt.tls.verify_hostname);
    }

    SECTION("tls: unreadable files and a certificate without its key") {
        const std::string path =
            dir.write("tidegate.yaml",
                      "mqtt:\n  uri: ssl://broker:8883\n  tls:\n    ca_file: nope.crt\n"
                      "    cert_file: " +
                          dir.path().string() + "\nsensors: []\n");
        try {
            tg::load_config(path);
            FAIL("expected LoadError");
        } catch (const tg::LoadError& e) {
            std::vector<std::string> got;
            for (const auto& item : e.diagnostics().items())
                got.push_back(item.format());
            CHECK(got == std::vector<std::string>{
                             path + ":4:14: error: mqtt.tls.ca_file: cannot read '" +
                                 dir.path().string() + "/nope.crt': No such file or directory",
                             path + ":5:16: error: mqtt.tls.cert_file: cannot read '" +
                                 dir.path().string() + "': Is a directory",
                             path + ":5:16: error: mqtt.tls.cert_file: needs mqtt.tls.key_file "
                                    "as well",
                         });
        }
    }
}

TEST_CASE("the shipped configs load", "[config]") {
    const std::string root = TIDEGATE_SOURCE_DIR;

    SECTION("tidegate.yaml") {
        tg::Diagnostics warnings;
        const tg::Config c =
            tg::load_config(root + "/firmware-gateway/config/tidegate.yaml", &warnings);
        CHECK(warnings.items().empty());
        // The installed default writes out the built-in defaults.
        const tg::Config d = tg::parse_config("sensors: []\n", "x.yaml");
        CHECK(c.gateway.data_dir == d.gateway.data_dir);
        CHECK(c.mqtt.uri == d.mqtt.uri);
        CHECK(c.mqtt.version == d.mqtt.version);
        CHECK(c.mqtt.client_id == d.mqtt.client_id);
        CHECK(c.mqtt.topic_prefix == d.mqtt.topic_prefix);
        CHECK(c.mqtt.qos == d.mqtt.qos);
        CHECK(c.mqtt.keepalive == d.mqtt.keepalive);
        CHECK(c.rules.paths == d.rules.paths);
        CHECK(c.rules.tick == d.rules.tick);
        CHECK(c.outbox.max_bytes == d.outbox.max_bytes);
        CHECK(c.outbox.sync == d.outbox.sync);
        CHECK(c.journal.retain_bytes == d.journal.retain_bytes);
        CHECK(c.metrics.interval == d.metrics.interval);
        REQUIRE(c.sensors.size() == 1);
        CHECK(c.sensors[0].name == "demo.sine");
        CHECK(c.sensors[0].driver == "simulated");
    }

    SECTION("demo.yaml") {
        tg::Diagnostics warnings;
        const tg::Config c =
            tg::load_config(root + "/firmware-gateway/config/demo.yaml", &warnings);
        CHECK(warnings.items().empty());
        CHECK(c.gateway.id == "demo");
        CHECK(c.gateway.data_dir == "/tmp/tidegate-demo");
        CHECK(c.mqtt.uri == "tcp://127.0.0.1:1883");
        CHECK(c.mqtt.client_id == "tidegate-demo");
        // The example rule files, resolved against the config's folder.
        REQUIRE(c.rules.paths.size() == 1);
        CHECK(c.rules.paths[0] == root + "/rules/examples");
        REQUIRE(c.sensors.size() == 9);
        CHECK(c.outputs.size() == 4);

        const tg::SensorConfig& temp = c.sensors[0];
        CHECK(temp.name == "greenhouse.temp");
        CHECK(temp.interval == 2s);
        CHECK(temp.unit == "°C");
        CHECK(temp.precision == 2);
        CHECK(temp.options.string("profile") == "sine");
        CHECK(temp.options.number("min") == 18);
        CHECK(temp.options.number("max") == 32);
        CHECK(temp.options.duration("period") == 2min);

        const tg::SensorConfig& hum = c.sensors[1];
        CHECK(hum.name == "greenhouse.humidity");
        CHECK(hum.interval == 5s);
        CHECK(hum.unit == "%");
        CHECK(hum.precision == 1);
        CHECK(hum.options.string("profile") == "random_walk");
        CHECK(hum.options.number("min") == 40);
        CHECK(hum.options.number("max") == 90);
        CHECK(hum.options.number("step") == 1.5);
        CHECK(hum.options.integer("seed") == 7);

        const tg::SensorConfig& tank = c.sensors[2];
        CHECK(tank.name == "tank.level");
        CHECK(tank.interval == 10s);
        CHECK(tank.unit == "L");
        CHECK(tank.options.numbers("values") == std::vector<double>{80, 75, 70, 65, 60, 55});

        const tg::SensorConfig& door = c.sensors[3];
        CHECK(door.name == "door.open");
        CHECK(door.type == tg::ValueType::Boolean);
        CHECK(door.interval == 3s);
        CHECK(door.options.numbers("values") == std::vector<double>{0, 0, 1, 0});
    }
}

namespace {

// The formatted errors of a config that must fail to load, from parse_config
// on its own thread: a parser that never returns fails the test after 5 s
// instead of hanging the suite (yaml-cpp 0.7's LoadAll spins forever on a
// stray ',', growing memory).
std::vector<std::string> errors_within_5s(const std::string& text) {
    // No Catch assertion on the worker thread (Catch2 v2 is not thread-safe).
    const std::vector<std::string> errors = tg::test::finishes_within(5s, [text] {
        std::vector<std::string> out;
        try {
            tg::parse_config(text, "t.yaml");
        } catch (const tg::LoadError& e) {
            for (const tg::SourceError& item : e.diagnostics().items())
                out.push_back(item.format());
        }
        return out;
    });
    INFO(text);
    CHECK_FALSE(errors.empty());
    return errors;
}

const std::string kComma = "unexpected ',' outside a flow collection ([…] or {…})";

}  // namespace

TEST_CASE("a stray ',' is an error with a position, not an endless parse", "[config][yaml]") {
    CHECK(errors_within_5s(",") == std::vector<std::string>{"t.yaml:1:1: error: " + kComma});
    CHECK(errors_within_5s(",\n") == std::vector<std::string>{"t.yaml:1:1: error: " + kComma});
    CHECK(errors_within_5s("  ,\n") == std::vector<std::string>{"t.yaml:1:3: error: " + kComma});
    CHECK(errors_within_5s("{sensors: []}\n,\n") ==
          std::vector<std::string>{"t.yaml:2:1: error: " + kComma});
    // A second document is reported where it starts; the ',' after it is
    // never parsed, and the first document is still checked.
    CHECK(errors_within_5s("gateway: {id: x}\n---\n,") ==
          std::vector<std::string>{
              "t.yaml:1:1: error: missing required key 'sensors'",
              "t.yaml:2:1: error: a config file holds one YAML document; found a second one here"});
    // Inside the first document yaml-cpp reports it itself.
    CHECK(errors_within_5s("sensors: []\n,\n") ==
          std::vector<std::string>{"t.yaml:2:1: error: end of map not found"});
    CHECK(errors_within_5s("a: ,") ==
          std::vector<std::string>{"t.yaml:1:4: error: end of map not found"});
    CHECK(errors_within_5s("- ,") ==
          std::vector<std::string>{"t.yaml:1:3: error: end of sequence not found"});
    CHECK(errors_within_5s("[,]") ==
          std::vector<std::string>{"t.yaml:1:1: error: expected a map of sections (gateway, "
                                   "mqtt, rules, ..., sensors), got a list"});
    CHECK(errors_within_5s("{,}") ==
          std::vector<std::string>{"t.yaml:1:1: error: expected a key name, got nothing",
                                   "t.yaml:1:1: error: missing required key 'sensors'"});
}

TEST_CASE("config text gets the rule files' guards: control bytes, nesting, BOM",
          "[config][yaml]") {
    // yaml-cpp 0.7 never returns on some NUL bytes; none belongs in YAML text.
    CHECK(errors_within_5s(std::string("sensors: []\ngateway: {id: a\0b}\n", 31)) ==
          std::vector<std::string>{"t.yaml:2:16: error: control character (byte 0x00) in a "
                                   "config file; it must be UTF-8 text"});
    CHECK(errors_within_5s("sensors: []\x01\n") ==
          std::vector<std::string>{"t.yaml:1:12: error: control character (byte 0x01) in a "
                                   "config file; it must be UTF-8 text"});
    CHECK(errors_within_5s("sensors: " + std::string(100'000, '[')) ==
          std::vector<std::string>{"t.yaml:1:1: error: the file is nested too deeply (more "
                                   "than 64 levels) to be a config file"});
    // A byte-order mark is accepted and does not shift columns.
    const tg::Config c = tg::parse_config("\xEF\xBB\xBFsensors: []\n", "t.yaml");
    CHECK(c.sensors.empty());
    CHECK(error_of("\xEF\xBB\xBFsensors: []\nmqtt: {qos: 3}\n") ==
          "t.yaml:2:13: error: mqtt.qos: must be 0 or 1, got '3'");
}

TEST_CASE("a config is UTF-8 text: invalid bytes are refused where they are", "[config]") {
    // A Latin-1 degree sign would go raw into every envelope (invalid JSON).
    CHECK(error_of(kSine + "    unit: \"\xB0"
                           "C\"\n") ==
          "t.yaml:4:12: error: invalid UTF-8 (byte 0xb0) in a config file; it must be UTF-8 "
          "text");
    CHECK(error_of("gateway:\n  id: x\xC3\nsensors: []\n") ==
          "t.yaml:2:8: error: invalid UTF-8 (byte 0xc3) in a config file; it must be UTF-8 text");
    // A lone surrogate written as an escape is refused by the parser.
    CHECK(error_of(kSine + "    unit: \"\\ud800\"\n") ==
          "t.yaml:4:18: error: invalid unicode: 55296");
    // Well-formed UTF-8 passes, escapes included.
    const tg::Config c = tg::parse_config(kSine + "    unit: \"\\u00b5g/m\xC2\xB3\"\n", "t.yaml");
    CHECK(c.sensors.at(0).unit == "\xC2\xB5g/m\xC2\xB3");
}

TEST_CASE("NUL and control characters in values are refused at the value", "[config]") {
    // "\0" in a quoted value would cut a topic or a path short in C APIs.
    CHECK(error_of("mqtt:\n  topic_prefix: \"site\\0x\"\nsensors: []\n") ==
          "t.yaml:2:17: error: mqtt.topic_prefix: a NUL character (\\0) is not allowed in a "
          "value");
    CHECK(error_of("mqtt:\n  client_id: \"a\\0\"\nsensors: []\n") ==
          "t.yaml:2:14: error: mqtt.client_id: a NUL character (\\0) is not allowed in a value");
    CHECK(error_of("mqtt:\n  username: \"\\0\"\nsensors: []\n") ==
          "t.yaml:2:13: error: mqtt.username: a NUL character (\\0) is not allowed in a value");
    CHECK(error_of(kSine + "    unit: \"a\\0\"\n") ==
          "t.yaml:4:11: error: unit: a NUL character (\\0) is not allowed in a value");
    CHECK(error_of(kSine + "    unit: \"\\u00b0C\\n\"\n") ==
          "t.yaml:4:11: error: unit: must not contain control characters");
    CHECK(error_of("sensors: []\noutputs:\n  - {name: led, driver: file, options: {path: "
                   "\"/tmp/led\\0x\"}}\n") ==
          "t.yaml:3:47: error: option 'path': a NUL character (\\0) is not allowed in a value");
    // Messages show long values cut after 80 bytes, at a character boundary ...
    CHECK(error_of("mqtt:\n  qos: " + std::string(100, '9') + "x\nsensors: []\n") ==
          "t.yaml:2:8: error: mqtt.qos: expected a whole number, got '" + std::string(80, '9') +
              "…'");
    std::string e_acute;
    for (int i = 0; i < 50; ++i)
        e_acute += "\xC3\xA9";
    std::string cut = "a";
    for (int i = 0; i < 39; ++i)
        cut += "\xC3\xA9";
    CHECK(error_of("mqtt:\n  qos: a" + e_acute + "\nsensors: []\n") ==
          "t.yaml:2:8: error: mqtt.qos: expected a whole number, got '" + cut + "…'");
    // ... and control characters escaped.
    CHECK(error_of("mqtt:\n  qos: \"\\t1\"\nsensors: []\n") ==
          "t.yaml:2:8: error: mqtt.qos: expected a whole number, got '\\x091'");
}

TEST_CASE("gateway.id is at most 64 characters", "[config]") {
    const std::string id64(64, 'g');
    CHECK(tg::parse_config("gateway:\n  id: " + id64 + "\nsensors: []\n", "t.yaml").gateway.id ==
          id64);
    CHECK(error_of("gateway:\n  id: " + id64 + "g\nsensors: []\n") ==
          "t.yaml:2:7: error: gateway.id: 65 characters; at most 64 are allowed (it is part of "
          "every topic and event id)");
    CHECK(error_of("gateway:\n  id: " + std::string(70'000, 'x') + "\nsensors: []\n") ==
          "t.yaml:2:7: error: gateway.id: 70000 characters; at most 64 are allowed (it is part "
          "of every topic and event id)");
}

TEST_CASE("topic_prefix is a bounded topic without wildcards or NUL", "[config]") {
    const std::string p256(256, 'p');
    CHECK(tg::parse_config("mqtt:\n  topic_prefix: " + p256 + "\nsensors: []\n", "t.yaml")
              .mqtt.topic_prefix == p256);
    CHECK(error_of("mqtt:\n  topic_prefix: " + p256 + "p\nsensors: []\n") ==
          "t.yaml:2:17: error: mqtt.topic_prefix: 257 bytes; at most 256 are allowed");
    CHECK(error_of("mqtt:\n  topic_prefix: a/#\nsensors: []\n") ==
          "t.yaml:2:17: error: mqtt.topic_prefix: 'a/#' must not contain the wildcards '+' or "
          "'#'");
    CHECK(tg::parse_config("mqtt:\n  topic_prefix: \"caf\\u00e9/a\"\nsensors: []\n", "t.yaml")
              .mqtt.topic_prefix == "caf\xC3\xA9/a");
}

TEST_CASE("mqtt.client_id and username are what MQTT accepts", "[config]") {
    CHECK(error_of("mqtt:\n  client_id: \"\"\nsensors: []\n") ==
          "t.yaml:2:14: error: mqtt.client_id: must not be empty (leave it out for the default, "
          "tidegate-<gateway.id>)");
    CHECK(error_of("mqtt:\n  client_id: " + std::string(65'536, 'c') + "\nsensors: []\n") ==
          "t.yaml:2:14: error: mqtt.client_id: 65536 bytes; MQTT allows at most 65535");
    CHECK(error_of("mqtt:\n  username: " + std::string(65'536, 'u') + "\nsensors: []\n") ==
          "t.yaml:2:13: error: mqtt.username: 65536 bytes; MQTT allows at most 65535");
    const std::string id(65'535, 'c');
    CHECK(tg::parse_config("mqtt:\n  client_id: " + id + "\nsensors: []\n", "t.yaml")
              .mqtt.client_id == id);
}

TEST_CASE("outputs are checked by their driver as the gateway's start would", "[config]") {
    auto plug = [](const std::string& options) {
        return "sensors: []\noutputs:\n  - name: plug\n    driver: mqtt\n    options: " + options +
               "\n";
    };
    CHECK(error_of(plug("{topic: \"cmd/+/x\"}")) ==
          "t.yaml:5:22: error: option 'topic': 'cmd/+/x' has a wildcard (+ or #): a publish "
          "needs one exact topic");
    CHECK(error_of(plug("{topic: cmd/#}")) ==
          "t.yaml:5:22: error: option 'topic': 'cmd/#' has a wildcard (+ or #): a publish needs "
          "one exact topic");
    CHECK(error_of(plug("{topic: \"\"}")) ==
          "t.yaml:5:22: error: option 'topic': must not be empty");
    CHECK(error_of(plug("{topic: \"a\\0b\"}")) ==
          "t.yaml:5:22: error: option 'topic': a NUL character (\\0) is not allowed in a value");
    CHECK(error_of(plug("{topic: a/b, on: \"1\", off: \"1\"}")) ==
          "t.yaml:5:41: error: option 'off': 'on' and 'off' must differ");
    // The defaults are ON and OFF: on: OFF collides with a default off.
    CHECK(error_of(plug("{topic: a/b, on: \"OFF\"}")) ==
          "t.yaml:3:5: error: output 'plug': 'on' and 'off' must differ");
    CHECK(error_of(plug("{topic: a/b, qos: 2}")) ==
          "t.yaml:5:32: error: option 'qos': must be 0 to 1, got 2");
    CHECK(error_of(plug("{topic: a/b, initial: maybe}")) ==
          "t.yaml:5:36: error: option 'initial': expected on or off, got 'maybe'");
    // Templates in an output topic are the rules' business, left alone.
    CHECK(tg::parse_config(plug("{topic: \"site/{{gateway}}/plug\"}"), "t.yaml").outputs.size() ==
          1);

    // The file driver's own checks, too.
    CHECK(
        error_of("sensors: []\noutputs:\n  - {name: led, driver: file, options: {path: led}}\n") ==
        "t.yaml:3:47: error: option 'path': 'led' is not an absolute path (it must start with "
        "/)");
    CHECK(error_of("sensors: []\noutputs:\n  - {name: led, driver: file, options: {path: /x, "
                   "on: a, off: a}}\n") ==
          "t.yaml:3:63: error: option 'off': 'on' and 'off' must differ");
    CHECK(error_of("sensors: []\noutputs:\n  - {name: fan, driver: gpio, options: {line: "
                   "2000}}\n") == "t.yaml:3:47: error: option 'line': must be 0 to 1023, got 2000");
}

TEST_CASE("mqtt sensor topics must be valid MQTT filters", "[config]") {
    auto zigbee = [](const std::string& topic) {
        return "sensors:\n  - name: a.t\n    driver: mqtt\n    options: {topic: " + topic + "}\n";
    };
    CHECK(error_of(zigbee("\"a/#/b\"")) ==
          "t.yaml:4:22: error: option 'topic': 'a/#/b': '#' must be the last level");
    CHECK(error_of(zigbee("\"a+/b\"")) ==
          "t.yaml:4:22: error: option 'topic': 'a+/b': a wildcard must be a whole level (a/+/c, "
          "a/#)");
    CHECK(error_of(zigbee("\"\"")) == "t.yaml:4:22: error: option 'topic': must not be empty");
    CHECK(error_of(zigbee("\"z\\0\"")) ==
          "t.yaml:4:22: error: option 'topic': a NUL character (\\0) is not allowed in a value");
    CHECK(tg::parse_config(zigbee("\"zigbee2mqtt/+/sensor\""), "t.yaml").sensors.size() == 1);
}

TEST_CASE("config files that are not regular files are refused at once", "[config]") {
    TempDir dir;
    auto load_errors = [](const std::string& path) {
        return tg::test::finishes_within(
            5s,
            [path] {
                std::vector<std::string> out;
                try {
                    tg::load_config(path);
                } catch (const tg::LoadError& e) {
                    for (const tg::SourceError& item : e.diagnostics().items())
                        out.push_back(item.format());
                }
                return out;
            },
            [path] {
                // A reader blocked on a FIFO returns once a writer came and went.
                const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
                if (fd >= 0) ::close(fd);
            });
    };

    SECTION("a FIFO") {
        const std::string fifo = dir.path().string() + "/cfg.yaml";
        REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
        CHECK(load_errors(fifo) ==
              std::vector<std::string>{fifo +
                                       ": error: cannot read config file: not a regular file but "
                                       "a FIFO (named pipe)"});
    }
    SECTION("a symlink to /dev/zero") {
        const std::string link = dir.path().string() + "/cfg.yaml";
        REQUIRE(::symlink("/dev/zero", link.c_str()) == 0);
        CHECK(load_errors(link) ==
              std::vector<std::string>{link +
                                       ": error: cannot read config file: not a regular file but "
                                       "a character device"});
    }
    SECTION("a file over 4 MiB") {
        const std::string big = dir.write("big.yaml", "sensors: []\n" + std::string(4u << 20, '#'));
        CHECK(load_errors(big) ==
              std::vector<std::string>{big +
                                       ": error: cannot read config file: too large: more than 4 "
                                       "MiB"});
    }
    SECTION("a FIFO as password_file or TLS file, at its key") {
        const std::string fifo = dir.path().string() + "/pw";
        REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
        const std::string path =
            dir.write("cfg.yaml",
                      "mqtt:\n  uri: ssl://b:8883\n  password_file: pw\n  tls:\n    ca_file: "
                      "/dev/zero\nsensors: []\n");
        CHECK(load_errors(path) ==
              std::vector<std::string>{
                  path + ":3:18: error: mqtt.password_file: cannot read '" + fifo +
                      "': not a regular file but a FIFO (named pipe)",
                  path + ":5:14: error: mqtt.tls.ca_file: cannot read '/dev/zero': not a regular "
                         "file but a character device"});
    }
    SECTION("a password longer than MQTT allows") {
        dir.write("pw", std::string(65'536, 'p'));
        const std::string path = dir.write("cfg.yaml", "mqtt:\n  password_file: pw\nsensors: []\n");
        CHECK(load_errors(path) ==
              std::vector<std::string>{path +
                                       ":2:18: error: mqtt.password_file: the password is 65536 "
                                       "bytes; MQTT allows at most 65535"});
    }
}

TEST_CASE("sensor and output names are at most 128 characters", "[config]") {
    // Names are topic levels; a topic over MQTT's 65535 bytes would make every
    // reading of the sensor a bad reading at run time.
    const std::string ok = "a." + std::string(126, 'b');
    CHECK(tg::parse_config("sensors:\n  - {name: " + ok + ", driver: simulated}\n", "t.yaml")
              .sensors.at(0)
              .name == ok);
    CHECK(error_of("sensors:\n  - {name: " + ok + "c, driver: simulated}\n") ==
          "t.yaml:2:12: error: sensor name: 129 characters; at most 128 are allowed (it is part "
          "of topics)");
    CHECK(error_of("sensors:\n  - {name: " + std::string(66'000, 'a') + ", driver: simulated}\n") ==
          "t.yaml:2:12: error: sensor name: 66000 characters; at most 128 are allowed (it is part "
          "of topics)");
    CHECK(error_of("sensors: []\noutputs:\n  - {name: " + std::string(129, 'o') +
                   ", driver: file, options: {path: /x}}\n") ==
          "t.yaml:3:12: error: output name: 129 characters; at most 128 are allowed (it is part "
          "of topics)");
}

TEST_CASE("mqtt.uri takes one broker or a list, each checked at its place", "[config]") {
    const tg::Config one =
        tg::parse_config("mqtt: { uri: 'ssl://b:8883' }\nsensors: []\n", "t.yaml");
    CHECK(one.mqtt.uri == "ssl://b:8883");
    CHECK(one.mqtt.uris == std::vector<std::string>{"ssl://b:8883"});
    const tg::Config list = tg::parse_config(
        "mqtt:\n  uri: [tcp://a:1883, 'ssl://[::1]:8883', tcp://c]\nsensors: []\n", "t.yaml");
    CHECK(list.mqtt.uri == "tcp://a:1883");
    CHECK(list.mqtt.uris ==
          std::vector<std::string>{"tcp://a:1883", "ssl://[::1]:8883", "tcp://c"});
    const tg::Config dflt = tg::parse_config("sensors: []\n", "t.yaml");
    CHECK(dflt.mqtt.uris == std::vector<std::string>{"tcp://localhost:1883"});

    CHECK(error_of("mqtt:\n  uri: []\nsensors: []\n") ==
          "t.yaml:2:8: error: mqtt.uri: the list is empty; name at least one broker");
    CHECK(error_of("mqtt:\n  uri: [tcp://a:1883, tcp://a:1883]\nsensors: []\n") ==
          "t.yaml:2:23: error: mqtt.uri: 'tcp://a:1883' is listed twice (first at line 2)");
    CHECK(error_of("mqtt:\n  uri:\n    - tcp://a:1883\n    - tcp://b:99999\nsensors: []\n") ==
          "t.yaml:4:7: error: mqtt.uri: 'tcp://b:99999': the port must be 1 to 65535");
    CHECK(error_of("mqtt:\n  uri: ['tcp://a:', tcp://b:1883]\nsensors: []\n") ==
          "t.yaml:2:9: error: mqtt.uri: 'tcp://a:': the port after ':' is missing");
    CHECK(error_of("mqtt:\n  uri: [tcp://a b:1883]\nsensors: []\n") ==
          "t.yaml:2:9: error: mqtt.uri: 'tcp://a b:1883': the host may not contain ' '");
    CHECK(error_of("mqtt:\n  uri:\n    - tcp://a:1883\n    - {x: 1}\nsensors: []\n") ==
          "t.yaml:4:7: error: mqtt.uri: expected text, got a map");
    CHECK(error_of("mqtt:\n  uri: ['ssl://[::1']\nsensors: []\n") ==
          "t.yaml:2:9: error: mqtt.uri: 'ssl://[::1': '[' without ']'");
    // Two errors in one list: both reported.
    CHECK(errors_of("mqtt:\n  uri: [x, y]\nsensors: []\n").size() == 2);
}
