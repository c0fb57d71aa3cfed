// MqttLink: the gateway's one MQTT connection, over an MqttClient (Paho in
// the daemon, a scripted client in unit tests). Owned by the event loop
// thread. Events are sent from the durable outbox in seq order with a bounded
// window of records in flight; a record is acked to the outbox when every one
// of its destinations is acknowledged (QoS 1) or sent (QoS 0). Messages that
// are not events (status, metrics, publish actions) go through a small
// bounded in-memory queue ahead of the outbox. Outcomes of the client's work
// arrive through the EventQueue and are handed in by the loop (on_*).
// Reconnects itself with exponential backoff (1 s doubling to 30 s, with
// jitter). Never blocks the loop on the network.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <functional>
#include <unordered_map>

#include "config.h"
#include "core/clock.h"
#include "event_queue.h"
#include "mqtt_client.h"
#include "outbox.h"
#include "poison_detector.h"

namespace tg {

class MqttLink {
  public:
    struct Stats {
        std::uint64_t published = 0;  // handed to the client (each attempt)
        std::uint64_t acked = 0;      // acknowledged by the broker (QoS 1) or sent (QoS 0)
        std::uint64_t dropped = 0;    // non-event messages pushed out of the memory queue
        std::uint64_t reconnects = 0;
        std::uint64_t refused = 0;  // events given up after the broker refused them
    };
    // An event (seq) or another message (seq 0: status, metrics, a publish
    // action, an mqtt output) the broker kept refusing: given up after
    // kMaxAttempts, so it does not hold the outbox or the link back forever. A refusal is an MQTT 5
    // reason code (e.g. 0x87 for an ACL denial), or under MQTT 3.1.1 the broker closing the
    // connection right after the event (poison_detector.h).
    using RefusedFn =
        std::function<void(std::uint64_t seq, const std::string& topic, const std::string& why)>;
    static constexpr int kMaxAttempts = 5;

    // The birth (set_birth) goes to `status_topic`, retained.
    MqttLink(const MqttConfig& cfg, std::unique_ptr<MqttClient> client, std::string status_topic);
    ~MqttLink();
    MqttLink(const MqttLink&) = delete;
    MqttLink& operator=(const MqttLink&) = delete;

    // The retained status published first on every connect.
    void set_birth(std::string payload) { birth_ = std::move(payload); }
    // Events come from here; nullptr sends only the memory queue.
    void set_outbox(Outbox* outbox) { outbox_ = outbox; }
    void on_refused(RefusedFn fn) { on_refused_ = std::move(fn); }
    // Records of the outbox in flight at once, and the bound of the memory queue.
    void set_limits(std::size_t max_inflight_records, std::size_t max_queued_bytes);
    // Shutdown: send nothing new from the outbox, let what is in flight settle.
    void stop_sending() { draining_ = true; }

    // Starts the first connection attempt.
    void start(MonoTime now);
    // A message that is not an event (no seq): memory queue, bounded.
    void publish(OutMessage m);
    // New records were appended to the outbox.
    void kick() { pump(); }
    // Subscribes now (when connected) and again after every reconnect (clean
    // session). Incoming messages reach the loop as MqttIncoming.
    void subscribe(const std::string& filter, int qos);

    // Messages from Paho's threads, delivered by the loop.
    void on_connected();
    // The broker the current connect attempt (or connection) is for.
    const std::string& current_uri() const { return uris_[uri_index_]; }
    // The broker of the current (or last) connection.
    const std::string& broker() const { return broker_; }
    // "tcp://a:1883, tcp://b:1883": the brokers tried, for messages.
    std::string brokers_text() const;
    void on_connect_failed(const std::string& why, MonoTime now);
    void on_connection_lost(const std::string& why, MonoTime now);
    void on_delivered(std::uintptr_t id);
    void on_delivery_failed(std::uintptr_t id, const std::string& why, bool refused, MonoTime now);

    // When the loop must call on_timer next (a reconnect, a retry), if any.
    std::optional<MonoTime> next_deadline() const;
    void on_timer(MonoTime now);

    bool connected() const { return connected_; }
    // Nothing waits in the memory queue and no message is in flight.
    bool settled() const { return pending_.empty() && inflight_.empty() && record_tokens_.empty(); }
    const Stats& stats() const { return stats_; }

    // Clean shutdown: publishes `payload` retained on the status topic, waits
    // up to `timeout` for it, then disconnects. Blocks; call after the loop.
    void shutdown(const std::string& payload, std::chrono::milliseconds timeout);

  private:
    struct Entry {
        std::uintptr_t id;
        OutMessage msg;
        int refusals = 0;  // the broker refused it (MQTT 5 reason code)
        int losses = 0;    // the connection was lost while it was in flight
    };
    void give_up_message(const Entry& e, const std::string& why);
    void connect(MonoTime now);
    void schedule_reconnect(MonoTime now);
    void pump();
    bool send(std::uintptr_t id, const OutMessage& m);
    void forget_records();
    void record_failed(std::uint64_t seq, const std::string& topic, const std::string& why,
                       MonoTime now);
    void give_up(std::uint64_t seq, const std::string& topic, const std::string& why);
    void send_subscribe(const std::string& filter, int qos);
    void requeue_inflight();
    void enforce_bound();

    MqttConfig cfg_;
    std::unique_ptr<MqttClient> client_;
    std::string status_topic_;
    std::string birth_;
    std::string broker_;
    // The brokers, tried in order on every connect and reconnect (SPEC §13).
    std::vector<std::string> uris_;
    std::size_t uri_index_ = 0;

    bool connected_ = false;
    bool connecting_ = false;
    std::optional<MonoTime> reconnect_at_;
    std::chrono::milliseconds backoff_{1000};
    std::minstd_rand jitter_;
    std::size_t failures_in_row_ = 0;

    // Message tokens travel through Paho as a pointer-sized context: on a
    // 32-bit board they wrap after 2^32 messages, harmless with a window of
    // a few hundred in flight.
    std::uintptr_t next_id_ = 1;
    std::deque<Entry> pending_;
    std::map<std::uintptr_t, Entry> inflight_;
    std::size_t pending_bytes_ = 0;
    std::size_t max_inflight_ = 64;  // records of the outbox
    std::size_t max_queued_bytes_ = 1u << 20;
    Stats stats_;

    Outbox* outbox_ = nullptr;
    RefusedFn on_refused_;
    bool draining_ = false;
    // Message token id -> its record's seq, and seq -> destinations not yet acked.
    struct RecordToken {
        std::uint64_t seq;
        std::string topic;
    };
    std::unordered_map<std::uintptr_t, RecordToken> record_tokens_;
    std::unordered_map<std::uint64_t, std::size_t> record_remaining_;
    // Refusals of the oldest refused record, and when to send it again.
    std::uint64_t refused_seq_ = 0;
    int refused_attempts_ = 0;
    std::optional<MonoTime> retry_at_;
    // Events the broker refuses by closing the connection (MQTT 3.1.1).
    PoisonDetector poison_{kMaxAttempts};

    std::vector<std::pair<std::string, int>> subscriptions_;
};

// MQTT topic filter matching ('+' one level, '#' the rest, including the
// parent level itself; '$' topics only match filters naming them).
bool topic_matches(std::string_view filter, std::string_view topic);

}  // namespace tg
