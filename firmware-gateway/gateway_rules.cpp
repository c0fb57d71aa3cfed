// The gateway's side of the rules engine: feeding it readings and ticks,
// publishing rule events, running actions, persisting rule state, reloading
// rule files, and remote output commands.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "envelope.h"
#include "fs_util.h"
#include "gateway.h"
#include "rule_files.h"

namespace tg {
namespace {

std::string state_path(const Config& cfg) {
    return cfg.gateway.data_dir + "/rules.state";
}

}  // namespace

void Gateway::start_rules(MonoTime now) {
    std::shared_ptr<const rules::RuleSet> set = initial_rules_;
    if (!set) set = std::make_shared<rules::RuleSet>();
    initial_rules_.reset();
    rules::EngineOptions opts;
    opts.gateway = cfg_.gateway.id;
    opts.start = now;
    engine_ = std::make_unique<rules::Engine>(set, opts);

    // Rule state of the previous run: a firing rule resumes as firing
    // without running its actions again; pending `for` timers continue.
    std::ifstream in(state_path(cfg_));
    if (in) {
        std::stringstream text;
        text << in.rdbuf();
        std::string why;
        if (auto state = rules::state_from_json(text.str(), &why)) {
            transitions_.clear();
            transitions_ = engine_->import_state(*state, now, clock_.wall());
            handle_transitions(transitions_);
            std::size_t firing = 0;
            for (const rules::RuleStateRecord& r : state->rules) {
                if (r.state == rules::RuleState::Firing) ++firing;
            }
            log_info("rules", "resumed rule state: " + std::to_string(firing) + " firing");
        } else {
            log_warn("rules", state_path(cfg_) + " ignored: " + why);
        }
    }
    persisted_generation_ = engine_->state_generation();
    log_info("rules", std::to_string(set->size()) + " rule(s) from " +
                          std::to_string(set->files().size()) + " file(s)");
    schedule_tick(now);
}

void Gateway::schedule_tick(MonoTime now) {
    ticking_ = false;
    for (const rules::Rule& r : engine_->rules().rules()) {
        if (r.uses_time || r.cooldown.count() > 0) ticking_ = true;
    }
    if (!ticking_) return;  // idle means asleep: no rule needs the clock
    // Ticks fall on multiples of rules.tick since the epoch (wall clock); the
    // wait itself is measured on the monotonic clock.
    const WallTime wall = clock_.wall();
    const WallTime tick = rules::next_tick_after(wall, cfg_.rules.tick);
    next_tick_ = now + std::chrono::duration_cast<std::chrono::nanoseconds>(tick - wall);
}

void Gateway::run_ticks(MonoTime now) {
    if (!ticking_ || now < next_tick_) return;
    transitions_.clear();
    engine_->on_tick(now, clock_.wall(), transitions_);
    handle_transitions(transitions_);
    persist_rule_state(false);
    schedule_tick(now);
}

void Gateway::feed_rules(const Reading& r) {
    if (!engine_) return;
    transitions_.clear();
    engine_->on_reading(r, transitions_);
    if (transitions_.empty()) return;
    handle_transitions(transitions_);
    persist_rule_state(false);
}

void Gateway::handle_transitions(std::vector<rules::Transition>& ts) {
    for (const rules::Transition& t : ts) {
        if (t.kind == rules::TransitionKind::Fired) ++counters_.rules_fired;
        log_info("rules", t.rule + " " + std::string(rules::transition_name(t.kind)) + " " +
                              t.values_json());
        publish_rule_event(t);
        for (const rules::Action& a : t.actions)
            run_action(a, t.rule);
    }
}

void Gateway::publish_rule_event(const rules::Transition& t) {
    const bool fired = t.kind == rules::TransitionKind::Fired;
    const std::uint64_t seq = outbox_.next_seq();
    JsonObject o = begin_envelope(cfg_.gateway.id, seq, fired ? "rule_fired" : "rule_cleared",
                                  "rule:" + t.rule, t.ts);
    o.field("value", fired)
        .field("rule", std::string_view(t.rule))
        .field("severity", rules::severity_name(t.severity))
        .raw_field("values", t.values_json());
    append_event(outbox::Record{
        seq, cfg_.mqtt.qos, {{base_ + "/rules/" + t.rule, true}}, std::move(o).finish()});
}

void Gateway::run_action(const rules::Action& a, const std::string& rule) {
    std::visit(
        [&](const auto& act) {
            using T = std::decay_t<decltype(act)>;
            if constexpr (std::is_same_v<T, rules::PublishAction>) {
                // Not an event (no envelope, no seq): it waits in the link's
                // memory queue while the broker is away.
                link_->publish({act.topic, act.payload, act.qos, act.retain});
            } else if constexpr (std::is_same_v<T, rules::OutputAction>) {
                outputs_->set(act.name, act.on, act.duration, clock_.monotonic());
            } else if constexpr (std::is_same_v<T, rules::ExecAction>) {
                run_exec(rule, act);
            } else if constexpr (std::is_same_v<T, rules::LogAction>) {
                log_info("rule", rule + ": " + act.message);
            }
        },
        a);
}

void Gateway::persist_rule_state(bool force) {
    if (!engine_) return;
    if (!force && engine_->state_generation() == persisted_generation_) return;
    try {
        write_file_atomic(state_path(cfg_),
                          rules::state_to_json(engine_->export_state(clock_.monotonic())));
        persisted_generation_ = engine_->state_generation();
    } catch (const std::exception& e) {
        static RateLimiter limiter(std::chrono::minutes(1));
        if (limiter.allow("state", std::chrono::steady_clock::now())) {
            log_error("rules", std::string("cannot save rule state: ") + e.what());
        }
    }
}

void Gateway::reload_rules() {
    rules::CompileResult res = load_rule_files(cfg_, nullptr);
    if (!res.rules) {
        std::size_t errors = 0;
        std::string first;
        for (const SourceError& e : res.diagnostics.items()) {
            if (e.severity() != Severity::Error) continue;
            if (errors++ == 0) first = e.format();
            log_error("rules", e.format());
        }
        log_error("rules", "reload rejected (" + std::to_string(errors) +
                               " error(s)); the previous rules keep running");
        deadletter("rules", "rules_rejected",
                   std::to_string(errors) + " error(s), first: " + first);
        return;
    }
    std::vector<std::string> old_names;
    for (const rules::Rule& r : engine_->rules().rules())
        old_names.push_back(r.name);
    const MonoTime now = clock_.monotonic();
    transitions_.clear();
    transitions_ = engine_->replace_rules(res.rules, now, clock_.wall());
    handle_transitions(transitions_);
    // A removed rule's retained event is emptied (SPEC §3).
    for (const std::string& name : old_names) {
        if (!res.rules->find(name)) link_->publish({base_ + "/rules/" + name, "", 1, true});
    }
    persist_rule_state(true);
    schedule_tick(now);
    log_info("rules", "reloaded: " + std::to_string(res.rules->size()) + " rule(s)");
    publish_status();
}

void Gateway::publish_status() {
    link_->set_birth(status_online());
    if (link_->connected()) link_->publish({base_ + "/status", status_online(), 1, true});
}

void Gateway::publish_output_event(const std::string& name, bool on) {
    const std::uint64_t seq = outbox_.next_seq();
    JsonObject o = begin_envelope(cfg_.gateway.id, seq, "output", name, clock_.wall());
    o.field("value", on ? "on" : "off");
    append_event(outbox::Record{
        seq, cfg_.mqtt.qos, {{base_ + "/outputs/" + name, true}}, std::move(o).finish()});
}

bool Gateway::on_output_command(const MqttIncoming& m) {
    const std::string prefix = base_ + "/cmd/outputs/";
    if (m.topic.compare(0, prefix.size(), prefix) != 0) return false;
    const std::string name = m.topic.substr(prefix.size());
    // A retained command would switch the output again at every reconnect.
    if (m.retained) {
        log_debug("gateway", "ignored retained command on " + m.topic);
        return true;
    }
    if (!outputs_->remote(name)) {
        deadletter("cmd:" + name, "parse", "no remote output named '" + name + "'");
        return true;
    }
    const auto on = drivers::parse_on_off(m.payload);
    if (!on) {
        deadletter("cmd:" + name, "parse",
                   "expected on or off, got '" + m.payload.substr(0, 60) + "'");
        return true;
    }
    outputs_->set(name, *on, std::nullopt, clock_.monotonic());
    return true;
}

}  // namespace tg
namespace tg {

void Gateway::run_exec(const std::string& rule, const rules::ExecAction& a) {
    if (a.argv.empty() || a.argv.front().empty()) {
        deadletter("rule:" + rule, "exec_failed", "empty program name");
        return;
    }
    exec_->run(rule, a.argv, a.timeout);
}

void Gateway::on_exec_finished(const ExecFinished& e) {
    if (e.ok) {
        log_debug("rule", e.rule + ": exec " + e.detail);
        return;
    }
    deadletter("rule:" + e.rule, "exec_failed", e.detail);
}

}  // namespace tg
