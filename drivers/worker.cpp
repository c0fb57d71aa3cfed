#include "worker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace tg::drivers {

Worker::Worker() : wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (wake_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
}

Worker::~Worker() {
    stop();
    ::close(wake_fd_);
}

void Worker::start(std::function<void()> body) {
    if (thread_.joinable()) throw std::logic_error("driver thread started twice");
    stopping_ = false;
    std::uint64_t pending;
    if (::read(wake_fd_, &pending, sizeof pending) < 0) {
        // Nothing pending (EAGAIN): the usual case.
    }
    thread_ = std::thread(std::move(body));
}

void Worker::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    const std::uint64_t one = 1;
    ssize_t n;
    do {
        n = ::write(wake_fd_, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

bool Worker::sleep_for(std::chrono::steady_clock::duration d) {
    std::unique_lock lock(mutex_);
    return !cv_.wait_for(lock, d, [&] { return stopping_.load(); });
}

}  // namespace tg::drivers
