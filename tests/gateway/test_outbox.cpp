// Outbox: SPEC §7 on real files. A process crash is simulated by destroying
// the Outbox without close() (only its descriptors close, as with SIGKILL); a
// power cut by also cutting the log's tail and opening with another boot id.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>

#include "config.h"
#include "layout1_fixture.h"
#include "outbox.h"

using namespace tg;
using namespace std::chrono_literals;
using outbox::Record;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/tidegate-outbox-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

OutboxOptions options(const std::string& dir, const std::string& boot = "boot-a") {
    OutboxOptions o;
    o.data_dir = dir;
    o.boot_id = boot;
    o.segment_bytes = 1024;
    o.max_bytes = 1 << 20;
    o.reserve_block = 16;
    return o;
}

Record event(std::uint64_t seq, int qos = 1) {
    Record r;
    r.seq = seq;
    r.qos = qos;
    r.destinations = {{"tidegate/gw/events/greenhouse/temp", false},
                      {"tidegate/gw/state/greenhouse/temp", true}};
    r.payload =
        R"({"v":1,"id":"gw:)" + std::to_string(seq) + R"(","seq":)" + std::to_string(seq) + "}";
    return r;
}

// Appends n events; returns the last seq.
std::uint64_t append_n(Outbox& o, int n) {
    std::uint64_t last = 0;
    for (int i = 0; i < n; ++i) {
        const AppendResult res = o.append(event(o.next_seq()));
        REQUIRE(res.stored);
        last = res.seq;
    }
    return last;
}

// Takes every unsent record (acking each when asked); returns their seqs.
std::vector<std::uint64_t> drain(Outbox& o, bool ack = true) {
    std::vector<std::uint64_t> seqs;
    Record r;
    while (o.next_unsent(r)) {
        REQUIRE(r == event(r.seq, r.qos));
        seqs.push_back(r.seq);
        if (ack) REQUIRE(o.ack(r.seq));
    }
    return seqs;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
    std::vector<std::uint64_t> v;
    for (std::uint64_t s = first; s <= last; ++s)
        v.push_back(s);
    return v;
}

std::vector<std::string> files_in(const std::string& dir, const std::string& ext) {
    std::vector<std::string> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator(); ++it) {
        if (it->path().extension() == ext) out.push_back(it->path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void spit(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
}

outbox::ScanResult scan_file(const std::string& path) {
    const std::string data = slurp(path);
    return outbox::scan_records(reinterpret_cast<const unsigned char*>(data.data()), data.size());
}

std::uint64_t total(const std::vector<DropReport>& drops) {
    std::uint64_t n = 0;
    for (const DropReport& d : drops)
        n += d.count;
    return n;
}

const MonoTime t0 = MonoTime{} + 1h;

}  // namespace

TEST_CASE("appended records read back in order, exactly", "[outbox]") {
    TempDir d;
    Outbox o(options(d.path));
    o.open();
    CHECK(o.resumed() == Outbox::Resume::Fresh);
    CHECK(o.next_seq() == 1);

    Record a = event(1);
    Record b = event(2, 0);
    b.destinations = {{"tidegate/gw/deadletter", false}};
    Record c = event(3);
    c.payload = std::string(3000, 'x');  // larger than a segment: gets one of its own
    CHECK(o.append(a).stored);
    CHECK(o.append(b).stored);
    CHECK(o.append(c).stored);
    CHECK(o.next_seq() == 4);
    CHECK(o.stats().depth == 3);
    CHECK(o.stats().appended == 3);

    Record r;
    REQUIRE(o.next_unsent(r));
    CHECK(r == a);
    REQUIRE(o.next_unsent(r));
    CHECK(r == b);
    REQUIRE(o.next_unsent(r));
    CHECK(r == c);
    CHECK_FALSE(o.next_unsent(r));
    CHECK(o.in_flight() == 3);

    CHECK_THROWS_AS(o.append(event(7)), std::logic_error);
    o.close();
}

TEST_CASE("seq is consecutive across close and open, even across a reboot", "[outbox]") {
    TempDir d;
    {
        Outbox o(options(d.path, "boot-a"));
        o.open();
        CHECK(append_n(o, 40) == 40);  // crosses two reservation blocks
        o.close();
    }
    {
        Outbox o(options(d.path, "boot-b"));
        o.open();
        CHECK(o.resumed() == Outbox::Resume::Clean);
        CHECK(o.next_seq() == 41);
        CHECK(drain(o) == range(1, 40));  // none was acked before
        append_n(o, 2);
        o.close();
    }
    Outbox o(options(d.path, "boot-b"));
    o.open();
    CHECK(o.resumed() == Outbox::Resume::Clean);
    CHECK(o.next_seq() == 43);
    CHECK(drain(o) == range(41, 42));
}

TEST_CASE("a process crash loses nothing and continues exactly", "[outbox]") {
    TempDir d;
    {
        Outbox o(options(d.path, "boot-a"));
        o.open();
        append_n(o, 37);
        // no close(), no sync: only the page cache has the data (SIGKILL)
    }
    Outbox o(options(d.path, "boot-a"));
    o.open();
    CHECK(o.resumed() == Outbox::Resume::Crash);
    CHECK(o.next_seq() == 38);
    CHECK(o.stats().depth == 37);
    CHECK(o.stats().corrupt_records == 0);
    CHECK(drain(o) == range(1, 37));
}

TEST_CASE("after a power cut seq jumps past every seq ever handed out", "[outbox]") {
    TempDir d;
    std::uint64_t handed_out = 0;
    {
        Outbox o(options(d.path, "boot-a"));
        o.open();
        handed_out = append_n(o, 45);  // reservations of 16: up to 48 reserved
    }
    // The power cut took the unsynced tail: the last segment loses half its
    // bytes, mid-record, and the newest segment file vanished altogether.
    const auto segs = files_in(d.path + "/outbox", ".seg");
    REQUIRE(segs.size() >= 3);
    fs::remove(segs.back());
    const std::string& last = segs[segs.size() - 2];
    fs::resize_file(last, fs::file_size(last) / 2 + 3);

    Outbox o(options(d.path, "boot-b"));
    o.open();
    CHECK(o.resumed() == Outbox::Resume::Reboot);
    CHECK(o.stats().corrupt_records == 1);  // the torn record
    const std::uint64_t next = o.next_seq();
    CHECK(next > handed_out);
    CHECK(next <= handed_out + 16 + 1);

    // What survived is still delivered, then the new events after the gap.
    const auto survivors = static_cast<std::size_t>(o.stats().depth);  // an index (32-bit too)
    CHECK(survivors < 45);
    append_n(o, 2);
    const auto seqs = drain(o);
    REQUIRE(seqs.size() == survivors + 2);
    CHECK(seqs.front() == 1);
    CHECK(seqs[survivors - 1] == survivors);
    CHECK(seqs[survivors] == next);
    CHECK(seqs[survivors + 1] == next + 1);
}

TEST_CASE("a reboot after a crash in the same boot still never reuses a seq", "[outbox]") {
    TempDir d;
    {
        Outbox o(options(d.path, "boot-a"));
        o.open();
        append_n(o, 10);
    }
    {
        Outbox o(options(d.path, "boot-a"));
        o.open();
        CHECK(o.resumed() == Outbox::Resume::Crash);
        append_n(o, 10);  // 11..20
    }
    Outbox o(options(d.path, "boot-c"));
    o.open();
    CHECK(o.resumed() == Outbox::Resume::Reboot);
    CHECK(o.next_seq() > 20);
}

TEST_CASE("without a readable state, seq continues after a gap", "[outbox]") {
    TempDir d;
    {
        Outbox o(options(d.path));
        o.open();
        append_n(o, 5);
    }
    fs::remove(d.path + "/outbox/state");
    Outbox o(options(d.path));
    o.open();
    CHECK(o.resumed() == Outbox::Resume::Unknown);
    CHECK(o.next_seq() == 6 + 2 * 16);
    CHECK(drain(o) == range(1, 5));
}

TEST_CASE("a floor from an older seq counter is honoured", "[outbox]") {
    TempDir d;
    OutboxOptions opt = options(d.path);
    opt.min_next_seq = 5000;
    Outbox o(opt);
    o.open();
    CHECK(o.next_seq() == 5000);
    CHECK(o.append(event(5000)).stored);
}

TEST_CASE("a restart resends only the unacknowledged window", "[outbox]") {
    TempDir d;
    {
        Outbox o(options(d.path));
        o.open();
        append_n(o, 20);
        Record r;
        for (int i = 0; i < 20; ++i)
            REQUIRE(o.next_unsent(r));
        for (std::uint64_t s = 1; s <= 12; ++s)
            REQUIRE(o.ack(s));
        CHECK(o.cursor() == 12);
        CHECK(o.stats().depth == 8);
        o.sync_if_due(t0);  // the loop turn writes the cursor
        for (std::uint64_t s = 13; s <= 14; ++s)
            REQUIRE(o.ack(s));
        o.sync_if_due(t0 + 1ms);  // and again on the next turn, long before an interval
        for (std::uint64_t s = 15; s <= 16; ++s)
            REQUIRE(o.ack(s));
        o.sync_if_due(t0 + 2ms);
        // crash
    }
    {
        Outbox o(options(d.path));
        o.open();
        CHECK(o.cursor() == 16);
        CHECK(o.stats().depth == 4);
        Record r;
        REQUIRE(o.next_unsent(r));
        CHECK(r.seq == 17);
        REQUIRE(o.ack(17));
        o.close();  // a clean close makes the cursor durable too
    }
    Outbox o(options(d.path));
    o.open();
    CHECK(o.cursor() == 17);
    CHECK(drain(o) == range(18, 20));
}

TEST_CASE("acks not yet committed are resent after a crash: duplicates, no loss", "[outbox]") {
    TempDir d;
    {
        Outbox o(options(d.path));
        o.open();
        append_n(o, 6);
        drain(o);  // all acked, but no sync_if_due before the crash
    }
    Outbox o(options(d.path));
    o.open();
    CHECK(drain(o) == range(1, 6));
}

TEST_CASE("out-of-order acks move the cursor over the acknowledged prefix", "[outbox]") {
    TempDir d;
    Outbox o(options(d.path));
    o.open();
    append_n(o, 10);
    CHECK(drain(o, false) == range(1, 10));
    CHECK(o.in_flight() == 10);

    CHECK(o.ack(3));
    CHECK(o.ack(2));
    CHECK(o.ack(5));
    CHECK(o.cursor() == 0);
    CHECK(o.in_flight() == 7);
    CHECK(o.ack(1));
    CHECK(o.cursor() == 3);
    CHECK(o.ack(4));
    CHECK(o.cursor() == 5);
    CHECK_FALSE(o.ack(4));   // already acked
    CHECK_FALSE(o.ack(2));   // behind the cursor
    CHECK_FALSE(o.ack(99));  // never sent
    for (std::uint64_t s : {10, 9, 8, 7})
        CHECK(o.ack(s));
    CHECK(o.cursor() == 5);
    CHECK(o.ack(6));
    CHECK(o.cursor() == 10);
    CHECK(o.in_flight() == 0);
    CHECK(o.stats().depth == 0);
    CHECK(o.stats().acked == 10);
}

TEST_CASE("rewind resends the unacknowledged records first, in order", "[outbox]") {
    TempDir d;
    Outbox o(options(d.path));
    o.open();
    append_n(o, 6);
    Record r;
    for (int i = 0; i < 6; ++i)
        REQUIRE(o.next_unsent(r));
    CHECK(o.ack(2));
    CHECK(o.ack(4));
    o.rewind_unacked();  // the connection was lost
    CHECK(o.in_flight() == 0);
    append_n(o, 1);  // 7 arrives meanwhile

    std::vector<std::uint64_t> sent;
    while (o.next_unsent(r))
        sent.push_back(r.seq);
    CHECK(sent == std::vector<std::uint64_t>{1, 3, 5, 6, 7});
    CHECK(o.in_flight() == 5);
    // A late ack from the old connection still counts.
    CHECK(o.ack(1));
    CHECK(o.cursor() == 2);
    for (std::uint64_t s : {3, 5, 6, 7})
        CHECK(o.ack(s));
    CHECK(o.cursor() == 7);
}

// A reading as the gateway stores it: events/ and the latest-only state/.
Record reading(std::uint64_t seq, const std::string& sensor) {
    Record r;
    r.seq = seq;
    r.destinations = {{"tidegate/gw/events/" + sensor, false, false},
                      {"tidegate/gw/state/" + sensor, true, true}};
    r.payload = R"({"seq":)" + std::to_string(seq) + "}";
    return r;
}

// seq -> the topics next_unsent gives for it, for every unsent record.
std::map<std::uint64_t, std::vector<std::string>> send_all(Outbox& o, bool ack = true) {
    std::map<std::uint64_t, std::vector<std::string>> out;
    Record r;
    while (o.next_unsent(r)) {
        for (const outbox::Destination& dest : r.destinations)
            out[r.seq].push_back(dest.topic);
        if (r.destinations.empty()) out[r.seq];
        if (ack) REQUIRE(o.ack(r.seq));
    }
    return out;
}

TEST_CASE("a backlog sends each read-model topic only with its newest record", "[outbox]") {
    TempDir d;
    OutboxOptions opt = options(d.path);
    opt.segment_bytes = 256;  // the backlog spans several segments
    const std::string ev = "tidegate/gw/events/", st = "tidegate/gw/state/";
    using Sent = std::map<std::uint64_t, std::vector<std::string>>;
    {
        Outbox o(opt);
        o.open();
        for (const char* sensor : {"a", "b", "a", "a", "b"})
            REQUIRE(o.append(reading(o.next_seq(), sensor)).stored);
        Record dead;  // no read model: always sent
        dead.seq = o.next_seq();
        dead.destinations = {{"tidegate/gw/deadletter", false, false}};
        dead.payload = "{}";
        REQUIRE(o.append(dead).stored);

        // Every event reaches events/; state/ only the newest of each sensor.
        CHECK(send_all(o, false) == Sent{{1, {ev + "a"}},
                                         {2, {ev + "b"}},
                                         {3, {ev + "a"}},
                                         {4, {ev + "a", st + "a"}},
                                         {5, {ev + "b", st + "b"}},
                                         {6, {"tidegate/gw/deadletter"}}});
        CHECK(o.stats().superseded == 3);
        // Resent after a lost connection: the same.
        o.rewind_unacked();
        REQUIRE(o.append(reading(o.next_seq(), "a")).stored);  // 7 supersedes 4's state
        const Sent again = send_all(o);
        CHECK(again.at(4) == std::vector<std::string>{ev + "a"});
        CHECK(again.at(5) == std::vector<std::string>{ev + "b", st + "b"});
        CHECK(again.at(7) == std::vector<std::string>{ev + "a", st + "a"});

        // Live, with nothing newer: both destinations.
        REQUIRE(o.append(reading(o.next_seq(), "b")).stored);
        CHECK(send_all(o) == Sent{{8, {ev + "b", st + "b"}}});
        for (const char* sensor : {"c", "c", "d"})
            REQUIRE(o.append(reading(o.next_seq(), sensor)).stored);
        o.close();
    }
    // The index is rebuilt from the log at open.
    Outbox o(opt);
    o.open();
    CHECK(send_all(o) ==
          Sent{{9, {ev + "c"}}, {10, {ev + "c", st + "c"}}, {11, {ev + "d", st + "d"}}});
}

TEST_CASE("an outbox written by tidegate 0.1.0 is delivered after the upgrade", "[outbox]") {
    TempDir d;
    fs::create_directories(d.path + "/outbox");
    spit(d.path + "/outbox/00000000000000000041.seg", outbox::fixture::layout1_log());
    Outbox o(options(d.path));
    o.open();
    CHECK(o.stats().corrupt_records == 0);
    CHECK(o.stats().depth == 3);
    // Layout 1 knows no latest-only flag: every destination is sent.
    CHECK(send_all(o) ==
          std::map<std::uint64_t, std::vector<std::string>>{
              {41, {"tidegate/gw/events/greenhouse/temp", "tidegate/gw/state/greenhouse/temp"}},
              {42, {"tidegate/gw/events/greenhouse/temp", "tidegate/gw/state/greenhouse/temp"}},
              {43, {"tidegate/gw/deadletter"}}});
    // New records follow in layout 2; replay reads both.
    const std::uint64_t next = o.next_seq();
    REQUIRE(o.append(reading(next, "greenhouse/temp")).stored);
    std::vector<std::uint64_t> replayed;
    read_log(d.path, [&](const Record& r) { replayed.push_back(r.seq); });
    CHECK(replayed == std::vector<std::uint64_t>{41, 42, 43, next});
}

TEST_CASE("delivered segments are deleted; QoS 0 records go when sent", "[outbox]") {
    TempDir d;
    Outbox o(options(d.path));
    o.open();
    for (int i = 0; i < 60; ++i)
        REQUIRE(o.append(event(o.next_seq(), 0)).stored);
    REQUIRE(files_in(d.path + "/outbox", ".seg").size() > 3);
    Record r;
    while (o.next_unsent(r)) {
        CHECK(r.qos == 0);
        o.ack(r.seq);  // handed to the client: done
    }
    CHECK(o.stats().depth == 0);
    CHECK(o.stats().bytes == 0);
    // Only the active segment is left, and no journal without retain_bytes.
    CHECK(files_in(d.path + "/outbox", ".seg").size() == 1);
    CHECK(files_in(d.path + "/journal", ".seg").empty());
}

TEST_CASE("a torn tail is cut, counted and moved aside", "[outbox]") {
    TempDir d;
    {
        Outbox o(options(d.path));
        o.open();
        append_n(o, 5);
        o.close();
    }
    const auto segs = files_in(d.path + "/outbox", ".seg");
    REQUIRE(segs.size() == 1);
    const auto spans = scan_file(segs[0]).records;
    REQUIRE(spans.size() == 5);
    const std::size_t cut = spans[4].offset + spans[4].size / 2;
    const std::string torn = slurp(segs[0]).substr(spans[4].offset, cut - spans[4].offset);
    fs::resize_file(segs[0], cut);

    Outbox o(options(d.path));
    o.open();
    CHECK(o.stats().corrupt_records == 1);
    CHECK(fs::file_size(segs[0]) == spans[4].offset);
    const auto aside = files_in(d.path + "/outbox/corrupt", ".bad");
    REQUIRE(aside.size() == 1);
    CHECK(slurp(aside[0]) == torn);
    CHECK(o.next_seq() == 6);  // the clean close said 5 were handed out
    CHECK(drain(o) == range(1, 4));
    append_n(o, 1);
    CHECK(drain(o) == range(6, 6));
}

TEST_CASE("open recovers the intact prefix at every truncation point", "[outbox]") {
    TempDir d;
    {
        Outbox o(options(d.path));
        o.open();
        append_n(o, 3);
        o.close();
    }
    const std::string seg = files_in(d.path + "/outbox", ".seg").at(0);
    const std::string full = slurp(seg);
    const auto spans = scan_file(seg).records;
    REQUIRE(spans.size() == 3);
    const std::string state = slurp(d.path + "/outbox/state");
    for (std::size_t cut = 0; cut <= full.size(); ++cut) {
        spit(seg, full.substr(0, cut));
        spit(d.path + "/outbox/state", state);
        std::size_t intact = 0;
        while (intact < 3 && spans[intact].offset + spans[intact].size <= cut)
            ++intact;
        const bool torn = intact < 3 && cut > (intact ? spans[intact].offset : 0);
        Outbox o(options(d.path));
        o.open();
        INFO("cut at " << cut);
        REQUIRE(o.stats().depth == intact);
        REQUIRE(o.stats().corrupt_records == (torn ? 1u : 0u));
        REQUIRE(o.next_seq() == 4);
        REQUIRE(drain(o, false) == range(1, intact));
    }
}

TEST_CASE("damage mid-segment loses only that record", "[outbox]") {
    TempDir d;
    OutboxOptions opt = options(d.path);
    opt.segment_bytes = 2048;
    {
        Outbox o(opt);
        o.open();
        append_n(o, 60);
        o.close();
    }
    const auto segs = files_in(d.path + "/outbox", ".seg");
    REQUIRE(segs.size() >= 3);
    const auto spans = scan_file(segs[0]).records;
    REQUIRE(spans.size() >= 5);
    const std::uint64_t lost = spans[2].seq;
    std::string data = slurp(segs[0]);
    data[spans[2].offset + spans[2].size / 2] ^= 0x10;  // one flipped bit in the payload
    spit(segs[0], data);

    {
        Outbox o(opt);
        o.open();
        CHECK(o.stats().corrupt_records == 1);
        CHECK(o.stats().depth == 59);
        std::vector<std::uint64_t> expect = range(1, 60);
        expect.erase(std::find(expect.begin(), expect.end(), lost));
        CHECK(drain(o, false) == expect);
        CHECK(files_in(d.path + "/outbox/corrupt", ".bad").size() == 1);
    }
    // The segment was rewritten without the damage: found no second time.
    Outbox o(opt);
    o.open();
    CHECK(o.stats().corrupt_records == 0);
    CHECK(o.stats().depth == 59);
}

TEST_CASE("a damaged marker or length in mid-segment is resynchronised", "[outbox]") {
    TempDir d;
    {
        Outbox o(options(d.path));
        o.open();
        append_n(o, 6);
        o.close();
    }
    const auto segs = files_in(d.path + "/outbox", ".seg");
    REQUIRE(segs.size() == 1);
    const auto spans = scan_file(segs[0]).records;
    std::string data = slurp(segs[0]);
    data[spans[1].offset] = 'X';         // marker of seq 2
    data[spans[3].offset + 5] = '\x7F';  // length of seq 4: absurdly large
    spit(segs[0], data);

    Outbox o(options(d.path));
    o.open();
    CHECK(o.stats().corrupt_records == 2);
    CHECK(drain(o) == std::vector<std::uint64_t>{1, 3, 5, 6});
}

TEST_CASE("garbage after the last record is cut and appending continues", "[outbox]") {
    TempDir d;
    {
        Outbox o(options(d.path));
        o.open();
        append_n(o, 3);
        o.close();
    }
    const auto segs = files_in(d.path + "/outbox", ".seg");
    std::mt19937 rng(7);
    std::string junk(300, '\0');
    for (char& c : junk)
        c = static_cast<char>(rng());
    {
        std::ofstream out(segs.back(), std::ios::binary | std::ios::app);
        out << junk;
    }
    {
        Outbox o(options(d.path));
        o.open();
        CHECK(o.stats().corrupt_records >= 1);
        append_n(o, 2);
        CHECK(drain(o, false) == range(1, 5));
    }
    Outbox o(options(d.path));
    o.open();
    CHECK(o.stats().corrupt_records == 0);
    CHECK(drain(o) == range(1, 5));
}

TEST_CASE("empty and zero-length segments do not disturb the log", "[outbox]") {
    TempDir d;
    {
        Outbox o(options(d.path));
        o.open();
        append_n(o, 30);  // several segments
    }
    auto segs = files_in(d.path + "/outbox", ".seg");
    REQUIRE(segs.size() >= 3);
    // A middle segment emptied (e.g. zeroed by a failing card) and a stray
    // empty newest one named for seq 70.
    const auto mid = scan_file(segs[1]).records;
    const auto third = scan_file(segs[2]).records;
    fs::resize_file(segs[1], 0);
    spit(d.path + "/outbox/00000000000000000070.seg", "");

    Outbox o(options(d.path));
    o.open();
    CHECK(o.resumed() == Outbox::Resume::Crash);
    CHECK(o.next_seq() == 70);  // an empty newest segment is named for its first seq
    // The emptied middle one is gone; the segment after it took the name of
    // the seq after the hole, so the loss is reported once.
    CHECK_FALSE(fs::exists(segs[2]));
    REQUIRE_FALSE(scan_file(segs[1]).records.empty());
    CHECK(scan_file(segs[1]).records.front().seq == third.front().seq);
    // Lost: the emptied segment's events, and by its name the stray newest
    // segment was opened for seq 70, so seqs 31..69 were used and are gone.
    CHECK(o.stats().lost_records == mid.size() + 39);
    const auto seqs = drain(o);
    CHECK(seqs.size() == 30 - mid.size());
    CHECK(std::is_sorted(seqs.begin(), seqs.end()));
    CHECK(std::find(seqs.begin(), seqs.end(), mid.front().seq) == seqs.end());
    append_n(o, 1);
    CHECK(drain(o) == range(70, 70));
}

TEST_CASE("max_bytes drops whole oldest segments, counted exactly", "[outbox]") {
    TempDir d;
    OutboxOptions opt = options(d.path);
    opt.max_bytes = 4096;  // segments of 1024: about eight records each
    Outbox o(opt);
    o.open();

    std::vector<DropReport> drops;
    for (int i = 0; i < 200; ++i) {
        AppendResult res = o.append(event(o.next_seq()));
        REQUIRE(res.stored);
        for (const DropReport& dr : res.drops) {
            CHECK(dr.reason == DropReason::OutboxFull);
            CHECK(dr.count > 0);
            CHECK(dr.last_seq >= dr.first_seq);
            drops.push_back(dr);
        }
        REQUIRE(o.stats().bytes <= opt.max_bytes);
    }
    REQUIRE_FALSE(drops.empty());
    const Outbox::Stats st = o.stats();
    CHECK(st.dropped == total(drops));
    CHECK(st.depth + st.dropped == 200);

    // Drops are the oldest, in order, with no overlap; what is left is the
    // newest events without a hole.
    std::uint64_t expect_first = 1;
    for (const DropReport& dr : drops) {
        CHECK(dr.first_seq == expect_first);
        CHECK(dr.count == dr.last_seq - dr.first_seq + 1);
        expect_first = dr.last_seq + 1;
    }
    CHECK(drain(o) == range(expect_first, 200));
}

TEST_CASE("drops skip what is in flight; its late acks are harmless", "[outbox]") {
    TempDir d;
    OutboxOptions opt = options(d.path);
    opt.max_bytes = 4096;
    Outbox o(opt);
    o.open();
    append_n(o, 10);
    Record r;
    for (int i = 0; i < 5; ++i)
        REQUIRE(o.next_unsent(r));
    CHECK(o.ack(1));
    std::uint64_t dropped = 0;
    while (dropped == 0) {
        dropped += total(o.append(event(o.next_seq())).drops);
    }
    CHECK(o.cursor() > 5);
    CHECK(o.in_flight() == 0);
    CHECK_FALSE(o.ack(3));  // was in flight, now dropped
    CHECK(o.stats().dropped == dropped);
    const auto rest = drain(o);
    REQUIRE_FALSE(rest.empty());
    CHECK(rest.front() == 1 + 1 + dropped);  // 1 acked, then `dropped` gone
}

TEST_CASE("an event bigger than max_bytes is reported, not stored", "[outbox]") {
    TempDir d;
    OutboxOptions opt = options(d.path);
    opt.max_bytes = 4096;
    Outbox o(opt);
    o.open();
    append_n(o, 2);
    Record big = event(3);
    big.payload.assign(5000, 'x');
    const AppendResult res = o.append(big);
    CHECK_FALSE(res.stored);
    REQUIRE(res.drops.size() == 1);
    CHECK(res.drops[0].first_seq == 3);
    CHECK(res.drops[0].count == 1);
    CHECK(o.next_seq() == 4);  // the seq is spent
    CHECK(o.stats().depth == 2);
    CHECK(o.stats().dropped == 1);
}

TEST_CASE("delivered segments are kept as a journal within retain_bytes", "[outbox]") {
    TempDir d;
    OutboxOptions opt = options(d.path);
    opt.retain_bytes = 3000;
    Outbox o(opt);
    o.open();
    append_n(o, 100);
    drain(o);
    append_n(o, 5);  // undelivered

    const auto journal = files_in(d.path + "/journal", ".seg");
    REQUIRE_FALSE(journal.empty());
    std::uint64_t bytes = 0;
    for (const auto& f : journal)
        bytes += fs::file_size(f);
    CHECK(bytes <= opt.retain_bytes);
    CHECK(bytes > opt.retain_bytes - 1024);  // oldest removed only beyond the bound
    CHECK(o.stats().journal_bytes == bytes);

    // Replay reads the journal in seq order: a contiguous run ending before
    // the outbox's own segments begin.
    std::vector<std::uint64_t> seqs;
    std::vector<std::string> payloads;
    const LogReadStats st = read_log(d.path + "/journal", [&](const Record& r) {
        seqs.push_back(r.seq);
        payloads.push_back(r.payload);
    });
    CHECK(st.corrupt_records == 0);
    REQUIRE_FALSE(seqs.empty());
    CHECK(seqs == range(seqs.front(), seqs.back()));
    CHECK(payloads.front() == event(seqs.front()).payload);
    CHECK(seqs.front() > 1);

    // The whole data_dir: journal, then delivered-but-kept and undelivered.
    std::vector<std::uint64_t> all;
    read_log(d.path, [&](const Record& r) { all.push_back(r.seq); });
    CHECK(all == range(seqs.front(), 105));
    CHECK(is_log_folder(d.path));
    CHECK(is_log_folder(d.path + "/journal"));
    CHECK_FALSE(is_log_folder(d.path + "/outbox/corrupt"));
}

TEST_CASE("journal retention applies at open when the bound shrinks", "[outbox]") {
    TempDir d;
    OutboxOptions opt = options(d.path);
    opt.retain_bytes = 8000;
    {
        Outbox o(opt);
        o.open();
        append_n(o, 100);
        drain(o);
        o.close();
    }
    opt.retain_bytes = 0;
    Outbox o(opt);
    o.open();
    CHECK(files_in(d.path + "/journal", ".seg").empty());
    CHECK(o.stats().journal_bytes == 0);
}

TEST_CASE("read_log skips damage and reports it", "[outbox]") {
    TempDir d;
    {
        Outbox o(options(d.path));
        o.open();
        append_n(o, 4);
        o.close();
    }
    const auto segs = files_in(d.path + "/outbox", ".seg");
    {
        std::ofstream out(segs.back(), std::ios::binary | std::ios::app);
        out << "\xFFTGR partial";
    }
    std::vector<std::uint64_t> seqs;
    const LogReadStats st =
        read_log(d.path + "/outbox", [&](const Record& r) { seqs.push_back(r.seq); });
    CHECK(seqs == range(1, 4));
    CHECK(st.corrupt_records == 1);
    CHECK(st.records == 4);
    CHECK_THROWS_AS(read_log(d.path + "/missing", [](const Record&) {}), std::runtime_error);
}

TEST_CASE("damage appearing after start-up is skipped when sending", "[outbox]") {
    TempDir d;
    Outbox o(options(d.path));
    o.open();
    append_n(o, 5);
    const auto segs = files_in(d.path + "/outbox", ".seg");
    const auto spans = scan_file(segs[0]).records;
    std::string data = slurp(segs[0]);
    data[spans[1].offset + 20] ^= 0x01;
    spit(segs[0], data);

    CHECK(drain(o) == std::vector<std::uint64_t>{1, 3, 4, 5});
    CHECK(o.stats().corrupt_records == 1);
    CHECK(o.stats().depth == 0);
    CHECK(o.cursor() == 5);
}

// A disk of `capacity` bytes for everything under the folder: writes beyond
// it are cut short and then fail with ENOSPC, as a real file system does.
struct TinyDisk {
    std::string folder;
    std::uint64_t capacity;
    int fsync_errno = 0;  // nonzero: fdatasync fails with it
    int write_errno = 0;  // nonzero: pwrite fails with it
    int fsyncs = 0;

    std::uint64_t used() const {
        std::uint64_t n = 0;
        for (const auto& e : fs::recursive_directory_iterator(folder)) {
            if (e.is_regular_file()) n += e.file_size();
        }
        return n;
    }

    OutboxIo io() {
        OutboxIo io;
        io.pwrite = [this](int fd, const void* buf, std::size_t n, off_t off) -> ssize_t {
            if (write_errno != 0) {
                errno = write_errno;
                return -1;
            }
            struct stat st {};
            ::fstat(fd, &st);
            const auto end = static_cast<std::uint64_t>(off) + n;
            const auto size = static_cast<std::uint64_t>(st.st_size);
            const std::uint64_t growth = end > size ? end - size : 0;
            const std::uint64_t u = used();
            if (u + growth > capacity) {
                const std::uint64_t room = capacity > u ? capacity - u : 0;
                const std::uint64_t fits = (n - growth) + room;  // overwrite + what fits
                if (fits == 0) {
                    errno = ENOSPC;
                    return -1;
                }
                return ::pwrite(fd, buf, static_cast<std::size_t>(fits), off);
            }
            return ::pwrite(fd, buf, n, off);
        };
        io.fdatasync = [this](int fd) {
            ++fsyncs;
            if (fsync_errno != 0) {
                errno = fsync_errno;
                return -1;
            }
            return ::fdatasync(fd);
        };
        return io;
    }
};

TEST_CASE("a full disk drops the oldest undelivered events, counted, and recovers", "[outbox]") {
    TempDir d;
    TinyDisk disk{d.path, 16 * 1024};
    OutboxOptions opt = options(d.path);
    opt.io = disk.io();
    Outbox o(opt);
    o.open();

    std::vector<DropReport> drops;
    int stored = 0;
    for (int i = 0; i < 300; ++i) {
        AppendResult res = o.append(event(o.next_seq()));
        if (res.stored) ++stored;
        for (const DropReport& dr : res.drops) {
            CHECK(dr.reason == DropReason::DiskFull);
            drops.push_back(dr);
        }
        REQUIRE(disk.used() <= disk.capacity);
    }
    CHECK(stored == 300);  // room was always found by dropping the oldest
    REQUIRE_FALSE(drops.empty());
    Outbox::Stats st = o.stats();
    CHECK(st.dropped == total(drops));
    CHECK(st.depth + st.dropped == 300);
    const auto left = drain(o, false);
    CHECK(left == range(301 - left.size(), 300));

    // Space comes back: appends go on without dropping anything.
    disk.capacity = 1 << 20;
    for (int i = 0; i < 50; ++i)
        CHECK(o.append(event(o.next_seq())).drops.empty());
    CHECK(o.stats().dropped == st.dropped);
}

TEST_CASE("a full disk frees the journal before undelivered events", "[outbox]") {
    TempDir d;
    TinyDisk disk{d.path, 1 << 20};
    OutboxOptions opt = options(d.path);
    opt.io = disk.io();
    opt.retain_bytes = 1 << 20;
    Outbox o(opt);
    o.open();
    append_n(o, 60);
    drain(o);
    append_n(o, 10);
    const std::uint64_t journal = o.stats().journal_bytes;
    REQUIRE(journal > 4096);

    disk.capacity = disk.used() + 200;  // room for about one more record
    for (int i = 0; i < 10; ++i) {
        const AppendResult res = o.append(event(o.next_seq()));
        CHECK(res.stored);
        CHECK(res.drops.empty());
    }
    CHECK(o.stats().journal_bytes < journal);
    CHECK(o.stats().dropped == 0);
    CHECK(drain(o) == range(61, 80));
}

TEST_CASE("when nothing can be freed the new event is reported dropped", "[outbox]") {
    TempDir d;
    TinyDisk disk{d.path, 1 << 20};
    OutboxOptions opt = options(d.path);
    opt.io = disk.io();
    Outbox o(opt);
    o.open();
    append_n(o, 3);
    drain(o);
    disk.capacity = disk.used();  // full of delivered data and state, nothing to give
    // The active segment holds only delivered records: it is recycled first.
    AppendResult res = o.append(event(4));
    CHECK(res.stored);
    disk.capacity = disk.used() - 1;  // now truly full
    res = o.append(event(5));
    // Undelivered 4 went first, and still 5 did not fit: one batch of both.
    CHECK_FALSE(res.stored);
    REQUIRE(res.drops.size() == 1);
    CHECK(res.drops[0].first_seq == 4);
    CHECK(res.drops[0].last_seq == 5);
    CHECK(res.drops[0].count == 2);
    CHECK(res.drops[0].reason == DropReason::DiskFull);
    CHECK(o.stats().dropped == 2);
    CHECK(o.stats().depth == 0);
    CHECK(o.next_seq() == 6);

    disk.capacity = 1 << 20;
    CHECK(o.append(event(6)).stored);
    CHECK(drain(o) == range(6, 6));
}

TEST_CASE("a write error drops the event, reported, and seq is never reused", "[outbox]") {
    TempDir d;
    TinyDisk disk{d.path, 1 << 20};
    OutboxOptions opt = options(d.path);
    opt.io = disk.io();
    opt.reserve_block = 2;
    {
        Outbox o(opt);
        o.open();
        append_n(o, 2);  // reserved by open()
        disk.write_errno = EIO;
        AppendResult res = o.append(event(3));  // its reservation cannot be written
        CHECK_FALSE(res.stored);
        REQUIRE(res.drops.size() == 1);
        CHECK(res.drops[0].reason == DropReason::IoError);
        CHECK(res.drops[0].first_seq == 3);
        disk.write_errno = 0;
        CHECK(o.append(event(4)).stored);
        disk.write_errno = EIO;  // now the record itself cannot be written
        res = o.append(event(5));
        CHECK_FALSE(res.stored);
        CHECK(res.drops.at(0).reason == DropReason::IoError);
        disk.write_errno = 0;
        CHECK(o.stats().dropped == 2);
        CHECK(drain(o, false) == std::vector<std::uint64_t>{1, 2, 4});
    }
    opt.boot_id = "boot-b";
    Outbox o(opt);
    o.open();
    CHECK(o.resumed() == Outbox::Resume::Reboot);
    CHECK(o.next_seq() > 5);
}

TEST_CASE("enforce applies a lowered max_bytes to what is already stored", "[outbox]") {
    TempDir d;
    {
        Outbox o(options(d.path));
        o.open();
        append_n(o, 100);
        o.close();
    }
    OutboxOptions opt = options(d.path);
    opt.max_bytes = 4096;
    Outbox o(opt);
    o.open();
    CHECK(o.stats().depth == 100);
    const auto drops = o.enforce();
    REQUIRE_FALSE(drops.empty());
    CHECK(drops.front().first_seq == 1);
    CHECK(o.stats().bytes <= 4096);
    CHECK(o.stats().depth + total(drops) == 100);
    CHECK(drain(o) == range(drops.back().last_seq + 1, 100));
}

TEST_CASE("a failing fsync is retried at the next deadline, never fatal", "[outbox]") {
    TempDir d;
    TinyDisk disk{d.path, 1 << 20};
    OutboxOptions opt = options(d.path);
    opt.io = disk.io();
    Outbox o(opt);
    o.open();
    append_n(o, 1);
    o.sync_if_due(t0);  // its interval starts
    CHECK(*o.next_sync_deadline() == t0 + 1s);
    disk.fsync_errno = EIO;
    const int failed = disk.fsyncs;
    o.sync_if_due(t0 + 1s);
    CHECK(disk.fsyncs == failed + 1);
    REQUIRE(o.next_sync_deadline());
    CHECK(*o.next_sync_deadline() == t0 + 2s);  // still owed
    disk.fsync_errno = 0;
    const int before = disk.fsyncs;
    o.sync_if_due(t0 + 2s);
    CHECK(disk.fsyncs == before + 1);
    CHECK_FALSE(o.next_sync_deadline());
}

TEST_CASE("group commit: at most one fsync per interval, for undelivered records", "[outbox]") {
    TempDir d;
    TinyDisk disk{d.path, 1 << 20};
    OutboxOptions opt = options(d.path);
    opt.io = disk.io();
    opt.sync = 1s;
    opt.cursor_sync = 10s;
    opt.segment_bytes = 65536;  // no roll in this test
    Outbox o(opt);
    o.open();
    CHECK_FALSE(o.next_sync_deadline());  // nothing to sync
    const int fs0 = disk.fsyncs;

    // Undelivered records: one commit, one interval after the first was seen.
    append_n(o, 3);
    REQUIRE(o.next_sync_deadline());
    CHECK(*o.next_sync_deadline() <= t0);  // sync_if_due must see them at once
    o.sync_if_due(t0);
    CHECK(disk.fsyncs == fs0);
    CHECK(*o.next_sync_deadline() == t0 + 1s);
    append_n(o, 5);
    o.sync_if_due(t0 + 500ms);
    CHECK(disk.fsyncs == fs0);  // not yet: they join the same commit
    CHECK(*o.next_sync_deadline() == t0 + 1s);
    o.sync_if_due(t0 + 1s);
    CHECK(disk.fsyncs == fs0 + 1);
    CHECK_FALSE(o.next_sync_deadline());

    // Records the broker acknowledged before their commit came due are safe
    // there: no fsync on their account. The cursor is written at once the
    // first time and fsynced (the state file), then written each interval
    // and fsynced at most every cursor_sync.
    append_n(o, 2);
    o.sync_if_due(t0 + 1100ms);
    CHECK(*o.next_sync_deadline() == t0 + 2100ms);
    CHECK(drain(o) == range(1, 10));
    CHECK(*o.next_sync_deadline() < t0);  // the cursor was never written
    o.sync_if_due(t0 + 1200ms);
    CHECK(disk.fsyncs == fs0 + 2);  // the state file's, not the log's
    CHECK_FALSE(o.next_sync_deadline());
    o.sync_if_due(t0 + 3s);
    CHECK(disk.fsyncs == fs0 + 2);

    append_n(o, 1);
    o.sync_if_due(t0 + 3s);
    CHECK(drain(o) == range(11, 11));
    CHECK(*o.next_sync_deadline() < t0);  // the cursor moved: written at once
    o.sync_if_due(t0 + 3s);
    CHECK(disk.fsyncs == fs0 + 2);  // written, not fsynced
    CHECK(*o.next_sync_deadline() == t0 + 11200ms);
    o.sync_if_due(t0 + 11200ms);
    CHECK(disk.fsyncs == fs0 + 3);
    CHECK_FALSE(o.next_sync_deadline());

    // Sent but not acknowledged when the interval ends: committed.
    append_n(o, 1);
    o.sync_if_due(t0 + 12s);
    Record r;
    REQUIRE(o.next_unsent(r));
    o.sync_if_due(t0 + 13s);
    CHECK(disk.fsyncs == fs0 + 4);
}

TEST_CASE("a connected outbox whose records are acknowledged at once fsyncs no segment",
          "[outbox]") {
    TempDir d;
    OutboxOptions opt = options(d.path);  // 1 KiB segments: rolls every few records
    opt.reserve_block = 1000;
    std::set<int> synced;  // descriptors fdatasynced
    opt.io.fdatasync = [&](int fd) {
        synced.insert(fd);
        return ::fdatasync(fd);
    };
    Outbox o(opt);
    o.open();
    synced.clear();
    MonoTime now = t0;
    for (int i = 0; i < 200; ++i) {
        append_n(o, 1);
        o.sync_if_due(now);
        drain(o);
        now += 100ms;
        o.sync_if_due(now);
    }
    CHECK(o.stats().segments == 1);
    CHECK(synced.size() <= 1);  // the state file's cursor, nothing else
    synced.clear();
    o.close();                  // syncs everything, delivered records too
    CHECK(synced.size() == 2);  // the active segment and the state file
}

TEST_CASE("with a journal, delivered records are committed too", "[outbox]") {
    TempDir d;
    TinyDisk disk{d.path, 1 << 20};
    OutboxOptions opt = options(d.path);
    opt.io = disk.io();
    opt.retain_bytes = 1 << 20;
    opt.segment_bytes = 65536;
    Outbox o(opt);
    o.open();
    const int fs0 = disk.fsyncs;
    append_n(o, 2);
    o.sync_if_due(t0);
    drain(o);
    o.sync_if_due(t0 + 1s);
    CHECK(disk.fsyncs >= fs0 + 1);  // the log (and the state file's first cursor)
    const int fs1 = disk.fsyncs;
    o.sync_if_due(t0 + 2s);
    CHECK(disk.fsyncs == fs1);
}

TEST_CASE("after a process crash the previous run's unsynced records are committed", "[outbox]") {
    TempDir d;
    TinyDisk disk{d.path, 1 << 20};
    OutboxOptions opt = options(d.path);
    opt.io = disk.io();
    {
        Outbox o(opt);
        o.open();
        append_n(o, 3);
        // crash before any commit: the page cache holds them, no disk
    }
    Outbox o(opt);
    o.open();
    REQUIRE(o.resumed() == Outbox::Resume::Crash);
    const int fs0 = disk.fsyncs;
    o.sync_if_due(t0);
    o.sync_if_due(t0 + 1s);
    CHECK(disk.fsyncs == fs0 + 1);
    CHECK(drain(o) == range(1, 3));
}

TEST_CASE("sync always: fdatasync before append returns", "[outbox]") {
    TempDir d;
    TinyDisk disk{d.path, 1 << 20};
    OutboxOptions opt = options(d.path);
    opt.io = disk.io();
    opt.sync_always = true;
    opt.reserve_block = 1000;
    Outbox o(opt);
    o.open();
    append_n(o, 1);  // the first may also sync the new segment's folder
    const int before = disk.fsyncs;
    append_n(o, 4);
    CHECK(disk.fsyncs == before + 4);
    CHECK_FALSE(o.next_sync_deadline());
}

TEST_CASE("a reservation costs one fsync per block", "[outbox]") {
    TempDir d;
    TinyDisk disk{d.path, 1 << 20};
    OutboxOptions opt = options(d.path);
    opt.io = disk.io();
    opt.reserve_block = 10;
    opt.segment_bytes = 65536;  // no roll (a roll syncs the full segment)
    Outbox o(opt);
    o.open();
    const int before = disk.fsyncs;
    append_n(o, 10);  // 1..10 were reserved by open()
    CHECK(disk.fsyncs == before);
    append_n(o, 1);  // 11: one durable state write
    CHECK(disk.fsyncs == before + 1);
    append_n(o, 9);
    CHECK(disk.fsyncs == before + 1);
}

TEST_CASE("open fails only for real I/O errors, with the path", "[outbox]") {
    TempDir d;
    spit(d.path + "/file", "x");
    OutboxOptions opt = options(d.path + "/file");
    Outbox o(opt);
    CHECK_THROWS_WITH(o.open(), Catch::Contains(d.path + "/file"));

    Outbox first(options(d.path + "/data"));
    first.open();
    Outbox second(options(d.path + "/data"));
    CHECK_THROWS_WITH(second.open(), Catch::Contains("in use"));
}

TEST_CASE("options come from the config", "[outbox]") {
    Config cfg;
    cfg.gateway.data_dir = "/var/lib/x";
    cfg.outbox.max_bytes = 123;
    cfg.outbox.sync = 250ms;
    cfg.outbox.sync_always = true;
    cfg.journal.retain_bytes = 77;
    const OutboxOptions o = outbox_options(cfg);
    CHECK(o.data_dir == "/var/lib/x");
    CHECK(o.max_bytes == 123);
    CHECK(o.sync == 250ms);
    CHECK(o.sync_always);
    CHECK(o.retain_bytes == 77);
    CHECK(std::string(drop_reason_word(DropReason::OutboxFull)) == "outbox_full");
}

// A real tiny tmpfs; needs root (mount), so hidden: run with "[.tmpfs]".
TEST_CASE("on a real full tmpfs, the outbox drops and never fails", "[.tmpfs]") {
    TempDir d;
    const std::string mnt = d.path + "/mnt";
    fs::create_directory(mnt);
    REQUIRE(::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") == 0);
    struct Unmount {
        std::string p;
        ~Unmount() { ::umount(p.c_str()); }
    } unmount{mnt};

    OutboxOptions opt = options(mnt);
    opt.segment_bytes = 4096;
    Outbox o(opt);
    o.open();
    std::uint64_t dropped = 0;
    int stored = 0;
    for (int i = 0; i < 3000; ++i) {
        const AppendResult res = o.append(event(o.next_seq()));
        dropped += total(res.drops);
        for (const DropReport& dr : res.drops)
            CHECK(dr.reason == DropReason::DiskFull);
        if (res.stored) ++stored;
    }
    CHECK(dropped > 0);
    CHECK(o.stats().dropped == dropped);
    CHECK(o.stats().depth + dropped == 3000);
    CHECK(o.stats().appended == static_cast<std::uint64_t>(stored));
    const auto left = drain(o);
    CHECK(left.back() == 3000);
    o.close();
}

// --- folder damage: entries that are not files, segments that went missing ---

namespace {

// open() on another thread: damage in the folder must never block it. A
// blocked open cannot be abandoned safely (it uses the Outbox), so the test
// binary stops with a message instead of hanging.
void open_promptly(Outbox& o) {
    auto done = std::async(std::launch::async, [&o] { o.open(); });
    if (done.wait_for(5s) != std::future_status::ready) {
        std::fprintf(stderr, "FAILED: Outbox::open() still blocked after 5 s\n");
        std::_Exit(3);
    }
    REQUIRE_NOTHROW(done.get());
}

// A log of 40 events over several segments of `dir`, closed cleanly or left
// as a process crash leaves it. Returns its segment files, oldest first.
std::vector<std::string> build_log(const std::string& dir, bool clean) {
    Outbox o(options(dir));
    o.open();
    append_n(o, 40);
    if (clean) o.close();
    auto segs = files_in(dir + "/outbox", ".seg");
    REQUIRE(segs.size() >= 4);
    return segs;
}

std::vector<std::uint64_t> seqs_of(const std::string& segment) {
    std::vector<std::uint64_t> v;
    for (const outbox::RecordSpan& r : scan_file(segment).records)
        v.push_back(r.seq);
    return v;
}

std::vector<std::uint64_t> without(std::vector<std::uint64_t> all,
                                   const std::vector<std::uint64_t>& gone) {
    std::erase_if(
        all, [&](std::uint64_t s) { return std::find(gone.begin(), gone.end(), s) != gone.end(); });
    return all;
}

enum class Damage { Directory, Fifo, DevZero, Deleted };

// Replaces the file at `path` as `how` says.
void damage(const std::string& path, Damage how) {
    REQUIRE(fs::remove(path));
    switch (how) {
        case Damage::Directory:
            fs::create_directory(path);
            spit(path + "/inside", "x");
            break;
        case Damage::Fifo:
            REQUIRE(::mkfifo(path.c_str(), 0640) == 0);
            break;
        case Damage::DevZero:
            fs::create_symlink("/dev/zero", path);
            break;
        case Damage::Deleted:
            break;
    }
}

// What open() must make of a log whose segment `victim` was damaged `how`,
// with the other segments intact: everything else delivered in order, the
// victim's events counted as lost, the damage set aside and counted, seq
// going on after every seq ever used, appends working; and the next start
// finds nothing more to report.
void check_recovers_without(const std::string& dir, const std::vector<std::string>& segs,
                            std::size_t victim, Damage how) {
    const std::vector<std::uint64_t> gone = seqs_of(segs[victim]);
    REQUIRE_FALSE(gone.empty());
    damage(segs[victim], how);
    {
        Outbox o(options(dir));
        open_promptly(o);
        const Outbox::Stats st = o.stats();
        CHECK(st.lost_records == gone.size());
        CHECK(st.corrupt_records == (how == Damage::Deleted ? 0u : 1u));
        if (how != Damage::Deleted) {
            const std::string aside = segs[victim] + ".damaged-1";
            CHECK(fs::symlink_status(aside).type() != fs::file_type::not_found);
            CHECK(fs::symlink_status(aside).type() != fs::file_type::regular);
        }
        CHECK(o.next_seq() > 40);
        const std::uint64_t next = o.next_seq();
        CHECK(st.depth == 40 - gone.size());
        append_n(o, 3);
        std::vector<std::uint64_t> expect = without(range(1, 40), gone);
        for (std::uint64_t s = next; s < next + 3; ++s)
            expect.push_back(s);
        CHECK(drain(o, false) == expect);
        o.close();
    }
    Outbox again(options(dir));
    open_promptly(again);
    CHECK(again.stats().lost_records == 0);
    CHECK(again.stats().corrupt_records == 0);
    CHECK(again.stats().depth == 40 - gone.size() + 3);
}

}  // namespace

TEST_CASE("a middle segment replaced by a directory is set aside and counted; start-up goes on",
          "[outbox][damage]") {
    TempDir d;
    const auto segs = build_log(d.path, true);
    check_recovers_without(d.path, segs, 2, Damage::Directory);
}

TEST_CASE("a middle segment replaced by a FIFO neither blocks nor vanishes silently",
          "[outbox][damage]") {
    TempDir d;
    const auto segs = build_log(d.path, true);
    check_recovers_without(d.path, segs, 1, Damage::Fifo);
}

TEST_CASE("a segment replaced by a symlink to /dev/zero is never followed", "[outbox][damage]") {
    TempDir d;
    const auto segs = build_log(d.path, true);
    check_recovers_without(d.path, segs, 2, Damage::DevZero);
}

TEST_CASE("a middle segment deleted: its seqs are reported lost; the rest delivered",
          "[outbox][damage]") {
    TempDir d;
    SECTION("after a clean close") {
        const auto segs = build_log(d.path, true);
        check_recovers_without(d.path, segs, 2, Damage::Deleted);
    }
    SECTION("after a process crash") {
        const auto segs = build_log(d.path, false);
        check_recovers_without(d.path, segs, 2, Damage::Deleted);
    }
}

TEST_CASE("the first segment deleted: its seqs are reported lost; the rest delivered",
          "[outbox][damage]") {
    TempDir d;
    SECTION("after a clean close") {
        const auto segs = build_log(d.path, true);
        check_recovers_without(d.path, segs, 0, Damage::Deleted);
    }
    SECTION("after a process crash") {
        const auto segs = build_log(d.path, false);
        check_recovers_without(d.path, segs, 0, Damage::Deleted);
    }
    SECTION("replaced by a directory") {
        const auto segs = build_log(d.path, true);
        check_recovers_without(d.path, segs, 0, Damage::Directory);
    }
}

TEST_CASE("the last segment deleted after a clean close: reported lost; no seq reused",
          "[outbox][damage]") {
    TempDir d;
    const auto segs = build_log(d.path, true);
    SECTION("deleted") {
        check_recovers_without(d.path, segs, segs.size() - 1, Damage::Deleted);
    }
    SECTION("replaced by a FIFO") {
        check_recovers_without(d.path, segs, segs.size() - 1, Damage::Fifo);
    }
}

TEST_CASE("the last segment deleted after a process crash: seq jumps past the reservation",
          "[outbox][damage]") {
    TempDir d;
    const auto segs = build_log(d.path, false);
    const std::vector<std::uint64_t> gone = seqs_of(segs.back());
    REQUIRE(gone.back() == 40);
    damage(segs.back(), Damage::Deleted);

    Outbox o(options(d.path));
    open_promptly(o);
    CHECK(o.resumed() == Outbox::Resume::Crash);
    // 40 events with reservations of 16: 48 reserved; every seq up to it
    // may have been handed out.
    CHECK(o.next_seq() == 49);
    const std::uint64_t next = o.next_seq();
    append_n(o, 2);
    std::vector<std::uint64_t> expect = without(range(1, 40), gone);
    expect.push_back(next);
    expect.push_back(next + 1);
    CHECK(drain(o) == expect);
}

TEST_CASE("a state file replaced by a directory is rebuilt from the segments", "[outbox][damage]") {
    TempDir d;
    build_log(d.path, true);
    const std::string state = d.path + "/outbox/state";
    SECTION("directory") {
        damage(state, Damage::Directory);
    }
    SECTION("FIFO") {
        damage(state, Damage::Fifo);
    }
    SECTION("symlink to /dev/zero") {
        damage(state, Damage::DevZero);
    }
    Outbox o(options(d.path));
    open_promptly(o);
    CHECK(o.resumed() == Outbox::Resume::Unknown);
    CHECK(o.stats().corrupt_records == 1);
    CHECK(o.stats().lost_records == 0);
    CHECK(fs::is_regular_file(fs::symlink_status(state)));
    CHECK_FALSE(fs::is_regular_file(fs::symlink_status(state + ".damaged-1")));
    // As without a state: a forward gap, never a reuse.
    CHECK(o.next_seq() == 41 + 2 * 16);
    append_n(o, 1);
    std::vector<std::uint64_t> expect = range(1, 40);
    expect.push_back(41 + 2 * 16);
    CHECK(drain(o) == expect);
}

TEST_CASE("an outbox folder replaced by a file is set aside and the outbox starts anew",
          "[outbox][damage]") {
    TempDir d;
    build_log(d.path, true);
    const std::string dir = d.path + "/outbox";
    fs::remove_all(dir);
    SECTION("a regular file") {
        std::ofstream(dir) << "not an outbox";
    }
    SECTION("a FIFO") {
        REQUIRE(::mkfifo(dir.c_str(), 0600) == 0);
    }
    SECTION("a dangling symbolic link") {
        fs::create_symlink(d.path + "/nowhere", dir);
    }
    Outbox o(options(d.path));
    open_promptly(o);
    CHECK(o.stats().corrupt_records == 1);
    CHECK(fs::is_directory(fs::symlink_status(dir)));
    CHECK(fs::exists(fs::symlink_status(dir + ".damaged-1")));
    append_n(o, 2);
    CHECK(drain(o).size() == 2);
}

TEST_CASE("an outbox folder that is a link to a folder is used as it is", "[outbox][damage]") {
    TempDir d;
    fs::create_directories(d.path + "/elsewhere");
    fs::create_symlink(d.path + "/elsewhere", d.path + "/outbox");
    {
        Outbox o(options(d.path));
        open_promptly(o);
        append_n(o, 3);
        o.close();
    }
    Outbox o(options(d.path));
    open_promptly(o);
    CHECK(o.stats().corrupt_records == 0);
    CHECK(drain(o).size() == 3);
    CHECK(fs::is_symlink(d.path + "/outbox"));
}

TEST_CASE("a segment larger than the outbox writes is read only in part", "[outbox][damage]") {
    TempDir d;
    const auto segs = build_log(d.path, true);
    // A sparse file of 64 GiB: reading it whole would take that much memory.
    const std::uint64_t huge = 64ull << 30;
    fs::resize_file(segs.back(), huge);
    Outbox o(options(d.path));
    open_promptly(o);
    CHECK(o.stats().corrupt_records >= 1);
    CHECK(fs::file_size(segs.back()) < (64u << 20));
    append_n(o, 1);
    std::vector<std::uint64_t> expect = range(1, 40);
    expect.push_back(o.next_seq() - 1);
    CHECK(drain(o) == expect);
}

TEST_CASE("read_log never follows a segment that is not a file", "[outbox][damage]") {
    TempDir d;
    const auto segs = build_log(d.path, true);
    const std::vector<std::uint64_t> gone = seqs_of(segs[1]);
    damage(segs[1], Damage::Fifo);
    damage(segs[2], Damage::DevZero);
    const std::vector<std::uint64_t> gone2 = seqs_of(segs[0]);  // still there
    std::vector<std::uint64_t> seen;
    auto done = std::async(std::launch::async, [&] {
        return read_log(d.path, [&](const Record& r) { seen.push_back(r.seq); });
    });
    if (done.wait_for(5s) != std::future_status::ready) {
        std::fprintf(stderr, "FAILED: read_log still blocked after 5 s\n");
        std::_Exit(3);
    }
    const LogReadStats st = done.get();
    CHECK(st.corrupt_records == 2);
    CHECK_FALSE(seen.empty());
    CHECK(seen.front() == gone2.front());
    CHECK(std::find(seen.begin(), seen.end(), gone.front()) == seen.end());
    CHECK(seen.back() == 40);
}
