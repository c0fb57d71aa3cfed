#include "event_queue.h"

namespace tg {

Lane lane_of(const Message& m) {
    return std::visit([](const auto& msg) { return lane_of<std::decay_t<decltype(msg)>>(); }, m);
}

namespace {
std::size_t input_cost(const MqttIncoming& m) {
    return m.topic.size() + m.payload.size() + EventQueue::kInputOverhead;
}
}  // namespace

bool EventQueue::post(Message m) {
    switch (lane_of(m)) {
        case Lane::Control:
            post_control(std::move(m));
            return true;
        case Lane::Input:
            return offer_input(std::get<MqttIncoming>(std::move(m)));
        case Lane::Data:
            break;
    }
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return closed_ || data_count_ < capacity_; });
    if (closed_) return false;
    ++data_count_;
    items_.push_back(std::move(m));
    lock.unlock();
    not_empty_.notify_one();
    return true;
}

void EventQueue::post_control(Message m) {
    if (lane_of(m) == Lane::Input) {
        offer_input(std::get<MqttIncoming>(std::move(m)));
        return;
    }
    {
        std::lock_guard lock(mutex_);
        if (lane_of(m) == Lane::Data) ++data_count_;
        items_.push_back(std::move(m));
    }
    not_empty_.notify_one();
}

bool EventQueue::offer_input(MqttIncoming m) {
    const std::size_t cost = input_cost(m);
    {
        std::lock_guard lock(mutex_);
        // One message always fits when the lane is empty, however large:
        // shedding it would make a big payload impossible to receive at all.
        if (closed_ || (!input_.empty() && input_bytes_ + cost > input_capacity_)) {
            ++shed_.count;
            shed_.last_topic = std::move(m.topic);
            return false;
        }
        input_bytes_ += cost;
        input_.push_back(std::move(m));
    }
    not_empty_.notify_one();
    return true;
}

std::optional<Message> EventQueue::take_locked() {
    if (!items_.empty()) {
        Message m = std::move(items_.front());
        items_.pop_front();
        if (lane_of(m) == Lane::Data) {
            --data_count_;
            not_full_.notify_one();
        }
        return m;
    }
    if (!input_.empty()) {
        input_bytes_ -= input_cost(input_.front());
        Message m{std::move(input_.front())};
        input_.pop_front();
        return m;
    }
    return std::nullopt;
}

std::optional<Message> EventQueue::pop_until(MonoTime deadline) {
    std::unique_lock lock(mutex_);
    not_empty_.wait_until(lock, deadline, [&] { return !items_.empty() || !input_.empty(); });
    return take_locked();
}

std::optional<Message> EventQueue::try_pop() {
    std::lock_guard lock(mutex_);
    return take_locked();
}

std::size_t EventQueue::close() {
    std::size_t dropped = 0;
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        dropped = input_.size();
        shed_.count += dropped;
        if (!input_.empty()) shed_.last_topic = input_.back().topic;
        input_.clear();
        input_bytes_ = 0;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
    return dropped;
}

std::size_t EventQueue::size() const {
    std::lock_guard lock(mutex_);
    return items_.size() + input_.size();
}

std::size_t EventQueue::input_size() const {
    std::lock_guard lock(mutex_);
    return input_.size();
}

EventQueue::Shed EventQueue::shed() const {
    std::lock_guard lock(mutex_);
    return shed_;
}

}  // namespace tg
