// CRC32C against published check values (RFC 3720 appendix B.4 and the
// catalogue's "123456789"), and the slicing path against the bytewise one.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "core/crc32c.h"

using tg::crc32c;
using tg::crc32c_bytewise;

TEST_CASE("crc32c matches the standard check values", "[crc32c]") {
    CHECK(crc32c(std::string_view("123456789")) == 0xE3069283u);
    CHECK(crc32c(nullptr, 0) == 0u);

    std::vector<unsigned char> buf(32, 0x00);
    CHECK(crc32c(buf.data(), buf.size()) == 0x8A9136AAu);
    std::fill(buf.begin(), buf.end(), 0xFF);
    CHECK(crc32c(buf.data(), buf.size()) == 0x62A8AB43u);
    for (std::size_t i = 0; i < 32; ++i)
        buf[i] = static_cast<unsigned char>(i);
    CHECK(crc32c(buf.data(), buf.size()) == 0x46DD794Eu);
    for (std::size_t i = 0; i < 32; ++i)
        buf[i] = static_cast<unsigned char>(31 - i);
    CHECK(crc32c(buf.data(), buf.size()) == 0x113FDB5Cu);
}

TEST_CASE("crc32c slicing equals bytewise for every length and alignment", "[crc32c]") {
    std::mt19937 rng(42);
    std::vector<unsigned char> data(600);
    for (auto& b : data)
        b = static_cast<unsigned char>(rng());
    for (std::size_t offset = 0; offset < 8; ++offset) {
        for (std::size_t len = 0; len + offset <= data.size(); len += 7) {
            INFO("offset " << offset << " len " << len);
            REQUIRE(crc32c(data.data() + offset, len) ==
                    crc32c_bytewise(data.data() + offset, len));
        }
    }
}

TEST_CASE("crc32c extends incrementally", "[crc32c]") {
    const std::string a = "the quick brown fox ";
    const std::string b = "jumps over the lazy dog, twice over for length";
    const std::uint32_t whole = crc32c(a + b);
    CHECK(crc32c(b, crc32c(a)) == whole);
    for (std::size_t cut = 0; cut <= b.size(); ++cut) {
        const std::uint32_t first = crc32c(b.data(), cut, crc32c(a));
        CHECK(crc32c(b.data() + cut, b.size() - cut, first) == whole);
    }
}

TEST_CASE("crc32c detects every single-bit flip", "[crc32c]") {
    std::string s = "{\"v\":1,\"id\":\"gw:1042\",\"seq\":1042}";
    const std::uint32_t good = crc32c(s);
    for (std::size_t i = 0; i < s.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            s[i] = static_cast<char>(s[i] ^ (1 << bit));
            CHECK(crc32c(s) != good);
            s[i] = static_cast<char>(s[i] ^ (1 << bit));
        }
    }
}
