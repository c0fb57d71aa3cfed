// Sliding windows: the (now - D, now] edges, every aggregate against a brute
// force recomputation over long random runs (drift), and least squares on
// epoch-scale timestamps.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "rules/window.h"

using tg::rules::Window;

namespace {

constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kS = 1'000'000'000;

struct Point {
    std::int64_t t;
    double v;
};

// The readings a window of `length` holds at `now`, recomputed from scratch.
std::vector<Point> inside(const std::vector<Point>& all, std::int64_t now, std::int64_t length) {
    std::vector<Point> out;
    for (const Point& p : all) {
        if (p.t > now - length && p.t <= now) out.push_back(p);
    }
    return out;
}

double brute_rate(const std::vector<Point>& ps) {
    double mt = 0, mv = 0;
    for (const Point& p : ps) {
        mt += static_cast<double>(p.t - ps.front().t) / 1e9;
        mv += p.v;
    }
    mt /= static_cast<double>(ps.size());
    mv /= static_cast<double>(ps.size());
    double num = 0, den = 0;
    for (const Point& p : ps) {
        const double t = static_cast<double>(p.t - ps.front().t) / 1e9 - mt;
        num += t * (p.v - mv);
        den += t * t;
    }
    return num / den;
}

}  // namespace

TEST_CASE("a window holds readings with time in (now - D, now]", "[rules][window]") {
    Window w(10 * kS, true);
    w.add(0, 10, true);
    w.add(5 * kS, 20, true);
    w.expire(10 * kS - 1);
    CHECK(w.count() == 2);
    CHECK(*w.avg() == 15);
    CHECK(*w.min() == 10);
    CHECK(*w.delta() == 10);
    // Exactly D after the first reading it has left the window.
    w.expire(10 * kS);
    CHECK(w.count() == 1);
    CHECK(*w.avg() == 20);
    CHECK(*w.min() == 20);
    CHECK(*w.max() == 20);
    CHECK(*w.sum() == 20);
    CHECK(*w.delta() == 0);
    CHECK_FALSE(w.rate());  // one reading: no slope
    w.expire(15 * kS);
    CHECK(w.count() == 0);
    CHECK(*w.sum() == 0);
    CHECK_FALSE(w.avg());
    CHECK_FALSE(w.min());
    CHECK_FALSE(w.max());
    CHECK_FALSE(w.stddev());
    CHECK_FALSE(w.delta());
    CHECK_FALSE(w.rate());
}

TEST_CASE("window aggregates on a small known series", "[rules][window]") {
    Window w(60 * kS, true);
    const std::vector<double> vs{2, 4, 4, 4, 5, 5, 7, 9};
    for (std::size_t i = 0; i < vs.size(); ++i)
        w.add(static_cast<std::int64_t>(i) * kS, vs[i], true);
    CHECK(w.count() == 8);
    CHECK(*w.sum() == 40);
    CHECK(*w.avg() == 5);
    CHECK(*w.stddev() == Approx(2.0));  // population standard deviation
    CHECK(*w.min() == 2);
    CHECK(*w.max() == 9);
    CHECK(*w.delta() == 7);
    CHECK(*w.rate() == Approx(34.0 / 42.0));  // sum dt*dv / sum dt^2 about the means
}

TEST_CASE("rate needs two distinct times and is per second", "[rules][window]") {
    Window w(60 * kS, false);
    w.add(kS, 1, true);
    w.add(kS, 3, true);
    CHECK_FALSE(w.rate());
    w.add(3 * kS, 5, true);
    // Points (1,1) (1,3) (3,5): slope 1.5 per second.
    CHECK(*w.rate() == Approx(1.5));
    Window ms(60 * kS, false);
    ms.add(0, 0, true);
    ms.add(500 * kMs, 1, true);
    CHECK(*ms.rate() == Approx(2.0));
}

TEST_CASE("non-numeric readings count but make the arithmetic missing", "[rules][window]") {
    Window w(60 * kS, true);
    w.add(0, 0, false);
    w.add(kS, 0, false);
    CHECK(w.count() == 2);
    CHECK_FALSE(w.sum());
    CHECK_FALSE(w.avg());
    CHECK_FALSE(w.max());
}

TEST_CASE("min and max can be switched on for a window that has readings", "[rules][window]") {
    Window w(60 * kS, false);
    for (int i = 0; i < 10; ++i)
        w.add(i * kS, (i * 7) % 10, true);
    CHECK_FALSE(w.max());
    w.track_extremes();
    CHECK(*w.max() == 9);
    CHECK(*w.min() == 0);
    w.expire(60 * kS + 3 * kS);  // readings at 0..3 s have left
    CHECK(*w.min() == 2);        // values left: 8 5 2 9 6 3
}

TEST_CASE("least squares stays exact on epoch-scale timestamps", "[rules][window]") {
    // Nanoseconds since 1970 around 2027, as replay uses: a naive sum of t^2
    // would lose every digit of the slope.
    const std::int64_t base = 1'800'000'000LL * kS;
    Window w(300 * kS, false);
    for (int i = 0; i < 3000; ++i) {
        const std::int64_t t = base + i * 100 * kMs;
        w.add(t, -18.0 + 0.002 * (static_cast<double>(i) / 10.0), true);
    }
    CHECK(*w.rate() == Approx(0.002).epsilon(1e-9));
    CHECK(*w.delta() == Approx(0.002 * 299.9).epsilon(1e-9));
}

TEST_CASE("running sums match a brute force recomputation over long runs", "[rules][window]") {
    std::mt19937_64 rng(12345);
    std::uniform_real_distribution<double> noise(-5, 5);
    std::uniform_int_distribution<std::int64_t> gap(1 * kMs, 400 * kMs);
    const std::int64_t length = 10 * kS;
    Window w(length, true);
    std::vector<Point> all;
    std::int64_t t = 1'700'000'000LL * kS;
    double level = 1e6;  // a large offset: catastrophic cancellation bait
    for (int i = 0; i < 60'000; ++i) {
        t += gap(rng);
        level += noise(rng) * 0.01;
        const double v = level + noise(rng);
        all.push_back({t, v});
        w.add(t, v, true);
        if (i % 997 != 0) continue;
        const std::int64_t now = t + gap(rng) * 5;
        w.expire(now);
        const std::vector<Point> ps = inside(all, now, length);
        INFO("reading " << i);
        REQUIRE(w.count() == ps.size());
        if (ps.empty()) continue;
        double sum = 0, mn = ps.front().v, mx = ps.front().v;
        for (const Point& p : ps) {
            sum += p.v;
            mn = std::min(mn, p.v);
            mx = std::max(mx, p.v);
        }
        const double mean = sum / static_cast<double>(ps.size());
        double var = 0;
        for (const Point& p : ps)
            var += (p.v - mean) * (p.v - mean);
        var /= static_cast<double>(ps.size());
        CHECK(*w.sum() == Approx(sum).epsilon(1e-12));
        CHECK(*w.avg() == Approx(mean).epsilon(1e-12));
        CHECK(*w.min() == mn);
        CHECK(*w.max() == mx);
        CHECK(*w.delta() == ps.back().v - ps.front().v);
        CHECK(*w.stddev() == Approx(std::sqrt(var)).epsilon(1e-7));
        if (ps.size() >= 2) CHECK(*w.rate() == Approx(brute_rate(ps)).epsilon(1e-6).margin(1e-9));
    }
}
