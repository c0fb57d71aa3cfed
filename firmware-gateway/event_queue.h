// EventQueue: the one queue the event loop drains. Drivers (from their own
// threads) and Paho callbacks post into it; only the loop thread pops.
// Readings are bounded: a producer faster than the loop waits (backpressure
// on the driver, never on the loop). Control messages (connection changes,
// acks, signals) are never refused, so a Paho callback never blocks.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <variant>

#include "core/clock.h"
#include "core/reading.h"

namespace tg {

struct BadReading {
    std::string sensor;
    std::string reason;  // machine word: bad_reading, parse, crc, …
    std::string detail;
};
// A message from the broker on one of our subscriptions.
struct MqttIncoming {
    std::string topic;
    std::string payload;
    bool retained = false;
};
struct MqttConnected {};
struct MqttConnectFailed {
    std::string why;
};
struct MqttConnectionLost {
    std::string why;
};
// A publish the broker acknowledged (QoS 1) or that left the client (QoS 0);
// `token` identifies the in-flight entry.
struct MqttDelivered {
    std::uintptr_t token;
};
struct MqttDeliveryFailed {
    std::uintptr_t token;
    std::string why;
    bool refused = false;  // the broker said no (MQTT 5 reason code >= 0x80)
};
// A rule's exec action ended (from an exec runner thread).
struct ExecFinished {
    std::string rule;
    bool ok = true;
    std::string detail;  // what happened, for logs and dead letters
};
struct StopRequest {
    int signal = 0;
};
struct ReloadRequest {};

using Message = std::variant<Reading, BadReading, MqttIncoming, MqttConnected, MqttConnectFailed,
                             MqttConnectionLost, MqttDelivered, MqttDeliveryFailed, ExecFinished,
                             StopRequest, ReloadRequest>;

class EventQueue {
  public:
    explicit EventQueue(std::size_t reading_capacity = 4096) : capacity_(reading_capacity) {}

    // Readings and bad readings: waits while the bounded part is full, unless
    // the queue is closed (then the message is discarded and false returned).
    bool post(Message m);
    // Never waits.
    void post_control(Message m);

    // Pops the oldest message, waiting until `deadline` at most (steady clock).
    std::optional<Message> pop_until(MonoTime deadline);
    std::optional<Message> try_pop();

    // Wakes blocked producers for good (used at shutdown).
    void close();
    std::size_t size() const;

  private:
    // Readings, bad readings and incoming MQTT messages are data: bounded.
    static bool bounded(const Message& m) { return m.index() <= 2; }
    std::optional<Message> take_locked();

    const std::size_t capacity_;
    mutable std::mutex mutex_;
    std::condition_variable not_empty_;
    std::condition_variable not_full_;
    std::deque<Message> items_;
    std::size_t bounded_count_ = 0;
    bool closed_ = false;
};

}  // namespace tg
