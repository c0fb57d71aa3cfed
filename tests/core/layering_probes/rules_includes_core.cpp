// Compiles: the one probe that must, so the others fail for the reason they
// name and not for one they share (tests/CMakeLists.txt).
#include "core/clock.h"
#include "rules/engine.h"
