// The floor of the MQTT in -> rule -> MQTT out path with Debian's Paho C++:
// subscribes to bench/in (QoS 1) and, for each input, publishes what
// tidegate publishes for it in scripts/bench/vs-nodered's workload, and
// nothing else: one rule event (a JSON envelope of tidegate's size) on
// tidegate/relay/rules/hot for each change of the condition, and
// {"t": 60} on bench/out when the temperature is above 50. No outbox, no
// rules engine: the message callback (Paho's receive thread, which must
// never block) queues what to publish; one thread publishes it, keeping at
// most kInflight publishes unacknowledged as tidegate's link does (a long
// command queue inside Paho C costs time per command it holds).
//
//   paho_relay HOST PORT INPUTS     exits once INPUTS inputs were relayed
//                                   and every publish was acknowledged
#include <mqtt/async_client.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace {

constexpr int kInflight = 64;
std::atomic<long> g_inputs{0};
std::atomic<long> g_failed{0};

struct Out {
    std::string topic, payload;
    bool retain;
};
std::mutex g_mutex;
std::condition_variable g_cv;
std::deque<Out> g_queue;
int g_inflight = 0;

double temperature(const std::string& payload) {
    const auto at = payload.find("\"temperature\"");
    if (at == std::string::npos) return 0;
    const auto colon = payload.find(':', at);
    if (colon == std::string::npos) return 0;
    return std::strtod(payload.c_str() + colon + 1, nullptr);
}

class Relay final : public virtual mqtt::callback {
  public:
    explicit Relay(mqtt::async_client& c) : c_(c) {}

    void message_arrived(mqtt::const_message_ptr msg) override {
        const bool hot = temperature(msg->get_payload_str()) > 50;
        {
            std::lock_guard lock(g_mutex);
            if (hot != firing_) {
                firing_ = hot;
                ++seq_;
                g_queue.push_back({"tidegate/relay/rules/hot",
                                   std::string(R"({"v":1,"id":"relay:)") + std::to_string(seq_) +
                                       R"(","type":")" + (hot ? "rule_fired" : "rule_cleared") +
                                       R"(","gateway":"relay","source":"rule:hot",)"
                                       R"("ts":"2026-01-01T00:00:00.000Z","seq":)" +
                                       std::to_string(seq_) + R"(,"value":)" +
                                       (hot ? "true" : "false") +
                                       R"(,"severity":"warning","values":{"bench.t":)" +
                                       (hot ? "60" : "40") + "}}",
                                   true});
            }
            if (hot) g_queue.push_back({"bench/out", R"({"t": 60})", false});
            ++g_inputs;
        }
        g_cv.notify_one();
    }

    void delivery_complete(mqtt::delivery_token_ptr) override {
        {
            std::lock_guard lock(g_mutex);
            --g_inflight;
        }
        g_cv.notify_one();
    }

  private:
    mqtt::async_client& c_;
    bool firing_ = false;
    long seq_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: paho_relay HOST PORT INPUTS\n");
        return 2;
    }
    const std::string uri = std::string("tcp://") + argv[1] + ":" + argv[2];
    const long want = std::atol(argv[3]);
    mqtt::async_client client(uri, "paho-relay", mqtt::create_options(MQTTVERSION_3_1_1, 100000));
    Relay relay(client);
    client.set_callback(relay);
    auto opts = mqtt::connect_options_builder().clean_session(true).max_inflight(1000).finalize();
    client.connect(opts)->wait();
    client.subscribe("bench/in", 1)->wait();
    std::printf("ready\n");
    std::fflush(stdout);
    // Publishes until every input was relayed and every publish acknowledged.
    for (;;) {
        std::unique_lock lock(g_mutex);
        g_cv.wait(lock, [&] {
            return (!g_queue.empty() && g_inflight < kInflight) ||
                   (g_inputs.load() >= want && g_queue.empty() && g_inflight == 0);
        });
        if (g_queue.empty()) break;
        Out o = std::move(g_queue.front());
        g_queue.pop_front();
        ++g_inflight;
        lock.unlock();
        try {
            client.publish(o.topic, o.payload.data(), o.payload.size(), 1, o.retain);
        } catch (const mqtt::exception&) {
            ++g_failed;
            std::lock_guard relock(g_mutex);
            --g_inflight;
        }
    }
    client.disconnect()->wait();
    std::printf("relayed %ld inputs, %ld publishes refused\n", g_inputs.load(), g_failed.load());
    return 0;
}
