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
//   paho_relay HOST PORT INPUTS [MODE]
//       prints "relayed ..." once INPUTS inputs were relayed and every
//       publish was acknowledged, then exits when its stdin closes.
//       MODE "receive": publishes nothing (the cost of taking the inputs in
//       alone); "outputs": publishes the outputs only, no rule events (what
//       Node-RED's flow publishes); "batch": refills the window only once
//       half of it was acknowledged (fewer wake-ups of the publishing
//       thread); "inline": publishes from Paho's own callbacks (its receive
//       thread) instead of a thread of its own.
//   paho_relay HOST PORT RATE pace
//       publishes reading envelopes (QoS 1, alternately to an events/ topic
//       and, retained, to a state/ topic), RATE of them once a second, until
//       its stdin closes: the floor of scripts/bench/edge-fitness.
#include <mqtt/async_client.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
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
bool g_receive_only = false;
bool g_batch = false;
bool g_inline = false;
bool g_outputs_only = false;

struct Out {
    std::string topic, payload;
    bool retain;
};
std::mutex g_mutex;
std::condition_variable g_cv;
std::deque<Out> g_queue;
int g_inflight = 0;
long g_want = 0;

// QoS 1; counted in flight by the caller, which this undoes when refused.
void publish(mqtt::async_client& c, const Out& o) {
    try {
        c.publish(o.topic, o.payload.data(), o.payload.size(), 1, o.retain);
    } catch (const mqtt::exception&) {
        ++g_failed;
        std::lock_guard relock(g_mutex);
        --g_inflight;
    }
}

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
        if (g_receive_only) {
            if (++g_inputs >= g_want) g_cv.notify_one();
            return;
        }
        const bool hot = temperature(msg->get_payload_str()) > 50;
        {
            std::lock_guard lock(g_mutex);
            if (hot != firing_ && !g_outputs_only) {
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
        if (g_inline) {
            publish_inline();
            return;
        }
        g_cv.notify_one();
    }

    // Mode "inline": published from Paho's receive thread, in its callbacks.
    void publish_inline() {
        for (;;) {
            Out o;
            {
                std::lock_guard lock(g_mutex);
                if (g_queue.empty() || g_inflight >= kInflight) break;
                o = std::move(g_queue.front());
                g_queue.pop_front();
                ++g_inflight;
            }
            publish(c_, o);
        }
        g_cv.notify_one();
    }

    void delivery_complete(mqtt::delivery_token_ptr) override {
        bool wake;
        {
            std::lock_guard lock(g_mutex);
            --g_inflight;
            wake = !g_batch || g_inflight <= kInflight / 2;
        }
        if (g_inline) {
            publish_inline();
            return;
        }
        if (wake) g_cv.notify_one();
    }

  private:
    mqtt::async_client& c_;
    bool firing_ = false;
    long seq_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4 && argc != 5) {
        std::fprintf(
            stderr,
            "usage: paho_relay HOST PORT INPUTS|RATE [receive|outputs|batch|inline|pace]\n");
        return 2;
    }
    const std::string mode = argc == 5 ? argv[4] : "";
    g_receive_only = mode == "receive";
    g_batch = mode == "batch";
    g_inline = mode == "inline";
    g_outputs_only = mode == "outputs";
    const bool pace = mode == "pace";
    const std::string uri = std::string("tcp://") + argv[1] + ":" + argv[2];
    const long want = mode == "pace" ? LONG_MAX : std::atol(argv[3]);
    g_want = want;
    mqtt::async_client client(uri, "paho-relay", mqtt::create_options(MQTTVERSION_3_1_1, 100000));
    Relay relay(client);
    client.set_callback(relay);
    auto opts = mqtt::connect_options_builder().clean_session(true).max_inflight(1000).finalize();
    client.connect(opts)->wait();
    client.subscribe("bench/in", 1)->wait();
    std::printf("ready\n");
    std::fflush(stdout);
    if (pace) {
        const long rate = std::max(1L, std::atol(argv[3]));
        // Once a second, all at once: readings of sensors polled at the
        // same interval fall due together, as in tidegate.
        std::thread([rate] {
            auto next = std::chrono::steady_clock::now();
            long seq = 0;
            for (;;) {
                next += std::chrono::seconds(1);
                std::this_thread::sleep_until(next);
                {
                    std::lock_guard lock(g_mutex);
                    for (long i = 0; i < rate; ++i) {
                        ++seq;
                        const std::string n = std::to_string(seq / 2 % 50);
                        const std::string payload =
                            R"({"v":1,"id":"relay:)" + std::to_string(seq) +
                            R"(","type":"reading","gateway":"relay","seq":)" + std::to_string(seq) +
                            R"(,"source":"edge.s)" + n +
                            R"(","ts":"2026-01-01T00:00:00.000Z","value":42.5})";
                        const bool state = seq % 2 == 0;
                        g_queue.push_back({std::string("tidegate/relay/") +
                                               (state ? "state/" : "events/") + "edge/s" + n,
                                           payload, state});
                    }
                }
                g_cv.notify_one();
            }
        }).detach();
    }
    // Publishes until every input was relayed and every publish acknowledged.
    std::deque<Out> batch;
    for (;;) {
        std::unique_lock lock(g_mutex);
        g_cv.wait(lock, [&] {
            const int room = g_batch && g_inflight > kInflight / 2 ? 0 : kInflight - g_inflight;
            return (!g_inline && !g_queue.empty() && room > 0) ||
                   (g_inputs.load() >= want && g_queue.empty() && g_inflight == 0);
        });
        if (g_queue.empty()) break;
        // Everything the window has room for, published in one go.
        while (!g_queue.empty() && g_inflight < kInflight) {
            batch.push_back(std::move(g_queue.front()));
            g_queue.pop_front();
            ++g_inflight;
        }
        lock.unlock();
        for (const Out& o : batch)
            publish(client, o);
        batch.clear();
    }
    std::printf("relayed %ld inputs, %ld publishes refused\n", g_inputs.load(), g_failed.load());
    std::fflush(stdout);
    // Stays until stdin closes, so its figures can be read.
    while (std::fgetc(stdin) != EOF) {
    }
    client.disconnect()->wait();
    return 0;
}
