#include "outbox_record.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "core/crc32c.h"
#include "outbox_le.h"

namespace tg::outbox {
namespace {

constexpr unsigned kQosMask = 0x03u;
constexpr unsigned kLayout2 = 0x04u;  // record flags: destinations in layout 2
constexpr unsigned kRetain = 0x01u;
constexpr unsigned kLatestOnly = 0x02u;
constexpr unsigned kShared = 0x04u;  // layout 2: reuses the previous topic's ends

// How a layout 2 destination reuses the previous one's topic: its first
// `prefix` and last `suffix` bytes, with `middle` bytes of its own between.
struct Sharing {
    std::size_t prefix = 0;
    std::size_t suffix = 0;
    bool used() const { return prefix + suffix > 2; }  // P and S cost two bytes
};

Sharing sharing(const std::string& prev, const std::string& cur) {
    Sharing sh;
    const std::size_t most = std::min({prev.size(), cur.size(), std::size_t{255}});
    while (sh.prefix < most && prev[sh.prefix] == cur[sh.prefix])
        ++sh.prefix;
    const std::size_t rest =
        std::min({prev.size() - sh.prefix, cur.size() - sh.prefix, std::size_t{255}});
    while (sh.suffix < rest && prev[prev.size() - 1 - sh.suffix] == cur[cur.size() - 1 - sh.suffix])
        ++sh.suffix;
    return sh;
}

std::size_t body_size(const Record& r) {
    std::size_t n = kMinBodyBytes + r.payload.size();
    for (std::size_t i = 0; i < r.destinations.size(); ++i) {
        const std::string& topic = r.destinations[i].topic;
        const Sharing sh = i > 0 ? sharing(r.destinations[i - 1].topic, topic) : Sharing{};
        n += sh.used() ? 1 + 2 + 2 + topic.size() - sh.prefix - sh.suffix : 1 + 2 + topic.size();
    }
    return n;
}

bool is_marker(const unsigned char* p) {
    return std::memcmp(p, kMarker, sizeof kMarker) == 0;
}

// Walks the body's structure; fills `out` when given. False when the fields
// do not add up to exactly `n` bytes.
bool parse_body(const unsigned char* b, std::size_t n, Record* out) {
    if (n < kMinBodyBytes) return false;
    std::size_t pos = 0;
    const std::uint64_t seq = get_u64(b);
    pos += 8;
    const unsigned flags = b[pos++];
    if ((flags & ~(kQosMask | kLayout2)) != 0 || (flags & kQosMask) == 3) return false;
    const bool layout2 = (flags & kLayout2) != 0;
    const unsigned ndest = b[pos++];
    if (out) {
        out->seq = seq;
        out->qos = static_cast<int>(flags & kQosMask);
        // Kept, not cleared: the strings' storage serves the next record.
        out->destinations.resize(ndest);
    }
    std::size_t prev_len = 0;
    for (unsigned i = 0; i < ndest; ++i) {
        const char* text = nullptr;
        std::size_t len = 0;
        unsigned dflags = 0;
        Sharing sh;
        if (!layout2) {
            if (n - pos < 2) return false;
            len = get_u16(b + pos);
            pos += 2;
            if (n - pos < len + 1) return false;
            text = reinterpret_cast<const char*>(b + pos);
            dflags = b[pos + len];
            if ((dflags & ~kRetain) != 0) return false;
            pos += len + 1;
        } else {
            if (n - pos < 1) return false;
            dflags = b[pos++];
            if ((dflags & ~(kRetain | kLatestOnly | kShared)) != 0) return false;
            if ((dflags & kShared) != 0) {
                if (i == 0 || n - pos < 2) return false;
                sh.prefix = b[pos];
                sh.suffix = b[pos + 1];
                pos += 2;
                if (sh.prefix + sh.suffix > prev_len) return false;
            }
            if (n - pos < 2) return false;
            len = get_u16(b + pos);
            pos += 2;
            if (n - pos < len) return false;
            text = reinterpret_cast<const char*>(b + pos);
            pos += len;
        }
        const std::size_t topic_len = sh.prefix + len + sh.suffix;
        if (topic_len > kMaxTopicBytes) return false;
        if (out) {
            Destination& d = out->destinations[i];
            if (sh.prefix + sh.suffix > 0) {
                const std::string& prev = out->destinations[i - 1].topic;
                std::string topic;
                topic.reserve(topic_len);
                topic.append(prev, 0, sh.prefix).append(text, len);
                topic.append(prev, prev.size() - sh.suffix, sh.suffix);
                d.topic = std::move(topic);
            } else {
                d.topic.assign(text, len);
            }
            d.retain = (dflags & kRetain) != 0;
            d.latest_only = (dflags & kLatestOnly) != 0;
        }
        prev_len = topic_len;
    }
    if (n - pos < 4) return false;
    const std::size_t plen = get_u32(b + pos);
    pos += 4;
    if (n - pos != plen) return false;
    if (out) out->payload.assign(reinterpret_cast<const char*>(b + pos), plen);
    return true;
}

}  // namespace

std::size_t encoded_size(const Record& r) {
    return kHeaderBytes + body_size(r);
}

std::string encode_record(const Record& r) {
    if (r.qos < 0 || r.qos > 2) throw std::invalid_argument("outbox record: qos must be 0..2");
    if (r.destinations.size() > kMaxDestinations)
        throw std::invalid_argument("outbox record: more than 255 destinations");
    for (const Destination& d : r.destinations) {
        if (d.topic.size() > kMaxTopicBytes)
            throw std::invalid_argument("outbox record: topic longer than 65535 bytes");
    }
    // Room for the record without any sharing: one allocation.
    std::size_t most = kHeaderBytes + kMinBodyBytes + r.payload.size();
    for (const Destination& d : r.destinations)
        most += 5 + d.topic.size();
    std::string out;
    out.reserve(most);
    out.append(reinterpret_cast<const char*>(kMarker), sizeof kMarker);
    append_le(out, 0, 4);  // body length and CRC, filled in below
    append_le(out, 0, 4);
    append_le(out, r.seq, 8);
    out.push_back(static_cast<char>(static_cast<unsigned>(r.qos) | kLayout2));
    out.push_back(static_cast<char>(r.destinations.size()));
    for (std::size_t i = 0; i < r.destinations.size(); ++i) {
        const Destination& d = r.destinations[i];
        const Sharing sh = i > 0 ? sharing(r.destinations[i - 1].topic, d.topic) : Sharing{};
        unsigned dflags = (d.retain ? kRetain : 0u) | (d.latest_only ? kLatestOnly : 0u);
        if (sh.used()) {
            out.push_back(static_cast<char>(dflags | kShared));
            out.push_back(static_cast<char>(sh.prefix));
            out.push_back(static_cast<char>(sh.suffix));
            const std::size_t middle = d.topic.size() - sh.prefix - sh.suffix;
            append_le(out, middle, 2);
            out.append(d.topic, sh.prefix, middle);
        } else {
            out.push_back(static_cast<char>(dflags));
            append_le(out, d.topic.size(), 2);
            out += d.topic;
        }
    }
    append_le(out, r.payload.size(), 4);
    out += r.payload;
    const std::size_t body = out.size() - kHeaderBytes;
    if (body > kMaxBodyBytes) throw std::invalid_argument("outbox record: larger than 16 MiB");
    put_le(reinterpret_cast<unsigned char*>(out.data()) + 4, body, 4);

    std::uint32_t crc = crc32c(out.data(), 8);
    crc = crc32c(out.data() + kHeaderBytes, body, crc);
    put_le(reinterpret_cast<unsigned char*>(out.data()) + 8, crc, 4);
    return out;
}

std::size_t decode_record(const unsigned char* p, std::size_t avail, Record* out) {
    if (avail < kHeaderBytes + kMinBodyBytes || !is_marker(p)) return 0;
    const std::size_t n = get_u32(p + 4);
    if (n < kMinBodyBytes || n > kMaxBodyBytes || n > avail - kHeaderBytes) return 0;
    std::uint32_t crc = crc32c(p, 8);
    crc = crc32c(p + kHeaderBytes, n, crc);
    if (crc != get_u32(p + 8)) return 0;
    if (!parse_body(p + kHeaderBytes, n, out)) return 0;
    return kHeaderBytes + n;
}

std::size_t framed_size(const unsigned char* header) {
    if (!is_marker(header)) return 0;
    const std::size_t n = get_u32(header + 4);
    if (n < kMinBodyBytes || n > kMaxBodyBytes) return 0;
    return kHeaderBytes + n;
}

std::uint64_t record_seq(const unsigned char* p) {
    return get_u64(p + kHeaderBytes);
}

std::uint64_t ScanResult::damaged_records() const {
    std::uint64_t n = 0;
    for (const DamagedRange& d : damaged)
        n += d.records;
    return n;
}

std::size_t find_next_record(const unsigned char* data, std::size_t size, std::size_t from,
                             std::uint64_t after) {
    std::size_t pos = from;
    while (pos + kHeaderBytes <= size) {
        const void* hit = std::memchr(data + pos, kMarker[0], size - pos);
        if (!hit) break;
        pos = static_cast<std::size_t>(static_cast<const unsigned char*>(hit) - data);
        if (decode_record(data + pos, size - pos) && record_seq(data + pos) > after) return pos;
        ++pos;
    }
    return size;
}

ScanResult scan_records(const unsigned char* data, std::size_t size, std::uint64_t after) {
    ScanResult res;
    std::size_t pos = 0;
    std::uint64_t last = after;
    while (pos < size) {
        const std::size_t n = decode_record(data + pos, size - pos);
        if (n != 0 && record_seq(data + pos) > last) {
            last = record_seq(data + pos);
            res.records.push_back({last, pos, n});
            pos += n;
            res.good_end = pos;
            continue;
        }
        const std::size_t next = find_next_record(data, size, pos + 1, last);
        DamagedRange bad{pos, next - pos, 0};
        for (std::size_t i = pos; i + sizeof kMarker <= next; ++i) {
            if (is_marker(data + i)) ++bad.records;
        }
        if (bad.records == 0) bad.records = 1;
        res.damaged.push_back(bad);
        pos = next;
    }
    return res;
}

}  // namespace tg::outbox
