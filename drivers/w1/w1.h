// w1: DS18B20 1-Wire temperature sensors through the kernel's w1 driver
// (<root>/sys/bus/w1/devices/<id>/w1_slave). The kernel reads the sensor when
// the file is read (about 750 ms), so polls should be a few seconds apart.
#pragma once

#include <string>

#include "core/log.h"
#include "drivers/driver.h"
#include "drivers/sensor_parse.h"

namespace tg::drivers {

extern const DriverInfo kW1Driver;

class W1Driver final : public Driver {
  public:
    explicit W1Driver(const SensorSpec& spec);
    void poll(const Clock& clock, Sink& sink) override;

    // The temperature in °C from a w1_slave file's text; exposed for tests.
    static Parsed parse_w1_slave(std::string_view text);

  private:
    // The device folder, or a failure (none or several with `auto`, or the
    // configured one missing).
    std::string resolve(std::string& reason, std::string& detail) const;

    std::string sensor_;
    std::string device_;  // an id such as 28-00000a1b2c3d, or "auto"
    std::string devices_dir_;
    RateLimiter log_limit_{std::chrono::minutes(1)};
};

}  // namespace tg::drivers
