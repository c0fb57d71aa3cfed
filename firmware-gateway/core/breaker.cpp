#include "core/breaker.h"

#include <algorithm>

namespace tg {

std::string_view breaker_state_name(BreakerState s) {
    switch (s) {
        case BreakerState::Closed:
            return "closed";
        case BreakerState::Open:
            return "open";
        case BreakerState::HalfOpen:
            return "half_open";
    }
    return "closed";
}

void Breaker::enter(BreakerState s) {
    if (s == state_) return;
    state_ = s;
    changes_.push_back(BreakerChange{s, failures_, detail_});
}

void Breaker::open(MonoTime now, std::chrono::milliseconds d) {
    open_for_now_ = std::min(d, kMaxBreakerOpen);
    open_until_ = now + open_for_now_;
    enter(BreakerState::Open);
}

bool Breaker::allow(MonoTime now) {
    switch (state_) {
        case BreakerState::Closed:
            return true;
        case BreakerState::Open:
            if (now < open_until_) return false;
            enter(BreakerState::HalfOpen);
            trial_ = true;
            return true;
        case BreakerState::HalfOpen:
            if (trial_) return false;
            trial_ = true;
            return true;
    }
    return true;
}

void Breaker::succeeded() {
    trial_ = false;
    failures_ = 0;
    open_for_now_ = std::chrono::milliseconds(0);
    enter(BreakerState::Closed);
}

void Breaker::failed(MonoTime now, std::string detail) {
    detail_ = std::move(detail);
    if (failures_ < UINT32_MAX) ++failures_;
    if (state_ == BreakerState::HalfOpen) {
        trial_ = false;
        open(now, open_for_now_ * 2);
    } else if (state_ == BreakerState::Closed && failures_ >= std::max(1u, settings_.failures)) {
        open(now, settings_.open_for);
    }
}

}  // namespace tg
