// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of iSCSI,
// ext4 metadata and many log formats. Chosen over CRC32 (zlib) because its
// error-detection properties are better for the record sizes we write, and it
// needs no external library. Software only: slicing-by-8 tables built at
// compile time, fast enough on a Cortex-A53 for the outbox's few MB/s.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tg {

// Extends `crc` (the value returned for the data before, 0 to start) with the
// next `size` bytes. crc32c(b, crc32c(a)) == crc32c(a + b).
std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0);

inline std::uint32_t crc32c(std::string_view s, std::uint32_t crc = 0) {
    return crc32c(s.data(), s.size(), crc);
}

// The plain one-byte-at-a-time algorithm; the reference the fast path is tested against.
std::uint32_t crc32c_bytewise(const void* data, std::size_t size, std::uint32_t crc = 0);

}  // namespace tg
