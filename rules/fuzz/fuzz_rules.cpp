// libFuzzer target: arbitrary rule-file text through the whole check path
// (YAML, strict keys, expressions, templates, checker), with and without a
// sensor catalogue; whatever compiles then runs through an engine (readings of
// every type, ticks, state export/import, reload). Must never crash, hang or
// leak. Build and run (see rules/CMakeLists.txt):
//   apt-get install clang-14 libclang-rt-14-dev
//   cmake --preset fuzz
//   cmake --build --preset fuzz --target fuzz_rules
//   mkdir -p /tmp/fuzz-corpus
//   build-fuzz/rules/fuzz_rules -max_total_time=60 -max_len=4096 \
//       -dict=rules/fuzz/rules.dict /tmp/fuzz-corpus rules/examples rules/fuzz/seeds
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "rules/engine.h"
#include "rules/rule_set.h"

using namespace tg;
using namespace tg::rules;

namespace {

void exercise(const std::shared_ptr<const RuleSet>& rules) {
    EngineOptions options;
    options.gateway = "fuzz";
    options.start = MonoTime{};
    Engine engine(rules, options);
    std::vector<Transition> out;
    const WallTime wall{std::chrono::seconds(1'800'000'000)};
    std::int64_t step = 0;
    auto at = [&](std::int64_t s) { return MonoTime{} + std::chrono::seconds(s); };
    const Value values[] = {Value(31.5), Value(-1e300), Value(0.0),
                            Value(true), Value(false),  Value(std::string("on"))};
    for (const Value& v : values) {
        for (const std::string& sensor : rules->sensors()) {
            ++step;
            Reading r;
            r.sensor = sensor;
            r.value = v;
            r.mono = at(step * 7);
            r.ts = wall + std::chrono::seconds(step * 7);
            engine.on_reading(r, out);
        }
        engine.on_tick(at(step * 7 + 3), wall, out);
        for (const Transition& t : out)
            (void)transition_json(t);
        out.clear();
    }
    const std::string saved = state_to_json(engine.export_state(at(step * 7 + 5)));
    if (const auto state = state_from_json(saved)) {
        Engine restored(rules, options);
        (void)restored.import_state(*state, MonoTime{}, wall);
        restored.on_tick(at(400'000), wall, out);
    }
    (void)engine.replace_rules(rules, at(step * 7 + 9), wall);
    engine.on_tick(at(step * 7 + 86'400), wall, out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    CheckOptions config;
    config.sensors = SensorCatalogue{{"greenhouse.temp", ValueType::Number},
                                     {"door.open", ValueType::Boolean},
                                     {"meter.mode", ValueType::String}};
    config.outputs = std::vector<std::string>{"fan", "pump"};
    const CheckOptions none;
    const CheckOptions* variants[] = {&config, &none};
    for (const CheckOptions* options : variants) {
        const CompileResult r = compile_rules({{"fuzz.yaml", text}}, *options);
        for (const SourceError& e : r.diagnostics.items())
            (void)e.format();
        if (r.rules) exercise(r.rules);
    }
    return 0;
}
