// Checker/compiler from syntax trees to programs, and the evaluator. Types are
// checked statically where they are known (numbers, literals, sensors of a
// catalogue); at run time a value of an unexpected type behaves as missing,
// so a misbehaving source can never make a condition true by accident.
#include "rules/program.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <system_error>

#include "core/json_writer.h"
#include "core/source_error.h"

namespace tg::rules {
namespace {

struct FuncInfo {
    std::string_view name;
    std::size_t min_args;
    std::size_t max_args;
    std::string_view usage;
};

constexpr std::array<FuncInfo, 13> kFunctions{{
    {"avg", 2, 2, "avg(sensor, window)"},
    {"min", 2, 2, "min(sensor, window) or min(a, b)"},
    {"max", 2, 2, "max(sensor, window) or max(a, b)"},
    {"sum", 2, 2, "sum(sensor, window)"},
    {"count", 2, 2, "count(sensor, window)"},
    {"stddev", 2, 2, "stddev(sensor, window)"},
    {"delta", 2, 2, "delta(sensor, window)"},
    {"rate", 2, 2, "rate(sensor, window)"},
    {"age", 1, 1, "age(sensor)"},
    {"abs", 1, 1, "abs(x)"},
    {"round", 1, 2, "round(x, n)"},
    {"between", 3, 3, "between(x, lo, hi)"},
    {"json", 1, 1, "json(x)"},
}};

constexpr std::array<std::string_view, 5> kTemplateNames{
    {"rule", "gateway", "severity", "ts", "step"}};
constexpr std::array<std::string_view, 5> kKeywords{{"and", "or", "not", "true", "false"}};

const FuncInfo* find_function(std::string_view name) {
    for (const FuncInfo& f : kFunctions) {
        if (f.name == name) return &f;
    }
    return nullptr;
}

std::vector<std::string> function_names() {
    std::vector<std::string> out;
    for (const FuncInfo& f : kFunctions)
        out.emplace_back(f.name);
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

bool numeric_ok(Type t) {
    return t == Type::Number || t == Type::Any;
}
bool boolean_ok(Type t) {
    return t == Type::Boolean || t == Type::Any;
}

Type type_of_value_type(ValueType t) {
    switch (t) {
        case ValueType::Number:
            return Type::Number;
        case ValueType::Boolean:
            return Type::Boolean;
        case ValueType::String:
            return Type::String;
    }
    return Type::Any;
}

Code window_code(std::string_view f) {
    if (f == "avg") return Code::WinAvg;
    if (f == "min") return Code::WinMin;
    if (f == "max") return Code::WinMax;
    if (f == "sum") return Code::WinSum;
    if (f == "count") return Code::WinCount;
    if (f == "stddev") return Code::WinStddev;
    if (f == "delta") return Code::WinDelta;
    return Code::WinRate;
}

bool is_window_function(std::string_view f) {
    return f == "avg" || f == "sum" || f == "count" || f == "stddev" || f == "delta" || f == "rate";
}

struct Compiled {
    std::uint32_t at = 0;
    Type type = Type::Any;
    bool ok = true;
};

class Compiler {
  public:
    Compiler(Symbols& symbols, bool template_names, const ErrorSink& errors)
        : symbols_(symbols), template_names_(template_names), errors_(errors) {}

    std::optional<Program> run(const SyntaxNode& root) {
        const Compiled c = node(root);
        if (!c.ok || failed_) return std::nullopt;
        program_.root = c.at;
        program_.type = c.type;
        program_.canonical = canonical(root);
        classify();
        return std::move(program_);
    }

  private:
    static Code flipped(Code c) {
        switch (c) {
            case Code::Lt:
                return Code::Gt;
            case Code::Le:
                return Code::Ge;
            case Code::Gt:
                return Code::Lt;
            case Code::Ge:
                return Code::Le;
            default:
                return c;  // == and != are symmetric
        }
    }

    void classify() {
        const Instr& root = program_.code[program_.root];
        if (root.code == Code::Sensor) {
            program_.shape = Shape::SensorTruth;
            program_.slot = root.a;
            return;
        }
        const bool comparison = root.code == Code::Lt || root.code == Code::Le ||
                                root.code == Code::Gt || root.code == Code::Ge ||
                                root.code == Code::Eq || root.code == Code::Ne;
        if (!comparison) return;
        const Instr& l = program_.code[root.a];
        if (root.c == kConstantRight) {
            if (l.code != Code::Sensor) return;
            program_.shape = Shape::SensorCompare;
            program_.compare = root.code;
            program_.slot = l.a;
            program_.constant = root.number;
            return;
        }
        const Instr& r = program_.code[root.b];
        if (l.code == Code::Sensor && r.code == Code::Number) {
            program_.shape = Shape::SensorCompare;
            program_.compare = root.code;
            program_.slot = l.a;
            program_.constant = r.number;
        } else if (l.code == Code::Number && r.code == Code::Sensor) {
            program_.shape = Shape::SensorCompare;
            program_.compare = flipped(root.code);
            program_.slot = r.a;
            program_.constant = l.number;
        }
    }

    void error(std::size_t offset, const std::string& message) {
        failed_ = true;
        errors_(offset, message);
    }

    std::uint32_t emit(Code code, std::uint32_t a = 0, std::uint32_t b = 0, std::uint32_t c = 0,
                       double number = 0) {
        program_.code.push_back(Instr{code, a, b, c, number});
        return static_cast<std::uint32_t>(program_.code.size() - 1);
    }

    // A numeric binary operation; a number literal on the right is folded
    // into the instruction (one call less per evaluation: `avg(s, 5m) > 30`).
    std::uint32_t emit_numeric(Code code, const Compiled& l, const Compiled& r) {
        const Instr& right = program_.code[r.at];
        if (right.code == Code::Number && r.at + 1 == program_.code.size()) {
            const double constant = right.number;
            program_.code.pop_back();
            return emit(code, l.at, 0, kConstantRight, constant);
        }
        return emit(code, l.at, r.at);
    }

    void note_sensor(std::uint32_t slot) {
        if (std::find(program_.sensors.begin(), program_.sensors.end(), slot) ==
            program_.sensors.end()) {
            program_.sensors.push_back(slot);
        }
    }

    Compiled node(const SyntaxNode& n) {
        switch (n.kind) {
            case SyntaxNode::Kind::Number:
                return {emit(Code::Number, 0, 0, 0, n.number), Type::Number, true};
            case SyntaxNode::Kind::Boolean:
                return {emit(Code::Boolean, n.boolean ? 1u : 0u), Type::Boolean, true};
            case SyntaxNode::Kind::String:
                program_.strings.push_back(n.text);
                return {emit(Code::String, static_cast<std::uint32_t>(program_.strings.size() - 1)),
                        Type::String, true};
            case SyntaxNode::Kind::Name:
                return name(n);
            case SyntaxNode::Kind::Unary:
                return unary(n);
            case SyntaxNode::Kind::Binary:
                return binary(n);
            case SyntaxNode::Kind::Call:
                return call(n);
        }
        return {0, Type::Any, false};
    }

    // Resolves a name that must be a sensor. Reports and returns nullopt when
    // it is not one.
    std::optional<std::pair<std::uint32_t, Type>> sensor(const SyntaxNode& n) {
        const std::string& name = n.text;
        if (std::find(kTemplateNames.begin(), kTemplateNames.end(), name) != kTemplateNames.end()) {
            if (template_names_) {
                error(n.offset, "'" + name + "' is a template name, not a sensor");
            } else {
                error(n.offset,
                      "'" + name + "' is only available in templates (publish, exec, log)");
            }
            return std::nullopt;
        }
        if (find_function(name)) {
            error(n.offset, "'" + name + "' is a function, not a sensor: call it, e.g. " +
                                std::string(find_function(name)->usage));
            return std::nullopt;
        }
        if (!is_valid_sensor_name(name)) {
            const std::string low = lower(name);
            if (std::find(kKeywords.begin(), kKeywords.end(), low) != kKeywords.end()) {
                error(n.offset, "unknown name '" + name + "' (did you mean '" + low + "'?)");
            } else {
                error(n.offset, "'" + name +
                                    "' is not a valid sensor name (lower-case segments "
                                    "[a-z][a-z0-9_]* joined by '.', e.g. greenhouse.temp)");
            }
            return std::nullopt;
        }
        Type type = Type::Any;
        if (const SensorCatalogue* cat = symbols_.catalogue()) {
            const auto it = cat->find(name);
            if (it == cat->end()) {
                std::vector<std::string> names;
                names.reserve(cat->size());
                for (const auto& kv : *cat)
                    names.push_back(kv.first);
                std::string msg = "unknown sensor '" + name + "'";
                const std::string near = closest_match(name, names);
                if (!near.empty()) msg += " (did you mean '" + near + "'?)";
                error(n.offset, msg);
                return std::nullopt;
            }
            type = type_of_value_type(it->second);
        }
        const std::uint32_t slot = symbols_.sensor(name);
        note_sensor(slot);
        return std::make_pair(slot, type);
    }

    Compiled name(const SyntaxNode& n) {
        if (template_names_) {
            for (std::size_t i = 0; i < kTemplateNames.size(); ++i) {
                if (kTemplateNames[i] == n.text) {
                    return {emit(Code::Var, static_cast<std::uint32_t>(i)), Type::String, true};
                }
            }
        }
        const auto s = sensor(n);
        if (!s) return {0, Type::Any, false};
        return {emit(Code::Sensor, s->first), s->second, true};
    }

    Compiled unary(const SyntaxNode& n) {
        const Compiled operand = node(*n.args[0]);
        if (!operand.ok) return {0, Type::Any, false};
        if (n.op == Op::Neg) {
            if (!numeric_ok(operand.type)) {
                error(n.offset, "'-' needs a number, got " + std::string(type_word(operand.type)));
                return {0, Type::Any, false};
            }
            return {emit(Code::Neg, operand.at), Type::Number, true};
        }
        if (!boolean_ok(operand.type)) {
            std::string msg = "'not' needs a boolean, got " + std::string(type_word(operand.type));
            if (operand.type == Type::Number) {
                msg += " ('not' binds tighter than comparisons: write not (a > b))";
            }
            error(n.offset, msg);
            return {0, Type::Any, false};
        }
        return {emit(Code::Not, operand.at), Type::Boolean, true};
    }

    Compiled binary(const SyntaxNode& n) {
        const Compiled l = node(*n.args[0]);
        const Compiled r = node(*n.args[1]);
        if (!l.ok || !r.ok) return {0, Type::Any, false};
        const std::string op(op_text(n.op));
        auto side_error = [&](const std::string& need, const Compiled& bad, const char* side) {
            error(n.offset, "'" + op + "' " + need + ", but the " + side + " operand is " +
                                std::string(type_word(bad.type)));
            return Compiled{0, Type::Any, false};
        };
        switch (n.op) {
            case Op::Mul:
            case Op::Div:
            case Op::Mod:
            case Op::Add:
            case Op::Sub: {
                if (!numeric_ok(l.type)) return side_error("needs numbers", l, "left");
                if (!numeric_ok(r.type)) return side_error("needs numbers", r, "right");
                const Code code = n.op == Op::Mul   ? Code::Mul
                                  : n.op == Op::Div ? Code::Div
                                  : n.op == Op::Mod ? Code::Mod
                                  : n.op == Op::Add ? Code::Add
                                                    : Code::Sub;
                return {emit_numeric(code, l, r), Type::Number, true};
            }
            case Op::Lt:
            case Op::Le:
            case Op::Gt:
            case Op::Ge: {
                if (!numeric_ok(l.type)) return side_error("compares numbers", l, "left");
                if (!numeric_ok(r.type)) return side_error("compares numbers", r, "right");
                const Code code = n.op == Op::Lt   ? Code::Lt
                                  : n.op == Op::Le ? Code::Le
                                  : n.op == Op::Gt ? Code::Gt
                                                   : Code::Ge;
                return {emit_numeric(code, l, r), Type::Boolean, true};
            }
            case Op::Eq:
            case Op::Ne:
                if (l.type != Type::Any && r.type != Type::Any && l.type != r.type) {
                    error(n.offset, "cannot compare " + std::string(type_word(l.type)) + " with " +
                                        std::string(type_word(r.type)) + " ('" + op +
                                        "' needs two values of the same type)");
                    return {0, Type::Any, false};
                }
                return {emit(n.op == Op::Eq ? Code::Eq : Code::Ne, l.at, r.at), Type::Boolean,
                        true};
            case Op::And:
            case Op::Or:
                if (!boolean_ok(l.type)) return side_error("needs booleans", l, "left");
                if (!boolean_ok(r.type)) return side_error("needs booleans", r, "right");
                return {emit(n.op == Op::And ? Code::And : Code::Or, l.at, r.at), Type::Boolean,
                        true};
            default:
                break;
        }
        return {0, Type::Any, false};
    }

    // The window length argument: a positive duration literal.
    std::optional<std::int64_t> window_length(const SyntaxNode& fn, const SyntaxNode& arg) {
        if (arg.kind != SyntaxNode::Kind::Number || !arg.duration) {
            std::string msg =
                "the window of " + fn.text + " must be a duration literal such as 5m or 30s";
            if (arg.kind == SyntaxNode::Kind::Number) msg += " (a bare number is not a duration)";
            error(arg.offset, msg);
            return std::nullopt;
        }
        if (!(arg.number > 0)) {
            error(arg.offset, "the window of " + fn.text + " must be longer than 0");
            return std::nullopt;
        }
        if (arg.number * 1000 > static_cast<double>(kMaxRuleDurationMs)) {
            error(arg.offset, "the window of " + fn.text + " must be at most 3650d");
            return std::nullopt;
        }
        return static_cast<std::int64_t>(std::llround(arg.number * 1e9));
    }

    // First argument of a window function or age(): a sensor name.
    std::optional<std::pair<std::uint32_t, Type>> sensor_argument(const SyntaxNode& fn,
                                                                  const SyntaxNode& arg) {
        if (arg.kind != SyntaxNode::Kind::Name) {
            error(arg.offset, "the first argument of " + fn.text + " must be a sensor name");
            return std::nullopt;
        }
        return sensor(arg);
    }

    Compiled window_call(const SyntaxNode& n) {
        const auto s = sensor_argument(n, *n.args[0]);
        const auto len = window_length(n, *n.args[1]);
        if (!s || !len) return {0, Type::Any, false};
        const Code code = window_code(n.text);
        if (code != Code::WinCount && !numeric_ok(s->second)) {
            error(n.args[0]->offset, n.text + " needs a number sensor, but '" + n.args[0]->text +
                                         "' is " + std::string(type_word(s->second)));
            return {0, Type::Any, false};
        }
        const bool extremes = code == Code::WinMin || code == Code::WinMax;
        const std::uint32_t id = symbols_.window(s->first, *len, extremes);
        program_.uses_time = true;
        return {emit(code, id), Type::Number, true};
    }

    // json(x): any value; a template function like the names rule, gateway,
    // severity and ts, since its text only matters where something renders.
    Compiled json_call(const SyntaxNode& n) {
        if (!template_names_) {
            error(n.offset, "'json' is only available in templates (publish, exec, log)");
            return {0, Type::Any, false};
        }
        const Compiled arg = node(*n.args[0]);
        if (!arg.ok) return {0, Type::Any, false};
        return {emit(Code::Json, arg.at), Type::String, true};
    }

    Compiled call(const SyntaxNode& n) {
        const FuncInfo* f = find_function(n.text);
        if (!f) {
            std::string msg = "unknown function '" + n.text + "'";
            const std::string near = closest_match(n.text, function_names());
            if (!near.empty()) msg += " (did you mean '" + near + "'?)";
            error(n.offset, msg);
            // Still check the arguments, for more errors in one run.
            for (const auto& a : n.args) {
                if (a->kind != SyntaxNode::Kind::Name) node(*a);
            }
            return {0, Type::Any, false};
        }
        if (n.args.size() < f->min_args || n.args.size() > f->max_args) {
            const std::string want =
                f->min_args == f->max_args
                    ? std::to_string(f->min_args)
                    : std::to_string(f->min_args) + " or " + std::to_string(f->max_args);
            error(n.offset, n.text + " takes " + want + " argument" +
                                (f->max_args == 1 ? "" : "s") + ", got " +
                                std::to_string(n.args.size()) + ": " + std::string(f->usage));
            return {0, Type::Any, false};
        }
        if (is_window_function(n.text)) return window_call(n);
        if (n.text == "json") return json_call(n);
        if ((n.text == "min" || n.text == "max") && n.args[1]->kind == SyntaxNode::Kind::Number &&
            n.args[1]->duration) {
            return window_call(n);
        }
        if (n.text == "age") {
            const auto s = sensor_argument(n, *n.args[0]);
            if (!s) return {0, Type::Any, false};
            program_.uses_time = true;
            return {emit(Code::Age, s->first), Type::Number, true};
        }
        // Scalar functions: every argument a number.
        std::vector<Compiled> args;
        bool ok = true;
        for (const auto& a : n.args) {
            Compiled c = node(*a);
            if (c.ok && !numeric_ok(c.type)) {
                error(a->offset, n.text + " needs numbers, got " + std::string(type_word(c.type)));
                c.ok = false;
            }
            ok = ok && c.ok;
            args.push_back(c);
        }
        if (!ok) return {0, Type::Any, false};
        if (n.text == "round" && n.args.size() == 2) {
            const SyntaxNode& digits = *n.args[1];
            if (digits.kind == SyntaxNode::Kind::Number &&
                (digits.duration || digits.number != std::floor(digits.number))) {
                error(digits.offset, "round: the number of decimals must be a whole number");
                return {0, Type::Any, false};
            }
        }
        if (n.text == "abs") return {emit(Code::Abs, args[0].at), Type::Number, true};
        if (n.text == "round") {
            const std::uint32_t digits =
                args.size() == 2 ? args[1].at : emit(Code::Number, 0, 0, 0, 0.0);
            return {emit(Code::Round, args[0].at, digits), Type::Number, true};
        }
        if (n.text == "min") return {emit(Code::Min, args[0].at, args[1].at), Type::Number, true};
        if (n.text == "max") return {emit(Code::Max, args[0].at, args[1].at), Type::Number, true};
        return {emit(Code::Between, args[0].at, args[1].at, args[2].at), Type::Boolean, true};
    }

    Symbols& symbols_;
    bool template_names_;
    const ErrorSink& errors_;
    Program program_;
    bool failed_ = false;
};

// ---------------------------------------------------------------------------
// Evaluation

inline Val number_or_missing(double d) {
    return std::isfinite(d) ? Val::num(d) : Val::missing();
}

inline Val from_optional(const std::optional<double>& d) {
    return d ? number_or_missing(*d) : Val::missing();
}

Val eval(const Program& p, std::uint32_t at, EvalEnv& env) {
    const Instr& in = p.code[at];
    switch (in.code) {
        case Code::Number:
            return Val::num(in.number);
        case Code::Boolean:
            return Val::boolean_of(in.a != 0);
        case Code::String:
            return Val::str(p.strings[in.a]);
        case Code::Sensor: {
            const SensorData& s = env.sensors[in.a];
            if (!s.has_value) return Val::missing();
            if (const double* d = std::get_if<double>(&s.value)) return number_or_missing(*d);
            if (const bool* b = std::get_if<bool>(&s.value)) return Val::boolean_of(*b);
            return Val::str(std::get<std::string>(s.value));
        }
        case Code::Var: {
            if (!env.vars) return Val::missing();
            switch (static_cast<TemplateVar>(in.a)) {
                case TemplateVar::Rule:
                    return Val::str(env.vars->rule);
                case TemplateVar::Gateway:
                    return Val::str(env.vars->gateway);
                case TemplateVar::Severity:
                    return Val::str(env.vars->severity);
                case TemplateVar::Ts:
                    return Val::str(env.vars->ts);
                case TemplateVar::Step:
                    return Val::str(env.vars->step);
            }
            return Val::missing();
        }
        case Code::Neg: {
            const Val v = eval(p, in.a, env);
            return v.kind == Val::Kind::Number ? Val::num(-v.number) : Val::missing();
        }
        case Code::Not: {
            const Val v = eval(p, in.a, env);
            return v.kind == Val::Kind::Boolean ? Val::boolean_of(!v.boolean) : Val::missing();
        }
        case Code::And: {
            // Three-valued: false wins over missing, then true only if both are.
            const Val l = eval(p, in.a, env);
            if (l.is_false()) return Val::boolean_of(false);
            const Val r = eval(p, in.b, env);
            if (r.is_false()) return Val::boolean_of(false);
            if (l.is_true() && r.is_true()) return Val::boolean_of(true);
            return Val::missing();
        }
        case Code::Or: {
            const Val l = eval(p, in.a, env);
            if (l.is_true()) return Val::boolean_of(true);
            const Val r = eval(p, in.b, env);
            if (r.is_true()) return Val::boolean_of(true);
            if (l.is_false() && r.is_false()) return Val::boolean_of(false);
            return Val::missing();
        }
        case Code::Eq:
        case Code::Ne: {
            const Val l = eval(p, in.a, env);
            const Val r = eval(p, in.b, env);
            if (l.kind == Val::Kind::Missing || l.kind != r.kind) return Val::missing();
            bool eq = false;
            switch (l.kind) {
                case Val::Kind::Number:
                    eq = l.number == r.number;
                    break;
                case Val::Kind::Boolean:
                    eq = l.boolean == r.boolean;
                    break;
                case Val::Kind::String:
                    eq = l.string == r.string;
                    break;
                case Val::Kind::Missing:
                    break;
            }
            return Val::boolean_of(in.code == Code::Eq ? eq : !eq);
        }
        case Code::Add:
        case Code::Sub:
        case Code::Mul:
        case Code::Div:
        case Code::Mod:
        case Code::Lt:
        case Code::Le:
        case Code::Gt:
        case Code::Ge:
        case Code::Min:
        case Code::Max: {
            const Val l = eval(p, in.a, env);
            if (l.kind != Val::Kind::Number) return Val::missing();
            double b = in.number;
            if (in.c != kConstantRight) {
                const Val r = eval(p, in.b, env);
                if (r.kind != Val::Kind::Number) return Val::missing();
                b = r.number;
            }
            const double a = l.number;
            switch (in.code) {
                case Code::Add:
                    return number_or_missing(a + b);
                case Code::Sub:
                    return number_or_missing(a - b);
                case Code::Mul:
                    return number_or_missing(a * b);
                case Code::Div:
                    return b == 0 ? Val::missing() : number_or_missing(a / b);
                case Code::Mod:
                    return b == 0 ? Val::missing() : number_or_missing(std::fmod(a, b));
                case Code::Lt:
                    return Val::boolean_of(a < b);
                case Code::Le:
                    return Val::boolean_of(a <= b);
                case Code::Gt:
                    return Val::boolean_of(a > b);
                case Code::Ge:
                    return Val::boolean_of(a >= b);
                case Code::Min:
                    return Val::num(std::min(a, b));
                default:
                    return Val::num(std::max(a, b));
            }
        }
        case Code::WinAvg:
        case Code::WinMin:
        case Code::WinMax:
        case Code::WinSum:
        case Code::WinCount:
        case Code::WinStddev:
        case Code::WinDelta:
        case Code::WinRate: {
            Window& w = env.windows[in.a];
            w.expire(env.now_ns);
            switch (in.code) {
                case Code::WinAvg:
                    return from_optional(w.avg());
                case Code::WinMin:
                    return from_optional(w.min());
                case Code::WinMax:
                    return from_optional(w.max());
                case Code::WinSum:
                    return from_optional(w.sum());
                case Code::WinCount:
                    return Val::num(static_cast<double>(w.count()));
                case Code::WinStddev:
                    return from_optional(w.stddev());
                case Code::WinDelta:
                    return from_optional(w.delta());
                default:
                    return from_optional(w.rate());
            }
        }
        case Code::Age: {
            const SensorData& s = env.sensors[in.a];
            const std::int64_t since = s.has_value ? s.last_ns : env.start_ns;
            return Val::num(static_cast<double>(std::max<std::int64_t>(0, env.now_ns - since)) /
                            1e9);
        }
        case Code::Abs: {
            const Val v = eval(p, in.a, env);
            return v.kind == Val::Kind::Number ? Val::num(std::fabs(v.number)) : Val::missing();
        }
        case Code::Round: {
            const Val v = eval(p, in.a, env);
            const Val d = eval(p, in.b, env);
            if (v.kind != Val::Kind::Number || d.kind != Val::Kind::Number) return Val::missing();
            if (d.number != std::floor(d.number) || std::fabs(d.number) > 400) {
                return Val::missing();
            }
            return number_or_missing(round_half_away(v.number, static_cast<int>(d.number)));
        }
        case Code::Json: {
            // The text lives in the evaluation's scratch store, which outlives
            // the Val; a list never moves the strings it already holds.
            if (!env.scratch) return Val::missing();
            std::string& text = env.scratch->emplace_front();
            append_json_literal(text, eval(p, in.a, env));
            return Val::str(text);
        }
        case Code::Between: {
            const Val x = eval(p, in.a, env);
            const Val lo = eval(p, in.b, env);
            const Val hi = eval(p, in.c, env);
            if (x.kind != Val::Kind::Number || lo.kind != Val::Kind::Number ||
                hi.kind != Val::Kind::Number) {
                return Val::missing();
            }
            return Val::boolean_of(lo.number <= x.number && x.number <= hi.number);
        }
    }
    return Val::missing();
}

}  // namespace

std::uint32_t Symbols::sensor(const std::string& name) {
    const auto it = sensor_ids_.find(name);
    if (it != sensor_ids_.end()) return it->second;
    const auto id = static_cast<std::uint32_t>(sensors_.size());
    sensors_.push_back(name);
    sensor_ids_.emplace(name, id);
    return id;
}

std::uint32_t Symbols::window(std::uint32_t sensor, std::int64_t length_ns, bool extremes) {
    for (std::size_t i = 0; i < windows_.size(); ++i) {
        WindowSpec& w = windows_[i];
        if (w.sensor == sensor && w.length_ns == length_ns) {
            w.extremes = w.extremes || extremes;
            return static_cast<std::uint32_t>(i);
        }
    }
    windows_.push_back(WindowSpec{sensor, length_ns, extremes});
    return static_cast<std::uint32_t>(windows_.size() - 1);
}

std::optional<Program> compile(const SyntaxNode& root, Symbols& symbols, bool template_names,
                               const ErrorSink& errors) {
    Compiler c(symbols, template_names, errors);
    return c.run(root);
}

std::optional<Program> compile_text(std::string_view text, Symbols& symbols, bool template_names,
                                    const ErrorSink& errors) {
    SyntaxError err;
    const auto tree = parse_expression(text, err);
    if (!tree) {
        errors(err.offset, err.message);
        return std::nullopt;
    }
    return compile(*tree, symbols, template_names, errors);
}

bool is_reserved_name(std::string_view name) {
    return find_function(name) != nullptr ||
           std::find(kTemplateNames.begin(), kTemplateNames.end(), name) != kTemplateNames.end() ||
           std::find(kKeywords.begin(), kKeywords.end(), name) != kKeywords.end();
}

bool is_valid_sensor_name(std::string_view name) {
    std::size_t start = 0;
    for (;;) {
        const std::size_t dot = name.find('.', start);
        const std::string_view seg = name.substr(
            start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (seg.empty() || seg.front() < 'a' || seg.front() > 'z') return false;
        for (char c : seg) {
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
        }
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

std::string_view type_word(Type t) {
    switch (t) {
        case Type::Number:
            return "a number";
        case Type::Boolean:
            return "a boolean";
        case Type::String:
            return "a string";
        case Type::Any:
            return "a value";
    }
    return "a value";
}

Val evaluate_general(const Program& program, EvalEnv& env) {
    return eval(program, program.root, env);
}

Val evaluate_at(const Program& program, std::uint32_t at, EvalEnv& env) {
    if (at >= program.code.size()) return Val::missing();
    return eval(program, at, env);
}

std::string render_text(const Val& v) {
    switch (v.kind) {
        case Val::Kind::Missing:
            return "null";
        case Val::Kind::Number:
            return format_number(v.number);
        case Val::Kind::Boolean:
            return v.boolean ? "true" : "false";
        case Val::Kind::String:
            return std::string(v.string);
    }
    return "null";
}

void append_json_literal(std::string& out, const Val& v) {
    switch (v.kind) {
        case Val::Kind::Missing:
            out += "null";
            return;
        case Val::Kind::Number:
            out += std::isfinite(v.number) ? format_number(v.number) : std::string("null");
            return;
        case Val::Kind::Boolean:
            out += v.boolean ? "true" : "false";
            return;
        case Val::Kind::String:
            break;
    }
    // Quoted and escaped; bytes that are not UTF-8 become U+FFFD, so the
    // result is always valid JSON text.
    append_json_string(out, v.string);
}

double round_half_away(double x, int digits) {
    if (!std::isfinite(x) || x == 0) return x;
    // Shortest decimal digits of |x| in scientific form: d.ddd e±XX.
    char buf[64];
    const auto res =
        std::to_chars(buf, buf + sizeof buf, std::fabs(x), std::chars_format::scientific);
    if (res.ec != std::errc{}) return x;
    const std::string_view text(buf, static_cast<std::size_t>(res.ptr - buf));
    const std::size_t e_at = text.find('e');
    std::string mantissa;
    for (char c : text.substr(0, e_at)) {
        if (c != '.') mantissa += c;
    }
    int exp10 = 0;
    {
        std::string_view e = text.substr(e_at + 1);
        if (!e.empty() && e.front() == '+') e.remove_prefix(1);
        std::from_chars(e.data(), e.data() + e.size(), exp10);
    }
    // |x| = 0.m1 m2 m3 ... * 10^(exp10 + 1); keep `keep` leading digits.
    const long keep = static_cast<long>(exp10) + 1 + digits;
    if (keep >= static_cast<long>(mantissa.size())) return x;
    const double sign = x < 0 ? -1.0 : 1.0;
    if (keep < 0) return 0.0 * sign;
    const bool up = mantissa[static_cast<std::size_t>(keep)] >= '5';
    std::string kept = mantissa.substr(0, static_cast<std::size_t>(keep));
    long scale = static_cast<long>(exp10) + 1 - keep;  // value = kept * 10^scale
    if (up) {
        std::size_t i = kept.size();
        bool carry = true;
        while (carry && i > 0) {
            --i;
            if (kept[i] == '9') {
                kept[i] = '0';
            } else {
                ++kept[i];
                carry = false;
            }
        }
        if (carry) kept.insert(kept.begin(), '1');
    }
    if (kept.empty()) return 0.0 * sign;
    const std::string out = kept + "e" + std::to_string(scale);
    double r = 0;
    const auto parsed = std::from_chars(out.data(), out.data() + out.size(), r);
    if (parsed.ec != std::errc{}) return x;
    return sign * r;
}

}  // namespace tg::rules
