// Runs a call that must return promptly (reading a FIFO, parsing hostile
// YAML) on a thread of its own, so that a regression fails the test after a
// bound instead of hanging the whole suite.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <utility>

namespace tg::test {

// `fn`'s result, or a test failure when it has not returned within `limit`.
// `fn` must hold copies of what it uses: after a timeout its thread is left
// running (detached) and may outlive the caller's locals. `unblock`, when
// given, runs after a timeout to let that thread finish (e.g. by opening the
// other end of a FIFO).
template <class Fn>
auto finishes_within(std::chrono::seconds limit, Fn fn, const std::function<void()>& unblock = {})
    -> decltype(fn()) {
    using R = decltype(fn());
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    std::future<R> done = task->get_future();
    std::thread([task] { (*task)(); }).detach();
    if (done.wait_for(limit) != std::future_status::ready) {
        if (unblock) unblock();
        FAIL("did not return within " << limit.count() << " s");
    }
    return done.get();
}

}  // namespace tg::test
