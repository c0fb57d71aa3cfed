// `tidegate test` (SPEC §10), the command: test files named on the command
// line are read against the rules they name (or --rules, or the config's),
// run, and reported as `ok NAME` / `FAIL NAME` with a diff, then
// `N passed, M failed`; optionally as JUnit XML. `tidegate check` reads test
// files through the same context.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "rules/rule_test.h"

namespace tg {

// What test files are read against: `rules` (--rules) when the file names
// none, else the config's rule paths; the config's sensors, outputs and tick.
rules::RuleTestContext rule_test_context(const Config* cfg, std::vector<std::string> rules);

// Runs the test files; returns the exit code (0 all passed, 1 otherwise).
int run_rule_test_files(const std::vector<std::string>& files, const Config* cfg,
                        const std::vector<std::string>& rules,
                        const std::optional<std::string>& junit);

}  // namespace tg
