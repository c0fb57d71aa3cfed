// Convention tests for the driver registry (ARCHITECTURE.md, habit 3): every
// drivers/<name>/ folder is a registered driver with a README, every
// registered driver has its folder, and the option tables are well formed —
// including defaults that the config loader can read.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "config.h"
#include "drivers/driver.h"

namespace fs = std::filesystem;

namespace {

const fs::path kDriversDir = fs::path(TIDEGATE_SOURCE_DIR) / "drivers";

std::vector<std::string> registered_names() {
    std::vector<std::string> out;
    for (const tg::drivers::DriverInfo& d : tg::drivers::driver_registry()) {
        out.emplace_back(d.name);
    }
    return out;
}

// Checks one option table; `owner` names it in failure messages.
void check_table(const std::string& owner, std::span<const tg::drivers::OptionSpec> table) {
    std::set<std::string> seen;
    for (const tg::drivers::OptionSpec& o : table) {
        INFO(owner << " option '" << o.name << "'");
        CHECK_FALSE(o.name.empty());
        CHECK(seen.insert(std::string(o.name)).second);  // no duplicate names
        CHECK_FALSE(o.help.empty());
        // A required option has no default, and an optional one is usable
        // without being written (checked by loading below).
        if (o.required) CHECK(o.default_value.empty());
    }
}

// A YAML value of the right type for a required option.
std::string sample(tg::drivers::OptType t) {
    switch (t) {
        case tg::drivers::OptType::Number:
            return "1.5";
        case tg::drivers::OptType::Integer:
            return "1";
        case tg::drivers::OptType::Boolean:
            return "true";
        case tg::drivers::OptType::String:
            return "x";
        case tg::drivers::OptType::Duration:
            return "1s";
        case tg::drivers::OptType::NumberList:
            return "[1]";
        case tg::drivers::OptType::StringList:
            return "[x]";
    }
    return "x";
}

std::string required_options_yaml(std::span<const tg::drivers::OptionSpec> table) {
    std::string out = "{";
    for (const tg::drivers::OptionSpec& o : table) {
        if (!o.required) continue;
        if (out.size() > 1) out += ", ";
        out += std::string(o.name) + ": " + sample(o.type);
    }
    return out + "}";
}

}  // namespace

TEST_CASE("every drivers/ folder is a registered driver with a README", "[drivers]") {
    REQUIRE(fs::is_directory(kDriversDir));
    const std::vector<std::string> names = registered_names();
    int folders = 0;
    for (const fs::directory_entry& entry : fs::directory_iterator(kDriversDir)) {
        if (!entry.is_directory()) continue;
        ++folders;
        const std::string name = entry.path().filename().string();
        INFO("drivers/" << name);
        CHECK(std::find(names.begin(), names.end(), name) != names.end());
        CHECK(fs::is_regular_file(entry.path() / "README.md"));
    }
    CHECK(folders >= 1);
}

TEST_CASE("every registered driver has its folder", "[drivers]") {
    const std::vector<std::string> names = registered_names();
    REQUIRE_FALSE(names.empty());
    CHECK(std::set<std::string>(names.begin(), names.end()).size() == names.size());
    for (const std::string& name : names) {
        INFO("driver " << name);
        CHECK(fs::is_directory(kDriversDir / name));
        CHECK(tg::drivers::find_driver(name) != nullptr);
    }
    CHECK(tg::drivers::find_driver("no-such-driver") == nullptr);
}

TEST_CASE("option tables are well formed", "[drivers]") {
    for (const tg::drivers::DriverInfo& d : tg::drivers::driver_registry()) {
        CHECK_FALSE(d.summary.empty());
        CHECK(d.create != nullptr);
        check_table("driver " + std::string(d.name), d.options);
    }
    std::set<std::string> outputs;
    for (const tg::drivers::OutputInfo& o : tg::drivers::output_registry()) {
        CHECK(outputs.insert(std::string(o.name)).second);
        CHECK_FALSE(o.summary.empty());
        CHECK(tg::drivers::find_output(o.name) == &o);
        check_table("output " + std::string(o.name), o.options);
    }
    CHECK(tg::drivers::find_output("no-such-output") == nullptr);
}

TEST_CASE("every default in the option tables loads", "[drivers]") {
    // Written with only its required options, each driver gets every default
    // filled in; a default the loader cannot read would throw here.
    for (const tg::drivers::DriverInfo& d : tg::drivers::driver_registry()) {
        const std::string text =
            "sensors:\n  - name: probe.value\n    driver: " + std::string(d.name) +
            "\n    options: " + required_options_yaml(d.options) + "\n";
        INFO(text);
        const tg::Config c = tg::parse_config(text, "probe.yaml");
        REQUIRE(c.sensors.size() == 1);
        for (const tg::drivers::OptionSpec& o : d.options) {
            CHECK(c.sensors[0].options.has(std::string(o.name)));
        }
    }
    for (const tg::drivers::OutputInfo& out : tg::drivers::output_registry()) {
        const std::string text =
            "sensors: []\noutputs:\n  - name: probe\n    driver: " + std::string(out.name) +
            "\n    options: " + required_options_yaml(out.options) + "\n";
        INFO(text);
        const tg::Config c = tg::parse_config(text, "probe.yaml");
        REQUIRE(c.outputs.size() == 1);
        for (const tg::drivers::OptionSpec& o : out.options) {
            CHECK(c.outputs[0].options.has(std::string(o.name)));
        }
    }
}
