// Outbox figures (a benchmark, not a test: prints, asserts nothing).
//
//   cmake --preset bench && cmake --build --preset bench --target outbox_bench
//   TIDEGATE_BENCH_DIR=/path/on/the/sd/card build-bench/scripts/bench/outbox_bench
//
// The folder defaults to /tmp; put it on the device you care about (an SD
// card's figures differ from an SSD's by orders of magnitude). Each event is
// a realistic reading envelope (~170 bytes) with its events/ and retained
// state/ destinations, like the gateway writes.
//
//   BM_Append/sync_ms:N     append + the loop's sync_if_due(now) per event;
//                           N = 0 means `sync: always`
//   BM_AppendDeliver/...    the same plus next_unsent + ack (a connected link)
//   BM_Drain                next_unsent + ack of a backlog (the outbox's share
//                           of the drain after an outage)
//   BM_SimulatedHour/...    one hour of a steady gateway on a virtual clock
//                           (events/s, sync ms, connected): fsyncs per second
//                           and bytes written (/proc/self/io write_bytes) per
//                           payload byte. Real files, real fsyncs. connected:1
//                           acks each event at once (a broker on the LAN);
//                           connected:0 acks nothing (an hour-long outage).
//                           Payload = the JSON envelope bytes of the events,
//                           each counted once (what a subscriber of
//                           <p>/events/# receives), not the record framing,
//                           topics or the state/ copy.
//                           write_bytes counts a page when it turns dirty
//                           (4096 bytes for a page cleaned by fdatasync and
//                           written to again), not when it reaches the disk.
//                           The virtual hour takes seconds, so the kernel's
//                           own writeback (every ~30 s) never cleans the tail
//                           page here: scripts/bench/run measures the daemon
//                           in real time, which includes it.
//   BM_Crc32c/bytes         checksum throughput
// Counters: fsyncs/s (all fdatasyncs, log and state) and bytes/s of records.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/crc32c.h"
#include "core/log.h"
#include "outbox.h"

namespace {

namespace fs = std::filesystem;
using tg::Outbox;
using tg::OutboxOptions;
using tg::outbox::Record;

struct BenchDir {
    std::string path;
    BenchDir() {
        const char* base = std::getenv("TIDEGATE_BENCH_DIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/tidegate-bench-XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
        path = buf.data();
    }
    ~BenchDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

Record event(std::uint64_t seq) {
    Record r;
    r.seq = seq;
    r.qos = 1;
    r.destinations = {{"tidegate/greenhouse-pi/events/greenhouse/temp", false, false},
                      {"tidegate/greenhouse-pi/state/greenhouse/temp", true, true}};
    r.payload =
        R"({"v":1,"id":"greenhouse-pi:)" + std::to_string(seq) +
        R"(","type":"reading","gateway":"greenhouse-pi","seq":)" + std::to_string(seq) +
        R"(,"source":"greenhouse.temp","ts":"2026-11-26T17:15:53.123Z","value":23.4,"unit":"°C"})";
    return r;
}

OutboxOptions options(const std::string& dir, std::int64_t sync_ms) {
    OutboxOptions o;
    o.data_dir = dir;
    o.max_bytes = 1ull << 30;  // the bound is not what is measured here
    o.sync_always = sync_ms == 0;
    o.sync = std::chrono::milliseconds(sync_ms == 0 ? 1000 : sync_ms);
    return o;
}

void report(benchmark::State& state, const Outbox& o, std::uint64_t bytes,
            std::uint64_t fsyncs_before = 0) {
    const Outbox::Stats st = o.stats();
    state.counters["fsyncs/s"] = benchmark::Counter(static_cast<double>(st.fsyncs - fsyncs_before),
                                                    benchmark::Counter::kIsRate);
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    state.SetItemsProcessed(state.iterations());
}

void BM_Append(benchmark::State& state) {
    BenchDir dir;
    Outbox o(options(dir.path, state.range(0)));
    o.open();
    std::uint64_t bytes = 0;
    for (auto _ : state) {
        const Record r = event(o.next_seq());
        bytes += tg::outbox::encoded_size(r);
        benchmark::DoNotOptimize(o.append(r));
        o.sync_if_due(std::chrono::steady_clock::now());
    }
    report(state, o, bytes);
    o.close();
}
BENCHMARK(BM_Append)->ArgName("sync_ms")->Arg(1000)->Arg(100)->Arg(0)->UseRealTime();

void BM_AppendDeliver(benchmark::State& state) {
    BenchDir dir;
    Outbox o(options(dir.path, state.range(0)));
    o.open();
    std::uint64_t bytes = 0;
    Record out;
    for (auto _ : state) {
        const Record r = event(o.next_seq());
        bytes += tg::outbox::encoded_size(r);
        o.append(r);
        while (o.next_unsent(out))
            o.ack(out.seq);
        o.sync_if_due(std::chrono::steady_clock::now());
    }
    report(state, o, bytes);
    o.close();
}
BENCHMARK(BM_AppendDeliver)->ArgName("sync_ms")->Arg(1000)->Arg(0)->UseRealTime();

void BM_Drain(benchmark::State& state) {
    BenchDir dir;
    Outbox o(options(dir.path, 1000));
    o.open();
    const auto backlog = static_cast<std::uint64_t>(state.max_iterations);
    for (std::uint64_t i = 0; i < backlog; ++i)
        o.append(event(o.next_seq()));
    o.sync_now();
    const std::uint64_t fsyncs_before = o.stats().fsyncs;
    Record out;
    std::uint64_t bytes = 0;
    for (auto _ : state) {
        if (!o.next_unsent(out)) {
            state.SkipWithError("backlog ran out");
            break;
        }
        bytes += out.payload.size();
        o.ack(out.seq);
        o.sync_if_due(std::chrono::steady_clock::now());
    }
    report(state, o, bytes, fsyncs_before);
    o.close();
}
// 60 s of an outage at 1000 events/s.
BENCHMARK(BM_Drain)->Iterations(60'000)->UseRealTime();

// write_bytes of /proc/self/io: bytes this process caused to be sent to the
// block device (page-granular; includes the file system's own metadata when
// our fdatasync forces it out).
// wchar: bytes handed to write()/pwrite() (what the outbox asked for).
double proc_io(const char* field) {
    std::FILE* f = std::fopen("/proc/self/io", "r");
    if (!f) return 0;
    char line[128];
    double v = 0;
    const std::string prefix = std::string(field) + ": %llu";
    while (std::fgets(line, sizeof line, f)) {
        unsigned long long n = 0;
        if (std::sscanf(line, prefix.c_str(), &n) == 1) v = static_cast<double>(n);
    }
    std::fclose(f);
    return v;
}

void BM_SimulatedHour(benchmark::State& state) {
    const auto per_second = static_cast<int>(state.range(0));
    const std::int64_t sync_ms = state.range(1);
    const bool connected = state.range(2) != 0;
    for (auto _ : state) {
        BenchDir dir;
        Outbox o(options(dir.path, sync_ms));
        o.open();
        const std::uint64_t fsyncs0 = o.stats().fsyncs;
        const double written0 = proc_io("write_bytes");
        const double wchar0 = proc_io("wchar");
        double payload = 0;
        const auto start = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
        Record out;
        for (int sec = 0; sec < 3600; ++sec) {
            for (int i = 0; i < per_second; ++i) {
                // Readings spread over the second, as polled sensors are.
                const auto now = start + std::chrono::seconds(sec) +
                                 std::chrono::milliseconds(i * 1000 / per_second);
                const Record r = event(o.next_seq());
                payload += static_cast<double>(r.payload.size());
                o.append(r);
                o.sync_if_due(now);  // the loop's next turn after an append
                while (connected && o.next_unsent(out))
                    o.ack(out.seq);
                o.sync_if_due(now);
            }
        }
        const double fsyncs = static_cast<double>(o.stats().fsyncs - fsyncs0);
        const double written = proc_io("write_bytes") - written0;
        const double wchar = proc_io("wchar") - wchar0;
        state.counters["fsyncs_per_s"] = fsyncs / 3600.0;
        state.counters["payload_MB_per_h"] = payload / 1e6;
        state.counters["device_MB_per_h"] = written / 1e6;
        state.counters["device_per_payload"] = written / payload;
        state.counters["wchar_per_payload"] = wchar / payload;
        o.close();
    }
}
// 10 sensors at 1 Hz with the default sync: 1s, and with 100ms; connected
// and during an outage.
BENCHMARK(BM_SimulatedHour)
    ->ArgNames({"events_per_s", "sync_ms", "connected"})
    ->Args({10, 1000, 1})
    ->Args({10, 100, 1})
    ->Args({10, 1000, 0})
    ->Args({10, 100, 0})
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

void BM_Crc32c(benchmark::State& state) {
    std::string data(static_cast<std::size_t>(state.range(0)), 'x');
    for (std::size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<char>(i * 131);
    for (auto _ : state)
        benchmark::DoNotOptimize(tg::crc32c(data));
    state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Crc32c)->Arg(200)->Arg(4096);

}  // namespace

int main(int argc, char** argv) {
    tg::set_log_level(tg::LogLevel::Warn);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
