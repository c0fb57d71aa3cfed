// Must not compile: core/ uses nothing else, so tidegate_core's include path
// has no rules/ (tests/CMakeLists.txt expects "header not found").
#include "rules/engine.h"
