// The command driver with real processes: /bin/echo, /bin/sh scripts the test
// writes, sleep for timeouts. No shell is involved unless argv names one.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "../driver_test_util.h"
#include "drivers/command/command.h"

using namespace tg;
using namespace tg::test;
using namespace std::chrono_literals;

namespace {

// YAML flow list of strings.
std::string yaml_list(const std::vector<std::string>& items) {
    std::string out = "[";
    for (const std::string& i : items) {
        if (out.size() > 1) out += ", ";
        out += "\"" + i + "\"";
    }
    return out + "]";
}

drivers::SensorSpec command_spec(const std::vector<std::string>& argv, const std::string& more = "",
                                 const std::string& name = "cmd.value",
                                 const std::string& type = "number",
                                 const std::string& interval = "1h") {
    return make_spec("command", "{argv: " + yaml_list(argv) + more + "}", type, name, interval);
}

std::unique_ptr<drivers::CommandDriver> make_command(std::vector<drivers::SensorSpec> specs) {
    static const RealClock clock;
    return std::make_unique<drivers::CommandDriver>(specs, clock);
}

std::string script(const TempDir& dir, const std::string& name, const std::string& body) {
    const auto path = dir.path() / name;
    write_text(path, "#!/bin/sh\n" + body + "\n");
    return path.string();
}

}  // namespace

TEST_CASE("command: stdout of /bin/echo becomes a reading", "[driver:command]") {
    auto d = make_command({command_spec({"/bin/echo", "21.5"})});
    CHECK_FALSE(d->polled());
    RecordingSink sink;
    d->start(sink);
    REQUIRE(sink.wait_readings(1));
    d->stop();
    CHECK(sink.readings()[0].sensor == "cmd.value");
    CHECK(std::get<double>(sink.readings()[0].value) == Approx(21.5));
    CHECK(sink.bad().empty());
}

TEST_CASE("command: the program is found on PATH; arguments are never shell-expanded",
          "[driver:command]") {
    auto d =
        make_command({command_spec({"echo", "$HOME;", "`id`", "*"}, "", "cmd.text", "string")});
    RecordingSink sink;
    d->start(sink);
    REQUIRE(sink.wait_readings(1));
    d->stop();
    CHECK(std::get<std::string>(sink.readings()[0].value) == "$HOME; `id` *");
}

TEST_CASE("command: sensors with the same argv share one run, each with its field",
          "[driver:command]") {
    TempDir dir("command");
    const std::string counter = (dir.path() / "runs").string();
    const std::string s = script(dir, "env.sh",
                                 "echo run >> " + counter +
                                     "\n"
                                     "echo '{\"temp\": 21.5, \"air\": {\"hum\": 40}}'");
    const std::vector<std::string> argv{"/bin/sh", s};
    const auto a = command_spec(argv, ", format: json, field: temp", "env.temp");
    const auto b = command_spec(argv, ", format: json, field: /air/hum", "env.humidity");
    const drivers::DriverInfo* info = drivers::find_driver("command");
    CHECK(info->share_key(a) == info->share_key(b));
    CHECK(info->share_key(a) != info->share_key(command_spec({"/bin/sh", s, "x"})));
    auto d = info->create(std::vector<drivers::SensorSpec>{a, b});
    RecordingSink sink;
    d->start(sink);
    REQUIRE(sink.wait_readings(2));
    d->stop();
    const auto r = sink.readings();
    CHECK(r[0].sensor == "env.temp");
    CHECK(std::get<double>(r[0].value) == Approx(21.5));
    CHECK(r[1].sensor == "env.humidity");
    CHECK(std::get<double>(r[1].value) == Approx(40));
    CHECK(read_text(counter) == "run\n");  // one run for both
}

TEST_CASE("command: runs every interval, from its own thread", "[driver:command]") {
    TempDir dir("command");
    const std::string counter = (dir.path() / "n").string();
    const std::string s = script(dir, "count.sh", "echo x >> " + counter + "\nwc -l < " + counter);
    auto d = make_command({command_spec({"/bin/sh", s}, "", "cmd.value", "number", "200ms")});
    RecordingSink sink;
    const auto t0 = std::chrono::steady_clock::now();
    d->start(sink);
    CHECK(std::chrono::steady_clock::now() - t0 < 100ms);  // start does not wait for a run
    REQUIRE(sink.wait_readings(3));
    d->stop();
    const auto r = sink.readings();
    CHECK(std::get<double>(r[0].value) == Approx(1));
    CHECK(std::get<double>(r[1].value) == Approx(2));
    CHECK(std::get<double>(r[2].value) == Approx(3));
    CHECK(r[1].mono - r[0].mono >= 150ms);
}

TEST_CASE("command: a non-zero exit is a bad reading with stderr's first line",
          "[driver:command]") {
    TempDir dir("command");
    const std::string s = script(dir, "fail.sh",
                                 "echo 12\necho 'sensor not found on bus 1' >&2\n"
                                 "echo 'second line' >&2\nexit 3");
    auto d = make_command({command_spec({"/bin/sh", s})});
    RecordingSink sink;
    d->start(sink);
    REQUIRE(sink.wait_bad(1));
    d->stop();
    CHECK(sink.readings().empty());
    CHECK(sink.bad()[0].reason == "exec_failed");
    CHECK(sink.bad()[0].detail == "/bin/sh exited with status 3: sensor not found on bus 1");
}

TEST_CASE("command: a program that cannot start, or dies by a signal", "[driver:command]") {
    RecordingSink sink;
    auto missing = make_command({command_spec({"/nonexistent/tidegate-probe"})});
    missing->start(sink);
    REQUIRE(sink.wait_bad(1));
    missing->stop();
    CHECK(sink.bad()[0].reason == "exec_failed");
    CHECK(sink.bad()[0].detail ==
          "cannot run /nonexistent/tidegate-probe: No such file or directory");

    auto killed = make_command({command_spec({"/bin/sh", "-c", "kill -KILL $$"})});
    killed->start(sink);
    REQUIRE(sink.wait_bad(2));
    killed->stop();
    CHECK(sink.bad()[1].reason == "exec_failed");
    CHECK_THAT(sink.bad()[1].detail, Catch::Contains("killed by signal 9"));
}

TEST_CASE("command: unparsable output is a parse failure", "[driver:command]") {
    RecordingSink sink;
    auto d = make_command({command_spec({"/bin/echo", "temp is high"})});
    d->start(sink);
    REQUIRE(sink.wait_bad(1));
    d->stop();
    CHECK(sink.bad()[0].reason == "parse");
    CHECK_THAT(sink.bad()[0].detail, Catch::StartsWith("/bin/echo: 'temp is high'"));

    auto big = make_command({command_spec({"/usr/bin/head", "-c", "70000", "/dev/zero"})});
    big->start(sink);
    REQUIRE(sink.wait_bad(2));
    big->stop();
    CHECK(sink.bad()[1].reason == "parse");
    CHECK_THAT(sink.bad()[1].detail, Catch::Contains("more than 64 KiB"));
}

TEST_CASE("command: a timeout kills the whole process group", "[driver:command]") {
    TempDir dir("command");
    const std::string pidfile = (dir.path() / "child.pid").string();
    // The shell starts a child of its own, then waits: both must go.
    const std::string s = script(dir, "hang.sh", "sleep 30 &\necho $! > " + pidfile + "\nwait");
    auto d = make_command({command_spec({"/bin/sh", s}, ", timeout: 300ms")});
    RecordingSink sink;
    const auto t0 = std::chrono::steady_clock::now();
    d->start(sink);
    REQUIRE(sink.wait_bad(1));
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
    d->stop();
    CHECK(sink.bad()[0].reason == "timeout");
    CHECK_THAT(sink.bad()[0].detail, Catch::Contains("did not finish within 300ms"));
    const pid_t child = static_cast<pid_t>(std::stol(read_text(pidfile)));
    // Gone, or at most a zombie waiting for its new parent to reap it.
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
        const std::string stat = read_text("/proc/" + std::to_string(child) + "/stat");
        gone = ::kill(child, 0) != 0 || stat.find(") Z ") != std::string::npos;
        if (!gone) std::this_thread::sleep_for(20ms);
    }
    CHECK(gone);
}

TEST_CASE("command: an exited program is done even if its child holds stdout", "[driver:command]") {
    auto d = make_command({command_spec({"/bin/sh", "-c", "sleep 3 & echo 7"})});
    RecordingSink sink;
    const auto t0 = std::chrono::steady_clock::now();
    d->start(sink);
    REQUIRE(sink.wait_readings(1));
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    d->stop();
    CHECK(std::get<double>(sink.readings()[0].value) == Approx(7));
}

TEST_CASE("command: stop ends a running program at once, reporting nothing", "[driver:command]") {
    auto d = make_command({command_spec({"/bin/sleep", "30"}, ", timeout: 1m")});
    RecordingSink sink;
    d->start(sink);
    std::this_thread::sleep_for(200ms);
    const auto t0 = std::chrono::steady_clock::now();
    d->stop();
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    CHECK(sink.readings().empty());
    CHECK(sink.bad().empty());
}

TEST_CASE("command: run_once captures stdout, stderr and the status", "[driver:command]") {
    auto d =
        make_command({command_spec({"/bin/sh", "-c", "printf 'a\\nb'; printf oops >&2; exit 4"})});
    const auto o = d->run_once();
    CHECK(o.kind == drivers::CommandDriver::Outcome::Kind::Exited);
    CHECK(o.code == 4);
    CHECK(o.out == "a\nb");
    CHECK(o.err == "oops");
}

TEST_CASE("command: options are checked", "[driver:command]") {
    CHECK(config_errors("command",
                        "{argv: [/usr/bin/vcgencmd, measure_temp], format: kv, "
                        "field: temp}")
              .empty());
    CHECK_THAT(config_errors("command", "{argv: []}"), Catch::Contains("option 'argv'"));
    CHECK_THAT(config_errors("command", "{argv: [\"\"]}"), Catch::Contains("option 'argv'"));
    CHECK_THAT(config_errors("command", "{argv: [x], timeout: 0}"),
               Catch::Contains("option 'timeout'"));
    CHECK_THAT(config_errors("command", "{argv: [x], format: kv}"),
               Catch::Contains("format kv needs 'field'"));
    CHECK_THAT(config_errors("command", "{}"), Catch::Contains("missing required option 'argv'"));
}
