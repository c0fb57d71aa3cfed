#include "outputs.h"

#include <stdexcept>

namespace tg {

OutputBank::OutputBank(const std::vector<OutputConfig>& outputs, drivers::OutputEnv& env) {
    for (const OutputConfig& oc : outputs) {
        const drivers::OutputInfo* info = drivers::find_output(oc.driver);
        if (!info || !info->create) throw std::runtime_error("unknown output driver " + oc.driver);
        Slot s;
        s.output = info->create(oc.name, oc.options, env);
        s.remote = oc.remote;
        s.breaker.configure(oc.breaker);
        // The state the output starts in, when its options say it.
        if (oc.options.has("initial")) {
            if (auto b = drivers::parse_on_off(oc.options.string("initial"))) s.state = *b;
        }
        outputs_.emplace(oc.name, std::move(s));
    }
}

std::vector<OutputReport> OutputBank::start(MonoTime now) {
    std::vector<OutputReport> reports;
    for (auto& [name, s] : outputs_) {
        try {
            s.output->start();
            s.started = true;
            if (s.state) reports.push_back({name, OutputReport::Kind::Changed, *s.state, {}, {}});
        } catch (const std::exception& e) {
            // A missing device counts against the breaker like a failed switch.
            s.breaker.failed(now, e.what());
            reports.push_back(OutputReport::failed(name, e.what()));
            reports.back().breaker = s.breaker.take_changes();
        }
    }
    return reports;
}

void OutputBank::stop() {
    for (auto& [name, s] : outputs_)
        s.output->stop();
}

bool OutputBank::remote(const std::string& name) const {
    auto it = outputs_.find(name);
    return it != outputs_.end() && it->second.remote;
}

std::vector<std::string> OutputBank::remote_names() const {
    std::vector<std::string> names;
    for (const auto& [name, s] : outputs_) {
        if (s.remote) names.push_back(name);
    }
    return names;
}

OutputReport OutputBank::apply(const std::string& name, Slot& s, bool on, MonoTime now) {
    OutputReport r;
    if (!s.breaker.allow(now)) {
        r = {name,
             OutputReport::Kind::Skipped,
             on,
             "circuit breaker open (" + std::to_string(s.breaker.failures()) +
                 " consecutive failures, last: " + s.breaker.detail() + ")",
             {}};
    } else {
        try {
            if (!s.started) {
                s.output->start();  // a device that was missing at start
                s.started = true;
            }
            s.output->set(on);
            s.breaker.succeeded();
            const bool changed = !s.state || *s.state != on;
            s.state = on;
            r = {name,
                 changed ? OutputReport::Kind::Changed : OutputReport::Kind::Unchanged,
                 on,
                 {},
                 {}};
        } catch (const std::exception& e) {
            s.breaker.failed(now, e.what());
            r = OutputReport::failed(name, e.what());
        }
    }
    r.breaker = s.breaker.take_changes();
    return r;
}

OutputReport OutputBank::set(const std::string& name, bool on,
                             std::optional<std::chrono::milliseconds> hold, MonoTime now) {
    auto it = outputs_.find(name);
    if (it == outputs_.end())
        return OutputReport::failed(name, "no output of that name is configured");
    Slot& s = it->second;
    s.revert_at.reset();
    OutputReport r = apply(name, s, on, now);
    if ((r.kind == OutputReport::Kind::Changed || r.kind == OutputReport::Kind::Unchanged) &&
        hold) {
        s.revert_at = now + *hold;
        s.revert_to = !on;
    }
    return r;
}

std::optional<MonoTime> OutputBank::next_deadline() const {
    std::optional<MonoTime> d;
    for (const auto& [name, s] : outputs_) {
        if (s.revert_at && (!d || *s.revert_at < *d)) d = s.revert_at;
    }
    return d;
}

std::vector<OutputReport> OutputBank::on_timer(MonoTime now) {
    std::vector<OutputReport> reports;
    for (auto& [name, s] : outputs_) {
        if (s.revert_at && now >= *s.revert_at) {
            s.revert_at.reset();
            reports.push_back(apply(name, s, s.revert_to, now));
        }
    }
    return reports;
}

}  // namespace tg
