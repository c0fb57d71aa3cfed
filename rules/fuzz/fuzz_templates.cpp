// libFuzzer target: template text and sensor values from the input, through
// the real template parser, checker and renderer. The input is
//   TEMPLATE \0 STRING \0 NUMBER-TEXT \0 BOOLEAN
// (missing parts are empty). Must never crash, hang or leak, and json() of
// every sensor must render valid JSON text whatever the values are: that is
// asserted for the fixed templates {{json(x)}} and for a fuzzed template that
// is exactly one json() call. Build and run (see rules/CMakeLists.txt):
//   cmake --preset fuzz
//   cmake --build --preset fuzz --target fuzz_templates
//   mkdir -p /tmp/fuzz-templates
//   build-fuzz/rules/fuzz_templates -max_total_time=60 -max_len=512 \
//       -dict=rules/fuzz/templates.dict /tmp/fuzz-templates rules/fuzz/templates
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.h"
#include "rules/program.h"
#include "rules/rule_set.h"

using namespace tg;
using namespace tg::rules;

namespace {

struct Inputs {
    std::string_view templ;
    std::string text;
    double number = 0;
    bool has_number = false;
    bool boolean = false;
};

Inputs split(std::string_view in) {
    std::string_view fields[4];
    for (std::string_view& f : fields) {
        const std::size_t nul = in.find('\0');
        f = in.substr(0, nul);
        in = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
    }
    Inputs out;
    out.templ = fields[0];
    out.text = std::string(fields[1]);
    const std::string number(fields[2]);
    char* end = nullptr;
    const double d = std::strtod(number.c_str(), &end);
    out.has_number = !number.empty() && end && *end == '\0' && std::isfinite(d);
    out.number = out.has_number ? d : 0;
    out.boolean = !fields[3].empty() && (static_cast<unsigned char>(fields[3][0]) & 1u);
    return out;
}

[[noreturn]] void fail(const char* what, const std::string& text) {
    std::fprintf(stderr, "%s: %s\n", what, text.c_str());
    std::abort();
}

// json() output must parse, and a string must come back as it went in when
// it was UTF-8 (U+FFFD replacements otherwise, checked by parsing at all).
void require_json(const std::string& rendered, const Val& v) {
    const auto parsed = nlohmann::json::parse(rendered, nullptr, false);
    if (parsed.is_discarded()) fail("json() rendered invalid JSON", rendered);
    switch (v.kind) {
        case Val::Kind::Missing:
            if (!parsed.is_null()) fail("json(missing) is not null", rendered);
            break;
        case Val::Kind::Boolean:
            if (parsed != v.boolean) fail("json(boolean) changed", rendered);
            break;
        case Val::Kind::Number:
            if (!parsed.is_number() || parsed.get<double>() != v.number)
                fail("json(number) does not read back", rendered);
            break;
        case Val::Kind::String:
            if (!parsed.is_string()) fail("json(string) is not a string", rendered);
            if (first_invalid_utf8(v.string) == std::string_view::npos &&
                parsed.get<std::string>() != v.string) {
                fail("json(string) does not read back", rendered);
            }
            break;
    }
}

void run(const Inputs& in, const SensorCatalogue* catalogue) {
    Symbols symbols(catalogue);
    std::size_t errors = 0;
    const ErrorSink sink = [&](std::size_t offset, const std::string& message) {
        if (offset > in.templ.size() || message.empty()) fail("bad error offset", message);
        ++errors;
    };
    const auto fuzzed = parse_template(in.templ, symbols, sink);
    if (fuzzed.has_value() == (errors > 0))
        fail("result and errors disagree", std::string(in.templ));
    std::vector<Template> fixed;
    for (const char* t : {"{{json(in.s)}}", "{{json(in.n)}}", "{{json(in.b)}}", "{{json(in.m)}}",
                          "{{ json(in.s) }}{{json(gateway)}}"}) {
        auto parsed = parse_template(t, symbols, sink);
        if (!parsed) fail("a fixed template does not compile", t);
        fixed.push_back(std::move(*parsed));
    }

    std::vector<SensorData> sensors(symbols.sensors().size());
    for (std::size_t i = 0; i < sensors.size(); ++i) {
        const std::string& name = symbols.sensors()[i];
        SensorData& d = sensors[i];
        d.last_ns = 1'000'000'000;
        if (name == "in.s") {
            d.has_value = true;
            d.value = in.text;
        } else if (name == "in.n") {
            d.has_value = in.has_number;
            d.value = in.number;
        } else if (name == "in.b") {
            d.has_value = true;
            d.value = in.boolean;
        } else if (name != "in.m" && catalogue == nullptr) {
            d.has_value = true;  // any other name: the string, whatever it is
            d.value = in.text;
        }
    }
    std::vector<Window> windows;
    for (const WindowSpec& w : symbols.windows()) {
        windows.emplace_back(w.length_ns, w.extremes);
        const SensorData& d = sensors[w.sensor];
        const double* x = d.has_value ? std::get_if<double>(&d.value) : nullptr;
        windows.back().add(d.last_ns, x ? *x : 0, x != nullptr);
    }
    const TemplateVars vars{"fuzz_rule", in.text, "warning", "2026-11-26T17:15:53.123Z", "step"};
    EvalEnv env{sensors.data(), windows.data(), 2'000'000'000, 0, &vars};

    if (fuzzed) {
        (void)render_template(*fuzzed, env);
        // Exactly one json() call and nothing else: the output is JSON.
        if (fuzzed->parts.size() == 1 && fuzzed->parts[0].expr) {
            const Program& p = *fuzzed->parts[0].expr;
            if (p.code[p.root].code == Code::Json) {
                const std::string rendered = render_template(*fuzzed, env);
                if (nlohmann::json::parse(rendered, nullptr, false).is_discarded())
                    fail("a template of one json() call rendered invalid JSON", rendered);
            }
        }
    }
    const Val values[] = {Val::str(in.text), in.has_number ? Val::num(in.number) : Val::missing(),
                          Val::boolean_of(in.boolean), Val::missing()};
    for (std::size_t i = 0; i < 4; ++i)
        require_json(render_template(fixed[i], env), values[i]);
    (void)render_template(fixed[4], env);
    if (env.scratch != nullptr) fail("render_template left its scratch store behind", "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const Inputs in = split(std::string_view(reinterpret_cast<const char*>(data), size));
    const SensorCatalogue catalogue{{"in.s", ValueType::String},
                                    {"in.n", ValueType::Number},
                                    {"in.b", ValueType::Boolean},
                                    {"in.m", ValueType::String}};
    run(in, &catalogue);
    run(in, nullptr);
    return 0;
}
