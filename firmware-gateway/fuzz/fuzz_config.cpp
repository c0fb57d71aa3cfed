// libFuzzer target: arbitrary config-file text through parse_config, the
// function `tidegate check -c` and `run` hand a config file's text to (strict
// keys, every section, driver option tables, driver and output probes). Must
// never crash, hang or leak, whatever the text: every problem is a LoadError.
// Build and run (see firmware-gateway/CMakeLists.txt):
//   cmake --preset fuzz
//   cmake --build --preset fuzz --target fuzz_config
//   mkdir -p /tmp/fuzz-config-corpus
//   build-fuzz/firmware-gateway/fuzz_config -max_total_time=60 -timeout=10 -max_len=4096 \
//       -dict=firmware-gateway/fuzz/config.dict /tmp/fuzz-config-corpus \
//       firmware-gateway/config firmware-gateway/fuzz/seeds
#include <cstddef>
#include <cstdint>
#include <string>

#include "config.h"
#include "rule_files.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    tg::Diagnostics warnings;
    try {
        const tg::Config c = tg::parse_config(text, "fuzz.yaml", &warnings);
        // What the gateway derives from a loaded config before it starts.
        (void)c.topic_base();
        (void)tg::rule_check_options(c);
        for (const tg::SensorConfig& s : c.sensors)
            (void)s.path();
    } catch (const tg::LoadError& e) {
        for (const tg::SourceError& d : e.diagnostics().items())
            (void)d.format();
    }
    for (const tg::SourceError& w : warnings.items())
        (void)w.format();
    return 0;
}
