// The engine's sensor name index: open addressing, growth, misses.
#include <catch2/catch.hpp>

#include <string>

#include "rules/name_index.h"

using tg::rules::NameIndex;

TEST_CASE("the name index finds every name inserted and nothing else", "[rules][engine]") {
    NameIndex index;
    CHECK(index.find("greenhouse.temp") == NameIndex::npos);
    for (std::uint32_t i = 0; i < 1000; ++i)
        index.insert("s" + std::to_string(i) + ".value", i);
    CHECK(index.size() == 1000);
    for (std::uint32_t i = 0; i < 1000; ++i) {
        INFO(i);
        CHECK(index.find("s" + std::to_string(i) + ".value") == i);
    }
    CHECK(index.find("s1000.value") == NameIndex::npos);
    CHECK(index.find("") == NameIndex::npos);
    CHECK(index.find("s1.valu") == NameIndex::npos);
    index.insert("", 1000);
    CHECK(index.find("") == 1000);
}
