// Gateway: the running daemon. One thread (the caller of run()) owns all
// state: it polls drivers, turns readings into events, and drives the MQTT
// link. Other threads (drivers that wait on devices, Paho, signals) only post
// into the EventQueue.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "core/clock.h"
#include "core/log.h"
#include "drivers/driver.h"
#include "event_queue.h"
#include "mqtt_link.h"
#include "outbox.h"

namespace tg {

class Gateway final : public drivers::Sink {
  public:
    Gateway(Config cfg, const Clock& clock);
    ~Gateway() override;

    // Opens data_dir, starts drivers and the MQTT link, and runs until a stop
    // is requested. Returns the process exit code. Throws std::runtime_error
    // when it cannot start (e.g. data_dir not writable).
    int run();
    // Thread-safe; from a signal thread.
    void request_stop(int signal) { queue_.post_control(StopRequest{signal}); }
    void request_reload() { queue_.post_control(ReloadRequest{}); }

    // drivers::Sink, for drivers with their own threads.
    void reading(Reading r) override;
    void bad_reading(const std::string& sensor, std::string reason, std::string detail) override;

  private:
    struct Sensor {
        const SensorConfig* cfg = nullptr;
        std::string events_topic;
        std::string state_topic;
        // deadband/heartbeat bookkeeping
        std::optional<Value> last_published;
        MonoTime last_published_at{};
    };
    // One driver instance; serves one sensor, or several sharing a reader.
    struct DriverSlot {
        std::unique_ptr<drivers::Driver> driver;
        std::string first_sensor;                  // for messages
        std::chrono::milliseconds interval{5000};  // the shortest of its sensors'
        MonoTime next_due{};
    };
    void create_drivers();
    // Readings from polled drivers, taken on the loop thread itself.
    class LoopSink final : public drivers::Sink {
      public:
        explicit LoopSink(Gateway& g) : g_(g) {}
        void reading(Reading r) override { g_.on_reading(std::move(r)); }
        void bad_reading(const std::string& s, std::string reason, std::string detail) override {
            g_.on_bad_reading(BadReading{s, std::move(reason), std::move(detail)});
        }

      private:
        Gateway& g_;
    };

    void handle(Message& m);
    void on_reading(Reading r);
    void on_bad_reading(const BadReading& b);
    void on_incoming(const MqttIncoming& m);
    // Appends an event to the outbox and lets the link send it.
    void append_event(const outbox::Record& rec);
    // Logs and dead-letters what the outbox had to give up.
    void handle_drops(const std::vector<DropReport>& drops);
    void flush_drop_report(MonoTime now);
    // Appends a dead letter without the per-minute limit (callers limit).
    void emit_deadletter(const std::string& source, const std::string& reason,
                         const std::string& detail, unsigned long suppressed);
    void deadletter(const std::string& source, const std::string& reason,
                    const std::string& detail);
    void poll_due(MonoTime now);
    void publish_metrics(MonoTime now);
    MonoTime next_deadline(MonoTime now) const;
    Sensor* find_sensor(const std::string& name);
    std::string status_online() const;

    Config cfg_;
    const Clock& clock_;
    std::string base_;  // <topic_prefix>/<gateway.id>
    EventQueue queue_;
    Outbox outbox_;
    // Outbox drops not yet reported on <p>/deadletter.
    struct DropBacklog {
        std::uint64_t count = 0, first_seq = 0, last_seq = 0, batches = 0, unlogged = 0;
        std::string why;
        MonoTime next_report{};
    } drop_backlog_;
    RateLimiter drop_log_limiter_{std::chrono::minutes(1)};
    std::unique_ptr<MqttLink> link_;
    LoopSink loop_sink_;
    std::vector<Sensor> sensors_;
    std::vector<DriverSlot> drivers_;
    bool stopping_ = false;
    WallTime started_wall_{};
    MonoTime started_mono_{};
    MonoTime next_metrics_{};
    RateLimiter deadletter_limiter_{std::chrono::minutes(1)};

    struct Counters {
        std::uint64_t events_in = 0;
        std::uint64_t bad_readings = 0;
        std::uint64_t deadletter = 0;
    } counters_;
};

}  // namespace tg
