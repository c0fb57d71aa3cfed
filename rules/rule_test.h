// `tidegate test` (SPEC §10), library part: rule test files in, a verdict per
// test out. A test feeds readings at virtual times into the same Engine,
// stepped by the same VirtualRun as `tidegate replay` (so the same tick rules
// as the daemon, SPEC §5.3), with the actions rendered and recorded instead
// of performed: nothing switches, runs or is published. Timed outputs
// (`for: 30s`) switch back at their virtual time, a later switch of the same
// output cancelling the switch-back, as the daemon's outputs do.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/source_error.h"
#include "core/value.h"
#include "rules/engine.h"
#include "rules/rule_set.h"
#include "rules/yaml_text.h"

namespace tg::rules {

enum class TestEventKind : std::uint8_t { Rule, Output, Publish, Exec, Log, Saga };

// What the rules did in a test, or what a test expects (or expects not) of
// them. Unset optionals in an expectation match anything.
struct TestEvent {
    TestEventKind kind = TestEventKind::Rule;
    std::optional<std::chrono::milliseconds> at;  // virtual time since the test's start
    std::string name;  // the rule, the output, the publish topic or the log message
    std::optional<TransitionKind> transition;  // rule
    std::optional<bool> on;                    // output
    std::optional<std::string> payload;        // publish
    std::vector<std::string> argv;             // exec
    std::optional<SagaEventKind> saga_event;   // saga (`name` is the rule)
    std::optional<std::string> step;           // saga
    std::optional<std::string> reason;         // saga

    // Whether `happened` is this (an expectation: its unset parts match anything).
    bool matches(const TestEvent& happened) const;
};

// "2m10s output fan on", "3m rule greenhouse_too_hot cleared"; user text
// escaped (control characters), long payloads shortened.
std::string describe_event(const TestEvent& e);

struct GivenReading {
    std::chrono::milliseconds at{0};
    std::string sensor;
    Value value;
};

struct Expectation {
    TestEvent event;
    SourcePos pos;
};

struct RuleTest {
    std::string name;
    SourcePos pos;
    std::vector<GivenReading> given;  // in time order
    std::vector<Expectation> expect;
    std::vector<Expectation> expect_not;
    std::chrono::milliseconds end{0};  // the last given or expected time
};

struct RuleTestFile {
    std::string file;
    std::shared_ptr<const RuleSet> rules;
    std::chrono::milliseconds tick{1000};
    std::vector<RuleTest> tests;
};

// What a test file is read against.
struct RuleTestContext {
    // Loads the rules: `named` holds the paths of the file's `rules:` key,
    // resolved against the file's folder, or is empty when it has none (the
    // caller then takes --rules or the config's). Null after reporting why to
    // `diagnostics` (at `at` when the file's key is to blame).
    std::function<std::shared_ptr<const RuleSet>(const std::vector<std::string>& named,
                                                 const SourcePos& at, Diagnostics& diagnostics)>
        load_rules;
    // From a configuration (-c): sensor types and output names; the tick.
    std::optional<SensorCatalogue> sensors;
    std::optional<std::vector<std::string>> outputs;
    std::optional<std::chrono::milliseconds> tick;
};

// Most ticks one test may step through (its end over the tick).
inline constexpr std::int64_t kMaxTestTicks = 10'000'000;

// Reads a test file's text; every problem goes to `diagnostics` at its
// FILE:LINE:COL. Nullopt when there was any error.
std::optional<RuleTestFile> parse_rule_test_file(const SourceText& src,
                                                 const RuleTestContext& context,
                                                 Diagnostics& diagnostics);

// The same, read from `path` (regular files only, as rule files).
std::optional<RuleTestFile> read_rule_test_file(const std::string& path,
                                                const RuleTestContext& context,
                                                Diagnostics& diagnostics);

// Whether YAML text is a test file rather than a rule file: a map with a
// top-level `tests` key.
bool is_rule_test_text(std::string_view text);

struct RuleTestResult {
    std::string name;
    bool passed = false;
    std::vector<std::string> diff;  // lines explaining a failure
    std::vector<TestEvent> happened;
    double seconds = 0;  // how long it ran
};

// Runs one test; `gateway` is what {{gateway}} renders as.
RuleTestResult run_rule_test(const RuleTestFile& file, const RuleTest& test,
                             const std::string& gateway);

// Results of one file for the JUnit report; `errors` when the file was invalid.
struct RuleTestSuiteResult {
    std::string file;
    std::vector<RuleTestResult> results;
    std::vector<std::string> errors;
};

// JUnit XML (the schema Jenkins, GitLab and GitHub Actions read): one
// <testsuite> per file, one <testcase> per test, <failure> with the diff,
// <error> for an invalid file.
void write_junit(std::ostream& out, const std::vector<RuleTestSuiteResult>& suites);

}  // namespace tg::rules
