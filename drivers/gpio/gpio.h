// gpio: a digital input as a boolean sensor (PIR, door contact, button):
// the level at start, then one reading per debounced change, posted from the
// driver's own thread. And the gpio output that rules switch.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/log.h"
#include "drivers/driver.h"
#include "drivers/worker.h"
#include "line_provider.h"

namespace tg::drivers {

extern const DriverInfo kGpioDriver;
extern const OutputInfo kGpioOutput;

// Collapses bounces: every edge (re)starts a quiet period of `window`; when
// it ends, the line's level is reported if it differs from the last one
// reported. A zero window reports each edge that changes the level at once.
class Debouncer {
  public:
    explicit Debouncer(std::chrono::nanoseconds window) : window_(window) {}
    void reset(bool level) {
        reported_ = level;
        armed_ = false;
    }
    // An edge to `level` at `now`: with no window, the level to report (if
    // it changed); with one, nothing yet.
    std::optional<bool> edge(MonoTime now, bool level);
    // When the quiet period ends, if one is running.
    std::optional<MonoTime> deadline() const {
        return armed_ ? std::optional<MonoTime>(deadline_) : std::nullopt;
    }
    // Called once the deadline passed, with the line's level now.
    std::optional<bool> settle(bool level);

  private:
    std::chrono::nanoseconds window_;
    bool reported_ = false;
    // A flag and a plain time point rather than std::optional: GCC 12 at -O2
    // reports a false -Wmaybe-uninitialized on the optional's comparison.
    bool armed_ = false;
    MonoTime deadline_{};
};

class GpioDriver final : public Driver {
  public:
    // `clock` stamps readings; it must outlive the driver.
    GpioDriver(const SensorSpec& spec, std::shared_ptr<LineProvider> provider, const Clock& clock);
    ~GpioDriver() override;
    bool polled() const override { return false; }
    void start(Sink& sink) override;
    void stop() override;

  private:
    void run(Sink& sink);
    // Reads edges until stopped or the line fails (throws).
    void watch(Line& line, Sink& sink);
    void post(Sink& sink, bool level, WallTime ts, MonoTime mono);

    std::string sensor_;
    LineRequest request_;
    Bias bias_;
    std::chrono::milliseconds debounce_;
    std::shared_ptr<LineProvider> provider_;
    const Clock& clock_;
    RateLimiter log_limit_{std::chrono::minutes(1)};
    Worker worker_;
};

class GpioOutput final : public Output {
  public:
    GpioOutput(const std::string& name, const Options& options,
               std::shared_ptr<LineProvider> provider);
    void start() override;
    void set(bool on) override;
    void stop() override;

  private:
    std::string name_;
    LineRequest request_;
    bool initial_;
    std::shared_ptr<LineProvider> provider_;
    std::unique_ptr<Line> line_;
};

}  // namespace tg::drivers
