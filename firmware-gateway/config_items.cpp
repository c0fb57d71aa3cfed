// The sensor and output tables of config_schema.h, and the reading of one
// list item: its keys, then its driver's options through the driver's own
// table, then a probe of the driver (no I/O) for what only it can check.
#include <algorithm>
#include <stdexcept>
#include <utility>

#include "config_makers.h"
#include "config_schema.h"
#include "core/units.h"
#include "ha_discovery.h"
#include "rules/program.h"
#include "rules/rule_set.h"

namespace tg {
namespace {

using namespace schema;
using drivers::OptionSpec;
using drivers::OptType;
using drivers::OptValue;

// Sensor and output names become topic levels (<p>/events/<path>,
// <p>/cmd/outputs/<name>): a reading whose topic MQTT cannot carry would be
// refused at every poll, so names are bounded where they are written.
constexpr std::size_t kMaxName = 128;

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

// The start of reading one list item (`what`: "sensor", "output"): a map,
// its table's defaults, then its checked keys read through the table into
// `d`; false (reported) when it is no map. `es` gets the keys as written.
template <class D>
bool read_item(ConfigReader& r, const YAML::Node& node, const std::string& what,
               const std::vector<ConfigKey<D>>& table, D& d, SourcePos& pos,
               std::vector<YamlEntry>& es) {
    rules::YamlReader& y = r.yaml();
    if (!node.IsMap()) {
        const std::string article = what.front() == 'o' ? "an " : "a ";
        r.error(y.pos(node), "expected " + article + what +
                                 " (a map with name, driver, ...), got " + rules::describe(node));
        return false;
    }
    apply_defaults(table, d);
    pos = y.pos(node);
    es = y.entries(node, keys_under(table, ""), "key", " in " + what);
    read_keys(r, es, "", table, d);
    return true;
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
        section<S>("ha", "how Home Assistant discovery presents this sensor"),
        custom<S>("ha.device_class", "", "Home Assistant device class (default: from the unit)",
                  [](ConfigReader& r, const YamlEntry& e, S& d) {
                      auto v = r.yaml().get(e, "device_class", rules::as_text);
                      if (!v) return;
                      // The driver and the type are read first (table order).
                      if (std::string why = ha::check_device_class(*v, d.s.type); !why.empty()) {
                          r.error(r.yaml().value_pos(e), why);
                          return;
                      }
                      d.s.ha_device_class = *v;
                  }),
        text<S>(
            "ha.name", "", "the entity's name in Home Assistant (default: from the sensor name)",
            [](S& d, std::string v) { d.s.ha_name = std::move(v); },
            [](const std::string& v, const std::string&) -> std::string {
                if (v.empty()) return "must not be empty (leave it out for the default)";
                if (v.size() > 255) return std::to_string(v.size()) + " bytes; at most 255";
                const bool control = std::any_of(v.begin(), v.end(), [](char ch) {
                    const auto u = static_cast<unsigned char>(ch);
                    return u < 0x20 || u == 0x7F;
                });
                return control ? "must not contain control characters" : "";
            }),
        custom<S>("options", "", "the driver's options (SPEC §6)",
                  [](ConfigReader&, const YamlEntry&, S&) {
                      // Read in read_sensor, with the driver's table: a sensor
                      // without options still gets the driver's defaults.
                  }),
    };
}

}  // namespace

void read_sensor(ConfigReader& r, const YAML::Node& node, Config& c) {
    rules::YamlReader& y = r.yaml();
    const std::size_t errors_before = y.error_count();
    SensorDraft d;
    std::vector<YamlEntry> es;
    if (!read_item(r, node, "sensor", sensor_keys(), d, d.s.pos, es)) return;
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
    if (const YamlEntry* ha = rules::find_entry(es, "ha");
        ha && (s.publish == PublishMode::None || s.publish == PublishMode::Events)) {
        y.warn(y.key_pos(*ha), "ha has no effect with publish: " +
                                   std::string(s.publish == PublishMode::None ? "none" : "events") +
                                   " (Home Assistant reads the state topic)");
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

namespace {

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
        custom<O>("breaker", "{ failures: 5, open_for: 30s }",
                  "circuit breaker: open after this many consecutive failures, for this long "
                  "(doubling while it keeps failing, at most 10m)",
                  [](ConfigReader& r, const YamlEntry& e, O& d) {
                      if (auto b = rules::read_breaker_settings(r.yaml(), e)) d.o.breaker = *b;
                  }),
    };
}

}  // namespace

void read_output(ConfigReader& r, const YAML::Node& node, Config& c) {
    rules::YamlReader& y = r.yaml();
    const std::size_t errors_before = y.error_count();
    OutputDraft d;
    std::vector<YamlEntry> es;
    if (!read_item(r, node, "output", output_keys(), d, d.o.pos, es)) return;
    OutputConfig& o = d.o;
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

const std::vector<ConfigKey<SensorDraft>>& sensor_keys() {
    static const std::vector<ConfigKey<SensorDraft>> keys = make_sensor_keys();
    return keys;
}

const std::vector<ConfigKey<OutputDraft>>& output_keys() {
    static const std::vector<ConfigKey<OutputDraft>> keys = make_output_keys();
    return keys;
}

}  // namespace tg
