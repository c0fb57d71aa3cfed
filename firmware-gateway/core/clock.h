// Clock: monotonic time for durations and wall time for event timestamps.
// The daemon uses RealClock; tests and replay use VirtualClock, so the same
// code behaves identically live and on recorded data.
#pragma once

#include <chrono>
#include <mutex>

namespace tg {

using MonoTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
  public:
    virtual ~Clock() = default;
    virtual MonoTime monotonic() const = 0;
    virtual WallTime wall() const = 0;
};

class RealClock final : public Clock {
  public:
    MonoTime monotonic() const override { return std::chrono::steady_clock::now(); }
    WallTime wall() const override { return std::chrono::system_clock::now(); }
};

// Starts at the given wall time; both clocks move only when told to.
class VirtualClock final : public Clock {
  public:
    explicit VirtualClock(WallTime start = WallTime{}) : wall_(start) {}
    MonoTime monotonic() const override;
    WallTime wall() const override;
    void advance(std::chrono::nanoseconds d);
    // Sets the wall clock alone, as an NTP step does; monotonic time is untouched.
    void set_wall(WallTime t);

  private:
    mutable std::mutex mutex_;
    MonoTime mono_{};
    WallTime wall_;
};

// RFC 3339 UTC with milliseconds: 2026-11-26T17:15:53.123Z
std::string format_rfc3339_ms(WallTime t);

}  // namespace tg
