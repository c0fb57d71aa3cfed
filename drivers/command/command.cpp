#include "command.h"

#include <array>
#include <cstring>
#include <stdexcept>

namespace tg::drivers {
namespace {

constexpr std::size_t kMaxStderr = 4096;

constexpr std::array<OptionSpec, 4> kOptions{{
    {"argv", OptType::StringList, "",
     "program and arguments, e.g. [vcgencmd, measure_temp]; no shell", true},
    {"format", OptType::String, "number", "number | json | kv: what the output holds"},
    {"field", OptType::String, "", "json: a key or a JSON pointer (/a/b); kv: the key"},
    {"timeout", OptType::Duration, "10s", "longest run; then the process group is killed"},
}};

std::unique_ptr<Driver> create(std::span<const SensorSpec> sensors) {
    static const RealClock real_clock;
    return std::make_unique<CommandDriver>(sensors, real_clock);
}

std::string share_key(const SensorSpec& s) {
    std::string key;
    for (const std::string& a : s.options.strings("argv")) {
        key += a;
        key += '\0';
    }
    return key;
}

}  // namespace

const DriverInfo kCommandDriver{"command",         "stdout of a program run every interval",
                                kOptions,          false,
                                ValueType::Number, &create,
                                &share_key};

CommandDriver::CommandDriver(std::span<const SensorSpec> sensors, const Clock& clock)
    : interval_(0), timeout_(0), clock_(clock) {
    if (sensors.empty()) throw std::logic_error("command driver without sensors");
    argv_ = sensors.front().options.strings("argv");
    if (argv_.empty() || argv_.front().empty()) {
        throw OptionError("argv",
                          "expected the program and its arguments, e.g. [/usr/bin/vcgencmd, "
                          "measure_temp]");
    }
    interval_ = sensors.front().interval;
    for (const SensorSpec& s : sensors) {
        if (s.options.strings("argv") != argv_) {
            throw std::logic_error("command sensors of one reader have different argv");
        }
        const std::chrono::milliseconds t = s.options.duration("timeout");
        if (t.count() <= 0) throw OptionError("timeout", "must be greater than 0");
        // Sharing one run, the sensors get the most patient timeout.
        timeout_ = std::max(timeout_, t);
        interval_ = std::min(interval_, s.interval);
        targets_.push_back(Target{
            s.name, FieldParser(s.options.string("format"), s.options.string("field"), s.type)});
    }
    if (interval_.count() <= 0) throw std::logic_error("command interval must be positive");
}

CommandDriver::~CommandDriver() {
    worker_.stop();
}

void CommandDriver::start(Sink& sink) {
    worker_.start([this, &sink] { run(sink); });
}

void CommandDriver::stop() {
    worker_.stop();
}

void CommandDriver::run(Sink& sink) {
    // The first run at start, then one per interval; a run longer than the
    // interval delays the next instead of piling up.
    auto next = std::chrono::steady_clock::now();
    while (!worker_.stopping()) {
        const Outcome o = run_once();
        if (o.kind == Outcome::Kind::Stopped) return;
        report(o, sink);
        next += interval_;
        const auto now = std::chrono::steady_clock::now();
        if (next < now) next = now + interval_;
        if (!worker_.sleep_for(next - now)) return;
    }
}

CommandDriver::Outcome CommandDriver::run_once() {
    return run_process(argv_, timeout_, worker_.wake_fd(), kMaxOutput, kMaxStderr);
}

void CommandDriver::bad_for_all(Sink& sink, const std::string& reason, const std::string& detail) {
    for (const Target& t : targets_)
        sink.bad_reading(t.sensor, reason, detail);
}

void CommandDriver::report(const Outcome& o, Sink& sink) {
    const std::string& prog = argv_.front();
    switch (o.kind) {
        case Outcome::Kind::Stopped:
            return;
        case Outcome::Kind::SpawnFailed:
            bad_for_all(sink, "exec_failed", "cannot run " + prog + ": " + std::strerror(o.code));
            return;
        case Outcome::Kind::Timeout:
            bad_for_all(sink, "timeout",
                        prog + " did not finish within " + std::to_string(timeout_.count()) +
                            "ms; its process group was killed");
            return;
        case Outcome::Kind::Signaled:
            bad_for_all(sink, "exec_failed",
                        prog + " was killed by signal " + std::to_string(o.code) + " (" +
                            ::strsignal(o.code) + ")");
            return;
        case Outcome::Kind::Exited:
            break;
    }
    if (o.code != 0) {
        const std::string why = first_line(o.err);
        bad_for_all(sink, "exec_failed",
                    prog + " exited with status " + std::to_string(o.code) +
                        (why.empty() ? std::string() : ": " + why));
        return;
    }
    if (o.out_truncated) {
        bad_for_all(sink, "parse",
                    prog + " printed more than " + std::to_string(kMaxOutput / 1024) + " KiB");
        return;
    }
    const WallTime ts = clock_.wall();
    const MonoTime mono = clock_.monotonic();
    for (const Target& t : targets_) {
        Parsed p = t.parser.parse(o.out);
        if (p) {
            sink.reading(Reading{t.sensor, std::move(*p.value), ts, mono});
        } else {
            sink.bad_reading(t.sensor, p.reason, prog + ": " + p.detail);
        }
    }
}

}  // namespace tg::drivers
