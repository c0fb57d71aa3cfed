// What the local HTTP server shows (SPEC §9): the Gateway's and the
// RuleHost's parts of a StatusSnapshot, taken on the event loop thread, and
// the start of the server. Kept apart from the loop's hot code: it runs at
// most once a second and is compiled for size.
#include <algorithm>
#include <cmath>

#include "core/log.h"
#include "gateway.h"
#include "rule_host.h"

namespace tg {

void Gateway::remember_reading(Sensor& s, const Reading& r) {
    s.latest = r.value;
    s.latest_ts = r.ts;
    s.latest_mono = r.mono;
    if (!http_) return;
    const double* d = std::get_if<double>(&r.value);
    const bool* b = std::get_if<bool>(&r.value);
    if (!d && !b) return;
    const float v = d ? static_cast<float>(*d) : (*b ? 1.0f : 0.0f);
    const std::int64_t slot =
        std::chrono::duration_cast<std::chrono::seconds>(r.mono.time_since_epoch()).count() /
        kHistoryStep.count();
    if (!s.history.empty() && slot == s.history_slot) {
        s.history.back() = v;  // the latest value of its step
        return;
    }
    // Steps without a reading show as gaps.
    const std::int64_t gap =
        s.history.empty() ? 0 : std::min<std::int64_t>(slot - s.history_slot - 1, kHistoryPoints);
    for (std::int64_t i = 0; i < gap; ++i)
        s.history.push_back(std::nanf(""));
    s.history.push_back(v);
    s.history_slot = slot;
    if (s.history.size() > kHistoryPoints) {
        s.history.erase(
            s.history.begin(),
            s.history.begin() + static_cast<std::ptrdiff_t>(s.history.size() - kHistoryPoints));
    }
}

void Gateway::start_http() {
    if (cfg_.http.listen.empty()) return;
    http_ = std::make_unique<HttpServer>(
        HttpServer::Options{cfg_.http.listen, cfg_.http.token}, clock_,
        [this](const std::string& name, bool on) {
            // The same path as a command on <p>/cmd/outputs/<name>.
            queue_.post_control(MqttIncoming{base_ + "/cmd/outputs/" + name, on ? "on" : "off"});
        });
    std::string why;
    if (!http_->start(why)) {
        log_error("http", "cannot listen on " + cfg_.http.listen + ": " + why +
                              "; the status page, /metrics and /api/status are off");
        http_.reset();
        return;
    }
    http_->publish(take_snapshot(clock_.monotonic()));
    log_info("http", "status page, /metrics and /api/status on http://" + cfg_.http.listen + "/" +
                         (cfg_.http.token.empty() ? "" : " (token required)"));
}

std::shared_ptr<const StatusSnapshot> Gateway::take_snapshot(MonoTime now) const {
    auto s = std::make_shared<StatusSnapshot>();
    s->gateway = cfg_.gateway.id;
    s->version = TIDEGATE_VERSION;
    s->started = started_wall_;
    s->started_mono = started_mono_;
    s->taken = clock_.wall();
    s->taken_mono = now;
    s->link.connected = link_->connected();
    s->link.uri = connected_broker_.empty() ? cfg_.mqtt.uri : connected_broker_;
    s->link.reconnects = link_->stats().reconnects;
    const Outbox::Stats ob = outbox_.stats();
    s->outbox = {ob.depth, ob.bytes, ob.dropped};
    s->metrics = events_->metrics();
    s->sensors.reserve(sensors_.size());
    for (const Sensor& sensor : sensors_) {
        s->sensors.push_back({sensor.cfg->name, sensor.cfg->unit, sensor.latest, sensor.latest_ts,
                              sensor.latest_mono, sensor.history});
    }
    rules_->fill_status(*s, now, s->taken);
    const auto& dl = events_->recent_deadletters();
    s->deadletters.assign(dl.begin(), dl.end());
    return s;
}

void RuleHost::fill_status(StatusSnapshot& s, MonoTime now, WallTime wall) const {
    if (engine_) {
        const auto& rules = engine_->rules().rules();
        s.rules.reserve(rules.size());
        for (std::size_t i = 0; i < rules.size(); ++i) {
            StatusSnapshot::Rule r;
            r.name = rules[i].name;
            const rules::Engine::RuleStatus st = engine_->status_of(i);
            r.state = st.state;
            const auto seen = rule_seen_.find(r.name);
            if (seen != rule_seen_.end()) r.fired = seen->second.fired;
            if (st.pending_since) {
                r.since = wall - std::chrono::duration_cast<WallTime::duration>(
                                     now - std::min(now, *st.pending_since));
            } else if (seen != rule_seen_.end()) {
                r.since = seen->second.since;
            }
            s.rules.push_back(std::move(r));
        }
        for (const auto& [rule, saga] : saga_seen_)
            s.sagas.push_back(saga);
        std::sort(s.sagas.begin(), s.sagas.end(),
                  [](const auto& a, const auto& b) { return a.rule < b.rule; });
    }
    outputs_->visit(
        [&](const std::string& name, std::optional<bool> on, bool remote, const Breaker& b) {
            s.outputs.push_back({name, on, remote});
            s.breakers.push_back({"output/" + name, b.state(), b.failures(), b.detail()});
        });
    for (const auto& [program, b] : exec_breakers_) {
        s.breakers.push_back({exec_target(program), b.state(), b.failures(), b.detail()});
    }
}

}  // namespace tg
