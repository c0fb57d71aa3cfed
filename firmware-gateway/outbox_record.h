// The outbox's record framing, as pure functions over byte buffers (no I/O),
// so recovery can be tested on every truncation point and bit flip in memory.
//
// A record on disk (integers little-endian):
//
//   offset  size  field
//   0       4     sync marker FF 54 47 52 ("\xFFTGR"); 0xFF never occurs in
//                 UTF-8, so JSON payloads cannot imitate it
//   4       4     body length N (bounded by kMaxBodyBytes)
//   8       4     CRC32C over bytes 0..7 followed by the body
//   12      N     body:
//                   u64 seq
//                   u8  flags: bits 0-1 MQTT QoS; bit 2 the destination layout
//                       (0: layout 1, 1: layout 2)
//                   u8  number of destinations D
//                   D destinations, in the layout of bit 2
//                   u32 payload length, payload bytes
//
//   layout 1 (written by tidegate 0.1.0): per destination
//                   u16 topic length, topic bytes, u8 flags (bit 0: retain)
//   layout 2 (written since): per destination
//                   u8  flags: bit 0 retain; bit 1 latest-only (Destination);
//                       bit 2 shared: the topic reuses the previous
//                       destination's first P and last S bytes
//                   u8 P, u8 S (only when shared)
//                   u16 length L, L bytes: the whole topic, or when shared
//                       what stands between those P and S bytes
//                 A reading's state/ topic shares all but "state" with its
//                 events/ topic: 10 bytes instead of 47 for a typical pair.
//
// Readers accept both layouts, so segments written before the upgrade are
// delivered as they are; tidegate 0.1.0 reads layout 2 records as damage
// (deliver or move the outbox away before a downgrade). A body must be
// consumed exactly; anything else is damage. After damage the reader
// resynchronises at the next sync marker whose record validates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tg::outbox {

inline constexpr unsigned char kMarker[4] = {0xFF, 'T', 'G', 'R'};
inline constexpr std::size_t kHeaderBytes = 12;
inline constexpr std::size_t kMinBodyBytes = 8 + 1 + 1 + 4;
inline constexpr std::size_t kMaxBodyBytes = 16u << 20;
inline constexpr std::size_t kMaxDestinations = 255;
inline constexpr std::size_t kMaxTopicBytes = 65535;

struct Destination {
    std::string topic;
    bool retain = false;
    // A read model (a sensor's retained state/ topic): only the latest value
    // matters, so this destination is skipped when a newer record of the log
    // carries the same topic, also latest-only (SPEC §3: state/ is "the
    // latest reading's envelope").
    bool latest_only = false;
    bool operator==(const Destination&) const = default;
};

// One event as stored: where it goes and what it says.
struct Record {
    std::uint64_t seq = 0;
    int qos = 1;
    std::vector<Destination> destinations;
    std::string payload;
    bool operator==(const Record&) const = default;
};

// The framed bytes of `r`, in layout 2. Throws std::invalid_argument when a field does not
// fit the format (more than 255 destinations, a topic over 64 KiB, a body over
// kMaxBodyBytes, qos outside 0..2).
std::string encode_record(const Record& r);

// Size of the framed record encode_record would produce.
std::size_t encoded_size(const Record& r);

// Validates the record starting at `p` (at most `avail` bytes available).
// Returns its framed size, or 0 when there is no intact record there (bad
// marker, length, CRC, body structure, or not enough bytes). Fills `out`
// when given (reusing its strings' storage: cheap for a Record read again
// and again).
std::size_t decode_record(const unsigned char* p, std::size_t avail, Record* out = nullptr);

// From the first kHeaderBytes bytes of a record: its framed size, or 0 when
// the marker or the length is wrong (the CRC is checked by decode_record).
std::size_t framed_size(const unsigned char* header);

// Reads just the seq of a record decode_record accepted.
std::uint64_t record_seq(const unsigned char* p);

struct RecordSpan {
    std::uint64_t seq = 0;
    std::size_t offset = 0;
    std::size_t size = 0;
};

// A stretch of bytes that held no intact record.
struct DamagedRange {
    std::size_t offset = 0;
    std::size_t size = 0;
    // Records lost in it, at least 1: the sync markers found inside (each was
    // probably the start of one), or 1 for plain garbage.
    std::uint64_t records = 1;
};

struct ScanResult {
    std::vector<RecordSpan> records;
    std::vector<DamagedRange> damaged;
    // Bytes up to the end of the last intact record: what survives when the
    // tail is cut.
    std::size_t good_end = 0;
    std::uint64_t damaged_records() const;
};

// Finds every intact record in `data`, in order. A record must also carry a
// seq above `after` and above the record before it: an out-of-order record is
// damage, so delivery order is always seq order.
ScanResult scan_records(const unsigned char* data, std::size_t size, std::uint64_t after = 0);

// Position of the next intact record with seq > `after`, searching sync
// markers from `from`; `size` when there is none.
std::size_t find_next_record(const unsigned char* data, std::size_t size, std::size_t from,
                             std::uint64_t after);

}  // namespace tg::outbox
