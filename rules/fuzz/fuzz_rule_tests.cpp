// libFuzzer target: arbitrary rule test file text (SPEC §10) through the
// reader, against a fixed rule set, with and without a sensor catalogue;
// whatever reads then runs (when its clock is short enough for a fuzzer) and
// is reported as JUnit XML. Must never crash, hang or leak. Build and run
// (see rules/CMakeLists.txt):
//   cmake --preset fuzz && cmake --build --preset fuzz --target fuzz_rule_tests
//   build-fuzz/rules/fuzz_rule_tests -max_total_time=60 -max_len=4096 \
//       -dict=rules/fuzz/rule_tests.dict /tmp/fuzz-rule-tests rules/fuzz/rule_tests
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "rules/rule_set.h"
#include "rules/rule_test.h"

using namespace tg;
using namespace tg::rules;

namespace {

const char* kRules = R"(
rules:
  - name: hot
    when: t > 30
    for: 2m
    clear_when: t < 28
    cooldown: 5m
    actions:
      - output: { name: fan, value: on, for: 30s }
      - publish: { topic: "a/{{gateway}}/{{s}}", payload: '{"t": {{t}}, "s": {{json(s)}}}' }
      - exec: [/bin/true, "{{ avg(t, 1m) }}"]
      - log: "hot {{t}}"
    on_clear:
      - output: { name: fan, value: off }
  - name: silent
    when: age(t) > 1m or not door
)";

std::shared_ptr<const RuleSet> rule_set() {
    static const std::shared_ptr<const RuleSet> set =
        compile_rules({RuleSource{"r.yaml", kRules}}).rules;
    return set;
}

void exercise(const std::string& text, bool with_catalogue) {
    RuleTestContext c;
    if (with_catalogue) {
        c.sensors = SensorCatalogue{
            {"t", ValueType::Number}, {"s", ValueType::String}, {"door", ValueType::Boolean}};
        c.outputs = std::vector<std::string>{"fan", "pump"};
    }
    c.load_rules = [](const std::vector<std::string>&, const SourcePos&, Diagnostics&) {
        return rule_set();
    };
    Diagnostics d;
    const SourceText src("f.test.yaml", strip_bom(text));
    const std::optional<RuleTestFile> file = parse_rule_test_file(src, c, d);
    for (const SourceError& e : d.items())
        (void)e.format();
    if (!file) return;
    RuleTestSuiteResult suite;
    suite.file = file->file;
    for (const RuleTest& t : file->tests) {
        // A long virtual clock is valid but slow for a fuzzer.
        if (t.end.count() / file->tick.count() > 20'000) continue;
        suite.results.push_back(run_rule_test(*file, t, "fuzz"));
    }
    std::ostringstream out;
    write_junit(out, {suite});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (!rule_set()) __builtin_trap();
    const std::string text(reinterpret_cast<const char*>(data), size);
    exercise(text, false);
    exercise(text, true);
    return 0;
}
