// iio: one channel of a Linux Industrial I/O device (BME280, BMP280,
// DHT11/22, ADS1115, …) from <root>/sys/bus/iio/devices/iio:deviceN, found by
// its `name` (stable across boots) or by iio:deviceN. Values are converted
// from the IIO ABI's units to the ones users expect (°C, %, hPa, V).
#pragma once

#include <string>
#include <vector>

#include "drivers/driver.h"
#include "drivers/sensor_parse.h"

namespace tg::drivers {

extern const DriverInfo kIioDriver;

class IioDriver final : public Driver {
  public:
    explicit IioDriver(const SensorSpec& spec);
    void poll(const Clock& clock, Sink& sink) override;

    // The factor from the IIO ABI unit of a channel to the user's unit:
    // temp 0.001 (m°C → °C), humidityrelative 0.001 (m% → %), pressure 10
    // (kPa → hPa), voltage, current and power 0.001 (mV → V, mA → A,
    // mW → W); 1 for everything else.
    static double unit_factor(const std::string& channel);

  private:
    // The device folder, or "" with a failure reason and detail.
    std::string resolve(std::string& reason, std::string& detail) const;
    // The channel's value in IIO ABI units from the device folder.
    Parsed read_channel(const std::string& dir) const;

    std::string sensor_;
    std::string device_;
    std::string channel_;
    std::vector<std::string> shared_prefixes_;  // for in_<x>_scale / _offset shared by type
    double scale_, offset_;
    std::string devices_dir_;
};

}  // namespace tg::drivers
