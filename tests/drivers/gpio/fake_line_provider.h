// A fake GPIO line provider for tests: lines are plain state the test
// drives (levels, bursts of edges, unplugging the chip) and inspects (what
// was requested, what an output was set to). Thread-safe: the gpio driver
// reads it from its own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "drivers/gpio/line_provider.h"

namespace tg::test {

class FakeLineProvider final : public drivers::LineProvider {
  public:
    // What the driver asked for and did with one line.
    struct State {
        bool requested = false;
        bool is_output = false;
        drivers::LineRequest request;
        drivers::Bias bias = drivers::Bias::AsIs;
        bool level = false;         // logical level
        std::deque<bool> edges;     // pending edges (level after each)
        bool idle = false;          // the driver came back for more with none pending
        std::vector<bool> written;  // outputs: initial, then every set()
        int requests = 0;
    };

    explicit FakeLineProvider(std::set<std::string> chips = {"gpiochip0"})
        : chips_(std::move(chips)) {}

    std::unique_ptr<drivers::Line> request_input(const drivers::LineRequest& r,
                                                 drivers::Bias bias) override {
        std::lock_guard lock(mutex_);
        State& s = claim(r);
        s.bias = bias;
        s.is_output = false;
        return std::make_unique<Handle>(*this, key(r));
    }
    std::unique_ptr<drivers::Line> request_output(const drivers::LineRequest& r,
                                                  bool initial) override {
        std::lock_guard lock(mutex_);
        State& s = claim(r);
        s.is_output = true;
        s.level = initial;
        s.written.push_back(initial);
        return std::make_unique<Handle>(*this, key(r));
    }

    // The test's side.
    void set_level(const std::string& chip, unsigned line, bool level) {
        std::lock_guard lock(mutex_);
        lines_[chip + ":" + std::to_string(line)].level = level;
    }
    // A burst of edges arriving at once; the line ends at the last level.
    void push_edges(const std::string& chip, unsigned line, const std::vector<bool>& levels) {
        std::lock_guard lock(mutex_);
        State& s = lines_[chip + ":" + std::to_string(line)];
        for (bool l : levels)
            s.edges.push_back(l);
        if (!levels.empty()) {
            s.level = levels.back();
            s.idle = false;
        }
        cv_.notify_all();
    }
    // Waits until the driver has taken every pending edge and handled it
    // (it is waiting for the next one), so a test may move the clock on.
    bool wait_drained(const std::string& chip, unsigned line,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, timeout, [&] {
            const State& s = lines_[chip + ":" + std::to_string(line)];
            return s.edges.empty() && s.idle;
        });
    }
    // The chip disappears (USB GPIO expander unplugged): requests fail and
    // lines already held fail on their next use.
    void unplug(const std::string& chip) {
        std::lock_guard lock(mutex_);
        chips_.erase(chip);
        ++generation_[chip];
        cv_.notify_all();
    }
    void plug(const std::string& chip) {
        std::lock_guard lock(mutex_);
        chips_.insert(chip);
    }
    State state(const std::string& chip, unsigned line) {
        std::lock_guard lock(mutex_);
        return lines_[chip + ":" + std::to_string(line)];
    }
    // Released lines (handles destroyed).
    int released() {
        std::lock_guard lock(mutex_);
        return released_;
    }

  private:
    class Handle final : public drivers::Line {
      public:
        Handle(FakeLineProvider& p, std::string key)
            : p_(p),
              key_(std::move(key)),
              chip_(key_.substr(0, key_.find(':'))),
              generation_(p.generation_[chip_]) {}
        ~Handle() override {
            std::lock_guard lock(p_.mutex_);
            ++p_.released_;
            p_.lines_[key_].requested = false;
        }
        bool get() override {
            std::lock_guard lock(p_.mutex_);
            check();
            return p_.lines_[key_].level;
        }
        void set(bool level) override {
            std::lock_guard lock(p_.mutex_);
            check();
            State& s = p_.lines_[key_];
            if (!s.is_output) throw std::logic_error("set() on an input line");
            s.level = level;
            s.written.push_back(level);
        }
        std::optional<drivers::Edge> wait_edge(std::chrono::milliseconds timeout) override {
            std::unique_lock lock(p_.mutex_);
            State& s = p_.lines_[key_];
            if (s.is_output) throw std::logic_error("wait_edge() on an output line");
            if (s.edges.empty() && !s.idle) {
                s.idle = true;
                p_.cv_.notify_all();
            }
            p_.cv_.wait_for(lock, timeout, [&] {
                return !s.edges.empty() || p_.generation_[chip_] != generation_;
            });
            check();
            if (s.edges.empty()) return std::nullopt;
            const bool level = s.edges.front();
            s.edges.pop_front();
            p_.cv_.notify_all();
            return drivers::Edge{level};
        }

      private:
        void check() {
            if (p_.generation_[chip_] != generation_) {
                throw std::runtime_error("GPIO chip '" + chip_ + "' is gone");
            }
        }
        FakeLineProvider& p_;
        std::string key_;
        std::string chip_;
        int generation_;
    };

    static std::string key(const drivers::LineRequest& r) {
        return r.chip + ":" + std::to_string(r.line);
    }
    State& claim(const drivers::LineRequest& r) {
        if (!chips_.count(r.chip)) throw std::runtime_error("GPIO chip '" + r.chip + "' not found");
        State& s = lines_[key(r)];
        if (s.requested) throw std::runtime_error("line busy");
        s.requested = true;
        s.request = r;
        ++s.requests;
        return s;
    }

    std::mutex mutex_;
    std::condition_variable cv_;
    std::set<std::string> chips_;
    std::map<std::string, int> generation_;
    std::map<std::string, State> lines_;
    int released_ = 0;
};

}  // namespace tg::test
