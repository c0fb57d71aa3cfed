// The record framing on its own: round trips, and the scanner fed every
// truncation point and every single-bit flip of a multi-record buffer must
// never crash and must recover exactly the intact records.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "layout1_fixture.h"
#include "outbox_record.h"

using namespace tg::outbox;
using tg::outbox::fixture::layout1_log;

namespace {

Record event(std::uint64_t seq, std::string payload = "") {
    Record r;
    r.seq = seq;
    r.qos = 1;
    r.destinations = {{"tidegate/gw/events/greenhouse/temp", false, false},
                      {"tidegate/gw/state/greenhouse/temp", true, true}};
    r.payload = payload.empty() ? R"({"v":1,"id":"gw:)" + std::to_string(seq) + R"(","seq":)" +
                                      std::to_string(seq) + R"(,"value":23.4})"
                                : payload;
    return r;
}

std::string log_of(std::uint64_t first, std::uint64_t n) {
    std::string out;
    for (std::uint64_t s = first; s < first + n; ++s)
        out += encode_record(event(s));
    return out;
}

const unsigned char* u(const std::string& s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

std::vector<std::uint64_t> seqs(const ScanResult& r) {
    std::vector<std::uint64_t> out;
    for (const RecordSpan& s : r.records)
        out.push_back(s.seq);
    return out;
}

}  // namespace

TEST_CASE("a record survives encode and decode unchanged", "[outbox]") {
    Record r = event(1042);
    r.qos = 0;
    r.destinations.push_back({"a/b", true});
    r.payload = std::string(
                    "{\"unit\":\"\xC2\xB0"
                    "C\",\"nul\":\"") +
                '\0' + "\"}";
    const std::string bytes = encode_record(r);
    CHECK(bytes.size() == encoded_size(r));
    CHECK(framed_size(u(bytes)) == bytes.size());

    Record back;
    CHECK(decode_record(u(bytes), bytes.size(), &back) == bytes.size());
    CHECK(back == r);
    CHECK(record_seq(u(bytes)) == 1042);

    Record none;
    none.seq = 7;
    none.destinations.clear();
    const std::string empty = encode_record(none);
    REQUIRE(decode_record(u(empty), empty.size(), &back) == empty.size());
    CHECK(back == none);
}

TEST_CASE("records written before layout 2 still read back exactly", "[outbox]") {
    const std::string old = layout1_log();
    const ScanResult r = scan_records(u(old), old.size());
    REQUIRE(seqs(r) == std::vector<std::uint64_t>{41, 42, 43});
    REQUIRE(r.damaged.empty());
    Record back;
    REQUIRE(decode_record(u(old) + r.records[0].offset, r.records[0].size, &back) != 0);
    Record expect = event(41);
    expect.destinations[1].latest_only = false;  // layout 1 has no such flag
    CHECK(back == expect);
    REQUIRE(decode_record(u(old) + r.records[2].offset, r.records[2].size, &back) != 0);
    CHECK(back.seq == 43);
    CHECK(back.qos == 0);
    CHECK(back.destinations == std::vector<Destination>{{"tidegate/gw/deadletter", false, false}});
    CHECK(back.payload == R"({"v":1,"seq":43})");

    // A log that continues in layout 2 after the upgrade reads as one.
    const std::string mixed = old + encode_record(event(44)) + encode_record(event(45));
    CHECK(seqs(scan_records(u(mixed), mixed.size())) ==
          std::vector<std::uint64_t>{41, 42, 43, 44, 45});
}

TEST_CASE("layout 2 stores a topic that shares its ends with the one before compactly",
          "[outbox]") {
    // Every way two topics can overlap, and none: each round trip is exact.
    const std::vector<std::pair<std::string, std::string>> pairs = {
        {"tidegate/gw/events/greenhouse/temp", "tidegate/gw/state/greenhouse/temp"},
        {"a/b/c", "a/b/c"},              // identical
        {"a/b", "a/b/c/d"},              // the first is a prefix of the second
        {"a/b/c/d", "a/b"},              // and the other way
        {"x/events/y", "events/y"},      // a suffix
        {"aaaa", "aaaaaaaa"},            // prefix and suffix would overlap
        {"one/topic", "another/thing"},  // nothing in common
        {"", "a/b"},
        {"a/b", ""},
        {std::string(300, 'p') + "/events/" + std::string(300, 's'),
         std::string(300, 'p') + "/state/" + std::string(300, 's')},  // longer than 255
    };
    for (const auto& [first, second] : pairs) {
        Record r;
        r.seq = 9;
        r.destinations = {{first, false, false}, {second, true, true}, {first, false, true}};
        r.payload = "{}";
        const std::string bytes = encode_record(r);
        INFO(first << " | " << second);
        CHECK(bytes.size() == encoded_size(r));
        Record back;
        REQUIRE(decode_record(u(bytes), bytes.size(), &back) == bytes.size());
        CHECK(back == r);
    }

    // A reading's two destinations: the state/ one costs 10 bytes.
    Record one = event(1);
    one.destinations.pop_back();
    CHECK(encoded_size(event(1)) - encoded_size(one) == 10);
}

TEST_CASE("a Record read into again reuses it without leftovers", "[outbox]") {
    Record three;
    three.seq = 1;
    three.destinations = {{"a/1", false, false}, {"a/2", true, true}, {"a/3", false, false}};
    three.payload = std::string(100, 'x');
    const std::string a = encode_record(three);
    const std::string b = encode_record(event(2));
    Record into;
    REQUIRE(decode_record(u(a), a.size(), &into) != 0);
    CHECK(into == three);
    REQUIRE(decode_record(u(b), b.size(), &into) != 0);
    CHECK(into == event(2));
}

TEST_CASE("encode_record rejects what the format cannot hold", "[outbox]") {
    Record r = event(1);
    r.qos = 3;
    CHECK_THROWS_AS(encode_record(r), std::invalid_argument);
    r.qos = 1;
    r.destinations.assign(256, {"t", false});
    CHECK_THROWS_AS(encode_record(r), std::invalid_argument);
    r.destinations = {{std::string(70000, 'x'), false}};
    CHECK_THROWS_AS(encode_record(r), std::invalid_argument);
}

TEST_CASE("every truncation point recovers exactly the intact prefix", "[outbox]") {
    const std::string full = log_of(1, 6);
    const ScanResult whole = scan_records(u(full), full.size());
    REQUIRE(seqs(whole) == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6});
    REQUIRE(whole.damaged.empty());

    for (std::size_t cut = 0; cut <= full.size(); ++cut) {
        const std::string part = full.substr(0, cut);
        const ScanResult r = scan_records(u(part), part.size());
        std::size_t complete = 0;
        while (complete < whole.records.size() &&
               whole.records[complete].offset + whole.records[complete].size <= cut)
            ++complete;
        INFO("cut at " << cut);
        REQUIRE(r.records.size() == complete);
        for (std::size_t i = 0; i < complete; ++i)
            REQUIRE(r.records[i].seq == i + 1);
        const std::size_t good_end =
            complete ? whole.records[complete - 1].offset + whole.records[complete - 1].size : 0;
        REQUIRE(r.good_end == good_end);
        if (cut == good_end) {
            REQUIRE(r.damaged.empty());
        } else {
            // The torn record: one damaged stretch, to the end.
            REQUIRE(r.damaged.size() == 1);
            REQUIRE(r.damaged[0].offset == good_end);
            REQUIRE(r.damaged[0].offset + r.damaged[0].size == cut);
            REQUIRE(r.damaged_records() == 1);
        }
    }
}

TEST_CASE("every truncation point of a log in both layouts recovers the intact prefix",
          "[outbox]") {
    const std::string full = layout1_log() + log_of(44, 2);
    const ScanResult whole = scan_records(u(full), full.size());
    REQUIRE(seqs(whole) == std::vector<std::uint64_t>{41, 42, 43, 44, 45});
    for (std::size_t cut = 0; cut <= full.size(); ++cut) {
        const ScanResult r = scan_records(u(full), cut);
        std::size_t complete = 0;
        while (complete < whole.records.size() &&
               whole.records[complete].offset + whole.records[complete].size <= cut)
            ++complete;
        INFO("cut at " << cut);
        REQUIRE(r.records.size() == complete);
        REQUIRE(r.damaged_records() == (r.good_end == cut ? 0u : 1u));
    }
}

TEST_CASE("every single-bit flip loses only the record it hits", "[outbox]") {
    // Layout 1 records, then layout 2 ones with shared and latest-only topics.
    const std::string full = layout1_log() + log_of(44, 3);
    const ScanResult whole = scan_records(u(full), full.size());
    REQUIRE(whole.records.size() == 6);

    for (std::size_t i = 0; i < full.size(); ++i) {
        std::size_t hit = 0;
        while (whole.records[hit].offset + whole.records[hit].size <= i)
            ++hit;
        for (int bit = 0; bit < 8; ++bit) {
            std::string damaged = full;
            damaged[i] = static_cast<char>(damaged[i] ^ (1 << bit));
            const ScanResult r = scan_records(u(damaged), damaged.size());
            std::vector<std::uint64_t> expect;
            for (std::size_t k = 0; k < whole.records.size(); ++k) {
                if (k != hit) expect.push_back(whole.records[k].seq);
            }
            INFO("byte " << i << " bit " << bit);
            REQUIRE(seqs(r) == expect);
            REQUIRE(r.damaged.size() == 1);
            REQUIRE(r.damaged[0].offset == whole.records[hit].offset);
            REQUIRE(r.damaged_records() == 1);
        }
    }
}

TEST_CASE("garbage before, between and after records is skipped", "[outbox]") {
    const std::string a = encode_record(event(1));
    const std::string b = encode_record(event(2));
    const std::string junk = "\xFFTG garbage \xFF\xFF\x01\x02";
    const std::string buf = junk + a + junk + b + junk;
    const ScanResult r = scan_records(u(buf), buf.size());
    CHECK(seqs(r) == std::vector<std::uint64_t>{1, 2});
    CHECK(r.damaged.size() == 3);
    CHECK(r.good_end == junk.size() * 2 + a.size() + b.size());
}

TEST_CASE("a valid record out of seq order counts as damage", "[outbox]") {
    const std::string buf =
        encode_record(event(5)) + encode_record(event(3)) + encode_record(event(6));
    const ScanResult r = scan_records(u(buf), buf.size());
    CHECK(seqs(r) == std::vector<std::uint64_t>{5, 6});
    CHECK(r.damaged_records() == 1);
    // And a floor from earlier segments applies to the first record too.
    const ScanResult floor = scan_records(u(buf), buf.size(), 5);
    CHECK(seqs(floor) == std::vector<std::uint64_t>{6});
}

TEST_CASE("a damaged length field cannot swallow the records after it", "[outbox]") {
    std::string buf = log_of(1, 3);
    const ScanResult whole = scan_records(u(buf), buf.size());
    // Claim the first body runs to the end of the buffer.
    const std::size_t huge = buf.size() - 12;
    for (int i = 0; i < 4; ++i)
        buf[4 + static_cast<std::size_t>(i)] = static_cast<char>((huge >> (8 * i)) & 0xFF);
    const ScanResult r = scan_records(u(buf), buf.size());
    CHECK(seqs(r) == std::vector<std::uint64_t>{2, 3});
    CHECK(r.records[0].offset == whole.records[1].offset);
    CHECK(framed_size(u(std::string(12, '\0'))) == 0);
}
