// The rules engine (SPEC §5.2, §5.3): readings and ticks in, transitions out.
// A pure library: no I/O, no threads, no clock of its own. Times come with
// each call — monotonic for every duration (for, cooldown, windows, age), wall
// only to stamp transitions — so the daemon and `tidegate replay` run the same
// code on a real and a virtual clock. Rule state is plain data that can be
// exported, persisted and imported (restarts), and kept across reloads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "core/reading.h"
#include "rules/name_index.h"
#include "rules/rule_set.h"

namespace tg::rules {

// ---------------------------------------------------------------------------
// Actions, rendered (templates filled in) for the daemon to perform.

struct PublishAction {
    std::string topic;  // absolute, as written (no prefix added)
    std::string payload;
    int qos = 1;
    bool retain = false;
};

struct OutputAction {
    std::string name;
    bool on = true;
    std::optional<std::chrono::milliseconds> duration;  // switch back after this long
};

struct ExecAction {
    std::vector<std::string> argv;  // argv[0] is the program; no shell
    std::chrono::milliseconds timeout = kDefaultExecTimeout;
    std::optional<BreakerSettings> breaker;  // as the action says; else the defaults
};

struct LogAction {
    std::string message;
};

using Action = std::variant<PublishAction, OutputAction, ExecAction, LogAction>;

// ---------------------------------------------------------------------------

enum class TransitionKind : std::uint8_t { Fired, Cleared };
std::string_view transition_name(TransitionKind k);  // "fired" / "cleared"

struct Transition {
    std::string rule;
    TransitionKind kind = TransitionKind::Fired;
    WallTime ts;    // the evaluation's wall time: the rule event's `ts`
    MonoTime mono;  // the evaluation's monotonic time
    RuleSeverity severity = RuleSeverity::Warning;
    // Every sensor named in the rule's when/clear_when with its latest raw
    // reading (nullopt = none yet), in order of first appearance.
    std::vector<std::pair<std::string, std::optional<Value>>> values;
    // The rule's `actions` (fired) or `on_clear` (cleared), rendered at the
    // transition; empty when EngineOptions::render_actions is off.
    std::vector<Action> actions;

    // {"greenhouse.temp":23.4,"door.open":null}
    std::string values_json() const;
};

// One line of `tidegate replay` output:
// {"ts":"…","rule":"NAME","transition":"fired","values":{…}}
std::string transition_json(const Transition& t);

// Sagas (SPEC §12): what an instance did, with the actions to run after its
// event (rendered like a transition's).
enum class SagaEventKind : std::uint8_t { Started, Step, Completed, Failed, Compensated };
std::string_view saga_event_name(SagaEventKind k);  // "saga_started", …

struct SagaEvent {
    std::string rule;
    SagaEventKind kind = SagaEventKind::Started;
    WallTime ts;
    MonoTime mono;
    // Started: the first step; Step: the step confirmed; Completed: the last;
    // Failed, Compensated: the step that failed.
    std::string step;
    std::size_t step_index = 0;
    std::string reason;  // Failed: timeout, action_failed, restart_expired or reloaded
    // Run after the event: the `do` of the step that begins now (Started,
    // Step), or the compensation (Failed: the undos, then on_failure).
    std::vector<Action> actions;
    // When `actions` are a step's `do`: that step (a failed action fails it).
    std::optional<std::size_t> do_step;
};

// One line of replay output for a saga event:
// {"ts":"…","rule":"NAME","saga":"saga_failed","step":"open_valve","reason":"timeout"}
std::string saga_event_json(const SagaEvent& e);

enum class RuleState : std::uint8_t { Idle, Pending, Firing };
std::string_view rule_state_name(RuleState s);

// A rule's state as plain data. Times are durations back from the moment of
// export, so they survive the monotonic clock restarting at boot; the time the
// gateway was down does not count.
struct RuleStateRecord {
    std::string name;
    std::string definition;  // Rule::definition when exported
    RuleState state = RuleState::Idle;
    RuleSeverity severity = RuleSeverity::Warning;
    std::optional<std::chrono::milliseconds> pending_for;        // now - since, when pending
    std::optional<std::chrono::milliseconds> since_last_firing;  // now - last firing
};

// A sensor's latest reading, so that conditions read the same after a restart
// as before it (a pending rule is not sent back to idle by a sensor that only
// looks missing because the process restarted). Windows are not kept.
struct SensorRecord {
    std::string name;
    Value value;
    std::chrono::milliseconds age{0};  // now - the reading's time
};

// A saga in progress: its step and when that step began on the wall clock,
// so that time the gateway was down counts against the step's `within`.
struct SagaRecord {
    std::string rule;
    std::string definition;  // SagaSpec::definition when exported
    std::size_t step = 0;
    WallTime step_started;
};

struct EngineState {
    std::vector<RuleStateRecord> rules;
    std::vector<SensorRecord> sensors;
    std::vector<SagaRecord> sagas;
};

// Small JSON text for data_dir (the daemon writes it atomically).
std::string state_to_json(const EngineState& s);
// nullopt with `why` set when the text is not a state file of this format.
std::optional<EngineState> state_from_json(std::string_view text, std::string* why = nullptr);

// One evaluation of the rule EngineOptions::explain_rule names: its state
// before and after, the condition it looked at with the values it saw
// (explain_condition), and where its timers stood.
struct Explanation {
    std::string rule;
    WallTime ts;
    bool by_tick = false;  // a tick evaluated it, not a reading
    RuleState before = RuleState::Idle;
    RuleState after = RuleState::Idle;
    // "when" while idle or pending; while firing what clears it:
    // "clear_when", or "when" (which clears by being false).
    std::string condition_key;
    std::string condition;
    std::chrono::milliseconds for_duration{0};
    std::optional<std::chrono::milliseconds>
        pending_for;  // now - since, while pending or on firing
    std::optional<std::chrono::milliseconds> cooldown_left;
};
using ExplainSink = std::function<void(const Explanation&)>;

struct EngineOptions {
    std::string gateway;  // {{gateway}} in templates
    // age() of a sensor with no reading yet counts from here; default: the
    // time of the first call (replay: the first event).
    std::optional<MonoTime> start;
    bool render_actions = true;  // replay turns this off
    // `tidegate replay --explain RULE`: every evaluation of that rule is
    // described to `explain` (not on the daemon's path: it sets neither).
    std::string explain_rule;
    ExplainSink explain;
};

class Engine {
  public:
    explicit Engine(std::shared_ptr<const RuleSet> rules, EngineOptions options = {});

    // A reading: updates the sensor, then evaluates the rules that read it,
    // in rule order. Readings must come in monotonic order; an earlier `mono`
    // counts as now.
    std::vector<Transition> on_reading(const Reading& r);
    void on_reading(const Reading& r, std::vector<Transition>& out);

    // A tick (at multiples of rules.tick, see next_tick_after): evaluates the
    // rules that use for, age() or a window function, or are in cooldown.
    std::vector<Transition> on_tick(MonoTime mono, WallTime wall);
    void on_tick(MonoTime mono, WallTime wall, std::vector<Transition>& out);

    // Reload: rules whose name and definition (when, for, clear_when,
    // cooldown) are unchanged keep their state, as do windows still in use.
    // Returns `cleared` transitions, with the old rule's on_clear, for firing
    // rules that were removed or changed.
    std::vector<Transition> replace_rules(std::shared_ptr<const RuleSet> rules, MonoTime mono,
                                          WallTime wall);

    EngineState export_state(MonoTime now) const;
    // Restores state exported by an earlier engine (another process): sensor
    // values this engine has not seen a reading of yet, and rule states,
    // matched by name and definition; a firing rule that is gone or
    // changed yields a `cleared` transition (with the current rule's on_clear
    // when the name still exists, else no actions); firing rules resume
    // without a new `fired`.
    std::vector<Transition> import_state(const EngineState& state, MonoTime mono, WallTime wall);

    // Bumped on every change of rule state (idle/pending/firing, last firing):
    // the daemon persists the state when it moved.
    std::uint64_t state_generation() const { return generation_; }

    // Saga events since the last call, oldest first. A call that may
    // produce them: on_reading, on_tick, replace_rules, import_state,
    // saga_action_failed.
    std::vector<SagaEvent> take_saga_events() { return std::exchange(saga_events_, {}); }
    // A `do` action of step `step` of `rule`'s saga failed: the saga fails
    // (reason action_failed) and compensates, if it is still on that step.
    void saga_action_failed(std::string_view rule, std::size_t step, MonoTime mono, WallTime wall);
    bool saga_running(std::string_view rule) const;
    // Firings whose saga was still running, so none was started.
    std::uint64_t sagas_skipped() const { return sagas_skipped_; }
    // Some rule has a saga: ticks are needed to time its steps out.
    bool has_sagas() const { return has_sagas_; }
    // Some saga is running: ticks are needed to time its step out.
    bool sagas_running() const { return active_sagas_ > 0; }

    RuleState state_of(std::string_view rule) const;
    // Rule `i` (in rules() order): its state, and when pending, since when.
    struct RuleStatus {
        RuleState state = RuleState::Idle;
        std::optional<MonoTime> pending_since;
    };
    RuleStatus status_of(std::size_t i) const;
    const RuleSet& rules() const { return *set_; }
    std::shared_ptr<const RuleSet> rule_set() const { return set_; }

  private:
    struct Runtime {
        RuleState state = RuleState::Idle;
        std::int64_t since = 0;  // pending since (monotonic ns)
        bool has_last_firing = false;
        std::int64_t last_firing = 0;
    };

    std::int64_t advance(MonoTime mono);
    std::uint32_t slot_for(const std::string& sensor);
    void build_indices();
    bool in_cooldown(const Rule& rule, const Runtime& st, std::int64_t now) const;
    void evaluate(std::size_t i, std::int64_t now, WallTime wall, std::vector<Transition>& out);
    // Out of line: transitions are rare, evaluations are the hot path.
    [[gnu::noinline, gnu::cold]] void emit(const Rule& rule, TransitionKind kind, std::int64_t now,
                                           WallTime wall, std::vector<Transition>& out);
    Transition make_transition(const Rule& rule, TransitionKind kind, std::int64_t now,
                               WallTime wall);
    std::string render(const Template& t, EvalEnv& env) const;
    std::vector<Action> render_actions(const Rule& rule, const std::vector<ActionSpec>& specs,
                                       std::int64_t now, WallTime wall, std::string_view step);
    struct SagaRun {
        bool active = false;
        std::size_t step = 0;
        std::int64_t since = 0;  // monotonic ns when the step began
        WallTime since_wall{};
    };
    void start_saga(std::size_t i, std::int64_t now, WallTime wall);
    void check_sagas(std::int64_t now, WallTime wall);
    void fail_saga(const Rule& rule, SagaRun& run, std::string reason, std::int64_t now,
                   WallTime wall);
    SagaEvent saga_event(const Rule& rule, SagaEventKind kind, std::size_t step, std::int64_t now,
                         WallTime wall) const;
    // evaluate() of the explained rule, described to options_.explain.
    [[gnu::noinline, gnu::cold]] void evaluate_explained(std::size_t i, std::int64_t now,
                                                         WallTime wall,
                                                         std::vector<Transition>& out);

    std::shared_ptr<const RuleSet> set_;
    EngineOptions options_;
    std::vector<SensorData> sensors_;  // the set's slots first, then sensors no rule names
    std::vector<std::string> sensor_names_;
    NameIndex sensor_index_;
    std::vector<std::vector<std::uint32_t>> rules_by_sensor_;
    std::vector<std::vector<std::uint32_t>> windows_by_sensor_;
    std::vector<Window> windows_;
    std::vector<Runtime> states_;
    std::vector<std::uint32_t> tick_rules_;  // uses time, or has a cooldown
    std::int64_t now_ = 0;
    bool started_ = false;
    std::int64_t start_ns_ = 0;
    std::uint64_t generation_ = 0;
    std::vector<SagaRun> sagas_;  // per rule
    std::vector<SagaEvent> saga_events_;
    std::size_t active_sagas_ = 0;
    std::uint64_t sagas_skipped_ = 0;
    bool has_sagas_ = false;
    std::size_t explain_index_ = SIZE_MAX;  // none
    bool explaining_ = false;
    bool in_tick_ = false;
};

// The first multiple of `tick` since the Unix epoch strictly after `t`.
WallTime next_tick_after(WallTime t, std::chrono::milliseconds tick);

}  // namespace tg::rules
