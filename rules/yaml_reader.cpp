#include "rules/yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <system_error>

#include "core/units.h"
#include "core/utf8.h"

namespace tg::rules {
namespace {

std::string lower_ascii(std::string s) {
    for (char& c : s) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return s;
}

// A leading '+' is accepted (from_chars does not); "+-1" and the like are not.
std::string_view strip_plus(std::string_view s) {
    if (s.size() > 1 && s.front() == '+' && s[1] != '+' && s[1] != '-') s.remove_prefix(1);
    return s;
}

}  // namespace

const YamlEntry* find_entry(const std::vector<YamlEntry>& es, std::string_view key) {
    for (const YamlEntry& e : es) {
        if (e.key == key) return &e;
    }
    return nullptr;
}

std::string shown(std::string_view s, std::size_t max_bytes) {
    const std::size_t end = utf8_cut(s, max_bytes);
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

std::optional<std::string> as_text(const YAML::Node& n, std::string& why) {
    if (!n.IsScalar()) {
        why = "expected text, got " + describe(n);
        return std::nullopt;
    }
    const std::string& s = n.Scalar();
    if (s.find('\0') != std::string::npos) {
        why = "a NUL character (\\0) is not allowed in a value";
        return std::nullopt;
    }
    // The file was checked for UTF-8 already, and escapes cannot produce
    // invalid UTF-8 (yaml-cpp refuses a lone surrogate): checked again all the
    // same, since these strings go into JSON envelopes and topics.
    if (first_invalid_utf8(s) != std::string_view::npos) {
        why = "not valid UTF-8 text";
        return std::nullopt;
    }
    return s;
}

std::optional<double> as_number(const YAML::Node& n, std::string& why) {
    if (n.IsScalar()) {
        const std::string_view s = strip_plus(n.Scalar());
        double d = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
        if (!s.empty() && ec == std::errc{} && end == s.data() + s.size() && std::isfinite(d)) {
            return d;
        }
    }
    why = "expected a number, got " + describe(n);
    return std::nullopt;
}

std::optional<long long> as_integer(const YAML::Node& n, std::string& why) {
    if (n.IsScalar()) {
        const std::string_view s = strip_plus(n.Scalar());
        long long v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (!s.empty() && ec == std::errc{} && end == s.data() + s.size()) return v;
    }
    why = "expected a whole number, got " + describe(n);
    return std::nullopt;
}

std::optional<bool> as_bool(const YAML::Node& n, std::string& why) {
    if (n.IsScalar()) {
        const std::string s = lower_ascii(n.Scalar());
        if (s == "true" || s == "yes" || s == "on") return true;
        if (s == "false" || s == "no" || s == "off") return false;
    }
    why = "expected true or false, got " + describe(n);
    return std::nullopt;
}

std::optional<std::chrono::milliseconds> as_duration(const YAML::Node& n, std::string& why) {
    if (!n.IsScalar()) {
        why = "expected a duration (e.g. 250ms, 30s, 2m, 1h30m), got " + describe(n);
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

bool YamlReader::parse(std::string_view kind, YAML::Node& root) {
    YamlDocument doc = parse_yaml_document(src_, kind);
    for (SourceError& e : doc.errors)
        diags_.add(std::move(e));
    root = doc.root;
    return doc.parsed;
}

std::size_t YamlReader::error_count() const {
    return static_cast<std::size_t>(
        std::count_if(diags_.items().begin(), diags_.items().end(),
                      [](const SourceError& e) { return e.severity() == Severity::Error; }));
}

std::vector<YamlEntry> YamlReader::entries(const YAML::Node& map,
                                           const std::vector<std::string>& allowed,
                                           const std::string& what, const std::string& where) {
    std::vector<YamlEntry> out;
    std::map<std::string, int> first_line;
    const SourcePos map_pos = pos(map);
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
        out.push_back(YamlEntry{name, k, kv.second});
    }
    return out;
}

std::vector<YamlEntry> YamlReader::section(const YamlEntry& e,
                                           const std::vector<std::string>& allowed) {
    if (e.value.IsMap()) return entries(e.value, allowed, "key", " in '" + e.key + "'");
    if (!e.value.IsNull())
        error(value_pos(e), e.key + ": expected a map, got " + describe(e.value));
    return {};
}

}  // namespace tg::rules
