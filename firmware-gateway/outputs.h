// OutputBank: the configured outputs (SPEC §2 `outputs`), switched by rule
// actions and, for `remote: true`, by <p>/cmd/outputs/<name>. Knows each
// output's state, so only real changes are reported, and runs the timers of
// timed switches (`for: 30s`). Lives on the event loop thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "config.h"
#include "core/clock.h"
#include "drivers/driver.h"

namespace tg {

class OutputBank {
  public:
    // Called for each real change (and once at start for outputs whose
    // initial state is known): the gateway publishes the output event.
    using ChangeFn = std::function<void(const std::string& name, bool on)>;
    // Called when switching failed: the gateway logs and dead-letters it.
    using FailFn = std::function<void(const std::string& name, const std::string& why)>;

    OutputBank(const std::vector<OutputConfig>& outputs, drivers::OutputEnv& env, ChangeFn changed,
               FailFn failed);

    // Opens the devices and applies initial states; a missing device is
    // reported through FailFn and retried at the next switch.
    void start();
    void stop();

    bool has(const std::string& name) const { return outputs_.count(name) != 0; }
    bool remote(const std::string& name) const;
    std::vector<std::string> remote_names() const;

    // Switches `name`; with `hold`, switches back after that long. A later
    // switch of the same output cancels a pending switch-back.
    void set(const std::string& name, bool on, std::optional<std::chrono::milliseconds> hold,
             MonoTime now);

    std::optional<MonoTime> next_deadline() const;
    void on_timer(MonoTime now);

  private:
    struct Slot {
        std::unique_ptr<drivers::Output> output;
        bool remote = false;
        std::optional<bool> state;  // nullopt: unknown until first switched
        bool started = false;
        std::optional<MonoTime> revert_at;
        bool revert_to = false;
    };
    bool apply(const std::string& name, Slot& s, bool on);

    std::map<std::string, Slot> outputs_;
    ChangeFn changed_;
    FailFn failed_;
};

}  // namespace tg
