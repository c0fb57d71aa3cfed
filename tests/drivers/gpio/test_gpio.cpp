// The gpio input driver and output through the fake line provider (no GPIO
// hardware on CI), the debouncer on its own, and the libgpiod provider's
// error path (which needs no hardware).
#include <catch2/catch.hpp>
#include <thread>

#include "../driver_test_util.h"
#include "drivers/gpio/gpio.h"
#include "fake_line_provider.h"

using namespace tg;
using namespace tg::test;
using namespace std::chrono_literals;
using drivers::Debouncer;

namespace {

std::unique_ptr<drivers::GpioDriver> make_input(const std::string& options,
                                                std::shared_ptr<FakeLineProvider> fake,
                                                const Clock& clock) {
    const drivers::SensorSpec spec = make_spec("gpio", options, "boolean", "door.open");
    return std::make_unique<drivers::GpioDriver>(spec, std::move(fake), clock);
}

std::vector<bool> levels(const RecordingSink& sink) {
    std::vector<bool> out;
    for (const Reading& r : sink.readings())
        out.push_back(std::get<bool>(r.value));
    return out;
}

class NoEnv final : public drivers::OutputEnv {
  public:
    void publish(const std::string&, const std::string&, int, bool) override {}
};

}  // namespace

TEST_CASE("gpio debouncer: bounces within the window collapse to one change", "[driver:gpio]") {
    const MonoTime t0{};
    Debouncer d(50ms);
    d.reset(false);
    CHECK_FALSE(d.deadline());
    CHECK_FALSE(d.edge(t0, true));
    CHECK(d.deadline() == t0 + 50ms);
    CHECK_FALSE(d.edge(t0 + 10ms, false));  // each edge restarts the quiet period
    CHECK_FALSE(d.edge(t0 + 20ms, true));
    CHECK(d.deadline() == t0 + 70ms);
    CHECK(d.settle(true) == std::optional<bool>(true));
    CHECK_FALSE(d.deadline());
    // A glitch that returns to the reported level reports nothing.
    CHECK_FALSE(d.edge(t0 + 1s, false));
    CHECK_FALSE(d.edge(t0 + 1s + 2ms, true));
    CHECK_FALSE(d.settle(true));
    // The release.
    CHECK_FALSE(d.edge(t0 + 2s, false));
    CHECK(d.settle(false) == std::optional<bool>(false));
}

TEST_CASE("gpio debouncer: without a window every change is reported at once", "[driver:gpio]") {
    Debouncer d(0ms);
    d.reset(true);
    CHECK_FALSE(d.edge(MonoTime{}, true));  // no change
    CHECK(d.edge(MonoTime{}, false) == std::optional<bool>(false));
    CHECK(d.edge(MonoTime{}, true) == std::optional<bool>(true));
    CHECK_FALSE(d.deadline());
}

TEST_CASE("gpio: the level at start, then one reading per debounced change", "[driver:gpio]") {
    auto fake = std::make_shared<FakeLineProvider>();
    fake->set_level("gpiochip0", 17, false);
    VirtualClock clock(WallTime(std::chrono::seconds(1'800'000'000)));
    auto d = make_input("{line: 17, debounce: 50ms}", fake, clock);
    CHECK_FALSE(d->polled());
    RecordingSink sink;
    d->start(sink);
    REQUIRE(sink.wait_readings(1));
    CHECK(levels(sink) == std::vector<bool>{false});
    CHECK(sink.readings()[0].sensor == "door.open");

    // A bouncing press: five edges at once, ending high.
    clock.advance(1s);
    fake->push_edges("gpiochip0", 17, {true, false, true, false, true});
    REQUIRE(fake->wait_drained("gpiochip0", 17));
    std::this_thread::sleep_for(250ms);  // the window has not passed on the driver's clock
    CHECK(sink.readings().size() == 1);
    clock.advance(60ms);
    REQUIRE(sink.wait_readings(2));
    // The bouncing release, ending low.
    clock.advance(5s);
    fake->push_edges("gpiochip0", 17, {false, true, false});
    REQUIRE(fake->wait_drained("gpiochip0", 17));
    clock.advance(60ms);
    REQUIRE(sink.wait_readings(3));
    // A glitch back to the same level reports nothing.
    clock.advance(5s);
    fake->push_edges("gpiochip0", 17, {true, false});
    REQUIRE(fake->wait_drained("gpiochip0", 17));
    clock.advance(60ms);
    std::this_thread::sleep_for(250ms);
    d->stop();

    CHECK(levels(sink) == std::vector<bool>{false, true, false});
    const auto r = sink.readings();
    // Stamped with the time the change began (the first edge of the burst).
    CHECK(r[1].ts == WallTime(std::chrono::seconds(1'800'000'001)));
    CHECK(r[2].mono - r[1].mono == 5s + 60ms);
    CHECK(sink.bad().empty());
}

TEST_CASE("gpio: debounce 0 reports every change of level", "[driver:gpio]") {
    auto fake = std::make_shared<FakeLineProvider>();
    fake->set_level("gpiochip0", 4, true);
    RealClock clock;
    auto d = make_input("{line: 4, debounce: 0}", fake, clock);
    RecordingSink sink;
    d->start(sink);
    REQUIRE(sink.wait_readings(1));
    fake->push_edges("gpiochip0", 4, {true, false, false, true});
    REQUIRE(sink.wait_readings(3));
    REQUIRE(fake->wait_drained("gpiochip0", 4));
    d->stop();
    CHECK(levels(sink) == std::vector<bool>{true, false, true});
}

TEST_CASE("gpio: chip, line, bias and active_low reach the line request", "[driver:gpio]") {
    auto fake = std::make_shared<FakeLineProvider>(std::set<std::string>{"pinctrl-bcm2711"});
    RealClock clock;
    auto d = make_input("{chip: pinctrl-bcm2711, line: 27, bias: pull_up, active_low: true}", fake,
                        clock);
    RecordingSink sink;
    d->start(sink);
    REQUIRE(sink.wait_readings(1));
    const auto s = fake->state("pinctrl-bcm2711", 27);
    CHECK(s.requested);
    CHECK_FALSE(s.is_output);
    CHECK(s.request.line == 27);
    CHECK(s.request.active_low);
    CHECK(s.request.consumer == "tidegate");
    CHECK(s.bias == drivers::Bias::PullUp);
    d->stop();
    CHECK(fake->released() == 1);  // stop releases the line
    d->stop();                     // and stopping twice is fine
}

TEST_CASE("gpio: a missing chip is retried with backoff; a vanished one too", "[driver:gpio]") {
    auto fake = std::make_shared<FakeLineProvider>(std::set<std::string>{});
    fake->set_level("gpiochip0", 5, true);
    RealClock clock;
    auto d = make_input("{line: 5}", fake, clock);
    RecordingSink sink;
    StderrCapture log;
    d->start(sink);
    REQUIRE(sink.wait_bad(1));
    CHECK(sink.bad()[0].reason == "no_device");
    CHECK_THAT(sink.bad()[0].detail, Catch::Contains("gpiochip0"));
    CHECK(sink.readings().empty());
    // Plugged in: found at the next attempt (1 s later), level read at once.
    fake->plug("gpiochip0");
    REQUIRE(sink.wait_readings(1, 3s));
    CHECK(levels(sink) == std::vector<bool>{true});
    // Gone while watched: a bad reading, then back after the retry.
    const std::size_t bad_before = sink.bad().size();
    fake->unplug("gpiochip0");
    REQUIRE(sink.wait_bad(bad_before + 1));
    fake->set_level("gpiochip0", 5, false);
    fake->plug("gpiochip0");
    REQUIRE(sink.wait_readings(2, 3s));
    d->stop();
    CHECK(levels(sink) == std::vector<bool>{true, false});
    CHECK_THAT(log.finish(), Catch::Contains("WARN gpio: door.open:"));
}

TEST_CASE("gpio: stop ends the thread promptly, and no reading follows it", "[driver:gpio]") {
    auto fake = std::make_shared<FakeLineProvider>();
    RealClock clock;
    auto d = make_input("{line: 6, debounce: 0}", fake, clock);
    RecordingSink sink;
    d->start(sink);
    REQUIRE(sink.wait_readings(1));
    const auto t0 = std::chrono::steady_clock::now();
    d->stop();
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    fake->push_edges("gpiochip0", 6, {true});
    std::this_thread::sleep_for(150ms);
    CHECK(sink.readings().size() == 1);
    // Never started: destroying is fine.
    auto idle = make_input("{line: 7}", fake, clock);
    idle.reset();
}

TEST_CASE("gpio: the registry's factory uses the installed line provider", "[driver:gpio]") {
    auto fake = std::make_shared<FakeLineProvider>();
    fake->set_level("gpiochip0", 22, true);
    drivers::set_default_line_provider(fake);
    const drivers::SensorSpec spec = make_spec("gpio", "{line: 22}", "boolean");
    auto d = drivers::find_driver("gpio")->create(std::span(&spec, 1));
    RecordingSink sink;
    d->start(sink);
    REQUIRE(sink.wait_readings(1));
    d->stop();
    drivers::set_default_line_provider(nullptr);
    CHECK(levels(sink) == std::vector<bool>{true});
    CHECK(fake->state("gpiochip0", 22).requests == 1);
}

TEST_CASE("gpio: options are checked at load", "[driver:gpio]") {
    CHECK(config_errors("gpio", "{line: 17}", "boolean").empty());
    CHECK(config_errors("gpio", "{line: 17, bias: pull_down, debounce: 20ms}", "boolean").empty());
    CHECK_THAT(config_errors("gpio", "{line: 17, bias: up}", "boolean"),
               Catch::Contains("option 'bias'") && Catch::Contains("pull_up"));
    CHECK_THAT(config_errors("gpio", "{line: -1}", "boolean"), Catch::Contains("option 'line'"));
    CHECK_THAT(config_errors("gpio", "{line: 17, debounce: 1m}", "boolean"),
               Catch::Contains("option 'debounce'"));
    CHECK_THAT(config_errors("gpio", "{}", "boolean"),
               Catch::Contains("missing required option 'line'"));
    CHECK_THAT(config_errors("gpio", "{line: 17}", "number"),
               Catch::Contains("makes boolean values"));
}

TEST_CASE("gpio output: initial level at start, then each switch", "[driver:gpio]") {
    auto fake = std::make_shared<FakeLineProvider>();
    drivers::GpioOutput out("fan", make_output_options("gpio", "{line: 17, initial: \"on\"}"),
                            fake);
    CHECK_THROWS_WITH(out.set(true), Catch::Contains("not started"));
    out.start();
    auto s = fake->state("gpiochip0", 17);
    CHECK(s.is_output);
    CHECK_FALSE(s.request.active_low);
    CHECK(s.written == std::vector<bool>{true});
    out.set(false);
    out.set(true);
    CHECK(fake->state("gpiochip0", 17).written == std::vector<bool>{true, false, true});
    out.stop();
    CHECK_FALSE(fake->state("gpiochip0", 17).requested);
}

TEST_CASE("gpio output: active_low, default off, and a missing chip", "[driver:gpio]") {
    auto fake = std::make_shared<FakeLineProvider>();
    drivers::set_default_line_provider(fake);
    NoEnv env;
    auto out = drivers::find_output("gpio")->create(
        "relay", make_output_options("gpio", "{line: 23, active_low: true}"), env);
    out->start();
    CHECK(fake->state("gpiochip0", 23).request.active_low);
    CHECK(fake->state("gpiochip0", 23).written == std::vector<bool>{false});
    out->set(true);
    CHECK(fake->state("gpiochip0", 23).level);
    auto missing = drivers::find_output("gpio")->create(
        "pump", make_output_options("gpio", "{chip: gpiochip9, line: 1}"), env);
    CHECK_THROWS_WITH(missing->start(),
                      Catch::Contains("output 'pump'") && Catch::Contains("gpiochip9"));
    drivers::set_default_line_provider(nullptr);
    auto key_of = [&](const drivers::Options& options) -> std::string {
        try {
            drivers::find_output("gpio")->create("x", options, env);
        } catch (const drivers::OptionError& e) {
            return e.key();
        }
        return "";
    };
    CHECK(key_of(output_options_with("gpio", "{line: 2}", "line", 2000LL)) == "line");
    CHECK(key_of(output_options_with("gpio", "{line: 2}", "chip", std::string())) == "chip");
    // The config loader refuses it first; the factory checks it on its own too.
    CHECK_THAT(output_config_errors("gpio", "{line: 2, initial: half}"),
               Catch::Contains("option 'initial'"));
    drivers::Options half = make_output_options("gpio", "{line: 2}");
    half.set("initial", std::string("half"));
    CHECK(key_of(half) == "initial");
}

TEST_CASE("gpio: libgpiod says clearly when a chip does not exist", "[driver:gpio]") {
    auto provider = drivers::make_gpiod_line_provider();
    drivers::LineRequest r;
    r.chip = "tidegate-no-such-chip";
    r.line = 3;
    CHECK_THROWS_WITH(provider->request_input(r, drivers::Bias::PullUp),
                      Catch::Contains("GPIO chip 'tidegate-no-such-chip' not found"));
    CHECK_THROWS_WITH(provider->request_output(r, false),
                      Catch::Contains("GPIO chip 'tidegate-no-such-chip' not found"));
}
