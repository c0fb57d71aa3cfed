// The outbox's state file: two slots a page apart (writing one never
// rewrites the page holding the other), each a versioned record with a
// generation and a CRC32C; the valid slot with the higher generation holds
// the state. See outbox.h for what the fields are for.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace tg::outbox {

struct State {
    std::uint64_t gen = 0;
    std::uint64_t reserved = 0;     // no seq above it was ever written
    std::uint64_t cursor = 0;       // every seq up to it delivered or dropped
    std::uint64_t last_seq = 0;     // when clean: the last seq handed out
    std::uint64_t newest_base = 0;  // when not clean: the newest segment's name
    bool clean = false;             // written by a clean close
    bool tail_exact = false;        // clean, and the log's last record is last_seq
    std::string boot_id;            // the kernel boot that wrote it
};

inline constexpr std::size_t kStateSlotBytes = 96;
inline constexpr off_t kStateSlotStride = 4096;

// The bytes of one slot holding `s` (boot ids longer than 47 bytes are cut).
std::array<unsigned char, kStateSlotBytes> encode_state(const State& s);

// The state in one slot's bytes; nullopt when the slot is not valid (magic,
// version or CRC).
std::optional<State> decode_state(const unsigned char* slot);

// Reads both slots of the state file `fd`: the newest valid state, and in
// `slot` which slot held it (-1 when none did).
std::optional<State> read_state_file(int fd, int& slot);

}  // namespace tg::outbox
