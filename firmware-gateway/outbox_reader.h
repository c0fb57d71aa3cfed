// The outbox's segment files as files: their names, listing a folder of
// them, opening one safely and reading it in bounded blocks; and reading a
// whole log read-only for `tidegate replay`.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "outbox_record.h"

namespace tg {

struct LogReadStats {
    std::uint64_t records = 0;
    std::uint64_t corrupt_records = 0;
    std::uint64_t segments = 0;
};

// True when `path` is a folder holding segments directly or in outbox/ or
// journal/ (a data_dir).
bool is_log_folder(const std::string& path);

// Calls `fn` with every intact record of the segments in `folder`, in its
// journal/ and outbox/ subfolders when present (so DATA_DIR, DATA_DIR/journal
// and DATA_DIR/outbox all work), in seq order, each seq once. Read only:
// damage is skipped and counted, never repaired (an entry that is not a
// regular file counts once, unread); safe while the gateway runs (a record
// being written shows up as a damaged tail). Throws std::runtime_error when
// the folder cannot be read.
LogReadStats read_log(const std::string& folder,
                      const std::function<void(const outbox::Record&)>& fn);

namespace outbox {

// NNNNNNNNNNNNNNNNNNNN.seg: named by the first seq the segment was opened for.
std::string segment_name(std::uint64_t base);
std::optional<std::uint64_t> parse_segment_name(const std::string& name);

struct SegmentFile {
    std::uint64_t base;
    std::string path;
};

// The segment files of `dir`, sorted by base. With `clean_tmp`, removes the
// leftovers of an interrupted rewrite. Throws when `dir` cannot be listed.
std::vector<SegmentFile> list_segments(const std::string& dir, bool clean_tmp);

// The most a segment written with roll size `segment_bytes` can hold (see
// outbox.cpp); at least what the default roll size allows.
std::uint64_t max_segment_read(std::uint64_t segment_bytes);

// Reads an open file from its start, at most `limit` bytes, in 64 KiB blocks:
// never sized from st_size alone, so a file that grows or lies cannot take
// the memory. `size` gets the file's size. False (errno set) on a read error.
bool read_prefix(int fd, std::uint64_t limit, std::string& out, std::uint64_t& size);

// Opens `path` only when it is a regular file: a symbolic link is never
// followed (the outbox writes none), and a FIFO or device never blocks the
// open nor gets read. On failure returns -1 with errno; `not_file` then says
// what the entry is ("a directory", "a FIFO", …) when it exists but is not a
// regular file.
int open_regular(const std::string& path, int flags, std::string& not_file);

inline const unsigned char* bytes_of(const std::string& s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace outbox
}  // namespace tg
