// Home Assistant MQTT discovery (SPEC §8). Two halves:
// - pure functions: the device classes Home Assistant knows, and the
//   discovery messages of a config and rule set (topic, retained payload),
//   testable without a broker;
// - HaAnnouncer, on the event loop thread: announces them on every connect
//   and on Home Assistant's birth message (at most once a second), announces
//   what a rule reload adds, empties the config of entities that disappeared,
//   and remembers what it announced in data_dir so that this also holds
//   across restarts.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "core/clock.h"
#include "event_queue.h"
#include "mqtt_client.h"

namespace tg::ha {

// Device classes Home Assistant accepts for a sensor of `type`: numeric
// sensor classes for number, enum/timestamp/date for string, binary sensor
// classes for boolean.
const std::vector<std::string>& device_classes_for(ValueType type);
// Why `device_class` does not suit a sensor of `type` (with a did-you-mean
// when it is a typo), or empty when it does.
std::string check_device_class(const std::string& device_class, ValueType type);

// The device class a unit implies where it is unambiguous, else empty.
std::string device_class_for_unit(std::string_view unit);

// `s` with every character outside [A-Za-z0-9_-] replaced by '_'.
std::string id_part(std::string_view s);

struct Entity {
    std::string component;  // sensor, binary_sensor, switch
    std::string object_id;  // greenhouse_temp, rule_<name>, output_<name>
    std::string topic;      // <prefix>/<component>/<gateway.id>/<object_id>/config
    std::string payload;    // the discovery config, JSON
};

// Every entity of `cfg` and the rules named `rule_names`, in order: sensors,
// rules, outputs. Sensors without a state topic (publish none or events) are
// left out, as is any entity whose topic an earlier one already took (two
// sensor names that differ only in '.' and '_'); `skipped` gets a line for
// each of those when given.
std::vector<Entity> discovery_entities(const Config& cfg,
                                       const std::vector<std::string>& rule_names,
                                       std::string_view version,
                                       std::vector<std::string>* skipped = nullptr);

// The file in data_dir that remembers the announced config topics.
std::string announced_path(const Config& cfg);
// Its text, and back. Unreadable or hostile content reads as nothing
// announced; only topics under <prefix>/…/config without wildcards are kept.
std::string announced_to_text(const std::set<std::string>& topics);
std::set<std::string> announced_from_text(std::string_view text);

class HaAnnouncer {
  public:
    using PublishFn = std::function<void(OutMessage)>;
    using ConnectedFn = std::function<bool()>;
    // At most one announce per this much, whatever arrives on <prefix>/status.
    static constexpr std::chrono::milliseconds kMinInterval{1000};

    // Reads what the previous run announced (announced_path).
    HaAnnouncer(const Config& cfg, std::string version, PublishFn publish, ConnectedFn connected);
    ~HaAnnouncer();
    HaAnnouncer(const HaAnnouncer&) = delete;
    HaAnnouncer& operator=(const HaAnnouncer&) = delete;

    // Home Assistant's status topic (<prefix>/status), to subscribe to.
    std::string status_topic() const { return cfg_.homeassistant.prefix + "/status"; }

    // The rules now running; when connected, what changed is published at once.
    void set_rules(std::vector<std::string> names);
    // After the link is connected (the birth queued first): the full announce.
    void on_connected(MonoTime now);
    // A message from the broker: true when it was on the status topic.
    bool on_message(const MqttIncoming& m, MonoTime now);
    std::optional<MonoTime> next_deadline() const { return deferred_; }
    void on_timer(MonoTime now);
    std::uint64_t announces() const { return announces_; }

  private:
    // Publishes the removals and the configs (all, or only new and changed).
    void publish_all(bool only_changed);
    // Writes `topics` to announced_path (atomically) unless it holds them already.
    void save(const std::set<std::string>& topics);

    const Config& cfg_;
    const std::string version_;
    PublishFn publish_;
    ConnectedFn connected_;
    std::vector<std::string> rules_;
    std::set<std::string> announced_;  // config topics announced and not yet emptied
    std::string written_;              // the file's content as last written
    std::vector<Entity> last_;         // the configs last published
    std::optional<MonoTime> last_announce_;
    std::optional<MonoTime> deferred_;  // a birth message asked for an announce then
    std::uint64_t announces_ = 0;
};

}  // namespace tg::ha
