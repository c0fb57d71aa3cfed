// The config schema against the default config file users read: every key
// the file shows (set or commented out) is declared, every declared key is
// shown, and every default the file writes is the schema's.
#include <yaml-cpp/yaml.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "config.h"
#include "config_schema.h"

namespace {

const std::string kDefaultConfig =
    std::string(TIDEGATE_SOURCE_DIR) + "/firmware-gateway/config/tidegate.yaml";

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The file with its commented-out keys ("# client_id: …", "#   ca_file: …",
// "#   - name: fan") turned back into YAML at their indentation.
std::string uncommented(const std::string& text) {
    static const std::regex key_line(R"re(^(\s*)# ( *(- )?[a-z_]+:( .*)?)$)re");
    std::istringstream in(text);
    std::string out, line;
    while (std::getline(in, line)) {
        std::smatch m;
        out += std::regex_match(line, m, key_line) ? m[1].str() + m[2].str() : line;
        out += '\n';
    }
    return out;
}

// path -> value of every key in a document, list items as "sensors[]".
// Driver options are the drivers' own tables (SPEC §6), not the config's.
void collect(const YAML::Node& map, const std::string& prefix,
             std::multimap<std::string, YAML::Node>& out) {
    for (const auto& kv : map) {
        const std::string path =
            prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar();
        out.emplace(path, kv.second);
        // A breaker is one value (read by rules::read_breaker_settings, as in rule files).
        if (kv.first.Scalar() == "options" || kv.first.Scalar() == "breaker") continue;
        if (kv.second.IsMap()) collect(kv.second, path, out);
        if (kv.second.IsSequence()) {
            for (const YAML::Node& item : kv.second) {
                if (item.IsMap()) collect(item, path + "[]", out);
            }
        }
    }
}

std::string dump(const YAML::Node& n) {
    return YAML::Dump(n);
}

template <class T>
void add_paths(const std::vector<tg::ConfigKey<T>>& table, const std::string& prefix,
               std::map<std::string, std::string_view>& out) {
    for (const tg::ConfigKey<T>& k : table)
        out.emplace(prefix + k.path, k.default_text);
}

// Every declared key with its default (empty: none).
std::map<std::string, std::string_view> schema_paths() {
    std::map<std::string, std::string_view> out;
    add_paths(tg::config_keys(), "", out);
    add_paths(tg::sensor_keys(), "sensors[].", out);
    add_paths(tg::output_keys(), "outputs[].", out);
    return out;
}

}  // namespace

TEST_CASE("schema: the default config file shows every declared key, and only those",
          "[config][schema]") {
    const std::string text = read_file(kDefaultConfig);
    REQUIRE(!text.empty());
    std::multimap<std::string, YAML::Node> shown;
    collect(YAML::Load(uncommented(text)), "", shown);
    const auto declared = schema_paths();

    std::set<std::string> missing, unknown;
    for (const auto& [path, def] : declared) {
        if (!shown.count(path)) missing.insert(path);
    }
    for (const auto& [path, node] : shown) {
        if (!declared.count(path)) unknown.insert(path);
    }
    INFO("declared but not in tidegate.yaml: " << tg::join_words({missing.begin(), missing.end()}));
    INFO("in tidegate.yaml but not declared: " << tg::join_words({unknown.begin(), unknown.end()}));
    CHECK(missing.empty());
    CHECK(unknown.empty());
    // The walk found what it should: sections, list items and commented keys.
    CHECK(shown.count("mqtt.tls.ca_file") == 1);
    CHECK(shown.count("sensors[].heartbeat") == 1);
    CHECK(shown.count("outputs[].remote") == 1);
    CHECK(shown.count("gateway.id") == 1);
}

TEST_CASE("schema: every default the file writes is the schema's", "[config][schema]") {
    const std::string text = read_file(kDefaultConfig);
    std::multimap<std::string, YAML::Node> active, all;
    collect(YAML::Load(text), "", active);
    collect(YAML::Load(uncommented(text)), "", all);

    int compared = 0;
    for (const auto& [path, def] : schema_paths()) {
        if (def.empty()) continue;
        const std::string parent = path.substr(0, path.rfind('.'));
        const bool parent_active = path.find('.') == std::string::npos || active.count(parent);
        // A key with a default is set in the file wherever its section is.
        INFO(path);
        if (parent_active && path.rfind("outputs[]", 0) != 0) CHECK(active.count(path) == 1);
        // The set value where there is one (outputs: [] is, after an example).
        const auto set = active.find(path);
        const auto shown = all.find(path);
        REQUIRE(shown != all.end());
        const YAML::Node& value = set != active.end() ? set->second : shown->second;
        CHECK(dump(value) == dump(YAML::Load(std::string(def))));
        ++compared;
    }
    CHECK(compared >= 20);
}

TEST_CASE("schema: a Config has the defaults the default config file loads to",
          "[config][schema]") {
    // Both come from the tables; the file's sensor list is the only
    // difference, and rules.paths / data_dir are absolute already.
    const tg::Config file = tg::load_config(kDefaultConfig);
    const tg::Config def;
    CHECK(file.gateway.data_dir == def.gateway.data_dir);
    CHECK(def.gateway.data_dir == "/var/lib/tidegate");
    CHECK(file.mqtt.uri == def.mqtt.uri);
    CHECK(file.mqtt.version == def.mqtt.version);
    CHECK(def.mqtt.version == 4);
    CHECK(file.mqtt.topic_prefix == def.mqtt.topic_prefix);
    CHECK(file.mqtt.qos == def.mqtt.qos);
    CHECK(def.mqtt.qos == 1);
    CHECK(file.mqtt.keepalive == def.mqtt.keepalive);
    CHECK(def.mqtt.keepalive == std::chrono::seconds(30));
    CHECK(file.mqtt.input_buffer == def.mqtt.input_buffer);
    CHECK(def.mqtt.input_buffer == 8u << 20);
    CHECK(def.mqtt.tls.verify_hostname);
    CHECK(!def.mqtt.tls.present);
    CHECK(file.rules.paths == def.rules.paths);
    CHECK(def.rules.paths == std::vector<std::string>{"/etc/tidegate/rules.d"});
    CHECK(file.rules.tick == def.rules.tick);
    CHECK(file.outbox.max_bytes == def.outbox.max_bytes);
    CHECK(file.outbox.sync == def.outbox.sync);
    CHECK(file.outbox.sync_always == def.outbox.sync_always);
    CHECK(file.journal.retain_bytes == def.journal.retain_bytes);
    CHECK(file.metrics.interval == def.metrics.interval);
    CHECK(def.metrics.interval == std::chrono::seconds(60));
    REQUIRE(file.sensors.size() == 1);
    CHECK(file.sensors[0].interval == std::chrono::seconds(5));
    CHECK(file.sensors[0].publish == tg::PublishMode::All);
}

TEST_CASE("schema: unknown keys are offered the declared ones", "[config][schema]") {
    auto error_of = [](const std::string& text) {
        try {
            tg::parse_config(text, "t.yaml");
        } catch (const tg::LoadError& e) {
            return e.diagnostics().items().front().format();
        }
        return std::string("no error");
    };
    CHECK(error_of("mqtt:\n  tls:\n    verify_hostnme: true\nsensors: []\n") ==
          "t.yaml:3:5: error: unknown key 'verify_hostnme' in 'tls' (did you mean "
          "'verify_hostname'?)");
    CHECK(error_of("outbox:\n  snyc: 1s\nsensors: []\n") ==
          "t.yaml:2:3: error: unknown key 'snyc' in 'outbox' (did you mean 'sync'?)");
    CHECK(error_of("sensors:\n  - name: a\n    driver: simulated\n    heartbaet: 5s\n") ==
          "t.yaml:4:5: error: unknown key 'heartbaet' in sensor (did you mean 'heartbeat'?)");
    CHECK(error_of("sensors: []\noutputs:\n  - name: x\n    driver: file\n    remtoe: true\n"
                   "    options: {path: /tmp/x}\n") ==
          "t.yaml:5:5: error: unknown key 'remtoe' in output (did you mean 'remote'?)");
}
