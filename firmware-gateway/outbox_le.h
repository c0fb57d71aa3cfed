// Little-endian integers, the byte order of every integer in the outbox's
// files (records and the state file), whatever the CPU's.
#pragma once

#include <cstdint>
#include <string>

namespace tg::outbox {

inline void put_le(unsigned char* at, std::uint64_t v, int width) {
    for (int i = 0; i < width; ++i)
        at[i] = static_cast<unsigned char>((v >> (8 * i)) & 0xFFu);
}

inline void append_le(std::string& out, std::uint64_t v, int width) {
    for (int i = 0; i < width; ++i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}

inline std::uint64_t get_le(const unsigned char* at, int width) {
    std::uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i)
        v = (v << 8) | at[i];
    return v;
}

inline std::uint16_t get_u16(const unsigned char* p) {
    return static_cast<std::uint16_t>(get_le(p, 2));
}

inline std::uint32_t get_u32(const unsigned char* p) {
    return static_cast<std::uint32_t>(get_le(p, 4));
}

inline std::uint64_t get_u64(const unsigned char* p) {
    return get_le(p, 8);
}

}  // namespace tg::outbox
