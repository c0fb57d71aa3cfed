// ExecRunner with real processes: /bin/true, scripts the tests write and run
// with /bin/sh as the program (the runner itself never uses a shell), sleep
// for timeouts and stops.
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../drivers/driver_test_util.h"
#include "exec_runner.h"

using namespace tg;
using namespace tg::test;
using namespace std::chrono_literals;
using Kind = drivers::ProcessOutcome::Kind;

namespace {

// Collects what the runner reports, from any thread. Declared before the
// runner so it outlives the runner's threads.
class Results {
  public:
    std::function<void(ExecResult)> callback() {
        return [this](ExecResult r) {
            std::lock_guard lock(mutex_);
            results_.push_back(std::move(r));
            cv_.notify_all();
        };
    }
    bool wait_for(std::size_t n, std::chrono::seconds limit = 20s) {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, limit, [&] { return results_.size() >= n; });
    }
    std::vector<ExecResult> all() {
        std::lock_guard lock(mutex_);
        return results_;
    }
    std::size_t size() {
        std::lock_guard lock(mutex_);
        return results_.size();
    }
    // The one result for `rule`; fails the test if there is not exactly one.
    ExecResult of(const std::string& rule) {
        std::vector<ExecResult> found;
        for (const ExecResult& r : all()) {
            if (r.rule == rule) found.push_back(r);
        }
        REQUIRE(found.size() == 1);
        return found.front();
    }

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<ExecResult> results_;
};

std::string script(const TempDir& dir, const std::string& name, const std::string& body) {
    const auto path = dir.path() / name;
    write_text(path, body + "\n");
    return path.string();
}

// Waits until `path` exists with a complete line in it.
bool wait_for_line(const std::filesystem::path& path, std::chrono::seconds limit = 20s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (std::filesystem::exists(path) && read_text(path).find('\n') != std::string::npos) {
            return true;
        }
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

pid_t read_pid(const std::filesystem::path& path) {
    return static_cast<pid_t>(std::stol(read_text(path)));
}

// True once `pid` is no longer a running process: gone, or a zombie left
// for init to reap (a killed grandchild is no longer ours to wait for).
bool process_gone(pid_t pid, std::chrono::seconds limit = 5s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    const std::filesystem::path stat = "/proc/" + std::to_string(pid) + "/stat";
    while (std::chrono::steady_clock::now() < until) {
        if (!std::filesystem::exists(stat)) return true;
        const std::string text = read_text(stat);
        const auto paren = text.rfind(')');
        if (paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z') {
            return true;
        }
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

}  // namespace

TEST_CASE("exec: /bin/true runs and succeeds", "[exec]") {
    Results results;
    ExecRunner runner(results.callback());
    runner.run("door_open", {"/bin/true"}, 5s);
    REQUIRE(results.wait_for(1));
    const ExecResult r = results.of("door_open");
    CHECK(r.ok());
    CHECK_FALSE(r.rejected);
    CHECK(r.kind == Kind::Exited);
    CHECK(r.code == 0);
    CHECK(r.argv == std::vector<std::string>{"/bin/true"});
    CHECK(r.err_line.empty());
    CHECK(r.took < 5s);
    CHECK(r.describe() == "exit 0");
}

TEST_CASE("exec: a non-zero exit keeps the first line of stderr", "[exec]") {
    TempDir dir("exec");
    const std::string fail = script(dir, "fail.sh",
                                    "echo 'this goes nowhere'\n"
                                    "printf '\\n  disk full on /data  \\nsecond line\\n' >&2\n"
                                    "exit 3");
    Results results;
    ExecRunner runner(results.callback());
    runner.run("notify", {"/bin/sh", fail});
    REQUIRE(results.wait_for(1));
    const ExecResult r = results.of("notify");
    CHECK_FALSE(r.ok());
    CHECK(r.kind == Kind::Exited);
    CHECK(r.code == 3);
    CHECK(r.err_line == "disk full on /data");
    CHECK(r.describe() == "exit 3: disk full on /data");
    CHECK(r.timeout == ExecRunner::kDefaultTimeout);
}

TEST_CASE("exec: a program killed by a signal is reported with it", "[exec]") {
    Results results;
    ExecRunner runner(results.callback());
    runner.run("crash", {"/bin/sh", "-c", "kill -9 $$"}, 5s);
    REQUIRE(results.wait_for(1));
    const ExecResult r = results.of("crash");
    CHECK_FALSE(r.ok());
    CHECK(r.kind == Kind::Signaled);
    CHECK(r.code == SIGKILL);
    CHECK(r.describe() == "signal 9 (Killed)");
}

TEST_CASE("exec: a timeout kills the whole process group", "[exec]") {
    TempDir dir("exec");
    const auto child_pid = dir.path() / "child.pid";
    const auto own_pid = dir.path() / "own.pid";
    const std::string slow = script(dir, "slow.sh",
                                    "sleep 30 &\n"
                                    "echo $! > '" +
                                        child_pid.string() + "'\n" + "echo $$ > '" +
                                        own_pid.string() + "'\n" + "sleep 30");
    Results results;
    ExecRunner runner(results.callback());
    runner.run("slow", {"/bin/sh", slow}, 1s);
    REQUIRE(results.wait_for(1));
    const ExecResult r = results.of("slow");
    CHECK_FALSE(r.ok());
    CHECK(r.kind == Kind::Timeout);
    CHECK(r.took >= 1s);
    CHECK(r.describe() == "timed out after 1s (killed)");
    // Both pid files were written well within the second.
    REQUIRE(wait_for_line(child_pid, 1s));
    REQUIRE(wait_for_line(own_pid, 1s));
    CHECK(process_gone(read_pid(own_pid)));
    CHECK(process_gone(read_pid(child_pid)));
}

TEST_CASE("exec: at most max_parallel programs run at once, the rest wait their turn", "[exec]") {
    TempDir dir("exec");
    const auto log = dir.path() / "log";
    // Nanosecond start and end stamps; a job that waited starts only after
    // one that ran has written its end.
    const std::string job =
        script(dir, "job.sh",
               "echo \"s $(date +%s%N)\" >> '" + log.string() + "'\n" + "sleep 1\n" +
                   "echo \"e $(date +%s%N)\" >> '" + log.string() + "'");
    Results results;
    ExecRunner runner(results.callback());  // the defaults: 4 at once, 64 queued
    for (int i = 0; i < 8; ++i) {
        runner.run("job" + std::to_string(i), {"/bin/sh", job}, 30s);
    }
    REQUIRE(results.wait_for(8, 60s));
    for (int i = 0; i < 8; ++i) {
        CHECK(results.of("job" + std::to_string(i)).ok());
    }

    std::vector<std::pair<long long, int>> events;  // (stamp, +1 start / -1 end)
    std::istringstream lines(read_text(log));
    std::string what;
    long long stamp = 0;
    while (lines >> what >> stamp) {
        events.emplace_back(stamp, what == "s" ? +1 : -1);
    }
    const auto starts =
        std::count_if(events.begin(), events.end(), [](const auto& e) { return e.second == +1; });
    CHECK(starts == 8);
    CHECK(events.size() == 16);
    // Ends first on equal stamps: a job that ended does not overlap one that started then.
    std::sort(events.begin(), events.end());
    int now = 0, most = 0;
    for (const auto& e : events) {
        now += e.second;
        most = std::max(most, now);
    }
    CHECK(most == 4);
}

TEST_CASE("exec: beyond the queue's bound a job is rejected at once; stop drops the queue",
          "[exec]") {
    TempDir dir("exec");
    const auto started = dir.path() / "started";
    const std::string long_job =
        script(dir, "long.sh", "echo $$ > '" + started.string() + "'\nexec sleep 30");
    Results results;
    ExecRunner runner(results.callback(), 1, 2);
    const auto t0 = std::chrono::steady_clock::now();
    runner.run("long", {"/bin/sh", long_job}, 60s);
    REQUIRE(wait_for_line(started));
    runner.run("queued1", {"/bin/true"});
    runner.run("queued2", {"/bin/true"});
    CHECK(results.size() == 0);
    runner.run("overflow", {"/bin/true"});
    // Reported from inside run(), before it returned.
    REQUIRE(results.size() == 1);
    const ExecResult over = results.of("overflow");
    CHECK(over.rejected);
    CHECK_FALSE(over.ok());
    CHECK(over.describe() == "not run: too many exec actions waiting");
    CHECK(over.argv == std::vector<std::string>{"/bin/true"});

    runner.stop();
    CHECK(std::chrono::steady_clock::now() - t0 < 20s);  // run() never waited for the sleep
    const ExecResult killed = results.of("long");
    CHECK(killed.kind == Kind::Stopped);
    CHECK(killed.describe() == "stopped (gateway shutting down)");
    // The queued ones were dropped without a report.
    CHECK(results.size() == 2);

    runner.run("late", {"/bin/true"});
    CHECK(results.of("late").rejected);
}

TEST_CASE("exec: a missing program is a spawn failure with the errno text", "[exec]") {
    Results results;
    ExecRunner runner(results.callback());
    runner.run("abs", {"/nonexistent/tidegate-no-such-program", "x"});
    runner.run("on_path", {"tidegate-no-such-program-on-path"});
    REQUIRE(results.wait_for(2));
    for (const char* rule : {"abs", "on_path"}) {
        const ExecResult r = results.of(rule);
        CHECK_FALSE(r.ok());
        CHECK(r.kind == Kind::SpawnFailed);
        CHECK(r.code == ENOENT);
    }
    CHECK(results.of("abs").describe() ==
          "cannot run /nonexistent/tidegate-no-such-program: No such file or directory");
}

TEST_CASE("exec: shell syntax in arguments arrives literally, one argv entry each", "[exec]") {
    TempDir dir("exec");
    const auto out = dir.path() / "argv";
    const auto side = [&](const std::string& name) { return (dir.path() / name).string(); };
    // Writes each argument it got, NUL-terminated.
    const std::string dump = script(
        dir, "dump.sh", "for a in \"$@\"; do printf '%s\\0' \"$a\"; done > '" + out.string() + "'");
    const std::vector<std::string> args = {
        "hot; touch " + side("semicolon"),
        "$(touch " + side("subst") + ")",
        "`touch " + side("backtick") + "`",
        "line one\ntouch " + side("newline"),
        "| touch " + side("pipe"),
        "&& touch " + side("and"),
        "> " + side("redirect"),
        "*",
        "$HOME",
        "",
        "'single' \"double\" \\back",
    };
    std::vector<std::string> argv = {"/bin/sh", dump};
    argv.insert(argv.end(), args.begin(), args.end());
    Results results;
    ExecRunner runner(results.callback());
    runner.run("literal", argv, 10s);
    REQUIRE(results.wait_for(1));
    const ExecResult r = results.of("literal");
    REQUIRE(r.ok());
    CHECK(r.argv == argv);

    std::vector<std::string> got;
    const std::string text = read_text(out);
    std::size_t from = 0;
    for (std::size_t nul = text.find('\0'); nul != std::string::npos; nul = text.find('\0', from)) {
        got.push_back(text.substr(from, nul - from));
        from = nul + 1;
    }
    CHECK(from == text.size());
    CHECK(got == args);
    for (const char* name :
         {"semicolon", "subst", "backtick", "newline", "pipe", "and", "redirect"}) {
        INFO(name);
        CHECK_FALSE(std::filesystem::exists(side(name)));
    }
}

TEST_CASE("exec: stop while a long job runs returns promptly and kills it", "[exec]") {
    TempDir dir("exec");
    const auto started = dir.path() / "started";
    const std::string long_job =
        script(dir, "long.sh", "echo $$ > '" + started.string() + "'\nexec sleep 30");
    Results results;
    ExecRunner runner(results.callback());
    runner.run("long", {"/bin/sh", long_job}, 60s);
    REQUIRE(wait_for_line(started));
    const pid_t pid = read_pid(started);
    const auto t0 = std::chrono::steady_clock::now();
    runner.stop();
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    // Reported before stop() returned.
    REQUIRE(results.size() == 1);
    CHECK(results.of("long").kind == Kind::Stopped);
    CHECK(process_gone(pid));
    runner.stop();  // idempotent
    CHECK(results.size() == 1);
}
