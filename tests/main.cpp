// The unit tests' entry point (Catch2 v2). A main of our own rather than
// Catch2WithMain, which Debian ships for amd64 only.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
