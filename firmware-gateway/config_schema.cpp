// The top-level table of config_schema.h (gateway, mqtt, rules, outbox,
// journal, metrics, homeassistant and the two lists), the reader's helpers and the
// defaults. Sensors and outputs: config_items.cpp.
#include "config_schema.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <stdexcept>
#include <utility>

#include "broker_uri.h"
#include "config_makers.h"
#include "core/file_read.h"
#include "core/units.h"
#include "http_server.h"

namespace tg {
namespace {

namespace fs = std::filesystem;
using namespace schema;

// MQTT's strings (client id, user name, topics) and binary fields (the
// password) are at most this many bytes.
constexpr std::size_t kMaxMqttString = 65535;
// gateway.id is part of every topic, every event id and the default MQTT
// client id; host names are at most 64 characters too.
constexpr std::size_t kMaxGatewayId = 64;
// Every topic starts with <topic_prefix>/<gateway.id>/; bounded so that the
// topics built from it stay far below MQTT's limit.
constexpr std::size_t kMaxTopicPrefix = 256;

// ---------------------------------------------------------------------------
// Top level

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

// http.token_file: read now; a token of printable ASCII without spaces, so
// that it fits an Authorization header as it is.
void read_token_file(ConfigReader& r, const YamlEntry& e, Config& c) {
    auto v = r.yaml().get(e, "http.token_file", rules::as_text);
    if (!v || v->empty()) return;
    c.http.token_file = r.resolve(*v);
    auto text = r.read_named_file(e, "http.token_file", c.http.token_file);
    if (!text) return;
    while (!text->empty() && std::isspace(static_cast<unsigned char>(text->back())))
        text->pop_back();
    if (text->size() < 16) {
        r.error(r.yaml().value_pos(e), "http.token_file: the token is " +
                                           std::to_string(text->size()) +
                                           " characters; at least 16 are needed");
        return;
    }
    if (text->size() > 256 ||
        !std::all_of(text->begin(), text->end(), [](char ch) { return ch > ' ' && ch < 127; })) {
        r.error(r.yaml().value_pos(e),
                "http.token_file: the token must be at most 256 printable ASCII characters "
                "without spaces (e.g. the output of `openssl rand -hex 24`)");
        return;
    }
    c.http.token = *text;
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

// A leading part of topics (mqtt.topic_prefix, homeassistant.prefix): what
// is wrong with it, or nothing.
std::string topic_prefix_problem(const std::string& v, const std::string&) {
    if (v.empty()) return "must not be empty";
    if (v.size() > kMaxTopicPrefix) {
        return std::to_string(v.size()) + " bytes; at most " + std::to_string(kMaxTopicPrefix) +
               " are allowed";
    }
    if (v.find_first_of("+#") != std::string::npos)
        return "'" + rules::shown(v) + "' must not contain the wildcards '+' or '#'";
    if (v.front() == '/' || v.back() == '/')
        return "'" + rules::shown(v) + "' must not start or end with '/'";
    return {};
}

// mqtt.uri: one URI or a list; each checked at its place; a list neither
// empty nor naming a broker twice.
void read_broker_uris(ConfigReader& r, const YamlEntry& e, Config& c) {
    rules::YamlReader& y = r.yaml();
    std::vector<std::pair<YAML::Node, SourcePos>> items;
    if (e.value.IsSequence()) {
        if (e.value.size() == 0) {
            y.error(y.value_pos(e), "mqtt.uri: the list is empty; name at least one broker");
            return;
        }
        for (const YAML::Node& n : e.value)
            items.emplace_back(n, y.pos(n, y.value_pos(e)));
    } else {
        items.emplace_back(e.value, y.value_pos(e));
    }
    std::vector<std::string> uris;
    std::map<std::string, int> seen;
    bool ok = true;
    for (const auto& [node, pos] : items) {
        std::string why;
        const std::optional<std::string> v = rules::as_text(node, why);
        if (!v) {
            y.error(pos, "mqtt.uri: " + why);
            ok = false;
            continue;
        }
        if (std::string problem; !parse_broker_uri(*v, problem)) {
            y.error(pos, "mqtt.uri: " + problem);
            ok = false;
            continue;
        }
        if (const auto [it, fresh] = seen.emplace(*v, pos.line); !fresh) {
            y.error(pos, "mqtt.uri: '" + rules::shown(*v) + "' is listed twice (first at line " +
                             std::to_string(it->second) + ")");
            ok = false;
            continue;
        }
        uris.push_back(*v);
    }
    if (!ok) return;
    c.mqtt.uris = std::move(uris);
    c.mqtt.uri = c.mqtt.uris.front();
}

void mqtt_done(ConfigReader& r, const YamlEntry&, const std::vector<YamlEntry>& es, Config& c) {
    const YamlEntry* tls = rules::find_entry(es, "tls");
    const bool any_ssl = std::any_of(c.mqtt.uris.begin(), c.mqtt.uris.end(),
                                     [](const auto& u) { return u.rfind("ssl://", 0) == 0; });
    if (tls && !any_ssl) {
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
        custom<C>("mqtt.uri", "tcp://localhost:1883",
                  "the broker: tcp://HOST:PORT or ssl://HOST:PORT, or a list of them tried in "
                  "order on every connect",
                  read_broker_uris),
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
            [](C& c, std::string v) { c.mqtt.topic_prefix = std::move(v); }, topic_prefix_problem),
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

        section<C>("homeassistant", "Home Assistant MQTT discovery"),
        flag<C>("homeassistant.discovery", "false",
                "true: announce sensors, rules and outputs to Home Assistant",
                [](C& c, bool v) { c.homeassistant.discovery = v; }),
        text<C>(
            "homeassistant.prefix", "homeassistant", "Home Assistant's discovery prefix",
            [](C& c, std::string v) { c.homeassistant.prefix = std::move(v); },
            topic_prefix_problem),

        section<C>("http", "the local HTTP server: /metrics, /api/status, the status page"),
        text<C>(
            "http.listen", "127.0.0.1:9780",
            "host:port or [v6]:port to listen on; \"\" turns the server off",
            [](C& c, std::string v) { c.http.listen = std::move(v); },
            [](const std::string& v, const std::string&) { return http_listen_problem(v); }),
        custom<C>("http.token_file", "\"\"",
                  "optional file holding a token every request must carry (Authorization: "
                  "Bearer <token>); needed for switching outputs",
                  read_token_file),

        custom<C>("sensors", "", "the sensors (required)", list_of("sensors", read_sensor)),
        custom<C>("outputs", "[]", "things rules can switch", list_of("outputs", read_output)),
    };
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
