// MqttLink over a scripted MqttClient: backoff, the in-flight window, the
// memory queue, refusals and losses, on a virtual clock, without a broker
// (the integration tests cover the same paths against a real Mosquitto).
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <stdlib.h>

#include "../core/temp_dir.h"
#include "mqtt_link.h"
#include "mqtt_test_kit.h"

using namespace tg;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

using tg::test::OpenOutbox;
using tg::test::ScriptedClient;
using tg::test::TempDir;

namespace {

struct Harness {
    ScriptedClient* client;
    MqttLink link;
    MonoTime now{};
    std::vector<std::pair<std::uint64_t, std::string>> refused;

    Harness() : Harness(std::make_unique<ScriptedClient>()) {}
    explicit Harness(std::unique_ptr<ScriptedClient> c)
        : client(c.get()), link(Config().mqtt, std::move(c), "p/gw/status") {
        link.on_refused([this](std::uint64_t seq, const std::string& topic, const std::string&) {
            refused.emplace_back(seq, topic);
        });
    }
    void up() {
        client->connected = true;
        link.on_connected();
    }
    void down(const std::string& why = "lost") {
        client->connected = false;
        link.on_connection_lost(why, now);
    }
    void ack_all() {
        const auto sent = client->sent;
        client->sent.clear();
        for (const auto& s : sent)
            link.on_delivered(s.token);
    }
};

outbox::Record event(std::uint64_t seq) {
    outbox::Record r;
    r.seq = seq;
    r.qos = 1;
    r.destinations = {{"p/gw/events/s", false}};
    r.payload = "{\"seq\":" + std::to_string(seq) + "}";
    return r;
}

}  // namespace

TEST_CASE("link: reconnects back off 1 s doubling to 30 s, with jitter", "[link]") {
    Harness h;
    h.link.start(h.now);
    CHECK(h.client->connects == 1);
    std::vector<double> delays;
    for (int i = 0; i < 8; ++i) {
        h.link.on_connect_failed("refused", h.now);
        const auto at = h.link.next_deadline();
        REQUIRE(at);
        delays.push_back(std::chrono::duration<double>(*at - h.now).count());
        h.now = *at;
        h.link.on_timer(h.now);
        CHECK(h.client->connects == i + 2);
    }
    const double nominal[] = {1, 2, 4, 8, 16, 30, 30, 30};
    for (std::size_t i = 0; i < delays.size(); ++i) {
        INFO("attempt " << i);
        CHECK(delays[i] >= nominal[i] * 0.8 - 1e-9);
        CHECK(delays[i] <= nominal[i] * 1.2 + 1e-9);
    }
    // A success resets the backoff.
    h.up();
    h.down();
    const auto at = h.link.next_deadline();
    REQUIRE(at);
    CHECK(*at - h.now <= 1200ms);
}

TEST_CASE("link: a connect that cannot start is a failure with a retry", "[link]") {
    auto c = std::make_unique<ScriptedClient>();
    c->refuse_connect_call = true;
    Harness h(std::move(c));
    h.link.start(h.now);
    CHECK_FALSE(h.link.connected());
    CHECK(h.link.next_deadline());
}

TEST_CASE("link: the birth goes first on every connect, then queued messages", "[link]") {
    Harness h;
    h.link.set_birth("{\"state\":\"online\"}");
    h.link.subscribe("cmd/#", 1);
    h.link.start(h.now);
    h.link.publish({"p/gw/metrics", "m1", 0, false});
    CHECK(h.client->sent.empty());  // not connected yet
    h.up();
    CHECK(h.client->topics() == std::vector<std::string>{"p/gw/status", "p/gw/metrics"});
    CHECK(h.client->sent[0].msg.retain);
    CHECK(h.client->subscriptions == std::vector<std::string>{"cmd/#"});
    h.ack_all();
    CHECK(h.link.settled());
    // After a loss and a reconnect: the birth again, the subscription again.
    h.down();
    h.up();
    CHECK(h.client->topics() == std::vector<std::string>{"p/gw/status"});
    CHECK(h.client->subscriptions.size() == 2);
}

TEST_CASE("link: the memory queue is bounded and drops its oldest", "[link]") {
    Harness h;
    h.link.set_limits(64, 100);
    for (int i = 0; i < 10; ++i)
        h.link.publish({"t/" + std::to_string(i), std::string(20, 'x'), 1, false});
    CHECK(h.link.stats().dropped == 6);  // 4 fit: (3 + 20) bytes each
    h.up();
    CHECK(h.client->topics() == std::vector<std::string>{"t/6", "t/7", "t/8", "t/9"});
}

TEST_CASE("link: a message the broker refuses is given up after five attempts", "[link]") {
    Harness h;
    h.up();
    h.link.publish({"denied/topic", "x", 1, false});
    h.link.publish({"fine/topic", "y", 1, false});
    for (int attempt = 1; attempt <= MqttLink::kMaxAttempts; ++attempt) {
        INFO("attempt " << attempt);
        REQUIRE_FALSE(h.client->sent.empty());
        // The broker refuses the first, accepts the rest.
        const auto sent = h.client->sent;
        h.client->sent.clear();
        for (const auto& s : sent) {
            if (s.msg.topic == "denied/topic") {
                h.link.on_delivery_failed(s.token, "reason 135 (Not authorized)", true, h.now);
            } else {
                h.link.on_delivered(s.token);
            }
        }
    }
    CHECK(h.refused == std::vector<std::pair<std::uint64_t, std::string>>{{0, "denied/topic"}});
    CHECK(h.client->sent.empty());  // not sent a sixth time
    CHECK(h.link.settled());
    CHECK(h.link.stats().refused == 1);
}

TEST_CASE("link: a failure that is not a refusal is retried without limit", "[link]") {
    Harness h;
    h.up();
    h.link.publish({"a", "x", 1, false});
    for (int i = 0; i < 20; ++i) {
        REQUIRE(h.client->sent.size() == 1);
        const auto s = h.client->sent.front();
        h.client->sent.clear();
        h.link.on_delivery_failed(s.token, "timeout", false, h.now);
    }
    CHECK(h.refused.empty());
    CHECK(h.client->sent.size() == 1);
}

TEST_CASE("link: a message in flight at five losses in a row is given up", "[link]") {
    Harness h;
    h.up();
    h.link.publish({"closes/connection", "x", 1, false});
    for (int i = 0; i < MqttLink::kMaxAttempts; ++i) {
        REQUIRE(h.client->sent.size() == 1);
        h.client->sent.clear();
        h.down();
        CHECK(h.link.connected() == false);
        h.up();
    }
    CHECK(h.refused ==
          std::vector<std::pair<std::uint64_t, std::string>>{{0, "closes/connection"}});
    CHECK(h.client->sent.empty());
    // A message that was acknowledged in between starts afresh.
    h.link.publish({"ok", "y", 1, false});
    for (int i = 0; i < MqttLink::kMaxAttempts - 1; ++i) {
        h.client->sent.clear();
        h.down();
        h.up();
    }
    h.ack_all();
    CHECK(h.refused.size() == 1);
}

TEST_CASE("link: events go in seq order with a bounded window in flight", "[link]") {
    OpenOutbox ob;
    Outbox& box = ob.box;
    Harness h;
    h.link.set_outbox(&box);
    h.link.set_limits(4, 1 << 20);
    const std::uint64_t first = box.next_seq();
    for (std::uint64_t i = 0; i < 10; ++i)
        box.append(event(first + i));
    h.up();
    h.link.kick();
    REQUIRE(h.client->sent.size() == 4);
    CHECK(h.client->sent.front().msg.payload == "{\"seq\":" + std::to_string(first) + "}");
    // An ack of the first frees one place in the window.
    const auto first_sent = h.client->sent.front();
    h.client->sent.erase(h.client->sent.begin());
    h.link.on_delivered(first_sent.token);
    REQUIRE(h.client->sent.size() == 4);
    CHECK(h.client->sent.back().msg.payload == "{\"seq\":" + std::to_string(first + 4) + "}");
    CHECK(box.cursor() == first);
    // A loss sends the unacknowledged ones again, from the oldest.
    h.client->sent.clear();
    h.down();
    h.up();
    REQUIRE_FALSE(h.client->sent.empty());
    CHECK(h.client->sent.front().msg.payload == "{\"seq\":" + std::to_string(first + 1) + "}");
}

TEST_CASE("link: an event refused five times is given up and the rest flows", "[link]") {
    OpenOutbox ob;
    Outbox& box = ob.box;
    Harness h;
    h.link.set_outbox(&box);
    const std::uint64_t first = box.next_seq();
    box.append(event(first));
    box.append(event(first + 1));
    h.up();
    h.link.kick();
    std::vector<double> retries;
    for (int attempt = 1; attempt <= MqttLink::kMaxAttempts; ++attempt) {
        INFO("attempt " << attempt);
        REQUIRE_FALSE(h.client->sent.empty());
        const auto sent = h.client->sent;
        h.client->sent.clear();
        for (const auto& s : sent) {
            if (s.msg.payload == "{\"seq\":" + std::to_string(first) + "}") {
                h.link.on_delivery_failed(s.token, "reason 135", true, h.now);
            } else {
                h.link.on_delivered(s.token);  // ignored while the window is rewound
            }
        }
        if (attempt < MqttLink::kMaxAttempts) {
            const auto at = h.link.next_deadline();
            REQUIRE(at);
            retries.push_back(std::chrono::duration<double>(*at - h.now).count());
            h.now = *at;
            h.link.on_timer(h.now);
        }
    }
    CHECK(retries == std::vector<double>{1, 2, 4, 8});
    CHECK(h.refused ==
          std::vector<std::pair<std::uint64_t, std::string>>{{first, "p/gw/events/s"}});
    h.ack_all();
    CHECK(box.cursor() == first + 1);
    CHECK(h.link.settled());
}

TEST_CASE("mqtt link: a list of brokers is tried in order on every connect and reconnect",
          "[mqtt_link]") {
    MqttConfig cfg = Config().mqtt;
    cfg.uris = {"tcp://a:1883", "tcp://b:1883", "tcp://c:1883"};
    cfg.uri = cfg.uris.front();
    auto owned = std::make_unique<ScriptedClient>();
    ScriptedClient* client = owned.get();
    MqttLink link(cfg, std::move(owned), "p/gw/status");
    MonoTime now{};
    link.start(now);
    CHECK(client->connect_uris == std::vector<std::string>{"tcp://a:1883"});
    // a fails: b at once, no backoff in between.
    link.on_connect_failed("refused", now);
    CHECK(client->connect_uris.back() == "tcp://b:1883");
    client->connected = true;
    link.on_connected();
    CHECK(link.broker() == "tcp://b:1883");
    CHECK(link.current_uri() == "tcp://b:1883");
    // Lost: the reconnect starts from the top of the list again.
    client->connected = false;
    link.on_connection_lost("gone", now);
    CHECK(client->connect_uris.size() == 2);  // waits for the backoff first
    const auto due = link.next_deadline();
    REQUIRE(due);
    link.on_timer(*due);
    CHECK(client->connect_uris.back() == "tcp://a:1883");
    // Every broker failing: one round, then the backoff.
    link.on_connect_failed("refused", *due);
    link.on_connect_failed("refused", *due);
    link.on_connect_failed("refused", *due);
    CHECK(client->connect_uris == std::vector<std::string>{"tcp://a:1883", "tcp://b:1883",
                                                           "tcp://a:1883", "tcp://b:1883",
                                                           "tcp://c:1883"});
    CHECK(link.next_deadline() > *due);
}
