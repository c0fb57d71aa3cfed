// The config file's schema (SPEC §2), declared once. Each key has its
// dotted path, the default as the default config file writes it, a line of
// help, and one function that converts, checks and stores a value where it
// lands in the Config. From these tables come the allowed keys (and so the
// "did you mean"), the defaults of a Config, and the walk of the loader;
// a unit test holds them against firmware-gateway/config/tidegate.yaml.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "rules/yaml_reader.h"

namespace tg {

// What reading a key needs besides its value: the file's YAML reader (errors
// and positions), the folder relative paths start from, and what one list
// item must know of the others (names seen so far).
class ConfigReader {
  public:
    ConfigReader(rules::YamlReader& yaml, std::filesystem::path base_dir)
        : yaml_(yaml), base_dir_(std::move(base_dir)) {}

    rules::YamlReader& yaml() { return yaml_; }
    void error(SourcePos p, std::string message) { yaml_.error(std::move(p), std::move(message)); }

    // A path from the file: relative ones against the config file's folder.
    std::string resolve(const std::string& path) const;
    // A file that must be readable now; its contents when it is.
    std::optional<std::string> read_named_file(const rules::YamlEntry& e, const std::string& label,
                                               const std::string& path);

    // name -> line of first definition, for duplicate names across items.
    std::map<std::string, int> sensor_lines;
    std::map<std::string, int> output_lines;

  private:
    rules::YamlReader& yaml_;
    std::filesystem::path base_dir_;
};

// One key of a table whose values land in a T (the Config, or one sensor or
// output being read).
template <class T>
struct ConfigKey {
    // Dotted from the table's root: "mqtt.tls.ca_file".
    std::string path;
    // The value as the default config file writes it (YAML); empty when the
    // key has no written default (derived at load, or optional).
    std::string_view default_text;
    std::string_view help;
    // Converts, checks and stores the entry's value; problems are reported
    // through the reader. Null for a section (a map of further keys).
    std::function<void(ConfigReader&, const rules::YamlEntry&, T&)> set;
    // For a section: checks across its keys once they are read.
    std::function<void(ConfigReader&, const rules::YamlEntry&, const std::vector<rules::YamlEntry>&,
                       T&)>
        done;

    bool is_section() const { return !set; }
    // The last component, as messages name list items' keys ("interval").
    std::string_view name() const {
        const std::size_t dot = path.rfind('.');
        return dot == std::string::npos ? std::string_view(path)
                                        : std::string_view(path).substr(dot + 1);
    }
};

// One sensor or output while it is read: the driver it names is needed to
// check its type and options.
struct SensorDraft {
    SensorConfig s;
    const drivers::DriverInfo* info = nullptr;
    std::map<std::string, SourcePos> option_positions;
    bool named = false;
};
struct OutputDraft {
    OutputConfig o;
    const drivers::OutputInfo* info = nullptr;
    std::map<std::string, SourcePos> option_positions;
};

// The tables, in the order of the default config file. The top-level table
// holds the sections and the two lists, whose items are read with the sensor
// and output tables.
const std::vector<ConfigKey<Config>>& config_keys();
const std::vector<ConfigKey<SensorDraft>>& sensor_keys();
const std::vector<ConfigKey<OutputDraft>>& output_keys();

// One item of `sensors:` / `outputs:`, read through its table into the
// config's list (config_items.cpp).
void read_sensor(ConfigReader& r, const YAML::Node& node, Config& c);
void read_output(ConfigReader& r, const YAML::Node& node, Config& c);

// The names of the keys directly under `prefix` ("" for the top level).
template <class T>
std::vector<std::string> keys_under(const std::vector<ConfigKey<T>>& table,
                                    std::string_view prefix) {
    std::vector<std::string> out;
    for (const ConfigKey<T>& k : table) {
        std::string_view p = k.path;
        if (!prefix.empty()) {
            if (p.size() <= prefix.size() + 1 || p.substr(0, prefix.size()) != prefix ||
                p[prefix.size()] != '.')
                continue;
            p.remove_prefix(prefix.size() + 1);
        }
        if (p.find('.') == std::string_view::npos) out.emplace_back(p);
    }
    return out;
}

// Reads `es` (the checked entries of the map at `prefix`) through `table`
// into `t`, descending into sections. Keys are read in the table's order, not
// the file's: a sensor's driver is known before its type and options.
template <class T>
void read_keys(ConfigReader& r, const std::vector<rules::YamlEntry>& es, const std::string& prefix,
               const std::vector<ConfigKey<T>>& table, T& t) {
    for (const ConfigKey<T>& k : table) {
        for (const rules::YamlEntry& e : es) {
            if (k.path != (prefix.empty() ? e.key : prefix + "." + e.key)) continue;
            if (k.is_section()) {
                const std::vector<rules::YamlEntry> sub =
                    r.yaml().section(e, keys_under(table, k.path));
                read_keys(r, sub, k.path, table, t);
                if (k.done) k.done(r, e, sub, t);
            } else {
                k.set(r, e, t);
            }
            break;
        }
    }
}

// Sets every key of `table` that has a default to it, through the key's own
// function, as if the default config file were read. A default its own key
// refuses is a bug in the table (std::logic_error).
template <class T>
void apply_defaults(const std::vector<ConfigKey<T>>& table, T& t);

}  // namespace tg
