// PoisonDetector: tells an event the broker refuses by closing the connection
// from a connection that fails for other reasons. MQTT 3.1.1 has no way to
// refuse a publish (no PUBACK reason code), so some brokers close the
// connection instead: RabbitMQ on an ACL denial, Mosquitto on a packet over
// max_packet_size. Sent again after every reconnect, such an event would
// hold the outbox back forever; it must be given up and dead-lettered like
// an MQTT 5 refusal -- and a network outage must never be taken for one.
//
// The rule. A loss points at an event when that event was sent alone
// (nothing else unacknowledged in flight: every message sent before it was
// accepted), nothing was sent after it, and the loss came at most `quick`
// after it was sent: a strike. `strikes` strikes in a row on the same event
// (no ack of it in between, and no loss in between that points elsewhere or
// nowhere clearly; a loss with no event in flight at all is neutral) and it
// is refused. To get there, after a connection is lost while events were in
// flight the link probes: it sends the events that were in flight then one
// at a time, each only once everything sent before it (the birth, metrics,
// the previous event) has been acknowledged.
//
// Why probing: brokers acknowledge asynchronously (RabbitMQ confirms a
// publish after routing it) and close the connection at once on a refused
// one, so with a window of events in flight the lowest unacknowledged one
// is not necessarily the culprit; and a birth or metrics message the broker
// refused would otherwise be blamed on the events sent with it. A network
// outage gives at most one strike: the connection is not back until the
// network is, and then the event is acknowledged.
//
// Pure logic: no MQTT, no clock of its own (times are passed in), so it is
// unit-tested on its own. Owned by MqttLink, on the event loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/clock.h"

namespace tg {

class PoisonDetector {
  public:
    struct Verdict {
        std::uint64_t seq;
        std::string topic;  // where it was sent first, for the dead letter
        int strikes;
    };

    explicit PoisonDetector(int strikes = 5,
                            std::chrono::milliseconds quick = std::chrono::seconds(3))
        : max_strikes_(strikes), quick_(quick) {}

    // A connection is up: nothing of it is in flight yet.
    void on_connected();
    // An event (all its destinations) was handed to the client; `alone`:
    // nothing else was in flight, unacknowledged, when it was.
    void on_record_sent(std::uint64_t seq, const std::string& topic, bool alone, MonoTime now);
    // Any other message (status, metrics, action publishes) was handed to it.
    void on_other_sent();
    // An event is settled: acknowledged by the broker, or given up.
    void on_record_settled(std::uint64_t seq);
    // The connection was lost. Returns the event to give up on when this
    // loss is its last strike.
    std::optional<Verdict> on_connection_lost(MonoTime now);

    // True while events must go one at a time: the events in flight at a
    // loss are not all settled (`cursor`: every seq up to it is settled).
    bool probing(std::uint64_t cursor) const { return cursor < probe_until_; }

    std::uint64_t suspect() const { return suspect_; }
    int strikes() const { return strikes_; }

  private:
    struct Sent {
        MonoTime at;
        std::uint64_t order;
        bool alone;
        std::string topic;
    };

    int max_strikes_;
    std::chrono::milliseconds quick_;
    std::map<std::uint64_t, Sent> in_flight_;  // events of this connection, not settled
    std::uint64_t order_ = 0;                  // sends of this connection, counted
    std::uint64_t last_other_ = 0;             // order of the last other message, 0: none
    std::uint64_t probe_until_ = 0;
    std::uint64_t suspect_ = 0;
    int strikes_ = 0;
};

}  // namespace tg
