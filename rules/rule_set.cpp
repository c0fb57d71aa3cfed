// Rule files -> RuleSet. One strict pass over each file's YAML tree collects
// every problem with its place; expressions and templates are compiled
// against one symbol table for the whole set, so a sensor has one slot and a
// (sensor, window length) one shared window.
#include "rules/rule_set.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/units.h"
#include "rules/publish_topic.h"
#include "rules/yaml_reader.h"
#include "rules/yaml_text.h"

namespace tg::rules {
namespace {

using std::chrono::milliseconds;

const std::vector<std::string> kTopKeys{"rules"};
const std::vector<std::string> kRuleKeys{"name",       "description", "when",     "for",
                                         "clear_when", "cooldown",    "severity", "actions",
                                         "on_clear",   "saga"};
const std::vector<std::string> kSagaKeys{"steps", "on_failure"};
const std::vector<std::string> kStepKeys{"name", "do", "expect", "within", "undo"};
const std::vector<std::string> kActionKinds{"publish", "output", "exec", "log"};
const std::vector<std::string> kPublishKeys{"topic", "payload", "qos", "retain"};
const std::vector<std::string> kOutputKeys{"name", "value", "for"};
const std::vector<std::string> kExecKeys{"argv", "timeout", "breaker"};
const std::vector<std::string> kSeverities{"info", "warning", "critical"};

using Entry = YamlEntry;

std::string lower(std::string s) {
    for (char& c : s) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return s;
}

bool valid_rule_name(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

bool valid_output_name(const std::string& s) {
    if (s.empty() || s.front() < 'a' || s.front() > 'z') return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

std::string pos_text(const SourcePos& p) {
    return p.file + ":" + std::to_string(p.line) + ":" + std::to_string(p.col);
}

}  // namespace

std::string_view severity_name(RuleSeverity s) {
    switch (s) {
        case RuleSeverity::Info:
            return "info";
        case RuleSeverity::Warning:
            return "warning";
        case RuleSeverity::Critical:
            return "critical";
    }
    return "warning";
}

std::optional<Template> parse_template(std::string_view text, Symbols& symbols,
                                       const ErrorSink& errors) {
    Template out;
    out.source = std::string(text);
    bool ok = true;
    std::size_t i = 0;
    std::string literal;
    std::size_t literal_at = 0;
    while (i < text.size()) {
        const std::size_t open = text.find("{{", i);
        if (literal.empty()) literal_at = i;
        if (open == std::string_view::npos) {
            literal += text.substr(i);
            break;
        }
        literal += text.substr(i, open - i);
        // The expression ends at the first "}}" outside a string literal.
        std::size_t j = open + 2;
        bool in_string = false;
        std::size_t close = std::string_view::npos;
        while (j < text.size()) {
            const char c = text[j];
            if (in_string) {
                if (c == '\\') {
                    j += 2;
                    continue;
                }
                if (c == '"') in_string = false;
            } else if (c == '"') {
                in_string = true;
            } else if (c == '}' && j + 1 < text.size() && text[j + 1] == '}') {
                close = j;
                break;
            }
            ++j;
        }
        if (close == std::string_view::npos) {
            errors(open, "unclosed '{{' (missing '}}')");
            ok = false;
            break;
        }
        if (!literal.empty()) {
            out.parts.push_back(Template::Part{std::move(literal), std::nullopt, literal_at});
            literal.clear();
        }
        const std::string_view expr = text.substr(open + 2, close - open - 2);
        if (expr.find_first_not_of(" \t\r\n") == std::string_view::npos) {
            errors(open, "empty '{{ }}'");
            ok = false;
        } else {
            const std::size_t base = open + 2;
            auto sink = [&](std::size_t offset, const std::string& message) {
                errors(base + offset, message);
            };
            auto program = compile_text(expr, symbols, true, sink);
            if (program) {
                out.parts.push_back(Template::Part{{}, std::move(program), open});
            } else {
                ok = false;
            }
        }
        i = close + 2;
    }
    if (!literal.empty()) {
        out.parts.push_back(Template::Part{std::move(literal), std::nullopt, literal_at});
    }
    if (!ok) return std::nullopt;
    return out;
}

std::string render_template(const Template& t, EvalEnv& env) {
    std::string out;
    std::forward_list<std::string> scratch;  // json() results, until copied out
    std::forward_list<std::string>* const outer = env.scratch;
    env.scratch = &scratch;
    for (const Template::Part& p : t.parts) {
        if (p.expr) {
            out += render_text(evaluate_program(*p.expr, env));
            scratch.clear();
        } else {
            out += p.text;
        }
    }
    env.scratch = outer;
    return out;
}

const Rule* RuleSet::find(std::string_view name) const {
    for (const Rule& r : rules_) {
        if (r.name == name) return &r;
    }
    return nullptr;
}

class RuleSetBuilder {
  public:
    explicit RuleSetBuilder(const CheckOptions& options)
        : options_(options), symbols_(options.sensors ? &*options.sensors : nullptr) {}

    void file(const RuleSource& source);
    CompileResult finish();

  private:
    // Diagnostics ---------------------------------------------------------
    void error(SourcePos p, std::string message) { diags_.error(std::move(p), std::move(message)); }
    SourcePos key_pos(const Entry& e) const { return yaml_->key_pos(e); }
    SourcePos value_pos(const Entry& e) const { return yaml_->value_pos(e); }

    // Structure -----------------------------------------------------------
    std::vector<Entry> entries(const YAML::Node& map, const std::vector<std::string>& allowed,
                               const std::string& what, const std::string& where) {
        return yaml_->entries(map, allowed, what, where);
    }
    static const Entry* find(const std::vector<Entry>& es, std::string_view key) {
        return find_entry(es, key);
    }

    // Values ----------------------------------------------------------------
    std::optional<std::string> text(const YAML::Node& value, const YAML::Node* key,
                                    const std::string& label, const SourcePos& fallback, bool hint);
    std::optional<std::string> plain_scalar(const Entry& e, const std::string& label);
    std::optional<Program> condition(const Entry& e);
    std::optional<Template> templ(const YAML::Node& value, const YAML::Node* key,
                                  const std::string& label, const SourcePos& fallback);
    std::optional<milliseconds> duration(const Entry& e, const std::string& label, bool allow_zero);
    std::optional<bool> boolean(const Entry& e, const std::string& label);

    // Sections --------------------------------------------------------------
    void rule(const YAML::Node& node);
    void actions(const Entry& e, const std::string& label, std::vector<ActionSpec>& out);
    std::optional<SagaSpec> saga(const Entry& e, const std::string& label);
    std::optional<SagaStep> saga_step(const YAML::Node& node, const SourcePos& fallback,
                                      const std::string& label, std::set<std::string>& names);
    std::optional<ActionSpec> action(const Entry& e, const std::string& label);
    std::optional<ActionSpec> publish(const Entry& e, const std::string& label);
    bool literal_topic_ok(const Template& topic, const YAML::Node& value, const SourcePos& at);
    bool literal_program_ok(const Template& program, const YAML::Node& value, const SourcePos& at);
    std::optional<ActionSpec> output(const Entry& e, const std::string& label);
    std::optional<ActionSpec> exec(const Entry& e, const std::string& label);

    const CheckOptions& options_;
    Symbols symbols_;
    Diagnostics diags_;
    const SourceText* src_ = nullptr;
    YamlReader* yaml_ = nullptr;  // of the file being read
    std::vector<Rule> rules_;
    std::vector<std::string> files_;
    std::map<std::string, SourcePos> rule_names_;
};

std::optional<std::string> RuleSetBuilder::text(const YAML::Node& value, const YAML::Node* key,
                                                const std::string& label, const SourcePos& fallback,
                                                bool hint) {
    const std::string key_name = key && key->IsScalar() ? key->Scalar() : std::string();
    const std::string raw = key ? src_->raw_value_after_key(*key) : std::string();
    const SourcePos at = src_->at_node(value, fallback);
    auto symptom = [&](const std::string& got) {
        std::string msg = label + ": expected text, got " + got;
        if (hint) msg += "; " + quote_hint(key_name, starts_yaml_symptom(raw) ? raw : "");
        error(at, msg);
        return std::nullopt;
    };
    if (value.IsMap()) return symptom("a map");
    if (value.IsSequence()) return symptom("a list");
    if (!value.IsDefined() || value.IsNull()) {
        if (hint && !raw.empty() && (raw.front() == '&' || raw.front() == '!')) {
            error(at, label + ": expected text, got nothing; " + quote_hint(key_name, raw));
        } else {
            error(at, label + ": missing value");
        }
        return std::nullopt;
    }
    char style = 'p';
    src_->scalar_start(value, style);
    const YAML::Mark m = value.Mark();
    const bool tagged = value.Tag() != "?" && value.Tag() != "!";
    const bool bang = !m.is_null() && m.pos >= 0 &&
                      static_cast<std::size_t>(m.pos) < src_->text().size() &&
                      (src_->text()[static_cast<std::size_t>(m.pos)] == '!' ||
                       src_->text()[static_cast<std::size_t>(m.pos)] == '&');
    if (hint && (tagged || bang)) {
        error(at, label + ": " + quote_hint(key_name, raw.empty() ? "!" : raw));
        return std::nullopt;
    }
    if (hint && (style == '|' || style == '>') &&
        value.Scalar().find_first_not_of(" \t\r\n") == std::string::npos) {
        error(at, label + ": " + quote_hint(key_name, raw));
        return std::nullopt;
    }
    return value.Scalar();
}

std::optional<std::string> RuleSetBuilder::plain_scalar(const Entry& e, const std::string& label) {
    return yaml_->get(e, label, as_text);
}

std::optional<Program> RuleSetBuilder::condition(const Entry& e) {
    const auto t = text(e.value, &e.key_node, e.key, key_pos(e), true);
    if (!t) return std::nullopt;
    const YAML::Node node = e.value;
    const std::string label = e.key;
    auto sink = [&](std::size_t offset, const std::string& message) {
        error(src_->in_scalar(node, offset), label + ": " + message);
    };
    if (t->find_first_not_of(" \t\r\n") == std::string::npos) {
        error(value_pos(e), label + ": empty expression");
        return std::nullopt;
    }
    auto program = compile_text(*t, symbols_, false, sink);
    if (!program) return std::nullopt;
    if (program->type != Type::Boolean && program->type != Type::Any) {
        const std::size_t first = t->find_first_not_of(" \t\r\n");
        error(src_->in_scalar(node, first),
              label + ": a condition must be true or false, but this is " +
                  std::string(type_word(program->type)));
        return std::nullopt;
    }
    return program;
}

std::optional<Template> RuleSetBuilder::templ(const YAML::Node& value, const YAML::Node* key,
                                              const std::string& label, const SourcePos& fallback) {
    const auto t = text(value, key, label, fallback, true);
    if (!t) return std::nullopt;
    auto sink = [&](std::size_t offset, const std::string& message) {
        error(src_->in_scalar(value, offset), label + ": " + message);
    };
    return parse_template(*t, symbols_, sink);
}

std::optional<milliseconds> RuleSetBuilder::duration(const Entry& e, const std::string& label,
                                                     bool allow_zero) {
    const auto d = yaml_->get(e, label, as_duration);
    if (!d) return std::nullopt;
    if (!allow_zero && d->count() <= 0) {
        error(value_pos(e), label + ": must be longer than 0");
        return std::nullopt;
    }
    if (d->count() > kMaxRuleDurationMs) {
        error(value_pos(e), label + ": must be at most 3650d");
        return std::nullopt;
    }
    return d;
}

std::optional<bool> RuleSetBuilder::boolean(const Entry& e, const std::string& label) {
    return yaml_->get(e, label, as_bool);
}

void RuleSetBuilder::file(const RuleSource& source) {
    files_.push_back(source.path);
    const std::string_view body = strip_bom(source.text);
    SourceText src(source.path, body);
    YamlReader yaml(src, diags_);
    src_ = &src;
    yaml_ = &yaml;
    struct Reset {
        RuleSetBuilder& b;
        ~Reset() {
            b.src_ = nullptr;
            b.yaml_ = nullptr;
        }
    } reset{*this};

    YAML::Node root;
    if (!yaml.parse("rule file", root)) return;
    if (root.IsNull()) return;  // an empty file has no rules
    if (!root.IsMap()) {
        error(src.at_node(root, SourcePos{source.path, 1, 1}),
              "expected a map with a 'rules:' list, got " + describe(root));
        return;
    }
    for (const Entry& e : entries(root, kTopKeys, "key", "")) {
        if (e.value.IsNull()) continue;
        if (!e.value.IsSequence()) {
            error(value_pos(e),
                  "rules: expected a list of rules (- name: …), got " + describe(e.value));
            continue;
        }
        for (const YAML::Node& item : e.value)
            rule(item);
    }
}

void RuleSetBuilder::rule(const YAML::Node& node) {
    const SourcePos pos = src_->at_node(node, SourcePos{src_->file(), 1, 1});
    if (!node.IsMap()) {
        error(pos, "a rule is a map (name, when, …), got " + describe(node));
        return;
    }
    const std::size_t errors_before = diags_.items().size();
    const std::vector<Entry> es = entries(node, kRuleKeys, "key", " in a rule");
    Rule r;
    r.file = src_->file();
    r.pos = pos;

    std::string label = "rule";
    if (const Entry* e = find(es, "name")) {
        if (const auto name = plain_scalar(*e, "name")) {
            if (!valid_rule_name(*name)) {
                error(value_pos(*e), "rule name '" + *name +
                                         "' may only contain lower-case letters, digits and '_'");
            } else {
                const auto [it, inserted] = rule_names_.try_emplace(*name, value_pos(*e));
                if (!inserted) {
                    error(value_pos(*e), "duplicate rule name '" + *name + "' (first defined at " +
                                             pos_text(it->second) + ")");
                }
                r.name = *name;
                label = "rule '" + *name + "'";
            }
        }
    } else {
        error(pos, "rule without a 'name'");
    }
    if (const Entry* e = find(es, "description")) {
        if (e->value.IsScalar()) {
            r.description = e->value.Scalar();
        } else if (!e->value.IsNull()) {
            text(e->value, &e->key_node, "description", key_pos(*e), true);
        }
    }
    if (const Entry* e = find(es, "when")) {
        if (auto p = condition(*e)) r.when = std::move(*p);
    } else {
        error(pos, label + " has no 'when' condition");
    }
    if (const Entry* e = find(es, "clear_when")) r.clear_when = condition(*e);
    if (const Entry* e = find(es, "for")) {
        if (const auto d = duration(*e, "for", true)) r.for_duration = *d;
    }
    if (const Entry* e = find(es, "cooldown")) {
        if (const auto d = duration(*e, "cooldown", true)) r.cooldown = *d;
    }
    if (const Entry* e = find(es, "severity")) {
        if (const auto s = plain_scalar(*e, "severity")) {
            if (*s == "info") {
                r.severity = RuleSeverity::Info;
            } else if (*s == "warning") {
                r.severity = RuleSeverity::Warning;
            } else if (*s == "critical") {
                r.severity = RuleSeverity::Critical;
            } else {
                std::string msg = "severity: unknown severity '" + *s + "'";
                const std::string near = closest_match(*s, kSeverities);
                msg += near.empty() ? " (expected info, warning or critical)"
                                    : " (did you mean '" + near + "'?)";
                error(value_pos(*e), msg);
            }
        }
    }
    if (const Entry* e = find(es, "actions")) actions(*e, "actions", r.actions);
    if (const Entry* e = find(es, "on_clear")) actions(*e, "on_clear", r.on_clear);
    if (const Entry* e = find(es, "saga")) r.saga = saga(*e, label);

    if (diags_.items().size() != errors_before) return;  // reported; the set is rejected

    r.sensors = r.when.sensors;
    r.uses_time = r.for_duration.count() > 0 || r.when.uses_time;
    if (r.clear_when) {
        for (std::uint32_t s : r.clear_when->sensors) {
            if (std::find(r.sensors.begin(), r.sensors.end(), s) == r.sensors.end()) {
                r.sensors.push_back(s);
            }
        }
        r.uses_time = r.uses_time || r.clear_when->uses_time;
    }
    r.definition = "when=" + r.when.canonical + "\nfor=" + format_duration(r.for_duration) +
                   "\nclear_when=" + (r.clear_when ? r.clear_when->canonical : std::string()) +
                   "\ncooldown=" + format_duration(r.cooldown);
    rules_.push_back(std::move(r));
}

void RuleSetBuilder::actions(const Entry& e, const std::string& label,
                             std::vector<ActionSpec>& out) {
    if (e.value.IsNull()) return;
    if (!e.value.IsSequence()) {
        error(value_pos(e), label +
                                ": expected a list of actions (- publish: …, - output: …, "
                                "- exec: […], - log: …), got " +
                                describe(e.value));
        return;
    }
    for (const YAML::Node& item : e.value) {
        const SourcePos item_pos = src_->at_node(item, key_pos(e));
        if (!item.IsMap()) {
            error(item_pos, label +
                                ": an action is a map with one of publish, output, exec, "
                                "log; got " +
                                describe(item));
            continue;
        }
        const std::vector<Entry> kinds = entries(item, kActionKinds, "action", " in " + label);
        if (kinds.empty()) {
            if (item.size() == 0) error(item_pos, label + ": empty action");
            continue;
        }
        if (kinds.size() > 1) {
            error(key_pos(kinds[1]), label +
                                         ": an action has exactly one of publish, output, "
                                         "exec, log; start a new list item for '" +
                                         kinds[1].key + "' (- " + kinds[1].key + ": …)");
            continue;
        }
        if (auto a = action(kinds[0], label)) out.push_back(std::move(*a));
    }
}

std::optional<SagaSpec> RuleSetBuilder::saga(const Entry& e, const std::string& label) {
    const std::size_t errors_before = diags_.items().size();
    if (!e.value.IsMap()) {
        error(value_pos(e), label + ": saga: expected a map with 'steps' (and 'on_failure'), got " +
                                describe(e.value));
        return std::nullopt;
    }
    const std::vector<Entry> es = entries(e.value, kSagaKeys, "key", " in saga");
    SagaSpec spec;
    const Entry* steps = find(es, "steps");
    if (!steps) {
        error(key_pos(e), label +
                              ": saga: missing 'steps' (- name: …, do: […], expect: …, "
                              "within: 30s)");
    } else if (!steps->value.IsSequence() || steps->value.size() == 0) {
        error(value_pos(*steps), label +
                                     ": saga: steps: expected a list of one or more steps, got " +
                                     describe(steps->value));
    } else {
        std::set<std::string> names;
        for (const YAML::Node& node : steps->value) {
            if (auto st = saga_step(node, value_pos(*steps), label, names))
                spec.steps.push_back(std::move(*st));
        }
    }
    if (const Entry* f = find(es, "on_failure")) actions(*f, "saga: on_failure", spec.on_failure);
    if (diags_.items().size() != errors_before) return std::nullopt;
    for (const SagaStep& st : spec.steps) {
        spec.definition += "step=" + st.name + "\nexpect=" + st.expect.canonical +
                           "\nwithin=" + format_duration(st.within) + "\n";
    }
    return spec;
}

std::optional<SagaStep> RuleSetBuilder::saga_step(const YAML::Node& node, const SourcePos& fallback,
                                                  const std::string& label,
                                                  std::set<std::string>& names) {
    const SourcePos pos = src_->at_node(node, fallback);
    if (!node.IsMap()) {
        error(pos, label + ": a saga step is a map (name, do, expect, within, undo), got " +
                       describe(node));
        return std::nullopt;
    }
    const std::size_t errors_before = diags_.items().size();
    const std::vector<Entry> es = entries(node, kStepKeys, "key", " in a saga step");
    SagaStep st;
    std::string where = label + ": saga step";
    if (const Entry* n = find(es, "name")) {
        if (const auto name = plain_scalar(*n, "name")) {
            if (!valid_rule_name(*name)) {
                error(value_pos(*n), "step name '" + shown(*name) +
                                         "' may only contain lower-case letters, digits and '_'");
            } else if (!names.insert(*name).second) {
                error(value_pos(*n), "duplicate step name '" + *name + "'");
            }
            st.name = *name;
            where = label + ": step '" + *name + "'";
        }
    } else {
        error(pos, label + ": a saga step needs a 'name'");
    }
    if (const Entry* e = find(es, "do")) actions(*e, "do", st.actions);
    if (const Entry* e = find(es, "expect")) {
        if (auto p = condition(*e)) st.expect = std::move(*p);
    } else {
        error(pos, where + " has no 'expect' (the condition that confirms it)");
    }
    if (const Entry* e = find(es, "within")) {
        if (const auto d = duration(*e, "within", false)) st.within = *d;
    } else {
        error(pos, where + " has no 'within' (how long 'expect' may take, e.g. within: 30s)");
    }
    if (const Entry* e = find(es, "undo")) actions(*e, "undo", st.undo);
    if (diags_.items().size() != errors_before) return std::nullopt;
    return st;
}

std::optional<ActionSpec> RuleSetBuilder::action(const Entry& e, const std::string& label) {
    if (e.key == "publish") return publish(e, label);
    if (e.key == "output") return output(e, label);
    if (e.key == "exec") return exec(e, label);
    auto t = templ(e.value, &e.key_node, "log", key_pos(e));
    if (!t) return std::nullopt;
    return LogSpec{std::move(*t)};
}

bool RuleSetBuilder::literal_topic_ok(const Template& topic, const YAML::Node& value,
                                      const SourcePos& at) {
    // What the template itself writes is checked here, at its place in the
    // file; what its expressions render is checked before each publish.
    bool ok = true;
    std::size_t literal_bytes = 0;
    for (const Template::Part& part : topic.parts) {
        if (part.expr) continue;
        literal_bytes += part.text.size();
        const auto problem = check_topic_bytes(part.text);
        if (!problem) continue;
        const SourcePos where = src_->in_scalar(value, part.offset + problem->offset);
        switch (problem->kind) {
            case TopicProblem::Kind::Wildcard:
                error(where, std::string("topic: a publish topic must not contain the MQTT "
                                         "wildcard '") +
                                 part.text[problem->offset] +
                                 "' (wildcards only work in subscriptions; name one topic)");
                break;
            case TopicProblem::Kind::Nul:
                error(where, "topic: a publish topic must not contain a NUL character");
                break;
            default:
                error(where, "topic: a publish topic must be valid UTF-8; it " + problem->message);
                break;
        }
        ok = false;
    }
    if (topic.parts.empty()) {
        error(at, "topic: must not be empty");
        ok = false;
    } else if (literal_bytes > kMaxTopicBytes) {
        error(at, "topic: a publish topic is at most 65535 bytes; this one has " +
                      std::to_string(literal_bytes) + " without its templates");
        ok = false;
    }
    return ok;
}

std::optional<ActionSpec> RuleSetBuilder::publish(const Entry& e, const std::string& label) {
    if (!e.value.IsMap()) {
        error(value_pos(e),
              label + ": publish: expected a map with topic and payload, got " + describe(e.value));
        return std::nullopt;
    }
    const std::vector<Entry> es = entries(e.value, kPublishKeys, "key", " in publish");
    PublishSpec p;
    bool ok = true;
    if (const Entry* t = find(es, "topic")) {
        auto topic = templ(t->value, &t->key_node, "topic", key_pos(*t));
        if (topic) {
            if (!literal_topic_ok(*topic, t->value, value_pos(*t))) ok = false;
            p.topic = std::move(*topic);
        } else {
            ok = false;
        }
    } else {
        error(key_pos(e), "publish: missing 'topic'");
        ok = false;
    }
    if (const Entry* pl = find(es, "payload")) {
        if (auto payload = templ(pl->value, &pl->key_node, "payload", key_pos(*pl))) {
            p.payload = std::move(*payload);
        } else {
            ok = false;
        }
    }
    if (const Entry* q = find(es, "qos")) {
        if (q->value.IsScalar() && (q->value.Scalar() == "0" || q->value.Scalar() == "1")) {
            p.qos = q->value.Scalar() == "1" ? 1 : 0;
        } else {
            error(value_pos(*q), "qos: expected 0 or 1, got " + describe(q->value));
            ok = false;
        }
    }
    if (const Entry* r = find(es, "retain")) {
        if (const auto b = boolean(*r, "retain")) {
            p.retain = *b;
        } else {
            ok = false;
        }
    }
    if (!ok) return std::nullopt;
    return p;
}

std::optional<ActionSpec> RuleSetBuilder::output(const Entry& e, const std::string& label) {
    if (!e.value.IsMap()) {
        error(value_pos(e),
              label + ": output: expected a map with name and value, got " + describe(e.value));
        return std::nullopt;
    }
    const std::vector<Entry> es = entries(e.value, kOutputKeys, "key", " in output");
    OutputSpec o;
    bool ok = true;
    if (const Entry* n = find(es, "name")) {
        if (const auto name = plain_scalar(*n, "output name")) {
            if (options_.outputs) {
                const auto& known = *options_.outputs;
                if (std::find(known.begin(), known.end(), *name) == known.end()) {
                    std::string msg = "unknown output '" + *name + "'";
                    const std::string near = closest_match(*name, known);
                    if (!near.empty()) msg += " (did you mean '" + near + "'?)";
                    error(value_pos(*n), msg);
                    ok = false;
                }
            } else if (!valid_output_name(*name)) {
                error(value_pos(*n),
                      "'" + *name + "' is not a valid output name ([a-z][a-z0-9_]*)");
                ok = false;
            }
            o.name = *name;
        } else {
            ok = false;
        }
    } else {
        error(key_pos(e), "output: missing 'name'");
        ok = false;
    }
    if (const Entry* v = find(es, "value")) {
        const std::string s = v->value.IsScalar() ? lower(v->value.Scalar()) : std::string();
        if (s == "on" || s == "true") {
            o.on = true;
        } else if (s == "off" || s == "false") {
            o.on = false;
        } else {
            error(value_pos(*v),
                  "value: expected on, off, true or false, got " + describe(v->value));
            ok = false;
        }
    } else {
        error(key_pos(e), "output: missing 'value' (on or off)");
        ok = false;
    }
    if (const Entry* f = find(es, "for")) {
        if (const auto d = duration(*f, "for", false)) {
            o.duration = *d;
        } else {
            ok = false;
        }
    }
    if (!ok) return std::nullopt;
    return o;
}

bool RuleSetBuilder::literal_program_ok(const Template& program, const YAML::Node& value,
                                        const SourcePos& at) {
    // The program is fixed when the rule is written: a template would let
    // whoever can set a sensor's value choose what runs.
    for (const Template::Part& part : program.parts) {
        if (!part.expr) continue;
        error(src_->in_scalar(value, part.offset),
              "exec: the program (first argument) must be a literal absolute path, not a "
              "template; name the program and pass values as later arguments, e.g. exec: "
              "[/usr/local/bin/notify, \"{{greenhouse.temp}}\"]");
        return false;
    }
    if (program.source.empty()) {
        error(at, "exec: the program (first argument) is empty");
        return false;
    }
    if (program.source.front() != '/') {
        error(at,
              "exec: the program (first argument) must be an absolute path starting with "
              "'/', got '" +
                  program.source.substr(0, 60) +
                  "' (no shell or PATH search runs: write its full path, e.g. "
                  "/usr/local/bin/notify)");
        return false;
    }
    return true;
}

std::optional<ActionSpec> RuleSetBuilder::exec(const Entry& e, const std::string& label) {
    ExecSpec x;
    YAML::Node argv = e.value;
    SourcePos argv_pos = value_pos(e);
    bool ok = true;
    if (e.value.IsMap()) {
        const std::vector<Entry> es = entries(e.value, kExecKeys, "key", " in exec");
        if (const Entry* t = find(es, "timeout")) {
            if (const auto d = duration(*t, "timeout", false)) {
                x.timeout = *d;
            } else {
                ok = false;
            }
        }
        if (const Entry* b = find(es, "breaker")) {
            x.breaker = read_breaker_settings(*yaml_, *b);
            if (!x.breaker) ok = false;
        }
        const Entry* a = find(es, "argv");
        if (!a) {
            error(key_pos(e), "exec: missing 'argv'");
            return std::nullopt;
        }
        argv = a->value;
        argv_pos = value_pos(*a);
    }
    if (!argv.IsSequence()) {
        error(argv_pos, label +
                            ": exec: expected a list of arguments, e.g. exec: "
                            "[/usr/local/bin/notify, \"hot\"] (no shell runs, so one command "
                            "line in a string does not work)");
        return std::nullopt;
    }
    if (argv.size() == 0) {
        error(argv_pos, "exec: the argument list is empty (the first is the program to run)");
        return std::nullopt;
    }
    bool first = true;
    for (const YAML::Node& arg : argv) {
        auto t = templ(arg, nullptr, "exec argument", argv_pos);
        if (t && first && !literal_program_ok(*t, arg, src_->at_node(arg, argv_pos))) t.reset();
        first = false;
        if (t) {
            x.argv.push_back(std::move(*t));
        } else {
            ok = false;
        }
    }
    if (!ok) return std::nullopt;
    return x;
}

CompileResult RuleSetBuilder::finish() {
    CompileResult result;
    if (!diags_.has_errors()) {
        auto set = std::make_shared<RuleSet>();
        set->rules_ = std::move(rules_);
        set->sensors_ = symbols_.sensors();
        set->windows_ = symbols_.windows();
        set->files_ = std::move(files_);
        result.rules = std::move(set);
    }
    result.diagnostics = std::move(diags_);
    return result;
}

std::optional<BreakerSettings> read_breaker_settings(YamlReader& yaml, const YamlEntry& e) {
    const std::size_t errors_before = yaml.error_count();
    BreakerSettings b;
    if (!e.value.IsMap()) {
        yaml.error(
            yaml.value_pos(e),
            "breaker: expected a map { failures: 5, open_for: 30s }, got " + describe(e.value));
        return std::nullopt;
    }
    for (const YamlEntry& k : yaml.section(e, {"failures", "open_for"})) {
        if (k.key == "failures") {
            const auto n = yaml.get(k, "breaker: failures", as_integer);
            if (n && (*n < 1 || *n > 1000))
                yaml.error(yaml.value_pos(k),
                           "breaker: failures: must be 1 to 1000, got " + std::to_string(*n));
            else if (n)
                b.failures = static_cast<unsigned>(*n);
        } else {
            const auto d = yaml.get(k, "breaker: open_for", as_duration);
            if (d && (d->count() < 100 || *d > kMaxBreakerOpen))
                yaml.error(yaml.value_pos(k), "breaker: open_for: must be 100ms to " +
                                                  format_duration(kMaxBreakerOpen) + ", got " +
                                                  format_duration(*d));
            else if (d)
                b.open_for = *d;
        }
    }
    if (yaml.error_count() != errors_before) return std::nullopt;
    return b;
}

CompileResult compile_rules(std::vector<RuleSource> sources, const CheckOptions& options) {
    std::stable_sort(sources.begin(), sources.end(),
                     [](const RuleSource& a, const RuleSource& b) { return a.path < b.path; });
    sources.erase(
        std::unique(sources.begin(), sources.end(),
                    [](const RuleSource& a, const RuleSource& b) { return a.path == b.path; }),
        sources.end());
    RuleSetBuilder b(options);
    for (const RuleSource& s : sources)
        b.file(s);
    return b.finish();
}

}  // namespace tg::rules
