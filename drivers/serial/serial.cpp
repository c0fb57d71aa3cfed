#include "serial.h"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "drivers/option_checks.h"

namespace tg::drivers {
namespace {

constexpr std::array<OptionSpec, 4> kOptions{{
    {"device", OptType::String, "", "the tty, e.g. /dev/ttyUSB0 or /dev/serial/by-id/…", true},
    {"baud", OptType::Integer, "9600", "line speed: a standard rate (9600, 115200, …)"},
    {"format", OptType::String, "number", "number | json | kv: what a line holds"},
    {"field", OptType::String, "", "json: a key or a JSON pointer (/a/b); kv: the key"},
}};

struct Rate {
    unsigned baud;
    speed_t speed;
};
constexpr std::array<Rate, 23> kRates{{
    {300, B300},         {600, B600},         {1200, B1200},       {2400, B2400},
    {4800, B4800},       {9600, B9600},       {19200, B19200},     {38400, B38400},
    {57600, B57600},     {115200, B115200},   {230400, B230400},   {460800, B460800},
    {500000, B500000},   {576000, B576000},   {921600, B921600},   {1000000, B1000000},
    {1152000, B1152000}, {1500000, B1500000}, {2000000, B2000000}, {2500000, B2500000},
    {3000000, B3000000}, {3500000, B3500000}, {4000000, B4000000},
}};

std::unique_ptr<Driver> create(std::span<const SensorSpec> sensors) {
    static const RealClock real_clock;
    return std::make_unique<SerialDriver>(sensors, real_clock);
}

std::string share_key(const SensorSpec& s) {
    return s.options.string("device");
}

speed_t speed_of(unsigned baud) {
    for (const Rate& r : kRates) {
        if (r.baud == baud) return r.speed;
    }
    return B0;
}

unsigned checked_baud(const Options& o) {
    const long long b = o.integer("baud");
    for (const Rate& r : kRates) {
        if (static_cast<long long>(r.baud) == b) return r.baud;
    }
    throw OptionError("baud", std::to_string(b) +
                                  " is not a standard rate (e.g. 9600, 19200, 38400, 57600, "
                                  "115200, 230400)");
}

// Raw 8N1, no flow control, no echo or line editing: bytes as the device
// sends them. ENOTTY (a FIFO or socket stands in for the device) is fine.
bool configure(int fd, unsigned baud, std::string& why) {
    termios t{};
    if (::tcgetattr(fd, &t) < 0) {
        if (errno == ENOTTY || errno == EINVAL) return true;
        why = std::strerror(errno);
        return false;
    }
    ::cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cflag &= ~static_cast<tcflag_t>(CRTSCTS | CSTOPB);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    ::cfsetispeed(&t, speed_of(baud));
    ::cfsetospeed(&t, speed_of(baud));
    if (::tcsetattr(fd, TCSANOW, &t) < 0) {
        why = std::strerror(errno);
        return false;
    }
    return true;
}

}  // namespace

const DriverInfo kSerialDriver{"serial",          "line-oriented serial devices (Arduino, meters)",
                               kOptions,          false,
                               ValueType::Number, &create,
                               &share_key};

SerialDriver::SerialDriver(std::span<const SensorSpec> sensors, const Clock& clock)
    : baud_(0), clock_(clock) {
    if (sensors.empty()) throw std::logic_error("serial driver without sensors");
    device_ = sensors.front().options.string("device");
    require_absolute("device", device_);
    baud_ = checked_baud(sensors.front().options);
    for (const SensorSpec& s : sensors) {
        if (s.options.string("device") != device_) {
            throw std::logic_error("serial sensors of one reader name different devices");
        }
        if (checked_baud(s.options) != baud_) {
            throw OptionError("baud", "sensors sharing " + device_ + " must use the same baud (" +
                                          std::to_string(baud_) + " and " +
                                          std::to_string(s.options.integer("baud")) + ")");
        }
        targets_.push_back(Target{
            s.name, FieldParser(s.options.string("format"), s.options.string("field"), s.type)});
    }
}

SerialDriver::~SerialDriver() {
    worker_.stop();
}

void SerialDriver::start(Sink& sink) {
    worker_.start([this, &sink] { run(sink); });
}

void SerialDriver::stop() {
    worker_.stop();
}

void SerialDriver::bad_for_all(Sink& sink, const std::string& reason, const std::string& detail) {
    for (const Target& t : targets_)
        sink.bad_reading(t.sensor, reason, detail);
}

void SerialDriver::run(Sink& sink) {
    while (!worker_.stopping()) {
        std::string why;
        const int fd = ::open(device_.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            why = "cannot open " + device_ + ": " + std::strerror(errno);
        } else if (!configure(fd, baud_, why)) {
            why = "cannot set up " + device_ + ": " + why;
        } else {
            buffer_.clear();
            discarding_ = false;
            if (read_until_failure(fd, sink, why)) {
                ::close(fd);
                return;
            }
        }
        if (fd >= 0) ::close(fd);
        if (worker_.stopping()) return;
        const std::chrono::milliseconds delay = backoff_.next();
        if (auto held = log_limit_.allow("device", clock_.monotonic())) {
            log_warn("serial", why + "; retrying in " + std::to_string(delay.count() / 1000) + "s" +
                                   (*held ? " (" + std::to_string(*held) + " more)" : ""));
        }
        bad_for_all(sink, "no_device", why);
        worker_.sleep_for(delay);
    }
}

bool SerialDriver::read_until_failure(int fd, Sink& sink, std::string& why) {
    char buf[1024];
    for (;;) {
        pollfd fds[2] = {{fd, POLLIN, 0}, {worker_.wake_fd(), POLLIN, 0}};
        const int rc = ::poll(fds, 2, -1);
        if (rc < 0) {
            if (errno == EINTR) continue;
            why = std::string("poll: ") + std::strerror(errno);
            return false;
        }
        if (fds[1].revents != 0 || worker_.stopping()) return true;
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n > 0) {
                // Data, not just a successful open, ends a run of failures:
                // a flapping USB link keeps backing off.
                backoff_.reset();
                feed(buf, static_cast<std::size_t>(n), sink);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
                    why = device_ + " hung up (unplugged?)";
                    return false;
                }
                continue;
            }
            // EOF, or EIO/ENXIO/ENODEV: the device went away (USB unplug).
            why = device_ + ": " + (n == 0 ? std::string("end of file") : std::strerror(errno)) +
                  " (unplugged?)";
            return false;
        }
    }
}

void SerialDriver::feed(const char* data, std::size_t n, Sink& sink) {
    for (std::size_t i = 0; i < n; ++i) {
        const char c = data[i];
        if (c == '\n' || c == '\r') {
            // CR, LF and CRLF all end a line; the empty lines between are skipped.
            if (!discarding_ && !buffer_.empty()) line(buffer_, sink);
            discarding_ = false;
            buffer_.clear();
            continue;
        }
        if (discarding_) continue;
        if (buffer_.size() >= kMaxLine) {
            buffer_.clear();
            discarding_ = true;
            bad_for_all(sink, "parse",
                        "line longer than " + std::to_string(kMaxLine) + " bytes from " + device_ +
                            " dropped (wrong baud, or no line ends?)");
            continue;
        }
        buffer_ += c;
    }
}

void SerialDriver::line(std::string_view text, Sink& sink) {
    if (trim(text).empty()) return;
    const WallTime ts = clock_.wall();
    const MonoTime mono = clock_.monotonic();
    for (const Target& t : targets_) {
        Parsed p = t.parser.parse(text);
        if (p) {
            sink.reading(Reading{t.sensor, std::move(*p.value), ts, mono});
        } else {
            sink.bad_reading(t.sensor, p.reason, p.detail);
        }
    }
}

}  // namespace tg::drivers
