// sd_notify: the systemd service notification protocol, written out by hand
// (one datagram to $NOTIFY_SOCKET) so the daemon needs no libsystemd. With
// Type=notify systemd waits for READY=1; with WatchdogSec it restarts the
// service when WATCHDOG=1 stops arriving. Outside systemd every call is a no-op.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "core/clock.h"

namespace tg::sd {

// Sends STATE (e.g. "READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=text";
// several joined by '\n') to $NOTIFY_SOCKET: a filesystem path, or an abstract
// socket name when it starts with '@'. Returns true when a datagram was sent;
// false when NOTIFY_SOCKET is unset or sending failed (never throws: a failed
// notification must not take the daemon down).
bool notify(std::string_view state);

// The watchdog timeout systemd expects pings within: $WATCHDOG_USEC, provided
// $WATCHDOG_PID is unset or names this process. nullopt when the watchdog is off.
std::optional<std::chrono::microseconds> watchdog_timeout();

// Pings the watchdog at half its timeout from the event loop, which wakes up
// at deadline() at the latest.
class Watchdog {
  public:
    explicit Watchdog(std::optional<std::chrono::microseconds> timeout = watchdog_timeout())
        : interval_(timeout ? std::optional<std::chrono::microseconds>(*timeout / 2)
                            : std::nullopt) {}

    bool enabled() const { return interval_.has_value(); }
    // Sends WATCHDOG=1 when due (the first call always is). Returns whether it sent.
    bool kick(MonoTime now);
    // When kick() next wants to run; nullopt when the watchdog is off.
    std::optional<MonoTime> deadline() const;

  private:
    std::optional<std::chrono::microseconds> interval_;
    std::optional<MonoTime> next_;
};

}  // namespace tg::sd
