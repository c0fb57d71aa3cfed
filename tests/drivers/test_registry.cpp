// Convention tests for the driver registry (ARCHITECTURE.md, habit 3): every
// drivers/<name>/ folder with code is a registered sensor or output driver
// with a README that documents each of its options; every registered driver
// has its folder; option tables are well formed and their defaults load.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "config.h"
#include "driver_test_util.h"
#include "drivers/driver.h"

namespace fs = std::filesystem;
using namespace tg;

namespace {

const fs::path kDriversDir = test::source_dir() / "drivers";

std::set<std::string> registered() {
    std::set<std::string> out;
    for (const drivers::DriverInfo& d : drivers::driver_registry())
        out.emplace(d.name);
    for (const drivers::OutputInfo& o : drivers::output_registry())
        out.emplace(o.name);
    return out;
}

bool has_code(const fs::path& dir) {
    for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
        if (e.path().extension() == ".cpp") return true;
    }
    return false;
}

void check_table(const std::string& owner, std::span<const drivers::OptionSpec> table) {
    std::set<std::string> seen;
    for (const drivers::OptionSpec& o : table) {
        INFO(owner << " option '" << o.name << "'");
        CHECK_FALSE(o.name.empty());
        CHECK(seen.insert(std::string(o.name)).second);
        CHECK_FALSE(o.help.empty());
        if (o.required) CHECK(o.default_value.empty());
    }
}

// Each option appears in the README as `name` (in its options table).
void check_readme_documents(const std::string& folder, std::span<const drivers::OptionSpec> table) {
    const std::string readme = test::read_text(kDriversDir / folder / "README.md");
    for (const drivers::OptionSpec& o : table) {
        INFO("drivers/" << folder << "/README.md documents option '" << o.name << "'");
        CHECK(readme.find("`" + std::string(o.name) + "`") != std::string::npos);
    }
}

std::string sample(drivers::OptType t) {
    switch (t) {
        case drivers::OptType::Number:
            return "1.5";
        case drivers::OptType::Integer:
            return "1";
        case drivers::OptType::Boolean:
            return "true";
        case drivers::OptType::String:
            return "/x";
        case drivers::OptType::Duration:
            return "1s";
        case drivers::OptType::NumberList:
            return "[1]";
        case drivers::OptType::StringList:
            return "[/x]";
    }
    return "x";
}

// The required options with values the driver accepts: by type, with a few
// values that only make sense for one driver.
std::string required_options(std::string_view driver, std::span<const drivers::OptionSpec> table) {
    const std::map<std::string, std::string> special{{"iio.device", "bme280"},
                                                     {"iio.channel", "temp"}};
    std::string out = "{";
    for (const drivers::OptionSpec& o : table) {
        if (!o.required) continue;
        if (out.size() > 1) out += ", ";
        const auto it = special.find(std::string(driver) + "." + std::string(o.name));
        out += std::string(o.name) + ": " + (it != special.end() ? it->second : sample(o.type));
    }
    return out + "}";
}

}  // namespace

TEST_CASE("every drivers/ folder with code is a registered driver with a README", "[drivers]") {
    const std::set<std::string> names = registered();
    int folders = 0;
    for (const fs::directory_entry& e : fs::directory_iterator(kDriversDir)) {
        if (!e.is_directory() || !has_code(e.path())) continue;
        const std::string name = e.path().filename().string();
        if (name == "fuzz") continue;  // libFuzzer targets over driver input, not a driver
        ++folders;
        INFO("drivers/" << name);
        CHECK(names.count(name) == 1);
        CHECK(fs::is_regular_file(e.path() / "README.md"));
    }
    CHECK(folders >= 8);
}

TEST_CASE("every registered driver has its folder and documents its options", "[drivers]") {
    std::set<std::string> sensors;
    for (const drivers::DriverInfo& d : drivers::driver_registry()) {
        INFO("driver " << d.name);
        CHECK(sensors.insert(std::string(d.name)).second);
        CHECK(fs::is_directory(kDriversDir / d.name));
        CHECK_FALSE(d.summary.empty());
        CHECK(d.create != nullptr);
        CHECK(drivers::find_driver(d.name) == &d);
        check_table("driver " + std::string(d.name), d.options);
        check_readme_documents(std::string(d.name), d.options);
    }
    std::set<std::string> outputs;
    for (const drivers::OutputInfo& o : drivers::output_registry()) {
        INFO("output " << o.name);
        CHECK(outputs.insert(std::string(o.name)).second);
        CHECK(fs::is_directory(kDriversDir / o.name));
        CHECK_FALSE(o.summary.empty());
        CHECK(o.create != nullptr);
        CHECK(drivers::find_output(o.name) == &o);
        check_table("output " + std::string(o.name), o.options);
        check_readme_documents(std::string(o.name), o.options);
    }
    CHECK(drivers::find_driver("no-such-driver") == nullptr);
    CHECK(drivers::find_output("no-such-output") == nullptr);
    // SPEC §6 and §2.
    for (const char* n : {"simulated", "file", "w1", "iio", "gpio", "serial", "command"})
        CHECK(sensors.count(n) == 1);
    CHECK(outputs == std::set<std::string>{"gpio", "file", "mqtt"});
}

TEST_CASE("every default in the option tables loads", "[drivers]") {
    for (const drivers::DriverInfo& d : drivers::driver_registry()) {
        const std::string type = d.fixed_type ? std::string(type_name(d.type)) : "number";
        const std::string text =
            "sensors:\n  - name: probe.value\n    driver: " + std::string(d.name) +
            "\n    type: " + type + "\n    options: " + required_options(d.name, d.options) + "\n";
        INFO(text);
        const Config c = parse_config(text, "probe.yaml");
        REQUIRE(c.sensors.size() == 1);
        for (const drivers::OptionSpec& o : d.options)
            CHECK(c.sensors[0].options.has(std::string(o.name)));
    }
    for (const drivers::OutputInfo& out : drivers::output_registry()) {
        const std::string text =
            "sensors: []\noutputs:\n  - name: probe\n    driver: " + std::string(out.name) +
            "\n    options: " + required_options(out.name, out.options) + "\n";
        INFO(text);
        const Config c = parse_config(text, "probe.yaml");
        REQUIRE(c.outputs.size() == 1);
        for (const drivers::OptionSpec& o : out.options)
            CHECK(c.outputs[0].options.has(std::string(o.name)));
    }
}
