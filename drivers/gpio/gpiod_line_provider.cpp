// LineProvider on libgpiod v1 (1.6, Debian 12 / Raspberry Pi OS bookworm).
// Not covered by CI: there is no GPIO hardware there (see README.md).
#include <gpiod.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "line_provider.h"

namespace tg::drivers {
namespace {

std::string errno_text() {
    return std::strerror(errno);
}

int bias_flags(Bias b) {
    switch (b) {
        case Bias::AsIs:
            return 0;
        case Bias::Disabled:
            return GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE;
        case Bias::PullUp:
            return GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP;
        case Bias::PullDown:
            return GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN;
    }
    return 0;
}

class GpiodLine final : public Line {
  public:
    GpiodLine(const LineRequest& r) : name_(r.chip + " line " + std::to_string(r.line)) {
        chip_ = ::gpiod_chip_open_lookup(r.chip.c_str());
        if (!chip_) {
            throw std::runtime_error("GPIO chip '" + r.chip + "' not found: " + errno_text() +
                                     " (gpiodetect lists the chips)");
        }
        const unsigned lines = ::gpiod_chip_num_lines(chip_);
        line_ = r.line < lines ? ::gpiod_chip_get_line(chip_, r.line) : nullptr;
        if (!line_) {
            ::gpiod_chip_close(chip_);
            throw std::runtime_error("GPIO chip '" + r.chip + "' has no line " +
                                     std::to_string(r.line) + " (it has " + std::to_string(lines) +
                                     ")");
        }
    }
    ~GpiodLine() override {
        if (requested_) ::gpiod_line_release(line_);
        ::gpiod_chip_close(chip_);
    }
    GpiodLine(const GpiodLine&) = delete;
    GpiodLine& operator=(const GpiodLine&) = delete;

    void request_input(const LineRequest& r, Bias bias) {
        const int flags =
            (r.active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0) | bias_flags(bias);
        if (::gpiod_line_request_both_edges_events_flags(line_, r.consumer.c_str(), flags) < 0) {
            throw request_error();
        }
        requested_ = true;
    }
    void request_output(const LineRequest& r, bool initial) {
        const int flags = r.active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
        if (::gpiod_line_request_output_flags(line_, r.consumer.c_str(), flags, initial ? 1 : 0) <
            0) {
            throw request_error();
        }
        requested_ = true;
    }

    bool get() override {
        const int v = ::gpiod_line_get_value(line_);
        if (v < 0) throw std::runtime_error("cannot read " + name_ + ": " + errno_text());
        return v != 0;
    }
    void set(bool level) override {
        if (::gpiod_line_set_value(line_, level ? 1 : 0) < 0) {
            throw std::runtime_error("cannot set " + name_ + ": " + errno_text());
        }
    }
    std::optional<Edge> wait_edge(std::chrono::milliseconds timeout) override {
        timespec ts{};
        ts.tv_sec = static_cast<time_t>(timeout.count() / 1000);
        ts.tv_nsec = static_cast<long>((timeout.count() % 1000) * 1'000'000);
        const int rc = ::gpiod_line_event_wait(line_, &ts);
        if (rc < 0) {
            if (errno == EINTR) return std::nullopt;
            throw std::runtime_error("waiting for an edge on " + name_ + ": " + errno_text());
        }
        if (rc == 0) return std::nullopt;
        gpiod_line_event ev{};
        if (::gpiod_line_event_read(line_, &ev) < 0) {
            throw std::runtime_error("reading an edge on " + name_ + ": " + errno_text());
        }
        // With both edges requested the kernel reports the logical level
        // (active-low applied) as the edge's direction.
        return Edge{ev.event_type == GPIOD_LINE_EVENT_RISING_EDGE};
    }

  private:
    std::runtime_error request_error() const {
        const int e = errno;
        std::string msg = "cannot request " + name_ + ": " + std::strerror(e);
        if (e == EBUSY) msg += " (in use by another program or kernel driver: see gpioinfo)";
        if (e == EOPNOTSUPP || e == EINVAL) msg += " (bias needs Linux 5.5 or later)";
        return std::runtime_error(msg);
    }

    std::string name_;
    gpiod_chip* chip_ = nullptr;
    gpiod_line* line_ = nullptr;
    bool requested_ = false;
};

class GpiodLineProvider final : public LineProvider {
  public:
    std::unique_ptr<Line> request_input(const LineRequest& r, Bias bias) override {
        auto line = std::make_unique<GpiodLine>(r);
        line->request_input(r, bias);
        return line;
    }
    std::unique_ptr<Line> request_output(const LineRequest& r, bool initial) override {
        auto line = std::make_unique<GpiodLine>(r);
        line->request_output(r, initial);
        return line;
    }
};

std::mutex g_mutex;
std::shared_ptr<LineProvider> g_provider;

}  // namespace

std::shared_ptr<LineProvider> make_gpiod_line_provider() {
    return std::make_shared<GpiodLineProvider>();
}

std::shared_ptr<LineProvider> default_line_provider() {
    std::lock_guard lock(g_mutex);
    if (!g_provider) g_provider = make_gpiod_line_provider();
    return g_provider;
}

void set_default_line_provider(std::shared_ptr<LineProvider> provider) {
    std::lock_guard lock(g_mutex);
    g_provider = std::move(provider);
}

}  // namespace tg::drivers
