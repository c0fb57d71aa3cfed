// The iio driver: data-driven cases under cases/ (processed and raw channels,
// unit conversions, device lookup by name and number), option checks.
#include <catch2/catch.hpp>

#include "../driver_test_util.h"
#include "drivers/iio/iio.h"

using namespace tg;
using namespace tg::test;

TEST_CASE("iio: every case under cases/", "[driver:iio]") {
    CHECK(run_polled_cases("iio") >= 16);
}

TEST_CASE("iio: IIO ABI units become user units", "[driver:iio]") {
    using drivers::IioDriver;
    CHECK(IioDriver::unit_factor("temp") == 0.001);
    CHECK(IioDriver::unit_factor("temp_object") == 0.001);
    CHECK(IioDriver::unit_factor("humidityrelative") == 0.001);
    CHECK(IioDriver::unit_factor("pressure") == 10.0);
    CHECK(IioDriver::unit_factor("voltage0") == 0.001);
    CHECK(IioDriver::unit_factor("voltage0-voltage1") == 0.001);
    CHECK(IioDriver::unit_factor("current1") == 0.001);
    CHECK(IioDriver::unit_factor("power0") == 0.001);
    CHECK(IioDriver::unit_factor("illuminance") == 1.0);
    CHECK(IioDriver::unit_factor("intensity_uv") == 1.0);
}

TEST_CASE("iio: the device is looked up at every poll", "[driver:iio]") {
    TempDir root("iio");
    drivers::SensorSpec spec = make_spec("iio", "{device: bme280, channel: temp}");
    spec.options.set("root", root.path().string());
    auto d = drivers::find_driver("iio")->create(std::span(&spec, 1));
    RecordingSink sink;
    VirtualClock clock;
    d->poll(clock, sink);
    REQUIRE(sink.bad().size() == 1);
    CHECK(sink.bad()[0].reason == "no_device");
    CHECK_THAT(sink.bad()[0].detail, Catch::Contains("present: none"));
    // The overlay loads after boot, under another number than last time.
    const auto dev = root.path() / "sys/bus/iio/devices/iio:device3";
    write_text(dev / "name", "bme280\n");
    write_text(dev / "in_temp_input", "19870\n");
    d->poll(clock, sink);
    REQUIRE(sink.readings().size() == 1);
    CHECK(std::get<double>(sink.readings()[0].value) == Approx(19.87));
}

TEST_CASE("iio: options are checked at load", "[driver:iio]") {
    CHECK(config_errors("iio", "{device: bme280, channel: temp}").empty());
    CHECK(config_errors("iio", "{device: \"iio:device0\", channel: voltage0-voltage1}").empty());
    CHECK_THAT(config_errors("iio", "{device: bme280}"),
               Catch::Contains("missing required option 'channel'"));
    CHECK_THAT(config_errors("iio", "{device: bme280, channel: in_temp_input}"),
               Catch::Contains("option 'channel'") && Catch::Contains("without in_"));
    CHECK_THAT(config_errors("iio", "{device: bme280, channel: Temp}"),
               Catch::Contains("option 'channel'"));
    CHECK_THAT(config_errors("iio", "{device: a/b, channel: temp}"),
               Catch::Contains("option 'device'"));
    CHECK_THAT(config_errors("iio", "{device: bme280, channel: temp}", "string"),
               Catch::Contains("makes number values"));
}
