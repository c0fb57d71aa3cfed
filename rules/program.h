// The expression language of SPEC §5.1, back half: the checker/compiler that
// resolves names, checks types, arity and window literals, and produces a
// compact program (instructions in one vector, sensors as slots, windows as
// ids); and the evaluator with missing values and three-valued logic.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <forward_list>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/value.h"
#include "rules/syntax.h"
#include "rules/window.h"

namespace tg::rules {

// Longest duration a rule may use (windows, for, cooldown, output for, exec
// timeout): ten years, so that nanosecond arithmetic on monotonic and epoch
// times never overflows.
inline constexpr std::int64_t kMaxRuleDurationMs = 3650LL * 86'400'000LL;

// Sensor name -> type, from the configuration. Without one, any well-formed
// sensor name is accepted and its type is only known at run time.
using SensorCatalogue = std::map<std::string, ValueType>;

// Static type; Any = a sensor whose type is not known at check time.
enum class Type : std::uint8_t { Any, Number, Boolean, String };

enum class Code : std::uint8_t {
    Number,   // number
    Boolean,  // a = 0/1
    String,   // a = index into strings
    Sensor,   // a = sensor slot
    Var,      // a = TemplateVar
    Neg,      // a
    Not,      // a
    Add,      // a, b (binary ops alike; see kConstantRight)
    Sub,
    Mul,
    Div,
    Mod,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
    WinAvg,  // a = window id (window functions alike)
    WinMin,
    WinMax,
    WinSum,
    WinCount,
    WinStddev,
    WinDelta,
    WinRate,
    Age,      // a = sensor slot
    Abs,      // a
    Round,    // a, b (b = 0 literal when omitted)
    Min,      // a, b
    Max,      // a, b
    Between,  // a, b, c
    Json,     // a (templates only)
};

enum class TemplateVar : std::uint32_t { Rule, Gateway, Severity, Ts, Step };

// Instr::c of a numeric binary operation whose right operand is the literal
// in Instr::number rather than instruction b.
inline constexpr std::uint32_t kConstantRight = 1;

struct Instr {
    Code code = Code::Number;
    std::uint32_t a = 0, b = 0, c = 0;
    double number = 0;
};

// Shapes the evaluator runs without walking the instructions: most rules are
// one sensor against one constant.
enum class Shape : std::uint8_t {
    General,
    SensorCompare,  // sensor <op> number (or number <op> sensor, flipped)
    SensorTruth,    // a sensor on its own (a boolean sensor as the condition)
};

struct Program {
    std::vector<Instr> code;
    std::vector<std::string> strings;
    std::uint32_t root = 0;
    Type type = Type::Any;
    std::string canonical;               // see canonical() in syntax.h
    std::vector<std::uint32_t> sensors;  // slots named anywhere, first appearance, unique
    bool uses_time = false;              // age() or a window function
    Shape shape = Shape::General;
    Code compare = Code::Gt;  // SensorCompare: the operator, sensor on the left
    std::uint32_t slot = 0;   // SensorCompare, SensorTruth
    double constant = 0;      // SensorCompare
};

struct WindowSpec {
    std::uint32_t sensor = 0;  // slot
    std::int64_t length_ns = 0;
    bool extremes = false;  // read by min or max
};

// Names a rule set resolves against; shared by every expression of the set so
// that a sensor has one slot and a (sensor, length) window one id.
class Symbols {
  public:
    explicit Symbols(const SensorCatalogue* catalogue = nullptr) : catalogue_(catalogue) {}

    const SensorCatalogue* catalogue() const { return catalogue_; }
    std::uint32_t sensor(const std::string& name);
    std::uint32_t window(std::uint32_t sensor, std::int64_t length_ns, bool extremes);
    const std::vector<std::string>& sensors() const { return sensors_; }
    const std::vector<WindowSpec>& windows() const { return windows_; }

  private:
    const SensorCatalogue* catalogue_;
    std::vector<std::string> sensors_;
    std::unordered_map<std::string, std::uint32_t> sensor_ids_;
    std::vector<WindowSpec> windows_;
};

// Receives every problem found, at a byte offset into the expression text.
using ErrorSink = std::function<void(std::size_t offset, const std::string& message)>;

// Checks and compiles. `template_names`: whether rule, gateway, severity and ts
// may be used (templates only). Returns nullopt after reporting at least one
// problem; reports as many as it can find in one pass.
std::optional<Program> compile(const SyntaxNode& root, Symbols& symbols, bool template_names,
                               const ErrorSink& errors);

// Parse + compile in one step; syntax errors go to the same sink.
std::optional<Program> compile_text(std::string_view text, Symbols& symbols, bool template_names,
                                    const ErrorSink& errors);

// Words that cannot be a whole sensor name (§5.1).
bool is_reserved_name(std::string_view name);
// Segments [a-z][a-z0-9_]* joined by '.'.
bool is_valid_sensor_name(std::string_view name);
std::string_view type_word(Type t);  // "a number", "a boolean", "a string", "a value"

// ---------------------------------------------------------------------------
// Evaluation

// The latest reading of one sensor.
struct SensorData {
    bool has_value = false;
    Value value;
    std::int64_t last_ns = 0;  // monotonic time of that reading
};

struct TemplateVars {
    std::string_view rule;
    std::string_view gateway;
    std::string_view severity;
    std::string_view ts;
    std::string_view step;  // the saga step concerned; empty outside sagas
};

// A value during evaluation. Strings point into the sensor data or the
// program, which outlive the evaluation.
struct Val {
    enum class Kind : std::uint8_t { Missing, Number, Boolean, String };
    Kind kind = Kind::Missing;
    bool boolean = false;
    double number = 0;
    std::string_view string;

    static Val missing() { return {}; }
    static Val num(double d) {
        Val v;
        v.kind = Kind::Number;
        v.number = d;
        return v;
    }
    static Val boolean_of(bool b) {
        Val v;
        v.kind = Kind::Boolean;
        v.boolean = b;
        return v;
    }
    static Val str(std::string_view s) {
        Val v;
        v.kind = Kind::String;
        v.string = s;
        return v;
    }
    bool is_true() const { return kind == Kind::Boolean && boolean; }
    bool is_false() const { return kind == Kind::Boolean && !boolean; }
};

struct EvalEnv {
    const SensorData* sensors = nullptr;  // indexed by slot
    Window* windows = nullptr;            // indexed by window id
    std::int64_t now_ns = 0;
    std::int64_t start_ns = 0;  // age() of a sensor with no reading counts from here
    const TemplateVars* vars = nullptr;
    // Where json(x) keeps the text it makes, for as long as the caller needs
    // the results (a template's rendering). Conditions never call json().
    std::forward_list<std::string>* scratch = nullptr;
};

// Walks the instructions; evaluate_program below takes the short cuts first.
Val evaluate_general(const Program& program, EvalEnv& env);
// The value of the sub-expression at instruction `at` (explanations).
Val evaluate_at(const Program& program, std::uint32_t at, EvalEnv& env);

// Inline so that the common one-sensor rules cost a compare, not a call.
[[gnu::always_inline]] inline Val evaluate_program(const Program& program, EvalEnv& env) {
    if (program.shape == Shape::SensorCompare) {
        // Same results as the general path: missing unless a finite number.
        const SensorData& s = env.sensors[program.slot];
        const double* d = s.has_value ? std::get_if<double>(&s.value) : nullptr;
        if (!d || !std::isfinite(*d)) return Val::missing();
        const double c = program.constant;
        switch (program.compare) {
            case Code::Lt:
                return Val::boolean_of(*d < c);
            case Code::Le:
                return Val::boolean_of(*d <= c);
            case Code::Gt:
                return Val::boolean_of(*d > c);
            case Code::Ge:
                return Val::boolean_of(*d >= c);
            case Code::Eq:
                return Val::boolean_of(*d == c);
            default:
                return Val::boolean_of(*d != c);
        }
    }
    if (program.shape == Shape::SensorTruth) {
        const SensorData& s = env.sensors[program.slot];
        if (const bool* b = s.has_value ? std::get_if<bool>(&s.value) : nullptr) {
            return Val::boolean_of(*b);
        }
    }
    return evaluate_general(program, env);
}

// Template text of a value: numbers as SPEC §4, missing as null, booleans
// true/false, strings as they are.
std::string render_text(const Val& v);

// json(x): the value as a JSON literal. Numbers as SPEC §4, missing as null,
// booleans true/false, strings quoted with '"' and '\' escaped, control
// characters as \u00XX, and every ill-formed UTF-8 sequence replaced by
// U+FFFD, so that the text is valid JSON whatever a sensor sent.
void append_json_literal(std::string& out, const Val& v);

// round(x, n), half away from zero on the shortest decimal form of x, so that
// round(2.675, 2) is 2.68 as written rather than 2.67 as stored.
double round_half_away(double x, int digits);

}  // namespace tg::rules
