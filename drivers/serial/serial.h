// serial: line-oriented devices on a tty (Arduino, meters, GPS-less NMEA-ish
// gadgets). One reader thread per device, shared by every sensor naming that
// device; each line is parsed for each sensor (format + field). A device that
// disappears (USB unplug) is reopened with backoff.
#pragma once

#include <string>
#include <vector>

#include "core/log.h"
#include "drivers/driver.h"
#include "drivers/sensor_parse.h"
#include "drivers/worker.h"

namespace tg::drivers {

extern const DriverInfo kSerialDriver;

class SerialDriver final : public Driver {
  public:
    static constexpr std::size_t kMaxLine = 4096;

    // All `sensors` name the same device. `clock` stamps readings and must
    // outlive the driver.
    SerialDriver(std::span<const SensorSpec> sensors, const Clock& clock);
    ~SerialDriver() override;
    bool polled() const override { return false; }
    void start(Sink& sink) override;
    void stop() override;

  private:
    struct Target {
        std::string sensor;
        FieldParser parser;
    };
    void run(Sink& sink);
    // Reads until stopped (returns true) or the device fails (false, with `why`).
    bool read_until_failure(int fd, Sink& sink, std::string& why);
    void feed(const char* data, std::size_t n, Sink& sink);
    void line(std::string_view text, Sink& sink);
    void bad_for_all(Sink& sink, const std::string& reason, const std::string& detail);

    std::string device_;
    unsigned baud_;
    std::vector<Target> targets_;
    const Clock& clock_;
    std::string buffer_;
    bool discarding_ = false;  // inside an overlong line, until its end
    Backoff backoff_;
    RateLimiter log_limit_{std::chrono::minutes(1)};
    Worker worker_;
};

}  // namespace tg::drivers
