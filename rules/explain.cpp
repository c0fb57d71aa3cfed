#include "rules/explain.h"

#include <chrono>

#include "core/units.h"

namespace tg::rules {
namespace {

// Binding strength, weakest first, as SPEC §5.1's table.
int level(Code c) {
    switch (c) {
        case Code::Or:
            return 1;
        case Code::And:
            return 2;
        case Code::Eq:
        case Code::Ne:
            return 3;
        case Code::Lt:
        case Code::Le:
        case Code::Gt:
        case Code::Ge:
            return 4;
        case Code::Add:
        case Code::Sub:
            return 5;
        case Code::Mul:
        case Code::Div:
        case Code::Mod:
            return 6;
        case Code::Neg:
        case Code::Not:
            return 7;
        default:
            return 8;
    }
}

const char* infix(Code c) {
    switch (c) {
        case Code::Or:
            return "or";
        case Code::And:
            return "and";
        case Code::Eq:
            return "==";
        case Code::Ne:
            return "!=";
        case Code::Lt:
            return "<";
        case Code::Le:
            return "<=";
        case Code::Gt:
            return ">";
        case Code::Ge:
            return ">=";
        case Code::Add:
            return "+";
        case Code::Sub:
            return "-";
        case Code::Mul:
            return "*";
        case Code::Div:
            return "/";
        case Code::Mod:
            return "%";
        default:
            return nullptr;
    }
}

const char* window_name(Code c) {
    switch (c) {
        case Code::WinAvg:
            return "avg";
        case Code::WinMin:
            return "min";
        case Code::WinMax:
            return "max";
        case Code::WinSum:
            return "sum";
        case Code::WinCount:
            return "count";
        case Code::WinStddev:
            return "stddev";
        case Code::WinDelta:
            return "delta";
        case Code::WinRate:
            return "rate";
        default:
            return nullptr;
    }
}

bool is_comparison(Code c) {
    return c == Code::Lt || c == Code::Le || c == Code::Gt || c == Code::Ge || c == Code::Eq ||
           c == Code::Ne;
}

std::string quoted(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

class Printer {
  public:
    Printer(const Program& p, const std::vector<std::string>& names,
            const std::vector<WindowSpec>& windows)
        : p_(p), names_(names), windows_(windows) {}

    std::string text(std::uint32_t at) const {
        if (at >= p_.code.size()) return "?";
        const Instr& in = p_.code[at];
        if (const char* op = infix(in.code)) {
            const int lv = level(in.code);
            std::string right = in.c == kConstantRight && !is_logic(in.code)
                                    ? number(in.number)
                                    : operand(in.b, lv, true);
            return operand(in.a, lv, false) + " " + op + " " + right;
        }
        if (const char* w = window_name(in.code)) {
            if (in.a >= windows_.size()) return "?";
            const WindowSpec& ws = windows_[in.a];
            return std::string(w) + "(" + sensor(ws.sensor) + ", " +
                   format_duration(std::chrono::milliseconds(ws.length_ns / 1'000'000)) + ")";
        }
        switch (in.code) {
            case Code::Number:
                return number(in.number);
            case Code::Boolean:
                return in.a ? "true" : "false";
            case Code::String:
                return in.a < p_.strings.size() ? quoted(p_.strings[in.a]) : "?";
            case Code::Sensor:
                return sensor(in.a);
            case Code::Var:
                return "var";
            case Code::Neg:
                return "-" + operand(in.a, level(Code::Neg), false);
            case Code::Not:
                return "not " + operand(in.a, level(Code::Not), false);
            case Code::Age:
                return "age(" + sensor(in.a) + ")";
            case Code::Abs:
                return "abs(" + text(in.a) + ")";
            case Code::Round:
                return "round(" + text(in.a) + ", " + text(in.b) + ")";
            case Code::Min:
                return "min(" + text(in.a) + ", " + call_second(in) + ")";
            case Code::Max:
                return "max(" + text(in.a) + ", " + call_second(in) + ")";
            case Code::Between:
                return "between(" + text(in.a) + ", " + text(in.b) + ", " + text(in.c) + ")";
            case Code::Json:
                return "json(" + text(in.a) + ")";
            default:
                return "?";
        }
    }

  private:
    static bool is_logic(Code c) { return c == Code::And || c == Code::Or; }
    static std::string number(double d) { return render_text(Val::num(d)); }
    std::string call_second(const Instr& in) const {
        return in.c == kConstantRight ? number(in.number) : text(in.b);
    }
    std::string sensor(std::uint32_t slot) const {
        return slot < names_.size() ? names_[slot] : "?";
    }
    // A child in parentheses when it binds more weakly than its parent (or
    // as weakly, on the right: a - (b - c)).
    std::string operand(std::uint32_t at, int parent, bool right) const {
        if (at >= p_.code.size()) return "?";
        const int lv = level(p_.code[at].code);
        const std::string t = text(at);
        return lv < parent || (right && lv == parent) ? "(" + t + ")" : t;
    }

    const Program& p_;
    const std::vector<std::string>& names_;
    const std::vector<WindowSpec>& windows_;
};

void comparisons(const Program& p, std::uint32_t at, std::vector<std::uint32_t>& out) {
    if (at >= p.code.size()) return;
    const Instr& in = p.code[at];
    if (is_comparison(in.code)) {
        out.push_back(at);
        return;
    }
    switch (in.code) {
        case Code::And:
        case Code::Or:
            comparisons(p, in.a, out);
            comparisons(p, in.b, out);
            break;
        case Code::Not:
            comparisons(p, in.a, out);
            break;
        default:
            break;
    }
}

}  // namespace

std::string program_text(const Program& p, std::uint32_t at,
                         const std::vector<std::string>& sensor_names,
                         const std::vector<WindowSpec>& windows) {
    return Printer(p, sensor_names, windows).text(at);
}

std::string explain_value(const Val& v) {
    switch (v.kind) {
        case Val::Kind::Missing:
            return "missing";
        case Val::Kind::String:
            return quoted(v.string);
        default:
            return render_text(v);
    }
}

std::string explain_condition(const Program& p, EvalEnv& env,
                              const std::vector<std::string>& sensor_names,
                              const std::vector<WindowSpec>& windows) {
    const Printer printer(p, sensor_names, windows);
    std::vector<std::uint32_t> found;
    comparisons(p, p.root, found);
    std::string out;
    for (std::uint32_t at : found) {
        const Instr& in = p.code[at];
        const Val l = evaluate_at(p, in.a, env);
        const std::string r = in.c == kConstantRight ? render_text(Val::num(in.number))
                                                     : explain_value(evaluate_at(p, in.b, env));
        if (!out.empty()) out += "; ";
        out += printer.text(at) + ": " + explain_value(l) + " " + infix(in.code) + " " + r + " = " +
               explain_value(evaluate_at(p, at, env));
    }
    const Val whole = evaluate_at(p, p.root, env);
    if (found.empty()) return printer.text(p.root) + " = " + explain_value(whole);
    if (found.size() > 1 || found.front() != p.root) out += "; condition = " + explain_value(whole);
    return out;
}

}  // namespace tg::rules
