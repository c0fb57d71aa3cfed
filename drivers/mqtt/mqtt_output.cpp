#include "mqtt_output.h"

#include <array>

#include "drivers/option_checks.h"

namespace tg::drivers {
namespace {

constexpr std::array<OptionSpec, 6> kOutputOptions{{
    {"topic", OptType::String, "", "topic published on each change, e.g. cmnd/plug1/POWER", true},
    {"on", OptType::String, "ON", "payload for on"},
    {"off", OptType::String, "OFF", "payload for off"},
    {"qos", OptType::Integer, "1", "0 or 1"},
    {"retain", OptType::Boolean, "false", "publish retained"},
    {"initial", OptType::String, "", "published at start: on | off (empty: nothing)"},
}};

std::unique_ptr<Output> create_output(const std::string& name, const Options& options,
                                      OutputEnv& env) {
    return std::make_unique<MqttOutput>(name, options, env);
}

// Wildcards cannot be published to. Template spans ({{ … }}) are the rules
// engine's business and are left alone.
void check_topic(const std::string& topic) {
    if (topic.empty()) throw OptionError("topic", "must not be empty");
    if (topic.size() > 65535) throw OptionError("topic", "longer than MQTT allows (65535 bytes)");
    bool in_template = false;
    for (std::size_t i = 0; i < topic.size(); ++i) {
        if (topic.compare(i, 2, "{{") == 0) in_template = true;
        if (topic.compare(i, 2, "}}") == 0) in_template = false;
        const char c = topic[i];
        if (c == '\0') throw OptionError("topic", "must not contain a NUL character");
        if (!in_template && (c == '+' || c == '#')) {
            throw OptionError("topic", "'" + topic +
                                           "' has a wildcard (+ or #): a publish "
                                           "needs one exact topic");
        }
    }
}

}  // namespace

const OutputInfo kMqttOutput{"mqtt", "publishes to another device's topic", kOutputOptions,
                             &create_output};

MqttOutput::MqttOutput(const std::string& name, const Options& options, OutputEnv& env)
    : name_(name),
      topic_(options.string("topic")),
      on_(options.string("on")),
      off_(options.string("off")),
      qos_(static_cast<int>(integer_in(options, "qos", 0, 1))),
      retain_(options.boolean("retain")),
      initial_(optional_on_off(options, "initial")),
      env_(env) {
    check_topic(topic_);
    if (on_ == off_) throw OptionError("off", "'on' and 'off' must differ");
}

void MqttOutput::start() {
    if (initial_) set(*initial_);
}

void MqttOutput::set(bool on) {
    env_.publish(topic_, on ? on_ : off_, qos_, retain_);
}

}  // namespace tg::drivers
