// EventQueue: the one queue the event loop drains. Drivers (from their own
// threads) and Paho callbacks post into it; only the loop thread pops.
//
// Three kinds of message, each with its own rule when the loop falls behind:
// - data from drivers (readings, bad readings) is bounded: a driver thread
//   faster than the loop waits (backpressure on the driver, never the loop);
// - control (acks, connection changes, exec results, signals) is never
//   refused and never waits;
// - input from the broker (MqttIncoming) arrives on Paho's receive thread,
//   which holds a Paho mutex while it calls us: waiting there would deadlock
//   against the loop publishing. So input never waits either: it has a lane
//   of its own bounded in bytes, and what does not fit is shed and counted.
// The loop takes data and control before input, so a flood on one MQTT
// topic cannot delay a reading from another driver or a shutdown by more
// than one turn of the loop.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
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
    std::string detail;   // what happened, for logs and dead letters
    std::string program;  // argv[0]: whose circuit breaker it was
    bool counts = true;   // false: never ran, for no fault of the program's
};
struct StopRequest {
    int signal = 0;
};
struct ReloadRequest {};

using Message = std::variant<Reading, BadReading, MqttIncoming, MqttConnected, MqttConnectFailed,
                             MqttConnectionLost, MqttDelivered, MqttDeliveryFailed, ExecFinished,
                             StopRequest, ReloadRequest>;

// Which rule a message falls under when the loop falls behind (see above).
enum class Lane { Data, Control, Input };
template <typename T>
constexpr Lane lane_of() {
    if constexpr (std::is_same_v<T, Reading> || std::is_same_v<T, BadReading>) return Lane::Data;
    if constexpr (std::is_same_v<T, MqttIncoming>) return Lane::Input;
    return Lane::Control;
}
Lane lane_of(const Message& m);

class EventQueue {
  public:
    // Room an incoming message takes besides its topic and payload.
    static constexpr std::size_t kInputOverhead = 128;
    static constexpr std::size_t kDefaultInputBytes = 8u << 20;

    explicit EventQueue(std::size_t reading_capacity = 4096,
                        std::size_t input_bytes = kDefaultInputBytes)
        : capacity_(reading_capacity), input_capacity_(input_bytes) {}

    // Data (readings, bad readings): waits while the bounded part is full,
    // unless the queue is closed (then the message is discarded and false
    // returned). Other kinds are passed on as post_control/offer_input would.
    bool post(Message m);
    // Never waits, never refuses (until closed).
    void post_control(Message m);
    // Input from the broker. Never waits: false when it was shed (the input
    // lane is full, or the queue closed), counted in shed().
    bool offer_input(MqttIncoming m);

    // Pops the oldest data or control message, else the oldest input,
    // waiting until `deadline` at most (steady clock).
    std::optional<Message> pop_until(MonoTime deadline);
    std::optional<Message> try_pop();

    // Wakes blocked producers for good and sheds what input still waits
    // (used at shutdown); returns the number of input messages shed.
    std::size_t close();
    std::size_t size() const;
    std::size_t input_size() const;

    struct Shed {
        std::uint64_t count = 0;  // input messages shed since the start
        std::string last_topic;   // the topic of the last one
    };
    Shed shed() const;

  private:
    std::optional<Message> take_locked();

    const std::size_t capacity_;
    const std::size_t input_capacity_;
    mutable std::mutex mutex_;
    std::condition_variable not_empty_;
    std::condition_variable not_full_;
    std::deque<Message> items_;  // data and control, in arrival order
    std::size_t data_count_ = 0;
    std::deque<MqttIncoming> input_;
    std::size_t input_bytes_ = 0;
    Shed shed_;
    bool closed_ = false;
};

}  // namespace tg
