#include "units.h"

#include <array>
#include <limits>

namespace tg {
namespace {

struct Unit {
    std::string_view name;
    std::uint64_t factor;
};

// Longest names first so "ms" is not read as "m" followed by garbage.
constexpr std::array<Unit, 6> kDurationUnits{{
    {"ms", 1},
    {"d", 86'400'000},
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"", 0},
}};

bool read_digits(std::string_view text, std::size_t& i, std::uint64_t& out) {
    const std::size_t start = i;
    out = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        const auto digit = static_cast<std::uint64_t>(text[i] - '0');
        if (out > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return false;
        out = out * 10 + digit;
        ++i;
    }
    return i > start;
}

void set_why(std::string* why, std::string text) {
    if (why) *why = std::move(text);
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::string* why) {
    const std::string quoted = "'" + std::string(text) + "'";
    if (text.empty()) {
        set_why(why, "empty duration (expected e.g. 250ms, 10s, 5m, 1h, 1m30s)");
        return std::nullopt;
    }
    if (text == "0") return std::chrono::milliseconds(0);
    std::size_t i = 0;
    std::uint64_t total = 0;
    std::uint64_t last_factor = std::numeric_limits<std::uint64_t>::max();
    while (i < text.size()) {
        std::uint64_t n = 0;
        if (!read_digits(text, i, n)) {
            set_why(why,
                    "invalid duration " + quoted + " (expected e.g. 250ms, 10s, 5m, 1h, 1m30s)");
            return std::nullopt;
        }
        const Unit* unit = nullptr;
        for (const Unit& u : kDurationUnits) {
            if (u.factor == 0) break;
            if (text.substr(i, u.name.size()) == u.name) {
                unit = &u;
                break;
            }
        }
        if (!unit) {
            set_why(why, "invalid duration " + quoted +
                             ": a number needs a unit (ms, s, m, h, d), e.g. 250ms, 10s, 1m30s");
            return std::nullopt;
        }
        if (unit->factor >= last_factor) {
            set_why(why, "invalid duration " + quoted + ": units must go from largest to smallest");
            return std::nullopt;
        }
        last_factor = unit->factor;
        i += unit->name.size();
        if (n > (std::numeric_limits<std::int64_t>::max() / 2 - total) / unit->factor) {
            set_why(why, "duration " + quoted + " is too large");
            return std::nullopt;
        }
        total += n * unit->factor;
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(total));
}

std::optional<std::uint64_t> parse_size(std::string_view text, std::string* why) {
    const std::string quoted = "'" + std::string(text) + "'";
    std::size_t i = 0;
    std::uint64_t n = 0;
    if (!read_digits(text, i, n)) {
        set_why(why, "invalid size " + quoted + " (expected e.g. 512KiB, 64MiB, 1GiB)");
        return std::nullopt;
    }
    const std::string_view suffix = text.substr(i);
    std::uint64_t factor = 0;
    if (suffix.empty() || suffix == "B")
        factor = 1;
    else if (suffix == "KiB")
        factor = 1ull << 10;
    else if (suffix == "MiB")
        factor = 1ull << 20;
    else if (suffix == "GiB")
        factor = 1ull << 30;
    else if (suffix == "TiB")
        factor = 1ull << 40;
    if (factor == 0) {
        set_why(why, "invalid size " + quoted + ": unit must be B, KiB, MiB, GiB or TiB");
        return std::nullopt;
    }
    if (n > std::numeric_limits<std::uint64_t>::max() / factor) {
        set_why(why, "size " + quoted + " is too large");
        return std::nullopt;
    }
    return n * factor;
}

std::string format_duration(std::chrono::milliseconds d) {
    auto ms = static_cast<std::uint64_t>(d.count() < 0 ? 0 : d.count());
    if (ms == 0) return "0s";
    std::string out;
    for (const Unit& u : {kDurationUnits[1], kDurationUnits[2], kDurationUnits[3],
                          kDurationUnits[4], kDurationUnits[0]}) {
        if (ms >= u.factor) {
            out += std::to_string(ms / u.factor);
            out += u.name;
            ms %= u.factor;
        }
    }
    return out;
}

}  // namespace tg
