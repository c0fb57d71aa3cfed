// Reading a whole config, rule or credential file without trusting what sits
// at its path. A FIFO, a device or a socket there (or a symlink to one, such
// as /dev/zero) must never block the reader in open() or read() nor fill
// memory: only regular files are read, and only up to a bound.
#pragma once

#include <cstddef>
#include <string>

namespace tg {

// The most a config file, a rule file or a file a config names (password,
// TLS certificate) may hold; far above any real one.
inline constexpr std::size_t kMaxConfigFileBytes = std::size_t{4} << 20;

// Reads the regular file at `path` (symlinks followed) into `out`. On failure
// returns false with a one-line reason in `why`: the system's for a file that
// cannot be opened ("No such file or directory", "Is a directory"), "not a
// regular file but a FIFO (named pipe)" (or a character device, block device,
// socket), or "too large: more than 4 MiB". Never blocks on a FIFO or device:
// those are refused before they are opened, and a path swapped for one in
// between is opened non-blocking and refused by what the descriptor is.
bool read_regular_file(const std::string& path, std::size_t max_bytes, std::string& out,
                       std::string& why);

// "4 MiB", "512 KiB" or "100 bytes": a byte bound as messages show it.
std::string describe_byte_limit(std::size_t bytes);

}  // namespace tg
