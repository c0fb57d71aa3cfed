// The w1 (DS18B20) driver: data-driven cases under cases/, device resolution
// at poll time, and the once-a-minute log of a missing device.
#include <catch2/catch.hpp>
#include <filesystem>

#include "../driver_test_util.h"
#include "drivers/w1/w1.h"

using namespace tg;
using namespace tg::test;

namespace {

const char* kGood = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n";

std::unique_ptr<drivers::Driver> make_w1(const std::string& options, const TempDir& root) {
    drivers::SensorSpec spec = make_spec("w1", options, "number", "tank.temp");
    spec.options.set("root", root.path().string());
    return drivers::find_driver("w1")->create(std::span(&spec, 1));
}

}  // namespace

TEST_CASE("w1: every case under cases/", "[driver:w1]") {
    CHECK(run_polled_cases("w1") >= 11);
}

TEST_CASE("w1: auto is resolved at every poll, so a sensor plugged in later is found",
          "[driver:w1]") {
    TempDir root("w1");
    const auto devices = root.path() / "sys/bus/w1/devices";
    std::filesystem::create_directories(devices / "w1_bus_master1");
    auto d = make_w1("{device: auto}", root);
    RecordingSink sink;
    VirtualClock clock;
    StderrCapture log;
    d->poll(clock, sink);
    REQUIRE(sink.bad().size() == 1);
    CHECK(sink.bad()[0].reason == "no_device");
    CHECK(sink.readings().empty());

    write_text(devices / "28-00000a1b2c3d/w1_slave", kGood);
    clock.advance(std::chrono::seconds(5));
    d->poll(clock, sink);
    REQUIRE(sink.readings().size() == 1);
    CHECK(sink.readings()[0].sensor == "tank.temp");
    CHECK(std::get<double>(sink.readings()[0].value) == Approx(23.125));

    // A second sensor appears: auto no longer knows which one is meant.
    write_text(devices / "28-0316a2799aff/w1_slave", kGood);
    d->poll(clock, sink);
    REQUIRE(sink.bad().size() == 2);
    CHECK(sink.bad()[1].reason == "ambiguous");
    log.finish();
}

TEST_CASE("w1: a missing device is a bad reading at every poll, logged once a minute",
          "[driver:w1]") {
    TempDir root("w1");
    std::filesystem::create_directories(root.path() / "sys/bus/w1/devices/w1_bus_master1");
    auto d = make_w1("{device: 28-00000a1b2c3d}", root);
    RecordingSink sink;
    VirtualClock clock;
    StderrCapture log;
    // Polled every 10 s for two minutes: 13 polls.
    for (int i = 0; i <= 12; ++i) {
        d->poll(clock, sink);
        clock.advance(std::chrono::seconds(10));
    }
    const std::string text = log.finish();
    CHECK(sink.bad().size() == 13);
    for (const BadRecord& b : sink.bad())
        CHECK(b.reason == "no_device");
    INFO(text);
    // At 0 s, 60 s and 120 s; the later ones tell how many were held back.
    CHECK(count_lines_with(text, "WARN w1: tank.temp: 1-Wire sensor 28-00000a1b2c3d not found") ==
          3);
    CHECK(count_lines_with(text, "(5 more)") == 2);
}

TEST_CASE("w1: parsing the w1_slave text", "[driver:w1]") {
    using drivers::W1Driver;
    CHECK(std::get<double>(*W1Driver::parse_w1_slave(kGood).value) == Approx(23.125));
    // No trailing newline, CRLF: still read.
    CHECK(std::get<double>(
              *W1Driver::parse_w1_slave("50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\r\n50 05 t=85000")
                   .value) == Approx(85.0));
    CHECK(W1Driver::parse_w1_slave("ff ff ff ff ff ff ff ff ff : crc=c9 NO\n").reason == "crc");
    CHECK(W1Driver::parse_w1_slave("72 01 : crc=57 YES").reason == "parse");
    CHECK(W1Driver::parse_w1_slave("\n\n").reason == "parse");
}

TEST_CASE("w1: options and the fixed number type are checked at load", "[driver:w1]") {
    CHECK(config_errors("w1", "{}").empty());
    CHECK(config_errors("w1", "{device: 28-00000a1b2c3d}").empty());
    CHECK_THAT(config_errors("w1", "{device: ../28-x}"), Catch::Contains("option 'device'"));
    CHECK_THAT(config_errors("w1", "{device: \"\"}"), Catch::Contains("option 'device'"));
    CHECK_THAT(config_errors("w1", "{}", "boolean"), Catch::Contains("makes number values"));
}
