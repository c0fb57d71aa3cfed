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

#include "core/clock.h"
#include "rules/engine.h"

namespace tg::rules {

class Replayer {
  public:
    Replayer(std::shared_ptr<const RuleSet> rules, std::chrono::milliseconds tick,
             std::ostream& out);
    ~Replayer();

    // Reads envelope lines from `in` (`name` is used in messages); several
    // inputs may be fed in order. Lines whose `type` is not `reading` are
    // skipped; an invalid line is reported to `err` as NAME:LINE:1: error: …
    // and skipped. Returns false when any line was invalid.
    bool feed(std::istream& in, const std::string& name, std::ostream& err);
    // Runs the ticks up to the last event's time. Call once, at the end.
    void finish();

  private:
    void reading(WallTime ts, const std::string& sensor, Value value);
    void move_clock_to(WallTime t);

    std::shared_ptr<const RuleSet> rules_;
    std::chrono::milliseconds tick_;
    std::ostream& out_;
    std::unique_ptr<VirtualClock> clock_;
    std::unique_ptr<Engine> engine_;
    WallTime next_tick_{};
    std::vector<Transition> transitions_;
};

// Replays one input; returns the exit code (0, or 1 when a line was invalid).
int replay(std::istream& in, const std::string& name, const RuleSet& rules,
           std::chrono::milliseconds tick, std::ostream& out, std::ostream& err);

// RFC 3339 date-time (2026-11-26T17:15:53.123Z, offsets like +01:00 accepted).
std::optional<WallTime> parse_rfc3339(std::string_view text);

}  // namespace tg::rules
