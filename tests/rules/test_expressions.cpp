// The expression language of SPEC §5.1, table-driven: precedence (via the
// canonical form), evaluation with missing values and three-valued logic,
// every function, syntax errors and checker errors with their offsets.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "rules/program.h"
#include "rules/syntax.h"

using namespace tg;
using namespace tg::rules;

namespace {

// Sensors of the evaluation rows: `gone` never had a reading.
const SensorCatalogue kCatalogue{
    {"temp", ValueType::Number},   {"level", ValueType::Number},
    {"zero", ValueType::Number},   {"gone", ValueType::Number},
    {"mode", ValueType::String},   {"door", ValueType::Boolean},
    {"shut", ValueType::Boolean},  {"greenhouse.temp", ValueType::Number},
    {"quiet", ValueType::Boolean},
};

const std::map<std::string, Value> kReadings{
    {"temp", 10.0},
    {"level", 2.5},
    {"zero", 0.0},
    {"mode", std::string("open")},
    {"door", true},
    {"shut", false},
    {"greenhouse.temp", 23.4},
};

constexpr std::int64_t kSecond = 1'000'000'000;

// Evaluates `text` with the readings above (taken at t = 0, now = 5 s, engine
// started at -10 s). Strings come back quoted, missing as "missing".
std::string eval(const std::string& text) {
    Symbols symbols(&kCatalogue);
    std::vector<std::string> errors;
    const auto program =
        compile_text(text, symbols, true, [&](std::size_t off, const std::string& m) {
            errors.push_back(std::to_string(off) + ": " + m);
        });
    if (!program) return "compile error: " + (errors.empty() ? std::string("?") : errors.front());
    std::vector<SensorData> sensors(symbols.sensors().size());
    for (std::size_t i = 0; i < sensors.size(); ++i) {
        const auto it = kReadings.find(symbols.sensors()[i]);
        if (it == kReadings.end()) continue;
        sensors[i].has_value = true;
        sensors[i].value = it->second;
        sensors[i].last_ns = 0;
    }
    std::vector<Window> windows;
    for (const WindowSpec& w : symbols.windows())
        windows.emplace_back(w.length_ns, w.extremes);
    const TemplateVars vars{"too_hot", "greenhouse-pi", "warning", "2026-11-26T17:15:53.123Z", ""};
    EvalEnv env{sensors.data(), windows.data(), 5 * kSecond, -10 * kSecond, &vars};
    const Val v = evaluate_program(*program, env);
    if (v.kind == Val::Kind::Missing) return "missing";
    if (v.kind == Val::Kind::String) return "\"" + std::string(v.string) + "\"";
    return render_text(v);
}

// "OFFSET: MESSAGE" of the first problem, or "ok".
std::string problem(const std::string& text, bool template_names = false) {
    Symbols symbols(&kCatalogue);
    std::string first;
    const auto program =
        compile_text(text, symbols, template_names, [&](std::size_t off, const std::string& m) {
            if (first.empty()) first = std::to_string(off) + ": " + m;
        });
    if (program) return "ok";
    return first;
}

std::string canon(const std::string& text) {
    SyntaxError err;
    const auto tree = parse_expression(text, err);
    if (!tree) return "error at " + std::to_string(err.offset) + ": " + err.message;
    return canonical(*tree);
}

}  // namespace

TEST_CASE("precedence and associativity follow the table of SPEC 5.1", "[rules][expr]") {
    const std::vector<std::pair<std::string, std::string>> rows{
        {"1 + 2 * 3", "(1 + (2 * 3))"},
        {"(1 + 2) * 3", "((1 + 2) * 3)"},
        {"10 - 4 - 3", "((10 - 4) - 3)"},
        {"100 / 10 / 5", "((100 / 10) / 5)"},
        {"a % b * c", "((a % b) * c)"},
        {"-a * b", "((-a) * b)"},
        {"- - a", "(-(-a))"},
        {"a < b == c > d", "((a < b) == (c > d))"},
        {"a == b < c", "(a == (b < c))"},
        {"a <= b != c >= d", "((a <= b) != (c >= d))"},
        {"a + 1 > b * 2", "((a + 1) > (b * 2))"},
        {"a and b or c and d", "((a and b) or (c and d))"},
        {"a or b and c", "(a or (b and c))"},
        {"a && b || !c", "((a and b) or (not c))"},
        {"not a == b", "((not a) == b)"},
        {"!a and b", "((not a) and b)"},
        {"not not a", "(not (not a))"},
        {"a == b and c != d", "((a == b) and (c != d))"},
        {"x.y.z > 1", "(x.y.z > 1)"},
        {"avg(greenhouse.temp, 5m) > 30", "(avg(greenhouse.temp, 5m) > 30)"},
        {"avg(t, 300s)", "avg(t, 5m)"},
        {"min(a, b + 1)", "min(a, (b + 1))"},
        {"round(a)", "round(a)"},
        {"f()", "f()"},
        {"between(a, -1, 1)", "between(a, (-1), 1)"},
        {"1m30s + 250ms", "(1m30s + 250ms)"},
        {"\"a\\\"b\\n\" == s", "(\"a\\\"b\\n\" == s)"},
        {"  a\n>\t1 ", "(a > 1)"},
        {"1e3 + 0.5", "(1000 + 0.5)"},
        {"true or false", "(true or false)"},
    };
    for (const auto& [text, want] : rows) {
        INFO(text);
        CHECK(canon(text) == want);
    }
}

TEST_CASE("expressions evaluate as SPEC 5.1 says", "[rules][expr]") {
    const std::vector<std::pair<std::string, std::string>> rows{
        // arithmetic and precedence
        {"1 + 2 * 3", "7"},
        {"(1 + 2) * 3", "9"},
        {"10 - 4 - 3", "3"},
        {"100 / 10 / 5", "2"},
        {"7 % 4", "3"},
        {"-7 % 4", "-3"},
        {"7.5 % 2", "1.5"},
        {"2 * -3", "-6"},
        {"-temp", "-10"},
        {"temp * 2 + level", "22.5"},
        {"0.1 + 0.2", "0.30000000000000004"},
        {"1e3 == 1000", "true"},
        {"1.5e-3 * 1000", "1.5"},
        {"temp / 4", "2.5"},
        // durations are numbers of seconds
        {"5m", "300"},
        {"1m30s", "90"},
        {"250ms", "0.25"},
        {"1h == 3600", "true"},
        {"1d", "86400"},
        {"2h30m", "9000"},
        // comparison binds tighter than equality
        {"1 < 2 == true", "true"},
        {"true == 1 < 2", "true"},
        {"1 + 1 == 2", "true"},
        {"temp >= 10", "true"},
        {"temp <= 10", "true"},
        {"temp > 10", "false"},
        {"temp < 10", "false"},
        {"temp != 10", "false"},
        {"temp == 10.0", "true"},
        {"temp > 5 and temp < 20", "true"},
        // one sensor against a constant, either way round (the fast path)
        {"5 < temp", "true"},
        {"10 >= temp", "true"},
        {"11 > temp", "true"},
        {"10 <= temp", "true"},
        {"10 == temp", "true"},
        {"3 != temp", "true"},
        {"temp == 3", "false"},
        {"gone < 1", "missing"},
        {"1 > gone", "missing"},
        {"shut", "false"},
        // booleans
        {"door", "true"},
        {"not door", "false"},
        {"!door", "false"},
        {"!!door", "true"},
        {"not shut == true", "true"},
        {"door and shut or door", "true"},
        {"door or shut and shut", "true"},
        {"shut and door or shut", "false"},
        {"door && shut || door", "true"},
        {"door == true", "true"},
        {"door != shut", "true"},
        {"true and false", "false"},
        // strings
        {"mode == \"open\"", "true"},
        {"mode != \"open\"", "false"},
        {"mode == \"Open\"", "false"},
        {"\"a\\\"b\" == \"a\\\"b\"", "true"},
        {"\"\\u00e9\" == \"é\"", "true"},
        {"mode", "\"open\""},
        {"mode == \"open\" and temp > 5", "true"},
        // missing: a sensor without a reading
        {"gone", "missing"},
        {"gone > 5", "missing"},
        {"gone + 1", "missing"},
        {"-gone", "missing"},
        {"gone == gone", "missing"},
        {"gone != 1", "missing"},
        {"not (gone > 1)", "missing"},
        {"quiet", "missing"},
        {"not quiet", "missing"},
        // three-valued logic
        {"shut and gone > 1", "false"},
        {"gone > 1 and shut", "false"},
        {"door and gone > 1", "missing"},
        {"gone > 1 and door", "missing"},
        {"door or gone > 1", "true"},
        {"gone > 1 or door", "true"},
        {"shut or gone > 1", "missing"},
        {"gone > 1 or shut", "missing"},
        {"gone > 1 and gone > 2", "missing"},
        {"gone > 1 or gone > 2", "missing"},
        {"quiet and shut", "false"},
        {"quiet or door", "true"},
        // division by zero is missing, and so is overflow
        {"temp / 0", "missing"},
        {"temp % 0", "missing"},
        {"temp / zero", "missing"},
        {"temp / zero > 1", "missing"},
        {"shut and temp / zero > 1", "false"},
        {"temp / zero > 1 or door", "true"},
        {"zero / temp", "0"},
        {"1e308 * 10", "missing"},
        // scalar functions
        {"abs(-3)", "3"},
        {"abs(3.5)", "3.5"},
        {"abs(gone)", "missing"},
        {"round(2.675, 2)", "2.68"},
        {"round(1.005, 2)", "1.01"},
        {"round(0.125, 2)", "0.13"},
        {"round(-0.125, 2)", "-0.13"},
        {"round(2.5)", "3"},
        {"round(-2.5)", "-3"},
        {"round(2.4)", "2"},
        {"round(-2.4)", "-2"},
        {"round(0.5)", "1"},
        {"round(0.4)", "0"},
        {"round(9.99, 1)", "10"},
        {"round(1234.5, -2)", "1200"},
        {"round(1250, -2)", "1300"},
        {"round(49, -2)", "0"},
        {"round(50, -2)", "100"},
        {"round(23.4, 5)", "23.4"},
        {"round(greenhouse.temp, 0)", "23"},
        {"round(temp, gone)", "missing"},
        {"round(temp, level)", "missing"},
        {"min(3, 4)", "3"},
        {"max(3, 4)", "4"},
        {"min(-1, temp)", "-1"},
        {"max(temp, gone)", "missing"},
        {"between(5, 1, 10)", "true"},
        {"between(1, 1, 10)", "true"},
        {"between(10, 1, 10)", "true"},
        {"between(10.5, 1, 10)", "false"},
        {"between(0.99, 1, 10)", "false"},
        {"between(gone, 1, 10)", "missing"},
        {"between(temp, gone, 20)", "missing"},
        // age: seconds since the last reading (at 0; now 5 s), or since the
        // engine started (-10 s) before any
        {"age(temp)", "5"},
        {"age(gone)", "15"},
        {"age(mode) > 4", "true"},
        // window functions over an empty window
        {"count(temp, 5m)", "0"},
        {"sum(temp, 5m)", "0"},
        {"avg(temp, 5m)", "missing"},
        {"min(temp, 5m)", "missing"},
        {"max(temp, 5m)", "missing"},
        {"stddev(temp, 5m)", "missing"},
        {"delta(temp, 5m)", "missing"},
        {"rate(temp, 5m)", "missing"},
        {"count(mode, 1m) == 0", "true"},
        // template names
        {"rule", "\"too_hot\""},
        {"gateway", "\"greenhouse-pi\""},
        {"severity", "\"warning\""},
        {"ts", "\"2026-11-26T17:15:53.123Z\""},
        {"rule == \"too_hot\"", "true"},
    };
    for (const auto& [text, want] : rows) {
        INFO(text);
        CHECK(eval(text) == want);
    }
}

TEST_CASE("syntax errors name the place and the problem", "[rules][expr]") {
    const std::vector<std::pair<std::string, std::string>> rows{
        {"1 +", "3: expected an expression, found the end of the expression"},
        {"", "0: expected an expression, found the end of the expression"},
        {"(1 + 2", "6: expected ')' to close the '(', found the end of the expression"},
        {"1 + 2)", "5: unmatched ')'"},
        {"temp = 1", "5: unexpected '=' (use '==' to compare)"},
        {"door & shut", "5: unexpected '&' (use '&&' or 'and')"},
        {"door | shut", "5: unexpected '|' (use '||' or 'or')"},
        {"'open' == mode", "0: strings use double quotes, e.g. \"open\""},
        {"mode == \"open", "8: unterminated string (missing closing '\"')"},
        {"mode == \"a\\qb\"",
         "10: unknown escape '\\q' in string (use \\\", \\\\, \\n, \\t, \\r or "
         "\\uXXXX)"},
        {"temp > 5x",
         "7: invalid duration '5x': a number needs a unit (ms, s, m, h, d), e.g. 250ms, 10s, "
         "1m30s"},
        {"avg(temp, 1.5m)",
         "10: invalid duration '1.5m': durations are whole numbers of units (e.g. 90s, 1m30s)"},
        {"avg(temp, 30s5m)",
         "10: invalid duration '30s5m': units must go from largest to smallest"},
        {"temp > 1.", "8: expected digits after the '.' of a number"},
        {"temp > .5", "7: a number needs a digit before '.' (e.g. 0.5)"},
        {"temp 5", "5: expected an operator, found '5'"},
        {"temp > > 5", "7: expected an expression, found an operator"},
        {"max(temp,)", "9: expected an expression, found ')'"},
        {"max(temp 1)", "9: expected ',' or ')' in the arguments of 'max', found '1'"},
        {"greenhouse. > 1",
         "11: expected a name after '.' (sensor names are like greenhouse.temp)"},
        {"temp @ 1", "5: unexpected character '@'"},
        {"temp > 1 and", "12: expected an expression, found the end of the expression"},
        {std::string(200, '(') + "1" + std::string(200, ')'),
         "64: expression is nested too deeply (more than 128 levels)"},
    };
    for (const auto& [text, want] : rows) {
        INFO(text);
        CHECK(problem(text) == want);
    }
}

TEST_CASE("long operator chains and unary runs are refused, not overflowed", "[rules][expr]") {
    std::string chain = "1";
    for (int i = 0; i < 500; ++i)
        chain += " + 1";
    CHECK(problem(chain).find("nested too deeply") != std::string::npos);
    CHECK(problem(std::string(1000, '-') + "1").find("nested too deeply") != std::string::npos);
    CHECK(problem(std::string(1000, '!') + "door").find("nested too deeply") != std::string::npos);
    std::string ok = "1";
    for (int i = 0; i < 100; ++i)
        ok += " + 1";
    CHECK(eval(ok) == "101");
}

TEST_CASE("the checker reports names, arity, windows and types", "[rules][expr]") {
    const std::vector<std::pair<std::string, std::string>> rows{
        // names
        {"tmep > 1", "0: unknown sensor 'tmep' (did you mean 'temp'?)"},
        {"greenhouse.tmp > 1",
         "0: unknown sensor 'greenhouse.tmp' (did you mean 'greenhouse.temp'?)"},
        {"pressure > 1", "0: unknown sensor 'pressure'"},
        {"ts > 1", "0: 'ts' is only available in templates (publish, exec, log)"},
        {"temp > 1 and rule == \"x\"",
         "13: 'rule' is only available in templates (publish, exec, log)"},
        {"avg > 1", "0: 'avg' is a function, not a sensor: call it, e.g. avg(sensor, window)"},
        {"True", "0: unknown name 'True' (did you mean 'true'?)"},
        {"Temp > 1",
         "0: 'Temp' is not a valid sensor name (lower-case segments [a-z][a-z0-9_]* joined by '.', "
         "e.g. greenhouse.temp)"},
        // functions and arity
        {"avgg(temp, 5m) > 1", "0: unknown function 'avgg' (did you mean 'avg'?)"},
        {"AVG(temp, 5m) > 1", "0: unknown function 'AVG' (did you mean 'avg'?)"},
        {"mean(temp, 5m) > 1", "0: unknown function 'mean'"},
        {"avg(temp) > 1", "0: avg takes 2 arguments, got 1: avg(sensor, window)"},
        {"age(temp, 5m) > 1", "0: age takes 1 argument, got 2: age(sensor)"},
        {"between(temp, 1)", "0: between takes 3 arguments, got 2: between(x, lo, hi)"},
        {"round(temp, 1, 2) > 1", "0: round takes 1 or 2 arguments, got 3: round(x, n)"},
        {"abs() > 1", "0: abs takes 1 argument, got 0: abs(x)"},
        // window literals
        {"avg(temp, 300) > 1",
         "10: the window of avg must be a duration literal such as 5m or 30s (a bare number is not "
         "a duration)"},
        {"avg(temp, level) > 1",
         "10: the window of avg must be a duration literal such as 5m or 30s"},
        {"avg(temp, 0s) > 1", "10: the window of avg must be longer than 0"},
        {"avg(temp + 1, 5m) > 1", "9: the first argument of avg must be a sensor name"},
        {"min(temp + 1, 5m) > 1", "9: the first argument of min must be a sensor name"},
        {"age(1) > 1", "4: the first argument of age must be a sensor name"},
        // types
        {"avg(mode, 5m) > 1", "4: avg needs a number sensor, but 'mode' is a string"},
        {"rate(door, 5m) > 1", "5: rate needs a number sensor, but 'door' is a boolean"},
        {"mode + 1", "5: '+' needs numbers, but the left operand is a string"},
        {"temp + door", "5: '+' needs numbers, but the right operand is a boolean"},
        {"door * 2", "5: '*' needs numbers, but the left operand is a boolean"},
        {"temp == mode",
         "5: cannot compare a number with a string ('==' needs two values of the same "
         "type)"},
        {"door != 1",
         "5: cannot compare a boolean with a number ('!=' needs two values of the same "
         "type)"},
        {"mode < \"b\"", "5: '<' compares numbers, but the left operand is a string"},
        {"temp > door", "5: '>' compares numbers, but the right operand is a boolean"},
        {"temp and door", "5: 'and' needs booleans, but the left operand is a number"},
        {"door || 1", "5: 'or' needs booleans, but the right operand is a number"},
        {"not temp > 5",
         "0: 'not' needs a boolean, got a number ('not' binds tighter than comparisons: write not "
         "(a "
         "> b))"},
        {"-door", "0: '-' needs a number, got a boolean"},
        {"abs(mode)", "4: abs needs numbers, got a string"},
        {"between(temp, \"a\", 3)", "14: between needs numbers, got a string"},
        {"round(temp, 1.5) > 1", "12: round: the number of decimals must be a whole number"},
        {"round(temp, 1m) > 1", "12: round: the number of decimals must be a whole number"},
    };
    for (const auto& [text, want] : rows) {
        INFO(text);
        CHECK(problem(text) == want);
    }
}

TEST_CASE("well-typed expressions compile, including the window and scalar forms",
          "[rules][expr]") {
    for (const char* text :
         {"count(mode, 5m) > 1", "min(temp, 5m) < 0", "min(temp, 5) < 0", "max(temp, level) > 1",
          "round(temp) == 10", "age(door) > 30", "mode == \"open\" or door",
          "rate(greenhouse.temp, 10m) > 0.01", "between(temp, -5, 5) and not door"}) {
        INFO(text);
        CHECK(problem(text) == "ok");
    }
    // Template names are names in templates only.
    CHECK(problem("rule == \"x\" and ts != \"\"", true) == "ok");
}

TEST_CASE("without a catalogue any well-formed sensor name is accepted", "[rules][expr]") {
    Symbols symbols;
    std::vector<std::string> errors;
    auto sink = [&](std::size_t, const std::string& m) { errors.push_back(m); };
    const auto p = compile_text("avg(x.y, 5m) > 1 and z == \"on\" and avg(x.y, 300s) < 9", symbols,
                                false, sink);
    REQUIRE(p);
    CHECK(errors.empty());
    CHECK(symbols.sensors() == std::vector<std::string>{"x.y", "z"});
    // One window per (sensor, length), however it is spelled.
    CHECK(symbols.windows().size() == 1);
    CHECK(p->sensors.size() == 2);
    CHECK(p->uses_time);
}

TEST_CASE("round is half away from zero on the decimal form", "[rules][expr]") {
    CHECK(round_half_away(2.675, 2) == 2.68);
    CHECK(round_half_away(-2.675, 2) == -2.68);
    CHECK(round_half_away(0.045, 2) == 0.05);
    CHECK(round_half_away(1e-320, 2) == 0);
    CHECK(round_half_away(123456789.123, 1) == 123456789.1);
    CHECK(round_half_away(0.0005, 3) == 0.001);
    CHECK(round_half_away(999.5, 0) == 1000);
    CHECK(round_half_away(7, 3) == 7);
}

TEST_CASE("the canonical form is UTF-8 even for literals that are not", "[rules][expr]") {
    CHECK(canon("s == \"caf\xC3\xA9\"") == "(s == \"caf\xC3\xA9\")");
    CHECK(canon("s == \"a\x8A\"") == "(s == \"a\\x8a\")");
    CHECK(canon("s == \"a\\\\x8a\"") == "(s == \"a\\\\x8a\")");    // a backslash, spelled out
    CHECK(canon("s == \"\xE2\x82\"") == "(s == \"\\xe2\\x82\")");  // truncated sequence
}
