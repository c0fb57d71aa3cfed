// Rule files through the full check path: every problem of every file as
// FILE:LINE:COL: error: MESSAGE with exact places, including places inside
// expressions and templates, and the explanation of the YAML quoting symptom.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "rules/loader.h"
#include "rules/rule_set.h"

using namespace tg;
using namespace tg::rules;

namespace {

CheckOptions demo_options() {
    CheckOptions o;
    o.sensors = SensorCatalogue{{"greenhouse.temp", ValueType::Number},
                                {"greenhouse.humidity", ValueType::Number},
                                {"tank.level", ValueType::Number},
                                {"door.open", ValueType::Boolean},
                                {"meter.mode", ValueType::String}};
    o.outputs = std::vector<std::string>{"fan", "pump"};
    return o;
}

std::vector<std::string> check(const std::vector<RuleSource>& files,
                               const CheckOptions& options = demo_options()) {
    const CompileResult r = compile_rules(files, options);
    std::vector<std::string> out;
    for (const SourceError& e : r.diagnostics.items())
        out.push_back(e.format());
    if (out.empty()) CHECK(r.rules != nullptr);
    if (!out.empty()) CHECK(r.rules == nullptr);
    return out;
}

std::vector<std::string> check(const std::string& text,
                               const CheckOptions& options = demo_options()) {
    return check(std::vector<RuleSource>{{"r.yaml", text}}, options);
}

using Lines = std::vector<std::string>;

}  // namespace

TEST_CASE("a valid rule file of SPEC 5 checks clean and compiles", "[rules][check]") {
    const std::string text = R"(rules:
  - name: greenhouse_too_hot
    description: Greenhouse above 30 °C for two minutes
    when: greenhouse.temp > 30
    for: 2m
    clear_when: greenhouse.temp < 28
    cooldown: 10m
    severity: warning
    actions:
      - publish: { topic: alerts/greenhouse, payload: '{"temp": {{greenhouse.temp}}}', retain: false }
      - output: { name: fan, value: on }
      - output: { name: pump, value: ON, for: 30s }
      - exec: [/usr/local/bin/notify, "hot: {{greenhouse.temp}}"]
      - exec: { argv: [/bin/true], timeout: 2s }
      - log: "greenhouse hot: {{ round(greenhouse.temp, 1) }} °C"
    on_clear:
      - output: { name: fan, value: off }
)";
    CHECK(check(text).empty());
    const CompileResult r = compile_rules({{"r.yaml", text}}, demo_options());
    REQUIRE(r.rules);
    const Rule& rule = r.rules->rules().at(0);
    CHECK(rule.name == "greenhouse_too_hot");
    CHECK(rule.for_duration == std::chrono::minutes(2));
    CHECK(rule.cooldown == std::chrono::minutes(10));
    CHECK(rule.severity == RuleSeverity::Warning);
    CHECK(rule.actions.size() == 6);
    CHECK(rule.on_clear.size() == 1);
    CHECK(rule.uses_time);
    const auto& pump = std::get<OutputSpec>(rule.actions[2]);
    CHECK(pump.name == "pump");
    CHECK(pump.on);
    CHECK(pump.duration == std::chrono::seconds(30));
    CHECK(std::get<ExecSpec>(rule.actions[4]).timeout == std::chrono::seconds(2));
    CHECK(std::get<ExecSpec>(rule.actions[3]).timeout == kDefaultExecTimeout);
    CHECK(std::get<PublishSpec>(rule.actions[0]).qos == 1);
    CHECK_FALSE(std::get<OutputSpec>(rule.on_clear[0]).on);
}

TEST_CASE("errors inside expressions point at their column", "[rules][check]") {
    // Plain scalar: the value's column plus the offset.
    CHECK(check("rules:\n  - name: hot\n    when: greenhouse.tmp > 30\n") ==
          Lines{"r.yaml:3:11: error: when: unknown sensor 'greenhouse.tmp' (did you mean "
                "'greenhouse.temp'?)"});
    // Double-quoted: one more for the quote.
    CHECK(check("rules:\n  - name: door\n    when: \"door.open == 1\"\n") ==
          Lines{"r.yaml:3:22: error: when: cannot compare a boolean with a number ('==' needs two "
                "values of the same type)"});
    // Single-quoted with an escaped quote before the error.
    CHECK(check("rules:\n  - name: m\n    when: 'meter.mode == \"it''s\" and nope'\n") ==
          Lines{"r.yaml:3:38: error: when: unknown sensor 'nope'"});
    // A plain scalar folded over two lines.
    CHECK(check("rules:\n  - name: humid\n    when: greenhouse.temp > 30 and\n"
                "      greenhouse.humidity > bogus\n") ==
          Lines{"r.yaml:4:29: error: when: unknown sensor 'bogus'"});
    // A literal block scalar.
    CHECK(
        check("rules:\n  - name: tank\n    when: |\n      door.open and\n"
              "      tank.levl < 10\n") ==
        Lines{"r.yaml:5:7: error: when: unknown sensor 'tank.levl' (did you mean 'tank.level'?)"});
    // Syntax errors likewise.
    CHECK(check("rules:\n  - name: x\n    when: greenhouse.temp > > 1\n") ==
          Lines{"r.yaml:3:29: error: when: expected an expression, found an operator"});
    // Inside a template, offset by the text before {{.
    CHECK(check("rules:\n  - name: x\n    when: door.open\n    actions:\n"
                "      - log: \"t={{ greenhouse.tmp }}\"\n") ==
          Lines{"r.yaml:5:20: error: log: unknown sensor 'greenhouse.tmp' (did you mean "
                "'greenhouse.temp'?)"});
}

TEST_CASE("every problem of every file is reported in one run", "[rules][check]") {
    const std::string a = R"(rules:
  - name: hot
    when: avg(greenhouse.temp) > 30
    for: 5 minutes
    severity: critcal
    clear_whn: greenhouse.temp < 28
    when: greenhouse.temp > 31
  - name: Bad-Name
    when: greenhouse.temp
  - name: wet
    when: rate(greenhouse.humidity, 300) > 1 and avgg(tank.level, 5m) > 3
    actions:
      - output: { name: fna, value: maybe }
      - exec: "/usr/bin/notify hot"
      - publish: { topic: "alerts/#", payload: x, qos: 2 }
      - log: x
        output: { name: fan, value: on }
)";
    const std::string b = R"(rules:
  - name: hot
    when: door.open
    cooldown: 1x
  - description: no name or when
)";
    const Lines got = check({{"b.yaml", b}, {"a.yaml", a}});
    const Lines want{
        "a.yaml:6:5: error: unknown key 'clear_whn' in a rule (did you mean 'clear_when'?)",
        "a.yaml:7:5: error: duplicate key 'when' (first at line 3)",
        "a.yaml:3:11: error: when: avg takes 2 arguments, got 1: avg(sensor, window)",
        "a.yaml:4:10: error: for: invalid duration '5 minutes': a number needs a unit (ms, s, m, "
        "h, "
        "d), e.g. 250ms, 10s, 1m30s",
        "a.yaml:5:15: error: severity: unknown severity 'critcal' (did you mean 'critical'?)",
        "a.yaml:8:11: error: rule name 'Bad-Name' may only contain lower-case letters, digits and "
        "'_'",
        "a.yaml:9:11: error: when: a condition must be true or false, but this is a number",
        "a.yaml:11:37: error: when: the window of rate must be a duration literal such as 5m or "
        "30s "
        "(a bare number is not a duration)",
        "a.yaml:11:50: error: when: unknown function 'avgg' (did you mean 'avg'?)",
        "a.yaml:13:25: error: unknown output 'fna' (did you mean 'fan'?)",
        "a.yaml:13:37: error: value: expected on, off, true or false, got 'maybe'",
        "a.yaml:14:15: error: actions: exec: expected a list of arguments, e.g. exec: "
        "[/usr/local/bin/notify, \"hot\"] (no shell runs, so one command line in a string does "
        "not work)",
        "a.yaml:15:35: error: topic: a publish topic must not contain the MQTT wildcard '#' "
        "(wildcards only work in subscriptions; name one topic)",
        "a.yaml:15:56: error: qos: expected 0 or 1, got '2'",
        "a.yaml:17:9: error: actions: an action has exactly one of publish, output, exec, log; "
        "start a new list item for 'output' (- output: …)",
        "b.yaml:2:11: error: duplicate rule name 'hot' (first defined at a.yaml:2:11)",
        "b.yaml:4:15: error: cooldown: invalid duration '1x': a number needs a unit (ms, s, m, h, "
        "d), e.g. 250ms, 10s, 1m30s",
        "b.yaml:5:5: error: rule without a 'name'",
        "b.yaml:5:5: error: rule has no 'when' condition",
    };
    CHECK(got == want);
}

TEST_CASE("check explains the YAML quoting symptom of SPEC 5", "[rules][check]") {
    auto one = [](const std::string& text) {
        const Lines l = check(text);
        REQUIRE(l.size() == 1);
        return l.front();
    };
    CHECK(one("rules:\n  - name: d\n    when: !door.open\n") ==
          "r.yaml:3:11: error: when: YAML read this as a tag because it starts with '!'; quote it: "
          "when: \"!door.open\"");
    CHECK(one("rules:\n  - name: d\n    when: ! door.open\n") ==
          "r.yaml:3:11: error: when: YAML read this as a tag because it starts with '!'; quote it: "
          "when: \"! door.open\"");
    CHECK(one("rules:\n  - name: d\n    when: door.open\n    actions:\n      - log: {{rule}}\n") ==
          "r.yaml:5:14: error: log: expected text, got a map; YAML read this as a map because it "
          "starts with '{'; quote it: log: \"{{rule}}\"");
    CHECK(
        one("rules:\n  - name: d\n    when: [door.open]\n") ==
        "r.yaml:3:11: error: when: expected text, got a list; YAML read this as a list because it "
        "starts with '['; quote it: when: \"[door.open]\"");
    CHECK(
        one("rules:\n  - name: d\n    when: door.open\n    actions:\n"
            "      - log: hot: {{greenhouse.temp}}\n") ==
        "r.yaml:5:17: error: illegal map value; YAML read this as a map because it contains ': '; "
        "quote it: log: \"hot: {{greenhouse.temp}}\"");
    CHECK(one("rules:\n  - name: d\n    when: *door\n") ==
          "r.yaml:3:11: error: the referenced anchor is not defined; YAML read this as an alias "
          "because it starts with '*'; quote it: when: \"*door\"");
    CHECK(one("rules:\n  - name: d\n    when: @door\n") ==
          "r.yaml:3:11: error: unknown token; YAML does not allow plain text to start with '@'; "
          "quote it: when: \"@door\"");
    CHECK(one("rules:\n  - name: d\n    when: &door.open\n") ==
          "r.yaml:3:5: error: when: expected text, got nothing; YAML read this as an anchor "
          "because it starts with '&'; quote it: when: \"&door.open\"");
    CHECK(one("rules:\n  - name: d\n    when: door.open\n    actions:\n"
              "      - publish: { topic: a/b, payload: {\"t\": 1} }\n") ==
          "r.yaml:5:41: error: payload: expected text, got a map; YAML read this as a map because "
          "it starts with '{'; quote it: payload: '{\"t\": 1}'");
    // Quoted, all of these are fine.
    CHECK(check("rules:\n  - name: d\n    when: \"!door.open\"\n    actions:\n"
                "      - log: \"{{rule}}\"\n      - log: 'hot: {{greenhouse.temp}}'\n"
                "      - publish: { topic: a/b, payload: '{\"t\": {{greenhouse.temp}}}' }\n")
              .empty());
}

TEST_CASE("templates are checked: unclosed, empty, names, topic wildcards", "[rules][check]") {
    const std::string text = R"(rules:
  - name: t
    when: door.open
    actions:
      - log: "a {{ greenhouse.temp"
      - log: "b {{ }}"
      - log: "{{ rule }} {{ gateway }} {{ severity }} {{ ts }} {{ \"}}\" }}"
      - publish: { topic: "site/{{gateway}}/+", payload: "" }
      - publish: { payload: x }
      - output: { value: on }
      - exec: []
)";
    CHECK(check(text) ==
          Lines{"r.yaml:5:17: error: log: unclosed '{{' (missing '}}')",
                "r.yaml:6:17: error: log: empty '{{ }}'",
                "r.yaml:8:45: error: topic: a publish topic must not contain the MQTT wildcard '+' "
                "(wildcards only work in subscriptions; name one topic)",
                "r.yaml:9:9: error: publish: missing 'topic'",
                "r.yaml:10:9: error: output: missing 'name'",
                "r.yaml:11:15: error: exec: the argument list is empty (the first is the program "
                "to run)"});
}

TEST_CASE("without a config, sensors and outputs are not verified", "[rules][check]") {
    const std::string text = R"(rules:
  - name: anything
    when: server_room.temp > 35 and not maintenance.on
    actions:
      - output: { name: siren, value: on }
)";
    CHECK(check(text, CheckOptions{}).empty());
    CHECK(check(text) == Lines{"r.yaml:3:11: error: when: unknown sensor 'server_room.temp'",
                               "r.yaml:3:41: error: when: unknown sensor 'maintenance.on'",
                               "r.yaml:5:25: error: unknown output 'siren'"});
    // Names that can never be sensors are still errors.
    CHECK(check("rules:\n  - name: x\n    when: Server.Temp > 1\n", CheckOptions{}) ==
          Lines{"r.yaml:3:11: error: when: 'Server.Temp' is not a valid sensor name (lower-case "
                "segments [a-z][a-z0-9_]* joined by '.', e.g. greenhouse.temp)"});
}

TEST_CASE("file structure errors", "[rules][check]") {
    CHECK(check("").empty());
    CHECK(check("# nothing yet\n").empty());
    CHECK(check("rules: []\n").empty());
    CHECK(check("rules:\n").empty());
    CHECK(check("- name: x\n  when: door.open\n") ==
          Lines{"r.yaml:1:1: error: expected a map with a 'rules:' list, got a list"});
    CHECK(check("rule:\n  - name: x\n") ==
          Lines{"r.yaml:1:1: error: unknown key 'rule' (did you mean 'rules'?)"});
    CHECK(check("rules:\n  name: x\n") ==
          Lines{"r.yaml:2:3: error: rules: expected a list of rules (- name: …), got a map"});
    CHECK(check("rules:\n  - x\n") ==
          Lines{"r.yaml:2:5: error: a rule is a map (name, when, …), got 'x'"});
    CHECK(check("rules: []\n---\nrules: []\n") ==
          Lines{"r.yaml:2:1: error: a rule file holds one YAML document; found a second one here"});
    // yaml-cpp 0.7 would loop forever on a ',' after the document.
    CHECK(check("{rules: [{name: x, when: door.open}]}\n,\n") ==
          Lines{"r.yaml:2:1: error: unexpected ',' outside a flow collection ([…] or {…})"});
    CHECK(check("# rules\n  - name: x\n ,  when: door.open\n") ==
          Lines{"r.yaml:3:2: error: unexpected ',' outside a flow collection ([…] or {…})"});
    CHECK(check(",") ==
          Lines{"r.yaml:1:1: error: unexpected ',' outside a flow collection ([…] or {…})"});
    CHECK(check("rules:\n  - name: x\n    when: [1,\n") ==
          Lines{"r.yaml:4:1: error: end of sequence flow not found; YAML read this as a list "
                "because it starts with '['; quote it: when: \"[1,\""});
    CHECK(check("rules:\n  - name: x\n    when: door.open\n    actions: { log: x }\n") ==
          Lines{"r.yaml:4:14: error: actions: expected a list of actions (- publish: …, - output: "
                "…, - exec: […], - log: …), got a map"});
    // A UTF-8 byte-order mark does not shift columns.
    CHECK(check("\xEF\xBB\xBFrules:\n  - name: x\n    when: nope\n") ==
          Lines{"r.yaml:3:11: error: when: unknown sensor 'nope'"});
    // Control characters are refused (yaml-cpp 0.7 never returns on a NUL).
    CHECK(
        check(std::string("rules:\n  - name: x\n    when: a\0b\n", 33)) ==
        Lines{"r.yaml:3:12: error: control character (byte 0x00) in a rule file; it must be UTF-8 "
              "text"});
    // Absurd nesting is refused before the YAML parser recurses into it.
    CHECK(
        check("rules: " + std::string(5000, '[')) ==
        Lines{"r.yaml:1:1: error: the file is nested too deeply (more than 64 levels) to be a rule "
              "file"});
}

TEST_CASE("rules are ordered by file path in byte order, then position", "[rules][check]") {
    const CompileResult r = compile_rules(
        {{"rules.d/b.yaml", "rules:\n  - name: b1\n    when: door.open\n"},
         {"rules.d/B.yaml", "rules:\n  - name: cap\n    when: door.open\n"},
         {"rules.d/a.yaml",
          "rules:\n  - name: a2\n    when: door.open\n  - name: a1\n    when: door.open\n"}},
        demo_options());
    REQUIRE(r.rules);
    std::vector<std::string> names;
    for (const Rule& rule : r.rules->rules())
        names.push_back(rule.name);
    CHECK(names == std::vector<std::string>{"cap", "a2", "a1", "b1"});
}

TEST_CASE("rule files are read from files and folders", "[rules][check]") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / "tidegate_rules_loader_test";
    fs::remove_all(dir);
    fs::create_directories(dir / "rules.d" / "nested");
    auto write = [](const fs::path& p, const std::string& text) { std::ofstream(p) << text; };
    write(dir / "rules.d" / "b.yml", "rules:\n  - name: b\n    when: door.open\n");
    write(dir / "rules.d" / "a.yaml", "rules:\n  - name: a\n    when: door.open\n");
    write(dir / "rules.d" / "notes.txt", "not rules");
    write(dir / "rules.d" / ".#a.yaml", "editor lock file");
    write(dir / "rules.d" / "nested" / "c.yaml", "rules:\n  - name: c\n    when: door.open\n");
    write(dir / "extra.yaml", "rules:\n  - name: extra\n    when: nope\n");

    const CompileResult ok = load_rules({(dir / "rules.d").string()}, demo_options());
    REQUIRE(ok.rules);
    REQUIRE(ok.rules->size() == 2);
    CHECK(ok.rules->rules()[0].name == "a");
    CHECK(ok.rules->rules()[1].name == "b");

    const Diagnostics d = check_rule_paths(
        {(dir / "rules.d").string(), (dir / "extra.yaml").string(), (dir / "missing").string()},
        demo_options());
    std::vector<std::string> lines;
    for (const SourceError& e : d.items())
        lines.push_back(e.format());
    CHECK(lines ==
          Lines{(dir / "missing").string() + ": error: cannot read: No such file or directory",
                (dir / "extra.yaml").string() + ":3:11: error: when: unknown sensor 'nope'"});
    fs::remove_all(dir);
}

TEST_CASE("a literal publish topic with a wildcard, NUL or nothing is an error where it stands",
          "[rules][check][topic]") {
    const std::string text = R"(rules:
  - name: t
    when: door.open
    actions:
      - publish: { topic: "a/\0b", payload: x }
      - publish: { topic: "", payload: x }
      - publish: { topic: 'x/{{meter.mode}}/#', payload: x }
      - publish: { topic: alerts/+/x, payload: x }
      - publish: { topic: 'ok/{{meter.mode}}/{{json(meter.mode)}}', payload: '{{json(door.open)}}' }
)";
    CHECK(check(text) ==
          Lines{"r.yaml:5:30: error: topic: a publish topic must not contain a NUL character",
                "r.yaml:6:27: error: topic: must not be empty",
                "r.yaml:7:45: error: topic: a publish topic must not contain the MQTT wildcard "
                "'#' (wildcards only work in subscriptions; name one topic)",
                "r.yaml:8:34: error: topic: a publish topic must not contain the MQTT wildcard "
                "'+' (wildcards only work in subscriptions; name one topic)"});
}

TEST_CASE("the program of exec is a literal absolute path, never a template",
          "[rules][check][exec]") {
    const std::string text = R"(rules:
  - name: t
    when: door.open
    actions:
      - exec: ['{{meter.mode}}', -c, id]
      - exec: { argv: ["/usr/bin/{{meter.mode}}", x] }
      - exec: [notify, "hot"]
      - exec: [./notify]
      - exec: [""]
      - exec: [/usr/bin/logger, "{{meter.mode}}", "--tag={{rule}}"]
)";
    const std::string fix =
        "name the program and pass values as later arguments, e.g. exec: "
        "[/usr/local/bin/notify, \"{{greenhouse.temp}}\"]";
    CHECK(check(text) ==
          Lines{"r.yaml:5:17: error: exec: the program (first argument) must be a literal "
                "absolute path, not a template; " +
                    fix,
                "r.yaml:6:34: error: exec: the program (first argument) must be a literal "
                "absolute path, not a template; " +
                    fix,
                "r.yaml:7:16: error: exec: the program (first argument) must be an absolute path "
                "starting with '/', got 'notify' (no shell or PATH search runs: write its full "
                "path, e.g. /usr/local/bin/notify)",
                "r.yaml:8:16: error: exec: the program (first argument) must be an absolute path "
                "starting with '/', got './notify' (no shell or PATH search runs: write its full "
                "path, e.g. /usr/local/bin/notify)",
                "r.yaml:9:16: error: exec: the program (first argument) is empty"});
}

TEST_CASE("parse_template keeps where each part starts and reports at byte offsets",
          "[rules][check]") {
    Symbols symbols;
    std::vector<std::string> errors;
    const ErrorSink sink = [&](std::size_t offset, const std::string& message) {
        errors.push_back(std::to_string(offset) + ": " + message);
    };
    const auto t = parse_template("a/{{x.y}}/b{{ \"}}\" }}{{json(x.y)}}", symbols, sink);
    REQUIRE(t);
    CHECK(errors.empty());
    REQUIRE(t->parts.size() == 5);
    CHECK(t->parts[0].text == "a/");
    CHECK(t->parts[0].offset == 0);
    CHECK(t->parts[1].expr);
    CHECK(t->parts[1].offset == 2);
    CHECK(t->parts[2].text == "/b");
    CHECK(t->parts[2].offset == 9);
    CHECK(t->parts[3].offset == 11);
    CHECK(t->parts[4].offset == 21);
    CHECK_FALSE(parse_template("x{{ y.z + }}", symbols, sink));
    CHECK_FALSE(parse_template("ok {{", symbols, sink));
    CHECK(errors ==
          std::vector<std::string>{"10: expected an expression, found the end of the expression",
                                   "3: unclosed '{{' (missing '}}')"});
}
