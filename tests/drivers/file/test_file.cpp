// The file driver (data-driven cases under cases/) and the file output.
#include <catch2/catch.hpp>
#include <filesystem>

#include "../driver_test_util.h"
#include "drivers/file/file.h"

using namespace tg;
using namespace tg::test;

namespace {

class NoEnv final : public drivers::OutputEnv {
  public:
    void publish(const std::string&, const std::string&, int, bool) override { ++calls; }
    int calls = 0;
};

std::unique_ptr<drivers::Output> make_output(const std::string& options, NoEnv& env) {
    const drivers::OutputInfo* info = drivers::find_output("file");
    REQUIRE(info != nullptr);
    REQUIRE(info->create != nullptr);
    return info->create("led", make_output_options("file", options), env);
}

}  // namespace

TEST_CASE("file: every case under cases/", "[driver:file]") {
    CHECK(run_polled_cases("file") >= 12);
}

TEST_CASE("file: reads the file again on every poll", "[driver:file]") {
    TempDir dir("file");
    write_text(dir.path() / "sys/class/thermal/thermal_zone0/temp", "40000\n");
    drivers::SensorSpec spec =
        make_spec("file", "{path: /sys/class/thermal/thermal_zone0/temp, scale: 0.001}");
    spec.options.set("root", dir.path().string());
    auto d = drivers::find_driver("file")->create(std::span(&spec, 1));
    RecordingSink sink;
    VirtualClock clock(WallTime(std::chrono::seconds(1'800'000'000)));
    d->poll(clock, sink);
    write_text(dir.path() / "sys/class/thermal/thermal_zone0/temp", "41500\n");
    clock.advance(std::chrono::seconds(5));
    d->poll(clock, sink);
    std::filesystem::remove(dir.path() / "sys/class/thermal/thermal_zone0/temp");
    d->poll(clock, sink);
    write_text(dir.path() / "sys/class/thermal/thermal_zone0/temp", "39000\n");
    d->poll(clock, sink);

    const auto r = sink.readings();
    REQUIRE(r.size() == 3);
    CHECK(std::get<double>(r[0].value) == Approx(40.0));
    CHECK(std::get<double>(r[1].value) == Approx(41.5));
    CHECK(std::get<double>(r[2].value) == Approx(39.0));
    // Stamped from the clock the loop passes in.
    CHECK(r[1].ts == WallTime(std::chrono::seconds(1'800'000'005)));
    CHECK(r[1].mono - r[0].mono == std::chrono::seconds(5));
    REQUIRE(sink.bad().size() == 1);
    CHECK(sink.bad()[0].reason == "no_device");
}

TEST_CASE("file: options are checked when the config loads", "[driver:file]") {
    CHECK(config_errors("file", "{path: /sys/x}").empty());
    CHECK_THAT(config_errors("file", "{path: sys/x}"),
               Catch::Contains("option 'path'") && Catch::Contains("not an absolute path"));
    CHECK_THAT(config_errors("file", "{}"), Catch::Contains("missing required option 'path'"));
    CHECK_THAT(config_errors("file", "{path: /x, scale: 2}", "boolean"),
               Catch::Contains("option 'scale'") && Catch::Contains("number sensors only"));
    CHECK_THAT(config_errors("file", "{path: \"/sys/x[0]\"}"), Catch::Contains("wildcards"));
    CHECK_THAT(config_errors("file", "{path: /x, scal: 2}"),
               Catch::Contains("did you mean 'scale'"));
}

TEST_CASE("file output: writes the on/off text exactly, no newline", "[driver:file]") {
    TempDir dir("file-out");
    const std::string path = (dir.path() / "brightness").string();
    NoEnv env;
    auto out = make_output("{path: " + path + ", on: \"255\", off: \"0\"}", env);
    out->start();
    CHECK(std::filesystem::exists(path));  // start checked that it can be written
    CHECK(read_text(path).empty());        // without `initial` nothing is written
    out->set(true);
    CHECK(read_text(path) == "255");
    out->set(false);
    CHECK(read_text(path) == "0");  // the file holds exactly the new text
    out->set(true);
    out->set(true);
    CHECK(read_text(path) == "255");
    write_text(path, "something longer");  // whatever was there before is cut
    out->set(false);
    CHECK(read_text(path) == "0");
    out->stop();
    CHECK(env.calls == 0);
}

TEST_CASE("file output: initial state at start and root", "[driver:file]") {
    TempDir dir("file-out");
    std::filesystem::create_directories(dir.path() / "sys/class/leds/led0");
    write_text(dir.path() / "sys/class/leds/led0/brightness", "1");
    NoEnv env;
    auto out = make_output(
        "{path: /sys/class/leds/led0/brightness, initial: OFF, root: " + dir.path().string() + "}",
        env);
    out->start();
    CHECK(read_text(dir.path() / "sys/class/leds/led0/brightness") == "0");
    out->set(true);
    CHECK(read_text(dir.path() / "sys/class/leds/led0/brightness") == "1");
}

TEST_CASE("file output: a folder that is not there fails at start, clearly", "[driver:file]") {
    TempDir dir("file-out");
    NoEnv env;
    auto out = make_output("{path: " + (dir.path() / "no/such/dir/value").string() + "}", env);
    CHECK_THROWS_WITH(out->start(), Catch::Contains("output 'led'") &&
                                        Catch::Contains("No such file or directory"));
    CHECK_THROWS_WITH(out->set(true), Catch::Contains("cannot open"));
}

TEST_CASE("file output: options are validated by the factory", "[driver:file]") {
    NoEnv env;
    const drivers::OutputInfo* info = drivers::find_output("file");
    auto key_of = [&](const drivers::Options& options) -> std::string {
        try {
            info->create("led", options, env);
        } catch (const drivers::OptionError& e) {
            return e.key();
        }
        return "";
    };
    const std::string valid = "{path: /tmp/x, on: a}";
    CHECK(key_of(make_output_options("file", valid)).empty());
    CHECK(key_of(output_options_with("file", valid, "path", std::string("tmp/x"))) == "path");
    CHECK(key_of(output_options_with("file", valid, "initial", std::string("maybe"))) == "initial");
    CHECK(key_of(output_options_with("file", valid, "off", std::string("a"))) == "off");
    // The config loader refuses the same, at the key.
    CHECK_THAT(output_config_errors("file", "{path: /tmp/x, on: a, off: a}"),
               Catch::Contains("option 'off': 'on' and 'off' must differ"));
}
