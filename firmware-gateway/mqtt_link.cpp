#include "mqtt_link.h"

#include <algorithm>

#include "core/log.h"
#include "core/units.h"

namespace tg {
namespace {

constexpr std::chrono::milliseconds kBackoffMax{30'000};

}  // namespace

MqttLink::MqttLink(const MqttConfig& cfg, std::unique_ptr<MqttClient> client,
                   std::string status_topic)
    : cfg_(cfg),
      client_(std::move(client)),
      status_topic_(std::move(status_topic)),
      jitter_(static_cast<unsigned>(std::random_device{}())) {
    uris_ = cfg_.uris.empty() ? std::vector<std::string>{cfg_.uri} : cfg_.uris;
}

MqttLink::~MqttLink() = default;

void MqttLink::set_limits(std::size_t max_inflight_records, std::size_t max_queued_bytes) {
    max_inflight_ = std::max<std::size_t>(1, max_inflight_records);
    max_queued_bytes_ = max_queued_bytes;
}

void MqttLink::start(MonoTime now) {
    connect(now);
}

void MqttLink::connect(MonoTime now) {
    reconnect_at_.reset();
    connecting_ = true;
    std::string why;
    // Each record has up to a few destinations; plus room for status/metrics.
    if (!client_->connect(static_cast<int>(max_inflight_ * 4 + 16), current_uri(), why)) {
        connecting_ = false;
        on_connect_failed(why, now);
    }
}

void MqttLink::schedule_reconnect(MonoTime now) {
    // Full backoff with ±20 % jitter, so a fleet restarted together does not
    // reconnect in lockstep.
    std::uniform_real_distribution<double> spread(0.8, 1.2);
    const auto delay = std::chrono::milliseconds(
        static_cast<long long>(static_cast<double>(backoff_.count()) * spread(jitter_)));
    reconnect_at_ = now + delay;
    log_info("mqtt", "reconnecting to " + brokers_text() + " in " + format_duration(delay));
    backoff_ = std::min(backoff_ * 2, kBackoffMax);
}

std::string MqttLink::brokers_text() const {
    if (cfg_.uris.size() <= 1) return cfg_.uri;
    std::string s;
    for (const std::string& u : cfg_.uris)
        s += (s.empty() ? "" : ", ") + u;
    return s;
}

void MqttLink::on_connected() {
    connecting_ = false;
    connected_ = true;
    backoff_ = std::chrono::milliseconds(1000);
    failures_in_row_ = 0;
    broker_ = current_uri();
    log_info("mqtt", "connected to " + broker_ + " as " + cfg_.client_id);
    poison_.on_connected();
    if (!birth_.empty()) {
        // The birth goes first: subscribers see the gateway online before its backlog.
        pending_.push_front(Entry{next_id_++, OutMessage{status_topic_, birth_, 1, true}});
        pending_bytes_ += status_topic_.size() + birth_.size();
    }
    for (const auto& [filter, qos] : subscriptions_)
        send_subscribe(filter, qos);
    pump();
}

void MqttLink::subscribe(const std::string& filter, int qos) {
    subscriptions_.emplace_back(filter, qos);
    if (connected_) send_subscribe(filter, qos);
}

void MqttLink::send_subscribe(const std::string& filter, int qos) {
    std::string why;
    if (!client_->subscribe(filter, qos, why)) {
        // The connection is going away; the next connect subscribes again.
        log_warn("mqtt", "subscribe to " + filter + " failed: " + why);
    }
}

void MqttLink::on_connect_failed(const std::string& why, MonoTime now) {
    connecting_ = false;
    connected_ = false;
    if (uri_index_ + 1 < uris_.size()) {
        // The next broker of the list at once; the backoff is per round.
        log_warn("mqtt", "connect to " + current_uri() + " failed: " + why + "; trying " +
                             uris_[uri_index_ + 1]);
        ++uri_index_;
        connect(now);
        return;
    }
    std::string msg = "connect to " + current_uri() + " failed: " + why;
    if (uris_.size() > 1) msg += " (every broker of mqtt.uri failed)";
    uri_index_ = 0;
    if (msg.find("ssl://") != std::string::npos) {
        msg +=
            "; for TLS check the broker's certificate against tls.ca_file (or the system "
            "trust store), its host name (verify_hostname) and cert_file/key_file";
    }
    if (cfg_.version == 5 && why.find("(rc -1)") != std::string::npos) {
        // A broker without MQTT 5 (RabbitMQ before 3.13, for one) drops the
        // CONNECT without a CONNACK, which Paho reports like a refused socket.
        msg += "; if the broker is reachable, it may not speak MQTT 5: try mqtt.version 3.1.1";
    }
    ++failures_in_row_;
    // Log every failure at first, then every tenth: a broker down for a day
    // should not fill the journal.
    if (failures_in_row_ <= 3 || failures_in_row_ % 10 == 0) log_warn("mqtt", msg);
    schedule_reconnect(now);
}

void MqttLink::on_connection_lost(const std::string& why, MonoTime now) {
    if (!connected_) return;
    connected_ = false;
    ++stats_.reconnects;
    log_warn("mqtt", "connection to " + broker_ + " lost: " + why);
    uri_index_ = 0;  // a reconnect tries the list from its start
    const auto poison = poison_.on_connection_lost(now);
    requeue_inflight();
    forget_records();
    if (poison) {
        give_up(poison->seq, poison->topic,
                "the broker closed the connection right after it was sent, each time: " + why);
    } else if (poison_.strikes() > 0) {
        log_warn("mqtt", "the connection was lost right after event seq " +
                             std::to_string(poison_.suspect()) + " was sent alone (" +
                             std::to_string(poison_.strikes()) + " of " +
                             std::to_string(kMaxAttempts) + " times before it counts as refused)");
    }
    schedule_reconnect(now);
}

void MqttLink::requeue_inflight() {
    // Unacknowledged messages go back to the front in their original order:
    // they are sent again after the reconnect (at-least-once). One that was
    // in flight at kMaxAttempts losses in a row is given up: under MQTT 3.1.1
    // a broker refuses a publish by closing the connection, and resending it
    // forever would keep the link down for everything else.
    for (auto it = inflight_.rbegin(); it != inflight_.rend(); ++it) {
        Entry& e = it->second;
        if (++e.losses >= kMaxAttempts) {
            give_up_message(e, "the connection was lost each time it was in flight");
            continue;
        }
        pending_bytes_ += e.msg.topic.size() + e.msg.payload.size();
        pending_.push_front(std::move(e));
    }
    inflight_.clear();
}

void MqttLink::give_up_message(const Entry& e, const std::string& why) {
    log_warn("mqtt", "giving up on a message to " + e.msg.topic + " after " +
                         std::to_string(kMaxAttempts) + " attempts: " + why);
    ++stats_.refused;
    if (on_refused_) on_refused_(0, e.msg.topic, why);
}

void MqttLink::forget_records() {
    // Whatever was in flight is sent again from the outbox after the
    // reconnect (at-least-once); late acks of the old tokens are ignored.
    record_tokens_.clear();
    record_remaining_.clear();
    if (outbox_) outbox_->rewind_unacked();
}

void MqttLink::on_delivered(std::uintptr_t id) {
    if (auto rt = record_tokens_.find(id); rt != record_tokens_.end()) {
        const std::uint64_t seq = rt->second.seq;
        record_tokens_.erase(rt);
        ++stats_.acked;
        auto rem = record_remaining_.find(seq);
        if (rem != record_remaining_.end() && --rem->second == 0) {
            record_remaining_.erase(rem);
            if (seq == refused_seq_) refused_attempts_ = 0;
            poison_.on_record_settled(seq);
            outbox_->ack(seq);
        }
        pump();
        return;
    }
    auto it = inflight_.find(id);
    if (it == inflight_.end()) return;  // from before a reconnect; it is queued again
    inflight_.erase(it);
    ++stats_.acked;
    pump();
}

void MqttLink::record_failed(std::uint64_t seq, const std::string& topic, const std::string& why,
                             MonoTime now) {
    if (seq != refused_seq_) {
        refused_seq_ = seq;
        refused_attempts_ = 0;
    }
    ++refused_attempts_;
    if (refused_attempts_ >= kMaxAttempts) {
        refused_attempts_ = 0;
        give_up(seq, topic, why);
        pump();
        return;
    }
    // Retry the whole unacknowledged window, in order, after a backoff.
    const auto delay = std::chrono::milliseconds(1000) * (1 << std::min(refused_attempts_ - 1, 4));
    log_warn("mqtt", "publish of event seq " + std::to_string(seq) + " to " + topic +
                         " failed: " + why + "; retrying in " + format_duration(delay));
    record_tokens_.clear();
    record_remaining_.clear();
    retry_at_ = now + delay;
}

void MqttLink::give_up(std::uint64_t seq, const std::string& topic, const std::string& why) {
    // Reported (dead letter) and acked so later events flow.
    log_warn("mqtt", "broker refused event seq " + std::to_string(seq) + " on " + topic + " " +
                         std::to_string(kMaxAttempts) + " times (" + why + "); giving up on it");
    ++stats_.refused;
    for (auto it = record_tokens_.begin(); it != record_tokens_.end();) {
        it = it->second.seq == seq ? record_tokens_.erase(it) : std::next(it);
    }
    record_remaining_.erase(seq);
    poison_.on_record_settled(seq);
    outbox_->ack(seq);
    if (on_refused_) on_refused_(seq, topic, why);
}

void MqttLink::on_delivery_failed(std::uintptr_t id, const std::string& why, bool refused,
                                  MonoTime now) {
    if (auto rt = record_tokens_.find(id); rt != record_tokens_.end()) {
        const RecordToken t = rt->second;
        if (refused) {
            record_failed(t.seq, t.topic, why, now);
        } else if (connected_ && !retry_at_) {
            // Not a refusal: the connection is failing. Its loss rewinds;
            // should it survive, resend the window shortly, in order.
            record_tokens_.clear();
            record_remaining_.clear();
            retry_at_ = now + std::chrono::seconds(1);
        }
        return;
    }
    auto it = inflight_.find(id);
    if (it == inflight_.end()) return;
    Entry e = std::move(it->second);
    inflight_.erase(it);
    // A refusal is the broker's answer about this message: the same limit as
    // for events. Other failures are the connection's, retried without limit.
    if (refused && ++e.refusals >= kMaxAttempts) {
        give_up_message(e, why);
        pump();
        return;
    }
    log_warn("mqtt", "publish to " + e.msg.topic + " failed: " + why + "; will retry");
    // Back in order among the queued ones (ids are increasing).
    auto pos =
        std::find_if(pending_.begin(), pending_.end(), [&](const Entry& p) { return p.id > e.id; });
    pending_bytes_ += e.msg.topic.size() + e.msg.payload.size();
    pending_.insert(pos, std::move(e));
    if (connected_) pump();
}

std::optional<MonoTime> MqttLink::next_deadline() const {
    if (reconnect_at_ && retry_at_) return std::min(*reconnect_at_, *retry_at_);
    return reconnect_at_ ? reconnect_at_ : retry_at_;
}

void MqttLink::on_timer(MonoTime now) {
    if (reconnect_at_ && now >= *reconnect_at_ && !connected_ && !connecting_) connect(now);
    if (retry_at_ && now >= *retry_at_) {
        retry_at_.reset();
        if (outbox_) outbox_->rewind_unacked();
        pump();
    }
}

void MqttLink::publish(OutMessage m) {
    pending_bytes_ += m.topic.size() + m.payload.size();
    pending_.push_back(Entry{next_id_++, std::move(m)});
    enforce_bound();
    pump();
}

void MqttLink::enforce_bound() {
    std::uint64_t dropped = 0;
    while (pending_bytes_ > max_queued_bytes_ && pending_.size() > 1) {
        const Entry& e = pending_.front();
        pending_bytes_ -= e.msg.topic.size() + e.msg.payload.size();
        pending_.pop_front();
        ++dropped;
    }
    if (dropped) {
        stats_.dropped += dropped;
        static RateLimiter limiter(std::chrono::minutes(1));
        if (auto held = limiter.allow("queue", std::chrono::steady_clock::now())) {
            log_warn("mqtt", "queue of undelivered messages is full (" +
                                 std::to_string(max_queued_bytes_) + " bytes): dropped " +
                                 std::to_string(stats_.dropped) + " oldest so far");
        }
    }
}

bool MqttLink::send(std::uintptr_t id, const OutMessage& m) {
    if (!client_->publish(id, m)) {
        // The connection went away under us; the client tells the loop shortly.
        log_debug("mqtt", "publish to " + m.topic + " deferred: the connection is going away");
        return false;
    }
    ++stats_.published;
    return true;
}

void MqttLink::pump() {
    // Non-event messages first (the birth leads), then events in seq order.
    while (connected_ && !pending_.empty() && inflight_.size() < 16) {
        Entry e = std::move(pending_.front());
        pending_.pop_front();
        pending_bytes_ -= e.msg.topic.size() + e.msg.payload.size();
        const std::uintptr_t id = e.id;
        auto slot = inflight_.emplace(id, std::move(e)).first;
        if (!send(id, slot->second.msg)) {
            Entry back = std::move(slot->second);
            inflight_.erase(slot);
            pending_bytes_ += back.msg.topic.size() + back.msg.payload.size();
            pending_.push_front(std::move(back));
            return;
        }
        poison_.on_other_sent();
    }
    if (!outbox_ || draining_ || retry_at_) return;
    // After a loss with events in flight, those go one at a time, each sent
    // once everything before it was acknowledged (poison_detector.h).
    const bool probing = poison_.probing(outbox_->cursor());
    if (probing && !inflight_.empty()) return;
    const std::size_t window = probing ? 1 : max_inflight_;
    outbox::Record rec;
    while (connected_ && outbox_->in_flight() < window && outbox_->next_unsent(rec)) {
        if (rec.destinations.empty()) {
            outbox_->ack(rec.seq);
            continue;
        }
        const bool alone = inflight_.empty() && outbox_->in_flight() == 1;
        record_remaining_[rec.seq] = rec.destinations.size();
        for (const outbox::Destination& d : rec.destinations) {
            const std::uintptr_t id = next_id_++;
            record_tokens_.emplace(id, RecordToken{rec.seq, d.topic});
            if (!send(id, OutMessage{d.topic, rec.payload, rec.qos, d.retain})) {
                // Sent again after the reconnect, with everything unacked.
                forget_records();
                return;
            }
        }
        poison_.on_record_sent(rec.seq, rec.destinations.front().topic, alone,
                               std::chrono::steady_clock::now());
    }
}

bool topic_matches(std::string_view filter, std::string_view topic) {
    if (!topic.empty() && topic[0] == '$' && (filter.empty() || filter[0] != '$')) return false;
    std::size_t f = 0, t = 0;
    for (;;) {
        const std::size_t fe = filter.find('/', f);
        const std::string_view flevel =
            filter.substr(f, fe == std::string_view::npos ? std::string_view::npos : fe - f);
        if (flevel == "#") return true;
        if (t > topic.size()) return false;
        const std::size_t te = topic.find('/', t);
        const std::string_view tlevel =
            topic.substr(t, te == std::string_view::npos ? std::string_view::npos : te - t);
        if (flevel != "+" && flevel != tlevel) return false;
        const bool f_last = fe == std::string_view::npos;
        const bool t_last = te == std::string_view::npos;
        if (f_last || t_last) {
            if (f_last && t_last) return true;
            // "a/#" also matches "a": the filter's next level is a lone '#'.
            return t_last && filter.substr(fe + 1) == "#";
        }
        f = fe + 1;
        t = te + 1;
    }
}

void MqttLink::shutdown(const std::string& payload, std::chrono::milliseconds timeout) {
    reconnect_at_.reset();
    draining_ = true;
    if (!client_->is_connected()) {
        log_info("mqtt", "not connected: the broker's last will reports offline");
        return;
    }
    if (!client_->publish_and_disconnect(OutMessage{status_topic_, payload, 1, true}, timeout)) {
        log_warn("mqtt", "offline status not acknowledged in time; disconnected");
    }
    connected_ = false;
}

}  // namespace tg
