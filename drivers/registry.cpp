// The one table of drivers. Adding a driver = one line here (and a folder with
// its README); a convention test checks every folder is listed.
#include <algorithm>
#include <array>

#include "driver.h"
#include "simulated/simulated.h"

namespace tg::drivers {
namespace {

const std::array<const DriverInfo*, 1> kDrivers{{
    &kSimulatedDriver,
}};

// Output option tables; rules (the only users of outputs) switch them.
constexpr std::array<OptionSpec, 4> kGpioOutputOptions{{
    {"chip", OptType::String, "gpiochip0", "GPIO chip name or path"},
    {"line", OptType::Integer, "", "line offset on the chip", true},
    {"active_low", OptType::Boolean, "false", "invert the line"},
    {"initial", OptType::String, "off", "state at start: on | off"},
}};
constexpr std::array<OptionSpec, 3> kFileOutputOptions{{
    {"path", OptType::String, "", "file written on each change (exactly, no newline)", true},
    {"on", OptType::String, "1", "text written for on"},
    {"off", OptType::String, "0", "text written for off"},
}};
constexpr std::array<OptionSpec, 5> kMqttOutputOptions{{
    {"topic", OptType::String, "", "topic published on each change", true},
    {"on", OptType::String, "ON", "payload for on"},
    {"off", OptType::String, "OFF", "payload for off"},
    {"qos", OptType::Integer, "1", "0 or 1"},
    {"retain", OptType::Boolean, "false", "publish retained"},
}};

const std::array<OutputInfo, 3> kOutputs{{
    {"gpio", "a GPIO line via libgpiod", kGpioOutputOptions},
    {"file", "writes a string to a file (sysfs LEDs, relays)", kFileOutputOptions},
    {"mqtt", "publishes to another device's topic", kMqttOutputOptions},
}};

}  // namespace

std::span<const DriverInfo> driver_registry() {
    static const std::vector<DriverInfo> table = [] {
        std::vector<DriverInfo> v;
        for (const DriverInfo* d : kDrivers)
            v.push_back(*d);
        return v;
    }();
    return table;
}

const DriverInfo* find_driver(std::string_view name) {
    for (const DriverInfo& d : driver_registry()) {
        if (d.name == name) return &d;
    }
    return nullptr;
}

std::span<const OutputInfo> output_registry() {
    return kOutputs;
}

const OutputInfo* find_output(std::string_view name) {
    auto it = std::find_if(kOutputs.begin(), kOutputs.end(),
                           [&](const OutputInfo& o) { return o.name == name; });
    return it == kOutputs.end() ? nullptr : &*it;
}

}  // namespace tg::drivers
