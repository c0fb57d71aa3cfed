// Configuration (SPEC §2): loaded from YAML, validated strictly. Every problem
// in the file is reported at once, each as FILE:LINE:COL: error: MESSAGE.
//
// Relative paths in the file (gateway.data_dir, mqtt.password_file, the
// mqtt.tls files and rules.paths entries) are resolved against the directory
// of the config file itself, not the working directory, so a config and the
// files next to it can be moved together; absolute paths are kept as written.
// The values stored below are the resolved paths.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/breaker.h"
#include "core/source_error.h"
#include "core/value.h"
#include "drivers/driver.h"

namespace tg {

struct GatewayConfig {
    std::string id;  // default: derived from the host name (default_gateway_id)
    std::string data_dir;
};

struct TlsConfig {
    bool present = false;  // a tls: section was given
    std::string ca_file;
    std::string cert_file;
    std::string key_file;
    bool verify_hostname = false;
};

struct MqttConfig {
    std::string uri;                // the first of `uris`: Paho's client is created with it
    std::vector<std::string> uris;  // tried in order on every connect (SPEC §13)
    int version = 0;                // 4 = MQTT 3.1.1, 5 = MQTT 5
    std::string client_id;          // default: tidegate-<gateway.id>
    std::string topic_prefix;
    int qos = 0;
    std::chrono::milliseconds keepalive{};
    // Incoming messages waiting for the event loop; beyond it they are shed
    // (counted as overload) rather than holding the MQTT client up.
    std::uint64_t input_buffer = 0;
    std::string username;
    std::string password_file;
    std::string password;  // read from password_file at load time
    TlsConfig tls;
};

struct RulesConfig {
    std::vector<std::string> paths;
    std::chrono::milliseconds tick{};
};

struct OutboxConfig {
    std::uint64_t max_bytes = 0;
    bool sync_always = false;
    std::chrono::milliseconds sync{};
};

struct JournalConfig {
    std::uint64_t retain_bytes = 0;
};

struct MetricsConfig {
    std::chrono::milliseconds interval{};
};

// Home Assistant MQTT discovery (SPEC §8).
struct HomeAssistantConfig {
    bool discovery = false;
    std::string prefix;  // Home Assistant's discovery prefix
};

// The local HTTP server (SPEC §9).
struct HttpConfig {
    std::string listen;      // host:port or [v6]:port; empty = off
    std::string token_file;  // empty = no token
    std::string token;       // read from token_file at load time
};

enum class PublishMode { All, Events, State, None };

struct SensorConfig {
    std::string name;
    std::string driver;
    std::chrono::milliseconds interval{};
    ValueType type = ValueType::Number;
    std::string unit;
    std::optional<std::pair<double, double>> range;
    std::optional<int> precision;
    std::optional<double> deadband;
    std::optional<std::chrono::milliseconds> heartbeat;
    PublishMode publish = PublishMode::All;
    drivers::Options options;
    // ha: { device_class, name } for Home Assistant discovery; empty = derived.
    std::string ha_device_class;
    std::string ha_name;
    SourcePos pos;  // where the sensor's entry starts

    // The sensor's topic path: name with '.' replaced by '/'.
    std::string path() const;
    drivers::SensorSpec spec() const;
};

struct OutputConfig {
    std::string name;
    std::string driver;
    drivers::Options options;
    bool remote = false;
    BreakerSettings breaker;  // SPEC §11
    SourcePos pos;
};

// Defaults: every value below is set by config_schema's tables, not by
// these structs (whose members start empty): a Config is constructed with the
// schema's defaults, a sensor or output read from a file with its table's.
struct Config {
    Config();

    std::string file;  // the path it was loaded from
    GatewayConfig gateway;
    MqttConfig mqtt;
    RulesConfig rules;
    OutboxConfig outbox;
    JournalConfig journal;
    MetricsConfig metrics;
    HomeAssistantConfig homeassistant;
    HttpConfig http;
    std::vector<SensorConfig> sensors;
    std::vector<OutputConfig> outputs;

    // <topic_prefix>/<gateway.id>
    std::string topic_base() const { return mqtt.topic_prefix + "/" + gateway.id; }
};

// Loads and validates `path`. Throws LoadError carrying every error found, in
// document order (a missing or unreadable file is one error naming the file).
// Warnings (things that may resolve at run time, settings without effect) are
// appended to `warnings` when given, whether or not the load fails; they never
// appear in the LoadError. Files the config names (mqtt.password_file, the TLS
// files) are read at load time. The config and those files must be regular
// files of at most kMaxConfigFileBytes (core/file_read.h): a FIFO or a device
// in their place is an error at once, never waited on.
Config load_config(const std::string& path, Diagnostics* warnings = nullptr);

// Same, from text already in memory; `file` names it in messages.
Config parse_config(const std::string& text, const std::string& file,
                    Diagnostics* warnings = nullptr);

// gateway.id when none is configured: the host name (up to the first '.', other
// characters outside [A-Za-z0-9_-] replaced by '-'); for the generic names
// raspberrypi and localhost, host name + "-" + the first 6 hex digits of
// /etc/machine-id.
std::string default_gateway_id(const std::string& hostname, const std::string& machine_id);

}  // namespace tg
