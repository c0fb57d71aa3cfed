#include "iio.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <filesystem>
#include <stdexcept>

#include "drivers/sysfs_files.h"

namespace tg::drivers {
namespace {

namespace fs = std::filesystem;

constexpr std::array<OptionSpec, 5> kOptions{{
    {"device", OptType::String, "",
     "the IIO device's name (e.g. bme280, as in its name file) or iio:deviceN", true},
    {"channel", OptType::String, "",
     "channel without in_ and suffix: temp, humidityrelative, pressure, voltage0, …", true},
    {"scale", OptType::Number, "1", "calibration: the converted value is multiplied by this"},
    {"offset", OptType::Number, "0", "calibration: then this is added"},
    {"root", OptType::String, "/", "folder that stands for / (for tests)"},
}};

std::unique_ptr<Driver> create(std::span<const SensorSpec> sensors) {
    if (sensors.size() != 1) throw std::logic_error("iio sensors are never shared");
    return std::make_unique<IioDriver>(sensors.front());
}

bool is_device_number(const std::string& s) {
    constexpr std::string_view prefix = "iio:device";
    if (s.size() <= prefix.size() || s.compare(0, prefix.size(), prefix) != 0) return false;
    return std::all_of(s.begin() + static_cast<std::ptrdiff_t>(prefix.size()), s.end(),
                       [](char c) { return c >= '0' && c <= '9'; });
}

// The channel type: the leading letters ("voltage0" → voltage,
// "temp_object" → temp).
std::string channel_type(const std::string& channel) {
    std::size_t i = 0;
    while (i < channel.size() && channel[i] >= 'a' && channel[i] <= 'z')
        ++i;
    return channel.substr(0, i);
}

// The IIO devices under `dir` (folder name, content of its name file).
std::vector<std::pair<std::string, std::string>> list_devices(const std::string& dir) {
    std::vector<std::pair<std::string, std::string>> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string folder = it->path().filename().string();
        if (!is_device_number(folder)) continue;
        const FileRead r = read_small_file(it->path() / "name");
        out.emplace_back(folder, r.text ? trim(*r.text) : std::string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

// The channels a device folder offers, for messages ("temp, pressure").
std::string list_channels(const std::string& dir) {
    std::vector<std::string> channels;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string f = it->path().filename().string();
        for (const char* suffix : {"_input", "_raw"}) {
            const std::string sfx(suffix);
            if (f.rfind("in_", 0) == 0 && f.size() > 3 + sfx.size() &&
                f.compare(f.size() - sfx.size(), sfx.size(), sfx) == 0) {
                channels.push_back(f.substr(3, f.size() - 3 - sfx.size()));
            }
        }
    }
    std::sort(channels.begin(), channels.end());
    channels.erase(std::unique(channels.begin(), channels.end()), channels.end());
    std::string out;
    for (const std::string& c : channels)
        out += (out.empty() ? "" : ", ") + c;
    return out.empty() ? "none" : out;
}

}  // namespace

const DriverInfo kIioDriver{"iio",
                            "a Linux IIO channel (BME280, BMP280, DHT11/22, ADS1115, …)",
                            kOptions,
                            true,
                            ValueType::Number,
                            &create};

IioDriver::IioDriver(const SensorSpec& spec)
    : sensor_(spec.name),
      device_(spec.options.string("device")),
      channel_(spec.options.string("channel")),
      scale_(spec.options.number("scale")),
      offset_(spec.options.number("offset")),
      devices_dir_(under_root(spec.options.string("root"), "/sys/bus/iio/devices").string()) {
    if (device_.empty() || device_.find('/') != std::string::npos) {
        throw OptionError("device", "expected the device's name (e.g. bme280) or iio:deviceN");
    }
    if (channel_.rfind("in_", 0) == 0) {
        throw OptionError("channel",
                          "write the channel without in_ and the suffix, e.g. temp "
                          "for in_temp_input");
    }
    const bool valid =
        !channel_.empty() && channel_type(channel_).size() > 0 &&
        std::all_of(channel_.begin(), channel_.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        });
    if (!valid) {
        throw OptionError("channel",
                          "expected a channel such as temp, humidityrelative, "
                          "pressure or voltage0");
    }
    // Scale and offset may be per channel (in_voltage0_scale) or shared by
    // the channel type (in_voltage_scale, in_voltage-voltage_scale).
    std::string no_digits;
    for (char c : channel_) {
        if (c < '0' || c > '9') no_digits += c;
    }
    for (const std::string& p : {channel_, no_digits, channel_type(channel_)}) {
        if (std::find(shared_prefixes_.begin(), shared_prefixes_.end(), p) ==
            shared_prefixes_.end()) {
            shared_prefixes_.push_back(p);
        }
    }
}

double IioDriver::unit_factor(const std::string& channel) {
    const std::string type = channel_type(channel);
    if (type == "temp" || type == "humidityrelative") return 0.001;
    if (type == "pressure") return 10.0;
    if (type == "voltage" || type == "current" || type == "power") return 0.001;
    return 1.0;
}

std::string IioDriver::resolve(std::string& reason, std::string& detail) const {
    if (is_device_number(device_)) {
        const fs::path dir = fs::path(devices_dir_) / device_;
        std::error_code ec;
        if (fs::is_directory(dir, ec)) return dir.string();
        reason = "no_device";
        detail = "IIO device " + device_ + " not found in " + devices_dir_;
        return "";
    }
    const auto devices = list_devices(devices_dir_);
    std::vector<std::string> matches;
    std::string available;
    for (const auto& [folder, name] : devices) {
        if (name == device_) matches.push_back(folder);
        available += (available.empty() ? "" : ", ") + name + " (" + folder + ")";
    }
    if (matches.size() == 1) return (fs::path(devices_dir_) / matches.front()).string();
    if (matches.empty()) {
        reason = "no_device";
        detail = "no IIO device named '" + device_ + "' in " + devices_dir_ +
                 " (present: " + (available.empty() ? "none" : available) +
                 "); is its dtoverlay set in config.txt?";
    } else {
        reason = "ambiguous";
        detail = std::to_string(matches.size()) + " IIO devices are named '" + device_ + "' (";
        for (std::size_t i = 0; i < matches.size(); ++i)
            detail += (i ? ", " : "") + matches[i];
        detail += "): use device: iio:deviceN";
    }
    return "";
}

Parsed IioDriver::read_channel(const std::string& dir) const {
    // Processed value first: the kernel already applied scale and offset.
    const std::string input = dir + "/in_" + channel_ + "_input";
    const FileRead in = read_small_file(input);
    if (in.text) {
        Parsed p = parse_number(*in.text);
        if (!p) p.detail = input + ": " + p.detail;
        return p;
    }
    if (in.error != ENOENT) {
        return Parsed::fail(failure_reason(in.error), read_failure_detail(input, in.error));
    }
    const std::string raw_path = dir + "/in_" + channel_ + "_raw";
    const FileRead raw = read_small_file(raw_path);
    if (!raw.text) {
        if (raw.error == ENOENT) {
            return Parsed::fail("no_device", "channel '" + channel_ + "' not found: no in_" +
                                                 channel_ + "_input or _raw in " + dir +
                                                 " (channels there: " + list_channels(dir) + ")");
        }
        return Parsed::fail(failure_reason(raw.error), read_failure_detail(raw_path, raw.error));
    }
    Parsed value = parse_number(*raw.text);
    if (!value) {
        value.detail = raw_path + ": " + value.detail;
        return value;
    }
    // Per the IIO ABI: processed = (raw + offset) × scale, each attribute
    // optional (scale 1, offset 0).
    double factors[2] = {1.0, 0.0};
    const char* names[2] = {"_scale", "_offset"};
    for (int k = 0; k < 2; ++k) {
        for (const std::string& prefix : shared_prefixes_) {
            const std::string path = dir + "/in_" + prefix + names[k];
            const FileRead f = read_small_file(path);
            if (!f.text) {
                if (f.error == ENOENT) continue;
                return Parsed::fail(failure_reason(f.error), read_failure_detail(path, f.error));
            }
            Parsed p = parse_number(*f.text);
            if (!p) {
                p.detail = path + ": " + p.detail;
                return p;
            }
            factors[k] = std::get<double>(*p.value);
            break;
        }
    }
    return Parsed::ok((std::get<double>(*value.value) + factors[1]) * factors[0]);
}

void IioDriver::poll(const Clock& clock, Sink& sink) {
    std::string reason, detail;
    const std::string dir = resolve(reason, detail);
    if (dir.empty()) {
        sink.bad_reading(sensor_, reason, detail);
        return;
    }
    Parsed p = read_channel(dir);
    if (!p) {
        sink.bad_reading(sensor_, p.reason, p.detail);
        return;
    }
    const double v = std::get<double>(*p.value) * unit_factor(channel_) * scale_ + offset_;
    const MonoTime mono = clock.monotonic();
    sink.reading(Reading{sensor_, v, clock.wall(), mono});
}

}  // namespace tg::drivers
