// Gateway: the running daemon. One thread (the caller of run()) owns all
// state: it polls drivers, turns readings into events, and drives the MQTT
// link. Other threads (drivers that wait on devices, Paho, signals) only post
// into the EventQueue.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "background_writer.h"
#include "config.h"
#include "core/clock.h"
#include "core/log.h"
#include "drivers/driver.h"
#include "event_publisher.h"
#include "event_queue.h"
#include "exec_runner.h"
#include "mqtt_link.h"
#include "outbox.h"
#include "outputs.h"
#include "rule_watcher.h"
#include "rules/engine.h"

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
    void report_overload();
    void on_incoming(const MqttIncoming& m);
    void poll_due(MonoTime now);
    void publish_metrics(MonoTime now);
    MonoTime next_deadline(MonoTime now) const;
    Sensor* find_sensor(const std::string& name);
    std::string status_online() const;

    // --- rules (gateway_rules.cpp) ---
    void start_rules(MonoTime now);
    void reload_rules();
    // The reading's own event and what the rules make of it.
    void feed_rules(Sensor& s, const Reading& r);
    void run_ticks(MonoTime now);
    void schedule_tick(MonoTime now);
    // What transitions do: switch_outputs_first, then handle_transitions.
    void react(std::vector<rules::Transition>& ts);
    // Runs the output actions that lead the transitions' actions, holding
    // what the outputs report, before anything is appended to the outbox.
    void switch_outputs_first(const std::vector<rules::Transition>& ts);
    // Rule events and actions in order (those run first: their held reports).
    void handle_transitions(std::vector<rules::Transition>& ts);
    // OutputBank's reports: appended at once, or held while switching first.
    // An output event for a real change, a dead letter for a failure.
    void report_output(const OutputReport& r, WallTime ts);
    void publish_rule_event(const rules::Transition& t);
    // Transition log lines, rate-limited per rule.
    struct TransitionLogBudget {
        MonoTime window_start{};
        unsigned logged = 0;
        unsigned long suppressed = 0;
    };
    void log_transition(const rules::Transition& t);
    void flush_transition_log(const std::string& rule, TransitionLogBudget& b);
    void flush_transition_logs(MonoTime now);
    std::unordered_map<std::string, TransitionLogBudget> transition_log_;
    void run_action(const rules::Action& a, const std::string& rule);
    void run_exec(const std::string& rule, const rules::ExecAction& a);
    void on_exec_finished(const ExecFinished& e);
    void persist_rule_state(bool force);
    void publish_output_event(const std::string& name, bool on, WallTime ts);
    bool on_output_command(const MqttIncoming& m);
    void publish_status();
    // Publishes through the MQTT link's memory queue (mqtt outputs).
    class LinkEnv final : public drivers::OutputEnv {
      public:
        explicit LinkEnv(Gateway& g) : g_(g) {}
        void publish(const std::string& topic, const std::string& payload, int qos,
                     bool retain) override {
            g_.link_->publish({topic, payload, qos, retain});
        }

      private:
        Gateway& g_;
    };

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

    std::shared_ptr<const rules::RuleSet> initial_rules_;
    std::unique_ptr<rules::Engine> engine_;
    std::vector<rules::Transition> transitions_;  // scratch, reused
    // What the output actions switch_outputs_first ran did, in action
    // order, with the time of each switch (its event is appended later).
    struct HeldReport {
        OutputReport report;
        WallTime ts;
    };
    std::vector<HeldReport> held_;
    bool ticking_ = false;  // some rule needs ticks
    MonoTime next_tick_{};
    std::uint64_t persisted_generation_ = 0;
    std::unique_ptr<BackgroundWriter> state_writer_;  // rules.state, off the loop thread
    LinkEnv link_env_;
    std::unique_ptr<OutputBank> outputs_;
    std::unique_ptr<ExecRunner> exec_;
    std::unique_ptr<RuleWatcher> watcher_;
    bool stopping_ = false;
    WallTime started_wall_{};
    MonoTime started_mono_{};
    MonoTime next_metrics_{};
};

}  // namespace tg
