#include "event_publisher.h"

#include <algorithm>

#include "core/json_writer.h"
#include "core/utf8.h"
#include "envelope.h"

namespace tg {
namespace {

// At most `max` bytes of `s`, not cutting a UTF-8 sequence in two.
std::string utf8_prefix(const std::string& s, std::size_t max) {
    if (s.size() <= max) return s;
    return s.substr(0, utf8_cut(s, max)) + "…";
}

}  // namespace

EventPublisher::EventPublisher(const Config& cfg, std::string base, const Clock& clock,
                               Outbox& outbox, MqttLink& link)
    : cfg_(cfg), base_(std::move(base)), clock_(clock), outbox_(outbox), link_(link) {}

void EventPublisher::append(const outbox::Record& rec) {
    AppendResult res = outbox_.append(rec);
    if (!res.stored) {
        // The event itself could not be kept: it is part of the drop report.
        log_debug("gateway", "event " + std::to_string(rec.seq) + " not stored");
    }
    handle_drops(res.drops);
    link_.kick();
}

void EventPublisher::handle_drops(const std::vector<DropReport>& drops) {
    // Drops are summed up and reported later, once the link is up: a dead
    // letter written while the outbox overflows would be the next thing
    // dropped. The log says it at most once a minute.
    for (const DropReport& d : drops) {
        DropBacklog& b = drop_backlog_;
        if (b.count == 0) b.first_seq = d.first_seq;
        b.first_seq = std::min(b.first_seq, d.first_seq);
        b.last_seq = std::max(b.last_seq, d.last_seq);
        b.count += d.count;
        ++b.batches;
        b.why = drop_reason_word(d.reason);
        b.unlogged += d.count;
    }
    if (drop_backlog_.unlogged > 0 &&
        drop_log_limiter_.allow("drops", clock_.monotonic()).has_value()) {
        log_warn("outbox", std::to_string(drop_backlog_.unlogged) +
                               " undelivered event(s) dropped (" + drop_backlog_.why +
                               ", outbox.max_bytes " + std::to_string(cfg_.outbox.max_bytes) +
                               "), oldest first");
        drop_backlog_.unlogged = 0;
    }
}

void EventPublisher::flush_drop_report(MonoTime now) {
    DropBacklog& b = drop_backlog_;
    if (b.count == 0 || !link_.connected() || now < b.next_report) return;
    const std::string detail = std::to_string(b.count) + " undelivered event(s) dropped, seq " +
                               std::to_string(b.first_seq) + ".." + std::to_string(b.last_seq) +
                               " (" + b.why + ", outbox.max_bytes " +
                               std::to_string(cfg_.outbox.max_bytes) + " bytes)";
    const unsigned long folded = b.batches > 0 ? static_cast<unsigned long>(b.batches - 1) : 0;
    b = DropBacklog{};
    b.next_report = now + std::chrono::minutes(1);
    emit_deadletter("outbox", "outbox_full", detail, folded);
}

std::optional<MonoTime> EventPublisher::drop_report_due(MonoTime now) const {
    if (drop_backlog_.count == 0 || !link_.connected()) return std::nullopt;
    return std::max(now, drop_backlog_.next_report);
}

void EventPublisher::report_overload(const EventQueue::Shed& shed, std::uint64_t link_dropped,
                                     bool quiet) {
    // The input lane sheds on Paho's thread and the link's memory queue
    // drops on the loop's; both are told here: the counters in metrics, a
    // dead letter and a log line at most once a minute (the deadletter
    // limiter), each naming the total so far.
    if (link_dropped != counters_.dropped_messages) {
        const std::uint64_t fresh = link_dropped - counters_.dropped_messages;
        counters_.dropped_messages = link_dropped;
        if (!quiet) {
            deadletter("mqtt.queue", "overload",
                       std::to_string(fresh) + " outgoing message(s) dropped (" +
                           std::to_string(link_dropped) +
                           " since start): publish actions, status and metrics are made faster "
                           "than the broker takes them; the oldest go first");
        }
    }
    if (shed.count == counters_.overload) return;
    const std::uint64_t fresh = shed.count - counters_.overload;
    counters_.overload = shed.count;
    if (quiet) return;
    deadletter("mqtt", "overload",
               std::to_string(fresh) + " incoming message(s) shed (" + std::to_string(shed.count) +
                   " since start): the event loop fell behind and mqtt.input_buffer (" +
                   std::to_string(cfg_.mqtt.input_buffer) + " bytes) is full; last on " +
                   utf8_prefix(shed.last_topic, 200));
}

void EventPublisher::deadletter(const std::string& source, const std::string& reason,
                                const std::string& detail) {
    // At most one per source and reason per minute; the next one carries the
    // count of those folded in. The log follows the same limit.
    auto held = deadletter_limiter_.allow(source + "\n" + reason, clock_.monotonic());
    if (!held) return;
    emit_deadletter(source, reason, detail, *held);
}

void EventPublisher::emit_deadletter(const std::string& source, const std::string& reason,
                                     const std::string& detail, unsigned long suppressed) {
    ++counters_.deadletter;
    log_warn("gateway",
             source + ": " + reason + ": " + detail +
                 (suppressed ? " (" + std::to_string(suppressed) + " more suppressed)" : ""));
    const std::uint64_t seq = outbox_.next_seq();
    const WallTime ts = clock_.wall();
    append(outbox::Record{
        seq,
        cfg_.mqtt.qos,
        {{base_ + "/deadletter", false}},
        deadletter_envelope(cfg_.gateway.id, seq, source, ts, reason, detail, suppressed)});
    if (recent_deadletters_.size() == kRecentDeadLetters) {
        recent_deadletters_.erase(recent_deadletters_.begin());
    }
    recent_deadletters_.push_back({ts, source, reason, detail});
}

std::vector<EventPublisher::Metric> EventPublisher::metrics() const {
    const MqttLink::Stats& st = link_.stats();
    const Outbox::Stats ob = outbox_.stats();
    return {
        {"events_in", "readings taken in", true, counters_.events_in},
        {"published", "messages handed to the broker", true, st.published},
        {"acked", "messages the broker acknowledged", true, st.acked},
        {"outbox_depth", "events in the outbox not yet acknowledged", false, ob.depth},
        {"outbox_bytes", "bytes of the outbox not yet acknowledged", false, ob.bytes},
        {"dropped", "events the full outbox gave up", true, ob.dropped},
        {"corrupt_records", "outbox records found corrupt", true, ob.corrupt_records},
        {"lost_records", "outbox records lost to corruption", true, ob.lost_records},
        {"bad_readings", "readings refused (range, type, driver error)", true,
         counters_.bad_readings},
        {"deadletter", "dead letters", true, counters_.deadletter},
        {"reconnects", "connections to the broker lost", true, st.reconnects},
        {"rules_fired", "rule firings", true, counters_.rules_fired},
        {"overload", "broker input shed by a full event queue", true, counters_.overload},
        {"dropped_messages", "non-event messages dropped by a full memory queue", true, st.dropped},
        {"circuit_open", "calls an open circuit breaker skipped", true, counters_.circuit_open},
        {"sagas_skipped", "firings whose saga was still running", true, counters_.sagas_skipped},
    };
}

std::string EventPublisher::metrics_json(MonoTime now, MonoTime started) const {
    JsonObject o;
    o.field("ts", std::string_view(format_rfc3339_ms(clock_.wall())));
    for (const Metric& m : metrics())
        o.field(m.name, m.value);
    o.field("uptime_s",
            static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::seconds>(now - started).count()));
    return std::move(o).finish();
}

}  // namespace tg
