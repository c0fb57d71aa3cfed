#include "exec_runner.h"

#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <system_error>

#include "core/units.h"

namespace tg {

using Kind = drivers::ProcessOutcome::Kind;

bool ExecResult::ok() const {
    return !rejected && kind == Kind::Exited && code == 0;
}

std::string ExecResult::describe() const {
    if (rejected) return "not run: too many exec actions waiting";
    switch (kind) {
        case Kind::Exited:
            return "exit " + std::to_string(code) + (err_line.empty() ? "" : ": " + err_line);
        case Kind::Signaled: {
            // sigdescr_np, unlike strsignal, is safe from any thread.
            const char* name = ::sigdescr_np(code);
            return "signal " + std::to_string(code) +
                   (name ? std::string(" (") + name + ")" : std::string());
        }
        case Kind::Timeout:
            return "timed out after " + format_duration(timeout) + " (killed)";
        case Kind::SpawnFailed:
            return "cannot run " + (argv.empty() ? std::string("an empty argv") : argv.front()) +
                   ": " + std::generic_category().message(code);
        case Kind::Stopped:
            return "stopped (gateway shutting down)";
    }
    return "unknown outcome";
}

ExecRunner::ExecRunner(std::function<void(ExecResult)> on_done, std::size_t max_parallel,
                       std::size_t max_queued)
    : on_done_(std::move(on_done)),
      max_parallel_(max_parallel),
      max_queued_(max_queued),
      stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!on_done_) throw std::invalid_argument("ExecRunner without a result callback");
    if (max_parallel_ == 0) throw std::invalid_argument("ExecRunner with max_parallel 0");
    if (stop_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

ExecRunner::~ExecRunner() {
    stop();
    ::close(stop_fd_);
}

void ExecRunner::run(std::string rule, std::vector<std::string> argv,
                     std::chrono::milliseconds timeout) {
    {
        std::lock_guard lock(mutex_);
        // Jobs beyond the max_parallel that run are the ones that wait.
        if (!stopping_ && running_ + queue_.size() < max_parallel_ + max_queued_ &&
            thread_for_one_more()) {
            queue_.push_back(Job{std::move(rule), std::move(argv), timeout});
            cv_.notify_one();
            return;
        }
    }
    ExecResult r;
    r.rule = std::move(rule);
    r.argv = std::move(argv);
    r.timeout = timeout;
    r.rejected = true;
    on_done_(std::move(r));
}

bool ExecRunner::thread_for_one_more() {
    const std::size_t outstanding = running_ + queue_.size() + 1;
    if (threads_.size() < max_parallel_ && threads_.size() < outstanding) {
        try {
            threads_.emplace_back([this] { thread_main(); });
        } catch (const std::system_error&) {
            // Out of threads: those there will get to the job in turn.
            return !threads_.empty();
        }
    }
    return true;
}

void ExecRunner::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        queue_.clear();
    }
    cv_.notify_all();
    // Readable from now on: every run_process in progress kills its group.
    const std::uint64_t one = 1;
    ssize_t n;
    do {
        n = ::write(stop_fd_, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
    // With stopping_ set, run() no longer touches threads_.
    for (std::thread& t : threads_) {
        if (t.joinable()) t.join();
    }
}

void ExecRunner::thread_main() {
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            job = std::move(queue_.front());
            queue_.pop_front();
            ++running_;
        }
        ExecResult r = execute(std::move(job));
        {
            // Freed before reporting, so a caller that reacts to the result
            // with a new run() finds the slot free.
            std::lock_guard lock(mutex_);
            --running_;
        }
        on_done_(std::move(r));
    }
}

ExecResult ExecRunner::execute(Job job) const {
    const auto t0 = std::chrono::steady_clock::now();
    // stdout is nobody's business here: max_out 0 reads and drops it.
    const drivers::ProcessOutcome o =
        drivers::run_process(job.argv, job.timeout, stop_fd_, 0, kMaxStderr);
    ExecResult r;
    r.took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    r.rule = std::move(job.rule);
    r.argv = std::move(job.argv);
    r.kind = o.kind;
    r.code = o.code;
    r.err_line = drivers::first_line(o.err);
    r.timeout = job.timeout;
    return r;
}

}  // namespace tg
