// "Why did it (not) fire": a condition's comparisons with the values they saw
// at one evaluation, for `tidegate replay --explain RULE`. The text of each
// part is rebuilt from the compiled program (sensor names, window lengths,
// operators), so it reads like the rule file without keeping its source.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rules/program.h"

namespace tg::rules {

// The expression at instruction `at` as text, e.g. "avg(greenhouse.temp, 10m) > 30".
std::string program_text(const Program& p, std::uint32_t at,
                         const std::vector<std::string>& sensor_names,
                         const std::vector<WindowSpec>& windows);

// Each comparison of the condition with its operands' values and its result,
// then the condition's value when it is more than one comparison:
//   "greenhouse.temp > 30: 31.2 > 30 = true"
//   "door.open = missing"
//   "a > 1: 2 > 1 = true; b < 3: missing < 3 = missing; condition = missing"
std::string explain_condition(const Program& p, EvalEnv& env,
                              const std::vector<std::string>& sensor_names,
                              const std::vector<WindowSpec>& windows);

// "31.2", "true", "\"text\"", "missing".
std::string explain_value(const Val& v);

}  // namespace tg::rules
