#include "gpio.h"

#include <array>
#include <stdexcept>

#include "drivers/option_checks.h"

namespace tg::drivers {
namespace {

// How often a waiting thread looks at its stop flag.
constexpr std::chrono::milliseconds kWaitSlice{100};

constexpr std::array<OptionSpec, 5> kOptions{{
    {"chip", OptType::String, "gpiochip0", "GPIO chip: name, path, label or number"},
    {"line", OptType::Integer, "", "line offset on the chip (the BCM number on a Pi)", true},
    {"bias", OptType::String, "as_is", "pull_up | pull_down | disabled | as_is"},
    {"debounce", OptType::Duration, "50ms", "a change must hold this long to count (0 = off)"},
    {"active_low", OptType::Boolean, "false", "invert: a low line reads true"},
}};

constexpr std::array<OptionSpec, 4> kOutputOptions{{
    {"chip", OptType::String, "gpiochip0", "GPIO chip: name, path, label or number"},
    {"line", OptType::Integer, "", "line offset on the chip", true},
    {"active_low", OptType::Boolean, "false", "invert the line: on drives it low"},
    {"initial", OptType::String, "off", "state at start: on | off"},
}};

std::unique_ptr<Driver> create(std::span<const SensorSpec> sensors) {
    if (sensors.size() != 1) throw std::logic_error("gpio sensors are never shared");
    static const RealClock real_clock;
    return std::make_unique<GpioDriver>(sensors.front(), default_line_provider(), real_clock);
}

std::unique_ptr<Output> create_output(const std::string& name, const Options& options,
                                      OutputEnv& env) {
    (void)env;
    return std::make_unique<GpioOutput>(name, options, default_line_provider());
}

Bias parse_bias(const std::string& s) {
    if (s == "pull_up") return Bias::PullUp;
    if (s == "pull_down") return Bias::PullDown;
    if (s == "disabled") return Bias::Disabled;
    if (s == "as_is") return Bias::AsIs;
    throw OptionError("bias", "expected pull_up, pull_down, disabled or as_is, got '" + s + "'");
}

LineRequest line_request(const Options& o) {
    LineRequest r;
    r.chip = o.string("chip");
    if (r.chip.empty()) throw OptionError("chip", "expected a chip such as gpiochip0");
    r.line = static_cast<unsigned>(integer_in(o, "line", 0, 1023));
    r.active_low = o.boolean("active_low");
    return r;
}

}  // namespace

const DriverInfo kGpioDriver{"gpio",
                             "digital input edges via libgpiod (PIR, door contact, button)",
                             kOptions,
                             true,
                             ValueType::Boolean,
                             &create};
const OutputInfo kGpioOutput{"gpio", "a GPIO line via libgpiod", kOutputOptions, &create_output};

std::optional<bool> Debouncer::edge(MonoTime now, bool level) {
    if (window_.count() <= 0) {
        if (level == reported_) return std::nullopt;
        reported_ = level;
        return level;
    }
    deadline_ = now + window_;
    armed_ = true;
    return std::nullopt;
}

std::optional<bool> Debouncer::settle(bool level) {
    armed_ = false;
    if (level == reported_) return std::nullopt;
    reported_ = level;
    return level;
}

GpioDriver::GpioDriver(const SensorSpec& spec, std::shared_ptr<LineProvider> provider,
                       const Clock& clock)
    : sensor_(spec.name),
      request_(line_request(spec.options)),
      bias_(parse_bias(spec.options.string("bias"))),
      debounce_(spec.options.duration("debounce")),
      provider_(std::move(provider)),
      clock_(clock) {
    if (debounce_.count() < 0) throw OptionError("debounce", "must not be negative");
    if (debounce_ > std::chrono::seconds(10)) {
        throw OptionError("debounce", "at most 10s (a change is reported that much later)");
    }
    request_.consumer = "tidegate";
}

GpioDriver::~GpioDriver() {
    worker_.stop();
}

void GpioDriver::start(Sink& sink) {
    worker_.start([this, &sink] { run(sink); });
}

void GpioDriver::stop() {
    worker_.stop();
}

void GpioDriver::post(Sink& sink, bool level, WallTime ts, MonoTime mono) {
    sink.reading(Reading{sensor_, level, ts, mono});
}

void GpioDriver::run(Sink& sink) {
    Backoff backoff;
    while (!worker_.stopping()) {
        try {
            std::unique_ptr<Line> line = provider_->request_input(request_, bias_);
            backoff.reset();
            watch(*line, sink);
        } catch (const std::exception& e) {
            // The chip or line is missing, busy or gone: tell, and retry.
            if (worker_.stopping()) break;
            const std::chrono::milliseconds delay = backoff.next();
            if (auto held = log_limit_.allow("line", clock_.monotonic())) {
                log_warn("gpio", sensor_ + ": " + e.what() + "; retrying in " +
                                     std::to_string(delay.count() / 1000) + "s" +
                                     (*held ? " (" + std::to_string(*held) + " more)" : ""));
            }
            sink.bad_reading(sensor_, "no_device", e.what());
            worker_.sleep_for(delay);
        }
    }
}

void GpioDriver::watch(Line& line, Sink& sink) {
    Debouncer debouncer(debounce_);
    const bool initial = line.get();
    debouncer.reset(initial);
    post(sink, initial, clock_.wall(), clock_.monotonic());
    // A change is stamped with the time of the edge that started it.
    WallTime burst_wall{};
    MonoTime burst_mono{};
    while (!worker_.stopping()) {
        std::chrono::milliseconds wait = kWaitSlice;
        if (auto d = debouncer.deadline()) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(*d - clock_.monotonic());
            wait = std::clamp(left, std::chrono::milliseconds(0), kWaitSlice);
        }
        const std::optional<Edge> edge = line.wait_edge(wait);
        const MonoTime now = clock_.monotonic();
        if (edge) {
            if (!debouncer.deadline()) {
                burst_wall = clock_.wall();
                burst_mono = now;
            }
            if (auto v = debouncer.edge(now, edge->level)) post(sink, *v, burst_wall, burst_mono);
        }
        if (auto d = debouncer.deadline(); d && now >= *d) {
            if (auto v = debouncer.settle(line.get())) post(sink, *v, burst_wall, burst_mono);
        }
    }
}

GpioOutput::GpioOutput(const std::string& name, const Options& options,
                       std::shared_ptr<LineProvider> provider)
    : name_(name),
      request_(line_request(options)),
      initial_(optional_on_off(options, "initial").value_or(false)),
      provider_(std::move(provider)) {
    request_.consumer = "tidegate";
}

void GpioOutput::start() {
    try {
        line_ = provider_->request_output(request_, initial_);
    } catch (const std::exception& e) {
        throw std::runtime_error("output '" + name_ + "': " + e.what());
    }
}

void GpioOutput::set(bool on) {
    if (!line_) throw std::runtime_error("output '" + name_ + "': not started");
    try {
        line_->set(on);
    } catch (const std::exception& e) {
        throw std::runtime_error("output '" + name_ + "': " + e.what());
    }
}

void GpioOutput::stop() {
    line_.reset();
}

}  // namespace tg::drivers
