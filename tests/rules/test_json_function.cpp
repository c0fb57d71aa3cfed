// json(x) of SPEC §5.1: any value as a JSON literal, so that a payload built
// from sensor text stays valid JSON whatever the sensor sends; checked as a
// function of the language (templates only, arity 1, reserved name) and
// through the engine's rendering of a publish payload.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/utf8.h"
#include "rules/engine.h"
#include "rules/program.h"
#include "rules/rule_set.h"

using namespace tg;
using namespace tg::rules;

namespace {

const SensorCatalogue kCatalogue{
    {"temp", ValueType::Number},
    {"s", ValueType::String},
    {"door", ValueType::Boolean},
    {"gone", ValueType::String},
};

// Renders `{{ expr }}` with `s` set to `text` (temp = 23.4, door = true,
// `gone` never read); "compile error: …" when it does not compile.
std::string render(const std::string& expr, const std::string& text = "x") {
    Symbols symbols(&kCatalogue);
    std::string error;
    const auto program =
        compile_text(expr, symbols, true, [&](std::size_t off, const std::string& m) {
            if (error.empty()) error = std::to_string(off) + ": " + m;
        });
    if (!program) return "compile error: " + error;
    std::vector<SensorData> sensors(symbols.sensors().size());
    for (std::size_t i = 0; i < sensors.size(); ++i) {
        const std::string& name = symbols.sensors()[i];
        if (name == "gone") continue;
        sensors[i].has_value = true;
        if (name == "temp") sensors[i].value = 23.4;
        if (name == "door") sensors[i].value = true;
        if (name == "s") sensors[i].value = text;
    }
    const TemplateVars vars{"too_hot", "greenhouse-pi", "warning", "2026-11-26T17:15:53.123Z", ""};
    std::forward_list<std::string> scratch;
    EvalEnv env{sensors.data(), nullptr, 0, 0, &vars, &scratch};
    return render_text(evaluate_program(*program, env));
}

std::string literal(const Val& v) {
    std::string out;
    append_json_literal(out, v);
    return out;
}

}  // namespace

TEST_CASE("json() renders numbers, booleans, missing and strings as JSON literals",
          "[rules][json]") {
    CHECK(render("json(temp)") == "23.4");
    CHECK(render("json(temp * 10)") == "234");
    CHECK(render("json(0.1 + 0.2)") == "0.30000000000000004");
    CHECK(render("json(-35)") == "-35");
    CHECK(render("json(door)") == "true");
    CHECK(render("json(not door)") == "false");
    CHECK(render("json(gone)") == "null");
    CHECK(render("json(temp / 0)") == "null");
    CHECK(render("json(s)", "plain") == "\"plain\"");
    CHECK(render("json(\"lit\")") == "\"lit\"");
    CHECK(render("json(rule)") == "\"too_hot\"");
    CHECK(render("json(ts)") == "\"2026-11-26T17:15:53.123Z\"");
    // Its result is a string like any other: it compares and nests.
    CHECK(render("json(s) == \"\\\"a\\\"\"", "a") == "true");
    CHECK(render("json(json(s))", "a\"b") == R"("\"a\\\"b\"")");
}

TEST_CASE("json() escapes quotes, backslashes and control characters", "[rules][json]") {
    CHECK(render("json(s)", "say \"hi\"") == R"("say \"hi\"")");
    CHECK(render("json(s)", "C:\\temp") == R"("C:\\temp")");
    // The short escapes where JSON has them, as in every event envelope.
    CHECK(render("json(s)", "a\nb\tc\rd") == R"("a\nb\tc\rd")");
    CHECK(render("json(s)", std::string("nul\0!", 5)) == R"("nul\u0000!")");
    CHECK(render("json(s)", "\x1f\x7f") == "\"\\u001f\x7f\"");
    CHECK(render("json(s)", "°C ✓ \xF0\x9F\x8C\xA1") == "\"°C ✓ \xF0\x9F\x8C\xA1\"");
    CHECK(render("json(s)", "") == "\"\"");
    CHECK(render("json(s)", "}}{{") == "\"}}{{\"");
}

TEST_CASE("json() replaces ill-formed UTF-8 by U+FFFD, one per maximal subpart", "[rules][json]") {
    const std::string fffd = "\xEF\xBF\xBD";
    CHECK(literal(Val::str("a\x80"
                           "b")) == "\"a" + fffd + "b\"");
    CHECK(literal(Val::str("\xC0\xAF")) == "\"" + fffd + fffd + "\"");             // overlong
    CHECK(literal(Val::str("\xED\xA0\x80")) == "\"" + fffd + fffd + fffd + "\"");  // surrogate
    CHECK(literal(Val::str("\xF4\x90\x80\x80")) == "\"" + fffd + fffd + fffd + fffd + "\"");
    CHECK(literal(Val::str("x\xE2\x82")) == "\"x" + fffd + "\"");  // truncated: one subpart
    CHECK(literal(Val::str("\xE2\x82\x41")) == "\"" + fffd + "A\"");
    CHECK(literal(Val::str("\xFF\"")) == "\"" + fffd + "\\\"\"");
    CHECK(literal(Val::missing()) == "null");
}

TEST_CASE("json() of any byte string parses back as a JSON string", "[rules][json]") {
    // Every single byte and every pair of a few interesting bytes.
    std::vector<std::string> inputs;
    for (int b = 0; b < 256; ++b)
        inputs.emplace_back(1, static_cast<char>(b));
    const unsigned char edge[] = {0x00, 0x1F, 0x22, 0x5C, 0x7F, 0x80, 0xBF, 0xC0, 0xC2,
                                  0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
    for (unsigned char a : edge) {
        for (unsigned char b : edge) {
            for (unsigned char c : edge)
                inputs.push_back(std::string{static_cast<char>(a), static_cast<char>(b),
                                             static_cast<char>(c), static_cast<char>(0x80)});
        }
    }
    for (const std::string& in : inputs) {
        const std::string out = literal(Val::str(in));
        INFO(out);
        const auto parsed = nlohmann::json::parse(out, nullptr, false);
        REQUIRE_FALSE(parsed.is_discarded());
        REQUIRE(parsed.is_string());
        if (first_invalid_utf8(in) == std::string_view::npos)
            CHECK(parsed.get<std::string>() == in);
    }
}

TEST_CASE("json is a function of templates: arity, reserved name, not in conditions",
          "[rules][json]") {
    CHECK(render("json()") == "compile error: 0: json takes 1 argument, got 0: json(x)");
    CHECK(render("json(s, temp)") == "compile error: 0: json takes 1 argument, got 2: json(x)");
    CHECK(render("json") ==
          "compile error: 0: 'json' is a function, not a sensor: call it, e.g. json(x)");
    CHECK(render("jsn(s)") == "compile error: 0: unknown function 'jsn' (did you mean 'json'?)");
    CHECK(render("json(nope)") == "compile error: 5: unknown sensor 'nope'");
    CHECK(is_reserved_name("json"));
    Symbols symbols(&kCatalogue);
    std::string error;
    const auto p = compile_text(
        "json(s) == \"\\\"x\\\"\"", symbols, false,
        [&](std::size_t off, const std::string& m) { error = std::to_string(off) + ": " + m; });
    CHECK_FALSE(p);
    CHECK(error == "0: 'json' is only available in templates (publish, exec, log)");
}

TEST_CASE("a payload built with json() stays valid JSON through the engine", "[rules][json]") {
    const std::string text = R"(rules:
  - name: relay
    when: s != "-"
    actions:
      - publish: { topic: 'alerts/{{rule}}', payload: '{"v": {{json(s)}}, "t": {{json(temp)}}, "g": {{json(gone)}}, "raw": "{{s}}"}' }
)";
    const CompileResult r = compile_rules({{"r.yaml", text}}, CheckOptions{kCatalogue, {}});
    REQUIRE(r.rules);
    EngineOptions options;
    options.gateway = "gw";
    options.start = MonoTime{};
    Engine engine(r.rules, options);
    std::vector<Transition> out;
    Reading t;
    t.sensor = "temp";
    t.value = 21.5;
    t.mono = MonoTime{} + std::chrono::seconds(1);
    engine.on_reading(t, out);
    Reading s;
    s.sensor = "s";
    s.value = std::string("a \"quoted\"\n\\ \xC3 value");
    s.mono = MonoTime{} + std::chrono::seconds(2);
    engine.on_reading(s, out);
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].actions.size() == 1);
    const auto& pub = std::get<PublishAction>(out[0].actions[0]);
    CHECK(pub.topic == "alerts/relay");
    // The part written with {{s}} is the raw text, so only a payload that
    // drops it parses; the json() parts are exact.
    const std::string payload = pub.payload;
    const std::size_t raw = payload.find(", \"raw\"");
    REQUIRE(raw != std::string::npos);
    const auto parsed = nlohmann::json::parse(payload.substr(0, raw) + "}", nullptr, false);
    REQUIRE_FALSE(parsed.is_discarded());
    CHECK(parsed["v"] == "a \"quoted\"\n\\ \xEF\xBF\xBD value");
    CHECK(parsed["t"] == 21.5);
    CHECK(parsed["g"].is_null());
}
