// Rule files (SPEC §5): YAML text in, a checked and compiled RuleSet out, or
// every problem of every file as FILE:LINE:COL diagnostics. This is the whole
// of `tidegate check` for rule files except reading them (see loader.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/breaker.h"
#include "core/source_error.h"
#include "rules/program.h"
#include "rules/yaml_reader.h"

namespace tg::rules {

enum class RuleSeverity : std::uint8_t { Info, Warning, Critical };
std::string_view severity_name(RuleSeverity s);

// Text with {{ EXPR }} parts (publish topic/payload, exec arguments, log).
struct Template {
    struct Part {
        std::string text;             // literal text, when expr is empty
        std::optional<Program> expr;  // an expression to render
        std::size_t offset = 0;       // where the part starts in `source` (at "{{" for expr)
    };
    std::vector<Part> parts;
    std::string source;  // as written
};

// Splits `text` into literal parts and {{ EXPR }} parts (an expression ends
// at the first "}}" outside a string literal) and compiles the expressions,
// template names allowed. Every problem goes to `errors` at its byte offset
// in `text`; nullopt when there was any.
std::optional<Template> parse_template(std::string_view text, Symbols& symbols,
                                       const ErrorSink& errors);

// The text with each expression's value rendered in `env` (render_text).
std::string render_template(const Template& t, EvalEnv& env);

struct PublishSpec {
    Template topic;
    Template payload;
    int qos = 1;
    bool retain = false;
};

struct OutputSpec {
    std::string name;
    bool on = true;
    std::optional<std::chrono::milliseconds> duration;  // `for`: switch back after this long
};

inline constexpr std::chrono::milliseconds kDefaultExecTimeout{10'000};

struct ExecSpec {
    std::vector<Template> argv;
    std::chrono::milliseconds timeout = kDefaultExecTimeout;
    std::optional<BreakerSettings> breaker;  // the program's circuit breaker (SPEC §11)
};

struct LogSpec {
    Template message;
};

using ActionSpec = std::variant<PublishSpec, OutputSpec, ExecSpec, LogSpec>;

// A saga (SPEC §12): steps run in order, each confirmed by its `expect`
// within its `within`; on a failure the steps done are undone in reverse.
struct SagaStep {
    std::string name;
    std::vector<ActionSpec> actions;  // `do`
    Program expect;
    std::chrono::milliseconds within{0};
    std::vector<ActionSpec> undo;
};

struct SagaSpec {
    std::vector<SagaStep> steps;
    std::vector<ActionSpec> on_failure;
    // Step names, expects and withins in canonical form: a saga in progress
    // continues across a reload or restart only while this is unchanged.
    std::string definition;
};

struct Rule {
    std::string name;
    std::string description;
    std::string file;
    SourcePos pos;  // the rule's entry in its file
    RuleSeverity severity = RuleSeverity::Warning;
    Program when;
    std::optional<Program> clear_when;
    std::chrono::milliseconds for_duration{0};
    std::chrono::milliseconds cooldown{0};
    std::vector<ActionSpec> actions;
    std::vector<ActionSpec> on_clear;
    std::optional<SagaSpec> saga;  // started when the rule fires
    // Sensors named in when/clear_when (function arguments included), first
    // appearance first: the `values` of rule events, and what triggers an
    // evaluation.
    std::vector<std::uint32_t> sensors;
    // Evaluated on every tick: uses `for`, age() or a window function.
    bool uses_time = false;
    // when, for, clear_when and cooldown in canonical form: a rule whose
    // definition is unchanged keeps its state across reloads and restarts.
    std::string definition;
};

class RuleSet {
  public:
    // Rules in evaluation order: by file path (byte order), then position.
    const std::vector<Rule>& rules() const { return rules_; }
    // Sensor slot -> name, for every sensor any expression names.
    const std::vector<std::string>& sensors() const { return sensors_; }
    const std::vector<WindowSpec>& windows() const { return windows_; }
    const std::vector<std::string>& files() const { return files_; }
    const Rule* find(std::string_view name) const;
    std::size_t size() const { return rules_.size(); }

  private:
    friend class RuleSetBuilder;
    std::vector<Rule> rules_;
    std::vector<std::string> sensors_;
    std::vector<WindowSpec> windows_;
    std::vector<std::string> files_;
};

struct RuleSource {
    std::string path;  // as reported in diagnostics
    std::string text;
};

struct CheckOptions {
    // From the configuration; when absent, sensor and output names are not
    // verified (`tidegate check FILE` without -c).
    std::optional<SensorCatalogue> sensors;
    std::optional<std::vector<std::string>> outputs;
};

struct CompileResult {
    std::shared_ptr<const RuleSet> rules;  // null when any error was found
    Diagnostics diagnostics;               // every problem of every file
};

// `breaker: { failures: 5, open_for: 30s }` (SPEC §11), of an output in the
// config or an exec action in a rule file: nullopt after reporting a problem.
std::optional<BreakerSettings> read_breaker_settings(YamlReader& yaml, const YamlEntry& e);

// Parses, checks and compiles rule files. Sources are taken in path byte
// order (a path given twice counts once).
CompileResult compile_rules(std::vector<RuleSource> sources, const CheckOptions& options = {});

}  // namespace tg::rules
