#include "rule_host.h"

#include <algorithm>

#include <fstream>
#include <sstream>

#include "core/json_writer.h"
#include "core/utf8.h"
#include "envelope.h"
#include "rule_files.h"
#include "rules/publish_topic.h"

namespace tg {
namespace {

std::string state_path(const Config& cfg) {
    return cfg.gateway.data_dir + "/rules.state";
}

// A sensor may send megabytes of text; its log line shows the start (the
// rule event carries it whole).
std::string loggable(std::string text) {
    constexpr std::size_t kMax = 500;
    if (text.size() <= kMax) return text;
    const std::size_t total = text.size();
    text.resize(utf8_cut(text, kMax));
    return text + "… (" + std::to_string(total) + " bytes)";
}

}  // namespace

RuleHost::RuleHost(const Config& cfg, std::string base, const Clock& clock, EventQueue& queue,
                   MqttLink& link, EventPublisher& events,
                   std::shared_ptr<const rules::RuleSet> rules)
    : cfg_(cfg),
      base_(std::move(base)),
      clock_(clock),
      queue_(queue),
      link_(link),
      events_(events),
      initial_rules_(std::move(rules)),
      link_env_(link) {
    outputs_ = std::make_unique<OutputBank>(cfg_.outputs, link_env_);
    exec_ = std::make_unique<ExecRunner>([this](ExecResult r) {
        std::string detail = r.argv.empty() ? std::string() : r.argv.front() + ": ";
        detail += r.describe();
        // A run the queue refused or the shutdown stopped says nothing of the program.
        const bool counts = !r.rejected && r.kind != drivers::ProcessOutcome::Kind::Stopped;
        queue_.post_control(ExecFinished{r.rule, r.ok(), std::move(detail),
                                         r.argv.empty() ? std::string() : r.argv.front(), counts});
    });
}

void RuleHost::start(MonoTime now) {
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
            react(transitions_);
            handle_sagas();
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

void RuleHost::schedule_tick(MonoTime now) {
    ticking_ = false;
    for (const rules::Rule& r : engine_->rules().rules()) {
        if (r.uses_time || r.cooldown.count() > 0) ticking_ = true;
    }
    if (engine_->sagas_running()) ticking_ = true;
    if (!ticking_) return;  // idle means asleep: no rule needs the clock
    // Ticks fall on multiples of rules.tick since the epoch (wall clock); the
    // wait itself is measured on the monotonic clock.
    const WallTime wall = clock_.wall();
    const WallTime tick = rules::next_tick_after(wall, cfg_.rules.tick);
    next_tick_ = now + std::chrono::duration_cast<std::chrono::nanoseconds>(tick - wall);
}

void RuleHost::start_watcher_and_outputs() {
    watcher_ = std::make_unique<RuleWatcher>(cfg_.rules.paths,
                                             [this] { queue_.post_control(ReloadRequest{}); });
    watcher_->start();
    for (const OutputReport& r : outputs_->start(clock_.monotonic()))
        report_output(r, clock_.wall());
    for (const std::string& name : outputs_->remote_names()) {
        link_.subscribe(base_ + "/cmd/outputs/" + name, 1);
    }
}

void RuleHost::stop() {
    if (watcher_) watcher_->stop();
    exec_->stop();  // programs still running are killed, not waited for
    persist_rule_state(true);
    if (state_writer_) state_writer_->flush();  // on disk before the process ends
    outputs_->stop();
}

void RuleHost::on_timer(MonoTime now, bool stopping) {
    for (const OutputReport& r : outputs_->on_timer(now))
        report_output(r, clock_.wall());
    if (!stopping) run_ticks(now);
    if (state_due_ && now >= *state_due_) persist_rule_state(false);
}

std::optional<MonoTime> RuleHost::next_deadline(bool stopping) const {
    std::optional<MonoTime> d = outputs_->next_deadline();
    if (ticking_ && !stopping && (!d || next_tick_ < *d)) d = next_tick_;
    if (state_due_ && (!d || *state_due_ < *d)) d = state_due_;
    return d;
}

void RuleHost::run_ticks(MonoTime now) {
    if (!ticking_ || now < next_tick_) return;
    transitions_.clear();
    engine_->on_tick(now, clock_.wall(), transitions_);
    react(transitions_);
    handle_sagas();
    persist_rule_state(false);
    schedule_tick(now);
}

void RuleHost::evaluate(const Reading& r) {
    transitions_.clear();
    if (engine_) engine_->on_reading(r, transitions_);
    switch_outputs_first(transitions_);
}

void RuleHost::conclude_reading() {
    if (!transitions_.empty()) {
        handle_transitions(transitions_);
        persist_rule_state(false);
    }
    handle_sagas();
}

void RuleHost::react(std::vector<rules::Transition>& ts) {
    switch_outputs_first(ts);
    handle_transitions(ts);
}

void RuleHost::switch_outputs_first(const std::vector<rules::Transition>& ts) {
    // The local reaction must not wait on the disk: appending an event may
    // (an fdatasync per event with outbox.sync: always, one per 4096 events
    // for the seq reservation). So the output actions at the head of the
    // actions -- up to the first action of another kind, so that every action
    // still runs in its order -- switch before anything is appended. What
    // each switch did is held and reported where its action stands, so the
    // events keep their order.
    held_.clear();
    for (const rules::Transition& t : ts) {
        for (const rules::Action& a : t.actions) {
            const auto* out = std::get_if<rules::OutputAction>(&a);
            if (!out) return;
            held_.push_back({outputs_->set(out->name, out->on, out->duration, clock_.monotonic()),
                             clock_.wall()});
        }
    }
}

void RuleHost::report_output(const OutputReport& r, WallTime ts) {
    switch (r.kind) {
        case OutputReport::Kind::Changed:
            publish_output_event(r.name, r.on, ts);
            break;
        case OutputReport::Kind::Failed:
            events_.deadletter("output:" + r.name, "output_failed", r.why);
            break;
        case OutputReport::Kind::Skipped:
            ++events_.counters().circuit_open;
            events_.deadletter(
                "output:" + r.name, "circuit_open",
                "switching " + std::string(r.on ? "on" : "off") + " skipped: " + r.why);
            break;
        case OutputReport::Kind::Unchanged:
            break;
    }
    report_breaker("output/" + r.name, r.breaker, ts);
}

std::string RuleHost::exec_target(const std::string& program) {
    // The program's file name, as one topic level of plain characters: a
    // '+' or '#' in a topic would cost the connection.
    const std::size_t slash = program.rfind('/');
    std::string name = slash == std::string::npos ? program : program.substr(slash + 1);
    for (char& c : name) {
        const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!plain) c = '_';
    }
    if (name.empty()) name = "_";
    return "exec/" + name;
}

void RuleHost::report_breaker(const std::string& target, const std::vector<BreakerChange>& changes,
                              WallTime ts) {
    for (const BreakerChange& c : changes) {
        const std::string_view state = breaker_state_name(c.state);
        if (c.state == BreakerState::Open) {
            log_warn("breaker", target + " open after " + std::to_string(c.failures) +
                                    " failure(s), last: " + loggable(c.detail));
        } else {
            log_info("breaker", target + " " + std::string(state));
        }
        const std::uint64_t seq = events_.next_seq();
        JsonObject o = begin_envelope(cfg_.gateway.id, seq, "breaker", "breaker:" + target, ts);
        o.field("value", state)
            .field("target", std::string_view(target))
            .field("failures", static_cast<std::uint64_t>(c.failures))
            .field("detail", std::string_view(c.detail));
        events_.append(outbox::Record{
            seq, cfg_.mqtt.qos, {{base_ + "/breakers/" + target, true}}, std::move(o).finish()});
    }
}

void RuleHost::handle_transitions(std::vector<rules::Transition>& ts) {
    std::size_t action = 0;  // across all transitions, as switch_outputs_first counts
    for (const rules::Transition& t : ts) {
        RuleSeen& seen = rule_seen_[t.rule];
        seen.since = t.ts;
        if (t.kind == rules::TransitionKind::Fired) {
            ++events_.counters().rules_fired;
            ++seen.fired;
        }
        log_transition(t);
        publish_rule_event(t);
        for (const rules::Action& a : t.actions) {
            if (action < held_.size()) {
                // Switched already, by switch_outputs_first: its report now.
                report_output(held_[action].report, held_[action].ts);
            } else {
                run_action(a, t.rule);
            }
            ++action;
        }
    }
    held_.clear();
}

void RuleHost::log_transition(const rules::Transition& t) {
    // A rule flapping on a fast input (thousands of transitions a second)
    // must not flood the journal: per rule, the first kTransitionLogBurst
    // lines of a minute are written, the rest counted and summed up.
    constexpr unsigned kTransitionLogBurst = 20;
    const MonoTime now = clock_.monotonic();
    TransitionLogBudget& b = transition_log_[t.rule];
    if (now - b.window_start >= std::chrono::minutes(1)) {
        flush_transition_log(t.rule, b);
        b.window_start = now;
    }
    if (b.logged < kTransitionLogBurst) {
        ++b.logged;
        log_info("rules", t.rule + " " + std::string(rules::transition_name(t.kind)) + " " +
                              loggable(t.values_json()));
    } else {
        ++b.suppressed;
    }
}

void RuleHost::flush_transition_log(const std::string& rule, TransitionLogBudget& b) {
    if (b.suppressed > 0) {
        log_info("rules", rule + ": " + std::to_string(b.suppressed) +
                              " more transition(s) in the last minute not logged (each is a " +
                              "rule event on " + base_ + "/rules/" + rule + ")");
    }
    b.logged = 0;
    b.suppressed = 0;
}

void RuleHost::flush_transition_logs(MonoTime now) {
    for (auto& [rule, b] : transition_log_) {
        if (b.suppressed > 0 && now - b.window_start >= std::chrono::minutes(1)) {
            flush_transition_log(rule, b);
            b.window_start = now;
        }
    }
}

void RuleHost::publish_rule_event(const rules::Transition& t) {
    const bool fired = t.kind == rules::TransitionKind::Fired;
    const std::uint64_t seq = events_.next_seq();
    JsonObject o = begin_envelope(cfg_.gateway.id, seq, fired ? "rule_fired" : "rule_cleared",
                                  "rule:" + t.rule, t.ts);
    o.field("value", fired)
        .field("rule", std::string_view(t.rule))
        .field("severity", rules::severity_name(t.severity))
        .raw_field("values", t.values_json());
    events_.append(outbox::Record{
        seq, cfg_.mqtt.qos, {{base_ + "/rules/" + t.rule, true}}, std::move(o).finish()});
}

bool RuleHost::run_action(const rules::Action& a, const std::string& rule) {
    return std::visit(
        [&](const auto& act) -> bool {
            using T = std::decay_t<decltype(act)>;
            if constexpr (std::is_same_v<T, rules::PublishAction>) {
                // A topic rendered from sensor text may be anything; one the
                // broker refuses would cost the connection (and everything
                // queued behind it), so it never leaves the gateway.
                if (const auto bad = rules::check_publish_topic(act.topic)) {
                    events_.deadletter(
                        "rule:" + rule, "bad_topic",
                        "publish topic " + bad->message + ": " + rules::show_topic(act.topic));
                    return false;
                }
                // Not an event (no envelope, no seq): it waits in the link's
                // memory queue while the broker is away.
                link_.publish({act.topic, act.payload, act.qos, act.retain});
                return true;
            } else if constexpr (std::is_same_v<T, rules::OutputAction>) {
                const OutputReport r =
                    outputs_->set(act.name, act.on, act.duration, clock_.monotonic());
                report_output(r, clock_.wall());
                return r.kind != OutputReport::Kind::Failed &&
                       r.kind != OutputReport::Kind::Skipped;
            } else if constexpr (std::is_same_v<T, rules::ExecAction>) {
                return run_exec(rule, act);
            } else {
                log_info("rule", rule + ": " + act.message);
                return true;
            }
        },
        a);
}

void RuleHost::handle_sagas() {
    if (!engine_) return;
    bool any = false;
    // A failed `do` action fails its step, which yields the compensation's
    // events: a second round at most.
    for (std::vector<rules::SagaEvent> es = engine_->take_saga_events(); !es.empty();
         es = engine_->take_saga_events()) {
        any = true;
        for (const rules::SagaEvent& e : es) {
            publish_saga_event(e);
            bool failed = false;
            for (const rules::Action& a : e.actions) {
                if (!run_action(a, e.rule)) failed = true;
                if (e.do_step && std::holds_alternative<rules::ExecAction>(a))
                    saga_execs_[e.rule] = *e.do_step;
            }
            if (failed && e.do_step)
                engine_->saga_action_failed(e.rule, *e.do_step, clock_.monotonic(), clock_.wall());
        }
    }
    if (!any) return;
    events_.counters().sagas_skipped = engine_->sagas_skipped();
    persist_rule_state(false);
    schedule_tick(clock_.monotonic());  // a running saga needs ticks for its `within`
}

void RuleHost::publish_saga_event(const rules::SagaEvent& e) {
    const char* value = "running";
    if (e.kind == rules::SagaEventKind::Completed) value = "completed";
    if (e.kind == rules::SagaEventKind::Failed) value = "failed";
    if (e.kind == rules::SagaEventKind::Compensated) value = "compensated";
    log_info("saga", e.rule + ": " + std::string(rules::saga_event_name(e.kind)) + " " + e.step +
                         (e.reason.empty() ? std::string() : " (" + e.reason + ")"));
    saga_seen_[e.rule] = StatusSnapshot::Saga{e.rule, value, e.step, e.reason, e.ts};
    const std::uint64_t seq = events_.next_seq();
    JsonObject o = begin_envelope(cfg_.gateway.id, seq, rules::saga_event_name(e.kind),
                                  "rule:" + e.rule, e.ts);
    o.field("value", std::string_view(value))
        .field("rule", std::string_view(e.rule))
        .field("step", std::string_view(e.step))
        .field("step_index", static_cast<std::uint64_t>(e.step_index));
    if (!e.reason.empty()) o.field("reason", std::string_view(e.reason));
    events_.append(outbox::Record{
        seq, cfg_.mqtt.qos, {{base_ + "/sagas/" + e.rule, true}}, std::move(o).finish()});
}

void RuleHost::persist_rule_state(bool force) {
    if (!engine_) return;
    if (!force && engine_->state_generation() == persisted_generation_) {
        state_due_.reset();
        return;
    }
    const MonoTime now = clock_.monotonic();
    if (!force && last_state_ && now < *last_state_ + kRuleStateEvery) {
        state_due_ = *last_state_ + kRuleStateEvery;
        return;
    }
    last_state_ = now;
    state_due_.reset();
    // Written by another thread: the two fsyncs and the rename of an atomic
    // replace would otherwise hold up every reading and output switch behind
    // each transition (milliseconds here, tens of them on an SD card).
    if (!state_writer_)
        state_writer_ = std::make_unique<BackgroundWriter>(state_path(cfg_), "rules", "rule state");
    state_writer_->write(rules::state_to_json(engine_->export_state(clock_.monotonic())));
    persisted_generation_ = engine_->state_generation();
}

std::vector<std::string> RuleHost::rule_names() const {
    std::vector<std::string> out;
    if (!engine_) return out;
    for (const rules::Rule& r : engine_->rules().rules())
        out.push_back(r.name);
    return out;
}

bool RuleHost::reload() {
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
        events_.deadletter("rules", "rules_rejected",
                           std::to_string(errors) + " error(s), first: " + first);
        return false;
    }
    std::vector<std::string> old_names;
    for (const rules::Rule& r : engine_->rules().rules())
        old_names.push_back(r.name);
    const MonoTime now = clock_.monotonic();
    transitions_.clear();
    transitions_ = engine_->replace_rules(res.rules, now, clock_.wall());
    react(transitions_);
    handle_sagas();
    // A removed rule's retained event is emptied (SPEC §3).
    for (const std::string& name : old_names) {
        if (!res.rules->find(name)) link_.publish({base_ + "/rules/" + name, "", 1, true});
    }
    persist_rule_state(true);
    schedule_tick(now);
    log_info("rules", "reloaded: " + std::to_string(res.rules->size()) + " rule(s)");
    return true;
}

void RuleHost::publish_output_event(const std::string& name, bool on, WallTime ts) {
    const std::uint64_t seq = events_.next_seq();
    JsonObject o = begin_envelope(cfg_.gateway.id, seq, "output", name, ts);
    o.field("value", on ? "on" : "off");
    events_.append(outbox::Record{
        seq, cfg_.mqtt.qos, {{base_ + "/outputs/" + name, true}}, std::move(o).finish()});
}

bool RuleHost::on_output_command(const MqttIncoming& m) {
    const std::string prefix = base_ + "/cmd/outputs/";
    if (m.topic.compare(0, prefix.size(), prefix) != 0) return false;
    const std::string name = m.topic.substr(prefix.size());
    // A retained command would switch the output again at every reconnect.
    if (m.retained) {
        log_debug("gateway", "ignored retained command on " + m.topic);
        return true;
    }
    if (!outputs_->remote(name)) {
        events_.deadletter("cmd:" + name, "parse", "no remote output named '" + name + "'");
        return true;
    }
    const auto on = drivers::parse_on_off(m.payload);
    if (!on) {
        events_.deadletter("cmd:" + name, "parse",
                           "expected on or off, got '" + m.payload.substr(0, 60) + "'");
        return true;
    }
    report_output(outputs_->set(name, *on, std::nullopt, clock_.monotonic()), clock_.wall());
    return true;
}

bool RuleHost::run_exec(const std::string& rule, const rules::ExecAction& a) {
    if (a.argv.empty() || a.argv.front().empty()) {
        events_.deadletter("rule:" + rule, "exec_failed", "empty program name");
        return false;
    }
    // Programs are literal in the rule files: one breaker each, a bounded map.
    const std::string& program = a.argv.front();
    Breaker& b = exec_breakers_[program];
    b.configure(a.breaker.value_or(BreakerSettings{}));
    const bool allowed = b.allow(clock_.monotonic());
    const std::string target = exec_target(program);
    report_breaker(target, b.take_changes(), clock_.wall());
    if (!allowed) {
        ++events_.counters().circuit_open;
        events_.deadletter("rule:" + rule, "circuit_open",
                           target + " not run: circuit breaker open (" +
                               std::to_string(b.failures()) +
                               " consecutive failures, last: " + b.detail() + ")");
        return false;
    }
    exec_->run(rule, a.argv, a.timeout);
    return true;
}

void RuleHost::on_exec_finished(const ExecFinished& e) {
    // A program a saga step ran failed: so did the step (if it still runs).
    if (const auto it = saga_execs_.find(e.rule); it != saga_execs_.end()) {
        const std::size_t step = it->second;
        saga_execs_.erase(it);
        if (!e.ok && e.counts) {
            engine_->saga_action_failed(e.rule, step, clock_.monotonic(), clock_.wall());
            handle_sagas();
        }
    }
    if (const auto it = exec_breakers_.find(e.program); it != exec_breakers_.end()) {
        Breaker& b = it->second;
        if (!e.counts)
            b.abandoned();
        else if (e.ok)
            b.succeeded();
        else
            b.failed(clock_.monotonic(), e.detail);
        report_breaker(exec_target(e.program), b.take_changes(), clock_.wall());
    }
    if (e.ok) {
        log_debug("rule", e.rule + ": exec " + e.detail);
        return;
    }
    events_.deadletter("rule:" + e.rule, "exec_failed", e.detail);
}

}  // namespace tg
