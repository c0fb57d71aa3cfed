#include "gateway.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/json_writer.h"
#include "envelope.h"
#include "paho_client.h"
#include "sd_notify.h"

namespace tg {
namespace {

// Shutdown: what is in flight gets kDrainTimeout to be acknowledged (fewer
// duplicates next start), the offline status kOfflineTimeout, and the
// disconnect does not wait for more (what is unacknowledged stays in the
// outbox): about 3 s at most, even with the broker flooded.
constexpr std::chrono::milliseconds kDrainTimeout{1500};
constexpr std::chrono::milliseconds kOfflineTimeout{1000};
// The HTTP server's snapshot: at most this often, taken up to kSnapshotSlack
// early when the loop is awake anyway (a rule tick), to spare a wake-up.
constexpr std::chrono::milliseconds kSnapshotEvery{1000};
constexpr std::chrono::milliseconds kSnapshotSlack{250};

std::string offline_payload() {
    return R"({"state":"offline"})";
}

bool value_changed_enough(const Value& prev, const Value& now, double deadband) {
    const double* a = std::get_if<double>(&prev);
    const double* b = std::get_if<double>(&now);
    if (a && b) return std::fabs(*b - *a) >= deadband;
    return prev != now;
}

}  // namespace

Gateway::Gateway(Config cfg, const Clock& clock, std::shared_ptr<const rules::RuleSet> rules)
    : cfg_(std::move(cfg)),
      clock_(clock),
      base_(cfg_.topic_base()),
      queue_(4096, static_cast<std::size_t>(cfg_.mqtt.input_buffer)),
      outbox_(outbox_options(cfg_)),
      loop_sink_(*this) {
    link_ = std::make_unique<MqttLink>(
        cfg_.mqtt, make_paho_client(cfg_.mqtt, queue_, base_ + "/status", offline_payload()),
        base_ + "/status");
    events_ = std::make_unique<EventPublisher>(cfg_, base_, clock_, outbox_, *link_);
    sensors_.reserve(cfg_.sensors.size());
    for (const SensorConfig& sc : cfg_.sensors) {
        Sensor s;
        s.cfg = &sc;
        s.events_topic = base_ + "/events/" + sc.path();
        s.state_topic = base_ + "/state/" + sc.path();
        sensor_index_.emplace(sc.name, sensors_.size());
        sensors_.push_back(std::move(s));
    }
    create_drivers();
    rules_ =
        std::make_unique<RuleHost>(cfg_, base_, clock_, queue_, *link_, *events_, std::move(rules));
}

void Gateway::create_drivers() {
    // Group sensors that share a reader: same driver and the same non-empty
    // share key (e.g. one serial device); every other sensor is alone.
    std::vector<std::pair<std::string, std::vector<const SensorConfig*>>> groups;
    for (const SensorConfig& sc : cfg_.sensors) {
        const drivers::DriverInfo* info = drivers::find_driver(sc.driver);
        if (!info) throw std::runtime_error("unknown driver '" + sc.driver + "'");
        std::string key;
        if (info->share_key) key = info->share_key(sc.spec());
        auto it = key.empty() ? groups.end()
                              : std::find_if(groups.begin(), groups.end(), [&](const auto& g) {
                                    return g.first == sc.driver + "\n" + key;
                                });
        if (it == groups.end()) {
            groups.push_back({key.empty() ? std::string() : sc.driver + "\n" + key, {&sc}});
        } else {
            it->second.push_back(&sc);
        }
    }
    for (const auto& [key, members] : groups) {
        std::vector<drivers::SensorSpec> specs;
        DriverSlot slot;
        slot.first_sensor = members.front()->name;
        slot.interval = members.front()->interval;
        for (const SensorConfig* sc : members) {
            specs.push_back(sc->spec());
            slot.interval = std::min(slot.interval, sc->interval);
        }
        slot.driver = drivers::find_driver(members.front()->driver)->create(specs);
        drivers_.push_back(std::move(slot));
    }
}

Gateway::~Gateway() {
    queue_.close();
    for (DriverSlot& d : drivers_)
        d.driver->stop();
}

std::string Gateway::status_online() const {
    JsonObject o;
    o.field("state", "online")
        .field("version", TIDEGATE_VERSION)
        .field("started", std::string_view(format_rfc3339_ms(started_wall_)))
        .field("rules", static_cast<std::uint64_t>(rules_->rule_count()))
        .field("sensors", static_cast<std::uint64_t>(sensors_.size()))
        .field("broker",
               std::string_view(connected_broker_.empty() ? cfg_.mqtt.uri : connected_broker_));
    return std::move(o).finish();
}

void Gateway::reading(Reading r) {
    queue_.post(std::move(r));
}

void Gateway::bad_reading(const std::string& sensor, std::string reason, std::string detail) {
    queue_.post(BadReading{sensor, std::move(reason), std::move(detail)});
}

int Gateway::run() {
    outbox_.open();
    const std::string next = std::to_string(events_->next_seq());
    switch (outbox_.resumed()) {
        case Outbox::Resume::Fresh:
            log_info("gateway", "new data_dir " + cfg_.gateway.data_dir);
            break;
        case Outbox::Resume::Clean:
            break;
        case Outbox::Resume::Crash:
            log_warn("gateway",
                     "previous run did not stop cleanly; nothing lost, seq continues at " + next);
            break;
        case Outbox::Resume::Reboot:
        case Outbox::Resume::Unknown:
            log_warn("gateway",
                     "previous run ended with the machine (crash or power cut); seq "
                     "continues at the reserved " +
                         next + " (a gap, never a reuse)");
            break;
    }
    {
        const Outbox::Stats st = outbox_.stats();
        if (st.depth > 0) {
            log_info("gateway", std::to_string(st.depth) +
                                    " undelivered event(s) in the outbox will be sent first");
        }
    }
    link_->set_outbox(&outbox_);
    link_->on_refused([this](std::uint64_t seq, const std::string& topic, const std::string& why) {
        const std::string what =
            seq ? "event " + cfg_.gateway.id + ":" + std::to_string(seq) : std::string("message");
        events_->deadletter("mqtt", "publish_refused",
                            what + " to " + topic + " refused " +
                                std::to_string(MqttLink::kMaxAttempts) + " times: " + why);
    });
    events_->handle_drops(outbox_.enforce());

    started_wall_ = clock_.wall();
    started_mono_ = clock_.monotonic();
    next_metrics_ = started_mono_ + cfg_.metrics.interval;
    rules_->start(started_mono_);
    link_->set_birth(status_online());
    link_->set_limits(64, 1u << 20);
    log_info("gateway", "tidegate " TIDEGATE_VERSION " starting as '" + cfg_.gateway.id +
                            "' with " + std::to_string(sensors_.size()) +
                            " sensor(s); topics under " + base_ + "/");
    if (cfg_.homeassistant.discovery) {
        // After outbox_.open(): data_dir exists and holds what was announced.
        ha_ = std::make_unique<ha::HaAnnouncer>(
            cfg_, TIDEGATE_VERSION, [this](OutMessage m) { link_->publish(std::move(m)); },
            [this] { return link_->connected(); });
        ha_->set_rules(rules_->rule_names());
        link_->subscribe(ha_->status_topic(), 1);
    }
    link_->start(started_mono_);

    rules_->start_watcher_and_outputs();
    start_http();
    for (DriverSlot& d : drivers_) {
        d.next_due = started_mono_;
        for (const std::string& filter : d.driver->subscriptions())
            link_->subscribe(filter, 1);
        if (!d.driver->polled()) d.driver->start(*this);
    }

    // systemd (Type=notify, WatchdogSec): ready once drivers and the link are
    // started -- not once connected, the gateway works offline -- and the
    // watchdog is fed from this loop at half of WATCHDOG_USEC.
    sd::notify("READY=1\nSTATUS=running");
    sd::Watchdog watchdog;

    std::optional<MonoTime> drain_until;
    for (;;) {
        MonoTime now = clock_.monotonic();
        watchdog.kick(now);
        if (!stopping_) poll_due(now);
        link_->on_timer(now);
        if (ha_ && !stopping_) ha_->on_timer(now);
        rules_->on_timer(now, stopping_);
        if (!stopping_ && now >= next_metrics_) publish_metrics(now);
        if (http_ && status_dirty_ && now + kSnapshotSlack >= next_snapshot_) {
            http_->publish(take_snapshot(now));
            status_dirty_ = false;
            next_snapshot_ = now + kSnapshotEvery;
        }

        events_->handle_drops(outbox_.sync_if_due(now));
        events_->flush_drop_report(now);
        events_->report_overload(queue_.shed(), link_->stats().dropped, stopping_);

        if (stopping_) {
            // Events stay in the outbox for the next start; only what is in
            // flight gets a moment to be acknowledged (fewer duplicates).
            if (!drain_until) {
                drain_until = now + kDrainTimeout;
                link_->stop_sending();
            }
            if (link_->settled() || !link_->connected() || now >= *drain_until) break;
        }

        MonoTime deadline =
            stopping_ ? std::min(*drain_until, next_deadline(now)) : next_deadline(now);
        if (auto w = watchdog.deadline(); w && *w < deadline) deadline = *w;
        auto m = queue_.pop_until(deadline);
        // Anything but the snapshot's own deadline may have changed what it shows.
        if (m || clock_.monotonic() < next_snapshot_ || deadline != next_snapshot_) {
            status_dirty_ = true;
        }
        // Take what has piled up in one go, so a burst of acks costs one wake-up.
        for (int i = 0; m && i < 1024; ++i) {
            handle(*m);
            m = queue_.try_pop();
        }
        if (m) handle(*m);
    }

    if (http_) http_->stop();
    rules_->stop();
    link_->shutdown(offline_payload(), kOfflineTimeout);
    const Outbox::Stats st = outbox_.stats();
    outbox_.close();
    if (st.depth > 0) {
        log_info("gateway", std::to_string(st.depth) +
                                " undelivered event(s) kept in the outbox for the next start");
    }
    log_info("gateway", "stopped");
    return 0;
}

MonoTime Gateway::next_deadline(MonoTime now) const {
    MonoTime d = now + std::chrono::hours(1);
    if (!stopping_) {
        for (const DriverSlot& ds : drivers_) {
            if (ds.driver->polled() && ds.next_due < d) d = ds.next_due;
        }
        if (next_metrics_ < d) d = next_metrics_;
        if (http_ && status_dirty_ && next_snapshot_ < d) d = next_snapshot_;
    }
    if (auto r = link_->next_deadline(); r && *r < d) d = *r;
    if (auto r = outbox_.next_sync_deadline(); r && *r < d) d = *r;
    if (auto r = rules_->next_deadline(stopping_); r && *r < d) d = *r;
    if (ha_ && !stopping_) {
        if (auto r = ha_->next_deadline(); r && *r < d) d = *r;
    }
    if (auto r = events_->drop_report_due(now); r && *r < d) d = *r;
    return d;
}

void Gateway::poll_due(MonoTime now) {
    for (DriverSlot& d : drivers_) {
        if (!d.driver->polled() || now < d.next_due) continue;
        try {
            d.driver->poll(clock_, loop_sink_);
        } catch (const std::exception& e) {
            on_bad_reading(BadReading{d.first_sensor, "bad_reading", e.what()});
        }
        d.next_due += d.interval;
        // Fell behind (a slow poll, a suspended machine): skip, do not burst.
        if (d.next_due < now) d.next_due = now + d.interval;
    }
}

void Gateway::handle(Message& m) {
    std::visit(
        [&](auto& msg) {
            using T = std::decay_t<decltype(msg)>;
            const MonoTime now = clock_.monotonic();
            if constexpr (std::is_same_v<T, Reading>) {
                on_reading(std::move(msg));
            } else if constexpr (std::is_same_v<T, BadReading>) {
                on_bad_reading(msg);
            } else if constexpr (std::is_same_v<T, MqttIncoming>) {
                on_incoming(msg);
            } else if constexpr (std::is_same_v<T, MqttConnected>) {
                // The status (the birth, sent first) names the broker that accepted.
                connected_broker_ = link_->current_uri();
                link_->set_birth(status_online());
                link_->on_connected();
                if (ha_ && !stopping_) ha_->on_connected(now);
            } else if constexpr (std::is_same_v<T, MqttConnectFailed>) {
                link_->on_connect_failed(msg.why, now);
            } else if constexpr (std::is_same_v<T, MqttConnectionLost>) {
                link_->on_connection_lost(msg.why, now);
            } else if constexpr (std::is_same_v<T, MqttDelivered>) {
                link_->on_delivered(msg.token);
            } else if constexpr (std::is_same_v<T, MqttDeliveryFailed>) {
                link_->on_delivery_failed(msg.token, msg.why, msg.refused, now);
            } else if constexpr (std::is_same_v<T, ExecFinished>) {
                rules_->on_exec_finished(msg);
            } else if constexpr (std::is_same_v<T, StopRequest>) {
                if (!stopping_) {
                    log_info("gateway", "signal " + std::to_string(msg.signal) + ": shutting down");
                    sd::notify("STOPPING=1");
                    stopping_ = true;
                    // Release driver threads blocked on a full queue before
                    // joining them; readings still queued are processed.
                    // Broker input not yet taken is not: a flood must not
                    // hold the shutdown back. Said, never silent.
                    if (const std::size_t n = queue_.close()) {
                        log_warn("gateway", std::to_string(n) +
                                                " MQTT input message(s) not yet processed "
                                                "were dropped at shutdown");
                    }
                    for (DriverSlot& d : drivers_)
                        d.driver->stop();
                }
            } else if constexpr (std::is_same_v<T, ReloadRequest>) {
                if (!stopping_ && rules_->reload()) {
                    if (ha_) ha_->set_rules(rules_->rule_names());
                    link_->set_birth(status_online());
                    if (link_->connected())
                        link_->publish({base_ + "/status", status_online(), 1, true});
                }
            }
        },
        m);
}

void Gateway::on_reading(Reading r) {
    const auto found = sensor_index_.find(r.sensor);
    if (found == sensor_index_.end()) return;
    Sensor& s = sensors_[found->second];
    const SensorConfig& sc = *s.cfg;
    if (type_of(r.value) != sc.type) {
        on_bad_reading({sc.name, "bad_reading",
                        "driver gave a " + std::string(type_name(type_of(r.value))) + " for a " +
                            std::string(type_name(sc.type)) + " sensor"});
        return;
    }
    if (double* d = std::get_if<double>(&r.value)) {
        if (!std::isfinite(*d)) {
            on_bad_reading({sc.name, "bad_reading", "value is not a finite number"});
            return;
        }
        if (sc.range && (*d < sc.range->first || *d > sc.range->second)) {
            on_bad_reading({sc.name, "out_of_range",
                            format_number(*d) + " is outside [" + format_number(sc.range->first) +
                                ", " + format_number(sc.range->second) + "]"});
            return;
        }
        if (sc.precision) {
            const double scale = std::pow(10.0, *sc.precision);
            *d = std::round(*d * scale) / scale;  // half away from zero
        }
    }
    ++events_->counters().events_in;
    remember_reading(s, r);
    // The reading's own event comes first (SPEC §5.2), then what the rules
    // make of it (every reading: deadband and publish only thin what leaves
    // the gateway).
    rules_->feed(r, [&] { publish_reading(s, r); });
}

void Gateway::publish_reading(Sensor& sensor, const Reading& r) {
    Sensor* s = &sensor;
    const SensorConfig& sc = *s->cfg;
    if (sc.publish == PublishMode::None) return;
    if (sc.deadband && s->last_published) {
        const bool moved = value_changed_enough(*s->last_published, r.value, *sc.deadband);
        const bool heartbeat_due = sc.heartbeat && r.mono - s->last_published_at >= *sc.heartbeat;
        if (!moved && !heartbeat_due) return;
    }
    s->last_published = r.value;
    s->last_published_at = r.mono;

    std::vector<outbox::Destination> dest;
    if (sc.publish == PublishMode::All || sc.publish == PublishMode::Events) {
        dest.push_back({s->events_topic, false, false});
    }
    if (sc.publish == PublishMode::All || sc.publish == PublishMode::State) {
        // The read model (SPEC §3): a backlog only needs its newest value.
        dest.push_back({s->state_topic, true, true});
    }
    const std::uint64_t seq = events_->next_seq();
    events_->append(
        outbox::Record{seq, cfg_.mqtt.qos, std::move(dest),
                       reading_envelope(cfg_.gateway.id, seq, sc.name, r.ts, r.value, sc.unit)});
}

void Gateway::on_incoming(const MqttIncoming& m) {
    if (rules_->on_output_command(m)) return;
    // Home Assistant's status; an mqtt sensor may listen there too.
    if (ha_) ha_->on_message(m, clock_.monotonic());
    for (DriverSlot& d : drivers_) {
        for (const std::string& filter : d.driver->subscriptions()) {
            if (topic_matches(filter, m.topic)) {
                d.driver->on_message(m.topic, m.payload, clock_, loop_sink_);
                break;
            }
        }
    }
}

void Gateway::on_bad_reading(const BadReading& b) {
    ++events_->counters().bad_readings;
    events_->deadletter(b.sensor, b.reason, b.detail);
}

void Gateway::publish_metrics(MonoTime now) {
    next_metrics_ = now + cfg_.metrics.interval;
    rules_->flush_transition_logs(now);
    link_->publish({base_ + "/metrics", events_->metrics_json(now, started_mono_), 0, false});
}

}  // namespace tg
