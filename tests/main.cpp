// The unit tests' entry point (Catch2 v2). A main of our own rather than
// Catch2WithMain, which Debian ships for amd64 only. Logs are quiet unless
// TIDEGATE_TEST_LOG=debug|info|warn|error asks for them: many tests feed bad
// input on purpose.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>

#include "core/log.h"

int main(int argc, char* argv[]) {
    const char* want = std::getenv("TIDEGATE_TEST_LOG");
    auto level = tg::parse_log_level(want ? want : "");
    tg::set_log_level(level ? *level : tg::LogLevel::Off);
    return Catch::Session().run(argc, argv);
}
