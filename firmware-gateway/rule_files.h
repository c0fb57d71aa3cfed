// Loading the rule files a configuration names, for `run`, reloads and
// `check`: paths that do not exist are warnings (a rules folder not created
// yet), not errors; sensor and output names are checked against the config.
#pragma once

#include "config.h"
#include "rules/loader.h"

namespace tg {

// The sensor and output names a config offers to its rules.
rules::CheckOptions rule_check_options(const Config& cfg);

// Reads and compiles the rule files of cfg.rules.paths. Missing paths are
// reported in `warnings` (when given) and skipped.
rules::CompileResult load_rule_files(const Config& cfg, Diagnostics* warnings);

}  // namespace tg
