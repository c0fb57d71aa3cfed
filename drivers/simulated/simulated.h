// simulated: generated values for demos and tests. Deterministic for a given
// seed on every architecture (own generator, no std distributions).
#pragma once

#include <cstdint>
#include <vector>

#include "drivers/driver.h"

namespace tg::drivers {

extern const DriverInfo kSimulatedDriver;

class SimulatedDriver final : public Driver {
  public:
    enum class Profile { Sine, RandomWalk, Constant, Sequence };

    explicit SimulatedDriver(const SensorSpec& spec);
    void poll(const Clock& clock, Sink& sink) override;

    // The next value; exposed so tests can check profiles without a clock.
    Value next(MonoTime now);

  private:
    double uniform();  // [0, 1)

    std::string sensor_;
    ValueType type_;
    Profile profile_;
    double min_, max_, step_, value_;
    std::chrono::milliseconds period_;
    std::vector<double> values_;
    std::size_t index_ = 0;
    std::uint64_t state_;
    double walk_;
    bool started_ = false;
    MonoTime start_{};
};

}  // namespace tg::drivers
