#include "clock.h"

#include <cstdio>
#include <ctime>
#include <string>

namespace tg {

MonoTime VirtualClock::monotonic() const {
    std::lock_guard lock(mutex_);
    return mono_;
}

WallTime VirtualClock::wall() const {
    std::lock_guard lock(mutex_);
    return wall_;
}

void VirtualClock::advance(std::chrono::nanoseconds d) {
    std::lock_guard lock(mutex_);
    mono_ += d;
    wall_ += std::chrono::duration_cast<WallTime::duration>(d);
}

void VirtualClock::set_wall(WallTime t) {
    std::lock_guard lock(mutex_);
    wall_ = t;
}

std::string format_rfc3339_ms(WallTime t) {
    using namespace std::chrono;
    const auto ms_total = duration_cast<milliseconds>(t.time_since_epoch()).count();
    long long secs = ms_total / 1000;
    long long ms = ms_total % 1000;
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    const std::time_t tt = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    return buf;
}

}  // namespace tg
