// The engine's state machine per rule (idle -> pending -> firing -> idle), the
// sensor -> rules index, shared windows, reloads and state export/import.
#include "rules/engine.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/json_writer.h"
#include "rules/explain.h"

namespace tg::rules {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

std::int64_t to_ns(MonoTime t) {
    return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
}

MonoTime from_ns(std::int64_t ns) {
    return MonoTime(std::chrono::duration_cast<MonoTime::duration>(nanoseconds(ns)));
}

std::int64_t ms_to_ns(milliseconds d) {
    return std::chrono::duration_cast<nanoseconds>(d).count();
}

// Imported durations come from a file: keep them where arithmetic is safe.
std::int64_t bounded_ns(milliseconds d) {
    return ms_to_ns(milliseconds(std::clamp<std::int64_t>(d.count(), 0, kMaxRuleDurationMs)));
}

milliseconds ns_to_ms(std::int64_t ns) {
    return std::chrono::duration_cast<milliseconds>(nanoseconds(ns));
}

}  // namespace

std::string_view transition_name(TransitionKind k) {
    return k == TransitionKind::Fired ? "fired" : "cleared";
}

std::string_view saga_event_name(SagaEventKind k) {
    switch (k) {
        case SagaEventKind::Started:
            return "saga_started";
        case SagaEventKind::Step:
            return "saga_step";
        case SagaEventKind::Completed:
            return "saga_completed";
        case SagaEventKind::Failed:
            return "saga_failed";
        case SagaEventKind::Compensated:
            return "saga_compensated";
    }
    return "saga_started";
}

std::string saga_event_json(const SagaEvent& e) {
    JsonObject o;
    o.field("ts", std::string_view(format_rfc3339_ms(e.ts)))
        .field("rule", std::string_view(e.rule))
        .field("saga", saga_event_name(e.kind))
        .field("step", std::string_view(e.step));
    if (!e.reason.empty()) o.field("reason", std::string_view(e.reason));
    return std::move(o).finish();
}

std::string_view rule_state_name(RuleState s) {
    switch (s) {
        case RuleState::Idle:
            return "idle";
        case RuleState::Pending:
            return "pending";
        case RuleState::Firing:
            return "firing";
    }
    return "idle";
}

std::string Transition::values_json() const {
    JsonObject o;
    for (const auto& [name, value] : values) {
        if (value) {
            o.value_field(name, *value);
        } else {
            o.null_field(name);
        }
    }
    return std::move(o).finish();
}

std::string transition_json(const Transition& t) {
    JsonObject o;
    o.field("ts", std::string_view(format_rfc3339_ms(t.ts)));
    o.field("rule", std::string_view(t.rule));
    o.field("transition", transition_name(t.kind));
    o.raw_field("values", t.values_json());
    return std::move(o).finish();
}

WallTime next_tick_after(WallTime t, milliseconds tick) {
    const auto step = std::chrono::duration_cast<WallTime::duration>(tick).count();
    const auto at = t.time_since_epoch().count();
    if (step <= 0) return t;
    auto k = at / step;
    if (at % step != 0 && at < 0) --k;  // floor division for times before 1970
    return WallTime(WallTime::duration((k + 1) * step));
}

// ---------------------------------------------------------------------------

Engine::Engine(std::shared_ptr<const RuleSet> rules, EngineOptions options)
    : set_(std::move(rules)), options_(std::move(options)) {
    if (!set_) set_ = std::make_shared<RuleSet>();
    if (options_.start) {
        started_ = true;
        start_ns_ = to_ns(*options_.start);
        now_ = start_ns_;
    }
    for (const std::string& name : set_->sensors()) {
        sensor_index_.insert(name, static_cast<std::uint32_t>(sensor_names_.size()));
        sensor_names_.push_back(name);
    }
    sensors_.resize(sensor_names_.size());
    for (const WindowSpec& w : set_->windows())
        windows_.emplace_back(w.length_ns, w.extremes);
    states_.resize(set_->rules().size());
    sagas_.resize(set_->rules().size());
    build_indices();
}

void Engine::build_indices() {
    rules_by_sensor_.assign(sensors_.size(), {});
    windows_by_sensor_.assign(sensors_.size(), {});
    tick_rules_.clear();
    const auto& rules = set_->rules();
    explain_index_ = SIZE_MAX;
    has_sagas_ = false;
    for (std::size_t i = 0; i < rules.size(); ++i) {
        if (options_.explain && rules[i].name == options_.explain_rule) explain_index_ = i;
        if (rules[i].saga) has_sagas_ = true;
    }
    for (std::size_t i = 0; i < rules.size(); ++i) {
        for (std::uint32_t s : rules[i].sensors) {
            rules_by_sensor_[s].push_back(static_cast<std::uint32_t>(i));
        }
        if (rules[i].uses_time || rules[i].cooldown.count() > 0) {
            tick_rules_.push_back(static_cast<std::uint32_t>(i));
        }
    }
    const auto& windows = set_->windows();
    for (std::size_t w = 0; w < windows.size(); ++w) {
        windows_by_sensor_[windows[w].sensor].push_back(static_cast<std::uint32_t>(w));
    }
}

std::int64_t Engine::advance(MonoTime mono) {
    const std::int64_t t = to_ns(mono);
    if (!started_) {
        started_ = true;
        start_ns_ = t;
        now_ = t;
    }
    now_ = std::max(now_, t);
    return now_;
}

std::uint32_t Engine::slot_for(const std::string& sensor) {
    const std::uint32_t found = sensor_index_.find(sensor);
    if (found != NameIndex::npos) return found;
    // A sensor no rule names: its latest value is kept for later reloads.
    const auto slot = static_cast<std::uint32_t>(sensors_.size());
    sensor_index_.insert(sensor, slot);
    sensor_names_.push_back(sensor);
    sensors_.emplace_back();
    rules_by_sensor_.emplace_back();
    windows_by_sensor_.emplace_back();
    return slot;
}

std::vector<Transition> Engine::on_reading(const Reading& r) {
    std::vector<Transition> out;
    on_reading(r, out);
    return out;
}

void Engine::on_reading(const Reading& r, std::vector<Transition>& out) {
    const std::int64_t now = advance(r.mono);
    const std::uint32_t slot = slot_for(r.sensor);
    SensorData& d = sensors_[slot];
    d.has_value = true;
    d.value = r.value;
    d.last_ns = now;
    if (!windows_by_sensor_[slot].empty()) {
        const double* num = std::get_if<double>(&r.value);
        const bool numeric = num && std::isfinite(*num);
        for (std::uint32_t w : windows_by_sensor_[slot]) {
            windows_[w].add(now, numeric ? *num : 0.0, numeric);
        }
    }
    for (std::uint32_t i : rules_by_sensor_[slot])
        evaluate(i, now, r.ts, out);
    if (active_sagas_ > 0) [[unlikely]]
        check_sagas(now, r.ts);
}

std::vector<Transition> Engine::on_tick(MonoTime mono, WallTime wall) {
    std::vector<Transition> out;
    on_tick(mono, wall, out);
    return out;
}

void Engine::on_tick(MonoTime mono, WallTime wall, std::vector<Transition>& out) {
    const std::int64_t now = advance(mono);
    in_tick_ = true;
    struct TickEnd {
        bool& flag;
        ~TickEnd() { flag = false; }
    } tick_end{in_tick_};
    const auto& rules = set_->rules();
    for (std::uint32_t i : tick_rules_) {
        const Rule& rule = rules[i];
        if (!rule.uses_time) {
            // Only its cooldown brings it here: evaluate while held back by it
            // or inside it, so it fires at the first tick once it is over.
            const Runtime& st = states_[i];
            if (st.state != RuleState::Pending && !in_cooldown(rule, st, now)) continue;
        }
        evaluate(i, now, wall, out);
    }
    if (active_sagas_ > 0) check_sagas(now, wall);
}

bool Engine::in_cooldown(const Rule& rule, const Runtime& st, std::int64_t now) const {
    return rule.cooldown.count() > 0 && st.has_last_firing &&
           now < st.last_firing + ms_to_ns(rule.cooldown);
}

void Engine::evaluate_explained(std::size_t i, std::int64_t now, WallTime wall,
                                std::vector<Transition>& out) {
    const Rule& rule = set_->rules()[i];
    Runtime& st = states_[i];
    EvalEnv env{sensors_.data(), windows_.data(), now, start_ns_, nullptr};
    Explanation e;
    e.rule = rule.name;
    e.ts = wall;
    e.by_tick = in_tick_;
    e.before = st.state;
    const bool firing = st.state == RuleState::Firing;
    const Program& condition = firing && rule.clear_when ? *rule.clear_when : rule.when;
    e.condition_key = firing && rule.clear_when ? "clear_when" : "when";
    e.condition = explain_condition(condition, env, sensor_names_, set_->windows());
    explaining_ = true;
    evaluate(i, now, wall, out);
    explaining_ = false;
    e.after = st.state;
    e.for_duration = rule.for_duration;
    if (st.state == RuleState::Pending ||
        (st.state == RuleState::Firing && e.before != RuleState::Firing)) {
        e.pending_for = std::chrono::milliseconds((now - st.since) / 1'000'000);
    }
    if (in_cooldown(rule, st, now)) {
        e.cooldown_left = std::chrono::milliseconds(
            (st.last_firing + ms_to_ns(rule.cooldown) - now + 999'999) / 1'000'000);
    }
    options_.explain(e);
}

void Engine::evaluate(std::size_t i, std::int64_t now, WallTime wall,
                      std::vector<Transition>& out) {
    if (i == explain_index_ && !explaining_) [[unlikely]] {
        evaluate_explained(i, now, wall, out);
        return;
    }
    const Rule& rule = set_->rules()[i];
    Runtime& st = states_[i];
    EvalEnv env{sensors_.data(), windows_.data(), now, start_ns_, nullptr};
    if (st.state == RuleState::Firing) {
        // Clears only on a definite answer: clear_when true, or when false.
        // A missing value (a silent sensor) never clears by itself.
        const bool clears = rule.clear_when ? evaluate_program(*rule.clear_when, env).is_true()
                                            : evaluate_program(rule.when, env).is_false();
        if (clears) {
            st.state = RuleState::Idle;
            ++generation_;
            emit(rule, TransitionKind::Cleared, now, wall, out);
        }
        return;
    }
    const bool holds = evaluate_program(rule.when, env).is_true();
    if (st.state == RuleState::Pending) {
        if (!holds) {
            st.state = RuleState::Idle;
            ++generation_;
            return;
        }
    } else {
        if (!holds) return;
        st.state = RuleState::Pending;
        st.since = now;
        ++generation_;
    }
    if (now - st.since >= ms_to_ns(rule.for_duration) && !in_cooldown(rule, st, now)) {
        st.state = RuleState::Firing;
        st.has_last_firing = true;
        st.last_firing = now;
        ++generation_;
        emit(rule, TransitionKind::Fired, now, wall, out);
    }
}

std::string Engine::render(const Template& t, EvalEnv& env) const {
    return render_template(t, env);
}

void Engine::emit(const Rule& rule, TransitionKind kind, std::int64_t now, WallTime wall,
                  std::vector<Transition>& out) {
    out.push_back(make_transition(rule, kind, now, wall));
    if (kind == TransitionKind::Fired && rule.saga)
        start_saga(static_cast<std::size_t>(&rule - set_->rules().data()), now, wall);
}

Transition Engine::make_transition(const Rule& rule, TransitionKind kind, std::int64_t now,
                                   WallTime wall) {
    Transition t;
    t.rule = rule.name;
    t.kind = kind;
    t.ts = wall;
    t.mono = from_ns(now);
    t.severity = rule.severity;
    t.values.reserve(rule.sensors.size());
    for (std::uint32_t s : rule.sensors) {
        const SensorData& d = sensors_[s];
        t.values.emplace_back(sensor_names_[s],
                              d.has_value ? std::optional<Value>(d.value) : std::nullopt);
    }
    const auto& specs = kind == TransitionKind::Fired ? rule.actions : rule.on_clear;
    t.actions = render_actions(rule, specs, now, wall, {});
    return t;
}

std::vector<Action> Engine::render_actions(const Rule& rule, const std::vector<ActionSpec>& specs,
                                           std::int64_t now, WallTime wall, std::string_view step) {
    std::vector<Action> out;
    if (!options_.render_actions || specs.empty()) return out;
    const std::string ts = format_rfc3339_ms(wall);
    const TemplateVars vars{rule.name, options_.gateway, severity_name(rule.severity), ts, step};
    EvalEnv env{sensors_.data(), windows_.data(), now, start_ns_, &vars};
    out.reserve(specs.size());
    for (const ActionSpec& spec : specs) {
        if (const auto* p = std::get_if<PublishSpec>(&spec)) {
            out.emplace_back(
                PublishAction{render(p->topic, env), render(p->payload, env), p->qos, p->retain});
        } else if (const auto* o = std::get_if<OutputSpec>(&spec)) {
            out.emplace_back(OutputAction{o->name, o->on, o->duration});
        } else if (const auto* x = std::get_if<ExecSpec>(&spec)) {
            ExecAction a;
            a.timeout = x->timeout;
            a.breaker = x->breaker;
            for (const Template& arg : x->argv)
                a.argv.push_back(render(arg, env));
            out.emplace_back(std::move(a));
        } else if (const auto* l = std::get_if<LogSpec>(&spec)) {
            out.emplace_back(LogAction{render(l->message, env)});
        }
    }
    return out;
}

// ---------------------------------------------------------------------------
// Sagas

SagaEvent Engine::saga_event(const Rule& rule, SagaEventKind kind, std::size_t step,
                             std::int64_t now, WallTime wall) const {
    SagaEvent e;
    e.rule = rule.name;
    e.kind = kind;
    e.ts = wall;
    e.mono = from_ns(now);
    e.step_index = step;
    if (rule.saga && step < rule.saga->steps.size()) e.step = rule.saga->steps[step].name;
    return e;
}

void Engine::start_saga(std::size_t i, std::int64_t now, WallTime wall) {
    const Rule& rule = set_->rules()[i];
    SagaRun& run = sagas_[i];
    if (run.active) {
        ++sagas_skipped_;  // one instance per rule
        return;
    }
    run = SagaRun{true, 0, now, wall};
    ++active_sagas_;
    ++generation_;
    SagaEvent e = saga_event(rule, SagaEventKind::Started, 0, now, wall);
    e.actions = render_actions(rule, rule.saga->steps[0].actions, now, wall, e.step);
    e.do_step = 0;
    saga_events_.push_back(std::move(e));
}

void Engine::check_sagas(std::int64_t now, WallTime wall) {
    const auto& rules = set_->rules();
    for (std::size_t i = 0; i < rules.size() && active_sagas_ > 0; ++i) {
        SagaRun& run = sagas_[i];
        // A step whose `do` has only just been handed out is judged from the
        // next reading or tick on, not against what held before it ran.
        if (!run.active || run.since == now) continue;
        const Rule& rule = rules[i];
        const SagaStep& step = rule.saga->steps[run.step];
        EvalEnv env{sensors_.data(), windows_.data(), now, start_ns_, nullptr};
        if (evaluate_program(step.expect, env).is_true()) {
            SagaEvent e = saga_event(rule, SagaEventKind::Step, run.step, now, wall);
            ++generation_;
            if (run.step + 1 < rule.saga->steps.size()) {
                ++run.step;
                run.since = now;
                run.since_wall = wall;
                e.actions = render_actions(rule, rule.saga->steps[run.step].actions, now, wall,
                                           rule.saga->steps[run.step].name);
                e.do_step = run.step;
                saga_events_.push_back(std::move(e));
            } else {
                saga_events_.push_back(std::move(e));
                saga_events_.push_back(
                    saga_event(rule, SagaEventKind::Completed, run.step, now, wall));
                run.active = false;
                --active_sagas_;
            }
        } else if (now - run.since >= ms_to_ns(step.within)) {
            fail_saga(rule, run, "timeout", now, wall);
        }
    }
}

void Engine::fail_saga(const Rule& rule, SagaRun& run, std::string reason, std::int64_t now,
                       WallTime wall) {
    const SagaSpec& saga = *rule.saga;
    SagaEvent failed = saga_event(rule, SagaEventKind::Failed, run.step, now, wall);
    failed.reason = std::move(reason);
    // The failed step's undo, then those of the steps done, last first.
    for (std::size_t k = run.step + 1; k-- > 0;) {
        std::vector<Action> undo =
            render_actions(rule, saga.steps[k].undo, now, wall, saga.steps[k].name);
        for (Action& a : undo)
            failed.actions.push_back(std::move(a));
    }
    for (Action& a : render_actions(rule, saga.on_failure, now, wall, failed.step))
        failed.actions.push_back(std::move(a));
    saga_events_.push_back(std::move(failed));
    saga_events_.push_back(saga_event(rule, SagaEventKind::Compensated, run.step, now, wall));
    run.active = false;
    --active_sagas_;
    ++generation_;
}

void Engine::saga_action_failed(std::string_view rule, std::size_t step, MonoTime mono,
                                WallTime wall) {
    const std::int64_t now = advance(mono);
    const auto& rules = set_->rules();
    for (std::size_t i = 0; i < rules.size(); ++i) {
        if (rules[i].name != rule) continue;
        SagaRun& run = sagas_[i];
        if (run.active && run.step == step) fail_saga(rules[i], run, "action_failed", now, wall);
        return;
    }
}

bool Engine::saga_running(std::string_view rule) const {
    const auto& rules = set_->rules();
    for (std::size_t i = 0; i < rules.size(); ++i) {
        if (rules[i].name == rule) return sagas_[i].active;
    }
    return false;
}

RuleState Engine::state_of(std::string_view rule) const {
    const auto& rules = set_->rules();
    for (std::size_t i = 0; i < rules.size(); ++i) {
        if (rules[i].name == rule) return states_[i].state;
    }
    return RuleState::Idle;
}

Engine::RuleStatus Engine::status_of(std::size_t i) const {
    RuleStatus s;
    if (i >= states_.size()) return s;
    s.state = states_[i].state;
    if (s.state == RuleState::Pending) {
        s.pending_since = from_ns(states_[i].since);
    }
    return s;
}

// ---------------------------------------------------------------------------
// Reload

std::vector<Transition> Engine::replace_rules(std::shared_ptr<const RuleSet> rules, MonoTime mono,
                                              WallTime wall) {
    if (!rules) rules = std::make_shared<RuleSet>();
    const std::int64_t now = advance(mono);
    std::vector<Transition> out;
    const auto& old_rules = set_->rules();

    // Firing rules that go away clear first, rendered against the old set.
    for (std::size_t i = 0; i < old_rules.size(); ++i) {
        if (states_[i].state != RuleState::Firing) continue;
        const Rule* next = rules->find(old_rules[i].name);
        if (!next || next->definition != old_rules[i].definition) {
            out.push_back(make_transition(old_rules[i], TransitionKind::Cleared, now, wall));
        }
    }
    // So do sagas whose rule or saga changed: compensated with the old steps.
    for (std::size_t i = 0; i < old_rules.size(); ++i) {
        if (!sagas_[i].active) continue;
        const Rule* next = rules->find(old_rules[i].name);
        if (!next || !next->saga || next->saga->definition != old_rules[i].saga->definition)
            fail_saga(old_rules[i], sagas_[i], "reloaded", now, wall);
    }

    // Sensors: the new set's slots first, then every other sensor seen.
    std::vector<SensorData> sensors;
    std::vector<std::string> names;
    NameIndex index;
    auto add_sensor = [&](const std::string& name) {
        if (index.find(name) != NameIndex::npos) return;
        index.insert(name, static_cast<std::uint32_t>(names.size()));
        names.push_back(name);
        const std::uint32_t old = sensor_index_.find(name);
        sensors.push_back(old != NameIndex::npos ? sensors_[old] : SensorData{});
    };
    for (const std::string& name : rules->sensors())
        add_sensor(name);
    for (const std::string& name : sensor_names_)
        add_sensor(name);

    // Windows still in use keep their readings.
    std::map<std::pair<std::string, std::int64_t>, std::size_t> old_windows;
    for (std::size_t w = 0; w < set_->windows().size(); ++w) {
        const WindowSpec& spec = set_->windows()[w];
        old_windows.emplace(std::make_pair(sensor_names_[spec.sensor], spec.length_ns), w);
    }
    std::vector<Window> windows;
    windows.reserve(rules->windows().size());
    for (const WindowSpec& spec : rules->windows()) {
        const auto it = old_windows.find({rules->sensors()[spec.sensor], spec.length_ns});
        if (it != old_windows.end()) {
            windows.push_back(std::move(windows_[it->second]));
            if (spec.extremes) windows.back().track_extremes();
            old_windows.erase(it);
        } else {
            windows.emplace_back(spec.length_ns, spec.extremes);
        }
    }

    // Unchanged rules keep their state.
    std::vector<Runtime> states(rules->rules().size());
    std::vector<SagaRun> sagas(rules->rules().size());
    active_sagas_ = 0;
    for (std::size_t j = 0; j < rules->rules().size(); ++j) {
        const Rule& r = rules->rules()[j];
        for (std::size_t i = 0; i < old_rules.size(); ++i) {
            if (old_rules[i].name != r.name) continue;
            if (old_rules[i].definition == r.definition) states[j] = states_[i];
            if (sagas_[i].active) {  // unchanged: failed above otherwise
                sagas[j] = sagas_[i];
                ++active_sagas_;
            }
            break;
        }
    }

    set_ = std::move(rules);
    sensors_ = std::move(sensors);
    sensor_names_ = std::move(names);
    sensor_index_ = std::move(index);
    windows_ = std::move(windows);
    states_ = std::move(states);
    sagas_ = std::move(sagas);
    build_indices();
    ++generation_;
    return out;
}

// ---------------------------------------------------------------------------
// State export/import

EngineState Engine::export_state(MonoTime mono) const {
    const std::int64_t now = std::max(now_, to_ns(mono));
    EngineState s;
    const auto& rules = set_->rules();
    for (std::size_t i = 0; i < rules.size(); ++i) {
        const Runtime& st = states_[i];
        RuleStateRecord r;
        r.name = rules[i].name;
        r.definition = rules[i].definition;
        r.state = st.state;
        r.severity = rules[i].severity;
        if (st.state == RuleState::Pending) r.pending_for = ns_to_ms(now - st.since);
        if (st.has_last_firing) r.since_last_firing = ns_to_ms(now - st.last_firing);
        s.rules.push_back(std::move(r));
    }
    for (std::size_t i = 0; i < sensors_.size(); ++i) {
        if (!sensors_[i].has_value) continue;
        s.sensors.push_back(
            SensorRecord{sensor_names_[i], sensors_[i].value, ns_to_ms(now - sensors_[i].last_ns)});
    }
    for (std::size_t i = 0; i < rules.size(); ++i) {
        const SagaRun& run = sagas_[i];
        if (run.active)
            s.sagas.push_back(
                SagaRecord{rules[i].name, rules[i].saga->definition, run.step, run.since_wall});
    }
    return s;
}

std::vector<Transition> Engine::import_state(const EngineState& state, MonoTime mono,
                                             WallTime wall) {
    const std::int64_t now = advance(mono);
    std::vector<Transition> out;
    for (const SensorRecord& rec : state.sensors) {
        SensorData& d = sensors_[slot_for(rec.name)];
        if (d.has_value) continue;  // a reading of this run is newer
        d.has_value = true;
        d.value = rec.value;
        d.last_ns = now - bounded_ns(rec.age);
    }
    const auto& rules = set_->rules();
    for (const RuleStateRecord& rec : state.rules) {
        std::size_t i = 0;
        while (i < rules.size() && rules[i].name != rec.name)
            ++i;
        const bool found = i < rules.size();
        if (!found || rules[i].definition != rec.definition) {
            if (rec.state != RuleState::Firing) continue;
            if (found) {
                out.push_back(make_transition(rules[i], TransitionKind::Cleared, now, wall));
            } else {
                Transition t;
                t.rule = rec.name;
                t.kind = TransitionKind::Cleared;
                t.ts = wall;
                t.mono = from_ns(now);
                t.severity = rec.severity;
                out.push_back(std::move(t));
            }
            continue;
        }
        Runtime& st = states_[i];
        st.state = rec.state;
        st.since = now - (rec.pending_for ? bounded_ns(*rec.pending_for) : 0);
        st.has_last_firing = rec.since_last_firing.has_value();
        st.last_firing = st.has_last_firing ? now - bounded_ns(*rec.since_last_firing) : 0;
    }
    // Sagas resume on their step with what is left of its `within`, counted
    // on the wall clock: the time the gateway was down has passed for the
    // valves and pumps too.
    for (const SagaRecord& rec : state.sagas) {
        std::size_t i = 0;
        while (i < rules.size() && rules[i].name != rec.rule)
            ++i;
        if (i == rules.size() || !rules[i].saga || rules[i].saga->definition != rec.definition ||
            rec.step >= rules[i].saga->steps.size() || sagas_[i].active) {
            continue;
        }
        const auto elapsed = std::clamp<std::int64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(wall - rec.step_started).count(),
            0, ms_to_ns(milliseconds(kMaxRuleDurationMs)));
        SagaRun& run = sagas_[i];
        run = SagaRun{true, rec.step, now - elapsed, rec.step_started};
        ++active_sagas_;
        if (elapsed >= ms_to_ns(rules[i].saga->steps[rec.step].within))
            fail_saga(rules[i], run, "restart_expired", now, wall);
    }
    ++generation_;
    return out;
}

std::string state_to_json(const EngineState& s) {
    nlohmann::json rules = nlohmann::json::array();
    for (const RuleStateRecord& r : s.rules) {
        nlohmann::json j;
        j["name"] = r.name;
        j["definition"] = r.definition;
        j["state"] = std::string(rule_state_name(r.state));
        j["severity"] = std::string(severity_name(r.severity));
        if (r.pending_for) j["pending_ms"] = r.pending_for->count();
        if (r.since_last_firing) j["since_last_firing_ms"] = r.since_last_firing->count();
        rules.push_back(std::move(j));
    }
    nlohmann::json sensors = nlohmann::json::array();
    for (const SensorRecord& r : s.sensors) {
        nlohmann::json j;
        j["name"] = r.name;
        if (const double* d = std::get_if<double>(&r.value)) {
            j["value"] = *d;
        } else if (const bool* b = std::get_if<bool>(&r.value)) {
            j["value"] = *b;
        } else {
            j["value"] = std::get<std::string>(r.value);
        }
        j["age_ms"] = r.age.count();
        sensors.push_back(std::move(j));
    }
    nlohmann::json root;
    root["version"] = 1;
    root["rules"] = std::move(rules);
    root["sensors"] = std::move(sensors);
    nlohmann::json sagas = nlohmann::json::array();
    for (const SagaRecord& r : s.sagas) {
        nlohmann::json j;
        j["rule"] = r.rule;
        j["definition"] = r.definition;
        j["step"] = r.step;
        j["step_started_ms"] =
            std::chrono::duration_cast<milliseconds>(r.step_started.time_since_epoch()).count();
        sagas.push_back(std::move(j));
    }
    if (!sagas.empty()) root["sagas"] = std::move(sagas);
    // Sensor strings may hold any bytes: invalid UTF-8 becomes U+FFFD rather
    // than an exception.
    return root.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::optional<EngineState> state_from_json(std::string_view text, std::string* why) {
    auto fail = [&](std::string message) -> std::optional<EngineState> {
        if (why) *why = std::move(message);
        return std::nullopt;
    };
    const nlohmann::json root = nlohmann::json::parse(text, nullptr, false);
    if (root.is_discarded()) return fail("not valid JSON");
    if (!root.is_object() || !root.contains("version") || root["version"] != 1) {
        return fail("not a rule state file of version 1");
    }
    if (!root.contains("rules") || !root["rules"].is_array()) return fail("no 'rules' list");
    EngineState s;
    for (const nlohmann::json& j : root["rules"]) {
        if (!j.is_object() || !j.contains("name") || !j["name"].is_string() ||
            !j.contains("state") || !j["state"].is_string()) {
            return fail("a rule entry lacks its name or state");
        }
        RuleStateRecord r;
        r.name = j["name"].get<std::string>();
        if (j.contains("definition") && j["definition"].is_string()) {
            r.definition = j["definition"].get<std::string>();
        }
        const std::string st = j["state"].get<std::string>();
        if (st == "idle") {
            r.state = RuleState::Idle;
        } else if (st == "pending") {
            r.state = RuleState::Pending;
        } else if (st == "firing") {
            r.state = RuleState::Firing;
        } else {
            return fail("unknown rule state '" + st + "'");
        }
        const std::string sev = j.value("severity", std::string("warning"));
        r.severity = sev == "info"       ? RuleSeverity::Info
                     : sev == "critical" ? RuleSeverity::Critical
                                         : RuleSeverity::Warning;
        auto duration = [&](const char* key) -> std::optional<milliseconds> {
            if (!j.contains(key) || !j[key].is_number_integer()) return std::nullopt;
            return milliseconds(
                std::clamp<std::int64_t>(j[key].get<std::int64_t>(), 0, kMaxRuleDurationMs));
        };
        r.pending_for = duration("pending_ms");
        r.since_last_firing = duration("since_last_firing_ms");
        if (r.state == RuleState::Pending && !r.pending_for) r.pending_for = milliseconds(0);
        s.rules.push_back(std::move(r));
    }
    if (root.contains("sensors") && root["sensors"].is_array()) {
        for (const nlohmann::json& j : root["sensors"]) {
            if (!j.is_object() || !j.contains("name") || !j["name"].is_string() ||
                !j.contains("value")) {
                return fail("a sensor entry lacks its name or value");
            }
            SensorRecord r;
            r.name = j["name"].get<std::string>();
            const nlohmann::json& v = j["value"];
            if (v.is_number()) {
                r.value = v.get<double>();
            } else if (v.is_boolean()) {
                r.value = v.get<bool>();
            } else if (v.is_string()) {
                r.value = v.get<std::string>();
            } else {
                return fail("sensor '" + r.name + "' has a value of an unknown type");
            }
            if (j.contains("age_ms") && j["age_ms"].is_number_integer()) {
                r.age = milliseconds(std::clamp<std::int64_t>(j["age_ms"].get<std::int64_t>(), 0,
                                                              kMaxRuleDurationMs));
            }
            s.sensors.push_back(std::move(r));
        }
    }
    if (root.contains("sagas") && root["sagas"].is_array()) {
        for (const nlohmann::json& j : root["sagas"]) {
            if (!j.is_object() || !j.contains("rule") || !j["rule"].is_string() ||
                !j.contains("step") || !j["step"].is_number_unsigned() ||
                !j.contains("step_started_ms") || !j["step_started_ms"].is_number_integer()) {
                return fail("a saga entry lacks its rule, step or start");
            }
            SagaRecord r;
            r.rule = j["rule"].get<std::string>();
            r.definition = j.value("definition", std::string());
            r.step = static_cast<std::size_t>(
                std::min<std::uint64_t>(j["step"].get<std::uint64_t>(), 1'000'000));
            // Within ±300 years of 1970: far from nanosecond overflow.
            const std::int64_t ms =
                std::clamp<std::int64_t>(j["step_started_ms"].get<std::int64_t>(),
                                         -9'000'000'000'000LL, 9'000'000'000'000LL);
            r.step_started = WallTime(milliseconds(ms));
            s.sagas.push_back(std::move(r));
        }
    }
    return s;
}

}  // namespace tg::rules
