#include "simulated.h"

#include <array>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace tg::drivers {
namespace {

constexpr std::array<OptionSpec, 8> kOptions{{
    {"profile", OptType::String, "sine", "sine | random_walk | constant | sequence"},
    {"min", OptType::Number, "0", "lowest value (sine, random_walk)"},
    {"max", OptType::Number, "100", "highest value (sine, random_walk)"},
    {"period", OptType::Duration, "60s", "length of one sine wave"},
    {"step", OptType::Number, "1", "largest change per reading (random_walk)"},
    {"value", OptType::Number, "0", "the value (constant)"},
    {"values", OptType::NumberList, "[]", "values cycled through in order (sequence)"},
    {"seed", OptType::Integer, "1", "random seed (random_walk)"},
}};

std::unique_ptr<Driver> create(std::span<const SensorSpec> sensors) {
    if (sensors.size() != 1) throw std::logic_error("simulated sensors are never shared");
    return std::make_unique<SimulatedDriver>(sensors.front());
}

SimulatedDriver::Profile parse_profile(const std::string& s) {
    if (s == "sine") return SimulatedDriver::Profile::Sine;
    if (s == "random_walk") return SimulatedDriver::Profile::RandomWalk;
    if (s == "constant") return SimulatedDriver::Profile::Constant;
    if (s == "sequence") return SimulatedDriver::Profile::Sequence;
    throw OptionError("profile", "unknown profile '" + s +
                                     "' (expected sine, random_walk, constant or sequence)");
}

}  // namespace

const DriverInfo kSimulatedDriver{"simulated",       "generated values for demos and tests",
                                  kOptions,          false,
                                  ValueType::Number, &create};

SimulatedDriver::SimulatedDriver(const SensorSpec& spec)
    : sensor_(spec.name),
      type_(spec.type),
      profile_(parse_profile(spec.options.string("profile"))),
      min_(spec.options.number("min")),
      max_(spec.options.number("max")),
      step_(spec.options.number("step")),
      value_(spec.options.number("value")),
      period_(spec.options.duration("period")),
      values_(spec.options.numbers("values")),
      state_(static_cast<std::uint64_t>(spec.options.integer("seed"))),
      walk_(0) {
    if (type_ == ValueType::String) {
        throw OptionError("profile", "the simulated driver makes numbers or booleans, not strings");
    }
    if ((profile_ == Profile::Sine || profile_ == Profile::RandomWalk) && !(min_ < max_)) {
        throw OptionError("max", "max must be greater than min");
    }
    if (profile_ == Profile::Sine && period_.count() <= 0) {
        throw OptionError("period", "period must be greater than 0");
    }
    if (profile_ == Profile::RandomWalk && step_ <= 0) {
        throw OptionError("step", "step must be greater than 0");
    }
    if (profile_ == Profile::Sequence && values_.empty()) {
        throw OptionError("values", "the sequence profile needs a non-empty 'values' list");
    }
    walk_ = (min_ + max_) / 2;
}

double SimulatedDriver::uniform() {
    // splitmix64: tiny, well mixed, identical on every platform.
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
}

Value SimulatedDriver::next(MonoTime now) {
    if (!started_) {
        started_ = true;
        start_ = now;
    }
    double v = 0;
    switch (profile_) {
        case Profile::Sine: {
            const double t = std::chrono::duration<double>(now - start_).count();
            const double p = std::chrono::duration<double>(period_).count();
            v = (min_ + max_) / 2 + (max_ - min_) / 2 * std::sin(2 * std::numbers::pi * t / p);
            break;
        }
        case Profile::RandomWalk: {
            walk_ += (uniform() * 2 - 1) * step_;
            // Reflect at the bounds. Folding over twice the range is the same
            // as one reflection when that suffices, and also keeps a step
            // wider than the range inside it.
            const double span = max_ - min_;
            double off = std::fmod(walk_ - min_, 2 * span);
            if (off < 0) off += 2 * span;
            walk_ = min_ + (off > span ? 2 * span - off : off);
            v = walk_;
            break;
        }
        case Profile::Constant:
            v = value_;
            break;
        case Profile::Sequence:
            v = values_[index_];
            index_ = (index_ + 1) % values_.size();
            break;
    }
    if (type_ == ValueType::Boolean) return Value(v != 0);
    return Value(v);
}

void SimulatedDriver::poll(const Clock& clock, Sink& sink) {
    const MonoTime mono = clock.monotonic();
    sink.reading(Reading{sensor_, next(mono), clock.wall(), mono});
}

}  // namespace tg::drivers
