// Gateway: the running daemon. One thread (the caller of run()) owns all
// state: it polls drivers, turns readings into events, drives the MQTT link
// and hands readings, timers and commands to the RuleHost (rules, outputs,
// actions). Other threads (drivers that wait on devices, Paho, signals, the
// rule watcher, exec runs) only post into the EventQueue.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config.h"
#include "core/clock.h"
#include "drivers/driver.h"
#include "event_publisher.h"
#include "event_queue.h"
#include "ha_discovery.h"
#include "http_server.h"
#include "mqtt_link.h"
#include "outbox.h"
#include "rule_host.h"

namespace tg {

class Gateway final : public drivers::Sink {
  public:
    // `rules` may be null (no rule files); a reload loads them from the config's paths.
    Gateway(Config cfg, const Clock& clock, std::shared_ptr<const rules::RuleSet> rules = nullptr);
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
        // The latest accepted reading and (with the HTTP server) the recent
        // values, one per kHistoryStep, for the status page.
        std::optional<Value> latest;
        WallTime latest_ts{};
        MonoTime latest_mono{};
        std::vector<float> history;
        std::int64_t history_slot = 0;
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
    void publish_reading(Sensor& s, const Reading& r);
    void on_bad_reading(const BadReading& b);
    void on_incoming(const MqttIncoming& m);
    void poll_due(MonoTime now);
    void publish_metrics(MonoTime now);
    MonoTime next_deadline(MonoTime now) const;
    std::string status_online() const;
    // The local HTTP server (SPEC §9), when http.listen is set: started
    // after the link; it reads snapshots this loop hands over.
    void start_http();
    void remember_reading(Sensor& s, const Reading& r);
    std::shared_ptr<const StatusSnapshot> take_snapshot(MonoTime now) const;

    Config cfg_;
    const Clock& clock_;
    std::string base_;  // <topic_prefix>/<gateway.id>
    EventQueue queue_;
    Outbox outbox_;
    std::unique_ptr<MqttLink> link_;
    std::unique_ptr<EventPublisher> events_;
    LoopSink loop_sink_;
    std::vector<Sensor> sensors_;
    std::unordered_map<std::string, std::size_t> sensor_index_;
    std::vector<DriverSlot> drivers_;

    std::unique_ptr<RuleHost> rules_;
    std::unique_ptr<ha::HaAnnouncer> ha_;  // with homeassistant.discovery only
    std::unique_ptr<HttpServer> http_;     // with http.listen only
    // A new snapshot is taken at most once per kSnapshotEvery, and only
    // after the loop did something (idle means asleep).
    bool status_dirty_ = true;
    MonoTime next_snapshot_{};
    bool stopping_ = false;
    WallTime started_wall_{};
    std::string connected_broker_;  // the URI of the current connection (status `broker`)
    MonoTime started_mono_{};
    MonoTime next_metrics_{};
};

}  // namespace tg
