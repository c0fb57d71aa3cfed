// `tidegate test`, library part: reading test files (every problem at its
// place), running them on the virtual clock with actions recorded, the diff
// of a failure, and the JUnit report.
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "engine_harness.h"
#include "rules/rule_test.h"

using namespace tg;
using namespace tg::rules;
using namespace tg::rules::testing;

namespace {

const char* kRules = R"(
rules:
  - name: hot
    when: t > 30
    for: 2m
    clear_when: t < 28
    actions:
      - output: { name: fan, value: on }
      - publish: { topic: "alerts/{{gateway}}/hot", payload: '{"t": {{t}}}' }
      - log: "hot: {{t}}"
    on_clear:
      - output: { name: fan, value: off }
  - name: burst
    when: b > 0
    actions:
      - output: { name: pump, value: on, for: 30s }
      - exec: [/usr/local/bin/notify, "b={{b}}"]
  - name: tagged
    when: tag != ""
    actions:
      - publish: { topic: "tags/{{tag}}", payload: x }
)";

struct Parsed {
    std::optional<RuleTestFile> file;
    Diagnostics diags;
    std::string errors;  // every diagnostic, one per line
};

Parsed parse(const std::string& yaml, const char* rules = kRules) {
    Parsed p;
    auto set = compile_or_fail(rules);
    RuleTestContext c;
    c.load_rules = [set](const std::vector<std::string>&, const SourcePos&, Diagnostics&) {
        return set;
    };
    const SourceText src("t.test.yaml", yaml);
    p.file = parse_rule_test_file(src, c, p.diags);
    for (const SourceError& e : p.diags.items())
        p.errors += e.format() + "\n";
    return p;
}

RuleTestResult run_first(const std::string& yaml) {
    Parsed p = parse(yaml);
    INFO(p.errors);
    REQUIRE(p.file);
    REQUIRE(!p.file->tests.empty());
    return run_rule_test(*p.file, p.file->tests.front(), "gw");
}

std::string diff_text(const RuleTestResult& r) {
    std::string s;
    for (const std::string& l : r.diff)
        s += l + "\n";
    return s;
}

}  // namespace

TEST_CASE("rule test: a test that matches what the rules do passes", "[rule_test]") {
    const RuleTestResult r = run_first(R"(
tests:
  - name: fires and clears
    given:
      - { at: 0s, t: 29 }
      - { at: 10s, t: 31 }
      - { at: 3m, t: 29 }
      - { at: 4m, t: 27 }
    expect:
      - { at: 2m10s, rule: hot, transition: fired }
      - { at: 2m10s, output: fan, value: on }
      - { at: 2m10s, publish: alerts/gw/hot, payload: '{"t": 31}' }
      - { at: 2m10s, log: "hot: 31" }
      - { at: 4m, rule: hot, transition: cleared }
      - { at: 4m, output: fan, value: off }
    expect_not:
      - { at: 3m, output: fan }
)");
    INFO(diff_text(r));
    CHECK(r.passed);
    CHECK(r.diff.empty());
}

TEST_CASE("rule test: the `for` elapses on a tick, as in run and replay", "[rule_test]") {
    // Pending since 10.5 s; with a 1 s tick the first evaluation at or after
    // 2m10.5s is the tick at 2m11s.
    const RuleTestResult r = run_first(R"(
tests:
  - name: t
    given:
      - { at: 10500ms, t: 31 }
    expect:
      - { at: 2m11s, rule: hot, transition: fired }
)");
    INFO(diff_text(r));
    CHECK(r.passed);
}

TEST_CASE("rule test: a timed output switches back at its time; a later switch cancels that",
          "[rule_test]") {
    const RuleTestResult r = run_first(R"(
tests:
  - name: t
    given:
      - { at: 0s, b: 1 }
      - { at: 1s, b: 0 }
      - { at: 40s, b: 2 }
      - { at: 41s, b: 0 }
      - { at: 50s, b: 3 }
    expect:
      - { at: 0s, rule: burst, transition: fired }
      - { at: 0s, output: pump, value: on }
      - { at: 0s, exec: [/usr/local/bin/notify, "b=1"] }
      - { at: 1s, rule: burst, transition: cleared }
      - { at: 30s, output: pump, value: off }
      - { at: 40s, rule: burst, transition: fired }
      - { at: 41s, rule: burst, transition: cleared }
      - { at: 50s, rule: burst, transition: fired }
      - { at: 1m20s, output: pump, value: off }
    expect_not:
      - { at: 1m10s, output: pump }
)");
    INFO(diff_text(r));
    CHECK(r.passed);
    // The 40 s switch-back was cancelled by the switch at 50 s.
    int offs = 0;
    for (const TestEvent& e : r.happened) {
        if (e.kind == TestEventKind::Output && e.on == false) ++offs;
    }
    CHECK(offs == 2);
}

TEST_CASE("rule test: a publish topic the daemon would refuse is not recorded", "[rule_test]") {
    const RuleTestResult r = run_first(R"(
tests:
  - name: t
    given:
      - { at: 0s, tag: "a" }
      - { at: 1s, tag: "" }
      - { at: 2s, tag: "b/#" }
    expect:
      - { at: 0s, rule: tagged, transition: fired }
      - { at: 0s, publish: tags/a, payload: x }
      - { at: 1s, rule: tagged, transition: cleared }
      - { at: 2s, rule: tagged, transition: fired }
    expect_not:
      - { publish: "tags/b/#" }
)");
    INFO(diff_text(r));
    CHECK(r.passed);
}

TEST_CASE("rule test: a failure explains itself with times", "[rule_test]") {
    const RuleTestResult r = run_first(R"(
tests:
  - name: wrong
    given:
      - { at: 0s, t: 31 }
    expect:
      - { at: 1m, rule: hot, transition: fired }
      - { at: 2m, output: fan, value: off }
      - { at: 2m, publish: alerts/gw/hot, payload: '{"t": 30}' }
    expect_not:
      - { output: fan, value: on }
)");
    CHECK_FALSE(r.passed);
    const std::string d = diff_text(r);
    INFO(d);
    CHECK(d.find("rule transitions (- expected, + actual):") != std::string::npos);
    CHECK(d.find("- 1m rule hot fired") != std::string::npos);
    CHECK(d.find("+ 2m rule hot fired") != std::string::npos);
    CHECK(d.find("expected, did not happen: (t.test.yaml:8)") != std::string::npos);
    CHECK(d.find("- 2m output fan off") != std::string::npos);
    CHECK(d.find("+ 2m output fan on") != std::string::npos);
    CHECK(d.find("+ 2m publish alerts/gw/hot '{\"t\": 31}'") != std::string::npos);
    CHECK(d.find("expected not to happen, but did: (t.test.yaml:11)") != std::string::npos);
}

TEST_CASE("rule test: no rule items means no transition at all", "[rule_test]") {
    const RuleTestResult r = run_first(R"(
tests:
  - name: t
    given:
      - { at: 0s, t: 31 }
      - { at: 3m, t: 31 }
)");
    CHECK_FALSE(r.passed);
    CHECK(diff_text(r).find("+ 2m rule hot fired") != std::string::npos);
}

TEST_CASE("rule test: readings take their type from YAML, or from the config", "[rule_test]") {
    const char* rules = R"(
rules:
  - name: s
    when: mode == "on"
  - name: n
    when: level == 7
)";
    {
        // Quoted: text; plain 7: a number.
        Parsed p = parse(R"(
tests:
  - name: t
    given: [{ at: 0s, mode: "on", level: 7 }]
    expect:
      - { at: 0s, rule: s, transition: fired }
      - { at: 0s, rule: n, transition: fired }
)",
                         rules);
        INFO(p.errors);
        REQUIRE(p.file);
        const RuleTestResult r = run_rule_test(*p.file, p.file->tests[0], "gw");
        INFO(diff_text(r));
        CHECK(r.passed);
    }
    {
        // With a catalogue saying `level` is a number, text is an error.
        auto set = compile_or_fail(rules);
        RuleTestContext c;
        c.sensors = SensorCatalogue{{"mode", ValueType::String}, {"level", ValueType::Number}};
        c.load_rules = [set](const std::vector<std::string>&, const SourcePos&, Diagnostics&) {
            return set;
        };
        Diagnostics d;
        const SourceText src("t.yaml",
                             "tests:\n  - name: t\n    given: [{ at: 0s, level: high }]\n");
        CHECK_FALSE(parse_rule_test_file(src, c, d));
        REQUIRE(d.items().size() == 1);
        CHECK(d.items()[0].format().rfind("t.yaml:3:30: error: level is a number sensor", 0) == 0);
    }
}

TEST_CASE("rule test: bad test files are errors at their place", "[rule_test]") {
    struct Case {
        const char* yaml;
        const char* error;
    };
    const Case cases[] = {
        {"tests: []\n", "t.test.yaml:1:8: error: tests: the list is empty"},
        {"tick: 1s\n", "t.test.yaml:1:1: error: missing key 'tests'"},
        {"tests:\n  - name: a\n    given: [{ at: 0s, tt: 1 }]\n",
         "t.test.yaml:3:23: error: unknown sensor 'tt' in given (did you mean 't'?)"},
        {"tests:\n  - name: a\n    given: [{ at: 1m, t: 1 }, { at: 10s, t: 2 }]\n",
         "t.test.yaml:3:37: error: test 'a': given: times not in order: 10s comes after 1m"},
        {"tests:\n  - name: a\n    given: [{ at: 10x, t: 1 }]\n",
         "t.test.yaml:3:19: error: test 'a': at: invalid duration '10x'"},
        {"tests:\n  - name: a\n    expect: [{ at: 1s, rule: hto, transition: fired }]\n",
         "t.test.yaml:3:30: error: unknown rule 'hto' (did you mean 'hot'?)"},
        {"tests:\n  - name: a\n    expect: [{ at: 1s, output: fna, value: on }]\n",
         "t.test.yaml:3:32: error: unknown output 'fna' (did you mean 'fan'?)"},
        {"tests:\n  - name: a\n    expect: [{ at: 1s, rule: hot, transition: fire }]\n",
         "t.test.yaml:3:47: error: transition: expected fired or cleared, got 'fire'"},
        {"tests:\n  - name: a\n    expect: [{ rule: hot, transition: fired }]\n",
         "t.test.yaml:3:14: error: test 'a': expect: 'at' is missing"},
        {"tests:\n  - name: a\n    expect: [{ at: 1s, rule: hot, value: on }]\n",
         "t.test.yaml:3:35: error: test 'a': expect: 'value' goes with 'output', not with 'rule'"},
        {"tests:\n  - name: a\n    expect: [{ at: 1s, rule: hot, log: x, transition: fired }]\n",
         "t.test.yaml:3:35: error: test 'a': expect: an item has exactly one of"},
        {"tests:\n  - name: a\n  - name: a\n", "t.test.yaml:3:11: error: duplicate test name 'a'"},
        {"tests:\n  - given: []\n", "t.test.yaml:2:5: error: a test needs a 'name'"},
        {"tests:\n  - name: a\n    expct: []\n",
         "t.test.yaml:3:5: error: unknown key 'expct' in a test (did you mean 'expect'?)"},
        {"tick: 0s\ntests:\n  - name: a\n", "t.test.yaml:1:7: error: tick: must be longer than 0s"},
        {"tests:\n  - name: a\n    given: [{ at: 3650d1ms, t: 1 }]\n",
         "t.test.yaml:3:19: error: test 'a': at: longer than the longest duration allowed"},
        {"tick: 1ms\ntests:\n  - name: a\n    expect: [{ at: 1d, log: x }]\n",
         "t.test.yaml:3:5: error: test 'a' runs to 1d, 86400000 ticks of 1ms; at most"},
        {"- 1\n", "t.test.yaml:1:1: error: expected a map with a 'tests:' list, got a list"},
        {"tests:\n  - name: a\n    given: [{ at: 0s, t: }]\n",
         "t.test.yaml:3:23: error: t: expected a number, true/false or text, got nothing"},
        {"tests:\n  - name: a\n    expect: [{ at: 1s, exec: [] }]\n",
         "t.test.yaml:3:30: error: exec: expected the argument list"},
    };
    for (const Case& c : cases) {
        Parsed p = parse(c.yaml);
        INFO(c.yaml);
        INFO(p.errors);
        CHECK_FALSE(p.file);
        CHECK(p.errors.rfind(c.error, 0) == 0);
    }
}

TEST_CASE("rule test: hostile test files are refused without a crash", "[rule_test]") {
    const std::string deep = std::string(5000, '[') + std::string(5000, ']');
    const std::string cases[] = {
        "tests:\n  - name: \"a\\0b\"\n",
        std::string("tests: [\0]\n", 11),
        "tests: " + deep + "\n",
        "tests:\n  - name: a\n    given: [{ at: 99999999999999999999s, t: 1 }]\n",
        "tests:\n  - name: a\n    given: [{ at: -1s, t: 1 }]\n",
        "tests:\n  - name: a\n    given: [{ at: 0s, t: 1e999 }]\n",
        "tests:\n  - name: a\n    given: [{ at: 0s, ? [1] : 2 }]\n",
        "tests: &a [*a]\n",
        "tests:\n  - name: a\n    expect: [{ at: 0s, publish: [x] }]\n",
        ",,,,\n",
    };
    for (const std::string& yaml : cases) {
        Parsed p = parse(yaml);
        INFO(yaml.substr(0, 200));
        CHECK_FALSE(p.file);
        CHECK(p.diags.has_errors());
    }
}

TEST_CASE("rule test: test files are told from rule files by their `tests` key", "[rule_test]") {
    CHECK(is_rule_test_text("rules: [a.yaml]\ntests:\n  - name: x\n"));
    CHECK_FALSE(is_rule_test_text("rules:\n  - name: x\n    when: a > 1\n"));
    CHECK_FALSE(is_rule_test_text("{{{{"));
    CHECK_FALSE(is_rule_test_text(std::string("tests: \0", 8)));
}

TEST_CASE("rule test: JUnit XML escapes whatever the names hold", "[rule_test]") {
    RuleTestSuiteResult ok;
    ok.file = "a&b.yaml";
    RuleTestResult pass;
    pass.name = "quotes \" and ' and <tags>";
    pass.passed = true;
    RuleTestResult fail;
    fail.name = std::string("control \x01 char");
    fail.diff = {"rule transitions (- expected, + actual):", "  - 1m rule x fired"};
    ok.results = {pass, fail};
    RuleTestSuiteResult bad;
    bad.file = "bad.yaml";
    bad.errors = {"bad.yaml:1:1: error: <oops>"};
    std::ostringstream out;
    write_junit(out, {ok, bad});
    const std::string x = out.str();
    CHECK(x.find("<testsuites name=\"tidegate test\" tests=\"3\" failures=\"1\" errors=\"1\"") !=
          std::string::npos);
    CHECK(x.find("<testsuite name=\"a&amp;b.yaml\" tests=\"2\" failures=\"1\" errors=\"0\"") !=
          std::string::npos);
    CHECK(x.find("name=\"quotes &quot; and &apos; and &lt;tags&gt;\"") != std::string::npos);
    CHECK(x.find("name=\"control ? char\"") != std::string::npos);
    CHECK(x.find("<failure message=\"rule transitions (- expected, + actual):\"") !=
          std::string::npos);
    CHECK(x.find("<error message=\"invalid test file\" type=\"invalid\">bad.yaml:1:1: error: "
                 "&lt;oops&gt;") != std::string::npos);
    CHECK(x.find('\x01') == std::string::npos);
}
