// Reading rule files from disk: the only file access of the rules library,
// kept apart from the engine, which does no I/O. Paths are files or folders;
// a folder stands for its *.yaml and *.yml files (not recursed, dot files
// skipped), and all files are taken in path byte order. Only regular files of
// at most kMaxConfigFileBytes are read: anything else found under a rule
// file's name (a FIFO, a device, a socket, a symlink to one) is an error
// naming it, reported at once, never waited on.
#pragma once

#include <string>
#include <vector>

#include "core/source_error.h"
#include "rules/rule_set.h"

namespace tg::rules {

// Expands and reads `paths`; a path that cannot be read is one error naming it.
std::vector<RuleSource> read_rule_sources(const std::vector<std::string>& paths,
                                          Diagnostics& diagnostics);

// Reads and compiles: every problem of every file, or the rule set.
CompileResult load_rules(const std::vector<std::string>& paths, const CheckOptions& options = {});

// `tidegate check` for rule files: the diagnostics alone (empty when valid).
Diagnostics check_rule_paths(const std::vector<std::string>& paths,
                             const CheckOptions& options = {});

}  // namespace tg::rules
