// Reading -> output latency inside the gateway (issue #3; target p99 <= 100 us).
// Google Benchmark; figures, not tests.
//
//   cmake --preset bench && cmake --build --preset bench --target latency_bench
//   build-bench/scripts/bench/latency_bench --benchmark_counters_tabular=true
//
// LATENCY_BENCH_DIR sets where the data_dir and the output file go (default
// /var/tmp: a disk, as on the Pi; tmpfs would hide every fsync).
//
// What is timed, per reading: from the moment a sensor thread posts it (the
// Sink::reading() entry that the gpio, serial and mqtt drivers use) to the
// moment the `file` output driver has written and closed its file. The whole
// daemon runs: a real Gateway::run() loop on its own thread, a config and a
// rule file loaded as `tidegate run` loads them, the real outbox in a fresh
// data_dir, the real MQTT link (pointed at a port that refuses connections:
// the gateway works offline and its link just queues), logging at the default
// level `info` (standard error goes to a file in the bench folder).
//
//   rule:    when: greenhouse.temp > 30, clear_when: greenhouse.temp < 28,
//            actions: output fan on; on_clear: output fan off
//   output:  fan, driver file, path <bench>/out/fan, on "1", off "0"
//   readings 31, 27, 31, 27, ... : every reading fires or clears the rule and
//            switches the output.
//
// On the loop thread, before the output switches: wake-up and pop from the
// EventQueue, the sensor lookup and checks (type, finite, range, precision),
// Engine::on_reading (the rule's condition, the transition), OutputBank::set
// and the file output's open/write/fstat/close. After it: the reading's event,
// the transition's log line, the rule event and the output event appended to
// the outbox (in that seq order), the rule state handed to its writer thread.
//
// The end of each sample is seen from the bench thread through inotify
// (IN_CLOSE_WRITE of the output file); the file's content is checked after
// every sample (outside the timing). The bench thread waits in poll(), as a
// driver thread goes back to waiting on its device after posting: a thread
// spinning instead would hold one of the two cores the loop may need. So each
// sample includes the bench thread's wake-up (the floors too), which errs on
// the slow side. LATENCY_BENCH_OBSERVER=spin makes it spin (non-blocking
// reads; noticing then costs ~1 us) -- for machines with idle cores to spare.
// Samples are kept, sorted, and reported as p50/p99/p99.9/max (nearest rank;
// counters, in us; "Time" is the mean).
//
// Floors, sampled in the same rounds as the gateway (so that a busy machine
// shifts all three alike; the order inside a round rotates):
//   handoff   a bare thread waiting on a condition variable takes the value,
//             compares it with 30/28 and switches the same `file` output
//             driver, seen by the same inotify loop: what any event-loop
//             gateway has to pay between a driver thread and the output.
//   write     the `file` output driver's set() alone (open, write, close of
//             its file), timed on the calling thread.
// The summary table at the end gives the three, and gateway / floor ratios.
//
// Cases (gap_us: from one round's start to the next; 0 = back to back):
//   gap_us:0/sync_always:0      readings as fast as the gateway takes them;
//                               what is left of the previous reading's work
//                               (events appended after the switch) is paid.
//   gap_us:5000/sync_always:0   a reading every 5 ms into an idle loop: the
//                               reaction to one reading (default outbox.sync 1s).
//   gap_us:20000/sync_always:1  the same with outbox.sync: always (an fdatasync
//                               per event appended).
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "config.h"
#include "core/log.h"
#include "gateway.h"
#include "rule_files.h"

using namespace tg;
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr int kWarmup =
    200;  // readings before the samples (page cache, allocator, branch predictors)
constexpr int kBackToBack = 20000;
constexpr int kPaced = 4000;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "latency_bench: %s\n", what.c_str());
    std::exit(1);
}

std::string errno_text(const std::string& what) {
    return what + ": " + std::strerror(errno);
}

// --- samples -----------------------------------------------------------------

struct Figures {
    std::size_t n = 0;
    double mean = 0, p50 = 0, p99 = 0, p999 = 0, max = 0;  // us
};

// Nearest rank: the smallest sample with at least p of them at or below it.
double rank(const std::vector<double>& sorted, double p) {
    const auto k = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
    return sorted[std::min(sorted.size() - 1, k == 0 ? 0 : k - 1)];
}

Figures figures(std::vector<double> us) {
    Figures f;
    if (us.empty()) return f;
    std::sort(us.begin(), us.end());
    f.n = us.size();
    double sum = 0;
    for (double v : us)
        sum += v;
    f.mean = sum / static_cast<double>(us.size());
    f.p50 = rank(us, 0.50);
    f.p99 = rank(us, 0.99);
    f.p999 = rank(us, 0.999);
    f.max = us.back();
    return f;
}

struct Case {
    std::string name;
    Figures gateway, floor, write;
};

std::vector<Case>& cases() {
    static std::vector<Case> c;
    return c;
}

double micros(SteadyClock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
}

// --- the bench folder --------------------------------------------------------

class BenchDir {
  public:
    BenchDir() {
        const char* base = std::getenv("LATENCY_BENCH_DIR");
        std::string tmpl =
            std::string(base && *base ? base : "/var/tmp") + "/tidegate-latency.XXXXXX";
        if (!::mkdtemp(tmpl.data())) die(errno_text("mkdtemp " + tmpl));
        path_ = tmpl;
        fs::create_directories(path_ / "out");
        fs::create_directories(path_ / "rules.d");
    }
    ~BenchDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    BenchDir(const BenchDir&) = delete;
    BenchDir& operator=(const BenchDir&) = delete;
    const fs::path& path() const { return path_; }
    std::string out_file() const { return (path_ / "out" / "fan").string(); }

  private:
    fs::path path_;
};

std::string filesystem_of(const std::string& path) {
    struct statfs s {};
    if (::statfs(path.c_str(), &s) != 0) return "?";
    switch (static_cast<unsigned long>(s.f_type)) {
        case 0xEF53:
            return "ext2/3/4";
        case 0x01021994:
            return "tmpfs";
        case 0x58465342:
            return "xfs";
        case 0x9123683E:
            return "btrfs";
        case 0x794C7630:
            return "overlayfs";
        case 0xF2F52010:
            return "f2fs";
        default: {
            char buf[32];
            std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(s.f_type));
            return buf;
        }
    }
}

// --- seeing the output switch --------------------------------------------------

// IN_CLOSE_WRITE of one file in a folder. Waits in poll() (the default), or
// in a busy loop of non-blocking reads with LATENCY_BENCH_OBSERVER=spin.
class CloseWriteWatch {
  public:
    CloseWriteWatch(const std::string& dir, std::string name) : name_(std::move(name)) {
        fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd_ < 0) die(errno_text("inotify_init1"));
        if (::inotify_add_watch(fd_, dir.c_str(), IN_CLOSE_WRITE) < 0)
            die(errno_text("inotify_add_watch " + dir));
    }
    ~CloseWriteWatch() { ::close(fd_); }
    CloseWriteWatch(const CloseWriteWatch&) = delete;
    CloseWriteWatch& operator=(const CloseWriteWatch&) = delete;

    // Waits for the next close-after-write of the file; returns when it was seen.
    SteadyClock::time_point wait() {
        const auto give_up = SteadyClock::now() + std::chrono::seconds(10);
        for (;;) {
            if (take() > 0) return SteadyClock::now();
            if (!spin()) {
                pollfd p{fd_, POLLIN, 0};
                ::poll(&p, 1, 1000);
            }
            if (SteadyClock::now() > give_up) die("no write of " + name_ + " within 10 s");
        }
    }
    // Forgets whatever has been seen so far.
    void drain() {
        while (take() > 0) {
        }
    }

  private:
    static bool spin() {
        static const bool on = [] {
            const char* o = std::getenv("LATENCY_BENCH_OBSERVER");
            return o && std::string(o) == "spin";
        }();
        return on;
    }
    // Reads what is there; returns how many close-writes of the file it held.
    int take() {
        alignas(inotify_event) char buf[4096];
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return 0;
            die(errno_text("inotify read"));
        }
        int hits = 0;
        for (ssize_t off = 0; off < n;) {
            const auto* e = reinterpret_cast<const inotify_event*>(buf + off);
            if (e->mask & IN_Q_OVERFLOW) die("inotify queue overflow");
            if ((e->mask & IN_CLOSE_WRITE) && e->len > 0 && name_ == e->name) ++hits;
            off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
        }
        if (hits > 1) die("two writes of " + name_ + " where one was expected");
        return hits;
    }

    int fd_ = -1;
    std::string name_;
};

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    if (!out) die("cannot write " + path.string());
}

// The `file` output driver itself, set up as the gateway's `fan` is: the
// floors switch the output exactly as the gateway does.
class FanOutput {
  public:
    explicit FanOutput(const std::string& path) {
        drivers::Options o;
        o.set("path", path);
        o.set("on", std::string("1"));
        o.set("off", std::string("0"));
        o.set("initial", std::string());
        o.set("root", std::string("/"));
        output_ = drivers::find_output("file")->create("fan", o, env_);
        output_->start();
    }
    void set(bool on) { output_->set(on); }

  private:
    struct NoEnv final : drivers::OutputEnv {
        void publish(const std::string&, const std::string&, int, bool) override {}
    } env_;
    std::unique_ptr<drivers::Output> output_;
};

// --- the gateway under test ------------------------------------------------------

// A TCP port bound but never listening: the MQTT link's connects are refused
// at once, and no other program can take the port while the bench runs.
class RefusingPort {
  public:
    RefusingPort() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            die(errno_text("bind"));
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
    }
    ~RefusingPort() { ::close(fd_); }
    RefusingPort(const RefusingPort&) = delete;
    RefusingPort& operator=(const RefusingPort&) = delete;
    int port() const { return port_; }

  private:
    int fd_ = -1;
    int port_ = 0;
};

// Standard error into a file while the gateway runs (its log lines are part
// of the path; a terminal would make them slower and unreadable).
class StderrToFile {
  public:
    explicit StderrToFile(const std::string& path) {
        std::fflush(stderr);
        saved_ = ::dup(STDERR_FILENO);
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (saved_ < 0 || fd < 0) die(errno_text("redirecting stderr to " + path));
        ::dup2(fd, STDERR_FILENO);
        ::close(fd);
    }
    ~StderrToFile() {
        std::fflush(stderr);
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
    }
    StderrToFile(const StderrToFile&) = delete;
    StderrToFile& operator=(const StderrToFile&) = delete;

  private:
    int saved_ = -1;
};

constexpr const char* kSensor = "greenhouse.temp";

const char* kRules = R"(rules:
  - name: greenhouse_too_hot
    when: greenhouse.temp > 30
    clear_when: greenhouse.temp < 28
    actions:
      - output: { name: fan, value: on }
    on_clear:
      - output: { name: fan, value: off }
)";

class GatewayRig {
  public:
    GatewayRig(const BenchDir& dir, bool sync_always)
        : log_((dir.path() / "gateway.log").string()) {
        write_text(dir.path() / "rules.d" / "fan.yaml", kRules);
        const fs::path cfg_path = dir.path() / "tidegate.yaml";
        write_text(cfg_path,
                   "gateway: { id: latency-bench, data_dir: " + (dir.path() / "data").string() +
                       " }\n"
                       "mqtt: { uri: 'tcp://127.0.0.1:" +
                       std::to_string(port_.port()) +
                       "' }\n"
                       "rules: { paths: [" +
                       (dir.path() / "rules.d").string() +
                       "] }\n"
                       "outbox: { sync: " +
                       (sync_always ? "always" : "1s") +
                       " }\n"
                       "sensors:\n"
                       "  - name: greenhouse.temp\n"
                       "    driver: simulated\n"
                       "    interval: 1d\n"
                       "    unit: \"°C\"\n"
                       "    options: { profile: constant, value: 29 }\n"
                       "outputs:\n"
                       "  - name: fan\n"
                       "    driver: file\n"
                       "    options: { path: " +
                       dir.out_file() + ", on: '1', off: '0' }\n");
        set_log_level(LogLevel::Info);
        Config cfg = load_config(cfg_path.string());
        rules::CompileResult rules = load_rule_files(cfg, nullptr);
        if (!rules.rules) {
            for (const SourceError& e : rules.diagnostics.items())
                std::fprintf(stdout, "%s\n", e.format().c_str());
            die("the bench's rule file does not compile");
        }
        gw_ = std::make_unique<Gateway>(std::move(cfg), clock_, rules.rules);
        loop_ = std::thread([this] { exit_code_ = gw_->run(); });
    }
    ~GatewayRig() {
        gw_->request_stop(SIGTERM);
        loop_.join();
        if (exit_code_ != 0) die("the gateway exited with " + std::to_string(exit_code_));
    }
    GatewayRig(const GatewayRig&) = delete;
    GatewayRig& operator=(const GatewayRig&) = delete;

    // What a driver thread does with a value it has taken.
    SteadyClock::time_point post(double value) {
        Reading r{kSensor, Value{value}, clock_.wall(), clock_.monotonic()};
        const SteadyClock::time_point t0 = r.mono;
        static_cast<drivers::Sink&>(*gw_).reading(std::move(r));
        return t0;
    }

  private:
    RealClock clock_;
    RefusingPort port_;
    StderrToFile log_;
    std::unique_ptr<Gateway> gw_;
    std::thread loop_;
    int exit_code_ = 0;
};

// Alternating readings, each one fires or clears the rule: 31, 27, 31, ...
double reading_value(int i) {
    return i % 2 == 0 ? 31.0 : 27.0;
}

// A thread that waits for values and switches the output: the least any
// event-loop gateway does between a driver thread and the output.
class HandoffWorker {
  public:
    explicit HandoffWorker(const std::string& path) : output_(path) {
        thread_ = std::thread([this] { run(); });
    }
    ~HandoffWorker() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }
    HandoffWorker(const HandoffWorker&) = delete;
    HandoffWorker& operator=(const HandoffWorker&) = delete;

    void post(double v) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(v);
        }
        cv_.notify_one();
    }

  private:
    void run() {
        bool firing = false;
        for (;;) {
            double v;
            {
                std::unique_lock lock(mutex_);
                cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
                if (stop_) return;
                v = queue_.front();
                queue_.pop_front();
            }
            if (!firing && v > 30) {
                firing = true;
                output_.set(true);
            } else if (firing && v < 28) {
                firing = false;
                output_.set(false);
            }
        }
    }

    FanOutput output_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<double> queue_;
    bool stop_ = false;
    std::thread thread_;
};

// One case: the gateway, the handoff floor and the bare write, sampled in the
// same rounds so that they see the same machine (a noisy one shifts all
// three). The order inside a round rotates, so that no path always comes
// first after the pause (caches cold, CPUs asleep).
void ReadingToOutput(benchmark::State& state) {
    const auto gap = std::chrono::microseconds(state.range(0));
    const bool sync_always = state.range(1) != 0;
    BenchDir gw_dir, floor_dir, write_dir;  // one output file per path, one watch each
    CloseWriteWatch gw_watch((gw_dir.path() / "out").string(), "fan");
    CloseWriteWatch floor_watch((floor_dir.path() / "out").string(), "fan");
    CloseWriteWatch write_watch((write_dir.path() / "out").string(), "fan");
    const std::string gw_out = gw_dir.out_file();
    const std::string floor_out = floor_dir.out_file();

    std::vector<double> gw_us, floor_us, write_us;
    const auto n = static_cast<std::size_t>(state.max_iterations);
    gw_us.reserve(n);
    floor_us.reserve(n);
    write_us.reserve(n);
    {
        FanOutput bare(write_dir.out_file());
        HandoffWorker floor(floor_out);
        GatewayRig gw(gw_dir, sync_always);
        floor_watch.wait();  // the output driver's start-up check opens the file once
        gw_watch.wait();
        write_watch.drain();

        int i = 0;
        // One round; returns the gateway's sample.
        auto round = [&](bool keep) {
            const double value = reading_value(i);
            const char* expect = value > 30 ? "1" : "0";
            const SteadyClock::time_point start = SteadyClock::now();
            SteadyClock::duration gw_d{};
            for (int k = 0; k < 3; ++k) {
                switch ((i + k) % 3) {
                    case 0: {
                        const SteadyClock::time_point t0 = gw.post(value);
                        gw_d = gw_watch.wait() - t0;
                        if (read_text(gw_out) != expect)
                            die("gateway: wrong value in its output file");
                        if (keep) gw_us.push_back(micros(gw_d));
                        break;
                    }
                    case 1: {
                        const SteadyClock::time_point t0 = SteadyClock::now();
                        floor.post(value);
                        const SteadyClock::duration d = floor_watch.wait() - t0;
                        if (read_text(floor_out) != expect)
                            die("handoff: wrong value in its output file");
                        if (keep) floor_us.push_back(micros(d));
                        break;
                    }
                    default: {
                        const SteadyClock::time_point t0 = SteadyClock::now();
                        bare.set(value > 30);
                        const SteadyClock::duration d = SteadyClock::now() - t0;
                        write_watch.drain();
                        if (keep) write_us.push_back(micros(d));
                        break;
                    }
                }
            }
            ++i;
            if (gap.count() > 0) std::this_thread::sleep_until(start + gap);
            return gw_d;
        };
        for (int w = 0; w < kWarmup; ++w)
            round(false);
        for (auto _ : state) {
            const SteadyClock::duration d = round(true);
            state.SetIterationTime(std::chrono::duration<double>(d).count());
        }
    }

    Case c;
    c.name = "gap " + std::to_string(state.range(0)) + " us" +
             (sync_always ? ", outbox.sync always" : "");
    c.gateway = figures(std::move(gw_us));
    c.floor = figures(std::move(floor_us));
    c.write = figures(std::move(write_us));
    state.counters["p50_us"] = c.gateway.p50;
    state.counters["p99_us"] = c.gateway.p99;
    state.counters["p99.9_us"] = c.gateway.p999;
    state.counters["max_us"] = c.gateway.max;
    state.counters["floor_p50_us"] = c.floor.p50;
    state.counters["floor_p99_us"] = c.floor.p99;
    state.counters["write_p50_us"] = c.write.p50;
    state.counters["write_p99_us"] = c.write.p99;
    state.SetLabel(filesystem_of(gw_dir.path().string()));
    cases().push_back(std::move(c));
}

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

void print_row(const char* what, const Figures& f) {
    std::printf("  %-34s %9.1f %9.1f %9.1f %9.1f %8zu\n", what, f.p50, f.p99, f.p999, f.max, f.n);
}

}  // namespace

BENCHMARK(ReadingToOutput)
    ->ArgNames({"gap_us", "sync_always"})
    ->Args({0, 0})
    ->Iterations(20000)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(ReadingToOutput)
    ->ArgNames({"gap_us", "sync_always"})
    ->Args({5000, 0})
    ->Iterations(4000)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(ReadingToOutput)
    ->ArgNames({"gap_us", "sync_always"})
    ->Args({20000, 1})
    ->Iterations(1000)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();

    if (cases().empty()) return 0;
    std::printf("\nreading -> output switched, in us (load average at the end: %s)\n",
                load_average().c_str());
    std::printf("  %-34s %9s %9s %9s %9s %8s\n", "", "p50", "p99", "p99.9", "max", "samples");
    for (const Case& c : cases()) {
        std::printf("%s\n", c.name.c_str());
        print_row("gateway (post -> file closed)", c.gateway);
        print_row("floor: thread handoff + write", c.floor);
        print_row("floor: file output set() alone", c.write);
        std::printf("  %-34s %9.1f %9.1f\n", "gateway / handoff", c.gateway.p50 / c.floor.p50,
                    c.gateway.p99 / c.floor.p99);
        std::printf("  %-34s %9.1f %9.1f\n", "gateway / write alone", c.gateway.p50 / c.write.p50,
                    c.gateway.p99 / c.write.p99);
    }
    return 0;
}
