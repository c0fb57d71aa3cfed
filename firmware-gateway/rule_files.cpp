#include "rule_files.h"

#include <sys/stat.h>

namespace tg {

rules::CheckOptions rule_check_options(const Config& cfg) {
    rules::CheckOptions o;
    rules::SensorCatalogue sensors;
    for (const SensorConfig& s : cfg.sensors)
        sensors.emplace(s.name, s.type);
    o.sensors = std::move(sensors);
    std::vector<std::string> outputs;
    for (const OutputConfig& out : cfg.outputs)
        outputs.push_back(out.name);
    o.outputs = std::move(outputs);
    return o;
}

rules::CompileResult load_rule_files(const Config& cfg, Diagnostics* warnings) {
    std::vector<std::string> paths;
    for (const std::string& p : cfg.rules.paths) {
        struct stat st {};
        if (::stat(p.c_str(), &st) != 0) {
            if (warnings) {
                warnings->warning(SourcePos{p, 0, 0},
                                  "rule path does not exist (yet): no rules from it");
            }
            continue;
        }
        paths.push_back(p);
    }
    return rules::load_rules(paths, rule_check_options(cfg));
}

}  // namespace tg
