// RuleHost: the gateway's side of the rules engine. It owns the
// rules::Engine (start with the rule state of the previous run, reloads,
// ticks), the configured outputs (OutputBank, with the timers of timed
// switches and the remote output commands), the runner of exec actions, the
// rule file watcher and the writer of data_dir/rules.state. It turns what
// the engine decides into rule events, output events and dead letters
// (through the EventPublisher), publish actions (through the MqttLink's
// memory queue), exec runs and log lines.
//
// Thread: the event loop thread only, like the Gateway that owns it. The
// watcher's and the exec runner's threads never call into it: they post a
// ReloadRequest or an ExecFinished to the EventQueue, and the loop hands
// those back in (reload, on_exec_finished).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "background_writer.h"
#include "config.h"
#include "core/breaker.h"
#include "core/clock.h"
#include "core/reading.h"
#include "event_publisher.h"
#include "event_queue.h"
#include "exec_runner.h"
#include "mqtt_link.h"
#include "outputs.h"
#include "rule_watcher.h"
#include "rules/engine.h"
#include "status_snapshot.h"

namespace tg {

// rules.state is handed to its writer at most once per this; a change after
// a quiet spell goes at once, changes that follow it within this wait for it.
inline constexpr std::chrono::milliseconds kRuleStateEvery{20};

class RuleHost {
  public:
    // `rules` may be null (no rule files); a reload loads them from the
    // config's paths. `base` is <topic_prefix>/<gateway.id>. Creates the
    // outputs (no I/O yet) and the exec runner; the references must outlive
    // the host.
    RuleHost(const Config& cfg, std::string base, const Clock& clock, EventQueue& queue,
             MqttLink& link, EventPublisher& events, std::shared_ptr<const rules::RuleSet> rules);
    RuleHost(const RuleHost&) = delete;
    RuleHost& operator=(const RuleHost&) = delete;

    // Starts the engine at `now`. Rule state of the previous run: a firing
    // rule resumes as firing without running its actions again; pending
    // `for` timers continue.
    void start(MonoTime now);
    // Starts the rule file watcher and the outputs (their initial states
    // reported), and subscribes to the remote outputs' command topics.
    void start_watcher_and_outputs();
    // Shutdown: stops the watcher and the exec runner (programs still
    // running are killed, not waited for), writes the rule state and waits
    // until it is on disk, stops the outputs.
    void stop();

    // A reading: the rules evaluate it and the outputs they switch switch at
    // once; then `publish_own()` appends the reading's own event (SPEC §5.2:
    // it comes first), then the rule events and the other actions follow.
    template <class PublishOwn>
    void feed(const Reading& r, PublishOwn&& publish_own) {
        evaluate(r);
        publish_own();
        conclude_reading();
    }

    // Timed output switch-backs that are due, and (unless `stopping`) the
    // rule tick when it is due.
    void on_timer(MonoTime now, bool stopping);
    // When on_timer has something to do next, if ever.
    std::optional<MonoTime> next_deadline(bool stopping) const;

    // Loads the rule files again. False when they are rejected: logged,
    // dead-lettered, and the previous rules keep running.
    bool reload();
    // A message on <p>/cmd/outputs/<name>: true when it was one (handled
    // here), false when the topic is someone else's.
    bool on_output_command(const MqttIncoming& m);
    void on_exec_finished(const ExecFinished& e);
    // Sums up the transition log lines suppressed in a window that is over.
    void flush_transition_logs(MonoTime now);

    std::size_t rule_count() const { return engine_ ? engine_->rules().size() : 0; }
    // Rules, outputs, breakers and sagas as they stand, for the status page.
    void fill_status(StatusSnapshot& s, MonoTime now, WallTime wall) const;
    // The names of the rules running, in evaluation order.
    std::vector<std::string> rule_names() const;

  private:
    // feed's two halves: the engine's transitions and the outputs switched
    // first; then the rule events and the other actions.
    void evaluate(const Reading& r);
    void conclude_reading();
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
    void publish_output_event(const std::string& name, bool on, WallTime ts);
    // Transition log lines, rate-limited per rule.
    struct TransitionLogBudget {
        MonoTime window_start{};
        unsigned logged = 0;
        unsigned long suppressed = 0;
    };
    void log_transition(const rules::Transition& t);
    void flush_transition_log(const std::string& rule, TransitionLogBudget& b);
    // Runs an action; false when it failed (an output that failed or whose
    // breaker is open, an exec not started, a refused topic).
    bool run_action(const rules::Action& a, const std::string& rule);
    // The engine's saga events: published on <p>/sagas/<rule> (retained),
    // their actions run; a failed `do` action fails its step.
    void handle_sagas();
    void publish_saga_event(const rules::SagaEvent& e);
    // `breaker` events (SPEC §11) on <p>/breakers/<target>, retained.
    void report_breaker(const std::string& target, const std::vector<BreakerChange>& changes,
                        WallTime ts);
    // "exec/<program's file name>".
    static std::string exec_target(const std::string& program);
    bool run_exec(const std::string& rule, const rules::ExecAction& a);
    void persist_rule_state(bool force);

    // Publishes through the MQTT link's memory queue (mqtt outputs).
    class LinkEnv final : public drivers::OutputEnv {
      public:
        explicit LinkEnv(MqttLink& link) : link_(link) {}
        void publish(const std::string& topic, const std::string& payload, int qos,
                     bool retain) override {
            link_.publish({topic, payload, qos, retain});
        }

      private:
        MqttLink& link_;
    };

    const Config& cfg_;
    const std::string base_;  // <topic_prefix>/<gateway.id>
    const Clock& clock_;
    EventQueue& queue_;
    MqttLink& link_;
    EventPublisher& events_;

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
    std::unordered_map<std::string, TransitionLogBudget> transition_log_;
    bool ticking_ = false;  // some rule needs ticks
    MonoTime next_tick_{};
    std::uint64_t persisted_generation_ = 0;
    std::unique_ptr<BackgroundWriter> state_writer_;  // rules.state, off the loop thread
    // A rule flapping with every reading of a fast source would otherwise
    // have the whole state serialised and the file replaced (two fsyncs and
    // a rename) hundreds of times a second. A change within kRuleStateEvery
    // of the last handover waits for state_due_.
    std::optional<MonoTime> last_state_;
    std::optional<MonoTime> state_due_;
    LinkEnv link_env_;
    std::unique_ptr<OutputBank> outputs_;
    std::unique_ptr<ExecRunner> exec_;
    std::unordered_map<std::string, Breaker> exec_breakers_;  // by program path
    // Rules whose saga step started a program not finished yet: that step.
    std::unordered_map<std::string, std::size_t> saga_execs_;
    std::unique_ptr<RuleWatcher> watcher_;
    // For the status page: when each rule last fired or cleared, how often
    // it fired since the start, and each saga's latest event.
    struct RuleSeen {
        WallTime since{};
        std::uint64_t fired = 0;
    };
    std::unordered_map<std::string, RuleSeen> rule_seen_;
    std::unordered_map<std::string, StatusSnapshot::Saga> saga_seen_;
};

}  // namespace tg
