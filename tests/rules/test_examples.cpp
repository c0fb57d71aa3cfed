// Every file in rules/examples checks clean: against the demo configuration's
// sensors and outputs (plus the ones the examples need), and without a config.
#include <catch2/catch.hpp>

#include <filesystem>

#include "rules/loader.h"

using namespace tg;
using namespace tg::rules;

namespace {

// firmware-gateway/config/demo.yaml: greenhouse.temp, greenhouse.humidity,
// tank.level, door.open; and what the examples add to it.
CheckOptions demo_config() {
    CheckOptions o;
    o.sensors = SensorCatalogue{
        {"greenhouse.temp", ValueType::Number},  {"greenhouse.humidity", ValueType::Number},
        {"tank.level", ValueType::Number},       {"door.open", ValueType::Boolean},
        {"server_room.temp", ValueType::Number}, {"freezer.temp", ValueType::Number},
        {"soil.moisture", ValueType::Number},    {"flow.rate", ValueType::Number},
        {"tank.pressure", ValueType::Number},
    };
    o.outputs = std::vector<std::string>{"fan", "pump", "buzzer", "valve"};
    return o;
}

std::string examples_dir() {
    return (std::filesystem::path(TIDEGATE_SOURCE_DIR) / "rules" / "examples").string();
}

}  // namespace

TEST_CASE("the example rule files check clean", "[rules][examples]") {
    for (const CheckOptions& options : {demo_config(), CheckOptions{}}) {
        const CompileResult r = load_rules({examples_dir()}, options);
        for (const SourceError& e : r.diagnostics.items())
            UNSCOPED_INFO(e.format());
        CHECK(r.diagnostics.items().empty());
        REQUIRE(r.rules);
        CHECK(r.rules->files().size() == 5);
        CHECK(r.rules->size() == 9);
    }
}
