// Duration and size literals (SPEC §2): what is accepted, what is refused and
// why, and that formatted durations read back unchanged.
#include <catch2/catch.hpp>
#include <string>

#include "core/units.h"

using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

// The reason parse_duration gives for refusing `text`.
std::string duration_why(const std::string& text) {
    std::string why;
    const auto d = tg::parse_duration(text, &why);
    CHECK_FALSE(d.has_value());
    return why;
}

std::string size_why(const std::string& text) {
    std::string why;
    const auto s = tg::parse_size(text, &why);
    CHECK_FALSE(s.has_value());
    return why;
}

}  // namespace

TEST_CASE("durations", "[core]") {
    CHECK(tg::parse_duration("250ms") == milliseconds(250));
    CHECK(tg::parse_duration("10s") == milliseconds(10s));
    CHECK(tg::parse_duration("5m") == milliseconds(5min));
    CHECK(tg::parse_duration("1h") == milliseconds(1h));
    CHECK(tg::parse_duration("1d") == milliseconds(24h));
    CHECK(tg::parse_duration("1m30s") == milliseconds(90s));
    CHECK(tg::parse_duration("1h30m") == milliseconds(90min));
    CHECK(tg::parse_duration("1d2h3m4s5ms") == milliseconds(24h + 2h + 3min + 4s + 5ms));
    CHECK(tg::parse_duration("0") == milliseconds(0));
    CHECK(tg::parse_duration("0s") == milliseconds(0));
    CHECK(tg::parse_duration("1500ms") == milliseconds(1500));
}

TEST_CASE("durations that are refused, with a reason", "[core]") {
    CHECK(duration_why("") == "empty duration (expected e.g. 250ms, 10s, 5m, 1h, 1m30s)");
    CHECK(duration_why("5") ==
          "invalid duration '5': a number needs a unit (ms, s, m, h, d), e.g. 250ms, 10s, 1m30s");
    CHECK(duration_why("5 s") ==
          "invalid duration '5 s': a number needs a unit (ms, s, m, h, d), e.g. 250ms, 10s, "
          "1m30s");
    CHECK(duration_why("s") == "invalid duration 's' (expected e.g. 250ms, 10s, 5m, 1h, 1m30s)");
    CHECK(duration_why("1s1m") ==
          "invalid duration '1s1m': units must go from largest to smallest");
    CHECK(duration_why("1s1s") ==
          "invalid duration '1s1s': units must go from largest to smallest");
    CHECK(duration_why("1x") ==
          "invalid duration '1x': a number needs a unit (ms, s, m, h, d), e.g. 250ms, 10s, "
          "1m30s");
    CHECK(duration_why("-1s") ==
          "invalid duration '-1s' (expected e.g. 250ms, 10s, 5m, 1h, 1m30s)");
    CHECK(duration_why("1.5s") ==
          "invalid duration '1.5s': a number needs a unit (ms, s, m, h, d), e.g. 250ms, 10s, "
          "1m30s");
    // Too large for the millisecond count, and too large for the digits alone.
    CHECK(duration_why("999999999999999d") == "duration '999999999999999d' is too large");
    CHECK_FALSE(tg::parse_duration("99999999999999999999999s").has_value());
    // Without a `why`, refusal is still just nullopt.
    CHECK_FALSE(tg::parse_duration("soon").has_value());
}

TEST_CASE("sizes", "[core]") {
    CHECK(tg::parse_size("512KiB") == 512u * 1024);
    CHECK(tg::parse_size("64MiB") == 64u * 1024 * 1024);
    CHECK(tg::parse_size("1GiB") == 1ull << 30);
    CHECK(tg::parse_size("2TiB") == 2ull << 40);
    CHECK(tg::parse_size("100B") == 100u);
    CHECK(tg::parse_size("100") == 100u);
    CHECK(tg::parse_size("0") == 0u);
}

TEST_CASE("sizes that are refused, with a reason", "[core]") {
    CHECK(size_why("1KB") == "invalid size '1KB': unit must be B, KiB, MiB, GiB or TiB");
    CHECK(size_why("MiB") == "invalid size 'MiB' (expected e.g. 512KiB, 64MiB, 1GiB)");
    CHECK(size_why("1.5MiB") == "invalid size '1.5MiB': unit must be B, KiB, MiB, GiB or TiB");
    CHECK(size_why("") == "invalid size '' (expected e.g. 512KiB, 64MiB, 1GiB)");
    CHECK(size_why("-1") == "invalid size '-1' (expected e.g. 512KiB, 64MiB, 1GiB)");
    CHECK(size_why("99999999999GiB") == "size '99999999999GiB' is too large");
    CHECK_FALSE(tg::parse_size("99999999999999999999999").has_value());
}

TEST_CASE("format_duration gives the shortest text and reads back", "[core]") {
    CHECK(tg::format_duration(0ms) == "0s");
    CHECK(tg::format_duration(250ms) == "250ms");
    CHECK(tg::format_duration(90s) == "1m30s");
    CHECK(tg::format_duration(milliseconds(1h)) == "1h");
    CHECK(tg::format_duration(milliseconds(25h)) == "1d1h");
    CHECK(tg::format_duration(milliseconds(24h + 1h + 1min + 1s + 1ms)) == "1d1h1m1s1ms");
    CHECK(tg::format_duration(-5ms) == "0s");
    for (const milliseconds d :
         {1ms, 999ms, 1000ms, 1001ms, milliseconds(59s), milliseconds(61s), milliseconds(3599s),
          milliseconds(86'399'999), milliseconds(86'400'000), milliseconds(7 * 86'400'000 + 5)}) {
        INFO(d.count() << " ms as " << tg::format_duration(d));
        CHECK(tg::parse_duration(tg::format_duration(d)) == d);
    }
}
