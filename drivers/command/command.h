// command: runs a program (argv, no shell) every interval on the driver's own
// thread, so a slow program never holds up the event loop, and parses its
// standard output. Sensors with the same argv share one run. A run that
// exceeds `timeout` has its whole process group killed.
#pragma once

#include <string>
#include <vector>

#include "drivers/driver.h"
#include "drivers/process.h"
#include "drivers/sensor_parse.h"
#include "drivers/worker.h"

namespace tg::drivers {

extern const DriverInfo kCommandDriver;

class CommandDriver final : public Driver {
  public:
    static constexpr std::size_t kMaxOutput = 64 * 1024;

    // All `sensors` have the same argv. `clock` stamps readings and must
    // outlive the driver.
    CommandDriver(std::span<const SensorSpec> sensors, const Clock& clock);
    ~CommandDriver() override;
    bool polled() const override { return false; }
    void start(Sink& sink) override;
    void stop() override;

    // What one run gave; exposed for tests.
    using Outcome = ProcessOutcome;
    // Runs the program once and waits for it (up to the timeout).
    Outcome run_once();

  private:
    struct Target {
        std::string sensor;
        FieldParser parser;
    };
    void run(Sink& sink);
    void report(const Outcome& o, Sink& sink);
    void bad_for_all(Sink& sink, const std::string& reason, const std::string& detail);

    std::vector<std::string> argv_;
    std::chrono::milliseconds interval_;
    std::chrono::milliseconds timeout_;
    std::vector<Target> targets_;
    const Clock& clock_;
    Worker worker_;
};

}  // namespace tg::drivers
