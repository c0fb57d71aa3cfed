// Sliding windows over a sensor's readings for the window functions of SPEC
// §5.1 (avg, min, max, sum, count, stddev, delta, rate). One Window holds the
// readings of one sensor with time in (now - length, now]; every rule using the
// same (sensor, length) shares it. Each reading costs amortised O(1):
//   - sums are kept running, relative to a shift (a recent time and value),
//     and rebuilt from the entries once every entry present at the previous
//     rebuild has left, which bounds rounding drift and keeps epoch-scale
//     timestamps out of the least-squares arithmetic;
//   - min and max come from monotonic deques.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace tg::rules {

// A FIFO over a power-of-two vector; never shrinks, so a steady stream of
// readings allocates nothing once the window has filled.
template <class T>
class Ring {
  public:
    bool empty() const { return size_ == 0; }
    std::size_t size() const { return size_; }
    const T& front() const { return buf_[head_]; }
    const T& back() const { return buf_[(head_ + size_ - 1) & (buf_.size() - 1)]; }
    const T& operator[](std::size_t i) const { return buf_[(head_ + i) & (buf_.size() - 1)]; }

    void push_back(const T& v) {
        if (size_ == buf_.size()) grow();
        buf_[(head_ + size_) & (buf_.size() - 1)] = v;
        ++size_;
    }
    void pop_front() {
        head_ = (head_ + 1) & (buf_.size() - 1);
        --size_;
    }
    void pop_back() { --size_; }
    void clear() {
        head_ = 0;
        size_ = 0;
    }

  private:
    void grow() {
        std::vector<T> bigger(buf_.empty() ? 8 : buf_.size() * 2);
        for (std::size_t i = 0; i < size_; ++i)
            bigger[i] = (*this)[i];
        buf_ = std::move(bigger);
        head_ = 0;
    }

    std::vector<T> buf_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

class Window {
  public:
    // `length_ns` > 0. `extremes`: keep the min/max deques (only windows that a
    // min or max reads pay for them).
    Window(std::int64_t length_ns, bool extremes);

    std::int64_t length_ns() const { return length_; }
    bool tracks_extremes() const { return extremes_; }
    // Starts keeping min/max for a window created without them (on reload).
    void track_extremes();

    // A reading at `t_ns` (never earlier than the last one). Non-numeric
    // readings (booleans, strings) count but take no part in the arithmetic.
    void add(std::int64_t t_ns, double value, bool numeric);
    // Drops readings with time <= now - length. Queries describe the window
    // as of the last expire/add.
    void expire(std::int64_t now_ns) {
        if (!entries_.empty() && entries_.front().t <= now_ns - length_) evict(now_ns - length_);
    }

    std::size_t count() const { return entries_.size(); }
    // Empty window: 0. A window mixing numbers with other values: nullopt, as
    // for every numeric function below.
    std::optional<double> sum() const {
        if (entries_.empty()) return 0.0;
        if (!all_numeric()) return std::nullopt;
        return s_v_ + static_cast<double>(numeric_) * k_;
    }
    std::optional<double> avg() const {
        if (!all_numeric()) return std::nullopt;
        return k_ + s_v_ / static_cast<double>(numeric_);
    }
    std::optional<double> min() const {
        if (!all_numeric() || !extremes_ || min_q_.empty()) return std::nullopt;
        return min_q_.front().v;
    }
    std::optional<double> max() const {
        if (!all_numeric() || !extremes_ || max_q_.empty()) return std::nullopt;
        return max_q_.front().v;
    }
    std::optional<double> stddev() const;  // population
    std::optional<double> delta() const {  // last - first
        if (!all_numeric()) return std::nullopt;
        return entries_.back().v - entries_.front().v;
    }
    // Least-squares slope per second; needs two or more distinct times.
    std::optional<double> rate() const {
        if (!all_numeric() || entries_.front().t == entries_.back().t) return std::nullopt;
        const double n = static_cast<double>(numeric_);
        const double denom = n * s_tt_ - s_t_ * s_t_;
        if (!(denom > 0)) return std::nullopt;
        return (n * s_tv_ - s_t_ * s_v_) / denom;
    }

  private:
    struct Entry {
        std::int64_t t = 0;
        double v = 0;
        bool numeric = false;
    };
    struct Point {
        std::int64_t t = 0;
        double v = 0;
    };

    bool all_numeric() const { return !entries_.empty() && numeric_ == entries_.size(); }
    double shifted_time(std::int64_t t) const { return static_cast<double>(t - t0_) * 1e-9; }
    void evict(std::int64_t cutoff);
    void add_sums(const Entry& e, double sign);
    void rebuild();
    void push_extremes(std::int64_t t, double v);

    std::int64_t length_;
    bool extremes_;
    Ring<Entry> entries_;
    Ring<Point> min_q_;  // increasing values; the front is the minimum
    Ring<Point> max_q_;  // decreasing values; the front is the maximum
    std::size_t numeric_ = 0;

    // Running sums of (t - t0_) in seconds and (v - k_), over numeric entries.
    std::int64_t t0_ = 0;
    double k_ = 0;
    bool anchored_ = false;
    double s_v_ = 0, s_vv_ = 0, s_t_ = 0, s_tt_ = 0, s_tv_ = 0;
    std::size_t evicted_since_rebuild_ = 0;
    std::size_t count_at_rebuild_ = 0;
};

}  // namespace tg::rules
