// Configuration loading (SPEC §2). One strict pass over the YAML tree, led
// by the schema's tables (config_schema.h): every problem is collected with
// its FILE:LINE:COL before giving up, so that `tidegate check` shows all of
// them at once instead of one per run.
#include "config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>
#include <utility>

#include "config_makers.h"
#include "config_schema.h"
#include "core/file_read.h"
#include "core/utf8.h"
#include "rules/yaml_reader.h"

namespace tg {
namespace {

namespace fs = std::filesystem;

std::string default_gateway_id_here() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    std::string machine_id, why;
    if (!read_regular_file("/etc/machine-id", 4096, machine_id, why)) machine_id.clear();
    return default_gateway_id(host, machine_id);
}

void load(const std::string& text, Config& c, Diagnostics& diags) {
    // yaml-cpp's marks do not count a byte-order mark: neither do ours.
    const std::string_view body = rules::strip_bom(text);
    const rules::SourceText src(c.file, body);
    rules::YamlReader yaml(src, diags);
    // YAML is Unicode text, and what a config holds goes into JSON envelopes
    // and MQTT topics, which must be UTF-8: a Latin-1 "°C" is refused here,
    // where its place is known.
    if (const std::size_t bad = first_invalid_utf8(body); bad != std::string_view::npos) {
        const auto b = static_cast<unsigned char>(body[bad]);
        const char* hex = "0123456789abcdef";
        yaml.error(src.at_byte(bad), std::string("invalid UTF-8 (byte 0x") + hex[b >> 4] +
                                         hex[b & 0xF] +
                                         ") in a config file; it must be UTF-8 text");
        return;
    }
    YAML::Node root;
    if (!yaml.parse("config file", root)) return;
    if (!root.IsMap() && !root.IsNull()) {
        yaml.error(yaml.pos(root),
                   "expected a map of sections (gateway, mqtt, rules, ..., sensors), got " +
                       rules::describe(root));
        return;
    }

    std::error_code ec;
    const fs::path base_dir =
        c.file.empty() ? fs::current_path(ec) : fs::absolute(fs::path(c.file), ec).parent_path();
    ConfigReader reader(yaml, base_dir);
    std::vector<rules::YamlEntry> top;
    if (root.IsMap()) top = yaml.entries(root, keys_under(config_keys(), ""), "key", "");
    read_keys(reader, top, "", config_keys(), c);
    if (!rules::find_entry(top, "sensors"))
        yaml.error(yaml.pos(root), "missing required key 'sensors'");

    if (c.gateway.id.empty()) c.gateway.id = default_gateway_id_here();
    if (c.mqtt.client_id.empty()) c.mqtt.client_id = "tidegate-" + c.gateway.id;
}

}  // namespace

Config::Config() {
    apply_defaults(config_keys(), *this);
}

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
        if (!schema::is_id_char(ch)) ch = '-';
    }
    if (id.empty()) return "tidegate";
    const std::string generic = schema::lower(id);
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
    Config c;
    c.file = file;
    Diagnostics found;
    load(text, c, found);

    // Problems are found key by key in the schema's order; report them in
    // document order.
    std::vector<SourceError> items = found.items();
    std::stable_sort(items.begin(), items.end(), [](const SourceError& a, const SourceError& b) {
        return std::pair(a.pos().line, a.pos().col) < std::pair(b.pos().line, b.pos().col);
    });
    Diagnostics errors;
    for (SourceError& e : items) {
        if (e.severity() == Severity::Error) {
            errors.add(std::move(e));
        } else if (warnings) {
            warnings->add(std::move(e));
        }
    }
    if (errors.has_errors()) throw LoadError(std::move(errors));
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
