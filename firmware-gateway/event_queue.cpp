#include "event_queue.h"

namespace tg {

bool EventQueue::post(Message m) {
    std::unique_lock lock(mutex_);
    if (bounded(m)) {
        not_full_.wait(lock, [&] { return closed_ || bounded_count_ < capacity_; });
        if (closed_) return false;
        ++bounded_count_;
    }
    items_.push_back(std::move(m));
    lock.unlock();
    not_empty_.notify_one();
    return true;
}

void EventQueue::post_control(Message m) {
    {
        std::lock_guard lock(mutex_);
        if (bounded(m)) ++bounded_count_;
        items_.push_back(std::move(m));
    }
    not_empty_.notify_one();
}

std::optional<Message> EventQueue::take_locked() {
    if (items_.empty()) return std::nullopt;
    Message m = std::move(items_.front());
    items_.pop_front();
    if (bounded(m)) {
        --bounded_count_;
        not_full_.notify_one();
    }
    return m;
}

std::optional<Message> EventQueue::pop_until(MonoTime deadline) {
    std::unique_lock lock(mutex_);
    not_empty_.wait_until(lock, deadline, [&] { return !items_.empty(); });
    return take_locked();
}

std::optional<Message> EventQueue::try_pop() {
    std::lock_guard lock(mutex_);
    return take_locked();
}

void EventQueue::close() {
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
}

std::size_t EventQueue::size() const {
    std::lock_guard lock(mutex_);
    return items_.size();
}

}  // namespace tg
