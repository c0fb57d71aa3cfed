// Configuration loading (SPEC §2). One strict pass over the YAML tree: every
// problem is collected with its FILE:LINE:COL before giving up, so that
// `tidegate check` shows all of them at once instead of one per run.
#include "config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "core/file_read.h"
#include "core/units.h"
#include "core/utf8.h"
#include "rules/yaml_text.h"

namespace tg {
namespace {

namespace fs = std::filesystem;
using drivers::OptionSpec;
using drivers::OptType;
using drivers::OptValue;
using std::chrono::milliseconds;

// ---------------------------------------------------------------------------
// Small text helpers

// MQTT's strings (client id, user name, topics) and binary fields (the
// password) are at most this many bytes.
constexpr std::size_t kMaxMqttString = 65535;
// gateway.id is part of every topic, every event id and the default MQTT
// client id; host names are at most 64 characters too.
constexpr std::size_t kMaxGatewayId = 64;
// Every topic starts with <topic_prefix>/<gateway.id>/; bounded so that the
// topics built from it stay far below MQTT's limit.
constexpr std::size_t kMaxTopicPrefix = 256;
// Sensor and output names become topic levels (<p>/events/<path>,
// <p>/cmd/outputs/<name>): a reading whose topic MQTT cannot carry would be
// refused at every poll, so names are bounded where they are written.
constexpr std::size_t kMaxName = 128;

// The error for a name over kMaxName, or empty.
std::string name_too_long(const std::string& what, const std::string& name) {
    if (name.size() <= kMaxName) return {};
    return what + ": " + std::to_string(name.size()) + " characters; at most " +
           std::to_string(kMaxName) + " are allowed (it is part of topics)";
}

std::string lower(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

bool is_id_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool is_valid_gateway_id(const std::string& id) {
    return !id.empty() && std::all_of(id.begin(), id.end(), is_id_char);
}

// One segment of a sensor name, or a whole output name: [a-z][a-z0-9_]*
bool is_valid_segment(std::string_view s) {
    if (s.empty() || s.front() < 'a' || s.front() > 'z') return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

bool is_valid_sensor_name(const std::string& name) {
    std::size_t start = 0;
    for (;;) {
        const std::size_t dot = name.find('.', start);
        const std::string_view seg = std::string_view(name).substr(
            start, dot == std::string::npos ? std::string::npos : dot - start);
        if (!is_valid_segment(seg)) return false;
        if (dot == std::string::npos) return true;
        start = dot + 1;
    }
}

// Words an expression or template could not tell from a sensor name (§5.1).
constexpr std::array<std::string_view, 21> kReservedNames{{
    "and",  "or",      "not",      "true", "false",                                    // keywords
    "avg",  "min",     "max",      "sum",  "count", "stddev", "delta", "rate", "age",  // functions
    "abs",  "round",   "between",                                                      //
    "rule", "gateway", "severity", "ts",  // template names
}};

bool is_reserved(const std::string& name) {
    return std::find(kReservedNames.begin(), kReservedNames.end(), name) != kReservedNames.end();
}

// ---------------------------------------------------------------------------
// Scalar conversions. Each returns nullopt with a reason; the loader adds the
// position and the key it was reading.

// A user's value as messages quote it: control characters escaped (a NUL
// would end the message line for many readers), long values cut.
std::string shown(std::string_view s) {
    constexpr std::size_t kMax = 80;
    const std::size_t end = utf8_cut(s, kMax);
    std::string out;
    for (std::size_t i = 0; i < end; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7F) {
            const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (end < s.size()) out += "…";
    return out;
}

std::string describe(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Scalar:
            return "'" + shown(n.Scalar()) + "'";
        default:
            return "nothing";
    }
}

// A leading '+' is accepted (from_chars does not); "+-1" and the like are not.
std::string_view strip_plus(std::string_view s) {
    if (s.size() > 1 && s.front() == '+' && s[1] != '+' && s[1] != '-') s.remove_prefix(1);
    return s;
}

std::optional<double> parse_number(std::string_view s) {
    s = strip_plus(s);
    double d = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(d)) {
        return std::nullopt;
    }
    return d;
}

std::optional<long long> parse_integer(std::string_view s) {
    s = strip_plus(s);
    long long v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

// Every string of a config is UTF-8 text without NUL: "\0" in a quoted YAML
// string would cut it short wherever it meets a C API (paths, Paho's topics).
// The file as a whole was checked for UTF-8 already; escapes cannot produce
// invalid UTF-8 (yaml-cpp refuses a lone surrogate), checked again all the same
// since these strings go into JSON envelopes and topics.
std::optional<std::string> as_string(const YAML::Node& n, std::string& why) {
    if (n.IsScalar()) {
        const std::string& s = n.Scalar();
        if (s.find('\0') != std::string::npos) {
            why = "a NUL character (\\0) is not allowed in a value";
            return std::nullopt;
        }
        if (first_invalid_utf8(s) != std::string_view::npos) {
            why = "not valid UTF-8 text";
            return std::nullopt;
        }
        return s;
    }
    why = "expected a string, got " + describe(n);
    return std::nullopt;
}

std::optional<double> as_number(const YAML::Node& n, std::string& why) {
    if (n.IsScalar()) {
        if (auto d = parse_number(n.Scalar())) return d;
    }
    why = "expected a number, got " + describe(n);
    return std::nullopt;
}

std::optional<long long> as_integer(const YAML::Node& n, std::string& why) {
    if (n.IsScalar()) {
        if (auto i = parse_integer(n.Scalar())) return i;
    }
    why = "expected a whole number, got " + describe(n);
    return std::nullopt;
}

// YAML 1.1 and 1.2 spellings alike: users copy both from elsewhere.
std::optional<bool> as_bool(const YAML::Node& n, std::string& why) {
    if (n.IsScalar()) {
        const std::string s = lower(n.Scalar());
        if (s == "true" || s == "yes" || s == "on") return true;
        if (s == "false" || s == "no" || s == "off") return false;
    }
    why = "expected true or false, got " + describe(n);
    return std::nullopt;
}

std::optional<milliseconds> as_duration(const YAML::Node& n, std::string& why) {
    if (!n.IsScalar()) {
        why = "expected a duration (e.g. 250ms, 10s, 5m, 1h30m), got " + describe(n);
        return std::nullopt;
    }
    return parse_duration(n.Scalar(), &why);
}

std::optional<std::uint64_t> as_size(const YAML::Node& n, std::string& why) {
    if (!n.IsScalar()) {
        why = "expected a size (e.g. 512KiB, 64MiB, 1GiB), got " + describe(n);
        return std::nullopt;
    }
    return parse_size(n.Scalar(), &why);
}

// Converts one driver option to its declared type. On failure `where` is the
// mark of the offending node (an element, for lists).
std::optional<OptValue> convert_option(const YAML::Node& n, OptType type, std::string& why,
                                       YAML::Mark& where) {
    where = n.Mark();
    switch (type) {
        case OptType::Number:
            if (auto v = as_number(n, why)) return OptValue(*v);
            return std::nullopt;
        case OptType::Integer:
            if (auto v = as_integer(n, why)) return OptValue(*v);
            return std::nullopt;
        case OptType::Boolean:
            if (auto v = as_bool(n, why)) return OptValue(*v);
            return std::nullopt;
        case OptType::String:
            if (auto v = as_string(n, why)) return OptValue(std::move(*v));
            return std::nullopt;
        case OptType::Duration:
            if (auto v = as_duration(n, why)) return OptValue(*v);
            return std::nullopt;
        case OptType::NumberList: {
            if (!n.IsSequence()) {
                why = "expected a list of numbers, got " + describe(n);
                return std::nullopt;
            }
            std::vector<double> out;
            for (const YAML::Node& item : n) {
                auto v = as_number(item, why);
                if (!v) {
                    where = item.Mark();
                    return std::nullopt;
                }
                out.push_back(*v);
            }
            return OptValue(std::move(out));
        }
        case OptType::StringList: {
            // One string stands for a list of one, as in rules.paths.
            if (n.IsScalar()) return OptValue(std::vector<std::string>{n.Scalar()});
            if (!n.IsSequence()) {
                why = "expected a list of strings, got " + describe(n);
                return std::nullopt;
            }
            std::vector<std::string> out;
            for (const YAML::Node& item : n) {
                auto v = as_string(item, why);
                if (!v) {
                    where = item.Mark();
                    return std::nullopt;
                }
                out.push_back(std::move(*v));
            }
            return OptValue(std::move(out));
        }
    }
    why = "unsupported option type";
    return std::nullopt;
}

// A driver table's default, converted exactly as a user's value would be.
std::optional<OptValue> default_option(const OptionSpec& spec, std::string_view owner) {
    if (spec.default_value.empty()) {
        // Optional with no default: an empty text or list, nothing for the rest.
        if (spec.type == OptType::String) return OptValue(std::string());
        if (spec.type == OptType::StringList) return OptValue(std::vector<std::string>());
        if (spec.type == OptType::NumberList) return OptValue(std::vector<double>());
        return std::nullopt;
    }
    std::string why;
    YAML::Mark where;
    std::optional<OptValue> v;
    try {
        v = convert_option(YAML::Load(std::string(spec.default_value)), spec.type, why, where);
    } catch (const YAML::Exception& e) {
        why = e.what();
    }
    if (!v) {
        // A broken table is a bug in the driver, not in the user's file.
        throw std::logic_error(std::string(owner) + ": default of option '" +
                               std::string(spec.name) + "' is invalid: " + why);
    }
    return v;
}

// Outputs probed at load time publish nothing: they are never started.
class NoOutputEnv final : public drivers::OutputEnv {
  public:
    void publish(const std::string&, const std::string&, int, bool) override {}
};

std::string default_gateway_id_here() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    std::string machine_id, why;
    if (!read_regular_file("/etc/machine-id", 4096, machine_id, why)) machine_id.clear();
    return default_gateway_id(host, machine_id);
}

// ---------------------------------------------------------------------------
// The loader

struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
};

const std::vector<std::string> kTopKeys{"gateway", "mqtt",    "rules",   "outbox",
                                        "journal", "metrics", "sensors", "outputs"};
const std::vector<std::string> kGatewayKeys{"id", "data_dir"};
const std::vector<std::string> kMqttKeys{"uri", "version",     "client_id", "topic_prefix",
                                         "qos", "keepalive",   "username",  "password_file",
                                         "tls", "input_buffer"};
const std::vector<std::string> kTlsKeys{"ca_file", "cert_file", "key_file", "verify_hostname"};
const std::vector<std::string> kRulesKeys{"paths", "tick"};
const std::vector<std::string> kOutboxKeys{"max_bytes", "sync"};
const std::vector<std::string> kJournalKeys{"retain_bytes"};
const std::vector<std::string> kMetricsKeys{"interval"};
const std::vector<std::string> kSensorKeys{"name",      "driver",  "interval",  "type",
                                           "unit",      "range",   "precision", "deadband",
                                           "heartbeat", "publish", "options"};
const std::vector<std::string> kOutputKeys{"name", "driver", "options", "remote"};

class Loader {
  public:
    explicit Loader(std::string file) : file_(std::move(file)) {
        std::error_code ec;
        if (file_.empty()) {
            base_dir_ = fs::current_path(ec);
        } else {
            base_dir_ = fs::absolute(fs::path(file_), ec).parent_path();
        }
    }

    Config load(const std::string& text);

    std::vector<SourceError>& errors() { return errors_; }
    std::vector<SourceError>& warnings() { return warnings_; }

  private:
    // Positions -------------------------------------------------------------
    SourcePos mark_pos(const YAML::Mark& m) const {
        if (m.is_null() || m.line < 0) return SourcePos{file_, 1, 1};
        return SourcePos{file_, m.line + 1, m.column + 1};
    }
    // Null nodes carry no useful mark (yaml-cpp places an empty value on the
    // next line), so they report at `fallback`, usually their key.
    SourcePos pos(const YAML::Node& n, const SourcePos& fallback) const {
        if (!n.IsDefined() || n.IsNull() || n.Mark().is_null()) return fallback;
        return mark_pos(n.Mark());
    }
    SourcePos key_pos(const Entry& e) const { return mark_pos(e.key_node.Mark()); }
    SourcePos value_pos(const Entry& e) const { return pos(e.value, key_pos(e)); }

    void error(SourcePos p, std::string message) {
        errors_.emplace_back(std::move(p), std::move(message), Severity::Error);
    }
    void warn(SourcePos p, std::string message) {
        warnings_.emplace_back(std::move(p), std::move(message), Severity::Warning);
    }

    // Structure -------------------------------------------------------------
    std::vector<Entry> entries(const YAML::Node& map, const std::vector<std::string>& allowed,
                               const std::string& what, const std::string& where);
    std::vector<Entry> section(const Entry& e, const std::vector<std::string>& allowed);

    template <class Conv>
    auto get(const Entry& e, const std::string& label, Conv conv)
        -> decltype(conv(e.value, std::declval<std::string&>())) {
        std::string why;
        auto v = conv(e.value, why);
        if (!v) error(value_pos(e), label + ": " + why);
        return v;
    }

    std::string resolve(const std::string& p) const {
        if (p.empty() || fs::path(p).is_absolute() || base_dir_.empty()) return p;
        return (base_dir_ / p).lexically_normal().string();
    }
    // A file that must be readable now; its contents when it is.
    std::optional<std::string> read_named_file(const Entry& e, const std::string& label,
                                               const std::string& path);

    // Sections --------------------------------------------------------------
    void gateway(const Entry& top, Config& c);
    void mqtt(const Entry& top, Config& c);
    void tls(const Entry& top, TlsConfig& t);
    void rules(const Entry& top, Config& c);
    void outbox(const Entry& top, Config& c);
    void journal(const Entry& top, Config& c);
    void metrics(const Entry& top, Config& c);
    void sensors(const Entry& top, Config& c);
    void sensor(const YAML::Node& node, Config& c);
    void outputs(const Entry& top, Config& c);
    void output(const YAML::Node& node, Config& c);
    drivers::Options options(const Entry* e, std::span<const OptionSpec> table,
                             const std::string& owner, const SourcePos& owner_pos,
                             std::map<std::string, SourcePos>& positions);
    std::optional<milliseconds> positive_duration(const Entry& e, const std::string& label,
                                                  milliseconds minimum, bool allow_zero);

    std::string file_;
    fs::path base_dir_;
    std::vector<SourceError> errors_;
    std::vector<SourceError> warnings_;
    std::map<std::string, int> sensor_lines_;  // name -> line of first definition
    std::map<std::string, int> output_lines_;
};

const Entry* find(const std::vector<Entry>& es, std::string_view key) {
    for (const Entry& e : es) {
        if (e.key == key) return &e;
    }
    return nullptr;
}

std::vector<Entry> Loader::entries(const YAML::Node& map, const std::vector<std::string>& allowed,
                                   const std::string& what, const std::string& where) {
    std::vector<Entry> out;
    std::map<std::string, int> first_line;
    const SourcePos map_pos = pos(map, SourcePos{file_, 1, 1});
    // yaml-cpp 0.7 keeps every pair of a map, duplicates included, so walking
    // the pairs ourselves is how duplicates are found.
    for (const auto& kv : map) {
        const YAML::Node& k = kv.first;
        const SourcePos kp = pos(k, map_pos);
        if (!k.IsScalar()) {
            error(kp, "expected a " + what + " name, got " + describe(k));
            continue;
        }
        const std::string name = k.Scalar();
        const std::string problem = check_map_key(name, allowed, what, where, kp.line, first_line);
        if (!problem.empty()) {
            error(kp, problem);
            continue;
        }
        out.push_back(Entry{name, k, kv.second});
    }
    return out;
}

std::vector<Entry> Loader::section(const Entry& e, const std::vector<std::string>& allowed) {
    if (e.value.IsMap()) return entries(e.value, allowed, "key", " in '" + e.key + "'");
    if (!e.value.IsNull())
        error(value_pos(e), e.key + ": expected a map, got " + describe(e.value));
    return {};
}

std::optional<std::string> Loader::read_named_file(const Entry& e, const std::string& label,
                                                   const std::string& path) {
    std::string text, why;
    if (!read_regular_file(path, kMaxConfigFileBytes, text, why)) {
        error(value_pos(e), label + ": cannot read '" + path + "': " + why);
        return std::nullopt;
    }
    return text;
}

std::optional<milliseconds> Loader::positive_duration(const Entry& e, const std::string& label,
                                                      milliseconds minimum, bool allow_zero) {
    auto d = get(e, label, as_duration);
    if (!d) return std::nullopt;
    if (allow_zero && d->count() == 0) return d;
    if (*d < minimum || d->count() <= 0) {
        error(value_pos(e), label + ": must be at least " + format_duration(minimum) + ", got '" +
                                e.value.Scalar() + "'");
        return std::nullopt;
    }
    return d;
}

Config Loader::load(const std::string& text) {
    Config c;
    c.file = file_;

    // yaml-cpp's marks do not count a byte-order mark: neither do ours.
    const std::string_view body = rules::strip_bom(text);
    const rules::SourceText src(file_, body);
    // YAML is Unicode text, and what a config holds goes into JSON envelopes
    // and MQTT topics, which must be UTF-8: a Latin-1 "°C" is refused here,
    // where its place is known.
    if (const std::size_t bad = first_invalid_utf8(body); bad != std::string_view::npos) {
        const auto b = static_cast<unsigned char>(body[bad]);
        const char* hex = "0123456789abcdef";
        error(src.at_byte(bad), std::string("invalid UTF-8 (byte 0x") + hex[b >> 4] + hex[b & 0xF] +
                                    ") in a config file; it must be UTF-8 text");
        return c;
    }
    // The same guards as for rule files (control characters, nesting, and
    // never YAML::LoadAll, which yaml-cpp 0.7 does not return from on a
    // stray ',').
    rules::YamlDocument doc = rules::parse_yaml_document(src, "config file");
    for (SourceError& e : doc.errors)
        errors_.push_back(std::move(e));
    if (!doc.parsed) return c;
    const YAML::Node root = doc.root;
    if (!root.IsMap() && !root.IsNull()) {
        error(pos(root, SourcePos{file_, 1, 1}),
              "expected a map of sections (gateway, mqtt, rules, ..., sensors), got " +
                  describe(root));
        return c;
    }

    const std::vector<Entry> top =
        root.IsMap() ? entries(root, kTopKeys, "key", "") : std::vector<Entry>{};
    for (const Entry& e : top) {
        if (e.key == "gateway")
            gateway(e, c);
        else if (e.key == "mqtt")
            mqtt(e, c);
        else if (e.key == "rules")
            rules(e, c);
        else if (e.key == "outbox")
            outbox(e, c);
        else if (e.key == "journal")
            journal(e, c);
        else if (e.key == "metrics")
            metrics(e, c);
        else if (e.key == "sensors")
            sensors(e, c);
        else if (e.key == "outputs")
            outputs(e, c);
    }
    if (!find(top, "sensors")) {
        error(pos(root, SourcePos{file_, 1, 1}), "missing required key 'sensors'");
    }

    if (c.gateway.id.empty()) c.gateway.id = default_gateway_id_here();
    if (c.mqtt.client_id.empty()) c.mqtt.client_id = "tidegate-" + c.gateway.id;
    return c;
}

void Loader::gateway(const Entry& top, Config& c) {
    for (const Entry& e : section(top, kGatewayKeys)) {
        if (e.key == "id") {
            if (auto v = get(e, "gateway.id", as_string)) {
                if (v->size() > kMaxGatewayId) {
                    error(value_pos(e), "gateway.id: " + std::to_string(v->size()) +
                                            " characters; at most " +
                                            std::to_string(kMaxGatewayId) +
                                            " are allowed (it is part of every topic and "
                                            "event id)");
                } else if (is_valid_gateway_id(*v)) {
                    c.gateway.id = *v;
                } else {
                    error(value_pos(e),
                          "gateway.id: '" + *v + "' may only contain letters, digits, '_' and '-'");
                }
            }
        } else if (e.key == "data_dir") {
            if (auto v = get(e, "gateway.data_dir", as_string)) {
                if (v->empty()) {
                    error(value_pos(e), "gateway.data_dir: must not be empty");
                } else {
                    c.gateway.data_dir = resolve(*v);
                }
            }
        }
    }
}

void Loader::mqtt(const Entry& top, Config& c) {
    MqttConfig& m = c.mqtt;
    std::optional<SourcePos> tls_pos;
    for (const Entry& e : section(top, kMqttKeys)) {
        if (e.key == "uri") {
            if (auto v = get(e, "mqtt.uri", as_string)) {
                const bool scheme_ok = v->rfind("tcp://", 0) == 0 || v->rfind("ssl://", 0) == 0;
                if (!scheme_ok) {
                    error(value_pos(e), "mqtt.uri: '" + *v + "' must start with tcp:// or ssl://");
                } else if (v->size() == 6) {
                    error(value_pos(e), "mqtt.uri: '" + *v + "' names no host");
                } else {
                    m.uri = *v;
                }
            }
        } else if (e.key == "version") {
            if (auto v = get(e, "mqtt.version", as_string)) {
                if (*v == "3.1.1") {
                    m.version = 4;
                } else if (*v == "5") {
                    m.version = 5;
                } else {
                    error(value_pos(e), "mqtt.version: expected 3.1.1 or 5, got '" + *v + "'");
                }
            }
        } else if (e.key == "client_id") {
            if (auto v = get(e, "mqtt.client_id", as_string)) {
                if (v->empty()) {
                    error(value_pos(e),
                          "mqtt.client_id: must not be empty (leave it out for the default, "
                          "tidegate-<gateway.id>)");
                } else if (v->size() > kMaxMqttString) {
                    error(value_pos(e), "mqtt.client_id: " + std::to_string(v->size()) +
                                            " bytes; MQTT allows at most " +
                                            std::to_string(kMaxMqttString));
                } else {
                    m.client_id = *v;
                }
            }
        } else if (e.key == "topic_prefix") {
            if (auto v = get(e, "mqtt.topic_prefix", as_string)) {
                if (v->empty()) {
                    error(value_pos(e), "mqtt.topic_prefix: must not be empty");
                } else if (v->size() > kMaxTopicPrefix) {
                    error(value_pos(e), "mqtt.topic_prefix: " + std::to_string(v->size()) +
                                            " bytes; at most " + std::to_string(kMaxTopicPrefix) +
                                            " are allowed");
                } else if (v->find_first_of("+#") != std::string::npos) {
                    error(value_pos(e), "mqtt.topic_prefix: '" + *v +
                                            "' must not contain the wildcards '+' or '#'");
                } else if (v->front() == '/' || v->back() == '/') {
                    error(value_pos(e),
                          "mqtt.topic_prefix: '" + *v + "' must not start or end with '/'");
                } else {
                    m.topic_prefix = *v;
                }
            }
        } else if (e.key == "qos") {
            if (auto v = get(e, "mqtt.qos", as_integer)) {
                if (*v == 0 || *v == 1) {
                    m.qos = static_cast<int>(*v);
                } else {
                    error(value_pos(e), "mqtt.qos: must be 0 or 1, got '" + e.value.Scalar() + "'");
                }
            }
        } else if (e.key == "keepalive") {
            if (auto d = positive_duration(e, "mqtt.keepalive", milliseconds(1000), false)) {
                m.keepalive = *d;
            }
        } else if (e.key == "input_buffer") {
            if (auto v = get(e, "mqtt.input_buffer", as_size)) {
                if (*v < 4096) {
                    error(value_pos(e), "mqtt.input_buffer: must be at least 4KiB");
                } else {
                    m.input_buffer = *v;
                }
            }
        } else if (e.key == "username") {
            if (auto v = get(e, "mqtt.username", as_string)) {
                if (v->size() > kMaxMqttString) {
                    error(value_pos(e), "mqtt.username: " + std::to_string(v->size()) +
                                            " bytes; MQTT allows at most " +
                                            std::to_string(kMaxMqttString));
                } else {
                    m.username = *v;
                }
            }
        } else if (e.key == "password_file") {
            if (auto v = get(e, "mqtt.password_file", as_string)) {
                if (!v->empty()) {
                    m.password_file = resolve(*v);
                    if (auto text = read_named_file(e, "mqtt.password_file", m.password_file)) {
                        while (!text->empty() &&
                               std::isspace(static_cast<unsigned char>(text->back()))) {
                            text->pop_back();
                        }
                        if (text->size() > kMaxMqttString) {
                            error(value_pos(e), "mqtt.password_file: the password is " +
                                                    std::to_string(text->size()) +
                                                    " bytes; MQTT allows at most " +
                                                    std::to_string(kMaxMqttString));
                        } else {
                            m.password = *text;
                        }
                    }
                }
            }
        } else if (e.key == "tls") {
            tls_pos = key_pos(e);
            tls(e, m.tls);
        }
    }
    if (tls_pos && m.uri.rfind("tcp://", 0) == 0) {
        // A warning, not an error: switching the uri between tcp:// and ssl://
        // should not require deleting the tls block.
        warn(*tls_pos, "mqtt.tls is ignored with a tcp:// uri (use ssl:// to connect with TLS)");
    }
}

void Loader::tls(const Entry& top, TlsConfig& t) {
    t.present = true;
    const Entry* cert = nullptr;
    const Entry* key = nullptr;
    const std::vector<Entry> es = section(top, kTlsKeys);
    for (const Entry& e : es) {
        if (e.key == "verify_hostname") {
            if (auto v = get(e, "mqtt.tls.verify_hostname", as_bool)) t.verify_hostname = *v;
            continue;
        }
        const std::string label = "mqtt.tls." + e.key;
        auto v = get(e, label, as_string);
        if (!v || v->empty()) continue;
        const std::string path = resolve(*v);
        // Read now so a typo shows at load time, not at the first connect.
        read_named_file(e, label, path);
        if (e.key == "ca_file") {
            t.ca_file = path;
        } else if (e.key == "cert_file") {
            t.cert_file = path;
            cert = &e;
        } else if (e.key == "key_file") {
            t.key_file = path;
            key = &e;
        }
    }
    if (cert && !key) {
        error(value_pos(*cert), "mqtt.tls.cert_file: needs mqtt.tls.key_file as well");
    } else if (key && !cert) {
        error(value_pos(*key), "mqtt.tls.key_file: needs mqtt.tls.cert_file as well");
    }
}

void Loader::rules(const Entry& top, Config& c) {
    for (const Entry& e : section(top, kRulesKeys)) {
        if (e.key == "paths") {
            std::vector<std::string> paths;
            bool ok = true;
            auto add = [&](const YAML::Node& n, const SourcePos& p) {
                std::string why;
                auto v = as_string(n, why);
                if (!v) {
                    error(p, "rules.paths: " + why);
                    ok = false;
                } else if (v->empty()) {
                    error(p, "rules.paths: an empty path");
                    ok = false;
                } else {
                    paths.push_back(resolve(*v));
                }
            };
            if (e.value.IsSequence()) {
                for (const YAML::Node& item : e.value)
                    add(item, pos(item, value_pos(e)));
            } else if (e.value.IsScalar()) {
                add(e.value, value_pos(e));
            } else if (!e.value.IsNull()) {
                error(value_pos(e),
                      "rules.paths: expected a list of files or folders, got " + describe(e.value));
                ok = false;
            }
            if (ok) c.rules.paths = std::move(paths);
        } else if (e.key == "tick") {
            if (auto d = positive_duration(e, "rules.tick", milliseconds(1), false)) {
                c.rules.tick = *d;
            }
        }
    }
}

void Loader::outbox(const Entry& top, Config& c) {
    for (const Entry& e : section(top, kOutboxKeys)) {
        if (e.key == "max_bytes") {
            if (auto v = get(e, "outbox.max_bytes", as_size)) {
                if (*v == 0) {
                    error(value_pos(e), "outbox.max_bytes: must be greater than 0");
                } else {
                    c.outbox.max_bytes = *v;
                }
            }
        } else if (e.key == "sync") {
            if (e.value.IsScalar() && e.value.Scalar() == "always") {
                c.outbox.sync_always = true;
            } else if (auto d = positive_duration(e, "outbox.sync", milliseconds(1), false)) {
                c.outbox.sync_always = false;
                c.outbox.sync = *d;
            }
        }
    }
}

void Loader::journal(const Entry& top, Config& c) {
    for (const Entry& e : section(top, kJournalKeys)) {
        if (e.key == "retain_bytes") {
            if (auto v = get(e, "journal.retain_bytes", as_size)) c.journal.retain_bytes = *v;
        }
    }
}

void Loader::metrics(const Entry& top, Config& c) {
    for (const Entry& e : section(top, kMetricsKeys)) {
        if (e.key == "interval") {
            if (auto d = positive_duration(e, "metrics.interval", milliseconds(1), false)) {
                c.metrics.interval = *d;
            }
        }
    }
}

void Loader::sensors(const Entry& top, Config& c) {
    if (top.value.IsNull()) return;  // `sensors:` with nothing under it: no sensors
    if (!top.value.IsSequence()) {
        error(value_pos(top), "sensors: expected a list of sensors, got " + describe(top.value));
        return;
    }
    for (const YAML::Node& item : top.value)
        sensor(item, c);
}

void Loader::outputs(const Entry& top, Config& c) {
    if (top.value.IsNull()) return;
    if (!top.value.IsSequence()) {
        error(value_pos(top), "outputs: expected a list of outputs, got " + describe(top.value));
        return;
    }
    for (const YAML::Node& item : top.value)
        output(item, c);
}

drivers::Options Loader::options(const Entry* e, std::span<const OptionSpec> table,
                                 const std::string& owner, const SourcePos& owner_pos,
                                 std::map<std::string, SourcePos>& positions) {
    drivers::Options out;
    std::vector<std::string> names;
    for (const OptionSpec& s : table)
        names.emplace_back(s.name);

    std::vector<std::string> given;  // written by the user, valid or not
    if (e && e->value.IsMap()) {
        for (const Entry& o : entries(e->value, names, "option", " for " + owner)) {
            given.push_back(o.key);
            const auto spec = std::find_if(table.begin(), table.end(),
                                           [&](const OptionSpec& s) { return s.name == o.key; });
            std::string why;
            YAML::Mark where;
            auto v = convert_option(o.value, spec->type, why, where);
            if (!v) {
                const SourcePos p = o.value.IsNull() ? key_pos(o) : mark_pos(where);
                error(p, "option '" + o.key + "': " + why);
                continue;
            }
            positions[o.key] = value_pos(o);
            out.set(o.key, std::move(*v));
        }
    } else if (e && !e->value.IsNull()) {
        error(value_pos(*e), "options: expected a map, got " + describe(e->value));
        return out;
    }

    for (const OptionSpec& s : table) {
        const std::string name(s.name);
        if (std::find(given.begin(), given.end(), name) != given.end()) continue;
        if (s.required) {
            error(e ? key_pos(*e) : owner_pos, "missing required option '" + name + "' for " +
                                                   owner + " (" + std::string(s.help) + ")");
            continue;
        }
        if (auto v = default_option(s, owner)) out.set(name, std::move(*v));
    }
    return out;
}

void Loader::sensor(const YAML::Node& node, Config& c) {
    if (!node.IsMap()) {
        error(pos(node, SourcePos{file_, 1, 1}),
              "expected a sensor (a map with name, driver, ...), got " + describe(node));
        return;
    }
    const std::size_t errors_before = errors_.size();
    SensorConfig s;
    s.pos = pos(node, SourcePos{file_, 1, 1});
    const std::vector<Entry> es = entries(node, kSensorKeys, "key", " in sensor");

    bool named = false;
    if (const Entry* e = find(es, "name")) {
        if (auto v = get(*e, "name", as_string)) {
            const SourcePos p = value_pos(*e);
            if (const std::string too_long = name_too_long("sensor name", *v); !too_long.empty()) {
                error(p, too_long);
            } else if (!is_valid_sensor_name(*v)) {
                error(p, "invalid sensor name '" + *v +
                             "': use segments of [a-z][a-z0-9_]* joined by '.', "
                             "e.g. greenhouse.temp");
            } else if (is_reserved(*v)) {
                error(p,
                      "'" + *v + "' is reserved in rule expressions and cannot be a sensor name");
            } else if (auto [it, inserted] = sensor_lines_.try_emplace(*v, p.line); !inserted) {
                error(p, "duplicate sensor name '" + *v + "' (first defined at line " +
                             std::to_string(it->second) + ")");
            } else {
                s.name = *v;
                named = true;
            }
        }
    } else {
        error(s.pos, "sensor has no 'name'");
    }
    const std::string who = named ? "sensor '" + s.name + "'" : std::string("sensor");

    const drivers::DriverInfo* info = nullptr;
    if (const Entry* e = find(es, "driver")) {
        if (auto v = get(*e, "driver", as_string)) {
            info = drivers::find_driver(*v);
            if (info) {
                s.driver = *v;
            } else {
                std::vector<std::string> known;
                for (const drivers::DriverInfo& d : drivers::driver_registry()) {
                    known.emplace_back(d.name);
                }
                std::string msg = "unknown driver '" + *v + "'";
                const std::string near = closest_match(*v, known);
                msg += near.empty() ? " (available: " + join_words(known) + ")"
                                    : " (did you mean '" + near + "'?)";
                error(value_pos(*e), msg);
            }
        }
    } else {
        error(s.pos, who + " has no 'driver'");
    }
    if (info && info->fixed_type) s.type = info->type;

    for (const Entry& e : es) {
        if (e.key == "interval") {
            if (auto d = positive_duration(e, "interval", milliseconds(0), true)) s.interval = *d;
        } else if (e.key == "type") {
            if (auto v = get(e, "type", as_string)) {
                std::optional<ValueType> t;
                if (*v == "number")
                    t = ValueType::Number;
                else if (*v == "boolean")
                    t = ValueType::Boolean;
                else if (*v == "string")
                    t = ValueType::String;
                if (!t) {
                    error(value_pos(e),
                          "type: expected number, boolean or string, got '" + *v + "'");
                } else if (info && info->fixed_type && *t != info->type) {
                    error(value_pos(e), "type: driver '" + s.driver + "' makes " +
                                            std::string(type_name(info->type)) +
                                            " values; remove 'type' or set it to " +
                                            std::string(type_name(info->type)));
                } else {
                    s.type = *t;
                }
            }
        } else if (e.key == "unit") {
            if (auto v = get(e, "unit", as_string)) {
                // Copied into every event of the sensor.
                const bool control = std::any_of(v->begin(), v->end(), [](char ch) {
                    const auto u = static_cast<unsigned char>(ch);
                    return u < 0x20 || u == 0x7F;
                });
                if (control) {
                    error(value_pos(e), "unit: must not contain control characters");
                } else {
                    s.unit = *v;
                }
            }
        } else if (e.key == "range") {
            if (!e.value.IsSequence() || e.value.size() != 2) {
                error(value_pos(e), "range: expected [low, high], got " + describe(e.value));
                continue;
            }
            std::string why;
            const auto lo = as_number(e.value[0], why);
            if (!lo) error(pos(e.value[0], value_pos(e)), "range: " + why);
            const auto hi = as_number(e.value[1], why);
            if (!hi) error(pos(e.value[1], value_pos(e)), "range: " + why);
            if (lo && hi) {
                if (*lo < *hi) {
                    s.range = std::make_pair(*lo, *hi);
                } else {
                    error(value_pos(e), "range: low (" + format_number(*lo) +
                                            ") must be below high (" + format_number(*hi) + ")");
                }
            }
        } else if (e.key == "precision") {
            if (auto v = get(e, "precision", as_integer)) {
                if (*v < 0 || *v > 15) {
                    error(value_pos(e),
                          "precision: must be 0 to 15, got '" + e.value.Scalar() + "'");
                } else {
                    s.precision = static_cast<int>(*v);
                }
            }
        } else if (e.key == "deadband") {
            if (auto v = get(e, "deadband", as_number)) {
                if (*v < 0) {
                    error(value_pos(e),
                          "deadband: must not be negative, got '" + e.value.Scalar() + "'");
                } else {
                    s.deadband = *v;
                }
            }
        } else if (e.key == "heartbeat") {
            if (auto d = positive_duration(e, "heartbeat", milliseconds(1), false)) {
                s.heartbeat = *d;
            }
        } else if (e.key == "publish") {
            if (auto v = get(e, "publish", as_string)) {
                if (*v == "all")
                    s.publish = PublishMode::All;
                else if (*v == "events")
                    s.publish = PublishMode::Events;
                else if (*v == "state")
                    s.publish = PublishMode::State;
                else if (*v == "none")
                    s.publish = PublishMode::None;
                else {
                    error(value_pos(e),
                          "publish: expected all, events, state or none, got '" + *v + "'");
                }
            }
        }
    }
    if (const Entry* hb = find(es, "heartbeat"); hb && !find(es, "deadband")) {
        warn(key_pos(*hb), "heartbeat has no effect without deadband");
    }

    if (!info) return;  // options cannot be checked against an unknown driver
    std::map<std::string, SourcePos> positions;
    s.options = options(find(es, "options"), info->options,
                        "driver '" + std::string(info->name) + "'", s.pos, positions);

    // Cross-option rules live in the driver; creating it (no I/O) checks them.
    if (errors_.size() == errors_before && info->create) {
        try {
            const drivers::SensorSpec probe_spec = s.spec();
            std::unique_ptr<drivers::Driver> probe = info->create(std::span(&probe_spec, 1));
        } catch (const drivers::OptionError& oe) {
            const auto it = positions.find(oe.key());
            if (it != positions.end()) {
                error(it->second, "option '" + oe.key() + "': " + oe.what());
            } else {
                error(s.pos, who + ": " + oe.what());
            }
        } catch (const std::exception& ex) {
            error(s.pos, who + ": " + ex.what());
        }
    }
    c.sensors.push_back(std::move(s));
}

void Loader::output(const YAML::Node& node, Config& c) {
    if (!node.IsMap()) {
        error(pos(node, SourcePos{file_, 1, 1}),
              "expected an output (a map with name, driver, ...), got " + describe(node));
        return;
    }
    const std::size_t errors_before = errors_.size();
    OutputConfig o;
    o.pos = pos(node, SourcePos{file_, 1, 1});
    const std::vector<Entry> es = entries(node, kOutputKeys, "key", " in output");

    if (const Entry* e = find(es, "name")) {
        if (auto v = get(*e, "name", as_string)) {
            const SourcePos p = value_pos(*e);
            if (const std::string too_long = name_too_long("output name", *v); !too_long.empty()) {
                error(p, too_long);
            } else if (!is_valid_segment(*v)) {
                error(p, "invalid output name '" + *v + "': use [a-z][a-z0-9_]*, e.g. fan");
            } else if (auto [it, inserted] = output_lines_.try_emplace(*v, p.line); !inserted) {
                error(p, "duplicate output name '" + *v + "' (first defined at line " +
                             std::to_string(it->second) + ")");
            } else {
                o.name = *v;
            }
        }
    } else {
        error(o.pos, "output has no 'name'");
    }

    const drivers::OutputInfo* info = nullptr;
    if (const Entry* e = find(es, "driver")) {
        if (auto v = get(*e, "driver", as_string)) {
            info = drivers::find_output(*v);
            if (info) {
                o.driver = *v;
            } else {
                std::vector<std::string> known;
                for (const drivers::OutputInfo& d : drivers::output_registry()) {
                    known.emplace_back(d.name);
                }
                std::string msg = "unknown output driver '" + *v + "'";
                const std::string near = closest_match(*v, known);
                msg += near.empty() ? " (available: " + join_words(known) + ")"
                                    : " (did you mean '" + near + "'?)";
                error(value_pos(*e), msg);
            }
        }
    } else {
        error(o.pos, (o.name.empty() ? std::string("output") : "output '" + o.name + "'") +
                         " has no 'driver'");
    }

    if (const Entry* e = find(es, "remote")) {
        if (auto v = get(*e, "remote", as_bool)) o.remote = *v;
    }

    if (info) {
        std::map<std::string, SourcePos> positions;
        o.options = options(find(es, "options"), info->options,
                            "output driver '" + std::string(info->name) + "'", o.pos, positions);
        // Output states are on/off; accept the spellings of SPEC §2 in any case.
        if (info->name == "gpio" && o.options.has("initial")) {
            const std::string v = lower(o.options.string("initial"));
            if (v == "on" || v == "true") {
                o.options.set("initial", std::string("on"));
            } else if (v == "off" || v == "false") {
                o.options.set("initial", std::string("off"));
            } else {
                const auto it = positions.find("initial");
                error(it != positions.end() ? it->second : o.pos,
                      "option 'initial': expected on or off, got '" + o.options.string("initial") +
                          "'");
            }
        }
        // The gateway creates each output at start, and the driver refuses
        // there what its option table cannot express (a wildcard topic, equal
        // on and off payloads). Creating it here (no I/O) makes `check` refuse
        // the same, at the offending key.
        if (errors_.size() == errors_before && info->create) {
            const std::string who = "output '" + o.name + "'";
            try {
                NoOutputEnv env;
                std::unique_ptr<drivers::Output> probe = info->create(o.name, o.options, env);
            } catch (const drivers::OptionError& oe) {
                const auto it = positions.find(oe.key());
                if (it != positions.end()) {
                    error(it->second, "option '" + oe.key() + "': " + oe.what());
                } else {
                    error(o.pos, who + ": " + oe.what());
                }
            } catch (const std::exception& ex) {
                error(o.pos, who + ": " + ex.what());
            }
        }
    }
    c.outputs.push_back(std::move(o));
}

}  // namespace

std::string SensorConfig::path() const {
    std::string p = name;
    std::replace(p.begin(), p.end(), '.', '/');
    return p;
}

drivers::SensorSpec SensorConfig::spec() const {
    drivers::SensorSpec s;
    s.name = name;
    s.type = type;
    s.interval = interval;
    s.options = options;
    return s;
}

std::string default_gateway_id(const std::string& hostname, const std::string& machine_id) {
    std::string id = hostname.substr(0, hostname.find('.'));
    for (char& ch : id) {
        if (!is_id_char(ch)) ch = '-';
    }
    if (id.empty()) return "tidegate";
    const std::string generic = lower(id);
    if (generic == "raspberrypi" || generic == "localhost") {
        std::string hex;
        for (char ch : machine_id) {
            if (!std::isxdigit(static_cast<unsigned char>(ch)) || hex.size() == 6) break;
            hex += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        if (hex.size() == 6) id += "-" + hex;
    }
    return id;
}

Config parse_config(const std::string& text, const std::string& file, Diagnostics* warnings) {
    Loader loader(file);
    Config c = loader.load(text);

    // Problems are found section by section; report them in document order.
    auto by_place = [](const SourceError& a, const SourceError& b) {
        return std::pair(a.pos().line, a.pos().col) < std::pair(b.pos().line, b.pos().col);
    };
    std::stable_sort(loader.errors().begin(), loader.errors().end(), by_place);
    std::stable_sort(loader.warnings().begin(), loader.warnings().end(), by_place);
    if (warnings) {
        for (SourceError& w : loader.warnings())
            warnings->add(std::move(w));
    }
    if (!loader.errors().empty()) {
        Diagnostics d;
        for (SourceError& e : loader.errors())
            d.add(std::move(e));
        throw LoadError(std::move(d));
    }
    return c;
}

Config load_config(const std::string& path, Diagnostics* warnings) {
    std::string text, why;
    if (!read_regular_file(path, kMaxConfigFileBytes, text, why)) {
        Diagnostics d;
        d.error(SourcePos{path, 0, 0}, "cannot read config file: " + why);
        throw LoadError(std::move(d));
    }
    return parse_config(text, path, warnings);
}

}  // namespace tg
