// OutputBank: the configured outputs (SPEC §2 `outputs`), switched by rule
// actions and, for `remote: true`, by <p>/cmd/outputs/<name>. Knows each
// output's state, so only real changes are reported, and runs the timers of
// timed switches (`for: 30s`). Every switch returns what it did (an
// OutputReport); reporting it is the caller's. Lives on the event loop thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "core/breaker.h"
#include "core/clock.h"
#include "drivers/driver.h"

namespace tg {

// What one switch did, for the gateway to report: a real change becomes an
// `output` event, a failure a dead letter, no change nothing; a switch its
// open circuit breaker skipped a `circuit_open` dead letter. The breaker's
// changes of state (SPEC §11) come along, to be reported as `breaker` events.
struct OutputReport {
    enum class Kind { Unchanged, Changed, Failed, Skipped };
    std::string name;
    Kind kind = Kind::Unchanged;
    bool on = false;  // the state asked for (and, when Changed, now held)
    std::string why;  // when Failed or Skipped
    std::vector<BreakerChange> breaker;

    static OutputReport failed(std::string name, std::string why) {
        return OutputReport{std::move(name), Kind::Failed, false, std::move(why), {}};
    }
};

class OutputBank {
  public:
    OutputBank(const std::vector<OutputConfig>& outputs, drivers::OutputEnv& env);

    // Opens the devices and applies initial states: a Changed report for
    // each output whose initial state is known, a Failed one for a missing
    // device (retried at its next switch).
    std::vector<OutputReport> start(MonoTime now);
    void stop();

    bool has(const std::string& name) const { return outputs_.count(name) != 0; }
    bool remote(const std::string& name) const;
    std::vector<std::string> remote_names() const;

    // Switches `name`; with `hold`, switches back after that long. A later
    // switch of the same output cancels a pending switch-back.
    OutputReport set(const std::string& name, bool on,
                     std::optional<std::chrono::milliseconds> hold, MonoTime now);

    std::optional<MonoTime> next_deadline() const;
    // f(name, state (nullopt: unknown), remote, breaker) for each output, by name.
    template <class F>
    void visit(F&& f) const {
        for (const auto& [name, slot] : outputs_)
            f(name, slot.state, slot.remote, slot.breaker);
    }
    // The switch-backs that are due.
    std::vector<OutputReport> on_timer(MonoTime now);

  private:
    struct Slot {
        std::unique_ptr<drivers::Output> output;
        bool remote = false;
        std::optional<bool> state;  // nullopt: unknown until first switched
        bool started = false;
        std::optional<MonoTime> revert_at;
        bool revert_to = false;
        Breaker breaker;
    };
    OutputReport apply(const std::string& name, Slot& s, bool on, MonoTime now);

    std::map<std::string, Slot> outputs_;
};

}  // namespace tg
