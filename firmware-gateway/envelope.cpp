#include "envelope.h"

namespace tg {

JsonObject begin_envelope(std::string_view gateway, std::uint64_t seq, std::string_view type,
                          std::string_view source, WallTime ts) {
    std::string id;
    id.reserve(gateway.size() + 21);
    id += gateway;
    id += ':';
    id += std::to_string(seq);
    JsonObject o;
    o.field("v", kSchemaVersion)
        .field("id", std::string_view(id))
        .field("type", type)
        .field("gateway", gateway)
        .field("seq", seq)
        .field("source", source)
        .field("ts", std::string_view(format_rfc3339_ms(ts)));
    return o;
}

std::string reading_envelope(std::string_view gateway, std::uint64_t seq, std::string_view sensor,
                             WallTime ts, const Value& value, std::string_view unit) {
    JsonObject o = begin_envelope(gateway, seq, "reading", sensor, ts);
    o.value_field("value", value);
    if (!unit.empty()) o.field("unit", unit);
    return std::move(o).finish();
}

std::string deadletter_envelope(std::string_view gateway, std::uint64_t seq,
                                std::string_view source, WallTime ts, std::string_view reason,
                                std::string_view detail, unsigned long suppressed) {
    JsonObject o = begin_envelope(gateway, seq, "deadletter", source, ts);
    o.field("reason", reason).field("detail", detail);
    if (suppressed > 0) o.field("suppressed", static_cast<std::uint64_t>(suppressed));
    return std::move(o).finish();
}

}  // namespace tg
