// The own thread of a driver that waits on a device (gpio, serial, command):
// start/stop with a stop flag, waits that end at once on stop, and an fd
// that becomes readable on stop so poll() loops wake up too.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace tg::drivers {

class Worker {
  public:
    Worker();
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Runs `body` on a new thread; `body` returns when stopping() is true.
    void start(std::function<void()> body);
    // Requests the stop and joins the thread. Idempotent; no-op if not started.
    void stop();

    bool stopping() const { return stopping_.load(); }
    // Sleeps up to `d`; returns false (at once) when a stop is requested.
    bool sleep_for(std::chrono::steady_clock::duration d);
    // Readable once a stop is requested: for poll() sets.
    int wake_fd() const { return wake_fd_; }

  private:
    std::thread thread_;
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    std::condition_variable cv_;
    int wake_fd_ = -1;
};

// Delays between attempts to reach a missing device: 1 s, doubling to 30 s;
// reset() after a success.
class Backoff {
  public:
    explicit Backoff(std::chrono::milliseconds first = std::chrono::seconds(1),
                     std::chrono::milliseconds max = std::chrono::seconds(30))
        : first_(first), max_(max), next_(first) {}
    std::chrono::milliseconds next() {
        const auto d = next_;
        next_ = std::min(next_ * 2, max_);
        return d;
    }
    void reset() { next_ = first_; }

  private:
    std::chrono::milliseconds first_, max_, next_;
};

}  // namespace tg::drivers
