#include "outbox_state.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/crc32c.h"
#include "outbox_le.h"

namespace tg::outbox {
namespace {

// Slot layout: magic, version, generation, reservation, cursor, last seq or
// newest segment, flags, boot id (NUL-padded), CRC32C over all before it.
constexpr unsigned char kStateMagic[4] = {'T', 'G', 'O', 'S'};
constexpr std::uint32_t kStateVersion = 1;
constexpr std::size_t kBootIdOffset = 44;
constexpr std::size_t kBootIdBytes = 48;
constexpr std::size_t kStateCrcOffset = kBootIdOffset + kBootIdBytes;
static_assert(kStateCrcOffset + 4 == kStateSlotBytes);

constexpr std::uint32_t kClean = 1u;
constexpr std::uint32_t kTailExact = 2u;

}  // namespace

std::array<unsigned char, kStateSlotBytes> encode_state(const State& s) {
    std::array<unsigned char, kStateSlotBytes> b{};
    std::memcpy(b.data(), kStateMagic, 4);
    put_le(b.data() + 4, kStateVersion, 4);
    put_le(b.data() + 8, s.gen, 8);
    put_le(b.data() + 16, s.reserved, 8);
    put_le(b.data() + 24, s.cursor, 8);
    // One field: the last seq after a clean close, the newest segment's name
    // while running (older versions wrote 0 there and read it only when clean).
    put_le(b.data() + 32, s.clean ? s.last_seq : s.newest_base, 8);
    put_le(b.data() + 40, s.clean ? (s.tail_exact ? kClean | kTailExact : kClean) : 0u, 4);
    std::memcpy(b.data() + kBootIdOffset, s.boot_id.data(),
                std::min(s.boot_id.size(), kBootIdBytes - 1));
    put_le(b.data() + kStateCrcOffset, crc32c(b.data(), kStateCrcOffset), 4);
    return b;
}

std::optional<State> decode_state(const unsigned char* b) {
    if (std::memcmp(b, kStateMagic, 4) != 0 || get_le(b + 4, 4) != kStateVersion)
        return std::nullopt;
    if (crc32c(b, kStateCrcOffset) != get_le(b + kStateCrcOffset, 4)) return std::nullopt;
    State s;
    s.gen = get_le(b + 8, 8);
    s.reserved = get_le(b + 16, 8);
    s.cursor = get_le(b + 24, 8);
    const std::uint32_t flags = get_u32(b + 40);
    s.clean = (flags & kClean) != 0;
    s.tail_exact = s.clean && (flags & kTailExact) != 0;
    (s.clean ? s.last_seq : s.newest_base) = get_le(b + 32, 8);
    const char* id = reinterpret_cast<const char*>(b + kBootIdOffset);
    s.boot_id.assign(id, strnlen(id, kBootIdBytes));
    return s;
}

std::optional<State> read_state_file(int fd, int& slot) {
    std::optional<State> best;
    slot = -1;
    for (int i = 0; i < 2; ++i) {
        unsigned char b[kStateSlotBytes];
        const ssize_t n = ::pread(fd, b, kStateSlotBytes, i * kStateSlotStride);
        if (n != static_cast<ssize_t>(kStateSlotBytes)) continue;
        std::optional<State> s = decode_state(b);
        if (s && (!best || s->gen > best->gen)) {
            best = std::move(s);
            slot = i;
        }
    }
    return best;
}

}  // namespace tg::outbox
