// Must not compile: rules/ is a pure library over core/, so tidegate_rules'
// include path has no drivers/ (tests/CMakeLists.txt expects "header not
// found").
#include "drivers/driver.h"
