// Must not compile: drivers/ use core/ only, so tidegate_drivers' include
// path has no rules/ (tests/CMakeLists.txt expects "header not found").
#include "rules/engine.h"
