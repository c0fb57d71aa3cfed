// The event envelope of SPEC §4: every event the gateway creates (readings,
// rule events, output events, dead letters) starts with the same fields.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/json_writer.h"
#include "core/value.h"

namespace tg {

inline constexpr int kSchemaVersion = 1;

// Starts an envelope: v, id, type, gateway, seq, source, ts. Callers add the
// type's own fields (value, unit, rule, …) and finish() it.
JsonObject begin_envelope(std::string_view gateway, std::uint64_t seq, std::string_view type,
                          std::string_view source, WallTime ts);

// A complete `reading` envelope; `unit` is left out when empty.
std::string reading_envelope(std::string_view gateway, std::uint64_t seq, std::string_view sensor,
                             WallTime ts, const Value& value, std::string_view unit);

// A complete `deadletter` envelope (reason, detail, suppressed when > 0).
std::string deadletter_envelope(std::string_view gateway, std::uint64_t seq,
                                std::string_view source, WallTime ts, std::string_view reason,
                                std::string_view detail, unsigned long suppressed);

}  // namespace tg
