// Sliding-window aggregates: running shifted sums with periodic exact rebuilds
// (see window.h for why), monotonic deques for min and max.
#include "rules/window.h"

#include <algorithm>
#include <cmath>

namespace tg::rules {

Window::Window(std::int64_t length_ns, bool extremes) : length_(length_ns), extremes_(extremes) {}

void Window::track_extremes() {
    if (extremes_) return;
    extremes_ = true;
    min_q_.clear();
    max_q_.clear();
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        const Entry& e = entries_[i];
        if (e.numeric) push_extremes(e.t, e.v);
    }
}

void Window::push_extremes(std::int64_t t, double v) {
    while (!min_q_.empty() && min_q_.back().v >= v)
        min_q_.pop_back();
    min_q_.push_back(Point{t, v});
    while (!max_q_.empty() && max_q_.back().v <= v)
        max_q_.pop_back();
    max_q_.push_back(Point{t, v});
}

void Window::add_sums(const Entry& e, double sign) {
    const double t = shifted_time(e.t);
    const double v = e.v - k_;
    s_v_ += sign * v;
    s_vv_ += sign * v * v;
    s_t_ += sign * t;
    s_tt_ += sign * t * t;
    s_tv_ += sign * t * v;
}

void Window::rebuild() {
    s_v_ = s_vv_ = s_t_ = s_tt_ = s_tv_ = 0;
    evicted_since_rebuild_ = 0;
    count_at_rebuild_ = entries_.size();
    if (entries_.empty()) {
        anchored_ = false;
        t0_ = 0;
        k_ = 0;
        return;
    }
    t0_ = entries_.front().t;
    k_ = 0;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        if (entries_[i].numeric) {
            k_ = entries_[i].v;
            break;
        }
    }
    anchored_ = true;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        if (entries_[i].numeric) add_sums(entries_[i], 1.0);
    }
}

void Window::add(std::int64_t t_ns, double value, bool numeric) {
    expire(t_ns);
    if (!numeric) value = 0;
    const Entry e{t_ns, value, numeric};
    entries_.push_back(e);
    if (!numeric) return;
    ++numeric_;
    if (!anchored_) {
        t0_ = t_ns;
        k_ = value;
        anchored_ = true;
    }
    add_sums(e, 1.0);
    if (extremes_) push_extremes(t_ns, value);
}

void Window::evict(std::int64_t cutoff) {
    std::size_t evicted = 0;
    while (!entries_.empty() && entries_.front().t <= cutoff) {
        const Entry& e = entries_.front();
        if (e.numeric) {
            add_sums(e, -1.0);
            --numeric_;
        }
        entries_.pop_front();
        ++evicted;
    }
    if (evicted == 0) return;
    if (extremes_) {
        while (!min_q_.empty() && min_q_.front().t <= cutoff)
            min_q_.pop_front();
        while (!max_q_.empty() && max_q_.front().t <= cutoff)
            max_q_.pop_front();
    }
    evicted_since_rebuild_ += evicted;
    // Rebuild once everything present at the last rebuild has gone: the cost
    // (the current size) is at most the readings added since, so it stays
    // amortised O(1), and the shift never trails the window by more than its
    // own length.
    if (entries_.empty() || evicted_since_rebuild_ >= std::max<std::size_t>(count_at_rebuild_, 1)) {
        rebuild();
    }
}

std::optional<double> Window::stddev() const {
    if (!all_numeric()) return std::nullopt;
    const double n = static_cast<double>(numeric_);
    const double mean = s_v_ / n;
    const double var = s_vv_ / n - mean * mean;
    return var > 0 ? std::sqrt(var) : 0.0;
}

}  // namespace tg::rules
