// RuleHost on its own, without the daemon: a real outbox in a temporary
// folder, rules compiled from rule text, a `file` output, readings and
// timers on a virtual clock. The outbox's writes are watched, so a test can
// see what the output file held when each event was appended.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "../drivers/driver_test_util.h"
#include "../rules/engine_harness.h"
#include "mqtt_test_kit.h"
#include "rule_host.h"

using namespace tg;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

using tg::rules::testing::compile_or_fail;
using tg::rules::testing::kStartWall;
using tg::test::OpenOutbox;
using tg::test::ScriptedClient;
using tg::test::TempDir;

namespace {

// The whole content of `path`; "(missing)" when it cannot be read.
std::string file_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return "(missing)";
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// One write of the outbox, and what the output file held at that moment.
struct OutboxWrite {
    std::string bytes;
    std::string output_file;
};

// A rule host as the gateway builds it: gateway "gw" under topic prefix "p",
// one file output `fan` (on "1", off "0", off at start) at <dir>/<fan_path>,
// the rules from `rule_text`. Started like the daemon starts it; stopped
// at the end.
struct Host {
    TempDir dir{"rulehost"};  // data_dir, the rules folder and the output's root
    fs::path fan;             // the output's file
    std::vector<OutboxWrite> writes;
    OpenOutbox ob;
    Config cfg;
    VirtualClock clock{kStartWall};
    EventQueue queue;
    MqttLink link;
    EventPublisher events;
    RuleHost host;
    std::vector<outbox::Record> records;  // taken from the outbox so far, in seq order

    Host(const std::string& rule_text, const std::string& fan_path,
         BreakerSettings breaker = BreakerSettings{})
        : fan(dir.path() / fan_path),
          ob(watched_io()),
          cfg(config(fan_path, breaker)),
          link(cfg.mqtt, std::make_unique<ScriptedClient>(), cfg.topic_base() + "/status"),
          events(cfg, cfg.topic_base(), clock, ob.box, link),
          host(cfg, cfg.topic_base(), clock, queue, link, events, compile_or_fail(rule_text)) {
        host.start(clock.monotonic());
        host.start_watcher_and_outputs();
    }
    ~Host() { host.stop(); }

    // Every outbox write goes through, with a snapshot of the output file.
    OutboxIo watched_io() {
        OutboxIo io;
        io.pwrite = [this](int fd, const void* buf, std::size_t n, off_t offset) -> ssize_t {
            writes.push_back({std::string(static_cast<const char*>(buf), n), file_text(fan)});
            return ::pwrite(fd, buf, n, offset);
        };
        return io;
    }

    Config config(const std::string& fan_path, BreakerSettings breaker) {
        fs::create_directories(fan.parent_path());
        fs::create_directories(dir.path() / "rules.d");
        Config c;
        c.gateway.id = "gw";
        c.gateway.data_dir = dir.path().string();
        c.mqtt.topic_prefix = "p";
        c.rules.paths = {(dir.path() / "rules.d").string()};
        OutputConfig out;
        out.name = "fan";
        out.driver = "file";
        out.options = tg::test::make_output_options(
            "file", "{path: /" + fan_path +
                        ", on: '1', off: '0', initial: off, root: " + dir.path().string() + "}");
        out.breaker = breaker;
        c.outputs.push_back(std::move(out));
        return c;
    }

    // A reading of t.temp now; its own event is appended as the gateway's
    // publish_reading would, where RuleHost::feed asks for it. Returns the
    // seq of that event.
    std::uint64_t feed_temp(double value) {
        Reading r{"t.temp", value, clock.wall(), clock.monotonic()};
        std::uint64_t seq = 0;
        host.feed(r, [&] {
            seq = events.next_seq();
            events.append(outbox::Record{seq,
                                         1,
                                         {{"p/gw/events/t/temp", false}},
                                         "{\"reading\":" + std::to_string(seq) + "}"});
        });
        return seq;
    }

    // Moves the virtual clock one second at a time, running the host's
    // timers as the loop would.
    void run_for(std::chrono::seconds d) {
        for (auto t = 0s; t < d; t += 1s) {
            clock.advance(1s);
            host.on_timer(clock.monotonic(), false);
        }
    }

    // Records appended since the last call are added to `records`.
    void take() {
        outbox::Record r;
        while (ob.box.next_unsent(r))
            records.push_back(r);
    }
    // The payloads of the records taken so far that go to `topic`.
    std::vector<nlohmann::json> on(const std::string& topic) {
        take();
        std::vector<nlohmann::json> out;
        for (const outbox::Record& r : records) {
            if (r.destinations.size() == 1 && r.destinations[0].topic == topic)
                out.push_back(nlohmann::json::parse(r.payload));
        }
        return out;
    }
    // The index in `records` of the first record to `topic`, or -1.
    long index_of(const std::string& topic) {
        take();
        for (std::size_t i = 0; i < records.size(); ++i) {
            if (!records[i].destinations.empty() && records[i].destinations[0].topic == topic)
                return static_cast<long>(i);
        }
        return -1;
    }
    // What the output file held when the record whose bytes contain `marker`
    // was written to the outbox.
    std::string file_when_appended(const std::string& marker) const {
        for (const OutboxWrite& w : writes) {
            if (w.bytes.find(marker) != std::string::npos) return w.output_file;
        }
        return "(never appended)";
    }
};

const char* kHotRule = R"(rules:
  - name: hot
    when: t.temp > 30
    severity: warning
    actions:
      - output: { name: fan, value: on }
    on_clear:
      - output: { name: fan, value: off }
)";

}  // namespace

TEST_CASE("rule host: a threshold rule switches its output before its event is appended",
          "[rule_host]") {
    Host h(kHotRule, "out/fan");
    // The initial state was written at start and reported.
    CHECK(file_text(h.fan) == "0");
    REQUIRE(h.on("p/gw/outputs/fan").size() == 1);
    CHECK(h.on("p/gw/outputs/fan")[0]["value"] == "off");

    h.feed_temp(25);
    CHECK(h.on("p/gw/rules/hot").empty());
    CHECK(file_text(h.fan) == "0");

    h.clock.advance(5s);
    const std::uint64_t own = h.feed_temp(35);
    const auto fired = h.on("p/gw/rules/hot");
    REQUIRE(fired.size() == 1);
    CHECK(fired[0]["type"] == "rule_fired");
    CHECK(fired[0]["seq"] == own + 1);
    CHECK(fired[0]["value"] == true);
    CHECK(fired[0]["rule"] == "hot");
    CHECK(fired[0]["severity"] == "warning");
    CHECK(fired[0]["source"] == "rule:hot");
    CHECK(fired[0]["ts"] == format_rfc3339_ms(kStartWall + 5s));
    const long rule_at = h.index_of("p/gw/rules/hot");
    REQUIRE(rule_at >= 0);
    CHECK(h.records[static_cast<std::size_t>(rule_at)].destinations[0].retain);
    CHECK(file_text(h.fan) == "1");

    // The output switched before anything of this reading was appended: its
    // own event and the rule event already found the file on.
    CHECK(h.file_when_appended("{\"reading\":" + std::to_string(own) + "}") == "1");
    CHECK(h.file_when_appended("\"rule_fired\"") == "1");
    // Events in order: the reading's own, the rule event, then the output's.
    CHECK(h.records[static_cast<std::size_t>(rule_at - 1)].seq == own);
    CHECK(h.records[static_cast<std::size_t>(rule_at - 1)].destinations[0].topic ==
          "p/gw/events/t/temp");
    const auto outputs = h.on("p/gw/outputs/fan");
    REQUIRE(outputs.size() == 2);
    CHECK(outputs[1]["value"] == "on");
    CHECK(outputs[1]["source"] == "fan");
    CHECK(h.index_of("p/gw/outputs/fan") < rule_at);  // the initial one
    CHECK(h.records.back().destinations[0].topic == "p/gw/outputs/fan");

    // Cleared: its event, and the file back off.
    h.clock.advance(5s);
    h.feed_temp(20);
    const auto events = h.on("p/gw/rules/hot");
    REQUIRE(events.size() == 2);
    CHECK(events[1]["type"] == "rule_cleared");
    CHECK(events[1]["value"] == false);
    CHECK(file_text(h.fan) == "0");
    CHECK(h.file_when_appended("\"rule_cleared\"") == "0");
    CHECK(h.events.counters().rules_fired == 1);
    CHECK(h.on("p/gw/deadletter").empty());
}

TEST_CASE("rule host: a timed output switches back after its time on the timers", "[rule_host]") {
    Host h(R"(rules:
  - name: hot
    when: t.temp > 30
    actions:
      - output: { name: fan, value: on, for: 30s }
)",
           "out/fan");
    h.feed_temp(35);
    CHECK(file_text(h.fan) == "1");
    const MonoTime switched = h.clock.monotonic();
    // No rule needs ticks: the switch-back is the next thing due.
    REQUIRE(h.host.next_deadline(false));
    CHECK(*h.host.next_deadline(false) == switched + 30s);

    h.run_for(29s);
    CHECK(file_text(h.fan) == "1");
    REQUIRE(h.on("p/gw/outputs/fan").size() == 2);  // off at start, on

    h.run_for(1s);
    CHECK(file_text(h.fan) == "0");
    const auto outputs = h.on("p/gw/outputs/fan");
    REQUIRE(outputs.size() == 3);
    CHECK(outputs[2]["value"] == "off");
    CHECK(outputs[2]["ts"] == format_rfc3339_ms(kStartWall + 30s));
    CHECK_FALSE(h.host.next_deadline(false));
    // The rule itself still fires (the reading stays above 30): no clear event.
    CHECK(h.on("p/gw/rules/hot").size() == 1);
}

TEST_CASE("rule host: an output that cannot be written gives a dead letter, no output event",
          "[rule_host]") {
    Host h(kHotRule, "relay/fan");
    CHECK(file_text(h.fan) == "0");
    REQUIRE(h.on("p/gw/outputs/fan").size() == 1);
    fs::remove_all(h.fan.parent_path());

    h.feed_temp(35);
    CHECK(file_text(h.fan) == "(missing)");
    CHECK_FALSE(fs::exists(h.fan.parent_path()));
    // The rule event is appended all the same.
    const auto fired = h.on("p/gw/rules/hot");
    REQUIRE(fired.size() == 1);
    CHECK(fired[0]["type"] == "rule_fired");
    const auto dead = h.on("p/gw/deadletter");
    REQUIRE(dead.size() == 1);
    CHECK(dead[0]["type"] == "deadletter");
    CHECK(dead[0]["source"] == "output:fan");
    CHECK(dead[0]["reason"] == "output_failed");
    CHECK_THAT(dead[0]["detail"].get<std::string>(), Catch::Contains("relay/fan"));
    // Only the initial state's output event: the failed switch made none.
    const auto outputs = h.on("p/gw/outputs/fan");
    REQUIRE(outputs.size() == 1);
    CHECK(outputs[0]["value"] == "off");
    CHECK(h.events.counters().deadletter == 1);
}

TEST_CASE("rule host: an output's circuit breaker opens, skips, and closes again once it works",
          "[rule_host][breaker]") {
    Host h(kHotRule, "relay/fan", BreakerSettings{2, 10s});
    REQUIRE(h.on("p/gw/outputs/fan").size() == 1);
    fs::remove_all(h.fan.parent_path());
    const std::string topic = "p/gw/breakers/output/fan";

    // Two failed switches in a row open the breaker.
    h.feed_temp(35);  // fires: on fails
    h.clock.advance(1s);
    h.feed_temp(25);  // clears: off fails
    auto br = h.on(topic);
    REQUIRE(br.size() == 1);
    CHECK(br[0]["type"] == "breaker");
    CHECK(br[0]["value"] == "open");
    CHECK(br[0]["target"] == "output/fan");
    CHECK(br[0]["failures"] == 2);
    CHECK(br[0]["source"] == "breaker:output/fan");
    CHECK_THAT(br[0]["detail"].get<std::string>(), Catch::Contains("relay/fan"));

    // While open, switches are not tried: skipped, counted, dead-lettered.
    h.clock.advance(1s);
    h.feed_temp(35);
    CHECK(h.events.counters().circuit_open == 1);
    bool skipped = false;
    for (const auto& d : h.on("p/gw/deadletter")) {
        if (d["reason"] == "circuit_open") {
            skipped = true;
            CHECK(d["source"] == "output:fan");
            CHECK_THAT(d["detail"].get<std::string>(), Catch::Contains("switching on skipped"));
        }
    }
    CHECK(skipped);
    CHECK(h.on(topic).size() == 1);

    // The device comes back; after open_for the next switch is the trial.
    fs::create_directories(h.fan.parent_path());
    h.clock.advance(10s);
    h.feed_temp(25);
    CHECK(file_text(h.fan) == "0");
    br = h.on(topic);
    REQUIRE(br.size() == 3);
    CHECK(br[1]["value"] == "half_open");
    CHECK(br[2]["value"] == "closed");
    CHECK(br[2]["failures"] == 0);
    CHECK(h.on("p/gw/outputs/fan").back()["value"] == "off");
}

TEST_CASE(
    "rule host: rules.state follows a lone change at once and a flapping rule at most "
    "once per kRuleStateEvery",
    "[rule_host]") {
    Host h(kHotRule, "out/fan");
    const fs::path state = h.dir.path() / "rules.state";
    auto rule_state = [&]() -> std::string {
        try {
            const auto j = nlohmann::json::parse(file_text(state));
            for (const auto& r : j.at("rules"))
                if (r.at("name") == "hot") return r.at("state").get<std::string>();
        } catch (const std::exception&) {
        }
        return "(unreadable)";
    };
    auto becomes = [&](const std::string& want) {
        // The file is written by the writer's own thread: real time passes.
        for (int i = 0; i < 500 && rule_state() != want; ++i)
            usleep(10'000);
        return rule_state();
    };

    // Nothing for a while before it: the change is handed over at once.
    h.clock.advance(1s);
    h.feed_temp(35);
    CHECK(becomes("firing") == "firing");
    CHECK_FALSE(h.host.next_deadline(false).has_value());

    // Flapping at one instant: the clearing waits for kRuleStateEvery.
    const MonoTime t0 = h.clock.monotonic();
    h.feed_temp(25);
    h.feed_temp(35);
    h.feed_temp(25);
    REQUIRE(h.host.next_deadline(false).has_value());
    CHECK(*h.host.next_deadline(false) == t0 + kRuleStateEvery);
    usleep(200'000);
    CHECK(rule_state() == "firing");
    h.host.on_timer(h.clock.monotonic(), false);  // not due yet: nothing handed over
    usleep(100'000);
    CHECK(rule_state() == "firing");

    h.clock.advance(kRuleStateEvery);
    h.host.on_timer(h.clock.monotonic(), false);
    CHECK(becomes("idle") == "idle");
    CHECK_FALSE(h.host.next_deadline(false).has_value());

    // A change undone before it is due is still handed over once, when due;
    // then no timer stays armed.
    h.clock.advance(5ms);
    h.feed_temp(35);
    h.feed_temp(25);
    CHECK(h.host.next_deadline(false).has_value());
    h.clock.advance(kRuleStateEvery);
    h.host.on_timer(h.clock.monotonic(), false);
    CHECK(becomes("idle") == "idle");
    CHECK_FALSE(h.host.next_deadline(false).has_value());

    // The last state reaches the file when the host stops, due or not.
    h.clock.advance(1s);
    h.feed_temp(35);
    h.feed_temp(25);
    h.feed_temp(35);
    h.host.stop();
    CHECK(rule_state() == "firing");
}
