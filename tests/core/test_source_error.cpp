// "Did you mean" hints and strict-map key checks shared by config and rule
// files.
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "core/source_error.h"

using tg::check_map_key;
using tg::closest_match;

TEST_CASE("closest_match finds plausible typos and nothing else", "[core]") {
    const std::vector<std::string> keys{"interval", "tick", "paths", "severity", "cooldown"};
    struct Row {
        const char* word;
        const char* want;
    };
    const Row rows[] = {
        {"intervall", "interval"},  // one insertion
        {"inteval", "interval"},    // one deletion
        {"tikc", "tick"},           // two neighbours swapped: one typo
        {"sevreity", "severity"},   // swapped in the middle
        {"Interval", "interval"},   // case only
        {"COOLDOWN", "cooldown"},   // case only, every letter
        {"path", "paths"},          // short words allow one typo
        {"xyz", ""},                // nothing close
        {"timeout", ""},            // a different word
        {"", ""},
    };
    for (const Row& r : rows) {
        INFO(r.word);
        CHECK(closest_match(r.word, keys) == r.want);
    }
    CHECK(closest_match("anything", {}).empty());
}

TEST_CASE("check_map_key: unknown with a hint, unknown with the list, duplicate", "[core]") {
    std::map<std::string, int> first;
    const std::vector<std::string> allowed{"name", "driver", "interval"};
    CHECK(check_map_key("name", allowed, "key", " in sensors[0]", 3, first).empty());
    CHECK(check_map_key("drvier", allowed, "key", " in sensors[0]", 4, first) ==
          "unknown key 'drvier' in sensors[0] (did you mean 'driver'?)");
    CHECK(check_map_key("colour", allowed, "key", "", 5, first) ==
          "unknown key 'colour' (expected one of: name, driver, interval)");
    CHECK(check_map_key("x", {}, "option", "", 6, first) ==
          "unknown option 'x' (none are accepted)");
    CHECK(check_map_key("name", allowed, "key", "", 7, first) ==
          "duplicate key 'name' (first at line 3)");
}
