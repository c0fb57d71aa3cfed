// The driver interface: how sensors are read. A driver is created from its
// validated options (no I/O), started, then either polled by the event loop at
// the sensor's interval or, for drivers that wait on a device, posts readings
// from its own thread through the Sink.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "core/reading.h"
#include "core/value.h"

namespace tg::drivers {

enum class OptType { Number, Integer, Boolean, String, Duration, NumberList, StringList };

struct OptionSpec {
    std::string_view name;
    OptType type;
    std::string_view default_value;  // YAML text of the default; empty = required
    std::string_view help;
    bool required = false;
};

using OptValue = std::variant<double, long long, bool, std::string, std::chrono::milliseconds,
                              std::vector<double>, std::vector<std::string>>;

// Options after validation against a driver's table: every key present,
// defaults filled in, each of its declared type.
class Options {
  public:
    void set(std::string name, OptValue v) { values_[std::move(name)] = std::move(v); }
    bool has(const std::string& name) const { return values_.count(name) != 0; }

    double number(const std::string& name) const;
    long long integer(const std::string& name) const;
    bool boolean(const std::string& name) const;
    const std::string& string(const std::string& name) const;
    std::chrono::milliseconds duration(const std::string& name) const;
    const std::vector<double>& numbers(const std::string& name) const;
    const std::vector<std::string>& strings(const std::string& name) const;

  private:
    const OptValue& get(const std::string& name) const;
    std::map<std::string, OptValue> values_;
};

// A problem with one option, found when the driver is created; the config
// loader turns it into FILE:LINE:COL of that key.
class OptionError : public std::runtime_error {
  public:
    OptionError(std::string key, const std::string& message)
        : std::runtime_error(message), key_(std::move(key)) {}
    const std::string& key() const { return key_; }

  private:
    std::string key_;
};

// What a sensor asks of its driver.
struct SensorSpec {
    std::string name;
    ValueType type = ValueType::Number;
    std::chrono::milliseconds interval{5000};
    Options options;
};

// Where readings go. Thread-safe: drivers with their own threads call it.
class Sink {
  public:
    virtual ~Sink() = default;
    virtual void reading(Reading r) = 0;
    // A reading that could not be taken or parsed; counted and dead-lettered.
    virtual void bad_reading(const std::string& sensor, std::string reason, std::string detail) = 0;
};

class Driver {
  public:
    virtual ~Driver() = default;
    // Polled drivers are asked for a reading at every interval by the loop.
    virtual bool polled() const { return true; }
    virtual void start(Sink& sink) { (void)sink; }
    // Takes one reading now (one per sensor it serves). Called on the event
    // loop: must not block long. Drivers that are not polled never get it.
    virtual void poll(const Clock& clock, Sink& sink) { (void)clock, (void)sink; }
    virtual void stop() {}

    // Drivers fed by the gateway's MQTT connection (the mqtt input driver):
    // the topic filters to subscribe to, and each message that matched one.
    virtual std::vector<std::string> subscriptions() const { return {}; }
    virtual void on_message(const std::string& topic, const std::string& payload,
                            const Clock& clock, Sink& sink) {
        (void)topic, (void)payload, (void)clock, (void)sink;
    }
};

// Creates the driver for one sensor, or for several sensors that share one
// reader (same serial device, MQTT topic or command: see share_key). Must not
// touch the device: it only validates and prepares. Throws OptionError.
using DriverFactory = std::unique_ptr<Driver> (*)(std::span<const SensorSpec> sensors);
// Sensors of one driver with equal non-empty keys share one Driver instance.
using ShareKey = std::string (*)(const SensorSpec& sensor);

struct DriverInfo {
    std::string_view name;
    std::string_view summary;
    std::span<const OptionSpec> options;
    bool fixed_type = false;  // the driver decides the value type itself
    ValueType type = ValueType::Number;
    DriverFactory create;          // validates cross-option rules; throws OptionError
    ShareKey share_key = nullptr;  // nullptr: every sensor has its own driver
};

// What an output driver may use of the gateway: the MQTT link, for outputs
// that switch another device by publishing to its topic.
class OutputEnv {
  public:
    virtual ~OutputEnv() = default;
    virtual void publish(const std::string& topic, const std::string& payload, int qos,
                         bool retain) = 0;
};

// An output: something rules (and, with remote: true, MQTT commands) switch
// on and off. Called on the event loop only; set() must not block long.
class Output {
  public:
    virtual ~Output() = default;
    // Opens the device and applies the initial state; throws std::runtime_error
    // with a clear message when the device is missing.
    virtual void start() {}
    // Switches; throws std::runtime_error on failure.
    virtual void set(bool on) = 0;
    virtual void stop() {}
};

using OutputFactory = std::unique_ptr<Output> (*)(const std::string& name, const Options& options,
                                                  OutputEnv& env);

// Output drivers: things rules switch on and off.
struct OutputInfo {
    std::string_view name;
    std::string_view summary;
    std::span<const OptionSpec> options;
    OutputFactory create = nullptr;  // validates (no I/O); throws OptionError
};

// "on"/"off"/"true"/"false" in any case (SPEC §2); nullopt otherwise.
std::optional<bool> parse_on_off(std::string_view text);

std::span<const DriverInfo> driver_registry();
const DriverInfo* find_driver(std::string_view name);
std::span<const OutputInfo> output_registry();
const OutputInfo* find_output(std::string_view name);

}  // namespace tg::drivers
