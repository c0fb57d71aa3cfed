// Shared test helpers for drivers: a Sink that records what drivers post
// (from any thread, with waits for threaded drivers), sensor specs built
// through the real config loader, and the runner for data-driven cases
// (tests/drivers/<name>/cases/<case>/ = a fake tree + case.yaml).
#pragma once

#include "core/log.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "../core/temp_dir.h"
#include "config.h"
#include "core/clock.h"
#include "drivers/driver.h"

namespace tg::test {

struct BadRecord {
    std::string sensor;
    std::string reason;
    std::string detail;
};

class RecordingSink final : public drivers::Sink {
  public:
    void reading(Reading r) override {
        std::lock_guard lock(mutex_);
        readings_.push_back(std::move(r));
        changed_.notify_all();
    }
    void bad_reading(const std::string& sensor, std::string reason, std::string detail) override {
        std::lock_guard lock(mutex_);
        bad_.push_back(BadRecord{sensor, std::move(reason), std::move(detail)});
        changed_.notify_all();
    }

    std::vector<Reading> readings() const {
        std::lock_guard lock(mutex_);
        return readings_;
    }
    std::vector<BadRecord> bad() const {
        std::lock_guard lock(mutex_);
        return bad_;
    }
    // Waits until at least `n` readings (or bad readings) arrived; true if so.
    bool wait_readings(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return readings_.size() >= n; });
    }
    bool wait_bad(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return bad_.size() >= n; });
    }
    // Waits for a bad reading with this reason; true if one arrived.
    bool wait_bad_reason(const std::string& reason,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] {
            return std::any_of(bad_.begin(), bad_.end(),
                               [&](const BadRecord& b) { return b.reason == reason; });
        });
    }
    void clear() {
        std::lock_guard lock(mutex_);
        readings_.clear();
        bad_.clear();
    }

  private:
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Reading> readings_;
    std::vector<BadRecord> bad_;
};

// A sensor spec as the gateway would build it: the options go through the
// config loader (types, defaults, unknown keys, the driver's own checks).
// `options` is YAML flow text, e.g. "{path: /x, scale: 0.001}".
inline drivers::SensorSpec make_spec(const std::string& driver, const std::string& options,
                                     const std::string& type = "number",
                                     const std::string& name = "test.sensor",
                                     const std::string& interval = "5s") {
    const std::string text = "sensors:\n  - name: " + name + "\n    driver: " + driver +
                             "\n    type: " + type + "\n    interval: " + interval +
                             "\n    options: " + options + "\n";
    const Config c = parse_config(text, "test.yaml");
    return c.sensors.at(0).spec();
}

// An output's options as the config loader validates them.
inline drivers::Options make_output_options(const std::string& driver, const std::string& options) {
    const std::string text = "sensors: []\noutputs:\n  - name: out\n    driver: " + driver +
                             "\n    options: " + options + "\n";
    const Config c = parse_config(text, "test.yaml");
    return c.outputs.at(0).options;
}

// Valid options for an output driver with one value replaced afterwards, so
// that a driver's own check is tested on its own: the config loader runs the
// same check (it creates each output once) and would refuse the file first.
inline drivers::Options output_options_with(const std::string& driver, const std::string& valid,
                                            const std::string& key, drivers::OptValue value) {
    drivers::Options o = make_output_options(driver, valid);
    o.set(key, std::move(value));
    return o;
}

// The errors the config loader reports for a sensor with these options (the
// driver's own checks included), joined by newlines; "" when it loads.
inline std::string config_errors(const std::string& driver, const std::string& options,
                                 const std::string& type = "number") {
    const std::string text = "sensors:\n  - name: test.sensor\n    driver: " + driver +
                             "\n    type: " + type + "\n    options: " + options + "\n";
    try {
        parse_config(text, "test.yaml");
    } catch (const LoadError& e) {
        std::string out;
        for (const SourceError& item : e.diagnostics().items())
            out += item.format() + "\n";
        return out;
    }
    return "";
}

// The same for an output.
inline std::string output_config_errors(const std::string& driver, const std::string& options) {
    const std::string text = "sensors: []\noutputs:\n  - name: out\n    driver: " + driver +
                             "\n    options: " + options + "\n";
    try {
        parse_config(text, "test.yaml");
    } catch (const LoadError& e) {
        std::string out;
        for (const SourceError& item : e.diagnostics().items())
            out += item.format() + "\n";
        return out;
    }
    return "";
}

inline std::filesystem::path source_dir() {
    return std::filesystem::path(TIDEGATE_SOURCE_DIR);
}

inline std::string read_text(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

inline void write_text(const std::filesystem::path& p, const std::string& text) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
}

}  // namespace tg::test

namespace tg::test {

// Captures what is written to standard error (the log) while alive, with
// logging at info level meanwhile (the test runner keeps it off otherwise).
class StderrCapture {
  public:
    StderrCapture() : file_("stderr"), level_(tg::log_level()) {
        tg::set_log_level(tg::LogLevel::Info);
        std::fflush(stderr);
        saved_ = ::dup(2);
        const int fd = ::open((file_.path() / "log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(fd, 2);
        ::close(fd);
    }
    ~StderrCapture() { restore(); }
    // Stops capturing and returns what was written.
    std::string finish() {
        restore();
        return read_text(file_.path() / "log");
    }

  private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
        tg::set_log_level(level_);
    }
    TempDir file_;
    tg::LogLevel level_;
    int saved_ = -1;
};

inline int count_lines_with(const std::string& text, const std::string& needle) {
    int n = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.find(needle) != std::string::npos) ++n;
    }
    return n;
}

// Runs every case of tests/drivers/<driver>/cases: each folder holds a fake
// tree (root) and case.yaml:
//   options: { ... }          # the sensor's options (root is set to the folder)
//   type: number              # optional sensor type
//   expect: 21.5              # the reading, or:
//   bad: crc                  # the bad reading's reason
//   detail: "substring"       # optional, with bad
// Returns the number of cases run.
inline int run_polled_cases(const std::string& driver) {
    namespace fs = std::filesystem;
    const fs::path dir = source_dir() / "tests" / "drivers" / driver / "cases";
    std::vector<fs::path> cases;
    for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
        if (e.is_directory()) cases.push_back(e.path());
    }
    std::sort(cases.begin(), cases.end());
    const drivers::DriverInfo* info = drivers::find_driver(driver);
    REQUIRE(info != nullptr);
    for (const fs::path& c : cases) {
        INFO("case " << c.filename().string());
        const YAML::Node y = YAML::LoadFile((c / "case.yaml").string());
        YAML::Emitter flow;
        flow << YAML::Flow << y["options"];
        const std::string type = y["type"] ? y["type"].as<std::string>() : "number";
        drivers::SensorSpec spec = make_spec(driver, flow.c_str(), type);
        spec.options.set("root", c.string());
        auto d = info->create(std::span(&spec, 1));
        REQUIRE(d->polled());
        RecordingSink sink;
        VirtualClock clock;
        StderrCapture quiet;  // the driver's own warnings are expected here
        d->poll(clock, sink);
        quiet.finish();
        const auto readings = sink.readings();
        const auto bad = sink.bad();
        if (y["bad"]) {
            REQUIRE(readings.empty());
            REQUIRE(bad.size() == 1);
            CHECK(bad[0].sensor == spec.name);
            CHECK(bad[0].reason == y["bad"].as<std::string>());
            if (y["detail"]) {
                INFO("detail: " << bad[0].detail);
                CHECK(bad[0].detail.find(y["detail"].as<std::string>()) != std::string::npos);
            }
        } else {
            INFO((bad.empty() ? std::string()
                              : "bad reading: " + bad[0].reason + ": " + bad[0].detail));
            REQUIRE(bad.empty());
            REQUIRE(readings.size() == 1);
            CHECK(readings[0].sensor == spec.name);
            const Value& v = readings[0].value;
            if (type == "boolean") {
                REQUIRE(std::holds_alternative<bool>(v));
                CHECK(std::get<bool>(v) == y["expect"].as<bool>());
            } else if (type == "string") {
                REQUIRE(std::holds_alternative<std::string>(v));
                CHECK(std::get<std::string>(v) == y["expect"].as<std::string>());
            } else {
                REQUIRE(std::holds_alternative<double>(v));
                CHECK(std::get<double>(v) == Approx(y["expect"].as<double>()).margin(1e-9));
            }
        }
    }
    return static_cast<int>(cases.size());
}

}  // namespace tg::test
