// EventPublisher: where every envelope the gateway makes goes: its seq from
// the outbox, the append, the kick to the MQTT link; what the outbox had to
// drop (summed up, logged once a minute, dead-lettered once the broker is
// back); dead letters, at most one per source and reason a minute; the
// counters and the <p>/metrics message. Owned by the event loop thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "core/clock.h"
#include "core/log.h"
#include "event_queue.h"
#include "mqtt_link.h"
#include "outbox.h"

namespace tg {

class EventPublisher {
  public:
    // Counted by whoever sees it happen; published in <p>/metrics.
    struct Counters {
        std::uint64_t events_in = 0;
        std::uint64_t bad_readings = 0;
        std::uint64_t deadletter = 0;
        std::uint64_t rules_fired = 0;
        std::uint64_t overload = 0;          // broker input shed (EventQueue's input lane full)
        std::uint64_t dropped_messages = 0;  // link's memory queue drops, as last reported
        std::uint64_t circuit_open = 0;      // calls an open circuit breaker skipped
        std::uint64_t sagas_skipped = 0;     // firings whose saga was still running
    };

    EventPublisher(const Config& cfg, std::string base, const Clock& clock, Outbox& outbox,
                   MqttLink& link);

    // The seq the next envelope gets.
    std::uint64_t next_seq() const { return outbox_.next_seq(); }
    // Appends an event to the outbox and lets the link send it.
    void append(const outbox::Record& rec);
    // Logs and (once the broker is reachable) dead-letters what the outbox gave up.
    void handle_drops(const std::vector<DropReport>& drops);
    void flush_drop_report(MonoTime now);
    // When flush_drop_report has something to say, if the link is up.
    std::optional<MonoTime> drop_report_due(MonoTime now) const;

    // A dead letter on <p>/deadletter and a log line, at most one per source
    // and reason a minute (the next one counts those folded in).
    void deadletter(const std::string& source, const std::string& reason,
                    const std::string& detail);
    // What the event queue shed and the link's memory queue dropped since
    // the last call: counted, and dead-lettered unless `quiet` (shutdown).
    void report_overload(const EventQueue::Shed& shed, std::uint64_t link_dropped, bool quiet);

    Counters& counters() { return counters_; }

    // One figure of <p>/metrics (and of the HTTP /metrics, where a counter is
    // tidegate_<name>_total and a gauge tidegate_<name>).
    struct Metric {
        const char* name;
        const char* help;
        bool counter;  // only ever grows (until a restart)
        std::uint64_t value;
    };
    // Every figure but the uptime, in <p>/metrics order.
    std::vector<Metric> metrics() const;
    // The <p>/metrics message: ts, metrics(), uptime_s.
    std::string metrics_json(MonoTime now, MonoTime started) const;

    // The latest dead letters (at most kRecentDeadLetters), oldest first.
    struct DeadLetter {
        WallTime ts;
        std::string source, reason, detail;
    };
    static constexpr std::size_t kRecentDeadLetters = 20;
    const std::vector<DeadLetter>& recent_deadletters() const { return recent_deadletters_; }

  private:
    void emit_deadletter(const std::string& source, const std::string& reason,
                         const std::string& detail, unsigned long suppressed);

    const Config& cfg_;
    const std::string base_;  // <topic_prefix>/<gateway.id>
    const Clock& clock_;
    Outbox& outbox_;
    MqttLink& link_;
    // Outbox drops not yet reported on <p>/deadletter.
    struct DropBacklog {
        std::uint64_t count = 0, first_seq = 0, last_seq = 0, batches = 0, unlogged = 0;
        std::string why;
        MonoTime next_report{};
    } drop_backlog_;
    RateLimiter drop_log_limiter_{std::chrono::minutes(1)};
    RateLimiter deadletter_limiter_{std::chrono::minutes(1)};
    Counters counters_;
    std::vector<DeadLetter> recent_deadletters_;
};

}  // namespace tg
