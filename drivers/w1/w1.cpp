#include "w1.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "drivers/sysfs_files.h"

namespace tg::drivers {
namespace {

constexpr std::array<OptionSpec, 2> kOptions{{
    {"device", OptType::String, "auto",
     "sensor id as in /sys/bus/w1/devices (e.g. 28-00000a1b2c3d), or auto: the only 28-* there"},
    {"root", OptType::String, "/", "folder that stands for / (for tests)"},
}};

std::unique_ptr<Driver> create(std::span<const SensorSpec> sensors) {
    if (sensors.size() != 1) throw std::logic_error("w1 sensors are never shared");
    return std::make_unique<W1Driver>(sensors.front());
}

}  // namespace

const DriverInfo kW1Driver{
    "w1", "DS18B20 1-Wire temperature (CRC checked)", kOptions, true, ValueType::Number, &create};

W1Driver::W1Driver(const SensorSpec& spec)
    : sensor_(spec.name),
      device_(spec.options.string("device")),
      devices_dir_(under_root(spec.options.string("root"), "/sys/bus/w1/devices").string()) {
    if (device_.empty() || device_.find('/') != std::string::npos || device_ == "." ||
        device_ == "..") {
        throw OptionError("device", "expected a sensor id such as 28-00000a1b2c3d, or auto");
    }
}

std::string W1Driver::resolve(std::string& reason, std::string& detail) const {
    namespace fs = std::filesystem;
    if (device_ != "auto") {
        const fs::path dir = fs::path(devices_dir_) / device_;
        std::error_code ec;
        if (fs::exists(dir, ec)) return dir.string();
        reason = "no_device";
        detail = "1-Wire sensor " + device_ + " not found in " + devices_dir_ +
                 " (unplugged, or a wrong id?)";
        return "";
    }
    std::vector<std::string> found;
    std::error_code ec;
    for (fs::directory_iterator it(devices_dir_, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.rfind("28-", 0) == 0) found.push_back(name);
    }
    std::sort(found.begin(), found.end());
    if (found.size() == 1) return (fs::path(devices_dir_) / found.front()).string();
    if (found.empty()) {
        reason = "no_device";
        detail = "device auto: no DS18B20 (28-*) in " + devices_dir_ +
                 " (is dtoverlay=w1-gpio set in config.txt and the sensor wired with its "
                 "4.7 kΩ pull-up?)";
    } else {
        reason = "ambiguous";
        detail = "device auto: " + std::to_string(found.size()) + " DS18B20 sensors found (";
        for (std::size_t i = 0; i < found.size(); ++i)
            detail += (i ? ", " : "") + found[i];
        detail += "); set device to one of them for each sensor";
    }
    return "";
}

Parsed W1Driver::parse_w1_slave(std::string_view text) {
    // Line 1: the 9 scratchpad bytes, "crc=XX" and YES or NO.
    // Line 2: the same bytes and "t=" with the temperature in milli-°C.
    const std::size_t nl = text.find('\n');
    const std::string first = trim(text.substr(0, nl));
    if (first.empty()) return Parsed::fail("parse", "w1_slave is empty");
    if (first.size() < 3 || first.compare(first.size() - 3, 3, "YES") != 0) {
        return Parsed::fail("crc", "CRC check failed: '" + excerpt(first) + "'");
    }
    // A sensor that does not answer reads as zeros, whose CRC is also zero.
    if (first.rfind("00 00 00 00 00 00 00 00 00", 0) == 0) {
        return Parsed::fail("crc",
                            "all-zero scratchpad: the sensor did not answer "
                            "(check the data wire and the pull-up)");
    }
    const std::string_view second =
        nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    const std::size_t t = second.find("t=");
    if (t == std::string_view::npos) {
        return Parsed::fail("parse", "no t= in w1_slave: '" + excerpt(trim(second)) + "'");
    }
    std::string_view digits = second.substr(t + 2);
    digits = digits.substr(0, digits.find('\n'));
    Parsed p = parse_number(digits);
    if (!p) return p;
    return Parsed::ok(std::get<double>(*p.value) / 1000.0);
}

void W1Driver::poll(const Clock& clock, Sink& sink) {
    const MonoTime now = clock.monotonic();
    std::string reason, detail;
    const std::string dir = resolve(reason, detail);
    if (dir.empty()) {
        // Retried at every poll; the log says so at most once a minute.
        if (auto held = log_limit_.allow(reason, now)) {
            log_warn("w1", sensor_ + ": " + detail +
                               (*held ? " (" + std::to_string(*held) + " more)" : ""));
        }
        sink.bad_reading(sensor_, reason, detail);
        return;
    }
    const std::string file = dir + "/w1_slave";
    const FileRead r = read_small_file(file);
    if (!r.text) {
        sink.bad_reading(sensor_, failure_reason(r.error), read_failure_detail(file, r.error));
        return;
    }
    Parsed p = parse_w1_slave(*r.text);
    if (!p) {
        sink.bad_reading(sensor_, p.reason, p.detail);
        return;
    }
    sink.reading(Reading{sensor_, std::move(*p.value), clock.wall(), now});
}

}  // namespace tg::drivers
