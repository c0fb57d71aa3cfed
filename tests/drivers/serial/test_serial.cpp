// The serial driver through real pseudo-terminals: the test holds the master
// side as the "device", the driver opens the slave through a symlink the test
// re-points on replug (as /dev/serial/by-id/… links behave on a Pi).
#include <poll.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "../driver_test_util.h"
#include "drivers/serial/serial.h"

using namespace tg;
using namespace tg::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class Pty {
  public:
    explicit Pty(fs::path link) : link_(std::move(link)) { plug(); }
    ~Pty() { unplug(); }
    Pty(const Pty&) = delete;
    Pty& operator=(const Pty&) = delete;

    // A new pair; the link points at its slave.
    void plug() {
        REQUIRE(::openpty(&master_, &slave_, nullptr, nullptr, nullptr) == 0);
        slave_path_ = ::ttyname(slave_);
        std::error_code ec;
        fs::remove(link_, ec);
        fs::create_symlink(slave_path_, link_);
    }
    // The device goes away: both ends closed, as a USB adapter pulled out.
    void unplug() {
        if (master_ >= 0) ::close(master_);
        if (slave_ >= 0) ::close(slave_);
        master_ = slave_ = -1;
    }
    void write(std::string_view text) {
        while (!text.empty()) {
            const ssize_t n = ::write(master_, text.data(), text.size());
            REQUIRE(n > 0);
            text.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    // Waits until someone else in this process (the driver) holds the slave
    // open and has put the line in raw mode: then written bytes reach it.
    bool wait_driver_ready(std::chrono::milliseconds timeout = 5s) {
        const auto until = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < until) {
            termios t{};
            if (opened_elsewhere() && ::tcgetattr(slave_, &t) == 0 && !(t.c_lflag & ICANON)) {
                return true;
            }
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }
    const fs::path& link() const { return link_; }

  private:
    bool opened_elsewhere() const {
        int count = 0;
        std::error_code ec;
        for (const fs::directory_entry& e : fs::directory_iterator("/proc/self/fd", ec)) {
            std::error_code ec2;
            if (fs::read_symlink(e.path(), ec2) == slave_path_) ++count;
        }
        return count >= 2;  // ours and the driver's
    }

    fs::path link_;
    std::string slave_path_;
    int master_ = -1;
    int slave_ = -1;
};

// A driver for one or more sensors, as the gateway groups them.
std::unique_ptr<drivers::Driver> make_serial(const std::vector<drivers::SensorSpec>& specs) {
    const drivers::DriverInfo* info = drivers::find_driver("serial");
    REQUIRE(info->share_key != nullptr);
    for (const auto& s : specs)
        REQUIRE(info->share_key(s) == info->share_key(specs.front()));
    return info->create(specs);
}

drivers::SensorSpec serial_spec(const Pty& pty, const std::string& name,
                                const std::string& more = "", const std::string& type = "number") {
    return make_spec("serial", "{device: " + pty.link().string() + more + "}", type, name);
}

double number(const Reading& r) {
    return std::get<double>(r.value);
}

}  // namespace

TEST_CASE("serial: number lines, partial lines, CR/LF and blank lines", "[driver:serial]") {
    TempDir dir("serial");
    Pty pty(dir.path() / "ttyACM0");
    auto d = make_serial({serial_spec(pty, "tank.level", ", baud: 115200")});
    CHECK_FALSE(d->polled());
    RecordingSink sink;
    d->start(sink);
    REQUIRE(pty.wait_driver_ready());

    pty.write("21.5\n");
    REQUIRE(sink.wait_readings(1));
    CHECK(number(sink.readings()[0]) == Approx(21.5));
    CHECK(sink.readings()[0].sensor == "tank.level");

    // A line in two pieces is one reading, once its end arrives.
    pty.write("22.");
    std::this_thread::sleep_for(200ms);
    CHECK(sink.readings().size() == 1);
    pty.write("75\r\n\r\n\n23 cm\r");
    REQUIRE(sink.wait_readings(3));
    std::this_thread::sleep_for(100ms);
    d->stop();
    const auto r = sink.readings();
    REQUIRE(r.size() == 3);
    CHECK(number(r[1]) == Approx(22.75));
    CHECK(number(r[2]) == Approx(23));
    CHECK(sink.bad().empty());
}

TEST_CASE("serial: garbage and overlong lines are bad readings; reading goes on",
          "[driver:serial]") {
    TempDir dir("serial");
    Pty pty(dir.path() / "ttyUSB0");
    auto d = make_serial({serial_spec(pty, "meter.power")});
    RecordingSink sink;
    d->start(sink);
    REQUIRE(pty.wait_driver_ready());

    pty.write(std::string("\x01\xfe\x00@@", 5) + "\n");
    REQUIRE(sink.wait_bad(1));
    CHECK(sink.bad()[0].reason == "parse");
    CHECK(sink.bad()[0].sensor == "meter.power");

    // 5000 bytes without a line end: dropped with one bad reading, and the
    // rest of that line (up to its end) is not taken for a reading.
    pty.write(std::string(5000, '7') + "\n24\n");
    REQUIRE(sink.wait_readings(1));
    d->stop();
    const auto bad = sink.bad();
    REQUIRE(bad.size() == 2);
    CHECK(bad[1].reason == "parse");
    CHECK_THAT(bad[1].detail, Catch::Contains("longer than 4096 bytes"));
    REQUIRE(sink.readings().size() == 1);
    CHECK(number(sink.readings()[0]) == Approx(24));
}

TEST_CASE("serial: sensors on one device share a reader, each with its field", "[driver:serial]") {
    TempDir dir("serial");
    Pty pty(dir.path() / "ttyUSB1");
    auto d = make_serial({serial_spec(pty, "room.temp", ", format: kv, field: t"),
                          serial_spec(pty, "room.humidity", ", format: kv, field: h")});
    RecordingSink sink;
    d->start(sink);
    REQUIRE(pty.wait_driver_ready());
    pty.write("t=21.5 h=40\nt:22,h:41\n");
    REQUIRE(sink.wait_readings(4));
    pty.write("t=23\n");  // no h: a reading for t, a bad reading for h
    REQUIRE(sink.wait_readings(5));
    REQUIRE(sink.wait_bad(1));
    d->stop();
    const auto r = sink.readings();
    CHECK(r[0].sensor == "room.temp");
    CHECK(number(r[0]) == Approx(21.5));
    CHECK(r[1].sensor == "room.humidity");
    CHECK(number(r[1]) == Approx(40));
    CHECK(r[0].ts == r[1].ts);  // one line, one time
    CHECK(number(r[2]) == Approx(22));
    CHECK(number(r[3]) == Approx(41));
    CHECK(number(r[4]) == Approx(23));
    CHECK(sink.bad()[0].sensor == "room.humidity");
    CHECK(sink.bad()[0].reason == "parse");
}

TEST_CASE("serial: JSON lines with keys and pointers, and typed sensors", "[driver:serial]") {
    TempDir dir("serial");
    Pty pty(dir.path() / "ttyAMA0");
    auto d = make_serial({serial_spec(pty, "env.temp", ", format: json, field: temp"),
                          serial_spec(pty, "env.pm25", ", format: json, field: /pm/2.5"),
                          serial_spec(pty, "env.fan", ", format: json, field: fan", "boolean")});
    RecordingSink sink;
    d->start(sink);
    REQUIRE(pty.wait_driver_ready());
    pty.write("{\"temp\": 19.5, \"pm\": {\"2.5\": 7}, \"fan\": true}\n");
    REQUIRE(sink.wait_readings(3));
    pty.write("{\"temp\": 19.5, \"pm\": \n");  // broken JSON: parse, for each sensor
    REQUIRE(sink.wait_bad(3));
    d->stop();
    const auto r = sink.readings();
    CHECK(number(r[0]) == Approx(19.5));
    CHECK(number(r[1]) == Approx(7));
    CHECK(std::get<bool>(r[2].value) == true);
    for (const BadRecord& b : sink.bad())
        CHECK(b.reason == "parse");
}

TEST_CASE("serial: unplugged and plugged in again, reading resumes", "[driver:serial]") {
    TempDir dir("serial");
    Pty pty(dir.path() / "ttyUSB2");
    auto d = make_serial({serial_spec(pty, "grid.volts")});
    RecordingSink sink;
    StderrCapture log;
    d->start(sink);
    REQUIRE(pty.wait_driver_ready());
    pty.write("230.1\n");
    REQUIRE(sink.wait_readings(1));

    pty.write("23");  // a partial line lost with the device
    std::this_thread::sleep_for(50ms);
    pty.unplug();
    REQUIRE(sink.wait_bad_reason("no_device"));
    CHECK(sink.bad()[0].sensor == "grid.volts");
    CHECK_THAT(sink.bad()[0].detail, Catch::Contains("unplugged?"));

    pty.plug();
    REQUIRE(pty.wait_driver_ready(10s));
    pty.write("229.8\n");
    REQUIRE(sink.wait_readings(2));
    d->stop();
    const auto r = sink.readings();
    REQUIRE(r.size() == 2);
    CHECK(number(r[1]) == Approx(229.8));
    for (const BadRecord& b : sink.bad())
        CHECK(b.reason == "no_device");
    CHECK_THAT(log.finish(), Catch::Contains("WARN serial:") && Catch::Contains("retrying in 1s"));
}

TEST_CASE("serial: a device missing at start is waited for", "[driver:serial]") {
    TempDir dir("serial");
    const fs::path link = dir.path() / "ttyUSB3";
    const drivers::SensorSpec spec =
        make_spec("serial", "{device: " + link.string() + "}", "number", "late.sensor");
    auto d = make_serial({spec});
    RecordingSink sink;
    StderrCapture log;
    d->start(sink);
    REQUIRE(sink.wait_bad(1));
    CHECK(sink.bad()[0].reason == "no_device");
    CHECK_THAT(sink.bad()[0].detail,
               Catch::Contains("cannot open") && Catch::Contains("No such file or directory"));
    Pty pty(link);
    REQUIRE(pty.wait_driver_ready(10s));
    pty.write("1\n");
    REQUIRE(sink.wait_readings(1));
    const auto t0 = std::chrono::steady_clock::now();
    d->stop();
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);  // stop wakes the reader at once
    log.finish();
}

TEST_CASE("serial: options are checked", "[driver:serial]") {
    CHECK(config_errors("serial", "{device: /dev/ttyUSB0}").empty());
    CHECK(config_errors("serial", "{device: /dev/ttyUSB0, baud: 115200, format: kv, field: t}")
              .empty());
    CHECK_THAT(config_errors("serial", "{device: /dev/ttyUSB0, baud: 12345}"),
               Catch::Contains("option 'baud'") && Catch::Contains("not a standard rate"));
    CHECK_THAT(config_errors("serial", "{device: ttyUSB0}"), Catch::Contains("option 'device'"));
    CHECK_THAT(config_errors("serial", "{device: /dev/ttyUSB0, format: csv}"),
               Catch::Contains("option 'format'"));
    CHECK_THAT(config_errors("serial", "{device: /dev/ttyUSB0, format: kv}"),
               Catch::Contains("format kv needs 'field'"));
    CHECK_THAT(config_errors("serial", "{device: /dev/ttyUSB0, field: t}"),
               Catch::Contains("option 'field'"));

    // Sensors sharing a device must agree on its speed.
    const auto a = make_spec("serial", "{device: /dev/ttyUSB0, baud: 9600}", "number", "a.x");
    const auto b = make_spec("serial", "{device: /dev/ttyUSB0, baud: 115200}", "number", "b.x");
    const drivers::DriverInfo* info = drivers::find_driver("serial");
    CHECK(info->share_key(a) == "/dev/ttyUSB0");
    try {
        info->create(std::vector<drivers::SensorSpec>{a, b});
        FAIL("expected an OptionError");
    } catch (const drivers::OptionError& e) {
        CHECK(e.key() == "baud");
        CHECK_THAT(e.what(), Catch::Contains("same baud"));
    }
}
