// GPIO lines behind a small interface, so the gpio driver and output are
// tested with a fake here (no GPIO hardware or gpio-sim on CI machines) and
// run on libgpiod v1 (Raspberry Pi OS bookworm's) on a Pi.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace tg::drivers {

enum class Bias { AsIs, Disabled, PullUp, PullDown };

struct LineRequest {
    std::string chip;  // gpiochip0, /dev/gpiochip0, a label (pinctrl-bcm2711) or a number
    unsigned line = 0;
    bool active_low = false;
    std::string consumer = "tidegate";  // shown by gpioinfo
};

// The logical level after an edge (active_low already applied).
struct Edge {
    bool level;
};

// One requested line. Released when destroyed. Methods throw
// std::runtime_error when the device fails (e.g. it was removed).
class Line {
  public:
    virtual ~Line() = default;
    // The logical level now.
    virtual bool get() = 0;
    // Output lines only.
    virtual void set(bool level) = 0;
    // Input lines only: waits up to `timeout` for an edge; nullopt on timeout.
    virtual std::optional<Edge> wait_edge(std::chrono::milliseconds timeout) = 0;
};

class LineProvider {
  public:
    virtual ~LineProvider() = default;
    // An input with edge events on both edges. Throws std::runtime_error with
    // a clear message (chip not found, line busy, …).
    virtual std::unique_ptr<Line> request_input(const LineRequest& request, Bias bias) = 0;
    // An output driven to `initial` at once. Throws std::runtime_error.
    virtual std::unique_ptr<Line> request_output(const LineRequest& request, bool initial) = 0;
};

// The libgpiod v1 implementation.
std::shared_ptr<LineProvider> make_gpiod_line_provider();

// What the registry's gpio factories use: libgpiod unless replaced. Tests and
// demos without GPIO hardware install a fake here before creating drivers;
// nullptr restores libgpiod.
std::shared_ptr<LineProvider> default_line_provider();
void set_default_line_provider(std::shared_ptr<LineProvider> provider);

}  // namespace tg::drivers
