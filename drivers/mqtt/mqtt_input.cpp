#include "mqtt_input.h"

#include <array>

namespace tg::drivers {
namespace {

constexpr std::array<OptionSpec, 2> kOptions{{
    {"topic", OptType::String, "", "topic or filter (+, #) to subscribe to", true},
    {"json_pointer", OptType::String, "",
     "RFC 6901 pointer into a JSON payload, e.g. /temperature (empty: the whole payload)"},
}};

void check_filter(const std::string& filter) {
    if (filter.empty()) throw OptionError("topic", "must not be empty");
    if (filter.size() > 65535) throw OptionError("topic", "longer than MQTT allows (65535 bytes)");
    std::size_t level_start = 0;
    for (std::size_t i = 0; i <= filter.size(); ++i) {
        if (i < filter.size() && filter[i] == '\0') {
            throw OptionError("topic", "must not contain a NUL character");
        }
        if (i == filter.size() || filter[i] == '/') {
            const std::string level = filter.substr(level_start, i - level_start);
            const bool has_wild = level.find_first_of("+#") != std::string::npos;
            if (has_wild && level != "+" && level != "#") {
                throw OptionError(
                    "topic", "'" + filter + "': a wildcard must be a whole level (a/+/c, a/#)");
            }
            if (level == "#" && i != filter.size()) {
                throw OptionError("topic", "'" + filter + "': '#' must be the last level");
            }
            level_start = i + 1;
        }
    }
}

std::string share_key(const SensorSpec& s) {
    return s.options.string("topic");
}

std::unique_ptr<Driver> create(std::span<const SensorSpec> sensors) {
    return std::make_unique<MqttInputDriver>(sensors);
}

}  // namespace

const DriverInfo kMqttInputDriver{"mqtt",
                                  "values from other devices' MQTT topics",
                                  kOptions,
                                  false,
                                  ValueType::Number,
                                  &create,
                                  &share_key};

MqttInputDriver::MqttInputDriver(std::span<const SensorSpec> sensors) {
    if (sensors.empty()) throw std::logic_error("mqtt driver without sensors");
    topic_ = sensors.front().options.string("topic");
    check_filter(topic_);
    for (const SensorSpec& s : sensors) {
        targets_.push_back(
            Target{s.name, FieldParser::for_payload(s.options.string("json_pointer"), s.type)});
    }
}

void MqttInputDriver::on_message(const std::string& topic, const std::string& payload,
                                 const Clock& clock, Sink& sink) {
    // An empty payload deletes a retained message: no reading, nothing wrong.
    if (payload.empty()) return;
    const WallTime ts = clock.wall();
    const MonoTime mono = clock.monotonic();
    for (const Target& t : targets_) {
        Parsed p = t.parser.parse(payload);
        if (p) {
            sink.reading(Reading{t.sensor, std::move(*p.value), ts, mono});
        } else {
            sink.bad_reading(t.sensor, p.reason, "on " + topic + ": " + p.detail);
        }
    }
}

}  // namespace tg::drivers
