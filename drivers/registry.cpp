// The one table of drivers. Adding a driver = one line here (and a folder with
// its README); a convention test checks every folder is listed.
#include <algorithm>
#include <array>

#include "command/command.h"
#include "driver.h"
#include "file/file.h"
#include "gpio/gpio.h"
#include "iio/iio.h"
#include "mqtt/mqtt_input.h"
#include "mqtt/mqtt_output.h"
#include "serial/serial.h"
#include "simulated/simulated.h"
#include "w1/w1.h"

namespace tg::drivers {
namespace {

const std::array<const DriverInfo*, 8> kDrivers{{
    &kSimulatedDriver,
    &kFileDriver,
    &kW1Driver,
    &kIioDriver,
    &kGpioDriver,
    &kSerialDriver,
    &kCommandDriver,
    &kMqttInputDriver,
}};

// Output drivers, each from its folder.
const std::array<const OutputInfo*, 3> kOutputs{{
    &kGpioOutput,
    &kFileOutput,
    &kMqttOutput,
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
    static const std::vector<OutputInfo> table = [] {
        std::vector<OutputInfo> v;
        for (const OutputInfo* o : kOutputs)
            v.push_back(*o);
        return v;
    }();
    return table;
}

const OutputInfo* find_output(std::string_view name) {
    const std::span<const OutputInfo> all = output_registry();
    auto it =
        std::find_if(all.begin(), all.end(), [&](const OutputInfo& o) { return o.name == name; });
    return it == all.end() ? nullptr : &*it;
}

}  // namespace tg::drivers
