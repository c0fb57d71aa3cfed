// Clocks and time formatting: RFC 3339 timestamps (SPEC §4), the virtual
// clock used by replay and tests (SPEC §5.3), and the log rate limiter.
#include <catch2/catch.hpp>

#include "core/clock.h"
#include "core/log.h"

using namespace std::chrono_literals;

namespace {
tg::WallTime at_ms(long long ms) {
    return tg::WallTime(std::chrono::milliseconds(ms));
}
}  // namespace

TEST_CASE("format_rfc3339_ms", "[core]") {
    CHECK(tg::format_rfc3339_ms(tg::WallTime{}) == "1970-01-01T00:00:00.000Z");
    // 2026-11-26T17:15:53Z is 1795713353 s after the epoch.
    CHECK(tg::format_rfc3339_ms(at_ms(1'795'713'353'123)) == "2026-11-26T17:15:53.123Z");
    CHECK(tg::format_rfc3339_ms(at_ms(1'795'713'353'000)) == "2026-11-26T17:15:53.000Z");
    CHECK(tg::format_rfc3339_ms(at_ms(951'782'400'007)) == "2000-02-29T00:00:00.007Z");
    // Sub-millisecond parts are cut, not rounded.
    CHECK(tg::format_rfc3339_ms(at_ms(1'999) + 999us) == "1970-01-01T00:00:01.999Z");
    // Before 1970 the millisecond part still counts forward within its second.
    CHECK(tg::format_rfc3339_ms(at_ms(-1)) == "1969-12-31T23:59:59.999Z");
    CHECK(tg::format_rfc3339_ms(at_ms(-1'500)) == "1969-12-31T23:59:58.500Z");
    CHECK(tg::format_rfc3339_ms(at_ms(-1'000)) == "1969-12-31T23:59:59.000Z");
}

TEST_CASE("VirtualClock moves only when told", "[core]") {
    const tg::WallTime start = at_ms(1'795'713'353'000);
    tg::VirtualClock clock(start);
    const tg::MonoTime mono0 = clock.monotonic();
    CHECK(clock.wall() == start);
    CHECK(clock.monotonic() == mono0);

    clock.advance(1500ms);
    CHECK(clock.wall() == start + 1500ms);
    CHECK(clock.monotonic() == mono0 + 1500ms);

    SECTION("set_wall steps the wall clock and leaves monotonic time alone") {
        const tg::WallTime ntp = at_ms(1'800'000'000'000);
        clock.set_wall(ntp);
        CHECK(clock.wall() == ntp);
        CHECK(clock.monotonic() == mono0 + 1500ms);
        clock.advance(2s);
        CHECK(clock.wall() == ntp + 2s);
        CHECK(clock.monotonic() == mono0 + 3500ms);
    }
    SECTION("a step backwards does not move monotonic time back") {
        clock.set_wall(tg::WallTime{});
        CHECK(clock.wall() == tg::WallTime{});
        CHECK(clock.monotonic() == mono0 + 1500ms);
    }
}

TEST_CASE("RateLimiter lets one message through per period and counts the rest", "[core]") {
    tg::RateLimiter limiter(60s);
    const tg::MonoTime t0{};

    REQUIRE(limiter.allow("w1", t0).has_value());
    CHECK(*limiter.allow("w2", t0) == 0);  // another key is independent
    CHECK_FALSE(limiter.allow("w1", t0 + 1s).has_value());
    CHECK_FALSE(limiter.allow("w1", t0 + 59s).has_value());
    CHECK_FALSE(limiter.allow("w1", t0 + 59999ms).has_value());

    const auto after = limiter.allow("w1", t0 + 60s);
    REQUIRE(after.has_value());
    CHECK(*after == 3);

    // The count starts over after a pass, and the period runs from that pass.
    CHECK_FALSE(limiter.allow("w1", t0 + 61s).has_value());
    CHECK_FALSE(limiter.allow("w1", t0 + 119s).has_value());
    CHECK(limiter.allow("w1", t0 + 120s) == std::optional<unsigned long>(2));
    CHECK(limiter.allow("w1", t0 + 200s) == std::optional<unsigned long>(0));
}
