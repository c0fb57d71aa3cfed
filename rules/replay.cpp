// Replay of recorded events through the engine on a virtual clock.
#include "rules/replay.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include <istream>
#include <ostream>
#include "core/units.h"

namespace tg::rules {
namespace {

using std::chrono::milliseconds;

bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
    if (at + n > s.size()) return false;
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

// The part of a nlohmann parse error after its "[json.exception…] " prefix.
std::string json_error_text(const std::string& what) {
    const std::size_t close = what.find("] ");
    return close == std::string::npos ? what : what.substr(close + 2);
}

}  // namespace

std::optional<WallTime> parse_rfc3339(std::string_view s) {
    using namespace std::chrono;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (!digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mo) ||
        s[7] != '-' || !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
        !digits(s, 17, 2, sec)) {
        return std::nullopt;
    }
    const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                             day{static_cast<unsigned>(d)}};
    // Nanoseconds since 1970 in 64 bits reach 1677..2262; stay well inside.
    if (!ymd.ok() || y < 1900 || y > 2200 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
    std::size_t i = 19;
    long long frac_ns = 0;
    if (i < s.size() && s[i] == '.') {
        ++i;
        const std::size_t start = i;
        long long scale = 100'000'000;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            frac_ns += (s[i] - '0') * scale;
            scale /= 10;
            ++i;
        }
        if (i == start) return std::nullopt;
    }
    long long offset_s = 0;
    if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
        ++i;
    } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        int oh = 0, om = 0;
        if (!digits(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
            !digits(s, i + 4, 2, om) || oh > 23 || om > 59) {
            return std::nullopt;
        }
        offset_s = (oh * 3600LL + om * 60LL) * (s[i] == '+' ? 1 : -1);
        i += 6;
    } else {
        return std::nullopt;
    }
    if (i != s.size()) return std::nullopt;
    const sys_days days{ymd};
    const auto t = days.time_since_epoch() + hours(h) + minutes(mi) + seconds(sec) -
                   seconds(offset_s) + nanoseconds(frac_ns);
    return WallTime(duration_cast<WallTime::duration>(t));
}

VirtualRun::VirtualRun(std::shared_ptr<const RuleSet> rules, milliseconds tick,
                       EngineOptions options, Listener& listener)
    : rules_(std::move(rules)),
      tick_(tick.count() > 0 ? tick : milliseconds(1000)),
      options_(std::move(options)),
      listener_(listener) {}

VirtualRun::~VirtualRun() = default;

void VirtualRun::start(WallTime t) {
    clock_ = std::make_unique<VirtualClock>(t);
    EngineOptions options = options_;
    options.start = clock_->monotonic();
    engine_ = std::make_unique<Engine>(rules_, std::move(options));
    // Ticks at every multiple of `tick` from here, this instant included.
    next_tick_ = next_tick_after(t - WallTime::duration(1), tick_);
}

WallTime VirtualRun::now() const {
    return clock_ ? clock_->wall() : WallTime{};
}

void VirtualRun::move_clock_to(WallTime t) {
    const WallTime now = clock_->wall();
    if (t > now) clock_->advance(t - now);
}

void VirtualRun::deliver() {
    for (const Transition& t : transitions_)
        listener_.on_transition(t);
    transitions_.clear();
    for (const SagaEvent& e : engine_->take_saga_events())
        listener_.on_saga(e);
}

void VirtualRun::step_to(WallTime t, bool ticks_at_t) {
    for (;;) {
        // A timer due at the same instant as the tick runs first.
        const std::optional<WallTime> timer = listener_.next_timer();
        if (timer && *timer <= next_tick_ && *timer <= t) {
            move_clock_to(*timer);
            listener_.on_timer(clock_->wall());
            continue;
        }
        if (next_tick_ > t || (next_tick_ == t && !ticks_at_t)) break;
        move_clock_to(next_tick_);
        engine_->on_tick(clock_->monotonic(), clock_->wall(), transitions_);
        deliver();
        next_tick_ += tick_;
    }
    move_clock_to(t);
}

void VirtualRun::reading(WallTime ts, std::string sensor, Value value) {
    if (!clock_) start(ts);
    step_to(ts, false);
    Reading r;
    r.sensor = std::move(sensor);
    r.value = std::move(value);
    r.ts = clock_->wall();
    r.mono = clock_->monotonic();
    engine_->on_reading(r, transitions_);
    deliver();
}

void VirtualRun::run_until(WallTime t) {
    if (!clock_) start(t);
    step_to(t, true);
}

std::string explanation_text(const Explanation& e) {
    std::string s =
        format_rfc3339_ms(e.ts) + " " + e.rule + " " + std::string(rule_state_name(e.before));
    if (e.after != e.before) s += " -> " + std::string(rule_state_name(e.after));
    s += e.by_tick ? " (tick): " : " (reading): ";
    s += e.condition_key + " " + e.condition;
    if (e.for_duration.count() > 0 && e.pending_for) {
        s += "; for " + format_duration(e.for_duration) + ": " + format_duration(*e.pending_for) +
             " elapsed";
    }
    if (e.cooldown_left && e.after != RuleState::Firing)
        s += "; cooldown: " + format_duration(*e.cooldown_left) + " left";
    return s;
}

namespace {

EngineOptions replay_options(std::string explain_rule, std::ostream& out) {
    EngineOptions o;
    o.render_actions = false;
    if (!explain_rule.empty()) {
        o.explain_rule = std::move(explain_rule);
        // Ticks are shown when they change the state, or when the cooldown
        // first holds back a firing that is due (then not again until it
        // has let go).
        o.explain = [&out, held_shown = false](const Explanation& e) mutable {
            const bool held = e.after == RuleState::Pending && e.cooldown_left && e.pending_for &&
                              *e.pending_for >= e.for_duration;
            if (e.before != e.after || !e.by_tick || (held && !held_shown))
                out << explanation_text(e) << '\n';
            held_shown = held;
        };
    }
    return o;
}

}  // namespace

Replayer::Replayer(std::shared_ptr<const RuleSet> rules, milliseconds tick, std::ostream& out,
                   std::string explain_rule)
    : out_(out),
      run_(std::move(rules), tick, replay_options(std::move(explain_rule), out), *this) {}

Replayer::~Replayer() = default;

void Replayer::on_transition(const Transition& t) {
    out_ << transition_json(t) << '\n';
}

void Replayer::on_saga(const SagaEvent& e) {
    out_ << saga_event_json(e) << '\n';
}

void Replayer::finish() {
    if (run_.started()) run_.run_until(run_.now());
    out_.flush();
}

bool Replayer::feed(std::istream& in, const std::string& name, std::ostream& err) {
    bool ok = true;
    std::string line;
    long line_no = 0;
    auto bad = [&](const std::string& message) {
        err << name << ':' << line_no << ":1: error: " << message << '\n';
        ok = false;
    };
    while (std::getline(in, line)) {
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::parse_error& e) {
            bad("invalid JSON: " + json_error_text(e.what()));
            continue;
        }
        if (!j.is_object()) {
            bad("expected an event envelope (a JSON object)");
            continue;
        }
        const auto type = j.find("type");
        if (type == j.end() || !type->is_string() || type->get<std::string>() != "reading") {
            continue;
        }
        const auto source = j.find("source");
        if (source == j.end() || !source->is_string() || source->get<std::string>().empty()) {
            bad("reading without a 'source'");
            continue;
        }
        const auto ts_field = j.find("ts");
        std::optional<WallTime> ts;
        if (ts_field != j.end() && ts_field->is_string()) {
            ts = parse_rfc3339(ts_field->get<std::string>());
        }
        if (!ts) {
            bad("reading without a valid 'ts' (RFC 3339, e.g. 2026-11-26T17:15:53.123Z)");
            continue;
        }
        const auto v = j.find("value");
        Value value;
        if (v != j.end() && v->is_number()) {
            const double d = v->get<double>();
            if (!std::isfinite(d)) {
                bad("reading with a value out of range");
                continue;
            }
            value = d;
        } else if (v != j.end() && v->is_boolean()) {
            value = v->get<bool>();
        } else if (v != j.end() && v->is_string()) {
            value = v->get<std::string>();
        } else {
            bad("reading without a 'value' (number, boolean or string)");
            continue;
        }
        run_.reading(*ts, source->get<std::string>(), std::move(value));
    }
    return ok;
}

int replay(std::istream& in, const std::string& name, const RuleSet& rules, milliseconds tick,
           std::ostream& out, std::ostream& err) {
    // Not owned: the caller's set outlives the replay.
    std::shared_ptr<const RuleSet> set(std::shared_ptr<const RuleSet>(), &rules);
    Replayer r(set, tick, out);
    const bool ok = r.feed(in, name, err);
    r.finish();
    return ok ? 0 : 1;
}

}  // namespace tg::rules
