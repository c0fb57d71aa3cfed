// ExecRunner: runs rule `exec` actions (SPEC §5.1) off the event loop. Each
// argument is one argv entry and no shell ever runs; at most `max_parallel`
// programs run at once, further ones wait in a bounded FIFO queue, and each
// has a timeout after which its whole process group is killed. Results come
// back through a callback on a runner thread; the gateway posts them to its
// event queue and logs / dead-letters the failures (reason `exec_failed`).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "drivers/process.h"

namespace tg {

// How one exec action went.
struct ExecResult {
    std::string rule;
    std::vector<std::string> argv;
    drivers::ProcessOutcome::Kind kind = drivers::ProcessOutcome::Kind::Exited;
    int code = 0;          // exit status, signal number or errno, as ProcessOutcome
    std::string err_line;  // first line of its stderr, excerpted
    std::chrono::milliseconds timeout{0};
    std::chrono::milliseconds took{0};  // from start to end of the run (queue wait excluded)
    bool rejected = false;              // the queue was full: never run

    // Ran and exited with status 0.
    bool ok() const;
    // Human text for a log line or a dead letter's detail: "exit 0",
    // "exit 3: <stderr line>", "timed out after 10s (killed)",
    // "cannot run /x: No such file or directory", "signal 9 (Killed)",
    // "stopped (gateway shutting down)", "not run: too many exec actions waiting".
    std::string describe() const;
};

class ExecRunner {
  public:
    static constexpr std::chrono::milliseconds kDefaultTimeout{10'000};
    // Bytes of stderr kept per run (for its first line); stdout is read and dropped.
    static constexpr std::size_t kMaxStderr = 4096;

    // on_done is called once per run() call, except for queued jobs dropped
    // by stop(): with rejected = true from inside run() when the queue is
    // full (or the runner stopped), otherwise from a runner thread when the
    // program has ended. It must not throw, call stop() or destroy the runner.
    explicit ExecRunner(std::function<void(ExecResult)> on_done, std::size_t max_parallel = 4,
                        std::size_t max_queued = 64);
    ~ExecRunner();
    ExecRunner(const ExecRunner&) = delete;
    ExecRunner& operator=(const ExecRunner&) = delete;

    // Never blocks on a program: starts it on a runner thread when fewer than
    // max_parallel run, else queues it; with max_queued already waiting it is
    // rejected at once.
    void run(std::string rule, std::vector<std::string> argv,
             std::chrono::milliseconds timeout = kDefaultTimeout);

    // Stops taking work, drops the queued jobs (not reported), kills the
    // running programs' process groups (reported with kind Stopped) and joins
    // the runner threads, so no runner thread calls on_done after it returns.
    // Later run() calls are rejected. Idempotent; the runner cannot restart.
    void stop();

  private:
    struct Job {
        std::string rule;
        std::vector<std::string> argv;
        std::chrono::milliseconds timeout{0};
    };
    // With mutex_ held: makes sure a thread will take one more job (starting
    // one if fewer than the jobs outstanding); false if none can be had.
    bool thread_for_one_more();
    void thread_main();
    ExecResult execute(Job job) const;

    std::function<void(ExecResult)> on_done_;
    const std::size_t max_parallel_;
    const std::size_t max_queued_;
    int stop_fd_ = -1;  // eventfd, readable once stop() is called: ends running programs

    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Job> queue_;    // accepted, not yet taken by a thread
    std::size_t running_ = 0;  // taken by a thread, not yet reported
    bool stopping_ = false;
    // Started lazily, one per job outstanding, never more than max_parallel;
    // they live until stop().
    std::vector<std::thread> threads_;
};

}  // namespace tg
