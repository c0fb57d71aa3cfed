// Must not compile: core/ uses nothing else, so tidegate_core's include path
// has none of the gateway's headers (tests/CMakeLists.txt expects "header not
// found").
#include "config.h"
