// Rule test files: reading them (YamlReader, like every other file users
// write), running them on a VirtualRun, and reporting.
#include "rules/rule_test.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

#include "core/file_read.h"
#include "core/units.h"
#include "rules/publish_topic.h"
#include "rules/replay.h"
#include "rules/yaml_reader.h"

namespace tg::rules {
namespace {

using std::chrono::milliseconds;

const std::vector<std::string> kTopKeys = {"rules", "tick", "tests"};
const std::vector<std::string> kTestKeys = {"name", "given", "expect", "expect_not"};
const std::vector<std::string> kExpectKeys = {"at",      "rule",    "transition", "output", "value",
                                              "publish", "payload", "exec",       "log",    "saga",
                                              "event",   "step",    "reason"};
// The keys that name what an expectation is about, and the keys each allows.
struct KindKeys {
    const char* key;
    TestEventKind kind;
    std::vector<std::string_view> details;  // the other keys it takes
};
const KindKeys kKinds[] = {
    {"rule", TestEventKind::Rule, {"transition"}},
    {"output", TestEventKind::Output, {"value"}},
    {"publish", TestEventKind::Publish, {"payload"}},
    {"exec", TestEventKind::Exec, {}},
    {"log", TestEventKind::Log, {}},
    {"saga", TestEventKind::Saga, {"event", "step", "reason"}},
};
// SagaEventKind's words, in its order.
const std::vector<std::string> kSagaWords = {"started", "step", "completed", "failed",
                                             "compensated"};

bool takes(const KindKeys& k, std::string_view key) {
    return std::find(k.details.begin(), k.details.end(), key) != k.details.end();
}

constexpr std::size_t kShownPayloadBytes = 400;

std::string_view kind_word(TestEventKind k) {
    switch (k) {
        case TestEventKind::Rule:
            return "rule";
        case TestEventKind::Output:
            return "output";
        case TestEventKind::Publish:
            return "publish";
        case TestEventKind::Exec:
            return "exec";
        case TestEventKind::Log:
            return "log";
        case TestEventKind::Saga:
            return "saga";
    }
    return "?";
}

// Plain text that can only have been meant as a number (1e999, 1.2.3):
// reading it as text would hide the slip.
bool looks_numeric(std::string_view s) {
    if (!s.empty() && (s.front() == '+' || s.front() == '-')) s.remove_prefix(1);
    if (s.empty() || !((s.front() >= '0' && s.front() <= '9') || s.front() == '.')) return false;
    return s.find_first_not_of("0123456789.eE+-_") == std::string_view::npos;
}

// Reads one test file: the top-level keys, then (with the rules loaded) its
// tests, whose sensor, rule and output names are checked against them.
class TestFileReader {
  public:
    TestFileReader(const SourceText& src, const RuleTestContext& context, Diagnostics& diags)
        : yaml_(src, diags), context_(context), diags_(diags) {}

    std::optional<RuleTestFile> read();

  private:
    void names_from(const RuleSet& rules);
    void test(const YAML::Node& node, std::set<std::string>& names, RuleTestFile& out);
    void given(const YamlEntry& e, const std::string& label, RuleTest& t);
    void expectations(const YamlEntry& e, bool negative, const std::string& label,
                      std::vector<Expectation>& out, milliseconds& end);
    std::optional<Value> reading_value(const YamlEntry& e, const std::string& sensor);
    std::optional<milliseconds> at_time(const YamlEntry& e, const std::string& label);
    std::optional<std::string> text(const YamlEntry& e, const std::string& label) {
        return yaml_.get(e, label, as_text);
    }
    void unknown_name(const YamlEntry& e, const std::string& what, const std::string& name,
                      const std::vector<std::string>& known);

    YamlReader yaml_;
    const RuleTestContext& context_;
    Diagnostics& diags_;
    std::vector<std::string> sensors_;  // given may name these
    std::vector<std::string> rules_;
    std::vector<std::string> outputs_;
    std::vector<std::string> sagas_;  // rules with a saga
    std::int64_t tick_ms_ = 1000;
};

std::optional<RuleTestFile> TestFileReader::read() {
    const std::size_t errors_before = yaml_.error_count();
    YAML::Node root;
    if (!yaml_.parse("rule test file", root)) return std::nullopt;
    if (!root.IsMap()) {
        yaml_.error(yaml_.pos(root), "expected a map with a 'tests:' list, got " + describe(root));
        return std::nullopt;
    }
    const std::vector<YamlEntry> es = yaml_.entries(root, kTopKeys, "key", "");
    RuleTestFile out;
    out.file = yaml_.file();
    if (context_.tick) out.tick = *context_.tick;

    std::vector<std::string> named;
    SourcePos rules_at = yaml_.start();
    if (const YamlEntry* e = find_entry(es, "rules")) {
        rules_at = yaml_.value_pos(*e);
        const std::filesystem::path dir = std::filesystem::path(yaml_.file()).parent_path();
        auto add = [&](const YAML::Node& n) {
            std::string why;
            const std::optional<std::string> p = as_text(n, why);
            if (!p || p->empty()) {
                yaml_.error(yaml_.pos(n, rules_at), "rules: expected a rule file or folder path" +
                                                        (p ? std::string() : ": " + why));
                return;
            }
            const std::filesystem::path path(*p);
            named.push_back(path.is_absolute() || dir.empty() ? *p : (dir / path).string());
        };
        if (e->value.IsScalar()) {
            add(e->value);
        } else if (e->value.IsSequence() && e->value.size() > 0) {
            for (const YAML::Node& n : e->value)
                add(n);
        } else {
            yaml_.error(rules_at,
                        "rules: expected a path or a list of paths, got " + describe(e->value));
        }
    }
    if (const YamlEntry* e = find_entry(es, "tick")) {
        if (const auto t = yaml_.get(*e, "tick", as_duration)) {
            if (t->count() <= 0)
                yaml_.error(yaml_.value_pos(*e), "tick: must be longer than 0s");
            else
                out.tick = *t;
        }
    }
    tick_ms_ = out.tick.count();
    const YamlEntry* tests = find_entry(es, "tests");
    if (!tests) {
        yaml_.error(yaml_.start(), "missing key 'tests' (a list of tests: - name: …)");
    } else if (!tests->value.IsSequence()) {
        yaml_.error(yaml_.value_pos(*tests),
                    "tests: expected a list of tests (- name: …), got " + describe(tests->value));
    } else if (tests->value.size() == 0) {
        yaml_.error(yaml_.value_pos(*tests), "tests: the list is empty; a test file needs a test");
    }
    // The rules are loaded whatever else is wrong, so that the tests' names
    // are checked too: every problem in one run.
    out.rules = context_.load_rules(named, rules_at, diags_);
    if (!out.rules || !tests || !tests->value.IsSequence()) return std::nullopt;
    names_from(*out.rules);

    std::set<std::string> names;
    for (const YAML::Node& item : tests->value)
        test(item, names, out);
    if (yaml_.error_count() != errors_before) return std::nullopt;
    return out;
}

void TestFileReader::names_from(const RuleSet& rules) {
    std::set<std::string> sensors(rules.sensors().begin(), rules.sensors().end());
    if (context_.sensors) {
        for (const auto& [name, type] : *context_.sensors)
            sensors.insert(name);
    }
    sensors_.assign(sensors.begin(), sensors.end());
    std::set<std::string> outputs;
    if (context_.outputs) outputs.insert(context_.outputs->begin(), context_.outputs->end());
    auto outputs_of = [&](const std::vector<ActionSpec>& list) {
        for (const ActionSpec& a : list) {
            if (const auto* o = std::get_if<OutputSpec>(&a)) outputs.insert(o->name);
        }
    };
    for (const Rule& r : rules.rules()) {
        rules_.push_back(r.name);
        outputs_of(r.actions);
        outputs_of(r.on_clear);
        if (!r.saga) continue;
        sagas_.push_back(r.name);
        outputs_of(r.saga->on_failure);
        for (const SagaStep& st : r.saga->steps) {
            outputs_of(st.actions);
            outputs_of(st.undo);
        }
    }
    outputs_.assign(outputs.begin(), outputs.end());
}

void TestFileReader::unknown_name(const YamlEntry& e, const std::string& what,
                                  const std::string& name, const std::vector<std::string>& known) {
    std::string msg = "unknown " + what + " '" + shown(name) + "'";
    const std::string hint = closest_match(name, known);
    if (!hint.empty())
        msg += " (did you mean '" + hint + "'?)";
    else if (known.empty())
        msg += " (the rules name none)";
    else if (known.size() <= 12)
        msg += " (the rules know: " + join_words(known) + ")";
    yaml_.error(yaml_.value_pos(e), msg);
}

void TestFileReader::test(const YAML::Node& node, std::set<std::string>& names, RuleTestFile& out) {
    const SourcePos pos = yaml_.pos(node);
    if (!node.IsMap()) {
        yaml_.error(pos, "a test is a map (name, given, expect), got " + describe(node));
        return;
    }
    const std::size_t errors_before = yaml_.error_count();
    const std::vector<YamlEntry> es = yaml_.entries(node, kTestKeys, "key", " in a test");
    RuleTest t;
    t.pos = pos;
    const YamlEntry* name = find_entry(es, "name");
    if (!name) {
        yaml_.error(pos, "a test needs a 'name'");
    } else if (auto n = text(*name, "name")) {
        if (n->empty()) {
            yaml_.error(yaml_.value_pos(*name), "name: must not be empty");
        } else if (!names.insert(*n).second) {
            yaml_.error(yaml_.value_pos(*name), "duplicate test name '" + shown(*n) + "'");
        }
        t.name = std::move(*n);
    }
    const std::string label = t.name.empty() ? "test" : "test '" + shown(t.name) + "'";
    if (const YamlEntry* e = find_entry(es, "given")) given(*e, label, t);
    if (const YamlEntry* e = find_entry(es, "expect"))
        expectations(*e, false, label, t.expect, t.end);
    if (const YamlEntry* e = find_entry(es, "expect_not"))
        expectations(*e, true, label, t.expect_not, t.end);
    if (!t.given.empty()) t.end = std::max(t.end, t.given.back().at);
    if (t.end.count() / tick_ms_ > kMaxTestTicks) {
        yaml_.error(pos, label + " runs to " + format_duration(t.end) + ", " +
                             std::to_string(t.end.count() / tick_ms_) + " ticks of " +
                             format_duration(milliseconds(tick_ms_)) + "; at most " +
                             std::to_string(kMaxTestTicks) + " (set a longer tick:)");
    }
    if (yaml_.error_count() == errors_before) out.tests.push_back(std::move(t));
}

std::optional<milliseconds> TestFileReader::at_time(const YamlEntry& e, const std::string& label) {
    auto t = yaml_.get(e, label + ": at", as_duration);
    if (t && t->count() > kMaxRuleDurationMs) {
        yaml_.error(yaml_.value_pos(e), label + ": at: longer than the longest duration allowed (" +
                                            format_duration(milliseconds(kMaxRuleDurationMs)) +
                                            ")");
        return std::nullopt;
    }
    return t;
}

void TestFileReader::given(const YamlEntry& e, const std::string& label, RuleTest& t) {
    if (e.value.IsNull()) return;
    if (!e.value.IsSequence()) {
        yaml_.error(yaml_.value_pos(e), label +
                                            ": given: expected a list of readings "
                                            "(- { at: 0s, SENSOR: VALUE }), got " +
                                            describe(e.value));
        return;
    }
    std::vector<std::string> allowed = sensors_;
    allowed.push_back("at");
    std::optional<milliseconds> last;
    for (const YAML::Node& item : e.value) {
        const SourcePos item_pos = yaml_.pos(item, yaml_.key_pos(e));
        if (!item.IsMap()) {
            yaml_.error(item_pos, label + ": a reading is a map { at: TIME, SENSOR: VALUE }, got " +
                                      describe(item));
            continue;
        }
        // Unknown keys are sensors the rules do not know: "did you mean" them.
        const std::vector<YamlEntry> es = yaml_.entries(item, allowed, "sensor", " in given");
        const YamlEntry* at = find_entry(es, "at");
        std::optional<milliseconds> when;
        if (!at) {
            yaml_.error(item_pos, label + ": a reading needs 'at' (its time, e.g. at: 10s)");
        } else {
            when = at_time(*at, label);
            if (when && last && *when < *last) {
                yaml_.error(yaml_.value_pos(*at),
                            label + ": given: times not in order: " + format_duration(*when) +
                                " comes after " + format_duration(*last));
                when.reset();
            }
        }
        if (when) last = when;
        bool any = false;
        for (const YamlEntry& s : es) {
            if (s.key == "at") continue;
            any = true;
            std::optional<Value> v = reading_value(s, s.key);
            if (v && when) t.given.push_back(GivenReading{*when, s.key, std::move(*v)});
        }
        if (!any && item.size() <= 1 && at)
            yaml_.error(item_pos, label +
                                      ": a reading names a sensor and its value "
                                      "({ at: 10s, greenhouse.temp: 31 })");
    }
}

std::optional<Value> TestFileReader::reading_value(const YamlEntry& e, const std::string& sensor) {
    const std::string label = sensor;
    if (!e.value.IsScalar()) {
        yaml_.error(yaml_.value_pos(e),
                    label + ": expected a number, true/false or text, got " + describe(e.value));
        return std::nullopt;
    }
    std::optional<ValueType> type;
    if (context_.sensors) {
        const auto it = context_.sensors->find(sensor);
        if (it != context_.sensors->end()) type = it->second;
    }
    std::string why;
    const bool quoted = e.value.Tag() == "!";
    if (type == ValueType::Number || (!type && !quoted)) {
        if (auto d = as_number(e.value, why)) return Value(*d);
        if (type || looks_numeric(e.value.Scalar())) {
            yaml_.error(yaml_.value_pos(e), label + (type ? " is a number sensor: " : ": ") + why);
            return std::nullopt;
        }
    }
    if (type == ValueType::Boolean || (!type && !quoted)) {
        why.clear();
        if (auto b = as_bool(e.value, why)) return Value(*b);
        if (type) {
            yaml_.error(yaml_.value_pos(e), label + " is a boolean sensor: " + why);
            return std::nullopt;
        }
    }
    if (auto s = yaml_.get(e, label, as_text)) return Value(std::move(*s));
    return std::nullopt;
}

void TestFileReader::expectations(const YamlEntry& e, bool negative, const std::string& label,
                                  std::vector<Expectation>& out, milliseconds& end) {
    const std::string where = label + ": " + e.key;
    if (e.value.IsNull()) return;
    if (!e.value.IsSequence()) {
        yaml_.error(yaml_.value_pos(e), where +
                                            ": expected a list (- { at: 2m, rule: NAME, "
                                            "transition: fired }), got " +
                                            describe(e.value));
        return;
    }
    for (const YAML::Node& item : e.value) {
        const SourcePos item_pos = yaml_.pos(item, yaml_.key_pos(e));
        if (!item.IsMap()) {
            yaml_.error(item_pos, where +
                                      ": an item is a map with one of rule, output, publish, "
                                      "exec or log; got " +
                                      describe(item));
            continue;
        }
        const std::size_t errors_before = yaml_.error_count();
        const std::vector<YamlEntry> es = yaml_.entries(item, kExpectKeys, "key", " in " + e.key);
        const KindKeys* kind = nullptr;
        const YamlEntry* subject = nullptr;
        for (const KindKeys& k : kKinds) {
            const YamlEntry* found = find_entry(es, k.key);
            if (!found) continue;
            if (kind) {
                yaml_.error(yaml_.key_pos(*found),
                            where +
                                ": an item has exactly one of rule, output, publish, exec, "
                                "log; start a new list item for '" +
                                found->key + "'");
                continue;
            }
            kind = &k;
            subject = found;
        }
        if (!kind) {
            if (errors_before == yaml_.error_count())
                yaml_.error(item_pos, where +
                                          ": an item names one of rule, output, publish, "
                                          "exec or log");
            continue;
        }
        // A key of another kind ('value' with a rule) is a slip worth naming.
        for (const YamlEntry& x : es) {
            if (x.key == "at" || x.key == kind->key || takes(*kind, x.key)) continue;
            std::string owner;
            for (const KindKeys& k : kKinds) {
                if (takes(k, x.key)) owner = k.key;
            }
            if (!owner.empty())
                yaml_.error(yaml_.key_pos(x), where + ": '" + x.key + "' goes with '" + owner +
                                                  "', not with '" + kind->key + "'");
        }
        Expectation ex;
        ex.pos = item_pos;
        ex.event.kind = kind->kind;
        if (const YamlEntry* at = find_entry(es, "at")) {
            ex.event.at = at_time(*at, where);
        } else if (!negative) {
            yaml_.error(item_pos, where + ": 'at' is missing (when it happens, e.g. at: 2m10s)");
        }
        const YamlEntry* detail =
            kind->details.empty() ? nullptr : find_entry(es, kind->details.front());
        switch (kind->kind) {
            case TestEventKind::Rule:
                if (auto n = text(*subject, "rule")) {
                    if (std::find(rules_.begin(), rules_.end(), *n) == rules_.end())
                        unknown_name(*subject, "rule", *n, rules_);
                    ex.event.name = std::move(*n);
                }
                if (detail) {
                    const auto tr = text(*detail, "transition");
                    if (tr && *tr == "fired")
                        ex.event.transition = TransitionKind::Fired;
                    else if (tr && *tr == "cleared")
                        ex.event.transition = TransitionKind::Cleared;
                    else if (tr)
                        yaml_.error(
                            yaml_.value_pos(*detail),
                            "transition: expected fired or cleared, got '" + shown(*tr) + "'");
                } else if (!negative) {
                    yaml_.error(item_pos, where + ": 'transition' is missing (fired or cleared)");
                }
                break;
            case TestEventKind::Output:
                if (auto n = text(*subject, "output")) {
                    if (std::find(outputs_.begin(), outputs_.end(), *n) == outputs_.end())
                        unknown_name(*subject, "output", *n, outputs_);
                    ex.event.name = std::move(*n);
                }
                if (detail) {
                    ex.event.on = yaml_.get(*detail, "value", as_bool);
                } else if (!negative) {
                    yaml_.error(item_pos, where + ": 'value' is missing (on or off)");
                }
                break;
            case TestEventKind::Publish:
                if (auto n = text(*subject, "publish")) ex.event.name = std::move(*n);
                if (detail) ex.event.payload = text(*detail, "payload");
                break;
            case TestEventKind::Exec: {
                const YAML::Node& argv = subject->value;
                if (!argv.IsSequence() || argv.size() == 0) {
                    yaml_.error(yaml_.value_pos(*subject),
                                "exec: expected the argument list ([/usr/local/bin/notify, "
                                "\"text\"]), got " +
                                    describe(argv));
                    break;
                }
                for (const YAML::Node& a : argv) {
                    std::string why;
                    if (auto s = as_text(a, why))
                        ex.event.argv.push_back(std::move(*s));
                    else
                        yaml_.error(yaml_.pos(a, yaml_.value_pos(*subject)), "exec: " + why);
                }
                break;
            }
            case TestEventKind::Log:
                if (auto n = text(*subject, "log")) ex.event.name = std::move(*n);
                break;
            case TestEventKind::Saga:
                if (auto n = text(*subject, "saga")) {
                    if (std::find(sagas_.begin(), sagas_.end(), *n) == sagas_.end())
                        unknown_name(*subject, "saga (a rule with a saga)", *n, sagas_);
                    ex.event.name = std::move(*n);
                }
                if (detail) {
                    const auto w = text(*detail, "event");
                    const auto it =
                        w ? std::find(kSagaWords.begin(), kSagaWords.end(), *w) : kSagaWords.end();
                    if (it != kSagaWords.end()) {
                        ex.event.saga_event = static_cast<SagaEventKind>(it - kSagaWords.begin());
                    } else if (w) {
                        yaml_.error(yaml_.value_pos(*detail),
                                    "event: expected started, step, completed, failed or "
                                    "compensated, got '" +
                                        shown(*w) + "'");
                    }
                } else if (!negative) {
                    yaml_.error(item_pos, where +
                                              ": 'event' is missing (started, step, "
                                              "completed, failed or compensated)");
                }
                if (const YamlEntry* st = find_entry(es, "step")) ex.event.step = text(*st, "step");
                if (const YamlEntry* r = find_entry(es, "reason"))
                    ex.event.reason = text(*r, "reason");
                break;
        }
        if (yaml_.error_count() != errors_before) continue;
        if (ex.event.at) end = std::max(end, *ex.event.at);
        out.push_back(std::move(ex));
    }
}

// Records what the rules do during a test.
class Recorder final : public VirtualRun::Listener {
  public:
    explicit Recorder(std::vector<TestEvent>& happened) : happened_(happened) {}

    void on_transition(const Transition& t) override {
        const milliseconds at = since_start(t.ts);
        TestEvent rule;
        rule.kind = TestEventKind::Rule;
        rule.at = at;
        rule.name = t.rule;
        rule.transition = t.kind;
        happened_.push_back(std::move(rule));
        for (const Action& a : t.actions)
            std::visit([&](const auto& act) { record(at, t.ts, act); }, a);
    }

    void on_saga(const SagaEvent& e) override {
        const milliseconds at = since_start(e.ts);
        TestEvent ev;
        ev.kind = TestEventKind::Saga;
        ev.at = at;
        ev.name = e.rule;
        ev.saga_event = e.kind;
        ev.step = e.step;
        if (!e.reason.empty()) ev.reason = e.reason;
        happened_.push_back(std::move(ev));
        for (const Action& a : e.actions)
            std::visit([&](const auto& act) { record(at, e.ts, act); }, a);
    }

    std::optional<WallTime> next_timer() const override {
        std::optional<WallTime> first;
        for (const auto& [name, s] : switch_backs_) {
            if (!first || s.at < *first) first = s.at;
        }
        return first;
    }

    void on_timer(WallTime now) override {
        for (auto it = switch_backs_.begin(); it != switch_backs_.end();) {
            if (it->second.at <= now) {
                output(since_start(now), it->first, it->second.to);
                it = switch_backs_.erase(it);
            } else {
                ++it;
            }
        }
    }

  private:
    struct SwitchBack {
        WallTime at;
        bool to = false;
    };

    static milliseconds since_start(WallTime t) {
        return std::chrono::duration_cast<milliseconds>(t.time_since_epoch());
    }

    void output(milliseconds at, const std::string& name, bool on) {
        TestEvent e;
        e.kind = TestEventKind::Output;
        e.at = at;
        e.name = name;
        e.on = on;
        happened_.push_back(std::move(e));
    }

    void record(milliseconds at, WallTime, const PublishAction& a) {
        // The daemon refuses such a topic (dead letter): nothing is published.
        if (check_publish_topic(a.topic)) return;
        TestEvent e;
        e.kind = TestEventKind::Publish;
        e.at = at;
        e.name = a.topic;
        e.payload = a.payload;
        happened_.push_back(std::move(e));
    }
    void record(milliseconds at, WallTime ts, const OutputAction& a) {
        output(at, a.name, a.on);
        // A later switch cancels a pending switch-back (OutputBank::set).
        switch_backs_.erase(a.name);
        if (a.duration) switch_backs_[a.name] = SwitchBack{ts + *a.duration, !a.on};
    }
    void record(milliseconds at, WallTime, const ExecAction& a) {
        TestEvent e;
        e.kind = TestEventKind::Exec;
        e.at = at;
        e.argv = a.argv;
        happened_.push_back(std::move(e));
    }
    void record(milliseconds at, WallTime, const LogAction& a) {
        TestEvent e;
        e.kind = TestEventKind::Log;
        e.at = at;
        e.name = a.message;
        happened_.push_back(std::move(e));
    }

    std::vector<TestEvent>& happened_;
    std::map<std::string, SwitchBack> switch_backs_;
};

// Lines of a diff of two short lists: "  " both, "- " expected only, "+ "
// actual only (longest common subsequence).
std::vector<std::string> list_diff(const std::vector<std::string>& a,
                                   const std::vector<std::string>& b) {
    const std::size_t n = a.size(), m = b.size();
    std::vector<std::string> out;
    if (n * m > 4'000'000) {
        for (const std::string& s : a)
            out.push_back("- " + s);
        for (const std::string& s : b)
            out.push_back("+ " + s);
        return out;
    }
    std::vector<std::vector<std::uint32_t>> l(n + 1, std::vector<std::uint32_t>(m + 1, 0));
    for (std::size_t i = n; i-- > 0;) {
        for (std::size_t j = m; j-- > 0;)
            l[i][j] = a[i] == b[j] ? l[i + 1][j + 1] + 1 : std::max(l[i + 1][j], l[i][j + 1]);
    }
    std::size_t i = 0, j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && a[i] == b[j]) {
            out.push_back("  " + a[i]);
            ++i;
            ++j;
        } else if (i < n && (j == m || l[i + 1][j] >= l[i][j + 1])) {
            out.push_back("- " + a[i++]);
        } else {
            out.push_back("+ " + b[j++]);
        }
    }
    return out;
}

std::string where(const SourcePos& p) {
    return " (" + p.file + ":" + std::to_string(p.line) + ")";
}

void xml_escaped(std::ostream& out, std::string_view s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        switch (c) {
            case '&':
                out << "&amp;";
                break;
            case '<':
                out << "&lt;";
                break;
            case '>':
                out << "&gt;";
                break;
            case '"':
                out << "&quot;";
                break;
            case '\'':
                out << "&apos;";
                break;
            default:
                // XML 1.0 has no way to write other C0 characters.
                if (c < 0x20 && c != '\n' && c != '\t')
                    out << "?";
                else
                    out << static_cast<char>(c);
        }
    }
}

// Counts of a JUnit <testsuite> (or of all of them): an invalid file is one
// test in error.
struct Tally {
    std::size_t tests = 0, failures = 0, errors = 0;
    double seconds = 0;
    Tally& operator+=(const Tally& o) {
        tests += o.tests;
        failures += o.failures;
        errors += o.errors;
        seconds += o.seconds;
        return *this;
    }
};

Tally tally(const RuleTestSuiteResult& s) {
    Tally t;
    t.errors = s.errors.empty() ? 0 : 1;
    t.tests = s.results.size() + t.errors;
    for (const RuleTestResult& r : s.results) {
        t.failures += r.passed ? 0 : 1;
        t.seconds += r.seconds;
    }
    return t;
}

std::string seconds_text(double seconds) {
    std::ostringstream s;
    s.precision(6);
    s << std::fixed << seconds;
    return s.str();
}

// Lines as element text, each escaped and ended.
void xml_lines(std::ostream& out, const std::vector<std::string>& lines) {
    for (const std::string& line : lines) {
        xml_escaped(out, line);
        out << '\n';
    }
}

}  // namespace

bool TestEvent::matches(const TestEvent& h) const {
    if (kind != h.kind) return false;
    if (at && h.at && *at != *h.at) return false;
    if (kind != TestEventKind::Exec && name != h.name) return false;
    if (transition && transition != h.transition) return false;
    if (on && on != h.on) return false;
    if (payload && payload != h.payload) return false;
    if (kind == TestEventKind::Exec && argv != h.argv) return false;
    if (saga_event && saga_event != h.saga_event) return false;
    if (step && step != h.step) return false;
    if (reason && reason != h.reason) return false;
    return true;
}

std::string describe_event(const TestEvent& e) {
    std::string s = e.at ? format_duration(*e.at) + " " : std::string();
    s += kind_word(e.kind);
    switch (e.kind) {
        case TestEventKind::Rule:
            s += " " + e.name;
            if (e.transition) s += " " + std::string(transition_name(*e.transition));
            break;
        case TestEventKind::Output:
            s += " " + e.name;
            if (e.on) s += *e.on ? " on" : " off";
            break;
        case TestEventKind::Publish:
            s += " " + shown(e.name, kShownPayloadBytes);
            if (e.payload) s += " '" + shown(*e.payload, kShownPayloadBytes) + "'";
            break;
        case TestEventKind::Exec:
            for (const std::string& a : e.argv)
                s += " \"" + shown(a, kShownPayloadBytes) + "\"";
            break;
        case TestEventKind::Log:
            s += " \"" + shown(e.name, kShownPayloadBytes) + "\"";
            break;
        case TestEventKind::Saga:
            s += " " + e.name;
            if (e.saga_event) s += " " + kSagaWords[static_cast<std::size_t>(*e.saga_event)];
            if (e.step) s += " step " + shown(*e.step);
            if (e.reason) s += " (" + shown(*e.reason) + ")";
            break;
    }
    return s;
}

std::optional<RuleTestFile> parse_rule_test_file(const SourceText& src,
                                                 const RuleTestContext& context,
                                                 Diagnostics& diagnostics) {
    return TestFileReader(src, context, diagnostics).read();
}

std::optional<RuleTestFile> read_rule_test_file(const std::string& path,
                                                const RuleTestContext& context,
                                                Diagnostics& diagnostics) {
    std::string text, why;
    if (!read_regular_file(path, kMaxConfigFileBytes, text, why)) {
        diagnostics.error(SourcePos{path, 0, 0}, "cannot read: " + why);
        return std::nullopt;
    }
    const SourceText src(path, strip_bom(text));
    return parse_rule_test_file(src, context, diagnostics);
}

bool is_rule_test_text(std::string_view text) {
    const SourceText src("", strip_bom(text));
    const YamlDocument doc = parse_yaml_document(src, "file");
    if (!doc.parsed || !doc.root.IsMap()) return false;
    for (const auto& kv : doc.root) {
        if (kv.first.IsScalar() && kv.first.Scalar() == "tests") return true;
    }
    return false;
}

RuleTestResult run_rule_test(const RuleTestFile& file, const RuleTest& test,
                             const std::string& gateway) {
    const auto started = std::chrono::steady_clock::now();
    RuleTestResult result;
    result.name = test.name;
    {
        Recorder recorder(result.happened);
        EngineOptions options;
        options.gateway = gateway;
        VirtualRun run(file.rules, file.tick, options, recorder);
        // Virtual time 0 is the Unix epoch: ticks at multiples of the tick
        // fall on round test times.
        run.start(WallTime{});
        for (const GivenReading& g : test.given)
            run.reading(WallTime(g.at), g.sensor, g.value);
        run.run_until(WallTime(test.end));
    }
    const std::vector<TestEvent>& happened = result.happened;

    // Rule transitions: exactly the `rule:` items, in order.
    std::vector<std::string> want, got;
    for (const Expectation& x : test.expect) {
        if (x.event.kind == TestEventKind::Rule) want.push_back(describe_event(x.event));
    }
    for (const TestEvent& h : happened) {
        if (h.kind == TestEventKind::Rule) got.push_back(describe_event(h));
    }
    if (want != got) {
        result.diff.push_back("rule transitions (- expected, + actual):");
        for (const std::string& line : list_diff(want, got))
            result.diff.push_back("  " + line);
        if (want.empty() && got.empty()) result.diff.push_back("  (none)");
    }
    // The other expectations: each must occur at its time.
    for (const Expectation& x : test.expect) {
        if (x.event.kind == TestEventKind::Rule) continue;
        const bool found = std::any_of(happened.begin(), happened.end(),
                                       [&](const TestEvent& h) { return x.event.matches(h); });
        if (found) continue;
        result.diff.push_back("expected, did not happen:" + where(x.pos));
        result.diff.push_back("  - " + describe_event(x.event));
        // What came closest: the same kind at that time, or the same subject
        // at another time.
        unsigned shown_count = 0;
        for (const TestEvent& h : happened) {
            if (h.kind != x.event.kind || shown_count >= 5) continue;
            const bool at_time = h.at == x.event.at;
            const bool same_subject =
                x.event.kind == TestEventKind::Exec
                    ? (!h.argv.empty() && !x.event.argv.empty() && h.argv[0] == x.event.argv[0])
                    : h.name == x.event.name;
            if (at_time || same_subject) {
                result.diff.push_back("  + " + describe_event(h));
                ++shown_count;
            }
        }
        if (shown_count == 0)
            result.diff.push_back("  (no " + std::string(kind_word(x.event.kind)) +
                                  " at that time or of that name)");
    }
    for (const Expectation& x : test.expect_not) {
        for (const TestEvent& h : happened) {
            if (!x.event.matches(h)) continue;
            result.diff.push_back("expected not to happen, but did:" + where(x.pos));
            result.diff.push_back("  + " + describe_event(h));
            break;
        }
    }
    result.passed = result.diff.empty();
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
}

void write_junit(std::ostream& out, const std::vector<RuleTestSuiteResult>& suites) {
    Tally all;
    for (const RuleTestSuiteResult& s : suites)
        all += tally(s);
    out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out << "<testsuites name=\"tidegate test\" tests=\"" << all.tests << "\" failures=\""
        << all.failures << "\" errors=\"" << all.errors << "\" time=\"" << seconds_text(all.seconds)
        << "\">\n";
    for (const RuleTestSuiteResult& s : suites) {
        const Tally t = tally(s);
        out << "  <testsuite name=\"";
        xml_escaped(out, s.file);
        out << "\" tests=\"" << t.tests << "\" failures=\"" << t.failures << "\" errors=\""
            << t.errors << "\" skipped=\"0\" time=\"" << seconds_text(t.seconds) << "\">\n";
        if (!s.errors.empty()) {
            out << "    <testcase classname=\"";
            xml_escaped(out, s.file);
            out << "\" name=\"(test file)\" time=\"0\">\n      <error message=\"invalid test "
                   "file\" type=\"invalid\">";
            xml_lines(out, s.errors);
            out << "</error>\n    </testcase>\n";
        }
        for (const RuleTestResult& r : s.results) {
            out << "    <testcase classname=\"";
            xml_escaped(out, s.file);
            out << "\" name=\"";
            xml_escaped(out, r.name);
            out << "\" time=\"" << seconds_text(r.seconds) << "\"";
            if (r.passed) {
                out << "/>\n";
                continue;
            }
            out << ">\n      <failure message=\"";
            xml_escaped(out, r.diff.empty() ? std::string("failed") : r.diff.front());
            out << "\" type=\"failure\">";
            xml_lines(out, r.diff);
            out << "</failure>\n    </testcase>\n";
        }
        out << "  </testsuite>\n";
    }
    out << "</testsuites>\n";
}

}  // namespace tg::rules
