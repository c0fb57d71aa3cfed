#include "outbox_record.h"

#include <cstring>
#include <stdexcept>

#include "core/crc32c.h"

namespace tg::outbox {
namespace {

void put_u16(std::string& out, std::uint16_t v) {
    out.push_back(static_cast<char>(v & 0xFFu));
    out.push_back(static_cast<char>(v >> 8));
}

void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}

void store_u32(char* at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        at[i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
}

std::uint16_t get_u16(const unsigned char* p) {
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

std::uint32_t get_u32(const unsigned char* p) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i)
        v = (v << 8) | p[i];
    return v;
}

std::uint64_t get_u64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = (v << 8) | p[i];
    return v;
}

std::size_t body_size(const Record& r) {
    std::size_t n = kMinBodyBytes + r.payload.size();
    for (const Destination& d : r.destinations)
        n += 2 + d.topic.size() + 1;
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
    if ((flags & ~0x03u) != 0 || (flags & 0x03u) == 3) return false;
    const unsigned ndest = b[pos++];
    if (out) {
        out->seq = seq;
        out->qos = static_cast<int>(flags & 0x03u);
        out->destinations.clear();
        out->destinations.reserve(ndest);
    }
    for (unsigned i = 0; i < ndest; ++i) {
        if (n - pos < 2) return false;
        const std::size_t len = get_u16(b + pos);
        pos += 2;
        if (n - pos < len + 1) return false;
        const unsigned dflags = b[pos + len];
        if ((dflags & ~0x01u) != 0) return false;
        if (out) {
            out->destinations.push_back(
                {std::string(reinterpret_cast<const char*>(b + pos), len), (dflags & 1u) != 0});
        }
        pos += len + 1;
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
    const std::size_t body = body_size(r);
    if (body > kMaxBodyBytes) throw std::invalid_argument("outbox record: larger than 16 MiB");

    std::string out;
    out.reserve(kHeaderBytes + body);
    out.append(reinterpret_cast<const char*>(kMarker), sizeof kMarker);
    put_u32(out, static_cast<std::uint32_t>(body));
    put_u32(out, 0);  // CRC, filled in below
    put_u64(out, r.seq);
    out.push_back(static_cast<char>(r.qos));
    out.push_back(static_cast<char>(r.destinations.size()));
    for (const Destination& d : r.destinations) {
        put_u16(out, static_cast<std::uint16_t>(d.topic.size()));
        out += d.topic;
        out.push_back(static_cast<char>(d.retain ? 1 : 0));
    }
    put_u32(out, static_cast<std::uint32_t>(r.payload.size()));
    out += r.payload;

    std::uint32_t crc = crc32c(out.data(), 8);
    crc = crc32c(out.data() + kHeaderBytes, body, crc);
    store_u32(out.data() + 8, crc);
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
