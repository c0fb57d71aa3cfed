// `tidegate replay` (SPEC §1), library part: recorded event envelopes in, one
// JSON line per rule transition out. The same Engine as the daemon runs on a
// VirtualClock driven by the events' `ts`, with ticks as SPEC §5.3 defines
// (every multiple of the tick in [first ts, last ts], after any reading at the
// same instant). No action is performed.
#pragma once

#include <chrono>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <vector>

#include "core/clock.h"
#include "rules/engine.h"

namespace tg::rules {

// An Engine on a VirtualClock, stepped as SPEC §5.3 defines: readings in
// order, ticks at every multiple of `tick` since the Unix epoch, a reading at
// the same instant as a tick before that tick. `tidegate replay` and
// `tidegate test` both run on it, so they step exactly alike. The listener
// hears every transition and may keep timers of its own (the switch-backs of
// timed outputs), which run before a tick or reading at the same instant, as
// the daemon runs due switch-backs before its tick.
class VirtualRun {
  public:
    class Listener {
      public:
        virtual ~Listener() = default;
        virtual void on_transition(const Transition& t) = 0;
        // A saga event (SPEC §12), after the transitions of the same evaluation.
        virtual void on_saga(const SagaEvent& e) { (void)e; }
        // The listener's earliest timer, if any.
        virtual std::optional<WallTime> next_timer() const { return std::nullopt; }
        // Called with the clock at a time next_timer() gave.
        virtual void on_timer(WallTime now) { (void)now; }
    };

    VirtualRun(std::shared_ptr<const RuleSet> rules, std::chrono::milliseconds tick,
               EngineOptions options, Listener& listener);
    ~VirtualRun();

    // Starts the clock at `t` (age() counts from here; the first tick falls
    // at the first multiple of the tick at or after `t`). The first reading
    // starts it when this was not called.
    void start(WallTime t);
    bool started() const { return clock_ != nullptr; }
    // Timers and ticks before `ts`, timers at `ts`, then the reading. A `ts`
    // before the clock's time counts as now.
    void reading(WallTime ts, std::string sensor, Value value);
    // Timers and ticks up to and including `t`.
    void run_until(WallTime t);
    WallTime now() const;
    const Engine& engine() const { return *engine_; }

  private:
    // Steps through timers and ticks before `t` (at `t` too when
    // `ticks_at_t`; timers at `t` always), then moves the clock to `t`.
    void step_to(WallTime t, bool ticks_at_t);
    void move_clock_to(WallTime t);
    void deliver();

    std::shared_ptr<const RuleSet> rules_;
    std::chrono::milliseconds tick_;
    EngineOptions options_;
    Listener& listener_;
    std::unique_ptr<VirtualClock> clock_;
    std::unique_ptr<Engine> engine_;
    WallTime next_tick_{};
    std::vector<Transition> transitions_;
};

// `tidegate replay`: one JSON line per transition (transition_json) and per
// saga event (saga_event_json).
class Replayer final : private VirtualRun::Listener {
  public:
    // With `explain_rule`, every evaluation of that rule triggered by a
    // reading, and every one that changed its state, is also printed as an
    // explanation_text line (between the transitions' JSON lines).
    Replayer(std::shared_ptr<const RuleSet> rules, std::chrono::milliseconds tick,
             std::ostream& out, std::string explain_rule = {});
    ~Replayer() override;

    // Reads envelope lines from `in` (`name` is used in messages); several
    // inputs may be fed in order. Lines whose `type` is not `reading` are
    // skipped; an invalid line is reported to `err` as NAME:LINE:1: error: …
    // and skipped. Returns false when any line was invalid.
    bool feed(std::istream& in, const std::string& name, std::ostream& err);
    // Runs the ticks up to the last event's time. Call once, at the end.
    void finish();

  private:
    void on_transition(const Transition& t) override;
    void on_saga(const SagaEvent& e) override;

    std::ostream& out_;
    VirtualRun run_;
};

// One line of `replay --explain`:
//   2026-11-26T17:19:53.000Z greenhouse_too_hot pending -> firing (tick):
//   when greenhouse.temp > 30: 31.4 > 30 = true; for 2m: 2m elapsed
// (on one line), with "; cooldown: 3m left" while in cooldown.
std::string explanation_text(const Explanation& e);

// Replays one input; returns the exit code (0, or 1 when a line was invalid).
int replay(std::istream& in, const std::string& name, const RuleSet& rules,
           std::chrono::milliseconds tick, std::ostream& out, std::ostream& err);

// RFC 3339 date-time (2026-11-26T17:15:53.123Z, offsets like +01:00 accepted).
std::optional<WallTime> parse_rfc3339(std::string_view text);

}  // namespace tg::rules
