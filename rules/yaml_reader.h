// The YAML front-end of every file users write: config files, rule files
// and whatever comes later. It parses one document with yaml_text's guards
// (parse_yaml_document), reads maps strictly (unknown keys with a "did you
// mean", duplicate keys, non-scalar keys), converts scalars to typed values
// with a reason when they do not fit, and places every problem at its
// FILE:LINE:COL. What a file means -- its keys and their checks -- stays with
// its own loader (config.cpp, rule_set.cpp).
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/source_error.h"
#include "rules/yaml_text.h"

namespace tg::rules {

// One key of a map, as written.
struct YamlEntry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
};

// The entry named `key`, or null.
const YamlEntry* find_entry(const std::vector<YamlEntry>& es, std::string_view key);

// A user's value as messages quote it: control characters escaped (a NUL
// would end the message line for many readers), cut after `max_bytes` at a
// character boundary.
std::string shown(std::string_view s, std::size_t max_bytes = 80);
// "a map", "a list", "'text'" or "nothing", for "expected X, got Y".
std::string describe(const YAML::Node& n);

// Scalar conversions. Each returns nullopt with a reason in `why`; the caller
// adds the key it was reading, the reader the position.
//
// Text: a scalar without NUL (it would cut the value short at a C API) that
// is valid UTF-8 (values go into JSON envelopes and topics).
std::optional<std::string> as_text(const YAML::Node& n, std::string& why);
// A finite number; a leading '+' is accepted.
std::optional<double> as_number(const YAML::Node& n, std::string& why);
std::optional<long long> as_integer(const YAML::Node& n, std::string& why);
// true/false, yes/no, on/off in any case: users copy YAML 1.1 and 1.2 alike.
std::optional<bool> as_bool(const YAML::Node& n, std::string& why);
// 250ms, 10s, 5m, 1h30m (core/units.h).
std::optional<std::chrono::milliseconds> as_duration(const YAML::Node& n, std::string& why);
// 512KiB, 64MiB, 1GiB (core/units.h).
std::optional<std::uint64_t> as_size(const YAML::Node& n, std::string& why);

// Reads one file's YAML tree, reporting into `diags`. The source text must
// outlive the reader.
class YamlReader {
  public:
    YamlReader(const SourceText& src, Diagnostics& diags) : src_(src), diags_(diags) {}

    // Parses the file's one document (see parse_yaml_document); false when
    // nothing can be read from it (its errors are reported). `kind` names
    // the file in messages: "config file", "rule file".
    bool parse(std::string_view kind, YAML::Node& root);

    const SourceText& src() const { return src_; }
    const std::string& file() const { return src_.file(); }

    // Positions. Null nodes carry no useful mark, so they report at
    // `fallback`, usually their key.
    SourcePos pos(const YAML::Node& n, const SourcePos& fallback) const {
        return src_.at_node(n, fallback);
    }
    SourcePos pos(const YAML::Node& n) const { return src_.at_node(n, start()); }
    SourcePos start() const { return SourcePos{src_.file(), 1, 1}; }
    SourcePos key_pos(const YamlEntry& e) const { return src_.at_mark(e.key_node.Mark()); }
    SourcePos value_pos(const YamlEntry& e) const { return pos(e.value, key_pos(e)); }

    void error(SourcePos p, std::string message) { diags_.error(std::move(p), std::move(message)); }
    void warn(SourcePos p, std::string message) {
        diags_.warning(std::move(p), std::move(message));
    }
    std::size_t error_count() const;

    // The pairs of a map with every key checked: a scalar, among `allowed`
    // (else an error with the closest allowed key as "did you mean"), not
    // seen before. `what` names the kind of key ("key", "option"), `where`
    // says where the map stands (" in sensor"). Bad keys are reported and
    // left out.
    std::vector<YamlEntry> entries(const YAML::Node& map, const std::vector<std::string>& allowed,
                                   const std::string& what, const std::string& where);
    // The entries of a section `key: {…}`; none, silently, for `key:` with
    // nothing under it; an error for anything but a map.
    std::vector<YamlEntry> section(const YamlEntry& e, const std::vector<std::string>& allowed);

    // `conv(e.value, why)`, with "LABEL: why" reported at the value when it
    // fails.
    template <class Conv>
    auto get(const YamlEntry& e, const std::string& label, Conv conv)
        -> decltype(conv(e.value, std::declval<std::string&>())) {
        std::string why;
        auto v = conv(e.value, why);
        if (!v) error(value_pos(e), label + ": " + why);
        return v;
    }

  private:
    const SourceText& src_;
    Diagnostics& diags_;
};

}  // namespace tg::rules
