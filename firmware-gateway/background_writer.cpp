#include "background_writer.h"

#include <chrono>
#include <stdexcept>

#include "core/log.h"
#include "durable_files.h"

namespace tg {

namespace {
constexpr std::chrono::seconds kRetry{1};
}

BackgroundWriter::BackgroundWriter(std::string path, std::string component, std::string what)
    : path_(std::move(path)), component_(std::move(component)), what_(std::move(what)) {
    thread_ = std::thread([this] { run(); });
}

BackgroundWriter::~BackgroundWriter() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

void BackgroundWriter::write(std::string content) {
    {
        std::lock_guard lock(mutex_);
        pending_ = std::move(content);
        ++handed_;
    }
    wake_.notify_one();
}

bool BackgroundWriter::flush() {
    std::unique_lock lock(mutex_);
    const std::uint64_t want = handed_;
    if (written_ >= want) return true;
    // The newest content already failed once: try again now, and wait for that.
    const bool retry = tried_ >= want;
    const std::uint64_t attempts = attempts_;
    if (retry) wake_.notify_one();
    done_.wait(lock, [&] {
        return written_ >= want || (tried_ >= want && (!retry || attempts_ > attempts));
    });
    return written_ >= want;
}

void BackgroundWriter::run() {
    RateLimiter limiter(std::chrono::minutes(1));
    std::unique_lock lock(mutex_);
    bool failed = false;
    for (;;) {
        if (failed) {
            wake_.wait_for(lock, kRetry);
        } else {
            wake_.wait(lock, [&] { return stop_ || pending_; });
        }
        if (!pending_) {
            if (stop_) return;
            continue;
        }
        const std::string content = *pending_;
        const std::uint64_t version = handed_;
        lock.unlock();
        std::string error;
        try {
            write_file_atomic(path_, content);
        } catch (const std::exception& e) {
            error = e.what();
        }
        lock.lock();
        failed = !error.empty();
        if (failed) {
            if (limiter.allow("write", std::chrono::steady_clock::now()))
                log_error(component_, "cannot save " + what_ + ": " + error);
        } else {
            written_ = version;
            if (handed_ == version) pending_.reset();  // nothing newer came meanwhile
        }
        tried_ = version;
        ++attempts_;
        done_.notify_all();
        // Stopping: what is still waiting gets one more try, then it is given up.
        if (stop_ && (failed || !pending_)) return;
    }
}

}  // namespace tg
