// file: a value read from one file on every poll (sysfs thermal zones, hwmon,
// power supplies), and the file output that writes a string on each switch
// (sysfs LEDs, relays behind a sysfs attribute).
#pragma once

#include <optional>
#include <string>

#include "drivers/driver.h"

namespace tg::drivers {

extern const DriverInfo kFileDriver;
extern const OutputInfo kFileOutput;

class FileDriver final : public Driver {
  public:
    explicit FileDriver(const SensorSpec& spec);
    void poll(const Clock& clock, Sink& sink) override;

  private:
    std::string sensor_;
    ValueType type_;
    std::string pattern_;  // path under root; may hold * and ? (exactly one match)
    bool glob_;
    double scale_, offset_;
};

class FileOutput final : public Output {
  public:
    FileOutput(const std::string& name, const Options& options);
    void start() override;
    void set(bool on) override;

  private:
    std::string name_;
    std::string path_;  // under root
    std::string on_, off_;
    std::optional<bool> initial_;
};

}  // namespace tg::drivers
