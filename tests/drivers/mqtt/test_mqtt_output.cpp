// The mqtt output with a recording OutputEnv (what it asks the gateway's MQTT
// connection to publish).
#include <catch2/catch.hpp>

#include "../driver_test_util.h"
#include "drivers/mqtt/mqtt_output.h"

using namespace tg;
using namespace tg::test;

namespace {

struct Published {
    std::string topic;
    std::string payload;
    int qos;
    bool retain;
    bool operator==(const Published&) const = default;
};

class RecordingEnv final : public drivers::OutputEnv {
  public:
    void publish(const std::string& topic, const std::string& payload, int qos,
                 bool retain) override {
        sent.push_back({topic, payload, qos, retain});
    }
    std::vector<Published> sent;
};

std::unique_ptr<drivers::Output> make(const std::string& options, RecordingEnv& env) {
    return drivers::find_output("mqtt")->create("plug", make_output_options("mqtt", options), env);
}

std::string key_of(const drivers::Options& options) {
    RecordingEnv env;
    try {
        drivers::find_output("mqtt")->create("plug", options, env);
    } catch (const drivers::OptionError& e) {
        return e.key();
    }
    return "";
}

}  // namespace

TEST_CASE("mqtt output: publishes the on and off payloads", "[driver:mqtt]") {
    RecordingEnv env;
    auto out = make("{topic: cmnd/plug1/POWER}", env);
    out->start();
    CHECK(env.sent.empty());  // no initial: nothing at start
    out->set(true);
    out->set(false);
    out->stop();
    CHECK(env.sent == std::vector<Published>{{"cmnd/plug1/POWER", "ON", 1, false},
                                             {"cmnd/plug1/POWER", "OFF", 1, false}});
}

TEST_CASE("mqtt output: payloads, qos, retain and initial as configured", "[driver:mqtt]") {
    RecordingEnv env;
    auto out = make(
        "{topic: zigbee2mqtt/pump/set, on: '{\"state\":\"ON\"}', "
        "off: '{\"state\":\"OFF\"}', qos: 0, retain: true, initial: off}",
        env);
    out->start();
    out->set(true);
    CHECK(env.sent ==
          std::vector<Published>{{"zigbee2mqtt/pump/set", "{\"state\":\"OFF\"}", 0, true},
                                 {"zigbee2mqtt/pump/set", "{\"state\":\"ON\"}", 0, true}});
}

TEST_CASE("mqtt output: options are validated by the factory", "[driver:mqtt]") {
    CHECK(key_of(make_output_options("mqtt", "{topic: a/b}")).empty());
    CHECK(key_of(make_output_options("mqtt", "{topic: \"site/{{gateway}}/relay\"}")).empty());
    CHECK(key_of(make_output_options("mqtt", "{topic: \"a/{{ x + 1 }}\"}")).empty());
    auto with = [](const std::string& key, drivers::OptValue value) {
        return output_options_with("mqtt", "{topic: a, on: x}", key, std::move(value));
    };
    CHECK(key_of(with("topic", std::string("a/+/b"))) == "topic");
    CHECK(key_of(with("topic", std::string("a/#"))) == "topic");
    CHECK(key_of(with("topic", std::string())) == "topic");
    CHECK(key_of(with("topic", std::string("a\0b", 3))) == "topic");
    CHECK(key_of(with("qos", 2LL)) == "qos");
    CHECK(key_of(with("off", std::string("x"))) == "off");
    CHECK(key_of(with("initial", std::string("sometimes"))) == "initial");
    // The config loader refuses the same, at the key.
    CHECK_THAT(output_config_errors("mqtt", "{topic: a/+/b}"),
               Catch::Contains("option 'topic': 'a/+/b' has a wildcard"));
    CHECK_THAT(output_config_errors("mqtt", "{}"),
               Catch::Contains("missing required option 'topic'"));
}
