#include "ha_discovery.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <utility>

#include "core/file_read.h"
#include "core/log.h"
#include "core/source_error.h"
#include "durable_files.h"

namespace tg::ha {
namespace {

using Json = nlohmann::ordered_json;

// Home Assistant's sensor device classes that carry a number (its
// SensorDeviceClass, without enum, timestamp and date).
const std::vector<std::string> kNumericClasses = {
    "absolute_humidity",
    "apparent_power",
    "aqi",
    "area",
    "atmospheric_pressure",
    "battery",
    "blood_glucose_concentration",
    "carbon_dioxide",
    "carbon_monoxide",
    "conductivity",
    "current",
    "data_rate",
    "data_size",
    "distance",
    "duration",
    "energy",
    "energy_distance",
    "energy_storage",
    "frequency",
    "gas",
    "humidity",
    "illuminance",
    "irradiance",
    "moisture",
    "monetary",
    "nitrogen_dioxide",
    "nitrogen_monoxide",
    "nitrous_oxide",
    "ozone",
    "ph",
    "pm1",
    "pm10",
    "pm25",
    "power",
    "power_factor",
    "precipitation",
    "precipitation_intensity",
    "pressure",
    "reactive_energy",
    "reactive_power",
    "signal_strength",
    "sound_pressure",
    "speed",
    "sulphur_dioxide",
    "temperature",
    "volatile_organic_compounds",
    "volatile_organic_compounds_parts",
    "voltage",
    "volume",
    "volume_flow_rate",
    "volume_storage",
    "water",
    "weight",
    "wind_direction",
    "wind_speed",
};
// The sensor device classes whose state is text.
const std::vector<std::string> kTextClasses = {"date", "enum", "timestamp"};
// Home Assistant's BinarySensorDeviceClass.
const std::vector<std::string> kBinaryClasses = {
    "battery",
    "battery_charging",
    "carbon_monoxide",
    "cold",
    "connectivity",
    "door",
    "garage_door",
    "gas",
    "heat",
    "light",
    "lock",
    "moisture",
    "motion",
    "moving",
    "occupancy",
    "opening",
    "plug",
    "power",
    "presence",
    "problem",
    "running",
    "safety",
    "smoke",
    "sound",
    "tamper",
    "update",
    "vibration",
    "window",
};

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

std::string lowered(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// "greenhouse.temp" -> "Greenhouse temp": the entity's own name; Home
// Assistant shows it after the device's, so a leading device name is left
// out (gateway "greenhouse": "Temp").
std::string display_name(std::string_view name, const std::string& device) {
    std::string out(name);
    for (char& c : out) {
        if (c == '.' || c == '_') c = ' ';
    }
    const std::string lead = lowered(device) + " ";
    if (out.size() > lead.size() && lowered(out.substr(0, lead.size())) == lead)
        out.erase(0, lead.size());
    if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
    return out;
}

struct Common {
    std::string gateway;  // id_part(gateway.id)
    std::string base;     // <topic_prefix>/<gateway.id>
    std::string prefix;   // discovery prefix
    Json device;
    Json origin;
};

Json start_payload(const Common& c, const std::string& component, const std::string& object_id,
                   const std::string& name) {
    Json j;
    j["name"] = name;
    j["unique_id"] = "tidegate_" + c.gateway + "_" + object_id;
    j["default_entity_id"] = component + "." + c.gateway + "_" + object_id;
    j["object_id"] = c.gateway + "_" + object_id;
    return j;
}

void finish_payload(const Common& c, Json& j) {
    j["availability_topic"] = c.base + "/status";
    j["availability_template"] = "{{ value_json.state }}";
    j["payload_available"] = "online";
    j["payload_not_available"] = "offline";
    j["device"] = c.device;
    j["origin"] = c.origin;
}

const char* const kOnOffTemplate = "{{ 'ON' if value_json.value else 'OFF' }}";
const char* const kValueTemplate = "{{ value_json.value }}";

bool is_config_topic(const std::string& t) {
    static const std::string suffix = "/config";
    return t.size() > suffix.size() && t.size() <= 4096 &&
           t.compare(t.size() - suffix.size(), suffix.size(), suffix) == 0 &&
           t.find_first_of("+#") == std::string::npos && t.find('\0') == std::string::npos;
}

}  // namespace

const std::vector<std::string>& device_classes_for(ValueType type) {
    switch (type) {
        case ValueType::Boolean:
            return kBinaryClasses;
        case ValueType::String:
            return kTextClasses;
        case ValueType::Number:
            break;
    }
    return kNumericClasses;
}

std::string check_device_class(const std::string& device_class, ValueType type) {
    const std::vector<std::string>& allowed = device_classes_for(type);
    if (contains(allowed, device_class)) return {};
    const std::string kind(type_name(type));
    for (ValueType other : {ValueType::Number, ValueType::Boolean, ValueType::String}) {
        if (other != type && contains(device_classes_for(other), device_class)) {
            return "device_class '" + device_class + "' is for " + std::string(type_name(other)) +
                   " sensors, not " + kind + " ones";
        }
    }
    std::string msg = "unknown device_class '" + device_class + "' for a " + kind + " sensor";
    const std::string near = closest_match(device_class, allowed);
    if (!near.empty()) return msg + " (did you mean '" + near + "'?)";
    if (allowed.size() <= 5) return msg + " (available: " + join_words(allowed) + ")";
    return msg;
}

std::string device_class_for_unit(std::string_view unit) {
    if (unit == "°C" || unit == "°F" || unit == "K") return "temperature";
    if (unit == "hPa" || unit == "Pa" || unit == "bar") return "pressure";
    if (unit == "V") return "voltage";
    if (unit == "A") return "current";
    if (unit == "W") return "power";
    if (unit == "lx") return "illuminance";
    return {};
}

std::string id_part(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) c = '_';
    }
    return out;
}

std::vector<Entity> discovery_entities(const Config& cfg,
                                       const std::vector<std::string>& rule_names,
                                       std::string_view version,
                                       std::vector<std::string>* skipped) {
    Common c;
    c.gateway = id_part(cfg.gateway.id);
    c.base = cfg.topic_base();
    c.prefix = cfg.homeassistant.prefix;
    c.device = Json{{"identifiers", Json::array({"tidegate_" + c.gateway})},
                    {"name", cfg.gateway.id},
                    {"manufacturer", "tidegate"},
                    {"model", "tidegate edge gateway"},
                    {"sw_version", version}};
    c.origin = Json{{"name", "tidegate"}, {"sw_version", version}};

    std::vector<Entity> out;
    std::set<std::string> topics;
    auto add = [&](const std::string& component, const std::string& object_id, const Json& j,
                   const std::string& what) {
        Entity e{component, object_id,
                 c.prefix + "/" + component + "/" + c.gateway + "/" + object_id + "/config",
                 j.dump(-1, ' ', false, Json::error_handler_t::replace)};
        if (!topics.insert(e.topic).second) {
            if (skipped) skipped->push_back(what + " is not announced: " + e.topic + " is taken");
            return;
        }
        out.push_back(std::move(e));
    };

    for (const SensorConfig& s : cfg.sensors) {
        if (s.publish == PublishMode::None || s.publish == PublishMode::Events) continue;
        const std::string object_id = id_part(s.name);
        const std::string name =
            s.ha_name.empty() ? display_name(s.name, cfg.gateway.id) : s.ha_name;
        const std::string component = s.type == ValueType::Boolean ? "binary_sensor" : "sensor";
        Json j = start_payload(c, component, object_id, name);
        j["state_topic"] = c.base + "/state/" + s.path();
        std::string device_class = s.ha_device_class;
        if (s.type == ValueType::Boolean) {
            j["value_template"] = kOnOffTemplate;
        } else {
            j["value_template"] = kValueTemplate;
        }
        if (s.type == ValueType::Number) {
            if (!s.unit.empty()) j["unit_of_measurement"] = s.unit;
            j["state_class"] = "measurement";
            if (device_class.empty()) device_class = device_class_for_unit(s.unit);
        }
        if (!device_class.empty()) j["device_class"] = device_class;
        finish_payload(c, j);
        add(component, object_id, j, "sensor '" + s.name + "'");
    }
    for (const std::string& rule : rule_names) {
        const std::string object_id = "rule_" + id_part(rule);
        Json j = start_payload(c, "binary_sensor", object_id, display_name(rule, cfg.gateway.id));
        j["device_class"] = "problem";
        j["state_topic"] = c.base + "/rules/" + rule;
        j["value_template"] = kOnOffTemplate;
        finish_payload(c, j);
        add("binary_sensor", object_id, j, "rule '" + rule + "'");
    }
    for (const OutputConfig& o : cfg.outputs) {
        const std::string object_id = "output_" + id_part(o.name);
        const std::string component = o.remote ? "switch" : "binary_sensor";
        Json j = start_payload(c, component, object_id, display_name(o.name, cfg.gateway.id));
        if (o.remote) {
            j["command_topic"] = c.base + "/cmd/outputs/" + o.name;
            j["payload_on"] = "on";
            j["payload_off"] = "off";
        }
        j["state_topic"] = c.base + "/outputs/" + o.name;
        j["value_template"] = kValueTemplate;
        if (o.remote) {
            j["state_on"] = "on";
            j["state_off"] = "off";
        } else {
            // The template gives the output's own "on"/"off".
            j["payload_on"] = "on";
            j["payload_off"] = "off";
        }
        finish_payload(c, j);
        add(component, object_id, j, "output '" + o.name + "'");
    }
    return out;
}

std::string announced_path(const Config& cfg) {
    return cfg.gateway.data_dir + "/homeassistant.announced";
}

std::string announced_to_text(const std::set<std::string>& topics) {
    Json j;
    j["v"] = 1;
    j["topics"] = Json::array();
    for (const std::string& t : topics)
        j["topics"].push_back(t);
    return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::set<std::string> announced_from_text(std::string_view text) {
    std::set<std::string> out;
    const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return out;
    const auto it = j.find("topics");
    if (it == j.end() || !it->is_array()) return out;
    for (const Json& t : *it) {
        if (t.is_string() && is_config_topic(t.get<std::string>()))
            out.insert(t.get<std::string>());
    }
    return out;
}

HaAnnouncer::HaAnnouncer(const Config& cfg, std::string version, PublishFn publish,
                         ConnectedFn connected)
    : cfg_(cfg),
      version_(std::move(version)),
      publish_(std::move(publish)),
      connected_(std::move(connected)) {
    std::string text, why;
    const std::string path = announced_path(cfg_);
    if (read_regular_file(path, 4u << 20, text, why)) {
        announced_ = announced_from_text(text);
        written_ = announced_to_text(announced_);
    }
}

HaAnnouncer::~HaAnnouncer() = default;

void HaAnnouncer::set_rules(std::vector<std::string> names) {
    rules_ = std::move(names);
    // Not connected: the next connect announces everything anyway.
    if (connected_()) publish_all(true);
}

void HaAnnouncer::on_connected(MonoTime now) {
    deferred_.reset();
    last_.clear();
    publish_all(false);
    last_announce_ = now;
}

bool HaAnnouncer::on_message(const MqttIncoming& m, MonoTime now) {
    if (m.topic != status_topic()) return false;
    // A retained status arrives right after our subscribe, i.e. right after
    // the announce every connect makes; only a live birth message counts.
    if (m.retained || m.payload != "online") return true;
    if (!connected_()) return true;
    if (!last_announce_ || now >= *last_announce_ + kMinInterval) {
        publish_all(false);
        last_announce_ = now;
        deferred_.reset();
    } else if (!deferred_) {
        deferred_ = *last_announce_ + kMinInterval;
    }
    return true;
}

void HaAnnouncer::on_timer(MonoTime now) {
    if (!deferred_ || now < *deferred_) return;
    deferred_.reset();
    if (!connected_()) return;
    publish_all(false);
    last_announce_ = now;
}

void HaAnnouncer::publish_all(bool only_changed) {
    std::vector<std::string> skipped;
    std::vector<Entity> now = discovery_entities(cfg_, rules_, version_, &skipped);
    for (const std::string& s : skipped)
        log_warn("homeassistant", s);
    std::set<std::string> current;
    for (const Entity& e : now)
        current.insert(e.topic);
    // Remembered before anything is published: what a crash interrupts is
    // removed (or announced again) at the next start.
    std::set<std::string> both = announced_;
    both.insert(current.begin(), current.end());
    save(both);
    // Gone since the last announce (this run or a previous one): an empty
    // retained config deletes the entity in Home Assistant.
    std::size_t removed = 0;
    for (const std::string& t : announced_) {
        if (current.count(t)) continue;
        publish_({t, "", 1, true});
        ++removed;
    }
    std::size_t sent = 0;
    for (const Entity& e : now) {
        if (only_changed) {
            const auto same = std::find_if(last_.begin(), last_.end(), [&](const Entity& old) {
                return old.topic == e.topic && old.payload == e.payload;
            });
            if (same != last_.end()) continue;
        }
        publish_({e.topic, e.payload, 1, true});
        ++sent;
    }
    if (!only_changed) ++announces_;
    log_info("homeassistant", "announced " + std::to_string(sent) + " entit" +
                                  (sent == 1 ? "y" : "ies") + " under " +
                                  cfg_.homeassistant.prefix + "/" +
                                  (removed ? ", removed " + std::to_string(removed) : ""));
    last_ = std::move(now);
    announced_ = std::move(current);
    save(announced_);
}

void HaAnnouncer::save(const std::set<std::string>& topics) {
    std::string text = announced_to_text(topics);
    if (text == written_) return;
    // On the loop thread, but only when the set changes (a config change, a
    // reload): a write still in flight when the process dies could forget an
    // entity, which would then never be removed.
    try {
        write_file_atomic(announced_path(cfg_), text);
        written_ = std::move(text);
    } catch (const std::exception& e) {
        log_warn("homeassistant", std::string("cannot save the announced entities: ") + e.what());
    }
}

}  // namespace tg::ha
