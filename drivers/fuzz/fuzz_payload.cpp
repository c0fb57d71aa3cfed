// libFuzzer target: arbitrary MQTT payloads (and serial/command text) through
// every FieldParser mode a sensor can be configured with, as the mqtt, serial
// and command drivers use them; whatever value comes out is written into a
// reading envelope, which must then be valid JSON (RFC 8259, UTF-8) with the
// value in it. Must never crash, hang or leak. Build and run (scripts/test
// runs it in its fuzz stage):
//   cmake --preset fuzz
//   cmake --build --preset fuzz --target fuzz_payload
//   build-fuzz/drivers/fuzz_payload -max_total_time=60 -max_len=4096 \
//       -dict=drivers/fuzz/payload.dict /tmp/fuzz-payload drivers/fuzz/seeds
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_writer.h"
#include "drivers/sensor_parse.h"

using namespace tg;
using namespace tg::drivers;

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_payload: %s\n", what);
    std::abort();
}

std::vector<FieldParser> make_parsers() {
    std::vector<FieldParser> out;
    for (ValueType t : {ValueType::Number, ValueType::Boolean, ValueType::String}) {
        for (const char* ptr : {"", "/temperature", "/ENERGY/Power", "/a/0/b~1c", "/"})
            out.push_back(FieldParser::for_payload(ptr, t));
        const std::pair<const char*, const char*> formats[] = {
            {"number", ""}, {"json", ""}, {"json", "t"}, {"json", "/t/0"}, {"kv", "t"}};
        for (const auto& [format, field] : formats)
            out.push_back(FieldParser(format, field, t));
    }
    return out;
}

void check_value(const Value& v) {
    if (const double* d = std::get_if<double>(&v)) {
        if (!std::isfinite(*d)) fail("a non-finite number was accepted");
    }
    // The envelope the gateway writes for this value must be valid JSON, and
    // say the same value: a hostile payload never breaks the event stream.
    JsonObject o;
    o.field("source", "fuzz.sensor")
        .value_field("value", v)
        .field("unit",
               "\xC2\xB0"
               "C");
    const std::string text = std::move(o).finish();
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception&) {
        fail("the envelope is not valid JSON");
    }
    const nlohmann::json& got = doc.at("value");
    if (const double* d = std::get_if<double>(&v)) {
        if (!got.is_number() || got.get<double>() != *d) fail("number changed on the way");
    } else if (const bool* b = std::get_if<bool>(&v)) {
        if (!got.is_boolean() || got.get<bool>() != *b) fail("boolean changed on the way");
    } else if (!got.is_string()) {
        fail("string value not written as a string");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::vector<FieldParser> parsers = make_parsers();
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (const FieldParser& p : parsers) {
        Parsed r = p.parse(text);
        if (r) {
            check_value(*r.value);
        } else if (r.reason.empty()) {
            fail("a failure without a reason");
        }
    }
    // The helpers used on device text directly.
    (void)parse_kv(text);
    const std::string e = excerpt(text);
    if (e.size() > 64) fail("excerpt longer than its bound");
    return 0;
}
