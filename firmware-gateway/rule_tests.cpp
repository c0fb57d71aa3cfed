#include "rule_tests.h"

#include <cstdio>
#include <fstream>

#include "rule_files.h"
#include "rules/yaml_reader.h"

namespace tg {

rules::RuleTestContext rule_test_context(const Config* cfg, std::vector<std::string> rules) {
    rules::RuleTestContext c;
    std::optional<rules::CheckOptions> names;
    if (cfg) {
        names = rule_check_options(*cfg);
        c.sensors = names->sensors;
        c.outputs = names->outputs;
        c.tick = cfg->rules.tick;
    }
    c.load_rules = [cfg, names, rules = std::move(rules)](
                       const std::vector<std::string>& named, const SourcePos& at,
                       Diagnostics& d) -> std::shared_ptr<const rules::RuleSet> {
        rules::CompileResult res;
        if (!named.empty()) {
            res = rules::load_rules(named, names.value_or(rules::CheckOptions{}));
        } else if (!rules.empty()) {
            res = rules::load_rules(rules, names.value_or(rules::CheckOptions{}));
        } else if (cfg) {
            res = load_rule_files(*cfg, nullptr);
        } else {
            d.error(at,
                    "no rules to test: name them in the file (rules: [../rules.d]), with "
                    "--rules PATH or with -c FILE");
            return nullptr;
        }
        for (const SourceError& e : res.diagnostics.items())
            d.add(e);
        if (res.rules && res.rules->size() == 0) {
            d.error(at, "no rules to test: the rule paths hold none");
            return nullptr;
        }
        return res.rules;
    };
    return c;
}

int run_rule_test_files(const std::vector<std::string>& files, const Config* cfg,
                        const std::vector<std::string>& rules,
                        const std::optional<std::string>& junit) {
    const rules::RuleTestContext context = rule_test_context(cfg, rules);
    // What {{gateway}} renders as: the config's id, or a fixed word, so that
    // expected payloads do not depend on the machine's name.
    const std::string gateway = cfg ? cfg->gateway.id : "test";
    std::vector<rules::RuleTestSuiteResult> suites;
    std::size_t passed = 0, failed = 0;
    bool invalid = false;
    for (const std::string& path : files) {
        rules::RuleTestSuiteResult suite;
        suite.file = path;
        Diagnostics d;
        const std::optional<rules::RuleTestFile> file =
            rules::read_rule_test_file(path, context, d);
        for (const SourceError& e : d.items()) {
            std::printf("%s\n", e.format().c_str());
            if (e.severity() == Severity::Error) suite.errors.push_back(e.format());
        }
        if (!file) {
            invalid = true;
            if (suite.errors.empty()) suite.errors.push_back(path + ": error: invalid test file");
            suites.push_back(std::move(suite));
            continue;
        }
        for (const rules::RuleTest& t : file->tests) {
            rules::RuleTestResult r = rules::run_rule_test(*file, t, gateway);
            std::printf("%s %s\n", r.passed ? "ok" : "FAIL", rules::shown(r.name, 400).c_str());
            for (const std::string& line : r.diff)
                std::printf("    %s\n", line.c_str());
            (r.passed ? passed : failed) += 1;
            suite.results.push_back(std::move(r));
        }
        suites.push_back(std::move(suite));
    }
    std::printf("%zu passed, %zu failed\n", passed, failed);
    std::fflush(stdout);
    if (junit) {
        std::ofstream out(*junit, std::ios::trunc);
        if (out) rules::write_junit(out, suites);
        out.flush();
        if (!out) {
            std::fprintf(stderr, "%s: error: cannot write the JUnit report\n", junit->c_str());
            return 1;
        }
    }
    return failed == 0 && !invalid ? 0 : 1;
}

}  // namespace tg
