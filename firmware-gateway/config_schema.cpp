// The tables of config_schema.h. A key is declared with one of the makers
// below (text, flag, whole, number, duration, size, choice) or, where its
// check spans more than one value, with its own function.
#include "config_schema.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <utility>

#include "core/file_read.h"
#include "core/units.h"
#include "rules/program.h"

namespace tg {
namespace {

namespace fs = std::filesystem;
using drivers::OptionSpec;
using drivers::OptType;
using drivers::OptValue;
using rules::YamlEntry;
using std::chrono::milliseconds;

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

std::string lower(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// The label of a key in messages: the dotted path at the top level, the bare
// name inside a list item ("interval").
template <class T>
std::string label_of(const ConfigKey<T>& k) {
    if constexpr (std::is_same_v<T, Config>) {
        return k.path;
    } else {
        return std::string(k.name());
    }
}

// A check of a converted value: why it is refused, or empty. `raw` is the
// value as written, for messages.
template <class V>
using Check = std::string (*)(const V& v, const std::string& raw);
template <class C>
bool callable(const C& c) {
    if constexpr (std::is_pointer_v<C>) {
        return c != nullptr;
    } else {
        return true;
    }
}

// Where a value lands.
template <class T, class V>
using Store = void (*)(T&, V);

// A key whose value converts with `conv`, passes `check` (a Check, or a
// callable holding its bounds) and is stored with `store(t, value)`.
template <class T, class V, class C = Check<V>>
ConfigKey<T> key(std::string path, std::string_view def, std::string_view help,
                 std::optional<V> (*conv)(const YAML::Node&, std::string&), Store<T, V> store,
                 C check = nullptr) {
    ConfigKey<T> k{std::move(path), def, help, {}, {}};
    const std::string label = label_of(k);
    k.set = [label, conv, store, check](ConfigReader& r, const YamlEntry& e, T& t) {
        auto v = r.yaml().get(e, label, conv);
        if (!v) return;
        if (callable(check)) {
            if (std::string why = check(*v, rules::shown(e.value.Scalar())); !why.empty()) {
                r.error(r.yaml().value_pos(e), label + ": " + why);
                return;
            }
        }
        store(t, std::move(*v));
    };
    return k;
}

template <class T>
ConfigKey<T> text(std::string path, std::string_view def, std::string_view help,
                  Store<T, std::string> store, Check<std::string> check = nullptr) {
    return key<T, std::string>(std::move(path), def, help, rules::as_text, std::move(store),
                               std::move(check));
}

template <class T>
ConfigKey<T> flag(std::string path, std::string_view def, std::string_view help,
                  Store<T, bool> store) {
    return key<T, bool>(std::move(path), def, help, rules::as_bool, std::move(store));
}

// A whole number from `lo` to `hi`.
template <class T>
ConfigKey<T> whole(std::string path, std::string_view def, std::string_view help, long long lo,
                   long long hi, Store<T, long long> store) {
    return key<T, long long>(std::move(path), def, help, rules::as_integer, std::move(store),
                             [lo, hi](const long long& v, const std::string& raw) -> std::string {
                                 if (v >= lo && v <= hi) return {};
                                 const std::string range =
                                     hi == lo + 1
                                         ? std::to_string(lo) + " or " + std::to_string(hi)
                                         : std::to_string(lo) + " to " + std::to_string(hi);
                                 return "must be " + range + ", got '" + raw + "'";
                             });
}

// A duration of at least `minimum` (or 0 when `allow_zero`).
template <class T>
ConfigKey<T> duration(std::string path, std::string_view def, std::string_view help,
                      milliseconds minimum, bool allow_zero, Store<T, milliseconds> store) {
    return key<T, milliseconds>(
        std::move(path), def, help, rules::as_duration, std::move(store),
        [minimum, allow_zero](const milliseconds& d, const std::string& raw) -> std::string {
            if (allow_zero && d.count() == 0) return {};
            if (d >= minimum && d.count() > 0) return {};
            return "must be at least " + format_duration(minimum) + ", got '" + raw + "'";
        });
}

// A size of at least `minimum` bytes.
template <class T>
ConfigKey<T> byte_size(std::string path, std::string_view def, std::string_view help,
                       std::uint64_t minimum, std::string below, Store<T, std::uint64_t> store) {
    return key<T, std::uint64_t>(
        std::move(path), def, help, rules::as_size, std::move(store),
        [minimum, below](const std::uint64_t& v, const std::string&) -> std::string {
            return v < minimum ? below : std::string();
        });
}

// One of a few words, each standing for a value.
template <class T, class V>
ConfigKey<T> choice(std::string path, std::string_view def, std::string_view help,
                    std::vector<std::pair<std::string, V>> words, Store<T, V> store) {
    ConfigKey<T> k{std::move(path), def, help, {}, {}};
    const std::string label = label_of(k);
    k.set = [label, words, store](ConfigReader& r, const YamlEntry& e, T& t) {
        auto v = r.yaml().get(e, label, rules::as_text);
        if (!v) return;
        std::vector<std::string> names;
        for (const auto& [word, value] : words) {
            if (word == *v) return store(t, value);
            names.push_back(word);
        }
        std::string expected;
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (i > 0) expected += i + 1 == names.size() ? " or " : ", ";
            expected += names[i];
        }
        r.error(r.yaml().value_pos(e),
                label + ": expected " + expected + ", got '" + rules::shown(*v) + "'");
    };
    return k;
}

template <class T>
ConfigKey<T> section(std::string path, std::string_view help,
                     decltype(ConfigKey<T>::done) done = {}) {
    return ConfigKey<T>{std::move(path), {}, help, {}, std::move(done)};
}

template <class T>
ConfigKey<T> custom(std::string path, std::string_view def, std::string_view help,
                    decltype(ConfigKey<T>::set) set) {
    return ConfigKey<T>{std::move(path), def, help, std::move(set), {}};
}

// Checks shared by several keys.
std::string at_most_bytes(const std::string& v, std::size_t max, const char* whose) {
    if (v.size() <= max) return {};
    return std::to_string(v.size()) + " bytes; " + whose + " at most " + std::to_string(max);
}

bool is_id_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

// ---------------------------------------------------------------------------
// Top level

void read_sensor(ConfigReader& r, const YAML::Node& node, Config& c);
void read_output(ConfigReader& r, const YAML::Node& node, Config& c);

// `key: [items]`: each item read by `item`; `key:` with nothing is none.
auto list_of(std::string what, void (*item)(ConfigReader&, const YAML::Node&, Config&)) {
    return [what, item](ConfigReader& r, const YamlEntry& e, Config& c) {
        if (e.value.IsNull()) return;
        if (!e.value.IsSequence()) {
            r.error(r.yaml().value_pos(e),
                    e.key + ": expected a list of " + what + ", got " + rules::describe(e.value));
            return;
        }
        for (const YAML::Node& n : e.value)
            item(r, n, c);
    };
}

void read_rule_paths(ConfigReader& r, const YamlEntry& e, Config& c) {
    std::vector<std::string> paths;
    bool ok = true;
    auto add = [&](const YAML::Node& n, const SourcePos& p) {
        std::string why;
        auto v = rules::as_text(n, why);
        if (!v) {
            r.error(p, "rules.paths: " + why);
            ok = false;
        } else if (v->empty()) {
            r.error(p, "rules.paths: an empty path");
            ok = false;
        } else {
            paths.push_back(r.resolve(*v));
        }
    };
    if (e.value.IsSequence()) {
        for (const YAML::Node& item : e.value)
            add(item, r.yaml().pos(item, r.yaml().value_pos(e)));
    } else if (e.value.IsScalar()) {
        add(e.value, r.yaml().value_pos(e));
    } else if (!e.value.IsNull()) {
        r.error(r.yaml().value_pos(e), "rules.paths: expected a list of files or folders, got " +
                                           rules::describe(e.value));
        ok = false;
    }
    if (ok) c.rules.paths = std::move(paths);
}

void read_password_file(ConfigReader& r, const YamlEntry& e, Config& c) {
    auto v = r.yaml().get(e, "mqtt.password_file", rules::as_text);
    if (!v || v->empty()) return;
    MqttConfig& m = c.mqtt;
    m.password_file = r.resolve(*v);
    auto text = r.read_named_file(e, "mqtt.password_file", m.password_file);
    if (!text) return;
    while (!text->empty() && std::isspace(static_cast<unsigned char>(text->back())))
        text->pop_back();
    if (text->size() > kMaxMqttString) {
        r.error(r.yaml().value_pos(e),
                "mqtt.password_file: the password is " + std::to_string(text->size()) +
                    " bytes; MQTT allows at most " + std::to_string(kMaxMqttString));
        return;
    }
    m.password = *text;
}

// mqtt.tls.*_file: read now, so that a typo shows at load time, not at the
// first connect.
ConfigKey<Config> tls_file(std::string name, std::string_view help, std::string TlsConfig::*field) {
    const std::string path = "mqtt.tls." + name;
    return custom<Config>(path, "", help,
                          [path, field](ConfigReader& r, const YamlEntry& e, Config& c) {
                              auto v = r.yaml().get(e, path, rules::as_text);
                              if (!v || v->empty()) return;
                              const std::string file = r.resolve(*v);
                              r.read_named_file(e, path, file);
                              c.mqtt.tls.*field = file;
                          });
}

void tls_done(ConfigReader& r, const YamlEntry&, const std::vector<YamlEntry>& es, Config& c) {
    c.mqtt.tls.present = true;
    const YamlEntry* cert = rules::find_entry(es, "cert_file");
    const YamlEntry* key = rules::find_entry(es, "key_file");
    if (cert && !key) {
        r.error(r.yaml().value_pos(*cert), "mqtt.tls.cert_file: needs mqtt.tls.key_file as well");
    } else if (key && !cert) {
        r.error(r.yaml().value_pos(*key), "mqtt.tls.key_file: needs mqtt.tls.cert_file as well");
    }
}

void mqtt_done(ConfigReader& r, const YamlEntry&, const std::vector<YamlEntry>& es, Config& c) {
    const YamlEntry* tls = rules::find_entry(es, "tls");
    if (tls && c.mqtt.uri.rfind("tcp://", 0) == 0) {
        // A warning, not an error: switching the uri between tcp:// and ssl://
        // should not require deleting the tls block.
        r.yaml().warn(r.yaml().key_pos(*tls),
                      "mqtt.tls is ignored with a tcp:// uri (use ssl:// to connect with TLS)");
    }
}

std::vector<ConfigKey<Config>> make_config_keys() {
    using C = Config;
    return {
        section<C>("gateway", "who this gateway is and where it keeps its files"),
        text<C>(
            "gateway.id", "",
            "names this gateway in every topic and event id (default: derived from the host name)",
            [](C& c, std::string v) { c.gateway.id = std::move(v); },
            [](const std::string& v, const std::string&) -> std::string {
                if (v.size() > kMaxGatewayId) {
                    return std::to_string(v.size()) + " characters; at most " +
                           std::to_string(kMaxGatewayId) +
                           " are allowed (it is part of every topic and event id)";
                }
                if (v.empty() || !std::all_of(v.begin(), v.end(), is_id_char)) {
                    return "'" + rules::shown(v) +
                           "' may only contain letters, digits, '_' and '-'";
                }
                return {};
            }),
        custom<C>("gateway.data_dir", "/var/lib/tidegate",
                  "outbox, journal and rule state live here",
                  [](ConfigReader& r, const YamlEntry& e, C& c) {
                      auto v = r.yaml().get(e, "gateway.data_dir", rules::as_text);
                      if (!v) return;
                      if (v->empty()) {
                          r.error(r.yaml().value_pos(e), "gateway.data_dir: must not be empty");
                          return;
                      }
                      c.gateway.data_dir = r.resolve(*v);
                  }),

        section<C>("mqtt", "the broker and how to talk to it", mqtt_done),
        text<C>(
            "mqtt.uri", "tcp://localhost:1883", "the broker: tcp://HOST:PORT or ssl://HOST:PORT",
            [](C& c, std::string v) { c.mqtt.uri = std::move(v); },
            [](const std::string& v, const std::string&) -> std::string {
                if (v.rfind("tcp://", 0) != 0 && v.rfind("ssl://", 0) != 0)
                    return "'" + rules::shown(v) + "' must start with tcp:// or ssl://";
                if (v.size() == 6) return "'" + v + "' names no host";
                return {};
            }),
        choice<C, int>("mqtt.version", "3.1.1", "protocol version: 3.1.1 or 5",
                       {{"3.1.1", 4}, {"5", 5}}, [](C& c, int v) { c.mqtt.version = v; }),
        text<C>(
            "mqtt.client_id", "", "default: tidegate-<gateway.id>",
            [](C& c, std::string v) { c.mqtt.client_id = std::move(v); },
            [](const std::string& v, const std::string&) -> std::string {
                if (v.empty()) {
                    return "must not be empty (leave it out for the default, "
                           "tidegate-<gateway.id>)";
                }
                return at_most_bytes(v, kMaxMqttString, "MQTT allows");
            }),
        text<C>(
            "mqtt.topic_prefix", "tidegate", "every topic starts with <topic_prefix>/<gateway.id>/",
            [](C& c, std::string v) { c.mqtt.topic_prefix = std::move(v); },
            [](const std::string& v, const std::string&) -> std::string {
                if (v.empty()) return "must not be empty";
                if (v.size() > kMaxTopicPrefix) {
                    return std::to_string(v.size()) + " bytes; at most " +
                           std::to_string(kMaxTopicPrefix) + " are allowed";
                }
                if (v.find_first_of("+#") != std::string::npos)
                    return "'" + rules::shown(v) + "' must not contain the wildcards '+' or '#'";
                if (v.front() == '/' || v.back() == '/')
                    return "'" + rules::shown(v) + "' must not start or end with '/'";
                return {};
            }),
        whole<C>("mqtt.qos", "1", "events: 1 = at-least-once, 0 = at-most-once", 0, 1,
                 [](C& c, long long v) { c.mqtt.qos = static_cast<int>(v); }),
        duration<C>("mqtt.keepalive", "30s", "MQTT keep-alive interval", milliseconds(1000), false,
                    [](C& c, milliseconds v) { c.mqtt.keepalive = v; }),
        byte_size<C>("mqtt.input_buffer", "8MiB",
                     "incoming messages waiting for the event loop; a larger burst is shed", 4096,
                     "must be at least 4KiB",
                     [](C& c, std::uint64_t v) { c.mqtt.input_buffer = v; }),
        text<C>(
            "mqtt.username", "\"\"", "optional user name",
            [](C& c, std::string v) { c.mqtt.username = std::move(v); },
            [](const std::string& v, const std::string&) {
                return at_most_bytes(v, kMaxMqttString, "MQTT allows");
            }),
        custom<C>("mqtt.password_file", "\"\"",
                  "optional file holding the password (trailing newline stripped)",
                  read_password_file),
        section<C>("mqtt.tls", "TLS settings for ssl:// URIs", tls_done),
        tls_file("ca_file", "a private CA instead of the system trust store", &TlsConfig::ca_file),
        tls_file("cert_file", "client certificate for mutual TLS", &TlsConfig::cert_file),
        tls_file("key_file", "the client certificate's key", &TlsConfig::key_file),
        flag<C>("mqtt.tls.verify_hostname", "true",
                "check the broker's name against its certificate",
                [](C& c, bool v) { c.mqtt.tls.verify_hostname = v; }),

        section<C>("rules", "rule files and their clock"),
        custom<C>("rules.paths", "[/etc/tidegate/rules.d]",
                  "rule files, or folders of *.yaml / *.yml", read_rule_paths),
        duration<C>("rules.tick", "1s", "clock tick for time-based conditions", milliseconds(1),
                    false, [](C& c, milliseconds v) { c.rules.tick = v; }),

        section<C>("outbox", "undelivered events on disk"),
        byte_size<C>("outbox.max_bytes", "64MiB", "bound on undelivered events kept on disk", 1,
                     "must be greater than 0",
                     [](C& c, std::uint64_t v) { c.outbox.max_bytes = v; }),
        custom<C>("outbox.sync", "1s", "group-commit interval for fsync, or always",
                  [](ConfigReader& r, const YamlEntry& e, C& c) {
                      if (e.value.IsScalar() && e.value.Scalar() == "always") {
                          c.outbox.sync_always = true;
                          return;
                      }
                      auto d = r.yaml().get(e, "outbox.sync", rules::as_duration);
                      if (!d) return;
                      if (d->count() <= 0) {
                          r.error(r.yaml().value_pos(e),
                                  "outbox.sync: must be at least 1ms, got '" + format_duration(*d) +
                                      "'");
                          return;
                      }
                      c.outbox.sync_always = false;
                      c.outbox.sync = *d;
                  }),

        section<C>("journal", "delivered events kept for replay"),
        byte_size<C>("journal.retain_bytes", "0", "keep delivered events up to this size; 0 = off",
                     0, "", [](C& c, std::uint64_t v) { c.journal.retain_bytes = v; }),

        section<C>("metrics", "counters on <p>/metrics"),
        duration<C>("metrics.interval", "60s", "how often counters are published", milliseconds(1),
                    false, [](C& c, milliseconds v) { c.metrics.interval = v; }),

        custom<C>("sensors", "", "the sensors (required)", list_of("sensors", read_sensor)),
        custom<C>("outputs", "[]", "things rules can switch", list_of("outputs", read_output)),
    };
}

// ---------------------------------------------------------------------------
// Driver options: typed by the driver's own table.

std::optional<OptValue> convert_option(const YAML::Node& n, OptType type, std::string& why,
                                       YAML::Node& where) {
    where.reset(n);
    switch (type) {
        case OptType::Number:
            if (auto v = rules::as_number(n, why)) return OptValue(*v);
            return std::nullopt;
        case OptType::Integer:
            if (auto v = rules::as_integer(n, why)) return OptValue(*v);
            return std::nullopt;
        case OptType::Boolean:
            if (auto v = rules::as_bool(n, why)) return OptValue(*v);
            return std::nullopt;
        case OptType::String:
            if (auto v = rules::as_text(n, why)) return OptValue(std::move(*v));
            return std::nullopt;
        case OptType::Duration:
            if (auto v = rules::as_duration(n, why)) return OptValue(*v);
            return std::nullopt;
        case OptType::NumberList:
        case OptType::StringList: {
            const bool numbers = type == OptType::NumberList;
            // One string stands for a list of one, as in rules.paths.
            if (!numbers && n.IsScalar()) return OptValue(std::vector<std::string>{n.Scalar()});
            if (!n.IsSequence()) {
                why = std::string("expected a list of ") + (numbers ? "numbers" : "strings") +
                      ", got " + rules::describe(n);
                return std::nullopt;
            }
            std::vector<double> nums;
            std::vector<std::string> texts;
            for (const YAML::Node& item : n) {
                where.reset(item);
                if (numbers) {
                    auto v = rules::as_number(item, why);
                    if (!v) return std::nullopt;
                    nums.push_back(*v);
                } else {
                    auto v = rules::as_text(item, why);
                    if (!v) return std::nullopt;
                    texts.push_back(std::move(*v));
                }
            }
            if (numbers) return OptValue(std::move(nums));
            return OptValue(std::move(texts));
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
    YAML::Node where;
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

// `options:` of a sensor or output, checked against its driver's table.
drivers::Options read_options(ConfigReader& r, const YamlEntry* e,
                              std::span<const OptionSpec> table, const std::string& owner,
                              const SourcePos& owner_pos,
                              std::map<std::string, SourcePos>& positions) {
    rules::YamlReader& y = r.yaml();
    drivers::Options out;
    std::vector<std::string> names;
    for (const OptionSpec& s : table)
        names.emplace_back(s.name);

    std::vector<std::string> given;  // written by the user, valid or not
    if (e && e->value.IsMap()) {
        for (const YamlEntry& o : y.entries(e->value, names, "option", " for " + owner)) {
            given.push_back(o.key);
            const auto spec = std::find_if(table.begin(), table.end(),
                                           [&](const OptionSpec& s) { return s.name == o.key; });
            std::string why;
            YAML::Node where;
            auto v = convert_option(o.value, spec->type, why, where);
            if (!v) {
                const SourcePos p = o.value.IsNull() ? y.key_pos(o) : y.pos(where, y.value_pos(o));
                r.error(p, "option '" + o.key + "': " + why);
                continue;
            }
            positions[o.key] = y.value_pos(o);
            out.set(o.key, std::move(*v));
        }
    } else if (e && !e->value.IsNull()) {
        r.error(y.value_pos(*e), "options: expected a map, got " + rules::describe(e->value));
        return out;
    }

    for (const OptionSpec& s : table) {
        const std::string name(s.name);
        if (std::find(given.begin(), given.end(), name) != given.end()) continue;
        if (s.required) {
            r.error(e ? y.key_pos(*e) : owner_pos, "missing required option '" + name + "' for " +
                                                       owner + " (" + std::string(s.help) + ")");
            continue;
        }
        if (auto v = default_option(s, owner)) out.set(name, std::move(*v));
    }
    return out;
}

// A name over kMaxName: why; else empty.
std::string name_too_long(const std::string& what, const std::string& name) {
    if (name.size() <= kMaxName) return {};
    return what + ": " + std::to_string(name.size()) + " characters; at most " +
           std::to_string(kMaxName) + " are allowed (it is part of topics)";
}

// A name unique among its kind, recorded in `lines`; false (reported) when
// it was defined before.
bool first_definition(ConfigReader& r, std::map<std::string, int>& lines, const std::string& what,
                      const std::string& name, const SourcePos& p) {
    const auto [it, inserted] = lines.try_emplace(name, p.line);
    if (inserted) return true;
    r.error(p, "duplicate " + what + " name '" + name + "' (first defined at line " +
                   std::to_string(it->second) + ")");
    return false;
}

// `driver:` of a sensor or output: a name in `registry`, an error with a
// "did you mean" otherwise; `store` keeps the driver found.
template <class D, class Info>
ConfigKey<D> driver_key(std::string_view help, std::string what,
                        std::span<const Info> (*registry)(),
                        void (*store)(D&, const Info&, std::string)) {
    return custom<D>("driver", "", help,
                     [what, registry, store](ConfigReader& r, const YamlEntry& e, D& d) {
                         auto v = r.yaml().get(e, "driver", rules::as_text);
                         if (!v) return;
                         std::vector<std::string> known;
                         for (const Info& info : registry()) {
                             if (info.name == *v) return store(d, info, std::move(*v));
                             known.emplace_back(info.name);
                         }
                         std::string msg = "unknown " + what + " '" + *v + "'";
                         const std::string near = closest_match(*v, known);
                         msg += near.empty() ? " (available: " + join_words(known) + ")"
                                             : " (did you mean '" + near + "'?)";
                         r.error(r.yaml().value_pos(e), msg);
                     });
}

// Creating a driver (no I/O) checks the cross-option rules it alone knows;
// they are reported at the option they name.
template <class Create>
void probe_driver(ConfigReader& r, const std::string& who, const SourcePos& at,
                  const std::map<std::string, SourcePos>& positions, Create create) {
    try {
        create();
    } catch (const drivers::OptionError& oe) {
        const auto it = positions.find(oe.key());
        if (it != positions.end()) {
            r.error(it->second, "option '" + oe.key() + "': " + oe.what());
        } else {
            r.error(at, who + ": " + oe.what());
        }
    } catch (const std::exception& ex) {
        r.error(at, who + ": " + ex.what());
    }
}

// ---------------------------------------------------------------------------
// Sensors

std::vector<ConfigKey<SensorDraft>> make_sensor_keys() {
    using S = SensorDraft;
    return {
        custom<S>(
            "name", "", "segments [a-z][a-z0-9_]* joined by '.'; unique",
            [](ConfigReader& r, const YamlEntry& e, S& d) {
                auto v = r.yaml().get(e, "name", rules::as_text);
                if (!v) return;
                const SourcePos p = r.yaml().value_pos(e);
                if (const std::string too_long = name_too_long("sensor name", *v);
                    !too_long.empty()) {
                    r.error(p, too_long);
                } else if (!rules::is_valid_sensor_name(*v)) {
                    r.error(p, "invalid sensor name '" + rules::shown(*v) +
                                   "': use segments of [a-z][a-z0-9_]* joined by '.', "
                                   "e.g. greenhouse.temp");
                } else if (rules::is_reserved_name(*v)) {
                    r.error(p, "'" + *v +
                                   "' is reserved in rule expressions and cannot be a sensor name");
                } else if (first_definition(r, r.sensor_lines, "sensor", *v, p)) {
                    d.s.name = *v;
                    d.named = true;
                }
            }),
        driver_key<S, drivers::DriverInfo>(
            "simulated, file, w1, iio, gpio, serial, mqtt, command", "driver",
            drivers::driver_registry,
            [](S& d, const drivers::DriverInfo& info, std::string name) {
                d.info = &info;
                d.s.driver = std::move(name);
                if (info.fixed_type) d.s.type = info.type;
            }),
        duration<S>("interval", "5s", "poll interval (first poll at start)", milliseconds(0), true,
                    [](S& d, milliseconds v) { d.s.interval = v; }),
        choice<S, ValueType>("type", "number", "number | boolean | string",
                             {{"number", ValueType::Number},
                              {"boolean", ValueType::Boolean},
                              {"string", ValueType::String}},
                             [](S& d, ValueType t) {
                                 // A driver that makes one type is checked in check_sensor.
                                 d.s.type = t;
                             }),
        text<S>(
            "unit", "\"\"", "copied into events when not empty",
            [](S& d, std::string v) { d.s.unit = std::move(v); },
            [](const std::string& v, const std::string&) -> std::string {
                const bool control = std::any_of(v.begin(), v.end(), [](char ch) {
                    const auto u = static_cast<unsigned char>(ch);
                    return u < 0x20 || u == 0x7F;
                });
                return control ? "must not contain control characters" : "";
            }),
        custom<S>("range", "", "readings outside [low, high] are rejected",
                  [](ConfigReader& r, const YamlEntry& e, S& d) {
                      rules::YamlReader& y = r.yaml();
                      if (!e.value.IsSequence() || e.value.size() != 2) {
                          r.error(y.value_pos(e),
                                  "range: expected [low, high], got " + rules::describe(e.value));
                          return;
                      }
                      std::string why;
                      const auto lo = rules::as_number(e.value[0], why);
                      if (!lo) r.error(y.pos(e.value[0], y.value_pos(e)), "range: " + why);
                      const auto hi = rules::as_number(e.value[1], why);
                      if (!hi) r.error(y.pos(e.value[1], y.value_pos(e)), "range: " + why);
                      if (!lo || !hi) return;
                      if (*lo < *hi) {
                          d.s.range = std::make_pair(*lo, *hi);
                      } else {
                          r.error(y.value_pos(e), "range: low (" + format_number(*lo) +
                                                      ") must be below high (" +
                                                      format_number(*hi) + ")");
                      }
                  }),
        whole<S>("precision", "", "round readings to this many decimals", 0, 15,
                 [](S& d, long long v) { d.s.precision = static_cast<int>(v); }),
        key<S, double>(
            "deadband", "", "publish only when the value moved this much", rules::as_number,
            [](S& d, double v) { d.s.deadband = v; },
            [](const double& v, const std::string& raw) -> std::string {
                return v < 0 ? "must not be negative, got '" + raw + "'" : "";
            }),
        duration<S>("heartbeat", "", "with deadband: publish at least this often anyway",
                    milliseconds(1), false, [](S& d, milliseconds v) { d.s.heartbeat = v; }),
        choice<S, PublishMode>("publish", "all", "all | events | state | none",
                               {{"all", PublishMode::All},
                                {"events", PublishMode::Events},
                                {"state", PublishMode::State},
                                {"none", PublishMode::None}},
                               [](S& d, PublishMode m) { d.s.publish = m; }),
        custom<S>("options", "", "the driver's options (SPEC §6)",
                  [](ConfigReader&, const YamlEntry&, S&) {
                      // Read in read_sensor, with the driver's table: a sensor
                      // without options still gets the driver's defaults.
                  }),
    };
}

void read_sensor(ConfigReader& r, const YAML::Node& node, Config& c) {
    rules::YamlReader& y = r.yaml();
    if (!node.IsMap()) {
        r.error(y.pos(node),
                "expected a sensor (a map with name, driver, ...), got " + rules::describe(node));
        return;
    }
    const std::size_t errors_before = y.error_count();
    SensorDraft d;
    apply_defaults(sensor_keys(), d);
    d.s.pos = y.pos(node);
    const std::vector<YamlEntry> es =
        y.entries(node, keys_under(sensor_keys(), ""), "key", " in sensor");
    read_keys(r, es, "", sensor_keys(), d);
    SensorConfig& s = d.s;
    if (!rules::find_entry(es, "name")) r.error(s.pos, "sensor has no 'name'");
    const std::string who = d.named ? "sensor '" + s.name + "'" : std::string("sensor");
    if (!rules::find_entry(es, "driver")) r.error(s.pos, who + " has no 'driver'");
    if (const YamlEntry* t = rules::find_entry(es, "type");
        t && d.info && d.info->fixed_type && s.type != d.info->type) {
        r.error(y.value_pos(*t),
                "type: driver '" + s.driver + "' makes " + std::string(type_name(d.info->type)) +
                    " values; remove 'type' or set it to " + std::string(type_name(d.info->type)));
    }
    if (const YamlEntry* hb = rules::find_entry(es, "heartbeat");
        hb && !rules::find_entry(es, "deadband")) {
        y.warn(y.key_pos(*hb), "heartbeat has no effect without deadband");
    }
    if (!d.info) return;  // options cannot be checked against an unknown driver
    const drivers::DriverInfo& info = *d.info;
    s.options = read_options(r, rules::find_entry(es, "options"), info.options,
                             "driver '" + std::string(info.name) + "'", s.pos, d.option_positions);
    if (y.error_count() == errors_before && info.create) {
        probe_driver(r, who, s.pos, d.option_positions, [&] {
            const drivers::SensorSpec spec = s.spec();
            info.create(std::span(&spec, 1));
        });
    }
    c.sensors.push_back(std::move(s));
}

// ---------------------------------------------------------------------------
// Outputs

// Outputs probed at load time publish nothing: they are never started.
class NoOutputEnv final : public drivers::OutputEnv {
  public:
    void publish(const std::string&, const std::string&, int, bool) override {}
};

std::vector<ConfigKey<OutputDraft>> make_output_keys() {
    using O = OutputDraft;
    return {
        custom<O>("name", "", "[a-z][a-z0-9_]*; unique",
                  [](ConfigReader& r, const YamlEntry& e, O& d) {
                      auto v = r.yaml().get(e, "name", rules::as_text);
                      if (!v) return;
                      const SourcePos p = r.yaml().value_pos(e);
                      if (const std::string too_long = name_too_long("output name", *v);
                          !too_long.empty()) {
                          r.error(p, too_long);
                      } else if (v->find('.') != std::string::npos ||
                                 !rules::is_valid_sensor_name(*v)) {
                          // One segment of a sensor name: a single topic level.
                          r.error(p, "invalid output name '" + rules::shown(*v) +
                                         "': use [a-z][a-z0-9_]*, e.g. fan");
                      } else if (first_definition(r, r.output_lines, "output", *v, p)) {
                          d.o.name = *v;
                      }
                  }),
        driver_key<O, drivers::OutputInfo>(
            "gpio, file, mqtt", "output driver", drivers::output_registry,
            [](O& d, const drivers::OutputInfo& info, std::string name) {
                d.info = &info;
                d.o.driver = std::move(name);
            }),
        custom<O>("options", "", "the output driver's options (SPEC §6)",
                  [](ConfigReader&, const YamlEntry&, O&) {
                      // Read in read_output, with the driver's table.
                  }),
        flag<O>("remote", "false", "true: may also be set from <prefix>/<id>/cmd/outputs/<name>",
                [](O& d, bool v) { d.o.remote = v; }),
    };
}

void read_output(ConfigReader& r, const YAML::Node& node, Config& c) {
    rules::YamlReader& y = r.yaml();
    if (!node.IsMap()) {
        r.error(y.pos(node),
                "expected an output (a map with name, driver, ...), got " + rules::describe(node));
        return;
    }
    const std::size_t errors_before = y.error_count();
    OutputDraft d;
    apply_defaults(output_keys(), d);
    OutputConfig& o = d.o;
    o.pos = y.pos(node);
    const std::vector<YamlEntry> es =
        y.entries(node, keys_under(output_keys(), ""), "key", " in output");
    read_keys(r, es, "", output_keys(), d);
    if (!rules::find_entry(es, "name")) r.error(o.pos, "output has no 'name'");
    if (!rules::find_entry(es, "driver")) {
        r.error(o.pos, (o.name.empty() ? std::string("output") : "output '" + o.name + "'") +
                           " has no 'driver'");
    }
    if (d.info) {
        const drivers::OutputInfo& info = *d.info;
        o.options = read_options(r, rules::find_entry(es, "options"), info.options,
                                 "output driver '" + std::string(info.name) + "'", o.pos,
                                 d.option_positions);
        // Output states are on/off; accept the spellings of SPEC §2 in any case.
        if (info.name == "gpio" && o.options.has("initial")) {
            const std::string v = lower(o.options.string("initial"));
            if (v == "on" || v == "true") {
                o.options.set("initial", std::string("on"));
            } else if (v == "off" || v == "false") {
                o.options.set("initial", std::string("off"));
            } else {
                const auto it = d.option_positions.find("initial");
                r.error(it != d.option_positions.end() ? it->second : o.pos,
                        "option 'initial': expected on or off, got '" +
                            rules::shown(o.options.string("initial")) + "'");
            }
        }
        // The gateway creates each output at start, and the driver refuses
        // there what its option table cannot express (a wildcard topic, equal
        // on and off payloads). Creating it here (no I/O) makes `check` refuse
        // the same, at the offending key.
        if (y.error_count() == errors_before && info.create) {
            probe_driver(r, "output '" + o.name + "'", o.pos, d.option_positions, [&] {
                NoOutputEnv env;
                info.create(o.name, o.options, env);
            });
        }
    }
    c.outputs.push_back(std::move(o));
}

}  // namespace

std::string ConfigReader::resolve(const std::string& p) const {
    if (p.empty() || fs::path(p).is_absolute() || base_dir_.empty()) return p;
    return (base_dir_ / p).lexically_normal().string();
}

std::optional<std::string> ConfigReader::read_named_file(const YamlEntry& e,
                                                         const std::string& label,
                                                         const std::string& path) {
    std::string text, why;
    if (!read_regular_file(path, kMaxConfigFileBytes, text, why)) {
        error(yaml_.value_pos(e), label + ": cannot read '" + path + "': " + why);
        return std::nullopt;
    }
    return text;
}

const std::vector<ConfigKey<Config>>& config_keys() {
    static const std::vector<ConfigKey<Config>> keys = make_config_keys();
    return keys;
}

const std::vector<ConfigKey<SensorDraft>>& sensor_keys() {
    static const std::vector<ConfigKey<SensorDraft>> keys = make_sensor_keys();
    return keys;
}

const std::vector<ConfigKey<OutputDraft>>& output_keys() {
    static const std::vector<ConfigKey<OutputDraft>> keys = make_output_keys();
    return keys;
}

template <class T>
void apply_defaults(const std::vector<ConfigKey<T>>& table, T& t) {
    for (const ConfigKey<T>& k : table) {
        if (k.is_section() || k.default_text.empty()) continue;
        const rules::SourceText src("(default of " + k.path + ")", k.default_text);
        Diagnostics diags;
        rules::YamlReader yaml(src, diags);
        ConfigReader r(yaml, {});
        YAML::Node value;
        if (yaml.parse("default", value)) k.set(r, YamlEntry{k.path, YAML::Node(k.path), value}, t);
        if (diags.has_errors()) {
            throw std::logic_error("config schema: the default of " + k.path +
                                   " is refused: " + diags.items().front().message());
        }
    }
}

template void apply_defaults(const std::vector<ConfigKey<Config>>&, Config&);
template void apply_defaults(const std::vector<ConfigKey<SensorDraft>>&, SensorDraft&);
template void apply_defaults(const std::vector<ConfigKey<OutputDraft>>&, OutputDraft&);

}  // namespace tg
